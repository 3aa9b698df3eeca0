#!/bin/bash
# What sesrelay-sendmail is given arrives intact: a message without a
# final newline, with CRLF or LF or mixed line ends, an 8-bit body, a
# 10 MB attachment, a lone dot line with -i; through the daemon and
# through the maildrop.  "Intact" here: the same bytes, with every line
# ending in CRLF (SMTP's form) and a final CRLF added when missing.
. "$(dirname "$0")/lib.sh"

start_fake starttls
write_conf
start_daemon
mkdir -p "$work/in"
printf 'To: a@example.com\nSubject: no final newline\n\nlast line has no newline' >"$work/in/a"
printf 'To: b@example.com\r\nSubject: crlf\r\n\r\nline one\r\nline two\r\n' >"$work/in/b"
printf 'To: c@example.com\nSubject: mixed\r\n\nlf line\ncrlf line\r\n' >"$work/in/c"
printf 'To: d@example.com\nSubject: 8bit\nContent-Type: text/plain; charset=utf-8\n\ncaf\303\251 \342\202\254 \360\237\230\200\n' >"$work/in/d"
printf 'To: e@example.com\nSubject: dots\n\n.\n..\n.leading\n' >"$work/in/e"
{
	printf 'To: f@example.com\nSubject: 10 MB\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain\n\nsee attachment\n--b\nContent-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n\n'
	head -c 7500000 /dev/urandom | base64 -w 76
	printf -- '--b--\n'
} >"$work/in/f"
check "the 10 MB message is over 10 MB" [ "$(stat -c %s "$work/in/f")" -gt 10000000 ]
for m in a b c d e f; do
	check "sendmail -t -i < $m exits 0" bash -c "'$sbin/sesrelay-sendmail' -t -i -f s@example.com < '$work/in/$m'"
done
check "all six arrive" wait_delivered 6 60
# expected FILE: the input with CRLF line ends and a final CRLF.
expected() { python3 -c 'import sys; d=open(sys.argv[1],"rb").read(); d=d.replace(b"\r\n",b"\n").replace(b"\n",b"\r\n"); d=d if d.endswith(b"\r\n") else d+b"\r\n"; sys.stdout.buffer.write(d)' "$1"; }
# body FILE: from the first empty line on (cleanup adds header fields).
body() { python3 -c 'import sys; d=open(sys.argv[1],"rb").read(); sys.stdout.buffer.write(d[d.index(b"\r\n\r\n"):])' "$1"; }
for m in a b c d e f; do
	rec=$(grep -l "\"$m@example.com\"" "$FAKE_REC"/*.json | sed 's/json$/eml/')
	check "$m: the body arrives byte for byte" cmp -s <(expected "$work/in/$m" | body /dev/stdin) <(body "$rec")
	check "$m: its header lines too" bash -c "expected() { $(declare -f expected | tail -n +2) ; }; \
	    expected '$work/in/$m' | sed -n '1,/^\r\$/p' | grep -v '^\r\$' | while IFS= read -r l; do grep -qxF \"\$l\" '$rec' || exit 1; done"
done
stop_daemon

# The same through the maildrop (daemon down), for two of them.
for m in a c; do
	check "daemon down: sendmail < $m exits 0" bash -c "'$sbin/sesrelay-sendmail' -t -i -f s@example.com < '$work/in/$m'"
done
start_daemon
check "both arrive once the daemon runs" wait_delivered 8 60
for m in a c; do
	rec=$(grep -l "\"$m@example.com\"" "$FAKE_REC"/*.json | sort | tail -1 | sed 's/json$/eml/')
	check "maildrop $m: the body arrives byte for byte" cmp -s <(expected "$work/in/$m" | body /dev/stdin) <(body "$rec")
done
stop_daemon
finish
