/* stats.c: the counters (see stats.h). */
#include "config.h"

#include "stats.h"

struct stats stats;

const double stats_buckets[STATS_NBUCKETS] = {
	1, 2, 5, 10, 30, 60, 300, 1800, 3600, 86400,
};

void
stats_latency(double seconds)
{
	int i;

	for (i = 0; i < STATS_NBUCKETS && seconds > stats_buckets[i]; i++)
		;
	stats.latency[i]++;
	stats.latency_sum += seconds;
	stats.latency_count++;
}

const char *
stats_action_name(int action)
{
	return ses_action_name(action);
}
