/*
 * pickup.h: sesrelayd's side of the maildrop (see maildrop.h).
 *
 * Files that sesrelay-sendmail left in <spool>/maildrop/ while the
 * daemon was down are taken in at start, whenever a new one appears
 * (inotify), and every minute: each is checked as hostile input,
 * cleaned up like mail received over SMTP, committed to the spool, and
 * only then removed from the maildrop.
 */
#ifndef SESRELAY_PICKUP_H
#define SESRELAY_PICKUP_H

#include <stddef.h>
#include <sys/types.h>

struct cleanup;
struct event_base;
struct spool;
struct spool_envelope;
struct pickup;

struct pickup_config {
	const char		*spool_dir;
	const char		*hostname;
	const struct cleanup	*cleanup;
	long long		 max_message_size;
	long long		 max_recipients;
	char *const		*trusted;	/* sendmail.trusted_users */
	size_t			 ntrusted;
	void			(*accepted)(void *, struct spool_envelope *);
	void			*arg;
};

/*
 * Create or check the maildrop directory (owner: us; group and mode as
 * spool_layout.h says: SPOOL_DROP_GROUP and 1730 where that group
 * exists) and start watching it.  NULL with err.
 */
struct pickup *pickup_new(struct event_base *, struct spool *,
    const struct pickup_config *, char *err, size_t errlen);
/* New settings (reload). */
void pickup_configure(struct pickup *, const struct pickup_config *);
/* Look now (at start; also run by the watchers). */
void pickup_scan(struct pickup *);
/* Take in nothing new (shutdown); a commit in flight still completes. */
void pickup_stop(struct pickup *);
void pickup_free(struct pickup *);

#endif
