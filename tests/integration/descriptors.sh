#!/bin/bash
# File descriptors (issue 10, item 12).  A configuration whose
# smtp.max_clients cannot fit the descriptor limit is refused, by -t and
# at start (exit 78, FILE:LINE: key: why); the soft limit is raised to
# the hard one.  When descriptors run out all the same, the daemon stops
# accepting for a while instead of spinning: its CPU time and its log
# stay small, and once descriptors are free again it accepts and serves.
. "$(dirname "$0")/lib.sh"

command -v prlimit >/dev/null || { echo "SKIP: no prlimit"; exit 77; }
start_fake starttls
EXTRA_CONF='smtp = {
  max_clients = 100000;
};' write_conf

# --- the configuration check ---
prlimit --nofile=1024:1024 "$sbin/sesrelayd" -t -c "$work/sesrelay.conf" >/dev/null 2>"$work/t.err"
check "-t refuses max_clients = 100000 under a limit of 1024: exit 78" [ $? -eq 78 ]
cat "$work/t.err"
line=$(grep -n 'max_clients = 100000' "$work/sesrelay.conf" | cut -d: -f1)
check "... naming the file, the line and the key" \
	grep -q "^sesrelayd: $work/sesrelay.conf:$line: smtp.max_clients: .*limit (RLIMIT_NOFILE) is 1024: set at most [0-9]" "$work/t.err"
timeout 20 prlimit --nofile=1024:1024 "$sbin/sesrelayd" -f -c "$work/sesrelay.conf" >"$work/start.out" 2>&1
check "starting with it fails the same way: exit 78" [ $? -eq 78 ]
check "... with the same message" grep -q "sesrelay.conf:$line: smtp.max_clients:" "$work/start.out"
hard=$(ulimit -Hn)
if [ "$hard" = unlimited ] || [ "$hard" -ge 1200 ]; then
	sed -i 's/max_clients = 100000;/max_clients = 500;/' "$work/sesrelay.conf"
	check "the soft limit is raised to the hard one: 500 fit under 256:$hard" \
		quiet prlimit --nofile=256:"$hard" "$sbin/sesrelayd" -t -c "$work/sesrelay.conf"
else
	echo "skipped: the hard limit ($hard) is too low to show the raise"
fi

# --- running out of descriptors ---
EXTRA_CONF='smtp = { max_clients = 300; };' write_conf
prlimit --nofile=1024:1024 true || { echo "SKIP: cannot set limits"; exit 77; }
start_daemon
check "a message goes through first" \
	smtpload --port "$SMTP_PORT" --count 1 --messages "$work/sent"
# The daemon is at its limit: it has only a few descriptors to spare.
used=$(ls "/proc/$DAEMON_PID/fd" | wc -l)
prlimit --pid "$DAEMON_PID" --nofile=$((used + 10)):$((used + 10))
python3 - "$SMTP_PORT" "$work" >"$work/hold.out" 2>&1 <<'PY' &
import os, socket, sys, time
port, work = int(sys.argv[1]), sys.argv[2]
held = [socket.create_connection(("127.0.0.1", port), 5) for _ in range(60)]
open(os.path.join(work, "holding"), "w").close()
while not os.path.exists(os.path.join(work, "release")):
    time.sleep(0.1)
for s in held:
    s.close()
PY
holder=$!
pids+=("$holder")
for _ in $(seq 100); do [ -e "$work/holding" ] && break; sleep 0.1; done
sleep 1
lines0=$(wc -l <"$DAEMON_LOG")
cpu0=$(cpu)
sleep 5
lines=$(( $(wc -l <"$DAEMON_LOG") - lines0 ))
ticks=$(( $(cpu) - cpu0 ))
echo "out of descriptors for 5 s: $ticks CPU ticks (of $(getconf CLK_TCK)/s), $lines log lines"
check "the daemon hit the limit" wait_event -t 5 smtp.accept_paused \
	error='Too many open files'
check "out of descriptors, it does not spin: under 0.5 s CPU in 5 s" \
	[ "$ticks" -lt $(( $(getconf CLK_TCK) / 2 )) ]
check "... nor flood its log: under 20 lines in 5 s" [ "$lines" -lt 20 ]
touch "$work/release"
wait "$holder"
check "descriptors free again: it accepts again" wait_event -t 10 smtp.accept_resumed \
	failures='[0-9]+'
check "... and serves" \
	smtpload --port "$SMTP_PORT" --count 1 --start 2 --messages "$work/sent"
check "both messages arrived, byte for byte" wait_delivered 2 30
check "... as sent" verify --record "$FAKE_REC" --messages "$work/sent" --count 2
stop_daemon
finish
