/*
 * check_control.c: the control protocol: request lines, and what the
 * daemon renders (queue entries in text, JSON and mailq form, stats).
 */
#include "config.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "account.h"
#include "control.h"
#include "scheduler.h"
#include "spool.h"
#include "stats.h"
#include "fixture.h"

static const struct {
	const char	*line;
	int		 ok;
	enum control_cmd cmd;
	const char	*arg;
	int		 json;
	int		 privileged;
	const char	*err;
} requests[] = {
	{ "queue", 1, CONTROL_QUEUE, "", 0, 0, NULL },
	{ "queue --json", 1, CONTROL_QUEUE, "", 1, 0, NULL },
	{ "--json queue", 1, CONTROL_QUEUE, "", 1, 0, NULL },
	{ "mailq", 1, CONTROL_MAILQ, "", 0, 0, NULL },
	{ "show 6b02b002ced4fd50", 1, CONTROL_SHOW, "6b02b002ced4fd50", 0, 0,
	  NULL },
	{ "stats\r", 1, CONTROL_STATS, "", 0, 0, NULL },
	{ "flush", 1, CONTROL_FLUSH, "", 0, 1, NULL },
	{ "hold all", 1, CONTROL_HOLD, "all", 0, 1, NULL },
	{ "release 6b02b002ced4fd50 --json", 1, CONTROL_RELEASE,
	  "6b02b002ced4fd50", 1, 1, NULL },
	{ "delete all", 1, CONTROL_DELETE, "all", 0, 1, NULL },
	{ "reload", 1, CONTROL_RELOAD, "", 0, 1, NULL },
	{ "", 0, 0, "", 0, 0, "empty request" },
	{ "frobnicate", 0, 0, "", 0, 0, "unknown command \"frobnicate\"" },
	{ "show", 0, 0, "", 0, 0, "show needs a queue id" },
	{ "show all", 0, 0, "", 0, 0, "\"all\" is not a queue id" },
	{ "hold ../../etc/passwd", 0, 0, "", 0, 0, "is not a queue id" },
	{ "hold 6B02B002CED4FD50", 0, 0, "", 0, 0, "is not a queue id" },
	/* Today's ids are 32 digits; 16 (older spools) still read; no other. */
	{ "show 6b02b002ced4fd50a1b2c3d4e5f60718", 1, CONTROL_SHOW,
	  "6b02b002ced4fd50a1b2c3d4e5f60718", 0, 0, NULL },
	{ "delete 6b02b002ced4fd50a1b2c3d4e5f60718", 1, CONTROL_DELETE,
	  "6b02b002ced4fd50a1b2c3d4e5f60718", 0, 1, NULL },
	{ "hold 6b02b002ced4fd50a1b2c3d4e5f607189", 0, 0, "", 0, 0,
	  "is not a queue id" },
	{ "show 6b02b002ced4fd50a1b2", 0, 0, "", 0, 0, "is not a queue id" },
	{ "show 6b02b002ced4fd50a1b2c3d4e5f6071g", 0, 0, "", 0, 0,
	  "is not a queue id" },
	{ "queue extra", 0, 0, "", 0, 0, "queue takes no argument" },
	{ "hold a b c d e", 0, 0, "", 0, 0, "too many words" },
};

START_TEST(test_parse_request)
{
	struct control_request r;
	char err[128] = "";
	int rc = control_parse_request(requests[_i].line, &r, err,
	    sizeof(err));

	if (!requests[_i].ok) {
		ck_assert_int_eq(rc, -1);
		ck_assert_msg(strstr(err, requests[_i].err) != NULL,
		    "\"%s\": got \"%s\"", requests[_i].line, err);
		return;
	}
	ck_assert_msg(rc == 0, "\"%s\": %s", requests[_i].line, err);
	ck_assert_int_eq(r.cmd, requests[_i].cmd);
	ck_assert_str_eq(r.arg, requests[_i].arg);
	ck_assert_int_eq(r.json, requests[_i].json);
	ck_assert_int_eq(r.privileged, requests[_i].privileged);
}
END_TEST

