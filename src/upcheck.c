/*
 * upcheck.c: a blocking, verbose SMTP client for `sesrelayctl check`.
 *
 * It uses the same rules as the daemon (TLS 1.2+, the certificate and
 * the host name verified, AUTH only after TLS) but says what it does at
 * every step, so an operator sees where a set-up goes wrong.  The
 * password is never printed.
 */
#include "config.h"

#include <sys/socket.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "upcheck.h"
#include "conf.h"
#include "endpoint.h"
#include "netaddr.h"
#include "tls.h"
#include "upstream_reply.h"

struct conn {
	int	 fd;
	SSL	*ssl;
	int	 timeout;
	FILE	*out;
	char	 buf[8192];
	size_t	 len;
	struct upstream_reply last;	/* the last reply, whole */
};

static void
step(FILE *out, int ok, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
step(FILE *out, int ok, const char *fmt, ...)
{
	va_list ap;

	fputs(ok ? "ok    " : "FAIL  ", out);
	va_start(ap, fmt);
	vfprintf(out, fmt, ap);
	va_end(ap);
	fputc('\n', out);
	fflush(out);
}

static void
advise(FILE *out, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* What to do about a failed step. */
static void
advise(FILE *out, const char *fmt, ...)
{
	va_list ap;

	fputs("      -> ", out);
	va_start(ap, fmt);
	vfprintf(out, fmt, ap);
	va_end(ap);
	fputc('\n', out);
}

/* Wait for fd to be readable or writable; 0, or -1 (ETIMEDOUT). */
static int
wait_fd(int fd, short events, int timeout)
{
	struct pollfd p = { fd, events, 0 };
	int r = poll(&p, 1, timeout * 1000);

	if (r == 0)
		errno = ETIMEDOUT;
	return r > 0 ? 0 : -1;
}

static ssize_t
c_read(struct conn *c, char *buf, size_t len)
{
	for (;;) {
		ssize_t n;

		if (c->ssl != NULL) {
			int r = SSL_read(c->ssl, buf, (int)len), e;

			if (r > 0)
				return r;
			e = SSL_get_error(c->ssl, r);
			if (e == SSL_ERROR_WANT_READ) {
				if (wait_fd(c->fd, POLLIN, c->timeout) == -1)
					return -1;
				continue;
			}
			if (e == SSL_ERROR_WANT_WRITE) {
				if (wait_fd(c->fd, POLLOUT, c->timeout) == -1)
					return -1;
				continue;
			}
			return e == SSL_ERROR_ZERO_RETURN ? 0 : -1;
		}
		if (wait_fd(c->fd, POLLIN, c->timeout) == -1)
			return -1;
		n = read(c->fd, buf, len);
		if (n >= 0 || errno != EAGAIN)
			return n;
	}
}

static int
c_write(struct conn *c, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n;

		if (c->ssl != NULL) {
			int r = SSL_write(c->ssl, buf, (int)len), e;

			if (r > 0) {
				buf += r;
				len -= (size_t)r;
				continue;
			}
			e = SSL_get_error(c->ssl, r);
			if ((e == SSL_ERROR_WANT_READ &&
			    wait_fd(c->fd, POLLIN, c->timeout) == 0) ||
			    (e == SSL_ERROR_WANT_WRITE &&
			    wait_fd(c->fd, POLLOUT, c->timeout) == 0))
				continue;
			return -1;
		}
		if (wait_fd(c->fd, POLLOUT, c->timeout) == -1)
			return -1;
		if ((n = write(c->fd, buf, len)) < 0) {
			if (errno == EAGAIN)
				continue;
			return -1;
		}
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/*
 * Read one reply (all its lines) into c->last, parsed as the daemon
 * parses SES's replies; its first line ("CODE text") goes to text.
 * Returns the code, or -1.
 */
static int
reply(struct conn *c, char *text, size_t tlen)
{
	upstream_reply_init(&c->last);
	text[0] = '\0';
	for (;;) {
		char *nl = memchr(c->buf, '\n', c->len);
		size_t ll, used;
		int r;

		if (nl == NULL) {
			ssize_t n;

			if (c->len == sizeof(c->buf))
				return -1;
			if ((n = c_read(c, c->buf + c->len,
			    sizeof(c->buf) - c->len)) <= 0)
				return -1;
			c->len += (size_t)n;
			continue;
		}
		used = (size_t)(nl - c->buf) + 1;
		ll = used - 1;
		if (ll > 0 && c->buf[ll - 1] == '\r')
			ll--;
		r = upstream_reply_feed(&c->last, c->buf, ll);
		memmove(c->buf, c->buf + used, c->len - used);
		c->len -= used;
		if (r == UPSTREAM_REPLY_BAD)
			return -1;
		if (r == UPSTREAM_REPLY_DONE) {
			upstream_reply_summary(&c->last, text, tlen);
			return c->last.code;
		}
	}
}

static int
command(struct conn *c, const char *line, char *text, size_t tlen)
{
	char buf[1100];

	snprintf(buf, sizeof(buf), "%s\r\n", line);
	if (c_write(c, buf, strlen(buf)) == -1)
		return -1;
	return reply(c, text, tlen);
}

const char *
check_auth_advice(const char *username, const char *password,
    const char *region, const char *host)
{
	static char buf[700];
	size_t pl = strlen(password);

	if (strncmp(username, "AKIA", 4) != 0 &&
	    strncmp(username, "ASIA", 4) != 0)
		snprintf(buf, sizeof(buf), "the user name \"%.40s...\" does "
		    "not look like an IAM access key id (AKIA...): the SMTP "
		    "user name is the access key id itself", username);
	else if (strncmp(username, "ASIA", 4) == 0)
		snprintf(buf, sizeof(buf), "ASIA... is a temporary (STS) key: "
		    "SES SMTP needs the access key of an IAM user");
	else if (pl == 40 && password[0] != 'B')
		snprintf(buf, sizeof(buf), "the password looks like an IAM "
		    "secret access key (40 characters): SES wants the SMTP "
		    "password derived from it: sesrelayctl smtp-password "
		    "--region %s < secret-key", region);
	else if (pl == 44 && password[0] == 'A')
		snprintf(buf, sizeof(buf), "the password is an old SigV2 SMTP "
		    "password (it starts with 'A'): derive a new one with "
		    "sesrelayctl smtp-password --region %s", region);
	else if (pl != 44 || password[0] != 'B')
		snprintf(buf, sizeof(buf), "an SES SMTP password is 44 "
		    "characters starting with 'B'; this one is not: derive it "
		    "with sesrelayctl smtp-password --region %s", region);
	else
		snprintf(buf, sizeof(buf), "SMTP passwords are derived per "
		    "region: this one must have been derived for the region "
		    "of %s (%s); also check that the IAM user may "
		    "ses:SendRawEmail, and that a new key has had a minute "
		    "to become valid", host, region);
	return buf;
}

/* TLS on c->fd, verifying host; 0, or -1 (printed). */
static int
start_tls(struct conn *c, SSL_CTX *ctx, const struct endpoint *ep)
{
	const char *host = ep->host;
	X509 *cert;
	long vr;
	int r;

	if ((c->ssl = tls_client_new(ctx, host)) == NULL) {
		step(c->out, 0, "TLS: out of memory");
		return -1;
	}
	SSL_set_fd(c->ssl, c->fd);
	while ((r = SSL_connect(c->ssl)) != 1) {
		int e = SSL_get_error(c->ssl, r);

		if ((e == SSL_ERROR_WANT_READ &&
		    wait_fd(c->fd, POLLIN, c->timeout) == 0) ||
		    (e == SSL_ERROR_WANT_WRITE &&
		    wait_fd(c->fd, POLLOUT, c->timeout) == 0))
			continue;
		if ((vr = SSL_get_verify_result(c->ssl)) != X509_V_OK) {
			step(c->out, 0, "TLS: the certificate of %s is not "
			    "trusted: %s", host,
			    X509_verify_cert_error_string(vr));
			advise(c->out, "check %s.host (the name "
			    "must be in the certificate) and %s.ca_file; "
			    "something between this host and SES may be "
			    "intercepting TLS", ep->name, ep->name);
		} else
			step(c->out, 0, "TLS handshake failed: %s",
			    ERR_reason_error_string(ERR_get_error()));
		return -1;
	}
	step(c->out, 1, "TLS %s, %s", SSL_get_version(c->ssl),
	    SSL_get_cipher_name(c->ssl));
	if ((cert = SSL_get1_peer_certificate(c->ssl)) != NULL) {
		char subj[256], iss[256];
		const ASN1_TIME *na = X509_get0_notAfter(cert);
		struct tm tm;
		char until[64] = "?";

		X509_NAME_oneline(X509_get_subject_name(cert), subj,
		    sizeof(subj));
		X509_NAME_oneline(X509_get_issuer_name(cert), iss,
		    sizeof(iss));
		if (na != NULL && ASN1_TIME_to_tm(na, &tm) == 1)
			strftime(until, sizeof(until), "%Y-%m-%d", &tm);
		step(c->out, 1, "certificate verified for %s: %s, issued by "
		    "%s, valid until %s", host, subj, iss, until);
		X509_free(cert);
	}
	return 0;
}

/* The EHLO keywords (its reply's lines after the first). */
static void
print_caps(FILE *out, const struct upstream_reply *r)
{
	const char *p = strchr(r->text, '\n');

	fputs("      capabilities:", out);
	while (p != NULL) {
		const char *e = strchr(p + 1, '\n');
		int n = e ? (int)(e - p - 1) : (int)strlen(p + 1);

		if (n > 0 && strncasecmp(p + 1, "Ok", 2) != 0)
			fprintf(out, " %.*s;", n, p + 1);
		p = e;
	}
	fputc('\n', out);
}

static int
connect_to(struct conn *c, const struct addrinfo *ai, char *why,
    size_t wlen)
{
	int err = 0;
	socklen_t el = sizeof(err);

	c->fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, 0);
	if (c->fd == -1)
		goto fail;
	if (connect(c->fd, ai->ai_addr, ai->ai_addrlen) == -1 &&
	    errno != EINPROGRESS)
		goto fail;
	if (wait_fd(c->fd, POLLOUT, c->timeout) == -1)
		goto fail;
	if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el) == -1 ||
	    err != 0) {
		errno = err;
		goto fail;
	}
	return 0;
fail:
	snprintf(why, wlen, "%s", strerror(errno));
	if (c->fd != -1)
		close(c->fd);
	c->fd = -1;
	return -1;
}

