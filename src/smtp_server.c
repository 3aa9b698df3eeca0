/*
 * smtp_server.c: listeners and inbound SMTP sessions.
 *
 * Each session is a small state machine (smtp_vocab.h: INIT, HELO,
 * MAIL, RCPT, DATA, COMMIT, CLOSING, LINGER) whose state changes in
 * session_enter only; which verb is taken in which state, and every
 * reply's text, are smtp_vocab's, shared with sesrelay-sendmail -bs.
 * Input is processed in order from the bufferevent, so pipelined
 * commands work naturally; while a message is being committed, reading
 * stops and resumes after the reply.
 *
 * Memory per session is bounded whatever the client does: input is read
 * at most IN_HIGH bytes ahead (the bufferevent's read high-water mark),
 * and a client that does not read its replies is not read either: once
 * OUT_HIGH bytes of replies wait, reading stops until they drain below
 * OUT_LOW (the write low-water mark calls write_cb there).  Every reply
 * answers one command read, so nothing else can grow the output.  A
 * client that reads nothing for smtp.timeout (the write timeout) is
 * dropped.
 *
 * Only loopback clients, the Unix socket and networks in listen.allow
 * may talk to us: anyone else gets 554 and is closed.
 *
 * Every reply carries an enhanced status code (RFC 3463).
 */
#include "config.h"

#include <sys/queue.h>
#include <sys/socket.h>

#include <fcntl.h>
#include <pwd.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <netinet/in.h>
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "accept_backoff.h"
#include "addrlist.h"
#include "cleanup.h"
#include "conf.h"
#include "dotstuff.h"
#include "listener.h"
#include "log.h"
#include "rcpt_rule.h"
#include "smtp_parse.h"
#include "smtp_server.h"
#include "smtp_vocab.h"
#include "spool.h"
#include "stats.h"

#define DATA_CHUNK	65536
#define MAX_LISTENERS	16
/* Input read ahead at most: more than the longest smtp.max_line_length
 * (65536), so a whole line always fits and is never waited for. */
#define IN_HIGH		(2 * DATA_CHUNK)
#define OUT_HIGH	65536	/* replies waiting: stop reading above */
#define OUT_LOW		16384	/* ... and read again below */

struct smtp_server {
	struct event_base	*base;
	struct spool		*spool;
	struct smtp_server_config conf;
	struct evconnlistener	*listeners[MAX_LISTENERS];
	char			*unix_paths[MAX_LISTENERS];
	size_t			 nlisteners;
	struct accept_backoff	 backoff;	/* when accept() fails */
	void			(*accepted)(void *, struct spool_envelope *);
	void			*accepted_arg;
	size_t			 nsessions;
	unsigned long		 serial;
	int			 stopping;
	TAILQ_HEAD(, smtp_session) sessions;
};

struct smtp_session {
	struct smtp_server	*srv;
	struct bufferevent	*bev;
	enum smtp_state		 state;	/* changed by session_enter */
	unsigned long		 serial;
	char			 client[64];
	char			 helo[256];
	char			 sender[SMTP_ADDR_MAX];	/* rewritten */
	char			 orig_sender[SMTP_ADDR_MAX];
	char			**rcpts;	/* after aliases, no duplicates */
	size_t			 nrcpt;
	struct evbuffer		*header;	/* the header, while in it */
	int			 in_header;
	struct spool_writer	*writer;
	char			 id[SPOOL_ID_LEN + 1];
	struct dot_decoder	 dec;
	int			 too_big;
	int			 header_too_big;
	int			 has_nul;	/* RFC 5322: no NUL in a message */
	int			 body_8bitmime;	/* MAIL ... BODY=8BITMIME */
	int			 has_8bit;	/* 8-bit data seen (strict_8bitmime) */
	int			 long_header_line;
	int			 write_failed;
	int			 skipping_long;	/* discarding an overlong line */
	int			 commit_pending;
	int			 output_blocked; /* reading stopped: see OUT_HIGH */
	int			 closed;	/* freed when the commit returns */
	long long		 ncommands;
	int			 local_user;	/* on the Unix socket, untrusted */
	char			 user[64];	/* its login name */
	off_t			 size;		/* of the body being committed */
	TAILQ_ENTRY(smtp_session) entry;
};

static void session_read(struct smtp_session *);
static void session_enter(struct smtp_session *, enum smtp_state);
static void session_free(struct smtp_session *);
static void flush_header(struct smtp_session *);

/* Are more replies waiting than a client that reads them would leave? */
static int
session_is_output_blocked(const struct smtp_session *s)
{
	return evbuffer_get_length(bufferevent_get_output(s->bev)) > OUT_HIGH;
}