START_TEST(test_request_too_long)
{
	char line[600], err[64];
	struct control_request r;

	memset(line, 'a', sizeof(line) - 1);
	line[sizeof(line) - 1] = '\0';
	ck_assert_int_eq(control_parse_request(line, &r, err, sizeof(err)), -1);
	ck_assert_str_eq(err, "request too long");
}
END_TEST

/*
 * The one command table: every command sesrelayctl offers (a row with
 * help) reaches the daemon's dispatcher as sesrelayctl sends it, with
 * each argument form it takes, and every row has a runner.
 */
START_TEST(test_command_table)
{
	static const char *const args[] = {
		[CONTROL_ARG_NONE] = "",
		[CONTROL_ARG_ID] = " 6b02b002ced4fd50a1b2c3d4e5f60718",
		[CONTROL_ARG_ID_OR_ALL] = " all",
	};
	enum control_cmd none;
	int offered = 0;

	for (int i = 0; i < CONTROL_NCMDS; i++) {
		const struct control_command *c = control_command(i);
		struct control_request r;
		enum control_cmd found;
		char line[128], err[128] = "";

		ck_assert_ptr_nonnull(c->name);
		ck_assert_ptr_nonnull(c->run);
		ck_assert_ptr_eq(control_command_find(c->name, &found), c);
		ck_assert_int_eq(found, i);
		offered += c->help != NULL;
		snprintf(line, sizeof(line), "%s%s --json", c->name,
		    args[c->arg]);
		ck_assert_msg(control_parse_request(line, &r, err,
		    sizeof(err)) == 0, "\"%s\": %s", line, err);
		ck_assert_int_eq(r.cmd, i);
		ck_assert_int_eq(r.privileged, c->privileged);
		ck_assert_int_eq(r.json, 1);
	}
	ck_assert_int_eq(offered, CONTROL_NCMDS - 1);	/* not mailq */
	ck_assert_ptr_null(control_command_find("check", &none));
}
END_TEST

static char *
render(void (*fn)(FILE *, void *), void *arg)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *fp = open_memstream(&buf, &len);

	ck_assert_ptr_nonnull(fp);
	fn(fp, arg);
	fclose(fp);
	return buf;
}

static struct spool_envelope *
envelope(void)
{
	static char *rcpts[] = { "a@example.com", "b\"q@example.com" };
	struct spool_envelope *e = spool_envelope_new("6b02b002ced4fd50",
	    "sender@example.com", rcpts, 2, 1234);

	e->arrived = 1700000000;
	e->attempts = 2;
	e->next_attempt = 1700000100;
	e->status[0] = SPOOL_RCPT_DONE;
	e->reply[0] = strdup("250 Ok 0100-x");
	e->reply[1] = strdup("451 Temporary service failure\nline\ttwo");
	/* Two copies to b were lost after the dot. */
	e->unknown = calloc(2, sizeof(*e->unknown));
	e->unknown[1] = 2;
	return e;
}

static struct scheduler_view view;

static void
msg_text(FILE *fp, void *arg)
{
	control_render_message(fp, &view, 0, *(int *)arg, 1700000040);
}

static void
msg_json(FILE *fp, void *arg)
{
	control_render_message(fp, &view, 1, 1, 1700000040);
}

static void
msg_mailq(FILE *fp, void *arg)
{
	control_render_mailq(fp, &view);
}

START_TEST(test_render_text)
{
	struct spool_envelope *e = envelope();
	int full = 0;
	char *out;

	view.env = e;
	view.held = view.active = view.deleted = 0;
	out = render(msg_text, &full);
	ck_assert_msg(strstr(out, "6b02b002ced4fd50  1234 bytes  arrived ") ==
	    out, "%s", out);
	ck_assert_msg(strstr(out, "(40s ago)  deferred, 2 attempts, next in "
	    "60s\n  from <sender@example.com>\n") != NULL, "%s", out);
	/* Only what is pending, with SES's reason. */
	ck_assert_ptr_null(strstr(out, "a@example.com"));
	ck_assert_msg(strstr(out, "  to   <b\"q@example.com>  pending  "
	    "unknown_outcome_copies=2  \"451 Temporary service failure") !=
	    NULL, "%s", out);
	free(out);
	full = 1;
	view.held = 1;
	out = render(msg_text, &full);
	ck_assert_msg(strstr(out, "  held, 2 attempts\n") != NULL, "%s", out);
	ck_assert_msg(strstr(out, "  to   <a@example.com>  delivered  \"250 "
	    "Ok 0100-x\"") != NULL, "%s", out);
	free(out);
	spool_envelope_free(e);
}
END_TEST

