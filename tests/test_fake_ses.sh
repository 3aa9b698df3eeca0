#!/bin/bash
# test_fake_ses.sh - self-test of the fake SES server (tests/fake_ses.py), using swaks.
#
# Exercises both TLS modes, AUTH LOGIN/PLAIN, wrong credentials, AUTH before
# STARTTLS, a wrong CA, fault rules, and checks what was recorded byte for byte.
# Then SES's limits, driven by a small smtplib client (client.py, below): the
# daily quota, the sending rate, max_connections and peak_concurrent, the null
# sender, the idle timeout and drop_after_seconds.  The slow ones (rate, idle,
# drop) run in the background, each against its own fake, while the others go on.
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

# start_fake NAME MODE [FAKE-ARGS...]: start a fake in TLS mode MODE; sets $port
# and $fake_pid.
start_fake() {
    local name=$1 mode=$2
    shift 2
    python3 "$here/fake_ses.py" --listen 127.0.0.1 --port 0 --port-file "$work/$name.port" \
        --tls "$mode" --cert "$certs/server.pem" --key "$certs/server.key" \
        --record "$work/$name" --user AKIATEST --password secret \
        --faults "$work/$name.faults.json" --log "$work/$name.log" \
        --pid-file "$work/$name.pid" "$@" 2>>"$work/$name.err" &
    fake_pid=$!
    pids+=("$fake_pid")
    for _ in $(seq 50); do [ -s "$work/$name.port" ] && break; sleep 0.1; done
    [ -s "$work/$name.port" ] || { echo "fake_ses ($name) did not start:"; cat "$work/$name.err"; exit 1; }
    port=$(cat "$work/$name.port")
}

# stop_fake [PID]: SIGTERM a fake (default: the last one started); it must exit 0.
stop_fake() {
    local pid=${1:-$fake_pid} rc=0
    kill -TERM "$pid"
    wait "$pid" || rc=$?
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
# The fake logs the failure on its own time, after the client gave up.
logged() { for _ in $(seq 50); do grep -q "$1" "$2" 2>/dev/null && return 0; sleep 0.1; done; return 1; }
check "wrapper: TLS failure logged" logged '^conn=2 tls_error=' "$work/wr/connections.log"

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

# ---- SES limits --------------------------------------------------------------
cat >"$work/client.py" <<'PY'
"""client.py PORT CA FAULTS ACTION...: drive a STARTTLS-mode fake step by step,
printing one line per action that talks to it.  Actions:
  N            send a message with N recipients on the current connection
               (opened and authenticated as needed): "N: <final reply>"
  new          QUIT the current connection; the next message opens another
  sleep=S      sleep S seconds
  faults=JSON  replace the faults file atomically (the fake re-reads it)
  null         MAIL FROM:<> on the current connection: "null: <reply>"
  hold=N       open N connections one after another, reading each banner, then
               QUIT them: "hold: <banner codes>, <the last refusal in full>"
  idle         connect, EHLO, wait: "idle: <reply> after=SECONDS eof=yes|no"
  dropmid=S    start a message, then write {"drop_after_seconds": S} to FAULTS
               and wait: "dropmid: dropped age=SECONDS" or "dropmid: not dropped"
Every wait is bounded.  QUIT waits for the fake to close the connection, so the
fake no longer counts it once the action is over."""
import os, smtplib, socket, ssl, sys, time

port, ca, faults = int(sys.argv[1]), sys.argv[2], sys.argv[3]
ctx = ssl.create_default_context(cafile=ca)
ctx.check_hostname = False      # the certificate names localhost; we dial 127.0.0.1
MSG = "From: sender@example.com\r\nSubject: limits\r\n\r\nbody\r\n"

def text(code, resp):
    return "%d %s" % (code, resp.decode() if isinstance(resp, bytes) else resp)

def login():
    c = smtplib.SMTP("127.0.0.1", port, local_hostname="client.test", timeout=10)
    c.starttls(context=ctx)
    c.login("AKIATEST", "secret")
    return c

def wait_eof(sock, limit):
    """Seconds until the peer closes or resets sock, or None after limit."""
    t0 = time.monotonic()
    sock.settimeout(limit)
    try:
        while sock.recv(4096):
            pass
    except TimeoutError:
        return None
    except (OSError, ssl.SSLError):
        pass
    return time.monotonic() - t0

def quit(c):
    c.docmd("QUIT")
    wait_eof(c.sock, 5)
    c.close()

def send(c, n):
    code, resp = c.mail("sender@example.com")
    for i in range(n):
        if code == 250:
            code, resp = c.rcpt("rcpt%d@example.org" % (i + 1))
    if code == 250:
        code, resp = c.data(MSG)
    else:
        c.rset()
    return text(code, resp)

def hold(n):
    conns, banners = [], []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port), 10)
        f = s.makefile("rb")
        banners.append(f.readline().decode().rstrip())
        conns.append((s, f))
    out = [b.split(" ")[0] for b in banners]
    refused = [b for b in banners if not b.startswith("220")]
    for (s, f), b in zip(conns, banners):
        if b.startswith("220"):
            s.sendall(b"QUIT\r\n")
            f.readline()
        if wait_eof(s, 5) is None:
            out.append("(not closed)")
        s.close()
    return " ".join(out) + (", " + refused[-1] if refused else "")

