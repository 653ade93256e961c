# Device Self-test (admin opcode 0x14, NVMe 1.4 §5.8) from the shell through
# `cmd`, with the log page (06h) read back through `cmd` and `log/self-test`:
# a short test completes, an extended one shows progress and is aborted,
# a fault rule makes the extended test fail with the failing LBA and NSID,
# statuses for a bad STC, a second start and an inactive NSID.
. "$(dirname "$0")/lib.sh"

M=$MNT
mount_nvmefs --namespace "$IMG/s.img,size=4M,lbads=9"

# admin LINE: the status line of an admin command through `cmd`.
admin() {
    exec 3<>"$M/cmd"
    echo "admin $*" >&3
    IFS= read -r line <&3; echo "$line"
    exec 3>&-
}
# byte OFFSET [COUNT] of log/self-test, unsigned decimal (little-endian for COUNT > 1).
byte() { od -An -tu"${2:-1}" -j "$1" -N "${2:-1}" "$M/log/self-test" | tr -d ' '; }
# wait_idle: until no self-test runs (byte 0 of the log is 0).
wait_idle() {
    for _ in $(seq 1 100); do [ "$(byte 0)" = 0 ] && return 0; sleep 0.2; done
    fail "the self-test did not end"
}

assert_eq 564 "$(wc -c <"$M/log/self-test")" "self-test log size"
assert_eq 15 "$(byte 4)" "no result yet (status 0Fh)"

admin opcode=0x14 nsid=0xffffffff cdw10=3 | grep -q "^status INVALID_FIELD" || fail "STC 3 accepted"
admin opcode=0x14 nsid=2 cdw10=1 | grep -q "^status INVALID_FIELD" || fail "inactive NSID accepted"

# Short test of the controller and every namespace (about 2 s).
out=$(admin opcode=0x14 nsid=0xffffffff cdw10=1)
echo "$out" | grep -q "^status SUCCESS" || fail "short self-test: $out"
out=$(admin opcode=0x14 nsid=0 cdw10=2)
echo "$out" | grep -q "^status DEVICE_SELF_TEST_IN_PROGRESS (0x011d)" || fail "a second start: $out"
assert_eq 1 "$(byte 0)" "short test in progress"
wait_idle
assert_eq 16 "$(byte 4)" "short test completed (status 10h)"

# The log through `cmd` (NUMDL 140: 141 dwords), the same first result.
exec 3<>"$M/cmd"
echo "admin opcode=0x02 nsid=0xffffffff cdw10=0x008c0006 data-in=564" >&3
out=$(cat <&3)
exec 3>&-
echo "$out" | head -1 | grep -q "^status SUCCESS" || fail "Get Log Page 06h: $out"
echo "$out" | sed -n 2p | grep -q "^00000000: 0000 0000 10" || fail "Get Log Page 06h data: $(echo "$out" | sed -n 2p)"

# Extended test: progress, then abort (result 1).
admin opcode=0x14 nsid=1 cdw10=2 | grep -q "^status SUCCESS" || fail "extended self-test"
sleep 1.5
assert_eq 2 "$(byte 0)" "extended test in progress"
pct=$(byte 1)
[ "$pct" -ge 5 ] && [ "$pct" -lt 100 ] || fail "extended test progress: $pct"
admin opcode=0x14 nsid=1 cdw10=0xf | grep -q "^status SUCCESS" || fail "abort"
assert_eq 0 "$(byte 0)" "nothing in progress after the abort"
assert_eq 33 "$(byte 4)" "extended test aborted by a Device Self-test command (status 21h)"
assert_eq 16 "$(byte 32)" "the short test's result is second"

# A media error: the extended test fails at once with the LBA and NSID.
echo "1 read:data 3000 EIO" >"$M/faults"
admin opcode=0x14 nsid=0xffffffff cdw10=2 | grep -q "^status SUCCESS" || fail "extended self-test with a fault"
wait_idle
assert_eq 39 "$(byte 4)" "extended test failed segment (status 27h)"
assert_eq 2 "$(byte 5)" "failed segment number"
assert_eq 15 "$(byte 6)" "valid diagnostic information"
assert_eq 1 "$(byte 16 4)" "failing NSID"
assert_eq 3000 "$(byte 20 8)" "failing LBA"
assert_eq 2 "$(byte 28)" "status code type"
assert_eq 129 "$(byte 29)" "status code (Unrecovered Read Error)"
