/*
 * dotstuff.c: the byte-level DATA transparency state machines.
 *
 * The end of data is only <CR><LF>.<CR><LF> (or ".<CR><LF>" as the
 * first line), as RFC 5321 says and as Postfix's smtpd_forbid_bare_newline
 * = normalize does: a "." line ended by a bare LF, or after a line ended
 * by a bare LF, is message text.  Accepting those as the end is what SMTP
 * smuggling exploits: the relay and SES must agree where a message ends.
 * A bare LF still ends a line and is stored as CRLF; a bare CR is data.
 *
 * Decoder states: BOL (a line start after CRLF), BOL_LF (a line start
 * after a bare LF), DOT (a '.' at BOL, held back), DOTCR ('.' CR at BOL),
 * LFDOT (a '.' at BOL_LF, held back), MID (inside a line), CR (a CR
 * inside a line).
 */
#include "config.h"

#include "dotstuff.h"

enum { D_BOL, D_BOL_LF, D_DOT, D_DOTCR, D_LFDOT, D_MID, D_CR };

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
		case D_BOL_LF:
			if (c == '.') {
				d->state = D_LFDOT;
				continue;
			}
			break;
		case D_DOT:
			if (c == '\r') {
				d->state = D_DOTCR;
				continue;
			}
			if (c == '\n')
				out[o++] = '.';	/* ".<LF>" is text */
			/* else the leading dot of a stuffed line is dropped */
			break;
		case D_DOTCR:
			if (c == '\n')
				goto end;
			out[o++] = '\r';	/* ".\rX": the CR is data */
			break;
		case D_LFDOT:
			if (c == '\r' || c == '\n')
				out[o++] = '.';	/* a lone dot: text */
			break;
		case D_CR:
			if (c == '\n') {
				out[o++] = '\r';
				out[o++] = '\n';
				d->state = D_BOL;
				continue;
			}
			out[o++] = '\r';
			break;
		default:
			break;
		}
		/* Inside a line (or a state that fell through to it). */
		if (c == '\r') {
			d->state = D_CR;
		} else if (c == '\n') {
			d->saw_bare_lf = 1;
			out[o++] = '\r';
			out[o++] = '\n';
			d->state = D_BOL_LF;
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
	e->prev_cr = 0;
}

size_t
dot_encode(struct dot_encoder *e, const char *in, size_t inlen, char *out)
{
	size_t o = 0;

	for (size_t i = 0; i < inlen; i++) {
		if (e->at_bol && in[i] == '.')
			out[o++] = '.';
		else if (in[i] == '\n' && !e->prev_cr)
			out[o++] = '\r';
		out[o++] = in[i];
		e->at_bol = in[i] == '\n';
		e->prev_cr = in[i] == '\r';
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
