/*
 * sesrelayd.c: the daemon's main: options, start-up order, signals.
 *
 * Start-up order matters: the config and credentials are checked before
 * anything is opened; tmp/ is cleaned before the listeners accept a
 * single connection; the queue is indexed (and the schedule rebuilt) in
 * the background while mail is accepted and delivered, so a long queue
 * after a reboot does not keep clients out (spool_index_start).
 */
#include "config.h"

#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <fcntl.h>

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include <event2/dns.h>
#include <event2/event.h>
#ifdef HAVE_LIBSYSTEMD
#include <systemd/sd-daemon.h>
#endif

#include "bounce.h"
#include "cleanup.h"
#include "control.h"
#include "pickup.h"
#include "privsep.h"
#include "metrics.h"
#include "ses_headers.h"
#include "stats.h"
#include "conf.h"
#include "endpoint.h"
#include "log.h"
#include "netaddr.h"
#include "scheduler.h"
#include "smtp_server.h"
#include "tls.h"
#include "spool.h"
#include "upstream.h"

struct daemon {
	struct event_base	*base;
	struct evdns_base	*dns;
	struct conf		*conf;
	struct spool		*spool;
	struct spool_index	*index;		/* NULL once stopped */
	struct timespec		 index_since;
	int			 exit_status;
	struct scheduler	*sched;
	struct upstream		*up;		/* the active one of: */
	struct upstream		*primary;
	struct upstream		*fallback;	/* NULL: none configured */
	struct event		*failover_ev;
	struct control		*control;
	struct pickup		*pickup;
	struct metrics		*metrics;
	time_t			 stopping_since;
	struct event		*drain_ev;
	time_t			 last_check;
	struct smtp_server	*smtp;
	struct cleanup		*cleanup;
	struct ses_headers	*ses;
	struct bounce		*bounce;
	struct netaddr_net	*allow;
	char			 hostname[256];
	const char		*file;		/* the configuration */
	struct listen_fds	 lfds;		/* bound before dropping root */
	/* pools replaced by a reload, freed once idle */
	struct retired {
		struct upstream		*pool[2];
		struct ses_headers	*ses;
		struct retired		*next;
	}			*retired;
	struct event		*retire_ev;
	struct event		*notify_ev;	/* systemd STATUS, WATCHDOG */
	int			 watchdog;
};

static int reload(struct daemon *, char *, size_t);

static void
usage(void)
{
	fprintf(stderr, "usage: sesrelayd [-dftv] [-c file]\n");
	exit(EX_USAGE);
}

/*
 * Go to the background, but keep the terminal until start-up is done:
 * the parent waits on a pipe and exits 0 once the child says it is
 * ready, or with the child's own exit code (its error already printed
 * on stderr) if it fails first.  Returns the child's end of the pipe.
 */
static int
background(void)
{
	int p[2], status;
	pid_t pid;
	char c;

	if (pipe(p) == -1)
		fatal("daemon.fatal", "call=pipe");
	if ((pid = fork()) == -1)
		fatal("daemon.fatal", "call=fork");
	if (pid > 0) {
		close(p[1]);
		if (read(p[0], &c, 1) == 1)
			_exit(0);
		if (waitpid(pid, &status, 0) == pid && WIFEXITED(status))
			_exit(WEXITSTATUS(status) ? WEXITSTATUS(status) : 1);
		_exit(EX_SOFTWARE);
	}
	close(p[0]);
	if (setsid() == -1)
		fatal("daemon.fatal", "call=setsid");
	fcntl(p[1], F_SETFD, FD_CLOEXEC);
	return p[1];
}

static void
detach_stdio(void)
{
	int fd = open("/dev/null", O_RDWR);

	if (fd == -1)
		return;
	dup2(fd, STDIN_FILENO);
	dup2(fd, STDOUT_FILENO);
	dup2(fd, STDERR_FILENO);
	if (fd > STDERR_FILENO)
		close(fd);
	if (chdir("/") == -1)
		log_event(LOG_WARNING | LOG_ERRNO, "-", "daemon.chdir_failed",
		    "dir=/");
}

/* What -t (and the start-up log) says when local mail cannot be sent. */
#define NO_REWRITE_SENDER "rewrite.sender is not set: mail from local " \
	"senders (root, user@localhost) is refused with 550 5.7.1 (exit 77 " \
	"from sendmail), except for users in rewrite.sender_map; set it to " \
	"a verified address"

static void check_done(void *, int);

/*
 * Failover, every two seconds: to the fallback once the primary has
 * been failing for fallback.after with mail waiting; back as soon as a
 * health check of the primary (every fallback.check_interval) passes.
 */
static void
failover_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct daemon *d = arg;
	const struct conf *c = d->conf;
	long long failing;

	if (d->up == d->primary) {
		failing = upstream_failing_seconds(d->primary);
		if (failing < c->fallback.after ||
		    scheduler_queued_count(d->sched) == 0)
			return;
		log_event(LOG_WARNING, "-", "daemon.failover",
		    "to=fallback host=%s failing=%lld fallback=%s",
		    log_q(upstream_endpoint(d->primary)->host), failing,
		    log_q(upstream_endpoint(d->fallback)->host));
		upstream_set_active(d->primary, 0);
		d->up = d->fallback;
		d->last_check = time(NULL);
		upstream_set_active(d->fallback, 1);
		return;
	}
	if (time(NULL) - d->last_check >= c->fallback.check_interval) {
		d->last_check = time(NULL);
		upstream_check(d->primary, check_done, d);
	}
}

static void
check_done(void *arg, int ok)
{
	struct daemon *d = arg;

	if (!ok || d->up == d->primary)
		return;
	log_event(LOG_WARNING, "-", "daemon.failback",
	    "to=upstream host=%s msg=\"works again: sending through it, "
	    "not the fallback\"", log_q(upstream_endpoint(d->primary)->host));
	upstream_set_active(d->fallback, 0);
	d->up = d->primary;
	upstream_set_active(d->primary, 1);
}

