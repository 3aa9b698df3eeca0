/*
 * fuzz_dotstuff.c: the DATA transparency decoder and encoder (dotstuff.c).
 *
 * Input layout: byte 0 gives k = byte % 8, the next k bytes are chunk
 * sizes (each byte + 1, used in turn; k = 0 means byte by byte), and the
 * rest is the payload.
 *
 * 1. The payload as wire bytes: decoding it in chunks of those sizes
 *    gives exactly what one call gives (bytes consumed, output, done,
 *    bare-LF flag), and every call stays within its documented output
 *    room (buffers are exactly 2 * inlen + 2 bytes, so ASan sees more).
 * 2. The payload as a message body: encoding it (in the same chunks),
 *    finishing, and decoding the result gives the body back with bare
 *    LFs made CRLF and a final CRLF added if it lacked one, and ends
 *    exactly at the terminator (the decoder ends only at CRLF "." CRLF,
 *    so this holds only if the encoder sends CRLF line ends); it flags a
 *    bare LF only if the body had one.
 */
#include "config.h"

#include "dotstuff.h"
#include "fuzz_util.h"

struct chunks {
	const uint8_t	*size;
	size_t		 n;
	size_t		 next;
};

/* The next chunk length, at most left. */
static size_t
chunk_next(struct chunks *c, size_t left)
{
	size_t s = c->n ? (size_t)c->size[c->next++ % c->n] + 1 : 1;

	return s < left ? s : left;
}

/* One decode call on an exactly sized output buffer, appended to acc. */
static size_t
decode_into(struct dot_decoder *d, const char *in, size_t inlen, char *acc,
    size_t cap, size_t *acclen, int *done)
{
	char *out = fuzz_alloc(2 * inlen + 2);
	size_t o = (size_t)-1, used;

	used = dot_decode(d, in, inlen, out, &o, done);
	FUZZ_CHECK(used <= inlen);
	FUZZ_CHECK(*done || used == inlen);
	FUZZ_CHECK(o <= 2 * inlen + 2);
	FUZZ_CHECK(*acclen + o <= cap);
	if (o)
		memcpy(acc + *acclen, out, o);
	*acclen += o;
	free(out);
	return used;
}

/* Part 1: chunked decoding equals one-shot decoding. */
static void
check_chunked_decode(const char *in, size_t len, struct chunks *c)
{
	struct dot_decoder one, many;
	size_t cap = 2 * len + 2, olen = 0, mlen = 0, oused, mused = 0;
	char *oout = fuzz_alloc(cap), *mout = fuzz_alloc(cap);
	int odone, mdone = 0;

	dot_decoder_init(&one);
	oused = decode_into(&one, in, len, oout, cap, &olen, &odone);

	dot_decoder_init(&many);
	/* An empty read changes nothing. */
	FUZZ_CHECK(decode_into(&many, in, 0, mout, cap, &mlen, &mdone) == 0);
	FUZZ_CHECK(mlen == 0 && !mdone);
	while (mused < len && !mdone) {
		size_t s = chunk_next(c, len - mused);
		mused += decode_into(&many, in + mused, s, mout, cap, &mlen,
		    &mdone);
	}
	FUZZ_CHECK(mused == oused);
	FUZZ_CHECK(mdone == odone);
	FUZZ_CHECK(mlen == olen);
	FUZZ_CHECK(olen == 0 || memcmp(mout, oout, olen) == 0);
	FUZZ_CHECK(many.saw_bare_lf == one.saw_bare_lf);
	free(oout);
	free(mout);
}

/* The body as stored: bare LF made CRLF, a last line ended by CRLF. */
static char *
normalise(const char *body, size_t len, size_t *nlen, int *bare_lf)
{
	char *n = fuzz_alloc(2 * len + 2);
	size_t o = 0;

	*bare_lf = 0;
	for (size_t i = 0; i < len; i++) {
		if (body[i] == '\n' && (i == 0 || body[i - 1] != '\r')) {
			n[o++] = '\r';
			*bare_lf = 1;
		}
		n[o++] = body[i];
	}
	if (len > 0 && body[len - 1] != '\n') {
		n[o++] = '\r';
		n[o++] = '\n';
	}
	*nlen = o;
	return n;
}

/* Part 2: decode(encode(body)) is the normalised body. */
static void
check_round_trip(const char *body, size_t len, struct chunks *c)
{
	struct dot_encoder enc;
	struct dot_decoder dec;
	size_t wcap = 2 * len + 5, wlen = 0, done_at = 0, nlen, dlen = 0;
	char *wire = fuzz_alloc(wcap), *fin = fuzz_alloc(5), *norm,
	    *dout;
	int done, bare_lf;

	dot_encoder_init(&enc);
	while (done_at < len) {
		size_t s = chunk_next(c, len - done_at);
		char *out = fuzz_alloc(2 * s);
		size_t o = dot_encode(&enc, body + done_at, s, out);

		FUZZ_CHECK(o >= s && o <= 2 * s);
		memcpy(wire + wlen, out, o);
		wlen += o;
		done_at += s;
		free(out);
	}
	{
		size_t o = dot_encode_finish(&enc, fin);

		FUZZ_CHECK(o == 3 || o == 5);
		FUZZ_CHECK(wlen + o <= wcap);
		memcpy(wire + wlen, fin, o);
		wlen += o;
	}
	norm = normalise(body, len, &nlen, &bare_lf);
	dout = fuzz_alloc(2 * wlen + 2);
	dot_decoder_init(&dec);
	FUZZ_CHECK(decode_into(&dec, wire, wlen, dout, 2 * wlen + 2, &dlen,
	    &done) == wlen);
	FUZZ_CHECK(done);
	FUZZ_CHECK(dlen == nlen);
	FUZZ_CHECK(nlen == 0 || memcmp(dout, norm, nlen) == 0);
	FUZZ_CHECK(!dec.saw_bare_lf || bare_lf);
	free(wire);
	free(fin);
	free(norm);
	free(dout);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct chunks c = { NULL, 0, 0 };
	char *payload;
	size_t k, plen;

	if (size == 0)
		return 0;
	k = data[0] % 8;
	if (k > size - 1)
		k = size - 1;
	c.size = data + 1;
	c.n = k;
	plen = size - 1 - k;
	payload = fuzz_copy(data + 1 + k, plen);
	check_chunked_decode(payload, plen, &c);
	c.next = 0;
	check_round_trip(payload, plen, &c);
	free(payload);
	return 0;
}
