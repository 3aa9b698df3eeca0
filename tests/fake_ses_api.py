#!/usr/bin/env python3
"""fake_ses_api.py - a fake Amazon SES v2 API (HTTPS) for sesrelay's tests.

Serves SendEmail (raw content), GetAccount and GetEmailIdentity over HTTPS
with keep-alive, checks every request's AWS Signature Version 4 with
botocore (an implementation other than sesrelay's: Debian's python3-botocore),
records every accepted message, and injects the faults described in a JSON
file.  See ses-facts.md section 10 for what the real API does.

    fake_ses_api.py --port-file FILE --cert server.pem --key server.key
                    --record DIR [--listen 127.0.0.1] [--port 0]
                    [--region us-east-1] [--access-key ID:SECRET[:TOKEN]]...
                    [--keys-file FILE]... [--faults FILE] [--pid-file FILE]
                    [--log FILE] [--idle-timeout SECONDS] [--max-size BYTES]

Requests:
    POST /v2/email/outbound-emails          SendEmail: Content.Raw.Data (base64),
                                            optional Destination, FromEmailAddress,
                                            ConfigurationSetName, EmailTags;
                                            200 {"MessageId": "..."}
    GET  /v2/email/account                  GetAccount
    GET  /v2/email/identities/<identity>    GetEmailIdentity
Errors are answered as the real API does: the status, the header
x-amzn-ErrorType: <Name>, and a JSON body {"message": "..."}.  Request bodies
must carry Content-Length (chunked requests get 411).

Credentials.  A request is accepted when its Authorization header is a
SigV4 signature (service "ses", the --region; the Host, X-Amz-Date and, with
a session token, X-Amz-Security-Token headers signed) that botocore computes
the same from the request as received, X-Amz-Date is within 5 minutes of
now, and X-Amz-Content-SHA256, when sent, is the body's SHA-256.  The path is
canonicalised as botocore does for every service but S3: the URI-encoded path
is encoded once more ("%40" -> "%2540").  Known keys:
    --access-key ID:SECRET[:TOKEN]  always valid (a long-lived IAM key, or a
                                    session token that never expires)
    --keys-file FILE                JSON, re-read when it changes: one object or
                                    a list of objects (or {"keys": [...]}) in the
                                    instance metadata's form: {"AccessKeyId",
                                    "SecretAccessKey", "Token", "Expiration":
                                    "2026-12-02T07:30:00Z"} (Token and Expiration
                                    optional).  A key stays valid until its
                                    Expiration; a key once listed and since gone
                                    from the file counts as expired.  Write it
                                    atomically (a temporary file, then rename).
Answers: an expired key -> 403 ExpiredTokenException; an unknown key or a
wrong session token -> 403 UnrecognizedClientException; a bad signature ->
403 SignatureDoesNotMatch; a stale X-Amz-Date -> 403 InvalidSignatureException.

Record directory (written as *.tmp, then renamed; <seq>.json last, before
the 200 is sent):
    <seq>.eml        the raw message: Content.Raw.Data decoded, byte for byte
    <seq>.json       {"seq", "conn", "ses_id", "size", "from", "rcpt_to" (every
                      Destination address, To, Cc then Bcc), "mail_from"
                      (FeedbackForwardingEmailAddress: the envelope sender,
                      where SES sends bounces), "destination",
                      "configuration_set", "tags", "access_key", "session_token"}
    requests.log     "conn=C op=OP status=S [error=NAME] key=ACCESS_KEY_ID"
    connections.log  "conn=C opened", "conn=C peak_concurrent=N",
                     "conn=C tls_error=REASON", "conn=C closed requests=N"
    faults.log       one line per injected fault or limit hit
<seq> is a 6-digit counter continuing after the highest one already in DIR.

Faults file (JSON, re-read whenever it changes; missing = no faults):
    {"rules": [{"op": "SendEmail" | "GetAccount" | "GetEmailIdentity" | "any",
                "action": "error" | "drop" | "drop_after_record" | "delay",
                "error": "MessageRejected", "status": 400, "message": "...",
                "match": "substring", "count": 3, "seconds": 2}],
     "rate": 0, "rate_burst": 0, "daily_quota": 0, "chunked": false,
     "account": {...GetAccount fields...}, "identities": {"example.com": true}}
A rule applies when its op is this request's (or "any"), its "match" (if
any) is a substring of FromEmailAddress, a Destination address or, for
GetEmailIdentity, the identity, and it has fired fewer than "count" times
(default unlimited; reset when the file is re-read).  "delay" rules add up
and the walk goes on; the first other rule decides:
    error             answer the error named (status and message from ERRORS
                      unless given): e.g. MessageRejected, SendingPausedException,
                      AccountSuspendedException, ExpiredTokenException,
                      InternalFailure (500), ServiceUnavailable (503)
    drop              read the request, close the connection, no answer
    drop_after_record (SendEmail) record the message, then close without an
                      answer: SES took it, the client cannot know
    garbage           answer bytes that are not HTTP, then close (nothing
                      recorded)
Rules are applied after the signature check: a request that fails it never
reaches them.  The limits count recipients (Destination addresses, at least 1)
of recorded messages, across connections, as fake_ses.py does:
    rate, rate_burst  R recipients per second with bursts of B (default R, or 1
                      if R < 1): 429 TooManyRequestsException "Maximum sending
                      rate exceeded."
    daily_quota       above N recipients since start: 400 LimitExceededException
                      "Daily message quota exceeded." (the type SES's API uses for
                      this is not documented; sesrelay goes by the message text)
"chunked": true sends every answer with Transfer-Encoding: chunked (the body
in two chunks) instead of Content-Length.
GetAccount answers SendQuota {Max24HourSend: daily_quota or 50000, MaxSendRate:
rate or 14, SentLast24Hours: recipients recorded}, SendingEnabled true,
EnforcementStatus HEALTHY, ProductionAccessEnabled true; "account" overrides
any of these (SendQuota merged key by key).  GetEmailIdentity: "identities"
maps an identity to whether it is verified for sending; an identity not in it
gets 404 NotFoundException; without "identities" every identity is verified.
"""
import argparse
import base64
import binascii
import collections
import datetime
import hashlib
import http.server
import json
import os
import re
import secrets
import signal
import socketserver
import ssl
import sys
import threading
import time
import urllib.parse
import uuid

