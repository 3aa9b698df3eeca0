/*
 * account.c: the SES account's limits, read with GetAccount
 * (GET /v2/email/account) on a timer, and what follows from them.
 *
 * Policy, in one place (account_should_hold, account_rate):
 *   - rate = 0 follows MaxSendRate less 10 %: SES tolerates short bursts
 *     only, and other hosts may share the account;
 *   - sending is held before the 24-hour quota is spent: when what SES
 *     counted at the last read plus what this daemon delivered since
 *     (looked at 4 times a second) leaves less than a reserve (1 % of
 *     the quota, at least two seconds at MaxSendRate: the transactions
 *     already out still land), rather than after SES refuses; a read
 *     that shows room releases it (the quota is a rolling 24 hours),
 *     and also ends a pause SES's own quota refusal started;
 *   - SendingEnabled = false or EnforcementStatus = SHUTDOWN hold it
 *     with a loud log until a read says otherwise.
 * A read that fails changes nothing (the last view stands) and is
 * logged once until one succeeds.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "account.h"
#include "api_get.h"
#include "conf.h"
#include "creds.h"
#include "endpoint.h"
#include "json_scan.h"
#include "log.h"
#include "stats.h"
#include "tls.h"

#define ACCOUNT_PATH	"/v2/email/account"

struct account {
	struct event_base	*base;
	struct evdns_base	*dns;
	SSL_CTX			*ctx;
	struct endpoint		 ep;		/* strings: the conf's */
	struct creds		*creds;		/* not owned */
	struct account_events	 ev;
	int			 timeout;
	struct event		*timer;
	struct event		*watch;		/* 4 times a second: what was sent */
	unsigned long long	 delivered_at_read; /* stats.delivered */
	struct api_get		*get;		/* a read out */
	struct account_view	 v;
	int			 failing;	/* reads failed in a row */
};

int
account_parse(const char *json, size_t len, struct account_view *v)
{
	struct account_view n;

	memset(&n, 0, sizeof(n));
	if (json_scan_number(json, len, "Max24HourSend", &n.max_24h) == -1 ||
	    json_scan_number(json, len, "MaxSendRate", &n.max_rate) == -1 ||
	    json_scan_number(json, len, "SentLast24Hours", &n.sent_24h) == -1 ||
	    json_scan_bool(json, len, "SendingEnabled", &n.sending_enabled) ==
	    -1)
		return -1;
	if (json_scan_string(json, len, "EnforcementStatus", n.enforcement,
	    sizeof(n.enforcement)) == -1)
		snprintf(n.enforcement, sizeof(n.enforcement), "UNKNOWN");
	n.known = 1;
	*v = n;
	return 0;
}

enum account_hold
account_should_hold(const struct account_view *v)
{
	double reserve;

	if (!v->known)
		return ACCOUNT_OK;
	if (strcmp(v->enforcement, "SHUTDOWN") == 0)
		return ACCOUNT_SHUTDOWN;
	if (!v->sending_enabled)
		return ACCOUNT_DISABLED;
	if (v->max_24h < 0)
		return ACCOUNT_OK;		/* unlimited */
	reserve = v->max_24h / 100 > 2 * v->max_rate ? v->max_24h / 100 :
	    2 * v->max_rate;
	if (reserve < 1)
		reserve = 1;
	return v->sent_24h + v->sent_since + reserve > v->max_24h ?
	    ACCOUNT_QUOTA : ACCOUNT_OK;
}

double
account_rate(const struct account_view *v)
{
	double r = v->max_rate * 0.9;

	return r < 0.01 ? 0.01 : r;
}

static const char *const hold_names[] = { "ok", "quota", "disabled",
    "shutdown" };

/* The hold changed: log it (loud for the account's state), tell. */
static void
account_set_hold(struct account *a, enum account_hold h)
{
	enum account_hold was = a->v.hold;

	a->v.hold = h;
	if (h == was)
		return;
	if (h == ACCOUNT_OK)
		log_event(LOG_WARNING, "-", "account.resumed", "pool=%s was=%s "
		    "sent_24h=%.0f max_24h=%.0f", a->ep.name, hold_names[was],
		    a->v.sent_24h, a->v.max_24h);
	else if (h == ACCOUNT_QUOTA)
		log_event(LOG_WARNING, "-", "account.paused", "pool=%s reason="
		    "quota sent_24h=%.0f max_24h=%.0f msg=\"the 24-hour sending "
		    "quota is nearly spent: sending paused before SES refuses; "
		    "mail stays queued, nothing bounces (raise the quota in the "
		    "SES console)\"", a->ep.name, a->v.sent_24h + a->v.sent_since,
		    a->v.max_24h);
	else
		log_event(LOG_ERR, "-", "account.paused", "pool=%s reason=%s "
		    "sending_enabled=%s enforcement=%s msg=\"SES has %s sending "
		    "for this account: sending paused; mail stays queued, nothing "
		    "bounces (see the SES console: account dashboard, "
		    "reputation)\"", a->ep.name, hold_names[h],
		    a->v.sending_enabled ? "true" : "false",
		    log_q(a->v.enforcement), h == ACCOUNT_SHUTDOWN ? "shut down" :
		    "disabled");
	if ((h == ACCOUNT_OK) != (was == ACCOUNT_OK) && a->ev.hold != NULL)
		a->ev.hold(a->ev.arg, h != ACCOUNT_OK);
}

