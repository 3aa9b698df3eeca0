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

#include <libconfig.h>
#include <openssl/ssl.h>

#include "conf.h"
#include "endpoint.h"
#include "tls.h"

#define OFF(f)	offsetof(struct conf, f)

/* Where a role's keys live in struct conf. */
static const struct endpoint_keys {
	const char	*name;
	size_t		 region, host, port, tls, ca_file, credentials;
} roles[] = {
	[ENDPOINT_PRIMARY] = { "upstream", OFF(upstream.region),
	    OFF(upstream.host), OFF(upstream.port), OFF(upstream.tls),
	    OFF(upstream.ca_file), OFF(upstream.credentials) },
	[ENDPOINT_FALLBACK] = { "fallback", OFF(fallback.region),
	    OFF(fallback.host), OFF(fallback.port), OFF(fallback.tls),
	    OFF(fallback.ca_file), OFF(fallback.credentials) },
};

static const char *
str_at(const struct conf *c, size_t off)
{
	return *(char *const *)((const char *)c + off);
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

int
endpoint_load_credentials(const struct conf *c, const struct endpoint *ep,
    struct endpoint_credentials *out, char *err, size_t errlen)
{
	char e[CONF_ERRLEN - 64];

	if (endpoint_credentials_read(ep->credentials, out, e, sizeof(e)) ==
	    -1) {
		conf_key_error(c, ep->credentials_key, err, errlen, "%s", e);
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

/* Only username and password may be set; 0, or -1 with err. */
static int
credentials_known_keys(const char *file, config_t *cfg, char *err,
    size_t errlen)
{
	config_setting_t *root = config_root_setting(cfg);

	for (int i = 0; i < config_setting_length(root); i++) {
		config_setting_t *s = config_setting_get_elem(root, i);
		const char *name = config_setting_name(s);

		if (strcmp(name, "username") && strcmp(name, "password")) {
			conf_errf(err, errlen, "%s:%d: %s: unknown key", file,
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

/* Parse the open file into out (the username may be left out when not
 * need_user: out->username is then NULL); 0, or -1 with err. */
static int
credentials_parse(const char *file, FILE *fp,
    struct endpoint_credentials *out, int need_user, char *err,
    size_t errlen)
{
	const char *u = NULL, *p = NULL;
	config_t cfg;
	int rc = -1;

	config_init(&cfg);
	if (config_read(&cfg, fp) != CONFIG_TRUE)
		conf_errf(err, errlen, "%s:%d: %s", file, config_error_line(&cfg),
		    config_error_text(&cfg));
	else if (credentials_known_keys(file, &cfg, err, errlen) == 0 &&
	    (need_user || config_lookup(&cfg, "username") != NULL ? (u =
	    credentials_string(file, &cfg, "username", err, errlen)) !=
	    NULL : 1) &&
	    (p = credentials_string(file, &cfg, "password", err,
	    errlen)) != NULL) {
		if ((u != NULL && (out->username = strdup(u)) == NULL) ||
		    (out->password = strdup(p)) == NULL)
			abort();
		rc = 0;
	}
	config_destroy(&cfg);
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
endpoint_credentials_clear(struct endpoint_credentials *cr)
{
	if (cr->password != NULL) {
		explicit_bzero(cr->password, strlen(cr->password));
		free(cr->password);
	}
	free(cr->username);
	cr->username = cr->password = NULL;
}
