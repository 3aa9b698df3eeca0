/*
 * spool.h: the durable spool, the single source of truth for mail.
 *
 * Only spool.c builds spool paths or opens spool files (and
 * spool_layout.c, the table of its directories, their modes and groups).  A message is
 * acknowledged only after spool_writer_commit()'s callback reports
 * success: by then its file was fsynced, renamed into queue/ and the
 * directory fsynced.  All fsyncs run on sync threads (each message's
 * own fdatasync, one directory fsync per batch); callbacks run on the
 * event loop.
 */
#ifndef SESRELAY_SPOOL_H
#define SESRELAY_SPOOL_H

#include <stddef.h>
#include <sys/types.h>
#include <time.h>

#include "spool_layout.h"

struct event_base;
struct spool;
struct spool_writer;
struct spool_reader;

/*
 * Queue ids: 8 hex digits of the time in seconds, then 96 random bits
 * (24 hex digits).  Spools written before that have 16-digit ids (time
 * and 32 random bits); they are still read.
 */
#define SPOOL_ID_LEN	32		/* hex characters */
#define SPOOL_ID_LEN_V1	16		/* the ids of older spools */
#define SPOOL_FORMAT	1

enum spool_rcpt_status {
	SPOOL_RCPT_PENDING = 0,
	SPOOL_RCPT_DONE,
	SPOOL_RCPT_FAILED,	/* failed; its bounce not yet queued */
	SPOOL_RCPT_BOUNCED,	/* failed, and the bounce is queued */
};

/* Envelope flags. */
#define SPOOL_F_DSN	0x1	/* a bounce: never bounced itself */

/* The envelope of a stored message, and its delivery state. */
struct spool_envelope {
	char			 id[SPOOL_ID_LEN + 1];
	time_t			 arrived;
	off_t			 body_size;
	char			*sender;
	unsigned		 flags;		/* SPOOL_F_* */
	size_t			 nrcpt;
	char			**rcpts;
	/* state, from state/<id> when present */
	enum spool_rcpt_status	*status;
	char			**reply;	/* last reply per rcpt, or NULL */
	unsigned		*unknown;	/* NULL, or per rcpt: copies
						 * sent whose outcome is
						 * unknown (connection lost
						 * after the dot); kept in
						 * the state file */
	unsigned		 attempts;
	time_t			 next_attempt;
	int			 held;		/* on hold by the operator */
};

/* Callback for asynchronous operations: status 0 is success, else errno. */
typedef void (*spool_done_cb)(void *arg, int status);

/*
 * Open (creating missing subdirectories) the spool at dir and start the
 * sync threads; NULL with err.
 */
struct spool *spool_open(const char *dir, struct event_base *base,
    char *err, size_t errlen);
void spool_close(struct spool *);

/* Is id a queue id (either length, lower-case hex)?  The one check. */
int spool_id_is_valid(const char *id);

/*
 * Move name, a refused file of directory from (open at fromfd), to
 * corrupt/, never deleting it: as "<name>" from queue/, as
 * "<from>-<name>" from anywhere else (corrupt/maildrop-<name>).  One
 * warning either way, with why: spool.quarantined (pickup.refused for
 * the maildrop) file= reason= moved_to=corrupt/<dest>, or
 * spool.quarantine_failed (pickup.quarantine_failed) with error=.  0, or
 * -1 with errno when it cannot be moved (it then stays where it is).
 * Safe on any thread.
 */
int spool_quarantine(struct spool *, int fromfd, enum spool_dir from,
    const char *name, const char *why);

/*
 * Start a message: tmp/<id> is created with O_EXCL and the envelope
 * written.  The id is copied to id_out, which must stay valid until the
 * commit's callback: if queue/ (or state/) already has that name, the
 * commit gives the message a new id and writes it there before the
 * callback runs.
 * NULL with errno on failure.
 */
struct spool_writer *spool_writer_new(struct spool *, const char *sender,
    char *const *rcpts, size_t nrcpt, char id_out[SPOOL_ID_LEN + 1]);
/* The same, with envelope flags (SPOOL_F_*). */
struct spool_writer *spool_writer_new_flags(struct spool *,
    const char *sender, char *const *rcpts, size_t nrcpt, unsigned flags,
    char id_out[SPOOL_ID_LEN + 1]);
