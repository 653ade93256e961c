# passthru (docs/PASSTHRU.md): the binary command file. A request in one
# write and in pieces, a transfer of MDTS (FUSE splits it), separate
# metadata, every refusal's errno, per-handle transactions, and nothing
# left half-done after a refusal.
. "$(dirname "$0")/lib.sh"

mount_nvmefs --namespace "$IMG/a.img,size=8M" --namespace "$IMG/md.img,size=4M,ms=8"

python3 - "$MNT" <<'PY' || fail "passthru checks failed"
import errno, os, struct, sys

M = sys.argv[1]
P = M + "/passthru"
failures = []

def check(cond, what):
    if not cond:
        failures.append(what)

def header(opcode, queue, direction, data=0, md=0, nsid=0, cdw=(0,) * 6, timeout=0, reserved=0):
    sqe = struct.pack("<BBHIIIQQQ6I", opcode, 0, 0, nsid, 0, 0, 0, 0, 0, *cdw)
    return sqe + struct.pack("<IIIBBH", data, md, timeout, queue, direction, reserved)

def transact(fd, pieces, answer):
    for p in pieces:
        os.write(fd, p)
    out = b""
    while len(out) < answer:
        chunk = os.read(fd, answer - len(out))
        if not chunk:
            break
        out += chunk
    status = struct.unpack("<H", out[14:16])[0] >> 1
    return status, struct.unpack("<I", out[0:4])[0], out[16:]

def refused(pieces, code, what):
    fd = os.open(P, os.O_RDWR)
    try:
        for p in pieces:
            os.write(fd, p)
        failures.append(what + ": accepted")
    except OSError as e:
        check(e.errno == code, "%s: errno %s, not %s" % (what, errno.errorcode.get(e.errno), errno.errorcode[code]))
    finally:
        os.close(fd)

fd = os.open(P, os.O_RDWR)
# Identify Controller: the same bytes as the identify file.
st, _, data = transact(fd, [header(0x06, 0, 2, data=4096, cdw=(1, 0, 0, 0, 0, 0))], 16 + 4096)
check(st == 0 and data == open(M + "/identify", "rb").read(), "identify through passthru")
mdts = data[77]
maxt = 4096 << mdts
check(os.read(fd, 100) == b"", "end of file after the response")

# Write then read MDTS bytes (FUSE cuts the request into several writes).
blob = os.urandom(maxt)
nlb = maxt // 512 - 1
w = header(0x01, 1, 1, data=maxt, nsid=1, cdw=(8, 0, nlb, 0, 0, 0))
st, _, _ = transact(fd, [w + blob], 16)
check(st == 0, "write of MDTS bytes: status %#x" % st)
st, _, back = transact(fd, [header(0x02, 1, 2, data=maxt, nsid=1, cdw=(8, 0, nlb, 0, 0, 0))], 16 + maxt)
check(st == 0 and back == blob, "read back of MDTS bytes")
with open(M + "/namespaces/1/data", "rb") as f:
    f.seek(8 * 512)
    check(f.read(maxt) == blob, "data file after a passthru write")

# A request in pieces: the header in two writes, the data in three.
part = os.urandom(1024)
req = header(0x01, 1, 1, data=1024, nsid=1, cdw=(0, 0, 1, 0, 0, 0)) + part
st, _, _ = transact(fd, [req[:30], req[30:80], req[80:500], req[500:900], req[900:]], 16)
check(st == 0, "write in pieces")
st, _, back = transact(fd, [header(0x02, 1, 2, data=1024, nsid=1, cdw=(0, 0, 1, 0, 0, 0))], 16 + 1024)
check(back == part, "read after a write in pieces")

