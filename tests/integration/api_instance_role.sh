#!/bin/bash
# transport = "api" with auth = "instance-role": the key comes from a
# fake IMDSv2 (tests/fake_imds.py) and expires every 20 s; the fake SES
# API takes exactly the keys the IMDS handed out, until they expire.
# 1. The IMDS is down when the daemon starts: mail is accepted and
#    spooled, nothing is lost, the failure is logged once with what to
#    check (never as an authentication failure); once it answers, the 20
#    messages go.
# 2. 500 messages over 25 s, across key rotations, and SES saying
#    ExpiredTokenException twice (the key is fetched anew and the message
#    sent again): every message arrives once, byte for byte, signed with
#    at least two different keys, and no authentication failure reaches
#    the log (no upstream.auth_failed); IMDSv2 only (a token first, every
#    GET with it), and no secret in the log.  About 40 s.
. "$(dirname "$0")/lib.sh"

start_fake_imds 20
set_imds_faults '{"down": true}'
start_fake_api
UP_EXTRA="$API_CONF $IMDS_CONF" SESSIONS=4 write_conf
check "sesrelayd -t takes the instance role over the API" \
	quiet "$sbin/sesrelayd" -t -c "$work/sesrelay.conf"
start_daemon

# 1. IMDS down at start.
check "20 messages accepted while the IMDS is down" smtpload \
	--port "$SMTP_PORT" --count 20 --concurrency 4 --messages "$work/sent"
check "the IMDS failure is logged, saying what to check" \
	wait_event creds.imds_failed msg='.*IAM role.*'
sleep 2
check "nothing sent without credentials, all spooled" eval \
	'[ "$(delivered)" -eq 0 ] && [ "$(spool_count)" -eq 20 ]'
check "logged once, not at every retry" \
	[ "$(log_count creds.imds_failed failures=1)" -eq 1 ]
set_imds_faults '{}'
check "the IMDS is back: logged" wait_event -t 40 creds.imds_ok
check "the IMDS is back: all 20 arrive" wait_delivered 20 40

# 2. 500 messages over 25 s, keys expiring every 20 s.
set_faults '{"rules": [{"op": "SendEmail", "error": "ExpiredTokenException", "count": 2}]}'
for batch in 0 1 2 3 4; do
	smtpload --port "$SMTP_PORT" --start $((21 + batch * 100)) --count 100 \
		--concurrency 4 --messages "$work/sent" >/dev/null || not_ok "batch $batch"
	[ "$batch" -lt 4 ] && sleep 5
done
check "all 520 arrive" wait_delivered 520 60
check "the spool empties" wait_spool_empty 10
check "byte for byte, each once" verify --record "$FAKE_REC" \
	--messages "$work/sent" --count 520
check "SES's ExpiredToken made the daemon fetch the key anew (twice)" \
	[ "$(log_count upstream.creds_expired)" -eq 2 ]
check "signed with the IMDS's session keys, more than one" python3 - "$FAKE_REC" <<'PY'
import glob, json, sys
metas = [json.load(open(p)) for p in glob.glob(sys.argv[1] + "/*.json")]
keys = {m["access_key"] for m in metas}
print("keys used:", len(keys))
sys.exit(0 if len(keys) >= 2 and all(m["session_token"] and m["access_key"].startswith("ASIA")
                                      for m in metas) else 1)
PY
refused=$(grep -c 'status=403' "$FAKE_REC/requests.log")
echo "403 answers: $refused (2 injected)"
check "no request refused but the 2 injected" [ "$refused" -eq 2 ]
check "no authentication failure logged, nothing failed or bounced" \
	no_events upstream.auth_failed scheduler.failed bounce.queued
check "IMDSv2 only: no GET without a token" bash -c \
	"! grep -q 'token=no\\|status=401' '$work/imds.log'"
stop_daemon
check "no secret in the log" python3 -c "
import json, sys
log = open('$DAEMON_LOG').read()
keys = json.load(open('$work/imds_keys.json'))['keys']
sys.exit(any(k['SecretAccessKey'] in log or k['Token'] in log for k in keys))"
finish
