/*
 * sendmail_args.c: sendmail's options as a table, and what -t and -F do
 * to the header.
 *
 * Each row: the option as written, whether it takes a value (given
 * attached, "-fuser", or as the next word, "-f user"; a few take one only
 * attached, "-q15m"), what it sets, and a check of the value.  Options
 * that other sendmail programs accept and that have no meaning here are
 * rows with the IGNORE action, so they are accepted on purpose, not by
 * accident; options that cannot work here are REFUSE rows with the
 * reason; anything else is a usage error.  As with getopt(3), letters of
 * options without a value may be grouped ("-ti"), the last one may take
 * a value ("-tfa@b").
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "maildrop.h"
#include "sendmail_args.h"

enum arg_kind {
	ARG_NONE,
	ARG_REQUIRED,		/* attached or the next word */
	ARG_ATTACHED,		/* optional, attached only: -q, -q15m */
};

enum action {
	A_EXTRACT, A_IGNORE_DOTS, A_VERBOSE, A_SENDER, A_FULLNAME, A_CONFIG,
	A_MODE, A_IGNORE, A_REFUSE,
};

typedef int (*check_fn)(const char *value, char *err, size_t errlen);

static int check_sender(const char *, char *, size_t);
static int check_fullname(const char *, char *, size_t);
static int check_queue_run(const char *, char *, size_t);
static int check_body_type(const char *, char *, size_t);
static int check_notify(const char *, char *, size_t);
static int check_return(const char *, char *, size_t);
static int check_number(const char *, char *, size_t);

static const struct opt {
	const char		*name;
	enum arg_kind		 arg;
	enum action		 action;
	enum sendmail_mode	 mode;		/* A_MODE */
	check_fn		 check;		/* NULL: any value */
	const char		*why;		/* A_REFUSE */
} opts[] = {
	{ "-t", ARG_NONE, A_EXTRACT, 0, NULL, NULL },
	{ "-i", ARG_NONE, A_IGNORE_DOTS, 0, NULL, NULL },
	{ "-oi", ARG_NONE, A_IGNORE_DOTS, 0, NULL, NULL },
	{ "-v", ARG_NONE, A_VERBOSE, 0, NULL, NULL },
	{ "-f", ARG_REQUIRED, A_SENDER, 0, check_sender, NULL },
	{ "-r", ARG_REQUIRED, A_SENDER, 0, check_sender, NULL },
	{ "-F", ARG_REQUIRED, A_FULLNAME, 0, check_fullname, NULL },
	{ "-C", ARG_REQUIRED, A_CONFIG, 0, NULL, NULL },
	{ "-bm", ARG_NONE, A_MODE, SENDMAIL_MODE_SEND, NULL, NULL },
	{ "-bs", ARG_NONE, A_MODE, SENDMAIL_MODE_SMTP, NULL, NULL },
	{ "-bp", ARG_NONE, A_MODE, SENDMAIL_MODE_MAILQ, NULL, NULL },
	{ "-bv", ARG_NONE, A_MODE, SENDMAIL_MODE_VERIFY, NULL, NULL },
	{ "-bi", ARG_NONE, A_MODE, SENDMAIL_MODE_NEWALIASES, NULL, NULL },
	{ "-I", ARG_NONE, A_MODE, SENDMAIL_MODE_NEWALIASES, NULL, NULL },
	{ "-q", ARG_ATTACHED, A_MODE, SENDMAIL_MODE_FLUSH, check_queue_run,
	  NULL },
	{ "--version", ARG_NONE, A_MODE, SENDMAIL_MODE_VERSION, NULL, NULL },
	{ "-bd", ARG_NONE, A_REFUSE, 0, NULL, "sesrelay-sendmail does not run "
	  "as a daemon: start sesrelayd(8)" },
	/* Compatibility: accepted, no effect (see sesrelay-sendmail(8)). */
	{ "-odb", ARG_NONE, A_IGNORE, 0, NULL, NULL },
	{ "-odi", ARG_NONE, A_IGNORE, 0, NULL, NULL },
	{ "-odq", ARG_NONE, A_IGNORE, 0, NULL, NULL },
	{ "-odd", ARG_NONE, A_IGNORE, 0, NULL, NULL },
	{ "-oee", ARG_NONE, A_IGNORE, 0, NULL, NULL },
	{ "-oem", ARG_NONE, A_IGNORE, 0, NULL, NULL },
	{ "-oep", ARG_NONE, A_IGNORE, 0, NULL, NULL },
	{ "-oeq", ARG_NONE, A_IGNORE, 0, NULL, NULL },
	{ "-oew", ARG_NONE, A_IGNORE, 0, NULL, NULL },
	{ "-om", ARG_NONE, A_IGNORE, 0, NULL, NULL },
	{ "-o7", ARG_NONE, A_IGNORE, 0, NULL, NULL },
	{ "-o8", ARG_NONE, A_IGNORE, 0, NULL, NULL },
	{ "-oA", ARG_REQUIRED, A_IGNORE, 0, NULL, NULL },
	{ "-m", ARG_NONE, A_IGNORE, 0, NULL, NULL },
	{ "-n", ARG_NONE, A_IGNORE, 0, NULL, NULL },
	{ "-G", ARG_NONE, A_IGNORE, 0, NULL, NULL },
	{ "-U", ARG_NONE, A_IGNORE, 0, NULL, NULL },
	{ "-Ac", ARG_NONE, A_IGNORE, 0, NULL, NULL },
	{ "-Am", ARG_NONE, A_IGNORE, 0, NULL, NULL },
	{ "-B", ARG_REQUIRED, A_IGNORE, 0, check_body_type, NULL },
	{ "-N", ARG_REQUIRED, A_IGNORE, 0, check_notify, NULL },
	{ "-R", ARG_REQUIRED, A_IGNORE, 0, check_return, NULL },
	{ "-O", ARG_REQUIRED, A_IGNORE, 0, NULL, NULL },
	{ "-X", ARG_REQUIRED, A_IGNORE, 0, NULL, NULL },
	{ "-V", ARG_REQUIRED, A_IGNORE, 0, NULL, NULL },
	{ "-L", ARG_REQUIRED, A_IGNORE, 0, NULL, NULL },
	{ "-h", ARG_REQUIRED, A_IGNORE, 0, check_number, NULL },
};

