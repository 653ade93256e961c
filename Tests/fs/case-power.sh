# The volatile write cache (--vwc) and the power file (docs/WRITE-CACHE.md):
# unflushed writes are lost by a cut while fsynced and O_DSYNC ones survive,
# close() is not a Flush, info and stats show the cache, a seeded torn cut
# is reproducible, the built-in host comes back after each cut, bad words
# get EINVAL, and a clean unmount writes the cache back.
. "$(dirname "$0")/lib.sh"

M=$MNT
D=$M/namespaces/1/data
info_value() { sed -n "s/^$1: //p" "$M/namespaces/1/info"; }
power_value() { sed -n "s/^$1: //p" "$M/power"; }
pattern() { head -c "$2" /dev/zero | tr '\0' "$1"; }
# block LBA COUNT: the data file's blocks, as hex.
block() { dd if="$D" bs=512 skip="$1" count="${2:-1}" iflag=direct status=none | xxd -p | tr -d '\n'; }
hexof() { pattern "$1" "$2" | xxd -p | tr -d '\n'; }
zero_hex=$(hexof '\0' 512)

expect_cli_error 2 mount "$MNT" --namespace "$IMG/p.img,size=8M" --vwc-size 1M
grep -q -- "--vwc-size needs --vwc" "$CASE_DIR/cli.err" || fail "--vwc-size alone: $(cat "$CASE_DIR/cli.err")"
expect_cli_error 2 mount "$MNT" --namespace "$IMG/p.img,size=8M" --vwc --atomicity awupf=8
grep -q "awupf (8) is larger than awun (0)" "$CASE_DIR/cli.err" || fail "--atomicity: $(cat "$CASE_DIR/cli.err")"
expect_cli_error 2 mount "$MNT" --namespace "$IMG/p.img,size=8M" --vwc --atomicity awun=x

mount_nvmefs --namespace "$IMG/p.img,size=8M" --vwc --vwc-size 1M --atomicity awun=7,awupf=7
[ -e "$M/power" ] || fail "no power file with --vwc"
assert_eq "on" "$(info_value 'write cache')" "write cache state"
assert_eq "last cut: never" "$(grep '^last cut' "$M/power")" "power before a cut"

# fsynced, O_DSYNC and plain-closed writes, then a cut.
pattern A 4096 | dd of="$D" bs=4096 seek=0 oflag=direct conv=notrunc,fsync status=none || fail "dd fsync"
pattern C 4096 | dd of="$D" bs=4096 seek=2 oflag=direct conv=notrunc status=none || fail "dd plain"
# O_DSYNC goes with FUA: its own data reaches the image, the plain write stays cached.
pattern B 4096 | dd of="$D" bs=4096 seek=1 oflag=direct,dsync conv=notrunc status=none || fail "dd dsync"
assert_eq 4096 "$(info_value 'dirty bytes')" "dirty bytes before the cut (after an O_DSYNC write)"
assert_eq "1 (LBA+blocks: 16+8)" "$(info_value 'dirty ranges')" "dirty ranges"
[ "$(hexof C 512)" = "$(block 16)" ] || fail "a cached write does not read back"
grep -q '^write-cache  *cached=' "$M/namespaces/1/stats" || fail "no write-cache line in stats"
expect_errno "echo off > '$M/power'" EINVAL
expect_errno "echo 'cut torn' > '$M/power'" EINVAL
expect_errno "echo 'cut seed=x' > '$M/power'" EINVAL
echo cut >"$M/power" || fail "echo cut"
assert_eq 1 "$(power_value 'unsafe shutdowns')" "unsafe shutdowns"
assert_eq 4096 "$(power_value 'bytes dropped')" "bytes dropped"
# The host recovers (as after a reset); the data file serves the surviving image.
tries=100
until [ "$(block 16 2>/dev/null)" = "$zero_hex" ] || [ $tries -eq 0 ]; do sleep 0.1; tries=$((tries - 1)); done
[ "$(block 16)" = "$zero_hex" ] || fail "the unflushed write survived the cut"
[ "$(block 0)" = "$(hexof A 512)" ] || fail "the fsynced write was lost"
[ "$(block 8)" = "$(hexof B 512)" ] || fail "the O_DSYNC write was lost"
assert_eq 0 "$(info_value 'dirty bytes')" "dirty bytes after the cut"

# A seeded torn cut of 4 KiB writes (within AWUPF = 8 blocks: never torn)
# keeps the same writes every time.
survivors() {
    local i out=""
    for i in 0 1 2 3 4 5 6 7; do
        pattern "$(printf "\\x$((61 + i))")" 4096 | dd of="$D" bs=4096 seek=$((16 + i)) oflag=direct conv=notrunc status=none ||
            fail "dd $i"
    done
    echo "cut seed=$1 torn" >"$M/power" || fail "cut seed=$1"
    sleep 0.2
    for i in 0 1 2 3 4 5 6 7; do
        local b first last
        b=$(dd if="$D" bs=4096 skip=$((16 + i)) count=1 iflag=direct status=none | xxd -p | tr -d '\n')
        first=${b:0:2}; last=${b: -2}
        [ "$first" = "$last" ] || fail "write $i torn inside the atomic unit"
        out="$out$first"
    done
    # Wipe for the next round (written through a Flush).
    head -c 32768 /dev/zero | dd of="$D" bs=4096 seek=16 oflag=direct conv=notrunc,fsync status=none
    echo "$out"
}
s1=$(survivors 42)
s2=$(survivors 42)
assert_eq "$s1" "$s2" "survivors of two cuts with seed 42"
assert_eq 42 "$(power_value seed)" "seed shown"
assert_eq 3 "$(power_value 'unsafe shutdowns')" "unsafe shutdowns after three cuts"

# A clean unmount writes the cache back.
pattern D 4096 | dd of="$D" bs=4096 seek=5 oflag=direct conv=notrunc status=none || fail "dd before unmount"
unmount_nvmefs
[ "$(dd if="$IMG/p.img" bs=512 skip=40 count=1 status=none | xxd -p | tr -d '\n')" = "$(hexof D 512)" ] ||
    fail "the cache was not written back at unmount"
