/*
 * upstream_session.c: one connection to SES, as a state machine.
 *
 * States, in order:
 *   START -> RESOLVE -> CONNECT (TCP; in wrapper mode TCP + TLS)
 *   -> BANNER -> EHLO -> [STARTTLS -> TLS -> EHLO2] -> AUTH [-> AUTH_USER
 *   -> AUTH_PASS] -> READY
 *   READY -> [RATEWAIT] -> MAIL -> RCPT ... -> DATA -> BODY -> DOT -> READY
 *   READY -> QUIT -> (gone)            (recycled, idle, or shutting down)
 * session_enter() is the only place the state changes.  Every state that
 * waits on SES (a connection, a handshake, a reply) has a deadline of
 * upstream.timeout seconds for the whole of it, not per read: a reply
 * that trickles in a byte at a time or never ends ("250-" lines without
 * end) ends the session at the deadline, and a reply is refused once it
 * grows beyond what SES ever sends (upstream_reply.h).  While the body
 * is sent, each OUT_HIGH bytes of it must drain within the deadline, so
 * an upstream that reads a byte now and then cannot hold the session
 * either.  That one timer is the session's only timeout: the
 * bufferevents have none of their own.  A session only
 * ever authenticates over a verified TLS connection; it never pipelines
 * (SES does not offer PIPELINING).  Recycling is decided only in READY,
 * between transactions, by session_should_recycle().
 *
 * Every reply is classified by ses_classify() (ses_reply.h) and acted on
 * by its class only: the outcome for the recipients (bounce, retry per
 * schedule, or offered again at once), whether the session ends, and
 * what the pool must do (slow down, pause for the quota, fewer
 * sessions, back off for credentials).
 *
 * The body streams from the spool through the dot-stuffing encoder in
 * 64 KiB chunks, refilled as the output buffer drains, so a message is
 * never held in memory whole.
 */
#include "config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/util.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "dotstuff.h"
#include "log.h"
#include "netaddr.h"
#include "scheduler.h"
#include "ses_headers.h"
#include "ses_reply.h"
#include "spool.h"
#include "stats.h"
#include "tls.h"
#include "upstream_private.h"
#include "upstream_reply.h"

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
	S_RATEWAIT,
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
	"ehlo2", "auth", "auth_user", "auth_pass", "ready", "ratewait", "mail",
	"rcpt", "data", "body", "dot", "rset", "quit", "dead",
};

struct upstream_session {
	struct upstream		*pool;
	enum session_state	 state;
	unsigned		 serial;
	struct bufferevent	*bev;
	SSL			*ssl;		/* owned by bev once attached */
	struct evutil_addrinfo	*addrs, *cur;
	struct evdns_getaddrinfo_request *dnsreq;
	struct event		*timer;		/* start, idle, rate wait */
	struct event		*deadline;	/* the step waited on ends */
	struct upstream_reply	 reply;
	int			 reached_ready;
	int			 has_size;	/* upstream advertised SIZE */
	int			 has_8bitmime;	/* ... and 8BITMIME */
	int			 auth_plain, auth_login;
	time_t			 connected_at;
	unsigned		 messages;
	/* the transaction in progress */
	struct delivery		*d;
	size_t			 rcpt_i;
	int			 accepted[SCHEDULER_MAX_RCPT];
	size_t			 naccepted;
	struct spool_reader	*body;
	struct dot_encoder	 enc;
	int			 body_started;	/* X-SES-* headers written */
	int			 closing_after;	/* 421 seen: close after */
	int			 probe;		/* this delivery probes the quota */
	int			 check_only;	/* a health check: never takes work */
	const struct ses_class	*last;		/* the last reply's class */
	char			 peer[64];
};

static void session_enter(struct upstream_session *, enum session_state);
static void session_fail(struct upstream_session *, const char *why);
static void session_gone(struct upstream_session *);
static void session_ready(struct upstream_session *);
static void try_next_address(struct upstream_session *);
static void read_cb(struct bufferevent *, void *);
static void write_cb(struct bufferevent *, void *);
static void event_cb(struct bufferevent *, short, void *);

