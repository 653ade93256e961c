# regs/, bar0 and doorbells/: reads, writes, decoded registers, and every
# refused input with its errno (EINVAL, EACCES, ERANGE, EBUSY).
. "$(dirname "$0")/lib.sh"

mount_nvmefs --namespace "$IMG/r.img,size=1M" --host none --mem 64K --queues 4 --mqes 63
M=$MNT

# Reads: "0x" + fixed-width hex + newline.
assert_eq 0x00010400 "$(cat "$M/regs/vs")" "vs"
assert_eq "0x00010400" "$(head -c 11 "$M/regs/vs" | tr '\n' N | sed 's/N$//')" "vs ends with a newline"
[ "$(tail -c 1 "$M/regs/vs" | od -An -tx1 | tr -d ' ')" = 0a ] || fail "vs does not end with a newline"
cap=$(cat "$M/regs/cap")
[[ $cap =~ ^0x[0-9a-f]{16}$ ]] || fail "cap is not 16 hex digits: $cap"
assert_eq 63 $((cap & 0xffff)) "CAP.MQES from --mqes"
for r in intms intmc cc csts nssr aqa cmbloc cmbsz; do
    [[ $(cat "$M/regs/$r") =~ ^0x[0-9a-f]{8}$ ]] || fail "$r is not 8 hex digits: $(cat "$M/regs/$r")"
done
[[ $(cat "$M/regs/asq") =~ ^0x[0-9a-f]{16}$ ]] || fail "asq width"

# Read-only registers: mode 0444 and EACCES.
for r in cap vs cmbloc cmbsz; do
    assert_eq 444 "$(stat -c %a "$M/regs/$r")" "mode of regs/$r"
    expect_errno "echo 1 >'$M/regs/$r'" EACCES
done
assert_eq 644 "$(stat -c %a "$M/regs/cc")" "mode of regs/cc"

# Writes: hex or decimal, with or without a newline.
echo 0x3 >"$M/regs/intms" || fail "write intms"
assert_eq 0x00000003 "$(cat "$M/regs/intms")" "intms after set"
printf 1 >"$M/regs/intmc" || fail "write intmc"
assert_eq 0x00000002 "$(cat "$M/regs/intms")" "intms after clear"
assert_eq 0x00000002 "$(cat "$M/regs/intmc")" "intmc reads the mask"
echo 8192 >"$M/regs/asq" || fail "decimal write"
assert_eq 0x0000000000002000 "$(cat "$M/regs/asq")" "asq from decimal"
echo 0x0000000100003000 >"$M/regs/acq" || fail "64-bit write"
assert_eq 0x0000000100003000 "$(cat "$M/regs/acq")" "acq 64-bit"
echo 0x001f001f >"$M/regs/aqa"
assert_eq 0x001f001f "$(cat "$M/regs/aqa")" "aqa"

# Malformed: EINVAL, and nothing changes.
for bad in zz 0x 0xg1 -1 "1 2" 12abc "+5" "0x1f 0x2"; do
    expect_errno "printf '%s\n' '$bad' >'$M/regs/aqa'" EINVAL
done
# Too large for the register: ERANGE.
expect_errno "echo 0x100000000 >'$M/regs/aqa'" ERANGE
expect_errno "echo 4294967296 >'$M/regs/cc'" ERANGE
expect_errno "echo 0x10000000000000000 >'$M/regs/asq'" ERANGE
expect_errno "echo 99999999999999999999999 >'$M/regs/acq'" ERANGE
assert_eq 0x001f001f "$(cat "$M/regs/aqa")" "aqa unchanged by refused writes"
assert_eq 0x0000000000002000 "$(cat "$M/regs/asq")" "asq unchanged by refused writes"

# decoded: every register, field by field.
for r in cap vs intms intmc cc csts nssr aqa asq acq cmbloc cmbsz; do
    grep -q "^$r *: 0x" "$M/regs/decoded" || fail "decoded lacks $r"
done
grep -q "Maximum Queue Entries Supported (MQES) *: 64$" "$M/regs/decoded" || fail "decoded MQES"
grep -q "Admin Submission Queue Size (ASQS) *: 32$" "$M/regs/decoded" || fail "decoded ASQS"
grep -q "Enable (EN) *: no" "$M/regs/decoded" || fail "decoded EN"

