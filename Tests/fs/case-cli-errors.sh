# Every validation error: exit status 2, one line on stderr, nothing
# mounted, no image created, no daemon.
. "$(dirname "$0")/lib.sh"

truncate -s 1000 "$IMG/odd.img"
truncate -s 4608 "$IMG/odd4k.img"          # a multiple of 512, not of 4096
truncate -s 8M "$IMG/ok.img"
mkdir -p "$CASE_DIR/full" "$IMG/adir"
touch "$CASE_DIR/full/x" "$CASE_DIR/plainfile"

while IFS= read -r line; do
    [ -n "$line" ] || continue
    eval "args=($line)"
    expect_cli_error 2 "${args[@]}"
done <<LIST
mount "$CASE_DIR/missing"
mount "$CASE_DIR/plainfile"
mount "$CASE_DIR/full"
mount
mount "$MNT" --bogus
mount "$MNT" extra-argument
mount "$MNT" --namespace ""
mount "$MNT" --namespace ",size=1M"
mount "$MNT" --namespace "$CASE_DIR/nodir/a.img"
mount "$MNT" --namespace "$IMG/odd.img"
mount "$MNT" --namespace "$IMG/odd4k.img,lbads=12"
mount "$MNT" --namespace "$IMG/adir"
mount "$MNT" --namespace "$IMG/ok.img,size=16M"
mount "$MNT" --namespace "$IMG/new.img,lbads=10"
mount "$MNT" --namespace "$IMG/new.img,lbads=x"
mount "$MNT" --namespace "$IMG/new.img,ms=x"
mount "$MNT" --namespace "$IMG/new.img,ms=70000"
mount "$MNT" --namespace "$IMG/new.img,size=1000"
mount "$MNT" --namespace "$IMG/new.img,size=0"
mount "$MNT" --namespace "$IMG/new.img,size=1Q"
mount "$MNT" --namespace "$IMG/new.img,frob=1"
mount "$MNT" --namespace "$IMG/new.img,readonly=yes"
mount "$MNT" --namespace "$IMG/ok.img" --namespace "$IMG/../img/ok.img"
mount "$MNT" --host other
mount "$MNT" --mem 5000
mount "$MNT" --mem lots
mount "$MNT" --queues 0
mount "$MNT" --queues 65536
mount "$MNT" --queues many
mount "$MNT" --mqes 0
mount "$MNT" --mqes 65536
mount "$MNT" --mdts 256
mount "$MNT" --mdts -1
mount "$MNT" --aerl 256
mount "$MNT" --aerl x
mount "$MNT" --fuse-threads 0
mount "$MNT" --fuse-threads x
mount "$MNT" --cmb 0
mount "$MNT" --cmb 1000
mount "$MNT" --serial 123456789012345678901
mount "$MNT" --serial ""
mount "$MNT" --model "$(printf 'M%.0s' $(seq 41))"
frobnicate
unmount
LIST

# Nothing was created by the failed attempts.
[ ! -e "$IMG/new.img" ] || fail "a failed mount created an image"
[ ! -e "$XDG_DATA_HOME" ] || fail "a failed mount created the default image"
assert_eq 1000 "$(stat -c %s "$IMG/odd.img")" "odd image untouched"

# Help is not an error.
"$NVMEFS" mount --help >/dev/null 2>&1 || fail "mount --help failed"
