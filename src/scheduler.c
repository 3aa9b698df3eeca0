/*
 * scheduler.c: the in-memory queue over the spool.
 *
 * Every spooled message is in exactly one list: ready (due now), waiting
 * (its own timer runs until its retry time), or active (deliveries out
 * with the upstream).  Recipients carry their spool status; "tried" marks
 * those already offered in the current round, so a message with more
 * than 50 recipients is sent in several transactions before any retry.
 */
#include "config.h"

#include <sys/queue.h>

#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "log.h"
#include "scheduler.h"

enum msg_where { IN_READY, IN_WAITING, IN_ACTIVE };

struct msg {
	struct spool_envelope	*env;
	char			*tried;		/* per rcpt, this round */
	unsigned		 active;	/* deliveries out */
	int			 round_temp;	/* a rcpt deferred this round */
	enum msg_where		 where;
	struct event		*timer;
	struct scheduler	*sched;
	TAILQ_ENTRY(msg)	 entry;		/* ready */
	TAILQ_ENTRY(msg)	 all;		/* every message */
};
TAILQ_HEAD(msgq, msg);

struct scheduler {
	struct event_base	*base;
	struct spool		*spool;
	struct scheduler_config	 conf;
	long long		*retry;
	struct msgq		 ready;
	struct msgq		 all;
	size_t			 nready, nqueued;
	struct event		*kick_ev;
	void			(*kick)(void *);
	void			*kick_arg;
};

long long
scheduler_retry_delay(const struct scheduler_config *c, unsigned attempt)
{
	if (c->nretry == 0)
		return 300;
	if (attempt == 0)
		attempt = 1;
	return c->retry[attempt - 1 < c->nretry ? attempt - 1 : c->nretry - 1];
}

static void
kick_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct scheduler *s = arg;

	if (s->nready > 0)
		s->kick(s->kick_arg);
}

static void
make_ready(struct scheduler *s, struct msg *m)
{
	m->where = IN_READY;
	TAILQ_INSERT_TAIL(&s->ready, m, entry);
	s->nready++;
	event_active(s->kick_ev, EV_TIMEOUT, 0);
}

static void
timer_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct msg *m = arg;

	make_ready(m->sched, m);
}

void
scheduler_configure(struct scheduler *s, const struct scheduler_config *c)
{
	free(s->retry);
	if ((s->retry = calloc(c->nretry ? c->nretry : 1, sizeof(*s->retry)))
	    == NULL)
		abort();
	memcpy(s->retry, c->retry, c->nretry * sizeof(*s->retry));
	s->conf = *c;
	s->conf.retry = s->retry;
}

struct scheduler *
scheduler_new(struct event_base *base, struct spool *spool,
    const struct scheduler_config *c, void (*kick)(void *), void *kick_arg)
{
	struct scheduler *s = calloc(1, sizeof(*s));

	if (s == NULL)
		abort();
	s->base = base;
	s->spool = spool;
	s->kick = kick;
	s->kick_arg = kick_arg;
	TAILQ_INIT(&s->ready);
	TAILQ_INIT(&s->all);
	s->kick_ev = event_new(base, -1, 0, kick_cb, s);
	scheduler_configure(s, c);
	return s;
}

static void
msg_free(struct msg *m)
{
	if (m->timer)
		event_free(m->timer);
	spool_envelope_free(m->env);
	free(m->tried);
	free(m);
}

/* Call only once no delivery is out: they point into the messages. */
void
scheduler_free(struct scheduler *s)
{
	struct msg *m;

	while ((m = TAILQ_FIRST(&s->all)) != NULL) {
		TAILQ_REMOVE(&s->all, m, all);
		msg_free(m);
	}
	event_free(s->kick_ev);
	free(s->retry);
	free(s);
}

size_t
scheduler_ready_count(const struct scheduler *s)
{
	return s->nready;
}

size_t
scheduler_queued_count(const struct scheduler *s)
{
	return s->nqueued;
}

void
scheduler_add(struct scheduler *s, struct spool_envelope *env)
{
	struct msg *m;
	time_t now = time(NULL);
	size_t pending = 0;

	for (size_t i = 0; i < env->nrcpt; i++)
		pending += env->status[i] == SPOOL_RCPT_PENDING;
	if (pending == 0) {
		/* Finished before a crash, but not yet removed. */
		log_info("%s scheduler nothing left to deliver, removing",
		    env->id);
		spool_remove(s->spool, env->id, NULL, NULL);
		spool_envelope_free(env);
		return;
	}
	if ((m = calloc(1, sizeof(*m))) == NULL ||
	    (m->tried = calloc(env->nrcpt, 1)) == NULL)
		abort();
	m->env = env;
	m->sched = s;
	m->timer = evtimer_new(s->base, timer_cb, m);
	TAILQ_INSERT_TAIL(&s->all, m, all);
	s->nqueued++;
	if (env->next_attempt > now) {
		struct timeval tv = { env->next_attempt - now, 0 };
		m->where = IN_WAITING;
		evtimer_add(m->timer, &tv);
	} else
		make_ready(s, m);
}

/* Recipients still to offer in this round. */
static int
has_untried(const struct msg *m)
{
	for (size_t i = 0; i < m->env->nrcpt; i++)
		if (m->env->status[i] == SPOOL_RCPT_PENDING && !m->tried[i])
			return 1;
	return 0;
}

