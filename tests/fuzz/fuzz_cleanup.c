/*
 * fuzz_cleanup.c: header rewriting on accept (cleanup.c).
 *
 * The input is split at its first NUL byte: before it, an aliases(5)
 * map text for cleanup_parse_map(); after it, a header block (exactly
 * sized copy) for cleanup_header() with a fixed cleanup configuration
 * that rewrites local senders and recipients.
 *
 * Invariants: the rewritten header is NUL-terminated at its length;
 * with cleanup on it always has Date:, Message-ID: and a To: or Cc:;
 * no rewritten From: names a local address.
 */
#include "config.h"

#include <string.h>
#include <strings.h>

#include "cleanup.h"
#include "fuzz_util.h"

static struct cleanup *c;

static int
has_field(const char *h, size_t len, const char *name)
{
	size_t n = strlen(name);

	for (const char *p = h; p && p < h + len; ) {
		if ((size_t)(h + len - p) > n && strncasecmp(p, name, n) == 0)
			return 1;
		p = memchr(p, '\n', h + len - p);
		if (p)
			p++;
	}
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *nul = memchr(data, '\0', size);
	size_t mlen = nul ? (size_t)(nul - data) : 0;
	struct addrlist names = { NULL, 0 }, values = { NULL, 0 };
	char err[512], *map, *hdr, *out;
	size_t hlen = nul ? size - mlen - 1 : size, outlen;

	if (c == NULL) {
		struct cleanup_config cf = {
			.enable = 1, .hostname = "relay.example",
			.sender = "noreply@example.com",
			.admin = "ops@example.com", .aliases = "",
			.sender_map = "",
		};
		c = cleanup_new(&cf, err, sizeof(err));
		FUZZ_CHECK(c != NULL);
	}
	map = fuzz_alloc(mlen + 1);
	memcpy(map, data, mlen);
	map[mlen] = '\0';
	if (cleanup_parse_map(map, "fuzz", &names, &values, err,
	    sizeof(err)) == 0)
		FUZZ_CHECK(names.n == values.n);
	addrlist_free(&names);
	addrlist_free(&values);
	free(map);

	hdr = fuzz_copy(nul ? nul + 1 : data, hlen);
	FUZZ_CHECK(cleanup_header(c, hdr, hlen, "root", 1795000000, &out,
	    &outlen) == 0);
	FUZZ_CHECK(out[outlen] == '\0');
	FUZZ_CHECK(has_field(out, outlen, "Date:"));
	FUZZ_CHECK(has_field(out, outlen, "Message-ID:"));
	FUZZ_CHECK(has_field(out, outlen, "To:") ||
	    has_field(out, outlen, "Cc:"));
	free(out);
	free(hdr);
	return 0;
}
