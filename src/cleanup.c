/*
 * cleanup.c: envelope and header rewriting on accept (see cleanup.h).
 *
 * Header fields are handled whole (a field and its continuation lines);
 * fields that are not changed are copied byte for byte, so a DKIM
 * signature over them stays valid.  Maps are aliases(5) text: "name:
 * value, value", continuation lines start with white space, '#' starts
 * a comment.  Only address values are taken; program, file and
 * :include: targets have no meaning for a relay and are refused when
 * the map is loaded.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <unistd.h>

#include "cleanup.h"
#include "conf.h"
#include "smtp_parse.h"
#include "xalloc.h"

#define ALIAS_DEPTH	8	/* alias of an alias of ... at most */
#define MAP_MAX		(1024 * 1024)
#define CLEANUP_LINE_MAX 998	/* RFC 5322 2.1.1, without CRLF */
#define FOLD_AT		78	/* RFC 5322's "SHOULD", where convenient */

struct cleanup {
	int		 enable;
	char		*hostname;
	char		*mailname;	/* "" none */
	char		*sender;
	char		*admin;
	struct addrlist	 local;		/* local domains */
	struct addrlist	 alias_names, alias_values;	/* values: "a, b" */
	struct addrlist	 map_names, map_values;
	size_t		 max_line;	/* header lines longer are folded */
};

/* Append a map line's name and value; -1 with err on a bad target. */
static int
map_add(const char *name, size_t nlen, const char *value,
    struct addrlist *names, struct addrlist *values, const char *file,
    int line, char *err, size_t errlen)
{
	char key[256];
	struct addrlist v = { NULL, 0 };
	size_t i;

	if (nlen == 0 || nlen >= sizeof(key)) {
		snprintf(err, errlen, "%s:%d: bad name", file, line);
		return -1;
	}
	for (const char *p = value; *p; p++)
		if ((*p == '|' || *p == '/' || *p == ':') &&
		    (p == value || p[-1] == ' ' || p[-1] == ',')) {
			snprintf(err, errlen, "%s:%d: %.*s: only addresses are "
			    "supported (no |program, /file or :include:)", file,
			    line, (int)nlen, name);
			return -1;
		}
	addrlist_parse(value, &v);
	for (i = 0; i < v.n; i++)
		if (!smtp_address_is_valid(v.v[i], 0)) {
			snprintf(err, errlen, "%s:%d: %.*s: \"%s\" is not an "
			    "address", file, line, (int)nlen, name, v.v[i]);
			addrlist_free(&v);
			return -1;
		}
	addrlist_free(&v);
	memcpy(key, name, nlen);
	key[nlen] = '\0';
	for (i = 0; i < nlen; i++)
		key[i] = (char)tolower((unsigned char)key[i]);
	addrlist_add(names, key);
	addrlist_add(values, value);
	return 0;
}

int
cleanup_parse_map(const char *text, const char *file, struct addrlist *names,
    struct addrlist *values, char *err, size_t errlen)
{
	const char *p = text;
	int line = 0, start_line;

	while (*p != '\0') {
		const char *nl, *colon;
		char *entry = NULL;
		size_t elen = 0;

		line++;
		start_line = line;
		nl = strchr(p, '\n');
		/* Gather the entry and its continuation lines. */
		for (;;) {
			size_t n = nl ? (size_t)(nl - p) : strlen(p);
			const char *hash = memchr(p, '#', n);

			if (hash != NULL)
				n = hash - p;
			if ((entry = realloc(entry, elen + n + 2)) == NULL)
				abort();
			memcpy(entry + elen, p, n);
			elen += n;
			entry[elen++] = ' ';
			entry[elen] = '\0';
			p = nl ? nl + 1 : p + strlen(p);
			if (*p != ' ' && *p != '\t')
				break;
			line++;
			nl = strchr(p, '\n');
		}
		{
			char *s = entry;
			while (isspace((unsigned char)*s))
				s++;
			if (*s == '\0') {
				free(entry);
				continue;
			}
			if ((colon = strchr(s, ':')) == NULL) {
				snprintf(err, errlen, "%s:%d: expected \"name: "
				    "address, ...\"", file, start_line);
				free(entry);
				return -1;
			}
			{
				size_t nlen = colon - s;
				while (nlen > 0 && isspace((unsigned char)s[nlen - 1]))
					nlen--;
				if (map_add(s, nlen, colon + 1, names, values,
				    file, start_line, err, errlen) == -1) {
					free(entry);
					return -1;
				}
			}
		}
		free(entry);
	}
	return 0;
}