def idle():
    s = socket.create_connection(("127.0.0.1", port), 10)
    f = s.makefile("rb")
    f.readline()
    s.sendall(b"EHLO client.test\r\n")
    while not f.readline().startswith(b"250 "):
        pass
    t0 = time.monotonic()
    line = f.readline().decode().rstrip()
    after = time.monotonic() - t0
    eof = f.readline() == b""
    return "%s after=%.1f eof=%s" % (line, after, "yes" if eof else "no")

def write_faults(data):
    with open(faults + ".tmp", "w") as f:
        f.write(data)
    os.replace(faults + ".tmp", faults)

def dropmid(secs):
    t0 = time.monotonic()
    c = login()
    c.mail("sender@example.com")
    c.rcpt("rcpt1@example.org")
    c.putcmd("data")
    c.getreply()
    c.send(b"Subject: dropped mid-message\r\n")
    write_faults('{"drop_after_seconds": %s}' % secs)
    if wait_eof(c.sock, 10) is None:
        return "not dropped"
    return "dropped age=%.1f" % (time.monotonic() - t0)

conn = None
for a in sys.argv[4:]:
    verb, _, arg = a.partition("=")
    if verb.isdigit():
        conn = conn or login()
        print("%s: %s" % (verb, send(conn, int(verb))), flush=True)
    elif verb == "new":
        if conn:
            quit(conn)
        conn = None
    elif verb == "sleep":
        time.sleep(float(arg))
    elif verb == "faults":
        write_faults(arg)
    elif verb == "null":
        conn = conn or login()
        print("null: " + text(*conn.mail("")), flush=True)
        conn.rset()
    elif verb == "hold":
        print("hold: " + hold(int(arg)), flush=True)
    elif verb == "idle":
        print("idle: " + idle(), flush=True)
    elif verb == "dropmid":
        print("dropmid: " + dropmid(arg), flush=True)
    else:
        sys.exit("client.py: unknown action " + a)
if conn:
    quit(conn)
PY

# cl NAME FAKE ACTION...: run client.py against $port with FAKE's faults file;
# output in $work/NAME.out.
cl() {
    local name=$1 fake=$2
    shift 2
    timeout 20 python3 "$work/client.py" "$port" "$certs/ca.pem" "$work/$fake.faults.json" "$@" \
        >"$work/$name.out" 2>&1
}
# codes NAME: the reply codes to the messages client.py sent, in order
codes() { sed -n 's/^[0-9]*: \([0-9]*\) .*/\1/p' "$work/$1.out" | tr '\n' ' ' | sed 's/ $//'; }
# count REGEX FILE: how many lines of FILE match REGEX
count() { grep -Ec -- "$1" "$2"; }
# recorded NAME: how many messages fake NAME recorded
recorded() { ls "$work/$1" | grep -c '\.json$'; }
# between X LO HI: LO <= X <= HI (decimals)
between() { python3 -c 'import sys; x, lo, hi = map(float, sys.argv[1:]); sys.exit(0 if lo <= x <= hi else 1)' "$@"; }

# The sending rate needs waits for its 1-second window to slide: in the
# background, against its own fake.  R=3 (B=R): at most 3 recipients in any
# second, counted across connections; refused messages do not count.  Then
# R=0.25, B=3: a burst of 3, but the bucket refills at 0.25/s, so a second
# later only one more recipient fits.  Then no rate at all.
start_fake rate starttls
rate_pid=$fake_pid
cl rate rate 'faults={"rate": 3}' 2 2 new 1 1 sleep=1.1 1 \
    'faults={"rate": 0.25, "rate_burst": 3}' 2 2 sleep=1.1 1 1 'faults={}' 1 &
rate_client=$!
pids+=("$rate_client")

# The idle timeout, also in the background against its own fake.
start_fake idle starttls --idle-timeout 0.5
idle_pid=$fake_pid
cl idle idle idle &
idle_client=$!
pids+=("$idle_client")

# drop_after_seconds, set while a connection is mid-message: the connection is
# reset once it is that old, and nothing is recorded.  In the background too.
start_fake drop starttls
drop_pid=$fake_pid
cl drop drop dropmid=1 &
drop_client=$!
pids+=("$drop_client")

start_fake lim starttls
# Daily quota N: a message is refused if its recipients would take the number
# of recipients recorded since start above N.  0 or no setting lifts it.
cl quota lim 'faults={"daily_quota": 3}' 2 2 1 1 new 'faults={"daily_quota": 0}' 1 \
    'faults={"daily_quota": 5}' 1 1 'faults={}' 1
check "daily_quota: refused by recipients, lifted live" \
    test "$(codes quota)" = "250 454 250 454 250 250 454 250"
check "daily_quota: 454 text as on the wire" \
    grep -qx '2: 454 Throttling failure: Daily message quota exceeded.' "$work/quota.out"
check "daily_quota: one faults.log line per refusal" \
    test "$(count 'limit=daily_quota' "$work/lim/faults.log")" -eq 3
