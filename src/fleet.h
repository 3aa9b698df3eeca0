/*
 * fleet.h: hosts that share one SES account share its rate and its
 * daily quota through a Redis or Valkey store (fleet.store).
 *
 * The client runs on the daemon's event loop (hiredis and its libevent
 * adapter) and never blocks it: one request at a time, each with a
 * deadline.  Tokens come in leases (fleet_lease.h) from a token bucket
 * kept in the store by one Lua script (fleet_store.c); when the store
 * cannot be reached, answers garbage, refuses AUTH or is full, the host
 * falls back to upstream.rate / fleet.hosts on its own, logs it once,
 * reconnects with backoff and rejoins.  Nothing here ever holds mail:
 * losing the store costs speed, never a message.
 */
#ifndef SESRELAY_FLEET_H
#define SESRELAY_FLEET_H

#include <stddef.h>

struct event_base;
struct evdns_base;
struct fleet;

/* Where the store is (fleet.store). */
enum fleet_store_kind {
	FLEET_STORE_NONE,	/* "": this host alone */
	FLEET_STORE_TCP,	/* redis://HOST[:PORT][/DB] */
	FLEET_STORE_TLS,	/* rediss://HOST[:PORT][/DB] */
	FLEET_STORE_UNIX,	/* unix:/path */
};

struct fleet_store {
	enum fleet_store_kind kind;
	char		 host[256];	/* TCP, TLS */
	int		 port;
	int		 db;
	char		 path[108];	/* UNIX */
};

/* Parse fleet.store; 0, or -1 with err (a reason, never a secret). */
int fleet_store_parse(const char *s, struct fleet_store *out, char *err,
    size_t errlen);
/* Can this build speak to such a store?  0, or -1 with err saying why. */
int fleet_store_supported(const struct fleet_store *, char *err,
    size_t errlen);
/* The Lua script (its contract is in fleet_store.c). */
const char *fleet_store_script(void);

struct fleet_config {
	const char	*store;		/* fleet.store; "": off */
	const char	*name;		/* fleet.name, resolved (not "") */
	int		 hosts;		/* fleet.hosts */
	double		 rate;		/* upstream.rate: the account's */
	const char	*username;	/* NULL: none (Redis ACL user) */
	const char	*password;	/* NULL: no AUTH */
	const char	*host;		/* this host's name, for heartbeats */
	int		 probe_interval; /* upstream.quota_probe_interval */
};

/*
 * A fleet client (it connects at once), or one that is off when
 * c->store is "".  kick(arg) is called when sending may go on (tokens,
 * the quota, the mode changed).  Strings are copied.
 */
struct fleet *fleet_new(struct event_base *, struct evdns_base *,
    const struct fleet_config *c, void (*kick)(void *), void *arg);
void fleet_free(struct fleet *);
/* Is fleet.store set?  (Otherwise the pool keeps its own bucket.) */
int fleet_is_on(const struct fleet *);

/*
 * The token bucket (ratelimit.h's contract): reserve n tokens; returns
 * the seconds to wait before asking fleet_wait(ticket) again (0: go).
 */
double fleet_reserve(struct fleet *, double n, double *ticket);
double fleet_wait(struct fleet *, double ticket);

/* SES took n recipients (the fleet's 24-hour count). */
void fleet_sent(struct fleet *, double n);
/* What SES said, for the whole fleet. */
void fleet_throttled(struct fleet *);		/* 454 rate exceeded */
void fleet_quota_exceeded(struct fleet *);	/* 454 daily quota */
void fleet_quota_ok(struct fleet *);		/* the probe went through */

enum fleet_quota {
	FLEET_QUOTA_LOCAL,	/* not shared now: the pool decides alone */
	FLEET_QUOTA_OK,
	FLEET_QUOTA_PAUSED,	/* the fleet is paused */
	FLEET_QUOTA_PROBE,	/* paused, and this host holds the probe */
};
enum fleet_quota fleet_quota(const struct fleet *);
/* While the fleet is paused: this host has mail for the probe. */
void fleet_want_probe(struct fleet *);
/* Take the fleet's probe (FLEET_QUOTA_PROBE): 1 once, then 0. */
int fleet_take_probe(struct fleet *);

/* For stats and metrics. */
struct fleet_status {
	const char	*state;		/* "off", "connecting", "shared",
					 * "fallback" */
	const char	*name;
	int		 shared;
	double		 rate;		/* the fleet's rate now (shared), or
					 * this host's own (fallback) */
	long long	 count24h;	/* recipients, last 24 hours (-1:
					 * not known) */
	int		 hosts;		/* hosts seen in the last 10 s */
	int		 paused;	/* the fleet's daily quota pause */
	unsigned long long leased;	/* tokens granted to this host */
	unsigned long long requests;	/* round trips to the store */
};
void fleet_get_status(const struct fleet *, struct fleet_status *);

#endif
