/*
 * endpoint.c: the SES endpoints of a configuration, and their
 * credentials.
 *
 * One table row per role says where its keys live in struct conf; one
 * function builds either role from it.  The fallback's credentials file
 * defaults to the primary's (fallback.credentials empty).
 *
 * A credentials file is checked before it is read: a regular file, not
 * a symbolic link, that neither group nor others can write, nor others
 * read (0600 or 0640).  Its values are never logged or echoed in errors.
 */
#include "config.h"

#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/http.h>
#include <libconfig.h>
#include <openssl/crypto.h>
#include <openssl/ssl.h>

#include "conf.h"
#include "creds.h"
#include "endpoint.h"
#include "ses_password.h"
#include "tls.h"

#define OFF(f)	offsetof(struct conf, f)

/* Where a role's keys live in struct conf. */
static const struct endpoint_keys {
	const char	*name;
	size_t		 region, host, port, tls, ca_file, credentials;
	size_t		 transport, auth, api, imds, rate, check;
} roles[] = {
	[ENDPOINT_PRIMARY] = { "upstream", OFF(upstream.region),
	    OFF(upstream.host), OFF(upstream.port), OFF(upstream.tls),
	    OFF(upstream.ca_file), OFF(upstream.credentials),
	    OFF(upstream.transport), OFF(upstream.auth),
	    OFF(upstream.api_endpoint), OFF(upstream.imds_endpoint),
	    OFF(upstream.rate), OFF(upstream.account_check_interval) },
	[ENDPOINT_FALLBACK] = { "fallback", OFF(fallback.region),
	    OFF(fallback.host), OFF(fallback.port), OFF(fallback.tls),
	    OFF(fallback.ca_file), OFF(fallback.credentials),
	    OFF(fallback.transport), OFF(fallback.auth),
	    OFF(fallback.api_endpoint), OFF(fallback.imds_endpoint),
	    OFF(fallback.rate), OFF(fallback.account_check_interval) },
};

static const char *
str_at(const struct conf *c, size_t off)
{
	return *(char *const *)((const char *)c + off);
}

/* The conf offset a row holds at member m (offsetof endpoint_keys). */
static size_t
key_off(const struct endpoint_keys *k, size_t m)
{
	return *(const size_t *)((const char *)k + m);
}

/* A string key of the role (m: its member of endpoint_keys); "" falls
 * back to the primary's. */
static const char *
str_or_primary(const struct conf *c, const struct endpoint_keys *k, size_t m)
{
	const char *v = str_at(c, key_off(k, m));

	if (*v == '\0')
		v = str_at(c, key_off(&roles[ENDPOINT_PRIMARY], m));
	return v;
}

/* The API's URL, host, port and Host header (conf.c checked the URL). */
static void
endpoint_api(struct endpoint *out, const char *url)
{
	struct evhttp_uri *u;

	if (*url != '\0')
		snprintf(out->api_url, sizeof(out->api_url), "%s", url);
	else
		snprintf(out->api_url, sizeof(out->api_url),
		    "https://email.%s.amazonaws.com", out->region);
	out->api_port = 443;
	if ((u = evhttp_uri_parse(out->api_url)) == NULL)
		return;
	snprintf(out->api_host, sizeof(out->api_host), "%s",
	    evhttp_uri_get_host(u) ? evhttp_uri_get_host(u) : "");
	if (evhttp_uri_get_port(u) > 0)
		out->api_port = evhttp_uri_get_port(u);
	evhttp_uri_free(u);
	snprintf(out->api_authority, sizeof(out->api_authority),
	    out->api_port == 443 ? "%s" : "%s:%d", out->api_host, out->api_port);
}

/* The AWS keys of the role: transport, auth, API, IMDS, rate. */
static void
endpoint_aws(const struct conf *c, const struct endpoint_keys *k,
    struct endpoint *out)
{
	double rate = *(const double *)((const char *)c + k->rate);

