/*
 * check_dotstuff.c: the DATA transparency decoder and encoder.
 *
 * The decoder must give the same result however the wire bytes are cut
 * into reads, so the split tests feed each sample byte by byte and in
 * two pieces at every offset and compare with a single call.
 */
#include "config.h"

#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dotstuff.h"
#include "fixture.h"

/* A growing byte buffer. */
struct buf {
	char	*p;
	size_t	 len;
};

static void
buf_add(struct buf *b, const char *p, size_t n)
{
	b->p = realloc(b->p, b->len + n + 1);
	ck_assert_ptr_nonnull(b->p);
	memcpy(b->p + b->len, p, n);
	b->len += n;
	b->p[b->len] = '\0';
}

/*
 * Decode in, cut into pieces of at most step bytes (0: one call).  Returns
 * the total consumed; out gets the output, *done and *bare the flags.
 */
static size_t
decode_in_steps(const char *in, size_t len, size_t step, struct buf *out,
    int *done, int *bare)
{
	struct dot_decoder d;
	size_t off = 0;
	char *tmp = malloc(2 * len + 2);

	ck_assert_ptr_nonnull(tmp);
	dot_decoder_init(&d);
	*done = 0;
	while (off < len && !*done) {
		size_t n = step == 0 || len - off < step ? len - off : step;
		size_t olen = 12345, used;

		used = dot_decode(&d, in + off, n, tmp, &olen, done);
		ck_assert_uint_le(used, n);
		ck_assert_uint_le(olen, 2 * n + 2);
		if (!*done)
			ck_assert_uint_eq(used, n);
		buf_add(out, tmp, olen);
		off += used;
	}
	*bare = d.saw_bare_lf;
	free(tmp);
	return off;
}

/* Decode in two calls, cut at offset cut. */
static size_t
decode_split(const char *in, size_t len, size_t cut, struct buf *out,
    int *done)
{
	struct dot_decoder d;
	char *tmp = malloc(2 * len + 2);
	size_t olen, used;

	ck_assert_ptr_nonnull(tmp);
	dot_decoder_init(&d);
	used = dot_decode(&d, in, cut, tmp, &olen, done);
	buf_add(out, tmp, olen);
	if (!*done) {
		ck_assert_uint_eq(used, cut);
		used += dot_decode(&d, in + cut, len - cut, tmp, &olen, done);
		buf_add(out, tmp, olen);
	}
	free(tmp);
	return used;
}

/* ---- decoder: single calls ---- */

static const struct {
	const char	*in;		/* wire bytes (NUL-free) */
	const char	*out;		/* stored body */
	size_t		 consumed;	/* 0: strlen(in) */
	int		 done;
	int		 bare_lf;
} dec_cases[] = {
	{ "Subject: x\r\n\r\nHello\r\n.\r\n", "Subject: x\r\n\r\nHello\r\n",
	  0, 1, 0 },
	{ "Hello\r\n.\r\nMAIL FROM:<a@b>\r\n", "Hello\r\n", 10, 1, 0 },
	{ ".\r\n", "", 0, 1, 0 },
	{ ".\r\nQUIT\r\n", "", 3, 1, 0 },
	{ "..x\r\n.\r\n", ".x\r\n", 0, 1, 0 },
	{ "a\r\n..\r\n.\r\n", "a\r\n.\r\n", 0, 1, 0 },
	{ "a\r\n...\r\n.\r\n", "a\r\n..\r\n", 0, 1, 0 },
	/* Only CRLF . CRLF ends: a dot line with a bare LF is text
	 * (no SMTP smuggling). */
	{ "a\nb\n.\n", "a\r\nb\r\n.\r\n", 0, 0, 1 },
	{ "a\nb\r\n.\r\n", "a\r\nb\r\n", 0, 1, 1 },
	{ "a\r\nb\r\n.\n", "a\r\nb\r\n.\r\n", 0, 0, 1 },
	{ ".\n", ".\r\n", 0, 0, 1 },
	{ "a\n.\r\n", "a\r\n.\r\n", 0, 0, 1 },
	{ "a\n.\r\nb\r\n.\r\n", "a\r\n.\r\nb\r\n", 0, 1, 1 },
	{ "a\n..x\r\n.\r\n", "a\r\n.x\r\n", 0, 1, 1 },
	{ "a\r\n.\nb\r\n.\r\n", "a\r\n.\r\nb\r\n", 0, 1, 1 },
	{ "a\rb\r\n.\r\n", "a\rb\r\n", 0, 1, 0 },
	{ "a\r\r\n.\r\n", "a\r\r\n", 0, 1, 0 },
	{ "\r\n.\r\n", "\r\n", 0, 1, 0 },
	{ "x.\r\n.\r\n", "x.\r\n", 0, 1, 0 },
	{ " .\r\n.\r\n", " .\r\n", 0, 1, 0 },
	{ ".\rx\r\n.\r\n", "\rx\r\n", 0, 1, 0 },
	/* no terminator yet: everything consumed, not done */
	{ "Hello\r\nWorld", "Hello\r\nWorld", 0, 0, 0 },
	{ "a\r\n.", "a\r\n", 0, 0, 0 },
	{ "a\r\n.\r", "a\r\n", 0, 0, 0 },
	{ "a\r", "a", 0, 0, 0 },
	{ "", "", 0, 0, 0 },
};