# A controller status comes back in the CQE: LBA Out of Range (0/80h).
st, _, back = transact(fd, [header(0x02, 1, 2, data=512, nsid=1, cdw=(1 << 20, 0, 0, 0, 0, 0))], 16 + 512)
check(st & 0x7FF == 0x80 and st & 0x4000, "read past the end: status %#x (LBA Out of Range, DNR)" % st)
check(back == bytes(512), "the buffer of a failed read comes back zeroed")
# Get Features, Number of Queues: DW0.
st, dw0, _ = transact(fd, [header(0x0A, 0, 0, cdw=(7, 0, 0, 0, 0, 0))], 16)
check(st == 0 and dw0 != 0, "get features (number of queues) dw0")

# Separate metadata (namespace 2, 512+8): data and metadata both ways.
data2, md2 = os.urandom(1024), os.urandom(16)
st, _, _ = transact(fd, [header(0x01, 1, 1, data=1024, md=16, nsid=2, cdw=(4, 0, 1, 0, 0, 0)) + data2 + md2], 16)
check(st == 0, "write with metadata: status %#x" % st)
st, _, back = transact(fd, [header(0x02, 1, 2, data=1024, md=16, nsid=2, cdw=(4, 0, 1, 0, 0, 0))], 16 + 1040)
check(back == data2 + md2, "read with metadata")
with open(M + "/namespaces/2/metadata", "rb") as f:
    f.seek(4 * 8)
    check(f.read(16) == md2, "metadata file after a passthru write")
os.close(fd)

# Refusals: the write fails, nothing reaches the controller.
refused([header(0x06, 2, 2, data=4096)], errno.EINVAL, "queue 2")
refused([header(0x06, 0, 4, data=4096)], errno.EINVAL, "direction 4")
refused([header(0x06, 0, 2, data=4096, reserved=1)], errno.EINVAL, "reserved bytes")
refused([header(0x06, 0, 1, data=4096)], errno.EINVAL, "identify sending data")
refused([header(0x02, 1, 2, nsid=1)], errno.EINVAL, "a direction without data")
refused([header(0x02, 1, 0, data=512, nsid=1)], errno.EINVAL, "data without a direction")
refused([header(0x02, 1, 2, data=maxt + 512, nsid=1, cdw=(0, 0, maxt // 512, 0, 0, 0))], errno.E2BIG, "past MDTS")
refused([header(0x0C, 0, 0)], errno.EBUSY, "asynchronous event request")
refused([header(0x7C, 0, 0)], errno.EBUSY, "doorbell buffer config")
refused([header(0x00, 0, 0, cdw=(1, 0, 0, 0, 0, 0))], errno.EBUSY, "delete the host's I/O SQ 1")
refused([header(0x00, 1, 0, nsid=1) + b"x"], errno.EINVAL, "bytes past the request")
# A read while a request is incomplete: EINVAL, and the transaction starts afresh.
fd = os.open(P, os.O_RDWR)
os.write(fd, header(0x06, 0, 2, data=4096, cdw=(1, 0, 0, 0, 0, 0))[:40])
try:
    os.read(fd, 16)
    failures.append("read with half a header: accepted")
except OSError as e:
    check(e.errno == errno.EINVAL, "read with half a header: errno %d" % e.errno)
st, _, data = transact(fd, [header(0x06, 0, 2, data=4096, cdw=(1, 0, 0, 0, 0, 0))], 16 + 4096)
check(st == 0 and len(data) == 4096, "a request after a refusal")
# Two handles, two transactions.
fd2 = os.open(P, os.O_RDWR)
os.write(fd, header(0x06, 0, 2, data=4096, cdw=(1, 0, 0, 0, 0, 0)))
os.write(fd2, header(0x0A, 0, 0, cdw=(7, 0, 0, 0, 0, 0)))
check(len(os.read(fd, 8192)) == 16 + 4096 and len(os.read(fd2, 8192)) == 16, "per-handle responses")
os.close(fd); os.close(fd2)

if failures:
    print("\n".join(failures))
    sys.exit(1)
PY
grep -q "^passthru " "$MNT/README" || fail "README lists no passthru"
assert_eq 644 "$(stat -c %a "$MNT/passthru")" "mode of passthru"
unmount_nvmefs
