# Namespace Management and Attachment from the shell (docs/NAMESPACES.md):
# create through `cmd` (data-out), attach, namespaces/2/ appearing live with
# its data file, dd into it, the notice in `events`, every refusal, the
# namespace and its data surviving a remount, detach, delete (files gone),
# the given namespace detached and attached again, and the mount errors of
# the namespace directory (in use, NSID collisions).
. "$(dirname "$0")/lib.sh"

M=$MNT
NSDIR=$CASE_DIR/nsdir
OPTS=(--namespace "$IMG/a.img,size=4M" --ns-dir "$NSDIR" --capacity 8M)

# run_cmd LINE: runs one command through cmd; prints its status line (and data).
run_cmd() {
    local out
    exec 3<>"$M/cmd" || fail "cannot open cmd"
    echo "$1" >&3 || { exec 3>&-; fail "cmd refused '$1'"; }
    out=$(cat <&3)
    exec 3>&-
    echo "$out"
}
# expect_status NAME LINE: the command completes with that status name.
expect_status() {
    local out
    out=$(run_cmd "$2")
    case $out in
        "status $1 "*) ;;
        *) fail "'$2': expected $1, got: $out" ;;
    esac
}
listing() { ls "$M/namespaces" | tr '\n' ' '; }

# Identify Namespace layout: NSZE (bytes 0-7), NCAP (8-15), FLBAS (26), DPS (29), NMIC (30).
CREATE_1M=00080000000000000008000000000000   # 2048 blocks of 512: 1 MiB
ATTACH=01000000                              # a controller list of one: CNTLID 0

mount_nvmefs "${OPTS[@]}"
assert_eq "1 " "$(listing)" "namespaces at mount"
assert_eq "status SUCCESS (0x0000) dw0 0x00000002 dw1 0x00000000" "$(run_cmd "admin opcode=0x0d data-out=$CREATE_1M")" "create"
assert_eq "1 " "$(listing)" "a created namespace is not attached"
# Identify CNS 10h lists it, CNS 02h does not.
run_cmd "admin opcode=0x06 cdw10=0x10 data-in=16" | grep -q "^00000000: 0100 0000 0200 0000 0000 0000 0000 0000" \
    || fail "allocated namespace list: $(run_cmd "admin opcode=0x06 cdw10=0x10 data-in=16")"
run_cmd "admin opcode=0x06 cdw10=0x02 data-in=16" | grep -q "^00000000: 0100 0000 0000 0000 0000 0000 0000 0000" \
    || fail "active namespace list: $(run_cmd "admin opcode=0x06 cdw10=0x02 data-in=16")"
# Identify Controller OACS (bytes 256-257): Format NVM, firmware, Namespace Management (bit 3), self-test,
# Doorbell Buffer Config (bit 8).
run_cmd "admin opcode=0x06 cdw10=1 data-in=4096" | grep -q "^00000100: 1e01" || fail "OACS is not 011Eh"

# Attach: namespaces/2/ appears with a 1 MiB data file.
expect_status SUCCESS "admin opcode=0x15 nsid=2 data-out=$ATTACH"
assert_eq "1 2 " "$(listing)" "namespaces after attach"
assert_eq 1048576 "$(stat -c %s "$M/namespaces/2/data")" "data file size"
grep -q "^origin: created" "$M/namespaces/2/info" || fail "info: $(cat "$M/namespaces/2/info")"
head -c 1048576 /dev/urandom >"$CASE_DIR/src"
dd if="$CASE_DIR/src" of="$M/namespaces/2/data" bs=64k conv=notrunc status=none || fail "dd into namespace 2"
cmp -s "$CASE_DIR/src" "$M/namespaces/2/data" || fail "namespace 2 reads back other data"
for _ in $(seq 1 50); do grep -q "Namespace Attribute Changed" "$M/events" && break; sleep 0.05; done
grep -q "info=Namespace Attribute Changed log-page=0x04" "$M/events" || fail "no notice in events: $(cat "$M/events")"

# Refusals.
expect_status NS_ALREADY_ATTACHED "admin opcode=0x15 nsid=2 data-out=$ATTACH"
expect_status CTRL_LIST_INVALID "admin opcode=0x15 nsid=2 cdw10=1 data-out=00000000"
expect_status CTRL_LIST_INVALID "admin opcode=0x15 nsid=2 cdw10=1 data-out=01000100"
expect_status NS_PRIVATE "admin opcode=0x15 nsid=2 cdw10=1 data-out=020000000000"
expect_status INVALID_FIELD "admin opcode=0x15 nsid=7 data-out=$ATTACH"
expect_status INVALID_NSID "admin opcode=0x15 nsid=0 data-out=$ATTACH"
expect_status INVALID_FIELD "admin opcode=0x0d nsid=1 data-out=$CREATE_1M"
expect_status INVALID_FIELD "admin opcode=0x0d nsid=1 cdw10=1"
expect_status INVALID_FORMAT "admin opcode=0x0d data-out=${CREATE_1M}0000000000000000000009"
expect_status THIN_PROVISION_NOTSUP "admin opcode=0x0d data-out=00080000000000000004000000000000"
expect_status NS_INSUFFICIENT_CAPAC "admin opcode=0x0d data-out=00400000000000000040000000000000"
assert_eq "1 2 " "$(listing)" "namespaces after the refusals"

