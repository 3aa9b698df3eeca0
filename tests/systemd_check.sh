#!/bin/bash
# The systemd files as installed: the units pass systemd-analyze verify,
# the service's sandbox scores 2.0 or better in systemd-analyze security,
# sysusers.d and tmpfiles.d create the user and the spool the daemon
# expects, and the files agree with the daemon's built-in defaults.  All
# of that works offline, inside a DESTDIR: nothing outside it is touched.
# Where systemd runs (and we are root), the units are also started for
# real under test names, socket-activated, and removed again.
: "${top_builddir:=$(cd "$(dirname "$0")/.." && pwd)/build}"
: "${top_srcdir:=$(cd "$(dirname "$0")/.." && pwd)}"
command -v systemd-analyze >/dev/null ||
	{ echo "SKIP: systemd-analyze missing"; exit 77; }
. "$top_srcdir/tests/integration/lib.sh"

root=$work/root
make -s -C "$top_builddir" install DESTDIR="$root" >"$work/install.out" 2>&1 ||
	{ echo "not ok - make install DESTDIR=... failed"; cat "$work/install.out"; exit 1; }

# Where things went: found in the tree, not re-derived from the Makefile.
unitdir=$(dirname "$(find "$root" -path '*/lib/systemd/system/sesrelayd.service')")
service=$unitdir/sesrelayd.service
socket=$unitdir/sesrelayd.socket
sysusers=$(find "$root" -path '*/lib/sysusers.d/sesrelay.conf')
tmpfiles=$(find "$root" -path '*/lib/tmpfiles.d/sesrelay.conf')
mandir=$(dirname "$(dirname "$(find "$root" -name sesrelayd.8)")")
for f in "$service" "$socket" "$sysusers" "$tmpfiles"; do
	check "${f#$root} installed" [ -f "$f" ]
done
[ -f "$service" ] && [ -f "$socket" ] || finish
check "no placeholder is left" bash -c "! grep -n '%[A-Z]*%' '$service' '$socket' '$sysusers' '$tmpfiles'"
exec_path=$(sed -n 's/^ExecStart=\([^ ]*\).*/\1/p' "$service")
check "ExecStart= runs the installed daemon ($exec_path)" [ -x "$root$exec_path" ]
sbindir=$(dirname "$exec_path")

# Values of a key in a unit, one per line.
unit_values() { sed -n "s/^$2=//p" "$1"; }
# The daemon's built-in value of a config key, from its -t dump.
printf 'username = "u";\npassword = "p";\n' >"$work/cred"
chmod 600 "$work/cred"
printf 'upstream = { credentials = "%s"; };\n' "$work/cred" >"$work/defaults.conf"
"$root$exec_path" -t -c "$work/defaults.conf" >"$work/defaults" 2>/dev/null
conf_raw() {
	awk -v key="$1" '
		/^[a-z_]+ = \{$/ { sec = $1; next }
		/^\};$/ { sec = ""; next }
		{ k = (sec ? sec "." : "") $1 }
		k == key { sub(/^[^=]*= /, ""); sub(/;$/, ""); print }' "$work/defaults"
}
conf_default() { conf_raw "$1" | tr -d '"'; }
conf_list() { conf_raw "$1" | grep -o '"[^"]*"' | tr -d '"'; }
has_line() { grep -qxF -- "$1" <<<"$2"; }

# ---- the files agree with the daemon ----
spool=$(conf_default spool)
check "the daemon reports its default spool ($spool)" [ -n "$spool" ]
check "ReadWritePaths= is the spool" [ "$(unit_values "$service" ReadWritePaths)" = "$spool" ]
check "tmpfiles.d creates the spool" grep -Eq "^d $spool +0710 sesrelay sesrelay-drop " "$tmpfiles"
check "sysusers.d gives sesrelay the spool as home" grep -Eq "^u sesrelay .* $spool " "$sysusers"
unix=$(conf_default listen.unix)
listen=$(unit_values "$socket" ListenStream)
check "the socket listens on listen.unix ($unix)" has_line "$unix" "$listen"
for a in $(conf_list listen.tcp); do
	check "the socket listens on $a (listen.tcp)" has_line "$a" "$listen"
done
control_dir=$(dirname "$(conf_default control.socket)")
check "RuntimeDirectory= holds the control socket ($control_dir)" \
	[ "/run/$(unit_values "$service" RuntimeDirectory)" = "$control_dir" ]
check "the service runs as sesrelay, not root" \
	[ "$(unit_values "$service" User)" = sesrelay ]

