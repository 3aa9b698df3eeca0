#!/bin/bash
# Issue 10 item 13: the maildrop cannot be used to fill the spool's file
# system.
# - Below spool_min_free, sesrelay-sendmail refuses with EX_TEMPFAIL (75)
#   and a line on stderr, as the daemon answers 452, through the maildrop
#   as through the socket, and writes nothing.
# - A sendmail killed (-9) in the middle of a message leaves a partial
#   ".tmp" file: the daemon removes it at once (within seconds, bound
#   checked below), while a live writer's file, however slow, is left
#   alone and its message arrives complete.
. "$(dirname "$0")/lib.sh"

[ "$(id -u)" -eq 0 ] || { echo "SKIP: needs root (users, setgid)"; exit 77; }
command -v useradd >/dev/null || { echo "SKIP: no useradd"; exit 77; }
command -v setpriv >/dev/null || { echo "SKIP: no setpriv"; exit 77; }
make_user u1 s1
writers=()
stop_writers() {
	for p in "${writers[@]}"; do kill -KILL "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
}
extra_cleanup=stop_writers
setgid_sendmail
# as_u1 CMD...: run as the user; setpriv execs, so "as_u1 ... &" would be
# a subshell: for a writer's own pid, "${as_u1[@]}" is used instead.
as_u1=(setpriv --reuid="$u1" --regid="$(id -g "$u1")" --clear-groups)
as_u1() { "${as_u1[@]}" "$@"; }

start_fake starttls
EXTRA_CONF='rewrite = { sender = "noreply@example.com"; };' write_conf
chmod 644 "$work/sesrelay.conf"
# The same spool, no socket where listen.unix points: sendmail uses the
# maildrop while the daemon runs.
sed -e "s|unix = \"$SOCK\"|unix = \"$work/run/nothing.sock\"|" "$work/sesrelay.conf" >"$work/drop.conf"
# Far more free space asked for than any file system here has.
sed -e 's|^spool = .*|&\nspool_min_free = 1000000000000L;|' "$work/sesrelay.conf" >"$work/full.conf"
sed -e 's|^spool = .*|&\nspool_min_free = 1000000000000L;|' "$work/drop.conf" >"$work/fulldrop.conf"
chmod 644 "$work"/*.conf
start_daemon

msg() { printf 'To: %s@example.com\nSubject: %s\n\n%s\n' "$1" "$1" "$1"; }
msg lowdrop | as_u1 "$work/bin/sendmail" -C "$work/fulldrop.conf" -t -i 2>"$work/lowdrop.err"
rc=$?
check "below spool_min_free, through the maildrop: exit 75" [ "$rc" -eq 75 ]
check "... said on stderr" grep -q "insufficient system storage\|No space" "$work/lowdrop.err"
check "... nothing written into the maildrop" [ -z "$(ls -A "$work/spool/maildrop")" ]
# The socket path, for comparison: the daemon answers 452 at MAIL.
stop_daemon
SESRELAY_CONFIG=$work/full.conf
cp "$work/full.conf" "$work/sesrelay.conf"
start_daemon
msg lowsock | as_u1 "$work/bin/sendmail" -C "$work/full.conf" -t -i 2>"$work/lowsock.err"
check "... as through the socket (452): exit 75" [ $? -eq 75 ]
stop_daemon
sed -i '/^spool_min_free/d' "$work/sesrelay.conf"
SESRELAY_CONFIG=$work/sesrelay.conf
start_daemon

# tmp_files: the partial files in the maildrop, oldest first.
tmp_files() { ls -tr "$work/spool/maildrop" | grep '\.tmp$'; }
wait_tmp_count() {
	for _ in $(seq 100); do
		[ "$(tmp_files | wc -l)" -eq "$1" ] && [ -s "$work/spool/maildrop/$(tmp_files | tail -1)" ] && return 0
		sleep 0.1
	done
	return 1
}
mkfifo -m 666 "$work/slow.in" "$work/killed.in"
# A live, slow writer: its header and 200 KiB, then it waits.
"${as_u1[@]}" "$work/bin/sendmail" -C "$work/drop.conf" -t -i <"$work/slow.in" 2>"$work/slow.err" &
slow=$!
writers+=("$slow")
exec 7>"$work/slow.in"
{ msg slow; head -c 204800 /dev/zero | tr '\0' s; } >&7
check "the slow writer has a partial file" wait_tmp_count 1
slow_tmp=$(tmp_files)
# Another, killed with 300 KiB written.
"${as_u1[@]}" "$work/bin/sendmail" -C "$work/drop.conf" -t -i <"$work/killed.in" 2>/dev/null &
killed=$!
writers+=("$killed")
exec 8>"$work/killed.in"
{ msg killed; head -c 307200 /dev/zero | tr '\0' k; } >&8
check "the killed writer has a partial file" wait_tmp_count 2
killed_tmp=$(tmp_files | grep -vx "$slow_tmp")
for _ in $(seq 100); do
	[ "$(stat -c %s "$work/spool/maildrop/$killed_tmp")" -ge 307200 ] && break
	sleep 0.1
done
kill -KILL "$killed"
wait "$killed" 2>/dev/null
check "the writer was killed, not finished" [ $? -eq 137 ]
exec 8>&-
t0=$(date +%s.%N)
gone=
for _ in $(seq 700); do
	[ -e "$work/spool/maildrop/$killed_tmp" ] || { gone=1; break; }
	sleep 0.1
done
t1=$(date +%s.%N)
check "the killed writer's partial file is removed (within 70 s)" [ -n "$gone" ]
[ -n "$gone" ] && echo "# removed $(python3 -c "print(round($t1 - $t0, 2))") s after the kill"
check "... and logged" wait_event pickup.abandoned_removed \
	file="$killed_tmp" size='[0-9]+' uid="$(id -u "$u1")"
check "the live writer's partial file is untouched" [ -e "$work/spool/maildrop/$slow_tmp" ]
# Another scan (a message arriving) must not touch it either.
msg another | as_u1 "$work/bin/sendmail" -C "$work/drop.conf" -t -i
check "a message through the maildrop meanwhile arrives" wait_delivered 1 30
check "... the live writer's file is still untouched" [ -e "$work/spool/maildrop/$slow_tmp" ]
# The slow writer finishes: its whole message arrives.
head -c 102400 /dev/zero | tr '\0' s >&7
printf '\nend of slow\n' >&7
exec 7>&-
wait "$slow"
check "the slow writer exits 0" [ $? -eq 0 ]
check "... and its message arrives whole" wait_delivered 2 30
check "... byte for byte" python3 - "$FAKE_REC" <<'PY'
import glob, json, sys
for j in glob.glob(sys.argv[1] + "/*.json"):
    if json.load(open(j))["rcpt_to"] == ["slow@example.com"]:
        e = open(j[:-5] + ".eml", "rb").read()
        assert e.endswith(b"\r\n\r\nslow\r\n" + b"s" * 307200 + b"\r\nend of slow\r\n"), e[-200:]
        break
else:
    raise SystemExit("slow@example.com not delivered")
PY
check "the killed writer's message never arrives" bash -c "! grep -l killed@example.com '$FAKE_REC'/*.json"
check "no partial file is left" [ -z "$(tmp_files)" ]
check "the messages refused below spool_min_free never arrive" \
	bash -c "! grep -l 'low\(drop\|sock\)@example.com' '$FAKE_REC'/*.json"
stop_daemon
finish
