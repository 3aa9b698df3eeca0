/*
 * check_fleet.c: the fleet's lease accounting and fallback with a fake
 * clock (the time is the number passed in), the store address parser,
 * and the Lua script against a real redis-server this suite starts on a
 * free loopback port in a scratch directory (and stops).
 */
#include "config.h"

#include <sys/socket.h>
#include <sys/wait.h>

#include <netinet/in.h>
#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "fleet.h"
#include "fleet_lease.h"
#include "fixture.h"

#define EPS	1e-9

/* ---- leases, fake clock ---- */

START_TEST(test_fallback_is_rate_over_hosts)
{
	struct fleet_lease fl;
	double t;

	fleet_lease_init(&fl, 20.0, 4, 100.0);
	ck_assert_double_eq_tol(fleet_lease_fallback_rate(&fl), 5.0, EPS);
	/* A second's worth at once (5), then 5 a second. */
	ck_assert_double_eq_tol(fleet_lease_reserve(&fl, 5, 100.0, &t), 0,
	    EPS);
	ck_assert_double_eq_tol(t, 0, EPS);
	ck_assert_double_eq_tol(fleet_lease_reserve(&fl, 5, 100.0, &t), 1.0,
	    EPS);
	/* No leases asked for while alone. */
	ck_assert_double_eq_tol(fleet_lease_want(&fl, 100.0), 0, EPS);
}
END_TEST

START_TEST(test_ticket_waits_for_its_grant)
{
	struct fleet_lease fl;
	double t1, t2;

	fleet_lease_init(&fl, 10.0, 2, 0.0);
	fleet_lease_share(&fl, 0.0);
	ck_assert(fleet_lease_reserve(&fl, 3, 0.0, &t1) > 0);
	ck_assert(fleet_lease_reserve(&fl, 2, 0.0, &t2) > 0);
	ck_assert_double_eq_tol(t1, 3, EPS);
	ck_assert_double_eq_tol(t2, 5, EPS);
	/* Grants cover the tickets in order, never one out of turn. */
	fleet_lease_grant(&fl, 3, 0.01);
	ck_assert_double_eq_tol(fleet_lease_wait(&fl, t1, 0.01), 0, EPS);
	ck_assert(fleet_lease_wait(&fl, t2, 0.01) > 0);
	fleet_lease_grant(&fl, 2, 0.02);
	ck_assert_double_eq_tol(fleet_lease_wait(&fl, t2, 0.02), 0, EPS);
}
END_TEST

START_TEST(test_want_is_owed_plus_demand_capped)
{
	struct fleet_lease fl;
	double t, want;

	fleet_lease_init(&fl, 100.0, 10, 0.0);
	fleet_lease_share(&fl, 0.0);
	ck_assert_double_eq_tol(fleet_lease_want(&fl, 0.0), 0, EPS);
	fleet_lease_reserve(&fl, 8, 0.0, &t);
	/* 8 owed, plus a quarter second of a demand of 8 a second: 2. */
	ck_assert_double_eq_tol(fleet_lease_want(&fl, 0.0), 10, EPS);
	/* A big demand: what is owed plus one lease of the fleet's rate at
	 * most (100 x 0.25), never the whole debt twice. */
	fleet_lease_reserve(&fl, 500, 0.0, &t);
	want = fleet_lease_want(&fl, 0.0);
	ck_assert_double_eq_tol(want, 508 + 25, EPS);
}
END_TEST

START_TEST(test_want_follows_demand_down)
{
	struct fleet_lease fl;
	double t;

	fleet_lease_init(&fl, 100.0, 10, 0.0);
	fleet_lease_share(&fl, 0.0);
	fleet_lease_reserve(&fl, 20, 0.0, &t);
	fleet_lease_grant(&fl, 25, 0.0);
	/* Owed nothing, 5 held: a lease of demand (20/s x 0.25 = 5) less
	 * the 5 held is nothing. */
	ck_assert_double_eq_tol(fleet_lease_want(&fl, 0.0), 0, EPS);
	/* 4 of the 5 spent: one left, under a quarter of a lease: top up
	 * to a lease (one round trip a lease, not one a message). */
	fleet_lease_reserve(&fl, 4, 0.0, &t);
	ck_assert_double_eq_tol(fleet_lease_want(&fl, 0.0), 5, EPS);
	fleet_lease_grant(&fl, 5, 0.0);
	/* Ten seconds later the demand is gone: nothing to ask. */
	ck_assert_double_eq_tol(fleet_lease_want(&fl, 10.0), 0, EPS);
}
END_TEST

