/*
 * spool.c: the on-disk queue, its sync threads and its start-up index.
 *
 * Layout under the spool directory:
 *   tmp/<id>        a message being received; never acknowledged
 *   queue/<id>      a committed message (immutable once there)
 *   state/<id>      its delivery state, replaced atomically
 *   corrupt/<id>    files that did not parse, kept for the operator
 *                   (and maildrop-<name>: refused maildrop files)
 * (the directories, their modes and groups: the table in spool_layout.c)
 *
 * Message file format, version 1 (text envelope, then the body):
 *   "SESRELAY 1\n" "id <id>\n" "arrived <unix time>\n"
 *   "size <20 digits>\n" "from <addr>\n" ["flags dsn\n"] ("rcpt <addr>\n")+
 *   "\n"
 *   <body: exactly size bytes, CRLF lines, not dot-stuffed>
 *   "END <id>\n"
 * The size field is written as zeros and patched before the fsync; a
 * file whose length is not exactly header + size + trailer, or whose
 * trailer is not "END <id>\n", is refused: a file cut short at any byte
 * is never taken for a message.
 *
 * State file format: "SESRELAY-STATE 1\n" "attempts N\n" "next T\n"
 * ["held\n"] ("rcpt I done|failed|bounced [reply]\n" | "unknown I N\n")*
 * "END\n" ("unknown I N": N copies to recipient I had an unknown outcome).
 *
 * Durability order for a commit (why each step matters):
 *   1. write tmp/<id> (in the loop: page cache only)
 *   2. fdatasync the file, through its own descriptor: its bytes are on
 *      disk before it has a name in queue/, so a crash never shows a
 *      queued name with missing data.  A failure here (EIO, ENOSPC at
 *      writeback: write() succeeded, the disk did not) is reported by
 *      the kernel to every open file of that inode and to no other, so
 *      it reaches exactly this message: it is unlinked and its client
 *      gets a 4xx.  Never syncfs(): it reports an error once per open
 *      file it was called on, so with several threads syncing through
 *      one descriptor one consumes the error of another's batch (whose
 *      clients then got 250 for files that were zeros on disk), and
 *      before Linux 5.8 it reports none at all.
 *   3. rename into queue/ with RENAME_NOREPLACE: the atomic moment the
 *      message exists.  It never replaces a queued message: if the id is
 *      taken (the odds are 2^-96 a second, but a rename must not be the
 *      one place that trusts them), or state/ still has a file by that
 *      name (a removed message's, not yet unlinked: it would mark this
 *      one's recipients done at the next start), the message gets a new
 *      id, written into its header and trailer and synced again (step
 *      2) first.
 *   4. fsync queue/ (each thread through its own open file of it, for
 *      the reason in 2): the rename itself is on disk.  If that fails,
 *      the batch's new names are unlinked and its clients get a 4xx.
 *   5. only now the callback runs and the client may hear 250.
 * Steps 2-4 run on SYNC_THREADS sync threads.  Each takes its share of
 * the waiting commits (a batch), starts writeback of all of them at
 * once (sync_file_range), fdatasyncs each, renames each, and covers all
 * the renames with one fsync of queue/.  Why not one syncfs() per
 * batch (group commit): besides losing errors (2), it was no faster
 * (2,316 msgs/s against 2,861 for parallel fdatasyncs at 8 clients, in
 * issue 10) and made every message wait for every dirty page of the
 * file system, so a process writing a big file next to the spool
 * pushed p99 accept latency to 1.5-1.9 s (0.55-0.68 s with per-file
 * syncs).  bench/accept.sh --neighbour measures both cases.  The
 * threads wake the loop through an eventfd.
 */
#include "config.h"

#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/queue.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "fdio.h"
#include "log.h"
#include "spool.h"
#include "spool_layout.h"

#define SIZE_DIGITS	20
#define SYNC_THREADS	8	/* workers syncing files in parallel */
#define SYNC_BATCH	32	/* commits one worker takes at a time, at most */
#define ID_TRIES	64	/* new ids tried when queue/ has the name */
#define ID_RANDOM_BYTES	12	/* 96 bits in an id */
_Static_assert(8 + 2 * ID_RANDOM_BYTES == SPOOL_ID_LEN, "id = time + random");
#define POOL_SIZE	64	/* empty tmp/ files created ahead */
#define POOL_LOW	32	/* below this, worker 0 makes more */
#define MAX_HEADER	(1024 * 1024)

enum job_type { JOB_COMMIT, JOB_STATE, JOB_REMOVE };

struct job {
	enum job_type		 type;
	int			 fd;
	char			 id[SPOOL_ID_LEN + 1];
	/* commits: the name in tmp/, where the id is in the file, and the
	 * caller's copy of the id (updated on the loop if it changed) */
	char			 tmpname[SPOOL_ID_LEN + 1];
	off_t			 id_off, trailer_off;
	char			*id_out;
	char			*data;
	size_t			 len;
	spool_done_cb		 cb;
	void			*arg;
	int			 status;
	TAILQ_ENTRY(job)	 entry;
};
TAILQ_HEAD(jobq, job);

struct spool {
	char		*dir;
	int		 tmpfd, queuefd, statefd, corruptfd, lockfd;
	struct event	*wake_ev;
	int		 wakefd;
	pthread_t	 threads[SYNC_THREADS];
	struct sync_worker *workers;
	pthread_mutex_t	 lock;
	pthread_cond_t	 cond;
	struct jobq	 todo;		/* loop -> thread */
	struct jobq	 done;		/* thread -> loop */
	spool_sync_fn	 sync_fn;	/* tests: instead of fdatasync */
	void		*sync_arg;
	size_t		 npending;	/* loop side count */
	int		 stopping;
	/*
	 * Empty tmp/<id> files that worker 0 creates ahead of time, so that
	 * the inode allocation (the costliest part of a new message on ext4)
	 * happens off the event loop.  Under the lock.
	 */
	int		 pool_fd[POOL_SIZE];
	char		 pool_id[POOL_SIZE][SPOOL_ID_LEN + 1];
	size_t		 npool;
	int		 pool_enabled;	/* after the start-up scan of tmp/ */
};

/*
 * A sync thread, with its own open file of queue/: the kernel reports a
 * writeback error once to each open file, so a descriptor shared by
 * the threads would let one consume the error another must see.
 */
struct sync_worker {
	struct spool	*spool;
	int		 index;
	int		 queuefd;
};

struct spool_writer {
	struct spool	*spool;
	int		 fd;
	char		 id[SPOOL_ID_LEN + 1];
	char		*id_out;	/* the caller's copy */
	off_t		 id_off;	/* offset of the id in the header */
	off_t		 header_len;
	off_t		 size_field;	/* offset of the size digits */
	off_t		 body_size;
	int		 error;		/* first write errno, sticky */
};

struct spool_reader {
	int	 fd;
	off_t	 left;
};

/* ---- the sync threads ---- */

static int new_id(char id[SPOOL_ID_LEN + 1]);

/* Step 2 for one message: its data, through its own descriptor. */
static int
data_sync(struct spool *s, struct job *j)
{
	if (s->sync_fn != NULL)
		return s->sync_fn(j->fd, j->id, s->sync_arg) == -1 ? errno : 0;
	return fdatasync(j->fd) == -1 ? errno : 0;
}

/*
 * Rename tmp/<tmpname> to queue/<id>, never over an existing file:
 * renameat2(RENAME_NOREPLACE), or link + unlink where the file system
 * has no such flag (link fails with EEXIST too).  0 or errno.
 */
static int
rename_noreplace(struct spool *s, const char *from, const char *to)
{
	if (renameat2(s->tmpfd, from, s->queuefd, to, RENAME_NOREPLACE) == 0)
		return 0;
	if (errno != EINVAL && errno != ENOSYS)
		return errno;
	if (linkat(s->tmpfd, from, s->queuefd, to, 0) == -1)
		return errno;
	unlinkat(s->tmpfd, from, 0);
	return 0;
}

/*
 * The id is taken in queue/: give the message a new one, in its header
 * and its trailer (same length, same places), and sync it again before
 * it may get a name in queue/.  0 or errno.
 */
