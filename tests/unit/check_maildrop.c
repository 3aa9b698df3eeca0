/*
 * check_maildrop.c: the maildrop file (maildrop.c): maildrop_write and
 * maildrop_parse agree byte for byte; every truncation of a valid file
 * is refused or parsed to the same envelope; hostile files are refused;
 * a failed write leaves nothing behind; the privilege hooks are held
 * only around the steps that need them; the From: field for -F.
 */
#include "config.h"

#include <sys/stat.h>

#include <check.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "maildrop.h"
#include "fixture.h"

static char dir[] = "/tmp/check_maildrop.XXXXXX";

static void
setup(void)
{
	strcpy(dir, "/tmp/check_maildrop.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void
teardown(void)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	char path[512];

	while (d != NULL && (de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		unlink(path);
	}
	if (d != NULL)
		closedir(d);
	rmdir(dir);
	maildrop_set_privilege(NULL, NULL);
}

/* The names in dir, how many, the first in first (may be NULL). */
static int
list_dir(char *first, size_t len)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int n = 0;

	ck_assert_ptr_nonnull(d);
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		if (n++ == 0 && first != NULL)
			snprintf(first, len, "%.*s", (int)len - 1, de->d_name);
	}
	closedir(d);
	return n;
}

/* The whole of dir/name, malloc'd, exactly *len bytes (no NUL after). */
static char *
slurp(const char *name, size_t *len)
{
	char path[512], *buf;
	struct stat st;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	ck_assert_int_ne(fd = open(path, O_RDONLY), -1);
	ck_assert_int_eq(fstat(fd, &st), 0);
	*len = (size_t)st.st_size;
	buf = malloc(*len ? *len : 1);
	ck_assert_int_eq(read(fd, buf, *len), (ssize_t)*len);
	close(fd);
	return buf;
}

/* ---- round trip ---- */

static char rcpt_long[MAILDROP_VALUE_MAX + 1];

static const struct {
	const char	*from;
	const char	*fullname;
	const char	*rcpts[4];
	int		 extract;
	const char	*hdr;
	const char	*body;	/* NULL: no stream */
} trips[] = {
	{ "", NULL, { "a@b" }, 0, "Subject: s\n\n", "body\n" },
	{ "app@example.com", "Cron Daemon", { "root", "x@y" }, 0,
	  "From: x\r\n\r\n", "crlf\r\n.\r\nno final newline" },
	{ "", "J\xc3\xb6rg\tD", { NULL }, 1, "To: a@b\nBcc: c@d\n\n", "" },
	{ "a@b", NULL, { "c@d" }, 1, "", NULL },
	{ "\"quoted local\"@x", NULL, { "<odd>@x", rcpt_long }, 0, "\n",
	  "\x80\xff 8-bit\n" },
};

static FILE *
stream(const char *s)
{
	FILE *fp = s == NULL || *s == '\0' ? fopen("/dev/null", "r") :
	    fmemopen((void *)s, strlen(s), "r");

	ck_assert_ptr_nonnull(fp);
	return fp;
}

