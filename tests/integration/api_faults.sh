#!/bin/bash
# SES API refusals over transport = "api", one daemon, in turn:
# 1. SendingPausedException: the whole pool pauses with one loud log
#    (upstream.account_paused, error level), nothing bounces, one probe
#    a second (quota_probe_interval); lifted, all arrive.
# 2. The daily quota (LimitExceededException "Daily message quota
#    exceeded."): sending pauses (upstream.quota_paused), nothing
#    bounces; lifted, all arrive.
# 3. 429 TooManyRequestsException at SES's 5 recipients/s while the
#    relay believes 50: the pool halves its rate down to about 5/s, the
#    429s stay few, all arrive.
# Everything byte for byte, once.  4. MessageRejected for one address:
# the message fails at once, never retried, one bounce goes to the
# sender.  About 25 s.
. "$(dirname "$0")/lib.sh"

start_fake_api
CRED_KEY=1 UP_EXTRA="$API_CONF" RATE=50 SESSIONS=4 QUOTA_PROBE=1 \
	EXTRA_CONF='bounce = { sender = "bounces@example.com"; };' write_conf
start_daemon

# 1. SendingPaused
set_faults '{"rules": [{"op": "SendEmail", "error": "SendingPausedException"}]}'
check "5 messages accepted" smtpload --port "$SMTP_PORT" --count 5 \
	--concurrency 2 --messages "$work/sent"
check "the pause is logged" wait_event upstream.account_paused
check "the relay probes while paused" wait_event -n 2 -t 10 upstream.quota_probe
check "nothing arrives, nothing bounces, the spool keeps all 5" eval \
	'[ "$(delivered)" -eq 0 ] && [ "$(spool_count)" -eq 5 ] && no_events bounce.queued scheduler.failed'
check "logged once, at error level, with SES's answer" eval \
	'[ "$(log_count upstream.account_paused reply="400 SendingPausedException.*")" -eq 1 ]'
set_faults '{}'
check "lifted: all 5 arrive" wait_delivered 5 20
check "resuming is logged" wait_event -t 10 upstream.quota_resumed

# 2. The daily quota: 3 more recipients, then SES refuses.
set_faults '{"daily_quota": 8}'
check "6 more accepted" smtpload --port "$SMTP_PORT" --start 6 --count 6 \
	--concurrency 2 --messages "$work/sent"
check "3 arrive" wait_delivered 8 20
check "the quota pause is logged" wait_event upstream.quota_paused
check "the other 3 wait, nothing bounces" eval \
	'[ "$(delivered)" -eq 8 ] && no_events bounce.queued scheduler.failed'
set_faults '{}'
check "lifted: all 11 arrive" wait_delivered 11 20

# 3. 429 at 5/s
set_faults '{"rate": 5}'
check "30 more accepted at once" smtpload --port "$SMTP_PORT" --start 12 \
	--count 30 --concurrency 8 --messages "$work/sent"
check "SES throttles (429) and the pool slows down" wait_event upstream.throttled
check "all 41 arrive" wait_delivered 41 40
check "the pool's rate came down to about SES's 5/s" python3 - "$DAEMON_LOG" <<'PY'
import re, sys
rates = [float(m.group(1)) for m in re.finditer(r"upstream\.throttled .* rate=([0-9.]+) ", open(sys.argv[1]).read())]
print("rates after each 429:", rates[:6])
sys.exit(0 if rates and min(rates) < 7 else 1)
PY
n429=$(grep -c 'error=TooManyRequestsException' "$FAKE_REC/requests.log")
echo "429 answers: $n429"
# A relay that ignored the 429s would be refused ~45 times a second.
check "the 429s stay bounded" [ "$n429" -le 40 ]
check "byte for byte, each once" verify --record "$FAKE_REC" \
	--messages "$work/sent" --count 41
check "the spool empties" wait_spool_empty 10
check "nothing bounced or failed" no_events bounce.queued scheduler.failed

# 4. MessageRejected: one bounce, no retry.
set_faults '{"rules": [{"op": "SendEmail", "error": "MessageRejected", "match": "@dest.example.net"}]}'
check "a message to a rejected address is accepted" python3 - "$SMTP_PORT" <<'PY'
import smtplib, sys
msg = (b"From: sender@example.com\r\nTo: alice@dest.example.net\r\nSubject: rejected\r\n"
       b"Message-ID: <rejected@example.com>\r\n\r\nThis one will not get through.\r\n")
with smtplib.SMTP("127.0.0.1", int(sys.argv[1]), timeout=30) as s:
    s.sendmail("sender@example.com", ["alice@dest.example.net"], msg)
PY
check "the recipient fails with SES's answer" wait_event scheduler.failed \
	to='<alice@dest.example.net>' reply='400 MessageRejected: .*'
check "one bounce to the sender arrives" wait_delivered 42 20
check "the spool empties" wait_spool_empty 10
check "the bounce went to the sender, from bounce.sender" python3 - "$FAKE_REC" <<'PY'
import glob, json, sys
b = [m for m in (json.load(open(p)) for p in glob.glob(sys.argv[1] + "/*.json"))
     if m["rcpt_to"] == ["sender@example.com"]]
sys.exit(0 if len(b) == 1 and b[0]["mail_from"] == "bounces@example.com" else 1)
PY
check "rejected once, never retried" \
	[ "$(grep -c 'error=MessageRejected' "$FAKE_REC/requests.log")" -eq 1 ]
check "exactly one bounce" [ "$(log_count bounce.queued)" -eq 1 ]
check "the pause was logged once" [ "$(log_count upstream.account_paused)" -eq 1 ]
stop_daemon
finish
