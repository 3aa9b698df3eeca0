/*
 * sesrelay-sendmail.c: the sendmail-compatible submission program.
 *
 * Modes (sendmail_args.h): -bm reads a message and queues it; -bs speaks
 * SMTP on standard input and output and queues each message the same
 * way; -bv asks the daemon whether it takes each recipient; -bp (mailq)
 * and -q ask the daemon's control socket; newaliases does nothing.
 *
 * Queueing a message: SMTP to the daemon over its Unix socket
 * (listen.unix).  When the daemon does not answer there (cannot connect,
 * connection closed, nothing within GREETING_TIMEOUT seconds at the
 * greeting or REPLY_TIMEOUT later), or refuses for now (421 when every
 * slot is taken, any 4xx), before any of the message text went out, the
 * message goes into <spool>/maildrop/ (maildrop.h) for the daemon to
 * pick up: the daemon's own rules are applied first (rcpt_rule.h,
 * spool_min_free), and what they refuse is refused here.  A permanent
 * refusal (5xx) from a running daemon is reported, never sent around
 * it.  Exit 0 only once the
 * message is on disk one way or the other; every other outcome is a
 * sysexits(3) code and a line on stderr.
 *
 * Privilege: installed set-group-ID SPOOL_DROP_GROUP.  The group is
 * switched off (effective gid = real gid, the group kept as the saved
 * gid) before anything else, switched on by maildrop_write only around
 * creating, renaming and removing its file (maildrop_set_privilege), and
 * given up for good (real, effective and saved gid) in the modes that
 * write no maildrop file.  Everything else, reading the configuration
 * (-C, SESRELAY_CONFIG) included, runs with the caller's own rights.
 */
#include "config.h"

#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "addrlist.h"
#include "cleanup.h"
#include "conf.h"
#include "ctlclient.h"
#include "dotstuff.h"
#include "maildrop.h"
#include "rcpt_rule.h"
#include "sendmail_args.h"
#include "smtp_parse.h"
#include "smtp_vocab.h"
#include "spool_layout.h"
#include "submit.h"

#define GREETING_TIMEOUT	10	/* connect, greeting, EHLO */
#define REPLY_TIMEOUT		300	/* every reply after that */
#define CONTROL_TIMEOUT		30	/* mailq, -q */
#define BS_LINE_MAX		2048	/* -bs command line, CRLF included */
#define BS_DATA_CHUNK		8192

static const char *prog = "sendmail";

/* ---- privilege: the maildrop group ---- */

static gid_t real_gid, drop_gid;

/* At start: effective gid back to the real one; the group stays saved. */
static int
priv_init(void)
{
	real_gid = getgid();
	drop_gid = getegid();
	if (drop_gid != real_gid && setegid(real_gid) == -1)
		return -1;
	return 0;
}

static int
priv_raise(void)
{
	return drop_gid == real_gid ? 0 : setegid(drop_gid);
}

static void
priv_lower(void)
{
	if (drop_gid != real_gid && setegid(real_gid) == -1)
		abort();	/* never go on holding the group */
}

/* For good: real, effective and saved gid all the caller's. */
static int
priv_drop(void)
{
	if (drop_gid != real_gid &&
	    setresgid(real_gid, real_gid, real_gid) == -1)
		return -1;
	drop_gid = real_gid;
	return 0;
}

/*
 * A set-group-ID program started with 0, 1 or 2 closed would hand out
 * that number to its next open(): the maildrop file could receive what
 * is meant for stderr.  Fill the gaps with /dev/null.
 */
static int
std_fds_open(void)
{
	for (int fd = 0; fd < 3; fd++)
		if (fcntl(fd, F_GETFD) == -1 &&
		    open("/dev/null", O_RDWR) != fd)
			return -1;
	return 0;
}

/* ---- the message as read ---- */

/*
 * Standard input to its end or, without -i, to a line that holds a lone
 * dot (with or without CR, or "." as the last bytes): a FILE the header
 * reader, the SMTP client and the maildrop writer all read alike.
 */
struct dotin {
	FILE	*in;
	char	 buf[BS_DATA_CHUNK];
	size_t	 len, off;
	int	 at_bol;
	int	 ended;
};

/* The next piece: one line, or BS_DATA_CHUNK bytes of a longer one. */
static int
dotin_fill(struct dotin *d)
{
	int c = EOF;

	d->len = d->off = 0;
	if (d->ended)
		return 0;
	while (d->len < sizeof(d->buf) && (c = getc_unlocked(d->in)) != EOF) {
		d->buf[d->len++] = (char)c;
		if (c == '\n')
			break;
	}
	if (c == EOF && ferror(d->in))
		return -1;
	if (d->at_bol && d->len > 0 && d->buf[0] == '.' &&
	    ((d->len == 1 && c == EOF) || (d->len == 2 && (d->buf[1] == '\n' ||
	    (d->buf[1] == '\r' && c == EOF))) || (d->len == 3 &&
	    memcmp(d->buf, ".\r\n", 3) == 0))) {
		d->ended = 1;
		d->len = 0;
	}
	d->at_bol = d->len > 0 && d->buf[d->len - 1] == '\n';
	return 0;
}

