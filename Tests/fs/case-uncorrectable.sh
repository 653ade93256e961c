# Write Uncorrectable from the shell: marks sent through `cmd`, a dd read
# of a marked block failing with EIO while its neighbours read, the count in
# namespaces/N/info, a dd write clearing a mark, and the marks surviving a
# remount in the sidecar file beside the image (IMAGE.nvmefs-uc).
. "$(dirname "$0")/lib.sh"

M=$MNT
D=$M/namespaces/1/data
info_value() { sed -n "s/^$1: //p" "$M/namespaces/1/info"; }
# send LINE: one command through cmd; prints its status line.
send() {
    local out
    exec 3<>"$M/cmd"
    echo "$1" >&3
    out=$(head -1 <&3)
    exec 3>&-
    echo "$out"
}

mount_nvmefs --namespace "$IMG/uc.img,size=16M"
assert_eq 512 "$(info_value 'lba size')" "LBA size"
assert_eq 0 "$(info_value uncorrectable)" "marks at first"
head -c 65536 /dev/urandom >"$CASE_DIR/src"
dd if="$CASE_DIR/src" of="$D" bs=512 count=128 conv=notrunc oflag=direct status=none || fail "dd before marking"

# LBAs 8-11 (nlb is 0's based); the PRPs are ignored.
st=$(send "io opcode=0x04 nsid=1 slba=8 nlb=3")
case $st in "status SUCCESS"*) ;; *) fail "Write Uncorrectable: $st" ;; esac
assert_eq 4 "$(info_value uncorrectable)" "marks after Write Uncorrectable"
[ -f "$IMG/uc.img.nvmefs-uc" ] || fail "no sidecar file beside the image"
assert_eq "nvmefs-uncorrectable 1 lbads 9" "$(head -1 "$IMG/uc.img.nvmefs-uc")" "sidecar header"
assert_eq "8 4" "$(sed -n 2p "$IMG/uc.img.nvmefs-uc")" "sidecar range"

# A marked block fails (Unrecovered Read Error → EIO); its neighbours read.
expect_errno "dd if='$D' of=/dev/null bs=512 skip=9 count=1 iflag=direct status=none" EIO
expect_errno "dd if='$D' of=/dev/null bs=4096 skip=1 count=1 iflag=direct status=none" EIO
cmp <(dd if="$D" bs=512 skip=7 count=1 iflag=direct status=none) <(dd if="$CASE_DIR/src" bs=512 skip=7 count=1 status=none) \
    || fail "LBA 7 reads back wrong"
cmp <(dd if="$D" bs=512 skip=12 count=4 iflag=direct status=none) <(dd if="$CASE_DIR/src" bs=512 skip=12 count=4 status=none) \
    || fail "LBAs 12-15 read back wrong"
# The error log has the first marked LBA the read touched (a Read of 6-13: 8).
st=$(send "io opcode=0x02 nsid=1 slba=6 nlb=7 data-in=4096")
case $st in "status UNRECOVERED_READ "*) ;; *) fail "Read of a marked LBA: $st" ;; esac
assert_eq 8 "$(od -An -tu8 -j16 -N8 "$M/log/error" | tr -d ' ')" "error log LBA"

# Writing a block clears its mark; Write Zeroes too.
dd if="$CASE_DIR/src" of="$D" bs=512 seek=9 skip=9 count=1 conv=notrunc oflag=direct status=none || fail "dd over LBA 9"
assert_eq 3 "$(info_value uncorrectable)" "marks after writing LBA 9"
cmp <(dd if="$D" bs=512 skip=9 count=1 iflag=direct status=none) <(dd if="$CASE_DIR/src" bs=512 skip=9 count=1 status=none) \
    || fail "LBA 9 reads back wrong after the write"
expect_errno "dd if='$D' of=/dev/null bs=512 skip=8 count=1 iflag=direct status=none" EIO
st=$(send "io opcode=0x08 nsid=1 slba=11 nlb=0")
case $st in "status SUCCESS"*) ;; *) fail "Write Zeroes: $st" ;; esac
assert_eq 2 "$(info_value uncorrectable)" "marks after Write Zeroes of LBA 11"

# Past the end: LBA Out of Range.
st=$(send "io opcode=0x04 nsid=1 slba=32767 nlb=1")
case $st in "status LBA_RANGE "*) ;; *) fail "Write Uncorrectable past the end: $st" ;; esac

# The marks survive a remount.
unmount_nvmefs
mount_nvmefs --namespace "$IMG/uc.img"
assert_eq 2 "$(info_value uncorrectable)" "marks after the remount"
expect_errno "dd if='$D' of=/dev/null bs=512 skip=8 count=1 iflag=direct status=none" EIO
expect_errno "dd if='$D' of=/dev/null bs=512 skip=10 count=1 iflag=direct status=none" EIO
cmp <(dd if="$D" bs=512 skip=9 count=1 iflag=direct status=none) <(dd if="$CASE_DIR/src" bs=512 skip=9 count=1 status=none) \
    || fail "LBA 9 reads back wrong after the remount"
# Writing the last marks away removes the sidecar file.
dd if="$CASE_DIR/src" of="$D" bs=512 seek=8 skip=8 count=4 conv=notrunc oflag=direct status=none || fail "dd over LBAs 8-11"
assert_eq 0 "$(info_value uncorrectable)" "marks after writing them all"
[ -e "$IMG/uc.img.nvmefs-uc" ] && fail "sidecar file left with no mark"
unmount_nvmefs
