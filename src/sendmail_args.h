/*
 * sendmail_args.h: what the sendmail command line means, as pure
 * functions (no I/O, no exit): the options, parsed from one table, and
 * what -t and -F do to a message's header on its way to sesrelayd.
 */
#ifndef SESRELAY_SENDMAIL_ARGS_H
#define SESRELAY_SENDMAIL_ARGS_H

#include <stddef.h>
#include <stdio.h>

#include "addrlist.h"

enum sendmail_mode {
	SENDMAIL_MODE_SEND = 0,		/* -bm, the default */
	SENDMAIL_MODE_SMTP,		/* -bs: SMTP on stdin/stdout */
	SENDMAIL_MODE_MAILQ,		/* -bp, or called as mailq */
	SENDMAIL_MODE_FLUSH,		/* -q, -q<interval>, -qR... */
	SENDMAIL_MODE_VERIFY,		/* -bv */
	SENDMAIL_MODE_NEWALIASES,	/* -bi, -I, or called as newaliases */
	SENDMAIL_MODE_VERSION,		/* --version */
};

/* Longest -F name and -f address (the maildrop's limits are wider). */
#define SENDMAIL_NAME_MAX	999
#define SENDMAIL_ADDR_MAX	254

struct sendmail_args {
	enum sendmail_mode	 mode;
	int			 extract;	/* -t */
	int			 ignore_dots;	/* -i, -oi */
	int			 verbose;	/* -v */
	const char		*sender;	/* -f, -r: NULL, or without <> */
	const char		*fullname;	/* -F: NULL when absent or "" */
	const char		*config;	/* -C */
	char *const		*rcpts;		/* operands */
	size_t			 nrcpt;
	char			 sender_buf[SENDMAIL_ADDR_MAX + 1];
	char			 error[256];	/* set when parsing fails */
};

/*
 * Parse argv (argv[0] selects the mode: "mailq", "newaliases").
 * Returns 0, or -1 with a.error set (a usage error).
 */
int sendmail_args_parse(int argc, char *const argv[], struct sendmail_args *a);

/*
 * The header as sesrelayd gets it over SMTP.  hdr holds len bytes: the
 * header fields (the first fields bytes), then the line that ended them
 * (the empty line, or the start of the body when there was none).
 * With extract (-t), the To:, Cc: and Bcc: addresses are appended to rcpts and the
 * Bcc: fields are removed; with a fullname (-F) and no From: field,
 * "From: Full Name <sender>" is added (maildrop_from_field); a body that followed the fields without an empty
 * line gets one.  Returns 0 with a malloc'd block in *out (*outlen
 * bytes, NUL-terminated), or -1 when the fields are not a header.
 */
int sendmail_args_header(int extract, const char *fullname,
    const char *sender, const char *hdr, size_t fields, size_t len,
    struct addrlist *rcpts, char **out, size_t *outlen);

/* What one line of a message's beginning is (see sendmail_args_header). */
enum sendmail_line {
	SENDMAIL_LINE_FIELD,		/* "Name: value" */
	SENDMAIL_LINE_CONTINUATION,	/* white space first, after a field */
	SENDMAIL_LINE_END,		/* the empty line: the header ends */
	SENDMAIL_LINE_BODY,		/* anything else: the body starts */
};

/*
 * Classify a line (n bytes, with or without its line end); after_field:
 * a field came before it, so a line starting with white space continues
 * that field.
 */
enum sendmail_line sendmail_args_line(const char *line, size_t n,
    int after_field);

/* The largest header block read (the fields and the line ending them). */
#define SENDMAIL_HEADER_MAX	(1024 * 1024)

struct sendmail_header {
	char	*buf;		/* NUL-terminated, malloc'd */
	size_t	 len;
	size_t	 fields;	/* the header fields; then the line ending them */
};

/*
 * Read a message's header fields from fp and the line that ends them:
 * the empty line, or the first line of a body that follows without one
 * (of that line, at most what is left of SENDMAIL_HEADER_MAX).  The one
 * rule for sesrelay-sendmail (standard input) and for the daemon's
 * pickup (a maildrop file).  0, or -1 with errno (EFBIG: the fields are
 * larger than SENDMAIL_HEADER_MAX); free h->buf either way.
 */
int sendmail_args_read_header(FILE *fp, struct sendmail_header *h);

#endif