static void
kick_upstream(void *arg)
{
	struct daemon *d = arg;

	upstream_kick(d->up);
}

/* The start-up index found a queued message. */
static void
index_found(void *arg, struct spool_envelope *env)
{
	struct daemon *d = arg;

	scheduler_add_indexed(d->sched, env);
}

static void stop(struct daemon *, int);

/* Outside the index's callback, which stop() frees. */
static void
index_failed_cb(evutil_socket_t fd, short ev, void *arg)
{
	stop(arg, 0);
}

/* The start-up index is complete (or queue/ could not be listed). */
static void
index_done(void *arg, size_t found, int status)
{
	struct daemon *d = arg;
	struct timespec now;

	scheduler_index_end(d->sched);
	if (status != 0) {
		log_event(LOG_WARNING, "-", "daemon.index_failed",
		    "spool=%s error=%s msg=\"stopping\"", log_q(d->conf->spool),
		    log_q(strerror(status)));
		d->exit_status = EX_OSERR;
		event_base_once(d->base, -1, EV_TIMEOUT, index_failed_cb, d,
		    NULL);
		return;
	}
	clock_gettime(CLOCK_MONOTONIC, &now);
	log_event(LOG_INFO, "-", "daemon.spool_indexed",
	    "found=%zu queued=%zu seconds=%.1f", found,
	    scheduler_queued_count(d->sched),
	    (double)(now.tv_sec - d->index_since.tv_sec) +
	    (now.tv_nsec - d->index_since.tv_nsec) / 1e9);
}

/* The SMTP server made a message durable: schedule it. */
static void
accepted(void *arg, struct spool_envelope *env)
{
	struct daemon *d = arg;

	scheduler_add(d->sched, env);
}

#define DRAIN_SECONDS	30	/* SIGTERM: in-flight transactions finish */

/*
 * Stopping, step two: once no transaction is out with SES (or the bound
 * passed), leave the loop; teardown() then closes everything.
 */
static void
drain_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct daemon *d = arg;
	size_t busy = upstream_busy(d->primary) + upstream_busy(d->fallback);
	size_t clients = smtp_server_session_count(d->smtp);

	if ((busy > 0 || clients > 0) &&
	    time(NULL) - d->stopping_since < DRAIN_SECONDS)
		return;
	if (clients > 0)
		log_event(LOG_WARNING, "-", "daemon.drain_timeout",
		    "clients=%zu seconds=%d msg=\"SMTP clients still in a "
		    "transaction; closing them\"", clients, DRAIN_SECONDS);
	if (busy > 0)
		log_event(LOG_WARNING, "-", "daemon.drain_timeout",
		    "in_flight=%zu seconds=%d msg=\"transactions still out; "
		    "they will be sent again (duplicates possible)\"", busy,
		    DRAIN_SECONDS);
	event_base_loopexit(d->base, NULL);
}

/*
 * Stopping, step one (SIGTERM, SIGINT): accept nothing more, hand out no
 * more work, let what is out with SES finish.  A second signal stops at
 * once; the spool keeps everything either way.
 */
static void
stop(struct daemon *d, int sig)
{
	struct timeval tv = { 0, 100000 };

	if (d->stopping_since != 0) {
		log_event(LOG_INFO, "-", "daemon.stopping",
		    "signal=%d again=yes", sig);
		event_base_loopexit(d->base, NULL);
		return;
	}
	d->stopping_since = time(NULL);
	log_event(LOG_INFO, "-", "daemon.stopping",
	    "signal=%d queued=%zu in_flight=%zu%s", sig,
	    scheduler_queued_count(d->sched),
	    upstream_busy(d->primary) + upstream_busy(d->fallback),
	    spool_index_is_done(d->index) ? "" : " indexing=stopped");
	/* The rest of the queue stays on disk for the next start. */
	spool_index_free(d->index);
	d->index = NULL;
#ifdef HAVE_LIBSYSTEMD
	sd_notify(0, "STOPPING=1");
#endif
	smtp_server_shutdown(d->smtp);
	if (d->failover_ev != NULL)
		event_del(d->failover_ev);
	upstream_set_active(d->primary, 0);
	if (d->fallback != NULL)
		upstream_set_active(d->fallback, 0);
	d->drain_ev = event_new(d->base, -1, EV_PERSIST, drain_cb, d);
	event_add(d->drain_ev, &tv);
	drain_cb(-1, 0, d);
}

static void
signal_cb(evutil_socket_t sig, short ev, void *arg)
{
	struct daemon *d = arg;

	switch (sig) {
	case SIGHUP: {
		char err[CONF_ERRLEN];

		log_event(LOG_INFO, "-", "daemon.reloading",
		    "signal=HUP file=%s", log_q(d->file));
		(void)reload(d, err, sizeof(err));
		break;
	}
	case SIGUSR1:
		log_event(LOG_INFO, "-", "daemon.flush", "signal=USR1 due=%zu",
		    scheduler_flush(d->sched));
		kick_upstream(d);
		break;
	default:
		stop(d, (int)sig);
		break;
	}
}

static void
control_status(void *arg, struct control_status *st)
{
	struct daemon *d = arg;
	struct upstream_status us;

	upstream_get_status(d->up, &us);
	st->upstream = upstream_endpoint(d->up)->host;
	st->fallback_active = d->up != d->primary;
	st->rate = us.rate;
	st->rate_configured = d->conf->upstream.rate;
	st->sessions = (int)upstream_session_count(d->up);
	st->max_sessions = us.max_sessions;
	st->quota_paused = us.quota_paused;
	st->backing_off = us.backing_off;
	st->account = upstream_account(d->up);
}

static void
count_held(void *arg, const struct scheduler_view *v)
{
	*(size_t *)arg += v->held != 0;
}