	out->transport = str_or_primary(c, k,
	    offsetof(struct endpoint_keys, transport));
	out->auth = str_or_primary(c, k, offsetof(struct endpoint_keys, auth));
	out->imds_url = str_or_primary(c, k,
	    offsetof(struct endpoint_keys, imds));
	endpoint_api(out, str_at(c, k->api));
	out->rate = rate < 0 ? c->upstream.rate : rate;
	out->account_check_interval = *(const long long *)((const char *)c +
	    k->check);
}

/* "wrapper", "starttls", or "" (follow the port: 465 and 2465 wrap). */
static int
tls_is_wrapper(const char *tls, long long port)
{
	if (strcmp(tls, "wrapper") == 0)
		return 1;
	if (strcmp(tls, "starttls") == 0)
		return 0;
	return port == 465 || port == 2465;
}

int
endpoint_from_conf(const struct conf *c, enum endpoint_role role,
    struct endpoint *out)
{
	const struct endpoint_keys *k = &roles[role];
	const char *host = str_at(c, k->host);
	long long port = *(const long long *)((const char *)c + k->port);

	memset(out, 0, sizeof(*out));
	out->name = k->name;
	out->region = str_at(c, k->region);
	if (*host == '\0' && *out->region == '\0' && role == ENDPOINT_FALLBACK)
		return -1;
	if (*host != '\0')
		snprintf(out->host, sizeof(out->host), "%s", host);
	else
		snprintf(out->host, sizeof(out->host),
		    "email-smtp.%s.amazonaws.com", out->region);
	out->port = (int)port;
	out->wrapper = tls_is_wrapper(str_at(c, k->tls), port);
	out->ca_file = str_at(c, k->ca_file);
	if (*str_at(c, k->credentials) == '\0')
		k = &roles[ENDPOINT_PRIMARY];	/* the fallback's default */
	out->credentials = str_at(c, k->credentials);
	out->credentials_key = k == &roles[ENDPOINT_PRIMARY] ?
	    "upstream.credentials" : "fallback.credentials";
	endpoint_aws(c, &roles[role], out);
	return 0;
}

int
endpoint_check_ca(const struct conf *c, const struct endpoint *ep,
    char *err, size_t errlen)
{
	char e[CONF_ERRLEN - 64], key[32];
	SSL_CTX *ctx = tls_client_ctx_new(ep->ca_file, e, sizeof(e));

	if (ctx == NULL) {
		snprintf(key, sizeof(key), "%s.ca_file", ep->name);
		conf_key_error(c, key, err, errlen, "%s", e);
		return -1;
	}
	SSL_CTX_free(ctx);
	return 0;
}

/* The environment's key into out; 0, or -1 with err on <name>.auth. */
static int
load_env(const struct conf *c, const struct endpoint *ep,
    struct endpoint_credentials *out, char *err, size_t errlen)
{
	char e[CONF_ERRLEN - 64], key[32];
	struct aws_creds a;

	if (creds_from_env(&a, e, sizeof(e)) == -1) {
		snprintf(key, sizeof(key), "%s.auth", ep->name);
		conf_key_error(c, key, err, errlen, "%s", e);
		return -1;
	}
	out->access_key_id = endpoint_strdup_or_null(a.access_key_id);
	out->secret_access_key = endpoint_strdup_or_null(a.secret_access_key);
	out->session_token = endpoint_strdup_or_null(a.session_token);
	aws_creds_clear(&a);
	return 0;
}

/* Over SMTP, an IAM key gives the region's SMTP password; 0, or -1. */
static int
derive_smtp(const struct conf *c, const struct endpoint *ep,
    struct endpoint_credentials *cr, char *err, size_t errlen)
{
	char key[32], pw[SES_PASSWORD_LEN + 1];
	int file = strcmp(ep->auth, "file") == 0;

