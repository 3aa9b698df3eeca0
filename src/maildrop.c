/*
 * maildrop.c: the maildrop file (see maildrop.h for the format and the
 * security model): written by sesrelay-sendmail, parsed by sesrelayd.
 *
 * Invariants: a file under its final name is complete and on disk; a
 * file that could not be made so is removed before maildrop_write
 * returns; the parser reads no byte past len and accepts exactly what
 * maildrop_write writes, byte for byte, and nothing else.
 */
#include "config.h"

#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "fdio.h"
#include "maildrop.h"
#include "spool.h"
#include "xalloc.h"

#define CREATE_TRIES	8
#define COPY_CHUNK	65536

static int	(*priv_raise)(void);
static void	(*priv_lower)(void);
static long long min_free, min_free_inodes;

void
maildrop_set_min_free(long long bytes, long long inodes)
{
	min_free = bytes;
	min_free_inodes = inodes;
}

void
maildrop_set_privilege(int (*raise)(void), void (*lower)(void))
{
	priv_raise = raise;
	priv_lower = lower;
}

static int
raise_priv(void)
{
	return priv_raise != NULL ? priv_raise() : 0;
}

static void
lower_priv(void)
{
	if (priv_lower != NULL)
		priv_lower();
}

/* An address (may be empty) or the name: short, no control characters. */
static int
value_is_valid(const char *s, size_t n, int is_name)
{
	if (n > MAILDROP_VALUE_MAX)
		return 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if ((c < 0x20 && !(is_name && c == '\t')) || c == 0x7f)
			return 0;
	}
	return 1;
}

/* ---- parsing ---- */

/* Does line (n bytes) start with keyword?  Then *value is the rest. */
static int
keyword(const char *line, size_t n, const char *kw, const char **value,
    size_t *vlen)
{
	size_t k = strlen(kw);

	if (n < k || memcmp(line, kw, k) != 0)
		return 0;
	*value = line + k;
	*vlen = n - k;
	return 1;
}

static void
add_rcpt(struct maildrop_envelope *env, const char *v, size_t n,
    size_t *cap)
{
	if (env->nrcpt == *cap) {
		*cap = *cap ? *cap * 2 : 8;
		env->rcpts = reallocarray(env->rcpts, *cap, sizeof(char *));
		if (env->rcpts == NULL)
			abort();
	}
	env->rcpts[env->nrcpt++] = xstrndup(v, n);
}

/*
 * The lines in order: magic, from, then what may come next goes up:
 * fullname (at most once), rcpt lines, extract, the empty line.
 */
enum expect { EXPECT_MAGIC, EXPECT_FROM, EXPECT_FULLNAME, EXPECT_RCPT,
    EXPECT_END };

int
maildrop_parse(const char *buf, size_t len, struct maildrop_envelope *env)
{
	const char *p = buf, *end = buf + len, *v;
	enum expect at = EXPECT_MAGIC;
	size_t cap = 0, vlen;

	memset(env, 0, sizeof(*env));
	while (p < end) {
		const char *line = p, *nl = memchr(p, '\n', end - p);
		size_t n;

		if (nl == NULL)
			break;		/* cut short: no empty line */
		n = nl - line;
		p = nl + 1;
		if (at == EXPECT_MAGIC) {
			if (n != strlen(MAILDROP_MAGIC) ||
			    memcmp(line, MAILDROP_MAGIC, n) != 0)
				break;
			at = EXPECT_FROM;
		} else if (at == EXPECT_FROM) {
			if (!keyword(line, n, "from ", &v, &vlen) ||
			    !value_is_valid(v, vlen, 0))
				break;
			env->from = xstrndup(v, vlen);
			at = EXPECT_FULLNAME;
		} else if (n == 0) {
			if (env->nrcpt == 0 && !env->extract)
				break;
			env->body_off = (size_t)(p - buf);
			return 0;
		} else if (at <= EXPECT_FULLNAME &&
		    keyword(line, n, "fullname ", &v, &vlen)) {
			if (vlen == 0 || !value_is_valid(v, vlen, 1))
				break;
			env->fullname = xstrndup(v, vlen);
			at = EXPECT_RCPT;
		} else if (at <= EXPECT_RCPT &&
		    keyword(line, n, "rcpt ", &v, &vlen)) {
			if (vlen == 0 || !value_is_valid(v, vlen, 0))
				break;
			add_rcpt(env, v, vlen, &cap);
			at = EXPECT_RCPT;
		} else if (at <= EXPECT_RCPT && n == 7 &&
		    memcmp(line, "extract", 7) == 0) {
			env->extract = 1;
			at = EXPECT_END;
		} else
			break;
	}
	maildrop_envelope_free(env);
	return -1;
}

