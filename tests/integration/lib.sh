# lib.sh: shared set-up for the integration tests (source it).
#
# Every test runs in its own scratch directory, against its own fake SES,
# with its own sesrelayd; everything started here is killed on exit, and
# a watchdog ends a test that hangs.  Only loopback addresses are used.
# Exit codes: 0 pass, 1 fail, 77 skipped (a prerequisite is missing).
set -u
# Debian's programs first: the python3 of the fixtures is Debian's (its
# python3-botocore lives there), not a version manager's shim in front
# of it on PATH, which costs 2 s a start (pyenv's did: half of the suite's
# CPU time).
export PATH=/usr/bin:/bin:$PATH

: "${top_builddir:=$(cd "$(dirname "$0")/../.." && pwd)/build}"
: "${top_srcdir:=$(cd "$(dirname "$0")/../.." && pwd)}"
tests=$top_srcdir/tests
sbin=$top_builddir

for tool in python3 openssl; do
	command -v "$tool" >/dev/null 2>&1 || { echo "SKIP: $tool missing"; exit 77; }
done

# tick: wait 0.1 s without starting a process (a read that times out on
# a pipe nobody writes to): the wait_* loops poll with it, and a sleep
# (plus ls and grep) ten times a second cost a waiting test 40 % of a core.
exec {tick_fd}<> <(:)
tick() { read -rt 0.1 -u "$tick_fd" || :; }

work=$(mktemp -d "${TMPDIR:-/tmp}/sesrelay-test.XXXXXX")
chmod 755 "$work"
pids=()
failures=0

