#!/bin/bash
# Real programs that call /usr/sbin/sendmail, with sesrelay-sendmail
# bound over it in a private mount namespace (nothing on the host
# changes): mail(1) from bsd-mailx, PHP's mail() with its default
# sendmail_path ("sendmail -t -i"), git send-email, swaks speaking SMTP
# to `sesrelay-sendmail -bs` through a pipe, and cron's invocation.
# Each message is checked where it arrives, at the fake SES.
. "$(dirname "$0")/lib.sh"

[ "$(id -u)" -eq 0 ] || { echo "SKIP: needs root (mount namespace)"; exit 77; }
command -v unshare >/dev/null || { echo "SKIP: no unshare"; exit 77; }
[ -e /usr/sbin/sendmail ] || { echo "SKIP: no /usr/sbin/sendmail to bind over (install postfix or another MTA)"; exit 77; }
start_fake starttls
EXTRA_CONF='rewrite = { sender = "noreply@example.com"; admin = "ops@example.com"; };' write_conf
start_daemon
# in_ns CMD...: run CMD with our sendmail as /usr/sbin/sendmail.
in_ns() {
	unshare -m sh -c 'mount --bind "$0" /usr/sbin/sendmail && exec "$@"' \
	    "$sbin/sesrelay-sendmail" "$@"
}
# arrived RCPT: the record of the message to RCPT (.eml path), once there.
arrived() {
	for _ in $(seq 300); do
		f=$(grep -l "\"$1\"" "$FAKE_REC"/*.json 2>/dev/null | head -1)
		[ -n "$f" ] && { echo "${f%.json}.eml"; return 0; }
		sleep 0.1
	done
	return 1
}
json_of() { sed 's/\.eml$/.json/' <<<"$1"; }

if command -v mail >/dev/null; then
	check "mail(1) exits 0" in_ns sh -c 'echo "body from mail(1)" | mail -s "from mailx" mailx@example.com'
	e=$(arrived mailx@example.com)
	check "mail(1): arrives" [ -n "$e" ]
	check "mail(1): subject and body" grep -q '^Subject: from mailx' "$e"
	check "mail(1): body" grep -q '^body from mail(1)' "$e"
	check "mail(1): from root, rewritten" grep -q '"mail_from": "noreply@example.com"' "$(json_of "$e")"
else
	echo "SKIP: mail(1) (bsd-mailx) not installed"
fi

if command -v php >/dev/null; then
	check "PHP mail() returns true" in_ns php -r '
	    exit(mail("php@example.com", "from PHP", "Hello from PHP\nline 2 with UTF-8: caf\u{e9}",
	        "From: App <app@example.com>\r\nContent-Type: text/plain; charset=utf-8") ? 0 : 1);'
	e=$(arrived php@example.com)
	check "PHP: arrives" [ -n "$e" ]
	check "PHP: its From: kept" grep -q '^From: App <app@example.com>' "$e"
	check "PHP: 8-bit body intact, lines CRLF" grep -q $'^line 2 with UTF-8: caf\xc3\xa9\r$' "$e"
else
	echo "SKIP: php not installed"
fi

if git send-email -h >/dev/null 2>&1 || git send-email --help >/dev/null 2>&1; then
	repo=$work/repo
	git init -q "$repo"
	echo "a line" >"$repo/file"
	git -C "$repo" add file
	git -C "$repo" -c user.name=Dev -c user.email=dev@example.com commit -q -m "a patch for sesrelay"
	git -C "$repo" format-patch -q -1 -o "$work/patches"
	check "git send-email --sendmail-cmd exits 0" \
	    git -C "$repo" send-email --quiet --confirm=never --from=dev@example.com --envelope-sender=dev@example.com \
	    --to=list@example.com --sendmail-cmd="$sbin/sesrelay-sendmail" "$work"/patches/*.patch
	e=$(arrived list@example.com)
	check "git send-email: arrives" [ -n "$e" ]
	check "git send-email: the patch subject" grep -q '^Subject: \[PATCH\] a patch for sesrelay' "$e"
	check "git send-email: the envelope sender it was given (-f, root is trusted)" grep -q '"mail_from": "dev@example.com"' "$(json_of "$e")"
else
	echo "SKIP: git send-email not installed"
fi

check "swaks through sesrelay-sendmail -bs (SMTP on a pipe)" \
	swaks --pipe "$sbin/sesrelay-sendmail -bs" --from pipe@example.com --to bs@example.com \
	--header "Subject: over -bs" --body "body over a pipe"
e=$(arrived bs@example.com)
check "-bs: arrives" [ -n "$e" ]
check "-bs: body" grep -q '^body over a pipe' "$e"

# cron: "sendmail -FCronDaemon -i -B8BITMIME -oem root" with its own header.
check "cron's invocation exits 0" in_ns sh -c 'printf "From: root (Cron Daemon)\nTo: root\nSubject: Cron <root@host> run-parts /etc/cron.daily\nContent-Type: text/plain; charset=UTF-8\n\nlogrotate: done \342\234\223\n" |
	/usr/sbin/sendmail -FCronDaemon -i -B8BITMIME -oem root'
e=$(arrived ops@example.com)
check "cron: root's mail reaches rewrite.admin" [ -n "$e" ]
check "cron: the To: root header rewritten to the admin" grep -q '^To: ops@example.com' "$e"
check "cron: From keeps its name, with the verified address" grep -q '^From: Cron Daemon <noreply@example.com>' "$e"
check "cron: the UTF-8 body intact" grep -q $'^logrotate: done \xe2\x9c\x93\r$' "$e"

# -bs has the daemon's timeouts: a client that goes silent is told so.
sed -i 's/^hostname = "relay.test";/hostname = "relay.test";\nsmtp = { timeout = 10; };/' "$work/sesrelay.conf"
check "-bs: a silent client gets 421 4.4.2 after smtp.timeout, exit 75" python3 - "$sbin/sesrelay-sendmail" "$work/sesrelay.conf" <<'PY'
import subprocess, sys
p = subprocess.Popen([sys.argv[1], "-C", sys.argv[2], "-bs"], stdin=subprocess.PIPE,
                     stdout=subprocess.PIPE)
assert p.stdout.readline().startswith(b"220 "), "greeting"
p.stdin.write(b"EHLO client\r\n"); p.stdin.flush()
while True:
    l = p.stdout.readline()
    if l[3:4] != b"-":
        break
# ... and then nothing more is sent.
l = p.stdout.readline()
print("got:", l)
rc = p.wait(timeout=60)
sys.exit(0 if l.startswith(b"421 4.4.2 relay.test Error: timeout exceeded") and rc == 75 else 1)
PY
stop_daemon
finish
