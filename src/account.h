/*
 * account.h: the SES account's own limits, read with GetAccount every
 * <endpoint>.account_check_interval seconds where API credentials
 * exist: the send rate (for rate = 0), the 24-hour quota and what has
 * been sent, whether sending is enabled.  The pool is told the rate to
 * use and when to hold sending (before the quota is spent; loudly when
 * SES disabled or shut down the account's sending).
 */
#ifndef SESRELAY_ACCOUNT_H
#define SESRELAY_ACCOUNT_H

#include <stddef.h>
#include <time.h>

#include <openssl/ssl.h>

struct creds;
struct endpoint;
struct event_base;
struct evdns_base;
struct account;

/* Why sending is held (in order of precedence). */
enum account_hold {
	ACCOUNT_OK,
	ACCOUNT_QUOTA,		/* the 24-hour quota is (nearly) spent */
	ACCOUNT_DISABLED,	/* SendingEnabled = false */
	ACCOUNT_SHUTDOWN,	/* EnforcementStatus = SHUTDOWN */
};

/* What the last GetAccount said, and what was sent since. */
struct account_view {
	int	 known;			/* one answer was read */
	double	 max_24h;		/* Max24HourSend; -1: unlimited */
	double	 max_rate;		/* MaxSendRate, recipients/s */
	double	 sent_24h;		/* SentLast24Hours when read */
	double	 sent_since;		/* recipients delivered since */
	int	 sending_enabled;
	char	 enforcement[24];	/* HEALTHY, PROBATION, SHUTDOWN */
	time_t	 read_at;
	enum account_hold hold;
};

/* What the account tells its pool. */
struct account_events {
	void	(*rate)(void *arg, double rate);	/* rate = 0 only */
	void	(*hold)(void *arg, int held);
	void	(*room)(void *arg);	/* a read found the quota not spent */
	void	*arg;
};

/* Pure.  GetAccount's JSON into v (known set); 0, or -1 (garbage). */
int account_parse(const char *json, size_t len, struct account_view *v);
/* Should sending be held, and why? */
enum account_hold account_should_hold(const struct account_view *);
/* The rate to use for rate = 0: MaxSendRate less 10 %. */
double account_rate(const struct account_view *);

/*
 * Read ep's account every ep->account_check_interval s (the first at
 * once), signing with cr's credentials; NULL when the endpoint has no
 * reason to (interval 0), or with err when the TLS set-up fails.
 */
struct account *account_new(struct event_base *, struct evdns_base *,
    const struct endpoint *, struct creds *, const struct account_events *,
    int timeout, char *err, size_t errlen);
const struct account_view *account_view(const struct account *);
void account_free(struct account *);

#endif
