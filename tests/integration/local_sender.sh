#!/bin/bash
# Issue 10.4: without rewrite.sender, a local sender such as root is one
# Amazon SES can never accept, and with no verified address there is no
# bounce either: such mail is refused when it is submitted, on every
# path (SMTP over TCP and the Unix socket at MAIL, sendmail through the
# daemon and through the maildrop with exit 77, EX_NOPERM), never
# accepted and lost.  A maildrop file written by an older sendmail is
# quarantined in corrupt/ with a warning.  sesrelayd -t warns.
. "$(dirname "$0")/lib.sh"

start_fake starttls
write_conf
conf=$work/sesrelay.conf
start_daemon

cat > "$work/refused.chat" <<'CHAT'
< ^220
> EHLO app.test
< ^250 HELP
> MAIL FROM:<root>
< ^550 5\.7\.1 <root>: not a sender Amazon SES can accept .*rewrite\.sender
> MAIL FROM:<cron@localhost>
< ^550 5\.7\.1 <cron@localhost>: .*rewrite\.sender
> MAIL FROM:<www-data@relay>
< ^550 5\.7\.1
> RCPT TO:<a@example.com>
< ^503 5\.5\.1
> MAIL FROM:<app@relay.test>
< ^250 2\.1\.0
> RSET
< ^250
> MAIL FROM:<>
< ^250 2\.1\.0
> QUIT
< ^221
CHAT
check "TCP: MAIL FROM:<root> gets 550 5.7.1 naming rewrite.sender" \
	python3 "$tests/integration/smtpchat.py" --port "$SMTP_PORT" "$work/refused.chat"
check "Unix socket: the same" \
	python3 "$tests/integration/smtpchat.py" --unix "$SOCK" "$work/refused.chat"

msg='Subject: from cron\n\nit ran\n'
printf "$msg" | "$sbin/sesrelay-sendmail" a@example.com 2>"$work/err"
rc=$?
check "sendmail as root through the daemon: exit 77 (EX_NOPERM)" [ $rc -eq 77 ]
check "and says why" grep -q "5.7.1 <root>: not a sender Amazon SES can accept.*rewrite.sender" "$work/err"
printf "$msg" | "$sbin/sesrelay-sendmail" -f cron a@example.com 2>"$work/err"
check "sendmail -f cron (root is trusted): exit 77" [ $? -eq 77 ]
if command -v runuser >/dev/null && id nobody >/dev/null 2>&1; then
	# An untrusted user's -f is replaced by the user: refused the same.
	printf "$msg" | runuser -u nobody -- "$(user_copy sesrelay-sendmail)" -C "$conf" \
	    -f app@example.com a@example.com 2>"$work/err"
	check "sendmail as nobody (untrusted, -f replaced): exit 77" [ $? -eq 77 ]
	check "and it names the user" grep -q "5.7.1 <nobody>: not a sender" "$work/err"
else
	echo "# SKIP: runuser or the user nobody missing: no untrusted-user check"
fi
printf "$msg" | "$sbin/sesrelay-sendmail" -f app@example.com a@example.com
check "sendmail -f app@example.com: exit 0" [ $? -eq 0 ]
check "that one is delivered" wait_delivered 1 30
check "the refused ones are not in the spool" wait_spool_empty 30
check "only the one was delivered" [ "$(delivered)" -eq 1 ]
stop_daemon

# The daemon is down: sendmail would use the maildrop; it refuses first.
printf "$msg" | "$sbin/sesrelay-sendmail" a@example.com 2>"$work/err"
rc=$?
check "sendmail as root through the maildrop: exit 77" [ $rc -eq 77 ]
check "and says why" grep -q "<root>: not a sender Amazon SES can accept.*rewrite.sender" "$work/err"
check "nothing was written into the maildrop" [ -z "$(ls -A "$work/spool/maildrop")" ]
printf "$msg" | "$sbin/sesrelay-sendmail" -f app@example.com a@example.com
check "sendmail -f app@example.com through the maildrop: exit 0" [ $? -eq 0 ]

# A file an older sendmail (or one with another config) left: with
# rewrite.sender set it is written; the daemon without it quarantines it.
cp "$conf" "$work/rewrite.conf"
echo 'rewrite = { sender = "noreply@example.com"; };' >> "$work/rewrite.conf"
printf "$msg" | "$sbin/sesrelay-sendmail" -C "$work/rewrite.conf" a@example.com
check "sendmail with rewrite.sender set writes the maildrop file: exit 0" [ $? -eq 0 ]
check "two files wait in the maildrop" [ "$(ls "$work/spool/maildrop" | wc -l)" -eq 2 ]
start_daemon
check "pickup: the root file is moved to corrupt/, loudly" \
	wait_event pickup.refused file="$HEX16" \
	    reason='sender <root>: not a sender Amazon SES can accept.*' \
	    moved_to="corrupt/maildrop-$HEX16"
check "the other is delivered" wait_delivered 2 30
check "the maildrop is empty" [ -z "$(ls -A "$work/spool/maildrop")" ]
check "the quarantined file is kept whole" grep -q "it ran" "$work"/spool/corrupt/maildrop-*
check "nothing more was sent" [ "$(delivered)" -eq 2 ]
stop_daemon

"$sbin/sesrelayd" -t -c "$conf" >/dev/null 2>"$work/err"
check "-t without rewrite.sender: still exit 0" [ $? -eq 0 ]
check "-t warns that local mail needs rewrite.sender" \
	grep -q "warning: rewrite.sender is not set: mail from local senders" "$work/err"
"$sbin/sesrelayd" -t -c "$work/rewrite.conf" >/dev/null 2>"$work/err"
check "-t with rewrite.sender: no warning" bash -c "! grep -q warning '$work/err'"

# With rewrite.sender, root's mail goes out from it, as before.
cp "$work/rewrite.conf" "$conf"
start_daemon
printf "$msg" | "$sbin/sesrelay-sendmail" a@example.com
check "with rewrite.sender, root's sendmail: exit 0" [ $? -eq 0 ]
check "and it is delivered" wait_delivered 3 30
check "from rewrite.sender" grep -l '"mail_from": "noreply@example.com"' "$FAKE_REC"/*.json
stop_daemon

# With a mail name (Debian's /etc/mailname, issue 14) and no
# rewrite.sender, root is root@<mail name>: taken on both paths.
MAILNAME=$work/mailname
echo mail.example.org >"$MAILNAME"
write_conf
printf "$msg" | "$sbin/sesrelay-sendmail" a@example.com
check "with a mail name, root's sendmail through the maildrop: exit 0" [ $? -eq 0 ]
start_daemon
printf "$msg" | "$sbin/sesrelay-sendmail" b@example.com
check "... and through the daemon: exit 0" [ $? -eq 0 ]
check "both are delivered" wait_delivered 5 30
check "both from root@mail.example.org" [ "$(grep -l '"mail_from": "root@mail.example.org"' "$FAKE_REC"/*.json | wc -l)" -eq 2 ]
check "with From: root@mail.example.org" [ "$(grep -l '^From: root@mail.example.org' "$FAKE_REC"/*.eml | wc -l)" -eq 2 ]
stop_daemon
finish
