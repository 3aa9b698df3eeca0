/*
 * upstream.c: the upstream pool.
 *
 * Owns the transport (transport.h: SMTP, or the SES API by
 * upstream.transport), the shared rate limiter,
 * and the list of sessions; it knows SES only through the transport's
 * events and the classes of ses_reply.h.  Each session sits in a slot:
 * STARTING (opened) -> IDLE (ready) -> [WAITING (for rate tokens)] ->
 * SENDING -> BETWEEN (done; ready or gone follows) -> IDLE ... and the
 * slot goes when the transport says the session is gone.  The pool
 * takes work from the scheduler for an idle session, reserves its
 * recipients in the token bucket, recycles a session between
 * transactions (recycle_after_messages, recycle_after_seconds) and
 * closes one left idle.  Policy: while the scheduler has ready work,
 * keep up to conf.sessions sessions; after a failed connect, wait
 * (2, 4, 8 ... 60 s) before trying again so a broken upstream never
 * turns into a connect storm.  Mail simply stays queued meanwhile.
 *
 * What SES says about its limits changes the whole pool: the transport
 * reports it as a class of ses_reply.h (over SMTP, the reply in
 * brackets):
 *   - SES_ACT_RATE (454 Maximum sending rate exceeded): the bucket's
 *     rate halves (at most once a second) and climbs back by a tenth of
 *     upstream.rate every RECOVER_SECONDS;
 *   - SES_ACT_QUOTA (454 Daily message quota exceeded): nothing is sent;
 *     every quota_probe_interval one delivery probes; the first success
 *     resumes.  Logged once when it pauses and once when it resumes;
 *   - SES_ACT_CONN_LIMIT (421 Too many concurrent SMTP connections): at
 *     most as many sessions as are working, for GROW_SECONDS, then one
 *     more;
 *   - SES_ACT_AUTH (530, 535, 454 temporary authentication failure):
 *     loud log with the transport's hint and a longer backoff (15 s
 *     doubling to 5 min); the queue is kept, nothing bounces.
 *
 * With a fleet (fleet.h, fleet.store set) the tokens come from the
 * fleet's shared bucket instead (a reservation is a ticket the slot
 * asks about again until leases cover it), a 454 throttle slows the
 * shared bucket too, and the daily quota pause is the fleet's: any host
 * told 454 pauses all, the fleet hands its one probe to one host, and
 * its success resumes all.  While the store is away the pool decides
 * alone, as above.
 *
 * Failover (sesrelayd.c) switches between two pools; only the active
 * one takes work, and health checks open a session that only becomes
 * ready and closes.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>

#include "endpoint.h"
#include "fleet.h"
#include "log.h"
#include "ratelimit.h"
#include "account.h"
#include "creds.h"
#include "scheduler.h"
#include "ses_reply.h"
#include "transport.h"
#include "upstream.h"
#include "xalloc.h"

#define UPSTREAM_MAX_SESSIONS	64	/* the upper bound of upstream.sessions */

enum slot_state {
	SLOT_STARTING,		/* opened, not ready yet */
	SLOT_IDLE,		/* ready, nothing to send */
	SLOT_WAITING,		/* holds a delivery, waiting for tokens */
	SLOT_SENDING,		/* a transaction is out */
	SLOT_BETWEEN,		/* done: ready or gone comes next */
	SLOT_CLOSING,		/* closed by the pool: gone comes next */
};

/* One session of the pool. */
struct upstream_slot {
	struct upstream		*pool;
	struct transport_session *ts;
	enum slot_state		 state;
	unsigned		 serial;
	time_t			 opened_at;
	unsigned		 messages;
	struct delivery		*d;
	int			 probe;		/* d probes the daily quota */
	int			 check_only;	/* a health check */
	int			 was_ready;
	double			 ticket;	/* the fleet's, while WAITING */
	struct event		*timer;		/* idle, or the rate wait */
};