static int
load_map(const char *file, struct addrlist *names, struct addrlist *values,
    char *err, size_t errlen)
{
	char *text;
	ssize_t n;
	int fd;

	if (file == NULL || *file == '\0')
		return 0;
	if ((fd = open(file, O_RDONLY | O_CLOEXEC)) == -1) {
		snprintf(err, errlen, "%s: %s", file, strerror(errno));
		return -1;
	}
	if ((text = malloc(MAP_MAX + 1)) == NULL)
		abort();
	n = read(fd, text, MAP_MAX);
	close(fd);
	if (n < 0 || n == MAP_MAX) {
		snprintf(err, errlen, "%s: %s", file, n < 0 ? strerror(errno) :
		    "larger than 1 MiB");
		free(text);
		return -1;
	}
	text[n] = '\0';
	n = cleanup_parse_map(text, file, names, values, err, errlen);
	free(text);
	return (int)n;
}

struct cleanup *
cleanup_new(const struct cleanup_config *cf, char *err, size_t errlen)
{
	struct cleanup *c = calloc(1, sizeof(*c));

	if (c == NULL)
		abort();
	c->enable = cf->enable;
	c->max_line = cf->max_line ? cf->max_line : CLEANUP_LINE_MAX;
	c->hostname = xstrdup(cf->hostname);
	c->mailname = xstrdup(cf->mailname);
	c->sender = xstrdup(cf->sender);
	c->admin = xstrdup(cf->admin);
	addrlist_add(&c->local, "localhost");
	addrlist_add(&c->local, "localhost.localdomain");
	if (cf->hostname && *cf->hostname)
		addrlist_add(&c->local, cf->hostname);
	if (*c->mailname)
		addrlist_add(&c->local, c->mailname);
	for (size_t i = 0; i < cf->nlocal_domains; i++)
		addrlist_add(&c->local, cf->local_domains[i]);
	if (load_map(cf->aliases, &c->alias_names, &c->alias_values, err,
	    errlen) == -1 || load_map(cf->sender_map, &c->map_names,
	    &c->map_values, err, errlen) == -1) {
		cleanup_free(c);
		return NULL;
	}
	return c;
}

struct cleanup *
cleanup_new_from_conf(const struct conf *c, const char *hostname, char *err,
    size_t errlen)
{
	struct cleanup_config cc;
	char mailname[256];

	memset(&cc, 0, sizeof(cc));
	cc.enable = c->cleanup.headers;
	cc.hostname = hostname;
	conf_mailname(c, mailname, sizeof(mailname));
	cc.mailname = mailname;
	cc.sender = c->rewrite.sender;
	cc.admin = c->rewrite.admin;
	cc.local_domains = c->rewrite.local_domains.v;
	cc.nlocal_domains = c->rewrite.local_domains.n;
	cc.aliases = c->rewrite.aliases;
	cc.sender_map = c->rewrite.sender_map;
	cc.max_line = (size_t)c->smtp.max_header_line_length;
	return cleanup_new(&cc, err, errlen);
}

void
cleanup_free(struct cleanup *c)
{
	if (c == NULL)
		return;
	free(c->hostname);
	free(c->mailname);
	free(c->sender);
	free(c->admin);
	addrlist_free(&c->local);
	addrlist_free(&c->alias_names);
	addrlist_free(&c->alias_values);
	addrlist_free(&c->map_names);
	addrlist_free(&c->map_values);
	free(c);
}

int
cleanup_is_local(const struct cleanup *c, const char *addr)
{
	const char *at = strrchr(addr, '@');

	if (*addr == '\0')
		return 0;	/* the null sender */
	if (at == NULL)
		return 1;
	for (size_t i = 0; i < c->local.n; i++)
		if (strcasecmp(at + 1, c->local.v[i]) == 0)
			return 1;
	return 0;
}