/* Append body bytes; -1 (and the writer remembers) on a write error. */
int spool_writer_write(struct spool_writer *, const void *buf, size_t len);
/* Body bytes written so far. */
off_t spool_writer_size(const struct spool_writer *);
/* Drop the message: the tmp file is removed. */
void spool_writer_abort(struct spool_writer *);
/*
 * Finish and make durable.  The writer is consumed.  cb runs on the loop
 * once the message is in queue/ and its directory synced (status 0), or
 * after a failure (status errno: its data could not be synced, written
 * or renamed; the file is in neither tmp/ nor queue/).  A commit never
 * replaces a file in queue/.  The envelope passed to cb-side users is
 * loaded again with spool_load().
 */
void spool_writer_commit(struct spool_writer *, spool_done_cb cb, void *arg);

/*
 * Index the spool at start, in the background, so that mail is accepted
 * at once however long the queue.  spool_index_start() first removes the
 * tmp/ leftovers (never acknowledged; from then on new messages may be
 * written), then starts a thread that lists queue/ and loads every
 * message, oldest id first; their envelopes come back to the loop in
 * batches (through an eventfd) and found() takes ownership of each.
 * Files that do not parse are moved to corrupt/ and logged; then stale
 * state/ files are removed, and done() runs once, on the loop, with the
 * number found (status 0) or errno when queue/ cannot be listed.
 *
 * The daemon commits, delivers and removes messages meanwhile, so
 * found() may get a message the caller already has (committed while
 * queue/ was listed, or loaded on demand): the caller drops those.  A
 * message removed before the thread reached it is skipped.
 * NULL with errno when the thread cannot start.
 */
struct spool_index;
struct spool_index *spool_index_start(struct spool *, struct event_base *,
    void (*found)(void *arg, struct spool_envelope *env),
    void (*done)(void *arg, size_t count, int status), void *arg);
/* Has done() run?  (1 for NULL.) */
int spool_index_is_done(const struct spool_index *);
/* Messages handed to found() so far. */
size_t spool_index_found(const struct spool_index *);
/*
 * Stop the thread (mid-scan, the rest simply stays in queue/ for the
 * next start) and free; before spool_close().  Not from a callback.
 */
void spool_index_free(struct spool_index *);

/*
 * A fresh envelope (no delivery yet) for a message just committed, from
 * what the writer was given: saves reading it back from disk.
 */
struct spool_envelope *spool_envelope_new(const char *id, const char *sender,
    char *const *rcpts, size_t nrcpt, off_t body_size);

/* Load one message's envelope and state; NULL with errno. */
struct spool_envelope *spool_load(struct spool *, const char *id);
void spool_envelope_free(struct spool_envelope *);

/*
 * Parse a message file's contents (pure; used by spool_load, the tests
 * and the fuzzer).  buf holds the first len bytes of a file whose total
 * size is file_size.  Returns the envelope or NULL; *body_off is where
 * the body starts.
 */
struct spool_envelope *spool_parse_message(const char *buf, size_t len,
    off_t file_size, off_t *body_off);
/* Apply a state file's contents to env; 0 or -1 when it does not parse. */
int spool_parse_state(struct spool_envelope *env, const char *buf,
    size_t len);

/* Record env's delivery state durably (async; cb may be NULL). */
void spool_state_save(struct spool *, const struct spool_envelope *env,
    spool_done_cb cb, void *arg);
/* Remove a finished message and its state (async; cb may be NULL). */
void spool_remove(struct spool *, const char *id, spool_done_cb cb,
    void *arg);

/* Stream a message's body. */
struct spool_reader *spool_reader_open(struct spool *, const char *id);
ssize_t spool_reader_read(struct spool_reader *, void *buf, size_t len);
void spool_reader_close(struct spool_reader *);

/*
 * Is there room for a message of `size` bytes (0: unknown) while keeping
 * min_free bytes and min_inodes inodes free?  1 yes, 0 no (errno ENOSPC),
 * -1 when the file system cannot be asked.
 */
int spool_has_room(const struct spool *, long long size, long long min_free,
    long long min_inodes);
/* The same for the file system of fd (sesrelay-sendmail's maildrop). */
int spool_fs_has_room(int fd, long long size, long long min_free,
    long long min_inodes);

/*
 * Tests only: fn replaces fdatasync() for message files (called on a
 * sync thread with the file's descriptor and id; 0, or -1 with errno,
 * which must fail that message and no other).  NULL restores it.  Set
 * it while no commit is in flight.
 */
typedef int (*spool_sync_fn)(int fd, const char *id, void *arg);
void spool_set_sync(struct spool *, spool_sync_fn fn, void *arg);

/* Jobs queued to the sync threads and not yet finished (for shutdown). */
size_t spool_pending(const struct spool *);
/* Block until every queued job finished and its callback ran (shutdown). */
void spool_drain(struct spool *);

#endif
