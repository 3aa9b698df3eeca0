#!/bin/bash
# make install with DESTDIR puts the programs, the sendmail links, the
# config, the man pages and the systemd unit where Debian expects them.
. "$(dirname "$0")/lib.sh"

root=$work/root
# As root, the maildrop's group exists and stays while this runs (other
# tests make and remove it), so the setgid install is what is checked.
[ "$(id -u)" -eq 0 ] && command -v groupadd >/dev/null && need_drop_group
make -s -C "$top_builddir" install DESTDIR="$root" >"$work/install.out" 2>&1
check "make install DESTDIR=... succeeds" [ $? -eq 0 ]
prefix=$(sed -n 's/^prefix = //p' "$top_builddir/Makefile")
sysconfdir=$(sed -n 's/^sysconfdir = //p' "$top_builddir/Makefile" | sed "s|\${prefix}|$prefix|")
for p in sbin/sesrelayd sbin/sesrelay-sendmail sbin/sesrelayctl; do
	check "$p installed" [ -x "$root$prefix/$p" ]
done
check "sendmail links to sesrelay-sendmail" [ "$(readlink "$root$prefix/sbin/sendmail")" = sesrelay-sendmail ]
check "mailq links to it" [ -x "$root$prefix/bin/mailq" ]
check "newaliases links to it" [ -x "$root$prefix/bin/newaliases" ]
check "the installed newaliases is the no-op" bash -c "'$root$prefix/bin/newaliases' | grep -q 'nothing to do'"
check "the config is installed" [ -f "$root$sysconfdir/sesrelay/sesrelay.conf" ]
for m in man8/sesrelayd.8 man8/sesrelay-sendmail.8 man8/sesrelayctl.8 man5/sesrelay.conf.5; do
	check "$m installed" [ -f "$root$prefix/share/man/$m" ]
done
unit=$root$prefix/lib/systemd/system/sesrelayd.service
check "the systemd unit is installed" [ -f "$unit" ]
check "the unit runs the installed daemon" grep -q "^ExecStart=$prefix/sbin/sesrelayd -f" "$unit"
check "no placeholder is left in the unit" bash -c "! grep -q '%[A-Z]*%' '$unit'"
all_files() { for f; do [ -f "$f" ] || return 1; done; }
check "the socket unit, sysusers.d and tmpfiles.d entries are installed" \
	all_files "$root$prefix/lib/systemd/system/sesrelayd.socket" \
	"$root$prefix/lib/sysusers.d/sesrelay.conf" \
	"$root$prefix/lib/tmpfiles.d/sesrelay.conf"
# (tests/systemd_check.sh verifies the units with systemd-analyze.)
if getent group sesrelay-drop >/dev/null; then
	check "sesrelay-sendmail is set-group-ID sesrelay-drop" \
		[ "$(stat -c '%G %a' "$root$prefix/sbin/sesrelay-sendmail")" = "sesrelay-drop 2755" ]
else
	check "without the group, install says so" grep -q "is not set-group-ID sesrelay-drop" "$work/install.out"
fi

# An upgrade keeps the configuration in use.
echo '# mine' >>"$root$sysconfdir/sesrelay/sesrelay.conf"
make -s -C "$top_builddir" install DESTDIR="$root" >"$work/install2.out" 2>&1
check "a second install keeps the edited configuration" grep -q '^# mine' "$root$sysconfdir/sesrelay/sesrelay.conf"
check "... and puts the new default next to it" [ -f "$root$sysconfdir/sesrelay/sesrelay.conf.dist" ]
make -s -C "$top_builddir" uninstall DESTDIR="$root" >/dev/null 2>&1
check "uninstall removes the links" [ ! -e "$root$prefix/sbin/sendmail" ]
check "uninstall keeps an edited configuration" [ -f "$root$sysconfdir/sesrelay/sesrelay.conf" ]
check "... and removes the .dist" [ ! -e "$root$sysconfdir/sesrelay/sesrelay.conf.dist" ]
finish
