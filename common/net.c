/* Socket helpers shared by both daemons. */
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>

#include <event2/listener.h>
#include <time.h>

#include "common.h"

/* O_NONBLOCK on; libssh turns it off behind our back, so it is re-applied. */
int
net_nonblock(int fd)
{
	int fl;

	if ((fl = fcntl(fd, F_GETFL)) == -1)
		return -1;
	if (fl & O_NONBLOCK)
		return 0;
	return fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

/* Numeric address (IPv4-mapped IPv6 shown as IPv4) and port of a sockaddr. */
int
net_addrstr(const struct sockaddr *sa, char *buf, size_t len, int *port)
{
	const struct sockaddr_in6 *s6;
	const struct sockaddr_in *s4;

	if (sa->sa_family == AF_INET) {
		s4 = (const struct sockaddr_in *)sa;
		if (inet_ntop(AF_INET, &s4->sin_addr, buf, len) == NULL)
			return -1;
		if (port)
			*port = ntohs(s4->sin_port);
		return 0;
	}
	if (sa->sa_family == AF_INET6) {
		s6 = (const struct sockaddr_in6 *)sa;
		if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
			if (inet_ntop(AF_INET, &s6->sin6_addr.s6_addr[12],
			    buf, len) == NULL)
				return -1;
		} else if (inet_ntop(AF_INET6, &s6->sin6_addr, buf, len) ==
		    NULL)
			return -1;
		if (port)
			*port = ntohs(s6->sin6_port);
		return 0;
	}
	snprintf(buf, len, "unknown");
	if (port)
		*port = 0;
	return -1;
}

/* Bound how long unacknowledged data may keep a dead peer's socket open. */
void
net_user_timeout(int fd, unsigned int ms)
{
	if (setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &ms, sizeof ms) ==
	    -1)
		log_warn("setsockopt TCP_USER_TIMEOUT");
}

/*
 * TCP keepalive probes on an idle connection: the first after idle s of
 * silence from the peer, then one every idle s, the connection dropped by
 * the kernel when count of them go unanswered (with TCP_USER_TIMEOUT set,
 * when that has passed since the last ACK). A probe and its ACK are two
 * bare segments, a third of an SSH keepalive's bytes. -1 if refused.
 */
int
net_tcp_probes(int fd, unsigned int idle, unsigned int count)
{
	int one = 1, i = (int)idle, c = (int)(count > 0 ? count : 1);

	if (setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one) == -1 ||
	    setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &i, sizeof i) == -1 ||
	    setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &i, sizeof i) == -1 ||
	    setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &c, sizeof c) == -1)
		return -1;
	return 0;
}

/* Low latency for interactive ssh through the tunnel. */
void
net_keepalive(int fd)
{
	int one = 1;

	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

/* Numeric listen address (NULL or "*" = any IPv4) to a sockaddr. */
int
net_resolve_listen(const char *host, uint16_t port,
    struct sockaddr_storage *ss, socklen_t *sslen, const char **why)
{
	struct addrinfo hints, *res;
	char pbuf[8];
	int rc;

	memset(&hints, 0, sizeof hints);
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV;
	snprintf(pbuf, sizeof pbuf, "%u", port);
	if (host != NULL && (!strcmp(host, "*") || *host == '\0'))
		host = NULL;
	if (host != NULL && !strcmp(host, "localhost"))
		host = "127.0.0.1";
	if ((rc = getaddrinfo(host, pbuf, &hints, &res)) != 0) {
		*why = "not a numeric IP address";
		return -1;
	}
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	*sslen = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

#define ACCEPT_PAUSE_MS	500	/* back-off after EMFILE/ENFILE */

/* Resume accepting after the back-off (or let the owner decide). */
static void
accept_pause_resume(evutil_socket_t fd, short what, void *arg)
{
	struct accept_pause *ap = arg;

	ap->paused = 0;
	if (ap->resume != NULL)
		ap->resume(ap->arg);
	else
		evconnlistener_enable(ap->evl);
}

/* Watch one listener; resume == NULL re-enables it after a back-off. */
void
accept_pause_init(struct accept_pause *ap, struct event_base *base,
    struct evconnlistener *evl, void (*resume)(void *), void *arg)
{
	memset(ap, 0, sizeof *ap);
	ap->evl = evl;
	ap->resume = resume;
	ap->arg = arg;
	if ((ap->ev = evtimer_new(base, accept_pause_resume, ap)) == NULL)
		fatalx("evtimer_new");
}

/*
 * An accept failed. Out of descriptors or memory (EMFILE, ENFILE, ENOBUFS,
 * ENOMEM): the pending connection stays in the backlog and the socket stays
 * readable, so accepting on would spin; stop for a short back-off instead.
 * One log line per second at most, for every listener of the process.
 */
void
accept_pause_error(struct accept_pause *ap, const char *what)
{
	static struct timespec last;
	static unsigned long suppressed;
	struct timeval tv = { 0, ACCEPT_PAUSE_MS * 1000 };
	struct timespec now;
	int err = errno;

	if (err == EAGAIN || err == EWOULDBLOCK || err == EINTR ||
	    err == ECONNABORTED)
		return;
	clock_gettime(CLOCK_MONOTONIC, &now);
	if (now.tv_sec - last.tv_sec >= 1 || last.tv_sec == 0) {
		if (suppressed > 0)
			log_warnx("accept on %s: %s; accepting paused for %d "
			    "ms (%lu more accept errors in the last second)",
			    what, strerror(err), ACCEPT_PAUSE_MS, suppressed);
		else
			log_warnx("accept on %s: %s; accepting paused for %d "
			    "ms", what, strerror(err), ACCEPT_PAUSE_MS);
		last = now;
		suppressed = 0;
	} else
		suppressed++;
	if (err != EMFILE && err != ENFILE && err != ENOBUFS && err != ENOMEM)
		return;
	ap->paused = 1;
	evconnlistener_disable(ap->evl);
	evtimer_add(ap->ev, &tv);
}

/* Free the back-off timer (the listener is the owner's). */
void
accept_pause_clear(struct accept_pause *ap)
{
	if (ap->ev != NULL)
		event_free(ap->ev);
	ap->ev = NULL;
}

/*
 * Is a forward's bind address a name (a named forward, `ssh -R
 * pi-01:22:...`)? Not an IP address and not "", "*" or "localhost".
 */
int
net_addr_is_name(const char *addr)
{
	unsigned char buf[sizeof(struct in6_addr)];

	if (addr == NULL || *addr == '\0' || !strcmp(addr, "*") ||
	    !strcasecmp(addr, "localhost"))
		return 0;
	return inet_pton(AF_INET, addr, buf) != 1 &&
	    inet_pton(AF_INET6, addr, buf) != 1;
}