struct upstream {
	struct event_base	*base;
	struct scheduler	*sched;
	struct upstream_config	 conf;	/* endpoint, cred: NULL (below) */
	struct endpoint		 ep;	/* strings owned (strdup) */
	struct transport	*transport;
	struct ratelimit	 rate;
	struct upstream_slot	*slots[UPSTREAM_MAX_SESSIONS];
	size_t			 nslots;
	unsigned		 serial;	/* connection numbers */
	unsigned		 failures;	/* connects failed in a row */
	struct event		*retry_ev;	/* backoff timer */
	int			 backing_off;
	int			 freeing;
	/* SES's limits, as SES reported them (see above) */
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
	/* AWS credentials (the API transport's too) and the account's
	 * limits (GetAccount), where API credentials exist */
	struct creds		*acreds;
	struct account		*account;
	int			 account_held;	/* the account view holds sending */
	void			(*check_cb)(void *, int);
	void			*check_arg;
};

static const struct transport_events slot_events;

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
		log_event(LOG_INFO, "-", "upstream.rate_recovered",
		    "pool=%s rate=%.2f", u->ep.name, u->rate_now);
	} else
		evtimer_add(u->recover_ev, &tv);
	ratelimit_set_rate(&u->rate, u->rate_now, now_seconds());
}

static void
upstream_throttled(struct upstream *u)
{
	double now = now_seconds(), floor = u->conf.rate / 64;
	struct timeval tv = { RECOVER_SECONDS, 0 };

	if (now - u->last_throttle < 1.0)
		return;		/* the same burst, seen by several sessions */
	u->last_throttle = now;
	if (fleet_is_on(u->conf.fleet))
		fleet_throttled(u->conf.fleet);	/* every host slows */
	if (floor > 0.1)
		floor = 0.1;
	u->rate_now = u->rate_now / 2 > floor ? u->rate_now / 2 : floor;
	ratelimit_set_rate(&u->rate, u->rate_now, now);
	/* SES counts over the last second, which is full: a second of
	 * silence, or every refused message comes straight back. */
	ratelimit_pause(&u->rate, 1.0, now);
	evtimer_add(u->recover_ev, &tv);	/* restarts the climb */
	log_event(LOG_WARNING, "-", "upstream.throttled",
	    "pool=%s rate=%.2f max_rate=%.2f msg=\"SES throttled the sending "
	    "rate (Maximum sending rate exceeded: 454 over SMTP, 429 over the "
	    "API); recovering towards "
	    "upstream.rate\"", u->ep.name, u->rate_now, u->conf.rate);
}

static void
probe_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct upstream *u = arg;

	u->probe_token = 1;
	log_event(LOG_DEBUG, "-", "upstream.quota_probe_due", "pool=%s",
	    u->ep.name);
	upstream_kick(u);
}

/* Pause sending, one probe every quota_probe_interval; 1: it was not
 * paused yet. */
static int
upstream_pause(struct upstream *u)
{
	struct timeval tv = { u->conf.quota_probe_interval, 0 };

	u->probe_token = 0;
	if (fleet_quota(u->conf.fleet) == FLEET_QUOTA_LOCAL)
		evtimer_add(u->probe_ev, &tv);
	else
		fleet_quota_exceeded(u->conf.fleet);	/* every host pauses */
	if (u->quota_paused)
		return 0;
	u->quota_paused = 1;
	u->paused_since = time(NULL);
	return 1;
}

/* SES paused the account's sending (SendingPausedException,
 * AccountSuspendedException): as the quota, louder. */
static void
upstream_account_paused(struct upstream *u, const char *reply)
{
	if (!upstream_pause(u))
		return;
	log_event(LOG_ERR, "-", "upstream.account_paused",
	    "pool=%s probe_every=%d reply=%s msg=\"SES has paused sending for "
	    "this account: sending paused; mail stays queued, nothing bounces "
	    "(see the SES console: account dashboard, reputation)\"",
	    u->ep.name, u->conf.quota_probe_interval, log_q(reply));
}

static void
upstream_quota_exceeded(struct upstream *u)
{
	if (!upstream_pause(u))
		return;
	log_event(LOG_WARNING, "-", "upstream.quota_paused",
	    "pool=%s probe_every=%d msg=\"SES daily sending quota exceeded: "
	    "sending paused; mail stays queued, nothing bounces (raise the "
	    "quota in the SES console)\"", u->ep.name,
	    u->conf.quota_probe_interval);
}

static void
upstream_quota_ok(struct upstream *u)
{
	if (fleet_is_on(u->conf.fleet))
		fleet_quota_ok(u->conf.fleet);	/* every host resumes */
	if (!u->quota_paused)
		return;
	u->quota_paused = 0;
	u->probe_token = 0;
	evtimer_del(u->probe_ev);
	log_event(LOG_WARNING, "-", "upstream.quota_resumed",
	    "pool=%s paused=%lld", u->ep.name,
	    (long long)(time(NULL) - u->paused_since));
	upstream_kick(u);
}

