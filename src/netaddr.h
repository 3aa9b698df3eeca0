/*
 * netaddr.h: IP networks and the "who may connect" predicate.
 */
#ifndef SESRELAY_NETADDR_H
#define SESRELAY_NETADDR_H

#include <sys/socket.h>

struct netaddr_net {
	int		family;		/* AF_INET or AF_INET6 */
	unsigned char	addr[16];
	int		prefix;
};

/* Parse "192.0.2.0/24", "2001:db8::/32" or a bare address; 0 or -1. */
int netaddr_parse_net(const char *s, struct netaddr_net *out);

/* 1 when sa is a loopback address (127/8, ::1, or v4-mapped 127/8). */
int netaddr_is_loopback(const struct sockaddr *sa);

/* 1 when sa lies in net (a v4-mapped v6 address matches v4 networks). */
int netaddr_in_net(const struct sockaddr *sa, const struct netaddr_net *net);

/* Format sa as "ADDR" (no port) into buf. */
const char *netaddr_str(const struct sockaddr *sa, char *buf, size_t len);

struct addrinfo;

/*
 * Look host up for a stream socket on port (0: none), with getaddrinfo:
 * flags AI_NUMERICHOST (never DNS), AI_PASSIVE (to bind) or 0 (DNS,
 * blocking: not for the event loop); family AF_UNSPEC, AF_INET or
 * AF_INET6.  0 with *res (freeaddrinfo it), or getaddrinfo's EAI_ code.
 */
int netaddr_lookup(const char *host, int port, int family, int flags,
    struct addrinfo **res);

/* 1 when host is a numeric address of family (AF_UNSPEC: either). */
int netaddr_is_numeric(const char *host, int family);

#endif