/* What one check carries from step to step. */
struct check {
	const struct conf	*cf;
	struct endpoint		 ep;
	struct endpoint_credentials cred;
	struct conn		 c;
	SSL_CTX			*ctx;
	struct addrinfo		*res;
	char			 ehlo[300];	/* the EHLO command */
	char			 text[4096];	/* the last reply's summary */
	FILE			*out;
};

/* Each step prints what it did; 0 to go on, or the exit status. */
static int
step_credentials(struct check *k)
{
	char why[CONF_ERRLEN];

	if (endpoint_load_credentials(k->cf, &k->ep, &k->cred, why,
	    sizeof(why)) == -1) {
		step(k->out, 0, "credentials: %s", why);
		return EX_CONFIG;
	}
	step(k->out, 1, "credentials read from %s (user %s)",
	    k->ep.credentials, k->cred.username);
	return 0;
}

static int
step_tls_context(struct check *k)
{
	char err[512];

	if ((k->ctx = tls_client_ctx_new(k->ep.ca_file, err,
	    sizeof(err))) == NULL) {
		step(k->out, 0, "TLS: %s.ca_file: %s", k->ep.name, err);
		return EX_CONFIG;
	}
	return 0;
}

static int
step_resolve(struct check *k)
{
	int e;

	if ((e = netaddr_lookup(k->ep.host, k->ep.port, AF_UNSPEC, 0,
	    &k->res)) == 0)
		return 0;
	k->res = NULL;
	step(k->out, 0, "DNS: %s: %s", k->ep.host, gai_strerror(e));
	advise(k->out, "check %s.region (e.g. eu-west-1) or "
	    "%s.host, and this host's resolver", k->ep.name, k->ep.name);
	return EX_UNAVAILABLE;
}

