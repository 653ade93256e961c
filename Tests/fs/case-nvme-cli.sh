# Debian's unmodified nvme-cli against a live mount through the preload
# shim (`nvmefs nvme`, `nvmefs exec`; README "nvme-cli"): identify and log
# commands with their -o json fields checked against the identify and log/*
# files, features, the NVM commands on /dev/nvme0n1, admin-passthru and
# io-passthru both ways, resets, ns-rescan, format, namespace management,
# firmware, verify, copy, separate metadata; refused inputs give nvme-cli's
# usual errors, not hangs; unrelated file operations pass through the shim
# unchanged; the command line's errors.
. "$(dirname "$0")/lib.sh"

NVME=$(command -v nvme || echo /usr/sbin/nvme)
[ -x "$NVME" ] || fail "nvme-cli is not installed (scripts/setup.sh installs it)"
[ -f "$(dirname "$NVMEFS")/libnvmefs-shim.so" ] || fail "no libnvmefs-shim.so next to $NVMEFS (swift build builds it)"

M=$MNT
mount_nvmefs --namespace "$IMG/a.img,size=16M" --namespace "$IMG/md.img,size=4M,ms=8" --ns-dir "$CASE_DIR/nsdir"
# nv ARGS...: nvme-cli through the shim, bounded (a hang fails the case),
# stderr (where nvme-cli reports most successes) merged; nvb: stdout only.
nv() { timeout 60 "$NVMEFS" nvme "$M" -- "$@" 2>&1; }
nvb() { timeout 60 "$NVMEFS" nvme "$M" -- "$@"; }
# The last command of a pipeline runs in this shell, so check_json's fail ends the case.
shopt -s lastpipe
D=$CASE_DIR
# check_json NAME PYTHON-ASSERTIONS: runs the assertions with j = the JSON on stdin,
# file(name) = the bytes of $M/name, le(bytes, offset, size) = a little-endian field.
check_json() {
    local what=$1 code=$2
    python3 -c "
import json, sys
j = json.load(sys.stdin)
def file(name): return open('$M/' + name, 'rb').read()
def le(b, o, n): return int.from_bytes(b[o:o + n], 'little')
$code" || fail "$what"
}

# --- identify and logs, their JSON against the files --------------------------
out=$(nv id-ctrl /dev/nvme0) || fail "id-ctrl: $out"
echo "$out" | grep -q "^mn *: nvmefs" || fail "id-ctrl shows no nvmefs model: $out"
nvb id-ctrl /dev/nvme0 -o json | check_json "id-ctrl -o json against identify" "
i = file('identify')
for name, off, size in [('vid', 0, 2), ('ssvid', 2, 2), ('mdts', 77, 1), ('cntlid', 78, 2), ('ver', 80, 4),
                        ('oaes', 92, 4), ('oacs', 256, 2), ('acl', 258, 1), ('aerl', 259, 1), ('frmw', 260, 1),
                        ('lpa', 261, 1), ('elpe', 262, 1), ('wctemp', 266, 2), ('cctemp', 268, 2), ('sqes', 512, 1),
                        ('cqes', 513, 1), ('nn', 516, 4), ('oncs', 520, 2), ('fuses', 522, 2), ('vwc', 525, 1),
                        ('sgls', 536, 4)]:
    assert j[name] == le(i, off, size), (name, j[name], le(i, off, size))
for name, off, size in [('sn', 4, 20), ('mn', 24, 40), ('fr', 64, 8)]:
    assert j[name] == i[off:off + size].decode(), name
assert int(j['tnvmcap']) == le(i, 280, 16)
"
nvb id-ns /dev/nvme0n1 -o json | check_json "id-ns -o json against namespaces/1/identify" "
i = file('namespaces/1/identify')
for name, off, size in [('nsze', 0, 8), ('ncap', 8, 8), ('nuse', 16, 8), ('nsfeat', 24, 1), ('nlbaf', 25, 1),
                        ('flbas', 26, 1), ('mc', 27, 1), ('dpc', 28, 1), ('dps', 29, 1), ('nmic', 30, 1),
                        ('nawun', 34, 2), ('nvmcap', 48, 16)]:
    assert int(j[name]) == le(i, off, size), (name, j[name])
