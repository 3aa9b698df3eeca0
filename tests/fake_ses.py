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
    connections.log  "conn=C opened tls=B", "conn=C peak_concurrent=N",
                     "conn=C tls_error=REASON", "conn=C closed messages=N"
    faults.log       one line per injected fault (and per faults-file error);
                     limits write "conn=C step=S limit=NAME k=v... action=A
                     [reply=TEXT]" (reply last: it contains spaces)
<seq> is a 6-digit counter continuing after the highest one already in DIR.
"peak_concurrent=N" is written when a connection raises the highest number of
open connections seen (refused ones included); the peak starts again from zero
whenever the faults file changes, so a test can see concurrency go down.

Faults file (JSON, re-read whenever it changes; missing = no faults):
    {"rules": [{"step": STEP, "reply": "454 ..." | ["250-a", "250 b"],
                "action": "reply|drop|drop_during|drop_after_record|delay|trickle|endless|slow_read",
                "seconds": 2, "count": 3, "match": "substring", "close": false}],
     "drop_after_seconds": 0, "max_messages_per_conn": 0, "max_connections": 0,
     "rate": 0, "rate_burst": 0, "daily_quota": 0}
STEP is one of STEPS below or "any".  See FaultEngine for the exact semantics.
A misbehaving server (never a real SES), for deadlines on the client's side:
    trickle   the reply (the rule's, or the normal one) is sent one byte every
              "seconds" (default 1), then the step goes on as usual
    endless   "<code>-continued N" lines, one every "seconds" (default 1; 0:
              as fast as the client reads), never the last line; at the dot
              the message is recorded first (an outcome the client cannot know)
    slow_read (step "data") the body is read one line every "seconds"
              (default 1): a server that never stops reading, but crawls
The numeric settings are SES's limits; 0 or absent = no limit:
    max_connections       a connection that makes more than N open connections
                          gets "421 Too many concurrent SMTP connections" as its
                          banner and is closed
    max_messages_per_conn after N accepted messages, MAIL gets 421 and a close
    drop_after_seconds    ELB rotation: the TCP connection is reset S seconds
                          after it opened, whatever it is doing (also
                          connections already open when the setting appears)
    rate, rate_burst      sending rate R in recipients per second, across all
                          connections, with bursts of up to B recipients
                          (default B = R, or 1 if R < 1).  A message is refused
                          after the final dot with "454 Throttling failure:
                          Maximum sending rate exceeded." if its recipients would
                          make more than B in the last second, or more than a
                          token bucket of capacity B refilled at R per second
                          holds (bursts above R cannot be sustained).  With
                          B = R: at most R recipients in any 1-second window.
    daily_quota           a message whose recipients would take the number of
                          recipients recorded since the fake started above N is
                          refused after the final dot with "454 Throttling
                          failure: Daily message quota exceeded."
Rate and quota are checked when a message is about to be accepted (so a 552 or
a rule's 554 takes precedence) and count only recorded messages' recipients;
refused messages are not recorded and the connection stays open.

Fixed SES behaviour: MAIL FROM:<> (and any address without a local part and a
domain) gets "501 Invalid MAIL FROM address provided" (RCPT TO: "... RCPT TO
..."); --idle-timeout seconds without input (default 10) get "451 4.4.2 Timeout
waiting for data from client." and a close.
"""
import argparse
import asyncio
import base64
import binascii
import collections
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
WATCH_INTERVAL = 0.05         # how often drop_after_seconds is checked
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
    "trickle": None,                    # the reply one byte every rule["seconds"]
    "endless": None,                    # continuation lines for ever
    "slow_read": {"data"},              # the body read one line at a time
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
        self.seconds = 1.0   # pace of "trickle" and "endless"


class FaultEngine:
    """Table-driven fault injection, and SES's limits.

    At each step decide() first runs the limit checks registered for that step
    in LIMITS (each may return replacement reply lines, which then also close
    the connection if the entry says so), then walks the rules in file order.
    A rule applies when its step is this step or "any", its action makes sense
    here (ACTIONS), its "match" (if any) is a substring of one of the step's
    targets, and it has fired fewer than "count" times (default unlimited;
    counted across all connections, reset when the file is re-read).  "delay" rules add up and the
    walk continues; the first other applicable rule decides and ends the walk.
    New kinds of limits are added as another entry in LIMITS plus a method;
    new actions as an entry in ACTIONS plus handling in Session.step().

    The pseudo-step "accept" holds the account-wide sending limits (daily
    quota, rate).  They are not checked by decide() but by admit(), called
    just before a message would be recorded, with no await between the check
    and counted(): so concurrent sessions cannot both slip under a limit, a
    delay rule at the dot cannot make the check stale, and only messages that
    would otherwise be accepted are refused or counted.
    """

    def __init__(self, path, log):
        self.path = path
        self.log = log
        self.key = None
        self.cfg = {}
        self.rules = []
        self.fired = []
        self.generation = 0     # bumped whenever the configuration changes
        # Sending-limit state (SES counts recipients, across all connections).
        self.window = collections.deque()  # (monotonic time, recipients) accepted
        self.tokens = None      # rate token bucket level; None while "rate" is off
        self.bucket = None      # the (rate, burst) the bucket was filled for
        self.refilled = 0.0     # when the bucket was last brought up to date
        self.used = 0           # recipients recorded since start (daily_quota)
        # step -> limit checks (name, fn(session) -> None or (reply lines,
        # "k=v ..." details), close the connection after the reply?)
        self.LIMITS = {
            "banner": [("max_connections", self._max_connections, True)],
            "mail": [("max_messages_per_conn", self._max_messages, True)],
            "accept": [("daily_quota", self._daily_quota, False),
                       ("rate", self._rate, False)],
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
                self.generation += 1
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
        self.generation += 1

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
        elif not isinstance(r.get("seconds", 1), (int, float)) or r.get("seconds", 1) < 0:
            problem = "\"seconds\" must be a number >= 0"
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
            return (["421 Too many concurrent SMTP connections"],
                    "concurrent=%d max=%s" % (sess.concurrent, n))
        return None

    def _max_messages(self, sess):
        n = self.setting("max_messages_per_conn")
        if n > 0 and sess.messages >= n:
            # SES's own text for this is not known; clients must go by the code.
            return (["421 Maximum messages per connection exceeded, closing connection"],
                    "messages=%d max=%s" % (sess.messages, n))
        return None

    def _daily_quota(self, sess):
        n, want = self.setting("daily_quota"), len(sess.rcpts)
        if n > 0 and self.used + want > n:
            return (["454 Throttling failure: Daily message quota exceeded."],
                    "rcpts=%d used=%d quota=%s" % (want, self.used, n))
        return None

    def rate_limits(self):
        """(rate R, burst B) from the faults file, or None if "rate" is off."""
        rate = self.setting("rate")
        if rate <= 0:
            return None
        burst = self.setting("rate_burst")
        return rate, (burst if burst > 0 else max(rate, 1))

    def _refill(self, now, rate, burst):
        """Prune the 1-second window and bring the token bucket up to date."""
        while self.window and self.window[0][0] <= now - 1.0:
            self.window.popleft()
        if self.tokens is None or self.bucket != (rate, burst):
            self.tokens = burst         # starts full, and again when R or B change
            self.bucket = (rate, burst)
        else:
            self.tokens = min(burst, self.tokens + rate * (now - self.refilled))
        self.refilled = now

    def _rate(self, sess):
        limits, want = self.rate_limits(), len(sess.rcpts)
        if limits is None:
            self.tokens = None          # starts full again when switched back on
            return None
        rate, burst = limits
        self._refill(time.monotonic(), rate, burst)
        in_window = sum(k for _, k in self.window)
        if in_window + want > burst or want > self.tokens + 1e-9:
            return (["454 Throttling failure: Maximum sending rate exceeded."],
                    "rcpts=%d in_window=%d tokens=%.2f rate=%s burst=%s"
                    % (want, in_window, self.tokens, rate, burst))
        return None

    def counted(self, n):
        """Count n recipients of a message just recorded (rate, daily quota)."""
        now = time.monotonic()
        self.used += n
        limits = self.rate_limits()
        if limits is None:
            self.tokens = None
        else:
            self._refill(now, *limits)
            self.tokens -= n
        self.window.append((now, n))
        while self.window and self.window[0][0] <= now - 1.0:
            self.window.popleft()

    def check_limits(self, step, sess, log_step=None):
        """Run the LIMITS for step; the first one hit is logged and decides."""
        for name, check, close in self.LIMITS.get(step, ()):
            hit = check(sess)
            if hit:
                reply, detail = hit
                self.log("conn=%d step=%s limit=%s %s action=reply reply=%s"
                         % (sess.n, log_step or step, name, detail, reply[-1]))
                return reply, close
        return None

    def admit(self, sess):
        """Reply lines refusing the message sess is about to accept, or None.
        The caller records it and calls counted() before its next await."""
        self.reload()
        hit = self.check_limits("accept", sess, log_step="dot")
        return hit[0] if hit else None

    def decide(self, step, sess, targets):
        self.reload()
        d = Decision()
        hit = self.check_limits(step, sess)
        if hit:
            d.action, d.reply, d.close = "reply", hit[0], hit[1]
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
            d.seconds = float(r.get("seconds", 1))
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
        self.slow_read = 0            # seconds between body lines read
        self.opened = time.monotonic()
        self.task = asyncio.current_task()
        self.dropping = False     # drop_after_seconds has fired
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

    async def trickle(self, lines, seconds):
        """Send the reply lines one byte at a time."""
        data = "".join(line + "\r\n" for line in lines).encode()
        self.log("> (trickled, one byte every %ss) %s" % (seconds, lines[-1]))
        for i in range(len(data)):
            self.writer.write(data[i:i + 1])
            await self.writer.drain()
            await asyncio.sleep(seconds)

    async def endless(self, code, seconds):
        """A multi-line reply whose last line never comes."""
        self.log("> (endless %s- lines, one every %ss)" % (code, seconds))
        n = 0
        while True:
            n += 1
            self.writer.write(("%s-continued %d\r\n" % (code, n)).encode())
            await self.writer.drain()
            await asyncio.sleep(seconds)

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
        self.slow_read = d.seconds if d.action == "slow_read" else 0
        if d.action == "endless":
            await self.endless(normal[-1][:3], d.seconds)
        reply = d.reply if d.action == "reply" else normal
        if d.action == "trickle":
            await self.trickle(reply, d.seconds)
        else:
            await self.send(reply)
        if d.close:
            raise Close()
        return reply[-1][:1] == normal[-1][:1]

    # -- the session -----------------------------------------------------

    async def run(self):
        srv = self.srv
        wrapper = srv.args.tls == "wrapper"
        srv.rec.conn_log("conn=%d opened tls=%s" % (self.n, "true" if wrapper else "false"))
        srv.note_concurrency(self.n)
        srv.sessions.add(self)    # from now on drop_after_seconds may cancel us
        abort = False
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
            srv.sessions.discard(self)   # no cancel() while closing
            srv.live -= 1     # a closing connection no longer counts as concurrent
            await self.close(abort)
            srv.rec.conn_log("conn=%d closed messages=%d" % (self.n, self.messages))

    def drop(self, secs):
        """drop_after_seconds: reset the connection wherever the session is."""
        self.dropping = True
        self.srv.faults.log("conn=%d limit=drop_after_seconds seconds=%s age=%.1f "
                            "in_transaction=%s action=drop"
                            % (self.n, secs, time.monotonic() - self.opened,
                               "true" if self.mail_from is not None else "false"))
        self.log("* drop_after_seconds: dropping the connection")
        # The reset itself, then the task: Python 3.11's wait_for() can
        # swallow a cancel that comes as its read completes, and the
        # session would go on as if nothing happened.
        self.writer.transport.abort()
        self.task.cancel()

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
            if self.slow_read:
                await asyncio.sleep(self.slow_read)
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
        faults = self.srv.faults
        d = faults.decide("dot", self, [self.mail_from] + self.rcpts)
        if d.delay:
            await asyncio.sleep(d.delay)
        if d.action == "drop":
            raise Close(abort=True)
        reply = [normal]
        if d.action == "reply":
            reply = d.reply
            ses_id = (reply[-1][4:].split() + ["", ""])[1]   # "250 Ok <id>"
        accept = normal.startswith("2") and reply[-1].startswith("2")
        # Rate and daily quota: checked, then counted by record(), with no
        # await between.  A refusal overrides drop_after_record (no 250 to lose).
        refusal = faults.admit(self) if accept else None
        if refusal:
            reply, accept = refusal, False
        elif d.action == "drop_after_record":
            if accept:
                self.record(body, ses_id)
            raise Close(abort=True)      # the client never sees the 250
        if accept:
            self.record(body, ses_id)
        self.reset_txn()
        if d.action == "endless":
            await self.endless(reply[-1][:3], d.seconds)
        if d.action == "trickle":
            await self.trickle(reply, d.seconds)
        else:
            await self.send(reply)
        if d.close:
            raise Close()

    def record(self, body, ses_id):
        self.srv.rec.message(self, body, ses_id)
        self.srv.faults.counted(len(self.rcpts))
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
        self.sessions = set()  # sessions drop_after_seconds may cancel
        self.peak = 0        # most live sessions seen in this faults generation
        self.peak_generation = None

    def note_concurrency(self, n):
        """Log "peak_concurrent=N" when connection n makes a new peak.  The peak
        restarts when the faults file changes, so a test can see it go down."""
        self.faults.reload()
        if self.peak_generation != self.faults.generation:
            self.peak, self.peak_generation = 0, self.faults.generation
        if self.live > self.peak:
            self.peak = self.live
            self.rec.conn_log("conn=%d peak_concurrent=%d" % (n, self.live))

    async def watch(self):
        """Enforce drop_after_seconds, re-reading the faults file, so that a
        setting written while connections are open applies to them too."""
        while True:
            await asyncio.sleep(WATCH_INTERVAL)
            if not self.sessions:
                continue
            secs = self.faults.setting("drop_after_seconds")
            if secs <= 0:
                continue
            now = time.monotonic()
            for sess in list(self.sessions):
                if not sess.dropping and now - sess.opened >= secs:
                    sess.drop(secs)

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
    watcher = asyncio.create_task(srv.watch())
    server = await asyncio.start_server(srv.handle, args.listen, args.port)
    port = server.sockets[0].getsockname()[1]
    if args.pid_file:
        write_atomic(args.pid_file, b"%d\n" % os.getpid())
    write_atomic(args.port_file, b"%d\n" % port)
    print("fake_ses: listening on %s:%d (%s)" % (args.listen, port, args.tls),
          file=sys.stderr, flush=True)
    await stop.wait()
    server.close()
    watcher.cancel()
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
