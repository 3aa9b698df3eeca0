/*
 * control.c: the control socket (see control.h).
 *
 * A connection lives for one request: read a line (at most
 * CONTROL_LINE_MAX bytes, within CONTROL_TIMEOUT seconds in all, however
 * slowly it trickles in), check who asks, run the command, write the
 * answer, close when it is flushed.
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
#define CONTROL_GROUPS		64	/* a peer's groups we look at */

static const struct {
	const char	*name;
	enum control_cmd cmd;
	int		 arg;		/* 0 none, 1 required */
	int		 privileged;
} commands[] = {
	{ "queue",	CONTROL_QUEUE,		0, 0 },
	{ "mailq",	CONTROL_MAILQ,		0, 0 },
	{ "show",	CONTROL_SHOW,		1, 0 },
	{ "stats",	CONTROL_STATS,		0, 0 },
	{ "flush",	CONTROL_FLUSH,		0, 1 },
	{ "hold",	CONTROL_HOLD,		1, 1 },
	{ "release",	CONTROL_RELEASE,	1, 1 },
	{ "delete",	CONTROL_DELETE,		1, 1 },
	{ "reload",	CONTROL_RELOAD,		0, 1 },
};

int
control_parse_request(const char *line, struct control_request *r,
    char *err, size_t errlen)
{
	char buf[CONTROL_LINE_MAX], *words[4], *save, *w;
	size_t nw = 0, i;

	memset(r, 0, sizeof(*r));
	if (strlen(line) >= sizeof(buf)) {
		snprintf(err, errlen, "request too long");
		return -1;
	}
	strcpy(buf, line);
	for (w = strtok_r(buf, " \t\r", &save); w != NULL;
	    w = strtok_r(NULL, " \t\r", &save)) {
		if (strcmp(w, "--json") == 0) {
			r->json = 1;
			continue;
		}
		if (nw == sizeof(words) / sizeof(words[0])) {
			snprintf(err, errlen, "too many words");
			return -1;
		}
		words[nw++] = w;
	}
	if (nw == 0) {
		snprintf(err, errlen, "empty request");
		return -1;
	}
	for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strcmp(words[0], commands[i].name) == 0)
			break;
	if (i == sizeof(commands) / sizeof(commands[0])) {
		snprintf(err, errlen, "unknown command \"%.32s\"", words[0]);
		return -1;
	}
	if ((size_t)commands[i].arg != nw - 1) {
		snprintf(err, errlen, commands[i].arg ? "%s needs a queue id "
		    "or \"all\"" : "%s takes no argument", commands[i].name);
		return -1;
	}
	if (nw == 2) {
		size_t n = strlen(words[1]);
		int ok = strcmp(words[1], "all") == 0 && commands[i].cmd !=
		    CONTROL_SHOW;

		if (!ok && spool_id_is_valid(words[1]))
			ok = 1;
		if (!ok) {
			snprintf(err, errlen, "\"%.32s\" is not a queue id%s",
			    words[1], commands[i].cmd == CONTROL_SHOW ? "" :
			    " or \"all\"");
			return -1;
		}
		memcpy(r->arg, words[1], n + 1);
	}
	r->cmd = commands[i].cmd;
	r->privileged = commands[i].privileged;
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
		fputs("}}\n", fp);
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
	gid_t			 groups[CONTROL_GROUPS];	/* its gid first */
	int			 ngroups;
	int			 closing;
	TAILQ_ENTRY(client)	 entry;
};

/*
 * May this peer change the queue?  Root, our own user, or a process in
 * our group: the kernel says which groups the connecting process has
 * (SO_PEERGROUPS), so no user database is asked on the event loop.
 */
