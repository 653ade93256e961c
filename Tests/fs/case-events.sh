# events and cmd: the built-in host owns Asynchronous Event Requests. An AER
# written to cmd fails at once with EINVAL; an invalid doorbell write on a
# user queue shows up in events (the host's own AER reported it).
. "$(dirname "$0")/lib.sh"

mount_nvmefs --namespace "$IMG/e.img,size=1M" --mem 64K --queues 8
M=$MNT

assert_eq 444 "$(stat -c %a "$M/events")" "mode of events"
grep -q '^events ' "$M/README" || fail "README does not list events"
assert_eq "" "$(cat "$M/events")" "no event yet"

# Refused at once (no 30 s wait, no controller reset): EINVAL.
start=$(date +%s)
expect_errno "echo 'admin opcode=0x0c' >'$M/cmd'" EINVAL
[ $(( $(date +%s) - start )) -lt 10 ] || fail "the refused AER took $(( $(date +%s) - start )) s"

# SQ 7 does not exist (the host owns queues 1-4 at most): an invalid doorbell
# register, reported as an Error event with the Error Information log page.
echo 1 >"$M/doorbells/sq7_tail" || fail "ring the doorbell of a missing queue"
tries=200
until grep -q 'type=Error info=Write to Invalid Doorbell Register' "$M/events"; do
    tries=$((tries - 1)); [ "$tries" -gt 0 ] || fail "no event after an invalid doorbell write: $(cat "$M/events")"
    sleep 0.05
done
line=$(head -n 1 "$M/events")
[[ $line =~ ^[0-9]{4}-[0-9]{2}-[0-9]{2}T[^\ ]+\ type=Error\ info=.+\ log-page=0x01\ \(.+\)$ ]] \
    || fail "events line format: $line"

unmount_nvmefs
