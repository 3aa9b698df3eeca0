/*
 * ses_headers.h: SES's own headers, added as a message goes upstream.
 *
 * Over SMTP the only way to choose a configuration set (event
 * publishing) and to tag a message is a header: X-SES-CONFIGURATION-SET
 * and X-SES-MESSAGE-TAGS (SES removes both before delivery).  They come
 * from ses.configuration_set and ses.tags, or per envelope sender from
 * ses.sender_map.  A message that already carries one keeps its own:
 * the application knew what it wanted.  Pure apart from loading the map.
 */
#ifndef SESRELAY_SES_HEADERS_H
#define SESRELAY_SES_HEADERS_H

#include <stddef.h>

struct ses_headers;

/* 1 when name is a valid configuration set name (1-64 of [A-Za-z0-9_-]). */
int ses_headers_valid_set(const char *name);
/* 1 when tag is "name=value", both non-empty [A-Za-z0-9_-]. */
int ses_headers_valid_tag(const char *tag);

/*
 * config_set: "" for none; tags: "name=value" strings; map_file: "" for
 * none, else lines "sender-or-@domain: [set] [name=value ...]" (a set of
 * "-" means none).  NULL with "FILE:LINE: ..." in err.
 */
struct ses_headers *ses_headers_new(const char *config_set,
    char *const *tags, size_t ntags, const char *map_file, char *err,
    size_t errlen);
/* Parse map text (the loader's work, for tests and the fuzzer). */
struct ses_headers *ses_headers_parse(const char *config_set,
    char *const *tags, size_t ntags, const char *map_text,
    const char *file, char *err, size_t errlen);
void ses_headers_free(struct ses_headers *);

/*
 * The header lines (CRLF) to put before a message from sender whose
 * header starts with hdr[0..len) (a prefix is enough: fields past it are
 * not seen).  Returns the length written to out (NUL-terminated; 0:
 * nothing to add), or 0 when out is too small.
 */
size_t ses_headers_for(const struct ses_headers *, const char *sender,
    const char *hdr, size_t len, char *out, size_t outlen);

/*
 * The same as request fields (the SES API transport): the configuration
 * set and the tags ("name=value, name=value") for sender, each "" when
 * none or when the message's header prefix hdr[0..len) has its own
 * X-SES-* field (SES reads that one, as over SMTP).
 */
void ses_headers_fields(const struct ses_headers *, const char *sender,
    const char *hdr, size_t len, const char **set, const char **tags);

#endif
