#!/bin/bash
# Docs are part of the feature: every config key the daemon knows is
# documented in sesrelay.conf(5) and shown in etc/sesrelay.conf, every
# log event in sesrelayd(8), and the man pages are mandoc -Tlint clean.
set -u
: "${top_builddir:=$(cd "$(dirname "$0")/.." && pwd)/build}"
: "${top_srcdir:=$(cd "$(dirname "$0")/.." && pwd)}"
command -v mandoc >/dev/null || { echo "SKIP: mandoc missing"; exit 77; }
failures=0
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The key list, from the daemon itself: the -t dump of the defaults.
printf 'username = "u";\npassword = "p";\n' >"$work/cred"
chmod 600 "$work/cred"
printf 'upstream = { credentials = "%s"; };\n' "$work/cred" >"$work/c.conf"
"$top_builddir/sesrelayd" -t -c "$work/c.conf" 2>/dev/null | awk '
	/^[a-z_]+ = \{$/ { sec = $1; next }
	/^\};$/ { sec = ""; next }
	/ = / { print (sec ? sec "." : "") $1 }' >"$work/keys"
n=$(wc -l <"$work/keys")
if [ "$n" -ge 20 ]; then echo "ok - the daemon reports $n keys"; else echo "not ok - only $n keys"; failures=$((failures + 1)); fi

while read -r key; do
	if grep -qx ".It Cm $key" "$top_srcdir/man/sesrelay.conf.5"; then
		echo "ok - $key is in sesrelay.conf(5)"
	else
		echo "not ok - $key is not documented in sesrelay.conf(5)"
		failures=$((failures + 1))
	fi
	leaf=${key##*.}
	if grep -Eq "^ *$leaf = " "$top_srcdir/etc/sesrelay.conf"; then
		echo "ok - $key is in etc/sesrelay.conf"
	else
		echo "not ok - $key is missing from etc/sesrelay.conf"
		failures=$((failures + 1))
	fi
done <"$work/keys"

# etc/sesrelay.conf itself is valid and equals the defaults.
"$top_builddir/sesrelayd" -t -c "$top_srcdir/etc/sesrelay.conf" >/dev/null 2>"$work/err"
if grep -q 'configuration is valid\|cannot open credentials' "$work/err"; then
	echo "ok - etc/sesrelay.conf parses"
else
	echo "not ok - etc/sesrelay.conf: $(cat "$work/err")"; failures=$((failures + 1))
fi

# Every log event the daemon can write is listed in sesrelayd(8),
# LOGGING: the event name of each log_event() and fatal() call.
python3 - "$top_srcdir" >"$work/events" <<'PY'
import glob, re, sys
events = set()
for path in glob.glob(sys.argv[1] + "/src/*.c"):
    text = open(path).read()
    events |= set(re.findall(r'\blog_event\([^;]*?"([a-z]+\.[a-z_]+)"', text, re.S))
    events |= set(re.findall(r'\bfatalx?\(\s*"([a-z]+\.[a-z_]+)"', text))
    # accept_backoff.c names its events after its listener's subsystem
    for e in re.findall(r'"%s\.(accept_[a-z_]+)"', text):
        events |= {"smtp." + e, "control." + e}
print("\n".join(sorted(events)))
PY
n=$(wc -l <"$work/events")
if [ "$n" -ge 50 ]; then echo "ok - the daemon logs $n events"; else echo "not ok - only $n events found in src/"; failures=$((failures + 1)); fi
while read -r ev; do
	if grep -Eq "^\.It Cm (.* )?${ev//./\\.}( |\$)" "$top_srcdir/man/sesrelayd.8"; then
		echo "ok - $ev is in sesrelayd(8)"
	else
		echo "not ok - $ev is not listed in sesrelayd(8), LOGGING"
		failures=$((failures + 1))
	fi
done <"$work/events"

out=$(cd "$top_srcdir" && mandoc -Tlint man/*.8 man/*.5 2>&1)
if [ -z "$out" ]; then echo "ok - mandoc -Tlint is clean"; else echo "not ok - mandoc -Tlint:"; echo "$out"; failures=$((failures + 1)); fi
[ "$failures" -eq 0 ]