static int
allowed(const struct control *ctl, const struct client *c)
{
	if (c->uid == 0 || c->uid == geteuid())
		return 1;
	for (int i = 0; i < c->ngroups; i++)
		if (c->groups[i] == ctl->ops.group)
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

/* Run a request; the body goes to fp.  0, or -1 with err. */
static int
run(struct control *ctl, const struct control_request *q, FILE *fp,
    char *err, size_t errlen)
{
	struct scheduler *s = ctl->ops.sched;
	struct render_ctx r = { fp, q->json, 0, 0, time(NULL) };
	struct scheduler_view v;
	struct control_status st;
	const char *id = strcmp(q->arg, "all") == 0 ? NULL : q->arg;
	size_t n = 0;
	int later;

	switch (q->cmd) {
	case CONTROL_QUEUE:
		if (q->json)
			fputs("{\"messages\":[\n", fp);
		scheduler_foreach(s, render_one, &r);
		if (q->json)
			fprintf(fp, "],\"indexing\":%s}\n",
			    scheduler_is_indexing(s) ? "true" : "false");
		else if (r.n == 0 && !scheduler_is_indexing(s))
			fputs("The queue is empty.\n", fp);
		else
			fprintf(fp, "-- %d message%s%s\n", r.n, r.n == 1 ? "" :
			    "s", scheduler_is_indexing(s) ? " so far: the "
			    "spool is still being indexed" : "");
		return 0;
	case CONTROL_MAILQ:
		scheduler_foreach(s, mailq_one, &r);
		if (r.n == 0 && !scheduler_is_indexing(s))
			fputs("Mail queue is empty\n", fp);
		else
			fprintf(fp, "-- %lld Kbytes in %d Request%s.%s\n",
			    (r.bytes + 1023) / 1024, r.n, r.n == 1 ? "" : "s",
			    scheduler_is_indexing(s) ? " (so far: the spool "
			    "is still being indexed)" : "");
		return 0;
	case CONTROL_SHOW:
		if (scheduler_find(s, q->arg, &v) == -1) {
			snprintf(err, errlen, "no message %s in the queue",
			    q->arg);
			return -1;
		}
		control_render_message(fp, &v, q->json, 1, r.now);
		if (q->json)
			fputc('\n', fp);
		return 0;
	case CONTROL_STATS:
		memset(&st, 0, sizeof(st));
		ctl->ops.status(ctl->ops.arg, &st);
		control_render_stats(fp, &st, q->json, r.now);
		return 0;
	case CONTROL_FLUSH:
		n = scheduler_flush(s);
		break;
	case CONTROL_HOLD:
		n = scheduler_hold(s, id);
		break;
	case CONTROL_RELEASE:
		n = scheduler_release(s, id);
		break;
	case CONTROL_DELETE:
		n = scheduler_delete(s, id);
		break;
	case CONTROL_RELOAD:
		if (ctl->ops.reload == NULL ||
		    ctl->ops.reload(ctl->ops.arg, err, errlen) == -1)
			return -1;
		fputs(q->json ? "{\"reloaded\":true}\n" :
		    "configuration reloaded\n", fp);
		return 0;
	}
	if (id != NULL && n == 0 && q->cmd != CONTROL_FLUSH &&
	    scheduler_find(s, id, &v) == -1) {
		snprintf(err, errlen, "no message %s in the queue", id);
		return -1;
	}
	if (ctl->ops.kick != NULL)
		ctl->ops.kick(ctl->ops.arg);
	/* While indexing, an "all" covers the rest as it is found too. */
	later = (id == NULL || q->cmd == CONTROL_FLUSH) &&
	    scheduler_is_indexing(s);
	if (q->json)
		fprintf(fp, "{\"changed\":%zu%s}\n", n, later ?
		    ",\"and_as_indexed\":true" : "");
	else
		fprintf(fp, "%zu message%s %s%s\n", n, n == 1 ? "" : "s",
		    q->cmd == CONTROL_FLUSH ? "made due now" :
		    q->cmd == CONTROL_HOLD ? "held" :
		    q->cmd == CONTROL_RELEASE ? "released" : "deleted",
		    later ? ", and the rest as the spool's index finds "
		    "them" : "");
	return 0;
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
	rc = run(c->ctl, &q, fp, err, sizeof(err));
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

/* Who is on the other end, from the kernel: uid, gid and groups. */
static int
identify_peer(struct client *c, int fd)
{
	struct ucred cred;
	socklen_t clen = sizeof(cred), glen;

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) == -1)
		return -1;
	c->uid = cred.uid;
	c->groups[0] = cred.gid;
	c->ngroups = 1;
	glen = sizeof(c->groups) - sizeof(c->groups[0]);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, c->groups + 1,
	    &glen) == 0)
		c->ngroups += (int)(glen / sizeof(c->groups[0]));
	return 0;
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

	accept_backoff_accepted(&ctl->backoff);
	if (c == NULL || identify_peer(c, fd) == -1) {
		free(c);
		evutil_closesocket(fd);
		return;
	}
	c->ctl = ctl;
	c->privileged = allowed(ctl, c);
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
