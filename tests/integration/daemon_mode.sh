#!/bin/bash
# Without -f the daemon goes to the background only once it is ready;
# a start-up error is printed and is its exit code; a second daemon on
# the same spool is refused.
. "$(dirname "$0")/lib.sh"

start_fake starttls
write_conf
"$sbin/sesrelayd" -c "$work/sesrelay.conf" 2>"$work/bg.err"
check "background start exits 0" [ $? -eq 0 ]
pid=$(pgrep -f "sesrelayd -c $work/sesrelay.conf" | head -1)
[ -n "$pid" ] && pids+=("$pid")
check "the daemon runs in the background" [ -n "$pid" ]
check "its socket is there at once" [ -S "$SOCK" ]
check "mail goes through the background daemon" \
	smtpload --port "$SMTP_PORT" --count 3 --messages "$work/sent"
check "and is delivered" wait_delivered 3 60

"$sbin/sesrelayd" -f -c "$work/sesrelay.conf" 2>"$work/second.err" &
second=$!
wait $second
rc=$?
check "a second daemon on the same spool is refused" [ $rc -ne 0 ]
check "and says why" grep -q "another sesrelayd is using this spool" "$work/second.err"

kill -TERM "$pid"
for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
check "SIGTERM stops it" bash -c "! kill -0 $pid 2>/dev/null"

# A start-up failure reaches the terminal and the exit code.
sed -i "s|spool = .*|spool = \"/proc/sesrelay-cannot-be-here\";|" "$work/sesrelay.conf"
"$sbin/sesrelayd" -c "$work/sesrelay.conf" 2>"$work/bad.err"
rc=$?
check "a spool that cannot be created: exit 73" [ $rc -eq 73 ]
check "the reason is printed" grep -q "cannot create spool" "$work/bad.err"
finish
