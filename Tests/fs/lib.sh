# Helpers for nvmefs FS-level test cases. Sourced by each case-*.sh, which
# run.sh starts with:
#   NVMEFS    absolute path of the binary
#   CASE_DIR  a fresh temporary directory for this case
# and sets here: MNT (an empty mount directory), IMG (an image directory),
# XDG_DATA_HOME and XDG_RUNTIME_DIR inside CASE_DIR (default image and pid
# files stay private to the case).
# A case calls `fail MESSAGE` (exits 1) or ends normally (passes). Whatever
# happens, the EXIT trap unmounts and stops the daemon it started.
set -u

: "${NVMEFS:?run the cases through Tests/fs/run.sh}"
: "${CASE_DIR:?run the cases through Tests/fs/run.sh}"
MNT=$CASE_DIR/mnt
IMG=$CASE_DIR/img
export XDG_DATA_HOME=$CASE_DIR/data
export XDG_RUNTIME_DIR=$CASE_DIR/run
mkdir -p "$MNT" "$IMG" "$XDG_RUNTIME_DIR"
DAEMON_PIDS=()

fail() {
    echo "FAIL: $*" >&2
    exit 1
}

note() { echo "# $*"; }

# is_mounted DIR: an nvmefs mount is at DIR.
is_mounted() {
    local real
    real=$(realpath -m "$1")
    awk -v m="$real" '$2 == m && $3 == "fuse.nvmefs" { found = 1 } END { exit !found }' /proc/mounts
}

# daemon_pid [DIR]: the pid of the daemon serving DIR (default $MNT).
daemon_pid() { "$NVMEFS" pid "${1:-$MNT}" 2>/dev/null; }

# alive PID: the process exists and is not a zombie.
alive() {
    local state
    state=$(awk '{ sub(/.*\) /, ""); print substr($0, 1, 1) }' "/proc/$1/stat" 2>/dev/null) || return 1
    [ -n "$state" ] && [ "$state" != Z ] && [ "$state" != X ]
}

# wait_gone PID [SECONDS]: true when the process has exited within the time.
wait_gone() {
    local pid=$1 tries=$(( ${2:-10} * 20 ))
    while alive "$pid" && [ "$tries" -gt 0 ]; do sleep 0.05; tries=$((tries - 1)); done
    ! alive "$pid"
}

# wait_mounted DIR [SECONDS]
wait_mounted() {
    local tries=$(( ${2:-10} * 20 ))
    until is_mounted "$1"; do
        tries=$((tries - 1)); [ "$tries" -gt 0 ] || return 1
        sleep 0.05
    done
}

# mount_nvmefs [OPTIONS...]: daemonized mount of $MNT; fails the case unless
# it returns 0, silently, with the mount in place.
mount_nvmefs() {
    local out rc
    out=$("$NVMEFS" mount "$MNT" "$@" 2>&1); rc=$?
    [ "$rc" -eq 0 ] || fail "mount $* exited $rc: $out"
    [ -z "$out" ] || fail "mount $* printed: $out"
    is_mounted "$MNT" || fail "mount $* returned but $MNT is not mounted"
    local pid
    pid=$(daemon_pid) || fail "no daemon pid for $MNT"
    DAEMON_PIDS+=("$pid")
}

# mount_nvmefs_fg [OPTIONS...]: foreground mount in the background; sets
# FG_PID and FG_LOG (its stderr); waits until mounted.
mount_nvmefs_fg() {
    FG_LOG=$CASE_DIR/fg.log
    "$NVMEFS" mount -f "$MNT" "$@" 2>"$FG_LOG" &
    FG_PID=$!
    DAEMON_PIDS+=("$FG_PID")
    wait_mounted "$MNT" 10 || fail "foreground mount did not appear: $(cat "$FG_LOG")"
}

