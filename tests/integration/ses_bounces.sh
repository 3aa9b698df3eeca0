#!/bin/bash
# SES refuses a message for good (554 after the data: the sender is not
# verified): both recipients fail at once, nothing is retried, and one
# RFC 3464 bounce goes to the sender, from bounce.sender, quoting SES's
# reply verbatim.  A bounce that SES refuses in turn is not bounced
# again.  A message to 120 recipients goes out as three transactions of
# at most 50 (SES's limit), the same bytes each time.
. "$(dirname "$0")/lib.sh"

not_verified='554 Message rejected: Email address is not verified. The following identities failed the check in region US-EAST-1:'

# send_as ID FROM TO...: one message over SMTP with this envelope; its
# bytes are kept in $work/custom/ID.eml.
send_as() {
	python3 - "$SMTP_PORT" "$work/custom" "$@" <<'PY'
import os, smtplib, sys
port, outdir, mid, sender, rcpts = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5:]
msg = ("From: Some Sender <%s>\r\nTo: %s\r\nSubject: bounce test %s\r\n"
       "Date: Sun, 22 Nov 2026 06:00:00 +0000\r\nMessage-ID: <bounce-%s@example.com>\r\n"
       "X-Bounce-Test: %s\r\n\r\nThis one will not get through.\r\n"
       % (sender, ",\r\n ".join(rcpts), mid, mid, mid)).encode()
os.makedirs(outdir, exist_ok=True)
open(os.path.join(outdir, mid + ".eml"), "wb").write(msg)
with smtplib.SMTP("127.0.0.1", port, timeout=30) as s:
    s.sendmail(sender, rcpts, msg)
PY
}

# records_from ADDR: how many messages the fake recorded from ADDR.
records_from() {
	python3 -c "
import glob, json, sys
print(sum(1 for p in glob.glob('$FAKE_REC/*.json') if json.load(open(p))['mail_from'] == sys.argv[1]))" "$1"
}

start_fake starttls
# The rule matches the original's recipients (at dest.example.net), not
# the sender: the bounce goes to the sender, and SES takes it.
set_faults "{\"rules\": [{\"step\": \"dot\", \"match\": \"@dest.example.net\",
	\"reply\": \"$not_verified unverified@example.com\"}]}"
EXTRA_CONF='bounce = { sender = "bounces@example.com"; };' write_conf
start_daemon

# 1. The original fails at the dot, for both recipients; one bounce.
check "a message to 2 recipients is accepted" \
	send_as 1 unverified@example.com alice@dest.example.net bob@dest.example.net
check "both recipients fail" wait_event scheduler.failed to='<bob@dest.example.net>'
check "a bounce is queued" wait_event bounce.queued dsn_id='[0-9a-f]+' to='<unverified@example.com>'
check "the bounce arrives" wait_delivered 1 30
check "the spool empties" wait_spool_empty 10
check "exactly one message arrived: the bounce" [ "$(delivered)" -eq 1 ]
check "the original was tried once, never retried" \
	[ "$(grep -c 'step=dot rule=0 ' "$FAKE_REC/faults.log")" -eq 1 ]
check "both recipients failed with SES's reply" [ "$(log_count scheduler.failed \
	to='<(alice|bob)@dest\.example\.net>' \
	reply="$not_verified unverified@example\.com")" -eq 2 ]
check "one bounce queued for it" [ "$(log_count bounce.queued)" -eq 1 ]
check "the bounce is a delivery status notification quoting SES" python3 - "$FAKE_REC" "$not_verified" <<'PY'
import email, email.policy, glob, json, re, sys
rec, reply = sys.argv[1], sys.argv[2] + " unverified@example.com"
[meta] = [json.load(open(p)) for p in glob.glob(rec + "/*.json")]
raw = open(rec + "/%06d.eml" % meta["seq"], "rb").read()
text = raw.decode("ascii")              # a bounce is 7-bit
unfolded = re.sub(r"\r\n(?=[ \t])", "", text)
msg = email.message_from_bytes(raw, policy=email.policy.default)
problems = []
def want(what, ok):
    if not ok:
        problems.append(what)
