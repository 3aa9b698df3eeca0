#!/bin/bash
# accept.sh: durable SMTP accept throughput, sesrelayd against Postfix.
#
# Both servers run side by side in one scratch directory (one filesystem),
# on loopback only, and are driven by the same load generator, Postfix's
# smtp-source.  For every message size and client count, each server is
# measured --repeat times (3 by default), alternating sesrelayd and
# Postfix so that background load hits both alike, and the median is
# reported.  Every run starts from an empty queue: the server is stopped,
# its queue deleted, and started again.  Nothing is delivered: sesrelayd's
# upstream is a closed local port, and Postfix puts every accepted message
# on hold (or, with --postfix-defer, defers it in qmgr).
#
# With --neighbour every point is also measured while another process
# dirties the same file system (dd writing and syncing a big file in a
# loop).  A probe client sends one message after another alongside the
# load and records each one's accept latency (end of data to 250): p99.
#
# Usage: bash bench/accept.sh [--quick] [--repeat N] [--reuse]
#                             [--postfix-defer] [--profile] [--keep]
#                             [--neighbour] [--only SIZE:CLIENTS[,...]]
# See bench/README for what is measured and how to read the output.
# Needs root (apt-get, and Postfix's master runs as root).  Exit 0 when
# every run accepted every message.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
sesrelayd=${SESRELAYD:-$top/build/sesrelayd}

quick=0 repeat='' reuse=0 pf_mode=hold profile=0 keep=0 neighbour=0 only=''
usage() {
	echo "usage: bash bench/accept.sh [--quick] [--repeat N] [--reuse]" \
		"[--postfix-defer] [--profile] [--keep] [--neighbour]" \
		"[--only SIZE:CLIENTS[,...]]" >&2
	exit "${1:-2}"
}
while [ $# -gt 0 ]; do
	case $1 in
	--quick) quick=1 ;;
	--repeat) repeat=${2:?}; shift ;;
	--repeat=*) repeat=${1#*=} ;;
	--reuse) reuse=1 ;;
	--postfix-defer) pf_mode=defer ;;
	--profile) profile=1 ;;
	--keep) keep=1 ;;
	--neighbour|--neighbor) neighbour=1 ;;
	--only) only=${2:?}; shift ;;
	--only=*) only=${1#*=} ;;
	-h|--help) usage 0 ;;
	*) echo "accept.sh: unknown option $1" >&2; usage ;;
	esac
	shift
done

sizes=(1024 102400)
clients=(1 8 32)
# Messages per run, by "size:clients": a few seconds per run here.
declare -A count=(
	[1024:1]=1000 [1024:8]=2000 [1024:32]=2000
	[102400:1]=300 [102400:8]=500 [102400:32]=500
)
if [ "$quick" -eq 1 ]; then
	count=(
		[1024:1]=50 [1024:8]=200 [1024:32]=200
		[102400:1]=20 [102400:8]=50 [102400:32]=50
	)
	: "${repeat:=1}"
fi
: "${repeat:=3}"
case $repeat in ''|*[!0-9]*|0) echo "accept.sh: --repeat wants a positive number" >&2; exit 2 ;; esac

bench=accept.sh
. "$here/lib.sh"

[ "$(id -u)" -eq 0 ] || die "run as root (installs postfix; Postfix's master runs as root)"
[ -x "$sesrelayd" ] || die "$sesrelayd missing: run 'bash scripts/build build' first"
command -v python3 >/dev/null || die "python3 missing (used to find free ports)"

# --- prerequisites ----------------------------------------------------------
# Postfix from Debian, the system instance not configured (lib.sh).
install_postfix smtp-source postfix
if [ "$profile" -eq 1 ] && ! command -v strace >/dev/null; then
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q strace >/dev/null ||
		die "apt-get install strace failed"
fi

