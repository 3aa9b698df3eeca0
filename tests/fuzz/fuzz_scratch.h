/*
 * fuzz_scratch.h: what the targets that run the daemon's event loop
 * share (fuzz_pickup.c, fuzz_smtp_session.c): a scratch spool, a quiet
 * log, waiting for the spool's sync threads, their cleanup settings.
 *
 * The scratch directory is made under $FUZZ_SCRATCH, else /dev/shm (a
 * tmpfs: the spool's fsyncs cost nothing there, so an input takes
 * microseconds, not a disk flush), else $TMPDIR or /tmp; it is removed
 * at exit and when an invariant fails.  A sanitizer's report or a
 * timeout skips that: run.sh and nightly.sh point FUZZ_SCRATCH into
 * their own scratch directory, which they remove.
 *
 * Include it in one file per program: it defines log.c's functions
 * (log.c is then not linked from the archive; log_quote.c is), which
 * format every line's fields as log.c does, so a bad format argument is
 * still caught, but print it only when FUZZ_LOG is set: the daemon logs
 * a line or two per message.
 */
#ifndef SESRELAY_FUZZ_SCRATCH_H
#define SESRELAY_FUZZ_SCRATCH_H

#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <event2/event.h>

#include "cleanup.h"
#include "fuzz_util.h"
#include "log.h"
#include "spool.h"

/* ---- the quiet log (replaces log.c) ---- */

static int fuzz_log_on = -1;

static void
fuzz_log_emit(const char *event, const char *fmt, va_list ap,
    int with_errno)
{
	char line[2048];
	int saved = errno;

	vsnprintf(line, sizeof(line), fmt, ap);
	if (fuzz_log_on == -1)
		fuzz_log_on = getenv("FUZZ_LOG") != NULL;
	if (fuzz_log_on)
		fprintf(stderr, "log: %s %s%s%s\n", event, line,
		    with_errno ? " error=" : "",
		    with_errno ? log_q(strerror(saved)) : "");
	errno = saved;
}

void
log_event(int pri, const char *id, const char *event, const char *fmt, ...)
{
	va_list ap;

	(void)id;
	va_start(ap, fmt);
	fuzz_log_emit(event, fmt, ap, (pri & LOG_ERRNO) != 0);
	va_end(ap);
}

/* The daemon's code never calls these inside the loop: abort to say so. */
#define FUZZ_FATAL_FN(name, with_errno)					\
	void								\
	name(const char *event, const char *fmt, ...)			\
	{								\
		va_list ap;						\
									\
		fuzz_log_on = 1;					\
		va_start(ap, fmt);					\
		fuzz_log_emit(event, fmt, ap, with_errno);		\
		va_end(ap);						\
		abort();						\
	}
FUZZ_FATAL_FN(fatal, 1)
FUZZ_FATAL_FN(fatalx, 0)

void
log_init(int to_stderr, int verbose, const char *ident)
{
	(void)to_stderr, (void)verbose, (void)ident;
}

void
log_set_verbose(int verbose)
{
	(void)verbose;
}

int
log_is_verbose(void)
{
	return 1;	/* so log_debug's arguments are formatted too */
}

void
log_route_libevent(void)
{
}

/* ---- the scratch directory ---- */

static char fuzz_scratch_dir[256];

static int
fuzz_rm_one(const char *path, const struct stat *st, int flag,
    struct FTW *ftw)
{
	(void)st, (void)flag, (void)ftw;
	remove(path);
	return 0;
}

/* Remove the scratch directory and everything in it. */
static void
fuzz_scratch_remove(void)
{
	if (fuzz_scratch_dir[0] != '\0')
		nftw(fuzz_scratch_dir, fuzz_rm_one, 16, FTW_DEPTH | FTW_PHYS);
	fuzz_scratch_dir[0] = '\0';
}

/* Make the scratch directory (once); its path. */
static const char *
fuzz_scratch(void)
{
	const char *base = getenv("FUZZ_SCRATCH");
	struct stat st;

	if (fuzz_scratch_dir[0] != '\0')
		return fuzz_scratch_dir;
	if (base == NULL || *base == '\0')
		base = stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) &&
		    access("/dev/shm", W_OK) == 0 ? "/dev/shm" : NULL;
	if (base == NULL && (base = getenv("TMPDIR")) == NULL)
		base = "/tmp";
	snprintf(fuzz_scratch_dir, sizeof(fuzz_scratch_dir),
	    "%s/sesrelay-fuzz.XXXXXX", base);
	if (mkdtemp(fuzz_scratch_dir) == NULL) {
		fprintf(stderr, "fuzz: mkdtemp %s: %s\n", fuzz_scratch_dir,
		    strerror(errno));
		abort();
	}
	atexit(fuzz_scratch_remove);
	fuzz_failure_hook = fuzz_scratch_remove;
	return fuzz_scratch_dir;
}

