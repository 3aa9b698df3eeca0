/*
 * check_sendmail_args.c: the sendmail command line as real programs
 * write it (cron, PHP, mutt, git send-email, mail(1), logwatch, scripts,
 * ...), every field checked; the compatibility options accepted or
 * refused as sesrelay-sendmail(8) says; and what -t and -F do to the
 * header (groups, folding, comments, encoded words, Bcc removal).
 */
#include "config.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "sendmail_args.h"
#include "fixture.h"

#define MAXARGS	16

static const struct {
	const char		*who;
	const char		*argv[MAXARGS];	/* NULL-terminated */
	enum sendmail_mode	 mode;
	int			 extract, ignore_dots, verbose;
	const char		*sender, *fullname, *config;
	const char		*rcpts[4];	/* NULL-terminated */
} ok_cases[] = {
	{ "cron", { "sendmail", "-FCronDaemon", "-i", "-B8BITMIME", "-oem",
	  "root", NULL }, SENDMAIL_MODE_SEND, 0, 1, 0, NULL, "CronDaemon", NULL,
	  { "root", NULL } },
	{ "php", { "/usr/sbin/sendmail", "-t", "-i", NULL }, SENDMAIL_MODE_SEND,
	  1, 1, 0, NULL, NULL, NULL, { NULL } },
	{ "php -f", { "sendmail", "-t", "-i", "-f", "bounce@x", NULL },
	  SENDMAIL_MODE_SEND, 1, 1, 0, "bounce@x", NULL, NULL, { NULL } },
	{ "--", { "sendmail", "-oi", "-f", "a@b", "--", "rcpt@x", NULL },
	  SENDMAIL_MODE_SEND, 0, 1, 0, "a@b", NULL, NULL, { "rcpt@x", NULL } },
	{ "mutt", { "/usr/sbin/sendmail", "-oem", "-oi", "--", "a@b", NULL },
	  SENDMAIL_MODE_SEND, 0, 1, 0, NULL, NULL, NULL, { "a@b", NULL } },
	{ "-fa@b", { "sendmail", "-fa@b", "x@y", "z@w", NULL },
	  SENDMAIL_MODE_SEND, 0, 0, 0, "a@b", NULL, NULL,
	  { "x@y", "z@w", NULL } },
	{ "-r", { "sendmail", "-r", "r@b", "x@y", NULL }, SENDMAIL_MODE_SEND,
	  0, 0, 0, "r@b", NULL, NULL, { "x@y", NULL } },
	{ "-F name", { "sendmail", "-F", "Full Name", "-t", NULL },
	  SENDMAIL_MODE_SEND, 1, 0, 0, NULL, "Full Name", NULL, { NULL } },
	{ "-C", { "sendmail", "-C", "/tmp/x.conf", "-v", "a@b", NULL },
	  SENDMAIL_MODE_SEND, 0, 0, 1, NULL, NULL, "/tmp/x.conf",
	  { "a@b", NULL } },
	{ "-C attached", { "sendmail", "-C/tmp/y.conf", "-t", NULL },
	  SENDMAIL_MODE_SEND, 1, 0, 0, NULL, NULL, "/tmp/y.conf", { NULL } },
	{ "git", { "sendmail", "-i", "a@b", "c@d", NULL }, SENDMAIL_MODE_SEND,
	  0, 1, 0, NULL, NULL, NULL, { "a@b", "c@d", NULL } },
	{ "compat", { "sendmail", "-odi", "-odb", "-oep", "-oee", "-om",
	  "-N", "never", "-R", "hdrs", "-bm", "a@b", NULL }, SENDMAIL_MODE_SEND,
	  0, 0, 0, NULL, NULL, NULL, { "a@b", NULL } },
	{ "operand stops options", { "sendmail", "a@b", "-t", NULL },
	  SENDMAIL_MODE_SEND, 0, 0, 0, NULL, NULL, NULL,
	  { "a@b", "-t", NULL } },
	{ "mailq", { "mailq", NULL }, SENDMAIL_MODE_MAILQ, 0, 0, 0, NULL, NULL,
	  NULL, { NULL } },
	{ "/usr/bin/mailq", { "/usr/bin/mailq", "-v", NULL },
	  SENDMAIL_MODE_MAILQ, 0, 0, 1, NULL, NULL, NULL, { NULL } },
	{ "newaliases", { "/usr/bin/newaliases", NULL },
	  SENDMAIL_MODE_NEWALIASES, 0, 0, 0, NULL, NULL, NULL, { NULL } },
	{ "-bp", { "sendmail", "-bp", NULL }, SENDMAIL_MODE_MAILQ, 0, 0, 0,
	  NULL, NULL, NULL, { NULL } },
	{ "-bi", { "sendmail", "-bi", NULL }, SENDMAIL_MODE_NEWALIASES, 0, 0, 0,
	  NULL, NULL, NULL, { NULL } },
	{ "--version", { "sendmail", "--version", NULL }, SENDMAIL_MODE_VERSION,
	  0, 0, 0, NULL, NULL, NULL, { NULL } },
	{ "-f \"\"", { "sendmail", "-f", "", "a@b", NULL }, SENDMAIL_MODE_SEND,
	  0, 0, 0, "", NULL, NULL, { "a@b", NULL } },
	/* git send-email: sendmail -i recipients, and with -f. */
	{ "git send-email -f", { "/usr/sbin/sendmail", "-i", "-f",
	  "dev@example.com", "a@b", "c@d", NULL }, SENDMAIL_MODE_SEND, 0, 1,
	  0, "dev@example.com", NULL, NULL, { "a@b", "c@d", NULL } },
	/* mail(1), bsd-mailx: -i -- rcpt, with -f, with -v. */
	{ "mailx", { "/usr/sbin/sendmail", "-i", "--", "ops@x", NULL },
	  SENDMAIL_MODE_SEND, 0, 1, 0, NULL, NULL, NULL, { "ops@x", NULL } },
	{ "mailx -f", { "sendmail", "-i", "-f", "me@x", "--", "ops@x", NULL },
	  SENDMAIL_MODE_SEND, 0, 1, 0, "me@x", NULL, NULL, { "ops@x", NULL } },
	{ "mailx -v", { "sendmail", "-i", "-v", "--", "ops@x", NULL },
	  SENDMAIL_MODE_SEND, 0, 1, 1, NULL, NULL, NULL, { "ops@x", NULL } },
	/* logwatch; Python and shell scripts. */
	{ "logwatch", { "/usr/sbin/sendmail", "-t", NULL }, SENDMAIL_MODE_SEND,
	  1, 0, 0, NULL, NULL, NULL, { NULL } },
	{ "script -t -oi", { "sendmail", "-t", "-oi", NULL }, SENDMAIL_MODE_SEND,
	  1, 1, 0, NULL, NULL, NULL, { NULL } },
	{ "script -bm", { "sendmail", "-bm", "user", NULL }, SENDMAIL_MODE_SEND,
	  0, 0, 0, NULL, NULL, NULL, { "user", NULL } },
	/* Grouped letters, as getopt(3) takes them. */
	{ "-ti", { "sendmail", "-ti", NULL }, SENDMAIL_MODE_SEND, 1, 1, 0, NULL,
	  NULL, NULL, { NULL } },
	{ "-tvfa@b", { "sendmail", "-tvfa@b", NULL }, SENDMAIL_MODE_SEND, 1, 0,
	  1, "a@b", NULL, NULL, { NULL } },
	{ "-it -f next", { "sendmail", "-itf", "s@x", NULL }, SENDMAIL_MODE_SEND,
	  1, 1, 0, "s@x", NULL, NULL, { NULL } },
	/* -f forms: angle brackets and a name around the address. */
	{ "-f <a@b>", { "sendmail", "-f", "<a@b>", "x@y", NULL },
	  SENDMAIL_MODE_SEND, 0, 0, 0, "a@b", NULL, NULL, { "x@y", NULL } },
	{ "-f Name <a@b>", { "sendmail", "-f", "App Name <a@b>", "x@y", NULL },
	  SENDMAIL_MODE_SEND, 0, 0, 0, "a@b", NULL, NULL, { "x@y", NULL } },
	{ "-f <>", { "sendmail", "-f<>", "x@y", NULL }, SENDMAIL_MODE_SEND, 0, 0,
	  0, "", NULL, NULL, { "x@y", NULL } },
	{ "-F \"\"", { "sendmail", "-F", "", "x@y", NULL }, SENDMAIL_MODE_SEND,
	  0, 0, 0, NULL, NULL, NULL, { "x@y", NULL } },
	{ "-F tab", { "sendmail", "-F", "A\tB", "x@y", NULL },
	  SENDMAIL_MODE_SEND, 0, 0, 0, NULL, "A\tB", NULL, { "x@y", NULL } },
	/* The modes. */
	{ "-bs", { "sendmail", "-bs", NULL }, SENDMAIL_MODE_SMTP, 0, 0, 0, NULL,
	  NULL, NULL, { NULL } },
	{ "-bs -t ignored", { "sendmail", "-bs", "-t", "-i", NULL },
	  SENDMAIL_MODE_SMTP, 1, 1, 0, NULL, NULL, NULL, { NULL } },
	{ "-bp -v", { "sendmail", "-bp", "-v", NULL }, SENDMAIL_MODE_MAILQ, 0,
	  0, 1, NULL, NULL, NULL, { NULL } },
	{ "-q", { "sendmail", "-q", NULL }, SENDMAIL_MODE_FLUSH, 0, 0, 0, NULL,
	  NULL, NULL, { NULL } },
	{ "-q15m", { "sendmail", "-q15m", NULL }, SENDMAIL_MODE_FLUSH, 0, 0, 0,
	  NULL, NULL, NULL, { NULL } },
	{ "-q1h30m", { "sendmail", "-q1h30m", NULL }, SENDMAIL_MODE_FLUSH, 0, 0,
	  0, NULL, NULL, NULL, { NULL } },
	{ "-q30", { "sendmail", "-q30", NULL }, SENDMAIL_MODE_FLUSH, 0, 0, 0,
	  NULL, NULL, NULL, { NULL } },
	{ "-qR", { "sendmail", "-qRexample.com", NULL }, SENDMAIL_MODE_FLUSH, 0,
	  0, 0, NULL, NULL, NULL, { NULL } },
	{ "-bv -q15m: the last mode counts", { "sendmail", "-bv", "-q15m", NULL },
	  SENDMAIL_MODE_FLUSH, 0, 0, 0, NULL, NULL, NULL, { NULL } },
	{ "-bv", { "sendmail", "-bv", "a@b", "root", NULL },
	  SENDMAIL_MODE_VERIFY, 0, 0, 0, NULL, NULL, NULL,
	  { "a@b", "root", NULL } },
	{ "-bv -t", { "sendmail", "-bv", "-t", NULL }, SENDMAIL_MODE_VERIFY, 1,
	  0, 0, NULL, NULL, NULL, { NULL } },
	{ "-I", { "sendmail", "-I", NULL }, SENDMAIL_MODE_NEWALIASES, 0, 0, 0,
	  NULL, NULL, NULL, { NULL } },
	{ "newaliases with words", { "newaliases", "x", NULL },
	  SENDMAIL_MODE_NEWALIASES, 0, 0, 0, NULL, NULL, NULL, { "x", NULL } },
	/* Compatibility options, each with its value, accepted. */
	{ "-N never", { "sendmail", "-N", "never", "a@b", NULL },
	  SENDMAIL_MODE_SEND, 0, 0, 0, NULL, NULL, NULL, { "a@b", NULL } },
	{ "-N list", { "sendmail", "-Nsuccess,DELAY,failure", "a@b", NULL },
	  SENDMAIL_MODE_SEND, 0, 0, 0, NULL, NULL, NULL, { "a@b", NULL } },
	{ "-R hdrs", { "sendmail", "-R", "hdrs", "a@b", NULL },
	  SENDMAIL_MODE_SEND, 0, 0, 0, NULL, NULL, NULL, { "a@b", NULL } },
	{ "-Rfull", { "sendmail", "-Rfull", "a@b", NULL }, SENDMAIL_MODE_SEND,
	  0, 0, 0, NULL, NULL, NULL, { "a@b", NULL } },
	{ "-X", { "sendmail", "-X", "/tmp/smtp.log", "a@b", NULL },
	  SENDMAIL_MODE_SEND, 0, 0, 0, NULL, NULL, NULL, { "a@b", NULL } },
	{ "-O", { "sendmail", "-O", "DeliveryMode=b", "a@b", NULL },
	  SENDMAIL_MODE_SEND, 0, 0, 0, NULL, NULL, NULL, { "a@b", NULL } },
	{ "-B 7bit", { "sendmail", "-B", "7bit", "-t", NULL },
	  SENDMAIL_MODE_SEND, 1, 0, 0, NULL, NULL, NULL, { NULL } },
	{ "sendmail -o options", { "sendmail", "-odq", "-oeq", "-oew", "-o7",
	  "-o8", "-oA/etc/aliases", "-odd", "a@b", NULL }, SENDMAIL_MODE_SEND,
	  0, 0, 0, NULL, NULL, NULL, { "a@b", NULL } },
	{ "-G -U -n -m -Ac -Am", { "sendmail", "-G", "-U", "-n", "-m", "-Ac",
	  "-Am", "a@b", NULL }, SENDMAIL_MODE_SEND, 0, 0, 0, NULL, NULL, NULL,
	  { "a@b", NULL } },
	{ "-h -L -V", { "sendmail", "-h", "17", "-L", "label", "-V", "envid",
	  "a@b", NULL }, SENDMAIL_MODE_SEND, 0, 0, 0, NULL, NULL, NULL,
	  { "a@b", NULL } },
	{ "-C with -bp", { "mailq", "-C", "/etc/other.conf", NULL },
	  SENDMAIL_MODE_MAILQ, 0, 0, 0, NULL, NULL, "/etc/other.conf",
	  { NULL } },
	{ "a lone dash ends the options", { "sendmail", "-i", "-", "a@b",
	  NULL }, SENDMAIL_MODE_SEND, 0, 1, 0, NULL, NULL, NULL,
	  { "-", "a@b", NULL } },
};

