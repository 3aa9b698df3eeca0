#!/bin/bash
# drain.sh: draining a full queue to the fake SES over TLS, sesrelayd
# against Postfix.
#
# Each server first queues N messages of 4 KiB (10,000 by default), with
# delivery held, from Postfix's smtp-source; then delivery is let go, and
# the script times how long the fake SES (tests/fake_ses.py: STARTTLS,
# AUTH, a certificate from a test CA) takes to record all N, how many
# connections the server opened for it and how much CPU the server used.
# Both servers use 4 upstream sessions.  sesrelayd: upstream.sessions = 4,
# recycling at its defaults.  Postfix: a null client (relayhost the fake,
# SASL, verified TLS), destination concurrency 4, TLS connection reuse on.
# Every server gets its own fresh fake SES; one run each.
#
# Usage: bash bench/drain.sh [--quick] [--messages N] [--size BYTES]
#                            [--postfix-no-reuse] [--keep]
# See bench/README for what is measured and how to read the output.
# Needs root (apt-get, and Postfix's master runs as root).  Exit 0 when
# both servers delivered every message exactly once, over TLS.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
sesrelayd=${SESRELAYD:-$top/build/sesrelayd}

n=10000 keep=0 pf_reuse=yes
size=4096	# smtp-source -l: payload bytes
usage() {
	echo "usage: bash bench/drain.sh [--quick] [--messages N] [--size BYTES]" \
		"[--postfix-no-reuse] [--keep]" >&2
	exit "${1:-2}"
}
while [ $# -gt 0 ]; do
	case $1 in
	--quick) n=1000 ;;
	--messages) n=${2:?}; shift ;;
	--messages=*) n=${1#*=} ;;
	--size) size=${2:?}; shift ;;
	--size=*) size=${1#*=} ;;
	--postfix-no-reuse) pf_reuse=no ;;
	--keep) keep=1 ;;
	-h|--help) usage 0 ;;
	*) echo "drain.sh: unknown option $1" >&2; usage ;;
	esac
	shift
done
case $n in ''|*[!0-9]*|0) echo "drain.sh: --messages wants a positive number" >&2; exit 2 ;; esac
case $size in ''|*[!0-9]*|0) echo "drain.sh: --size wants a positive number" >&2; exit 2 ;; esac

bench=drain.sh
. "$here/lib.sh"

[ "$(id -u)" -eq 0 ] || die "run as root (installs postfix; Postfix's master runs as root)"
[ -x "$sesrelayd" ] || die "$sesrelayd missing: run 'bash scripts/build build' first"
for tool in python3 openssl; do
	command -v "$tool" >/dev/null || die "$tool missing (scripts/deps installs it)"
done

# --- prerequisites ----------------------------------------------------------
# Postfix from Debian, the system instance not configured (lib.sh).
install_postfix smtp-source postfix
# Postfix's SMTP client finds AUTH PLAIN/LOGIN in Cyrus SASL's plugins.
if ! compgen -G "/usr/lib/*/sasl2/libplain.so*" >/dev/null; then
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q libsasl2-modules >/dev/null ||
		die "apt-get install libsasl2-modules failed"
fi

# --- scratch directories and cleanup ---------------------------------------------
# Queues on disk, in /var/tmp as in accept.sh (BENCH_TMPDIR overrides).
# The fake SES records into a tmpfs (BENCH_RECDIR, default /dev/shm):
# it writes two files per message, and that sink cost should stay small.
base=${BENCH_TMPDIR:-/var/tmp}
work=$(mktemp -d "$base/sesrelay-drain.XXXXXX")
chmod 755 "$work"	# Postfix's daemons (user postfix) must traverse it
recbase=${BENCH_RECDIR:-/dev/shm}
[ -d "$recbase" ] || recbase=$work
rec=$(mktemp -d "$recbase/sesrelay-drain-rec.XXXXXX")
S=$work/sesrelay P=$work/postfix
mkdir -p "$S" "$P/etc" "$P/data" "$P/queue"
chown postfix "$P/data"

SES_PID='' PF_MASTER='' FAKE_PID=''
cleanup() {
	local rc=$?
	set +e
	[ -n "$SES_PID" ] && sesrelay_stop
	[ -n "$PF_MASTER" ] && postfix_stop
	[ -n "$FAKE_PID" ] && fake_stop
	if [ "$rc" -ne 0 ]; then
		msg "--- sesrelayd log (tail)"; tail -n 15 "$S"/daemon*.log >&2 2>/dev/null
		msg "--- postfix maillog (tail)"; tail -n 15 "$P/maillog" >&2 2>/dev/null
		msg "--- fake SES stderr (tail)"; tail -n 15 "$work"/fake-*.err >&2 2>/dev/null
	fi
	if [ "$keep" -eq 1 ]; then msg "kept $work and $rec"; else rm -rf "$work" "$rec"; fi
	exit "$rc"
}
trap cleanup EXIT
trap 'msg interrupted; exit 130' HUP INT TERM

