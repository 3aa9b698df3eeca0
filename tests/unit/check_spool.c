/*
 * check_spool.c: the durable spool against a real directory and a real
 * event loop (the sync thread, the eventfd wake-up and the callbacks all
 * run as in the daemon).
 *
 * The key property: a message file cut short at any byte, or with a
 * damaged trailer, is never taken for a message.  The tests look into
 * the spool directory (tmp/, queue/, state/, corrupt/) as an operator
 * would, to check where files end up.
 */
#include "config.h"

#include <sys/resource.h>
#include <sys/stat.h>

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "fixture.h"
#include "spool.h"

static char top[256];		/* per test case, removed even after failures */
static char spooldir[320];	/* per test, inside top */
static struct event_base *base;
static struct event *guard;
static struct spool *sp;

static void
top_setup(void)
{
	fixture_mkdtemp(top, sizeof(top), NULL, "check_spool");
}

static void
top_teardown(void)
{
	fixture_rmtree(top);
}

static void
setup(void)
{
	char err[256] = "";

	/* spool_open creates the directory itself. */
	fixture_mkdtemp(spooldir, sizeof(spooldir), top, "spool");
	ck_assert_int_eq(rmdir(spooldir), 0);
	base = fixture_loop_new(&guard);
	sp = spool_open(spooldir, base, err, sizeof(err));
	ck_assert_msg(sp != NULL, "spool_open: %s", err);
}

static void
teardown(void)
{
	spool_close(sp);
	sp = NULL;
	fixture_loop_free(base, guard);
	fixture_rmtree(spooldir);
}

/* Close and open the spool again, as a restart would. */
static void
reopen(void)
{
	char err[256] = "";

	spool_close(sp);
	sp = spool_open(spooldir, base, err, sizeof(err));
	ck_assert_msg(sp != NULL, "spool_open: %s", err);
}

struct done {
	int	fired;
	int	status;
};

static void
done_cb(void *arg, int status)
{
	struct done *d = arg;

	d->fired++;
	d->status = status;
}

/* Run the loop until d fired (bounded: about 10 s). */
static void
run_until(struct done *d)
{
	for (int i = 0; i < 500 && !d->fired; i++)
		event_base_loop(base, EVLOOP_ONCE);
	ck_assert_msg(d->fired == 1, "callback fired %d times", d->fired);
}

static void
run_until_idle(void)
{
	for (int i = 0; i < 500 && spool_pending(sp) > 0; i++)
		event_base_loop(base, EVLOOP_ONCE);
	ck_assert_uint_eq(spool_pending(sp), 0);
}

/* Commit n writers at once; run the loop until every callback ran. */
static void
commit_all(struct spool_writer **w, struct done *d, int n)
{
	for (int i = 0; i < n; i++) {
		d[i].fired = 0;
		d[i].status = -1;
		spool_writer_commit(w[i], done_cb, &d[i]);
	}
	run_until_idle();
	for (int i = 0; i < n; i++)
		ck_assert_msg(d[i].fired == 1, "commit %d: callback fired %d "
		    "times", i, d[i].fired);
}

static int
exists(const char *sub, const char *name)
{
	char p[PATH_MAX];
	struct stat st;

	snprintf(p, sizeof(p), "%s/%s/%s", spooldir, sub, name);
	return lstat(p, &st) == 0;
}

/* Number of entries (without dot files) in a spool subdirectory. */
static size_t
count_entries(const char *sub)
{
	char p[PATH_MAX];
	struct dirent *de;
	size_t n = 0;
	DIR *d;

	snprintf(p, sizeof(p), "%s/%s", spooldir, sub);
	d = opendir(p);
	ck_assert_ptr_nonnull(d);
	while ((de = readdir(d)) != NULL)
		n += de->d_name[0] != '.';
	closedir(d);
	return n;
}

static char *
read_file(const char *sub, const char *name, size_t *len)
{
	char p[PATH_MAX];
	struct stat st;
	char *buf;
	int fd;

	snprintf(p, sizeof(p), "%s/%s/%s", spooldir, sub, name);
	fd = open(p, O_RDONLY);
	ck_assert_msg(fd != -1, "open %s: %s", p, strerror(errno));
	ck_assert_int_eq(fstat(fd, &st), 0);
	buf = malloc(st.st_size + 1);
	ck_assert_ptr_nonnull(buf);
	ck_assert_int_eq(read(fd, buf, st.st_size), st.st_size);
	buf[st.st_size] = '\0';
	close(fd);
	*len = (size_t)st.st_size;
	return buf;
}

static void
write_file(const char *sub, const char *name, const void *buf, size_t len)
{
	char p[PATH_MAX];
	int fd;

	snprintf(p, sizeof(p), "%s/%s/%s", spooldir, sub, name);
	fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	ck_assert_int_ne(fd, -1);
	ck_assert_int_eq(write(fd, buf, len), (ssize_t)len);
	ck_assert_int_eq(close(fd), 0);
}

static char *const rcpts3[] = { "a@example.org", "b@example.net",
    "c@example.com" };

/* Spool a message through the writer and wait for its commit. */
static void
spool_message(const char *sender, char *const *rcpts, size_t n,
    const char *body, size_t len, char id[SPOOL_ID_LEN + 1])
{
	struct spool_writer *w = spool_writer_new(sp, sender, rcpts, n, id);
	struct done d = { 0, -1 };

	ck_assert_ptr_nonnull(w);
	ck_assert_int_eq(spool_writer_write(w, body, len), 0);
	spool_writer_commit(w, done_cb, &d);
	run_until(&d);
	ck_assert_int_eq(d.status, 0);
}

/* ---- open, write, commit, load, read ---- */

START_TEST(test_open_creates_subdirs)
{
	static const char *const subs[] = { "tmp", "queue", "state",
	    "corrupt" };
	char p[PATH_MAX];
	struct stat st;

	for (size_t i = 0; i < 4; i++) {
		snprintf(p, sizeof(p), "%s/%s", spooldir, subs[i]);
		ck_assert_msg(stat(p, &st) == 0, "%s missing", p);
		ck_assert(S_ISDIR(st.st_mode));
		ck_assert_uint_eq(st.st_mode & 0777, 0700);
		ck_assert_uint_eq(count_entries(subs[i]), 0);
	}
	/* Opening an existing spool again is fine. */
	reopen();
}
END_TEST

START_TEST(test_commit_load_read)
{
	const char *body = "Subject: hi\r\n\r\nHello.\r\n.dot\r\n";
	struct spool_envelope *e;
	struct spool_reader *r;
	struct spool_writer *w;
	struct done d = { 0, -1 };
	char id[SPOOL_ID_LEN + 1], got[256];
	time_t t0 = time(NULL), t1;
	ssize_t n;
	size_t i;

	w = spool_writer_new(sp, "sender@example.org", rcpts3, 3, id);
	ck_assert_ptr_nonnull(w);
	ck_assert_uint_eq(strlen(id), SPOOL_ID_LEN);
	ck_assert_uint_eq(strspn(id, "0123456789abcdef"), SPOOL_ID_LEN);
	ck_assert(exists("tmp", id));
	ck_assert(!exists("queue", id));
	ck_assert_int_eq(spool_writer_write(w, body, 10), 0);
	ck_assert_int_eq(spool_writer_write(w, body + 10, strlen(body) - 10),
	    0);
	ck_assert_int_eq(spool_writer_size(w), (off_t)strlen(body));
	spool_writer_commit(w, done_cb, &d);
	run_until(&d);
	t1 = time(NULL);
	ck_assert_int_eq(d.status, 0);
	ck_assert(exists("queue", id));
	ck_assert(!exists("tmp", id));
	ck_assert_uint_eq(count_entries("tmp"), 0);

	e = spool_load(sp, id);
	ck_assert_ptr_nonnull(e);
	ck_assert_str_eq(e->id, id);
	ck_assert_str_eq(e->sender, "sender@example.org");
	ck_assert_uint_eq(e->nrcpt, 3);
	for (i = 0; i < 3; i++) {
		ck_assert_str_eq(e->rcpts[i], rcpts3[i]);
		ck_assert_int_eq(e->status[i], SPOOL_RCPT_PENDING);
		ck_assert_ptr_null(e->reply[i]);
	}
	ck_assert_int_eq(e->body_size, (off_t)strlen(body));
	ck_assert(e->arrived >= t0 && e->arrived <= t1);
	ck_assert_uint_eq(e->attempts, 0);
	ck_assert_int_eq(e->next_attempt, 0);
	spool_envelope_free(e);

	r = spool_reader_open(sp, id);
	ck_assert_ptr_nonnull(r);
	n = spool_reader_read(r, got, sizeof(got));
	ck_assert_int_eq(n, (ssize_t)strlen(body));
	ck_assert_mem_eq(got, body, strlen(body));
	ck_assert_int_eq(spool_reader_read(r, got, sizeof(got)), 0);
	spool_reader_close(r);
}
END_TEST

