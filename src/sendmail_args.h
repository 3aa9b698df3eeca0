/*
 * sendmail_args.h: the sendmail command line, parsed by a pure,
 * table-driven parser (no I/O, no exit).
 */
#ifndef SESRELAY_SENDMAIL_ARGS_H
#define SESRELAY_SENDMAIL_ARGS_H

#include <stddef.h>

enum sendmail_mode {
	SENDMAIL_MODE_SEND = 0,		/* -bm, the default */
	SENDMAIL_MODE_MAILQ,		/* -bp, or called as mailq */
	SENDMAIL_MODE_NEWALIASES,	/* -bi, or called as newaliases */
	SENDMAIL_MODE_VERSION,		/* --version */
};

struct sendmail_args {
	enum sendmail_mode	 mode;
	int			 extract;	/* -t */
	int			 ignore_dots;	/* -i, -oi */
	int			 verbose;	/* -v */
	const char		*sender;	/* -f, -r */
	const char		*fullname;	/* -F */
	const char		*config;	/* -C */
	char *const		*rcpts;		/* operands */
	size_t			 nrcpt;
	char			 error[256];	/* set when parsing fails */
};

/*
 * Parse argv (argv[0] selects the mode: "mailq", "newaliases").
 * Returns 0, or -1 with a.error set (a usage error).
 */
int sendmail_args_parse(int argc, char *const argv[], struct sendmail_args *a);

#endif
