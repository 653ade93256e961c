# Firmware Image Download and Firmware Commit from the shell (NVMe 1.4
# §5.11, §5.12; docs/FIRMWARE.md): images written with dd into `firmware`
# and through `cmd` data-out, committed through `cmd`; Identify FR and
# log/fw-slot before and after a controller reset, an NSSR and a remount;
# the slots in the firmware directory (default, then --firmware-dir);
# the refusals as errnos and statuses.
. "$(dirname "$0")/lib.sh"

M=$MNT
image() { firmware_image "$@"; }
fr() { dd if="$M/identify" bs=1 skip=64 count=8 status=none | tr -d ' '; }
afi() { od -An -tx1 -N1 "$M/log/fw-slot" | tr -d ' '; }
frs() { dd if="$M/log/fw-slot" bs=1 skip=$((8 * $1)) count=8 status=none | tr -d ' \0'; }
# wait_ready: the built-in host has recovered from a reset (CSTS.RDY; NSSRO may be set too).
wait_ready() {
    local tries=100 csts
    until csts=$(cat "$M/regs/csts" 2>/dev/null) && [ $((csts & 1)) -eq 1 ] && [ -n "$(fr 2>/dev/null)" ]; do
        tries=$((tries - 1)); [ "$tries" -gt 0 ] || fail "controller not ready after a reset"
        sleep 0.05
    done
}
FWDIR=$XDG_DATA_HOME/nvmefs/firmware

mount_nvmefs --namespace "$IMG/fw.img,size=1M"
[ -d "$FWDIR" ] || fail "no default firmware directory $FWDIR"
assert_eq 1.0 "$(fr)" "FR at first"
assert_eq 01 "$(afi)" "AFI at first"
assert_eq 1.0 "$(frs 1)" "FRS1"
assert_eq 1f "$(od -An -tx1 -j 260 -N1 "$M/identify" | tr -d ' ')" "FRMW"
assert_eq 200 "$(stat -c %a "$M/firmware")" "mode of firmware"

# dd into firmware, CA 001b into slot 2: pending, FR unchanged until a controller reset.
image "$CASE_DIR/two" 2.0 0
dd if="$CASE_DIR/two" of="$M/firmware" bs=4k status=none || fail "dd into firmware"
st=$(send_cmd "admin opcode=0x10 cdw10=$((2 | 1 << 3))")
case $st in "status SUCCESS"*) ;; *) fail "commit CA 1 slot 2: $st" ;; esac
assert_eq 21 "$(afi)" "AFI after CA 1"
assert_eq 2.0 "$(frs 2)" "FRS2"
assert_eq 1.0 "$(fr)" "FR before the reset"
cmp "$CASE_DIR/two" "$FWDIR/slot2.img" || fail "slot 2 file"
echo 0x460000 >"$M/regs/cc" || fail "reset through regs/cc"
wait_ready
assert_eq 2.0 "$(fr)" "FR after the controller reset"
assert_eq 02 "$(afi)" "AFI after the controller reset"

# Through cmd data-out, CA 011b into slot 3, an image needing an NVM Subsystem Reset.
image "$CASE_DIR/three" 3.0 3 4096
st=$(send_cmd "admin opcode=0x11 cdw10=1023 cdw11=0 data-out=$(xxd -p "$CASE_DIR/three" | tr -d '\n')")
case $st in "status SUCCESS"*) ;; *) fail "download through cmd: $st" ;; esac
st=$(send_cmd "admin opcode=0x10 cdw10=$((3 | 3 << 3))")
case $st in "status FW_REQ_SUSYSTEM_RESET "*) ;; *) fail "commit CA 3 of an NSSR image: $st" ;; esac
echo 0x460000 >"$M/regs/cc"; wait_ready
assert_eq 2.0 "$(fr)" "FR after a controller reset (the image waits for an NSSR)"
echo 0x4E564D65 >"$M/regs/nssr" || fail "NSSR"
wait_ready
assert_eq 3.0 "$(fr)" "FR after the NSSR"

