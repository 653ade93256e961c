# Verify (NVM opcode 0x0c) from the shell through `cmd`: success, a PI guard
# flipped on disk caught by PRCHK, a media error from a fault rule, PRACT
# refused, a range past the end.
. "$(dirname "$0")/lib.sh"

M=$MNT
mount_nvmefs --namespace "$IMG/v.img,size=4M,lbads=12,ms=8,pi=1"
head -c 1048576 /dev/urandom | dd of="$M/namespaces/1/data" bs=64k conv=notrunc status=none || fail "dd"

# verify LBA NLB CDW12-PRINFO ILBRT: the status line of a Verify.
verify() {
    exec 3<>"$M/cmd"
    echo "io opcode=0x0c nsid=1 slba=$1 nlb=$2 cdw12=$3 cdw14=$4" >&3
    head -1 <&3
    exec 3>&-
}
# PRCHK guard + reference tag (CDW12 bits 28, 26); NLB is 0's based.
verify 0 255 0x14000000 0 | grep -q "^status SUCCESS" || fail "Verify of 256 written blocks failed"
printf '\x5a' | dd of="$IMG/v.img.nvmefs-md" bs=1 seek=$((4096 + 100 * 8)) conv=notrunc status=none
out=$(verify 96 7 0x10000000 96)
echo "$out" | grep -q "^status E2E_GUARD_ERROR" || fail "a flipped guard at LBA 100: $out"
verify 96 7 0x00000000 96 | grep -q "^status SUCCESS" || fail "Verify without PRCHK checked the PI"
out=$(verify 0 0 0x20000000 0)
echo "$out" | grep -q "^status INVALID_PROT_INFO" || fail "PRACT on a Verify: $out"
out=$(verify 1023 1 0 1023)
echo "$out" | grep -q "^status LBA_RANGE" || fail "Verify past the end: $out"
echo "1 read:data 200 EIO once" >"$M/faults"
out=$(verify 198 3 0 198)
echo "$out" | grep -q "^status UNRECOVERED_READ" || fail "Verify over a media error: $out"
