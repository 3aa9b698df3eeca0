/*
 * cleanup.h: what happens to a message as it is accepted.
 *
 * SES takes mail only from verified identities and to real addresses, so
 * mail from cron and legacy programs ("root", "www-data@localhost") must
 * be fixed before it is queued:
 *   - local senders (user, user@localhost, user@<hostname>) become
 *     rewrite.sender (or the user's entry in rewrite.sender_map), in the
 *     envelope and in From:, keeping the display name;
 *   - local recipients are mapped through the aliases file; one without
 *     an alias goes to rewrite.admin, or is refused;
 *   - Date:, Message-ID: are added when missing, and
 *     "To: undisclosed-recipients:;" when there is no To: or Cc:.
 * Pure functions over strings, apart from loading the two map files.
 */
#ifndef SESRELAY_CLEANUP_H
#define SESRELAY_CLEANUP_H

#include <stddef.h>
#include <time.h>

#include "addrlist.h"

struct cleanup_config {
	int		 enable;	/* cleanup.enable: headers */
	const char	*hostname;
	const char	*sender;	/* rewrite.sender, "" none */
	const char	*admin;		/* rewrite.admin, "" none */
	char *const	*local_domains;	/* besides localhost and hostname */
	size_t		 nlocal_domains;
	const char	*aliases;	/* file, "" none */
	const char	*sender_map;	/* file, "" none */
};

struct cleanup;

/* NULL with "FILE:LINE: ..." in err when a map file does not parse. */
struct cleanup *cleanup_new(const struct cleanup_config *, char *err,
    size_t errlen);
void cleanup_free(struct cleanup *);

/* 1 when addr has no domain or a local one. */
int cleanup_is_local(const struct cleanup *, const char *addr);

/*
 * The envelope sender to use for `sender` (the null sender stays null).
 * Returns a pointer into c, or sender itself.
 */
const char *cleanup_sender(const struct cleanup *, const char *sender);

/*
 * Expand one recipient into out: itself, or for a local one its aliases
 * (recursively, bounded), or rewrite.admin.  Returns the number added,
 * or 0 when a local recipient has nowhere to go.
 */
size_t cleanup_recipient(const struct cleanup *, const char *rcpt,
    struct addrlist *out);

/*
 * Rewrite a header block (the lines before the empty line, CRLF line
 * ends, without the empty line).  orig_sender is the envelope sender as
 * the client gave it; now is the time for Date:.  Returns a malloc'd new
 * header block (CRLF lines, without the empty line) in *out.
 */
int cleanup_header(const struct cleanup *, const char *hdr, size_t len,
    const char *orig_sender, time_t now, char **out, size_t *outlen);

/* Parse an aliases(5) file into name -> addresses pairs (for tests). */
int cleanup_parse_map(const char *text, const char *file,
    struct addrlist *names, struct addrlist *values, char *err,
    size_t errlen);

#endif