#define NOPTS	(sizeof(opts) / sizeof(opts[0]))

/* 1 when s has a control character (TAB too, unless tab_ok). */
static int
has_control(const char *s, int tab_ok)
{
	for (; *s; s++)
		if (((unsigned char)*s < 0x20 && !(tab_ok && *s == '\t')) ||
		    *s == 0x7f)
			return 1;
	return 0;
}

static int
check_sender(const char *v, char *err, size_t errlen)
{
	if (strlen(v) > SENDMAIL_NAME_MAX || has_control(v, 0)) {
		snprintf(err, errlen, "the sender must be one line of at most "
		    "%d bytes", SENDMAIL_NAME_MAX);
		return -1;
	}
	return 0;
}

static int
check_fullname(const char *v, char *err, size_t errlen)
{
	if (strlen(v) > SENDMAIL_NAME_MAX || has_control(v, 1)) {
		snprintf(err, errlen, "the full name must be one line of at "
		    "most %d bytes", SENDMAIL_NAME_MAX);
		return -1;
	}
	return 0;
}

/* -q, -q15m, -q1h30m (an interval, ignored) or -qRsite, -qIid, -qSaddr. */
static int
check_queue_run(const char *v, char *err, size_t errlen)
{
	const char *p = v;

	if (v == NULL || *v == '\0')
		return 0;
	if (strchr("RIS", *v) != NULL && v[1] != '\0')
		return 0;
	while (isdigit((unsigned char)*p)) {
		while (isdigit((unsigned char)*p))
			p++;
		if (*p != '\0' && strchr("smhdw", *p) != NULL)
			p++;
	}
	if (*p == '\0')
		return 0;
	snprintf(err, errlen, "-q%s: give an interval such as -q15m, or "
	    "-qR, -qI, -qS with a value", v);
	return -1;
}

