# The data path under fio with verification: random writes whose every
# block carries a checksum and its own offset, read back and checked, with
# psync (1, 2 and 4 jobs), libaio and io_uring (queue depth 16), on 512 and
# 4096-byte LBAs; 4 KiB, 12 KiB and blocks that are not whole LBAs (edge
# read-modify-write). Each
# job verifies its own region, so concurrent jobs check one another's
# neighbourhood too. An engine fio lacks here is skipped, and said so.
. "$(dirname "$0")/lib.sh"
command -v fio >/dev/null || fail "fio is not installed (scripts/setup.sh installs it)"

mount_nvmefs --namespace "$IMG/a.img,size=32M" --namespace "$IMG/b.img,size=32M,lbads=12" --queues 4
M=$MNT

# run_verify FILE ENGINE JOBS DEPTH BS: one fio run, write then verify.
run_verify() {
    local file=$1 engine=$2 jobs=$3 depth=$4 bs=$5 log
    log=$CASE_DIR/fio-$engine-j$jobs-$bs-$(basename "$(dirname "$file")").log
    if ! fio --name=verify --filename="$file" --ioengine="$engine" --iodepth="$depth" --numjobs="$jobs" \
            --direct=1 --rw=randwrite --bs="$bs" --size=8M --offset_increment=8M --verify=crc32c \
            --verify_fatal=1 --do_verify=1 --randrepeat=0 --group_reporting >"$log" 2>&1; then
        fail "fio $engine j$jobs qd$depth bs=$bs on $file: $(grep -m 3 -iE 'error|verify|bad' "$log" | tr '\n' ' ')"
    fi
    grep -q "err= 0" "$log" || fail "fio $engine j$jobs bs=$bs: no clean result line ($(tail -n 3 "$log" | tr '\n' ' '))"
}

engine_works() {   # engine_works ENGINE: fio can use it here
    fio --name=probe --filename="$CASE_DIR/probe" --size=4k --bs=4k --rw=read --ioengine="$1" \
        --iodepth=1 >/dev/null 2>&1
}

for ns in 1 2; do
    F=$M/namespaces/$ns/data
    for jobs in 1 2 4; do run_verify "$F" psync "$jobs" 1 4k; done
    run_verify "$F" psync 2 1 12k
    for engine in libaio io_uring; do
        if engine_works "$engine"; then
            run_verify "$F" "$engine" 2 16 4k
        else
            note "fio engine $engine is not usable here; skipped"
        fi
    done
done
# Blocks that are not whole LBAs (3584 bytes on 4096-byte LBAs, 1000 bytes
# on 512-byte LBAs): the host reads and rewrites partial edge blocks, two
# jobs side by side.
run_verify "$M/namespaces/2/data" psync 2 1 3584
run_verify "$M/namespaces/1/data" psync 2 1 1000
