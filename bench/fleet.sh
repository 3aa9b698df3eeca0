#!/bin/bash
# fleet.sh: what the fleet store costs (issue 13).
#
# 1. Cost per 1000 messages: one sesrelayd accepts and relays N messages
#    (1000 by default, one recipient each) to the fake SES at
#    upstream.rate = RATE (200), once alone and once with fleet.store set
#    (a redis-server on loopback).  Reported: the round trips to the
#    store (sesrelayctl stats, and the store's own count of EVALSHA),
#    sesrelayd's CPU seconds for each run, and the difference per 1000.
# 2. Hosts one redis-server serves: redis-benchmark drives the fleet's
#    Lua script (EVALSHA, the same keys for all, a heartbeat from one of
#    H host names at random every call) from 50 connections as fast as
#    the store answers.  Reported: the store's EVALSHA per second and its
#    CPU, and the hosts that rate sustains: a busy host asks once a lease
#    (FLEET_LEASE_SECONDS, 0.25 s: 4 a second), an idle one once a
#    heartbeat (1 a second).
#
# The two runs of part 1 alternate, RUNS (3) times each, and the medians
# are reported: CPU time on these shared VMs moves by 20 % between runs.
#
# Usage: bash bench/fleet.sh [--messages N] [--rate R] [--calls N] [--runs N]
# Run from the top of the tree after a build (build/sesrelayd).  Needs
# redis-server and redis-benchmark (scripts/deps: redis-server, whose
# redis-tools brings redis-benchmark), python3.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
build=${BUILD:-$top/build}
n=1000 rate=200 calls=200000 hosts=5000 runs=3
while [ $# -gt 0 ]; do
	case $1 in
	--messages) n=${2:?}; shift ;;
	--rate) rate=${2:?}; shift ;;
	--calls) calls=${2:?}; shift ;;
	--runs) runs=${2:?}; shift ;;
	*) echo "usage: bash bench/fleet.sh [--messages N] [--rate R] [--calls N] [--runs N]" >&2; exit 2 ;;
	esac
	shift
done
for t in redis-server redis-benchmark redis-cli python3; do
	command -v "$t" >/dev/null || { echo "fleet.sh: $t missing (scripts/deps)" >&2; exit 1; }
done

# The integration tests' harness: scratch directory, fake SES, daemon,
# everything stopped at exit.  Its watchdog: 20 minutes.
export TEST_TIMEOUT=1200 top_builddir=$build top_srcdir=$top
. "$top/tests/integration/lib.sh"
. "$top/tests/integration/fleet_lib.sh"

ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)

# run_host LABEL: one host relays n messages; prints "cpu_seconds requests".
run_host() {
	local label=$1 c0 c1 req
	start_host "$label"
	c0=$(ticks "${HOST_PID[$label]}")
	smtpload --port "${HOST_PORT[$label]}" --count "$n" --concurrency 4 \
		--start $(( (label - 1) * n + 1 )) --messages "$work/sent" >/dev/null
	wait_delivered $((label * n)) 300 >/dev/null
	c1=$(ticks "${HOST_PID[$label]}")
	req=$("$sbin/sesrelayctl" -c "$work/h$label/sesrelay.conf" stats --json |
		python3 -c 'import json,sys; print(json.load(sys.stdin).get("fleet", {}).get("requests", 0))')
	stop_host "$label"
	awk -v a="$c0" -v b="$c1" -v hz="$hz" -v r="$req" 'BEGIN { printf "%.3f %d\n", (b - a) / hz, r }'
}

start_fake starttls
start_store
msg() { printf '%s\n' "$*" >&2; }

median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
store_cli config resetstat >/dev/null
alone=() fleet=() reqs=()
for r in $(seq "$runs"); do
	msg "fleet.sh: run $r of $runs: $n messages at upstream.rate $rate, alone, then with fleet.store"
	read -r c _ < <(RATE=$rate SESSIONS=4 FLEET_CONF= run_host $((2 * r - 1)))
	alone+=("$c")
	read -r c q < <(RATE=$rate SESSIONS=4 \
		FLEET_CONF="fleet = { store = \"redis://127.0.0.1:$STORE_PORT\"; hosts = 1; };" \
		run_host $((2 * r)))
	fleet+=("$c") reqs+=("$q")
done
cpu_alone=$(printf '%s\n' "${alone[@]}" | median)
cpu_fleet=$(printf '%s\n' "${fleet[@]}" | median)
req=$(printf '%s\n' "${reqs[@]}" | median)
msg "fleet.sh: CPU alone: ${alone[*]}; with the fleet: ${fleet[*]}; round trips: ${reqs[*]}"
evalsha=$(store_cli info commandstats | awk -F'[:=,]' '/^cmdstat_evalsha:/ { print $3 / '"$runs"' }')
store_usec=$(store_cli info commandstats | awk -F'[:=,]' '/^cmdstat_evalsha:/ { print $5 / '"$runs"' }')

# 2. many simulated hosts on one store
sha=$(store_cli script load "$(python3 -c '
import ast, re, sys
src = open(sys.argv[1]).read()
body = src.split("static const char script[] =", 1)[1].split(";\n", 1)[0]
print("".join(ast.literal_eval(l) for l in re.findall(r"\"(?:[^\"\\]|\\.)*\"", body)), end="")
' "$top/src/fleet_store.c")")
spid=$STORE_PID
s0=$(ticks "$spid")
t0=$(date +%s.%N)
rps=$(redis-benchmark -p "$STORE_PORT" -n "$calls" -c 50 -r "$hosts" -q --csv \
	evalsha "$sha" 3 'sesrelay:{b}:bucket' 'sesrelay:{b}:count' 'sesrelay:{b}:hosts' \
	100000 100000 1 1 'h__rand_int__' 8 600 10 | tail -n 1 | awk -F'"' '{ print $4 }')
t1=$(date +%s.%N)
s1=$(ticks "$spid")
seen=$(store_cli zcard 'sesrelay:{b}:hosts')

awk -v n="$n" -v rate="$rate" -v ca="$cpu_alone" -v cf="$cpu_fleet" -v req="$req" \
    -v ev="$evalsha" -v us="$store_usec" -v rps="$rps" -v calls="$calls" \
    -v scpu="$(awk -v a="$s0" -v b="$s1" -v hz="$hz" 'BEGIN { print (b - a) / hz }')" \
    -v wall="$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')" -v seen="$seen" 'BEGIN {
	printf "\n== the store'"'"'s cost, %d messages of one recipient at upstream.rate %d\n", n, rate
	printf "round trips to the store     %d (store counted %d EVALSHA a run): %.0f per 1000 messages\n", req, ev, req * 1000 / n
	printf "store time in the script     %.1f us per call\n", (ev ? us / ev : 0)
	printf "sesrelayd CPU (accept+relay, median), alone  %.3f s (%.3f s per 1000)\n", ca, ca * 1000 / n
	printf "sesrelayd CPU (accept+relay, median), fleet  %.3f s (%.3f s per 1000)\n", cf, cf * 1000 / n
	printf "the fleet'"'"'s share            %+.3f s per 1000 messages\n", (cf - ca) * 1000 / n
	printf "\n== one redis-server, the script from 50 connections, %d host names\n", seen
	printf "EVALSHA per second           %s (%d calls in %.1f s; store CPU %.1f s)\n", rps, calls, wall, scpu
	printf "hosts sustained, busy        %d (one lease each 0.25 s: 4 calls/s)\n", rps / 4
	printf "hosts sustained, idle        %d (one heartbeat a second)\n", rps
}'