/* The same for a metrics scrape, with the queue's numbers too. */
static void
daemon_status(void *arg, struct control_status *st)
{
	struct daemon *d = arg;

	control_status(d, st);
	st->queued = scheduler_queued_count(d->sched);
	st->indexing = scheduler_is_indexing(d->sched);
	st->ready = scheduler_ready_count(d->sched);
	st->held = 0;
	scheduler_foreach(d->sched, count_held, &st->held);
	st->oldest_age = st->queued ? scheduler_oldest_age(d->sched) : 0;
}


/* The SMTP listeners of a configuration; 0, or -1 with err. */
static int
listen_smtp(struct daemon *d, const struct conf *c, char *err,
    size_t errlen)
{
	if (d->lfds.n > 0) {
		/* Bound already (as root, or by systemd): serve those. */
		for (size_t i = 0; i < d->lfds.n; i++) {
			struct listen_fd *p = &d->lfds.v[i];
			int r = p->is_unix && !d->lfds.activated ?
			    smtp_server_listen_unix_fd(d->smtp, p->fd, p->label,
			    err, errlen) : smtp_server_listen_fd(d->smtp, p->fd,
			    p->label, err, errlen);

			if (r == -1)
				return -1;
		}
		d->lfds.n = 0;
		return 0;
	}
	for (size_t i = 0; i < c->listen.tcp.n; i++)
		if (smtp_server_listen_tcp(d->smtp, c->listen.tcp.v[i], err,
		    errlen) == -1)
			return -1;
	if (c->listen.unix_path[0] != '\0') {
		/* Any local user may submit: the socket's directory must
		 * be searchable whatever our umask (the socket is 0666). */
		privsep_socket_dir(c->listen.unix_path);
		if (smtp_server_listen_unix(d->smtp, c->listen.unix_path, err,
		    errlen) == -1)
			return -1;
	}
	return 0;
}

static int control_reload(void *, char *, size_t);

static struct control *
make_control(struct daemon *d, const char *path, char *err, size_t errlen)
{
	struct control_ops ops;

	memset(&ops, 0, sizeof(ops));
	ops.sched = d->sched;
	ops.status = daemon_status;
	ops.reload = control_reload;
	ops.kick = kick_upstream;
	ops.arg = d;
	ops.group = getegid();
	privsep_socket_dir(path);
	return control_new(d->base, path, &ops, err, errlen);
}

static void
pickup_config(struct daemon *d, const struct conf *c,
    struct pickup_config *pc)
{
	memset(pc, 0, sizeof(*pc));
	pc->spool_dir = c->spool;
	pc->hostname = d->hostname;
	pc->cleanup = d->cleanup;
	pc->max_message_size = c->max_message_size;
	pc->max_recipients = c->smtp.max_recipients;
	pc->trusted = c->sendmail.trusted_users.v;
	pc->ntrusted = c->sendmail.trusted_users.n;
	pc->accepted = accepted;
	pc->arg = d;
}

static void
start_listeners(struct daemon *d)
{
	char err[CONF_ERRLEN];
	struct pickup_config pc;

	if (listen_smtp(d, d->conf, err, sizeof(err)) == -1) {
		log_event(LOG_WARNING, "-", "daemon.listen_failed", "msg=%s",
		    log_q(err));
		exit(EX_OSERR);
	}
	if (d->conf->metrics.listen[0] != '\0' &&
	    (d->metrics = metrics_new(d->base, d->conf->metrics.listen,
	    daemon_status, d, err, sizeof(err))) == NULL) {
		log_event(LOG_WARNING, "-", "daemon.metrics_failed", "msg=%s",
		    log_q(err));
		exit(EX_OSERR);
	}
	pickup_config(d, d->conf, &pc);
	if ((d->pickup = pickup_new(d->base, d->spool, &pc, err,
	    sizeof(err))) == NULL) {
		log_event(LOG_WARNING, "-", "daemon.maildrop_failed", "msg=%s",
		    log_q(err));
		exit(EX_CANTCREAT);
	}
	pickup_scan(d->pickup);
	if ((d->control = make_control(d, d->conf->control.socket, err,
	    sizeof(err))) == NULL) {
		log_event(LOG_WARNING, "-", "daemon.listen_failed", "msg=%s",
		    log_q(err));
		exit(EX_OSERR);
	}
}

/* Where a pool sends, for its log line: the API's host over "api". */
static int
pool_is_api(const struct endpoint *ep)
{
	return ep->transport != NULL && strcmp(ep->transport, "api") == 0;
}

static const char *
pool_host(const struct endpoint *ep)
{
	return pool_is_api(ep) ? ep->api_host : ep->host;
}

static int
pool_port(const struct endpoint *ep)
{
	return pool_is_api(ep) ? ep->api_port : ep->port;
}

static const char *
pool_tls(const struct endpoint *ep)
{
	if (pool_is_api(ep))
		return "https";
	return ep->wrapper ? "wrapper" : "starttls";
}

/*
 * The upstream pools a configuration asks for: the primary (active) and
 * the fallback (inactive), or NULL.  0, or -1 with err.
 */
