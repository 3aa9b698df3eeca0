#!/bin/bash
# sesrelayctl against a running daemon and a stopped one: queue (with the
# reason a message waits), show, stats, hold/release, delete, flush, each
# in text and JSON; an unprivileged user may look but not change.
. "$(dirname "$0")/lib.sh"

start_fake starttls
# Every delivery to wait@ is deferred for now.
set_faults '{"rules": [{"step": "rcpt", "reply": "451 Temporary service failure", "match": "wait@example.com"}]}'
RETRY="600" write_conf
start_daemon

swaks --server 127.0.0.1 --port "$SMTP_PORT" --from sender@example.com \
	--to wait@example.com,ok@example.com --header "Subject: one" >/dev/null 2>&1
check "the deliverable recipient arrives" wait_delivered 1 30
check "the other is deferred" wait_event scheduler.deferred pending=1
id=$(ctl queue --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["messages"][0]["id"])')
check "queue --json lists the message" [ ${#id} -eq 32 ]
ctl queue >"$work/queue.txt"
check "queue: id, sender, the pending recipient with SES's reason" \
	grep -q "^$id .*deferred, 1 attempt" "$work/queue.txt"
check "... the waiting recipient and why" \
	grep -q '^  to   <wait@example.com>  pending  "451 Temporary service failure"' "$work/queue.txt"
check "... not the delivered one" bash -c "! grep -q 'ok@example.com' '$work/queue.txt'"
ctl show "$id" >"$work/show.txt"
check "show: every recipient with its state" \
	grep -q '^  to   <ok@example.com>  delivered  "250 Ok' "$work/show.txt"
check "show --json: states per recipient" python3 - "$id" <<PY
import json, subprocess, sys
m = json.loads(subprocess.check_output(["$sbin/sesrelayctl", "-c", "$work/sesrelay.conf", "show", sys.argv[1], "--json"]))
st = {r["address"]: r["status"] for r in m["recipients"]}
assert st == {"wait@example.com": "pending", "ok@example.com": "delivered"}, st
assert m["attempts"] == 1 and m["state"] == "deferred" and m["sender"] == "sender@example.com", m
PY
"$sbin/sesrelay-sendmail" -C "$work/sesrelay.conf" -bp >"$work/mailq.txt"
check "mailq: Postfix's layout, the id, size, sender" \
	grep -Eq "^$id  +[0-9]+ [A-Z][a-z]{2} [A-Z][a-z]{2} +[0-9]+ [0-9:]{8}  sender@example.com$" "$work/mailq.txt"
check "mailq: the reason it waits, then the recipient" \
	grep -A1 -q '^(451 Temporary service failure)$' "$work/mailq.txt"
check "mailq: the pending recipient" grep -q '^ *wait@example.com$' "$work/mailq.txt"
check "mailq: the total" grep -q '^-- [0-9]* Kbytes in 1 Request\.$' "$work/mailq.txt"
check "stats: counters and queue depth" python3 - <<PY
import json, subprocess
s = json.loads(subprocess.check_output(["$sbin/sesrelayctl", "-c", "$work/sesrelay.conf", "stats", "--json"]))
assert s["queue"]["messages"] == 1, s
assert s["counters"]["accepted"] == 1 and s["counters"]["delivered"] == 1, s
assert s["counters"]["deferred"] == 1 and s["replies"]["temporary"] == 1, s
assert s["upstream"]["quota_paused"] is False and s["upstream"]["rate"] > 0, s
PY
check "stats in text" bash -c "ctl() { '$sbin/sesrelayctl' -c '$work/sesrelay.conf' \"\$@\"; }; ctl stats | grep -q '^queue         1 message (0 ready, 0 held)'"

# An unprivileged user may look, not change.
chmod 755 "$work" "$work/run" 2>/dev/null
userctl=$(user_copy sesrelayctl)
check "a user may list the queue" bash -c "runuser -u nobody -- '$userctl' -s '$work/run/control.sock' queue | grep -q '^$id '"
runuser -u nobody -- "$userctl" -s "$work/run/control.sock" hold "$id" 2>"$work/nobody.err"
check "... but not hold a message (exit 77)" [ $? -eq 77 ]
check "... and is told why" grep -q "permission denied" "$work/nobody.err"
check "the refusal is logged" wait_event control.refused uid='[0-9]+' \
	request="hold $id"

check "hold" quiet ctl hold "$id"
# The hold is in memory when ctl returns; the state file follows (the
# spool's sync threads write it).
held_on_disk() {
	for _ in $(seq 50); do
		grep -qs '^held$' "$work/spool/state/$id" && return 0
		tick
	done
	return 1
}
check "held, in the spool's state" held_on_disk
set_faults '{}'
check "flush does not send a held message" quiet ctl flush
check "queue shows it held" bash -c "'$sbin/sesrelayctl' -c '$work/sesrelay.conf' queue | grep -q '^$id .*held'"
ctl show 0000000000000000 2>"$work/show.err"
check "show of an unknown id: exit 66" [ $? -eq 66 ]
ctl hold nonsense 2>/dev/null
check "a malformed id: exit 64" [ $? -eq 64 ]
check "release, then flush: it is delivered" quiet ctl release "$id"
ctl flush >/dev/null
check "the deferred recipient arrives" wait_delivered 2 30
check "the queue is empty again" wait_spool_empty 30

set_faults '{"rules": [{"step": "rcpt", "reply": "451 Temporary service failure"}]}'
swaks --server 127.0.0.1 --port "$SMTP_PORT" --from sender@example.com \
	--to other@example.com --header "Subject: two" >/dev/null 2>&1
check "delete all" bash -c "ctl() { '$sbin/sesrelayctl' -c '$work/sesrelay.conf' \"\$@\"; }; ctl hold all >/dev/null; ctl delete all | grep -q '^1 message deleted'"
check "deleted from the spool" wait_spool_empty 30
check "and not delivered" [ "$(delivered)" -eq 2 ]
check "reload" quiet ctl reload
stop_daemon

for cmd in queue "show $id" flush "hold all" "release all" "delete $id" stats reload; do
	ctl $cmd >/dev/null 2>"$work/down.err"
	check "with the daemon stopped, $cmd: exit 69" [ $? -eq 69 ]
	check "... and a clear message" grep -q "sesrelayd is not running ($work/run/control.sock: " "$work/down.err"
done
finish