START_TEST(test_surplus_expires)
{
	struct fleet_lease fl;
	double t;

	fleet_lease_init(&fl, 10.0, 1, 0.0);
	fleet_lease_share(&fl, 0.0);
	fleet_lease_grant(&fl, 10, 0.0);
	/* Held tokens spend at once within their time ... */
	ck_assert_double_eq_tol(fleet_lease_reserve(&fl, 4, 0.5, &t), 0, EPS);
	/* ... and are gone after FLEET_LEASE_TTL: no hoarding, so a host's
	 * overshoot is one lease, once. */
	ck_assert(fleet_lease_reserve(&fl, 4, 0.5 + FLEET_LEASE_TTL + 0.1,
	    &t) > 0);
}
END_TEST

START_TEST(test_fallback_paces_the_waiting)
{
	struct fleet_lease fl;
	double t1, t2, t3;

	fleet_lease_init(&fl, 20.0, 4, 0.0);	/* alone: 5/s */
	fleet_lease_share(&fl, 0.0);
	fleet_lease_reserve(&fl, 5, 0.0, &t1);
	fleet_lease_reserve(&fl, 5, 0.0, &t2);
	/* The store goes: the waiting tickets go at 5/s from now, in order,
	 * not all at once. */
	fleet_lease_fallback(&fl, 1.0);
	ck_assert_double_eq_tol(fleet_lease_wait(&fl, t1, 1.0), 1.0, EPS);
	ck_assert_double_eq_tol(fleet_lease_wait(&fl, t2, 1.0), 2.0, EPS);
	ck_assert_double_eq_tol(fleet_lease_wait(&fl, t2, 3.0), 0, EPS);
	/* A new reservation queues behind that debt. */
	ck_assert_double_eq_tol(fleet_lease_reserve(&fl, 5, 1.0, &t3), 3.0,
	    EPS);
	ck_assert_double_eq_tol(t3, 0, EPS);
	/* The store is back: what waited is covered, leases again. */
	fleet_lease_share(&fl, 2.0);
	ck_assert_double_eq_tol(fleet_lease_wait(&fl, t2, 2.0), 0, EPS);
	ck_assert(fleet_lease_reserve(&fl, 1, 2.0, &t3) > 0);
	ck_assert(fleet_lease_want(&fl, 2.0) >= 1);
}
END_TEST

START_TEST(test_fallback_throttled_halves_and_climbs)
{
	struct fleet_lease fl;
	double t;

	fleet_lease_init(&fl, 40.0, 2, 0.0);	/* alone: 20/s */
	fleet_lease_throttled(&fl, 10.0);
	/* Halved, after a second of silence. */
	ck_assert_double_eq_tol(fleet_lease_local_rate(&fl, 10.0), 10, EPS);
	ck_assert_double_eq_tol(fleet_lease_reserve(&fl, 1, 10.0, &t),
	    1.0 + 1.0 / 10, 1e-6);
	/* 5 % of 20 a second back: 10 s later, 20 again, never more. */
	ck_assert_double_eq_tol(fleet_lease_local_rate(&fl, 15.0), 15, 1e-6);
	ck_assert_double_eq_tol(fleet_lease_local_rate(&fl, 30.0), 20, 1e-6);
	/* Down to 1/64 at most. */
	for (int i = 0; i < 20; i++)
		fleet_lease_throttled(&fl, 40.0);
	ck_assert_double_eq_tol(fleet_lease_local_rate(&fl, 40.0), 20.0 / 64,
	    1e-9);
	/* Shared: the store's business, not this bucket's. */
	fleet_lease_share(&fl, 41.0);
	fleet_lease_throttled(&fl, 41.0);
	ck_assert_double_eq_tol(fl.local.rate, 20.0 / 64, 1e-9);
}
END_TEST

START_TEST(test_spent_reported_once)
{
	struct fleet_lease fl;
	double t;

	fleet_lease_init(&fl, 10.0, 1, 0.0);
	/* Reserving is not sending: a 454 would count twice. */
	fleet_lease_reserve(&fl, 3, 0.0, &t);
	ck_assert_double_eq_tol(fleet_lease_take_spent(&fl), 0, EPS);
	fleet_lease_sent(&fl, 3);
	fleet_lease_share(&fl, 0.0);
	fleet_lease_sent(&fl, 4);
	ck_assert_double_eq_tol(fleet_lease_take_spent(&fl), 7, EPS);
	ck_assert_double_eq_tol(fleet_lease_take_spent(&fl), 0, EPS);
	fleet_lease_unspend(&fl, 7);	/* the report was lost */
	ck_assert_double_eq_tol(fleet_lease_take_spent(&fl), 7, EPS);
}
END_TEST