# bar0: size, reads of any size and offset without side effects.
assert_eq $((0x1000 + 8 * 5)) "$(stat -c %s "$M/bar0")" "bar0 size"
assert_eq "$(( $(stat -c %s "$M/bar0") ))" "$(xxd "$M/bar0" | xxd -r | wc -c)" "xxd bar0 round trip"
assert_eq 00000401 "$(dd if="$M/bar0" bs=1 skip=7 count=4 status=none | od -An -tx1 | tr -d ' \n')" "odd-offset read"
assert_eq 1f001f000020 "$(dd if="$M/bar0" bs=3 skip=12 count=2 status=none | od -An -tx1 | tr -d ' \n')" "3-byte reads"
aqa_bytes=$(od -An -tx1 -j $((0x24)) -N 4 "$M/bar0" | tr -d ' \n')
assert_eq 1f001f00 "$aqa_bytes" "aqa through bar0"
# Writes: exactly 4 or 8 bytes, aligned.
w() { printf "$1" | dd of="$M/bar0" bs="$2" count=1 seek="$3" oflag=seek_bytes conv=notrunc status=none; }
expect_errno "printf '\\x01\\x00' | dd of='$M/bar0' bs=2 count=1 seek=12 oflag=seek_bytes conv=notrunc status=none" EINVAL
expect_errno "printf '\\x01\\x00\\x00' | dd of='$M/bar0' bs=3 count=1 seek=12 oflag=seek_bytes conv=notrunc status=none" EINVAL
expect_errno "printf '\\x01\\x00\\x00\\x00' | dd of='$M/bar0' bs=4 count=1 seek=14 oflag=seek_bytes conv=notrunc status=none" EINVAL
expect_errno "printf '\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00' | dd of='$M/bar0' bs=8 count=1 seek=$((0x2c)) oflag=seek_bytes conv=notrunc status=none" EINVAL
expect_errno "printf '\\x01\\x00\\x00\\x00' | dd of='$M/bar0' bs=4 count=1 seek=$((0x1028)) oflag=seek_bytes conv=notrunc status=none" EINVAL
assert_eq 0x00000002 "$(cat "$M/regs/intms")" "intms unchanged by refused bar0 writes"
w '\x04\x00\x00\x00' 4 $((0x0c)) || fail "4-byte INTMS write through bar0"
assert_eq 0x00000006 "$(cat "$M/regs/intms")" "intms set through bar0"
w '\x00\x50\x00\x00\x00\x00\x00\x00' 8 $((0x28)) || fail "8-byte ASQ write through bar0"
assert_eq 0x0000000000005000 "$(cat "$M/regs/asq")" "asq through bar0"
# A write to a read-only register through bar0 is MMIO: accepted and ignored.
w '\xff\xff\xff\xff' 4 $((0x08)) || fail "bar0 write to VS"
assert_eq 0x00010400 "$(cat "$M/regs/vs")" "vs after a bar0 write"

# doorbells/: one pair per queue id 0..--queues; writes are MMIO even for
# queues that do not exist (the controller records an invalid doorbell).
assert_eq 10 "$(ls "$M/doorbells" | wc -l)" "doorbell files"
echo 5 >"$M/doorbells/sq3_tail" || fail "doorbell of a missing queue"
echo 0x7 >"$M/doorbells/cq4_head" || fail "doorbell of a missing queue (cq)"
assert_eq 0x00000005 "$(cat "$M/doorbells/sq3_tail")" "doorbell reads the last value"
expect_errno "echo 0x100000000 >'$M/doorbells/sq1_tail'" ERANGE
expect_errno "echo five >'$M/doorbells/sq1_tail'" EINVAL
[ "$(cat "$M/regs/csts")" = 0x00000000 ] || fail "csts after doorbells of missing queues"
grep -q "^doorbell writes: 2$" "$M/stats" || fail "stats after doorbells: $(head -5 "$M/stats")"

# mem: random access over --mem bytes; past the end short reads / ENOSPC.
assert_eq 65536 "$(stat -c %s "$M/mem")" "mem size"
printf 'xyz' | dd of="$M/mem" bs=3 seek=$((65536 - 3)) oflag=seek_bytes conv=notrunc status=none || fail "write at the end of mem"
assert_eq xyz "$(dd if="$M/mem" bs=16 skip=$((65536 - 3)) iflag=skip_bytes count=1 status=none)" "short read at the end of mem"
assert_eq 0 "$(dd if="$M/mem" bs=16 skip=$((65536 + 5)) iflag=skip_bytes count=1 status=none | wc -c)" "read past mem"
expect_errno "printf 'q' | dd of='$M/mem' bs=1 seek=65536 conv=notrunc status=none" ENOSPC
assert_eq 2 "$(printf 'abcd' | dd of="$M/mem" bs=4 seek=$((65536 - 2)) oflag=seek_bytes conv=notrunc 2>&1 >/dev/null |
    grep -o '^[0-9]* bytes' | head -1 | cut -d' ' -f1)" "write crossing the end of mem is short"

# Refused writes are traced even with no reader (here read without blocking).
dd if="$M/trace" iflag=nonblock bs=64K count=1 status=none >"$CASE_DIR/trace.txt" 2>/dev/null
grep -q "nvmefs_file_refused file=regs/aqa errno=EINVAL" "$CASE_DIR/trace.txt" || fail "no refusal in trace: $(head "$CASE_DIR/trace.txt")"
grep -q "nvmefs_file_refused file=bar0 errno=EINVAL" "$CASE_DIR/trace.txt" || fail "no bar0 refusal in trace"
unmount_nvmefs

# With the built-in host: its queues' doorbells refuse writes (EBUSY), from
# files and bar0; the other queues' doorbells ring.
mount_nvmefs --namespace "$IMG/r.img" --mem 64K --queues 8
for f in sq0_tail cq0_head sq1_tail cq1_head sq4_tail; do
    expect_errno "echo 1 >'$M/doorbells/$f'" EBUSY
done
expect_errno "printf '\\x01\\x00\\x00\\x00' | dd of='$M/bar0' bs=4 count=1 seek=$((0x1000)) oflag=seek_bytes conv=notrunc status=none" EBUSY
expect_errno "printf '\\x01\\x00\\x00\\x00\\x00\\x00\\x00\\x00' | dd of='$M/bar0' bs=8 count=1 seek=$((0x1008)) oflag=seek_bytes conv=notrunc status=none" EBUSY
echo 3 >"$M/doorbells/sq7_tail" || fail "doorbell of a queue the host does not own"
head -1 "$M/queues/sq1" | grep -q "owner=builtin" || fail "sq1 owner: $(head -1 "$M/queues/sq1")"
# The device still works.
head -c 4096 "$M/namespaces/1/data" >/dev/null || fail "data read after refused doorbells"
unmount_nvmefs
