/*
 * check_netaddr.c: networks, membership (v4, v6, v4-mapped v6) and the
 * loopback predicate that decides who may talk to the relay, and the
 * numeric lookups of listen addresses.
 */
#include "config.h"

#include <sys/socket.h>
#include <sys/un.h>

#include <arpa/inet.h>
#include <check.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "netaddr.h"
#include "fixture.h"

/* A sockaddr for a numeric v4 or v6 address. */
static const struct sockaddr *
sa_of(const char *addr, struct sockaddr_storage *ss)
{
	struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, addr, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons(25);
	} else {
		ck_assert_msg(inet_pton(AF_INET6, addr, &s6->sin6_addr) == 1,
		    "bad test address %s", addr);
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(25);
	}
	return (const struct sockaddr *)ss;
}

static const struct {
	const char	*in;
	int		 ok;
	int		 family;
	int		 prefix;
} parse_cases[] = {
	{ "10.0.0.0/8", 1, AF_INET, 8 },
	{ "192.0.2.0/24", 1, AF_INET, 24 },
	{ "0.0.0.0/0", 1, AF_INET, 0 },
	{ "192.0.2.7", 1, AF_INET, 32 },
	{ "192.0.2.7/32", 1, AF_INET, 32 },
	{ "2001:db8::/32", 1, AF_INET6, 32 },
	{ "::1", 1, AF_INET6, 128 },
	{ "::/0", 1, AF_INET6, 0 },
	{ "fe80::/10", 1, AF_INET6, 10 },
	{ "::ffff:10.0.0.0/104", 1, AF_INET6, 104 },
	{ "10.0.0.0/33", 0, 0, 0 },
	{ "2001:db8::/129", 0, 0, 0 },
	{ "10.0.0.0/-1", 0, 0, 0 },
	{ "10.0.0.0/", 0, 0, 0 },
	{ "10.0.0.0/8x", 0, 0, 0 },
	{ "10.0.0.0/8/8", 0, 0, 0 },
	{ "/8", 0, 0, 0 },
	{ "", 0, 0, 0 },
	{ "garbage", 0, 0, 0 },
	{ "10.0.0/8", 0, 0, 0 },
	{ "256.0.0.0/8", 0, 0, 0 },
	{ "localhost", 0, 0, 0 },
	{ "2001:db8:::/32", 0, 0, 0 },
	{ "10.0.0.0 /8", 0, 0, 0 },
	{ "1111111111111111111111111111111111111111111111111111111111111111/8",
	  0, 0, 0 },
};

START_TEST(test_parse)
{
	struct netaddr_net n;
	int rc = netaddr_parse_net(parse_cases[_i].in, &n);

	if (!parse_cases[_i].ok) {
		ck_assert_msg(rc == -1, "\"%s\" accepted", parse_cases[_i].in);
		return;
	}
	ck_assert_msg(rc == 0, "\"%s\" refused", parse_cases[_i].in);
	ck_assert_int_eq(n.family, parse_cases[_i].family);
	ck_assert_int_eq(n.prefix, parse_cases[_i].prefix);
}
END_TEST

START_TEST(test_parse_bytes)
{
	static const unsigned char v4[4] = { 192, 0, 2, 0 };
	static const unsigned char v6[16] = { 0x20, 0x01, 0x0d, 0xb8,
	    [15] = 1 };
	struct netaddr_net n;

	ck_assert_int_eq(netaddr_parse_net("192.0.2.0/24", &n), 0);
	ck_assert_mem_eq(n.addr, v4, 4);
	ck_assert_int_eq(netaddr_parse_net("2001:db8::1/64", &n), 0);
	ck_assert_mem_eq(n.addr, v6, 16);
}
END_TEST

/*
 * Regression (fixed): netaddr.c:44-46 (netaddr_parse_net) reads the prefix with strtol,
 * which skips leading blanks and takes a sign: "10.0.0.0/ 8" and
 * "10.0.0.0/+8" are accepted as /8 (listen.allow should refuse them as
 * it refuses "10.0.0.0 /8").  Fix: require isdigit((unsigned char)
 * slash[1]) before strtol.
 */
START_TEST(test_parse_prefix_digits_only)
{
	struct netaddr_net n;

	ck_assert_int_eq(netaddr_parse_net("10.0.0.0/ 8", &n), -1);
	ck_assert_int_eq(netaddr_parse_net("10.0.0.0/+8", &n), -1);
}
END_TEST

