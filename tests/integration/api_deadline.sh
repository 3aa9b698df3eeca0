#!/bin/bash
# A stuck SES API request never holds the daemon: SES takes 8 s over one
# SendEmail while upstream.timeout is 5 s.  The other sessions go on
# meanwhile (the other 9 messages arrive while it hangs); at the deadline
# the stuck request is given up, logged "duplicate possible", and sent
# again: every message arrives, the stuck one possibly twice.  ~15 s.
. "$(dirname "$0")/lib.sh"

start_fake_api
set_faults '{"rules": [{"op": "SendEmail", "action": "delay", "seconds": 8, "count": 1}]}'
CRED_KEY=1 UP_EXTRA="$API_CONF" SESSIONS=2 UP_TIMEOUT=5 write_conf
start_daemon

check "10 messages accepted" smtpload --port "$SMTP_PORT" --count 10 \
	--concurrency 2 --messages "$work/sent"
check "9 arrive while one request hangs" wait_delivered 9 4
check "the stuck one is given up at the deadline, a duplicate possible" \
	wait_event -t 10 upstream.outcome_unknown
check "the spool empties" wait_spool_empty 20
check "byte for byte, all 10" verify --record "$FAKE_REC" \
	--messages "$work/sent" --count 10 --allow-duplicates
check "nothing failed or bounced" no_events scheduler.failed bounce.queued
stop_daemon
finish
