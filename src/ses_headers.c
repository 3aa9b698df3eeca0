/*
 * ses_headers.c: which X-SES-* headers a message gets.
 *
 * Lookup for a sender: its exact address in the map, then "@domain",
 * then the defaults.  A map entry with a set replaces the default set;
 * an entry with tags replaces the default tags.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ses_headers.h"
#include "xalloc.h"

#define MAX_SET		64
#define MAX_TAGS_LEN	900	/* keeps the header line under 998 */

struct entry {
	char	*key;		/* "user@domain" or "@domain" */
	char	*set;		/* "" none, NULL default */
	char	*tags;		/* "a=b, c=d", NULL default */
};

struct ses_headers {
	char		*set;	/* default, "" none */
	char		*tags;	/* default, "" none */
	struct entry	*v;
	size_t		 n;
};

static int
is_word(const char *p, size_t n)
{
	if (n == 0)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)p[i]) && p[i] != '-' && p[i] != '_')
			return 0;
	return 1;
}

int
ses_headers_valid_set(const char *name)
{
	size_t n = strlen(name);

	return n <= MAX_SET && is_word(name, n);
}

int
ses_headers_valid_tag(const char *tag)
{
	const char *eq = strchr(tag, '=');

	return eq != NULL && is_word(tag, (size_t)(eq - tag)) &&
	    is_word(eq + 1, strlen(eq + 1));
}

/* Append "tag" to a ", "-joined list; -1 when the line would be too long. */
static int
add_tag(char **list, const char *tag, size_t n)
{
	size_t old = *list ? strlen(*list) : 0;
	char *p;

	if (old + n + 2 > MAX_TAGS_LEN)
		return -1;
	if ((p = realloc(*list, old + n + 3)) == NULL)
		abort();
	if (old > 0)
		memcpy(p + old, ", ", 2), old += 2;
	memcpy(p + old, tag, n);
	p[old + n] = '\0';
	*list = p;
	return 0;
}

void
ses_headers_free(struct ses_headers *h)
{
	if (h == NULL)
		return;
	for (size_t i = 0; i < h->n; i++) {
		free(h->v[i].key);
		free(h->v[i].set);
		free(h->v[i].tags);
	}
	free(h->v);
	free(h->set);
	free(h->tags);
	free(h);
}

static int
parse_line(struct ses_headers *h, const char *l, size_t len, const char *file,
    unsigned lineno, char *err, size_t errlen)
{
	const char *colon = memchr(l, ':', len), *p, *end = l + len;
	struct entry e = { NULL, NULL, NULL };
	size_t klen;

	if (colon == NULL) {
		snprintf(err, errlen, "%s:%u: expected \"sender: set "
		    "[name=value ...]\"", file, lineno);
		return -1;
	}
	klen = (size_t)(colon - l);
	while (klen > 0 && isblank((unsigned char)l[klen - 1]))
		klen--;
	if (klen == 0 || memchr(l, ' ', klen) != NULL ||
	    memchr(l, '@', klen) == NULL || l[klen - 1] == '@') {
		snprintf(err, errlen, "%s:%u: \"%.*s\": expected an address "
		    "or @domain", file, lineno, (int)klen, l);
		return -1;
	}
	e.key = xstrndup(l, klen);
	for (p = colon + 1; p < end; ) {
		const char *w;
		size_t wl;

		while (p < end && isblank((unsigned char)*p))
			p++;
		if (p == end)
			break;
		for (w = p; p < end && !isblank((unsigned char)*p); p++)
			;
		wl = (size_t)(p - w);
		if (memchr(w, '=', wl) != NULL) {
			char *t = xstrndup(w, wl);
			int ok = ses_headers_valid_tag(t);

			if (ok && add_tag(&e.tags, t, wl) == -1)
				ok = 0;
			free(t);
			if (!ok) {
				snprintf(err, errlen, "%s:%u: \"%.*s\": a tag is "
				    "name=value, letters, digits, - and _ "
				    "only", file, lineno, (int)wl, w);
				goto bad;
			}
		} else if (e.set == NULL && e.tags == NULL) {
			if (wl == 1 && *w == '-')
				e.set = xstrndup("", 0);
			else if (wl <= MAX_SET && is_word(w, wl))
				e.set = xstrndup(w, wl);
			else {
				snprintf(err, errlen, "%s:%u: \"%.*s\": not a "
				    "configuration set name (1-64 letters, "
				    "digits, - and _)", file, lineno, (int)wl,
				    w);
				goto bad;
			}
		} else {
			snprintf(err, errlen, "%s:%u: \"%.*s\": the "
			    "configuration set comes first, then name=value "
			    "tags", file, lineno, (int)wl, w);
			goto bad;
		}
	}
	if ((h->v = realloc(h->v, (h->n + 1) * sizeof(*h->v))) == NULL)
		abort();
	h->v[h->n++] = e;
	return 0;
bad:
	free(e.key);
	free(e.set);
	free(e.tags);
	return -1;
}

