/*
 * fleet.c: the fleet's client of the store (fleet.h).
 *
 * States (fleet_enter_state is the only place the state changes):
 *   OFF         no fleet.store: nothing here runs;
 *   CONNECTING  resolving (evdns), connecting, AUTH, SELECT, SCRIPT
 *               LOAD, all within FLEET_TIMEOUT; the host keeps to
 *               upstream.rate / fleet.hosts meanwhile;
 *   SHARED      leases from the store: at most one request out, with a
 *               deadline of FLEET_TIMEOUT;
 *   FALLBACK    the store failed (unreachable, timeout, garbage, AUTH
 *               refused, full): upstream.rate / fleet.hosts alone, and a
 *               reconnect after 1, 2, 4 ... 30 s.  Logged once when it
 *               starts (fleet.fallback) and once when the host rejoins
 *               (fleet.shared).
 * Every request is one EVALSHA of the script (fleet_store.c) carrying
 * what the host wants (tokens), what it sent (the 24-hour count), its
 * heartbeat (once a second) and what SES said (flags); a NOSCRIPT reply
 * (the store restarted, SCRIPT FLUSH) loads the script again and the
 * same request is sent again.
 *
 * hiredis calls every callback of a context it frees with a NULL reply:
 * a callback whose context is no longer f->ac does nothing.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/dns.h>
#include <event2/event.h>
#include <event2/util.h>

#include <hiredis/hiredis.h>
#include <hiredis/async.h>
#include <hiredis/adapters/libevent.h>

#include "fleet.h"
#include "fleet_lease.h"
#include "log.h"
#include "netaddr.h"
#include "xalloc.h"

#define FLEET_TIMEOUT		1.0	/* seconds: connect, each reply */
#define FLEET_BEAT		1.0	/* heartbeat, and asking while paused */
#define FLEET_SEEN		10	/* seconds a heartbeat counts */
#define FLEET_BACKOFF_MAX	30	/* seconds between reconnects, at most */

/* The script's flags (ARGV[6]). */
#define F_THROTTLE	1
#define F_QUOTA		2
#define F_QUOTA_OK	4
#define F_BEAT		8

enum fleet_state {
	FLEET_OFF,
	FLEET_CONNECTING,
	FLEET_SHARED,
	FLEET_FALLBACK,
};

static const char *const state_names[] = { "off", "connecting", "shared",
    "fallback" };

struct fleet {
	struct event_base	*base;
	struct evdns_base	*dns;
	struct fleet_config	 conf;		/* strings owned */
	struct fleet_store	 store;
	char			 keys[3][300];	/* bucket, count, hosts */
	enum fleet_state	 state;
	redisAsyncContext	*ac;
	struct evdns_getaddrinfo_request *dnsreq;
	struct fleet_lease	 lease;
	char			 sha[41];
	struct event		*timer;		/* deadline, or the next ask */
	struct event		*retry_ev;	/* reconnect */
	unsigned		 failures;	/* reconnects failed in a row */
	int			 down_logged;	/* fleet.fallback said */
	int			 was_shared;
	int			 proven;	/* the script answered on this
						 * connection */
	/* the request out */
	int			 busy;
	double			 sent_at;
	unsigned		 flags_out;
	double			 spent_out;
	/* what is to go with the next request */
	unsigned		 flags;
	double			 next_ask;	/* tokens: not before */
	double			 last_beat;
	/* the store's view */
	double			 fleet_rate;
	long long		 count24h;
	int			 hosts_seen;
	int			 paused;
	int			 probe;		/* this host holds the probe */
	int			 wants_probe;	/* paused, with mail waiting */
	unsigned long long	 leased;
	unsigned long long	 requests;
	void			(*kick)(void *);
	void			*kick_arg;
};

static void fleet_connect(struct fleet *);
static void fleet_pump(struct fleet *);

static double
now_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void
timer_in(struct event *ev, double seconds)
{
	struct timeval tv;

	if (seconds < 0)
		seconds = 0;
	tv.tv_sec = (time_t)seconds;
	tv.tv_usec = (suseconds_t)((seconds - (double)tv.tv_sec) * 1e6);
	evtimer_add(ev, &tv);
}