void
maildrop_envelope_free(struct maildrop_envelope *env)
{
	free(env->from);
	free(env->fullname);
	for (size_t i = 0; i < env->nrcpt; i++)
		free(env->rcpts[i]);
	free(env->rcpts);
	memset(env, 0, sizeof(*env));
}

/* ---- writing ---- */

struct buf {
	char	*p;
	size_t	 len, cap;
};

static void
buf_add(struct buf *b, const char *s, size_t n)
{
	if (b->len + n > b->cap) {
		b->cap = (b->len + n) * 2;
		if ((b->p = realloc(b->p, b->cap)) == NULL)
			abort();
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
}

static void
buf_line(struct buf *b, const char *kw, const char *value)
{
	buf_add(b, kw, strlen(kw));
	buf_add(b, value, strlen(value));
	buf_add(b, "\n", 1);
}

/* The envelope text, or -1 with EINVAL when a field breaks the rules. */
static int
envelope_text(struct buf *b, const char *from, const char *fullname,
    char *const *rcpts, size_t nrcpt, int extract)
{
	if (from == NULL || !value_is_valid(from, strlen(from), 0) ||
	    (fullname != NULL && (*fullname == '\0' ||
	    !value_is_valid(fullname, strlen(fullname), 1))) ||
	    (nrcpt == 0 && !extract)) {
		errno = EINVAL;
		return -1;
	}
	for (size_t i = 0; i < nrcpt; i++)
		if (*rcpts[i] == '\0' ||
		    !value_is_valid(rcpts[i], strlen(rcpts[i]), 0)) {
			errno = EINVAL;
			return -1;
		}
	buf_line(b, MAILDROP_MAGIC, "");
	buf_line(b, "from ", from);
	if (fullname != NULL)
		buf_line(b, "fullname ", fullname);
	for (size_t i = 0; i < nrcpt; i++)
		buf_line(b, "rcpt ", rcpts[i]);
	if (extract)
		buf_line(b, "extract", "");
	buf_add(b, "\n", 1);
	return 0;
}

int
maildrop_name_is_valid(const char *name)
{
	return strnlen(name, MAILDROP_NAME_LEN) == MAILDROP_NAME_LEN - 1 &&
	    strspn(name, "0123456789abcdef") == MAILDROP_NAME_LEN - 1;
}

int
maildrop_name_is_tmp(const char *name)
{
	size_t n = MAILDROP_NAME_LEN - 1;

	return strspn(name, "0123456789abcdef") == n &&
	    strcmp(name + n, ".tmp") == 0;
}

/* A new name: the one format maildrop_name_is_valid checks. */
static void
random_name(char name[MAILDROP_NAME_LEN])
{
	uint64_t r;

	if (getrandom(&r, sizeof(r), 0) != (ssize_t)sizeof(r))
		abort();	/* the kernel's pool is always there */
	snprintf(name, MAILDROP_NAME_LEN, "%016llx", (unsigned long long)r);
}

/* The message's size as the daemon stores it: a bare LF counts two. */
struct sizer {
	long long	size;
	int		prev_cr;
};

static void
count(struct sizer *z, const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (p[i] == '\n' && !z->prev_cr)
			z->size++;
		z->prev_cr = p[i] == '\r';
	}
	z->size += (long long)n;
}

/* Write the envelope, the header and the rest of in; 0 or -1/errno. */
static int
write_content(int fd, const struct buf *env, const char *hdr, size_t hlen,
    FILE *in, long long max)
{
	struct sizer z = { 0, 0 };
	char *chunk;
	size_t n;
	int rc = 0;

	count(&z, hdr, hlen);
	if (z.size > max) {
		errno = EFBIG;
		return -1;
	}
	if (fdio_write_all(fd, env->p, env->len) == -1 ||
	    fdio_write_all(fd, hdr, hlen) == -1)
		return -1;
	if (in == NULL)
		return 0;
	if ((chunk = malloc(COPY_CHUNK)) == NULL)
		abort();
	while ((n = fread(chunk, 1, COPY_CHUNK, in)) > 0) {
		count(&z, chunk, n);
		if (z.size > max) {
			errno = EFBIG;
			rc = -1;
			break;
		}
		if ((rc = fdio_write_all(fd, chunk, n)) == -1)
			break;
	}
	if (rc == 0 && ferror(in)) {
		if (errno == 0)
			errno = EIO;
		rc = -1;
	}
	free(chunk);
	return rc;
}

/*
 * Create "<hex>.tmp" in dir, exclusively, not following a link: with the
 * rename and the removal, the only steps that need the maildrop group.
 * Returns the file, with *dfd the directory (O_PATH: the group may enter
 * it but not read it), or -1 with errno.
 */
