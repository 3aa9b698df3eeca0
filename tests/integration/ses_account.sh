#!/bin/bash
# The account's own limits, read with GetAccount (every 2 s here) over
# the API with an IAM key: upstream.rate = 0 follows the account's
# MaxSendRate of 5 less 10 % (the fake, SES-like, takes 5 a second with
# bursts of 10 and throttles above: never once);
# sending pauses before the 24-hour quota (25) is spent, not after SES
# refuses, and resumes when a read shows room; SendingEnabled = false
# pauses it loudly until SES enables it again.  Nothing bounces and
# every message arrives once, byte for byte.
. "$(dirname "$0")/lib.sh"

start_fake_api
set_faults '{"rate": 5, "rate_burst": 10, "daily_quota": 25}'
API_CONF=${API_CONF/account_check_interval = 0;/account_check_interval = 2;}
CRED_KEY=1 RATE=0.0 UP_EXTRA="$API_CONF" write_conf
start_daemon

check "GetAccount read: rate 0 follows MaxSendRate 5 less 10 %" \
	wait_event upstream.rate_set rate=4.50 source=GetAccount
check "30 messages accepted" smtpload --port "$SMTP_PORT" --count 30 \
	--concurrency 4 --messages "$work/sent"
check "the quota pause comes before SES refuses" \
	wait_event -t 20 account.paused reason=quota max_24h=25
sleep 1.5
n=$(delivered)
echo "delivered before the pause: $n"
check "15 or more sent, fewer than the quota's 25" [ "$n" -ge 15 -a "$n" -lt 25 ]
check "sesrelayctl stats shows the account paused" bash -c \
	"'$sbin/sesrelayctl' -c '$work/sesrelay.conf' stats | grep -q '^account .* of 25 recipients in 24 h, at most 5.00/s; sending enabled, HEALTHY; PAUSED: quota'"
check "... and in JSON" bash -c "'$sbin/sesrelayctl' -c '$work/sesrelay.conf' stats --json | grep -q '\"max_24h_send\":25,.*\"paused\":\"quota\"'"
set_faults '{"rate": 5, "rate_burst": 10, "daily_quota": 1000}'
check "a read with room resumes" wait_event -t 10 account.resumed was=quota
check "all 30 arrive" wait_delivered 30 20

# SES disables sending for the account: paused loudly, then resumed.
set_faults '{"rate": 5, "rate_burst": 10, "daily_quota": 1000, "account": {"SendingEnabled": false}}'
check "SendingEnabled false pauses, at error level" \
	wait_event -t 10 account.paused reason=disabled sending_enabled=false
check "3 more accepted" smtpload --port "$SMTP_PORT" --count 3 --start 31 \
	--messages "$work/sent"
sleep 2.5
check "nothing sent while disabled" [ "$(delivered)" -eq 30 ]
set_faults '{"rate": 5, "rate_burst": 10, "daily_quota": 1000}'
check "enabled again: resumed" wait_event -t 10 account.resumed was=disabled
check "all 33 arrive" wait_delivered 33 20
check "byte for byte, each once" verify --record "$FAKE_REC" \
	--messages "$work/sent" --count 33
check "SES never refused: no 429, no quota refusal" \
	bash -c "! grep -q 'limit=' '$FAKE_REC/faults.log' 2>/dev/null"
check "no bounce, no failure" no_events bounce.queued scheduler.failed
read -r span peak < <(python3 -c "
import bisect, glob, os
t = sorted(os.stat(p).st_mtime for p in glob.glob('$FAKE_REC/*.json'))[:20]
print('%.2f %d' % (t[-1] - t[5],
      max(bisect.bisect_left(t, x + 1.0) - i for i, x in enumerate(t))))")
# The pool's bucket starts full (one second's worth, 4.5): past that
# first burst, the 6th to the 20th took 14 intervals at 4.5/s.
echo "the 6th to the 20th: ${span}s; at most $peak in one second (the first burst)"
check "past the first burst, under 5/s (14 intervals in 2.8 s or more)" \
	python3 -c "import sys; sys.exit(0 if $span >= 2.8 else 1)"
stop_daemon
finish
