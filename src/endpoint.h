/*
 * endpoint.h: one SES endpoint as the configuration describes it.
 *
 * The primary (upstream.*) and the fallback (fallback.*) are two values
 * of this one type, built by one function, so everything said about an
 * endpoint (its CA file, its credentials, its host) names the keys of
 * its own section.  The endpoint also reads its credentials file.
 */
#ifndef SESRELAY_ENDPOINT_H
#define SESRELAY_ENDPOINT_H

#include <stddef.h>

struct conf;

enum endpoint_role {
	ENDPOINT_PRIMARY,	/* upstream.* */
	ENDPOINT_FALLBACK,	/* fallback.* */
};

struct endpoint {
	const char	*name;		/* its section: "upstream", "fallback" */
	char		 host[300];	/* host, or derived from the region */
	int		 port;
	int		 wrapper;	/* 1: TLS Wrapper, 0: STARTTLS */
	const char	*region;	/* "" when only a host is set */
	const char	*ca_file;	/* "": the system's trust store */
	const char	*credentials;	/* the credentials file */
	const char	*credentials_key; /* the key that named it */
};

/* The secrets an endpoint authenticates with; never logged. */
struct endpoint_credentials {
	char	*username;
	char	*password;
};

/*
 * Build the endpoint of a role from the configuration (the strings point
 * into c).  0, or -1 when the configuration has no such endpoint (no
 * fallback.region nor fallback.host).
 */
int endpoint_from_conf(const struct conf *c, enum endpoint_role,
    struct endpoint *out);

/* Does its CA file (or the system store) load?  0, or -1 with err
 * "FILE:LINE: <name>.ca_file: why". */
int endpoint_check_ca(const struct conf *c, const struct endpoint *,
    char *err, size_t errlen);

/*
 * Read its credentials file (endpoint_credentials_read); 0, or -1 with
 * err "FILE:LINE: <credentials_key>: why".
 */
int endpoint_load_credentials(const struct conf *c, const struct endpoint *,
    struct endpoint_credentials *out, char *err, size_t errlen);

/*
 * Read a credentials file: refused when group- or world-writable or
 * world-readable.  If $CREDENTIALS_DIRECTORY holds a file of the same
 * base name (systemd LoadCredential=), that file is read instead.
 * Returns 0, or -1 with err "FILE: why" (never a secret in it).
 */
int endpoint_credentials_read(const char *file,
    struct endpoint_credentials *out, char *err, size_t errlen);
/* The same rules for the fleet store's file (fleet.credentials):
 * password required, username optional (NULL when left out). */
int endpoint_credentials_read_store(const char *file,
    struct endpoint_credentials *out, char *err, size_t errlen);
/* Wipe and free; safe on a zeroed struct. */
void endpoint_credentials_clear(struct endpoint_credentials *);

#endif
