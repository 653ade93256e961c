# Fused Compare and Write from the shell (NVMe 1.4 §4.12, §6.2.1). `cmd`
# sends one command at a time, and a fused pair needs two adjacent SQ
# entries covered by one tail doorbell write, so the pair goes through a
# queue of the user's own: I/O CQ/SQ 8 created in mem through `cmd`, the
# entries written into mem, `doorbells/sq8_tail` rung once, the completions
# read from mem. Checked: a matching pair writes, a failed Compare aborts
# the Write, missing and mismatched partners, and pairs racing a dd writer
# on the same LBA leave whole blocks only.
. "$(dirname "$0")/lib.sh"

M=$MNT
D=$M/namespaces/1/data
CQ=$((0x100000)) SQ=$((0x101000)) EXPECT=$((0x102000)) NEW=$((0x103000))
LBA=50

# le N: one little-endian dword, in hex.
le() { printf '%08x' "$1" | sed 's/\(..\)\(..\)\(..\)\(..\)/\4\3\2\1/'; }
zeros() { printf "%0$1d" 0; }
# sqe OPCODE FUSE CID PRP1 SLBA NLB0: one NVM command on NSID 1, in hex.
sqe() {
    echo "$(le $(($1 | $2 << 8 | $3 << 16)))$(le 1)$(zeros 32)$(le "$4")$(le 0)$(zeros 16)$(le "$5")$(le 0)$(le "$6")$(zeros 24)"
}
# fill ADDR CHAR: 512 bytes of CHAR at ADDR in mem.
fill() { printf "$2%.0s" $(seq 512) | dd of="$M/mem" bs=512 seek="$1" oflag=seek_bytes conv=notrunc status=none; }
block() { dd if="$D" bs=512 skip=$LBA count=1 iflag=direct status=none; }

TAIL=0   # our SQ tail (16 entries)
HEAD=0   # our CQ head; the phase flips each time it wraps
PHASE=1
# submit HEX...: writes the entries at the tail, then rings once.
submit() {
    local e
    for e in "$@"; do
        echo "$e" | xxd -r -p | dd of="$M/mem" bs=64 seek=$((SQ + TAIL * 64)) oflag=seek_bytes conv=notrunc status=none ||
            fail "writing an SQE"
        TAIL=$(((TAIL + 1) % 16))
    done
    echo $TAIL >"$M/doorbells/sq8_tail" || fail "ring sq8"
}
# reap: sets CQE to the next completion's "CID STATUS" (status as 15 bits:
# DNR << 14 | More << 13 | SCT << 8 | SC).
reap() {
    local tries=200 w
    while :; do
        read -r -a w <<<"$(od -An -v -tx4 -j $((CQ + HEAD * 16)) -N 16 "$M/mem")"
        [ $(((0x${w[3]} >> 16) & 1)) -eq $PHASE ] && break
        tries=$((tries - 1)); [ "$tries" -gt 0 ] || fail "no completion at CQ entry $HEAD"
        sleep 0.05
    done
    HEAD=$(((HEAD + 1) % 16)); [ $HEAD -eq 0 ] && PHASE=$((1 - PHASE))
    echo $HEAD >"$M/doorbells/cq8_head" || fail "ring cq8 head"
    CQE=$(printf '%d 0x%04x' $((0x${w[3]} & 0xffff)) $(((0x${w[3]} >> 17) & 0x7fff)))
}
SUCCESS=0x0000 COMPARE_FAILURE=0x0285 FAILED_FUSED=0x0009 MISSING_FUSED=0x000a INVALID_FIELD_DNR=0x4002

mount_nvmefs --namespace "$IMG/fused.img,size=1M"
assert_eq 0001 "$(od -An -tx2 -j 522 -N 2 "$M/identify" | tr -d ' ')" "Identify FUSES"

st=$(send_cmd "admin opcode=0x05 prp1=$CQ cdw10=$((8 | 15 << 16)) cdw11=1")
case $st in "status SUCCESS"*) ;; *) fail "Create I/O CQ 8: $st" ;; esac
st=$(send_cmd "admin opcode=0x01 prp1=$SQ cdw10=$((8 | 15 << 16)) cdw11=$((1 | 8 << 16))")
case $st in "status SUCCESS"*) ;; *) fail "Create I/O SQ 8: $st" ;; esac

