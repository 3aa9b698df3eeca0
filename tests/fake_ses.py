#!/usr/bin/env python3
"""fake_ses.py - a fake Amazon SES SMTP endpoint for sesrelay's tests.

Speaks the dialogue SES speaks (see ses-facts.md sections 3 and 4), records every
accepted message, and can inject faults described in a JSON file.  Standard
library only (Python 3.11+).

    fake_ses.py --listen 127.0.0.1 --port 0 --port-file FILE --tls starttls|wrapper
                --cert server.pem --key server.key --record DIR
                [--user U --password P] [--faults FILE] [--pid-file FILE]
                [--log FILE] [--idle-timeout SECONDS] [--max-size BYTES]

Record directory (all files appear atomically: written as *.tmp, then renamed;
<seq>.json is renamed last, so once it exists <seq>.eml is complete; both exist
before the client is sent the 250):
    <seq>.eml        message exactly as received, un-dot-stuffed, line ends as on
                     the wire, without the terminating "." line
    <seq>.json       {"seq", "conn", "mail_from", "rcpt_to", "ses_id", "size",
                      "auth_user", "tls", "helo"}
    connections.log  "conn=C opened tls=B", "conn=C tls_error=REASON",
                     "conn=C closed messages=N"
    faults.log       one line per injected fault (and per faults-file error)
<seq> is a 6-digit counter continuing after the highest one already in DIR.

Faults file (JSON, re-read whenever it changes; missing = no faults):
    {"rules": [{"step": STEP, "reply": "454 ..." | ["250-a", "250 b"],
                "action": "reply|drop|drop_during|drop_after_record|delay",
                "seconds": 2, "count": 3, "match": "substring", "close": false}],
     "drop_after_seconds": 0, "max_messages_per_conn": 0, "max_connections": 0}
STEP is one of STEPS below or "any".  See FaultEngine for the exact semantics.
"""
import argparse
import asyncio
import base64
import binascii
import json
import os
import re
import secrets
import signal
import ssl
import string
import sys
import time
import uuid

HOST = "email-smtp.amazonaws.com"
MAX_CMD_LINE = 64 * 1024      # longer command lines get "500 Line too long" + close
MAX_DATA_CHUNK = 1024 * 1024  # DATA lines longer than this are handled in chunks
TLS_HANDSHAKE_TIMEOUT = 10.0
ALNUM = string.ascii_letters + string.digits
UPPER_ALNUM = string.ascii_uppercase + string.digits

# Fault steps: points in the dialogue where the server is about to reply.
STEPS = ("banner", "ehlo", "starttls", "auth", "mail", "rcpt", "data", "dot",
         "rset", "noop", "quit")
# Fault actions and the steps they make sense at (None = every step).
ACTIONS = {
    "reply": None,                      # replace the normal reply with rule["reply"]
    "drop": None,                       # close the TCP connection, no reply
    "delay": None,                      # sleep rule["seconds"], then carry on
    "drop_during": {"data"},            # drop after the first line of the body
    "drop_after_record": {"dot"},       # record the message, then drop (lost 250)
}


def ses_message_id():
    """An id laid out like SES's: prefix, ms-since-epoch in hex, uuid, -000000."""
    return "0100%012x-%s-000000" % (int(time.time() * 1000), uuid.uuid4())


def write_atomic(path, data):
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.rename(tmp, path)


class Close(Exception):
    """Ends a session.  abort=True: drop the TCP connection (no TLS close_notify)."""
    def __init__(self, abort=False):
        super().__init__()
        self.abort = abort


class AuthFailed(Exception):
    """Ends an AUTH exchange early with the given reply."""


class AppendLog:
    """A line-oriented append-only log file, flushed after every line."""
    def __init__(self, path):
        self.f = open(path, "a", encoding="utf-8", errors="backslashreplace") if path else None

    def __call__(self, line):
        if self.f:
            self.f.write(line + "\n")
            self.f.flush()

    def close(self):
        if self.f:
            self.f.close()