for k, f in enumerate(j['lbafs']):
    assert (f['ms'], f['ds'], f['rp']) == (le(i, 128 + 4 * k, 2), i[130 + 4 * k], i[131 + 4 * k] & 3), k
"
nvb id-ns /dev/nvme0 -n 2 -o json | check_json "id-ns -n 2 against namespaces/2/identify" "
i = file('namespaces/2/identify')
assert j['nsze'] == le(i, 0, 8) and j['flbas'] == i[26] and j['lbafs'][i[26] & 15]['ms'] == 8
"
nvb ns-descs /dev/nvme0n1 -o json | check_json "ns-descs against Identify Namespace's NGUID and EUI64" "
i = file('namespaces/1/identify')
d = {x['type']: x for x in j['ns-descs']}
assert d['nguid']['nguid'] == i[104:120].hex() and d['eui64']['eui64'] == i[120:128].hex(), d
"
nvb list-ns /dev/nvme0 -o json | check_json "list-ns" "assert [x['nsid'] for x in j['nsid_list']] == [1, 2], j"

nvb smart-log /dev/nvme0 -o json | check_json "smart-log -o json against log/smart" "
s = file('log/smart')
for name, off, size in [('critical_warning', 0, 1), ('temperature', 1, 2), ('avail_spare', 3, 1),
                        ('spare_thresh', 4, 1), ('percent_used', 5, 1), ('power_cycles', 112, 16),
                        ('unsafe_shutdowns', 144, 16), ('media_errors', 160, 16), ('warning_temp_time', 192, 4)]:
    assert int(j[name]) == le(s, off, size), (name, j[name], le(s, off, size))
"
# An error to log: an opcode nvmefs does not implement, nvme-cli's usual message.
out=$(nv admin-passthru /dev/nvme0 -o 0x12 2>&1) && fail "admin opcode 0x12 succeeded: $out"
echo "$out" | grep -q "Invalid Command Opcode" || fail "admin opcode 0x12: $out"
nvb error-log /dev/nvme0 -e 2 -o json | check_json "error-log -o json against log/error" "
e = file('log/error')
x = j['errors'][0]
assert x['error_count'] == le(e, 0, 8) > 0 and x['sqid'] == le(e, 8, 2) == 0 and x['cmdid'] == le(e, 10, 2)
assert x['status_field'] == le(e, 12, 2) >> 1 and x['status_field'] & 0x7FF == 0x001, x
"
nvb fw-log /dev/nvme0 -o json | check_json "fw-log -o json against log/fw-slot" "
f = file('log/fw-slot')
v = j['nvme0']
assert v['Active Firmware Slot (afi)'] == f[0] and v['Firmware Rev Slot 1'].startswith(str(le(f, 8, 8))), v
"
# effects-log without --csi reads CAP through /sys/class/nvme/nvme0/device/resource0 (the shim presents no sysfs).
nvb effects-log /dev/nvme0 -c 0 -o json | check_json "effects-log -o json against log/effects" "
e = file('log/effects')
a = j[0]['admin_cmd_set']
found = 0
for key, value in a.items():
    op = int(key.split()[0].split('_')[1])
    assert value == le(e, 4 * op, 4), (key, value)
    found += 1
io = j[0]['io_cmd_set']
for key, value in io.items():
    op = int(key.split()[0].split('_')[1])
    assert value == le(e, 1024 + 4 * op, 4), (key, value)
assert found >= 10
"
nvb get-log /dev/nvme0 -i 3 -l 512 -b >"$D/fwslot.bin" || fail "get-log -i 3"
cmp "$D/fwslot.bin" "$M/log/fw-slot" || fail "get-log -i 3 -b differs from log/fw-slot"

# --- features -------------------------------------------------------------------------
out=$(nv get-feature /dev/nvme0 -f 7) || fail "get-feature 7: $out"
dw0=$(exec 3<>"$M/cmd"; echo "admin opcode=0x0a cdw10=7" >&3; read -r line <&3; echo "$line" | awk '{ print $5 }')
echo "$out" | grep -q "Current value:$dw0" || fail "get-feature 7: $out (cmd says $dw0)"
nv set-feature /dev/nvme0 -f 4 -v 350 >/dev/null || fail "set-feature 4"
nv get-feature /dev/nvme0 -f 4 | grep -q "Current value:0x0000015e" || fail "get-feature 4 after set-feature"