static int
make_pools(struct daemon *d, const struct conf *c,
    const struct endpoint_credentials *cred,
    const struct endpoint_credentials *fcred, const struct ses_headers *ses,
    struct upstream **primary, struct upstream **fallback, char *err,
    size_t errlen)
{
	struct upstream_config uc;
	struct endpoint ep;
	char e[CONF_ERRLEN - 16];

	memset(&uc, 0, sizeof(uc));
	endpoint_from_conf(c, ENDPOINT_PRIMARY, &ep);
	uc.endpoint = &ep;
	uc.cred = cred;
	uc.helo_name = d->hostname;
	uc.sessions = (int)c->upstream.sessions;
	uc.recycle_messages = (int)c->upstream.recycle_after_messages;
	uc.recycle_seconds = (int)c->upstream.recycle_after_seconds;
	uc.idle_timeout = (int)c->upstream.idle_timeout;
	uc.timeout = (int)c->upstream.timeout;
	uc.rate = c->upstream.rate;
	uc.quota_probe_interval = (int)c->upstream.quota_probe_interval;
	uc.ses = ses;
	uc.conf = c;
	*fallback = NULL;
	if ((*primary = upstream_new(d->base, d->dns, d->spool, d->sched, &uc,
	    e, sizeof(e))) == NULL) {
		snprintf(err, errlen, "%s", e);
		return -1;
	}
	log_event(LOG_INFO, "-", "daemon.upstream",
	    "pool=upstream host=%s port=%d tls=%s sessions=%d",
	    log_q(pool_host(&ep)), pool_port(&ep), pool_tls(&ep), uc.sessions);
	if (endpoint_from_conf(c, ENDPOINT_FALLBACK, &ep) == -1)
		return 0;
	uc.cred = fcred;
	if ((*fallback = upstream_new(d->base, d->dns, d->spool, d->sched,
	    &uc, e, sizeof(e))) == NULL) {
		snprintf(err, errlen, "%s", e);
		upstream_free(*primary);
		*primary = NULL;
		return -1;
	}
	upstream_set_active(*fallback, 0);
	log_event(LOG_INFO, "-", "daemon.upstream",
	    "pool=fallback host=%s port=%d tls=%s after=%lld",
	    log_q(pool_host(&ep)), pool_port(&ep), pool_tls(&ep),
	    c->fallback.after);
	return 0;
}

static struct netaddr_net *
make_allow(const struct conf *c)
{
	struct netaddr_net *a = calloc(c->listen.allow.n + 1, sizeof(*a));

	if (a == NULL)
		abort();
	for (size_t i = 0; i < c->listen.allow.n; i++)
		netaddr_parse_net(c->listen.allow.v[i], &a[i]);
	return a;
}

static void
smtp_config(struct daemon *d, const struct conf *c,
    const struct cleanup *cl, const struct netaddr_net *allow,
    struct smtp_server_config *sc)
{
	memset(sc, 0, sizeof(*sc));
	sc->hostname = d->hostname;
	sc->max_message_size = c->max_message_size;
	sc->max_recipients = c->smtp.max_recipients;
	sc->max_line_length = c->smtp.max_line_length;
	sc->timeout = c->smtp.timeout;
	sc->greeting_timeout = c->smtp.greeting_timeout;
	sc->data_timeout = c->smtp.data_timeout;
	sc->max_clients = c->smtp.max_clients;
	sc->max_commands = c->smtp.max_commands;
	sc->max_header_size = c->smtp.max_header_size;
	sc->max_header_line_length = c->smtp.max_header_line_length;
	sc->bare_lf_reject = strcmp(c->smtp.bare_lf, "reject") == 0;
	sc->strict_8bitmime = c->smtp.strict_8bitmime;
	sc->min_free = c->spool_min_free;
	sc->min_free_inodes = c->spool_min_free_inodes;
	sc->cleanup = cl;
	sc->allow = allow;
	sc->nallow = c->listen.allow.n;
	sc->trusted = c->sendmail.trusted_users.v;
	sc->ntrusted = c->sendmail.trusted_users.n;
}

static int
same_strlist(const struct conf_strlist *a, const struct conf_strlist *b)
{
	if (a->n != b->n)
		return 0;
	for (size_t i = 0; i < a->n; i++)
		if (strcmp(a->v[i], b->v[i]) != 0)
			return 0;
	return 1;
}

/* Free the pools a reload replaced, once nothing of theirs is out. */
static void
retire_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct daemon *d = arg;
	struct retired **rp = &d->retired, *r;

	while ((r = *rp) != NULL) {
		if (upstream_busy(r->pool[0]) + upstream_busy(r->pool[1]) > 0) {
			rp = &r->next;
			continue;
		}
		*rp = r->next;
		upstream_free(r->pool[0]);
		upstream_free(r->pool[1]);
		ses_headers_free(r->ses);
		free(r);
	}
	if (d->retired == NULL)
		event_del(d->retire_ev);
}

/*
 * SIGHUP or `sesrelayctl reload`: everything is loaded and checked first
 * (the file, the credentials, the maps, the TLS set-up); any error and
 * the running configuration stays, untouched.  Then it is switched:
 * new SMTP settings for every next command, new upstream pools (the old
 * ones finish what they are sending), listeners, control socket and
 * metrics re-opened where they changed.  Nothing queued is touched.
 */
/* What a configuration loads (load_config), and a reload builds before it
 * switches anything (the pools). */
struct next {
	struct conf		*conf;
	struct cleanup		*cleanup;
	struct ses_headers	*ses;
	struct upstream		*primary, *fallback;
};

static void
next_free(struct next *n)
{
	upstream_free(n->primary);
	upstream_free(n->fallback);
	cleanup_free(n->cleanup);
	ses_headers_free(n->ses);
	if (n->conf != NULL)
		conf_free(n->conf);
	memset(n, 0, sizeof(*n));
}

/*
 * Descriptors: the soft RLIMIT_NOFILE is raised to the hard one at start,
 * and a configuration that could need more than that is refused, so that
 * running out is a configuration error, not a daemon at the limit.  Each
 * SMTP client (and the SMTP_UNIX_RESERVE more on the Unix socket) may
 * hold its socket and its queue file; each upstream
 * session its socket and the message it sends, in up to three pools
 * (primary, fallback, one retired by a reload); the control socket's
 * clients; the listeners; and FD_RESERVE for the spool's directories, the
 * sync workers, pickup, metrics, DNS, libevent and stdio.
 */
#define FD_RESERVE	64