want("envelope from bounces@example.com", meta["mail_from"] == "bounces@example.com")
want("envelope to the sender", meta["rcpt_to"] == ["unverified@example.com"])
want("From: bounces@example.com", "bounces@example.com" in str(msg["From"]))
want("To: the sender", "unverified@example.com" in str(msg["To"]))
want("multipart/report", msg.get_content_type() == "multipart/report")
want("report-type=delivery-status", msg.get_param("report-type") == "delivery-status")
want("a message/delivery-status part",
     any(p.get_content_type() == "message/delivery-status" for p in msg.walk()))
want("SES's reply verbatim in Diagnostic-Code",
     unfolded.count("Diagnostic-Code: smtp; " + reply + "\r\n") == 2)
for r in ("alice@dest.example.net", "bob@dest.example.net"):
    want("Final-Recipient " + r, "Final-Recipient: rfc822; %s\r\n" % r in unfolded)
want("Action: failed, twice", unfolded.count("\r\nAction: failed\r\n") == 2)
want("Status: 5.0.0, twice", unfolded.count("\r\nStatus: 5.0.0\r\n") == 2)
want("the original header", "X-Bounce-Test: 1\r\n" in text)
want("lines of at most 998", all(len(l) <= 998 for l in text.split("\r\n")))
print("bounce: %d bytes%s" % (len(raw), "; missing: " + ", ".join(problems) if problems else ""))
sys.exit(1 if problems else 0)
PY

# 2. A bounce that SES refuses too is not bounced in its turn.
set_faults "{\"rules\": [
	{\"step\": \"dot\", \"match\": \"@dest.example.net\",
	 \"reply\": \"$not_verified unverified@example.com\"},
	{\"step\": \"dot\", \"match\": \"bounces@example.com\",
	 \"reply\": \"$not_verified bounces@example.com\"}]}"
check "a second failing message is accepted" \
	send_as 2 unverified@example.com carol@dest.example.net
check "its bounce is queued" wait_event -n 2 bounce.queued to='<unverified@example.com>'
dsn=$(log_field bounce.queued dsn_id)
check "SES refuses the bounce, and it is not bounced" \
	wait_event scheduler.no_bounce id="$dsn" failed=1 \
	    msg='the message is itself a bounce'
check "the spool empties" wait_spool_empty 10
check "the bounce was tried once" [ "$(grep -c 'step=dot rule=1 ' "$FAKE_REC/faults.log")" -eq 1 ]
check "no bounce of the bounce" [ "$(log_count bounce.queued)" -eq 2 ]
check "nothing more arrived" [ "$(delivered)" -eq 1 ]

# 3. 120 recipients: three transactions, 50 + 50 + 20, the same bytes.
set_faults '{}'
rcpts=$(for k in $(seq 120); do echo "r$k@many.example.net"; done)
# shellcheck disable=SC2086
check "a message to 120 recipients is accepted" send_as 3 sender@example.com $rcpts
check "it arrives as three transactions" wait_delivered 4 30
check "the spool empties" wait_spool_empty 10
check "50 + 50 + 20 recipients, each exactly once, the same bytes" python3 -c "
import glob, json, sys
sent = open('$work/custom/3.eml', 'rb').read()
m = [json.load(open(p)) for p in sorted(glob.glob('$FAKE_REC/*.json'))]
m = [x for x in m if x['mail_from'] == 'sender@example.com']
sizes = sorted(len(x['rcpt_to']) for x in m)
got = sorted(r for x in m for r in x['rcpt_to'])
want = sorted('r%d@many.example.net' % k for k in range(1, 121))
same = all(open('$FAKE_REC/%06d.eml' % x['seq'], 'rb').read() == sent for x in m)
print('transactions:', sizes, 'bodies identical:', same)
sys.exit(0 if sizes == [20, 50, 50] and got == want and same else 1)"
check "nothing else failed or bounced" \
	[ "$(log_count scheduler.failed)" -eq 4 -a \
	  "$(log_count bounce.queued)" -eq 2 -a \
	  "$(records_from bounces@example.com)" -eq 1 ]
stop_daemon
finish
