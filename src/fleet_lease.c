/*
 * fleet_lease.c: the host's account of leased tokens (fleet_lease.h).
 *
 * Invariants: in shared mode a ticket is covered when granted >= ticket
 * (tickets are handed out in increasing order, so deliveries go in the
 * order they asked); tokens held beyond what was reserved (granted >
 * reserved) are at most one lease, and are dropped FLEET_LEASE_TTL
 * after the grant.  Together these bound what a host can send above its
 * share: one lease.  In fallback mode tickets are 0 and the local
 * bucket's reservation says how long to wait.
 */
#include "config.h"

#include <math.h>

#include "fleet_lease.h"

#define DEMAND_TAU	1.0	/* seconds over which demand is averaged */
#define POLL_MIN	0.005	/* a waiting delivery asks again after ... */
#define POLL_MAX	0.1	/* ... at least this, at most this */

void
fleet_lease_init(struct fleet_lease *fl, double rate, int hosts, double now)
{
	fl->rate = rate;
	fl->hosts = hosts < 1 ? 1 : hosts;
	fl->shared = 0;
	ratelimit_init(&fl->local, rate / fl->hosts, rate / fl->hosts, now);
	fl->reserved = fl->granted = 0;
	fl->granted_at = now;
	fl->demand = 0;
	fl->demand_at = now;
	fl->spent = 0;
	fl->fb_base = fl->fb_at = 0;
	fl->climb_at = now;
}

double
fleet_lease_fallback_rate(const struct fleet_lease *fl)
{
	return fl->rate / fl->hosts;
}

/* The demand, decayed to now: about DEMAND_TAU seconds' worth. */
static double
demand_now(struct fleet_lease *fl, double now)
{
	if (now > fl->demand_at) {
		fl->demand *= exp(-(now - fl->demand_at) / DEMAND_TAU);
		fl->demand_at = now;
	}
	return fl->demand;
}

/* Drop the tokens held past their time (shared mode). */
static void
expire_surplus(struct fleet_lease *fl, double now)
{
	if (fl->granted > fl->reserved &&
	    now - fl->granted_at > FLEET_LEASE_TTL)
		fl->granted = fl->reserved;
}

double
fleet_lease_local_rate(struct fleet_lease *fl, double now)
{
	double base = fleet_lease_fallback_rate(fl), r;

	if (fl->local.rate < base && now > fl->climb_at) {
		r = fl->local.rate + (now - fl->climb_at) * base * 0.05;
		ratelimit_set_rate(&fl->local, r > base ? base : r, now);
	}
	if (now > fl->climb_at)
		fl->climb_at = now;
	return fl->local.rate;
}

void
fleet_lease_throttled(struct fleet_lease *fl, double now)
{
	double base = fleet_lease_fallback_rate(fl), r;

	if (fl->shared)
		return;
	r = fleet_lease_local_rate(fl, now) / 2;
	ratelimit_set_rate(&fl->local, r < base / 64 ? base / 64 : r, now);
	ratelimit_pause(&fl->local, 1.0, now);
}

double
fleet_lease_reserve(struct fleet_lease *fl, double n, double now,
    double *ticket)
{
	demand_now(fl, now);
	fl->demand += n;
	if (!fl->shared) {
		*ticket = 0;
		fleet_lease_local_rate(fl, now);
		return ratelimit_reserve(&fl->local, n, now);
	}
	expire_surplus(fl, now);
	fl->reserved += n;
	*ticket = fl->reserved;
	return fleet_lease_wait(fl, *ticket, now);
}

double
fleet_lease_wait(struct fleet_lease *fl, double ticket, double now)
{
	double owed, wait;

	if (!fl->shared) {
		/* A ticket of the shared mode, waiting when it ended. */
		wait = fl->fb_at + (ticket - fl->fb_base) /
		    fleet_lease_fallback_rate(fl) - now;
		return ticket <= fl->fb_base || wait <= 0 ? 0 : wait;
	}
	if (ticket <= fl->granted)
		return 0;
	/* An estimate: the host's share of the rate.  The grant that
	 * covers it may come sooner or later; the caller asks again. */
	owed = ticket - fl->granted;
	wait = owed / (fl->rate / fl->hosts);
	return wait < POLL_MIN ? POLL_MIN : wait > POLL_MAX ? POLL_MAX : wait;
}

double
fleet_lease_want(struct fleet_lease *fl, double now)
{
	double owed, lease, want, cap;

	if (!fl->shared)
		return 0;
	expire_surplus(fl, now);
	owed = fl->reserved - fl->granted;	/* < 0: tokens held */
	lease = demand_now(fl, now) * FLEET_LEASE_SECONDS / DEMAND_TAU;
	/* Nothing owed and a quarter of a lease still held (or no demand
	 * worth a token): no round trip.  A host asks about once a lease,
	 * not once a message. */
	if (owed <= 0 && (-owed >= lease / 4 || lease < 0.5))
		return 0;
	want = owed + lease;
	/* At most a lease's worth of the whole fleet's rate ahead of what
	 * is owed; always at least one token while anything is owed. */
	cap = fl->rate * FLEET_LEASE_SECONDS;
	if (want > (owed > 0 ? owed : 0) + cap)
		want = (owed > 0 ? owed : 0) + cap;
	want = ceil(want);
	return want < 1 ? (owed > 0 ? 1 : 0) : want;
}

void
fleet_lease_grant(struct fleet_lease *fl, double n, double now)
{
	if (!fl->shared || n <= 0)
		return;
	fl->granted += n;
	fl->granted_at = now;
}

void
fleet_lease_sent(struct fleet_lease *fl, double n)
{
	fl->spent += n;
}

double
fleet_lease_take_spent(struct fleet_lease *fl)
{
	double n = fl->spent;

	fl->spent = 0;
	return n;
}

void
fleet_lease_unspend(struct fleet_lease *fl, double n)
{
	fl->spent += n;
}

void
fleet_lease_share(struct fleet_lease *fl, double now)
{
	if (fl->shared)
		return;
	fl->shared = 1;
	fl->granted = fl->reserved;	/* tickets so far are covered */
	fl->granted_at = now;
}

void
fleet_lease_fallback(struct fleet_lease *fl, double now)
{
	double owed = fl->reserved - fl->granted;

	if (!fl->shared)
		return;
	fl->shared = 0;
	ratelimit_init(&fl->local, fleet_lease_fallback_rate(fl),
	    fleet_lease_fallback_rate(fl), now);
	fl->fb_base = fl->granted;
	fl->fb_at = now;
	if (owed > 0)
		ratelimit_pause(&fl->local, owed / fleet_lease_fallback_rate(fl),
		    now);
	fl->granted = fl->reserved;
}