START_TEST(test_round_trip)
{
	struct maildrop_envelope env;
	char name[MAILDROP_NAME_LEN], listed[256], *buf;
	const char *const *rcpts = trips[_i].rcpts;
	size_t n = 0, len, hlen = strlen(trips[_i].hdr);
	FILE *in = trips[_i].body ? stream(trips[_i].body) : NULL;
	struct stat st;

	memset(rcpt_long, 'r', sizeof(rcpt_long) - 1);
	while (n < 4 && rcpts[n] != NULL)
		n++;
	umask(077);	/* the file is 0644 all the same */
	ck_assert_int_eq(maildrop_write(dir, trips[_i].from,
	    trips[_i].fullname, (char *const *)rcpts, n, trips[_i].extract,
	    trips[_i].hdr, hlen, in, 1 << 20, name, sizeof(name)), 0);
	umask(022);
	if (in != NULL)
		fclose(in);
	/* One file, named "<16 hex>", nothing else left. */
	ck_assert_int_eq(list_dir(listed, sizeof(listed)), 1);
	ck_assert_str_eq(listed, name);
	ck_assert_uint_eq(strlen(name), 16);
	for (size_t i = 0; i < 16; i++)
		ck_assert(isxdigit((unsigned char)name[i]) &&
		    !isupper((unsigned char)name[i]));
	{
		char path[512];

		snprintf(path, sizeof(path), "%s/%s", dir, name);
		ck_assert_int_eq(stat(path, &st), 0);
		ck_assert_int_eq(st.st_mode & 07777, 0644);
	}

	buf = slurp(name, &len);
	ck_assert_int_eq(maildrop_parse(buf, len, &env), 0);
	ck_assert_str_eq(env.from, trips[_i].from);
	ck_assert_pstr_eq(env.fullname, trips[_i].fullname);
	ck_assert_int_eq(env.extract, trips[_i].extract);
	ck_assert_uint_eq(env.nrcpt, n);
	for (size_t i = 0; i < n; i++)
		ck_assert_str_eq(env.rcpts[i], rcpts[i]);
	/* The message exactly as given: header, then the stream. */
	ck_assert_uint_eq(len - env.body_off, hlen +
	    (trips[_i].body ? strlen(trips[_i].body) : 0));
	ck_assert(memcmp(buf + env.body_off, trips[_i].hdr, hlen) == 0);
	if (trips[_i].body)
		ck_assert(memcmp(buf + env.body_off + hlen, trips[_i].body,
		    strlen(trips[_i].body)) == 0);

	/*
	 * Every truncation: before the end of the envelope it does not
	 * parse; after it, the same envelope.  Exactly sized copies, so
	 * ASan sees a read past the end.
	 */
	for (size_t k = 0; k <= len; k++) {
		struct maildrop_envelope e2;
		char *cut = malloc(k ? k : 1);
		int r;

		memcpy(cut, buf, k);
		r = maildrop_parse(cut, k, &e2);
		if (k < env.body_off) {
			ck_assert_msg(r == -1, "a cut at %zu of %zu parses", k,
			    env.body_off);
			ck_assert_ptr_null(e2.from);
			ck_assert_ptr_null(e2.rcpts);
		} else {
			ck_assert_int_eq(r, 0);
			ck_assert_uint_eq(e2.body_off, env.body_off);
			ck_assert_str_eq(e2.from, env.from);
			ck_assert_uint_eq(e2.nrcpt, env.nrcpt);
			maildrop_envelope_free(&e2);
		}
		free(cut);
	}
	maildrop_envelope_free(&env);
	ck_assert_ptr_null(env.from);
	free(buf);
}
END_TEST

/* ---- writes that fail leave nothing ---- */

START_TEST(test_too_big)
{
	char *rcpts[] = { "a@b" };
	FILE *in = stream("12345678\n");	/* 9 bytes, 10 as CRLF */

	/* "Subject: x\n" is 12 stored: 12 + 10 = 22. */
	ck_assert_int_eq(maildrop_write(dir, "", NULL, rcpts, 1, 0,
	    "Subject: x\n", 11, in, 21, NULL, 0), -1);
	ck_assert_int_eq(errno, EFBIG);
	ck_assert_int_eq(list_dir(NULL, 0), 0);
	fclose(in);
	in = stream("12345678\n");
	ck_assert_int_eq(maildrop_write(dir, "", NULL, rcpts, 1, 0,
	    "Subject: x\n", 11, in, 22, NULL, 0), 0);
	ck_assert_int_eq(list_dir(NULL, 0), 1);
	fclose(in);
}
END_TEST

