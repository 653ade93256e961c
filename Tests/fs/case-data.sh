# namespaces/N/data through the built-in host: dd round trips (aligned,
# unaligned, 4 KiB LBAs), past the end, concurrent writers, fsync,
# fallocate, truncate, and I/O across a controller reset.
. "$(dirname "$0")/lib.sh"

mount_nvmefs --namespace "$IMG/a.img,size=8M" --namespace "$IMG/b.img,size=4M,lbads=12" --mem 64K --queues 4
M=$MNT
A=$M/namespaces/1/data B=$M/namespaces/2/data
src=$CASE_DIR/src
head -c $((3 << 20)) /dev/urandom >"$src"

assert_eq 8388608 "$(stat -c %s "$A")" "size of namespace 1 data"
assert_eq 4194304 "$(stat -c %s "$B")" "size of namespace 2 data"

# Aligned 1 MiB round trip, checked against the source and the image.
dd if="$src" of="$A" bs=1M count=2 seek=1 conv=notrunc status=none || fail "aligned write"
dd if="$A" of="$CASE_DIR/out" bs=1M count=2 skip=1 status=none || fail "aligned read"
cmp "$CASE_DIR/out" <(head -c $((2 << 20)) "$src") || fail "aligned read back differs"
sync "$A" 2>/dev/null
cmp <(dd if="$IMG/a.img" bs=1M skip=1 count=2 status=none) <(head -c $((2 << 20)) "$src") ||
    fail "image differs after aligned write"

# Unaligned offsets and lengths (read-modify-write of edge blocks).
cp "$IMG/a.img" "$CASE_DIR/model"   # what the namespace should hold (same bytes as now)
for spec in "1 3" "511 2" "513 1000" "4095 4097" "100000 12345" "1048575 70000"; do
    set -- $spec
    dd if="$src" of="$A" bs="$2" count=1 skip=7 seek="$1" iflag=skip_bytes oflag=seek_bytes conv=notrunc status=none ||
        fail "unaligned write $spec"
    dd if="$src" of="$CASE_DIR/model" bs="$2" count=1 skip=7 seek="$1" iflag=skip_bytes oflag=seek_bytes conv=notrunc status=none
done
# Read it all back with odd-sized reads too.
dd if="$A" of="$CASE_DIR/whole" bs=777 status=none || fail "read with bs=777"
cmp "$CASE_DIR/whole" "$CASE_DIR/model" || fail "unaligned writes: namespace differs from the model"
assert_eq "$(dd if="$A" bs=1 skip=4095 count=3 status=none | od -An -tx1)" \
          "$(dd if="$CASE_DIR/model" bs=1 skip=4095 count=3 status=none | od -An -tx1)" "3-byte read across a block edge"

# 4096-byte LBAs on the second namespace.
dd if="$src" of="$B" bs=4096 count=100 seek=3 conv=notrunc status=none || fail "4k write"
dd if="$src" of="$B" bs=1000 count=1 skip=1 seek=10 oflag=seek_bytes iflag=skip_bytes conv=notrunc status=none ||
    fail "unaligned write on 4k namespace"
dd if="$B" of="$CASE_DIR/b-out" bs=64K status=none || fail "read namespace 2"
cmp <(dd if="$CASE_DIR/b-out" bs=4096 skip=3 count=100 status=none) <(head -c 409600 "$src") || fail "4k round trip"
cmp <(dd if="$CASE_DIR/b-out" bs=1 skip=10 count=1000 status=none) <(dd if="$src" bs=1 skip=1 count=1000 status=none) ||
    fail "unaligned round trip on 4k namespace"
[ "$(dd if="$CASE_DIR/b-out" bs=1 count=10 status=none | od -An -tx1 | tr -d ' \n')" = 00000000000000000000 ] ||
    fail "bytes before an unaligned 4k write changed"

# Past the end: reads return 0 bytes, writes fail with ENOSPC; a write
# crossing the end is short.
assert_eq 0 "$(dd if="$A" bs=4096 skip=2048 count=1 status=none | wc -c)" "read at the end"
assert_eq 0 "$(dd if="$A" bs=4096 skip=5000 count=1 status=none | wc -c)" "read past the end"
assert_eq 100 "$(dd if="$A" bs=1 skip=$((8388608 - 100)) count=200 status=none | wc -c)" "read crossing the end"
expect_errno "dd if='$src' of='$A' bs=4096 count=1 seek=2048 conv=notrunc status=none" ENOSPC
expect_errno "dd if='$src' of='$A' bs=512 count=1 seek=$((8388608 + 7)) oflag=seek_bytes conv=notrunc status=none" ENOSPC