try:
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials
except ImportError:                     # the self-test skips on this status
    print("fake_ses_api.py: python3-botocore is not installed", file=sys.stderr)
    sys.exit(77)

MAX_SKEW = 300                  # seconds X-Amz-Date may be off (AWS: 5 minutes)
MAX_RECIPIENTS = 50
SEND_PATH = "/v2/email/outbound-emails"
ACCOUNT_PATH = "/v2/email/account"
IDENTITY_PREFIX = "/v2/email/identities/"

# name -> (HTTP status, default message)
ERRORS = {
    "TooManyRequestsException": (429, "Maximum sending rate exceeded."),
    "LimitExceededException": (400, "Daily message quota exceeded."),
    "MessageRejected": (400, "Email address is not verified. The following "
                        "identities failed the check in region US-EAST-1: %s"),
    "MailFromDomainNotVerifiedException": (400, "MAIL FROM domain is not verified."),
    "BadRequestException": (400, "Invalid request."),
    "SendingPausedException": (400, "Sending is paused for this account."),
    "AccountSuspendedException": (400, "The account has been suspended."),
    "NotFoundException": (404, "Resource not found."),
    "ExpiredTokenException": (403, "The security token included in the request is expired"),
    "UnrecognizedClientException": (403, "The security token included in the request is invalid."),
    "SignatureDoesNotMatch": (403, "The request signature we calculated does not match "
                              "the signature you provided."),
    "InvalidSignatureException": (403, "Signature expired."),
    "InternalFailure": (500, "An internal error occurred."),
    "ServiceUnavailable": (503, "Service unavailable."),
}
OPS = ("SendEmail", "GetAccount", "GetEmailIdentity")
ACTIONS = ("error", "drop", "drop_after_record", "delay", "garbage")
AUTH_RE = re.compile(r"AWS4-HMAC-SHA256 Credential=([^/,\s]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request,"
                     r"\s*SignedHeaders=([a-z0-9;-]+),\s*Signature=([0-9a-f]{64})$")


class ApiError(Exception):
    """An error answer: the status, x-amzn-ErrorType and the message."""
    def __init__(self, name, message=None, status=None):
        super().__init__(name)
        st, msg = ERRORS.get(name, (400, name))
        self.name = name
        self.status = status or st
        self.message = message if message is not None else msg.replace(": %s", "")


class Drop(Exception):
    """Close the connection without an answer (or with these bytes)."""
    def __init__(self, data=b""):
        super().__init__()
        self.data = data


