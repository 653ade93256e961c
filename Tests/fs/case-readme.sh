# The README walkthrough, run as written: every fenced sh block between the
# walkthrough markers, with the mount point, the binary and /tmp redirected
# into this case's directory.
. "$(dirname "$0")/lib.sh"

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
[ -f "$ROOT/README.md" ] || fail "README.md not found"
mount_nvmefs
script=$CASE_DIR/walkthrough.sh
bash "$ROOT/scripts/readme-block.sh" walkthrough |
    sed -e "s#/tmp/#$CASE_DIR/#g" \
        -e "s#^export PATH=\$PWD/.build/release:\$PATH#export PATH=$(dirname "$NVMEFS"):\$PATH#" \
        -e "s#^M=~/nvmefs#M=$MNT#" >"$script"
grep -q "^M=$MNT" "$script" || fail "walkthrough does not set M as expected"
[ "$(grep -c . "$script")" -gt 20 ] || fail "walkthrough extraction found too little: $(cat "$script")"
rc=0
out=$(bash -e -o pipefail "$script" 2>&1) || rc=$?
if is_mounted "$CASE_DIR/raw"; then
    "$NVMEFS" unmount "$CASE_DIR/raw" || fusermount3 -u "$CASE_DIR/raw"
    fail "the walkthrough's raw mount was left behind (walkthrough exit $rc): $out"
fi
if is_mounted "$CASE_DIR/pi"; then
    "$NVMEFS" unmount "$CASE_DIR/pi" || fusermount3 -u "$CASE_DIR/pi"
    fail "the walkthrough's PI mount was left behind (walkthrough exit $rc): $out"
fi
[ "$rc" -eq 0 ] || fail "walkthrough failed (exit $rc): $out"
echo "$out" | grep -qx same || fail "dd round trip did not print 'same': $out"
echo "$out" | grep -qx "namespace 2 holds the blob" || fail "the created namespace did not hold the blob: $out"
echo "$out" | grep -qx "1" || fail "after the delete namespaces/ did not list 1 alone: $out"
echo "$out" | grep -q "read failed as asked" || fail "fault injection did not fail the read: $out"
echo "$out" | grep -qx "same with PI" || fail "dd round trip on the PI namespace did not print 'same with PI': $out"
echo "$out" | grep -q "00000008: 0000 0000 0000 0001" || fail "xxd of the metadata file did not show LBA 1's PI: $out"
echo "$out" | grep -qx "guard check failed" || fail "the flipped guard did not fail the read: $out"
echo "$out" | grep -q "^status E2E_GUARD_ERROR (0x0282)" || fail "cmd did not show the guard check status: $out"
echo "$out" | grep -qx "corruption caught" || fail "the corrupt fault was not caught by the PI check: $out"
echo "$out" | grep -q "status SUCCESS" || fail "cmd did not show a successful completion: $out"
echo "$out" | grep -q "^nvmefs NVMe Ctrl" || fail "raw Identify did not print the model: $out"
echo "$out" | grep -q "^0x00000001$" || fail "raw bring-up never showed CSTS.RDY: $out"
