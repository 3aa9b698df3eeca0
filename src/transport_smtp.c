/*
 * transport_smtp.c: the SMTP transport: one connection to SES, as a
 * state machine (transport.h is its interface with the pool).
 *
 * States, in order:
 *   START -> RESOLVE -> CONNECT (TCP; in wrapper mode TCP + TLS)
 *   -> BANNER -> EHLO -> [STARTTLS -> TLS -> EHLO2] -> AUTH [-> AUTH_USER
 *   -> AUTH_PASS] -> READY
 *   READY -> MAIL -> RCPT ... -> DATA -> BODY -> DOT -> READY
 *   READY -> QUIT -> (gone)            (closed by the pool, or after 421)
 * session_enter() is the only place the state changes; each state's
 * entry action is a row of the enter[] table.  Every state that
 * waits on SES (a connection, a handshake, a reply) has a deadline of
 * upstream.timeout seconds for the whole of it, not per read: a reply
 * that trickles in a byte at a time or never ends ("250-" lines without
 * end) ends the session at the deadline, and a reply is refused once it
 * grows beyond what SES ever sends (upstream_reply.h).  While the body
 * is sent, each OUT_HIGH bytes of it must drain within the deadline, so
 * an upstream that reads a byte now and then cannot hold the session
 * either.  That one deadline (upconn_deadline) is the session's only
 * timeout: the bufferevents have none of their own.  A session only
 * ever authenticates over a verified TLS connection; it never pipelines
 * (SES does not offer PIPELINING).  What to send and when (the rate,
 * the quota probe, recycling, idle sessions) is the pool's: READY tells
 * it the session is free (events.ready) and waits.
 *
 * Every reply is classified by ses_classify() (ses_reply.h) and acted on
 * by its class only: the outcome for the recipients (bounce, retry per
 * schedule, or offered again at once), whether the session ends, and
 * what the pool is told (events.pool: slow down, pause for the quota,
 * fewer sessions, back off for credentials).
 *
 * The body streams from the spool through the dot-stuffing encoder in
 * 64 KiB chunks, refilled as the output buffer drains, so a message is
 * never held in memory whole.
 */
#include "config.h"

#include <stdarg.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/util.h>
#include <openssl/evp.h>

#include "dotstuff.h"
#include "endpoint.h"
#include "log.h"
#include "scheduler.h"
#include "ses_headers.h"
#include "ses_reply.h"
#include "spool.h"
#include "stats.h"
#include "transport.h"
#include "transport_txn.h"
#include "upconn.h"
#include "upstream_reply.h"
#include "xalloc.h"

#define BODY_CHUNK	65536
#define OUT_HIGH	(4 * BODY_CHUNK)

enum session_state {
	S_START,
	S_RESOLVE,
	S_CONNECT,
	S_BANNER,
	S_EHLO,
	S_STARTTLS,
	S_TLS,
	S_EHLO2,
	S_AUTH,
	S_AUTH_USER,
	S_AUTH_PASS,
	S_READY,
	S_MAIL,
	S_RCPT,
	S_DATA,
	S_BODY,
	S_DOT,
	S_RSET,
	S_QUIT,
	S_DEAD,
};

static const char *const state_names[] = {
	"start", "resolve", "connect", "banner", "ehlo", "starttls", "tls",
	"ehlo2", "auth", "auth_user", "auth_pass", "ready", "mail",
	"rcpt", "data", "body", "dot", "rset", "quit", "dead",
};

/* One endpoint's SMTP transport: what its sessions share. */
struct transport_smtp {
	struct transport	 base;		/* first: the interface */
	struct upconn_target	 to;		/* where sessions connect */
	struct spool		*spool;
	struct endpoint		 ep;		/* name and host kept */
	struct endpoint_credentials cred;
	char			*helo_name;
	int			 timeout;
	const struct ses_headers *ses;
	char			 auth_hint[512];
};

