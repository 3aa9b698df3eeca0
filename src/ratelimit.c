/*
 * ratelimit.c: token bucket by reservation.
 *
 * Tokens accrue at rate up to burst.  A reservation always succeeds and
 * may leave the bucket negative; the reply is the wait until the debt is
 * paid, so callers queue fairly in the order they asked.
 */
#include "config.h"

#include "ratelimit.h"

void
ratelimit_init(struct ratelimit *rl, double rate, double burst, double now)
{
	rl->rate = rate;
	rl->burst = burst < 1 ? 1 : burst;
	rl->tokens = rl->burst;
	rl->last = now;
}

double
ratelimit_reserve(struct ratelimit *rl, double n, double now)
{
	if (now > rl->last) {
		rl->tokens += (now - rl->last) * rl->rate;
		if (rl->tokens > rl->burst)
			rl->tokens = rl->burst;
		rl->last = now;
	}
	rl->tokens -= n;
	if (rl->tokens >= 0)
		return 0;
	return -rl->tokens / rl->rate;
}

void
ratelimit_pause(struct ratelimit *rl, double seconds, double now)
{
	ratelimit_reserve(rl, 0, now);
	if (rl->tokens > -seconds * rl->rate)
		rl->tokens = -seconds * rl->rate;
}

void
ratelimit_set_rate(struct ratelimit *rl, double rate, double now)
{
	ratelimit_reserve(rl, 0, now);	/* settle at the old rate */
	rl->rate = rate;
	rl->burst = rate < 1 ? 1 : rate;
	if (rl->tokens > rl->burst)
		rl->tokens = rl->burst;
}
