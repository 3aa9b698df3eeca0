/*
 * upcheck_api.c: `sesrelayctl check` where API credentials exist (an
 * IAM key, the environment, the instance role): the account's limits
 * and state (GetAccount), and whether rewrite.sender and bounce.sender
 * are verified identities in the region (GetEmailIdentity), so SES's
 * "554 Message rejected: Email address is not verified" is caught
 * before the first message.  Blocking: a loop of its own per request
 * (api_get_sync), the same TLS policy and signer as the daemon.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>

#include <event2/event.h>

#include "account.h"
#include "api_get.h"
#include "conf.h"
#include "creds.h"
#include "endpoint.h"
#include "json_scan.h"
#include "tls.h"
#include "upcheck.h"

struct apicheck {
	const struct conf	*cf;
	struct endpoint		 ep;
	FILE			*out;
	int			 timeout;
	SSL_CTX			*ctx;
	struct event_base	*base;
	struct creds		*creds;
};

/* The provider's key; for the instance role, the loop runs until IMDS
 * answers or the timeout.  NULL (printed) when there is none. */
static const struct aws_creds *
apicheck_creds(struct apicheck *k)
{
	char err[CONF_ERRLEN];
	time_t until = time(NULL) + k->timeout;

	if ((k->creds = creds_new(k->base, NULL, k->cf, &k->ep, err,
	    sizeof(err))) == NULL) {
		fprintf(k->out, "FAIL  API credentials: %s\n", err);
		return NULL;
	}
	while (creds_get(k->creds) == NULL && time(NULL) < until)
		event_base_loop(k->base, EVLOOP_ONCE);
	if (creds_get(k->creds) == NULL)
		fprintf(k->out, "FAIL  API credentials: no answer from the "
		    "instance metadata service at %s within %d s\n",
		    k->ep.imds_url, k->timeout);
	return creds_get(k->creds);
}

/* Why a request failed, with what to check. */
static void
apicheck_failed(struct apicheck *k, const char *what, int status,
    const char *type)
{
	if (status == 0) {
		fprintf(k->out, "FAIL  %s: %s (check %s.api_endpoint, %s.ca_file "
		    "and that HTTPS to it is allowed)\n", what, type, k->ep.name,
		    k->ep.name);
		return;
	}
	fprintf(k->out, "FAIL  %s: HTTP %d %s\n", what, status, type);
	if (status == 403)
		fprintf(k->out, "      check the credentials, and that their IAM "
		    "policy allows ses:GetAccount and ses:GetEmailIdentity\n");
}

static int
apicheck_account(struct apicheck *k, const struct aws_creds *c)
{
	char type[128], body[8192];
	struct account_view v;
	int st = api_get_sync(k->ctx, &k->ep, c, "/v2/email/account",
	    k->timeout, type, sizeof(type), body, sizeof(body));

	if (st != 200 || account_parse(body, strlen(body), &v) == -1) {
		apicheck_failed(k, "GetAccount", st, st == 200 ?
		    "not GetAccount's answer" : type);
		return st == 403 ? EX_NOPERM : EX_UNAVAILABLE;
	}
	fprintf(k->out, "ok    account: %.0f of ", v.sent_24h);
	if (v.max_24h < 0)
		fputs("unlimited", k->out);
	else
		fprintf(k->out, "%.0f", v.max_24h);
	fprintf(k->out, " recipients sent in 24 h, at most %.2f/s; sending "
	    "%s; enforcement %s\n", v.max_rate, v.sending_enabled ? "enabled" :
	    "DISABLED", v.enforcement);
	if (account_should_hold(&v) != ACCOUNT_OK)
		fprintf(k->out, "FAIL  account: sesrelayd would not send now (%s)"
		    "\n", !v.sending_enabled || strcmp(v.enforcement,
		    "SHUTDOWN") == 0 ? "SES has paused sending for the account: "
		    "see the SES console" : "the 24-hour quota is nearly spent");
	if (k->ep.rate == 0)
		fprintf(k->out, "ok    %s.rate 0: sending at %.2f/s\n",
		    k->ep.name, account_rate(&v));
	return account_should_hold(&v) != ACCOUNT_OK ? EX_UNAVAILABLE : 0;
}