# --- scratch directory and cleanup -------------------------------------------
# /var/tmp, not /tmp: it is disk-backed on Debian, where /tmp may be a
# tmpfs on which fsync costs nothing.  BENCH_TMPDIR overrides.
base=${BENCH_TMPDIR:-/var/tmp}
work=$(mktemp -d "$base/sesrelay-bench.XXXXXX")
chmod 755 "$work"	# Postfix's daemons (user postfix) must traverse it
S=$work/sesrelay P=$work/postfix
mkdir -p "$S" "$P/etc" "$P/data" "$P/queue"
chown postfix "$P/data"

SES_PID='' PF_MASTER='' SAMPLER='' PROBE='' NEIGHBOUR=''
cleanup() {
	local rc=$?
	set +e
	[ -n "$SAMPLER" ] && { kill "$SAMPLER"; wait "$SAMPLER"; } 2>/dev/null
	[ -n "$PROBE" ] && { kill "$PROBE"; wait "$PROBE"; } 2>/dev/null
	[ -n "$NEIGHBOUR" ] && neighbour_stop
	[ -n "$SES_PID" ] && sesrelay_stop
	[ -n "$PF_MASTER" ] && postfix_stop
	if [ "$rc" -ne 0 ]; then
		msg "--- sesrelayd log (tail)"; tail -n 15 "$S/daemon.log" >&2 2>/dev/null
		msg "--- postfix maillog (tail)"; tail -n 15 "$P/maillog" >&2 2>/dev/null
	fi
	if [ "$keep" -eq 1 ]; then msg "kept $work"; else rm -rf "$work"; fi
	exit "$rc"
}
trap cleanup EXIT
trap 'msg interrupted; exit 130' HUP INT TERM

SES_PORT=$(free_port) PF_PORT=$(free_port) CLOSED_PORT=$(free_port)
[ "$SES_PORT" != "$PF_PORT" ] || PF_PORT=$(free_port)

# --- sesrelayd ------------------------------------------------------------------
# The upstream is a closed port on loopback: sessions fail to connect and
# back off, and every accepted message simply stays in spool/queue.
umask 077
printf 'username = "AKIABENCHMARK";\npassword = "not-a-secret";\n' >"$S/credentials"
umask 022
cat >"$S/sesrelay.conf" <<CONF
hostname = "bench.invalid";
user = "";
listen = { tcp = [ "127.0.0.1:$SES_PORT" ]; unix = ""; };
spool = "$S/spool";
control = { socket = "$S/control.sock"; };
upstream = {
  host = "127.0.0.1";
  port = $CLOSED_PORT;
  tls = "starttls";
  credentials = "$S/credentials";
};
CONF
"$sesrelayd" -t -c "$S/sesrelay.conf" >/dev/null 2>"$S/check.err" ||
	{ cat "$S/check.err" >&2; die "sesrelayd -t refused the benchmark config"; }

# Start on an empty spool (lib.sh: sesrelay_stop, sesrelay_queued).
sesrelay_start() {
	rm -rf "$S/spool"
	sesrelay_listen_start "$S/daemon.log"
}

# --- Postfix --------------------------------------------------------------------
# A separate instance: its own config_directory, queue_directory and
# data_directory in the scratch directory, one smtpd listening on
# 127.0.0.1 only, no chroot, log to a file through postlogd.
#   hold mode (default): every message goes to the hold queue straight
#     from cleanup, so qmgr never touches it: Postfix does the same work as
#     sesrelayd here (accept, spool durably, keep).
#   defer mode (--postfix-defer): defer_transports = smtp, so qmgr also
#     moves each message to the deferred queue and writes a defer log,
#     which is work sesrelayd does not do in this benchmark.
# in_flow_delay = 0: Postfix's inflow throttle is fed by deliveries, of
# which this benchmark has none.  smtpd_peername_lookup = no: no name
# service lookups (sesrelayd does none either).
if [ "$pf_mode" = hold ]; then
	pf_restrict="check_client_access static:HOLD"
	pf_defer=
else
	pf_restrict="permit"
	pf_defer=smtp