static void account_schedule(struct account *, int seconds);
static void account_watch(evutil_socket_t, short, void *);

/* A read's answer. */
static void
account_answer(void *arg, int status, const char *error_type,
    const char *body, size_t len)
{
	struct account *a = arg;
	struct account_view n;
	int changed;

	a->get = NULL;
	account_schedule(a, (int)a->ep.account_check_interval);
	if (status != 200 || account_parse(body, len, &n) == -1) {
		if (a->failing++ == 0)
			log_event(LOG_WARNING, "-", "account.read_failed",
			    "pool=%s status=%d error=%s msg=\"GetAccount failed: "
			    "the account's limits are not known (check that the "
			    "credentials allow ses:GetAccount)%s\"", a->ep.name,
			    status, log_q(*error_type ? error_type : status ==
			    200 ? "not GetAccount's answer" : "-"),
			    a->ep.rate == 0 && !a->v.known ? "; rate 0: sending "
			    "at 1 recipient/s until it succeeds" : "");
		if (status == 403 && a->creds != NULL)
			creds_refresh(a->creds);
		return;
	}
	n.read_at = time(NULL);
	n.hold = a->v.hold;
	changed = a->failing > 0 || !a->v.known || n.max_rate != a->v.max_rate ||
	    n.max_24h != a->v.max_24h || n.sending_enabled !=
	    a->v.sending_enabled || strcmp(n.enforcement, a->v.enforcement);
	a->v = n;
	a->failing = 0;
	a->delivered_at_read = stats.delivered;
	log_event(changed ? LOG_INFO : LOG_DEBUG, "-", "account.read",
	    "pool=%s max_rate=%.2f "
	    "max_24h=%.0f sent_24h=%.0f sending_enabled=%s enforcement=%s",
	    a->ep.name, n.max_rate, n.max_24h, n.sent_24h,
	    n.sending_enabled ? "true" : "false", log_q(n.enforcement));
	if (a->ep.rate == 0 && a->ev.rate != NULL)
		a->ev.rate(a->ev.arg, account_rate(&a->v));
	account_set_hold(a, account_should_hold(&a->v));
	if (a->v.hold == ACCOUNT_OK && a->ev.room != NULL)
		a->ev.room(a->ev.arg);
}

/* The timer: read now (or wait for credentials). */
static void
account_read(evutil_socket_t fd, short what, void *arg)
{
	struct account *a = arg;
	const struct aws_creds *c = creds_get(a->creds);

	(void)fd;
	(void)what;
	if (c == NULL) {		/* none yet (IMDS): try again soon */
		account_schedule(a, 1);
		return;
	}
	a->get = api_get_start(a->base, a->dns, a->ctx, &a->ep, c,
	    ACCOUNT_PATH, a->timeout, account_answer, a);
	if (a->get == NULL)
		account_schedule(a, (int)a->ep.account_check_interval);
}

static void
account_schedule(struct account *a, int seconds)
{
	struct timeval tv = { seconds, 0 };

	evtimer_add(a->timer, &tv);
}

struct account *
account_new(struct event_base *base, struct evdns_base *dns,
    const struct endpoint *ep, struct creds *cr,
    const struct account_events *ev, int timeout, char *err, size_t errlen)
{
	struct timeval quarter = { 0, 250000 };
	struct account *a;

	if (ep->account_check_interval == 0 || cr == NULL)
		return NULL;
	if ((a = calloc(1, sizeof(*a))) == NULL)
		abort();
	if ((a->ctx = tls_client_ctx_new(ep->ca_file, err, errlen)) == NULL) {
		free(a);
		return NULL;
	}
	a->base = base;
	a->dns = dns;
	a->ep = *ep;
	a->creds = cr;
	a->ev = *ev;
	a->timeout = timeout;
	if ((a->timer = evtimer_new(base, account_read, a)) == NULL ||
	    (a->watch = event_new(base, -1, EV_PERSIST, account_watch, a)) ==
	    NULL)
		abort();
	account_schedule(a, 0);
	event_add(a->watch, &quarter);
	return a;
}

/*
 * 4 times a second: count what was delivered since the last read towards
 * the quota (stats.delivered: recipients SES took), and hold sending
 * as soon as the estimate leaves less than the reserve.  Two seconds
 * at MaxSendRate are within the reserve, so neither what is sent
 * between two looks nor the transactions out overrun the quota.
 */
static void
account_watch(evutil_socket_t fd, short what, void *arg)
{
	struct account *a = arg;

	(void)fd;
	(void)what;
	if (!a->v.known)
		return;
	a->v.sent_since = (double)(stats.delivered - a->delivered_at_read);
	if (a->v.hold == ACCOUNT_OK)
		account_set_hold(a, account_should_hold(&a->v));
}

const struct account_view *
account_view(const struct account *a)
{
	return a != NULL ? &a->v : NULL;
}

void
account_free(struct account *a)
{
	if (a == NULL)
		return;
	api_get_cancel(a->get);
	event_free(a->timer);
	event_free(a->watch);
	SSL_CTX_free(a->ctx);
	free(a);
}
