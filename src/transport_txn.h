/*
 * transport_txn.h: what a transaction's end means for its recipients,
 * the same for every transport (transport.h): a class of the SES reply
 * table (ses_reply.h) becomes the scheduler's outcome.
 */
#ifndef SESRELAY_TRANSPORT_TXN_H
#define SESRELAY_TRANSPORT_TXN_H

#include "scheduler.h"

struct ses_class;

/* What class k means for the recipients it reaches. */
enum delivery_outcome transport_txn_outcome(const struct ses_class *k);

/*
 * The transaction ends with class k for every recipient not decided
 * yet: the untried ones, and the accepted ones not delivered (accepted:
 * a flag per recipient, NULL: all of them).  why is the reply of those
 * that have none.
 */
void	transport_txn_settle(struct delivery *d, const struct ses_class *k,
	    const char *why, const int *accepted);

/*
 * The connection was lost after the message was handed over whole: SES
 * may have it (d->outcome_unknown, logged upstream.outcome_unknown with
 * pool and conn).
 */
void	transport_txn_unknown(struct delivery *d, const char *pool,
	    unsigned serial, const char *why);

#endif
