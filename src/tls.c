/*
 * tls.c: the TLS client policy, in one place.
 *
 * Every connection to SES, the daemon's and `sesrelayctl check`'s, is
 * made by these two functions, so they cannot drift apart: TLS 1.2 or
 * later, the certificate chain verified (upstream.ca_file or the system
 * store) and the host name (or IP literal) verified against it.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "tls.h"

/* OpenSSL's reason for its last error, or words when it has none. */
static const char *
ssl_why(void)
{
	const char *why = ERR_reason_error_string(ERR_get_error());

	return why != NULL ? why : "unknown error";
}

/* Why ca_file could not be loaded, in words (OpenSSL may have none). */
static const char *
ca_file_error(const char *ca_file)
{
	const char *why;

	if (access(ca_file, R_OK) == -1)
		return strerror(errno);
	why = ERR_reason_error_string(ERR_peek_last_error());
	return why != NULL ? why : "no PEM certificate in it";
}

SSL_CTX *
tls_client_ctx_new(const char *ca_file, char *err, size_t errlen)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	int ok;

	if (ctx == NULL) {
		snprintf(err, errlen, "cannot create a TLS context: %s",
		    ssl_why());
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	ERR_clear_error();
	if (ca_file != NULL && *ca_file != '\0') {
		if ((ok = SSL_CTX_load_verify_locations(ctx, ca_file,
		    NULL)) != 1)
			snprintf(err, errlen, "%s: cannot load CA "
			    "certificates: %s", ca_file,
			    ca_file_error(ca_file));
	} else if ((ok = SSL_CTX_set_default_verify_paths(ctx)) != 1)
		snprintf(err, errlen, "cannot load the system's CA "
		    "certificates: %s", ssl_why());
	ERR_clear_error();
	if (ok != 1) {
		SSL_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

SSL *
tls_client_new(SSL_CTX *ctx, const char *host)
{
	unsigned char ip[16];
	SSL *ssl = SSL_new(ctx);

	if (ssl == NULL)
		return NULL;
	/* A name that could not be set would be a name not verified. */
	if (inet_pton(AF_INET, host, ip) == 1 ||
	    inet_pton(AF_INET6, host, ip) == 1) {
		if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl),
		    host) != 1)
			goto fail;
	} else if (SSL_set_tlsext_host_name(ssl, host) != 1 ||
	    SSL_set1_host(ssl, host) != 1)
		goto fail;
	return ssl;
fail:
	SSL_free(ssl);
	return NULL;
}