static int
create_tmp(const char *dir, int *dfd, char name[MAILDROP_NAME_LEN],
    char *tmp, size_t tmplen)
{
	int fd = -1, saved;
	struct stat st;

	if (raise_priv() == -1)
		return -1;
	*dfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	/*
	 * The group may write only into a real maildrop (sticky, closed to
	 * others), never into another directory that a configuration file
	 * of the user's choosing (-C, SESRELAY_CONFIG) names.
	 */
	if (*dfd != -1 && getuid() != 0 && (fstat(*dfd, &st) == -1 ||
	    !spool_layout_drop_is_closed(st.st_mode))) {
		close(*dfd);
		*dfd = -1;
		errno = EACCES;
	}
	/* spool_min_free: the daemon's 452, said before a byte is written. */
	if (*dfd != -1 && spool_fs_has_room(*dfd, 0, min_free,
	    min_free_inodes) == 0) {
		close(*dfd);
		*dfd = -1;
		errno = ENOSPC;
	}
	for (int i = 0; *dfd != -1 && i < CREATE_TRIES; i++) {
		random_name(name);
		snprintf(tmp, tmplen, "%s.tmp", name);
		fd = openat(*dfd, tmp, O_WRONLY | O_CREAT | O_EXCL |
		    O_NOFOLLOW | O_CLOEXEC, 0644);
		if (fd != -1 || errno != EEXIST)
			break;
	}
	/*
	 * Locked before its first byte, held until the process ends: a
	 * ".tmp" file the daemon can lock is one whose writer died, and it
	 * removes it at once (pickup.c); one still being written, however
	 * slowly, it cannot lock and leaves alone.
	 */
	if (fd != -1 && flock(fd, LOCK_EX) == -1) {
		saved = errno;
		unlinkat(*dfd, tmp, 0);
		close(fd);
		fd = -1;
		errno = saved;
	}
	saved = errno;
	lower_priv();
	if (fd == -1 && *dfd != -1) {
		close(*dfd);
		*dfd = -1;
	}
	errno = saved;
	return fd;
}

/*
 * Give tmp its final name, never replacing a file (another sendmail's
 * name could come up again, however unlikely): renameat2 NOREPLACE, or
 * a plain rename on a file system that has no such flag.
 */
static int
publish(int dfd, const char *tmp, char name[MAILDROP_NAME_LEN])
{
	int rc = -1, saved;

	if (raise_priv() == -1)
		return -1;
	for (int i = 0; i < CREATE_TRIES; i++) {
		if (i > 0)
			random_name(name);
		rc = renameat2(dfd, tmp, dfd, name, RENAME_NOREPLACE);
		if (rc == -1 && (errno == EINVAL || errno == ENOSYS))
			rc = renameat(dfd, tmp, dfd, name);
		if (rc == 0 || errno != EEXIST)
			break;
	}
	saved = errno;
	lower_priv();
	errno = saved;
	return rc;
}

/*
 * Make the rename durable: fsync the directory when it can be opened
 * (the daemon's user, root); a member of the maildrop group cannot read
 * it, so then sync the file system the file is on.
 */
static int
sync_dir(const char *dir, int keep)
{
	int d = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), rc;

	if (d == -1)
		return errno == EACCES ? syncfs(keep) : -1;
	rc = fsync(d);
	close(d);
	return rc;
}

/* Remove name from the maildrop; 0, or -1 with errno. */
static int
remove_file(int dfd, const char *name)
{
	int rc, saved;

	if (raise_priv() == -1)
		return -1;
	rc = unlinkat(dfd, name, 0);
	saved = errno;
	lower_priv();
	errno = saved;
	return rc;
}

/* Remove what a failed write left; errno is kept. */
static void
discard(int dfd, const char *name)
{
	int saved = errno;

	remove_file(dfd, name);
	errno = saved;
}

/*
 * The order is what makes the file safe to pick up: content, fsync,
 * close (checked, while the file still has its .tmp name), rename, then
 * the directory.  Only after that is the message the daemon's; every
 * failure before it removes the file.  A descriptor dup'ed before the
 * close serves syncfs(2) after the rename.
 */
