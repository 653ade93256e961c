# --host none: bring the controller up and run NVMe commands with nothing
# but printf, dd, od and cmp through regs/, doorbells/ and mem: Identify,
# Create I/O CQ/SQ, Write, Flush, Read; check the data and the image.
. "$(dirname "$0")/lib.sh"

mount_nvmefs --namespace "$IMG/raw.img,size=1M" --host none --mem 1M --queues 4 --model "Raw Bringup Model"
M=$MNT

# Layout in mem (4 KiB pages): admin SQ, admin CQ, I/O SQ, I/O CQ, data.
ASQ=$((0x1000)) ACQ=$((0x2000)) IOSQ=$((0x3000)) IOCQ=$((0x4000))
IDBUF=$((0x5000)) WBUF=$((0x6000)) RBUF=$((0x7000))

# Reset state: controller disabled, not ready, the admin queue does not exist.
assert_eq 0x00000000 "$(cat "$M/regs/cc")" "cc at mount with --host none"
assert_eq 0x00000000 "$(cat "$M/regs/csts")" "csts at mount"
[ -z "$(ls "$M/queues")" ] || fail "queues exist before bring-up: $(ls "$M/queues")"

# Admin queues: 16 entries each (0's based 15), then enable.
echo 0x000f000f >"$M/regs/aqa" || fail "write aqa"
echo $ASQ >"$M/regs/asq" || fail "write asq"
printf '0x%x\n' $ACQ >"$M/regs/acq" || fail "write acq"
assert_eq 0x0000000000001000 "$(cat "$M/regs/asq")" "asq read back"
assert_eq 0x0000000000002000 "$(cat "$M/regs/acq")" "acq read back"
echo 0x460001 >"$M/regs/cc" || fail "write cc"
for _ in $(seq 100); do [ "$(cat "$M/regs/csts")" = 0x00000001 ] && break; sleep 0.05; done
assert_eq 0x00000001 "$(cat "$M/regs/csts")" "csts after enable"
grep -q "Ready (RDY) *: yes" "$M/regs/decoded" || fail "decoded does not show RDY"

# Identify Controller (CNS 1) into mem; the model number is bytes 24..63.
sqe $ASQ 0x06 1 0 $IDBUF 1 0 0
echo 1 >"$M/doorbells/sq0_tail" || fail "ring sq0"
wait_cqe $ACQ 1 >/dev/null
echo 1 >"$M/doorbells/cq0_head"
model=$(dd if="$M/mem" bs=1 skip=$((IDBUF + 24)) count=40 status=none | tr -d '\0')
assert_eq "Raw Bringup Model                       " "$model" "model number"
assert_eq 0x00000001 "$(cat "$M/doorbells/sq0_tail")" "sq0_tail reads the last value written"

# Create I/O CQ 1 (16 entries, contiguous, interrupts on vector 1), then SQ 1 on it.
admin_run 1 0x05 2 0 $IOCQ $((1 | 15 << 16)) $((0x3 | 1 << 16)) 0
admin_run 2 0x01 3 0 $IOSQ $((1 | 15 << 16)) $((0x1 | 1 << 16)) 0
echo 3 >"$M/doorbells/cq0_head"
[ -f "$M/queues/sq1" ] && [ -f "$M/queues/cq1" ] || fail "queues/sq1 and cq1 missing: $(ls "$M/queues")"
head -1 "$M/queues/sq1" | grep -q "owner=user" || fail "sq1 owner: $(head -1 "$M/queues/sq1")"

