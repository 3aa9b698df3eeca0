#!/bin/bash
# Start-up with a large queue (issue 10, item 8): the daemon serves SMTP
# at once and indexes the queue in the background, and delivers it all.
#
# A queue of N valid messages is written straight into the spool (in the
# format of a file the daemon itself wrote), plus corrupt files and one
# message on hold; the page cache is dropped (root), as after a reboot.
# Then: 220 and a new message's 250 within STARTUP_BOUND seconds, while
# the queue is still being indexed; during the index, `show` of a
# message not indexed yet answers, `stats` says "indexing", and a reload
# (SIGHUP) changes nothing of it; in the
# end every queued message and the new one arrive at the fake SES
# exactly once, byte for byte, the held one only once released, and the
# corrupt files are in corrupt/.
: "${TEST_TIMEOUT:=900}"
. "$(dirname "$0")/lib.sh"

N=${STARTUP_MESSAGES:-30000}
bound=${STARTUP_BOUND:-2}
ctl() { "$sbin/sesrelayctl" -c "$work/sesrelay.conf" "$@"; }

# The template: message 1, spooled by the daemon while SES is down.
start_fake starttls
kill "$FAKE_PID"; wait "$FAKE_PID" 2>/dev/null
write_conf
start_daemon
check "message 1 acknowledged while SES is down" \
	smtpload --port "$SMTP_PORT" --count 1 --start 1 --messages "$work/sent"
stop_daemon
template=$(ls "$work"/spool/queue/* | head -1)
check "message 1 is in the spool" [ -f "$template" ]

# Messages 2..N+1, three corrupt files, and one message on hold.
python3 "$tests/integration/mkqueue.py" --template "$template" \
	--queue "$work/spool/queue" --start 2 --count "$N" \
	--messages "$work/sent" --corrupt 3 || exit 1
held=$(ls "$work/spool/queue" | grep '^ff' | sort | sed -n 5p)
printf 'SESRELAY-STATE 1\nattempts 0\nnext 0\nheld\nEND\n' >"$work/spool/state/$held"
# One of the last to be indexed: asked for before the index reaches it.
late=$(ls "$work/spool/queue" | grep '^ff' | sort | tail -1)
new=$((N + 2))
sync
cache=warm
if [ "$(id -u)" -eq 0 ] && echo 3 >/proc/sys/vm/drop_caches 2>/dev/null; then
	cache=cold
fi
echo "queue: $((N + 1)) messages, 3 corrupt, cache $cache"

# SES back (on a new port), then the daemon; time its first answers.
start_fake starttls
write_conf
DAEMON_RUN=$((DAEMON_RUN + 1))
DAEMON_LOG=$work/daemon$DAEMON_RUN.log
"$sbin/sesrelayd" -f -c "$work/sesrelay.conf" >"$DAEMON_LOG" 2>&1 &
DAEMON_PID=$!
pids+=("$DAEMON_PID")
python3 - "$SMTP_PORT" "$new" "$work/sent" "$tests/integration" \
	>"$work/first.out" 2>&1 <<'PY'
import os, smtplib, socket, sys, time
port, new, sent, here = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
sys.path.insert(0, here)
from smtpload import make_message
t0 = time.monotonic()
while time.monotonic() - t0 < 120:
    try:
        s = socket.create_connection(("127.0.0.1", port), 0.5)
        break
    except OSError:
        time.sleep(0.01)
s.settimeout(120)
banner = s.recv(512)
t220 = time.monotonic() - t0
s.close()
rcpt = "rcpt%d-0@example.net" % new
msg = make_message(new, 0, [rcpt])
open(os.path.join(sent, "%d.eml" % new), "wb").write(msg)
c = smtplib.SMTP("127.0.0.1", port, timeout=120)
c.sendmail("sender@example.com", [rcpt], msg)
c.quit()
t250 = time.monotonic() - t0
print("banner=%s first_220=%.2f first_250=%.2f" % (banner[:3].decode(), t220, t250))
PY
cat "$work/first.out"
# Was the index still running when the new message was acknowledged?
still_indexing=1
[ "$(log_count daemon.spool_indexed)" -gt 0 ] && still_indexing=0
t250=$(sed -n 's/.*first_250=\([0-9.]*\).*/\1/p' "$work/first.out")
check "SMTP answered 220" grep -q "banner=220" "$work/first.out"
check "a new message got 250 within ${bound}s of the start (${t250:-none}s)" \
	python3 -c "import sys; sys.exit(not (0 < float('${t250:-0}') <= $bound))"
if [ "$cache" = cold ]; then
	check "... while the queue was still being indexed" [ $still_indexing -eq 1 ]
	check "the operator sees a message not indexed yet" \
		bash -c "'$sbin/sesrelayctl' -c '$work/sesrelay.conf' show $late | grep -q '^$late '"
	check "stats says the spool is being indexed" bash -c \
		"'$sbin/sesrelayctl' -c '$work/sesrelay.conf' stats | grep -q 'indexing the spool'"
	kill -HUP "$DAEMON_PID"
	check "a reload while indexing" wait_event -t 60 daemon.reloaded
else
	echo "# page cache not dropped (not root): the overlap is not checked"
fi

check "the whole queue is indexed" wait_event -t 300 daemon.spool_indexed found='[0-9]+'
check "all but the held one delivered" wait_delivered "$((N + 1))" 600
check "the held one is still queued" bash -c "ctl() { '$sbin/sesrelayctl' -c '$work/sesrelay.conf' \"\$@\"; }; ctl show $held | grep -q held"
quiet ctl release "$held"
check "released, it is delivered" wait_delivered "$((N + 2))" 60
check "every message exactly once, byte for byte" \
	verify --record "$FAKE_REC" --messages "$work/sent" --start 1 --count "$((N + 2))"
check "the corrupt files are in corrupt/" [ "$(ls "$work/spool/corrupt" | wc -l)" -eq 3 ]
check "the spool is empty" wait_spool_empty 60
stop_daemon
finish
