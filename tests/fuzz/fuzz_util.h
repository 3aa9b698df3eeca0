/*
 * fuzz_util.h: the little the libFuzzer targets share.
 *
 * FUZZ_CHECK aborts (so libFuzzer saves the input) when an invariant
 * does not hold; it is not assert(), which NDEBUG would remove.  Copies
 * of the input are exactly as long as asked, so ASan reports a parser
 * that reads one byte past what it was given.
 */
#ifndef SESRELAY_FUZZ_UTIL_H
#define SESRELAY_FUZZ_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* Run before FUZZ_CHECK aborts (fuzz_scratch.h: remove the scratch). */
static void (*fuzz_failure_hook)(void) __attribute__((unused));

#define FUZZ_CHECK(cond)						\
	do {								\
		if (!(cond)) {						\
			fprintf(stderr, "%s:%d: invariant failed: %s\n",\
			    __FILE__, __LINE__, #cond);			\
			if (fuzz_failure_hook != NULL)			\
				fuzz_failure_hook();			\
			abort();					\
		}							\
	} while (0)

/* A buffer of exactly n bytes (one byte if n is 0), not cleared. */
static inline char *
fuzz_alloc(size_t n)
{
	char *c = malloc(n ? n : 1);

	if (c == NULL)
		abort();
	return c;
}

/* n bytes of p in a buffer of exactly n bytes (one byte if n is 0). */
static inline char *
fuzz_copy(const void *p, size_t n)
{
	char *c = fuzz_alloc(n);

	if (n)
		memcpy(c, p, n);
	return c;
}

/* n bytes of p and a NUL, in a buffer of exactly n + 1 bytes. */
static inline char *
fuzz_strndup(const void *p, size_t n)
{
	char *c = malloc(n + 1);

	if (c == NULL)
		abort();
	if (n)
		memcpy(c, p, n);
	c[n] = '\0';
	return c;
}

/*
 * A copy whose last byte ends a page, with an unmapped page after it.
 * ASan sees reads past a malloc'd buffer only in instrumented code and
 * in the libc calls it intercepts; a libc call it does not intercept
 * (strtoul) that runs past the end faults here instead.
 */
struct fuzz_guarded {
	char	*buf;
	void	*map;
	size_t	 maplen;
};

static inline void
fuzz_guarded_copy(struct fuzz_guarded *g, const void *p, size_t n)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	size_t data = (n + page - 1) / page * page;

	g->maplen = data + page;
	g->map = mmap(NULL, g->maplen, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (g->map == MAP_FAILED ||
	    mprotect((char *)g->map + data, page, PROT_NONE) == -1)
		abort();
	g->buf = (char *)g->map + data - n;
	if (n)
		memcpy(g->buf, p, n);
}

static inline void
fuzz_guarded_free(struct fuzz_guarded *g)
{
	munmap(g->map, g->maplen);
}

#endif