SES_PORT=$(free_port) PF_PORT=$(free_port) CLOSED_PORT=$(free_port)
[ "$SES_PORT" != "$PF_PORT" ] || PF_PORT=$(free_port)

# Test CA and a server certificate for "localhost" (no IP SAN), as the
# integration tests use them.  Both servers verify it, so both name the
# upstream "localhost" (resolved from /etc/hosts to 127.0.0.1).
certs=$work/certs
"$top/tests/mkcerts.sh" "$certs" >/dev/null || die "tests/mkcerts.sh failed"
chmod 755 "$certs"
SES_USER=AKIABENCHMARK SES_PASS=BBenchPassw0rd

# --- the fake SES -------------------------------------------------------------
# fake_start NAME: a fresh fake SES in STARTTLS mode, recording into
# $rec/NAME; no transcript (--log) and no faults file, to keep it cheap.
# Sets FAKE_PID, FAKE_PORT, FAKE_REC.
fake_start() {
	FAKE_REC=$rec/$1
	rm -f "$work/fake.port"
	python3 "$top/tests/fake_ses.py" --listen 127.0.0.1 --port 0 \
		--port-file "$work/fake.port" --tls starttls \
		--cert "$certs/server.pem" --key "$certs/server.key" \
		--record "$FAKE_REC" --user "$SES_USER" --password "$SES_PASS" \
		2>>"$work/fake-$1.err" &
	FAKE_PID=$!
	for _ in $(seq 100); do
		[ -s "$work/fake.port" ] && break
		kill -0 "$FAKE_PID" 2>/dev/null || break
		sleep 0.05
	done
	[ -s "$work/fake.port" ] || die "fake SES did not start"
	FAKE_PORT=$(cat "$work/fake.port")
}
fake_stop() {
	kill -TERM "$FAKE_PID" 2>/dev/null
	for _ in $(seq 100); do kill -0 "$FAKE_PID" 2>/dev/null || break; sleep 0.05; done
	kill -KILL "$FAKE_PID" 2>/dev/null || true
	wait "$FAKE_PID" 2>/dev/null || true
	FAKE_PID=
	return 0
}
# The fake numbers its records 000001, 000002, ... in a fresh directory,
# one at a time, and writes <seq>.json last: once the Nth exists, N
# messages have been recorded.  A test for one name is much cheaper than
# listing the directory every time.
fake_has() { [ -e "$FAKE_REC/$(printf %06d "$1").json" ]; }
# wait_recorded N LIMIT: until the fake recorded N messages.
wait_recorded() {
	local want=$1 limit=$2 i
	for ((i = 0; i < limit * 20; i++)); do
		fake_has "$want" && return 0
		sleep 0.05
	done
	return 1
}
# fake_summary: "messages tls authed distinct connections tls_errors",
# from the record directory and connections.log, once at the end of a
# run.  distinct: different Message-Id headers (smtp-source numbers its
# messages), so a message recorded twice shows.
fake_summary() {
	python3 - "$FAKE_REC" "$SES_USER" <<'PY'
import json, os, re, sys
d, user = sys.argv[1], sys.argv[2]
msgs = tls = authed = 0
ids = set()
for name in os.listdir(d):
    if name.endswith(".json"):
        with open(os.path.join(d, name)) as f:
            m = json.load(f)
        msgs += 1
        tls += bool(m.get("tls"))
        authed += m.get("auth_user") == user
        with open(os.path.join(d, name[:-5] + ".eml"), "rb") as f:
            head = f.read(2048)
        mid = re.search(rb"(?im)^message-id:\s*(\S+)", head)
        ids.add(mid.group(1) if mid else name)
conns = errs = 0
with open(os.path.join(d, "connections.log")) as f:
    for line in f:
        conns += " opened " in line
        errs += " tls_error=" in line
print(msgs, tls, authed, len(ids), conns, errs)
PY
}

# --- measuring ------------------------------------------------------------------
now_ns() { date +%s%N; }

