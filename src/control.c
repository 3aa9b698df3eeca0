/*
 * control.c: the control socket (see control.h).
 *
 * A connection lives for one request: read a line (at most
 * CONTROL_LINE_MAX bytes, within CONTROL_TIMEOUT seconds in all, however
 * slowly it trickles in), check who asks, run the command, write the
 * answer, close when it is flushed.
 *
 * Commands: one table, commands[] (control.h's struct control_command),
 * which the parser, the dispatcher and sesrelayctl all follow.
 *
 * Slots: CONTROL_CLIENTS connections at once, of which CONTROL_RESERVED
 * only for privileged peers (root, our user, our group: see allowed()),
 * and at most CONTROL_PER_USER for one unprivileged user, so that no
 * user can lock root (or the other users) out of sesrelayctl.  An
 * unprivileged peer's answer must be read within CONTROL_ANSWER_TIMEOUT;
 * a privileged one's only needs to make progress (a long queue listing).
 */
#include "config.h"

#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "accept_backoff.h"
#include "account.h"
#include "control.h"
#include "listener.h"
#include "log.h"
#include "scheduler.h"
#include "spool.h"
#include "stats.h"

#define CONTROL_LINE_MAX	512
#define CONTROL_TIMEOUT		10	/* seconds for the whole request */
#define CONTROL_ANSWER_TIMEOUT	60	/* an unprivileged peer's whole answer */
#define CONTROL_CLIENTS		CONTROL_MAX_CLIENTS /* more: closed at once */
#define CONTROL_RESERVED	16	/* ... of them for privileged peers */
#define CONTROL_PER_USER	4	/* one unprivileged user's at most */

/* The daemon's side of each command (below, with the server). */
typedef int run_fn(struct control *, const struct control_request *, FILE *,
    char *, size_t);
static run_fn run_queue, run_show, run_flush, run_hold, run_release,
    run_delete, run_stats, run_reload, run_mailq;

/* The command table (control.h): sesrelayctl's usage comes from it. */
static const struct control_command commands[CONTROL_NCMDS] = {
	[CONTROL_QUEUE] = { "queue", CONTROL_ARG_NONE, 0,
	    "list the queue, with deferral reasons", run_queue },
	[CONTROL_SHOW] = { "show", CONTROL_ARG_ID, 0,
	    "one message: envelope, state per recipient, last reply",
	    run_show },
	[CONTROL_FLUSH] = { "flush", CONTROL_ARG_NONE, 1,
	    "make every deferred message due now", run_flush },
	[CONTROL_HOLD] = { "hold", CONTROL_ARG_ID_OR_ALL, 1,
	    "keep a message (or all) from being sent", run_hold },
	[CONTROL_RELEASE] = { "release", CONTROL_ARG_ID_OR_ALL, 1,
	    "let held messages go again", run_release },
	[CONTROL_DELETE] = { "delete", CONTROL_ARG_ID_OR_ALL, 1,
	    "remove a message (or all) without a bounce", run_delete },
	[CONTROL_STATS] = { "stats", CONTROL_ARG_NONE, 0,
	    "counters, queue depth, rate, sessions, quota state", run_stats },
	[CONTROL_RELOAD] = { "reload", CONTROL_ARG_NONE, 1,
	    "re-read the configuration (as SIGHUP)", run_reload },
	[CONTROL_MAILQ] = { "mailq", CONTROL_ARG_NONE, 0, NULL, run_mailq },
};

const struct control_command *
control_command(enum control_cmd cmd)
{
	return &commands[cmd];
}

const struct control_command *
control_command_find(const char *name, enum control_cmd *cmd)
{
	for (size_t i = 0; i < CONTROL_NCMDS; i++)
		if (strcmp(name, commands[i].name) == 0) {
			*cmd = (enum control_cmd)i;
			return &commands[i];
		}
	return NULL;
}

/* Split line into at most max words, taking "--json" out; -1 with err. */
static int
split_words(char *line, char **words, size_t max, size_t *nw, int *json,
    char *err, size_t errlen)
{
	char *save, *w;

	*nw = 0;
	for (w = strtok_r(line, " \t\r", &save); w != NULL;
	    w = strtok_r(NULL, " \t\r", &save)) {
		if (strcmp(w, "--json") == 0) {
			*json = 1;
			continue;
		}
		if (*nw == max) {
			snprintf(err, errlen, "too many words");
			return -1;
		}
		words[(*nw)++] = w;
	}
	if (*nw == 0) {
		snprintf(err, errlen, "empty request");
		return -1;
	}
	return 0;
}

