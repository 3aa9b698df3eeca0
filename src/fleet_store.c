/*
 * fleet_store.c: what the fleet knows of its store without talking to
 * it: the address (fleet.store) and the Lua script it runs there
 * (EVALSHA; loaded again on NOSCRIPT).  No hiredis here: the config
 * check uses it.
 *
 * The script: one call does everything a host asks (its own lease, the
 * 24-hour count, its heartbeat and what SES said),  One call does everything a host asks, so a
 * host has at most one request out and the store one script to run.
 *
 * KEYS[1] the bucket (hash): tokens, ts (store time of the last update),
 *         factor (1, halved by a 454 throttle, climbing back by 5 % of
 *         the rate a second), throttled (when last halved), paused (the
 *         daily quota is exceeded), probe_at (when the next probe is due)
 * KEYS[2] the 24-hour count (hash): one field per minute (recipients
 *         sent in it), total, oldest (the oldest minute counted)
 * KEYS[3] heartbeats (sorted set): host name -> store time last seen
 * ARGV    rate (tokens a second), burst, want (tokens asked for), spent
 *         (recipients sent since the last call), host, flags (1: SES
 *         throttled, 2: SES said the daily quota is exceeded, 4: the
 *         probe went through, 8: heartbeat), probe_every, seen (seconds
 *         a heartbeat counts)
 * Reply   { granted, wait_ms (before asking again), rate_milli (the
 *         fleet's rate now, x 1000), count24h, hosts, paused, probe (1:
 *         this host may send one message to probe the quota) }
 *
 * The time is the store's (TIME), so hosts' clocks do not matter.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "fleet.h"

static const char script[] =
"if redis.replicate_commands then pcall(redis.replicate_commands) end\n"
"local t = redis.call('TIME')\n"
"local now = tonumber(t[1]) + tonumber(t[2]) / 1000000\n"
"local rate, burst = tonumber(ARGV[1]), tonumber(ARGV[2])\n"
"local want, spent = tonumber(ARGV[3]), tonumber(ARGV[4])\n"
"local host, flags = ARGV[5], tonumber(ARGV[6])\n"
"local probe_every, seen = tonumber(ARGV[7]), tonumber(ARGV[8])\n"
"local function flag(b) return math.floor(flags / b) % 2 == 1 end\n"
"local b = redis.call('HMGET', KEYS[1], 'tokens', 'ts', 'factor',\n"
"  'throttled', 'paused', 'probe_at')\n"
"local tokens = tonumber(b[1]) or burst\n"
"local ts = tonumber(b[2]) or now\n"
"local factor = tonumber(b[3]) or 1\n"
"local throttled = tonumber(b[4]) or 0\n"
"local paused = tonumber(b[5]) or 0\n"
"local probe_at = tonumber(b[6]) or 0\n"
"local dt = math.max(now - ts, 0)\n"
"factor = math.min(1, factor + dt * 0.05)\n"
"tokens = math.min(burst, tokens + dt * rate * factor)\n"
"if flag(1) and now - throttled >= 1 then\n"
"  factor = math.max(factor / 2, 1 / 64)\n"
"  throttled = now\n"
"  tokens = math.min(tokens, -rate * factor)\n"
"end\n"
"if flag(2) then\n"
"  paused = 1\n"
"  probe_at = now + probe_every\n"
"elseif flag(4) then\n"
"  paused = 0\n"
"end\n"
"local granted, probe, wait = 0, 0, 0\n"
"if paused == 1 then\n"
"  if want > 0 and now >= probe_at then\n"
"    probe = 1\n"
"    probe_at = now + probe_every\n"
"  end\n"
"elseif want > 0 then\n"
"  if tokens >= 1 then\n"
"    granted = math.min(want, math.floor(tokens))\n"
"    tokens = tokens - granted\n"
"  end\n"
"  if granted < want then\n"
"    local need = math.min(want - granted, math.max(burst, 1))\n"
"    wait = math.ceil((need - tokens) / (rate * factor) * 1000)\n"
"  end\n"
"end\n"
"redis.call('HSET', KEYS[1], 'tokens', tokens, 'ts', now, 'factor',\n"
"  factor, 'throttled', throttled, 'paused', paused, 'probe_at', probe_at)\n"
"redis.call('EXPIRE', KEYS[1], 172800)\n"
"local minute = math.floor(now / 60)\n"
"local q = redis.call('HMGET', KEYS[2], 'total', 'oldest')\n"
"local total = tonumber(q[1]) or 0\n"
"local oldest = tonumber(q[2]) or minute\n"
"if minute - oldest > 2880 then\n"
"  redis.call('DEL', KEYS[2])\n"
"  total, oldest = 0, minute\n"
"end\n"
"while oldest <= minute - 1440 do\n"
"  local v = redis.call('HGET', KEYS[2], tostring(oldest))\n"
"  if v then\n"
"    total = total - tonumber(v)\n"
"    redis.call('HDEL', KEYS[2], tostring(oldest))\n"
"  end\n"
"  oldest = oldest + 1\n"
"end\n"
"if spent > 0 then\n"
"  redis.call('HINCRBY', KEYS[2], tostring(minute), spent)\n"
"  total = total + spent\n"
"end\n"
"redis.call('HSET', KEYS[2], 'total', total, 'oldest', oldest)\n"
"redis.call('EXPIRE', KEYS[2], 172800)\n"
"if flag(8) then\n"
"  redis.call('ZADD', KEYS[3], now, host)\n"
"  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now - seen)\n"
"  redis.call('EXPIRE', KEYS[3], seen * 2)\n"
"end\n"
"local hosts = redis.call('ZCARD', KEYS[3])\n"
"return { granted, wait, math.floor(rate * factor * 1000), total, hosts,\n"
"  paused, probe }\n";

const char *
fleet_store_script(void)
{
	return script;
}

/* "[/DB]" at the end of an address: 0..15 by default, any number Redis
 * allows; 0, or -1. */
