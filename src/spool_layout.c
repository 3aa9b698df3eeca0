/*
 * spool_layout.c: the spool's directories, their modes and groups (see
 * spool_layout.h), and the few operations every user of the table
 * shares: build a path, create and open a directory, give it its owner,
 * group and mode.
 */
#include "config.h"

#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdio.h>
#include <unistd.h>

#include "spool_layout.h"

/*
 * The one table.  systemd/sesrelay.tmpfiles.in lists each row as
 * "d <spool>/<name> <drop_mode> sesrelay <group> -" (check_spool).
 */
const struct spool_dir_spec spool_layout[SPOOL_NDIRS] = {
	/*			  name        mode   drop_mode grp  senders' */
	[SPOOL_DIR_TOP]		= { "",         0700,  0710,     1,   0 },
	[SPOOL_DIR_TMP]		= { "tmp",      0700,  0700,     0,   0 },
	[SPOOL_DIR_QUEUE]	= { "queue",    0700,  0700,     0,   0 },
	[SPOOL_DIR_STATE]	= { "state",    0700,  0700,     0,   0 },
	[SPOOL_DIR_CORRUPT]	= { "corrupt",  0700,  0700,     0,   0 },
	[SPOOL_DIR_MAILDROP]	= { "maildrop", 0700,  01730,    1,   1 },
};

int
spool_layout_path(const char *spool, enum spool_dir d, char *buf,
    size_t len)
{
	const char *name = spool_layout[d].name;
	int n = snprintf(buf, len, "%s%s%s", spool, name[0] ? "/" : "", name);

	if (n < 0 || (size_t)n >= len) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return 0;
}

gid_t
spool_layout_drop_gid(void)
{
	struct group *gr = getgrnam(SPOOL_DROP_GROUP);

	return gr != NULL ? gr->gr_gid : (gid_t)-1;
}

mode_t
spool_layout_mode(enum spool_dir d, gid_t drop_gid)
{
	return drop_gid != (gid_t)-1 ? spool_layout[d].drop_mode :
	    spool_layout[d].mode;
}

/* Its name under the spool, for the *at() calls. */
static const char *
relative(enum spool_dir d)
{
	return spool_layout[d].name[0] ? spool_layout[d].name : ".";
}

int
spool_layout_make(int top, enum spool_dir d, gid_t drop_gid)
{
	if (mkdirat(top, relative(d), spool_layout_mode(d, drop_gid)) == -1 &&
	    errno != EEXIST)
		return -1;
	return 0;
}

int
spool_layout_open(int top, enum spool_dir d)
{
	return openat(top, relative(d), O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC);
}

/* The mode d should have, given its mode now (see spool_layout_apply). */
static mode_t
wanted_mode(enum spool_dir d, mode_t now, gid_t drop_gid)
{
	const struct spool_dir_spec *r = &spool_layout[d];

	now &= 07777;
	if (!r->drop_group)
		return now;	/* checked by spool_open, never changed */
	if (drop_gid != (gid_t)-1)
		return r->drop_mode;
	return (now & 0777 & ~r->mode) != 0 ? r->mode : now;
}

int
spool_layout_apply(int fd, enum spool_dir d, uid_t uid, gid_t gid,
    gid_t drop_gid)
{
	gid_t group = spool_layout[d].drop_group ? drop_gid : gid;
	struct stat st;
	mode_t mode;

	if (fstat(fd, &st) == -1)
		return -1;
	if ((uid != (uid_t)-1 && st.st_uid != uid) ||
	    (group != (gid_t)-1 && st.st_gid != group)) {
		if (fchown(fd, uid, group) == -1)
			return -1;
	}
	mode = wanted_mode(d, st.st_mode, drop_gid);
	if ((st.st_mode & 07777) != mode && fchmod(fd, mode) == -1)
		return -1;
	return 0;
}

int
spool_layout_drop_is_closed(mode_t mode)
{
	return (mode & S_ISVTX) && (mode & S_IRWXO) == 0;
}
