#!/usr/bin/env bash
# nvmefs: the whole test suite (what CI runs through .ci/run).
#
#   1. setup: install missing packages, debug build of nvmefs (swift test
#      builds debug anyway, so the FS tests reuse that build)
#   2. unit tests: swift test
#   3. FS tests: bash Tests/fs/run.sh with NVMEFS=<the debug nvmefs binary>
#   4. conformance against QEMU: tools/conformance, the directed table and
#      30 seeded random sequences (debug build), then the README's
#      conformance commands as written. A SKIP (exit 77) fails CI
#      only when qemu-system-x86_64 is installed yet cannot start; with no
#      QEMU at all it is reported and does not fail the run.
#   5. benchmark smoke: the README's benchmark block (release build, quick runs)
#   6. fuzz slice: tools/fuzz --seconds 20 on each libFuzzer target
#      (docs/FUZZING.md; its own build in .build/fuzz, 2 to 3 minutes)
#   7. stress slice: tools/stress --seconds 20 (docs/STRESS.md)
#   8. sanitizers: tools/sanitize, the unit tests under ThreadSanitizer and
#      under AddressSanitizer with LeakSanitizer, zero reports
#      (docs/SANITIZERS.md; builds in .build/tsan and .build/asan)
#
# Works with no stdin and in a fresh clone. Exits non-zero if any part fails.
# Environment: NVMEFS_SCRATCH = swift build scratch directory (default .build).
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
exec </dev/null

section() { printf '\n==================== %s ====================\n' "$*"; }

if ! command -v swift >/dev/null 2>&1 && [ -x /opt/swift/usr/bin/swift ]; then
    export PATH="/opt/swift/usr/bin:$PATH"
fi
scratch=()
[ -n "${NVMEFS_SCRATCH:-}" ] && scratch=(--scratch-path "$NVMEFS_SCRATCH")

setup_rc=0 unit_rc=0 fs_rc=0 fs_state=""

section "1/8 setup (packages, debug build)"
bash scripts/setup.sh --no-mount --debug || setup_rc=$?
if [ "$setup_rc" -ne 0 ]; then
    echo "test.sh: setup failed (exit $setup_rc); not running the tests"
    exit 1
fi

section "2/8 unit tests (swift test)"
swift test "${scratch[@]}" || unit_rc=$?

section "3/8 file system tests (Tests/fs/run.sh)"
if [ -f Tests/fs/run.sh ]; then
    NVMEFS="$(swift build --show-bin-path "${scratch[@]}")/nvmefs"
    export NVMEFS
    echo "NVMEFS=$NVMEFS"
    bash Tests/fs/run.sh || fs_rc=$?
    [ "$fs_rc" -eq 0 ] && fs_state="ok" || fs_state="FAILED (exit $fs_rc)"
else
    fs_state="skipped (Tests/fs/run.sh does not exist yet)"
    echo "SKIPPED: Tests/fs/run.sh does not exist yet"
fi

section "4/8 conformance against QEMU (tools/conformance)"
conf_rc=0 conf_state=""
# A fixed seed keeps CI reproducible; set NVMEFS_CONFORMANCE_SEED to explore others.
conf_seed="${NVMEFS_CONFORMANCE_SEED:-1}"
bash tools/conformance --directed --random 30 --seed "$conf_seed" --time-budget 120 || conf_rc=$?
case "$conf_rc" in
    0) conf_state="ok (seed $conf_seed)" ;;
    77)
        if command -v qemu-system-x86_64 >/dev/null 2>&1; then
            conf_state="FAILED: SKIP although qemu-system-x86_64 is installed (it cannot start)"
        else
            conf_state="SKIPPED: qemu-system-x86_64 is not installed"; conf_rc=0
        fi ;;
    *) conf_state="FAILED (exit $conf_rc, seed $conf_seed: rerun with tools/conformance --random 30 --seed $conf_seed)" ;;
esac
if [ "$conf_rc" -eq 0 ] && command -v qemu-system-x86_64 >/dev/null 2>&1; then
    # The README's conformance commands, as written.
    bash scripts/readme-block.sh conformance >"${TMPDIR:-/tmp}/nvmefs-conformance-readme.sh"
    if ! bash -e -o pipefail "${TMPDIR:-/tmp}/nvmefs-conformance-readme.sh" >/dev/null; then
        conf_rc=1; conf_state="FAILED: the README's conformance commands"
    fi
    rm -f "${TMPDIR:-/tmp}/nvmefs-conformance-readme.sh"
fi
echo "conformance: $conf_state"

section "5/8 benchmark smoke (the README's benchmark block, as written)"
bench_rc=0
bash scripts/readme-block.sh bench >"${TMPDIR:-/tmp}/nvmefs-bench-smoke.sh"
if [ -s "${TMPDIR:-/tmp}/nvmefs-bench-smoke.sh" ]; then
    bash -e -o pipefail "${TMPDIR:-/tmp}/nvmefs-bench-smoke.sh" || bench_rc=$?
else
    echo "no benchmark block found in README.md"; bench_rc=1
fi
rm -f "${TMPDIR:-/tmp}/nvmefs-bench-smoke.sh"

section "6/8 fuzz slice (tools/fuzz --seconds 20 per target)"
fuzz_rc=0
# NVMEFS_FUZZ_SECONDS: a longer slice, when there is time.
bash tools/fuzz --seconds "${NVMEFS_FUZZ_SECONDS:-20}" || fuzz_rc=$?

section "7/8 stress slice (tools/stress --seconds 20)"
stress_rc=0
bash tools/stress --seconds 20 --nvmefs "$(swift build --show-bin-path "${scratch[@]}")/nvmefs" || stress_rc=$?

section "8/8 sanitizers (tools/sanitize: unit tests under TSan, and ASan with LSan)"
sanitize_rc=0
bash tools/sanitize || sanitize_rc=$?

section "summary"
echo "setup:      ok"
[ "$unit_rc" -eq 0 ] && echo "unit tests: ok" || echo "unit tests: FAILED (exit $unit_rc)"
echo "fs tests:   $fs_state"
echo "conformance: $conf_state"
[ "$bench_rc" -eq 0 ] && echo "bench smoke: ok" || echo "bench smoke: FAILED (exit $bench_rc)"
[ "$fuzz_rc" -eq 0 ] && echo "fuzz slice: ok" || echo "fuzz slice: FAILED (exit $fuzz_rc; findings in .build/fuzz/findings)"
[ "$stress_rc" -eq 0 ] && echo "stress slice: ok" || echo "stress slice: FAILED (exit $stress_rc)"
[ "$sanitize_rc" -eq 0 ] && echo "sanitizers: ok" || echo "sanitizers: FAILED (exit $sanitize_rc; logs in .build/tsan/test.log, .build/asan/test.log)"
[ "$unit_rc" -eq 0 ] && [ "$fs_rc" -eq 0 ] && [ "$conf_rc" -eq 0 ] && [ "$bench_rc" -eq 0 ] && [ "$fuzz_rc" -eq 0 ] \
    && [ "$stress_rc" -eq 0 ] && [ "$sanitize_rc" -eq 0 ]
