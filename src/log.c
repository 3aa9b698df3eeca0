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

/* Write one finished line at a syslog priority. */
static void
log_write(int pri, const char *line)
{
	if (log_stderr && log_journal) {
		fprintf(stderr, "<%d>%s\n", pri, line);
		fflush(stderr);
	} else if (log_stderr) {
		struct timespec ts;
		struct tm tm;
		char stamp[32];

		clock_gettime(CLOCK_REALTIME, &ts);
		localtime_r(&ts.tv_sec, &tm);
		strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
		fprintf(stderr, "%s.%03ld %s: %s\n", stamp,
		    ts.tv_nsec / 1000000, log_ident, line);
		fflush(stderr);
	} else
		syslog(pri, "%s", line);
}

/*
 * Build "<id> <event> fields [error=...]" and write it.  The values came
 * quoted; a control byte still in the line (a caller's bug) becomes '?',
 * so that no line is ever split or forged.
 */
static void
log_vevent(int pri, const char *id, const char *event, const char *fmt,
    va_list ap)
{
	char line[2048];
	int saved = errno;
	size_t n, i;

	n = (size_t)snprintf(line, sizeof(line), "%s %s", id ? id : "-",
	    event);
	if (n < sizeof(line) - 1 && fmt[0] != '\0') {
		line[n++] = ' ';
		vsnprintf(line + n, sizeof(line) - n, fmt, ap);
	}
	n = strlen(line);
	if ((pri & LOG_ERRNO) && n < sizeof(line))
		snprintf(line + n, sizeof(line) - n, " error=%s",
		    log_q(strerror(saved)));
	for (i = 0; line[i] != '\0'; i++)
		if ((unsigned char)line[i] < 0x20 || line[i] == 0x7f)
			line[i] = '?';
	log_write(pri & LOG_PRIMASK, line);
	errno = saved;
}

void
log_event(int pri, const char *id, const char *event, const char *fmt, ...)
{
	va_list ap;

	if ((pri & LOG_PRIMASK) == LOG_DEBUG && !log_verbose)
		return;
	va_start(ap, fmt);
	log_vevent(pri, id, event, fmt, ap);
	va_end(ap);
}

void
fatal(const char *event, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vevent(LOG_CRIT | LOG_ERRNO, "-", event, fmt, ap);
	va_end(ap);
	exit(1);
}

void
fatalx(const char *event, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vevent(LOG_CRIT, "-", event, fmt, ap);
	va_end(ap);
	exit(1);
}

static void
log_libevent_cb(int severity, const char *msg)
{
	log_event(severity == EVENT_LOG_DEBUG ? LOG_DEBUG : LOG_WARNING, "-",
	    "libevent.message", "msg=%s", log_q(msg));
}

void
log_route_libevent(void)
{
	event_set_log_callback(log_libevent_cb);
}