static int
step_connect(struct check *k)
{
	int port = k->ep.port;
	char why[256];

	for (struct addrinfo *ai = k->res; ai != NULL; ai = ai->ai_next) {
		char a[INET6_ADDRSTRLEN] = "?";

		getnameinfo(ai->ai_addr, ai->ai_addrlen, a, sizeof(a), NULL, 0,
		    NI_NUMERICHOST);
		if (connect_to(&k->c, ai, why, sizeof(why)) == 0) {
			step(k->out, 1, "TCP connected to %s port %d", a, port);
			return 0;
		}
		step(k->out, 0, "TCP %s port %d: %s", a, port, why);
	}
	if (port == 25)
		advise(k->out, "EC2 throttles or blocks outbound port "
		    "25: use %s.port = 587 (or 2587, or 465/2465 with TLS "
		    "Wrapper)", k->ep.name);
	else
		advise(k->out, "a firewall or security group may block this "
		    "port; SES listens on 25, 587, 2587 (STARTTLS) and 465, "
		    "2465 (TLS Wrapper)");
	return EX_UNAVAILABLE;
}

/* TLS Wrapper: the handshake comes first. */
static int
step_wrapper(struct check *k)
{
	if (!k->ep.wrapper || start_tls(&k->c, k->ctx, &k->ep) == 0)
		return 0;
	advise(k->out, "if the server speaks plain SMTP first (ports "
	    "25, 587, 2587), set %s.tls = \"starttls\"", k->ep.name);
	return EX_PROTOCOL;
}

