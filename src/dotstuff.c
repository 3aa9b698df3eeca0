/*
 * dotstuff.c: the byte-level DATA transparency state machines.
 *
 * Decoder states: BOL (start of a line), DOT (a '.' at BOL, held back),
 * DOTCR ('.' CR at BOL), MID (inside a line), CR (a CR inside a line).
 * A bare LF ends a line and is stored as CRLF; a bare CR is kept as data.
 * ".\n" is accepted as the end of data, as real clients send it.
 */
#include "config.h"

#include "dotstuff.h"

enum { D_BOL, D_DOT, D_DOTCR, D_MID, D_CR };

void
dot_decoder_init(struct dot_decoder *d)
{
	d->state = D_BOL;
	d->saw_bare_lf = 0;
}

size_t
dot_decode(struct dot_decoder *d, const char *in, size_t inlen, char *out,
    size_t *outlen, int *done)
{
	size_t i, o = 0;

	*done = 0;
	for (i = 0; i < inlen; i++) {
		char c = in[i];

		switch (d->state) {
		case D_BOL:
			if (c == '.') {
				d->state = D_DOT;
				continue;
			}
			break;
		case D_DOT:
			if (c == '\r') {
				d->state = D_DOTCR;
				continue;
			}
			if (c == '\n') {
				d->saw_bare_lf = 1;
				goto end;
			}
			/* The leading dot of a stuffed line is dropped. */
			d->state = D_MID;
			break;
		case D_DOTCR:
			if (c == '\n')
				goto end;
			out[o++] = '\r';	/* ".\rX": the CR is data */
			d->state = D_MID;
			break;
		case D_CR:
			if (c == '\n') {
				out[o++] = '\r';
				out[o++] = '\n';
				d->state = D_BOL;
				continue;
			}
			out[o++] = '\r';
			d->state = D_MID;
			break;
		default:
			break;
		}
		/* D_MID (or a state that fell through to it). */
		if (c == '\r') {
			d->state = D_CR;
		} else if (c == '\n') {
			d->saw_bare_lf = 1;
			out[o++] = '\r';
			out[o++] = '\n';
			d->state = D_BOL;
		} else {
			out[o++] = c;
			d->state = D_MID;
		}
	}
	*outlen = o;
	return i;
end:
	*done = 1;
	*outlen = o;
	d->state = D_BOL;
	return i + 1;
}

void
dot_encoder_init(struct dot_encoder *e)
{
	e->at_bol = 1;
}

size_t
dot_encode(struct dot_encoder *e, const char *in, size_t inlen, char *out)
{
	size_t o = 0;

	for (size_t i = 0; i < inlen; i++) {
		if (e->at_bol && in[i] == '.')
			out[o++] = '.';
		out[o++] = in[i];
		e->at_bol = in[i] == '\n';
	}
	return o;
}

size_t
dot_encode_finish(struct dot_encoder *e, char *out)
{
	size_t o = 0;

	if (!e->at_bol) {
		out[o++] = '\r';
		out[o++] = '\n';
	}
	out[o++] = '.';
	out[o++] = '\r';
	out[o++] = '\n';
	e->at_bol = 1;
	return o;
}