static int
renumber(struct spool *s, struct job *j, const char *reason)
{
	char id[SPOOL_ID_LEN + 1];

	if (new_id(id) == -1)
		return errno;
	if (pwrite(j->fd, id, SPOOL_ID_LEN, j->id_off) != SPOOL_ID_LEN ||
	    pwrite(j->fd, id, SPOOL_ID_LEN, j->trailer_off) != SPOOL_ID_LEN)
		return errno ? errno : EIO;
	log_event(LOG_INFO, j->id, "spool.renumbered", "to=%s reason=%s", id,
	    log_q(reason));
	memcpy(j->id, id, sizeof(id));
	return data_sync(s, j);
}

/*
 * Does state/<id> exist?  Then the id is taken too: that state belongs
 * to a message of that id removed from queue/ whose state removal has
 * not run yet (worker 0 runs it later; a crash, or kill -9, leaves it
 * until the start-up index ends).  A new message by that name would
 * get its delivery state at the next start: recipients marked done,
 * never sent.
 */
static int
state_is_left(struct spool *s, const char *id)
{
	struct stat st;

	return fstatat(s->statefd, id, &st, AT_SYMLINK_NOFOLLOW) == 0;
}

/* Step 3 for one message whose data is durable. */
static int
commit_rename(struct spool *s, struct job *j)
{
	const char *reason;
	int err;

	for (int tries = 0;; tries++) {
		if (state_is_left(s, j->id))
			reason = "a state file has the id";
		else if ((err = rename_noreplace(s, j->tmpname, j->id)) !=
		    EEXIST)
			return err;
		else
			reason = "id taken in queue";
		if (tries == ID_TRIES)
			return EEXIST;	/* never "done" without the rename */
		if ((err = renumber(s, j, reason)) != 0)
			return err;
	}
}

/*
 * Steps 2-4 for a worker's batch of commits.  Every message's data is
 * synced through its own descriptor, so a writeback error reaches the
 * message it belongs to (the kernel reports it to each open file that
 * saw it), whatever the other workers sync at the same time.  Writeback
 * of the whole batch is started first, so the device works on all of
 * it at once and each fdatasync mostly waits.
 */
static void
commit_batch(struct spool *s, struct sync_worker *w, struct jobq *batch)
{
	struct job *j;
	int renamed = 0, err;

	TAILQ_FOREACH(j, batch, entry)
		if (j->type == JOB_COMMIT)
			sync_file_range(j->fd, 0, 0, SYNC_FILE_RANGE_WRITE);
	TAILQ_FOREACH(j, batch, entry) {
		if (j->type != JOB_COMMIT)
			continue;
		j->status = data_sync(s, j);
		if (j->status == 0)
			j->status = commit_rename(s, j);
		/* tmp/<tmpname> may be another message's once renamed. */
		if (j->status != 0)
			unlinkat(s->tmpfd, j->tmpname, 0);
		if (close(j->fd) == -1 && j->status == 0) {
			j->status = errno;
			unlinkat(s->queuefd, j->id, 0);
		}
		j->fd = -1;
		renamed |= j->status == 0;
	}
	/* Step 4: one directory sync covers every rename of the batch. */
	if (!renamed || fsync(w->queuefd) == 0)
		return;
	err = errno;
	TAILQ_FOREACH(j, batch, entry) {
		if (j->type != JOB_COMMIT || j->status != 0)
			continue;
		/* Not acknowledged, so not queued (a retry may then come). */
		unlinkat(s->queuefd, j->id, 0);
		j->status = err;
	}
}

/* State files are replaced whole: write <id>.tmp, sync, rename over. */
static void
job_state(struct spool *s, struct job *j)
{
	char tmp[SPOOL_ID_LEN + 8];
	int fd;

	snprintf(tmp, sizeof(tmp), "%s.tmp", j->id);
	j->status = 0;
	fd = openat(s->statefd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
	    0600);
	if (fd == -1) {
		j->status = errno;
		return;
	}
	if (fdio_write_all(fd, j->data, j->len) == -1 || fdatasync(fd) == -1)
		j->status = errno;
	if (close(fd) == -1 && j->status == 0)
		j->status = errno;
	if (j->status == 0 && renameat(s->statefd, tmp, s->statefd, j->id) ==
	    -1)
		j->status = errno;
	if (j->status != 0)
		unlinkat(s->statefd, tmp, 0);
}

/*
 * The message itself was unlinked on the loop (spool_remove); here its
 * state file goes (after any state job queued before), and the batch's
 * directory syncs make both removals survive a power cut.  A state file
 * without a message is cleaned at start.  A message that could not be
 * unlinked keeps its state: without it, every recipient would be sent
 * it again.
 */
static void
job_remove(struct spool *s, struct job *j)
{
	if (j->fd != -1) {
		close(j->fd);	/* the inode's last reference: freed here */
		j->fd = -1;
	}
	if (j->status == 0 && unlinkat(s->statefd, j->id, 0) == -1 &&
	    errno != ENOENT)
		j->status = errno;
}

/* Mark the jobs of one type that succeeded so far as failed with err. */
static void
fail_jobs(struct jobq *batch, enum job_type type, int err)
{
	struct job *j;

	TAILQ_FOREACH(j, batch, entry)
		if (j->type == type && j->status == 0)
			j->status = err;
}

static void
run_batch(struct spool *s, struct sync_worker *w, struct jobq *batch)
{
	struct job *j;
	int sync_queue = 0, sync_state = 0;

	commit_batch(s, w, batch);
	TAILQ_FOREACH(j, batch, entry) {
		if (j->type == JOB_STATE) {
			job_state(s, j);
			sync_state = 1;
		} else if (j->type == JOB_REMOVE) {
			job_remove(s, j);
			sync_queue = sync_state = 1;
		}
	}
	/* Removals and state renames: one directory sync each. */
	if (sync_queue && fsync(w->queuefd) == -1)
		fail_jobs(batch, JOB_REMOVE, errno);
	if (sync_state && fsync(s->statefd) == -1)
		fail_jobs(batch, JOB_STATE, errno);
}

/* Worker 0, without the lock: create empty tmp/ files for the pool. */
static void
refill_pool(struct spool *s, size_t want)
{
	int fds[POOL_SIZE];
	char ids[POOL_SIZE][SPOOL_ID_LEN + 1];
	size_t n = 0;

	while (n < want) {
		if (new_id(ids[n]) == -1)
			break;
		fds[n] = openat(s->tmpfd, ids[n], O_WRONLY | O_CREAT |
		    O_EXCL | O_CLOEXEC, 0600);
		if (fds[n] == -1) {
			if (errno == EEXIST)
				continue;
			break;		/* the loop creates its own then */
		}
		n++;
	}
	pthread_mutex_lock(&s->lock);
	for (size_t i = 0; i < n; i++) {
		if (s->npool == POOL_SIZE || s->stopping) {
			close(fds[i]);
			unlinkat(s->tmpfd, ids[i], 0);
			continue;
		}
		s->pool_fd[s->npool] = fds[i];
		memcpy(s->pool_id[s->npool], ids[i], SPOOL_ID_LEN + 1);
		s->npool++;
	}
	pthread_mutex_unlock(&s->lock);
}

/*
 * Take this worker's share of the queue into batch.  Worker 0 takes
 * every state and remove job (so those for one message stay in order);
 * commits are shared out among the workers (each takes its fair part
 * of those waiting, at most SYNC_BATCH), so that with 32 clients 8
 * fdatasyncs are in flight, not one thread's worth.
 */
static void
take_share(struct spool *s, int worker, struct jobq *batch)
{
	struct job *j, *next;
	size_t commits = 0, waiting = 0, share;

	TAILQ_FOREACH(j, &s->todo, entry)
		waiting += j->type == JOB_COMMIT;
	share = (waiting + SYNC_THREADS - 1) / SYNC_THREADS;
	if (share > SYNC_BATCH)
		share = SYNC_BATCH;
	TAILQ_INIT(batch);
	for (j = TAILQ_FIRST(&s->todo); j != NULL; j = next) {
		next = TAILQ_NEXT(j, entry);
		if (j->type == JOB_COMMIT) {
			if (commits == share)
				continue;
			commits++;
		} else if (worker != 0)
			continue;
		TAILQ_REMOVE(&s->todo, j, entry);
		TAILQ_INSERT_TAIL(batch, j, entry);
	}
}

