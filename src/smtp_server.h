/*
 * smtp_server.h: the inbound ESMTP server (TCP listeners, Unix socket).
 *
 * A message is answered 250 only after the spool reported it durable;
 * then accepted() is given its envelope, to own.
 */
#ifndef SESRELAY_SMTP_SERVER_H
#define SESRELAY_SMTP_SERVER_H

#include <stddef.h>

#include "netaddr.h"

struct cleanup;
struct spool_envelope;
struct event_base;
struct spool;
struct smtp_server;

/*
 * Sessions on the Unix socket beyond smtp.max_clients: TCP clients that
 * hold every slot cannot keep sesrelay-sendmail (cron, local programs)
 * out.  Past these too, sendmail gets 421 and uses the maildrop.
 */
#define SMTP_UNIX_RESERVE	8

struct smtp_server_config {
	const char		*hostname;
	long long		 max_message_size;
	long long		 max_recipients;
	long long		 max_line_length;
	long long		 timeout;	/* waiting for a command */
	long long		 greeting_timeout; /* waiting for the first command */
	long long		 data_timeout;	/* waiting for body data */
	long long		 max_clients;
	long long		 max_commands;	/* per session */
	long long		 max_header_size;
	long long		 max_header_line_length;
	int			 bare_lf_reject;	/* 521 and close on a bare LF */
	int			 strict_8bitmime; /* 8-bit data needs BODY=8BITMIME */
	long long		 min_free;	/* spool_min_free */
	long long		 min_free_inodes;
	const struct cleanup	*cleanup;	/* rewriting on accept */
	const struct netaddr_net *allow;	/* besides loopback */
	size_t			 nallow;
	/* Users whose MAIL FROM on the Unix socket is taken as is
	 * (sendmail.trusted_users); others send as themselves. */
	char *const		*trusted;
	size_t			 ntrusted;
};

struct smtp_server *smtp_server_new(struct event_base *, struct spool *,
    const struct smtp_server_config *,
    void (*accepted)(void *arg, struct spool_envelope *env), void *arg);
/* Listen on "ADDR:PORT" / "[V6]:PORT"; 0, or -1 with err. */
int smtp_server_listen_tcp(struct smtp_server *, const char *hostport,
    char *err, size_t errlen);
/*
 * The same in two steps, so that binding (as root, or by systemd) can
 * come before the rest: bind and listen, returning the socket or -1
 * with err; then serve it.  A Unix socket served with _unix_fd is
 * removed when the server stops listening; one from systemd is not.
 */
int smtp_server_listen_fd(struct smtp_server *, int fd, const char *label,
    char *err, size_t errlen);
int smtp_server_listen_unix_fd(struct smtp_server *, int fd,
    const char *path, char *err, size_t errlen);
/* Listen on a Unix socket at path (listener_bind_unix); 0 or -1. */
int smtp_server_listen_unix(struct smtp_server *, const char *path,
    char *err, size_t errlen);
/* New settings (reload): for new connections and every next command. */
void smtp_server_configure(struct smtp_server *,
    const struct smtp_server_config *);
/* Stop accepting new connections. */
void smtp_server_stop_listening(struct smtp_server *);
/*
 * Shutting down: sessions between transactions are answered 421 and
 * closed; one in a transaction finishes it (its 250 is delivered), then
 * gets 421.  smtp_server_session_count() tells when all are gone.
 */
void smtp_server_shutdown(struct smtp_server *);
/* Sessions currently open. */
size_t smtp_server_session_count(const struct smtp_server *);
void smtp_server_free(struct smtp_server *);

#endif
