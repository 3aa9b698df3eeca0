/*
 * conf.c: the configuration key table, the libconfig loader and checks.
 *
 * Invariant: every key a user can write is one row of conf_keys[]; the
 * loader refuses anything else, naming file, line and key.  Defaults are
 * written as text in the table and parsed by the same code as the file,
 * so the -t dump and the man page show exactly what is used.
 */
#include "config.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/http.h>
#include <libconfig.h>

#include "conf.h"
#include "endpoint.h"
#include "fleet.h"
#include "ses_headers.h"
#include "netaddr.h"
#include "smtp_parse.h"

enum conf_type { T_INT, T_FLOAT, T_STRING, T_STRLIST, T_INTLIST, T_BOOL };

struct conf_key;
typedef int (*conf_check_fn)(const struct conf *, const struct conf_key *,
    char *, size_t);

struct conf_key {
	const char	*path;
	enum conf_type	 type;
	size_t		 off;
	double		 min, max;	/* numbers, or each list element */
	const char	*def;		/* default, as it would be written */
	conf_check_fn	 check;
	const char	*help;
};

static int check_listen_tcp(const struct conf *, const struct conf_key *,
    char *, size_t);
static int check_abs_path(const struct conf *, const struct conf_key *,
    char *, size_t);
static int check_abs_path_or_empty(const struct conf *,
    const struct conf_key *, char *, size_t);
static int check_allow(const struct conf *, const struct conf_key *,
    char *, size_t);
static int check_region(const struct conf *, const struct conf_key *,
    char *, size_t);
static int is_host_name(const char *);
static int check_hostname(const struct conf *, const struct conf_key *,
    char *, size_t);
static int check_tls(const struct conf *, const struct conf_key *,
    char *, size_t);
static int check_ses_set(const struct conf *, const struct conf_key *,
    char *, size_t);
static int check_ses_tags(const struct conf *, const struct conf_key *,
    char *, size_t);
static int check_fallback_region(const struct conf *,
    const struct conf_key *, char *, size_t);
static int check_metrics_listen(const struct conf *,
    const struct conf_key *, char *, size_t);
static int check_bare_lf(const struct conf *, const struct conf_key *,
    char *, size_t);
static int check_nonempty_list(const struct conf *, const struct conf_key *,
    char *, size_t);
static int check_address_or_empty(const struct conf *,
    const struct conf_key *, char *, size_t);
static int check_fleet_store(const struct conf *, const struct conf_key *,
    char *, size_t);
static int check_fleet_name(const struct conf *, const struct conf_key *,
    char *, size_t);
static int check_transport(const struct conf *, const struct conf_key *,
    char *, size_t);
static int check_auth(const struct conf *, const struct conf_key *,
    char *, size_t);
static int check_url_or_empty(const struct conf *, const struct conf_key *,
    char *, size_t);
static int check_rate(const struct conf *, const struct conf_key *,
    char *, size_t);

#define OFF(f) offsetof(struct conf, f)

