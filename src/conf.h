/*
 * conf.h: sesrelay's configuration, loaded from one declarative table.
 *
 * The table in conf.c (path, type, default, range, help) is the single
 * source for the loader, the -t dump, the error messages and the test
 * that every key is documented.  Struct fields mirror the config keys.
 */
#ifndef SESRELAY_CONF_H
#define SESRELAY_CONF_H

#include <stddef.h>
#include <stdio.h>

struct conf_strlist {
	char	**v;
	size_t	  n;
};

struct conf_intlist {
	long long *v;
	size_t	   n;
};

struct conf {
	char			*file;		/* the file it came from */
	struct conf_origin	*origin;	/* where each key was set */
	char			*hostname;
	char			*mailname;	/* file: /etc/mailname */
	char			*user;
	struct {
		struct conf_strlist tcp;
		char		*unix_path;	/* key listen.unix */
		struct conf_strlist allow;
	} listen;
	char			*spool;
	struct {
		char		*socket;
	} control;
	struct {
		char		*listen;
	} metrics;
	struct {
		struct conf_strlist trusted_users;
	} sendmail;
	long long		 spool_min_free;
	long long		 spool_min_free_inodes;
	long long		 max_message_size;
	struct {
		long long	 max_recipients;
		long long	 max_line_length;
		long long	 timeout;
		long long	 greeting_timeout;
		long long	 data_timeout;
		long long	 max_clients;
		long long	 max_commands;
		long long	 max_header_size;
		long long	 max_header_line_length;
		char		*bare_lf;
		int		 strict_8bitmime;
	} smtp;
	struct {
		char		*region;
		char		*host;
		long long	 port;
		char		*tls;
		char		*ca_file;
		char		*credentials;
		long long	 sessions;
		long long	 recycle_after_messages;
		long long	 recycle_after_seconds;
		long long	 idle_timeout;
		long long	 timeout;
		long long	 quota_probe_interval;
		double		 rate;
		char		*transport;	/* "smtp" | "api" */
		char		*auth;		/* "file" | "instance-role" | "environment" */
		char		*api_endpoint;
		char		*imds_endpoint;
		long long	 account_check_interval;
	} upstream;
	struct {
		int		 headers;
	} cleanup;
	struct {
		char		*sender;
		char		*admin;
		char		*aliases;
		char		*sender_map;
		struct conf_strlist local_domains;
	} rewrite;
	struct {
		char		*sender;
	} bounce;
	struct {
		char		*region;
		char		*host;
		long long	 port;
		char		*tls;
		char		*ca_file;
		char		*credentials;
		long long	 after;
		long long	 check_interval;
		char		*transport;	/* "": upstream.transport */
		char		*auth;		/* "": upstream.auth */
		char		*api_endpoint;
		char		*imds_endpoint;	/* "": upstream.imds_endpoint */
		double		 rate;		/* -1: upstream.rate */
		long long	 account_check_interval;
	} fallback;
	struct {
		char		*configuration_set;
		struct conf_strlist tags;
		char		*sender_map;
	} ses;
	struct {
		char		*store;
		char		*name;
		long long	 hosts;
		char		*credentials;
	} fleet;
	struct {
		struct conf_intlist schedule;
		long long	 max_queue_time;
		long long	 max_unknown_outcome_copies;
	} retry;
};

/* What the config key table says about one key; exposed for tests. */
struct conf_key_info {
	const char	*path;
	const char	*type;		/* "integer", "float", "string", ... */
	const char	*help;
};

#define CONF_ERRLEN 512

/* printf into err (errlen bytes): how the config code words an error. */
void conf_errf(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * Which file the three programs read, by one rule: flag (sesrelayd's and
 * sesrelayctl's -c, sesrelay-sendmail's -C) when given (NULL: not
 * given), else $SESRELAY_CONFIG when set and not empty, else the default
 * SESRELAY_CONF_FILE.
 */
const char *conf_path(const char *flag);

/*
 * Load and check FILE.  Returns a new conf, or NULL with a message
 * "FILE:LINE: KEY: what is wrong" in err.
 */
struct conf *conf_load(const char *file, char *err, size_t errlen);
void conf_free(struct conf *);
/*
 * An error about key path, as conf_load words its own: "FILE:LINE: KEY:
 * message" where the file set it, "FILE: KEY: message" for a default.
 */
void conf_key_error(const struct conf *, const char *path, char *err,
    size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/*
 * hostname, or the mail name (conf_mailname), or the system's host name
 * ("localhost" when it has none).
 */
void conf_hostname(const struct conf *, char *buf, size_t len);
/*
 * The first line of the mailname file when it is a host name: 0 with it
 * in buf; else -1 with buf "" (no key, no file, or something else).
 */
int conf_mailname(const struct conf *, char *buf, size_t len);
/* Print every key with its effective value, in libconfig syntax. */
void conf_dump(const struct conf *, FILE *);

/* Iterate the key table: returns 0 past the end. */
int conf_key_at(size_t i, struct conf_key_info *out);

/* Parse "host:port" or "[v6]:port"; 0 on success. */
int conf_parse_hostport(const char *s, char *host, size_t hostlen,
    int *port);

#endif