static int
parse_db(const char *s, int *db)
{
	char *end;
	long v;

	*db = 0;
	if (*s == '\0')
		return 0;
	if (*s != '/' || !isdigit((unsigned char)s[1]))
		return -1;
	errno = 0;
	v = strtol(s + 1, &end, 10);
	if (*end != '\0' || errno || v > 1000000)
		return -1;
	*db = (int)v;
	return 0;
}

/* "HOST[:PORT][/DB]" after the scheme. */
static int
parse_hostport(const char *s, struct fleet_store *out)
{
	char hp[300];
	const char *slash = strchr(s, '/');
	size_t len = slash ? (size_t)(slash - s) : strlen(s);

	if (len == 0 || len >= sizeof(hp) || parse_db(s + len, &out->db))
		return -1;
	memcpy(hp, s, len);
	hp[len] = '\0';
	if (strchr(hp, '@') != NULL)
		return -2;
	if (conf_parse_hostport(hp, out->host, sizeof(out->host),
	    &out->port) == 0)
		return 0;
	/* No port: Redis's own. */
	if (strchr(hp, ':') != NULL || strlen(hp) >= sizeof(out->host))
		return -1;
	memcpy(out->host, hp, len + 1);
	out->port = 6379;
	return 0;
}

int
fleet_store_parse(const char *s, struct fleet_store *out, char *err,
    size_t errlen)
{
	int rc = -1;

	memset(out, 0, sizeof(*out));
	if (*s == '\0')
		return 0;
	if (strncmp(s, "unix:", 5) == 0) {
		out->kind = FLEET_STORE_UNIX;
		if (s[5] == '/' && strlen(s + 5) < sizeof(out->path)) {
			memcpy(out->path, s + 5, strlen(s + 5) + 1);
			return 0;
		}
	} else if (strncmp(s, "redis://", 8) == 0) {
		out->kind = FLEET_STORE_TCP;
		rc = parse_hostport(s + 8, out);
	} else if (strncmp(s, "rediss://", 9) == 0) {
		out->kind = FLEET_STORE_TLS;
		rc = parse_hostport(s + 9, out);
	}
	if (rc == 0)
		return 0;
	if (rc == -2)
		conf_errf(err, errlen, "no user or password in the address: "
		    "put them in fleet.credentials");
	else
		conf_errf(err, errlen, "\"%s\": expected \"redis://HOST:PORT"
		    "[/DB]\", \"rediss://HOST:PORT[/DB]\" or "
		    "\"unix:/path/to/redis.sock\"", s);
	return -1;
}

int
fleet_store_supported(const struct fleet_store *st, char *err,
    size_t errlen)
{
	if (st->kind != FLEET_STORE_TLS)
		return 0;
#ifdef HAVE_HIREDIS_SSL
	conf_errf(err, errlen, "rediss:// (TLS to the store) is not "
	    "supported yet by this sesrelayd; use redis:// over a private "
	    "network or a Unix socket");
#else
	conf_errf(err, errlen, "rediss:// needs hiredis with TLS "
	    "(hiredis_ssl, hiredis 1.0 or later), and this sesrelayd was "
	    "built without it; use redis:// over a private network, a Unix "
	    "socket, or rebuild against a hiredis with TLS");
#endif
	return -1;
}