static long long
descriptors_needed(const struct conf *c, long long max_clients)
{
	return 2 * (max_clients + SMTP_UNIX_RESERVE) +
	    3 * 2 * c->upstream.sessions +
	    CONTROL_MAX_CLIENTS + (long long)c->listen.tcp.n + 1 + FD_RESERVE;
}

/*
 * Raise the soft limit to the hard one (best effort), once in main: by
 * -t too, which must judge the limit start-up would have.
 */
static void
raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
}

/* The soft limit in force, or -1. */
static long long
nofile_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == -1)
		return -1;
	return rl.rlim_cur == RLIM_INFINITY ? LLONG_MAX :
	    (long long)rl.rlim_cur;
}

/* Does smtp.max_clients fit the descriptor limit?  0, or -1 with err. */
static int
descriptors_fit(const struct conf *c, char *err, size_t errlen)
{
	long long limit = nofile_limit(), need, fit;

	need = descriptors_needed(c, c->smtp.max_clients);
	if (limit < 0 || need <= limit)
		return 0;
	fit = (limit - descriptors_needed(c, 0)) / 2;
	conf_key_error(c, "smtp.max_clients", err, errlen, "%lld clients "
	    "need up to %lld file descriptors (2 a client, with upstream."
	    "sessions = %lld and the rest), but the limit (RLIMIT_NOFILE) is "
	    "%lld: set at most %lld, or raise the limit (LimitNOFILE=)",
	    c->smtp.max_clients, need, c->upstream.sessions, limit,
	    fit > 0 ? fit : 0);
	return -1;
}

/*
 * What conf_load cannot decide alone and the daemon needs: the descriptor
 * limit, the CA files of the endpoints.  Asked by -t, at start and on
 * reload alike, so -t refuses whatever start-up would.  0, or -1 with err.
 */
static int
conf_fits(const struct conf *c, char *err, size_t errlen)
{
	struct endpoint ep;

	if (descriptors_fit(c, err, errlen) == -1)
		return -1;
	for (int r = ENDPOINT_PRIMARY; r <= ENDPOINT_FALLBACK; r++)
		if (endpoint_from_conf(c, r, &ep) == 0 &&
		    endpoint_check_ca(c, &ep, err, errlen) == -1)
			return -1;
	return 0;
}

/*
 * Load and check a configuration file and what it names, at start (and
 * -t) and on reload alike, so that both refuse the same: the file, what
 * the daemon needs of it (conf_fits), the credentials (into cred and
 * fcred, for the pools), the rewriting and the SES headers (into n).
 * hostname is set from it.  0, or -1 with e set and nothing kept.
 */
static int
load_config(const char *file, struct next *n, struct endpoint_credentials *cred,
    struct endpoint_credentials *fcred, char *hostname, size_t hostlen,
    char *e, size_t elen)
{
	char sub[CONF_ERRLEN - 32];
	struct endpoint up, fb;

	memset(n, 0, sizeof(*n));
	memset(cred, 0, sizeof(*cred));
	memset(fcred, 0, sizeof(*fcred));
	if ((n->conf = conf_load(file, e, elen)) == NULL ||
	    conf_fits(n->conf, e, elen) == -1)
		goto fail;
	endpoint_from_conf(n->conf, ENDPOINT_PRIMARY, &up);
	if (endpoint_load_credentials(n->conf, &up, cred, e, elen) == -1 ||
	    (endpoint_from_conf(n->conf, ENDPOINT_FALLBACK, &fb) == 0 &&
	    endpoint_load_credentials(n->conf, &fb, fcred, e, elen) == -1))
		goto fail;
	conf_hostname(n->conf, hostname, hostlen);
	if ((n->cleanup = cleanup_new_from_conf(n->conf, hostname, e,
	    elen)) == NULL)
		goto fail;
	if ((n->ses = ses_headers_new(n->conf->ses.configuration_set,
	    n->conf->ses.tags.v, n->conf->ses.tags.n,
	    n->conf->ses.sender_map, sub, sizeof(sub))) == NULL) {
		snprintf(e, elen, "ses.sender_map: %s", sub);
		goto fail;
	}
	return 0;
fail:
	endpoint_credentials_clear(cred);
	endpoint_credentials_clear(fcred);
	next_free(n);
	return -1;
}

/*
 * Load and check everything a new configuration needs; nothing running
 * is touched but d->hostname, which the new pools are made with (the
 * caller restores it on failure).  0, or -1 with e set.
 */
static int
reload_load(struct daemon *d, struct next *n, char *e, size_t elen)
{
	struct endpoint_credentials cred, fcred;
	int rc = -1;

	if (load_config(d->file, n, &cred, &fcred, d->hostname,
	    sizeof(d->hostname), e, elen) == -1)
		return -1;
	if (strcmp(n->conf->spool, d->conf->spool) != 0) {
		snprintf(e, elen, "spool cannot change while sesrelayd runs "
		    "(restart it)");
		goto out;
	}
	if (make_pools(d, n->conf, &cred, &fcred, n->ses, &n->primary,
	    &n->fallback, e, elen) == -1)
		goto out;
	rc = 0;
out:
	endpoint_credentials_clear(&cred);
	endpoint_credentials_clear(&fcred);
	if (rc == -1)
		next_free(n);
	return rc;
}

/*
 * Switch to what reload_load built (cannot fail); n is consumed.
 * Returns the configuration that was running, for the caller to free.
 */