	if (cr->session_token != NULL) {
		snprintf(key, sizeof(key), "%s.auth", ep->name);
		conf_key_error(c, file ? ep->credentials_key : key, err, errlen,
		    "%s holds a session token (temporary credentials): SES's "
		    "SMTP interface refuses passwords derived from them; set "
		    "%s.transport = \"api\", or use an IAM user's key", file ?
		    ep->credentials : "the environment", ep->name);
		return -1;
	}
	snprintf(key, sizeof(key), "%s.region", ep->name);
	if (ses_password_v4(cr->secret_access_key, ep->region, pw) == -1) {
		conf_key_error(c, key, err, errlen, "an IAM key's SMTP password "
		    "is derived for one region: set it (or a secret key too long)");
		return -1;
	}
	cr->username = endpoint_strdup_or_null(cr->access_key_id);
	cr->password = endpoint_strdup_or_null(pw);
	OPENSSL_cleanse(pw, sizeof(pw));
	return 0;
}

/* Refuse what cannot work with the credentials loaded; 0, or -1. */
static int
check_combination(const struct conf *c, const struct endpoint *ep,
    struct endpoint_credentials *cr, char *err, size_t errlen)
{
	char key[32];

	if (strcmp(ep->transport, "api") == 0 &&
	    !endpoint_has_api_credentials(ep, cr)) {
		conf_key_error(c, ep->credentials_key, err, errlen, "%s holds SMTP "
		    "credentials (username, password), but transport \"api\" "
		    "signs with an IAM key (access_key_id, secret_access_key)",
		    ep->credentials);
		return -1;
	}
	if (ep->rate == 0 && !endpoint_has_api_credentials(ep, cr)) {
		snprintf(key, sizeof(key), "%s.rate", ep->name);
		conf_key_error(c, key, err, errlen, "0 follows the account's "
		    "MaxSendRate, read with GetAccount, which needs an IAM key; "
		    "%s holds SMTP credentials", ep->credentials);
		return -1;
	}
	if (strcmp(ep->transport, "smtp") == 0 && cr->access_key_id != NULL)
		return derive_smtp(c, ep, cr, err, errlen);
	return 0;
}

int
endpoint_load_credentials(const struct conf *c, const struct endpoint *ep,
    struct endpoint_credentials *out, char *err, size_t errlen)
{
	char e[CONF_ERRLEN - 64];

	memset(out, 0, sizeof(*out));
	if (strcmp(ep->auth, "environment") == 0) {
		if (load_env(c, ep, out, err, errlen) == -1)
			return -1;
	} else if (strcmp(ep->auth, "file") == 0 &&
	    endpoint_credentials_read(ep->credentials, out, e, sizeof(e)) ==
	    -1) {
		conf_key_error(c, ep->credentials_key, err, errlen, "%s", e);
		return -1;
	}
	if (check_combination(c, ep, out, err, errlen) == -1) {
		endpoint_credentials_clear(out);
		return -1;
	}
	return 0;
}

/* ---- the credentials file ---- */

/*
 * Under systemd, LoadCredential=NAME:FILE puts a copy where we may read
 * it: the credential's name is the file's base name ("credentials",
 * "fallback-credentials", ...).  The file to read, in alt or file.
 */
static const char *
credentials_path(const char *file, char *alt, size_t altlen)
{
	const char *dir = getenv("CREDENTIALS_DIRECTORY");
	const char *base = strrchr(file, '/');

	if (dir == NULL || *dir == '\0')
		return file;
	snprintf(alt, altlen, "%s/%s", dir, base ? base + 1 : file);
	return access(alt, F_OK) == 0 ? alt : file;
}