START_TEST(test_null_sender_and_empty_body)
{
	struct spool_envelope *e;
	struct spool_reader *r;
	char id[SPOOL_ID_LEN + 1], c;

	spool_message("", rcpts3, 1, "", 0, id);
	e = spool_load(sp, id);
	ck_assert_ptr_nonnull(e);
	ck_assert_str_eq(e->sender, "");
	ck_assert_uint_eq(e->nrcpt, 1);
	ck_assert_int_eq(e->body_size, 0);
	spool_envelope_free(e);
	r = spool_reader_open(sp, id);
	ck_assert_ptr_nonnull(r);
	ck_assert_int_eq(spool_reader_read(r, &c, 1), 0);
	spool_reader_close(r);
}
END_TEST

START_TEST(test_load_missing)
{
	errno = 0;
	ck_assert_ptr_null(spool_load(sp, "0123456789abcdef"));
	ck_assert_int_eq(errno, ENOENT);
	ck_assert_ptr_null(spool_reader_open(sp, "0123456789abcdef"));
}
END_TEST

START_TEST(test_load_refuses_wrong_name)
{
	char id[SPOOL_ID_LEN + 1], *buf;
	size_t len;

	spool_message("s@x", rcpts3, 2, "body\r\n", 6, id);
	buf = read_file("queue", id, &len);
	/* A valid file under another id's name is not that message. */
	write_file("queue", "00000000deadbeef", buf, len);
	errno = 0;
	ck_assert_ptr_null(spool_load(sp, "00000000deadbeef"));
	ck_assert_int_eq(errno, EBADMSG);
	free(buf);
}
END_TEST

/* A bounce carries "flags dsn", and a bounced recipient keeps its state. */
START_TEST(test_dsn_flag_and_bounced_state)
{
	struct spool_writer *w;
	struct spool_envelope *e;
	struct done d = { 0, -1 };
	char id[SPOOL_ID_LEN + 1], plain[SPOOL_ID_LEN + 1];
	char *const to[] = { "sender@example.org" };

	w = spool_writer_new_flags(sp, "bounces@example.com", to, 1,
	    SPOOL_F_DSN, id);
	ck_assert_ptr_nonnull(w);
	ck_assert_int_eq(spool_writer_write(w, "x\r\n", 3), 0);
	spool_writer_commit(w, done_cb, &d);
	run_until(&d);
	ck_assert_int_eq(d.status, 0);
	spool_message("s@x", rcpts3, 3, "x\r\n", 3, plain);

	e = spool_load(sp, id);
	ck_assert_ptr_nonnull(e);
	ck_assert_uint_eq(e->flags, SPOOL_F_DSN);
	ck_assert_uint_eq(e->nrcpt, 1);
	ck_assert_str_eq(e->rcpts[0], "sender@example.org");
	spool_envelope_free(e);

	e = spool_load(sp, plain);
	ck_assert_ptr_nonnull(e);
	ck_assert_uint_eq(e->flags, 0);
	e->status[1] = SPOOL_RCPT_BOUNCED;
	e->reply[1] = strdup("554 Message rejected");
	d.fired = 0;
	spool_state_save(sp, e, done_cb, &d);
	run_until(&d);
	spool_envelope_free(e);
	e = spool_load(sp, plain);
	ck_assert_ptr_nonnull(e);
	ck_assert_int_eq(e->status[0], SPOOL_RCPT_PENDING);
	ck_assert_int_eq(e->status[1], SPOOL_RCPT_BOUNCED);
	ck_assert_str_eq(e->reply[1], "554 Message rejected");
	spool_envelope_free(e);
}
END_TEST

/* Many commits at once (group commit: batches share one sync). */
START_TEST(test_many_commits_at_once)
{
	enum { N = 40 };
	struct spool_writer *w[N];
	struct done d[N];
	char id[N][SPOOL_ID_LEN + 1], body[64];
	struct spool_envelope *e;

	for (int i = 0; i < N; i++) {
		w[i] = spool_writer_new(sp, "s@x", rcpts3, 1, id[i]);
		ck_assert_ptr_nonnull(w[i]);
		snprintf(body, sizeof(body), "message %d\r\n", i);
		ck_assert_int_eq(spool_writer_write(w[i], body, strlen(body)),
		    0);
	}
	commit_all(w, d, N);
	for (int i = 0; i < N; i++) {
		ck_assert_int_eq(d[i].fired, 1);
		ck_assert_int_eq(d[i].status, 0);
		ck_assert(exists("queue", id[i]));
		e = spool_load(sp, id[i]);
		ck_assert_ptr_nonnull(e);
		snprintf(body, sizeof(body), "message %d\r\n", i);
		ck_assert_int_eq(e->body_size, (off_t)strlen(body));
		spool_envelope_free(e);
	}
	ck_assert_uint_eq(count_entries("tmp"), 0);
}
END_TEST

START_TEST(test_state_save_and_load)
{
	struct spool_envelope *e;
	struct done d = { 0, -1 };
	char id[SPOOL_ID_LEN + 1];

	spool_message("s@x", rcpts3, 3, "x\r\n", 3, id);
	e = spool_load(sp, id);
	ck_assert_ptr_nonnull(e);
	e->status[0] = SPOOL_RCPT_DONE;
	e->reply[0] = strdup("250 Ok 0100018c2c2c2c2c-71c65177-000000");
	e->status[2] = SPOOL_RCPT_FAILED;
	e->reply[2] = strdup("550 5.1.1 no such user\r\nsecond line");
	e->reply[1] = strdup("451 4.4.2 timeout");	/* still pending */
	e->attempts = 3;
	e->next_attempt = 1700000123;
	e->unknown = calloc(3, sizeof(*e->unknown));
	e->unknown[1] = 2;		/* two copies lost after the dot */
	spool_state_save(sp, e, done_cb, &d);
	run_until(&d);
	ck_assert_int_eq(d.status, 0);
	ck_assert(exists("state", id));
	spool_envelope_free(e);

	e = spool_load(sp, id);
	ck_assert_ptr_nonnull(e);
	ck_assert_int_eq(e->status[0], SPOOL_RCPT_DONE);
	ck_assert_str_eq(e->reply[0],
	    "250 Ok 0100018c2c2c2c2c-71c65177-000000");
	ck_assert_int_eq(e->status[1], SPOOL_RCPT_PENDING);
	ck_assert_int_eq(e->status[2], SPOOL_RCPT_FAILED);
	/* Line breaks in a reply cannot break the state file's lines. */
	ck_assert_str_eq(e->reply[2], "550 5.1.1 no such user  second line");
	ck_assert_uint_eq(e->attempts, 3);
	ck_assert_int_eq(e->next_attempt, 1700000123);
	ck_assert_ptr_nonnull(e->unknown);
	ck_assert_uint_eq(e->unknown[0], 0);
	ck_assert_uint_eq(e->unknown[1], 2);
	spool_envelope_free(e);
}
END_TEST

