# Doorbell Buffer Config (admin 7Ch, NVMe 1.4 §5.7) and shadow doorbells
# (§7.13): (a) the built-in host with --shadow-doorbells (configured at
# bring-up and again after a reset; a dd round trip); (b) with --host none,
# by hand: the config command in the admin SQ, an I/O command submitted
# through the shadow tail (the MMIO write that wakes the controller carries a
# stale tail), EventIdx read back from mem, and a reset ending it.
. "$(dirname "$0")/lib.sh"

# get32 ADDR: the little-endian dword of mem at ADDR, in decimal.
get32() { echo $((0x$(od -An -tx4 -j "$1" -N 4 "$MNT/mem" | tr -d ' '))); }
# put32 ADDR VALUE: stores a little-endian dword into mem.
put32() {
    printf "$(le32 "$2")" | dd of="$MNT/mem" bs=4 count=1 seek="$1" oflag=seek_bytes conv=notrunc status=none ||
        fail "writing mem at $1"
}
# dbbuf_count: Doorbell Buffer Config commands the controller ran.
dbbuf_count() { sed -n 's/^admin NVME_ADM_CMD_DBBUF_CONFIG (0x7c): //p' "$MNT/stats"; }

expect_cli_error 2 mount "$MNT" --namespace "$IMG/x.img,size=1M" --host none --shadow-doorbells

# (a) The built-in host.
mount_nvmefs --namespace "$IMG/a.img,size=8M" --shadow-doorbells
A=$MNT/namespaces/1/data
assert_eq 1 "$(dbbuf_count)" "Doorbell Buffer Config at bring-up"
head -c 1048576 /dev/urandom >"$CASE_DIR/src"
dd if="$CASE_DIR/src" of="$A" bs=4096 seek=16 conv=notrunc status=none || fail "write with shadow doorbells"
cmp <(dd if="$A" bs=4096 skip=16 count=256 status=none) "$CASE_DIR/src" || fail "read back with shadow doorbells"
io=$(sed -n 's/^io commands: //p' "$MNT/stats")
doorbells=$(sed -n 's/^doorbell writes: //p' "$MNT/stats")
[ "$io" -ge 256 ] || fail "only $io I/O commands for 1 MiB written and read"
note "shadow doorbells: $io I/O commands, $doorbells MMIO doorbell writes (the controller consumes each tail inside the write that rang it, so EventIdx asks for nearly every one)"
# The buffers belong to the host: cmd refuses the command.
expect_errno "echo 'admin opcode=0x7c prp1=0x8000 prp2=0x9000' >'$MNT/cmd'" EINVAL
# A reset ends the configuration; the host's recovery configures it again.
echo 0x460000 >"$MNT/regs/cc" || fail "reset through regs/cc"
dd if="$CASE_DIR/src" of="$A" bs=4096 count=8 seek=600 conv=notrunc status=none || fail "write after reset"
cmp <(dd if="$A" bs=4096 skip=600 count=8 status=none) <(head -c 32768 "$CASE_DIR/src") || fail "read after reset"
assert_eq 2 "$(dbbuf_count)" "Doorbell Buffer Config after the recovery"
unmount_nvmefs
cmp <(dd if="$IMG/a.img" bs=4096 skip=16 count=256 status=none) "$CASE_DIR/src" || fail "image after unmount"

# (b) By hand, --host none. Layout in mem (4 KiB pages).
mount_nvmefs --namespace "$IMG/raw.img,size=1M" --host none --mem 1M --queues 4
ASQ=$((0x1000)) ACQ=$((0x2000)) IOSQ=$((0x3000)) IOCQ=$((0x4000)) WBUF=$((0x6000))
DBS=$((0x8000)) EIS=$((0x9000))
echo 0x000f000f >"$MNT/regs/aqa" && echo $ASQ >"$MNT/regs/asq" && echo $ACQ >"$MNT/regs/acq" || fail "admin queue registers"
echo 0x460001 >"$MNT/regs/cc" || fail "write cc"
for _ in $(seq 100); do [ "$(cat "$MNT/regs/csts")" = 0x00000001 ] && break; sleep 0.05; done
assert_eq 0x00000001 "$(cat "$MNT/regs/csts")" "csts after enable"
head -c 8192 /dev/zero | dd of="$MNT/mem" bs=4096 seek=$((DBS / 4096)) conv=notrunc status=none || fail "zero the buffers"

