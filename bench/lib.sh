# bench/lib.sh: what the benchmarks that run sesrelayd beside Postfix
# share (accept.sh, drain.sh, sendmail.sh source it): messages, Postfix
# from Debian, free ports, CPU time, the scratch file system's line.
# The script sets bench (its name, for messages) before sourcing it;
# postfix_stop uses the script's P (the instance's directory) and
# PF_MASTER (its master's PID).

msg() { printf '%s\n' "$*" >&2; }
die() { msg "$bench: $*"; exit 1; }
# Debian's programs first: the python3 of the fixtures is Debian's (its
# python3-botocore lives there), not a version manager's shim in front
# of it on PATH, which costs 2 s a start (pyenv's did: half of the suite's
# CPU time).
export PATH=/usr/bin:/bin:$PATH

# install_postfix TOOL...: unless the TOOLs are there, Postfix from
# Debian, installed without configuring the system instance ("No
# configuration": no /etc/postfix/main.cf, nothing listening on :25).
# If the package install nevertheless started a system Postfix, stop it:
# only the instance in the scratch directory may run.
install_postfix() {
	local tool missing=0
	for tool in "$@"; do
		command -v "$tool" >/dev/null || missing=1
	done
	[ "$missing" -eq 1 ] || return 0
	msg "installing postfix"
	echo "postfix postfix/main_mailer_type select No configuration" |
		debconf-set-selections
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q postfix >/dev/null ||
		{ apt-get update -q >/dev/null &&
		  DEBIAN_FRONTEND=noninteractive apt-get install -y -q postfix >/dev/null; } ||
		die "apt-get install postfix failed"
	if postfix status >/dev/null 2>&1; then
		msg "stopping the system Postfix that the package started"
		postfix stop >/dev/null 2>&1 || true
	fi
	if command -v systemctl >/dev/null && systemctl is-active -q postfix 2>/dev/null; then
		systemctl stop postfix || true
	fi
}

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
is_listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# postfix stop signals master and waits for it; then wait for its children.
postfix_stop() {
	local kids pid
	kids=$(cat "/proc/$PF_MASTER/task/$PF_MASTER/children" 2>/dev/null || true)
	postfix -c "$P/etc" stop >>"$P/postfix.out" 2>&1 || true
	for pid in $PF_MASTER $kids; do
		for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
		kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
	done
	PF_MASTER=
	return 0
}

hz=$(getconf CLK_TCK)

# cpu_ticks PID: utime+stime (all threads) of PID and of its live
# children, plus cutime+cstime: the CPU of children already exited and
# reaped (Postfix's master reaps every smtpd that reaches max_use, and
# its smtp processes).
cpu_ticks() {
	local root=$1 total=0 pid s kids=
	local -a f
	kids=$(cat "/proc/$root/task/$root/children" 2>/dev/null || true)
	for pid in $kids $root; do
		{ s=$(<"/proc/$pid/stat"); } 2>/dev/null || continue
		s=${s##*) }
		read -ra f <<<"$s"
		total=$((total + f[11] + f[12] + f[13] + f[14]))
	done
	echo "$total"
}

# fs_info DIR: DIR's file system (device, type, options), whether an
# ext4 has a journal (see README); warns when fsync costs nothing there.
fs_info() {
	local info type dev
	info=$(findmnt -no SOURCE,FSTYPE,OPTIONS -T "$1" 2>/dev/null || df -T "$1" | tail -1)
	type=$(findmnt -no FSTYPE -T "$1" 2>/dev/null || stat -f -c %T "$1")
	case $type in tmpfs|ramfs) msg "WARNING: $1 is on $type: fsync costs nothing there" ;; esac
	if [ "$type" = ext4 ]; then
		dev=$(basename "$(findmnt -no SOURCE -T "$1" 2>/dev/null)")
		if compgen -G "/proc/fs/jbd2/$dev-*" >/dev/null; then
			info="$info (journal: yes)"
		else
			info="$info (journal: none)"
		fi
	fi
	echo "$info"
}

# postfix_master_cf [PORT [tls]]: $P/etc/master.cf with Debian's
# services, chroot off; with PORT, smtpd on 127.0.0.1:PORT only (none
# otherwise: mail comes in through sendmail); with tls, the services
# that TLS connection reuse needs (tlsmgr, tlsproxy).
postfix_master_cf() {
	local port=${1:-} tls=${2:-}
	{
		[ -z "$port" ] || echo "127.0.0.1:$port inet n - n - - smtpd"
		cat <<CONF
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
CONF
		[ -z "$tls" ] ||
			echo "tlsmgr    unix  -       -       n       1000?   1       tlsmgr"
		cat <<CONF
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
CONF
		[ -z "$tls" ] ||
			echo "tlsproxy  unix  -       -       n       -       0       tlsproxy"
		echo "postlog   unix-dgram n  -       n       -       1       postlogd"
	} >"$P/etc/master.cf"
}

# postfix_listen_start: start the instance on an empty queue (postfix
# start creates the queue's subdirectories) and wait until its smtpd
# listens on PF_PORT; sets PF_MASTER.
postfix_listen_start() {
	rm -rf "$P/queue"
	mkdir -m 755 "$P/queue"
	postfix -c "$P/etc" start >>"$P/postfix.out" 2>&1 ||
		die "postfix start failed (see $P/maillog)"
	PF_MASTER=$(tr -d ' \n' <"$P/queue/pid/master.pid")
	for _ in $(seq 100); do
		is_listening "$PF_PORT" && return 0
		sleep 0.05
	done
	die "postfix did not listen on 127.0.0.1:$PF_PORT"
}

# sesrelay_listen_start LOG: sesrelayd in the foreground with $S's
# config, no -d (debug logging would cost time), its output appended to
# LOG; waits until it listens on SES_PORT; sets SES_PID.
sesrelay_listen_start() {
	"$sesrelayd" -f -c "$S/sesrelay.conf" >>"$1" 2>&1 &
	SES_PID=$!
	for _ in $(seq 200); do
		is_listening "$SES_PORT" && return 0
		kill -0 "$SES_PID" 2>/dev/null || break
		sleep 0.05
	done
	die "sesrelayd did not start"
}
# sesrelay_stop: SIGTERM; returns the daemon's exit status (0 expected).
sesrelay_stop() {
	local rc=0
	kill -TERM "$SES_PID" 2>/dev/null
	wait "$SES_PID" 2>/dev/null || rc=$?
	SES_PID=''
	return "$rc"
}
sesrelay_queued() { find "$S/spool/queue" -type f | wc -l; }