/*
 * Follow the fleet's daily quota pause: paused when it is, resumed when
 * it is not, the probe when the fleet hands it to this host.  While the
 * store is away, the pool probes on its own timer again.
 */
static void
upstream_fleet_sync(struct upstream *u)
{
	struct timeval tv = { u->conf.quota_probe_interval, 0 };
	enum fleet_quota q = fleet_quota(u->conf.fleet);

	if (q == FLEET_QUOTA_LOCAL) {
		if (u->quota_paused && !u->probe_token &&
		    !evtimer_pending(u->probe_ev, NULL))
			evtimer_add(u->probe_ev, &tv);
		return;
	}
	evtimer_del(u->probe_ev);
	if (q == FLEET_QUOTA_OK) {
		if (u->quota_paused) {
			u->quota_paused = 0;
			u->probe_token = 0;
			log_event(LOG_WARNING, "-", "upstream.quota_resumed",
			    "pool=%s paused=%lld fleet=1", u->ep.name,
			    (long long)(time(NULL) - u->paused_since));
		}
		return;
	}
	if (!u->quota_paused) {
		u->quota_paused = 1;
		u->paused_since = time(NULL);
		log_event(LOG_WARNING, "-", "upstream.quota_paused",
		    "pool=%s fleet=1 msg=\"the fleet's daily sending quota is "
		    "exceeded (another host was told): sending paused; mail "
		    "stays queued\"", u->ep.name);
	}
	if (scheduler_ready_count(u->sched) > 0)
		fleet_want_probe(u->conf.fleet);
	if (fleet_take_probe(u->conf.fleet))
		u->probe_token = 1;
}

static int
upstream_may_take(struct upstream *u, int *probe)
{
	*probe = 0;
	if (u->account_held)
		return 0;
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
		log_event(LOG_INFO, "-", "upstream.sessions_raised",
		    "pool=%s max_sessions=%d", u->ep.name, u->max_sessions);
		if (u->max_sessions < u->conf.sessions)
			evtimer_add(u->grow_ev, &tv);
		upstream_kick(u);
	}
}

static void
upstream_conn_limited(struct upstream *u, struct upstream_slot *sl)
{
	struct timeval tv = { GROW_SECONDS, 0 };
	int working = 0;

	for (size_t i = 0; i < u->nslots; i++)
		if (u->slots[i] != sl && u->slots[i]->was_ready)
			working++;
	if (working < 1)
		working = 1;
	evtimer_add(u->grow_ev, &tv);
	if (working >= u->max_sessions)
		return;
	u->max_sessions = working;
	log_event(LOG_WARNING, "-", "upstream.sessions_limited",
	    "pool=%s max_sessions=%d seconds=%d msg=\"SES: too many "
	    "concurrent connections\"", u->ep.name, u->max_sessions,
	    GROW_SECONDS);
}

static void
upstream_auth_failed(struct upstream *u, const char *reply)
{
	char msg[512];

	u->auth_failing = 1;
	snprintf(msg, sizeof(msg), "SES refused the credentials. Check %s: "
	    "%s. Mail stays queued; nothing bounces", u->ep.credentials_key,
	    u->transport->auth_hint);
	log_event(LOG_WARNING, "-", "upstream.auth_failed",
	    "pool=%s host=%s reply=%s msg=%s", u->ep.name, log_q(u->ep.host),
	    log_q(reply), log_q(msg));
}