# Write LBA 0 from mem, Flush, Read LBA 0 into another page of mem.
head -c 512 /dev/urandom >"$CASE_DIR/block"
dd if="$CASE_DIR/block" of="$M/mem" bs=512 seek=$WBUF oflag=seek_bytes conv=notrunc status=none || fail "fill wbuf"
sqe $IOSQ 0x01 10 1 $WBUF 0 0 0
sqe $((IOSQ + 64)) 0x00 11 1 0 0 0 0
sqe $((IOSQ + 128)) 0x02 12 1 $RBUF 0 0 0
echo 1 >"$M/doorbells/sq1_tail"
wait_cqe $IOCQ 10 >/dev/null
echo 2 >"$M/doorbells/sq1_tail"
wait_cqe $((IOCQ + 16)) 11 >/dev/null
# The third ring goes through bar0: SQ 1 tail doorbell at 0x1000 + 2*1*4.
printf '\x03\x00\x00\x00' | dd of="$M/bar0" bs=4 count=1 seek=$((0x1008)) oflag=seek_bytes conv=notrunc status=none ||
    fail "ring sq1 through bar0"
wait_cqe $((IOCQ + 32)) 12 >/dev/null
assert_eq 0x00000003 "$(cat "$M/doorbells/sq1_tail")" "sq1_tail after the bar0 write"
assert_eq "03000000" "$(od -An -tx1 -j $((0x1008)) -N 4 "$M/bar0" | tr -d ' \n')" "bar0 doorbell read back"
echo 3 >"$M/doorbells/cq1_head"

dd if="$M/mem" of="$CASE_DIR/readback" bs=512 skip=$RBUF iflag=skip_bytes count=1 status=none
cmp "$CASE_DIR/block" "$CASE_DIR/readback" || fail "data read back differs from data written"
cmp -n 512 "$CASE_DIR/block" "$IMG/raw.img" || fail "image bytes differ after Write + Flush"
[ "$(od -An -tx1 -j 512 -N 16 "$IMG/raw.img" | tr -d ' \n')" = 00000000000000000000000000000000 ] ||
    fail "bytes after LBA 0 changed in the image"

# queues/cq1 shows the three completions, successful, with the head marked.
grep -c "status=SUCCESS" "$M/queues/cq1" | grep -qx 3 || fail "cq1 does not show 3 successes: $(cat "$M/queues/cq1")"
grep -q "^\[ 0\] .* cid=10 sqid=1 sqhd=1 phase=1" "$M/queues/cq1" || fail "cq1 slot 0: $(sed -n 2p "$M/queues/cq1")"
head -1 "$M/queues/cq1" | grep -q "head=3 tail=3" || fail "cq1 state: $(head -1 "$M/queues/cq1")"
grep -q "^\[ 2\] .*NVME_NVM_CMD_READ cid=12 nsid=1" "$M/queues/sq1" || fail "sq1 slot 2: $(sed -n 4p "$M/queues/sq1")"
# Reading a queue has no side effect.
before=$(cat "$M/queues/cq1" "$M/queues/sq1" "$M/stats")
after=$(cat "$M/queues/cq1" "$M/queues/sq1" "$M/stats")
assert_eq "$before" "$after" "queues/ read twice"
grep -q "^io NVME_NVM_CMD_WRITE (0x01): 1$" "$M/stats" || fail "stats: $(cat "$M/stats")"
grep -q "^vector=1 raised=[1-9]" "$M/interrupts" || fail "interrupts: $(head -3 "$M/interrupts")"

# No host-backed files without the built-in host.
for f in cmd identify log namespaces/1/data namespaces/1/identify; do
    [ -e "$M/$f" ] && fail "$f exists with --host none"
done
grep -q "^nsze: 2048$" "$M/namespaces/1/info" || fail "info: $(cat "$M/namespaces/1/info")"

# Controller reset deletes the queues.
echo 0x460000 >"$M/regs/cc"
for _ in $(seq 100); do [ "$(cat "$M/regs/csts")" = 0x00000000 ] && break; sleep 0.05; done
assert_eq 0x00000000 "$(cat "$M/regs/csts")" "csts after reset"
[ -z "$(ls "$M/queues")" ] || fail "queues left after reset: $(ls "$M/queues")"
unmount_nvmefs
cmp -n 512 "$CASE_DIR/block" "$IMG/raw.img" || fail "image bytes differ after unmount"
