#!/bin/bash
# drain_api.sh: draining a full queue over the SES v2 API transport
# against the SMTP transport, sesrelayd only, each to its fake.
#
# For each transport, N messages of 4 KiB (10,000 by default) are queued
# through smtp-source with the upstream unreachable; then sesrelayd is
# started on the full spool pointed at a fresh fake: tests/fake_ses.py
# (STARTTLS, AUTH) for transport "smtp", tests/fake_ses_api.py (HTTPS,
# every request's SigV4 checked with botocore) for transport "api".  The
# clock runs from that start to the fake's Nth record.  4 sessions,
# recycling at the defaults, no rate limit to speak of.
#
# Usage: bash bench/drain_api.sh [--quick] [--messages N] [--size BYTES] [--keep]
# Needs root only to install Postfix's smtp-source if it is missing.
# Exit 0 when both runs delivered every message exactly once.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
sesrelayd=${SESRELAYD:-$top/build/sesrelayd}

n=10000 keep=0 size=4096
while [ $# -gt 0 ]; do
	case $1 in
	--quick) n=1000 ;;
	--messages) n=${2:?}; shift ;;
	--size) size=${2:?}; shift ;;
	--keep) keep=1 ;;
	*) echo "usage: bash bench/drain_api.sh [--quick] [--messages N] [--size BYTES] [--keep]" >&2
	   exit 2 ;;
	esac
	shift
done
case $n in ''|*[!0-9]*|0) echo "drain_api.sh: --messages wants a positive number" >&2; exit 2 ;; esac

bench=drain_api.sh
. "$here/lib.sh"

[ -x "$sesrelayd" ] || die "$sesrelayd missing: run 'bash scripts/build build' first"
python3 -c 'import botocore' 2>/dev/null || die "python3-botocore missing (scripts/deps)"
install_postfix smtp-source

base=${BENCH_TMPDIR:-/var/tmp}
work=$(mktemp -d "$base/sesrelay-drain-api.XXXXXX")
recbase=${BENCH_RECDIR:-/dev/shm}
[ -d "$recbase" ] || recbase=$work
rec=$(mktemp -d "$recbase/sesrelay-drain-api-rec.XXXXXX")
S=$work/sesrelay
mkdir -p "$S"
SES_PID='' FAKE_PID=''
cleanup() {
	local rc=$?
	set +e
	[ -n "$SES_PID" ] && sesrelay_stop
	[ -n "$FAKE_PID" ] && { kill -TERM "$FAKE_PID"; wait "$FAKE_PID"; }
	if [ "$rc" -ne 0 ]; then
		msg "--- sesrelayd log (tail)"; tail -n 15 "$S"/daemon*.log >&2 2>/dev/null
		msg "--- fake stderr (tail)"; tail -n 15 "$work"/fake-*.err >&2 2>/dev/null
	fi
	if [ "$keep" -eq 1 ]; then msg "kept $work and $rec"; else rm -rf "$work" "$rec"; fi
	exit "$rc"
}
trap cleanup EXIT
trap 'msg interrupted; exit 130' HUP INT TERM

SES_PORT=$(free_port) CLOSED_PORT=$(free_port)
certs=$work/certs
"$top/tests/mkcerts.sh" "$certs" >/dev/null || die "tests/mkcerts.sh failed"
KEY_ID=AKIABENCHKEY KEY_SECRET=benchsecret SES_USER=AKIABENCHMARK SES_PASS=BBenchPassw0rd

# fake_start TRANSPORT: the fake for it, recording into $rec/TRANSPORT.
fake_start() {
	FAKE_REC=$rec/$1
	rm -f "$work/fake.port"
	if [ "$1" = api ]; then
		python3 "$top/tests/fake_ses_api.py" --port-file "$work/fake.port" \
			--cert "$certs/server.pem" --key "$certs/server.key" \
			--record "$FAKE_REC" --access-key "$KEY_ID:$KEY_SECRET" \
			2>>"$work/fake-$1.err" &
	else
		python3 "$top/tests/fake_ses.py" --port-file "$work/fake.port" \
			--tls starttls --cert "$certs/server.pem" --key "$certs/server.key" \
			--record "$FAKE_REC" --user "$SES_USER" --password "$SES_PASS" \
			2>>"$work/fake-$1.err" &
	fi
	FAKE_PID=$!
	for _ in $(seq 200); do [ -s "$work/fake.port" ] && break; sleep 0.05; done
	[ -s "$work/fake.port" ] || die "fake ($1) did not start"
	FAKE_PORT=$(cat "$work/fake.port")
}