static int
argc_of(const char *const *argv)
{
	int n = 0;

	while (argv[n] != NULL)
		n++;
	return n;
}

START_TEST(test_ok)
{
	struct sendmail_args a;
	int argc = argc_of(ok_cases[_i].argv);
	size_t n = 0;
	const char *who = ok_cases[_i].who;

	ck_assert_msg(sendmail_args_parse(argc,
	    (char *const *)ok_cases[_i].argv, &a) == 0, "%s: %s", who, a.error);
	ck_assert_msg(a.mode == ok_cases[_i].mode, "%s: mode %d", who, a.mode);
	ck_assert_msg(a.extract == ok_cases[_i].extract, "%s: extract", who);
	ck_assert_msg(a.ignore_dots == ok_cases[_i].ignore_dots,
	    "%s: ignore_dots", who);
	ck_assert_msg(a.verbose == ok_cases[_i].verbose, "%s: verbose", who);
	ck_assert_pstr_eq(a.sender, ok_cases[_i].sender);
	ck_assert_pstr_eq(a.fullname, ok_cases[_i].fullname);
	ck_assert_pstr_eq(a.config, ok_cases[_i].config);
	while (ok_cases[_i].rcpts[n] != NULL)
		n++;
	ck_assert_msg(a.nrcpt == n, "%s: %zu recipients, want %zu", who,
	    a.nrcpt, n);
	for (size_t i = 0; i < n; i++)
		ck_assert_str_eq(a.rcpts[i], ok_cases[_i].rcpts[i]);
	/* The recipients are argv's own strings, not copies. */
	if (n > 0)
		ck_assert_ptr_eq(a.rcpts + n, ok_cases[_i].argv + argc);
	ck_assert_str_eq(a.error, "");
}
END_TEST

