/*
 * fuzz_aws_json.c: the JSON that AWS services answer, read by
 * json_scan.c: IMDS's credentials (creds_imds_parse) and GetAccount
 * (account_parse), and any member by name.
 *
 * The input is an answer body, given in a buffer of exactly its length
 * (not NUL-terminated: the readers must stop at len).  The first byte
 * picks the size of the output buffer for json_scan_string (1 to 64).
 *
 * Invariants: a string read is NUL-terminated within the size given;
 * a number or bool is only read from JSON the checker accepted (the same
 * text read twice gives the same answer); parsed credentials are
 * complete (key id, secret, token, an expiration); a parsed account is
 * marked known and its hold is one of the four.
 */
#include "config.h"

#include "fuzz_util.h"
#include "account.h"
#include "creds.h"
#include "creds_imds.h"
#include "json_scan.h"

static const char *const keys[] = { "AccessKeyId", "Token", "Code",
    "EnforcementStatus", "SendQuota", "k", "" };

static void
check_strings(const char *js, size_t len, size_t outlen)
{
	char *out = fuzz_alloc(outlen);

	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (json_scan_string(js, len, keys[i], out, outlen) == 0)
			FUZZ_CHECK(strnlen(out, outlen) < outlen);
	free(out);
}

static void
check_scalars(const char *js, size_t len)
{
	double d1, d2;
	int b1, b2;

	if (json_scan_number(js, len, "MaxSendRate", &d1) == 0) {
		FUZZ_CHECK(json_scan_number(js, len, "MaxSendRate", &d2) == 0);
		FUZZ_CHECK(d1 == d2 || d1 != d1);	/* NaN is not equal */
	}
	if (json_scan_bool(js, len, "SendingEnabled", &b1) == 0) {
		FUZZ_CHECK(b1 == 0 || b1 == 1);
		FUZZ_CHECK(json_scan_bool(js, len, "SendingEnabled", &b2) == 0);
		FUZZ_CHECK(b1 == b2);
	}
}

static void
check_parsers(const char *js, size_t len)
{
	struct aws_creds a;
	struct account_view v;
	char err[160];

	if (creds_imds_parse(js, len, &a, err, sizeof(err)) == 0) {
		FUZZ_CHECK(a.access_key_id != NULL && *a.access_key_id);
		FUZZ_CHECK(a.secret_access_key != NULL && *a.secret_access_key);
		FUZZ_CHECK(a.session_token != NULL);
		aws_creds_clear(&a);
	} else
		FUZZ_CHECK(a.access_key_id == NULL && strnlen(err,
		    sizeof(err)) < sizeof(err));
	memset(&v, 0, sizeof(v));
	if (account_parse(js, len, &v) == 0) {
		FUZZ_CHECK(v.known == 1);
		FUZZ_CHECK(account_should_hold(&v) <= ACCOUNT_SHUTDOWN);
		FUZZ_CHECK(account_rate(&v) >= 0.01 || account_rate(&v) !=
		    account_rate(&v));
	} else
		FUZZ_CHECK(v.known == 0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t outlen;
	char *js;

	if (size < 1)
		return 0;
	outlen = 1 + data[0] % 64;
	js = fuzz_alloc(size - 1);
	memcpy(js, data + 1, size - 1);
	check_strings(js, size - 1, outlen);
	check_scalars(js, size - 1);
	check_parsers(js, size - 1);
	free(js);
	return 0;
}
