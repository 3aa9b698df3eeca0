#!/bin/bash
# tests/deb_install_chroot.sh DEB: install the package the way a
# sysadmin would, in a fresh minimal Debian (debootstrap, bookworm) with
# Postfix installed and configured (Internet Site, which writes
# /etc/mailname): "apt-get install ./sesrelay_*.deb" must remove Postfix,
# make the users, the spool with the modes of the tmpfiles.d file and the
# set-group-ID sendmail, not start the daemon and say in one line what to
# configure; sendmail run by an unprivileged user then exits 0 with the
# message in the maildrop (its sender qualified with /etc/mailname);
# bsd-mailx pulls in no other MTA; once configured (a fake SES on the
# host's loopback), sesrelayd -t passes and the daemon relays that
# message; the edited conffile survives a reinstall; "apt-get purge
# sesrelay" leaves no /etc/sesrelay, and the spool only if mail is in it.
# Then the same install again with systemd installed (not running):
# users by systemd-sysusers, directories by systemd-tmpfiles, units
# enabled, and purge removes their links.  Last, the package is built in
# the chroot with only its Build-Depends (apt-get build-dep ./; NO_BUILD=1
# skips that).  About 10 minutes.
#
# Not in CI (it needs root, a network mirror and a few minutes).  Run as
# root:
#     KEEP_DEB=/tmp/debs bash tests/deb_check.sh   # builds, keeps the .deb
#     bash tests/deb_install_chroot.sh /tmp/debs/sesrelay_*_amd64.deb
# MIRROR (default http://deb.debian.org/debian), SUITE (bookworm) and
# DEBOOTSTRAP_CACHE (a directory for the downloaded packages, to run it
# again faster) may be set.  The chroot lives in a scratch directory under
# $TMPDIR; its /proc is unmounted and the directory removed at exit.
# No service starts in it (policy-rc.d), and it shares the host's
# network: nothing binds a port.
set -u
deb=${1:?usage: deb_install_chroot.sh sesrelay_VERSION_ARCH.deb}
deb=$(readlink -f "$deb")
[ "$(id -u)" -eq 0 ] || { echo "SKIP: needs root"; exit 77; }
command -v debootstrap >/dev/null || { echo "SKIP: debootstrap missing"; exit 77; }
mirror=${MIRROR:-http://deb.debian.org/debian}
suite=${SUITE:-bookworm}

tests=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/deb_chroot.XXXXXX")
root=$work/root
pids=()
cleanup() {
	local m p
	for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
	# Everything mounted below the chroot, deepest first, then the tree.
	for m in $(awk -v r="$root" 'index($2, r) == 1 { print $2 }' /proc/mounts | sort -r); do
		umount -l "$m"
	done
	if awk -v r="$root" 'index($2, r) == 1 { found = 1 } END { exit !found }' /proc/mounts; then
		echo "# still mounted below $root: not removed"
	else
		rm -rf "$work"
	fi
}
trap cleanup EXIT
trap 'exit 1' HUP INT TERM
failures=0
ok() { echo "ok - $*"; }
not_ok() { echo "not ok - $*"; failures=$((failures + 1)); }
check() { local d=$1; shift; if "$@"; then ok "$d"; else not_ok "$d"; fi; }
finish() { [ "$failures" -eq 0 ] && exit 0; echo "$failures check(s) failed"; exit 1; }
in_root() { chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin \
	DEBIAN_FRONTEND=noninteractive LC_ALL=C.UTF-8 "$@"; }
apt_get() { in_root apt-get -y -q -o Dpkg::Use-Pty=0 --no-install-recommends "$@"; }
# apt-get in the chroot's /tmp, where the .deb is: "apt-get install ./x.deb".
apt_get_here() {
	in_root sh -c 'cd /tmp && exec apt-get -y -q -o Dpkg::Use-Pty=0 --no-install-recommends "$@"' \
		apt-get "$@"
}
installed() { [ "$(in_root dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null)" = installed ]; }
not_installed() { ! installed "$1"; }
not() { ! "$@"; }
quiet() { "$@" >/dev/null; }
# Is sesrelay still installed, and none of the packages named an MTA?
no_new_mta() {
	local p
	installed sesrelay || return 1
	for p; do
		in_root dpkg-query -W -f='${Provides}\n' "$p" |
			grep -q mail-transport-agent && return 1
	done
	return 0
}
# Is a sesrelayd running in the chroot?
daemon_in_root() {
	local p
	for p in $(pgrep -x sesrelayd); do
		[ "$(readlink "/proc/$p/root")" = "$root" ] && return 0
	done
	return 1
}
# Is file $2 (a host path) owned by the chroot's user $1?
owner_is() { [ -n "$2" ] && [ "$(stat -c %u "$2")" = "$(in_root id -u "$1")" ]; }
packages() { in_root dpkg-query -W -f='${db:Status-Status} ${Package}\n' | sed -n 's/^installed //p' | sort; }

start=$SECONDS
cache=()
[ -n "${DEBOOTSTRAP_CACHE:-}" ] && mkdir -p "$DEBOOTSTRAP_CACHE" &&
	cache=(--cache-dir="$(readlink -f "$DEBOOTSTRAP_CACHE")")
if ! debootstrap --variant=minbase "${cache[@]}" "$suite" "$root" "$mirror" \
    >"$work/debootstrap.log" 2>&1; then
	tail -n 20 "$work/debootstrap.log"
	not_ok "debootstrap $suite"
	finish
fi
ok "debootstrap --variant=minbase $suite ($((SECONDS - start)) s)"
mount -t proc proc "$root/proc"
printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
chmod 755 "$root/usr/sbin/policy-rc.d"
cp /etc/resolv.conf "$root/etc/resolv.conf"
echo "deb $mirror $suite main" >"$root/etc/apt/sources.list"

# Postfix as a sysadmin leaves it: Internet Site, with a mail name.
in_root debconf-set-selections <<'EOF'
postfix postfix/main_mailer_type select Internet Site
postfix postfix/mailname string host.example.org
EOF
apt_get update >"$work/apt.log" 2>&1
apt_get install postfix >>"$work/apt.log" 2>&1
check "Postfix installed first" installed postfix
check "... which wrote /etc/mailname" [ "$(cat "$root/etc/mailname" 2>/dev/null)" = host.example.org ]

cp "$deb" "$root/tmp/"
echo "--- apt-get install ./$(basename "$deb")"
apt_get_here install "./$(basename "$deb")" >"$work/install.out" 2>&1
rc=$?
grep -E '^The following|^  [a-z]|^Removing|^Setting up sesrelay|^sesrelay:|^[EW]:' "$work/install.out"
echo "---"
check "apt-get install ./sesrelay_*.deb succeeds without credentials" [ $rc -eq 0 ]
check "sesrelay installed" installed sesrelay
check "Postfix removed" not_installed postfix
check "one line says what to configure" \
	[ "$(grep -c '^sesrelay: not started until configured: .*/etc/sesrelay/credentials' "$work/install.out")" -eq 1 ]
check "no daemon running" not daemon_in_root

# The users, the spool, the set-group-ID sendmail.
check "user sesrelay: $(in_root getent passwd sesrelay)" quiet in_root getent passwd sesrelay
check "group sesrelay-drop: $(in_root getent group sesrelay-drop)" quiet in_root getent group sesrelay-drop
tmpfiles=$root/usr/lib/tmpfiles.d/sesrelay.conf
while read -r type path mode user group age; do
	[ "$type" = d ] || continue
	[ "${mode:0:1}" = 0 ] || mode=0$mode
	got=$(chroot "$root" stat -c '%04a %U %G' "$path" 2>&1)
	check "$path: $mode $user $group (tmpfiles.d)" [ "$got" = "${mode: -4} $user $group" ]
done <"$tmpfiles"
check "sesrelay-sendmail: 2755 root sesrelay-drop" \
	[ "$(chroot "$root" stat -c '%a %U %G' /usr/sbin/sesrelay-sendmail)" = "2755 root sesrelay-drop" ]
check "... through dpkg-statoverride" [ "$(in_root dpkg-statoverride --list /usr/sbin/sesrelay-sendmail)" = \
	"root sesrelay-drop 2755 /usr/sbin/sesrelay-sendmail" ]
for l in /usr/sbin/sendmail /usr/lib/sendmail /usr/bin/mailq /usr/bin/newaliases; do
	check "$l is sesrelay-sendmail" [ "$(readlink -f "$root$l")" = "$root/usr/sbin/sesrelay-sendmail" ]
done
check "newaliases exits 0 and says it does nothing" bash -c "chroot '$root' newaliases | grep -q 'nothing to do'"

# sendmail as an unprivileged user, the daemon not configured.
in_root useradd -m tester
msg='Subject: from the chroot

Sent by tester before sesrelay was configured.'
printf '%s\n' "$msg" | in_root runuser -u tester -- /usr/sbin/sendmail ops@example.net \
	>"$work/sendmail.out" 2>&1
rc=$?
cat "$work/sendmail.out"
check "sendmail as tester (unprivileged) exits 0" [ $rc -eq 0 ]
drop=$root/var/spool/sesrelay/maildrop
files=$(find "$drop" -type f | wc -l)
check "one message in the maildrop" [ "$files" -eq 1 ]
f=$(find "$drop" -type f | head -n 1)
check "... owned by tester" owner_is tester "$f"
check "... with the body as sent" grep -q 'Sent by tester before sesrelay was configured.' "$f"
# tester is tester@host.example.org, by /etc/mailname: without it, a
# sender with no domain is one SES could never take, refused (exit 77).
greeting=$(printf 'QUIT\r\n' | in_root runuser -u tester -- /usr/sbin/sendmail -bs | sed -n 1p)
check "sendmail -bs greets as the mail name ($greeting)" \
	[ "${greeting%$'\r'}" = "220 host.example.org ESMTP sesrelay" ]
mv "$root/etc/mailname" "$root/etc/mailname.away"
printf '%s\n' "$msg" | in_root runuser -u tester -- /usr/sbin/sendmail ops@example.net \
	>"$work/sendmail2.out" 2>&1
rc=$?
mv "$root/etc/mailname.away" "$root/etc/mailname"
check "without /etc/mailname, tester's mail is refused at once: exit 77" [ $rc -eq 77 ]
check "... saying why" grep -q 'not a sender Amazon SES can accept' "$work/sendmail2.out"

# A mail user agent needing an MTA is satisfied by sesrelay.
packages >"$work/before"
apt_get install bsd-mailx >"$work/mailx.out" 2>&1
check "bsd-mailx installs" installed bsd-mailx
packages >"$work/after"
new=$(comm -13 "$work/before" "$work/after" | tr '\n' ' ')
echo "# bsd-mailx brought: $new"
check "bsd-mailx pulled in no other MTA (sesrelay still there, nothing new provides one)" \
	no_new_mta $new

# Configured as the README says (a fake SES on the host's loopback
# stands for the region's endpoint): sesrelayd -t passes, and the daemon,
# started by hand (no systemd in a chroot), takes in what tester left in
# the maildrop and relays it, from tester@<mail name>.
sh "$tests/mkcerts.sh" "$work/certs" >/dev/null
python3 "$tests/fake_ses.py" --listen 127.0.0.1 --port 0 --port-file "$work/fake.port" \
	--tls starttls --cert "$work/certs/server.pem" --key "$work/certs/server.key" \
	--record "$work/ses" --user AKIATESTUSER --password BTestPassw0rd \
	--log "$work/fake.log" 2>"$work/fake.err" &
pids+=($!)
for _ in $(seq 100); do [ -s "$work/fake.port" ] && break; sleep 0.1; done
smtp_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cp "$work/certs/ca.pem" "$root/etc/sesrelay/ca.pem"
cat >"$root/etc/sesrelay/sesrelay.conf" <<CONF
# edited: the test's fake SES stands for the region
listen = { tcp = [ "127.0.0.1:$smtp_port" ]; };
upstream = { host = "localhost"; port = $(cat "$work/fake.port"); tls = "starttls";
             ca_file = "/etc/sesrelay/ca.pem"; };
CONF
(umask 077; printf 'username = "AKIATESTUSER";\npassword = "BTestPassw0rd";\n' \
	>"$root/etc/sesrelay/credentials")
grep -q localhost "$root/etc/hosts" 2>/dev/null || echo '127.0.0.1 localhost' >>"$root/etc/hosts"
check "configured, sesrelayd -t passes" quiet in_root sesrelayd -t
chroot "$root" /usr/sbin/sesrelayd -f >"$work/daemon.log" 2>&1 &
daemon=$!
pids+=($daemon)
for _ in $(seq 300); do ls "$work/ses"/*.json >/dev/null 2>&1 && break; sleep 0.1; done
check "the daemon relays the message from the maildrop" \
	[ "$(ls "$work/ses"/*.json 2>/dev/null | wc -l)" -eq 1 ]
check "... from tester@host.example.org to ops@example.net" \
	grep -q '"mail_from": "tester@host.example.org".*ops@example.net' "$work"/ses/*.json
check "... with From: tester@host.example.org and the body" \
	bash -c "grep -q '^From: tester@host.example.org' '$work'/ses/*.eml &&
		grep -q 'Sent by tester before sesrelay was configured' '$work'/ses/*.eml"
# (tmp/ has the files a running daemon makes ready: not mail.)
mail_left() { find "$root/var/spool/sesrelay/"{queue,maildrop,corrupt} -type f; }
for _ in $(seq 100); do [ -z "$(mail_left)" ] && break; sleep 0.1; done
check "... and no mail is left in the spool: $(mail_left | tr '\n' ' ')" [ -z "$(mail_left)" ]
kill -TERM "$daemon"
wait "$daemon"
check "the daemon stops on SIGTERM, exit 0" [ $? -eq 0 ]
[ "$failures" -eq 0 ] || tail -n 20 "$work/daemon.log"

# The configuration (a conffile, edited) survives a reinstall, which now
# has nothing to say.
apt_get_here install --reinstall "./$(basename "$deb")" >"$work/reinstall.out" 2>&1
check "an edited conffile survives a reinstall" grep -q '^# edited' "$root/etc/sesrelay/sesrelay.conf"
check "... and, configured, no 'not started' line" not grep -q 'not started' "$work/reinstall.out"

# Mail waiting in the maildrop when the package is purged.
printf '%s\n' "$msg" | in_root runuser -u tester -- /usr/sbin/sendmail ops@example.net
f=$(find "$drop" -type f | head -n 1)

# Purge: no /etc/sesrelay; the spool only once empty.
apt_get purge sesrelay >"$work/purge1.out" 2>&1
check "apt-get purge sesrelay succeeds" [ $? -eq 0 ]
check "no /etc/sesrelay after purge (credentials included)" [ ! -e "$root/etc/sesrelay" ]
check "nothing of sesrelay left under /etc" \
	bash -c "! find '$root/etc' -name '*sesrelay*' ! -path '*/passwd*' ! -path '*/group*' ! -path '*/shadow*' ! -path '*/gshadow*' | grep -q ."
check "the spool holding mail is kept, and purge says so" \
	bash -c "[ -f '$f' ] && grep -q 'kept /var/spool/sesrelay: it still holds mail' '$work/purge1.out'"
check "the set-group-ID override is gone" \
	not in_root dpkg-statoverride --list /usr/sbin/sesrelay-sendmail
rm -f "$f"
apt_get_here install "./$(basename "$deb")" >"$work/install2.out" 2>&1
# What a daemon killed with -9 leaves in tmp/ is not mail.
touch "$root/var/spool/sesrelay/tmp/6b0fcf3d403707e9c015b5c12945f3b5"
apt_get purge sesrelay >"$work/purge2.out" 2>&1
check "a second install and purge: the spool without mail is removed (tmp/ had a file)" \
	[ ! -e "$root/var/spool/sesrelay" ]
check "... and /etc/sesrelay again" [ ! -e "$root/etc/sesrelay" ]

# With systemd installed (not running: a chroot), the users come from
# systemd-sysusers and the directories from systemd-tmpfiles, the same.
apt_get install systemd >"$work/systemd.out" 2>&1
check "systemd installed in the chroot" installed systemd
in_root userdel sesrelay
in_root groupdel sesrelay-drop 2>/dev/null
apt_get_here install "./$(basename "$deb")" >"$work/install3.out" 2>&1
check "install with systemd-sysusers present succeeds" [ $? -eq 0 ]
check "user sesrelay (sysusers): $(in_root getent passwd sesrelay)" quiet in_root getent passwd sesrelay
check "group sesrelay-drop (sysusers): $(in_root getent group sesrelay-drop)" quiet in_root getent group sesrelay-drop
check "the maildrop: 1730 sesrelay sesrelay-drop (systemd-tmpfiles)" \
	[ "$(in_root stat -c '%a %U %G' /var/spool/sesrelay/maildrop)" = "1730 sesrelay sesrelay-drop" ]
check "both units enabled (dh_installsystemd)" \
	[ -L "$root/etc/systemd/system/multi-user.target.wants/sesrelayd.service" -a \
	  -L "$root/etc/systemd/system/sockets.target.wants/sesrelayd.socket" ]
printf '%s\n' "$msg" | in_root runuser -u tester -- /usr/sbin/sendmail ops@example.net
check "sendmail as tester: exit 0" [ $? -eq 0 ]
rm -f "$root"/var/spool/sesrelay/maildrop/*
apt_get purge sesrelay >"$work/purge3.out" 2>&1
check "purge: no /etc/sesrelay, no unit links, no spool" \
	bash -c "[ ! -e '$root/etc/sesrelay' ] && [ ! -e '$root/var/spool/sesrelay' ] &&
		! find '$root/etc/systemd' -name 'sesrelayd*' | grep -q ."

# Last (it adds compilers to the chroot): Build-Depends names every build
# dependency: "apt-get build-dep ./" in a clean copy of the tree, then
# dpkg-buildpackage -b -us -uc, unit suites included.  NO_BUILD=1: skip.
if [ -z "${NO_BUILD:-}" ] && git -C "$tests/.." rev-parse --git-dir >/dev/null 2>&1; then
	mkdir -p "$root/src/sesrelay"
	git -C "$tests/.." ls-files -z | (cd "$tests/.." && tar --null -T - -cf -) |
		tar -xf - -C "$root/src/sesrelay"
	in_root sh -c 'cd /src/sesrelay && apt-get -y -q --no-install-recommends build-dep ./' \
		>"$work/build-dep.out" 2>&1
	check "apt-get build-dep ./ installs the Build-Depends" [ $? -eq 0 ]
	t0=$SECONDS
	in_root sh -c 'cd /src/sesrelay && DEB_BUILD_OPTIONS=parallel=2 nice dpkg-buildpackage -b -us -uc' \
		>"$work/build.out" 2>&1
	rc=$?
	check "dpkg-buildpackage -b -us -uc with only those, unit suites run ($((SECONDS - t0)) s)" \
		[ $rc -eq 0 -a -f "$root/src/$(basename "$deb")" ]
	[ $rc -eq 0 ] || tail -n 30 "$work/build.out"
	grep -E '^# (TOTAL|PASS|FAIL):' "$work/build.out"
fi
echo "# $((SECONDS - start)) s in all"
finish
