/*
 * upstream_private.h: what upstream.c and upstream_session.c share.
 * Nothing outside the upstream subsystem includes this.
 */
#ifndef SESRELAY_UPSTREAM_PRIVATE_H
#define SESRELAY_UPSTREAM_PRIVATE_H

#include <time.h>

#include <openssl/ssl.h>

#include "endpoint.h"
#include "ratelimit.h"
#include "upstream.h"

struct upstream_session;

#define UPSTREAM_MAX_SESSIONS	64	/* the upper bound of upstream.sessions */

struct upstream {
	struct event_base	*base;
	struct evdns_base	*dns;
	struct scheduler	*sched;
	struct spool		*spool;
	struct upstream_config	 conf;	/* endpoint, cred: NULL (below) */
	struct endpoint		 ep;	/* strings owned (strdup) */
	struct endpoint_credentials cred;
	SSL_CTX			*ssl_ctx;
	struct ratelimit	 rate;
	struct upstream_session	*sessions[UPSTREAM_MAX_SESSIONS];
	size_t			 nsessions;
	unsigned		 serial;	/* connection numbers */
	unsigned		 failures;	/* connects failed in a row */
	struct event		*retry_ev;	/* backoff timer */
	int			 backing_off;
	int			 freeing;
	/* SES's limits, as SES reported them (see upstream.c) */
	double			 rate_now;	/* the bucket's rate */
	double			 last_throttle;	/* monotonic seconds */
	struct event		*recover_ev;	/* raises rate_now again */
	int			 quota_paused;
	int			 probe_token;	/* one delivery may probe */
	time_t			 paused_since;
	struct event		*probe_ev;
	int			 max_sessions;	/* <= conf.sessions */
	struct event		*grow_ev;	/* raises max_sessions again */
	int			 auth_failing;	/* credentials refused */
	/* failover */
	int			 active;	/* takes work */
	time_t			 failing_since;	/* 0: working */
	time_t			 last_failure;
	int			 checking;	/* a health check is out */
	void			(*check_cb)(void *, int);
	void			*check_arg;
};

/* SES said so: the pool adjusts (called by sessions). */
void upstream_throttled(struct upstream *);
void upstream_quota_exceeded(struct upstream *);
void upstream_quota_ok(struct upstream *);
void upstream_conn_limited(struct upstream *, struct upstream_session *);
void upstream_auth_failed(struct upstream *, const char *reply);
void upstream_auth_ok(struct upstream *);
/* May a session take a delivery now (not paused, or it is the probe)? */
int upstream_may_take(struct upstream *, int *probe);
/* 1 when the session has authenticated at least once. */
int upstream_session_was_ready(const struct upstream_session *);

/* A session's lifetime ends: ok says whether it ever became ready. */
void upstream_session_gone(struct upstream *, struct upstream_session *,
    int ok);

struct upstream_session *upstream_session_new(struct upstream *);
/* A session that only connects, authenticates and quits. */
struct upstream_session *upstream_session_new_check(struct upstream *);
int upstream_session_is_check(const struct upstream_session *);
/* 1 when connected, authenticated, and between transactions. */
int upstream_session_is_idle(const struct upstream_session *);
/* 1 while connecting or authenticating. */
int upstream_session_is_starting(const struct upstream_session *);
/* 1 while a transaction is out. */
int upstream_session_is_busy(const struct upstream_session *);
/* Offer work to an idle session. */
void upstream_session_offer(struct upstream_session *);
void upstream_session_free(struct upstream_session *);

#endif