/* Is a (NULL: none) what cmd takes?  0, or -1 with err. */
static int
check_arg(const struct control_command *cmd, const char *a, char *err,
    size_t errlen)
{
	const char *or_all = cmd->arg == CONTROL_ARG_ID_OR_ALL ?
	    " or \"all\"" : "";

	if (cmd->arg == CONTROL_ARG_NONE) {
		if (a == NULL)
			return 0;
		snprintf(err, errlen, "%s takes no argument", cmd->name);
	} else if (a == NULL)
		snprintf(err, errlen, "%s needs a queue id%s", cmd->name,
		    or_all);
	else if ((*or_all && strcmp(a, "all") == 0) || spool_id_is_valid(a))
		return 0;
	else
		snprintf(err, errlen, "\"%.32s\" is not a queue id%s", a,
		    or_all);
	return -1;
}

int
control_parse_request(const char *line, struct control_request *r,
    char *err, size_t errlen)
{
	char buf[CONTROL_LINE_MAX], *words[4];
	const struct control_command *cmd;
	size_t nw;

	memset(r, 0, sizeof(*r));
	if (strlen(line) >= sizeof(buf)) {
		snprintf(err, errlen, "request too long");
		return -1;
	}
	strcpy(buf, line);
	if (split_words(buf, words, sizeof(words) / sizeof(words[0]), &nw,
	    &r->json, err, errlen) == -1)
		return -1;
	if ((cmd = control_command_find(words[0], &r->cmd)) == NULL) {
		snprintf(err, errlen, "unknown command \"%.32s\"", words[0]);
		return -1;
	}
	if (nw > 2) {
		snprintf(err, errlen, "%s takes %s", cmd->name,
		    cmd->arg == CONTROL_ARG_NONE ? "no argument" :
		    "one argument");
		return -1;
	}
	if (check_arg(cmd, nw == 2 ? words[1] : NULL, err, errlen) == -1)
		return -1;
	if (nw == 2)
		snprintf(r->arg, sizeof(r->arg), "%s", words[1]);
	r->privileged = cmd->privileged;
	return 0;
}

void
control_json_string(FILE *fp, const char *s)
{
	fputc('"', fp);
	for (const unsigned char *p = (const unsigned char *)(s ? s : "");
	    *p; p++) {
		if (*p == '"' || *p == '\\')
			fprintf(fp, "\\%c", *p);
		else if (*p < 0x20 || *p == 0x7f)
			fprintf(fp, "\\u%04x", *p);
		else
			fputc(*p, fp);
	}
	fputc('"', fp);
}

static const char *
rcpt_status(enum spool_rcpt_status st)
{
	switch (st) {
	case SPOOL_RCPT_PENDING:	return "pending";
	case SPOOL_RCPT_DONE:		return "delivered";
	case SPOOL_RCPT_FAILED:		return "failed";
	case SPOOL_RCPT_BOUNCED:	return "bounced";
	}
	return "unknown";
}

static const char *
msg_state(const struct scheduler_view *v, time_t now)
{
	if (v->deleted)
		return "deleted";
	if (v->held)
		return "held";
	if (v->active)
		return "active";
	if (v->env->attempts > 0 && v->env->next_attempt > now)
		return "deferred";
	return "queued";
}

static void
when(FILE *fp, time_t t)
{
	struct tm tm;
	char buf[64];

	strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%S", localtime_r(&t, &tm));
	fputs(buf, fp);
}

static void
duration(FILE *fp, long long s)
{
	if (s < 0)
		s = 0;
	if (s < 120)
		fprintf(fp, "%llds", s);
	else if (s < 7200)
		fprintf(fp, "%lldm%02llds", s / 60, s % 60);
	else if (s < 172800)
		fprintf(fp, "%lldh%02lldm", s / 3600, s / 60 % 60);
	else
		fprintf(fp, "%lldd%02lldh", s / 86400, s / 3600 % 24);
}

