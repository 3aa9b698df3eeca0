#!/bin/bash
# The inbound server answers bad input with the precise reply, and the
# session goes on afterwards; nothing malformed is queued.
. "$(dirname "$0")/lib.sh"

start_fake starttls
MAX_SIZE=4096 write_conf
start_daemon

chat() { python3 "$tests/integration/smtpchat.py" --port "$SMTP_PORT" "$1"; }

cat > "$work/basic.chat" <<'CHAT'
< ^220 relay\.test ESMTP
> EHLO client.test
< ^250 HELP$
> HELO
< ^501 5\.5\.4
> RCPT TO:<a@example.com>
< ^503 5\.5\.1 Error: need MAIL
> DATA
< ^503 5\.5\.1 Error: need RCPT
> MAIL FROM:<s@example.com> SIZE=5000
< ^552 5\.3\.4
> MAIL FROM:<s@example.com> FOO=BAR
< ^555 5\.5\.4
> MAIL FROM:s@example.com
< ^250 2\.1\.0
> MAIL FROM:<s@example.com>
< ^503 5\.5\.1 Error: nested MAIL
> RCPT TO:<root>
< ^550 5\.1\.1 <root>: local recipient without an alias
> RCPT TO:<j\xc3\xb6rg@example.com>
< ^553 5\.6\.7
> RCPT TO:<a@example.com
< ^501 5\.5\.4
> RCPT TO:<a@example.com> NOTIFY=NEVER
< ^555 5\.5\.4
> RCPT TO:<a@example.com>
< ^250 2\.1\.5
> VRFY a
< ^252 2\.5\.2
> HELP
< ^214 2\.0\.0
> STARTTLS
< ^502 5\.5\.1
> AUTH PLAIN AAAA
< ^502 5\.5\.1
> XYZZY
< ^500 5\.5\.2 Error: command not recognized
> NO\x00OP
< ^500 5\.5\.2 Error: NUL
>
< ^500 5\.5\.2 Error: empty
> RSET
< ^250 2\.0\.0
> QUIT
< ^221 2\.0\.0
<close
CHAT
check "command errors get precise replies" chat "$work/basic.chat"

long=$(python3 -c 'print("NOOP " + "x" * 3000)')
cat > "$work/long.chat" <<CHAT
< ^220
> $long
< ^500 5\.5\.2 Error: line too long
> NOOP
< ^250 2\.0\.0
> QUIT
< ^221
CHAT
check "an overlong command line is refused, the session goes on" chat "$work/long.chat"

big=$(python3 -c 'print("y" * 70)')
{
	echo '< ^220'
	echo '> EHLO c'
	echo '< ^250 HELP'
	echo '> MAIL FROM:<s@example.com>'
	echo '< ^250'
	echo '> RCPT TO:<a@example.com>'
	echo '< ^250'
	echo '> DATA'
	echo '< ^354'
	for i in $(seq 100); do echo "> $big"; done
	echo '> .'
	echo '< ^552 5\.3\.4 Error: message size exceeds'
	echo '> MAIL FROM:<s@example.com>'
	echo '< ^250'
	echo '> RCPT TO:<a@example.com>'
	echo '< ^250'
	echo '> DATA'
	echo '< ^354'
	echo '> Subject: small'
	echo '>'
	echo '> ..dot'
	echo '> .'
	echo '< ^250 2\.0\.0 Ok: queued as [0-9a-f]{32}$'
	echo '> QUIT'
	echo '< ^221'
} > "$work/size.chat"
check "an oversized body is refused at the end of DATA; the next one is taken" \
	chat "$work/size.chat"

# NUL in the data, and a header over smtp.max_header_size (100 KiB):
# refused at the end of the data, the session goes on.
{
	echo '< ^220'
	echo '> EHLO c'
	echo '< ^250 HELP'
	echo '> MAIL FROM:<s@example.com>'
	echo '< ^250'
	echo '> RCPT TO:<a@example.com>'
	echo '< ^250'
	echo '> DATA'
	echo '< ^354'
	echo '> Subject: nul'
	echo '>'
	echo '> a\x00b'
	echo '> .'
	echo '< ^554 5\.6\.0 Error: message contains NUL'
	echo '> MAIL FROM:<s@example.com>'
	echo '< ^250'
	echo '> RCPT TO:<a@example.com>'
	echo '< ^250'
	echo '> DATA'
	echo '< ^354'
	for i in $(seq 1500); do echo "> X-Filler-$i: $big"; done
	echo '>'
	echo '> body'
	echo '> .'
	echo '< ^552 5\.6\.0 Error: message header exceeds 102400 bytes'
	echo '> QUIT'
	echo '< ^221'
} > "$work/content.chat"
check "NUL in the data and an oversized header get 554/552 5.6.0" \
	chat "$work/content.chat"

# Pipelining: the whole transaction in one write.
cat > "$work/pipe.chat" <<'CHAT'
< ^220
> EHLO c
< ^250 HELP
>raw MAIL FROM:<s@example.com>\r\nRCPT TO:<a@example.com>\r\nRCPT TO:<b@b\xc3\xbccher.example>\r\nDATA\r\n
< ^250 2\.1\.0
< ^250 2\.1\.5
< ^250 2\.1\.5
< ^354
>raw Subject: pipelined\r\n\r\nbody\r\n.\r\nQUIT\r\n
< ^250 2\.0\.0 Ok: queued as
< ^221
CHAT
check "a pipelined transaction is answered in order" chat "$work/pipe.chat"

check "the two accepted messages were delivered" wait_delivered 2 30
check "the oversized message was not queued" [ "$(delivered)" -eq 2 ]
check "an internationalised domain was sent to SES in its IDNA form" \
	grep -q '"b@xn--bcher-kva.example"' "$FAKE_REC"/*.json
finish