static void
upstream_auth_ok(struct upstream *u)
{
	if (u->auth_failing)
		log_event(LOG_WARNING, "-", "upstream.auth_ok", "pool=%s",
		    u->ep.name);
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
	for (size_t i = 0; i < u->nslots; i++)
		n += u->slots[i]->d != NULL;
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

/* ---- slots: one session each ---- */

static void slot_gone(void *, struct transport_session *, int);

static void
slot_timer_cb(evutil_socket_t fd, short ev, void *arg);

/* Open a session (a health check when check_only) in a new slot. */
static void
slot_open(struct upstream *u, int check_only)
{
	struct upstream_slot *sl = calloc(1, sizeof(*sl));

	if (sl == NULL)
		abort();
	sl->pool = u;
	sl->serial = ++u->serial;
	sl->check_only = check_only;
	sl->opened_at = time(NULL);
	sl->timer = evtimer_new(u->base, slot_timer_cb, sl);
	u->slots[u->nslots++] = sl;
	sl->ts = u->transport->ops->open(u->transport, &slot_events, sl,
	    sl->serial);
}

/* Free a slot and its session; a delivery it holds goes back. */
static void
slot_free(struct upstream_slot *sl)
{
	struct upstream *u = sl->pool;

	if (sl->ts != NULL)
		u->transport->ops->free(sl->ts);	/* may call slot_done */
	if (sl->d != NULL) {
		scheduler_return(u->sched, sl->d);	/* was waiting */
		sl->d = NULL;
	}
	event_free(sl->timer);
	free(sl);
}

static void
slot_close(struct upstream_slot *sl)
{
	sl->state = SLOT_CLOSING;
	evtimer_del(sl->timer);
	sl->pool->transport->ops->close(sl->ts);
}

/*
 * Recycle between transactions only: after recycle_after_messages
 * messages or recycle_after_seconds on this connection (SES's ELB
 * rotates instances under long-lived connections).
 */
static int
slot_should_recycle(const struct upstream_slot *sl, time_t now,
    const char **reason)
{
	const struct upstream_config *c = &sl->pool->conf;

	if (sl->messages >= (unsigned)c->recycle_messages) {
		*reason = "messages";
		return 1;
	}
	if (now - sl->opened_at >= c->recycle_seconds) {
		*reason = "age";
		return 1;
	}
	return 0;
}

/* Hand the slot's delivery to its session. */
static void
slot_send(struct upstream_slot *sl)
{
	sl->state = SLOT_SENDING;
	sl->pool->transport->ops->send(sl->ts, sl->d);
}

/* An idle slot: take a delivery, wait for its tokens, or stay idle. */
static void
slot_offer(struct upstream_slot *sl)
{
	struct upstream *u = sl->pool;
	struct timeval idle = { u->conf.idle_timeout, 0 };
	struct delivery *d;
	double wait;
	int probe = 0;

	if (sl->state != SLOT_IDLE || sl->check_only)
		return;
	if (!u->active || !upstream_may_take(u, &probe) ||
	    (d = scheduler_take(u->sched)) == NULL) {
		if (probe)
			u->probe_token = 1;	/* not used: keep it */
		evtimer_add(sl->timer, &idle);
		return;
	}
	sl->probe = probe;
	if (probe)
		log_event(LOG_INFO, d->id, "upstream.quota_probe",
		    "pool=%s conn=%u", u->ep.name, sl->serial);
	evtimer_del(sl->timer);
	sl->d = d;
	if (fleet_is_on(u->conf.fleet) && probe)
		wait = 0;	/* the fleet's one probe: no tokens while paused */
	else if (fleet_is_on(u->conf.fleet))
		wait = fleet_reserve(u->conf.fleet, (double)d->nrcpt,
		    &sl->ticket);
	else
		wait = ratelimit_reserve(&u->rate, (double)d->nrcpt,
		    now_seconds());
	if (wait > 0) {
		struct timeval tv = { (time_t)wait,
		    (suseconds_t)((wait - (time_t)wait) * 1e6) };

		sl->state = SLOT_WAITING;
		evtimer_add(sl->timer, &tv);
		return;
	}
	slot_send(sl);
}

/* Idle for too long (close before SES does), or the tokens are there. */
static void
slot_timer_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct upstream_slot *sl = arg;
	double wait;

	if (sl->state == SLOT_WAITING && fleet_is_on(sl->pool->conf.fleet) &&
	    (wait = fleet_wait(sl->pool->conf.fleet, sl->ticket)) > 0) {
		/* Not covered by the leases yet: ask again. */
		struct timeval tv = { (time_t)wait,
		    (suseconds_t)((wait - (time_t)wait) * 1e6) };

		evtimer_add(sl->timer, &tv);
	} else if (sl->state == SLOT_WAITING)
		slot_send(sl);
	else if (sl->state == SLOT_IDLE) {
		log_event(LOG_DEBUG, "-", "upstream.idle_close",
		    "pool=%s conn=%u", sl->pool->ep.name, sl->serial);
		slot_close(sl);
	}
}

