#!/bin/bash
# 200 messages over TCP and 200 through sesrelay-sendmail: every one
# delivered once to the fake SES, byte for byte, and the spool empties.
. "$(dirname "$0")/lib.sh"

start_fake starttls
write_conf
start_daemon

check "200 messages accepted over TCP (8 clients)" \
	smtpload --port "$SMTP_PORT" --count 200 --concurrency 8 --messages "$work/sent"
check "200 messages accepted by sesrelay-sendmail" \
	smtpload --sendmail "$sbin/sesrelay-sendmail" --start 201 --count 200 \
		--concurrency 4 --messages "$work/sent"
check "all 400 arrived at SES" wait_delivered 400 120
check "each arrived once, byte for byte" \
	verify --record "$FAKE_REC" --messages "$work/sent" --count 400
check "the spool is empty afterwards" wait_spool_empty 30
check "SES message ids were logged" wait_event -t 1 scheduler.delivered ses_id='0100.*'
check "no credentials in the log" bash -c "! grep -q 'BTestPassw0rd' '$DAEMON_LOG'"
stop_daemon
check "SIGTERM: exit 0" [ "$DAEMON_EXIT" -eq 0 ]
finish
