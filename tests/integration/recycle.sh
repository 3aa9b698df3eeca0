#!/bin/bash
# recycle_after_messages = 10 over 100 messages: at least 10 upstream
# connections, none carrying more than 10, no message cut in two.
. "$(dirname "$0")/lib.sh"

start_fake starttls
RECYCLE_MESSAGES=10 SESSIONS=2 write_conf
start_daemon
check "100 messages accepted" smtpload --port "$SMTP_PORT" --count 100 \
	--concurrency 4 --messages "$work/sent"
check "100 delivered" wait_delivered 100 120
check "byte for byte, none cut" verify --record "$FAKE_REC" --messages "$work/sent" --count 100
stop_daemon
conns=$(grep -c 'opened' "$FAKE_REC/connections.log")
echo "upstream connections: $conns"
check "at least 10 upstream connections" [ "$conns" -ge 10 ]
check "no connection carried more than 10 messages" python3 -c "
import re, sys
n = [int(m) for m in re.findall(r'closed messages=(\d+)', open('$FAKE_REC/connections.log').read())]
print('messages per connection:', n)
sys.exit(0 if n and max(n) <= 10 and sum(n) == 100 else 1)"
check "the daemon logged each recycle" wait_event -t 1 upstream.recycle reason=messages messages=10
finish