/* transport: the session is free (after opening, after a transaction). */
static void
slot_ready(void *arg, struct transport_session *ts)
{
	struct upstream_slot *sl = arg;
	struct upstream *u = sl->pool;
	time_t now = time(NULL);
	const char *reason;

	if (!sl->was_ready) {
		upstream_auth_ok(u);
		u->failing_since = 0;	/* a session works (a check too) */
	}
	sl->was_ready = 1;
	sl->state = SLOT_IDLE;
	if (sl->check_only) {
		log_event(LOG_INFO, "-", "upstream.health_ok",
		    "pool=%s conn=%u peer=%s", u->ep.name, sl->serial,
		    log_q(u->transport->ops->peer(ts)));
		slot_close(sl);
		return;
	}
	if (slot_should_recycle(sl, now, &reason)) {
		log_event(LOG_INFO, "-", "upstream.recycle",
		    "pool=%s conn=%u reason=%s messages=%u age=%lld",
		    u->ep.name, sl->serial, reason, sl->messages,
		    (long long)(now - sl->opened_at));
		slot_close(sl);
		return;
	}
	slot_offer(sl);
}

/* transport: a transaction ended (k NULL: nothing sent, give it back). */
static void
slot_done(void *arg, struct transport_session *ts, struct delivery *d,
    const struct ses_class *k)
{
	struct upstream_slot *sl = arg;
	struct upstream *u = sl->pool;

	sl->d = NULL;
	sl->state = SLOT_BETWEEN;
	if (k == NULL) {
		scheduler_return(u->sched, d);
		return;
	}
	/*
	 * Only the probe tells whether the quota is back: a transaction
	 * that was sent before the pause and succeeds after it says
	 * nothing new (with several sessions, SES's 454 for one and its 250
	 * for another cross), and resuming on it logged a pause twice.
	 */
	if (sl->probe && k->action == SES_ACT_NETWORK)
		upstream_quota_exceeded(u);	/* learnt nothing: again */
	else if (sl->probe && k->action != SES_ACT_QUOTA)
		upstream_quota_ok(u);
	sl->probe = 0;
	sl->messages++;
	if (k->action == SES_ACT_OK && u->conf.fleet != NULL)
		fleet_sent(u->conf.fleet, (double)d->nrcpt);
	scheduler_done(u->sched, d);
}

/* transport: SES said something about the whole pool. */
static void
slot_pool(void *arg, struct transport_session *ts, const struct ses_class *k,
    const char *reply)
{
	struct upstream_slot *sl = arg;

	switch (k->action) {
	case SES_ACT_RATE:
		upstream_throttled(sl->pool);
		break;
	case SES_ACT_QUOTA:
		if (k->flags & SES_F_ACCOUNT_PAUSED)
			upstream_account_paused(sl->pool, reply);
		else
			upstream_quota_exceeded(sl->pool);
		break;
	case SES_ACT_CONN_LIMIT:
		upstream_conn_limited(sl->pool, sl);
		break;
	case SES_ACT_AUTH:
		upstream_auth_failed(sl->pool, reply);
		break;
	default:
		break;
	}
}

static const struct transport_events slot_events = {
	.ready = slot_ready,
	.done = slot_done,
	.pool = slot_pool,
	.gone = slot_gone,
};

/* After a failed session: wait 2, 4 ... 60 s (credentials: 15 s ... 5
 * min) before opening the next. */
static void
pool_backoff(struct upstream *u)
{
	unsigned shift = u->failures < 5 ? u->failures : 5;
	struct timeval tv = { 2 << shift, 0 };

	if (tv.tv_sec > 60)
		tv.tv_sec = 60;
	if (u->auth_failing) {
		/* Credentials do not fix themselves in seconds. */
		tv.tv_sec = 15 << shift;
		if (tv.tv_sec > 300)
			tv.tv_sec = 300;
	}
	u->failures++;
	u->backing_off = 1;
	evtimer_add(u->retry_ev, &tv);
	log_event(LOG_WARNING, "-", "upstream.backoff",
	    "pool=%s seconds=%ld failures=%u queued=%zu", u->ep.name,
	    (long)tv.tv_sec, u->failures, scheduler_queued_count(u->sched));
}

