/*
 * api_get.h: one signed GET to the SES v2 API over HTTPS (evhttp over
 * bufferevent_openssl, the certificate and host verified by tls.c's
 * policy), for the account's limits (GetAccount) and identities
 * (GetEmailIdentity).  A new connection each time: these are read once
 * a minute at most.
 */
#ifndef SESRELAY_API_GET_H
#define SESRELAY_API_GET_H

#include <stddef.h>
#include <time.h>

#include <openssl/ssl.h>

struct aws_creds;
struct endpoint;
struct event_base;
struct evdns_base;
struct api_get;

/*
 * The answer: status (0: no answer: connection, TLS or timeout, why in
 * error_type), the error's type (x-amzn-ErrorType without its ':...', ""
 * when none) and the body (NUL-terminated; at most 64 KiB kept).
 */
typedef void (*api_get_cb)(void *arg, int status, const char *error_type,
    const char *body, size_t len);

/* Start GET path (URI-encoded) on ep's API; cb runs from the loop, once
 * (never from inside this call).  NULL when it cannot start. */
struct api_get *api_get_start(struct event_base *, struct evdns_base *,
    SSL_CTX *, const struct endpoint *, const struct aws_creds *,
    const char *path, int timeout, api_get_cb, void *arg);
/* Drop a request out; its cb never runs. */
void api_get_cancel(struct api_get *);

/* The URI encoding of a path segment (an identity: '@' -> %40). */
void api_get_escape(const char *s, char *out, size_t outlen);

/*
 * Blocking, for sesrelayctl: run a loop of its own until the answer;
 * the same results as the callback, body copied into body (bodylen).
 */
int api_get_sync(SSL_CTX *, const struct endpoint *, const struct aws_creds *,
    const char *path, int timeout, char *error_type, size_t etlen,
    char *body, size_t bodylen);

#endif
