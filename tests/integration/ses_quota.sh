#!/bin/bash
# SES's daily quota (5 recipients) runs out after 5 of 20 messages: SES
# answers "454 Throttling failure: Daily message quota exceeded." and
# the relay pauses all sending, says so once, bounces nothing and keeps
# the other 15, trying one message every upstream.quota_probe_interval
# (1 s here).  Once the quota is lifted the first probe goes through,
# sending resumes (said once too) and all 20 arrive, each once.
. "$(dirname "$0")/lib.sh"

quota_refusals() { grep -c 'limit=daily_quota' "$FAKE_REC/faults.log" 2>/dev/null; }

start_fake starttls
set_faults '{"daily_quota": 5}'
QUOTA_PROBE=1 SESSIONS=4 write_conf
start_daemon

check "20 messages accepted" smtpload --port "$SMTP_PORT" --count 20 \
	--concurrency 4 --messages "$work/sent"
check "5 arrive" wait_delivered 5 30
check "the pause is logged" wait_event upstream.quota_paused

# Let three probes (one a second) meet the quota, then look.
check "the relay probes while paused" wait_event -n 3 -t 10 upstream.quota_probe
refusals=$(quota_refusals)	# first: each refusal follows its probe's line
probes=$(log_count upstream.quota_probe)
echo "probes: $probes; quota refusals at the fake: $refusals"
# The probes are one quota_probe_interval (1 s) apart, not a storm.
log_stamps upstream.quota_probe conn >"$work/probes"
check "one probe per quota_probe_interval" python3 -c "
import datetime, sys
t = [datetime.datetime.fromisoformat(l.split()[0]).timestamp()
     for l in open('$work/probes')]
gaps = [round(b - a, 2) for a, b in zip(t, t[1:])]
print('gaps between probes:', gaps)
sys.exit(0 if gaps and min(gaps) >= 0.9 else 1)"
# Nothing else is sent meanwhile: besides the probes, only the messages
# already in flight when the first 454 came (one per session, 4).
check "only the probes are sent while paused" [ "$refusals" -le $((probes + 4)) ]
check "still only 5 delivered" [ "$(delivered)" -eq 5 ]
check "the spool keeps the other 15" [ "$(spool_count)" -eq 15 ]
check "the pause is logged exactly once" [ "$(log_count upstream.quota_paused)" -eq 1 ]
check "no bounce, no failed recipient" \
	no_events bounce.queued scheduler.failed scheduler.expired

# The quota is lifted: the next probe is taken and sending resumes.
set_faults '{}'
check "all 20 arrive" wait_delivered 20 30
check "resuming is logged" wait_event -t 10 upstream.quota_resumed
check "the spool empties" wait_spool_empty 10
check "byte for byte, each once" verify --record "$FAKE_REC" \
	--messages "$work/sent" --count 20
stop_daemon
log_lines upstream.quota_paused; log_lines upstream.quota_resumed
check "resuming is logged exactly once" [ "$(log_count upstream.quota_resumed)" -eq 1 ]
check "the pause still logged exactly once" [ "$(log_count upstream.quota_paused)" -eq 1 ]
check "nothing bounced or failed at all" \
	no_events bounce.queued scheduler.failed scheduler.expired
finish
