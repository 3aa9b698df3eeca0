#!/bin/bash
# upstream.sessions = 4, but SES lets this account hold only 2
# connections: the others get "421 Too many concurrent SMTP connections"
# as their banner.  The pool drops to the sessions that were working,
# says so, and from then on stays within SES's limit; all 200 messages
# arrive, each once, byte for byte, and nothing fails.
. "$(dirname "$0")/lib.sh"

# SES takes 20 ms after each final dot, so that the 200 messages take a
# few seconds; a connection carries 10 messages, so that many new ones
# are opened after the pool has shrunk.
faults='{"max_connections": 2,
	"rules": [{"step": "dot", "action": "delay", "seconds": 0.02}]}'
start_fake starttls
set_faults "$faults"
SESSIONS=4 RECYCLE_MESSAGES=10 write_conf
start_daemon

check "200 messages accepted" smtpload --port "$SMTP_PORT" --count 200 \
	--concurrency 4 --messages "$work/sent"
check "the pool shrinks, and says so" \
	wait_event -t 20 upstream.sessions_limited max_sessions='[0-9]+'
# The same faults again, as a new file: the fake starts counting its peak
# concurrency afresh, so what follows shows the shrunken pool alone.
mark=$(wc -l <"$FAKE_REC/connections.log")
set_faults "$faults"
at_change=$(delivered)
check "all 200 arrive" wait_delivered 200 60
check "the spool empties" wait_spool_empty 10
check "byte for byte, each once" verify --record "$FAKE_REC" \
	--messages "$work/sent" --count 200
stop_daemon

log_lines upstream.sessions_limited
refused=$(grep -c 'limit=max_connections' "$FAKE_REC/faults.log")
echo "421 refusals: $refused; delivered when the peak was reset: $at_change of 200"
tail -n +"$((mark + 1))" "$FAKE_REC/connections.log" >"$work/after.log"
after_peaks=$(grep -o 'peak_concurrent=[0-9]*' "$work/after.log" | cut -d= -f2 | tr '\n' ' ')
after_conns=$(grep -c ' opened ' "$work/after.log")
echo "after the pool shrank: $after_conns connections, peaks: ${after_peaks:-none}"
check "the 421s came from the limit" [ "$refused" -ge 1 ]
check "the pool shrank to at most 2 sessions" \
	[ "$(log_count upstream.sessions_limited max_sessions='[12]')" -ge 1 ]
check "new connections were opened after the pool shrank" [ "$after_conns" -ge 5 ]
check "and never more than 2 at once" python3 -c "
import sys
p = [int(x) for x in '$after_peaks'.split()]
sys.exit(0 if p and max(p) <= 2 else 1)"
check "none of those connections was refused" python3 -c "
import re, sys
later = set(re.findall(r'conn=(\d+) opened', open('$work/after.log').read()))
refused = set(re.findall(r'conn=(\d+) step=banner limit=max_connections',
                         open('$FAKE_REC/faults.log').read()))
sys.exit(1 if later & refused else 0)"
check "nothing failed or bounced" \
	no_events scheduler.failed bounce.queued
finish
