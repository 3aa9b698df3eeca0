/*
 * check_metrics.c: the Prometheus exposition (parsed back line by line:
 * families, values, the histogram, label escaping) and the HTTP side
 * (a real listener on loopback, a plain socket client, the loop run a
 * bounded number of turns).
 */
#include "config.h"

#include <sys/socket.h>

#include <netinet/in.h>
#include <arpa/inet.h>

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "control.h"
#include "fixture.h"
#include "account.h"
#include "metrics.h"
#include "stats.h"

/* Every family the exposition must have, with its type. */
static const struct {
	const char *name;
	const char *type;
} families[] = {
	{ "sesrelay_messages_accepted_total", "counter" },
	{ "sesrelay_messages_refused_total", "counter" },
	{ "sesrelay_recipients_delivered_total", "counter" },
	{ "sesrelay_recipients_deferred_total", "counter" },
	{ "sesrelay_recipients_failed_total", "counter" },
	{ "sesrelay_recipients_expired_total", "counter" },
	{ "sesrelay_bounces_total", "counter" },
	{ "sesrelay_upstream_connections_total", "counter" },
	{ "sesrelay_ses_replies_total", "counter" },
	{ "sesrelay_queue_messages", "gauge" },
	{ "sesrelay_queue_ready_messages", "gauge" },
	{ "sesrelay_queue_held_messages", "gauge" },
	{ "sesrelay_queue_oldest_age_seconds", "gauge" },
	{ "sesrelay_queue_indexing", "gauge" },
	{ "sesrelay_upstream_sessions", "gauge" },
	{ "sesrelay_upstream_sessions_allowed", "gauge" },
	{ "sesrelay_upstream_rate_recipients_per_second", "gauge" },
	{ "sesrelay_upstream_rate_configured_recipients_per_second", "gauge" },
	{ "sesrelay_upstream_quota_paused", "gauge" },
	{ "sesrelay_upstream_backing_off", "gauge" },
	{ "sesrelay_upstream_fallback_active", "gauge" },
	{ "sesrelay_upstream_info", "gauge" },
	{ "sesrelay_start_time_seconds", "gauge" },
	{ "sesrelay_delivery_latency_seconds", "histogram" },
};
#define NFAMILIES (sizeof(families) / sizeof(families[0]))

static struct control_status status = {
	"email-smtp.eu-west-1.amazonaws.com", 1, 7.5, 14.0, 2, 4, 1, 0,
	3, 1, 125, 1, 1,
	.fleet = { .state = "off" },
};

/* Known counters and latencies in the global stats. */
static void
set_stats(void)
{
	memset(&stats, 0, sizeof(stats));
	stats.started = 1700000000;
	stats.accepted = 5;
	stats.refused = 6;
	stats.delivered = 7;
	stats.deferred = 8;
	stats.failed = 9;
	stats.expired = 10;
	stats.bounced = 11;
	stats.connections = 12;
	stats.replies[SES_ACT_QUOTA] = 2;
	stats.replies[SES_ACT_PROTOCOL] = 13;
	stats_latency(0.5);
	stats_latency(1.0);	/* le is inclusive: still bucket "1" */
	stats_latency(1.5);
	stats_latency(45);
	stats_latency(100000);	/* beyond the last bound: +Inf only */
}

static char *
render(const struct control_status *st)
{
	char *out = NULL;
	size_t len = 0;
	FILE *fp = open_memstream(&out, &len);

	ck_assert_ptr_nonnull(fp);
	metrics_render(fp, st, stats.started + 60);
	ck_assert_int_eq(fclose(fp), 0);
	return out;
}

/* The value of the sample line "<series> <value>", or fail. */
static double
sample(const char *out, const char *series)
{
	size_t n = strlen(series);
	const char *p = out;

	while (p != NULL && *p != '\0') {
		if (strncmp(p, series, n) == 0 && p[n] == ' ')
			return strtod(p + n + 1, NULL);
		if ((p = strchr(p, '\n')) != NULL)
			p++;
	}
	ck_abort_msg("no sample %s in:\n%s", series, out);
	return 0;
}