/* 0 when v is one of the words in list (NULL-terminated), any case. */
static int
one_of(const char *v, const char *const *list)
{
	for (; *list != NULL; list++)
		if (strcasecmp(v, *list) == 0)
			return 0;
	return -1;
}

static int
check_body_type(const char *v, char *err, size_t errlen)
{
	static const char *const types[] = { "7BIT", "8BITMIME", NULL };

	if (one_of(v, types) == 0)
		return 0;
	snprintf(err, errlen, "-B %s: the body type is 7BIT or 8BITMIME", v);
	return -1;
}

/* -N never, or a list of success, delay, failure. */
static int
check_notify(const char *v, char *err, size_t errlen)
{
	static const char *const conds[] = { "success", "delay", "failure",
	    NULL };
	char word[16];
	const char *p = v;

	if (strcasecmp(v, "never") == 0)
		return 0;
	do {
		size_t n = strcspn(p, ",");

		if (n == 0 || n >= sizeof(word))
			goto bad;
		memcpy(word, p, n);
		word[n] = '\0';
		if (one_of(word, conds) == -1)
			goto bad;
		p += n;
	} while (*p++ == ',');
	return 0;
bad:
	snprintf(err, errlen, "-N %s: give never, or success, delay and "
	    "failure separated by commas", v);
	return -1;
}

static int
check_return(const char *v, char *err, size_t errlen)
{
	static const char *const rets[] = { "full", "hdrs", NULL };

	if (one_of(v, rets) == 0)
		return 0;
	snprintf(err, errlen, "-R %s: give full or hdrs", v);
	return -1;
}

static int
check_number(const char *v, char *err, size_t errlen)
{
	const char *p = v;

	while (isdigit((unsigned char)*p))
		p++;
	if (p != v && *p == '\0' && p - v < 10)
		return 0;
	snprintf(err, errlen, "%s: not a number", v);
	return -1;
}

/*
 * The row for s (an argument without its first dash): the exact name,
 * else the longest name with a value that prefixes it ("fuser").
 */
static const struct opt *
find_opt(const char *s, const char **value)
{
	const struct opt *best = NULL;
	size_t best_len = 0;

	*value = NULL;
	for (size_t i = 0; i < NOPTS; i++) {
		const char *name = opts[i].name + 1;
		size_t n = strlen(name);

		if (strcmp(s, name) == 0) {
			*value = NULL;
			return &opts[i];
		}
		if (opts[i].arg != ARG_NONE && strncmp(s, name, n) == 0 &&
		    n > best_len) {
			best = &opts[i];
			best_len = n;
			*value = s + n;
		}
	}
	return best;
}

/* -f: "Name <a@b>" and "<a@b>" give a@b; "<>" gives "" (the user). */
static void
set_sender(struct sendmail_args *a, const char *v)
{
	struct addrlist l = { NULL, 0 };

	a->sender = v;
	if (strchr(v, '<') == NULL)
		return;
	addrlist_parse(v, &l);
	if (l.n > 0 && strlen(l.v[0]) >= sizeof(a->sender_buf)) {
		/* Too long to keep whole: apply() refuses it. */
		a->sender = v;
		addrlist_free(&l);
		return;
	}
	snprintf(a->sender_buf, sizeof(a->sender_buf), "%s",
	    l.n > 0 ? l.v[0] : "");
	a->sender = a->sender_buf;
	addrlist_free(&l);
}

/* Carry out one option; 0, or -1 with a->error. */
static int
apply(struct sendmail_args *a, const struct opt *o, const char *value)
{
	char why[200];

	if (o->check != NULL && o->check(value, why, sizeof(why)) == -1) {
		snprintf(a->error, sizeof(a->error), "%s", why);
		return -1;
	}
	switch (o->action) {
	case A_EXTRACT:		a->extract = 1; break;
	case A_IGNORE_DOTS:	a->ignore_dots = 1; break;
	case A_VERBOSE:		a->verbose = 1; break;
	case A_SENDER:		set_sender(a, value); break;
	case A_FULLNAME:	a->fullname = *value ? value : NULL; break;
	case A_CONFIG:		a->config = value; break;
	case A_MODE:		a->mode = o->mode; break;
	case A_IGNORE:		break;
	case A_REFUSE:
		snprintf(a->error, sizeof(a->error), "%s: %s", o->name,
		    o->why);
		return -1;
	}
	if (o->action == A_SENDER && (strlen(a->sender) > SENDMAIL_ADDR_MAX ||
	    strpbrk(a->sender, "<>") != NULL)) {
		snprintf(a->error, sizeof(a->error), "-f %s: not an address",
		    value);
		return -1;
	}
	return 0;
}

