#!/bin/bash
# sesrelayctl check with API credentials, against the fake SES API:
# over transport "api" it prints the account's quota and state and
# whether rewrite.sender and bounce.sender are verified in the region
# (GetEmailIdentity: the address itself, or its domain); an unverified
# sender fails the check (exit 78) before any mail is sent; a paused
# account and refused credentials are explained; the certificate is
# verified as for SMTP.
. "$(dirname "$0")/lib.sh"

start_fake_api
set_faults '{"identities": {"noreply@example.com": true, "example.org": true}}'
EXTRA_CONF='rewrite = { sender = "noreply@example.com"; };
bounce = { sender = "bounces@example.org"; };' \
	CRED_KEY=1 UP_EXTRA="$API_CONF" write_conf

ctl check >"$work/ok.out" 2>&1
check "exit 0 when all is well" [ $? -eq 0 ]
cat "$work/ok.out"
check "the account's quota and state" grep -q \
	'^ok    account: 0 of 50000 recipients sent in 24 h, at most 14.00/s; sending enabled; enforcement HEALTHY$' \
	"$work/ok.out"
check "rewrite.sender verified" grep -q \
	'^ok    rewrite.sender noreply@example.com is verified for sending in us-east-1$' "$work/ok.out"
check "bounce.sender verified through its domain" grep -q \
	'^ok    bounce.sender bounces@example.org is verified for sending in us-east-1 (its domain)$' "$work/ok.out"
check "the SMTP steps are not run for the API" bash -c "! grep -q EHLO '$work/ok.out'"
check "the secret is never shown" bash -c "! grep -q '$API_SECRET' '$work/ok.out'"

set_faults '{"identities": {"noreply@example.com": false}}'
ctl check >"$work/unverified.out" 2>&1
check "an unverified sender fails the check (exit 78)" [ $? -eq 78 ]
check "... naming it and what SES would say" grep -q \
	'^FAIL  bounce.sender bounces@example.org is not verified for sending in us-east-1: SES would refuse it (554' \
	"$work/unverified.out"
check "... the other too" grep -q '^FAIL  rewrite.sender noreply@example.com is not verified' \
	"$work/unverified.out"

set_faults '{"account": {"EnforcementStatus": "SHUTDOWN"}}'
ctl check >"$work/shutdown.out" 2>&1
check "a shut-down account fails the check (exit 69)" [ $? -eq 69 ]
check "... explained" grep -q '^FAIL  account: sesrelayd would not send now (SES has paused sending' \
	"$work/shutdown.out"

printf 'access_key_id = "AKIATESTKEY";\nsecret_access_key = "wrong";\n' >"$work/credentials"
ctl check >"$work/denied.out" 2>&1
check "refused credentials: exit 77" [ $? -eq 77 ]
check "... 403 explained" grep -q 'ses:GetAccount' "$work/denied.out"

# The certificate is verified: another CA, no request goes out.
asked=$(grep -c 'op=GetAccount' "$FAKE_REC/requests.log")
CRED_KEY=1 UP_EXTRA="$API_CONF" write_conf
"$tests/mkcerts.sh" "$work/other" >/dev/null
sed -i "s|ca_file = .*|ca_file = \"$work/other/ca.pem\";|" "$work/sesrelay.conf"
ctl check >"$work/ca.out" 2>&1
check "an untrusted certificate: exit 69" [ $? -eq 69 ]
check "... explained" grep -q '^FAIL  GetAccount: no answer' "$work/ca.out"
check "... nothing asked of the fake" \
	[ "$(grep -c 'op=GetAccount' "$FAKE_REC/requests.log")" -eq "$asked" ]
finish
