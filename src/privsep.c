/*
 * privsep.c: binding as root, then never root again (see privsep.h).
 */
#include "config.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#ifdef HAVE_LIBSYSTEMD
#include <systemd/sd-daemon.h>
#endif

#include "conf.h"
#include "listener.h"
#include "log.h"
#include "netaddr.h"
#include "privsep.h"
#include "smtp_server.h"
#include "spool_layout.h"

/* Make the directory of a socket path, searchable by every local user. */
void
privsep_socket_dir(const char *path)
{
	char *dir = strdup(path), *slash;

	if (dir != NULL && (slash = strrchr(dir, '/')) != NULL &&
	    slash != dir) {
		*slash = '\0';
		if (mkdir(dir, 0755) == 0)
			chmod(dir, 0755);	/* whatever the umask */
	}
	free(dir);
}

void
privsep_take_activated(struct listen_fds *l)
{
#ifdef HAVE_LIBSYSTEMD
	int n = sd_listen_fds(1);

	for (int i = 0; i < n && l->n < PRIVSEP_MAXFD; i++) {
		int fd = SD_LISTEN_FDS_START + i;
		struct listen_fd *p = &l->v[l->n];
		struct sockaddr_storage ss;
		socklen_t len = sizeof(ss);

		if (sd_is_socket(fd, AF_UNSPEC, SOCK_STREAM, 1) <= 0) {
			log_event(LOG_WARNING, "-", "daemon.activation_ignored",
			    "fd=%d msg=\"not a listening stream socket\"", fd);
			continue;
		}
		memset(&ss, 0, sizeof(ss));
		getsockname(fd, (struct sockaddr *)&ss, &len);
		p->fd = fd;
		p->is_unix = ss.ss_family == AF_UNIX;
		if (p->is_unix)
			snprintf(p->label, sizeof(p->label), "%s",
			    ((struct sockaddr_un *)&ss)->sun_path);
		else {
			char a[64];
			int port = ss.ss_family == AF_INET6 ?
			    ntohs(((struct sockaddr_in6 *)&ss)->sin6_port) :
			    ntohs(((struct sockaddr_in *)&ss)->sin_port);

			netaddr_str((struct sockaddr *)&ss, a, sizeof(a));
			snprintf(p->label, sizeof(p->label), ss.ss_family ==
			    AF_INET6 ? "[%s]:%d" : "%s:%d", a, port);
		}
		l->n++;
	}
	if (l->n > 0) {
		l->activated = 1;
		log_event(LOG_INFO, "-", "daemon.activated", "sockets=%zu "
		    "msg=\"from systemd; listen.tcp and listen.unix are not "
		    "used\"", l->n);
	}
#endif
}

/* Bind the configured listeners now (as root, before dropping). */
static void
prebind(const struct conf *c, struct listen_fds *l)
{
	char err[CONF_ERRLEN];
	int fd;

	for (size_t i = 0; i < c->listen.tcp.n && l->n < PRIVSEP_MAXFD - 1; i++) {
		if ((fd = listener_bind_tcp(c->listen.tcp.v[i], err,
		    sizeof(err))) == -1)
			fatalx("daemon.listen_failed", "msg=%s", log_q(err));
		l->v[l->n].fd = fd;
		l->v[l->n].is_unix = 0;
		snprintf(l->v[l->n++].label, sizeof(l->v[0].label),
		    "%s", c->listen.tcp.v[i]);
	}
	if (c->listen.unix_path[0] != '\0') {
		privsep_socket_dir(c->listen.unix_path);
		if ((fd = listener_bind_unix(c->listen.unix_path, 0666, err,
		    sizeof(err))) == -1)
			fatalx("daemon.listen_failed", "msg=%s", log_q(err));
		l->v[l->n].fd = fd;
		l->v[l->n].is_unix = 1;
		snprintf(l->v[l->n++].label, sizeof(l->v[0].label),
		    "%s", c->listen.unix_path);
	}
}

/* The directory of path, made and given to uid (run directories). */
static void
own_dir_of(const char *path, uid_t uid, gid_t gid)
{
	char *dir = strdup(path), *slash;

	if (dir != NULL && (slash = strrchr(dir, '/')) != NULL &&
	    slash != dir) {
		*slash = '\0';
		privsep_socket_dir(path);
		if (chown(dir, uid, gid) == -1)
			log_event(LOG_WARNING | LOG_ERRNO, "-",
			    "daemon.chown_failed", "dir=%s", log_q(dir));
	}
	free(dir);
}

