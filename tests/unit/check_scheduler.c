/*
 * check_scheduler.c: the retry schedule (pure) and the in-memory queue
 * over a real spool and event loop: batches of at most 50 recipients,
 * outcomes turned into spool state, finished messages removed.
 */
#include "config.h"

#include <sys/stat.h>

#include <check.h>
#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "fixture.h"
#include "scheduler.h"
#include "spool.h"

static const long long schedule[] = { 5, 10, 30, 1200 };
static const struct scheduler_config sconf = { .retry = schedule, .nretry = 4,
    .max_queue_time = 432000 };

/* ---- the retry schedule ---- */

static const struct {
	unsigned	attempt;
	long long	delay;
} delay_cases[] = {
	{ 0, 5 }, { 1, 5 }, { 2, 10 }, { 3, 30 }, { 4, 1200 }, { 5, 1200 },
	{ 6, 1200 }, { 1000, 1200 },
};

START_TEST(test_retry_delay)
{
	ck_assert_int_eq(scheduler_retry_delay(&sconf, delay_cases[_i].attempt),
	    delay_cases[_i].delay);
}
END_TEST

START_TEST(test_retry_delay_one_step)
{
	static const long long one[] = { 60 };
	const struct scheduler_config c = { .retry = one, .nretry = 1,
    .max_queue_time = 3600 };

	ck_assert_int_eq(scheduler_retry_delay(&c, 1), 60);
	ck_assert_int_eq(scheduler_retry_delay(&c, 9), 60);
}
END_TEST

/* ---- with a spool ---- */

static char top[256];		/* one per test case, removed at the end */
static char spooldir[320];
static struct event_base *base;
static struct event *guard;
static struct spool *sp;
static struct scheduler *sched;
static int kicks;

static void
kick(void *arg)
{
	ck_assert_ptr_eq(arg, &kicks);
	kicks++;
}

static void
top_setup(void)
{
	fixture_mkdtemp(top, sizeof(top), NULL, "check_scheduler");
}

static void
top_teardown(void)
{
	fixture_rmtree(top);
}

static void
setup(void)
{
	char err[256] = "";

	fixture_mkdtemp(spooldir, sizeof(spooldir), top, "spool");
	base = fixture_loop_new(&guard);
	sp = spool_open(spooldir, base, err, sizeof(err));
	ck_assert_msg(sp != NULL, "spool_open: %s", err);
	kicks = 0;
	sched = scheduler_new(base, sp, &sconf, kick, &kicks);
	ck_assert_ptr_nonnull(sched);
}

static void
teardown(void)
{
	scheduler_free(sched);
	spool_close(sp);
	fixture_loop_free(base, guard);
	fixture_rmtree(spooldir);
}

static void
run_once(void)
{
	event_base_loop(base, EVLOOP_NONBLOCK);
}

/* Run the loop until the spool has no job left (bounded: about 10 s). */
static void
run_until_idle(void)
{
	for (int i = 0; i < 500 && spool_pending(sp) > 0; i++)
		event_base_loop(base, EVLOOP_ONCE);
	ck_assert_uint_eq(spool_pending(sp), 0);
	run_once();
}

static int
in_spool(const char *sub, const char *id)
{
	char p[PATH_MAX];
	struct stat st;

	snprintf(p, sizeof(p), "%s/%s/%s", spooldir, sub, id);
	return stat(p, &st) == 0;
}

static void
commit_cb(void *arg, int status)
{
	*(int *)arg = status;
}

/* Spool a message with n recipients r000@example.org... */
static void
spool_message(size_t n, char id[SPOOL_ID_LEN + 1])
{
	char **rcpts = calloc(n, sizeof(*rcpts));
	struct spool_writer *w;
	int status = -1;

	ck_assert_ptr_nonnull(rcpts);
	for (size_t i = 0; i < n; i++) {
		rcpts[i] = malloc(32);
		ck_assert_ptr_nonnull(rcpts[i]);
		snprintf(rcpts[i], 32, "r%03zu@example.org", i);
	}
	w = spool_writer_new(sp, "sender@example.org", rcpts, n, id);
	ck_assert_ptr_nonnull(w);
	ck_assert_int_eq(spool_writer_write(w, "Subject: t\r\n\r\nhi\r\n", 18),
	    0);
	spool_writer_commit(w, commit_cb, &status);
	for (int i = 0; i < 500 && status == -1; i++)
		event_base_loop(base, EVLOOP_ONCE);
	ck_assert_int_eq(status, 0);
	for (size_t i = 0; i < n; i++)
		free(rcpts[i]);
	free(rcpts);
}

/* ... and add it. */
static void
add_message(size_t n, char id[SPOOL_ID_LEN + 1])
{
	struct spool_envelope *env;

	spool_message(n, id);
	env = spool_load(sp, id);
	ck_assert_ptr_nonnull(env);
	scheduler_add(sched, env);
}

/* Give every recipient of d the same outcome and reply. */
static void
set_outcome(struct delivery *d, enum delivery_outcome o, const char *reply)
{
	for (size_t i = 0; i < d->nrcpt; i++) {
		d->outcome[i] = o;
		d->reply[i] = reply ? strdup(reply) : NULL;
	}
}

START_TEST(test_add_kicks)
{
	char id[SPOOL_ID_LEN + 1];

	add_message(1, id);
	ck_assert_uint_eq(scheduler_ready_count(sched), 1);
	ck_assert_uint_eq(scheduler_queued_count(sched), 1);
	run_once();
	ck_assert_int_eq(kicks, 1);
	run_once();
	ck_assert_int_eq(kicks, 1);
}
END_TEST