START_TEST(test_bad_state_means_resend)
{
	static const char bad[] = "SESRELAY-STATE 1\nattempts 2\nnext 5\n"
	    "rcpt 0 done 250 Ok\n";		/* no END: cut short */
	struct spool_envelope *e;
	char id[SPOOL_ID_LEN + 1];

	spool_message("s@x", rcpts3, 2, "x\r\n", 3, id);
	write_file("state", id, bad, sizeof(bad) - 1);
	e = spool_load(sp, id);
	ck_assert_ptr_nonnull(e);
	ck_assert_int_eq(e->status[0], SPOOL_RCPT_PENDING);
	ck_assert_int_eq(e->status[1], SPOOL_RCPT_PENDING);
	ck_assert_uint_eq(e->attempts, 0);
	ck_assert_int_eq(e->next_attempt, 0);
	spool_envelope_free(e);
}
END_TEST

START_TEST(test_remove)
{
	struct spool_envelope *e;
	struct done d = { 0, -1 };
	char id[SPOOL_ID_LEN + 1], other[SPOOL_ID_LEN + 1];

	spool_message("s@x", rcpts3, 1, "x\r\n", 3, other);
	spool_message("s@x", rcpts3, 1, "x\r\n", 3, id);
	e = spool_load(sp, id);
	ck_assert_ptr_nonnull(e);
	e->attempts = 1;
	spool_state_save(sp, e, NULL, NULL);
	spool_envelope_free(e);
	run_until_idle();
	ck_assert(exists("state", id));

	spool_remove(sp, id, done_cb, &d);
	/* The message is gone at once, not when a sync worker gets to it:
	 * a crash now must not send it again. */
	ck_assert(!exists("queue", id));
	run_until(&d);
	ck_assert_int_eq(d.status, 0);
	ck_assert(!exists("queue", id));
	ck_assert(!exists("state", id));
	ck_assert_ptr_null(spool_load(sp, id));
	/* The other message is untouched. */
	ck_assert(exists("queue", other));
	ck_assert_uint_eq(count_entries("queue"), 1);
	ck_assert_uint_eq(count_entries("state"), 0);
}
END_TEST

/*
 * A message that cannot be unlinked (here a directory in its place:
 * EISDIR) keeps its state file: without it, a restart would send it to
 * every recipient again.
 */
START_TEST(test_remove_failed_keeps_state)
{
	static const char state[] = "SESRELAY-STATE 1\nattempts 1\nnext 0\n"
	    "rcpt 0 done 250 Ok\nEND\n";
	static const char id[] = "0123456789abcdef0123456789abcdef";
	struct done d = { 0, -1 };
	char p[PATH_MAX];

	snprintf(p, sizeof(p), "%s/queue/%s", spooldir, id);
	ck_assert_int_eq(mkdir(p, 0700), 0);
	write_file("state", id, state, strlen(state));
	spool_remove(sp, id, done_cb, &d);
	run_until(&d);
	ck_assert_int_eq(d.status, EISDIR);
	ck_assert_msg(exists("state", id), "the state of a message still "
	    "queued was removed");
}
END_TEST

START_TEST(test_abort_leaves_nothing)
{
	char id[SPOOL_ID_LEN + 1];
	struct spool_writer *w = spool_writer_new(sp, "s@x", rcpts3, 3, id);

	ck_assert_ptr_nonnull(w);
	ck_assert_int_eq(spool_writer_write(w, "partial", 7), 0);
	ck_assert(exists("tmp", id));
	spool_writer_abort(w);
	run_until_idle();
	ck_assert_uint_eq(count_entries("tmp"), 0);
	ck_assert_uint_eq(count_entries("queue"), 0);
	ck_assert_uint_eq(count_entries("state"), 0);
}
END_TEST

START_TEST(test_big_body)
{
	const size_t total = 2 * 1024 * 1024, piece = 64 * 1024;
	unsigned char *body = malloc(total), *got = malloc(total);
	char id[SPOOL_ID_LEN + 1];
	struct spool_envelope *e;
	struct spool_reader *r;
	struct spool_writer *w;
	struct done d = { 0, -1 };
	size_t off;
	ssize_t n;

	ck_assert_ptr_nonnull(body);
	ck_assert_ptr_nonnull(got);
	for (off = 0; off < total; off++)
		body[off] = (unsigned char)((off * 2654435761u) >> 13);
	w = spool_writer_new(sp, "big@example.org", rcpts3, 3, id);
	ck_assert_ptr_nonnull(w);
	for (off = 0; off < total; off += piece)
		ck_assert_int_eq(spool_writer_write(w, body + off, piece), 0);
	ck_assert_int_eq(spool_writer_size(w), (off_t)total);
	spool_writer_commit(w, done_cb, &d);
	run_until(&d);
	ck_assert_int_eq(d.status, 0);

	/* Larger than the header read: the trailer is checked separately. */
	e = spool_load(sp, id);
	ck_assert_ptr_nonnull(e);
	ck_assert_int_eq(e->body_size, (off_t)total);
	ck_assert_uint_eq(e->nrcpt, 3);
	spool_envelope_free(e);

	r = spool_reader_open(sp, id);
	ck_assert_ptr_nonnull(r);
	off = 0;
	while ((n = spool_reader_read(r, got + off, 10007)) > 0)
		off += (size_t)n;
	ck_assert_int_eq(n, 0);
	ck_assert_uint_eq(off, total);
	ck_assert(memcmp(got, body, total) == 0);
	spool_reader_close(r);
	free(body);
	free(got);
}
END_TEST

START_TEST(test_big_body_bad_trailer)
{
	const size_t total = 1536 * 1024;
	char id[SPOOL_ID_LEN + 1], *body = calloc(1, total), *buf;
	size_t len;

	ck_assert_ptr_nonnull(body);
	spool_message("s@x", rcpts3, 1, body, total, id);
	buf = read_file("queue", id, &len);
	buf[len - 2] ^= 1;		/* the last digit of the trailer id */
	write_file("queue", id, buf, len);
	ck_assert_ptr_null(spool_load(sp, id));
	free(buf);
	free(body);
}
END_TEST

/* ---- parsing: a file cut at any byte is never a message ---- */

/*
 * A body that looks like the end of a file: it holds the message's own
 * trailer "END <id>\n" (written once the id is known), so a file cut
 * right after it ends exactly like a whole one and only the size in the
 * header tells them apart.
 */
static char tricky_body[128];
static size_t tricky_len;

/* The bytes of a real message file, written by the writer. */
static char *
message_bytes(size_t *len, char id[SPOOL_ID_LEN + 1])
{
	struct spool_writer *w;
	struct done d = { 0, -1 };

	w = spool_writer_new(sp, "sender@example.org", rcpts3, 3, id);
	ck_assert_ptr_nonnull(w);
	tricky_len = (size_t)snprintf(tricky_body, sizeof(tricky_body),
	    "Subject: END\r\n\r\nrcpt x@y\n\nEND %s\n.\r\nmore\r\n", id);
	ck_assert_int_eq(spool_writer_write(w, tricky_body, tricky_len), 0);
	spool_writer_commit(w, done_cb, &d);
	run_until(&d);
	ck_assert_int_eq(d.status, 0);
	return read_file("queue", id, len);
}

