/*
 * check_account.c: the account view's policy, by value: GetAccount's
 * answer parsed (garbage refused), the rate for rate = 0 (MaxSendRate
 * less 10 %), and when sending is held (quota nearly spent with what
 * was sent since the read, sending disabled, shut down).
 */
#include "config.h"

#include <check.h>
#include <string.h>

#include "account.h"
#include "fixture.h"

static const char answer[] = "{\"DedicatedIpAutoWarmupEnabled\":false,"
    "\"Details\":{\"MailType\":\"TRANSACTIONAL\"},\"EnforcementStatus\":"
    "\"PROBATION\",\"ProductionAccessEnabled\":true,\"SendQuota\":"
    "{\"Max24HourSend\":50000.0,\"MaxSendRate\":14.0,\"SentLast24Hours\":"
    "1234.0},\"SendingEnabled\":true,\"SuppressionAttributes\":"
    "{\"SuppressedReasons\":[\"BOUNCE\"]}}";

START_TEST(test_parse)
{
	struct account_view v;

	memset(&v, 0xff, sizeof(v));
	ck_assert_int_eq(account_parse(answer, strlen(answer), &v), 0);
	ck_assert_int_eq(v.known, 1);
	ck_assert_double_eq(v.max_24h, 50000);
	ck_assert_double_eq(v.max_rate, 14);
	ck_assert_double_eq(v.sent_24h, 1234);
	ck_assert_double_eq(v.sent_since, 0);
	ck_assert_int_eq(v.sending_enabled, 1);
	ck_assert_str_eq(v.enforcement, "PROBATION");
	ck_assert_int_eq(v.hold, ACCOUNT_OK);
	ck_assert_double_eq_tol(account_rate(&v), 12.6, 1e-9);
}
END_TEST

static const char *const garbage[] = {
	"", "<html>503</html>", "{\"SendQuota\":{\"MaxSendRate\":1.0}}",
	"{\"SendQuota\":{\"Max24HourSend\":200,\"MaxSendRate\":1,"
	"\"SentLast24Hours\":0},\"SendingEnabled\":\"yes\"}",
	"{\"SendQuota\":{\"Max24HourSend\":200,\"MaxSendRate\":1,"
	"\"SentLast24Hours\":0},\"SendingEnabled\":true",
};

START_TEST(test_garbage)
{
	struct account_view v = { .known = 7 };

	ck_assert_int_eq(account_parse(garbage[_i], strlen(garbage[_i]), &v),
	    -1);
	ck_assert_int_eq(v.known, 7);		/* untouched */
}
END_TEST

/* When sending is held: max_24h, max_rate, sent_24h, sent_since,
 * enabled, enforcement -> hold. */
static const struct {
	double		 max_24h, max_rate, sent_24h, sent_since;
	int		 enabled;
	const char	*enforcement;
	enum account_hold hold;
} holds[] = {
	{ 50000, 14, 1234, 0, 1, "HEALTHY", ACCOUNT_OK },
	/* 1 % of 50000 = 500 is the reserve (more than 2 s at 14/s) */
	{ 50000, 14, 49499, 0, 1, "HEALTHY", ACCOUNT_OK },
	{ 50000, 14, 49400, 101, 1, "HEALTHY", ACCOUNT_QUOTA },
	/* sandbox: 200 a day, 1/s: the reserve is 2 */
	{ 200, 1, 197, 0, 1, "HEALTHY", ACCOUNT_OK },
	{ 200, 1, 197, 1, 1, "HEALTHY", ACCOUNT_OK },
	{ 200, 1, 197, 2, 1, "HEALTHY", ACCOUNT_QUOTA },
	/* the test's account: 25, 5/s: the reserve is 10 */
	{ 25, 5, 10, 5, 1, "HEALTHY", ACCOUNT_OK },
	{ 25, 5, 10, 6, 1, "HEALTHY", ACCOUNT_QUOTA },
	{ -1, 14, 1e9, 0, 1, "HEALTHY", ACCOUNT_OK },	/* unlimited */
	{ 50000, 14, 0, 0, 0, "HEALTHY", ACCOUNT_DISABLED },
	{ 50000, 14, 0, 0, 1, "SHUTDOWN", ACCOUNT_SHUTDOWN },
	{ 50000, 14, 0, 0, 0, "SHUTDOWN", ACCOUNT_SHUTDOWN },
	{ 50000, 14, 0, 0, 1, "PROBATION", ACCOUNT_OK },
};

START_TEST(test_should_hold)
{
	struct account_view v;

	memset(&v, 0, sizeof(v));
	ck_assert_int_eq(account_should_hold(&v), ACCOUNT_OK);	/* unknown */
	v.known = 1;
	v.max_24h = holds[_i].max_24h;
	v.max_rate = holds[_i].max_rate;
	v.sent_24h = holds[_i].sent_24h;
	v.sent_since = holds[_i].sent_since;
	v.sending_enabled = holds[_i].enabled;
	snprintf(v.enforcement, sizeof(v.enforcement), "%s",
	    holds[_i].enforcement);
	ck_assert_int_eq(account_should_hold(&v), holds[_i].hold);
}
END_TEST

START_TEST(test_rate_floor)
{
	struct account_view v = { .known = 1, .max_rate = 0 };

	ck_assert_double_eq(account_rate(&v), 0.01);
	v.max_rate = 1;
	ck_assert_double_eq_tol(account_rate(&v), 0.9, 1e-9);
}
END_TEST

static Suite *
account_suite(void)
{
	Suite *s = suite_create("account");
	TCase *tc = tcase_create("policy");

	tcase_add_test(tc, test_parse);
	tcase_add_loop_test(tc, test_garbage, 0,
	    sizeof(garbage) / sizeof(garbage[0]));
	tcase_add_loop_test(tc, test_should_hold, 0,
	    sizeof(holds) / sizeof(holds[0]));
	tcase_add_test(tc, test_rate_floor);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return fixture_run(account_suite());
}
