/*
 * check_conf.c: the configuration table, loader, checks and credentials.
 *
 * Every test writes its files into a fresh mkdtemp() directory, so the
 * suite never reads the host's configuration.  Error cases are tables of
 * (file content, line, key, what): the message must be exactly
 * "FILE:LINE: KEY: ..." and mention what is wrong.
 */
#include "config.h"

#include <sys/stat.h>

#include <check.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf.h"
#include "endpoint.h"
#include "fixture.h"

static char top[256];		/* per test case, removed even after failures */
static char scratch[320];	/* per test, inside top */
static char path[PATH_MAX];
static char err[CONF_ERRLEN];

static void
top_setup(void)
{
	fixture_mkdtemp(top, sizeof(top), NULL, "check_conf");
}

static void
top_teardown(void)
{
	fixture_rmtree(top);
}

static void
setup(void)
{
	fixture_mkdtemp(scratch, sizeof(scratch), top, "t");
	unsetenv("CREDENTIALS_DIRECTORY");
	memset(err, 0, sizeof(err));
}

static void
teardown(void)
{
	fixture_rmtree(scratch);
}

/* Write content to scratch/name with the given mode; returns the path. */
static const char *
write_file(const char *name, const char *content, mode_t mode)
{
	FILE *fp;

	snprintf(path, sizeof(path), "%s/%s", scratch, name);
	fp = fopen(path, "w");
	ck_assert_ptr_nonnull(fp);
	ck_assert_int_eq(fputs(content, fp) >= 0, 1);
	ck_assert_int_eq(fclose(fp), 0);
	ck_assert_int_eq(chmod(path, mode), 0);
	return path;
}

static struct conf *
load_text(const char *content)
{
	return conf_load(write_file("sesrelay.conf", content, 0644), err,
	    sizeof(err));
}

/* The primary endpoint of c (valid until the next call). */
static const struct endpoint *
primary(const struct conf *c)
{
	static struct endpoint ep;

	ck_assert_int_eq(endpoint_from_conf(c, ENDPOINT_PRIMARY, &ep), 0);
	return &ep;
}

/* ---- the key table ---- */

START_TEST(test_every_key_documented)
{
	static const char *const types[] = { "integer", "float", "string",
	    "string list", "integer list", "boolean" };
	struct conf_key_info k, k2;
	size_t i, j, t;

	for (i = 0; conf_key_at(i, &k); i++) {
		ck_assert_ptr_nonnull(k.path);
		ck_assert_msg(k.path[0] != '\0', "key %zu has no path", i);
		ck_assert_msg(k.help != NULL && strlen(k.help) > 10,
		    "key %s has no help", k.path);
		for (t = 0; t < sizeof(types) / sizeof(types[0]); t++)
			if (strcmp(k.type, types[t]) == 0)
				break;
		ck_assert_msg(t < sizeof(types) / sizeof(types[0]),
		    "key %s has type \"%s\"", k.path, k.type);
		for (j = 0; j < i; j++) {
			ck_assert_int_eq(conf_key_at(j, &k2), 1);
			ck_assert_str_ne(k.path, k2.path);
		}
	}
	/* The 73 keys of sesrelay.conf(5); a new key needs a new test. */
	ck_assert_uint_eq(i, 73);
	ck_assert_int_eq(conf_key_at(i, &k), 0);
	ck_assert_int_eq(conf_key_at((size_t)-1, &k), 0);
}
END_TEST

/* ---- loading ---- */

START_TEST(test_defaults_from_empty_file)
{
	struct conf *c = load_text("");

	ck_assert_msg(c != NULL, "%s", err);
	ck_assert_str_eq(c->file, path);
	ck_assert_str_eq(c->hostname, "");
	ck_assert_uint_eq(c->listen.tcp.n, 2);
	ck_assert_str_eq(c->listen.tcp.v[0], "127.0.0.1:25");
	ck_assert_str_eq(c->listen.tcp.v[1], "[::1]:25");
	ck_assert_str_eq(c->listen.unix_path, "/run/sesrelay/smtp.sock");
	ck_assert_uint_eq(c->listen.allow.n, 0);
	ck_assert_str_eq(c->spool, "/var/spool/sesrelay");
	ck_assert_int_eq(c->max_message_size, 41943040);
	ck_assert_int_eq(c->smtp.max_recipients, 1000);
	ck_assert_int_eq(c->smtp.max_line_length, 2048);
	ck_assert_int_eq(c->smtp.timeout, 300);
	ck_assert_str_eq(c->upstream.region, "us-east-1");
	ck_assert_str_eq(c->upstream.host, "");
	ck_assert_int_eq(c->upstream.port, 587);
	ck_assert_str_eq(c->upstream.tls, "");
	ck_assert_str_eq(c->upstream.ca_file, "");
	ck_assert_str_eq(c->upstream.credentials, "/etc/sesrelay/credentials");
	ck_assert_int_eq(c->upstream.sessions, 4);
	ck_assert_int_eq(c->upstream.recycle_after_messages, 100);
	ck_assert_int_eq(c->upstream.recycle_after_seconds, 60);
	ck_assert_int_eq(c->upstream.idle_timeout, 5);
	ck_assert_int_eq(c->upstream.timeout, 60);
	ck_assert_double_eq_tol(c->upstream.rate, 14.0, 1e-9);
	ck_assert_uint_eq(c->retry.schedule.n, 4);
	ck_assert_int_eq(c->retry.schedule.v[0], 5);
	ck_assert_int_eq(c->retry.schedule.v[1], 10);
	ck_assert_int_eq(c->retry.schedule.v[2], 30);
	ck_assert_int_eq(c->retry.schedule.v[3], 1200);
	ck_assert_int_eq(c->retry.max_queue_time, 432000);
	ck_assert_int_eq(c->retry.max_unknown_outcome_copies, 3);
	conf_free(c);
}
END_TEST