START_TEST(test_parse_every_cut)
{
	char id[SPOOL_ID_LEN + 1];
	size_t len, cut;
	char *file = message_bytes(&len, id);
	struct spool_envelope *e;
	off_t off = -1;

	for (cut = 0; cut < len; cut++) {
		/* Exactly cut bytes, so a read past them is caught. */
		char *part = malloc(cut ? cut : 1);

		ck_assert_ptr_nonnull(part);
		memcpy(part, file, cut);
		e = spool_parse_message(part, cut, (off_t)cut, &off);
		ck_assert_msg(e == NULL,
		    "a file cut at %zu of %zu bytes parsed", cut, len);
		free(part);
	}
	e = spool_parse_message(file, len, (off_t)len, &off);
	ck_assert_ptr_nonnull(e);
	ck_assert_str_eq(e->id, id);
	ck_assert_str_eq(e->sender, "sender@example.org");
	ck_assert_uint_eq(e->nrcpt, 3);
	ck_assert_str_eq(e->rcpts[2], "c@example.com");
	ck_assert_int_eq(e->body_size, (off_t)tricky_len);
	ck_assert_mem_eq(file + off, tricky_body, tricky_len);
	ck_assert_int_eq(off + e->body_size + 4 + SPOOL_ID_LEN + 1, (off_t)len);
	spool_envelope_free(e);
	free(file);
}
END_TEST

START_TEST(test_parse_damaged_trailer)
{
	char id[SPOOL_ID_LEN + 1];
	size_t len, i, tlen = 4 + SPOOL_ID_LEN + 1;
	char *file = message_bytes(&len, id);
	struct spool_envelope *e;
	off_t off;

	/* Every byte of "END <id>\n", changed in two ways. */
	for (i = len - tlen; i < len; i++) {
		char saved = file[i];

		file[i] ^= 0x01;
		e = spool_parse_message(file, len, (off_t)len, &off);
		ck_assert_msg(e == NULL, "trailer byte %zu flipped: parsed",
		    i - (len - tlen));
		file[i] = saved == 'a' ? 'b' : 'a';
		e = spool_parse_message(file, len, (off_t)len, &off);
		ck_assert_msg(e == NULL, "trailer byte %zu changed: parsed",
		    i - (len - tlen));
		file[i] = saved;
	}
	e = spool_parse_message(file, len, (off_t)len, &off);
	ck_assert_ptr_nonnull(e);
	spool_envelope_free(e);
	/* One byte more or less than the header says. */
	ck_assert_ptr_null(spool_parse_message(file, len, (off_t)len + 1,
	    &off));
	free(file);
}
END_TEST

/* Hand-made files that must be refused. */
#define T_ID	"0123456789abcdef"
#define T_HEAD	"SESRELAY 1\nid " T_ID "\narrived 1\n"
#define T_SIZE0	"size 00000000000000000000\n"
#define T_END	"END " T_ID "\n"
static const char *const bad_messages[] = {
	/* another format version */
	"SESRELAY 2\nid " T_ID "\narrived 1\n" T_SIZE0
	    "from a@b\nrcpt c@d\n\n" T_END,
	/* upper-case id */
	"SESRELAY 1\nid 0123456789ABCDEF\narrived 1\n" T_SIZE0
	    "from a@b\nrcpt c@d\n\nEND 0123456789ABCDEF\n",
	/* arrival time not a number */
	"SESRELAY 1\nid " T_ID "\narrived x\n" T_SIZE0
	    "from a@b\nrcpt c@d\n\n" T_END,
	/* size not in 20 digits */
	T_HEAD "size 0\nfrom a@b\nrcpt c@d\n\n" T_END,
	/* no recipient, an empty one, no sender */
	T_HEAD T_SIZE0 "from a@b\n\n" T_END,
	T_HEAD T_SIZE0 "from a@b\nrcpt \n\n" T_END,
	T_HEAD T_SIZE0 "rcpt c@d\n\n" T_END,
	/* the size says one byte more than there is */
	T_HEAD "size 00000000000000000001\nfrom a@b\nrcpt c@d\n\n" T_END,
	"0123456789abcdef",
	"",
};

START_TEST(test_parse_bad_messages)
{
	const char *m = bad_messages[_i];
	off_t off;

	ck_assert_ptr_null(spool_parse_message(m, strlen(m),
	    (off_t)strlen(m), &off));
}
END_TEST

START_TEST(test_parse_minimal_message)
{
	static const char m[] = "SESRELAY 1\nid " T_ID "\narrived 7\n"
	    "size 00000000000000000002\nfrom \nrcpt c@d\n\nhi" T_END;
	struct spool_envelope *e;
	off_t off;

	e = spool_parse_message(m, sizeof(m) - 1, sizeof(m) - 1, &off);
	ck_assert_ptr_nonnull(e);
	ck_assert_str_eq(e->sender, "");
	ck_assert_int_eq(e->arrived, 7);
	ck_assert_int_eq(e->body_size, 2);
	ck_assert_mem_eq(m + off, "hi", 2);
	spool_envelope_free(e);
}
END_TEST

static const char state_text[] = "SESRELAY-STATE 1\nattempts 2\n"
    "next 1700000000\nrcpt 0 done 250 Ok 0100-x\nrcpt 2 failed\n"
    "unknown 1 2\nEND\n";

START_TEST(test_parse_state_every_cut)
{
	char id[SPOOL_ID_LEN + 1];
	size_t len, cut, slen = sizeof(state_text) - 1;
	char *file = message_bytes(&len, id);
	struct spool_envelope *e;
	off_t off;

	for (cut = 0; cut < slen; cut++) {
		char *part = malloc(cut ? cut : 1);

		ck_assert_ptr_nonnull(part);
		memcpy(part, state_text, cut);
		e = spool_parse_message(file, len, (off_t)len, &off);
		ck_assert_ptr_nonnull(e);
		ck_assert_msg(spool_parse_state(e, part, cut) == -1,
		    "a state file cut at %zu of %zu bytes parsed", cut, slen);
		spool_envelope_free(e);
		free(part);
	}
	e = spool_parse_message(file, len, (off_t)len, &off);
	ck_assert_ptr_nonnull(e);
	ck_assert_int_eq(spool_parse_state(e, state_text, slen), 0);
	ck_assert_uint_eq(e->attempts, 2);
	ck_assert_int_eq(e->next_attempt, 1700000000);
	ck_assert_int_eq(e->status[0], SPOOL_RCPT_DONE);
	ck_assert_str_eq(e->reply[0], "250 Ok 0100-x");
	ck_assert_int_eq(e->status[1], SPOOL_RCPT_PENDING);
	ck_assert_int_eq(e->status[2], SPOOL_RCPT_FAILED);
	ck_assert_ptr_null(e->reply[2]);
	ck_assert_ptr_nonnull(e->unknown);
	ck_assert_uint_eq(e->unknown[1], 2);
	spool_envelope_free(e);
	free(file);
}
END_TEST

static const char *const bad_states[] = {
	"SESRELAY-STATE 2\nattempts 0\nnext 0\nEND\n",
	"SESRELAY-STATE 1\nattempts x\nnext 0\nEND\n",
	"SESRELAY-STATE 1\nattempts 0\nEND\n",
	"SESRELAY-STATE 1\nattempts 0\nnext 0\nrcpt 3 done\nEND\n",
	"SESRELAY-STATE 1\nattempts 0\nnext 0\nrcpt 0 sent\nEND\n",
	"SESRELAY-STATE 1\nattempts 0\nnext 0\nrcpt 0 donex\nEND\n",
	"SESRELAY-STATE 1\nattempts 0\nnext 0\nrcpt x done\nEND\n",
	"SESRELAY-STATE 1\nattempts 0\nnext 0\nEND\ngarbage\n",
	"SESRELAY-STATE 1\nattempts 0\nnext 0\nEND",
	"SESRELAY-STATE 1\nattempts 0\nnext 0\nunknown 3 1\nEND\n",
	"SESRELAY-STATE 1\nattempts 0\nnext 0\nunknown 0 x\nEND\n",
	"SESRELAY-STATE 1\nattempts 0\nnext 0\nunknown 0 1 2\nEND\n",
	"SESRELAY-STATE 1\nattempts 0\nnext 0\nunknown  0 1\nEND\n",
	"SESRELAY-STATE 1\nattempts 0\nnext 0\nunknown 0\nEND\n",
};