START_TEST(test_render_json_escapes)
{
	struct spool_envelope *e = envelope();
	char *out;

	view.env = e;
	view.held = view.deleted = 0;
	view.active = 1;
	out = render(msg_json, NULL);
	ck_assert_str_eq(out, "{\"id\":\"6b02b002ced4fd50\",\"arrived\":"
	    "1700000000,\"size\":1234,\"sender\":\"sender@example.com\","
	    "\"state\":\"active\",\"held\":false,\"bounce\":false,"
	    "\"attempts\":2,\"next_attempt\":1700000100,\"recipients\":["
	    "{\"address\":\"a@example.com\",\"status\":\"delivered\","
	    "\"reply\":\"250 Ok 0100-x\",\"unknown_outcome_copies\":0},"
	    "{\"address\":\"b\\\"q@example.com\","
	    "\"status\":\"pending\",\"reply\":\"451 Temporary service failure"
	    "\\u000aline\\u0009two\",\"unknown_outcome_copies\":2}]}");
	free(out);
	spool_envelope_free(e);
}
END_TEST

START_TEST(test_render_mailq)
{
	struct spool_envelope *e = envelope();
	char *out;

	view.env = e;
	view.active = view.deleted = 0;
	view.held = 1;
	out = render(msg_mailq, NULL);
	/* '!' marks a held message, the reason comes before the rcpt. */
	ck_assert_msg(strncmp(out, "6b02b002ced4fd50!     1234 ", 27) == 0,
	    "%s", out);
	ck_assert_msg(strstr(out, "  sender@example.com\n(451 Temporary "
	    "service failure\nline\ttwo)\n") != NULL, "%s", out);
	ck_assert_msg(strstr(out, "                                        "
	    "         b\"q@example.com\n\n") != NULL, "%s", out);
	free(out);
	spool_envelope_free(e);
}
END_TEST

static struct control_status status = {
	"email-smtp.eu-west-1.amazonaws.com", 0, 7.0, 14.0, 2, 4, 1, 0, 3, 1,
	125, 1, 0,
	.fleet = { .state = "off" },
};

static void
stats_text(FILE *fp, void *arg)
{
	control_render_stats(fp, &status, *(int *)arg, stats.started + 3725);
}

START_TEST(test_render_stats)
{
	int json = 0;
	char *out;

	memset(&stats, 0, sizeof(stats));
	stats.started = 1700000000;
	stats.accepted = 5;
	stats.delivered = 4;
	stats.replies[SES_ACT_QUOTA] = 2;
	out = render(stats_text, &json);
	ck_assert_msg(strstr(out, "uptime        62m05s\nqueue         3 "
	    "messages (1 ready, 1 held), oldest 2m05s\n") == out, "%s", out);
	ck_assert_msg(strstr(out, "rate          7.00 recipients/s "
	    "(upstream.rate 14.00)\ndaily quota   exceeded: sending paused\n")
	    != NULL, "%s", out);
	ck_assert_msg(strstr(out, " daily_quota=2 ") != NULL, "%s", out);
	free(out);
	json = 1;
	out = render(stats_text, &json);
	ck_assert_msg(strstr(out, "\"quota_paused\":true") != NULL, "%s", out);
	ck_assert_msg(strstr(out, "\"accepted\":5,\"delivered\":4") != NULL,
	    "%s", out);
	ck_assert_msg(strstr(out, "\"daily_quota\":2") != NULL, "%s", out);
	ck_assert_msg(strstr(out, "\"account\":null}") != NULL, "%s", out);
	free(out);
}
END_TEST

