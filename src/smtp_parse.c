/*
 * smtp_parse.c: command splitting, path and parameter parsing.
 *
 * Lenient where real clients are sloppy (a space after "FROM:", a path
 * without angle brackets), strict where SES would refuse the address
 * later: 7-bit only, a domain on every recipient, RFC 5321 lengths.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <idn2.h>

#include "smtp_parse.h"

static const struct {
	const char	*name;
	enum smtp_verb	 verb;
} verbs[] = {
	{ "EHLO", SMTP_VERB_EHLO }, { "HELO", SMTP_VERB_HELO },
	{ "MAIL", SMTP_VERB_MAIL }, { "RCPT", SMTP_VERB_RCPT },
	{ "DATA", SMTP_VERB_DATA }, { "RSET", SMTP_VERB_RSET },
	{ "NOOP", SMTP_VERB_NOOP }, { "QUIT", SMTP_VERB_QUIT },
	{ "VRFY", SMTP_VERB_VRFY }, { "HELP", SMTP_VERB_HELP },
	{ "STARTTLS", SMTP_VERB_STARTTLS }, { "AUTH", SMTP_VERB_AUTH },
};

void
smtp_parse_command(const char *line, struct smtp_command *out)
{
	size_t n = strcspn(line, " ");

	out->verb = SMTP_VERB_UNKNOWN;
	out->verb_text = line;
	out->verb_len = n;
	out->arg = line[n] == ' ' ? line + n + 1 : line + n;
	for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
		if (strlen(verbs[i].name) == n &&
		    strncasecmp(verbs[i].name, line, n) == 0) {
			out->verb = verbs[i].verb;
			break;
		}
}

int
smtp_address_is_valid(const char *addr, int require_domain)
{
	const char *at = strrchr(addr, '@');
	size_t len = strlen(addr);

	if (len == 0 || len > 254)
		return 0;
	for (const char *p = addr; *p; p++)
		if ((unsigned char)*p < 0x21 || (unsigned char)*p > 0x7e)
			return 0;
	if (at == NULL)
		return !require_domain;
	if (at == addr || at[1] == '\0' || at - addr > 64)
		return 0;
	for (const char *p = at + 1; *p; p++)
		if (!isalnum((unsigned char)*p) && *p != '-' && *p != '.' &&
		    *p != '[' && *p != ']' && *p != ':')
			return 0;
	return 1;
}

static int
is_ascii(const char *p, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)p[i] >= 0x80)
			return 0;
	return 1;
}

/*
 * Make addr 7-bit: a UTF-8 domain becomes its IDNA form.  -1 when the
 * local part is not ASCII or the domain cannot be converted (or would
 * not fit).
 */
static int
to_ascii(char addr[SMTP_ADDR_MAX])
{
	char *at = strrchr(addr, '@'), *ace = NULL;
	size_t llen;

	if (is_ascii(addr, strlen(addr)))
		return 0;
	if (at == NULL || !is_ascii(addr, at - addr))
		return -1;
	if (idn2_to_ascii_8z(at + 1, &ace, IDN2_NFC_INPUT |
	    IDN2_NONTRANSITIONAL) != IDN2_OK)
		return -1;
	llen = at + 1 - addr;
	if (llen + strlen(ace) >= SMTP_ADDR_MAX) {
		idn2_free(ace);
		return -1;
	}
	memcpy(at + 1, ace, strlen(ace) + 1);
	idn2_free(ace);
	return 0;
}

enum smtp_path_result
smtp_parse_path(const char *arg, const char *prefix, int allow_null,
    char addr[SMTP_ADDR_MAX], const char **params)
{
	size_t plen = strlen(prefix), len;
	const char *p = arg, *end;

	if (strncasecmp(p, prefix, plen) != 0)
		return SMTP_PATH_SYNTAX;
	p += plen;
	while (*p == ' ')
		p++;
	if (*p == '<') {
		p++;
		if ((end = strchr(p, '>')) == NULL)
			return SMTP_PATH_SYNTAX;
		len = end - p;
		end++;
	} else {
		len = strcspn(p, " ");
		end = p + len;
	}
	if (*end != '\0' && *end != ' ')
		return SMTP_PATH_SYNTAX;
	while (*end == ' ')
		end++;
	*params = end;
	if (len >= SMTP_ADDR_MAX - 1)
		return SMTP_PATH_TOO_LONG;
	/* Source routes (@a,@b:user@c) are stripped, as RFC 5321 allows. */
	if (len > 0 && *p == '@') {
		const char *colon = memchr(p, ':', len);
		if (colon == NULL)
			return SMTP_PATH_SYNTAX;
		len -= colon + 1 - p;
		p = colon + 1;
	}
	memcpy(addr, p, len);
	addr[len] = '\0';
	if (len == 0)
		return allow_null ? SMTP_PATH_OK : SMTP_PATH_SYNTAX;
	if (to_ascii(addr) == -1)
		return strrchr(addr, '@') != NULL &&
		    is_ascii(addr, strrchr(addr, '@') - addr) ?
		    SMTP_PATH_BAD_IDN : SMTP_PATH_NON_ASCII;
	if (!smtp_address_is_valid(addr, 0))
		return SMTP_PATH_SYNTAX;
	if (!allow_null && strchr(addr, '@') == NULL)
		return SMTP_PATH_NO_DOMAIN;
	return SMTP_PATH_OK;
}

int
smtp_parse_mail_params(const char *params, struct smtp_mail_params *out,
    const char **bad)
{
	const char *p = params;

	out->size = -1;
	out->body_8bit = 0;
	while (*p != '\0') {
		size_t n = strcspn(p, " ");

		*bad = p;
		if (n > 5 && strncasecmp(p, "SIZE=", 5) == 0) {
			char *end;
			errno = 0;
			out->size = strtoll(p + 5, &end, 10);
			if (errno || end != p + n || !isdigit((unsigned char)p[5]))
				return -1;
		} else if (n == 13 && strncasecmp(p, "BODY=8BITMIME", 13) == 0)
			out->body_8bit = 1;
		else if (n == 9 && strncasecmp(p, "BODY=7BIT", 9) == 0)
			out->body_8bit = 0;
		else
			return -1;
		p += n;
		while (*p == ' ')
			p++;
	}
	return 0;
}
