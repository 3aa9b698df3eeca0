/*
 * creds_imds.h: the instance role's credentials from the EC2 instance
 * metadata service, IMDSv2 only, fetched with evhttp on the event loop.
 * Part of creds.c's provider; nothing else uses it.
 */
#ifndef SESRELAY_CREDS_IMDS_H
#define SESRELAY_CREDS_IMDS_H

#include <stddef.h>
#include <time.h>

struct aws_creds;
struct event_base;
struct evdns_base;
struct creds_imds;

/*
 * Start fetching from url ("http://169.254.169.254"): got(arg, creds)
 * runs from the loop each time a key arrives, first as soon as IMDS
 * answers, then before each expires.  NULL with err on a bad URL.
 */
struct creds_imds *creds_imds_new(struct event_base *, struct evdns_base *,
    const char *url, void (*got)(void *, const struct aws_creds *),
    void *arg, char *err, size_t errlen);
/* Fetch anew now (SES refused the token); at most once a second. */
void creds_imds_refresh(struct creds_imds *);
void creds_imds_free(struct creds_imds *);

/*
 * Pure, for the tests.  Seconds from now until a key that expires at
 * expiration is fetched anew: 15 minutes before it expires, or half its
 * remaining life when that is shorter; at least 1.
 */
long creds_imds_refresh_delay(time_t now, time_t expiration);
/* Seconds before the next try after n failures in a row: 1, 2, 4 ... 30. */
int creds_imds_backoff(int failures);
/* IMDS's answer for a role, parsed into out (copies); 0, or -1 with
 * why in err (never a secret). */
int creds_imds_parse(const char *json, size_t len, struct aws_creds *out,
    char *err, size_t errlen);

#endif
