/*
 * transport_api.c: the SES v2 API transport: SendEmail with the spooled
 * message as raw content, over keep-alive HTTPS connections (transport.h
 * is its interface with the pool; one session is one connection).
 *
 * Why not evhttp: its client takes a request body only as one evbuffer
 * filled before the request is made (no public way to stream it), so a
 * 30 MB message would be held whole, twice (base64).  Feeding bytes into
 * evhttp's connection bufferevent behind its back would depend on its
 * internal state machine, and its reconnect logic reuses a bufferevent
 * that, over OpenSSL, needs a fresh SSL each time.  So this file writes
 * the HTTP/1.1 request itself over a bufferevent_openssl (connected
 * by upconn.c, as SMTP is: the same certificate and host name checks)
 * and reads the response with a small, bounded parser (status line, headers,
 * a Content-Length, chunked, or until-close body of at most
 * RESP_MAX bytes): requests are one fixed shape, responses small JSON.
 *
 * A transaction:  READY -> HASH -> [SIGN] -> REQUEST -> RESPONSE -> READY
 *   HASH     the JSON body ({... "Content":{"Raw":{"Data":"<base64>"}}})
 *            is produced from the spool once to learn its length and
 *            SHA-256, HASH_STEP bytes per turn of the loop, so neither
 *            memory nor the loop's latency grows with the message;
 *   SIGN     no credentials yet (the instance role not answered, or
 *            renewed after ExpiredToken): the delivery waits, to the
 *            deadline;
 *   REQUEST  the headers, signed (sigv4.c), then the same body produced
 *            again as the output drains (OUT_HIGH at most buffered; each
 *            drain must happen within the deadline);
 *   RESPONSE classified by ses_classify_api() (ses_reply.h).
 * A session starts in CREDS (no connection until credentials exist),
 * then RESOLVE -> CONNECT (TCP + TLS) -> READY.  A connection lost
 * while the request is written: the message goes back at once; once it
 * is written whole: SES may have it (outcome unknown, "duplicate
 * possible").  ExpiredTokenException: credentials are fetched anew
 * (creds_refresh) and the message given back to be sent again, without
 * the pool's loud authentication log, unless it happens EXPIRED_MAX
 * times in a row.
 *
 * Envelope: the recipients (at most SCHEDULER_MAX_RCPT = 50, SES's
 * limit) are Destination.ToAddresses (SES sends to those, never to the
 * header's), the envelope sender FeedbackForwardingEmailAddress (where
 * SES sends bounces, as MAIL FROM over SMTP); the configuration set and
 * tags (ses_headers.c) are ConfigurationSetName and EmailTags, unless
 * the message has its own X-SES-* fields.  The raw content is the
 * spooled message byte for byte.
 */
#include "config.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/util.h>
#include <openssl/evp.h>

#include "creds.h"
#include "endpoint.h"
#include "log.h"
#include "scheduler.h"
#include "ses_headers.h"
#include "ses_reply.h"
#include "sigv4.h"
#include "spool.h"
#include "stats.h"
#include "transport.h"
#include "transport_txn.h"
#include "upconn.h"
#include "xalloc.h"

#define RAW_CHUNK	49152		/* a multiple of 3: whole base64 quanta */
#define OUT_HIGH	(4 * 65536)	/* body bytes buffered at most */
#define HASH_STEP	(16 * RAW_CHUNK) /* raw bytes hashed per turn */
#define HEAD_MAX	16384		/* response status line + headers */
#define RESP_MAX	65536		/* response body */
#define EXPIRED_MAX	3		/* ExpiredToken in a row: loud */
#define SEND_PATH	"/v2/email/outbound-emails"

enum api_state {
	A_START, A_CREDS, A_RESOLVE, A_CONNECT, A_READY, A_HASH, A_SIGN,
	A_REQUEST, A_RESPONSE, A_DEAD,
};

static const char *const state_names[] = {
	"start", "creds", "resolve", "connect", "ready", "hash", "sign",
	"request", "response", "dead",
};