START_TEST(test_take_in_batches_of_50)
{
	struct delivery *d[3];
	char id[SPOOL_ID_LEN + 1], seen[120] = { 0 }, want[32];
	size_t total = 0;
	int i;

	add_message(120, id);
	for (i = 0; i < 3; i++) {
		d[i] = scheduler_take(sched);
		ck_assert_ptr_nonnull(d[i]);
		ck_assert_str_eq(d[i]->id, id);
		ck_assert_str_eq(d[i]->sender, "sender@example.org");
		ck_assert_uint_eq(d[i]->attempt, 1);
		ck_assert_int_eq(d[i]->size, 18);
		ck_assert_uint_le(d[i]->nrcpt, SCHEDULER_MAX_RCPT);
		for (size_t j = 0; j < d[i]->nrcpt; j++) {
			size_t k = d[i]->index[j];

			ck_assert_uint_lt(k, 120);
			ck_assert_msg(!seen[k], "recipient %zu offered twice",
			    k);
			seen[k] = 1;
			snprintf(want, sizeof(want), "r%03zu@example.org", k);
			ck_assert_str_eq(d[i]->rcpt[j], want);
		}
		total += d[i]->nrcpt;
		/* Ready while recipients are left for another transaction. */
		ck_assert_uint_eq(scheduler_ready_count(sched), i < 2 ? 1 : 0);
	}
	ck_assert_uint_eq(d[0]->nrcpt, 50);
	ck_assert_uint_eq(d[1]->nrcpt, 50);
	ck_assert_uint_eq(d[2]->nrcpt, 20);
	ck_assert_uint_eq(total, 120);
	ck_assert_ptr_null(scheduler_take(sched));

	/* All delivered: the message leaves the spool. */
	for (i = 0; i < 3; i++) {
		set_outcome(d[i], DELIVERY_OK, "250 Ok 0100-abc");
		scheduler_done(sched, d[i]);
	}
	run_until_idle();
	ck_assert_uint_eq(scheduler_queued_count(sched), 0);
	ck_assert_uint_eq(scheduler_ready_count(sched), 0);
	ck_assert(!in_spool("queue", id));
	ck_assert(!in_spool("state", id));
	ck_assert_ptr_null(scheduler_take(sched));
}
END_TEST

START_TEST(test_tempfail_defers)
{
	struct spool_envelope *e;
	struct delivery *d;
	char id[SPOOL_ID_LEN + 1];
	time_t t0 = time(NULL), t1;
	int kicks_before;

	add_message(2, id);
	run_once();
	kicks_before = kicks;
	d = scheduler_take(sched);
	ck_assert_ptr_nonnull(d);
	ck_assert_uint_eq(d->nrcpt, 2);
	set_outcome(d, DELIVERY_TEMPFAIL, "451 4.4.2 Timeout waiting for data");
	scheduler_done(sched, d);
	run_until_idle();
	t1 = time(NULL);

	ck_assert_uint_eq(scheduler_ready_count(sched), 0);
	ck_assert_uint_eq(scheduler_queued_count(sched), 1);
	ck_assert_ptr_null(scheduler_take(sched));
	ck_assert_int_eq(kicks, kicks_before);
	ck_assert(in_spool("queue", id));
	ck_assert(in_spool("state", id));
	e = spool_load(sp, id);
	ck_assert_ptr_nonnull(e);
	ck_assert_uint_eq(e->attempts, 1);
	ck_assert(e->next_attempt >= t0 + 5 && e->next_attempt <= t1 + 5);
	ck_assert_int_eq(e->status[0], SPOOL_RCPT_PENDING);
	ck_assert_int_eq(e->status[1], SPOOL_RCPT_PENDING);
	spool_envelope_free(e);
}
END_TEST

START_TEST(test_deferred_comes_back)
{
	static const long long fast[] = { 1 };
	const struct scheduler_config c = { .retry = fast, .nretry = 1,
    .max_queue_time = 432000 };
	struct delivery *d;
	char id[SPOOL_ID_LEN + 1];
	int i;

	scheduler_configure(sched, &c);
	add_message(1, id);
	d = scheduler_take(sched);
	ck_assert_ptr_nonnull(d);
	set_outcome(d, DELIVERY_UNTRIED, NULL);
	scheduler_done(sched, d);
	run_until_idle();
	kicks = 0;
	ck_assert_uint_eq(scheduler_ready_count(sched), 0);
	/* About a second later the timer makes it ready and kicks. */
	for (i = 0; i < 200 && scheduler_ready_count(sched) == 0; i++)
		event_base_loop(base, EVLOOP_ONCE);
	ck_assert_uint_eq(scheduler_ready_count(sched), 1);
	run_once();
	ck_assert_int_eq(kicks, 1);
	d = scheduler_take(sched);
	ck_assert_ptr_nonnull(d);
	ck_assert_uint_eq(d->attempt, 2);
	set_outcome(d, DELIVERY_OK, NULL);
	scheduler_done(sched, d);
	run_until_idle();
	ck_assert(!in_spool("queue", id));
}
END_TEST

START_TEST(test_permfail_removes)
{
	struct delivery *d1, *d2;
	char id[SPOOL_ID_LEN + 1];

	add_message(60, id);
	d1 = scheduler_take(sched);
	d2 = scheduler_take(sched);
	ck_assert_ptr_nonnull(d1);
	ck_assert_ptr_nonnull(d2);
	ck_assert_uint_eq(d1->nrcpt + d2->nrcpt, 60);
	set_outcome(d1, DELIVERY_PERMFAIL, "554 Message rejected");
	set_outcome(d2, DELIVERY_PERMFAIL, "554 Message rejected");
	scheduler_done(sched, d2);
	scheduler_done(sched, d1);
	run_until_idle();
	ck_assert_uint_eq(scheduler_queued_count(sched), 0);
	ck_assert(!in_spool("queue", id));
	ck_assert(!in_spool("state", id));
}
END_TEST

