#!/bin/bash
# ELB rotation: the fake SES resets every connection 2 seconds after it
# opened, whatever it is doing (drop_after_seconds), mid-transaction too.
# 2,000 messages from several clients all arrive, byte for byte; a
# message lost after its final dot may arrive twice (at-least-once), but
# none is lost, none altered, and the spool ends empty.
. "$(dirname "$0")/lib.sh"

start_fake starttls
# SES takes some time after the final dot (20 ms here), so that the run
# spans several rotations; recycling is pushed out of the way so that the
# fake's resets, not the daemon's recycling, end the connections.
set_faults '{"drop_after_seconds": 2,
	"rules": [{"step": "dot", "action": "delay", "seconds": 0.02}]}'
SESSIONS=4 RECYCLE_MESSAGES=100000 write_conf
start_daemon

check "2,000 messages accepted from 8 clients" smtpload --port "$SMTP_PORT" \
	--count 2000 --concurrency 8 --messages "$work/sent"
check "all 2,000 arrive" wait_delivered 2000 60
check "the spool empties" wait_spool_empty 30
check "none missing, none altered (duplicates allowed)" verify --record "$FAKE_REC" \
	--messages "$work/sent" --count 2000 --allow-duplicates
stop_daemon

conns=$(grep -c ' opened ' "$FAKE_REC/connections.log")
drops=$(grep -c 'limit=drop_after_seconds' "$FAKE_REC/faults.log")
busy=$(grep -c 'limit=drop_after_seconds.*in_transaction=true' "$FAKE_REC/faults.log")
unknown=$(log_count upstream.outcome_unknown)
failed=$(log_count upstream.failed)
echo "upstream connections: $conns; reset by the fake: $drops ($busy mid-transaction);" \
	"daemon: $failed connection failures, $unknown outcome(s) unknown"
# How many rotations happen depends on the machine's speed (a test must
# not depend on timing): what must hold is that there were some, that
# the daemon reconnected after them, and that it noticed the ones that
# hit a transaction.
check "the fake reset connections" [ "$drops" -ge 1 ]
check "the daemon reconnected after them" [ "$conns" -ge 2 ]
check "the daemon noticed the resets mid-transaction" \
	[ "$busy" -eq 0 -o "$failed" -ge 1 ]
check "a duplicate only where the daemon said one was possible" python3 -c "
import collections, glob, re, sys
ids = collections.Counter()
for p in glob.glob('$FAKE_REC/*.eml'):
    ids[re.search(rb'^X-Test-Id: (\d+)\r$', open(p, 'rb').read(), re.M).group(1)] += 1
dups = sum(n - 1 for n in ids.values())
print('duplicates:', dups, 'outcome unknown:', $unknown)
sys.exit(0 if dups <= $unknown else 1)"
check "the spool is empty" [ "$(spool_count)" -eq 0 ]
finish