check "daily_quota: faults.log line format" grep -qx \
    'conn=1 step=dot limit=daily_quota rcpts=2 used=2 quota=3 action=reply reply=454 Throttling failure: Daily message quota exceeded.' \
    "$work/lim/faults.log"
check "daily_quota: refused messages not recorded" test "$(recorded lim)" -eq 5

# max_connections and peak_concurrent.  Changing the faults file restarts the
# peak, so the last peak line shows the concurrency since the change.
cl conns lim 'faults={"max_connections": 2}' hold=3 'faults={}' hold=1 null
check "max_connections: third concurrent connection gets 421 and a close" \
    grep -qx 'hold: 220 220 421, 421 Too many concurrent SMTP connections' "$work/conns.out"
check "max_connections: logged once" test "$(count \
    '^conn=[0-9]+ step=banner limit=max_connections concurrent=3 max=2 action=reply reply=421 ' \
    "$work/lim/faults.log")" -eq 1
check "peak_concurrent: highest peak is 3" test "$(sed -n 's/^conn=[0-9]* peak_concurrent=//p' \
    "$work/lim/connections.log" | sort -n | tail -1)" -eq 3
check "peak_concurrent: restarts when the faults file changes" test "$(sed -n \
    's/^conn=[0-9]* peak_concurrent=//p' "$work/lim/connections.log" | tail -1)" -eq 1
check "null sender: MAIL FROM:<> gets 501" \
    grep -qx 'null: 501 Invalid MAIL FROM address provided' "$work/conns.out"

# Rules: an unverified sender (554 after the dot, only when the sender matches),
# then invalid credentials whatever the password.
printf '%s\n' '{"rules": [{"step": "dot", "match": "sender@example.com", "reply": "554 Message rejected: Email address is not verified. The following identities failed the check in region US-EAST-1: sender@example.com"}]}' \
    >"$work/lim.faults.json"
n_before=$(recorded lim)
sw lim-unverified --tls --auth PLAIN --data "@$work/msg.eml"
check "rule: unverified sender refused" test $? -ne 0
check "rule: 554 not verified, after the dot" grep -Eq \
    '^<[-~*]{1,2} +554 Message rejected: Email address is not verified\. The following identities failed the check in region US-EAST-1: sender@example\.com$' \
    "$work/lim-unverified.out"
sw lim-verified --tls --auth PLAIN --from other@example.com --data "@$work/msg.eml"
check "rule: another sender does not match" test $? -eq 0
printf '%s\n' '{"rules": [{"step": "auth", "reply": "535 Authentication Credentials Invalid"}]}' \
    >"$work/lim.faults.json"
sw lim-auth --tls --auth LOGIN --data "@$work/msg.eml"
check "rule: AUTH refused despite good credentials" test $? -ne 0
check "rule: 535 at AUTH" \
    grep -Eq '^<[-~*]{1,2} +535 Authentication Credentials Invalid$' "$work/lim-auth.out"
check "rule: only the non-matching message recorded" test "$(recorded lim)" -eq $((n_before + 1))

stop_fake

wait "$drop_client"
check "drop_after_seconds: connection dropped mid-message" \
    grep -Eq '^dropmid: dropped age=[0-9.]+$' "$work/drop.out"
check "drop_after_seconds: about 1 s after it opened" \
    between "$(sed -n 's/^dropmid: dropped age=//p' "$work/drop.out")" 0.9 6
check "drop_after_seconds: faults.log line" grep -Eq \
    '^conn=1 limit=drop_after_seconds seconds=1 age=[0-9.]+ in_transaction=true action=drop$' \
    "$work/drop/faults.log"
check "drop_after_seconds: nothing recorded" test "$(recorded drop)" -eq 0
check "drop_after_seconds: connection closed" \
    grep -qx 'conn=1 closed messages=0' "$work/drop/connections.log"
stop_fake "$drop_pid"

wait "$idle_client"
check "idle: 451 4.4.2, then close" grep -Eq \
    '^idle: 451 4\.4\.2 Timeout waiting for data from client\. after=[0-9.]+ eof=yes$' "$work/idle.out"
check "idle: after about --idle-timeout" \
    between "$(sed -n 's/.* after=\([0-9.]*\) .*/\1/p' "$work/idle.out")" 0.4 5
stop_fake "$idle_pid"

wait "$rate_client"
check "rate: refused by recipients across connections, burst, lifted live" \
    test "$(codes rate)" = "250 454 250 454 250 250 454 250 454 250"
check "rate: 454 text as on the wire" \
    grep -qx '2: 454 Throttling failure: Maximum sending rate exceeded.' "$work/rate.out"
check "rate: one faults.log line per refusal" \
    test "$(count '^conn=[0-9]+ step=dot limit=rate ' "$work/rate/faults.log")" -eq 4
check "rate: refused messages not recorded" test "$(recorded rate)" -eq 6
stop_fake "$rate_pid"

if [ "$failed" -ne 0 ]; then
    for f in "$work"/*.err; do echo "--- $f"; cat "$f"; done
    echo "FAIL"
    exit 1
fi
echo "PASS"
exit 0
