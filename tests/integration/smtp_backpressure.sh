#!/bin/bash
# A client that never reads its replies cannot make the daemon buffer
# them (issue 10, item 10): clients pipeline 200,000 EHLOs, whose replies
# are 12 times their size (a 555 no longer echoes a whole parameter), or
# a million NOOPs and RSETs, and never read;
# the daemon stops reading from them, so its memory (VmHWM, from /proc)
# stays bounded, it keeps serving others, and the silent clients are
# closed after smtp.timeout.  Before the fix every such session buffered
# its whole output, about 20 MB each.
. "$(dirname "$0")/lib.sh"

# Under AddressSanitizer freed memory waits in a quarantine (256 MB by
# default), which would hide what the daemon really holds.
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=0:thread_local_quarantine_size_kb=0"
start_fake starttls
EXTRA_CONF='smtp = { timeout = 10; max_commands = 2000000; };' write_conf
start_daemon

kib() { awk -v k="$1:" '$1 == k { print $2 }' "/proc/$DAEMON_PID/status"; }
# Memory is looked at once the daemon has done all it will with the
# input the clients could send (its CPU time stands still for a second):
# without backpressure it would still be reading what the kernel holds,
# and the growth would be measured too early to be seen.
settle() {
	local a b=-1 n=0
	for _ in $(seq 240); do
		a=$(cpu)
		if [ "$a" = "$b" ]; then n=$((n + 1)); else n=0; fi
		[ "$n" -ge 4 ] && return 0
		b=$a
		sleep 0.25
	done
	echo "the daemon is still busy"
}
fds() { ls "/proc/$DAEMON_PID/fd" | wc -l; }
check "a message goes through first" \
	smtpload --port "$SMTP_PORT" --count 1 --messages "$work/sent"
hwm0=$(kib VmHWM)
fds0=$(fds)

# CLIENTS clients, each pipelining COMMANDS EHLOs (about 20 MB of
# replies) and never reading; each gives up sending once the daemon has not taken a
# byte for 3 s.  They hold their sockets until told to go (the file
# $work/go), so the daemon's state can be looked at meanwhile.
python3 - "$SMTP_PORT" "$work" >"$work/flood.out" 2>&1 <<'PY' &
import os, select, socket, sys, time
port, work = int(sys.argv[1]), sys.argv[2]
CLIENTS, COMMANDS = 8, 200000
data = b"EHLO flood\r\n" + b"EHLO x\r\n" * COMMANDS
socks = []
for _ in range(CLIENTS):
    s = socket.create_connection(("127.0.0.1", port), 5)
    s.setblocking(False)
    socks.append([s, 0, time.monotonic()])
while True:
    live = [c for c in socks if c[1] < len(data) and
            time.monotonic() - c[2] < 3]
    if not live:
        break
    _, w, _ = select.select([], [c[0] for c in live], [], 0.5)
    for c in live:
        if c[0] in w:
            try:
                n = c[0].send(data[c[1]:c[1] + 262144])
            except BlockingIOError:
                continue
            c[1] += n
            c[2] = time.monotonic()
print("sent per client:", [c[1] for c in socks], flush=True)
open(os.path.join(work, "flooded"), "w").close()
while not os.path.exists(os.path.join(work, "go")):
    time.sleep(0.2)
PY
flood=$!
pids+=("$flood")
for _ in $(seq 600); do [ -e "$work/flooded" ] && break; sleep 0.1; done
check "the flooding clients stopped being read" [ -e "$work/flooded" ]
cat "$work/flood.out"
settle
hwm1=$(kib VmHWM)
grow=$(( (hwm1 - hwm0) / 1024 ))
echo "VmHWM ${hwm0} kB before, ${hwm1} kB after 8 clients that do not read (+${grow} MiB)"
# Bounded: about IN_HIGH + OUT_HIGH (192 KiB) a session; 16 MiB leaves
# room for malloc.  Unbounded, it was some 20 MB a session.
check "the daemon's peak memory grew by less than 16 MiB" [ "$grow" -lt 16 ]
check "others are served meanwhile" \
	smtpload --port "$SMTP_PORT" --count 2 --start 2 --messages "$work/sent"
check "both arrived at SES, byte for byte" wait_delivered 3 30
check "... as sent" verify --record "$FAKE_REC" --messages "$work/sent" --count 3

# The silent clients still hold their sockets: after smtp.timeout the
# daemon must have closed its side of each (its descriptors fall back).
closed() { [ "$(fds)" -le "$fds0" ]; }
wait_closed() {
	for _ in $(seq 300); do closed && return 0; sleep 0.1; done
	echo "daemon holds $(fds) descriptors, $fds0 before"; return 1
}
check "sessions whose replies are not read are closed after smtp.timeout" wait_closed
touch "$work/go"
wait "$flood"

# A flood of ordinary pipelined commands (NOOP, RSET), never read: the
# replies are small, but there are a million of them.  A fresh daemon,
# so that its resident memory starts low.
stop_daemon
start_daemon
rss0=$(kib VmRSS)
python3 - "$SMTP_PORT" "$work" >"$work/noop.out" 2>&1 <<'PY' &
import os, select, socket, sys, time
port, work = int(sys.argv[1]), sys.argv[2]
data = b"EHLO flood\r\n" + b"NOOP\r\nRSET\r\n" * 500000
socks = [[socket.create_connection(("127.0.0.1", port), 5), 0, time.monotonic()]
         for _ in range(2)]
for c in socks:
    c[0].setblocking(False)
while True:
    live = [c for c in socks if c[1] < len(data) and time.monotonic() - c[2] < 3]
    if not live:
        break
    _, w, _ = select.select([], [c[0] for c in live], [], 0.5)
    for c in live:
        if c[0] in w:
            try:
                n = c[0].send(data[c[1]:c[1] + 262144])
            except BlockingIOError:
                continue
            c[1] += n
            c[2] = time.monotonic()
print("sent per client:", [c[1] for c in socks], "of", len(data), flush=True)
while not os.path.exists(os.path.join(work, "go2")):
    time.sleep(0.2)
PY
noop=$!
pids+=("$noop")
for _ in $(seq 600); do grep -q "^sent" "$work/noop.out" && break; sleep 0.1; done
cat "$work/noop.out"
settle
rss1=$(kib VmRSS)
echo "VmRSS ${rss0} kB before, ${rss1} kB during a NOOP/RSET flood of 2 clients"
check "a NOOP/RSET flood that is never read holds less than 8 MiB" \
	[ $(( (rss1 - rss0) / 1024 )) -lt 8 ]
touch "$work/go2"
wait "$noop"
stop_daemon
finish