/* The local part of addr, lower-cased, into buf. */
static const char *
local_part(const char *addr, char *buf, size_t len)
{
	size_t n = strcspn(addr, "@");

	if (n >= len)
		n = len - 1;
	for (size_t i = 0; i < n; i++)
		buf[i] = (char)tolower((unsigned char)addr[i]);
	buf[n] = '\0';
	return buf;
}

static const char *
map_find(const struct addrlist *names, const struct addrlist *values,
    const char *key)
{
	for (size_t i = 0; i < names->n; i++)
		if (strcmp(names->v[i], key) == 0)
			return values->v[i];
	return NULL;
}

const char *
cleanup_sender(const struct cleanup *c, const char *sender)
{
	char user[128];
	const char *mapped;
	static char first[SMTP_ADDR_MAX];
	struct addrlist v = { NULL, 0 };

	if (!cleanup_is_local(c, sender))
		return sender;
	local_part(sender, user, sizeof(user));
	if ((mapped = map_find(&c->map_names, &c->map_values, user)) !=
	    NULL) {
		addrlist_parse(mapped, &v);
		if (v.n > 0) {
			snprintf(first, sizeof(first), "%s", v.v[0]);
			addrlist_free(&v);
			return first;
		}
		addrlist_free(&v);
	}
	if (*c->sender)
		return c->sender;
	/* "user" is "user@<mail name>", as Debian's MTAs have it. */
	if (*c->mailname && strchr(sender, '@') == NULL) {
		snprintf(first, sizeof(first), "%s@%s", sender, c->mailname);
		return first;
	}
	return sender;
}

/* Could addr's domain be an SES identity: a name with a dot in it? */
static int
domain_is_verifiable(const char *addr)
{
	const char *at = strrchr(addr, '@'), *dom = at ? at + 1 : "";
	size_t n = strlen(dom);

	if (strchr(dom, '.') == NULL || *dom == '[' || dom[n - 1] == '.')
		return 0;
	return strcasecmp(dom, "localhost.localdomain") != 0 && (n < 10 ||
	    strcasecmp(dom + n - 10, ".localhost") != 0);
}

int
cleanup_sender_is_refused(const struct cleanup *c, const char *sender)
{
	if (*sender == '\0')
		return 0;	/* the null sender: bounces */
	return !domain_is_verifiable(cleanup_sender(c, sender));
}

static size_t
expand(const struct cleanup *c, const char *rcpt, struct addrlist *out,
    int depth)
{
	char user[128];
	const char *value;
	struct addrlist v = { NULL, 0 };
	size_t added = 0;

	if (!cleanup_is_local(c, rcpt)) {
		addrlist_add(out, rcpt);
		return 1;
	}
	if (depth >= ALIAS_DEPTH)
		return 0;
	local_part(rcpt, user, sizeof(user));
	value = map_find(&c->alias_names, &c->alias_values, user);
	if (value == NULL) {
		if (*c->admin == '\0')
			return 0;
		addrlist_add(out, c->admin);
		return 1;
	}
	addrlist_parse(value, &v);
	for (size_t i = 0; i < v.n; i++)
		added += expand(c, v.v[i], out, depth + 1);
	addrlist_free(&v);
	return added;
}

size_t
cleanup_recipient(const struct cleanup *c, const char *rcpt,
    struct addrlist *out)
{
	return expand(c, rcpt, out, 0);
}

/* ---- headers ---- */

static int
field_is(const char *f, size_t len, const char *name)
{
	size_t n = strlen(name);

	return len > n && strncasecmp(f, name, n) == 0 && f[n] == ':';
}

static void
emit(char **buf, size_t *len, size_t *cap, const char *s, size_t n)
{
	if (*len + n + 1 > *cap) {
		*cap = (*len + n + 1) * 2;
		if ((*buf = realloc(*buf, *cap)) == NULL)
			abort();
	}
	memcpy(*buf + *len, s, n);
	*len += n;
	(*buf)[*len] = '\0';
}