void
control_render_message(FILE *fp, const struct scheduler_view *v, int json,
    int full, time_t now)
{
	const struct spool_envelope *e = v->env;

	if (json) {
		fputs("{\"id\":", fp);
		control_json_string(fp, e->id);
		fprintf(fp, ",\"arrived\":%lld,\"size\":%lld,\"sender\":",
		    (long long)e->arrived, (long long)e->body_size);
		control_json_string(fp, e->sender);
		fprintf(fp, ",\"state\":\"%s\",\"held\":%s,\"bounce\":%s,"
		    "\"attempts\":%u,\"next_attempt\":%lld,\"recipients\":[",
		    msg_state(v, now), v->held ? "true" : "false",
		    e->flags & SPOOL_F_DSN ? "true" : "false", e->attempts,
		    (long long)e->next_attempt);
		for (size_t i = 0; i < e->nrcpt; i++) {
			fputs(i ? ",{\"address\":" : "{\"address\":", fp);
			control_json_string(fp, e->rcpts[i]);
			fprintf(fp, ",\"status\":\"%s\",\"reply\":",
			    rcpt_status(e->status[i]));
			if (e->reply[i] != NULL)
				control_json_string(fp, e->reply[i]);
			else
				fputs("null", fp);
			fprintf(fp, ",\"unknown_outcome_copies\":%u",
			    e->unknown != NULL ? e->unknown[i] : 0);
			fputc('}', fp);
		}
		fputs("]}", fp);
		return;
	}
	fprintf(fp, "%s  %lld bytes  arrived ", e->id,
	    (long long)e->body_size);
	when(fp, e->arrived);
	fputs(" (", fp);
	duration(fp, (long long)(now - e->arrived));
	fprintf(fp, " ago)  %s", msg_state(v, now));
	if (e->attempts > 0)
		fprintf(fp, ", %u attempt%s", e->attempts,
		    e->attempts == 1 ? "" : "s");
	if (!v->held && !v->active && e->next_attempt > now) {
		fputs(", next in ", fp);
		duration(fp, (long long)(e->next_attempt - now));
	}
	if (e->flags & SPOOL_F_DSN)
		fputs(", a bounce", fp);
	fprintf(fp, "\n  from <%s>\n", e->sender);
	for (size_t i = 0; i < e->nrcpt; i++) {
		if (!full && e->status[i] != SPOOL_RCPT_PENDING)
			continue;
		fprintf(fp, "  to   <%s>  %s", e->rcpts[i],
		    rcpt_status(e->status[i]));
		if (e->unknown != NULL && e->unknown[i] > 0)
			fprintf(fp, "  unknown_outcome_copies=%u",
			    e->unknown[i]);
		if (e->reply[i] != NULL)
			fprintf(fp, "  \"%s\"", e->reply[i]);
		fputc('\n', fp);
	}
}

void
control_render_mailq_header(FILE *fp)
{
	fputs("-Queue ID------------------------ --Size-- "
	    "----Arrival Time---- "
	    "-Sender/Recipient-------\n", fp);
}

/* As Postfix's mailq: '*' active, '!' held; the reason in parentheses. */
void
control_render_mailq(FILE *fp, const struct scheduler_view *v)
{
	const struct spool_envelope *e = v->env;
	const char *reason = NULL;
	struct tm tm;
	char date[32];

	strftime(date, sizeof(date), "%a %b %e %H:%M:%S",
	    localtime_r(&e->arrived, &tm));
	fprintf(fp, "%s%c %8lld %s  %s\n", e->id, v->active ? '*' :
	    v->held ? '!' : ' ', (long long)e->body_size, date,
	    e->sender[0] ? e->sender : "MAILER-DAEMON");
	for (size_t i = 0; i < e->nrcpt; i++) {
		if (e->status[i] != SPOOL_RCPT_PENDING)
			continue;
		if (e->reply[i] != NULL && (reason == NULL ||
		    strcmp(reason, e->reply[i]) != 0)) {
			reason = e->reply[i];
			fprintf(fp, "(%s)\n", reason);
		}
		fprintf(fp, "%49s%s\n", "", e->rcpts[i]);
	}
	fputc('\n', fp);
}

/* The fleet's part of stats --json: "fleet":{...}, or nothing when off. */
static void
render_fleet_json(FILE *fp, const struct fleet_status *f)
{
	if (f->state == NULL || strcmp(f->state, "off") == 0)
		return;
	fputs(",\"fleet\":{\"name\":", fp);
	control_json_string(fp, f->name);
	fprintf(fp, ",\"state\":\"%s\",\"rate\":%.3f,\"hosts\":%d,"
	    "\"count_24h\":%lld,\"quota_paused\":%s,\"leased\":%llu,"
	    "\"requests\":%llu}", f->state, f->rate, f->hosts, f->count24h,
	    f->paused ? "true" : "false", f->leased, f->requests);
}

