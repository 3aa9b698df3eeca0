/*
 * upstream.c: the upstream pool.
 *
 * Owns the TLS context (TLS 1.2+, peer verification always on, CA from
 * upstream.ca_file or the system store), the shared rate limiter, and
 * the list of sessions.  Policy: while the scheduler has ready work,
 * keep up to conf.sessions sessions; after a failed connect, wait
 * (2, 4, 8 ... 60 s) before trying again so a broken upstream never
 * turns into a connect storm.  Mail simply stays queued meanwhile.
 *
 * What SES says about its limits changes the whole pool (ses_reply.h):
 *   - "454 ... Maximum sending rate exceeded": the bucket's rate halves
 *     (at most once a second) and climbs back by a tenth of upstream.rate
 *     every RECOVER_SECONDS;
 *   - "454 ... Daily message quota exceeded": nothing is sent; every
 *     quota_probe_interval one delivery probes; the first success
 *     resumes.  Logged once when it pauses and once when it resumes;
 *   - "421 Too many concurrent SMTP connections": at most as many
 *     sessions as are working, for GROW_SECONDS, then one more;
 *   - credentials refused (530, 535, 454 temporary authentication
 *     failure): loud log and a longer backoff (15 s doubling to 5 min);
 *     the queue is kept, nothing bounces.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>

#include "log.h"
#include "scheduler.h"
#include "tls.h"
#include "upstream_private.h"
#include "xalloc.h"

struct upstream_session;

#define RECOVER_SECONDS	2
#define GROW_SECONDS	60

static double now_seconds(void);

static void
recover_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct upstream *u = arg;
	struct timeval tv = { RECOVER_SECONDS, 0 };

	u->rate_now += u->conf.rate / 10;
	if (u->rate_now >= u->conf.rate) {
		u->rate_now = u->conf.rate;
		log_info("- upstream rate recovered to %.2f recipients/s",
		    u->rate_now);
	} else
		evtimer_add(u->recover_ev, &tv);
	ratelimit_set_rate(&u->rate, u->rate_now, now_seconds());
}

void
upstream_throttled(struct upstream *u)
{
	double now = now_seconds(), floor = u->conf.rate / 64;
	struct timeval tv = { RECOVER_SECONDS, 0 };

	if (now - u->last_throttle < 1.0)
		return;		/* the same burst, seen by several sessions */
	u->last_throttle = now;
	if (floor > 0.1)
		floor = 0.1;
	u->rate_now = u->rate_now / 2 > floor ? u->rate_now / 2 : floor;
	ratelimit_set_rate(&u->rate, u->rate_now, now);
	/* SES counts over the last second, which is full: a second of
	 * silence, or every refused message comes straight back. */
	ratelimit_pause(&u->rate, 1.0, now);
	evtimer_add(u->recover_ev, &tv);	/* restarts the climb */
	log_warnx("- upstream SES throttled the sending rate (454 Maximum "
	    "sending rate exceeded): now %.2f recipients/s, recovering "
	    "towards upstream.rate %.2f", u->rate_now, u->conf.rate);
}

static void
probe_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct upstream *u = arg;

	u->probe_token = 1;
	log_debug("- upstream daily quota: probing");
	upstream_kick(u);
}

void
upstream_quota_exceeded(struct upstream *u)
{
	struct timeval tv = { u->conf.quota_probe_interval, 0 };

	u->probe_token = 0;
	evtimer_add(u->probe_ev, &tv);
	if (u->quota_paused)
		return;
	u->quota_paused = 1;
	u->paused_since = time(NULL);
	log_warnx("- upstream SES daily sending quota exceeded: sending "
	    "paused, trying again every %ds; mail stays queued, nothing "
	    "bounces (raise the quota in the SES console)",
	    u->conf.quota_probe_interval);
}

void
upstream_quota_ok(struct upstream *u)
{
	if (!u->quota_paused)
		return;
	u->quota_paused = 0;
	u->probe_token = 0;
	evtimer_del(u->probe_ev);
	log_warnx("- upstream SES daily quota available again: sending "
	    "resumed after %llds", (long long)(time(NULL) - u->paused_since));
	upstream_kick(u);
}

int
upstream_may_take(struct upstream *u, int *probe)
{
	*probe = 0;
	if (!u->quota_paused)
		return 1;
	if (!u->probe_token)
		return 0;
	u->probe_token = 0;
	*probe = 1;
	return 1;
}