static ssize_t
dotin_read(void *cookie, char *out, size_t size)
{
	struct dotin *d = cookie;
	size_t o = 0;

	while (o < size) {
		size_t n;

		if (d->off == d->len) {
			if (dotin_fill(d) == -1)
				return o > 0 ? (ssize_t)o : -1;
			if (d->len == 0)
				break;
		}
		n = d->len - d->off < size - o ? d->len - d->off : size - o;
		memcpy(out + o, d->buf + d->off, n);
		d->off += n;
		o += n;
	}
	return (ssize_t)o;
}

static int
dotin_close(void *cookie)
{
	free(cookie);
	return 0;
}

static FILE *
dotin_open(FILE *in)
{
	static const cookie_io_functions_t io = { dotin_read, NULL, NULL,
	    dotin_close };
	struct dotin *d = calloc(1, sizeof(*d));

	if (d == NULL)
		abort();
	d->in = in;
	d->at_bol = 1;
	return fopencookie(d, "r", io);
}

/* The calling user's login name: the sender when there is no -f. */
static const char *
user_name(void)
{
	static char name[256];
	struct passwd *pw;

	if (name[0] == '\0') {
		pw = getpwuid(getuid());
		snprintf(name, sizeof(name), "%s", pw != NULL &&
		    pw->pw_name[0] != '\0' ? pw->pw_name : "nobody");
	}
	return name;
}

/* ---- queueing one message ---- */

/* One message: what the two ways (daemon, maildrop) need. */
struct job {
	const char	*sender;	/* -f or MAIL FROM; "": the user */
	const char	*fullname;	/* -F, or NULL */
	int		 extract;	/* -t */
	struct addrlist	 rcpts;		/* given */
	struct sendmail_header hdr;	/* as read */
	struct addrlist	 all;		/* with -t's: the envelope */
	char		*smtp_hdr;	/* -t, -F applied: what is sent */
	size_t		 smtp_hlen;
	FILE		*body;		/* the rest of the message */
};

/* How it went, for the exit status, stderr and the -bs reply. */
struct verdict {
	int	exit;
	char	reply[1200];	/* the whole reply line: the daemon's text
				 * (smtp_vocab.h) where it has one */
	char	why[1400];	/* for stderr */
};

static void job_free(struct job *);

