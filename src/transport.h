/*
 * transport.h: how the upstream pool talks to SES, whatever the wire.
 *
 * A transport opens sessions to one endpoint (a connection, secured and
 * authenticated), sends one transaction at a time on each (a spooled
 * message and at most SCHEDULER_MAX_RCPT of its recipients: struct
 * delivery, the body read from the spool by id), and closes them.
 *
 * It sets every recipient's outcome in the delivery, in the scheduler's
 * terms (delivered, temporary, permanent, offered again, the pool's
 * business; outcome_unknown when the message may have arrived), and
 * reports what SES said as a class of the shared table (ses_reply.h).
 * The pool acts on classes only: sizing, backoff, the token bucket, the
 * quota pause, recycling, health checks and failover live above this
 * interface, once, for every transport.  transport_smtp.c (the SMTP
 * session state machine) is one implementation.
 */
#ifndef SESRELAY_TRANSPORT_H
#define SESRELAY_TRANSPORT_H

#include <stddef.h>

struct creds;
struct delivery;
struct endpoint;
struct endpoint_credentials;
struct event_base;
struct evdns_base;
struct conf;
struct ses_class;
struct ses_headers;
struct spool;
struct transport_session;

/*
 * What a session tells its pool.  Every call comes from the event loop,
 * never from inside a call into the transport (but done() from free()).
 * The pool may call send() or close() from inside ready().
 */
struct transport_events {
	/* Open and authenticated, or a transaction over and the session
	 * still usable: it may be sent one transaction. */
	void	(*ready)(void *arg, struct transport_session *);
	/*
	 * A transaction ended (ready or gone follows): every recipient of d
	 * has its outcome; k is the class of what ended it (SES_ACT_NETWORK:
	 * the connection was lost; SES_ACT_OK: SES took the message).  NULL
	 * k: nothing was sent (the session is being freed): give d back as
	 * it was.
	 */
	void	(*done)(void *arg, struct transport_session *,
		    struct delivery *d, const struct ses_class *k);
	/*
	 * SES said something about the whole pool (rate, daily quota,
	 * connection limit, credentials: SES_SCOPE_POOL, SES_ACT_AUTH);
	 * reply is its text, for the log.
	 */
	void	(*pool)(void *arg, struct transport_session *,
		    const struct ses_class *k, const char *reply);
	/*
	 * The session is over (refused, lost, closed): after a transaction
	 * out was given back through done().  The pool frees it; was_ready:
	 * it had become ready.
	 */
	void	(*gone)(void *arg, struct transport_session *, int was_ready);
};

struct transport;

struct transport_ops {
	const char	*name;		/* "smtp": logs */
	/* Start a session; it reports through ev (arg passed back).
	 * serial numbers it in logs (conn=N). */
	struct transport_session *(*open)(struct transport *,
		    const struct transport_events *ev, void *arg,
		    unsigned serial);
	/* Send d on a ready session; ends with ev->done. */
	void	(*send)(struct transport_session *, struct delivery *d);
	/* End a ready session between transactions; ends with ev->gone. */
	void	(*close)(struct transport_session *);
	/* Free at once; a transaction out is given back through ev->done
	 * first (after the message was handed over: outcome unknown). */
	void	(*free)(struct transport_session *);
	/* Where the session is connected ("192.0.2.1:587"), for logs. */
	const char *(*peer)(const struct transport_session *);
	void	(*destroy)(struct transport *);
};

/* Every transport starts with this. */
struct transport {
	const struct transport_ops *ops;
	/* What to check when SES refuses the credentials, for the log. */
	const char	*auth_hint;
};

struct transport_config {
	const struct endpoint		*endpoint;
	const struct endpoint_credentials *cred;
	const char			*hostname;	/* this host's name */
	int				 timeout;	/* seconds a step */
	const struct ses_headers	*ses;		/* not owned */
	const struct conf		*conf;		/* the API's credentials
							 * (creds_new); only
							 * while made */
	struct creds			*creds;		/* the pool's provider
							 * for the API, not
							 * owned; NULL: its own */
};

/*
 * The SMTP transport (transport_smtp.c): NULL with err when it cannot
 * be set up (e.g. "<endpoint>.ca_file: why").  The strings of c are
 * copied.
 */
struct transport *transport_smtp_new(struct event_base *,
    struct evdns_base *, struct spool *, const struct transport_config *c,
    char *err, size_t errlen);
/*
 * The SES v2 API transport (transport_api.c): SendEmail over HTTPS to
 * c->endpoint's api_host, signed with the credentials its auth names
 * (creds_new, owned by the transport).  NULL with err as above.
 */
struct transport *transport_api_new(struct event_base *,
    struct evdns_base *, struct spool *, const struct transport_config *c,
    char *err, size_t errlen);

#endif