static void
reply(struct smtp_session *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
reply(struct smtp_session *s, const char *fmt, ...)
{
	struct evbuffer *out = bufferevent_get_output(s->bev);
	va_list ap;

	va_start(ap, fmt);
	evbuffer_add_vprintf(out, fmt, ap);
	va_end(ap);
	evbuffer_add(out, "\r\n", 2);
}

static void
set_timeout(struct smtp_session *s, long long seconds)
{
	struct timeval tv = { (time_t)seconds, 0 };

	bufferevent_set_timeouts(s->bev, &tv, &tv);
}

/*
 * Room in the spool for a message of `size` bytes (0: not declared)?
 * Replies 452 when not: a 250 must never be given for mail that could
 * not be kept.
 */
static int
spool_room_or_reply(struct smtp_session *s, long long size)
{
	const struct smtp_server_config *c = &s->srv->conf;

	if (spool_has_room(s->srv->spool, size, c->min_free,
	    c->min_free_inodes) == 1)
		return 1;
	log_event(LOG_WARNING, "-", "smtp.refused",
	    "client=%s reason=spool_short spool_min_free=%lld",
	    log_q(s->client), c->min_free);
	reply(s, SMTP_R_NO_STORAGE);
	return 0;
}

/* Forget the transaction: what session_enter does on the way back to
 * INIT or HELO, and session_free. */
static void
clear_transaction(struct smtp_session *s)
{
	for (size_t i = 0; i < s->nrcpt; i++)
		free(s->rcpts[i]);
	free(s->rcpts);
	s->rcpts = NULL;
	s->nrcpt = 0;
	s->sender[0] = s->orig_sender[0] = '\0';
	if (s->header != NULL) {
		evbuffer_free(s->header);
		s->header = NULL;
	}
	s->in_header = 0;
	if (s->writer != NULL) {
		spool_writer_abort(s->writer);
		s->writer = NULL;
	}
	s->too_big = s->write_failed = s->header_too_big = s->has_nul = 0;
	s->body_8bitmime = s->has_8bit = s->long_header_line = 0;
}

/* The transaction is over: back to HELO (or INIT, before any HELO). */
static void
reset_transaction(struct smtp_session *s)
{
	session_enter(s, s->state == SMTP_STATE_INIT ? SMTP_STATE_INIT :
	    SMTP_STATE_HELO);
}

/* Queue the last reply and close once it is flushed. */
static void
close_after_reply(struct smtp_session *s)
{
	session_enter(s, SMTP_STATE_CLOSING);
}

/*
 * Close after a reply the client may not be reading yet (it is still
 * sending DATA): send it, shut down our side, and read and discard until
 * the client closes or a short timeout.  Closing with unread input would
 * reset the connection and could destroy the reply before it is read.
 */
static void
linger(struct smtp_session *s)
{
	struct timeval tv = { 10, 0 };

	bufferevent_set_timeouts(s->bev, &tv, &tv);
	bufferevent_enable(s->bev, EV_READ | EV_WRITE);
	evbuffer_drain(bufferevent_get_input(s->bev),
	    evbuffer_get_length(bufferevent_get_input(s->bev)));
}

/*
 * The only place the state changes, with what entering each state
 * does.  CLOSING may free the session: nothing touches it after.
 */
static void
session_enter(struct smtp_session *s, enum smtp_state st)
{
	enum smtp_state from = s->state;

	log_event(LOG_DEBUG, "-", "smtp.state", "client=%s from=%s to=%s",
	    log_q(s->client), smtp_state_name(from), smtp_state_name(st));
	s->state = st;
	if (from == SMTP_STATE_DATA)
		set_timeout(s, s->srv->conf.timeout);
	switch (st) {
	case SMTP_STATE_INIT:
	case SMTP_STATE_HELO:
		clear_transaction(s);
		break;
	case SMTP_STATE_DATA:
		set_timeout(s, s->srv->conf.data_timeout);
		break;
	case SMTP_STATE_COMMIT:
		bufferevent_disable(s->bev, EV_READ);
		break;
	case SMTP_STATE_CLOSING:
		bufferevent_disable(s->bev, EV_READ);
		if (evbuffer_get_length(bufferevent_get_output(s->bev)) == 0)
			session_free(s);
		break;
	case SMTP_STATE_LINGER:
		linger(s);
		break;
	case SMTP_STATE_MAIL:
	case SMTP_STATE_RCPT:
		break;
	}
}

/* ---- verbs ---- */

/* EHLO and HELO. */
static void
cmd_ehlo(struct smtp_session *s, const struct smtp_command *cmd)
{
	const struct smtp_server_config *c = &s->srv->conf;
	char text[SMTP_EHLO_MAX];

	session_enter(s, SMTP_STATE_HELO);
	snprintf(s->helo, sizeof(s->helo), "%s", cmd->arg);
	smtp_vocab_ehlo(cmd->verb == SMTP_VERB_EHLO, c->hostname,
	    c->max_message_size, text);
	reply(s, "%s", text);
}

/* Is addr the local user's own: "user", "user@localhost", "user@host"? */
static int
own_address(const struct smtp_session *s, const char *addr)
{
	size_t n = strlen(s->user);
	const char *dom = addr + n + 1;

	if (strncmp(addr, s->user, n) != 0)
		return 0;
	if (addr[n] == '\0')
		return 1;
	return addr[n] == '@' && (strcasecmp(dom, "localhost") == 0 ||
	    strcasecmp(dom, s->srv->conf.hostname) == 0);
}

/*
 * Who is on the other end of a Unix socket connection: a local user,
 * whose sender is checked unless trusted.  Unknown: treated as untrusted
 * "nobody".
 */
static void
identify_local_user(struct smtp_session *s, int fd)
{
	const struct smtp_server_config *c = &s->srv->conf;
	struct listener_peer peer;
	struct passwd *pw;

	s->local_user = 1;
	snprintf(s->user, sizeof(s->user), "nobody");
	if (listener_peer(fd, &peer) == -1 ||
	    (pw = getpwuid(peer.uid)) == NULL)
		return;
	snprintf(s->user, sizeof(s->user), "%s", pw->pw_name);
	for (size_t i = 0; i < c->ntrusted; i++)
		if (strcmp(c->trusted[i], pw->pw_name) == 0)
			s->local_user = 0;
}

static void
cmd_mail(struct smtp_session *s, const struct smtp_command *cmd)
{
	struct smtp_mail_params p;
	char addr[SMTP_ADDR_MAX], text[SMTP_REPLY_MAX];

	if (!smtp_vocab_mail(cmd->arg, s->srv->conf.max_message_size, addr,
	    &p, text)) {
		reply(s, "%s", text);
		return;
	}
	if (!spool_room_or_reply(s, p.size > 0 ? p.size : 0))
		return;
	if (s->local_user && !own_address(s, addr)) {
		/* A local user sends as itself (sendmail.trusted_users). */
		log_event(LOG_INFO, "-", "smtp.sender_replaced",
		    "from=%s to=%s user=%s msg=\"not in "
		    "sendmail.trusted_users\"", log_qa(addr), log_qa(s->user),
		    log_q(s->user));
		snprintf(addr, sizeof(addr), "%s", s->user);
	}
	if (cleanup_sender_is_refused(s->srv->conf.cleanup, addr)) {
		/* SES would refuse it, and with no verified sender there
		 * would be no bounce either: refused now, not lost later. */
		log_event(LOG_INFO, "-", "smtp.refused",
		    "from=%s client=%s reason=sender msg=\"not a sender SES "
		    "can accept, and not rewritten\"", log_qa(addr),
		    log_q(s->client));
		reply(s, SMTP_R_SENDER_REFUSED, addr, CLEANUP_SENDER_REFUSED);
		return;
	}
	memcpy(s->orig_sender, addr, sizeof(s->orig_sender));
	s->body_8bitmime = p.body_8bit;
	snprintf(s->sender, sizeof(s->sender), "%s",
	    cleanup_sender(s->srv->conf.cleanup, addr));
	session_enter(s, SMTP_STATE_MAIL);
	reply(s, SMTP_R_MAIL_OK);
}

/* RCPT: the rule shared with sesrelay-sendmail and pickup (rcpt_rule.h). */
static void
cmd_rcpt(struct smtp_session *s, const struct smtp_command *cmd)
{
	const struct rcpt_rule rule = { s->srv->conf.cleanup,
	    s->srv->conf.max_recipients };
	char text[RCPT_RULE_REPLY_MAX];

	if (rcpt_rule_apply(&rule, cmd->arg, &s->rcpts, &s->nrcpt, text) ==
	    250)
		session_enter(s, SMTP_STATE_RCPT);
	reply(s, "%s", text);
}

static void
cmd_data(struct smtp_session *s, const struct smtp_command *cmd)
{
	if (!spool_room_or_reply(s, 0))
		return;
	s->writer = spool_writer_new(s->srv->spool, s->sender, s->rcpts,
	    s->nrcpt, s->id);
	if (s->writer == NULL) {
		log_event(LOG_WARNING | LOG_ERRNO, "-",
		    "smtp.queue_file_failed", "client=%s", log_q(s->client));
		reply(s, SMTP_R_QUEUE_CREATE);
		return;
	}
	dot_decoder_init(&s->dec);
	if ((s->header = evbuffer_new()) == NULL)
		abort();
	s->in_header = 1;
	session_enter(s, SMTP_STATE_DATA);
	reply(s, SMTP_R_DATA_GO);
}

static void
cmd_rset(struct smtp_session *s, const struct smtp_command *cmd)
{
	reset_transaction(s);
	reply(s, SMTP_R_OK);
}

static void
cmd_quit(struct smtp_session *s, const struct smtp_command *cmd)
{
	reply(s, SMTP_R_BYE);
	close_after_reply(s);
}

/* The handlers, by verb; smtp_vocab decides which may run when, and
 * answers NOOP, VRFY and HELP itself. */
static void (*const handlers[])(struct smtp_session *,
    const struct smtp_command *) = {
	[SMTP_VERB_EHLO] = cmd_ehlo,
	[SMTP_VERB_HELO] = cmd_ehlo,
	[SMTP_VERB_MAIL] = cmd_mail,
	[SMTP_VERB_RCPT] = cmd_rcpt,
	[SMTP_VERB_DATA] = cmd_data,
	[SMTP_VERB_RSET] = cmd_rset,
	[SMTP_VERB_QUIT] = cmd_quit,
};

static void
dispatch(struct smtp_session *s, char *line, size_t len)
{
	struct smtp_command cmd;
	char text[SMTP_REPLY_MAX];
	const char *refusal;

	if (s->ncommands == 0)		/* past the greeting phase */
		set_timeout(s, s->srv->conf.timeout);
	if (++s->ncommands > s->srv->conf.max_commands) {
		log_event(LOG_INFO, "-", "smtp.refused",
		    "client=%s reason=commands max_commands=%lld",
		    log_q(s->client), s->srv->conf.max_commands);
		reply(s, SMTP_R_TOO_MANY_COMMANDS, s->srv->conf.hostname);
		close_after_reply(s);
		return;
	}
	if ((refusal = smtp_vocab_line_refusal(line, len)) != NULL) {
		reply(s, "%s", refusal);
		return;
	}
	if (s->srv->stopping && s->state < SMTP_STATE_MAIL) {
		reply(s, SMTP_R_SHUTDOWN, s->srv->conf.hostname);
		close_after_reply(s);
		return;
	}
	if (smtp_vocab_decide(line, s->state, "a local listener", &cmd,
	    text) == 0)
		reply(s, "%s", text);
	else if ((size_t)cmd.verb < sizeof(handlers) / sizeof(handlers[0]) &&
	    handlers[cmd.verb] != NULL)
		handlers[cmd.verb](s, &cmd);
	else
		abort();	/* a verb smtp_vocab runs has a handler */
}

/* ---- DATA ---- */

static void
commit_done(void *arg, int status)
{
	struct smtp_session *s = arg;
	struct smtp_server *srv = s->srv;
	char id[SPOOL_ID_LEN + 1];

	s->commit_pending = 0;
	memcpy(id, s->id, sizeof(id));
	if (status == 0) {
		stats.accepted++;
		log_event(LOG_INFO, id, "smtp.accepted",
		    "from=%s nrcpt=%zu size=%lld client=%s", log_qa(s->sender),
		    s->nrcpt, (long long)s->size, log_q(s->client));
		srv->accepted(srv->accepted_arg, spool_envelope_new(id,
		    s->sender, s->rcpts, s->nrcpt, s->size));
	}
	if (s->closed) {
		/* The client left before the reply; the mail is kept. */
		session_free(s);
		return;
	}
	if (status == 0)
		reply(s, SMTP_R_QUEUED, id);
	else
		reply(s, SMTP_R_QUEUE_WRITE);
	reset_transaction(s);
	if (srv->stopping) {
		reply(s, SMTP_R_SHUTDOWN, srv->conf.hostname);
		close_after_reply(s);
		return;
	}
	bufferevent_enable(s->bev, EV_READ);
	session_read(s);	/* pipelined commands may be waiting */
}

/* The end-of-data line was read: reply or commit. */
static void
data_end(struct smtp_session *s)
{
	off_t size;

	if (s->in_header)	/* a message that is all header */
		flush_header(s);
	if (s->long_header_line) {
		log_event(LOG_INFO, "-", "smtp.refused",
		    "from=%s client=%s reason=header_line max=%lld msg=\"a "
		    "header line that cannot be folded\"", log_qa(s->sender),
		    log_q(s->client), s->srv->conf.max_header_line_length);
		reply(s, SMTP_R_HEADER_LINE,
		    s->srv->conf.max_header_line_length);
		reset_transaction(s);
		return;
	}
	if (s->has_8bit) {
		log_event(LOG_INFO, "-", "smtp.refused",
		    "from=%s client=%s reason=8bit msg=\"8-bit data without "
		    "BODY=8BITMIME\"", log_qa(s->sender), log_q(s->client));
		reply(s, SMTP_R_8BIT);
		reset_transaction(s);
		return;
	}
	if (s->header_too_big || s->has_nul) {
		log_event(LOG_INFO, "-", "smtp.refused",
		    "from=%s client=%s reason=%s", log_qa(s->sender),
		    log_q(s->client), s->has_nul ? "nul" : "header_size");
		if (s->has_nul)
			reply(s, SMTP_R_NUL_DATA);
		else
			reply(s, SMTP_R_HEADER_TOO_BIG,
			    s->srv->conf.max_header_size);
		reset_transaction(s);
		return;
	}
	size = spool_writer_size(s->writer);
	if (s->too_big) {
		log_event(LOG_INFO, "-", "smtp.refused",
		    "from=%s client=%s reason=size max=%lld", log_qa(s->sender),
		    log_q(s->client), s->srv->conf.max_message_size);
		reply(s, SMTP_R_TOO_BIG, s->srv->conf.max_message_size);
		reset_transaction(s);
		return;
	}
	if (s->write_failed) {
		log_event(LOG_WARNING | LOG_ERRNO, s->id, "smtp.write_failed",
		    "client=%s", log_q(s->client));
		reply(s, SMTP_R_QUEUE_WRITE);
		reset_transaction(s);
		return;
	}
	log_event(LOG_DEBUG, s->id, "smtp.committing", "size=%lld",
	    (long long)size);
	s->size = size;
	s->commit_pending = 1;
	session_enter(s, SMTP_STATE_COMMIT);
	spool_writer_commit(s->writer, commit_done, s);
	s->writer = NULL;
}

/* Write decoded bytes to the spool, minding the size limit. */
static void
store(struct smtp_session *s, const char *buf, size_t len)
{
	if (memchr(buf, '\0', len) != NULL)
		s->has_nul = 1;
	if (s->srv->conf.strict_8bitmime && !s->body_8bitmime &&
	    !s->has_8bit)
		for (size_t i = 0; i < len; i++)
			if ((unsigned char)buf[i] >= 0x80) {
				s->has_8bit = 1;
				break;
			}
	if (s->too_big || s->write_failed || s->has_nul || s->header_too_big)
		return;
	if (spool_writer_size(s->writer) + (off_t)len >
	    s->srv->conf.max_message_size)
		s->too_big = 1;
	else if (spool_writer_write(s->writer, buf, len) == -1)
		s->write_failed = 1;
}

/*
 * The header is complete (it ends in the buffer, or the data did): the
 * buffer through cleanup (cleanup_text_start, as pickup files a maildrop
 * file), then the spool.
 */
static void
flush_header(struct smtp_session *s)
{
	size_t total = evbuffer_get_length(s->header), outlen;
	char *all = (char *)evbuffer_pullup(s->header, -1), *out;

	if (cleanup_text_start(s->srv->conf.cleanup, all != NULL ? all : "",
	    total, s->orig_sender, time(NULL), &out, &outlen))
		s->long_header_line = 1;
	store(s, out, outlen);
	free(out);
	evbuffer_free(s->header);
	s->header = NULL;
	s->in_header = 0;
}

/* Decoded bytes: into the header buffer until its end, then the spool. */
static void
emit_data(struct smtp_session *s, const char *buf, size_t len)
{
	struct evbuffer_ptr end;

	if (!s->in_header) {
		store(s, buf, len);
		return;
	}
	evbuffer_add(s->header, buf, len);
	if (evbuffer_get_length(s->header) >= 2 &&
	    memcmp(evbuffer_pullup(s->header, 2), "\r\n", 2) == 0) {
		flush_header(s);		/* an empty header */
		return;
	}
	end = evbuffer_search(s->header, "\r\n\r\n", 4, NULL);
	if (end.pos != -1)
		flush_header(s);
	else if (evbuffer_get_length(s->header) >
	    (size_t)s->srv->conf.max_header_size) {
		/* Refused at the end of the data; keep nothing more. */
		s->header_too_big = 1;
		evbuffer_free(s->header);
		s->header = NULL;
		s->in_header = 0;
	}
}

/* Feed body bytes through the decoder into the spool. */
static void
data_read(struct smtp_session *s, struct evbuffer *in)
{
	static char out[2 * DATA_CHUNK + 2];
	struct evbuffer_iovec v;
	size_t used, outlen;
	int done = 0;

	while (!done && evbuffer_peek(in, -1, NULL, &v, 1) > 0 &&
	    v.iov_len > 0) {
		size_t len = v.iov_len > DATA_CHUNK ? DATA_CHUNK : v.iov_len;

		used = dot_decode(&s->dec, v.iov_base, len, out, &outlen,
		    &done);
		if (s->dec.saw_bare_lf && s->srv->conf.bare_lf_reject) {
			/* RFC 5321 2.3.8: where this message ends is now
			 * ambiguous (SMTP smuggling), so it is refused and the
			 * session ends, as Postfix's smtpd_forbid_bare_newline
			 * does. */
			log_event(LOG_INFO, s->id, "smtp.refused",
			    "from=%s client=%s reason=bare_lf",
			    log_qa(s->sender), log_q(s->client));
			reset_transaction(s);
			reply(s, SMTP_R_BARE_LF, s->srv->conf.hostname);
			session_enter(s, SMTP_STATE_LINGER);
			return;
		}
		emit_data(s, out, outlen);
		evbuffer_drain(in, used);
	}
	if (done)
		data_end(s);
}

/* ---- input ---- */

static void
session_read(struct smtp_session *s)
{
	struct evbuffer *in = bufferevent_get_input(s->bev);
	size_t max = (size_t)s->srv->conf.max_line_length;
	struct evbuffer_ptr eol;
	size_t eol_len, len;
	char *line;

	if (s->state == SMTP_STATE_LINGER) {
		evbuffer_drain(in, evbuffer_get_length(in));
		return;
	}
	while (s->state != SMTP_STATE_CLOSING && s->state != SMTP_STATE_COMMIT &&
	    s->state != SMTP_STATE_LINGER) {
		if (session_is_output_blocked(s)) {
			/* The client is not reading: neither are we, until
			 * write_cb sees the replies drain. */
			s->output_blocked = 1;
			bufferevent_disable(s->bev, EV_READ);
			return;
		}
		if (s->state == SMTP_STATE_DATA) {
			data_read(s, in);
			if (s->state == SMTP_STATE_DATA)
				return;		/* need more input */
			continue;
		}
		eol = evbuffer_search_eol(in, NULL, &eol_len, EVBUFFER_EOL_LF);
		if (eol.pos == -1) {
			if (evbuffer_get_length(in) > max) {
				/* Drop what we have, and the rest of the line
				 * when it comes; answer once. */
				evbuffer_drain(in, evbuffer_get_length(in));
				if (!s->skipping_long)
					reply(s, SMTP_R_LINE_TOO_LONG,
					    max);
				s->skipping_long = 1;
			}
			return;
		}
		if (s->skipping_long || (size_t)eol.pos + eol_len > max) {
			evbuffer_drain(in, eol.pos + eol_len);
			if (!s->skipping_long)
				reply(s, SMTP_R_LINE_TOO_LONG, max);
			s->skipping_long = 0;
			continue;
		}
		if ((line = malloc(eol.pos + 1)) == NULL)
			abort();
		evbuffer_remove(in, line, eol.pos);
		evbuffer_drain(in, eol_len);
		len = eol.pos;
		if (len > 0 && line[len - 1] == '\r')
			len--;
		line[len] = '\0';
		dispatch(s, line, len);
		free(line);
	}
}

static void
read_cb(struct bufferevent *bev, void *arg)
{
	session_read(arg);
}

/* Called when the output drained to OUT_LOW (the write low-water mark). */
static void
write_cb(struct bufferevent *bev, void *arg)
{
	struct smtp_session *s = arg;

	if (s->state == SMTP_STATE_CLOSING &&
	    evbuffer_get_length(bufferevent_get_output(bev)) == 0)
		session_free(s);
	else if (s->state == SMTP_STATE_LINGER &&
	    evbuffer_get_length(bufferevent_get_output(bev)) == 0)
		shutdown(bufferevent_getfd(bev), SHUT_WR);
	else if (s->output_blocked && s->state != SMTP_STATE_CLOSING &&
	    s->state != SMTP_STATE_LINGER) {
		s->output_blocked = 0;
		if (s->state != SMTP_STATE_COMMIT) {
			bufferevent_enable(bev, EV_READ);
			session_read(s);	/* commands already read */
		}
	}
}

static void
event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct smtp_session *s = arg;

	if (s->state == SMTP_STATE_CLOSING || s->state == SMTP_STATE_LINGER) {
		/* The client is gone, or the last reply could not be
		 * delivered, or lingering timed out. */
		session_free(s);
		return;
	}
	if ((what & BEV_EVENT_TIMEOUT) && (what & BEV_EVENT_WRITING)) {
		/* Our replies were not read for a whole timeout: another
		 * would not be either. */
		log_event(LOG_INFO, "-", "smtp.timeout",
		    "client=%s state=%s unread=%zu msg=\"replies not read\"",
		    log_q(s->client), smtp_state_name(s->state),
		    evbuffer_get_length(bufferevent_get_output(bev)));
		if (s->state == SMTP_STATE_DATA)
			log_event(LOG_INFO, s->id, "smtp.discarded",
			    "reason=timeout");
		session_free(s);
		return;
	}
	if (what & BEV_EVENT_TIMEOUT) {
		log_event(LOG_INFO, "-", "smtp.timeout", "client=%s state=%s",
		    log_q(s->client), smtp_state_name(s->state));
		reply(s, SMTP_R_TIMEOUT, s->srv->conf.hostname);
		close_after_reply(s);
		return;
	}
	if (s->state == SMTP_STATE_DATA)
		log_event(LOG_INFO, s->id, "smtp.discarded",
		    "client=%s reason=lost_connection", log_q(s->client));
	session_free(s);
}