def ses_message_id():
    return "0100%012x-%s-000000" % (int(time.time() * 1000), uuid.uuid4())


def write_atomic(path, data):
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.rename(tmp, path)


def parse_time(text):
    """An ISO 8601 UTC time ("2026-12-02T07:30:00Z") as a POSIX time."""
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


class AppendLog:
    """A line-oriented append-only log, flushed after every line, thread-safe."""
    def __init__(self, path):
        self.f = open(path, "a", encoding="utf-8", errors="backslashreplace") if path else None
        self.lock = threading.Lock()

    def __call__(self, line):
        if self.f:
            with self.lock:
                self.f.write(line + "\n")
                self.f.flush()


class JsonFile:
    """A JSON file re-read when its (mtime, size, inode) changes; missing = None."""
    def __init__(self, path):
        self.path, self.key, self.value = path, None, None

    def changed(self):
        """Re-read if needed: True when the content was (re)loaded."""
        if not self.path:
            return False
        try:
            st = os.stat(self.path)
            key = (st.st_mtime_ns, st.st_size, st.st_ino)
        except FileNotFoundError:
            key = None
        if key == self.key:
            return False
        self.key = key
        try:
            with open(self.path, encoding="utf-8") as f:
                self.value = json.load(f) if key else None
        except (OSError, ValueError):
            self.key = None             # half-written: read it again next time
            return False
        return True


class Keys:
    """The credentials the fake accepts (see the module's doc)."""
    def __init__(self, static, files):
        self.static = {}
        for spec in static:
            parts = spec.split(":")
            if len(parts) not in (2, 3):
                sys.exit("fake_ses_api.py: --access-key ID:SECRET[:TOKEN]")
            self.static[parts[0]] = {"secret": parts[1],
                                     "token": parts[2] if len(parts) == 3 else None,
                                     "expires": None}
        self.files = [JsonFile(p) for p in files]
        self.listed = {}                # every key ever seen in a keys file
        self.lock = threading.Lock()    # handler threads re-read concurrently

    @staticmethod
    def entries(doc):
        if isinstance(doc, dict) and "keys" in doc:
            doc = doc["keys"]
        if isinstance(doc, dict):
            doc = [doc]
        return doc if isinstance(doc, list) else []

    def reload(self):
        if not any([f.changed() for f in self.files]):
            return
        current = {}
        for f in self.files:
            for e in self.entries(f.value):
                try:
                    exp = parse_time(e["Expiration"]) if e.get("Expiration") else None
                    current[e["AccessKeyId"]] = {"secret": e["SecretAccessKey"],
                                                 "token": e.get("Token"), "expires": exp}
                except (KeyError, TypeError, ValueError):
                    continue
        for k, v in self.listed.items():
            if k not in current:        # gone from the file: expired
                current[k] = dict(v, expires=min(v["expires"] or 0, time.time()))
        self.listed = current

    def lookup(self, key_id, token):
        """The key's secret, or raise the 403 SES would answer."""
        with self.lock:
            self.reload()
            k = self.static.get(key_id) or self.listed.get(key_id)
        if k is None:
            raise ApiError("UnrecognizedClientException")
        if (k["token"] or None) != (token or None):
            raise ApiError("UnrecognizedClientException")
        if k["expires"] is not None and k["expires"] <= time.time():
            raise ApiError("ExpiredTokenException")
        return k["secret"]