static const struct {
	const char	*net;
	const char	*addr;
	int		 in;
} member_cases[] = {
	{ "10.0.0.0/8", "10.1.2.3", 1 },
	{ "10.0.0.0/8", "10.255.255.255", 1 },
	{ "10.0.0.0/8", "11.0.0.1", 0 },
	{ "10.0.0.0/8", "9.255.255.255", 0 },
	{ "192.0.2.7", "192.0.2.7", 1 },
	{ "192.0.2.7", "192.0.2.8", 0 },
	{ "2001:db8::/32", "2001:db8::1", 1 },
	{ "2001:db8::/32", "2001:db8:ffff:ffff::1", 1 },
	{ "2001:db8::/32", "2001:db9::1", 0 },
	{ "::1", "::1", 1 },
	{ "::1", "::2", 0 },
	/* v4-mapped v6 clients match v4 networks */
	{ "10.0.0.0/8", "::ffff:10.1.2.3", 1 },
	{ "10.0.0.0/8", "::ffff:11.1.2.3", 0 },
	{ "192.0.2.7", "::ffff:192.0.2.7", 1 },
	/* families never match each other */
	{ "2001:db8::/32", "10.0.0.1", 0 },
	{ "10.0.0.0/8", "::a00:1", 0 },
	/* prefix 0 */
	{ "0.0.0.0/0", "203.0.113.9", 1 },
	{ "0.0.0.0/0", "::ffff:203.0.113.9", 1 },
	{ "0.0.0.0/0", "2001:db8::1", 0 },
	{ "::/0", "2001:db8::1", 1 },
	{ "::/0", "10.0.0.1", 0 },
	/* prefixes that are not whole bytes */
	{ "192.168.2.0/23", "192.168.2.0", 1 },
	{ "192.168.2.0/23", "192.168.3.255", 1 },
	{ "192.168.2.0/23", "192.168.1.255", 0 },
	{ "192.168.2.0/23", "192.168.4.0", 0 },
	{ "192.168.3.0/23", "192.168.2.1", 1 },	/* host bits ignored */
	{ "10.0.0.0/9", "10.127.0.1", 1 },
	{ "10.0.0.0/9", "10.128.0.1", 0 },
	{ "10.0.0.0/31", "10.0.0.1", 1 },
	{ "10.0.0.0/31", "10.0.0.2", 0 },
	{ "2001:db8::/127", "2001:db8::", 1 },
	{ "2001:db8::/127", "2001:db8::1", 1 },
	{ "2001:db8::/127", "2001:db8::2", 0 },
	{ "fe80::/10", "febf::1", 1 },
	{ "fe80::/10", "fec0::1", 0 },
};

START_TEST(test_in_net)
{
	struct netaddr_net n;
	struct sockaddr_storage ss;

	ck_assert_int_eq(netaddr_parse_net(member_cases[_i].net, &n), 0);
	ck_assert_msg(netaddr_in_net(sa_of(member_cases[_i].addr, &ss), &n) ==
	    member_cases[_i].in, "%s in %s: want %d", member_cases[_i].addr,
	    member_cases[_i].net, member_cases[_i].in);
}
END_TEST

static const struct {
	const char	*addr;
	int		 loopback;
} loopback_cases[] = {
	{ "127.0.0.1", 1 },
	{ "127.5.5.5", 1 },
	{ "127.255.255.254", 1 },
	{ "::1", 1 },
	{ "::ffff:127.0.0.1", 1 },
	{ "::ffff:127.9.8.7", 1 },
	{ "10.0.0.1", 0 },
	{ "128.0.0.1", 0 },
	{ "126.255.255.255", 0 },
	{ "0.0.0.0", 0 },
	{ "::2", 0 },
	{ "::", 0 },
	{ "::127.0.0.1", 0 },
	{ "::ffff:10.0.0.1", 0 },
	{ "fe80::1", 0 },
};

START_TEST(test_is_loopback)
{
	struct sockaddr_storage ss;

	const char *a = loopback_cases[_i].addr;

	ck_assert_msg(netaddr_is_loopback(sa_of(a, &ss)) ==
	    loopback_cases[_i].loopback, "%s: want %d", a,
	    loopback_cases[_i].loopback);
}
END_TEST

