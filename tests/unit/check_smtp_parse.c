/*
 * check_smtp_parse.c: command splitting, MAIL/RCPT paths, MAIL params
 * and the address check, as tables of real client input.
 */
#include "config.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "smtp_parse.h"
#include "fixture.h"

/* ---- commands ---- */

static const struct {
	const char	*line;
	enum smtp_verb	 verb;
	size_t		 verb_len;
	const char	*arg;
} cmd_cases[] = {
	{ "MAIL FROM:<a@b>", SMTP_VERB_MAIL, 4, "FROM:<a@b>" },
	{ "mail from:<a@b>", SMTP_VERB_MAIL, 4, "from:<a@b>" },
	{ "RcPt TO:<x@y> NOTIFY=NEVER", SMTP_VERB_RCPT, 4,
	  "TO:<x@y> NOTIFY=NEVER" },
	{ "EHLO client.example", SMTP_VERB_EHLO, 4, "client.example" },
	{ "helo x", SMTP_VERB_HELO, 4, "x" },
	{ "DATA", SMTP_VERB_DATA, 4, "" },
	{ "data", SMTP_VERB_DATA, 4, "" },
	{ "QUIT", SMTP_VERB_QUIT, 4, "" },
	{ "RSET", SMTP_VERB_RSET, 4, "" },
	{ "NOOP", SMTP_VERB_NOOP, 4, "" },
	{ "NOOP hello there", SMTP_VERB_NOOP, 4, "hello there" },
	{ "VRFY root", SMTP_VERB_VRFY, 4, "root" },
	{ "HELP", SMTP_VERB_HELP, 4, "" },
	{ "starttls", SMTP_VERB_STARTTLS, 8, "" },
	{ "AUTH PLAIN dGVzdA==", SMTP_VERB_AUTH, 4, "PLAIN dGVzdA==" },
	{ "XYZZY foo", SMTP_VERB_UNKNOWN, 5, "foo" },
	{ "MAILFROM:<a@b>", SMTP_VERB_UNKNOWN, 14, "" },
	{ "MAI", SMTP_VERB_UNKNOWN, 3, "" },
	{ "STARTTLSX", SMTP_VERB_UNKNOWN, 9, "" },
	{ "", SMTP_VERB_UNKNOWN, 0, "" },
	{ "DATA ", SMTP_VERB_DATA, 4, "" },
};

START_TEST(test_command)
{
	struct smtp_command c;
	const char *line = cmd_cases[_i].line;

	memset(&c, 0xa5, sizeof(c));
	smtp_parse_command(line, &c);
	ck_assert_msg(c.verb == cmd_cases[_i].verb, "\"%s\": verb %d, want %d",
	    line, c.verb, cmd_cases[_i].verb);
	ck_assert_ptr_eq(c.verb_text, line);
	ck_assert_uint_eq(c.verb_len, cmd_cases[_i].verb_len);
	ck_assert_str_eq(c.arg, cmd_cases[_i].arg);
	/* The argument points into the line, not into a copy. */
	ck_assert(c.arg >= line && c.arg <= line + strlen(line));
}
END_TEST

/* ---- paths ---- */