START_TEST(test_parse_bad_states)
{
	char id[SPOOL_ID_LEN + 1];
	size_t len;
	char *file = message_bytes(&len, id);
	struct spool_envelope *e;
	off_t off;

	e = spool_parse_message(file, len, (off_t)len, &off);
	ck_assert_ptr_nonnull(e);
	ck_assert_msg(spool_parse_state(e, bad_states[_i],
	    strlen(bad_states[_i])) == -1, "bad state %d parsed", _i);
	spool_envelope_free(e);
	free(file);
}
END_TEST

/* ---- the start-up scan ---- */

struct scanned {
	char	ids[8][SPOOL_ID_LEN + 1];
	size_t	n;
	int	done;
	size_t	count;
	int	status;
};

static void
scan_cb(void *arg, struct spool_envelope *e)
{
	struct scanned *s = arg;

	ck_assert_uint_lt(s->n, 8);
	memcpy(s->ids[s->n++], e->id, SPOOL_ID_LEN + 1);
	spool_envelope_free(e);
}

static void
scan_done_cb(void *arg, size_t count, int status)
{
	struct scanned *s = arg;

	s->done++;
	s->count = count;
	s->status = status;
}

/* The start-up index, run to its end: the number found, or -1. */
static int
scan(struct scanned *got)
{
	struct spool_index *ix;

	got->n = 0;
	got->done = 0;
	ix = spool_index_start(sp, base, scan_cb, scan_done_cb, got);
	ck_assert_ptr_nonnull(ix);
	for (int i = 0; i < 500 && !got->done; i++)
		event_base_loop(base, EVLOOP_ONCE);
	spool_index_free(ix);
	ck_assert_int_eq(got->done, 1);
	return got->status == 0 ? (int)got->count : -1;
}

START_TEST(test_scan)
{
	char a[SPOOL_ID_LEN + 1], b[SPOOL_ID_LEN + 1], c[SPOOL_ID_LEN + 1];
	struct scanned got = { .n = 0 };
	struct spool_envelope *e;
	char p[PATH_MAX], *buf;
	size_t len;

	spool_message("s@x", rcpts3, 3, "A\r\n", 3, a);
	spool_message("s@x", rcpts3, 2, "B\r\n", 3, b);
	spool_message("s@x", rcpts3, 1, "C is cut short\r\n", 16, c);
	/* state of a, to be kept */
	e = spool_load(sp, a);
	ck_assert_ptr_nonnull(e);
	e->attempts = 4;
	spool_state_save(sp, e, NULL, NULL);
	spool_envelope_free(e);
	run_until_idle();
	spool_close(sp);
	sp = NULL;

	/* What a crash and a disk error leave behind. */
	write_file("queue", "0123456789abcdef", "garbage\n", 8);
	snprintf(p, sizeof(p), "%s/queue/%s", spooldir, c);
	buf = read_file("queue", c, &len);
	ck_assert_int_eq(truncate(p, (off_t)len / 2), 0);
	write_file("queue", "not-an-id", "x", 1);
	write_file("tmp", "fedcba9876543210", "SESRELAY 1\nid", 13);
	write_file("state", "00000000000000aa", "SESRELAY-STATE 1\n", 17);
	write_file("state", "0123456789abcdef.tmp", "SESRELAY", 8);
	write_file("state", "0000000000000bad.tmp", "SESRELAY", 8);

	reopen();
	ck_assert_int_eq(scan(&got), 2);
	ck_assert_uint_eq(got.n, 2);
	ck_assert((strcmp(got.ids[0], a) == 0 && strcmp(got.ids[1], b) == 0) ||
	    (strcmp(got.ids[0], b) == 0 && strcmp(got.ids[1], a) == 0));

	/* Valid messages stay, their state too. */
	ck_assert(exists("queue", a));
	ck_assert(exists("queue", b));
	ck_assert(exists("state", a));
	ck_assert_uint_eq(count_entries("queue"), 2);
	ck_assert_uint_eq(count_entries("state"), 1);
	/* Bad files are moved aside, unchanged, never deleted. */
	ck_assert(exists("corrupt", "0123456789abcdef"));
	ck_assert(exists("corrupt", c));
	ck_assert(exists("corrupt", "not-an-id"));
	ck_assert_uint_eq(count_entries("corrupt"), 3);
	free(buf);
	buf = read_file("corrupt", "0123456789abcdef", &len);
	ck_assert_uint_eq(len, 8);
	ck_assert_mem_eq(buf, "garbage\n", 8);
	free(buf);
	/* Unacknowledged and orphaned files are gone.  (tmp/ may now hold
	 * the empty files the spool creates ahead for new messages.) */
	ck_assert(!exists("tmp", "fedcba9876543210"));
	ck_assert(!exists("state", "00000000000000aa"));

	/* A second scan finds the same two and moves nothing. */
	ck_assert_int_eq(scan(&got), 2);
	ck_assert_uint_eq(count_entries("corrupt"), 3);
}
END_TEST

/*
 * A FIFO in queue/ (or state/) is refused and quarantined like any file
 * that is not a message; opening it must not wait for a writer (the
 * index thread would hang, and shutdown with it).
 */
START_TEST(test_scan_fifo)
{
	char id[SPOOL_ID_LEN + 1], p[PATH_MAX];
	struct scanned got = { .n = 0 };

	spool_message("s@x", rcpts3, 1, "A\r\n", 3, id);
	snprintf(p, sizeof(p), "%s/state/%s", spooldir, id);
	ck_assert_int_eq(mkfifo(p, 0600), 0);
	snprintf(p, sizeof(p), "%s/queue/0123456789abcdef", spooldir);
	ck_assert_int_eq(mkfifo(p, 0600), 0);
	ck_assert_int_eq(scan(&got), 1);
	ck_assert_str_eq(got.ids[0], id);
	ck_assert(exists("corrupt", "0123456789abcdef"));
}
END_TEST

/* ---- the start-up index, in the background ---- */

struct indexed {
	size_t	n;
	int	done;
	size_t	count;
	int	status;
};

static void
index_found_cb(void *arg, struct spool_envelope *e)
{
	((struct indexed *)arg)->n++;
	spool_envelope_free(e);
}

static void
index_done_cb(void *arg, size_t count, int status)
{
	struct indexed *x = arg;

	x->done++;
	x->count = count;
	x->status = status;
}

/* Spool n one-recipient messages at once (group commit: quick). */
static void
spool_many(int n)
{
	char id[SPOOL_ID_LEN + 1];
	struct done d = { 0, -1 };

	for (int i = 0; i < n; i++) {
		struct spool_writer *w = spool_writer_new(sp, "s@x", rcpts3, 1,
		    id);

		ck_assert_ptr_nonnull(w);
		ck_assert_int_eq(spool_writer_write(w, "A\r\n", 3), 0);
		spool_writer_commit(w, done_cb, &d);
	}
	run_until_idle();
	ck_assert_int_eq(d.fired, n);
	ck_assert_int_eq(d.status, 0);
}