static void
send_line(struct upstream_session *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
send_line(struct upstream_session *s, const char *fmt, ...)
{
	struct evbuffer *out = bufferevent_get_output(s->bev);
	va_list ap;

	va_start(ap, fmt);
	evbuffer_add_vprintf(out, fmt, ap);
	va_end(ap);
	evbuffer_add(out, "\r\n", 2);
}

static void
timer_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct upstream_session *s = arg;

	switch (s->state) {
	case S_START:
		session_enter(s, S_RESOLVE);
		break;
	case S_READY:
		log_debug("- upstream conn=%u idle, closing", s->serial);
		session_enter(s, S_QUIT);
		break;
	case S_RATEWAIT:
		session_enter(s, S_MAIL);
		break;
	case S_DEAD:
		upstream_session_gone(s->pool, s, s->reached_ready);
		break;
	default:
		break;
	}
}

/*
 * The whole step took too long: a reply that trickles or never ends.
 * Like a lost connection (after the dot: the outcome is unknown).
 */
static void
deadline_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct upstream_session *s = arg;
	char why[128];

	snprintf(why, sizeof(why), "deadline: nothing complete within %ds "
	    "in state %s", s->pool->conf.timeout, state_names[s->state]);
	if (s->state == S_QUIT) {
		session_gone(s);
		return;
	}
	if (s->state == S_CONNECT) {
		log_warnx("- upstream conn=%u connect failed peer=%s "
		    "reason=\"%s\"", s->serial, s->peer, why);
		try_next_address(s);
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
	case S_READY:		/* s->timer: idle, rate wait */
	case S_RATEWAIT:
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
arm_deadline(struct upstream_session *s)
{
	struct timeval tv = { s->pool->conf.timeout, 0 };

	if (state_has_deadline(s->state))
		evtimer_add(s->deadline, &tv);
	else
		evtimer_del(s->deadline);
}

struct upstream_session *
upstream_session_new(struct upstream *u)
{
	struct upstream_session *s = calloc(1, sizeof(*s));

	if (s == NULL)
		abort();
	s->pool = u;
	s->serial = ++u->serial;
	s->state = S_START;
	s->timer = evtimer_new(u->base, timer_cb, s);
	s->deadline = evtimer_new(u->base, deadline_cb, s);
	/* Start from the loop, never inside the caller. */
	event_active(s->timer, EV_TIMEOUT, 0);
	return s;
}

struct upstream_session *
upstream_session_new_check(struct upstream *u)
{
	struct upstream_session *s = upstream_session_new(u);

	s->check_only = 1;
	return s;
}

int
upstream_session_is_check(const struct upstream_session *s)
{
	return s->check_only;
}

int
upstream_session_is_busy(const struct upstream_session *s)
{
	return s->d != NULL;
}

int
upstream_session_is_idle(const struct upstream_session *s)
{
	return s->state == S_READY && s->d == NULL && !s->check_only;
}

int
upstream_session_is_starting(const struct upstream_session *s)
{
	return s->state < S_READY;
}

int
upstream_session_was_ready(const struct upstream_session *s)
{
	return s->reached_ready && s->state != S_DEAD;
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
	case S_READY:
	case S_RATEWAIT:	return SES_STEP_IDLE;
	case S_RSET:		return SES_STEP_RSET;
	case S_QUIT:		return SES_STEP_QUIT;
	default:		return SES_STEP_CONNECT;
	}
}

/* What a class means for the recipients it reaches. */
static enum delivery_outcome
class_outcome(const struct ses_class *k)
{
	switch (k->action) {
	case SES_ACT_PERMFAIL:
		return DELIVERY_PERMFAIL;
	case SES_ACT_OK:
		return DELIVERY_OK;
	default:
		if (k->counts_attempt)
			return DELIVERY_TEMPFAIL;
		return k->scope == SES_SCOPE_POOL ? DELIVERY_RETURN :
		    DELIVERY_REQUEUE;
	}
}

