/* Probe a path: can the relay be reached on it right now? */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent.h"

/*
 * Probe: can the relay be reached on a path right now? A connect and the
 * relay's "SSH-" banner, no login, so the live session is not disturbed.
 */
struct probe {
	struct event_base *base;
	struct dial	*dial;
	int		 fd;
	struct event	*ev_rd;
	struct event	*ev_timeout;
	struct event	*ev_done;
	char		 buf[64];
	size_t		 len;
	int		 ok;
	char		 cause[256];
	probe_cb	 cb;
	void		*arg;
};

/* Free the probe; the owner has already been told or gave up. */
static void
probe_free(struct probe *p)
{
	if (p->dial != NULL)
		dial_cancel(p->dial);
	if (p->ev_rd != NULL)
		event_free(p->ev_rd);
	if (p->fd != -1)
		close(p->fd);
	event_free(p->ev_timeout);
	event_free(p->ev_done);
	free(p);
}

/* Report once, from the loop. */
static void
probe_report(struct probe *p, int ok, const char *cause)
{
	p->ok = ok;
	snprintf(p->cause, sizeof p->cause, "%s", cause ? cause : "");
	event_del(p->ev_timeout);
	if (p->ev_rd != NULL)
		event_del(p->ev_rd);
	event_active(p->ev_done, EV_TIMEOUT, 0);
}

/* Deferred: tell the owner, then free. */
static void
probe_done_cb(evutil_socket_t fd, short what, void *arg)
{
	struct probe *p = arg;

	p->cb(p, p->ok, p->cause, p->arg);
	probe_free(p);
}

/* No banner in time: the path carries SYNs but not data. */
static void
probe_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	probe_report(arg, 0, "no ssh banner from the relay in time");
}

/* Read until the banner's first bytes arrive. */
static void
probe_read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct probe *p = arg;
	ssize_t n;

	n = read(fd, p->buf + p->len, sizeof p->buf - 1 - p->len);
	if (n == -1 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		probe_report(p, 0, n == 0 ? "relay closed before its banner" :
		    strerror(errno));
		return;
	}
	p->len += (size_t)n;
	if (p->len >= 4) {
		if (!strncmp(p->buf, "SSH-", 4))
			probe_report(p, 1, NULL);
		else
			probe_report(p, 0, "not an ssh server");
	}
}

/* Connected (or not): wait for the banner. */
static void
probe_dialed(struct dial *d, int fd, const char *cause, void *arg)
{
	struct probe *p = arg;

	p->dial = NULL;
	if (fd == -1) {
		probe_report(p, 0, cause);
		return;
	}
	p->fd = fd;
	p->ev_rd = event_new(p->base, fd, EV_READ | EV_PERSIST,
	    probe_read_cb, p);
	if (p->ev_rd == NULL)
		fatalx("event_new");
	event_add(p->ev_rd, NULL);
}

/*
 * Start a probe of a target (its timeout for the connect, twice that for
 * the banner); cb(p, ok, cause, arg) once, from the loop, then it is freed.
 */
struct probe *
probe_start(const struct dial_target *t, probe_cb cb, void *arg)
{
	struct timeval tv = { 2 * t->timeout, 0 };
	struct probe *p;

	p = xcalloc(1, sizeof *p);
	p->base = t->base;
	p->fd = -1;
	p->cb = cb;
	p->arg = arg;
	p->ev_timeout = evtimer_new(t->base, probe_timeout_cb, p);
	p->ev_done = event_new(t->base, -1, 0, probe_done_cb, p);
	if (p->ev_timeout == NULL || p->ev_done == NULL)
		fatalx("event_new");
	evtimer_add(p->ev_timeout, &tv);
	p->dial = dial_start(t, probe_dialed, p);
	return p;
}

/* The owner no longer wants the answer. */
void
probe_cancel(struct probe *p)
{
	if (p != NULL)
		probe_free(p);
}
