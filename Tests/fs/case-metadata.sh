# Namespaces with metadata and protection information: the format options,
# namespaces/N/info and namespaces/N/metadata, the metadata file surviving a
# remount, option errors, dd on several formats, and ext4 through a loop
# device on 4096+8 PI type 1.
. "$(dirname "$0")/lib.sh"

LOOP=""
LOOPMNT=$CASE_DIR/ext4
cleanup_metadata() {
    # The loop device first (it holds the data file open), then the mount.
    mountpoint -q "$LOOPMNT" 2>/dev/null && umount "$LOOPMNT"
    [ -n "$LOOP" ] && losetup -d "$LOOP" 2>/dev/null
    cleanup_case
}
trap cleanup_metadata EXIT

M=$MNT
D=$M/namespaces/1/data
src=$CASE_DIR/src
head -c $((4 << 20)) /dev/urandom >"$src"

# info_value KEY: the value of "KEY: value" in namespaces/1/info.
info_value() { sed -n "s/^$1: //p" "$M/namespaces/1/info"; }

# --- 4096+8 separate, PI type 1 --------------------------------------------
mount_nvmefs --namespace "$IMG/pi.img,size=8M,lbads=12,ms=8,pi=1"
assert_eq 8388608 "$(stat -c %s "$D")" "data file size (data bytes only)"
assert_eq 16384 "$(stat -c %s "$M/namespaces/1/metadata")" "metadata file size (2048 LBAs x 8)"
assert_eq 4096 "$(info_value 'lba size')" "info lba size"
assert_eq 8 "$(info_value ms)" "info ms"
assert_eq separate "$(info_value metadata)" "info metadata"
assert_eq 1 "$(info_value 'pi type')" "info pi type"
assert_eq "0 (PI in the last 8 bytes)" "$(info_value pil)" "info pil"
assert_eq idle "$(info_value format)" "info format"
assert_eq "$IMG/pi.img.nvmefs-md" "$(info_value 'metadata file')" "info metadata file"
[ -f "$IMG/pi.img.nvmefs-md" ] || fail "no metadata file beside the image"

dd if="$src" of="$D" bs=1M count=4 conv=notrunc status=none || fail "dd write on 4096+8 PI type 1"
dd if="$D" of="$CASE_DIR/out" bs=1M count=4 status=none || fail "dd read on 4096+8 PI type 1"
cmp "$CASE_DIR/out" "$src" || fail "4096+8 PI type 1: data read back differs"
cmp <(head -c $((4 << 20)) "$IMG/pi.img") "$src" || fail "the image does not hold exactly the data"

# The PI tuples of LBAs 0, 1 and 1000: guard = CRC-16 T10-DIF of the block,
# application tag 0, reference tag = LBA (big-endian, as on the wire).
for lba in 0 1 1000; do
    tuple=$(xxd -p -s $((lba * 8)) -l 8 "$M/namespaces/1/metadata")
    want=$(python3 - "$src" "$lba" <<'PY'
import sys
data = open(sys.argv[1], "rb").read()
lba = int(sys.argv[2])
crc = 0
for b in data[lba * 4096:(lba + 1) * 4096]:
    crc ^= b << 8
    for _ in range(8):
        crc = ((crc << 1) ^ 0x8BB7 if crc & 0x8000 else crc << 1) & 0xFFFF
print("%04x0000%08x" % (crc, lba))
PY
)
    assert_eq "$want" "$tuple" "PI tuple of LBA $lba in namespaces/1/metadata"
done
# A block never written reads as deallocated PI (all FFh) in the metadata file.
assert_eq ffffffffffffffff "$(xxd -p -s $((2000 * 8)) -l 8 "$M/namespaces/1/metadata")" "PI of an unwritten LBA"
expect_errno "echo x > '$M/namespaces/1/metadata'" EACCES
unmount_nvmefs

# --- remount: the recorded format wins; conflicting options are refused ----
mount_nvmefs --namespace "$IMG/pi.img"
assert_eq "4096+8 separate, PI type 1 (last 8 bytes)" "$(info_value 'lba format')" "format after remount"
cmp <(dd if="$D" bs=1M count=4 status=none) "$src" || fail "data after remount differs"
unmount_nvmefs
expect_cli_error 2 mount "$MNT" --namespace "$IMG/pi.img,lbads=12,ms=8,pi=2"
expect_cli_error 2 mount "$MNT" --namespace "$IMG/pi.img,lbads=9"
# The same options again are fine.
mount_nvmefs --namespace "$IMG/pi.img,lbads=12,ms=8,pi=1"
unmount_nvmefs