struct transport_session {
	struct transport_smtp	*t;
	const struct transport_events *ev;
	void			*arg;		/* the pool's, for ev */
	enum session_state	 state;
	unsigned		 serial;
	struct upconn		*conn;
	struct event		*timer;		/* start */
	struct upstream_reply	 reply;
	int			 reached_ready;
	int			 has_size;	/* upstream advertised SIZE */
	int			 has_8bitmime;	/* ... and 8BITMIME */
	int			 auth_plain, auth_login;
	/* the transaction in progress */
	struct delivery		*d;
	size_t			 rcpt_i;
	int			 accepted[SCHEDULER_MAX_RCPT];
	size_t			 naccepted;
	struct spool_reader	*body;
	struct dot_encoder	 enc;
	int			 body_started;	/* X-SES-* headers written */
	int			 closing_after;	/* 421 seen: close after */
	const struct ses_class	*last;		/* the last reply's class */
};

static void session_enter(struct transport_session *, enum session_state);
static void session_fail(struct transport_session *, const char *why);
static void session_gone(struct transport_session *);
static const struct upconn_events conn_events;

static void
send_line(struct transport_session *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
send_line(struct transport_session *s, const char *fmt, ...)
{
	struct evbuffer *out = bufferevent_get_output(upconn_bev(s->conn));
	va_list ap;

	va_start(ap, fmt);
	evbuffer_add_vprintf(out, fmt, ap);
	va_end(ap);
	evbuffer_add(out, "\r\n", 2);
}

static void
timer_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct transport_session *s = arg;

	if (s->state == S_START)
		session_enter(s, S_RESOLVE);
}

/*
 * The whole step took too long: a reply that trickles or never ends.
 * Like a lost connection (after the dot: the outcome is unknown).
 */
static void
conn_deadline(void *arg, const char *why)
{
	struct transport_session *s = arg;

	if (s->state == S_QUIT) {
		session_gone(s);
		return;
	}
	if (s->state == S_CONNECT) {
		upconn_address_failed(s->conn, why);
		return;
	}
	session_fail(s, why);
}

/* Does the session wait on SES in state st (so it has a deadline)? */
static int
state_has_deadline(enum session_state st)
{
	switch (st) {
	case S_START:
	case S_RESOLVE:		/* evdns has its own timeouts */
	case S_READY:		/* the pool's to use or close */
	case S_DEAD:
		return 0;
	default:
		return 1;
	}
}

/*
 * Start the deadline of the step just entered (or of the next OUT_HIGH
 * bytes of the body), or stop the last one.
 */
static void
arm_deadline(struct transport_session *s)
{
	upconn_deadline(s->conn, state_has_deadline(s->state) ?
	    s->t->timeout : 0, state_names[s->state]);
}

static struct transport_session *
smtp_open(struct transport *base, const struct transport_events *ev,
    void *arg, unsigned serial)
{
	struct transport_session *s = calloc(1, sizeof(*s));

	if (s == NULL)
		abort();
	s->t = (struct transport_smtp *)base;
	s->ev = ev;
	s->arg = arg;
	s->serial = serial;
	s->state = S_START;
	s->conn = upconn_new(&s->t->to, &conn_events, s, serial);
	s->timer = evtimer_new(s->t->to.evbase, timer_cb, s);
	/* Start from the loop, never inside the caller. */
	event_active(s->timer, EV_TIMEOUT, 0);
	return s;
}

/* The step of the dialogue a reply in state st answers. */
static enum ses_step
reply_step(enum session_state st)
{
	switch (st) {
	case S_BANNER:		return SES_STEP_BANNER;
	case S_EHLO:
	case S_EHLO2:		return SES_STEP_EHLO;
	case S_STARTTLS:
	case S_TLS:		return SES_STEP_STARTTLS;
	case S_AUTH:
	case S_AUTH_USER:
	case S_AUTH_PASS:	return SES_STEP_AUTH;
	case S_MAIL:		return SES_STEP_MAIL;
	case S_RCPT:		return SES_STEP_RCPT;
	case S_DATA:		return SES_STEP_DATA;
	case S_BODY:		return SES_STEP_BODY;
	case S_DOT:		return SES_STEP_DOT;
	case S_READY:		return SES_STEP_IDLE;
	case S_RSET:		return SES_STEP_RSET;
	case S_QUIT:		return SES_STEP_QUIT;
	default:		return SES_STEP_CONNECT;
	}
}

