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
	const char	*mailname;	/* qualifies bare senders, "" none */
	const char	*sender;	/* rewrite.sender, "" none */
	const char	*admin;		/* rewrite.admin, "" none */
	char *const	*local_domains;	/* besides localhost and hostname */
	size_t		 nlocal_domains;
	const char	*aliases;	/* file, "" none */
	const char	*sender_map;	/* file, "" none */
	size_t		 max_line;	/* fold longer header lines; 0: 998 */
};

struct conf;

struct cleanup;

/* NULL with "FILE:LINE: ..." in err when a map file does not parse. */
struct cleanup *cleanup_new(const struct cleanup_config *, char *err,
    size_t errlen);
/* The same, with the settings of config c (the daemon's and sendmail's). */
struct cleanup *cleanup_new_from_conf(const struct conf *c,
    const char *hostname, char *err, size_t errlen);
void cleanup_free(struct cleanup *);

/* 1 when addr has no domain or a local one. */
int cleanup_is_local(const struct cleanup *, const char *addr);

/*
 * The envelope sender to use for `sender` (the null sender stays null):
 * a local sender's rewrite.sender_map entry, else rewrite.sender, else,
 * for one without a domain, "sender@<mail name>" when there is one.
 * Returns a pointer into c, to a static buffer, or sender itself.
 */
const char *cleanup_sender(const struct cleanup *, const char *sender);

/*
 * 1 when SES could never take `sender` as MAIL FROM, even after
 * rewriting: without rewrite.sender (or a rewrite.sender_map entry, or
 * a mail name for "root") a local sender such as "root" or
 * "cron@localhost" stays as it is, and
 * an address with no domain, a domain without a dot, a localhost or an
 * address literal can never be a verified identity.  Such mail would be
 * refused by SES and could not even be bounced (no verified sender), so
 * it is refused at submission, on every path, by this one rule.  The
 * null sender is never refused.
 */
int cleanup_sender_is_refused(const struct cleanup *, const char *sender);
/* The reply's text after "550 5.7.1 <sender>: ", on every path. */
#define CLEANUP_SENDER_REFUSED	"not a sender Amazon SES can accept " \
	"(only verified addresses are); local mail needs rewrite.sender " \
	"(or rewrite.sender_map) in sesrelay.conf"

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
 * header block (CRLF lines, without the empty line) in *out.  A field
 * with a line longer than max_line is folded at its white space (see
 * cleanup.c); every other field is copied byte for byte.
 */
int cleanup_header(const struct cleanup *, const char *hdr, size_t len,
    const char *orig_sender, time_t now, char **out, size_t *outlen);

/*
 * 1 when a line of hdr (cleanup_header's output, CRLF or LF lines) is
 * still longer than max_line: one with no white space to fold it at.
 * Such a message is refused (554 5.6.0; sendmail exits 65).
 */
int cleanup_header_is_too_long(const struct cleanup *, const char *hdr,
    size_t len);

/*
 * The start of a message's text as it is spooled, the one rule for the
 * SMTP server's DATA and the maildrop's pickup.  text: CRLF lines, len
 * bytes, the header and what followed it.  When text starts with a
 * header field, its header (up to the first empty line, or all of text
 * when there is none) goes through cleanup_header; then the empty line,
 * added when text has no header and does not start with one; then the
 * rest of text, as it is.  Returns the malloc'd result in *out, and 1
 * when a header line is still longer than max_line (the message is
 * refused: cleanup_header_is_too_long), else 0.
 */
int cleanup_text_start(const struct cleanup *, const char *text, size_t len,
    const char *orig_sender, time_t now, char **out, size_t *outlen);

/* Parse an aliases(5) file into name -> addresses pairs (for tests). */
int cleanup_parse_map(const char *text, const char *file,
    struct addrlist *names, struct addrlist *values, char *err,
    size_t errlen);

#endif
