/*
 * pickup.c: taking in what sesrelay-sendmail left in the maildrop.
 *
 * Every file is hostile until proven otherwise: opened O_NOFOLLOW,
 * only a regular file with one link, no bigger than max_message_size
 * plus its envelope, parsed strictly (maildrop_parse); the sender is the
 * file's owner unless that user is trusted.  Then the rules of the other
 * way in, by the same code: the header read as sesrelay-sendmail reads
 * it (sendmail_args_read_header), -t and -F applied as it applies them
 * (sendmail_args_header), every recipient through the SMTP server's
 * RCPT rule (rcpt_rule.h), the header split and cleaned as the server
 * does what DATA carried (cleanup_text_start).  What does
 * not pass is moved to corrupt/ and logged, once, never deleted, never
 * fatal, and the scan goes on with the other files.  One file is
 * committed at a time; the file is removed only after its
 * message is durable in the spool (a crash in between takes it in twice,
 * never loses it).  A ".tmp" file whose writer died (its flock can be
 * taken) is removed when it is seen.
 */
#include "config.h"

#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/stat.h>

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "addrlist.h"
#include "cleanup.h"
#include "log.h"
#include "maildrop.h"
#include "pickup.h"
#include "rcpt_rule.h"
#include "sendmail_args.h"
#include "spool.h"
#include "xalloc.h"

#define HEAD_MAX	(4 * 1024 * 1024)	/* the envelope must fit */
#define SCAN_SECONDS	60
#define STALE_TMP	86400		/* an abandoned "<name>.tmp" */

struct pickup {
	struct event_base	*base;
	struct spool		*spool;
	struct pickup_config	 conf;
	int			 dirfd, inofd;
	struct event		*ino_ev, *timer_ev;
	int			 busy, rescan, stopped;
	char			 current[64];
	/* the message being committed */
	char			 id[SPOOL_ID_LEN + 1];
	char			*sender;
	char			**rcpts;
	size_t			 nrcpt;
	off_t			 size;
	uid_t			 uid;
	char			 refusal[RCPT_RULE_REPLY_MAX];
};

static void scan(struct pickup *);

/*
 * Refused: kept in corrupt/ as maildrop-<name>, logged (spool.h).  One
 * that cannot be moved stays, and the scan goes on with the others.
 */
static void
quarantine(struct pickup *p, const char *name, const char *why)
{
	(void)spool_quarantine(p->spool, p->dirfd, SPOOL_DIR_MAILDROP, name,
	    why);
}

/* Append LF-or-CRLF text to buf as CRLF lines. */
static void
crlf(const char *in, size_t len, int *prev_cr, char **out, size_t *olen,
    size_t *cap)
{
	if (*olen + 2 * len + 2 > *cap) {
		*cap = (*olen + 2 * len + 2) * 2;
		if ((*out = realloc(*out, *cap)) == NULL)
			abort();
	}
	for (size_t i = 0; i < len; i++) {
		if (in[i] == '\n' && !*prev_cr)
			(*out)[(*olen)++] = '\r';
		(*out)[(*olen)++] = in[i];
		*prev_cr = in[i] == '\r';
	}
}

static int
trusted(const struct pickup *p, const char *user)
{
	for (size_t i = 0; i < p->conf.ntrusted; i++)
		if (strcmp(p->conf.trusted[i], user) == 0)
			return 1;
	return 0;
}

static void
free_current(struct pickup *p)
{
	for (size_t i = 0; i < p->nrcpt; i++)
		free(p->rcpts[i]);
	free(p->rcpts);
	free(p->sender);
	p->rcpts = NULL;
	p->sender = NULL;
	p->nrcpt = 0;
}

static void
committed(void *arg, int status)
{
	struct pickup *p = arg;

	p->busy = 0;
	if (status != 0) {
		log_event(LOG_WARNING, "-", "pickup.retry",
		    "file=%s op=queue error=%s", log_q(p->current),
		    log_q(strerror(status)));
		free_current(p);
		return;		/* the timer tries again */
	}
	if (unlinkat(p->dirfd, p->current, 0) == -1)
		log_event(LOG_WARNING | LOG_ERRNO, "-", "pickup.remove_failed",
		    "file=%s", log_q(p->current));
	log_event(LOG_INFO, p->id, "pickup.accepted",
	    "from=%s nrcpt=%zu size=%lld uid=%u file=%s", log_qa(p->sender),
	    p->nrcpt, (long long)p->size, (unsigned)p->uid, log_q(p->current));
	p->conf.accepted(p->conf.arg, spool_envelope_new(p->id, p->sender,
	    p->rcpts, p->nrcpt, p->size));
	free_current(p);
	scan(p);
}

