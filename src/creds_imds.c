/*
 * creds_imds.c: the instance role through IMDSv2 (being written).
 */
#include "config.h"

#include <stddef.h>

#include "conf.h"
#include "creds_imds.h"

struct creds_imds *
creds_imds_new(struct event_base *base, struct evdns_base *dns,
    const char *url, void (*got)(void *, const struct aws_creds *),
    void *arg, char *err, size_t errlen)
{
	(void)base; (void)dns; (void)url; (void)got; (void)arg;
	conf_errf(err, errlen, "auth \"instance-role\" is not available yet");
	return NULL;
}

void
creds_imds_refresh(struct creds_imds *m)
{
	(void)m;
}

void
creds_imds_free(struct creds_imds *m)
{
	(void)m;
}
