#!/bin/bash
# A misbehaving upstream cannot hold sessions: every step has a deadline
# (upstream.timeout) for the whole reply, not per read, and a reply is
# refused once it is longer than any SES sends.
#
# 1. EHLO trickles in one byte every 2 seconds on the first 4 connections
#    (the whole pool; the reply would take about 3 minutes): each read is
#    well inside the 5 s timeout, so only a deadline for the whole reply
#    frees the sessions; mail must still flow, within seconds.
# 2. MAIL gets "250-" continuation lines without end, slowly (deadline)
#    and as fast as the client reads (the size cap).
# 3. The reply to the final dot never ends: the session is freed and the
#    message, whose outcome is unknown, is sent again later.
# 4. SES reads a large body a line at a time: every write makes progress,
#    but each 256 KiB of the body must drain within the deadline, so the
#    session is freed (long before the hour the body would take) and the
#    message sent again.
. "$(dirname "$0")/lib.sh"

SESSIONS=4
UP_TIMEOUT=5
RETRY="1, 1, 2"
start_fake starttls
set_faults '{"rules":[{"step":"ehlo","action":"trickle","seconds":2,"count":4}]}'
write_conf
start_daemon
t0=$(date +%s)
check "part 1: 20 messages accepted" \
	smtpload --port "$SMTP_PORT" --count 20 --concurrency 4 --messages "$work/sent"
# About 10 s here: one deadline and a reconnection.  The bound only has
# to tell that from the 3 minutes the trickled EHLO takes, with room for
# a loaded machine.
check "part 1: all 20 delivered although 4 sessions met a trickling EHLO" \
	wait_delivered 20 90
t1=$(date +%s)
echo "part 1: delivered in $((t1 - t0))s"
check "part 1: well before the trickled EHLO would end (180s)" [ $((t1 - t0)) -le 100 ]
# The fake notices a close only at its next trickled byte: wait for it.
check "part 1: the 4 trickled connections were closed" python3 -c "
import re, sys, time
for _ in range(100):
    closed = {int(m.group(1)) for m in re.finditer(r'conn=(\d+) closed', open('$FAKE_REC/connections.log').read())}
    if {1, 2, 3, 4} <= closed:
        sys.exit(0)
    time.sleep(0.1)
sys.exit(1)"
check "part 1: the deadline is what ended them" \
	wait_event -n 4 -t 5 upstream.failed state=ehlo \
	    reason='deadline: nothing complete within 5s.*'

set_faults '{"rules":[{"step":"mail","action":"endless","seconds":0.5,"count":2},
	{"step":"mail","action":"endless","seconds":0,"count":2}]}'
check "part 2: 10 messages accepted" \
	smtpload --port "$SMTP_PORT" --start 21 --count 10 --concurrency 4 --messages "$work/sent"
check "part 2: all delivered despite endless replies to MAIL" wait_delivered 30 40
check "part 2: a slow endless reply meets the deadline" \
	wait_event -t 5 upstream.failed state=mail \
	    reason='deadline: nothing complete within 5s.*'
check "part 2: a fast one meets the size cap" \
	wait_event -t 5 upstream.failed state=mail \
	    reason='.*reply from the upstream too long.*'

set_faults '{"rules":[{"step":"dot","action":"endless","seconds":1,"count":1}]}'
check "part 3: 1 message accepted" \
	smtpload --port "$SMTP_PORT" --start 31 --count 1 --messages "$work/sent"
check "part 3: the endless reply to the dot is cut at the deadline" \
	wait_event -t 20 upstream.failed state=dot \
	    reason='deadline: nothing complete within 5s.*'
check "part 3: the outcome is unknown, logged" wait_event -t 5 upstream.outcome_unknown
check "part 3: it is sent again (SES has it twice)" wait_delivered 32 40

# 24 MB: more than the socket buffers on both sides can hold.
set_faults '{"rules":[{"step":"data","action":"slow_read","seconds":0.01,"count":1}]}'
check "part 4: a large message accepted" \
	smtpload --port "$SMTP_PORT" --start 32 --count 1 --size 24000000 --messages "$work/sent"
check "part 4: a body read at a crawl meets the deadline" \
	wait_event -t 60 upstream.failed state=body \
	    reason='deadline: nothing complete within 5s.*'
check "part 4: it is sent again, and arrives" wait_delivered 33 60
# The second copy takes longer than the deadline to send here (the fake
# reads 24 MB slower than that), yet drains steadily: not cut off.
check "part 4: only the crawl was cut off" \
	[ "$(log_count upstream.failed state='body|dot')" -eq 2 ]
check "every message arrived byte for byte" \
	verify --record "$FAKE_REC" --messages "$work/sent" --count 32 --allow-duplicates
check "the spool is empty" wait_spool_empty 30
stop_daemon
finish