/* Remember a refusal's class; tell the pool what concerns it. */
static void
pool_effect(struct transport_session *s, const struct ses_class *k,
    const char *summary)
{
	s->last = k;
	if (k->scope == SES_SCOPE_POOL)
		s->ev->pool(s->arg, s, k, summary);
}

/*
 * The connection failed under a transaction: temporary outcomes for
 * what is not decided (after the dot: the outcome is unknown), and the
 * delivery goes back to the pool.
 */
static void
delivery_abandon(struct transport_session *s, const char *why)
{
	struct delivery *d = s->d;
	const struct ses_class *k = ses_classify_network(reply_step(s->state));

	if (d == NULL)
		return;
	s->d = NULL;
	spool_reader_close(s->body);
	s->body = NULL;
	s->last = k;
	stats.replies[k->action]++;
	if (s->state == S_DOT)
		transport_txn_unknown(d, s->t->ep.name, s->serial, why);
	transport_txn_settle(d, k, why, s->accepted);
	s->ev->done(s->arg, s, d, k);
}

static void
smtp_free(struct transport_session *s)
{
	if (s->d != NULL) {
		/* Shutdown: nothing was decided, hand it back as it was. */
		struct delivery *d = s->d;

		spool_reader_close(s->body);
		s->body = NULL;
		if (s->state == S_DOT)
			delivery_abandon(s, "shutdown");
		else {
			s->d = NULL;
			s->ev->done(s->arg, s, d, NULL);
		}
	}
	upconn_free(s->conn);
	event_free(s->timer);
	free(s);
}

/*
 * End the session.  It is freed from the loop, later, so that every
 * caller up the stack may still look at s->state (S_DEAD) safely.
 */
static void
session_gone(struct transport_session *s)
{
	s->state = S_DEAD;
	upconn_end(s->conn);
	event_del(s->timer);
}

static void
session_fail(struct transport_session *s, const char *why)
{
	upconn_log_failed(s->conn, state_names[s->state], why);
	delivery_abandon(s, why);
	session_gone(s);
}

/* ---- connecting (upconn.c) ---- */

static void
enter_resolve(struct transport_session *s)
{
	upconn_resolve(s->conn);
}

static void
enter_connect(struct transport_session *s)
{
	upconn_next(s->conn);
}

/* After "220" to STARTTLS: the connection goes over to TLS. */
static void
enter_tls(struct transport_session *s)
{
	upconn_starttls(s->conn);
}

static void
conn_resolved(void *arg)
{
	session_enter(arg, S_CONNECT);
}

/* The session has ended: the pool frees it. */
static void
conn_ended(void *arg)
{
	struct transport_session *s = arg;

	s->ev->gone(s->arg, s, s->reached_ready);
}

/* TCP is up (in wrapper mode, TLS too), or STARTTLS's handshake done. */
static void
conn_connected(void *arg)
{
	struct transport_session *s = arg;

	if (s->state == S_CONNECT)
		session_enter(s, S_BANNER);
	else if (s->state == S_TLS)
		session_enter(s, S_EHLO2);
}

static void
conn_fail(void *arg, const char *why)
{
	session_fail(arg, why);
}

static void
conn_lost(void *arg, short what, const char *why)
{
	struct transport_session *s = arg;

	if (s->state == S_QUIT) {
		session_gone(s);
		return;
	}
	if (s->state == S_READY && s->d == NULL) {
		/* Nothing in flight: SES closing an idle connection is
		 * routine (its idle timeout, ELB rotation). */
		upconn_log_closed_idle(s->conn, why);
		session_gone(s);
		return;
	}
	session_fail(s, why);
}

