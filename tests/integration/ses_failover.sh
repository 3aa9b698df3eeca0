#!/bin/bash
# Failover: while the first upstream cannot be reached, mail goes through
# fallback.* (another region, its own credentials file); once a health
# check of the first passes, mail goes there again.  Nothing is lost or
# sent twice on the way.
. "$(dirname "$0")/lib.sh"

start_fake starttls			# the fallback region
primary_port=$(free_port)		# nothing listens there yet
umask 077
printf 'username = "AKIATESTUSER";\npassword = "BTestPassw0rd";\n' >"$work/fallback-credentials"
umask 022
EXTRA_CONF="fallback = { host = \"localhost\"; port = $FAKE_PORT; ca_file = \"$certs/ca.pem\"; credentials = \"$work/fallback-credentials\"; after = 2; check_interval = 1; };" write_conf
sed -i "s/^  port = $FAKE_PORT;/  port = $primary_port;/" "$work/sesrelay.conf"
check "the config names both upstreams" grep -q "port = $primary_port;" "$work/sesrelay.conf"
start_daemon

check "5 messages accepted while the first upstream is down" \
	smtpload --port "$SMTP_PORT" --count 5 --messages "$work/sent"
check "the switch to the fallback is logged" wait_event -t 60 daemon.failover \
	failing='[0-9]+' fallback=localhost
check "all 5 arrive through the fallback" wait_delivered 5 60
check "byte for byte" verify --record "$FAKE_REC" --messages "$work/sent" --count 5

# The first region comes back.
python3 "$tests/fake_ses.py" --listen 127.0.0.1 --port "$primary_port" \
	--port-file "$work/primary.port" --tls starttls \
	--cert "$certs/server.pem" --key "$certs/server.key" \
	--record "$work/ses-primary" --user AKIATESTUSER --password 'BTestPassw0rd' \
	2>>"$work/fake-primary.err" &
pids+=($!)
check "a health check passes and mail goes back to the first upstream" \
	wait_event -t 60 daemon.failback to=upstream
check "5 more messages accepted" \
	smtpload --port "$SMTP_PORT" --start 6 --count 5 --messages "$work/sent2"
for _ in $(seq 300); do
	[ "$(ls "$work/ses-primary" 2>/dev/null | grep -c '\.json$')" -ge 5 ] && break
	sleep 0.1
done
check "the 5 arrive at the first upstream" \
	[ "$(ls "$work/ses-primary" | grep -c '\.json$')" -eq 5 ]
check "... byte for byte" verify --record "$work/ses-primary" --messages "$work/sent2" --start 6 --count 5
check "the fallback got nothing more" [ "$(delivered)" -eq 5 ]
stop_daemon
finish
