/*
 * ctlclient.h: ask sesrelayd over its control socket (sesrelayctl,
 * mailq).  Blocking: these are short-lived programs.
 */
#ifndef SESRELAY_CTLCLIENT_H
#define SESRELAY_CTLCLIENT_H

#include <stddef.h>
#include <stdio.h>

/*
 * Send one request line to the socket at path and copy the answer's body
 * to out.  Returns 0 on "OK"; 1 on "ERR" with the reason in err; -1 when
 * the daemon cannot be reached or answers nonsense (errno set, err says
 * why).  timeout: seconds to wait for each read of the answer.
 */
int ctlclient_call(const char *path, const char *request, FILE *out,
    int timeout, char *err, size_t errlen);

/* The sysexits code for an ERR reason (permission, usage, not found). */
int ctlclient_exit_code(const char *err);

#endif
