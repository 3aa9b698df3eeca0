/*
 * sigv4.h: AWS Signature Version 4 (header-based), written once with
 * OpenSSL, for the SES v2 API (service "ses"); ses_password.c derives
 * the SMTP password from the same signing key.
 */
#ifndef SESRELAY_SIGV4_H
#define SESRELAY_SIGV4_H

#include <stddef.h>
#include <time.h>

struct aws_creds;

#define SIGV4_HEX_LEN	64		/* a SHA-256 in lowercase hex */
#define SIGV4_AUTH_LEN	512		/* enough for any Authorization */

struct sigv4_request {
	const char	*method;	/* "POST" */
	const char	*host;		/* "email.eu-west-1.amazonaws.com" (the Host header) */
	const char	*path;		/* already URI-encoded: "/v2/email/outbound-emails" */
	const char	*query;		/* canonical query string, "" when none */
	const char	*content_type;	/* signed when not NULL */
	const char	*payload_sha256; /* 64 lowercase hex: the body's SHA-256 */
	const char	*region;
	const char	*service;	/* "ses" */
	time_t		 now;
};

/*
 * Sign r with c: fills authorization (the Authorization header's value)
 * and amz_date ("YYYYMMDDTHHMMSSZ", the X-Amz-Date header).  The signed
 * headers, which the request must carry exactly as given here, are
 * sigv4_signed_headers(): Content-Type (when r->content_type), Host,
 * X-Amz-Content-Sha256 (r->payload_sha256), X-Amz-Date and, with a
 * session token, X-Amz-Security-Token (c->session_token).  The path is
 * URI-encoded once more for the canonical request, as SigV4 asks of
 * every service but S3.  0, or -1 (a value too long, OpenSSL failing).
 */
int sigv4_sign(const struct sigv4_request *r, const struct aws_creds *c,
    char *authorization, size_t len, char amz_date[17]);

/* "content-type;host;x-amz-content-sha256;x-amz-date[;x-amz-security-token]" */
const char *sigv4_signed_headers(const struct sigv4_request *,
    const struct aws_creds *);

/*
 * The signing key: HMAC-SHA256 chained from "AWS4" + secret over date
 * ("YYYYMMDD"), region, service and "aws4_request".  0, or -1.
 */
int sigv4_signing_key(const char *secret, const char *date,
    const char *region, const char *service, unsigned char key[32]);
/* HMAC-SHA256 of the string msg; 0, or -1. */
int sigv4_hmac(const unsigned char *key, size_t keylen, const char *msg,
    unsigned char out[32]);

/* Lowercase hex of n bytes into out (2n + 1 bytes). */
void sigv4_hex(const unsigned char *md, size_t n, char *out);
/* SHA-256 of len bytes, in hex; 0, or -1. */
int sigv4_sha256_hex(const void *data, size_t len,
    char out[SIGV4_HEX_LEN + 1]);

/* A SHA-256 computed by pieces (a body streamed from the spool). */
struct sigv4_sha256;
struct sigv4_sha256 *sigv4_sha256_new(void);
int sigv4_sha256_update(struct sigv4_sha256 *, const void *, size_t);
/* The hex digest; frees h (also on failure).  0, or -1. */
int sigv4_sha256_final(struct sigv4_sha256 *h, char out[SIGV4_HEX_LEN + 1]);
void sigv4_sha256_free(struct sigv4_sha256 *);

#endif