# --- resets and rescan: a controller reset restores the feature's default ------------
nv reset /dev/nvme0 || fail "reset"
nv get-feature /dev/nvme0 -f 4 | grep -q "Current value:0x00000157" || fail "temperature threshold after reset"
nv set-feature /dev/nvme0 -f 4 -v 350 >/dev/null
nv subsystem-reset /dev/nvme0 || fail "subsystem-reset"
nv get-feature /dev/nvme0 -f 4 | grep -q "Current value:0x00000157" || fail "temperature threshold after subsystem-reset"
assert_eq 0x00000011 "$(cat "$M/regs/csts")" "CSTS after the subsystem reset (RDY, NSSRO)"
nv ns-rescan /dev/nvme0 || fail "ns-rescan"

# --- NVM commands on /dev/nvme0n1 -----------------------------------------------------
head -c 4096 /dev/urandom >"$D/blk"
nv write /dev/nvme0n1 -s 8 -c 7 -z 4096 -d "$D/blk" | grep -q "write: Success" || fail "write"
cmp <(dd if="$M/namespaces/1/data" bs=512 skip=8 count=8 status=none) "$D/blk" || fail "data file after nvme write"
nv read /dev/nvme0n1 -s 8 -c 7 -z 4096 -d "$D/rd" | grep -q "read: Success" || fail "read"
cmp "$D/rd" "$D/blk" || fail "nvme read"
nv compare /dev/nvme0n1 -s 8 -c 7 -z 4096 -d "$D/blk" | grep -q "compare: Success" || fail "compare"
nv flush /dev/nvme0n1 | grep -q "Flush: success" || fail "flush"
nv verify /dev/nvme0n1 -s 8 -c 7 | grep -q "Verify Success" || fail "verify"
nv copy /dev/nvme0n1 -d 200 -s 8 -b 7 | grep -q "Copy: success" || fail "copy"
cmp <(dd if="$M/namespaces/1/data" bs=512 skip=200 count=8 status=none) "$D/blk" || fail "data after copy"
nv write-zeroes /dev/nvme0n1 -s 8 -c 7 | grep -q "Write Zeroes Success" || fail "write-zeroes"
cmp <(dd if="$M/namespaces/1/data" bs=512 skip=8 count=8 status=none) <(head -c 4096 /dev/zero) || fail "after write-zeroes"
out=$(nv compare /dev/nvme0n1 -s 8 -c 7 -z 4096 -d "$D/blk" 2>&1) && fail "compare of changed data succeeded"
echo "$out" | grep -q "Compare Failure" || fail "compare of changed data: $out"
nv dsm /dev/nvme0n1 -d -s 200 -b 8 | grep -q "DSM: success" || fail "dsm"
cmp <(dd if="$M/namespaces/1/data" bs=512 skip=200 count=8 status=none) <(head -c 4096 /dev/zero) || fail "after dsm deallocate"

# --- admin-passthru and io-passthru, both directions ----------------------------------
nvb admin-passthru /dev/nvme0 -o 6 --cdw10=1 -l 4096 -r -b >"$D/id.bin" || fail "admin-passthru identify"
cmp "$D/id.bin" "$M/identify" || fail "admin-passthru identify data"
head -c 512 /dev/urandom >"$D/one"
nv io-passthru /dev/nvme0n1 -o 1 -n 1 --cdw10=40 -l 512 -w -i "$D/one" >/dev/null || fail "io-passthru write"
nvb io-passthru /dev/nvme0n1 -o 2 -n 1 --cdw10=40 -l 512 -r -b >"$D/one.back" || fail "io-passthru read"
cmp "$D/one" "$D/one.back" || fail "io-passthru round trip"
cmp "$D/one" <(dd if="$M/namespaces/1/data" bs=512 skip=40 count=1 status=none) || fail "io-passthru write in the data file"
# Firmware through admin-passthru (data out), then fw-download and fw-commit.
firmware_image "$D/fw2" 2.0 0
nv admin-passthru /dev/nvme0 -o 0x11 --cdw10=2047 -l 8192 -w -i "$D/fw2" >/dev/null || fail "admin-passthru firmware download"
nv fw-commit /dev/nvme0 -s 2 -a 1 | grep -q "Success" || fail "fw-commit slot 2"
firmware_image "$D/fw3" 3.0 0
nv fw-download /dev/nvme0 -f "$D/fw3" | grep -q "Firmware download success" || fail "fw-download"
nv fw-commit /dev/nvme0 -s 3 -a 1 | grep -q "Success" || fail "fw-commit slot 3"
nv reset /dev/nvme0 || fail "reset after fw-commit"
nvb id-ctrl /dev/nvme0 -o json | check_json "FR after the reset" "assert j['fr'].strip() == '3.0', j['fr']"
nvb fw-log /dev/nvme0 -o json | check_json "fw-log after the reset" "assert j['nvme0']['Active Firmware Slot (afi)'] == 3"