class Decision:
    """What the fault engine wants done at one step."""
    def __init__(self):
        self.delay = 0.0
        self.action = None   # None = behave normally
        self.reply = None    # list of reply lines for action "reply"
        self.close = False


class FaultEngine:
    """Table-driven fault injection.

    At each step decide() first runs the limit checks registered for that step
    in LIMITS (each may return replacement reply lines, which then also close the
    connection), then walks the rules in file order.  A rule applies when its
    step is this step or "any", its action makes sense here (ACTIONS), its
    "match" (if any) is a substring of one of the step's targets, and it has
    fired fewer than "count" times (default unlimited; counted across all
    connections, reset when the file is re-read).  "delay" rules add up and the
    walk continues; the first other applicable rule decides and ends the walk.
    New kinds of limits (rates, daily quotas) are added as another entry in
    LIMITS plus a method; new actions as an entry in ACTIONS plus handling in
    Session.step().
    """

    def __init__(self, path, log):
        self.path = path
        self.log = log
        self.key = None
        self.cfg = {}
        self.rules = []
        self.fired = []
        # step -> limit checks, each fn(session) -> reply lines or None
        self.LIMITS = {
            "banner": [("max_connections", self._max_connections)],
            "mail": [("max_messages_per_conn", self._max_messages)],
        }

    def reload(self):
        """Re-read the faults file if it changed (inode, mtime or size)."""
        if not self.path:
            return
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            if self.key is not None:
                self.key, self.cfg, self.rules, self.fired = None, {}, [], []
            return
        key = (st.st_ino, st.st_mtime_ns, st.st_size)
        if key == self.key:
            return
        try:
            with open(self.path, encoding="utf-8") as f:
                cfg = json.load(f)
            if not isinstance(cfg, dict):
                raise ValueError("top level must be an object")
        except (OSError, ValueError) as e:
            # Probably caught half-written: keep the old config, retry next time.
            self.error("cannot read %s: %s" % (self.path, e))
            return
        self.key, self.cfg = key, cfg
        self.rules = [r for i, r in enumerate(cfg.get("rules") or []) if self.valid(i, r)]
        self.fired = [0] * len(self.rules)

    def error(self, msg):
        self.log("error " + msg)
        print("fake_ses: faults: " + msg, file=sys.stderr, flush=True)

    def valid(self, i, r):
        if not isinstance(r, dict):
            self.error("rule %d: not an object" % i)
            return False
        r.setdefault("action", "reply" if "reply" in r else "(none)")
        r["_index"] = i
        problem = None
        if r.get("step") not in STEPS + ("any",):
            problem = "unknown step %r" % r.get("step")
        elif r["action"] not in ACTIONS:
            problem = "unknown action %r" % r["action"]
        elif r["action"] == "reply" and not isinstance(r.get("reply"), (str, list)):
            problem = "action reply needs a \"reply\" string or list of lines"
        elif r["action"] == "delay" and not isinstance(r.get("seconds"), (int, float)):
            problem = "action delay needs \"seconds\""
        elif r.get("count") is not None and not (isinstance(r["count"], int) and r["count"] >= 0):
            problem = "\"count\" must be a non-negative integer"
        elif not isinstance(r.get("match", ""), str):
            problem = "\"match\" must be a string"
        if problem:
            self.error("rule %d: %s (ignored)" % (i, problem))
        return problem is None

    def setting(self, name):
        """A top-level numeric setting (0 = off)."""
        self.reload()
        v = self.cfg.get(name, 0)
        return v if isinstance(v, (int, float)) else 0

    def _max_connections(self, sess):
        n = self.setting("max_connections")
        if n > 0 and sess.concurrent > n:
            return ["421 Too many concurrent SMTP connections"]
        return None

    def _max_messages(self, sess):
        n = self.setting("max_messages_per_conn")
        if n > 0 and sess.messages >= n:
            # SES's own text for this is not known; clients must go by the code.
            return ["421 Maximum messages per connection exceeded, closing connection"]
        return None

    def decide(self, step, sess, targets):
        self.reload()
        d = Decision()
        for name, check in self.LIMITS.get(step, ()):
            reply = check(sess)
            if reply:
                d.action, d.reply, d.close = "reply", reply, True
                self.log("conn=%d step=%s limit=%s action=reply reply=%s"
                         % (sess.n, step, name, reply[-1]))
                return d
        for i, r in enumerate(self.rules):
            if r["step"] not in (step, "any"):
                continue
            allowed = ACTIONS[r["action"]]
            if allowed is not None and step not in allowed:
                continue
            m = r.get("match")
            if m is not None and not any(m in t for t in targets):
                continue
            if r.get("count") is not None and self.fired[i] >= r["count"]:
                continue
            self.fired[i] += 1
            what = "conn=%d step=%s rule=%d action=%s" % (sess.n, step, r["_index"], r["action"])
            if r["action"] == "delay":
                d.delay += float(r["seconds"])
                self.log("%s seconds=%s" % (what, r["seconds"]))
                continue
            d.action, d.close = r["action"], bool(r.get("close"))
            if d.action == "reply":
                d.reply = [r["reply"]] if isinstance(r["reply"], str) else list(r["reply"])
                what += " reply=" + d.reply[-1]
            self.log(what + (" close=true" if d.close else ""))
            break
        return d