static void
set_verdict(struct verdict *v, int exit_code, const char *reply,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void
set_verdict(struct verdict *v, int exit_code, const char *reply,
    const char *fmt, ...)
{
	va_list ap;

	v->exit = exit_code;
	snprintf(v->reply, sizeof(v->reply), "%s", reply);
	va_start(ap, fmt);
	vsnprintf(v->why, sizeof(v->why), fmt, ap);
	va_end(ap);
}

static void
verdict_reply(struct verdict *v, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* The reply of a verdict already set, from a format with arguments. */
static void
verdict_reply(struct verdict *v, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(v->reply, sizeof(v->reply), fmt, ap);
	va_end(ap);
}

/* An envelope address the daemon and the maildrop can carry. */
static int
address_is_sane(const char *a)
{
	if (*a == '\0' || strlen(a) > SENDMAIL_ADDR_MAX ||
	    strpbrk(a, "<>") != NULL)
		return 0;
	for (; *a; a++)
		if ((unsigned char)*a < 0x20 || *a == 0x7f)
			return 0;
	return 1;
}

/*
 * Read the header from j->body (when read_hdr) and work out both forms
 * of the envelope and header.  0, or -1 with v set.
 */
static int
job_prepare(struct job *j, int read_hdr, struct verdict *v)
{
	const char *sender = *j->sender ? j->sender : user_name();

	if (read_hdr && sendmail_args_read_header(j->body, &j->hdr) == -1) {
		if (errno != EFBIG)
			set_verdict(v, EX_IOERR, "451 4.3.0 Error: cannot "
			    "read the message", "reading the message: %s",
			    strerror(errno));
		else {
			set_verdict(v, EX_DATAERR, "", "message header "
			    "larger than 1 MiB");
			verdict_reply(v, SMTP_R_HEADER_TOO_BIG,
			    (long long)SENDMAIL_HEADER_MAX);
		}
		return -1;
	}
	for (size_t i = 0; i < j->rcpts.n; i++)
		addrlist_add(&j->all, j->rcpts.v[i]);
	if (sendmail_args_header(j->extract, j->fullname, sender,
	    j->hdr.buf ? j->hdr.buf : "", j->hdr.fields, j->hdr.len, &j->all,
	    &j->smtp_hdr, &j->smtp_hlen) == -1) {
		set_verdict(v, EX_DATAERR, "554 5.6.0 Error: bad header",
		    "the message does not start with a header");
		return -1;
	}
	if (j->all.n == 0) {
		set_verdict(v, EX_USAGE, "554 5.5.1 Error: no recipients",
		    "no recipients%s", j->extract ? " found in the header" :
		    "");
		return -1;
	}
	for (size_t i = 0; i < j->all.n; i++)
		if (!address_is_sane(j->all.v[i])) {
			set_verdict(v, EX_NOUSER, "553 5.1.3 Error: bad "
			    "recipient address", "bad recipient address \"%s\"",
			    j->all.v[i]);
			return -1;
		}
	return 0;
}

static void
job_free(struct job *j)
{
	addrlist_free(&j->rcpts);
	addrlist_free(&j->all);
	free(j->hdr.buf);
	free(j->smtp_hdr);
	memset(j, 0, sizeof(*j));
}

/* The daemon's reply "550 5.1.1 text" without its code. */
static const char *
reply_text(const char *reply)
{
	return strlen(reply) > 4 ? reply + 4 : reply;
}

/*
 * SMTP to the daemon.  0 when queued; -1 with v set, and s->lost with
 * s->in_text unset when the maildrop may still be used.
 */
static int
via_daemon(const struct conf *c, struct job *j, struct submit *s,
    struct verdict *v)
{
	const char *sender = *j->sender ? j->sender : user_name();
	const char *refused = NULL;

	if (submit_open(s, c->listen.unix_path, GREETING_TIMEOUT,
	    REPLY_TIMEOUT) == -1 || submit_mail(s, sender) == -1)
		goto fail;
	for (size_t i = 0; i < j->all.n; i++)
		if (submit_rcpt(s, j->all.v[i]) == -1) {
			refused = j->all.v[i];
			goto fail;
		}
	if (submit_data(s) == -1 ||
	    submit_text(s, j->smtp_hdr, j->smtp_hlen) == -1 ||
	    (j->body != NULL && submit_stream(s, j->body) == -1) ||
	    submit_finish(s) == -1)
		goto fail;
	set_verdict(v, EX_OK, "", "queued as %s", s->queue_id);
	verdict_reply(v, SMTP_R_QUEUED, s->queue_id);
	return 0;
fail:
	if (j->body != NULL && ferror(j->body))
		set_verdict(v, EX_IOERR, "451 4.3.0 Error: cannot read the "
		    "message", "%s", s->reply);
	else if (s->lost)
		set_verdict(v, EX_TEMPFAIL, "451 4.3.0 Error: sesrelayd did "
		    "not answer; message not queued", "message not queued: %s",
		    s->reply);
	else {
		set_verdict(v, submit_exit_code(s->code, s->reply, refused !=
		    NULL), "451 4.3.0 Error: sesrelayd did not answer "
		    "properly", "message not queued: %s", s->reply);
		if (refused != NULL)
			snprintf(v->why, sizeof(v->why), "<%s> refused: %s",
			    refused, s->reply);
		if (s->code != 0)	/* the daemon's reply, passed on */
			verdict_reply(v, "%d %s", s->code,
			    reply_text(s->reply));
	}
	return -1;
}

/*
 * Would the daemon's pickup refuse this message?  The rules the daemon
 * applies over SMTP, decided here before the file is written, so that the
 * caller hears it: a sender SES can never accept (cleanup_sender_is_refused,
 * exit EX_NOPERM), with the sender pickup will use (-f only from a trusted
 * user, else the user); a header line too long even once folded
 * (cleanup_header_is_too_long, exit EX_DATAERR).  cl: the daemon's
 * cleanup as far as the caller's rights can read its maps; NULL when they
 * cannot, and the daemon decides (it quarantines such a file, loudly).
 * 1 with v set.
 */
static int
maildrop_refuses(const struct conf *c, const struct cleanup *cl,
    const struct job *j, struct verdict *v)
{
	const char *sender = user_name();
	char *out = NULL;
	size_t outlen = 0;
	int refused, too_long;

	if (cl == NULL)
		return 0;
	for (size_t i = 0; *j->sender && i < c->sendmail.trusted_users.n; i++)
		if (strcmp(c->sendmail.trusted_users.v[i], sender) == 0)
			sender = j->sender;
	refused = cleanup_sender_is_refused(cl, sender);
	cleanup_header(cl, j->hdr.buf ? j->hdr.buf : "", j->hdr.fields, sender,
	    0, &out, &outlen);
	too_long = cleanup_header_is_too_long(cl, out, outlen);
	free(out);
	if (refused) {
		set_verdict(v, EX_NOPERM, "", "<%s>: %s", sender,
		    CLEANUP_SENDER_REFUSED);
		verdict_reply(v, SMTP_R_SENDER_REFUSED, sender,
		    CLEANUP_SENDER_REFUSED);
	} else if (too_long) {
		set_verdict(v, EX_DATAERR, "", "a header line is longer than "
		    "%lld characters and has no white space to fold it at",
		    c->smtp.max_header_line_length);
		verdict_reply(v, SMTP_R_HEADER_LINE,
		    c->smtp.max_header_line_length);
	}
	return refused || too_long;
}

/*
 * Would the daemon take these recipients?  The RCPT rule it applies
 * (rcpt_rule.h), applied here before a maildrop file is written: what it
 * would refuse is refused now, with the exit code the refusal would
 * have given over the socket, never accepted and dropped later.
 * aliases: the daemon's, as far as this user may read them (NULL: none).
 */
static int
rcpts_pass(const struct conf *c, const struct cleanup *aliases,
    const struct job *j, struct verdict *v)
{
	const struct rcpt_rule rule = { aliases, c->smtp.max_recipients };
	char reply[RCPT_RULE_REPLY_MAX], **rcpts = NULL;
	size_t nrcpt = 0, i;
	int code = 250;

	for (i = 0; i < j->all.n && code == 250; i++)
		code = rcpt_rule_apply_addr(&rule, j->all.v[i], &rcpts,
		    &nrcpt, reply);
	if (code != 250)
		set_verdict(v, submit_exit_code(code, reply, 1), reply,
		    "<%s> refused: %s", j->all.v[i - 1], reply);
	for (i = 0; i < nrcpt; i++)
		free(rcpts[i]);
	free(rcpts);
	return code == 250 ? 0 : -1;
}

/*
 * The daemon's rules, as pickup will apply them: its cleanup (the
 * sender, the header, the aliases) loaded once, from the maps this user
 * may read.  1 with v set when the message is refused.
 */
static int
maildrop_rules_refuse(const struct conf *c, const struct job *j,
    struct verdict *v)
{
	char host[256], err[512];
	struct cleanup *cl;
	int refused;

	conf_hostname(c, host, sizeof(host));
	cl = cleanup_new_from_conf(c, host, err, sizeof(err));
	refused = maildrop_refuses(c, cl, j, v) || rcpts_pass(c, cl, j, v) ==
	    -1;
	if (cl != NULL)
		cleanup_free(cl);
	return refused;
}

/*
 * Into the maildrop, because the daemon did not take it now (why).
 * The file holds what the socket would have carried: the recipients
 * with -t's, the header with -t and -F applied (no "extract", no
 * "fullname"), so the daemon takes it in as it would have over SMTP.
 */
static void
via_maildrop(const struct conf *c, struct job *j, const char *why,
    struct verdict *v)
{
	char dir[PATH_MAX], name[MAILDROP_NAME_LEN];
	int e;

	if (maildrop_rules_refuse(c, j, v))
		return;
	(void)spool_layout_path(c->spool, SPOOL_DIR_MAILDROP, dir, sizeof(dir));
	if (maildrop_write(dir, j->sender, NULL, j->all.v, j->all.n, 0,
	    j->smtp_hdr, j->smtp_hlen, j->body, c->max_message_size, name,
	    sizeof(name)) == 0) {
		set_verdict(v, EX_OK, "", "sesrelayd cannot take it now "
		    "(%s); the message waits in %s/%s until it can", why, dir,
		    name);
		verdict_reply(v, "250 2.0.0 Ok: queued in the maildrop as %s",
		    name);
		return;
	}
	e = errno;
	if (j->body != NULL && ferror(j->body))
		set_verdict(v, EX_IOERR, "451 4.3.0 Error: cannot read the "
		    "message", "reading the message: %s", strerror(e));
	else if (e == EFBIG) {
		set_verdict(v, EX_DATAERR, "", "message larger than %lld "
		    "bytes", c->max_message_size);
		verdict_reply(v, SMTP_R_TOO_BIG, c->max_message_size);
	} else
		set_verdict(v, EX_TEMPFAIL, e == ENOSPC || e == EDQUOT ?
		    SMTP_R_NO_STORAGE : SMTP_R_QUEUE_WRITE, "message not "
		    "queued: sesrelayd cannot take it now (%s), and %s: %s",
		    why, dir, strerror(e));
}

/*
 * May the maildrop take a message the daemon did not?  When it did not
 * answer, or answered with a temporary refusal (421: every slot taken,
 * shutting down; 4xx), before any of the message text went out: what
 * was read is still there to write.  The maildrop applies the daemon's
 * own rules (rcpts_pass, spool_min_free), so nothing it would refuse
 * for good gets in this way.
 */
static int
daemon_deferred(const struct submit *s)
{
	if (s->in_text)
		return 0;
	return s->lost || (s->code >= 400 && s->code < 500);
}

/* Queue one message: the daemon, else the maildrop. */
static void
deliver(const struct conf *c, struct job *j, struct verdict *v)
{
	struct submit s;
	char why[sizeof(s.reply)];

	memset(v, 0, sizeof(*v));
	if (c->listen.unix_path[0] == '\0') {
		via_maildrop(c, j, "listen.unix is empty", v);
		return;
	}
	if (via_daemon(c, j, &s, v) == 0 || !daemon_deferred(&s)) {
		submit_close(&s);
		return;
	}
	snprintf(why, sizeof(why), "%.1000s", s.lost ? s.reply :
	    reply_text(s.reply));
	submit_close(&s);
	via_maildrop(c, j, why, v);
}

/* ---- the modes ---- */

static int
run_send(const struct conf *c, const struct sendmail_args *a)
{
	struct job j = { 0 };
	struct verdict v = { 0 };
	FILE *in = a->ignore_dots ? stdin : dotin_open(stdin);

	if (in == NULL) {
		fprintf(stderr, "%s: %s\n", prog, strerror(errno));
		return EX_OSERR;
	}
	j.sender = a->sender ? a->sender : "";
	j.fullname = a->fullname;
	j.extract = a->extract;
	j.body = in;
	for (size_t i = 0; i < a->nrcpt; i++)
		addrlist_parse(a->rcpts[i], &j.rcpts);
	if (job_prepare(&j, 1, &v) == 0)
		deliver(c, &j, &v);
	if (v.exit != EX_OK)
		fprintf(stderr, "%s: %s\n", prog, v.why);
	else if (a->verbose)
		fprintf(stderr, "%s: %s\n", prog, v.why);
	job_free(&j);
	if (in != stdin)
		fclose(in);
	return v.exit;
}

/* -bv: does the daemon take each recipient?  Nothing is sent. */
static int
run_verify(const struct conf *c, const struct sendmail_args *a)
{
	struct job j = { 0 };
	struct verdict v = { 0 };
	struct submit s;
	int rc = EX_OK;

	j.sender = a->sender ? a->sender : "";
	j.extract = a->extract;
	j.body = stdin;
	for (size_t i = 0; i < a->nrcpt; i++)
		addrlist_parse(a->rcpts[i], &j.rcpts);
	if (job_prepare(&j, a->extract, &v) == -1) {
		fprintf(stderr, "%s: %s\n", prog, v.why);
		job_free(&j);
		return v.exit;
	}
	if (submit_open(&s, c->listen.unix_path, GREETING_TIMEOUT,
	    REPLY_TIMEOUT) == -1 || submit_mail(&s,
	    *j.sender ? j.sender : user_name()) == -1) {
		fprintf(stderr, "%s: cannot verify: %s%s\n", prog, s.lost ?
		    "sesrelayd is not running: " : "", s.reply);
		rc = s.lost ? EX_UNAVAILABLE :
		    submit_exit_code(s.code, s.reply, 0);
		goto out;
	}
	for (size_t i = 0; i < j.all.n && !s.lost; i++) {
		if (submit_rcpt(&s, j.all.v[i]) == 0) {
			printf("%s... deliverable\n", j.all.v[i]);
			continue;
		}
		printf("%s... undeliverable: %s\n", j.all.v[i], s.reply);
		if (rc == EX_OK || s.code >= 500)
			rc = submit_exit_code(s.code, s.reply, 1);
	}
	if (!s.lost)
		submit_rset(&s);
out:
	submit_close(&s);
	job_free(&j);
	if (fflush(stdout) == EOF)
		return EX_IOERR;
	return rc;
}

/* -bp, mailq, -q: one request on the control socket, the answer printed. */
static int
run_control(const struct conf *c, const char *request)
{
	char err[512];
	int r, e;

	r = ctlclient_call(c->control.socket, request, stdout,
	    CONTROL_TIMEOUT, err, sizeof(err));
	e = errno;
	if (fflush(stdout) == EOF && r == 0) {
		fprintf(stderr, "%s: writing the answer: %s\n", prog,
		    strerror(errno));
		return EX_IOERR;
	}
	if (r == 0)
		return EX_OK;
	fprintf(stderr, "%s: %s\n", prog, err);
	if (r == 1)
		return ctlclient_exit_code(err);
	return e == EPROTO ? EX_SOFTWARE : EX_UNAVAILABLE;
}

/* ---- -bs: SMTP on standard input and output ---- */

/*
 * The verbs, their states and the replies are the daemon's
 * (smtp_vocab.h); what differs is the I/O (stdio) and DATA, which queues
 * each message as -bm does.
 */
struct bs {
	const struct conf		*c;
	const struct sendmail_args	*a;
	enum smtp_state			 state;	/* see bs_enter_state */
	char				 host[256];
	char				 sender[SMTP_ADDR_MAX];
	struct addrlist			 rcpts;
	int				 write_failed;
};

/* The only place the state changes; a new transaction starts clean. */
static void
bs_enter_state(struct bs *b, enum smtp_state state)
{
	if (state == SMTP_STATE_INIT || state == SMTP_STATE_HELO) {
		addrlist_free(&b->rcpts);
		b->sender[0] = '\0';
	}
	b->state = state;
}

/* The transaction is over: back to HELO (or INIT, before any HELO). */
static void
bs_reset(struct bs *b)
{
	bs_enter_state(b, b->state == SMTP_STATE_INIT ? SMTP_STATE_INIT :
	    SMTP_STATE_HELO);
}

static void bs_reply(struct bs *, const char *, ...)
    __attribute__((format(printf, 2, 3)));

/* One reply, flushed: the client may be waiting for it. */
static void
bs_reply(struct bs *b, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	fputs("\r\n", stdout);
	if (fflush(stdout) == EOF)
		b->write_failed = 1;
}

/* EHLO and HELO. */
static void
bs_ehlo(struct bs *b, const struct smtp_command *cmd)
{
	char text[SMTP_EHLO_MAX];

	bs_enter_state(b, SMTP_STATE_HELO);
	smtp_vocab_ehlo(cmd->verb == SMTP_VERB_EHLO, b->host,
	    b->c->max_message_size, text);
	bs_reply(b, "%s", text);
}

static void
bs_mail(struct bs *b, const struct smtp_command *cmd)
{
	char addr[SMTP_ADDR_MAX], text[SMTP_REPLY_MAX];
	struct smtp_mail_params p;

	if (!smtp_vocab_mail(cmd->arg, b->c->max_message_size, addr, &p,
	    text)) {
		bs_reply(b, "%s", text);
		return;
	}
	snprintf(b->sender, sizeof(b->sender), "%s", addr);
	bs_enter_state(b, SMTP_STATE_MAIL);
	bs_reply(b, SMTP_R_MAIL_OK);
}

/*
 * The daemon's RCPT rule (rcpt_rule.h); a local name is mapped by the
 * daemon (or by the maildrop's check) when the message is handed over.
 */
static void
bs_rcpt(struct bs *b, const struct smtp_command *cmd)
{
	const struct rcpt_rule rule = { NULL, b->c->smtp.max_recipients };
	char reply[RCPT_RULE_REPLY_MAX];

	if (rcpt_rule_apply(&rule, cmd->arg, &b->rcpts.v, &b->rcpts.n,
	    reply) == 250)
		bs_enter_state(b, SMTP_STATE_RCPT);
	bs_reply(b, "%s", reply);
}

/*
 * The message text, up to <CRLF>.<CRLF>, decoded into tmp.  A bare LF
 * ends a line as well: the client is a local program on a pipe, and the
 * message goes on re-encoded with CRLF, so nothing downstream can find a
 * different end.  Returns 0 with *size the message's, or -1 at the end
 * of the input.
 */
static long long bs_data_timeout = 600;	/* smtp.data_timeout */

static int
bs_read_data(FILE *tmp, long long max, long long *size)
{
	struct dot_decoder dec;
	char line[BS_DATA_CHUNK + 2], out[2 * (BS_DATA_CHUNK + 2) + 2];
	int done = 0, prev_cr = 0;

	dot_decoder_init(&dec);
	*size = 0;
	while (!done) {
		size_t n = 0, outlen;
		int c = EOF;

		alarm((unsigned)bs_data_timeout);
		while (n < BS_DATA_CHUNK && (c = getc_unlocked(stdin)) != EOF) {
			line[n++] = (char)c;
			if (c == '\n')
				break;
		}
		alarm(0);
		if (n == 0)
			return -1;
		if (line[n - 1] == '\n' && !(n >= 2 ? line[n - 2] == '\r' :
		    prev_cr)) {
			line[n - 1] = '\r';
			line[n++] = '\n';
		}
		prev_cr = line[n - 1] == '\r';
		dot_decode(&dec, line, n, out, &outlen, &done);
		*size += (long long)outlen;
		if (*size <= max)
			fwrite(out, 1, outlen, tmp);
	}
	return 0;
}

/* The message read into tmp: queue it as -bm does, and say how it went. */
static void
bs_queue(struct bs *b, FILE *tmp, long long size)
{
	struct job j = { 0 };
	struct verdict v = { 0 };

	if (size > b->c->max_message_size) {
		bs_reply(b, SMTP_R_TOO_BIG, b->c->max_message_size);
		return;
	}
	if (fflush(tmp) == EOF || ferror(tmp) || fseek(tmp, 0,
	    SEEK_SET) == -1) {
		if (errno == ENOSPC || errno == EDQUOT)
			bs_reply(b, SMTP_R_NO_STORAGE);
		else
			bs_reply(b, SMTP_R_QUEUE_WRITE);
		return;
	}
	j.sender = b->sender;
	j.fullname = b->a->fullname;
	j.body = tmp;
	for (size_t i = 0; i < b->rcpts.n; i++)
		addrlist_add(&j.rcpts, b->rcpts.v[i]);
	if (job_prepare(&j, 1, &v) == 0)
		deliver(b->c, &j, &v);
	bs_reply(b, "%s", v.reply);
	job_free(&j);
}

static void
bs_data(struct bs *b, const struct smtp_command *cmd)
{
	long long size;
	FILE *tmp;

	/* Unlinked at once, with the caller's rights: the message, spooled
	 * so that it can go to the daemon or to the maildrop alike. */
	if ((tmp = tmpfile()) == NULL) {
		bs_reply(b, SMTP_R_QUEUE_CREATE);
		return;
	}
	bs_enter_state(b, SMTP_STATE_DATA);
	bs_reply(b, SMTP_R_DATA_GO);
	if (bs_read_data(tmp, b->c->max_message_size, &size) == -1)
		bs_enter_state(b, SMTP_STATE_CLOSING);	/* the input ended */
	else {
		bs_queue(b, tmp, size);
		bs_reset(b);
	}
	fclose(tmp);
}

static void
bs_rset(struct bs *b, const struct smtp_command *cmd)
{
	bs_reset(b);
	bs_reply(b, SMTP_R_OK);
}

static void
bs_quit(struct bs *b, const struct smtp_command *cmd)
{
	bs_reply(b, SMTP_R_BYE);
	bs_enter_state(b, SMTP_STATE_CLOSING);
}

/* The handlers, by verb; smtp_vocab decides which may run when, and
 * answers NOOP, VRFY and HELP itself. */
static void (*const bs_handlers[])(struct bs *,
    const struct smtp_command *) = {
	[SMTP_VERB_EHLO] = bs_ehlo,
	[SMTP_VERB_HELO] = bs_ehlo,
	[SMTP_VERB_MAIL] = bs_mail,
	[SMTP_VERB_RCPT] = bs_rcpt,
	[SMTP_VERB_DATA] = bs_data,
	[SMTP_VERB_RSET] = bs_rset,
	[SMTP_VERB_QUIT] = bs_quit,
};

/*
 * One command line into line (without its line end, LF or CRLF).
 * Returns its length, -1 at the end of the input, -2 when it was too
 * long (the rest of it is read and dropped).
 */
static int
bs_read_line(char line[BS_LINE_MAX])
{
	size_t n = 0;
	int c, too_long = 0;

	while ((c = getc_unlocked(stdin)) != EOF && c != '\n') {
		if (n < BS_LINE_MAX - 1)
			line[n++] = (char)c;
		else
			too_long = 1;
	}
	if (c == EOF && n == 0 && !too_long)
		return -1;
	if (too_long)
		return -2;
	if (n > 0 && line[n - 1] == '\r')
		n--;
	line[n] = '\0';
	return (int)n;
}

static void
bs_command(struct bs *b, char *line, int n)
{
	struct smtp_command cmd;
	char text[SMTP_REPLY_MAX];
	const char *refusal;

	if (n == -2)
		bs_reply(b, SMTP_R_LINE_TOO_LONG, (size_t)BS_LINE_MAX);
	else if ((refusal = smtp_vocab_line_refusal(line, (size_t)n)) != NULL)
		bs_reply(b, "%s", refusal);
	else if (smtp_vocab_decide(line, b->state, "a pipe", &cmd, text) == 0)
		bs_reply(b, "%s", text);
	else if ((size_t)cmd.verb < sizeof(bs_handlers) /
	    sizeof(bs_handlers[0]) && bs_handlers[cmd.verb] != NULL)
		bs_handlers[cmd.verb](b, &cmd);
	else
		abort();	/* a verb smtp_vocab runs has a handler */
}

/*
 * -bs timeouts: a client silent for smtp.timeout seconds (between
 * commands) or smtp.data_timeout (in a message) is told so and the
 * program ends, as the daemon does; nothing of an unfinished message is
 * kept (its temporary file goes with the process).
 */
static char bs_timeout_reply[300];

static void
bs_timeout(int sig)
{
	ssize_t n = write(STDOUT_FILENO, bs_timeout_reply,
	    strlen(bs_timeout_reply));

	(void)n;
	_exit(EX_TEMPFAIL);
}

static int
run_smtp(const struct conf *c, const struct sendmail_args *a)
{
	struct bs b = { .c = c, .a = a, .state = SMTP_STATE_INIT };
	char line[BS_LINE_MAX];
	int n;

	conf_hostname(c, b.host, sizeof(b.host));
	bs_data_timeout = c->smtp.data_timeout;
	snprintf(bs_timeout_reply, sizeof(bs_timeout_reply), SMTP_R_TIMEOUT
	    "\r\n", b.host);
	signal(SIGALRM, bs_timeout);
	bs_reply(&b, SMTP_R_GREETING, b.host);
	for (;;) {
		if (b.state == SMTP_STATE_CLOSING || b.write_failed)
			break;
		alarm((unsigned)c->smtp.timeout);
		n = bs_read_line(line);
		alarm(0);
		if (n == -1)
			break;
		bs_command(&b, line, n);
	}
	addrlist_free(&b.rcpts);
	if (b.write_failed) {
		fprintf(stderr, "%s: -bs: writing a reply: %s\n", prog,
		    strerror(errno));
		return EX_IOERR;
	}
	return EX_OK;
}

/* ---- main ---- */

static int
usage(const char *error)
{
	fprintf(stderr, "%s: %s\n"
	    "usage: %s [-t] [-i] [-v] [-f sender] [-F name] [-C config] "
	    "[--] [recipient ...]\n"
	    "       %s -bs | -bp | -q | -bv recipient ... | -bi | --version\n",
	    prog, error, prog, prog);
	return EX_USAGE;
}

static struct conf *
load_conf(const struct sendmail_args *a)
{
	char err[CONF_ERRLEN];
	struct conf *c;

	if ((c = conf_load(conf_path(a->config), err, sizeof(err))) == NULL)
		fprintf(stderr, "%s: %s\n", prog, err);
	return c;
}

#ifdef __SANITIZE_ADDRESS__
/*
 * Test builds only: LeakSanitizer cannot inspect a set-group-ID process
 * (it is not dumpable, and ignores ASAN_OPTIONS), so it is off there.
 */
const char *__asan_default_options(void);
const char *
__asan_default_options(void)
{
	return getegid() != getgid() ? "detect_leaks=0" : "";
}
#endif

int
main(int argc, char *argv[])
{
	struct sendmail_args a;
	struct conf *c;
	int rc;

	if (std_fds_open() == -1)
		return EX_OSERR;
	if (argc > 0 && argv[0] != NULL) {
		prog = strrchr(argv[0], '/');
		prog = prog ? prog + 1 : argv[0];
	}
	if (priv_init() == -1) {
		fprintf(stderr, "%s: cannot switch the maildrop group off: "
		    "%s\n", prog, strerror(errno));
		return EX_OSERR;
	}
	/* A closed pipe is an error to report; a file too large too. */
	signal(SIGPIPE, SIG_IGN);
	signal(SIGXFSZ, SIG_IGN);
	if (sendmail_args_parse(argc, argv, &a) == -1)
		return usage(a.error);
	/* Only these two modes can write a maildrop file. */
	if (a.mode != SENDMAIL_MODE_SEND && a.mode != SENDMAIL_MODE_SMTP &&
	    priv_drop() == -1) {
		fprintf(stderr, "%s: cannot give up the maildrop group: %s\n",
		    prog, strerror(errno));
		return EX_OSERR;
	}
	switch (a.mode) {
	case SENDMAIL_MODE_VERSION:
		printf("sesrelay-sendmail %s\n", PACKAGE_VERSION);
		return EX_OK;
	case SENDMAIL_MODE_NEWALIASES:
		printf("%s: sesrelay uses no aliases database (aliases are "
		    "rewrite.aliases in sesrelay.conf, read by sesrelayd); "
		    "nothing to do\n", prog);
		return EX_OK;
	default:
		break;
	}
	if ((c = load_conf(&a)) == NULL)
		return EX_CONFIG;
	maildrop_set_privilege(priv_raise, priv_lower);
	maildrop_set_min_free(c->spool_min_free, c->spool_min_free_inodes);
	switch (a.mode) {
	case SENDMAIL_MODE_MAILQ:
		rc = run_control(c, "mailq");
		break;
	case SENDMAIL_MODE_FLUSH:
		rc = run_control(c, "flush");
		break;
	case SENDMAIL_MODE_VERIFY:
		rc = run_verify(c, &a);
		break;
	case SENDMAIL_MODE_SMTP:
		rc = run_smtp(c, &a);
		break;
	default:
		rc = run_send(c, &a);
		break;
	}
	conf_free(c);
	return rc;
}