/* ---- fleet.store ---- */

START_TEST(test_store_parse)
{
	struct fleet_store st;
	char err[256];

	ck_assert_int_eq(fleet_store_parse("", &st, err, sizeof(err)), 0);
	ck_assert_int_eq(st.kind, FLEET_STORE_NONE);
	ck_assert_int_eq(fleet_store_parse("redis://10.0.0.5:6380/3", &st, err,
	    sizeof(err)), 0);
	ck_assert_int_eq(st.kind, FLEET_STORE_TCP);
	ck_assert_str_eq(st.host, "10.0.0.5");
	ck_assert_int_eq(st.port, 6380);
	ck_assert_int_eq(st.db, 3);
	ck_assert_int_eq(fleet_store_parse("redis://cache.internal", &st, err,
	    sizeof(err)), 0);
	ck_assert_int_eq(st.port, 6379);
	ck_assert_int_eq(fleet_store_parse("redis://[::1]:7000", &st, err,
	    sizeof(err)), 0);
	ck_assert_str_eq(st.host, "::1");
	ck_assert_int_eq(fleet_store_parse("unix:/run/redis/redis.sock", &st,
	    err, sizeof(err)), 0);
	ck_assert_str_eq(st.path, "/run/redis/redis.sock");
	ck_assert_int_eq(fleet_store_parse("rediss://h:6379", &st, err,
	    sizeof(err)), 0);
	ck_assert_int_eq(st.kind, FLEET_STORE_TLS);
	ck_assert_int_eq(fleet_store_parse("http://h:6379", &st, err,
	    sizeof(err)), -1);
	ck_assert_int_eq(fleet_store_parse("redis://h:0", &st, err,
	    sizeof(err)), -1);
	ck_assert_int_eq(fleet_store_parse("redis://h:6379/x", &st, err,
	    sizeof(err)), -1);
	ck_assert_int_eq(fleet_store_parse("unix:relative", &st, err,
	    sizeof(err)), -1);
	/* A password in the address would end up in logs and -t. */
	ck_assert_int_eq(fleet_store_parse("redis://:secret@h:6379", &st, err,
	    sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "fleet.credentials"));
	ck_assert_ptr_null(strstr(err, "secret"));
}
END_TEST

START_TEST(test_rediss_refused_without_tls)
{
	struct fleet_store st;
	char err[256];

	fleet_store_parse("rediss://h:6379", &st, err, sizeof(err));
	ck_assert_int_eq(fleet_store_supported(&st, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "rediss://"));
	fleet_store_parse("redis://h:6379", &st, err, sizeof(err));
	ck_assert_int_eq(fleet_store_supported(&st, err, sizeof(err)), 0);
}
END_TEST

/* ---- the script, against a real redis-server ---- */

static pid_t redis_pid;
static char redis_dir[256];
static redisContext *rc;
static char sha[41];

static int
free_port(void)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	int s = socket(AF_INET, SOCK_STREAM, 0), port;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(s, (struct sockaddr *)&sin, sizeof(sin)), 0);
	getsockname(s, (struct sockaddr *)&sin, &len);
	port = ntohs(sin.sin_port);
	close(s);
	return port;
}

