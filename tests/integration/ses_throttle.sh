#!/bin/bash
# The relay believes the account may send 50 recipients a second
# (upstream.rate = 50), SES allows 5: SES throttles ("454 Throttling
# failure: Maximum sending rate exceeded.").  The pool halves its rate
# (at most once a second) and climbs back slowly, so the 454s stay
# bounded (not ~45 a second, as for a relay that went on at 50/s),
# nothing bounces, and all 100 messages arrive, each once, byte for byte.
. "$(dirname "$0")/lib.sh"

start_fake starttls
set_faults '{"rate": 5}'
RATE=50 SESSIONS=4 write_conf
start_daemon

check "100 messages accepted at once" smtpload --port "$SMTP_PORT" \
	--count 100 --concurrency 8 --messages "$work/sent"
check "SES throttles and the daemon says so" wait_event upstream.throttled
check "all 100 arrive" wait_delivered 100 60
check "byte for byte, each once" verify --record "$FAKE_REC" \
	--messages "$work/sent" --count 100
check "the spool empties" wait_spool_empty 10
stop_daemon

throttled=$(grep -c 'limit=rate' "$FAKE_REC/faults.log")
halvings=$(log_count upstream.throttled)
log_stamps upstream.reply reply state=dot \
	reply='454 Throttling failure: Maximum sending rate.*' >"$work/refused"
log_stamps upstream.throttled rate >"$work/rates"
# When the 454s came: in the first second after the first one, and after
# the pool's rate first went below SES's 5/s.
read -r first_second settled lowest < <(python3 -c "
import datetime
def t(stamp):
    return datetime.datetime.fromisoformat(stamp).timestamp()
refused = [t(l.split()[0]) for l in open('$work/refused')]
below = None
for line in open('$work/rates'):
    stamp, rate = line.split()
    if below is None and float(rate) < 5:
        below = t(stamp)
print(sum(1 for x in refused if x < refused[0] + 1) if refused else 0,
      sum(1 for x in refused if below is not None and x > below),
      'yes' if below is not None else 'no')")
echo "454 rate refusals: $throttled ($first_second in the first second;" \
	"$settled once the pool was below 5/s); the daemon slowed down $halvings time(s)"
log_lines upstream.throttled | head -n 5
check "the pool halved its rate below SES's 5/s" [ "$lowest" = yes ]
# A relay that ignored the 454s would go on at 50/s and be refused about
# 45 times a second, ~900 times in all.  The pool halves its rate (at
# most once a second), is silent for a second (SES's window is full),
# and the refused message goes again; then +5/s every 2 s.  Measured:
# about 40 refusals, a handful in the first second.  60 leaves room.
check "no 454 storm: fewer than 60 refusals" [ "$throttled" -lt 60 ]
check "... and fewer than 15 in the second after the first" [ "$first_second" -lt 15 ]
# After the pool got below SES's rate it only probes upward: one
# throttle about every 2.5 s, each refusing the ~4 messages in flight.
check "few 454s once the pool is below SES's rate (fewer than 40)" [ "$settled" -lt 40 ]
check "nothing failed or bounced" \
	no_events scheduler.failed bounce.queued
finish
