/*
 * check_creds_imds.c: the instance-role provider.  The pure parts (the
 * refresh delay, the backoff, IMDS's answer) by value; the provider
 * itself on an event loop against tests/fake_imds.py (IMDSv2 only, keys
 * that live a few seconds, faults): the first key, a refresh before
 * expiry, creds_refresh at once, IMDS down (no key once it expired, the
 * loop never blocked, back when IMDS is) and garbage answers.
 */
#include "config.h"

#include <sys/wait.h>

#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "conf.h"
#include "creds.h"
#include "creds_imds.h"
#include "endpoint.h"
#include "fixture.h"

START_TEST(test_refresh_delay)
{
	/* Six hours: 15 minutes before; short keys: half their life. */
	ck_assert_int_eq(creds_imds_refresh_delay(1000, 1000 + 21600),
	    21600 - 900);
	ck_assert_int_eq(creds_imds_refresh_delay(0, 1800), 900);
	ck_assert_int_eq(creds_imds_refresh_delay(0, 20), 10);
	ck_assert_int_eq(creds_imds_refresh_delay(0, 1), 1);
	ck_assert_int_eq(creds_imds_refresh_delay(100, 50), 1);
}
END_TEST

START_TEST(test_backoff)
{
	static const int want[] = { 1, 1, 2, 4, 8, 16, 30, 30, 30 };

	for (int i = 1; i < 9; i++)
		ck_assert_int_eq(creds_imds_backoff(i), want[i]);
	ck_assert_int_eq(creds_imds_backoff(1000), 30);
}
END_TEST

START_TEST(test_parse)
{
	static const char good[] = "{\n  \"Code\" : \"Success\",\n"
	    "  \"LastUpdated\" : \"2026-12-02T07:00:00Z\",\n  \"Type\" : "
	    "\"AWS-HMAC\",\n  \"AccessKeyId\" : \"ASIAEXAMPLE\",\n"
	    "  \"SecretAccessKey\" : \"se\\/cret\",\n  \"Token\" : \"tok\",\n"
	    "  \"Expiration\" : \"2026-12-02T13:00:00Z\"\n}";
	struct aws_creds a;
	char err[160];

	ck_assert_int_eq(creds_imds_parse(good, strlen(good), &a, err,
	    sizeof(err)), 0);
	ck_assert_str_eq(a.access_key_id, "ASIAEXAMPLE");
	ck_assert_str_eq(a.secret_access_key, "se/cret");
	ck_assert_str_eq(a.session_token, "tok");
	ck_assert_int_eq(a.expiration, 1796216400);	/* 2026-12-02 13:00Z */
	aws_creds_clear(&a);
}
END_TEST

static const struct {
	const char	*json, *expect;
} bad_answers[] = {
	{ "<html>not json", "not credentials" },
	{ "{\"AccessKeyId\": \"A\", \"SecretAccessKey\": \"s\", \"Token\": "
	  "\"t\"", "not credentials" },		/* cut short */
	{ "{\"Code\": \"AssumeRoleUnauthorizedAccess\"}", "Code=AssumeRole" },
	{ "{\"AccessKeyId\": \"A\", \"SecretAccessKey\": \"s\", \"Token\": "
	  "\"t\", \"Expiration\": \"tomorrow\"}", "not a time" },
	{ "{\"AccessKeyId\": \"\", \"SecretAccessKey\": \"s\", \"Token\": "
	  "\"t\", \"Expiration\": \"2026-12-02T13:00:00Z\"}", "not credentials" },
	{ "{\"AccessKeyId\": 5, \"SecretAccessKey\": \"s\", \"Token\": "
	  "\"t\", \"Expiration\": \"2026-12-02T13:00:00Z\"}", "not credentials" },
};

START_TEST(test_parse_refused)
{
	struct aws_creds a;
	char err[160];

	ck_assert_int_eq(creds_imds_parse(bad_answers[_i].json,
	    strlen(bad_answers[_i].json), &a, err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, bad_answers[_i].expect) != NULL, "%s", err);
	ck_assert_ptr_null(a.access_key_id);
}
END_TEST

/* ---- against the fake ---- */

static char dir[256], faults[300];
static pid_t fake_pid = -1;
static int fake_port;
static struct event_base *base;
static struct event *guard;
static int changes;
static time_t changed_at;