/* The fleet's lines of stats, or nothing when off. */
static void
render_fleet_text(FILE *fp, const struct fleet_status *f)
{
	if (f->state == NULL || strcmp(f->state, "off") == 0)
		return;
	fprintf(fp, "fleet         %s: %s", f->name, f->shared ?
	    "shared through the store" : f->state);
	if (!f->shared)
		fprintf(fp, ", this host alone at %.2f recipients/s", f->rate);
	else
		fprintf(fp, ", %d host%s seen, rate %.2f recipients/s%s",
		    f->hosts, f->hosts == 1 ? "" : "s", f->rate,
		    f->paused ? ", daily quota exceeded: paused" : "");
	fputc('\n', fp);
	if (f->count24h >= 0)
		fprintf(fp, "fleet 24 h    %lld recipients\n", f->count24h);
	fprintf(fp, "fleet leases  %llu tokens in %llu requests\n", f->leased,
	    f->requests);
}

static const char *const account_holds[] = { "ok", "quota", "disabled",
    "shutdown" };

/* The account's limits as GetAccount last said, for `stats`. */
static void
render_account(FILE *fp, const struct account_view *a, time_t now)
{
	if (a == NULL)
		return;
	if (!a->known) {
		fputs("account       not read yet (GetAccount)\n", fp);
		return;
	}
	fprintf(fp, "account       %.0f of ", a->sent_24h + a->sent_since);
	if (a->max_24h < 0)
		fputs("unlimited", fp);
	else
		fprintf(fp, "%.0f", a->max_24h);
	fprintf(fp, " recipients in 24 h, at most %.2f/s; sending %s, %s%s%s; "
	    "read ", a->max_rate, a->sending_enabled ? "enabled" : "DISABLED",
	    a->enforcement, a->hold != ACCOUNT_OK ? "; PAUSED: " : "",
	    a->hold != ACCOUNT_OK ? account_holds[a->hold] : "");
	duration(fp, (long long)(now - a->read_at));
	fputs(" ago\n", fp);
}

static void
render_account_json(FILE *fp, const struct account_view *a)
{
	if (a == NULL || !a->known) {
		fputs(a == NULL ? "null" : "{\"known\":false}", fp);
		return;
	}
	fprintf(fp, "{\"known\":true,\"max_24h_send\":%.0f,"
	    "\"sent_last_24h\":%.0f,\"max_send_rate\":%.3f,"
	    "\"sending_enabled\":%s,\"enforcement_status\":", a->max_24h,
	    a->sent_24h + a->sent_since, a->max_rate,
	    a->sending_enabled ? "true" : "false");
	control_json_string(fp, a->enforcement);
	fprintf(fp, ",\"paused\":\"%s\",\"read_at\":%lld}",
	    account_holds[a->hold], (long long)a->read_at);
}