START_TEST(test_index_in_background)
{
	struct indexed x = { 0, 0, 0, -1 };
	struct spool_index *ix;

	/* More than a batch, so several hand-overs to the loop. */
	spool_many(600);
	write_file("queue", "0123456789abcdef", "garbage\n", 8);
	write_file("tmp", "fedcba9876543210", "SESRELAY 1\nid", 13);
	write_file("state", "00000000000000aa", "SESRELAY-STATE 1\n", 17);
	reopen();
	ix = spool_index_start(sp, base, index_found_cb, index_done_cb, &x);
	ck_assert_ptr_nonnull(ix);
	/* tmp/ is clean before the call returns: new mail may come. */
	ck_assert(!exists("tmp", "fedcba9876543210"));
	for (int i = 0; i < 1000 && !x.done; i++)
		event_base_loop(base, EVLOOP_ONCE);
	ck_assert_int_eq(x.done, 1);
	ck_assert_int_eq(x.status, 0);
	ck_assert_uint_eq(x.count, 600);
	ck_assert_uint_eq(x.n, 600);
	ck_assert_uint_eq(spool_index_found(ix), 600);
	ck_assert(spool_index_is_done(ix));
	ck_assert(exists("corrupt", "0123456789abcdef"));
	ck_assert(!exists("state", "00000000000000aa"));
	spool_index_free(ix);
	ck_assert_uint_eq(count_entries("queue"), 600);
}
END_TEST

/*
 * n messages in queue/: one through the writer, the others copies of its
 * file under other ids (written directly: no syncs, so n may be large).
 */
static void
queue_copies(int n)
{
	char id[SPOOL_ID_LEN + 1], other[SPOOL_ID_LEN + 1], *buf, *p;
	size_t len;

	buf = message_bytes(&len, id);
	for (int i = 1; i < n; i++) {
		snprintf(other, sizeof(other), "%032x", (unsigned)i);
		for (p = buf; (p = memmem(p, len - (size_t)(p - buf), id,
		    SPOOL_ID_LEN)) != NULL; p += SPOOL_ID_LEN)
			memcpy(p, other, SPOOL_ID_LEN);
		write_file("queue", other, buf, len);
		memcpy(id, other, sizeof(id));
	}
	free(buf);
}

/*
 * Stopped midway (SIGTERM while indexing): nothing moves or is lost.
 * More than twice INDEX_PENDING (1024) messages: after the loop took
 * one hand-over, the thread fills the pending list again and waits, so
 * it is stopped mid-scan however fast it runs.
 */
START_TEST(test_index_stopped_midway)
{
	enum { N = 3000 };
	struct indexed x = { 0, 0, 0, -1 };
	struct spool_index *ix;

	queue_copies(N);
	reopen();
	ix = spool_index_start(sp, base, index_found_cb, index_done_cb, &x);
	ck_assert_ptr_nonnull(ix);
	event_base_loop(base, EVLOOP_ONCE);
	spool_index_free(ix);
	ck_assert_int_eq(x.done, 0);
	ck_assert_uint_le(x.n, N);
	ck_assert_uint_eq(count_entries("queue"), N);
	ck_assert_uint_eq(count_entries("corrupt"), 0);
}
END_TEST

/*
 * Regression (fixed): spool.c:455-461 (spool_writer_new) formats the envelope into a
 * fixed head[512] and writes n bytes, where n is snprintf's would-be
 * length: with a long sender (or a "rcpt" line over 512 bytes) it writes
 * bytes past the end of head (a stack over-read into the spool file) and
 * the message is then lost as corrupt.  The SMTP server caps addresses
 * at 254 bytes today, but the spool API does not say so.  Fix: refuse
 * (EINVAL) when snprintf's result is >= the room left, or write the
 * fields with separate write_all() calls; refuse '\n' in addresses too.
 */
START_TEST(test_long_sender)
{
	char sender[600], id[SPOOL_ID_LEN + 1];
	struct spool_writer *w;
	struct spool_envelope *e;
	struct done d = { 0, -1 };

	memset(sender, 's', sizeof(sender));
	strcpy(sender + sizeof(sender) - 13, "@example.org");
	w = spool_writer_new(sp, sender, rcpts3, 1, id);
	if (w == NULL)
		return;		/* refusing is fine */
	ck_assert_int_eq(spool_writer_write(w, "x\r\n", 3), 0);
	spool_writer_commit(w, done_cb, &d);
	run_until(&d);
	ck_assert_int_eq(d.status, 0);
	e = spool_load(sp, id);
	ck_assert_msg(e != NULL, "an accepted message does not load back");
	ck_assert_str_eq(e->sender, sender);
	ck_assert_uint_eq(e->nrcpt, 1);
	spool_envelope_free(e);
}
END_TEST


/* ---- commit errors and ids (issue 10, items 1 and 2) ---- */

#define NFAIL	24

/* The ids whose data sync fails, set before the commits start. */
static char fail_ids[NFAIL][SPOOL_ID_LEN + 1];
static int sync_calls;

/* A data sync that fails (EIO) for the messages in fail_ids only. */
static int
failing_sync(int fd, const char *id, void *arg)
{
	(void)arg;
	__atomic_add_fetch(&sync_calls, 1, __ATOMIC_SEQ_CST);
	for (size_t i = 0; i < NFAIL; i++)
		if (strcmp(fail_ids[i], id) == 0) {
			errno = EIO;
			return -1;
		}
	return fdatasync(fd);
}

/*
 * Many commits in flight at once on all the sync threads, every third
 * one's data sync failing: exactly those fail (EIO, in neither tmp/ nor
 * queue/), every other one succeeds and loads.  With a sync shared by a
 * batch (the old syncfs()), an error went to the wrong messages.
 */
START_TEST(test_sync_error_fails_only_its_message)
{
	struct spool_writer *w[NFAIL];
	struct done d[NFAIL];
	char id[NFAIL][SPOOL_ID_LEN + 1], body[64];

	memset(fail_ids, 0, sizeof(fail_ids));
	sync_calls = 0;
	for (int i = 0; i < NFAIL; i++) {
		w[i] = spool_writer_new(sp, "s@x", rcpts3, 1, id[i]);
		ck_assert_ptr_nonnull(w[i]);
		snprintf(body, sizeof(body), "message %d\r\n", i);
		ck_assert_int_eq(spool_writer_write(w[i], body, strlen(body)),
		    0);
		if (i % 3 == 0)
			memcpy(fail_ids[i], id[i], sizeof(id[i]));
	}
	spool_set_sync(sp, failing_sync, NULL);
	commit_all(w, d, NFAIL);
	spool_set_sync(sp, NULL, NULL);
	ck_assert_int_eq(sync_calls, NFAIL);
	for (int i = 0; i < NFAIL; i++) {
		struct spool_envelope *e;

		ck_assert_int_eq(d[i].fired, 1);
		ck_assert(!exists("tmp", id[i]));
		if (i % 3 == 0) {
			ck_assert_msg(d[i].status == EIO, "message %d: status "
			    "%d, not EIO", i, d[i].status);
			ck_assert_msg(!exists("queue", id[i]), "message %d "
			    "failed its sync but is queued", i);
			continue;
		}
		ck_assert_msg(d[i].status == 0, "message %d: status %d", i,
		    d[i].status);
		e = spool_load(sp, id[i]);
		ck_assert_ptr_nonnull(e);
		snprintf(body, sizeof(body), "message %d\r\n", i);
		ck_assert_int_eq(e->body_size, (off_t)strlen(body));
		spool_envelope_free(e);
	}
	ck_assert_uint_eq(count_entries("queue"), NFAIL - NFAIL / 3);
	ck_assert_uint_eq(count_entries("tmp"), 0);
}
END_TEST

