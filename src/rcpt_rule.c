/*
 * rcpt_rule.c: the recipient rule (see rcpt_rule.h).  Pure apart from
 * the aliases already loaded in cleanup: the same input gives the same
 * verdict on every path, which is the point.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "addrlist.h"
#include "cleanup.h"
#include "rcpt_rule.h"
#include "smtp_parse.h"

/* The reply for a path smtp_parse_path refused. */
static int
path_refusal(enum smtp_path_result r, char *reply)
{
	static const struct {
		enum smtp_path_result	 r;
		int			 code;
		const char		*text;
	} rows[] = {
		{ SMTP_PATH_TOO_LONG, 501, "5.1.3 Error: address too long" },
		{ SMTP_PATH_NON_ASCII, 553, "5.6.7 Error: non-ASCII local "
		  "part; Amazon SES accepts 7-bit addresses only (a domain "
		  "may be internationalised)" },
		{ SMTP_PATH_BAD_IDN, 553, "5.1.2 Error: the domain is not a "
		  "valid internationalised domain name" },
		{ SMTP_PATH_NO_DOMAIN, 553, "5.1.3 Error: recipient address "
		  "needs a domain" },
	};

	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
		if (rows[i].r == r) {
			snprintf(reply, RCPT_RULE_REPLY_MAX, "%d %s",
			    rows[i].code, rows[i].text);
			return rows[i].code;
		}
	snprintf(reply, RCPT_RULE_REPLY_MAX, "501 5.5.4 Syntax: RCPT "
	    "TO:<address>");
	return 501;
}

/* Append the addresses of to that rcpts does not hold yet. */
static void
merge(struct addrlist *to, char ***rcpts, size_t *nrcpt)
{
	for (size_t i = 0; i < to->n; i++) {
		size_t j;
		char **v;

		for (j = 0; j < *nrcpt; j++)
			if (strcasecmp((*rcpts)[j], to->v[i]) == 0)
				break;
		if (j < *nrcpt)
			continue;	/* the same address twice: once */
		if ((v = realloc(*rcpts, (*nrcpt + 1) * sizeof(*v))) == NULL)
			abort();
		*rcpts = v;
		v[(*nrcpt)++] = to->v[i];
		to->v[i] = NULL;
	}
}

int
rcpt_rule_apply(const struct rcpt_rule *r, const char *arg, char ***rcpts,
    size_t *nrcpt, char reply[RCPT_RULE_REPLY_MAX])
{
	struct addrlist to = { NULL, 0 };
	enum smtp_path_result pr;
	const char *params;
	char addr[SMTP_ADDR_MAX];

	addr[0] = '\0';
	if ((pr = smtp_parse_path(arg, "TO:", 1, addr, &params)) !=
	    SMTP_PATH_OK || addr[0] == '\0')
		return path_refusal(pr == SMTP_PATH_OK ? SMTP_PATH_SYNTAX :
		    pr, reply);
	if (*params != '\0') {
		/* Quoted back cut short: a reply line is at most 512
		 * bytes (RFC 5321 4.5.3.1.5). */
		int n = (int)strcspn(params, " ");

		snprintf(reply, RCPT_RULE_REPLY_MAX, "555 5.5.4 Error: "
		    "unsupported parameter \"%.*s%s\"", n > 64 ? 64 : n,
		    params, n > 64 ? "..." : "");
		return 555;
	}
	if (*nrcpt >= (size_t)r->max_recipients) {
		snprintf(reply, RCPT_RULE_REPLY_MAX, "452 4.5.3 Error: too "
		    "many recipients");
		return 452;
	}
	/* Local recipients go where the aliases (or rewrite.admin) say:
	 * refused now rather than bounced by SES later. */
	if (r->cleanup == NULL)
		addrlist_add(&to, addr);
	else if (cleanup_recipient(r->cleanup, addr, &to) == 0) {
		snprintf(reply, RCPT_RULE_REPLY_MAX, "550 5.1.1 <%.200s>: local "
		    "recipient without an alias (set rewrite.admin or "
		    "rewrite.aliases)", addr);
		return 550;
	}
	merge(&to, rcpts, nrcpt);
	addrlist_free(&to);
	snprintf(reply, RCPT_RULE_REPLY_MAX, "250 2.1.5 Ok");
	return 250;
}

int
rcpt_rule_apply_addr(const struct rcpt_rule *r, const char *addr,
    char ***rcpts, size_t *nrcpt, char reply[RCPT_RULE_REPLY_MAX])
{
	size_t n = strlen(addr) + 6;
	char *arg = malloc(n);
	int code;

	if (arg == NULL)
		abort();
	snprintf(arg, n, "TO:<%s>", addr);
	code = rcpt_rule_apply(r, arg, rcpts, nrcpt, reply);
	free(arg);
	return code;
}
