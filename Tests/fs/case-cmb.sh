# --cmb: CMBLOC/CMBSZ describe the buffer, the cmb file is its bytes, and the
# controller DMAs into it (an Identify whose PRP1 points at the CMB).
. "$(dirname "$0")/lib.sh"

mount_nvmefs --namespace "$IMG/cmb.img,size=1M" --cmb 2M --model "CMB Model"
M=$MNT
[ -f "$M/cmb" ] || fail "no cmb file with --cmb"
assert_eq 2097152 "$(stat -c %s "$M/cmb")" "cmb size"
# NVMe 1.4 scheme: CAP.CMBS (bit 57) set; CMBLOC/CMBSZ read 0 until CMBMSC.CRE.
assert_eq 1 "$(( ($(cat "$M/regs/cap") >> 57) & 1 ))" "CAP.CMBS"
assert_eq 0x00000000 "$(cat "$M/regs/cmbsz")" "cmbsz before CRE"
# CRE and CMSE with CBA 0x8000000000: the CMB is there for commands.
echo 0x8000000003 > "$M/regs/cmbmsc" || fail "write cmbmsc"
assert_eq 0x0000008000000003 "$(cat "$M/regs/cmbmsc")" "cmbmsc read back"
assert_eq 0x00000000 "$(cat "$M/regs/cmbsts")" "cmbsts: CBA valid"
assert_eq 0x00000042 "$(cat "$M/regs/cmbloc")" "cmbloc: BIR 2, offset 0, CDPCILS"
# CMBSZ: SQS|CQS|LISTS|RDS|WDS = 0x1f, SZU 2 (1 MiB), SZ 2.
assert_eq 0x0000221f "$(cat "$M/regs/cmbsz")" "cmbsz"
grep -q "Total size *: 2097152 bytes" "$M/regs/decoded" || fail "decoded cmbsz: $(grep -A3 cmbsz "$M/regs/decoded")"
printf 'hello cmb' | dd of="$M/cmb" bs=1 seek=4096 conv=notrunc status=none || fail "write cmb"
assert_eq "hello cmb" "$(dd if="$M/cmb" bs=1 skip=4096 count=9 status=none)" "cmb read back"
# Identify Controller with PRP1 at CMB offset 0x10000.
exec 3<>"$M/cmd"
echo "admin opcode=0x06 cdw10=1 prp1=0x8000010000" >&3 || fail "cmd write"
reply=$(head -1 <&3)
exec 3>&-
echo "$reply" | grep -q "^status SUCCESS" || fail "identify into the CMB: $reply"
assert_eq "CMB Model" "$(dd if="$M/cmb" bs=1 skip=$((0x10000 + 24)) count=9 status=none)" "model number in the CMB"
# A CBA over host memory is refused: CBAI set, the CMB leaves the address space.
echo 0x3 > "$M/regs/cmbmsc" || fail "write cmbmsc at 0"
assert_eq 0x00000001 "$(cat "$M/regs/cmbsts")" "cmbsts: CBAI"
grep -q "Controller Base Address Invalid (CBAI) *: yes" "$M/regs/decoded" || fail "decoded cmbsts"
echo 0x5 > "$M/regs/cmbsts" 2>/dev/null && fail "cmbsts is read-only"

unmount_nvmefs
mount_nvmefs --namespace "$IMG/cmb.img"
[ -e "$MNT/cmb" ] && fail "cmb file exists without --cmb"
assert_eq 0x00000000 "$(cat "$MNT/regs/cmbsz")" "cmbsz without --cmb"
true
