/*
 * check_upstream.c: the upstream pool over a fake transport (transport.h),
 * with a real spool, scheduler and event loop: the pool delivers,
 * recycles after N messages, slows down when the transport reports a
 * rate class, backs off when sessions fail, and runs health checks,
 * without knowing what the transport speaks.
 */
#include "config.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "endpoint.h"
#include "fixture.h"
#include "scheduler.h"
#include "ses_reply.h"
#include "spool.h"
#include "transport.h"
#include "upstream.h"

/* ---- the fake transport: every step completes on the next loop turn ---- */

enum fake_step { F_OPENING, F_READY, F_SENDING, F_CLOSING };

struct transport_session {
	const struct transport_events *ev;
	void		*arg;
	enum fake_step	 step;
	struct delivery	*d;
	struct event	*next;
};

static struct event_base *base;

static struct fake {
	struct transport base;
	int		 opens, sends, closes;
	int		 fail_open;	/* sessions end before ready */
	int		 throttle_first; /* the first send: a rate class */
} fake;

static void
fake_finish(struct transport_session *s)
{
	struct delivery *d = s->d;
	int throttle = fake.throttle_first && fake.sends == 1;
	const struct ses_class *k = throttle ?
	    ses_classify(SES_STEP_DOT, 454, "Throttling failure: Maximum "
	    "sending rate exceeded.") : ses_classify(SES_STEP_DOT, 250, "Ok 1");

	for (size_t i = 0; i < d->nrcpt; i++) {
		d->outcome[i] = throttle ? DELIVERY_RETURN : DELIVERY_OK;
		d->reply[i] = strdup(throttle ? "454 Throttling" : "250 Ok");
	}
	if (throttle)
		s->ev->pool(s->arg, s, k, "454 Throttling failure");
	s->d = NULL;
	s->step = F_READY;
	s->ev->done(s->arg, s, d, k);
	s->ev->ready(s->arg, s);
}

static void
fake_next(evutil_socket_t fd, short what, void *arg)
{
	struct transport_session *s = arg;

	if (s->step == F_OPENING && fake.fail_open)
		s->ev->gone(s->arg, s, 0);
	else if (s->step == F_OPENING) {
		s->step = F_READY;
		s->ev->ready(s->arg, s);
	} else if (s->step == F_SENDING)
		fake_finish(s);
	else if (s->step == F_CLOSING)
		s->ev->gone(s->arg, s, 1);
}

static struct transport_session *
fake_open(struct transport *t, const struct transport_events *ev, void *arg,
    unsigned serial)
{
	struct transport_session *s = calloc(1, sizeof(*s));

	ck_assert_ptr_nonnull(s);
	s->ev = ev;
	s->arg = arg;
	s->next = event_new(base, -1, 0, fake_next, s);
	fake.opens++;
	event_active(s->next, EV_TIMEOUT, 0);
	return s;
}

static void
fake_send(struct transport_session *s, struct delivery *d)
{
	ck_assert_int_eq(s->step, F_READY);
	s->step = F_SENDING;
	s->d = d;
	fake.sends++;
	event_active(s->next, EV_TIMEOUT, 0);
}

static void
fake_close(struct transport_session *s)
{
	ck_assert_int_eq(s->step, F_READY);
	s->step = F_CLOSING;
	fake.closes++;
	event_active(s->next, EV_TIMEOUT, 0);
}

static void
fake_free(struct transport_session *s)
{
	if (s->d != NULL)
		s->ev->done(s->arg, s, s->d, NULL);
	event_free(s->next);
	free(s);
}

static const char *
fake_peer(const struct transport_session *s)
{
	return "fake";
}

static void
fake_destroy(struct transport *t)
{
}

static const struct transport_ops fake_ops = {
	"fake", fake_open, fake_send, fake_close, fake_free, fake_peer,
	fake_destroy,
};

/* ---- a pool over it ---- */

static char top[256], spooldir[320];
static struct event *guard;
static struct spool *sp;
static struct scheduler *sched;
static struct upstream *up;
static const long long schedule[] = { 5 };
static const struct scheduler_config sconf = { .retry = schedule,
    .nretry = 1, .max_queue_time = 3600 };

static void
kick(void *arg)
{
	if (up != NULL)
		upstream_kick(up);
}

static void
top_setup(void)
{
	fixture_mkdtemp(top, sizeof(top), NULL, "check_upstream");
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
	sched = scheduler_new(base, sp, &sconf, kick, NULL);
	memset(&fake, 0, sizeof(fake));
	fake.base.ops = &fake_ops;
	fake.base.auth_hint = "check the fake";
	up = NULL;
}

static void
teardown(void)
{
	upstream_free(up);
	up = NULL;
	scheduler_free(sched);
	spool_close(sp);
	fixture_loop_free(base, guard);
	fixture_rmtree(spooldir);
}

/* A pool of sessions sessions, recycling after messages messages. */
static void
make_pool(int sessions, int messages)
{
	struct endpoint ep = { .name = "upstream", .host = "fake.test",
	    .port = 587, .region = "", .ca_file = "", .credentials = "",
	    .credentials_key = "upstream.credentials" };
	struct upstream_config c = { .endpoint = &ep, .sessions = sessions,
	    .recycle_messages = messages, .recycle_seconds = 3600,
	    .idle_timeout = 5, .timeout = 5, .rate = 100.0 };

	up = upstream_new_transport(base, sched, &fake.base, &c);
	ck_assert_ptr_nonnull(up);
}

