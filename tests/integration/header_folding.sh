#!/bin/bash
# Issue 10.16: a header line over 998 characters that can be folded is
# folded, not refused: a To: with 120 addresses on one line, as some
# applications write it, arrives at SES folded after the commas (RFC 5322
# 2.2.3, lines of at most 78) and every recipient gets it, over SMTP,
# through sendmail -t to the daemon and through the maildrop.  Only a
# line with no white space to fold it at is refused: 554 5.6.0 over SMTP,
# exit 65 from sendmail (nothing written into the maildrop).
. "$(dirname "$0")/lib.sh"

start_fake starttls
write_conf
start_daemon

# The message, and what must arrive: the To: folded before the space
# after each comma, as many addresses on a line as fit in 78.
python3 - "$work" <<'PY'
import sys
work = sys.argv[1]
addrs = ["user%03d@example.com" % i for i in range(120)]
to = "To: " + ", ".join(addrs)
assert len(to) > 998
fixed = ("From: App <app@example.com>\r\nSubject: the list\r\n"
         "Date: Wed, 02 Dec 2026 01:00:00 +0000\r\nMessage-ID: <fold@example.com>\r\n")
body = "\r\nhello all\r\n"
lines, cur = [], "To: " + addrs[0] + ","
for a in addrs[1:]:
    seg = " " + a + ("," if a != addrs[-1] else "")
    if len(cur) + len(seg) > 78:
        lines.append(cur)
        cur = seg
    else:
        cur += seg
lines.append(cur)
folded = "\r\n".join(lines)
assert max(len(l) for l in lines) <= 78 and folded.replace("\r\n ", " ") == to
open(work + "/msg.eml", "w", newline="").write(fixed + to + "\r\n" + body)
open(work + "/msg.lf", "w", newline="").write((fixed + to + "\r\n" + body).replace("\r\n", "\n"))
open(work + "/expected.eml", "w", newline="").write(fixed + folded + "\r\n" + body)
open(work + "/rcpts", "w").write("\n".join(addrs) + "\n")
# SMTP script: 120 RCPTs, the message with its one-line To:.
with open(work + "/fold.chat", "w", newline="") as f:
    f.write("< ^220\n> EHLO app.test\n< ^250 HELP\n> MAIL FROM:<app@example.com>\n< ^250\n")
    for a in addrs:
        f.write("> RCPT TO:<%s>\n< ^250\n" % a)
    f.write("> DATA\n< ^354\n")
    for l in (fixed + to + "\r\n" + body).split("\r\n")[:-1]:
        f.write("> " + l + "\n")
    f.write("> .\n< ^250 2\\.0\\.0\n> QUIT\n< ^221\n")
PY

# check_arrived FIRST: the recorded messages from FIRST on carry every
# recipient once, each message exactly expected.eml.
check_arrived() {
	python3 - "$FAKE_REC" "$work/expected.eml" "$work/rcpts" "$1" <<'PY'
import json, os, sys
rec, want, rcpts, first = sys.argv[1], open(sys.argv[2], "rb").read(), open(sys.argv[3]).read().split(), int(sys.argv[4])
got = []
for n in sorted(os.listdir(rec)):
    if n.endswith(".json") and int(n[:-5]) >= first:
        m = json.load(open(os.path.join(rec, n)))
        got += m["rcpt_to"]
        eml = open(os.path.join(rec, n[:-5] + ".eml"), "rb").read()
        if eml != want:
            sys.exit("%s differs from expected.eml:\n%r" % (n, eml[:600]))
if sorted(got) != sorted(rcpts):
    sys.exit("recipients: %d, %d distinct" % (len(got), len(set(got))))
PY
}
# seq_next: the number the fake gives the next message it records.
seq_next() { echo $(( $(ls "$FAKE_REC" 2>/dev/null | grep -c '\.json$') + 1 )); }

first=$(seq_next)
check "SMTP: a To: of 120 addresses on one line is accepted" \
	python3 "$tests/integration/smtpchat.py" --port "$SMTP_PORT" "$work/fold.chat"
check "and delivered (50 + 50 + 20 recipients)" wait_delivered 3 60
check "SMTP: what arrived is the message with its To: folded, byte for byte, for all 120" check_arrived "$first"

first=$(seq_next)
"$sbin/sesrelay-sendmail" -t -f app@example.com <"$work/msg.lf"
check "sendmail -t through the daemon: exit 0" [ $? -eq 0 ]
check "and delivered" wait_delivered $((first + 2)) 60
check "sendmail -t: folded, byte for byte, for all 120" check_arrived "$first"

# An unfoldable line: no white space after the field name.
long=$(printf 'x%.0s' $(seq 1000))
printf 'Subject: hi\nX-Token: %s\n\nbody\n' "$long" >"$work/unfoldable"
cat > "$work/unfoldable.chat" <<CHAT
< ^220
> EHLO app.test
< ^250 HELP
> MAIL FROM:<app@example.com>
< ^250
> RCPT TO:<a@example.com>
< ^250
> DATA
< ^354
> X-Token: $long
>
> body
> .
< ^554 5\.6\.0 Error: a header line exceeds 998 characters, with no white space to fold it at
> QUIT
< ^221
CHAT
check "SMTP: a line with no white space to fold at: 554 5.6.0" \
	python3 "$tests/integration/smtpchat.py" --port "$SMTP_PORT" "$work/unfoldable.chat"
"$sbin/sesrelay-sendmail" -f app@example.com a@example.com <"$work/unfoldable" 2>"$work/err"
check "sendmail through the daemon: exit 65 (EX_DATAERR)" [ $? -eq 65 ]
stop_daemon

# The daemon is down: the maildrop path, the same rule.
"$sbin/sesrelay-sendmail" -f app@example.com a@example.com <"$work/unfoldable" 2>"$work/err"
check "sendmail through the maildrop, unfoldable: exit 65" [ $? -eq 65 ]
check "and it says why" grep -q "no white space to fold it at" "$work/err"
check "nothing was written into the maildrop" [ -z "$(ls -A "$work/spool/maildrop")" ]
"$sbin/sesrelay-sendmail" -t -f app@example.com <"$work/msg.lf"
check "sendmail -t through the maildrop, foldable: exit 0" [ $? -eq 0 ]
first=$(seq_next)
start_daemon
check "picked up and delivered" wait_delivered $((first + 2)) 60
check "maildrop: folded, byte for byte, for all 120" check_arrived "$first"
check "pickup refused nothing" no_events pickup.refused
stop_daemon
finish