struct transport_api {
	struct transport	 base;		/* first: the interface */
	struct upconn_target	 to;		/* where sessions connect */
	struct spool		*spool;
	char			*name;		/* "upstream", "fallback" */
	char			*host;		/* to connect to and verify */
	char			*authority;	/* the Host header */
	char			*region;
	int			 timeout;
	const struct ses_headers *ses;
	struct creds		*creds;
	int			 creds_shared;	/* the pool's: not freed here */
	struct transport_session *sessions;	/* all, for creds_on_change */
	unsigned		 expired_row;	/* ExpiredToken in a row */
	int			 refreshable;	/* the instance role */
	char			 stale_key[128]; /* expired: wait for another */
	char			 auth_hint[512];
};

/* The body being produced (twice: hashed, then sent). */
struct body_gen {
	struct spool_reader	*rd;
	unsigned char		 carry[3];	/* raw bytes not yet encoded */
	size_t			 ncarry;
	int			 eof;
};

/* The response being read. */
struct response {
	int			 status;
	int			 in_body;
	long long		 length;	/* -1: until close; -2: chunked */
	long long		 chunk;		/* chunked: left in this chunk */
	int			 close;		/* Connection: close */
	char			 type[128];	/* x-amzn-ErrorType */
	struct evbuffer		*body;
};

struct transport_session {
	struct transport_api	*t;
	const struct transport_events *ev;
	void			*arg;
	enum api_state		 state;
	unsigned		 serial;
	struct upconn		*conn;
	struct event		*timer;		/* start, hash steps */
	int			 reached_ready;
	struct transport_session *next;		/* t->sessions */
	/* the transaction */
	struct delivery		*d;
	char			*json_head;	/* before the base64 */
	size_t			 head_len;
	struct body_gen		 gen;
	struct sigv4_sha256	*sha;
	char			 sha_hex[SIGV4_HEX_LEN + 1];
	unsigned long long	 body_len;
	struct response		 resp;
};

static const char json_tail[] = "\"}}}";

static void *
xmalloc(size_t n)
{
	void *p = malloc(n);

	if (p == NULL)
		abort();
	return p;
}

static void session_enter(struct transport_session *, enum api_state);
static void session_fail(struct transport_session *, const char *why);
static void read_cb(void *);
static const struct upconn_events conn_events;
static void fill_body(struct transport_session *);

/* ---- JSON ---- */

/* Append s as a JSON string (quotes included). */
static void
json_str(struct evbuffer *b, const char *s)
{
	evbuffer_add(b, "\"", 1);
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			evbuffer_add_printf(b, "\\%c", c);
		else if (c < 0x20 || c == 0x7f)
			evbuffer_add_printf(b, "\\u%04x", c);
		else
			evbuffer_add(b, s, 1);
	}
	evbuffer_add(b, "\"", 1);
}

/* "a=b, c=d" as EmailTags: [{"Name":"a","Value":"b"}, ...] */
static void
json_tags(struct evbuffer *b, const char *tags)
{
	char *copy = xstrdup(tags), *save = NULL, *tok, *eq;
	int first = 1;

	evbuffer_add_printf(b, ",\"EmailTags\":[");
	for (tok = strtok_r(copy, ", ", &save); tok != NULL;
	    tok = strtok_r(NULL, ", ", &save)) {
		if ((eq = strchr(tok, '=')) == NULL)
			continue;
		*eq = '\0';
		evbuffer_add_printf(b, "%s{\"Name\":", first ? "" : ",");
		json_str(b, tok);
		evbuffer_add_printf(b, ",\"Value\":");
		json_str(b, eq + 1);
		evbuffer_add(b, "}", 1);
		first = 0;
	}
	evbuffer_add(b, "]", 1);
	free(copy);
}

/* The request's JSON up to the base64 (hdr: the message's start). */
static void
build_head(struct transport_session *s, const char *hdr, size_t len)
{
	struct delivery *d = s->d;
	struct evbuffer *b = evbuffer_new();
	const char *set = "", *tags = "";

	if (b == NULL)
		abort();
	evbuffer_add_printf(b, "{\"Destination\":{\"ToAddresses\":[");
	for (size_t i = 0; i < d->nrcpt; i++) {
		if (i > 0)
			evbuffer_add(b, ",", 1);
		json_str(b, d->rcpt[i]);
	}
	evbuffer_add_printf(b, "]}");
	if (d->sender != NULL && *d->sender != '\0') {
		evbuffer_add_printf(b, ",\"FeedbackForwardingEmailAddress\":");
		json_str(b, d->sender);
	}
	if (s->t->ses != NULL)
		ses_headers_fields(s->t->ses, d->sender, hdr, len, &set, &tags);
	if (*set != '\0') {
		evbuffer_add_printf(b, ",\"ConfigurationSetName\":");
		json_str(b, set);
	}
	if (*tags != '\0')
		json_tags(b, tags);
	evbuffer_add_printf(b, ",\"Content\":{\"Raw\":{\"Data\":\"");
	s->head_len = evbuffer_get_length(b);
	s->json_head = xmalloc(s->head_len + 1);
	evbuffer_remove(b, s->json_head, s->head_len);
	s->json_head[s->head_len] = '\0';
	evbuffer_free(b);
}