static void
fleet_kick(struct fleet *f)
{
	if (f->kick != NULL)
		f->kick(f->kick_arg);
}

/* Drop the connection (and a lookup in progress); no callback runs. */
static void
drop_connection(struct fleet *f)
{
	redisAsyncContext *ac = f->ac;

	if (f->dnsreq != NULL) {
		evdns_getaddrinfo_cancel(f->dnsreq);
		f->dnsreq = NULL;
	}
	f->ac = NULL;
	f->busy = 0;
	if (ac != NULL)
		redisAsyncFree(ac);	/* its callbacks see ac != f->ac */
}

static void
fleet_enter_state(struct fleet *f, enum fleet_state st)
{
	double now = now_seconds();

	f->state = st;
	evtimer_del(f->timer);
	switch (st) {
	case FLEET_CONNECTING:
		timer_in(f->timer, FLEET_TIMEOUT);
		break;
	case FLEET_SHARED:
		fleet_lease_share(&f->lease, now);
		f->proven = 0;		/* until the script answers */
		f->last_beat = 0;
		f->next_ask = 0;
		break;
	case FLEET_FALLBACK:
	case FLEET_OFF:
		fleet_lease_fallback(&f->lease, now);
		f->paused = f->probe = f->wants_probe = 0;
		break;
	}
}

/* Reconnect after 1, 2, 4 ... 30 s. */
static void
schedule_reconnect(struct fleet *f)
{
	double wait = 1 << (f->failures < 5 ? f->failures : 5);

	if (wait > FLEET_BACKOFF_MAX)
		wait = FLEET_BACKOFF_MAX;
	f->failures++;
	timer_in(f->retry_ev, wait);
}

/*
 * The store failed: fall back to upstream.rate / fleet.hosts, say so
 * once for this outage, and try again later.
 */
static void
fleet_failed(struct fleet *f, const char *reason, const char *detail)
{
	drop_connection(f);
	if (!f->down_logged)
		log_event(LOG_WARNING, "-", "fleet.fallback",
		    "fleet=%s store=%s reason=%s detail=%s rate=%.2f msg=\"the "
		    "fleet store failed: this host sends at upstream.rate / "
		    "fleet.hosts on its own until it is back; nothing is lost\"",
		    log_q(f->conf.name), log_q(f->conf.store), reason,
		    log_q(detail), fleet_lease_fallback_rate(&f->lease));
	else
		log_event(LOG_DEBUG, "-", "fleet.reconnect_failed",
		    "fleet=%s reason=%s detail=%s", log_q(f->conf.name),
		    reason, log_q(detail));
	f->down_logged = 1;
	fleet_enter_state(f, FLEET_FALLBACK);
	schedule_reconnect(f);
	fleet_kick(f);
}

/* Why an error reply, in one word for the log. */
static const char *
error_reason(const char *msg)
{
	if (strncmp(msg, "NOAUTH", 6) == 0 || strncmp(msg, "WRONGPASS", 9) == 0
	    || strstr(msg, "invalid password") != NULL ||
	    strstr(msg, "invalid username") != NULL ||
	    strncmp(msg, "NOPERM", 6) == 0)
		return "auth";
	if (strncmp(msg, "OOM", 3) == 0)
		return "full";
	if (strncmp(msg, "LOADING", 7) == 0 || strncmp(msg, "BUSY", 4) == 0)
		return "busy";
	return "error";
}

/*
 * Check a reply: NULL (connection gone: the disconnect callback says
 * why), an error (logged, fallback), else fine.  1 when usable.
 */
static int
reply_ok(struct fleet *f, redisAsyncContext *ac, redisReply *r)
{
	if (ac != f->ac || r == NULL)
		return 0;
	if (r->type == REDIS_REPLY_ERROR) {
		fleet_failed(f, error_reason(r->str), r->str);
		return 0;
	}
	return 1;
}

/* ---- requests ---- */

static void lease_cb(redisAsyncContext *, void *, void *);

