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
	const char	*transport;	/* "smtp" | "api" (effective) */
	const char	*auth;		/* "file" | "instance-role" | "environment" */
	char		 api_url[320];	/* "https://email.REGION.amazonaws.com" */
	char		 api_host[300];	/* its host name, to connect and verify */
	int		 api_port;	/* its port, 443 by default */
	char		 api_authority[310]; /* the Host header: host[:port] */
	const char	*imds_url;	/* "http://169.254.169.254" */
	double		 rate;		/* recipients/s; 0: MaxSendRate * 0.9 */
	long long	 account_check_interval; /* s; 0: never */
};

/*
 * The secrets an endpoint authenticates with; never logged.  The file
 * holds one of two forms: SMTP credentials (username, password), or an
 * IAM key (access_key_id, secret_access_key, session_token optional).
 * For SMTP with an IAM key, endpoint_load_credentials fills username
 * and password too (the key id, and the password derived for the
 * region).
 */
struct endpoint_credentials {
	char	*username;
	char	*password;
	char	*access_key_id;		/* NULL: the file holds SMTP credentials */
	char	*secret_access_key;
	char	*session_token;		/* NULL: none */
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
 * Load what the endpoint authenticates with, and refuse combinations
 * that cannot work: auth "file" reads its credentials file
 * (endpoint_credentials_read), "environment" the AWS_* variables,
 * "instance-role" nothing (it has no secret before the loop runs).
 * Over SMTP an IAM key without a session token gives the derived SMTP
 * password; a session token is refused (SES's SMTP interface does not
 * take passwords derived from temporary credentials), as are SMTP
 * credentials for transport "api" or rate 0 (GetAccount needs a key).
 * 0, or -1 with err "FILE:LINE: <key>: why".
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
/* Wipe (explicit_bzero) and free one secret; *p becomes NULL. */
void endpoint_secret_free(char **p);
/* strdup that aborts when out of memory; NULL stays NULL. */
char *endpoint_strdup_or_null(const char *s);
/* Does it hold an IAM key (API credentials)? */
int endpoint_credentials_is_key(const struct endpoint_credentials *);
/* Does the endpoint have API credentials (an IAM key, the environment or
 * the instance role), for GetAccount and the API transport? */
int endpoint_has_api_credentials(const struct endpoint *,
    const struct endpoint_credentials *);

#endif
