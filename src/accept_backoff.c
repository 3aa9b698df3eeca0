/*
 * accept_backoff.c: pausing listeners while accept() fails (see the
 * header).  An episode's first failure is logged, and its end; the
 * failures in between only count, however many there are, and so do
 * episodes that come within ACCEPT_LOG_INTERVAL of a logged one.
 */
#include "config.h"

#include <string.h>
#include <time.h>

#include <event2/event.h>
#include <event2/listener.h>

#include "accept_backoff.h"
#include "log.h"

static void
resume_cb(evutil_socket_t fd, short what, void *arg)
{
	struct accept_backoff *ab = arg;

	for (size_t i = 0; i < *ab->nlisteners; i++)
		evconnlistener_enable(ab->listeners[i]);
}

void
accept_backoff_init(struct accept_backoff *ab, struct event_base *base,
    const char *what, struct evconnlistener *const *listeners,
    const size_t *nlisteners)
{
	memset(ab, 0, sizeof(*ab));
	ab->what = what;
	ab->listeners = listeners;
	ab->nlisteners = nlisteners;
	if ((ab->timer = evtimer_new(base, resume_cb, ab)) == NULL)
		fatalx("daemon.fatal", "call=evtimer_new");
}

void
accept_backoff_failed(struct accept_backoff *ab, int err)
{
	struct timeval tv = { 0, ACCEPT_BACKOFF_MS * 1000 };
	char ev[64];

	long long now = (long long)time(NULL);

	ab->unlogged++;
	if (ab->failures++ == 0 && (ab->logged_at == 0 ||
	    now - ab->logged_at >= ACCEPT_LOG_INTERVAL)) {
		snprintf(ev, sizeof(ev), "%s.accept_paused", ab->what);
		log_event(LOG_WARNING, "-", ev, "error=%s retry_ms=%d "
		    "failures=%lu msg=\"accepting again until it succeeds; "
		    "failures since the last report\"", log_q(strerror(err)),
		    ACCEPT_BACKOFF_MS, ab->unlogged);
		ab->logged_at = now;
		ab->logged = 1;
		ab->unlogged = 0;
	}
	for (size_t i = 0; i < *ab->nlisteners; i++)
		evconnlistener_disable(ab->listeners[i]);
	evtimer_add(ab->timer, &tv);
}

void
accept_backoff_accepted(struct accept_backoff *ab)
{
	char ev[64];

	if (ab->failures == 0)
		return;
	if (ab->logged) {
		snprintf(ev, sizeof(ev), "%s.accept_resumed", ab->what);
		log_event(LOG_INFO, "-", ev, "failures=%lu", ab->failures);
	}
	ab->failures = 0;
	ab->logged = 0;
}

void
accept_backoff_stop(struct accept_backoff *ab)
{
	if (ab->timer != NULL)
		evtimer_del(ab->timer);
}

void
accept_backoff_free(struct accept_backoff *ab)
{
	if (ab->timer != NULL)
		event_free(ab->timer);
	ab->timer = NULL;
}
