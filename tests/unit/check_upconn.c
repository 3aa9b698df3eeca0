/*
 * check_upconn.c: a transport's connection (upconn.h) on a real event
 * loop and loopback sockets, the host resolved by evdns from a hosts
 * file of the test's: each address is tried in turn, the last failure
 * is reported with its reason, a close after connecting is "lost", the
 * step's deadline fires with its reason, and the end comes from the
 * loop.  Plain TCP only: TLS is the integration tests' (tls_modes.sh,
 * tls_verify_fails.sh, api_*.sh).
 */
#include "config.h"

#include <sys/socket.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/dns.h>
#include <event2/event.h>

#include "fixture.h"
#include "upconn.h"

static struct event_base *base;
static struct event *guard;
static struct evdns_base *dns;
static struct upconn_target to;
static struct upconn *conn;
static char dir[256];

static struct {
	int	 resolved, connected, fails, lost, deadlines, ended;
	char	 why[256];
	char	 peer[64];
} rec;

static void
on_resolved(void *arg)
{
	rec.resolved++;
	upconn_next(conn);
}

static void
on_connected(void *arg)
{
	rec.connected++;
	snprintf(rec.peer, sizeof(rec.peer), "%s", upconn_peer(conn));
}

static void
on_fail(void *arg, const char *why)
{
	rec.fails++;
	snprintf(rec.why, sizeof(rec.why), "%s", why);
}

static void
on_lost(void *arg, short what, const char *why)
{
	rec.lost++;
	snprintf(rec.why, sizeof(rec.why), "%s", why);
}

static void
on_io(void *arg)
{
}

static void
on_deadline(void *arg, const char *why)
{
	rec.deadlines++;
	snprintf(rec.why, sizeof(rec.why), "%s", why);
}

static void
on_ended(void *arg)
{
	rec.ended++;
}

static const struct upconn_events events = {
	.resolved = on_resolved,
	.connected = on_connected,
	.fail = on_fail,
	.lost = on_lost,
	.readable = on_io,
	.drained = on_io,
	.deadline = on_deadline,
	.ended = on_ended,
};

/* Run the loop until *flag is set, 5 s at most. */
static void
run_until(const int *flag)
{
	time_t end = time(NULL) + 5;

	while (*flag == 0 && time(NULL) < end)
		event_base_loop(base, EVLOOP_ONCE);
}

/* A socket bound to 127.0.0.1 (listening or not: refused); its port. */
static int
local_socket(int listening, int *port)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t len = sizeof(sin);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	ck_assert_int_ge(fd, 0);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	if (listening)
		ck_assert_int_eq(listen(fd, 4), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	*port = ntohs(sin.sin_port);
	return fd;
}

static void
setup(void)
{
	char hosts[300];
	FILE *f;

	memset(&rec, 0, sizeof(rec));
	base = fixture_loop_new(&guard);
	fixture_mkdtemp(dir, sizeof(dir), NULL, "check_upconn");
	snprintf(hosts, sizeof(hosts), "%s/hosts", dir);
	ck_assert_ptr_nonnull(f = fopen(hosts, "w"));
	/* Only 127.0.0.1 listens: the other address is refused. */
	fputs("127.0.0.2 two.test\n127.0.0.1 two.test\n", f);
	fclose(f);
	ck_assert_ptr_nonnull(dns = evdns_base_new(base, 0));
	ck_assert_int_eq(evdns_base_load_hosts(dns, hosts), 0);
	ck_assert_int_eq(upconn_target_init(&to, base, dns, "upstream", NULL,
	    rec.why, sizeof(rec.why)), 0);
	to.host = "two.test";
	to.tls_label = "starttls";
	to.what = "the upstream";
}

static void
teardown(void)
{
	upconn_free(conn);
	conn = NULL;
	upconn_target_clear(&to);
	evdns_base_free(dns, 0);
	fixture_loop_free(base, guard);
	fixture_rmtree(dir);
}

static void
start(int port)
{
	to.port = port;
	conn = upconn_new(&to, &events, NULL, 1);
	ck_assert_str_eq(upconn_peer(conn), "-");
	upconn_resolve(conn);
}

START_TEST(next_address_connects)
{
	int port, fd = local_socket(1, &port), c;
	char peer[64];

	start(port);
	run_until(&rec.connected);
	snprintf(peer, sizeof(peer), "127.0.0.1:%d", port);
	ck_assert_int_eq(rec.resolved, 1);
	ck_assert_int_eq(rec.connected, 1);
	ck_assert_int_eq(rec.fails, 0);
	ck_assert_str_eq(rec.peer, peer);
	/* The server closes: lost, with the reason. */
	ck_assert_int_ge(c = accept(fd, NULL, NULL), 0);
	close(c);
	run_until(&rec.lost);
	ck_assert_int_eq(rec.lost, 1);
	ck_assert_str_eq(rec.why, "connection closed by the upstream");
	close(fd);
}
END_TEST

START_TEST(no_address_answers)
{
	int port, fd = local_socket(0, &port);

	start(port);
	run_until(&rec.fails);
	ck_assert_int_eq(rec.connected, 0);
	ck_assert_int_eq(rec.fails, 1);
	ck_assert_str_eq(rec.why, "no address of the upstream could be "
	    "reached");
	close(fd);
}
END_TEST

START_TEST(unknown_host)
{
	int port, fd = socket(AF_INET, SOCK_DGRAM, 0);
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t len = sizeof(sin);
	char ns[32];

	/* A name server that never answers, asked once, briefly. */
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	port = ntohs(sin.sin_port);
	snprintf(ns, sizeof(ns), "127.0.0.1:%d", port);
	ck_assert_int_eq(evdns_base_nameserver_ip_add(dns, ns), 0);
	evdns_base_set_option(dns, "timeout:", "0.2");
	evdns_base_set_option(dns, "attempts:", "1");
	to.host = "none.test";
	start(587);
	run_until(&rec.fails);
	close(fd);
	ck_assert_int_eq(rec.resolved, 0);
	ck_assert_int_eq(rec.fails, 1);
	ck_assert_msg(strncmp(rec.why, "cannot resolve none.test: ", 26) == 0,
	    "%s", rec.why);
}
END_TEST

START_TEST(deadline_then_end)
{
	int port, fd = local_socket(1, &port);

	start(port);
	run_until(&rec.connected);
	ck_assert_int_eq(rec.connected, 1);
	upconn_deadline(conn, 1, "banner");
	run_until(&rec.deadlines);
	ck_assert_int_eq(rec.deadlines, 1);
	ck_assert_str_eq(rec.why, "deadline: nothing complete within 1s in "
	    "state banner");
	upconn_deadline(conn, 1, "ehlo");
	upconn_end(conn);	/* stops the deadline too */
	ck_assert_int_eq(rec.ended, 0);	/* from the loop, not inside */
	run_until(&rec.ended);
	event_base_loop(base, EVLOOP_ONCE);
	ck_assert_int_eq(rec.ended, 1);
	ck_assert_int_eq(rec.deadlines, 1);
	ck_assert_int_eq(rec.lost + rec.fails, 0);
	close(fd);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("upconn");
	TCase *tc = tcase_create("connect");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 20);
	tcase_add_test(tc, next_address_connects);
	tcase_add_test(tc, no_address_answers);
	tcase_add_test(tc, unknown_host);
	tcase_add_test(tc, deadline_then_end);
	suite_add_tcase(s, tc);
	return fixture_run(s);
}