# ---- systemd-analyze verify and security (--root, --offline: 250) ----
sdver=$(systemd-analyze --version | awk 'NR == 1 { print $2 + 0 }')
if [ "${sdver:-0}" -ge 250 ]; then
	# verify: silent and successful.
	# verify --root= looks for ExecStart= inside the root, but it also needs
	# the targets the units pull in (sysinit.target, ...): the host's unit
	# directory is copied beside them, less any sesrelay unit it may have.
	for d in /usr/lib/systemd/system /lib/systemd/system; do
		if [ -f "$d/sysinit.target" ]; then
			mkdir -p "$root$d"
			(cd "$d" && tar cf - --exclude='sesrelay*' .) |
				tar xf - --skip-old-files -C "$root$d"
			break
		fi
	done
	# Under a prefix systemd does not search (/usr/local, distcheck's
	# _inst), the units are linked where it does: /etc/systemd/system.
	case ${unitdir#$root} in
	/lib/systemd/system|/usr/lib/systemd/system) ;;
	*)
		mkdir -p "$root/etc/systemd/system"
		cp "$service" "$socket" "$root/etc/systemd/system/"
		service=$root/etc/systemd/system/sesrelayd.service
		socket=$root/etc/systemd/system/sesrelayd.socket
		;;
	esac
	man_flag=--man=yes
	command -v man >/dev/null || { man_flag=--man=no; echo "# man missing: verify does not check Documentation="; }
	MANPATH=$mandir systemd-analyze verify "$man_flag" --root="$root" \
		"${service#$root}" "${socket#$root}" >"$work/verify.out" 2>&1
	rc=$?
	check "systemd-analyze verify exits 0" [ "$rc" -eq 0 ]
	check "systemd-analyze verify prints nothing" [ ! -s "$work/verify.out" ]
	sed 's/^/# /' "$work/verify.out"

	# security: 2.0 or better.
	systemd-analyze security --offline=true --root="$root" --threshold=20 \
		--no-pager "${service#$root}" >"$work/security.out" 2>&1
	rc=$?
	sed 's/^/# /' "$work/security.out"
	score=$(sed -n 's/.*Overall exposure level for sesrelayd.service: \([0-9.]*\).*/\1/p' "$work/security.out")
	check "systemd-analyze security gives a score ($score)" [ -n "$score" ]
	check "the exposure is 2.0 or better" awk -v s="${score:-99}" 'BEGIN { exit !(s <= 2.0) }'
	check "... and --threshold=20 agrees" [ "$rc" -eq 0 ]
else
	echo "SKIP: systemd-analyze $sdver has no verify --root nor security --offline (250 has)"
fi

# ---- sysusers.d and tmpfiles.d, applied to the DESTDIR only ----
mkdir -p "$root/etc"
if command -v systemd-sysusers >/dev/null; then
	systemd-sysusers --root="$root" "$sysusers" >"$work/sysusers.out" 2>&1
	check "systemd-sysusers --root accepts sysusers.d/sesrelay.conf" [ $? -eq 0 ]
	pw=$(grep '^sesrelay:' "$root/etc/passwd")
	IFS=: read -r _ _ uid gid _ home shell <<<"$pw"
	is_system_uid() { [ -n "$1" ] && [ "$1" -gt 0 ] && [ "$1" -lt 1000 ]; }
	check "it creates the system user sesrelay (uid $uid)" is_system_uid "$uid"
	check "... with its own primary group" grep -q "^sesrelay:x:$gid:" "$root/etc/group"
	check "... home $spool" [ "$home" = "$spool" ]
	check "... no login shell ($shell)" [ "${shell##*/}" = nologin ]
	check "it creates the group sesrelay-drop" grep -q '^sesrelay-drop:' "$root/etc/group"
else
	echo "SKIP: systemd-sysusers missing"
