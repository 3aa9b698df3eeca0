#!/bin/bash
# sesrelayctl check: every step against the fake SES, and the usual
# mistakes explained: IAM secret key instead of the SMTP password, an
# untrusted certificate, a closed port, STARTTLS on a TLS Wrapper port.
. "$(dirname "$0")/lib.sh"

start_fake starttls
write_conf
ctl check >"$work/ok.out" 2>&1
check "all steps pass: exit 0" [ $? -eq 0 ]
for s in "credentials read from" "TCP connected to 127.0.0.1" "banner: 220 " \
    "EHLO accepted" "TLS TLSv1.[23]" "certificate verified for localhost" \
    "EHLO after TLS accepted" "AUTH PLAIN accepted: 235" "all good"; do
	check "step: $s" grep -Eq "^(ok    )?$s" "$work/ok.out"
done
check "the capabilities are shown" grep -q "capabilities: .*8BITMIME; .*STARTTLS;" "$work/ok.out"
check "the password is never shown" bash -c "! grep -q BTestPassw0rd '$work/ok.out'"

CRED_PASSWORD='wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY' write_conf
ctl check >"$work/iam.out" 2>&1
check "an IAM secret key instead of the SMTP password: exit 77" [ $? -eq 77 ]
check "... refused with 535" grep -q "^FAIL  AUTH: 535" "$work/iam.out"
check "... and explained" grep -q "looks like an IAM secret access key.*sesrelayctl smtp-password" "$work/iam.out"

UP_CA=/etc/ssl/certs/ca-certificates.crt write_conf
ctl check >"$work/ca.out" 2>&1
check "an untrusted certificate: exit 76" [ $? -eq 76 ]
check "... explained" grep -q "certificate of localhost is not trusted" "$work/ca.out"

write_conf
closed=$(free_port)
sed -i "s/^  port = $FAKE_PORT;/  port = $closed;/" "$work/sesrelay.conf"
ctl check >"$work/closed.out" 2>&1
check "a closed port: exit 69" [ $? -eq 69 ]
check "... explained" grep -q "firewall or security group" "$work/closed.out"

UP_TLS=wrapper write_conf
ctl check >"$work/mode.out" 2>&1
check "TLS Wrapper against a STARTTLS port: fails" [ $? -ne 0 ]
ctl check --fallback >"$work/nofb.out" 2>&1
check "--fallback without one: exit 78" [ $? -eq 78 ]

# upstream.host an IP literal, the certificate's for that address only:
# check verifies it as the daemon does (tls.c), against the IP address.
kill "$FAKE_PID"
FAKE_CERT=ip start_fake starttls
UP_HOST=127.0.0.1 write_conf
ctl check >"$work/ip.out" 2>&1
check "an IP literal with a certificate for it: exit 0" [ $? -eq 0 ]
check "... the certificate verified for the address" \
	grep -q "certificate verified for 127.0.0.1" "$work/ip.out"
start_daemon
smtpload --port "$SMTP_PORT" --count 1 --messages "$work/sent" >/dev/null
check "... and the daemon delivers to it" wait_delivered 1 20
finish
