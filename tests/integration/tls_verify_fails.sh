#!/bin/bash
# A wrong CA or a wrong host name: nothing is sent (not even AUTH), the
# mail stays queued, the log says why; with the right settings it goes.
. "$(dirname "$0")/lib.sh"


start_fake starttls
queued=0
for case in ca host; do
	if [ "$case" = ca ]; then
		UP_CA=$certs/other-ca.pem UP_HOST=localhost write_conf
	else
		UP_CA=$certs/ca.pem UP_HOST=127.0.0.1 write_conf
	fi
	start_daemon
	check "$case: 5 messages accepted" smtpload --port "$SMTP_PORT" --count 5 \
		--messages "$work/sent"
	check "$case: the log names the certificate failure" \
		wait_event upstream.failed reason='.*certificate verification failed.*'
	check "$case: the upstream backs off" wait_event upstream.backoff
	check "$case: nothing was delivered" [ "$(delivered)" -eq 0 ]
	check "$case: no AUTH was sent" bash -c "! grep -q '< AUTH' '$work/fake.log'"
	queued=$((queued + 5))
	check "$case: all $queued messages are still queued" [ "$(spool_count)" -eq $queued ]
	stop_daemon
done
# Fixed: the queued mail (10 messages, two per id) goes out.
UP_CA=$certs/ca.pem UP_HOST=localhost write_conf
start_daemon
check "with the right CA and name the queued mail is delivered" wait_delivered 10 60
check "the spool empties" wait_spool_empty 30
finish
