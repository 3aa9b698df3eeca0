/*
 * sendmail_args.c: sendmail's options as a table.
 *
 * Each row: the option as written, whether it takes a value (given
 * attached, "-fuser", or as the next word, "-f user"), and what it sets.
 * Options that sendmail programs accept for compatibility and that have
 * no meaning here are rows with the IGNORE action, so they are accepted
 * on purpose, not by accident; anything else is a usage error.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "sendmail_args.h"

enum action {
	A_EXTRACT, A_IGNORE_DOTS, A_VERBOSE, A_SENDER, A_FULLNAME, A_CONFIG,
	A_MODE_SEND, A_MODE_MAILQ, A_MODE_NEWALIASES, A_IGNORE,
	A_IGNORE_ARG, A_VERSION,
};

static const struct opt {
	const char	*name;
	int		 has_arg;
	enum action	 action;
} opts[] = {
	{ "-t", 0, A_EXTRACT },
	{ "-i", 0, A_IGNORE_DOTS },
	{ "-oi", 0, A_IGNORE_DOTS },
	{ "-v", 0, A_VERBOSE },
	{ "-f", 1, A_SENDER },
	{ "-r", 1, A_SENDER },
	{ "-F", 1, A_FULLNAME },
	{ "-C", 1, A_CONFIG },
	{ "-bm", 0, A_MODE_SEND },
	{ "-bp", 0, A_MODE_MAILQ },
	{ "-bi", 0, A_MODE_NEWALIASES },
	{ "--version", 0, A_VERSION },
	/* Compatibility: accepted, no effect (see sesrelay-sendmail(8)). */
	{ "-odi", 0, A_IGNORE }, { "-odb", 0, A_IGNORE },
	{ "-oem", 0, A_IGNORE }, { "-oep", 0, A_IGNORE },
	{ "-oee", 0, A_IGNORE }, { "-om", 0, A_IGNORE },
	{ "-B", 1, A_IGNORE_ARG }, { "-N", 1, A_IGNORE_ARG },
	{ "-R", 1, A_IGNORE_ARG }, { "-O", 1, A_IGNORE_ARG },
	{ "-X", 1, A_IGNORE_ARG },
};

static const struct opt *
find_opt(const char *arg, const char **value)
{
	const struct opt *best = NULL;

	for (size_t i = 0; i < sizeof(opts) / sizeof(opts[0]); i++) {
		size_t n = strlen(opts[i].name);

		if (strcmp(arg, opts[i].name) == 0) {
			*value = NULL;
			return &opts[i];
		}
		/* "-fuser": the longest option that prefixes arg wins. */
		if (opts[i].has_arg && strncmp(arg, opts[i].name, n) == 0 &&
		    (best == NULL || n > strlen(best->name))) {
			best = &opts[i];
			*value = arg + n;
		}
	}
	return best;
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
		const char *arg = argv[i], *value = NULL;
		const struct opt *o;

		if (strcmp(arg, "--") == 0) {
			i++;
			break;
		}
		if (arg[0] != '-' || arg[1] == '\0')
			break;
		if ((o = find_opt(arg, &value)) == NULL) {
			snprintf(a->error, sizeof(a->error),
			    "unknown option %s", arg);
			return -1;
		}
		if (o->has_arg && value == NULL) {
			if (i + 1 >= argc) {
				snprintf(a->error, sizeof(a->error),
				    "option %s needs a value", o->name);
				return -1;
			}
			value = argv[++i];
		}
		switch (o->action) {
		case A_EXTRACT:		a->extract = 1; break;
		case A_IGNORE_DOTS:	a->ignore_dots = 1; break;
		case A_VERBOSE:		a->verbose = 1; break;
		case A_SENDER:		a->sender = value; break;
		case A_FULLNAME:	a->fullname = value; break;
		case A_CONFIG:		a->config = value; break;
		case A_MODE_SEND:	a->mode = SENDMAIL_MODE_SEND; break;
		case A_MODE_MAILQ:	a->mode = SENDMAIL_MODE_MAILQ; break;
		case A_MODE_NEWALIASES:	a->mode = SENDMAIL_MODE_NEWALIASES;
					break;
		case A_VERSION:		a->mode = SENDMAIL_MODE_VERSION; break;
		case A_IGNORE:
		case A_IGNORE_ARG:	break;
		}
	}
	a->rcpts = argv + i;
	a->nrcpt = (size_t)(argc - i);
	if (a->mode == SENDMAIL_MODE_SEND && !a->extract && a->nrcpt == 0) {
		snprintf(a->error, sizeof(a->error), "no recipients given "
		    "(use -t to read them from the message)");
		return -1;
	}
	return 0;
}
