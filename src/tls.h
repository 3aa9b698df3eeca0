/*
 * tls.h: the one TLS client policy, used by the upstream pool and by
 * `sesrelayctl check` alike.
 */
#ifndef SESRELAY_TLS_H
#define SESRELAY_TLS_H

#include <stddef.h>

#include <openssl/ssl.h>

/*
 * A client context: TLS 1.2 or later, the peer's certificate verified
 * against ca_file (PEM), or the system's trust store when ca_file is
 * NULL or "".  NULL with err set ("CA_FILE: why") when it cannot be
 * built.
 */
SSL_CTX	*tls_client_ctx_new(const char *ca_file, char *err, size_t errlen);

/*
 * A connection of ctx that verifies host: a DNS name (also sent as SNI)
 * or an IP literal, matched against the certificate's IP addresses.
 * Never the address connected to: the name we were told to use.  NULL
 * when host cannot be set to be verified (out of memory): never a
 * connection that would take any certificate.
 */
SSL	*tls_client_new(SSL_CTX *ctx, const char *host);

#endif