static void *
sync_thread(void *arg)
{
	struct sync_worker *w = arg;
	struct spool *s = w->spool;
	struct jobq batch;
	uint64_t one = 1;

	pthread_mutex_lock(&s->lock);
	for (;;) {
		size_t refill = w->index == 0 && s->pool_enabled &&
		    !s->stopping && s->npool < POOL_LOW ?
		    POOL_SIZE - s->npool : 0;

		take_share(s, w->index, &batch);
		if (TAILQ_EMPTY(&batch) && refill == 0) {
			if (s->stopping)
				break;
			pthread_cond_wait(&s->cond, &s->lock);
			continue;
		}
		/* More may be left for the other workers. */
		if (!TAILQ_EMPTY(&s->todo))
			pthread_cond_broadcast(&s->cond);
		pthread_mutex_unlock(&s->lock);

		if (!TAILQ_EMPTY(&batch))
			run_batch(s, w, &batch);
		if (refill > 0)
			refill_pool(s, refill);

		pthread_mutex_lock(&s->lock);
		if (TAILQ_EMPTY(&batch))
			continue;
		TAILQ_CONCAT(&s->done, &batch, entry);
		if (write(s->wakefd, &one, sizeof(one)) == -1 &&
		    errno != EAGAIN)
			log_event(LOG_WARNING | LOG_ERRNO, "-",
			    "spool.wake_failed", "op=write");
	}
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

/* On the loop: run the callbacks of finished jobs. */
static void
spool_wake_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct spool *s = arg;
	struct jobq done;
	struct job *j;
	uint64_t n;

	if (read(fd, &n, sizeof(n)) == -1 && errno != EAGAIN)
		log_event(LOG_WARNING | LOG_ERRNO, "-", "spool.wake_failed",
		    "op=read");
	TAILQ_INIT(&done);
	pthread_mutex_lock(&s->lock);
	TAILQ_CONCAT(&done, &s->done, entry);
	pthread_mutex_unlock(&s->lock);
	while ((j = TAILQ_FIRST(&done)) != NULL) {
		TAILQ_REMOVE(&done, j, entry);
		s->npending--;
		if (j->status != 0)
			log_event(LOG_WARNING, j->id, "spool.sync_failed",
			    "op=%s error=%s", j->type == JOB_COMMIT ? "commit" :
			    j->type == JOB_STATE ? "state" : "remove",
			    log_q(strerror(j->status)));
		if (j->type == JOB_COMMIT && j->status == 0 &&
		    j->id_out != NULL)
			memcpy(j->id_out, j->id, sizeof(j->id));
		if (j->cb != NULL)
			j->cb(j->arg, j->status);
		free(j->data);
		free(j);
	}
}

static void
submit(struct spool *s, struct job *j)
{
	s->npending++;
	pthread_mutex_lock(&s->lock);
	TAILQ_INSERT_TAIL(&s->todo, j, entry);
	/*
	 * A commit: any one worker (it wakes the others if it leaves work
	 * behind); waking all eight for each message costs CPU.  Others:
	 * every worker, since only worker 0 takes state and remove jobs.
	 */
	if (j->type == JOB_COMMIT)
		pthread_cond_signal(&s->cond);
	else
		pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->lock);
}

static struct job *
job_new(enum job_type type, const char *id, spool_done_cb cb, void *arg)
{
	struct job *j = calloc(1, sizeof(*j));

	if (j == NULL)
		abort();
	j->type = type;
	j->fd = -1;
	snprintf(j->id, sizeof(j->id), "%s", id);
	j->cb = cb;
	j->arg = arg;
	return j;
}

void
spool_set_sync(struct spool *s, spool_sync_fn fn, void *arg)
{
	pthread_mutex_lock(&s->lock);
	s->sync_fn = fn;
	s->sync_arg = arg;
	pthread_mutex_unlock(&s->lock);
}

size_t
spool_pending(const struct spool *s)
{
	return s->npending;
}

int
spool_has_room(const struct spool *s, long long size, long long min_free,
    long long min_inodes)
{
	return spool_fs_has_room(s->queuefd, size, min_free, min_inodes);
}

int
spool_fs_has_room(int fd, long long size, long long min_free,
    long long min_inodes)
{
	struct statvfs sv;
	unsigned long long avail;

	if (fstatvfs(fd, &sv) == -1)
		return -1;
	avail = (unsigned long long)sv.f_bavail * sv.f_frsize;
	if (avail < (unsigned long long)min_free + (unsigned long long)size ||
	    (sv.f_files > 0 && sv.f_favail < (unsigned long long)min_inodes)) {
		errno = ENOSPC;
		return 0;
	}
	return 1;
}

void
spool_drain(struct spool *s)
{
	struct pollfd pfd = { .fd = s->wakefd, .events = POLLIN };

	while (s->npending > 0) {
		if (poll(&pfd, 1, 1000) == -1 && errno != EINTR)
			break;
		spool_wake_cb(s->wakefd, EV_READ, s);
	}
}

/* ---- open / close ---- */

/*
 * A spool directory must be ours and closed to others: mail would
 * otherwise be readable, or could be planted or removed, by other users.
 */
static int
check_dir(int fd, const char *path, char *err, size_t errlen)
{
	struct stat st;

	if (fstat(fd, &st) == -1) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (st.st_uid != geteuid()) {
		snprintf(err, errlen, "%s: owned by uid %u, not by this daemon's "
		    "uid %u; refusing to use it (chown it)", path,
		    (unsigned)st.st_uid, (unsigned)geteuid());
		return -1;
	}
	if (st.st_mode & (S_IWGRP | S_IRWXO)) {
		snprintf(err, errlen, "%s: mode %04o lets other users in; "
		    "refusing to use it (chmod 700 %s)", path,
		    (unsigned)(st.st_mode & 07777), path);
		return -1;
	}
	return 0;
}