START_TEST(test_mixed_outcomes)
{
	struct spool_envelope *e;
	struct delivery *d;
	char id[SPOOL_ID_LEN + 1];

	add_message(3, id);
	d = scheduler_take(sched);
	ck_assert_ptr_nonnull(d);
	ck_assert_uint_eq(d->nrcpt, 3);
	d->outcome[0] = DELIVERY_OK;
	d->reply[0] = strdup("250 Ok 0100-a");
	d->outcome[1] = DELIVERY_PERMFAIL;
	d->reply[1] = strdup("550 5.1.1 unknown");
	d->outcome[2] = DELIVERY_TEMPFAIL;
	d->reply[2] = strdup("421 4.4.2 later");
	scheduler_done(sched, d);
	run_until_idle();
	ck_assert_uint_eq(scheduler_queued_count(sched), 1);
	ck_assert_uint_eq(scheduler_ready_count(sched), 0);
	e = spool_load(sp, id);
	ck_assert_ptr_nonnull(e);
	ck_assert_int_eq(e->status[0], SPOOL_RCPT_DONE);
	ck_assert_int_eq(e->status[1], SPOOL_RCPT_FAILED);
	ck_assert_int_eq(e->status[2], SPOOL_RCPT_PENDING);
	ck_assert_str_eq(e->reply[1], "550 5.1.1 unknown");
	ck_assert_uint_eq(e->attempts, 1);
	spool_envelope_free(e);
}
END_TEST

START_TEST(test_expired_fails)
{
	static const long long s1[] = { 5 };
	const struct scheduler_config c = { .retry = s1, .nretry = 1,
    .max_queue_time = 0 };
	struct delivery *d;
	char id[SPOOL_ID_LEN + 1];

	/* Past max_queue_time a temporary failure is final. */
	scheduler_configure(sched, &c);
	add_message(2, id);
	d = scheduler_take(sched);
	ck_assert_ptr_nonnull(d);
	set_outcome(d, DELIVERY_TEMPFAIL, "451 later");
	scheduler_done(sched, d);
	run_until_idle();
	ck_assert_uint_eq(scheduler_queued_count(sched), 0);
	ck_assert(!in_spool("queue", id));
}
END_TEST

START_TEST(test_return_makes_ready_again)
{
	struct delivery *d;
	char id[SPOOL_ID_LEN + 1];

	add_message(2, id);
	run_once();
	ck_assert_int_eq(kicks, 1);
	d = scheduler_take(sched);
	ck_assert_ptr_nonnull(d);
	ck_assert_uint_eq(scheduler_ready_count(sched), 0);
	scheduler_return(sched, d);
	ck_assert_uint_eq(scheduler_ready_count(sched), 1);
	run_once();
	ck_assert_int_eq(kicks, 2);
	d = scheduler_take(sched);
	ck_assert_ptr_nonnull(d);
	ck_assert_uint_eq(d->nrcpt, 2);
	ck_assert_uint_eq(d->attempt, 1);
	set_outcome(d, DELIVERY_OK, NULL);
	scheduler_done(sched, d);
	run_until_idle();
	ck_assert(!in_spool("queue", id));
}
END_TEST

START_TEST(test_waiting_message_not_ready)
{
	char id[SPOOL_ID_LEN + 1];
	struct spool_writer *w;
	struct spool_envelope *e;
	char *rc[] = { "a@b" };
	int status = -1;

	w = spool_writer_new(sp, "s@x", rc, 1, id);
	ck_assert_ptr_nonnull(w);
	spool_writer_commit(w, commit_cb, &status);
	for (int i = 0; i < 500 && status == -1; i++)
		event_base_loop(base, EVLOOP_ONCE);
	ck_assert_int_eq(status, 0);
	e = spool_load(sp, id);
	ck_assert_ptr_nonnull(e);
	e->attempts = 2;
	e->next_attempt = time(NULL) + 3600;
	scheduler_add(sched, e);
	ck_assert_uint_eq(scheduler_queued_count(sched), 1);
	ck_assert_uint_eq(scheduler_ready_count(sched), 0);
	ck_assert_ptr_null(scheduler_take(sched));
	run_once();
	ck_assert_int_eq(kicks, 0);
}
END_TEST

/*
 * Regression (fixed): scheduler.c:324-325 (scheduler_done): when a delivery of a
 * message that still has recipients for other transactions of this
 * round comes back (the message is still IN_READY), it returns before
 * saving state, so recipients already delivered (here 50 of 120) are
 * not recorded; a crash or restart before the round ends sends to them
 * again.  The other paths do save ("Record partial progress so a crash
 * does not resend it").  Fix: in that branch, call
 * spool_state_save(s->spool, e, NULL, NULL) when changed.
 */
START_TEST(test_partial_progress_saved)
{
	struct spool_envelope *e;
	struct delivery *d, *rest[2];
	size_t done_idx[SCHEDULER_MAX_RCPT], n;
	char id[SPOOL_ID_LEN + 1];

	add_message(120, id);
	d = scheduler_take(sched);
	ck_assert_ptr_nonnull(d);
	n = d->nrcpt;
	memcpy(done_idx, d->index, sizeof(done_idx));
	set_outcome(d, DELIVERY_OK, "250 Ok 0100-x");
	scheduler_done(sched, d);
	run_until_idle();

	/* What a restart would find now. */
	e = spool_load(sp, id);
	ck_assert_ptr_nonnull(e);
	for (size_t i = 0; i < n; i++)
		ck_assert_msg(e->status[done_idx[i]] == SPOOL_RCPT_DONE,
		    "delivered recipient %zu not recorded in the spool",
		    done_idx[i]);
	spool_envelope_free(e);

	/* Finish the message so nothing is left out at teardown. */
	rest[0] = scheduler_take(sched);
	rest[1] = scheduler_take(sched);
	for (int i = 0; i < 2; i++) {
		ck_assert_ptr_nonnull(rest[i]);
		set_outcome(rest[i], DELIVERY_OK, NULL);
		scheduler_done(sched, rest[i]);
	}
	run_until_idle();
}
END_TEST

/* ---- requeue, bounces, expiry ---- */