# sesrelay_conf TRANSPORT PORT: the upstream on localhost:PORT.
sesrelay_conf() {
	local up
	umask 077
	if [ "$1" = api ]; then
		printf 'access_key_id = "%s";\nsecret_access_key = "%s";\n' "$KEY_ID" \
			"$KEY_SECRET" >"$S/credentials"
		up="transport = \"api\"; api_endpoint = \"https://localhost:$2\"; account_check_interval = 0;"
	else
		printf 'username = "%s";\npassword = "%s";\n' "$SES_USER" "$SES_PASS" >"$S/credentials"
		up="host = \"localhost\"; port = $2; tls = \"starttls\";"
	fi
	umask 022
	cat >"$S/sesrelay.conf" <<CONF
hostname = "bench.invalid";
user = "";
listen = { tcp = [ "127.0.0.1:$SES_PORT" ]; unix = ""; };
spool = "$S/spool";
control = { socket = "$S/control.sock"; };
upstream = {
  $up
  ca_file = "$certs/ca.pem";
  credentials = "$S/credentials";
  sessions = 4;
  rate = 100000.0;
};
CONF
	"$sesrelayd" -t -c "$S/sesrelay.conf" >/dev/null 2>"$S/check.err" ||
		{ cat "$S/check.err" >&2; die "sesrelayd -t refused the benchmark config"; }
}

wait_recorded() {
	local i
	for ((i = 0; i < $2 * 20; i++)); do
		[ -e "$FAKE_REC/$(printf %06d "$1").json" ] && return 0
		sleep 0.05
	done
	return 1
}
# distinct_and_conns: "records distinct-Message-Ids connections"
distinct_and_conns() {
	python3 - "$FAKE_REC" <<'PY'
import os, re, sys
d = sys.argv[1]
ids, n = set(), 0
for name in os.listdir(d):
    if name.endswith(".eml"):
        n += 1
        m = re.search(rb"(?im)^message-id:\s*(\S+)", open(os.path.join(d, name), "rb").read(2048))
        ids.add(m.group(1) if m else name)
conns = sum(" opened" in l for l in open(os.path.join(d, "connections.log")))
print(n, len(ids), conns)
PY
}

results=$work/results
: >"$results"
limit=$((n / 20 > 120 ? n / 20 : 120))
RUN=0
run() {
	local t0 t1 c1 f0 f1 got distinct conns
	RUN=$((RUN + 1))
	fake_start "$1"
	rm -rf "$S/spool"
	sesrelay_conf "$1" "$CLOSED_PORT"
	sesrelay_listen_start "$S/daemon$RUN-queue.log"
	msg "$1: queueing $n messages"
	smtp-source -s 8 -d -m "$n" -l "$size" -M bench.invalid \
		-f sender@bench.invalid -t rcpt@example.com "127.0.0.1:$SES_PORT" ||
		die "$1: smtp-source failed"
	[ "$(sesrelay_queued)" -eq "$n" ] || die "$1: $(sesrelay_queued) queued, expected $n"
	sesrelay_stop || die "sesrelayd exited with status $?"
	sesrelay_conf "$1" "$FAKE_PORT"
	msg "$1: draining"
	f0=$(cpu_ticks "$FAKE_PID")
	t0=$(now_ns)
	sesrelay_listen_start "$S/daemon$RUN.log"
	wait_recorded "$n" "$limit" || die "$1: not all $n recorded in ${limit}s"
	t1=$(now_ns)
	f1=$(cpu_ticks "$FAKE_PID")
	for _ in $(seq 600); do [ "$(sesrelay_queued)" -eq 0 ] && break; sleep 0.05; done
	[ "$(sesrelay_queued)" -eq 0 ] || die "$1: messages still queued after the last record"
	c1=$(cpu_ticks "$SES_PID")
	sesrelay_stop || die "sesrelayd exited with status $?"
	kill -TERM "$FAKE_PID"; wait "$FAKE_PID" || true; FAKE_PID=''
	read -r got distinct conns <<<"$(distinct_and_conns)"
	[ "$got" -eq "$n" ] && [ "$distinct" -eq "$n" ] ||
		die "$1: $got recorded, $distinct distinct, expected $n"
	echo "$1 $n $(((t1 - t0) / 1000000)) $c1 $((f1 - f0)) $conns" >>"$results"
}
now_ns() { date +%s%N; }

echo "sesrelay drain benchmark, API vs SMTP transport  $(date -u +%Y-%m-%dT%H:%MZ)"
echo "machine:  nproc=$(nproc)  kernel=$(uname -sr)  loadavg $(cut -d' ' -f1-3 /proc/loadavg) at start"
echo "queue fs: $(fs_info "$work")"
echo "load:     $n messages of $size bytes (smtp-source -l), 4 sessions"
run smtp
run api
echo "loadavg:  $(cut -d' ' -f1-3 /proc/loadavg) at end"
echo
awk -v hz="$hz" '
BEGIN { printf "%-9s %8s %8s %8s %6s %11s %11s\n", "transport", "messages",
	"seconds", "msgs/s", "conns", "CPU-s/1000", "fake CPU-s" }
{ secs = $3 / 1000
  printf "%-9s %8d %8.2f %8.1f %6d %11.3f %11.3f\n", $1, $2, secs, $2 / secs,
	$6, $4 / hz * 1000 / $2, $5 / hz * 1000 / $2 }' "$results"
cat <<'NOTE'

seconds, msgs/s: from sesrelayd's start on the full spool to the fake's
  last record.  CPU-s/1000: sesrelayd's CPU seconds (user + system, all
  threads, spool scan included) per 1000 messages; fake CPU-s: the fake's
  own per 1000 (Python; botocore checks every API request's signature),
  for scale: on a small machine the fake is what limits msgs/s.
NOTE
