/*
 * spool_layout.h: the directories of the spool, with their modes and
 * groups: one table, which spool.c (opening them), privsep.c (giving
 * them to the daemon's user), pickup.c and sesrelay-sendmail (the
 * maildrop) follow, and which systemd/sesrelay.tmpfiles.in must agree
 * with (check_spool compares them).
 *
 * Two groups matter: the daemon user's own, and SPOOL_DROP_GROUP, the
 * group sesrelay-sendmail is set-group-ID to so that it can drop mail
 * into maildrop/ while the daemon is down.  Where that group exists,
 * the spool itself is 0710 (the group may pass through it) and
 * maildrop/ 1730 (the group may create files there, not list them nor
 * remove others'); where it does not, both are the daemon's alone
 * (0700).  Every other directory is the daemon's alone, 0700.
 */
#ifndef SESRELAY_SPOOL_LAYOUT_H
#define SESRELAY_SPOOL_LAYOUT_H

#include <stddef.h>
#include <sys/types.h>

#define SPOOL_DROP_GROUP	"sesrelay-drop"
#define SPOOL_LOCK_FILE		"lock"	/* one daemon per spool (flock) */

enum spool_dir {
	SPOOL_DIR_TOP,		/* the spool itself */
	SPOOL_DIR_TMP,		/* messages being received */
	SPOOL_DIR_QUEUE,	/* committed messages */
	SPOOL_DIR_STATE,	/* their delivery state */
	SPOOL_DIR_CORRUPT,	/* refused files, kept for the operator */
	SPOOL_DIR_MAILDROP,	/* what sesrelay-sendmail left (maildrop.h) */
	SPOOL_NDIRS
};

struct spool_dir_spec {
	const char	*name;		/* under the spool; "" the spool */
	mode_t		 mode;		/* created with; without the drop
					 * group, the most it may allow */
	mode_t		 drop_mode;	/* where the drop group exists */
	int		 drop_group;	/* group SPOOL_DROP_GROUP (when it
					 * exists), else the daemon's */
	int		 senders_files;	/* its files stay their senders' */
};

/* The table, indexed by enum spool_dir. */
extern const struct spool_dir_spec spool_layout[SPOOL_NDIRS];

/* "<spool>/<name>" into buf; -1 (ENAMETOOLONG) when it does not fit. */
int spool_layout_path(const char *spool, enum spool_dir, char *buf,
    size_t len);
/* The drop group's id, or (gid_t)-1 when the system has no such group. */
gid_t spool_layout_drop_gid(void);
/* The mode d is created with: drop_mode with the drop group, else mode. */
mode_t spool_layout_mode(enum spool_dir d, gid_t drop_gid);
/*
 * Make directory d of the spool open at top, with spool_layout_mode;
 * 0 when made or already there, -1 with errno.
 */
int spool_layout_make(int top, enum spool_dir d, gid_t drop_gid);
/*
 * Open directory d of the spool open at top, never following a link;
 * the descriptor, or -1 with errno.
 */
int spool_layout_open(int top, enum spool_dir d);
/*
 * Give the directory d, open at fd, the owner uid, and the group of the
 * table: drop_gid for the drop group's directories, gid for the others
 * ((uid_t)-1, (gid_t)-1: keep).  The directories the drop group may
 * enter also get their mode: drop_mode when the group exists, else mode
 * when they allow more than it.  Nothing changes what is already right.
 * 0, or -1 with errno.
 */
int spool_layout_apply(int fd, enum spool_dir d, uid_t uid, gid_t gid,
    gid_t drop_gid);
/*
 * Is mode that of a maildrop the drop group may write into: sticky
 * (no one removes another's file) and closed to others?
 */
int spool_layout_drop_is_closed(mode_t mode);

#endif