/* A single commit whose sync fails reports it too (not only batches). */
START_TEST(test_sync_error_single)
{
	struct spool_writer *w;
	struct done d = { 0, -1 };
	char id[SPOOL_ID_LEN + 1];

	memset(fail_ids, 0, sizeof(fail_ids));
	w = spool_writer_new(sp, "s@x", rcpts3, 1, id);
	ck_assert_ptr_nonnull(w);
	ck_assert_int_eq(spool_writer_write(w, "x\r\n", 3), 0);
	memcpy(fail_ids[0], id, sizeof(id));
	spool_set_sync(sp, failing_sync, NULL);
	spool_writer_commit(w, done_cb, &d);
	run_until(&d);
	spool_set_sync(sp, NULL, NULL);
	ck_assert_int_eq(d.status, EIO);
	ck_assert(!exists("queue", id));
	ck_assert(!exists("tmp", id));
}
END_TEST

/*
 * queue/ already has a file by the id of a message being committed (a
 * collision): the commit never replaces it; the message gets a new id,
 * in its file (header and trailer) and in the caller's buffer, before
 * the callback runs.
 */
START_TEST(test_commit_never_replaces)
{
	static const char precious[] = "a queued message, not to be lost\n";
	struct spool_writer *w;
	struct spool_envelope *e;
	struct spool_reader *r;
	struct done d = { 0, -1 };
	char id[SPOOL_ID_LEN + 1], first[SPOOL_ID_LEN + 1], got[64];
	size_t len;
	char *old;

	w = spool_writer_new(sp, "s@x", rcpts3, 2, id);
	ck_assert_ptr_nonnull(w);
	ck_assert_int_eq(spool_writer_write(w, "body\r\n", 6), 0);
	memcpy(first, id, sizeof(id));
	write_file("queue", first, precious, strlen(precious));
	spool_writer_commit(w, done_cb, &d);
	run_until(&d);
	ck_assert_int_eq(d.status, 0);
	ck_assert_str_ne(id, first);
	ck_assert(spool_id_is_valid(id));
	old = read_file("queue", first, &len);
	ck_assert_str_eq(old, precious);
	free(old);
	e = spool_load(sp, id);
	ck_assert_msg(e != NULL, "the renumbered message does not load");
	ck_assert_str_eq(e->id, id);
	ck_assert_uint_eq(e->nrcpt, 2);
	spool_envelope_free(e);
	r = spool_reader_open(sp, id);
	ck_assert_ptr_nonnull(r);
	ck_assert_int_eq(spool_reader_read(r, got, sizeof(got)), 6);
	ck_assert(memcmp(got, "body\r\n", 6) == 0);
	spool_reader_close(r);
	ck_assert_uint_eq(count_entries("queue"), 2);
	ck_assert_uint_eq(count_entries("tmp"), 0);
}
END_TEST

/*
 * state/ still has a file by the id of a message being committed (a
 * removed message's, its unlink not yet done; then a restart): the
 * message gets a new id, so that state never marks its recipients done.
 */
START_TEST(test_commit_skips_left_state)
{
	static const char left[] = "SESRELAY-STATE 1\nattempts 3\nnext 0\n"
	    "rcpt 0 done 250 Ok\nEND\n";
	struct spool_writer *w;
	struct spool_envelope *e;
	struct done d = { 0, -1 };
	char id[SPOOL_ID_LEN + 1], first[SPOOL_ID_LEN + 1];

	w = spool_writer_new(sp, "s@x", rcpts3, 1, id);
	ck_assert_ptr_nonnull(w);
	ck_assert_int_eq(spool_writer_write(w, "body\r\n", 6), 0);
	memcpy(first, id, sizeof(id));
	write_file("state", first, left, strlen(left));
	spool_writer_commit(w, done_cb, &d);
	run_until(&d);
	ck_assert_int_eq(d.status, 0);
	ck_assert_str_ne(id, first);
	ck_assert(!exists("queue", first));
	reopen();
	e = spool_load(sp, id);
	ck_assert_ptr_nonnull(e);
	ck_assert_int_eq(e->status[0], SPOOL_RCPT_PENDING);
	ck_assert_uint_eq(e->attempts, 0);
	spool_envelope_free(e);
}
END_TEST

/* Ids: 8 hex digits of time, 96 random bits; 16-digit ones still valid. */
START_TEST(test_id_format)
{
	char id[SPOOL_ID_LEN + 1], id2[SPOOL_ID_LEN + 1];
	struct spool_writer *w, *w2;
	unsigned long t;

	ck_assert_int_eq(SPOOL_ID_LEN, 32);
	w = spool_writer_new(sp, "s@x", rcpts3, 1, id);
	w2 = spool_writer_new(sp, "s@x", rcpts3, 1, id2);
	ck_assert_ptr_nonnull(w);
	ck_assert_ptr_nonnull(w2);
	ck_assert(spool_id_is_valid(id));
	ck_assert_uint_eq(strlen(id), SPOOL_ID_LEN);
	ck_assert_int_eq(sscanf(id, "%8lx", &t), 1);
	ck_assert((time_t)t >= time(NULL) - 5 && (time_t)t <= time(NULL));
	ck_assert_str_ne(id + 8, id2 + 8);
	spool_writer_abort(w);
	spool_writer_abort(w2);

	ck_assert(spool_id_is_valid("0123456789abcdef"));
	ck_assert(spool_id_is_valid("0123456789abcdef0123456789abcdef"));
	ck_assert(!spool_id_is_valid(""));
	ck_assert(!spool_id_is_valid("0123456789abcde"));
	ck_assert(!spool_id_is_valid("0123456789abcdef0"));
	ck_assert(!spool_id_is_valid("0123456789abcdef0123456789abcde"));
	ck_assert(!spool_id_is_valid("0123456789abcdef0123456789abcdef0"));
	ck_assert(!spool_id_is_valid("0123456789ABCDEF"));
	ck_assert(!spool_id_is_valid("0123456789abcdeg"));
	ck_assert(!spool_id_is_valid("../../etc/passwd"));
}
END_TEST

/*
 * Out of descriptors when the state file is opened (the index runs while
 * the daemon serves): spool_load fails with EMFILE, for the index to try
 * again, never returns the message without its state (held lost, done
 * recipients sent again).
 */
START_TEST(test_load_out_of_descriptors)
{
	static const char held[] = "SESRELAY-STATE 1\nattempts 2\nnext 0\n"
	    "held\nrcpt 0 done 250 Ok\nEND\n";
	struct spool_envelope *e;
	struct rlimit saved, one_more;
	char id[SPOOL_ID_LEN + 1];
	int fd, err;

	spool_message("s@x", rcpts3, 2, "x\r\n", 3, id);
	write_file("state", id, held, strlen(held));
	ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &saved), 0);
	/* Room for exactly one more descriptor: the message's. */
	ck_assert_int_ne(fd = dup(0), -1);
	close(fd);
	one_more = saved;
	one_more.rlim_cur = (rlim_t)fd + 1;
	ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &one_more), 0);
	e = spool_load(sp, id);
	err = errno;
	ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &saved), 0);
	ck_assert_msg(e == NULL, "loaded without its state: held=%d",
	    e != NULL ? e->held : -1);
	ck_assert_int_eq(err, EMFILE);

	e = spool_load(sp, id);
	ck_assert_ptr_nonnull(e);
	ck_assert_int_eq(e->held, 1);
	ck_assert_int_eq(e->status[0], SPOOL_RCPT_DONE);
	spool_envelope_free(e);
}
END_TEST

/* ---- the layout: one table, which tmpfiles.d follows ---- */

struct tmpfiles_line {
	char	 type[8], path[PATH_MAX], mode[16], user[64], group[64];
};

