#!/bin/bash
# Issue 10: a maildrop file is quarantined only for what it holds, never
# for a transient error of the daemon's.  With sesrelayd out of file
# descriptors (its RLIMIT_NOFILE lowered so that pickup can list the
# maildrop but not open a file in it: EMFILE), a message that
# sesrelay-sendmail left in the maildrop stays there, logged, and is not
# moved to corrupt/; once the daemon has descriptors again the next scan
# takes it in, and it arrives once.
. "$(dirname "$0")/lib.sh"

command -v prlimit >/dev/null || { echo "SKIP: no prlimit"; exit 77; }
start_fake starttls
EXTRA_CONF='rewrite = { sender = "noreply@example.com"; };' write_conf
# The same spool, no socket where listen.unix points: sendmail uses the
# maildrop while the daemon runs.
sed -e "s|unix = \"$SOCK\"|unix = \"$work/run/nothing.sock\"|" "$work/sesrelay.conf" >"$work/drop.conf"
start_daemon
send() {
	printf 'To: %s@example.com\nSubject: %s\n\n%s\n' "$1" "$1" "$1" |
	    "$sbin/sesrelay-sendmail" -C "$work/drop.conf" -t -i
}
# fds: the daemon's open descriptors, once they stay the same for a
# second (the start-up check's connection closed).
fds() { ls /proc/"$DAEMON_PID"/fd | sort -n | tr '\n' ' '; }
now=$(fds)
for _ in $(seq 30); do
	sleep 1
	[ "$(fds)" = "$now" ] && break
	now=$(fds)
done
# The lowest free descriptor: scan() takes it (a dup of the maildrop
# directory), and the file's open() then finds none under the limit.
low=$(python3 -c "import sys; u = set(map(int, sys.argv[1:])); print(next(i for i in range(100000) if i not in u))" $now)
hard=$(prlimit --pid "$DAEMON_PID" --nofile --noheadings --output HARD --raw)
soft=$(prlimit --pid "$DAEMON_PID" --nofile --noheadings --output SOFT --raw)
prlimit --pid "$DAEMON_PID" --nofile=$((low + 1)):"$hard"

send first
check "sendmail exits 0 (the maildrop)" [ $? -eq 0 ]
check "pickup cannot open the file: logged, to be tried again" \
	wait_event pickup.retry file="$HEX16" op=open \
	    error='Too many open files'
check "... the file stays in the maildrop" [ "$(ls "$work/spool/maildrop" | grep -c '^[0-9a-f]\{16\}$')" -eq 1 ]
check "... nothing moved to corrupt/" [ -z "$(ls -A "$work/spool/corrupt")" ]
check "... nothing refused" no_events pickup.refused

prlimit --pid "$DAEMON_PID" --nofile="$soft":"$hard"
# Another file: its arrival (inotify) makes pickup scan again.
send second
check "with descriptors again, both messages arrive" wait_delivered 2 60
check "... once each" python3 - "$FAKE_REC" <<'PY'
import glob, json, sys
r = sorted(json.load(open(j))["rcpt_to"][0] for j in glob.glob(sys.argv[1] + "/*.json"))
assert r == ["first@example.com", "second@example.com"], r
PY
check "the maildrop is empty" [ -z "$(ls -A "$work/spool/maildrop")" ]
check "corrupt/ is still empty" [ -z "$(ls -A "$work/spool/corrupt")" ]
stop_daemon
finish
