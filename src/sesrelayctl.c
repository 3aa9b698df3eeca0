/*
 * sesrelayctl.c: the operator's tool.
 *
 *   sesrelayctl [-c FILE] [-s SOCKET] [--json] COMMAND [ARG]
 *
 * The queue commands are requests on sesrelayd's control socket (the
 * daemon renders the answer; this program prints it); smtp-password
 * derives an SES SMTP password locally.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include <openssl/crypto.h>

#include "endpoint.h"
#include "upcheck.h"
#include "conf.h"
#include "control.h"
#include "ctlclient.h"
#include "ses_password.h"

#define CTL_TIMEOUT	30

static void
usage(void)
{
	static const char *const label[] = {
		[CONTROL_ARG_NONE] = "      ",
		[CONTROL_ARG_ID] = "ID    ",
		[CONTROL_ARG_ID_OR_ALL] = "ID|all",
	};

	fprintf(stderr,
	    "usage: sesrelayctl [-c file] [-s socket] [--json] command [id|all]\n"
	    "       sesrelayctl smtp-password --region REGION < secret-key\n"
	    "       sesrelayctl --version\n"
	    "commands:\n");
	for (int i = 0; i < CONTROL_NCMDS; i++) {
		const struct control_command *c = control_command(i);

		if (c->help != NULL)
			fprintf(stderr, "  %-8s %s %s\n", c->name,
			    label[c->arg], c->help);
	}
	fprintf(stderr, "  check [--fallback]  connect to SES as configured, "
	    "step by step\n");
	fprintf(stderr, "  smtp-password  print the SES SMTP password for an "
	    "IAM secret key\n");
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

/* The control socket: -s, else the configuration's control.socket. */
static const char *
socket_path(const char *sock, const char *file)
{
	static char path[1024];
	char err[CONF_ERRLEN];
	struct conf *c;

	if (sock != NULL)
		return sock;
	if ((c = conf_load(file, err, sizeof(err))) == NULL) {
		fprintf(stderr, "sesrelayctl: %s\n", err);
		exit(EX_CONFIG);
	}
	snprintf(path, sizeof(path), "%s", c->control.socket);
	conf_free(c);
	return path;
}

static int
cmd_queue(const char *sock, const char *file, int json, int argc,
    char *argv[])
{
	const struct control_command *c;
	enum control_cmd cmd;
	char req[256], err[512];
	int rc;

	/* A sesrelayctl command of the table, with the argument it takes. */
	if ((c = control_command_find(argv[0], &cmd)) == NULL ||
	    c->help == NULL || argc != 1 + (c->arg != CONTROL_ARG_NONE))
		usage();
	snprintf(req, sizeof(req), "%s%s%.64s%s", argv[0], argc > 1 ? " " :
	    "", argc > 1 ? argv[1] : "", json ? " --json" : "");
	rc = ctlclient_call(socket_path(sock, file), req, stdout, CTL_TIMEOUT,
	    err, sizeof(err));
	fflush(stdout);
	if (rc == 0)
		return EX_OK;
	fprintf(stderr, "sesrelayctl: %s\n", err);
	return rc == 1 ? ctlclient_exit_code(err) : EX_UNAVAILABLE;
}

/*
 * check: over SMTP the SMTP conversation, then (with API credentials)
 * the account and the senders; over the API only the latter, which
 * also proves the API's TLS and the signature.
 */
static int
cmd_check(const struct conf *c, int fb)
{
	struct endpoint ep;
	int rc = 0, api;

	if (endpoint_from_conf(c, fb ? ENDPOINT_FALLBACK : ENDPOINT_PRIMARY,
	    &ep) == -1)
		return check_upstream(c, fb, (int)c->upstream.timeout, stdout);
	api = strcmp(ep.transport, "api") == 0;
	if (!api)
		rc = check_upstream(c, fb, (int)c->upstream.timeout, stdout);
	if (rc == 0)
		rc = check_account(c, fb, (int)c->upstream.timeout, stdout);
	if (rc == 0 && api)
		printf("all good: the SES API at %s takes these credentials "
		    "(sending itself needs ses:SendEmail or ses:SendRawEmail)\n",
		    ep.api_url);
	return rc;
}

int
main(int argc, char *argv[])
{
	const char *file = NULL, *sock = NULL;
	int json = 0, i;

	for (i = 1; i < argc && argv[i][0] == '-'; i++) {
		if (strcmp(argv[i], "--version") == 0 ||
		    strcmp(argv[i], "-v") == 0) {
			printf("sesrelayctl %s\n", PACKAGE_VERSION);
			return EX_OK;
		} else if (strcmp(argv[i], "--json") == 0)
			json = 1;
		else if (strcmp(argv[i], "-c") == 0 && i + 1 < argc)
			file = argv[++i];
		else if (strcmp(argv[i], "-s") == 0 && i + 1 < argc)
			sock = argv[++i];
		else
			usage();
	}
	if (i >= argc)
		usage();
	file = conf_path(file);
	if (strcmp(argv[i], "smtp-password") == 0)
		return cmd_smtp_password(argc - i - 1, argv + i + 1);
	if (strcmp(argv[i], "check") == 0) {
		struct conf *c;
		char err[CONF_ERRLEN];
		int fb = 0, rc;

		if (argc - i == 2 && strcmp(argv[i + 1], "--fallback") == 0)
			fb = 1;
		else if (argc - i != 1)
			usage();
		if ((c = conf_load(file, err, sizeof(err))) == NULL) {
			fprintf(stderr, "sesrelayctl: %s\n", err);
			return EX_CONFIG;
		}
		rc = cmd_check(c, fb);
		conf_free(c);
		return rc;
	}
	/* --json may also follow the command. */
	if (argc - i >= 2 && strcmp(argv[argc - 1], "--json") == 0) {
		json = 1;
		argc--;
	}
	return cmd_queue(sock, file, json, argc - i, argv + i);
}
