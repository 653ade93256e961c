# Format NVM from the shell: a format through `cmd` in the background, its
# progress in namespaces/N/info (slowed by a delay fault on the zeroing),
# I/O meanwhile refused (EBUSY), the new geometry picked up without a
# remount (data and metadata file sizes), the notice in `events`, data
# zeroed, the format surviving a remount, and the refusals.
. "$(dirname "$0")/lib.sh"

M=$MNT
D=$M/namespaces/1/data
info_value() { sed -n "s/^$1: //p" "$M/namespaces/1/info"; }

mount_nvmefs --namespace "$IMG/f.img,size=67109376"   # 64 MiB + 512: 131073 blocks of 512, 16384 of 4096
assert_eq "512+0" "$(info_value 'lba format')" "initial format"
assert_eq 67109376 "$(stat -c %s "$D")" "data file size before the format"
head -c 1048576 /dev/urandom >"$CASE_DIR/src"
dd if="$CASE_DIR/src" of="$D" bs=1M count=1 conv=notrunc status=none || fail "dd before the format"

# Slow the zeroing down: 8 MiB Write Zeroes AIOs, each held 300 ms.
echo "1 write-zeroes all delay=300" >"$M/faults" || fail "cannot add the delay rule"
# LBAF 5 (4096+8), PI type 1 in the last 8 bytes: CDW10 = 5 | 1 << 5.
(
    exec 3<>"$M/cmd"
    echo "admin opcode=0x80 nsid=1 cdw10=0x25" >&3
    cat <&3 >"$CASE_DIR/format.out"
) &
FMT=$!
seen=""
for _ in $(seq 1 100); do
    f=$(info_value format)
    case $f in
        *%) seen=$f; break ;;
    esac
    sleep 0.02
done
[ -n "$seen" ] || fail "info never showed format progress"
note "progress seen: $seen"
# Meanwhile the namespace refuses I/O (Format In Progress → EBUSY).
err=$(dd if="$D" of=/dev/null bs=4k count=1 iflag=direct 2>&1) && fail "a read during the format succeeded"
echo "$err" | grep -q "Device or resource busy" || fail "a read during the format: $err (expected EBUSY)"
wait "$FMT"
grep -q "^status SUCCESS" "$CASE_DIR/format.out" || fail "Format NVM: $(cat "$CASE_DIR/format.out")"
# The host sent the format, so it knows the new geometry once the command is done.
assert_eq 67108864 "$(stat -c %s "$D")" "data file size as soon as Format NVM completed"
echo clear >"$M/faults"

# The notice reaches the built-in host, which re-identifies the namespace.
for _ in $(seq 1 100); do
    [ "$(info_value 'lba format')" = "4096+8 separate, PI type 1 (last 8 bytes)" ] && [ "$(info_value format)" = idle ] && break
    sleep 0.02
done
assert_eq "4096+8 separate, PI type 1 (last 8 bytes)" "$(info_value 'lba format')" "format after Format NVM"
assert_eq 16384 "$(info_value nsze)" "NSZE after Format NVM"
for _ in $(seq 1 100); do [ "$(stat -c %s "$M/namespaces/1/metadata")" = 131072 ] && break; sleep 0.02; done
assert_eq 67108864 "$(stat -c %s "$D")" "data file size after Format NVM"
assert_eq 131072 "$(stat -c %s "$M/namespaces/1/metadata")" "metadata file size after Format NVM"
grep -q "Namespace Attribute Changed" "$M/events" || fail "no Namespace Attribute Changed notice in events: $(cat "$M/events")"
# The data was zeroed; PI works on the new format.
[ "$(head -c 1048576 "$D" | tr -d '\0' | wc -c)" = 0 ] || fail "data not zeroed by the format"
dd if="$CASE_DIR/src" of="$D" bs=1M count=1 conv=notrunc status=none || fail "dd after the format"
cmp <(head -c 1048576 "$D") "$CASE_DIR/src" || fail "data read back differs after the format"
[ "$(xxd -s 8 -l 8 -p "$M/namespaces/1/metadata" | cut -c9-16)" = 00000001 ] || fail "LBA 1's reference tag is not 1"

# Refusals: LBAF 8 (not advertised) is Invalid Format; SES 3 Invalid Field.
exec 3<>"$M/cmd"
echo "admin opcode=0x80 nsid=1 cdw10=0x8" >&3
grep -q "^status INVALID_FORMAT" <&3 || fail "LBAF 8 was not Invalid Format"
exec 3>&-
exec 3<>"$M/cmd"
echo "admin opcode=0x80 nsid=1 cdw10=0x604" >&3
grep -q "^status INVALID_FIELD" <&3 || fail "SES 3 was not Invalid Field"
exec 3>&-

# The format survives a remount without options.
"$NVMEFS" unmount "$M" || fail "unmount"
mount_nvmefs --namespace "$IMG/f.img"
assert_eq "4096+8 separate, PI type 1 (last 8 bytes)" "$(info_value 'lba format')" "format after remount"
cmp <(head -c 1048576 "$D") "$CASE_DIR/src" || fail "data differs after remount"

# Back to 512+0 with FFFFFFFFh (every namespace).
exec 3<>"$M/cmd"
echo "admin opcode=0x80 nsid=0xffffffff cdw10=0x0" >&3
grep -q "^status SUCCESS" <&3 || fail "Format NVM of every namespace failed"
exec 3>&-
for _ in $(seq 1 100); do [ "$(info_value 'lba format')" = "512+0" ] && break; sleep 0.02; done
assert_eq "512+0" "$(info_value 'lba format')" "format after the broadcast Format NVM"
assert_eq 0 "$(stat -c %s "$M/namespaces/1/metadata")" "no metadata after formatting to 512+0"
