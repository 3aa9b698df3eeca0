/*
 * check_creds.c: the credentials file's two forms, the environment, the
 * combinations endpoint_load_credentials refuses, and creds_new for
 * auth "file" and "environment".
 */
#include "config.h"

#include <sys/stat.h>

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "creds.h"
#include "endpoint.h"
#include "ses_password.h"
#include "fixture.h"

#define KEY_ID	"AKIAIOSFODNN7EXAMPLE"
#define SECRET	"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"

static char dir[256], cred[300], conffile[300];

static void
setup(void)
{
	fixture_mkdtemp(dir, sizeof(dir), NULL, "check_creds");
	snprintf(cred, sizeof(cred), "%s/credentials", dir);
	snprintf(conffile, sizeof(conffile), "%s/sesrelay.conf", dir);
	unsetenv("AWS_ACCESS_KEY_ID");
	unsetenv("AWS_SECRET_ACCESS_KEY");
	unsetenv("AWS_SESSION_TOKEN");
}

static void
teardown(void)
{
	fixture_rmtree(dir);
}

static void
write_file(const char *path, const char *text, mode_t mode)
{
	FILE *fp = fopen(path, "w");

	ck_assert_ptr_nonnull(fp);
	fputs(text, fp);
	ck_assert_int_eq(fclose(fp), 0);
	ck_assert_int_eq(chmod(path, mode), 0);
}

/* A configuration with extra upstream keys, and the credentials file. */
static struct conf *
load(const char *upstream_keys, const char *credentials)
{
	char text[1024], err[CONF_ERRLEN];
	struct conf *c;

	write_file(cred, credentials, 0600);
	snprintf(text, sizeof(text), "upstream = { region = \"eu-west-1\"; "
	    "credentials = \"%s\"; %s };\n", cred, upstream_keys);
	write_file(conffile, text, 0644);
	c = conf_load(conffile, err, sizeof(err));
	ck_assert_msg(c != NULL, "%s", err);
	return c;
}

/* endpoint_load_credentials on the primary; its rc, err filled. */
static int
load_cred(struct conf *c, struct endpoint_credentials *cr, char *err,
    size_t errlen)
{
	struct endpoint ep;

	ck_assert_int_eq(endpoint_from_conf(c, ENDPOINT_PRIMARY, &ep), 0);
	return endpoint_load_credentials(c, &ep, cr, err, errlen);
}

START_TEST(test_smtp_form)
{
	struct endpoint_credentials cr;

	write_file(cred, "username = \"u\";\npassword = \"p\";\n", 0600);
	ck_assert_int_eq(endpoint_credentials_read(cred, &cr, NULL, 0), 0);
	ck_assert_str_eq(cr.username, "u");
	ck_assert_str_eq(cr.password, "p");
	ck_assert(!endpoint_credentials_is_key(&cr));
	endpoint_credentials_clear(&cr);
	ck_assert_ptr_null(cr.username);
}
END_TEST

START_TEST(test_key_forms)
{
	struct endpoint_credentials cr;

	write_file(cred, "access_key_id = \"" KEY_ID "\";\n"
	    "secret_access_key = \"" SECRET "\";\n", 0640);
	ck_assert_int_eq(endpoint_credentials_read(cred, &cr, NULL, 0), 0);
	ck_assert(endpoint_credentials_is_key(&cr));
	ck_assert_str_eq(cr.access_key_id, KEY_ID);
	ck_assert_str_eq(cr.secret_access_key, SECRET);
	ck_assert_ptr_null(cr.session_token);
	ck_assert_ptr_null(cr.username);
	endpoint_credentials_clear(&cr);
	write_file(cred, "access_key_id = \"ASIAX\";\nsecret_access_key = "
	    "\"s\";\nsession_token = \"tok\";\n", 0600);
	ck_assert_int_eq(endpoint_credentials_read(cred, &cr, NULL, 0), 0);
	ck_assert_str_eq(cr.session_token, "tok");
	endpoint_credentials_clear(&cr);
}
END_TEST

/* Files refused, with what the error must say (never a secret). */
static const struct {
	const char	*text;
	mode_t		 mode;
	const char	*expect;
} bad_files[] = {
	{ "username = \"u\";\npassword = \"p\";\naccess_key_id = \"A\";\n",
	  0600, "holds both SMTP credentials" },
	{ "access_key_id = \"" KEY_ID "\";\n", 0600,
	  "secret_access_key: missing" },
	{ "secret_access_key = \"" SECRET "\";\n", 0600,
	  "access_key_id: missing" },
	{ "access_key_id = \"A\";\nsecret_access_key = \"" SECRET "\";\n"
	  "session_token = \"\";\n", 0600, "session_token: missing" },
	{ "access_key_id = \"A\";\nsecret = \"" SECRET "\";\n", 0600,
	  ":2: secret: unknown key" },
	{ "username = \"u\";\n", 0600, "password: missing" },
	{ "access_key_id = \"A\";\nsecret_access_key = \"" SECRET "\";\n",
	  0644, "mode 0644 is unsafe" },
};

