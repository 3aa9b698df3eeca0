#!/usr/bin/env python3
"""smtpchat.py - a scripted SMTP conversation, for testing replies exactly.

    smtpchat.py --port P SCRIPT      (or --unix PATH, or --pipe COMMAND:
                                      its standard input and output)

SCRIPT lines:
    > TEXT        send TEXT + CRLF  (\\0, \\n, \\r, \\xNN escapes are decoded)
    >raw TEXT     send TEXT as is (escapes decoded, no CRLF added)
    < PATTERN     read one reply (all its lines); its last line must match
                  the regular expression PATTERN (re.match)
    <close        the server must close the connection
Prints each exchange; exits 1 at the first mismatch.
"""
import argparse
import re
import shlex
import socket
import subprocess
import sys


def decode(text):
    return text.encode("latin-1").decode("unicode_escape").encode("latin-1")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--unix")
    ap.add_argument("--pipe")
    ap.add_argument("script")
    a = ap.parse_args()
    if a.pipe:
        return chat(*pipe(a.pipe), a.script)
    if a.unix:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(a.unix)
    else:
        s = socket.create_connection((a.host, a.port))
    s.settimeout(20)
    return chat(s.sendall, s.makefile("rb"), a.script)


def pipe(command):
    """A program speaking SMTP on its standard input and output."""
    p = subprocess.Popen(shlex.split(command), stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE)

    def send(data):
        p.stdin.write(data)
        p.stdin.flush()
    return send, p.stdout


def chat(send, f, script):
    for line in open(script, encoding="latin-1").read().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        if line.startswith(">raw "):
            send(decode(line[5:]))
        elif line.startswith("> ") or line == ">":
            send(decode(line[2:]) + b"\r\n")
        elif line == "<close":
            rest = f.read()
            if rest:
                print("expected close, got %r" % rest[:200])
                return 1
            print("closed, as expected")
        elif line.startswith("< "):
            want = line[2:]
            while True:
                got = f.readline()
                if not got:
                    print("connection closed; wanted %r" % want)
                    return 1
                got = got.rstrip(b"\r\n").decode("latin-1")
                if len(got) < 4 or got[3] != "-":
                    break
            if not re.match(want, got):
                print("MISMATCH: wanted %r, got %r" % (want, got))
                return 1
            print("ok: %s" % got)
    return 0


if __name__ == "__main__":
    sys.exit(main())