/* One EVALSHA with what is pending. */
static void
send_request(struct fleet *f, double want)
{
	char rate[32], burst[32], w[32], spent[32], flags[16], probe[16],
	    seen[16];
	const char *argv[14] = { "EVALSHA", f->sha, "3", f->keys[0],
	    f->keys[1], f->keys[2], rate, burst, w, spent, f->conf.host,
	    flags, probe, seen };
	double now = now_seconds();

	f->spent_out = fleet_lease_take_spent(&f->lease);
	f->flags_out = f->flags;
	f->flags = 0;
	if (now - f->last_beat >= FLEET_BEAT) {
		f->flags_out |= F_BEAT;
		f->last_beat = now;
	}
	snprintf(rate, sizeof(rate), "%.6f", f->conf.rate);
	snprintf(burst, sizeof(burst), "%.6f", f->conf.rate < 1 ? 1 :
	    f->conf.rate);
	snprintf(w, sizeof(w), "%.0f", want);
	snprintf(spent, sizeof(spent), "%.0f", f->spent_out);
	snprintf(flags, sizeof(flags), "%u", f->flags_out);
	snprintf(probe, sizeof(probe), "%d", f->conf.probe_interval);
	snprintf(seen, sizeof(seen), "%d", FLEET_SEEN);
	if (redisAsyncCommandArgv(f->ac, lease_cb, NULL, 14, argv,
	    NULL) != REDIS_OK) {
		fleet_failed(f, "error", "cannot send");
		return;
	}
	f->busy = 1;
	f->sent_at = now;
	f->requests++;
	timer_in(f->timer, FLEET_TIMEOUT);
}

/* A request that did not go through: what it carried goes again. */
static void
request_lost(struct fleet *f)
{
	fleet_lease_unspend(&f->lease, f->spent_out);
	f->flags |= f->flags_out & ~F_BEAT;
	f->spent_out = 0;
	f->flags_out = 0;
}

/*
 * The first answer of the script on a connection: the store works (a
 * full store takes AUTH and SCRIPT LOAD, and fails here).  Logged at the
 * start and after a fallback, so an outage is two lines.
 */
static void
fleet_proven(struct fleet *f)
{
	if (f->proven)
		return;
	f->proven = 1;
	f->failures = 0;
	if (f->down_logged || !f->was_shared)
		log_event(LOG_WARNING, "-", "fleet.shared",
		    "fleet=%s store=%s rate=%.2f msg=\"sharing the fleet's rate "
		    "and daily quota through the store\"", log_q(f->conf.name),
		    log_q(f->conf.store), f->conf.rate);
	f->down_logged = 0;
	f->was_shared = 1;
}

/* Apply the script's reply (fleet_store.c): 0, or -1 for garbage. */
static int
apply_reply(struct fleet *f, const redisReply *r)
{
	long long v[7];
	int changed;

	if (r->type != REDIS_REPLY_ARRAY || r->elements != 7)
		return -1;
	for (size_t i = 0; i < 7; i++) {
		if (r->element[i]->type != REDIS_REPLY_INTEGER ||
		    r->element[i]->integer < 0)
			return -1;
		v[i] = r->element[i]->integer;
	}
	fleet_proven(f);
	fleet_lease_grant(&f->lease, (double)v[0], now_seconds());
	f->leased += (unsigned long long)v[0];
	f->next_ask = now_seconds() + v[1] / 1000.0;
	f->fleet_rate = v[2] / 1000.0;
	f->count24h = v[3];
	f->hosts_seen = (int)v[4];
	changed = f->paused != (v[5] != 0);
	f->paused = v[5] != 0;
	if (v[6]) {
		f->probe = 1;
		f->wants_probe = 0;
	}
	if (f->paused && !v[6])
		f->next_ask = now_seconds() + FLEET_BEAT;
	/* While paused, every reply: the pool says again whether it has
	 * mail for the probe, and takes it when it came. */
	if (changed || f->paused || v[0])
		fleet_kick(f);
	return 0;
}

static void script_loaded_cb(redisAsyncContext *, void *, void *);

