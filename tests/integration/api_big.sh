#!/bin/bash
# A 30 MB message over transport = "api" (40 MB of base64 inside the
# JSON body) arrives byte for byte while the daemon's memory stays flat:
# its peak RSS grows by less than 2 MiB over the idle RSS (the body is
# produced from the spool twice, once for its SHA-256 and once as the
# connection drains, through 48 KiB pieces, never held whole).  ~15 s.
. "$(dirname "$0")/lib.sh"

start_fake_api
CRED_KEY=1 UP_EXTRA="$API_CONF" SESSIONS=1 UP_TIMEOUT=60 write_conf
start_daemon

rss() { awk '/^VmRSS:/ { print $2 }' "/proc/$DAEMON_PID/status"; }
hwm() { awk '/^VmHWM:/ { print $2 }' "/proc/$DAEMON_PID/status"; }

# Warm up with one small message, so TLS and the pool are set up.
smtpload --port "$SMTP_PORT" --count 1 --messages "$work/sent" >/dev/null
wait_delivered 1 30
idle=$(rss)
check "a 30 MB message is accepted" smtpload --port "$SMTP_PORT" --start 2 \
	--count 1 --size $((30 * 1000 * 1000)) --messages "$work/sent"
check "and delivered" wait_delivered 2 120
peak=$(hwm)
echo "idle RSS ${idle} KiB, peak RSS ${peak} KiB, growth $((peak - idle)) KiB"
check "delivered byte for byte" verify --record "$FAKE_REC" --messages "$work/sent" --count 2
check "its SHA-256 was right: no request refused" \
	[ "$(grep -c 'status=403' "$FAKE_REC/requests.log")" -eq 0 ]
if grep -q -- '--enable-asan' "$top_builddir/config.log" 2>/dev/null; then
	echo "# peak RSS check skipped: sanitizer build"
else
	check "peak RSS grew by less than 2 MiB (message: 30 MB)" [ $((peak - idle)) -lt 2048 ]
fi
stop_daemon
finish