fi
if command -v systemd-tmpfiles >/dev/null && grep -q '^sesrelay:' "$root/etc/passwd" 2>/dev/null; then
	# Names are resolved in the root's passwd.  Only root may give the
	# directories away; others check that nothing else failed.
	systemd-tmpfiles --create --root="$root" "$tmpfiles" >"$work/tmpfiles.out" 2>&1
	rc=$?
	if [ "$(id -u)" -eq 0 ]; then
		check "systemd-tmpfiles --root --create applies tmpfiles.d/sesrelay.conf" [ "$rc" -eq 0 ]
	else
		check "systemd-tmpfiles --root --create fails only on chown (not root)" \
			bash -c "! grep -v 'fchownat() of .* failed: Operation not permitted' '$work/tmpfiles.out'"
	fi
	sed 's/^/# /' "$work/tmpfiles.out"
	drop=$(sed -n 's/^sesrelay-drop:x:\([0-9]*\):.*/\1/p' "$root/etc/group")
	while read -r dir mode group; do
		want="$mode $uid $group"
		[ "$(id -u)" -eq 0 ] || want=$mode
		fmt='%a %u %g'
		[ "$(id -u)" -eq 0 ] || fmt='%a'
		got=$(stat -c "$fmt" "$root$dir" 2>/dev/null)
		check "$dir is $want" [ "$got" = "$want" ]
	done <<EOF
$spool 710 $drop
$spool/queue 700 $gid
$spool/state 700 $gid
$spool/tmp 700 $gid
$spool/corrupt 700 $gid
$spool/maildrop 1730 $drop
$control_dir 755 $gid
EOF
	check "the spool is never cleaned (no age field)" awk -v s="$spool" '
		$2 ~ "^" s && $6 != "-" && $6 != "" { bad = 1 } END { exit bad }' "$tmpfiles"
else
	echo "SKIP: systemd-tmpfiles or the sesrelay user missing"
fi

# ---- for real, where systemd runs ----
pid1=$(cat /proc/1/comm 2>/dev/null)
if [ ! -d /run/systemd/system ]; then
	echo "SKIP: no systemd running (PID 1 is ${pid1:-unknown}): units not started"
	finish
fi
if [ "$(id -u)" -ne 0 ]; then
	echo "SKIP: starting system units needs root: units not started"
	finish
fi

# Test copies of the installed units, under names of their own, in
# /run/systemd/system (gone at reboot): the programs from the DESTDIR, a
# scratch config, free ports, nobody instead of sesrelay (no user is
# created on the host), and a 2 s watchdog, so that a daemon that does
# not ping is seen.  What the service must see lives under /run: the
# sandbox's PrivateTmp= hides this test's /tmp.
name=sesrelayd-test-$$
live=$(mktemp -d /run/sesrelay-test.XXXXXX)
chmod 755 "$live"
rt=/run/$name
units=/run/systemd/system
live_cleanup() {
	systemctl stop "$name.service" "$name.socket" >/dev/null 2>&1
	journalctl -q --no-pager -u "$name.service" -u "$name.socket" \
		>"$work/daemon-journal.log" 2>&1
	rm -f "$units/$name.service" "$units/$name.socket"
	systemctl daemon-reload
	systemctl reset-failed "$name.service" "$name.socket" >/dev/null 2>&1
	rm -rf "$live" "$rt"
}
extra_cleanup=live_cleanup

start_fake starttls
mkdir "$live/sbin"
cp "$root$sbindir/sesrelayd" "$root$sbindir/sesrelayctl" "$live/sbin/"
cp "$certs/ca.pem" "$live/ca.pem"
chmod 644 "$live/ca.pem"
umask 077
printf 'username = "AKIATESTUSER";\npassword = "BTestPassw0rd";\n' >"$live/credentials"
umask 022
port=$(free_port)
tcp_conf="\"127.0.0.1:$port\""
v6=no
if python3 -c "import socket; s=socket.socket(socket.AF_INET6); s.bind(('::1',$port))" 2>/dev/null; then
	v6=yes
	tcp_conf="$tcp_conf, \"[::1]:$port\""
fi
nobody_group=$(id -gn nobody)
mkdir -p "$live/spool"
chown nobody:"$nobody_group" "$live/spool"
chmod 700 "$live/spool"
cat >"$live/sesrelay.conf" <<CONF
hostname = "relay.test";
user = "";
listen = { tcp = [ $tcp_conf ]; unix = "$rt/smtp.sock"; };
spool = "$live/spool";
control = { socket = "$rt/control.sock"; };
upstream = {
  host = "localhost";
  port = $FAKE_PORT;
  tls = "starttls";
  ca_file = "$live/ca.pem";
  credentials = "$live/credentials";
  rate = 1000.0;
};
retry = { schedule = [ 1, 1, 2 ]; };
CONF
chmod 644 "$live/sesrelay.conf"
sed -e "s|^ExecStart=.*|ExecStart=$live/sbin/sesrelayd -f -c $live/sesrelay.conf|" \
    -e "s|^ExecReload=.*|ExecReload=$live/sbin/sesrelayctl -c $live/sesrelay.conf reload|" \
    -e "s|^User=.*|User=nobody|" -e "s|^Group=.*|Group=$nobody_group|" \
    -e "s|^LoadCredential=.*|LoadCredential=credentials:$live/credentials|" \
    -e "s|^RuntimeDirectory=.*|RuntimeDirectory=$name|" \
    -e "s|^ReadWritePaths=.*|ReadWritePaths=$live/spool|" \
    -e "s|^WatchdogSec=.*|WatchdogSec=2s|" \
    -e "s|sesrelayd\.socket|$name.socket|g" \
    "$service" >"$units/$name.service"
