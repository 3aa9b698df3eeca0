#!/bin/bash
# Ten hosts share one SES account whose rate is 20 recipients a second,
# each configured with upstream.rate = 20.  The fake SES refills 20 a
# second and allows 45 in any one second: a token bucket of one second's
# worth sends up to 2 x 20 in a second (a full bucket, then a second's
# refill; ses_rate.sh), and each host may run one lease ahead.  With one fleet store they keep to 20 a second
# together: every message arrives once, the time it takes matches the
# rate, and SES throttles at most a few; the same ten hosts without the
# store send ten times too fast and draw hundreds of 454s.
. "$(dirname "$0")/lib.sh"
. "$tests/integration/fleet_lib.sh"

N=10 PER=20			# 200 messages, one recipient each
TOTAL=$((N * PER))

start_fake starttls
set_faults '{"rate": 20, "rate_burst": 45}'
start_store

# send_all FIRST: PER messages to each host at once, numbered from FIRST.
send_all() {
	local h first=$1 p=()
	for h in $(seq "$N"); do
		smtpload --port "${HOST_PORT[$h]}" --count "$PER" --concurrency 4 \
			--start $((first + (h - 1) * PER)) --messages "$work/sent" &
		p+=($!)
	done
	for h in "${p[@]}"; do wait "$h" || return 1; done
}

# span FIRST: seconds from the first to the last delivery of the run
# whose messages are numbered from FIRST (the fake writes <seq>.json).
span() {
	python3 - "$FAKE_REC" "$1" "$TOTAL" <<'PY'
import glob, json, os, sys
rec, first, total = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
t = sorted(os.stat(p).st_mtime for p in glob.glob(rec + "/*.json"))
print("%.2f" % (t[-1] - t[-total] if len(t) >= total else -1))
PY
}

# ---- with the store ----
for h in $(seq "$N"); do
	FLEET_CONF="fleet = { store = \"redis://127.0.0.1:$STORE_PORT\"; hosts = $N; };" \
		RATE=20 SESSIONS=4 start_host "$h"
done
for h in $(seq "$N"); do
	check "host $h shares through the store" on_host "$h" wait_event -t 10 fleet.shared
done
started=$(date +%s.%N)
check "$TOTAL messages accepted by $N hosts" send_all 1
check "all $TOTAL arrive" wait_delivered "$TOTAL" 60
elapsed=$(python3 -c "import time; print('%.1f' % (time.time() - $started))")
check "the spools empty" fleet_spools_empty "$N" 10
s1=$(span 1)
r1=$(rate_refusals)
echo "with the store: first to last delivery ${s1}s (ideal $(( (TOTAL - 20) / 20 )) s), $r1 rate 454s, ${elapsed}s in all"
# 180 recipients beyond the first burst at 20 a second: 9 s; each host's
# lease (a quarter second of its demand) may run ahead once.
check "together within the rate (8 s or more)" python3 -c "import sys; sys.exit(0 if $s1 >= 8 else 1)"
# A 454 halves the fleet's rate for a while: slower, never faster.
check "and not much slower (20 s or less)" python3 -c "import sys; sys.exit(0 if $s1 <= 20 else 1)"
check "at most a few 454s ($r1)" [ "$r1" -le 10 ]
# What a host spent of its lease reaches the store with its next request
# (a lease, or the heartbeat within a second): wait for it.
fleet_count() { redis-cli -p "$STORE_PORT" hget 'sesrelay:{localhost}:count' total; }
counted() {
	for _ in $(seq 50); do [ "$(fleet_count)" = "$1" ] && return 0; tick; done
	echo "the fleet's count: $(fleet_count)"; return 1
}
check "the fleet counted $TOTAL recipients in 24 h" counted "$TOTAL"
check "ten hosts seen" sh -c "[ \"\$(redis-cli -p $STORE_PORT zcard 'sesrelay:{localhost}:hosts')\" -eq $N ]"
ctl_out=$("$sbin/sesrelayctl" -c "$work/h1/sesrelay.conf" stats)
echo "$ctl_out" | grep '^fleet'
check "stats show the fleet shared, 10 hosts" grep -q "fleet .*shared through the store, 10 hosts seen" <<<"$ctl_out"
for h in $(seq "$N"); do stop_host "$h"; done
stop_store

# ---- the same hosts without the store ----
for h in $(seq "$N"); do
	rm -f "$work/h$h/daemon.log"
	RATE=20 SESSIONS=4 FLEET_CONF= start_host "$h"
done
check "$TOTAL more messages accepted" send_all $((TOTAL + 1))
check "all $((2 * TOTAL)) arrive" wait_delivered $((2 * TOTAL)) 90
r2=$(( $(rate_refusals) - r1 ))
echo "without the store: $r2 rate 454s"
# Typically 100 or more here; at least ten times as many as with it.
check "without the store: many more 454s ($r2)" \
	[ "$r2" -ge 50 ] && [ "$r2" -ge $((10 * (r1 + 1))) ]
check "byte for byte, each once" verify --record "$FAKE_REC" \
	--messages "$work/sent" --count $((2 * TOTAL))
for h in $(seq "$N"); do stop_host "$h"; done
finish
