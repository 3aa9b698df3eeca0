#!/bin/bash
# sendmail.sh: the latency of one `sendmail -t < message`, sesrelay's
# sendmail against Postfix's, with the daemon up and with it down.
#
# Four cases, all in one run, in one scratch directory (one filesystem):
#   sesrelay up    sesrelay-sendmail hands the message to sesrelayd over
#                  its Unix socket (SMTP); exit 0 after the daemon's 250,
#                  that is once the message is in the spool, synced.
#   postfix  up    Postfix's sendmail runs postdrop, which writes the
#                  message into the instance's maildrop and pokes pickup.
#   sesrelay down  sesrelayd stopped: sesrelay-sendmail writes the message
#                  into <spool>/maildrop/ itself (fsync, rename, fsync).
#   postfix  down  the instance stopped: postdrop writes the maildrop file
#                  just the same, and its poke of pickup goes nowhere.
# Each case runs N invocations (500; 50 with --quick), one after another,
# from a small Python driver that times each with time.perf_counter.  They
# are split into rounds (5), and every round runs all four cases,
# sesrelay first in odd rounds and Postfix first in even ones, so that
# load from elsewhere on the machine hits both alike.
#
# Nothing is delivered: sesrelayd's upstream is a closed local port, and
# Postfix's cleanup puts every message on hold.  What was queued while a
# daemon was down is taken in when it starts again; the script checks, at
# every start and at the end, that each server holds exactly as many
# messages as its sendmail said it had queued (exit 0).
#
# Usage: bash bench/sendmail.sh [--quick] [--runs N] [--rounds R]
#                               [--warmup W] [--keep]
# See bench/README for what is measured and how to read the output.
# Needs root (apt-get, and Postfix's master runs as root).  Exit 0 when
# every invocation exited 0 and every message was queued once.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
sesrelayd=${SESRELAYD:-$top/build/sesrelayd}
ses_sendmail=${SESRELAY_SENDMAIL:-$(dirname "$sesrelayd")/sesrelay-sendmail}

runs='' rounds=5 warmup=5 keep=0
usage() {
	echo "usage: bash bench/sendmail.sh [--quick] [--runs N] [--rounds R]" \
		"[--warmup W] [--keep]" >&2
	exit "${1:-2}"
}
while [ $# -gt 0 ]; do
	case $1 in
	--quick) runs=50 ;;
	--runs) runs=${2:?}; shift ;;
	--runs=*) runs=${1#*=} ;;
	--rounds) rounds=${2:?}; shift ;;
	--rounds=*) rounds=${1#*=} ;;
	--warmup) warmup=${2:?}; shift ;;
	--warmup=*) warmup=${1#*=} ;;
	--keep) keep=1 ;;
	-h|--help) usage 0 ;;
	*) echo "sendmail.sh: unknown option $1" >&2; usage ;;
	esac
	shift
done
: "${runs:=500}"
for v in "runs:$runs" "rounds:$rounds"; do
	case ${v#*:} in ''|*[!0-9]*|0)
		echo "sendmail.sh: --${v%%:*} wants a positive number" >&2; exit 2 ;;
	esac
done
case $warmup in ''|*[!0-9]*) echo "sendmail.sh: --warmup wants a number" >&2; exit 2 ;; esac
[ "$rounds" -le "$runs" ] || rounds=$runs

bench=sendmail.sh
. "$here/lib.sh"

[ "$(id -u)" -eq 0 ] || die "run as root (installs postfix; Postfix's master runs as root)"
[ -x "$sesrelayd" ] || die "$sesrelayd missing: run 'bash scripts/build build' first"
[ -x "$ses_sendmail" ] || die "$ses_sendmail missing: run 'bash scripts/build build' first"
command -v python3 >/dev/null || die "python3 missing (it drives and times the runs)"

# --- prerequisites ----------------------------------------------------------
# Postfix from Debian, the system instance not configured (lib.sh).
install_postfix postfix postdrop
# Postfix's sendmail, not whatever /usr/sbin/sendmail is (it may be
# sesrelay-sendmail on a machine where sesrelay is installed).
pf_sendmail=${POSTFIX_SENDMAIL:-$(postconf -h -d sendmail_path)}
if command -v dpkg >/dev/null; then
	case $(dpkg -S "$(readlink -f "$pf_sendmail")" 2>/dev/null) in
	postfix:*) ;;
	*) die "$pf_sendmail is not Postfix's sendmail (set POSTFIX_SENDMAIL)" ;;
	esac