class Recorder:
    """Writes accepted messages into the record directory."""
    def __init__(self, directory):
        self.dir = directory
        os.makedirs(directory, exist_ok=True)
        seqs = [int(n[:-5]) for n in os.listdir(directory)
                if n.endswith(".json") and n[:-5].isdigit()]
        self.seq = max(seqs, default=0)
        self.conn_log = AppendLog(os.path.join(directory, "connections.log"))
        self.fault_log = AppendLog(os.path.join(directory, "faults.log"))

    def message(self, sess, body, ses_id):
        self.seq += 1
        base = os.path.join(self.dir, "%06d" % self.seq)
        meta = {"seq": self.seq, "conn": sess.n, "mail_from": sess.mail_from,
                "rcpt_to": list(sess.rcpts), "ses_id": ses_id, "size": len(body),
                "auth_user": sess.auth_user, "tls": sess.tls, "helo": sess.helo}
        write_atomic(base + ".eml", bytes(body))
        write_atomic(base + ".json", (json.dumps(meta) + "\n").encode())


class LineReader:
    """Reads lines from a StreamReader into our own buffer, so we can tell when
    a client sent more than one command ahead (pipelining) and discard
    plaintext sent ahead of a TLS handshake."""
    def __init__(self, reader):
        self.reader = reader
        self.buf = bytearray()

    def discard(self):
        n = len(self.buf)
        self.buf.clear()
        return n

    async def readline(self, timeout, limit):
        """One line including its LF, or at most `limit` bytes of a longer line
        (no LF), or b"" at EOF.  Raises TimeoutError after `timeout` idle seconds."""
        scanned = 0
        while True:
            i = self.buf.find(b"\n", scanned)
            if i >= 0 or len(self.buf) >= limit:
                n = i + 1 if 0 <= i < limit else limit
                line = bytes(self.buf[:n])
                del self.buf[:n]
                return line
            scanned = len(self.buf)
            data = await asyncio.wait_for(self.reader.read(65536), timeout)
            if not data:
                return b""
            self.buf += data