static const struct {
	const char	*argv[MAXARGS];
	const char	*error;		/* the message must contain this */
} bad_cases[] = {
	{ { "sendmail", "-Z", "a@b", NULL }, "-Z" },
	{ { "sendmail", "-t", "-Zfoo", NULL }, "-Zfoo" },
	{ { "sendmail", "-tZ", NULL }, "unknown option -tZ" },
	{ { "sendmail", "-bt", NULL }, "unknown option -bt" },
	{ { "sendmail", "-bmt", NULL }, "unknown option -bmt" },
	{ { "sendmail", "-d0.1", "-bv", NULL }, "unknown option -d0.1" },
	{ { "sendmail", "--help", NULL }, "unknown option --help" },
	{ { "sendmail", "-oX", "a@b", NULL }, "unknown option -oX" },
	{ { "sendmail", "-bd", NULL }, "start sesrelayd" },
	{ { "sendmail", "-bd", "-q15m", NULL }, "-bd" },
	{ { "sendmail", "-q15x", NULL }, "-q15x" },
	{ { "sendmail", "-qq", NULL }, "-qq" },
	{ { "sendmail", "-qR", NULL }, "-qR" },
	{ { "sendmail", "-q", "a@b", NULL }, "takes no recipients" },
	{ { "sendmail", "-bs", "a@b", NULL }, "-bs takes no recipients" },
	{ { "mailq", "a@b", NULL }, "-bp takes no recipients" },
	{ { "sendmail", "-bv", NULL }, "no recipients" },
	{ { "sendmail", "-B", "BINARYMIME", "a@b", NULL }, "-B BINARYMIME" },
	{ { "sendmail", "-N", "sometimes", "a@b", NULL }, "-N sometimes" },
	{ { "sendmail", "-N", "success,,delay", "a@b", NULL }, "-N" },
	{ { "sendmail", "-N", "", "a@b", NULL }, "-N" },
	{ { "sendmail", "-R", "body", "a@b", NULL }, "-R body" },
	{ { "sendmail", "-h", "x1", "a@b", NULL }, "x1" },
	{ { "sendmail", "-X", NULL }, "-X needs a value" },
	{ { "sendmail", "-O", NULL }, "-O needs a value" },
	{ { "sendmail", "-N", NULL }, "-N needs a value" },
	{ { "sendmail", "-f", "a@b\r\nRCPT TO:<x@y>", "c@d", NULL }, "sender" },
	{ { "sendmail", "-f", "a>b@c", "c@d", NULL }, "not an address" },
	{ { "sendmail", "-F", "Name\nBcc: x@y", "c@d", NULL }, "full name" },
	{ { "sendmail", "-f", NULL }, "-f" },
	{ { "sendmail", "-t", "-F", NULL }, "-F" },
	{ { "sendmail", "-C", NULL }, "-C" },
	{ { "sendmail", "-i", NULL }, "no recipients" },
	{ { "sendmail", NULL }, "no recipients" },
	{ { "sendmail", "-f", "a@b", "--", NULL }, "no recipients" },
	{ { "sendmail", "-bm", NULL }, "no recipients" },
};