/* The family a sample belongs to: its name without labels or suffix. */
static int
family_of(const char *line)
{
	static const char *const suffixes[] = { "_bucket", "_sum", "_count" };
	size_t n = strcspn(line, "{ ");

	for (size_t i = 0; i < NFAMILIES; i++) {
		size_t fl = strlen(families[i].name);

		if (n < fl || strncmp(line, families[i].name, fl) != 0)
			continue;
		if (n == fl)
			return (int)i;
		if (strcmp(families[i].type, "histogram") != 0)
			continue;
		for (size_t k = 0; k < 3; k++)
			if (strlen(suffixes[k]) == n - fl &&
			    strncmp(line + fl, suffixes[k], n - fl) == 0)
				return (int)i;
	}
	return -1;
}

/* Which family a "# HELP name" or "# TYPE name type" line names. */
static int
family_named(const char *rest, char *type, size_t typelen)
{
	size_t n = strcspn(rest, " ");

	for (size_t i = 0; i < NFAMILIES; i++)
		if (strlen(families[i].name) == n &&
		    strncmp(rest, families[i].name, n) == 0) {
			if (type != NULL)
				snprintf(type, typelen, "%s", rest + n + 1);
			return (int)i;
		}
	return -1;
}

START_TEST(test_families)
{
	int help[NFAMILIES] = { 0 }, type[NFAMILIES] = { 0 };
	int samples[NFAMILIES] = { 0 };
	char *out, *line, *save = NULL, *end, t[32];
	int f, cur = -1;

	set_stats();
	out = render(&status);
	for (line = strtok_r(out, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save)) {
		if (strncmp(line, "# HELP ", 7) == 0) {
			f = family_named(line + 7, NULL, 0);
			ck_assert_msg(f >= 0, "unknown HELP: %s", line);
			ck_assert_msg(strlen(line + 7) >
			    strlen(families[f].name) + 1, "empty HELP: %s",
			    line);
			help[f]++;
		} else if (strncmp(line, "# TYPE ", 7) == 0) {
			f = family_named(line + 7, t, sizeof(t));
			ck_assert_msg(f >= 0, "unknown TYPE: %s", line);
			ck_assert_str_eq(t, families[f].type);
			type[f]++;
			cur = f;
		} else {
			ck_assert_msg(line[0] != '#', "stray comment: %s",
			    line);
			f = family_of(line);
			ck_assert_msg(f >= 0, "sample of no family: %s", line);
			ck_assert_msg(help[f] == 1 && f == cur,
			    "sample away from its HELP and TYPE: %s", line);
			/* "name{labels} value", nothing after the value */
			ck_assert_ptr_nonnull(strrchr(line, ' '));
			strtod(strrchr(line, ' ') + 1, &end);
			ck_assert_msg(*end == '\0' && end > strrchr(line, ' ') +
			    1, "bad value: %s", line);
			samples[f]++;
		}
	}
	for (size_t i = 0; i < NFAMILIES; i++) {
		ck_assert_msg(help[i] == 1, "%s: %d HELP lines",
		    families[i].name, help[i]);
		ck_assert_msg(type[i] == 1, "%s: %d TYPE lines",
		    families[i].name, type[i]);
		ck_assert_msg(samples[i] > 0, "%s: no samples",
		    families[i].name);
	}
	free(out);
}
END_TEST

