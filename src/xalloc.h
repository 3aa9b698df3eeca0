/*
 * xalloc.h: allocation that cannot fail quietly.  A daemon that runs out
 * of memory in the middle of a transaction cannot keep its promises, so
 * it stops (abort) and restarts from the spool, which has everything.
 */
#ifndef SESRELAY_XALLOC_H
#define SESRELAY_XALLOC_H

#include <stdlib.h>
#include <string.h>

/* A copy of s ("" for NULL). */
static inline char *
xstrdup(const char *s)
{
	char *p = strdup(s ? s : "");

	if (p == NULL)
		abort();
	return p;
}

static inline char *
xstrndup(const char *s, size_t n)
{
	char *p = strndup(s, n);

	if (p == NULL)
		abort();
	return p;
}

#endif