/* transport: the session ended; ok: it had become ready. */
static void
slot_gone(void *arg, struct transport_session *ts, int ok)
{
	struct upstream_slot *sl = arg;
	struct upstream *u = sl->pool;
	int check = sl->check_only;

	for (size_t i = 0; i < u->nslots; i++)
		if (u->slots[i] == sl) {
			u->slots[i] = u->slots[--u->nslots];
			break;
		}
	if (sl->d != NULL && sl->probe)
		upstream_quota_exceeded(u);	/* the probe never went */
	slot_free(sl);
	if (check) {
		u->checking = 0;
		if (u->check_cb != NULL)
			u->check_cb(u->check_arg, ok);
		return;
	}
	if (ok) {
		u->failing_since = 0;
		u->failures = 0;
	} else {
		u->last_failure = time(NULL);
		if (u->failing_since == 0)
			u->failing_since = u->last_failure;
		if (!u->backing_off) {
			pool_backoff(u);
			return;
		}
	}
	upstream_kick(u);
}

void
upstream_check(struct upstream *u, void (*cb)(void *, int), void *arg)
{
	if (u->checking || u->nslots >= UPSTREAM_MAX_SESSIONS)
		return;
	u->checking = 1;
	u->check_cb = cb;
	u->check_arg = arg;
	slot_open(u, 1);
}

/* ---- the pool ---- */

/* ---- the account's limits (account.c) ---- */

/* GetAccount said MaxSendRate: rate = 0 follows it, less 10 %. */
static void
account_rate_cb(void *arg, double rate)
{
	struct upstream *u = arg;

	if (rate == u->conf.rate)
		return;
	log_event(LOG_INFO, "-", "upstream.rate_set", "pool=%s rate=%.2f "
	    "was=%.2f source=GetAccount", u->ep.name, rate, u->conf.rate);
	u->conf.rate = rate;
	if (!evtimer_pending(u->recover_ev, NULL) || u->rate_now > rate) {
		u->rate_now = rate;	/* not recovering from a throttle */
		ratelimit_set_rate(&u->rate, rate, now_seconds());
	}
}

/* The account view holds sending (quota nearly spent, sending disabled
 * or shut down) or releases it; account.c logs why. */
static void
account_hold_cb(void *arg, int held)
{
	struct upstream *u = arg;

	u->account_held = held;
	if (!held)
		upstream_kick(u);
}

/* GetAccount shows room in the quota: a pause SES's own quota refusal
 * started ends now rather than at the next probe. */
static void
account_room_cb(void *arg)
{
	upstream_quota_ok(arg);
}

/* Does the pool need AWS credentials: the API transport, or the
 * account's limits to read? */
static int
upstream_needs_creds(const struct upstream_config *c)
{
	const struct endpoint *ep = c->endpoint;

	if (c->conf == NULL || ep->transport == NULL)
		return 0;
	return strcmp(ep->transport, "api") == 0 ||
	    (ep->account_check_interval > 0 &&
	    endpoint_has_api_credentials(ep, c->cred));
}

/*
 * The pool's one credentials provider, shared by the API transport and
 * the account view (one IMDS client, not two); NULL in *out when none
 * is needed.  With auth "file" the key read before privileges were
 * dropped, not the file again (the daemon's user may not read it).
 * 0, or -1 with err.
 */
static int
upstream_creds(struct event_base *base, struct evdns_base *dns,
    const struct upstream_config *c, struct creds **out, char *err,
    size_t errlen)
{
	const struct endpoint_credentials *cr = c->cred;

	*out = NULL;
	if (!upstream_needs_creds(c))
		return 0;
	if (strcmp(c->endpoint->auth, "file") == 0 && cr != NULL &&
	    endpoint_credentials_is_key(cr))
		*out = creds_new_key(cr->access_key_id, cr->secret_access_key,
		    cr->session_token);
	else
		*out = creds_new(base, dns, c->conf, c->endpoint, err, errlen);
	return *out == NULL ? -1 : 0;
}

/* Read the account's limits where the endpoint has API credentials (an
 * IAM key, the environment, the instance role) and an interval.  0, or
 * -1 with err. */
static int
upstream_account_start(struct upstream *u, struct evdns_base *dns,
    const struct upstream_config *c, char *err, size_t errlen)
{
	struct account_events ev = { account_rate_cb, account_hold_cb,
	    account_room_cb, u };

	if (u->acreds == NULL || c->endpoint->account_check_interval == 0 ||
	    !endpoint_has_api_credentials(c->endpoint, c->cred))
		return 0;
	u->account = account_new(u->base, dns, &u->ep, u->acreds, &ev,
	    c->timeout, err, errlen);
	return u->account == NULL ? -1 : 0;
}