/* Is identity (an address or a domain) verified?  1, 0, or -1 (404:
 * not an identity), -2 (the request failed, printed). */
static int
identity_verified(struct apicheck *k, const struct aws_creds *c,
    const char *identity)
{
	char path[600], esc[500], type[128], body[8192];
	int st, ok;

	api_get_escape(identity, esc, sizeof(esc));
	snprintf(path, sizeof(path), "/v2/email/identities/%s", esc);
	st = api_get_sync(k->ctx, &k->ep, c, path, k->timeout, type,
	    sizeof(type), body, sizeof(body));
	if (st == 404)
		return -1;
	if (st != 200 || json_scan_bool(body, strlen(body),
	    "VerifiedForSendingStatus", &ok) == -1) {
		apicheck_failed(k, "GetEmailIdentity", st, type);
		return -2;
	}
	return ok;
}

/* key's address: verified itself, or through its domain? */
static int
apicheck_identity(struct apicheck *k, const struct aws_creds *c,
    const char *key, const char *addr)
{
	const char *domain = strrchr(addr, '@');
	int v = identity_verified(k, c, addr), how = 0;

	if (v == -1 && domain != NULL) {
		v = identity_verified(k, c, domain + 1);
		how = 1;
	}
	if (v == -2)
		return EX_UNAVAILABLE;
	if (v == 1) {
		fprintf(k->out, "ok    %s %s is verified for sending in %s%s\n",
		    key, addr, k->ep.region, how ? " (its domain)" : "");
		return 0;
	}
	fprintf(k->out, "FAIL  %s %s is not verified for sending in %s: SES "
	    "would refuse it (554 Message rejected: Email address is not "
	    "verified); verify the address or %s in the SES console\n", key,
	    addr, k->ep.region, domain ? domain + 1 : "its domain");
	return EX_CONFIG;
}

/* The account, then each sender the configuration names. */
static int
apicheck_run(struct apicheck *k)
{
	const struct aws_creds *c;
	char err[512];
	int rc, r;

	if ((k->ctx = tls_client_ctx_new(k->ep.ca_file, err, sizeof(err))) ==
	    NULL) {
		fprintf(k->out, "FAIL  TLS: %s.ca_file: %s\n", k->ep.name, err);
		return EX_CONFIG;
	}
	if ((c = apicheck_creds(k)) == NULL)
		return EX_CONFIG;
	fprintf(k->out, "checking the SES API %s (region %s)\n", k->ep.api_url,
	    k->ep.region);
	if ((rc = apicheck_account(k, c)) == EX_NOPERM ||
	    rc == EX_UNAVAILABLE)
		return rc;
	if (*k->cf->rewrite.sender != '\0' && (r = apicheck_identity(k, c,
	    "rewrite.sender", k->cf->rewrite.sender)) != 0)
		rc = rc ? rc : r;
	if (*k->cf->bounce.sender != '\0' && strcmp(k->cf->bounce.sender,
	    k->cf->rewrite.sender) != 0 && (r = apicheck_identity(k, c,
	    "bounce.sender", k->cf->bounce.sender)) != 0)
		rc = rc ? rc : r;
	return rc;
}

int
check_account(const struct conf *cf, int fallback, int timeout, FILE *out)
{
	struct endpoint_credentials cred;
	struct apicheck k;
	char err[CONF_ERRLEN];
	int rc, has;

	memset(&k, 0, sizeof(k));
	k.cf = cf;
	k.out = out;
	k.timeout = timeout;
	if (endpoint_from_conf(cf, fallback ? ENDPOINT_FALLBACK :
	    ENDPOINT_PRIMARY, &k.ep) == -1)
		return 0;
	if (endpoint_load_credentials(cf, &k.ep, &cred, err, sizeof(err)) ==
	    -1) {
		fprintf(out, "FAIL  credentials: %s\n", err);
		return EX_CONFIG;
	}
	has = endpoint_has_api_credentials(&k.ep, &cred);
	endpoint_credentials_clear(&cred);
	if (!has)
		return 0;	/* SMTP credentials: no API to ask */
	if ((k.base = event_base_new()) == NULL)
		abort();
	rc = apicheck_run(&k);
	creds_free(k.creds);
	SSL_CTX_free(k.ctx);
	event_base_free(k.base);
	return rc;
}
