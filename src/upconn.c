/*
 * upconn.c: a transport's connection to its endpoint (upconn.h), the
 * one path from a host name to a verified connection for the SMTP and
 * the API transports alike.
 *
 * The host is resolved on every connection (SES's addresses rotate
 * behind its load balancers); its addresses are tried in turn until one
 * connects, except after a certificate was refused (every address shows
 * the same one).  TLS is tls.c's policy: the host name, never the
 * address, verified.  The bufferevent's callbacks are upconn's: it
 * handles the connecting itself and hands the transport what it reads,
 * what it wrote, and how the connection ended, with the reason in words.
 * A connection has one timer: the deadline of the step the transport
 * waits on (each address tried gets the whole of it), and one event that
 * tells the transport, from the loop, that its session ended.
 */
#include "config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/util.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "log.h"
#include "netaddr.h"
#include "stats.h"
#include "tls.h"
#include "upconn.h"

struct upconn {
	const struct upconn_target *to;
	const struct upconn_events *ev;
	void			*arg;		/* the transport's, for ev */
	unsigned		 serial;
	struct bufferevent	*bev;
	struct evutil_addrinfo	*addrs, *cur;
	struct evdns_getaddrinfo_request *dnsreq;
	struct event		*deadline;
	int			 seconds;	/* of the deadline; 0: none */
	const char		*step;		/* ... named in the reason */
	struct event		*end;		/* ev->ended from the loop */
	int			 resolving;
	int			 connected;	/* ev->connected was called */
	int			 handshaking;	/* TLS not yet up */
	char			 peer[64];
};

int
upconn_target_init(struct upconn_target *to, struct event_base *evbase,
    struct evdns_base *dns, const char *pool, const char *ca_file,
    char *err, size_t errlen)
{
	char e[256];

	memset(to, 0, sizeof(*to));
	if ((to->ssl_ctx = tls_client_ctx_new(ca_file, e, sizeof(e))) ==
	    NULL) {
		snprintf(err, errlen, "%s.ca_file: %s", pool, e);
		return -1;
	}
	to->evbase = evbase;
	to->dns = dns;
	to->pool = pool;
	return 0;
}

void
upconn_target_clear(struct upconn_target *to)
{
	SSL_CTX_free(to->ssl_ctx);
	to->ssl_ctx = NULL;
}

static void
deadline_cb(evutil_socket_t fd, short what, void *arg)
{
	struct upconn *c = arg;
	char why[128];

	snprintf(why, sizeof(why), "deadline: nothing complete within %ds "
	    "in state %s", c->seconds, c->step);
	c->ev->deadline(c->arg, why);
}

static void
end_cb(evutil_socket_t fd, short what, void *arg)
{
	struct upconn *c = arg;

	c->ev->ended(c->arg);
}

struct upconn *
upconn_new(const struct upconn_target *to, const struct upconn_events *ev,
    void *arg, unsigned serial)
{
	struct upconn *c = calloc(1, sizeof(*c));

	if (c == NULL)
		abort();
	c->to = to;
	c->ev = ev;
	c->arg = arg;
	c->serial = serial;
	c->deadline = evtimer_new(to->evbase, deadline_cb, c);
	c->end = evtimer_new(to->evbase, end_cb, c);
	if (c->deadline == NULL || c->end == NULL)
		abort();
	return c;
}

void
upconn_deadline(struct upconn *c, int seconds, const char *step)
{
	struct timeval tv = { seconds, 0 };

	c->seconds = seconds;
	c->step = step;
	if (seconds > 0)
		evtimer_add(c->deadline, &tv);
	else
		evtimer_del(c->deadline);
}

/* ---- resolving ---- */

static void
dns_cb(int result, struct evutil_addrinfo *res, void *arg)
{
	struct upconn *c = arg;
	char why[512];

	c->dnsreq = NULL;
	c->resolving = 0;
	if (result == EVUTIL_EAI_CANCEL)
		return;
	if (result != 0) {
		snprintf(why, sizeof(why), "cannot resolve %s: %s",
		    c->to->host, evutil_gai_strerror(result));
		c->ev->fail(c->arg, why);
		return;
	}
	c->addrs = res;
	c->cur = NULL;
	c->ev->resolved(c->arg);
}

