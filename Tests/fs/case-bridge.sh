# The FUSE bridge's generic behaviour, through the hidden selftest/ files:
# text attributes, mode bits as the contract, errno replies, a
# block-device-like binary file (zero-copy reads, O_TRUNC ignored, ENOSPC,
# truncate, fallocate, fsync), a blocking stream with interrupts, the fixed
# tree, stable inode numbers, a busy unmount.
. "$(dirname "$0")/lib.sh"

mount_nvmefs --namespace "$IMG/a.img,size=8M" --selftest-files
S=$MNT/selftest

# Text attributes: one write = one store; O_TRUNC and offsets ignored.
assert_eq hello "$(cat "$S/text")" "initial text"
echo world >"$S/text" || fail "write text"
assert_eq world "$(cat "$S/text")" "stored text"
printf 'abc' >>"$S/text" || fail "append text"
assert_eq abc "$(cat "$S/text")" "appended text is one store"
expect_errno "echo 1 > '$S/ro'" EACCES
expect_errno "cat '$S/wo'" EACCES
expect_ok "echo 1 > '$S/wo'"
expect_errno "echo 5 > '$S/erange'" ERANGE
assert_eq 0 "$(cat "$S/erange")" "refused write changed nothing"
assert_eq 444 "$(stat -c %a "$S/ro")" "ro mode"
assert_eq 200 "$(stat -c %a "$S/wo")" "wo mode"
assert_eq "$(id -u)" "$(stat -c %u "$S/text")" "owner is the mounting user"

# The tree is fixed.
expect_errno "touch '$MNT/newfile'" EACCES
expect_errno "mkdir '$MNT/newdir'" EACCES
expect_errno "rm -f '$S/text'" EACCES
expect_errno "mv '$S/text' '$S/text2'" EACCES
expect_errno "chmod 777 '$S/text'" EPERM
expect_errno "cat '$MNT/nothing'" ENOENT
expect_ok "touch '$S/text'"
assert_eq "blob emit erange ro stream text wo" "$(ls "$S" | tr '\n' ' ' | sed 's/ $//')" "selftest listing"
ino1=$(stat -c %i "$S/blob"); ls -l "$S" >/dev/null; ino2=$(stat -c %i "$S/blob")
assert_eq "$ino1" "$ino2" "inode number stable"
assert_eq 1 "$(stat -c %i "$MNT")" "root inode"

# Binary, block-device-like.
assert_eq 1048576 "$(stat -c %s "$S/blob")" "blob size"
head -c 262144 /dev/urandom >"$CASE_DIR/rand"
dd if="$CASE_DIR/rand" of="$S/blob" bs=64k seek=2 conv=notrunc,fsync status=none || fail "dd to blob"
dd if="$S/blob" of="$CASE_DIR/back" bs=64k skip=2 count=4 status=none || fail "dd from blob"
cmp -s "$CASE_DIR/rand" "$CASE_DIR/back" || fail "blob round trip differs"
dd if="$S/blob" of="$CASE_DIR/back1m" bs=1M count=1 iflag=direct status=none || fail "1 MiB direct read"
assert_eq 1048576 "$(stat -c %s "$CASE_DIR/back1m")" "1 MiB read size"
: >"$S/blob" || fail "open with O_TRUNC"
assert_eq 1048576 "$(stat -c %s "$S/blob")" "O_TRUNC ignored"
cmp -s "$CASE_DIR/rand" <(dd if="$S/blob" bs=64k skip=2 count=4 status=none) || fail "O_TRUNC changed data"
expect_errno "truncate -s 4096 '$S/blob'" EINVAL
expect_ok "truncate -s 1M '$S/blob'"
expect_errno "dd if=/dev/zero of='$S/blob' bs=4k count=1 seek=256 conv=notrunc status=none" ENOSPC
assert_eq 0 "$(dd if="$S/blob" bs=4k skip=256 status=none | wc -c)" "read past the end"
fallocate -z -o 131072 -l 65536 "$S/blob" || fail "fallocate zero range"
cmp -s <(head -c 65536 /dev/zero) <(dd if="$S/blob" bs=64k skip=2 count=1 status=none) || fail "zero range not zero"
fallocate -p -o 196608 -l 65536 "$S/blob" || fail "fallocate punch hole"
cmp -s <(head -c 65536 /dev/zero) <(dd if="$S/blob" bs=64k skip=3 count=1 status=none) || fail "hole not zero"
cmp -s <(tail -c 131072 "$CASE_DIR/rand") <(dd if="$S/blob" bs=64k skip=4 count=2 status=none) || fail "fallocate touched other bytes"
expect_errno "fallocate -o 0 -l 4096 '$S/blob'" EOPNOTSUPP
# Many readers at once (multi-threaded loop, asynchronous replies).
for i in $(seq 8); do dd if="$S/blob" of=/dev/null bs=4k count=256 status=none & done
wait || fail "parallel reads"

# The stream: a read blocks until lines arrive, from another writer.
cat "$S/stream" >"$CASE_DIR/stream.out" &
reader=$!
sleep 0.3
alive "$reader" || fail "stream reader did not block"
printf 'one\ntwo\n' >"$S/emit" || fail "emit"
for _ in $(seq 100); do grep -q two "$CASE_DIR/stream.out" && break; sleep 0.05; done
assert_eq "one two" "$(tr '\n' ' ' <"$CASE_DIR/stream.out" | sed 's/ $//')" "stream lines"
# An interrupted (killed) blocked reader is released at once.
kill -KILL "$reader"
wait_gone "$reader" 5 || fail "killed stream reader hangs"
timeout -s TERM 0.5 cat "$S/stream" >/dev/null
assert_eq 124 "$?" "blocked reader ended by SIGTERM"
# A slow reader loses the oldest lines and is told how many (capacity 64).
for i in $(seq 100); do echo "line$i"; done >"$S/emit"
first=$(timeout 5 head -n 2 "$S/stream" | tr '\n' ' ')
assert_eq "lost 36 events line37 " "$first" "lost-line notice"

# Unmounting while a reader holds a file: busy, nothing stops.
cat "$S/stream" >/dev/null &
reader=$!
sleep 0.2
out=$("$NVMEFS" unmount "$MNT" 2>&1); rc=$?
assert_eq 1 "$rc" "busy unmount status"
case $out in "nvmefs: cannot unmount $MNT: it is busy") ;; *) fail "busy unmount message: $out" ;; esac
is_mounted "$MNT" || fail "busy unmount unmounted"
kill -KILL "$reader"; wait_gone "$reader" 5 || fail "reader hangs"
wait "$reader" 2>/dev/null
unmount_nvmefs