START_TEST(test_bad)
{
	struct sendmail_args a;
	const char *const *argv = bad_cases[_i].argv;

	ck_assert_int_eq(sendmail_args_parse(argc_of(argv), (char *const *)argv,
	    &a), -1);
	ck_assert_msg(strstr(a.error, bad_cases[_i].error) != NULL,
	    "case %d: \"%s\" does not name \"%s\"", _i, a.error,
	    bad_cases[_i].error);
}
END_TEST

START_TEST(test_unknown_names_option)
{
	static const char *const argv[] = { "sendmail", "-Z", "a@b", NULL };
	struct sendmail_args a;

	ck_assert_int_eq(sendmail_args_parse(3, (char *const *)argv, &a), -1);
	ck_assert_str_eq(a.error, "unknown option -Z");
}
END_TEST

/*
 * Regression (fixed): sendmail_args.c:84,123-124 (sendmail_args_parse): with argc == 0
 * (execve with an empty argv, which Linux still allows) the option loop
 * starts at i = 1, so nrcpt = (size_t)(0 - 1) = SIZE_MAX and rcpts =
 * argv + 1, past argv's NULL into the environment; the check "no
 * recipients" passes and sesrelay-sendmail then reads envp (and beyond)
 * as recipients.  Fix: start at i = argc > 0 ? 1 : 0 (or clamp i to
 * argc before computing nrcpt).
 */