/* Read the shipped etc/sesrelay.conf (found through $top_srcdir). */
static char *
read_shipped_conf(void)
{
	const char *srcdir = getenv("top_srcdir");
	char p[PATH_MAX];
	char *buf;
	long n;
	FILE *fp;

	snprintf(p, sizeof(p), "%s/etc/sesrelay.conf",
	    srcdir && *srcdir ? srcdir : "..");
	fp = fopen(p, "r");
	ck_assert_msg(fp != NULL, "cannot open %s (set top_srcdir)", p);
	ck_assert_int_eq(fseek(fp, 0, SEEK_END), 0);
	n = ftell(fp);
	ck_assert_int_gt(n, 100);
	rewind(fp);
	buf = malloc(n + 1);
	ck_assert_ptr_nonnull(buf);
	ck_assert_uint_eq(fread(buf, 1, n, fp), (size_t)n);
	buf[n] = '\0';
	fclose(fp);
	return buf;
}

static char *
dump_to_string(const struct conf *c)
{
	char *out = NULL;
	size_t len = 0;
	FILE *fp = open_memstream(&out, &len);

	ck_assert_ptr_nonnull(fp);
	conf_dump(c, fp);
	ck_assert_int_eq(fclose(fp), 0);
	return out;
}

START_TEST(test_shipped_file_loads_with_defaults)
{
	char *text = read_shipped_conf(), *d1, *d2;
	struct conf *c = load_text(text), *def;

	ck_assert_msg(c != NULL, "shipped sesrelay.conf: %s", err);
	def = load_text("");
	ck_assert_msg(def != NULL, "%s", err);
	/* The shipped file shows every key with its default value. */
	d1 = dump_to_string(c);
	d2 = dump_to_string(def);
	ck_assert_str_eq(d1, d2);
	free(d1);
	free(d2);
	free(text);
	conf_free(c);
	conf_free(def);
}
END_TEST

START_TEST(test_full_valid_file)
{
	struct conf *c = load_text(
	    "hostname = \"relay.example.org\";\n"
	    "listen = {\n"
	    "  tcp = [ \"0.0.0.0:2525\", \"[2001:db8::1]:25\" ];\n"
	    "  unix = \"\";\n"
	    "  allow = [ \"10.0.0.0/8\", \"2001:db8::/32\", \"192.0.2.7\" ];\n"
	    "};\n"
	    "spool = \"/srv/spool\";\n"
	    "max_message_size = 10485760;\n"
	    "smtp = { max_recipients = 50; max_line_length = 512;"
	    " timeout = 10; };\n"
	    "upstream = {\n"
	    "  region = \"eu-west-1\";\n"
	    "  port = 2465;\n"
	    "  tls = \"wrapper\";\n"
	    "  ca_file = \"/etc/ssl/ca.pem\";\n"
	    "  credentials = \"/etc/sesrelay/creds\";\n"
	    "  sessions = 64;\n"
	    "  recycle_after_messages = 1;\n"
	    "  recycle_after_seconds = 86400;\n"
	    "  idle_timeout = 9;\n"
	    "  timeout = 5;\n"
	    "  rate = 2;\n"			/* an integer for a float */
	    "};\n"
	    "retry = { schedule = [ 60 ]; max_queue_time = 60;\n"
	    "  max_unknown_outcome_copies = 1; };\n");

	ck_assert_msg(c != NULL, "%s", err);
	ck_assert_str_eq(c->hostname, "relay.example.org");
	ck_assert_uint_eq(c->listen.tcp.n, 2);
	ck_assert_str_eq(c->listen.tcp.v[1], "[2001:db8::1]:25");
	ck_assert_str_eq(c->listen.unix_path, "");
	ck_assert_uint_eq(c->listen.allow.n, 3);
	ck_assert_str_eq(c->listen.allow.v[2], "192.0.2.7");
	ck_assert_str_eq(c->spool, "/srv/spool");
	ck_assert_int_eq(c->max_message_size, 10485760);
	ck_assert_int_eq(c->smtp.max_recipients, 50);
	ck_assert_int_eq(c->smtp.max_line_length, 512);
	ck_assert_int_eq(c->smtp.timeout, 10);
	ck_assert_str_eq(c->upstream.region, "eu-west-1");
	ck_assert_int_eq(c->upstream.port, 2465);
	ck_assert_str_eq(c->upstream.tls, "wrapper");
	ck_assert_str_eq(c->upstream.ca_file, "/etc/ssl/ca.pem");
	ck_assert_str_eq(c->upstream.credentials, "/etc/sesrelay/creds");
	ck_assert_int_eq(c->upstream.sessions, 64);
	ck_assert_int_eq(c->upstream.recycle_after_messages, 1);
	ck_assert_int_eq(c->upstream.recycle_after_seconds, 86400);
	ck_assert_int_eq(c->upstream.idle_timeout, 9);
	ck_assert_int_eq(c->upstream.timeout, 5);
	ck_assert_double_eq_tol(c->upstream.rate, 2.0, 1e-9);
	ck_assert_uint_eq(c->retry.schedule.n, 1);
	ck_assert_int_eq(c->retry.schedule.v[0], 60);
	ck_assert_int_eq(c->retry.max_queue_time, 60);
	ck_assert_int_eq(c->retry.max_unknown_outcome_copies, 1);
	ck_assert_str_eq(primary(c)->host,
	    "email-smtp.eu-west-1.amazonaws.com");
	ck_assert_int_eq(primary(c)->wrapper, 1);
	conf_free(c);
}
END_TEST

/*
 * Files that must be refused: the message must start with exactly
 * "FILE:LINE: KEY: " and contain what.
 */
