/*
 * fuzz_maildrop.c: maildrop files as the daemon reads them (maildrop.c),
 * hostile input written by any local user.
 *
 * The input is a maildrop file, given to maildrop_parse() as an exactly
 * sized copy (no NUL after it), then again cut at every 61st length.
 * When it parses, its fullname (or the input, as a name) goes through
 * maildrop_from_field().
 *
 * Invariants: a file parses only when its envelope is in the canonical
 * form, so writing the parsed envelope back gives the input's first
 * body_off bytes exactly; values have no control characters (TAB in the
 * name only) and are under MAILDROP_VALUE_MAX + 1 bytes; there is a
 * recipient or extract; a shorter cut parses only when it keeps the
 * whole envelope, and then to the same one; the From: field is one
 * field of lines at most 998 bytes, each after the first folded, ending
 * in " <address>" and LF, and 7-bit before the address.
 */
#include "config.h"

#include "fuzz_util.h"
#include "maildrop.h"

static void
check_value(const char *v, int is_name, int may_be_empty)
{
	size_t n = strlen(v);

	FUZZ_CHECK(n <= MAILDROP_VALUE_MAX);
	FUZZ_CHECK(may_be_empty || n > 0);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)v[i];

		FUZZ_CHECK(c >= 0x20 || (is_name && c == '\t'));
		FUZZ_CHECK(c != 0x7f);
	}
}

static void
put(char **p, const char *s)
{
	size_t n = strlen(s);

	memcpy(*p, s, n);
	*p += n;
}

/* The envelope written back; it must be the input's first bytes. */
static void
check_canonical(const struct maildrop_envelope *env, const char *buf)
{
	size_t need = strlen(MAILDROP_MAGIC "\nfrom \n\n") + strlen(env->from);
	char *out, *p;

	if (env->fullname != NULL)
		need += strlen("fullname \n") + strlen(env->fullname);
	for (size_t i = 0; i < env->nrcpt; i++)
		need += strlen("rcpt \n") + strlen(env->rcpts[i]);
	if (env->extract)
		need += strlen("extract\n");
	FUZZ_CHECK(need == env->body_off);
	p = out = fuzz_alloc(need);
	put(&p, MAILDROP_MAGIC "\nfrom ");
	put(&p, env->from);
	put(&p, "\n");
	if (env->fullname != NULL) {
		put(&p, "fullname ");
		put(&p, env->fullname);
		put(&p, "\n");
	}
	for (size_t i = 0; i < env->nrcpt; i++) {
		put(&p, "rcpt ");
		put(&p, env->rcpts[i]);
		put(&p, "\n");
	}
	if (env->extract)
		put(&p, "extract\n");
	put(&p, "\n");
	FUZZ_CHECK((size_t)(p - out) == env->body_off);
	FUZZ_CHECK(memcmp(out, buf, env->body_off) == 0);
	free(out);
}

static void
check_from_field(const char *name, const char *addr)
{
	char buf[MAILDROP_FROM_MAX];
	int n = maildrop_from_field(name, addr, buf, sizeof(buf));
	size_t alen;

	if (n == -1)
		return;
	FUZZ_CHECK(n > 6 && (size_t)n == strlen(buf));
	FUZZ_CHECK(memcmp(buf, "From:", 5) == 0 && buf[n - 1] == '\n');
	for (const char *l = buf; *l; ) {
		size_t len = strcspn(l, "\n");

		FUZZ_CHECK(len <= 998);
		FUZZ_CHECK(l == buf || *l == ' ');
		FUZZ_CHECK(l[len] == '\n');
		l += len + 1;
	}
	/* The name part is 7-bit; the address is copied as it is. */
	alen = strlen(addr);
	FUZZ_CHECK((size_t)n >= alen + 8);
	FUZZ_CHECK(memcmp(buf + n - alen - 4, " <", 2) == 0);
	FUZZ_CHECK(memcmp(buf + n - alen - 2, addr, alen) == 0);
	FUZZ_CHECK(memcmp(buf + n - 2, ">\n", 2) == 0);
	for (size_t i = 0; i < (size_t)n - alen - 4; i++)
		FUZZ_CHECK((unsigned char)buf[i] < 0x80 && buf[i] != '\r' &&
		    buf[i] != '\0');
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct maildrop_envelope env, cut;
	char *buf = fuzz_copy(data, size), *name;
	int r = maildrop_parse(buf, size, &env);

	if (r == 0) {
		FUZZ_CHECK(env.from != NULL && env.body_off <= size);
		FUZZ_CHECK(env.nrcpt > 0 || env.extract);
		check_value(env.from, 0, 1);
		if (env.fullname != NULL)
			check_value(env.fullname, 1, 0);
		for (size_t i = 0; i < env.nrcpt; i++)
			check_value(env.rcpts[i], 0, 0);
		check_canonical(&env, buf);
		check_from_field(env.fullname, env.from);
	} else {
		FUZZ_CHECK(env.from == NULL && env.rcpts == NULL &&
		    env.nrcpt == 0);
	}
	for (size_t k = 0; k < size; k += 61) {
		char *c = fuzz_copy(data, k);

		if (maildrop_parse(c, k, &cut) == 0) {
			FUZZ_CHECK(r == 0 && k >= env.body_off);
			FUZZ_CHECK(cut.body_off == env.body_off);
			FUZZ_CHECK(cut.nrcpt == env.nrcpt);
			maildrop_envelope_free(&cut);
		} else if (r == 0)
			FUZZ_CHECK(k < env.body_off);
		free(c);
	}
	if (r == 0)
		maildrop_envelope_free(&env);
	/* The raw input as a name, cut at its first NUL. */
	name = fuzz_strndup(data, strnlen((const char *)data, size));
	check_from_field(name, "u@example.com");
	free(name);
	free(buf);
	return 0;
}