START_TEST(test_requeue_uses_no_attempt)
{
	struct delivery *d;
	char id[SPOOL_ID_LEN + 1];

	add_message(2, id);
	d = scheduler_take(sched);
	ck_assert_ptr_nonnull(d);
	set_outcome(d, DELIVERY_REQUEUE, "454 Throttling failure: Maximum "
	    "sending rate exceeded.");
	scheduler_done(sched, d);
	/* Ready again at once, the same attempt, no state written. */
	ck_assert_uint_eq(scheduler_ready_count(sched), 1);
	d = scheduler_take(sched);
	ck_assert_ptr_nonnull(d);
	ck_assert_uint_eq(d->nrcpt, 2);
	ck_assert_uint_eq(d->attempt, 1);
	set_outcome(d, DELIVERY_OK, NULL);
	scheduler_done(sched, d);
	run_until_idle();
	ck_assert(!in_spool("queue", id));
}
END_TEST

START_TEST(test_requeue_limit_defers)
{
	struct spool_envelope *e;
	struct delivery *d;
	char id[SPOOL_ID_LEN + 1];

	add_message(1, id);
	for (int i = 0; i < SCHEDULER_MAX_REQUEUES - 1; i++) {
		d = scheduler_take(sched);
		ck_assert_ptr_nonnull(d);
		set_outcome(d, DELIVERY_REQUEUE, "421 session over");
		scheduler_done(sched, d);
		ck_assert_uint_eq(scheduler_ready_count(sched), 1);
	}
	/* One more in a row: now it is a deferral, with a retry step. */
	d = scheduler_take(sched);
	ck_assert_ptr_nonnull(d);
	set_outcome(d, DELIVERY_REQUEUE, "421 session over");
	scheduler_done(sched, d);
	run_until_idle();
	ck_assert_uint_eq(scheduler_ready_count(sched), 0);
	ck_assert_ptr_null(scheduler_take(sched));
	e = spool_load(sp, id);
	ck_assert_ptr_nonnull(e);
	ck_assert_uint_eq(e->attempts, 1);
	spool_envelope_free(e);
}
END_TEST

START_TEST(test_return_not_counted)
{
	struct delivery *d;
	char id[SPOOL_ID_LEN + 1];

	/* The pool's business (a throttle) never defers the message. */
	add_message(1, id);
	for (int i = 0; i < 3 * SCHEDULER_MAX_REQUEUES; i++) {
		d = scheduler_take(sched);
		ck_assert_ptr_nonnull(d);
		ck_assert_uint_eq(d->attempt, 1);
		set_outcome(d, DELIVERY_RETURN, "454 Throttling failure");
		scheduler_done(sched, d);
	}
	d = scheduler_take(sched);
	ck_assert_ptr_nonnull(d);
	set_outcome(d, DELIVERY_OK, NULL);
	scheduler_done(sched, d);
	run_until_idle();
	ck_assert(!in_spool("queue", id));
}
END_TEST

START_TEST(test_retry_jitter_bounded)
{
	static const long long big[] = { 1000 };
	const struct scheduler_config c = { .retry = big, .nretry = 1,
	    .max_queue_time = 432000 };
	struct spool_envelope *e;
	struct delivery *d;
	char id[SPOOL_ID_LEN + 1];
	time_t t0 = time(NULL), t1;

	scheduler_configure(sched, &c);
	add_message(1, id);
	d = scheduler_take(sched);
	set_outcome(d, DELIVERY_TEMPFAIL, "451 later");
	scheduler_done(sched, d);
	run_until_idle();
	t1 = time(NULL);
	e = spool_load(sp, id);
	ck_assert_ptr_nonnull(e);
	/* 1000 s plus at most 10 %. */
	ck_assert_int_ge(e->next_attempt, t0 + 1000);
	ck_assert_int_le(e->next_attempt, t1 + 1100);
	spool_envelope_free(e);
}
END_TEST

/* A fake bounce writer: records the call, answers later or at once. */
static struct {
	int				 calls;
	int				 expired;
	size_t				 nfailed;
	char				 first[64];
	scheduler_bounce_done		 done;
	void				*done_arg;
} bnc;

static void
fake_bounce(void *arg, const struct spool_envelope *e, int expired,
    scheduler_bounce_done done, void *done_arg)
{
	ck_assert_ptr_eq(arg, &bnc);
	bnc.calls++;
	bnc.expired = expired;
	bnc.nfailed = 0;
	for (size_t i = 0; i < e->nrcpt; i++)
		if (e->status[i] == SPOOL_RCPT_FAILED) {
			if (bnc.nfailed++ == 0)
				snprintf(bnc.first, sizeof(bnc.first), "%s",
				    e->rcpts[i]);
		}
	bnc.done = done;
	bnc.done_arg = done_arg;
}

static void
configure_bounces(long long max_queue_time)
{
	struct scheduler_config c = sconf;

	memset(&bnc, 0, sizeof(bnc));
	c.max_queue_time = max_queue_time;
	c.bounce = fake_bounce;
	c.bounce_arg = &bnc;
	scheduler_configure(sched, &c);
}

START_TEST(test_permfail_bounced_before_removal)
{
	struct spool_envelope *e;
	struct delivery *d;
	char id[SPOOL_ID_LEN + 1];

	configure_bounces(432000);
	add_message(2, id);
	d = scheduler_take(sched);
	ck_assert_ptr_nonnull(d);
	d->outcome[0] = DELIVERY_PERMFAIL;
	d->reply[0] = strdup("554 Message rejected: Email address is not "
	    "verified.");
	d->outcome[1] = DELIVERY_TEMPFAIL;
	scheduler_done(sched, d);
	run_until_idle();
	ck_assert_int_eq(bnc.calls, 1);
	ck_assert_int_eq(bnc.expired, 0);
	ck_assert_uint_eq(bnc.nfailed, 1);
	ck_assert_str_eq(bnc.first, "r000@example.org");
	/* Until the bounce is durable nothing moves. */
	ck_assert_ptr_null(scheduler_take(sched));
	bnc.done(bnc.done_arg, 0);
	run_until_idle();
	e = spool_load(sp, id);
	ck_assert_ptr_nonnull(e);
	ck_assert_int_eq(e->status[0], SPOOL_RCPT_BOUNCED);
	ck_assert_int_eq(e->status[1], SPOOL_RCPT_PENDING);
	spool_envelope_free(e);
	/* The pending one is deferred, then fails too: one more bounce
	 * for it alone, and the message is removed only after it. */
	ck_assert_uint_eq(scheduler_queued_count(sched), 1);
}
END_TEST

