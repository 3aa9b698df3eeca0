/*
 * pickup.c: taking in what sesrelay-sendmail left in the maildrop.
 *
 * Every file is hostile until proven otherwise: opened O_NOFOLLOW,
 * only a regular file with one link, no bigger than max_message_size
 * plus its envelope, parsed strictly (maildrop_parse); the sender is the
 * file's owner unless that user is trusted; what does not pass is moved
 * to corrupt/ and logged, never deleted, never fatal.  One file is
 * committed at a time; the file is removed only after its message is
 * durable in the spool (a crash in between takes it in twice, never
 * loses it).
 */
#include "config.h"

#include <sys/inotify.h>
#include <sys/stat.h>

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
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
#include "spool.h"
#include "xalloc.h"

#define HEAD_MAX	(1024 * 1024)	/* envelope + header must fit */
#define SCAN_SECONDS	60
#define STALE_TMP	86400		/* an abandoned "<name>.tmp" */

struct pickup {
	struct event_base	*base;
	struct spool		*spool;
	struct pickup_config	 conf;
	int			 dirfd, corruptfd, inofd;
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
};

static void scan(struct pickup *);

static int
is_drop_name(const char *n)
{
	size_t len = strlen(n);

	return len == 16 && strspn(n, "0123456789abcdef") == len;
}

