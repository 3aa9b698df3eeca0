#!/bin/bash
# A store that wants a password (requirepass): the host given it in
# fleet.credentials shares; a host with a wrong one logs why, once,
# without the password, and sends alone at upstream.rate / fleet.hosts.
# A "store" that answers garbage and a store that is full (maxmemory
# reached) get the same: a clear reason, the fallback, and every message
# delivered.  A store that forgot the script (SCRIPT FLUSH) gets it
# again, without a fallback.
. "$(dirname "$0")/lib.sh"
. "$tests/integration/fleet_lib.sh"

start_fake starttls
STORE_AUTH=s3cret-Pw start_store --requirepass s3cret-Pw
good=$STORE_PORT good_pid=$STORE_PID
STORE_PORT= STORE_TAG=-full
start_store --maxmemory 1 --maxmemory-policy noeviction
full=$STORE_PORT
# garbage: something that answers every line with "+OK"
take_port; junk=$PORT
python3 -c '
import socket, sys, threading
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(8)
def serve(c):
    while c.recv(65536):
        c.sendall(b"+OK\r\n")
while True:
    threading.Thread(target=serve, args=(s.accept()[0],), daemon=True).start()
' "$junk" &
pids+=($!)
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$junk") 2>/dev/null && break; tick; done

umask 077
printf 'password = "s3cret-Pw";\n' >"$work/good.pw"
printf 'password = "wrong-Pw";\n' >"$work/bad.pw"
umask 022

fleet() { echo "fleet = { store = \"redis://${STORE_HOST:-127.0.0.1}:$1\"; hosts = 2; ${2:-} };"; }
# host 1 by name: resolved by evdns, never by a blocking getaddrinfo
FLEET_CONF=$(STORE_HOST=localhost fleet "$good" "credentials = \"$work/good.pw\";") \
	RATE=20 start_host 1
FLEET_CONF=$(fleet "$good" "credentials = \"$work/bad.pw\";") RATE=20 start_host 2
FLEET_CONF=$(fleet "$junk") RATE=20 start_host 3
FLEET_CONF=$(fleet "$full") RATE=20 start_host 4

check "the right password: shared" on_host 1 wait_event -t 10 fleet.shared
check "a wrong password: fallback, reason auth" on_host 2 wait_event -t 10 \
	fleet.fallback reason=auth
on_host 2 log_lines fleet.fallback
check "... saying what the store said" on_host 2 wait_event -t 1 fleet.fallback \
	'detail=.*(WRONGPASS|invalid|password).*' rate='10\.00'
check "garbage: fallback, reason garbage" on_host 3 wait_event -t 10 \
	fleet.fallback reason=garbage
on_host 3 log_lines fleet.fallback
check "a full store: fallback, reason full" on_host 4 wait_event -t 10 \
	fleet.fallback reason=full
on_host 4 log_lines fleet.fallback
check "no password in any log" sh -c "! grep -q 's3cret-Pw\|wrong-Pw' $work/h*/daemon.log"

# Mail goes on everywhere, and the shared host's script survives a flush.
check "SCRIPT FLUSH" sh -c "STORE_PORT=$good; redis-cli -p $good -a s3cret-Pw --no-auth-warning script flush | grep -q OK"
for h in 1 2 3 4; do
	check "5 messages through host $h" smtpload --port "${HOST_PORT[$h]}" \
		--count 5 --start $(((h - 1) * 5 + 1)) --messages "$work/sent"
done
check "all 20 arrive" wait_delivered 20 30
check "the script is loaded again" on_host 1 wait_event -t 5 fleet.script_reload
check "host 1 stays shared" [ "$(on_host 1 log_count fleet.fallback)" -eq 0 ]
check "host 1 counted its 5 in the store" sh -c "[ \"\$(redis-cli -p $good -a s3cret-Pw --no-auth-warning hget 'sesrelay:{localhost}:count' total)\" -eq 5 ]"
check "byte for byte, each once" verify --record "$FAKE_REC" \
	--messages "$work/sent" --count 20
"$sbin/sesrelayctl" -c "$work/h2/sesrelay.conf" stats --json >"$work/h2.json"
check "stats --json: host 2 in fallback at 10/s" python3 -c "
import json, sys
f = json.load(open('$work/h2.json'))['fleet']
print(f)
sys.exit(0 if f['state'] in ('fallback', 'connecting') and f['rate'] == 10 else 1)"
for h in 2 3 4; do
	check "host $h said it once" [ "$(on_host "$h" log_count fleet.fallback)" -eq 1 ]
done

# A store that stops answering (SIGSTOP): host 1 gives up within its
# timeout (a second) and goes on alone; answering again, it rejoins.
kill -STOP "$good_pid"
check "a silent store: fallback, reason timeout" on_host 1 wait_event -t 10 \
	fleet.fallback reason=timeout
check "mail goes on meanwhile" smtpload --port "${HOST_PORT[1]}" --count 3 \
	--start 21 --messages "$work/sent"
check "and arrives" wait_delivered 23 20
kill -CONT "$good_pid"
check "the store answers again: host 1 rejoins" on_host 1 wait_event -n 2 -t 40 fleet.shared

# The operator fixes host 2's password and reloads: it joins.
printf 'password = "s3cret-Pw";\n' >"$work/bad.pw"
kill -HUP "${HOST_PID[2]}"
check "reloaded with the right password, host 2 shares" \
	on_host 2 wait_event -t 10 fleet.shared

# rediss:// where hiredis has no TLS: sesrelayd -t refuses it, saying why.
sed 's#^fleet = .*#fleet = { store = "rediss://127.0.0.1:6379"; };#' \
	"$work/h1/sesrelay.conf" >"$work/tls.conf"
"$sbin/sesrelayd" -t -c "$work/tls.conf" >/dev/null 2>"$work/tls.err"
rc=$?
cat "$work/tls.err"
if grep -q '^#define HAVE_HIREDIS_SSL' "$top_builddir/config.h"; then
	check "rediss://: -t says TLS is not supported yet (exit 78)" [ "$rc" -eq 78 ]
else
	check "rediss:// without hiredis_ssl: -t refuses it (exit 78)" [ "$rc" -eq 78 ]
	check "... and says why" grep -q 'fleet.store: rediss:// needs hiredis with TLS (hiredis_ssl' "$work/tls.err"
fi
for h in 1 2 3 4; do stop_host "$h"; done
finish
