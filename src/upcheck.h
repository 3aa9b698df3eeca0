/*
 * upcheck.h: `sesrelayctl check`: one connection to the configured SES
 * endpoint, step by step (DNS, TCP, banner, EHLO, TLS and the
 * certificate, AUTH), each step's result printed, and the usual
 * mistakes explained when one fails (IAM keys instead of SMTP
 * credentials, a password derived for another region, port 25 blocked).
 */
#ifndef SESRELAY_UPCHECK_H
#define SESRELAY_UPCHECK_H

#include <stdio.h>

struct conf;

/*
 * Check the upstream (fallback: the fallback's settings).  Prints to
 * out; returns a sysexits code: 0, EX_UNAVAILABLE (cannot reach or talk
 * to it), EX_PROTOCOL (TLS or the certificate), EX_NOPERM (credentials
 * refused), EX_CONFIG (no such fallback, unreadable credentials).
 */
int check_upstream(const struct conf *, int fallback, int timeout,
    FILE *out);

/* The advice for a refused AUTH (pure, for the tests). */
/*
 * Where the endpoint has API credentials (upcheck_api.c): the account's
 * quota and state (GetAccount), and whether rewrite.sender and
 * bounce.sender are verified identities in its region
 * (GetEmailIdentity), printed as check_upstream prints.  0 when all is
 * well (or there are no API credentials); EX_CONFIG for an identity
 * not verified; EX_NOPERM when SES refuses the credentials;
 * EX_UNAVAILABLE when the API cannot be asked or sending is paused.
 */
int check_account(const struct conf *, int fallback, int timeout,
    FILE *out);

const char *check_auth_advice(const char *username, const char *password,
    const char *region, const char *host);

#endif
