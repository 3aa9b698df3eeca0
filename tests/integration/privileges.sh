#!/bin/bash
# Started as root, sesrelayd binds its listeners and then becomes
# `user` before reading any input: it runs, spools and relays as that
# user, and gives the spool to it.  A user that does not exist stops it
# with a clear message (exit 67).
. "$(dirname "$0")/lib.sh"

[ "$(id -u)" -eq 0 ] || { echo "SKIP: needs root"; exit 77; }
chmod 711 "$work"		# the user must be able to reach its spool
start_fake starttls
RUN_AS=nosuchuser write_conf
"$sbin/sesrelayd" -f -c "$work/sesrelay.conf" 2>"$work/nouser.err"
check "a user that does not exist: exit 67" [ $? -eq 67 ]
check "... and says how to fix it" grep -Eq ' daemon\.no_user user=nosuchuser .*msg=".*create it' "$work/nouser.err"

RUN_AS=nobody write_conf
start_daemon
check "it runs as nobody" [ "$(ps -o user= -p "$DAEMON_PID" | tr -d ' ')" = nobody ]
check "the drop is logged" wait_event daemon.user user=nobody
check "it cannot become root again" \
	bash -c "grep -q '^Uid:.*\b0\b' /proc/$DAEMON_PID/status && exit 1 || exit 0"
check "messages are accepted" smtpload --port "$SMTP_PORT" --count 20 --messages "$work/sent"
check "and relayed" wait_delivered 20 30
check "byte for byte" verify --record "$FAKE_REC" --messages "$work/sent" --count 20
check "the spool belongs to nobody" [ "$(stat -c %U "$work/spool/queue")" = nobody ]
check "the control socket answers" quiet "$sbin/sesrelayctl" -s "$work/run/control.sock" stats
stop_daemon
finish
