# The README's command examples outside the walkthrough (Format NVM, Write
# Uncorrectable, Copy, fused Compare and Write, Firmware, Device Self-test, Namespace
# Management, the write cache with --vwc), each run as written on a fresh
# mount with M set to it, and their output checked.
. "$(dirname "$0")/lib.sh"

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
# run_example NAME [MOUNT OPTIONS]: the block's output (the case fails if
# the block fails).
run_example() {
    local script=$CASE_DIR/$1.sh out
    bash "$ROOT/scripts/readme-block.sh" "$1-example" | sed -e "s#/tmp/#$CASE_DIR/#g" >"$script"
    [ -s "$script" ] || fail "README has no $1-example block"
    mount_nvmefs --namespace "$IMG/$1.img,size=16M" "${@:2}"
    out=$(M=$MNT bash -e -o pipefail "$script" 2>&1) || fail "README $1 example failed: $out"
    "$NVMEFS" unmount "$MNT" || fail "unmount after the $1 example"
    echo "$out"
}

out=$(run_example format)
echo "$out" | grep -q "^status SUCCESS" || fail "format example: $out"
echo "$out" | grep -qx "lba format: 4096+8 separate, PI type 1 (last 8 bytes)" || fail "format example: $out"

out=$(run_example uncorrectable)
echo "$out" | grep -q "^status SUCCESS" || fail "uncorrectable example: $out"
echo "$out" | grep -qx "uncorrectable: 4" || fail "uncorrectable example: $out"
echo "$out" | grep -qx "LBA 9: EIO" || fail "uncorrectable example: the marked LBA read: $out"

out=$(run_example copy)
echo "$out" | grep -q "^status SUCCESS" || fail "copy example: $out"

out=$(run_example fused)
for cqe in 00080002.00010001 00080002.00010002 00080004.050b0003 00080004.00130004; do
    echo "$out" | grep -q " ${cqe%.*} ${cqe#*.}$" || fail "fused example: no CQE ending ${cqe/./ }: $out"
done
echo "$out" | grep -qx "BBBBBBBB" || fail "fused example: the block after the pair: $out"

out=$(run_example firmware)
echo "$out" | grep -qx "2.0     " || fail "firmware example: FR: $out"
echo "$out" | grep -qx " 02" || fail "firmware example: AFI: $out"

out=$(run_example selftest)
echo "$out" | grep -Eq "^ *01 [0-9a-f]{2}$" || fail "self-test example: no short test running in the log: $out"

out=$(run_example nsmgmt)
[ "$(echo "$out" | grep -c "^status SUCCESS")" -eq 4 ] || fail "namespace management example: $out"
echo "$out" | grep -q "^status SUCCESS (0x0000) dw0 0x00000002" || fail "namespace management example: no NSID 2: $out"
[ "$(echo "$out" | grep -v "^status" | tr '\n' ' ')" = "1 2 1 " ] || fail "namespace management example: listings: $out"
if [ -e "$IMG/nsmgmt.img.nvmefs-ns/ns2.img" ]; then fail "namespace management example: the deleted image is still there"; fi

out=$(run_example passthru)
echo "$out" | grep -qx "identify status 0 model nvmefs.*" || fail "passthru example: identify: $out"
echo "$out" | grep -qx "write status 0" || fail "passthru example: write: $out"
echo "$out" | grep -qx "read status 0 same" || fail "passthru example: read: $out"

out=$(run_example writecache --vwc)
echo "$out" | grep -qx "dirty bytes: 4096" || fail "write cache example: dirty bytes: $out"
echo "$out" | sed -n 2p | grep -qx " *0" || fail "write cache example: the cut kept the write: $out"