START_TEST(test_bad_file)
{
	struct endpoint_credentials cr;
	char err[512];

	write_file(cred, bad_files[_i].text, bad_files[_i].mode);
	ck_assert_int_eq(endpoint_credentials_read(cred, &cr, err,
	    sizeof(err)), -1);
	ck_assert_msg(strstr(err, bad_files[_i].expect) != NULL, "%s", err);
	ck_assert_ptr_null(strstr(err, SECRET));
	ck_assert_ptr_null(cr.access_key_id);
	ck_assert_ptr_null(cr.username);
}
END_TEST

/* Over SMTP, an IAM key gives the key id and the derived password. */
START_TEST(test_smtp_derives_password)
{
	struct conf *c = load("", "access_key_id = \"" KEY_ID "\";\n"
	    "secret_access_key = \"" SECRET "\";\n");
	struct endpoint_credentials cr;
	char pw[SES_PASSWORD_LEN + 1];

	ck_assert_int_eq(load_cred(c, &cr, NULL, 0), 0);
	ck_assert_str_eq(cr.username, KEY_ID);
	ck_assert_int_eq(ses_password_v4(SECRET, "eu-west-1", pw), 0);
	ck_assert_str_eq(cr.password, pw);
	ck_assert_str_eq(pw, "BMW5RDrXmmVs0lV7GpI4oLkHXpZ4stDsk6q91z1g38Pk");
	endpoint_credentials_clear(&cr);
	conf_free(c);
}
END_TEST

/* Combinations that cannot work. */
static const struct {
	const char	*keys, *file, *expect;
} refused[] = {
	{ "", "access_key_id = \"A\";\nsecret_access_key = \"s\";\n"
	  "session_token = \"t\";\n", "upstream.credentials: " },
	{ "transport = \"api\";", "username = \"u\";\npassword = \"p\";\n",
	  "transport \"api\" signs with an IAM key" },
	{ "rate = 0.0;", "username = \"u\";\npassword = \"p\";\n",
	  "upstream.rate: 0 follows the account's MaxSendRate" },
};

START_TEST(test_refused_combination)
{
	struct conf *c = load(refused[_i].keys, refused[_i].file);
	struct endpoint_credentials cr;
	char err[CONF_ERRLEN];

	ck_assert_int_eq(load_cred(c, &cr, err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, refused[_i].expect) != NULL, "%s", err);
	ck_assert_ptr_null(cr.username);
	conf_free(c);
}
END_TEST

START_TEST(test_session_token_over_smtp)
{
	struct conf *c = load("", "access_key_id = \"A\";\n"
	    "secret_access_key = \"s\";\nsession_token = \"t\";\n");
	struct endpoint_credentials cr;
	char err[CONF_ERRLEN];

	ck_assert_int_eq(load_cred(c, &cr, err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, "session token") != NULL, "%s", err);
	ck_assert_msg(strstr(err, "transport = \"api\"") != NULL, "%s", err);
	conf_free(c);
}
END_TEST

/* The environment over SMTP: a long-lived key gives the derived
 * password; a session token is refused, naming the auth key. */
START_TEST(test_environment_smtp)
{
	struct conf *c = load("auth = \"environment\";", "");
	struct endpoint_credentials cr;
	char err[CONF_ERRLEN];

	setenv("AWS_ACCESS_KEY_ID", KEY_ID, 1);
	setenv("AWS_SECRET_ACCESS_KEY", SECRET, 1);
	ck_assert_int_eq(load_cred(c, &cr, err, sizeof(err)), 0);
	ck_assert_str_eq(cr.username, KEY_ID);
	ck_assert_str_eq(cr.password,
	    "BMW5RDrXmmVs0lV7GpI4oLkHXpZ4stDsk6q91z1g38Pk");
	endpoint_credentials_clear(&cr);
	setenv("AWS_SESSION_TOKEN", "tok", 1);
	ck_assert_int_eq(load_cred(c, &cr, err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, "upstream.auth: the environment holds a "
	    "session token") != NULL, "%s", err);
	ck_assert_ptr_null(strstr(err, SECRET));
	conf_free(c);
}
END_TEST