static void
lease_cb(redisAsyncContext *ac, void *rv, void *priv)
{
	struct fleet *f = ac->data;
	redisReply *r = rv;

	if (ac != f->ac || r == NULL)
		return;
	f->busy = 0;
	evtimer_del(f->timer);
	if (r->type == REDIS_REPLY_ERROR && strncmp(r->str, "NOSCRIPT",
	    8) == 0) {
		/* The store forgot the script: load it, ask again. */
		log_event(LOG_INFO, "-", "fleet.script_reload", "fleet=%s",
		    log_q(f->conf.name));
		request_lost(f);
		redisAsyncCommand(f->ac, script_loaded_cb, NULL,
		    "SCRIPT LOAD %s", fleet_store_script());
		f->busy = 1;
		timer_in(f->timer, FLEET_TIMEOUT);
		return;
	}
	if (r->type == REDIS_REPLY_ERROR)
		request_lost(f);
	if (!reply_ok(f, ac, r))
		return;
	if (apply_reply(f, r) == -1) {
		request_lost(f);
		fleet_failed(f, "garbage", "unexpected reply to EVALSHA");
		return;
	}
	fleet_pump(f);
}

/*
 * Send a request when there is something to ask or say: tokens owed
 * (not before the store's hint), SES's news, a heartbeat due.
 * Otherwise wake up when one will be.
 */
static void
fleet_pump(struct fleet *f)
{
	double now = now_seconds(), want, next;

	if (f->state != FLEET_SHARED || f->busy)
		return;
	if (f->paused)		/* only the probe: one at a time */
		want = f->wants_probe && !f->probe;
	else
		want = fleet_lease_want(&f->lease, now);
	if (f->flags != 0 || now - f->last_beat >= FLEET_BEAT ||
	    (want > 0 && now >= f->next_ask)) {
		send_request(f, want > 0 && now >= f->next_ask ? want : 0);
		return;
	}
	next = f->last_beat + FLEET_BEAT;
	if (want > 0 && f->next_ask < next)
		next = f->next_ask;
	timer_in(f->timer, next - now);
}

static void
timer_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct fleet *f = arg;

	if (f->state == FLEET_CONNECTING)
		fleet_failed(f, "timeout", "no answer while connecting");
	else if (f->busy) {
		request_lost(f);
		fleet_failed(f, "timeout", "no answer in time");
	} else
		fleet_pump(f);
}

static void
retry_cb(evutil_socket_t fd, short ev, void *arg)
{
	fleet_connect(arg);
}

/* ---- connecting ---- */

static void
script_loaded_cb(redisAsyncContext *ac, void *rv, void *priv)
{
	struct fleet *f = ac->data;
	redisReply *r = rv;

	if (!reply_ok(f, ac, r))
		return;
	if (r->type != REDIS_REPLY_STRING || r->len != 40) {
		fleet_failed(f, "garbage", "unexpected reply to SCRIPT LOAD");
		return;
	}
	memcpy(f->sha, r->str, 40);
	f->sha[40] = '\0';
	f->busy = 0;
	if (f->state == FLEET_CONNECTING)
		fleet_enter_state(f, FLEET_SHARED);
	else
		evtimer_del(f->timer);
	fleet_pump(f);
}

/* AUTH and SELECT: only an error matters (reply_ok says it). */
static void
setup_cb(redisAsyncContext *ac, void *rv, void *priv)
{
	struct fleet *f = ac->data;

	reply_ok(f, ac, rv);
}

static void
connect_cb(const redisAsyncContext *ac, int status)
{
	struct fleet *f = ac->data;

	if (ac != f->ac || status == REDIS_OK)
		return;
	f->ac = NULL;		/* hiredis frees it */
	fleet_failed(f, "unreachable", ac->errstr);
}

static void
disconnect_cb(const redisAsyncContext *ac, int status)
{
	struct fleet *f = ac->data;

	if (ac != f->ac)
		return;
	f->ac = NULL;		/* hiredis frees it */
	if (f->busy)
		request_lost(f);
	fleet_failed(f, "disconnected", ac->errstr[0] ? ac->errstr :
	    "the store closed the connection");
}