static const struct bad_case {
	const char	*text;
	int		 line;
	const char	*key;
	const char	*what;
} bad_cases[] = {
	/* unknown keys and sections */
	{ "upstream = {\n  region = \"us-east-1\";\n  prot = 25;\n};\n",
	  3, "upstream.prot", "unknown key" },
	{ "spool = \"/var/spool/x\";\nfrobnicate = 1;\n",
	  2, "frobnicate", "unknown key" },
	{ "\n\nsmtpd = {\n  timeout = 5;\n};\n", 3, "smtpd",
	  "unknown section" },
	{ "upstream = {\n  tls_opts = {\n    a = 1;\n  };\n};\n",
	  2, "upstream.tls_opts", "unknown section" },
	{ "spool = { dir = \"/x\"; };\n", 1, "spool", "unknown section" },
	/* wrong types */
	{ "upstream = {\n  port = \"587\";\n};\n", 2, "upstream.port",
	  "expects an integer" },
	{ "upstream = {\n  port = 587.0;\n};\n", 2, "upstream.port",
	  "expects an integer" },
	{ "\nspool = 5;\n", 2, "spool", "expects a string" },
	{ "listen = {\n  tcp = ( \"127.0.0.1:25\", 25 );\n};\n", 2,
	  "listen.tcp", "expects a list of strings" },
	{ "listen = {\n  allow = \"10.0.0.0/8\";\n};\n", 2, "listen.allow",
	  "expects a list of strings" },
	{ "retry = {\n\n  schedule = ( 5, \"ten\" );\n};\n", 3,
	  "retry.schedule", "expects a list of integers" },
	{ "upstream = { rate = \"fast\"; };\n", 1, "upstream.rate",
	  "expects a number" },
	/* out of range */
	{ "upstream = {\n  port = 0;\n};\n", 2, "upstream.port",
	  "value 0 out of range (1 to 65535)" },
	{ "upstream = {\n  port = 70000;\n};\n", 2, "upstream.port",
	  "value 70000 out of range (1 to 65535)" },
	{ "upstream = {\n\n\n  sessions = 0;\n};\n", 4, "upstream.sessions",
	  "out of range" },
	{ "max_message_size = 41943041;\n", 1, "max_message_size",
	  "out of range" },
	{ "# big\nmax_message_size = 99999999999L;\n", 2, "max_message_size",
	  "value 99999999999 out of range" },
	/* past 32 bits without L: libconfig would wrap them (issue 10.15) */
	{ "spool_min_free = 5000000000;\n", 1, "spool_min_free",
	  "5000000000 does not fit a 32-bit integer, and libconfig would wrap "
	  "it to 705032704; write 5000000000L" },
	{ "# 5000000000\nsendmail = { trusted_users = [ \"5000000000\" ]; };\n\n"
	  "spool_min_free = 2147483648;\n", 4, "spool_min_free",
	  "2147483648 does not fit" },
	{ "upstream = {\n  port = 587;\n  rate = 4294967297;\n};\n", 3,
	  "upstream.rate", "4294967297 does not fit" },
	{ "retry = {\n  schedule = [ 5,\n    0x100000005 ];\n};\n", 3,
	  "retry.schedule", "0x100000005 does not fit" },
	{ "/* 1\n 2 */ smtp = { timeout = -5000000000; };\n", 2,
	  "smtp.timeout", "-5000000000 does not fit" },
	{ "upstream = { idle_timeout = 10; };\n", 1, "upstream.idle_timeout",
	  "out of range" },
	{ "upstream = { rate = -1.0; };\n", 1, "upstream.rate", "out of range" },
	{ "upstream = { rate = 0.001; };\n", 1, "upstream.rate",
	  "below 0.01" },
	{ "upstream = { rate = 0.0;\n account_check_interval = 0; };\n", 1,
	  "upstream.rate", "which is 0 (never)" },
	{ "fallback = { region = \"eu-west-1\";\n rate = -0.5; };\n", 2,
	  "fallback.rate", "or -1 (upstream.rate)" },
	/* the AWS keys and the combinations that cannot work (issue 12) */
	{ "upstream = {\n transport = \"http\"; };\n", 2,
	  "upstream.transport", "expected \"smtp\" or \"api\"" },
	{ "upstream = {\n auth = \"role\"; };\n", 2, "upstream.auth",
	  "expected \"file\", \"instance-role\" or \"environment\"" },
	{ "upstream = {\n auth = \"instance-role\"; };\n", 2, "upstream.auth",
	  "SES's SMTP interface refuses passwords derived from temporary" },
	{ "upstream = { transport = \"api\"; };\nfallback = {\n region = "
	  "\"eu-west-1\";\n transport = \"smtp\";\n auth = "
	  "\"instance-role\"; };\n", 5, "fallback.auth",
	  "set fallback.transport = \"api\"" },
	{ "upstream = { transport = \"api\";\n auth = \"instance-role\";\n"
	  " region = \"\"; host = \"smtp.example.com\"; };\n", 1,
	  "upstream.transport", "needs upstream.region or upstream.api_endpoint"
	},
	{ "upstream = {\n api_endpoint = \"http://email.example.com\"; };\n",
	  2, "upstream.api_endpoint", "expected \"https://HOST[:PORT]\"" },
	{ "upstream = {\n api_endpoint = \"https://h/v2\"; };\n", 2,
	  "upstream.api_endpoint", "expected \"https://HOST[:PORT]\"" },
	{ "upstream = {\n imds_endpoint = \"https://169.254.169.254\"; };\n",
	  2, "upstream.imds_endpoint", "expected \"http://HOST[:PORT]\"" },
	{ "upstream = {\n account_check_interval = -1; };\n", 2,
	  "upstream.account_check_interval", "out of range" },
	{ "retry = {\n  schedule = [ 5, 0 ];\n};\n", 2, "retry.schedule",
	  "value 0 out of range" },
	/* semantic checks */
	{ "listen = {\n  tcp = [ \"127.0.0.1\" ];\n};\n", 2, "listen.tcp",
	  "\"127.0.0.1\": expected \"ADDR:PORT\"" },
	{ "listen = {\n  tcp = [ \"127.0.0.1:25\", \"localhost:25\" ];\n};\n",
	  2, "listen.tcp", "\"localhost:25\": not a numeric IP address" },
	{ "listen = {\n  unix = \"\";\n  allow = [ \"10.0.0.0/33\" ];\n};\n",
	  3, "listen.allow", "\"10.0.0.0/33\"" },
	{ "upstream = {\n  tls = \"ssl\";\n};\n", 2, "upstream.tls",
	  "\"ssl\": expected \"starttls\" or \"wrapper\"" },
	{ "ses = {\n  configuration_set = \"my set\";\n};\n", 2,
	  "ses.configuration_set", "\"my set\": not a configuration set name" },
	{ "ses = {\n  tags = [ \"a=b\", \"c\" ];\n};\n", 2, "ses.tags",
	  "\"c\": expected \"name=value\"" },
	{ "smtp = {\n  bare_lf = \"strip\";\n};\n", 2, "smtp.bare_lf",
	  "\"strip\": expected \"reject\" or \"normalize\"" },
	{ "spool = \"var/spool/sesrelay\";\n", 1, "spool",
	  "must be an absolute path" },
	{ "listen = { unix = \"smtp.sock\"; };\n", 1, "listen.unix",
	  "must be an absolute path" },
	{ "upstream = {\n  credentials = \"\";\n};\n", 2,
	  "upstream.credentials", "must be an absolute path" },
	{ "retry = {\n  schedule = [ ];\n};\n", 2, "retry.schedule",
	  "must not be empty" },
	{ "upstream = {\n  region = \"US_EAST_1\";\n};\n", 2, "upstream.region",
	  "not a region name" },
	{ "upstream = {\n  region = \"\";\n};\n", 2, "upstream.region",
	  "set a region or upstream.host" },
	{ "hostname = \"bad host\";\n", 1, "hostname",
	  "not a valid host name" },
	/* fleet.* (issue 13) */
	{ "fleet = {\n  store = \"http://cache:6379\";\n};\n", 2,
	  "fleet.store", "expected \"redis://HOST:PORT[/DB]\"" },
	{ "fleet = {\n  store = \"redis://:pw@cache:6379\";\n};\n", 2,
	  "fleet.store", "put them in fleet.credentials" },
	{ "fleet = {\n  store = \"rediss://cache:6379\";\n};\n", 2,
	  "fleet.store", "rediss://" },
	{ "fleet = {\n  name = \"a{b}\";\n};\n", 2, "fleet.name",
	  "without spaces or braces" },
	{ "fleet = {\n  hosts = 0;\n};\n", 2, "fleet.hosts", "1" },
	{ "fleet = {\n  credentials = \"redis.pw\";\n};\n", 2,
	  "fleet.credentials", "absolute path" },
};