/* ---- replies ---- */

/* Record one recipient's outcome from a reply. */
static void
set_outcome(struct transport_session *s, size_t i, const char *summary,
    enum delivery_outcome o)
{
	struct delivery *d = s->d;

	d->outcome[i] = o;
	free(d->reply[i]);
	d->reply[i] = strdup(summary);
}

/* The whole remaining transaction gets this outcome. */
static void
fail_rest(struct transport_session *s, const char *summary,
    enum delivery_outcome o, int only_accepted)
{
	for (size_t i = 0; i < s->d->nrcpt; i++) {
		if (s->d->outcome[i] != DELIVERY_UNTRIED)
			continue;
		if (only_accepted && !s->accepted[i])
			continue;
		set_outcome(s, i, summary, o);
	}
}

/* The transaction is over: its outcomes go to the pool. */
static void
finish_delivery(struct transport_session *s)
{
	struct delivery *d = s->d;

	s->d = NULL;
	spool_reader_close(s->body);
	s->body = NULL;
	s->ev->done(s->arg, s, d, s->last);
	session_enter(s, s->closing_after ? S_QUIT : S_READY);
}

static void
auth_plain(struct transport_session *s)
{
	char *cmd = upstream_auth_plain(s->t->cred.username,
	    s->t->cred.password);

	send_line(s, "%s", cmd);
	explicit_bzero(cmd, strlen(cmd));
	free(cmd);
}

static void
send_b64(struct transport_session *s, const char *v)
{
	size_t n = strlen(v);
	unsigned char *b64 = malloc(4 * ((n + 2) / 3) + 1);

	if (b64 == NULL)
		abort();
	EVP_EncodeBlock(b64, (const unsigned char *)v, (int)n);
	send_line(s, "%s", b64);
	explicit_bzero(b64, strlen((char *)b64));
	free(b64);
}

static void
read_ehlo(struct transport_session *s)
{
	const char *params;

	s->has_size = upstream_reply_has_keyword(&s->reply, "SIZE", NULL);
	s->has_8bitmime = upstream_reply_has_keyword(&s->reply, "8BITMIME",
	    NULL);
	s->auth_plain = s->auth_login = 0;
	if (upstream_reply_has_keyword(&s->reply, "AUTH", &params)) {
		s->auth_plain = strstr(params, "PLAIN") != NULL;
		s->auth_login = strstr(params, "LOGIN") != NULL;
	}
}

/*
 * A transaction ends on a refusal: with RSET, or by closing when the
 * class says the session is over.
 */
static void
end_transaction(struct transport_session *s, const struct ses_class *k)
{
	if (k->closes) {
		s->closing_after = 1;
		finish_delivery(s);
	} else
		session_enter(s, S_RSET);
}

/* Connecting or authenticating was refused. */
static void
setup_refused(struct transport_session *s, const struct ses_class *k,
    const char *summary)
{
	pool_effect(s, k, summary);
	session_fail(s, summary);
}

/*
 * A reply is complete: the handler of the state acts on its class (k)
 * and code; sum is its first line, for logs and outcomes.
 */
typedef void reply_fn(struct transport_session *, const struct ses_class *,
    const char *sum);

static void
reply_banner(struct transport_session *s, const struct ses_class *k,
    const char *sum)
{
	if (s->reply.code != 220)
		return setup_refused(s, k, sum);
	session_enter(s, S_EHLO);
}

static void
reply_ehlo(struct transport_session *s, const struct ses_class *k,
    const char *sum)
{
	if (k->action != SES_ACT_OK)
		return setup_refused(s, k, sum);
	read_ehlo(s);
	if (s->t->ep.wrapper || s->state == S_EHLO2)
		return session_enter(s, S_AUTH);
	if (!upstream_reply_has_keyword(&s->reply, "STARTTLS", NULL))
		return session_fail(s, "the upstream does not offer "
		    "STARTTLS; refusing to send in the clear");
	session_enter(s, S_STARTTLS);
}

