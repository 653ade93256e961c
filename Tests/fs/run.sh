#!/usr/bin/env bash
# FS-level tests of nvmefs: runs Tests/fs/case-*.sh (or the cases named on
# the command line: "mount-default", "case-mount-default" or a path), each
# in its own temporary directory, with the binary from $NVMEFS (default
# .build/debug/nvmefs). Prints PASS/FAIL per case (and the log of a failed
# one), then "N passed, N failed"; exits non-zero on any failure.
# Needs /dev/fuse and fusermount3.
set -u
here=$(cd "$(dirname "$0")" && pwd)
NVMEFS=$(realpath -m "${NVMEFS:-.build/debug/nvmefs}")
export NVMEFS
[ -x "$NVMEFS" ] || { echo "run.sh: no nvmefs binary at $NVMEFS (build it, or set NVMEFS)" >&2; exit 2; }

cases=()
if [ $# -eq 0 ]; then
    for c in "$here"/case-*.sh; do cases+=("$c"); done
else
    for name in "$@"; do
        if [ -f "$name" ]; then cases+=("$(realpath "$name")")
        elif [ -f "$here/$name" ]; then cases+=("$here/$name")
        elif [ -f "$here/case-$name.sh" ]; then cases+=("$here/case-$name.sh")
        elif [ -f "$here/$name.sh" ]; then cases+=("$here/$name.sh")
        else echo "run.sh: no case $name" >&2; exit 2
        fi
    done
fi

# Whatever a case leaks (it should not): mounts under its directory are
# detached, processes started from its directory are killed by pid.
sweep() {
    local dir=$1 m pid
    for m in $(awk -v d="$dir/" 'index($2, d) == 1 { print $2 }' /proc/mounts); do
        echo "run.sh: $m was left mounted" >&2
        fusermount3 -u "$m" 2>/dev/null || umount -l "$m" 2>/dev/null
    done
    for pid in $(grep -lsF -- "$dir" /proc/[0-9]*/cmdline 2>/dev/null | cut -d/ -f3); do
        [ "$pid" = "$$" ] && continue
        kill -0 "$pid" 2>/dev/null || continue
        echo "run.sh: process $pid ($(tr '\0' ' ' </proc/"$pid"/cmdline 2>/dev/null)) was left running" >&2
        kill -KILL "$pid" 2>/dev/null
    done
}

passed=0 failed=0
for c in "${cases[@]}"; do
    name=$(basename "$c" .sh)
    CASE_DIR=$(mktemp -d "${TMPDIR:-/tmp}/nvmefs-fs.XXXXXX")
    export CASE_DIR
    log=$CASE_DIR.log
    start=$(date +%s.%N)
    (cd "$CASE_DIR" && timeout -k 5 180 bash "$c") >"$log" 2>&1
    rc=$?
    took=$(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1f", e - s }')
    sweep "$CASE_DIR"
    if [ "$rc" -eq 0 ]; then
        passed=$((passed + 1))
        echo "PASS $name (${took}s)"
    else
        failed=$((failed + 1))
        echo "FAIL $name (exit $rc, ${took}s)"
        sed 's/^/    /' "$log"
    fi
    rm -rf "$CASE_DIR" "$log"
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
