#!/usr/bin/env python3
"""verify.py - compare what the fake SES recorded with what was sent.

    verify.py --record DIR --messages DIR [--expect-ids FILE | --count N --start K]
              [--allow-duplicates] [--allow-extra]

Each recorded message is matched to the sent one by its X-Test-Id header
and compared byte for byte, envelope included.  Prints a summary line and
exits 1 on any missing, altered or (unless allowed) duplicated message.
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
    ap.add_argument("--messages", required=True)
    ap.add_argument("--expect-ids")
    ap.add_argument("--count", type=int)
    ap.add_argument("--start", type=int, default=1)
    ap.add_argument("--allow-duplicates", action="store_true")
    ap.add_argument("--allow-extra", action="store_true")
    a = ap.parse_args()

    if a.expect_ids:
        expected = {int(x) for x in open(a.expect_ids).read().split()}
    else:
        expected = set(range(a.start, a.start + a.count))

    seen = collections.Counter()
    bad = []
    for name in sorted(os.listdir(a.record)):
        if not name.endswith(".json"):
            continue
        meta = json.load(open(os.path.join(a.record, name)))
        data = open(os.path.join(a.record, name[:-5] + ".eml"), "rb").read()
        m = re.search(rb"^X-Test-Id: (\d+)\r$", data, re.M)
        if not m:
            bad.append("%s: no X-Test-Id" % name)
            continue
        i = int(m.group(1))
        seen[i] += 1
        path = os.path.join(a.messages, "%d.eml" % i)
        if not os.path.exists(path):
            continue
        sent = open(path, "rb").read()
        if data != sent:
            bad.append("message %d (%s): bytes differ (%d sent, %d recorded)"
                       % (i, name, len(sent), len(data)))
        if meta["mail_from"] != "sender@example.com":
            bad.append("message %d: envelope sender %r" % (i, meta["mail_from"]))

    missing = sorted(expected - set(seen))
    extra = sorted(set(seen) - expected)
    dups = sorted(i for i, n in seen.items() if n > 1)
    print("verify: expected=%d delivered=%d missing=%d duplicates=%d "
          "unexpected=%d altered=%d" % (len(expected), len(set(seen)),
                                        len(missing), sum(seen[i] - 1 for i in dups),
                                        len(extra), len(bad)))
    ok = True
    if missing:
        print("missing:", missing[:20])
        ok = False
    if bad:
        print("\n".join(bad[:20]))
        ok = False
    if dups and not a.allow_duplicates:
        print("duplicates:", dups[:20])
        ok = False
    if extra and not a.allow_extra:
        print("unexpected:", extra[:20])
        ok = False
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
