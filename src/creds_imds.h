/*
 * creds_imds.h: the instance role's credentials from the EC2 instance
 * metadata service, IMDSv2 only, fetched with evhttp on the event loop.
 * Part of creds.c's provider; nothing else uses it.
 */
#ifndef SESRELAY_CREDS_IMDS_H
#define SESRELAY_CREDS_IMDS_H

#include <stddef.h>

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
/* Fetch anew now (SES refused the token). */
void creds_imds_refresh(struct creds_imds *);
void creds_imds_free(struct creds_imds *);

#endif