/*
 * Folding (RFC 5322 2.2.3): a CRLF is inserted before white space, so that
 * unfolding (removing each CRLF that is followed by white space) gives the
 * field back exactly: it means what it meant.  Only a field with a line
 * longer than max_line is folded; any other is copied byte for byte (a
 * DKIM signature over it stays valid).  A long line is cut near FOLD_AT,
 * preferably after a comma outside quotes (between addresses), else at
 * other white space, else at the first white space within max_line; never
 * inside the field name, never between a backslash and the white space
 * it quotes (RFC 5322 3.2.1's quoted-pair), never leaving a line of
 * white space only.  A line with no white space to fold at stays long,
 * and is refused.
 */
static int
is_wsp(char ch)
{
	return ch == ' ' || ch == '\t';
}

/*
 * Where to fold l[start..last) (last: after the last character that is
 * not white space): an index f (l[f] is white space, l[f-1] is not,
 * f > body), or 0.  *quoted: inside a quoted string at start, and at the
 * returned f.
 */
static size_t
fold_point(const char *l, size_t last, size_t start, size_t body,
    size_t max, int *quoted)
{
	size_t comma = 0, any = 0, i;
	int q = *quoted, qcomma = 0, qany = 0, esc = 0;

	for (i = start + 1; i < last && i - start <= max; i++) {
		/* l[i - 1]: escaped, or a backslash escaping l[i] (a
		 * quoted-pair, never cut), or a quote. */
		if (esc)
			esc = 0;
		else if (l[i - 1] == '\\')
			esc = 1;
		else if (l[i - 1] == '"')
			q = !q;
		if (i - start > FOLD_AT && any != 0)
			break;
		if (!is_wsp(l[i]) || is_wsp(l[i - 1]) || esc || i <= body)
			continue;
		if (i - start > FOLD_AT) {
			*quoted = q;
			return i;	/* the first place past FOLD_AT */
		}
		if (l[i - 1] == ',' && !q) {
			comma = i;
			qcomma = q;
		}
		any = i;
		qany = q;
	}
	/* After a comma, unless that makes the line much shorter. */
	if (comma != 0 && comma - start >= (any - start) / 2) {
		*quoted = qcomma;
		return comma;
	}
	*quoted = qany;
	return any;
}

/* Emit one line (without its CRLF) folded; body: where the value starts. */
static void
emit_folded_line(const char *l, size_t len, size_t body, size_t max,
    char **buf, size_t *blen, size_t *cap)
{
	size_t start = 0, last = len, f;
	int quoted = 0;

	while (last > 0 && is_wsp(l[last - 1]))
		last--;
	while (len - start > FOLD_AT &&
	    (f = fold_point(l, last, start, body, max, &quoted)) != 0) {
		emit(buf, blen, cap, l + start, f - start);
		emit(buf, blen, cap, "\r\n", 2);
		start = f;
	}
	emit(buf, blen, cap, l + start, len - start);
}

/* Longest line of text[0..len), without its line end (CRLF or LF). */
static size_t
longest_line(const char *text, size_t len)
{
	size_t longest = 0, start = 0, n;

	for (size_t i = 0; i <= len; i++) {
		if (i < len && text[i] != '\n')
			continue;
		n = i - start;
		if (i < len && n > 0 && text[i - 1] == '\r')
			n--;
		if (n > longest)
			longest = n;
		start = i + 1;
	}
	return longest;
}

int
cleanup_header_is_too_long(const struct cleanup *c, const char *hdr,
    size_t len)
{
	return longest_line(hdr, len) > c->max_line;
}

/*
 * The field just emitted, buf[from..*blen), with a line longer than
 * max_line: emitted again, folded.
 */
static void
fold_field(const struct cleanup *c, size_t from, char **buf, size_t *blen,
    size_t *cap)
{
	size_t flen = *blen - from, body = strcspn(*buf + from, ":\n") + 1;
	char *f;
	const char *p, *end;

	if (longest_line(*buf + from, flen) <= c->max_line)
		return;
	if ((f = malloc(flen)) == NULL)
		abort();
	memcpy(f, *buf + from, flen);
	*blen = from;
	for (p = f, end = f + flen; p < end; body = 0) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
		size_t eol = nl ? 1 + (n > 0 && p[n - 1] == '\r') : 0;

		n -= eol > 1;
		emit_folded_line(p, n, body, c->max_line, buf, blen, cap);
		emit(buf, blen, cap, p + n, eol);
		p += n + eol;
	}
	free(f);
}