/* What a class means for the whole pool. */
static void
pool_effect(struct upstream_session *s, const struct ses_class *k,
    const char *summary)
{
	s->last = k;
	switch (k->action) {
	case SES_ACT_RATE:
		upstream_throttled(s->pool);
		break;
	case SES_ACT_QUOTA:
		upstream_quota_exceeded(s->pool);
		break;
	case SES_ACT_CONN_LIMIT:
		upstream_conn_limited(s->pool, s);
		break;
	case SES_ACT_AUTH:
		upstream_auth_failed(s->pool, summary);
		break;
	default:
		break;
	}
}

/* Give the delivery back to the scheduler with temporary outcomes. */
static void
delivery_abandon(struct upstream_session *s, const char *why)
{
	struct delivery *d = s->d;

	if (d == NULL)
		return;
	s->d = NULL;
	spool_reader_close(s->body);
	s->body = NULL;
	const struct ses_class *k = ses_classify_network(reply_step(s->state));

	s->last = k;
	stats.replies[k->action]++;
	if (s->state == S_DOT)
		d->outcome_unknown = 1;
	for (size_t i = 0; i < d->nrcpt; i++)
		if (d->outcome[i] == DELIVERY_UNTRIED ||
		    (s->accepted[i] && d->outcome[i] != DELIVERY_OK)) {
			d->outcome[i] = class_outcome(k);
			if (d->reply[i] == NULL)
				d->reply[i] = strdup(why);
		}
	if (s->probe) {
		/* The quota probe learnt nothing: probe again later. */
		s->probe = 0;
		upstream_quota_exceeded(s->pool);
	}
	if (d->outcome_unknown)
		log_warnx("%s upstream outcome unknown conn=%u reason=\"%s\" "
		    "(will retry; a duplicate is possible)", d->id, s->serial,
		    why);
	scheduler_done(s->pool->sched, d);
}

void
upstream_session_free(struct upstream_session *s)
{
	if (s->d != NULL) {
		/* Shutdown: nothing was decided, hand it back as it was. */
		spool_reader_close(s->body);
		s->body = NULL;
		if (s->state == S_DOT)
			delivery_abandon(s, "shutdown");
		else
			scheduler_return(s->pool->sched, s->d);
		s->d = NULL;
	}
	if (s->dnsreq != NULL)
		evdns_getaddrinfo_cancel(s->dnsreq);
	if (s->addrs != NULL)
		evutil_freeaddrinfo(s->addrs);
	if (s->bev != NULL)
		bufferevent_free(s->bev);
	else if (s->ssl != NULL)
		SSL_free(s->ssl);
	event_free(s->timer);
	event_free(s->deadline);
	free(s);
}

/*
 * End the session.  It is freed from the loop, later, so that every
 * caller up the stack may still look at s->state (S_DEAD) safely.
 */
static void
session_gone(struct upstream_session *s)
{
	s->state = S_DEAD;
	if (s->bev != NULL) {
		bufferevent_disable(s->bev, EV_READ | EV_WRITE);
		bufferevent_setcb(s->bev, NULL, NULL, NULL, NULL);
	}
	event_del(s->timer);
	event_del(s->deadline);
	event_active(s->timer, EV_TIMEOUT, 0);
}

static void
session_fail(struct upstream_session *s, const char *why)
{
	log_warnx("- upstream conn=%u failed state=%s peer=%s reason=\"%s\"",
	    s->serial, state_names[s->state], s->peer[0] ? s->peer : "-", why);
	delivery_abandon(s, why);
	session_gone(s);
}

/* ---- connecting ---- */