int
maildrop_write(const char *dir, const char *from, const char *fullname,
    char *const *rcpts, size_t nrcpt, int extract, const char *hdr,
    size_t hlen, FILE *in, long long max, char *name_out, size_t name_len)
{
	struct buf env = { NULL, 0, 0 };
	char name[MAILDROP_NAME_LEN], tmp[MAILDROP_NAME_LEN + 4];
	int dfd = -1, fd, keep = -1, rc = -1;

	if (envelope_text(&env, from, fullname, rcpts, nrcpt, extract) == -1)
		return -1;
	if ((fd = create_tmp(dir, &dfd, name, tmp, sizeof(tmp))) == -1)
		goto out;
	/* 0644 whatever the umask: the daemon reads it as "other". */
	if (fchmod(fd, 0644) == -1 ||
	    write_content(fd, &env, hdr, hlen, in, max) == -1 ||
	    fsync(fd) == -1 || (keep = dup(fd)) == -1) {
		int saved = errno;
		close(fd);
		errno = saved;
		discard(dfd, tmp);
		goto out;
	}
	if (close(fd) == -1 || publish(dfd, tmp, name) == -1) {
		discard(dfd, tmp);
		goto out;
	}
	if (sync_dir(dir, keep) == -1) {
		int saved = errno;

		/*
		 * Gone already: the daemon took it, and it is its now.  A
		 * file that cannot be taken back is reported as a failure
		 * too: a duplicate is better than a loss.
		 */
		if (remove_file(dfd, name) == -1 && errno == ENOENT)
			rc = 0;
		else
			errno = saved;
		goto out;
	}
	rc = 0;
out:
	if (rc == 0 && name_out != NULL && name_len > 0)
		snprintf(name_out, name_len, "%s", name);
	if (keep != -1)
		close(keep);
	if (dfd != -1)
		close(dfd);
	free(env.p);
	return rc;
}

/* ---- the From: field for -F ---- */

static int
is_atext(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || (c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~",
	    c) != NULL);
}

/* Append to buf (len bytes of room); -1 once it does not fit. */
struct out {
	char	*p;
	size_t	 len, room;
	int	 full;
};

static void
put(struct out *o, const char *s, size_t n)
{
	if (o->full || o->len + n >= o->room) {
		o->full = 1;
		return;
	}
	memcpy(o->p + o->len, s, n);
	o->len += n;
	o->p[o->len] = '\0';
}

/* s in base64 (OpenSSL's encoder); n is at most 45 (one encoded word). */
static void
put_b64(struct out *o, const unsigned char *s, size_t n)
{
	unsigned char q[64];

	put(o, (const char *)q, (size_t)EVP_EncodeBlock(q, s, (int)n));
}

/*
 * RFC 2047 encoded words, 45 bytes (60 in base64, 72 with the markers)
 * each, cut between UTF-8 characters, one per line.
 */
static void
put_encoded(struct out *o, const char *name, size_t n)
{
	size_t i = 0;

	while (i < n) {
		size_t k = n - i > 45 ? 45 : n - i;

		/* Do not cut a UTF-8 sequence (continuation bytes 10xxxxxx). */
		while (i + k < n && k > 1 &&
		    ((unsigned char)name[i + k] & 0xc0) == 0x80)
			k--;
		put(o, i == 0 ? " =?UTF-8?B?" : "\n =?UTF-8?B?", i == 0 ? 11 :
		    12);
		put_b64(o, (const unsigned char *)name + i, k);
		put(o, "?=", 2);
		i += k;
	}
}

int
maildrop_from_field(const char *fullname, const char *addr, char *buf,
    size_t len)
{
	struct out o = { buf, 0, len, len == 0 };
	const char *name = fullname ? fullname : "";
	size_t n, start;
	int atoms = 1, ascii = 1;

	while (*name == ' ' || *name == '\t')
		name++;
	n = strlen(name);
	while (n > 0 && (name[n - 1] == ' ' || name[n - 1] == '\t'))
		n--;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)name[i];

		if (c < 0x20 || c > 0x7e)
			ascii = atoms = 0;
		else if (c != ' ' && !is_atext(c))
			atoms = 0;
	}
	put(&o, "From:", 5);
	start = o.len;
	if (n > 0 && atoms) {
		put(&o, " ", 1);
		put(&o, name, n);
	} else if (n > 0 && ascii) {
		put(&o, " \"", 2);
		for (size_t i = 0; i < n; i++) {
			if (name[i] == '"' || name[i] == '\\')
				put(&o, "\\", 1);
			put(&o, name + i, 1);
		}
		put(&o, "\"", 1);
	}
	/* Not ASCII, or a line too long for RFC 5322 (998): encoded words. */
	if (n > 0 && (!ascii || o.full || o.len + strlen(addr) + 3 > 998)) {
		o.full = 0;
		o.len = start;
		put_encoded(&o, name, n);
	}
	put(&o, " <", 2);
	put(&o, addr, strlen(addr));
	put(&o, ">\n", 2);
	if (o.full)
		return -1;
	return (int)o.len;
}