static void
reply_starttls(struct transport_session *s, const struct ses_class *k,
    const char *sum)
{
	if (s->reply.code != 220)
		return setup_refused(s, k, sum);
	session_enter(s, S_TLS);
}

/* AUTH (PLAIN, or LOGIN's last step): 235 and the session is ready. */
static void
reply_auth(struct transport_session *s, const struct ses_class *k,
    const char *sum)
{
	int code = s->reply.code;

	if (s->state == S_AUTH && code == 334 && s->auth_login &&
	    !s->auth_plain)
		return session_enter(s, S_AUTH_USER);
	if (code == 235) {
		s->reached_ready = 1;
		upconn_log_ready(s->conn);
		return session_enter(s, S_READY);
	}
	if (k->action == SES_ACT_OK)	/* a 334 too many */
		k = ses_classify(SES_STEP_AUTH, 535, sum);
	setup_refused(s, k, sum);
}

static void
reply_auth_user(struct transport_session *s, const struct ses_class *k,
    const char *sum)
{
	if (s->reply.code != 334)
		return setup_refused(s, k, sum);
	session_enter(s, S_AUTH_PASS);
}

static void
reply_mail(struct transport_session *s, const struct ses_class *k,
    const char *sum)
{
	if (k->action != SES_ACT_OK) {
		fail_rest(s, sum, transport_txn_outcome(k), 0);
		return end_transaction(s, k);
	}
	s->rcpt_i = 0;
	session_enter(s, S_RCPT);
}

static void
reply_rcpt(struct transport_session *s, const struct ses_class *k,
    const char *sum)
{
	if (k->action == SES_ACT_OK) {
		s->accepted[s->rcpt_i] = 1;
		s->naccepted++;
	} else if (k->scope == SES_SCOPE_RECIPIENT) {
		set_outcome(s, s->rcpt_i, sum, transport_txn_outcome(k));
	} else {
		/* About the pool or the session: all of it again. */
		fail_rest(s, sum, transport_txn_outcome(k), 0);
		return end_transaction(s, k);
	}
	if (++s->rcpt_i < s->d->nrcpt)
		return session_enter(s, S_RCPT);
	session_enter(s, s->naccepted == 0 ? S_RSET : S_DATA);
}

static void
reply_data(struct transport_session *s, const struct ses_class *k,
    const char *sum)
{
	if (s->reply.code == 354)
		return session_enter(s, S_BODY);
	if (k->action == SES_ACT_OK)	/* a 2xx, not 354 */
		k = ses_classify(SES_STEP_DATA, 250, sum);
	fail_rest(s, sum, transport_txn_outcome(k), 0);
	end_transaction(s, k);
}

/* SES's verdict on the message: "250 Ok <id>", or a refusal. */
static void
reply_dot(struct transport_session *s, const struct ses_class *k,
    const char *sum)
{
	s->last = k;
	if (k->action == SES_ACT_OK) {
		upstream_reply_ses_id(&s->reply, s->d->ses_id,
		    sizeof(s->d->ses_id));
		for (size_t i = 0; i < s->d->nrcpt; i++)
			if (s->accepted[i])
				set_outcome(s, i, sum, DELIVERY_OK);
	} else
		fail_rest(s, sum, transport_txn_outcome(k), 1);
	/* None should be left: the refused ones have outcomes. */
	fail_rest(s, sum, DELIVERY_TEMPFAIL, 0);
	finish_delivery(s);
}

static void
reply_rset(struct transport_session *s, const struct ses_class *k,
    const char *sum)
{
	finish_delivery(s);
}

static void
reply_quit(struct transport_session *s, const struct ses_class *k,
    const char *sum)
{
	session_gone(s);
}

