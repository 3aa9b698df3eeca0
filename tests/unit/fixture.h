/*
 * fixture.h: what the Check suites share: scratch directories that are
 * removed even after a failure, an event loop that never blocks for
 * ever in EVLOOP_ONCE, and the one main() they all run.
 */
#ifndef SESRELAY_TEST_FIXTURE_H
#define SESRELAY_TEST_FIXTURE_H

#include <stddef.h>

#include <check.h>

struct event;
struct event_base;

/* Make "$TMPDIR/<name>.XXXXXX" (or under dir when not NULL) into buf. */
void fixture_mkdtemp(char *buf, size_t len, const char *dir,
    const char *name);
/* Remove a directory tree; missing is fine. */
void fixture_rmtree(const char *path);
/* A new event base with a 20 ms persistent timer in *guard. */
struct event_base *fixture_loop_new(struct event **guard);
void fixture_loop_free(struct event_base *, struct event *guard);
/* Run suite s and free it: every suite's main; its exit status. */
int fixture_run(Suite *s);

#endif