struct ses_headers *
ses_headers_parse(const char *config_set, char *const *tags, size_t ntags,
    const char *text, const char *file, char *err, size_t errlen)
{
	struct ses_headers *h = calloc(1, sizeof(*h));
	const char *p = text ? text : "";
	unsigned lineno = 0;

	if (h == NULL)
		abort();
	h->set = xstrndup(config_set ? config_set : "", MAX_SET);
	for (size_t i = 0; i < ntags; i++)
		if (add_tag(&h->tags, tags[i], strlen(tags[i])) == -1) {
			snprintf(err, errlen, "ses.tags: too many tags for one "
			    "header line");
			goto bad;
		}
	if (h->tags == NULL)
		h->tags = xstrndup("", 0);
	while (*p != '\0') {
		size_t len = strcspn(p, "\n"), l = len;
		const char *s = p;

		lineno++;
		p += len + (p[len] == '\n');
		while (l > 0 && isspace((unsigned char)s[l - 1]))
			l--;
		while (l > 0 && isblank((unsigned char)*s))
			s++, l--;
		if (l == 0 || *s == '#')
			continue;
		if (parse_line(h, s, l, file, lineno, err, errlen) == -1)
			goto bad;
	}
	return h;
bad:
	ses_headers_free(h);
	return NULL;
}

struct ses_headers *
ses_headers_new(const char *config_set, char *const *tags, size_t ntags,
    const char *map_file, char *err, size_t errlen)
{
	struct ses_headers *h;
	char *text = NULL;
	size_t cap = 0, len = 0, n;
	FILE *fp;

	if (map_file == NULL || *map_file == '\0')
		return ses_headers_parse(config_set, tags, ntags, "", "",
		    err, errlen);
	if ((fp = fopen(map_file, "re")) == NULL) {
		snprintf(err, errlen, "%s: %s", map_file, strerror(errno));
		return NULL;
	}
	do {
		if (len + 4096 + 1 > cap) {
			cap = cap ? cap * 2 : 8192;
			if ((text = realloc(text, cap)) == NULL)
				abort();
		}
		n = fread(text + len, 1, 4096, fp);
		len += n;
	} while (n > 0 && len < (1 << 20));
	fclose(fp);
	text[len] = '\0';
	h = ses_headers_parse(config_set, tags, ntags, text, map_file, err,
	    errlen);
	free(text);
	return h;
}

/* Does the header prefix have a field called name? */
static int
has_field(const char *hdr, size_t len, const char *name)
{
	size_t nl = strlen(name);
	const char *p = hdr, *end = hdr + len;

	while (p < end) {
		if ((size_t)(end - p) > nl && strncasecmp(p, name, nl) == 0 &&
		    (p[nl] == ':' || p[nl] == ' ' || p[nl] == '\t'))
			return 1;
		if ((size_t)(end - p) >= 2 && p[0] == '\r' && p[1] == '\n')
			return 0;	/* the end of the header */
		if ((p = memchr(p, '\n', (size_t)(end - p))) == NULL)
			return 0;
		p++;
	}
	return 0;
}

static const struct entry *
lookup(const struct ses_headers *h, const char *sender)
{
	const char *at = strrchr(sender, '@');

	for (size_t i = 0; i < h->n; i++)
		if (strcasecmp(h->v[i].key, sender) == 0)
			return &h->v[i];
	if (at != NULL)
		for (size_t i = 0; i < h->n; i++)
			if (strcasecmp(h->v[i].key, at) == 0)
				return &h->v[i];
	return NULL;
}

size_t
ses_headers_for(const struct ses_headers *h, const char *sender,
    const char *hdr, size_t len, char *out, size_t outlen)
{
	const struct entry *e = lookup(h, sender ? sender : "");
	const char *set = e && e->set ? e->set : h->set;
	const char *tags = e && e->tags ? e->tags : h->tags;
	size_t o = 0;
	int n;

	if (outlen == 0)
		return 0;
	out[0] = '\0';
	if (*set != '\0' && !has_field(hdr, len, "X-SES-CONFIGURATION-SET")) {
		n = snprintf(out, outlen, "X-SES-CONFIGURATION-SET: %s\r\n",
		    set);
		if (n < 0 || (size_t)n >= outlen)
			return out[0] = '\0', 0;
		o = (size_t)n;
	}
	if (*tags != '\0' && !has_field(hdr, len, "X-SES-MESSAGE-TAGS")) {
		n = snprintf(out + o, outlen - o, "X-SES-MESSAGE-TAGS: %s\r\n",
		    tags);
		if (n < 0 || (size_t)n >= outlen - o)
			return out[0] = '\0', 0;
		o += (size_t)n;
	}
	return o;
}

void
ses_headers_fields(const struct ses_headers *h, const char *sender,
    const char *hdr, size_t len, const char **set, const char **tags)
{
	const struct entry *e = lookup(h, sender ? sender : "");

	*set = e && e->set ? e->set : h->set;
	*tags = e && e->tags ? e->tags : h->tags;
	if (has_field(hdr, len, "X-SES-CONFIGURATION-SET"))
		*set = "";
	if (has_field(hdr, len, "X-SES-MESSAGE-TAGS"))
		*tags = "";
}