# An image needing a conventional reset: the next mount (a power cycle).
image "$CASE_DIR/four" 4.0 2
dd if="$CASE_DIR/four" of="$M/firmware" bs=8k status=none || fail "dd four"
st=$(send_cmd "admin opcode=0x10 cdw10=$((4 | 1 << 3))")
case $st in "status FW_REQ_RESET "*) ;; *) fail "commit of a conventional-reset image: $st" ;; esac
assert_eq 43 "$(afi)" "AFI with slot 4 pending"
assert_eq "nvmefs-firmware 1
active 3
pending 4 conventional-reset" "$(cat "$FWDIR/state")" "state file"

# Refusals: misaligned and overlapping pieces, the read-only slot, no image, a bad CA.
image "$CASE_DIR/five" 5.0 0
expect_errno "dd if='$CASE_DIR/five' of='$M/firmware' bs=2k count=1 status=none" EINVAL
expect_errno "dd if='$CASE_DIR/five' of='$M/firmware' bs=4k count=1 seek=1 oflag=seek_bytes status=none" EINVAL
dd if="$CASE_DIR/five" of="$M/firmware" bs=4k count=1 status=none || fail "first piece of five"
expect_errno "dd if='$CASE_DIR/five' of='$M/firmware' bs=4k count=1 status=none" EINVAL   # overlaps
st=$(send_cmd "admin opcode=0x11 cdw10=1023 cdw11=0 data-out-zeros=4096")
case $st in "status OVERLAPPING_RANGE "*) ;; *) fail "overlapping piece through cmd: $st" ;; esac
st=$(send_cmd "admin opcode=0x10 cdw10=$((1 | 0 << 3))")
case $st in "status INVALID_FW_SLOT "*) ;; *) fail "commit to slot 1: $st" ;; esac
st=$(send_cmd "admin opcode=0x10 cdw10=$((6 | 0 << 3))")    # its first 4 KiB are a whole image
case $st in "status SUCCESS"*) ;; *) fail "commit of a 4 KiB image: $st" ;; esac
st=$(send_cmd "admin opcode=0x10 cdw10=$((6 | 0 << 3))")
case $st in "status INVALID_FW_IMAGE "*) ;; *) fail "commit with nothing downloaded: $st" ;; esac
st=$(send_cmd "admin opcode=0x10 cdw10=$((2 | 4 << 3))")
case $st in "status INVALID_FIELD "*) ;; *) fail "reserved commit action: $st" ;; esac

# A remount is a power cycle: slot 4 runs; the slots are still there.
unmount_nvmefs
mount_nvmefs --namespace "$IMG/fw.img,size=1M"
assert_eq 4.0 "$(fr)" "FR after the remount"
assert_eq 04 "$(afi)" "AFI after the remount"
for s in 1:1.0 2:2.0 3:3.0 4:4.0 5: 6:5.0 7:; do assert_eq "${s#*:}" "$(frs "${s%%:*}")" "FRS${s%%:*} after the remount"; done
unmount_nvmefs

# --firmware-dir: another directory, created when missing; a file in the way is refused.
mount_nvmefs --namespace "$IMG/fw.img,size=1M" --firmware-dir "$CASE_DIR/fw2"
assert_eq 1.0 "$(fr)" "FR with a fresh firmware directory"
[ -d "$CASE_DIR/fw2" ] || fail "--firmware-dir not created"
unmount_nvmefs
expect_cli_error 2 mount "$MNT" --namespace "$IMG/fw.img,size=1M" --firmware-dir "$IMG/fw.img"
expect_cli_error 2 mount "$MNT" --namespace "$IMG/fw.img,size=1M" --firmware-dir "$CASE_DIR/no/such/dir"
echo garbage >"$FWDIR/slot5.img"
expect_cli_error 2 mount "$MNT" --namespace "$IMG/fw.img,size=1M"
