/*
 * rcpt_rule.h: which recipients a message may have.  One rule for every
 * way into the spool: RCPT on the SMTP server (TCP and the Unix socket),
 * sesrelay-sendmail before it writes into the maildrop (so that what the
 * daemon would refuse is refused while sendmail can still say so), and
 * pickup taking a maildrop file in (what does not pass is quarantined,
 * never half-delivered).
 */
#ifndef SESRELAY_RCPT_RULE_H
#define SESRELAY_RCPT_RULE_H

#include <stddef.h>

struct cleanup;

struct rcpt_rule {
	const struct cleanup	*cleanup;	/* aliases; NULL: none known */
	long long		 max_recipients;	/* smtp.max_recipients */
};

/* Room for any reply rcpt_rule_apply writes. */
#define RCPT_RULE_REPLY_MAX	512

/*
 * One RCPT argument ("TO:<addr> params", as the command gives it): its
 * syntax, the limit on recipients, where a local recipient goes.  When
 * it passes, its addresses (the recipient, or its aliases, IDN domains
 * in ASCII) are appended to rcpts (*nrcpt of them, malloc'd), those
 * already there skipped, and 250 is returned; otherwise the refusal's
 * code (452, 501, 550, 553, 555) and rcpts unchanged.  reply: the whole
 * reply line ("452 4.5.3 Error: ..."), without CRLF.
 */
int rcpt_rule_apply(const struct rcpt_rule *, const char *arg,
    char ***rcpts, size_t *nrcpt, char reply[RCPT_RULE_REPLY_MAX]);

/* The same for a bare address: as "RCPT TO:<addr>" would be. */
int rcpt_rule_apply_addr(const struct rcpt_rule *, const char *addr,
    char ***rcpts, size_t *nrcpt, char reply[RCPT_RULE_REPLY_MAX]);

#endif