START_TEST(test_environment)
{
	struct conf *c = load("auth = \"environment\"; transport = \"api\";",
	    "");
	struct endpoint ep;
	struct creds *cr;
	const struct aws_creds *a;
	char err[CONF_ERRLEN];

	ck_assert_int_eq(endpoint_from_conf(c, ENDPOINT_PRIMARY, &ep), 0);
	ck_assert_ptr_null(creds_new(NULL, NULL, c, &ep, err, sizeof(err)));
	ck_assert_msg(strstr(err, "upstream.auth: ") != NULL &&
	    strstr(err, "AWS_ACCESS_KEY_ID") != NULL, "%s", err);
	setenv("AWS_ACCESS_KEY_ID", KEY_ID, 1);
	ck_assert_ptr_null(creds_new(NULL, NULL, c, &ep, err, sizeof(err)));
	ck_assert_msg(strstr(err, "AWS_SECRET_ACCESS_KEY") != NULL, "%s", err);
	setenv("AWS_SECRET_ACCESS_KEY", SECRET, 1);
	setenv("AWS_SESSION_TOKEN", "tok", 1);
	ck_assert_ptr_nonnull(cr = creds_new(NULL, NULL, c, &ep, err,
	    sizeof(err)));
	ck_assert_ptr_nonnull(a = creds_get(cr));
	ck_assert_str_eq(a->access_key_id, KEY_ID);
	ck_assert_str_eq(a->secret_access_key, SECRET);
	ck_assert_str_eq(a->session_token, "tok");
	ck_assert_int_eq(a->expiration, 0);
	creds_refresh(cr);		/* a no-op */
	ck_assert_ptr_eq(creds_get(cr), a);
	creds_free(cr);
	conf_free(c);
}
END_TEST

START_TEST(test_file_provider)
{
	struct conf *c = load("transport = \"api\";", "access_key_id = \""
	    KEY_ID "\";\nsecret_access_key = \"" SECRET "\";\n");
	struct endpoint ep;
	struct creds *cr;
	char err[CONF_ERRLEN];

	ck_assert_int_eq(endpoint_from_conf(c, ENDPOINT_PRIMARY, &ep), 0);
	ck_assert_str_eq(ep.api_url, "https://email.eu-west-1.amazonaws.com");
	ck_assert_str_eq(ep.api_authority, "email.eu-west-1.amazonaws.com");
	ck_assert_ptr_nonnull(cr = creds_new(NULL, NULL, c, &ep, err,
	    sizeof(err)));
	ck_assert_str_eq(creds_get(cr)->access_key_id, KEY_ID);
	ck_assert_ptr_null(creds_get(cr)->session_token);
	creds_free(cr);
	conf_free(c);
	/* SMTP credentials are no API key. */
	c = load("", "username = \"u\";\npassword = \"p\";\n");
	ck_assert_int_eq(endpoint_from_conf(c, ENDPOINT_PRIMARY, &ep), 0);
	ck_assert_ptr_null(creds_new(NULL, NULL, c, &ep, err, sizeof(err)));
	ck_assert_msg(strstr(err, "not an IAM key") != NULL, "%s", err);
	conf_free(c);
}
END_TEST

/* A key already read: copied, handed out, never refreshed. */
START_TEST(test_new_key)
{
	char id[] = KEY_ID, secret[] = SECRET;
	struct creds *cr = creds_new_key(id, secret, NULL);
	const struct aws_creds *a = creds_get(cr);

	memset(secret, 0, sizeof(secret));	/* the caller wipes its copy */
	ck_assert_ptr_nonnull(a);
	ck_assert_str_eq(a->access_key_id, KEY_ID);
	ck_assert_str_eq(a->secret_access_key, SECRET);
	ck_assert_ptr_null(a->session_token);
	creds_refresh(cr);
	ck_assert_ptr_eq(creds_get(cr), a);
	creds_free(cr);
}
END_TEST

static Suite *
creds_suite(void)
{
	Suite *s = suite_create("creds");
	TCase *tc = tcase_create("file");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_smtp_form);
	tcase_add_test(tc, test_key_forms);
	tcase_add_loop_test(tc, test_bad_file, 0,
	    sizeof(bad_files) / sizeof(bad_files[0]));
	tcase_add_test(tc, test_smtp_derives_password);
	tcase_add_loop_test(tc, test_refused_combination, 0,
	    sizeof(refused) / sizeof(refused[0]));
	tcase_add_test(tc, test_session_token_over_smtp);
	tcase_add_test(tc, test_environment_smtp);
	tcase_add_test(tc, test_environment);
	tcase_add_test(tc, test_file_provider);
	tcase_add_test(tc, test_new_key);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return fixture_run(creds_suite());
}
