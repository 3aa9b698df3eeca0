/*
 * scheduler.c: the in-memory queue over the spool.
 *
 * Every spooled message is in exactly one list: ready (due now), waiting
 * (its own timer runs until its retry time), or active (deliveries out
 * with the upstream).  Recipients carry their spool status; "tried" marks
 * those already offered in the current round, so a message with more
 * than 50 recipients is sent in several transactions before any retry.
 *
 * Outcomes: OK and PERMFAIL are final; TEMPFAIL uses a retry.schedule
 * step (plus up to 10% jitter, so deferred mail does not come back in
 * lockstep), and so does a connection lost after the dot, whose copy SES
 * may have taken: such copies are counted per recipient in the spool's
 * state, and at max_unknown_copies the message is held for the operator
 * rather than sent again (see sesrelay.conf(5)); REQUEUE (SES throttled, the session ended, the connection
 * was lost) offers the recipients again at once without using a step,
 * until SCHEDULER_MAX_REQUEUES in a row.  Failed recipients are bounced
 * (conf.bounce) before their message may leave the spool: the bounce is
 * durable first, then the recipients are marked "bounced".  A sweep
 * expires messages older than max_queue_time even while nothing can be
 * sent (SES unreachable, daily quota).
 */
#include "config.h"

#include <sys/queue.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "log.h"
#include "scheduler.h"
#include "stats.h"

enum msg_where { IN_READY, IN_WAITING, IN_ACTIVE, IN_HELD };

struct msg {
	struct spool_envelope	*env;
	char			*tried;		/* per rcpt, this round */
	unsigned		 active;	/* deliveries out */
	int			 round_temp;	/* a rcpt deferred this round */
	unsigned		 requeues;	/* given back in a row */
	int			 bouncing;	/* a bounce is being written */
	int			 expired;	/* outlived max_queue_time */
	int			 deleted;	/* by the operator */
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
	struct msg		**by_id;	/* every queued message */
	size_t			 nby_id, by_id_cap;
	struct event		*kick_ev;
	struct event		*sweep_ev;	/* expiry, while nothing moves */
	void			(*kick)(void *);
	void			*kick_arg;
	/* while the spool is indexed at start (see scheduler_index_begin) */
	int			 indexing;
	char			**known;	/* ids added otherwise, or gone */
	size_t			 nknown, known_cap;
	unsigned		 index_ops;	/* INDEX_OP_*, for "all" */
	struct msg		*first_live;	/* indexed ones go before */
};

#define INDEX_OP_HOLD		0x1
#define INDEX_OP_RELEASE	0x2
#define INDEX_OP_DELETE		0x4
#define INDEX_OP_FLUSH		0x8

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
	if (m->deleted) {
		m->where = IN_ACTIVE;	/* removed when it settles */
		return;
	}
	if (m->env->held) {
		m->where = IN_HELD;	/* until released */
		return;
	}
	m->where = IN_READY;
	TAILQ_INSERT_TAIL(&s->ready, m, entry);
	s->nready++;
	event_active(s->kick_ev, EV_TIMEOUT, 0);
}

static void msg_settle(struct scheduler *, struct msg *);

static size_t
count_status(const struct spool_envelope *e, enum spool_rcpt_status st)
{
	size_t n = 0;

	for (size_t i = 0; i < e->nrcpt; i++)
		n += e->status[i] == st;
	return n;
}

static void
timer_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct msg *m = arg;

	if (count_status(m->env, SPOOL_RCPT_PENDING) == 0)
		msg_settle(m->sched, m);	/* a bounce to try again */
	else
		make_ready(m->sched, m);
}

#define SWEEP_SECONDS	30