# --- bad options ----------------------------------------------------------
for opts in ms=7 pi=1 ms=0,pi=1 lbads=10 mset=2 pi=4 pil=2 ms=8,pil=1 mset=1 ms=8,ms=8; do
    expect_cli_error 2 mount "$MNT" --namespace "$IMG/bad.img,$opts"
done
[ -e "$IMG/bad.img" ] && fail "a refused mount created an image"

# --- 512+16 separate (no PI) and 512+8 extended (no PI): dd round trips -----
mount_nvmefs --namespace "$IMG/sep.img,size=4M,ms=16" --namespace "$IMG/ext.img,size=4M,ms=8,mset=1"
for n in 1 2; do
    f=$M/namespaces/$n/data
    assert_eq 4194304 "$(stat -c %s "$f")" "namespace $n data size"
    dd if="$src" of="$f" bs=64K count=50 seek=1 conv=notrunc status=none || fail "namespace $n aligned write"
    dd if="$src" of="$f" bs=1000 count=3 skip=5 seek=7 oflag=seek_bytes iflag=skip_bytes conv=notrunc status=none ||
        fail "namespace $n unaligned write"
    cmp <(dd if="$f" bs=64K count=50 skip=1 status=none) <(head -c $((50 << 16)) "$src") ||
        fail "namespace $n aligned read back differs"
    cmp <(dd if="$f" bs=1000 count=3 skip=7 iflag=skip_bytes status=none) \
        <(dd if="$src" bs=1000 count=3 skip=5 iflag=skip_bytes status=none) || fail "namespace $n unaligned read back differs"
done
assert_eq separate "$(sed -n 's/^metadata: //p' "$M/namespaces/1/info")" "512+16 metadata placement"
assert_eq extended "$(sed -n 's/^metadata: //p' "$M/namespaces/2/info")" "512+8 metadata placement"
# Written blocks carry zeroed metadata (the host's own buffers), 16 bytes per LBA.
assert_eq $((8192 * 16)) "$(stat -c %s "$M/namespaces/1/metadata")" "512+16 metadata file size"
[ "$(xxd -p -s $((200 * 16)) -l 16 "$M/namespaces/1/metadata")" = 00000000000000000000000000000000 ] ||
    fail "512+16: written metadata is not zeros"
unmount_nvmefs

# --- ext4 through a loop device on 4096+8 PI type 1 -----------------------
mount_nvmefs --namespace "$IMG/ext4.img,size=64M,lbads=12,ms=8,pi=1"
LOOP=$(losetup --find --show "$D") || fail "losetup on the data file"
mkfs.ext4 -q -F -b 4096 "$LOOP" || fail "mkfs.ext4 on 4096+8 PI type 1"
mkdir -p "$LOOPMNT"
mount "$LOOP" "$LOOPMNT" || fail "mounting the ext4 file system"
mkdir "$LOOPMNT/dir"
for i in 1 2 3; do cp "$src" "$LOOPMNT/dir/file$i" || fail "writing file$i"; done
dd if=/dev/urandom of="$LOOPMNT/small" bs=1000 count=3 status=none
sync
umount "$LOOPMNT" || fail "unmounting the ext4 file system"
fsck.ext4 -n -f "$LOOP" >"$CASE_DIR/fsck.log" 2>&1 || fail "fsck.ext4 is not clean: $(cat "$CASE_DIR/fsck.log")"
mount -o ro "$LOOP" "$LOOPMNT" || fail "remounting the ext4 file system"
for i in 1 2 3; do cmp "$LOOPMNT/dir/file$i" "$src" || fail "file$i differs"; done
umount "$LOOPMNT"
losetup -d "$LOOP" || fail "detaching $LOOP"
LOOP=""
# Every block ext4 wrote has valid PI: no read failed (dd reads it all with PRCHK).
dd if="$D" of=/dev/null bs=1M status=none || fail "reading the whole namespace back (PI checks)"
unmount_nvmefs
