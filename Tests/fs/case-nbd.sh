#!/usr/bin/env bash
# Namespaces on NBD exports (docs/NBD.md): nbdkit memory and file, qemu-nbd
# on a qcow2 image, DSM -> trim and Write Zeroes -> zero (nbdkit's log
# filter), server errors (nbdkit's error filter), a server killed mid-write
# and its return, and the one-line mount errors.
. "$(dirname "$0")/lib.sh"

command -v nbdkit >/dev/null || fail "nbdkit is not installed (scripts/setup.sh installs it)"
command -v qemu-nbd >/dev/null || fail "qemu-nbd is not installed (scripts/setup.sh installs qemu-utils)"

SERVER_PIDS=()
trap 'cleanup_case; for p in "${SERVER_PIDS[@]}"; do kill -KILL "$p" 2>/dev/null; done; wait 2>/dev/null' EXIT

# serve SOCKET COMMAND...: starts an NBD server (in the foreground, in the
# background) and waits for its socket; SERVER is its pid.
serve() {
    local sock=$1 tries=200; shift
    rm -f "$sock"
    "$@" >>"$CASE_DIR/server.log" 2>&1 &
    SERVER=$!
    SERVER_PIDS+=("$SERVER")
    # The socket appears at bind(); the server is up once it accepts.
    until python3 -c 'import socket, sys; socket.socket(socket.AF_UNIX).connect(sys.argv[1])' "$sock" 2>/dev/null; do
        alive "$SERVER" || fail "server $* did not start: $(tail -3 "$CASE_DIR/server.log")"
        tries=$((tries - 1)); [ "$tries" -gt 0 ] || fail "server $* did not create $sock"
        sleep 0.05
    done
}
stop_server() { kill -KILL "$SERVER" 2>/dev/null; wait "$SERVER" 2>/dev/null; return 0; }

D=$MNT/namespaces/1/data
S=$CASE_DIR/nbd.sock
head -c $((4 << 20)) /dev/urandom >"$CASE_DIR/src"
zeros() { head -c "$1" /dev/zero; }

note "nbdkit memory, with the log filter: round trip, trim, zero"
serve "$S" nbdkit -f -U "$S" --filter=log memory 16M logfile="$CASE_DIR/nbdkit.log"
mount_nvmefs --namespace "nbd+unix:///?socket=$S"
assert_eq $((16 << 20)) "$(stat -c %s "$D")" "data file size"
grep -q "^image: nbd+unix:///?socket=$S\$" "$MNT/namespaces/1/info" || fail "info: $(cat "$MNT/namespaces/1/info")"
dd if="$CASE_DIR/src" of="$D" bs=64K seek=16 conv=notrunc,fsync status=none || fail "write"
cmp <(dd if="$D" bs=64K skip=16 count=64 status=none) "$CASE_DIR/src" || fail "read back"
fallocate -p -o $((1 << 20)) -l 65536 "$D" || fail "punch hole (DSM deallocate)"
fallocate -z -o $((2 << 20)) -l 65536 "$D" || fail "zero range (Write Zeroes)"
cmp <(dd if="$D" bs=64K skip=16 count=1 status=none) <(zeros 65536) || fail "trimmed range not zero"
cmp <(dd if="$D" bs=64K skip=32 count=1 status=none) <(zeros 65536) || fail "zeroed range not zero"
cmp <(dd if="$D" bs=64K skip=33 count=1 status=none) <(dd if="$CASE_DIR/src" bs=64K skip=17 count=1 status=none) ||
    fail "zero range touched the next block"
grep -q "Trim .*offset=0x100000 count=0x10000" "$CASE_DIR/nbdkit.log" || fail "no NBD trim in the server log"
grep -q "Zero .*offset=0x200000 count=0x10000" "$CASE_DIR/nbdkit.log" || fail "no NBD zero in the server log"
grep -q "Flush" "$CASE_DIR/nbdkit.log" || fail "no NBD flush in the server log"
unmount_nvmefs
stop_server

