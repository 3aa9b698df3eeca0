/*
 * bounce.h: turning permanent failures into bounces in the spool.
 *
 * The scheduler calls bounce_queue() (its conf.bounce) with a message
 * whose failed recipients need a bounce; the bounce (dsn.h) is written
 * to the spool like any accepted message, flagged SPOOL_F_DSN so that it
 * is never bounced itself, handed to the scheduler, and only then is the
 * scheduler told it is durable.  SES refuses MAIL FROM:<>, so a bounce
 * is sent from a configured verified address.
 */
#ifndef SESRELAY_BOUNCE_H
#define SESRELAY_BOUNCE_H

#include "scheduler.h"

struct bounce;
struct spool;

struct bounce_config {
	const char	*sender;	/* verified envelope sender and From: */
	const char	*hostname;	/* Reporting-MTA */
};

struct bounce *bounce_new(struct spool *, const struct bounce_config *);
/* The scheduler that bounces are handed to (it is created after us). */
void bounce_set_scheduler(struct bounce *, struct scheduler *);
/* New settings (reload); bounces on their way keep going. */
void bounce_configure(struct bounce *, const struct bounce_config *);
void bounce_free(struct bounce *);

/* A scheduler_config.bounce callback; arg is the struct bounce. */
void bounce_queue(void *arg, const struct spool_envelope *env, int expired,
    scheduler_bounce_done done, void *done_arg);

#endif