/* One of the daemon's own directories (spool_layout.h), made if missing. */
static int
open_subdir(int top, enum spool_dir d, char *err, size_t errlen,
    const char *dir)
{
	char path[PATH_MAX];
	int fd;

	spool_layout_path(dir, d, path, sizeof(path));
	if (spool_layout_make(top, d, (gid_t)-1) == -1) {
		snprintf(err, errlen, "%s: cannot create: %s", path,
		    strerror(errno));
		return -1;
	}
	if ((fd = spool_layout_open(top, d)) == -1) {
		snprintf(err, errlen, "%s: cannot open: %s", path,
		    strerror(errno));
		return -1;
	}
	if (check_dir(fd, path, err, errlen) == -1) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Each sync thread's own open file of queue/ (see struct sync_worker). */
static int
open_workers(struct spool *s, char *err, size_t errlen)
{
	if ((s->workers = calloc(SYNC_THREADS, sizeof(*s->workers))) == NULL)
		abort();
	for (int i = 0; i < SYNC_THREADS; i++)
		s->workers[i].queuefd = -1;
	for (int i = 0; i < SYNC_THREADS; i++) {
		s->workers[i].spool = s;
		s->workers[i].index = i;
		s->workers[i].queuefd = openat(s->queuefd, ".", O_RDONLY |
		    O_DIRECTORY | O_CLOEXEC);
		if (s->workers[i].queuefd == -1) {
			snprintf(err, errlen, "%s/queue: cannot open: %s",
			    s->dir, strerror(errno));
			return -1;
		}
	}
	return 0;
}

struct spool *
spool_open(const char *dir, struct event_base *base, char *err,
    size_t errlen)
{
	struct spool *s;
	int top;

	if (mkdir(dir, spool_layout[SPOOL_DIR_TOP].mode) == -1 &&
	    errno != EEXIST) {
		snprintf(err, errlen, "%s: cannot create spool: %s", dir,
		    strerror(errno));
		return NULL;
	}
	if ((top = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1) {
		snprintf(err, errlen, "%s: cannot open spool: %s", dir,
		    strerror(errno));
		return NULL;
	}
	if (check_dir(top, dir, err, errlen) == -1) {
		close(top);
		return NULL;
	}
	if ((s = calloc(1, sizeof(*s))) == NULL || (s->dir = strdup(dir)) ==
	    NULL)
		abort();
	s->tmpfd = s->queuefd = s->statefd = s->corruptfd = s->wakefd = -1;
	s->lockfd = -1;
	if ((s->tmpfd = open_subdir(top, SPOOL_DIR_TMP, err, errlen,
	    dir)) == -1 ||
	    (s->queuefd = open_subdir(top, SPOOL_DIR_QUEUE, err, errlen,
	    dir)) == -1 ||
	    (s->statefd = open_subdir(top, SPOOL_DIR_STATE, err, errlen,
	    dir)) == -1 ||
	    (s->corruptfd = open_subdir(top, SPOOL_DIR_CORRUPT, err, errlen,
	    dir)) == -1)
		goto fail;
	/* One daemon per spool: two would deliver everything twice. */
	if ((s->lockfd = openat(top, SPOOL_LOCK_FILE, O_RDWR | O_CREAT |
	    O_CLOEXEC, 0600)) == -1 || flock(s->lockfd, LOCK_EX | LOCK_NB) == -1) {
		snprintf(err, errlen, "%s: %s", dir, errno == EWOULDBLOCK ?
		    "another sesrelayd is using this spool" : strerror(errno));
		goto fail;
	}
	/* The new subdirectories' names must be durable too. */
	fsync(top);
	close(top);
	top = -1;
	if ((s->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) == -1) {
		snprintf(err, errlen, "eventfd: %s", strerror(errno));
		goto fail;
	}
	if (open_workers(s, err, errlen) == -1)
		goto fail;
	TAILQ_INIT(&s->todo);
	TAILQ_INIT(&s->done);
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->cond, NULL);
	s->wake_ev = event_new(base, s->wakefd, EV_READ | EV_PERSIST,
	    spool_wake_cb, s);
	event_add(s->wake_ev, NULL);
	for (int i = 0; i < SYNC_THREADS; i++) {
		if ((errno = pthread_create(&s->threads[i], NULL, sync_thread,
		    &s->workers[i])) != 0)
			fatal("spool.fatal", "call=pthread_create");
	}
	return s;
fail:
	if (top != -1)
		close(top);
	spool_close(s);
	return NULL;
}

/* Stop the sync threads after they finished every queued job. */
void
spool_close(struct spool *s)
{
	if (s == NULL)
		return;
	if (s->wake_ev != NULL) {
		pthread_mutex_lock(&s->lock);
		s->stopping = 1;
		pthread_cond_broadcast(&s->cond);
		pthread_mutex_unlock(&s->lock);
		for (int i = 0; i < SYNC_THREADS; i++)
			pthread_join(s->threads[i], NULL);
		/* Files made ahead and never used. */
		while (s->npool > 0) {
			s->npool--;
			close(s->pool_fd[s->npool]);
			unlinkat(s->tmpfd, s->pool_id[s->npool], 0);
		}
		spool_wake_cb(s->wakefd, EV_READ, s);
		event_free(s->wake_ev);
	}
	for (int i = 0; s->workers != NULL && i < SYNC_THREADS; i++)
		if (s->workers[i].queuefd != -1)
			close(s->workers[i].queuefd);
	free(s->workers);
	if (s->wakefd != -1)
		close(s->wakefd);
	if (s->tmpfd != -1)
		close(s->tmpfd);
	if (s->queuefd != -1)
		close(s->queuefd);
	if (s->statefd != -1)
		close(s->statefd);
	if (s->corruptfd != -1)
		close(s->corruptfd);
	if (s->lockfd != -1)
		close(s->lockfd);
	free(s->dir);
	free(s);
}

/* ---- writing ---- */

/* An envelope address fits on one line of the message file. */
static int
envelope_is_safe(const char *a, int may_be_empty)
{
	size_t n = strlen(a);

	return (n > 0 || may_be_empty) && n < 4096 && strpbrk(a, "\r\n") ==
	    NULL;
}

/*
 * Time-ordered ids: 8 hex digits of seconds, then 96 random bits from
 * the kernel (24 hex digits).  Two ids drawn in the same second collide
 * with odds of 2^-96; the commit never replaces a queued file anyway.
 * 0, or -1 with errno when the kernel gives no randomness.
 */
static int
new_id(char id[SPOOL_ID_LEN + 1])
{
	unsigned char r[ID_RANDOM_BYTES];
	size_t got = 0;
	int n;

	while (got < sizeof(r)) {
		ssize_t k = getrandom(r + got, sizeof(r) - got, 0);
		if (k == -1 && errno == EINTR)
			continue;
		if (k <= 0)
			return -1;
		got += (size_t)k;
	}
	n = snprintf(id, SPOOL_ID_LEN + 1, "%08x", (unsigned)time(NULL));
	for (size_t i = 0; i < sizeof(r); i++)
		n += snprintf(id + n, SPOOL_ID_LEN + 1 - n, "%02x", r[i]);
	return 0;
}

struct spool_writer *
spool_writer_new(struct spool *s, const char *sender, char *const *rcpts,
    size_t nrcpt, char id_out[SPOOL_ID_LEN + 1])
{
	return spool_writer_new_flags(s, sender, rcpts, nrcpt, 0, id_out);
}

struct spool_writer *
spool_writer_new_flags(struct spool *s, const char *sender,
    char *const *rcpts, size_t nrcpt, unsigned flags,
    char id_out[SPOOL_ID_LEN + 1])
{
	struct spool_writer *w;
	char *env;
	size_t envlen;
	FILE *fp;
	int n, tries;

	/* One address per line: a newline or NUL would forge a field. */
	if (!envelope_is_safe(sender, 1))
		goto inval;
	for (size_t i = 0; i < nrcpt; i++)
		if (!envelope_is_safe(rcpts[i], 0))
			goto inval;
	if ((w = calloc(1, sizeof(*w))) == NULL)
		return NULL;
	w->spool = s;
	w->fd = -1;
	pthread_mutex_lock(&s->lock);
	if (s->npool > 0) {
		s->npool--;
		w->fd = s->pool_fd[s->npool];
		memcpy(w->id, s->pool_id[s->npool], sizeof(w->id));
	}
	if (s->npool < POOL_LOW)
		pthread_cond_broadcast(&s->cond);	/* worker 0 refills */
	pthread_mutex_unlock(&s->lock);
	for (tries = 0; w->fd == -1 && tries < 10; tries++) {
		if (new_id(w->id) == -1)
			break;
		w->fd = openat(s->tmpfd, w->id, O_WRONLY | O_CREAT | O_EXCL |
		    O_CLOEXEC, 0600);
		if (w->fd != -1 || errno != EEXIST)
			break;
	}
	if (w->fd == -1) {
		free(w);
		return NULL;
	}
	/* The whole envelope in one write. */
	if ((fp = open_memstream(&env, &envlen)) == NULL)
		abort();
	w->id_off = fprintf(fp, "SESRELAY %d\nid ", SPOOL_FORMAT);
	n = fprintf(fp, "%s\narrived %lld\nsize ", w->id,
	    (long long)time(NULL));
	w->size_field = w->id_off + n;
	fprintf(fp, "%0*d\nfrom %s\n", SIZE_DIGITS, 0, sender);
	if (flags & SPOOL_F_DSN)
		fputs("flags dsn\n", fp);
	for (size_t i = 0; i < nrcpt; i++)
		fprintf(fp, "rcpt %s\n", rcpts[i]);
	fputc('\n', fp);
	if (fclose(fp) != 0)
		abort();
	if (fdio_write_all(w->fd, env, envlen) == -1)
		w->error = errno;
	free(env);
	if (w->error != 0) {
		errno = w->error;
		spool_writer_abort(w);
		return NULL;
	}
	w->header_len = (off_t)envlen;
	w->id_out = id_out;
	memcpy(id_out, w->id, SPOOL_ID_LEN + 1);
	return w;
inval:
	errno = EINVAL;
	return NULL;
}

int
spool_writer_write(struct spool_writer *w, const void *buf, size_t len)
{
	if (w->error != 0)
		return -1;
	if (fdio_write_all(w->fd, buf, len) == -1) {
		w->error = errno;
		return -1;
	}
	w->body_size += len;
	return 0;
}

off_t
spool_writer_size(const struct spool_writer *w)
{
	return w->body_size;
}

void
spool_writer_abort(struct spool_writer *w)
{
	close(w->fd);
	unlinkat(w->spool->tmpfd, w->id, 0);
	free(w);
}

void
spool_writer_commit(struct spool_writer *w, spool_done_cb cb, void *arg)
{
	struct job *j = job_new(JOB_COMMIT, w->id, cb, arg);
	struct spool *s;
	char buf[SPOOL_ID_LEN + SIZE_DIGITS];	/* "END <id>\n" or the size */
	int n;

	n = snprintf(buf, sizeof(buf), "END %s\n", w->id);
	if (w->error == 0 && fdio_write_all(w->fd, buf, n) == -1)
		w->error = errno;
	snprintf(buf, sizeof(buf), "%0*lld", SIZE_DIGITS,
	    (long long)w->body_size);
	if (w->error == 0 && pwrite(w->fd, buf, SIZE_DIGITS, w->size_field) !=
	    SIZE_DIGITS)
		w->error = errno ? errno : EIO;
	if (w->error != 0) {
		/* Never hand a broken file to the queue: fail through the
		 * same callback path, from the loop. */
		j->status = w->error;
		close(w->fd);
		unlinkat(w->spool->tmpfd, w->id, 0);
		w->spool->npending++;
		pthread_mutex_lock(&w->spool->lock);
		TAILQ_INSERT_TAIL(&w->spool->done, j, entry);
		pthread_mutex_unlock(&w->spool->lock);
		event_active(w->spool->wake_ev, EV_READ, 0);
		free(w);
		return;
	}
	j->fd = w->fd;
	memcpy(j->tmpname, w->id, sizeof(j->tmpname));
	j->id_off = w->id_off;
	j->trailer_off = w->header_len + w->body_size + 4;	/* "END " */
	j->id_out = w->id_out;
	s = w->spool;
	free(w);
	submit(s, j);
}

/* ---- parsing ---- */

void
spool_envelope_free(struct spool_envelope *e)
{
	if (e == NULL)
		return;
	for (size_t i = 0; i < e->nrcpt; i++) {
		free(e->rcpts[i]);
		if (e->reply)
			free(e->reply[i]);
	}
	free(e->rcpts);
	free(e->reply);
	free(e->status);
	free(e->unknown);
	free(e->sender);
	free(e);
}

/* Are len bytes at p (no NUL needed) a queue id, of either length? */
static int
is_hex_id(const char *p, size_t len)
{
	if (len != SPOOL_ID_LEN && len != SPOOL_ID_LEN_V1)
		return 0;
	for (size_t i = 0; i < len; i++)
		if (!((p[i] >= '0' && p[i] <= '9') || (p[i] >= 'a' && p[i] <= 'f')))
			return 0;
	return 1;
}

int
spool_id_is_valid(const char *id)
{
	return is_hex_id(id, strnlen(id, SPOOL_ID_LEN + 1));
}

/* Take the next "\n"-terminated line of [*p, end); NULL if none. */
static const char *
next_line(const char **p, const char *end, size_t *len)
{
	const char *start = *p, *nl = memchr(start, '\n', end - start);

	if (nl == NULL)
		return NULL;
	*len = nl - start;
	*p = nl + 1;
	return start;
}

/* Parse a decimal field "<key> <digits>" exactly; -1 if not. */
static int
field_num(const char *line, size_t len, const char *key, long long *out)
{
	size_t kl = strlen(key);
	long long v = 0;

	if (len <= kl + 1 || memcmp(line, key, kl) != 0 || line[kl] != ' ')
		return -1;
	for (size_t i = kl + 1; i < len; i++) {
		if (line[i] < '0' || line[i] > '9' || v > (1LL << 50))
			return -1;
		v = v * 10 + (line[i] - '0');
	}
	*out = v;
	return 0;
}

static char *
field_str(const char *line, size_t len, const char *key, int allow_empty)
{
	size_t kl = strlen(key);
	char *s;

	if (len < kl + 1 || memcmp(line, key, kl) != 0 || line[kl] != ' ')
		return NULL;
	if (len == kl + 1 && !allow_empty)
		return NULL;
	if (memchr(line + kl + 1, '\0', len - kl - 1) != NULL)
		return NULL;
	if ((s = strndup(line + kl + 1, len - kl - 1)) == NULL)
		abort();
	return s;
}

struct spool_envelope *
spool_parse_message(const char *buf, size_t len, off_t file_size,
    off_t *body_off)
{
	const char *p = buf, *end = buf + len, *l;
	struct spool_envelope *e;
	long long n;
	size_t ll;
	char trailer[SPOOL_ID_LEN + 6];

	if ((e = calloc(1, sizeof(*e))) == NULL)
		abort();
	if ((l = next_line(&p, end, &ll)) == NULL || ll != 10 ||
	    memcmp(l, "SESRELAY 1", 10) != 0)
		goto bad;
	if ((l = next_line(&p, end, &ll)) == NULL || ll < 3 ||
	    memcmp(l, "id ", 3) != 0 || !is_hex_id(l + 3, ll - 3))
		goto bad;
	memcpy(e->id, l + 3, ll - 3);
	if ((l = next_line(&p, end, &ll)) == NULL ||
	    field_num(l, ll, "arrived", &n) == -1)
		goto bad;
	e->arrived = (time_t)n;
	if ((l = next_line(&p, end, &ll)) == NULL || ll != 5 + SIZE_DIGITS ||
	    field_num(l, ll, "size", &n) == -1)
		goto bad;
	e->body_size = (off_t)n;
	if ((l = next_line(&p, end, &ll)) == NULL ||
	    (e->sender = field_str(l, ll, "from", 1)) == NULL)
		goto bad;
	while ((l = next_line(&p, end, &ll)) != NULL && ll > 0) {
		char *r, **v;

		if (e->nrcpt == 0 && e->flags == 0 && ll == 9 &&
		    memcmp(l, "flags dsn", 9) == 0) {
			e->flags = SPOOL_F_DSN;
			continue;
		}
		if ((r = field_str(l, ll, "rcpt", 0)) == NULL)
			goto bad;
		if ((v = realloc(e->rcpts, (e->nrcpt + 1) * sizeof(*v))) ==
		    NULL)
			abort();
		e->rcpts = v;
		e->rcpts[e->nrcpt++] = r;
	}
	if (l == NULL || e->nrcpt == 0)
		goto bad;
	*body_off = p - buf;
	/* The file must be exactly header + body + trailer. */
	n = snprintf(trailer, sizeof(trailer), "END %s\n", e->id);
	if (file_size != *body_off + e->body_size + n)
		goto bad;
	if ((off_t)len == file_size &&
	    memcmp(buf + file_size - n, trailer, n) != 0)
		goto bad;
	if ((e->status = calloc(e->nrcpt, sizeof(*e->status))) == NULL ||
	    (e->reply = calloc(e->nrcpt, sizeof(*e->reply))) == NULL)
		abort();
	return e;
bad:
	spool_envelope_free(e);
	return NULL;
}

struct spool_envelope *
spool_envelope_new(const char *id, const char *sender, char *const *rcpts,
    size_t nrcpt, off_t body_size)
{
	struct spool_envelope *e = calloc(1, sizeof(*e));

	if (e == NULL || (e->sender = strdup(sender)) == NULL ||
	    (e->rcpts = calloc(nrcpt, sizeof(*e->rcpts))) == NULL ||
	    (e->status = calloc(nrcpt, sizeof(*e->status))) == NULL ||
	    (e->reply = calloc(nrcpt, sizeof(*e->reply))) == NULL)
		abort();
	snprintf(e->id, sizeof(e->id), "%s", id);
	e->arrived = time(NULL);
	e->body_size = body_size;
	for (e->nrcpt = 0; e->nrcpt < nrcpt; e->nrcpt++)
		if ((e->rcpts[e->nrcpt] = strdup(rcpts[e->nrcpt])) == NULL)
			abort();
	return e;
}

/* "I N" of an "unknown I N" line: N copies to rcpt I, outcome unknown. */
static int
parse_unknown(struct spool_envelope *e, const char *l, size_t ll)
{
	char tmp[48], *q;
	unsigned long idx, n;

	if (ll >= sizeof(tmp) || l[0] < '0' || l[0] > '9')
		return -1;
	memcpy(tmp, l, ll);
	tmp[ll] = '\0';
	idx = strtoul(tmp, &q, 10);
	if (*q != ' ' || q[1] < '0' || q[1] > '9' || idx >= e->nrcpt)
		return -1;
	n = strtoul(q + 1, &q, 10);
	if (*q != '\0' || n > 1000000)
		return -1;
	if (e->unknown == NULL &&
	    (e->unknown = calloc(e->nrcpt, sizeof(*e->unknown))) == NULL)
		abort();
	e->unknown[idx] = (unsigned)n;
	return 0;
}

int
spool_parse_state(struct spool_envelope *e, const char *buf, size_t len)
{
	const char *p = buf, *end = buf + len, *l;
	long long n;
	size_t ll;

	if ((l = next_line(&p, end, &ll)) == NULL || ll != 16 ||
	    memcmp(l, "SESRELAY-STATE 1", 16) != 0)
		return -1;
	if ((l = next_line(&p, end, &ll)) == NULL ||
	    field_num(l, ll, "attempts", &n) == -1)
		return -1;
	e->attempts = (unsigned)n;
	if ((l = next_line(&p, end, &ll)) == NULL ||
	    field_num(l, ll, "next", &n) == -1)
		return -1;
	e->next_attempt = (time_t)n;
	while ((l = next_line(&p, end, &ll)) != NULL) {
		char *q;
		unsigned long idx;
		const char *rest;

		if (ll == 3 && memcmp(l, "END", 3) == 0)
			return p == end ? 0 : -1;
		if (ll == 4 && memcmp(l, "held", 4) == 0) {
			e->held = 1;
			continue;
		}
		if (ll > 8 && memcmp(l, "unknown ", 8) == 0) {
			if (parse_unknown(e, l + 8, ll - 8) == -1)
				return -1;
			continue;
		}
		/* A digit first: strtoul would skip blanks, even past len. */
		if (ll < 7 || memcmp(l, "rcpt ", 5) != 0 || l[5] < '0' ||
		    l[5] > '9')
			return -1;
		idx = strtoul(l + 5, &q, 10);
		if (q == l + 5 || q >= l + ll || *q != ' ' || idx >= e->nrcpt)
			return -1;
		rest = q + 1;
		if (l + ll - rest >= 4 && memcmp(rest, "done", 4) == 0)
			e->status[idx] = SPOOL_RCPT_DONE, rest += 4;
		else if (l + ll - rest >= 6 && memcmp(rest, "failed", 6) == 0)
			e->status[idx] = SPOOL_RCPT_FAILED, rest += 6;
		else if (l + ll - rest >= 7 && memcmp(rest, "bounced", 7) == 0)
			e->status[idx] = SPOOL_RCPT_BOUNCED, rest += 7;
		else
			return -1;
		if (rest < l + ll) {
			if (*rest != ' ')
				return -1;
			free(e->reply[idx]);
			if ((e->reply[idx] = strndup(rest + 1, l + ll - rest - 1))
			    == NULL)
				abort();
		}
	}
	return -1;	/* no END: cut short */
}

/* Read a whole small file (at most max bytes) at dirfd/name. */
static char *
read_small(int dirfd, const char *name, size_t max, size_t *len,
    off_t *file_size)
{
	struct stat st;
	ssize_t n;
	size_t want;
	char *buf;
	int fd;

	/* O_NONBLOCK: a FIFO there is refused below, never waited on. */
	if ((fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK |
	    O_CLOEXEC)) == -1)
		return NULL;
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode)) {
		close(fd);
		errno = EINVAL;
		return NULL;
	}
	want = (size_t)st.st_size < max ? (size_t)st.st_size : max;
	if ((buf = malloc(want + 1)) == NULL)
		abort();
	n = pread(fd, buf, want, 0);
	close(fd);
	if (n < 0 || (size_t)n != want) {
		free(buf);
		errno = EIO;
		return NULL;
	}
	buf[want] = '\0';
	*len = want;
	*file_size = st.st_size;
	return buf;
}