START_TEST(test_values)
{
	char *out, series[128];

	set_stats();
	out = render(&status);
	ck_assert_double_eq(sample(out, "sesrelay_messages_accepted_total"), 5);
	ck_assert_double_eq(sample(out, "sesrelay_messages_refused_total"), 6);
	ck_assert_double_eq(sample(out,
	    "sesrelay_recipients_delivered_total"), 7);
	ck_assert_double_eq(sample(out, "sesrelay_recipients_deferred_total"),
	    8);
	ck_assert_double_eq(sample(out, "sesrelay_recipients_failed_total"),
	    9);
	ck_assert_double_eq(sample(out, "sesrelay_recipients_expired_total"),
	    10);
	ck_assert_double_eq(sample(out, "sesrelay_bounces_total"), 11);
	ck_assert_double_eq(sample(out,
	    "sesrelay_upstream_connections_total"), 12);
	/* Every class, zeros included. */
	for (int i = 0; i < STATS_NACTIONS; i++) {
		snprintf(series, sizeof(series),
		    "sesrelay_ses_replies_total{class=\"%s\"}",
		    stats_action_name(i));
		ck_assert_double_eq(sample(out, series), stats.replies[i]);
	}
	ck_assert_ptr_nonnull(strstr(out,
	    "\nsesrelay_ses_replies_total{class=\"daily_quota\"} 2\n"));
	ck_assert_ptr_nonnull(strstr(out,
	    "\nsesrelay_ses_replies_total{class=\"rate_throttle\"} 0\n"));
	ck_assert_double_eq(sample(out, "sesrelay_queue_messages"), 3);
	ck_assert_double_eq(sample(out, "sesrelay_queue_ready_messages"), 1);
	ck_assert_double_eq(sample(out, "sesrelay_queue_held_messages"), 1);
	ck_assert_double_eq(sample(out, "sesrelay_queue_oldest_age_seconds"),
	    125);
	ck_assert_double_eq(sample(out, "sesrelay_queue_indexing"), 1);
	ck_assert_double_eq(sample(out, "sesrelay_upstream_sessions"), 2);
	ck_assert_double_eq(sample(out, "sesrelay_upstream_sessions_allowed"),
	    4);
	ck_assert_double_eq(sample(out,
	    "sesrelay_upstream_rate_recipients_per_second"), 7.5);
	ck_assert_double_eq(sample(out,
	    "sesrelay_upstream_rate_configured_recipients_per_second"), 14);
	ck_assert_double_eq(sample(out, "sesrelay_upstream_quota_paused"), 1);
	ck_assert_double_eq(sample(out, "sesrelay_upstream_backing_off"), 0);
	ck_assert_double_eq(sample(out, "sesrelay_upstream_fallback_active"),
	    1);
	ck_assert_double_eq(sample(out, "sesrelay_upstream_info{host=\""
	    "email-smtp.eu-west-1.amazonaws.com\"}"), 1);
	/* Integral, not 1.7e+09. */
	ck_assert_ptr_nonnull(strstr(out,
	    "\nsesrelay_start_time_seconds 1700000000\n"));
	ck_assert_ptr_nonnull(strstr(out,
	    "\nsesrelay_upstream_rate_recipients_per_second 7.5\n"));
	free(out);
}
END_TEST

/* The account's gauges, once GetAccount was read; none before. */
START_TEST(test_account)
{
	struct account_view a = { 1, 200, 1.0, 150, 30, 1, "HEALTHY",
	    1700000000, ACCOUNT_QUOTA };
	struct control_status st = status;
	char *out;

	set_stats();
	out = render(&st);
	ck_assert_ptr_null(strstr(out, "sesrelay_account_"));
	free(out);
	st.account = &a;
	out = render(&st);
	ck_assert_double_eq(sample(out, "sesrelay_account_max_24h_send"), 200);
	ck_assert_double_eq(sample(out, "sesrelay_account_sent_last_24h"), 180);
	ck_assert_double_eq(sample(out, "sesrelay_account_max_send_rate"), 1);
	ck_assert_double_eq(sample(out, "sesrelay_account_sending_enabled"),
	    1);
	ck_assert_double_eq(sample(out, "sesrelay_account_paused"), 1);
	ck_assert_ptr_nonnull(strstr(out,
	    "# TYPE sesrelay_account_paused gauge\n"));
	free(out);
	a.known = 0;
	out = render(&st);
	ck_assert_ptr_null(strstr(out, "sesrelay_account_"));
	free(out);
}
END_TEST