/* A spool in <scratch>/spool, on base. */
static struct spool *
fuzz_spool_open(struct event_base *base, char *dir, size_t dirlen)
{
	struct spool *s;
	char err[512];

	snprintf(dir, dirlen, "%s/spool", fuzz_scratch());
	if ((s = spool_open(dir, base, err, sizeof(err))) == NULL) {
		fprintf(stderr, "fuzz: spool_open: %s\n", err);
		abort();
	}
	return s;
}

/* Run the loop until every spool job finished and its callback ran. */
static void
fuzz_spool_settle(struct event_base *base, struct spool *s)
{
	while (spool_pending(s) > 0)
		event_base_loop(base, EVLOOP_ONCE);
}

/* The cleanup both targets run: rewriting to noreply@/ops@ or plain. */
static struct cleanup *
fuzz_cleanup_new(int rewrite)
{
	struct cleanup_config cf = {
		.enable = 1, .hostname = "relay.example",
		.sender = rewrite ? "noreply@example.com" : "",
		.admin = rewrite ? "ops@example.com" : "",
		.aliases = "", .sender_map = "",
	};
	char err[512];
	struct cleanup *c = cleanup_new(&cf, err, sizeof(err));

	FUZZ_CHECK(c != NULL);
	return c;
}

/* Remove every file in dir (one level; for corrupt/, maildrop/). */
static __attribute__((unused)) void
fuzz_empty_dir(const char *dir)
{
	char path[512];
	struct dirent *de;
	DIR *d = opendir(dir);

	if (d == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		unlink(path);
	}
	closedir(d);
}

/*
 * A stored body: body_size bytes (at most max_size) of CRLF lines, no
 * NUL, ending in CRLF; header lines at most 998 bytes (RFC 5322 2.1.1:
 * SES refuses longer ones, after the 250).
 */
static void
fuzz_check_body(struct spool *spool, const struct spool_envelope *env,
    long long max_size)
{
	struct spool_reader *r = spool_reader_open(spool, env->id);
	char buf[8192], prev = '\0', last2[2] = { 0, 0 };
	off_t total = 0;
	size_t line = 0;
	int in_header = 1;
	ssize_t n;

	FUZZ_CHECK(r != NULL);
	while ((n = spool_reader_read(r, buf, sizeof(buf))) > 0) {
		for (ssize_t i = 0; i < n; i++) {
			FUZZ_CHECK(buf[i] != '\0');
			FUZZ_CHECK(buf[i] != '\n' || prev == '\r');
			if (buf[i] == '\n') {
				if (line == 1)
					in_header = 0;	/* the empty line */
				FUZZ_CHECK(!in_header || line <= 999);
				line = 0;
			} else
				line++;
			prev = buf[i];
			last2[0] = last2[1];
			last2[1] = buf[i];
		}
		total += n;
	}
	FUZZ_CHECK(n == 0);
	spool_reader_close(r);
	FUZZ_CHECK(total == env->body_size);
	FUZZ_CHECK(total >= 2 && last2[0] == '\r' && last2[1] == '\n');
	FUZZ_CHECK(total <= max_size);
}

/*
 * A message accepted() was given, as the spool has it: the same
 * envelope, 1 to max_rcpts recipients, none twice; the body as above.
 */
static __attribute__((unused)) void
fuzz_check_message(struct spool *spool, const struct spool_envelope *env,
    long long max_size, long long max_rcpts)
{
	struct spool_envelope *disk = spool_load(spool, env->id);

	FUZZ_CHECK(disk != NULL);
	FUZZ_CHECK(strcmp(disk->sender, env->sender) == 0);
	FUZZ_CHECK(disk->nrcpt == env->nrcpt && disk->nrcpt >= 1 &&
	    disk->nrcpt <= (size_t)max_rcpts);
	FUZZ_CHECK(disk->body_size == env->body_size);
	for (size_t i = 0; i < disk->nrcpt; i++) {
		FUZZ_CHECK(strcmp(disk->rcpts[i], env->rcpts[i]) == 0);
		for (size_t j = 0; j < i; j++)
			FUZZ_CHECK(strcasecmp(disk->rcpts[i],
			    disk->rcpts[j]) != 0);
	}
	spool_envelope_free(disk);
	fuzz_check_body(spool, env, max_size);
}

#endif
