# Foreground mode: logs to stderr, stops cleanly on SIGTERM and SIGHUP;
# a daemonized mount stops cleanly on SIGTERM too.
. "$(dirname "$0")/lib.sh"

for sig in TERM HUP; do
    mount_nvmefs_fg --namespace "$IMG/a.img,size=8M"
    cat "$MNT/README" >/dev/null || fail "cat README (foreground)"
    kill -s "$sig" "$FG_PID"
    wait "$FG_PID"; rc=$?
    assert_eq 0 "$rc" "foreground exit status after SIG$sig"
    is_mounted "$MNT" && fail "still mounted after SIG$sig"
    grep -q "mounted at $MNT" "$FG_LOG" || fail "no 'mounted at' log line: $(cat "$FG_LOG")"
    grep -q "stopping on signal" "$FG_LOG" || fail "no stop log line after SIG$sig: $(cat "$FG_LOG")"
    [ -z "$(ls -A "$XDG_RUNTIME_DIR/nvmefs")" ] || fail "pid file left after SIG$sig"
done

# A signal that arrives before the loop runs is not lost. It is sent once
# the child runs nvmefs: one sent between bash's fork and exec is taken by
# bash's own handler and never reaches the program.
"$NVMEFS" mount -f "$MNT" --namespace "$IMG/a.img" 2>"$CASE_DIR/early.log" &
pid=$!
DAEMON_PIDS+=("$pid")
for _ in $(seq 200); do
    [ "$(readlink "/proc/$pid/exe" 2>/dev/null)" = "$(readlink -f "$NVMEFS")" ] && break
    sleep 0.005
done
kill -TERM "$pid"
wait_gone "$pid" 10 || fail "foreground daemon ignored an early SIGTERM"
is_mounted "$MNT" && fail "mounted after an early SIGTERM"

# Daemonized: SIGTERM to the daemon unmounts and exits.
mount_nvmefs --namespace "$IMG/a.img"
pid=$(daemon_pid)
kill -TERM "$pid"
wait_gone "$pid" 10 || fail "daemon did not exit on SIGTERM"
is_mounted "$MNT" && fail "still mounted after the daemon's SIGTERM"
[ -z "$(ls -A "$XDG_RUNTIME_DIR/nvmefs")" ] || fail "pid file left after SIGTERM"
exit 0
