/*
 * creds.c: the AWS credentials of one endpoint, from where its auth key
 * says: the credentials file (an IAM key), the environment, or the
 * instance role (creds_imds.c, fetched in the background).
 *
 * Invariant: creds_get() returns either NULL or a complete key; a new
 * key replaces the old one whole, and the change callback runs from the
 * event loop.  Secrets are wiped when freed and never logged.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "creds.h"
#include "creds_imds.h"
#include "endpoint.h"

struct creds {
	struct aws_creds	 cur;
	int			 have;		/* cur holds a key */
	struct creds_imds	*imds;		/* NULL: file or environment */
	void			(*cb)(void *);
	void			*cbarg;
};

void
aws_creds_copy(struct aws_creds *dst, const struct aws_creds *src)
{
	dst->access_key_id = endpoint_strdup_or_null(src->access_key_id);
	dst->secret_access_key = endpoint_strdup_or_null(src->secret_access_key);
	dst->session_token = endpoint_strdup_or_null(src->session_token);
	dst->expiration = src->expiration;
}

void
aws_creds_clear(struct aws_creds *a)
{
	endpoint_secret_free(&a->secret_access_key);
	endpoint_secret_free(&a->session_token);
	free(a->access_key_id);
	a->access_key_id = NULL;
	a->expiration = 0;
}

int
creds_from_env(struct aws_creds *out, char *err, size_t errlen)
{
	const char *id = getenv("AWS_ACCESS_KEY_ID");
	const char *secret = getenv("AWS_SECRET_ACCESS_KEY");
	const char *token = getenv("AWS_SESSION_TOKEN");

	memset(out, 0, sizeof(*out));
	if (id == NULL || *id == '\0' || secret == NULL || *secret == '\0') {
		conf_errf(err, errlen, "auth \"environment\": %s is not set in "
		    "sesrelayd's environment (systemd: Environment= or "
		    "EnvironmentFile= in the unit)", id == NULL || *id == '\0' ?
		    "AWS_ACCESS_KEY_ID" : "AWS_SECRET_ACCESS_KEY");
		return -1;
	}
	out->access_key_id = endpoint_strdup_or_null(id);
	out->secret_access_key = endpoint_strdup_or_null(secret);
	out->session_token = token != NULL && *token != '\0' ?
	    endpoint_strdup_or_null(token) : NULL;
	return 0;
}

/* Credentials arrived or changed (the instance role): keep, tell. */
static void
creds_got(void *arg, const struct aws_creds *a)
{
	struct creds *c = arg;

	aws_creds_clear(&c->cur);
	aws_creds_copy(&c->cur, a);
	c->have = 1;
	if (c->cb != NULL)
		c->cb(c->cbarg);
}

/* The file's or the environment's key (endpoint_load_credentials reads
 * both and refuses what cannot work); 0, or -1 with err. */
static int
creds_static(struct creds *c, const struct conf *conf,
    const struct endpoint *ep, char *err, size_t errlen)
{
	struct endpoint_credentials cr;

	if (endpoint_load_credentials(conf, ep, &cr, err, errlen) == -1)
		return -1;
	if (!endpoint_credentials_is_key(&cr)) {
		conf_key_error(conf, ep->credentials_key, err, errlen, "%s holds "
		    "SMTP credentials (username, password), not an IAM key "
		    "(access_key_id, secret_access_key)", ep->credentials);
		endpoint_credentials_clear(&cr);
		return -1;
	}
	c->cur.access_key_id = endpoint_strdup_or_null(cr.access_key_id);
	c->cur.secret_access_key = endpoint_strdup_or_null(cr.secret_access_key);
	c->cur.session_token = endpoint_strdup_or_null(cr.session_token);
	c->have = 1;
	endpoint_credentials_clear(&cr);
	return 0;
}

struct creds *
creds_new(struct event_base *base, struct evdns_base *dns,
    const struct conf *conf, const struct endpoint *ep, char *err,
    size_t errlen)
{
	struct creds *c = calloc(1, sizeof(*c));

	if (c == NULL)
		abort();
	if (strcmp(ep->auth, "instance-role") == 0)
		c->imds = creds_imds_new(base, dns, ep->imds_url, creds_got, c,
		    err, errlen);
	if (c->imds == NULL && (strcmp(ep->auth, "instance-role") == 0 ||
	    creds_static(c, conf, ep, err, errlen) == -1)) {
		free(c);
		return NULL;
	}
	return c;
}

struct creds *
creds_new_key(const char *access_key_id, const char *secret_access_key,
    const char *session_token)
{
	struct creds *c = calloc(1, sizeof(*c));

	if (c == NULL)
		abort();
	c->cur.access_key_id = endpoint_strdup_or_null(access_key_id);
	c->cur.secret_access_key = endpoint_strdup_or_null(secret_access_key);
	c->cur.session_token = endpoint_strdup_or_null(session_token);
	c->have = 1;
	return c;
}

const struct aws_creds *
creds_get(struct creds *c)
{
	if (!c->have || (c->cur.expiration != 0 &&
	    c->cur.expiration <= time(NULL)))
		return NULL;	/* none yet, or expired while IMDS is down */
	return &c->cur;
}

void
creds_refresh(struct creds *c)
{
	if (c->imds != NULL)
		creds_imds_refresh(c->imds);
}

void
creds_on_change(struct creds *c, void (*cb)(void *), void *arg)
{
	c->cb = cb;
	c->cbarg = arg;
}

void
creds_free(struct creds *c)
{
	if (c == NULL)
		return;
	creds_imds_free(c->imds);
	aws_creds_clear(&c->cur);
	free(c);
}