sed -e '/^ListenStream=/d' -e "s|^Service=.*|Service=$name.service|" \
    -e "s|^\[Socket\]|&\nListenStream=127.0.0.1:$port\nListenStream=$rt/smtp.sock|" \
    "$socket" >"$units/$name.socket"
[ "$v6" = yes ] && sed -i "s|^\[Socket\]|&\nListenStream=[::1]:$port|" "$units/$name.socket"
systemctl daemon-reload

show() { systemctl show -p "$2" --value "$1"; }
wait_state() {	# UNIT STATE [SECONDS]
	for _ in $(seq $((${3:-20} * 10))); do
		[ "$(show "$1" ActiveState)" = "$2" ] && return 0
		sleep 0.1
	done
	return 1
}
check "the test socket unit starts" systemctl start "$name.socket"
check "... and listens, with the service not yet started" \
	[ "$(show "$name.service" ActiveState)" = inactive ]
check "a connection starts the service (socket activation)" \
	quiet python3 "$tests/integration/smtpchat.py" --port "$port" /dev/stdin <<'EOF'
< 220
> QUIT
< 221
EOF
check "... which reports READY=1 (active)" wait_state "$name.service" active
mainpid=$(show "$name.service" MainPID)
status=/proc/$mainpid/status
check "the daemon runs as nobody, not root" \
	[ "$(awk '/^Uid:/ { print $2 }' "$status")" = "$(id -u nobody)" ]
check "... with no capabilities" grep -q '^CapEff:[[:space:]]*0*$' "$status"
check "... no new privileges" grep -q '^NoNewPrivs:[[:space:]]*1' "$status"
check "... and a seccomp filter" grep -q '^Seccomp:[[:space:]]*2' "$status"
check "mail over 127.0.0.1 is accepted" \
	smtpload --port "$port" --count 3 --messages "$work/sent"
check "... and relayed to SES from the sandbox" wait_delivered 3 30
check "the Unix socket of the socket unit answers" \
	quiet python3 "$tests/integration/smtpchat.py" --unix "$rt/smtp.sock" /dev/stdin <<'EOF'
< 220
> QUIT
< 221
EOF
if [ "$v6" = yes ]; then
	check "[::1] answers" quiet python3 "$tests/integration/smtpchat.py" --host ::1 --port "$port" /dev/stdin <<'EOF'
< 220
> QUIT
< 221
EOF
fi
check "STATUS= is set" [ -n "$(show "$name.service" StatusText)" ]
echo "# StatusText=$(show "$name.service" StatusText)"
sleep 5		# more than twice the 2 s watchdog
check "the watchdog is fed (still the same process after 5 s)" \
	[ "$(show "$name.service" MainPID)" = "$mainpid" ]
check "systemctl reload succeeds" systemctl reload "$name.service"
check "... and the listeners from systemd still answer after it" \
	smtpload --port "$port" --count 1 --start 4 --messages "$work/sent"
check "... same process" [ "$(show "$name.service" MainPID)" = "$mainpid" ]
check "the control socket works as the service user" \
	quiet setpriv --reuid=nobody --regid="$nobody_group" --clear-groups \
	"$live/sbin/sesrelayctl" -s "$rt/control.sock" stats
systemctl stop "$name.service" 2>/dev/null	# "can still be activated by the socket"
check "systemctl stop: the daemon exits cleanly" \
	[ "$(show "$name.service" Result)" = success ]
check "... and is gone" bash -c "! kill -0 $mainpid 2>/dev/null"
check "the socket unit still listens after the service stopped" \
	[ "$(show "$name.socket" ActiveState)" = active ]
systemctl stop "$name.socket"
check "stopping the socket unit removes the Unix socket" [ ! -S "$rt/smtp.sock" ]
live_cleanup
extra_cleanup=
check "no test unit is left" bash -c "! systemctl list-units --all --plain --no-legend '$name.*' | grep -q ."
finish
