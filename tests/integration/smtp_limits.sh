#!/bin/bash
# A client cannot hold a slot or the daemon: past smtp.max_clients a
# connection gets 421; past smtp.max_commands a session is closed with
# 421; a client silent in the middle of DATA is timed out with 421 and
# its half message is not queued.
. "$(dirname "$0")/lib.sh"

start_fake starttls
write_conf
sed -i 's|^max_message_size = \(.*\);|max_message_size = \1;\nsmtp = { max_clients = 2; max_commands = 10; timeout = 10; data_timeout = 10; greeting_timeout = 5; };|' "$work/sesrelay.conf"
start_daemon

check "client limit: two sessions held, the third gets 421 4.7.0" python3 - "$SMTP_PORT" <<'PY'
import socket, sys
port = int(sys.argv[1])
held = [socket.create_connection(("127.0.0.1", port), 5) for _ in range(2)]
for h in held:
    assert h.recv(100).startswith(b"220 "), "held session greeted"
third = socket.create_connection(("127.0.0.1", port), 5)
third.settimeout(5)
got = third.recv(200)
print("third:", got)
rest = third.recv(100)  # closed after the reply
sys.exit(0 if got.startswith(b"421 4.7.0") and rest == b"" else 1)
PY
check "the refusal is logged" wait_event smtp.refused client=127.0.0.1 \
	reason=max_clients sessions=2
check "once a slot is free, clients are served again" \
	smtpload --port "$SMTP_PORT" --count 1 --messages "$work/sent"

{
	echo '< ^220'
	for i in $(seq 10); do echo '> NOOP'; echo '< ^250'; done
	echo '> NOOP'
	echo '< ^421 4\.7\.0 .*too many commands'
	echo '<close'
} >"$work/commands.chat"
check "command limit: the 11th command gets 421 and the session ends" \
	python3 "$tests/integration/smtpchat.py" --port "$SMTP_PORT" "$work/commands.chat"

check "a client silent during DATA is timed out with 421 4.4.2" python3 - "$SMTP_PORT" <<'PY'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), 5)
s.settimeout(30)
f = s.makefile("rb")
def cmd(line, want):
    if line:
        s.sendall(line + b"\r\n")
    while True:
        r = f.readline()
        if r[3:4] != b"-":
            break
    assert r.startswith(want), (line, r)
cmd(None, b"220")
cmd(b"EHLO c", b"250")
cmd(b"MAIL FROM:<s@example.com>", b"250")
cmd(b"RCPT TO:<r@example.com>", b"250")
cmd(b"DATA", b"354")
s.sendall(b"Subject: never finished\r\n\r\nhalf a message\r\n")
r = f.readline()          # nothing more is sent: the timeout must answer
print("got:", r)
sys.exit(0 if r.startswith(b"421 4.4.2") and f.readline() == b"" else 1)
PY
check "the half message was not queued" [ "$(spool_count)" -eq 0 ]

check "a client that never sends a command is timed out with 421 4.4.2" python3 - "$SMTP_PORT" <<'PY'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), 5)
s.settimeout(30)
f = s.makefile("rb")
assert f.readline().startswith(b"220 ")
r = f.readline()            # silence: the greeting timeout must answer
print("got:", r)
sys.exit(0 if r.startswith(b"421 4.4.2") and f.readline() == b"" else 1)
PY
check "only the complete message was delivered" wait_delivered 1 30
check "nothing else arrived" [ "$(delivered)" -eq 1 ]
finish
