/*
 * check_ses_password.c: SES SMTP password derivation (SigV4, version
 * byte 0x04) against every V4 vector of ses-facts.md §1.4.
 */
#include "config.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "upcheck.h"
#include "ses_password.h"
#include "fixture.h"

#define AWS_EXAMPLE	"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"

static const struct {
	const char	*secret;
	const char	*region;
	const char	*password;
} vectors[] = {
	{ AWS_EXAMPLE, "us-east-2",
	  "BMPPgbAHoFVbze1Ud0oA5uNdXRwUXUZ+qOwphGJbl/cS" },
	{ "some+secret+key", "eu-central-1",
	  "BMXhUYlu5Z3gSXVQORxlVa7XPaz91aGWdfHxvkOZdWZ2" },
	{ "another+secret+key", "eu-central-1",
	  "BBbphbrQmrKMx42d1N6+C7VINYEBGI5v9VsZeTxwskfh" },
	{ "some+secret+key", "us-west-1",
	  "BH+jbMzper5WwlwUar9E1ySBqHa9whi0GPo+sJ0mVYJj" },
	{ "another+secret+key", "us-west-1",
	  "BKVmjjMDFk/qqw8EROW99bjCS65PF8WKvK5bSr4Y6EqF" },
	{ AWS_EXAMPLE, "us-east-1",
	  "BLBM/9hSUELfq8Gw+rU1YcBjkOxGbhT2XG763xVLGWL9" },
	{ AWS_EXAMPLE, "eu-west-1",
	  "BMW5RDrXmmVs0lV7GpI4oLkHXpZ4stDsk6q91z1g38Pk" },
	{ AWS_EXAMPLE, "us-west-2",
	  "BF2PynzbSCAjX08zhZZnP/kW+T9P5zs/1Er0pi5vTEmd" },
	{ AWS_EXAMPLE, "eu-west-3",
	  "BDDdpSTzbzUY3SJq/n4Oq7heDuCWbOtogMi5S3AR673+" },
	{ AWS_EXAMPLE, "eu-north-1",
	  "BPfy85A/4ChxYc0s4mIG5bpIlvRl5AP1uupODe8KaHpf" },
	{ AWS_EXAMPLE, "us-gov-west-1",
	  "BHW/eHvx1MM9YwW4wrJG6MGVQmLDCAM99G9YiSdGEIAw" },
};

START_TEST(test_vector)
{
	char out[SES_PASSWORD_LEN + 1 + 8];

	memset(out, '#', sizeof(out));
	ck_assert_int_eq(ses_password_v4(vectors[_i].secret, vectors[_i].region,
	    out), 0);
	ck_assert_str_eq(out, vectors[_i].password);
	ck_assert_uint_eq(strlen(out), SES_PASSWORD_LEN);
	/* Nothing written past the documented size. */
	ck_assert_int_eq(out[SES_PASSWORD_LEN + 1], '#');
}
END_TEST

START_TEST(test_refused)
{
	char out[SES_PASSWORD_LEN + 1], secret[300];

	ck_assert_int_eq(ses_password_v4(AWS_EXAMPLE, "", out), -1);
	memset(secret, 'k', sizeof(secret) - 1);
	secret[sizeof(secret) - 1] = '\0';
	ck_assert_int_eq(ses_password_v4(secret, "us-east-1", out), -1);
	/* The longest secret accepted still works. */
	secret[256] = '\0';
	ck_assert_int_eq(ses_password_v4(secret, "us-east-1", out), 0);
	ck_assert_uint_eq(strlen(out), SES_PASSWORD_LEN);
	ck_assert_int_eq(out[0], 'B');		/* base64 of 0x04... */
}
END_TEST

/* sesrelayctl check's advice after a refused AUTH. */
static const struct {
	const char	*user, *password, *expect;
} advice[] = {
	{ "AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
	  "looks like an IAM secret access key" },
	{ "AKIAIOSFODNN7EXAMPLE", "AjOXkVMprIgsxnhKv9oW+C4XZjYmrHhVk9DeGk6/ELaG",
	  "old SigV2 SMTP password" },
	{ "AKIAIOSFODNN7EXAMPLE", "BLBM/9hSUELfq8Gw+rU1YcBjkOxGbhT2XG763xVLGWL9",
	  "derived for the region of email-smtp.eu-west-1.amazonaws.com "
	  "(eu-west-1)" },
	{ "ses-smtp-user", "BLBM/9hSUELfq8Gw+rU1YcBjkOxGbhT2XG763xVLGWL9",
	  "does not look like an IAM access key id" },
	{ "ASIAIOSFODNN7EXAMPLE", "BLBM/9hSUELfq8Gw+rU1YcBjkOxGbhT2XG763xVLGWL9",
	  "temporary (STS) key" },
	{ "AKIAIOSFODNN7EXAMPLE", "short", "44 characters starting with 'B'" },
};

START_TEST(test_auth_advice)
{
	const char *a = check_auth_advice(advice[_i].user,
	    advice[_i].password, "eu-west-1",
	    "email-smtp.eu-west-1.amazonaws.com");

	ck_assert_msg(strstr(a, advice[_i].expect) != NULL, "%s", a);
	/* Never the password itself. */
	ck_assert_ptr_null(strstr(a, advice[_i].password));
}
END_TEST

static Suite *
ses_password_suite(void)
{
	Suite *s = suite_create("ses_password");
	TCase *tc = tcase_create("v4");

	tcase_add_loop_test(tc, test_vector, 0,
	    sizeof(vectors) / sizeof(vectors[0]));
	tcase_add_test(tc, test_refused);
	tcase_add_loop_test(tc, test_auth_advice, 0,
	    sizeof(advice) / sizeof(advice[0]));
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return fixture_run(ses_password_suite());
}
