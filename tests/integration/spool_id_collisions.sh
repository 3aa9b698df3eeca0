#!/bin/bash
# A commit never replaces a queued message (issue 10, item 2).
#
# The daemon runs with an LD_PRELOAD shim (narrow_random.c) that leaves
# getrandom() 8 bits of entropy, so queue ids collide many times a second.
# SES is down while 300 messages are sent (8 clients; a 4xx is retried
# like a real client would), so every acknowledged message must still be
# in queue/: a rename that overwrote an earlier message with the same id
# (the old code: 226 of 300 left) loses it.  Then SES comes back and all
# 300 must arrive, byte for byte.
. "$(dirname "$0")/lib.sh"

cc=${CC:-cc}
command -v "$cc" >/dev/null 2>&1 || { echo "SKIP: no C compiler ($cc) for the LD_PRELOAD shim"; exit 77; }
shim=$work/narrow_random.so
"$cc" -shared -fPIC -O1 -o "$shim" "$tests/integration/narrow_random.c" ||
	{ echo "SKIP: cannot build the LD_PRELOAD shim"; exit 77; }
# Under ASan the sanitizer runtime must come first in the preload list.
asan=$(ldd "$sbin/sesrelayd" 2>/dev/null | awk '/libasan/ { print $3; exit }')
preload=$shim
[ -n "$asan" ] && preload="$asan:$shim"
# Only the daemon gets the shim (not the test's own tools): start_daemon
# runs $sbin/sesrelayd, here a wrapper that execs the real one with it.
mkdir "$work/sbin"
cat >"$work/sbin/sesrelayd" <<WRAP
#!/bin/sh
LD_PRELOAD='$preload' NARROW_RANDOM_BITS=8 exec '$sbin/sesrelayd' "\$@"
WRAP
chmod 755 "$work/sbin/sesrelayd"
sbin=$work/sbin

start_fake starttls
kill "$FAKE_PID"; wait "$FAKE_PID" 2>/dev/null	# SES down: mail stays queued
write_conf
start_daemon
check "the shim is loaded in the daemon" grep -q narrow_random "/proc/$DAEMON_PID/maps"
: >"$work/acked"
smtpload --port "$SMTP_PORT" --count 300 --concurrency 8 --messages "$work/sent" \
	--acked "$work/acked" --retry-seconds 30 --tolerate-errors >"$work/load.out" 2>&1
acked=$(wc -l <"$work/acked")
echo "acknowledged: $acked of 300; in queue/: $(spool_count)"
check "all 300 messages were acknowledged" [ "$acked" -eq 300 ]
check "every acknowledged message is in queue/" [ "$(spool_count)" -eq "$acked" ]
stop_daemon

start_fake starttls
write_conf
start_daemon
wait_delivered "$acked" 30
check "every acknowledged message arrived, byte for byte, once" \
	verify --record "$FAKE_REC" --messages "$work/sent" --expect-ids "$work/acked"
check "nothing was quarantined" [ "$(ls "$work/spool/corrupt" | wc -l)" -eq 0 ]
stop_daemon
finish
