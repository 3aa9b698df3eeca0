/*
 * transport_txn.c: a transaction's outcomes for its recipients, shared
 * by the transports (transport_txn.h).  Pure but for the log line.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "scheduler.h"
#include "ses_reply.h"
#include "transport_txn.h"

enum delivery_outcome
transport_txn_outcome(const struct ses_class *k)
{
	switch (k->action) {
	case SES_ACT_PERMFAIL:
		return DELIVERY_PERMFAIL;
	case SES_ACT_OK:
		return DELIVERY_OK;
	default:
		if (k->counts_attempt)
			return DELIVERY_TEMPFAIL;
		return k->scope == SES_SCOPE_POOL ? DELIVERY_RETURN :
		    DELIVERY_REQUEUE;
	}
}

void
transport_txn_settle(struct delivery *d, const struct ses_class *k,
    const char *why, const int *accepted)
{
	for (size_t i = 0; i < d->nrcpt; i++) {
		if (d->outcome[i] != DELIVERY_UNTRIED &&
		    ((accepted != NULL && !accepted[i]) ||
		    d->outcome[i] == DELIVERY_OK))
			continue;
		d->outcome[i] = transport_txn_outcome(k);
		if (d->reply[i] == NULL)
			d->reply[i] = strdup(why);
	}
}

void
transport_txn_unknown(struct delivery *d, const char *pool,
    unsigned serial, const char *why)
{
	d->outcome_unknown = 1;
	log_event(LOG_WARNING, d->id, "upstream.outcome_unknown",
	    "pool=%s conn=%u reason=%s msg=\"will retry; a duplicate "
	    "is possible\"", pool, serial, log_q(why));
}