START_TEST(test_bounce_failure_keeps_message)
{
	struct delivery *d;
	char id[SPOOL_ID_LEN + 1];

	configure_bounces(432000);
	add_message(1, id);
	d = scheduler_take(sched);
	set_outcome(d, DELIVERY_PERMFAIL, "552 Message is too long.");
	scheduler_done(sched, d);
	ck_assert_int_eq(bnc.calls, 1);
	bnc.done(bnc.done_arg, ENOSPC);
	run_until_idle();
	/* Not removed: its bounce is still owed. */
	ck_assert(in_spool("queue", id));
	ck_assert_uint_eq(scheduler_queued_count(sched), 1);
}
END_TEST

START_TEST(test_bounce_then_removed)
{
	struct delivery *d;
	char id[SPOOL_ID_LEN + 1];

	configure_bounces(432000);
	add_message(1, id);
	d = scheduler_take(sched);
	set_outcome(d, DELIVERY_PERMFAIL, "552 Message is too long.");
	scheduler_done(sched, d);
	ck_assert(in_spool("queue", id));
	bnc.done(bnc.done_arg, 0);
	run_until_idle();
	ck_assert(!in_spool("queue", id));
	ck_assert_uint_eq(scheduler_queued_count(sched), 0);
}
END_TEST

START_TEST(test_bounce_never_bounced)
{
	struct spool_writer *w;
	struct spool_envelope *e;
	struct delivery *d;
	char id[SPOOL_ID_LEN + 1];
	char *rc[] = { "sender@example.org" };
	int status = -1;

	configure_bounces(432000);
	w = spool_writer_new_flags(sp, "bounces@example.com", rc, 1,
	    SPOOL_F_DSN, id);
	ck_assert_ptr_nonnull(w);
	ck_assert_int_eq(spool_writer_write(w, "x\r\n", 3), 0);
	spool_writer_commit(w, commit_cb, &status);
	for (int i = 0; i < 500 && status == -1; i++)
		event_base_loop(base, EVLOOP_ONCE);
	e = spool_load(sp, id);
	ck_assert_ptr_nonnull(e);
	scheduler_add(sched, e);
	d = scheduler_take(sched);
	ck_assert_ptr_nonnull(d);
	set_outcome(d, DELIVERY_PERMFAIL, "554 Message rejected");
	scheduler_done(sched, d);
	run_until_idle();
	ck_assert_int_eq(bnc.calls, 0);
	ck_assert(!in_spool("queue", id));
}
END_TEST

START_TEST(test_expire_sweep_bounces)
{
	struct spool_envelope *e;
	char id[SPOOL_ID_LEN + 1];

	configure_bounces(60);
	add_message(2, id);
	/* Nobody takes it (SES unreachable); it is old. */
	e = spool_load(sp, id);
	ck_assert_ptr_nonnull(e);
	spool_envelope_free(e);
	ck_assert_uint_eq(scheduler_expire(sched), 0);
	ck_assert_int_ge(scheduler_oldest_age(sched), 0);
	ck_assert_int_le(scheduler_oldest_age(sched), 5);
	configure_bounces(0);
	ck_assert_uint_eq(scheduler_expire(sched), 1);
	ck_assert_int_eq(bnc.calls, 1);
	ck_assert_int_eq(bnc.expired, 1);
	ck_assert_uint_eq(bnc.nfailed, 2);
	ck_assert_uint_eq(scheduler_ready_count(sched), 0);
	ck_assert_ptr_null(scheduler_take(sched));
	bnc.done(bnc.done_arg, 0);
	run_until_idle();
	ck_assert(!in_spool("queue", id));
	ck_assert_uint_eq(scheduler_queued_count(sched), 0);
}
END_TEST

START_TEST(test_failed_unbounced_at_start)
{
	struct spool_envelope *e;
	char id[SPOOL_ID_LEN + 1];
	struct delivery *d;

	/* A crash after the failure, before the bounce: at start the
	 * bounce is sent. */
	add_message(1, id);
	d = scheduler_take(sched);
	ck_assert_ptr_nonnull(d);
	scheduler_return(sched, d);
	e = spool_load(sp, id);
	e->status[0] = SPOOL_RCPT_FAILED;
	spool_state_save(sp, e, NULL, NULL);
	spool_envelope_free(e);
	run_until_idle();
	scheduler_free(sched);
	sched = scheduler_new(base, sp, &sconf, kick, &kicks);
	configure_bounces(432000);
	e = spool_load(sp, id);
	ck_assert_ptr_nonnull(e);
	scheduler_add(sched, e);
	ck_assert_int_eq(bnc.calls, 1);
	ck_assert_uint_eq(bnc.nfailed, 1);
	bnc.done(bnc.done_arg, 0);
	run_until_idle();
	ck_assert(!in_spool("queue", id));
}
END_TEST

/* ---- while the spool is indexed at start ---- */

static void
index_message(const char *id)
{
	struct spool_envelope *e = spool_load(sp, id);

	ck_assert_ptr_nonnull(e);
	scheduler_add_indexed(sched, e);
}

static void
collect_ids(void *arg, const struct scheduler_view *v)
{
	char (*ids)[SPOOL_ID_LEN + 1] = arg;

	while ((*ids)[0] != '\0')
		ids++;
	memcpy(*ids, v->env->id, SPOOL_ID_LEN + 1);
}

/*
 * A message accepted while queue/ is listed is found by the index too:
 * one copy only.  The list stays oldest first; an "all" of the operator
 * applies to what the index finds later; a message asked for by id is
 * loaded before the index reaches it.
 */