START_TEST(test_unix_socket)
{
	struct sockaddr_un sun;
	struct netaddr_net n;
	char buf[64];

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	ck_assert_int_eq(netaddr_is_loopback((struct sockaddr *)&sun), 0);
	ck_assert_int_eq(netaddr_parse_net("0.0.0.0/0", &n), 0);
	ck_assert_int_eq(netaddr_in_net((struct sockaddr *)&sun, &n), 0);
	ck_assert_str_eq(netaddr_str((struct sockaddr *)&sun, buf, sizeof(buf)),
	    "unix");
}
END_TEST

START_TEST(test_str)
{
	struct sockaddr_storage ss;
	char buf[INET6_ADDRSTRLEN], small[4];

	ck_assert_str_eq(netaddr_str(sa_of("192.0.2.1", &ss), buf, sizeof(buf)),
	    "192.0.2.1");
	ck_assert_str_eq(netaddr_str(sa_of("2001:db8::1", &ss), buf,
	    sizeof(buf)), "2001:db8::1");
	ck_assert_str_eq(netaddr_str(sa_of("::ffff:10.0.0.1", &ss), buf,
	    sizeof(buf)), "::ffff:10.0.0.1");
	ck_assert_str_eq(netaddr_str(sa_of("192.0.2.1", &ss), small,
	    sizeof(small)), "?");
}
END_TEST

/* Numeric only: a name is never looked up (the suite has no DNS). */
static const struct {
	const char	*host;
	int		 family;
	int		 numeric;
} numeric_cases[] = {
	{ "127.0.0.1", AF_UNSPEC, 1 },
	{ "::1", AF_UNSPEC, 1 },
	{ "2001:db8::1", AF_INET6, 1 },
	{ "192.0.2.1", AF_INET, 1 },
	{ "127.0.0.1", AF_INET6, 0 },
	{ "::1", AF_INET, 0 },
	{ "localhost", AF_UNSPEC, 0 },
	{ "email-smtp.us-east-1.amazonaws.com", AF_UNSPEC, 0 },
	{ "", AF_UNSPEC, 0 },
};

START_TEST(test_is_numeric)
{
	ck_assert_int_eq(netaddr_is_numeric(numeric_cases[_i].host,
	    numeric_cases[_i].family), numeric_cases[_i].numeric);
}
END_TEST

/* A bind address: the family of the host, the port in network order. */
START_TEST(test_lookup_passive)
{
	struct addrinfo *res;

	ck_assert_int_eq(netaddr_lookup("::1", 2525, AF_UNSPEC,
	    AI_NUMERICHOST | AI_PASSIVE, &res), 0);
	ck_assert_int_eq(res->ai_family, AF_INET6);
	ck_assert_int_eq(res->ai_socktype, SOCK_STREAM);
	ck_assert_int_eq(ntohs(((struct sockaddr_in6 *)res->ai_addr)->
	    sin6_port), 2525);
	freeaddrinfo(res);
	ck_assert_int_eq(netaddr_lookup("127.0.0.1", 0, AF_INET,
	    AI_NUMERICHOST, &res), 0);
	ck_assert_int_eq(((struct sockaddr_in *)res->ai_addr)->sin_port, 0);
	freeaddrinfo(res);
	ck_assert_int_eq(netaddr_lookup("localhost", 25, AF_UNSPEC,
	    AI_NUMERICHOST, &res), EAI_NONAME);
}
END_TEST

static Suite *
netaddr_suite(void)
{
	Suite *s = suite_create("netaddr");
	TCase *tc;

	tc = tcase_create("parse");
	tcase_add_loop_test(tc, test_parse, 0,
	    sizeof(parse_cases) / sizeof(parse_cases[0]));
	tcase_add_test(tc, test_parse_bytes);
	suite_add_tcase(s, tc);

	tc = tcase_create("match");
	tcase_add_loop_test(tc, test_in_net, 0,
	    sizeof(member_cases) / sizeof(member_cases[0]));
	tcase_add_loop_test(tc, test_is_loopback, 0,
	    sizeof(loopback_cases) / sizeof(loopback_cases[0]));
	tcase_add_test(tc, test_unix_socket);
	tcase_add_test(tc, test_str);
	suite_add_tcase(s, tc);

	tc = tcase_create("lookup");
	tcase_add_loop_test(tc, test_is_numeric, 0,
	    sizeof(numeric_cases) / sizeof(numeric_cases[0]));
	tcase_add_test(tc, test_lookup_passive);
	suite_add_tcase(s, tc);

	/* Bugs found and fixed: each test keeps it fixed. */
	tc = tcase_create("regressions");
	tcase_add_test(tc, test_parse_prefix_digits_only);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return fixture_run(netaddr_suite());
}
