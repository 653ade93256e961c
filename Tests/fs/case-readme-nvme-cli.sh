# The README's "nvme-cli" section, run as written (every fenced sh block
# between the nvme-cli markers) on a default mount, with the binary and
# /tmp redirected into this case.
. "$(dirname "$0")/lib.sh"

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
mount_nvmefs
script=$CASE_DIR/nvme-cli.sh
bash "$ROOT/scripts/readme-block.sh" nvme-cli |
    sed -e "s#/tmp/#$CASE_DIR/#g" \
        -e "s#^export PATH=\$PWD/.build/release:\$PATH#export PATH=$(dirname "$NVMEFS"):\$PATH#" \
        -e "s#^M=~/nvmefs#M=$MNT#" >"$script"
grep -q "^M=$MNT" "$script" || fail "the nvme-cli section does not set M as expected"
out=$(bash -e -o pipefail "$script" 2>&1) || fail "the README's nvme-cli section failed: $out"
echo "$out" | grep -q "^mn *: nvmefs NVMe Ctrl" || fail "id-ctrl: $out"
echo "$out" | grep -q '"avail_spare":100' || fail "smart-log -o json: $out"
echo "$out" | grep -qx "write: Success" || fail "nvme write: $out"
echo "$out" | grep -qx "read back what was written" || fail "nvme read: $out"
echo "$out" | grep -q '^0000: 36 1b f4 1a 4e 56 4d 45 46 53' || fail "admin-passthru hexdump (VID, SSVID, SN): $out"
