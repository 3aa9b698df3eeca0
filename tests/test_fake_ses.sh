#!/bin/bash
# test_fake_ses.sh - self-test of the fake SES server (tests/fake_ses.py), using swaks.
#
# Exercises both TLS modes, AUTH LOGIN/PLAIN, wrong credentials, AUTH before
# STARTTLS, a wrong CA, a fault rule, and checks what was recorded byte for byte.
# Exit status: 0 = pass, 1 = fail, 77 = skipped (swaks/openssl/python3 missing).
set -u

here=$(cd "$(dirname "$0")" && pwd)
for tool in swaks openssl python3; do
    command -v "$tool" >/dev/null 2>&1 || { echo "SKIP: $tool not installed"; exit 77; }
done

work=$(mktemp -d "${TMPDIR:-/tmp}/test_fake_ses.XXXXXX")
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
    [ -n "${KEEP:-}" ] || rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 1' HUP INT TERM

failed=0
pass() { echo "ok - $1"; }
fail() { echo "not ok - $1"; failed=1; }
# check DESCRIPTION COMMAND...: pass if COMMAND succeeds
check() { local d=$1; shift; if "$@"; then pass "$d"; else fail "$d"; fi; }
# absent REGEX FILE: no line of FILE matches
absent() { ! grep -Eq -- "$1" "$2"; }
# json_is FILE PYTHON-EXPR: the expression over the parsed JSON `j` is true
json_is() { python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); sys.exit(0 if eval("(" + sys.argv[2] + ")") else 1)' "$1" "$2"; }
# json_get FILE KEY
json_get() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2"; }
# no_secrets LOG: the transcript never shows AUTH payloads or passwords
no_secrets() {
    python3 - "$1" <<'EOF'
import re, sys
lines = [l.split(" ", 1)[1] for l in open(sys.argv[1]).read().splitlines()]
bad = [l for l in lines if "secret" in l or "wrong" in l]
bad += [l for l in lines if re.match(r"< AUTH \S+ (?!<auth data>$)", l)]
bad += [b for a, b in zip(lines, lines[1:]) if a.startswith("> 334") and b != "< <auth data>"]
sys.exit(1 if bad else 0)
EOF
}

"$here/mkcerts.sh" "$work/certs" || { echo "mkcerts.sh failed"; exit 1; }
certs=$work/certs

# start_fake NAME MODE: start a fake in TLS mode MODE; sets $port and $fake_pid.
start_fake() {
    local name=$1 mode=$2
    python3 "$here/fake_ses.py" --listen 127.0.0.1 --port 0 --port-file "$work/$name.port" \
        --tls "$mode" --cert "$certs/server.pem" --key "$certs/server.key" \
        --record "$work/$name" --user AKIATEST --password secret \
        --faults "$work/$name.faults.json" --log "$work/$name.log" \
        --pid-file "$work/$name.pid" 2>>"$work/$name.err" &
    fake_pid=$!
    pids+=("$fake_pid")
    for _ in $(seq 50); do [ -s "$work/$name.port" ] && break; sleep 0.1; done
    [ -s "$work/$name.port" ] || { echo "fake_ses ($name) did not start:"; cat "$work/$name.err"; exit 1; }
    port=$(cat "$work/$name.port")
}

# stop_fake: SIGTERM the last fake started; it must exit 0 promptly.
stop_fake() {
    kill -TERM "$fake_pid"
    local rc=0
    wait "$fake_pid" || rc=$?
    check "fake exits 0 on SIGTERM" test "$rc" -eq 0
}

# sw NAME ARGS...: run swaks against $port, output in $work/NAME.out; returns swaks' status.
sw() {
    local name=$1; shift
    timeout 10 swaks --server 127.0.0.1 --port "$port" --helo relay.test \
        --from sender@example.com --to rcpt1@example.org,rcpt2@example.org \
        --auth-user AKIATEST --auth-password secret "$@" >"$work/$name.out" 2>&1
}

# A message with lines that need dot-stuffing and 8-bit bytes.  swaks stuffs the
# dots and ends the data with CRLF "." CRLF, so the fake records MSG + CRLF.
printf 'From: sender@example.com\r\nSubject: fake_ses self-test\r\n\r\n.one dot\r\n..two dots\r\n.\r\n\xc3\xa9t\xe9 8-bit \xff\r\nlast line\r\n' >"$work/msg.eml"
{ cat "$work/msg.eml"; printf '\r\n'; } >"$work/expected.eml"

