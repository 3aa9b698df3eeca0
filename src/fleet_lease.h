/*
 * fleet_lease.h: this host's side of the fleet's shared token bucket,
 * pure, with the clock passed in (as ratelimit.h).
 *
 * While the store answers ("shared"), tokens come in leases: a
 * reservation is a ticket (the running total of tokens reserved), and a
 * delivery may go once the tokens granted so far cover its ticket.
 * Without the store ("fallback") the host keeps to upstream.rate /
 * fleet.hosts with a plain token bucket of its own.
 */
#ifndef SESRELAY_FLEET_LEASE_H
#define SESRELAY_FLEET_LEASE_H

#include "ratelimit.h"

/* A lease covers this many seconds of the host's own demand... */
#define FLEET_LEASE_SECONDS	0.25
/* ... and tokens left unspent this long after a grant are dropped, so a
 * host never holds more than one lease, nor holds it for long. */
#define FLEET_LEASE_TTL		1.0

struct fleet_lease {
	double		 rate;		/* the account's (upstream.rate) */
	int		 hosts;		/* fleet.hosts */
	int		 shared;	/* 1: leases; 0: fallback */
	struct ratelimit local;		/* fallback: rate / hosts */
	double		 reserved;	/* shared: tokens reserved, in all */
	double		 granted;	/* shared: tokens granted, in all */
	double		 granted_at;	/* the last grant */
	double		 demand;	/* recipients asked for, decaying */
	double		 demand_at;
	double		 spent;		/* recipients not yet counted in the
					 * store's 24-hour total */
	double		 fb_base;	/* fallback: tickets above this ... */
	double		 fb_at;		/* ... go at rate / hosts from then */
	double		 climb_at;	/* fallback: the local rate, slowed by
					 * a 454, climbed back until then */
};

/* Start in fallback (until the store answers) at time now. */
void fleet_lease_init(struct fleet_lease *, double rate, int hosts,
    double now);
/*
 * Reserve n tokens.  Returns how long to wait before asking
 * fleet_lease_wait again (0: send now); *ticket is what it asks about.
 */
double fleet_lease_reserve(struct fleet_lease *, double n, double now,
    double *ticket);
/* May the reservation of this ticket go?  0: yes; else seconds to wait
 * before asking again. */
double fleet_lease_wait(struct fleet_lease *, double ticket, double now);
/* Tokens to ask the store for now (0: none): what is owed, plus a
 * lease's worth of the recent demand, less what is held. */
double fleet_lease_want(struct fleet_lease *, double now);
/* The store granted n tokens. */
void fleet_lease_grant(struct fleet_lease *, double n, double now);
/* SES took n recipients: they count in the fleet's 24 hours. */
void fleet_lease_sent(struct fleet_lease *, double n);
/* The recipients to report to the store's 24-hour count, and zero it. */
double fleet_lease_take_spent(struct fleet_lease *);
/* Report failed: put them back for the next report. */
void fleet_lease_unspend(struct fleet_lease *, double n);
/* The store answers: tokens come from it from now on. */
void fleet_lease_share(struct fleet_lease *, double now);
/*
 * The store is gone: what is owed is charged to the local bucket at
 * rate / hosts, and the tickets waiting go at that rate from now, in
 * their order: paced, not let loose.
 */
void fleet_lease_fallback(struct fleet_lease *, double now);
/* The rate of this host alone, while in fallback. */
double fleet_lease_fallback_rate(const struct fleet_lease *);
/*
 * SES throttled this host while alone: its rate halves (down to 1/64)
 * after a second of silence, and climbs back by 5 % of rate / hosts a
 * second, as the store's bucket does for the fleet.
 */
void fleet_lease_throttled(struct fleet_lease *, double now);
/* The rate this host keeps to alone now. */
double fleet_lease_local_rate(struct fleet_lease *, double now);

#endif