void
control_render_stats(FILE *fp, const struct control_status *st, int json,
    time_t now)
{
	if (json) {
		fprintf(fp, "{\"uptime\":%lld,\"queue\":{\"messages\":%zu,"
		    "\"ready\":%zu,\"held\":%zu,\"oldest_age\":%lld,"
		    "\"indexing\":%s},\"upstream\":{\"host\":",
		    (long long)(now - stats.started), st->queued, st->ready,
		    st->held, st->oldest_age, st->indexing ? "true" : "false");
		control_json_string(fp, st->upstream);
		fprintf(fp, ",\"fallback_active\":%s,\"sessions\":%d,"
		    "\"max_sessions\":%d,\"rate\":%.3f,\"rate_configured\":%.3f,"
		    "\"quota_paused\":%s,\"backing_off\":%s},\"counters\":{"
		    "\"accepted\":%llu,\"delivered\":%llu,\"deferred\":%llu,"
		    "\"failed\":%llu,\"expired\":%llu,\"bounced\":%llu,"
		    "\"connections\":%llu},\"replies\":{",
		    st->fallback_active ? "true" : "false", st->sessions,
		    st->max_sessions, st->rate, st->rate_configured,
		    st->quota_paused ? "true" : "false",
		    st->backing_off ? "true" : "false", stats.accepted,
		    stats.delivered, stats.deferred, stats.failed,
		    stats.expired, stats.bounced, stats.connections);
		for (int i = 0; i < STATS_NACTIONS; i++)
			fprintf(fp, "%s\"%s\":%llu", i ? "," : "",
			    stats_action_name(i), stats.replies[i]);
		fputc('}', fp);
		render_fleet_json(fp, &st->fleet);
		fputs(",\"account\":", fp);
		render_account_json(fp, st->account);
		fputs("}\n", fp);
		return;
	}
	fputs("uptime        ", fp);
	duration(fp, (long long)(now - stats.started));
	fprintf(fp, "\nqueue         %zu message%s (%zu ready, %zu held)",
	    st->queued, st->queued == 1 ? "" : "s", st->ready, st->held);
	if (st->queued > 0) {
		fputs(", oldest ", fp);
		duration(fp, st->oldest_age);
	}
	if (st->indexing)
		fputs("; indexing the spool, more to come", fp);
	fprintf(fp, "\nupstream      %s%s\n", st->upstream,
	    st->fallback_active ? " (the fallback)" : "");
	fprintf(fp, "sessions      %d open, at most %d now%s\n", st->sessions,
	    st->max_sessions, st->backing_off ? ", backing off" : "");
	fprintf(fp, "rate          %.2f recipients/s (upstream.rate %.2f)\n",
	    st->rate, st->rate_configured);
	fprintf(fp, "daily quota   %s\n", st->quota_paused ?
	    "exceeded: sending paused" : "ok");
	render_account(fp, st->account, now);
	fprintf(fp, "accepted      %llu messages\n", stats.accepted);
	fprintf(fp, "delivered     %llu recipients\n", stats.delivered);
	fprintf(fp, "deferred      %llu\n", stats.deferred);
	fprintf(fp, "failed        %llu (expired %llu)\n", stats.failed,
	    stats.expired);
	fprintf(fp, "bounces       %llu\n", stats.bounced);
	fprintf(fp, "connections   %llu\n", stats.connections);
	fputs("SES replies  ", fp);
	for (int i = 0; i < STATS_NACTIONS; i++)
		fprintf(fp, " %s=%llu", stats_action_name(i),
		    stats.replies[i]);
	fputc('\n', fp);
	render_fleet_text(fp, &st->fleet);
}

/* ---- the server ---- */

struct client;

struct control {
	struct event_base	*base;
	struct evconnlistener	*listener;
	size_t			 nlisteners;	/* 1: for the backoff */
	struct accept_backoff	 backoff;	/* when accept() fails */
	struct control_ops	 ops;
	char			*path;
	TAILQ_HEAD(, client)	 clients;	/* freed with the control */
	size_t			 nclients;
};

struct client {
	struct control		*ctl;
	struct bufferevent	*bev;
	struct event		*deadline;	/* CONTROL_TIMEOUT, ... */
	uid_t			 uid;
	int			 privileged;	/* allowed(), on connect */
	int			 closing;
	TAILQ_ENTRY(client)	 entry;
};

/*
 * May this peer change the queue?  Root, our own user, or a process in
 * our group: the kernel says which groups the connecting process has
 * (SO_PEERGROUPS), so no user database is asked on the event loop.
 */
static int
allowed(const struct control *ctl, const struct listener_peer *p)
{
	if (p->uid == 0 || p->uid == geteuid())
		return 1;
	for (int i = 0; i < p->ngroups; i++)
		if (p->groups[i] == ctl->ops.group)
			return 1;
	return 0;
}

struct render_ctx {
	FILE	*fp;
	int	 json;
	int	 n;
	long long bytes;
	time_t	 now;
};

static void
render_one(void *arg, const struct scheduler_view *v)
{
	struct render_ctx *r = arg;

	if (r->json && r->n > 0)
		fputc(',', r->fp);
	control_render_message(r->fp, v, r->json, 0, r->now);
	if (r->json)
		fputc('\n', r->fp);
	r->n++;
}

static void
mailq_one(void *arg, const struct scheduler_view *v)
{
	struct render_ctx *r = arg;

	if (r->n++ == 0)
		control_render_mailq_header(r->fp);
	control_render_mailq(r->fp, v);
	r->bytes += v->env->body_size;
}

