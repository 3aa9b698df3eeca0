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
advise(FILE *out, const char *text)
{
	fprintf(out, "      -> %s\n", text);
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

/* The daemon's TLS client context, or NULL (printed). */
static SSL_CTX *
tls_context(const char *ca_file, FILE *out)
{
	char err[512];
	SSL_CTX *ctx = tls_client_ctx_new(ca_file, err, sizeof(err));

	if (ctx == NULL)
		step(out, 0, "TLS: %s", err);
	return ctx;
}

/* TLS on c->fd, verifying host; 0, or -1 (printed). */
static int
start_tls(struct conn *c, SSL_CTX *ctx, const char *host)
{
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
			advise(c->out, "check upstream.host (the name must be "
			    "in the certificate) and upstream.ca_file; "
			    "something between this host and SES may be "
			    "intercepting TLS");
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

int
check_upstream(const struct conf *cf, int fallback, int timeout,
    FILE *out)
{
	const char *host = fallback ? conf_fallback_host(cf) :
	    conf_upstream_host(cf);
	int port = (int)(fallback ? cf->fallback.port : cf->upstream.port);
	int wrapper = fallback ? conf_fallback_is_wrapper(cf) :
	    conf_upstream_is_wrapper(cf);
	const char *ca = fallback ? cf->fallback.ca_file : cf->upstream.ca_file;
	const char *credfile = fallback && cf->fallback.credentials[0] ?
	    cf->fallback.credentials : cf->upstream.credentials;
	const char *region = fallback ? cf->fallback.region : cf->upstream.region;
	struct conf_credentials cred;
	struct addrinfo *res = NULL, *ai;
	struct conn c;
	SSL_CTX *ctx = NULL;
	char text[4096], why[256], line[1100];
	int code, rc = EX_UNAVAILABLE;

	memset(&c, 0, sizeof(c));
	c.fd = -1;
	c.timeout = timeout;
	c.out = out;
	memset(&cred, 0, sizeof(cred));
	if (host == NULL) {
		fprintf(out, "no fallback is configured (fallback.region or "
		    "fallback.host)\n");
		return EX_CONFIG;
	}
	fprintf(out, "checking %s %s:%d (%s)\n", fallback ? "the fallback" :
	    "upstream", host, port, wrapper ? "TLS Wrapper" : "STARTTLS");
	if (conf_credentials_load(credfile, &cred, why, sizeof(why)) == -1) {
		step(out, 0, "credentials: %s", why);
		return EX_CONFIG;
	}
	step(out, 1, "credentials read from %s (user %s)", credfile,
	    cred.username);
	if ((ctx = tls_context(ca, out)) == NULL) {
		rc = EX_CONFIG;
		goto out;
	}
	if ((code = netaddr_lookup(host, port, AF_UNSPEC, 0, &res)) != 0) {
		step(out, 0, "DNS: %s: %s", host, gai_strerror(code));
		advise(out, "check upstream.region (e.g. eu-west-1) or "
		    "upstream.host, and this host's resolver");
		goto out;
	}
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		char a[INET6_ADDRSTRLEN] = "?";

		getnameinfo(ai->ai_addr, ai->ai_addrlen, a, sizeof(a), NULL, 0,
		    NI_NUMERICHOST);
		if (connect_to(&c, ai, why, sizeof(why)) == 0) {
			step(out, 1, "TCP connected to %s port %d", a, port);
			break;
		}
		step(out, 0, "TCP %s port %d: %s", a, port, why);
	}
	if (c.fd == -1) {
		if (port == 25)
			advise(out, "EC2 throttles or blocks outbound port 25: "
			    "use upstream.port = 587 (or 2587, or 465/2465 "
			    "with TLS Wrapper)");
		else
			advise(out, "a firewall or security group may block "
			    "this port; SES listens on 25, 587, 2587 "
			    "(STARTTLS) and 465, 2465 (TLS Wrapper)");
		goto out;
	}
	if (wrapper && start_tls(&c, ctx, host) == -1) {
		advise(out, "if the server speaks plain SMTP first (ports 25, "
		    "587, 2587), set upstream.tls = \"starttls\"");
		rc = EX_PROTOCOL;
		goto out;
	}
	if ((code = reply(&c, text, sizeof(text))) != 220) {
		step(out, 0, "banner: %s", code == -1 ? "no greeting" : text);
		if (code == -1 && wrapper == 0 && (port == 465 || port == 2465))
			advise(out, "ports 465 and 2465 speak TLS Wrapper: set "
			    "upstream.tls = \"wrapper\"");
		else if (code == -1 && wrapper)
			advise(out, "ports 25, 587 and 2587 speak STARTTLS: "
			    "set upstream.tls = \"starttls\"");
		goto out;
	}
	step(out, 1, "banner: %s", text);
	snprintf(line, sizeof(line), "EHLO %s", cf->hostname[0] ?
	    cf->hostname : "localhost");
	if ((code = command(&c, line, text, sizeof(text))) != 250) {
		step(out, 0, "EHLO: %s", code == -1 ? "no reply" : text);
		goto out;
	}
	step(out, 1, "EHLO accepted");
	print_caps(out, &c.last);
	if (!wrapper) {
		if (!upstream_reply_has_keyword(&c.last, "STARTTLS", NULL)) {
			step(out, 0, "the server does not offer STARTTLS; "
			    "sesrelay never sends credentials in the clear");
			rc = EX_PROTOCOL;
			goto out;
		}
		if ((code = command(&c, "STARTTLS", text, sizeof(text))) !=
		    220) {
			step(out, 0, "STARTTLS: %s", text);
			goto out;
		}
		c.len = 0;	/* nothing read before TLS counts */
		if (start_tls(&c, ctx, host) == -1) {
			rc = EX_PROTOCOL;
			goto out;
		}
		if ((code = command(&c, line, text, sizeof(text))) != 250) {
			step(out, 0, "EHLO after TLS: %s", text);
			goto out;
		}
		step(out, 1, "EHLO after TLS accepted");
		print_caps(out, &c.last);
	}
	{
		char *cmd = upstream_auth_plain(cred.username, cred.password);

		code = command(&c, cmd, text, sizeof(text));
		explicit_bzero(cmd, strlen(cmd));
		free(cmd);
	}
	if (code != 235) {
		step(out, 0, "AUTH: %s", code == -1 ? "no reply" : text);
		if (code == 535 || code == 530)
			advise(out, check_auth_advice(cred.username,
			    cred.password, region[0] ? region : "?", host));
		rc = code == 535 || code == 530 ? EX_NOPERM : EX_UNAVAILABLE;
		goto out;
	}
	step(out, 1, "AUTH PLAIN accepted: %s", text);
	(void)command(&c, "QUIT", text, sizeof(text));
	fprintf(out, "all good: sesrelayd can send through %s\n", host);
	rc = 0;
out:
	if (c.ssl != NULL)
		SSL_free(c.ssl);
	if (c.fd != -1)
		close(c.fd);
	if (res != NULL)
		freeaddrinfo(res);
	SSL_CTX_free(ctx);
	conf_credentials_clear(&cred);
	return rc;
}
