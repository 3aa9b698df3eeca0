/*
 * scheduler.h: which message goes next, and when a deferred one is due.
 *
 * The scheduler holds the in-memory index of the spool (rebuilt from it
 * at start), hands deliveries of at most SCHEDULER_MAX_RCPT recipients
 * to the upstream, and turns their outcomes into spool state: done,
 * deferred with a retry time, or failed.
 */
#ifndef SESRELAY_SCHEDULER_H
#define SESRELAY_SCHEDULER_H

#include <stddef.h>
#include <time.h>

#include "spool.h"

#define SCHEDULER_MAX_RCPT	50	/* SES's limit per message */

struct event_base;
struct scheduler;

enum delivery_outcome {
	DELIVERY_UNTRIED = 0,	/* not reached (treated as temporary) */
	DELIVERY_OK,
	DELIVERY_TEMPFAIL,
	DELIVERY_PERMFAIL,
	DELIVERY_REQUEUE,	/* not SES's verdict on the message (session
				 * over, lost connection): offered again soon,
				 * no retry step used */
	DELIVERY_RETURN,	/* the pool's business (throttle, quota,
				 * connection limit, credentials): as REQUEUE,
				 * and not counted towards the limit below */
};

/* A message given back this many times in a row counts as deferred. */
#define SCHEDULER_MAX_REQUEUES	5

/* One upstream transaction's worth of a message. */
struct delivery {
	char			 id[SPOOL_ID_LEN + 1];
	const char		*sender;
	size_t			 nrcpt;
	const char		*rcpt[SCHEDULER_MAX_RCPT];
	size_t			 index[SCHEDULER_MAX_RCPT];
	enum delivery_outcome	 outcome[SCHEDULER_MAX_RCPT];
	char			*reply[SCHEDULER_MAX_RCPT];
	char			 ses_id[128];
	off_t			 size;
	unsigned		 attempt;	/* 1 for the first try */
	int			 outcome_unknown; /* lost after the dot: the
						  * TEMPFAIL recipients were
						  * sent a copy SES may have */
	void			*owner;		/* the scheduler's, opaque */
};

/* The bounce of a message is durable: done(done_arg, 0), or errno. */
typedef void (*scheduler_bounce_done)(void *done_arg, int status);

struct scheduler_config {
	const long long	*retry;		/* retry.schedule */
	size_t		 nretry;
	long long	 max_queue_time;
	/*
	 * retry.max_unknown_outcome_copies: a recipient sent this many copies
	 * whose outcome is unknown (lost after the dot) is sent no more: its
	 * message is held for the operator.  0: no bound.
	 */
	unsigned	 max_unknown_copies;
	/*
	 * Queue a bounce for the recipients of env whose status is
	 * SPOOL_RCPT_FAILED (expired: they outlived max_queue_time).  NULL:
	 * failures are only logged.  Never called for a bounce.
	 */
	void		(*bounce)(void *arg, const struct spool_envelope *env,
			    int expired, scheduler_bounce_done done,
			    void *done_arg);
	void		*bounce_arg;
};

/* kick runs (from the loop) whenever ready work appears. */
struct scheduler *scheduler_new(struct event_base *, struct spool *,
    const struct scheduler_config *, void (*kick)(void *), void *kick_arg);
void scheduler_free(struct scheduler *);
void scheduler_configure(struct scheduler *, const struct scheduler_config *);

/* Take ownership of a spooled message (after commit, or a bounce). */
void scheduler_add(struct scheduler *, struct spool_envelope *);

/*
 * The start-up index (spool_index_start) runs while mail is accepted and
 * delivered.  Between scheduler_index_begin() and scheduler_index_end()
 * the scheduler remembers the id of every message added otherwise or
 * gone from the queue: scheduler_add_indexed() drops the index's copy of
 * one of those (it was committed while queue/ was listed, or loaded by
 * id for the operator, or even delivered and removed since), and
 * scheduler_add() a message the index handed over first.  Asked for by id (find, hold,
 * release, delete), a message not yet indexed is loaded at once; an
 * "all" applies also to what the index finds later.
 */
void scheduler_index_begin(struct scheduler *);
void scheduler_add_indexed(struct scheduler *, struct spool_envelope *);
void scheduler_index_end(struct scheduler *);
int scheduler_is_indexing(const struct scheduler *);

/* The next delivery, or NULL when nothing is due. */
struct delivery *scheduler_take(struct scheduler *);
/* Record a delivery's outcomes; frees it. */
void scheduler_done(struct scheduler *, struct delivery *);
/* Give a delivery back untouched (e.g. the session could not start it). */
void scheduler_return(struct scheduler *, struct delivery *);

size_t scheduler_ready_count(const struct scheduler *);
size_t scheduler_queued_count(const struct scheduler *);

/*
 * Fail every queued message older than max_queue_time that is not out
 * with the upstream (run periodically; also while nothing is sent).
 * Returns how many expired.
 */
size_t scheduler_expire(struct scheduler *);

/* Seconds since the oldest queued message arrived (0: none). */
long long scheduler_oldest_age(const struct scheduler *);

/* ---- the operator's view (control socket, mailq) ---- */

struct scheduler_view {
	const struct spool_envelope *env;
	int		held;
	int		active;		/* being delivered now */
	int		deleted;	/* deleted, waiting for a delivery */
};

/* Call cb for every queued message, oldest first (while indexing, those
 * indexed so far). */
void scheduler_foreach(const struct scheduler *,
    void (*cb)(void *arg, const struct scheduler_view *), void *arg);
/* One message by id; 0 and *v filled, or -1. */
int scheduler_find(struct scheduler *, const char *id,
    struct scheduler_view *v);
/* Make every waiting message due now; returns how many. */
size_t scheduler_flush(struct scheduler *);
/*
 * Hold, release or delete one message (id) or all (id NULL).  A held
 * message is kept but not sent, across restarts, and does not expire; a
 * deleted one is removed without a bounce (once a delivery in progress
 * ends).  Return how many messages changed.
 */
size_t scheduler_hold(struct scheduler *, const char *id);
size_t scheduler_release(struct scheduler *, const char *id);
size_t scheduler_delete(struct scheduler *, const char *id);

/* Pure: seconds to wait before retry number attempt (1-based). */
long long scheduler_retry_delay(const struct scheduler_config *,
    unsigned attempt);

#endif
