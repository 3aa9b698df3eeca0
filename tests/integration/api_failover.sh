#!/bin/bash
# Failover over transport = "api": while the first region's API cannot
# be reached, mail goes through fallback.* (its own api_endpoint and
# credentials file, an IAM key); once a health check of the first
# passes, mail goes there again.  Nothing lost or sent twice.  ~15 s.
. "$(dirname "$0")/lib.sh"

start_fake_api				# the fallback region
primary_port=$(free_port)		# nothing listens there yet
umask 077
printf 'access_key_id = "AKIATESTKEY";\nsecret_access_key = "%s";\n' "$API_SECRET" \
	>"$work/fallback-credentials"
umask 022
CRED_KEY=1 SESSIONS=2 \
	UP_EXTRA="transport = \"api\"; api_endpoint = \"https://localhost:$primary_port\"; account_check_interval = 0;" \
	EXTRA_CONF="fallback = { region = \"us-east-1\"; api_endpoint = \"https://localhost:$FAKE_PORT\"; ca_file = \"$certs/ca.pem\"; credentials = \"$work/fallback-credentials\"; account_check_interval = 0; after = 2; check_interval = 1; };" \
	write_conf
start_daemon

check "5 messages accepted while the first region is down" \
	smtpload --port "$SMTP_PORT" --count 5 --messages "$work/sent"
check "the switch to the fallback is logged" wait_event -t 60 daemon.failover
check "all 5 arrive through the fallback's API" wait_delivered 5 60
check "byte for byte" verify --record "$FAKE_REC" --messages "$work/sent" --count 5

# The first region comes back.
python3 "$tests/fake_ses_api.py" --port "$primary_port" \
	--port-file "$work/primary.port" --cert "$certs/server.pem" \
	--key "$certs/server.key" --record "$work/ses-primary" \
	--access-key "AKIATESTKEY:$API_SECRET" 2>>"$work/fake-primary.err" &
pids+=($!)
check "a health check passes and mail goes back to the first region" \
	wait_event -t 60 daemon.failback to=upstream
check "5 more messages accepted" \
	smtpload --port "$SMTP_PORT" --start 6 --count 5 --messages "$work/sent2"
for _ in $(seq 300); do
	[ "$(ls "$work/ses-primary" 2>/dev/null | grep -c '\.json$')" -ge 5 ] && break
	sleep 0.1
done
check "the 5 arrive at the first region" \
	[ "$(ls "$work/ses-primary" | grep -c '\.json$')" -eq 5 ]
check "... byte for byte" verify --record "$work/ses-primary" --messages "$work/sent2" --start 6 --count 5
check "the fallback got nothing more" [ "$(delivered)" -eq 5 ]
stop_daemon
finish