/* With fleet.store set: the fleet's lines and its JSON object. */
START_TEST(test_render_stats_fleet)
{
	int json = 0;
	char *out;
	struct control_status saved = status;

	memset(&stats, 0, sizeof(stats));
	status.fleet = (struct fleet_status){ "shared", "eu-prod", 1, 14.0,
	    12345, 8, 0, 700, 90 };
	out = render(stats_text, &json);
	ck_assert_msg(strstr(out, "\nfleet         eu-prod: shared through the "
	    "store, 8 hosts seen, rate 14.00 recipients/s\nfleet 24 h    12345 "
	    "recipients\nfleet leases  700 tokens in 90 requests\n") != NULL,
	    "%s", out);
	free(out);
	json = 1;
	out = render(stats_text, &json);
	ck_assert_msg(strstr(out, ",\"fleet\":{\"name\":\"eu-prod\",\"state\":"
	    "\"shared\",\"rate\":14.000,\"hosts\":8,\"count_24h\":12345,"
	    "\"quota_paused\":false,\"leased\":700,\"requests\":90},"
	    "\"account\":null}\n") != NULL,
	    "%s", out);
	free(out);
	status.fleet = (struct fleet_status){ "fallback", "eu-prod", 0, 1.75,
	    -1, 0, 0, 0, 3 };
	json = 0;
	out = render(stats_text, &json);
	ck_assert_msg(strstr(out, "\nfleet         eu-prod: fallback, this "
	    "host alone at 1.75 recipients/s\n") != NULL, "%s", out);
	ck_assert_ptr_null(strstr(out, "fleet 24 h"));
	free(out);
	status = saved;
	/* Without fleet.store: not a word. */
	out = render(stats_text, &json);
	ck_assert_ptr_null(strstr(out, "fleet"));
	free(out);
}
END_TEST

/* The account's limits (GetAccount) in `stats`, text and JSON. */
START_TEST(test_render_account)
{
	struct account_view a = { 1, 200, 1.0, 150, 30, 0, "SHUTDOWN",
	    1700000000, ACCOUNT_SHUTDOWN };
	int json = 0;
	char *out;

	memset(&stats, 0, sizeof(stats));
	stats.started = 1700000000;
	status.account = &a;
	out = render(stats_text, &json);
	ck_assert_msg(strstr(out, "daily quota   exceeded: sending paused\n"
	    "account       180 of 200 recipients in 24 h, at most 1.00/s; "
	    "sending DISABLED, SHUTDOWN; PAUSED: shutdown; read 62m05s ago\n")
	    != NULL, "%s", out);
	free(out);
	json = 1;
	out = render(stats_text, &json);
	ck_assert_msg(strstr(out, "\"account\":{\"known\":true,"
	    "\"max_24h_send\":200,\"sent_last_24h\":180,\"max_send_rate\":1.000,"
	    "\"sending_enabled\":false,\"enforcement_status\":\"SHUTDOWN\","
	    "\"paused\":\"shutdown\",\"read_at\":1700000000}}\n") != NULL,
	    "%s", out);
	free(out);
	a.known = 0;
	json = 0;
	out = render(stats_text, &json);
	ck_assert_msg(strstr(out, "account       not read yet") != NULL, "%s",
	    out);
	free(out);
	status.account = NULL;
}
END_TEST

static Suite *
control_suite(void)
{
	Suite *s = suite_create("control");
	TCase *tc = tcase_create("all");

	tcase_add_loop_test(tc, test_parse_request, 0,
	    sizeof(requests) / sizeof(requests[0]));
	tcase_add_test(tc, test_request_too_long);
	tcase_add_test(tc, test_command_table);
	tcase_add_test(tc, test_render_text);
	tcase_add_test(tc, test_render_json_escapes);
	tcase_add_test(tc, test_render_mailq);
	tcase_add_test(tc, test_render_stats);
	tcase_add_test(tc, test_render_stats_fleet);
	tcase_add_test(tc, test_render_account);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return fixture_run(control_suite());
}
