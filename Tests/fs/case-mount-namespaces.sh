# Mount with explicit namespaces: existing and missing images, relative
# paths, every namespace option; remount; unmount semantics.
. "$(dirname "$0")/lib.sh"

truncate -s 8M "$IMG/existing.img"
cd "$CASE_DIR"
mount_nvmefs --namespace img/existing.img,lbads=12 \
             --namespace img/new.img,size=16M,ms=8 \
             --namespace "$IMG/ro.img,size=4M,lbads=9,readonly" \
             --host none --mem 1M --queues 4 --mqes 63 --mdts 5 --cmb 128K \
             --serial SN1 --model "Model X" --cache
assert_eq 8388608 "$(stat -c %s "$IMG/existing.img")" "existing image size"
assert_eq 16777216 "$(stat -c %s "$IMG/new.img")" "new image size"
assert_eq 4194304 "$(stat -c %s "$IMG/ro.img")" "readonly image size"
cat "$MNT/README" >/dev/null || fail "cat README"
# A second mount of the same directory is refused before anything happens.
out=$("$NVMEFS" mount "$MNT" --namespace img/existing.img 2>&1); rc=$?
assert_eq 2 "$rc" "second mount status"
assert_eq "nvmefs: mountpoint $MNT is not empty" "$out" "second mount message"
unmount_nvmefs

# The same command line mounts again (images exist now, sizes match); --aerl
# reaches Identify Controller AERL (byte 259).
mount_nvmefs --namespace img/new.img,size=16M,ms=8 --namespace img/existing.img --aerl 7
assert_eq 7 "$(od -An -tu1 -j259 -N1 "$MNT/identify" | tr -d ' ')" "identify AERL from --aerl"
unmount_nvmefs

# The mountpoint given with a trailing slash and through a symlink.
ln -s "$MNT" "$CASE_DIR/link"
out=$("$NVMEFS" mount "$CASE_DIR/link/" --namespace img/existing.img 2>&1) || fail "mount via symlink: $out"
is_mounted "$MNT" || fail "mount via symlink: not mounted"
DAEMON_PIDS+=("$(daemon_pid)")
unmount_nvmefs

# unmount of something that is not an nvmefs mount: one line, status 1.
expect_cli_error 1 unmount "$MNT"
expect_cli_error 1 unmount "$CASE_DIR/nothing-here"