static int
run_queue(struct control *ctl, const struct control_request *q, FILE *fp,
    char *err, size_t errlen)
{
	struct scheduler *s = ctl->ops.sched;
	struct render_ctx r = { fp, q->json, 0, 0, time(NULL) };

	if (q->json)
		fputs("{\"messages\":[\n", fp);
	scheduler_foreach(s, render_one, &r);
	if (q->json)
		fprintf(fp, "],\"indexing\":%s}\n",
		    scheduler_is_indexing(s) ? "true" : "false");
	else if (r.n == 0 && !scheduler_is_indexing(s))
		fputs("The queue is empty.\n", fp);
	else
		fprintf(fp, "-- %d message%s%s\n", r.n, r.n == 1 ? "" : "s",
		    scheduler_is_indexing(s) ? " so far: the spool is still "
		    "being indexed" : "");
	return 0;
}

static int
run_mailq(struct control *ctl, const struct control_request *q, FILE *fp,
    char *err, size_t errlen)
{
	struct scheduler *s = ctl->ops.sched;
	struct render_ctx r = { fp, q->json, 0, 0, time(NULL) };

	scheduler_foreach(s, mailq_one, &r);
	if (r.n == 0 && !scheduler_is_indexing(s))
		fputs("Mail queue is empty\n", fp);
	else
		fprintf(fp, "-- %lld Kbytes in %d Request%s.%s\n",
		    (r.bytes + 1023) / 1024, r.n, r.n == 1 ? "" : "s",
		    scheduler_is_indexing(s) ? " (so far: the spool is still "
		    "being indexed)" : "");
	return 0;
}

static int
run_show(struct control *ctl, const struct control_request *q, FILE *fp,
    char *err, size_t errlen)
{
	struct scheduler_view v;

	if (scheduler_find(ctl->ops.sched, q->arg, &v) == -1) {
		snprintf(err, errlen, "no message %s in the queue", q->arg);
		return -1;
	}
	control_render_message(fp, &v, q->json, 1, time(NULL));
	if (q->json)
		fputc('\n', fp);
	return 0;
}

static int
run_stats(struct control *ctl, const struct control_request *q, FILE *fp,
    char *err, size_t errlen)
{
	struct control_status st;

	memset(&st, 0, sizeof(st));
	ctl->ops.status(ctl->ops.arg, &st);
	control_render_stats(fp, &st, q->json, time(NULL));
	return 0;
}

static int
run_reload(struct control *ctl, const struct control_request *q, FILE *fp,
    char *err, size_t errlen)
{
	if (ctl->ops.reload == NULL ||
	    ctl->ops.reload(ctl->ops.arg, err, errlen) == -1)
		return -1;
	fputs(q->json ? "{\"reloaded\":true}\n" : "configuration reloaded\n",
	    fp);
	return 0;
}

/* The one message a change names; NULL for "all" (and for a flush). */
static const char *
target(const struct control_request *q)
{
	return q->arg[0] == '\0' || strcmp(q->arg, "all") == 0 ? NULL :
	    q->arg;
}

/*
 * After a change to n messages: an id that changed nothing must exist;
 * wake the pool; say what was done ("held").  0, or -1 with err.
 */
static int
changed(struct control *ctl, const struct control_request *q, FILE *fp,
    size_t n, const char *done, char *err, size_t errlen)
{
	struct scheduler_view v;
	const char *id = target(q);
	int later;

	if (id != NULL && n == 0 && scheduler_find(ctl->ops.sched, id,
	    &v) == -1) {
		snprintf(err, errlen, "no message %s in the queue", id);
		return -1;
	}
	if (ctl->ops.kick != NULL)
		ctl->ops.kick(ctl->ops.arg);
	/* While indexing, an "all" (or a flush) covers the rest as found. */
	later = id == NULL && scheduler_is_indexing(ctl->ops.sched);
	if (q->json)
		fprintf(fp, "{\"changed\":%zu%s}\n", n, later ?
		    ",\"and_as_indexed\":true" : "");
	else
		fprintf(fp, "%zu message%s %s%s\n", n, n == 1 ? "" : "s", done,
		    later ? ", and the rest as the spool's index finds them" :
		    "");
	return 0;
}

static int
run_flush(struct control *ctl, const struct control_request *q, FILE *fp,
    char *err, size_t errlen)
{
	return changed(ctl, q, fp, scheduler_flush(ctl->ops.sched),
	    "made due now", err, errlen);
}

static int
run_hold(struct control *ctl, const struct control_request *q, FILE *fp,
    char *err, size_t errlen)
{
	return changed(ctl, q, fp, scheduler_hold(ctl->ops.sched, target(q)),
	    "held", err, errlen);
}