/*
 * An error that says nothing about the file (as spool.c's index judges
 * its files): the file stays, to be taken when the daemon has the
 * descriptors or the memory again; never quarantined for it.
 */
static int
error_is_transient(int err)
{
	return err == EMFILE || err == ENFILE || err == ENOMEM ||
	    err == EINTR || err == EAGAIN;
}

/*
 * Open name as hostile input: -1 with *why (refused), or with *why NULL
 * and errno (ENOENT: gone; else a transient error: try later).
 */
static int
open_drop(struct pickup *p, const char *name, struct stat *st,
    const char **why)
{
	int fd = openat(p->dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK |
	    O_CLOEXEC);

	*why = NULL;
	if (fd == -1) {
		if (errno != ENOENT && !error_is_transient(errno))
			*why = strerror(errno);
		return -1;
	}
	if (fstat(fd, st) == -1 || !S_ISREG(st->st_mode) ||
	    st->st_nlink != 1)
		*why = "not a regular file with one link";
	else if (st->st_size > p->conf.max_message_size + HEAD_MAX)
		*why = "larger than max_message_size";
	if (*why != NULL) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Who sent it: the owner of the file, as the kernel says. */
static void
sender_of(struct pickup *p, const struct stat *st,
    struct maildrop_envelope *env, char *user, size_t len)
{
	struct passwd *pw;

	p->uid = st->st_uid;
	if ((pw = getpwuid(st->st_uid)) != NULL)
		snprintf(user, len, "%s", pw->pw_name);
	else
		snprintf(user, len, "uid%u", (unsigned)st->st_uid);
	if (env->from[0] != '\0' && !trusted(p, user)) {
		log_event(LOG_INFO, "-", "pickup.sender_replaced",
		    "from=%s to=%s user=%s msg=\"not in "
		    "sendmail.trusted_users\"", log_qa(env->from),
		    log_qa(user), log_q(user));
		env->from[0] = '\0';
	}
	p->sender = xstrdup(env->from[0] ? env->from : user);
}

/*
 * The header and envelope, by the rules of the other path: the header
 * read as sesrelay-sendmail reads it (sendmail_args_read_header), -t and
 * -F applied as it applies them (sendmail_args_header), every recipient
 * through the RCPT rule (rcpt_rule.h).  Sets p->rcpts, *smtp (the text's
 * start as it would have gone over SMTP, malloc'd) and *body_off (where
 * the rest of the file starts).  0; 1 with *why when it is refused; -1
 * when it cannot be read now (logged; the file stays).
 */
static int
envelope_and_header(struct pickup *p, const char *name, int fd,
    const struct maildrop_envelope *env, char **smtp, size_t *smtplen,
    off_t *body_off, const char **whyp)
{
	const struct rcpt_rule rule = { p->conf.cleanup,
	    p->conf.max_recipients };
	struct sendmail_header h = { NULL, 0, 0 };
	struct addrlist all = { NULL, 0 };
	const char *why = NULL;
	FILE *fp;
	int dfd = dup(fd);

	if (dfd == -1 || (fp = fdopen(dfd, "r")) == NULL) {
		log_event(LOG_WARNING | LOG_ERRNO, "-", "pickup.retry",
		    "file=%s op=read", log_q(name));
		if (dfd != -1)
			close(dfd);
		return -1;
	}
	if (fseeko(fp, (off_t)env->body_off, SEEK_SET) == -1 ||
	    sendmail_args_read_header(fp, &h) == -1) {
		if (errno != EFBIG && error_is_transient(errno)) {
			log_event(LOG_WARNING | LOG_ERRNO, "-", "pickup.retry",
			    "file=%s op=read", log_q(name));
			fclose(fp);
			free(h.buf);
			return -1;
		}
		why = errno == EFBIG ? "header too large" : "cannot be read";
	} else if (memchr(h.buf, '\0', h.len) != NULL)
		why = "NUL characters in the message";
	fclose(fp);
	for (size_t i = 0; why == NULL && i < env->nrcpt; i++)
		addrlist_add(&all, env->rcpts[i]);
	if (why == NULL && sendmail_args_header(env->extract, env->fullname,
	    p->sender, h.buf, h.fields, h.len, &all, smtp, smtplen) == -1)
		why = "-t, but the header does not parse";
	for (size_t i = 0; why == NULL && i < all.n; i++)
		if (rcpt_rule_apply_addr(&rule, all.v[i], &p->rcpts,
		    &p->nrcpt, p->refusal) != 250)
			why = p->refusal;
	if (why == NULL && p->nrcpt == 0)
		why = "no recipients";
	*body_off = (off_t)(env->body_off + h.len);
	addrlist_free(&all);
	free(h.buf);
	*whyp = why;
	return why == NULL ? 0 : 1;
}

/*
 * The text's start as the SMTP server files what DATA carried
 * (cleanup_text_start), written to w: 0, -1 on a write error (logged),
 * or 1 with *why when the header is refused as the SMTP path refuses it
 * (a line too long even once folded: its 554 5.6.0; sendmail checks it
 * before writing the file).
 */
static int
write_start(struct pickup *p, struct spool_writer *w, const char *m,
    size_t mlen, const char **why)
{
	size_t outlen;
	char *out;
	int rc = 0;

	if (cleanup_text_start(p->conf.cleanup, m, mlen, p->sender, time(NULL),
	    &out, &outlen)) {
		*why = "a header line too long, with no white space to fold "
		    "it at (smtp.max_header_line_length)";
		rc = 1;
	} else if (spool_writer_write(w, out, outlen) == -1) {
		log_event(LOG_WARNING | LOG_ERRNO, "-", "pickup.retry",
		    "file=%s op=write", log_q(p->current));
		rc = -1;
	}
	free(out);
	return rc;
}

/*
 * The rest of the file from off, as CRLF lines (prev_cr: the text
 * before ended in CR; last: its last byte).  0; 1 with *why when the
 * message is refused; -1 when the file cannot be read or the queue file
 * written (logged; try later).
 */
static int
write_body(struct pickup *p, struct spool_writer *w, int fd, off_t off,
    int prev_cr, char last, const char **why)
{
	char body[65536], *out = NULL;
	size_t bcap = 0, blen;
	ssize_t n = 0;
	int wrc = 0;

	while (wrc == 0 && (n = pread(fd, body, sizeof(body), off)) > 0) {
		off += n;
		if (memchr(body, '\0', (size_t)n) != NULL) {
			*why = "NUL characters in the message";
			break;
		}
		blen = 0;
		crlf(body, (size_t)n, &prev_cr, &out, &blen, &bcap);
		last = out[blen - 1];
		wrc = spool_writer_write(w, out, blen);
		if (spool_writer_size(w) > p->conf.max_message_size) {
			*why = "larger than max_message_size";
			break;
		}
	}
	free(out);
	if (*why != NULL)
		return 1;
	if (wrc == -1 || n < 0) {
		log_event(LOG_WARNING | LOG_ERRNO, "-", "pickup.retry",
		    "file=%s op=%s", log_q(p->current),
		    wrc == -1 ? "write" : "read");
		return -1;
	}
	if (last != '\n')
		spool_writer_write(w, "\r\n", 2);	/* no final newline */
	/* Also a message that is all header, which the loop never saw. */
	if (spool_writer_size(w) > p->conf.max_message_size) {
		*why = "larger than max_message_size";
		return 1;
	}
	return 0;
}

/*
 * Queue what envelope_and_header prepared: the spool file, its text,
 * the commit.  1 when the commit started; 0 with *why when the message
 * is refused; -1 when it cannot be done now (the file stays).
 */
static int
queue(struct pickup *p, const char *name, int fd, const char *smtp,
    size_t smtplen, off_t body_off, const char **why)
{
	struct spool_writer *w;
	char *m = NULL;
	size_t mlen = 0, mcap = 0;
	int prev_cr = 0, r;

	{
		/* The envelope sender after rewriting. */
		char *s = xstrdup(cleanup_sender(p->conf.cleanup, p->sender));

		free(p->sender);
		p->sender = s;
	}
	w = spool_writer_new(p->spool, p->sender, p->rcpts, p->nrcpt, p->id);
	if (w == NULL) {
		if (errno == EINVAL) {
			*why = "its envelope cannot be queued";
			return 0;
		}
		log_event(LOG_WARNING | LOG_ERRNO, "-", "pickup.retry",
		    "file=%s op=start", log_q(name));
		return -1;
	}
	snprintf(p->current, sizeof(p->current), "%s", name);
	crlf(smtp, smtplen, &prev_cr, &m, &mlen, &mcap);
	r = write_start(p, w, m, mlen, why);
	if (r == 0)
		r = write_body(p, w, fd, body_off, prev_cr, mlen > 0 ?
		    m[mlen - 1] : '\n', why);
	free(m);
	if (r != 0) {
		spool_writer_abort(w);
		return r == 1 ? 0 : -1;
	}
	p->size = spool_writer_size(w);
	p->busy = 1;
	spool_writer_commit(w, committed, p);	/* reports write errors */
	return 1;
}

/*
 * A sender SES can never accept (cleanup_sender_is_refused): in a file
 * written by a sendmail older than that rule, or while rewrite.sender
 * was set.  SES would refuse it and nothing could bounce it, so it is
 * kept in corrupt/, loudly, for the operator to set rewrite.sender and
 * move it back.  NULL, or why (in buf).
 */
static const char *
sender_refused(const struct pickup *p, char *buf, size_t len)
{
	if (!cleanup_sender_is_refused(p->conf.cleanup, p->sender))
		return NULL;
	snprintf(buf, len, "sender <%.300s>: %s", p->sender,
	    CLEANUP_SENDER_REFUSED);
	return buf;
}

/*
 * Take in one file.  Returns 1 when a commit started, 0 when the file
 * was dealt with (refused: moved to corrupt/, or gone), -1 when it could
 * not be taken now (it stays, logged; the scan goes on with the others).
 * Only what the file itself holds gets it refused, never a transient
 * error of ours (descriptors, memory, a full spool).
 */
static int
take(struct pickup *p, const char *name)
{
	struct maildrop_envelope env;
	struct stat st;
	char *buf = NULL, *smtp = NULL, user[64], whybuf[512];
	size_t len, smtplen = 0;
	off_t body_off = 0;
	const char *why = NULL;
	ssize_t n;
	int fd, rc = 0;

	memset(&env, 0, sizeof(env));
	if ((fd = open_drop(p, name, &st, &why)) == -1) {
		if (why != NULL)
			quarantine(p, name, why);
		else if (errno != ENOENT) {
			log_event(LOG_WARNING | LOG_ERRNO, "-", "pickup.retry",
			    "file=%s op=open", log_q(name));
			return -1;
		}
		return 0;
	}
	len = (size_t)st.st_size < HEAD_MAX ? (size_t)st.st_size : HEAD_MAX;
	if ((buf = malloc(len + 1)) == NULL)
		abort();
	if ((n = pread(fd, buf, len, 0)) == -1 && error_is_transient(errno)) {
		log_event(LOG_WARNING | LOG_ERRNO, "-", "pickup.retry",
		    "file=%s op=read", log_q(name));
		rc = -1;
	} else if (n != (ssize_t)len)
		why = "cannot be read";
	else if (maildrop_parse(buf, len, &env) == -1)
		why = "its envelope does not parse";
	if (rc == 0 && why == NULL) {
		sender_of(p, &st, &env, user, sizeof(user));
		why = sender_refused(p, whybuf, sizeof(whybuf));
	}
	if (rc == 0 && why == NULL)
		rc = envelope_and_header(p, name, fd, &env, &smtp, &smtplen,
		    &body_off, &why) == -1 ? -1 : 0;
	if (rc == 0 && why == NULL)
		rc = queue(p, name, fd, smtp, smtplen, body_off, &why);
	if (why != NULL)
		quarantine(p, name, why);
	if (rc != 1)
		free_current(p);
	close(fd);
	maildrop_envelope_free(&env);
	free(buf);
	free(smtp);
	return rc;
}

/*
 * Is the ".tmp" file behind fd one whose writer died?  Its writer locks
 * it before writing a byte and holds the lock until it exits (maildrop.h),
 * so a file with content whose lock we can take has no writer left.  An
 * empty one may be a writer's between its creation and its lock: only
 * once it is STALE_TMP old, as is one that cannot be locked at all.
 */
static int
tmp_is_abandoned(int fd)
{
	struct stat st;
	int locked = flock(fd, LOCK_EX | LOCK_NB) == 0;

	if (fstat(fd, &st) == -1)
		return 0;
	if (locked && st.st_size > 0)
		return 1;
	return st.st_mtime < time(NULL) - STALE_TMP &&
	    (locked || errno != EWOULDBLOCK);
}

/*
 * A half-written file whose writer died (a sendmail killed mid-message):
 * removed as soon as it is seen, so that no one fills the spool's file
 * system with them.  One still being written is never touched.
 */
static void
remove_if_abandoned(struct pickup *p, const char *name)
{
	struct stat st;
	int fd = openat(p->dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK |
	    O_CLOEXEC);

	if (fd == -1) {
		/* Unreadable: by its age alone, as before there were locks. */
		if (fstatat(p->dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
		    st.st_mtime < time(NULL) - STALE_TMP &&
		    unlinkat(p->dirfd, name, 0) == 0)
			log_event(LOG_INFO, "-", "pickup.abandoned_removed",
			    "file=%s", log_q(name));
		return;
	}
	/* Removed while we hold the lock: no writer can have it back. */
	if (tmp_is_abandoned(fd) && fstat(fd, &st) == 0 &&
	    unlinkat(p->dirfd, name, 0) == 0)
		log_event(LOG_INFO, "-", "pickup.abandoned_removed",
		    "file=%s size=%lld uid=%u", log_q(name),
		    (long long)st.st_size, (unsigned)st.st_uid);
	close(fd);
}

static void
scan(struct pickup *p)
{
	DIR *d;
	struct dirent *de;
	int dfd;

	if (p->busy || p->stopped) {
		p->rescan = 1;
		return;
	}
	p->rescan = 0;
	if ((dfd = dup(p->dirfd)) == -1 || (d = fdopendir(dfd)) == NULL) {
		if (dfd != -1)
			close(dfd);
		log_event(LOG_WARNING | LOG_ERRNO, "-", "pickup.scan_failed",
		    "dir=maildrop");
		return;
	}
	rewinddir(d);
	while ((de = readdir(d)) != NULL) {
		if (maildrop_name_is_valid(de->d_name)) {
			int r = take(p, de->d_name);

			if (r == 1)
				break;	/* committing: on when it is done */
			continue;	/* taken, refused, or later */
		}
		if (maildrop_name_is_tmp(de->d_name))
			remove_if_abandoned(p, de->d_name);
	}
	closedir(d);
}

void
pickup_scan(struct pickup *p)
{
	scan(p);
}

static void
ino_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct pickup *p = arg;
	char buf[4096];

	while (read(fd, buf, sizeof(buf)) > 0)
		;
	scan(p);
}

static void
timer_cb(evutil_socket_t fd, short ev, void *arg)
{
	scan(arg);
}

/*
 * Open maildrop/, made (the daemon's alone) when missing: it must be
 * ours.  0, or -1 with err.
 */
static int
open_maildrop(struct pickup *p, int top, char *err, size_t errlen)
{
	char path[PATH_MAX];
	struct stat st;

	spool_layout_path(p->conf.spool_dir, SPOOL_DIR_MAILDROP, path,
	    sizeof(path));
	if (spool_layout_make(top, SPOOL_DIR_MAILDROP, (gid_t)-1) == -1 ||
	    (p->dirfd = spool_layout_open(top, SPOOL_DIR_MAILDROP)) == -1 ||
	    fstat(p->dirfd, &st) == -1) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (st.st_uid != geteuid()) {
		snprintf(err, errlen, "%s: owned by uid %u, not by this "
		    "daemon's uid %u; refusing to use it", path,
		    (unsigned)st.st_uid, (unsigned)geteuid());
		return -1;
	}
	return 0;
}

/*
 * The group and modes of spool_layout.h for the spool and maildrop/:
 * with the drop group, its members (sesrelay-sendmail, setgid) may
 * enter the spool and drop files, nothing more; without it only we
 * can.  (Set up by root before it became us, or by tmpfiles.d; as a
 * plain user we can only check, and say what is wrong.)  0, or -1 with
 * err when maildrop/ cannot be closed to others.
 */
static int
set_drop_modes(struct pickup *p, int top, char *err, size_t errlen)
{
	const char *spool = p->conf.spool_dir;
	gid_t drop = spool_layout_drop_gid();

	if (drop == (gid_t)-1) {
		if (spool_layout_apply(p->dirfd, SPOOL_DIR_MAILDROP, (uid_t)-1,
		    (gid_t)-1, drop) == -1) {
			snprintf(err, errlen, "%s/%s: %s", spool,
			    spool_layout[SPOOL_DIR_MAILDROP].name,
			    strerror(errno));
			return -1;
		}
		(void)spool_layout_apply(top, SPOOL_DIR_TOP, (uid_t)-1,
		    (gid_t)-1, drop);
		log_event(LOG_INFO, "-", "pickup.no_group",
		    "group=%s msg=\"only root can queue mail while sesrelayd "
		    "is down\"", SPOOL_DROP_GROUP);
		return 0;
	}
	if (spool_layout_apply(p->dirfd, SPOOL_DIR_MAILDROP, (uid_t)-1,
	    (gid_t)-1, drop) == -1)
		log_event(LOG_WARNING | LOG_ERRNO, "-", "pickup.bad_mode",
		    "spool=%s dir=%s group=%s mode=%04o msg=\"local users "
		    "cannot queue mail while sesrelayd is down\"", log_q(spool),
		    spool_layout[SPOOL_DIR_MAILDROP].name, SPOOL_DROP_GROUP,
		    (unsigned)spool_layout[SPOOL_DIR_MAILDROP].drop_mode);
	if (spool_layout_apply(top, SPOOL_DIR_TOP, (uid_t)-1, (gid_t)-1,
	    drop) == -1)
		log_event(LOG_WARNING | LOG_ERRNO, "-", "pickup.bad_mode",
		    "spool=%s group=%s mode=%04o", log_q(spool),
		    SPOOL_DROP_GROUP,
		    (unsigned)spool_layout[SPOOL_DIR_TOP].drop_mode);
	return 0;
}

/* Watch maildrop/ for new files (inotify), and look every minute. */
static void
watch(struct pickup *p)
{
	struct timeval tv = { SCAN_SECONDS, 0 };
	char path[PATH_MAX];

	spool_layout_path(p->conf.spool_dir, SPOOL_DIR_MAILDROP, path,
	    sizeof(path));
	if ((p->inofd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC)) != -1 &&
	    inotify_add_watch(p->inofd, path, IN_MOVED_TO | IN_CLOSE_WRITE) !=
	    -1) {
		p->ino_ev = event_new(p->base, p->inofd, EV_READ | EV_PERSIST,
		    ino_cb, p);
		event_add(p->ino_ev, NULL);
	} else
		log_event(LOG_WARNING | LOG_ERRNO, "-", "pickup.inotify_failed",
		    "dir=%s scan_every=%d", log_q(path), SCAN_SECONDS);
	p->timer_ev = event_new(p->base, -1, EV_PERSIST, timer_cb, p);
	event_add(p->timer_ev, &tv);
}