fi
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
smtpd_recipient_restrictions = $pf_restrict
smtpd_peername_lookup = no
in_flow_delay = 0s
relayhost = [127.0.0.1]:$CLOSED_PORT
default_transport = smtp
defer_transports = $pf_defer
alias_maps =
alias_database =
local_recipient_maps =
biff = no
CONF
# master.cf: Debian's services, chroot off, smtpd on our port only.
postfix_master_cf "$PF_PORT"

postfix_queued() {
	if [ "$pf_mode" = hold ]; then
		find "$P/queue/hold" -type f | wc -l
	else
		find "$P/queue/incoming" "$P/queue/active" "$P/queue/deferred" -type f | wc -l
	fi
}
# defer mode: wait until qmgr has moved everything out of incoming/active.
postfix_settle() {
	[ "$pf_mode" = defer ] || return 0
	for _ in $(seq 600); do
		[ -z "$(find "$P/queue/incoming" "$P/queue/active" -type f -print -quit)" ] && return 0
		sleep 0.05
	done
	die "qmgr did not drain incoming/active within 30 s"
}

# --- measuring ------------------------------------------------------------------
# sampler ROOT OUT: every 0.5 s, the sum of Rss and of Pss (smaps_rollup)
# over ROOT and its children; keeps the peaks in OUT ("rss_kb pss_kb").
sampler() {
	local root=$1 out=$2 maxr=0 maxp=0 r p pid k v _ kids nap=
	trap '[ -n "$nap" ] && kill "$nap" 2>/dev/null; exit 0' TERM
	while kill -0 "$root" 2>/dev/null; do
		r=0 p=0
		kids=$(cat "/proc/$root/task/$root/children" 2>/dev/null || true)
		for pid in $root $kids; do
			while read -r k v _; do
				case $k in Rss:) r=$((r + v)) ;; Pss:) p=$((p + v)) ;; esac
			done 2>/dev/null <"/proc/$pid/smaps_rollup" || true
		done
		if [ "$r" -gt "$maxr" ] || [ "$p" -gt "$maxp" ]; then
			[ "$r" -gt "$maxr" ] && maxr=$r
			[ "$p" -gt "$maxp" ] && maxp=$p
			echo "$maxr $maxp" >"$out"
		fi
		sleep 0.5 & nap=$!
		wait "$nap" || true
	done
}

# load CLIENTS COUNT SIZE PORT: smtp-source; fails on any non-2xx reply.
load() {
	local opts=(-s "$1" -m "$2" -l "$3" -M bench.invalid
		-f sender@bench.invalid -t rcpt@example.com)
	[ "$reuse" -eq 1 ] && opts+=(-d)
	smtp-source "${opts[@]}" "127.0.0.1:$4"
}

# The noisy neighbour: dd writes a 64 MiB file in the scratch directory
# (the spools' file system) and fdatasyncs it, again and again, in its
# own process group so that stopping it stops the dd too.
neighbour_start() {
	setsid bash -c 'while :; do
		dd if=/dev/zero of="$1/neighbour" bs=1M count=64 conv=fdatasync status=none
	done' neighbour "$work" &
	NEIGHBOUR=$!
}
neighbour_stop() {
	kill -TERM -- "-$NEIGHBOUR" 2>/dev/null || kill -TERM "$NEIGHBOUR" 2>/dev/null
	wait "$NEIGHBOUR" 2>/dev/null || true
	NEIGHBOUR=
	rm -f "$work/neighbour"
}

# The latency probe: one more client, one message at a time (see
# bench/latency_probe.py); its messages are queued like the others.
probe_start() {
	rm -f "$work/latency"
	python3 "$here/latency_probe.py" --port "$1" --out "$work/latency" &
	PROBE=$!
	for _ in $(seq 200); do
		[ -e "$work/latency" ] && return 0
		kill -0 "$PROBE" 2>/dev/null || break
		sleep 0.05
	done
	die "the latency probe did not start"
}
probe_stop() {
	kill -TERM "$PROBE" 2>/dev/null
	wait "$PROBE" 2>/dev/null || true
	PROBE=
}