# unmount_nvmefs: `nvmefs unmount $MNT` must succeed silently, and leave no
# mount and no daemon behind at the moment it returns.
unmount_nvmefs() {
    local pid out rc
    pid=$(daemon_pid) || fail "no daemon for $MNT before unmount"
    out=$("$NVMEFS" unmount "$MNT" 2>&1); rc=$?
    [ "$rc" -eq 0 ] || fail "unmount exited $rc: $out"
    [ -z "$out" ] || fail "unmount printed: $out"
    is_mounted "$MNT" && fail "still mounted after unmount"
    alive "$pid" && fail "daemon $pid still running when unmount returned"
    return 0
}

# firmware_image FILE REVISION ACTIVATION [SIZE]: an nvmefs firmware image
# (docs/FIRMWARE.md): magic, revision, activation the image needs, random bytes.
firmware_image() {
    { printf 'NVMEFSFW%-8s' "$2"; printf "\\x$(printf %02x "$3")\\x00\\x00\\x00"; head -c $((${4:-8192} - 20)) /dev/urandom; } >"$1"
}

# errno_text NAME: the strerror text of an errno name.
errno_text() {
    case $1 in
        EPERM) echo "Operation not permitted" ;;
        ENOENT) echo "No such file or directory" ;;
        EINTR) echo "Interrupted system call" ;;
        EIO) echo "Input/output error" ;;
        EBADF) echo "Bad file descriptor" ;;
        EAGAIN) echo "Resource temporarily unavailable" ;;
        EACCES) echo "Permission denied" ;;
        EBUSY) echo "Device or resource busy" ;;
        EEXIST) echo "File exists" ;;
        ENOTDIR) echo "Not a directory" ;;
        EISDIR) echo "Is a directory" ;;
        EINVAL) echo "Invalid argument" ;;
        ENOSPC) echo "No space left on device" ;;
        EROFS) echo "Read-only file system" ;;
        ERANGE) echo "Numerical result out of range" ;;
        EOPNOTSUPP) echo "Operation not supported" ;;
        *) fail "errno_text: unknown errno name $1" ;;
    esac
}

# expect_errno "COMMAND" ERRNO-NAME: COMMAND (run by bash) must fail and
# report that errno's message.
expect_errno() {
    local cmd=$1 name=$2 out rc text
    text=$(errno_text "$name")
    out=$(bash -c "$cmd" 2>&1); rc=$?
    [ "$rc" -ne 0 ] || fail "'$cmd' succeeded, expected $name"
    case $out in
        *"$text"*) ;;
        *) fail "'$cmd' failed without $name ($text): $out" ;;
    esac
}

# expect_ok "COMMAND": COMMAND (run by bash) must succeed.
expect_ok() {
    local out
    out=$(bash -c "$1" 2>&1) || fail "'$1' failed: $out"
}

# assert_eq EXPECTED ACTUAL WHAT
assert_eq() {
    [ "$1" = "$2" ] || fail "$3: expected '$1', got '$2'"
}

# expect_cli_error STATUS ARGS...: `nvmefs ARGS...` must exit STATUS with
# exactly one line "nvmefs: ..." on stderr, nothing on stdout, nothing
# mounted and no daemon left.
expect_cli_error() {
    local status=$1; shift
    local err=$CASE_DIR/cli.err out rc lines
    out=$("$NVMEFS" "$@" 2>"$err"); rc=$?
    [ "$rc" -eq "$status" ] || fail "nvmefs $* exited $rc, expected $status: $(cat "$err")"
    [ -z "$out" ] || fail "nvmefs $* printed on stdout: $out"
    lines=$(wc -l <"$err")
    [ "$lines" -eq 1 ] || fail "nvmefs $* wrote $lines lines on stderr: $(cat "$err")"
    grep -q '^nvmefs: ' "$err" || fail "nvmefs $* error is not 'nvmefs: ...': $(cat "$err")"
    is_mounted "$MNT" && fail "nvmefs $* left $MNT mounted"
    daemon_pid >/dev/null && fail "nvmefs $* left a daemon"
    return 0
}

# send_cmd LINE: one command through $MNT/cmd (a transaction of its own);
# prints the status line of its completion.
send_cmd() {
    local out
    exec 3<>"$MNT/cmd"
    echo "$1" >&3
    read -r out <&3
    exec 3>&-
    echo "$out"
}