/* Queue what a new connection says first: AUTH, SELECT, SCRIPT LOAD. */
static void
start_session(struct fleet *f)
{
	redisAsyncContext *ac = f->ac;

	ac->data = f;
	redisLibeventAttach(ac, f->base);
	redisAsyncSetConnectCallback(ac, connect_cb);
	redisAsyncSetDisconnectCallback(ac, disconnect_cb);
	if (f->conf.password != NULL && f->conf.username != NULL)
		redisAsyncCommand(ac, setup_cb, NULL, "AUTH %s %s",
		    f->conf.username, f->conf.password);
	else if (f->conf.password != NULL)
		redisAsyncCommand(ac, setup_cb, NULL, "AUTH %s",
		    f->conf.password);
	if (f->store.db != 0)
		redisAsyncCommand(ac, setup_cb, NULL, "SELECT %d", f->store.db);
	redisAsyncCommand(ac, script_loaded_cb, NULL, "SCRIPT LOAD %s",
	    fleet_store_script());
}

/* Connect to a numeric address (or the Unix socket). */
static void
connect_to(struct fleet *f, const char *ip)
{
	if (f->store.kind == FLEET_STORE_UNIX)
		f->ac = redisAsyncConnectUnix(f->store.path);
	else
		f->ac = redisAsyncConnect(ip, f->store.port);
	if (f->ac == NULL) {
		fleet_failed(f, "error", "out of memory");
		return;
	}
	if (f->ac->err) {
		char why[128];
		redisAsyncContext *ac = f->ac;

		snprintf(why, sizeof(why), "%s", ac->errstr);
		f->ac = NULL;
		redisAsyncFree(ac);
		fleet_failed(f, "unreachable", why);
		return;
	}
	start_session(f);
}