def verify_sigv4(method, raw_path, headers, body, keys, region):
    """Check a request's signature with botocore; the access key id, or raise."""
    auth = headers.get("Authorization", "")
    m = AUTH_RE.match(auth)
    if not m:
        raise ApiError("IncompleteSignatureException", "Authorization header is not SigV4.", 403)
    key_id, date, reg, service, signed, signature = m.groups()
    amz_date = headers.get("X-Amz-Date", "")
    if not re.fullmatch(r"\d{8}T\d{6}Z", amz_date) or amz_date[:8] != date:
        raise ApiError("IncompleteSignatureException", "X-Amz-Date missing or not the scope's date.", 403)
    if service != "ses" or (region and reg != region):
        raise ApiError("SignatureDoesNotMatch", "Credential should be scoped to a valid "
                       "region and service 'ses', not '%s/%s'." % (reg, service))
    names = signed.split(";")
    token = headers.get("X-Amz-Security-Token")
    need = ["host", "x-amz-date"] + (["x-amz-security-token"] if token else [])
    if names != sorted(names) or any(n not in names for n in need) or \
            any(headers.get(n) is None for n in names):
        raise ApiError("SignatureDoesNotMatch", "SignedHeaders must be sorted, name "
                       "host, x-amz-date (and the token), and every one must be sent.")
    sha = headers.get("X-Amz-Content-SHA256")
    if sha is not None and sha != hashlib.sha256(body).hexdigest():
        raise ApiError("SignatureDoesNotMatch", "X-Amz-Content-SHA256 is not the body's hash.")
    secret = keys.lookup(key_id, token)
    when = datetime.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(
        tzinfo=datetime.timezone.utc).timestamp()
    if abs(time.time() - when) > MAX_SKEW:
        raise ApiError("InvalidSignatureException", "Signature expired: %s is now earlier "
                       "or later than the allowed 5 minutes." % amz_date)
    req = AWSRequest(method=method, url="https://%s%s" % (headers["Host"], raw_path),
                     headers={n: headers[n] for n in names}, data=body)
    req.context["timestamp"] = amz_date
    signer = SigV4Auth(Credentials(key_id, secret, token), "ses", reg)
    canonical = signer.canonical_request(req)
    want = signer.signature(signer.string_to_sign(req, canonical), req)
    if not secrets.compare_digest(want, signature):
        raise ApiError("SignatureDoesNotMatch", "The request signature we calculated does "
                       "not match the signature you provided. The Canonical String for "
                       "this request should have been\n'%s'" % canonical)
    return key_id


class Limits:
    """SES's sending rate (token bucket + 1-second window) and daily quota,
    counted in recipients; the same semantics as fake_ses.py's."""
    def __init__(self):
        self.window = collections.deque()
        self.tokens = None
        self.bucket = None
        self.refilled = 0.0
        self.used = 0

    def _refill(self, now, rate, burst):
        while self.window and self.window[0][0] <= now - 1.0:
            self.window.popleft()
        if self.tokens is None or self.bucket != (rate, burst):
            self.tokens, self.bucket = burst, (rate, burst)
        else:
            self.tokens = min(burst, self.tokens + rate * (now - self.refilled))
        self.refilled = now

    @staticmethod
    def rate_of(cfg):
        rate = cfg.get("rate", 0) or 0
        if rate <= 0:
            return None
        burst = cfg.get("rate_burst", 0) or 0
        return rate, (burst if burst > 0 else max(rate, 1))

    def check(self, cfg, want):
        """A reason to refuse want more recipients, or None (call count() next)."""
        quota = cfg.get("daily_quota", 0) or 0
        if quota > 0 and self.used + want > quota:
            return ApiError("LimitExceededException"), "used=%d quota=%s" % (self.used, quota)
        limits = self.rate_of(cfg)
        if limits is None:
            self.tokens = None
            return None
        self._refill(time.monotonic(), *limits)
        in_window = sum(k for _, k in self.window)
        if in_window + want > limits[1] or want > self.tokens + 1e-9:
            return (ApiError("TooManyRequestsException"),
                    "in_window=%d tokens=%.2f rate=%s burst=%s"
                    % (in_window, self.tokens, limits[0], limits[1]))
        return None

    def count(self, cfg, n):
        now = time.monotonic()
        self.used += n
        limits = self.rate_of(cfg)
        if limits is not None:
            self._refill(now, *limits)
            self.tokens -= n
        self.window.append((now, n))


class Faults:
    """The faults file: rules, limits, the account and the identities."""
    def __init__(self, path, log):
        self.file = JsonFile(path)
        self.log = log
        self.cfg, self.rules, self.fired = {}, [], []
        self.lock = threading.RLock()   # handler threads re-read concurrently

    def reload(self):
        with self.lock:
            self._reload()

    def _reload(self):
        if not self.file.changed():
            return
        cfg = self.file.value if isinstance(self.file.value, dict) else {}
        rules = []
        for i, r in enumerate(cfg.get("rules", [])):
            if not isinstance(r, dict) or r.get("op", "any") not in OPS + ("any",) or \
                    r.get("action", "error") not in ACTIONS or \
                    (r.get("action", "error") == "error" and "error" not in r):
                self.log("faults: rule %d ignored: %s" % (i, json.dumps(r)))
                continue
            rules.append(r)
        self.cfg, self.rules, self.fired = cfg, rules, [0] * len(rules)

    def decide(self, op, targets):
        """(total delay, the deciding rule or None)."""
        with self.lock:
            return self._decide(op, targets)

    def _decide(self, op, targets):
        self._reload()
        delay = 0.0
        for i, r in enumerate(self.rules):
            if r.get("op", "any") not in (op, "any"):
                continue
            if "match" in r and not any(r["match"] in t for t in targets):
                continue
            if "count" in r and self.fired[i] >= r["count"]:
                continue
            self.fired[i] += 1
            if r.get("action", "error") == "delay":
                delay += float(r.get("seconds", 1))
                continue
            return delay, r
        return delay, None


