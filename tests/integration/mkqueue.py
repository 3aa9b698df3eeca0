#!/usr/bin/env python3
"""mkqueue.py - fill a spool's queue/ quickly, for start-up tests and benches.

    mkqueue.py --template FILE --queue DIR --count N [--start K]
               [--messages DIR] [--corrupt N]

Writes N valid message files straight into DIR (a spool's queue/), in the
format of --template: a message file the daemon itself wrote (so a change
of the format or of the id length is followed).  Message number i has the
body smtpload.py would send for i (an "X-Test-Id: i" header), written
also to --messages/i.eml for verify.py.  --corrupt N adds N files that do
not parse (the daemon must quarantine them).  No fsync: the caller runs
`sync` before dropping the page cache.
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from smtpload import make_message  # noqa: E402


def template_parts(path):
    """The header lines of the template and the length of its id."""
    data = open(path, "rb").read()
    head, _, _ = data.partition(b"\n\n")
    lines = head.split(b"\n")
    tid = next(l[3:] for l in lines if l.startswith(b"id "))
    return lines, len(tid)


def build(lines, new_id, arrived, rcpt, body):
    out = []
    for l in lines:
        if l.startswith(b"rcpt "):
            continue
        if l.startswith(b"flags "):
            continue
        if l.startswith(b"id "):
            l = b"id " + new_id
        elif l.startswith(b"arrived "):
            l = b"arrived %d" % arrived
        elif l.startswith(b"size "):
            digits = len(l) - 5
            l = b"size " + str(len(body)).zfill(digits).encode()
        elif l.startswith(b"from "):
            l = b"from sender@example.com"
        out.append(l)
    out.append(b"rcpt " + rcpt)
    return b"\n".join(out) + b"\n\n" + body + b"END " + new_id + b"\n"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--template", required=True)
    ap.add_argument("--queue", required=True)
    ap.add_argument("--count", type=int, required=True)
    ap.add_argument("--start", type=int, default=1)
    ap.add_argument("--messages")
    ap.add_argument("--corrupt", type=int, default=0)
    a = ap.parse_args()

    lines, idlen = template_parts(a.template)
    if a.messages:
        os.makedirs(a.messages, exist_ok=True)
    now = int(time.time())
    for i in range(a.start, a.start + a.count):
        # Distinct from the daemon's own ids: they start with "ff".
        new_id = ("ff%0*x" % (idlen - 2, i)).encode()
        rcpt = "rcpt%d-0@example.net" % i
        body = make_message(i, 0, [rcpt])
        data = build(lines, new_id, now - 60, rcpt.encode(), body)
        with open(os.path.join(a.queue, new_id.decode()), "wb") as f:
            f.write(data)
        if a.messages:
            with open(os.path.join(a.messages, "%d.eml" % i), "wb") as f:
                f.write(body)
    for k in range(a.corrupt):
        new_id = ("fe%0*x" % (idlen - 2, k)).encode()
        with open(os.path.join(a.queue, new_id.decode()), "wb") as f:
            f.write(b"SESRELAY 1\nid " + new_id + b"\ncut short")
    return 0


if __name__ == "__main__":
    sys.exit(main())
