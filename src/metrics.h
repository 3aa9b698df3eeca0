/*
 * metrics.h: the Prometheus metrics endpoint of sesrelayd (optional).
 *
 * An HTTP listener (libevent's evhttp) answering GET or HEAD /metrics
 * with the text exposition format 0.0.4: the counters of stats.h and
 * the gauges of a struct control_status, rendered afresh per scrape.
 * Any other path is 404, any other method on /metrics 405.  The metric
 * names are listed at the top of metrics.c.
 */
#ifndef SESRELAY_METRICS_H
#define SESRELAY_METRICS_H

#include <stddef.h>
#include <stdio.h>
#include <time.h>

struct event_base;
struct control_status;
struct metrics;

/* Content-Type of the exposition. */
#define METRICS_CONTENT_TYPE	"text/plain; version=0.0.4; charset=utf-8"

/*
 * Write the exposition to fp (pure, for the tests): the counters from
 * the global `stats`, the gauges from st.  now is not rendered today
 * (the format carries no timestamps; ages come ready-made in st).
 */
void metrics_render(FILE *fp, const struct control_status *st, time_t now);

/*
 * Listen on hostport: a numeric address and a port, "127.0.0.1:9187" or
 * "[::1]:9187" (port 0 picks a free one; see metrics_port()).  Names are
 * refused: no DNS at start-up.  Per scrape, status(arg, st) is called on
 * a zeroed st and must fill every field, the queue's (queued, ready,
 * held, oldest_age) as well as the upstream's.  Returns NULL with a
 * reason in err (the address and strerror) when it cannot listen.
 */
struct metrics *metrics_new(struct event_base *, const char *hostport,
    void (*status)(void *arg, struct control_status *), void *arg,
    char *err, size_t errlen);
/* The port actually bound, or -1. */
int metrics_port(const struct metrics *);
/* Close the listener and any open scrape connections; NULL is fine. */
void metrics_free(struct metrics *);

#endif