/* Unsolicited: SES's idle timeout, or a 421; it may say something
 * about the pool too. */
static void
reply_ready(struct transport_session *s, const struct ses_class *k,
    const char *sum)
{
	pool_effect(s, k, sum);
	log_event(LOG_INFO, "-", "upstream.unsolicited",
	    "pool=%s conn=%u reply=%s msg=\"closing\"", s->t->ep.name,
	    s->serial, log_q(sum));
	session_gone(s);
}

static reply_fn *const reply_handlers[] = {
	[S_BANNER] = reply_banner,
	[S_EHLO] = reply_ehlo,
	[S_STARTTLS] = reply_starttls,
	[S_EHLO2] = reply_ehlo,
	[S_AUTH] = reply_auth,
	[S_AUTH_USER] = reply_auth_user,
	[S_AUTH_PASS] = reply_auth,
	[S_READY] = reply_ready,
	[S_MAIL] = reply_mail,
	[S_RCPT] = reply_rcpt,
	[S_DATA] = reply_data,
	[S_DOT] = reply_dot,
	[S_RSET] = reply_rset,
	[S_QUIT] = reply_quit,
	[S_DEAD] = NULL,
};

/* A reply is complete: classify it, then its state's handler acts. */
static void
on_reply(struct transport_session *s)
{
	struct upstream_reply *r = &s->reply;
	const struct ses_class *k;
	reply_fn *fn = reply_handlers[s->state];
	char sum[512];

	upstream_reply_summary(r, sum, sizeof(sum));
	k = ses_classify(reply_step(s->state), r->code, r->text);
	stats.replies[k->action]++;
	log_event(LOG_DEBUG, "-", "upstream.reply",
	    "pool=%s conn=%u state=%s reply=%s class=%s", s->t->ep.name,
	    s->serial, state_names[s->state], log_q(sum), k->name);
	if (s->state >= S_MAIL && s->state <= S_DOT) {
		if (k->action != SES_ACT_OK)
			pool_effect(s, k, sum);
		if (k->closes)
			s->closing_after = 1;
	}
	if (fn == NULL)
		return session_fail(s, "reply in an unexpected state");
	fn(s, k, sum);
}

static void
read_cb(void *arg)
{
	struct transport_session *s = arg;
	struct evbuffer *in = bufferevent_get_input(upconn_bev(s->conn));
	char *line;
	size_t len;

	while (s->state != S_DEAD &&
	    (line = evbuffer_readln(in, &len, EVBUFFER_EOL_CRLF)) != NULL) {
		int r = upstream_reply_feed(&s->reply, line, len);

		free(line);
		if (r == UPSTREAM_REPLY_BAD) {
			session_fail(s, "malformed reply from the upstream");
			return;
		}
		if (r == UPSTREAM_REPLY_TOO_LONG) {
			session_fail(s, "reply from the upstream too long");
			return;
		}
		if (r == UPSTREAM_REPLY_DONE) {
			on_reply(s);
			upstream_reply_init(&s->reply);
			/* After STARTTLS the bufferevent was replaced. */
			if (s->state == S_TLS)
				return;
		}
	}
	/* What is left is a line not yet ended: it counts towards the
	 * reply's limit too, so the input never outgrows it. */
	if (s->state != S_DEAD && s->reply.total + evbuffer_get_length(in) >
	    UPSTREAM_REPLY_MAX_BYTES)
		session_fail(s, "reply from the upstream too long");
}

/* ---- the body ---- */