# --- separate metadata (namespace 2: 512 + 8 bytes) -------------------------------------
head -c 1024 /dev/urandom >"$D/d2"; head -c 16 /dev/urandom >"$D/m2"
nv write /dev/nvme0n2 -s 4 -c 1 -z 1024 -d "$D/d2" -y 16 -M "$D/m2" | grep -q Success || fail "write with metadata"
nv read /dev/nvme0n2 -s 4 -c 1 -z 1024 -d "$D/d2.back" -y 16 -M "$D/m2.back" | grep -q Success || fail "read with metadata"
cmp "$D/d2" "$D/d2.back" && cmp "$D/m2" "$D/m2.back" || fail "metadata round trip"
cmp "$D/m2" <(dd if="$M/namespaces/2/metadata" bs=8 skip=4 count=2 status=none) || fail "metadata file"

# --- format, namespace management --------------------------------------------------------
nv format /dev/nvme0 -n 1 -l 4 --force | grep -q "Success formatting namespace:1" || fail "format to LBA format 4"
grep -qx "lba size: 4096" "$M/namespaces/1/info" || fail "lba size after format: $(cat "$M/namespaces/1/info")"
assert_eq "4096 4096 16777216" "$("$NVMEFS" exec "$M" -- blockdev --getss --getpbsz --getsize64 /dev/nvme0n1 | tr '\n' ' ' | sed 's/ $//')" \
    "blockdev after format"
out=$(nv create-ns /dev/nvme0 -s 2048 -c 2048 -f 0) || fail "create-ns: $out"
echo "$out" | grep -q "created nsid:3" || fail "create-ns: $out"
nv attach-ns /dev/nvme0 -n 3 -c 0 | grep -q "Success" || fail "attach-ns"
[ -d "$M/namespaces/3" ] || fail "namespaces/3 after attach-ns"
nvb list-ns /dev/nvme0 -o json | check_json "list-ns after attach" "assert [x['nsid'] for x in j['nsid_list']] == [1, 2, 3], j"
nv write /dev/nvme0n3 -s 0 -c 7 -z 4096 -d "$D/blk" | grep -q Success || fail "write to the new namespace"
cmp <(head -c 4096 "$M/namespaces/3/data") "$D/blk" || fail "data of the new namespace"
nv detach-ns /dev/nvme0 -n 3 -c 0 | grep -q "Success" || fail "detach-ns"
[ -e "$M/namespaces/3" ] && fail "namespaces/3 after detach-ns"
nv delete-ns /dev/nvme0 -n 3 | grep -q "deleted nsid:3" || fail "delete-ns"
nvb list-ns /dev/nvme0 -a -o json | check_json "allocated namespaces after delete" "assert [x['nsid'] for x in j['nsid_list']] == [1, 2], j"

# --- the ioctls nvme-cli 2.3 does not use: SUBMIT_IO, ADMIN64, IO64, ID, rescan ---------
"$NVMEFS" exec "$M" -- python3 - "$M" <<'PY' || fail "SUBMIT_IO, ADMIN64_CMD, IO64_CMD, NVME_IOCTL_ID"
import ctypes, fcntl, os, struct, sys
M = sys.argv[1]
IOW, IOWR = lambda nr, size: 1 << 30 | size << 16 | ord('N') << 8 | nr, lambda nr, size: 3 << 30 | size << 16 | ord('N') << 8 | nr
ns = os.open("/dev/nvme0n1", os.O_RDWR)
ctrl = os.open("/dev/nvme0", os.O_RDONLY)
assert fcntl.ioctl(ns, 0x4E40) == 1                                      # NVME_IOCTL_ID
# NVME_IOCTL_SUBMIT_IO (struct nvme_user_io, 48 bytes): a Write of 2 blocks of 4 KiB, then a Read.
data = ctypes.create_string_buffer(os.urandom(8192), 8192)
back = ctypes.create_string_buffer(8192)
def user_io(opcode, buf):
    return bytearray(struct.pack("<BBHHHQQQIIHHI", opcode, 0, 0, 1, 0, 0, ctypes.addressof(buf), 300, 0, 0, 0, 0, 0))
