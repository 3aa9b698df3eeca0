#!/usr/bin/env python3
"""latency_probe.py - accept latency of one SMTP client while others load.

    latency_probe.py --port P --out FILE [--size BYTES]

Sends 1 KiB messages (or --size) one after another over one connection
to 127.0.0.1:P until SIGTERM, and writes to FILE, one per line, the
seconds from the end of the data (the final ".") to the server's reply:
the time the server takes to make the message durable and say 250.
A reply other than 250 is written as "fail".  Used by bench/accept.sh.
"""
import argparse
import os
import signal
import socket
import sys
import time

stop = False


def on_term(*_):
    global stop
    stop = True


def reply(f):
    """Read one (possibly multi-line) reply; return its code."""
    while True:
        line = f.readline()
        if not line:
            raise EOFError("connection closed")
        if line[3:4] != b"-":
            return int(line[:3])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--size", type=int, default=1024)
    a = ap.parse_args()
    signal.signal(signal.SIGTERM, on_term)
    body = b"Subject: latency probe\r\n\r\n" + (b"x" * 70 + b"\r\n") * (a.size // 72 + 1)
    s = socket.create_connection(("127.0.0.1", a.port), 30)
    f = s.makefile("rb")
    reply(f)
    s.sendall(b"EHLO probe.invalid\r\n")
    reply(f)
    out = open(a.out + ".tmp", "w", buffering=1)
    os.rename(a.out + ".tmp", a.out)     # ready: bench/accept.sh waits for it
    while not stop:
        s.sendall(b"MAIL FROM:<probe@bench.invalid>\r\nRCPT TO:<rcpt@example.com>\r\nDATA\r\n")
        codes = [reply(f) for _ in range(3)]
        if codes[2] != 354:
            out.write("fail\n")
            s.sendall(b"RSET\r\n")
            reply(f)
            continue
        s.sendall(body)
        t0 = time.monotonic()
        s.sendall(b".\r\n")
        code = reply(f)
        t1 = time.monotonic()
        out.write("%.6f\n" % (t1 - t0) if code == 250 else "fail\n")
    out.close()
    try:
        s.sendall(b"QUIT\r\n")
        s.close()
    except OSError:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
