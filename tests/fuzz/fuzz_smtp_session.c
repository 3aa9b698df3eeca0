/*
 * fuzz_smtp_session.c: the SMTP session layer (smtp_server.c) fed
 * arbitrary client bytes in arbitrary chunks, through the real state
 * machine, dot decoder, cleanup and spool (a scratch directory, see
 * fuzz_scratch.h), on the daemon's event loop.  The server listens on
 * an abstract Unix socket and on 127.0.0.1 (an ephemeral port), as
 * sesrelayd does on its two kinds of listener; each input is one client
 * connection.
 *
 * Input: three bytes of settings, then what the client sends.
 *   byte 0 bit 0     root is in sendmail.trusted_users
 *          bit 1     smtp.bare_lf = reject (else normalize)
 *          bit 2     smtp.strict_8bitmime
 *          bit 3     no rewrite.sender/admin
 *          bits 4-5  max_message_size: 41943040 (the default), 1024,
 *                    4096, 65536
 *          bits 6-7  smtp.max_recipients: 1000 (the default), 1, 2, 50
 *   byte 1           chunks: 0 all at once, 1 one byte at a time, else
 *                    sizes from 1 to that value, drawn from a PRNG
 *                    seeded with it
 *   byte 2 bit 0     small limits: max_line_length 512, max_header_size
 *                    1024, max_header_line_length 78, max_commands 10
 *          bit 1     the client reads replies only when the server
 *                    stops reading (a client that pipelines blindly)
 *          bit 2     over TCP (loopback) instead of the Unix socket
 *          bit 3     at the end the client resets the connection
 *                    instead of closing its side and reading the rest
 *          bit 4     spool_min_free beyond any disk: 452 for new mail
 * After each chunk the loop runs until the server has read it (or
 * stopped reading) and every spool job is done, so the server sees the
 * same chunks whatever the timing.  Then the client half-closes and the
 * loop runs until the session ends.
 *
 * Invariants (issue 10: nothing acknowledged and lost, no session that
 * outlives its client):
 *   - the session ends once the client has sent everything, closed its
 *     side and read every reply, or reset the connection (no timer
 *     needed);
 *   - every reply line is "ddd" then " " or "-", at most 512 bytes with
 *     its CRLF (RFC 5321 4.5.3.1.5), without CR, LF or NUL inside; the
 *     first is 220, 421 or 554;
 *   - every "250 2.0.0 Ok: queued as ID" names a message given to
 *     accepted(); each accepted message loads back from the spool with
 *     1 to max_recipients recipients, none twice, and a body of
 *     body_size bytes (at most max_message_size) of CRLF lines without
 *     NUL, ending in CRLF, whose header lines are at most 998 bytes.
 * Accepted messages are removed with spool_remove() after each input.
 */
#include "config.h"

#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <linux/sockios.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <poll.h>
#include <strings.h>

#include "fuzz_scratch.h"
#include "smtp_server.h"

#define MAX_REPLIES	(1024 * 1024)	/* kept for checking */
#define STILL_PASSES	2	/* loop passes without progress: idle */

static struct event_base *base;
static struct spool *spool;
static struct smtp_server *srv;
static struct cleanup *rewriting, *plain;
static char spool_dir[300];
static struct sockaddr_un unix_addr;
static socklen_t unix_addrlen;
static struct sockaddr_in tcp_addr;

static struct spool_envelope **accepted;
static size_t naccepted, maxaccepted;

/* What the client received. */
static char *replies;
static size_t nreplies;
static int peer_closed;

static void
on_accepted(void *arg, struct spool_envelope *env)
{
	(void)arg;
	if (naccepted == maxaccepted) {
		maxaccepted = maxaccepted ? 2 * maxaccepted : 16;
		accepted = realloc(accepted, maxaccepted * sizeof(*accepted));
		FUZZ_CHECK(accepted != NULL);
	}
	accepted[naccepted++] = env;
}

/* The server's settings for this input (smtp_server_configure). */
static void
configure(unsigned f0, unsigned f2, struct smtp_server_config *c)
{
	static const long long sizes[] = { 41943040, 1024, 4096, 65536 };
	static const long long rcpts[] = { 1000, 1, 2, 50 };
	static char *const trusted_root[] = { "root" };
	int small = f2 & 1;

	memset(c, 0, sizeof(*c));
	c->hostname = "relay.example";
	c->max_message_size = sizes[(f0 >> 4) & 3];
	c->max_recipients = rcpts[(f0 >> 6) & 3];
	c->max_line_length = small ? 512 : 2048;
	c->timeout = c->greeting_timeout = c->data_timeout = 600;
	c->max_clients = 4;
	c->max_commands = small ? 10 : 10000;
	c->max_header_size = small ? 1024 : 102400;
	c->max_header_line_length = small ? 78 : 998;
	c->min_free = (f2 & 16) ? 1LL << 60 : 0;
	c->bare_lf_reject = (f0 & 2) != 0;
	c->strict_8bitmime = (f0 & 4) != 0;
	c->cleanup = (f0 & 8) ? plain : rewriting;
	c->trusted = (f0 & 1) ? trusted_root : NULL;
	c->ntrusted = (f0 & 1) ? 1 : 0;
}