class Session:
    """One SMTP connection."""

    def __init__(self, srv, n, reader, writer, concurrent):
        self.srv, self.n, self.writer, self.concurrent = srv, n, writer, concurrent
        self.lr = LineReader(reader)
        self.tls = False
        self.greeted = False
        self.helo = None
        self.auth_user = None
        self.messages = 0
        self.drop_during = False
        self.reset_txn()
        self.commands = {
            "EHLO": self.do_ehlo, "HELO": self.do_helo, "STARTTLS": self.do_starttls,
            "AUTH": self.do_auth, "MAIL": self.do_mail, "RCPT": self.do_rcpt,
            "DATA": self.do_data, "RSET": self.do_rset, "NOOP": self.do_noop,
            "QUIT": self.do_quit,
        }

    def reset_txn(self):
        self.mail_from = None
        self.rcpts = []

    def log(self, line):
        self.srv.transcript("conn=%d %s" % (self.n, line))

    # -- I/O -------------------------------------------------------------

    async def send(self, lines):
        for line in lines:
            self.log("> " + line)
        self.writer.write("".join(line + "\r\n" for line in lines).encode())
        await self.writer.drain()

    async def readline(self, limit=MAX_DATA_CHUNK):
        try:
            line = await self.lr.readline(self.srv.args.idle_timeout, limit)
        except TimeoutError:
            await self.send(["451 4.4.2 Timeout waiting for data from client."])
            raise Close()
        if not line:
            self.log("* EOF from client")
            raise Close(abort=True)
        return line

    async def upgrade(self):
        """TLS handshake on the current connection (wrapper mode, STARTTLS)."""
        n = self.lr.discard()
        if n:
            self.log("* discarded %d plaintext bytes sent before the TLS handshake" % n)
        try:
            await self.writer.start_tls(self.srv.ssl_ctx,
                                        ssl_handshake_timeout=TLS_HANDSHAKE_TIMEOUT)
        except (ssl.SSLError, OSError, TimeoutError, asyncio.IncompleteReadError) as e:
            reason = ("%s: %s" % (type(e).__name__, e)) if str(e) else type(e).__name__
            self.srv.rec.conn_log("conn=%d tls_error=%s" % (self.n, reason))
            self.log("* TLS handshake failed: " + reason)
            raise Close(abort=True)
        self.tls = True
        obj = self.writer.get_extra_info("ssl_object")
        self.log("* TLS established %s %s" % (obj.version(), obj.cipher()[0]))

    async def step(self, step, targets, normal):
        """Send the reply for a dialogue step, applying any fault.  Returns True
        if the step takes effect: the normal reply was sent, or a fault reply with
        the same first digit (e.g. a custom 250 text); any other fault reply
        cancels the step's effect."""
        d = self.srv.faults.decide(step, self, targets)
        if d.delay:
            await asyncio.sleep(d.delay)
        if d.action == "drop":
            raise Close(abort=True)
        self.drop_during = d.action == "drop_during"
        reply = d.reply if d.action == "reply" else normal
        await self.send(reply)
        if d.close:
            raise Close()
        return reply[-1][:1] == normal[-1][:1]

    # -- the session -----------------------------------------------------

    async def run(self):
        srv = self.srv
        wrapper = srv.args.tls == "wrapper"
        srv.rec.conn_log("conn=%d opened tls=%s" % (self.n, "true" if wrapper else "false"))
        abort = False
        drop_timer = None
        secs = srv.faults.setting("drop_after_seconds")
        if secs > 0:
            drop_timer = asyncio.get_running_loop().call_later(
                secs, self.drop_now, asyncio.current_task(), secs)
        try:
            if wrapper:
                await self.upgrade()
            banner = "220 %s ESMTP SimpleEmailService-d-%s %s" % (
                HOST, "".join(secrets.choice(UPPER_ALNUM) for _ in range(9)),
                "".join(secrets.choice(ALNUM) for _ in range(20)))
            if not await self.step("banner", [], [banner]):
                raise Close()
            while True:
                await self.command()
        except Close as c:
            abort = c.abort
        except asyncio.CancelledError:
            abort = True          # drop_after_seconds, or server shutdown
        except (OSError, ssl.SSLError, asyncio.IncompleteReadError) as e:
            self.log("* connection error: %s" % e)
            abort = True
        finally:
            if drop_timer:
                drop_timer.cancel()
            srv.live -= 1     # a closing connection no longer counts as concurrent
            await self.close(abort)
            srv.rec.conn_log("conn=%d closed messages=%d" % (self.n, self.messages))

    def drop_now(self, task, secs):
        self.srv.rec.fault_log("conn=%d drop_after_seconds=%s action=drop" % (self.n, secs))
        task.cancel()

    async def close(self, abort):
        if not abort:
            try:
                self.writer.close()
                await asyncio.wait_for(self.writer.wait_closed(), 2)
                return
            except (OSError, ssl.SSLError, TimeoutError, asyncio.CancelledError):
                pass
        self.writer.transport.abort()

    async def command(self):
        raw = await self.readline(MAX_CMD_LINE)
        if not raw.endswith(b"\n"):
            await self.send(["500 Line too long"])
            raise Close()
        line = raw.rstrip(b"\r\n").decode("utf-8", "backslashreplace")
        verb, _, arg = line.strip().partition(" ")
        verb, arg = verb.upper(), arg.strip()
        if verb == "AUTH":     # never log credentials
            self.log("< AUTH %s%s" % (arg.split(" ")[0], " <auth data>" if " " in arg else ""))
        else:
            self.log("< " + line)
        if self.lr.buf:
            self.log("* client pipelined commands (PIPELINING is not advertised)")
        handler = self.commands.get(verb)
        if handler is None:
            await self.send(["500 Unrecognized command"])
        else:
            await handler(arg, line)

    async def bad_sequence(self):
        await self.send(["503 Bad sequence of commands"])

    async def do_ehlo(self, arg, line):
        reply = ["250-" + HOST, "250-8BITMIME"]
        if self.srv.args.tls == "starttls" and not self.tls:
            reply.append("250-STARTTLS")
        reply += ["250-AUTH PLAIN LOGIN", "250 Ok"]
        if await self.step("ehlo", [line], reply):
            self.greeted, self.helo = True, arg
            self.reset_txn()

    async def do_helo(self, arg, line):
        if await self.step("ehlo", [line], ["250 " + HOST]):
            self.greeted, self.helo = True, arg
            self.reset_txn()

    async def do_starttls(self, arg, line):
        if self.srv.args.tls != "starttls" or self.tls or not self.greeted:
            return await self.bad_sequence()
        if arg:
            return await self.send(["501 Syntax error"])
        if await self.step("starttls", [line], ["220 Ready to start TLS"]):
            await self.upgrade()
            # RFC 3207: forget everything learnt before the handshake.
            self.greeted, self.helo, self.auth_user = False, None, None
            self.reset_txn()

    async def auth_response(self, prompt):
        """Send a 334 prompt and return the decoded client response."""
        await self.send([prompt])
        raw = await self.readline(MAX_CMD_LINE)
        self.log("< <auth data>")
        return self.b64(raw.strip().decode("ascii", "replace"))

    @staticmethod
    def b64(text):
        if text == "*":
            raise AuthFailed("501 Authentication cancelled")
        if text == "=":       # RFC 4954: an empty initial response
            return b""
        try:
            return base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            raise AuthFailed("501 Invalid base64 data") from None

    async def do_auth(self, arg, line):
        if not self.tls:
            return await self.send(["530 Must issue a STARTTLS command first"])
        if not self.greeted or self.auth_user is not None or self.mail_from is not None:
            return await self.bad_sequence()
        mech, _, initial = arg.partition(" ")
        mech, initial = mech.upper(), initial.strip() or None
        try:
            if mech == "PLAIN":
                data = self.b64(initial) if initial else await self.auth_response("334 ")
                parts = data.split(b"\0")
                if len(parts) != 3:
                    raise AuthFailed("535 Authentication Credentials Invalid")
                user, password = parts[1], parts[2]
            elif mech == "LOGIN":
                user = self.b64(initial) if initial else await self.auth_response("334 VXNlcm5hbWU6")
                password = await self.auth_response("334 UGFzc3dvcmQ6")
            else:
                raise AuthFailed("504 Unrecognized authentication type")
        except AuthFailed as e:
            return await self.send([str(e)])
        user = user.decode("utf-8", "backslashreplace")
        password = password.decode("utf-8", "backslashreplace")
        args = self.srv.args
        good = args.user is None or (user == args.user and password == args.password)
        reply = "235 Authentication successful." if good else "535 Authentication Credentials Invalid"
        if await self.step("auth", [line, user], [reply]) and good:
            self.auth_user = user

    async def parse_path(self, arg, keyword, what):
        """Address from 'FROM:<a@b> params' / 'TO:<a@b>'; None after a 501."""
        m = re.match(r"(?i)%s:\s*<([^<>\s]*)>(\s.*)?$" % keyword, arg)
        addr = m.group(1) if m else ""
        at = addr.rfind("@")
        if at <= 0 or at == len(addr) - 1:      # also rejects the null path <>
            await self.send(["501 Invalid %s address provided" % what])
            return None
        return addr

    async def do_mail(self, arg, line):
        if not self.greeted or self.mail_from is not None:
            return await self.bad_sequence()
        if self.auth_user is None:
            return await self.send(["530 Authentication required"])
        addr = await self.parse_path(arg, "FROM", "MAIL FROM")
        if addr is not None and await self.step("mail", [line], ["250 Ok"]):
            self.mail_from = addr

    async def do_rcpt(self, arg, line):
        if self.mail_from is None:
            return await self.bad_sequence()
        addr = await self.parse_path(arg, "TO", "RCPT TO")
        if addr is not None and await self.step("rcpt", [line], ["250 Ok"]):
            self.rcpts.append(addr)

    async def do_data(self, arg, line):
        if self.mail_from is None or not self.rcpts:
            return await self.bad_sequence()
        targets = [line, self.mail_from] + self.rcpts
        if not await self.step("data", targets, ["354 End data with <CR><LF>.<CR><LF>"]):
            return
        body, size = await self.read_body()
        await self.dot(body, size)

    async def read_body(self):
        """Read the message up to the "." line; return (un-stuffed bytes, size).
        Bytes beyond --max-size are counted but not kept."""
        body, size, at_line_start = bytearray(), 0, True
        while True:
            line = await self.readline()
            if self.drop_during:          # fault: connection lost mid-message
                self.drop_during = False
                self.srv.rec.fault_log("conn=%d step=data action=drop_during dropped" % self.n)
                raise Close(abort=True)
            if at_line_start:
                if line in (b".\r\n", b".\n"):
                    break
                if line.startswith(b"."):     # RFC 5321 4.5.2 transparency
                    line = line[1:]
            at_line_start = line.endswith(b"\n")
            size += len(line)
            if size <= self.srv.args.max_size:
                body += line
        self.log("< <%d bytes of message data>" % size)
        self.log("< .")
        return body, size

    async def dot(self, body, size):
        """Reply after the final dot; record the message if it is accepted."""
        ses_id = ses_message_id()
        if len(self.rcpts) > 50:
            normal = "554 Transaction failed: Recipient count exceeds 50."
        elif size > self.srv.args.max_size:
            normal = "552 Message is too long."
        else:
            normal = "250 Ok " + ses_id
        d = self.srv.faults.decide("dot", self, [self.mail_from] + self.rcpts)
        if d.delay:
            await asyncio.sleep(d.delay)
        accept = normal.startswith("2")
        if d.action in ("drop", "drop_after_record"):
            if accept and d.action == "drop_after_record":
                self.record(body, ses_id)
            raise Close(abort=True)
        reply = [normal]
        if d.action == "reply":
            reply = d.reply
            accept = accept and reply[-1].startswith("2")
            ses_id = (reply[-1][4:].split() + ["", ""])[1]   # "250 Ok <id>"
        if accept:
            self.record(body, ses_id)
        self.reset_txn()
        await self.send(reply)
        if d.close:
            raise Close()

    def record(self, body, ses_id):
        self.srv.rec.message(self, body, ses_id)
        self.messages += 1

    async def do_rset(self, arg, line):
        if await self.step("rset", [line], ["250 Ok"]):
            self.reset_txn()

    async def do_noop(self, arg, line):
        await self.step("noop", [line], ["250 Ok"])

    async def do_quit(self, arg, line):
        if await self.step("quit", [line], ["221 Bye"]):
            raise Close()


