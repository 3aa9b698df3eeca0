#!/bin/bash
# The SMTP and control Unix sockets are bound by one rule (listener.c):
# a stale socket at the path is replaced; a regular file, or a socket
# another process listens on, is refused and left alone.
. "$(dirname "$0")/lib.sh"

start_fake starttls
write_conf
ctlsock=$work/run/control.sock
mkdir -p "$work/run"

# run_refused NAME PATH WHY: the daemon, with PATH already taken, must
# exit non-zero at start saying WHY, and leave PATH as it was.
run_refused() {
	timeout 20 "$sbin/sesrelayd" -f -c "$work/sesrelay.conf" >"$work/refused.log" 2>&1
	local rc=$?
	check "$1: start refused (exit $rc)" [ $rc -ne 0 -a $rc -ne 124 ]
	check "... saying why" grep -q "$2: $3" "$work/refused.log"
}

# hold_socket PATH: a process listening on PATH (until killed).
hold_socket() {
	python3 -c 'import socket,sys,time
s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.listen(1)
open(sys.argv[1] + ".ready", "w").close(); time.sleep(60)' "$1" &
	pids+=($!)
	HOLDER=$!
	for _ in $(seq 50); do [ -e "$1.ready" ] && return; sleep 0.1; done
	echo "cannot hold $1"; exit 1
}

# stale_socket PATH: a socket file nobody listens on any more.
stale_socket() {
	python3 -c 'import socket,sys
s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.close()' "$1"
}

echo "not a socket" >"$ctlsock"
run_refused "a regular file at control.socket" "$ctlsock" "exists and is not a socket"
check "... the file is untouched" grep -qx "not a socket" "$ctlsock"
rm -f "$ctlsock"

hold_socket "$ctlsock"
run_refused "control.socket in use by another process" "$ctlsock" "in use"
check "... its socket is left alone" [ -S "$ctlsock" ]
kill "$HOLDER"; wait "$HOLDER" 2>/dev/null; rm -f "$ctlsock" "$ctlsock.ready"

rm -f "$SOCK"	# left by the refused start (stale: replaced, see below)
hold_socket "$SOCK"
run_refused "listen.unix in use by another process" "$SOCK" "in use"
kill "$HOLDER"; wait "$HOLDER" 2>/dev/null; rm -f "$SOCK" "$SOCK.ready"

stale_socket "$ctlsock"
stale_socket "$SOCK"
start_daemon
check "stale sockets are replaced: the daemon serves SMTP on its socket" \
	smtpload --unix "$SOCK" --count 1 --messages "$work/sent"
check "... and control on its own" bash -c "'$sbin/sesrelayctl' -s '$ctlsock' stats >/dev/null"
check "... the message arrives" wait_delivered 1 20
stop_daemon
check "the sockets are removed at exit" bash -c "[ ! -e '$ctlsock' ] && [ ! -e '$SOCK' ]"
finish