void
upconn_resolve(struct upconn *c)
{
	struct evutil_addrinfo hints;
	struct evdns_getaddrinfo_request *req;
	char port[8];

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_protocol = IPPROTO_TCP;
	snprintf(port, sizeof(port), "%d", c->to->port);
	c->resolving = 1;
	req = evdns_getaddrinfo(c->to->dns, c->to->host, port, &hints, dns_cb,
	    c);
	/* Not when dns_cb was called already (an answer at once). */
	if (c->resolving)
		c->dnsreq = req;
}

/* ---- why a connection ended ---- */

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

/* The socket's error, or lost when there is none. */
static void
socket_why(char *buf, size_t len, const char *lost)
{
	snprintf(buf, len, "%s", EVUTIL_SOCKET_ERROR() != 0 ?
	    evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()) : lost);
}

/* Why a TLS connection failed: verification, protocol, or socket. */
static void
tls_why(const struct upconn *c, char *buf, size_t len)
{
	SSL *ssl = bufferevent_openssl_get_ssl(c->bev);
	unsigned long e;
	long vr;

	if (ssl != NULL && (vr = SSL_get_verify_result(ssl)) != X509_V_OK) {
		snprintf(buf, len, "certificate verification failed for %s: %s",
		    c->to->host, X509_verify_cert_error_string(vr));
		return;
	}
	if ((e = bufferevent_get_openssl_error(c->bev)) != 0) {
		snprintf(buf, len, "TLS: %s", ERR_reason_error_string(e));
		return;
	}
	socket_why(buf, len, c->handshaking ? "connection lost during TLS" :
	    "connection lost");
}

/* Why the connection ended (what: BEV_EVENT_*), in words. */
static void
explain(const struct upconn *c, short what, char *buf, size_t len)
{
	if (what & BEV_EVENT_EOF)
		snprintf(buf, len, "connection closed by the upstream");
	else if (c->to->tls || c->handshaking)
		tls_why(c, buf, len);
	else
		socket_why(buf, len, "connection lost");
}

/* ---- connecting ---- */

static void
read_cb(struct bufferevent *bev, void *arg)
{
	struct upconn *c = arg;

	c->ev->readable(c->arg);
}

static void
write_cb(struct bufferevent *bev, void *arg)
{
	struct upconn *c = arg;

	c->ev->drained(c->arg);
}

/* Up: TCP (plain), or the TLS handshake done. */
static void
on_connected(struct upconn *c)
{
	if (!c->connected) {
		c->connected = 1;
		c->handshaking = 0;
		stats.connections++;
		c->ev->connected(c->arg);
	} else if (c->handshaking) {
		c->handshaking = 0;
		c->ev->connected(c->arg);
	}
}

/* The address tried failed: the next, unless none would do better. */
static void
address_failed(struct upconn *c, const char *why, int retry)
{
	log_event(LOG_WARNING, "-", "upstream.connect_failed",
	    "pool=%s conn=%u peer=%s reason=%s", c->to->pool, c->serial,
	    log_q(c->peer), log_q(why));
	if (!retry)
		c->ev->fail(c->arg, why);
	else
		upconn_next(c);
}

void
upconn_address_failed(struct upconn *c, const char *why)
{
	address_failed(c, why, 1);
}

static void
event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct upconn *c = arg;
	char why[512];

	if (what & BEV_EVENT_CONNECTED) {
		on_connected(c);
		return;
	}
	explain(c, what, why, sizeof(why));
	if (!c->connected) {
		/* Another address will show the same certificate. */
		address_failed(c, why, strstr(why, "certificate") == NULL);
		return;
	}
	c->ev->lost(c->arg, what, why);
}

/* Callbacks and reading on for a new bufferevent. */
static void
attach(struct upconn *c, struct bufferevent *bev)
{
	c->bev = bev;
	bufferevent_setcb(bev, read_cb, write_cb, event_cb, c);
	bufferevent_enable(bev, EV_READ | EV_WRITE);
}

/* A TLS bufferevent on fd (-1: not connected yet); NULL after fail. */
static struct bufferevent *
tls_bev(struct upconn *c, evutil_socket_t fd, const char *nomem)
{
	struct bufferevent *bev;
	SSL *ssl;

	if ((ssl = tls_client_new(c->to->ssl_ctx, c->to->host)) == NULL) {
		c->ev->fail(c->arg, "cannot create a TLS session");
		return NULL;
	}
	bev = bufferevent_openssl_socket_new(c->to->evbase, fd, ssl,
	    BUFFEREVENT_SSL_CONNECTING, BEV_OPT_CLOSE_ON_FREE |
	    BEV_OPT_DEFER_CALLBACKS);
	if (bev == NULL) {
		SSL_free(ssl);
		c->ev->fail(c->arg, nomem);
		return NULL;
	}
	bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
	c->handshaking = 1;
	return bev;
}