/*
 * One option word, argv[*i] (which starts with '-'): a row, or grouped
 * letters without a value ("-ti"), the last of which may take one.
 */
static int
parse_word(struct sendmail_args *a, int argc, char *const argv[], int *i)
{
	const char *arg = argv[*i], *s = arg + 1, *value;
	const struct opt *o;

	for (;;) {
		if ((o = find_opt(s, &value)) != NULL)
			break;
		/* A single letter without a value, then the rest. */
		o = find_opt((char[]){ s[0], '\0' }, &value);
		if (s[0] == '\0' || s[1] == '\0' || o == NULL ||
		    o->arg != ARG_NONE) {
			snprintf(a->error, sizeof(a->error),
			    "unknown option %s", arg);
			return -1;
		}
		if (apply(a, o, NULL) == -1)
			return -1;
		s++;
	}
	if (o->arg == ARG_REQUIRED && value == NULL) {
		if (*i + 1 >= argc) {
			snprintf(a->error, sizeof(a->error),
			    "option %s needs a value", o->name);
			return -1;
		}
		value = argv[++*i];
	}
	return apply(a, o, value);
}

/* Are the operands right for the mode?  0, or -1 with a->error. */
static int
check_operands(struct sendmail_args *a)
{
	switch (a->mode) {
	case SENDMAIL_MODE_SEND:
	case SENDMAIL_MODE_VERIFY:
		if (!a->extract && a->nrcpt == 0) {
			snprintf(a->error, sizeof(a->error), "no recipients "
			    "given (use -t to read them from the message)");
			return -1;
		}
		return 0;
	case SENDMAIL_MODE_SMTP:
	case SENDMAIL_MODE_MAILQ:
	case SENDMAIL_MODE_FLUSH:
		if (a->nrcpt > 0) {
			snprintf(a->error, sizeof(a->error), "unexpected "
			    "argument %s: %s takes no recipients", a->rcpts[0],
			    a->mode == SENDMAIL_MODE_SMTP ? "-bs" :
			    a->mode == SENDMAIL_MODE_MAILQ ? "-bp" : "-q");
			return -1;
		}
		return 0;
	case SENDMAIL_MODE_NEWALIASES:
	case SENDMAIL_MODE_VERSION:
		return 0;
	}
	return 0;
}

int
sendmail_args_parse(int argc, char *const argv[], struct sendmail_args *a)
{
	const char *prog = argc > 0 ? strrchr(argv[0], '/') : NULL;
	int i;

	memset(a, 0, sizeof(*a));
	prog = prog ? prog + 1 : (argc > 0 ? argv[0] : "sendmail");
	if (strcmp(prog, "mailq") == 0)
		a->mode = SENDMAIL_MODE_MAILQ;
	else if (strcmp(prog, "newaliases") == 0)
		a->mode = SENDMAIL_MODE_NEWALIASES;

	for (i = argc > 0 ? 1 : 0; i < argc; i++) {
		const char *arg = argv[i];

		if (strcmp(arg, "--") == 0) {
			i++;
			break;
		}
		if (arg[0] != '-' || arg[1] == '\0')
			break;
		if (parse_word(a, argc, argv, &i) == -1)
			return -1;
	}
	a->rcpts = argv + i;
	a->nrcpt = (size_t)(argc - i);
	return check_operands(a);
}