/* Check the trailer of a file too big to read whole. */
static int
trailer_ok(int fd, const struct spool_envelope *e, off_t file_size)
{
	char want[SPOOL_ID_LEN + 6], got[SPOOL_ID_LEN + 6];
	int n = snprintf(want, sizeof(want), "END %s\n", e->id);

	return pread(fd, got, n, file_size - n) == n &&
	    memcmp(got, want, n) == 0;
}

/* Errors that are not the file's fault: try it again a little later. */
static int
is_transient(int err)
{
	return err == EMFILE || err == ENFILE || err == ENOMEM ||
	    err == EINTR || err == EAGAIN;
}

/*
 * Open queue/<id> and parse its envelope, reading only as far as the
 * blank line that ends it (not the body); the trailer is checked with
 * one pread.  Returns the envelope with *fdp open, or NULL with errno.
 */
static struct spool_envelope *
open_message(struct spool *s, const char *id, int *fdp, off_t *body_off)
{
	struct spool_envelope *e = NULL;
	struct stat st;
	size_t len = 0, cap = 0;
	char *buf = NULL;
	ssize_t n;
	int fd;

	/*
	 * O_NONBLOCK: a FIFO in queue/ would otherwise block the open for
	 * ever (the index thread, and shutdown joining it); it is refused
	 * as not a regular file and quarantined.  Regular files ignore it.
	 */
	if ((fd = openat(s->queuefd, id, O_RDONLY | O_NOFOLLOW | O_NONBLOCK |
	    O_CLOEXEC)) == -1)
		return NULL;
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode))
		goto bad;
	do {
		if (cap - len < 4096) {
			cap = cap ? cap * 2 : 8192;
			if ((buf = realloc(buf, cap)) == NULL)
				abort();
		}
		n = pread(fd, buf + len, cap - len, (off_t)len);
		if (n <= 0)
			break;
		len += (size_t)n;
	} while (len < MAX_HEADER && memmem(buf, len, "\n\n", 2) == NULL);
	e = spool_parse_message(buf, len, st.st_size, body_off);
	if (e == NULL || strcmp(e->id, id) != 0 ||
	    ((off_t)len < st.st_size && !trailer_ok(fd, e, st.st_size)))
		goto bad;
	free(buf);
	*fdp = fd;
	return e;