const struct account_view *
upstream_account(const struct upstream *u)
{
	return account_view(u->account);
}

struct upstream *
upstream_new(struct event_base *base, struct evdns_base *dns,
    struct spool *spool, struct scheduler *sched,
    const struct upstream_config *c, char *err, size_t errlen)
{
	struct transport_config tc = { c->endpoint, c->cred, c->helo_name,
	    c->timeout, c->ses, c->conf, NULL };
	struct upstream_config rc = *c;
	struct transport *t;
	struct upstream *u;
	struct creds *cr;

	if (upstream_creds(base, dns, c, &cr, err, errlen) == -1)
		return NULL;
	tc.creds = cr;
	if (c->endpoint->transport != NULL &&
	    strcmp(c->endpoint->transport, "api") == 0)
		t = transport_api_new(base, dns, spool, &tc, err, errlen);
	else
		t = transport_smtp_new(base, dns, spool, &tc, err, errlen);
	if (t == NULL) {
		creds_free(cr);
		return NULL;
	}
	/* The endpoint's own rate (fallback.rate); 0 follows the account. */
	if (c->endpoint->transport != NULL)
		rc.rate = c->endpoint->rate;
	if (rc.rate <= 0)
		rc.rate = UPSTREAM_RATE_UNKNOWN;
	u = upstream_new_transport(base, sched, t, &rc);
	u->acreds = cr;		/* freed after the transport */
	if (upstream_account_start(u, dns, c, err, errlen) == -1) {
		upstream_free(u);
		return NULL;
	}
	return u;
}

struct upstream *
upstream_new_transport(struct event_base *base, struct scheduler *sched,
    struct transport *t, const struct upstream_config *c)
{
	struct upstream *u = calloc(1, sizeof(*u));

	if (u == NULL)
		abort();
	u->transport = t;
	u->base = base;
	u->sched = sched;
	u->conf = *c;
	u->conf.endpoint = NULL;
	u->conf.cred = NULL;
	u->conf.helo_name = NULL;
	if (!fleet_is_on(c->fleet))
		u->conf.fleet = NULL;
	u->conf.conf = NULL;
	u->ep = *c->endpoint;
	u->ep.region = xstrdup(c->endpoint->region);
	u->ep.ca_file = xstrdup(c->endpoint->ca_file);
	u->ep.credentials = xstrdup(c->endpoint->credentials);
	u->active = 1;
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
	return u->nslots;
}

void
upstream_kick(struct upstream *u)
{
	size_t i, starting = 0;
	/* Offering may end a session (recycling), so walk a copy. */
	struct upstream_slot *copy[UPSTREAM_MAX_SESSIONS];
	size_t n = u->nslots;

	if (u->freeing || !u->active)
		return;
	if (u->conf.fleet != NULL)
		upstream_fleet_sync(u);
	memcpy(copy, u->slots, n * sizeof(copy[0]));
	for (i = 0; i < n; i++) {
		if (copy[i]->state == SLOT_STARTING)
			starting++;
		else if (copy[i]->state == SLOT_IDLE)
			slot_offer(copy[i]);
	}
	if (u->backing_off || u->account_held)
		return;
	if (u->quota_paused) {
		/* Only the probe needs a session. */
		if (u->probe_token && u->nslots == 0 &&
		    scheduler_ready_count(u->sched) > 0)
			slot_open(u, 0);
		return;
	}
	while (u->nslots < (size_t)u->max_sessions &&
	    scheduler_ready_count(u->sched) > starting) {
		slot_open(u, 0);
		starting++;
	}
}

void
upstream_free(struct upstream *u)
{
	if (u == NULL)
		return;
	u->freeing = 1;
	for (size_t i = 0; i < u->nslots; i++)
		slot_free(u->slots[i]);
	u->nslots = 0;
	event_free(u->retry_ev);
	event_free(u->recover_ev);
	event_free(u->probe_ev);
	event_free(u->grow_ev);
	account_free(u->account);
	u->transport->ops->destroy(u->transport);
	creds_free(u->acreds);	/* the API transport used it */
	free((char *)u->ep.region);
	free((char *)u->ep.ca_file);
	free((char *)u->ep.credentials);
	free(u);
}
