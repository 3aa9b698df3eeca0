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
#include "smtp_vocab.h"

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
		return smtp_vocab_path_refusal(pr == SMTP_PATH_OK ?
		    SMTP_PATH_SYNTAX : pr, "RCPT TO:<address>", reply);
	if (*params != '\0')
		return smtp_vocab_bad_param(params, reply);
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
