/*
 * addrlist.c: address lists and -t recipient extraction.
 *
 * The parser walks the field once, tracking quoted strings, comments
 * (nested), and angle brackets; commas, group colons and semicolons
 * outside them delimit mailboxes.  It is lenient: whatever looks like an
 * address is taken, and the daemon checks each one again at RCPT.
 */
#include "config.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "addrlist.h"

void
addrlist_add(struct addrlist *l, const char *addr)
{
	char **v = realloc(l->v, (l->n + 1) * sizeof(*v));

	if (v == NULL || (v[l->n] = strdup(addr)) == NULL)
		abort();
	l->v = v;
	l->n++;
}

void
addrlist_free(struct addrlist *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

/* Finish one mailbox: prefer the angle address, else the bare text. */
static size_t
flush(char *bare, size_t *blen, char *angle, int has_angle,
    struct addrlist *out)
{
	char *p = has_angle ? angle : bare, *e;

	if (!has_angle)
		bare[*blen] = '\0';
	*blen = 0;
	while (isspace((unsigned char)*p))
		p++;
	e = p + strlen(p);
	while (e > p && isspace((unsigned char)e[-1]))
		*--e = '\0';
	/*
	 * A bare phrase with spaces is a display name without an address,
	 * unless the spaces are inside a quoted local part: "a b"@c.
	 */
	if (*p == '\0' || (!has_angle && strpbrk(p, " \t") != NULL &&
	    (*p != '"' || strstr(p, "\"@") == NULL)))
		return 0;
	addrlist_add(out, p);
	return 1;
}

size_t
addrlist_parse(const char *value, struct addrlist *out)
{
	size_t len = strlen(value), blen = 0, alen = 0, added = 0;
	char *bare = malloc(len + 1), *angle = malloc(len + 1);
	int quoted = 0, comment = 0, in_angle = 0, has_angle = 0;

	if (bare == NULL || angle == NULL)
		abort();
	angle[0] = '\0';
	for (const char *p = value; *p; p++) {
		char c = *p;

		if (quoted) {
			if (c == '\\' && p[1] != '\0')
				c = *++p;
			else if (c == '"')
				quoted = 0;
		} else if (comment) {
			if (c == '\\' && p[1] != '\0')
				p++;
			else if (c == '(')
				comment++;
			else if (c == ')')
				comment--;
			continue;
		} else if (c == '(') {
			comment = 1;
			continue;
		} else if (c == '"') {
			quoted = 1;
		} else if (c == '<' && !in_angle) {
			in_angle = 1;
			has_angle = 1;
			alen = 0;
			continue;
		} else if (c == '>' && in_angle) {
			in_angle = 0;
			angle[alen] = '\0';
			continue;
		} else if (!in_angle && (c == ',' || c == ';' || c == ':')) {
			if (c == ':') {		/* a group's name */
				blen = 0;
				has_angle = 0;
				continue;
			}
			added += flush(bare, &blen, angle, has_angle, out);
			has_angle = 0;
			continue;
		}
		if (in_angle)
			angle[alen++] = c;
		else if (!has_angle)
			bare[blen++] = c;
	}
	if (in_angle)
		angle[alen] = '\0';
	added += flush(bare, &blen, angle, has_angle, out);
	free(bare);
	free(angle);
	return added;
}

static int
is_field(const char *line, size_t len, const char *name)
{
	size_t n = strlen(name);

	return len > n && strncasecmp(line, name, n) == 0 && line[n] == ':';
}

int
addrlist_from_header(const char *hdr, size_t len, struct addrlist *out,
    char **kept, size_t *keptlen)
{
	const char *p = hdr, *end = hdr + len;
	char *k = malloc(len + 1);
	size_t kl = 0;

	if (k == NULL)
		abort();
	while (p < end) {
		/* One field: its first line and every continuation line. */
		const char *start = p, *colon;
		size_t flen;
		int is_rcpt, is_bcc;

		/* The blank line ends the header: keep it and what follows. */
		if (*p == '\n' || (*p == '\r' && p + 1 < end && p[1] == '\n')) {
			memcpy(k + kl, p, end - p);
			kl += end - p;
			break;
		}

		do {
			const char *nl = memchr(p, '\n', end - p);
			p = nl ? nl + 1 : end;
		} while (p < end && (*p == ' ' || *p == '\t'));
		flen = p - start;
		colon = memchr(start, ':', flen);
		if (colon == NULL || colon == start) {
			free(k);
			return -1;
		}
		is_bcc = is_field(start, flen, "Bcc");
		is_rcpt = is_bcc || is_field(start, flen, "To") ||
		    is_field(start, flen, "Cc");
		if (is_rcpt) {
			char *v = strndup(colon + 1, start + flen - colon - 1);
			if (v == NULL)
				abort();
			for (char *q = v; *q; q++)
				if (*q == '\r' || *q == '\n')
					*q = ' ';
			addrlist_parse(v, out);
			free(v);
		}
		if (!is_bcc) {
			memcpy(k + kl, start, flen);
			kl += flen;
		}
	}
	k[kl] = '\0';
	*kept = k;
	*keptlen = kl;
	return 0;
}
