# scripts/setup.sh, the README's first command, down its mount branch: it
# installs nothing here (packages present), builds, mounts a working default
# device at NVMEFS_MOUNT and says where; run again, it leaves the mount alone.
# (--debug reuses the suite's build; the release build is what tools/bench and
# the README's benchmark step use.)
. "$(dirname "$0")/lib.sh"

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
out=$(NVMEFS_MOUNT=$MNT bash "$ROOT/scripts/setup.sh" --debug 2>&1) || fail "setup.sh failed: $out"
DAEMON_PIDS+=("$(daemon_pid)")
echo "$out" | grep -q "nvmefs is mounted at $MNT" || fail "setup.sh did not say where it mounted: $out"
echo "$out" | grep -q "unmount with: .*nvmefs unmount $MNT" || fail "setup.sh did not say how to unmount: $out"
is_mounted "$MNT" || fail "setup.sh did not mount $MNT"
assert_eq 0x00000001 "$(cat "$MNT/regs/csts")" "the default device is enabled and ready"
[ "$(stat -c %s "$MNT/namespaces/1/data")" = 1073741824 ] || fail "default namespace is not 1 GiB"
[ -f "$XDG_DATA_HOME/nvmefs/default.img" ] || fail "default image not under XDG_DATA_HOME"
again=$(NVMEFS_MOUNT=$MNT bash "$ROOT/scripts/setup.sh" --debug 2>&1) || fail "setup.sh again failed: $again"
echo "$again" | grep -q "already mounted at $MNT" || fail "second setup.sh did not notice the mount: $again"
unmount_nvmefs
true