/*
 * The value of the field f (len bytes, "Name:" at its start), unfolded
 * (CR and LF become spaces), and its addresses in *v: the value is
 * returned, for the caller to free.
 */
static char *
field_addrs(const char *f, size_t len, struct addrlist *v)
{
	size_t nlen = strcspn(f, ":");
	char *value = strndup(f + nlen + 1, len - nlen - 1);

	if (value == NULL)
		abort();
	for (char *p = value; *p; p++)
		if (*p == '\r' || *p == '\n')
			*p = ' ';
	addrlist_parse(value, v);
	return value;
}

/*
 * From: with a local address becomes the rewritten sender, keeping the
 * display name: "Cron Daemon <root>" -> "Cron Daemon <noreply@x>".
 */
static int
rewrite_from(const struct cleanup *c, const char *f, size_t len, char **buf,
    size_t *blen, size_t *cap)
{
	struct addrlist v = { NULL, 0 };
	char *value = field_addrs(f, len, &v), *lt, line[1024];
	const char *to;
	int n, done = 0;

	if (v.n == 1 && cleanup_is_local(c, v.v[0]) &&
	    (to = cleanup_sender(c, v.v[0])) != v.v[0]) {
		char *name = value;
		while (*name == ' ' || *name == '\t')
			name++;
		if ((lt = strchr(name, '<')) != NULL) {
			while (lt > name && lt[-1] == ' ')
				lt--;
			*lt = '\0';
		} else if ((lt = strchr(name, '(')) != NULL &&
		    strchr(lt, ')') != NULL) {
			/* "root (Cron Daemon)": the comment is the name. */
			name = lt + 1;
			*strrchr(name, ')') = '\0';
		} else
			*name = '\0';	/* "root": no name */
		n = *name ? snprintf(line, sizeof(line), "From: %s <%s>\r\n",
		    name, to) : snprintf(line, sizeof(line), "From: %s\r\n", to);
		if (n > 0 && (size_t)n < sizeof(line)) {
			emit(buf, blen, cap, line, (size_t)n);
			done = 1;
		}
	}
	addrlist_free(&v);
	free(value);
	return done;
}

/*
 * To: or Cc: naming local recipients ("To: root", what cron writes)
 * would be refused by SES ("Missing final '@domain'"): the field is
 * rebuilt with each local address replaced by where it is delivered.
 */
static int
rewrite_rcpt_field(const struct cleanup *c, const char *f, size_t len,
    char **buf, size_t *blen, size_t *cap)
{
	size_t nlen = strcspn(f, ":");
	struct addrlist v = { NULL, 0 }, out = { NULL, 0 };
	char *value = field_addrs(f, len, &v);
	int local = 0, rewritten;

	for (size_t i = 0; i < v.n; i++) {
		if (cleanup_is_local(c, v.v[i])) {
			local = 1;
			cleanup_recipient(c, v.v[i], &out);
		} else
			addrlist_add(&out, v.v[i]);
	}
	rewritten = local && out.n > 0;
	if (rewritten) {
		emit(buf, blen, cap, f, nlen + 1);
		for (size_t i = 0; i < out.n; i++) {
			emit(buf, blen, cap, i ? ", " : " ", i ? 2 : 1);
			emit(buf, blen, cap, out.v[i], strlen(out.v[i]));
		}
		emit(buf, blen, cap, "\r\n", 2);
	}
	addrlist_free(&v);
	addrlist_free(&out);
	free(value);
	/* Rewritten only when a local address had somewhere to go;
	 * otherwise the field is kept as it was, never dropped. */
	return rewritten;
}

/* From:, To: and Cc: rewritten where they name local addresses. */
static int
rewrite_field(const struct cleanup *c, const char *f, size_t len,
    char **buf, size_t *blen, size_t *cap)
{
	if (field_is(f, len, "To") || field_is(f, len, "Cc"))
		return rewrite_rcpt_field(c, f, len, buf, blen, cap);
	if (field_is(f, len, "From"))
		return rewrite_from(c, f, len, buf, blen, cap);
	return 0;
}

