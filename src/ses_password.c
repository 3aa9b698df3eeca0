/*
 * ses_password.c: SES SMTP password derivation (documented by AWS):
 * a chain of HMAC-SHA256 keyed first by "AWS4" + secret over the fixed
 * date "11111111", then the region, "ses", "aws4_request" and
 * "SendRawEmail"; the password is base64(0x04 || last HMAC).
 */
#include "config.h"

#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "ses_password.h"

static int
hmac(const unsigned char *key, size_t keylen, const char *msg,
    unsigned char out[32])
{
	unsigned int len = 32;

	return HMAC(EVP_sha256(), key, (int)keylen, (const unsigned char *)msg,
	    strlen(msg), out, &len) == NULL ? -1 : 0;
}

int
ses_password_v4(const char *secret, const char *region,
    char out[SES_PASSWORD_LEN + 1])
{
	static const char *const chain[] = { "ses", "aws4_request",
	    "SendRawEmail" };
	unsigned char key[32], raw[33];
	size_t slen = strlen(secret);
	unsigned char first[4 + 256];

	if (slen > 256 || *region == '\0')
		return -1;
	memcpy(first, "AWS4", 4);
	memcpy(first + 4, secret, slen);
	if (hmac(first, 4 + slen, "11111111", key) == -1 ||
	    hmac(key, 32, region, key) == -1)
		return -1;
	for (size_t i = 0; i < sizeof(chain) / sizeof(chain[0]); i++)
		if (hmac(key, 32, chain[i], key) == -1)
			return -1;
	raw[0] = 0x04;
	memcpy(raw + 1, key, 32);
	EVP_EncodeBlock((unsigned char *)out, raw, 33);
	OPENSSL_cleanse(first, sizeof(first));
	OPENSSL_cleanse(key, sizeof(key));
	return 0;
}
