/* Reaching the relay on one path: async DNS, bound socket, connect deadline. */
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/dns.h>
#include <event2/util.h>

#include "agent.h"

struct dial {
	struct event_base *base;
	struct path	*path;
	char		*host;
	uint16_t	 port;
	unsigned int	 timeout;
	struct evdns_getaddrinfo_request *req;
	int		 resolving;
	struct evutil_addrinfo *ai;
	struct evutil_addrinfo *cur;
	int		 fd;
	int		 result;
	struct event	*ev_conn;
	struct event	*ev_timeout;
	struct event	*ev_done;
	dial_cb		 cb;
	void		*arg;
	char		 cause[256];
	char		 peer[INET6_ADDRSTRLEN + 8];
};

static void dial_try(struct dial *);

/* Release everything but a socket already handed to the owner. */
static void
dial_free(struct dial *d)
{
	if (d->req != NULL) {
		evdns_getaddrinfo_cancel(d->req);
		d->req = NULL;
	}
	if (d->ai != NULL)
		evutil_freeaddrinfo(d->ai);
	if (d->fd != -1)
		close(d->fd);
	if (d->ev_conn != NULL)
		event_free(d->ev_conn);
	event_free(d->ev_timeout);
	event_free(d->ev_done);
	free(d->host);
	free(d);
}

/* Report from the loop, never from inside dial_start or a DNS callback. */
static void
dial_report(struct dial *d, int fd, const char *cause)
{
	d->result = fd;
	if (cause != NULL)
		snprintf(d->cause, sizeof d->cause, "%s", cause);
	event_del(d->ev_timeout);
	if (d->ev_conn != NULL)
		event_del(d->ev_conn);
	event_active(d->ev_done, EV_TIMEOUT, 0);
}

/* Deferred report: the owner gets the socket (or -1 and why); we go. */
static void
dial_done_cb(evutil_socket_t fd, short what, void *arg)
{
	struct dial *d = arg;

	d->cb(d, d->result, d->cause, d->arg);
	dial_free(d);
}

/* The deadline covers DNS and every connect attempt. */
static void
dial_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	struct dial *d = arg;
	char why[256];

	if (d->resolving)
		snprintf(why, sizeof why, "resolving %s timed out after %u s",
		    d->host, d->timeout);
	else
		snprintf(why, sizeof why, "connect to %s timed out after %u s",
		    d->peer, d->timeout);
	if (d->fd != -1) {
		close(d->fd);
		d->fd = -1;
	}
	if (d->req != NULL) {
		evdns_getaddrinfo_cancel(d->req);
		d->req = NULL;
	}
	d->resolving = 0;
	dial_report(d, -1, why);
}

/* Non-blocking connect finished: success hands the socket over. */
static void
dial_conn_cb(evutil_socket_t fd, short what, void *arg)
{
	struct dial *d = arg;
	socklen_t len = sizeof(int);
	int err = 0;

	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1)
		err = errno;
	if (err == 0) {
		d->fd = -1;
		dial_report(d, fd, NULL);
		return;
	}
	snprintf(d->cause, sizeof d->cause, "connect to %s: %s", d->peer,
	    strerror(err));
	close(d->fd);
	d->fd = -1;
	event_free(d->ev_conn);
	d->ev_conn = NULL;
	d->cur = d->cur->ai_next;
	dial_try(d);
}

/* A socket pinned to the path: SO_BINDTODEVICE and/or the source address. */
static int
dial_socket(struct dial *d, struct evutil_addrinfo *ai)
{
	struct path *p = d->path;
	struct addrinfo hints, *src;
	int fd;

	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0);
	if (fd == -1) {
		snprintf(d->cause, sizeof d->cause, "socket: %s",
		    strerror(errno));
		return -1;
	}
	if (p != NULL && p->interface != NULL &&
	    setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, p->interface,
	    (socklen_t)strlen(p->interface) + 1) == -1) {
		snprintf(d->cause, sizeof d->cause, "interface %s: %s",
		    p->interface, strerror(errno));
		close(fd);
		return -1;
	}
	if (p != NULL && p->source != NULL) {
		memset(&hints, 0, sizeof hints);
		hints.ai_family = ai->ai_family;
		hints.ai_socktype = SOCK_STREAM;
		hints.ai_flags = AI_NUMERICHOST | AI_PASSIVE;
		if (getaddrinfo(p->source, NULL, &hints, &src) != 0) {
			snprintf(d->cause, sizeof d->cause, "source %s does "
			    "not match the relay's address family", p->source);
			close(fd);
			return -1;
		}
		if (bind(fd, src->ai_addr, src->ai_addrlen) == -1) {
			snprintf(d->cause, sizeof d->cause, "bind to source "
			    "%s: %s", p->source, strerror(errno));
			freeaddrinfo(src);
			close(fd);
			return -1;
		}
		freeaddrinfo(src);
	}
	return fd;
}