START_TEST(test_index_dedup_and_order)
{
	char old1[SPOOL_ID_LEN + 1], old2[SPOOL_ID_LEN + 1];
	char old3[SPOOL_ID_LEN + 1], live[SPOOL_ID_LEN + 1];
	char race[SPOOL_ID_LEN + 1], ids[6][SPOOL_ID_LEN + 1];
	struct scheduler_view v;
	struct spool_envelope *e;

	spool_message(1, old1);
	spool_message(1, old2);
	spool_message(1, old3);
	scheduler_index_begin(sched);
	ck_assert(scheduler_is_indexing(sched));
	add_message(1, live);			/* accepted meanwhile */
	index_message(live);			/* and found by the index */
	ck_assert_uint_eq(scheduler_queued_count(sched), 1);
	index_message(old1);
	ck_assert_uint_eq(scheduler_queued_count(sched), 2);
	/* Hold all: the indexed ones now, and old2 when it is found. */
	ck_assert_uint_eq(scheduler_hold(sched, NULL), 2);
	index_message(old2);
	ck_assert_int_eq(scheduler_find(sched, old2, &v), 0);
	ck_assert_int_eq(v.held, 1);
	ck_assert_uint_eq(scheduler_ready_count(sched), 0);
	/* Asked for by id before the index gets there; then found.  It
	 * was on disk at the "hold all": held by it, released now. */
	ck_assert_int_eq(scheduler_release(sched, old3), 1);
	ck_assert_int_eq(scheduler_find(sched, old3, &v), 0);
	ck_assert_int_eq(v.held, 0);
	ck_assert_uint_eq(scheduler_queued_count(sched), 4);
	index_message(old3);
	ck_assert_uint_eq(scheduler_queued_count(sched), 4);
	/* Committed as queue/ was listed, handed over by the index before
	 * its commit's callback ran: one copy too. */
	spool_message(1, race);
	index_message(race);
	e = spool_load(sp, race);
	ck_assert_ptr_nonnull(e);
	scheduler_add(sched, e);
	ck_assert_uint_eq(scheduler_queued_count(sched), 5);
	memset(ids, 0, sizeof(ids));
	scheduler_foreach(sched, collect_ids, ids);
	ck_assert_str_eq(ids[0], old1);
	ck_assert_str_eq(ids[1], old2);
	ck_assert_str_eq(ids[2], old3);
	ck_assert_str_eq(ids[3], race);
	ck_assert_str_eq(ids[4], live);
	scheduler_index_end(sched);
	ck_assert(!scheduler_is_indexing(sched));
	run_until_idle();
}
END_TEST

/* The id table: thousands added while indexing, every third deleted. */
START_TEST(test_index_table)
{
	char id[SPOOL_ID_LEN + 1];
	char *const rcpt[] = { "r@example.org" };
	struct scheduler_view v;
	const unsigned n = 5000;

	scheduler_index_begin(sched);
	for (unsigned i = 0; i < n; i++) {
		snprintf(id, sizeof(id), "%08x%08x", i % 7, i * 2654435761u);
		scheduler_add_indexed(sched, spool_envelope_new(id,
		    "s@example.org", rcpt, 1, 10));
	}
	ck_assert_uint_eq(scheduler_queued_count(sched), n);
	for (unsigned i = 0; i < n; i += 3) {
		snprintf(id, sizeof(id), "%08x%08x", i % 7, i * 2654435761u);
		ck_assert_uint_eq(scheduler_delete(sched, id), 1);
	}
	for (unsigned i = 0; i < n; i++) {
		snprintf(id, sizeof(id), "%08x%08x", i % 7, i * 2654435761u);
		ck_assert_int_eq(scheduler_find(sched, id, &v), i % 3 ? 0 : -1);
	}
	ck_assert_uint_eq(scheduler_queued_count(sched), n - (n + 2) / 3);
	scheduler_index_end(sched);
	/* The table outlives the index: found by id, and deleted, after. */
	for (unsigned i = 0; i < n; i++) {
		snprintf(id, sizeof(id), "%08x%08x", i % 7, i * 2654435761u);
		ck_assert_int_eq(scheduler_find(sched, id, &v), i % 3 ? 0 : -1);
		if (i % 3 == 1)
			ck_assert_uint_eq(scheduler_delete(sched, id), 1);
	}
	for (unsigned i = 0; i < n; i++) {
		snprintf(id, sizeof(id), "%08x%08x", i % 7, i * 2654435761u);
		ck_assert_int_eq(scheduler_find(sched, id, &v),
		    i % 3 == 2 ? 0 : -1);
	}
	ck_assert_uint_eq(scheduler_queued_count(sched), n / 3);
	run_until_idle();
}
END_TEST

/* "delete all" while indexing removes what the index finds later. */
START_TEST(test_index_delete_all)
{
	char old[SPOOL_ID_LEN + 1], live[SPOOL_ID_LEN + 1];

	spool_message(1, old);
	scheduler_index_begin(sched);
	ck_assert_uint_eq(scheduler_delete(sched, NULL), 0);
	add_message(1, live);			/* after the command: kept */
	index_message(old);
	run_until_idle();
	ck_assert(!in_spool("queue", old));
	ck_assert(in_spool("queue", live));
	ck_assert_uint_eq(scheduler_queued_count(sched), 1);
	scheduler_index_end(sched);
}
END_TEST

/*
 * A message loaded by id before the index reaches it was on disk when
 * an earlier "all" was given: the "all" applies to it as to what the
 * index finds (it used to escape a "delete all" or "hold all" and be
 * sent).
 */
