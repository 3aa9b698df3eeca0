/*
 * control.h: the control socket of sesrelayd (sesrelayctl, mailq).
 *
 * Protocol: the client sends one line, "COMMAND [ARG] [--json]\n"; the
 * daemon answers "OK\n" and a body, or "ERR <reason>\n", and closes.
 * The daemon renders the body (human text, or JSON with --json), so
 * the clients only print it.  Anyone may read (queue, mailq, show,
 * stats); changing the queue or reloading needs root, the daemon's own
 * user, or membership of its group, which the daemon learns from the
 * kernel (SO_PEERCRED), not from the client.
 */
#ifndef SESRELAY_CONTROL_H
#define SESRELAY_CONTROL_H

#include <stdio.h>
#include <sys/types.h>
#include <time.h>

#include "fleet.h"

struct event_base;
struct scheduler;
struct scheduler_view;

/* The commands, in sesrelayctl's order (the index of the table). */
enum control_cmd {
	CONTROL_QUEUE,
	CONTROL_SHOW,
	CONTROL_FLUSH,
	CONTROL_HOLD,
	CONTROL_RELEASE,
	CONTROL_DELETE,
	CONTROL_STATS,
	CONTROL_RELOAD,
	CONTROL_MAILQ,
	CONTROL_NCMDS
};

/* What a command takes after its name. */
enum control_arg {
	CONTROL_ARG_NONE,
	CONTROL_ARG_ID,			/* a queue id */
	CONTROL_ARG_ID_OR_ALL,		/* a queue id or "all" */
};

struct control_request {
	enum control_cmd cmd;
	char		 arg[64];	/* a queue id or "all"; "" none */
	int		 json;
	int		 privileged;	/* the command changes something */
};

struct control;

/*
 * One row of the command table, which both sides follow: the daemon
 * parses and dispatches by it, sesrelayctl checks its arguments and
 * prints its usage from it.
 */
struct control_command {
	const char	*name;
	enum control_arg arg;
	int		 privileged;	/* root, our user or our group only */
	const char	*help;		/* NULL: not a sesrelayctl command
					 * (mailq: sesrelay-sendmail's) */
	/* The daemon's side: the answer's body to fp; 0, or -1 with err. */
	int		(*run)(struct control *, const struct control_request *,
			    FILE *fp, char *err, size_t errlen);
};

/* The row of cmd (below CONTROL_NCMDS). */
const struct control_command *control_command(enum control_cmd);
/* The row named name, with its cmd; NULL when there is none. */
const struct control_command *control_command_find(const char *name,
    enum control_cmd *cmd);

/* Parse a request line (without its newline); 0, or -1 with err set. */
int control_parse_request(const char *line, struct control_request *,
    char *err, size_t errlen);

/* Write s as a JSON string literal. */
void control_json_string(FILE *, const char *s);

/* What the daemon reports besides the queue (stats, status). */
struct account_view;

struct control_status {
	const char	*upstream;	/* host in use */
	int		 fallback_active;
	double		 rate;		/* recipients/s now */
	double		 rate_configured;
	int		 sessions;	/* open */
	int		 max_sessions;	/* allowed now */
	int		 quota_paused;
	int		 backing_off;
	size_t		 queued;
	size_t		 ready;
	long long	 oldest_age;
	size_t		 held;
	int		 indexing;	/* the start-up index is not done: the
					 * queue counts what it found so far */
	struct fleet_status fleet;	/* state "off": no fleet.store */
	/* the account's limits (GetAccount) of the endpoint in use; NULL:
	 * not read (no API credentials), known 0: no answer yet */
	const struct account_view *account;
};

/* Renderers (pure; also used by the tests). */
void control_render_message(FILE *, const struct scheduler_view *,
    int json, int full, time_t now);
void control_render_mailq_header(FILE *);
void control_render_mailq(FILE *, const struct scheduler_view *);
void control_render_stats(FILE *, const struct control_status *, int json,
    time_t now);

/* Connections the control socket serves at once (the descriptor budget). */
#define CONTROL_MAX_CLIENTS	32

/* The daemon's side. */
struct control_ops {
	struct scheduler *sched;
	void	(*status)(void *arg, struct control_status *); /* all of it */
	/* 0, or -1 with a reason in err */
	int	(*reload)(void *arg, char *err, size_t errlen);
	void	(*kick)(void *arg);	/* after flush/release */
	void	*arg;
	gid_t	 group;		/* may change the queue, besides root/us */
};

/* Listen on path (a stale socket is replaced); NULL with err. */
struct control *control_new(struct event_base *, const char *path,
    const struct control_ops *, char *err, size_t errlen);
void control_free(struct control *);

#endif