# load COUNT PORT: queue COUNT messages with smtp-source, 8 sessions, each
# sending its messages over one connection; fails on any non-2xx reply.
load() {
	smtp-source -s 8 -d -m "$1" -l "$size" -M bench.invalid \
		-f sender@bench.invalid -t rcpt@example.com "127.0.0.1:$2"
}

# Per run: server messages seconds cpu_s fake_cpu_s connections
results=$work/results
: >"$results"

# check_fake SERVER: every message recorded once, over TLS, authenticated.
# Sets conns: the connections the server opened to the fake.
check_fake() {
	local got tls authed distinct errs
	read -r got tls authed distinct conns errs <<<"$(fake_summary)"
	[ "$got" -eq "$n" ] || die "$1: the fake SES recorded $got messages, expected $n"
	[ "$distinct" -eq "$n" ] || die "$1: only $distinct different messages among the $n recorded"
	[ "$tls" -eq "$n" ] || die "$1: only $tls of $n messages came over TLS"
	[ "$authed" -eq "$n" ] || die "$1: only $authed of $n messages came authenticated"
	[ "$errs" -eq 0 ] || msg "$1: $errs TLS handshake errors in connections.log"
	return 0
}

# Generous: at least 20 messages per second.
limit=$((n / 20 > 120 ? n / 20 : 120))

# --- sesrelayd ------------------------------------------------------------------
umask 077
printf 'username = "%s";\npassword = "%s";\n' "$SES_USER" "$SES_PASS" >"$S/credentials"
umask 022
# sesrelay_conf PORT: upstream on 127.0.0.1:PORT as "localhost", 4
# sessions, no rate limit to speak of, recycling at its defaults.
sesrelay_conf() {
	cat >"$S/sesrelay.conf" <<CONF
hostname = "bench.invalid";
user = "";
listen = { tcp = [ "127.0.0.1:$SES_PORT" ]; unix = ""; };
spool = "$S/spool";
control = { socket = "$S/control.sock"; };
upstream = {
  host = "localhost";
  port = $1;
  tls = "starttls";
  ca_file = "$certs/ca.pem";
  credentials = "$S/credentials";
  sessions = 4;
  rate = 100000.0;
};
CONF
	"$sesrelayd" -t -c "$S/sesrelay.conf" >/dev/null 2>"$S/check.err" ||
		{ cat "$S/check.err" >&2; die "sesrelayd -t refused the benchmark config"; }
}
SES_RUN=0
# sesrelay_start: a log per run (lib.sh: sesrelay_stop, sesrelay_queued).
sesrelay_start() {
	SES_RUN=$((SES_RUN + 1))
	sesrelay_listen_start "$S/daemon$SES_RUN.log"
}

# Queue with the upstream on a closed port (sessions fail to connect and
# back off; messages are taken from the queue only by a session that is
# ready, so none is tried or deferred), stop, point the upstream at the
# fake and start again: the clock runs from that start.
run_sesrelay() {
	local t0 t1 c1 f0 f1 got
	fake_start sesrelay
	rm -rf "$S/spool"
	sesrelay_conf "$CLOSED_PORT"
	sesrelay_start
	msg "sesrelay: queueing $n messages"
	load "$n" "$SES_PORT" || die "sesrelay: smtp-source failed"
	got=$(sesrelay_queued)
	[ "$got" -eq "$n" ] || die "sesrelay: $got messages queued, expected $n"
	sesrelay_stop || die "sesrelayd exited with status $? after SIGTERM"
	sesrelay_conf "$FAKE_PORT"
	msg "sesrelay: draining"
	f0=$(cpu_ticks "$FAKE_PID")
	t0=$(now_ns)
	sesrelay_start
	wait_recorded "$n" "$limit" ||
		die "sesrelay: the fake SES recorded $(fake_summary | cut -d' ' -f1) of $n in ${limit}s"
	t1=$(now_ns)
	f1=$(cpu_ticks "$FAKE_PID")
	# The clock stops at the last record; the CPU is read once the queue is
	# empty, so that it covers all of the per-message work.
	for _ in $(seq 600); do
		[ "$(sesrelay_queued)" -eq 0 ] && break
		sleep 0.05
	done
	got=$(sesrelay_queued)
	[ "$got" -eq 0 ] || die "sesrelay: $got messages still queued 30 s after the last was recorded"
	# A fresh process: everything it used since its start is the drain's.
	c1=$(cpu_ticks "$SES_PID")
	sesrelay_stop || die "sesrelayd exited with status $? after SIGTERM"
	fake_stop
	check_fake sesrelay
	echo "sesrelay $n $(((t1 - t0) / 1000000)) $c1 $((f1 - f0)) $conns" >>"$results"
}

