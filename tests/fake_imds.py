#!/usr/bin/env python3
"""fake_imds.py - a fake EC2 instance metadata service, IMDSv2 only, for
sesrelay's tests of auth = "instance-role".

    fake_imds.py --port-file FILE [--listen 127.0.0.1] [--port 0]
                 [--role NAME] [--lifetime SECONDS] [--keys-file FILE]
                 [--faults FILE] [--log FILE] [--pid-file FILE]

Requests (as the real service answers them):
    PUT /latest/api/token                  with X-aws-ec2-metadata-token-ttl-seconds
                                           (1 to 21600): a session token; without
                                           the header 400; a GET here 405
    GET /latest/meta-data/iam/security-credentials/        the role's name
    GET /latest/meta-data/iam/security-credentials/<role>  {"Code": "Success",
        "LastUpdated", "Type": "AWS-HMAC", "AccessKeyId", "SecretAccessKey",
        "Token", "Expiration": "YYYY-MM-DDTHH:MM:SSZ"}
Every GET needs X-aws-ec2-metadata-token with a token this fake issued and
not yet expired: without one (IMDSv1) or with a bad one, 401.

Credentials: keys (ASIA..., a secret and a session token) valid --lifetime
seconds (default 21600) from when they are issued; as AWS does, the next
key is handed out before the last expires: once two thirds of its life
have passed.  Every key
issued and not yet expired is written to --keys-file, atomically, in the
form tests/fake_ses_api.py --keys-file reads ({"keys": [...]}): the fake
SES API then takes exactly the keys this service handed out.

Faults file (JSON, re-read whenever it changes; missing = none):
    {"down": true}        close every connection without an answer
    {"slow": 5}           wait 5 s before each answer
    {"garbage": true}     answer the credentials with 200 and a body that is
                          not JSON
    {"status": 500}       answer every request with this status
    {"no_role": true}     no role attached: the role list is 404
Log (--log): one line per request: "METHOD PATH status=S [token=yes|no]".
"""
import argparse
import datetime
import json
import os
import secrets
import signal
import string
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ROLE_PATH = "/latest/meta-data/iam/security-credentials/"
ALNUM = string.ascii_uppercase + string.digits


def iso(t):
    return datetime.datetime.fromtimestamp(int(t), datetime.timezone.utc) \
        .strftime("%Y-%m-%dT%H:%M:%SZ")


def write_atomic(path, data):
    tmp = "%s.tmp.%d" % (path, os.getpid())
    with open(tmp, "w") as f:
        f.write(data)
    os.rename(tmp, path)