START_TEST(test_decode_one_call)
{
	const char *in = dec_cases[_i].in;
	size_t len = strlen(in), used;
	struct buf out = { NULL, 0 };
	int done, bare;

	used = decode_in_steps(in, len, 0, &out, &done, &bare);
	ck_assert_uint_eq(used,
	    dec_cases[_i].consumed ? dec_cases[_i].consumed : len);
	ck_assert_int_eq(done, dec_cases[_i].done);
	ck_assert_int_eq(bare, dec_cases[_i].bare_lf);
	ck_assert_uint_eq(out.len, strlen(dec_cases[_i].out));
	ck_assert_mem_eq(out.p ? out.p : "", dec_cases[_i].out, out.len);
	free(out.p);
}
END_TEST

START_TEST(test_decode_nothing_after_terminator)
{
	const char in[] = "body\r\n.\r\nRSET\r\n";
	struct dot_decoder d;
	char out[64];
	size_t olen, used;
	int done;

	dot_decoder_init(&d);
	used = dot_decode(&d, in, sizeof(in) - 1, out, &olen, &done);
	ck_assert_int_eq(done, 1);
	ck_assert_uint_eq(used, 9);
	ck_assert_str_eq(in + used, "RSET\r\n");
	ck_assert_uint_eq(olen, 6);
	ck_assert_mem_eq(out, "body\r\n", 6);
	/* The decoder is ready for the next message. */
	dot_decoder_init(&d);
	used = dot_decode(&d, "..\r\n.\r\n", 7, out, &olen, &done);
	ck_assert_int_eq(done, 1);
	ck_assert_uint_eq(used, 7);
	ck_assert_uint_eq(olen, 3);
	ck_assert_mem_eq(out, ".\r\n", 3);
}
END_TEST

/* ---- decoder: every split ---- */

static const char *const split_samples[] = {
	"From: a@b\r\n\r\n..leading\r\n.\r\n\r\n.\r\nafter",
	"a\nb\r\n.x\n..\r\n\r.\r\n.\nafter\r\n",
	"x\r\r\n.\r.\r\n.\r\n",
	".\r\n",
	".\n",
	"\r\n\r\n.\r\nQUIT\r\n",
	"no terminator\r\n.",
	"abc\r\n.\rdef\r\n.\r\n",
};

