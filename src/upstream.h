/*
 * upstream.h: the pool of sessions that relay spooled mail to SES.
 *
 * The pool keeps up to `sessions` connections while the scheduler has
 * work, starts new ones as needed, backs off when connecting fails, and
 * shares one token bucket (recipients per second) among its sessions.
 */
#ifndef SESRELAY_UPSTREAM_H
#define SESRELAY_UPSTREAM_H

#include <stddef.h>

struct event_base;
struct evdns_base;
struct scheduler;
struct spool;
struct upstream;
struct ses_headers;
struct endpoint;
struct endpoint_credentials;
struct transport;
struct fleet;

struct upstream_config {
	const struct endpoint *endpoint;	/* copied */
	const struct endpoint_credentials *cred; /* copied */
	const char	*helo_name;
	int		 sessions;
	int		 recycle_messages;
	int		 recycle_seconds;
	int		 idle_timeout;
	int		 timeout;
	double		 rate;
	int		 quota_probe_interval;	/* seconds, while paused */
	const struct ses_headers *ses;	/* X-SES-* headers; not owned */
	struct fleet	*fleet;		/* fleet.store: tokens and the quota
					 * pause shared; not owned; NULL or
					 * off: this host alone */
	const struct conf *conf;	/* the API transport's credentials;
					 * only while made */
};

/*
 * A pool over the SMTP transport (transport.h) to c->endpoint; NULL with
 * err when the transport cannot be set up (e.g. a bad CA file).
 */
struct upstream *upstream_new(struct event_base *, struct evdns_base *,
    struct spool *, struct scheduler *, const struct upstream_config *c,
    char *err, size_t errlen);
/* The same over a transport already made, which the pool then owns. */
struct upstream *upstream_new_transport(struct event_base *,
    struct scheduler *, struct transport *, const struct upstream_config *c);
/* Work may be ready: hand it to idle sessions, open more as allowed. */
void upstream_kick(struct upstream *);
/* The endpoint this pool sends to. */
const struct endpoint *upstream_endpoint(const struct upstream *);
/* Number of open sessions. */
size_t upstream_session_count(const struct upstream *);

/* What the pool is doing about SES's limits, for logs and stats. */
struct upstream_status {
	double	rate;		/* recipients/s now (lowered when throttled) */
	int	max_sessions;	/* lowered after "421 Too many connections" */
	int	quota_paused;	/* daily quota exceeded: sending paused */
	int	backing_off;	/* connections failing: waiting */
};
void upstream_get_status(const struct upstream *, struct upstream_status *);

/*
 * Failover: only the active pool takes work (a new pool is active).  An
 * inactive pool finishes what it has and lets its connections go idle.
 */
void upstream_set_active(struct upstream *, int active);
/* Transactions out now (0: nothing would be lost by closing). */
size_t upstream_busy(const struct upstream *);
/* Seconds this pool has been failing (no session working), or 0. */
long long upstream_failing_seconds(const struct upstream *);
/*
 * Health check: one connection that authenticates and quits, even while
 * the pool is inactive or backing off; cb(arg, 1) when it worked.
 */
void upstream_check(struct upstream *, void (*cb)(void *arg, int ok),
    void *arg);
/* Recipients/s while rate = 0 waits for the first GetAccount. */
#define UPSTREAM_RATE_UNKNOWN	1.0
/* The account's limits as last read (GetAccount), or NULL where they
 * are not read (no API credentials, account_check_interval 0). */
struct account_view;
const struct account_view *upstream_account(const struct upstream *);
/* Close every session (transactions in flight are given back). */
void upstream_free(struct upstream *);

#endif
