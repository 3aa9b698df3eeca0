/*
 * check_ratelimit.c: the token bucket, driven by a fake clock (the
 * time is simply the number passed in).
 */
#include "config.h"

#include <check.h>
#include <stdlib.h>

#include "ratelimit.h"
#include "fixture.h"

#define EPS	1e-9

START_TEST(test_burst_at_once)
{
	struct ratelimit rl;

	ratelimit_init(&rl, 14.0, 5.0, 1000.0);
	for (int i = 0; i < 5; i++)
		ck_assert_double_eq_tol(ratelimit_reserve(&rl, 1, 1000.0), 0,
		    EPS);
	/* The sixth waits for one token: 1/14 s. */
	ck_assert_double_eq_tol(ratelimit_reserve(&rl, 1, 1000.0), 1.0 / 14,
	    EPS);
}
END_TEST

START_TEST(test_burst_in_one_reservation)
{
	struct ratelimit rl;

	ratelimit_init(&rl, 10.0, 50.0, 0.0);
	ck_assert_double_eq_tol(ratelimit_reserve(&rl, 50, 0.0), 0, EPS);
	/* Empty bucket: a wait is exactly n / rate. */
	ck_assert_double_eq_tol(ratelimit_reserve(&rl, 3, 0.0), 0.3, EPS);
}
END_TEST

START_TEST(test_set_rate_slows_and_recovers)
{
	struct ratelimit rl;

	ratelimit_init(&rl, 10.0, 10.0, 0.0);
	ck_assert_double_eq_tol(ratelimit_reserve(&rl, 10, 0.0), 0, EPS);
	/* Throttled at t=1: the second earned 10 tokens at the old rate,
	 * capped to the new burst of 5. */
	ratelimit_set_rate(&rl, 5.0, 1.0);
	ck_assert_double_eq_tol(rl.burst, 5.0, EPS);
	ck_assert_double_eq_tol(ratelimit_reserve(&rl, 5, 1.0), 0, EPS);
	ck_assert_double_eq_tol(ratelimit_reserve(&rl, 1, 1.0), 0.2, EPS);
	/* Recovered: one token every 0.1 s again. */
	ratelimit_set_rate(&rl, 10.0, 1.0);
	ck_assert_double_eq_tol(ratelimit_reserve(&rl, 1, 1.0), 0.2, EPS);
	/* A rate under 1 keeps a burst of one recipient. */
	ratelimit_set_rate(&rl, 0.5, 100.0);
	ck_assert_double_eq_tol(rl.burst, 1.0, EPS);
}
END_TEST

START_TEST(test_pause)
{
	struct ratelimit rl;

	ratelimit_init(&rl, 10.0, 10.0, 0.0);
	ratelimit_pause(&rl, 1.0, 5.0);
	/* A full bucket is emptied and a second's worth owed. */
	ck_assert_double_eq_tol(ratelimit_reserve(&rl, 1, 5.0), 1.1, EPS);
	/* Pausing never gives tokens back. */
	ratelimit_pause(&rl, 0.1, 5.0);
	ck_assert_double_eq_tol(ratelimit_reserve(&rl, 1, 5.0), 1.2, EPS);
}
END_TEST

START_TEST(test_wait_is_n_over_rate)
{
	static const double ns[] = { 1, 2, 7, 50, 0.5 };

	for (size_t i = 0; i < sizeof(ns) / sizeof(ns[0]); i++) {
		struct ratelimit rl;

		ratelimit_init(&rl, 4.0, 1.0, 0.0);
		ck_assert_double_eq_tol(ratelimit_reserve(&rl, 1, 0.0), 0, EPS);
		ck_assert_double_eq_tol(ratelimit_reserve(&rl, ns[i], 0.0),
		    ns[i] / 4.0, EPS);
	}
}
END_TEST