START_TEST(test_header_too_big)
{
	char *rcpts[] = { "a@b" };

	ck_assert_int_eq(maildrop_write(dir, "", NULL, rcpts, 1, 0,
	    "Subject: x\r\n", 12, NULL, 11, NULL, 0), -1);
	ck_assert_int_eq(errno, EFBIG);
	ck_assert_int_eq(list_dir(NULL, 0), 0);
}
END_TEST

static ssize_t
failing_read(void *cookie, char *buf, size_t size)
{
	int *calls = cookie;

	if ((*calls)++ == 0) {
		memset(buf, 'x', size < 100 ? size : 100);
		return size < 100 ? (ssize_t)size : 100;
	}
	errno = EIO;
	return -1;
}

START_TEST(test_read_error)
{
	static const cookie_io_functions_t io = { failing_read, NULL, NULL,
	    NULL };
	char *rcpts[] = { "a@b" };
	int calls = 0;
	FILE *in = fopencookie(&calls, "r", io);

	ck_assert_int_eq(maildrop_write(dir, "", NULL, rcpts, 1, 0, "", 0, in,
	    1 << 20, NULL, 0), -1);
	ck_assert_int_eq(errno, EIO);
	ck_assert_int_eq(list_dir(NULL, 0), 0);
	fclose(in);
}
END_TEST

START_TEST(test_no_dir)
{
	char *rcpts[] = { "a@b" }, missing[600];

	snprintf(missing, sizeof(missing), "%s/none", dir);
	ck_assert_int_eq(maildrop_write(missing, "", NULL, rcpts, 1, 0, "", 0,
	    NULL, 1 << 20, NULL, 0), -1);
	ck_assert_int_eq(errno, ENOENT);
}
END_TEST

/* Fields that break the format are refused before anything is made. */
static const struct {
	const char	*from, *fullname, *rcpt;
	int		 extract;
} invalid[] = {
	{ "a@b\nrcpt evil@x", NULL, "c@d", 0 },
	{ "a@b\r", NULL, "c@d", 0 },
	{ "", "Name\nBcc: x", "c@d", 0 },
	{ "", "", "c@d", 0 },
	{ "", NULL, "", 0 },
	{ "", NULL, "c\r@d", 0 },
	{ "", NULL, "c\x7f@d", 0 },
	{ "", NULL, NULL, 0 },	/* no recipient, no -t */
	{ NULL, NULL, "c@d", 0 },
	{ "", NULL, "LONG", 0 },
};

START_TEST(test_invalid_fields)
{
	char long_rcpt[MAILDROP_VALUE_MAX + 2], *rcpts[1];
	const char *r = invalid[_i].rcpt;

	memset(long_rcpt, 'x', sizeof(long_rcpt) - 1);
	long_rcpt[sizeof(long_rcpt) - 1] = '\0';
	rcpts[0] = (char *)(r && strcmp(r, "LONG") == 0 ? long_rcpt : r);
	ck_assert_int_eq(maildrop_write(dir, invalid[_i].from,
	    invalid[_i].fullname, rcpts, r ? 1 : 0, invalid[_i].extract,
	    "", 0, NULL, 1 << 20, NULL, 0), -1);
	ck_assert_int_eq(errno, EINVAL);
	ck_assert_int_eq(list_dir(NULL, 0), 0);
}
END_TEST

/* ---- privilege: held only around what needs it ---- */

static int raised, lowered, held, max_held;

static int
hook_raise(void)
{
	raised++;
	held++;
	if (held > max_held)
		max_held = held;
	return 0;
}

static void
hook_lower(void)
{
	lowered++;
	held--;
}

static int
hook_raise_fails(void)
{
	errno = EPERM;
	return -1;
}