static void
commit_cb(void *arg, int status)
{
	*(int *)arg = status;
}

/* Spool and queue a message with one recipient. */
static void
add_message(void)
{
	char id[SPOOL_ID_LEN + 1], rcpt[] = "r@example.org";
	char *rcpts[] = { rcpt };
	struct spool_writer *w = spool_writer_new(sp, "s@example.org", rcpts,
	    1, id);
	int status = -1;

	ck_assert_ptr_nonnull(w);
	ck_assert_int_eq(spool_writer_write(w, "Subject: t\r\n\r\nhi\r\n",
	    18), 0);
	spool_writer_commit(w, commit_cb, &status);
	for (int i = 0; i < 500 && status == -1; i++)
		event_base_loop(base, EVLOOP_ONCE);
	ck_assert_int_eq(status, 0);
	scheduler_add(sched, spool_load(sp, id));
}

/* Run the loop until the queue is empty (bounded: a few seconds). */
static void
run_until_delivered(void)
{
	for (int i = 0; i < 400 && scheduler_queued_count(sched) > 0; i++)
		event_base_loop(base, EVLOOP_ONCE);
	ck_assert_uint_eq(scheduler_queued_count(sched), 0);
}

static void
run_turns(int n)
{
	for (int i = 0; i < n; i++)
		event_base_loop(base, EVLOOP_ONCE);
}

START_TEST(test_delivers_through_transport)
{
	make_pool(1, 100);
	for (int i = 0; i < 3; i++)
		add_message();
	upstream_kick(up);
	run_until_delivered();
	ck_assert_int_eq(fake.opens, 1);
	ck_assert_int_eq(fake.sends, 3);
	ck_assert_uint_eq(upstream_busy(up), 0);
}
END_TEST

START_TEST(test_recycles_after_n_messages)
{
	make_pool(1, 2);
	for (int i = 0; i < 3; i++)
		add_message();
	upstream_kick(up);
	run_until_delivered();
	ck_assert_int_eq(fake.sends, 3);
	ck_assert_int_eq(fake.opens, 2);	/* recycled after 2 */
	ck_assert_int_ge(fake.closes, 1);
}
END_TEST

START_TEST(test_rate_class_slows_the_pool)
{
	struct upstream_status st;

	fake.throttle_first = 1;
	make_pool(1, 100);
	add_message();
	upstream_kick(up);
	for (int i = 0; i < 100 && fake.sends < 1; i++)
		event_base_loop(base, EVLOOP_ONCE);
	run_turns(3);
	upstream_get_status(up, &st);
	ck_assert_double_eq_tol(st.rate, 50.0, 1e-9);
	run_until_delivered();		/* after a second's pause */
	ck_assert_int_eq(fake.sends, 2);
}
END_TEST

START_TEST(test_failed_sessions_back_off)
{
	struct upstream_status st;

	fake.fail_open = 1;
	make_pool(4, 100);
	add_message();
	upstream_kick(up);
	run_turns(20);
	upstream_get_status(up, &st);
	ck_assert_int_eq(st.backing_off, 1);
	ck_assert_int_eq(fake.opens, 1);	/* one message: one session */
	ck_assert_int_eq(fake.sends, 0);
	ck_assert_uint_eq(scheduler_queued_count(sched), 1);
}
END_TEST

static void
check_cb(void *arg, int ok)
{
	*(int *)arg = ok;
}

START_TEST(test_health_check)
{
	int ok = -1;

	make_pool(1, 100);
	upstream_set_active(up, 0);
	upstream_check(up, check_cb, &ok);
	for (int i = 0; i < 100 && ok == -1; i++)
		event_base_loop(base, EVLOOP_ONCE);
	ck_assert_int_eq(ok, 1);
	ck_assert_int_eq(fake.opens, 1);
	ck_assert_int_eq(fake.closes, 1);
	ck_assert_int_eq(fake.sends, 0);
}
END_TEST

/*
 * A passed health check means the pool works again: failover must not
 * switch straight back because the failures before it still count.
 */
START_TEST(test_check_ends_failing)
{
	int ok = -1;

	fake.fail_open = 1;
	make_pool(1, 100);
	add_message();
	upstream_kick(up);
	for (int i = 0; i < 200 && upstream_failing_seconds(up) < 1; i++)
		event_base_loop(base, EVLOOP_ONCE);
	ck_assert_int_ge(upstream_failing_seconds(up), 1);
	fake.fail_open = 0;
	upstream_set_active(up, 0);
	upstream_check(up, check_cb, &ok);
	for (int i = 0; i < 100 && ok == -1; i++)
		event_base_loop(base, EVLOOP_ONCE);
	ck_assert_int_eq(ok, 1);
	ck_assert_int_eq(upstream_failing_seconds(up), 0);
}
END_TEST

static Suite *
upstream_suite(void)
{
	Suite *s = suite_create("upstream");
	TCase *tc = tcase_create("pool");

	tcase_add_unchecked_fixture(tc, top_setup, top_teardown);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_delivers_through_transport);
	tcase_add_test(tc, test_recycles_after_n_messages);
	tcase_add_test(tc, test_rate_class_slows_the_pool);
	tcase_add_test(tc, test_failed_sessions_back_off);
	tcase_add_test(tc, test_health_check);
	tcase_add_test(tc, test_check_ends_failing);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return fixture_run(upstream_suite());
}