/* Refill the output from the spool until it holds OUT_HIGH bytes. */
static void
fill_body(struct transport_session *s)
{
	struct evbuffer *out = bufferevent_get_output(upconn_bev(s->conn));
	char in[BODY_CHUNK], enc[2 * BODY_CHUNK + 8];
	ssize_t n;
	size_t m;

	while (evbuffer_get_length(out) < OUT_HIGH) {
		n = spool_reader_read(s->body, in, sizeof(in));
		if (n < 0) {
			char why[128];
			snprintf(why, sizeof(why), "spool read: %s",
			    strerror(errno));
			/* Cannot finish the message: drop the connection
			 * so SES never sees a truncated body. */
			session_fail(s, why);
			return;
		}
		if (n == 0) {
			m = dot_encode_finish(&s->enc, enc);
			evbuffer_add(out, enc, m);
			session_enter(s, S_DOT);
			return;
		}
		if (!s->body_started) {
			/* SES's own headers go first, unless the message
			 * has them (the chunk holds its header, or the
			 * start of a very long one). */
			char add[1024];
			size_t al = s->t->ses == NULL ? 0 :
			    ses_headers_for(s->t->ses, s->d->sender,
			    in, (size_t)n, add, sizeof(add));

			s->body_started = 1;
			if (al > 0)
				evbuffer_add(out, add, al);
		}
		m = dot_encode(&s->enc, in, (size_t)n, enc);
		evbuffer_add(out, enc, m);
	}
}

/* The output drained: the body goes on, with a fresh deadline. */
static void
write_cb(void *arg)
{
	struct transport_session *s = arg;

	if (s->state == S_BODY) {
		arm_deadline(s);
		fill_body(s);
	}
}

static const struct upconn_events conn_events = {
	.resolved = conn_resolved,
	.connected = conn_connected,
	.fail = conn_fail,
	.lost = conn_lost,
	.readable = read_cb,
	.drained = write_cb,
	.deadline = conn_deadline,
	.ended = conn_ended,
};

/* ---- the interface (transport.h) ---- */

static void
smtp_send(struct transport_session *s, struct delivery *d)
{
	if (s->state != S_READY || s->d != NULL)
		abort();	/* the pool sends only on ready() */
	s->d = d;
	s->naccepted = 0;
	memset(s->accepted, 0, sizeof(s->accepted));
	s->last = NULL;
	session_enter(s, S_MAIL);
}

static void
smtp_close(struct transport_session *s)
{
	if (s->state == S_READY)
		session_enter(s, S_QUIT);
}

static const char *
smtp_peer(const struct transport_session *s)
{
	return upconn_peer(s->conn);
}

static void
smtp_destroy(struct transport *base)
{
	struct transport_smtp *t = (struct transport_smtp *)base;

	if (t == NULL)
		return;
	upconn_target_clear(&t->to);
	free(t->helo_name);
	endpoint_credentials_clear(&t->cred);
	free(t);
}

static const struct transport_ops smtp_ops = {
	.name = "smtp",
	.open = smtp_open,
	.send = smtp_send,
	.close = smtp_close,
	.free = smtp_free,
	.peer = smtp_peer,
	.destroy = smtp_destroy,
};

struct transport *
transport_smtp_new(struct event_base *base, struct evdns_base *dns,
    struct spool *spool, const struct transport_config *c, char *err,
    size_t errlen)
{
	struct transport_smtp *t = calloc(1, sizeof(*t));

	if (t == NULL)
		abort();
	t->ep = *c->endpoint;
	if (upconn_target_init(&t->to, base, dns, t->ep.name,
	    c->endpoint->ca_file, err, errlen) == -1) {
		free(t);
		return NULL;
	}
	t->to.host = t->ep.host;
	t->to.port = t->ep.port;
	t->to.tls = t->ep.wrapper;
	t->to.tls_label = t->ep.wrapper ? "wrapper" : "starttls";
	t->to.what = "the upstream";
	t->base.ops = &smtp_ops;
	snprintf(t->auth_hint, sizeof(t->auth_hint), "the user name is the "
	    "IAM access key id and the password the SES SMTP password "
	    "derived for region of %s (sesrelayctl smtp-password), not the "
	    "IAM secret key", c->endpoint->host);
	t->base.auth_hint = t->auth_hint;
	t->spool = spool;
	/* Only the name and the host are used; the rest is not kept. */
	t->ep.region = t->ep.ca_file = t->ep.credentials = NULL;
	t->cred.username = xstrdup(c->cred->username);
	t->cred.password = xstrdup(c->cred->password);
	t->helo_name = xstrdup(c->hostname);
	t->timeout = c->timeout;
	t->ses = c->ses;
	return &t->base;
}

