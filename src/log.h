/*
 * log.h: the daemon's logging, in the OpenBSD log.h shape, one line per
 * event that a machine can read (the events and their fields are listed
 * in sesrelayd(8), LOGGING; keep that list and the names stable):
 *
 *	<queue id or -> <subsystem>.<event> key=value ... [msg="..."] [error="..."]
 *
 * Keys are lower_snake.  A value is written bare when it is non-empty
 * and only printable ASCII other than '"' and '\' (0x21-0x7e); any other
 * value is quoted: "...", with \" \\ \n \r \t for those bytes, \xHH for
 * the other control bytes, DEL and bytes that are not valid UTF-8 (valid
 * UTF-8 is kept as it is).  So a value never holds a raw newline or an
 * unquoted space: a client cannot forge a line or a field.  Free text
 * goes only in msg=.
 *
 * Every string value that is not a fixed token of the code goes through
 * log_q() (or log_qa() for a mail address, logged in <>); as a last guard
 * the emitter escapes any control byte left in the line.  LOG_ERRNO
 * or'ed into the priority appends error="strerror(errno)".
 *
 * Under -f (log_init(1, ...)) lines go to stderr, otherwise to syslog.
 * Every function preserves errno.  Credentials must never be passed to
 * any of these, not even at LOG_DEBUG.
 */
#ifndef SESRELAY_LOG_H
#define SESRELAY_LOG_H

#include <stdarg.h>
#include <stddef.h>
#include <syslog.h>

#define LOG_PRINTF(f, a) __attribute__((format(printf, f, a)))

/* Or'ed into log_event's priority: append error="strerror(errno)". */
#define LOG_ERRNO 0x100

void log_init(int to_stderr, int verbose, const char *ident);
void log_set_verbose(int verbose);
int log_is_verbose(void);

/*
 * One event: pri a syslog priority (LOG_DEBUG only when verbose), maybe
 * | LOG_ERRNO; id a queue id or "-"; event "<subsystem>.<event>"; fmt the
 * fields, " key=value" each, values through log_q()/log_qa().
 */
void log_event(int pri, const char *id, const char *event,
    const char *fmt, ...) LOG_PRINTF(4, 5);
/* At start-up or for a broken invariant: log at LOG_CRIT, exit 1. */
void fatal(const char *event, const char *fmt, ...) LOG_PRINTF(2, 3)
    __attribute__((noreturn));		/* with error="strerror(errno)" */
void fatalx(const char *event, const char *fmt, ...) LOG_PRINTF(2, 3)
    __attribute__((noreturn));

/*
 * Quote v as a field value (the rule above) into dst, at most size (8
 * or more) bytes with the NUL; a value cut short ends with "..." inside
 * its quotes.
 * Returns dst.  Pure.
 */
char *log_quote(char *dst, size_t size, const char *v);
/*
 * v quoted, in one of 8 per-thread buffers of 1024 bytes (so at most 8
 * quoted values in one log_event call): for log_event's arguments only.
 * NULL is logged as "-".
 */
const char *log_q(const char *v);
/* A mail address as "<addr>", quoted as a whole when it needs it. */
const char *log_qa(const char *addr);

/* Route libevent's own warnings into this log. */
void log_route_libevent(void);

#endif
