#!/usr/bin/env bash
# nvmefs setup: install what is missing, build nvmefs, mount a default device.
#
#   scripts/setup.sh [--no-mount] [--no-build] [--debug]
#
#   --no-mount  install and build only
#   --no-build  install only (implies --no-mount)
#   --debug     build the debug binary (.build/debug/nvmefs) instead of release
#
# Environment:
#   NVMEFS_MOUNT     where to mount (default: $HOME/nvmefs)
#   NVMEFS_SCRATCH   swift build scratch directory (default: .build)
#
# Idempotent: packages already installed are skipped, the build is
# incremental, and an nvmefs already mounted at NVMEFS_MOUNT is left alone.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

mount_it=1
build_it=1
config=release
for arg in "$@"; do
    case "$arg" in
        --no-mount) mount_it=0 ;;
        --no-build) build_it=0; mount_it=0 ;;
        --debug) config=debug ;;
        -h|--help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "setup.sh: unknown option '$arg' (try --help)" >&2; exit 2 ;;
    esac
done

say() { printf '[setup] %s\n' "$*"; }
die() { printf '[setup] error: %s\n' "$*" >&2; exit 1; }

# --- 1. system packages ------------------------------------------------------
# Debian packages the project needs to build (libfuse3-dev, pkg-config, gcc),
# to mount (fuse3: fusermount3), to test and benchmark (fio, xxd; e2fsprogs
# for the ext4 crash-consistency case, Tests/fs/case-crash-ext4.sh; setpriv
# from util-linux runs Tests/fs/case-permissions.sh as nobody), QEMU's NVMe
# device for the differential conformance run (qemu-system-x86), and
# nvme-cli for `nvmefs nvme` (the preload shim) and its tests; libnbd-dev for
# the NBD backend, nbdkit and qemu-utils (qemu-nbd, qemu-img) for its tests.
PACKAGES=(libfuse3-dev fuse3 pkg-config fio xxd e2fsprogs util-linux build-essential gcc qemu-system-x86 nvme-cli libnbd-dev nbdkit qemu-utils)

as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        die "need root to run: $* (not root and no sudo)"
    fi
}

missing=()
for p in "${PACKAGES[@]}"; do
    dpkg -s "$p" 2>/dev/null | grep -q '^Status: install ok installed' || missing+=("$p")
done
# python3 parses fio's JSON in tools/bench; any python3 on PATH will do.
command -v python3 >/dev/null 2>&1 || missing+=(python3)

if [ "${#missing[@]}" -gt 0 ]; then
    command -v apt-get >/dev/null 2>&1 || die "missing packages (${missing[*]}) and no apt-get"
    say "installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q </dev/null
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" </dev/null
else
    say "system packages present: ${PACKAGES[*]}"
fi

if [ ! -e /dev/fuse ]; then
    say "warning: /dev/fuse does not exist; mounting will fail (try: modprobe fuse)"
fi

[ "$build_it" -eq 1 ] || exit 0

# --- 2. build ------------------------------------------------------------------
if ! command -v swift >/dev/null 2>&1; then
    [ -x /opt/swift/usr/bin/swift ] && export PATH="/opt/swift/usr/bin:$PATH"
fi
command -v swift >/dev/null 2>&1 || die "swift is not on PATH (Swift 6 toolchain required)"

scratch=()
[ -n "${NVMEFS_SCRATCH:-}" ] && scratch=(--scratch-path "$NVMEFS_SCRATCH")

say "building nvmefs ($config): swift build -c $config --product nvmefs ${scratch[*]}"
swift build -c "$config" --product nvmefs "${scratch[@]}" </dev/null || die "swift build failed"
# The preload shim of `nvmefs nvme` and `nvmefs exec`, next to the binary.
swift build -c "$config" --product nvmefs-shim "${scratch[@]}" </dev/null || die "swift build of the shim failed"
bin="$(swift build -c "$config" --show-bin-path "${scratch[@]}" </dev/null)/nvmefs"
[ -x "$bin" ] || die "build finished but $bin is missing"
[ -f "$(dirname "$bin")/libnvmefs-shim.so" ] || die "build finished but libnvmefs-shim.so is missing"
say "built $bin"

[ "$mount_it" -eq 1 ] || exit 0

# --- 3. mount ------------------------------------------------------------------
mnt="${NVMEFS_MOUNT:-$HOME/nvmefs}"
mnt="$(realpath -m -- "$mnt")"

show_howto() {
    say "unmount with: $bin unmount $mnt"
}

# The mount table entry for $mnt, if any: "FSTYPE SOURCE".
entry="$(findmnt -rn -o FSTYPE,SOURCE --mountpoint "$mnt" 2>/dev/null | tail -n 1 || true)"
if [ -n "$entry" ]; then
    if [ -e "$mnt/regs/cap" ] && [ -e "$mnt/bar0" ]; then
        say "nvmefs is already mounted at $mnt"
        show_howto
        exit 0
    fi
    case "$entry" in
        *nvmefs*)
            if stat -- "$mnt/." >/dev/null 2>&1; then
                say "nvmefs is already mounted at $mnt"
                show_howto
                exit 0
            fi
            say "stale nvmefs mount at $mnt (its daemon is gone); cleaning it up"
            fusermount3 -u "$mnt" 2>/dev/null || fusermount3 -uz "$mnt" 2>/dev/null ||
                as_root umount -l "$mnt" || die "could not remove the stale mount at $mnt"
            ;;
        *)
            die "something else is mounted at $mnt ($entry); set NVMEFS_MOUNT to another directory"
            ;;
    esac
fi

mkdir -p -- "$mnt"
if [ -n "$(ls -A -- "$mnt" 2>/dev/null)" ]; then
    die "$mnt is not empty; nvmefs mounts on an empty directory (set NVMEFS_MOUNT)"
fi

say "mounting: $bin mount $mnt"
"$bin" mount "$mnt" </dev/null || die "nvmefs mount failed"
say "nvmefs is mounted at $mnt"
say "  namespace 1 as a file: $mnt/namespaces/1/data"
show_howto
