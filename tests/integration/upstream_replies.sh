#!/bin/bash
# SES's replies decide a message's fate: 4xx defers it (it is retried and
# delivered later), 5xx fails that recipient (logged, removed, not
# retried), a connection lost after the final dot is retried (at least
# once), a wrong password is logged as a credentials problem and nothing
# is lost.
. "$(dirname "$0")/lib.sh"


start_fake starttls
write_conf
start_daemon

# 4xx after the dot, twice: deferred, then delivered.
echo '{"rules":[{"step":"dot","reply":"451 Temporary service failure","count":2}]}' >"$FAKE_FAULTS"
check "a message is accepted" smtpload --port "$SMTP_PORT" --count 1 --messages "$work/sent"
check "451 defers it" wait_event scheduler.deferred pending=1 attempts=1
check "it is delivered on a later attempt" wait_delivered 1 60
check "the delivery is logged with its attempt count" wait_event scheduler.delivered \
	to='<rcpt1-0@example.net>' attempts=3

# 5xx for one recipient at RCPT: that one fails, the other is delivered.
echo '{"rules":[{"step":"rcpt","match":"rcpt2-1@","reply":"554 Message rejected: Email address is not verified."}]}' >"$FAKE_FAULTS"
check "a 2-recipient message is accepted" smtpload --port "$SMTP_PORT" --start 2 \
	--count 1 --rcpts 2 --messages "$work/sent"
check "the refused recipient fails, with SES's text" \
	wait_event scheduler.failed to='<rcpt2-1@example.net>' \
	reply='554 Message rejected: Email address is not verified\.'
check "the other recipient is delivered" wait_event scheduler.delivered to='<rcpt2-0@example.net>'
check "the message leaves the spool" wait_spool_empty 30
check "the fake got it for one recipient" python3 -c "
import json, glob, sys
m = [json.load(open(p)) for p in glob.glob('$FAKE_REC/*.json')]
sys.exit(0 if any(x['rcpt_to'] == ['rcpt2-0@example.net'] for x in m) else 1)"

# Connection dropped after the dot, before the reply: retried.
echo '{"rules":[{"step":"dot","action":"drop","count":1}]}' >"$FAKE_FAULTS"
check "a third message is accepted" smtpload --port "$SMTP_PORT" --start 3 --count 1 --messages "$work/sent"
check "the unknown outcome is logged" wait_event upstream.outcome_unknown \
	msg='.*a duplicate is possible'
check "and it is delivered after all" wait_delivered 3 60
check "all three byte for byte" verify --record "$FAKE_REC" --messages "$work/sent" --count 3
stop_daemon

# Wrong password: loud log, nothing lost.
echo '{}' >"$FAKE_FAULTS"
CRED_PASSWORD=wrong write_conf
start_daemon
check "a message is accepted with bad credentials" smtpload --port "$SMTP_PORT" --start 4 --count 1 --messages "$work/sent"
check "535 is logged as a credentials problem" wait_event upstream.auth_failed \
	reply='535 Authentication Credentials Invalid' \
	msg='.*Check upstream\.credentials.*'
check "the message stays queued" [ "$(spool_count)" -eq 1 ]
check "the password is never logged" bash -c "! grep -q -e wrong -e BTestPassw0rd '$DAEMON_LOG'"
stop_daemon
CRED_PASSWORD=BTestPassw0rd write_conf
start_daemon
check "with the right password it is delivered" wait_delivered 4 60
finish
