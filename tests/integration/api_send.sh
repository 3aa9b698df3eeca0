#!/bin/bash
# transport = "api" with an IAM key in the credentials file (auth =
# "file"): every request's SigV4 checked by the fake (botocore).  31
# messages, one of them to 60 recipients (two SendEmail calls of at most
# 50), arrive byte for byte with the envelope (Destination, the sender
# as FeedbackForwardingEmailAddress) and ses.configuration_set / ses.tags
# as request fields.  Every answer comes chunked.  On the way SES answers
# 500 twice (resent at once), drops one request unanswered before taking
# it, takes one but loses the answer, and answers one with bytes that
# are not HTTP: the relay cannot tell these apart, so all three are
# logged "duplicate possible" and sent again.  Nothing bounces; the connections are kept alive.  About 8 s.
. "$(dirname "$0")/lib.sh"

start_fake_api
set_faults '{"chunked": true,
	"rules": [{"op": "SendEmail", "error": "InternalFailure", "count": 2},
	{"op": "SendEmail", "action": "drop", "count": 1},
	{"op": "SendEmail", "action": "drop_after_record", "count": 1},
	{"op": "SendEmail", "action": "garbage", "count": 1}]}'
CRED_KEY=1 UP_EXTRA="$API_CONF" SESSIONS=2 \
	EXTRA_CONF='ses = { configuration_set = "cs-api"; tags = [ "app=relay", "env=ci" ]; };' \
	write_conf
start_daemon

check "30 messages accepted" smtpload --port "$SMTP_PORT" --count 30 \
	--concurrency 4 --messages "$work/sent"
check "one to 60 recipients accepted" smtpload --port "$SMTP_PORT" \
	--start 31 --count 1 --rcpts 60 --messages "$work/sent60"
check "the spool empties" wait_spool_empty 30
# (the 60-recipient one's To: is folded by the daemon: checked below)
check "byte for byte, envelope sender included" verify --record "$FAKE_REC" \
	--messages "$work/sent" --count 30 --allow-duplicates --allow-extra
check "the three unanswered requests are logged as possible duplicates" \
	[ "$(log_count upstream.outcome_unknown)" -eq 3 ]
check "every message once but the one whose answer was lost" python3 - "$FAKE_REC" <<'PY'
import collections, glob, json, re, sys
ids = collections.Counter()
for p in glob.glob(sys.argv[1] + "/*.eml"):
    m = re.search(rb"^X-Test-Id: (\d+)\r$", open(p, "rb").read(), re.M)
    ids[(int(m.group(1)), tuple(json.load(open(p[:-4] + ".json"))["rcpt_to"]))] += 1
dups = [k for k, n in ids.items() if n > 1]
print("transactions recorded twice:", len(dups))
sys.exit(0 if len(dups) <= 1 else 1)
PY
check "60 recipients: calls of 50 and 10, the same bytes, each recipient once" python3 - "$FAKE_REC" <<'PY'
import glob, json, re, sys
calls, bodies = [], set()
for p in glob.glob(sys.argv[1] + "/*.eml"):
    data = open(p, "rb").read()
    if re.search(rb"^X-Test-Id: 31\r$", data, re.M):
        calls.append(json.load(open(p[:-4] + ".json"))["rcpt_to"])
        bodies.add(data)
want = {"rcpt31-%d@example.net" % k for k in range(60)}
got = [a for c in calls for a in c]
print("calls:", sorted(len(c) for c in calls))
sys.exit(0 if sorted(len(c) for c in calls) in ([10, 50], [10, 10, 50], [10, 50, 50])
         and set(got) == want and len(bodies) == 1 else 1)
PY
check "configuration set and tags as request fields" python3 - "$FAKE_REC" <<'PY'
import glob, json, sys
metas = [json.load(open(p)) for p in glob.glob(sys.argv[1] + "/*.json")]
ok = all(m["configuration_set"] == "cs-api" and m["tags"] ==
         [{"Name": "app", "Value": "relay"}, {"Name": "env", "Value": "ci"}] for m in metas)
sys.exit(0 if ok and metas else 1)
PY
check "every request signed with the file's key" python3 - "$FAKE_REC" <<'PY'
import sys
lines = open(sys.argv[1] + "/requests.log").read().splitlines()
bad = [l for l in lines if "status=403" in l or "key=AKIATESTKEY" not in l]
print("requests:", len(lines), "refused signatures:", len(bad))
sys.exit(0 if lines and not bad else 1)
PY
conns=$(grep -c ' opened' "$FAKE_REC/connections.log")
requests=$(grep -c 'op=SendEmail' "$FAKE_REC/requests.log")
echo "connections: $conns for $requests requests"
check "connections are kept alive between messages" [ "$conns" -le 10 ]
check "the 500s and the drops resent, nothing failed or bounced" \
	no_events bounce.queued scheduler.failed upstream.auth_failed
stop_daemon
finish
