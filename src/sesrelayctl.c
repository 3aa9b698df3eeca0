/*
 * sesrelayctl.c: the operator's tool.
 *
 * Implemented: smtp-password.  The queue commands (queue, show, flush,
 * hold, release, delete, stats, reload) need the daemon's control
 * socket, which does not exist yet: they say so and exit 69.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include <openssl/crypto.h>

#include "ses_password.h"

static void
usage(void)
{
	fprintf(stderr,
	    "usage: sesrelayctl smtp-password --region REGION < secret-key\n"
	    "       sesrelayctl --version\n");
	exit(EX_USAGE);
}

static int
cmd_smtp_password(int argc, char *argv[])
{
	const char *region = NULL;
	char secret[512], pw[SES_PASSWORD_LEN + 1];
	size_t n;

	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--region") == 0 && i + 1 < argc)
			region = argv[++i];
		else if (strncmp(argv[i], "--region=", 9) == 0)
			region = argv[i] + 9;
		else
			usage();
	}
	if (region == NULL || *region == '\0')
		usage();
	if (fgets(secret, sizeof(secret), stdin) == NULL) {
		fprintf(stderr, "sesrelayctl: no secret access key on "
		    "standard input\n");
		return EX_DATAERR;
	}
	n = strcspn(secret, "\r\n");
	secret[n] = '\0';
	if (n == 0 || ses_password_v4(secret, region, pw) == -1) {
		OPENSSL_cleanse(secret, sizeof(secret));
		fprintf(stderr, "sesrelayctl: cannot derive a password from "
		    "that input\n");
		return EX_DATAERR;
	}
	OPENSSL_cleanse(secret, sizeof(secret));
	printf("%s\n", pw);
	return EX_OK;
}

int
main(int argc, char *argv[])
{
	static const char *const later[] = { "queue", "show", "flush", "hold",
	    "release", "delete", "stats", "reload" };

	if (argc < 2)
		usage();
	if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "-v") == 0) {
		printf("sesrelayctl %s\n", PACKAGE_VERSION);
		return EX_OK;
	}
	if (strcmp(argv[1], "smtp-password") == 0)
		return cmd_smtp_password(argc - 2, argv + 2);
	for (size_t i = 0; i < sizeof(later) / sizeof(later[0]); i++)
		if (strcmp(argv[1], later[i]) == 0) {
			fprintf(stderr, "sesrelayctl: %s: not supported yet "
			    "(the control socket is not implemented)\n",
			    argv[1]);
			return EX_UNAVAILABLE;
		}
	usage();
	return EX_USAGE;
}