int
cleanup_header(const struct cleanup *c, const char *hdr, size_t len,
    const char *orig_sender, time_t now, char **out, size_t *outlen)
{
	const char *p = hdr, *end = hdr + len;
	int has_date = 0, has_msgid = 0, has_to = 0, has_from = 0;
	char *buf = NULL, line[512];
	size_t blen = 0, cap = 0;

	emit(&buf, &blen, &cap, "", 0);
	while (p < end) {
		const char *start = p;
		size_t flen, from = blen;

		do {
			const char *nl = memchr(p, '\n', end - p);
			p = nl ? nl + 1 : end;
		} while (p < end && (*p == ' ' || *p == '\t'));
		flen = p - start;
		has_date |= field_is(start, flen, "Date");
		has_msgid |= field_is(start, flen, "Message-ID");
		has_to |= field_is(start, flen, "To") ||
		    field_is(start, flen, "Cc");
		has_from |= field_is(start, flen, "From");
		if (!rewrite_field(c, start, flen, &buf, &blen, &cap))
			emit(&buf, &blen, &cap, start, flen);
		fold_field(c, from, &buf, &blen, &cap);
	}
	/* A last line without its line end must not swallow new fields. */
	if (blen > 0 && buf[blen - 1] != '\n')
		emit(&buf, &blen, &cap, "\r\n", 2);
	if (!c->enable)
		goto done;
	if (!has_from && orig_sender != NULL && *orig_sender != '\0') {
		int n = snprintf(line, sizeof(line), "From: %s\r\n",
		    cleanup_sender(c, orig_sender));
		if (n > 0 && (size_t)n < sizeof(line))
			emit(&buf, &blen, &cap, line, (size_t)n);
	}
	if (!has_date) {
		struct tm tm;
		size_t n = strftime(line, sizeof(line),
		    "Date: %a, %d %b %Y %H:%M:%S %z\r\n",
		    localtime_r(&now, &tm));
		emit(&buf, &blen, &cap, line, n);
	}
	if (!has_msgid) {
		uint64_t r = 0;
		int n;

		if (getrandom(&r, sizeof(r), 0) != sizeof(r))
			r = (uint64_t)random();
		n = snprintf(line, sizeof(line), "Message-ID: <%lld.%016llx@%s>"
		    "\r\n", (long long)now, (unsigned long long)r, c->hostname);
		if (n > 0 && (size_t)n < sizeof(line))
			emit(&buf, &blen, &cap, line, (size_t)n);
	}
	/* SES refuses a message without a To: (a Bcc-only message). */
	if (!has_to)
		emit(&buf, &blen, &cap, "To: undisclosed-recipients:;\r\n", 30);
done:
	*out = buf;
	*outlen = blen;
	return 0;
}

/* Does text start with a header field ("Name:", RFC 5322 2.2)? */
static int
starts_with_field(const char *p, size_t len)
{
	size_t i;

	for (i = 0; i < len && p[i] > ' ' && p[i] < 0x7f && p[i] != ':'; i++)
		;
	return i > 0 && i < len && p[i] == ':';
}

int
cleanup_text_start(const struct cleanup *c, const char *text, size_t len,
    const char *orig_sender, time_t now, char **out, size_t *outlen)
{
	const char *blank = memmem(text, len, "\r\n\r\n", 4);
	size_t hlen = 0, clen;
	char *clean, *buf;
	int too_long, add_blank;

	if (starts_with_field(text, len))
		hlen = blank != NULL ? (size_t)(blank - text) + 2 : len;
	cleanup_header(c, text, hlen, orig_sender, now, &clean, &clen);
	/* Checked after cleanup, which folds a long line where it can. */
	too_long = cleanup_header_is_too_long(c, clean, clen);
	add_blank = hlen == 0 && (len < 2 || memcmp(text, "\r\n", 2) != 0);
	if ((buf = realloc(clean, clen + 2 + (len - hlen) + 1)) == NULL)
		abort();
	if (add_blank) {
		memcpy(buf + clen, "\r\n", 2);
		clen += 2;
	}
	memcpy(buf + clen, text + hlen, len - hlen);
	clen += len - hlen;
	buf[clen] = '\0';
	*out = buf;
	*outlen = clen;
	return too_long;
}