/* The bufferevent for the next address; -1 after fail. */
static int
new_bev(struct upconn *c)
{
	struct bufferevent *bev;

	if (c->to->tls)
		bev = tls_bev(c, -1, "cannot create a connection");
	else if ((bev = bufferevent_socket_new(c->to->evbase, -1,
	    BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS)) == NULL)
		c->ev->fail(c->arg, "cannot create a connection");
	if (bev == NULL)
		return -1;
	attach(c, bev);
	return 0;
}

void
upconn_next(struct upconn *c)
{
	char why[128];

	if (c->bev != NULL) {
		bufferevent_free(c->bev);
		c->bev = NULL;
	}
	c->cur = c->cur == NULL ? c->addrs : c->cur->ai_next;
	if (c->cur == NULL) {
		snprintf(why, sizeof(why), "no address of %s could be reached",
		    c->to->what);
		c->ev->fail(c->arg, why);
		return;
	}
	format_peer(c->cur->ai_addr, c->peer, sizeof(c->peer));
	if (new_bev(c) == -1)
		return;
	if (c->seconds > 0)	/* each address gets the whole time */
		upconn_deadline(c, c->seconds, c->step);
	log_event(LOG_DEBUG, "-", "upstream.connecting",
	    "pool=%s conn=%u peer=%s tls=%s", c->to->pool, c->serial,
	    log_q(c->peer), c->to->tls_label);
	if (bufferevent_socket_connect(c->bev, c->cur->ai_addr,
	    (int)c->cur->ai_addrlen) == -1)
		upconn_next(c);
}

/*
 * The plain bufferevent is replaced by a TLS one on the same socket (not
 * stacked as a filter, so the kernel's socket buffer is the only
 * backpressure and output never piles up below the TLS layer).  What the
 * server sent before the handshake goes with the old one, never read as
 * a reply (STARTTLS command injection).
 */
void
upconn_starttls(struct upconn *c)
{
	struct bufferevent *tls;

	if ((tls = tls_bev(c, bufferevent_getfd(c->bev),
	    "cannot start TLS")) == NULL)
		return;
	/* The socket now belongs to the TLS bufferevent. */
	bufferevent_setfd(c->bev, -1);
	bufferevent_free(c->bev);
	attach(c, tls);
}

/* ---- the rest ---- */

void
upconn_end(struct upconn *c)
{
	if (c->bev != NULL) {
		bufferevent_disable(c->bev, EV_READ | EV_WRITE);
		bufferevent_setcb(c->bev, NULL, NULL, NULL, NULL);
	}
	evtimer_del(c->deadline);
	event_active(c->end, EV_TIMEOUT, 0);
}

void
upconn_free(struct upconn *c)
{
	if (c == NULL)
		return;
	if (c->dnsreq != NULL)
		evdns_getaddrinfo_cancel(c->dnsreq);
	if (c->addrs != NULL)
		evutil_freeaddrinfo(c->addrs);
	if (c->bev != NULL)
		bufferevent_free(c->bev);
	event_free(c->deadline);
	event_free(c->end);
	free(c);
}

struct bufferevent *
upconn_bev(const struct upconn *c)
{
	return c->bev;
}

const char *
upconn_peer(const struct upconn *c)
{
	return c->peer[0] ? c->peer : "-";
}

void
upconn_log_ready(const struct upconn *c)
{
	log_event(LOG_INFO, "-", "upstream.ready", "pool=%s conn=%u peer=%s",
	    c->to->pool, c->serial, log_q(c->peer));
}

void
upconn_log_failed(const struct upconn *c, const char *state,
    const char *why)
{
	log_event(LOG_WARNING, "-", "upstream.failed",
	    "pool=%s conn=%u state=%s peer=%s reason=%s", c->to->pool,
	    c->serial, state, log_q(upconn_peer(c)), log_q(why));
}

void
upconn_log_closed_idle(const struct upconn *c, const char *why)
{
	log_event(LOG_INFO, "-", "upstream.closed_idle",
	    "pool=%s conn=%u reason=%s", c->to->pool, c->serial, log_q(why));
}