START_TEST(test_index_all_then_by_id)
{
	char gone[SPOOL_ID_LEN + 1], kept[SPOOL_ID_LEN + 1];
	struct scheduler_view v;

	spool_message(1, gone);
	spool_message(1, kept);
	scheduler_index_begin(sched);
	ck_assert_uint_eq(scheduler_delete(sched, NULL), 0);
	ck_assert_int_eq(scheduler_find(sched, gone, &v), -1);
	ck_assert(!in_spool("queue", gone));
	ck_assert_uint_eq(scheduler_hold(sched, NULL), 0);
	ck_assert_uint_eq(scheduler_release(sched, kept), 0);
	ck_assert_int_eq(scheduler_find(sched, kept, &v), -1);
	ck_assert(!in_spool("queue", kept));
	ck_assert_uint_eq(scheduler_queued_count(sched), 0);
	ck_assert_ptr_null(scheduler_take(sched));
	scheduler_index_end(sched);
	run_until_idle();
}
END_TEST

/*
 * Committed as queue/ was listed, handed over by the index, delivered
 * and removed, all before its commit's callback ran: the callback does
 * not queue it again (it would be sent from a file that is gone, and in
 * the end bounced as expired).
 */
START_TEST(test_index_delivered_before_commit_cb)
{
	char *const rcpt[] = { "r000@example.org" };
	char id[SPOOL_ID_LEN + 1];
	struct delivery *d;

	spool_message(1, id);
	scheduler_index_begin(sched);
	index_message(id);
	d = scheduler_take(sched);
	ck_assert_ptr_nonnull(d);
	set_outcome(d, DELIVERY_OK, NULL);
	scheduler_done(sched, d);
	ck_assert(!in_spool("queue", id));
	ck_assert_uint_eq(scheduler_queued_count(sched), 0);
	scheduler_add(sched, spool_envelope_new(id, "sender@example.org", rcpt,
	    1, 18));
	ck_assert_uint_eq(scheduler_queued_count(sched), 0);
	ck_assert_ptr_null(scheduler_take(sched));
	scheduler_index_end(sched);
	run_until_idle();
}
END_TEST

/* "hold all" while indexing holds a message loaded by id later. */
START_TEST(test_index_hold_all_then_by_id)
{
	char id[SPOOL_ID_LEN + 1];
	struct scheduler_view v;

	spool_message(1, id);
	scheduler_index_begin(sched);
	ck_assert_uint_eq(scheduler_hold(sched, NULL), 0);
	ck_assert_int_eq(scheduler_find(sched, id, &v), 0);
	ck_assert_int_eq(v.held, 1);
	ck_assert_uint_eq(scheduler_ready_count(sched), 0);
	ck_assert_ptr_null(scheduler_take(sched));
	/* Released by id: one message changed, and it is due. */
	ck_assert_uint_eq(scheduler_release(sched, id), 1);
	ck_assert_uint_eq(scheduler_ready_count(sched), 1);
	scheduler_index_end(sched);
	run_until_idle();
}
END_TEST

/* ---- the operator's view ---- */

static void
count_view(void *arg, const struct scheduler_view *v)
{
	(*(int *)arg)++;
	ck_assert_ptr_nonnull(v->env);
}

START_TEST(test_hold_release_persist)
{
	struct scheduler_view v;
	struct spool_envelope *e;
	struct delivery *d;
	char id[SPOOL_ID_LEN + 1];
	int n = 0;

	add_message(1, id);
	ck_assert_uint_eq(scheduler_hold(sched, "0000000000000000"), 0);
	ck_assert_uint_eq(scheduler_hold(sched, id), 1);
	ck_assert_uint_eq(scheduler_hold(sched, id), 0);	/* already */
	ck_assert_uint_eq(scheduler_ready_count(sched), 0);
	ck_assert_ptr_null(scheduler_take(sched));
	ck_assert_int_eq(scheduler_find(sched, id, &v), 0);
	ck_assert_int_eq(v.held, 1);
	scheduler_foreach(sched, count_view, &n);
	ck_assert_int_eq(n, 1);
	run_until_idle();
	/* Held across a restart. */
	e = spool_load(sp, id);
	ck_assert_ptr_nonnull(e);
	ck_assert_int_eq(e->held, 1);
	spool_envelope_free(e);
	/* Held messages do not expire. */
	configure_bounces(0);
	ck_assert_uint_eq(scheduler_expire(sched), 0);
	configure_bounces(432000);
	ck_assert_uint_eq(scheduler_release(sched, NULL), 1);
	ck_assert_uint_eq(scheduler_ready_count(sched), 1);
	d = scheduler_take(sched);
	ck_assert_ptr_nonnull(d);
	set_outcome(d, DELIVERY_OK, NULL);
	scheduler_done(sched, d);
	run_until_idle();
	ck_assert(!in_spool("queue", id));
}
END_TEST

/* Copies lost after the dot: on the schedule, counted, then held. */
START_TEST(test_unknown_outcome_bounded)
{
	struct scheduler_config c = sconf;
	struct spool_envelope *e;
	struct delivery *d;
	char id[SPOOL_ID_LEN + 1];

	c.max_unknown_copies = 2;
	scheduler_configure(sched, &c);
	add_message(1, id);
	for (unsigned copy = 1; copy <= 2; copy++) {
		ck_assert_uint_eq(scheduler_flush(sched), copy == 1 ? 0 : 1);
		d = scheduler_take(sched);
		ck_assert_ptr_nonnull(d);
		set_outcome(d, DELIVERY_TEMPFAIL, "connection lost");
		d->outcome_unknown = 1;
		scheduler_done(sched, d);
		run_until_idle();
		/* Not offered again at once: it waits for the schedule. */
		ck_assert_uint_eq(scheduler_ready_count(sched), 0);
		e = spool_load(sp, id);
		ck_assert_ptr_nonnull(e);
		ck_assert_ptr_nonnull(e->unknown);
		ck_assert_uint_eq(e->unknown[0], copy);
		ck_assert_uint_eq(e->attempts, copy);
		ck_assert_int_eq(e->held, copy == 2);
		spool_envelope_free(e);
	}
	/* Held: a flush does not send it; it stays in the spool. */
	ck_assert_uint_eq(scheduler_flush(sched), 0);
	ck_assert_ptr_null(scheduler_take(sched));
	ck_assert(in_spool("queue", id));
	/* Released, one more copy goes; delivered, it is removed. */
	ck_assert_uint_eq(scheduler_release(sched, id), 1);
	d = scheduler_take(sched);
	ck_assert_ptr_nonnull(d);
	set_outcome(d, DELIVERY_OK, "250 Ok x");
	scheduler_done(sched, d);
	run_until_idle();
	ck_assert(!in_spool("queue", id));
}
END_TEST

