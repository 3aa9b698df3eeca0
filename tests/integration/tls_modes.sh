#!/bin/bash
# Both TLS modes of SES: STARTTLS (587, 2587, 25) and TLS Wrapper (465,
# 2465): mail is delivered over TLS, authenticated, byte for byte.
. "$(dirname "$0")/lib.sh"

for mode in starttls wrapper; do
	start_fake "$mode"
	SMTP_PORT=$(free_port)
	write_conf
	start_daemon
	check "$mode: 20 messages accepted" \
		smtpload --port "$SMTP_PORT" --count 20 --concurrency 2 \
			--messages "$work/sent-$mode"
	check "$mode: 20 delivered" wait_delivered 20 60
	check "$mode: byte for byte" \
		verify --record "$FAKE_REC" --messages "$work/sent-$mode" --count 20
	check "$mode: every connection was TLS" \
		bash -c "! grep 'opened tls=false' '$FAKE_REC/connections.log' | grep -q . || [ '$mode' = starttls ]"
	check "$mode: every message was sent over TLS, authenticated" \
		python3 -c "
import glob, json, sys
m = [json.load(open(p)) for p in glob.glob('$FAKE_REC/*.json')]
sys.exit(0 if m and all(x['tls'] and x['auth_user'] == 'AKIATESTUSER' for x in m) else 1)"
	stop_daemon
	kill "$FAKE_PID"; wait "$FAKE_PID" 2>/dev/null
	mv "$FAKE_REC" "$work/ses-$mode"
	rm -rf "$work/spool"
done
finish