static void
sweep_cb(evutil_socket_t fd, short ev, void *arg)
{
	scheduler_expire(arg);
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
	s->sweep_ev = event_new(base, -1, EV_PERSIST, sweep_cb, s);
	{
		struct timeval tv = { SWEEP_SECONDS, 0 };
		event_add(s->sweep_ev, &tv);
	}
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
	scheduler_index_end(s);
	free(s->by_id);
	event_free(s->kick_ev);
	event_free(s->sweep_ev);
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

/*
 * Two hash tables, open addressing with linear probing: "by_id", every
 * queued message, so that a look-up by id is O(1) on a long queue (the
 * control socket's show, hold, release, delete) and, while the spool is
 * indexed, a message the index handed over first (its commit's callback
 * still to come when queue/ was listed) is not added twice; and, only
 * while the spool is indexed at start, "known", the ids of messages added
 * otherwise (committed, bounces, loaded by id) and of every message that
 * left the queue (delivered, deleted), so that neither the index's copy
 * of one of them nor a commit's callback late after the index handed
 * its message over queues it again.  "known" is freed when the index is
 * complete.
 */
static size_t
id_hash(const char *id)
{
	size_t h = 14695981039346656037ULL;	/* FNV-1a */

	for (const unsigned char *p = (const unsigned char *)id; *p; p++)
		h = (h ^ *p) * 1099511628211ULL;
	return h;
}

static size_t
known_slot(const struct scheduler *s, const char *id)
{
	size_t h = id_hash(id) & (s->known_cap - 1);

	while (s->known[h] != NULL && strcmp(s->known[h], id) != 0)
		h = (h + 1) & (s->known_cap - 1);
	return h;
}

static int
is_known(const struct scheduler *s, const char *id)
{
	return s->known_cap > 0 && s->known[known_slot(s, id)] != NULL;
}

static void
known_add(struct scheduler *s, const char *id)
{
	size_t h;

	if (2 * (s->nknown + 1) > s->known_cap) {
		char **old = s->known;
		size_t oldcap = s->known_cap;

		s->known_cap = oldcap ? 2 * oldcap : 1024;
		if ((s->known = calloc(s->known_cap, sizeof(*s->known))) ==
		    NULL)
			abort();
		for (size_t i = 0; i < oldcap; i++)
			if (old[i] != NULL)
				s->known[known_slot(s, old[i])] = old[i];
		free(old);
	}
	h = known_slot(s, id);
	if (s->known[h] != NULL)
		return;
	if ((s->known[h] = strdup(id)) == NULL)
		abort();
	s->nknown++;
}

static size_t
by_id_slot(const struct scheduler *s, const char *id)
{
	size_t h = id_hash(id) & (s->by_id_cap - 1);

	while (s->by_id[h] != NULL && strcmp(s->by_id[h]->env->id, id) != 0)
		h = (h + 1) & (s->by_id_cap - 1);
	return h;
}

static struct msg *
by_id_find(const struct scheduler *s, const char *id)
{
	return s->by_id_cap > 0 ? s->by_id[by_id_slot(s, id)] : NULL;
}

static void
by_id_add(struct scheduler *s, struct msg *m)
{
	if (4 * (s->nby_id + 1) > 3 * s->by_id_cap) {
		struct msg **old = s->by_id;
		size_t oldcap = s->by_id_cap;

		s->by_id_cap = oldcap ? 2 * oldcap : 4096;
		if ((s->by_id = calloc(s->by_id_cap, sizeof(*s->by_id))) ==
		    NULL)
			abort();
		for (size_t i = 0; i < oldcap; i++)
			if (old[i] != NULL)
				s->by_id[by_id_slot(s, old[i]->env->id)] =
				    old[i];
		free(old);
	}
	s->by_id[by_id_slot(s, m->env->id)] = m;
	s->nby_id++;
}

/* Linear probing's deletion: move back what the hole would hide. */
static void
by_id_del(struct scheduler *s, struct msg *m)
{
	size_t mask = s->by_id_cap - 1, i, j, k;

	if (s->by_id_cap == 0 || s->by_id[i = by_id_slot(s, m->env->id)] !=
	    m)
		return;
	s->by_id[i] = NULL;
	s->nby_id--;
	for (j = (i + 1) & mask; s->by_id[j] != NULL; j = (j + 1) & mask) {
		k = id_hash(s->by_id[j]->env->id) & mask;
		/* Stays if its home k lies cyclically in (i, j]. */
		if (i <= j ? (i < k && k <= j) : (i < k || k <= j))
			continue;
		s->by_id[i] = s->by_id[j];
		s->by_id[j] = NULL;
		i = j;
	}
}

static void known_add(struct scheduler *, const char *);

/* Take m out of the list of every message (it leaves the queue). */
static void
unlink_all(struct scheduler *s, struct msg *m)
{
	if (s->indexing)
		known_add(s, m->env->id);	/* not to come back */
	if (s->first_live == m)
		s->first_live = TAILQ_NEXT(m, all);
	by_id_del(s, m);
	TAILQ_REMOVE(&s->all, m, all);
}

/*
 * Queue env.  The list of every message stays oldest first: while the
 * spool is indexed, what the index finds (older than anything accepted
 * since the start) goes before the first message accepted meanwhile.
 * Returns the message, or NULL when it was settled at once.
 */
static struct msg *
add(struct scheduler *s, struct spool_envelope *env, int indexed)
{
	struct msg *m;
	time_t now = time(NULL);
	size_t pending = count_status(env, SPOOL_RCPT_PENDING);

	if (pending == 0 && count_status(env, SPOOL_RCPT_FAILED) == 0) {
		/* Finished before a crash, but not yet removed. */
		log_event(LOG_INFO, env->id, "scheduler.removed",
		    "msg=\"nothing left to deliver\"");
		spool_remove(s->spool, env->id, NULL, NULL);
		spool_envelope_free(env);
		return NULL;
	}
	if ((m = calloc(1, sizeof(*m))) == NULL ||
	    (m->tried = calloc(env->nrcpt, 1)) == NULL)
		abort();
	m->env = env;
	m->sched = s;
	m->timer = evtimer_new(s->base, timer_cb, m);
	if (indexed && s->first_live != NULL)
		TAILQ_INSERT_BEFORE(s->first_live, m, all);
	else
		TAILQ_INSERT_TAIL(&s->all, m, all);
	if (!indexed && s->indexing && s->first_live == NULL)
		s->first_live = m;
	by_id_add(s, m);
	s->nqueued++;
	if (pending == 0) {
		/* Failed before a crash, its bounce not yet queued. */
		m->where = IN_ACTIVE;
		msg_settle(s, m);
		return NULL;
	} else if (env->next_attempt > now) {
		struct timeval tv = { env->next_attempt - now, 0 };
		m->where = IN_WAITING;
		evtimer_add(m->timer, &tv);
	} else
		make_ready(s, m);
	return m;
}

void
scheduler_add(struct scheduler *s, struct spool_envelope *env)
{
	if (s->indexing) {
		if (is_known(s, env->id) || by_id_find(s, env->id) != NULL) {
			/* Found first (by the index, or by id): one copy;
			 * or even delivered or deleted since. */
			spool_envelope_free(env);
			return;
		}
		known_add(s, env->id);
	}
	(void)add(s, env, 0);
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

/* Can the failed recipients of m be bounced, and if not, why? */
static const char *
no_bounce_reason(const struct scheduler *s, const struct msg *m)
{
	if (m->env->flags & SPOOL_F_DSN)
		return "the message is itself a bounce";
	if (m->env->sender[0] == '\0')
		return "the sender is empty";
	if (s->conf.bounce == NULL)
		return "bounces are not configured";
	return NULL;
}

static void
bounce_done(void *arg, int status)
{
	struct msg *m = arg;
	struct scheduler *s = m->sched;
	struct spool_envelope *e = m->env;
	struct timeval tv = { 60, 0 };

	m->bouncing = 0;
	if (status == 0) {
		for (size_t i = 0; i < e->nrcpt; i++)
			if (e->status[i] == SPOOL_RCPT_FAILED)
				e->status[i] = SPOOL_RCPT_BOUNCED;
		if (count_status(e, SPOOL_RCPT_PENDING) > 0)
			spool_state_save(s->spool, e, NULL, NULL);
		msg_settle(s, m);
		return;
	}
	/* The message stays until its bounce is safely queued. */
	log_event(LOG_WARNING, e->id, "scheduler.bounce_deferred",
	    "retry_in=%lld error=%s", (long long)tv.tv_sec,
	    log_q(strerror(status)));
	m->where = IN_WAITING;
	evtimer_add(m->timer, &tv);
}

/* Decide what happens to a message once no delivery of it is out. */
static void
msg_settle(struct scheduler *s, struct msg *m)
{
	struct spool_envelope *e = m->env;
	time_t now = time(NULL);
	size_t pending, done, failed, unbounced;
	long long delay;
	const char *why;
	struct timeval tv;

	if (m->deleted) {
		log_event(LOG_INFO, e->id, "scheduler.deleted", "by=operator");
		spool_remove(s->spool, e->id, NULL, NULL);
		s->nqueued--;
		unlink_all(s, m);
		msg_free(m);
		return;
	}
	pending = count_status(e, SPOOL_RCPT_PENDING);
	if (pending > 0 && now - e->arrived >= s->conf.max_queue_time) {
		for (size_t i = 0; i < e->nrcpt; i++)
			if (e->status[i] == SPOOL_RCPT_PENDING) {
				e->status[i] = SPOOL_RCPT_FAILED;
				stats.failed++;
				stats.expired++;
				log_event(LOG_WARNING, e->id,
				    "scheduler.expired", "to=%s age=%lld "
				    "last=%s", log_qa(e->rcpts[i]),
				    (long long)(now - e->arrived),
				    log_q(e->reply[i] ? e->reply[i] : ""));
			}
		m->expired = 1;
		pending = 0;
	}
	done = count_status(e, SPOOL_RCPT_DONE);
	unbounced = count_status(e, SPOOL_RCPT_FAILED);
	failed = unbounced + count_status(e, SPOOL_RCPT_BOUNCED);
	if (unbounced > 0) {
		if ((why = no_bounce_reason(s, m)) == NULL) {
			/* Resumed in bounce_done once the bounce is durable. */
			m->bouncing = 1;
			m->where = IN_ACTIVE;
			s->conf.bounce(s->conf.bounce_arg, e, m->expired,
			    bounce_done, m);
			return;
		}
		log_event(LOG_INFO, e->id, "scheduler.no_bounce",
		    "failed=%zu msg=%s", unbounced, log_q(why));
	}
	if (pending == 0) {
		log_event(LOG_INFO, e->id, "scheduler.finished",
		    "delivered=%zu failed=%zu", done, failed);
		spool_remove(s->spool, e->id, NULL, NULL);
		s->nqueued--;
		unlink_all(s, m);
		msg_free(m);
		return;
	}
	if (has_untried(m) && !m->round_temp) {
		make_ready(s, m);
		return;
	}
	/* Every recipient was tried this round: wait for the next one. */
	e->attempts++;
	delay = scheduler_retry_delay(&s->conf, e->attempts);
	delay += random() % (delay / 10 + 1);	/* jitter */
	e->next_attempt = now + delay;
	memset(m->tried, 0, e->nrcpt);
	m->round_temp = 0;
	spool_state_save(s->spool, e, NULL, NULL);
	m->where = IN_WAITING;
	tv.tv_sec = delay;
	tv.tv_usec = 0;
	if (e->held)
		m->where = IN_HELD;
	else
		evtimer_add(m->timer, &tv);
	log_event(LOG_INFO, e->id, "scheduler.deferred",
	    "pending=%zu attempts=%u retry_in=%lld", pending, e->attempts,
	    delay);
}

size_t
scheduler_expire(struct scheduler *s)
{
	struct msg *m, *next;
	time_t now = time(NULL);
	size_t n = 0;

	for (m = TAILQ_FIRST(&s->all); m != NULL; m = next) {
		next = TAILQ_NEXT(m, all);
		if (m->active > 0 || m->bouncing || m->env->held ||
		    now - m->env->arrived < s->conf.max_queue_time ||
		    count_status(m->env, SPOOL_RCPT_PENDING) == 0)
			continue;
		if (m->where == IN_READY) {
			TAILQ_REMOVE(&s->ready, m, entry);
			s->nready--;
		}
		evtimer_del(m->timer);
		m->where = IN_ACTIVE;
		n++;
		msg_settle(s, m);	/* expires it, bounces, removes */
	}
	return n;
}

void
scheduler_foreach(const struct scheduler *s,
    void (*cb)(void *, const struct scheduler_view *), void *arg)
{
	const struct msg *m;
	struct scheduler_view v;

	TAILQ_FOREACH(m, &s->all, all) {
		v.env = m->env;
		v.held = m->env->held;
		v.active = m->active > 0 || m->bouncing;
		v.deleted = m->deleted;
		cb(arg, &v);
	}
}

static struct msg *add_found(struct scheduler *, struct spool_envelope *);

/*
 * A message asked for by id.  While the spool is indexed it may not be
 * found yet: it is loaded now (and known, so the index's copy is dropped
 * when it comes), as the index would have found it, and the operator
 * sees the queue as it is on disk.
 */
static struct msg *
find_or_load(struct scheduler *s, const char *id)
{
	struct spool_envelope *e;
	struct msg *m = by_id_find(s, id);

	if (m != NULL || !s->indexing || is_known(s, id) ||
	    (e = spool_load(s->spool, id)) == NULL)
		return m;
	known_add(s, id);
	return add_found(s, e);
}

int
scheduler_find(struct scheduler *s, const char *id,
    struct scheduler_view *v)
{
	const struct msg *m = find_or_load(s, id);

	if (m == NULL)
		return -1;
	v->env = m->env;
	v->held = m->env->held;
	v->active = m->active > 0 || m->bouncing;
	v->deleted = m->deleted;
	return 0;
}

/* Leave the waiting or held state for the ready list. */
static void
wake(struct scheduler *s, struct msg *m)
{
	if (m->where != IN_WAITING && m->where != IN_HELD)
		return;
	evtimer_del(m->timer);
	m->env->next_attempt = 0;
	if (count_status(m->env, SPOOL_RCPT_PENDING) == 0)
		msg_settle(s, m);	/* a bounce still owed */
	else
		make_ready(s, m);
}

static size_t
flush_one(struct scheduler *s, struct msg *m)
{
	if (m->where != IN_WAITING)
		return 0;
	wake(s, m);
	return 1;
}

static size_t
hold_one(struct scheduler *s, struct msg *m)
{
	if (m->env->held || m->deleted)
		return 0;
	m->env->held = 1;
	if (m->where == IN_READY) {
		TAILQ_REMOVE(&s->ready, m, entry);
		s->nready--;
		m->where = IN_HELD;
	} else if (m->where == IN_WAITING) {
		evtimer_del(m->timer);
		m->where = IN_HELD;
	}
	/* An active one is held when its deliveries settle. */
	spool_state_save(s->spool, m->env, NULL, NULL);
	log_event(LOG_INFO, m->env->id, "scheduler.held", "by=operator");
	return 1;
}

static size_t
release_one(struct scheduler *s, struct msg *m)
{
	if (!m->env->held)
		return 0;
	m->env->held = 0;
	spool_state_save(s->spool, m->env, NULL, NULL);
	log_event(LOG_INFO, m->env->id, "scheduler.released", "by=operator");
	if (m->where == IN_HELD) {
		m->where = IN_WAITING;
		wake(s, m);
	}
	return 1;
}

static size_t
delete_one(struct scheduler *s, struct msg *m)
{
	if (m->deleted)
		return 0;
	m->deleted = 1;
	if (m->where == IN_READY) {
		TAILQ_REMOVE(&s->ready, m, entry);
		s->nready--;
		m->where = IN_ACTIVE;
	}
	if (m->active > 0 || m->bouncing)
		return 1;	/* removed when it settles */
	evtimer_del(m->timer);
	m->where = IN_ACTIVE;
	msg_settle(s, m);	/* removes it */
	return 1;
}

/*
 * Apply op to the message id, or to all.  An "all" while the spool is
 * indexed applies to what is indexed now, and is remembered for what
 * the index finds later: every message queued at the time of the
 * command (they were all on disk), none accepted after it.
 */
static size_t
apply(struct scheduler *s, const char *id,
    size_t (*op)(struct scheduler *, struct msg *), unsigned index_op)
{
	struct msg *m, *next;
	size_t n = 0;

	if (id != NULL)
		return (m = find_or_load(s, id)) != NULL ? op(s, m) : 0;
	if (s->indexing) {
		if (index_op & (INDEX_OP_HOLD | INDEX_OP_RELEASE))
			s->index_ops &= ~(INDEX_OP_HOLD | INDEX_OP_RELEASE);
		s->index_ops |= index_op;
	}
	for (m = TAILQ_FIRST(&s->all); m != NULL; m = next) {
		next = TAILQ_NEXT(m, all);
		n += op(s, m);
	}
	return n;
}

size_t
scheduler_flush(struct scheduler *s)
{
	return apply(s, NULL, flush_one, INDEX_OP_FLUSH);
}

size_t
scheduler_hold(struct scheduler *s, const char *id)
{
	return apply(s, id, hold_one, INDEX_OP_HOLD);
}

size_t
scheduler_release(struct scheduler *s, const char *id)
{
	return apply(s, id, release_one, INDEX_OP_RELEASE);
}

size_t
scheduler_delete(struct scheduler *s, const char *id)
{
	return apply(s, id, delete_one, INDEX_OP_DELETE);
}

/* ---- the start-up index ---- */

void
scheduler_index_begin(struct scheduler *s)
{
	s->indexing = 1;
}

int
scheduler_is_indexing(const struct scheduler *s)
{
	return s->indexing;
}

/*
 * Queue a message found on disk (by the index, or loaded by id), with
 * the "all"s given since the index began: it was on disk then.  NULL
 * when it is settled or deleted at once.
 */
static struct msg *
add_found(struct scheduler *s, struct spool_envelope *env)
{
	struct msg *m;

	if ((m = add(s, env, s->indexing)) == NULL)
		return NULL;
	if (s->index_ops & INDEX_OP_DELETE) {
		delete_one(s, m);	/* idle: removed at once */
		return NULL;
	}
	if (s->index_ops & INDEX_OP_FLUSH)
		flush_one(s, m);
	if (s->index_ops & INDEX_OP_HOLD)
		hold_one(s, m);
	else if (s->index_ops & INDEX_OP_RELEASE)
		release_one(s, m);
	return m;
}

void
scheduler_add_indexed(struct scheduler *s, struct spool_envelope *env)
{
	if (s->indexing && (is_known(s, env->id) ||
	    by_id_find(s, env->id) != NULL)) {
		/* Accepted, loaded by id or delivered since: ours already. */
		spool_envelope_free(env);
		return;
	}
	(void)add_found(s, env);
}

void
scheduler_index_end(struct scheduler *s)
{
	for (size_t i = 0; i < s->known_cap; i++)
		free(s->known[i]);
	free(s->known);
	s->known = NULL;
	s->nknown = s->known_cap = 0;
	s->indexing = 0;
	s->index_ops = 0;
	s->first_live = NULL;
}

long long
scheduler_oldest_age(const struct scheduler *s)
{
	const struct msg *m;
	time_t now = time(NULL), oldest = now;

	TAILQ_FOREACH(m, &s->all, all)
		if (m->env->arrived < oldest)
			oldest = m->env->arrived;
	return (long long)(now - oldest);
}

/*
 * Count a copy whose outcome is unknown for recipient k.  1 when that
 * was the last copy allowed.
 */
static int
count_unknown_copy(struct scheduler *s, struct spool_envelope *e, size_t k)
{
	if (e->unknown == NULL &&
	    (e->unknown = calloc(e->nrcpt, sizeof(*e->unknown))) == NULL)
		abort();
	e->unknown[k]++;
	log_event(LOG_WARNING, e->id, "scheduler.outcome_unknown",
	    "to=%s copies=%u max=%u", log_qa(e->rcpts[k]), e->unknown[k],
	    s->conf.max_unknown_copies);
	return s->conf.max_unknown_copies > 0 &&
	    e->unknown[k] >= s->conf.max_unknown_copies;
}

/*
 * Stop sending a message SES may already have several times: hold it (a
 * hold survives restarts) and say so loudly; the operator releases it
 * for one more copy or deletes it.
 */
static void
hold_unknown(struct scheduler *s, struct msg *m)
{
	struct spool_envelope *e = m->env;

	if (e->held)
		return;
	e->held = 1;
	if (m->where == IN_READY) {
		/* Other recipients' transactions wait too. */
		TAILQ_REMOVE(&s->ready, m, entry);
		s->nready--;
		m->where = IN_ACTIVE;
	}
	log_event(LOG_WARNING, e->id, "scheduler.held",
	    "by=unknown_outcome copies=%u msg=\"connection lost after the "
	    "final dot; SES may have delivered it. Check SES's sending "
	    "records, then 'sesrelayctl release %s' to send one more copy "
	    "or 'sesrelayctl delete %s'\"", s->conf.max_unknown_copies,
	    e->id, e->id);
}

/* What one recipient's outcome did to its message (apply_outcome). */
#define OUT_CHANGED	0x1	/* spool state to save */
#define OUT_VERDICT	0x2	/* SES decided something */
#define OUT_POOL	0x4	/* given back for the pool's reasons */
#define OUT_HOLD	0x8	/* the last copy of unknown outcome allowed */

/* Apply the outcome of recipient i of d to its message; OUT_* flags. */
static int
apply_outcome(struct scheduler *s, struct msg *m, struct delivery *d,
    size_t i)
{
	struct spool_envelope *e = m->env;
	size_t k = d->index[i];
	int f = 0;

	if (d->reply[i] != NULL) {
		free(e->reply[k]);
		e->reply[k] = d->reply[i];
		d->reply[i] = NULL;
	}
	switch (d->outcome[i]) {
	case DELIVERY_RETURN:
		m->tried[k] = 0;
		return OUT_POOL;
	case DELIVERY_REQUEUE:
		m->tried[k] = 0;	/* offer it again */
		return 0;
	case DELIVERY_OK:
		e->status[k] = SPOOL_RCPT_DONE;
		stats.delivered++;
		stats_latency((double)(time(NULL) - e->arrived));
		log_event(LOG_INFO, e->id, "scheduler.delivered",
		    "to=%s ses_id=%s delay=%lld attempts=%u%s",
		    log_qa(e->rcpts[k]), log_q(d->ses_id[0] ? d->ses_id : "-"),
		    (long long)(time(NULL) - e->arrived), d->attempt,
		    e->unknown != NULL && e->unknown[k] > 0 ?
		    " duplicate_possible=yes" : "");
		return OUT_CHANGED | OUT_VERDICT;
	case DELIVERY_PERMFAIL:
		e->status[k] = SPOOL_RCPT_FAILED;
		stats.failed++;
		log_event(LOG_WARNING, e->id, "scheduler.failed",
		    "to=%s reply=%s", log_qa(e->rcpts[k]),
		    log_q(e->reply[k] ? e->reply[k] : ""));
		return OUT_CHANGED | OUT_VERDICT;
	case DELIVERY_TEMPFAIL:
		if (d->outcome_unknown)
			f = OUT_CHANGED |
			    (count_unknown_copy(s, e, k) ? OUT_HOLD : 0);
		/* FALLTHROUGH */
	case DELIVERY_UNTRIED:
		m->round_temp = 1;
		stats.deferred++;
		log_event(LOG_INFO, e->id, "scheduler.temporary",
		    "to=%s reply=%s", log_qa(e->rcpts[k]),
		    log_q(e->reply[k] ? e->reply[k] : ""));
		return f | OUT_VERDICT;
	}
	return 0;
}

void
scheduler_done(struct scheduler *s, struct delivery *d)
{
	struct msg *m = d->owner;
	struct spool_envelope *e = m->env;
	int f = 0, changed, verdict, pool;

	for (size_t i = 0; i < d->nrcpt; i++)
		f |= apply_outcome(s, m, d, i);
	changed = (f & OUT_CHANGED) != 0;
	verdict = (f & OUT_VERDICT) != 0;
	pool = (f & OUT_POOL) != 0;
	if (f & OUT_HOLD)
		hold_unknown(s, m);
	if (verdict)
		m->requeues = 0;
	else if (!pool && ++m->requeues >= SCHEDULER_MAX_REQUEUES) {
		/* Something about this message keeps ending sessions. */
		log_event(LOG_WARNING, e->id, "scheduler.given_back",
		    "times=%u msg=\"deferring\"", m->requeues);
		m->requeues = 0;
		m->round_temp = 1;
	} else if (m->where != IN_READY && has_untried(m) && !m->deleted &&
	    !m->env->held) {
		/* Offer it again at once, before other mail. */
		TAILQ_INSERT_HEAD(&s->ready, m, entry);
		m->where = IN_READY;
		s->nready++;
		event_active(s->kick_ev, EV_TIMEOUT, 0);
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