class Recorder:
    def __init__(self, directory):
        os.makedirs(directory, exist_ok=True)
        self.dir = directory
        seqs = [int(n[:6]) for n in os.listdir(directory) if re.fullmatch(r"\d{6}\.json", n)]
        self.seq = max(seqs, default=0)
        self.conn_log = AppendLog(os.path.join(directory, "connections.log"))
        self.fault_log = AppendLog(os.path.join(directory, "faults.log"))
        self.request_log = AppendLog(os.path.join(directory, "requests.log"))

    def message(self, raw, meta):
        """Record one message (the caller holds the server's lock)."""
        self.seq += 1
        base = os.path.join(self.dir, "%06d" % self.seq)
        meta = dict(meta, seq=self.seq)
        write_atomic(base + ".eml", raw)
        write_atomic(base + ".json", json.dumps(meta, sort_keys=True).encode() + b"\n")


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "Server"
    disable_nagle_algorithm = True  # the answer's header and body: two writes

    def __init__(self, request, client_address, server, conn):
        self.conn = conn
        self.requests = 0
        super().__init__(request, client_address, server)

    def setup(self):
        self.timeout = self.server.args.idle_timeout
        super().setup()

    def log_message(self, fmt, *args):     # the transcript goes to --log
        self.server.transcript("conn=%d %s" % (self.conn, fmt % args))

    def do_GET(self):
        self.serve()

    def do_POST(self):
        self.serve()

    def do_PUT(self):
        self.serve()

    def read_body(self):
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            raise ApiError("LengthRequired", "Content-Length is required.", 411)
        try:
            n = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            raise ApiError("BadRequestException", "Bad Content-Length.") from None
        if n > self.server.args.max_size + 64 * 1024:
            raise ApiError("MessageRejected", "Message length is more than %d bytes long."
                           % self.server.args.max_size)
        return self.rfile.read(n) if n > 0 else b""

    def serve(self):
        self.requests += 1
        op, key, status, err = "unknown", "-", 200, None
        try:
            body = self.read_body()
            path, _, query = self.path.partition("?")
            op = self.route(self.command, path)
            key = verify_sigv4(self.command, self.path, self.headers, body,
                               self.server.keys, self.server.args.region)
            status, answer = self.operation(op, path, body, key)
        except ApiError as e:
            status, err, answer = e.status, e.name, {"message": e.message}
        except Drop as d:
            self.server.rec.request_log("conn=%d op=%s status=dropped key=%s" % (self.conn, op, key))
            if d.data:
                self.wfile.write(d.data)
            self.close_connection = True
            return
        self.server.rec.request_log("conn=%d op=%s status=%d%s key=%s" % (
            self.conn, op, status, " error=" + err if err else "", key))
        self.answer(status, answer, err)

    @staticmethod
    def route(method, path):
        if method == "POST" and path == SEND_PATH:
            return "SendEmail"
        if method == "GET" and path == ACCOUNT_PATH:
            return "GetAccount"
        if method == "GET" and path.startswith(IDENTITY_PREFIX) and len(path) > len(IDENTITY_PREFIX):
            return "GetEmailIdentity"
        raise ApiError("UnknownOperationException", "Unknown operation %s %s" % (method, path), 404)

    def answer(self, status, doc, err):
        data = json.dumps(doc).encode()
        self.server.faults.reload()
        chunked = bool(self.server.faults.cfg.get("chunked"))
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
            half = len(data) // 2
            data = b"".join(b"%x;ext=1\r\n%s\r\n" % (len(p), p)
                            for p in (data[:half], data[half:])) + b"0\r\nX-Trailer: t\r\n\r\n"
        else:
            self.send_header("Content-Length", str(len(data)))
        self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
        if err:
            self.send_header("x-amzn-ErrorType", err)
        self.end_headers()
        self.wfile.write(data)

    def operation(self, op, path, body, key):
        srv = self.server
        if op == "SendEmail":
            req = parse_send(body)
            targets = [req["from"], req["feedback"]] + req["rcpt_to"]
        elif op == "GetEmailIdentity":
            req = {"identity": urllib.parse.unquote(path[len(IDENTITY_PREFIX):])}
            targets = [req["identity"]]
        else:
            req, targets = {}, []
        delay, rule = srv.faults.decide(op, targets)
        if delay:
            time.sleep(delay)
        if rule is not None:
            self.fault(op, rule, req, key)
        if op == "SendEmail":
            return 200, self.send_email(req, key)
        if op == "GetAccount":
            return 200, srv.account()
        return 200, srv.identity(req["identity"])

    def fault(self, op, rule, req, key):
        action = rule.get("action", "error")
        self.server.rec.fault_log("conn=%d op=%s action=%s%s" % (
            self.conn, op, action, " error=" + rule["error"] if "error" in rule else ""))
        if action == "drop":
            raise Drop()
        if action == "garbage":
            raise Drop(b"\x16\x03garbage, not HTTP at all\r\n\r\n")
        if action == "drop_after_record" and op == "SendEmail":
            self.send_email(req, key)
            raise Drop()
        if action == "error":
            name = rule["error"]
            msg = rule.get("message")
            if msg is None and name == "MessageRejected":
                msg = ERRORS[name][1] % ", ".join(req.get("rcpt_to", []))
            raise ApiError(name, msg, rule.get("status"))

    def send_email(self, req, key):
        srv = self.server
        with srv.lock:
            srv.faults.reload()
            want = max(1, len(req["rcpt_to"]))
            hit = srv.limits.check(srv.faults.cfg, want)
            if hit:
                srv.rec.fault_log("conn=%d op=SendEmail limit=%s rcpts=%d %s" % (
                    self.conn, hit[0].name, want, hit[1]))
                raise hit[0]
            ses_id = ses_message_id()
            srv.rec.message(req["raw"], {
                "conn": self.conn, "ses_id": ses_id, "size": len(req["raw"]),
                "from": req["from"], "rcpt_to": req["rcpt_to"],
                "mail_from": req["feedback"],
                "destination": req["destination"],
                "configuration_set": req["configuration_set"], "tags": req["tags"],
                "access_key": key, "session_token": "X-Amz-Security-Token" in self.headers})
            srv.limits.count(srv.faults.cfg, want)
        return {"MessageId": ses_id}


