#!/bin/bash
# sesrelay-sendmail while sesrelayd is down, on a multi-user host:
# - 100 submissions by an unprivileged user exit 0, go to the maildrop,
#   and all 100 are delivered once the daemon starts;
# - another user can neither list, read nor remove them;
# - an untrusted user's -f is replaced by the user's own address, a
#   trusted one's (root) is kept;
# - with the maildrop's file system full: exit 75, nothing left behind.
# Two users and the group sesrelay-drop are created for the test (and
# removed), the program is installed setgid as `make install` does.
. "$(dirname "$0")/lib.sh"

[ "$(id -u)" -eq 0 ] || { echo "SKIP: needs root (users, setgid)"; exit 77; }
command -v useradd >/dev/null || { echo "SKIP: no useradd"; exit 77; }
make_user u1 t1
make_user u2 t2
unmount_small() { umount -l "$work/small" 2>/dev/null; }
extra_cleanup=unmount_small
setgid_sendmail

start_fake starttls
EXTRA_CONF='rewrite = { sender = "noreply@example.com"; };' write_conf
chmod 644 "$work/sesrelay.conf"
start_daemon			# creates the spool and its maildrop
stop_daemon
check "the maildrop is group sesrelay-drop, mode 1730" \
	[ "$(stat -c '%G %a' "$work/spool/maildrop")" = "sesrelay-drop 1730" ]
check "the spool lets only that group pass (0710)" \
	[ "$(stat -c '%G %a' "$work/spool")" = "sesrelay-drop 710" ]

as() { local u=$1; shift; runuser -u "$u" -- "$@"; }
fails=0
for i in $(seq 1 100); do
	printf 'To: r%d@example.com\nSubject: dropped %d\nX-Test-Id: %d\n\nmessage %d, queued while sesrelayd was down\n' \
	    "$i" "$i" "$i" "$i" | as "$u1" "$work/bin/sendmail" -C "$work/sesrelay.conf" -t -i || fails=$((fails + 1))
done
check "100 submissions with the daemon down: all exit 0" [ "$fails" -eq 0 ]
check "100 files in the maildrop" [ "$(ls "$work/spool/maildrop" | grep -c '^[0-9a-f]\{16\}$')" -eq 100 ]
check "... owned by the user who sent them" \
	[ "$(stat -c %U "$work/spool/maildrop/"* | sort -u)" = "$u1" ]
one=$(ls "$work/spool/maildrop" | head -1)
check "another user cannot list the maildrop" bash -c "! runuser -u '$u2' -- ls '$work/spool/maildrop' >/dev/null 2>&1"
check "... nor read a message" bash -c "! runuser -u '$u2' -- cat '$work/spool/maildrop/$one' >/dev/null 2>&1"
check "... nor remove it" bash -c "! runuser -u '$u2' -- rm -f '$work/spool/maildrop/$one' 2>/dev/null; [ -e '$work/spool/maildrop/$one' ]"
check "... nor rename it away" bash -c "! runuser -u '$u2' -- mv '$work/spool/maildrop/$one' '$work/spool/maildrop/x' 2>/dev/null"
check "... nor reach the queue" bash -c "! runuser -u '$u2' -- ls '$work/spool/queue' >/dev/null 2>&1"
check "mailq tells a user the daemon is down (exit 69)" \
	bash -c "runuser -u '$u2' -- '$work/bin/sendmail' -C '$work/sesrelay.conf' -bp >/dev/null 2>&1; [ \$? -eq 69 ]"

start_daemon
check "once sesrelayd runs, all 100 are delivered" wait_delivered 100 60
check "byte for byte as the user wrote them (after cleanup's additions)" python3 - "$FAKE_REC" <<'PY'
import glob, json, re, sys
seen = set()
for j in glob.glob(sys.argv[1] + "/*.json"):
    m = json.load(open(j))
    eml = open(j[:-5] + ".eml", "rb").read()
    i = int(re.search(rb"X-Test-Id: (\d+)", eml).group(1))
    assert m["mail_from"] == "noreply@example.com", m
    assert m["rcpt_to"] == ["r%d@example.com" % i], m
    assert b"\r\nmessage %d, queued while sesrelayd was down\r\n" % i in eml, eml
    assert re.search(rb"^From: noreply@example.com\r$", eml, re.M), eml
    seen.add(i)
assert seen == set(range(1, 101)), sorted(set(range(1, 101)) - seen)
PY
check "the maildrop is empty again" [ -z "$(ls "$work/spool/maildrop")" ]
check "each pickup is logged with the uid" wait_event pickup.accepted \
	from='<noreply@example.com>' uid="$(id -u "$u1")"

# -f: an untrusted user sends as itself; root (trusted) as it says.
printf 'To: f1@example.com\nSubject: forged\n\nx\n' | as "$u1" "$work/bin/sendmail" -C "$work/sesrelay.conf" -t -f boss@example.com
printf 'To: f2@example.com\nSubject: trusted\n\nx\n' | "$work/bin/sendmail" -C "$work/sesrelay.conf" -t -f boss@example.com
check "both arrive" wait_delivered 102 30
sender_of() { python3 -c "import glob,json,sys; print([json.load(open(j))['mail_from'] for j in glob.glob('$FAKE_REC/*.json') if json.load(open(j))['rcpt_to']==[sys.argv[1]]][0])" "$1"; }
check "an untrusted user's -f is replaced (and logged)" [ "$(sender_of f1@example.com)" = noreply@example.com ]
check "... logged" wait_event '(smtp|pickup)\.sender_replaced' \
	from='<boss@example.com>' to="<$u1>"
check "root's -f is kept" [ "$(sender_of f2@example.com)" = boss@example.com ]
stop_daemon

# A full maildrop file system: a temporary failure, never 0.
mkdir -p "$work/small"
if mount -t tmpfs -o size=256k,mode=0711 tmpfs "$work/small" 2>/dev/null; then
	sed -e "s|spool = \"$work/spool\";|spool = \"$work/small/spool\";|" "$work/sesrelay.conf" >"$work/small.conf"
	chmod 644 "$work/small.conf"
	SESRELAY_CONFIG=$work/small.conf "$sbin/sesrelayd" -f -c "$work/small.conf" >"$work/small.log" 2>&1 &
	spid=$!
	for _ in $(seq 50); do [ -d "$work/small/spool/maildrop" ] && break; sleep 0.1; done
	kill -TERM $spid; wait $spid
	head -c 300k /dev/zero >"$work/small/filler" 2>/dev/null
	{ printf 'To: full@example.com\nSubject: no room\n\n'; head -c 100k /dev/urandom | base64; } |
	    as "$u1" "$work/bin/sendmail" -C "$work/small.conf" -t 2>"$work/full.err"
	rc=$?
	check "a full file system: exit 75 (EX_TEMPFAIL), never 0" [ "$rc" -eq 75 ]
	check "... said on stderr" [ -s "$work/full.err" ]
	check "... and nothing is left in the maildrop" [ -z "$(ls -A "$work/small/spool/maildrop")" ]
	umount -l "$work/small"
else
	echo "SKIP: cannot mount a tmpfs (the full-disk part)"
fi
finish