START_TEST(test_bad_file)
{
	const struct bad_case *bc = &bad_cases[_i];
	struct conf *c = load_text(bc->text);
	char want[PATH_MAX + 128];

	ck_assert_msg(c == NULL, "case %d accepted: %s", _i, bc->text);
	snprintf(want, sizeof(want), "%s:%d: %s: ", path, bc->line, bc->key);
	ck_assert_msg(strncmp(err, want, strlen(want)) == 0,
	    "case %d: \"%s\" does not start with \"%s\"", _i, err, want);
	ck_assert_msg(strstr(err + strlen(want), bc->what) != NULL,
	    "case %d: \"%s\" does not say \"%s\"", _i, err, bc->what);
}
END_TEST

START_TEST(test_syntax_error_names_line)
{
	struct conf *c = load_text("spool = \"/x\";\n\nmax_message_size = ;\n");
	char want[PATH_MAX + 16];

	ck_assert_ptr_null(c);
	snprintf(want, sizeof(want), "%s:3: ", path);
	ck_assert_msg(strncmp(err, want, strlen(want)) == 0, "got \"%s\"", err);
	ck_assert_uint_gt(strlen(err), strlen(want));
}
END_TEST

/* A literal libconfig would wrap is refused in an @include'd file too. */
START_TEST(test_int_literal_in_include)
{
	char inc[PATH_MAX], text[PATH_MAX + 64], want[PATH_MAX + 64];

	snprintf(inc, sizeof(inc), "%s",
	    write_file("inc.conf", "# big\ntimeout = 5000000000;\n", 0644));
	snprintf(text, sizeof(text), "smtp = {\n@include \"%s\"\n};\n", inc);
	ck_assert_ptr_null(load_text(text));
	snprintf(want, sizeof(want), "%s:2: smtp.timeout: 5000000000 does not "
	    "fit", inc);
	ck_assert_msg(strncmp(err, want, strlen(want)) == 0,
	    "\"%s\" does not start with \"%s\"", err, want);

	/* and after it, the including file's own lines are counted on */
	write_file("inc.conf", "/* a\n b */ timeout = 50;\n", 0644);
	snprintf(text, sizeof(text), "smtp = {\n@include \"%s\"\n};\n"
	    "\nspool_min_free = 4294967296;\n", inc);
	ck_assert_ptr_null(load_text(text));
	snprintf(want, sizeof(want), "%s:5: spool_min_free: 4294967296 does "
	    "not fit", path);
	ck_assert_msg(strncmp(err, want, strlen(want)) == 0,
	    "\"%s\" does not start with \"%s\"", err, want);
}
END_TEST

START_TEST(test_missing_file)
{
	char p[PATH_MAX + 32];

	snprintf(p, sizeof(p), "%s/nonexistent.conf", scratch);
	ck_assert_ptr_null(conf_load(p, err, sizeof(err)));
	ck_assert_ptr_nonnull(strstr(err, p));
	ck_assert_ptr_nonnull(strstr(err, "cannot read"));
}
END_TEST

/* ---- derived values ---- */

START_TEST(test_upstream_host)
{
	struct conf *c;

	c = load_text("upstream = { region = \"ap-northeast-1\"; };\n");
	ck_assert_msg(c != NULL, "%s", err);
	ck_assert_str_eq(primary(c)->host,
	    "email-smtp.ap-northeast-1.amazonaws.com");
	conf_free(c);

	c = load_text("");
	ck_assert_msg(c != NULL, "%s", err);
	ck_assert_str_eq(primary(c)->host,
	    "email-smtp.us-east-1.amazonaws.com");
	conf_free(c);

	c = load_text("upstream = { region = \"eu-west-1\";"
	    " host = \"smtp.example.test\"; };\n");
	ck_assert_msg(c != NULL, "%s", err);
	ck_assert_str_eq(primary(c)->host, "smtp.example.test");
	conf_free(c);

	/* A host alone is enough: the region may be empty then. */
	c = load_text("upstream = { region = \"\"; host = \"127.0.0.1\"; };\n");
	ck_assert_msg(c != NULL, "%s", err);
	ck_assert_str_eq(primary(c)->host, "127.0.0.1");
	conf_free(c);
}
END_TEST

