#!/bin/bash
# What systemd gives and expects, without a running systemd: the
# listening sockets of sesrelayd.socket (LISTEN_FDS, here from
# systemd-socket-activate) used as they are by a daemon that never had
# root, and the notify protocol: READY=1, STATUS= with the queue depth,
# WATCHDOG=1 pings, STOPPING=1.
. "$(dirname "$0")/lib.sh"

command -v systemd-socket-activate >/dev/null || { echo "SKIP: systemd-socket-activate missing"; exit 77; }
command -v setpriv >/dev/null || { echo "SKIP: setpriv missing"; exit 77; }
chmod 711 "$work"
start_fake starttls
RUN_AS=nobody write_conf
# tmpfiles.d's part: the spool and the run directory belong to the user.
mkdir -p "$work/spool" "$work/run"
chown nobody "$work/spool" "$work/run"
chmod 700 "$work/spool"
chown nobody "$work/credentials"

# The notify socket: a datagram socket that records what it is told.
python3 - "$work/notify.sock" "$work/notify.log" <<'PY' &
import os, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
os.chmod(sys.argv[1], 0o666)
with open(sys.argv[2], "a") as log:
    while True:
        msg = s.recv(4096).decode()
        log.write(msg.replace("\n", "|") + "\n")
        log.flush()
PY
pids+=($!)
for _ in $(seq 50); do [ -S "$work/notify.sock" ] && break; sleep 0.1; done

act_port=$(free_port)
NOTIFY_SOCKET=$work/notify.sock WATCHDOG_USEC=2000000 \
	systemd-socket-activate -l "127.0.0.1:$act_port" -l "$work/run/activated.sock" \
	-E NOTIFY_SOCKET -E WATCHDOG_USEC \
	setpriv --reuid nobody --regid nogroup --clear-groups \
	"$(user_copy sesrelayd)" -f -d -c "$work/sesrelay.conf" >"$work/daemon.log" 2>&1 &
pids+=($!)
act=$!
DAEMON_LOG=$work/daemon.log
# systemd-socket-activate starts the daemon at the first connection.
check "a message through the activated TCP socket" \
	smtpload --port "$act_port" --count 3 --messages "$work/sent"
check "the daemon took its sockets from systemd" wait_event daemon.activated sockets='[0-9]+'
check "... and did not bind listen.tcp itself" \
	[ "$(log_count smtp.listening addr="127\.0\.0\.1:$SMTP_PORT")" -eq 0 ]
check "a message through the activated Unix socket" \
	smtpload --unix "$work/run/activated.sock" --start 4 --count 1 --messages "$work/sent"
check "all four arrive" wait_delivered 4 30
check "byte for byte" verify --record "$FAKE_REC" --messages "$work/sent" --count 4
pid=$(pgrep -f "sesrelayd -f -d -c $work/sesrelay.conf" | head -1)
check "the daemon runs as nobody, never root" [ "$(ps -o user= -p "$pid" | tr -d ' ')" = nobody ]
wait_notify() { for _ in $(seq 100); do grep -q "$1" "$work/notify.log" 2>/dev/null && return 0; sleep 0.1; done; return 1; }
check "READY=1 was sent" wait_notify '^READY=1'
check "STATUS with the queue depth" wait_notify 'STATUS=queue [0-9]* (oldest'
check "WATCHDOG=1 pings (WatchdogSec=)" wait_notify '^WATCHDOG=1|'
kill -TERM "$pid"
for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
check "STOPPING=1 at SIGTERM" wait_notify '^STOPPING=1'
check "the activated Unix socket is left to systemd" [ -S "$work/run/activated.sock" ]
kill "$act" 2>/dev/null
finish