START_TEST(test_privilege_hooks)
{
	char *rcpts[] = { "a@b" };
	FILE *in = stream("body\n");

	raised = lowered = held = max_held = 0;
	maildrop_set_privilege(hook_raise, hook_lower);
	ck_assert_int_eq(maildrop_write(dir, "", NULL, rcpts, 1, 0, "", 0, in,
	    1 << 20, NULL, 0), 0);
	/* Create, then rename: twice, balanced, never nested. */
	ck_assert_int_eq(raised, 2);
	ck_assert_int_eq(lowered, 2);
	ck_assert_int_eq(max_held, 1);
	fclose(in);

	/* A failure after the create removes the file, with the group. */
	raised = lowered = held = max_held = 0;
	in = stream("0123456789\n");
	ck_assert_int_eq(maildrop_write(dir, "", NULL, rcpts, 1, 0, "", 0, in,
	    5, NULL, 0), -1);
	ck_assert_int_eq(raised, 2);
	ck_assert_int_eq(lowered, 2);
	ck_assert_int_eq(list_dir(NULL, 0), 1);
	fclose(in);

	maildrop_set_privilege(hook_raise_fails, hook_lower);
	ck_assert_int_eq(maildrop_write(dir, "", NULL, rcpts, 1, 0, "", 0, NULL,
	    1 << 20, NULL, 0), -1);
	ck_assert_int_eq(errno, EPERM);
	ck_assert_int_eq(list_dir(NULL, 0), 1);
}
END_TEST

/* ---- parsing hostile files ---- */

#define M MAILDROP_MAGIC "\n"
#define WITH_NUL(why, s)	{ why, s, sizeof(s) - 1 }

static const struct {
	const char	*why;
	const char	*text;
	size_t		 len;	/* 0: strlen */
} hostile[] = {
	{ "empty", "", 0 },
	{ "no magic", "from a@b\nrcpt c@d\n\n", 0 },
	{ "another version", "SESRELAY-DROP 2\nfrom \nrcpt c@d\n\n", 0 },
	{ "magic with a space", "SESRELAY-DROP 1 \nfrom \nrcpt c@d\n\n", 0 },
	{ "magic with CR", "SESRELAY-DROP 1\r\nfrom \nrcpt c@d\n\n", 0 },
	{ "blank line first", "\n" M "from \nrcpt c@d\n\n", 0 },
	{ "no from", M "rcpt c@d\n\n", 0 },
	{ "from without its space", M "from\nrcpt c@d\n\n", 0 },
	{ "two froms", M "from \nfrom a@b\nrcpt c@d\n\n", 0 },
	WITH_NUL("NUL in the sender", M "from a\0b\nrcpt c@d\n\n"),
	WITH_NUL("NUL in a recipient", M "from \nrcpt c\0d\n\n"),
	WITH_NUL("NUL for the newline", M "from \nrcpt c@d\0\n"),
	{ "CR in a recipient", M "from \nrcpt c@d\r\n\n", 0 },
	{ "CR in the sender", M "from a@b\r\nrcpt c@d\n\n", 0 },
	{ "CR in the name", M "from \nfullname A\rB\nrcpt c@d\n\n", 0 },
	{ "ESC in the name", M "from \nfullname A\x1b[2JB\nrcpt c@d\n\n", 0 },
	{ "empty recipient", M "from \nrcpt \n\n", 0 },
	{ "empty name", M "from \nfullname \nrcpt c@d\n\n", 0 },
	{ "two names", M "from \nfullname A\nfullname B\nrcpt c@d\n\n", 0 },
	{ "name after rcpt", M "from \nrcpt c@d\nfullname A\n\n", 0 },
	{ "rcpt after extract", M "from \nextract\nrcpt c@d\n\n", 0 },
	{ "extract twice", M "from \nextract\nextract\n\n", 0 },
	{ "extract with a value", M "from \nextract yes\n\n", 0 },
	{ "no recipient, no extract", M "from \n\n", 0 },
	{ "an extra field", M "from \nrcpt c@d\nsize 12\n\n", 0 },
	{ "an upper-case keyword", M "from \nRCPT c@d\n\n", 0 },
	{ "no empty line", M "from \nrcpt c@d\n", 0 },
	{ "CRLF empty line", M "from \nrcpt c@d\r\n\r\n", 0 },
	{ "cut in a line", M "from \nrcpt c@", 0 },
	{ "white space for the empty line", M "from \nrcpt c@d\n \n", 0 },
};

