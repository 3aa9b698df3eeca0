#!/bin/bash
# Issue 10 item 11: idle clients holding every SMTP slot must not keep
# sesrelay-sendmail from handing over a message.
# - smtp.max_clients idle TCP clients: sendmail still gets in on the Unix
#   socket (slots reserved for it) and exits 0; the message arrives.
# - those and every reserved Unix-socket slot held too: the daemon
#   answers 421, sendmail uses the maildrop instead, exits 0, and the
#   message arrives all the same.
# - a TCP client beyond smtp.max_clients is still refused (421).
. "$(dirname "$0")/lib.sh"

start_fake starttls
EXTRA_CONF='rewrite = { sender = "noreply@example.com"; };
smtp = { max_clients = 4; greeting_timeout = 120; timeout = 120; };' write_conf
start_daemon

# hold TCP UNIX: idle clients that read the greeting and then wait; the
# number greeted with 220 is written to $work/held.
hold() {
	rm -f "$work/held"
	python3 - "$SMTP_PORT" "$SOCK" "$1" "$2" "$work/held" <<'PY' &
import socket, sys, time
port, path, ntcp, nunix, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
conns, ok = [], 0
for i in range(ntcp + nunix):
    if i < ntcp:
        s = socket.create_connection(("127.0.0.1", int(port)))
    else:
        s = socket.socket(socket.AF_UNIX)
        s.connect(path)
    s.settimeout(10)
    if s.recv(512).startswith(b"220"):
        ok += 1
    conns.append(s)
open(out + ".tmp", "w").write("%d\n" % ok)
__import__("os").rename(out + ".tmp", out)
time.sleep(300)
PY
	holder=$!
	pids+=("$holder")
	for _ in $(seq 100); do [ -s "$work/held" ] && return 0; sleep 0.1; done
	return 1
}
release() { kill "$holder"; wait "$holder" 2>/dev/null; }
send() {
	printf 'To: %s@example.com\nSubject: %s\n\n%s\n' "$1" "$1" "$1" |
	    "$sbin/sesrelay-sendmail" -t -i 2>"$work/$1.err"
}
arrived() {
	for _ in $(seq 300); do
		grep -lq "\"$1@example.com\"" "$FAKE_REC"/*.json 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}

check "4 idle TCP clients take every slot" hold 4 0
check "... all four greeted" [ "$(cat "$work/held")" -eq 4 ]
python3 -c "
import socket, sys
s = socket.create_connection(('127.0.0.1', $SMTP_PORT)); s.settimeout(10)
sys.exit(0 if s.recv(512).startswith(b'421') else 1)"
check "a fifth TCP client is refused (421)" [ $? -eq 0 ]
send slots
check "sendmail -t exits 0 all the same" [ $? -eq 0 ]
check "... the message arrives" arrived slots
check "... through the socket (not the maildrop)" [ -z "$(ls -A "$work/spool/maildrop")" ]
release

check "4 idle TCP and 8 idle Unix-socket clients take every slot" hold 4 8
check "... all twelve greeted" [ "$(cat "$work/held")" -eq 12 ]
send full
check "sendmail -t exits 0 (the daemon answered 421: the maildrop)" [ $? -eq 0 ]
check "... and said nothing" [ ! -s "$work/full.err" ]
check "... the message arrives" arrived full
check "... taken in from the maildrop" wait_event pickup.accepted \
	from='<noreply@example.com>' nrcpt=1
check "... byte for byte" python3 - "$FAKE_REC" <<'PY'
import glob, json, sys
for j in glob.glob(sys.argv[1] + "/*.json"):
    if json.load(open(j))["rcpt_to"] == ["full@example.com"]:
        e = open(j[:-5] + ".eml", "rb").read()
        assert e.startswith(b"To: full@example.com\r\nSubject: full\r\n"), e
        assert e.endswith(b"\r\n\r\nfull\r\n"), e
        break
else:
    raise SystemExit("not delivered")
PY
release
stop_daemon
finish
