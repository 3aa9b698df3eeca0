/*
 * bounce.c: bounces written to the spool.
 *
 * Order, for "never lose a bounce": the bounce's own file is committed
 * (fsynced, renamed) first; then the scheduler gets it; only then is the
 * failed message told (done), which marks its recipients "bounced" and
 * may remove it.  A crash in between sends the bounce twice, never not
 * at all.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bounce.h"
#include "dsn.h"
#include "log.h"
#include "spool.h"
#include "stats.h"
#include "xalloc.h"

#define ORIG_HEADER_MAX	65536

struct bounce {
	struct spool		*spool;
	struct scheduler	*sched;
	char			*sender;
	char			*hostname;
};

/* One bounce on its way to the spool. */
struct pending {
	struct bounce		*b;
	char			 id[SPOOL_ID_LEN + 1];
	char			 orig_id[SPOOL_ID_LEN + 1];
	char			*to;
	char			*from;		/* as written to the spool */
	off_t			 size;
	scheduler_bounce_done	 done;
	void			*done_arg;
};

struct bounce *
bounce_new(struct spool *spool, const struct bounce_config *c)
{
	struct bounce *b = calloc(1, sizeof(*b));

	if (b == NULL)
		abort();
	b->spool = spool;
	b->sender = xstrdup(c->sender);
	b->hostname = xstrdup(c->hostname);
	return b;
}

void
bounce_set_scheduler(struct bounce *b, struct scheduler *sched)
{
	b->sched = sched;
}

void
bounce_configure(struct bounce *b, const struct bounce_config *c)
{
	free(b->sender);
	free(b->hostname);
	b->sender = xstrdup(c->sender);
	b->hostname = xstrdup(c->hostname);
}

void
bounce_free(struct bounce *b)
{
	if (b == NULL)
		return;
	free(b->sender);
	free(b->hostname);
	free(b);
}

/* The failed message's header (up to its empty line), or NULL. */
static char *
original_header(struct spool *spool, const char *id, size_t *len)
{
	struct spool_reader *r = spool_reader_open(spool, id);
	char *buf, *end;
	ssize_t n;
	size_t got = 0;

	*len = 0;
	if (r == NULL)
		return NULL;
	if ((buf = malloc(ORIG_HEADER_MAX + 1)) == NULL)
		abort();
	while (got < ORIG_HEADER_MAX &&
	    (n = spool_reader_read(r, buf + got, ORIG_HEADER_MAX - got)) > 0)
		got += (size_t)n;
	spool_reader_close(r);
	buf[got] = '\0';
	if ((end = memmem(buf, got, "\r\n\r\n", 4)) != NULL)
		got = (size_t)(end - buf) + 2;
	*len = got;
	return buf;
}

static void
pending_free(struct pending *p)
{
	free(p->to);
	free(p->from);
	free(p);
}

/* The bounce is durable (status 0): the scheduler gets it, then done. */
static void
committed(void *arg, int status)
{
	struct pending *p = arg;
	struct spool_envelope *e;
	char *to[1] = { p->to };

	if (status == 0) {
		stats.bounced++;
		log_event(LOG_INFO, p->orig_id, "bounce.queued",
		    "dsn_id=%s to=%s", p->id, log_qa(p->to));
		e = spool_envelope_new(p->id, p->from, to, 1, p->size);
		e->flags = SPOOL_F_DSN;
		scheduler_add(p->b->sched, e);
	}
	p->done(p->done_arg, status);
	pending_free(p);
}

/*
 * The failed recipients of env, each with its DSN status (4.4.7 for
 * those that expired without a 5xx), into rc and status (env->nrcpt
 * rows each); their number.
 */
static size_t
failed_rcpts(const struct spool_envelope *env, int expired,
    struct dsn_rcpt *rc, char (*status)[16])
{
	size_t n = 0;

	for (size_t i = 0; i < env->nrcpt; i++) {
		if (env->status[i] != SPOOL_RCPT_FAILED)
			continue;
		if (expired && (env->reply[i] == NULL ||
		    env->reply[i][0] != '5'))
			snprintf(status[n], sizeof(status[n]), "4.4.7");
		else
			dsn_status_for_reply(env->reply[i], status[n],
			    sizeof(status[n]));
		rc[n].addr = env->rcpts[i];
		rc[n].status = status[n];
		rc[n].diagnostic = env->reply[i];
		n++;
	}
	return n;
}

/* The bounce for env, as text (dsn.h) into *msg; 0, or -1. */
static int
build(struct bounce *b, const struct spool_envelope *env, int expired,
    char **msg, size_t *msglen)
{
	struct dsn_info info;
	struct dsn_rcpt *rc;
	char (*status)[16], *hdr;
	size_t hdrlen;
	int rv;

	if ((rc = calloc(env->nrcpt, sizeof(*rc))) == NULL ||
	    (status = calloc(env->nrcpt, sizeof(*status))) == NULL)
		abort();
	hdr = original_header(b->spool, env->id, &hdrlen);
	memset(&info, 0, sizeof(info));
	info.reporting_mta = b->hostname;
	info.from = b->sender;
	info.to = env->sender;
	info.queue_id = env->id;
	info.arrived = env->arrived;
	info.now = time(NULL);
	info.expired = expired;
	info.rcpts = rc;
	info.nrcpt = failed_rcpts(env, expired, rc, status);
	info.orig_header = hdr;
	info.orig_header_len = hdrlen;
	rv = dsn_build(&info, msg, msglen);
	free(hdr);
	free(rc);
	free(status);
	return rv;
}

/*
 * Write the bounce msg to the spool and commit it (committed() goes
 * on); 0, or errno when it could not be written (nothing is left).
 */
static int
write_bounce(struct bounce *b, const struct spool_envelope *env,
    const char *msg, size_t msglen, scheduler_bounce_done done,
    void *done_arg)
{
	struct spool_writer *w;
	struct pending *p;
	char *to[1];
	int err;

	if ((p = calloc(1, sizeof(*p))) == NULL)
		abort();
	p->b = b;
	p->to = xstrdup(env->sender);
	p->from = xstrdup(b->sender);
	p->done = done;
	p->done_arg = done_arg;
	p->size = (off_t)msglen;
	memcpy(p->orig_id, env->id, sizeof(p->orig_id));
	to[0] = p->to;
	w = spool_writer_new_flags(b->spool, b->sender, to, 1, SPOOL_F_DSN,
	    p->id);
	if (w == NULL || spool_writer_write(w, msg, msglen) == -1) {
		err = errno != 0 ? errno : EIO;
		if (w != NULL)
			spool_writer_abort(w);
		pending_free(p);
		return err;
	}
	spool_writer_commit(w, committed, p);
	return 0;
}

void
bounce_queue(void *arg, const struct spool_envelope *env, int expired,
    scheduler_bounce_done done, void *done_arg)
{
	struct bounce *b = arg;
	char *msg;
	size_t msglen;
	int err;

	if (b->sender[0] == '\0') {
		log_event(LOG_WARNING, env->id, "bounce.not_sent",
		    "to=%s msg=\"no verified sender for bounces (set "
		    "bounce.sender or rewrite.sender); the failure is only "
		    "logged\"", log_qa(env->sender));
		done(done_arg, 0);
		return;
	}
	if (build(b, env, expired, &msg, &msglen) == -1) {
		log_event(LOG_WARNING, env->id, "bounce.build_failed", "to=%s",
		    log_qa(env->sender));
		done(done_arg, EINVAL);
		return;
	}
	err = write_bounce(b, env, msg, msglen, done, done_arg);
	free(msg);
	if (err != 0)
		done(done_arg, err);
}