START_TEST(test_no_argv)
{
	static const char *const argv[] = { NULL };
	struct sendmail_args a;

	/* argc 0: the default name, sendmail, and so no recipients. */
	ck_assert_int_eq(sendmail_args_parse(0, (char *const *)argv, &a), -1);
	ck_assert_ptr_nonnull(strstr(a.error, "no recipients"));
}
END_TEST

/* ---- what -t and -F do to the header ---- */

static const struct {
	const char	*line;
	int		 after_field;
	enum sendmail_line want;
} line_cases[] = {
	{ "Subject: x\n", 0, SENDMAIL_LINE_FIELD },
	{ "X-Empty:\r\n", 0, SENDMAIL_LINE_FIELD },
	{ "Subject: no line end", 0, SENDMAIL_LINE_FIELD },
	{ " folded\n", 1, SENDMAIL_LINE_CONTINUATION },
	{ "\tfolded\n", 1, SENDMAIL_LINE_CONTINUATION },
	{ " not folded: nothing before\n", 0, SENDMAIL_LINE_BODY },
	{ "\n", 1, SENDMAIL_LINE_END },
	{ "\r\n", 1, SENDMAIL_LINE_END },
	{ "hello world\n", 0, SENDMAIL_LINE_BODY },
	{ "From sender@x Sun Nov 22 06:00:00 2026\n", 0, SENDMAIL_LINE_BODY },
	{ ": no name\n", 0, SENDMAIL_LINE_BODY },
	{ "Bad Name: x\n", 0, SENDMAIL_LINE_BODY },
	{ "\r", 0, SENDMAIL_LINE_BODY },
	{ "", 0, SENDMAIL_LINE_BODY },
};