# --- Postfix --------------------------------------------------------------------
# A separate instance, as in accept.sh: own config, queue and data
# directories, one smtpd on 127.0.0.1, no chroot, maillog via postlogd.
# Configured as a null client of the fake SES:
#   relayhost = [localhost]:PORT, smtp_host_lookup = native: "localhost"
#     from /etc/hosts (no DNS), the name the certificate is for;
#   smtp_tls_security_level = verify against the test CA (certificate
#     name = the relayhost's host name, Postfix's default match);
#   SASL with a texthash password map, PLAIN/LOGIN allowed (over TLS);
#   smtp_tls_connection_reuse = yes (tlsproxy and scache in master.cf;
#     --postfix-no-reuse: no, so TLS runs in the smtp process and every
#     delivery opens its own connection), and the TLS session cache
#     Debian's default main.cf sets;
#   concurrency 4 towards the relayhost, the same 4 sessions as sesrelayd.
# Mail is queued on hold (smtpd check_client_access static:HOLD, as in
# accept.sh), then released: postsuper -H ALL (hold -> deferred) and
# postqueue -f (qmgr takes the whole deferred queue).
postfix_conf() {
	umask 077
	printf '[localhost]:%s %s:%s\n' "$FAKE_PORT" "$SES_USER" "$SES_PASS" >"$P/etc/sasl_passwd"
	umask 022
	cat >"$P/etc/main.cf" <<CONF
compatibility_level = 3.6
queue_directory = $P/queue
data_directory = $P/data
maillog_file = $P/maillog
maillog_file_prefixes = $work
myhostname = bench.invalid
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject
smtpd_recipient_restrictions = check_client_access static:HOLD
smtpd_peername_lookup = no
in_flow_delay = 0s
relayhost = [localhost]:$FAKE_PORT
smtp_host_lookup = native
default_transport = smtp
smtp_tls_security_level = verify
smtp_tls_CAfile = $certs/ca.pem
smtp_tls_connection_reuse = $pf_reuse
smtp_tls_session_cache_database = btree:\${data_directory}/smtp_scache
smtp_sasl_auth_enable = yes
smtp_sasl_password_maps = texthash:$P/etc/sasl_passwd
smtp_sasl_security_options = noanonymous
smtp_sasl_tls_security_options = noanonymous
default_destination_concurrency_limit = 4
smtp_destination_concurrency_limit = 4
alias_maps =
alias_database =
local_recipient_maps =
biff = no
CONF
	postfix_master_cf "$PF_PORT" tls
}
postfix_queued() {
	find "$P/queue/incoming" "$P/queue/active" "$P/queue/deferred" \
		"$P/queue/hold" "$P/queue/maildrop" -type f | wc -l
}
# shell_children_s FILE: CPU seconds (user + system) of this shell's
# reaped children, from the output of the times builtin saved in FILE
# (times must run in this shell, not in a $(...) subshell).
shell_children_s() {
	awk 'NR == 2 { split($1, u, /[ms]/); split($2, s, /[ms]/);
		printf "%.3f\n", u[1] * 60 + u[2] + s[1] * 60 + s[2] }' "$1"
}

run_postfix() {
	local t0 t1 c0 c1 f0 f1 got x
	fake_start postfix
	postfix_conf
	postfix_listen_start
	msg "postfix: queueing $n messages (on hold)"
	load "$n" "$PF_PORT" || die "postfix: smtp-source failed"
	got=$(find "$P/queue/hold" -type f | wc -l)
	[ "$got" -eq "$n" ] || die "postfix: $got messages on hold, expected $n"
	msg "postfix: draining"
	c0=$(cpu_ticks "$PF_MASTER")
	f0=$(cpu_ticks "$FAKE_PID")
	times >"$work/times0"
	t0=$(now_ns)
	postsuper -c "$P/etc" -H ALL >>"$P/postfix.out" 2>&1 || die "postsuper -H ALL failed"
	postqueue -c "$P/etc" -f >>"$P/postfix.out" 2>&1 || die "postqueue -f failed"
	times >"$work/times1"
	wait_recorded "$n" "$limit" ||
		die "postfix: the fake SES recorded $(fake_summary | cut -d' ' -f1) of $n in ${limit}s"
	t1=$(now_ns)
	f1=$(cpu_ticks "$FAKE_PID")
	for _ in $(seq 600); do
		[ "$(postfix_queued)" -eq 0 ] && break
		sleep 0.05
	done
	got=$(postfix_queued)
	[ "$got" -eq 0 ] || die "postfix: $got messages still queued 30 s after the last was recorded"
	sleep 0.3	# let qmgr finish its bookkeeping
	c1=$(cpu_ticks "$PF_MASTER")
	# Postfix's CPU: master and its children, plus postsuper and postqueue.
	x=$(awk -v a="$(shell_children_s "$work/times0")" -v b="$(shell_children_s "$work/times1")" \
		-v hz="$hz" 'BEGIN { printf "%d\n", (b - a) * hz + 0.5 }')
	postfix_stop
	fake_stop
	check_fake postfix
	echo "postfix $n $(((t1 - t0) / 1000000)) $((c1 - c0 + x)) $((f1 - f0)) $conns" >>"$results"
}

