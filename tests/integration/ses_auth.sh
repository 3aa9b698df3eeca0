#!/bin/bash
# SES refuses the credentials ("535 Authentication Credentials Invalid"):
# the daemon says loudly that the credentials are wrong, backs off (15 s
# at first) instead of hammering SES, bounces nothing and keeps the
# mail.  Once SES takes the credentials again (the rule is removed), the
# backoff runs out, the recovery is logged and all 3 messages arrive.
. "$(dirname "$0")/lib.sh"

refused_auth() { grep -c 'step=auth rule=0 ' "$FAKE_REC/faults.log" 2>/dev/null; }

start_fake starttls
set_faults '{"rules": [{"step": "auth", "reply": "535 Authentication Credentials Invalid"}]}'
write_conf
start_daemon

check "3 messages accepted" smtpload --port "$SMTP_PORT" --count 3 --messages "$work/sent"
check "the credentials problem is logged, naming the key to check" \
	wait_event upstream.auth_failed \
	    reply='535 Authentication Credentials Invalid' \
	    msg='.*Check upstream\.credentials.*'
check "the pool backs off 15 s" wait_event upstream.backoff seconds=15 failures=1
check "nothing delivered" [ "$(delivered)" -eq 0 ]
check "the spool keeps all 3" [ "$(spool_count)" -eq 3 ]
check "no bounce, no failed recipient" \
	no_events bounce.queued scheduler.failed scheduler.expired
check "the password is never logged" bash -c "! grep -q BTestPassw0rd '$DAEMON_LOG'"
refused_first=$(refused_auth)

# SES takes the credentials again: after the backoff all 3 arrive.
set_faults '{}'
check "all 3 arrive after the backoff" wait_delivered 3 45
check "the recovery is logged" wait_event -t 10 upstream.auth_ok
check "the spool empties" wait_spool_empty 10
check "byte for byte, each once" verify --record "$FAKE_REC" \
	--messages "$work/sent" --count 3
stop_daemon

refused=$(refused_auth)
echo "535s at the fake: $refused ($refused_first before the rule was removed)"
# Each of the (at most 3) sessions opened at once may meet a 535; then
# the backoff stops every connection: no 535 while it runs.
check "SES was not hammered (at most 3 535s)" [ "$refused" -le 3 ]
check "the first delivery waited out the 15 s backoff" python3 -c "
import datetime, sys
def first(pattern):
    for line in open('$DAEMON_LOG'):
        if pattern in line:
            return datetime.datetime.fromisoformat(line[:23]).timestamp()
waited = first(' scheduler.delivered ') - first(' upstream.auth_failed ')
print('from the 535 to the first delivery: %.1fs' % waited)
sys.exit(0 if waited >= 14.5 else 1)"
check "still nothing bounced or failed" \
	no_events bounce.queued scheduler.failed scheduler.expired
finish
