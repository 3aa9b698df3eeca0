/*
 * ses_password.h: the SES SMTP password, derived from an IAM secret
 * access key (SigV4, version byte 0x04).
 */
#ifndef SESRELAY_SES_PASSWORD_H
#define SESRELAY_SES_PASSWORD_H

#include <stddef.h>

#define SES_PASSWORD_LEN	44	/* base64 of 33 bytes */

/* Derive into out (SES_PASSWORD_LEN + 1 bytes); 0, or -1. */
int ses_password_v4(const char *secret, const char *region,
    char out[SES_PASSWORD_LEN + 1]);

#endif
