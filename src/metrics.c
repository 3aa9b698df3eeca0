/*
 * metrics.c: the Prometheus metrics endpoint (see metrics.h).
 *
 * Owns an evhttp server and nothing else: every scrape renders the
 * global `stats` and a fresh struct control_status from the daemon's
 * callback; no state is kept between scrapes.  Wire format: the text
 * exposition format 0.0.4, one "# HELP" and one "# TYPE" line before
 * each family, label values escaped (\\, \" and \n), no timestamps.
 *
 * The families, all prefixed "sesrelay_":
 *
 *   counters (from stats.h)
 *     messages_accepted_total         messages given 250 at end of DATA
 *     messages_refused_total          messages refused at end of DATA
 *     recipients_delivered_total      recipients SES accepted (250)
 *     recipients_deferred_total       recipients deferred (4xx, network)
 *     recipients_failed_total         recipients failed (5xx, expiry)
 *     recipients_expired_total        of those, by max_queue_time
 *     bounces_total                   bounce messages queued
 *     upstream_connections_total      connections opened to SES
 *     ses_replies_total{class=...}    SES replies by class, one series per
 *                                     class of ses_reply (0 included)
 *   gauges (from struct control_status)
 *     queue_messages                  messages in the queue
 *     queue_ready_messages            of those, due for delivery now
 *     queue_held_messages             of those, on hold
 *     queue_oldest_age_seconds        age of the oldest (0 when empty)
 *     queue_indexing                  1 while the queue is indexed at start
 *     upstream_sessions               SES sessions open
 *     upstream_sessions_allowed       sessions allowed now
 *     upstream_rate_recipients_per_second             sending rate now
 *     upstream_rate_configured_recipients_per_second  upstream.rate
 *     upstream_quota_paused           1 while the daily quota is spent
 *     upstream_backing_off            1 while backing off after errors
 *     upstream_fallback_active        1 while using the fallback host
 *     upstream_info{host=...}         always 1; the SES host in use
 *     account_max_24h_send, account_sent_last_24h, account_max_send_rate,
 *     account_sending_enabled, account_paused
 *                                     the account's limits (GetAccount),
 *                                     once read where API credentials exist
 *     start_time_seconds              when the daemon started (epoch)
 *   fleet (only with fleet.store set; from struct fleet_status)
 *     fleet_shared                    1 sharing through the store, 0 alone
 *     fleet_rate_recipients_per_second  the fleet's rate now (alone: the
 *                                     host's upstream.rate / fleet.hosts)
 *     fleet_hosts                     hosts seen in the last 10 s
 *     fleet_recipients_24h            the fleet's rolling 24-hour count
 *     fleet_quota_paused              1 while the fleet's quota is spent
 *     fleet_leased_tokens_total       tokens leased to this host (counter)
 *     fleet_store_requests_total      round trips to the store (counter)
 *   histogram (from stats.h)
 *     delivery_latency_seconds        accept to SES 250, per recipient:
 *                                     _bucket{le=...} cumulative, up to
 *                                     le="+Inf"; _sum; _count
 *
 * The HTTP side answers GET and HEAD /metrics (HEAD because HTTP says a
 * server that has GET has HEAD), 404 for any other path, 405 for any
 * other method; request headers, bodies and idle time are all bounded.
 */
#include "config.h"

#include <sys/socket.h>

#include <netinet/in.h>

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>

#include "control.h"
#include "account.h"
#include "metrics.h"
#include "netaddr.h"
#include "stats.h"

#define METRICS_MAX_HEADERS	8192	/* bytes; a scrape sends ~300 */
#define METRICS_MAX_BODY	1024	/* bytes; a scrape has none */
#define METRICS_TIMEOUT		10	/* seconds, read or write */

/* ---- the exposition ---- */