static const struct {
	const char		*arg;
	const char		*prefix;
	int			 allow_null;
	enum smtp_path_result	 want;
	const char		*addr;		/* on OK */
	const char		*params;	/* on OK */
} path_cases[] = {
	{ "FROM:<a@b>", "FROM:", 1, SMTP_PATH_OK, "a@b", "" },
	{ "FROM: <a@b>", "FROM:", 1, SMTP_PATH_OK, "a@b", "" },
	{ "from:<a@b> SIZE=10", "FROM:", 1, SMTP_PATH_OK, "a@b", "SIZE=10" },
	{ "FROM:<a@b>  SIZE=10 BODY=8BITMIME", "FROM:", 1, SMTP_PATH_OK, "a@b",
	  "SIZE=10 BODY=8BITMIME" },
	{ "FROM:<>", "FROM:", 1, SMTP_PATH_OK, "", "" },
	{ "FROM:<> SIZE=5", "FROM:", 1, SMTP_PATH_OK, "", "SIZE=5" },
	{ "FROM:<root>", "FROM:", 1, SMTP_PATH_OK, "root", "" },
	{ "TO:<x@example.org>", "TO:", 0, SMTP_PATH_OK, "x@example.org", "" },
	{ "to:<x@example.org> ", "TO:", 0, SMTP_PATH_OK, "x@example.org", "" },
	{ "TO:a@b", "TO:", 0, SMTP_PATH_OK, "a@b", "" },
	{ "TO:a@b NOTIFY=NEVER", "TO:", 0, SMTP_PATH_OK, "a@b",
	  "NOTIFY=NEVER" },
	{ "TO:<@x,@y:a@b>", "TO:", 0, SMTP_PATH_OK, "a@b", "" },
	{ "TO:<@x:a@b>", "TO:", 0, SMTP_PATH_OK, "a@b", "" },
	{ "TO:<a@[192.0.2.1]>", "TO:", 0, SMTP_PATH_OK, "a@[192.0.2.1]", "" },
	{ "TO:<>", "TO:", 0, SMTP_PATH_SYNTAX, NULL, NULL },
	{ "TO:", "TO:", 0, SMTP_PATH_SYNTAX, NULL, NULL },
	{ "TO:<a@b", "TO:", 0, SMTP_PATH_SYNTAX, NULL, NULL },
	{ "TO:<a@b>x", "TO:", 0, SMTP_PATH_SYNTAX, NULL, NULL },
	{ "TO:<@x>", "TO:", 0, SMTP_PATH_SYNTAX, NULL, NULL },
	{ "TO:<a b@c>", "TO:", 0, SMTP_PATH_SYNTAX, NULL, NULL },
	{ "TO:< a@b>", "TO:", 0, SMTP_PATH_SYNTAX, NULL, NULL },
	{ "TO:<a@b c>", "TO:", 0, SMTP_PATH_SYNTAX, NULL, NULL },
	{ "TO:<a@b_c>", "TO:", 0, SMTP_PATH_SYNTAX, NULL, NULL },
	{ "TO:<@b>", "TO:", 0, SMTP_PATH_SYNTAX, NULL, NULL },
	{ "TO:<a@>", "TO:", 0, SMTP_PATH_SYNTAX, NULL, NULL },
	{ "TO:<root>", "TO:", 0, SMTP_PATH_NO_DOMAIN, NULL, NULL },
	{ "TO:root", "TO:", 0, SMTP_PATH_NO_DOMAIN, NULL, NULL },
	{ "TO:<j\xc3\xbcrgen@example.de>", "TO:", 0, SMTP_PATH_NON_ASCII, NULL,
	  NULL },
	{ "FROM:<a@b\xff>", "FROM:", 1, SMTP_PATH_BAD_IDN, NULL, NULL },
	/* An internationalised domain becomes its IDNA (xn--) form. */
	{ "TO:<info@b\xc3\xbc" "cher.example>", "TO:", 0, SMTP_PATH_OK,
	  "info@xn--bcher-kva.example", "" },
	{ "FROM:<a@\xe4\xbe\x8b\xe5\xad\x90.\xe6\xb5\x8b\xe8\xaf\x95>", "FROM:", 1,
	  SMTP_PATH_OK, "a@xn--fsqu00a.xn--0zwm56d", "" },
	{ "FROM:<a@b>", "TO:", 0, SMTP_PATH_SYNTAX, NULL, NULL },
	{ "TO <a@b>", "TO:", 0, SMTP_PATH_SYNTAX, NULL, NULL },
};

