#!/bin/bash
# Issue 10 item 9: one hostile maildrop file must not wedge pickup.
# A -t file whose header holds a 5,000-character address after a
# group-syntax line (written straight into the maildrop, as an older or a
# subverted sendmail could) sits among good files written by
# sesrelay-sendmail while the daemon is down.  Once sesrelayd runs: every
# good message arrives, the hostile file is moved to corrupt/ once, and
# the maildrop is empty.
. "$(dirname "$0")/lib.sh"

[ "$(id -u)" -eq 0 ] || { echo "SKIP: needs root (users, setgid)"; exit 77; }
command -v useradd >/dev/null || { echo "SKIP: no useradd"; exit 77; }
make_user u1 h1
setgid_sendmail

start_fake starttls
EXTRA_CONF='rewrite = { sender = "noreply@example.com"; };' write_conf
chmod 644 "$work/sesrelay.conf"
start_daemon
stop_daemon

# The hostile files: the names sort first and last, so that whatever
# order the directory gives, good files come after one of them.
long=$(head -c 5000 /dev/zero | tr '\0' a)@example.com
hostile() {
	printf 'SESRELAY-DROP 1\nfrom \nextract\n\nTo: undisclosed-recipients:;\nCc: %s\nSubject: hostile\n\nx\n' "$long" >"$work/spool/maildrop/$1"
	chown "$u1" "$work/spool/maildrop/$1"
	chmod 644 "$work/spool/maildrop/$1"
}
hostile 0000000000000000
hostile ffffffffffffffff
fails=0
for i in $(seq 1 20); do
	printf 'To: good%d@example.com\nSubject: good %d\n\ngood message %d\n' "$i" "$i" "$i" |
	    runuser -u "$u1" -- "$work/bin/sendmail" -C "$work/sesrelay.conf" -t -i || fails=$((fails + 1))
done
check "20 good submissions with the daemon down exit 0" [ "$fails" -eq 0 ]
check "22 files wait in the maildrop" [ "$(ls "$work/spool/maildrop" | wc -l)" -eq 22 ]

start_daemon
check "all 20 good messages arrive" wait_delivered 20 30
check "... each once, byte for byte" python3 - "$FAKE_REC" <<'PY'
import glob, json, re, sys
seen = []
for j in glob.glob(sys.argv[1] + "/*.json"):
    m = json.load(open(j))
    eml = open(j[:-5] + ".eml", "rb").read()
    i = int(re.search(rb"^Subject: good (\d+)\r$", eml, re.M).group(1))
    assert m["rcpt_to"] == ["good%d@example.com" % i], m
    assert eml.endswith(b"\r\n\r\ngood message %d\r\n" % i), eml
    seen.append(i)
assert sorted(seen) == list(range(1, 21)), sorted(seen)
PY
check "both hostile files are in corrupt/, once each" \
	[ "$(ls "$work/spool/corrupt" | grep -c '^maildrop-\(0\{16\}\|f\{16\}\)$')" -eq 2 ]
check "the maildrop is empty" [ -z "$(ls -A "$work/spool/maildrop")" ]
check "each refusal logged once" [ "$(log_count pickup.refused)" -eq 2 ]
stop_daemon
finish
