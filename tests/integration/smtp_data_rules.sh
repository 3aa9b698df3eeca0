#!/bin/bash
# Message data as RFC 5321/5322 say, each refusal with its precise reply:
# a bare LF ends the session with 521 5.5.2 (default smtp.bare_lf =
# reject) and nothing is queued; a header line over 998 characters gets
# 554 5.6.0; 8-bit data is accepted and relayed with BODY=8BITMIME;
# with smtp.strict_8bitmime it needs BODY=8BITMIME; with smtp.bare_lf =
# normalize a bare LF is stored as CRLF and "LF . LF" is not the end.
. "$(dirname "$0")/lib.sh"

start_fake starttls
write_conf
start_daemon

# chat NAME: run the smtpchat script on stdin against the daemon.
chat() {
	cat >"$work/$1.chat"
	python3 "$tests/integration/smtpchat.py" --port "$SMTP_PORT" \
	    "$work/$1.chat" >"$work/$1.out" 2>&1 || { cat "$work/$1.out"; return 1; }
}

check "a bare LF in the data: 521 5.5.2 and the session ends" chat barelf <<'CHAT'
< ^220
> EHLO client.test
< ^250
> MAIL FROM:<sender@example.com>
< ^250
> RCPT TO:<r1@example.com>
< ^250
> DATA
< ^354
>raw Subject: bare\r\n\r\nline one\nline two\r\n.\r\n
< ^521 5\.5\.2 relay\.test Error: bare <LF> received
<close
CHAT
check "the bare-LF refusal is logged" wait_event smtp.refused \
	from='<sender@example.com>' client=127.0.0.1 reason=bare_lf

long=$(printf 'x%.0s' $(seq 990))
check "a header line of 999 characters: 554 5.6.0" chat longhdr <<CHAT
< ^220
> EHLO client.test
< ^250
> MAIL FROM:<sender@example.com>
< ^250
> RCPT TO:<r2@example.com>
< ^250
> DATA
< ^354
> Subject: $long
> 
> body
> .
< ^554 5\.6\.0 Error: a header line exceeds 998 characters
> QUIT
< ^221
CHAT
short=$(printf 'x%.0s' $(seq 989))
check "a header line of exactly 998 characters is accepted" chat okhdr <<CHAT
< ^220
> EHLO client.test
< ^250
> MAIL FROM:<sender@example.com>
< ^250
> RCPT TO:<r3@example.com>
< ^250
> DATA
< ^354
> Subject: $short
> 
> a body line may be longer: $long
> .
< ^250 2\.0\.0
> QUIT
< ^221
CHAT

check "8-bit data without BODY=8BITMIME is accepted by default" chat eightbit <<'CHAT'
< ^220
> EHLO client.test
< ^250
> MAIL FROM:<sender@example.com>
< ^250
> RCPT TO:<r4@example.com>
< ^250
> DATA
< ^354
> Subject: 8bit
> Content-Type: text/plain; charset=utf-8
> 
> caf\xc3\xa9
> .
< ^250 2\.0\.0
> QUIT
< ^221
CHAT
check "both accepted messages arrive" wait_delivered 2 30
check "only those two arrived (nothing of the refused ones)" [ "$(delivered)" -eq 2 ]
rec8=$(grep -l '"r4@example.com"' "$FAKE_REC"/*.json | sed 's/json$/eml/')
check "the 8-bit body arrives byte for byte" grep -q $'^caf\xc3\xa9\r$' "$rec8"
check "relayed with MAIL FROM:<...> BODY=8BITMIME (SES offers 8BITMIME)" \
	grep -q 'MAIL FROM:<sender@example.com> BODY=8BITMIME' "$work/fake.log"
stop_daemon

EXTRA_CONF='smtp = { bare_lf = "normalize"; strict_8bitmime = true; };' write_conf
start_daemon
check "strict_8bitmime: 8-bit without BODY=8BITMIME gets 554 5.6.0" chat strict <<'CHAT'
< ^220
> EHLO client.test
< ^250
> MAIL FROM:<sender@example.com>
< ^250
> RCPT TO:<r5@example.com>
< ^250
> DATA
< ^354
> Subject: 8bit
> 
> caf\xc3\xa9
> .
< ^554 5\.6\.0 Error: 8-bit data in the message but BODY=8BITMIME was not given
> MAIL FROM:<sender@example.com> BODY=8BITMIME
< ^250
> RCPT TO:<r6@example.com>
< ^250
> DATA
< ^354
> Subject: 8bit declared
> 
> caf\xc3\xa9
> .
< ^250 2\.0\.0
> QUIT
< ^221
CHAT
check "normalize: a bare LF is stored, and LF.LF is text, not the end" chat normalize <<'CHAT'
< ^220
> EHLO client.test
< ^250
> MAIL FROM:<sender@example.com>
< ^250
> RCPT TO:<r7@example.com>
< ^250
> DATA
< ^354
>raw Subject: normalized\r\n\r\nline one\nline two\n.\nMAIL FROM:<smuggled@example.com>\r\n.\r\n
< ^250 2\.0\.0
> QUIT
< ^221
CHAT
check "the declared 8-bit and the normalized messages arrive" wait_delivered 4 30
recn=$(grep -l '"r7@example.com"' "$FAKE_REC"/*.json | sed 's/json$/eml/')
check "bare LFs arrive as CRLF, the smuggled line as text" \
	cmp -s <(printf 'line one\r\nline two\r\n.\r\nMAIL FROM:<smuggled@example.com>\r\n') \
	<(sed -n '/^line one/,$p' "$recn")
check "nothing was smuggled in" [ "$(grep -c smuggled "$FAKE_REC"/*.json | awk -F: '{s+=$2} END {print s}')" -eq 0 ]
stop_daemon
finish
