#!/bin/bash
# SIGHUP (and sesrelayctl reload) reload the configuration atomically: a
# good one takes effect for new commands, new upstream connections and
# listeners; a bad one is refused with its file and line and the running
# one stays; reloading during a load drops nothing.
. "$(dirname "$0")/lib.sh"

start_fake starttls
write_conf
start_daemon
cp "$work/sesrelay.conf" "$work/base.conf"

# last_rcpt N PORT: a message to N recipients; prints the last RCPT reply.
rcpts_py=$work/rcpts.py
cat >"$rcpts_py" <<'PY'
import socket, sys
n, port = int(sys.argv[1]), int(sys.argv[2])
s = socket.create_connection(("127.0.0.1", port), 10)
f = s.makefile("rb")
def cmd(line):
    if line:
        s.sendall(line.encode() + b"\r\n")
    while True:
        r = f.readline().decode()
        if r[3:4] != "-":
            return r.strip()
cmd(None); cmd("EHLO c"); cmd("MAIL FROM:<s@example.com>")
for i in range(n):
    last = cmd("RCPT TO:<r%d@example.com>" % i)
print(last)
cmd("QUIT")
PY
last_rcpt() { python3 "$rcpts_py" "$1" "$2"; }
# reply_is N PORT PREFIX: the last RCPT reply starts with PREFIX.
reply_is() { case "$(last_rcpt "$1" "$2")" in "$3"*) return 0;; esac; return 1; }
check "before: a third recipient is accepted" reply_is 3 "$SMTP_PORT" 250

# A good configuration: fewer recipients, a configuration set, a new port.
new_port=$(free_port)
sed -e "s/127.0.0.1:$SMTP_PORT/127.0.0.1:$new_port/" "$work/base.conf" >"$work/sesrelay.conf"
cat >>"$work/sesrelay.conf" <<CONF
smtp = { max_recipients = 2; };
ses = { configuration_set = "after-reload"; };
CONF
kill -HUP "$DAEMON_PID"
check "SIGHUP: the new configuration is loaded" wait_event daemon.reloaded file='.*'
check "the new limit holds: a third recipient gets 452" reply_is 3 "$new_port" "452 4.5.3"
check "the new port listens" smtpload --port "$new_port" --count 1 --messages "$work/sent"
check "the old port is closed" bash -c "! python3 -c 'import socket; socket.create_connection((\"127.0.0.1\", $SMTP_PORT), 2)' 2>/dev/null"
check "the message arrives" wait_delivered 1 30
rec=$(ls "$FAKE_REC"/*.eml | tail -1)
check "through new upstream connections, with the new SES header" \
	grep -q '^X-SES-CONFIGURATION-SET: after-reload' "$rec"
SMTP_PORT=$new_port

# A bad configuration is refused; the running one stays.
cp "$work/sesrelay.conf" "$work/good.conf"
printf 'smtp = { max_recipients = "many"; };\n' >>"$work/sesrelay.conf"
kill -HUP "$DAEMON_PID"
check "a bad configuration is refused, with its file and line" \
	wait_event daemon.reload_refused reason="$work/sesrelay\.conf:[0-9]+: .*" \
	    msg='the running configuration stays'
check "the running configuration stays (2 recipients)" reply_is 3 "$SMTP_PORT" "452 4.5.3"
check "and mail flows" smtpload --port "$SMTP_PORT" --start 2 --count 1 --messages "$work/sent"
"$sbin/sesrelayctl" -s "$work/run/control.sock" reload >/dev/null 2>"$work/reload.err"
check "sesrelayctl reload, the daemon refuses a bad file: exit 70" [ $? -eq 70 ]
check "... and says where" grep -q "$work/sesrelay.conf:[0-9]*: " "$work/reload.err"
ctl reload >/dev/null 2>"$work/reload2.err"
check "with -c on the bad file, sesrelayctl itself says where: exit 78" [ $? -eq 78 ]
printf 'upstream = { credentials = "%s/missing"; };\n' "$work" >"$work/sesrelay.conf.tail"
cat "$work/good.conf" "$work/sesrelay.conf.tail" | sed '/^  credentials = /d' >"$work/sesrelay.conf"
check "a missing credentials file is refused too" bash -c "! '$sbin/sesrelayctl' -c '$work/good.conf' reload 2>/dev/null"
cp "$work/good.conf" "$work/sesrelay.conf"
check "sesrelayctl reload with a good file: exit 0" quiet ctl reload

# Reloads during a load drop nothing (without the SES header this time,
# so the messages compare byte for byte).
grep -v 'configuration_set = "after-reload"' "$work/good.conf" >"$work/sesrelay.conf"
check "reload without the SES header" quiet ctl reload
: >"$work/acked"
smtpload --port "$SMTP_PORT" --start 100 --count 300 --concurrency 4 \
	--messages "$work/sent-load" --acked "$work/acked" >"$work/load.out" 2>&1 &
loader=$!
for _ in 1 2 3; do
	sleep 0.3
	kill -HUP "$DAEMON_PID"
done
wait $loader
check "all 300 were accepted during the reloads" [ "$(sort -un "$work/acked" | wc -l)" -eq 300 ]
check "... and all arrive" wait_delivered 302 60
check "byte for byte, once" verify --record "$FAKE_REC" --messages "$work/sent-load" --start 100 --count 300 --allow-extra
stop_daemon
finish