bad:
	spool_envelope_free(e);
	free(buf);
	close(fd);
	errno = EBADMSG;
	return NULL;
}

struct spool_envelope *
spool_load(struct spool *s, const char *id)
{
	struct spool_envelope *e;
	off_t size, body_off;
	size_t len;
	char *buf;
	int fd, err;

	if (!spool_id_is_valid(id)) {
		errno = ENOENT;		/* never a path: only ids name files */
		return NULL;
	}
	if ((e = open_message(s, id, &fd, &body_off)) == NULL)
		return NULL;
	/*
	 * Out of descriptors for the state file: no envelope rather than
	 * one without its state (held lost, done recipients sent again);
	 * the index tries again.  (The message is closed only after: with
	 * one descriptor to spare, the state's open is the one that fails,
	 * as check_spool's test_load_out_of_descriptors needs.)
	 */
	buf = read_small(s->statefd, id, MAX_HEADER, &len, &size);
	err = errno;
	close(fd);
	if (buf == NULL && is_transient(err)) {
		spool_envelope_free(e);
		errno = err;
		return NULL;
	}
	if (buf != NULL) {
		if (spool_parse_state(e, buf, len) == -1) {
			/* A bad state file costs at most a resend. */
			log_event(LOG_WARNING, id, "spool.state_unreadable",
			    "msg=\"delivering to all recipients again\"");
			for (size_t i = 0; i < e->nrcpt; i++)
				e->status[i] = SPOOL_RCPT_PENDING;
			free(e->unknown);
			e->unknown = NULL;
			e->attempts = 0;
			e->next_attempt = 0;
		}
		free(buf);
	}
	return e;
}

/* ---- state, removal ---- */

