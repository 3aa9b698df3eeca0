#!/bin/bash
# Started as root, sesrelayd binds its listeners and then becomes
# `user` before reading any input: it runs, spools and relays as that
# user, and gives the spool to it.  A user that does not exist stops it
# with a clear message (exit 67).  Over the API with an IAM key in a
# file only root can read, the key read before the drop is used.
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

# Over the API with an IAM key in a file only root reads: the key read
# before the drop signs the requests (and the account's reads); the
# file is not opened again as nobody.
mv "$work/ses" "$work/ses-smtp"
start_fake_api
CRED_KEY=1 RUN_AS=nobody UP_EXTRA="${API_CONF/account_check_interval = 0;/}" write_conf
chmod 600 "$work/credentials"
start_daemon
check "api: messages are accepted" smtpload --port "$SMTP_PORT" --count 5 --messages "$work/sent-api"
check "api: relayed as nobody with the root-only key" wait_delivered 5 30
check "api: the account was read too" wait_event account.read
check "api: no credentials error" no_events daemon.upstream_failed
stop_daemon
finish