static const struct counter {
	const char			*name;
	const char			*help;
	const unsigned long long	*value;
} counters[] = {
	{ "sesrelay_messages_accepted_total",
	  "Messages accepted (250 given at the end of DATA).",
	  &stats.accepted },
	{ "sesrelay_messages_refused_total",
	  "Messages refused at the end of DATA.", &stats.refused },
	{ "sesrelay_recipients_delivered_total",
	  "Recipients SES accepted with 250.", &stats.delivered },
	{ "sesrelay_recipients_deferred_total",
	  "Recipient deliveries deferred (4xx reply or network error).",
	  &stats.deferred },
	{ "sesrelay_recipients_failed_total",
	  "Recipients failed for good (5xx reply or expiry).", &stats.failed },
	{ "sesrelay_recipients_expired_total",
	  "Recipients failed because they outlived max_queue_time.",
	  &stats.expired },
	{ "sesrelay_bounces_total", "Bounce messages queued.",
	  &stats.bounced },
	{ "sesrelay_upstream_connections_total",
	  "Connections opened to the SES SMTP endpoint.",
	  &stats.connections },
};

/* "# HELP" and "# TYPE" of a family (help texts are ours: no escapes). */
static void
family(FILE *fp, const char *name, const char *type, const char *help)
{
	fprintf(fp, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A sample value: shortest %g that reads back exactly, or +Inf/NaN. */
static void
put_double(FILE *fp, double v)
{
	char buf[40];

	if (isnan(v)) {
		fputs("NaN", fp);
		return;
	}
	if (isinf(v)) {
		fputs(v > 0 ? "+Inf" : "-Inf", fp);
		return;
	}
	snprintf(buf, sizeof(buf), "%.15g", v);
	if (strtod(buf, NULL) != v)
		snprintf(buf, sizeof(buf), "%.17g", v);
	fputs(buf, fp);
}

/* A label value, quoted, with \, " and newline escaped. */
static void
put_label_value(FILE *fp, const char *s)
{
	fputc('"', fp);
	for (; *s != '\0'; s++) {
		if (*s == '\\' || *s == '"')
			fprintf(fp, "\\%c", *s);
		else if (*s == '\n')
			fputs("\\n", fp);
		else
			fputc(*s, fp);
	}
	fputc('"', fp);
}

/* The counters, the SES replies by class included. */
static void
render_counters(FILE *fp)
{
	const char *replies = "sesrelay_ses_replies_total";

	for (size_t i = 0; i < sizeof(counters) / sizeof(counters[0]); i++) {
		family(fp, counters[i].name, "counter", counters[i].help);
		fprintf(fp, "%s %llu\n", counters[i].name, *counters[i].value);
	}
	family(fp, replies, "counter", "Replies from SES by class "
	    "(ok, rate_throttle, daily_quota, ...; network and protocol "
	    "are failures without a usable reply).");
	for (int i = 0; i < STATS_NACTIONS; i++) {
		fprintf(fp, "%s{class=", replies);
		put_label_value(fp, stats_action_name(i));
		fprintf(fp, "} %llu\n", stats.replies[i]);
	}
}

/* The account's limits (GetAccount), once read. */
static void
render_account(FILE *fp, const struct account_view *a)
{
	const struct {
		const char	*name;
		const char	*help;
		double		 value;
	} g[] = {
		{ "sesrelay_account_max_24h_send", "The account's 24-hour "
		  "sending quota in recipients (GetAccount; -1: unlimited).",
		  a ? a->max_24h : 0 },
		{ "sesrelay_account_sent_last_24h", "Recipients sent in the last "
		  "24 hours: SES's count at the last read plus what was "
		  "delivered since.", a ? a->sent_24h + a->sent_since : 0 },
		{ "sesrelay_account_max_send_rate", "The account's maximum send "
		  "rate, recipients per second (GetAccount).",
		  a ? a->max_rate : 0 },
		{ "sesrelay_account_sending_enabled", "1 while SES has sending "
		  "enabled for the account.", a ? a->sending_enabled : 0 },
		{ "sesrelay_account_paused", "1 while the account's state holds "
		  "sending (quota nearly spent, sending disabled, shut down).",
		  a ? a->hold != ACCOUNT_OK : 0 },
	};

	if (a == NULL || !a->known)
		return;
	for (size_t i = 0; i < sizeof(g) / sizeof(g[0]); i++) {
		family(fp, g[i].name, "gauge", g[i].help);
		fprintf(fp, "%s ", g[i].name);
		put_double(fp, g[i].value);
		fputc('\n', fp);
	}
}

/* The gauges, from what the daemon reports. */
static void
render_gauges(FILE *fp, const struct control_status *st)
{
	const struct {
		const char	*name;
		const char	*help;
		double		 value;
	} g[] = {
		{ "sesrelay_queue_messages", "Messages in the queue.",
		  (double)st->queued },
		{ "sesrelay_queue_ready_messages",
		  "Queued messages due for delivery now.", (double)st->ready },
		{ "sesrelay_queue_held_messages", "Queued messages on hold.",
		  (double)st->held },
		{ "sesrelay_queue_oldest_age_seconds",
		  "Age of the oldest queued message (0 when the queue is "
		  "empty).", (double)st->oldest_age },
		{ "sesrelay_queue_indexing",
		  "1 while the queue is still being indexed after the start "
		  "(the queue gauges count what is indexed so far).",
		  st->indexing != 0 },
		{ "sesrelay_upstream_sessions", "SES sessions open.",
		  st->sessions },
		{ "sesrelay_upstream_sessions_allowed",
		  "SES sessions allowed now.", st->max_sessions },
		{ "sesrelay_upstream_rate_recipients_per_second",
		  "Recipients per second sent to SES now.", st->rate },
		{ "sesrelay_upstream_rate_configured_recipients_per_second",
		  "The configured sending rate (upstream.rate).",
		  st->rate_configured },
		{ "sesrelay_upstream_quota_paused",
		  "1 while sending is paused because the SES daily quota is "
		  "spent.", st->quota_paused != 0 },
		{ "sesrelay_upstream_backing_off",
		  "1 while backing off after SES errors.",
		  st->backing_off != 0 },
		{ "sesrelay_upstream_fallback_active",
		  "1 while the fallback SES host is in use.",
		  st->fallback_active != 0 },
		{ "sesrelay_start_time_seconds",
		  "Start time of the daemon, seconds since the epoch.",
		  (double)stats.started },
	};

	for (size_t i = 0; i < sizeof(g) / sizeof(g[0]); i++) {
		family(fp, g[i].name, "gauge", g[i].help);
		fprintf(fp, "%s ", g[i].name);
		put_double(fp, g[i].value);
		fputc('\n', fp);
	}
	family(fp, "sesrelay_upstream_info", "gauge",
	    "Always 1; the host label is the SES endpoint in use.");
	fputs("sesrelay_upstream_info{host=", fp);
	put_label_value(fp, st->upstream != NULL ? st->upstream : "");
	fputs("} 1\n", fp);
	render_account(fp, st->account);
}

/* The fleet's series, with fleet.store set. */
static void
render_fleet(FILE *fp, const struct fleet_status *f)
{
	const struct {
		const char	*name;
		const char	*type;
		const char	*help;
		double		 value;
	} g[] = {
		{ "sesrelay_fleet_shared", "gauge", "1 while the rate and quota "
		  "are shared through the fleet store; 0 alone (fallback).",
		  f->shared },
		{ "sesrelay_fleet_rate_recipients_per_second", "gauge",
		  "The fleet's rate now (alone: this host's share).", f->rate },
		{ "sesrelay_fleet_hosts", "gauge",
		  "Hosts of the fleet seen in the last 10 seconds.", f->hosts },
		{ "sesrelay_fleet_recipients_24h", "gauge",
		  "Recipients the fleet sent in the last 24 hours.",
		  f->count24h < 0 ? 0 : (double)f->count24h },
		{ "sesrelay_fleet_quota_paused", "gauge",
		  "1 while the fleet's daily quota is exceeded.", f->paused },
		{ "sesrelay_fleet_leased_tokens_total", "counter",
		  "Tokens (recipients) leased to this host.",
		  (double)f->leased },
		{ "sesrelay_fleet_store_requests_total", "counter",
		  "Requests to the fleet store.", (double)f->requests },
	};

	if (f->state == NULL || strcmp(f->state, "off") == 0)
		return;
	for (size_t i = 0; i < sizeof(g) / sizeof(g[0]); i++) {
		family(fp, g[i].name, g[i].type, g[i].help);
		fprintf(fp, "%s ", g[i].name);
		put_double(fp, g[i].value);
		fputc('\n', fp);
	}
}

/*
 * The latency histogram.  stats keeps one count per bucket; the format
 * wants cumulative counts.  _count is the running total rather than
 * stats.latency_count so that it always equals the +Inf bucket, as the
 * format requires (stats_latency() keeps the two equal anyway).
 */
static void
render_histogram(FILE *fp)
{
	const char *name = "sesrelay_delivery_latency_seconds";
	unsigned long long total = 0;

	family(fp, name, "histogram", "Time from accepting a message to "
	    "SES's 250, per recipient.");
	for (int i = 0; i <= STATS_NBUCKETS; i++) {
		total += stats.latency[i];
		fprintf(fp, "%s_bucket{le=\"", name);
		put_double(fp, i < STATS_NBUCKETS ? stats_buckets[i] :
		    INFINITY);
		fprintf(fp, "\"} %llu\n", total);
	}
	fprintf(fp, "%s_sum ", name);
	put_double(fp, stats.latency_sum);
	fprintf(fp, "\n%s_count %llu\n", name, total);
}

void
metrics_render(FILE *fp, const struct control_status *st, time_t now)
{
	render_counters(fp);
	render_gauges(fp, st);
	render_fleet(fp, &st->fleet);
	render_histogram(fp);
}

/* ---- the HTTP server ---- */

struct metrics {
	struct evhttp			*http;
	struct evhttp_bound_socket	*bound;
	void	(*status)(void *, struct control_status *);
	void				*arg;
};

/*
 * Send a reply of type with body.  evhttp 2.1 would send the body after
 * HEAD too: HEAD gets only the Content-Length the GET would have had.
 */
static void
reply(struct evhttp_request *req, int code, const char *reason,
    const char *type, const char *body, size_t len)
{
	struct evkeyvalq *hdrs = evhttp_request_get_output_headers(req);
	char clen[32];

	evhttp_add_header(hdrs, "Content-Type", type);
	if (evhttp_request_get_command(req) == EVHTTP_REQ_HEAD) {
		snprintf(clen, sizeof(clen), "%zu", len);
		evhttp_add_header(hdrs, "Content-Length", clen);
	} else if (evbuffer_add(evhttp_request_get_output_buffer(req), body,
	    len) == -1) {
		evhttp_send_error(req, HTTP_INTERNAL, NULL);
		return;
	}
	evhttp_send_reply(req, code, reason, NULL);
}

/* A short plain-text reply (errors). */
static void
reply_text(struct evhttp_request *req, int code, const char *reason,
    const char *body)
{
	reply(req, code, reason, "text/plain; charset=utf-8", body,
	    strlen(body));
}

/* Render one scrape, with a fresh status from the daemon. */
static void
scrape(struct metrics *m, struct evhttp_request *req)
{
	struct control_status st;
	char *body = NULL;
	size_t len = 0;
	FILE *fp;

	memset(&st, 0, sizeof(st));
	if (m->status != NULL)
		m->status(m->arg, &st);
	if ((fp = open_memstream(&body, &len)) == NULL) {
		reply_text(req, HTTP_INTERNAL, "Internal Server Error",
		    "out of memory\n");
		return;
	}
	metrics_render(fp, &st, time(NULL));
	if (fclose(fp) != 0)
		reply_text(req, HTTP_INTERNAL, "Internal Server Error",
		    "out of memory\n");
	else
		reply(req, HTTP_OK, "OK", METRICS_CONTENT_TYPE, body, len);
	free(body);
}

/* Every request: /metrics or 404; GET/HEAD or 405. */
static void
request_cb(struct evhttp_request *req, void *arg)
{
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *path = uri != NULL ? evhttp_uri_get_path(uri) : NULL;
	enum evhttp_cmd_type cmd = evhttp_request_get_command(req);

	if (path == NULL || strcmp(path, "/metrics") != 0)
		reply_text(req, HTTP_NOTFOUND, "Not Found",
		    "not found: the metrics are at /metrics\n");
	else if (cmd != EVHTTP_REQ_GET && cmd != EVHTTP_REQ_HEAD) {
		evhttp_add_header(evhttp_request_get_output_headers(req),
		    "Allow", "GET, HEAD");
		reply_text(req, 405, "Method Not Allowed",
		    "method not allowed: use GET\n");
	} else
		scrape(arg, req);
}

/*
 * Split "ADDR:PORT" or "[ADDR6]:PORT" into host (numeric, checked with
 * netaddr_is_numeric: never a DNS lookup) and port.
 */
static int
parse_hostport(const char *hp, char *host, size_t hostlen,
    unsigned short *port, char *err, size_t errlen)
{
	const char *h = hp, *colon;
	unsigned long p;
	char *end;
	int bracket = *hp == '[';

	if (bracket) {
		h++;
		if ((colon = strchr(h, ']')) == NULL || colon[1] != ':')
			goto syntax;
	} else if ((colon = strrchr(hp, ':')) == NULL ||
	    memchr(hp, ':', (size_t)(colon - hp)) != NULL)
		goto syntax;	/* no port, or IPv6 without brackets */
	if (colon == h || (size_t)(colon - h) >= hostlen)
		goto syntax;
	memcpy(host, h, (size_t)(colon - h));
	host[colon - h] = '\0';
	colon += bracket ? 2 : 1;
	p = strtoul(colon, &end, 10);
	if (*colon < '0' || *colon > '9' || *end != '\0' || p > 65535) {
		snprintf(err, errlen, "%s: bad port \"%s\"", hp, colon);
		return -1;
	}
	*port = (unsigned short)p;
	if (!netaddr_is_numeric(host, bracket ? AF_INET6 : AF_INET)) {
		snprintf(err, errlen, "%s: \"%s\" is not a numeric %s address",
		    hp, host, bracket ? "IPv6" : "IPv4");
		return -1;
	}
	return 0;
syntax:
	snprintf(err, errlen, "%s: not a numeric address and port "
	    "(like 127.0.0.1:9187 or [::1]:9187)", hp);
	return -1;
}

struct metrics *
metrics_new(struct event_base *base, const char *hostport,
    void (*status)(void *, struct control_status *), void *arg,
    char *err, size_t errlen)
{
	struct metrics *m;
	char host[64];
	unsigned short port;

	if (parse_hostport(hostport, host, sizeof(host), &port, err,
	    errlen) == -1)
		return NULL;
	if ((m = calloc(1, sizeof(*m))) == NULL ||
	    (m->http = evhttp_new(base)) == NULL)
		abort();
	m->status = status;
	m->arg = arg;
	evhttp_set_max_headers_size(m->http, METRICS_MAX_HEADERS);
	evhttp_set_max_body_size(m->http, METRICS_MAX_BODY);
	evhttp_set_timeout(m->http, METRICS_TIMEOUT);
	/* Let every method evhttp knows reach request_cb, for a 405
	 * rather than evhttp's own 501. */
	evhttp_set_allowed_methods(m->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST |
	    EVHTTP_REQ_HEAD | EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
	    EVHTTP_REQ_OPTIONS | EVHTTP_REQ_TRACE | EVHTTP_REQ_CONNECT |
	    EVHTTP_REQ_PATCH);
	evhttp_set_gencb(m->http, request_cb, m);
	errno = 0;
	if ((m->bound = evhttp_bind_socket_with_handle(m->http, host,
	    port)) == NULL) {
		snprintf(err, errlen, "%s: %s", hostport, errno != 0 ?
		    strerror(errno) : "cannot listen");
		evhttp_free(m->http);
		free(m);
		return NULL;
	}
	return m;
}

int
metrics_port(const struct metrics *m)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	evutil_socket_t fd = evhttp_bound_socket_get_fd(m->bound);

	if (getsockname(fd, (struct sockaddr *)&ss, &len) == -1)
		return -1;
	if (ss.ss_family == AF_INET)
		return ntohs(((struct sockaddr_in *)&ss)->sin_port);
	if (ss.ss_family == AF_INET6)
		return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	return -1;
}

void
metrics_free(struct metrics *m)
{
	if (m == NULL)
		return;
	evhttp_free(m->http);
	free(m);
}
