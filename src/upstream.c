/*
 * upstream.c: the upstream pool.
 *
 * Owns the TLS context (TLS 1.2+, peer verification always on, CA from
 * upstream.ca_file or the system store), the shared rate limiter, and
 * the list of sessions.  Policy: while the scheduler has ready work,
 * keep up to conf.sessions sessions; after a failed connect, wait
 * (2, 4, 8 ... 60 s) before trying again so a broken upstream never
 * turns into a connect storm.  Mail simply stays queued meanwhile.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>
#include <openssl/err.h>

#include "log.h"
#include "scheduler.h"
#include "upstream_private.h"

struct upstream_session;

static char *
xstrdup(const char *s)
{
	char *p = strdup(s ? s : "");

	if (p == NULL)
		abort();
	return p;
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

struct upstream *
upstream_new(struct event_base *base, struct evdns_base *dns,
    struct spool *spool, struct scheduler *sched,
    const struct upstream_config *c, char *err, size_t errlen)
{
	struct upstream *u = calloc(1, sizeof(*u));
	SSL_CTX *ctx;

	if (u == NULL)
		abort();
	if ((ctx = SSL_CTX_new(TLS_client_method())) == NULL)
		goto sslerr;
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	if (c->ca_file != NULL && *c->ca_file != '\0') {
		if (SSL_CTX_load_verify_locations(ctx, c->ca_file, NULL) != 1) {
			snprintf(err, errlen, "upstream.ca_file %s: cannot load "
			    "CA certificates: %s", c->ca_file,
			    ERR_reason_error_string(ERR_get_error()));
			SSL_CTX_free(ctx);
			free(u);
			return NULL;
		}
	} else if (SSL_CTX_set_default_verify_paths(ctx) != 1)
		goto sslerr;
	u->ssl_ctx = ctx;
	u->base = base;
	u->dns = dns;
	u->sched = sched;
	u->spool = spool;
	u->conf = *c;
	u->conf.host = xstrdup(c->host);
	u->conf.ca_file = xstrdup(c->ca_file);
	u->conf.helo_name = xstrdup(c->helo_name);
	u->conf.username = xstrdup(c->username);
	u->conf.password = xstrdup(c->password);
	/* A burst of one second's worth, at least one full SES message. */
	ratelimit_init(&u->rate, c->rate, c->rate > 50 ? c->rate : 50,
	    now_seconds());
	u->retry_ev = evtimer_new(base, retry_cb, u);
	return u;
sslerr:
	snprintf(err, errlen, "TLS setup: %s",
	    ERR_reason_error_string(ERR_get_error()));
	free(u);
	return NULL;
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

	if (u->freeing)
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
	while (u->nsessions < (size_t)u->conf.sessions &&
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
	upstream_session_free(s);
	if (u->freeing)
		return;
	if (ok)
		u->failures = 0;
	else if (!u->backing_off) {
		unsigned shift = u->failures < 5 ? u->failures : 5;
		struct timeval tv = { 2 << shift, 0 };

		if (tv.tv_sec > 60)
			tv.tv_sec = 60;
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
	SSL_CTX_free(u->ssl_ctx);
	free((char *)u->conf.host);
	free((char *)u->conf.ca_file);
	free((char *)u->conf.helo_name);
	free((char *)u->conf.username);
	if (u->conf.password) {
		explicit_bzero((char *)u->conf.password,
		    strlen(u->conf.password));
		free((char *)u->conf.password);
	}
	free(u);
}
