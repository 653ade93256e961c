# Crash consistency of ext4 on the volatile write cache (docs/WRITE-CACHE.md):
# ext4 through a loop device on namespaces/1/data with --vwc, a workload
# that writes files, fsyncs some and renames over others, then a power cut
# (every unflushed write lost, or a seeded subset kept, whole or torn; five
# cuts, about a second each). Writes fail
# from just before the cut on (fault rules), so nothing reaches the image
# after it; the image as the cut left it is copied, and fsck.ext4 -fn must
# find it clean and every fsynced file intact. The same with
# `mount -o nobarrier` (ext4 sends no flushes) must show damage: the tool
# can fail. Needs root, loop devices and e2fsprogs; skipped otherwise.
. "$(dirname "$0")/lib.sh"

if [ "$(id -u)" -ne 0 ] || ! command -v mkfs.ext4 >/dev/null || ! command -v losetup >/dev/null ||
    [ ! -e /dev/loop-control ]; then
    note "SKIP: needs root, loop devices and e2fsprogs"
    exit 0
fi

M=$MNT
FS=$CASE_DIR/fs
CHECK=$CASE_DIR/check
mkdir -p "$FS" "$CHECK"
LOOP=""
cleanup_ext4() {
    mountpoint -q "$FS" && umount -l "$FS"
    mountpoint -q "$CHECK" && umount "$CHECK"
    [ -n "$LOOP" ] && losetup -d "$LOOP" 2>/dev/null
    LOOP=""
}
trap 'cleanup_ext4; cleanup_case' EXIT

# run BARRIER(barrier|nobarrier) CUT-WORDS: one crash; prints "ok" when fsck
# is clean and every fsynced file is intact, else what was wrong.
run() {
    local opt=$1 words=$2 i dirty problems=""
    rm -f "$IMG/ext4.img"
    mount_nvmefs --namespace "$IMG/ext4.img,size=48M" --vwc --vwc-size 32M
    LOOP=$(losetup -f --show "$M/namespaces/1/data") || fail "losetup"
    mkfs.ext4 -q -F -E lazy_itable_init=0,lazy_journal_init=0 "$LOOP" || fail "mkfs.ext4"
    blockdev --flushbufs "$LOOP"
    # commit=600: no periodic journal commit (and its flush) during the run,
    # so the writes left unflushed before the cut really are.
    mount -o "$opt,commit=600" "$LOOP" "$FS" || fail "mount ext4 -o $opt"
    : >"$CASE_DIR/synced"
    for i in $(seq 1 24); do
        head -c $((4096 * (i % 5 + 1))) /dev/urandom >"$CASE_DIR/v$i"
        if [ $((i % 2)) -eq 0 ]; then
            dd if="$CASE_DIR/v$i" of="$FS/f$i" conv=fsync status=none || fail "write f$i"
            echo "f$i v$i" >>"$CASE_DIR/synced"
        else
            cp "$CASE_DIR/v$i" "$FS/f$i"
        fi
        if [ $((i % 6)) -eq 0 ]; then
            # Replace an fsynced file by a rename over it: either version is fine.
            head -c 6000 /dev/urandom >"$CASE_DIR/r$i"
            dd if="$CASE_DIR/r$i" of="$FS/tmp$i" conv=fsync status=none || fail "write tmp$i"
            mv "$FS/tmp$i" "$FS/f$((i - 2))"
            echo "f$((i - 2)) v$((i - 2)) r$i" >>"$CASE_DIR/synced"
            sed -i "/^f$((i - 2)) v$((i - 2))\$/d" "$CASE_DIR/synced"
        fi
    done
    # Direct writes without fsync: they sit in the controller's cache, unflushed.
    # ext4 may still flush the device on its own (a journal commit after the
    # renames above), emptying the cache; then write more until something is
    # left to lose, so that the cut always has unflushed data to drop.
    i=0
    while :; do
        i=$((i + 1))
        head -c 65536 /dev/urandom | dd of="$FS/direct$i" bs=65536 oflag=direct status=none || fail "direct$i"
        dirty=$(sed -n 's/^dirty bytes: //p' "$M/namespaces/1/info")
        [ "$i" -lt 3 ] || [ "${dirty:-0}" -eq 0 ] || break
        [ "$i" -lt 40 ] || fail "40 direct writes, and still nothing left in the write cache"
        [ "$i" -lt 3 ] || sleep 0.05
    done
    # From here nothing more reaches the image: what it holds is what the cut left.
    echo "1 write 0-$((48 * 2048 - 1)) EIO" >"$M/faults" || fail "fault rule"
    echo "1 flush 0-$((48 * 2048 - 1)) EIO" >"$M/faults" || fail "fault rule"
    echo "$words" >"$M/power" || fail "echo $words > power"
    cp "$IMG/ext4.img" "$CASE_DIR/after.img"
    sed -n 's/^bytes dropped: //p' "$M/power" >"$CASE_DIR/dropped"
    umount -l "$FS"
    losetup -d "$LOOP"; LOOP=""
    echo clear >"$M/faults"
    unmount_nvmefs
    if ! fsck.ext4 -fn "$CASE_DIR/after.img" >"$CASE_DIR/fsck.log" 2>&1; then
        # A journal to replay is no damage: fsck -fn does not replay it.
        if ! grep -q "needs_recovery\|recovering journal" "$CASE_DIR/fsck.log"; then problems="fsck;"; fi
    fi
    if mount -o loop "$CASE_DIR/after.img" "$CHECK" 2>/dev/null; then
        while read -r name a b; do
            if cmp -s "$CHECK/$name" "$CASE_DIR/$a"; then continue; fi
            if [ -n "$b" ] && cmp -s "$CHECK/$name" "$CASE_DIR/$b"; then continue; fi
            problems="$problems $name;"
        done <"$CASE_DIR/synced"
        umount "$CHECK"
        fsck.ext4 -fn "$CASE_DIR/after.img" >"$CASE_DIR/fsck2.log" 2>&1 || problems="$problems fsck-after-replay;"
    else
        problems="$problems mount;"
    fi
    echo "${problems:-ok}"
}

for words in "cut" "cut seed=1" "cut seed=1 torn" "cut seed=2 torn" "cut seed=3 torn"; do
    r=$(run barrier "$words")
    [ "$r" = ok ] || fail "ext4 with barriers, $words: $r ($(head -5 "$CASE_DIR/fsck.log"))"
    dropped=$(cat "$CASE_DIR/dropped")
    [ "$words" != cut ] || [ "${dropped:-0}" -gt 0 ] || fail "the cut dropped nothing: the test proves nothing"
    note "barrier, $words: ok ($dropped bytes dropped)"
done
r=$(run nobarrier "cut")
[ "$r" != ok ] || fail "ext4 -o nobarrier survived a cut intact: the damage went undetected"
note "nobarrier, cut: damage found ($r)"