/* Open file if it is safe to read secrets from; the stream, or NULL. */
static FILE *
credentials_open(const char *file, char *err, size_t errlen)
{
	struct stat st;
	FILE *fp;
	int fd;

	if ((fd = open(file, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) == -1) {
		conf_errf(err, errlen, "%s: cannot open credentials: %s", file,
		    strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode))
		conf_errf(err, errlen, "%s: credentials must be a regular file",
		    file);
	else if (st.st_mode & (S_IWGRP | S_IRWXO))
		conf_errf(err, errlen, "%s: mode %04o is unsafe; credentials are "
		    "refused unless mode is 0600 or 0640 (chmod 600 %s)", file,
		    (unsigned)(st.st_mode & 07777), file);
	else if ((fp = fdopen(fd, "r")) == NULL)
		conf_errf(err, errlen, "%s: %s", file, strerror(errno));
	else
		return fp;
	close(fd);
	return NULL;
}

/* The keys a credentials file may hold. */
static const char *const credentials_keys[] = { "username", "password",
    "access_key_id", "secret_access_key", "session_token" };

/* Only the known keys may be set; 0, or -1 with err. */
static int
credentials_known_keys(const char *file, config_t *cfg, char *err,
    size_t errlen)
{
	config_setting_t *root = config_root_setting(cfg);

	for (int i = 0; i < config_setting_length(root); i++) {
		config_setting_t *s = config_setting_get_elem(root, i);
		const char *name = config_setting_name(s);
		size_t j = 0;

		while (j < 5 && strcmp(name, credentials_keys[j]) != 0)
			j++;
		if (j == 5) {
			conf_errf(err, errlen, "%s:%d: %s: unknown key (a file "
			    "holds username and password, or access_key_id, "
			    "secret_access_key and maybe session_token)", file,
			    config_setting_source_line(s), name);
			return -1;
		}
	}
	return 0;
}

/* A non-empty string key of the file; NULL with err. */
static const char *
credentials_string(const char *file, config_t *cfg, const char *key,
    char *err, size_t errlen)
{
	const char *v;

	if (config_lookup_string(cfg, key, &v) != CONFIG_TRUE || *v == '\0') {
		conf_errf(err, errlen, "%s: %s: missing or not a string", file, key);
		return NULL;
	}
	return v;
}

char *
endpoint_strdup_or_null(const char *s)
{
	char *d;

	if (s == NULL)
		return NULL;
	if ((d = strdup(s)) == NULL)
		abort();
	return d;
}

/* Which form the file holds: 1 an IAM key, 0 SMTP credentials, -1 both. */
static int
credentials_form(config_t *cfg)
{
	int smtp = config_lookup(cfg, "username") != NULL ||
	    config_lookup(cfg, "password") != NULL;
	int key = config_lookup(cfg, "access_key_id") != NULL ||
	    config_lookup(cfg, "secret_access_key") != NULL ||
	    config_lookup(cfg, "session_token") != NULL;

	return smtp && key ? -1 : key;
}

/* The two strings of a form into out; 0, or -1 with err. */
static int
credentials_pair(const char *file, config_t *cfg, const char *k1,
    const char *k2, char **o1, char **o2, char *err, size_t errlen)
{
	const char *a, *b;

	if ((a = credentials_string(file, cfg, k1, err, errlen)) == NULL ||
	    (b = credentials_string(file, cfg, k2, err, errlen)) == NULL)
		return -1;
	*o1 = endpoint_strdup_or_null(a);
	*o2 = endpoint_strdup_or_null(b);
	return 0;
}

/* A password alone (a store's file: the username is for Redis ACLs
 * only) into out; 0, or -1 with err. */
static int
credentials_password(const char *file, config_t *cfg,
    struct endpoint_credentials *out, char *err, size_t errlen)
{
	const char *p;

	if (config_lookup(cfg, "username") != NULL)
		return credentials_pair(file, cfg, "username", "password",
		    &out->username, &out->password, err, errlen);
	if ((p = credentials_string(file, cfg, "password", err, errlen)) ==
	    NULL)
		return -1;
	out->password = endpoint_strdup_or_null(p);
	return 0;
}

/* The parsed file's form into out (the username may be left out when
 * not need_user: out->username is then NULL); 0, or -1 with err. */
static int
credentials_take(const char *file, config_t *cfg,
    struct endpoint_credentials *out, int need_user, char *err,
    size_t errlen)
{
	const char *tok = NULL;

	switch (credentials_form(cfg)) {
	case -1:
		conf_errf(err, errlen, "%s: holds both SMTP credentials "
		    "(username, password) and an IAM key (access_key_id, ...): "
		    "keep one", file);
		return -1;
	case 0:
		if (!need_user)
			return credentials_password(file, cfg, out, err,
			    errlen);
		return credentials_pair(file, cfg, "username", "password",
		    &out->username, &out->password, err, errlen);
	}
	if (!need_user) {
		conf_errf(err, errlen, "%s: holds an IAM key: expected password "
		    "(and username, for an ACL user)", file);
		return -1;
	}
	if (config_lookup(cfg, "session_token") != NULL &&
	    (tok = credentials_string(file, cfg, "session_token", err,
	    errlen)) == NULL)
		return -1;
	if (credentials_pair(file, cfg, "access_key_id", "secret_access_key",
	    &out->access_key_id, &out->secret_access_key, err, errlen) == -1)
		return -1;
	out->session_token = endpoint_strdup_or_null(tok);
	return 0;
}

/* Parse the open file into out (the username may be left out when not
 * need_user: out->username is then NULL); 0, or -1 with err. */
static int
credentials_parse(const char *file, FILE *fp,
    struct endpoint_credentials *out, int need_user, char *err,
    size_t errlen)
{
	config_t cfg;
	int rc = -1;

	config_init(&cfg);
	if (config_read(&cfg, fp) != CONFIG_TRUE)
		conf_errf(err, errlen, "%s:%d: %s", file, config_error_line(&cfg),
		    config_error_text(&cfg));
	else if (credentials_known_keys(file, &cfg, err, errlen) == 0)
		rc = credentials_take(file, &cfg, out, need_user, err, errlen);
	config_destroy(&cfg);
	if (rc == -1)
		endpoint_credentials_clear(out);
	return rc;
}

static int
credentials_read(const char *file, struct endpoint_credentials *out,
    int need_user, char *err, size_t errlen)
{
	char alt[PATH_MAX];
	FILE *fp;
	int rc;

	memset(out, 0, sizeof(*out));
	file = credentials_path(file, alt, sizeof(alt));
	if ((fp = credentials_open(file, err, errlen)) == NULL)
		return -1;
	rc = credentials_parse(file, fp, out, need_user, err, errlen);
	fclose(fp);
	return rc;
}

int
endpoint_credentials_read(const char *file,
    struct endpoint_credentials *out, char *err, size_t errlen)
{
	return credentials_read(file, out, 1, err, errlen);
}

int
endpoint_credentials_read_store(const char *file,
    struct endpoint_credentials *out, char *err, size_t errlen)
{
	return credentials_read(file, out, 0, err, errlen);
}

void
endpoint_secret_free(char **p)
{
	if (*p != NULL) {
		explicit_bzero(*p, strlen(*p));
		free(*p);
	}
	*p = NULL;
}

void
endpoint_credentials_clear(struct endpoint_credentials *cr)
{
	endpoint_secret_free(&cr->password);
	endpoint_secret_free(&cr->secret_access_key);
	endpoint_secret_free(&cr->session_token);
	free(cr->username);
	free(cr->access_key_id);
	cr->username = cr->access_key_id = NULL;
}

int
endpoint_credentials_is_key(const struct endpoint_credentials *cr)
{
	return cr->access_key_id != NULL;
}

int
endpoint_has_api_credentials(const struct endpoint *ep,
    const struct endpoint_credentials *cr)
{
	return strcmp(ep->auth, "file") != 0 || (cr != NULL &&
	    endpoint_credentials_is_key(cr));
}