# Driving the controller by hand (--host none) through $MNT/mem and the
# doorbell files, with printf, dd and od only.

# le32 N: four little-endian bytes as printf escapes.
le32() {
    local v=$1
    printf '\\x%02x\\x%02x\\x%02x\\x%02x' $((v & 255)) $(((v >> 8) & 255)) $(((v >> 16) & 255)) $(((v >> 24) & 255))
}
# sqe ADDR OPCODE CID NSID PRP1 CDW10 CDW11 CDW12 [PRP2]: a 64-byte entry written into mem at ADDR.
sqe() {
    local addr=$1 opc=$2 cid=$3 nsid=$4 prp1=$5 c10=$6 c11=$7 c12=$8 prp2=${9:-0} fmt
    fmt=$(le32 $((opc | cid << 16)))$(le32 "$nsid")$(le32 0)$(le32 0)$(le32 0)$(le32 0)
    fmt+=$(le32 $((prp1 & 0xffffffff)))$(le32 $((prp1 >> 32)))$(le32 $((prp2 & 0xffffffff)))$(le32 $((prp2 >> 32)))
    fmt+=$(le32 "$c10")$(le32 "$c11")$(le32 "$c12")$(le32 0)$(le32 0)$(le32 0)
    printf "$fmt" | dd of="$MNT/mem" bs=64 count=1 seek="$addr" oflag=seek_bytes conv=notrunc status=none ||
        fail "writing an SQE at $addr"
}
# wait_cqe ADDR CID [STATUS]: waits for the phase-1 entry at ADDR, checks its
# CID and its status field (bits 15:1 of dword 3: SC, SCT, More, DNR; default
# 0, success); prints dw0.
wait_cqe() {
    local addr=$1 cid=$2 status=${3:-0} tries=200 w
    while :; do
        read -r -a w <<<"$(od -An -v -tx4 -j "$addr" -N 16 "$MNT/mem")"
        [ $(((0x${w[3]} >> 16) & 1)) -eq 1 ] && break
        tries=$((tries - 1)); [ "$tries" -gt 0 ] || fail "no completion at $addr (cid $cid): ${w[*]}"
        sleep 0.05
    done
    [ $((0x${w[3]} & 0xffff)) -eq "$cid" ] || fail "completion at $addr has cid $((0x${w[3]} & 0xffff)), expected $cid"
    [ $(((0x${w[3]} >> 17) & 0x7fff)) -eq $((status)) ] ||
        fail "cid $cid: status $(printf 0x%x $(((0x${w[3]} >> 17) & 0x7fff))), expected $(printf 0x%x $((status)))"
    echo $((0x${w[0]}))
}

# admin_run SLOT OPCODE CID NSID PRP1 CDW10 CDW11 CDW12 [PRP2 [STATUS]]: the
# command in entry SLOT of the admin SQ at $ASQ, the tail doorbell rung to
# SLOT + 1, its completion awaited in entry SLOT of the admin CQ at $ACQ.
admin_run() {
    local slot=$1
    sqe $((ASQ + 64 * slot)) "$2" "$3" "$4" "$5" "$6" "$7" "$8" "${9:-0}"
    echo $((slot + 1)) >"$MNT/doorbells/sq0_tail" || fail "ring sq0"
    wait_cqe $((ACQ + 16 * slot)) "$3" "${10:-0}" >/dev/null
}

# The cleanup every case gets: unmount, then stop any daemon still alive.
cleanup_case() {
    local pid
    if is_mounted "$MNT"; then
        fusermount3 -u "$MNT" 2>/dev/null || umount -l "$MNT" 2>/dev/null
    fi
    pid=$(daemon_pid) && DAEMON_PIDS+=("$pid")
    for pid in "${DAEMON_PIDS[@]}"; do
        if alive "$pid"; then
            kill -TERM "$pid" 2>/dev/null
            wait_gone "$pid" 5 || kill -KILL "$pid" 2>/dev/null
        fi
    done
    # Reap our own children (the foreground daemon) without blocking on others.
    wait 2>/dev/null
    return 0
}
trap cleanup_case EXIT
