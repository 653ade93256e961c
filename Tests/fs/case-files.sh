# trace, faults, stats, interrupts, identify, log/, cmd, namespaces/N/{info,stats,identify}.
. "$(dirname "$0")/lib.sh"

mount_nvmefs --namespace "$IMG/f.img,size=4M" --mem 64K --queues 4 --model "Files Model"
M=$MNT
D=$M/namespaces/1/data
head -c 65536 /dev/urandom >"$CASE_DIR/src"
dd if="$CASE_DIR/src" of="$D" bs=64K conv=notrunc status=none || fail "initial write"

# trace: a reader sees doorbell and I/O events; one event per line with a
# timestamp, a name and key=value fields.
cat "$M/trace" >"$CASE_DIR/trace.out" & reader=$!
sleep 0.3
dd if="$D" of=/dev/null bs=4096 count=4 status=none || fail "read while tracing"
for _ in $(seq 100); do grep -q "pci_nvme_aio_cb" "$CASE_DIR/trace.out" 2>/dev/null && break; sleep 0.05; done
for ev in pci_nvme_mmio_doorbell_sq pci_nvme_io_cmd pci_nvme_req_add_aio pci_nvme_aio_cb pci_nvme_enqueue_req_completion pci_nvme_irq_msix; do
    grep -q "^[0-9]*\.[0-9]\{6\} $ev\( \|$\)" "$CASE_DIR/trace.out" || fail "trace lacks $ev: $(head -20 "$CASE_DIR/trace.out")"
done
grep -q "^[0-9]*\.[0-9]\{6\} pci_nvme_io_cmd .*[a-z]*=" "$CASE_DIR/trace.out" || fail "trace lines are not key=value"
# A killed reader does not hang (its parked read is interrupted).
kill "$reader"
wait_gone "$reader" 5 || fail "killed trace reader hangs"
wait "$reader" 2>/dev/null
# With no reader, I/O events are not recorded (nothing waits in the stream).
dd if="$D" of=/dev/null bs=4096 count=4 status=none
out=$(dd if="$M/trace" iflag=nonblock bs=64K count=1 status=none 2>/dev/null)
case $out in *pci_nvme_io_cmd*) fail "io events recorded with no reader: $(echo "$out" | head -3)" ;; esac
assert_eq 444 "$(stat -c %a "$M/trace")" "trace mode"

# faults: a rule makes a read fail with EIO; "clear" restores.
echo "1 read 0-7 EIO" >"$M/faults" || fail "add a fault rule"
grep -q "^1 read 0-7 EIO" "$M/faults" || fail "faults does not list the rule: $(cat "$M/faults")"
expect_errno "dd if='$D' of=/dev/null bs=4096 count=1 status=none" EIO
dd if="$D" of=/dev/null bs=4096 count=1 skip=1 status=none || fail "read outside the faulty range"
grep -q "^read .*failed=[1-9]" "$M/namespaces/1/stats" || fail "failed read not counted: $(cat "$M/namespaces/1/stats")"
echo clear >"$M/faults" || fail "clear faults"
assert_eq "" "$(cat "$M/faults")" "faults after clear"
cmp <(dd if="$D" bs=4096 count=1 status=none) <(head -c 4096 "$CASE_DIR/src") || fail "read after clear"
expect_errno "echo 'bogus rule' >'$M/faults'" EINVAL
expect_errno "echo '9 read all EIO' >'$M/faults'" EINVAL
# "once": the first write fails, the next one succeeds.
echo "1 write 0+8 EIO once" >"$M/faults" || fail "add a write rule"
expect_errno "dd if='$CASE_DIR/src' of='$D' bs=4096 count=1 conv=notrunc status=none" EIO
dd if="$CASE_DIR/src" of="$D" bs=4096 count=1 conv=notrunc status=none || fail "second write after a once rule"
echo clear >"$M/faults"

# stats: controller-wide counters.
grep -q "^admin NVME_ADM_CMD_IDENTIFY (0x06): [1-9]" "$M/stats" || fail "stats lacks identify: $(cat "$M/stats")"
grep -q "^io NVME_NVM_CMD_READ (0x02): [1-9]" "$M/stats" || fail "stats lacks reads"
grep -q "^doorbell writes: [1-9]" "$M/stats" || fail "stats lacks doorbells"
grep -q "^errors: [1-9]" "$M/stats" || fail "stats does not count the faulted command"
# interrupts: one line per vector.
assert_eq 5 "$(wc -l <"$M/interrupts")" "interrupt vectors (queues + 1)"
grep -q "^vector=0 raised=[1-9][0-9]* masked=0 pending=0$" "$M/interrupts" || fail "interrupts: $(cat "$M/interrupts")"

