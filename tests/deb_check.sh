#!/bin/bash
# tests/deb_check.sh: build the Debian package from a clean copy of the
# tree (the files git tracks, as they are now) with dpkg-buildpackage,
# and check what came out: the control fields (Provides, Conflicts and
# Replaces mail-transport-agent, Depends from shlibs), the file list
# (programs, the sendmail links, units, man pages, docs), the conffile,
# the set-group-ID sendmail (registered by the postinst with
# dpkg-statoverride: the group only exists once installed), and lintian
# (no error).  Installing it for real: tests/deb_install_chroot.sh.
#
# Self-contained and quiet: prints "ok - ..." / "not ok - ..." lines, the
# build log's tail when it fails; exit 0 pass, 1 fail, 77 skipped (no
# dpkg-buildpackage or debhelper).  KEEP_DEB=DIR: the .deb is copied
# there (for tests/deb_install_chroot.sh).  About 2 minutes on 2 idle cores
# (nocheck: the unit suites run elsewhere), lintian included.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
for tool in dpkg-buildpackage dh git; do
	command -v "$tool" >/dev/null 2>&1 || { echo "SKIP: $tool missing"; exit 77; }
done
[ -d "$top/.git" ] || [ -f "$top/.git" ] ||
	{ echo "SKIP: not a git checkout"; exit 77; }

work=$(mktemp -d "${TMPDIR:-/tmp}/deb_check.XXXXXX")
trap 'rm -rf "$work"' EXIT
failures=0
ok() { echo "ok - $*"; }
not_ok() { echo "not ok - $*"; failures=$((failures + 1)); }
check() { local d=$1; shift; if "$@"; then ok "$d"; else not_ok "$d"; fi; }
finish() { [ "$failures" -eq 0 ] && exit 0; echo "$failures check(s) failed"; exit 1; }

# The clean copy: tracked files (and new ones not ignored), no build dirs.
src=$work/sesrelay
mkdir "$src"
git -C "$top" ls-files -z --cached --others --exclude-standard |
	(cd "$top" && tar --null -T - --ignore-failed-read -cf - 2>/dev/null) |
	tar -xf - -C "$src"

start=$SECONDS
(cd "$src" && DEB_BUILD_OPTIONS="parallel=2 nocheck ${DEB_BUILD_OPTIONS:-}" \
	nice dpkg-buildpackage -b -us -uc) >"$work/build.log" 2>&1
rc=$?
version=$(cd "$src" && dpkg-parsechangelog -S Version)
arch=$(dpkg-architecture -qDEB_HOST_ARCH)
deb=$work/sesrelay_${version}_${arch}.deb
check "dpkg-buildpackage -b -us -uc makes ../sesrelay_${version}_${arch}.deb ($((SECONDS - start)) s)" \
	[ "$rc" -eq 0 -a -f "$deb" ]
[ -f "$deb" ] || { tail -n 30 "$work/build.log"; finish; }
[ -n "${KEEP_DEB:-}" ] && mkdir -p "$KEEP_DEB" && cp "$deb" "$KEEP_DEB/"
ac_version=$(sed -n 's/^AC_INIT(\[sesrelay\], \[\([^]]*\)\].*/\1/p' "$src/configure.ac")
check "its version is configure.ac's ($ac_version)" [ "$version" = "$ac_version" ]

# The control fields.
field() { dpkg-deb -f "$deb" "$1"; }
for f in Provides Conflicts Replaces; do
	check "$f: mail-transport-agent" [ "$(field $f)" = mail-transport-agent ]
done
depends=$(field Depends)
for lib in libc6 libevent-2.1 libevent-core libevent-openssl libssl3 \
    libconfig9 libidn2 libhiredis libsystemd0 adduser; do
	check "Depends names $lib" grep -q "\\b$lib" <<<"$depends"
done
check "Section: mail, Priority: optional" \
	[ "$(field Section) $(field Priority)" = "mail optional" ]

# The file list: "mode owner/group path[ -> target]".
dpkg-deb -c "$deb" | awk '{ $3 = $4 = $5 = ""; print }' | tr -s ' ' |
	sed 's| \./| /|; s|/$||' >"$work/files"
has() { grep -qxF -- "$1" "$work/files"; }
for p in sesrelayd sesrelay-sendmail sesrelayctl; do
	check "/usr/sbin/$p, 0755 root" has "-rwxr-xr-x root/root /usr/sbin/$p"
