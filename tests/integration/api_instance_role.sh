#!/bin/bash
# transport = "api" with auth = "instance-role": the key comes from a
# fake IMDSv2 (tests/fake_imds.py) and expires every 20 s; the fake SES
# API takes exactly the keys the IMDS handed out, until they expire.
# 1. The IMDS is down when the daemon starts: mail is accepted and
#    spooled, nothing is lost; once it answers, the 20 messages go.
# 2. 500 messages over 25 s, across key rotations, and SES saying
#    ExpiredTokenException twice (the key is fetched anew and the message
#    sent again): every message arrives once, byte for byte, signed with
#    at least two different keys, and no authentication failure reaches
#    the log (no upstream.auth_failed).  About 40 s.
. "$(dirname "$0")/lib.sh"

IMDS_FAULTS=$work/imds_faults.json
printf '{"down": true}\n' >"$IMDS_FAULTS"
python3 "$tests/fake_imds.py" --port-file "$work/imds.port" --lifetime 20 \
	--keys-file "$work/imds_keys.json" --faults "$IMDS_FAULTS" \
	--log "$work/imds.log" 2>>"$work/imds.err" &
pids+=($!)
for _ in $(seq 100); do [ -s "$work/imds.port" ] && break; sleep 0.1; done
[ -s "$work/imds.port" ] || { echo "fake IMDS did not start"; cat "$work/imds.err"; exit 1; }
IMDS_PORT=$(cat "$work/imds.port")
imds_faults() { printf '%s\n' "$1" >"$IMDS_FAULTS.tmp" && mv -f "$IMDS_FAULTS.tmp" "$IMDS_FAULTS"; }

start_fake_api
UP_EXTRA="$API_CONF auth = \"instance-role\"; imds_endpoint = \"http://127.0.0.1:$IMDS_PORT\";" \
	SESSIONS=4 write_conf
start_daemon

# 1. IMDS down at start.
check "20 messages accepted while the IMDS is down" smtpload \
	--port "$SMTP_PORT" --count 20 --concurrency 4 --messages "$work/sent"
check "the IMDS failure is logged" wait_event creds.imds_failed
sleep 1
check "nothing sent without credentials, all spooled" eval \
	'[ "$(delivered)" -eq 0 ] && [ "$(spool_count)" -eq 20 ]'
imds_faults '{}'
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
stop_daemon
finish