/* The value of the string field name in a small JSON object, or "". */
static void
json_field(const char *json, const char *name, char *out, size_t len)
{
	char key[64];
	const char *p;
	size_t o = 0;

	out[0] = '\0';
	snprintf(key, sizeof(key), "\"%s\"", name);
	if ((p = strstr(json, key)) == NULL)
		return;
	p += strlen(key);
	p += strspn(p, " \t\r\n");
	if (*p++ != ':')
		return;
	p += strspn(p, " \t\r\n");
	if (*p++ != '"')
		return;
	for (; *p != '\0' && *p != '"' && o + 1 < len; p++) {
		if (*p == '\\' && p[1] != '\0')
			p++;
		out[o++] = (unsigned char)*p < 0x20 ? ' ' : *p;
	}
	out[o] = '\0';
}

/* ---- the body: JSON head, base64 of the spooled message, tail ---- */

static int
gen_open(struct transport_session *s)
{
	memset(&s->gen, 0, sizeof(s->gen));
	s->gen.rd = spool_reader_open(s->t->spool, s->d->id);
	return s->gen.rd == NULL ? -1 : 0;
}

static void
gen_close(struct body_gen *g)
{
	spool_reader_close(g->rd);
	g->rd = NULL;
}

/*
 * The next piece of base64 into out (4 * RAW_CHUNK / 3 + 4 bytes):
 * its length, 0 at the end (after the last quantum), -1 on a read error.
 * raw (RAW_CHUNK + 3 bytes) receives the raw bytes read, *nraw of them
 * (the first piece: the message's start, for build_head).
 */
static ssize_t
gen_next(struct body_gen *g, unsigned char *raw, size_t *nraw,
    unsigned char *out)
{
	size_t have = g->ncarry, whole;
	ssize_t n;

	*nraw = 0;
	if (g->eof)
		return 0;
	memcpy(raw, g->carry, g->ncarry);
	while (have < RAW_CHUNK) {
		n = spool_reader_read(g->rd, raw + have, RAW_CHUNK - have);
		if (n < 0)
			return -1;
		if (n == 0) {
			g->eof = 1;
			break;
		}
		have += (size_t)n;
		*nraw += (size_t)n;
	}
	whole = g->eof ? have : have - have % 3;
	g->ncarry = have - whole;
	memcpy(g->carry, raw + whole, g->ncarry);
	if (whole == 0)
		return 0;
	return EVP_EncodeBlock(out, raw, (int)whole);
}

/* ---- sessions ---- */

static int
state_has_deadline(enum api_state st)
{
	return st == A_CONNECT || st == A_SIGN || st == A_REQUEST ||
	    st == A_RESPONSE;
}

static void
arm_deadline(struct transport_session *s)
{
	upconn_deadline(s->conn, state_has_deadline(s->state) ?
	    s->t->timeout : 0, state_names[s->state]);
}

static void
unlink_session(struct transport_session *s)
{
	struct transport_session **pp;

	for (pp = &s->t->sessions; *pp != NULL; pp = &(*pp)->next)
		if (*pp == s) {
			*pp = s->next;
			return;
		}
}

/* The transaction's state goes (not the delivery: the caller's). */
static void
txn_clear(struct transport_session *s)
{
	gen_close(&s->gen);
	sigv4_sha256_free(s->sha);
	s->sha = NULL;
	free(s->json_head);
	s->json_head = NULL;
	if (s->resp.body != NULL)
		evbuffer_free(s->resp.body);
	memset(&s->resp, 0, sizeof(s->resp));
}

/* The transaction ends with class k for every recipient. */
static void
txn_done(struct transport_session *s, const struct ses_class *k,
    const char *why)
{
	struct delivery *d = s->d;

	s->d = NULL;
	txn_clear(s);
	stats.replies[k->action]++;
	transport_txn_settle(d, k, why, NULL);
	s->ev->done(s->arg, s, d, k);
}