static const struct {
	int		 port;
	const char	*tls;
	int		 wrapper;
} tls_cases[] = {
	{ 465, "", 1 }, { 2465, "", 1 }, { 587, "", 0 }, { 2587, "", 0 },
	{ 25, "", 0 }, { 10465, "", 0 },
	{ 587, "wrapper", 1 }, { 25, "wrapper", 1 },
	{ 465, "starttls", 0 }, { 2465, "starttls", 0 },
	{ 2587, "starttls", 0 }, { 2465, "wrapper", 1 },
};

START_TEST(test_is_wrapper)
{
	char text[256];
	struct conf *c;

	snprintf(text, sizeof(text),
	    "upstream = { port = %d; tls = \"%s\"; };\n", tls_cases[_i].port,
	    tls_cases[_i].tls);
	c = load_text(text);
	ck_assert_msg(c != NULL, "%s", err);
	ck_assert_msg(primary(c)->wrapper == tls_cases[_i].wrapper,
	    "port %d tls \"%s\": expected %d", tls_cases[_i].port,
	    tls_cases[_i].tls, tls_cases[_i].wrapper);
	conf_free(c);
}
END_TEST

/* Each endpoint is built from its own section, and names its own keys. */
START_TEST(test_endpoint_fallback)
{
	struct endpoint ep;
	struct endpoint_credentials cr;
	struct conf *c;

	c = load_text("upstream = { region = \"eu-west-1\"; };\n");
	ck_assert_msg(c != NULL, "%s", err);
	ck_assert_int_eq(endpoint_from_conf(c, ENDPOINT_FALLBACK, &ep), -1);
	ck_assert_str_eq(primary(c)->name, "upstream");
	ck_assert_str_eq(primary(c)->credentials_key, "upstream.credentials");
	conf_free(c);

	write_file("credentials", "username = \"u\";\npassword = \"p\";\n",
	    0644);
	c = load_text("upstream = { region = \"eu-west-1\"; };\n"
	    "fallback = {\n"
	    "  region = \"us-west-2\";\n"
	    "  port = 2465;\n"
	    "  ca_file = \"/nonexistent/fallback-ca.pem\";\n"
	    "};\n");
	ck_assert_msg(c != NULL, "%s", err);
	ck_assert_int_eq(endpoint_from_conf(c, ENDPOINT_FALLBACK, &ep), 0);
	ck_assert_str_eq(ep.name, "fallback");
	ck_assert_str_eq(ep.host, "email-smtp.us-west-2.amazonaws.com");
	ck_assert_int_eq(ep.port, 2465);
	ck_assert_int_eq(ep.wrapper, 1);
	ck_assert_str_eq(ep.region, "us-west-2");
	ck_assert_int_eq(endpoint_check_ca(c, &ep, err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, "sesrelay.conf:5: fallback.ca_file: ") !=
	    NULL, "%s", err);
	/* No fallback.credentials: the primary's file, under its key. */
	ck_assert_str_eq(ep.credentials_key, "upstream.credentials");
	ck_assert_str_eq(ep.credentials, "/etc/sesrelay/credentials");
	conf_free(c);

	{
		char text[PATH_MAX + 128];

		snprintf(text, sizeof(text), "fallback = {\n"
		    "  host = \"smtp.example.test\";\n"
		    "  credentials = \"%s/credentials\";\n};\n", scratch);
		c = load_text(text);
	}
	ck_assert_msg(c != NULL, "%s", err);
	ck_assert_int_eq(endpoint_from_conf(c, ENDPOINT_FALLBACK, &ep), 0);
	ck_assert_str_eq(ep.host, "smtp.example.test");
	ck_assert_str_eq(ep.credentials_key, "fallback.credentials");
	ck_assert_int_eq(endpoint_load_credentials(c, &ep, &cr, err,
	    sizeof(err)), -1);
	ck_assert_msg(strstr(err, "sesrelay.conf:3: fallback.credentials: ") !=
	    NULL && strstr(err, "mode 0644 is unsafe") != NULL, "%s", err);
	conf_free(c);
}
END_TEST

/* ---- dump ---- */

START_TEST(test_dump_has_every_key)
{
	struct conf *c = load_text("upstream = { port = 465; rate = 2.5;"
	    " host = \"h.example\"; };\n"
	    "listen = { allow = [ \"10.0.0.0/8\" ]; };\n");
	struct conf_key_info k;
	char *out, want[256], section[64];
	const char *at;
	size_t i;

	ck_assert_msg(c != NULL, "%s", err);
	out = dump_to_string(c);
	/* Each key is a line of its section: "sec = {" ... "  leaf = ". */
	for (i = 0; conf_key_at(i, &k); i++) {
		const char *dot = strchr(k.path, '.');

		if (dot == NULL) {
			snprintf(want, sizeof(want), "\n%s = ", k.path);
			ck_assert_msg(strncmp(out, want + 1, strlen(want + 1)) ==
			    0 || strstr(out, want) != NULL,
			    "no line for %s in:\n%s", k.path, out);
			continue;
		}
		snprintf(section, sizeof(section), "%.*s = {\n",
		    (int)(dot - k.path), k.path);
		at = strstr(out, section);
		ck_assert_msg(at != NULL, "no section for %s in:\n%s", k.path,
		    out);
		snprintf(want, sizeof(want), "\n  %s = ", dot + 1);
		at = strstr(at, want);
		ck_assert_msg(at != NULL && at < strstr(strstr(out, section),
		    "\n};"), "no line for %s in its section:\n%s", k.path, out);
	}
	/* Values as they are in effect. */
	ck_assert_ptr_nonnull(strstr(out, "\n  port = 465;\n"));
	ck_assert_ptr_nonnull(strstr(out, "\n  rate = 2.5;\n"));
	ck_assert_ptr_nonnull(strstr(out,
	    "\n  tcp = [ \"127.0.0.1:25\", \"[::1]:25\" ];\n"));
	ck_assert_ptr_nonnull(strstr(out,
	    "\n  allow = [ \"10.0.0.0/8\" ];\n"));
	ck_assert_ptr_nonnull(strstr(out,
	    "\n  schedule = [ 5, 10, 30, 1200 ];\n"));
	ck_assert_ptr_nonnull(strstr(out,
	    "\n  host = \"h.example\";  # effective: h.example\n"));
	ck_assert_ptr_nonnull(strstr(out,
	    "\n  tls = \"\";  # effective: wrapper\n"));
	free(out);
	conf_free(c);
}
END_TEST

