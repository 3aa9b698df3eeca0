/*
 * api_get.c: a signed GET to the SES v2 API over HTTPS.
 *
 * The request carries exactly the headers sigv4.c signs (Host,
 * X-Amz-Content-Sha256 of the empty body, X-Amz-Date, and with a
 * session token X-Amz-Security-Token) and Authorization.  evhttp runs
 * on a bufferevent_openssl whose SSL object tls_client_new() made, so a
 * certificate that does not verify for the host ends the request before
 * anything is sent; the credentials are never written anywhere else.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "api_get.h"
#include "creds.h"
#include "endpoint.h"
#include "sigv4.h"
#include "tls.h"

#define API_BODY_MAX	65536
#define EMPTY_SHA256 \
	"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

struct api_get {
	struct evhttp_connection *conn;
	struct event		*done_ev;	/* cb from the loop */
	int			 status;
	char			 error_type[128];
	char			*body;
	size_t			 len;
	api_get_cb		 cb;
	void			*arg;
};

void
api_get_escape(const char *s, char *out, size_t outlen)
{
	size_t n = 0;

	for (; *s && n + 4 < outlen; s++) {
		unsigned char c = (unsigned char)*s;

		if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		    (c >= '0' && c <= '9') || strchr("-._~", c) != NULL)
			out[n++] = (char)c;
		else
			n += (size_t)snprintf(out + n, outlen - n, "%%%02X", c);
	}
	out[n] = '\0';
}

/* Keep status, error type and body of the answer (req NULL: none). */
static void
api_get_keep(struct api_get *g, struct evhttp_request *req)
{
	struct evbuffer *b;
	const char *t;
	size_t n;

	g->status = req != NULL ? evhttp_request_get_response_code(req) : 0;
	if (g->status == 0) {
		snprintf(g->error_type, sizeof(g->error_type), "no answer "
		    "(connection, TLS verification or timeout)");
		return;
	}
	t = evhttp_find_header(evhttp_request_get_input_headers(req),
	    "x-amzn-ErrorType");
	snprintf(g->error_type, sizeof(g->error_type), "%.*s",
	    t ? (int)strcspn(t, ":") : 0, t ? t : "");
	b = evhttp_request_get_input_buffer(req);
	n = evbuffer_get_length(b);
	n = n < API_BODY_MAX ? n : API_BODY_MAX;
	if ((g->body = malloc(n + 1)) == NULL)
		abort();
	g->len = (size_t)evbuffer_remove(b, g->body, n);
	g->body[g->len] = '\0';
}

/* evhttp's callback: keep the answer, call back from a fresh turn. */
static void
api_get_answer(struct evhttp_request *req, void *arg)
{
	struct api_get *g = arg;

	api_get_keep(g, req);
	event_active(g->done_ev, EV_TIMEOUT, 0);
}

static void
api_get_done(evutil_socket_t fd, short what, void *arg)
{
	struct api_get *g = arg;

	(void)fd;
	(void)what;
	g->cb(g->arg, g->status, g->error_type, g->body ? g->body : "",
	    g->len);
	api_get_cancel(g);
}

/* The signed headers and Authorization onto req; 0, or -1. */
static int
api_get_sign(struct evhttp_request *req, const struct endpoint *ep,
    const struct aws_creds *c, const char *path)
{
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);
	struct sigv4_request r = { "GET", ep->api_authority, path, "", NULL,
	    EMPTY_SHA256, ep->region, "ses", time(NULL) };
	char auth[SIGV4_AUTH_LEN], date[17];

	if (sigv4_sign(&r, c, auth, sizeof(auth), date) == -1)
		return -1;
	evhttp_add_header(h, "Host", ep->api_authority);
	evhttp_add_header(h, "X-Amz-Content-Sha256", EMPTY_SHA256);
	evhttp_add_header(h, "X-Amz-Date", date);
	if (c->session_token != NULL)
		evhttp_add_header(h, "X-Amz-Security-Token", c->session_token);
	evhttp_add_header(h, "Authorization", auth);
	return 0;
}

/* The HTTPS connection to ep's API; NULL when it cannot be made. */
static struct evhttp_connection *
api_get_connect(struct event_base *base, struct evdns_base *dns,
    SSL_CTX *ctx, const struct endpoint *ep)
{
	SSL *ssl = tls_client_new(ctx, ep->api_host);
	struct bufferevent *bev;

	if (ssl == NULL)
		return NULL;
	if ((bev = bufferevent_openssl_socket_new(base, -1, ssl,
	    BUFFEREVENT_SSL_CONNECTING, BEV_OPT_CLOSE_ON_FREE |
	    BEV_OPT_DEFER_CALLBACKS)) == NULL) {
		SSL_free(ssl);
		return NULL;
	}
	bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
	return evhttp_connection_base_bufferevent_new(base, dns, bev,
	    ep->api_host, (unsigned short)ep->api_port);
}

struct api_get *
api_get_start(struct event_base *base, struct evdns_base *dns, SSL_CTX *ctx,
    const struct endpoint *ep, const struct aws_creds *c, const char *path,
    int timeout, api_get_cb cb, void *arg)
{
	struct api_get *g = calloc(1, sizeof(*g));
	struct evhttp_request *req;

	if (g == NULL)
		abort();
	g->cb = cb;
	g->arg = arg;
	if ((g->done_ev = event_new(base, -1, 0, api_get_done, g)) == NULL ||
	    (g->conn = api_get_connect(base, dns, ctx, ep)) == NULL)
		goto fail;
	evhttp_connection_set_timeout(g->conn, timeout);
	evhttp_connection_set_retries(g->conn, 0);
	if ((req = evhttp_request_new(api_get_answer, g)) == NULL)
		goto fail;
	if (api_get_sign(req, ep, c, path) == -1) {
		evhttp_request_free(req);
		goto fail;
	}
	if (evhttp_make_request(g->conn, req, EVHTTP_REQ_GET, path) == -1)
		goto fail;	/* evhttp freed req */
	return g;
fail:
	api_get_cancel(g);
	return NULL;
}

void
api_get_cancel(struct api_get *g)
{
	if (g == NULL)
		return;
	if (g->conn != NULL)
		evhttp_connection_free(g->conn);
	if (g->done_ev != NULL)
		event_free(g->done_ev);
	free(g->body);
	free(g);
}

/* ---- blocking, for sesrelayctl ---- */

struct sync_answer {
	struct event_base	*base;
	int			 done, status;
	char			*error_type, *body;
	size_t			 etlen, bodylen;
};

static void
sync_cb(void *arg, int status, const char *error_type, const char *body,
    size_t len)
{
	struct sync_answer *a = arg;

	(void)len;
	a->done = 1;
	a->status = status;
	snprintf(a->error_type, a->etlen, "%s", error_type);
	snprintf(a->body, a->bodylen, "%s", body);
	event_base_loopbreak(a->base);
}

int
api_get_sync(SSL_CTX *ctx, const struct endpoint *ep,
    const struct aws_creds *c, const char *path, int timeout,
    char *error_type, size_t etlen, char *body, size_t bodylen)
{
	struct sync_answer a = { event_base_new(), 0, 0, error_type, body,
	    etlen, bodylen };
	struct api_get *g;

	if (a.base == NULL)
		abort();
	snprintf(error_type, etlen, "cannot start the request");
	*body = '\0';
	if ((g = api_get_start(a.base, NULL, ctx, ep, c, path, timeout,
	    sync_cb, &a)) != NULL)
		event_base_dispatch(a.base);
	if (!a.done)
		api_get_cancel(g);
	event_base_free(a.base);
	return a.status;
}
