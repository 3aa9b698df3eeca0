/*
 * sesrelay-sendmail.c: the sendmail-compatible submission program.
 *
 * Reads a message on standard input and hands it to sesrelayd over the
 * Unix socket named by listen.unix in the configuration.  Exits 0 only
 * after the daemon answered 250, i.e. after the message is on disk;
 * every other outcome is a sysexits(3) code and a line on stderr.
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "addrlist.h"
#include "conf.h"
#include "sendmail_args.h"
#include "submit.h"

#define MAX_HEADER_BLOCK	(1024 * 1024)

static const char *prog = "sendmail";

static int die(int code, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Say why on stderr; return the exit code. */
static int
die(int code, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return code;
}

/*
 * Read the header block (up to and including the blank line, or all of
 * a short headerless input).  Returns a malloc'd buffer or NULL when it
 * is larger than MAX_HEADER_BLOCK.
 */
static char *
read_header(FILE *fp, size_t *len)
{
	char *buf = NULL, *line = NULL;
	size_t cap = 0, lcap = 0;
	ssize_t n;

	*len = 0;
	while ((n = getline(&line, &lcap, fp)) > 0) {
		if (*len + n > MAX_HEADER_BLOCK) {
			free(buf);
			free(line);
			return NULL;
		}
		if (*len + n + 1 > cap) {
			cap = (*len + n + 1) * 2;
			if ((buf = realloc(buf, cap)) == NULL)
				abort();
		}
		memcpy(buf + *len, line, n);
		*len += n;
		if (line[0] == '\n' || (line[0] == '\r' && line[1] == '\n'))
			break;
	}
	free(line);
	if (buf == NULL && (buf = malloc(1)) == NULL)
		abort();
	return buf;
}

/* The envelope sender: -f, else the calling user at localhost. */
static void
default_sender(char *buf, size_t len, const char *given)
{
	struct passwd *pw;

	if (given != NULL && *given != '\0') {
		snprintf(buf, len, "%s", given);
		return;
	}
	pw = getpwuid(getuid());
	snprintf(buf, len, "%s@localhost", pw ? pw->pw_name : "nobody");
}

static int
send_message(const struct sendmail_args *a, const struct conf *c)
{
	struct addrlist rcpts = { NULL, 0 };
	struct submit s;
	char sender[512], *hdr, *kept = NULL;
	const char *refused;
	size_t hlen, keptlen = 0;
	int rc;

	if ((hdr = read_header(stdin, &hlen)) == NULL)
		return die(EX_DATAERR, "message header larger than 1 MiB");
	for (size_t i = 0; i < a->nrcpt; i++)
		addrlist_parse(a->rcpts[i], &rcpts);
	if (a->extract) {
		if (addrlist_from_header(hdr, hlen, &rcpts, &kept, &keptlen) ==
		    -1) {
			free(hdr);
			addrlist_free(&rcpts);
			return die(EX_DATAERR, "-t: the message does not start "
			    "with a header");
		}
	} else {
		kept = hdr;
		keptlen = hlen;
		hdr = NULL;
	}
	free(hdr);
	if (rcpts.n == 0) {
		free(kept);
		return die(EX_USAGE, "no recipients");
	}
	default_sender(sender, sizeof(sender), a->sender);

	if (submit_open(&s, c->listen.unix_path, 300) == -1) {
		if (s.code == 0 && s.reply[0] == '\0')
			rc = die(EX_TEMPFAIL, "cannot reach sesrelayd at %s: %s "
			    "(is sesrelayd running?)", c->listen.unix_path,
			    strerror(errno));
		else
			rc = die(submit_exit_code(s.code, 0), "sesrelayd: %s",
			    s.reply);
		goto out;
	}
	s.ignore_dots = a->ignore_dots;
	if (submit_envelope(&s, sender, rcpts.v, rcpts.n, &refused) == -1) {
		fprintf(stderr, "%s: <%s> refused: %s\n", prog, refused,
		    s.reply);
		rc = submit_exit_code(s.code, refused != sender);
		goto close;
	}
	if (submit_data(&s) == -1 || submit_text(&s, kept, keptlen) == -1 ||
	    submit_stream(&s, stdin) == -1 || submit_finish(&s) == -1) {
		rc = die(submit_exit_code(s.code, 0), "message not sent: %s",
		    s.reply);
		goto close;
	}
	if (a->verbose)
		fprintf(stderr, "%s: queued as %s\n", prog, s.queue_id);
	rc = EX_OK;
close:
	submit_close(&s);
out:
	free(kept);
	addrlist_free(&rcpts);
	return rc;
}

int
main(int argc, char *argv[])
{
	struct sendmail_args a;
	const char *file = getenv("SESRELAY_CONFIG");
	char err[CONF_ERRLEN];
	struct conf *c;
	int rc;

	if (argc > 0 && argv[0] != NULL) {
		prog = strrchr(argv[0], '/');
		prog = prog ? prog + 1 : argv[0];
	}
	if (sendmail_args_parse(argc, argv, &a) == -1) {
		fprintf(stderr, "%s: %s\nusage: %s [-t] [-i] [-f sender] "
		    "[-F name] [-C config] [recipient ...]\n", prog, a.error,
		    prog);
		return EX_USAGE;
	}
	switch (a.mode) {
	case SENDMAIL_MODE_VERSION:
		printf("sesrelay-sendmail %s\n", PACKAGE_VERSION);
		return EX_OK;
	case SENDMAIL_MODE_NEWALIASES:
		printf("%s: sesrelay uses no aliases database; nothing to "
		    "do\n", prog);
		return EX_OK;
	case SENDMAIL_MODE_MAILQ:
		fprintf(stderr, "%s: listing the queue is not yet supported\n",
		    prog);
		return EX_UNAVAILABLE;
	case SENDMAIL_MODE_SEND:
		break;
	}
	if (a.config != NULL)
		file = a.config;
	if (file == NULL || *file == '\0')
		file = SESRELAY_CONF_FILE;
	if ((c = conf_load(file, err, sizeof(err))) == NULL) {
		fprintf(stderr, "%s: %s\n", prog, err);
		return EX_CONFIG;
	}
	if (c->listen.unix_path[0] == '\0') {
		fprintf(stderr, "%s: %s: listen.unix is empty; sendmail needs "
		    "the daemon's Unix socket\n", prog, file);
		conf_free(c);
		return EX_CONFIG;
	}
	rc = send_message(&a, c);
	conf_free(c);
	return rc;
}
