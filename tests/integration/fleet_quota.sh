#!/bin/bash
# Three hosts share one daily quota (the fake SES allows 5 recipients).
# Host 1 uses it up and SES tells it so (454 Daily message quota
# exceeded): all three pause, hosts 2 and 3 without having been told by
# SES, and while paused the fleet sends one probe every
# upstream.quota_probe_interval (1 s) in all, not one per host.  The
# quota is lifted: the probe goes through, all three resume, and every
# message arrives once.  (Host 3 reaches the store by its Unix socket.)
. "$(dirname "$0")/lib.sh"
. "$tests/integration/fleet_lib.sh"

quota_refusals() {
	local n
	n=$(grep -c 'limit=daily_quota' "$FAKE_REC/faults.log" 2>/dev/null)
	echo "${n:-0}"
}
probes() {
	local h n=0
	for h in 1 2 3; do n=$((n + $(on_host "$h" log_count upstream.quota_probe))); done
	echo "$n"
}

start_fake starttls
set_faults '{"daily_quota": 5}'
start_store --unixsocket "$work/store/redis.sock" --unixsocketperm 700
# hosts 1 and 2 over TCP, host 3 over the store's Unix socket
for h in 1 2 3; do
	store="redis://127.0.0.1:$STORE_PORT"
	[ "$h" -eq 3 ] && store="unix:$work/store/redis.sock"
	FLEET_CONF="fleet = { store = \"$store\"; hosts = 3; };" \
		QUOTA_PROBE=1 SESSIONS=2 start_host "$h"
done
for h in 1 2 3; do
	check "host $h shares through the store" on_host "$h" wait_event -t 10 fleet.shared
done

check "5 messages through host 1" smtpload --port "${HOST_PORT[1]}" --count 5 \
	--messages "$work/sent"
check "they arrive" wait_delivered 5 20
check "3 more through host 1" smtpload --port "${HOST_PORT[1]}" --count 3 \
	--start 6 --messages "$work/sent"
check "host 1 is told and pauses" on_host 1 wait_event -t 10 upstream.quota_paused
check "host 2 pauses too, told by the fleet" on_host 2 wait_event -t 5 upstream.quota_paused fleet=1
check "host 3 pauses too, told by the fleet" on_host 3 wait_event -t 5 upstream.quota_paused fleet=1
check "5 through host 2" smtpload --port "${HOST_PORT[2]}" --count 5 \
	--start 9 --messages "$work/sent"
check "5 through host 3" smtpload --port "${HOST_PORT[3]}" --count 5 \
	--start 14 --messages "$work/sent"

# Four seconds of pause with mail on all three hosts.
p0=$(probes) q0=$(quota_refusals)
sleep 4
p1=$(probes) q1=$(quota_refusals)
echo "in 4 s paused: $((p1 - p0)) probes in the fleet, $((q1 - q0)) quota refusals at SES"
check "one probe a second for the fleet, not one per host" [ $((p1 - p0)) -le 6 ]
check "and SES sees only the probes" [ $((q1 - q0)) -le 6 ]
check "the probes continue" [ $((p1 - p0)) -ge 2 ]
check "still 5 delivered" [ "$(delivered)" -eq 5 ]
check "nothing bounced" sh -c "! grep -q 'bounce.queued' $work/h*/daemon.log"

set_faults '{}'
check "all 18 arrive" wait_delivered 18 30
for h in 1 2 3; do
	check "host $h resumes" on_host "$h" wait_event -t 10 upstream.quota_resumed
done
check "the spools empty" fleet_spools_empty 3 10
check "byte for byte, each once" verify --record "$FAKE_REC" \
	--messages "$work/sent" --count 18
for h in 1 2 3; do
	check "host $h paused once" [ "$(on_host "$h" log_count upstream.quota_paused)" -eq 1 ]
	stop_host "$h"
done
finish
