/*
 * dotstuff.h: streaming SMTP DATA transparency (RFC 5321 4.5.2).
 *
 * The decoder turns the wire form of a DATA body into the message as it
 * is stored: leading dots removed, line ends made CRLF, and it stops at
 * <CR><LF>.<CR><LF> only (never at a "." line with a bare LF).  The encoder does the reverse for the upstream.  Both
 * keep their state between calls, so a body streams in chunks of any
 * size and is never held whole.
 */
#ifndef SESRELAY_DOTSTUFF_H
#define SESRELAY_DOTSTUFF_H

#include <stddef.h>

struct dot_decoder {
	int	state;
	int	saw_bare_lf;	/* a line ended in LF alone */
};

struct dot_encoder {
	int	at_bol;
	int	prev_cr;
};

void dot_decoder_init(struct dot_decoder *);

/*
 * Decode up to inlen bytes into out (room for 2 * inlen + 2 bytes).
 * Returns the number of input bytes consumed; sets *outlen; sets *done
 * when the end-of-data line was consumed (nothing after it is read).
 */
size_t dot_decode(struct dot_decoder *, const char *in, size_t inlen,
    char *out, size_t *outlen, int *done);

void dot_encoder_init(struct dot_encoder *);

/*
 * Encode inlen bytes into out (room for 2 * inlen); returns bytes
 * written.  A bare LF goes out as CRLF: the upstream sees only CRLF.
 */
size_t dot_encode(struct dot_encoder *, const char *in, size_t inlen,
    char *out);

/* Write the terminator (CRLF if needed, then ".\r\n"); out has room for 5. */
size_t dot_encode_finish(struct dot_encoder *, char *out);

#endif
