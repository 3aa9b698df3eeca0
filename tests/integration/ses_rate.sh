#!/bin/bash
# upstream.rate = 10 against a fake SES whose account allows 10
# recipients a second with bursts of 25: 300 messages submitted at once
# go out at the configured rate, not faster, and SES never has to
# throttle the relay (no 454 storm).
#
# The relay's token bucket holds one second's worth (10) and refills at
# 10 a second, so the 300th recipient cannot leave before 29 s after
# the first: 10 at once, then 290 at 10 a second.
. "$(dirname "$0")/lib.sh"

start_fake starttls
set_faults '{"rate": 10, "rate_burst": 25}'
RATE=10 SESSIONS=4 write_conf
start_daemon

check "300 messages accepted at once" smtpload --port "$SMTP_PORT" \
	--count 300 --concurrency 8 --messages "$work/sent"
check "all 300 arrive" wait_delivered 300 60
check "byte for byte, each once" verify --record "$FAKE_REC" \
	--messages "$work/sent" --count 300
check "the spool empties" wait_spool_empty 10
stop_daemon

# The fake writes <seq>.json when it accepts a message, before its 250.
# Each message has one recipient: span is the first to last delivery,
# peak the most deliveries in any one second.
read -r span peak < <(python3 -c "
import bisect, glob, os
t = sorted(os.stat(p).st_mtime for p in glob.glob('$FAKE_REC/*.json'))
print('%.2f %d' % (t[-1] - t[0],
      max(bisect.bisect_left(t, x + 1.0) - i for i, x in enumerate(t))))")
throttled=$(grep -c 'limit=rate' "$FAKE_REC/faults.log")
echo "first to last delivery: ${span}s (29 s expected); most in one second: $peak" \
	"(20 expected); 454 rate refusals: $throttled"
# 0.2 s less than the ideal 29 s for the time stamps' jitter; at most
# 40 s: the relay uses the rate it was given (a halving would show here).
check "the relay kept to 10 recipients/s (29 s or more)" \
	python3 -c "import sys; sys.exit(0 if $span >= 28.8 else 1)"
check "and was not much slower (40 s or less)" \
	python3 -c "import sys; sys.exit(0 if $span <= 40 else 1)"
# A full bucket (10) plus one second's refill (10): 20 in any second, the
# first one included; one more for the time stamps' jitter.
check "never more than 2 x rate in one second" [ "$peak" -le 21 ]
# The fake allows 15 recipients above what the relay ever sends in a
# second (25 against 10 + 10), so a relay that keeps to its rate is never
# refused: a single 454 means it sent faster than upstream.rate.
check "SES never throttled the relay (no 454)" [ "$throttled" -eq 0 ]
check "the daemon never saw a throttle" \
	no_events upstream.throttled
finish
