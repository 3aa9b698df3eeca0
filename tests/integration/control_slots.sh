#!/bin/bash
# An unprivileged user cannot lock root out of the control socket (issue
# 10, item 14): it holds as many connections as it can, some idle, some
# trickling a byte at a time; root's `sesrelayctl queue` still works,
# another user's too; the user's extra connections are told "busy"; and
# every held connection is closed once its request's deadline passes.
. "$(dirname "$0")/lib.sh"

[ "$(id -u)" -eq 0 ] || { echo "SKIP: needs root (a second user)"; exit 77; }
command -v useradd >/dev/null || { echo "SKIP: no useradd"; exit 77; }
make_user u1 c1
make_user u2 c2

start_fake starttls
write_conf
start_daemon

# The checkout may be closed to other users: what they run is copied
# into the scratch directory, which they can enter.
chmod 755 "$work" "$work/run"
mkdir -p "$work/bin" && chmod 755 "$work/bin"
cp "$sbin/sesrelayctl" "$work/bin/" && chmod 755 "$work/bin/sesrelayctl"
cat >"$work/bin/hold.py" <<'PY'
# hold.py SOCKET N RESULT: open N connections; half stay silent, half
# send a byte every 2 s and never a newline; record what each got.
import json, os, socket, sys, time
path, n, result = sys.argv[1], int(sys.argv[2]), sys.argv[3]
conns = []
for i in range(n):
    s = socket.socket(socket.AF_UNIX)
    s.connect(path)
    s.setblocking(False)
    conns.append({"s": s, "trickle": i % 2 == 1, "got": b"", "closed_at": None,
                  "sent_at": 0.0})
t0 = time.monotonic()
open(result + ".held", "w").close()
while time.monotonic() - t0 < 24 and any(c["closed_at"] is None for c in conns):
    for c in conns:
        if c["closed_at"] is not None:
            continue
        try:
            d = c["s"].recv(200)
            if d == b"":
                c["closed_at"] = time.monotonic() - t0
            c["got"] += d
        except BlockingIOError:
            pass
        except OSError:
            c["closed_at"] = time.monotonic() - t0
        if c["trickle"] and c["closed_at"] is None and time.monotonic() - c["sent_at"] >= 2:
            c["sent_at"] = time.monotonic()
            try:
                c["s"].send(b"q")
            except OSError:
                pass
    time.sleep(0.1)
json.dump([{"trickle": c["trickle"], "got": c["got"].decode(errors="replace"),
            "closed_at": c["closed_at"]} for c in conns], open(result, "w"))
PY
chmod 644 "$work/bin/hold.py"
mkdir "$work/out" && chown "$u1" "$work/out"

runuser -u "$u1" -- python3 "$work/bin/hold.py" "$work/run/control.sock" 40 "$work/out/held.json" &
holder=$!
pids+=("$holder")
for _ in $(seq 100); do [ -e "$work/out/held.json.held" ] && break; sleep 0.1; done
sleep 1
check "root's sesrelayctl queue works while a user holds connections" \
	bash -c "'$sbin/sesrelayctl' -c '$work/sesrelay.conf' queue | grep -q '^The queue is empty'"
check "... again" bash -c "'$sbin/sesrelayctl' -c '$work/sesrelay.conf' stats >/dev/null"
check "another user's sesrelayctl queue works too" \
	bash -c "runuser -u '$u2' -- '$work/bin/sesrelayctl' -s '$work/run/control.sock' queue | grep -q '^The queue is empty'"
runuser -u "$u1" -- "$work/bin/sesrelayctl" -s "$work/run/control.sock" queue >/dev/null 2>"$work/u1.err"
rc=$?
check "the holding user's own next connection is refused: busy, exit 75" [ "$rc" -eq 75 ]
check "... and told why" grep -q "busy" "$work/u1.err"
wait "$holder"
check "the holder's connections, held or refused: what each got" python3 - "$work/out/held.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
held = [c for c in r if not c["got"].startswith("ERR busy")]
busy = [c for c in r if c["got"].startswith("ERR busy")]
print("held %d, refused busy %d" % (len(held), len(busy)))
print("closed after (s):", sorted(round(c["closed_at"] or -1, 1) for c in held))
assert 1 <= len(held) <= 4, "one user holds at most 4 connections"
assert len(busy) == len(r) - len(held)
assert any(c["trickle"] for c in held) and any(not c["trickle"] for c in held), "both kinds held"
# Idle or trickling, each is closed at its 10 s deadline (not at the
# end of the 24 s the holder waits).
assert all(c["closed_at"] is not None and 8 <= c["closed_at"] <= 16 for c in held), held
PY
stop_daemon
finish