START_TEST(test_histogram)
{
	const char *name = "sesrelay_delivery_latency_seconds";
	char *out, series[128];
	double prev = 0, v;

	set_stats();
	out = render(&status);
	for (int i = 0; i < STATS_NBUCKETS; i++) {
		snprintf(series, sizeof(series), "%s_bucket{le=\"%g\"}", name,
		    stats_buckets[i]);
		v = sample(out, series);
		ck_assert_msg(v >= prev, "%s = %g < %g", series, v, prev);
		prev = v;
	}
	snprintf(series, sizeof(series), "%s_bucket{le=\"1\"}", name);
	ck_assert_double_eq(sample(out, series), 2);
	snprintf(series, sizeof(series), "%s_bucket{le=\"2\"}", name);
	ck_assert_double_eq(sample(out, series), 3);
	snprintf(series, sizeof(series), "%s_bucket{le=\"60\"}", name);
	ck_assert_double_eq(sample(out, series), 4);
	snprintf(series, sizeof(series), "%s_bucket{le=\"86400\"}", name);
	ck_assert_double_eq(sample(out, series), 4);
	snprintf(series, sizeof(series), "%s_bucket{le=\"+Inf\"}", name);
	v = sample(out, series);
	ck_assert_double_eq(v, 5);
	snprintf(series, sizeof(series), "%s_count", name);
	ck_assert_double_eq(sample(out, series), v);
	snprintf(series, sizeof(series), "%s_sum", name);
	ck_assert_double_eq(sample(out, series), 0.5 + 1.0 + 1.5 + 45 +
	    100000);
	free(out);
}
END_TEST

START_TEST(test_empty)
{
	struct control_status st;
	char *out;

	memset(&stats, 0, sizeof(stats));
	memset(&st, 0, sizeof(st));	/* upstream NULL too */
	out = render(&st);
	ck_assert_ptr_nonnull(strstr(out, "\nsesrelay_upstream_info{host=\"\"}"
	    " 1\n"));
	ck_assert_ptr_nonnull(strstr(out, "\nsesrelay_delivery_latency_seconds"
	    "_bucket{le=\"+Inf\"} 0\nsesrelay_delivery_latency_seconds_sum 0\n"
	    "sesrelay_delivery_latency_seconds_count 0\n"));
	free(out);
}
END_TEST

START_TEST(test_label_escaping)
{
	struct control_status st = status;
	char *out;

	memset(&stats, 0, sizeof(stats));
	st.upstream = "a\"b\\c\nd";
	out = render(&st);
	ck_assert_msg(strstr(out, "\nsesrelay_upstream_info{host="
	    "\"a\\\"b\\\\c\\nd\"} 1\n") != NULL, "%.600s", out);
	free(out);
}
END_TEST

START_TEST(test_fleet_series)
{
	struct control_status st = status;
	char *out;

	memset(&stats, 0, sizeof(stats));
	out = render(&st);
	ck_assert_ptr_null(strstr(out, "sesrelay_fleet_"));	/* no store */
	free(out);
	st.fleet = (struct fleet_status){ "shared", "eu-prod", 1, 7.0, 4321,
	    6, 1, 800, 120 };
	out = render(&st);
	ck_assert_double_eq(sample(out, "sesrelay_fleet_shared"), 1);
	ck_assert_double_eq(sample(out,
	    "sesrelay_fleet_rate_recipients_per_second"), 7);
	ck_assert_double_eq(sample(out, "sesrelay_fleet_hosts"), 6);
	ck_assert_double_eq(sample(out, "sesrelay_fleet_recipients_24h"), 4321);
	ck_assert_double_eq(sample(out, "sesrelay_fleet_quota_paused"), 1);
	ck_assert_double_eq(sample(out, "sesrelay_fleet_leased_tokens_total"),
	    800);
	ck_assert_double_eq(sample(out, "sesrelay_fleet_store_requests_total"),
	    120);
	ck_assert_ptr_nonnull(strstr(out, "# TYPE sesrelay_fleet_leased_tokens_"
	    "total counter\n"));
	free(out);
}
END_TEST

/* ---- the HTTP side ---- */

static void
fill_status(void *arg, struct control_status *st)
{
	*st = status;
	(*(int *)arg)++;
}

/*
 * Send request to 127.0.0.1:port and return the whole response.  The
 * connect and the small write complete in the kernel without the
 * server's help; the reading side turns the loop until EOF, bounded.
 */