# Results, one line per run: server size clients rate cpu_per_1000 rss_kb
# pss_kb hwm_kb p99_ms neighbour
results=$work/results

# run_one SERVER SIZE CLIENTS COUNT NEIGHBOUR: one measured run from an
# empty queue.
run_one() {
	local server=$1 size=$2 c=$3 n=$4 noisy=$5 root port t0 t1 c0 c1 warm hwm=0 rss pss got
	local probed p99
	if [ "$server" = sesrelay ]; then sesrelay_start; root=$SES_PID port=$SES_PORT
	else postfix_listen_start; root=$PF_MASTER port=$PF_PORT; fi
	# Warm-up, not measured: two messages per client, so that Postfix has
	# forked its smtpd processes and both servers have touched their code.
	warm=$((2 * c))
	load "$c" "$warm" "$size" "$port" || die "$server: warm-up failed"
	[ "$server" = postfix ] && postfix_settle
	echo "0 0" >"$work/mem"
	[ "$noisy" -eq 1 ] && { neighbour_start; sleep 1; }
	sampler "$root" "$work/mem" & SAMPLER=$!
	probe_start "$port"
	c0=$(cpu_ticks "$root")
	t0=$(date +%s%N)
	load "$c" "$n" "$size" "$port" || die "$server: smtp-source failed (size=$size clients=$c)"
	t1=$(date +%s%N)
	probe_stop
	[ "$noisy" -eq 1 ] && neighbour_stop
	[ "$server" = postfix ] && postfix_settle
	sleep 0.3	# let processes that hit max_use exit and be reaped
	c1=$(cpu_ticks "$root")
	kill "$SAMPLER"; wait "$SAMPLER" 2>/dev/null || true; SAMPLER=
	read -r rss pss <"$work/mem"
	if [ "$server" = sesrelay ]; then
		hwm=$(awk '/^VmHWM:/ { print $2 }' "/proc/$SES_PID/status")
		got=$(sesrelay_queued)
		sesrelay_stop || die "sesrelayd exited with status $? after SIGTERM"
	else
		got=$(postfix_queued); postfix_stop
	fi
	probed=$(grep -c '^[0-9]' "$work/latency" || true)
	grep -q fail "$work/latency" && die "$server: the latency probe got a refusal"
	[ "$got" -eq $((warm + n + probed)) ] ||
		die "$server: $got messages queued, expected $((warm + n + probed))"
	# p99 by nearest rank over the probe's messages.
	p99=$(sort -g "$work/latency" | awk '{ v[NR] = $1 } END {
		if (NR == 0) { print -1; exit }
		k = int(NR * 0.99 + 0.999999); if (k < 1) k = 1; printf "%.1f", v[k] * 1000 }')
	awk -v s="$server" -v z="$size" -v c="$c" -v n="$n" -v t0="$t0" -v t1="$t1" \
	    -v c0="$c0" -v c1="$c1" -v hz="$hz" -v r="$rss" -v p="$pss" -v h="$hwm" \
	    -v q="$p99" -v nb="$noisy" -v np="$probed" \
	    'BEGIN { secs = (t1 - t0) / 1e9; cpu = (c1 - c0) / hz;
		 printf "%s %d %d %.1f %.3f %d %d %d %s %d\n", s, z, c, n / secs, cpu * 1000 / n, r, p, h, q, nb;
		 printf "  %-8s %6d B x%-2d %s %5d msgs  %6.2f s  %7.1f msgs/s  cpu %5.2f s  p99 %s ms (%d probes)\n",
			s, z, c, (nb ? "+dd" : "   "), n, secs, n / secs, cpu, q, np > "/dev/stderr" }' >>"$results"
}