/* Listen on an abstract Unix socket and on 127.0.0.1:<any>. */
static void
listen_both(void)
{
	char err[512];
	socklen_t len = sizeof(tcp_addr);
	int u, t;

	memset(&unix_addr, 0, sizeof(unix_addr));
	unix_addr.sun_family = AF_UNIX;
	snprintf(unix_addr.sun_path + 1, sizeof(unix_addr.sun_path) - 1,
	    "sesrelay-fuzz-%ld", (long)getpid());
	unix_addrlen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) +
	    1 + strlen(unix_addr.sun_path + 1));
	u = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	FUZZ_CHECK(u != -1);
	FUZZ_CHECK(bind(u, (struct sockaddr *)&unix_addr, unix_addrlen) == 0);
	FUZZ_CHECK(listen(u, 16) == 0);
	FUZZ_CHECK(smtp_server_listen_fd(srv, u, "fuzz.sock", err,
	    sizeof(err)) == 0);

	memset(&tcp_addr, 0, sizeof(tcp_addr));
	tcp_addr.sin_family = AF_INET;
	tcp_addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	t = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	FUZZ_CHECK(t != -1);
	FUZZ_CHECK(bind(t, (struct sockaddr *)&tcp_addr, sizeof(tcp_addr)) ==
	    0);
	FUZZ_CHECK(getsockname(t, (struct sockaddr *)&tcp_addr, &len) == 0);
	FUZZ_CHECK(listen(t, 16) == 0);
	FUZZ_CHECK(smtp_server_listen_fd(srv, t, "127.0.0.1", err,
	    sizeof(err)) == 0);
}

static void
init(void)
{
	struct smtp_server_config c;

	FUZZ_CHECK((base = event_base_new()) != NULL);
	spool = fuzz_spool_open(base, spool_dir, sizeof(spool_dir));
	rewriting = fuzz_cleanup_new(1);
	plain = fuzz_cleanup_new(0);
	configure(0, 0, &c);
	srv = smtp_server_new(base, spool, &c, on_accepted, NULL);
	listen_both();
	if ((replies = malloc(MAX_REPLIES)) == NULL)
		abort();
}

/* A connected, non-blocking client socket. */
static int
client_connect(int tcp)
{
	int fd = socket(tcp ? AF_INET : AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC,
	    0);

	FUZZ_CHECK(fd != -1);
	if (tcp)
		FUZZ_CHECK(connect(fd, (struct sockaddr *)&tcp_addr,
		    sizeof(tcp_addr)) == 0);
	else
		FUZZ_CHECK(connect(fd, (struct sockaddr *)&unix_addr,
		    unix_addrlen) == 0);
	FUZZ_CHECK(fcntl(fd, F_SETFL, O_NONBLOCK) == 0);
	return fd;
}

/* Read what the server sent; 1 if anything came (or the end, once). */
static int
client_read(int fd)
{
	char buf[16384];
	ssize_t n;
	int got = 0;

	if (peer_closed)
		return 0;
	while ((n = read(fd, buf, sizeof(buf))) > 0) {
		got = 1;
		if ((size_t)n > MAX_REPLIES - nreplies)
			n = (ssize_t)(MAX_REPLIES - nreplies);
		memcpy(replies + nreplies, buf, (size_t)n);
		nreplies += (size_t)n;
	}
	if (n == 0 || errno != EAGAIN) {
		peer_closed = 1;	/* closed, or reset: the server left */
		return 1;
	}
	return got;
}

/* Bytes sent and not yet read by the server. */
static int
unread(int fd)
{
	int n = 0;

	if (ioctl(fd, SIOCOUTQ, &n) == -1)
		return 0;
	return n;
}

/*
 * Run the loop until nothing more happens without the client: the
 * server read everything (or stopped reading), no spool job is left.
 * A client that reads lazily reads only once the server is idle.
 * Returns 1 if anything happened.
 */
static int
pump(int fd, int lazy)
{
	int still = 0, before = unread(fd), moved = 0;

	while (still < STILL_PASSES) {
		int now, got = 0;

		if (spool_pending(spool) > 0)
			event_base_loop(base, EVLOOP_ONCE);
		else
			event_base_loop(base, EVLOOP_NONBLOCK);
		if (!lazy)
			got = client_read(fd);
		now = unread(fd);
		if (got || now != before || spool_pending(spool) > 0)
			still = 0, moved = 1;
		else if (++still == STILL_PASSES && lazy) {
			/* Idle: the lazy client reads now, once. */
			lazy = 0;
			if (client_read(fd))
				still = 0, moved = 1;
		}
		before = now;
	}
	return moved;
}

/*
 * Send buf in full, running the loop whenever the socket is full.  A
 * server that stops reading for good while the session lives (and the
 * client reads its replies) would hold the connection until a timeout:
 * that is a failure.
 */
