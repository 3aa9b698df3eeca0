#!/bin/bash
# test_fake_ses_api.sh - self-test of the fake SES v2 API (tests/fake_ses_api.py).
#
# A small client (client.py below: http.client over TLS, requests signed with
# botocore's SigV4Auth) checks: SendEmail recorded byte for byte with its
# recipients, keep-alive, the signature checks (wrong secret, unknown key,
# tampered body, stale date), session tokens from a keys file (valid, expired,
# removed), GetAccount, GetEmailIdentity, and each fault: MessageRejected for
# one address, SendingPausedException, 500, drop, drop_after_record,
# garbage, chunked answers, the rate limit (429), the daily quota,
# ExpiredTokenException.  About 3 s.
# Exit status: 0 = pass, 1 = fail, 77 = skipped (openssl, python3 or botocore missing).
set -u

here=$(cd "$(dirname "$0")" && pwd)
for tool in openssl python3; do
    command -v "$tool" >/dev/null 2>&1 || { echo "SKIP: $tool not installed"; exit 77; }
done
python3 -c 'import botocore' 2>/dev/null || { echo "SKIP: python3-botocore not installed"; exit 77; }

work=$(mktemp -d "${TMPDIR:-/tmp}/test_fake_ses_api.XXXXXX")
fake_pid=
cleanup() {
    [ -n "$fake_pid" ] && kill "$fake_pid" 2>/dev/null && wait "$fake_pid" 2>/dev/null
    [ -n "${KEEP:-}" ] || rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 1' HUP INT TERM

"$here/mkcerts.sh" "$work/certs" || { echo "mkcerts.sh failed"; exit 1; }
python3 "$here/fake_ses_api.py" --port-file "$work/port" --cert "$work/certs/server.pem" \
    --key "$work/certs/server.key" --record "$work/rec" --region eu-west-1 \
    --access-key AKIDSTATIC:staticsecret --keys-file "$work/keys.json" \
    --faults "$work/faults.json" --log "$work/transcript" 2>"$work/err" &
fake_pid=$!
for _ in $(seq 50); do [ -s "$work/port" ] && break; sleep 0.1; done
[ -s "$work/port" ] || { echo "fake_ses_api did not start:"; cat "$work/err"; exit 1; }

cat >"$work/client.py" <<'EOF'
import base64, datetime, hashlib, http.client, json, os, ssl, sys, time
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

work, port = sys.argv[1], int(open(sys.argv[1] + "/port").read())
ctx = ssl.create_default_context(cafile=work + "/certs/ca.pem")
failed = False

def check(desc, ok, info=None):
    global failed
    print(("ok - " if ok else "not ok - ") + desc + ("" if ok or info is None else " " + repr(info)))
    failed |= not ok

def conn():
    return http.client.HTTPSConnection("localhost", port, context=ctx, timeout=10)

def request(c, method, path, body=b"", key=("AKIDSTATIC", "staticsecret", None),
            region="eu-west-1", tamper=None, date=None, sha=False):
    host = "localhost:%d" % port
    headers = {"Host": host}
    if body:
        headers["Content-Type"] = "application/json"
    if sha:
        headers["X-Amz-Content-SHA256"] = hashlib.sha256(body).hexdigest()
    req = AWSRequest(method=method, url="https://%s%s" % (host, path), headers=headers, data=body)
    signer = SigV4Auth(Credentials(*key), "ses", region)
    if date is None:
        signer.add_auth(req)
    else:
        req.context["timestamp"] = date
        req.headers["X-Amz-Date"] = date
        if key[2]:
            req.headers["X-Amz-Security-Token"] = key[2]
        cr = signer.canonical_request(req)
        sig = signer.signature(signer.string_to_sign(req, cr), req)
        req.headers["Authorization"] = ("AWS4-HMAC-SHA256 Credential=%s, SignedHeaders=%s, "
            "Signature=%s" % (signer.scope(req), signer.signed_headers(
                signer.headers_to_sign(req)), sig))
    sent = tamper(body) if tamper else body
    c.request(method, path, body=sent, headers=dict(req.headers.items()))
    r = c.getresponse()
    data = r.read()
    return r.status, r.getheader("x-amzn-ErrorType"), json.loads(data) if data else None

def send_body(raw, to, cc=(), bcc=(), **extra):
    doc = {"Content": {"Raw": {"Data": base64.b64encode(raw).decode()}},
           "Destination": {"ToAddresses": list(to), "CcAddresses": list(cc),
                           "BccAddresses": list(bcc)}, "FromEmailAddress": "s@example.com"}
    doc.update(extra)
    return json.dumps(doc).encode()

def send(c, raw, to, **kw):
    return request(c, "POST", "/v2/email/outbound-emails", send_body(raw, to), **kw)

def faults(doc):
    with open(work + "/faults.tmp", "w") as f:
        json.dump(doc, f)
    os.rename(work + "/faults.tmp", work + "/faults.json")
    time.sleep(0.02)   # a new mtime even on coarse clocks

def keys(doc):
    with open(work + "/keys.tmp", "w") as f:
        json.dump(doc, f)
    os.rename(work + "/keys.tmp", work + "/keys.json")
    time.sleep(0.02)

def records():
    return sorted(n for n in os.listdir(work + "/rec") if n.endswith(".json"))

def last():
    n = records()[-1]
    return (json.load(open(work + "/rec/" + n)),
            open(work + "/rec/" + n[:-5] + ".eml", "rb").read())

raw = b"From: s@example.com\r\nTo: a@example.com\r\nSubject: t\r\n\r\nbody \xff\r\n.line\r\n"
c = conn()
st, err, doc = request(c, "POST", "/v2/email/outbound-emails",
    send_body(raw, ["a@example.com"], ["b@example.com"], ["c@example.com"],
              ConfigurationSetName="cs", EmailTags=[{"Name": "n", "Value": "v"}]), sha=True)
check("SendEmail: 200 and a MessageId", st == 200 and doc["MessageId"].startswith("0100"))
meta, eml = last()
check("recorded byte for byte", eml == raw)
check("recipients: To, Cc, Bcc", meta["rcpt_to"] == ["a@example.com", "b@example.com", "c@example.com"])
check("configuration set and tags", meta["configuration_set"] == "cs" and meta["tags"] == [{"Name": "n", "Value": "v"}])
check("MessageId recorded", meta["ses_id"] == doc["MessageId"] and meta["access_key"] == "AKIDSTATIC")
st, err, doc = send(c, raw, ["d@example.com"])
check("a second request on the same connection", st == 200 and len(records()) == 2)

st, err, _ = send(conn(), raw, ["a@example.com"], key=("AKIDSTATIC", "wrong", None))
check("wrong secret: 403 SignatureDoesNotMatch", (st, err) == (403, "SignatureDoesNotMatch"))
st, err, _ = send(conn(), raw, ["a@example.com"], key=("AKIDNOPE", "x", None))
check("unknown key: 403 UnrecognizedClientException", (st, err) == (403, "UnrecognizedClientException"))
st, err, _ = send(conn(), raw, ["a@example.com"], region="us-west-2")
check("wrong region: 403", st == 403)
st, err, _ = send(conn(), raw, ["a@example.com"], tamper=lambda b: b.replace(b"a@ex", b"z@ex"))
check("tampered body: 403 SignatureDoesNotMatch", (st, err) == (403, "SignatureDoesNotMatch"))
old = (datetime.datetime.utcnow() - datetime.timedelta(minutes=6)).strftime("%Y%m%dT%H%M%SZ")
st, err, _ = send(conn(), raw, ["a@example.com"], date=old)
check("stale X-Amz-Date: 403 InvalidSignatureException", (st, err) == (403, "InvalidSignatureException"), (st, err, _))
check("nothing recorded for refused signatures", len(records()) == 2)

def iso(t):
    return datetime.datetime.utcfromtimestamp(t).strftime("%Y-%m-%dT%H:%M:%SZ")
keys([{"AccessKeyId": "ASIAONE", "SecretAccessKey": "s1", "Token": "tok1", "Expiration": iso(time.time() + 60)},
      {"AccessKeyId": "ASIAOLD", "SecretAccessKey": "s0", "Token": "tok0", "Expiration": iso(time.time() - 1)}])
st, err, _ = send(conn(), raw, ["a@example.com"], key=("ASIAONE", "s1", "tok1"))
check("keys file: session token accepted", st == 200 and last()[0]["session_token"])
st, err, _ = send(conn(), raw, ["a@example.com"], key=("ASIAONE", "s1", "tokX"))
check("wrong session token: 403 UnrecognizedClientException", (st, err) == (403, "UnrecognizedClientException"))
st, err, _ = send(conn(), raw, ["a@example.com"], key=("ASIAOLD", "s0", "tok0"))
check("past Expiration: 403 ExpiredTokenException", (st, err) == (403, "ExpiredTokenException"))
keys({"AccessKeyId": "ASIATWO", "SecretAccessKey": "s2", "Token": "tok2"})
st, err, _ = send(conn(), raw, ["a@example.com"], key=("ASIAONE", "s1", "tok1"))
check("key gone from the file: 403 ExpiredTokenException", (st, err) == (403, "ExpiredTokenException"))
st, err, _ = send(conn(), raw, ["a@example.com"], key=("ASIATWO", "s2", "tok2"))
check("the new key works", st == 200)

st, err, doc = request(conn(), "GET", "/v2/email/account")
check("GetAccount", st == 200 and doc["SendQuota"]["SentLast24Hours"] == 6 and doc["SendingEnabled"], doc)
faults({"account": {"SendingEnabled": False, "SendQuota": {"MaxSendRate": 5}}})
st, err, doc = request(conn(), "GET", "/v2/email/account")
check("GetAccount overridden", doc["SendQuota"]["MaxSendRate"] == 5 and not doc["SendingEnabled"]
      and doc["SendQuota"]["Max24HourSend"] == 50000)
st, err, doc = request(conn(), "GET", "/v2/email/identities/bounce%40example.com")
check("GetEmailIdentity: verified by default", st == 200 and doc["VerifiedForSendingStatus"])
faults({"identities": {"example.com": True, "no@example.org": False}})
st, err, doc = request(conn(), "GET", "/v2/email/identities/no%40example.org")
check("GetEmailIdentity: not verified", st == 200 and not doc["VerifiedForSendingStatus"])
st, err, doc = request(conn(), "GET", "/v2/email/identities/other.org")
check("GetEmailIdentity: unknown -> 404 NotFoundException", (st, err) == (404, "NotFoundException"))

n = len(records())
faults({"rules": [{"op": "SendEmail", "error": "MessageRejected", "match": "bad@"}]})
st, err, doc = send(conn(), raw, ["bad@example.com"])
check("MessageRejected for one address", (st, err) == (400, "MessageRejected") and "bad@" in doc["message"])
st, err, doc = send(conn(), raw, ["good@example.com"])
check("other addresses pass", st == 200)
for name, status in (("SendingPausedException", 400), ("InternalFailure", 500),
                     ("ExpiredTokenException", 403), ("AccountSuspendedException", 400)):
    faults({"rules": [{"error": name, "count": 1}]})
    st, err, _ = send(conn(), raw, ["a@example.com"])
    st2, _, _ = send(conn(), raw, ["a@example.com"])
    check("%s once (count 1): %d, then 200" % (name, status), (st, err, st2) == (status, name, 200))
n = len(records())
faults({"rules": [{"action": "drop", "count": 1}]})
try:
    send(conn(), raw, ["a@example.com"])
    check("drop: no answer", False)
except (http.client.HTTPException, OSError):
    check("drop: no answer, nothing recorded", len(records()) == n)
faults({"rules": [{"action": "drop_after_record", "count": 1}]})
try:
    send(conn(), raw, ["a@example.com"])
    check("drop_after_record: no answer", False)
except (http.client.HTTPException, OSError):
    check("drop_after_record: recorded, no answer", len(records()) == n + 1)

faults({"rules": [{"action": "garbage", "count": 1}]})
try:
    send(conn(), raw, ["a@example.com"])
    check("garbage: not HTTP", False)
except (http.client.HTTPException, OSError):
    check("garbage: not HTTP, nothing recorded", len(records()) == n + 1)
faults({"chunked": True})
st, err, doc = send(conn(), raw, ["a@example.com"])
check("chunked answers", st == 200 and doc["MessageId"].startswith("0100"))
time.sleep(1.05)  # nothing sent in the last second
faults({"rate": 2})
c = conn()
got = [send(c, raw, ["r@example.com"])[:2] for _ in range(3)]
check("rate 2/s: the third in a second gets 429 TooManyRequestsException",
      got == [(200, None), (200, None), (429, "TooManyRequestsException")], got)
time.sleep(1.05)
check("rate: accepted again a second later", send(c, raw, ["r@example.com"])[0] == 200)
used = request(c, "GET", "/v2/email/account")[2]["SendQuota"]["SentLast24Hours"]
faults({"daily_quota": used + 1})
ok = send(c, raw, ["q@example.com"])[0]
st, err, doc = send(c, raw, ["q@example.com"])
check("daily quota: LimitExceededException after the quota",
      (ok, st, err) == (200, 400, "LimitExceededException") and doc["message"] == "Daily message quota exceeded.", (ok, st, err, doc))
sys.exit(1 if failed else 0)
EOF
python3 "$work/client.py" "$work"
rc=$?
if ! grep -q 'closed requests=2' "$work/rec/connections.log"; then
    echo "not ok - keep-alive: a connection served two requests"; rc=1
else
    echo "ok - keep-alive: a connection served two requests"
fi
kill -TERM "$fake_pid"
wait "$fake_pid" || { echo "not ok - fake exits 0 on SIGTERM"; rc=1; }
fake_pid=
[ $rc -eq 0 ] || { echo "--- fake's stderr"; cat "$work/err"; }
exit $rc