static struct conf *
reload_switch(struct daemon *d, struct next *n)
{
	struct conf *old = d->conf;
	struct netaddr_net *allow = make_allow(n->conf);
	struct smtp_server_config sc;
	struct scheduler_config schc;
	struct bounce_config bc;
	struct pickup_config pc;
	struct timeval one = { 1, 0 }, two = { 2, 0 };
	struct retired *r;

	smtp_config(d, n->conf, n->cleanup, allow, &sc);
	smtp_server_configure(d->smtp, &sc);
	free(d->allow);
	d->allow = allow;
	cleanup_free(d->cleanup);
	d->cleanup = n->cleanup;
	pickup_config(d, n->conf, &pc);
	pickup_configure(d->pickup, &pc);
	memset(&schc, 0, sizeof(schc));
	schc.retry = n->conf->retry.schedule.v;
	schc.nretry = n->conf->retry.schedule.n;
	schc.max_queue_time = n->conf->retry.max_queue_time;
	schc.max_unknown_copies =
	    (unsigned)n->conf->retry.max_unknown_outcome_copies;
	schc.bounce = bounce_queue;
	schc.bounce_arg = d->bounce;
	scheduler_configure(d->sched, &schc);
	memset(&bc, 0, sizeof(bc));
	bc.sender = n->conf->bounce.sender[0] ? n->conf->bounce.sender :
	    n->conf->rewrite.sender;
	bc.hostname = d->hostname;
	bounce_configure(d->bounce, &bc);
	/* The old pools finish what is out and go. */
	if ((r = calloc(1, sizeof(*r))) == NULL)
		abort();
	upstream_set_active(d->primary, 0);
	if (d->fallback != NULL)
		upstream_set_active(d->fallback, 0);
	r->pool[0] = d->primary;
	r->pool[1] = d->fallback;
	r->ses = d->ses;
	r->next = d->retired;
	d->retired = r;
	if (d->retire_ev == NULL)
		d->retire_ev = event_new(d->base, -1, EV_PERSIST, retire_cb, d);
	event_add(d->retire_ev, &one);
	d->ses = n->ses;
	d->primary = d->up = n->primary;
	d->fallback = n->fallback;
	if (n->fallback != NULL && d->failover_ev == NULL) {
		d->failover_ev = event_new(d->base, -1, EV_PERSIST,
		    failover_cb, d);
		event_add(d->failover_ev, &two);
	}
	d->conf = n->conf;
	memset(n, 0, sizeof(*n));
	return old;
}

/* Re-open the sockets whose addresses changed; 0, or -1 (logged). */
static int
reload_sockets(struct daemon *d, const struct conf *oc)
{
	const struct conf *nc = d->conf;
	char e[CONF_ERRLEN];
	int rc = 0, listen_changed;

	listen_changed = !same_strlist(&nc->listen.tcp, &oc->listen.tcp) ||
	    strcmp(nc->listen.unix_path, oc->listen.unix_path) != 0;
	if (listen_changed && d->lfds.activated)
		log_event(LOG_WARNING, "-", "daemon.reload_listen_ignored",
		    "msg=\"the listeners come from systemd (sesrelayd.socket); "
		    "listen.* is not used\"");
	else if (listen_changed) {
		smtp_server_stop_listening(d->smtp);
		if (listen_smtp(d, nc, e, sizeof(e)) == -1) {
			log_event(LOG_WARNING, "-", "daemon.reload_failed",
			    "what=listen msg=%s", log_q(e));
			rc = -1;
		}
	}
	if (strcmp(nc->control.socket, oc->control.socket) != 0) {
		control_free(d->control);
		if ((d->control = make_control(d, nc->control.socket, e,
		    sizeof(e))) == NULL) {
			log_event(LOG_WARNING, "-", "daemon.reload_failed",
			    "what=control msg=%s", log_q(e));
			rc = -1;
		}
	}
	if (strcmp(nc->metrics.listen, oc->metrics.listen) != 0) {
		metrics_free(d->metrics);
		d->metrics = NULL;
		if (nc->metrics.listen[0] != '\0' &&
		    (d->metrics = metrics_new(d->base, nc->metrics.listen,
		    daemon_status, d, e, sizeof(e))) == NULL) {
			log_event(LOG_WARNING, "-", "daemon.reload_failed",
			    "what=metrics msg=%s", log_q(e));
			rc = -1;
		}
	}
	return rc;
}

/*
 * SIGHUP or `sesrelayctl reload`: everything is loaded and checked first
 * (the file, the credentials, the maps, the TLS set-up); any error and
 * the running configuration stays, untouched.  Then it is switched:
 * new SMTP settings for every next command, new upstream pools (the old
 * ones finish what they are sending), listeners, control socket and
 * metrics re-opened where they changed.  Nothing queued is touched.
 */
static int
reload(struct daemon *d, char *err, size_t errlen)
{
	struct next n;
	struct conf *oc;
	char e[CONF_ERRLEN - 64], oldhost[sizeof(d->hostname)];

	if (d->stopping_since != 0) {
		snprintf(err, errlen, "shutting down");
		return -1;
	}
	memcpy(oldhost, d->hostname, sizeof(oldhost));
	if (reload_load(d, &n, e, sizeof(e)) == -1) {
		memcpy(d->hostname, oldhost, sizeof(oldhost));
		log_event(LOG_WARNING, "-", "daemon.reload_refused",
		    "reason=%s msg=\"the running configuration stays\"",
		    log_q(e));
		snprintf(err, errlen, "%s", e);
		return -1;
	}
	oc = reload_switch(d, &n);
	if (reload_sockets(d, oc) == -1) {
		snprintf(err, errlen, "reloaded, but some sockets could not "
		    "be opened (see the log)");
		conf_free(oc);
		kick_upstream(d);
		return -1;
	}
	conf_free(oc);
	kick_upstream(d);
	log_event(LOG_INFO, "-", "daemon.reloaded", "file=%s", log_q(d->file));
	return 0;
}

static int
control_reload(void *arg, char *err, size_t errlen)
{
	return reload(arg, err, errlen);
}

#ifdef HAVE_LIBSYSTEMD
/*
 * Tell systemd how things are (STATUS, shown by systemctl status) and
 * that the loop is alive (WATCHDOG=1, when WatchdogSec= is set): a loop
 * stuck for longer gets the service restarted.
 */