def parse_send(body):
    """SendEmail's request, checked as SES does, or raise BadRequestException."""
    try:
        doc = json.loads(body)
        data = doc["Content"]["Raw"]["Data"]
        raw = base64.b64decode(data, validate=True)
    except (ValueError, KeyError, TypeError, binascii.Error) as e:
        raise ApiError("BadRequestException", "Invalid SendEmail request: %s" % e) from None
    dest = doc.get("Destination") or {}
    rcpts = []
    for field in ("ToAddresses", "CcAddresses", "BccAddresses"):
        v = dest.get(field, [])
        if not isinstance(v, list) or not all(isinstance(a, str) for a in v):
            raise ApiError("BadRequestException", "Destination.%s must be a list of strings" % field)
        rcpts += v
    if len(rcpts) > MAX_RECIPIENTS:
        raise ApiError("MessageRejected", "Recipient count exceeds %d." % MAX_RECIPIENTS)
    if b"\r\n\r\n" not in raw and b"\n\n" not in raw:
        raise ApiError("MessageRejected", "Message has no header/body separator.")
    tags = doc.get("EmailTags", [])
    if not isinstance(tags, list) or not all(isinstance(t, dict) and set(t) == {"Name", "Value"}
                                             for t in tags):
        raise ApiError("BadRequestException", "EmailTags must be a list of {Name, Value}")
    return {"raw": raw, "from": doc.get("FromEmailAddress", ""), "rcpt_to": rcpts,
            "feedback": doc.get("FeedbackForwardingEmailAddress", ""),
            "destination": dest, "configuration_set": doc.get("ConfigurationSetName"),
            "tags": tags}


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def __init__(self, args):
        super().__init__((args.listen, args.port), Handler)
        self.args = args
        self.ssl_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.ssl_ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        self.ssl_ctx.load_cert_chain(args.cert, args.key)
        self.rec = Recorder(args.record)
        self.faults = Faults(args.faults, self.rec.fault_log)
        self.keys = Keys(args.access_key or [], args.keys_file or [])
        self.transcript = AppendLog(args.log)
        self.lock = threading.Lock()
        self.limits = Limits()
        self.conns = self.live = self.peak = 0

    def finish_request(self, request, client_address):
        """Runs in the connection's thread: the TLS handshake, then HTTP."""
        with self.lock:
            self.conns += 1
            n = self.conns
            self.live += 1
            self.rec.conn_log("conn=%d opened" % n)
            if self.live > self.peak:
                self.peak = self.live
                self.rec.conn_log("conn=%d peak_concurrent=%d" % (n, self.live))
        handler = None
        try:
            request.settimeout(10)
            tls = self.ssl_ctx.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError) as e:
            tls = None
            self.rec.conn_log("conn=%d tls_error=%s" % (n, getattr(e, "reason", None) or e))
        try:
            if tls is not None:
                handler = Handler(tls, client_address, self, n)
        except OSError:
            pass                        # reset by the client
        finally:
            if tls is not None:
                tls.close()
            with self.lock:
                self.live -= 1
            self.rec.conn_log("conn=%d closed requests=%d" % (n, handler.requests if handler else 0))

    def account(self):
        self.faults.reload()
        cfg = self.faults.cfg
        acct = {"DedicatedIpAutoWarmupEnabled": False, "EnforcementStatus": "HEALTHY",
                "ProductionAccessEnabled": True, "SendingEnabled": True,
                "SendQuota": {"Max24HourSend": float(cfg.get("daily_quota") or 50000),
                              "MaxSendRate": float(cfg.get("rate") or 14),
                              "SentLast24Hours": float(self.limits.used)}}
        over = dict(cfg.get("account") or {})
        acct["SendQuota"].update(over.pop("SendQuota", {}))
        acct.update(over)
        return acct

    def identity(self, name):
        self.faults.reload()
        ids = self.faults.cfg.get("identities")
        if ids is not None and name not in ids:
            raise ApiError("NotFoundException", "Email identity %s does not exist." % name)
        ok = True if ids is None else bool(ids[name])
        return {"IdentityType": "EMAIL_ADDRESS" if "@" in name else "DOMAIN",
                "VerifiedForSendingStatus": ok, "FeedbackForwardingStatus": True,
                "VerificationStatus": "SUCCESS" if ok else "PENDING",
                "DkimAttributes": {"SigningEnabled": ok, "Status": "SUCCESS" if ok else "PENDING"}}

    def handle_error(self, request, client_address):
        pass                             # resets and TLS errors are expected