/* Connect to the current address; on immediate failure try the next. */
static void
dial_try(struct dial *d)
{
	char addr[INET6_ADDRSTRLEN];
	int port;

	for (; d->cur != NULL; d->cur = d->cur->ai_next) {
		if (net_addrstr(d->cur->ai_addr, addr, sizeof addr, &port) ==
		    -1)
			continue;
		if (d->cur->ai_family == AF_INET6)
			snprintf(d->peer, sizeof d->peer, "[%s]:%d", addr,
			    port);
		else
			snprintf(d->peer, sizeof d->peer, "%s:%d", addr, port);
		if ((d->fd = dial_socket(d, d->cur)) == -1)
			continue;
		if (connect(d->fd, d->cur->ai_addr, d->cur->ai_addrlen) == 0) {
			int fd = d->fd;

			d->fd = -1;
			dial_report(d, fd, NULL);
			return;
		}
		if (errno == EINPROGRESS) {
			d->ev_conn = event_new(d->base, d->fd, EV_WRITE,
			    dial_conn_cb, d);
			if (d->ev_conn == NULL)
				fatalx("event_new");
			event_add(d->ev_conn, NULL);
			return;
		}
		snprintf(d->cause, sizeof d->cause, "connect to %s: %s",
		    d->peer, strerror(errno));
		close(d->fd);
		d->fd = -1;
	}
	dial_report(d, -1, NULL);
}

/* evdns answer (possibly synchronous, for numeric hosts). */
static void
dial_resolved(int result, struct evutil_addrinfo *res, void *arg)
{
	struct dial *d = arg;

	if (result == EVUTIL_EAI_CANCEL)
		return;
	d->req = NULL;
	d->resolving = 0;
	if (result != 0) {
		snprintf(d->cause, sizeof d->cause, "resolving %s: %s",
		    d->host, evutil_gai_strerror(result));
		dial_report(d, -1, NULL);
		return;
	}
	d->ai = res;
	d->cur = res;
	snprintf(d->cause, sizeof d->cause, "%s: no usable address", d->host);
	dial_try(d);
}

/*
 * Resolve the target's relay host off the loop's critical path and connect
 * a socket bound to its path; cb(d, fd or -1, cause, arg) runs once from
 * the loop, after which the dial is gone.
 */
struct dial *
dial_start(const struct dial_target *t, dial_cb cb, void *arg)
{
	struct path *p = t->path;
	unsigned int timeout = t->timeout;
	struct evutil_addrinfo hints;
	struct evdns_getaddrinfo_request *req;
	struct timeval tv = { timeout, 0 };
	struct dial *d;
	char pbuf[8];

	d = xcalloc(1, sizeof *d);
	d->base = t->base;
	d->path = p;
	d->host = xstrdup(t->host);
	d->port = t->port;
	d->timeout = timeout;
	d->fd = -1;
	d->result = -1;
	d->cb = cb;
	d->arg = arg;
	snprintf(d->peer, sizeof d->peer, "%s:%u", d->host, d->port);
	d->ev_timeout = evtimer_new(t->base, dial_timeout_cb, d);
	d->ev_done = event_new(t->base, -1, 0, dial_done_cb, d);
	if (d->ev_timeout == NULL || d->ev_done == NULL)
		fatalx("event_new");
	evtimer_add(d->ev_timeout, &tv);
	memset(&hints, 0, sizeof hints);
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_protocol = IPPROTO_TCP;
	if (p != NULL && p->source != NULL)
		hints.ai_family = strchr(p->source, ':') ? AF_INET6 : AF_INET;
	snprintf(pbuf, sizeof pbuf, "%u", d->port);
	d->resolving = 1;
	req = evdns_getaddrinfo(t->dns, d->host, pbuf, &hints, dial_resolved,
	    d);
	if (d->resolving)
		d->req = req;
	return d;
}

/* The owner gives up (session closed, path change): no callback follows. */
void
dial_cancel(struct dial *d)
{
	if (d != NULL)
		dial_free(d);
}

/* "address:port" being tried, for logs. */
const char *
dial_peer(struct dial *d)
{
	return d->peer;
}