static void
grow_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct upstream *u = arg;
	struct timeval tv = { GROW_SECONDS, 0 };

	if (u->max_sessions < u->conf.sessions) {
		u->max_sessions++;
		log_info("- upstream sessions allowed again: %d",
		    u->max_sessions);
		if (u->max_sessions < u->conf.sessions)
			evtimer_add(u->grow_ev, &tv);
		upstream_kick(u);
	}
}

void
upstream_conn_limited(struct upstream *u, struct upstream_session *s)
{
	struct timeval tv = { GROW_SECONDS, 0 };
	int working = 0;

	for (size_t i = 0; i < u->nsessions; i++)
		if (u->sessions[i] != s &&
		    upstream_session_was_ready(u->sessions[i]))
			working++;
	if (working < 1)
		working = 1;
	evtimer_add(u->grow_ev, &tv);
	if (working >= u->max_sessions)
		return;
	u->max_sessions = working;
	log_warnx("- upstream SES: too many concurrent connections (421): "
	    "using at most %d session(s) for %ds", u->max_sessions,
	    GROW_SECONDS);
}

void
upstream_auth_failed(struct upstream *u, const char *reply)
{
	u->auth_failing = 1;
	log_warnx("- upstream SES refused the credentials: \"%s\". Check "
	    "%s: the user name is the IAM access key id "
	    "and the password the SES SMTP password derived for region of "
	    "%s (sesrelayctl smtp-password), not the IAM secret key. Mail "
	    "stays queued; nothing bounces", reply, u->ep.credentials_key,
	    u->ep.host);
}

void
upstream_auth_ok(struct upstream *u)
{
	if (u->auth_failing)
		log_warnx("- upstream SES accepts the credentials again");
	u->auth_failing = 0;
}

void
upstream_set_active(struct upstream *u, int active)
{
	u->active = active;
	if (active)
		upstream_kick(u);
}

size_t
upstream_busy(const struct upstream *u)
{
	size_t n = 0;

	if (u == NULL)
		return 0;
	for (size_t i = 0; i < u->nsessions; i++)
		n += upstream_session_is_busy(u->sessions[i]);
	return n;
}

long long
upstream_failing_seconds(const struct upstream *u)
{
	time_t now = time(NULL);

	/* A failure long ago, with nothing tried since, is not failing. */
	if (u->failing_since == 0 || now - u->last_failure > 360)
		return 0;
	return (long long)(now - u->failing_since);
}

void
upstream_check(struct upstream *u, void (*cb)(void *, int), void *arg)
{
	if (u->checking || u->nsessions >= UPSTREAM_MAX_SESSIONS)
		return;
	u->checking = 1;
	u->check_cb = cb;
	u->check_arg = arg;
	u->sessions[u->nsessions++] = upstream_session_new_check(u);
}

void
upstream_get_status(const struct upstream *u, struct upstream_status *st)
{
	st->rate = u->rate_now;
	st->max_sessions = u->max_sessions;
	st->quota_paused = u->quota_paused;
	st->backing_off = u->backing_off;
}

static void
retry_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct upstream *u = arg;

	u->backing_off = 0;
	upstream_kick(u);
}

static double
now_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Keep a copy of the endpoint and its credentials. */
static void
keep_endpoint(struct upstream *u, const struct upstream_config *c)
{
	u->ep = *c->endpoint;
	u->ep.region = xstrdup(c->endpoint->region);
	u->ep.ca_file = xstrdup(c->endpoint->ca_file);
	u->ep.credentials = xstrdup(c->endpoint->credentials);
	u->cred.username = xstrdup(c->cred->username);
	u->cred.password = xstrdup(c->cred->password);
	u->conf.endpoint = NULL;
	u->conf.cred = NULL;
}