# A misaligned Shadow Doorbell page: Invalid Field in Command, DNR (status 0x4002).
admin_run 0 0x7c 1 0 $((DBS + 0x800)) 0 0 0 $EIS 0x4002
admin_run 1 0x7c 2 0 $DBS 0 0 0 $EIS
echo 2 >"$MNT/doorbells/cq0_head"
# The admin queue's MMIO writes are copied into its shadow entries.
assert_eq 2 "$(get32 $DBS)" "shadow sq0 tail"
assert_eq 2 "$(get32 $((DBS + 4)))" "shadow cq0 head"
assert_eq 2 "$(get32 $EIS)" "EventIdx of sq0"

# I/O queue pair 1, created after the configuration.
admin_run 2 0x05 3 0 $IOCQ $((1 | 15 << 16)) 1 0
admin_run 3 0x01 4 0 $IOSQ $((1 | 15 << 16)) $((0x1 | 1 << 16)) 0
echo 4 >"$MNT/doorbells/cq0_head"

# Two Writes published in the shadow entry of SQ 1 (tail 2); the MMIO write says 0.
head -c 1024 /dev/urandom >"$CASE_DIR/blocks"
dd if="$CASE_DIR/blocks" of="$MNT/mem" bs=1024 seek=$WBUF oflag=seek_bytes conv=notrunc status=none || fail "fill wbuf"
sqe $IOSQ 0x01 10 1 $WBUF 0 0 0
sqe $((IOSQ + 64)) 0x01 11 1 $((WBUF + 512)) 1 0 0
put32 $((DBS + 8)) 2
echo 0 >"$MNT/doorbells/sq1_tail"
wait_cqe $IOCQ 10 >/dev/null
wait_cqe $((IOCQ + 16)) 11 >/dev/null
assert_eq 2 "$(get32 $((EIS + 8)))" "EventIdx of sq1 after two commands"
# The CQ head goes to the shadow entry only; the next post reads it (then a Flush).
put32 $((DBS + 12)) 2
sqe $((IOSQ + 128)) 0x00 12 1 0 0 0 0
put32 $((DBS + 8)) 3
echo 0 >"$MNT/doorbells/sq1_tail"
wait_cqe $((IOCQ + 32)) 12 >/dev/null
# EventIdx of CQ 1: the head the controller had before it read the entry.
assert_eq 0 "$(get32 $((EIS + 12)))" "EventIdx of cq1"
cmp -n 1024 "$CASE_DIR/blocks" "$IMG/raw.img" || fail "image bytes differ after the shadow Writes and Flush"

# A controller reset ends the configuration: after a re-enable, admin MMIO
# writes are no longer copied into the shadow entry.
echo 0x460000 >"$MNT/regs/cc"
for _ in $(seq 100); do [ "$(cat "$MNT/regs/csts")" = 0x00000000 ] && break; sleep 0.05; done
head -c 256 /dev/zero | dd of="$MNT/mem" bs=256 seek=$((ACQ / 256)) conv=notrunc status=none
echo 0x460001 >"$MNT/regs/cc"
for _ in $(seq 100); do [ "$(cat "$MNT/regs/csts")" = 0x00000001 ] && break; sleep 0.05; done
admin_run 0 0x06 20 0 $WBUF 1 0 0
assert_eq 4 "$(get32 $DBS)" "shadow sq0 tail after the reset (unchanged)"
unmount_nvmefs
