#!/bin/bash
# metrics.listen: the Prometheus endpoint, scraped and parsed while the
# daemon relays: counters by SES reply class, queue gauges, the latency
# histogram.
. "$(dirname "$0")/lib.sh"

start_fake starttls
mport=$(free_port)
set_faults '{"rules": [{"step": "rcpt", "reply": "554 Message rejected: Email address is not verified.", "match": "bad@example.com"}]}'
EXTRA_CONF="metrics = { listen = \"127.0.0.1:$mport\"; };" write_conf
start_daemon
check "two messages accepted" smtpload --port "$SMTP_PORT" --count 2 --messages "$work/sent"
swaks --server 127.0.0.1 --port "$SMTP_PORT" --from s@example.com --to bad@example.com >/dev/null 2>&1
check "both delivered" wait_delivered 2 30
check "the refused one is logged" wait_event scheduler.failed to='<bad@example.com>'
check "a scrape parses, and says what happened" python3 - "$mport" <<'PY'
import re, sys, urllib.request, urllib.error
url = "http://127.0.0.1:%s/metrics" % sys.argv[1]
r = urllib.request.urlopen(url, timeout=10)
assert r.status == 200 and r.headers["Content-Type"].startswith("text/plain; version=0.0.4"), r.headers
samples, types = {}, {}
for line in r.read().decode().splitlines():
    if line.startswith("# TYPE "):
        _, _, name, kind = line.split()
        assert name not in types, "TYPE twice: " + name
        types[name] = kind
        continue
    if line.startswith("#") or not line:
        continue
    m = re.match(r'^([a-z_]+)(\{[^}]*\})? (\S+)$', line)
    assert m, "bad line: %r" % line
    samples[m.group(1) + (m.group(2) or "")] = float(m.group(3))
def v(k):
    return samples[k]
assert v("sesrelay_messages_accepted_total") == 3, samples
assert v("sesrelay_recipients_delivered_total") == 2
assert v("sesrelay_recipients_failed_total") == 1
assert v('sesrelay_ses_replies_total{class="permanent"}') == 1
assert v('sesrelay_ses_replies_total{class="ok"}') >= 2
assert v("sesrelay_delivery_latency_seconds_count") == 2
assert v('sesrelay_delivery_latency_seconds_bucket{le="+Inf"}') == 2
assert types["sesrelay_delivery_latency_seconds"] == "histogram"
assert types["sesrelay_queue_messages"] == "gauge"
assert v("sesrelay_upstream_sessions_allowed") == 4
assert v("sesrelay_upstream_quota_paused") == 0
try:
    urllib.request.urlopen("http://127.0.0.1:%s/other" % sys.argv[1], timeout=10)
    sys.exit("no 404")
except urllib.error.HTTPError as e:
    assert e.code == 404
PY
stop_daemon
finish
