#!/bin/bash
# auth = "file" holding an IAM key (access_key_id, secret_access_key),
# over SMTP: the daemon derives the region's SMTP password itself.  The
# fake SES takes only AWS's documented password for that key and region
# (ses-facts.md 1.4: the example key in us-east-1), so a delivery proves
# the derivation; then the same key from the environment
# (auth = "environment"), a wrong secret (535, nothing lost), and the
# combinations sesrelayd -t refuses (a session token over SMTP).
. "$(dirname "$0")/lib.sh"

KEY_ID=AKIAIOSFODNN7EXAMPLE
SECRET='wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY'
DERIVED='BLBM/9hSUELfq8Gw+rU1YcBjkOxGbhT2XG763xVLGWL9'	# us-east-1

FAKE_ARGS="--user $KEY_ID --password $DERIVED" start_fake starttls
# An IAM key would have the account's limits read from the real SES API:
# not in a hermetic test (ses_account.sh tests that against a fake).
UP_EXTRA="account_check_interval = 0;" write_conf
key_file() {	# key_file SECRET [TOKEN]
	printf 'access_key_id = "%s";\nsecret_access_key = "%s";\n%s' \
	    "$KEY_ID" "$1" "${2:+session_token = \"$2\";
}" >"$work/credentials"
}
key_file "$SECRET"
check "sesrelayd -t takes an IAM key over SMTP" \
	quiet "$sbin/sesrelayd" -t -c "$work/sesrelay.conf"
start_daemon
check "4 messages accepted" smtpload --port "$SMTP_PORT" --count 4 \
	--messages "$work/sent"
check "all 4 arrive with the derived password" wait_delivered 4 20
check "byte for byte, each once" verify --record "$FAKE_REC" \
	--messages "$work/sent" --count 4
check "no authentication failure" no_events upstream.auth_failed
stop_daemon
check "neither the secret nor the password is logged" bash -c \
	"! grep -qF -e '$SECRET' -e '$DERIVED' '$DAEMON_LOG' '$work/fake.log'"

# The same key from the environment, the file a wrong one (unused).
key_file 'not-the-secret'
sed -i 's|^  credentials = .*|&\n  auth = "environment";|' "$work/sesrelay.conf"
AWS_ACCESS_KEY_ID=$KEY_ID AWS_SECRET_ACCESS_KEY=$SECRET start_daemon
check "2 more accepted" smtpload --port "$SMTP_PORT" --count 2 \
	--messages "$work/sent2"
check "they arrive, signed with the environment's key" wait_delivered 6 20
stop_daemon

# A wrong secret: 535, the mail stays spooled, nothing bounces.
sed -i '/^  auth = "environment";/d' "$work/sesrelay.conf"
start_daemon
check "1 more accepted" smtpload --port "$SMTP_PORT" --count 1 \
	--messages "$work/sent3"
check "a wrong secret's password is refused (535)" \
	wait_event upstream.auth_failed
check "nothing more delivered" [ "$(delivered)" -eq 6 ]
check "the spool keeps it" [ "$(spool_count)" -eq 1 ]
check "no bounce" no_events bounce.queued scheduler.failed
stop_daemon

# A session token (temporary credentials) cannot sign in over SMTP.
key_file "$SECRET" 'IQoJb3JpZ2luX2VjEXAMPLE'
"$sbin/sesrelayd" -t -c "$work/sesrelay.conf" >/dev/null 2>"$work/t.err"
check "-t refuses a session token over SMTP (exit 78)" [ $? -eq 78 ]
check "... saying why and what to do" grep -q \
	'upstream.credentials: .*session token.*SMTP interface refuses.*transport = "api"' \
	"$work/t.err"
check "... without the secret" bash -c "! grep -qF -e '$SECRET' -e IQoJb3 '$work/t.err'"
finish