START_TEST(test_dump_quotes_strings)
{
	struct conf *c = load_text("spool = \"/a\\\"b\\\\c\";\n");
	char *out;

	ck_assert_msg(c != NULL, "%s", err);
	ck_assert_str_eq(c->spool, "/a\"b\\c");
	out = dump_to_string(c);
	ck_assert_ptr_nonnull(strstr(out, "\nspool = \"/a\\\"b\\\\c\";\n"));
	free(out);
	conf_free(c);
}
END_TEST

/*
 * Regression (fixed): conf.c:518,524 (conf_dump) is documented in conf.h as printing "in
 * libconfig syntax", but writes dotted paths ("listen.tcp = ...;") that
 * libconfig refuses (names cannot contain '.'), so "sesrelayd -t" output
 * cannot be loaded back; and upstream.rate is printed with "%.2f", so a
 * rate of 0.125 shows (and would reload) as 0.12.  Fix: print groups
 * ("listen = { tcp = ...; };") or fix the header comment, and print
 * floats with "%.17g" (plus ".0" when integral).
 */
START_TEST(test_dump_reloads)
{
	struct conf *c = load_text(
	    "upstream = { port = 2465; rate = 0.125; };\n"
	    "retry = { schedule = [ 1, 2 ]; };\n"), *c2;
	char *out, *out2;

	ck_assert_msg(c != NULL, "%s", err);
	out = dump_to_string(c);
	c2 = load_text(out);
	ck_assert_msg(c2 != NULL, "dump does not load back: %s", err);
	out2 = dump_to_string(c2);
	ck_assert_str_eq(out2, out);
	ck_assert_double_eq_tol(c2->upstream.rate, 0.125, 1e-9);
	free(out);
	free(out2);
	conf_free(c);
	conf_free(c2);
}
END_TEST

/* Big integers with L, floats and names with digits are not refused. */
START_TEST(test_big_integers_with_suffix)
{
	struct conf *c = load_text(
	    "spool_min_free = 5000000000L; # 6000000000\n"
	    "upstream = { rate = 2.5e4; host = \"h9999999999.example\"; "
	    "port = 2465; };\n"), *c2;
	char *out;

	ck_assert_msg(c != NULL, "%s", err);
	ck_assert_int_eq(c->spool_min_free, 5000000000LL);
	ck_assert_double_eq_tol(c->upstream.rate, 25000, 1e-9);
	out = dump_to_string(c);
	ck_assert_msg(strstr(out, "spool_min_free = 5000000000L;") != NULL,
	    "%s", out);
	c2 = load_text(out);
	ck_assert_msg(c2 != NULL, "dump does not load back: %s", err);
	ck_assert_int_eq(c2->spool_min_free, 5000000000LL);
	free(out);
	conf_free(c);
	conf_free(c2);
}
END_TEST

/* ---- credentials ---- */

#define PASSWORD	"BPa55w0rd+NeverInMessages/XyZzY1234567890abc"
#define CRED_TEXT	"username = \"AKIAEXAMPLEUSER\";\npassword = \"" \
			PASSWORD "\";\n"

static const struct {
	mode_t	mode;
	int	ok;
	char	shown[8];	/* the mode as the message must show it */
} cred_modes[] = {
	{ 0600, 1, "" }, { 0640, 1, "" }, { 0400, 1, "" }, { 0440, 1, "" },
	{ 0644, 0, "0644" }, { 0620, 0, "0620" }, { 0602, 0, "0602" },
	{ 0660, 0, "0660" }, { 0604, 0, "0604" }, { 0666, 0, "0666" },
};

START_TEST(test_credentials_mode)
{
	struct endpoint_credentials cr;
	const char *f = write_file("credentials", CRED_TEXT,
	    cred_modes[_i].mode);
	int rc = endpoint_credentials_read(f, &cr, err, sizeof(err));

	if (cred_modes[_i].ok) {
		ck_assert_msg(rc == 0, "mode %04o: %s",
		    (unsigned)cred_modes[_i].mode, err);
		ck_assert_str_eq(cr.username, "AKIAEXAMPLEUSER");
		ck_assert_str_eq(cr.password, PASSWORD);
		endpoint_credentials_clear(&cr);
		ck_assert_ptr_null(cr.username);
		ck_assert_ptr_null(cr.password);
		return;
	}
	ck_assert_msg(rc == -1, "mode %04o accepted",
	    (unsigned)cred_modes[_i].mode);
	ck_assert_ptr_nonnull(strstr(err, f));
	ck_assert_msg(strstr(err, cred_modes[_i].shown) != NULL,
	    "mode %s not in \"%s\"", cred_modes[_i].shown, err);
	ck_assert_ptr_null(strstr(err, PASSWORD));
	ck_assert_ptr_null(cr.password);
}
END_TEST

/* Credentials files that must be refused, and what the message says. */
static const struct {
	const char	*text;
	const char	*what;
} cred_bad[] = {
	{ "username = \"u\";\n", "password: missing" },
	{ "password = \"" PASSWORD "\";\n", "username: missing" },
	{ "username = \"u\";\npassword = \"\";\n", "password: missing" },
	{ "username = \"u\";\npassword = 42;\n", "password: missing" },
	{ CRED_TEXT "region = \"us-east-1\";\n", ":3: region: unknown key" },
	{ "username = \"u\";\npassword = \"" PASSWORD "\" junk;\n", ":2: " },
	{ "= \"" PASSWORD "\";\n", ":1: " },
};

START_TEST(test_credentials_bad_content)
{
	struct endpoint_credentials cr;
	const char *f = write_file("credentials", cred_bad[_i].text, 0600);

	ck_assert_int_eq(endpoint_credentials_read(f, &cr, err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, f) == err, "\"%s\" does not start with %s",
	    err, f);
	ck_assert_msg(strstr(err, cred_bad[_i].what) != NULL,
	    "case %d: \"%s\" does not say \"%s\"", _i, err, cred_bad[_i].what);
	ck_assert_ptr_null(strstr(err, PASSWORD));
	ck_assert_ptr_null(cr.username);
	ck_assert_ptr_null(cr.password);
}
END_TEST

