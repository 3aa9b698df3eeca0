/*
 * ratelimit.h: a token bucket, pure, with the clock passed in.
 */
#ifndef SESRELAY_RATELIMIT_H
#define SESRELAY_RATELIMIT_H

struct ratelimit {
	double	rate;		/* tokens per second */
	double	burst;		/* bucket size */
	double	tokens;		/* may go negative: reserved ahead */
	double	last;		/* time of the last update, seconds */
};

void ratelimit_init(struct ratelimit *, double rate, double burst,
    double now);
/*
 * Reserve n tokens at time now.  Returns how many seconds the caller
 * must wait before using them (0 when available at once).
 */
double ratelimit_reserve(struct ratelimit *, double n, double now);
/*
 * Change the rate from now on (tokens earned until now count at the old
 * rate); the burst follows it (one second's worth, at least 1).
 */
void ratelimit_set_rate(struct ratelimit *, double rate, double now);
/* Nothing more for `seconds` from now (the bucket is emptied). */
void ratelimit_pause(struct ratelimit *, double seconds, double now);

#endif