/* The message could not be read or signed: back to the queue, the
 * connection stays (nothing of the request was sent). */
static void
txn_local_fail(struct transport_session *s, const char *why)
{
	log_event(LOG_WARNING, s->d->id, "upstream.request_failed",
	    "pool=%s conn=%u reason=%s", s->t->name, s->serial, log_q(why));
	txn_done(s, ses_classify_network(SES_STEP_BODY), why);
	session_enter(s, A_READY);
}

/*
 * The connection failed under a transaction: once the request was
 * written whole, SES may have the message.
 */
static void
txn_abandon(struct transport_session *s, const char *why)
{
	struct delivery *d = s->d;
	int sent = s->state == A_RESPONSE;
	const struct ses_class *k = ses_classify_network(sent ? SES_STEP_DOT :
	    SES_STEP_BODY);

	if (d == NULL)
		return;
	if (sent)
		transport_txn_unknown(d, s->t->name, s->serial, why);
	txn_done(s, k, why);
}

static void
session_gone(struct transport_session *s)
{
	s->state = A_DEAD;
	upconn_end(s->conn);
	event_del(s->timer);
}

static void
session_fail(struct transport_session *s, const char *why)
{
	upconn_log_failed(s->conn, state_names[s->state], why);
	txn_abandon(s, why);
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

static void
conn_resolved(void *arg)
{
	session_enter(arg, A_CONNECT);
}

/* The whole step took too long. */
static void
conn_deadline(void *arg, const char *why)
{
	session_fail(arg, why);
}

/* The session has ended: the pool frees it. */
static void
conn_ended(void *arg)
{
	struct transport_session *s = arg;

	s->ev->gone(s->arg, s, s->reached_ready);
}

/* TLS is up: the session is ready. */
static void
conn_connected(void *arg)
{
	struct transport_session *s = arg;
	int one = 1;

	/* Requests are written whole or in large pieces: no Nagle. */
	setsockopt(bufferevent_getfd(upconn_bev(s->conn)), IPPROTO_TCP,
	    TCP_NODELAY, &one, sizeof(one));
	s->reached_ready = 1;
	upconn_log_ready(s->conn);
	session_enter(s, A_READY);
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

	if ((what & BEV_EVENT_EOF) && s->state == A_RESPONSE &&
	    s->resp.in_body && s->resp.length == -1) {
		s->resp.close = 1;	/* the body ran until the close */
		read_cb(s);
		if (s->state != A_RESPONSE)
			return;
	}
	if (s->d == NULL) {
		upconn_log_closed_idle(s->conn, why);
		return session_gone(s);
	}
	session_fail(s, why);
}

/* ---- the request ---- */

/* Hash up to HASH_STEP more raw bytes; the loop runs between steps. */
static void
hash_step(struct transport_session *s)
{
	unsigned char raw[RAW_CHUNK + 3], enc[4 * RAW_CHUNK / 3 + 8];
	size_t nraw, done = 0;
	ssize_t n = 0;

	while (done < HASH_STEP) {
		n = gen_next(&s->gen, raw, &nraw, enc);
		if (n < 0)
			return txn_local_fail(s, "cannot read the message from "
			    "the spool");
		if (s->json_head == NULL) {
			build_head(s, (const char *)raw, nraw);
			sigv4_sha256_update(s->sha, s->json_head, s->head_len);
			s->body_len = s->head_len + sizeof(json_tail) - 1;
		}
		if (n == 0)
			break;
		sigv4_sha256_update(s->sha, enc, (size_t)n);
		s->body_len += (unsigned long long)n;
		done += nraw;
	}
	if (n > 0)
		return (void)event_active(s->timer, EV_TIMEOUT, 0);
	gen_close(&s->gen);
	sigv4_sha256_update(s->sha, json_tail, sizeof(json_tail) - 1);
	if (sigv4_sha256_final(s->sha, s->sha_hex) == -1) {
		s->sha = NULL;
		return txn_local_fail(s, "SHA-256 failed");
	}
	s->sha = NULL;
	session_enter(s, A_SIGN);
}

/* The request's headers, signed with c; 0, or -1. */
static int
write_head(struct transport_session *s, const struct aws_creds *c)
{
	struct evbuffer *out = bufferevent_get_output(upconn_bev(s->conn));
	struct sigv4_request r = { "POST", s->t->authority, SEND_PATH, "",
	    "application/json", s->sha_hex, s->t->region, "ses", time(NULL) };
	char auth[SIGV4_AUTH_LEN], date[17];

	if (sigv4_sign(&r, c, auth, sizeof(auth), date) == -1)
		return -1;
	evbuffer_add_printf(out, "POST %s HTTP/1.1\r\nHost: %s\r\n"
	    "User-Agent: sesrelay/%s\r\nContent-Type: application/json\r\n"
	    "Content-Length: %llu\r\nX-Amz-Content-Sha256: %s\r\n"
	    "X-Amz-Date: %s\r\n", SEND_PATH, s->t->authority, PACKAGE_VERSION,
	    s->body_len, s->sha_hex, date);
	if (c->session_token != NULL)
		evbuffer_add_printf(out, "X-Amz-Security-Token: %s\r\n",
		    c->session_token);
	evbuffer_add_printf(out, "Authorization: %s\r\n\r\n", auth);
	explicit_bzero(auth, sizeof(auth));
	return 0;
}

/* Credentials known: sign and start the request. */
static void
enter_sign(struct transport_session *s)
{
	const struct aws_creds *c = creds_get(s->t->creds);

	if (c == NULL || (s->t->stale_key[0] != '\0' &&
	    strcmp(c->access_key_id, s->t->stale_key) == 0))
		return;		/* creds_changed() comes back here */
	if (gen_open(s) == -1)
		return txn_local_fail(s, "cannot open the message in the spool");
	if (write_head(s, c) == -1) {
		gen_close(&s->gen);
		return txn_local_fail(s, "cannot sign the request");
	}
	evbuffer_add(bufferevent_get_output(upconn_bev(s->conn)), s->json_head,
	    s->head_len);
	session_enter(s, A_REQUEST);
	/* The whole of a small request in one write: a second one would
	 * wait for the first's delayed ACK. */
	fill_body(s);
}

/* Refill the output with the body until it holds OUT_HIGH bytes. */
static void
fill_body(struct transport_session *s)
{
	struct evbuffer *out = bufferevent_get_output(upconn_bev(s->conn));
	unsigned char raw[RAW_CHUNK + 3], enc[4 * RAW_CHUNK / 3 + 8];
	size_t nraw;
	ssize_t n;

	while (evbuffer_get_length(out) < OUT_HIGH) {
		if ((n = gen_next(&s->gen, raw, &nraw, enc)) < 0) {
			char why[128];

			snprintf(why, sizeof(why), "spool read: %s",
			    strerror(errno));
			/* Never a body shorter than its Content-Length. */
			return session_fail(s, why);
		}
		if (n == 0) {
			evbuffer_add(out, json_tail, sizeof(json_tail) - 1);
			gen_close(&s->gen);
			return session_enter(s, A_RESPONSE);
		}
		evbuffer_add(out, enc, (size_t)n);
	}
}

static void
write_cb(void *arg)
{
	struct transport_session *s = arg;

	if (s->state == A_REQUEST) {
		arm_deadline(s);
		fill_body(s);
	}
}

/* ---- the response ---- */

/* A response header line (without CRLF); 0, or -1: not HTTP. */
static int
resp_header(struct response *r, char *line)
{
	char *v;

	if (r->status == 0) {
		if (strlen(line) < 12 || strncmp(line, "HTTP/1.", 7) != 0 ||
		    line[8] != ' ' ||
		    sscanf(line + 9, "%3d", &r->status) != 1 ||
		    r->status < 100)
			return -1;
		r->length = -1;
		r->close = line[7] == '0';	/* HTTP/1.0: no keep-alive */
		return 0;
	}
	if ((v = strchr(line, ':')) == NULL)
		return -1;
	*v++ = '\0';
	v += strspn(v, " \t");
	if (strcasecmp(line, "Content-Length") == 0) {
		char *end;

		r->length = strtoll(v, &end, 10);
		if (end == v || r->length < 0 || r->length > RESP_MAX)
			return -1;
	} else if (strcasecmp(line, "Transfer-Encoding") == 0 &&
	    strcasestr(v, "chunked") != NULL)
		r->length = -2;
	else if (strcasecmp(line, "Connection") == 0 &&
	    strcasestr(v, "close") != NULL)
		r->close = 1;
	else if (strcasecmp(line, "x-amzn-ErrorType") == 0)
		snprintf(r->type, sizeof(r->type), "%s", v);
	return 0;
}

/* Read the status line and headers; 1 when done, 0 more, -1 bad. */
static int
resp_head(struct response *r, struct evbuffer *in)
{
	char *line;
	size_t len;

	while ((line = evbuffer_readln(in, &len, EVBUFFER_EOL_CRLF)) != NULL) {
		int rc = len == 0 ? 1 : resp_header(r, line);

		free(line);
		if (rc == -1)
			return -1;
		if (rc == 1 && r->status >= 200)
			return 1;
		if (rc == 1) {		/* 1xx: the real one follows */
			r->status = 0;
			r->close = 0;
		}
	}
	return evbuffer_get_length(in) > HEAD_MAX ? -1 : 0;
}

/* Chunked: move whole chunks to r->body; 1 at the last, 0, -1 bad. */
static int
resp_chunks(struct response *r, struct evbuffer *in)
{
	char *line;
	size_t len;

	for (;;) {
		if (r->chunk > 0) {
			size_t n = evbuffer_get_length(in);

			if (n > (size_t)r->chunk)
				n = (size_t)r->chunk;
			evbuffer_remove_buffer(in, r->body, n);
			r->chunk -= (long long)n;
			if (r->chunk > 0)
				return 0;
			r->chunk = -1;		/* its CRLF follows */
		}
		if ((line = evbuffer_readln(in, &len, EVBUFFER_EOL_CRLF)) ==
		    NULL)
			return evbuffer_get_length(in) > HEAD_MAX ? -1 : 0;
		if (r->chunk == -1 || r->chunk == -3) {
			free(line);
			if (r->chunk == -3 && len == 0)
				return 1;	/* after the trailer */
			if (r->chunk == -1)
				r->chunk = 0;
			continue;
		}
		r->chunk = strtoll(line, NULL, 16);
		free(line);
		if (r->chunk < 0 || evbuffer_get_length(r->body) +
		    (size_t)r->chunk > RESP_MAX)
			return -1;
		if (r->chunk == 0)
			r->chunk = -3;		/* trailer lines, then "" */
	}
}

/* Read the body; 1 when complete, 0 more, -1 bad. */
static int
resp_body(struct response *r, struct evbuffer *in)
{
	if (r->length == -2)
		return resp_chunks(r, in);
	if (r->length == -1) {
		evbuffer_add_buffer(r->body, in);
		if (evbuffer_get_length(r->body) > RESP_MAX)
			return -1;
		return r->close;	/* set at EOF */
	}
	if (evbuffer_get_length(r->body) + evbuffer_get_length(in) <
	    (size_t)r->length)
		return evbuffer_add_buffer(r->body, in), 0;
	evbuffer_remove_buffer(in, r->body, (size_t)r->length -
	    evbuffer_get_length(r->body));
	return 1;
}

/* ExpiredToken: fetch anew, and the message goes back to be resent. */
static int
expired(struct transport_session *s, const struct ses_class *k)
{
	const struct aws_creds *c = creds_get(s->t->creds);

	if (!(k->flags & SES_F_REFRESH_CREDS) || !s->t->refreshable ||
	    c == NULL || ++s->t->expired_row > EXPIRED_MAX)
		return 0;
	/* Sending waits (A_SIGN) until a key other than this one comes. */
	snprintf(s->t->stale_key, sizeof(s->t->stale_key), "%s",
	    c->access_key_id);
	log_event(LOG_INFO, "-", "upstream.creds_expired",
	    "pool=%s conn=%u msg=\"SES says the credentials expired: "
	    "fetching them anew, the message is sent again\"", s->t->name,
	    s->serial);
	creds_refresh(s->t->creds);
	return 1;
}

/* SES answered: the outcome, what the pool hears, the session goes on. */
static void
on_response(struct transport_session *s)
{
	struct response *r = &s->resp;
	char *body = NULL, msg[400], id[128], why[600];
	const struct ses_class *k;
	size_t n = evbuffer_get_length(r->body);
	int close = r->close;

	body = xmalloc(n + 1);
	evbuffer_remove(r->body, body, n);
	body[n] = '\0';
	json_field(body, "message", msg, sizeof(msg));
	if (msg[0] == '\0')
		json_field(body, "Message", msg, sizeof(msg));
	if (r->type[0] == '\0')
		json_field(body, "__type", r->type, sizeof(r->type));
	json_field(body, "MessageId", id, sizeof(id));
	free(body);
	k = ses_classify_api(r->status, r->type, msg);
	snprintf(why, sizeof(why), "%d %s%s%s", r->status, r->type[0] ?
	    r->type : (k->action == SES_ACT_OK ? "OK" : "error"),
	    msg[0] ? ": " : "", msg);
	log_event(LOG_DEBUG, "-", "upstream.reply",
	    "pool=%s conn=%u state=%s reply=%s class=%s", s->t->name,
	    s->serial, state_names[s->state], log_q(why), k->name);
	if (k->action == SES_ACT_OK) {
		s->t->expired_row = 0;
		snprintf(s->d->ses_id, sizeof(s->d->ses_id), "%s", id);
		snprintf(why, sizeof(why), "%d Ok %s", r->status, id);
	} else if (expired(s, k)) {
		txn_done(s, k, why);	/* given back, not counted */
		return close ? session_gone(s) : session_enter(s, A_READY);
	} else if (k->scope == SES_SCOPE_POOL)
		s->ev->pool(s->arg, s, k, why);
	txn_done(s, k, why);
	if (close || k->closes)
		return session_gone(s);
	session_enter(s, A_READY);
}

static void
read_cb(void *arg)
{
	struct transport_session *s = arg;
	struct evbuffer *in = bufferevent_get_input(upconn_bev(s->conn));
	int rc = 0;

	if (s->state != A_RESPONSE && s->state != A_REQUEST) {
		if (evbuffer_get_length(in) > 0 && s->state != A_DEAD) {
			/* Nothing was asked: a server closing, or worse. */
			evbuffer_drain(in, evbuffer_get_length(in));
			if (s->d == NULL)
				session_gone(s);
			else
				session_fail(s, "unsolicited data");
		}
		return;
	}
	if (s->resp.body == NULL && (s->resp.body = evbuffer_new()) == NULL)
		abort();
	if (!s->resp.in_body) {
		if ((rc = resp_head(&s->resp, in)) == 1)
			s->resp.in_body = 1;
	}
	if (s->resp.in_body)
		rc = resp_body(&s->resp, in);
	if (rc == -1)
		return session_fail(s, "malformed HTTP response");
	if (rc == 1 && s->state == A_REQUEST) {
		/* An answer before the whole request (an error): SES will
		 * not read the rest; the connection cannot be reused. */
		gen_close(&s->gen);
		s->resp.close = 1;
	}
	if (rc == 1)
		on_response(s);
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

/* ---- credentials ---- */

/* Credentials arrived or changed: sessions waiting for them go on. */
static void
creds_changed(void *arg)
{
	struct transport_api *t = arg;
	struct transport_session *s, *next;

	t->stale_key[0] = '\0';
	for (s = t->sessions; s != NULL; s = next) {
		next = s->next;
		if (s->state == A_CREDS)
			session_enter(s, A_RESOLVE);
		else if (s->state == A_SIGN)
			enter_sign(s);
	}
}

/* ---- the state machine ---- */

static void
enter_start(struct transport_session *s)
{
	session_enter(s, creds_get(s->t->creds) == NULL ? A_CREDS : A_RESOLVE);
}

static void
enter_ready(struct transport_session *s)
{
	s->ev->ready(s->arg, s);
}

static void
enter_hash(struct transport_session *s)
{
	if (gen_open(s) == -1)
		return txn_local_fail(s, "cannot open the message in the spool");
	if ((s->sha = sigv4_sha256_new()) == NULL)
		abort();
	memset(&s->resp, 0, sizeof(s->resp));
	event_active(s->timer, EV_TIMEOUT, 0);
}

static void
timer_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct transport_session *s = arg;

	if (s->state == A_START)
		enter_start(s);
	else if (s->state == A_HASH)
		hash_step(s);
}

typedef void enter_fn(struct transport_session *);

static enter_fn *const enter[] = {
	[A_RESOLVE] = enter_resolve,
	[A_CONNECT] = enter_connect,
	[A_READY] = enter_ready,
	[A_HASH] = enter_hash,
	[A_SIGN] = enter_sign,
	[A_DEAD] = NULL,	/* START, CREDS, REQUEST, RESPONSE: wait */
};

static void
session_enter(struct transport_session *s, enum api_state st)
{
	log_event(LOG_DEBUG, "-", "upstream.state",
	    "pool=%s conn=%u from=%s to=%s", s->t->name, s->serial,
	    state_names[s->state], state_names[st]);
	s->state = st;
	arm_deadline(s);
	if (enter[st] != NULL)
		enter[st](s);
}

/* ---- the interface (transport.h) ---- */

static struct transport_session *
api_open(struct transport *base, const struct transport_events *ev,
    void *arg, unsigned serial)
{
	struct transport_session *s = calloc(1, sizeof(*s));

	if (s == NULL)
		abort();
	s->t = (struct transport_api *)base;
	s->ev = ev;
	s->arg = arg;
	s->serial = serial;
	s->state = A_START;
	s->conn = upconn_new(&s->t->to, &conn_events, s, serial);
	s->timer = evtimer_new(s->t->to.evbase, timer_cb, s);
	s->next = s->t->sessions;
	s->t->sessions = s;
	event_active(s->timer, EV_TIMEOUT, 0);
	return s;
}

static void
api_send(struct transport_session *s, struct delivery *d)
{
	if (s->state != A_READY || s->d != NULL)
		abort();	/* the pool sends only on ready() */
	s->d = d;
	session_enter(s, A_HASH);
}

static void
api_close(struct transport_session *s)
{
	if (s->state == A_READY)
		session_gone(s);
}

static void
api_free(struct transport_session *s)
{
	if (s->d != NULL) {
		struct delivery *d = s->d;

		if (s->state == A_RESPONSE)
			txn_abandon(s, "shutdown");
		else {
			s->d = NULL;
			txn_clear(s);
			s->ev->done(s->arg, s, d, NULL);
		}
	}
	txn_clear(s);
	unlink_session(s);
	upconn_free(s->conn);
	event_free(s->timer);
	free(s);
}

static const char *
api_peer(const struct transport_session *s)
{
	return upconn_peer(s->conn);
}

static void
api_destroy(struct transport *base)
{
	struct transport_api *t = (struct transport_api *)base;

	if (t == NULL)
		return;
	if (!t->creds_shared)
		creds_free(t->creds);
	upconn_target_clear(&t->to);
	free(t->name);
	free(t->host);
	free(t->authority);
	free(t->region);
	free(t);
}

static const struct transport_ops api_ops = {
	.name = "api",
	.open = api_open,
	.send = api_send,
	.close = api_close,
	.free = api_free,
	.peer = api_peer,
	.destroy = api_destroy,
};

struct transport *
transport_api_new(struct event_base *base, struct evdns_base *dns,
    struct spool *spool, const struct transport_config *c, char *err,
    size_t errlen)
{
	struct transport_api *t = calloc(1, sizeof(*t));
	const struct endpoint *ep = c->endpoint;

	if (t == NULL)
		abort();
	t->name = xstrdup(ep->name);
	t->host = xstrdup(ep->api_host);
	if (upconn_target_init(&t->to, base, dns, t->name, ep->ca_file, err,
	    errlen) == -1) {
		api_destroy(&t->base);
		return NULL;
	}
	/* The pool's provider when it has one (shared with the account's
	 * reads; the key read before privileges were dropped). */
	t->creds_shared = c->creds != NULL;
	if ((t->creds = c->creds) == NULL && (t->creds = creds_new(base, dns,
	    c->conf, ep, err, errlen)) == NULL) {
		api_destroy(&t->base);
		return NULL;
	}
	creds_on_change(t->creds, creds_changed, t);
	t->base.ops = &api_ops;
	snprintf(t->auth_hint, sizeof(t->auth_hint), "%s.auth = \"%s\": the "
	    "IAM key must be allowed ses:SendEmail and ses:SendRawEmail in "
	    "region %s, and the host's clock must be right (SigV4)",
	    ep->name, ep->auth, ep->region);
	t->base.auth_hint = t->auth_hint;
	t->to.host = t->host;
	t->to.port = ep->api_port;
	t->to.tls = 1;
	t->to.tls_label = "api";
	t->to.what = "the SES API";
	t->spool = spool;
	t->authority = xstrdup(ep->api_authority);
	t->region = xstrdup(ep->region);
	t->refreshable = strcmp(ep->auth, "instance-role") == 0;
	t->timeout = c->timeout;
	t->ses = c->ses;
	return &t->base;
}
