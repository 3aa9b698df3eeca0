/*
 * smtp_parse.h: pure parsers for the inbound SMTP dialogue.
 *
 * No I/O, no allocation: the server and the fuzzers call these directly.
 */
#ifndef SESRELAY_SMTP_PARSE_H
#define SESRELAY_SMTP_PARSE_H

#include <stddef.h>

enum smtp_verb {
	SMTP_VERB_UNKNOWN = 0,
	SMTP_VERB_EHLO,
	SMTP_VERB_HELO,
	SMTP_VERB_MAIL,
	SMTP_VERB_RCPT,
	SMTP_VERB_DATA,
	SMTP_VERB_RSET,
	SMTP_VERB_NOOP,
	SMTP_VERB_QUIT,
	SMTP_VERB_VRFY,
	SMTP_VERB_HELP,
	SMTP_VERB_STARTTLS,
	SMTP_VERB_AUTH,
};

struct smtp_command {
	enum smtp_verb	 verb;
	const char	*verb_text;	/* points into the line */
	size_t		 verb_len;
	const char	*arg;		/* after the verb and its space; "" if none */
};

/* Split a command line (without CRLF, NUL-terminated). */
void smtp_parse_command(const char *line, struct smtp_command *out);

#define SMTP_ADDR_MAX	256	/* RFC 5321 path limit, with room for NUL */

/* Results of smtp_parse_path(). */
enum smtp_path_result {
	SMTP_PATH_OK = 0,
	SMTP_PATH_SYNTAX,	/* 501 5.5.4 / 5.1.7 */
	SMTP_PATH_TOO_LONG,	/* 501 5.1.3 */
	SMTP_PATH_NON_ASCII,	/* 553 5.6.7: a non-ASCII local part (SES
				 * takes 7-bit addresses only) */
	SMTP_PATH_BAD_IDN,	/* 553 5.1.2: a domain IDNA cannot convert */
	SMTP_PATH_NO_DOMAIN,	/* 553 5.1.3 (recipients) */
};

/*
 * Parse "FROM:<addr> params" (prefix "FROM:") or "TO:<addr> params".
 * The empty path <> is allowed when allow_null.  On SMTP_PATH_OK, addr
 * holds the address without brackets and *params the rest ("" if none).
 * An internationalised domain (UTF-8) is converted to its ASCII form
 * (IDNA 2008, "xn--"), which is what SES accepts; a non-ASCII local part
 * has no such form and is refused.
 */
enum smtp_path_result smtp_parse_path(const char *arg, const char *prefix,
    int allow_null, char addr[SMTP_ADDR_MAX], const char **params);

/* MAIL FROM parameters we understand. */
struct smtp_mail_params {
	long long	size;		/* -1 when not declared */
	int		body_8bit;	/* BODY=8BITMIME */
};

/*
 * Parse "SIZE=123 BODY=8BITMIME"; returns 0, or -1 with *bad pointing
 * at the offending parameter (unknown or malformed).
 */
int smtp_parse_mail_params(const char *params, struct smtp_mail_params *out,
    const char **bad);

/* Address syntax check used for both envelope and -t: 1 if acceptable. */
int smtp_address_is_valid(const char *addr, int require_domain);

#endif