static int
step_banner(struct check *k)
{
	int code = reply(&k->c, k->text, sizeof(k->text));
	int port = k->ep.port;

	if (code == 220) {
		step(k->out, 1, "banner: %s", k->text);
		return 0;
	}
	step(k->out, 0, "banner: %s", code == -1 ? "no greeting" : k->text);
	if (code == -1 && !k->ep.wrapper && (port == 465 || port == 2465))
		advise(k->out, "ports 465 and 2465 speak TLS Wrapper: "
		    "set %s.tls = \"wrapper\"", k->ep.name);
	else if (code == -1 && k->ep.wrapper)
		advise(k->out, "ports 25, 587 and 2587 speak STARTTLS: "
		    "set %s.tls = \"starttls\"", k->ep.name);
	return EX_UNAVAILABLE;
}

/* EHLO, named what for the output ("EHLO", "EHLO after TLS"). */
static int
ehlo(struct check *k, const char *what)
{
	int code = command(&k->c, k->ehlo, k->text, sizeof(k->text));

	if (code != 250) {
		step(k->out, 0, "%s: %s", what, code == -1 ? "no reply" :
		    k->text);
		return EX_UNAVAILABLE;
	}
	step(k->out, 1, "%s accepted", what);
	print_caps(k->out, &k->c.last);
	return 0;
}

static int
step_ehlo(struct check *k)
{
	snprintf(k->ehlo, sizeof(k->ehlo), "EHLO %s", k->cf->hostname[0] ?
	    k->cf->hostname : "localhost");
	return ehlo(k, "EHLO");
}

/* STARTTLS: offered, accepted, the handshake, EHLO again. */
static int
step_starttls(struct check *k)
{
	if (k->ep.wrapper)
		return 0;
	if (!upstream_reply_has_keyword(&k->c.last, "STARTTLS", NULL)) {
		step(k->out, 0, "the server does not offer STARTTLS; sesrelay "
		    "never sends credentials in the clear");
		return EX_PROTOCOL;
	}
	if (command(&k->c, "STARTTLS", k->text, sizeof(k->text)) != 220) {
		step(k->out, 0, "STARTTLS: %s", k->text);
		return EX_UNAVAILABLE;
	}
	k->c.len = 0;	/* nothing read before TLS counts */
	if (start_tls(&k->c, k->ctx, &k->ep) == -1)
		return EX_PROTOCOL;
	return ehlo(k, "EHLO after TLS");
}

static int
step_auth(struct check *k)
{
	char *cmd = upstream_auth_plain(k->cred.username, k->cred.password);
	const char *region = k->ep.region[0] ? k->ep.region : "?";
	int code = command(&k->c, cmd, k->text, sizeof(k->text));

	explicit_bzero(cmd, strlen(cmd));
	free(cmd);
	if (code == 235) {
		step(k->out, 1, "AUTH PLAIN accepted: %s", k->text);
		return 0;
	}
	step(k->out, 0, "AUTH: %s", code == -1 ? "no reply" : k->text);
	if (code != 535 && code != 530)
		return EX_UNAVAILABLE;
	advise(k->out, "%s", check_auth_advice(k->cred.username,
	    k->cred.password, region, k->ep.host));
	return EX_NOPERM;
}

static int
step_quit(struct check *k)
{
	(void)command(&k->c, "QUIT", k->text, sizeof(k->text));
	fprintf(k->out, "all good: sesrelayd can send through %s\n",
	    k->ep.host);
	return 0;
}

/* The steps, in order: the first that fails ends the check. */
static int (*const steps[])(struct check *) = {
	step_credentials, step_tls_context, step_resolve, step_connect,
	step_wrapper, step_banner, step_ehlo, step_starttls, step_auth,
	step_quit,
};

int
check_upstream(const struct conf *cf, int fallback, int timeout,
    FILE *out)
{
	struct check k;
	int rc = 0;

	memset(&k, 0, sizeof(k));
	k.cf = cf;
	k.out = k.c.out = out;
	k.c.fd = -1;
	k.c.timeout = timeout;
	if (endpoint_from_conf(cf, fallback ? ENDPOINT_FALLBACK :
	    ENDPOINT_PRIMARY, &k.ep) == -1) {
		fprintf(out, "no fallback is configured (fallback.region or "
		    "fallback.host)\n");
		return EX_CONFIG;
	}
	fprintf(out, "checking %s %s:%d (%s)\n", fallback ? "the fallback" :
	    "upstream", k.ep.host, k.ep.port, k.ep.wrapper ? "TLS Wrapper" :
	    "STARTTLS");
	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]) && rc == 0;
	    i++)
		rc = steps[i](&k);
	if (k.c.ssl != NULL)
		SSL_free(k.c.ssl);
	if (k.c.fd != -1)
		close(k.c.fd);
	if (k.res != NULL)
		freeaddrinfo(k.res);
	SSL_CTX_free(k.ctx);
	endpoint_credentials_clear(&k.cred);
	return rc;
}