def main():
    p = argparse.ArgumentParser(description="Fake Amazon SES v2 API for tests.")
    p.add_argument("--listen", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0, help="0 = let the OS pick")
    p.add_argument("--port-file", required=True, help="receives the port once listening")
    p.add_argument("--cert", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--record", required=True, help="directory for recorded messages")
    p.add_argument("--region", default="us-east-1", help="the region signatures must name")
    p.add_argument("--access-key", action="append", metavar="ID:SECRET[:TOKEN]")
    p.add_argument("--keys-file", action="append", help="JSON credentials, re-read on change")
    p.add_argument("--faults", help="JSON faults file, re-read when it changes")
    p.add_argument("--pid-file")
    p.add_argument("--log", help="append a line per request here")
    p.add_argument("--idle-timeout", type=float, default=10.0,
                   help="seconds a keep-alive connection may stay idle")
    p.add_argument("--max-size", type=int, default=40 * 1024 * 1024,
                   help="larger request bodies get MessageRejected (SES: 40 MB)")
    args = p.parse_args()
    srv = Server(args)
    port = srv.server_address[1]

    def stop(signum, frame):
        threading.Thread(target=srv.shutdown, daemon=True).start()
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    if args.pid_file:
        write_atomic(args.pid_file, b"%d\n" % os.getpid())
    write_atomic(args.port_file, b"%d\n" % port)
    print("fake_ses_api: listening on %s:%d" % (args.listen, port), file=sys.stderr, flush=True)
    srv.serve_forever(poll_interval=0.1)
    srv.server_close()
    for path in (args.port_file, args.pid_file):
        if path:
            try:
                os.unlink(path)
            except OSError:
                pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