/* The table.  Order is the order of the -t dump and of sesrelay.conf(5). */
static const struct conf_key conf_keys[] = {
	{ "hostname", T_STRING, OFF(hostname), 0, 0, "", check_hostname,
	  "Name used in the SMTP greeting and upstream EHLO; empty: the mail name, else the system host name." },
	{ "mailname", T_STRING, OFF(mailname), 0, 0, "/etc/mailname",
	  check_abs_path_or_empty,
	  "File whose first line is the host's mail name, as on Debian: local senders without a domain are qualified with it, and it is the name when hostname is empty; empty or no such file: none." },
	{ "user", T_STRING, OFF(user), 0, 0, "sesrelay", NULL,
	  "Unprivileged user sesrelayd becomes after binding when started as root; empty: stay root (not recommended)." },
	{ "listen.tcp", T_STRLIST, OFF(listen.tcp), 0, 0,
	  "127.0.0.1:25,[::1]:25", check_listen_tcp,
	  "TCP addresses to accept SMTP on, as \"ADDR:PORT\" or \"[V6ADDR]:PORT\"; numeric only." },
	{ "listen.unix", T_STRING, OFF(listen.unix_path), 0, 0,
	  "/run/sesrelay/smtp.sock", check_abs_path_or_empty,
	  "Unix socket for SMTP, used by sesrelay-sendmail; empty: none." },
	{ "listen.allow", T_STRLIST, OFF(listen.allow), 0, 0, "", check_allow,
	  "Networks (\"10.0.0.0/8\", \"2001:db8::/32\") allowed besides loopback and the Unix socket." },
	{ "spool", T_STRING, OFF(spool), 0, 0, "/var/spool/sesrelay",
	  check_abs_path, "Spool directory: the only copy of every accepted message." },
	{ "control.socket", T_STRING, OFF(control.socket), 0, 0,
	  "/run/sesrelay/control.sock", check_abs_path,
	  "Unix socket of sesrelayctl and mailq; anyone may read the queue, only root and the daemon's group may change it." },
	{ "metrics.listen", T_STRING, OFF(metrics.listen), 0, 0, "",
	  check_metrics_listen,
	  "Prometheus metrics over HTTP (GET /metrics) on this \"ADDR:PORT\", e.g. \"127.0.0.1:9187\"; empty: off." },
	{ "sendmail.trusted_users", T_STRLIST, OFF(sendmail.trusted_users), 0, 0,
	  "root", NULL,
	  "Local users whose sendmail -f (or MAIL FROM on the Unix socket) is taken as is; others send as user@localhost." },
	{ "spool_min_free", T_INT, OFF(spool_min_free), 0, 1099511627776.0,
	  "104857600", NULL,
	  "Bytes that must stay free in the spool's file system; below it (plus the message's declared size) new mail gets 452." },
	{ "spool_min_free_inodes", T_INT, OFF(spool_min_free_inodes), 0,
	  1000000000, "1000", NULL,
	  "Inodes that must stay free in the spool's file system; below it new mail gets 452." },
	{ "max_message_size", T_INT, OFF(max_message_size), 1024, 41943040,
	  "41943040", NULL,
	  "Largest message accepted, in bytes (SES's SMTP limit is 40 MiB)." },
	{ "smtp.max_recipients", T_INT, OFF(smtp.max_recipients), 1, 100000,
	  "1000", NULL, "Most recipients accepted for one message." },
	{ "smtp.max_line_length", T_INT, OFF(smtp.max_line_length), 512, 65536,
	  "2048", NULL, "Longest SMTP command line accepted, in bytes with CRLF." },
	{ "smtp.timeout", T_INT, OFF(smtp.timeout), 10, 3600, "300", NULL,
	  "Seconds a client may take to send a command before the session is closed." },
	{ "smtp.greeting_timeout", T_INT, OFF(smtp.greeting_timeout), 5, 3600,
	  "60", NULL, "Seconds a new client may take to send its first command." },
	{ "smtp.data_timeout", T_INT, OFF(smtp.data_timeout), 10, 3600, "600",
	  NULL, "Seconds a client may stay silent while sending a message body." },
	{ "smtp.max_clients", T_INT, OFF(smtp.max_clients), 1, 100000, "100",
	  NULL, "Concurrent SMTP sessions; one more is answered 421 and closed.  Must fit the descriptor limit (2 a client), else refused." },
	{ "smtp.max_commands", T_INT, OFF(smtp.max_commands), 10, 10000000,
	  "10000", NULL, "Commands one session may send before it is closed with 421." },
	{ "smtp.max_header_size", T_INT, OFF(smtp.max_header_size), 1024,
	  10485760, "102400", NULL,
	  "Largest message header accepted, in bytes; a larger one gets 552 5.6.0." },
	{ "smtp.max_header_line_length", T_INT,
	  OFF(smtp.max_header_line_length), 78, 65536, "998", NULL,
	  "Longest header line accepted, in characters without CRLF (RFC 5322: 998); a longer one is folded at white space, or gets 554 5.6.0 when it has none." },
	{ "smtp.bare_lf", T_STRING, OFF(smtp.bare_lf), 0, 0, "reject",
	  check_bare_lf,
	  "A line ended by LF alone in message data: \"reject\" answers 521 5.5.2 and closes (RFC 5321 2.3.8); \"normalize\" stores it as CRLF." },
	{ "smtp.strict_8bitmime", T_BOOL, OFF(smtp.strict_8bitmime), 0, 0,
	  "false", NULL,
	  "Refuse 8-bit message data sent without BODY=8BITMIME (554 5.6.0); false: accept it, as most MTAs do." },
	{ "upstream.region", T_STRING, OFF(upstream.region), 0, 0, "us-east-1",
	  check_region, "SES region; the host is email-smtp.REGION.amazonaws.com." },
	{ "upstream.host", T_STRING, OFF(upstream.host), 0, 0, "", check_hostname,
	  "SES SMTP host name; overrides the region's.  Certificates are verified against it." },
	{ "upstream.port", T_INT, OFF(upstream.port), 1, 65535, "587", NULL,
	  "Port: 587, 2587, 25 speak STARTTLS; 465, 2465 TLS Wrapper." },
	{ "upstream.tls", T_STRING, OFF(upstream.tls), 0, 0, "", check_tls,
	  "\"starttls\" or \"wrapper\"; empty: follow the port." },
	{ "upstream.ca_file", T_STRING, OFF(upstream.ca_file), 0, 0, "",
	  check_abs_path_or_empty, "PEM file of trusted CAs; empty: the system's trust store." },
	{ "upstream.credentials", T_STRING, OFF(upstream.credentials), 0, 0,
	  "/etc/sesrelay/credentials", check_abs_path,
	  "File with username = \"...\"; password = \"...\"; mode 0600 or 0640." },
	{ "upstream.sessions", T_INT, OFF(upstream.sessions), 1, 64, "4", NULL,
	  "Concurrent upstream connections." },
	{ "upstream.recycle_after_messages", T_INT,
	  OFF(upstream.recycle_after_messages), 1, 100000, "100", NULL,
	  "Open a new connection after this many messages." },
	{ "upstream.recycle_after_seconds", T_INT,
	  OFF(upstream.recycle_after_seconds), 1, 86400, "60", NULL,
	  "... or after a connection is this many seconds old." },
	{ "upstream.idle_timeout", T_INT, OFF(upstream.idle_timeout), 1, 9, "5",
	  NULL, "Close a connection idle this many seconds (SES drops at ~10)." },
	{ "upstream.timeout", T_INT, OFF(upstream.timeout), 5, 3600, "60", NULL,
	  "Seconds to wait for a connection, a TLS handshake or a reply." },
	{ "upstream.quota_probe_interval", T_INT,
	  OFF(upstream.quota_probe_interval), 1, 86400, "600", NULL,
	  "Seconds between tries while SES's daily quota is exceeded (sending is paused, nothing bounces)." },
	{ "upstream.rate", T_FLOAT, OFF(upstream.rate), 0, 100000, "14.0",
	  check_rate, "Recipients per second sent upstream (SES's maximum send rate); 0: the account's MaxSendRate (read with GetAccount), less 10 %." },
	{ "upstream.transport", T_STRING, OFF(upstream.transport), 0, 0, "smtp",
	  check_transport,
	  "\"smtp\": SES's SMTP interface; \"api\": SES v2 SendEmail with the raw message, over HTTPS." },
	{ "upstream.auth", T_STRING, OFF(upstream.auth), 0, 0, "file",
	  check_auth,
	  "Where the credentials come from: \"file\" (upstream.credentials), \"instance-role\" (IMDSv2; api only) or \"environment\" (AWS_ACCESS_KEY_ID, ...)." },
	{ "upstream.api_endpoint", T_STRING, OFF(upstream.api_endpoint), 0, 0,
	  "", check_url_or_empty,
	  "SES API URL, \"https://HOST[:PORT]\"; empty: https://email.REGION.amazonaws.com." },
	{ "upstream.imds_endpoint", T_STRING, OFF(upstream.imds_endpoint), 0, 0,
	  "http://169.254.169.254", check_url_or_empty,
	  "Instance metadata service (IMDSv2) URL, for auth = \"instance-role\"." },
	{ "upstream.account_check_interval", T_INT,
	  OFF(upstream.account_check_interval), 0, 86400, "60", NULL,
	  "Seconds between GetAccount reads (send rate, 24-hour quota, sending enabled) where API credentials exist; 0: never." },
	{ "cleanup.headers", T_BOOL, OFF(cleanup.headers), 0, 0, "true", NULL,
	  "Add Date:, Message-ID: and, without To: or Cc:, \"To: undisclosed-recipients:;\" when missing." },
	{ "rewrite.sender", T_STRING, OFF(rewrite.sender), 0, 0, "",
	  check_address_or_empty,
	  "Verified address that replaces local senders (user, user@localhost, user@hostname), in the envelope and From:; empty: none." },
	{ "rewrite.admin", T_STRING, OFF(rewrite.admin), 0, 0, "",
	  check_address_or_empty,
	  "Address for local recipients without an alias (root, cron's mail); empty: they are refused." },
	{ "rewrite.aliases", T_STRING, OFF(rewrite.aliases), 0, 0, "",
	  check_abs_path_or_empty,
	  "aliases(5) file mapping local recipients to addresses, e.g. \"/etc/aliases\"; empty: none." },
	{ "rewrite.sender_map", T_STRING, OFF(rewrite.sender_map), 0, 0, "",
	  check_abs_path_or_empty,
	  "File of \"user: address\" lines: a local user's own verified sender; empty: none." },
	{ "rewrite.local_domains", T_STRLIST, OFF(rewrite.local_domains), 0, 0,
	  "", NULL,
	  "Domains that count as local besides localhost and the host name." },
	{ "fallback.region", T_STRING, OFF(fallback.region), 0, 0, "",
	  check_fallback_region,
	  "Second SES region, used while the first fails; empty (and no fallback.host): no fallback." },
	{ "fallback.host", T_STRING, OFF(fallback.host), 0, 0, "", check_hostname,
	  "SES SMTP host of the fallback; overrides fallback.region's." },
	{ "fallback.port", T_INT, OFF(fallback.port), 1, 65535, "587", NULL,
	  "Port of the fallback: 587, 2587, 25 STARTTLS; 465, 2465 TLS Wrapper." },
	{ "fallback.tls", T_STRING, OFF(fallback.tls), 0, 0, "", check_tls,
	  "\"starttls\" or \"wrapper\" for the fallback; empty: follow the port." },
	{ "fallback.ca_file", T_STRING, OFF(fallback.ca_file), 0, 0, "",
	  check_abs_path_or_empty, "PEM file of trusted CAs for the fallback; empty: the system's." },
	{ "fallback.credentials", T_STRING, OFF(fallback.credentials), 0, 0, "",
	  check_abs_path_or_empty,
	  "Credentials file for the fallback region (SMTP passwords are per region); empty: upstream.credentials." },
	{ "fallback.after", T_INT, OFF(fallback.after), 1, 86400, "120", NULL,
	  "Seconds the first upstream must have failed (no connection working) before the fallback is used." },
	{ "fallback.check_interval", T_INT, OFF(fallback.check_interval), 1,
	  86400, "60", NULL,
	  "While on the fallback, seconds between checks of the first upstream; the first that succeeds switches back." },
	{ "fallback.transport", T_STRING, OFF(fallback.transport), 0, 0, "",
	  check_transport,
	  "\"smtp\" or \"api\" for the fallback; empty: upstream.transport." },
	{ "fallback.auth", T_STRING, OFF(fallback.auth), 0, 0, "", check_auth,
	  "\"file\", \"instance-role\" or \"environment\" for the fallback; empty: upstream.auth." },
	{ "fallback.api_endpoint", T_STRING, OFF(fallback.api_endpoint), 0, 0,
	  "", check_url_or_empty,
	  "SES API URL of the fallback; empty: https://email.REGION.amazonaws.com of fallback.region." },
	{ "fallback.imds_endpoint", T_STRING, OFF(fallback.imds_endpoint), 0, 0,
	  "", check_url_or_empty,
	  "Instance metadata service URL for the fallback; empty: upstream.imds_endpoint." },
	{ "fallback.rate", T_FLOAT, OFF(fallback.rate), -1, 100000, "-1.0",
	  check_rate,
	  "Recipients per second while on the fallback; 0: its account's MaxSendRate less 10 %; -1: upstream.rate." },
	{ "fallback.account_check_interval", T_INT,
	  OFF(fallback.account_check_interval), 0, 86400, "60", NULL,
	  "Seconds between GetAccount reads of the fallback region; 0: never." },
	{ "ses.configuration_set", T_STRING, OFF(ses.configuration_set), 0, 0,
	  "", check_ses_set,
	  "SES configuration set for event publishing (X-SES-CONFIGURATION-SET), unless a message names its own; empty: none." },
	{ "ses.tags", T_STRLIST, OFF(ses.tags), 0, 0, "", check_ses_tags,
	  "SES message tags (X-SES-MESSAGE-TAGS) as \"name=value\", unless a message has its own." },
	{ "ses.sender_map", T_STRING, OFF(ses.sender_map), 0, 0, "",
	  check_abs_path_or_empty,
	  "File of \"sender-or-@domain: set [name=value ...]\" lines: a configuration set and tags per envelope sender; empty: none." },
	{ "bounce.sender", T_STRING, OFF(bounce.sender), 0, 0, "",
	  check_address_or_empty,
	  "Verified address bounces are sent from (SES refuses MAIL FROM:<>); empty: rewrite.sender; neither: failures are only logged." },
	{ "fleet.store", T_STRING, OFF(fleet.store), 0, 0, "", check_fleet_store,
	  "Store shared by the hosts of one SES account (Redis or Valkey): \"redis://HOST:PORT[/DB]\", \"rediss://HOST:PORT[/DB]\" (TLS, where hiredis has it) or \"unix:/path/to/redis.sock\"; upstream.rate is then the account's rate, shared by the fleet; empty: this host alone." },
	{ "fleet.name", T_STRING, OFF(fleet.name), 0, 0, "", check_fleet_name,
	  "Hosts with the same name share one rate and one daily quota; empty: the upstream host." },
	{ "fleet.hosts", T_INT, OFF(fleet.hosts), 1, 100000, "1", NULL,
	  "Expected number of hosts: while the store cannot be reached, each sends at upstream.rate / fleet.hosts." },
	{ "fleet.credentials", T_STRING, OFF(fleet.credentials), 0, 0, "",
	  check_abs_path_or_empty,
	  "File with password = \"...\"; and, for a Redis ACL user, username = \"...\"; mode 0600 or 0640; empty: no AUTH." },
	{ "retry.schedule", T_INTLIST, OFF(retry.schedule), 1, 86400,
	  "5,10,30,1200", check_nonempty_list,
	  "Seconds to wait before each retry of a deferred message; the last repeats." },
	{ "retry.max_queue_time", T_INT, OFF(retry.max_queue_time), 60, 31536000,
	  "432000", NULL, "Seconds a message may stay queued before it fails." },
	{ "retry.max_unknown_outcome_copies", T_INT,
	  OFF(retry.max_unknown_outcome_copies), 1, 100, "3", NULL,
	  "Copies of a message sent with an unknown outcome (connection lost after the final dot) before it is held for the operator instead of sent again." },
};