/* ---- sessions ---- */

static void
session_free(struct smtp_session *s)
{
	if (s->commit_pending) {
		/* The sync thread still owns this session's callback. */
		s->closed = 1;
		bufferevent_disable(s->bev, EV_READ | EV_WRITE);
		return;
	}
	clear_transaction(s);
	TAILQ_REMOVE(&s->srv->sessions, s, entry);
	s->srv->nsessions--;
	bufferevent_free(s->bev);
	free(s);
}

static int
client_allowed(const struct smtp_server *srv, const struct sockaddr *sa)
{
	if (sa->sa_family == AF_UNIX || netaddr_is_loopback(sa))
		return 1;
	for (size_t i = 0; i < srv->conf.nallow; i++)
		if (netaddr_in_net(sa, &srv->conf.allow[i]))
			return 1;
	return 0;
}

static void
accept_cb(struct evconnlistener *l, evutil_socket_t fd,
    struct sockaddr *sa, int salen, void *arg)
{
	struct smtp_server *srv = arg;
	struct smtp_session *s = calloc(1, sizeof(*s));
	struct timeval tv = { srv->conf.greeting_timeout, 0 };

	accept_backoff_accepted(&srv->backoff);
	if (s == NULL) {
		evutil_closesocket(fd);
		return;
	}
	s->srv = srv;
	s->serial = ++srv->serial;
	netaddr_str(sa, s->client, sizeof(s->client));
	if (sa->sa_family == AF_UNIX)
		identify_local_user(s, fd);
	s->bev = bufferevent_socket_new(srv->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (s->bev == NULL) {
		evutil_closesocket(fd);
		free(s);
		return;
	}
	TAILQ_INSERT_TAIL(&srv->sessions, s, entry);
	srv->nsessions++;
	bufferevent_setcb(s->bev, read_cb, write_cb, event_cb, s);
	bufferevent_setwatermark(s->bev, EV_READ, 0, IN_HIGH);
	bufferevent_setwatermark(s->bev, EV_WRITE, OUT_LOW, 0);
	bufferevent_set_timeouts(s->bev, &tv, &tv);
	bufferevent_enable(s->bev, EV_READ | EV_WRITE);
	if (srv->nsessions > (size_t)srv->conf.max_clients +
	    (sa->sa_family == AF_UNIX ? SMTP_UNIX_RESERVE : 0)) {
		log_event(LOG_WARNING, "-", "smtp.refused",
		    "client=%s reason=max_clients sessions=%zu",
		    log_q(s->client), srv->nsessions - 1);
		reply(s, SMTP_R_TOO_MANY_CLIENTS, srv->conf.hostname);
		close_after_reply(s);
		return;
	}
	if (!client_allowed(srv, sa)) {
		log_event(LOG_WARNING, "-", "smtp.refused",
		    "client=%s reason=not_allowed msg=\"not loopback and not "
		    "in listen.allow\"", log_q(s->client));
		reply(s, SMTP_R_ACCESS_DENIED, s->client);
		close_after_reply(s);
		return;
	}
	log_event(LOG_DEBUG, "-", "smtp.connect", "client=%s",
	    log_q(s->client));
	reply(s, SMTP_R_GREETING, srv->conf.hostname);
}

struct smtp_server *
smtp_server_new(struct event_base *base, struct spool *spool,
    const struct smtp_server_config *c,
    void (*accepted)(void *, struct spool_envelope *), void *arg)
{
	struct smtp_server *srv = calloc(1, sizeof(*srv));

	if (srv == NULL)
		abort();
	srv->base = base;
	srv->spool = spool;
	srv->conf = *c;
	srv->accepted = accepted;
	srv->accepted_arg = arg;
	TAILQ_INIT(&srv->sessions);
	accept_backoff_init(&srv->backoff, base, "smtp", srv->listeners,
	    &srv->nlisteners);
	return srv;
}

void
smtp_server_configure(struct smtp_server *srv,
    const struct smtp_server_config *c)
{
	srv->conf = *c;
}

/* accept() failed (descriptors ran out): pause, do not spin. */
static void
accept_error_cb(struct evconnlistener *l, void *arg)
{
	struct smtp_server *srv = arg;

	accept_backoff_failed(&srv->backoff, EVUTIL_SOCKET_ERROR());
}

static int
add_listener(struct smtp_server *srv, int fd, const char *what, char *err,
    size_t errlen)
{
	struct evconnlistener *l;

	if (srv->nlisteners == MAX_LISTENERS) {
		snprintf(err, errlen, "%s: too many listeners", what);
		close(fd);
		return -1;
	}
	l = evconnlistener_new(srv->base, accept_cb, srv,
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 128, fd);
	if (l == NULL) {
		snprintf(err, errlen, "%s: cannot listen", what);
		close(fd);
		return -1;
	}
	evconnlistener_set_error_cb(l, accept_error_cb);
	srv->listeners[srv->nlisteners++] = l;
	return 0;
}

int
smtp_server_listen_fd(struct smtp_server *srv, int fd, const char *label,
    char *err, size_t errlen)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl == -1 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) == -1) {
		snprintf(err, errlen, "%s: %s", label, strerror(errno));
		return -1;
	}
	log_event(LOG_INFO, "-", "smtp.listening", "addr=%s", log_q(label));
	return add_listener(srv, fd, label, err, errlen);
}

