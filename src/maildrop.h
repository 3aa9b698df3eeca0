/*
 * maildrop.h: mail written by sesrelay-sendmail while sesrelayd is down.
 *
 * Security model (multi-user host; see sesrelay-sendmail(8) SECURITY):
 *   - <spool>/maildrop/ is owned by the daemon's user, group
 *     MAILDROP_GROUP, mode 1730: the group may create files and enter,
 *     nobody else may enter, nobody but the owner may list it, and the
 *     sticky bit stops anyone from removing or renaming a file they do
 *     not own.  sesrelay-sendmail is setgid MAILDROP_GROUP for this only.
 *   - A file is created O_EXCL with a random name "<16 hex>.tmp", mode
 *     0644 (owned by the submitting user: its uid is who sent it), written,
 *     fsynced, renamed to "<16 hex>" (same directory), and the directory
 *     fsynced; only then does sendmail exit 0.
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
 * Addresses and the name have no CR, LF or NUL and are under 1000 bytes.
 */
#ifndef SESRELAY_MAILDROP_H
#define SESRELAY_MAILDROP_H

#include <stddef.h>
#include <stdio.h>

#define MAILDROP_DIR	"maildrop"
#define MAILDROP_GROUP	"sesrelay-drop"
#define MAILDROP_MAGIC	"SESRELAY-DROP 1"

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
 * the header block already read (hdr, hlen) and the rest of in, made
 * durable as described above.  Returns 0, or -1 with errno (ENOSPC,
 * EDQUOT, EACCES...) and nothing left behind.  max: the largest message
 * accepted (bytes); larger gives -1 with EFBIG.
 */
int maildrop_write(const char *dir, const char *from, const char *fullname,
    char *const *rcpts, size_t nrcpt, int extract, const char *hdr,
    size_t hlen, FILE *in, long long max, char *name_out, size_t name_len);

/*
 * Parse a maildrop file's first len bytes (pure; for the daemon, the
 * tests and the fuzzer).  Returns 0 and fills env (free with
 * maildrop_envelope_free), or -1 when it does not parse.
 */
int maildrop_parse(const char *buf, size_t len,
    struct maildrop_envelope *env);
void maildrop_envelope_free(struct maildrop_envelope *);

#endif
