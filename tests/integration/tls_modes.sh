#!/bin/bash
# Both TLS modes of SES: STARTTLS (587, 2587, 25) and TLS Wrapper (465,
# 2465): mail is delivered over TLS, authenticated, byte for byte.
. "$(dirname "$0")/lib.sh"

# Wrapper: every connection opens in TLS.  STARTTLS: every connection
# opens in the clear and upgrades (one STARTTLS each in the transcript).
all_connections_tls() {
	local opened starttls
	opened=$(grep -c 'opened' "$FAKE_REC/connections.log")
	[ "$opened" -gt 0 ] || return 1
	if [ "$mode" = wrapper ]; then
		! grep -q 'opened tls=false' "$FAKE_REC/connections.log"
	else
		starttls=$(grep -c '< STARTTLS' "$work/fake.log")
		[ "$starttls" -eq "$opened" ]
	fi
}

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
	check "$mode: every connection was TLS" all_connections_tls
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