enum sendmail_line
sendmail_args_line(const char *line, size_t n, int after_field)
{
	size_t i;

	if (n == 0 || line[0] == '\n' || (line[0] == '\r' && n > 1 &&
	    line[1] == '\n'))
		return n == 0 ? SENDMAIL_LINE_BODY : SENDMAIL_LINE_END;
	if (line[0] == ' ' || line[0] == '\t')
		return after_field ? SENDMAIL_LINE_CONTINUATION :
		    SENDMAIL_LINE_BODY;
	/* RFC 5322 2.2: printable US-ASCII but the colon, then a colon. */
	for (i = 0; i < n && line[i] > ' ' && line[i] < 0x7f &&
	    line[i] != ':'; i++)
		;
	return i > 0 && i < n && line[i] == ':' ? SENDMAIL_LINE_FIELD :
	    SENDMAIL_LINE_BODY;
}

/* Is there a field named name in the n bytes of fields at hdr? */
static int
has_field(const char *hdr, size_t n, const char *name)
{
	size_t nlen = strlen(name);

	for (const char *p = hdr; p != NULL && p < hdr + n; ) {
		if ((size_t)(hdr + n - p) > nlen &&
		    strncasecmp(p, name, nlen) == 0 && p[nlen] == ':')
			return 1;
		if ((p = memchr(p, '\n', hdr + n - p)) != NULL)
			p++;
	}
	return 0;
}

static void
append(char **buf, size_t *len, size_t *cap, const char *s, size_t n)
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

int
sendmail_args_header(int extract, const char *fullname, const char *sender,
    const char *hdr, size_t fields, size_t len, struct addrlist *rcpts,
    char **out, size_t *outlen)
{
	const char *rest = hdr + fields;
	size_t restlen = len - fields, blen = 0, cap = 0;
	char *buf = NULL, from[MAILDROP_FROM_MAX];
	int n;

	if (extract) {
		if (addrlist_from_header(hdr, fields, rcpts, &buf, &blen) == -1)
			return -1;
		cap = blen + 1;
	} else
		append(&buf, &blen, &cap, hdr, fields);
	if (fullname != NULL && !has_field(hdr, fields, "From")) {
		/* A header that ended the input without its line end. */
		if (blen > 0 && buf[blen - 1] != '\n')
			append(&buf, &blen, &cap, "\n", 1);
		n = maildrop_from_field(fullname, sender, from,
		    sizeof(from));
		if (n > 0)
			append(&buf, &blen, &cap, from, (size_t)n);
	}
	/* The body starts right after the fields: the empty line first. */
	if (blen > 0 && restlen > 0 && sendmail_args_line(rest, restlen, 0) !=
	    SENDMAIL_LINE_END)
		append(&buf, &blen, &cap, "\n", 1);
	append(&buf, &blen, &cap, rest, restlen);
	*out = buf;
	*outlen = blen;
	return 0;
}

static void
header_add(struct sendmail_header *h, size_t *cap, char c)
{
	if (h->len + 2 > *cap) {
		*cap = *cap ? *cap * 2 : 4096;
		if ((h->buf = realloc(h->buf, *cap)) == NULL)
			abort();
	}
	h->buf[h->len++] = c;
	h->buf[h->len] = '\0';
}

/*
 * Line by line, each classified by sendmail_args_line: the fields, then
 * the line that ends them.  The header of a message through the Unix
 * socket and through the maildrop ends at the same place because both
 * come through here.
 */
int
sendmail_args_read_header(FILE *fp, struct sendmail_header *h)
{
	size_t cap = 0;
	int after_field = 0;

	memset(h, 0, sizeof(*h));
	header_add(h, &cap, '\0');
	h->len = 0;
	for (;;) {
		size_t start = h->len;
		enum sendmail_line kind;
		int c = EOF;

		while (h->len < SENDMAIL_HEADER_MAX &&
		    (c = getc(fp)) != EOF) {
			header_add(h, &cap, (char)c);
			if (c == '\n')
				break;
		}
		if (c == EOF && ferror(fp))
			return -1;
		kind = sendmail_args_line(h->buf + start, h->len - start,
		    after_field);
		if (h->len == start || kind == SENDMAIL_LINE_END ||
		    kind == SENDMAIL_LINE_BODY) {
			h->fields = start;
			return 0;
		}
		if (c == EOF) {		/* a field without a line end, last */
			h->fields = h->len;
			return 0;
		}
		if (c != '\n') {
			errno = EFBIG;
			return -1;
		}
		after_field = 1;
	}
}
