# The owner-only rule (docs/PERMISSIONS.md), tested as user nobody:
#   - without --allow-other, nobody gets EACCES on every file and directory;
#   - with --allow-other, nobody reads what is readable and writes nothing;
#   - with --allow-other --allow-other-write, nobody writes what the owner may;
#   - images are created 0600, or 0644 when others may read the mount;
#   - image paths: a symbolic link to an image is followed; a dangling one,
#     a directory or a device node is refused with a one-line error.
. "$(dirname "$0")/lib.sh"

command -v setpriv >/dev/null || fail "setpriv (util-linux) is needed"
[ "$(id -u)" -eq 0 ] || { note "not root: cannot run as nobody; skipped"; exit 0; }
NOBODY_UID=$(id -u nobody) || fail "no user nobody"
chmod 755 "$CASE_DIR" "$MNT"
umask 022

as_nobody() { setpriv --reuid="$NOBODY_UID" --regid="$NOBODY_UID" --clear-groups -- "$@"; }

# probe FILE...: as nobody, one line per file: "PATH READ WRITE", each "ok"
# or the error text of opening it for reading, and for appending (nothing
# is read or written: streams such as events would block a read).
probe() {
    as_nobody bash -c '
        for f in "$@"; do
            r=$( { exec 3<"$f"; } 2>&1 ) && r=ok
            w=$( { exec 3>>"$f"; } 2>&1 ) && w=ok
            case $r in *"Permission denied"*) r=EACCES ;; esac
            case $w in *"Permission denied"*) w=EACCES ;; esac
            printf "%s %s %s\n" "${f#$0/}" "${r// /_}" "${w// /_}"
        done' "$MNT" "$@"
}

# Every file of the mount, as the owner sees it.
all_files() { (cd "$MNT" && find . -type f | sed 's|^\./||' | sort); }

note "owner only (no --allow-other)"
mount_nvmefs --namespace "$IMG/a.img,size=1M"
assert_eq 600 "$(stat -c %a "$IMG/a.img")" "mode of an image created for an owner-only mount"
mapfile -t files < <(all_files)
[ "${#files[@]}" -gt 50 ] || fail "only ${#files[@]} files in the mount"
out=$(as_nobody ls "$MNT" 2>&1) && fail "nobody listed the mount: $out"
case $out in *"Permission denied"*) ;; *) fail "ls as nobody: $out" ;; esac
bad=$(probe "${files[@]/#/$MNT/}" | awk '$2 != "EACCES" || $3 != "EACCES"')
[ -z "$bad" ] || fail "without --allow-other, nobody got other than EACCES: $bad"
unmount_nvmefs

note "--allow-other: modes are the gate, nobody writes nothing"
mount_nvmefs --namespace "$IMG/b.img,size=1M" --allow-other
assert_eq 644 "$(stat -c %a "$IMG/b.img")" "mode of an image created for an --allow-other mount"
mapfile -t files < <(all_files)
writable=$(cd "$MNT" && find . -type f -perm /022 | head -3)
[ -z "$writable" ] || fail "files writable by others: $writable"
probe "${files[@]/#/$MNT/}" >"$CASE_DIR/probe"
while read -r path r w; do
    mode=$(stat -c %a "$MNT/$path")
    [ "$w" = EACCES ] || fail "nobody opened $path (mode $mode) for writing: $w"
    if [ $((8#$mode & 4)) -ne 0 ]; then
        [ "$r" = ok ] || fail "nobody cannot read $path (mode $mode): $r"
    else
        [ "$r" = EACCES ] || fail "nobody read $path (mode $mode): $r"
    fi
done <"$CASE_DIR/probe"
for f in regs/cc regs/intms regs/nssr doorbells/sq0_tail doorbells/cq0_head mem cmd faults firmware namespaces/1/data; do
    grep -q "^$f [^ ]* EACCES$" "$CASE_DIR/probe" || fail "$f was not probed as EACCES for writing"
done
unmount_nvmefs

note "--allow-other --allow-other-write: nobody writes what the owner may"
mount_nvmefs --namespace "$IMG/b.img" --allow-other --allow-other-write
assert_eq 666 "$(stat -c %a "$MNT/regs/intms")" "mode of regs/intms with --allow-other-write"
assert_eq 444 "$(stat -c %a "$MNT/regs/cap")" "mode of regs/cap with --allow-other-write"
head -c 512 /dev/urandom >"$CASE_DIR/block"
as_nobody dd if="$CASE_DIR/block" of="$MNT/namespaces/1/data" bs=512 seek=3 conv=notrunc status=none ||
    fail "nobody could not write namespaces/1/data"
cmp <(dd if="$IMG/b.img" bs=512 skip=3 count=1 status=none) "$CASE_DIR/block" || fail "nobody's write is not in the image"
as_nobody sh -c "echo 1 >'$MNT/regs/intms'" || fail "nobody could not write regs/intms"
out=$(as_nobody sh -c "echo 1 >'$MNT/regs/cap'" 2>&1) && fail "nobody wrote regs/cap"
unmount_nvmefs

note "--allow-other-write alone is refused"
expect_cli_error 2 mount "$MNT" --namespace "$IMG/b.img" --allow-other-write
grep -qx "nvmefs: --allow-other-write needs --allow-other" "$CASE_DIR/cli.err" || fail "message: $(cat "$CASE_DIR/cli.err")"

note "image paths"
ln -s "$IMG/missing.img" "$IMG/dangling.img"
expect_cli_error 2 mount "$MNT" --namespace "$IMG/dangling.img,size=1M"
grep -qx "nvmefs: image $IMG/dangling.img is a symbolic link to $IMG/missing.img, which does not exist (create the target, or give its path)" \
    "$CASE_DIR/cli.err" || fail "dangling link message: $(cat "$CASE_DIR/cli.err")"
[ ! -e "$IMG/missing.img" ] || fail "the dangling link's target was created"
mkdir "$IMG/adir"
expect_cli_error 2 mount "$MNT" --namespace "$IMG/adir,size=1M"
grep -qx "nvmefs: image $IMG/adir is a directory, not a regular file" "$CASE_DIR/cli.err" || fail "directory message: $(cat "$CASE_DIR/cli.err")"
expect_cli_error 2 mount "$MNT" --namespace "/dev/null"
grep -qx "nvmefs: image /dev/null is a character device, not a regular file" "$CASE_DIR/cli.err" ||
    fail "device message: $(cat "$CASE_DIR/cli.err")"
ln -s "$IMG/b.img" "$IMG/link.img"
mount_nvmefs --namespace "$IMG/link.img"
cmp <(dd if="$MNT/namespaces/1/data" bs=512 skip=3 count=1 status=none) "$CASE_DIR/block" ||
    fail "the symbolic link was not followed to b.img"
unmount_nvmefs
[ -L "$IMG/link.img" ] || fail "the link was replaced"