/* Start redis-server in a scratch directory; connect; load the script. */
static void
redis_setup(void)
{
	char portbuf[16];
	struct timeval tv = { 1, 0 };
	int port = free_port();
	redisReply *r;

	fixture_mkdtemp(redis_dir, sizeof(redis_dir), NULL, "check_fleet");
	snprintf(portbuf, sizeof(portbuf), "%d", port);
	if ((redis_pid = fork()) == 0) {
		execlp("redis-server", "redis-server", "--port", portbuf,
		    "--bind", "127.0.0.1", "--dir", redis_dir, "--save", "",
		    "--appendonly", "no", "--logfile", "redis.log", (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 100; i++) {
		rc = redisConnectWithTimeout("127.0.0.1", port, tv);
		if (rc != NULL && rc->err == 0)
			break;
		redisFree(rc);
		rc = NULL;
		usleep(50000);
	}
	ck_assert_msg(rc != NULL, "redis-server did not start (installed? "
	    "scripts/deps)");
	r = redisCommand(rc, "SCRIPT LOAD %s", fleet_store_script());
	ck_assert_msg(r->type == REDIS_REPLY_STRING, "SCRIPT LOAD: %s",
	    r->str);
	memcpy(sha, r->str, 40);
	sha[40] = '\0';
	freeReplyObject(r);
}

static void
redis_teardown(void)
{
	if (rc != NULL)
		redisFree(rc);
	rc = NULL;
	if (redis_pid > 0) {
		kill(redis_pid, SIGTERM);
		waitpid(redis_pid, NULL, 0);
	}
	redis_pid = 0;
	fixture_rmtree(redis_dir);
}

/* One call of the script; the 7 numbers of its reply in v. */
static void
lease(long long v[7], int want, int spent, const char *host, int flags,
    int probe_every)
{
	char w[16], s[16], f[16], p[16];
	const char *argv[] = { "EVALSHA", sha, "3", "sesrelay:{t}:bucket",
	    "sesrelay:{t}:count", "sesrelay:{t}:hosts", "10", "10", w, s,
	    host, f, p, "10" };
	redisReply *r;

	snprintf(w, sizeof(w), "%d", want);
	snprintf(s, sizeof(s), "%d", spent);
	snprintf(f, sizeof(f), "%d", flags);
	snprintf(p, sizeof(p), "%d", probe_every);
	r = redisCommandArgv(rc, 14, argv, NULL);
	ck_assert_msg(r->type == REDIS_REPLY_ARRAY && r->elements == 7,
	    "reply type %d: %s", r->type, r->type == REDIS_REPLY_ERROR ?
	    r->str : "");
	for (int i = 0; i < 7; i++)
		v[i] = r->element[i]->integer;
	freeReplyObject(r);
}

static void
command(const char *cmd)
{
	redisReply *r = redisCommand(rc, cmd);

	ck_assert_int_ne(r->type, REDIS_REPLY_ERROR);
	freeReplyObject(r);
}

/* Milliseconds since t0 (CLOCK_MONOTONIC). */
static long long
ms_since(const struct timespec *t0)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (t.tv_sec - t0->tv_sec) * 1000 +
	    (t.tv_nsec - t0->tv_nsec) / 1000000;
}

START_TEST(test_script_bucket)
{
	long long v[7], e;
	struct timespec t0;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	lease(v, 6, 0, "h1", 0, 600);
	ck_assert_int_eq(v[0], 6);		/* a full bucket: 10 */
	ck_assert_int_eq(v[1], 0);
	ck_assert_int_eq(v[2], 10000);		/* rate x 1000 */
	lease(v, 10, 0, "h2", 0, 600);
	e = ms_since(&t0);
	/* What is left: partial (4, and what the store's clock refilled
	 * meanwhile: one token a 100 ms on a loaded machine). */
	ck_assert(v[0] >= 4 && v[0] <= 4 + e / 100);
	/* The rest in 0.1 s a token at 10/s: 0.6 s, less the refill. */
	ck_assert_msg(v[1] >= 590 - e && v[1] <= 610, "%lld ms after %lld",
	    v[1], e);
	lease(v, 1, 0, "h1", 0, 600);
	ck_assert_int_eq(v[0], 0);
	/* The store's clock refills it: 0.3 s is 3 tokens (more if the
	 * sleep was longer). */
	clock_gettime(CLOCK_MONOTONIC, &t0);
	usleep(300000);
	lease(v, 10, 0, "h1", 0, 600);
	e = ms_since(&t0);
	ck_assert_msg(v[0] >= 2 && v[0] <= 1 + e / 100, "%lld after %lld ms",
	    v[0], e);
}
END_TEST

START_TEST(test_script_throttle_slows_everyone)
{
	long long v[7], e;
	struct timespec t0;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	lease(v, 1, 0, "h1", 1, 600);		/* 454 rate, from h1 */
	ck_assert_int_eq(v[2], 5000);		/* halved */
	ck_assert_int_eq(v[0], 0);		/* a second of silence */
	lease(v, 1, 0, "h2", 0, 600);
	e = ms_since(&t0);
	/* (A machine too loaded to ask within the second proves nothing.) */
	if (e >= 900)
		return;
	ck_assert_int_eq(v[0], 0);		/* for h2 too */
	ck_assert(v[1] >= 1000 - e);
	/* The same burst of 454s within a second halves only once. */
	lease(v, 0, 0, "h2", 1, 600);
	if (ms_since(&t0) < 1000)
		ck_assert(v[2] >= 5000 && v[2] < 5100);
}
END_TEST

START_TEST(test_script_quota_one_probe)
{
	long long v[7];

	lease(v, 0, 0, "h1", 2, 1);		/* 454 daily quota, h1 */
	ck_assert_int_eq(v[5], 1);		/* paused */
	lease(v, 5, 0, "h2", 0, 1);
	ck_assert_int_eq(v[5], 1);
	ck_assert_int_eq(v[0], 0);		/* no tokens while paused */
	ck_assert_int_eq(v[6], 0);		/* no probe before it is due */
	usleep(1100000);
	lease(v, 1, 0, "h2", 0, 1);
	ck_assert_int_eq(v[6], 1);		/* h2 probes ... */
	lease(v, 1, 0, "h3", 0, 1);
	ck_assert_int_eq(v[6], 0);		/* ... and nobody else */
	lease(v, 1, 1, "h2", 4, 1);		/* the probe went through */
	ck_assert_int_eq(v[5], 0);
	lease(v, 3, 0, "h3", 0, 1);
	ck_assert_int_eq(v[0], 3);		/* everyone sends again */
}
END_TEST

START_TEST(test_script_count_24h_rolls)
{
	long long v[7], minute;
	redisReply *r;
	char cmd[256];

	lease(v, 0, 7, "h1", 0, 600);
	lease(v, 0, 5, "h2", 0, 600);
	ck_assert_int_eq(v[3], 12);
	/* Recipients counted a day and a minute ago leave the count. */
	r = redisCommand(rc, "TIME");
	minute = atoll(r->element[0]->str) / 60;
	freeReplyObject(r);
	snprintf(cmd, sizeof(cmd), "HSET sesrelay:{t}:count %lld 100 "
	    "oldest %lld total 112", minute - 1441, minute - 1441);
	command(cmd);
	lease(v, 0, 0, "h1", 0, 600);
	ck_assert_int_eq(v[3], 12);
	lease(v, 0, 1, "h1", 0, 600);
	ck_assert_int_eq(v[3], 13);
}
END_TEST

START_TEST(test_script_heartbeats)
{
	long long v[7];

	lease(v, 0, 0, "h1", 8, 600);
	ck_assert_int_eq(v[4], 1);
	lease(v, 0, 0, "h2", 8, 600);
	lease(v, 0, 0, "h1", 8, 600);
	ck_assert_int_eq(v[4], 2);		/* h1 counted once */
}
END_TEST

START_TEST(test_script_noscript_after_flush)
{
	const char *argv[] = { "EVALSHA", sha, "3", "a", "b", "c", "10",
	    "10", "1", "0", "h", "0", "600", "10" };
	redisReply *r;

	command("SCRIPT FLUSH");
	r = redisCommandArgv(rc, 14, argv, NULL);
	ck_assert_int_eq(r->type, REDIS_REPLY_ERROR);
	ck_assert_ptr_nonnull(strstr(r->str, "NOSCRIPT"));
	freeReplyObject(r);
	/* Loaded again, the same SHA answers. */
	r = redisCommand(rc, "SCRIPT LOAD %s", fleet_store_script());
	ck_assert_str_eq(r->str, sha);
	freeReplyObject(r);
}
END_TEST

static Suite *
fleet_suite(void)
{
	Suite *s = suite_create("fleet");
	TCase *tc = tcase_create("lease");
	TCase *ts = tcase_create("script");

	tcase_add_test(tc, test_fallback_is_rate_over_hosts);
	tcase_add_test(tc, test_ticket_waits_for_its_grant);
	tcase_add_test(tc, test_want_is_owed_plus_demand_capped);
	tcase_add_test(tc, test_want_follows_demand_down);
	tcase_add_test(tc, test_surplus_expires);
	tcase_add_test(tc, test_fallback_paces_the_waiting);
	tcase_add_test(tc, test_spent_reported_once);
	tcase_add_test(tc, test_fallback_throttled_halves_and_climbs);
	tcase_add_test(tc, test_store_parse);
	tcase_add_test(tc, test_rediss_refused_without_tls);
	suite_add_tcase(s, tc);
	/* A fresh redis-server for each test: no state shared. */
	tcase_add_checked_fixture(ts, redis_setup, redis_teardown);
	tcase_set_timeout(ts, 20);
	tcase_add_test(ts, test_script_bucket);
	tcase_add_test(ts, test_script_throttle_slows_everyone);
	tcase_add_test(ts, test_script_quota_one_probe);
	tcase_add_test(ts, test_script_count_24h_rolls);
	tcase_add_test(ts, test_script_heartbeats);
	tcase_add_test(ts, test_script_noscript_after_flush);
	suite_add_tcase(s, ts);
	return s;
}

int
main(void)
{
	return fixture_run(fleet_suite());
}