static void
set_faults(const char *json)
{
	char tmp[320];
	FILE *fp;

	snprintf(tmp, sizeof(tmp), "%s.tmp", faults);
	ck_assert_ptr_nonnull(fp = fopen(tmp, "w"));
	fputs(json, fp);
	ck_assert_int_eq(fclose(fp), 0);
	ck_assert_int_eq(rename(tmp, faults), 0);
}

/* Start tests/fake_imds.py, keys living `lifetime` seconds, on port
 * (0: any; fake_port is set). */
static void
start_fake_on(const char *lifetime, int port)
{
	char portfile[300], log[300], script[512], ports[16];
	const char *src = getenv("top_srcdir");
	FILE *fp = NULL;

	snprintf(portfile, sizeof(portfile), "%s/port", dir);
	snprintf(log, sizeof(log), "%s/imds.log", dir);
	snprintf(script, sizeof(script), "%s/tests/fake_imds.py",
	    src ? src : "..");
	snprintf(ports, sizeof(ports), "%d", port);
	unlink(portfile);
	if ((fake_pid = fork()) == 0) {
		execlp("python3", "python3", script, "--port-file", portfile,
		    "--lifetime", lifetime, "--faults", faults, "--log", log,
		    "--port", ports, (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 100 && fp == NULL; i++) {
		usleep(50000);
		if ((fp = fopen(portfile, "r")) != NULL &&
		    fscanf(fp, "%d", &fake_port) != 1) {
			fclose(fp);
			fp = NULL;
		}
	}
	ck_assert_msg(fp != NULL, "fake_imds.py did not start");
	fclose(fp);
}

static void
start_fake(const char *lifetime)
{
	start_fake_on(lifetime, 0);
}

static void
stop_fake(void)
{
	kill(fake_pid, SIGTERM);
	waitpid(fake_pid, NULL, 0);
	fake_pid = -1;
}

static void
setup(void)
{
	fixture_mkdtemp(dir, sizeof(dir), NULL, "check_creds_imds");
	snprintf(faults, sizeof(faults), "%s/faults.json", dir);
	base = fixture_loop_new(&guard);
	changes = 0;
}

static void
teardown(void)
{
	if (fake_pid > 0)
		stop_fake();
	fixture_loop_free(base, guard);
	fixture_rmtree(dir);
}

static void
on_change(void *arg)
{
	(void)arg;
	changes++;
	changed_at = time(NULL);
}

/* The provider for auth "instance-role" against the fake. */
static struct creds *
provider(struct conf **cp)
{
	char path[300], text[512], err[CONF_ERRLEN];
	struct endpoint ep;
	struct creds *cr;
	FILE *fp;

	snprintf(path, sizeof(path), "%s/sesrelay.conf", dir);
	snprintf(text, sizeof(text), "upstream = { transport = \"api\"; auth = "
	    "\"instance-role\"; imds_endpoint = \"http://127.0.0.1:%d\"; "
	    "credentials = \"/nonexistent\"; };\n", fake_port);
	ck_assert_ptr_nonnull(fp = fopen(path, "w"));
	fputs(text, fp);
	fclose(fp);
	ck_assert_ptr_nonnull(*cp = conf_load(path, err, sizeof(err)));
	ck_assert_int_eq(endpoint_from_conf(*cp, ENDPOINT_PRIMARY, &ep), 0);
	cr = creds_new(base, NULL, *cp, &ep, err, sizeof(err));
	ck_assert_msg(cr != NULL, "%s", err);
	creds_on_change(cr, on_change, NULL);
	return cr;
}

/* IMDSv2 only: a token first, and every GET carried one (the fake logs
 * "token=no" for a GET without, "token=yes" with). */
static void
imds_log_is_v2(void)
{
	char path[300], line[512];
	int n = 0, gets = 0;
	FILE *fp;

	snprintf(path, sizeof(path), "%s/imds.log", dir);
	ck_assert_ptr_nonnull(fp = fopen(path, "r"));
	while (fgets(line, sizeof(line), fp) != NULL) {
		if (n++ == 0)
			ck_assert_str_eq(line, "PUT /latest/api/token status=200\n");
		ck_assert_ptr_null(strstr(line, "token=no"));
		ck_assert_ptr_null(strstr(line, "status=401"));
		gets += strncmp(line, "GET ", 4) == 0;
	}
	fclose(fp);
	ck_assert_int_ge(gets, 4);	/* role and key, fetched 2+ times */
}

/* Run the loop until cond holds or seconds pass; cond's last value. */
#define RUN_UNTIL(cond, seconds) do {					\
	struct timespec t0_, t_;					\
	clock_gettime(CLOCK_MONOTONIC, &t0_);				\
	do {								\
		event_base_loop(base, EVLOOP_ONCE);			\
		clock_gettime(CLOCK_MONOTONIC, &t_);			\
	} while (!(cond) && t_.tv_sec - t0_.tv_sec < (seconds));	\
} while (0)

START_TEST(test_fetch_and_refresh)
{
	struct conf *c;
	struct creds *cr;
	const struct aws_creds *a;
	char first[64];
	time_t exp;

	/* Keys of 6 s, renewed at half their life: 3 s of slack for a
	 * loaded machine (a package build beside a test run). */
	start_fake("6");
	cr = provider(&c);
	ck_assert_ptr_null(creds_get(cr));	/* nothing before the loop */
	RUN_UNTIL(creds_get(cr) != NULL, 5);
	ck_assert_ptr_nonnull(a = creds_get(cr));
	ck_assert_int_eq(changes, 1);
	ck_assert(strncmp(a->access_key_id, "ASIA", 4) == 0);
	ck_assert_ptr_nonnull(a->session_token);
	ck_assert_int_le(a->expiration, time(NULL) + 6);
	snprintf(first, sizeof(first), "%s", a->access_key_id);
	exp = a->expiration;
	/* A new key arrives before the first expires (none is handed out
	 * past its expiry: NULL then). */
	RUN_UNTIL(creds_get(cr) == NULL ||
	    strcmp(creds_get(cr)->access_key_id, first) != 0, 10);
	ck_assert_msg(creds_get(cr) != NULL, "the key expired before the next");
	ck_assert_str_ne(creds_get(cr)->access_key_id, first);
	ck_assert_int_lt(changed_at, exp);
	/* SES said the token expired: fetched again at once. */
	changes = 0;
	creds_refresh(cr);
	RUN_UNTIL(changes > 0, 2);
	ck_assert_int_eq(changes, 1);
	creds_free(cr);
	conf_free(c);
	imds_log_is_v2();
}
END_TEST

/* IMDS restarted: the session token it gave is no longer good (401);
 * a new one is fetched at once and the refresh goes through. */
START_TEST(test_token_refused)
{
	struct conf *c;
	struct creds *cr;
	char path[300], line[256];
	char logpath[300];
	int saw401 = 0, put_after = 0, saved;
	FILE *fp, *lf;

	start_fake("60");
	cr = provider(&c);
	RUN_UNTIL(creds_get(cr) != NULL, 5);
	ck_assert_ptr_nonnull(creds_get(cr));
	stop_fake();
	snprintf(path, sizeof(path), "%s/imds.log", dir);
	unlink(path);
	start_fake_on("60", fake_port);
	changes = 0;
	/* The log (stderr) of the refresh, into a file. */
	snprintf(logpath, sizeof(logpath), "%s/refresh.log", dir);
	ck_assert_int_ne(saved = dup(STDERR_FILENO), -1);
	ck_assert_ptr_nonnull(lf = fopen(logpath, "w+"));
	dup2(fileno(lf), STDERR_FILENO);
	creds_refresh(cr);
	RUN_UNTIL(changes > 0, 5);
	dup2(saved, STDERR_FILENO);
	close(saved);
	ck_assert_int_eq(changes, 1);
	/* No failure counted (it would be logged, and wait 1 s): the dead
	 * keep-alive connection was replaced at once, the new token fetched
	 * at once. */
	rewind(lf);
	while (fgets(line, sizeof(line), lf) != NULL)
		ck_assert_msg(strstr(line, "creds.imds_failed") == NULL, "%s",
		    line);
	fclose(lf);
	ck_assert_ptr_nonnull(fp = fopen(path, "r"));
	while (fgets(line, sizeof(line), fp) != NULL) {
		saw401 |= strstr(line, "status=401 token=yes") != NULL;
		put_after |= saw401 && strncmp(line, "PUT /latest/api/token "
		    "status=200", 32) == 0;
	}
	fclose(fp);
	ck_assert_msg(saw401 && put_after, "401 seen %d, PUT after %d", saw401,
	    put_after);
	creds_free(cr);
	conf_free(c);
}
END_TEST

START_TEST(test_down_then_back)
{
	struct conf *c;
	struct creds *cr;
	struct timespec t0, t1, end;
	long long longest = 0, ms;

	set_faults("{\"down\": true}");
	start_fake("3");
	cr = provider(&c);
	/* IMDS down at start: no key, and the loop keeps turning: no turn
	 * waits on the metadata service (a blocking fetch would take its
	 * whole timeout in one turn; how many turns a loaded machine
	 * manages in a second says nothing). */
	clock_gettime(CLOCK_MONOTONIC, &end);
	end.tv_sec += 1;
	do {
		clock_gettime(CLOCK_MONOTONIC, &t0);
		event_base_loop(base, EVLOOP_ONCE);
		clock_gettime(CLOCK_MONOTONIC, &t1);
		ms = (t1.tv_sec - t0.tv_sec) * 1000 +
		    (t1.tv_nsec - t0.tv_nsec) / 1000000;
		longest = ms > longest ? ms : longest;
	} while (t1.tv_sec < end.tv_sec || (t1.tv_sec == end.tv_sec &&
	    t1.tv_nsec < end.tv_nsec));
	ck_assert_ptr_null(creds_get(cr));
	ck_assert_msg(longest < 900, "one turn took %lld ms", longest);
	set_faults("{}");
	RUN_UNTIL(creds_get(cr) != NULL, 6);
	ck_assert_ptr_nonnull(creds_get(cr));
	/* Down again: the key in hand expires and is no longer given. */
	set_faults("{\"down\": true}");
	RUN_UNTIL(creds_get(cr) == NULL, 5);
	ck_assert_ptr_null(creds_get(cr));
	set_faults("{}");
	RUN_UNTIL(creds_get(cr) != NULL, 6);
	ck_assert_ptr_nonnull(creds_get(cr));
	creds_free(cr);
	conf_free(c);
}
END_TEST

START_TEST(test_garbage_and_slow)
{
	struct conf *c;
	struct creds *cr;
	struct timespec t0, t1;

	set_faults("{\"garbage\": true}");
	start_fake("60");
	cr = provider(&c);
	RUN_UNTIL(0, 1);
	ck_assert_ptr_null(creds_get(cr));
	ck_assert_int_eq(changes, 0);
	/* Slow (beyond the 3 s timeout): still no key, never a blocked loop. */
	set_faults("{\"slow\": 5}");
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int i = 0; i < 20; i++) {
		struct timespec a, b;

		clock_gettime(CLOCK_MONOTONIC, &a);
		event_base_loop(base, EVLOOP_ONCE);
		clock_gettime(CLOCK_MONOTONIC, &b);
		ck_assert_int_lt((b.tv_sec - a.tv_sec) * 1000 +
		    (b.tv_nsec - a.tv_nsec) / 1000000, 500);
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ck_assert_ptr_null(creds_get(cr));
	set_faults("{}");
	RUN_UNTIL(creds_get(cr) != NULL, 10);
	ck_assert_ptr_nonnull(creds_get(cr));
	creds_free(cr);
	conf_free(c);
}
END_TEST

static Suite *
creds_imds_suite(void)
{
	Suite *s = suite_create("creds_imds");
	TCase *tc = tcase_create("pure"), *live = tcase_create("fake");

	tcase_add_test(tc, test_refresh_delay);
	tcase_add_test(tc, test_backoff);
	tcase_add_test(tc, test_parse);
	tcase_add_loop_test(tc, test_parse_refused, 0,
	    sizeof(bad_answers) / sizeof(bad_answers[0]));
	suite_add_tcase(s, tc);
	tcase_add_checked_fixture(live, setup, teardown);
	tcase_set_timeout(live, 40);
	tcase_add_test(live, test_fetch_and_refresh);
	tcase_add_test(live, test_token_refused);
	tcase_add_test(live, test_down_then_back);
	tcase_add_test(live, test_garbage_and_slow);
	suite_add_tcase(s, live);
	return s;
}

int
main(void)
{
	return fixture_run(creds_imds_suite());
}