# --- machine --------------------------------------------------------------------
fsinfo=$(fs_info "$work")
cpu_model=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
echo "sesrelay accept benchmark  $(date -u +%Y-%m-%dT%H:%MZ)"
echo "machine:  nproc=$(nproc)  cpu=${cpu_model:-unknown}  kernel=$(uname -sr)"
echo "spool fs: $fsinfo"
echo "loadavg:  $(cut -d' ' -f1-3 /proc/loadavg) at start (other work on the machine moves the numbers)"
echo "scratch:  $work (BENCH_TMPDIR, default /var/tmp; both spools in it)"
echo "servers:  $("$sesrelayd" -v 2>&1 | head -1) (no -d, upstream = closed port)" \
	"vs Postfix $(postconf -h -c "$P/etc" mail_version) (mode: $pf_mode)"
echo "load:     smtp-source, HELO/MAIL/RCPT/DATA/QUIT," \
	"$([ "$reuse" -eq 1 ] && echo "connections reused (-d)" || echo "one connection per message")," \
	"median of $repeat run(s), servers alternated"
echo

# --- the runs ---------------------------------------------------------------------
is_selected() {
	[ -z "$only" ] && return 0
	case ",$only," in *",$1:$2,"*) return 0 ;; esac
	return 1
}
noises=(0)
[ "$neighbour" -eq 1 ] && noises=(0 1)
: >"$results"
for size in "${sizes[@]}"; do
	for c in "${clients[@]}"; do
		is_selected "$size" "$c" || continue
		n=${count[$size:$c]}
		for noisy in "${noises[@]}"; do
			for r in $(seq "$repeat"); do
				run_one sesrelay "$size" "$c" "$n" "$noisy"
				run_one postfix "$size" "$c" "$n" "$noisy"
			done
		done
	done
done
[ -s "$results" ] || die "no point matches --only $only"

echo "loadavg:  $(cut -d' ' -f1-3 /proc/loadavg) at end"
echo

# --- the table ----------------------------------------------------------------------
awk -v repeat="$repeat" '
function median(list,   a, k, i, j, t) {
	k = split(list, a, " ")
	for (i = 2; i <= k; i++)
		for (j = i; j > 1 && a[j-1] + 0 > a[j] + 0; j--) { t = a[j]; a[j] = a[j-1]; a[j-1] = t }
	return k % 2 ? a[(k + 1) / 2] : (a[k / 2] + a[k / 2 + 1]) / 2
}
function max(list,   a, k, i, m) {
	k = split(list, a, " "); m = 0
	for (i = 1; i <= k; i++) if (a[i] + 0 > m) m = a[i] + 0
	return m
}
{
	key = $2 " " $3 " " $10
	if (!(key in seen)) { seen[key] = 1; order[++npoints] = key }
	p99[$1, key] = p99[$1, key] " " $9
	rate[$1, key] = rate[$1, key] " " $4
	cpu[$1, key] = cpu[$1, key] " " $5
	rss[$1, key] = rss[$1, key] " " $6
	pss[$1, key] = pss[$1, key] " " $7
	hwm[$1, key] = hwm[$1, key] " " $8
}
END {
	printf "%-7s %3s %3s | %9s %9s %6s | %11s %11s | %8s %8s | %9s %11s %11s\n",
		"", "", "", "msgs/s", "msgs/s", "ratio", "CPU-s/1000", "CPU-s/1000",
		"p99 ms", "p99 ms", "MiB", "MiB", "MiB"
	printf "%-7s %3s %3s | %9s %9s %6s | %11s %11s | %8s %8s | %9s %11s %11s\n",
		"size", "cli", "dd", "sesrelay", "postfix", "ses/pf", "sesrelay", "postfix",
		"sesrelay", "postfix", "ses VmHWM", "pf sum RSS", "pf sum PSS"
	for (i = 1; i <= npoints; i++) {
		split(order[i], kz, " ")
		rs = median(rate["sesrelay", order[i]]); rp = median(rate["postfix", order[i]])
		printf "%-7s %3d %3s | %9.0f %9.0f %6.2f | %11.2f %11.2f | %8.1f %8.1f | %9.1f %11.1f %11.1f\n",
			(kz[1] >= 1024 ? kz[1] / 1024 " KiB" : kz[1] " B"), kz[2],
			(kz[3] ? "yes" : "no"), rs, rp,
			(rp > 0 ? rs / rp : 0),
			median(cpu["sesrelay", order[i]]), median(cpu["postfix", order[i]]),
			median(p99["sesrelay", order[i]]), median(p99["postfix", order[i]]),
			max(hwm["sesrelay", order[i]]) / 1024,
			max(rss["postfix", order[i]]) / 1024, max(pss["postfix", order[i]]) / 1024
	}
}' "$results"
cat <<'NOTE'

