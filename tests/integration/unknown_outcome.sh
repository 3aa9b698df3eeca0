#!/bin/bash
# A connection lost after the final dot leaves the outcome unknown (SES
# may have the message).  Such a message is sent again on the retry
# schedule, not at once, and at most retry.max_unknown_outcome_copies
# times (default 3); then it is held for the operator.  The count is in
# the spool's state: a restart (kill -9) does not reset it.
# What is asserted is what SES (the fake) got: how many copies, how far
# apart; and what the spool and `sesrelayctl show` say.
. "$(dirname "$0")/lib.sh"

# copies N: how many copies of test message N the fake recorded
copies() { grep -l "^X-Test-Id: $1" "$FAKE_REC"/*.eml 2>/dev/null | wc -l; }
# gaps N: seconds between the copies of message N, as recorded
gaps() {
	python3 - "$FAKE_REC" "$1" <<'PY'
import glob, os, re, sys
t = sorted(os.stat(p[:-4] + ".json").st_mtime for p in glob.glob(sys.argv[1] + "/*.eml")
           if re.search(rb"^X-Test-Id: %s\r$" % sys.argv[2].encode(), open(p, "rb").read(), re.M))
print(" ".join("%.1f" % (b - a) for a, b in zip(t, t[1:])))
PY
}
# qid N: the queue id of test message N (from its copies in the log)
qid() { log_field scheduler.outcome_unknown id to="<rcpt$1-0@.*>"; }
unknown_of() {
	ctl show "$1" --json | python3 -c 'import json,sys; m=json.load(sys.stdin); print(m["state"], m["recipients"][0]["unknown_outcome_copies"])'
}

RETRY="2, 4, 8"
start_fake starttls
# Every copy is recorded by SES, and the connection dropped before the 250.
set_faults '{"rules":[{"step":"dot","action":"drop_after_record"}]}'
write_conf
start_daemon

check "message 1 accepted" smtpload --port "$SMTP_PORT" --count 1 --messages "$work/sent"
check "it is held after the third copy" wait_event -t 40 scheduler.held by=unknown_outcome copies=3
sleep 3
check "SES got exactly 3 copies" [ "$(copies 1)" -eq 3 ]
g=$(gaps 1)
echo "message 1: seconds between copies: $g"
check "the copies are spaced by the schedule (>= 2s, then >= 4s)" \
	awk -v g="$g" 'BEGIN { n = split(g, a, " "); exit !(n == 2 && a[1] >= 1.9 && a[2] >= 3.9) }'
id1=$(qid 1)
check "each copy is logged with its count" wait_event -t 1 scheduler.outcome_unknown \
	id="$id1" to='<rcpt1-0@example.net>' copies=3 max=3
check "sesrelayctl show: held, 3 copies of unknown outcome" \
	[ "$(unknown_of "$id1")" = "held 3" ]
check "sesrelayctl show in text says so too" \
	bash -c "'$sbin/sesrelayctl' -c '$work/sesrelay.conf' show $id1 | grep -q 'unknown_outcome_copies=3'"

# The count survives a kill: message 2 is killed after its second copy.
check "message 2 accepted" smtpload --port "$SMTP_PORT" --start 2 --count 1 --messages "$work/sent"
id2=
for _ in $(seq 100); do id2=$(qid 2); [ -n "$id2" ] && break; sleep 0.1; done
check "its second copy is recorded in the spool's state" bash -c "
	for i in \$(seq 100); do grep -qx 'unknown 0 2' '$work/spool/state/$id2' 2>/dev/null && exit 0; sleep 0.1; done; exit 1"
kill9_daemon
start_daemon
check "after the restart it is held after one more copy" \
	wait_event -t 40 scheduler.held id="$id2" by=unknown_outcome copies=3
sleep 3
check "SES got exactly 3 copies of message 2" [ "$(copies 2)" -eq 3 ]
check "and still 3 of message 1 (held across the restart)" [ "$(copies 1)" -eq 3 ]

# The operator releases message 1 with SES working again: one more copy.
set_faults '{}'
check "release" quiet ctl release "$id1"
check "message 1 is delivered once more" wait_event -t 20 scheduler.delivered \
	id="$id1" duplicate_possible=yes
check "SES got 4 copies of message 1 in all" [ "$(copies 1)" -eq 4 ]
check "message 2 is still held" [ "$(unknown_of "$id2")" = "held 3" ]
check "every copy arrived byte for byte" \
	verify --record "$FAKE_REC" --messages "$work/sent" --count 2 --allow-duplicates
stop_daemon
finish
