# fleet_lib.sh: a fleet for the fleet tests (source it after lib.sh):
# one redis-server on a free loopback port in a scratch directory, and
# several sesrelayd hosts, each with its own port, spool, sockets, log
# and host name, all sending to the one fake SES.  lib.sh's cleanup
# stops them all (they are in pids).
command -v redis-server >/dev/null 2>&1 && command -v redis-cli >/dev/null 2>&1 ||
	{ echo "SKIP: redis-server missing (scripts/deps installs it)"; exit 77; }

# start_store [REDIS-ARGS...]: a redis-server in $work/store$STORE_TAG, on
# STORE_PORT (a free port unless set: a restart keeps its port).
start_store() {
	local dir=$work/store${STORE_TAG:-}
	mkdir -p "$dir"
	[ -n "${STORE_PORT:-}" ] || { take_port; STORE_PORT=$PORT; }
	redis-server --port "$STORE_PORT" --bind 127.0.0.1 --dir "$dir" \
		--save "" --appendonly no --logfile "$dir/redis.log" "$@" &
	STORE_PID=$!
	pids+=("$STORE_PID")
	for _ in $(seq 100); do
		# PONG, or NOAUTH with a password: either way it listens.
		redis-cli -p "$STORE_PORT" ping 2>&1 | grep -q 'PONG\|NOAUTH' && return 0
		tick
	done
	echo "redis-server did not start"; cat "$dir/redis.log"; exit 1
}

# stop_store [SIGNAL]: stop it (SIGTERM unless told).
stop_store() {
	kill "-${1:-TERM}" "$STORE_PID" 2>/dev/null
	wait "$STORE_PID" 2>/dev/null
}

store_cli() { redis-cli -p "$STORE_PORT" ${STORE_AUTH:+-a "$STORE_AUTH" --no-auth-warning} "$@"; }

# start_host I: host I (h$I.test) in $work/h$I, with write_conf's settings
# (RATE, SESSIONS, EXTRA_CONF ... as for write_conf) and FLEET_CONF
# appended.  Sets HOST_PORT[I], HOST_PID[I]; its log is host_log I.
HOST_PORT=()
HOST_PID=()
start_host() {
	local i=$1 dir=$work/h$1 port
	take_port
	port=$PORT
	mkdir -p "$dir"
	SMTP_PORT=$port write_conf
	sed -e "s#\"$work/spool\"#\"$dir/spool\"#" -e "s#$work/run/#$dir/run/#g" \
		-e "s#^hostname = .*#hostname = \"h$i.test\";#" \
		"$work/sesrelay.conf" >"$dir/sesrelay.conf"
	printf '%s\n' "${FLEET_CONF:-}" >>"$dir/sesrelay.conf"
	"$sbin/sesrelayd" -f -d -c "$dir/sesrelay.conf" >>"$dir/daemon.log" 2>&1 &
	HOST_PID[$i]=$!
	HOST_PORT[$i]=$port
	pids+=("${HOST_PID[$i]}")
	for _ in $(seq 100); do
		# bash's /dev/tcp: a python3 per try costs seconds on a busy machine
		(exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
		kill -0 "${HOST_PID[$i]}" 2>/dev/null || break
		tick
	done
	echo "host $i did not start"; cat "$dir/daemon.log"; exit 1
}

# take_port: PORT is a free loopback port, from a batch of 40 found by
# one python3 (each costs seconds of start-up on a busy machine).
free_ports=()
take_port() {
	[ ${#free_ports[@]} -gt 0 ] || free_ports=($(python3 -c '
import socket
ss = [socket.socket() for _ in range(40)]
for s in ss: s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in ss))'))
	PORT=${free_ports[0]}
	free_ports=("${free_ports[@]:1}")
}

host_log() { echo "$work/h$1/daemon.log"; }
# on_host I CMD...: a lib.sh log query (log_count, wait_event ...) on I.
on_host() { local i=$1; shift; DAEMON_LOG=$(host_log "$i") "$@"; }

# stop_host I: SIGTERM; it must exit 0.
stop_host() {
	local rc
	kill -TERM "${HOST_PID[$1]}" 2>/dev/null
	wait "${HOST_PID[$1]}" 2>/dev/null
	rc=$?
	[ "$rc" -eq 0 ] || { not_ok "host $1 exited with status $rc"; tail -n 20 "$(host_log "$1")"; }
}

# host_alive I: still running.
host_alive() { kill -0 "${HOST_PID[$1]}" 2>/dev/null; }

# fleet_spools_empty N [SECONDS]: hosts 1..N have nothing queued.
fleet_spools_empty() {
	local n=$1 limit=${2:-30} i h left
	for i in $(seq $((limit * 10))); do
		left=0
		for h in $(seq "$n"); do
			left=$((left + $(count_files "$work/h$h/spool/queue"/*)))
		done
		[ "$left" -eq 0 ] && return 0
		tick
	done
	echo "$left messages still queued after ${limit}s"
	return 1
}

# rate_refusals: the fake's 454 "Maximum sending rate exceeded" so far.
rate_refusals() {
	local n
	n=$(grep -c 'limit=rate' "$FAKE_REC/faults.log" 2>/dev/null)
	echo "${n:-0}"
}
