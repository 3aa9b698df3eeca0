#!/bin/bash
# A full disk never costs an acknowledged message: with the spool on a
# small file system, new mail gets temporary replies (452 below
# spool_min_free, 451 when a write fails), never a 250 that was not
# kept; the spool still loads and everything acknowledged is delivered.
# Needs root (to mount a small tmpfs); skipped otherwise.
. "$(dirname "$0")/lib.sh"

spool=$work/spool
mkdir -p "$spool"
if [ "$(id -u)" -ne 0 ] || ! mount -t tmpfs -o size=3m,mode=0700 tmpfs "$spool" 2>/dev/null; then
	echo "SKIP: cannot mount a tmpfs for the spool"
	exit 77
fi
extra_cleanup="umount -l $spool"

start_fake starttls
real_port=$FAKE_PORT
kill "$FAKE_PID"; wait "$FAKE_PID" 2>/dev/null	# SES down: mail piles up

# Round 1: spool_min_free = 1 MiB of the 3 MiB: 452 before the disk fills.
write_conf
sed -i 's|^max_message_size = \(.*\);|max_message_size = \1;\nspool_min_free = 1048576;|' "$work/sesrelay.conf"
start_daemon
smtpload --port "$SMTP_PORT" --count 40 --size 102400 --messages "$work/sent" \
	--acked "$work/acked" --tolerate-errors >"$work/load1.out" 2>&1
n1=$(wc -l <"$work/acked")
echo "round 1: $n1 of 40 acknowledged"
check "round 1: some messages were acknowledged" [ "$n1" -gt 0 ]
check "round 1: the rest were refused" [ "$n1" -lt 40 ]
check "round 1: refusals were 452 4.3.1 (temporary)" grep -q "452.*4.3.1" "$work/load1.out"
check "round 1: no permanent refusal" bash -c "! grep -q \"(5[0-9][0-9],\" '$work/load1.out'"
check "round 1: every acknowledged message is in the spool" [ "$(spool_count)" -eq "$n1" ]
stop_daemon

# Round 2: spool_min_free = 0 and no SIZE declared: the writes themselves
# hit ENOSPC, which must turn into 451, never a 250.
write_conf
sed -i 's|^max_message_size = \(.*\);|max_message_size = \1;\nspool_min_free = 0;|' "$work/sesrelay.conf"
start_daemon
smtpload --port "$SMTP_PORT" --start 41 --count 40 --size 102400 --no-size --messages "$work/sent" \
	--acked "$work/acked" --tolerate-errors >"$work/load2.out" 2>&1
n2=$(wc -l <"$work/acked")
echo "round 2: $((n2 - n1)) of 40 more acknowledged"
check "round 2: the failed writes were answered 451 4.3.0" grep -q "(451, b'4.3.0" "$work/load2.out"
check "round 2: no permanent refusal" bash -c "! grep -q \"(5[0-9][0-9],\" '$work/load2.out'"
check "round 2: every acknowledged message is in the spool" [ "$(spool_count)" -eq "$n2" ]
# (Empty files may wait in tmp/: the spool creates them ahead of time.)
check "round 2: no unfinished message was left in tmp/" \
	[ "$(find "$spool/tmp" -type f -size +0 | wc -l)" -eq 0 ]
kill9_daemon

# SES comes back: the spool loads and everything acknowledged goes out.
start_fake starttls
write_conf
start_daemon
check "after the restart every acknowledged message is delivered" wait_delivered "$n2" 120
check "byte for byte, nothing unacknowledged" \
	verify --record "$FAKE_REC" --messages "$work/sent" --expect-ids "$work/acked"
check "nothing was quarantined" [ "$(ls "$spool/corrupt" | wc -l)" -eq 0 ]
stop_daemon
finish
