/*
 * maildrop.h: mail written by sesrelay-sendmail while sesrelayd is down.
 *
 * Security model (multi-user host; see sesrelay-sendmail(8), SECURITY
 * CONSIDERATIONS):
 *   - <spool>/maildrop/ is owned by the daemon's user, group
 *     SPOOL_DROP_GROUP, mode 1730 (spool_layout.h): the group may
 *     create files and enter, nobody else may enter, nobody but the
 *     owner may list it, and the sticky bit stops anyone from removing
 *     or renaming a file they do not own.  The group must also be able to enter <spool> itself
 *     (group SPOOL_DROP_GROUP, mode 0710).  sesrelay-sendmail is setgid
 *     SPOOL_DROP_GROUP for this only, and holds the group only while it
 *     creates, renames or removes its file (maildrop_set_privilege).
 *   - A file is created O_EXCL with a random name "<16 hex>.tmp", mode
 *     0644 whatever the umask (owned by the submitting user: its uid is
 *     who sent it), written, fsynced, renamed to "<16 hex>" (same
 *     directory, never over an existing file), and the rename made
 *     durable: the directory fsynced, or, when the directory cannot be
 *     opened for reading (the group has no read permission on 1730), the
 *     file system synced with syncfs(2) through the file; only then does
 *     sendmail exit 0.  A ".tmp" file is one being written, or left by a
 *     sendmail that was killed: the daemon must not take it.  Its writer
 *     holds an exclusive flock(2) on it from before its first byte until
 *     it exits, so a non-empty ".tmp" file the daemon can lock is one
 *     whose writer died: the daemon removes it at once.
 *   - No file is created while the spool's file system has less than
 *     spool_min_free bytes (or spool_min_free_inodes inodes) free, as
 *     the daemon answers 452 then (maildrop_set_min_free).
 *   - sesrelayd treats every file as hostile: it opens it O_NOFOLLOW,
 *     takes only regular files with one link, no larger than
 *     max_message_size plus the envelope, parses strictly (below), takes
 *     the sender identity from the file's owner (a -f address is honoured
 *     only for trusted users), and moves what does not parse to corrupt/.
 *
 * File format, version 1 (text envelope, then the message):
 *   "SESRELAY-DROP 1\n"
 *   "from <addr>\n"            the -f address, or "" for the user's own
 *   "fullname <text>\n"        optional: -F, used when From: is absent
 *   ("rcpt <addr>\n")*         may be none with "extract"
 *   "extract\n"                optional: -t (the daemon reads To/Cc/Bcc)
 *   "\n"
 *   <the message, as read by sendmail: LF or CRLF lines, not dot-stuffed>
 * <addr> and <text> are written bare, after one space: "from a@b\n", or
 * "from \n" for the user's own address.  The lines come in this order,
 * each at most once but rcpt; anything else does not parse.  Addresses
 * and the name have no control characters but TAB (in the name; so no
 * CR, LF or NUL) and are under 1000 bytes; a rcpt is never empty, the
 * fullname neither (no -F: no fullname line).  sesrelay-sendmail writes
 * what it would have sent over the socket: every recipient (-t's
 * included) as rcpt lines, no extract or fullname line, the message with
 * -t and -F applied (sendmail_args_header), and only after the daemon's
 * RCPT rule (rcpt_rule.h) passed.  A file with extract or fullname (an
 * older sendmail's) is read by the daemon through the same functions,
 * so the two paths cannot differ: the header as
 * sendmail_args_read_header reads it, -t and -F as sendmail_args_header
 * applies them, every recipient through the RCPT rule.
 */
#ifndef SESRELAY_MAILDROP_H
#define SESRELAY_MAILDROP_H

#include <stddef.h>
#include <stdio.h>

#include "spool_layout.h"

#define MAILDROP_MAGIC	"SESRELAY-DROP 1"
#define MAILDROP_VALUE_MAX	999	/* bytes in an address or the name */
#define MAILDROP_NAME_LEN	17	/* "<16 hex>" and its NUL */

struct maildrop_envelope {
	char	*from;		/* "" : the submitting user's own address */
	char	*fullname;	/* NULL: none */
	char	**rcpts;
	size_t	 nrcpt;
	int	 extract;	/* -t */
	size_t	 body_off;	/* where the message starts in the file */
};

/*
 * Write a maildrop file into dir (the spool's maildrop/): envelope, then
 * the header block already read (hdr, hlen) and the rest of in (NULL:
 * nothing more), made durable as described above.  Returns 0 with the
 * file's name in name_out, or -1 with errno (ENOSPC, EDQUOT, EACCES...)
 * and nothing left behind; EINVAL: a field breaks the rules above.
 * max: the largest message accepted, in bytes as the daemon counts them
 * (a bare LF counts as CRLF); larger gives -1 with EFBIG.  A read error
 * on in gives -1 with that errno.
 */
int maildrop_write(const char *dir, const char *from, const char *fullname,
    char *const *rcpts, size_t nrcpt, int extract, const char *hdr,
    size_t hlen, FILE *in, long long max, char *name_out, size_t name_len);

/*
 * Parse a maildrop file's first len bytes (pure; for the daemon, the
 * tests and the fuzzer).  Returns 0 and fills env (free with
 * maildrop_envelope_free), or -1 when it does not parse (env is then
 * empty and needs no freeing).  len may end anywhere after the envelope.
 */
int maildrop_parse(const char *buf, size_t len,
    struct maildrop_envelope *env);
void maildrop_envelope_free(struct maildrop_envelope *);

/* Is name that of a finished maildrop file ("<16 hex>")?  The one check. */
int maildrop_name_is_valid(const char *name);
/* Is it one being written, or left by a writer that died ("<16 hex>.tmp")? */
int maildrop_name_is_tmp(const char *name);

/*
 * The set-group-ID sesrelay-sendmail holds SPOOL_DROP_GROUP only around
 * the calls of maildrop_write that need it: opening the directory,
 * creating the file, renaming it and removing it after a failure.
 * raise() returns 0, or -1 with errno; lower() cannot fail (it aborts).
 * NULL, the default: nothing to do (the daemon, the tests).
 */
void maildrop_set_privilege(int (*raise)(void), void (*lower)(void));

/*
 * The daemon's spool_min_free and spool_min_free_inodes, for the
 * maildrop_write calls that follow: below them it fails with ENOSPC
 * before creating anything.  0, the default: no threshold.
 */
void maildrop_set_min_free(long long bytes, long long inodes);

/* Room for any From: field maildrop_from_field writes. */
#define MAILDROP_FROM_MAX	4096

/*
 * The From: field sendmail adds for -F when a message has none:
 * "From: Full Name <addr>\n", the name as an RFC 5322 phrase, a quoted
 * string, or RFC 2047 encoded words (UTF-8, folded) when it is not
 * ASCII or would make the line too long.  For sesrelay-sendmail's SMTP
 * path and for the daemon's reading of a maildrop file's fullname.
 * Returns the length written into buf (NUL-terminated), or -1 when it
 * does not fit.
 */
int maildrop_from_field(const char *fullname, const char *addr, char *buf,
    size_t len);

#endif