START_TEST(test_path)
{
	char addr[SMTP_ADDR_MAX];
	const char *params = NULL;
	enum smtp_path_result r;

	r = smtp_parse_path(path_cases[_i].arg, path_cases[_i].prefix,
	    path_cases[_i].allow_null, addr, &params);
	ck_assert_msg(r == path_cases[_i].want, "\"%s\": result %d, want %d",
	    path_cases[_i].arg, r, path_cases[_i].want);
	if (r != SMTP_PATH_OK)
		return;
	ck_assert_str_eq(addr, path_cases[_i].addr);
	ck_assert_ptr_nonnull(params);
	ck_assert_str_eq(params, path_cases[_i].params);
}
END_TEST

/* Build "TO:<" + local@example.com + ">" with an address of len bytes. */
static void
long_path(char *buf, size_t len, int brackets)
{
	const char *dom = "@example.com";
	size_t dl = strlen(dom), o = 0;

	o += (size_t)sprintf(buf, brackets ? "TO:<" : "TO:");
	memset(buf + o, 'x', len - dl);
	o += len - dl;
	memcpy(buf + o, dom, dl);
	o += dl;
	if (brackets)
		buf[o++] = '>';
	buf[o] = '\0';
}

START_TEST(test_path_lengths)
{
	char arg[400], addr[SMTP_ADDR_MAX];
	const char *params;

	long_path(arg, 300, 1);
	ck_assert_int_eq(smtp_parse_path(arg, "TO:", 0, addr, &params),
	    SMTP_PATH_TOO_LONG);
	long_path(arg, 300, 0);
	ck_assert_int_eq(smtp_parse_path(arg, "TO:", 0, addr, &params),
	    SMTP_PATH_TOO_LONG);
	long_path(arg, 255, 1);
	ck_assert_int_eq(smtp_parse_path(arg, "TO:", 0, addr, &params),
	    SMTP_PATH_TOO_LONG);
	/* 254, the RFC 5321 limit, still fits (a 64-byte local part). */
	memcpy(arg, "TO:<", 4);
	memset(arg + 4, 'l', 64);
	arg[68] = '@';
	memset(arg + 69, 'd', 189);
	memcpy(arg + 258, ">", 2);
	ck_assert_int_eq(smtp_parse_path(arg, "TO:", 0, addr, &params),
	    SMTP_PATH_OK);
	ck_assert_uint_eq(strlen(addr), 254);
	/* A local part over 64 bytes is refused. */
	long_path(arg, 100, 1);
	ck_assert_int_eq(smtp_parse_path(arg, "TO:", 0, addr, &params),
	    SMTP_PATH_SYNTAX);
}
END_TEST

/* ---- MAIL parameters ---- */

static const struct {
	const char	*params;
	int		 rc;
	long long	 size;
	int		 body_8bit;
	int		 bad_off;	/* where *bad points on -1 */
} param_cases[] = {
	{ "", 0, -1, 0, 0 },
	{ "SIZE=123", 0, 123, 0, 0 },
	{ "size=0", 0, 0, 0, 0 },
	{ "SIZE=41943040 BODY=8BITMIME", 0, 41943040, 1, 0 },
	{ "BODY=8BITMIME", 0, -1, 1, 0 },
	{ "body=8bitmime", 0, -1, 1, 0 },
	{ "BODY=7BIT", 0, -1, 0, 0 },
	{ "BODY=8BITMIME  SIZE=9 ", 0, 9, 1, 0 },
	{ "SIZE=", -1, 0, 0, 0 },
	{ "SIZE=12x", -1, 0, 0, 0 },
	{ "SIZE=-1", -1, 0, 0, 0 },
	{ "SIZE=+1", -1, 0, 0, 0 },
	{ "SIZE=99999999999999999999999", -1, 0, 0, 0 },
	{ "SIZE=10 FOO=1", -1, 0, 0, 8 },
	{ "BODY=8BITMIME SMTPUTF8", -1, 0, 0, 14 },
	{ "BODY=BINARYMIME", -1, 0, 0, 0 },
	{ "BODY=8BITMIMEX", -1, 0, 0, 0 },
	{ "SIZE", -1, 0, 0, 0 },
	{ "SIZE=1 SIZE=1x", -1, 0, 0, 7 },
};