class Server:
    def __init__(self, args):
        self.args = args
        self.ssl_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.ssl_ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        self.ssl_ctx.load_cert_chain(args.cert, args.key)
        self.rec = Recorder(args.record)
        self.faults = FaultEngine(args.faults, self.rec.fault_log)
        self.transcript = AppendLog(args.log)
        self.conns = 0
        self.tasks = set()   # all session tasks (cancelled on shutdown)
        self.live = 0        # sessions not yet closing (for max_connections)

    async def handle(self, reader, writer):
        self.conns += 1
        task = asyncio.current_task()
        self.tasks.add(task)
        self.live += 1
        try:
            await Session(self, self.conns, reader, writer, self.live).run()
        finally:
            self.tasks.discard(task)


def quiet_exception_handler(loop, context):
    """Peers that break TLS or reset connections are expected here; stay quiet."""
    if isinstance(context.get("exception"), (OSError, ssl.SSLError)):
        return
    loop.default_exception_handler(context)


async def serve(args):
    srv = Server(args)
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(quiet_exception_handler)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    server = await asyncio.start_server(srv.handle, args.listen, args.port)
    port = server.sockets[0].getsockname()[1]
    if args.pid_file:
        write_atomic(args.pid_file, b"%d\n" % os.getpid())
    write_atomic(args.port_file, b"%d\n" % port)
    print("fake_ses: listening on %s:%d (%s)" % (args.listen, port, args.tls),
          file=sys.stderr, flush=True)
    await stop.wait()
    server.close()
    for task in list(srv.tasks):
        task.cancel()
    if srv.tasks:
        await asyncio.wait(list(srv.tasks), timeout=3)
    for log in (srv.rec.conn_log, srv.rec.fault_log, srv.transcript):
        log.close()
    for path in (args.port_file, args.pid_file):
        if path:
            try:
                os.unlink(path)
            except OSError:
                pass


def main():
    if sys.version_info < (3, 11):
        sys.exit("fake_ses.py needs Python 3.11+ (asyncio StreamWriter.start_tls)")
    p = argparse.ArgumentParser(description="Fake Amazon SES SMTP endpoint for tests.")
    p.add_argument("--listen", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0, help="0 = let the OS pick")
    p.add_argument("--port-file", required=True, help="receives the port once listening")
    p.add_argument("--tls", choices=("starttls", "wrapper"), required=True)
    p.add_argument("--cert", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--record", required=True, help="directory for recorded messages")
    p.add_argument("--user", help="accepted SMTP user (default: accept any credentials)")
    p.add_argument("--password")
    p.add_argument("--faults", help="JSON faults file, re-read when it changes")
    p.add_argument("--pid-file")
    p.add_argument("--log", help="append a transcript of the dialogue here")
    p.add_argument("--idle-timeout", type=float, default=10.0)
    p.add_argument("--max-size", type=int, default=40 * 1024 * 1024,
                   help="larger messages get 552 after the dot (SES: 40 MB)")
    args = p.parse_args()
    if (args.user is None) != (args.password is None):
        p.error("--user and --password go together")
    asyncio.run(serve(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