struct pickup *
pickup_new(struct event_base *base, struct spool *spool,
    const struct pickup_config *c, char *err, size_t errlen)
{
	struct pickup *p = calloc(1, sizeof(*p));
	int top;

	if (p == NULL)
		abort();
	p->base = base;
	p->spool = spool;
	p->conf = *c;
	p->dirfd = p->inofd = -1;
	if ((top = open(c->spool_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) ==
	    -1) {
		snprintf(err, errlen, "%s: %s", c->spool_dir, strerror(errno));
		pickup_free(p);
		return NULL;
	}
	if (open_maildrop(p, top, err, errlen) == -1 ||
	    set_drop_modes(p, top, err, errlen) == -1) {
		close(top);
		pickup_free(p);
		return NULL;
	}
	close(top);
	watch(p);
	return p;
}

void
pickup_configure(struct pickup *p, const struct pickup_config *c)
{
	p->conf = *c;
}

void
pickup_stop(struct pickup *p)
{
	if (p != NULL)
		p->stopped = 1;
}

void
pickup_free(struct pickup *p)
{
	if (p == NULL)
		return;
	if (p->ino_ev != NULL)
		event_free(p->ino_ev);
	if (p->timer_ev != NULL)
		event_free(p->timer_ev);
	if (p->inofd != -1)
		close(p->inofd);
	if (p->dirfd != -1)
		close(p->dirfd);
	free_current(p);
	free(p);
}