static void
notify_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct daemon *d = arg;
	struct upstream_status us;

	upstream_get_status(d->up, &us);
	sd_notifyf(0, "%sSTATUS=queue %zu (oldest %llds%s), sessions %zu, "
	    "rate %.1f/s%s%s", d->watchdog ? "WATCHDOG=1\n" : "",
	    scheduler_queued_count(d->sched),
	    scheduler_queued_count(d->sched) ?
	    scheduler_oldest_age(d->sched) : 0LL,
	    scheduler_is_indexing(d->sched) ? ", indexing" : "",
	    upstream_session_count(d->up), us.rate,
	    us.quota_paused ? ", daily quota exceeded: paused" : "",
	    d->up != d->primary ? ", on the fallback" : "");
}
#endif

static void
start_notify(struct daemon *d)
{
#ifdef HAVE_LIBSYSTEMD
	uint64_t usec = 0;
	struct timeval tv = { 10, 0 };

	if (getenv("NOTIFY_SOCKET") == NULL)
		return;
	if (sd_watchdog_enabled(0, &usec) > 0 && usec > 0) {
		d->watchdog = 1;
		usec /= 2;
		tv.tv_sec = (time_t)(usec / 1000000);
		tv.tv_usec = (suseconds_t)(usec % 1000000);
	}
	d->notify_ev = event_new(d->base, -1, EV_PERSIST, notify_cb, d);
	event_add(d->notify_ev, &tv);
	notify_cb(-1, 0, d);
#else
	(void)d;
#endif
}

static void
setup(struct daemon *d, const struct endpoint_credentials *cred,
    const struct endpoint_credentials *fcred)
{
	const struct conf *c = d->conf;
	struct smtp_server_config sc;
	struct scheduler_config schc;
	struct bounce_config bc;
	char err[CONF_ERRLEN];

	if ((d->spool = spool_open(c->spool, d->base, err, sizeof(err))) ==
	    NULL) {
		log_event(LOG_WARNING, "-", "daemon.spool_failed", "msg=%s",
		    log_q(err));
		exit(EX_CANTCREAT);
	}
	memset(&bc, 0, sizeof(bc));
	bc.sender = c->bounce.sender[0] ? c->bounce.sender : c->rewrite.sender;
	bc.hostname = d->hostname;
	d->bounce = bounce_new(d->spool, &bc);
	memset(&schc, 0, sizeof(schc));
	schc.retry = c->retry.schedule.v;
	schc.nretry = c->retry.schedule.n;
	schc.max_queue_time = c->retry.max_queue_time;
	schc.max_unknown_copies = (unsigned)c->retry.max_unknown_outcome_copies;
	schc.bounce = bounce_queue;
	schc.bounce_arg = d->bounce;
	d->sched = scheduler_new(d->base, d->spool, &schc, kick_upstream, d);
	bounce_set_scheduler(d->bounce, d->sched);
	/* tmp/ is cleaned now; queue/ is indexed while we serve. */
	scheduler_index_begin(d->sched);
	clock_gettime(CLOCK_MONOTONIC, &d->index_since);
	if ((d->index = spool_index_start(d->spool, d->base, index_found,
	    index_done, d)) == NULL) {
		log_event(LOG_WARNING | LOG_ERRNO, "-", "daemon.index_failed",
		    "spool=%s", log_q(c->spool));
		exit(EX_OSERR);
	}
	log_event(LOG_INFO, "-", "daemon.indexing", "spool=%s",
	    log_q(c->spool));

	if (make_pools(d, c, cred, fcred, d->ses, &d->primary, &d->fallback,
	    err, sizeof(err)) == -1) {
		log_event(LOG_WARNING, "-", "daemon.upstream_failed", "msg=%s",
		    log_q(err));
		exit(EX_CONFIG);
	}
	d->up = d->primary;
	if (d->fallback != NULL) {
		struct timeval tv = { 2, 0 };

		d->failover_ev = event_new(d->base, -1, EV_PERSIST,
		    failover_cb, d);
		event_add(d->failover_ev, &tv);
	}
	d->allow = make_allow(c);
	smtp_config(d, c, d->cleanup, d->allow, &sc);
	d->smtp = smtp_server_new(d->base, d->spool, &sc, accepted, d);
	start_listeners(d);
}

/*
 * Shutdown order: stop accepting; let the sync thread finish so every
 * commit's client is answered; then close sessions (in-flight upstream
 * transactions are given back and stay in the spool).
 */
static void
teardown(struct daemon *d)
{
	spool_index_free(d->index);
	d->index = NULL;
	smtp_server_stop_listening(d->smtp);
	control_free(d->control);
	d->control = NULL;
	metrics_free(d->metrics);
	d->metrics = NULL;
	pickup_stop(d->pickup);
	spool_drain(d->spool);		/* every commit's client answered */
	pickup_free(d->pickup);
	d->pickup = NULL;
	smtp_server_free(d->smtp);
	if (d->failover_ev != NULL)
		event_free(d->failover_ev);
	if (d->drain_ev != NULL)
		event_free(d->drain_ev);
	upstream_free(d->primary);
	upstream_free(d->fallback);
	while (d->retired != NULL) {
		struct retired *r = d->retired;

		d->retired = r->next;
		upstream_free(r->pool[0]);
		upstream_free(r->pool[1]);
		ses_headers_free(r->ses);
		free(r);
	}
	if (d->retire_ev != NULL)
		event_free(d->retire_ev);
	if (d->notify_ev != NULL)
		event_free(d->notify_ev);
	spool_drain(d->spool);
	scheduler_free(d->sched);
	bounce_free(d->bounce);
	spool_close(d->spool);
	evdns_base_free(d->dns, 1);
	free(d->allow);
}

struct options {
	const char	*file;		/* conf_path's choice */
	int		 foreground;	/* -f */
	int		 test;		/* -t */
	int		 verbose;	/* -d */
};

