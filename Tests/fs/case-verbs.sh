# nvmefs's own verbs (README "Command line"): `sqe` encodes an entry that
# the controller runs from mem, `cqe` decodes its completion, `show-regs`
# prints bar0 with nvme-cli's names (and -H decoded), `list` shows the live
# mounts and their namespaces; their one-line errors.
. "$(dirname "$0")/lib.sh"

mount_nvmefs --namespace "$IMG/raw.img,size=1M" --host none --mem 1M --model "Verbs Model"
M=$MNT
ASQ=$((0x1000)) ACQ=$((0x2000)) IDBUF=$((0x5000))

# sqe: every field at its offset (NVMe 1.4 Figure 104; FUSE and PSDT share byte 1).
out=$("$NVMEFS" sqe --opcode 2 --fuse 1 --psdt 2 --cid 0x1234 --nsid 7 --cdw2 2 --cdw3 3 --mptr 4 --prp1 5 --prp2 6 \
      --slba 0x10000000a --cdw12 0x02000000 --nlb 9 --cdw13 13 --cdw14 14 --cdw15 15 | xxd -p | tr -d '\n')
assert_eq "028134120700000002000000030000000400000000000000050000000000000006000000000000000a00000001000000090000020d0000000e0000000f000000" \
    "$out" "sqe encoding"

# show-regs before the bring-up, then bring the controller up by hand.
assert_eq "cc      : 0" "$("$NVMEFS" show-regs "$M" | grep '^cc ')" "show-regs cc at mount"
echo 0x000f000f >"$M/regs/aqa"; echo $ASQ >"$M/regs/asq"; echo $ACQ >"$M/regs/acq"; echo 0x460001 >"$M/regs/cc"
for _ in $(seq 100); do [ "$(cat "$M/regs/csts")" = 0x00000001 ] && break; sleep 0.05; done
regs=$("$NVMEFS" show-regs "$M")
for want in "cap     : $(printf %x "$(cat "$M/regs/cap")")" "version : 10400" "cc      : 460001" "csts    : 1" \
            "aqa     : f000f" "asq     : 1000" "acq     : 2000" "cmbsz   : 0"; do
    echo "$regs" | grep -qx "$want" || fail "show-regs: no '$want' in: $regs"
done
"$NVMEFS" show-regs "$M" -H | grep -q "Ready (RDY) *: yes" || fail "show-regs -H does not decode RDY"
cmp <("$NVMEFS" show-regs "$M" -H) "$M/regs/decoded" || fail "show-regs -H differs from regs/decoded"

# An Identify Controller encoded by sqe, run from mem; its completion decoded by cqe.
"$NVMEFS" sqe --opcode 0x06 --cid 5 --prp1 $IDBUF --cdw10 1 |
    dd of="$M/mem" bs=64 seek=$ASQ oflag=seek_bytes conv=notrunc status=none || fail "sqe into mem"
echo 1 >"$M/doorbells/sq0_tail"
wait_cqe $ACQ 5 >/dev/null
assert_eq "cid=5 sqid=0 sqhd=1 phase=1 status=SUCCESS (0x0000) dw0=0x0 dw1=0x0" \
    "$(dd if="$M/mem" bs=16 skip=$((ACQ / 16)) count=1 status=none | "$NVMEFS" cqe)" "cqe of the Identify"
assert_eq "Verbs Model" "$(dd if="$M/mem" bs=1 skip=$((IDBUF + 24)) count=11 status=none)" "the Identify data"
# An unknown opcode: two entries decoded, the second with its status.
"$NVMEFS" sqe --opcode 0x7f --cid 6 | dd of="$M/mem" bs=64 seek=$((ASQ + 64)) oflag=seek_bytes conv=notrunc status=none
echo 2 >"$M/doorbells/sq0_tail"
wait_cqe $((ACQ + 16)) 6 0x4001 >/dev/null
out=$(dd if="$M/mem" bs=16 skip=$((ACQ / 16)) count=2 status=none | "$NVMEFS" cqe)
[ "$(echo "$out" | wc -l)" -eq 2 ] || fail "cqe of two entries: $out"
echo "$out" | tail -1 | grep -q "^cid=6 sqid=0 sqhd=2 phase=1 status=INVALID_OPCODE (0x4001)" || fail "cqe: $out"

# list: this mount (no built-in host: no controller strings) and one with a host.
mkdir -p "$CASE_DIR/second"
"$NVMEFS" mount "$CASE_DIR/second" --namespace "$IMG/second.img,size=2M" --namespace "$IMG/third.img,size=1M,lbads=12" \
    --serial LISTSERIAL || fail "second mount"
DAEMON_PIDS+=("$(daemon_pid "$CASE_DIR/second")")
out=$("$NVMEFS" list)
echo "$out" | head -1 | grep -q "^Mount *Namespace *SN *Model *Usage *Format *FW Rev$" || fail "list header: $out"
echo "$out" | grep -Eq "^$M +1 +- +- +1\.05 MB / +1\.05 MB +512 B \+ 0 B +-$" || fail "list: the raw mount: $out"
echo "$out" | grep -Eq "^$CASE_DIR/second +1 +LISTSERIAL +nvmefs NVMe Ctrl +2\.10 MB / 2\.10 MB +512 B \+ 0 B +1\.0$" ||
    fail "list: namespace 1 of the second mount: $out"
echo "$out" | grep -Eq "^$CASE_DIR/second +2 +LISTSERIAL +nvmefs NVMe Ctrl +1\.05 MB / 1\.05 MB +4096 B \+ 0 B +1\.0$" ||
    fail "list: namespace 2 of the second mount: $out"
"$NVMEFS" unmount "$CASE_DIR/second" || fail "unmount the second mount"
"$NVMEFS" list | grep -q "$CASE_DIR/second" && fail "list shows an unmounted mount"

# One-line errors, non-zero exits.
expect_cli_error() {  # EXPECTED-TEXT ARGS... (stdin from /dev/null unless given)
    local want=$1 out rc
    shift
    out=$("$NVMEFS" "$@" 2>&1 </dev/null); rc=$?
    [ "$rc" -ne 0 ] || fail "nvmefs $*: exit 0"
    [ "$(echo "$out" | wc -l)" -eq 1 ] || fail "nvmefs $*: more than one line: $out"
    echo "$out" | grep -q -e "$want" || fail "nvmefs $*: expected '$want', got: $out"
}
expect_cli_error "larger than 255" sqe --opcode 0x100
expect_cli_error "Missing expected argument '--opcode" sqe
expect_cli_error "--slba is CDW10-11" sqe --opcode 1 --slba 1 --cdw10 1
expect_cli_error "--nlb: 65536" sqe --opcode 1 --nlb 65536
expect_cli_error "The value '0xzz' is invalid for '--opcode" sqe --opcode 0xzz
out=$(printf 'abc' | "$NVMEFS" cqe 2>&1) && fail "cqe of 3 bytes succeeded"
assert_eq "nvmefs: cqe: 3 bytes are not whole 16-byte completion entries" "$out" "cqe of 3 bytes"
expect_cli_error "is not an nvmefs mount" show-regs "$CASE_DIR"
# nvmefs nvme and exec need the built-in host's passthru file.
expect_cli_error "has no passthru file (mounted with --host none?)" nvme "$M" -- list
expect_cli_error "has no passthru file" exec "$M" -- true
unmount_nvmefs
