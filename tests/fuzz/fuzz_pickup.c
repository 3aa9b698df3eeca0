/*
 * fuzz_pickup.c: the whole take-in of a maildrop file (pickup.c): the
 * file checks, maildrop_parse, -t and -F, cleanup, the commit into a
 * real spool (in a scratch directory, see fuzz_scratch.h) and the
 * removal or quarantine of the file, on the daemon's event loop.
 *
 * Input: one byte of settings, then the maildrop file's contents.
 *   bit 0     root is in sendmail.trusted_users (its "from" is kept)
 *             besides the good file's owner (see good_file)
 *   bit 1     the file has a second link (must be refused)
 *   bit 2     the file is owned by nobody (65534), not root (as root)
 *   bit 3     no rewrite.sender/admin (local recipients have nowhere to go)
 *   bits 4-5  max_message_size: 41943040 (the default), 1024, 2048, 65536
 *   bits 6-7  smtp.max_recipients: 1000 (the default), 1, 2, 50
 * Each input runs a fresh pickup over a maildrop holding the file as
 * "ffffffffffffffff" and a well-formed message "0000000000000001".
 *
 * Invariants (issue 10 items 3 and 9: nothing accepted and dropped, one
 * bad file never wedges the others):
 *   - afterwards the maildrop is empty: each file was committed (the
 *     accepted() callback ran for it) or moved to corrupt/, not both;
 *   - the well-formed file is always committed, whatever the other;
 *   - a committed message loads back from the spool with its envelope
 *     (1 to max_recipients recipients, none twice) and a body of
 *     body_size bytes of CRLF lines without NUL, ending in CRLF, no
 *     larger than max_message_size.
 * Everything accepted is removed again through spool_remove(), and
 * corrupt/ emptied, so each input starts from the same spool.
 */
#include "config.h"

#include <sys/stat.h>

#include <pwd.h>
#include <strings.h>

#include "fuzz_scratch.h"
#include "pickup.h"

#define BAD_NAME	"ffffffffffffffff"
#define GOOD_NAME	"0000000000000001"
#define MAX_ACCEPTED	4

/* From a trusted user, to and from non-local addresses: taken whatever
 * the settings (no rewriting needed, no local sender refused). */
static const char good_file[] =
    "SESRELAY-DROP 1\nfrom good@example.com\nrcpt ok@example.com\n\n"
    "Subject: the good one\n\nhello\n";
static uid_t good_uid;
static char good_user[64];

static struct event_base *base;
static struct spool *spool;
static struct cleanup *rewriting, *plain;
static char spool_dir[300], drop_dir[320], corrupt_dir[320];

static struct spool_envelope *accepted[MAX_ACCEPTED];
static size_t naccepted;

static void
on_accepted(void *arg, struct spool_envelope *env)
{
	(void)arg;
	FUZZ_CHECK(naccepted < MAX_ACCEPTED);
	accepted[naccepted++] = env;
}

static void
init(void)
{
	FUZZ_CHECK((base = event_base_new()) != NULL);
	spool = fuzz_spool_open(base, spool_dir, sizeof(spool_dir));
	snprintf(drop_dir, sizeof(drop_dir), "%s/maildrop", spool_dir);
	snprintf(corrupt_dir, sizeof(corrupt_dir), "%s/corrupt", spool_dir);
	rewriting = fuzz_cleanup_new(1);
	plain = fuzz_cleanup_new(0);
	/* As root the good file belongs to "daemon" (uid 1), as a plain
	 * user to that user: either way a user that is always trusted. */
	good_uid = geteuid() == 0 && getpwuid(1) != NULL ? 1 : geteuid();
	FUZZ_CHECK(getpwuid(good_uid) != NULL);
	snprintf(good_user, sizeof(good_user), "%s",
	    getpwuid(good_uid)->pw_name);
}

/* Write a maildrop file as the settings say. */
static void
write_drop(const char *name, const void *buf, size_t len, unsigned flags,
    uid_t owner)
{
	char path[400], other[400];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", drop_dir, name);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	FUZZ_CHECK(fd != -1);
	FUZZ_CHECK(len == 0 || write(fd, buf, len) == (ssize_t)len);
	/* As a plain user the file stays ours: the bit does nothing. */
	if ((flags & 4) && geteuid() == 0)
		owner = 65534;
	if (owner != geteuid())
		FUZZ_CHECK(fchown(fd, owner, (gid_t)-1) == 0);
	close(fd);
	if (flags & 2) {
		snprintf(other, sizeof(other), "%s/%s.link", drop_dir, name);
		FUZZ_CHECK(link(path, other) == 0);
	}
}

static int
exists(const char *dir, const char *name)
{
	char path[400];
	struct stat st;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return lstat(path, &st) == 0;
}

/* Files in dir (corrupt/: whatever name the quarantine gives them). */
static size_t
count_files(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	size_t n = 0;

	FUZZ_CHECK(d != NULL);
	while ((de = readdir(d)) != NULL)
		n += de->d_name[0] != '.';
	closedir(d);
	return n;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const long long sizes[] = { 41943040, 1024, 2048, 65536 };
	static const long long rcpts[] = { 1000, 1, 2, 50 };
	char *trusted[2] = { good_user, "root" };
	struct pickup_config pc;
	struct pickup *p;
	char err[512];
	unsigned flags;
	size_t good = 0, bad_taken;

	if (size < 1)
		return 0;
	if (base == NULL)
		init();
	flags = data[0];
	memset(&pc, 0, sizeof(pc));
	pc.spool_dir = spool_dir;
	pc.hostname = "relay.example";
	pc.cleanup = (flags & 8) ? plain : rewriting;
	pc.max_message_size = sizes[(flags >> 4) & 3];
	pc.max_recipients = rcpts[(flags >> 6) & 3];
	pc.trusted = trusted;
	pc.ntrusted = (flags & 1) ? 2 : 1;
	pc.accepted = on_accepted;

	/* pickup_new makes maildrop/ the first time. */
	p = pickup_new(base, spool, &pc, err, sizeof(err));
	FUZZ_CHECK(p != NULL);
	write_drop(BAD_NAME, data + 1, size - 1, flags, geteuid());
	write_drop(GOOD_NAME, good_file, sizeof(good_file) - 1, 0, good_uid);
	pickup_scan(p);
	fuzz_spool_settle(base, spool);
	pickup_free(p);

	FUZZ_CHECK(!exists(drop_dir, GOOD_NAME));
	FUZZ_CHECK(!exists(drop_dir, BAD_NAME));
	for (size_t i = 0; i < naccepted; i++) {
		fuzz_check_message(spool, accepted[i], pc.max_message_size,
		    pc.max_recipients);
		if (accepted[i]->nrcpt == 1 &&
		    strcmp(accepted[i]->rcpts[0], "ok@example.com") == 0)
			good++;
	}
	/* The good one was taken (the bad one may look the same). */
	FUZZ_CHECK(good >= 1 && naccepted >= 1);
	bad_taken = naccepted - 1;
	FUZZ_CHECK(bad_taken + count_files(corrupt_dir) == 1);

	for (size_t i = 0; i < naccepted; i++) {
		spool_remove(spool, accepted[i]->id, NULL, NULL);
		spool_envelope_free(accepted[i]);
	}
	naccepted = 0;
	fuzz_spool_settle(base, spool);
	fuzz_empty_dir(corrupt_dir);
	fuzz_empty_dir(drop_dir);
	return 0;
}
