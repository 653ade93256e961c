# Copy (I/O opcode 0x19, NVMe 2.0) from the shell: patterns written with dd,
# copied through `cmd` (two source ranges in one command, format 0 entries
# as data-out), the destination read back with dd and compared; an
# overlapping copy; the refusals (descriptor format 1, a range past the end,
# more blocks than MCL) and a failed read that writes nothing; metadata
# copied on a 512+8 namespace, and Copy refused on a PI namespace.
. "$(dirname "$0")/lib.sh"

M=$MNT
D=$M/namespaces/1/data

# le VALUE BYTES: VALUE as BYTES little-endian bytes, in hex.
le() {
    local h i out=""
    h=$(printf '%0*x' $(($2 * 2)) "$1")
    for ((i = ${#h} - 2; i >= 0; i -= 2)); do out+=${h:i:2}; done
    echo "$out"
}
# entry SLBA BLOCKS: one 32-byte Source Range Entry (format 0), in hex.
entry() { echo "0000000000000000$(le "$1" 8)$(le $(($2 - 1)) 2)$(printf '0%.0s' $(seq 1 28))"; }

# copy SDLBA "SLBA:BLOCKS ..." [CDW12 extra bits]: prints the status line.
copy() {
    local hex="" n=0 r
    for r in $2; do hex+=$(entry "${r%%:*}" "${r##*:}"); n=$((n + 1)); done
    exec 3<>"$M/cmd"
    echo "io opcode=0x19 nsid=1 cdw10=$1 cdw11=0 cdw12=$(( (n - 1) | ${3:-0} )) data-out=$hex" >&3 || fail "cmd write"
    head -1 <&3
    exec 3>&-
}

mount_nvmefs --namespace "$IMG/c.img,size=16M"
head -c 4096 /dev/urandom >"$CASE_DIR/a"     # 8 blocks at LBA 8
head -c 1024 /dev/urandom >"$CASE_DIR/b"     # 2 blocks at LBA 100
dd if="$CASE_DIR/a" of="$D" bs=512 seek=8 conv=notrunc,fsync oflag=direct status=none || fail "dd a"
dd if="$CASE_DIR/b" of="$D" bs=512 seek=100 conv=notrunc,fsync oflag=direct status=none || fail "dd b"

# Two ranges to LBA 1000: a then b, back to back.
out=$(copy 1000 "8:8 100:2")
case $out in "status SUCCESS (0x0000) dw0 0x00000000"*) ;; *) fail "copy: $out" ;; esac
dd if="$D" bs=512 skip=1000 count=10 iflag=direct status=none >"$CASE_DIR/dest" || fail "dd the destination back"
cmp "$CASE_DIR/dest" <(cat "$CASE_DIR/a" "$CASE_DIR/b") || fail "the destination differs from the sources"

# Overlapping: LBAs 8-15 to 10-17; the source as it was before the command.
out=$(copy 10 "8:8")
case $out in "status SUCCESS"*) ;; *) fail "overlapping copy: $out" ;; esac
cmp <(dd if="$D" bs=512 skip=10 count=8 iflag=direct status=none) "$CASE_DIR/a" || fail "overlapping copy data"

# Refusals.
out=$(copy 2000 "8:1" $((1 << 8)))
case $out in "status INVALID_FIELD (0x4002)"*) ;; *) fail "descriptor format 1: $out" ;; esac
out=$(copy 2000 "8:1 32760:16")
case $out in "status LBA_RANGE (0x4080) dw0 0x00000001"*) ;; *) fail "a range past the end: $out" ;; esac
out=$(copy 2000 "0:128 200:1")
case $out in "status CMD_SIZE_LIMIT (0x4183)"*) ;; *) fail "129 blocks (MCL 128): $out" ;; esac

# A failed read: Unrecovered Read Error, and the destination is untouched.
echo "1 read 100-101 EIO once" >"$M/faults" || fail "cannot add the fault"
before=$(dd if="$D" bs=512 skip=3000 count=3 iflag=direct status=none | md5sum)
out=$(copy 3000 "8:1 100:2")
case $out in "status UNRECOVERED_READ"*) ;; *) fail "copy over a failed read: $out" ;; esac
after=$(dd if="$D" bs=512 skip=3000 count=3 iflag=direct status=none | md5sum)
assert_eq "$before" "$after" "destination after a failed read"
unmount_nvmefs

# Metadata is copied: 512+8 extended LBAs, two blocks written through cmd
# with their metadata (data-out holds data and metadata, block by block).
mount_nvmefs --namespace "$IMG/m.img,size=4M,ms=8,mset=1" --namespace "$IMG/p.img,size=4M,ms=8,pi=1"
blk1=$(head -c 512 /dev/urandom | od -An -v -tx1 | tr -d ' \n')
blk2=$(head -c 512 /dev/urandom | od -An -v -tx1 | tr -d ' \n')
exec 3<>"$M/cmd"
echo "io opcode=0x01 nsid=1 slba=20 nlb=1 data-out=${blk1}1111111111111111${blk2}2222222222222222" >&3
head -1 <&3 | grep -q "^status SUCCESS" || fail "write with metadata"
exec 3>&-
out=$(copy 40 "20:2")
case $out in "status SUCCESS"*) ;; *) fail "copy with metadata: $out" ;; esac
assert_eq 11111111111111112222222222222222 "$(xxd -p -s $((40 * 8)) -l 16 "$M/namespaces/1/metadata")" "copied metadata"
assert_eq "$blk1$blk2" "$(dd if="$M/namespaces/1/data" bs=512 skip=40 count=2 iflag=direct status=none | od -An -v -tx1 | tr -d ' \n')" \
    "copied data on the metadata namespace"
# Protection information: Copy is refused (Invalid Field, docs/METADATA.md).
exec 3<>"$M/cmd"
echo "io opcode=0x19 nsid=2 cdw10=40 cdw11=0 cdw12=0 data-out=$(entry 20 1)" >&3
out=$(head -1 <&3)
exec 3>&-
case $out in "status INVALID_FIELD (0x4002)"*) ;; *) fail "copy on a PI namespace: $out" ;; esac
