#!/bin/bash
# Nothing acknowledged is lost when the daemon is killed with SIGKILL.
#
# Part 1: SES is unreachable, 50 messages are acknowledged (250), the
# daemon is killed right after the last 250 and restarted with SES back:
# all 50 are delivered, byte for byte, once.
# Part 2: the daemon is killed in the middle of a concurrent load and
# restarted: every acknowledged message is delivered; messages that were
# in flight may be delivered too, but no more than were in flight: at
# most one per upstream session and one per client at each kill.
# 5,000 messages and six restarts, with a noisy neighbour: more than the
# default five minutes on a busy machine.
: "${TEST_TIMEOUT:=900}"
. "$(dirname "$0")/lib.sh"

SESSIONS=4
start_fake starttls
real_port=$FAKE_PORT
kill "$FAKE_PID"; wait "$FAKE_PID" 2>/dev/null
write_conf
start_daemon
check "part 1: 50 messages acknowledged while SES is down" \
	smtpload --port "$SMTP_PORT" --count 50 --concurrency 4 --messages "$work/sent"
kill9_daemon
check "part 1: all 50 are in the spool after SIGKILL" [ "$(spool_count)" -eq 50 ]

start_fake starttls
# The fake came back on a new port: point the config at it.
write_conf
start_daemon
check "part 1: all 50 delivered after the restart" wait_delivered 50 60
check "part 1: byte for byte, once each" \
	verify --record "$FAKE_REC" --messages "$work/sent" --count 50
check "part 1: the spool is empty" wait_spool_empty 30

# Part 2: a load of 5,000 messages (5 rounds of 1,000, 8 clients) while
# the daemon is killed with SIGKILL at a random moment of each round and
# restarted: every acknowledged message is delivered; messages that were
# in flight may be delivered too; the duplicates are counted and printed.
: > "$work/acked"
# A neighbour dirtying the spool's file system makes every sync slow, as
# on a busy host: what the spool has not recorded when the kill comes is
# what gets sent twice, so slow syncs must not widen that window.
( while :; do
	dd if=/dev/zero of="$work/noise" bs=1M count=32 conv=notrunc 2>/dev/null
	sleep 0.1
done ) &
noise=$!
pids+=($noise)
start=51
for round in 1 2 3 4 5; do
	smtpload --port "$SMTP_PORT" --start $start --count 1000 --concurrency 8 \
		--messages "$work/sent" --acked "$work/acked" --tolerate-errors \
		--retry-seconds 20 \
		>"$work/load$round.out" 2>&1 &
	loader=$!
	# Kill after a random number of this round's acknowledgements.
	at=$((50 + RANDOM % 800))
	for _ in $(seq 1200); do
		[ "$(awk -v s=$start '$1 >= s' "$work/acked" | wc -l)" -ge $at ] && break
		sleep 0.05
	done
	kill9_daemon
	echo "round $round: SIGKILL after $at acknowledgements"
	# Back up at once: the clients retry what was not acknowledged.
	start_daemon
	wait $loader
	start=$((start + 1000))
done
kill "$noise"; wait "$noise" 2>/dev/null; rm -f "$work/noise"
acked=$(sort -un "$work/acked" | wc -l)
echo "acknowledged in part 2: $acked of 5000 attempted"
{ seq 1 50; cat "$work/acked"; } | sort -un > "$work/expect"
check "part 2: every acknowledged message is delivered" \
	wait_delivered "$(wc -l < "$work/expect")" 300
wait_spool_empty 120
verify --record "$FAKE_REC" --messages "$work/sent" --expect-ids "$work/expect" \
	--allow-duplicates --allow-extra >"$work/verify.out"
rc=$?
cat "$work/verify.out"
check "part 2: all acknowledged delivered byte for byte (in-flight extras allowed)" [ $rc -eq 0 ]
echo "duplicates delivered: $(sed -n 's/.*duplicates=\([0-9]*\).*/\1/p' "$work/verify.out")"
# Each round had one kill: its extra copies at SES are bounded by what
# was in flight then (4 sessions + 8 clients).
python3 "$tests/integration/dupcount.py" --record "$FAKE_REC" --first 51 \
	--round-size 1000 --rounds 5 --logs "$work"/daemon*.log >"$work/dups.out"
cat "$work/dups.out"
check "part 2: at most $((SESSIONS + 8)) extra copies per kill" \
	awk -v max=$((SESSIONS + 8)) -F'[= ]' '$4 > max { bad = 1 } END { exit bad }' "$work/dups.out"
check "the spool is empty at the end" wait_spool_empty 30
finish