/* Give file name in the directory fd to uid (no links); a failure is
 * logged (the daemon, once unprivileged, will not be able to use it). */
static void
own_file(int fd, const char *spool, const char *dir, const char *name,
    uid_t uid, gid_t gid)
{
	char path[PATH_MAX];

	if (fchownat(fd, name, uid, gid, AT_SYMLINK_NOFOLLOW) == 0)
		return;
	snprintf(path, sizeof(path), "%s/%s%s%s", spool, dir, *dir ? "/" : "",
	    name);
	log_event(LOG_WARNING | LOG_ERRNO, "-", "daemon.chown_failed",
	    "dir=%s", log_q(path));
}

/* Give the files of one spool directory to uid (one level, no links). */
static void
own_files(int fd, const char *spool, int d, uid_t uid, gid_t gid)
{
	DIR *dir;
	struct dirent *de;

	if ((fd = dup(fd)) == -1 || (dir = fdopendir(fd)) == NULL) {
		if (fd != -1)
			close(fd);
		return;
	}
	while ((de = readdir(dir)) != NULL)
		if (de->d_name[0] != '.')
			own_file(dirfd(dir), spool, spool_layout[d].name,
			    de->d_name, uid, gid);
	closedir(dir);
}

/*
 * Give the spool to the user we become, as spool_layout.h says: each
 * directory its owner, group and mode, and what is in them, never
 * following links, one level deep (the maildrop's files stay their
 * senders').  The spool and (with the drop group) maildrop/ are made
 * here; spool_open makes the rest.
 */
static void
own_spool(const char *spool, uid_t uid, gid_t gid)
{
	gid_t drop = spool_layout_drop_gid();
	struct stat st;
	int top, fd;

	(void)mkdir(spool, spool_layout[SPOOL_DIR_TOP].mode);
	if ((top = open(spool, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC)) == -1)
		return;		/* spool_open says why, later */
	if (fstat(top, &st) == 0 && st.st_uid != uid)
		log_event(LOG_INFO, "-", "daemon.spool_chown",
		    "spool=%s uid=%u", log_q(spool), (unsigned)uid);
	own_file(top, spool, "", SPOOL_LOCK_FILE, uid, gid);
	for (int d = 0; d < SPOOL_NDIRS; d++) {
		/* Without the drop group, only the daemon can use the maildrop. */
		if (d == SPOOL_DIR_MAILDROP && drop != (gid_t)-1)
			(void)spool_layout_make(top, d, drop);
		if ((fd = spool_layout_open(top, d)) == -1)
			continue;
		(void)spool_layout_apply(fd, d, uid, gid, drop);
		if (d != SPOOL_DIR_TOP && !spool_layout[d].senders_files)
			own_files(fd, spool, d, uid, gid);
		close(fd);
	}
	close(top);
}

/*
 * Started as root: bind what needs root, then become conf->user for
 * good, before reading any input.
 */
void
privsep_drop(const struct conf *c, struct listen_fds *l)
{
	struct passwd *pw;
	uid_t uid;
	gid_t gid;

	if (geteuid() != 0 || c->user[0] == '\0')
		return;
	if ((pw = getpwnam(c->user)) == NULL) {
		log_event(LOG_WARNING, "-", "daemon.no_user", "user=%s "
		    "spool=%s msg=\"no such user: create it (useradd --system "
		    "--home-dir SPOOL --shell /usr/sbin/nologin USER, or "
		    "install sysusers.d/sesrelay.conf), or set user = '' to "
		    "run as root\"", log_q(c->user), log_q(c->spool));
		exit(EX_NOUSER);
	}
	uid = pw->pw_uid;
	gid = pw->pw_gid;
	if (l->n == 0)
		prebind(c, l);
	own_spool(c->spool, uid, gid);
	own_dir_of(c->control.socket, uid, gid);
	if (c->listen.unix_path[0] != '\0')
		own_dir_of(c->listen.unix_path, uid, gid);
	if (initgroups(pw->pw_name, gid) == -1 || setgid(gid) == -1 ||
	    setuid(uid) == -1)
		fatal("daemon.setuid_failed", "user=%s", log_q(c->user));
	if (setuid(0) != -1)
		fatalx("daemon.setuid_failed", "msg=\"could become root again\"");
	log_event(LOG_INFO, "-", "daemon.user", "user=%s uid=%u",
	    log_q(c->user), (unsigned)uid);
}