START_TEST(test_hostile)
{
	struct maildrop_envelope env;
	size_t len = hostile[_i].len ? hostile[_i].len :
	    strlen(hostile[_i].text);
	char *copy = malloc(len ? len : 1);

	memcpy(copy, hostile[_i].text, len);
	ck_assert_msg(maildrop_parse(copy, len, &env) == -1, "%s: parses",
	    hostile[_i].why);
	ck_assert_ptr_null(env.from);
	ck_assert_ptr_null(env.fullname);
	ck_assert_ptr_null(env.rcpts);
	ck_assert_uint_eq(env.nrcpt, 0);
	free(copy);
}
END_TEST

/* A line one byte too long is refused; the longest allowed is not. */
START_TEST(test_huge_lines)
{
	struct maildrop_envelope env;
	size_t vmax = MAILDROP_VALUE_MAX;
	char *buf = malloc(vmax + 100);
	int n;

	for (int over = 0; over <= 1; over++) {
		n = snprintf(buf, 100, M "from \nrcpt ");
		memset(buf + n, 'x', vmax + over);
		memcpy(buf + n + vmax + over, "\n\n", 2);
		ck_assert_int_eq(maildrop_parse(buf, n + vmax + over + 2, &env),
		    over ? -1 : 0);
		if (!over) {
			ck_assert_uint_eq(strlen(env.rcpts[0]), vmax);
			maildrop_envelope_free(&env);
		}
	}
	free(buf);
}
END_TEST

START_TEST(test_many_rcpts)
{
	struct maildrop_envelope env;
	char *buf = malloc(20 * 1000 + 100);
	size_t len = (size_t)sprintf(buf, M "from u@x\n");

	for (int i = 0; i < 1000; i++)
		len += (size_t)sprintf(buf + len, "rcpt r%d@x\n", i);
	len += (size_t)sprintf(buf + len, "extract\n\nmessage");
	ck_assert_int_eq(maildrop_parse(buf, len, &env), 0);
	ck_assert_uint_eq(env.nrcpt, 1000);
	ck_assert_str_eq(env.rcpts[999], "r999@x");
	ck_assert_int_eq(env.extract, 1);
	ck_assert_str_eq(buf + env.body_off, "message");
	maildrop_envelope_free(&env);
	free(buf);
}
END_TEST

/* ---- the From: field for -F ---- */

static const struct {
	const char	*name;
	const char	*want;
} from_cases[] = {
	{ "Cron Daemon", "From: Cron Daemon <root>\n" },
	{ "CronDaemon", "From: CronDaemon <root>\n" },
	{ "  padded\t", "From: padded <root>\n" },
	{ "Doe, John", "From: \"Doe, John\" <root>\n" },
	{ "John Q. Public", "From: \"John Q. Public\" <root>\n" },
	{ "a\"b\\c", "From: \"a\\\"b\\\\c\" <root>\n" },
	{ "(not a comment)", "From: \"(not a comment)\" <root>\n" },
	{ "J\xc3\xb6rg", "From: =?UTF-8?B?SsO2cmc=?= <root>\n" },
	{ "", "From: <root>\n" },
	{ NULL, "From: <root>\n" },
};

START_TEST(test_from_field)
{
	char buf[MAILDROP_FROM_MAX];
	int n = maildrop_from_field(from_cases[_i].name, "root", buf,
	    sizeof(buf));

	ck_assert_int_eq(n, (int)strlen(from_cases[_i].want));
	ck_assert_str_eq(buf, from_cases[_i].want);
}
END_TEST

/* Decode every encoded word of a From: field into out (OpenSSL's
 * decoder: its length counts the padding, taken off here); its length. */
