/*
 * stats.h: the daemon's counters, for `sesrelayctl stats` and metrics.
 *
 * One process, one event loop: plain counters, no locking.  Counted
 * where things happen (smtp_server, scheduler, upstream, bounce).
 */
#ifndef SESRELAY_STATS_H
#define SESRELAY_STATS_H

#include <time.h>

#include "ses_reply.h"

#define STATS_NACTIONS		(SES_ACT_PROTOCOL + 1)
#define STATS_NBUCKETS		10

struct stats {
	time_t			 started;
	unsigned long long	 accepted;	/* messages, 250 given */
	unsigned long long	 refused;	/* messages refused at DATA end */
	unsigned long long	 delivered;	/* recipients SES took */
	unsigned long long	 deferred;	/* recipients deferred (4xx) */
	unsigned long long	 failed;	/* recipients failed (5xx, expiry) */
	unsigned long long	 expired;	/* of those, by max_queue_time */
	unsigned long long	 bounced;	/* bounces queued */
	unsigned long long	 connections;	/* upstream connections opened */
	unsigned long long	 replies[STATS_NACTIONS]; /* by ses_action */
	/* accept to SES 250, per recipient, in seconds */
	unsigned long long	 latency[STATS_NBUCKETS + 1]; /* +Inf last */
	double			 latency_sum;
	unsigned long long	 latency_count;
};

extern struct stats stats;
/* Upper bounds of the latency buckets, seconds. */
extern const double stats_buckets[STATS_NBUCKETS];

void stats_latency(double seconds);
/* The stable name of an action (ses_reply's class names). */
const char *stats_action_name(int action);

#endif