/* "192.0.2.1:587" or "[2001:db8::1]:587" */
static void
format_peer(const struct sockaddr *sa, char *buf, size_t len)
{
	char a[INET6_ADDRSTRLEN];
	int port = 0;

	netaddr_str(sa, a, sizeof(a));
	if (sa->sa_family == AF_INET)
		port = ntohs(((const struct sockaddr_in *)sa)->sin_port);
	else if (sa->sa_family == AF_INET6)
		port = ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
	snprintf(buf, len, sa->sa_family == AF_INET6 ? "[%s]:%d" : "%s:%d", a,
	    port);
}

static void
dns_cb(int result, struct evutil_addrinfo *res, void *arg)
{
	struct upstream_session *s = arg;
	char why[512];

	s->dnsreq = NULL;
	if (result != 0) {
		if (result == EVUTIL_EAI_CANCEL)
			return;
		snprintf(why, sizeof(why), "cannot resolve %s: %s",
		    s->pool->ep.host, evutil_gai_strerror(result));
		session_fail(s, why);
		return;
	}
	s->addrs = res;
	s->cur = NULL;
	session_enter(s, S_CONNECT);
}

static void
start_resolve(struct upstream_session *s)
{
	struct evutil_addrinfo hints;
	char port[8];
	struct evdns_getaddrinfo_request *req;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_protocol = IPPROTO_TCP;
	snprintf(port, sizeof(port), "%d", s->pool->ep.port);
	/* Fresh on every connect: SES's addresses rotate behind its ELB. */
	req = evdns_getaddrinfo(s->pool->dns, s->pool->ep.host, port, &hints,
	    dns_cb, s);
	if (s->state == S_RESOLVE)
		s->dnsreq = req;
}

