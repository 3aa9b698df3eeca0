#!/bin/bash
# auth = "instance-role" over the API with the instance metadata service
# down at start: mail is accepted and stays spooled, the failure is
# logged once with what to check, never as an authentication failure;
# once IMDS answers, everything arrives, byte for byte, once.  Then the
# role's keys expire every 4 s while mail flows: each key is fetched
# before the last expires (IMDSv2 only: a token first, every GET with
# it), and no message is lost or refused for its credentials.
. "$(dirname "$0")/lib.sh"

start_fake_api
start_fake_imds 4
set_imds_faults '{"down": true}'
UP_EXTRA="$API_CONF $IMDS_CONF" write_conf
check "sesrelayd -t takes the instance role over the API" \
	quiet "$sbin/sesrelayd" -t -c "$work/sesrelay.conf"
start_daemon

check "10 messages accepted while IMDS is down" smtpload --port "$SMTP_PORT" \
	--count 10 --messages "$work/sent"
check "IMDS's failure is logged, saying what to check" \
	wait_event creds.imds_failed msg='.*IAM role.*'
sleep 2
check "nothing sent meanwhile" [ "$(delivered)" -eq 0 ]
check "the spool keeps all 10" [ "$(spool_count)" -eq 10 ]
check "logged once, not at every retry" \
	[ "$(log_count creds.imds_failed failures=1)" -eq 1 ]
set_imds_faults '{}'
check "IMDS back: logged" wait_event -t 40 creds.imds_ok
check "all 10 arrive" wait_delivered 10 20

# Keys expiring every 4 s (a new one every 2.7 s) while 20 more are sent.
python3 -c "import json; print(len(json.load(open('$work/imds_keys.json'))['keys']))" \
	>"$work/keys_before"
for start in 11 21; do
	check "10 more accepted (from $start)" smtpload --port "$SMTP_PORT" \
		--count 10 --start $start --messages "$work/sent"
	sleep 3
done
check "all 30 arrive" wait_delivered 30 30
check "byte for byte, each once" verify --record "$FAKE_REC" \
	--messages "$work/sent" --count 30
check "sent with 2 or more of the role's keys" python3 -c "
import glob, json, sys
keys = {json.load(open(p))['access_key'] for p in glob.glob('$FAKE_REC/*.json')}
print('keys used:', len(keys)); sys.exit(0 if len(keys) >= 2 else 1)"
echo "403s at the fake (an expired key, resent): $(grep -c 'status=403' "$FAKE_REC/requests.log")"
check "no authentication failure" no_events upstream.auth_failed
check "IMDSv2 only: no GET without a token" bash -c \
	"! grep -q 'token=no\\|status=401' '$work/imds.log'"
check "the spool empties" wait_spool_empty 10
stop_daemon
check "no secret in the log" python3 -c "
import json, sys
log = open('$DAEMON_LOG').read()
keys = json.load(open('$work/imds_keys.json'))['keys']
sys.exit(any(k['SecretAccessKey'] in log or k['Token'] in log for k in keys))"
finish