# Two concurrent writers: distinct ranges, then the same block, unaligned.
head -c $((1 << 20)) /dev/urandom >"$CASE_DIR/w1"
head -c $((1 << 20)) /dev/urandom >"$CASE_DIR/w2"
dd if="$CASE_DIR/w1" of="$A" bs=64K seek=64 conv=notrunc status=none & p1=$!
dd if="$CASE_DIR/w2" of="$A" bs=64K seek=80 conv=notrunc status=none & p2=$!
wait $p1 || fail "writer 1"; wait $p2 || fail "writer 2"
cmp <(dd if="$A" bs=64K skip=64 count=16 status=none) "$CASE_DIR/w1" || fail "concurrent writer 1 data"
cmp <(dd if="$A" bs=64K skip=80 count=16 status=none) "$CASE_DIR/w2" || fail "concurrent writer 2 data"
# Same 512-byte block, disjoint unaligned byte ranges: neither may be lost.
dd if=/dev/zero of="$A" bs=512 count=1 seek=15000 conv=notrunc status=none
for round in 1 2 3; do
    ( for i in $(seq 0 2 62); do printf 'A' | dd of="$A" bs=1 seek=$((15000 * 512 + i)) conv=notrunc status=none; done ) & q1=$!
    ( for i in $(seq 1 2 63); do printf 'B' | dd of="$A" bs=1 seek=$((15000 * 512 + i)) conv=notrunc status=none; done ) & q2=$!
    wait $q1; wait $q2
    got=$(dd if="$A" bs=1 skip=$((15000 * 512)) count=64 status=none)
    assert_eq "$(printf 'AB%.0s' $(seq 32))" "$got" "same-block concurrent writers, round $round"
done

# fsync = Flush (the image has the bytes once fsync returns).
dd if="$src" of="$A" bs=4096 count=4 seek=100 conv=notrunc,fsync status=none || fail "write with fsync"
cmp <(dd if="$IMG/a.img" bs=4096 skip=100 count=4 status=none) <(head -c 16384 "$src") || fail "image after fsync"
grep -q "^flush .*ops=[1-9]" "$M/namespaces/1/stats" || fail "no flush in stats: $(cat "$M/namespaces/1/stats")"

# fallocate: punch hole (deallocate) and zero range (Write Zeroes), with unaligned edges.
dd if="$src" of="$A" bs=64K count=4 seek=40 conv=notrunc status=none
fallocate -p -o $((40 * 65536 + 100)) -l 10000 "$A" || fail "punch hole"
fallocate -z -o $((42 * 65536)) -l 65536 "$A" || fail "zero range"
zeros() { head -c "$1" /dev/zero; }
cmp <(dd if="$A" bs=1 skip=$((40 * 65536 + 100)) count=10000 status=none) <(zeros 10000) || fail "punched range not zero"
cmp <(dd if="$A" bs=1 skip=$((40 * 65536)) count=100 status=none) <(head -c 100 "$src") || fail "punch hole touched bytes before"
cmp <(dd if="$A" bs=1 skip=$((40 * 65536 + 10100)) count=100 status=none) \
    <(dd if="$src" bs=1 skip=10100 count=100 status=none) || fail "punch hole touched bytes after"
cmp <(dd if="$A" bs=64K skip=42 count=1 status=none) <(zeros 65536) || fail "zero range not zero"
cmp <(dd if="$A" bs=64K skip=43 count=1 status=none) <(dd if="$src" bs=64K skip=3 count=1 status=none) ||
    fail "zero range touched the next block"
grep -q "^write-zeroes .*ops=[1-9]" "$M/namespaces/1/stats" || fail "no write zeroes in stats"
grep -q "^discard .*ops=[1-9]" "$M/namespaces/1/stats" || fail "no discard in stats"
expect_errno "fallocate -o 0 -l 4096 '$A'" EOPNOTSUPP

# truncate: to another size EINVAL, to the same size fine; O_TRUNC ignored.
expect_errno "truncate -s 4096 '$A'" EINVAL
truncate -s 8388608 "$A" || fail "truncate to the same size"
: >"$A" || fail "open with O_TRUNC"
assert_eq 8388608 "$(stat -c %s "$A")" "size after O_TRUNC"
cmp <(dd if="$A" bs=64K skip=64 count=16 status=none) "$CASE_DIR/w1" || fail "O_TRUNC changed data"

# Controller reset (CC.EN 1 -> 0) through regs/cc: the built-in host
# recovers; I/O still works. Then the same through bar0.
echo 0x460000 >"$M/regs/cc" || fail "reset through regs/cc"
dd if="$src" of="$A" bs=4096 count=8 seek=300 conv=notrunc status=none || fail "write after reset"
cmp <(dd if="$A" bs=4096 skip=300 count=8 status=none) <(head -c 32768 "$src") || fail "read after reset"
assert_eq 0x00000001 "$(cat "$M/regs/csts")" "csts after recovery"
printf '\x00\x00\x46\x00' | dd of="$M/bar0" bs=4 count=1 seek=$((0x14)) oflag=seek_bytes conv=notrunc status=none ||
    fail "reset through bar0"
dd if="$A" of=/dev/null bs=64K count=4 status=none || fail "read after bar0 reset"
cmp <(dd if="$A" bs=64K skip=64 count=16 status=none) "$CASE_DIR/w1" || fail "data after two resets"

unmount_nvmefs
cmp <(dd if="$IMG/a.img" bs=64K skip=64 count=16 status=none) "$CASE_DIR/w1" || fail "image after unmount"
cmp <(dd if="$IMG/a.img" bs=4096 skip=300 count=8 status=none) <(head -c 32768 "$src") || fail "image after unmount (post-reset write)"
