/*
 * fuzz_spool_message.c: the spool's file parsers (spool_parse_message,
 * spool_parse_state in spool.c).
 *
 * Input layout: a message file, optionally followed by a state file.
 * The state file starts at the last "SESRELAY-STATE 1\n" of the input;
 * everything before it is the message file (the whole input if there is
 * no such line).  Each part is copied into a buffer of exactly its size,
 * as the unit tests do, so a read past the end is an ASan report; the
 * state part ends at an unmapped page, as strtoul() is not checked.
 *
 * The message is parsed twice, as the daemon can: whole
 * (spool_parse_message(buf, len, len)), and only up to the blank line
 * that ends the envelope with the real file size (what open_message()
 * reads).  A returned envelope has nrcpt > 0, body_off + body_size <=
 * len, a 16-hex id and the trailer in place; if the whole file parses,
 * the envelope-only read parses to the same envelope.  The state part is
 * applied to the parsed envelope, or, so that state parsing is fuzzed
 * even when the message part is not valid, to a fixed three-recipient
 * envelope.  Everything is freed (LeakSanitizer checks).
 */
#include "config.h"

#include <sys/types.h>

#include "fuzz_util.h"
#include "spool.h"

#define STATE_MAGIC	"SESRELAY-STATE 1\n"
/* "END <id>\n": ids of either length (SPOOL_ID_LEN, older spools' _V1). */
#define TRAILER_LEN(e)	(4 + strlen((e)->id) + 1)

/* A valid message file for the fallback envelope: three recipients. */
static const char fallback_msg[] =
    "SESRELAY 1\n"
    "id 0123456789abcdef\n"
    "arrived 1700000000\n"
    "size 00000000000000000004\n"
    "from sender@example.org\n"
    "rcpt a@example.com\n"
    "rcpt b@example.com\n"
    "rcpt c@example.com\n"
    "\n"
    "x\r\n\n"
    "END 0123456789abcdef\n";

/* Offset of the last occurrence of needle in [p, p + len), or len. */
static size_t
last_of(const char *p, size_t len, const char *needle)
{
	size_t nl = strlen(needle), at = len;
	const char *q = p, *end = p + len, *hit;

	while (q < end && (hit = memmem(q, end - q, needle, nl)) != NULL) {
		at = hit - p;
		q = hit + 1;
	}
	return at;
}

/* What every envelope spool_parse_message() returns must satisfy. */
static void
check_envelope(const struct spool_envelope *e, off_t off, size_t len,
    off_t file_size)
{
	FUZZ_CHECK(e->nrcpt > 0);
	FUZZ_CHECK(e->rcpts != NULL && e->sender != NULL);
	FUZZ_CHECK(e->status != NULL && e->reply != NULL);
	FUZZ_CHECK(spool_id_is_valid(e->id));
	FUZZ_CHECK(off > 0 && (size_t)off <= len);
	FUZZ_CHECK(e->body_size >= 0);
	FUZZ_CHECK(off + e->body_size + (off_t)TRAILER_LEN(e) == file_size);
	FUZZ_CHECK(strchr(e->sender, '\n') == NULL);
	for (size_t i = 0; i < e->nrcpt; i++) {
		FUZZ_CHECK(e->rcpts[i] != NULL && e->rcpts[i][0] != '\0');
		FUZZ_CHECK(strchr(e->rcpts[i], '\n') == NULL);
		FUZZ_CHECK(e->status[i] == SPOOL_RCPT_PENDING);
		FUZZ_CHECK(e->reply[i] == NULL);
	}
}

/* The whole file, then only its envelope as open_message() reads it. */
static struct spool_envelope *
parse_message(const char *data, size_t len)
{
	char *buf = fuzz_copy(data, len), *head;
	struct spool_envelope *e, *h;
	off_t off = -1, hoff = -1;
	const char *blank = memmem(data, len, "\n\n", 2);
	size_t hlen;

	e = spool_parse_message(buf, len, (off_t)len, &off);
	if (e != NULL) {
		check_envelope(e, off, len, (off_t)len);
		FUZZ_CHECK(off + e->body_size <= (off_t)len);
		FUZZ_CHECK(memcmp(buf + len - TRAILER_LEN(e), "END ", 4) == 0);
		FUZZ_CHECK(memcmp(buf + len - TRAILER_LEN(e) + 4, e->id,
		    strlen(e->id)) == 0);
	}
	free(buf);
	if (blank == NULL || (hlen = blank + 2 - data) >= len)
		return e;
	head = fuzz_copy(data, hlen);
	h = spool_parse_message(head, hlen, (off_t)len, &hoff);
	if (h != NULL)
		check_envelope(h, hoff, hlen, (off_t)len);
	if (e != NULL) {
		FUZZ_CHECK(h != NULL);
		FUZZ_CHECK(hoff == off && h->body_size == e->body_size);
		FUZZ_CHECK(strcmp(h->id, e->id) == 0);
		FUZZ_CHECK(strcmp(h->sender, e->sender) == 0);
		FUZZ_CHECK(h->nrcpt == e->nrcpt);
	}
	spool_envelope_free(h);
	free(head);
	return e;
}

/* Apply a state file; whatever the result, the state stays in range. */
static void
parse_state(struct spool_envelope *e, const char *data, size_t len)
{
	struct fuzz_guarded g;
	const char *buf;
	int r;

	fuzz_guarded_copy(&g, data, len);
	buf = g.buf;
	r = spool_parse_state(e, buf, len);

	FUZZ_CHECK(r == 0 || r == -1);
	if (r == 0)
		FUZZ_CHECK(len >= 4 && memcmp(buf + len - 4, "END\n", 4) == 0);
	for (size_t i = 0; i < e->nrcpt; i++) {
		FUZZ_CHECK(e->status[i] == SPOOL_RCPT_PENDING ||
		    e->status[i] == SPOOL_RCPT_DONE ||
		    e->status[i] == SPOOL_RCPT_FAILED ||
		    e->status[i] == SPOOL_RCPT_BOUNCED);
		if (e->reply[i] != NULL)
			FUZZ_CHECK(strchr(e->reply[i], '\n') == NULL);
	}
	fuzz_guarded_free(&g);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *in = (const char *)data;
	size_t split = last_of(in, size, STATE_MAGIC);
	struct spool_envelope *e = parse_message(in, split), *target = e;
	off_t off;

	if (split < size) {
		if (target == NULL) {
			target = spool_parse_message(fallback_msg,
			    sizeof(fallback_msg) - 1, sizeof(fallback_msg) - 1,
			    &off);
			FUZZ_CHECK(target != NULL && target->nrcpt == 3);
		}
		parse_state(target, in + split, size - split);
		if (target != e)
			spool_envelope_free(target);
	}
	spool_envelope_free(e);
	return 0;
}