done
check "/usr/sbin/sendmail -> sesrelay-sendmail" \
	has "lrwxrwxrwx root/root /usr/sbin/sendmail -> sesrelay-sendmail"
for l in /usr/lib/sendmail /usr/bin/mailq /usr/bin/newaliases; do
	check "$l -> ../sbin/sesrelay-sendmail" \
		has "lrwxrwxrwx root/root $l -> ../sbin/sesrelay-sendmail"
done
check "no file set-user-ID or set-group-ID in the archive" \
	bash -c "! grep -q '^...[sS]\|^......[sS]' '$work/files'"
for f in /lib/systemd/system/sesrelayd.service /lib/systemd/system/sesrelayd.socket \
    /usr/lib/sysusers.d/sesrelay.conf /usr/lib/tmpfiles.d/sesrelay.conf \
    /usr/share/man/man8/sesrelayd.8.gz /usr/share/man/man8/sesrelay-sendmail.8.gz \
    /usr/share/man/man8/sesrelayctl.8.gz /usr/share/man/man5/sesrelay.conf.5.gz \
    /usr/share/doc/sesrelay/README.gz /usr/share/doc/sesrelay/copyright \
    /usr/share/doc/sesrelay/changelog.gz; do
	check "$f" has "-rw-r--r-- root/root $f"
done
for m in sendmail mailq newaliases; do
	check "man 8 $m is sesrelay-sendmail(8)" \
		has "lrwxrwxrwx root/root /usr/share/man/man8/$m.8.gz -> sesrelay-sendmail.8.gz"
done
check "no credentials in the package" bash -c "! grep -q credentials '$work/files'"

# The conffile, the maintainer scripts.
dpkg-deb -e "$deb" "$work/control"
dpkg-deb -x "$deb" "$work/root"
check "the one conffile is /etc/sesrelay/sesrelay.conf" \
	[ "$(cat "$work/control/conffiles")" = /etc/sesrelay/sesrelay.conf ]
check "... the shipped etc/sesrelay.conf, mode 0644" \
	bash -c "cmp -s '$src/etc/sesrelay.conf' '$work/root/etc/sesrelay/sesrelay.conf' &&
		grep -qxF -- '-rw-r--r-- root/root /etc/sesrelay/sesrelay.conf' '$work/files'"
for s in preinst postinst prerm postrm; do
	[ -f "$work/control/$s" ] && check "$s parses (sh -n)" sh -n "$work/control/$s"
done
postinst=$work/control/postinst
check "postinst makes sesrelay-sendmail set-group-ID sesrelay-drop (dpkg-statoverride, unless overridden)" \
	grep -q 'dpkg-statoverride --update --add root sesrelay-drop 2755' "$postinst"
check "postinst enables both units (dh_installsystemd)" \
	bash -c "grep -q 'deb-systemd-helper.*enable.*sesrelayd.service' '$postinst' &&
		grep -q 'deb-systemd-helper.*enable.*sesrelayd.socket' '$postinst'"
check "... starts nothing but after sesrelayd -t (no dh start snippet)" \
	bash -c "[ \$(grep -c 'deb-systemd-invoke' '$postinst') -eq 1 ] &&
		grep -B3 'deb-systemd-invoke restart sesrelayd.service' '$postinst' | grep -q 'sesrelayd -t'"
check "postrm removes /etc/sesrelay on purge" grep -q 'rm -rf /etc/sesrelay' "$work/control/postrm"
check "the unit runs /usr/sbin/sesrelayd" \
	grep -q '^ExecStart=/usr/sbin/sesrelayd ' "$work/root/lib/systemd/system/sesrelayd.service"
check "the packaged newaliases is the no-op, and says so" \
	bash -c "'$work/root/usr/bin/newaliases' 2>&1 | grep -q 'nothing to do'"

# lintian: no error (the warnings left are explained in
# debian/source/lintian-overrides and debian/sesrelay.lintian-overrides).
if command -v lintian >/dev/null; then
	changes=$work/sesrelay_${version}_${arch}.changes
	lintian --fail-on error "$changes" >"$work/lintian.out" 2>&1
	lrc=$?
	check "lintian: no error ($(grep -c '^W: ' "$work/lintian.out") warnings left)" [ "$lrc" -eq 0 ]
	grep '^[EW]: ' "$work/lintian.out"
else
	echo "# lintian missing: not run"
fi
finish