# A test may set extra_cleanup to a command run first at exit.
extra_cleanup=
cleanup() {
	local rc=$?
	[ -n "$extra_cleanup" ] && $extra_cleanup
	release_drop_group
	for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
	for p in "${pids[@]}"; do
		for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
	for u in "${made_users[@]}"; do userdel "$u" 2>/dev/null; done
	if [ -n "${watchdog:-}" ]; then
		kill "$watchdog" 2>/dev/null
		wait "$watchdog" 2>/dev/null
	fi
	# For scripts/test's list of the slowest tests: wall seconds, and
	# the CPU seconds of the test and all it started (bash's times).
	local t
	times >"$work/.times"
	t=$(tail -n 1 "$work/.times")
	echo "# duration: ${SECONDS}s wall, cpu of what it started (user sys): $t"
	if [ "$rc" -ne 0 ] && [ "$rc" -ne 77 ]; then
		echo "--- daemon log (tail) ---"
		tail -n 40 "$work"/daemon*.log 2>/dev/null
		echo "--- kept $work"
	elif [ -z "${KEEP:-}" ]; then
		rm -rf "$work"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'echo "interrupted"; exit 1' HUP INT TERM
trap 'echo "TIMEOUT after ${TEST_TIMEOUT:-300}s"; exit 1' ALRM

# descendants PID: the processes below PID, deepest first.
descendants() {
	local c
	for c in $(ps -o pid= --ppid "$1"); do
		descendants "$c"
		echo "$c"
	done
}

# The watchdog: a hung test fails instead of blocking CI.  It holds no
# output open, so a pipeline reading the test ends with the test.  Bash
# runs the ALRM trap only once its foreground command has ended, so the
# watchdog then ends the test's other processes (a client that hangs
# among them), not itself.
(
	trap 'kill $sleeper 2>/dev/null; exit 0' TERM
	sleep "${TEST_TIMEOUT:-300}" & sleeper=$!
	wait $sleeper
	kill -ALRM $$
	for p in $(descendants $$); do
		[ "$p" -eq "$BASHPID" ] || kill -TERM "$p" 2>/dev/null
	done
) </dev/null >/dev/null 2>&1 &
watchdog=$!

ok() { echo "ok - $*"; }
not_ok() { echo "not ok - $*"; failures=$((failures + 1)); }
check() { local d=$1; shift; if "$@"; then ok "$d"; else not_ok "$d"; fi; }
finish() { [ "$failures" -eq 0 ] && exit 0; echo "$failures check(s) failed"; exit 1; }

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# make_user VAR TAG: a system user made for this test (removed at exit),
# its name in VAR.
made_users=()
make_user() {
	local name=sesrelay-$2-$$
	name=${name:0:31}
	useradd -r -M -N -s /usr/sbin/nologin "$name" ||
		{ echo "cannot create the user $name"; exit 1; }
	made_users+=("$name")
	printf -v "$1" %s "$name"
}

# setgid_sendmail: $work/bin/sendmail, sesrelay-sendmail installed as
# make install does (set-group-ID sesrelay-drop), where the test's users
# can run it.
setgid_sendmail() {
	need_drop_group
	chmod 711 "$work"
	mkdir -p "$work/bin"
	cp "$sbin/sesrelay-sendmail" "$work/bin/sendmail"
	chgrp sesrelay-drop "$work/bin/sendmail"
	chmod 2755 "$work/bin/sendmail"
}

# need_drop_group: the group sesrelay-drop (the maildrop's) exists for
# the rest of the test.  Tests run in parallel and share it: each holds a
# shared lock on it while it runs; the last one out removes the group if
# a test made it (it was not there before the suite).
drop_lock=${TMPDIR:-/tmp}/sesrelay-drop-group.lock
drop_lock_fd=
need_drop_group() {
	[ -z "$drop_lock_fd" ] || return 0	# held already
	exec {drop_lock_fd}>>"$drop_lock"
	flock -s "$drop_lock_fd"
	if ! getent group sesrelay-drop >/dev/null; then
		groupadd -r sesrelay-drop 2>/dev/null && : >"$drop_lock.made"
		getent group sesrelay-drop >/dev/null ||
			{ echo "cannot create the group sesrelay-drop"; exit 1; }
	fi
}
release_drop_group() {
	[ -n "$drop_lock_fd" ] || return 0
	flock -u "$drop_lock_fd"
	if flock -xn "$drop_lock_fd" && [ -e "$drop_lock.made" ]; then
		groupdel sesrelay-drop 2>/dev/null
		rm -f "$drop_lock.made"
	fi
	exec {drop_lock_fd}>&-
	drop_lock_fd=
}

# user_copy PROG: print the path of a copy of the built PROG that any
# user can run.  The checkout may sit in a directory only root can enter
# (any clone under /root), so a test that runs a program as another user
# runs this copy, never the one in the build tree.
user_copy() {
	mkdir -p "$work/bin" && chmod 755 "$work/bin" &&
		cp "$sbin/$1" "$work/bin/$1" && chmod 755 "$work/bin/$1" &&
		echo "$work/bin/$1"
}

certs=$work/certs
"$tests/mkcerts.sh" "$certs" >/dev/null || { echo "mkcerts failed"; exit 1; }

# start_fake [MODE]: a fake SES in TLS mode MODE (starttls|wrapper), with
# the certificate FAKE_CERT (server: for localhost; ip: for 127.0.0.1).
# Sets FAKE_PORT and FAKE_REC (the record directory).
start_fake() {
	local mode=${1:-starttls}
	FAKE_REC=$work/ses
	FAKE_FAULTS=$work/faults.json
	rm -f "$work/fake.port"
	python3 "$tests/fake_ses.py" --listen 127.0.0.1 --port 0 \
		--port-file "$work/fake.port" --tls "$mode" \
		--cert "$certs/${FAKE_CERT:-server}.pem" --key "$certs/${FAKE_CERT:-server}.key" \
		--record "$FAKE_REC" --user AKIATESTUSER --password 'BTestPassw0rd' \
		--faults "$FAKE_FAULTS" --log "$work/fake.log" ${FAKE_ARGS:-} \
		2>>"$work/fake.err" &
	pids+=($!)
	FAKE_PID=$!
	for _ in $(seq 100); do [ -s "$work/fake.port" ] && break; sleep 0.1; done
	[ -s "$work/fake.port" ] || { echo "fake SES did not start"; cat "$work/fake.err"; exit 1; }
	FAKE_PORT=$(cat "$work/fake.port")
	FAKE_MODE=$mode
}

# start_fake_api: the fake SES v2 API (fake_ses_api.py) over HTTPS, for
# transport = "api": accepts the IAM key AKIATESTKEY / API_SECRET
# (write_conf writes it when CRED_KEY=1) and the session keys listed in
# $work/imds_keys.json (a fake IMDS writes them).  Sets FAKE_PORT,
# FAKE_REC, FAKE_FAULTS (set_faults works) and API_CONF, the upstream
# keys that send to it (write_conf puts UP_EXTRA inside upstream).
API_SECRET=apitestsecret
start_fake_api() {
	FAKE_REC=$work/ses
	FAKE_FAULTS=$work/faults.json
	rm -f "$work/fake.port"
	python3 "$tests/fake_ses_api.py" --listen 127.0.0.1 --port 0 \
		--port-file "$work/fake.port" --region us-east-1 \
		--cert "$certs/server.pem" --key "$certs/server.key" \
		--record "$FAKE_REC" --access-key "AKIATESTKEY:$API_SECRET" \
		--keys-file "$work/imds_keys.json" --faults "$FAKE_FAULTS" \
		--log "$work/fake.log" ${FAKE_ARGS:-} 2>>"$work/fake.err" &
	pids+=($!)
	FAKE_PID=$!
	for _ in $(seq 100); do [ -s "$work/fake.port" ] && break; sleep 0.1; done
	[ -s "$work/fake.port" ] || { echo "fake SES API did not start"; cat "$work/fake.err"; exit 1; }
	FAKE_PORT=$(cat "$work/fake.port")
	FAKE_MODE=starttls
	API_CONF="transport = \"api\"; api_endpoint = \"https://localhost:$FAKE_PORT\"; account_check_interval = 0;"
}

# start_fake_imds [LIFETIME]: the fake IMDSv2 (fake_imds.py), its keys
# living LIFETIME s (default 21600) and written to $work/imds_keys.json,
# which start_fake_api's fake SES API takes.  Sets IMDS_PORT, IMDS_FAULTS
# (set_imds_faults '{"down": true}') and IMDS_CONF, the upstream keys
# for auth = "instance-role" (put it in UP_EXTRA with API_CONF).
start_fake_imds() {
	IMDS_FAULTS=$work/imds_faults.json
	rm -f "$work/imds.port"
	python3 "$tests/fake_imds.py" --listen 127.0.0.1 --port 0 \
		--port-file "$work/imds.port" --lifetime "${1:-21600}" \
		--keys-file "$work/imds_keys.json" --faults "$IMDS_FAULTS" \
		--log "$work/imds.log" 2>>"$work/imds.err" &
	pids+=($!)
	for _ in $(seq 100); do [ -s "$work/imds.port" ] && break; sleep 0.1; done
	[ -s "$work/imds.port" ] || { echo "fake IMDS did not start"; cat "$work/imds.err"; exit 1; }
	IMDS_PORT=$(cat "$work/imds.port")
	IMDS_CONF="auth = \"instance-role\"; imds_endpoint = \"http://127.0.0.1:$IMDS_PORT\";"
}
set_imds_faults() {
	printf '%s\n' "$1" >"$IMDS_FAULTS.tmp" && mv -f "$IMDS_FAULTS.tmp" "$IMDS_FAULTS"
}

# write_conf: the daemon's config from variables (each has a default);
# EXTRA_CONF is appended as is (e.g. a whole smtp = { ... }; group).
write_conf() {
	SMTP_PORT=${SMTP_PORT:-$(free_port)}
	SOCK=$work/run/smtp.sock
	umask 077
	if [ -n "${CRED_KEY:-}" ]; then
		printf 'access_key_id = "AKIATESTKEY";\nsecret_access_key = "%s";\n' \
			"$API_SECRET" > "$work/credentials"
	else
		printf 'username = "AKIATESTUSER";\npassword = "%s";\n' \
			"${CRED_PASSWORD:-BTestPassw0rd}" > "$work/credentials"
	fi
	umask 022
	cat > "$work/sesrelay.conf" <<CONF
hostname = "relay.test";
mailname = "${MAILNAME:-}";
user = "${RUN_AS:-}";
listen = { tcp = [ "127.0.0.1:$SMTP_PORT" ]; unix = "$SOCK"; };
spool = "$work/spool";
control = { socket = "$work/run/control.sock"; };
max_message_size = ${MAX_SIZE:-41943040};
upstream = {
  host = "${UP_HOST:-localhost}";
  port = $FAKE_PORT;
  tls = "${UP_TLS:-$FAKE_MODE}";
  ca_file = "${UP_CA:-$certs/ca.pem}";
  credentials = "$work/credentials";
  sessions = ${SESSIONS:-4};
  recycle_after_messages = ${RECYCLE_MESSAGES:-100};
  recycle_after_seconds = ${RECYCLE_SECONDS:-60};
  rate = ${RATE:-100000.0};
  quota_probe_interval = ${QUOTA_PROBE:-600};
  timeout = ${UP_TIMEOUT:-10};
  ${UP_EXTRA:-}
};
retry = { schedule = [ ${RETRY:-1, 1, 2} ]; };
${EXTRA_CONF:-}
CONF
	export SESRELAY_CONFIG=$work/sesrelay.conf
}

# start_daemon: sesrelayd in the foreground, logging to daemon.log.
DAEMON_RUN=0
start_daemon() {
	DAEMON_RUN=$((DAEMON_RUN + 1))
	DAEMON_LOG=$work/daemon$DAEMON_RUN.log
	"$sbin/sesrelayd" -f -d -c "$work/sesrelay.conf" >"$DAEMON_LOG" 2>&1 &
	DAEMON_PID=$!
	pids+=("$DAEMON_PID")
	for _ in $(seq 100); do
		[ -S "$SOCK" ] && python3 -c "import socket,sys; socket.create_connection(('127.0.0.1',$SMTP_PORT),1).close()" 2>/dev/null && return 0
		kill -0 "$DAEMON_PID" 2>/dev/null || break
		tick
	done
	echo "sesrelayd did not start"; cat "$DAEMON_LOG"; exit 1
}

# stop_daemon: SIGTERM; the daemon must exit 0 (under the sanitizers a
# leak or an error report at exit makes this fail).
stop_daemon() {
	kill -TERM "$DAEMON_PID" 2>/dev/null
	wait "$DAEMON_PID" 2>/dev/null
	DAEMON_EXIT=$?
	if [ "$DAEMON_EXIT" -ne 0 ]; then
		not_ok "sesrelayd exited with status $DAEMON_EXIT after SIGTERM"
		tail -n 30 "$DAEMON_LOG"
	fi
}

kill9_daemon() {
	kill -KILL "$DAEMON_PID" 2>/dev/null
	wait "$DAEMON_PID" 2>/dev/null
}

# delivered: how many messages the fake SES recorded.
delivered() { count_files "$FAKE_REC"/*.json; }

# count_files GLOB...: how many names the glob gave, no process: 0 when
# it matched nothing (bash then leaves the pattern itself: one word that
# names no file).  A name removed since the glob still counts, as ls
# would have counted it a moment before.
count_files() {
	if [ "$#" -eq 1 ] && ! [ -e "$1" ] && ! [ -L "$1" ]; then
		echo 0
	else
		echo "$#"
	fi
}

# wait_delivered N [SECONDS]: until the fake recorded N messages.
wait_delivered() {
	local want=$1 limit=${2:-60} i
	for i in $(seq $((limit * 10))); do
		[ "$(delivered)" -ge "$want" ] && return 0
		tick
	done
	echo "only $(delivered) of $want delivered after ${limit}s"
	return 1
}

# spool_count: messages still in the spool's queue.
spool_count() { count_files "$work/spool/queue"/*; }

# wait_spool_empty [SECONDS]
wait_spool_empty() {
	local limit=${1:-30} i
	for i in $(seq $((limit * 10))); do
		[ "$(spool_count)" -eq 0 ] && return 0
		tick
	done
	return 1
}

# wait_log REGEX [SECONDS]: until the daemon's log shows it (no fixed sleeps).
wait_log() {
	local limit=${2:-30} i
	for i in $(seq $((limit * 10))); do
		grep -Eq -- "$1" "$DAEMON_LOG" && return 0
		tick
	done
	echo "not in the log after ${limit}s: $1"
	return 1
}

# wait_log_count N REGEX [SECONDS]: until N lines of the daemon's log
# match (for an event that happens more than once in a test).
wait_log_count() {
	local want=$1 limit=${3:-30} i
	for i in $(seq $((limit * 10))); do
		[ "$(grep -Ec -- "$2" "$DAEMON_LOG")" -ge "$want" ] && return 0
		tick
	done
	echo "$(grep -Ec -- "$2" "$DAEMON_LOG") of $want lines in the log after ${limit}s: $2"
	return 1
}

# The daemon's log is one event a line (sesrelayd(8), LOGGING):
#   <stamp> sesrelayd: <queue id or -> <subsystem>.<event> key=value ...
# A query names an EVENT (an ERE: "(smtp|pickup)\.accepted") and KEY=ERE
# conditions, each ERE matched against the whole value, unquoted ("id" is
# the queue id column).  The EREs are awk's, which may lack {n}: HEX16
# stands for 16 hex digits.
#   log_count EVENT [KEY=ERE...]     how many lines match
#   log_lines EVENT [KEY=ERE...]     those lines
#   log_field EVENT KEY [KEY=ERE...] KEY's value in the last one
#   log_stamps EVENT KEY [KEY=ERE...] each one's time stamp, a tab, KEY's
#                                    value
#   wait_event [-n N] [-t SECONDS] EVENT [KEY=ERE...]
#                                    until N lines match (default 1, 30 s)
_log_query() {
	local mode=$1 ev=$2
	shift 2
	# Through the environment: awk -v would eat the EREs' backslashes.
	LOGQ_MODE=$mode LOGQ_EVENT=$ev LOGQ_CONDS=$(printf '%s\n' "$@") awk '
	function unquote(v) {
		if (substr(v, 1, 1) != "\"")
			return v
		v = substr(v, 2, length(v) - 2)
		gsub(/\\\\/, "\001", v)
		gsub(/\\"/, "\"", v)
		gsub(/\001/, "\\", v)
		return v
	}
	function parse(line,   rest, n, key, val) {
		split("", f)
		rest = substr(line, index(line, ": ") + 2)
		n = index(rest " ", " ")
		f["id"] = substr(rest, 1, n - 1)
		rest = substr(rest, n + 1)
		n = index(rest " ", " ")
		event = substr(rest, 1, n - 1)
		rest = substr(rest, n + 1)
		while ((n = index(rest, "=")) > 0) {
			key = substr(rest, 1, n - 1)
			rest = substr(rest, n + 1)
			if (substr(rest, 1, 1) == "\"" &&
			    match(rest, /^"([^"\\]|\\.)*"/))
				n = RLENGTH
			else
				n = index(rest " ", " ") - 1
			val = substr(rest, 1, n)
			rest = substr(rest, n + 2)
			f[key] = unquote(val)
		}
	}
	BEGIN {
		mode = ENVIRON["LOGQ_MODE"]
		ev = ENVIRON["LOGQ_EVENT"]
		nc = split(ENVIRON["LOGQ_CONDS"], c, "\n")
	}
	# The event is the fourth word ("<stamp> sesrelayd: <id> <event>"):
	# other lines are passed over before their fields are parsed.
	$4 !~ ("^(" ev ")$") { next }
	{
		parse($0)
		if (event !~ ("^(" ev ")$"))
			next
		for (i = 1; i <= nc; i++) {
			if (c[i] == "")
				continue
			k = substr(c[i], 1, index(c[i], "=") - 1)
			if (!(k in f) || f[k] !~ ("^(" substr(c[i], length(k) + 2) ")$"))
				next
		}
		count++
		if (mode == "lines")
			print
		else if (mode ~ /^stamps:/)
			print $1 "\t" f[substr(mode, 8)]
		else if (mode != "count")
			last = f[mode]
	}
	END {
		if (mode == "count")
			print count + 0
		else if (mode != "lines" && mode !~ /^stamps:/)
			print last
	}' "$DAEMON_LOG"
}
HEX16=$(printf '[0-9a-f]%.0s' $(seq 16))
log_count() { _log_query count "$@"; }
log_lines() { _log_query lines "$@"; }
log_field() { local ev=$1 key=$2; shift 2; _log_query "$key" "$ev" "$@"; }
log_stamps() { local ev=$1 key=$2; shift 2; _log_query "stamps:$key" "$ev" "$@"; }
# no_events EVENT...: none of these events is in the log.
no_events() {
	local ev
	for ev in "$@"; do [ "$(log_count "$ev")" -eq 0 ] || return 1; done
}
wait_event() {
	local want=1 limit=30 i
	while :; do
		case $1 in
		-n) want=$2; shift 2 ;;
		-t) limit=$2; shift 2 ;;
		*) break ;;
		esac
	done
	for i in $(seq $((limit * 10))); do
		[ "$(log_count "$@")" -ge "$want" ] && return 0
		tick
	done
	echo "$(log_count "$@") of $want events after ${limit}s: $*"
	return 1
}

# set_faults JSON: replace the fake SES's faults file.  The fake re-reads
# it whenever it changes, so it is written aside and renamed into place:
# the fake never sees it half-written.
set_faults() {
	printf '%s\n' "$1" >"$FAKE_FAULTS.tmp" && mv -f "$FAKE_FAULTS.tmp" "$FAKE_FAULTS"
}

# quiet CMD...: run it without its standard output.
quiet() { "$@" >/dev/null; }

smtpload() { python3 "$tests/integration/smtpload.py" "$@"; }
verify() { python3 "$tests/integration/verify.py" "$@"; }
# ctl ARGS...: sesrelayctl for the test's daemon.
ctl() { "$sbin/sesrelayctl" -c "$work/sesrelay.conf" "$@"; }
# cpu: the daemon's CPU time so far (utime + stime, in clock ticks).
cpu() { awk '{ print $14 + $15 }' "/proc/$DAEMON_PID/stat"; }
