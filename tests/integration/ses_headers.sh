#!/bin/bash
# SES's own headers: ses.configuration_set and ses.tags are added to
# every message as it goes upstream, ses.sender_map overrides them per
# envelope sender, and a message that names its own keeps it.  A broken
# map is refused at start with its file and line.
. "$(dirname "$0")/lib.sh"

start_fake starttls
cat >"$work/ses-map" <<'MAP'
# sender or @domain: configuration set, then tags
billing@example.com: billing-events kind=invoice
@example.org: marketing
MAP
EXTRA_CONF="ses = { configuration_set = \"default-set\"; tags = [ \"app=test\", \"env=ci\" ]; sender_map = \"$work/ses-map\"; };" write_conf
start_daemon

send() { # FROM RCPT SUBJECT [EXTRA-HEADER]
	swaks --server 127.0.0.1 --port "$SMTP_PORT" --from "$1" --to "$2" \
	    --header "Subject: $3" ${4:+--add-header "$4"} \
	    --body "body of $3" >"$work/swaks-$3.out" 2>&1
}
check "a message from an unmapped sender is accepted" send plain@example.net r1@example.com one
check "a message from a mapped sender is accepted" send billing@example.com r2@example.com two
check "a message from a mapped domain is accepted" send news@example.org r3@example.com three
check "a message with its own configuration set is accepted" \
	send plain@example.net r4@example.com four "X-SES-CONFIGURATION-SET: its-own"
check "all four arrive" wait_delivered 4 30

eml() { grep -l "\"$1\"" "$FAKE_REC"/*.json | sed 's/json$/eml/'; }
check "defaults: both headers first" \
	cmp -s <(head -2 "$(eml r1@example.com)") \
	<(printf 'X-SES-CONFIGURATION-SET: default-set\r\nX-SES-MESSAGE-TAGS: app=test, env=ci\r\n')
check "the sender's own set and tags" \
	cmp -s <(head -2 "$(eml r2@example.com)") \
	<(printf 'X-SES-CONFIGURATION-SET: billing-events\r\nX-SES-MESSAGE-TAGS: kind=invoice\r\n')
check "the domain's set, the default tags" \
	cmp -s <(head -2 "$(eml r3@example.com)") \
	<(printf 'X-SES-CONFIGURATION-SET: marketing\r\nX-SES-MESSAGE-TAGS: app=test, env=ci\r\n')
check "a message's own set is kept, not doubled" \
	[ "$(grep -ci '^X-SES-CONFIGURATION-SET:' "$(eml r4@example.com)")" -eq 1 ]
check "... and it is its own" grep -q '^X-SES-CONFIGURATION-SET: its-own' "$(eml r4@example.com)"
check "... while the tags are added" grep -q '^X-SES-MESSAGE-TAGS: app=test, env=ci' "$(eml r4@example.com)"
check "after them the message's own header, From: included" \
	grep -q '^From: billing@example.com' <(sed -n '3,$p' "$(eml r2@example.com)")
check "the body arrives intact" grep -q '^body of two' "$(eml r2@example.com)"
stop_daemon

echo "broken line without colon" >>"$work/ses-map"
"$sbin/sesrelayd" -t -c "$work/sesrelay.conf" >/dev/null 2>"$work/t.err"
rc=$?
check "a broken sender map is refused (exit 78)" [ "$rc" -eq 78 ]
check "... naming the file and the line" grep -q "ses.sender_map: $work/ses-map:4: expected" "$work/t.err"
finish