fi

# --- scratch directory and cleanup -------------------------------------------
# /var/tmp, not /tmp: it is disk-backed on Debian, where /tmp may be a
# tmpfs on which fsync costs nothing.  BENCH_TMPDIR overrides.
base=${BENCH_TMPDIR:-/var/tmp}
work=$(mktemp -d "$base/sesrelay-sendmail.XXXXXX")
chmod 755 "$work"	# Postfix's daemons (user postfix) must traverse it
S=$work/sesrelay P=$work/postfix
mkdir -p "$S/run" "$P/etc" "$P/data" "$P/queue"
chown postfix "$P/data"
[ ${#S} -lt 90 ] || die "scratch path $S too long for a Unix socket (set BENCH_TMPDIR)"

SES_PID='' PF_MASTER='' DRIVER=''
cleanup() {
	local rc=$?
	set +e
	[ -n "$DRIVER" ] && { kill "$DRIVER"; wait "$DRIVER"; } 2>/dev/null
	[ -n "$SES_PID" ] && sesrelay_stop
	[ -n "$PF_MASTER" ] && postfix_stop
	if [ "$rc" -ne 0 ]; then
		msg "--- sesrelayd log (tail)"; tail -n 15 "$S/daemon.log" >&2 2>/dev/null
		msg "--- postfix maillog (tail)"; tail -n 15 "$P/maillog" >&2 2>/dev/null
		msg "--- sendmail stderr (head)"; head -n 15 "$work/stderr.log" >&2 2>/dev/null
	fi
	# Nothing started here may outlive the script: sesrelayd's command
	# line names the scratch directory (Postfix's does not; its processes
	# were waited for by PID in postfix_stop).
	if pgrep -f "$work/" >/dev/null; then
		msg "sendmail.sh: processes left running:"; pgrep -a -f "$work/" >&2
		rc=1
	fi
	if [ "$keep" -eq 1 ]; then msg "kept $work"; else rm -rf "$work"; fi
	exit "$rc"
}
trap cleanup EXIT
trap 'msg interrupted; exit 130' HUP INT TERM

# --- the message -----------------------------------------------------------------
# A small, ordinary message as cron or a monitoring script sends it:
# recipients in To: (for -t), no Date: or Message-ID: (both servers add
# them), about 1 KiB.
msgfile=$work/message
cat >"$msgfile" <<'MSG'
From: Cron Daemon <root@bench.invalid>
To: ops@example.com
Cc: Backup Reports <backup-reports@example.com>
Subject: Cron <root@db1> /usr/local/sbin/nightly-backup --verify
MIME-Version: 1.0
Content-Type: text/plain; charset=UTF-8
Content-Transfer-Encoding: 8bit
X-Cron-Env: <SHELL=/bin/sh>
X-Cron-Env: <HOME=/root>
X-Cron-Env: <LOGNAME=root>

nightly-backup: starting at 2026-11-22 02:15:01 UTC
nightly-backup: snapshot of /var/lib/postgresql/15/main taken (lvm snap0)
nightly-backup: streaming to s3://example-backups/db1/2026-11-22/base.tar.zst
nightly-backup: 41,207 files, 18.4 GiB read, 3.1 GiB written, ratio 5.94
nightly-backup: upload finished in 00:11:42, 4.5 MiB/s average
nightly-backup: verifying: listing, sizes and checksums of 212 parts
nightly-backup: verify OK (212/212 parts, sha256 matches manifest)
nightly-backup: WAL archive: 1,311 segments since the last base backup
nightly-backup: pruning backups older than 35 days: 2 removed
nightly-backup: snapshot snap0 removed
nightly-backup: finished at 2026-11-22 02:28:06 UTC, status 0

-- 
This message was sent by cron on db1.example.com.
MSG

# --- the driver ---------------------------------------------------------------------
# drive.py CASE ROUND WARM COUNT -- COMMAND...: runs COMMAND < message
# WARM + COUNT times, one after another, and appends one line per run to
# the results: "case round w|m milliseconds exit client_cpu_ms" (w: warm-
# up, not counted in the times).  The clock covers fork, exec, the whole
# run and the wait; client CPU is the child's user + system time
# (RUSAGE_CHILDREN: for Postfix, sendmail and the postdrop it waits for).
# Standard error of any run that failed or said something goes to
# stderr.log.  Prints "OK FAILED" (exit statuses 0 and not 0).
cat >"$work/drive.py" <<'PY'
import os, resource, subprocess, sys, time

case, rnd, warm, count, msgfile, out, errlog = sys.argv[1:8]
assert sys.argv[8] == "--"
cmd = sys.argv[9:]
warm, count = int(warm), int(count)
fd = os.open(msgfile, os.O_RDONLY)
rows, ok, failed = [], 0, 0
with open(errlog, "a") as errs:
    for i in range(warm + count):
        os.lseek(fd, 0, os.SEEK_SET)
        r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        p = subprocess.run(cmd, stdin=fd, stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE)
        t1 = time.perf_counter()
        r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime) * 1000
        kind = "w" if i < warm else "m"
        rows.append("%s %s %s %.4f %d %.4f\n"
                    % (case, rnd, kind, (t1 - t0) * 1000, p.returncode, cpu))
        if p.returncode == 0:
            ok += 1
        else:
            failed += 1
        if p.returncode != 0 or p.stderr:
            errs.write("%s round %s run %d: exit %d: %s\n" % (
                case, rnd, i + 1, p.returncode,
                p.stderr.decode("utf-8", "replace").rstrip() or "(nothing on stderr)"))
with open(out, "a") as f:
    f.writelines(rows)
print(ok, failed)
PY
results=$work/results
: >"$results"
: >"$work/stderr.log"

# drive CASE ROUND COUNT COMMAND...: one batch; sets OK and FAILED.  In
# the background so that a signal ends the script at once.
drive() {
	local case=$1 rnd=$2 n=$3
	shift 3
	python3 "$work/drive.py" "$case" "$rnd" "$warmup" "$n" "$msgfile" \
		"$results" "$work/stderr.log" -- "$@" >"$work/drive.out" &
	DRIVER=$!
	wait "$DRIVER" || die "the driver failed ($case, round $rnd)"
	DRIVER=
	read -r OK FAILED <"$work/drive.out"
}

# Server CPU per case, in clock ticks, summed over the rounds.
declare -A server_ticks=([sesrelay:up]=0 [postfix:up]=0)

# count_files DIR...: regular files in DIRs (missing ones count 0).
count_files() { find "$@" -type f 2>/dev/null | wc -l; }

# --- sesrelayd -------------------------------------------------------------------
# The config the integration tests use (tests/integration/lib.sh
# write_conf), cut down: the Unix socket sesrelay-sendmail talks to, no
# TCP listener, the control socket in the scratch directory, user ""
# (stay root: the script runs as root), and an upstream on a closed local
# port, so that every accepted message stays in spool/queue; and
# rewrite.sender, as any host that sends cron mail through SES has it
# (without it a local sender such as root is refused: 550 5.7.1, exit 77).
CLOSED_PORT=$(free_port)
umask 077
printf 'username = "AKIABENCHMARK";\npassword = "not-a-secret";\n' >"$S/credentials"
umask 022
cat >"$S/sesrelay.conf" <<CONF
hostname = "bench.invalid";
user = "";
listen = { tcp = [ ]; unix = "$S/run/smtp.sock"; };
spool = "$S/spool";
control = { socket = "$S/run/control.sock"; };
upstream = {
  host = "127.0.0.1";
  port = $CLOSED_PORT;
  tls = "starttls";
  credentials = "$S/credentials";
};
rewrite = { sender = "cron@bench.invalid"; };
CONF
"$sesrelayd" -t -c "$S/sesrelay.conf" >/dev/null 2>"$S/check.err" ||
	{ cat "$S/check.err" >&2; die "sesrelayd -t refused the benchmark config"; }

ses_expected=0	# messages sesrelay-sendmail said it queued (exit 0)
# sesrelay_start: no -d (debug logging would cost time).  Waits for the
# socket, then until the daemon has taken in what the last "down" batch
# left in the maildrop, and checks the spool holds every message.
sesrelay_start() {
	"$sesrelayd" -f -c "$S/sesrelay.conf" >>"$S/daemon.log" 2>&1 &
	SES_PID=$!
	for _ in $(seq 200); do
		[ -S "$S/run/smtp.sock" ] && break
		kill -0 "$SES_PID" 2>/dev/null || die "sesrelayd exited at start"
		sleep 0.05
	done
	[ -S "$S/run/smtp.sock" ] || die "sesrelayd did not create its socket in 10 s"
	for _ in $(seq 600); do
		[ "$(count_files "$S/spool/maildrop")" -eq 0 ] && break
		sleep 0.05
	done
	sesrelay_check
}
# (sesrelay_stop: lib.sh.)
# sesrelay_check: the spool's queue (and the maildrop, while the daemon
# is down) holds exactly the messages reported queued; nothing corrupt.
sesrelay_check() {
	local q m c
	q=$(count_files "$S/spool/queue") m=$(count_files "$S/spool/maildrop")
	c=$(count_files "$S/spool/corrupt")
	[ "$c" -eq 0 ] || die "sesrelay: $c files in spool/corrupt"
	[ $((q + m)) -eq "$ses_expected" ] ||
		die "sesrelay: $q queued + $m in the maildrop, expected $ses_expected"
}

# --- Postfix --------------------------------------------------------------------
# A separate instance, as in accept.sh: its own config_directory,
# queue_directory and data_directory in the scratch directory, no chroot,
# log to a file through postlogd.  No smtpd: the mail comes in through
# postdrop and pickup only.  Every message is put on hold by cleanup
# (header_checks matching the first header line with HOLD), so it stays
# in hold/ and qmgr never sees it: the same work sesrelayd does here
# (take it in, spool it, keep it).  The queue directory is created by
# `postfix start` (postfix-script: maildrop/ postfix:postdrop mode 730,
# public/ 710, which postdrop needs).
printf '/^/ HOLD\n' >"$P/etc/header_checks"
cat >"$P/etc/main.cf" <<CONF
compatibility_level = 3.6
queue_directory = $P/queue
data_directory = $P/data
maillog_file = $P/maillog
maillog_file_prefixes = $work
myhostname = bench.invalid
mydestination =
inet_interfaces = loopback-only
inet_protocols = ipv4
relayhost = [127.0.0.1]:$CLOSED_PORT
header_checks = regexp:$P/etc/header_checks
alias_maps =
alias_database =
local_recipient_maps =
biff = no
CONF
postfix_master_cf

pf_expected=0	# messages Postfix's sendmail said it queued (exit 0)
# postfix_start: start the instance (postfix start waits until master
# is ready: master -w), then wait until pickup has taken in what the last
# "down" batch left in the maildrop, and check.
postfix_start() {
	postfix -c "$P/etc" start >>"$P/postfix.out" 2>&1 ||
		die "postfix start failed (see $P/maillog)"
	PF_MASTER=$(tr -d ' \n' <"$P/queue/pid/master.pid")
	postfix_settle
	postfix_check
}
# postfix_settle: wait until pickup and cleanup have moved everything
# out of maildrop/ and incoming/ (into hold/).  postdrop wakes pickup
# after each file; for files left while the instance was down, master
# would wake it only after 60 s (its wakeup time in master.cf), so wake
# it (postkick) once a second meanwhile.
postfix_settle() {
	local i
	for i in $(seq 1200); do
		[ -z "$(find "$P/queue/maildrop" "$P/queue/incoming" "$P/queue/active" \
			-type f -print -quit)" ] && return 0
		[ $((i % 20)) -eq 1 ] &&
			{ postkick -c "$P/etc" public pickup W 2>>"$P/postfix.out" || true; }
		sleep 0.05
	done
	die "postfix: maildrop/incoming not empty after 60 s"
}
# postfix_check: hold/ (and maildrop/, while the instance is down) holds
# exactly the messages reported queued; nothing anywhere else.
postfix_check() {
	local h m other
	h=$(count_files "$P/queue/hold") m=$(count_files "$P/queue/maildrop")
	other=$(count_files "$P/queue/incoming" "$P/queue/active" "$P/queue/deferred" \
		"$P/queue/corrupt" "$P/queue/bounce" "$P/queue/defer")
	[ "$other" -eq 0 ] || die "postfix: $other files outside hold/ and maildrop/"
	[ $((h + m)) -eq "$pf_expected" ] ||
		die "postfix: $h on hold + $m in the maildrop, expected $pf_expected"
}

# --- one batch ----------------------------------------------------------------------
# batch SERVER STATE ROUND COUNT: COUNT timed runs (after the warm-ups)
# of that server's `sendmail -t < message`, with its daemon STATE (up or
# down); then checks that the messages are where they should be.
batch() {
	local server=$1 state=$2 rnd=$3 n=$4 key=$1:$2 c0 c1
	if [ "$server" = sesrelay ]; then
		if [ "$state" = up ]; then
			sesrelay_start
			c0=$(cpu_ticks "$SES_PID")
		fi
		SESRELAY_CONFIG=$S/sesrelay.conf drive "$server:$state" "$rnd" "$n" "$ses_sendmail" -t
		ses_expected=$((ses_expected + OK))
		if [ "$state" = up ]; then
			c1=$(cpu_ticks "$SES_PID")
			server_ticks[$key]=$((${server_ticks[$key]} + c1 - c0))
			[ "$(count_files "$S/spool/maildrop")" -eq 0 ] ||
				die "sesrelay: with the daemon up, messages went to the maildrop"
			sesrelay_check
			sesrelay_stop || die "sesrelayd exited with status $? after SIGTERM"
		else
			[ ! -e "$S/run/smtp.sock" ] || die "sesrelay: the socket is there with the daemon down"
			sesrelay_check
		fi
	else
		if [ "$state" = up ]; then
			postfix_start
			c0=$(cpu_ticks "$PF_MASTER")
		fi
		drive "$server:$state" "$rnd" "$n" "$pf_sendmail" -C "$P/etc" -t
		pf_expected=$((pf_expected + OK))
		if [ "$state" = up ]; then
			postfix_settle
			c1=$(cpu_ticks "$PF_MASTER")
			server_ticks[$key]=$((${server_ticks[$key]} + c1 - c0))
			postfix_check
			postfix_stop
		else
			postfix_check
		fi
	fi
	msg "  round $rnd  $(printf '%-8s %-4s' "$server" "$state")  $n runs + $warmup warm-up:" \
		"$OK exit 0, $FAILED failed"
}

# --- machine --------------------------------------------------------------------
fsinfo=$(fs_info "$work")
cpu_model=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
echo "sesrelay sendmail benchmark  $(date -u +%Y-%m-%dT%H:%MZ)"
echo "machine:  nproc=$(nproc)  cpu=${cpu_model:-unknown}  kernel=$(uname -sr)"
echo "queue fs: $fsinfo"
echo "loadavg:  $(cut -d' ' -f1-3 /proc/loadavg) at start (other work on the machine moves the numbers)"
echo "scratch:  $work (BENCH_TMPDIR, default /var/tmp; both queues in it)"
echo "clients:  $ses_sendmail -t ($("$ses_sendmail" --version 2>&1 | head -1))" \
	"vs $pf_sendmail -C <instance> -t (Postfix $(postconf -h -d mail_version))"
echo "runs:     $runs per case in $rounds rounds, $warmup warm-up runs per batch," \
	"one at a time, as root; message $(wc -c <"$msgfile") bytes"
echo

# --- set-up: each daemon once, so that it creates its spool or queue (and
# the maildrop the "down" cases write into) -------------------------------------
sesrelay_start
sesrelay_stop || die "sesrelayd exited with status $? after SIGTERM"
[ -d "$S/spool/maildrop" ] || die "sesrelayd did not create $S/spool/maildrop"
postfix_start
postfix_stop
[ -d "$P/queue/maildrop" ] || die "postfix did not create $P/queue/maildrop"

# --- the runs ---------------------------------------------------------------------
# Round r gets runs/rounds, the first runs%rounds rounds one more.
for rnd in $(seq "$rounds"); do
	n=$((runs / rounds + (rnd <= runs % rounds ? 1 : 0)))
	if [ $((rnd % 2)) -eq 1 ]; then order="sesrelay postfix"; else order="postfix sesrelay"; fi
	for state in up down; do
		for server in $order; do
			batch "$server" "$state" "$rnd" "$n"
		done
	done
	# The spawn cost of the driver itself, for scale: /bin/true < message.
	drive "baseline:-" "$rnd" "$n" /bin/true
done

# The last "down" batches are still in the maildrops: start each daemon
# once more, let it take them in, and check the totals.
sesrelay_start
sesrelay_stop || die "sesrelayd exited with status $? after SIGTERM"
postfix_start
postfix_stop
ses_queued=$(count_files "$S/spool/queue") pf_held=$(count_files "$P/queue/hold")

echo "loadavg:  $(cut -d' ' -f1-3 /proc/loadavg) at end"
echo "queued:   sesrelay $ses_queued messages in spool/queue, Postfix $pf_held in hold/" \
	"(all that each sendmail reported queued; the maildrops taken in)"
echo

# --- the table ----------------------------------------------------------------------
python3 - "$results" "$hz" "${server_ticks[sesrelay:up]}" "${server_ticks[postfix:up]}" <<'PY'
import math, sys
from collections import defaultdict

path, hz = sys.argv[1], int(sys.argv[2])
ticks = {"sesrelay:up": int(sys.argv[3]), "postfix:up": int(sys.argv[4])}
times, cpu, fails, calls = defaultdict(list), defaultdict(float), defaultdict(int), defaultdict(int)
for line in open(path):
    case, rnd, kind, ms, rc, cms = line.split()
    calls[case] += 1
    cpu[case] += float(cms)
    if int(rc) != 0:
        fails[case] += 1
    if kind == "m":
        times[case].append(float(ms))

def pct(v, p):	# nearest rank
    return v[max(0, math.ceil(p / 100 * len(v)) - 1)]

print("%-9s %-6s %5s %9s %8s %8s %8s %8s %11s %11s" % ("", "", "", "", "", "", "", "",
      "client CPU", "server CPU"))
print("%-9s %-6s %5s %9s %8s %8s %8s %8s %11s %11s" % ("server", "daemon", "runs",
      "median ms", "p90 ms", "p99 ms", "max ms", "failures", "ms/run", "ms/msg"))
med = {}
for case in ("sesrelay:up", "postfix:up", "sesrelay:down", "postfix:down"):
    v = sorted(times[case])
    server, state = case.split(":")
    med[case] = pct(v, 50) if len(v) % 2 else (v[len(v) // 2 - 1] + v[len(v) // 2]) / 2
    srv = "%.3f" % (ticks[case] / hz * 1000 / calls[case]) if case in ticks else "-"
    print("%-9s %-6s %5d %9.3f %8.3f %8.3f %8.3f %8d %11.3f %11s" % (
        server, state, len(v), med[case], pct(v, 90), pct(v, 99), v[-1],
        fails[case], cpu[case] / calls[case], srv))
print()
print("median sesrelay / postfix:  daemon up %.2f   daemon down %.2f" % (
    med["sesrelay:up"] / med["postfix:up"], med["sesrelay:down"] / med["postfix:down"]))
b = sorted(times["baseline:-"])
print("driver overhead: /bin/true < message, same driver: median %.3f ms, p99 %.3f ms" % (
    b[len(b) // 2], pct(b, 99)))
PY
cat <<'NOTE'

times: wall clock of one `sendmail -t < message` as the driver sees it
  (fork, exec, the run, the wait), measured runs only; p90/p99 by nearest
  rank (with few runs, p99 is the maximum).  The driver line shows the
  part of every time that is the driver's own spawning.
failures: runs with a non-zero exit status, warm-ups included.
client CPU: user + system time of the sendmail process per run (Postfix:
  sendmail and postdrop), warm-ups included.
server CPU: daemon up only: sesrelayd (all threads), or Postfix's master
  and all its children (pickup, cleanup, trivial-rewrite, ...), from
  before the batch until Postfix has moved the batch to hold/, per
  message; clock ticks (1/CLK_TCK s), so coarse with --quick.
NOTE
grep -q . "$work/stderr.log" && {
	echo
	echo "standard error of runs (first 10 lines of $(wc -l <"$work/stderr.log")):"
	head -n 10 "$work/stderr.log"
}
awk '$5 != 0 { bad = 1 } END { exit bad }' "$results" ||
	die "some runs exited with a non-zero status (see above)"
exit 0