assert fcntl.ioctl(ns, IOW(0x42, 48), user_io(0x01, data)) == 0
assert fcntl.ioctl(ns, IOW(0x42, 48), user_io(0x02, back)) == 0
assert back.raw == data.raw
with open(M + "/namespaces/1/data", "rb") as f:
    f.seek(300 * 4096)
    assert f.read(8192) == data.raw
try:
    fcntl.ioctl(ns, IOW(0x42, 48), user_io(0x09, back))                  # not Read, Write or Compare
    raise SystemExit("SUBMIT_IO of opcode 09h accepted")
except OSError as e:
    assert e.errno == 22, e
# NVME_IOCTL_ADMIN64_CMD (struct nvme_passthru_cmd64, 80 bytes): Get Features, Number of Queues; result in bytes 72-79.
cmd = bytearray(struct.pack("<BBHIIIQQII6IIIQ", 0x0A, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0, 0))
assert fcntl.ioctl(ctrl, IOWR(0x47, 80), cmd) == 0
assert struct.unpack("<Q", cmd[72:80])[0] & 0xFFFFFFFF != 0
# NVME_IOCTL_IO64_CMD: a Read of LBA 300 on the controller's descriptor; a status is the ioctl's value.
buf = ctypes.create_string_buffer(4096)
cmd = bytearray(struct.pack("<BBHIIIQQII6IIIQ", 0x02, 0, 0, 1, 0, 0, 0, ctypes.addressof(buf), 0, 4096,
                            300, 0, 0, 0, 0, 0, 0, 0, 0))
assert fcntl.ioctl(ctrl, IOWR(0x48, 80), cmd) == 0 and buf.raw == data.raw[:4096]
cmd[40:44] = struct.pack("<I", 1 << 30)                                  # SLBA past the end
assert fcntl.ioctl(ctrl, IOWR(0x48, 80), cmd) & 0x7FF == 0x80           # LBA Out of Range
PY
expect_errno "echo 2 >'$M/rescan'" EINVAL
echo 1 >"$M/rescan" || fail "write 1 to rescan"

# --- refused inputs: nvme-cli's usual errors, quickly -------------------------------------
expect_nvme_error() {  # EXPECTED-TEXT ARGS...
    local want=$1 out rc
    shift
    out=$(nv "$@" 2>&1); rc=$?
    [ "$rc" -ne 0 ] || fail "nvme $*: succeeded"
    [ "$rc" -ne 124 ] || fail "nvme $*: hung"
    echo "$out" | grep -q "$want" || fail "nvme $*: expected '$want', got: $out"
}
expect_nvme_error "Argument list too long" read /dev/nvme0n1 -s 0 -c 255 -z 1048576 -d "$D/big"
expect_nvme_error "No such file or directory" id-ns /dev/nvme0n9
expect_nvme_error "Invalid Namespace or Format" id-ns /dev/nvme0 -n 0x1000
expect_nvme_error "Inappropriate ioctl for device" get-ns-id /dev/nvme0
expect_nvme_error "Device or resource busy" admin-passthru /dev/nvme0 -o 0x0c
expect_nvme_error "Invalid argument" admin-passthru /dev/nvme0 -o 0x80 -l 512 -r
# An unknown ioctl and one of the wrong device kind, through Python.
"$NVMEFS" exec "$M" -- python3 -c "
import errno, fcntl, os
for path, request in [('/dev/nvme0', 0x4E50), ('/dev/nvme0', 0x4E40), ('/dev/nvme0n1', 0x4E44), ('/dev/nvme0', 0x80081272)]:
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.ioctl(fd, request, bytearray(8))
        raise SystemExit('ioctl %#x on %s succeeded' % (request, path))
    except OSError as e:
        assert e.errno == errno.ENOTTY, (path, hex(request), e)
    os.close(fd)