static char *
http(struct event_base *base, int port, const char *request)
{
	struct sockaddr_in sin;
	char *out = calloc(1, 65536);
	size_t len = 0;
	ssize_t n = 1;
	int fd, turns;

	ck_assert_ptr_nonnull(out);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((unsigned short)port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_ge(fd = socket(AF_INET, SOCK_STREAM, 0), 0);
	ck_assert_int_eq(connect(fd, (struct sockaddr *)&sin, sizeof(sin)),
	    0);
	ck_assert_int_eq(write(fd, request, strlen(request)),
	    (ssize_t)strlen(request));
	ck_assert_int_eq(fcntl(fd, F_SETFL, O_NONBLOCK), 0);
	for (turns = 0; turns < 100 && n != 0; turns++) {
		event_base_loop(base, EVLOOP_ONCE);
		while ((n = read(fd, out + len, 65535 - len)) > 0)
			len += (size_t)n;
		ck_assert_msg(n == 0 || errno == EAGAIN, "read: %s",
		    strerror(errno));
	}
	ck_assert_msg(n == 0, "no EOF after %d turns; got:\n%.600s", turns,
	    out);
	close(fd);
	return out;
}

START_TEST(test_http)
{
	struct event *guard;
	struct event_base *base = fixture_loop_new(&guard);
	struct metrics *m;
	char err[256] = "", *out;
	int calls = 0, port;

	set_stats();
	m = metrics_new(base, "127.0.0.1:0", fill_status, &calls, err,
	    sizeof(err));
	ck_assert_msg(m != NULL, "%s", err);
	ck_assert_int_gt(port = metrics_port(m), 0);

	out = http(base, port, "GET /metrics HTTP/1.0\r\n\r\n");
	ck_assert_msg(strncmp(out, "HTTP/1.0 200 OK\r\n", 17) == 0, "%.600s",
	    out);
	ck_assert_msg(strstr(out, "\r\nContent-Type: " METRICS_CONTENT_TYPE
	    "\r\n") != NULL, "%.600s", out);
	ck_assert_msg(strstr(out, "\nsesrelay_queue_messages 3\n") != NULL,
	    "%.600s", out);
	ck_assert_msg(strstr(out, "\nsesrelay_messages_accepted_total 5\n")
	    != NULL, "%.600s", out);
	ck_assert_int_eq(calls, 1);
	free(out);

	out = http(base, port, "GET /metrics?x=1 HTTP/1.1\r\nHost: a\r\n"
	    "Connection: close\r\n\r\n");
	ck_assert_msg(strncmp(out, "HTTP/1.1 200 OK\r\n", 17) == 0, "%.600s",
	    out);
	free(out);

	/* HEAD: the headers of the GET, no body. */
	out = http(base, port, "HEAD /metrics HTTP/1.0\r\n\r\n");
	ck_assert_msg(strncmp(out, "HTTP/1.0 200 OK\r\n", 17) == 0,
	    "%.600s", out);
	ck_assert_msg(strstr(out, "\r\nContent-Length: ") != NULL &&
	    strstr(out, "\r\nContent-Length: 0\r\n") == NULL, "%.600s", out);
	ck_assert_msg(strstr(out, "\r\n\r\n")[4] == '\0', "%.600s", out);
	free(out);
	out = http(base, port, "HEAD /nope HTTP/1.0\r\n\r\n");
	ck_assert_msg(strncmp(out, "HTTP/1.0 404 ", 13) == 0, "%.600s", out);
	ck_assert_msg(strstr(out, "\r\n\r\n")[4] == '\0', "%.600s", out);
	free(out);

	out = http(base, port, "GET /nope HTTP/1.0\r\n\r\n");
	ck_assert_msg(strncmp(out, "HTTP/1.0 404 ", 13) == 0, "%.600s", out);
	free(out);

	out = http(base, port, "GET /metrics/ HTTP/1.0\r\n\r\n");
	ck_assert_msg(strncmp(out, "HTTP/1.0 404 ", 13) == 0, "%.600s", out);
	free(out);

	out = http(base, port, "POST /metrics HTTP/1.0\r\n"
	    "Content-Length: 0\r\n\r\n");
	ck_assert_msg(strncmp(out, "HTTP/1.0 405 ", 13) == 0, "%.600s", out);
	ck_assert_msg(strstr(out, "\r\nAllow: GET, HEAD\r\n") != NULL, "%s",
	    out);
	free(out);

	out = http(base, port, "DELETE /metrics HTTP/1.0\r\n\r\n");
	ck_assert_msg(strncmp(out, "HTTP/1.0 405 ", 13) == 0, "%.600s", out);
	free(out);
	ck_assert_int_eq(calls, 3);	/* only the scrapes ask */

	metrics_free(m);
	fixture_loop_free(base, guard);
}
END_TEST

START_TEST(test_http_ipv6)
{
	struct event *guard;
	struct event_base *base = fixture_loop_new(&guard);
	struct metrics *m;
	char err[256] = "";
	int calls = 0;

	m = metrics_new(base, "[::1]:0", fill_status, &calls, err,
	    sizeof(err));
	/* A host without IPv6 may refuse, but then for a system reason. */
	if (m == NULL)
		ck_assert_msg(strncmp(err, "[::1]:0: ", 9) == 0 &&
		    strstr(err, "numeric") == NULL, "%s", err);
	else
		ck_assert_int_gt(metrics_port(m), 0);
	metrics_free(m);
	fixture_loop_free(base, guard);
}
END_TEST

static const struct {
	const char *hostport;
	const char *err;
} bad[] = {
	{ "localhost:9187", "localhost:9187: \"localhost\" is not a numeric "
	  "IPv4 address" },
	{ "[localhost]:9187", "is not a numeric IPv6 address" },
	{ "[127.0.0.1]:9187", "is not a numeric IPv6 address" },
	{ "127.0.0.1", "127.0.0.1: not a numeric address and port" },
	{ "::1:9187", "::1:9187: not a numeric address and port" },
	{ "[::1]9187", "not a numeric address and port" },
	{ "[::1]", "not a numeric address and port" },
	{ ":9187", "not a numeric address and port" },
	{ "", "not a numeric address and port" },
	{ "127.0.0.1:", "127.0.0.1:: bad port \"\"" },
	{ "127.0.0.1:65536", "bad port \"65536\"" },
	{ "127.0.0.1:-1", "bad port \"-1\"" },
	{ "127.0.0.1:91x", "bad port \"91x\"" },
	/* Not ours to bind: the kernel's word, with the address. */
	{ "192.0.2.1:0", "192.0.2.1:0: Cannot assign requested address" },
};

START_TEST(test_bad_address)
{
	struct event *guard;
	struct event_base *base = fixture_loop_new(&guard);
	char err[256] = "";

	ck_assert_ptr_null(metrics_new(base, bad[_i].hostport, NULL, NULL,
	    err, sizeof(err)));
	ck_assert_msg(strstr(err, bad[_i].err) != NULL, "\"%s\": got \"%s\"",
	    bad[_i].hostport, err);
	fixture_loop_free(base, guard);
}
END_TEST

START_TEST(test_port_in_use)
{
	struct event *guard;
	struct event_base *base = fixture_loop_new(&guard);
	struct metrics *m;
	char err[256] = "", hp[64], want[128];

	m = metrics_new(base, "127.0.0.1:0", NULL, NULL, err, sizeof(err));
	ck_assert_msg(m != NULL, "%s", err);
	snprintf(hp, sizeof(hp), "127.0.0.1:%d", metrics_port(m));
	ck_assert_ptr_null(metrics_new(base, hp, NULL, NULL, err,
	    sizeof(err)));
	snprintf(want, sizeof(want), "%s: %s", hp, strerror(EADDRINUSE));
	ck_assert_str_eq(err, want);
	metrics_free(m);
	metrics_free(NULL);
	fixture_loop_free(base, guard);
}
END_TEST

static Suite *
metrics_suite(void)
{
	Suite *s = suite_create("metrics");
	TCase *tc = tcase_create("all");

	tcase_add_test(tc, test_families);
	tcase_add_test(tc, test_values);
	tcase_add_test(tc, test_histogram);
	tcase_add_test(tc, test_fleet_series);
	tcase_add_test(tc, test_account);
	tcase_add_test(tc, test_empty);
	tcase_add_test(tc, test_label_escaping);
	tcase_add_test(tc, test_http);
	tcase_add_test(tc, test_http_ipv6);
	tcase_add_loop_test(tc, test_bad_address, 0,
	    sizeof(bad) / sizeof(bad[0]));
	tcase_add_test(tc, test_port_in_use);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return fixture_run(metrics_suite());
}