static void
client_send(int fd, const uint8_t *buf, size_t len, int lazy)
{
	while (len > 0 && !peer_closed) {
		ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);

		if (n > 0) {
			buf += n;
			len -= (size_t)n;
			continue;
		}
		if (errno != EAGAIN) {
			peer_closed = 1;	/* the server left */
			return;
		}
		if (!pump(fd, lazy) && !pump(fd, 0) && !peer_closed) {
			fprintf(stderr, "fuzz: the server stopped reading "
			    "(%d bytes unread, %zu session)\n", unread(fd),
			    smtp_server_session_count(srv));
			FUZZ_CHECK(!"the server stopped reading for good");
		}
	}
}

/*
 * The client goes away abruptly: a reset, whatever is unread on either
 * side.  The loop runs until the server noticed and nothing is pending.
 */
static void
client_reset(int fd)
{
	struct linger lg = { 1, 0 };
	int still = 0;

	setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	close(fd);
	while (still < STILL_PASSES) {
		size_t before = smtp_server_session_count(srv);

		if (spool_pending(spool) > 0) {
			event_base_loop(base, EVLOOP_ONCE);
			still = 0;
			continue;
		}
		event_base_loop(base, EVLOOP_NONBLOCK);
		if (smtp_server_session_count(srv) != before)
			still = 0;
		else
			still++;
	}
}

/* A 16-bit xorshift for chunk sizes: the same input, the same chunks. */
static unsigned
next_chunk(unsigned *state, unsigned max)
{
	unsigned x = *state;

	x ^= x << 7;
	x ^= x >> 9;
	x ^= x << 8;
	*state = x & 0xffff ? x & 0xffff : 1;
	return 1 + *state % max;
}

static int
is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* Every reply line well formed; the queued ids were accepted. */
static void
check_replies(void)
{
	size_t off = 0, first = 1;

	if (getenv("FUZZ_LOG") != NULL)
		fprintf(stderr, "replies: %.*s\n", (int)nreplies, replies);
	while (off < nreplies) {
		const char *l = replies + off, *nl = memchr(l, '\n',
		    nreplies - off);
		size_t len;

		if (nl == NULL) {
			/* Only a reply cut at our buffer's end is partial. */
			FUZZ_CHECK(nreplies == MAX_REPLIES);
			break;
		}
		len = (size_t)(nl - l) + 1;
		FUZZ_CHECK(len >= 6 && len <= 512);
		FUZZ_CHECK(l[len - 2] == '\r');
		FUZZ_CHECK(memchr(l, '\r', len - 2) == NULL);
		FUZZ_CHECK(memchr(l, '\0', len) == NULL);
		FUZZ_CHECK(l[0] >= '2' && l[0] <= '5' && is_digit(l[1]) &&
		    is_digit(l[2]) && (l[3] == ' ' || l[3] == '-'));
		if (first)
			FUZZ_CHECK(memcmp(l, "220", 3) == 0 ||
			    memcmp(l, "421", 3) == 0 ||
			    memcmp(l, "554", 3) == 0);
		first = 0;
		if (len > 26 && memcmp(l, "250 2.0.0 Ok: queued as ", 24) ==
		    0) {
			size_t idlen = len - 26, i;

			for (i = 0; i < naccepted; i++)
				if (strlen(accepted[i]->id) == idlen &&
				    memcmp(accepted[i]->id, l + 24, idlen) == 0)
					break;
			FUZZ_CHECK(i < naccepted);
		}
		off += len;
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct smtp_server_config c;
	unsigned chunking, state;
	int fd, lazy;
	size_t off = 3;

	if (size < 3)
		return 0;
	if (base == NULL)
		init();
	configure(data[0], data[2], &c);
	smtp_server_configure(srv, &c);
	chunking = data[1];
	state = chunking | (unsigned)data[0] << 8 | 1;
	lazy = (data[2] & 2) != 0;
	nreplies = 0;
	peer_closed = 0;

	fd = client_connect((data[2] & 4) != 0);
	pump(fd, lazy);				/* accept, greeting */
	while (off < size && !peer_closed) {
		size_t n = size - off;

		if (chunking == 1)
			n = 1;
		else if (chunking > 1) {
			size_t want = next_chunk(&state, chunking);

			n = n < want ? n : want;
		}
		client_send(fd, data + off, n, lazy);
		off += n;
		pump(fd, lazy);
	}
	if (data[2] & 8)
		client_reset(fd);
	else {
		shutdown(fd, SHUT_WR);
		pump(fd, 0);
		client_read(fd);
		close(fd);
	}
	if (smtp_server_session_count(srv) != 0) {
		fprintf(stderr, "fuzz: the session outlives its client "
		    "(%zu left)\n", smtp_server_session_count(srv));
		FUZZ_CHECK(smtp_server_session_count(srv) == 0);
	}
	FUZZ_CHECK(spool_pending(spool) == 0);

	check_replies();
	for (size_t i = 0; i < naccepted; i++) {
		fuzz_check_message(spool, accepted[i], c.max_message_size,
		    c.max_recipients);
		spool_remove(spool, accepted[i]->id, NULL, NULL);
		spool_envelope_free(accepted[i]);
	}
	naccepted = 0;
	fuzz_spool_settle(base, spool);
	return 0;
}