#define NKEYS (sizeof(conf_keys) / sizeof(conf_keys[0]))

void
conf_errf(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

static void *
field(struct conf *c, const struct conf_key *k)
{
	return (char *)c + k->off;
}

static const void *
cfield(const struct conf *c, const struct conf_key *k)
{
	return (const char *)c + k->off;
}

static void
strlist_free(struct conf_strlist *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

static void
strlist_add(struct conf_strlist *l, const char *s, size_t len)
{
	char **v = realloc(l->v, (l->n + 1) * sizeof(*v));

	if (v == NULL || (v[l->n] = strndup(s, len)) == NULL)
		abort();
	l->v = v;
	l->n++;
}

static void
intlist_add(struct conf_intlist *l, long long x)
{
	long long *v = realloc(l->v, (l->n + 1) * sizeof(*v));

	if (v == NULL)
		abort();
	v[l->n++] = x;
	l->v = v;
}

/* Set a key from its textual default. */
static void
set_default(struct conf *c, const struct conf_key *k)
{
	const char *p, *e;

	switch (k->type) {
	case T_INT:
		*(long long *)field(c, k) = strtoll(k->def, NULL, 10);
		break;
	case T_FLOAT:
		*(double *)field(c, k) = strtod(k->def, NULL);
		break;
	case T_BOOL:
		*(int *)field(c, k) = strcmp(k->def, "true") == 0;
		break;
	case T_STRING:
		if ((*(char **)field(c, k) = strdup(k->def)) == NULL)
			abort();
		break;
	case T_STRLIST:
	case T_INTLIST:
		for (p = k->def; *p != '\0'; p = *e ? e + 1 : e) {
			e = p + strcspn(p, ",");
			if (k->type == T_STRLIST)
				strlist_add(field(c, k), p, e - p);
			else
				intlist_add(field(c, k), strtoll(p, NULL, 10));
		}
		break;
	}
}

static void
clear_value(struct conf *c, const struct conf_key *k)
{
	switch (k->type) {
	case T_STRING:
		free(*(char **)field(c, k));
		*(char **)field(c, k) = NULL;
		break;
	case T_STRLIST:
		strlist_free(field(c, k));
		break;
	case T_INTLIST: {
		struct conf_intlist *l = field(c, k);
		free(l->v);
		l->v = NULL;
		l->n = 0;
		break;
	}
	default:
		break;
	}
}

/* Where the file set each key (line 0: the default), for later errors. */
struct conf_origin {
	int	 lines[NKEYS];
	char	*files[NKEYS];
};

void
conf_free(struct conf *c)
{
	if (c == NULL)
		return;
	for (size_t i = 0; i < NKEYS; i++)
		clear_value(c, &conf_keys[i]);
	if (c->origin != NULL)
		for (size_t i = 0; i < NKEYS; i++)
			free(c->origin->files[i]);
	free(c->origin);
	free(c->file);
	free(c);
}

static const struct conf_key *
find_key(const char *path)
{
	for (size_t i = 0; i < NKEYS; i++)
		if (strcmp(conf_keys[i].path, path) == 0)
			return &conf_keys[i];
	return NULL;
}

static int
is_group(const char *path)
{
	size_t len = strlen(path);

	for (size_t i = 0; i < NKEYS; i++)
		if (strncmp(conf_keys[i].path, path, len) == 0 &&
		    conf_keys[i].path[len] == '.')
			return 1;
	return 0;
}

static const char *
type_name(enum conf_type t)
{
	switch (t) {
	case T_INT:	return "an integer";
	case T_FLOAT:	return "a number";
	case T_STRING:	return "a string";
	case T_STRLIST:	return "a list of strings, [ \"...\", ... ]";
	case T_INTLIST:	return "a list of integers, [ 1, 2, ... ]";
	case T_BOOL:	return "true or false";
	}
	return "?";
}

static int
is_int_setting(const config_setting_t *s)
{
	int t = config_setting_type(s);

	return t == CONFIG_TYPE_INT || t == CONFIG_TYPE_INT64;
}

/* Range check of one number; err names the key. */
static int
check_range(const struct conf_key *k, double x, char *err, size_t errlen)
{
	if (x < k->min || x > k->max) {
		if (k->type == T_FLOAT)
			conf_errf(err, errlen, "value %g out of range (%g to %g)",
			    x, k->min, k->max);
		else
			conf_errf(err, errlen, "value %.0f out of range (%.0f to %.0f)",
			    x, k->min, k->max);
		return -1;
	}
	return 0;
}

/* Store one setting's value into c; -1 with err on a type or range error. */
static int
set_from_setting(struct conf *c, const struct conf_key *k,
    const config_setting_t *s, char *err, size_t errlen)
{
	int n, i;

	switch (k->type) {
	case T_INT:
		if (!is_int_setting(s))
			goto badtype;
		if (check_range(k, (double)config_setting_get_int64(s), err,
		    errlen) == -1)
			return -1;
		*(long long *)field(c, k) = config_setting_get_int64(s);
		return 0;
	case T_FLOAT:
		if (!is_int_setting(s) &&
		    config_setting_type(s) != CONFIG_TYPE_FLOAT)
			goto badtype;
		{
			double x = config_setting_type(s) == CONFIG_TYPE_FLOAT ?
			    config_setting_get_float(s) :
			    (double)config_setting_get_int64(s);
			if (check_range(k, x, err, errlen) == -1)
				return -1;
			*(double *)field(c, k) = x;
		}
		return 0;
	case T_BOOL:
		if (config_setting_type(s) != CONFIG_TYPE_BOOL)
			goto badtype;
		*(int *)field(c, k) = config_setting_get_bool(s);
		return 0;
	case T_STRING:
		if (config_setting_type(s) != CONFIG_TYPE_STRING)
			goto badtype;
		clear_value(c, k);
		if ((*(char **)field(c, k) =
		    strdup(config_setting_get_string(s))) == NULL)
			abort();
		return 0;
	case T_STRLIST:
	case T_INTLIST:
		if (config_setting_type(s) != CONFIG_TYPE_ARRAY &&
		    config_setting_type(s) != CONFIG_TYPE_LIST)
			goto badtype;
		clear_value(c, k);
		n = config_setting_length(s);
		for (i = 0; i < n; i++) {
			const config_setting_t *e = config_setting_get_elem(s, i);
			if (k->type == T_STRLIST) {
				const char *v;
				if (config_setting_type(e) != CONFIG_TYPE_STRING)
					goto badtype;
				v = config_setting_get_string(e);
				strlist_add(field(c, k), v, strlen(v));
			} else {
				if (!is_int_setting(e))
					goto badtype;
				if (check_range(k,
				    (double)config_setting_get_int64(e), err,
				    errlen) == -1)
					return -1;
				intlist_add(field(c, k),
				    config_setting_get_int64(e));
			}
		}
		return 0;
	}
badtype:
	conf_errf(err, errlen, "expects %s", type_name(k->type));
	return -1;
}

/*
 * Integer literals libconfig would wrap.  libconfig 1.5 reads an integer
 * without the L suffix as an int, and one outside INT_MIN..INT_MAX wraps
 * silently (5000000000 becomes 705032704, 0xFFFFFFFF becomes -1).  It
 * keeps no source text, so once the file has parsed, its text is scanned
 * here for such literals: the scan can assume the syntax is good.  Only
 * the names it passes matter (for the error's key), so it tracks just
 * the last name and the groups it is in.  A file named by @include is
 * scanned in its place, as libconfig reads it.
 */
#define LIT_INCLUDE_MAX	10	/* libconfig's own limit on nesting */

struct lit_scan {
	const char	*p;
	int		 line;
	int		 depth;
	int		 includes;	/* files nested, the first one too */
	char		 groups[8][64];
	char		 name[64];
};

/* Skip a comment or a string; 1 when one was skipped. */
static int
lit_skip(struct lit_scan *ls)
{
	const char *p = ls->p;

	if (*p == '#' || (p[0] == '/' && p[1] == '/'))
		p += strcspn(p, "\n");
	else if (p[0] == '/' && p[1] == '*') {
		for (p += 2; *p != '\0' && !(p[0] == '*' && p[1] == '/'); p++)
			ls->line += *p == '\n';
		p += *p != '\0' ? 2 : 0;
	} else if (*p == '"') {
		for (p++; *p != '\0' && *p != '"'; p++) {
			if (*p == '\\' && p[1] != '\0')
				p++;
			ls->line += *p == '\n';
		}
		p += *p != '\0';
	} else
		return 0;
	ls->p = p;
	return 1;
}

/* A name, or a group's opening or closing brace. */
static int
lit_name(struct lit_scan *ls)
{
	const char *p = ls->p;
	size_t n;

	if (isalpha((unsigned char)*p) || *p == '*') {
		n = strspn(p, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
		    "0123456789-_*");
		snprintf(ls->name, sizeof(ls->name), "%.*s", (int)n, p);
		ls->p += n;
		return 1;
	}
	if (*p == '{' && ls->depth < 8)
		memcpy(ls->groups[ls->depth++], ls->name, sizeof(ls->name));
	else if (*p == '{')
		ls->depth++;
	else if (*p == '}' && ls->depth > 0)
		ls->depth--;
	else
		return 0;
	ls->p++;
	return 1;
}

/* A number at ls->p: -1 with err when it is an int that would wrap. */
static int
lit_number(struct lit_scan *ls, const char *file, char *err, size_t errlen)
{
	const char *start = ls->p, *p = start + (*start == '-' ||
	    *start == '+');
	int hex = p[0] == '0' && (p[1] == 'x' || p[1] == 'X');
	char path[8 * 64 + 64] = "";
	long long v;

	p += hex ? 2 + strspn(p + 2, "0123456789abcdefABCDEF") :
	    strspn(p, "0123456789");
	if (!hex && (*p == '.' || *p == 'e' || *p == 'E')) {
		ls->p = p + strspn(p, "0123456789.eE+-");	/* a float */
		return 0;
	}
	ls->p = p + strspn(p, "L");
	if (*p == 'L')
		return 0;
	errno = 0;
	v = hex ? (long long)strtoull(start, NULL, 16) : strtoll(start, NULL,
	    10);
	if (errno == 0 && v >= INT_MIN && v <= INT_MAX)
		return 0;
	for (int i = 0; i < ls->depth && i < 8; i++)
		snprintf(path + strlen(path), sizeof(path) - strlen(path),
		    "%s.", ls->groups[i]);
	conf_errf(err, errlen, "%s:%d: %s%s: %.*s does not fit a 32-bit integer, "
	    "and libconfig would wrap it to %d; write %.*sL", file, ls->line,
	    path, ls->name, (int)(p - start), start, (int)v, (int)(p - start),
	    start);
	return -1;
}

/* The file's text, for check_int_literals; NULL when it cannot be read. */
static char *
read_text(const char *file)
{
	FILE *fp = fopen(file, "re");
	char *text = NULL;
	size_t len = 0;

	if (fp == NULL)
		return NULL;
	if (getdelim(&text, &len, '\0', fp) == -1) {
		free(text);
		text = NULL;
	}
	fclose(fp);
	return text;
}

static int lit_file(struct lit_scan *, const char *, char *, size_t);

/*
 * An @include line: the file it names, scanned in its place.  libconfig
 * opens the name as written (no include directory is set), and has read
 * the file already; its escapes are only \\ and \" in a path.
 */
static int
lit_include(struct lit_scan *ls, char *err, size_t errlen)
{
	const char *eol = ls->p + strcspn(ls->p, "\n");
	const char *q = memchr(ls->p, '"', (size_t)(eol - ls->p));
	char name[PATH_MAX];
	size_t n = 0;

	ls->p = eol;
	if (q == NULL)
		return 0;
	for (q++; q < eol && *q != '"' && n < sizeof(name) - 1; q++) {
		if (*q == '\\' && q + 1 < eol)
			q++;
		name[n++] = *q;
	}
	name[n] = '\0';
	return lit_file(ls, name, err, errlen);
}

/* Scan one file's text; the groups it is in carry on across files. */
static int
lit_file(struct lit_scan *ls, const char *file, char *err, size_t errlen)
{
	const char *saved_p = ls->p;
	int saved_line = ls->line, rc = 0;
	char *text;

	if (ls->includes >= LIT_INCLUDE_MAX || (text = read_text(file)) ==
	    NULL)
		return 0;	/* libconfig read it: only a race */
	ls->includes++;
	ls->p = text;
	ls->line = 1;
	while (*ls->p != '\0' && rc == 0) {
		const char *p = ls->p + (*ls->p == '-' || *ls->p == '+');

		if (*ls->p == '@')
			rc = lit_include(ls, err, errlen);
		else if (lit_skip(ls) || lit_name(ls))
			continue;
		else if (isdigit((unsigned char)*p))
			rc = lit_number(ls, file, err, errlen);
		else {
			ls->line += *ls->p == '\n';
			ls->p++;
		}
	}
	free(text);
	ls->includes--;
	ls->p = saved_p;
	ls->line = saved_line;
	return rc;
}

/* Refuse integer literals libconfig wraps; -1 with "FILE:LINE: key: ...". */
static int
check_int_literals(const char *file, char *err, size_t errlen)
{
	struct lit_scan ls;

	memset(&ls, 0, sizeof(ls));
	return lit_file(&ls, file, err, errlen);
}

struct loader {
	struct conf	*c;	/* c->origin: where each key was set */
	char		*err;
	size_t		 errlen;
};

/* Walk one group of the parsed file; -1 with ld->err set on the first error. */
static int
walk(struct loader *ld, const config_setting_t *group, const char *prefix)
{
	int n = config_setting_length(group);

	for (int i = 0; i < n; i++) {
		const config_setting_t *s = config_setting_get_elem(group, i);
		const char *file = config_setting_source_file(s);
		int line = config_setting_source_line(s);
		const struct conf_key *k;
		char path[256], msg[256];

		snprintf(path, sizeof(path), "%s%s%s", prefix,
		    *prefix ? "." : "", config_setting_name(s));
		if (file == NULL)
			file = ld->c->file;
		if (config_setting_is_group(s)) {
			if (!is_group(path)) {
				conf_errf(ld->err, ld->errlen, "%s:%d: %s: unknown "
				    "section", file, line, path);
				return -1;
			}
			if (walk(ld, s, path) == -1)
				return -1;
			continue;
		}
		if ((k = find_key(path)) == NULL) {
			conf_errf(ld->err, ld->errlen, "%s:%d: %s: unknown key",
			    file, line, path);
			return -1;
		}
		if (set_from_setting(ld->c, k, s, msg, sizeof(msg)) == -1) {
			conf_errf(ld->err, ld->errlen, "%s:%d: %s: %s", file, line,
			    path, msg);
			return -1;
		}
		free(ld->c->origin->files[k - conf_keys]);
		if ((ld->c->origin->files[k - conf_keys] = strdup(file)) ==
		    NULL)
			abort();
		ld->c->origin->lines[k - conf_keys] = line;
	}
	return 0;
}

/*
 * getenv, not secure_getenv: in set-group-ID sesrelay-sendmail the file
 * is read with the caller's own rights (the group is off by then), so
 * the caller may name any file it could read anyway.
 */
const char *
conf_path(const char *flag)
{
	const char *env = getenv("SESRELAY_CONFIG");

	if (flag != NULL)
		return flag;
	if (env != NULL && *env != '\0')
		return env;
	return SESRELAY_CONF_FILE;
}

struct conf *
conf_load(const char *file, char *err, size_t errlen)
{
	struct loader ld;
	config_t cfg;
	struct conf *c;
	size_t i;
	char msg[256];

	memset(&ld, 0, sizeof(ld));
	if ((c = calloc(1, sizeof(*c))) == NULL || (c->file = strdup(file)) ==
	    NULL || (c->origin = calloc(1, sizeof(*c->origin))) == NULL)
		abort();
	for (i = 0; i < NKEYS; i++)
		set_default(c, &conf_keys[i]);
	ld.c = c;
	ld.err = err;
	ld.errlen = errlen;

	config_init(&cfg);
	config_set_options(&cfg, 0);
	if (config_read_file(&cfg, file) != CONFIG_TRUE) {
		if (config_error_type(&cfg) == CONFIG_ERR_FILE_IO)
			conf_errf(err, errlen, "%s: cannot read: %s", file,
			    strerror(errno));
		else
			conf_errf(err, errlen, "%s:%d: %s",
			    config_error_file(&cfg) ? config_error_file(&cfg) :
			    file, config_error_line(&cfg),
			    config_error_text(&cfg));
		goto fail;
	}
	if (check_int_literals(file, err, errlen) == -1)
		goto fail;
	if (walk(&ld, config_root_setting(&cfg), "") == -1)
		goto fail;
	/* Semantic checks, after every value is in place. */
	for (i = 0; i < NKEYS; i++) {
		const struct conf_key *k = &conf_keys[i];
		if (k->check == NULL || k->check(c, k, msg, sizeof(msg)) == 0)
			continue;
		conf_key_error(c, k->path, err, errlen, "%s", msg);
		goto fail;
	}
	config_destroy(&cfg);
	return c;
fail:
	config_destroy(&cfg);
	conf_free(c);
	return NULL;
}

void
conf_hostname(const struct conf *c, char *buf, size_t len)
{
	if (c->hostname[0] != '\0')
		snprintf(buf, len, "%s", c->hostname);
	else if (conf_mailname(c, buf, len) == -1 &&
	    gethostname(buf, len) == -1)
		snprintf(buf, len, "localhost");
}

int
conf_mailname(const struct conf *c, char *buf, size_t len)
{
	FILE *f;

	buf[0] = '\0';
	if (c->mailname[0] == '\0' || (f = fopen(c->mailname, "re")) == NULL)
		return -1;
	if (fgets(buf, (int)len, f) == NULL)
		buf[0] = '\0';
	fclose(f);
	buf[strcspn(buf, " \t\r\n")] = '\0';
	if (buf[0] == '\0' || !is_host_name(buf)) {
		buf[0] = '\0';
		return -1;
	}
	return 0;
}

void
conf_key_error(const struct conf *c, const char *path, char *err,
    size_t errlen, const char *fmt, ...)
{
	const struct conf_key *k = find_key(path);
	size_t i = k != NULL ? (size_t)(k - conf_keys) : 0;
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (k != NULL && c->origin != NULL && c->origin->lines[i] != 0)
		conf_errf(err, errlen, "%s:%d: %s: %s", c->origin->files[i],
		    c->origin->lines[i], path, msg);
	else
		conf_errf(err, errlen, "%s: %s: %s", c->file, path, msg);
}

/* Print a string as a libconfig string literal. */
static void
print_quoted(FILE *fp, const char *s)
{
	fputc('"', fp);
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			fputc('\\', fp);
		fputc(*s, fp);
	}
	fputc('"', fp);
}

/* The shortest decimal form that reads back as the same double. */
static void
print_double(FILE *fp, double x)
{
	char buf[64];

	for (int prec = 1; prec <= 17; prec++) {
		snprintf(buf, sizeof(buf), "%.*g", prec, x);
		if (strtod(buf, NULL) == x)
			break;
	}
	fputs(buf, fp);
	if (strpbrk(buf, ".en") == NULL)
		fputs(".0", fp);	/* stays a float for libconfig */
}

static void
print_value(FILE *fp, const struct conf_key *k, const void *v)
{
	switch (k->type) {
	case T_INT: {
		long long x = *(const long long *)v;

		/* Past 32 bits only the L suffix keeps libconfig from
		 * wrapping it when the dump is read back. */
		fprintf(fp, "%lld%s", x, x < INT_MIN || x > INT_MAX ? "L" : "");
		break;
	}
	case T_FLOAT:
		print_double(fp, *(const double *)v);
		break;
	case T_BOOL:
		fputs(*(const int *)v ? "true" : "false", fp);
		break;
	case T_STRING:
		print_quoted(fp, *(char *const *)v);
		break;
	case T_STRLIST: {
		const struct conf_strlist *l = v;
		fputs("[ ", fp);
		for (size_t j = 0; j < l->n; j++) {
			print_quoted(fp, l->v[j]);
			fputs(j + 1 < l->n ? ", " : " ", fp);
		}
		fputc(']', fp);
		break;
	}
	case T_INTLIST: {
		const struct conf_intlist *l = v;
		fputs("[ ", fp);
		for (size_t j = 0; j < l->n; j++)
			fprintf(fp, "%lld%s", l->v[j], j + 1 < l->n ? ", " : " ");
		fputc(']', fp);
		break;
	}
	}
}

/*
 * Print the effective configuration as a file libconfig reads back:
 * keys of one section are adjacent in the table, so each section is
 * opened at its first key and closed when the next section starts.
 */
void
conf_dump(const struct conf *c, FILE *fp)
{
	const char *group = NULL;
	size_t glen = 0;
	struct endpoint up;

	endpoint_from_conf(c, ENDPOINT_PRIMARY, &up);
	for (size_t i = 0; i < NKEYS; i++) {
		const struct conf_key *k = &conf_keys[i];
		const char *dot = strchr(k->path, '.');
		size_t len = dot ? (size_t)(dot - k->path) : 0;

		if (group != NULL && (len != glen ||
		    strncmp(group, k->path, len) != 0)) {
			fputs("};\n", fp);
			group = NULL;
		}
		if (len > 0 && group == NULL) {
			fprintf(fp, "%.*s = {\n", (int)len, k->path);
			group = k->path;
			glen = len;
		}
		fprintf(fp, "%s%s = ", group ? "  " : "", dot ? dot + 1 :
		    k->path);
		print_value(fp, k, cfield(c, k));
		fputc(';', fp);
		if (strcmp(k->path, "upstream.host") == 0)
			fprintf(fp, "  # effective: %s", up.host);
		if (strcmp(k->path, "upstream.tls") == 0)
			fprintf(fp, "  # effective: %s",
			    up.wrapper ? "wrapper" : "starttls");
		if (strcmp(k->path, "upstream.api_endpoint") == 0)
			fprintf(fp, "  # effective: %s", up.api_url);
		fputc('\n', fp);
	}
	if (group != NULL)
		fputs("};\n", fp);
}

int
conf_key_at(size_t i, struct conf_key_info *out)
{
	static const char *const names[] = { "integer", "float", "string",
	    "string list", "integer list", "boolean" };

	if (i >= NKEYS)
		return 0;
	out->path = conf_keys[i].path;
	out->type = names[conf_keys[i].type];
	out->help = conf_keys[i].help;
	return 1;
}

/* ---- checks ---- */

int
conf_parse_hostport(const char *s, char *host, size_t hostlen, int *port)
{
	const char *colon, *h = s;
	size_t hl;
	char *end;
	long p;

	if (*s == '[') {
		const char *rb = strchr(s, ']');
		if (rb == NULL || rb[1] != ':')
			return -1;
		h = s + 1;
		hl = rb - h;
		colon = rb + 1;
	} else {
		if ((colon = strrchr(s, ':')) == NULL ||
		    memchr(s, ':', colon - s) != NULL)
			return -1;
		hl = colon - s;
	}
	if (hl == 0 || hl >= hostlen)
		return -1;
	if (!isdigit((unsigned char)colon[1]))
		return -1;
	errno = 0;
	p = strtol(colon + 1, &end, 10);
	if (*end != '\0' || errno || p < 1 || p > 65535)
		return -1;
	memcpy(host, h, hl);
	host[hl] = '\0';
	*port = (int)p;
	return 0;
}

/* A numeric "ADDR:PORT" or "[V6ADDR]:PORT"; 0, or -1 with err. */
static int
check_numeric_hostport(const char *v, char *err, size_t errlen)
{
	char host[INET6_ADDRSTRLEN + 1];
	int port;

	if (conf_parse_hostport(v, host, sizeof(host), &port)) {
		conf_errf(err, errlen, "\"%s\": expected \"ADDR:PORT\" or "
		    "\"[V6ADDR]:PORT\"", v);
		return -1;
	}
	if (!netaddr_is_numeric(host, AF_UNSPEC)) {
		conf_errf(err, errlen, "\"%s\": not a numeric IP address", v);
		return -1;
	}
	return 0;
}

static int
check_listen_tcp(const struct conf *c, const struct conf_key *k, char *err,
    size_t errlen)
{
	const struct conf_strlist *l = cfield(c, k);

	for (size_t i = 0; i < l->n; i++)
		if (check_numeric_hostport(l->v[i], err, errlen) == -1)
			return -1;
	return 0;
}

static int
check_abs_path(const struct conf *c, const struct conf_key *k, char *err,
    size_t errlen)
{
	const char *p = *(char *const *)cfield(c, k);

	if (p[0] != '/') {
		conf_errf(err, errlen, "\"%s\": must be an absolute path", p);
		return -1;
	}
	if (strcmp(k->path, "listen.unix") == 0 &&
	    strlen(p) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
		conf_errf(err, errlen, "\"%s\": too long for a Unix socket", p);
		return -1;
	}
	return 0;
}

static int
check_abs_path_or_empty(const struct conf *c, const struct conf_key *k,
    char *err, size_t errlen)
{
	if (**(char *const *)cfield(c, k) == '\0')
		return 0;
	return check_abs_path(c, k, err, errlen);
}

static int
check_allow(const struct conf *c, const struct conf_key *k, char *err,
    size_t errlen)
{
	const struct conf_strlist *l = cfield(c, k);
	struct netaddr_net net;

	for (size_t i = 0; i < l->n; i++)
		if (netaddr_parse_net(l->v[i], &net) == -1) {
			conf_errf(err, errlen, "\"%s\": expected a network such as "
			    "\"192.0.2.0/24\" or \"2001:db8::/32\"", l->v[i]);
			return -1;
		}
	return 0;
}

static int
check_region(const struct conf *c, const struct conf_key *k, char *err,
    size_t errlen)
{
	const char *p = *(char *const *)cfield(c, k);

	if (*p == '\0' && c->upstream.host[0] == '\0') {
		conf_errf(err, errlen, "set a region or upstream.host");
		return -1;
	}
	for (; *p; p++)
		if (!islower((unsigned char)*p) && !isdigit((unsigned char)*p)
		    && *p != '-') {
			conf_errf(err, errlen, "not a region name such as "
			    "\"us-east-1\"");
			return -1;
		}
	return 0;
}

static int
check_fallback_region(const struct conf *c, const struct conf_key *k,
    char *err, size_t errlen)
{
	const char *p = *(char *const *)cfield(c, k);

	for (; *p; p++)
		if (!islower((unsigned char)*p) && !isdigit((unsigned char)*p)
		    && *p != '-') {
			conf_errf(err, errlen, "not a region name such as "
			    "\"eu-west-1\"");
			return -1;
		}
	return 0;
}

/* Letters, digits, '-', '.' and ':' only, 253 at most ("" passes). */
static int
is_host_name(const char *p)
{
	if (strlen(p) > 253)
		return 0;
	for (; *p; p++)
		if (!isalnum((unsigned char)*p) && *p != '-' && *p != '.' &&
		    *p != ':')
			return 0;
	return 1;
}

static int
check_hostname(const struct conf *c, const struct conf_key *k, char *err,
    size_t errlen)
{
	if (is_host_name(*(char *const *)cfield(c, k)))
		return 0;
	conf_errf(err, errlen, "not a valid host name");
	return -1;
}

static int
check_tls(const struct conf *c, const struct conf_key *k, char *err,
    size_t errlen)
{
	const char *p = *(char *const *)cfield(c, k);

	if (*p && strcmp(p, "starttls") && strcmp(p, "wrapper")) {
		conf_errf(err, errlen, "\"%s\": expected \"starttls\" or "
		    "\"wrapper\"", p);
		return -1;
	}
	return 0;
}

static int
check_ses_set(const struct conf *c, const struct conf_key *k, char *err,
    size_t errlen)
{
	const char *p = *(char *const *)cfield(c, k);

	if (*p && !ses_headers_valid_set(p)) {
		conf_errf(err, errlen, "\"%s\": not a configuration set name (1 to "
		    "64 letters, digits, - and _)", p);
		return -1;
	}
	return 0;
}

static int
check_ses_tags(const struct conf *c, const struct conf_key *k, char *err,
    size_t errlen)
{
	const struct conf_strlist *l = cfield(c, k);

	for (size_t i = 0; i < l->n; i++)
		if (!ses_headers_valid_tag(l->v[i])) {
			conf_errf(err, errlen, "\"%s\": expected \"name=value\" "
			    "(letters, digits, - and _)", l->v[i]);
			return -1;
		}
	return 0;
}

static int
check_metrics_listen(const struct conf *c, const struct conf_key *k,
    char *err, size_t errlen)
{
	const char *p = *(char *const *)cfield(c, k);

	return *p == '\0' ? 0 : check_numeric_hostport(p, err, errlen);
}

static int
check_bare_lf(const struct conf *c, const struct conf_key *k, char *err,
    size_t errlen)
{
	const char *p = *(char *const *)cfield(c, k);

	if (strcmp(p, "reject") && strcmp(p, "normalize")) {
		conf_errf(err, errlen, "\"%s\": expected \"reject\" or "
		    "\"normalize\"", p);
		return -1;
	}
	return 0;
}

static int
check_nonempty_list(const struct conf *c, const struct conf_key *k,
    char *err, size_t errlen)
{
	if (((const struct conf_intlist *)cfield(c, k))->n == 0) {
		conf_errf(err, errlen, "must not be empty");
		return -1;
	}
	return 0;
}

/* A verified SES identity: a full address, 7-bit. */
static int
check_address_or_empty(const struct conf *c, const struct conf_key *k,
    char *err, size_t errlen)
{
	const char *p = *(char *const *)cfield(c, k);

	if (*p != '\0' && !smtp_address_is_valid(p, 1)) {
		conf_errf(err, errlen, "\"%s\": expected an address such as "
		    "\"noreply@example.com\"", p);
		return -1;
	}
	return 0;
}

/* fleet.store: an address this build can speak to. */
static int
check_fleet_store(const struct conf *c, const struct conf_key *k,
    char *err, size_t errlen)
{
	struct fleet_store st;

	if (fleet_store_parse(*(char *const *)cfield(c, k), &st, err,
	    errlen) == -1)
		return -1;
	return fleet_store_supported(&st, err, errlen);
}

/* fleet.name: part of the store's keys; printable, no braces. */
static int
check_fleet_name(const struct conf *c, const struct conf_key *k,
    char *err, size_t errlen)
{
	const char *p = *(char *const *)cfield(c, k);

	if (strlen(p) > 200)
		goto bad;
	for (; *p; p++)
		if (!isgraph((unsigned char)*p) || *p == '{' || *p == '}')
			goto bad;
	return 0;
bad:
	conf_errf(err, errlen, "expected up to 200 printable characters, "
	    "without spaces or braces");
	return -1;
}

/* ---- the AWS keys: transport, auth, endpoints, rate ---- */

static int
is_fallback_key(const struct conf_key *k)
{
	return strncmp(k->path, "fallback.", 9) == 0;
}

/* Is there a fallback whose keys must make sense? */
static int
has_fallback(const struct conf *c)
{
	return c->fallback.region[0] != '\0' || c->fallback.host[0] != '\0';
}

/* The section's effective transport and auth (the fallback's "" follow
 * the upstream's). */
static const char *
eff_transport(const struct conf *c, int fallback)
{
	return fallback && c->fallback.transport[0] != '\0' ?
	    c->fallback.transport : c->upstream.transport;
}

static const char *
eff_auth(const struct conf *c, int fallback)
{
	return fallback && c->fallback.auth[0] != '\0' ? c->fallback.auth :
	    c->upstream.auth;
}

static int
check_transport(const struct conf *c, const struct conf_key *k, char *err,
    size_t errlen)
{
	const char *p = *(char *const *)cfield(c, k);
	int fb = is_fallback_key(k);
	const char *region = fb ? c->fallback.region : c->upstream.region;
	const char *api = fb ? c->fallback.api_endpoint :
	    c->upstream.api_endpoint;

	if ((*p != '\0' || !fb) && strcmp(p, "smtp") && strcmp(p, "api")) {
		conf_errf(err, errlen, "\"%s\": expected \"smtp\" or \"api\"%s",
		    p, fb ? " (or empty: upstream.transport)" : "");
		return -1;
	}
	if ((fb && !has_fallback(c)) || strcmp(eff_transport(c, fb), "api"))
		return 0;
	if (*region == '\0' && *api == '\0') {
		conf_errf(err, errlen, "transport \"api\" needs %s.region or "
		    "%s.api_endpoint (the API host is not the SMTP host)",
		    fb ? "fallback" : "upstream", fb ? "fallback" : "upstream");
		return -1;
	}
	return 0;
}

static int
check_auth(const struct conf *c, const struct conf_key *k, char *err,
    size_t errlen)
{
	const char *p = *(char *const *)cfield(c, k);
	int fb = is_fallback_key(k);

	if ((*p != '\0' || !fb) && strcmp(p, "file") &&
	    strcmp(p, "instance-role") && strcmp(p, "environment")) {
		conf_errf(err, errlen, "\"%s\": expected \"file\", "
		    "\"instance-role\" or \"environment\"%s", p,
		    fb ? " (or empty: upstream.auth)" : "");
		return -1;
	}
	if ((fb && !has_fallback(c)) || strcmp(eff_transport(c, fb), "smtp") ||
	    strcmp(eff_auth(c, fb), "instance-role"))
		return 0;
	conf_errf(err, errlen, "\"instance-role\" cannot be used with transport "
	    "\"smtp\": SES's SMTP interface refuses passwords derived from "
	    "temporary credentials; set %s.transport = \"api\", or auth = "
	    "\"file\" with an IAM user's key", fb ? "fallback" : "upstream");
	return -1;
}

/* "http://HOST[:PORT]" (imds_endpoint) or "https://HOST[:PORT]" (the
 * API: credentials never cross the network in clear); no path. */
static int
check_url_or_empty(const struct conf *c, const struct conf_key *k,
    char *err, size_t errlen)
{
	const char *p = *(char *const *)cfield(c, k);
	const char *scheme = strstr(k->path, "imds") ? "http" : "https";
	struct evhttp_uri *u;
	int ok;

	if (*p == '\0')
		return 0;
	if ((u = evhttp_uri_parse(p)) == NULL) {
		conf_errf(err, errlen, "\"%s\": not a URL", p);
		return -1;
	}
	ok = evhttp_uri_get_scheme(u) != NULL && strcmp(evhttp_uri_get_scheme(u),
	    scheme) == 0 && evhttp_uri_get_host(u) != NULL &&
	    *evhttp_uri_get_host(u) != '\0' && evhttp_uri_get_query(u) == NULL &&
	    (evhttp_uri_get_path(u) == NULL || strcmp(evhttp_uri_get_path(u),
	    "") == 0 || strcmp(evhttp_uri_get_path(u), "/") == 0);
	evhttp_uri_free(u);
	if (!ok) {
		conf_errf(err, errlen, "\"%s\": expected \"%s://HOST[:PORT]\"", p,
		    scheme);
		return -1;
	}
	return 0;
}

/* rate: > 0, 0 (follow GetAccount: needs its interval), -1 (fallback:
 * the upstream's).  Whether API credentials exist is checked with the
 * credentials (endpoint_load_credentials). */
static int
check_rate(const struct conf *c, const struct conf_key *k, char *err,
    size_t errlen)
{
	double r = *(const double *)cfield(c, k);
	int fb = is_fallback_key(k);
	long long interval = fb ? c->fallback.account_check_interval :
	    c->upstream.account_check_interval;

	if (r < 0 && !(fb && r == -1)) {
		conf_errf(err, errlen, "%g: expected a rate, or 0 (the account's "
		    "MaxSendRate)%s", r, fb ? ", or -1 (upstream.rate)" : "");
		return -1;
	}
	if (r > 0 && r < 0.01) {
		conf_errf(err, errlen, "%g: below 0.01 a second", r);
		return -1;
	}
	if (r == 0 && interval == 0) {
		conf_errf(err, errlen, "0 follows the account's MaxSendRate, read "
		    "every %s.account_check_interval seconds, which is 0 (never)",
		    fb ? "fallback" : "upstream");
		return -1;
	}
	return 0;
}
