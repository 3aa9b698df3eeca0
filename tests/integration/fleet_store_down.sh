#!/bin/bash
# The store dies mid-run (SIGKILL) under four hosts sharing a rate of 20
# recipients a second (fleet.hosts = 4): every host says so once, goes on
# alone at 20 / 4 = 5 a second (together within the account's rate), no
# daemon exits and nothing is lost.  The store comes back: every host
# rejoins (fleet.shared again) and all the mail arrives, each once.
. "$(dirname "$0")/lib.sh"
. "$tests/integration/fleet_lib.sh"

N=4 PER=40
TOTAL=$((N * PER))

start_fake starttls
set_faults '{"rate": 20, "rate_burst": 45}'
start_store
for h in $(seq "$N"); do
	FLEET_CONF="fleet = { store = \"redis://127.0.0.1:$STORE_PORT\"; hosts = $N; };" \
		RATE=20 SESSIONS=2 start_host "$h"
done
for h in $(seq "$N"); do
	check "host $h shares through the store" on_host "$h" wait_event -t 10 fleet.shared
done

p=()
for h in $(seq "$N"); do
	smtpload --port "${HOST_PORT[$h]}" --count "$PER" --concurrency 2 \
		--start $(((h - 1) * PER + 1)) --messages "$work/sent" & p+=($!)
done
check "the first 40 arrive" wait_delivered 40 30
stop_store KILL
killed=$(date +%s.%N)
for h in $(seq "$N"); do
	check "host $h falls back, saying why" on_host "$h" wait_event -t 5 fleet.fallback \
		reason='disconnected|unreachable|timeout'
done
# Alone for 4 s (reconnects fail meanwhile: 1 s, then 2 s later).
sleep 4
d0=$(delivered)
d0_at=$(date +%s.%N)
sleep 3
d1=$(delivered)
d1_at=$(date +%s.%N)
rate=$(awk -v a="$d0" -v b="$d1" -v t0="$d0_at" -v t1="$d1_at" 'BEGIN { printf "%.1f", (b - a) / (t1 - t0) }')
echo "alone: $((d1 - d0)) delivered in 3 s: $rate a second (4 hosts x 5)"
check "the fallback rate holds (20 a second together, or less)" \
	awk -v r="$rate" 'BEGIN { exit !(r <= 22) }'
check "and they do send meanwhile" [ "$((d1 - d0))" -ge 5 ]
for h in $(seq "$N"); do check "host $h is still running" host_alive "$h"; done

start_store
restarted=$(date +%s.%N)
for h in $(seq "$N"); do
	check "host $h rejoins" on_host "$h" wait_event -n 2 -t 40 fleet.shared
done
for h in "${p[@]}"; do wait "$h"; done
check "all $TOTAL arrive" wait_delivered "$TOTAL" 60
check "the spools empty" fleet_spools_empty "$N" 10
check "byte for byte, each once" verify --record "$FAKE_REC" \
	--messages "$work/sent" --count "$TOTAL"
check "the hosts heartbeat in the new store" \
	sh -c "[ \"\$(redis-cli -p $STORE_PORT zcard 'sesrelay:{localhost}:hosts')\" -eq $N ]"
for h in $(seq "$N"); do
	check "host $h logged the outage once" [ "$(on_host "$h" log_count fleet.fallback)" -eq 1 ]
	stop_host "$h"
done
echo "store down for $(awk -v a="$killed" -v b="$restarted" 'BEGIN { printf "%.1f", b - a }') s; rate 454s: $(rate_refusals)"
check "at most a few 454s" [ "$(rate_refusals)" -le 10 ]
finish
