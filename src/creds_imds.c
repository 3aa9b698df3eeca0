/*
 * creds_imds.c: the instance role through IMDSv2, on the event loop.
 *
 * One fetch is three requests on one keep-alive HTTP connection:
 *   TOKEN  PUT /latest/api/token (X-aws-ec2-metadata-token-ttl-seconds)
 *          -> a session token, kept until shortly before its TTL ends;
 *   ROLE   GET /latest/meta-data/iam/security-credentials/ -> role name;
 *   CREDS  GET .../<role> -> {"AccessKeyId", "SecretAccessKey", "Token",
 *          "Expiration": "2026-12-02T08:00:00Z", ...}.
 * Every GET carries X-aws-ec2-metadata-token (IMDSv1 is never used:
 * hardened instances refuse it).  A 401 means the session token is no
 * longer good: a new one is fetched at once, once.
 *
 * States (imds_enter_state is the only place that changes them):
 * IDLE (a timer runs: the next refresh, or a retry) -> TOKEN -> ROLE ->
 * CREDS -> IDLE.  The next refresh is due 15 minutes before the key
 * expires (half its life when shorter); a failure retries after 1, 2, 4
 * ... 30 s, logged once until IMDS answers again, with what to check.
 * The key in use stays in use meanwhile, and mail waits in the spool
 * while there is none: nothing here ever blocks.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "conf.h"
#include "creds.h"
#include "creds_imds.h"
#include "json_scan.h"
#include "log.h"

#define IMDS_TOKEN_TTL		21600	/* s: IMDS's longest */
#define IMDS_TIMEOUT		3	/* s a request: IMDS answers in ms */
#define IMDS_BACKOFF_MAX	30
#define IMDS_ROLE_PATH		"/latest/meta-data/iam/security-credentials/"
#define IMDS_HINT		"check that the instance has an IAM role " \
	"(an instance profile), that the metadata service is enabled with " \
	"tokens (IMDSv2) and, in a container, that its hop limit is 2 or " \
	"more, and that nothing blocks the address; mail stays queued"

enum imds_state { IMDS_IDLE, IMDS_TOKEN, IMDS_ROLE, IMDS_CREDS };

struct creds_imds {
	struct event_base	*base;
	struct evdns_base	*dns;
	char			 url[256];
	char			 host[256];
	int			 port;
	struct evhttp_connection *conn;
	enum imds_state		 state;
	struct event		*timer;		/* IDLE: refresh or retry */
	char			 token[1024];	/* "" when none */
	time_t			 token_until;
	char			 role[256];	/* "" when not known yet */
	int			 failures;	/* in a row */
	int			 retried_401;	/* a new token was tried */
	int			 retried_conn;	/* sent again on a new connection */
	int			 again;		/* refresh asked while fetching */
	time_t			 last_fetch;
	time_t			 expiration;	/* of the key last got */
	void			(*got)(void *, const struct aws_creds *);
	void			*arg;
};

static void imds_enter_state(struct creds_imds *, enum imds_state);

long
creds_imds_refresh_delay(time_t now, time_t expiration)
{
	long left = (long)(expiration - now);
	long d = left > 1800 ? left - 900 : left / 2;

	return d < 1 ? 1 : d;
}

int
creds_imds_backoff(int failures)
{
	int d = 1;

	while (--failures > 0 && d < IMDS_BACKOFF_MAX)
		d *= 2;
	return d < IMDS_BACKOFF_MAX ? d : IMDS_BACKOFF_MAX;
}

/* "2026-12-02T08:00:00Z" as a time; -1 when not that form. */
static time_t
parse_iso8601(const char *s)
{
	struct tm tm;
	const char *e;

	memset(&tm, 0, sizeof(tm));
	if ((e = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm)) == NULL)
		return -1;
	if (*e == '.')
		e += 1 + strspn(e + 1, "0123456789");
	if (strcmp(e, "Z") != 0 && strcmp(e, "+00:00") != 0)
		return -1;
	return timegm(&tm);
}

int
creds_imds_parse(const char *json, size_t len, struct aws_creds *out,
    char *err, size_t errlen)
{
	char code[64], id[256], secret[256], token[4096], exp[64];

	memset(out, 0, sizeof(*out));
	if (json_scan_string(json, len, "Code", code, sizeof(code)) == 0 &&
	    strcmp(code, "Success") != 0) {
		conf_errf(err, errlen, "IMDS answered Code=%.32s", code);
		return -1;
	}
	if (json_scan_string(json, len, "AccessKeyId", id, sizeof(id)) == -1 ||
	    json_scan_string(json, len, "SecretAccessKey", secret,
	    sizeof(secret)) == -1 || json_scan_string(json, len, "Token", token,
	    sizeof(token)) == -1 || json_scan_string(json, len, "Expiration",
	    exp, sizeof(exp)) == -1 || *id == '\0' || *secret == '\0') {
		conf_errf(err, errlen, "IMDS's answer is not credentials "
		    "(AccessKeyId, SecretAccessKey, Token, Expiration)");
		return -1;
	}
	if ((out->expiration = parse_iso8601(exp)) == -1) {
		conf_errf(err, errlen, "IMDS's Expiration is not a time");
		out->expiration = 0;
		return -1;
	}
	out->access_key_id = strdup(id);
	out->secret_access_key = strdup(secret);
	out->session_token = strdup(token);
	explicit_bzero(secret, sizeof(secret));
	explicit_bzero(token, sizeof(token));
	if (!out->access_key_id || !out->secret_access_key ||
	    !out->session_token)
		abort();
	return 0;
}

