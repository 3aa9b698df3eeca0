/*
 * sigv4.c: AWS Signature Version 4, header-based (the AWS General
 * Reference, "Create a signed AWS API request").
 *
 * Canonical request:  METHOD \n URI \n QUERY \n HEADERS \n SIGNED \n HASH
 *   URI: the (already encoded) path encoded once more, '/' kept;
 *   HEADERS: "name:value\n" per signed header, names lowercase, sorted.
 * String to sign:     "AWS4-HMAC-SHA256" \n DATE \n SCOPE \n hex(SHA-256(CR))
 *   SCOPE: YYYYMMDD/region/service/aws4_request
 * Signature:          hex(HMAC(signing key, string to sign))
 *
 * No secret is ever written anywhere but the signing key on the stack,
 * which is wiped.
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "creds.h"
#include "sigv4.h"

struct sigv4_sha256 {
	EVP_MD_CTX	*ctx;
};

void
sigv4_hex(const unsigned char *md, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[md[i] >> 4];
		out[2 * i + 1] = digits[md[i] & 15];
	}
	out[2 * n] = '\0';
}

int
sigv4_sha256_hex(const void *data, size_t len, char out[SIGV4_HEX_LEN + 1])
{
	unsigned char md[32];
	unsigned int mdlen = sizeof(md);

	if (EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL) != 1)
		return -1;
	sigv4_hex(md, 32, out);
	return 0;
}

struct sigv4_sha256 *
sigv4_sha256_new(void)
{
	struct sigv4_sha256 *h = calloc(1, sizeof(*h));

	if (h == NULL || (h->ctx = EVP_MD_CTX_new()) == NULL)
		abort();
	if (EVP_DigestInit_ex(h->ctx, EVP_sha256(), NULL) != 1) {
		sigv4_sha256_free(h);
		return NULL;
	}
	return h;
}

int
sigv4_sha256_update(struct sigv4_sha256 *h, const void *p, size_t n)
{
	return EVP_DigestUpdate(h->ctx, p, n) == 1 ? 0 : -1;
}

int
sigv4_sha256_final(struct sigv4_sha256 *h, char out[SIGV4_HEX_LEN + 1])
{
	unsigned char md[32];
	unsigned int mdlen = sizeof(md);
	int rc = EVP_DigestFinal_ex(h->ctx, md, &mdlen) == 1 ? 0 : -1;

	if (rc == 0)
		sigv4_hex(md, 32, out);
	sigv4_sha256_free(h);
	return rc;
}

void
sigv4_sha256_free(struct sigv4_sha256 *h)
{
	if (h == NULL)
		return;
	EVP_MD_CTX_free(h->ctx);
	free(h);
}

int
sigv4_hmac(const unsigned char *key, size_t keylen, const char *msg,
    unsigned char out[32])
{
	unsigned int len = 32;

	return HMAC(EVP_sha256(), key, (int)keylen, (const unsigned char *)msg,
	    strlen(msg), out, &len) == NULL ? -1 : 0;
}

int
sigv4_signing_key(const char *secret, const char *date, const char *region,
    const char *service, unsigned char key[32])
{
	unsigned char first[4 + 256];
	size_t slen = strlen(secret);
	int rc;

	if (slen > 256)
		return -1;
	memcpy(first, "AWS4", 4);
	memcpy(first + 4, secret, slen);
	rc = sigv4_hmac(first, 4 + slen, date, key) == -1 ||
	    sigv4_hmac(key, 32, region, key) == -1 ||
	    sigv4_hmac(key, 32, service, key) == -1 ||
	    sigv4_hmac(key, 32, "aws4_request", key) == -1 ? -1 : 0;
	OPENSSL_cleanse(first, sizeof(first));
	return rc;
}

const char *
sigv4_signed_headers(const struct sigv4_request *r, const struct aws_creds *c)
{
	static const char *const forms[2][2] = {
		{ "host;x-amz-content-sha256;x-amz-date",
		  "host;x-amz-content-sha256;x-amz-date;x-amz-security-token" },
		{ "content-type;host;x-amz-content-sha256;x-amz-date",
		  "content-type;host;x-amz-content-sha256;x-amz-date;"
		  "x-amz-security-token" },
	};

	return forms[r->content_type != NULL][c->session_token != NULL];
}

/* Append the URI encoding of path (unreserved and '/' kept) to out. */
static int
uri_encode(const char *path, char *out, size_t len)
{
	size_t n = strlen(out);

	for (const unsigned char *p = (const unsigned char *)path; *p; p++) {
		int keep = (*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z')
		    || (*p >= '0' && *p <= '9') || strchr("-._~/", *p) != NULL;

		if (n + 4 > len)
			return -1;
		n += keep ? (size_t)snprintf(out + n, len - n, "%c", *p) :
		    (size_t)snprintf(out + n, len - n, "%%%02X", *p);
	}
	return 0;
}

/* printf onto the end of buf; -1 when it does not fit. */
static int
append(char *buf, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
append(char *buf, size_t len, const char *fmt, ...)
{
	size_t n = strlen(buf);
	va_list ap;
	int w;

	va_start(ap, fmt);
	w = vsnprintf(buf + n, len - n, fmt, ap);
	va_end(ap);
	return w < 0 || (size_t)w >= len - n ? -1 : 0;
}

/* The canonical request's hash, hex, into out. */
static int
canonical_hash(const struct sigv4_request *r, const struct aws_creds *c,
    const char *amz_date, char out[SIGV4_HEX_LEN + 1])
{
	char cr[8192];
	int rc;

	snprintf(cr, sizeof(cr), "%s\n", r->method);
	rc = uri_encode(r->path, cr, sizeof(cr)) == -1 ||
	    append(cr, sizeof(cr), "\n%s\n", r->query) == -1 ||
	    (r->content_type != NULL && append(cr, sizeof(cr),
	    "content-type:%s\n", r->content_type) == -1) ||
	    append(cr, sizeof(cr), "host:%s\nx-amz-content-sha256:%s\n"
	    "x-amz-date:%s\n", r->host, r->payload_sha256, amz_date) == -1 ||
	    (c->session_token != NULL && append(cr, sizeof(cr),
	    "x-amz-security-token:%s\n", c->session_token) == -1) ||
	    append(cr, sizeof(cr), "\n%s\n%s", sigv4_signed_headers(r, c),
	    r->payload_sha256) == -1 ? -1 : 0;
	if (rc == 0)
		rc = sigv4_sha256_hex(cr, strlen(cr), out);
	OPENSSL_cleanse(cr, sizeof(cr));	/* it holds the token */
	return rc;
}

int
sigv4_sign(const struct sigv4_request *r, const struct aws_creds *c,
    char *authorization, size_t len, char amz_date[17])
{
	char hash[SIGV4_HEX_LEN + 1], scope[256], sts[512], sig[65];
	unsigned char key[32], mac[32];
	struct tm tm;
	int rc;

	if (gmtime_r(&r->now, &tm) == NULL ||
	    strftime(amz_date, 17, "%Y%m%dT%H%M%SZ", &tm) != 16)
		return -1;
	snprintf(scope, sizeof(scope), "%.8s/%s/%s/aws4_request", amz_date,
	    r->region, r->service);
	if (canonical_hash(r, c, amz_date, hash) == -1)
		return -1;
	snprintf(sts, sizeof(sts), "AWS4-HMAC-SHA256\n%s\n%s\n%s", amz_date,
	    scope, hash);
	snprintf(hash, 9, "%.8s", amz_date);
	rc = sigv4_signing_key(c->secret_access_key, hash, r->region,
	    r->service, key) == -1 || sigv4_hmac(key, 32, sts, mac) == -1 ?
	    -1 : 0;
	OPENSSL_cleanse(key, sizeof(key));
	if (rc == -1)
		return -1;
	sigv4_hex(mac, 32, sig);
	rc = snprintf(authorization, len, "AWS4-HMAC-SHA256 Credential=%s/%s, "
	    "SignedHeaders=%s, Signature=%s", c->access_key_id, scope,
	    sigv4_signed_headers(r, c), sig);
	return rc < 0 || (size_t)rc >= len ? -1 : 0;
}