static void
try_next_address(struct upstream_session *s)
{
	if (s->bev != NULL) {
		bufferevent_free(s->bev);
		s->bev = NULL;
	}
	s->cur = s->cur == NULL ? s->addrs : s->cur->ai_next;
	if (s->cur == NULL) {
		session_fail(s, "no address of the upstream could be reached");
		return;
	}
	format_peer(s->cur->ai_addr, s->peer, sizeof(s->peer));
	if (s->pool->ep.wrapper) {
		if ((s->ssl = tls_client_new(s->pool->ssl_ctx,
		    s->pool->ep.host)) == NULL) {
			session_fail(s, "cannot create a TLS session");
			return;
		}
		s->bev = bufferevent_openssl_socket_new(s->pool->base, -1,
		    s->ssl, BUFFEREVENT_SSL_CONNECTING,
		    BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
		s->ssl = NULL;
		if (s->bev != NULL)
			bufferevent_openssl_set_allow_dirty_shutdown(s->bev, 1);
	} else
		s->bev = bufferevent_socket_new(s->pool->base, -1,
		    BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
	if (s->bev == NULL) {
		session_fail(s, "cannot create a connection");
		return;
	}
	bufferevent_setcb(s->bev, read_cb, write_cb, event_cb, s);
	bufferevent_enable(s->bev, EV_READ | EV_WRITE);
	arm_deadline(s);	/* each address gets the whole time */
	log_debug("- upstream conn=%u connecting peer=%s tls=%s", s->serial,
	    s->peer, s->pool->ep.wrapper ? "wrapper" : "starttls");
	if (bufferevent_socket_connect(s->bev, s->cur->ai_addr,
	    (int)s->cur->ai_addrlen) == -1)
		try_next_address(s);
}

/* Describe why a TLS connection failed: verification or protocol. */
static void
tls_error(struct upstream_session *s, char *buf, size_t len)
{
	SSL *ssl = bufferevent_openssl_get_ssl(s->bev);
	unsigned long e;
	long vr;

	if (ssl != NULL && (vr = SSL_get_verify_result(ssl)) != X509_V_OK) {
		snprintf(buf, len, "certificate verification failed for %s: %s",
		    s->pool->ep.host, X509_verify_cert_error_string(vr));
		return;
	}
	if ((e = bufferevent_get_openssl_error(s->bev)) != 0) {
		snprintf(buf, len, "TLS: %s", ERR_reason_error_string(e));
		return;
	}
	snprintf(buf, len, "%s", EVUTIL_SOCKET_ERROR() != 0 ?
	    evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()) :
	    "connection lost during TLS");
}

/*
 * Switch the plain connection to TLS after "220" to STARTTLS.  The plain
 * bufferevent is replaced by a TLS one on the same socket (not stacked
 * as a filter, so the kernel's socket buffer is the only backpressure
 * and output never piles up below the TLS layer).  Anything the server
 * sent before the handshake is discarded, never read as a reply
 * (STARTTLS command injection).
 */
static void
start_tls(struct upstream_session *s)
{
	struct bufferevent *tls;
	evutil_socket_t fd = bufferevent_getfd(s->bev);
	SSL *ssl;

	if ((ssl = tls_client_new(s->pool->ssl_ctx,
	    s->pool->ep.host)) == NULL) {
		session_fail(s, "cannot create a TLS session");
		return;
	}
	tls = bufferevent_openssl_socket_new(s->pool->base, fd, ssl,
	    BUFFEREVENT_SSL_CONNECTING, BEV_OPT_CLOSE_ON_FREE |
	    BEV_OPT_DEFER_CALLBACKS);
	if (tls == NULL) {
		SSL_free(ssl);
		session_fail(s, "cannot start TLS");
		return;
	}
	/* The socket now belongs to the TLS bufferevent. */
	bufferevent_setfd(s->bev, -1);
	bufferevent_free(s->bev);
	bufferevent_openssl_set_allow_dirty_shutdown(tls, 1);
	s->bev = tls;
	bufferevent_setcb(s->bev, read_cb, write_cb, event_cb, s);
	bufferevent_enable(s->bev, EV_READ | EV_WRITE);
}

static void
event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct upstream_session *s = arg;
	char why[512];

	if (what & BEV_EVENT_CONNECTED) {
		if (s->state == S_CONNECT) {
			s->connected_at = time(NULL);
			stats.connections++;
			session_enter(s, S_BANNER);
		} else if (s->state == S_TLS)
			session_enter(s, S_EHLO2);
		return;
	}
	if (what & BEV_EVENT_EOF)
		snprintf(why, sizeof(why), "connection closed by the upstream");
	else if (s->pool->ep.wrapper || s->state == S_TLS)
		tls_error(s, why, sizeof(why));
	else if (EVUTIL_SOCKET_ERROR() != 0)
		snprintf(why, sizeof(why), "%s",
		    evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
	else
		snprintf(why, sizeof(why), "connection lost");

	if (s->state == S_CONNECT) {
		log_warnx("- upstream conn=%u connect failed peer=%s "
		    "reason=\"%s\"", s->serial, s->peer, why);
		if (strstr(why, "certificate") != NULL) {
			/* Another address will show the same certificate. */
			session_fail(s, why);
			return;
		}
		try_next_address(s);
		return;
	}
	if (s->state == S_QUIT) {
		session_gone(s);
		return;
	}
	if (s->state == S_READY && s->d == NULL) {
		/* Nothing in flight: SES closing an idle connection is
		 * routine (its idle timeout, ELB rotation). */
		log_info("- upstream conn=%u closed while idle reason=\"%s\"",
		    s->serial, why);
		session_gone(s);
		return;
	}
	session_fail(s, why);
}

/* ---- replies ---- */

/* Record one recipient's outcome from a reply. */
static void
set_outcome(struct upstream_session *s, size_t i, const char *summary,
    enum delivery_outcome o)
{
	struct delivery *d = s->d;

	d->outcome[i] = o;
	free(d->reply[i]);
	d->reply[i] = strdup(summary);
}

/* The whole remaining transaction gets this outcome. */
static void
fail_rest(struct upstream_session *s, const char *summary,
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

static void
finish_delivery(struct upstream_session *s)
{
	struct delivery *d = s->d;

	if (s->probe) {
		s->probe = 0;
		if (s->last != NULL && s->last->action != SES_ACT_QUOTA)
			upstream_quota_ok(s->pool);
	}
	s->d = NULL;
	spool_reader_close(s->body);
	s->body = NULL;
	s->messages++;
	scheduler_done(s->pool->sched, d);
	session_enter(s, s->closing_after ? S_QUIT : S_READY);
}

static void
auth_plain(struct upstream_session *s)
{
	char *cmd = upstream_auth_plain(s->pool->cred.username,
	    s->pool->cred.password);

	send_line(s, "%s", cmd);
	explicit_bzero(cmd, strlen(cmd));
	free(cmd);
}

static void
send_b64(struct upstream_session *s, const char *v)
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
read_ehlo(struct upstream_session *s)
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
end_transaction(struct upstream_session *s, const struct ses_class *k)
{
	if (k->closes) {
		s->closing_after = 1;
		finish_delivery(s);
	} else
		session_enter(s, S_RSET);
}

/* Connecting or authenticating was refused. */
static void
setup_refused(struct upstream_session *s, const struct ses_class *k,
    const char *summary)
{
	pool_effect(s, k, summary);
	session_fail(s, summary);
}

/* A reply is complete: act on its class according to the state. */
static void
on_reply(struct upstream_session *s)
{
	struct upstream_reply *r = &s->reply;
	const struct ses_class *k;
	char sum[512];

	upstream_reply_summary(r, sum, sizeof(sum));
	k = ses_classify(reply_step(s->state), r->code, r->text);
	stats.replies[k->action]++;
	log_debug("- upstream conn=%u state=%s reply=\"%s\" class=%s",
	    s->serial, state_names[s->state], sum, k->name);
	if (s->state >= S_MAIL && s->state <= S_DOT) {
		if (k->action != SES_ACT_OK)
			pool_effect(s, k, sum);
		if (k->closes)
			s->closing_after = 1;
	}

	switch (s->state) {
	case S_BANNER:
		if (r->code != 220)
			return setup_refused(s, k, sum);
		return session_enter(s, S_EHLO);
	case S_EHLO:
		if (k->action != SES_ACT_OK)
			return setup_refused(s, k, sum);
		read_ehlo(s);
		if (s->pool->ep.wrapper)
			return session_enter(s, S_AUTH);
		if (!upstream_reply_has_keyword(r, "STARTTLS", NULL))
			return session_fail(s, "the upstream does not offer "
			    "STARTTLS; refusing to send in the clear");
		return session_enter(s, S_STARTTLS);
	case S_STARTTLS:
		if (r->code != 220)
			return setup_refused(s, k, sum);
		return session_enter(s, S_TLS);
	case S_EHLO2:
		if (k->action != SES_ACT_OK)
			return setup_refused(s, k, sum);
		read_ehlo(s);
		return session_enter(s, S_AUTH);
	case S_AUTH:
		if (r->code == 334 && s->auth_login && !s->auth_plain)
			return session_enter(s, S_AUTH_USER);
		/* FALLTHROUGH */
	case S_AUTH_PASS:
		if (r->code == 235) {
			s->reached_ready = 1;
			upstream_auth_ok(s->pool);
			log_info("- upstream conn=%u ready peer=%s", s->serial,
			    s->peer);
			return session_enter(s, S_READY);
		}
		if (k->action == SES_ACT_OK)	/* a 334 too many */
			k = ses_classify(SES_STEP_AUTH, 535, sum);
		return setup_refused(s, k, sum);
	case S_AUTH_USER:
		if (r->code != 334)
			return setup_refused(s, k, sum);
		return session_enter(s, S_AUTH_PASS);
	case S_MAIL:
		if (k->action != SES_ACT_OK) {
			fail_rest(s, sum, class_outcome(k), 0);
			return end_transaction(s, k);
		}
		s->rcpt_i = 0;
		return session_enter(s, S_RCPT);
	case S_RCPT:
		if (k->action == SES_ACT_OK) {
			s->accepted[s->rcpt_i] = 1;
			s->naccepted++;
		} else if (k->scope == SES_SCOPE_RECIPIENT) {
			set_outcome(s, s->rcpt_i, sum, class_outcome(k));
		} else {
			/* About the pool or the session: all of it again. */
			fail_rest(s, sum, class_outcome(k), 0);
			return end_transaction(s, k);
		}
		if (++s->rcpt_i < s->d->nrcpt)
			return session_enter(s, S_RCPT);
		if (s->naccepted == 0)
			return session_enter(s, S_RSET);
		return session_enter(s, S_DATA);
	case S_DATA:
		if (r->code != 354) {
			if (k->action == SES_ACT_OK)	/* a 2xx, not 354 */
				k = ses_classify(SES_STEP_DATA, 250, sum);
			fail_rest(s, sum, class_outcome(k), 0);
			return end_transaction(s, k);
		}
		return session_enter(s, S_BODY);
	case S_DOT:
		s->last = k;
		if (k->action == SES_ACT_OK) {
			upstream_reply_ses_id(r, s->d->ses_id,
			    sizeof(s->d->ses_id));
			for (size_t i = 0; i < s->d->nrcpt; i++)
				if (s->accepted[i])
					set_outcome(s, i, sum, DELIVERY_OK);
			upstream_quota_ok(s->pool);
		} else
			fail_rest(s, sum, class_outcome(k), 1);
		/* None should be left: the refused ones have outcomes. */
		fail_rest(s, sum, DELIVERY_TEMPFAIL, 0);
		return finish_delivery(s);
	case S_RSET:
		return finish_delivery(s);
	case S_QUIT:
		return session_gone(s);
	case S_READY:
		/* Unsolicited: SES's idle timeout, or a 421; it may say
		 * something about the pool too. */
		pool_effect(s, k, sum);
		log_info("- upstream conn=%u unsolicited reply=\"%s\", closing",
		    s->serial, sum);
		return session_gone(s);
	default:
		return session_fail(s, "reply in an unexpected state");
	}
}

static void
read_cb(struct bufferevent *bev, void *arg)
{
	struct upstream_session *s = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
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
fill_body(struct upstream_session *s)
{
	struct evbuffer *out = bufferevent_get_output(s->bev);
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
			size_t al = s->pool->conf.ses == NULL ? 0 :
			    ses_headers_for(s->pool->conf.ses, s->d->sender,
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
write_cb(struct bufferevent *bev, void *arg)
{
	struct upstream_session *s = arg;

	if (s->state == S_BODY) {
		arm_deadline(s);
		fill_body(s);
	}
}

/* ---- policy ---- */

/*
 * Recycle between transactions only: after recycle_after_messages
 * messages or recycle_after_seconds on this connection (SES's ELB
 * rotates instances under long-lived connections).
 */
static int
session_should_recycle(const struct upstream_session *s, time_t now,
    const char **reason)
{
	const struct upstream_config *c = &s->pool->conf;

	if (s->messages >= (unsigned)c->recycle_messages) {
		*reason = "messages";
		return 1;
	}
	if (now - s->connected_at >= c->recycle_seconds) {
		*reason = "age";
		return 1;
	}
	return 0;
}

/* Between transactions (just entered READY): recycle, take work, or idle. */
static void
session_ready(struct upstream_session *s)
{
	const char *reason;
	time_t now = time(NULL);

	if (s->check_only) {
		log_info("- %s conn=%u health check passed peer=%s",
		    s->pool->ep.name, s->serial, s->peer);
		session_enter(s, S_QUIT);
		return;
	}
	if (session_should_recycle(s, now, &reason)) {
		log_info("- upstream conn=%u recycle reason=%s messages=%u "
		    "age=%llds", s->serial, reason, s->messages,
		    (long long)(now - s->connected_at));
		session_enter(s, S_QUIT);
		return;
	}
	upstream_session_offer(s);
}

void
upstream_session_offer(struct upstream_session *s)
{
	struct delivery *d;
	struct timeval idle = { s->pool->conf.idle_timeout, 0 };
	double wait;
	struct timespec ts;

	int probe = 0;

	if (s->state != S_READY || s->d != NULL || s->check_only)
		return;
	if (!s->pool->active || !upstream_may_take(s->pool, &probe) ||
	    (d = scheduler_take(s->pool->sched)) == NULL) {
		if (probe)
			s->pool->probe_token = 1;	/* not used: keep it */
		evtimer_add(s->timer, &idle);
		return;
	}
	s->probe = probe;
	s->last = NULL;
	if (probe)
		log_info("%s upstream conn=%u probing the daily quota", d->id,
		    s->serial);
	evtimer_del(s->timer);
	s->d = d;
	s->naccepted = 0;
	memset(s->accepted, 0, sizeof(s->accepted));
	clock_gettime(CLOCK_MONOTONIC, &ts);
	wait = ratelimit_reserve(&s->pool->rate, (double)d->nrcpt,
	    ts.tv_sec + ts.tv_nsec / 1e9);
	if (wait > 0) {
		struct timeval tv = { (time_t)wait,
		    (suseconds_t)((wait - (time_t)wait) * 1e6) };
		session_enter(s, S_RATEWAIT);
		evtimer_add(s->timer, &tv);
		return;
	}
	session_enter(s, S_MAIL);
}

/* ---- the state machine's single point of change ---- */

static void
session_enter(struct upstream_session *s, enum session_state st)
{
	const struct upstream_config *c = &s->pool->conf;

	log_debug("- upstream conn=%u %s -> %s", s->serial,
	    state_names[s->state], state_names[st]);
	s->state = st;
	arm_deadline(s);
	switch (st) {
	case S_RESOLVE:
		start_resolve(s);
		break;
	case S_CONNECT:
		try_next_address(s);
		break;
	case S_BANNER:
		break;		/* wait for the greeting */
	case S_EHLO:
	case S_EHLO2:
		send_line(s, "EHLO %s", c->helo_name);
		break;
	case S_STARTTLS:
		send_line(s, "STARTTLS");
		break;
	case S_TLS:
		start_tls(s);
		break;
	case S_AUTH:
		if (s->auth_plain)
			auth_plain(s);
		else if (s->auth_login)
			send_line(s, "AUTH LOGIN");
		else
			session_fail(s, "the upstream offers neither AUTH "
			    "PLAIN nor AUTH LOGIN");
		break;
	case S_AUTH_USER:
		send_b64(s, s->pool->cred.username);
		break;
	case S_AUTH_PASS:
		send_b64(s, s->pool->cred.password);
		break;
	case S_READY:
		session_ready(s);
		break;
	case S_RATEWAIT:
		break;		/* s->timer runs */
	case S_MAIL: {
		char size[32] = "";

		if (s->has_size)
			snprintf(size, sizeof(size), " SIZE=%lld",
			    (long long)s->d->size);
		/* 8BITMIME covers 7-bit mail too, and local clients often
		 * send 8-bit text without declaring it. */
		send_line(s, "MAIL FROM:<%s>%s%s", s->d->sender, size,
		    s->has_8bitmime ? " BODY=8BITMIME" : "");
		break;
	}
	case S_RCPT:
		send_line(s, "RCPT TO:<%s>", s->d->rcpt[s->rcpt_i]);
		break;
	case S_DATA:
		send_line(s, "DATA");
		break;
	case S_BODY:
		if ((s->body = spool_reader_open(s->pool->spool, s->d->id)) ==
		    NULL) {
			/* The connection has seen 354: only closing it
			 * guarantees SES does not accept a half message. */
			session_fail(s, "cannot open the message in the spool");
			return;
		}
		dot_encoder_init(&s->enc);
		s->body_started = 0;
		fill_body(s);
		break;
	case S_DOT:
		break;		/* the terminator is queued: wait for 250 */
	case S_RSET:
		send_line(s, "RSET");
		break;
	case S_QUIT:
		send_line(s, "QUIT");
		break;
	case S_START:
	case S_DEAD:
		break;
	}
}