/* A fetch failed: log it (once until IMDS answers again), retry later. */
static void
imds_failed(struct creds_imds *m, const char *why)
{
	m->failures++;
	log_event(m->failures == 1 ? LOG_WARNING : LOG_DEBUG, "-",
	    "creds.imds_failed", "url=%s failures=%d retry=%d reason=%s "
	    "msg=%s", log_q(m->url), m->failures,
	    creds_imds_backoff(m->failures), log_q(why),
	    log_q("no instance-role credentials from the metadata service: "
	    IMDS_HINT));
	imds_enter_state(m, IMDS_IDLE);
}

/* Credentials got: hand them over, plan the next refresh. */
static void
imds_succeeded(struct creds_imds *m, struct aws_creds *a)
{
	if (m->failures > 0)
		log_event(LOG_NOTICE, "-", "creds.imds_ok",
		    "url=%s failures=%d", log_q(m->url), m->failures);
	log_event(LOG_DEBUG, "-", "creds.refreshed", "role=%s expires_in=%lld",
	    log_q(m->role), (long long)(a->expiration - time(NULL)));
	m->failures = 0;
	m->retried_401 = 0;
	m->retried_conn = 0;
	m->expiration = a->expiration;
	m->last_fetch = time(NULL);
	m->got(m->arg, a);
	aws_creds_clear(a);
	imds_enter_state(m, IMDS_IDLE);
}

/* The body of an answer, NUL-terminated, in buf; its length or -1. */
static int
imds_body(struct evhttp_request *req, char *buf, size_t len)
{
	struct evbuffer *b = evhttp_request_get_input_buffer(req);
	size_t n = evbuffer_get_length(b);

	if (n >= len)
		return -1;
	evbuffer_remove(b, buf, n);
	buf[n] = '\0';
	return (int)n;
}

/* A 401 on a token thought good: fetch a new token, once. */
static int
imds_token_refused(struct creds_imds *m, int status)
{
	if (status != 401 || m->retried_401)
		return 0;
	m->retried_401 = 1;
	m->token[0] = '\0';
	imds_enter_state(m, IMDS_TOKEN);
	return 1;
}

/*
 * No answer on a connection that worked before: it may have been
 * closed while idle (IMDS restarted, or dropped it), so the request goes
 * once more on a new one before this counts as a failure.
 */
static int
imds_stale_connection(struct creds_imds *m)
{
	if (m->retried_conn || m->last_fetch == 0)
		return 0;
	m->retried_conn = 1;
	imds_enter_state(m, m->state);
	return 1;
}

/* The answer to whichever request the state sent. */
static void
imds_answer(struct evhttp_request *req, void *arg)
{
	struct creds_imds *m = arg;
	char body[8192], why[160];
	struct aws_creds a;
	int status = req != NULL ? evhttp_request_get_response_code(req) : 0;
	int n = req != NULL ? imds_body(req, body, sizeof(body)) : -1;

	if (status == 0 && imds_stale_connection(m))
		return;
	if (status == 0) {
		imds_failed(m, "no answer (connection refused, lost or timed out)");
		return;
	}
	if (imds_token_refused(m, status))
		return;
	if (status != 200 || n <= 0) {
		snprintf(why, sizeof(why), "HTTP %d%s on %s", status,
		    status == 404 && m->state == IMDS_ROLE ?
		    " (no IAM role attached)" : n < 0 ? " (answer too long)" :
		    "", m->state == IMDS_TOKEN ? "the token" : m->state ==
		    IMDS_ROLE ? "the role" : "the credentials");
		if (status == 404 && m->state == IMDS_CREDS)
			m->role[0] = '\0';	/* the role was changed */
		imds_failed(m, why);
		return;
	}
	switch (m->state) {
	case IMDS_TOKEN:
		snprintf(m->token, sizeof(m->token), "%.*s",
		    (int)strcspn(body, "\r\n"), body);
		m->token_until = time(NULL) + IMDS_TOKEN_TTL - 60;
		imds_enter_state(m, m->role[0] ? IMDS_CREDS : IMDS_ROLE);
		break;
	case IMDS_ROLE:
		snprintf(m->role, sizeof(m->role), "%.*s",
		    (int)strcspn(body, "\r\n/"), body);
		imds_enter_state(m, IMDS_CREDS);
		break;
	case IMDS_CREDS:
		if (creds_imds_parse(body, (size_t)n, &a, why, sizeof(why)) == -1)
			imds_failed(m, why);
		else
			imds_succeeded(m, &a);
		explicit_bzero(body, sizeof(body));
		break;
	case IMDS_IDLE:
		break;
	}
}