# identify and log pages.
assert_eq 4096 "$(wc -c <"$M/identify")" "identify size"
assert_eq "Files Model" "$(dd if="$M/identify" bs=1 skip=24 count=40 status=none | sed 's/ *$//')" "model in identify"
assert_eq 4096 "$(wc -c <"$M/namespaces/1/identify")" "identify namespace size"
assert_eq 8192 "$(od -An -tu8 -N 8 "$M/namespaces/1/identify" | tr -d ' ')" "NSZE in identify namespace"
assert_eq 512 "$(wc -c <"$M/log/smart")" "smart log size"
assert_eq 512 "$(wc -c <"$M/log/fw-slot")" "fw-slot log size"
assert_eq 4096 "$(wc -c <"$M/log/effects")" "effects log size"
assert_eq 4096 "$(wc -c <"$M/log/changed-ns")" "changed-ns log size"
[ "$(wc -c <"$M/log/error")" -ge 64 ] || fail "error log size"
# The faulted read is in the error log: entry 0 has a nonzero error count.
[ "$(od -An -tu8 -N 8 "$M/log/error" | tr -d ' ')" -ge 1 ] || fail "error log has no entry"
# SMART data units read (bytes 32..47) counts the reads.
[ "$(od -An -tu8 -j 32 -N 8 "$M/log/smart" | tr -d ' ')" -ge 1 ] || fail "smart: no data units read"
grep -q "^nsze: 8192$" "$M/namespaces/1/info" || fail "info nsze"
grep -q "^lba size: 512$" "$M/namespaces/1/info" || fail "info lba size"
grep -q "^image: $IMG/f.img$" "$M/namespaces/1/info" || fail "info image: $(cat "$M/namespaces/1/info")"
grep -q "^readonly: no$" "$M/namespaces/1/info" || fail "info readonly"

# cmd: Identify Controller; the hexdump turns back into identify's bytes.
exec 3<>"$M/cmd"
echo "admin opcode=0x06 cdw10=1 data-in=4096" >&3 || fail "cmd write"
cat <&3 >"$CASE_DIR/cmd.out"
assert_eq "status SUCCESS (0x0000) dw0 0x00000000 dw1 0x00000000" "$(head -1 "$CASE_DIR/cmd.out")" "cmd status line"
tail -n +2 "$CASE_DIR/cmd.out" | xxd -r >"$CASE_DIR/cmd.bin"
cmp "$CASE_DIR/cmd.bin" "$M/identify" || fail "cmd data differs from identify"
# The same handle runs another command; a second handle has its own transaction.
exec 4<>"$M/cmd"
echo "io opcode=0x02 nsid=1 slba=2 nlb=1 data-in=1024" >&4
echo "admin opcode=0xff" >&3
cat <&4 >"$CASE_DIR/cmd4.out"
cat <&3 >"$CASE_DIR/cmd3.out"
grep -q "^status INVALID_OPCODE (0x4001)" "$CASE_DIR/cmd3.out" || fail "bad opcode: $(cat "$CASE_DIR/cmd3.out")"
head -1 "$CASE_DIR/cmd4.out" | grep -q "^status SUCCESS" || fail "io read: $(head -1 "$CASE_DIR/cmd4.out")"
tail -n +2 "$CASE_DIR/cmd4.out" | xxd -r | cmp - <(dd if="$CASE_DIR/src" bs=512 skip=2 count=2 status=none) ||
    fail "cmd io read data"
# A write with data-out, read back through data.
hex=$(head -c 512 /dev/urandom | tee "$CASE_DIR/blk" | od -An -v -tx1 | tr -d ' \n')
echo "io opcode=0x01 nsid=1 slba=100 nlb=0 data-out=$hex" >&3 || fail "cmd write command"
head -1 <&3 | grep -q "^status SUCCESS" || fail "cmd write status"
cmp <(dd if="$D" bs=512 skip=100 count=1 status=none) "$CASE_DIR/blk" || fail "cmd write data"
# Malformed command lines: EINVAL.
for bad in "read it" "admin" "admin opcode=0x100" "io opcode=1 nsid=x" "admin opcode=6 cdw10=1 foo=2" \
           "io opcode=1 data-out=abc"; do
    expect_errno "echo '$bad' >'$M/cmd'" EINVAL
done
exec 3>&- 4>&-
grep -q "nvmefs_file_refused file=cmd errno=EINVAL" <(dd if="$M/trace" iflag=nonblock bs=64K count=1 status=none 2>/dev/null) ||
    fail "cmd refusals not traced"
unmount_nvmefs