" || fail "unknown and misplaced ioctls are ENOTTY"

# --- the shim passes unrelated file operations through unchanged ---------------------------
printf 'hello\n' >"$D/plain"
mkdir -p "$D/dir"; touch "$D/dir/a" "$D/dir/b"
script='stat -c "%F %s %a" "$1/plain" /dev/null; ls "$1/dir"; cat "$1/plain"; cp "$1/plain" "$1/copy"; cat "$1/copy";
python3 -c "import os, sys; fd = os.open(sys.argv[1], os.O_RDONLY); print(os.fstat(fd).st_size, os.read(fd, 5)); os.close(fd)" "$1/plain";
dd if="$1/plain" bs=1 count=3 status=none; echo; stat -c "%t:%T" /dev/null; ls "$1/missing" 2>&1 | sed "s#$1##"'
plain=$(bash -c "$script" x "$D") || fail "the script without the shim"
shimmed=$("$NVMEFS" exec "$M" -- bash -c "$script" x "$D") || fail "the script under the shim"
assert_eq "$plain" "$shimmed" "unrelated file operations under the shim"
assert_eq "character special file block special file 16777216" \
    "$("$NVMEFS" exec "$M" -- stat -c '%F' /dev/nvme0 | tr '\n' ' ')$("$NVMEFS" exec "$M" -- stat -c '%F %s' /dev/nvme0n1)" \
    "the devices under the shim"
cmp <("$NVMEFS" exec "$M" -- dd if=/dev/nvme0n1 bs=4k skip=1 count=4 status=none) \
    <(dd if="$M/namespaces/1/data" bs=4k skip=1 count=4 status=none) || fail "dd from /dev/nvme0n1"
"$NVMEFS" exec "$M" -- dd if="$D/blk" of=/dev/nvme0n1 bs=4k seek=9 conv=notrunc status=none || fail "dd to /dev/nvme0n1"
cmp <(dd if="$M/namespaces/1/data" bs=4k skip=9 count=1 status=none) "$D/blk" || fail "data after dd to /dev/nvme0n1"

# Preloaded without a mount configured, the shim changes nothing.
out=$(LD_PRELOAD="$(dirname "$NVMEFS")/libnvmefs-shim.so" NVMEFS_SHIM_DEVICE=/dev/nvmefs-test bash -c "$script" x "$D") ||
    fail "the script with an unconfigured shim"
assert_eq "$plain" "$out" "file operations with an unconfigured shim"
out=$(LD_PRELOAD="$(dirname "$NVMEFS")/libnvmefs-shim.so" NVMEFS_SHIM_DEVICE=/dev/nvmefs-test stat /dev/nvmefs-test 2>&1) &&
    fail "an unconfigured shim presented a device: $out"

# --as: other device paths; /dev/nvme0 is left alone then.
"$NVMEFS" nvme "$M" --as /dev/nvme7 -- id-ns /dev/nvme7n1 -o json | check_json "--as /dev/nvme7" "assert j['nsze'] == 4096"
assert_eq "regular empty file" "$("$NVMEFS" exec "$M" --as /dev/nvme7 -- stat -c %F "$D/dir/a")" "--as leaves other paths"

# --- the command line's errors -----------------------------------------------------------
expect_cli_error() {  # EXPECTED-TEXT ARGS...
    local want=$1 out rc
    shift
    out=$("$NVMEFS" "$@" 2>&1); rc=$?
    [ "$rc" -ne 0 ] || fail "nvmefs $*: exit 0"
    [ "$(echo "$out" | wc -l)" -eq 1 ] || fail "nvmefs $*: more than one line: $out"
    echo "$out" | grep -q -e "$want" || fail "nvmefs $*: expected '$want', got: $out"
}
expect_cli_error "is not an nvmefs mount" nvme "$D/dir" -- list
expect_cli_error "is not an absolute device path" nvme "$M" --as nvme0 -- list
expect_cli_error "no program given" exec "$M"
expect_cli_error "no such program" exec "$M" -- nvmefs-no-such-program
unmount_nvmefs
