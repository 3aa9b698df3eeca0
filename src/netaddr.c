/*
 * netaddr.c: parsing networks and matching client addresses, and the
 * one getaddrinfo call (netaddr_lookup) of the synchronous code.
 *
 * Pure functions but the lookup; used by the config checks and by the
 * SMTP server to decide whether a TCP client may talk to us at all.  The
 * upstream pool resolves asynchronously (evdns), elsewhere.
 */
#include "config.h"

#include <netinet/in.h>
#include <arpa/inet.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "netaddr.h"

int
netaddr_parse_net(const char *s, struct netaddr_net *out)
{
	char buf[64];
	const char *slash = strchr(s, '/');
	size_t len = slash ? (size_t)(slash - s) : strlen(s);
	int max;

	if (len == 0 || len >= sizeof(buf))
		return -1;
	memcpy(buf, s, len);
	buf[len] = '\0';
	memset(out, 0, sizeof(*out));
	if (inet_pton(AF_INET, buf, out->addr) == 1) {
		out->family = AF_INET;
		max = 32;
	} else if (inet_pton(AF_INET6, buf, out->addr) == 1) {
		out->family = AF_INET6;
		max = 128;
	} else
		return -1;
	out->prefix = max;
	if (slash != NULL) {
		char *end;
		long p;

		if (slash[1] < '0' || slash[1] > '9')
			return -1;
		p = strtol(slash + 1, &end, 10);
		if (*end != '\0' || p < 0 || p > max)
			return -1;
		out->prefix = (int)p;
	}
	return 0;
}

/* Reduce sa to (family, 4 or 16 bytes), unwrapping v4-mapped v6. */
static int
raw_addr(const struct sockaddr *sa, unsigned char *out)
{
	if (sa->sa_family == AF_INET) {
		memcpy(out, &((const struct sockaddr_in *)sa)->sin_addr, 4);
		return AF_INET;
	}
	if (sa->sa_family == AF_INET6) {
		const struct in6_addr *a =
		    &((const struct sockaddr_in6 *)sa)->sin6_addr;
		if (IN6_IS_ADDR_V4MAPPED(a)) {
			memcpy(out, &a->s6_addr[12], 4);
			return AF_INET;
		}
		memcpy(out, a->s6_addr, 16);
		return AF_INET6;
	}
	return -1;
}

int
netaddr_in_net(const struct sockaddr *sa, const struct netaddr_net *net)
{
	unsigned char a[16];
	int bits = net->prefix, i;

	if (raw_addr(sa, a) != net->family)
		return 0;
	for (i = 0; bits >= 8; i++, bits -= 8)
		if (a[i] != net->addr[i])
			return 0;
	if (bits > 0) {
		unsigned char mask = (unsigned char)(0xff << (8 - bits));
		if ((a[i] & mask) != (net->addr[i] & mask))
			return 0;
	}
	return 1;
}

int
netaddr_is_loopback(const struct sockaddr *sa)
{
	static const unsigned char v6lo[16] = { [15] = 1 };
	unsigned char a[16];

	switch (raw_addr(sa, a)) {
	case AF_INET:
		return a[0] == 127;
	case AF_INET6:
		return memcmp(a, v6lo, 16) == 0;
	}
	return 0;
}

const char *
netaddr_str(const struct sockaddr *sa, char *buf, size_t len)
{
	const void *a;

	switch (sa->sa_family) {
	case AF_INET:
		a = &((const struct sockaddr_in *)sa)->sin_addr;
		break;
	case AF_INET6:
		a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
		break;
	case AF_UNIX:
		snprintf(buf, len, "unix");
		return buf;
	default:
		snprintf(buf, len, "?");
		return buf;
	}
	if (inet_ntop(sa->sa_family, a, buf, len) == NULL)
		snprintf(buf, len, "?");
	return buf;
}

int
netaddr_lookup(const char *host, int port, int family, int flags,
    struct addrinfo **res)
{
	struct addrinfo hints;
	char serv[8];

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = family;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = flags | (port > 0 ? AI_NUMERICSERV : 0);
	snprintf(serv, sizeof(serv), "%d", port);
	return getaddrinfo(host, port > 0 ? serv : NULL, &hints, res);
}

int
netaddr_is_numeric(const char *host, int family)
{
	struct addrinfo *res;

	if (netaddr_lookup(host, 0, family, AI_NUMERICHOST, &res) != 0)
		return 0;
	freeaddrinfo(res);
	return 1;
}