int
smtp_server_listen_tcp(struct smtp_server *srv, const char *hostport,
    char *err, size_t errlen)
{
	int fd = listener_bind_tcp(hostport, err, errlen);

	if (fd == -1)
		return -1;
	log_event(LOG_INFO, "-", "smtp.listening", "addr=%s", log_q(hostport));
	return add_listener(srv, fd, hostport, err, errlen);
}

int
smtp_server_listen_unix(struct smtp_server *srv, const char *path, char *err,
    size_t errlen)
{
	int fd = listener_bind_unix(path, 0666, err, errlen);

	if (fd == -1)
		return -1;
	return smtp_server_listen_unix_fd(srv, fd, path, err, errlen);
}

int
smtp_server_listen_unix_fd(struct smtp_server *srv, int fd, const char *path,
    char *err, size_t errlen)
{
	if (srv->nlisteners < MAX_LISTENERS &&
	    (srv->unix_paths[srv->nlisteners] = strdup(path)) == NULL)
		abort();
	log_event(LOG_INFO, "-", "smtp.listening", "addr=%s", log_q(path));
	return add_listener(srv, fd, path, err, errlen);
}

void
smtp_server_stop_listening(struct smtp_server *srv)
{
	accept_backoff_stop(&srv->backoff);
	for (size_t i = 0; i < srv->nlisteners; i++) {
		evconnlistener_free(srv->listeners[i]);
		if (srv->unix_paths[i] != NULL) {
			unlink(srv->unix_paths[i]);
			free(srv->unix_paths[i]);
			srv->unix_paths[i] = NULL;
		}
	}
	srv->nlisteners = 0;
}

void
smtp_server_shutdown(struct smtp_server *srv)
{
	struct smtp_session *s, *next;

	srv->stopping = 1;
	smtp_server_stop_listening(srv);
	for (s = TAILQ_FIRST(&srv->sessions); s != NULL; s = next) {
		next = TAILQ_NEXT(s, entry);
		if (s->state > SMTP_STATE_HELO || s->state == SMTP_STATE_CLOSING ||
		    s->state == SMTP_STATE_LINGER)
			continue;	/* in a transaction, or going */
		reply(s, SMTP_R_SHUTDOWN, srv->conf.hostname);
		close_after_reply(s);
	}
}

size_t
smtp_server_session_count(const struct smtp_server *srv)
{
	return srv->nsessions;
}

void
smtp_server_free(struct smtp_server *srv)
{
	struct smtp_session *s, *next;

	if (srv == NULL)
		return;
	smtp_server_stop_listening(srv);
	for (s = TAILQ_FIRST(&srv->sessions); s != NULL; s = next) {
		next = TAILQ_NEXT(s, entry);
		/* spool_drain() ran first: no commit is pending here. */
		session_free(s);
	}
	accept_backoff_free(&srv->backoff);
	free(srv);
}
