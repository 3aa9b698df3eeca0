/*
 * fuzz_headers.c: address lists and sendmail -t header walking
 * (addrlist.c).
 *
 * The input is used twice: as one header field's value for
 * addrlist_parse() (NUL-terminated copy), and as a message's header
 * block for addrlist_from_header() (exactly sized copy, no NUL).
 *
 * Invariants: addrlist_parse() returns how many it appended, each a
 * non-empty string no longer than the input, without leading or
 * trailing white space; addrlist_from_header() keeps at most the input's
 * length, NUL-terminated, with no Bcc field left in the header part, and
 * its recipients never contain CR or LF.
 */
#include "config.h"

#include <ctype.h>
#include <strings.h>

#include "addrlist.h"
#include "fuzz_util.h"

/* Entries from..l->n are plausible addresses taken from len bytes. */
static void
check_entries(const struct addrlist *l, size_t from, size_t len,
    int from_header)
{
	for (size_t i = from; i < l->n; i++) {
		const char *a = l->v[i];
		size_t n;

		FUZZ_CHECK(a != NULL);
		n = strlen(a);
		FUZZ_CHECK(n > 0 && n <= len);
		FUZZ_CHECK(!isspace((unsigned char)a[0]));
		FUZZ_CHECK(!isspace((unsigned char)a[n - 1]));
		if (from_header)
			FUZZ_CHECK(strpbrk(a, "\r\n") == NULL);
	}
}

/* No field of the kept header (up to its blank line) is a Bcc field. */
static void
check_no_bcc(const char *k, size_t len)
{
	const char *p = k, *end = k + len;

	while (p < end) {
		const char *nl;

		if (*p == '\n' || (*p == '\r' && p + 1 < end && p[1] == '\n'))
			return;
		if (*p != ' ' && *p != '\t')
			FUZZ_CHECK(end - p < 4 || strncasecmp(p, "bcc:", 4) != 0);
		nl = memchr(p, '\n', end - p);
		p = nl ? nl + 1 : end;
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct addrlist l = { NULL, 0 };
	char *value = fuzz_strndup(data, size), *hdr, *kept = NULL;
	size_t added, keptlen = (size_t)-1, before;

	/* One field's value; a second call appends to the same list. */
	added = addrlist_parse(value, &l);
	FUZZ_CHECK(added == l.n);
	check_entries(&l, 0, strlen(value), 0);
	before = l.n;
	FUZZ_CHECK(addrlist_parse(value, &l) == added);
	FUZZ_CHECK(l.n == 2 * before);
	for (size_t i = 0; i < before; i++)
		FUZZ_CHECK(strcmp(l.v[i], l.v[before + i]) == 0);
	addrlist_free(&l);
	FUZZ_CHECK(l.v == NULL && l.n == 0);
	free(value);

	/* A header block. */
	hdr = fuzz_copy(data, size);
	if (addrlist_from_header(hdr, size, &l, &kept, &keptlen) == 0) {
		FUZZ_CHECK(kept != NULL);
		FUZZ_CHECK(keptlen <= size);
		FUZZ_CHECK(kept[keptlen] == '\0');
		check_no_bcc(kept, keptlen);
		free(kept);
	}
	check_entries(&l, 0, size, 1);
	addrlist_free(&l);
	free(hdr);
	return 0;
}