/* The command line; -v, -h and anything wrong end here. */
static void
parse_options(int argc, char *argv[], struct options *o)
{
	static const struct option longopts[] = {
		{ "version", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int ch;

	memset(o, 0, sizeof(*o));
	while ((ch = getopt_long(argc, argv, "c:dftvh", longopts, NULL)) != -1)
		switch (ch) {
		case 'c':
			o->file = optarg;
			break;
		case 'd':
			o->verbose = 1;
			break;
		case 'f':
			o->foreground = 1;
			break;
		case 't':
			o->test = 1;
			break;
		case 'v':
			printf("sesrelayd %s\n", PACKAGE_VERSION);
			exit(0);
		default:
			usage();
		}
	if (optind != argc)
		usage();
	o->file = conf_path(o->file);
}

/* -t, the configuration loaded and checked: print it, say it is valid. */
static int
test_config(struct daemon *d, struct endpoint_credentials *cred,
    struct endpoint_credentials *fcred)
{
	ses_headers_free(d->ses);
	cleanup_free(d->cleanup);
	conf_dump(d->conf, stdout);
	if (d->conf->rewrite.sender[0] == '\0')
		fprintf(stderr, "sesrelayd: warning: %s\n", NO_REWRITE_SENDER);
	fprintf(stderr, "sesrelayd: %s: configuration is valid\n", d->file);
	endpoint_credentials_clear(cred);
	endpoint_credentials_clear(fcred);
	conf_free(d->conf);
	return 0;
}

/* The event loop, libevent's own warnings in our log, and the resolver. */
static void
make_loop(struct daemon *d)
{
	log_route_libevent();
	if ((d->base = event_base_new()) == NULL)
		fatalx("daemon.fatal", "call=event_base_new");
	d->dns = evdns_base_new(d->base, EVDNS_BASE_INITIALIZE_NAMESERVERS |
	    EVDNS_BASE_DISABLE_WHEN_INACTIVE);
	if (d->dns == NULL)
		d->dns = evdns_base_new(d->base,
		    EVDNS_BASE_DISABLE_WHEN_INACTIVE);
	if (d->dns == NULL)
		fatalx("daemon.fatal", "call=evdns_base_new");
}

static const int signums[] = { SIGTERM, SIGINT, SIGHUP, SIGUSR1 };
#define NSIGNALS	(sizeof(signums) / sizeof(signums[0]))

/* Signals become loop events (signal_cb). */
static void
add_signals(struct daemon *d, struct event *sigs[NSIGNALS])
{
	for (size_t i = 0; i < NSIGNALS; i++) {
		sigs[i] = evsignal_new(d->base, signums[i], signal_cb, d);
		evsignal_add(sigs[i], NULL);
	}
}

/*
 * Start-up went well: tell systemd, and release the waiting parent
 * (ready_fd, -1 in the foreground); from then on log to syslog only.
 */
static void
announce_ready(struct daemon *d, int ready_fd, int verbose)
{
#ifdef HAVE_LIBSYSTEMD
	sd_notify(0, "READY=1");
#endif
	start_notify(d);
	log_event(LOG_INFO, "-", "daemon.started", "version=%s",
	    log_q(PACKAGE_VERSION));
	if (ready_fd == -1)
		return;
	detach_stdio();
	log_init(0, verbose, "sesrelayd");
	if (write(ready_fd, "R", 1) != 1)
		log_event(LOG_WARNING | LOG_ERRNO, "-",
		    "daemon.ready_failed", "fd=%d", ready_fd);
	close(ready_fd);
}

/* The loop has ended: free everything, in order. */
static void
shut_down(struct daemon *d, struct event *sigs[NSIGNALS])
{
#ifdef HAVE_LIBSYSTEMD
	sd_notify(0, "STOPPING=1");
#endif
	teardown(d);
	cleanup_free(d->cleanup);
	ses_headers_free(d->ses);
	for (size_t i = 0; i < NSIGNALS; i++)
		event_free(sigs[i]);
	event_base_free(d->base);
	conf_free(d->conf);
	log_event(LOG_INFO, "-", "daemon.stopped", "status=%d",
	    d->exit_status);
}

int
main(int argc, char *argv[])
{
	struct options o;
	struct endpoint_credentials cred, fcred;
	struct daemon d;
	struct next loaded;
	struct event *sigs[NSIGNALS];
	char err[CONF_ERRLEN];
	int ready_fd = -1;

	parse_options(argc, argv, &o);
	log_init(1, o.verbose, "sesrelayd");
	raise_nofile();
	memset(&d, 0, sizeof(d));
	d.file = o.file;
	if (load_config(d.file, &loaded, &cred, &fcred, d.hostname,
	    sizeof(d.hostname), err, sizeof(err)) == -1) {
		fprintf(stderr, "sesrelayd: %s\n", err);
		return EX_CONFIG;
	}
	d.conf = loaded.conf;
	d.cleanup = loaded.cleanup;
	d.ses = loaded.ses;
	if (o.test)
		return test_config(&d, &cred, &fcred);
	if (d.conf->rewrite.sender[0] == '\0')
		log_event(LOG_WARNING, "-", "daemon.no_rewrite_sender",
		    "msg=%s", log_q(NO_REWRITE_SENDER));
	umask(077);
	signal(SIGPIPE, SIG_IGN);
	if (!o.foreground)
		ready_fd = background();
	make_loop(&d);
	stats.started = time(NULL);
	privsep_take_activated(&d.lfds);
	privsep_drop(d.conf, &d.lfds);
	setup(&d, &cred, &fcred);
	endpoint_credentials_clear(&cred);
	endpoint_credentials_clear(&fcred);
	add_signals(&d, sigs);
	announce_ready(&d, ready_fd, o.verbose);
	event_base_dispatch(d.base);
	shut_down(&d, sigs);
	return d.exit_status;
}