START_TEST(test_hold_while_active)
{
	struct delivery *d;
	char id[SPOOL_ID_LEN + 1];

	add_message(1, id);
	d = scheduler_take(sched);
	ck_assert_ptr_nonnull(d);
	ck_assert_uint_eq(scheduler_hold(sched, id), 1);
	set_outcome(d, DELIVERY_REQUEUE, "421 bye");
	scheduler_done(sched, d);
	/* Not offered again while held. */
	ck_assert_uint_eq(scheduler_ready_count(sched), 0);
	ck_assert_ptr_null(scheduler_take(sched));
	ck_assert_uint_eq(scheduler_release(sched, id), 1);
	ck_assert_ptr_nonnull(d = scheduler_take(sched));
	set_outcome(d, DELIVERY_OK, NULL);
	scheduler_done(sched, d);
	run_until_idle();
}
END_TEST

START_TEST(test_delete_idle_and_active)
{
	struct delivery *d;
	char a[SPOOL_ID_LEN + 1], b[SPOOL_ID_LEN + 1];

	configure_bounces(432000);
	add_message(1, a);
	add_message(60, b);
	ck_assert_uint_eq(scheduler_delete(sched, a), 1);
	run_until_idle();
	ck_assert(!in_spool("queue", a));
	ck_assert_uint_eq(scheduler_queued_count(sched), 1);
	/* b is out with the upstream, and has a second batch ready. */
	d = scheduler_take(sched);
	ck_assert_ptr_nonnull(d);
	ck_assert_uint_eq(scheduler_delete(sched, NULL), 1);
	ck_assert_ptr_null(scheduler_take(sched));
	ck_assert(in_spool("queue", b));
	set_outcome(d, DELIVERY_PERMFAIL, "554 no");
	scheduler_done(sched, d);
	run_until_idle();
	/* Removed, and no bounce for what the operator deleted. */
	ck_assert(!in_spool("queue", b));
	ck_assert_int_eq(bnc.calls, 0);
	ck_assert_uint_eq(scheduler_queued_count(sched), 0);
}
END_TEST

START_TEST(test_flush_makes_due)
{
	struct delivery *d;
	char id[SPOOL_ID_LEN + 1];

	add_message(1, id);
	d = scheduler_take(sched);
	set_outcome(d, DELIVERY_TEMPFAIL, "451 later");
	scheduler_done(sched, d);
	run_until_idle();
	ck_assert_uint_eq(scheduler_ready_count(sched), 0);
	ck_assert_uint_eq(scheduler_flush(sched), 1);
	ck_assert_uint_eq(scheduler_ready_count(sched), 1);
	d = scheduler_take(sched);
	ck_assert_ptr_nonnull(d);
	ck_assert_uint_eq(d->attempt, 2);
	set_outcome(d, DELIVERY_OK, NULL);
	scheduler_done(sched, d);
	run_until_idle();
}
END_TEST

static Suite *
scheduler_suite(void)
{
	Suite *s = suite_create("scheduler");
	TCase *tc;

	tc = tcase_create("retry");
	tcase_add_loop_test(tc, test_retry_delay, 0,
	    sizeof(delay_cases) / sizeof(delay_cases[0]));
	tcase_add_test(tc, test_retry_delay_one_step);
	suite_add_tcase(s, tc);

	tc = tcase_create("queue");
	tcase_add_unchecked_fixture(tc, top_setup, top_teardown);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_add_kicks);
	tcase_add_test(tc, test_take_in_batches_of_50);
	tcase_add_test(tc, test_tempfail_defers);
	tcase_add_test(tc, test_deferred_comes_back);
	tcase_add_test(tc, test_permfail_removes);
	tcase_add_test(tc, test_mixed_outcomes);
	tcase_add_test(tc, test_expired_fails);
	tcase_add_test(tc, test_return_makes_ready_again);
	tcase_add_test(tc, test_waiting_message_not_ready);
	tcase_add_test(tc, test_requeue_uses_no_attempt);
	tcase_add_test(tc, test_requeue_limit_defers);
	tcase_add_test(tc, test_return_not_counted);
	tcase_add_test(tc, test_retry_jitter_bounded);
	tcase_add_test(tc, test_permfail_bounced_before_removal);
	tcase_add_test(tc, test_bounce_failure_keeps_message);
	tcase_add_test(tc, test_bounce_then_removed);
	tcase_add_test(tc, test_bounce_never_bounced);
	tcase_add_test(tc, test_expire_sweep_bounces);
	tcase_add_test(tc, test_failed_unbounced_at_start);
	tcase_add_test(tc, test_hold_release_persist);
	tcase_add_test(tc, test_unknown_outcome_bounded);
	tcase_add_test(tc, test_hold_while_active);
	tcase_add_test(tc, test_delete_idle_and_active);
	tcase_add_test(tc, test_flush_makes_due);
	tcase_add_test(tc, test_index_dedup_and_order);
	tcase_add_test(tc, test_index_delete_all);
	tcase_add_test(tc, test_index_all_then_by_id);
	tcase_add_test(tc, test_index_hold_all_then_by_id);
	tcase_add_test(tc, test_index_delivered_before_commit_cb);
	tcase_add_test(tc, test_index_table);
	suite_add_tcase(s, tc);

	/* Bugs found and fixed: each test keeps it fixed. */
	tc = tcase_create("regressions");
	tcase_add_unchecked_fixture(tc, top_setup, top_teardown);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_partial_progress_saved);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return fixture_run(scheduler_suite());
}
