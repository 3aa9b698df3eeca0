#!/bin/bash
# startup.sh: how soon sesrelayd serves SMTP with a large queue, cold cache.
#
#   bash bench/startup.sh [COUNT]      # default 200000 messages
#
# Fills a scratch spool with COUNT valid messages (tests/integration/
# mkqueue.py, in the format of a file the daemon itself wrote), syncs,
# drops the page cache (root only; otherwise the numbers are warm-cache
# ones and the script says so), starts sesrelayd with SES unreachable (so
# nothing leaves the queue) and reports:
#   first_220   seconds from exec to the first SMTP greeting
#   first_250   seconds from exec to a new message's 250 after DATA
#   indexed     seconds from exec to the log line that the whole queue is
#               indexed ("daemon.spool_indexed"; "spool indexed" in
#               older builds, or "daemon spool=... queued=N" printed
#               after the synchronous scan)
#   vmhwm       the daemon's peak RSS (VmHWM) once indexed
# SESRELAYD=PATH picks the binary (default build/sesrelayd);
# BENCH_TMPDIR the scratch parent (default /var/tmp, on disk).
set -u
count=${1:-200000}
top=$(cd "$(dirname "$0")/.." && pwd)
sesrelayd=${SESRELAYD:-$top/build/sesrelayd}
tests=$top/tests
work=$(mktemp -d "${BENCH_TMPDIR:-/var/tmp}/sesrelay-startup.XXXXXX")
pid=
trap '[ -n "$pid" ] && kill -KILL $pid 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
smtp_port=$(port)
dead_port=$(port)		# nothing listens there: SES unreachable
"$tests/mkcerts.sh" "$work/certs" >/dev/null
printf 'username = "AKIATESTUSER";\npassword = "x";\n' >"$work/credentials"
chmod 600 "$work/credentials"
cat >"$work/sesrelay.conf" <<CONF
hostname = "relay.test";
user = "";
listen = { tcp = [ "127.0.0.1:$smtp_port" ]; unix = "$work/run/smtp.sock"; };
spool = "$work/spool";
control = { socket = "$work/run/control.sock"; };
upstream = { host = "localhost"; port = $dead_port; tls = "starttls";
  ca_file = "$work/certs/ca.pem"; credentials = "$work/credentials"; };
CONF

start() {
	"$sesrelayd" -f -c "$work/sesrelay.conf" >"$work/daemon.log" 2>&1 &
	pid=$!
}

# The template: one message the daemon itself spooled.
start
for _ in $(seq 100); do
	python3 "$tests/integration/smtpload.py" --port "$smtp_port" --count 1 \
		--start 0 >/dev/null 2>&1 && break
	kill -0 $pid 2>/dev/null || { cat "$work/daemon.log"; exit 1; }
	sleep 0.1
done
kill -TERM $pid; wait $pid; pid=
template=$(ls "$work"/spool/queue/* | head -1)
[ -f "$template" ] || { echo "no template message"; exit 1; }

echo "writing $count messages ..."
python3 "$tests/integration/mkqueue.py" --template "$template" \
	--queue "$work/spool/queue" --count "$count" || exit 1
sync
cache=warm
if [ "$(id -u)" -eq 0 ] && echo 3 >/proc/sys/vm/drop_caches 2>/dev/null; then
	cache=cold
fi

start
python3 - "$pid" "$smtp_port" "$work/daemon.log" "$count" "$cache" "$top" <<'PY'
import os, re, smtplib, socket, sys, time
pid, port, log, count, cache, top = sys.argv[1:]
t0 = time.time()
sys.path.insert(0, os.path.join(top, "tests/integration"))
from smtpload import make_message

def greeting():
    try:
        s = socket.create_connection(("127.0.0.1", int(port)), 0.2)
        s.settimeout(60)
        ok = s.recv(4).startswith(b"220")
        s.close()
        return ok
    except OSError:
        return False

while not greeting():
    time.sleep(0.01)
t220 = time.time() - t0
s = smtplib.SMTP("127.0.0.1", int(port), timeout=120)
s.sendmail("sender@example.com", ["new@example.net"],
           make_message(999999999, 0, ["new@example.net"]))
s.quit()
t250 = time.time() - t0
pat = re.compile(r"daemon\.spool_indexed|spool indexed|daemon spool=.*queued=")
while not pat.search(open(log, errors="replace").read()):
    time.sleep(0.05)
tidx = time.time() - t0
hwm = [l for l in open("/proc/%s/status" % pid) if l.startswith("VmHWM")]
print("messages=%s cache=%s first_220=%.2fs first_250=%.2fs indexed=%.2fs %s"
      % (count, cache, t220, t250, tidx, hwm[0].split(":")[1].strip().replace(" ", "")))
PY
grep -E "spool_indexed|spool indexed|queued=" "$work/daemon.log" | head -3
kill -TERM $pid; wait $pid; pid=