static void
quarantine(struct pickup *p, const char *name, const char *why)
{
	char dest[80];

	snprintf(dest, sizeof(dest), "maildrop-%s", name);
	if (renameat(p->dirfd, name, p->corruptfd, dest) == -1) {
		log_warn("- pickup %s: %s; cannot move it to corrupt/", name,
		    why);
		/* Never loop on it: leave it, and try others. */
		return;
	}
	log_warnx("- pickup maildrop file %s refused: %s; moved to "
	    "corrupt/%s", name, why, dest);
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

/* The end of the header in msg[0..len): after its blank line, or -1. */
static ssize_t
header_end(const char *msg, size_t len)
{
	size_t i = 0;

	while (i < len) {
		const char *nl = memchr(msg + i, '\n', len - i);
		size_t l;

		if (nl == NULL)
			return -1;
		l = (size_t)(nl - (msg + i));
		if (l == 0 || (l == 1 && msg[i] == '\r'))
			return (ssize_t)(i + l + 1);
		i += l + 1;
	}
	return -1;
}

static int
has_from(const char *hdr, size_t len)
{
	const char *p = hdr, *end = hdr + len;

	while (p < end) {
		if (end - p >= 5 && strncasecmp(p, "From:", 5) == 0)
			return 1;
		if ((p = memchr(p, '\n', (size_t)(end - p))) == NULL)
			return 0;
		p++;
	}
	return 0;
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
add_rcpt(struct pickup *p, const char *addr)
{
	struct addrlist to = { NULL, 0 };

	cleanup_recipient(p->conf.cleanup, addr, &to);
	for (size_t i = 0; i < to.n; i++) {
		size_t j;

		for (j = 0; j < p->nrcpt; j++)
			if (strcasecmp(p->rcpts[j], to.v[i]) == 0)
				break;
		if (j < p->nrcpt ||
		    p->nrcpt >= (size_t)p->conf.max_recipients)
			continue;
		if ((p->rcpts = realloc(p->rcpts, (p->nrcpt + 1) *
		    sizeof(*p->rcpts))) == NULL)
			abort();
		p->rcpts[p->nrcpt++] = to.v[i];
		to.v[i] = NULL;
	}
	addrlist_free(&to);
}

static void
committed(void *arg, int status)
{
	struct pickup *p = arg;

	p->busy = 0;
	if (status != 0) {
		log_warnx("- pickup %s: cannot queue it: %s; trying again "
		    "later", p->current, strerror(status));
		free_current(p);
		return;		/* the timer tries again */
	}
	if (unlinkat(p->dirfd, p->current, 0) == -1)
		log_warn("- pickup cannot remove maildrop/%s", p->current);
	log_info("%s pickup accepted from=<%s> nrcpt=%zu size=%lld uid=%u "
	    "maildrop=%s", p->id, p->sender, p->nrcpt, (long long)p->size,
	    (unsigned)p->uid, p->current);
	p->conf.accepted(p->conf.arg, spool_envelope_new(p->id, p->sender,
	    p->rcpts, p->nrcpt, p->size));
	free_current(p);
	scan(p);
}

/*
 * Take in one file.  Returns 1 when a commit started, 0 when the file
 * was dealt with (refused), -1 to stop scanning for now.
 */
static int
take(struct pickup *p, const char *name)
{
	struct maildrop_envelope env;
	struct spool_writer *w;
	struct passwd *pw;
	struct stat st;
	char *buf = NULL, *hdr = NULL, *out = NULL, *clean = NULL, user[64];
	char *kept = NULL, body[65536], whybuf[512];
	size_t len, hlen = 0, hcap = 0, outlen, keptlen, bcap = 0, blen;
	ssize_t n, hend;
	int fd, prev_cr = 0, rc = 0;
	char last;
	const char *why = NULL;

	memset(&env, 0, sizeof(env));
	fd = openat(p->dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK |
	    O_CLOEXEC);
	if (fd == -1) {
		if (errno == ENOENT)
			return 0;
		quarantine(p, name, strerror(errno));
		return 0;
	}
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode) || st.st_nlink != 1) {
		why = "not a regular file with one link";
		goto refuse;
	}
	if (st.st_size > p->conf.max_message_size + HEAD_MAX) {
		why = "larger than max_message_size";
		goto refuse;
	}
	len = (size_t)st.st_size < HEAD_MAX ? (size_t)st.st_size : HEAD_MAX;
	if ((buf = malloc(len + 1)) == NULL)
		abort();
	if ((n = pread(fd, buf, len, 0)) != (ssize_t)len) {
		why = "cannot be read";
		goto refuse;
	}
	buf[len] = '\0';
	if (maildrop_parse(buf, len, &env) == -1) {
		why = "its envelope does not parse";
		goto refuse;
	}
	if (memchr(buf + env.body_off, '\0', len - env.body_off) != NULL) {
		why = "NUL characters in the message";
		goto refuse;
	}
	/* Who sent it: the owner of the file, as the kernel says. */
	p->uid = st.st_uid;
	if ((pw = getpwuid(st.st_uid)) != NULL)
		snprintf(user, sizeof(user), "%s", pw->pw_name);
	else
		snprintf(user, sizeof(user), "uid%u", (unsigned)st.st_uid);
	if (env.from[0] != '\0' && !trusted(p, user)) {
		log_info("- pickup sender <%s> replaced by <%s>: user %s is not "
		    "in sendmail.trusted_users", env.from, user, user);
		env.from[0] = '\0';
	}
	/* The header, as CRLF lines. */
	hend = header_end(buf + env.body_off, len - env.body_off);
	if (hend == -1) {
		if ((off_t)len < st.st_size) {
			why = "header too large";
			goto refuse;
		}
		hend = (ssize_t)(len - env.body_off);	/* all header */
	}
	crlf(buf + env.body_off, (size_t)hend, &prev_cr, &hdr, &hlen, &hcap);
	/* Without the blank line, for cleanup. */
	if (hlen >= 4 && memcmp(hdr + hlen - 4, "\r\n\r\n", 4) == 0)
		hlen -= 2;
	else if (hlen == 2 && memcmp(hdr, "\r\n", 2) == 0)
		hlen = 0;
	else if (hlen > 0 && hdr[hlen - 1] != '\n')
		crlf("\n", 1, &prev_cr, &hdr, &hlen, &hcap);
	p->sender = xstrdup(env.from[0] ? env.from : user);
	if (cleanup_sender_is_refused(p->conf.cleanup, p->sender)) {
		/* Written by a sendmail older than this rule, or while
		 * rewrite.sender was set: SES would refuse it and nothing
		 * could bounce it, so it is kept in corrupt/, loudly, for
		 * the operator to set rewrite.sender and move it back. */
		snprintf(whybuf, sizeof(whybuf), "sender <%.300s>: %s",
		    p->sender, CLEANUP_SENDER_REFUSED);
		why = whybuf;
		goto refuse;
	}
	for (size_t i = 0; i < env.nrcpt; i++)
		add_rcpt(p, env.rcpts[i]);
	if (env.extract) {
		struct addrlist to = { NULL, 0 };

		if (addrlist_from_header(hdr, hlen, &to, &kept, &keptlen) ==
		    -1) {
			addrlist_free(&to);
			why = "-t, but the header does not parse";
			goto refuse;
		}
		for (size_t i = 0; i < to.n; i++)
			add_rcpt(p, to.v[i]);
		addrlist_free(&to);
		free(hdr);
		hdr = kept;
		hlen = hcap = keptlen;
		kept = NULL;
	}
	if (p->nrcpt == 0) {
		why = "no recipient that can be delivered";
		goto refuse;
	}
	if (env.fullname != NULL && !has_from(hdr, hlen)) {
		/* -F: the name for a From: the message lacks, written as
		 * sesrelay-sendmail writes it on its SMTP path. */
		char from[MAILDROP_FROM_MAX], *f = NULL;
		int fl = maildrop_from_field(env.fullname, p->sender, from,
		    sizeof(from)), fcr = 0;
		size_t flen = 0, fcap = 0;

		if (fl > 0) {
			/* Every LF as CRLF: a long name is folded. */
			crlf(from, (size_t)fl, &fcr, &f, &flen, &fcap);
			if ((hdr = realloc(hdr, hlen + flen + 1)) == NULL)
				abort();
			memmove(hdr + flen, hdr, hlen);
			memcpy(hdr, f, flen);
			hlen += flen;
			free(f);
		}
	}
	cleanup_header(p->conf.cleanup, hdr, hlen, p->sender, time(NULL),
	    &clean, &outlen);
	if (cleanup_header_is_too_long(p->conf.cleanup, clean, outlen)) {
		/* The SMTP path's 554 5.6.0; sendmail checks it first. */
		why = "a header line too long, with no white space to fold it "
		    "at (smtp.max_header_line_length)";
		goto refuse;
	}
	{
		/* The envelope sender after rewriting. */
		char *s = xstrdup(cleanup_sender(p->conf.cleanup, p->sender));

		free(p->sender);
		p->sender = s;
	}
	w = spool_writer_new(p->spool, p->sender, p->rcpts, p->nrcpt, p->id);
	if (w == NULL) {
		log_warn("- pickup %s: cannot start a queue file", name);
		rc = -1;
		goto out;
	}
	spool_writer_write(w, clean, outlen);
	spool_writer_write(w, "\r\n", 2);
	/* The body: the rest of the file, as CRLF lines. */
	prev_cr = 0;
	last = '\n';
	for (off_t off = env.body_off + hend;
	    (n = pread(fd, body, sizeof(body), off)) > 0; off += n) {
		if (memchr(body, '\0', (size_t)n) != NULL) {
			spool_writer_abort(w);
			why = "NUL characters in the message";
			goto refuse;
		}
		blen = 0;
		crlf(body, (size_t)n, &prev_cr, &out, &blen, &bcap);
		last = out[blen - 1];
		if (spool_writer_write(w, out, blen) == -1)
			break;
		if (spool_writer_size(w) > p->conf.max_message_size) {
			spool_writer_abort(w);
			why = "larger than max_message_size";
			goto refuse;
		}
	}
	if (n < 0) {
		/* Never a message cut short: the file stays, for later. */
		log_warn("- pickup %s: cannot read it", name);
		spool_writer_abort(w);
		rc = -1;
		goto out;
	}
	if (last != '\n')
		spool_writer_write(w, "\r\n", 2);	/* no final newline */
	/* Also a message that is all header, which the loop never saw. */
	if (spool_writer_size(w) > p->conf.max_message_size) {
		spool_writer_abort(w);
		why = "larger than max_message_size";
		goto refuse;
	}
	p->size = spool_writer_size(w);
	snprintf(p->current, sizeof(p->current), "%s", name);
	p->busy = 1;
	rc = 1;
	spool_writer_commit(w, committed, p);	/* reports write errors */
	goto out;
refuse:
	quarantine(p, name, why);
	free_current(p);
	rc = 0;
out:
	if (rc != 1)
		free_current(p);
	close(fd);
	maildrop_envelope_free(&env);
	free(buf);
	free(hdr);
	free(kept);
	free(clean);
	free(out);
	return rc;
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
		log_warn("- pickup cannot read the maildrop");
		return;
	}
	rewinddir(d);
	while ((de = readdir(d)) != NULL) {
		struct stat st;
		size_t l = strlen(de->d_name);

		if (is_drop_name(de->d_name)) {
			int r = take(p, de->d_name);

			if (r != 0)
				break;	/* committing (or stop): later */
			continue;
		}
		/* An abandoned half-written file (the writer died). */
		if (l == 20 && strcmp(de->d_name + 16, ".tmp") == 0 &&
		    fstatat(p->dirfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) ==
		    0 && st.st_mtime < time(NULL) - STALE_TMP &&
		    unlinkat(p->dirfd, de->d_name, 0) == 0)
			log_info("- pickup removed the abandoned maildrop/%s",
			    de->d_name);
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

struct pickup *
pickup_new(struct event_base *base, struct spool *spool,
    const struct pickup_config *c, char *err, size_t errlen)
{
	struct pickup *p = calloc(1, sizeof(*p));
	struct group *gr = getgrnam(MAILDROP_GROUP);
	struct timeval tv = { SCAN_SECONDS, 0 };
	char path[4096];
	int top;
	struct stat st;

	if (p == NULL)
		abort();
	p->base = base;
	p->spool = spool;
	p->conf = *c;
	p->dirfd = p->corruptfd = p->inofd = -1;
	if ((top = open(c->spool_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) ==
	    -1) {
		snprintf(err, errlen, "%s: %s", c->spool_dir, strerror(errno));
		free(p);
		return NULL;
	}
	if (mkdirat(top, MAILDROP_DIR, 0700) == -1 && errno != EEXIST)
		goto syserr;
	if ((p->dirfd = openat(top, MAILDROP_DIR, O_RDONLY | O_DIRECTORY |
	    O_NOFOLLOW | O_CLOEXEC)) == -1 ||
	    (p->corruptfd = openat(top, "corrupt", O_RDONLY | O_DIRECTORY |
	    O_NOFOLLOW | O_CLOEXEC)) == -1 || fstat(p->dirfd, &st) == -1)
		goto syserr;
	if (st.st_uid != geteuid()) {
		snprintf(err, errlen, "%s/%s: owned by uid %u, not by this "
		    "daemon's uid %u; refusing to use it", c->spool_dir,
		    MAILDROP_DIR, (unsigned)st.st_uid, (unsigned)geteuid());
		goto fail;
	}
	/*
	 * With the group: members (sesrelay-sendmail, setgid) may enter the
	 * spool and drop files, nothing more.  Without it only we can.
	 * (Set up by root before it became us, or by tmpfiles.d; as a plain
	 * user we can only check, and say what is wrong.)
	 */
	if (gr != NULL) {
		if ((st.st_gid != gr->gr_gid || (st.st_mode & 07777) != 01730) &&
		    (fchown(p->dirfd, (uid_t)-1, gr->gr_gid) == -1 ||
		    fchmod(p->dirfd, 01730) == -1))
			log_warn("- pickup %s/%s should be group %s, mode 1730; "
			    "local users cannot queue mail while sesrelayd is "
			    "down", c->spool_dir, MAILDROP_DIR, MAILDROP_GROUP);
		if (fstat(top, &st) == 0 && (st.st_gid != gr->gr_gid ||
		    (st.st_mode & 0070) != 0010) &&
		    (fchown(top, (uid_t)-1, gr->gr_gid) == -1 ||
		    fchmod(top, (st.st_mode & 0700) | 0010) == -1))
			log_warn("- pickup %s should be group %s, mode 0710",
			    c->spool_dir, MAILDROP_GROUP);
	} else {
		if ((st.st_mode & 0077) != 0 && fchmod(p->dirfd, 0700) == -1)
			goto syserr;
		log_info("- pickup no group %s: only root can queue mail while "
		    "sesrelayd is down", MAILDROP_GROUP);
	}
	close(top);
	top = -1;
	snprintf(path, sizeof(path), "%s/%s", c->spool_dir, MAILDROP_DIR);
	if ((p->inofd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC)) != -1 &&
	    inotify_add_watch(p->inofd, path, IN_MOVED_TO | IN_CLOSE_WRITE) !=
	    -1) {
		p->ino_ev = event_new(base, p->inofd, EV_READ | EV_PERSIST,
		    ino_cb, p);
		event_add(p->ino_ev, NULL);
	} else
		log_warn("- pickup inotify on %s (scanning every %ds only)",
		    path, SCAN_SECONDS);
	p->timer_ev = event_new(base, -1, EV_PERSIST, timer_cb, p);
	event_add(p->timer_ev, &tv);
	return p;
syserr:
	snprintf(err, errlen, "%s/%s: %s", c->spool_dir, MAILDROP_DIR,
	    strerror(errno));
fail:
	if (top != -1)
		close(top);
	pickup_free(p);
	return NULL;
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
	if (p->corruptfd != -1)
		close(p->corruptfd);
	free_current(p);
	free(p);
}
