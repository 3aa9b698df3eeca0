#!/usr/bin/env python3
"""smtpload.py - send numbered test messages to sesrelayd, for the tests.

    smtpload.py --count N [--port P | --unix PATH | --sendmail PROG]
                [--concurrency C] [--size BYTES] [--start K]
                [--messages DIR] [--acked FILE] [--rcpts R]

Message number i has a header "X-Test-Id: i" and a deterministic body, so
verify.py can compare what the fake SES recorded byte for byte.  Each
message as sent is written to DIR/i.eml (CRLF line ends: the bytes SES
must receive).  After each 250 the number is appended to --acked (flushed
at once: a crash test reads it after SIGKILLing the daemon).  Exits 0 if
every message got a 250, 1 otherwise (the failures are printed), unless
--tolerate-errors.
"""
import argparse
import os
import smtplib
import socket
import subprocess
import sys
import threading
import time


def make_message(i, size, rcpts):
    lines = [
        "From: Test Sender <sender@example.com>",
        "To: " + ", ".join(rcpts),
        "Subject: test message %d" % i,
        "Date: Sun, 22 Nov 2026 06:00:00 +0000",
        "Message-ID: <test-%d@example.com>" % i,
        "X-Test-Id: %d" % i,
        "",
        "Message %d." % i,
        ".A line that starts with a dot (must be stuffed).",
        "..Two dots.",
        ".",
        "8-bit: caf\u00e9 na\u00efve",
    ]
    body = "\r\n".join(lines).encode("utf-8") + b"\r\n"
    filler = b"x" * 70 + b"\r\n"
    if len(body) < size:
        body += filler * ((size - len(body) + len(filler) - 1) // len(filler))
    return body


class UnixSMTP(smtplib.SMTP):
    def __init__(self, path):
        self.path = path
        super().__init__()
        self.connect_unix()

    def connect_unix(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(60)
        self.sock.connect(self.path)
        self.file = None
        code, msg = self.getreply()
        if code != 220:
            raise smtplib.SMTPConnectError(code, msg)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--count", type=int, required=True)
    ap.add_argument("--start", type=int, default=1)
    ap.add_argument("--port", type=int)
    ap.add_argument("--unix")
    ap.add_argument("--sendmail")
    ap.add_argument("--concurrency", type=int, default=1)
    ap.add_argument("--size", type=int, default=0)
    ap.add_argument("--rcpts", type=int, default=1)
    ap.add_argument("--messages")
    ap.add_argument("--acked")
    ap.add_argument("--tolerate-errors", action="store_true")
    ap.add_argument("--per-connection", type=int, default=20)
    ap.add_argument("--retry-seconds", type=float, default=0,
                    help="retry a failed message for this long, like a client")
    ap.add_argument("--no-size", action="store_true",
                    help="do not declare SIZE= even if offered")
    a = ap.parse_args()

    lock = threading.Lock()
    acked = open(a.acked, "a") if a.acked else None
    errors = []
    numbers = list(range(a.start, a.start + a.count))
    if a.messages:
        os.makedirs(a.messages, exist_ok=True)

    def rcpts_for(i):
        return ["rcpt%d-%d@example.net" % (i, k) for k in range(a.rcpts)]

    def ack(i):
        with lock:
            if acked:
                acked.write("%d\n" % i)
                acked.flush()

    def prepare(i):
        msg = make_message(i, a.size, rcpts_for(i))
        if a.messages:
            with open(os.path.join(a.messages, "%d.eml" % i), "wb") as f:
                f.write(msg)
        return msg

    def connect():
        if a.unix:
            return UnixSMTP(a.unix)
        s = smtplib.SMTP("127.0.0.1", a.port, timeout=60)
        return s

    def send_one(s, i, msg):
        """Send message i; returns the (possibly new) connection."""
        if a.sendmail:
            p = subprocess.run([a.sendmail, "-i", "-f", "sender@example.com"] + rcpts_for(i),
                               input=msg.replace(b"\r\n", b"\n"),
                               capture_output=True, timeout=60)
            if p.returncode != 0:
                raise RuntimeError("exit %d: %s" % (p.returncode,
                                   p.stderr.decode(errors="replace")))
            return s
        if s is None:
            s = connect()
            s.ehlo("client.test")
            if a.no_size:
                s.esmtp_features.pop("size", None)
        s.sendmail("sender@example.com", rcpts_for(i), msg)
        return s

    def worker(mine):
        s = None
        sent_here = 0
        for i in mine:
            msg = prepare(i)
            deadline = time.time() + a.retry_seconds
            while True:
                try:
                    s = send_one(s, i, msg)
                    sent_here += 1
                    # Acknowledged: a client that then fails to QUIT has
                    # still handed the message over, and never sends it again.
                    ack(i)
                    if s is not None and sent_here % a.per_connection == 0:
                        try:
                            s.quit()
                        except Exception:  # noqa: BLE001
                            s.close()
                        s = None
                    break
                except Exception as e:  # noqa: BLE001 - report every failure
                    try:
                        if s is not None:
                            s.close()
                    except Exception:  # noqa: BLE001
                        pass
                    s = None
                    if time.time() < deadline:
                        time.sleep(0.05)   # a real client retries later
                        continue
                    with lock:
                        errors.append("%d: %r" % (i, e))
                    break
        if s is not None:
            try:
                s.quit()
            except Exception:  # noqa: BLE001
                pass

    threads = []
    for c in range(a.concurrency):
        t = threading.Thread(target=worker, args=(numbers[c::a.concurrency],))
        t.start()
        threads.append(t)
    for t in threads:
        t.join()
    if errors:
        print("%d of %d messages failed:" % (len(errors), a.count))
        for e in errors[:10]:
            print("  " + e)
    return 1 if errors and not a.tolerate_errors else 0


if __name__ == "__main__":
    sys.exit(main())