msgs/s: messages accepted (250 after DATA) per wall-clock second, as seen by
  smtp-source; median of the runs.  ratio = sesrelay / postfix.
CPU-s/1000: CPU seconds (user + system) the server used per 1000 messages,
  from /proc/PID/stat before and after each run: sesrelayd = the process
  (all its threads); Postfix = master and all its children (smtpd, cleanup,
  qmgr, trivial-rewrite, anvil, postlogd, ...), including children that
  exited during the run (master's cutime + cstime).  Median of the runs.
  The load generator's own CPU is not counted.
p99 ms: accept latency of a probe client (one more connection, sending
  1 KiB messages one after another during the measured run): the time
  from the end of its data to the 250, 99th percentile by nearest rank
  over its messages; median of the runs.
dd: "yes" when a noisy neighbour ran during the measured run (--neighbour):
  dd writing and fdatasyncing a 64 MiB file in the spools' file system in
  a loop.
memory: ses VmHWM = sesrelayd's peak resident set (kernel high-water mark);
  pf sum RSS / PSS = peak of the sum over all Postfix processes, sampled
  every 0.5 s (RSS counts shared library pages once per process, PSS
  shares them out).  Largest value over the runs.
NOTE

# --- optional: where the time goes --------------------------------------------------
# strace -c on each server at 1 KiB x 32 clients (one extra run, not
# part of the table: strace slows the servers a lot).
if [ "$profile" -eq 1 ]; then
	n=${count[1024:32]}
	for server in sesrelay postfix; do
		if [ "$server" = sesrelay ]; then sesrelay_start; root=$SES_PID port=$SES_PORT
		else postfix_listen_start; root=$PF_MASTER port=$PF_PORT; fi
		load 32 64 1024 "$port" >/dev/null
		[ "$server" = postfix ] && postfix_settle
		pids=("-p" "$root")
		for k in $(cat "/proc/$root/task/$root/children" 2>/dev/null || true); do
			pids+=(-p "$k")
		done
		strace -f -c -o "$work/strace.$server" "${pids[@]}" 2>/dev/null &
		st=$!
		sleep 1
		load 32 "$n" 1024 "$port"
		[ "$server" = postfix ] && postfix_settle
		sleep 0.3
		kill -INT "$st"; wait "$st" 2>/dev/null || true
		if [ "$server" = sesrelay ]; then
			sesrelay_stop || die "sesrelayd exited with status $? after SIGTERM"
		else
			postfix_stop
		fi
		echo
		echo "syscalls per message (those >= 0.5), $server, 1 KiB x 32 clients, $n messages, strace -c -f:"
		# strace -c lines: % time, seconds, usecs/call, calls, [errors,] syscall
		awk -v n="$n" '$1 ~ /^[0-9.]+$/ && (NF == 5 || NF == 6) && $NF != "total" {
			per[$NF] = $4 / n; total += $4
		}
		END {
			for (sc in per) if (per[sc] >= 0.5) printf "  %-18s %7.2f\n", sc, per[sc] | "sort -k2 -rn"
			close("sort -k2 -rn")
			printf "  %-18s %7.2f\n", "all syscalls", total / n
			printf "  %-18s %7.2f\n", "fsync+fdatasync", per["fsync"] + per["fdatasync"]
		}' "$work/strace.$server"
	done
fi
exit 0