static void
resolved_cb(int result, struct evutil_addrinfo *ai, void *arg)
{
	struct fleet *f = arg;
	char ip[64];

	f->dnsreq = NULL;
	if (result == EVUTIL_EAI_CANCEL)
		return;
	if (result != 0 || ai == NULL) {
		fleet_failed(f, "unreachable", evutil_gai_strerror(result));
		return;
	}
	evutil_inet_ntop(ai->ai_family, ai->ai_family == AF_INET6 ?
	    (void *)&((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr :
	    (void *)&((struct sockaddr_in *)ai->ai_addr)->sin_addr, ip,
	    sizeof(ip));
	evutil_freeaddrinfo(ai);
	connect_to(f, ip);
}

/* Start connecting: a name is resolved by evdns first (hiredis would
 * block in getaddrinfo). */
static void
fleet_connect(struct fleet *f)
{
	struct evutil_addrinfo hints;
	struct evdns_getaddrinfo_request *req;

	fleet_enter_state(f, FLEET_CONNECTING);
	if (f->store.kind == FLEET_STORE_UNIX ||
	    netaddr_is_numeric(f->store.host, AF_UNSPEC)) {
		connect_to(f, f->store.host);
		return;
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	req = evdns_getaddrinfo(f->dns, f->store.host, NULL, &hints,
	    resolved_cb, f);
	if (f->state == FLEET_CONNECTING && f->ac == NULL)
		f->dnsreq = req;	/* NULL when it answered at once */
}

/* ---- the interface ---- */

struct fleet *
fleet_new(struct event_base *base, struct evdns_base *dns,
    const struct fleet_config *c, void (*kick)(void *), void *arg)
{
	struct fleet *f = calloc(1, sizeof(*f));
	char err[256];

	if (f == NULL)
		abort();
	f->base = base;
	f->dns = dns;
	f->conf = *c;
	f->conf.store = xstrdup(c->store);
	f->conf.name = xstrdup(c->name);
	f->conf.host = xstrdup(c->host);
	f->conf.username = c->username ? xstrdup(c->username) : NULL;
	f->conf.password = c->password ? xstrdup(c->password) : NULL;
	f->kick = kick;
	f->kick_arg = arg;
	f->count24h = -1;
	fleet_lease_init(&f->lease, c->rate, c->hosts, now_seconds());
	f->timer = evtimer_new(base, timer_cb, f);
	f->retry_ev = evtimer_new(base, retry_cb, f);
	snprintf(f->keys[0], sizeof(f->keys[0]), "sesrelay:{%s}:bucket",
	    c->name);
	snprintf(f->keys[1], sizeof(f->keys[1]), "sesrelay:{%s}:count",
	    c->name);
	snprintf(f->keys[2], sizeof(f->keys[2]), "sesrelay:{%s}:hosts",
	    c->name);
	if (fleet_store_parse(c->store, &f->store, err, sizeof(err)) == -1 ||
	    f->store.kind == FLEET_STORE_NONE ||
	    fleet_store_supported(&f->store, err, sizeof(err)) == -1) {
		f->state = FLEET_OFF;	/* the config check said why */
		return f;
	}
	fleet_connect(f);
	return f;
}

void
fleet_free(struct fleet *f)
{
	if (f == NULL)
		return;
	drop_connection(f);
	event_free(f->timer);
	event_free(f->retry_ev);
	free((char *)f->conf.store);
	free((char *)f->conf.name);
	free((char *)f->conf.host);
	free((char *)f->conf.username);
	if (f->conf.password != NULL) {
		explicit_bzero((char *)f->conf.password,
		    strlen(f->conf.password));
		free((char *)f->conf.password);
	}
	free(f);
}

int
fleet_is_on(const struct fleet *f)
{
	return f != NULL && f->state != FLEET_OFF;
}

double
fleet_reserve(struct fleet *f, double n, double *ticket)
{
	double wait = fleet_lease_reserve(&f->lease, n, now_seconds(), ticket);

	fleet_pump(f);
	return wait;
}

double
fleet_wait(struct fleet *f, double ticket)
{
	double wait = fleet_lease_wait(&f->lease, ticket, now_seconds());

	if (wait > 0)
		fleet_pump(f);
	return wait;
}

void
fleet_sent(struct fleet *f, double n)
{
	fleet_lease_sent(&f->lease, n);
}

/* SES's news for the store: goes with the next request. */
static void
fleet_flag(struct fleet *f, unsigned flag)
{
	if (f->state != FLEET_SHARED)
		return;
	f->flags |= flag;
	fleet_pump(f);
}

void
fleet_throttled(struct fleet *f)
{
	if (f->state == FLEET_SHARED)
		fleet_flag(f, F_THROTTLE);
	else
		fleet_lease_throttled(&f->lease, now_seconds());
}

void
fleet_quota_exceeded(struct fleet *f)
{
	f->probe = 0;
	f->paused = f->state == FLEET_SHARED;
	fleet_flag(f, F_QUOTA);
}

void
fleet_quota_ok(struct fleet *f)
{
	f->probe = f->wants_probe = 0;
	f->paused = 0;
	fleet_flag(f, F_QUOTA_OK);
}

enum fleet_quota
fleet_quota(const struct fleet *f)
{
	if (f == NULL || f->state != FLEET_SHARED)
		return FLEET_QUOTA_LOCAL;
	if (!f->paused)
		return FLEET_QUOTA_OK;
	return f->probe ? FLEET_QUOTA_PROBE : FLEET_QUOTA_PAUSED;
}

void
fleet_want_probe(struct fleet *f)
{
	if (f->state == FLEET_SHARED && f->paused && !f->wants_probe) {
		f->wants_probe = 1;
		fleet_pump(f);
	}
}

int
fleet_take_probe(struct fleet *f)
{
	int p = f->probe;

	f->probe = 0;
	return p;
}

void
fleet_get_status(const struct fleet *f, struct fleet_status *st)
{
	memset(st, 0, sizeof(*st));
	st->state = state_names[f->state];
	st->name = f->conf.name;
	st->shared = f->state == FLEET_SHARED;
	st->rate = st->shared ? f->fleet_rate :
	    f->lease.local.rate;
	st->count24h = f->count24h;
	st->hosts = f->hosts_seen;
	st->paused = st->shared && f->paused;
	st->leased = f->leased;
	st->requests = f->requests;
}