START_TEST(test_credentials_missing_file)
{
	struct endpoint_credentials cr;
	char f[PATH_MAX + 16];

	snprintf(f, sizeof(f), "%s/none", scratch);
	ck_assert_int_eq(endpoint_credentials_read(f, &cr, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, f));
	ck_assert_ptr_nonnull(strstr(err, "cannot open"));
}
END_TEST

START_TEST(test_credentials_symlink_refused)
{
	struct endpoint_credentials cr;
	char target[PATH_MAX], link[PATH_MAX + 16];

	snprintf(target, sizeof(target), "%s",
	    write_file("real", CRED_TEXT, 0600));
	snprintf(link, sizeof(link), "%s/credentials", scratch);
	ck_assert_int_eq(symlink(target, link), 0);
	ck_assert_int_eq(endpoint_credentials_read(link, &cr, err, sizeof(err)),
	    -1);
	ck_assert_ptr_nonnull(strstr(err, link));
	ck_assert_ptr_null(strstr(err, PASSWORD));
}
END_TEST

START_TEST(test_credentials_directory)
{
	struct endpoint_credentials cr;
	char dir[512], f[PATH_MAX];

	/* $CREDENTIALS_DIRECTORY/credentials wins over the configured file. */
	snprintf(dir, sizeof(dir), "%s/systemd", scratch);
	ck_assert_int_eq(mkdir(dir, 0700), 0);
	write_file("systemd/credentials",
	    "username = \"from-systemd\";\npassword = \"p2\";\n", 0600);
	snprintf(f, sizeof(f), "%s",
	    write_file("credentials", CRED_TEXT, 0600));
	ck_assert_int_eq(setenv("CREDENTIALS_DIRECTORY", dir, 1), 0);
	ck_assert_int_eq(endpoint_credentials_read(f, &cr, err, sizeof(err)), 0);
	ck_assert_str_eq(cr.username, "from-systemd");
	ck_assert_str_eq(cr.password, "p2");
	endpoint_credentials_clear(&cr);

	/* The fallback's file is found by its own name, never as the
	 * primary's "credentials". */
	write_file("systemd/fallback-credentials",
	    "username = \"fallback\";\npassword = \"p3\";\n", 0600);
	snprintf(f, sizeof(f), "%s", write_file("fallback-credentials",
	    CRED_TEXT, 0600));
	ck_assert_int_eq(endpoint_credentials_read(f, &cr, err, sizeof(err)), 0);
	ck_assert_str_eq(cr.username, "fallback");
	endpoint_credentials_clear(&cr);
	snprintf(f, sizeof(f), "%s", write_file("credentials", CRED_TEXT,
	    0600));

	/* Without the file there, the configured one is read. */
	snprintf(dir, sizeof(dir), "%s/empty", scratch);
	ck_assert_int_eq(mkdir(dir, 0700), 0);
	ck_assert_int_eq(setenv("CREDENTIALS_DIRECTORY", dir, 1), 0);
	ck_assert_int_eq(endpoint_credentials_read(f, &cr, err, sizeof(err)), 0);
	ck_assert_str_eq(cr.username, "AKIAEXAMPLEUSER");
	endpoint_credentials_clear(&cr);
}
END_TEST

/* ---- host:port ---- */

static const struct {
	const char	*in;
	int		 ok;
	const char	*host;
	int		 port;
} hostport_cases[] = {
	{ "127.0.0.1:25", 1, "127.0.0.1", 25 },
	{ "[::1]:25", 1, "::1", 25 },
	{ "[2001:db8::1]:2525", 1, "2001:db8::1", 2525 },
	{ "0.0.0.0:65535", 1, "0.0.0.0", 65535 },
	{ "1.2.3.4:1", 1, "1.2.3.4", 1 },
	{ "localhost:25", 1, "localhost", 25 },	/* syntax only */
	{ "127.0.0.1:0", 0, NULL, 0 },
	{ "1.2.3.4:65536", 0, NULL, 0 },
	{ "1.2.3.4:99999999999999999999", 0, NULL, 0 },
	{ "[::1]25", 0, NULL, 0 },
	{ ":25", 0, NULL, 0 },
	{ "[]:25", 0, NULL, 0 },
	{ "127.0.0.1", 0, NULL, 0 },
	{ "127.0.0.1:", 0, NULL, 0 },
	{ "::1:25", 0, NULL, 0 },
	{ "[::1]", 0, NULL, 0 },
	{ "[::1:25", 0, NULL, 0 },
	{ "1.2.3.4:25x", 0, NULL, 0 },
	{ "1.2.3.4:-1", 0, NULL, 0 },
	{ "", 0, NULL, 0 },
};

START_TEST(test_parse_hostport)
{
	char host[64] = "unchanged";
	int port = -7;
	int rc = conf_parse_hostport(hostport_cases[_i].in, host, sizeof(host),
	    &port);

	if (!hostport_cases[_i].ok) {
		ck_assert_msg(rc == -1, "\"%s\" accepted",
		    hostport_cases[_i].in);
		return;
	}
	ck_assert_msg(rc == 0, "\"%s\" refused", hostport_cases[_i].in);
	ck_assert_str_eq(host, hostport_cases[_i].host);
	ck_assert_int_eq(port, hostport_cases[_i].port);
}
END_TEST

START_TEST(test_parse_hostport_host_too_long)
{
	char host[8];
	int port;

	ck_assert_int_eq(conf_parse_hostport("255.255.255.255:25", host,
	    sizeof(host), &port), -1);
	ck_assert_int_eq(conf_parse_hostport("1.2.3.4:25", host, sizeof(host),
	    &port), 0);
	ck_assert_str_eq(host, "1.2.3.4");
}
END_TEST

/*
 * Regression (fixed): conf.c:599-600 (conf_parse_hostport) takes the port with strtol,
 * which skips leading blanks and takes a sign, so "1.2.3.4: 25" and
 * "1.2.3.4:+25" pass as port 25 although listen.tcp is documented as
 * numeric "ADDR:PORT".  Fix: require isdigit((unsigned char)colon[1]).
 */