note "nbd://HOST:PORT/ over TCP (loopback)"
port=$((20000 + RANDOM % 20000))
nbdkit -f -i 127.0.0.1 -p "$port" memory 4M >>"$CASE_DIR/server.log" 2>&1 &
SERVER=$!; SERVER_PIDS+=("$SERVER")
for _ in $(seq 200); do
    python3 -c 'import socket, sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])))' "$port" 2>/dev/null && break
    alive "$SERVER" || fail "nbdkit on port $port did not start: $(tail -3 "$CASE_DIR/server.log")"
    sleep 0.05
done
mount_nvmefs --namespace "nbd://127.0.0.1:$port/"
dd if="$CASE_DIR/src" of="$D" bs=64K count=16 conv=notrunc,fsync status=none || fail "write over TCP"
cmp <(dd if="$D" bs=64K count=16 status=none) <(head -c $((1 << 20)) "$CASE_DIR/src") || fail "read back over TCP"
unmount_nvmefs
stop_server

note "nbdkit file: the bytes land in the file"
truncate -s 8M "$IMG/raw.img"
serve "$S" nbdkit -f -U "$S" file "$IMG/raw.img"
mount_nvmefs --namespace "nbd+unix:///?socket=$S,lbads=12"
assert_eq 4096 "$(cat "$MNT/namespaces/1/info" | sed -n 's/^lba size: //p')" "LBA size"
dd if="$CASE_DIR/src" of="$D" bs=1M seek=2 conv=notrunc,fsync status=none || fail "write"
unmount_nvmefs
stop_server
cmp <(dd if="$IMG/raw.img" bs=1M skip=2 count=4 status=none) "$CASE_DIR/src" || fail "raw image content"

note "read-only export: write-protected namespace"
serve "$S" nbdkit -f -U "$S" -r file "$IMG/raw.img"
mount_nvmefs --namespace "nbd+unix:///?socket=$S"
grep -q "^readonly: yes" "$MNT/namespaces/1/info" || fail "read-only export not write-protected"
cmp <(dd if="$D" bs=1M skip=2 count=4 status=none) "$CASE_DIR/src" || fail "read of a read-only export"
dd if=/dev/zero of="$D" bs=4096 count=1 conv=notrunc status=none 2>/dev/null && fail "write to a read-only export succeeded"
unmount_nvmefs
stop_server

note "qemu-nbd on qcow2, checked against a raw copy with qemu-img compare"
qemu-img create -q -f qcow2 "$IMG/q.qcow2" 8M || fail "qemu-img create"
truncate -s 8M "$IMG/copy.raw"
serve "$S" qemu-nbd -k "$S" -f qcow2 -x disk -t "$IMG/q.qcow2"
mount_nvmefs --namespace "nbd+unix:///disk?socket=$S"
dd if="$CASE_DIR/src" of="$D" bs=64K seek=8 conv=notrunc,fsync status=none || fail "write to qcow2"
dd if="$CASE_DIR/src" of="$IMG/copy.raw" bs=64K seek=8 conv=notrunc status=none
fallocate -z -o $((1 << 20)) -l 65536 "$D" || fail "zero range on qcow2"
dd if=/dev/zero of="$IMG/copy.raw" bs=64K seek=16 count=1 conv=notrunc status=none
cmp <(dd if="$D" bs=64K skip=8 count=64 status=none) <(dd if="$IMG/copy.raw" bs=64K skip=8 count=64 status=none) ||
    fail "qcow2 read back"
unmount_nvmefs
stop_server
qemu-img compare -q -f raw -F qcow2 "$IMG/copy.raw" "$IMG/q.qcow2" || fail "qemu-img compare: qcow2 differs from the raw copy"