static size_t
decode_words(const char *f, unsigned char *out)
{
	size_t o = 0;

	while ((f = strstr(f, "=?UTF-8?B?")) != NULL) {
		const char *end = strchr(f += 10, '?');
		int n;

		ck_assert_ptr_nonnull(end);
		n = EVP_DecodeBlock(out + o, (const unsigned char *)f,
		    (int)(end - f));
		ck_assert_int_ge(n, 0);
		o += (size_t)n - (end[-1] == '=') - (end[-2] == '=');
		f = end;
	}
	return o;
}

/* Long names: lines short enough, folded, and the name intact. */
START_TEST(test_from_field_long)
{
	char name[MAILDROP_VALUE_MAX + 1], buf[MAILDROP_FROM_MAX];
	unsigned char back[MAILDROP_VALUE_MAX + 3];	/* + padding */
	size_t n = 0;

	/* 333 three-byte characters, then one more byte: 1000 would not
	 * be a valid name, 999 is. */
	while (n + 3 <= MAILDROP_VALUE_MAX) {
		memcpy(name + n, "\xe2\x82\xac", 3);	/* the euro sign */
		n += 3;
	}
	name[n] = '\0';
	ck_assert_int_gt(maildrop_from_field(name, "u@x", buf, sizeof(buf)), 0);
	for (const char *l = buf; *l; ) {
		size_t len = strcspn(l, "\n");

		ck_assert_uint_le(len, 78);
		if (l != buf)
			ck_assert(*l == ' ');
		/* Never cut inside a character: each word decodes alone. */
		l += len + (l[len] == '\n');
	}
	ck_assert_uint_eq(decode_words(buf, back), n);
	ck_assert(memcmp(back, name, n) == 0);
	ck_assert_ptr_nonnull(strstr(buf, "?= <u@x>\n"));

	/* ASCII that would make a line over 998: encoded too. */
	memset(name, '"', MAILDROP_VALUE_MAX);
	name[MAILDROP_VALUE_MAX] = '\0';
	ck_assert_int_gt(maildrop_from_field(name, "u@x", buf, sizeof(buf)), 0);
	for (const char *l = buf; *l; ) {
		size_t len = strcspn(l, "\n");

		ck_assert_uint_le(len, 998);
		l += len + (l[len] == '\n');
	}
	ck_assert_uint_eq(decode_words(buf, back), MAILDROP_VALUE_MAX);

	/* Too small a buffer: -1, never a cut field. */
	ck_assert_int_eq(maildrop_from_field("Cron Daemon", "root", buf, 10),
	    -1);
}
END_TEST

static Suite *
maildrop_suite(void)
{
	Suite *s = suite_create("maildrop");
	TCase *tc = tcase_create("write");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_loop_test(tc, test_round_trip, 0,
	    sizeof(trips) / sizeof(trips[0]));
	tcase_add_test(tc, test_too_big);
	tcase_add_test(tc, test_header_too_big);
	tcase_add_test(tc, test_read_error);
	tcase_add_test(tc, test_no_dir);
	tcase_add_loop_test(tc, test_invalid_fields, 0,
	    sizeof(invalid) / sizeof(invalid[0]));
	tcase_add_test(tc, test_privilege_hooks);
	suite_add_tcase(s, tc);

	tc = tcase_create("parse");
	tcase_add_loop_test(tc, test_hostile, 0,
	    sizeof(hostile) / sizeof(hostile[0]));
	tcase_add_test(tc, test_huge_lines);
	tcase_add_test(tc, test_many_rcpts);
	suite_add_tcase(s, tc);

	tc = tcase_create("from");
	tcase_add_loop_test(tc, test_from_field, 0,
	    sizeof(from_cases) / sizeof(from_cases[0]));
	tcase_add_test(tc, test_from_field_long);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return fixture_run(maildrop_suite());
}