# --- machine --------------------------------------------------------------------
fsinfo=$(fs_info "$work")
recfs=$(stat -f -c %T "$rec")
cpu_model=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
echo "sesrelay drain benchmark  $(date -u +%Y-%m-%dT%H:%MZ)"
echo "machine:  nproc=$(nproc)  cpu=${cpu_model:-unknown}  kernel=$(uname -sr)"
echo "queue fs: $fsinfo"
echo "loadavg:  $(cut -d' ' -f1-3 /proc/loadavg) at start (other work on the machine moves the numbers)"
echo "scratch:  $work (queues), $rec ($recfs: the fake SES's records)"
echo "servers:  $("$sesrelayd" -v 2>&1 | head -1) (no -d, sessions 4, recycle defaults)" \
	"vs Postfix $(postconf -h -d mail_version) (null client, concurrency 4," \
	"smtp_tls_connection_reuse = $pf_reuse)"
echo "load:     $n messages of $size bytes (smtp-source -l) queued with delivery held," \
	"then drained to tests/fake_ses.py: STARTTLS, AUTH, certificate verified"
echo

# --- the runs ---------------------------------------------------------------------
run_sesrelay
run_postfix

echo "loadavg:  $(cut -d' ' -f1-3 /proc/loadavg) at end"
echo

# --- the table ----------------------------------------------------------------------
awk -v hz="$hz" '
{
	name[NR] = $1; msgs[NR] = $2; secs[NR] = $3 / 1000
	rate[NR] = $2 / secs[NR]; cpu[NR] = $4 / hz * 1000 / $2
	fake[NR] = $5 / hz * 1000 / $2; conns[NR] = $6
	r[$1] = rate[NR]; c[$1] = cpu[NR]
}
END {
	printf "%-9s %8s %8s %8s %7s %6s %9s %11s %11s\n", "", "", "", "", "ratio",
		"", "", "CPU-s/1000", "CPU-s/1000"
	printf "%-9s %8s %8s %8s %7s %6s %9s %11s %11s\n", "server", "messages",
		"seconds", "msgs/s", "ses/pf", "conns", "msgs/conn", "server", "fake SES"
	for (i = 1; i <= NR; i++) {
		ratio = ""
		if (name[i] == "sesrelay" && r["postfix"] > 0)
			ratio = sprintf("%.2f", r["sesrelay"] / r["postfix"])
		printf "%-9s %8d %8.2f %8.1f %7s %6d %9.1f %11.3f %11.3f\n",
			name[i], msgs[i], secs[i], rate[i], ratio,
			conns[i], msgs[i] / conns[i], cpu[i], fake[i]
	}
	if (c["postfix"] > 0)
		printf "\nCPU per message, sesrelay / postfix: %.2f\n", c["sesrelay"] / c["postfix"]
}' "$results"
cat <<'NOTE'

seconds, msgs/s: from letting delivery go (sesrelayd started on the full
  spool; Postfix's postsuper -H ALL) to the fake SES having recorded the
  last message.  ratio ses/pf = sesrelay's msgs/s / Postfix's.
conns: TCP connections the server opened to the fake SES for the drain
  (its connections.log).  sesrelayd recycles a session after 100 messages
  or 60 s (its defaults, for SES's load balancer); Postfix reuses a
  connection without a message limit (smtp_connection_reuse_count_limit = 0).
CPU-s/1000: CPU seconds (user + system) per 1000 messages, from
  /proc/PID/stat, read once the queue is empty.  sesrelayd: the process
  from its start (spool scan included), all threads.  Postfix: master and
  all its children (qmgr, smtp, tlsproxy, scache, trivial-rewrite,
  postlogd, ...), children that exited included (master's cutime +
  cstime), plus postsuper and postqueue.  fake SES: the sink's own CPU
  up to the last record, for scale: on a 2-core machine it can be what
  limits msgs/s.
NOTE
exit 0
