#!/bin/bash
# Never an open relay: a TCP client that is not on loopback is refused
# (554 5.7.1) unless listen.allow names its network; IPv6 loopback works.
#
# The non-loopback client lives in a network namespace this test makes
# (a veth pair with addresses of its own); skipped where that is not
# possible (not root, no iproute2, no namespaces).
. "$(dirname "$0")/lib.sh"

ns=sesrelay-t$$
host_if=srt$$h
ns_if=srt$$n
host_ip=10.213.$(( $$ % 200 )).1
ns_ip=10.213.$(( $$ % 200 )).2
netns_cleanup() {
	ip netns del "$ns" 2>/dev/null
	ip link del "$host_if" 2>/dev/null
}
if ! command -v ip >/dev/null || [ "$(id -u)" -ne 0 ] ||
	! ip netns add "$ns" 2>/dev/null; then
	echo "SKIP: cannot create a network namespace"
	exit 77
fi
extra_cleanup=netns_cleanup
ip link add "$host_if" type veth peer name "$ns_if" &&
	ip link set "$ns_if" netns "$ns" &&
	ip addr add "$host_ip/30" dev "$host_if" && ip link set "$host_if" up &&
	ip netns exec "$ns" ip addr add "$ns_ip/30" dev "$ns_if" &&
	ip netns exec "$ns" ip link set "$ns_if" up &&
	ip netns exec "$ns" ip link set lo up ||
	{ echo "SKIP: cannot set up the veth pair"; exit 77; }

has_v6=0
python3 -c 'import socket; s=socket.socket(socket.AF_INET6); s.bind(("::1",0))' 2>/dev/null && has_v6=1

start_fake starttls
write_conf
# Listen on loopback, the veth address and (where there is one) ::1.
extra="\"$host_ip:$SMTP_PORT\""
[ $has_v6 -eq 1 ] && extra="$extra, \"[::1]:$SMTP_PORT\""
sed -i "s|tcp = \[ \"127.0.0.1:$SMTP_PORT\" \]|tcp = [ \"127.0.0.1:$SMTP_PORT\", $extra ]|" "$work/sesrelay.conf"
start_daemon

cat >"$work/refused.chat" <<'CHAT'
< ^554 5\.7\.1 .*access denied
<close
CHAT
for _ in $(seq 50); do ip netns exec "$ns" true && break; done
check "a client from $ns_ip is refused with 554 5.7.1" \
	ip netns exec "$ns" python3 "$tests/integration/smtpchat.py" --host "$host_ip" \
		--port "$SMTP_PORT" "$work/refused.chat"
check "the refusal is logged" wait_event -t 1 smtp.refused client="$ns_ip" \
	reason=not_allowed

if [ $has_v6 -eq 1 ]; then
	cat >"$work/v6.chat" <<'CHAT'
< ^220 relay\.test ESMTP
> QUIT
< ^221
CHAT
	check "a client on [::1] is served" python3 -c "
import socket, sys
s = socket.create_connection(('::1', $SMTP_PORT), 5)
sys.exit(0 if s.recv(100).startswith(b'220 ') else 1)"
fi
stop_daemon

sed -i "s|^listen = { |listen = { allow = [ \"$ns_ip/32\" ]; |" "$work/sesrelay.conf"
start_daemon
cat >"$work/allowed.chat" <<'CHAT'
< ^220 relay\.test ESMTP
> EHLO ns.test
< ^250 HELP
> MAIL FROM:<sender@example.com>
< ^250
> RCPT TO:<someone@example.net>
< ^250
> DATA
< ^354
> Subject: from an allowed network
>
> hello
> .
< ^250 2\.0\.0 Ok: queued as
> QUIT
< ^221
CHAT
check "with listen.allow, that client may relay" \
	ip netns exec "$ns" python3 "$tests/integration/smtpchat.py" --host "$host_ip" \
		--port "$SMTP_PORT" "$work/allowed.chat"
check "and its message is delivered" wait_delivered 1 30
stop_daemon
finish