START_TEST(test_decode_every_split)
{
	const char *in = split_samples[_i];
	size_t len = strlen(in), used1, used, cut;
	struct buf want = { NULL, 0 }, got;
	int done1, done, bare1, bare;

	used1 = decode_in_steps(in, len, 0, &want, &done1, &bare1);
	if (want.p == NULL)
		buf_add(&want, "", 0);

	/* Byte by byte. */
	memset(&got, 0, sizeof(got));
	used = decode_in_steps(in, len, 1, &got, &done, &bare);
	ck_assert_uint_eq(used, used1);
	ck_assert_int_eq(done, done1);
	ck_assert_int_eq(bare, bare1);
	ck_assert_uint_eq(got.len, want.len);
	ck_assert_mem_eq(got.p ? got.p : "", want.p, want.len);
	free(got.p);

	/* Two pieces, cut at every offset. */
	for (cut = 0; cut <= len; cut++) {
		memset(&got, 0, sizeof(got));
		used = decode_split(in, len, cut, &got, &done);
		ck_assert_msg(used == used1, "sample %d cut %zu: consumed %zu, "
		    "want %zu", _i, cut, used, used1);
		ck_assert_int_eq(done, done1);
		ck_assert_msg(got.len == want.len && memcmp(got.p ? got.p : "",
		    want.p, want.len) == 0, "sample %d cut %zu: output differs",
		    _i, cut);
		free(got.p);
	}
	free(want.p);
}
END_TEST

/* ---- encoder ---- */

static size_t
encode_all(const char *in, size_t len, size_t step, struct buf *out)
{
	struct dot_encoder e;
	char *tmp = malloc(2 * len + 5);
	size_t off = 0, n, total = 0;

	ck_assert_ptr_nonnull(tmp);
	dot_encoder_init(&e);
	while (off < len) {
		size_t piece = step == 0 || len - off < step ? len - off : step;

		n = dot_encode(&e, in + off, piece, tmp);
		ck_assert_uint_le(n, 2 * piece);
		buf_add(out, tmp, n);
		total += n;
		off += piece;
	}
	n = dot_encode_finish(&e, tmp);
	ck_assert_uint_le(n, 5);
	buf_add(out, tmp, n);
	free(tmp);
	return total + n;
}

static const struct {
	const char	*in;
	const char	*out;
} enc_cases[] = {
	{ "", ".\r\n" },
	{ "a\r\n", "a\r\n.\r\n" },
	{ "a", "a\r\n.\r\n" },
	{ ".", "..\r\n.\r\n" },
	{ ".\r\n", "..\r\n.\r\n" },
	{ "..x\r\n", "...x\r\n.\r\n" },
	{ "a\r\n.b\r\n", "a\r\n..b\r\n.\r\n" },
	/* A bare LF goes out as CRLF: SES sees CRLF lines only. */
	{ "a\n.b\n", "a\r\n..b\r\n.\r\n" },
	{ "a.b\r\n.", "a.b\r\n..\r\n.\r\n" },
	{ "a\r.b", "a\r.b\r\n.\r\n" },
	{ "\r\n\r\n", "\r\n\r\n.\r\n" },
	{ "x\r", "x\r\r\n.\r\n" },
};

START_TEST(test_encode)
{
	const char *in = enc_cases[_i].in;
	size_t step;

	/* One call, then byte by byte, then in pieces of 2 and 3. */
	for (step = 0; step <= 3; step++) {
		struct buf out = { NULL, 0 };
		size_t n = encode_all(in, strlen(in), step, &out);

		ck_assert_uint_eq(n, strlen(enc_cases[_i].out));
		ck_assert_msg(out.len == n && memcmp(out.p,
		    enc_cases[_i].out, n) == 0, "case %d step %zu: got \"%s\"",
		    _i, step, out.p);
		free(out.p);
	}
}
END_TEST

START_TEST(test_encode_dot_across_chunks)
{
	struct dot_encoder e;
	char out[8];

	dot_encoder_init(&e);
	ck_assert_uint_eq(dot_encode(&e, "ab\r\n", 4, out), 4);
	ck_assert_uint_eq(dot_encode(&e, ".", 1, out), 2);
	ck_assert_mem_eq(out, "..", 2);
	ck_assert_uint_eq(dot_encode(&e, ".", 1, out), 1);
	ck_assert_uint_eq(dot_encode(&e, "\r", 1, out), 1);
	ck_assert_uint_eq(dot_encode(&e, "\n", 1, out), 1);
	ck_assert_uint_eq(dot_encode(&e, ".", 1, out), 2);
	ck_assert_uint_eq(dot_encode_finish(&e, out), 5);
	ck_assert_mem_eq(out, "\r\n.\r\n", 5);
}
END_TEST