/* ---- the state machine's single point of change ---- */

/* What entering each state does (NULL: wait for SES). */
typedef void enter_fn(struct transport_session *);

static void
enter_ehlo(struct transport_session *s)
{
	send_line(s, "EHLO %s", s->t->helo_name);
}

static void
enter_starttls(struct transport_session *s)
{
	send_line(s, "STARTTLS");
}

static void
enter_auth(struct transport_session *s)
{
	if (s->auth_plain)
		auth_plain(s);
	else if (s->auth_login)
		send_line(s, "AUTH LOGIN");
	else
		session_fail(s, "the upstream offers neither AUTH PLAIN nor "
		    "AUTH LOGIN");
}

static void
enter_auth_user(struct transport_session *s)
{
	send_b64(s, s->t->cred.username);
}

static void
enter_auth_pass(struct transport_session *s)
{
	send_b64(s, s->t->cred.password);
}

/* Free for a transaction: the pool decides what comes next. */
static void
enter_ready(struct transport_session *s)
{
	s->ev->ready(s->arg, s);
}

static void
enter_mail(struct transport_session *s)
{
	char size[32] = "";

	if (s->has_size)
		snprintf(size, sizeof(size), " SIZE=%lld",
		    (long long)s->d->size);
	/* 8BITMIME covers 7-bit mail too, and local clients often send
	 * 8-bit text without declaring it. */
	send_line(s, "MAIL FROM:<%s>%s%s", s->d->sender, size,
	    s->has_8bitmime ? " BODY=8BITMIME" : "");
}

static void
enter_rcpt(struct transport_session *s)
{
	send_line(s, "RCPT TO:<%s>", s->d->rcpt[s->rcpt_i]);
}

static void
enter_data(struct transport_session *s)
{
	send_line(s, "DATA");
}

static void
enter_body(struct transport_session *s)
{
	if ((s->body = spool_reader_open(s->t->spool, s->d->id)) == NULL) {
		/* The connection has seen 354: only closing it guarantees
		 * SES does not accept a half message. */
		session_fail(s, "cannot open the message in the spool");
		return;
	}
	dot_encoder_init(&s->enc);
	s->body_started = 0;
	fill_body(s);
}

static void
enter_rset(struct transport_session *s)
{
	send_line(s, "RSET");
}

static void
enter_quit(struct transport_session *s)
{
	send_line(s, "QUIT");
}

static enter_fn *const enter[] = {
	[S_RESOLVE] = enter_resolve,
	[S_CONNECT] = enter_connect,
	[S_EHLO] = enter_ehlo,
	[S_STARTTLS] = enter_starttls,
	[S_TLS] = enter_tls,
	[S_EHLO2] = enter_ehlo,
	[S_AUTH] = enter_auth,
	[S_AUTH_USER] = enter_auth_user,
	[S_AUTH_PASS] = enter_auth_pass,
	[S_READY] = enter_ready,
	[S_MAIL] = enter_mail,
	[S_RCPT] = enter_rcpt,
	[S_DATA] = enter_data,
	[S_BODY] = enter_body,
	[S_RSET] = enter_rset,
	[S_QUIT] = enter_quit,
	[S_DEAD] = NULL,	/* START, BANNER, DOT: wait too */
};

static void
session_enter(struct transport_session *s, enum session_state st)
{
	log_event(LOG_DEBUG, "-", "upstream.state",
	    "pool=%s conn=%u from=%s to=%s", s->t->ep.name, s->serial,
	    state_names[s->state], state_names[st]);
	s->state = st;
	arm_deadline(s);
	if (enter[st] != NULL)
		enter[st](s);
}