void
spool_state_save(struct spool *s, const struct spool_envelope *e,
    spool_done_cb cb, void *arg)
{
	struct job *j = job_new(JOB_STATE, e->id, cb, arg);
	FILE *fp = open_memstream(&j->data, &j->len);

	if (fp == NULL)
		abort();
	fprintf(fp, "SESRELAY-STATE 1\nattempts %u\nnext %lld\n", e->attempts,
	    (long long)e->next_attempt);
	if (e->held)
		fputs("held\n", fp);
	for (size_t i = 0; i < e->nrcpt; i++) {
		if (e->status[i] == SPOOL_RCPT_PENDING)
			continue;
		fprintf(fp, "rcpt %zu %s", i, e->status[i] == SPOOL_RCPT_DONE ?
		    "done" : e->status[i] == SPOOL_RCPT_BOUNCED ? "bounced" :
		    "failed");
		if (e->reply[i] != NULL) {
			fputc(' ', fp);
			for (const char *c = e->reply[i]; *c; c++)
				fputc(*c == '\n' || *c == '\r' ? ' ' : *c, fp);
		}
		fputc('\n', fp);
	}
	for (size_t i = 0; e->unknown != NULL && i < e->nrcpt; i++)
		if (e->unknown[i] > 0)
			fprintf(fp, "unknown %zu %u\n", i, e->unknown[i]);
	fputs("END\n", fp);
	fclose(fp);
	submit(s, j);
}

/*
 * Removing a finished message is its "delivered" record, so it is made
 * at once, on the loop: unlinking queue/<id> before the session takes
 * its next transaction means a crash of the process (kill -9) can only
 * resend what was in flight, never mail SES already took while a queued
 * removal waited behind the sync threads' batches.  An unlink is a
 * metadata change in the page cache, like writing tmp/ files on the
 * loop.  Only the directory syncs, for a power cut, wait for a worker
 * (job_remove); until they are done a power cut may resend the message
 * (delivery is at least once).
 */
void
spool_remove(struct spool *s, const char *id, spool_done_cb cb, void *arg)
{
	struct job *j = job_new(JOB_REMOVE, id, cb, arg);

	/* An O_PATH reference keeps the inode alive past the unlink, so
	 * freeing its blocks (the costly part) happens on the worker. */
	j->fd = openat(s->queuefd, id, O_PATH | O_CLOEXEC | O_NOFOLLOW);
	if (unlinkat(s->queuefd, id, 0) == -1 && errno != ENOENT)
		j->status = errno;
	submit(s, j);
}

/* ---- reading bodies ---- */

struct spool_reader *
spool_reader_open(struct spool *s, const char *id)
{
	struct spool_envelope *e;
	struct spool_reader *r;
	off_t body_off;
	int fd;

	if ((e = open_message(s, id, &fd, &body_off)) == NULL)
		return NULL;
	if ((r = calloc(1, sizeof(*r))) == NULL)
		abort();
	r->fd = fd;
	r->left = e->body_size;
	spool_envelope_free(e);
	if (lseek(fd, body_off, SEEK_SET) == -1) {
		spool_reader_close(r);
		return NULL;
	}
	return r;
}

ssize_t
spool_reader_read(struct spool_reader *r, void *buf, size_t len)
{
	ssize_t n;

	if (r->left == 0)
		return 0;
	if ((off_t)len > r->left)
		len = (size_t)r->left;
	do
		n = read(r->fd, buf, len);
	while (n == -1 && errno == EINTR);
	if (n == 0) {
		errno = EIO;	/* shorter than its header says */
		return -1;
	}
	if (n > 0)
		r->left -= n;
	return n;
}

void
spool_reader_close(struct spool_reader *r)
{
	if (r == NULL)
		return;
	close(r->fd);
	free(r);
}

/* ---- start-up scan ---- */

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* List a directory's entry names (no dot files). */
static char **
list_dir(int dirfd, size_t *n)
{
	int fd = dup(dirfd);
	DIR *d;
	struct dirent *de;
	char **v = calloc(1, sizeof(*v));

	*n = 0;
	if (v == NULL)
		abort();
	if (fd == -1 || (d = fdopendir(fd)) == NULL) {
		if (fd != -1)
			close(fd);
		free(v);
		return NULL;
	}
	rewinddir(d);
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		if ((v = realloc(v, (*n + 1) * sizeof(*v))) == NULL ||
		    (v[*n] = strdup(de->d_name)) == NULL)
			abort();
		(*n)++;
	}
	closedir(d);
	if (*n > 1)
		qsort(v, *n, sizeof(*v), cmp_str);
	return v;
}

static void
free_list(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

int
spool_quarantine(struct spool *s, int fromfd, enum spool_dir from,
    const char *name, const char *why)
{
	int drop = from == SPOOL_DIR_MAILDROP;
	char dest[NAME_MAX + 1];

	if (from == SPOOL_DIR_QUEUE)
		snprintf(dest, sizeof(dest), "%s", name);
	else
		snprintf(dest, sizeof(dest), "%s-%.200s",
		    spool_layout[from].name, name);
	if (renameat(fromfd, name, s->corruptfd, dest) == -1) {
		log_event(LOG_WARNING | LOG_ERRNO, "-", drop ?
		    "pickup.quarantine_failed" : "spool.quarantine_failed",
		    "file=%s reason=%s", log_q(name), log_q(why));
		return -1;
	}
	log_event(LOG_WARNING, "-", drop ? "pickup.refused" :
	    "spool.quarantined", "file=%s reason=%s moved_to=corrupt/%s",
	    log_q(name), log_q(why), log_q(dest));
	return 0;
}

/* A file of queue/ that is not a message: kept for the operator. */
static void
quarantine(struct spool *s, const char *name, const char *why)
{
	(void)spool_quarantine(s, s->queuefd, SPOOL_DIR_QUEUE, name, why);
}

/* tmp/: never acknowledged, so safe to drop; then worker 0 may fill it. */
static void
clean_tmp(struct spool *s)
{
	size_t n, i;
	char **names;

	if ((names = list_dir(s->tmpfd, &n)) != NULL) {
		for (i = 0; i < n; i++)
			unlinkat(s->tmpfd, names[i], 0);
		if (n > 0)
			log_event(LOG_INFO, "-", "spool.tmp_removed",
			    "files=%zu", n);
		free_list(names, n);
	}
	pthread_mutex_lock(&s->lock);
	s->pool_enabled = 1;
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->lock);
}

#define INDEX_BATCH	256	/* envelopes handed to the loop at once */
#define INDEX_PENDING	1024	/* at most this many wait for the loop */
#define INDEX_WAKE_MS	20	/* or sooner: delivery starts early */
#define INDEX_RETRY_MS	100	/* out of descriptors: try again after */

/*
 * The start-up index.  The thread lists queue/, loads each message and
 * puts its envelope in pending; the loop (index_wake_cb, woken through
 * an eventfd like the sync threads' callbacks) hands them to found().
 * pending is bounded: a loop that falls behind stops the thread, so the
 * memory is the queue's own, as with the old synchronous scan.
 */
struct spool_index {
	struct spool	*spool;
	struct event	*ev;
	int		 efd;
	pthread_t	 thread;
	int		 started;
	pthread_mutex_t	 lock;
	pthread_cond_t	 cond;		/* room in pending, or stopping */
	struct spool_envelope *pending[INDEX_PENDING];	/* under lock */
	size_t		 npending;			/* under lock */
	int		 stopping;			/* under lock */
	int		 finished;			/* under lock */
	/* the thread's until finished */
	int		 status;	/* errno when queue/ cannot be listed */
	size_t		 corrupt;
	struct timespec	 last_wake;
	/* the loop's */
	size_t		 found;
	int		 reported;
	void		(*found_cb)(void *, struct spool_envelope *);
	void		(*done_cb)(void *, size_t, int);
	void		*arg;
};

static int
index_is_stopping(struct spool_index *ix)
{
	int stopping;

	pthread_mutex_lock(&ix->lock);
	stopping = ix->stopping;
	pthread_mutex_unlock(&ix->lock);
	return stopping;
}