struct delivery *
scheduler_take(struct scheduler *s)
{
	struct delivery *d;
	struct msg *m;

	if ((m = TAILQ_FIRST(&s->ready)) == NULL)
		return NULL;
	if ((d = calloc(1, sizeof(*d))) == NULL)
		abort();
	memcpy(d->id, m->env->id, sizeof(d->id));
	d->sender = m->env->sender;
	d->size = m->env->body_size;
	d->attempt = m->env->attempts + 1;
	for (size_t i = 0; i < m->env->nrcpt &&
	    d->nrcpt < SCHEDULER_MAX_RCPT; i++) {
		if (m->env->status[i] != SPOOL_RCPT_PENDING || m->tried[i])
			continue;
		m->tried[i] = 1;
		d->index[d->nrcpt] = i;
		d->rcpt[d->nrcpt++] = m->env->rcpts[i];
	}
	m->active++;
	/* Stay ready while recipients are left for another transaction. */
	if (!has_untried(m)) {
		TAILQ_REMOVE(&s->ready, m, entry);
		s->nready--;
		m->where = IN_ACTIVE;
	}
	/* The delivery points at m's strings: m lives until it is done. */
	d->owner = m;
	return d;
}

static void
delivery_free(struct delivery *d)
{
	for (size_t i = 0; i < d->nrcpt; i++)
		free(d->reply[i]);
	free(d);
}

/* Decide what happens to a message once no delivery of it is out. */
static void
msg_settle(struct scheduler *s, struct msg *m)
{
	struct spool_envelope *e = m->env;
	time_t now = time(NULL);
	size_t pending = 0, done = 0, failed = 0;
	struct timeval tv;

	for (size_t i = 0; i < e->nrcpt; i++) {
		if (e->status[i] == SPOOL_RCPT_PENDING)
			pending++;
		else if (e->status[i] == SPOOL_RCPT_DONE)
			done++;
		else
			failed++;
	}
	if (pending > 0 && now - e->arrived >= s->conf.max_queue_time) {
		for (size_t i = 0; i < e->nrcpt; i++)
			if (e->status[i] == SPOOL_RCPT_PENDING) {
				e->status[i] = SPOOL_RCPT_FAILED;
				log_warnx("%s scheduler expired to=<%s> "
				    "age=%llds last=\"%s\"", e->id, e->rcpts[i],
				    (long long)(now - e->arrived),
				    e->reply[i] ? e->reply[i] : "");
			}
		failed += pending;
		pending = 0;
	}
	if (pending == 0) {
		log_info("%s scheduler finished delivered=%zu failed=%zu",
		    e->id, done, failed);
		spool_remove(s->spool, e->id, NULL, NULL);
		s->nqueued--;
		TAILQ_REMOVE(&s->all, m, all);
		msg_free(m);
		return;
	}
	if (has_untried(m) && !m->round_temp) {
		make_ready(s, m);
		return;
	}
	/* Every recipient was tried this round: wait for the next one. */
	e->attempts++;
	e->next_attempt = now + scheduler_retry_delay(&s->conf, e->attempts);
	memset(m->tried, 0, e->nrcpt);
	m->round_temp = 0;
	spool_state_save(s->spool, e, NULL, NULL);
	m->where = IN_WAITING;
	tv.tv_sec = e->next_attempt - now;
	tv.tv_usec = 0;
	evtimer_add(m->timer, &tv);
	log_info("%s scheduler deferred pending=%zu attempts=%u retry_in=%llds",
	    e->id, pending, e->attempts, (long long)(e->next_attempt - now));
}

void
scheduler_done(struct scheduler *s, struct delivery *d)
{
	struct msg *m = d->owner;
	struct spool_envelope *e = m->env;
	int changed = 0;

	for (size_t i = 0; i < d->nrcpt; i++) {
		size_t k = d->index[i];

		if (d->reply[i] != NULL) {
			free(e->reply[k]);
			e->reply[k] = d->reply[i];
			d->reply[i] = NULL;
		}
		switch (d->outcome[i]) {
		case DELIVERY_OK:
			e->status[k] = SPOOL_RCPT_DONE;
			changed = 1;
			log_info("%s scheduler delivered to=<%s> ses_id=%s "
			    "delay=%llds attempts=%u%s", e->id, e->rcpts[k],
			    d->ses_id[0] ? d->ses_id : "-",
			    (long long)(time(NULL) - e->arrived), d->attempt,
			    d->outcome_unknown ? " duplicate_possible=yes" : "");
			break;
		case DELIVERY_PERMFAIL:
			e->status[k] = SPOOL_RCPT_FAILED;
			changed = 1;
			log_warnx("%s scheduler failed to=<%s> reply=\"%s\"",
			    e->id, e->rcpts[k], e->reply[k] ? e->reply[k] : "");
			break;
		case DELIVERY_TEMPFAIL:
		case DELIVERY_UNTRIED:
			m->round_temp = 1;
			log_info("%s scheduler temporary to=<%s> reply=\"%s\"",
			    e->id, e->rcpts[k], e->reply[k] ? e->reply[k] : "");
			break;
		}
	}
	delivery_free(d);
	m->active--;
	if (m->where == IN_READY || m->active > 0) {
		/* More transactions of this round are to come or out: keep
		 * what was delivered so a crash does not resend it. */
		if (changed)
			spool_state_save(s->spool, e, NULL, NULL);
		return;
	}
	/* Record partial progress so a crash does not resend it. */
	if (changed && has_untried(m) && !m->round_temp)
		spool_state_save(s->spool, e, NULL, NULL);
	msg_settle(s, m);
}

void
scheduler_return(struct scheduler *s, struct delivery *d)
{
	struct msg *m = d->owner;

	for (size_t i = 0; i < d->nrcpt; i++)
		m->tried[d->index[i]] = 0;
	m->active--;
	if (m->where != IN_READY) {
		TAILQ_INSERT_HEAD(&s->ready, m, entry);
		m->where = IN_READY;
		s->nready++;
		event_active(s->kick_ev, EV_TIMEOUT, 0);
	}
	delivery_free(d);
}