START_TEST(test_parse_hostport_port_digits_only)
{
	char host[64];
	int port;

	ck_assert_int_eq(conf_parse_hostport("1.2.3.4: 25", host, sizeof(host),
	    &port), -1);
	ck_assert_int_eq(conf_parse_hostport("1.2.3.4:+25", host, sizeof(host),
	    &port), -1);
}
END_TEST

/* ---- which file: the flag, then SESRELAY_CONFIG, then the default ---- */

static const struct {
	const char	*flag;		/* NULL: not given */
	const char	*env;		/* NULL: unset */
	const char	*want;		/* NULL: the built-in default */
} path_cases[] = {
	{ NULL, NULL, NULL },
	{ NULL, "", NULL },			/* empty: as unset */
	{ NULL, "/e.conf", "/e.conf" },
	{ "/f.conf", NULL, "/f.conf" },
	{ "/f.conf", "/e.conf", "/f.conf" },	/* the flag beats the env */
	{ "/f.conf", "", "/f.conf" },
	{ "", "/e.conf", "" },		/* given, even empty: conf_load says */
};

START_TEST(test_conf_path)
{
	if (path_cases[_i].env != NULL)
		ck_assert_int_eq(setenv("SESRELAY_CONFIG", path_cases[_i].env,
		    1), 0);
	else
		ck_assert_int_eq(unsetenv("SESRELAY_CONFIG"), 0);
	ck_assert_str_eq(conf_path(path_cases[_i].flag),
	    path_cases[_i].want ? path_cases[_i].want : SESRELAY_CONF_FILE);
}
END_TEST

/*
 * The mail name (issue 14): the first line of the mailname file when it
 * is a host name, else none; it is the host name when hostname is "".
 */
static const struct {
	const char	*content;	/* NULL: no file */
	const char	*want;		/* "": none */
} mailname_cases[] = {
	{ "mail.example.org\n", "mail.example.org" },
	{ "mail.example.org", "mail.example.org" },
	{ "mail.example.org \r\nsecond.example.org\n", "mail.example.org" },
	{ "bad/name\n", "" },
	{ "\n", "" },
	{ "", "" },
	{ NULL, "" },
};

START_TEST(test_mailname)
{
	char text[PATH_MAX + 64], file[PATH_MAX], buf[256], host[256];
	struct conf *c;

	snprintf(file, sizeof(file), "%s/mailname", scratch);
	if (mailname_cases[_i].content != NULL)
		write_file("mailname", mailname_cases[_i].content, 0644);
	snprintf(text, sizeof(text), "mailname = \"%s\";\n", file);
	c = load_text(text);
	ck_assert_msg(c != NULL, "%s", err);
	ck_assert_int_eq(conf_mailname(c, buf, sizeof(buf)),
	    *mailname_cases[_i].want ? 0 : -1);
	ck_assert_str_eq(buf, mailname_cases[_i].want);
	conf_hostname(c, host, sizeof(host));
	if (*mailname_cases[_i].want)
		ck_assert_str_eq(host, mailname_cases[_i].want);
	else
		ck_assert_str_ne(host, "");
	conf_free(c);
	c = load_text("hostname = \"relay.example.net\";\n");
	ck_assert_str_eq(c->mailname, "/etc/mailname");
	conf_hostname(c, host, sizeof(host));
	ck_assert_str_eq(host, "relay.example.net");
	conf_free(c);
}
END_TEST

static Suite *
conf_suite(void)
{
	Suite *s = suite_create("conf");
	TCase *tc;

	tc = tcase_create("table");
	tcase_add_unchecked_fixture(tc, top_setup, top_teardown);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_every_key_documented);
	suite_add_tcase(s, tc);

	tc = tcase_create("load");
	tcase_add_unchecked_fixture(tc, top_setup, top_teardown);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_defaults_from_empty_file);
	tcase_add_test(tc, test_shipped_file_loads_with_defaults);
	tcase_add_test(tc, test_full_valid_file);
	tcase_add_loop_test(tc, test_bad_file, 0,
	    sizeof(bad_cases) / sizeof(bad_cases[0]));
	tcase_add_test(tc, test_syntax_error_names_line);
	tcase_add_test(tc, test_int_literal_in_include);
	tcase_add_test(tc, test_missing_file);
	tcase_add_loop_test(tc, test_conf_path, 0,
	    sizeof(path_cases) / sizeof(path_cases[0]));
	suite_add_tcase(s, tc);

	tc = tcase_create("derived");
	tcase_add_unchecked_fixture(tc, top_setup, top_teardown);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_upstream_host);
	tcase_add_loop_test(tc, test_is_wrapper, 0,
	    sizeof(tls_cases) / sizeof(tls_cases[0]));
	tcase_add_test(tc, test_endpoint_fallback);
	tcase_add_test(tc, test_dump_has_every_key);
	tcase_add_test(tc, test_dump_quotes_strings);
	tcase_add_loop_test(tc, test_mailname, 0,
	    sizeof(mailname_cases) / sizeof(mailname_cases[0]));
	suite_add_tcase(s, tc);

	tc = tcase_create("credentials");
	tcase_add_unchecked_fixture(tc, top_setup, top_teardown);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_loop_test(tc, test_credentials_mode, 0,
	    sizeof(cred_modes) / sizeof(cred_modes[0]));
	tcase_add_loop_test(tc, test_credentials_bad_content, 0,
	    sizeof(cred_bad) / sizeof(cred_bad[0]));
	tcase_add_test(tc, test_credentials_missing_file);
	tcase_add_test(tc, test_credentials_symlink_refused);
	tcase_add_test(tc, test_credentials_directory);
	suite_add_tcase(s, tc);

	tc = tcase_create("hostport");
	tcase_add_loop_test(tc, test_parse_hostport, 0,
	    sizeof(hostport_cases) / sizeof(hostport_cases[0]));
	tcase_add_test(tc, test_parse_hostport_host_too_long);
	suite_add_tcase(s, tc);

	/* Bugs found and fixed: each test keeps it fixed. */
	tc = tcase_create("regressions");
	tcase_add_unchecked_fixture(tc, top_setup, top_teardown);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_dump_reloads);
	tcase_add_test(tc, test_big_integers_with_suffix);
	tcase_add_test(tc, test_parse_hostport_port_digits_only);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return fixture_run(conf_suite());
}