/* The "d" lines of systemd/sesrelay.tmpfiles.in; their number. */
static size_t
read_tmpfiles(struct tmpfiles_line *v, size_t max)
{
	char file[PATH_MAX], line[1024];
	size_t n = 0;
	FILE *fp;

	snprintf(file, sizeof(file), "%s/systemd/sesrelay.tmpfiles.in",
	    TOP_SRCDIR);
	fp = fopen(file, "r");
	ck_assert_msg(fp != NULL, "%s: %s", file, strerror(errno));
	while (n < max && fgets(line, sizeof(line), fp) != NULL)
		if (sscanf(line, "%7s %4095s %15s %63s %63s", v[n].type,
		    v[n].path, v[n].mode, v[n].user, v[n].group) == 5 &&
		    strcmp(v[n].type, "d") == 0)
			n++;
	fclose(fp);
	return n;
}

/*
 * tmpfiles.d makes the spool as spool_layout.h says: a line for each
 * row of the table, "d <spool>/<name> <drop_mode> sesrelay <group> -",
 * and none for anything else under the spool.  (systemd_check.sh checks
 * that <spool> is the daemon's default.)
 */
START_TEST(test_tmpfiles_follows_the_layout)
{
	struct tmpfiles_line v[32];
	size_t n = read_tmpfiles(v, 32), found = 0, plen;
	const char *spool = NULL;
	char want[PATH_MAX], mode[16];

	for (size_t i = 0; i < n; i++)
		if (strcmp(strrchr(v[i].path, '/'), "/queue") == 0)
			spool = v[i].path;
	ck_assert_msg(spool != NULL, "no queue/ in tmpfiles.d");
	plen = strlen(spool) - strlen("/queue");
	for (int d = 0; d < SPOOL_NDIRS; d++) {
		const struct spool_dir_spec *r = &spool_layout[d];
		size_t i;

		snprintf(want, sizeof(want), "%.*s%s%s", (int)plen, spool,
		    r->name[0] ? "/" : "", r->name);
		for (i = 0; i < n && strcmp(v[i].path, want) != 0; i++)
			;
		ck_assert_msg(i < n, "tmpfiles.d has no line for %s", want);
		snprintf(mode, sizeof(mode), "%04o", (unsigned)r->drop_mode);
		ck_assert_str_eq(v[i].mode, mode);
		ck_assert_str_eq(v[i].user, "sesrelay");
		ck_assert_str_eq(v[i].group, r->drop_group ? SPOOL_DROP_GROUP :
		    "sesrelay");
	}
	for (size_t i = 0; i < n; i++)
		if (strncmp(v[i].path, spool, plen) == 0 &&
		    (v[i].path[plen] == '\0' || v[i].path[plen] == '/'))
			found++;
	ck_assert_uint_eq(found, SPOOL_NDIRS);
}
END_TEST

/* Mode and group of the directory open at fd. */
static void
assert_dir(int fd, mode_t mode, gid_t gid)
{
	struct stat st;

	ck_assert_int_eq(fstat(fd, &st), 0);
	ck_assert_uint_eq(st.st_mode & 07777, mode);
	ck_assert_uint_eq(st.st_gid, gid);
}

/*
 * spool_layout_apply: with the drop group, the directories it may
 * enter get its group and drop_mode; without it, whatever they allow
 * beyond their mode is taken away; the daemon's own directories keep
 * their mode (spool_open checks it, never changes it).
 */
START_TEST(test_layout_apply)
{
	char p[PATH_MAX];
	gid_t g = getegid();
	int fd;

	snprintf(p, sizeof(p), "%s/dir", spooldir);
	ck_assert_int_eq(mkdir(p, 0700), 0);
	ck_assert_int_ne(fd = open(p, O_RDONLY | O_DIRECTORY), -1);
	ck_assert_int_eq(spool_layout_apply(fd, SPOOL_DIR_MAILDROP,
	    (uid_t)-1, (gid_t)-1, g), 0);
	assert_dir(fd, 01730, g);
	ck_assert_int_eq(spool_layout_apply(fd, SPOOL_DIR_TOP, (uid_t)-1,
	    (gid_t)-1, g), 0);
	assert_dir(fd, 0710, g);
	ck_assert_int_eq(spool_layout_apply(fd, SPOOL_DIR_MAILDROP,
	    (uid_t)-1, (gid_t)-1, (gid_t)-1), 0);
	assert_dir(fd, 0700, g);
	ck_assert_int_eq(fchmod(fd, 0750), 0);
	ck_assert_int_eq(spool_layout_apply(fd, SPOOL_DIR_QUEUE, (uid_t)-1,
	    (gid_t)-1, (gid_t)-1), 0);
	assert_dir(fd, 0750, g);
	close(fd);
	ck_assert(spool_layout_drop_is_closed(01730));
	ck_assert(!spool_layout_drop_is_closed(0730));
	ck_assert(!spool_layout_drop_is_closed(01731));
}
END_TEST

/* A test case of the suite: a scratch spool per test, 30 s at most. */
static TCase *
spool_tcase(Suite *s, const char *name)
{
	TCase *tc = tcase_create(name);

	tcase_add_unchecked_fixture(tc, top_setup, top_teardown);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	suite_add_tcase(s, tc);
	return tc;
}

static Suite *
spool_suite(void)
{
	Suite *s = suite_create("spool");
	TCase *tc;

	tc = spool_tcase(s, "io");
	tcase_add_test(tc, test_open_creates_subdirs);
	tcase_add_test(tc, test_commit_load_read);
	tcase_add_test(tc, test_null_sender_and_empty_body);
	tcase_add_test(tc, test_load_missing);
	tcase_add_test(tc, test_load_refuses_wrong_name);
	tcase_add_test(tc, test_state_save_and_load);
	tcase_add_test(tc, test_many_commits_at_once);
	tcase_add_test(tc, test_dsn_flag_and_bounced_state);
	tcase_add_test(tc, test_bad_state_means_resend);
	tcase_add_test(tc, test_remove);
	tcase_add_test(tc, test_remove_failed_keeps_state);
	tcase_add_test(tc, test_abort_leaves_nothing);
	tcase_add_test(tc, test_big_body);
	tcase_add_test(tc, test_big_body_bad_trailer);

	tc = spool_tcase(s, "parse");
	tcase_add_test(tc, test_parse_every_cut);
	tcase_add_test(tc, test_parse_damaged_trailer);
	tcase_add_loop_test(tc, test_parse_bad_messages, 0,
	    sizeof(bad_messages) / sizeof(bad_messages[0]));
	tcase_add_test(tc, test_parse_minimal_message);
	tcase_add_test(tc, test_parse_state_every_cut);
	tcase_add_loop_test(tc, test_parse_bad_states, 0,
	    sizeof(bad_states) / sizeof(bad_states[0]));

	tc = spool_tcase(s, "scan");
	tcase_add_test(tc, test_scan);
	tcase_add_test(tc, test_scan_fifo);
	tcase_add_test(tc, test_index_in_background);
	tcase_add_test(tc, test_index_stopped_midway);

	tc = spool_tcase(s, "commit");
	tcase_add_test(tc, test_sync_error_fails_only_its_message);
	tcase_add_test(tc, test_sync_error_single);
	tcase_add_test(tc, test_commit_never_replaces);
	tcase_add_test(tc, test_commit_skips_left_state);
	tcase_add_test(tc, test_id_format);

	tc = spool_tcase(s, "layout");
	tcase_add_test(tc, test_tmpfiles_follows_the_layout);
	tcase_add_test(tc, test_layout_apply);

	/* Bugs found and fixed: each test keeps it fixed. */
	tc = spool_tcase(s, "regressions");
	tcase_add_test(tc, test_long_sender);
	tcase_add_test(tc, test_load_out_of_descriptors);
	return s;
}

int
main(void)
{
	return fixture_run(spool_suite());
}
