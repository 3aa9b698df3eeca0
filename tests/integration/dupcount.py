#!/usr/bin/env python3
"""dupcount.py - count the extra copies the fake SES recorded, per round.

    dupcount.py --record DIR --first N --round-size K --rounds R [--logs LOG...]

Messages carry "X-Test-Id: i"; round r (1-based) holds the ids
first + (r-1)*K .. first + r*K - 1.  For each round prints
"round=r extra=E same_queue_id=S other=O": E copies beyond the first of
any id; S of them are a second delivery of one queue id (matched through
SES's message id to the daemon's "delivered ... ses_id=" log lines: a
delivery the spool forgot), O the rest (in flight at the kill, or a
message the client submitted twice).  Exit status 0.
"""
import argparse
import collections
import json
import os
import re
import sys


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--record", required=True)
    ap.add_argument("--first", type=int, required=True)
    ap.add_argument("--round-size", type=int, required=True)
    ap.add_argument("--rounds", type=int, required=True)
    ap.add_argument("--logs", nargs="*", default=[])
    a = ap.parse_args()

    qid_of = {}
    pat = re.compile(r"^(?:\S+ )*?([0-9a-f]{16,}) scheduler delivered .* ses_id=(\S+)")
    for path in a.logs:
        with open(path, errors="replace") as f:
            for line in f:
                m = pat.search(line)
                if m:
                    qid_of[m.group(2)] = m.group(1)
    copies = collections.defaultdict(list)
    for name in os.listdir(a.record):
        if not name.endswith(".json"):
            continue
        meta = json.load(open(os.path.join(a.record, name)))
        data = open(os.path.join(a.record, name[:-5] + ".eml"), "rb").read()
        m = re.search(rb"^X-Test-Id: (\d+)\r$", data, re.M)
        if m:
            copies[int(m.group(1))].append(qid_of.get(meta["ses_id"]))
    for r in range(1, a.rounds + 1):
        lo = a.first + (r - 1) * a.round_size
        extra = same = 0
        for i in range(lo, lo + a.round_size):
            c = copies.get(i, [])
            if len(c) < 2:
                continue
            extra += len(c) - 1
            known = collections.Counter(q for q in c if q is not None)
            same += sum(n - 1 for n in known.values())
        print("round=%d extra=%d same_queue_id=%d other=%d"
              % (r, extra, same, extra - same))
    return 0


if __name__ == "__main__":
    sys.exit(main())
