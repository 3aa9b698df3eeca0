#!/bin/bash
# An idle pooled connection that SES ends on its own ("451 4.4.2
# Timeout waiting for data from client." then close) is dropped quietly,
# and the next message goes out on a new connection, none lost.
. "$(dirname "$0")/lib.sh"

FAKE_ARGS="--idle-timeout 1" start_fake starttls
write_conf
sed -i 's/^  timeout = 10;/  timeout = 10;\n  idle_timeout = 9;/' "$work/sesrelay.conf"
start_daemon
check "a first message" smtpload --port "$SMTP_PORT" --count 1 --messages "$work/sent"
check "arrives" wait_delivered 1 30
check "SES ends the idle connection with 451: dropped quietly" \
	wait_event upstream.unsolicited \
	    reply='451 4\.4\.2 Timeout waiting for data from client\.?'
check "a second message" smtpload --port "$SMTP_PORT" --start 2 --count 1 --messages "$work/sent"
check "arrives on a new connection" wait_delivered 2 30
check "byte for byte" verify --record "$FAKE_REC" --messages "$work/sent" --count 2
check "two connections were used" [ "$(grep -c opened "$FAKE_REC/connections.log")" -ge 2 ]
check "no failure was logged for it" no_events upstream.failed
stop_daemon
finish
