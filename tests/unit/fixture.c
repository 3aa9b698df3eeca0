/*
 * fixture.c: shared scaffolding of the Check suites (see fixture.h).
 */
#include "config.h"

#include <sys/stat.h>

#include <check.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>

#include <event2/event.h>

#include "fixture.h"

static int
rm_entry(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(p);
}

void
fixture_mkdtemp(char *buf, size_t len, const char *dir, const char *name)
{
	const char *tmp = getenv("TMPDIR");

	if (dir == NULL)
		dir = tmp && *tmp ? tmp : "/tmp";
	snprintf(buf, len, "%s/%s.XXXXXX", dir, name);
	ck_assert_ptr_nonnull(mkdtemp(buf));
}

void
fixture_rmtree(const char *path)
{
	nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Keeps EVLOOP_ONCE from blocking for ever when nothing else happens. */
static void
guard_cb(evutil_socket_t fd, short ev, void *arg)
{
}

struct event_base *
fixture_loop_new(struct event **guard)
{
	struct timeval tv = { 0, 20000 };
	struct event_base *base = event_base_new();

	ck_assert_ptr_nonnull(base);
	*guard = event_new(base, -1, EV_PERSIST, guard_cb, NULL);
	ck_assert_ptr_nonnull(*guard);
	event_add(*guard, &tv);
	return base;
}

void
fixture_loop_free(struct event_base *base, struct event *guard)
{
	event_free(guard);
	event_base_free(base);
}

int
fixture_run(Suite *s)
{
	SRunner *sr = srunner_create(s);
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