class State:
    def __init__(self, args):
        self.args = args
        self.lock = threading.Lock()
        self.tokens = {}        # session token -> expiry
        self.keys = []          # issued keys, oldest first
        self.faults = {}
        self.faults_mtime = None

    def current_key(self):
        """The key of the current period, issued when it starts."""
        with self.lock:
            now = time.time()
            if not self.keys or now >= self.keys[-1]["issued"] + self.args.lifetime * 2 / 3:
                issued = now
                self.keys.append({
                    "issued": issued,
                    "AccessKeyId": "ASIA" + "".join(secrets.choice(ALNUM) for _ in range(16)),
                    "SecretAccessKey": secrets.token_urlsafe(30),
                    "Token": "IQoJ" + secrets.token_urlsafe(60),
                    "Expiration": iso(issued + self.args.lifetime),
                    "expires": issued + self.args.lifetime})
                self.keys = [k for k in self.keys if k["expires"] > now]
                self.write_keys()
            return self.keys[-1]

    def write_keys(self):
        if self.args.keys_file:
            doc = {"keys": [{f: k[f] for f in ("AccessKeyId", "SecretAccessKey",
                                                "Token", "Expiration")}
                            for k in self.keys]}
            write_atomic(self.args.keys_file, json.dumps(doc))

    def load_faults(self):
        path = self.args.faults
        try:
            mtime = os.stat(path).st_mtime_ns if path else None
        except FileNotFoundError:
            mtime = None
        if mtime != self.faults_mtime:
            self.faults_mtime = mtime
            try:
                with open(path) as f:
                    self.faults = json.load(f) if mtime else {}
            except (OSError, ValueError):
                self.faults = {}
        return self.faults


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *a):
        pass

    def note(self, status, token=None):
        if self.server.logf:
            line = "%s %s status=%d" % (self.command, self.path, status)
            if token is not None:
                line += " token=%s" % ("yes" if token else "no")
            self.server.logf.write(line + "\n")
            self.server.logf.flush()

    def answer(self, status, body=b"", ctype="text/plain"):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def faulted(self):
        """Apply the faults; True when the request was answered by one."""
        f = self.server.state.load_faults()
        if f.get("slow"):
            time.sleep(float(f["slow"]))
        if f.get("down"):
            self.note(0)
            self.close_connection = True
            return True
        if f.get("status"):
            self.note(int(f["status"]))
            self.answer(int(f["status"]), b"fault\n")
            return True
        return False

    def read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        if n:
            self.rfile.read(n)

    def do_PUT(self):
        self.read_body()
        if self.faulted():
            return
        if self.path != "/latest/api/token":
            self.note(404)
            return self.answer(404)
        ttl = self.headers.get("X-aws-ec2-metadata-token-ttl-seconds", "")
        if not ttl.isdigit() or not 1 <= int(ttl) <= 21600:
            self.note(400)
            return self.answer(400)
        token = "AQAE" + secrets.token_urlsafe(40)
        with self.server.state.lock:
            self.server.state.tokens[token] = time.time() + int(ttl)
        self.note(200)
        self.answer(200, token.encode())

    def do_GET(self):
        if self.faulted():
            return
        st = self.server.state
        token = self.headers.get("X-aws-ec2-metadata-token")
        with st.lock:
            good = token is not None and st.tokens.get(token, 0) > time.time()
        if self.path == "/latest/api/token":
            self.note(405)
            return self.answer(405)
        if not good:
            self.note(401, token is not None)
            return self.answer(401)
        if self.path == ROLE_PATH:
            if st.faults.get("no_role"):
                self.note(404, True)
                return self.answer(404)
            self.note(200, True)
            return self.answer(200, self.server.args.role.encode())
        if self.path == ROLE_PATH + self.server.args.role:
            if st.faults.get("garbage"):
                self.note(200, True)
                return self.answer(200, b"<html>\x00\xffnot json", "text/html")
            k = st.current_key()
            body = json.dumps({"Code": "Success", "LastUpdated": iso(k["issued"]),
                               "Type": "AWS-HMAC", "AccessKeyId": k["AccessKeyId"],
                               "SecretAccessKey": k["SecretAccessKey"],
                               "Token": k["Token"], "Expiration": k["Expiration"]},
                              indent=2)
            self.note(200, True)
            return self.answer(200, body.encode(), "text/plain")
        self.note(404, True)
        self.answer(404)


def main():
    p = argparse.ArgumentParser(description="fake IMDSv2")
    p.add_argument("--listen", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--port-file", required=True)
    p.add_argument("--role", default="sesrelay-role")
    p.add_argument("--lifetime", type=float, default=21600)
    p.add_argument("--keys-file")
    p.add_argument("--faults")
    p.add_argument("--log")
    p.add_argument("--pid-file")
    args = p.parse_args()

    class Server(ThreadingHTTPServer):
        def handle_error(self, request, client_address):
            pass        # a client that hung up (a timeout): not news

    server = Server((args.listen, args.port), Handler)
    server.daemon_threads = True
    server.args = args
    server.state = State(args)
    server.state.current_key()          # the keys file exists from the start
    server.logf = open(args.log, "a") if args.log else None
    if args.pid_file:
        write_atomic(args.pid_file, "%d\n" % os.getpid())
    write_atomic(args.port_file, "%d\n" % server.server_address[1])
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
    server.serve_forever()


if __name__ == "__main__":
    main()
