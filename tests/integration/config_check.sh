#!/bin/bash
# sesrelayd -t: 0 and the effective settings for a good config; 78 with
# file, line and key for a broken one; credentials checked too.
. "$(dirname "$0")/lib.sh"

FAKE_PORT=587 FAKE_MODE=starttls write_conf
conf=$work/sesrelay.conf

"$sbin/sesrelayd" -t -c "$conf" >"$work/out" 2>"$work/err"
check "-t on a good config exits 0" [ $? -eq 0 ]
check "-t prints effective settings" grep -q '^  recycle_after_messages = 100;' "$work/out"
check "-t prints derived values" grep -q '^  tls = "starttls";  # effective: starttls' "$work/out"
check "-t prints every key" [ "$(grep -c ' = [^{]' "$work/out")" -ge 23 ]
cp "$work/out" "$work/dumped.conf"
"$sbin/sesrelayd" -t -c "$work/dumped.conf" >"$work/out2" 2>/dev/null
check "-t output is itself a valid config, and dumps the same" cmp -s "$work/out" "$work/out2"

# expect_config_error NAME EXPECTED-REGEX: run -t on $work/bad.conf
expect_config_error() {
	"$sbin/sesrelayd" -t -c "$work/bad.conf" >/dev/null 2>"$work/err"
	local rc=$?
	if [ $rc -eq 78 ] && grep -Eq -- "$2" "$work/err"; then
		ok "$1"
	else
		not_ok "$1 (exit $rc: $(cat "$work/err"))"
	fi
}

# A CA file that cannot be loaded: -t refuses it as start-up does.
FAKE_PORT=587 FAKE_MODE=starttls UP_CA=$work/no-such-ca.pem write_conf
for how in "-t" "-f"; do
	"$sbin/sesrelayd" $how -c "$conf" >/dev/null 2>"$work/err" &
	cpid=$!
	( sleep 10; kill "$cpid" 2>/dev/null ) & w=$!
	wait "$cpid"; rc=$?
	kill "$w" 2>/dev/null; wait "$w" 2>/dev/null
	check "sesrelayd $how: a missing upstream.ca_file is refused (78)" [ $rc -eq 78 ]
	check "... naming file, line, key and why" grep -Eq \
		"sesrelay\.conf:[0-9]+: upstream\.ca_file: .*no-such-ca\.pem: cannot load CA certificates: No such file" "$work/err"
done
FAKE_PORT=587 FAKE_MODE=starttls write_conf

printf 'upstream = {\n  region = "eu-west-1";\n  prot = 587;\n};\n' > "$work/bad.conf"
expect_config_error "unknown key: exit 78 naming file, line and key" \
	"bad\\.conf:3: upstream\\.prot: unknown key"
printf '\nupstream = {\n  port = 70000;\n};\n' > "$work/bad.conf"
expect_config_error "out of range" "bad\\.conf:3: upstream\\.port: value 70000 out of range"
printf 'max_message_size = "big";\n' > "$work/bad.conf"
expect_config_error "wrong type" "bad\\.conf:1: max_message_size: expects an integer"
printf 'listen = { tcp = [ "localhost:25" ]; };\n' > "$work/bad.conf"
expect_config_error "listen address must be numeric" "bad\\.conf:1: listen\\.tcp: .*numeric"
printf 'upstream = { tls = "ssl"; };\n' > "$work/bad.conf"
expect_config_error "bad enum" "upstream\\.tls: \"ssl\": expected"
printf 'spool = "/var/spool/x";\nupstream = { port = ; };\n' > "$work/bad.conf"
expect_config_error "syntax error names the line" "bad\\.conf:2: syntax error"
printf 'smtp = { timeout = 5; };\n' > "$work/bad.conf"
expect_config_error "below the minimum" "smtp\\.timeout: value 5 out of range"
printf 'nonsense = { a = 1; };\n' > "$work/bad.conf"
expect_config_error "unknown section" "bad\\.conf:1: nonsense: unknown section"

# Issue 10.15: past 2^31 without libconfig's L suffix the value would wrap
# (5000000000 read as 705032704): refused, naming file, line and key.
printf 'spool = "%s";\n\nspool_min_free = 5000000000;\n' "$work/spool" > "$work/bad.conf"
expect_config_error "an integer past 2^31 without L: 78" \
	"bad\\.conf:3: spool_min_free: 5000000000 does not fit a 32-bit integer.*write 5000000000L"
printf 'retry = { schedule = [ 5, 4294967301 ]; };\n' > "$work/bad.conf"
expect_config_error "a list element past 2^31: 78" "bad\\.conf:1: retry\\.schedule: 4294967301"
sed 's/^spool_min_free.*//' "$conf" > "$work/big.conf"
echo 'spool_min_free = 5000000000L;' >> "$work/big.conf"
"$sbin/sesrelayd" -t -c "$work/big.conf" >"$work/out" 2>"$work/err"
check "with the L suffix it is taken: 0" [ $? -eq 0 ]
check "and dumped with L, as read" grep -q '^spool_min_free = 5000000000L;' "$work/out"

"$sbin/sesrelayd" -t -c "$work/missing.conf" 2>"$work/err"
check "a missing config file: 78" [ $? -eq 78 ]

chmod 644 "$work/credentials"
"$sbin/sesrelayd" -t -c "$conf" >/dev/null 2>"$work/err"
rc=$?
check "world-readable credentials refused with 78" [ $rc -eq 78 ]
check "the message names the file and the mode" grep -q "credentials: mode 0644 is unsafe" "$work/err"
check "the password is not printed" bash -c "! grep -q BTestPassw0rd '$work/err'"
chmod 640 "$work/credentials"
"$sbin/sesrelayd" -t -c "$conf" >/dev/null 2>&1
check "0640 credentials accepted" [ $? -eq 0 ]
rm "$work/credentials"
"$sbin/sesrelayd" -t -c "$conf" >/dev/null 2>"$work/err"
check "missing credentials: 78" [ $? -eq 78 ]
check "the message names the credentials file" grep -q "credentials: cannot open" "$work/err"

"$sbin/sesrelayd" -x >/dev/null 2>&1
check "an unknown option: 64" [ $? -eq 64 ]
check "-v prints the version" bash -c "'$sbin/sesrelayd' -v | grep -q '^sesrelayd [0-9]'"
finish
