/*
 * upconn.h: one connection of a transport to its endpoint, the part
 * every transport shares: the host resolved afresh with evdns, each of
 * its addresses tried in turn, TLS over bufferevent_openssl with tls.c's
 * verification (from the start, or later by upconn_starttls), why a
 * connection failed, in words, and the upstream.* log lines about it.
 *
 * What goes over the connection and the session's states are the
 * transport's: upconn tells it through struct upconn_events, always from
 * the event loop.  The step the transport waits on has a deadline
 * (upconn_deadline), the connection's only timeout.
 */
#ifndef SESRELAY_UPCONN_H
#define SESRELAY_UPCONN_H

#include <stddef.h>

#include <openssl/ssl.h>

struct bufferevent;
struct event_base;
struct evdns_base;

/* Where a transport connects; one for all its sessions. */
struct upconn_target {
	struct event_base	*evbase;
	struct evdns_base	*dns;
	SSL_CTX			*ssl_ctx;
	const char		*pool;		/* the endpoint's name: logs */
	const char		*host;		/* resolved, and verified */
	int			 port;
	int			 tls;		/* TLS from the start */
	const char		*tls_label;	/* upstream.connecting tls= */
	const char		*what;		/* "the upstream": its name in
						 * "no address of ... could
						 * be reached" */
};

/* What a connection tells its transport (arg passed back). */
struct upconn_events {
	void	(*resolved)(void *arg);	/* addresses known: upconn_next() */
	void	(*connected)(void *arg);  /* up (TLS: handshake done) */
	/* Nothing more to try (resolution, every address, a certificate
	 * refused, out of memory): the session fails with why. */
	void	(*fail)(void *arg, const char *why);
	/* Once connected: closed or lost (what: BEV_EVENT_*), why. */
	void	(*lost)(void *arg, short what, const char *why);
	void	(*readable)(void *arg);	/* input arrived */
	void	(*drained)(void *arg);	/* the output was written */
	/* The deadline passed: why says which and how long. */
	void	(*deadline)(void *arg, const char *why);
	void	(*ended)(void *arg);	/* after upconn_end, from the loop */
};

struct upconn;

/*
 * The TLS context of target (ca_file: tls_client_ctx_new), and its
 * evbase, dns and pool; 0, or -1 with err ("<pool>.ca_file: why").
 * The rest of target is the caller's to fill.
 */
int	upconn_target_init(struct upconn_target *, struct event_base *,
	    struct evdns_base *, const char *pool, const char *ca_file,
	    char *err, size_t errlen);
void	upconn_target_clear(struct upconn_target *);

/* A connection of target, not started; serial numbers it (conn=N). */
struct upconn *upconn_new(const struct upconn_target *,
	    const struct upconn_events *, void *arg, unsigned serial);
/* Resolve the host (fresh on every connection): ev->resolved or fail. */
void	upconn_resolve(struct upconn *);
/* Connect to the next address: ev->connected, or fail at the last.
 * Each address gets the whole of the deadline set last. */
void	upconn_next(struct upconn *);
/* The step now waited on must be over within seconds (0: no deadline;
 * step names it in the reason) or ev->deadline; set again for the next
 * step, or for more of the same. */
void	upconn_deadline(struct upconn *, int seconds, const char *step);
/* The address being tried failed (e.g. its deadline): log, next. */
void	upconn_address_failed(struct upconn *, const char *why);
/* On a plain connection: TLS over the same socket, whatever was read
 * before discarded; ev->connected after the handshake, or fail. */
void	upconn_starttls(struct upconn *);
/* The session is over: no more callbacks but ev->ended, from the loop
 * (so every caller up the stack may still look at its session); the
 * socket stays open until upconn_free. */
void	upconn_end(struct upconn *);
void	upconn_free(struct upconn *);

/* The bufferevent to read and write (NULL before connecting). */
struct bufferevent *upconn_bev(const struct upconn *);
/* "192.0.2.1:587", "[2001:db8::1]:587", or "-" before connecting. */
const char *upconn_peer(const struct upconn *);

/* The log lines of a connection, with pool, conn and peer. */
void	upconn_log_ready(const struct upconn *);
void	upconn_log_failed(const struct upconn *, const char *state,
	    const char *why);
void	upconn_log_closed_idle(const struct upconn *, const char *why);

#endif
