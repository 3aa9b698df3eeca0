/*
 * ses_password.c: SES SMTP password derivation (documented by AWS): the
 * SigV4 signing key (sigv4.c) of the fixed date "11111111", the region
 * and service "ses", then one more HMAC-SHA256 over "SendRawEmail"; the
 * password is base64(0x04 || that HMAC).
 */
#include "config.h"

#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "ses_password.h"
#include "sigv4.h"

int
ses_password_v4(const char *secret, const char *region,
    char out[SES_PASSWORD_LEN + 1])
{
	unsigned char key[32], raw[33];
	int rc;

	if (strlen(secret) > 256 || *region == '\0')
		return -1;
	rc = sigv4_signing_key(secret, "11111111", region, "ses", key) == -1 ||
	    sigv4_hmac(key, 32, "SendRawEmail", raw + 1) == -1 ? -1 : 0;
	OPENSSL_cleanse(key, sizeof(key));
	if (rc == -1)
		return -1;
	raw[0] = 0x04;
	EVP_EncodeBlock((unsigned char *)out, raw, 33);
	OPENSSL_cleanse(raw, sizeof(raw));
	return 0;
}
