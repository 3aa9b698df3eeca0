/*
 * addrlist.h: pure parsing of RFC 5322 address lists (To, Cc, Bcc) and
 * of a message's header block, for sendmail -t.
 */
#ifndef SESRELAY_ADDRLIST_H
#define SESRELAY_ADDRLIST_H

#include <stddef.h>

struct addrlist {
	char	**v;
	size_t	  n;
};

/*
 * Append the addresses of one header field body ("A <a@b>, c@d (x),
 * group: e@f;") to out.  Display names, comments and group names are
 * dropped.  Returns the number added.
 */
size_t addrlist_parse(const char *value, struct addrlist *out);
void addrlist_add(struct addrlist *, const char *addr);
void addrlist_free(struct addrlist *);

/*
 * For -t: walk a header block (lines ending in LF or CRLF, up to the
 * blank line), collect To, Cc and Bcc recipients into out, and write the
 * header without Bcc fields into *kept (malloc'd, *keptlen bytes).
 * Returns 0, or -1 if the block is not a header (a line without a colon
 * that is not a continuation).
 */
int addrlist_from_header(const char *hdr, size_t len, struct addrlist *out,
    char **kept, size_t *keptlen);

#endif