/* ---- round trip ---- */

/* The body as the decoder stores it: LF alone becomes CRLF, CRLF added at
 * the end when the body does not end in LF. */
static void
crlf_form(const char *in, size_t len, struct buf *out)
{
	for (size_t i = 0; i < len; i++) {
		if (in[i] == '\n' && (i == 0 || in[i - 1] != '\r'))
			buf_add(out, "\r", 1);
		buf_add(out, in + i, 1);
	}
	if (len == 0 || in[len - 1] != '\n')
		buf_add(out, "\r\n", 2);
}

/* A deterministic xorshift generator: the same bytes on every run. */
static uint32_t
next_rand(uint32_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 17;
	*s ^= *s << 5;
	return *s;
}

static void
round_trip(const char *body, size_t len)
{
	struct buf wire = { NULL, 0 }, want = { NULL, 0 }, got = { NULL, 0 };
	size_t used;
	int done, bare;

	encode_all(body, len, 7, &wire);
	/* An empty body stays empty: the encoder adds no CRLF to it. */
	if (len > 0)
		crlf_form(body, len, &want);
	used = decode_in_steps(wire.p, wire.len, 5, &got, &done, &bare);
	ck_assert_int_eq(done, 1);
	ck_assert_uint_eq(used, wire.len);
	ck_assert_uint_eq(got.len, want.len);
	ck_assert(got.len == 0 || memcmp(got.p, want.p, want.len) == 0);
	free(wire.p);
	free(want.p);
	free(got.p);
}

START_TEST(test_round_trip_fixed)
{
	static const char *const bodies[] = {
		"", "\r\n", "\r\n\r\n\r\n", "a", ".", "..", ".\r\n",
		".\r\n.\r\n..\r\n", "Subject: x\r\n\r\n.hidden\r\n.\r\nend",
		"unix\nlines\n.\n", "mixed\r\nends\n.\r\n", "cr\ronly\r",
		"\n.\n", "x\r\n.",
	};

	for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++)
		round_trip(bodies[i], strlen(bodies[i]));
}
END_TEST

START_TEST(test_round_trip_random)
{
	static const char alphabet[] = ".\r\n.\r\nab. \t\x01\xff";
	uint32_t seed = 0x5e5e1a7u + (uint32_t)_i;
	char body[4096];
	size_t len = next_rand(&seed) % sizeof(body);

	for (size_t i = 0; i < len; i++) {
		uint32_t r = next_rand(&seed);
		/* Half dots and line ends, half any byte at all. */
		body[i] = r & 1 ? alphabet[(r >> 1) % (sizeof(alphabet) - 1)] :
		    (char)(r >> 8);
	}
	round_trip(body, len);
}
END_TEST

static Suite *
dotstuff_suite(void)
{
	Suite *s = suite_create("dotstuff");
	TCase *tc;

	tc = tcase_create("decode");
	tcase_add_loop_test(tc, test_decode_one_call, 0,
	    sizeof(dec_cases) / sizeof(dec_cases[0]));
	tcase_add_test(tc, test_decode_nothing_after_terminator);
	tcase_add_loop_test(tc, test_decode_every_split, 0,
	    sizeof(split_samples) / sizeof(split_samples[0]));
	suite_add_tcase(s, tc);

	tc = tcase_create("encode");
	tcase_add_loop_test(tc, test_encode, 0,
	    sizeof(enc_cases) / sizeof(enc_cases[0]));
	tcase_add_test(tc, test_encode_dot_across_chunks);
	suite_add_tcase(s, tc);

	tc = tcase_create("round trip");
	tcase_add_test(tc, test_round_trip_fixed);
	tcase_add_loop_test(tc, test_round_trip_random, 0, 64);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return fixture_run(dotstuff_suite());
}