printf 'A%.0s' $(seq 512) | dd of="$D" bs=512 seek=$LBA conv=notrunc status=none || fail "dd A"
fill $EXPECT A
fill $NEW B

# A matching pair: both succeed and the block holds B.
submit "$(sqe 0x05 1 1 $EXPECT $LBA 0)" "$(sqe 0x01 2 2 $NEW $LBA 0)"
reap; assert_eq "1 $SUCCESS" "$CQE" "Compare of a matching pair"
reap; assert_eq "2 $SUCCESS" "$CQE" "Write of a matching pair"
assert_eq "$(printf 'B%.0s' $(seq 512))" "$(block)" "block after the pair"

# The same pair again: the block holds B, not A, so the Compare fails and the Write is aborted.
fill $NEW C
submit "$(sqe 0x05 1 3 $EXPECT $LBA 0)" "$(sqe 0x01 2 4 $NEW $LBA 0)"
reap; assert_eq "3 $COMPARE_FAILURE" "$CQE" "Compare of a mismatching pair"
reap; assert_eq "4 $FAILED_FUSED" "$CQE" "Write after a failed Compare"
assert_eq "$(printf 'B%.0s' $(seq 512))" "$(block)" "block after a failed Compare"

# Partners missing: a first rung alone, a second alone; Compare then Read; different LBAs.
submit "$(sqe 0x05 1 5 $EXPECT $LBA 0)"
reap; assert_eq "5 $MISSING_FUSED" "$CQE" "first alone"
submit "$(sqe 0x01 2 6 $NEW $LBA 0)"
reap; assert_eq "6 $MISSING_FUSED" "$CQE" "second alone"
submit "$(sqe 0x05 1 7 $EXPECT $LBA 0)" "$(sqe 0x02 2 8 $NEW $LBA 0)"
reap; assert_eq "7 $MISSING_FUSED" "$CQE" "Compare paired with a Read"
reap; assert_eq "8 $MISSING_FUSED" "$CQE" "Read paired with a Compare"
submit "$(sqe 0x05 1 9 $EXPECT $LBA 0)" "$(sqe 0x01 2 10 $NEW $((LBA + 1)) 0)"
reap; assert_eq "9 $INVALID_FIELD_DNR" "$CQE" "Compare of a pair with different LBAs"
reap; assert_eq "10 $INVALID_FIELD_DNR" "$CQE" "Write of a pair with different LBAs"
assert_eq "$(printf 'B%.0s' $(seq 512))" "$(block)" "block after the refused pairs"

# Pairs swapping A and B while dd writes whole blocks of X and Y to the same LBA.
for c in X Y; do printf "$c%.0s" $(seq 512) >"$CASE_DIR/$c"; done
( while :; do
      for c in X Y; do dd if="$CASE_DIR/$c" of="$D" bs=512 seek=$LBA conv=notrunc oflag=direct status=none || exit 1; done
  done ) &
WRITER=$!
trap 'kill $WRITER 2>/dev/null; cleanup_case' EXIT
cid=20 wins=0
for round in $(seq 40); do
    if [ $((round % 2)) -eq 0 ]; then from=A to=B; else from=B to=A; fi
    fill $EXPECT $from
    fill $NEW $to
    # Half the rounds first put the expected data back, racing the writer.
    [ $((round % 4)) -lt 2 ] && printf "$from%.0s" $(seq 512) | dd of="$D" bs=512 seek=$LBA conv=notrunc oflag=direct status=none
    submit "$(sqe 0x05 1 $cid $EXPECT $LBA 0)" "$(sqe 0x01 2 $((cid + 1)) $NEW $LBA 0)"
    reap; a=$CQE; reap; b=$CQE
    case "$a/$b" in
        "$cid $SUCCESS/$((cid + 1)) $SUCCESS") wins=$((wins + 1)) ;;
        "$cid $COMPARE_FAILURE/$((cid + 1)) $FAILED_FUSED") ;;
        *) fail "round $round: pair completed as $a / $b" ;;
    esac
    # Whatever won, the block is one whole write: 512 equal bytes.
    [ "$(block | od -An -v -c | tr -s ' \n' '\n' | sed '/^$/d' | sort -u | wc -l)" -eq 1 ] || fail "round $round: torn block"
    cid=$((cid + 2))
done
kill $WRITER; wait $WRITER 2>/dev/null
trap cleanup_case EXIT
note "$wins of 40 racing pairs matched"
