/*
 * log.c: logging to stderr (foreground) or syslog.
 *
 * Owns the logging destination and verbosity; nothing else writes to
 * stderr or syslog.  fatal()/fatalx() exit with status 1 and are meant
 * for start-up, configuration and broken invariants only.
 */
#include "config.h"

#include <sys/stat.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "log.h"

static int log_stderr = 1;
static int log_journal;		/* stderr is journald's: "<N>" prefixes */
static int log_verbose;
static const char *log_ident = "sesrelay";

void
log_init(int to_stderr, int verbose, const char *ident)
{
	log_stderr = to_stderr;
	log_verbose = verbose;
	log_journal = 0;
	if (to_stderr) {
		/*
		 * systemd sets JOURNAL_STREAM to stderr's "device:inode" when
		 * stderr goes to the journal: it stamps lines itself and reads
		 * a priority from "<N>".
		 */
		const char *js = getenv("JOURNAL_STREAM");
		struct stat st;
		char want[64];

		if (js != NULL && fstat(STDERR_FILENO, &st) == 0) {
			snprintf(want, sizeof(want), "%llu:%llu",
			    (unsigned long long)st.st_dev,
			    (unsigned long long)st.st_ino);
			log_journal = strcmp(js, want) == 0;
		}
	}
	log_ident = ident;
	if (!to_stderr)
		openlog(ident, LOG_PID | LOG_NDELAY, LOG_MAIL);
	tzset();
}

void
log_set_verbose(int verbose)
{
	log_verbose = verbose;
}

int
log_is_verbose(void)
{
	return log_verbose;
}

/* Emit one line at a syslog priority; the line never contains a newline. */
static void
log_vemit(int pri, const char *fmt, va_list ap, const char *suffix)
{
	char line[2048];
	int saved = errno;
	size_t i;

	vsnprintf(line, sizeof(line), fmt, ap);
	for (i = 0; line[i] != '\0'; i++)
		if (line[i] == '\n' || line[i] == '\r')
			line[i] = ' ';
	if (log_stderr && log_journal) {
		fprintf(stderr, "<%d>%s%s%s\n", pri, line, suffix ? ": " : "",
		    suffix ? suffix : "");
		fflush(stderr);
	} else if (log_stderr) {
		struct timespec ts;
		struct tm tm;
		char stamp[32];

		clock_gettime(CLOCK_REALTIME, &ts);
		localtime_r(&ts.tv_sec, &tm);
		strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
		fprintf(stderr, "%s.%03ld %s: %s%s%s\n", stamp,
		    ts.tv_nsec / 1000000, log_ident, line,
		    suffix ? ": " : "", suffix ? suffix : "");
		fflush(stderr);
	} else {
		if (suffix)
			syslog(pri, "%s: %s", line, suffix);
		else
			syslog(pri, "%s", line);
	}
	errno = saved;
}

void
log_warn(const char *fmt, ...)
{
	va_list ap;
	const char *err = strerror(errno);

	va_start(ap, fmt);
	log_vemit(LOG_WARNING, fmt, ap, err);
	va_end(ap);
}

void
log_warnx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vemit(LOG_WARNING, fmt, ap, NULL);
	va_end(ap);
}

void
log_info(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vemit(LOG_INFO, fmt, ap, NULL);
	va_end(ap);
}

void
log_debug(const char *fmt, ...)
{
	va_list ap;

	if (!log_verbose)
		return;
	va_start(ap, fmt);
	log_vemit(LOG_DEBUG, fmt, ap, NULL);
	va_end(ap);
}

void
fatal(const char *fmt, ...)
{
	va_list ap;
	const char *err = strerror(errno);

	va_start(ap, fmt);
	log_vemit(LOG_CRIT, fmt, ap, err);
	va_end(ap);
	exit(1);
}

void
fatalx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vemit(LOG_CRIT, fmt, ap, NULL);
	va_end(ap);
	exit(1);
}

static void
log_libevent_cb(int severity, const char *msg)
{
	if (severity == EVENT_LOG_DEBUG)
		log_debug("- libevent %s", msg);
	else
		log_warnx("- libevent %s", msg);
}

void
log_route_libevent(void)
{
	event_set_log_callback(log_libevent_cb);
}
