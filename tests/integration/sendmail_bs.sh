#!/bin/bash
# sesrelay-sendmail -bs speaks the daemon's SMTP (smtp_vocab.h): the
# same dialogue gets the same replies, to the letter, from both; a
# message given over -bs is queued through the daemon and arrives.
. "$(dirname "$0")/lib.sh"

start_fake starttls
MAX_SIZE=4096 write_conf
start_daemon

tcp() { python3 "$tests/integration/smtpchat.py" --port "$SMTP_PORT" "$1"; }
bs() {
	python3 "$tests/integration/smtpchat.py" \
	    --pipe "$sbin/sesrelay-sendmail -C $work/sesrelay.conf -bs" "$1"
}

cat > "$work/same.chat" <<'CHAT'
< ^220 relay\.test ESMTP sesrelay$
> HELP
< ^214 2\.0\.0 Commands: EHLO HELO MAIL RCPT DATA RSET NOOP QUIT VRFY HELP$
> DATA x
< ^501 5\.5\.4 Syntax: DATA$
> RCPT TO:<a@example.com>
< ^503 5\.5\.1 Error: need MAIL command$
> DATA
< ^503 5\.5\.1 Error: need RCPT command$
>
< ^500 5\.5\.2 Error: empty command$
> EHLO
< ^501 5\.5\.4 Syntax: EHLO hostname$
> EHLO client.test
< ^250 HELP$
> HELO client.test
< ^250 relay\.test$
> MAIL FROM:<s@example.com> SIZE=5000
< ^552 5\.3\.4 Error: message size exceeds the limit of 4096 bytes$
> MAIL FROM:<s@example.com> X-THIS-PARAMETER-IS-LONGER-THAN-SIXTY-FOUR-CHARACTERS-SO-IT-IS-CUT=1
< ^555 5\.5\.4 Error: unsupported parameter "X-THIS-PARAMETER-IS-LONGER-THAN-SIXTY-FOUR-CHARACTERS-SO-IT-IS-C\.\.\."$
> MAIL FROM:<j\xc3\xb6rg@example.com>
< ^553 5\.6\.7 Error: non-ASCII local part; Amazon SES accepts 7-bit addresses only \(a domain may be internationalised\)$
> MAIL FROM:<s@example.com
< ^501 5\.5\.4 Syntax: MAIL FROM:<address>$
> MAIL FROM:<s@example.com>
< ^250 2\.1\.0 Ok$
> MAIL FROM:<s@example.com>
< ^503 5\.5\.1 Error: nested MAIL command$
> DATA
< ^554 5\.5\.1 Error: no valid recipients$
> RCPT TO:<a@example.com> NOTIFY=NEVER
< ^555 5\.5\.4 Error: unsupported parameter "NOTIFY=NEVER"$
> RCPT TO:<a@example.com>
< ^250 2\.1\.5 Ok$
> VRFY a
< ^252 2\.5\.2 Cannot VRFY user, but will accept message$
> NOOP
< ^250 2\.0\.0 Ok$
> RSET
< ^250 2\.0\.0 Ok$
> DATA
< ^503 5\.5\.1 Error: need RCPT command$
> NO\0OP
< ^500 5\.5\.2 Error: NUL character in command$
> NOOP\r
< ^500 5\.5\.2 Error: bare <CR> in command$
> ETRN example.com
< ^500 5\.5\.2 Error: command not recognized$
> MAIL FROM:<s@example.com>
< ^250 2\.1\.0 Ok$
> RCPT TO:<bs@example.com>
< ^250 2\.1\.5 Ok$
> DATA
< ^354 3\.0\.0 End data with <CR><LF>\.<CR><LF>$
> Subject: one vocabulary
>
> body
> .
< ^250 2\.0\.0 Ok: queued as
> QUIT
< ^221 2\.0\.0 Bye$
<close
CHAT
check "the daemon: each reply as smtp_vocab writes it" tcp "$work/same.chat"
check "-bs: the same replies, to the letter" bs "$work/same.chat"
check "both messages arrived" wait_delivered 2 30

# What differs is where: the verbs not offered name the pipe, and -bs
# reads command lines of at most 2048 bytes.
long=$(printf 'NOOP %02100d' 0)
cat > "$work/bs.chat" <<CHAT
< ^220 
> STARTTLS
< ^502 5\.5\.1 Error: STARTTLS not offered on a pipe$
> auth PLAIN x
< ^502 5\.5\.1 Error: auth not offered on a pipe$
> $long
< ^500 5\.5\.2 Error: line too long \(limit 2048\)$
> NOOP
< ^250 2\.0\.0 Ok$
CHAT
check "-bs: STARTTLS and AUTH not offered on a pipe, a long line refused" \
	bs "$work/bs.chat"
stop_daemon
finish
