/*
 * creds.h: where AWS credentials come from: the credentials file (an
 * IAM key), the environment (AWS_ACCESS_KEY_ID, ...) or the instance
 * role (IMDSv2), one provider per endpoint.  Never blocks: the instance
 * role fetches in the background on the event loop.
 */
#ifndef SESRELAY_CREDS_H
#define SESRELAY_CREDS_H

#include <stddef.h>
#include <time.h>

struct conf;
struct endpoint;
struct event_base;
struct evdns_base;

struct aws_creds {
	char	*access_key_id;
	char	*secret_access_key;
	char	*session_token;		/* NULL: long-lived key */
	time_t	 expiration;		/* 0: never */
};

struct creds;				/* one provider per endpoint */

/*
 * Build the provider an endpoint's <name>.auth names (never blocks; the
 * instance role fetches in the background on base).  NULL with err
 * "FILE:LINE: KEY: why" (also when the file holds SMTP credentials
 * only, or the environment has no key).
 */
struct creds *creds_new(struct event_base *, struct evdns_base *,
    const struct conf *, const struct endpoint *, char *err, size_t errlen);
/* A provider of one long-lived key already read (the credentials file
 * read before privileges were dropped); the strings are copied. */
struct creds *creds_new_key(const char *access_key_id,
    const char *secret_access_key, const char *session_token);
/* The current credentials, or NULL while none are known (IMDS not
 * answered yet). */
const struct aws_creds *creds_get(struct creds *);
/* SES said the token expired or is invalid: fetch anew now (no-op for
 * file/env). */
void creds_refresh(struct creds *);
/* Called (from the loop) each time credentials become available or
 * change. */
void creds_on_change(struct creds *, void (*cb)(void *arg), void *arg);
void creds_free(struct creds *);

/*
 * The environment's key: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and
 * AWS_SESSION_TOKEN (optional).  0, or -1 with err naming what is
 * missing.  out is filled with copies (aws_creds_clear frees them).
 */
int creds_from_env(struct aws_creds *out, char *err, size_t errlen);
/* Copy src into dst (strings duplicated). */
void aws_creds_copy(struct aws_creds *dst, const struct aws_creds *src);
/* Wipe and free the strings; safe on a zeroed struct. */
void aws_creds_clear(struct aws_creds *);

#endif
