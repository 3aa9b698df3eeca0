/*
 * narrow_random.c: an LD_PRELOAD shim for the id collision test.
 *
 * getrandom() still asks the kernel, but keeps only the low
 * NARROW_RANDOM_BITS bits (default 8) of the first byte and zeroes the
 * rest of the buffer: whatever draws its randomness from getrandom()
 * gets 2^bits distinct values per call, so random names collide within
 * seconds.  Built by tests/integration/spool_id_collisions.sh with
 * cc -shared -fPIC; never part of the programs.
 */
#define _GNU_SOURCE
#include <sys/syscall.h>
#include <sys/types.h>

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

ssize_t getrandom(void *buf, size_t len, unsigned int flags);

ssize_t
getrandom(void *buf, size_t len, unsigned int flags)
{
	const char *env = getenv("NARROW_RANDOM_BITS");
	int bits = env != NULL ? atoi(env) : 8;
	long n = syscall(SYS_getrandom, buf, len, flags);
	unsigned char first;

	if (n <= 0)
		return n;
	if (bits < 0 || bits > 8)
		bits = 8;
	first = ((unsigned char *)buf)[0] & (unsigned char)((1u << bits) - 1);
	memset(buf, 0, (size_t)n);
	((unsigned char *)buf)[0] = first;
	return n;
}