/* Send the request of the current state; 0, or -1. */
static int
imds_send(struct creds_imds *m)
{
	struct evhttp_request *req = evhttp_request_new(imds_answer, m);
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);
	char path[sizeof(m->role) + 64], ttl[16];

	evhttp_add_header(h, "Host", m->host);
	if (m->state == IMDS_TOKEN) {
		snprintf(ttl, sizeof(ttl), "%d", IMDS_TOKEN_TTL);
		evhttp_add_header(h, "X-aws-ec2-metadata-token-ttl-seconds", ttl);
		return evhttp_make_request(m->conn, req, EVHTTP_REQ_PUT,
		    "/latest/api/token");
	}
	evhttp_add_header(h, "X-aws-ec2-metadata-token", m->token);
	snprintf(path, sizeof(path), "%s%s", IMDS_ROLE_PATH,
	    m->state == IMDS_CREDS ? m->role : "");
	return evhttp_make_request(m->conn, req, EVHTTP_REQ_GET, path);
}

/* When the IDLE timer should fire next. */
static long
imds_idle_delay(const struct creds_imds *m)
{
	time_t now = time(NULL);

	if (m->failures > 0)
		return creds_imds_backoff(m->failures);
	if (m->again)
		return m->last_fetch == now ? 1 : 0;
	return m->expiration ? creds_imds_refresh_delay(now, m->expiration) :
	    0;
}

static void
imds_enter_state(struct creds_imds *m, enum imds_state s)
{
	struct timeval tv = { 0, 0 };

	m->state = s;
	if (s == IMDS_IDLE) {
		tv.tv_sec = imds_idle_delay(m);
		m->again = 0;
		evtimer_add(m->timer, &tv);
		return;
	}
	if (imds_send(m) == -1)
		imds_failed(m, "cannot send the request");
}

/* IDLE's timer: a refresh (or a retry) is due. */
static void
imds_start(evutil_socket_t fd, short what, void *arg)
{
	struct creds_imds *m = arg;

	(void)fd;
	(void)what;
	if (m->token[0] != '\0' && time(NULL) >= m->token_until)
		m->token[0] = '\0';
	imds_enter_state(m, m->token[0] == '\0' ? IMDS_TOKEN : m->role[0] ?
	    IMDS_CREDS : IMDS_ROLE);
}

/* The URL into host and port; 0, or -1. */
static int
imds_parse_url(struct creds_imds *m, const char *url)
{
	struct evhttp_uri *u = evhttp_uri_parse(url);
	int rc = -1;

	if (u != NULL && evhttp_uri_get_host(u) != NULL &&
	    strcmp(evhttp_uri_get_scheme(u) ? evhttp_uri_get_scheme(u) : "",
	    "http") == 0) {
		snprintf(m->host, sizeof(m->host), "%s", evhttp_uri_get_host(u));
		m->port = evhttp_uri_get_port(u) > 0 ? evhttp_uri_get_port(u) : 80;
		rc = 0;
	}
	if (u != NULL)
		evhttp_uri_free(u);
	return rc;
}

struct creds_imds *
creds_imds_new(struct event_base *base, struct evdns_base *dns,
    const char *url, void (*got)(void *, const struct aws_creds *),
    void *arg, char *err, size_t errlen)
{
	struct creds_imds *m = calloc(1, sizeof(*m));
	struct timeval now = { 0, 0 };

	if (m == NULL)
		abort();
	if (base == NULL || imds_parse_url(m, url) == -1) {
		conf_errf(err, errlen, "\"%s\": not an http:// URL for the "
		    "instance metadata service", url);
		free(m);
		return NULL;
	}
	snprintf(m->url, sizeof(m->url), "%s", url);
	m->base = base;
	m->dns = dns;
	m->got = got;
	m->arg = arg;
	if ((m->conn = evhttp_connection_base_new(base, dns, m->host,
	    (unsigned short)m->port)) == NULL ||
	    (m->timer = evtimer_new(base, imds_start, m)) == NULL)
		abort();
	evhttp_connection_set_timeout(m->conn, IMDS_TIMEOUT);
	evhttp_connection_set_retries(m->conn, 0);
	m->state = IMDS_IDLE;
	evtimer_add(m->timer, &now);	/* the first fetch, from the loop */
	return m;
}

void
creds_imds_refresh(struct creds_imds *m)
{
	if (m->failures > 0)
		return;		/* a retry is on its way */
	m->again = 1;		/* after a fetch out, one more */
	if (m->state != IMDS_IDLE)
		return;
	evtimer_del(m->timer);
	imds_enter_state(m, IMDS_IDLE);
}

void
creds_imds_free(struct creds_imds *m)
{
	if (m == NULL)
		return;
	if (m->conn != NULL)
		evhttp_connection_free(m->conn);	/* drops a request out */
	if (m->timer != NULL)
		event_free(m->timer);
	explicit_bzero(m->token, sizeof(m->token));
	free(m);
}
