#!/bin/bash
# Issue 10 item 3: one rule for both of sesrelay-sendmail's paths.  Each
# message goes once through the daemon's Unix socket and once through the
# maildrop (daemon down); both must give the same exit code, and what
# arrives at the fake SES must be the same bytes (Date: and Message-ID:,
# added on the way, aside).  What the daemon refuses is refused by
# sendmail with a sysexits code and a line on stderr on both paths:
# nothing accepted and then dropped or quarantined.
. "$(dirname "$0")/lib.sh"

start_fake starttls
EXTRA_CONF='rewrite = { sender = "noreply@example.com"; admin = "ops@example.com"; };
smtp = { max_recipients = 3; };' write_conf
start_daemon
up=1
# send NAME ARGS... < message: sesrelay-sendmail; its exit code in
# $work/NAME.rc, stderr in $work/NAME.err.
send() {
	local name=$1; shift
	"$sbin/sesrelay-sendmail" "$@" 2>"$work/$name.err"
	echo $? >"$work/$name.rc"
}
# both NAME ARGS... (the message in $work/NAME.msg): through the socket,
# then through the maildrop.
both() {
	local name=$1; shift
	[ "$up" = 1 ] || { start_daemon; up=1; }
	send "$name.socket" "$@" <"$work/$name.msg"
	stop_daemon; up=0
	send "$name.drop" "$@" <"$work/$name.msg"
	maildrop_files=$(ls "$work/spool/maildrop" | wc -l)
	start_daemon; up=1
}
same_rc() { [ "$(cat "$work/$1.socket.rc")" = "$2" ] && [ "$(cat "$work/$1.drop.rc")" = "$2" ]; }
said() { [ -s "$work/$1.socket.err" ] && [ -s "$work/$1.drop.err" ]; }

# 1. A line that is not a header field before the empty line: the header
#    ends there on both paths, the line starts the body.
printf 'To: odd@example.com\nSubject: odd header\nthis line is not a header field\nX-Looks-Like: a field, but in the body now\n\nthe body\n' >"$work/odd.msg"
both odd -t -i
check "a non-field line in the header: exit 0 on both paths" same_rc odd 0
check "... both arrive" wait_delivered 2 30
check "... the same bytes through the socket and the maildrop" python3 - "$FAKE_REC" <<'PY'
import glob, json, re, sys
ems = []
for j in sorted(glob.glob(sys.argv[1] + "/*.json")):
    m = json.load(open(j))
    if m["rcpt_to"] == ["odd@example.com"]:
        e = open(j[:-5] + ".eml", "rb").read()
        ems.append(re.sub(rb"(?m)^(Date|Message-ID): .*\r\n", b"", e))
assert len(ems) == 2, len(ems)
assert ems[0] == ems[1], ems
assert b"Subject: odd header\r\n" in ems[0], ems[0]
assert b"\r\n\r\nthis line is not a header field\r\nX-Looks-Like: a field, but in the body now\r\n\r\nthe body\r\n" in ems[0], ems[0]
PY
check "... nothing in corrupt/" [ -z "$(ls -A "$work/spool/corrupt")" ]

# 2. More recipients than smtp.max_recipients (3): the socket answers 452
#    to the fourth, so sendmail exits 75 on both paths and nothing is sent.
n0=$(delivered)
printf 'To: m1@example.com, m2@example.com, m3@example.com\nCc: m4@example.com, m5@example.com\nSubject: many\n\nmany\n' >"$work/many.msg"
both many -t -i
check "recipients beyond smtp.max_recipients: exit 75 on both paths" same_rc many 75
check "... said on stderr" said many
check "... no maildrop file was written" [ "$maildrop_files" -eq 0 ]
sleep 2
check "... nothing delivered, to none of them" [ "$(delivered)" -eq "$n0" ]

# 3. A recipient SES cannot take (a non-ASCII local part): 553 over the
#    socket, so exit 67 (EX_NOUSER) on both paths.
printf 'To: j\xc3\xb6rg@example.com\nSubject: idn\n\nx\n' >"$work/idn.msg"
both idn -t -i
check "a non-ASCII local part: exit 67 on both paths" same_rc idn 67
check "... said on stderr" said idn
check "... no maildrop file was written" [ "$maildrop_files" -eq 0 ]

# 4. Exactly smtp.max_recipients, some from the command line: taken.
printf 'To: k1@example.com\nCc: k2@example.com\nSubject: three\n\nthree\n' >"$work/three.msg"
both three -t -i k3@example.com
check "exactly smtp.max_recipients: exit 0 on both paths" same_rc three 0
check "... both arrive, each to all three" python3 - "$FAKE_REC" <<'PY'
import glob, json, sys
r = [sorted(json.load(open(j))["rcpt_to"]) for j in glob.glob(sys.argv[1] + "/*.json")]
want = ["k1@example.com", "k2@example.com", "k3@example.com"]
import time
for _ in range(100):
    r = [sorted(json.load(open(j))["rcpt_to"]) for j in glob.glob(sys.argv[1] + "/*.json")]
    if r.count(want) == 2: break
    time.sleep(0.2)
assert r.count(want) == 2, r
PY
check "nothing was quarantined" [ -z "$(ls -A "$work/spool/corrupt")" ]
stop_daemon
finish