START_TEST(test_line)
{
	const char *l = line_cases[_i].line;

	ck_assert_msg(sendmail_args_line(l, strlen(l),
	    line_cases[_i].after_field) == line_cases[_i].want,
	    "\"%s\": not %d", l, line_cases[_i].want);
}
END_TEST

/* Where the fields end, as sesrelay-sendmail's reader finds it. */
static size_t
fields_of(const char *m)
{
	size_t off = 0;
	int after = 0;

	while (m[off] != '\0') {
		size_t n = strcspn(m + off, "\n");
		enum sendmail_line k;

		n += m[off + n] == '\n';
		k = sendmail_args_line(m + off, n, after);
		if (k == SENDMAIL_LINE_END || k == SENDMAIL_LINE_BODY)
			break;
		after = 1;
		off += n;
	}
	return off;
}

static const struct {
	const char	*who;
	int		 extract;
	const char	*fullname;
	const char	*given;		/* a recipient from the command line */
	const char	*in;
	const char	*out;
	const char	*rcpts[6];
} header_cases[] = {
	{ "plain, untouched", 0, NULL, "a@b", "Subject: s\n\nbody\n",
	  "Subject: s\n\nbody\n", { "a@b" } },
	{ "-t", 1, NULL, NULL, "To: a@b\nSubject: s\n\nbody",
	  "To: a@b\nSubject: s\n\nbody", { "a@b" } },
	{ "-t, command line recipients are added", 1, NULL, "x@y",
	  "To: a@b\n\n", "To: a@b\n\n", { "x@y", "a@b" } },
	{ "groups", 1, NULL, NULL,
	  "To: Team: a@b, \"C D\" <c@d>;, e@f\nCc: undisclosed-recipients:;\n\n",
	  "To: Team: a@b, \"C D\" <c@d>;, e@f\nCc: undisclosed-recipients:;\n\n",
	  { "a@b", "c@d", "e@f" } },
	{ "folded", 1, NULL, NULL, "To: a@b,\n c@d\nCc: e@f,\n\tg@h\nX: y\n\n",
	  "To: a@b,\n c@d\nCc: e@f,\n\tg@h\nX: y\n\n",
	  { "a@b", "c@d", "e@f", "g@h" } },
	{ "comments", 1, NULL, NULL,
	  "To: a@b (Ann, admin), \"Doe, J\" <j@d> (x (nested, y))\n\n",
	  "To: a@b (Ann, admin), \"Doe, J\" <j@d> (x (nested, y))\n\n",
	  { "a@b", "j@d" } },
	{ "encoded words", 1, NULL, NULL,
	  "To: =?UTF-8?Q?J=C3=B6rg_M=2C?= <j@x>,\n =?ISO-8859-1?B?SvZyZw==?= "
	  "<k@x>\n\n", "To: =?UTF-8?Q?J=C3=B6rg_M=2C?= <j@x>,\n "
	  "=?ISO-8859-1?B?SvZyZw==?= <k@x>\n\n", { "j@x", "k@x" } },
	{ "Bcc removed, folded too", 1, NULL, NULL,
	  "To: a@b\nBcc: s@t,\n u@v\nSubject: x\n\nBcc: in the body\n",
	  "To: a@b\nSubject: x\n\nBcc: in the body\n",
	  { "a@b", "s@t", "u@v" } },
	{ "BCC in any case, CRLF", 1, NULL, NULL,
	  "to: a@b\r\nbCC: c@d\r\nCC: e@f\r\n\r\nbody\r\n",
	  "to: a@b\r\nCC: e@f\r\n\r\nbody\r\n", { "a@b", "c@d", "e@f" } },
	{ "Bcc only", 1, NULL, NULL, "Bcc: h@x\nSubject: s\n\n",
	  "Subject: s\n\n", { "h@x" } },
	{ "without -t, Bcc stays", 0, NULL, "a@b", "Bcc: h@x\n\n",
	  "Bcc: h@x\n\n", { "a@b" } },
	{ "Resent-To is not read", 1, NULL, NULL, "Resent-To: r@x\nTo: a@b\n\n",
	  "Resent-To: r@x\nTo: a@b\n\n", { "a@b" } },
	{ "-F adds From:", 0, "Cron Daemon", "root", "Subject: s\n\nb",
	  "Subject: s\nFrom: Cron Daemon <me>\n\nb", { "root" } },
	{ "-F adds From: before CRLF end", 0, "N", "a@b",
	  "Subject: s\r\n\r\nb\r\n", "Subject: s\r\nFrom: N <me>\n\r\nb\r\n",
	  { "a@b" } },
	{ "-F, From: there", 0, "Cron Daemon", "root",
	  "from: root (Cron Daemon)\n\nb", "from: root (Cron Daemon)\n\nb",
	  { "root" } },
	{ "-F, quoted", 0, "Doe, John", "a@b", "\nb\n",
	  "From: \"Doe, John\" <me>\n\nb\n", { "a@b" } },
	{ "-F and -t", 1, "N", NULL, "To: a@b\nBcc: c@d\n\nb\n",
	  "To: a@b\nFrom: N <me>\n\nb\n", { "a@b", "c@d" } },
	{ "-F, no header at all", 0, "N", "a@b", "hello\n",
	  "From: N <me>\n\nhello\n", { "a@b" } },
	{ "-F, empty message", 0, "N", "a@b", "", "From: N <me>\n",
	  { "a@b" } },
	{ "-F, header without its line end", 0, "N", "a@b", "Subject: s",
	  "Subject: s\nFrom: N <me>\n", { "a@b" } },
	{ "a body right after the fields gets its empty line", 0, NULL, "a@b",
	  "Subject: s\nhello there\n", "Subject: s\n\nhello there\n",
	  { "a@b" } },
	{ "no header: untouched", 0, NULL, "a@b", "hello\n\nthere\n",
	  "hello\n\nthere\n", { "a@b" } },
	{ "a continuation first is body", 0, NULL, "a@b", " x\nTo: c@d\n\n",
	  " x\nTo: c@d\n\n", { "a@b" } },
	{ "-t, nothing found", 1, NULL, NULL, "Subject: s\n\nTo: a@b\n",
	  "Subject: s\n\nTo: a@b\n", { NULL } },
};

