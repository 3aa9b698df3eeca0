/*
 * accept_backoff.h: pausing listeners while accept() fails.
 *
 * When descriptors run out (EMFILE, ENFILE) or the kernel is short of
 * memory, a listening socket stays readable and accept() fails again at
 * once: an event loop that kept trying would spin at full CPU and log
 * each failure.  Instead, on a failure every listener of the owner is
 * disabled for ACCEPT_BACKOFF_MS; the first connection accepted
 * afterwards ends the episode.  An episode's start and end are logged,
 * but at most once in ACCEPT_LOG_INTERVAL seconds: at the limit, every
 * descriptor freed starts a new episode.
 *
 * The owner embeds the struct and calls _failed from its evconnlistener
 * error callback and _accepted from its accept callback.
 */
#ifndef SESRELAY_ACCEPT_BACKOFF_H
#define SESRELAY_ACCEPT_BACKOFF_H

#include <stddef.h>

struct event;
struct event_base;
struct evconnlistener;

#define ACCEPT_BACKOFF_MS	250
#define ACCEPT_LOG_INTERVAL	60

struct accept_backoff {
	struct event		*timer;		/* resumes the listeners */
	struct evconnlistener	*const *listeners; /* the owner's array */
	const size_t		*nlisteners;	/* ... and its length */
	const char		*what;		/* "smtp", "control" */
	unsigned long		 failures;	/* this episode's; 0: none */
	unsigned long		 unlogged;	/* since the last line */
	long long		 logged_at;	/* when an episode was logged */
	int			 logged;	/* this episode was */
};

void accept_backoff_init(struct accept_backoff *, struct event_base *,
    const char *what, struct evconnlistener *const *listeners,
    const size_t *nlisteners);
/* accept() failed with error err: pause every listener a while. */
void accept_backoff_failed(struct accept_backoff *, int err);
/* A connection was accepted: an episode of failures is over. */
void accept_backoff_accepted(struct accept_backoff *);
/* The listeners are being freed: resume none of them later. */
void accept_backoff_stop(struct accept_backoff *);
/* Free the timer (after _stop or with the owner). */
void accept_backoff_free(struct accept_backoff *);

#endif