# ---- STARTTLS mode (port 587 style) ----------------------------------------
start_fake st starttls
sw st-ok --tls --tls-verify --tls-ca-path "$certs/ca.pem" --auth LOGIN --data "@$work/msg.eml"
check "starttls: swaks delivers" test $? -eq 0
check "starttls: 250 Ok <SES-like id>" \
    grep -Eq '^<~ +250 Ok 0100[0-9a-f]{12}-[0-9a-f-]{36}-000000$' "$work/st-ok.out"
check "starttls: no STARTTLS advertised after TLS" absent '^<~ *250-STARTTLS' "$work/st-ok.out"
check "starttls: message recorded byte for byte" cmp -s "$work/expected.eml" "$work/st/000001.eml"
check "starttls: metadata recorded" json_is "$work/st/000001.json" \
    'j["seq"] == 1 and j["conn"] == 1 and j["mail_from"] == "sender@example.com"
     and j["rcpt_to"] == ["rcpt1@example.org", "rcpt2@example.org"] and j["tls"] is True
     and j["auth_user"] == "AKIATEST" and j["size"] == '"$(wc -c <"$work/expected.eml")"
check "starttls: recorded ses_id is the one in the 250 reply" \
    grep -qF "250 Ok $(json_get "$work/st/000001.json" ses_id)" "$work/st-ok.out"

sw st-badpw --tls --auth PLAIN --auth-password wrong --data "@$work/msg.eml"
check "starttls: wrong password fails" test $? -ne 0
check "starttls: wrong password gets 535" \
    grep -Eq '^<[-~*]{1,2} +535 Authentication Credentials Invalid$' "$work/st-badpw.out"

sw st-notls --auth PLAIN --data "@$work/msg.eml"
check "starttls: AUTH before STARTTLS fails" test $? -ne 0
check "starttls: AUTH before STARTTLS gets 530" \
    grep -Eq '^<[-~*]{1,2} +530 Must issue a STARTTLS command first$' "$work/st-notls.out"

check "starttls: only the good message was recorded" \
    test "$(ls "$work/st" | grep -c '\.eml$')" -eq 1
check "transcript never shows credentials" no_secrets "$work/st.log"
stop_fake
check "connections.log has open/close lines" \
    grep -qx 'conn=1 closed messages=1' "$work/st/connections.log"

# ---- TLS wrapper mode (port 465 style) -------------------------------------
start_fake wr wrapper
sw wr-ok --tls-on-connect --tls-verify --tls-ca-path "$certs/ca.pem" --auth PLAIN \
    --data "@$work/msg.eml"
check "wrapper: swaks delivers" test $? -eq 0
check "wrapper: message recorded byte for byte" cmp -s "$work/expected.eml" "$work/wr/000001.eml"
check "wrapper: metadata recorded" json_is "$work/wr/000001.json" \
    'j["tls"] is True and j["auth_user"] == "AKIATEST" and j["rcpt_to"] == ["rcpt1@example.org", "rcpt2@example.org"]'

sw wr-badca --tls-on-connect --tls-verify --tls-ca-path "$certs/other-ca.pem" --auth PLAIN
check "wrapper: certificate from another CA is rejected" test $? -ne 0
check "wrapper: TLS failure logged" grep -q '^conn=2 tls_error=' "$work/wr/connections.log"

# A throttling fault that fires once: first message 454, second accepted.
printf '{"rules": [{"step": "dot", "reply": "454 Throttling failure: Maximum sending rate exceeded", "count": 1}]}\n' \
    >"$work/wr.faults.json"
sw wr-f1 --tls-on-connect --auth LOGIN --data "@$work/msg.eml"
check "fault: first message throttled" test $? -ne 0
check "fault: 454 after the dot" \
    grep -Eq '^<[-~*]{1,2} +454 Throttling failure: Maximum sending rate exceeded$' "$work/wr-f1.out"
sw wr-f2 --tls-on-connect --auth LOGIN --data "@$work/msg.eml"
check "fault: count exhausted, second message accepted" test $? -eq 0
check "fault: logged once" test "$(grep -c 'step=dot rule=0 action=reply' "$work/wr/faults.log")" -eq 1
check "fault: throttled message not recorded" \
    test "$(ls "$work/wr" | grep -c '\.json$')" -eq 2
stop_fake

if [ "$failed" -ne 0 ]; then
    for f in "$work"/*.err; do echo "--- $f"; cat "$f"; done
    echo "FAIL"
    exit 1
fi
echo "PASS"
exit 0