note "server errors (nbdkit's error filter) become NVMe errors, then clear"
serve "$S" nbdkit -f -U "$S" --filter=error memory 1M error=EIO error-rate=100% error-file="$CASE_DIR/inject"
mount_nvmefs --namespace "nbd+unix:///?socket=$S"
dd if="$CASE_DIR/src" of="$D" bs=4096 count=1 conv=notrunc,fsync status=none || fail "write before errors"
touch "$CASE_DIR/inject"
expect_errno "dd if='$D' of=/dev/null bs=4096 count=1 iflag=direct status=none" EIO
expect_errno "dd if=/dev/zero of='$D' bs=4096 count=1 oflag=direct conv=notrunc status=none" EIO
rm -f "$CASE_DIR/inject"
cmp <(dd if="$D" bs=4096 count=1 iflag=direct status=none) <(head -c 4096 "$CASE_DIR/src") || fail "read after errors"
grep -q "status" "$MNT/namespaces/1/info" || true
unmount_nvmefs
stop_server

note "a server killed mid-write: clear errors, no hang, recovery when it returns"
truncate -s 64M "$IMG/k.img"
serve "$S" nbdkit -f -U "$S" file "$IMG/k.img"
mount_nvmefs --namespace "nbd+unix:///?socket=$S"
head -c $((64 << 20)) /dev/urandom >"$CASE_DIR/big"
timeout 60 dd if="$CASE_DIR/big" of="$D" bs=1M oflag=direct conv=notrunc status=none 2>"$CASE_DIR/dd.err" & writer=$!
sleep 0.2
stop_server
wait $writer; rc=$?
[ "$rc" -ne 124 ] || fail "the write hung after the server died"
[ "$rc" -ne 0 ] || note "the write finished before the server died"
is_mounted "$MNT" || fail "the mount went away with the server"
[ "$rc" -eq 0 ] || grep -qi "input/output error\|not connected" "$CASE_DIR/dd.err" || fail "unclear error: $(cat "$CASE_DIR/dd.err")"
expect_errno "dd if='$D' of=/dev/null bs=4096 count=1 iflag=direct status=none" EIO
serve "$S" nbdkit -f -U "$S" file "$IMG/k.img"
ok=0
for _ in $(seq 100); do
    if dd if="$CASE_DIR/src" of="$D" bs=64K count=4 oflag=direct conv=notrunc status=none 2>/dev/null; then ok=1; break; fi
    sleep 0.1
done
[ "$ok" -eq 1 ] || fail "writes did not work again after the server returned"
cmp <(dd if="$D" bs=64K count=4 iflag=direct status=none) <(head -c $((256 << 10)) "$CASE_DIR/src") || fail "read after recovery"
unmount_nvmefs
cmp <(head -c $((256 << 10)) "$IMG/k.img") <(head -c $((256 << 10)) "$CASE_DIR/src") || fail "file after recovery"
stop_server

note "the README's qemu-nbd example, as written"
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
bash "$ROOT/scripts/readme-block.sh" nbd-example |
    sed -e "s#/tmp/#$CASE_DIR/ex-#g" -e "s#^nvmefs #\"\$NVMEFS\" #" >"$CASE_DIR/example.sh"
[ -s "$CASE_DIR/example.sh" ] || fail "README has no nbd-example block"
out=$(bash -e -o pipefail "$CASE_DIR/example.sh" 2>&1)
rc=$?
[ -f "$CASE_DIR/ex-disk.pid" ] && SERVER_PIDS+=("$(cat "$CASE_DIR/ex-disk.pid")")
[ "$rc" -eq 0 ] || fail "README nbd example failed: $out"
expected="lba size: 4096
image: nbd+unix:///disk?socket=$CASE_DIR/ex-disk.sock
hello, qcow2"
assert_eq "$expected" "$out" "README nbd example output"

note "mount errors: one line, exit 2"
expect_cli_error 2 mount "$MNT" --namespace "nbd+unix:///?socket=$CASE_DIR/absent.sock"
serve "$S" nbdkit -f -U "$S" memory 1000
expect_cli_error 2 mount "$MNT" --namespace "nbd+unix:///?socket=$S"
stop_server
expect_cli_error 2 mount "$MNT" --namespace "nbd+unix:///?socket=$S,ms=8"
expect_cli_error 2 mount "$MNT" --namespace "nbd+unix:///?socket=$S,size=1M"