START_TEST(test_header)
{
	const char *in = header_cases[_i].in, *who = header_cases[_i].who;
	struct addrlist rcpts = { NULL, 0 };
	char *out;
	size_t outlen, n = 0;

	if (header_cases[_i].given != NULL)
		addrlist_add(&rcpts, header_cases[_i].given);
	ck_assert_int_eq(sendmail_args_header(header_cases[_i].extract,
	    header_cases[_i].fullname, "me", in, fields_of(in), strlen(in),
	    &rcpts, &out, &outlen), 0);
	ck_assert_msg(outlen == strlen(header_cases[_i].out) &&
	    memcmp(out, header_cases[_i].out, outlen) == 0,
	    "%s: got \"%s\"", who, out);
	ck_assert_msg(out[outlen] == '\0', "%s: not NUL-terminated", who);
	while (n < 6 && header_cases[_i].rcpts[n] != NULL)
		n++;
	ck_assert_msg(rcpts.n == n, "%s: %zu recipients, want %zu", who,
	    rcpts.n, n);
	for (size_t i = 0; i < n; i++)
		ck_assert_str_eq(rcpts.v[i], header_cases[_i].rcpts[i]);
	addrlist_free(&rcpts);
	free(out);
}
END_TEST

static Suite *
sendmail_args_suite(void)
{
	Suite *s = suite_create("sendmail_args");
	TCase *tc = tcase_create("parse");


	tcase_add_loop_test(tc, test_ok, 0,
	    sizeof(ok_cases) / sizeof(ok_cases[0]));
	tcase_add_loop_test(tc, test_bad, 0,
	    sizeof(bad_cases) / sizeof(bad_cases[0]));
	tcase_add_test(tc, test_unknown_names_option);
	suite_add_tcase(s, tc);

	tc = tcase_create("header");
	tcase_add_loop_test(tc, test_line, 0,
	    sizeof(line_cases) / sizeof(line_cases[0]));
	tcase_add_loop_test(tc, test_header, 0,
	    sizeof(header_cases) / sizeof(header_cases[0]));
	suite_add_tcase(s, tc);

	/* Bugs found and fixed: each test keeps it fixed. */
	tc = tcase_create("regressions");
	tcase_add_test(tc, test_no_argv);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return fixture_run(sendmail_args_suite());
}
