#!/bin/bash
# SIGTERM during a load of 1,000 messages: sesrelayd stops accepting,
# lets the transactions out with SES finish, exits 0 with the spool
# intact; after a restart the rest is delivered: nothing acknowledged is
# lost, nothing is sent twice.  SIGUSR1 makes deferred mail due at once.
. "$(dirname "$0")/lib.sh"

start_fake starttls
# SES is slow (50 ms per message), so a queue builds up.
set_faults '{"rules": [{"step": "dot", "action": "delay", "seconds": 0.05}]}'
SESSIONS=2 write_conf
start_daemon
: >"$work/acked"
smtpload --port "$SMTP_PORT" --count 1000 --concurrency 8 \
	--messages "$work/sent" --acked "$work/acked" --tolerate-errors \
	>"$work/load.out" 2>&1 &
loader=$!
for _ in $(seq 600); do
	[ "$(wc -l < "$work/acked")" -ge 300 ] && break
	sleep 0.05
done
kill -TERM "$DAEMON_PID"
wait "$DAEMON_PID"
rc=$?
wait $loader
check "sesrelayd exits 0 after SIGTERM under load" [ "$rc" -eq 0 ]
check "the shutdown said what was out" \
	wait_event -t 1 daemon.stopping queued='[0-9]+' in_flight='[0-9]+'
check "in-flight transactions finished within the bound" \
	[ "$(log_count daemon.drain_timeout in_flight='[0-9]+')" -eq 0 ]
acked=$(sort -un "$work/acked" | wc -l)
left=$(spool_count)
echo "acknowledged: $acked, delivered before the stop: $(delivered), left in the spool: $left"
check "what was acknowledged and not delivered is in the spool" \
	[ $((left + $(delivered))) -ge "$acked" ]
sort -un "$work/acked" >"$work/expect"
set_faults '{}'
start_daemon
check "after the restart everything acknowledged is delivered" \
	wait_delivered "$(wc -l < "$work/expect")" 120
check "byte for byte, none twice, and no 250 lost at the stop" \
	verify --record "$FAKE_REC" --messages "$work/sent" --expect-ids "$work/expect"
check "the spool is empty" wait_spool_empty 30

# SIGUSR1: a deferred message is due at once instead of in 10 minutes.
set_faults '{"rules": [{"step": "rcpt", "reply": "451 Temporary service failure", "count": 1}]}'
stop_daemon
RETRY=600 write_conf
start_daemon
before=$(delivered)
check "one more message accepted" smtpload --port "$SMTP_PORT" --start 2001 --count 1 --messages "$work/sent2"
check "it is deferred for 600 s" wait_event scheduler.deferred pending=1 attempts=1 \
	retry_in='6[0-9][0-9]'
kill -USR1 "$DAEMON_PID"
check "SIGUSR1 makes it due now: it arrives" wait_delivered $((before + 1)) 30
check "SIGUSR1 is logged" wait_event daemon.flush signal=USR1 due=1
stop_daemon
finish
