#!/bin/bash
# Cleanup on accept, as sesrelay.conf(5) documents it: cron's mail to
# root, through sendmail and over SMTP, leaves with a verified sender (in
# the envelope and From:, name kept), goes to rewrite.admin or the alias,
# and gets Date:, Message-ID:; a Bcc-only message gets its To:.
. "$(dirname "$0")/lib.sh"

start_fake starttls
write_conf
cat >"$work/aliases" <<'ALIASES'
# a comment
postmaster: root
webmaster: web-team@example.org,
	web-lead@example.org
ALIASES
cat >>"$work/sesrelay.conf" <<CONF
rewrite = {
  sender = "noreply@example.com";
  admin = "ops@example.com";
  aliases = "$work/aliases";
};
CONF
start_daemon

# rec N: the path of the Nth recorded message (1-based, in arrival order).
rec() { ls "$FAKE_REC"/*.json | sort | sed -n "${1}p"; }
json() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2"; }

# 1. cron's way: sendmail -FCronDaemon -i -B8BITMIME -oem root
printf 'From: root (Cron Daemon)\nTo: root\nSubject: Cron <root@relay> run-parts\n\nit ran\n' |
	"$sbin/sesrelay-sendmail" -FCronDaemon -i -B8BITMIME -oem root
check "cron-style sendmail exits 0" [ $? -eq 0 ]
check "it is delivered" wait_delivered 1 30
m=$(rec 1)
check "envelope sender rewritten to rewrite.sender" [ "$(json "$m" mail_from)" = noreply@example.com ]
check "root went to rewrite.admin" [ "$(json "$m" rcpt_to)" = "['ops@example.com']" ]
check "From: rewritten, the comment kept as the name" grep -q '^From: Cron Daemon <noreply@example.com>' "${m%.json}.eml"
check "To: root made an address SES accepts" grep -q '^To: ops@example.com' "${m%.json}.eml"
check "Date: added" grep -q '^Date: ' "${m%.json}.eml"
check "Message-ID: added" grep -Eq '^Message-ID: <[0-9]+\.[0-9a-f]{16}@relay\.test>' "${m%.json}.eml"
check "the body is intact" grep -q '^it ran' "${m%.json}.eml"

# 2. over SMTP, with a display name and an alias with two addresses.
cat >"$work/smtp.chat" <<'CHAT'
< ^220
> EHLO app.test
< ^250 HELP
> MAIL FROM:<www-data@localhost>
< ^250
> RCPT TO:<webmaster>
< ^250
> RCPT TO:<root@localhost>
< ^250
> DATA
< ^354
> From: "Web App" <www-data@localhost>
> To: webmaster@localhost
> Subject: alias test
>
> hello
> .
< ^250 2\.0\.0 Ok: queued as
> QUIT
< ^221
CHAT
check "an SMTP message from a local user to an alias is accepted" \
	python3 "$tests/integration/smtpchat.py" --port "$SMTP_PORT" "$work/smtp.chat"
check "it is delivered" wait_delivered 2 30
m=$(rec 2)
check "envelope sender rewritten" [ "$(json "$m" mail_from)" = noreply@example.com ]
check "the alias expanded to both addresses, root to rewrite.admin" \
	[ "$(json "$m" rcpt_to)" = "['web-team@example.org', 'web-lead@example.org', 'ops@example.com']" ]
check "From: keeps the display name" grep -q '^From: "Web App" <noreply@example.com>' "${m%.json}.eml"

# 3. Bcc only: To: undisclosed-recipients:; is added; Bcc: never leaves.
printf 'From: app@example.com\nBcc: hidden@example.net\nSubject: bcc only\nDate: Sun, 22 Nov 2026 06:00:00 +0000\nMessage-ID: <x@example.com>\n\nsecret list\n' |
	"$sbin/sesrelay-sendmail" -t -i -f app@example.com
check "a Bcc-only message is accepted" [ $? -eq 0 ]
check "it is delivered" wait_delivered 3 30
m=$(rec 3)
check "to the Bcc recipient" [ "$(json "$m" rcpt_to)" = "['hidden@example.net']" ]
check "with To: undisclosed-recipients:;" grep -q '^To: undisclosed-recipients:;' "${m%.json}.eml"
check "without its Bcc: field" bash -c "! grep -qi '^Bcc:' '${m%.json}.eml'"
check "a complete header is not touched" bash -c \
	"grep -c '^Date: \|^Message-ID: ' '${m%.json}.eml' | grep -qx 2"

# 4. A local recipient without alias or admin is refused at RCPT.
stop_daemon
sed -i 's|  admin = "ops@example.com";||' "$work/sesrelay.conf"
start_daemon
printf 'Subject: x\n\ny\n' | "$sbin/sesrelay-sendmail" -i nobody-here 2>"$work/err"
rc=$?
check "without rewrite.admin, sendmail to a local user fails with 67 (EX_NOUSER)" [ $rc -eq 67 ]
check "and says why" grep -q "local recipient without an alias" "$work/err"

# 5. A bad aliases file is a configuration error naming file and line.
printf 'ok: a@example.com\nbad: |/usr/bin/prog\n' >"$work/aliases"
"$sbin/sesrelayd" -t -c "$work/sesrelay.conf" >/dev/null 2>"$work/err"
check "a program alias is refused by -t with 78" [ $? -eq 78 ]
check "naming the file and line" grep -q "aliases:2: bad: only addresses" "$work/err"
finish