START_TEST(test_mail_params)
{
	const char *p = param_cases[_i].params, *bad = NULL;
	struct smtp_mail_params mp;
	int rc;

	memset(&mp, 0x5a, sizeof(mp));
	rc = smtp_parse_mail_params(p, &mp, &bad);
	ck_assert_msg(rc == param_cases[_i].rc, "\"%s\": rc %d", p, rc);
	if (rc == -1) {
		ck_assert_ptr_eq(bad, p + param_cases[_i].bad_off);
		return;
	}
	ck_assert_int_eq(mp.size, param_cases[_i].size);
	ck_assert_int_eq(mp.body_8bit, param_cases[_i].body_8bit);
}
END_TEST

/* ---- the address check ---- */

static const struct {
	const char	*addr;
	int		 with_domain;	/* require_domain = 1 */
	int		 without;	/* require_domain = 0 */
} valid_cases[] = {
	{ "a@b", 1, 1 },
	{ "first.last+tag@mail.example.org", 1, 1 },
	{ "a@[192.0.2.1]", 1, 1 },
	{ "root", 0, 1 },
	{ "", 0, 0 },
	{ "@b", 0, 0 },
	{ "a@", 0, 0 },
	{ "a b@c", 0, 0 },
	{ "a@b c", 0, 0 },
	{ "a@b_c", 0, 0 },
	{ "a\t@b", 0, 0 },
	{ "a@b\x7f", 0, 0 },
	{ "caf\xc3\xa9@b", 0, 0 },
	{ "ro ot", 0, 0 },
};

START_TEST(test_address_is_valid)
{
	const char *a = valid_cases[_i].addr;

	ck_assert_msg(smtp_address_is_valid(a, 1) ==
	    valid_cases[_i].with_domain, "\"%s\" with domain", a);
	ck_assert_msg(smtp_address_is_valid(a, 0) == valid_cases[_i].without,
	    "\"%s\" without domain", a);
}
END_TEST

START_TEST(test_address_lengths)
{
	char a[300];

	/* Local part: 64 is the limit. */
	memset(a, 'l', 64);
	strcpy(a + 64, "@d");
	ck_assert_int_eq(smtp_address_is_valid(a, 1), 1);
	memset(a, 'l', 65);
	strcpy(a + 65, "@d");
	ck_assert_int_eq(smtp_address_is_valid(a, 1), 0);
	/* Whole address: 254 is the limit. */
	memset(a, 'd', sizeof(a));
	a[0] = 'l';
	a[1] = '@';
	a[254] = '\0';
	ck_assert_int_eq(smtp_address_is_valid(a, 1), 1);
	a[254] = 'd';
	a[255] = '\0';
	ck_assert_int_eq(smtp_address_is_valid(a, 1), 0);
}
END_TEST

static Suite *
smtp_parse_suite(void)
{
	Suite *s = suite_create("smtp_parse");
	TCase *tc;

	tc = tcase_create("command");
	tcase_add_loop_test(tc, test_command, 0,
	    sizeof(cmd_cases) / sizeof(cmd_cases[0]));
	suite_add_tcase(s, tc);

	tc = tcase_create("path");
	tcase_add_loop_test(tc, test_path, 0,
	    sizeof(path_cases) / sizeof(path_cases[0]));
	tcase_add_test(tc, test_path_lengths);
	suite_add_tcase(s, tc);

	tc = tcase_create("params");
	tcase_add_loop_test(tc, test_mail_params, 0,
	    sizeof(param_cases) / sizeof(param_cases[0]));
	suite_add_tcase(s, tc);

	tc = tcase_create("address");
	tcase_add_loop_test(tc, test_address_is_valid, 0,
	    sizeof(valid_cases) / sizeof(valid_cases[0]));
	tcase_add_test(tc, test_address_lengths);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return fixture_run(smtp_parse_suite());
}
