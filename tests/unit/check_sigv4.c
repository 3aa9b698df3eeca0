/*
 * check_sigv4.c: the SigV4 signer against botocore's Authorization
 * values (tests/unit/sigv4_vectors.h, written by sigv4_vectors.py), and
 * the SHA-256 helpers.
 */
#include "config.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "creds.h"
#include "sigv4.h"
#include "fixture.h"
#include "sigv4_vectors.h"

#define EMPTY_SHA256 \
	"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

/* The request and key of vector i; hash holds the body's SHA-256. */
static void
vector_request(size_t i, struct sigv4_request *r, struct aws_creds *c,
    char hash[SIGV4_HEX_LEN + 1])
{
	const struct sigv4_vector *v = &sigv4_vectors[i];
	const char *body = v->json_body ? SIGV4_JSON_BODY : "";

	ck_assert_int_eq(sigv4_sha256_hex(body, strlen(body), hash), 0);
	memset(r, 0, sizeof(*r));
	r->method = v->method;
	r->host = v->host;
	r->path = v->path;
	r->query = v->query;
	r->content_type = v->ctype;
	r->payload_sha256 = hash;
	r->region = v->region;
	r->service = "ses";
	r->now = (time_t)v->now;
	memset(c, 0, sizeof(*c));
	c->access_key_id = (char *)SIGV4_KEY;
	c->secret_access_key = (char *)SIGV4_SECRET;
	c->session_token = (char *)v->token;
}

START_TEST(test_botocore_vector)
{
	char hash[SIGV4_HEX_LEN + 1], auth[SIGV4_AUTH_LEN], date[17];
	struct sigv4_request r;
	struct aws_creds c;

	vector_request(_i, &r, &c, hash);
	ck_assert_int_eq(sigv4_sign(&r, &c, auth, sizeof(auth), date), 0);
	ck_assert_msg(strcmp(auth, sigv4_vectors[_i].authorization) == 0,
	    "%s:\n ours     %s\n botocore %s", sigv4_vectors[_i].name, auth,
	    sigv4_vectors[_i].authorization);
	ck_assert_str_eq(date, sigv4_vectors[_i].amz_date);
	/* The signed-header list is the one in the header. */
	ck_assert_ptr_nonnull(strstr(auth, sigv4_signed_headers(&r, &c)));
}
END_TEST

/* A change to anything signed changes the signature. */
START_TEST(test_sensitive)
{
	char hash[SIGV4_HEX_LEN + 1], a0[SIGV4_AUTH_LEN], a1[SIGV4_AUTH_LEN];
	char date[17];
	struct sigv4_request r;
	struct aws_creds c;

	vector_request(1, &r, &c, hash);
	ck_assert_int_eq(sigv4_sign(&r, &c, a0, sizeof(a0), date), 0);
	c.session_token = (char *)"other-token";
	ck_assert_int_eq(sigv4_sign(&r, &c, a1, sizeof(a1), date), 0);
	ck_assert_str_ne(a0, a1);
	vector_request(1, &r, &c, hash);
	r.now++;
	ck_assert_int_eq(sigv4_sign(&r, &c, a1, sizeof(a1), date), 0);
	ck_assert_str_ne(a0, a1);
	ck_assert_str_eq(date, "20270101T000000Z");
}
END_TEST

START_TEST(test_too_small)
{
	char hash[SIGV4_HEX_LEN + 1], auth[64], date[17];
	struct sigv4_request r;
	struct aws_creds c;

	vector_request(0, &r, &c, hash);
	ck_assert_int_eq(sigv4_sign(&r, &c, auth, sizeof(auth), date), -1);
}
END_TEST

START_TEST(test_sha256)
{
	static const char abc[] = "abc";
	char one[SIGV4_HEX_LEN + 1], streamed[SIGV4_HEX_LEN + 1];
	struct sigv4_sha256 *h;

	ck_assert_int_eq(sigv4_sha256_hex("", 0, one), 0);
	ck_assert_str_eq(one, EMPTY_SHA256);
	ck_assert_int_eq(sigv4_sha256_hex(abc, 3, one), 0);
	ck_assert_str_eq(one, "ba7816bf8f01cfea414140de5dae2223"
	    "b00361a396177a9cb410ff61f20015ad");
	ck_assert_ptr_nonnull(h = sigv4_sha256_new());
	for (size_t i = 0; i < 3; i++)
		ck_assert_int_eq(sigv4_sha256_update(h, abc + i, 1), 0);
	ck_assert_int_eq(sigv4_sha256_final(h, streamed), 0);
	ck_assert_str_eq(streamed, one);
}
END_TEST

static Suite *
sigv4_suite(void)
{
	Suite *s = suite_create("sigv4");
	TCase *tc = tcase_create("sign");

	tcase_add_loop_test(tc, test_botocore_vector, 0,
	    sizeof(sigv4_vectors) / sizeof(sigv4_vectors[0]));
	tcase_add_test(tc, test_sensitive);
	tcase_add_test(tc, test_too_small);
	tcase_add_test(tc, test_sha256);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return fixture_run(sigv4_suite());
}
