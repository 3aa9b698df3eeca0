/*
 * check_json_scan.c: one scalar out of a JSON answer: found at any
 * depth, escapes decoded, and garbage (cut short, trailing bytes, too
 * deep, bad escapes) refused rather than half read.
 */
#include "config.h"

#include <check.h>
#include <string.h>

#include "json_scan.h"
#include "fixture.h"

static const char account[] = "{\"DedicatedIpAutoWarmupEnabled\":false,"
    "\"EnforcementStatus\":\"HEALTHY\",\"ProductionAccessEnabled\":true,"
    "\"SendQuota\":{\"Max24HourSend\":50000.0,\"MaxSendRate\":14.0,"
    "\"SentLast24Hours\":1234.0},\"SendingEnabled\":true,"
    "\"Details\":{\"Tags\":[{\"Key\":\"a\",\"Value\":\"b\"}]}}";

START_TEST(test_get_account)
{
	char s[32];
	double d;
	int b;

	ck_assert_int_eq(json_scan_string(account, strlen(account),
	    "EnforcementStatus", s, sizeof(s)), 0);
	ck_assert_str_eq(s, "HEALTHY");
	ck_assert_int_eq(json_scan_number(account, strlen(account),
	    "MaxSendRate", &d), 0);
	ck_assert_double_eq(d, 14.0);
	ck_assert_int_eq(json_scan_number(account, strlen(account),
	    "SentLast24Hours", &d), 0);
	ck_assert_double_eq(d, 1234.0);
	ck_assert_int_eq(json_scan_bool(account, strlen(account),
	    "SendingEnabled", &b), 0);
	ck_assert_int_eq(b, 1);
	ck_assert_int_eq(json_scan_bool(account, strlen(account),
	    "DedicatedIpAutoWarmupEnabled", &b), 0);
	ck_assert_int_eq(b, 0);
	/* Wrong type, missing: refused. */
	ck_assert_int_eq(json_scan_number(account, strlen(account),
	    "EnforcementStatus", &d), -1);
	ck_assert_int_eq(json_scan_string(account, strlen(account), "Nope", s,
	    sizeof(s)), -1);
	/* Too small a buffer. */
	ck_assert_int_eq(json_scan_string(account, strlen(account),
	    "EnforcementStatus", s, 4), -1);
	/* Only the length given is read. */
	ck_assert_int_eq(json_scan_bool(account, strlen(account) - 1,
	    "SendingEnabled", &b), -1);
}
END_TEST

START_TEST(test_escapes)
{
	static const char js[] = " { \"k\\u0041\" : \"a\\\"b\\\\c\\/d\\n\\u0041\" "
	    "} ";
	char s[32];

	ck_assert_int_eq(json_scan_string(js, strlen(js), "kA", s, sizeof(s)),
	    0);
	ck_assert_str_eq(s, "a\"b\\c/d\nA");
}
END_TEST

static const char *const garbage[] = {
	"", "{", "{\"k\":\"v\"", "{\"k\":\"v\"} x", "{\"k\" \"v\"}",
	"{\"k\":\"v\",}", "{\"k\":\"v\\q\"}", "{\"k\":\"v\\u12\"}",
	"{\"k\":tru}", "{\"k\":-}", "{\"k\":\"a\nb\"}", "<html>",
	"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[{\"k\":\"v\"}]]]]]]]]]]]]]]]]]]]]]]"
	"]]]]]]]]]]]]",
	"{\"k\":\"\\u00e9\"}",
};

START_TEST(test_garbage)
{
	char s[32];

	ck_assert_int_eq(json_scan_string(garbage[_i], strlen(garbage[_i]), "k",
	    s, sizeof(s)), -1);
}
END_TEST

static Suite *
json_scan_suite(void)
{
	Suite *s = suite_create("json_scan");
	TCase *tc = tcase_create("scan");

	tcase_add_test(tc, test_get_account);
	tcase_add_test(tc, test_escapes);
	tcase_add_loop_test(tc, test_garbage, 0,
	    sizeof(garbage) / sizeof(garbage[0]));
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return fixture_run(json_scan_suite());
}