struct upstream *
upstream_new(struct event_base *base, struct evdns_base *dns,
    struct spool *spool, struct scheduler *sched,
    const struct upstream_config *c, char *err, size_t errlen)
{
	struct upstream *u = calloc(1, sizeof(*u));
	SSL_CTX *ctx;
	char e[256];

	if (u == NULL)
		abort();
	if ((ctx = tls_client_ctx_new(c->endpoint->ca_file, e,
	    sizeof(e))) == NULL) {
		snprintf(err, errlen, "%s.ca_file: %s", c->endpoint->name, e);
		free(u);
		return NULL;
	}
	u->ssl_ctx = ctx;
	u->base = base;
	u->dns = dns;
	u->sched = sched;
	u->spool = spool;
	u->conf = *c;
	keep_endpoint(u, c);
	u->active = 1;
	u->conf.helo_name = xstrdup(c->helo_name);
	/* A burst of one second's worth: upstream.rate is never exceeded
	 * over any second but the first. */
	ratelimit_init(&u->rate, c->rate, c->rate, now_seconds());
	u->rate_now = c->rate;
	u->max_sessions = c->sessions;
	if (u->conf.quota_probe_interval <= 0)
		u->conf.quota_probe_interval = 600;
	u->retry_ev = evtimer_new(base, retry_cb, u);
	u->recover_ev = evtimer_new(base, recover_cb, u);
	u->probe_ev = evtimer_new(base, probe_cb, u);
	u->grow_ev = evtimer_new(base, grow_cb, u);
	return u;
}

const struct endpoint *
upstream_endpoint(const struct upstream *u)
{
	return &u->ep;
}

size_t
upstream_session_count(const struct upstream *u)
{
	return u->nsessions;
}

void
upstream_kick(struct upstream *u)
{
	size_t i, starting = 0;

	if (u->freeing || !u->active)
		return;
	/* Offering may end a session (recycling), so walk a copy. */
	struct upstream_session *copy[UPSTREAM_MAX_SESSIONS];
	size_t n = u->nsessions;

	memcpy(copy, u->sessions, n * sizeof(copy[0]));
	for (i = 0; i < n; i++) {
		if (upstream_session_is_starting(copy[i]))
			starting++;
		else if (upstream_session_is_idle(copy[i]))
			upstream_session_offer(copy[i]);
	}
	if (u->backing_off)
		return;
	if (u->quota_paused) {
		/* Only the probe needs a session. */
		if (u->probe_token && u->nsessions == 0 &&
		    scheduler_ready_count(u->sched) > 0)
			u->sessions[u->nsessions++] = upstream_session_new(u);
		return;
	}
	while (u->nsessions < (size_t)u->max_sessions &&
	    scheduler_ready_count(u->sched) > starting) {
		u->sessions[u->nsessions++] = upstream_session_new(u);
		starting++;
	}
}

void
upstream_session_gone(struct upstream *u, struct upstream_session *s,
    int ok)
{
	for (size_t i = 0; i < u->nsessions; i++)
		if (u->sessions[i] == s) {
			u->sessions[i] = u->sessions[--u->nsessions];
			break;
		}
	if (upstream_session_is_check(s)) {
		upstream_session_free(s);
		u->checking = 0;
		if (!u->freeing && u->check_cb != NULL)
			u->check_cb(u->check_arg, ok);
		return;
	}
	upstream_session_free(s);
	if (u->freeing)
		return;
	if (ok)
		u->failing_since = 0;
	else {
		u->last_failure = time(NULL);
		if (u->failing_since == 0)
			u->failing_since = u->last_failure;
	}
	if (ok)
		u->failures = 0;
	else if (!u->backing_off) {
		unsigned shift = u->failures < 5 ? u->failures : 5;
		struct timeval tv = { 2 << shift, 0 };

		if (tv.tv_sec > 60)
			tv.tv_sec = 60;
		if (u->auth_failing) {
			/* Credentials do not fix themselves in seconds. */
			tv.tv_sec = 15 << (shift < 5 ? shift : 5);
			if (tv.tv_sec > 300)
				tv.tv_sec = 300;
		}
		u->failures++;
		u->backing_off = 1;
		evtimer_add(u->retry_ev, &tv);
		log_warnx("- upstream backoff seconds=%ld failures=%u "
		    "queued=%zu", (long)tv.tv_sec, u->failures,
		    scheduler_queued_count(u->sched));
		return;
	}
	upstream_kick(u);
}

void
upstream_free(struct upstream *u)
{
	if (u == NULL)
		return;
	u->freeing = 1;
	for (size_t i = 0; i < u->nsessions; i++)
		upstream_session_free(u->sessions[i]);
	u->nsessions = 0;
	event_free(u->retry_ev);
	event_free(u->recover_ev);
	event_free(u->probe_ev);
	event_free(u->grow_ev);
	SSL_CTX_free(u->ssl_ctx);
	free((char *)u->ep.region);
	free((char *)u->ep.ca_file);
	free((char *)u->ep.credentials);
	free((char *)u->conf.helo_name);
	endpoint_credentials_clear(&u->cred);
	free(u);
}