static long
ms_since(const struct timespec *then)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (now.tv_sec - then->tv_sec) * 1000 +
	    (now.tv_nsec - then->tv_nsec) / 1000000;
}

static void
index_wake(struct spool_index *ix)
{
	uint64_t one = 1;

	clock_gettime(CLOCK_MONOTONIC, &ix->last_wake);
	if (write(ix->efd, &one, sizeof(one)) == -1 && errno != EAGAIN)
		log_event(LOG_WARNING | LOG_ERRNO, "-", "spool.wake_failed",
		    "op=index");
}

/* Hand one envelope to the loop; waits while the loop is behind. */
static void
index_push(struct spool_index *ix, struct spool_envelope *e)
{
	int wake;

	pthread_mutex_lock(&ix->lock);
	while (ix->npending == INDEX_PENDING && !ix->stopping)
		pthread_cond_wait(&ix->cond, &ix->lock);
	if (ix->stopping) {
		pthread_mutex_unlock(&ix->lock);
		spool_envelope_free(e);
		return;
	}
	ix->pending[ix->npending++] = e;
	wake = ix->npending >= INDEX_BATCH ||
	    ms_since(&ix->last_wake) >= INDEX_WAKE_MS;
	pthread_mutex_unlock(&ix->lock);
	if (wake)
		index_wake(ix);
}

/* Wait INDEX_RETRY_MS, or less when told to stop; 1 when stopping. */
static int
index_pause(struct spool_index *ix)
{
	struct timespec until;
	int stopping;

	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_nsec += INDEX_RETRY_MS * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&ix->lock);
	if (!ix->stopping)
		pthread_cond_timedwait(&ix->cond, &ix->lock, &until);
	stopping = ix->stopping;
	pthread_mutex_unlock(&ix->lock);
	return stopping;
}

/*
 * One file of queue/: its envelope goes to the loop; a file that does
 * not parse is moved to corrupt/.  A file gone meanwhile was delivered
 * and removed (the daemon serves while it indexes): nothing to do.
 */
static void
index_one(struct spool_index *ix, const char *name)
{
	struct spool_envelope *e;

	if (!spool_id_is_valid(name)) {
		quarantine(ix->spool, name, "not a queue id");
		ix->corrupt++;
		return;
	}
	while ((e = spool_load(ix->spool, name)) == NULL) {
		if (errno == ENOENT)
			return;
		if (!is_transient(errno)) {
			quarantine(ix->spool, name, errno == EBADMSG ?
			    "does not parse" : strerror(errno));
			ix->corrupt++;
			return;
		}
		log_event(LOG_WARNING | LOG_ERRNO, "-", "spool.index_retry",
		    "file=%s", log_q(name));
		if (index_pause(ix))
			return;		/* stays in queue/ for the next start */
	}
	index_push(ix, e);
}

/*
 * state/ leftovers: an interrupted update ("<id>.tmp") or the state of
 * a message no longer queued.  Safe while the daemon runs: a state file
 * is written only for a message in queue/, and worker 0 runs a message's
 * state jobs before its removal, so one seen without its message is
 * dead.  After the queue, so a quarantined message's state goes too.
 */
static void
clean_state(struct spool_index *ix)
{
	struct spool *s = ix->spool;
	char id[SPOOL_ID_LEN + 1];
	size_t n, i, len;
	struct stat st;
	char **names;

	if ((names = list_dir(s->statefd, &n)) == NULL)
		return;
	for (i = 0; i < n && !index_is_stopping(ix); i++) {
		/* "<id>" or "<id>.tmp"; ids of either length (_V1). */
		len = strlen(names[i]);
		if (len > 4 && strcmp(names[i] + len - 4, ".tmp") == 0)
			len -= 4;
		if (is_hex_id(names[i], len)) {
			memcpy(id, names[i], len);
			id[len] = '\0';
			if (fstatat(s->queuefd, id, &st, AT_SYMLINK_NOFOLLOW) ==
			    0)
				continue;
		}
		unlinkat(s->statefd, names[i], 0);
	}
	free_list(names, n);
}

/* The whole index: queue/ (in id order, oldest first), then state/. */
static void
index_run(struct spool_index *ix)
{
	struct spool *s = ix->spool;
	char **names;
	size_t n, i;

	if ((names = list_dir(s->queuefd, &n)) == NULL) {
		ix->status = errno ? errno : EIO;
		return;
	}
	for (i = 0; i < n && !index_is_stopping(ix); i++)
		index_one(ix, names[i]);
	free_list(names, n);
	if (ix->corrupt > 0)
		fsync(s->corruptfd);
	clean_state(ix);
}

static void *
index_thread(void *arg)
{
	struct spool_index *ix = arg;

	index_run(ix);
	pthread_mutex_lock(&ix->lock);
	ix->finished = 1;
	pthread_mutex_unlock(&ix->lock);
	index_wake(ix);
	return NULL;
}

/* On the loop: take what the thread found; report the end once. */
static void
index_wake_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct spool_index *ix = arg;
	struct spool_envelope *batch[INDEX_PENDING];
	uint64_t v;
	size_t n;
	int finished;

	if (read(ix->efd, &v, sizeof(v)) == -1 && errno != EAGAIN)
		log_event(LOG_WARNING | LOG_ERRNO, "-", "spool.wake_failed",
		    "op=index_read");
	pthread_mutex_lock(&ix->lock);
	n = ix->npending;
	memcpy(batch, ix->pending, n * sizeof(*batch));
	ix->npending = 0;
	finished = ix->finished;
	pthread_cond_broadcast(&ix->cond);
	pthread_mutex_unlock(&ix->lock);
	for (size_t i = 0; i < n; i++) {
		ix->found++;
		ix->found_cb(ix->arg, batch[i]);
	}
	if (finished && !ix->reported) {
		ix->reported = 1;
		if (ix->corrupt > 0)
			log_event(LOG_WARNING, "-", "spool.corrupt",
			    "files=%zu", ix->corrupt);
		ix->done_cb(ix->arg, ix->found, ix->status);
	}
}

struct spool_index *
spool_index_start(struct spool *s, struct event_base *base,
    void (*found)(void *, struct spool_envelope *),
    void (*done)(void *, size_t, int), void *arg)
{
	struct spool_index *ix;

	if ((ix = calloc(1, sizeof(*ix))) == NULL)
		return NULL;
	ix->spool = s;
	ix->found_cb = found;
	ix->done_cb = done;
	ix->arg = arg;
	pthread_mutex_init(&ix->lock, NULL);
	{
		pthread_condattr_t ca;

		pthread_condattr_init(&ca);
		pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		pthread_cond_init(&ix->cond, &ca);
		pthread_condattr_destroy(&ca);
	}
	clean_tmp(s);
	if ((ix->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) == -1) {
		spool_index_free(ix);
		return NULL;
	}
	ix->ev = event_new(base, ix->efd, EV_READ | EV_PERSIST, index_wake_cb,
	    ix);
	event_add(ix->ev, NULL);
	clock_gettime(CLOCK_MONOTONIC, &ix->last_wake);
	if ((errno = pthread_create(&ix->thread, NULL, index_thread, ix)) !=
	    0) {
		spool_index_free(ix);
		return NULL;
	}
	ix->started = 1;
	return ix;
}

int
spool_index_is_done(const struct spool_index *ix)
{
	return ix == NULL || ix->reported;
}

size_t
spool_index_found(const struct spool_index *ix)
{
	return ix == NULL ? 0 : ix->found;
}

void
spool_index_free(struct spool_index *ix)
{
	int saved = errno;

	if (ix == NULL)
		return;
	pthread_mutex_lock(&ix->lock);
	ix->stopping = 1;
	pthread_cond_broadcast(&ix->cond);
	pthread_mutex_unlock(&ix->lock);
	if (ix->started)
		pthread_join(ix->thread, NULL);
	/* What the loop has not taken stays on disk for the next start. */
	while (ix->npending > 0)
		spool_envelope_free(ix->pending[--ix->npending]);
	if (ix->ev != NULL)
		event_free(ix->ev);
	if (ix->efd != -1)
		close(ix->efd);
	pthread_cond_destroy(&ix->cond);
	pthread_mutex_destroy(&ix->lock);
	free(ix);
	errno = saved;
}
