# Mount with no --namespace: the default image is created under
# $XDG_DATA_HOME/nvmefs (else ~/.local/share/nvmefs), the daemonized mount
# returns when ready, README reads, unmount leaves no process.
. "$(dirname "$0")/lib.sh"

mount_nvmefs
img=$XDG_DATA_HOME/nvmefs/default.img
[ -f "$img" ] || fail "default image $img not created"
assert_eq 1073741824 "$(stat -c %s "$img")" "default image size"
[ "$(stat -c %b "$img")" -lt 64 ] || fail "default image is not sparse"
readme=$(cat "$MNT/README") || fail "cat README failed"
case $readme in README*) ;; *) fail "README does not list itself: $readme" ;; esac
[ -z "$(cat "$MNT/README" | grep -v '^[^ ]\+ \+[^ ].*$')" ] || fail "README lines are not 'name  text'"
pid=$(daemon_pid)
assert_eq "$pid" "${DAEMON_PIDS[0]}" "daemon pid"
# The daemon left its parent: it is in a session of its own.
assert_eq "$pid" "$(ps -o sid= -p "$pid" | tr -d ' ')" "daemon session id"
unmount_nvmefs
[ -z "$(ls -A "$XDG_RUNTIME_DIR/nvmefs")" ] || fail "pid file left: $(ls "$XDG_RUNTIME_DIR/nvmefs")"

# Without XDG_DATA_HOME: ~/.local/share/nvmefs, directories created.
export HOME=$CASE_DIR/home
unset XDG_DATA_HOME
mount_nvmefs
[ -f "$HOME/.local/share/nvmefs/default.img" ] || fail "no default image under \$HOME"
unmount_nvmefs

# The default image is reused as it is.
echo data | dd of="$HOME/.local/share/nvmefs/default.img" conv=notrunc status=none
mount_nvmefs
unmount_nvmefs
assert_eq data "$(head -c 4 "$HOME/.local/share/nvmefs/default.img")" "default image content"
