/*
 * log.h: the daemon's logging, in the OpenBSD log.h shape.
 *
 * One line per event: "<queue id or -> <subsystem> <event> key=value ...".
 * Under -f (log_init(1, ...)) lines go to stderr, otherwise to syslog.
 * log_warn() appends strerror(errno); every function preserves errno.
 * Credentials must never be passed to any of these.
 */
#ifndef SESRELAY_LOG_H
#define SESRELAY_LOG_H

#include <stdarg.h>

#define LOG_PRINTF(f, a) __attribute__((format(printf, f, a)))

void log_init(int to_stderr, int verbose, const char *ident);
void log_set_verbose(int verbose);
int log_is_verbose(void);

void log_warn(const char *fmt, ...) LOG_PRINTF(1, 2);
void log_warnx(const char *fmt, ...) LOG_PRINTF(1, 2);
void log_info(const char *fmt, ...) LOG_PRINTF(1, 2);
void log_debug(const char *fmt, ...) LOG_PRINTF(1, 2);
void fatal(const char *fmt, ...) LOG_PRINTF(1, 2) __attribute__((noreturn));
void fatalx(const char *fmt, ...) LOG_PRINTF(1, 2) __attribute__((noreturn));

/* Route libevent's own warnings into this log. */
void log_route_libevent(void);

#endif