static int
run_release(struct control *ctl, const struct control_request *q, FILE *fp,
    char *err, size_t errlen)
{
	return changed(ctl, q, fp, scheduler_release(ctl->ops.sched,
	    target(q)), "released", err, errlen);
}

static int
run_delete(struct control *ctl, const struct control_request *q, FILE *fp,
    char *err, size_t errlen)
{
	return changed(ctl, q, fp, scheduler_delete(ctl->ops.sched,
	    target(q)), "deleted", err, errlen);
}

static void
client_free(struct client *c)
{
	TAILQ_REMOVE(&c->ctl->clients, c, entry);
	c->ctl->nclients--;
	event_free(c->deadline);
	bufferevent_free(c->bev);
	free(c);
}

/* The request (or an unprivileged peer's answer) took too long. */
static void
deadline_cb(evutil_socket_t fd, short what, void *arg)
{
	struct client *c = arg;

	log_event(LOG_DEBUG, "-", "control.timeout", "uid=%u reason=%s",
	    (unsigned)c->uid, c->closing ? "answer_not_read" : "no_request");
	client_free(c);
}

static void
free_body(const void *data, size_t len, void *arg)
{
	free((void *)data);
}

static void
answer(struct client *c, const char *line)
{
	struct control_request q;
	char err[256] = "", *body = NULL;
	size_t len = 0;
	FILE *fp;
	int rc;

	if (control_parse_request(line, &q, err, sizeof(err)) == -1) {
		evbuffer_add_printf(bufferevent_get_output(c->bev),
		    "ERR usage: %s\n", err);
		return;
	}
	if (q.privileged && !c->privileged) {
		log_event(LOG_WARNING, "-", "control.refused",
		    "uid=%u request=%s msg=\"needs root or the daemon's "
		    "group\"", (unsigned)c->uid, log_q(line));
		evbuffer_add_printf(bufferevent_get_output(c->bev),
		    "ERR permission denied: only root and the daemon's group "
		    "may change the queue\n");
		return;
	}
	if ((fp = open_memstream(&body, &len)) == NULL)
		abort();
	rc = commands[q.cmd].run(c->ctl, &q, fp, err, sizeof(err));
	fclose(fp);
	if (rc == -1)
		evbuffer_add_printf(bufferevent_get_output(c->bev), "ERR %s\n",
		    err);
	else {
		evbuffer_add(bufferevent_get_output(c->bev), "OK\n", 3);
		/* Not copied: a queue listing may be long. */
		if (len > 0 && evbuffer_add_reference(bufferevent_get_output(
		    c->bev), body, len, free_body, NULL) == 0)
			body = NULL;
	}
	if (q.privileged)
		log_event(LOG_INFO, "-", "control.request",
		    "uid=%u request=%s result=%s", (unsigned)c->uid,
		    log_q(line), log_q(rc == 0 ? "done" : err));
	free(body);
}

static void
read_cb(struct bufferevent *bev, void *arg)
{
	struct client *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	size_t n;
	char *line;

	if (c->closing)
		return;
	if ((line = evbuffer_readln(in, &n, EVBUFFER_EOL_LF)) == NULL) {
		if (evbuffer_get_length(in) <= CONTROL_LINE_MAX)
			return;
		evbuffer_add_printf(bufferevent_get_output(bev),
		    "ERR usage: request too long\n");
	} else {
		if (n > 0 && line[n - 1] == '\r')
			line[n - 1] = '\0';
		answer(c, line);
		free(line);
	}
	c->closing = 1;
	bufferevent_disable(bev, EV_READ);
	if (c->privileged) {
		event_del(c->deadline);
	} else {
		struct timeval tv = { CONTROL_ANSWER_TIMEOUT, 0 };

		event_add(c->deadline, &tv);
	}
}

static void
write_cb(struct bufferevent *bev, void *arg)
{
	struct client *c = arg;

	if (c->closing)
		client_free(c);
}

static void
event_cb(struct bufferevent *bev, short what, void *arg)
{
	client_free(arg);
}

/*
 * May this peer have a slot now?  A privileged one any free slot; an
 * unprivileged one only outside the CONTROL_RESERVED, and at most
 * CONTROL_PER_USER for its user.
 */