# A remount brings namespace 2 back, attached, with its data.
unmount_nvmefs
assert_eq "nvmefs namespaces 1
nsid=2 attached=1 nmic=0" "$(cat "$NSDIR/namespaces.state")" "state file"
mount_nvmefs "${OPTS[@]}"
assert_eq "1 2 " "$(listing)" "namespaces after the remount"
cmp -s "$CASE_DIR/src" "$M/namespaces/2/data" || fail "namespace 2 lost its data over the remount"

# The namespace directory is this mount's: another mount of it is refused.
mkdir -p "$CASE_DIR/mnt2"
out=$("$NVMEFS" mount "$CASE_DIR/mnt2" --namespace "$IMG/b.img,size=1M" --ns-dir "$NSDIR" 2>&1); rc=$?
if is_mounted "$CASE_DIR/mnt2"; then "$NVMEFS" unmount "$CASE_DIR/mnt2"; fail "a second mount of $NSDIR succeeded"; fi
assert_eq 2 "$rc" "second mount of the namespace directory: exit status"
case $out in *"is in use by another nvmefs mount"*) ;; *) fail "second mount: $out" ;; esac

# Detach: the directory goes at once; a second detach is refused. A file
# opened before fails from then on (ENODEV), even once a new namespace has
# NSID 2 (checked below), as a removed disk's open files do.
exec 4<>"$M/namespaces/2/data"
expect_status SUCCESS "admin opcode=0x15 nsid=2 cdw10=1 data-out=$ATTACH"
assert_eq "1 " "$(listing)" "namespaces after detach"
[ -e "$M/namespaces/2" ] && fail "namespaces/2 still exists after detach"
expect_status NS_NOT_ATTACHED "admin opcode=0x15 nsid=2 cdw10=1 data-out=$ATTACH"

# The given namespace detaches and attaches like any other; it cannot be deleted.
expect_status SUCCESS "admin opcode=0x15 nsid=1 cdw10=1 data-out=$ATTACH"
assert_eq "" "$(listing)" "namespaces with namespace 1 detached"
expect_status SUCCESS "admin opcode=0x15 nsid=1 data-out=$ATTACH"
assert_eq "1 " "$(listing)" "namespace 1 attached again"
expect_status INVALID_FIELD "admin opcode=0x0d nsid=1 cdw10=1"

# Delete: the image and its metadata file go; the NSID is free again.
expect_status SUCCESS "admin opcode=0x0d nsid=2 cdw10=1"
[ -e "$NSDIR/ns2.img" ] && fail "ns2.img still exists after delete"
[ -e "$NSDIR/ns2.img.nvmefs-md" ] && fail "ns2.img.nvmefs-md still exists after delete"
expect_status INVALID_FIELD "admin opcode=0x15 nsid=2 data-out=$ATTACH"
assert_eq "status SUCCESS (0x0000) dw0 0x00000002 dw1 0x00000000" "$(run_cmd "admin opcode=0x0d data-out=$CREATE_1M")" "create again"
expect_status SUCCESS "admin opcode=0x15 nsid=2 data-out=$ATTACH"
if dd if=/dev/zero bs=512 count=1 conv=notrunc status=none >&4 2>"$CASE_DIR/stale.err"; then
    fail "a write through a file opened on the deleted namespace 2 reached the new one"
fi
grep -q "No such device" "$CASE_DIR/stale.err" || fail "stale file: $(cat "$CASE_DIR/stale.err")"
exec 4>&-
dd if=/dev/zero of="$M/namespaces/2/data" bs=512 count=1 conv=notrunc status=none || fail "write to the new namespace 2"
unmount_nvmefs

# With --host none the listing is the controller's attached namespaces (no data files).
mount_nvmefs "${OPTS[@]}" --host none
assert_eq "1 2 " "$(listing)" "namespaces with --host none"
[ -e "$M/namespaces/2/data" ] && fail "namespaces/2/data exists with --host none"
grep -q "^image: $NSDIR/ns2.img$" "$M/namespaces/2/info" || fail "info with --host none: $(cat "$M/namespaces/2/info")"
unmount_nvmefs

# A recorded namespace whose NSID a --namespace takes now: a one-line error.
expect_cli_error 2 mount "$MNT" --namespace "$IMG/a.img" --namespace "$IMG/b.img,size=1M" --ns-dir "$NSDIR"
grep -q "namespace 2 created in $NSDIR has the NSID of --namespace #2" "$CASE_DIR/cli.err" || fail "collision: $(cat "$CASE_DIR/cli.err")"
expect_cli_error 2 mount "$MNT" --namespace "$IMG/a.img" --ns-dir "$NSDIR" --max-namespaces 0
expect_cli_error 2 mount "$MNT" --namespace "$IMG/a.img" --ns-dir "$CASE_DIR/missing/ns"
# Delete all (FFFFFFFFh) keeps the given namespace.
mount_nvmefs "${OPTS[@]}"
expect_status SUCCESS "admin opcode=0x0d nsid=0xffffffff cdw10=1"
assert_eq "1 " "$(listing)" "namespaces after delete all"
assert_eq "nvmefs namespaces 1" "$(cat "$NSDIR/namespaces.state")" "state file after delete all"
unmount_nvmefs

# Without --ns-dir the directory is IMAGE.nvmefs-ns beside the first image, made by the first create.
mount_nvmefs --namespace "$IMG/c.img,size=1M"
[ -e "$IMG/c.img.nvmefs-ns" ] && fail "the default namespace directory exists before any create"
expect_status SUCCESS "admin opcode=0x0d data-out=$CREATE_1M"
[ -f "$IMG/c.img.nvmefs-ns/ns2.img" ] || fail "no ns2.img in the default namespace directory"
unmount_nvmefs