START_TEST(test_refill_capped_at_burst)
{
	struct ratelimit rl;

	ratelimit_init(&rl, 2.0, 3.0, 0.0);
	ck_assert_double_eq_tol(ratelimit_reserve(&rl, 3, 0.0), 0, EPS);
	/* Half a second later: one token back. */
	ck_assert_double_eq_tol(ratelimit_reserve(&rl, 1, 0.5), 0, EPS);
	ck_assert_double_eq_tol(ratelimit_reserve(&rl, 1, 0.5), 0.5, EPS);
	/* An hour idle refills to the burst, not beyond. */
	for (int i = 0; i < 3; i++)
		ck_assert_double_eq_tol(ratelimit_reserve(&rl, 1, 3600.0), 0,
		    EPS);
	ck_assert_double_eq_tol(ratelimit_reserve(&rl, 1, 3600.0), 0.5, EPS);
	ck_assert_double_eq_tol(rl.tokens, -1.0, EPS);
}
END_TEST

START_TEST(test_reservations_queue)
{
	struct ratelimit rl;
	double w1, w2, w3;

	ratelimit_init(&rl, 10.0, 1.0, 0.0);
	ck_assert_double_eq_tol(ratelimit_reserve(&rl, 1, 0.0), 0, EPS);
	w1 = ratelimit_reserve(&rl, 1, 0.0);
	w2 = ratelimit_reserve(&rl, 1, 0.0);
	w3 = ratelimit_reserve(&rl, 5, 0.0);
	ck_assert_double_eq_tol(w1, 0.1, EPS);
	ck_assert_double_eq_tol(w2, 0.2, EPS);
	ck_assert_double_eq_tol(w3, 0.7, EPS);
	ck_assert(w1 < w2 && w2 < w3);
	/* Time passing pays the debt off: 0.2 s later, 0.5 s are left. */
	ck_assert_double_eq_tol(ratelimit_reserve(&rl, 0, 0.2), 0.5, EPS);
	/* After the debt is paid, the bucket fills again. */
	ck_assert_double_eq_tol(ratelimit_reserve(&rl, 1, 10.0), 0, EPS);
}
END_TEST

START_TEST(test_clock_going_back)
{
	struct ratelimit rl;

	ratelimit_init(&rl, 1.0, 1.0, 100.0);
	ck_assert_double_eq_tol(ratelimit_reserve(&rl, 1, 100.0), 0, EPS);
	/* A clock that steps back gives no tokens (and takes none). */
	ck_assert_double_eq_tol(ratelimit_reserve(&rl, 1, 50.0), 1.0, EPS);
	ck_assert_double_eq_tol(ratelimit_reserve(&rl, 0, 101.0), 0.0, EPS);
}
END_TEST

START_TEST(test_burst_at_least_one)
{
	struct ratelimit rl;

	ratelimit_init(&rl, 0.5, 0.0, 0.0);
	ck_assert_double_eq_tol(rl.burst, 1.0, EPS);
	ck_assert_double_eq_tol(ratelimit_reserve(&rl, 1, 0.0), 0, EPS);
	ck_assert_double_eq_tol(ratelimit_reserve(&rl, 1, 0.0), 2.0, EPS);
}
END_TEST

static Suite *
ratelimit_suite(void)
{
	Suite *s = suite_create("ratelimit");
	TCase *tc = tcase_create("bucket");

	tcase_add_test(tc, test_burst_at_once);
	tcase_add_test(tc, test_burst_in_one_reservation);
	tcase_add_test(tc, test_wait_is_n_over_rate);
	tcase_add_test(tc, test_set_rate_slows_and_recovers);
	tcase_add_test(tc, test_pause);
	tcase_add_test(tc, test_refill_capped_at_burst);
	tcase_add_test(tc, test_reservations_queue);
	tcase_add_test(tc, test_clock_going_back);
	tcase_add_test(tc, test_burst_at_least_one);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return fixture_run(ratelimit_suite());
}