static int
control_has_slot_for(const struct control *ctl, const struct client *c)
{
	const struct client *o;
	size_t all = 0, mine = 0;

	if (ctl->nclients >= CONTROL_CLIENTS)
		return 0;
	if (c->privileged)
		return 1;
	TAILQ_FOREACH(o, &ctl->clients, entry)
		if (!o->privileged) {
			all++;
			mine += o->uid == c->uid;
		}
	return all < CONTROL_CLIENTS - CONTROL_RESERVED &&
	    mine < CONTROL_PER_USER;
}

/* No slot: say so (a fresh socket takes a short line) and close. */
static void
refuse_busy(struct client *c, int fd)
{
	static const char busy[] = "ERR busy: too many control connections, "
	    "try again later\n";
	ssize_t n;

	log_event(LOG_DEBUG, "-", "control.refused", "uid=%u reason=busy",
	    (unsigned)c->uid);
	n = send(fd, busy, sizeof(busy) - 1, MSG_DONTWAIT | MSG_NOSIGNAL);
	(void)n;
	evutil_closesocket(fd);
	free(c);
}

static void
accept_cb(struct evconnlistener *l, evutil_socket_t fd,
    struct sockaddr *sa, int salen, void *arg)
{
	struct control *ctl = arg;
	struct client *c = calloc(1, sizeof(*c));
	struct timeval tv = { CONTROL_TIMEOUT, 0 };
	struct listener_peer peer;

	accept_backoff_accepted(&ctl->backoff);
	if (c == NULL || listener_peer(fd, &peer) == -1) {
		free(c);
		evutil_closesocket(fd);
		return;
	}
	c->ctl = ctl;
	c->uid = peer.uid;
	c->privileged = allowed(ctl, &peer);
	if (!control_has_slot_for(ctl, c)) {
		refuse_busy(c, fd);
		return;
	}
	if ((c->bev = bufferevent_socket_new(ctl->base, fd,
	    BEV_OPT_CLOSE_ON_FREE)) == NULL ||
	    (c->deadline = evtimer_new(ctl->base, deadline_cb, c)) == NULL) {
		if (c->bev != NULL)
			bufferevent_free(c->bev);
		else
			evutil_closesocket(fd);
		free(c);
		return;
	}
	TAILQ_INSERT_TAIL(&ctl->clients, c, entry);
	ctl->nclients++;
	bufferevent_setcb(c->bev, read_cb, write_cb, event_cb, c);
	/* Per read and write; the deadline is for the whole request. */
	bufferevent_set_timeouts(c->bev, &tv, &tv);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	event_add(c->deadline, &tv);
}

/* accept() failed (descriptors ran out): pause, do not spin. */
static void
accept_error_cb(struct evconnlistener *l, void *arg)
{
	struct control *ctl = arg;

	accept_backoff_failed(&ctl->backoff, EVUTIL_SOCKET_ERROR());
}

struct control *
control_new(struct event_base *base, const char *path,
    const struct control_ops *ops, char *err, size_t errlen)
{
	struct control *ctl;
	int fd;

	/* Anyone may connect; what they may do is decided per request. */
	if ((fd = listener_bind_unix(path, 0666, err, errlen)) == -1)
		return NULL;
	if ((ctl = calloc(1, sizeof(*ctl))) == NULL)
		abort();
	ctl->base = base;
	ctl->ops = *ops;
	TAILQ_INIT(&ctl->clients);
	if ((ctl->path = strdup(path)) == NULL)
		abort();
	/* Backlog 0: the socket listens already. */
	ctl->listener = evconnlistener_new(base, accept_cb, ctl,
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 0, fd);
	if (ctl->listener == NULL) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		close(fd);
		(void)unlink(path);
		free(ctl->path);
		free(ctl);
		return NULL;
	}
	ctl->nlisteners = 1;
	accept_backoff_init(&ctl->backoff, base, "control", &ctl->listener,
	    &ctl->nlisteners);
	evconnlistener_set_error_cb(ctl->listener, accept_error_cb);
	return ctl;
}

void
control_free(struct control *ctl)
{
	if (ctl == NULL)
		return;
	/* Their requests would reach a control that is gone. */
	while (!TAILQ_EMPTY(&ctl->clients))
		client_free(TAILQ_FIRST(&ctl->clients));
	accept_backoff_stop(&ctl->backoff);
	accept_backoff_free(&ctl->backoff);
	evconnlistener_free(ctl->listener);
	(void)unlink(ctl->path);
	free(ctl->path);
	free(ctl);
}
