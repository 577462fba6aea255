/* Drive one non-blocking libssh session from libevent readiness events. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <libssh/server.h>

#include "common.h"

#define SSHIO_MAX_PASSES	64	/* dopoll reads <= 4 KiB each */

/*
 * A channel we are done with but the peer is not: after our CLOSE (or while
 * our open is unanswered) it stays here so that nothing more is ever sent
 * on it (libssh would grow its window or answer its requests) and what
 * the peer still sends is counted against the window, until the peer's
 * CLOSE (or its answer to the open) lets libssh free it.
 */
struct sshio_grave {
	TAILQ_ENTRY(sshio_grave) entry;
	struct sshio	*io;
	ssh_channel	 ch;
	int		 opening;	/* our open is still unanswered */
	int		 closed;	/* the peer's CLOSE arrived */
	void		(*gone)(void *);	/* told when libssh frees it */
	void		*arg;
	struct ssh_channel_callbacks_struct cbs;
};

/* libevent callback: hand readiness to the owner. */
static void
sshio_event(evutil_socket_t fd, short what, void *arg)
{
	struct sshio *io = arg;

	io->cb(io->arg, what);
}

/* Watch fd for a session; reads are always watched, writes on demand. */
void
sshio_init(struct sshio *io, struct event_base *base, ssh_session s, int fd,
    void (*cb)(void *, short), void *arg)
{
	memset(io, 0, sizeof *io);
	TAILQ_INIT(&io->graves);
	io->base = base;
	io->s = s;
	io->fd = fd;
	io->cb = cb;
	io->arg = arg;
	io->ev_rd = event_new(base, fd, EV_READ | EV_PERSIST, sshio_event, io);
	io->ev_wr = event_new(base, fd, EV_WRITE, sshio_event, io);
	if (io->ev_rd == NULL || io->ev_wr == NULL)
		fatalx("event_new");
	event_add(io->ev_rd, NULL);
}

/* Once the handshake is done, packets are processed through an ssh_event. */
int
sshio_attach(struct sshio *io)
{
	if (io->sev != NULL)
		return 0;
	if ((io->sev = ssh_event_new()) == NULL)
		return -1;
	if (ssh_event_add_session(io->sev, io->s) != SSH_OK) {
		ssh_event_free(io->sev);
		io->sev = NULL;
		return -1;
	}
	return 0;
}

/* Is the session gone (peer closed, protocol error)? */
static int
sshio_dead(struct sshio *io)
{
	int st = ssh_get_status(io->s);

	return (st & (SSH_CLOSED | SSH_CLOSED_ERROR)) != 0 ||
	    !ssh_is_connected(io->s);
}

/*
 * Process what is readable, a bounded number of passes so one busy session
 * cannot starve the others. Returns -1 when the session is dead.
 */
int
sshio_poll(struct sshio *io)
{
	int i, rc;

	if (io->sev == NULL)
		return sshio_dead(io) ? -1 : 0;
	for (i = 0; i < SSHIO_MAX_PASSES; i++) {
		rc = ssh_event_dopoll(io->sev, 0);
		if (rc == SSH_ERROR || sshio_dead(io))
			return -1;
		if (rc == SSH_AGAIN)
			break;
	}
	net_nonblock(io->fd);
	return 0;
}

/* Does libssh hold output it could not send yet? */
int
sshio_write_pending(struct sshio *io)
{
	return (ssh_get_poll_flags(io->s) & SSH_WRITE_PENDING) != 0;
}

/* Push pending output; arm a write event for what the socket won't take. */
int
sshio_flush(struct sshio *io)
{
	if (io->s == NULL)
		return 0;
	if (sshio_write_pending(io)) {
		if (ssh_blocking_flush(io->s, 0) == SSH_ERROR)
			return -1;
		net_nonblock(io->fd);
	}
	if (sshio_write_pending(io))
		event_add(io->ev_wr, NULL);
	return 0;
}

/* Record the first rule the peer broke; the owner closes the session. */
void
sshio_violation(struct sshio *io, const char *fmt, ...)
{
	va_list ap;

	if (io->violation[0] != '\0')
		return;
	va_start(ap, fmt);
	vsnprintf(io->violation, sizeof io->violation, fmt, ap);
	va_end(ap);
}

/*
 * Was this channel closed by us (or never opened)? Requests on it must not
 * be answered: a CHANNEL_FAILURE after our CLOSE is a protocol error for
 * strict peers (Go's x/crypto/ssh, asyncssh, PuTTY).
 */
int
sshio_closed_channel(ssh_channel ch)
{
	return ch == NULL || !ssh_channel_is_open(ch);
}

/* Data on a buried channel: never consumed (no window growth), counted. */
static int
sshio_grave_data(ssh_session s, ssh_channel ch, void *data, uint32_t len,
    int is_stderr, void *arg)
{
	struct sshio_grave *g = arg;

	if (len > SSHIO_CHANNEL_MAX)
		sshio_violation(g->io, "peer sent %u bytes past the window of "
		    "a closed channel", len - SSHIO_CHANNEL_MAX);
	return 0;
}

/* The peer's CLOSE: the channel can go (freed at the next sweep). */
static void
sshio_grave_close(ssh_session s, ssh_channel ch, void *arg)
{
	struct sshio_grave *g = arg;

	g->closed = 1;
}

/* Remove our callbacks, let libssh free the channel, tell the owner. */
static void
sshio_grave_free(struct sshio *io, struct sshio_grave *g)
{
	TAILQ_REMOVE(&io->graves, g, entry);
	io->ngraves--;
	ssh_remove_channel_callbacks(g->ch, &g->cbs);
	ssh_channel_free(g->ch);
	if (g->gone != NULL)
		g->gone(g->arg);
	free(g);
}

/*
 * Grow an open channel's window to libssh's full size now: a zero-timeout
 * read of more than the window holds makes libssh send WINDOW_ADJUST, and
 * leaves window + buffered >= WINDOWLIMIT, below which libssh would grow
 * it again when data arrives. Done when a channel opens and before our
 * CLOSE (a WINDOW_ADJUST after CLOSE is a protocol error for strict
 * peers). What the read returns goes to sink, or is dropped.
 */
void
sshio_prime(ssh_channel ch, struct evbuffer *sink)
{
	static char buf[SSHIO_PRIME_LEN];
	int n;

	n = ssh_channel_read_timeout(ch, buf, sizeof buf, 0, 0);
	if (n > 0 && sink != NULL)
		evbuffer_add(sink, buf, (size_t)n);
}

/* Send our CLOSE on an open channel, its window grown first. */
static void
sshio_grave_close_now(struct sshio_grave *g)
{
	g->opening = 0;
	sshio_prime(g->ch, NULL);
	ssh_channel_close(g->ch);
}

/*
 * Hand over a channel the owner is finished with (its callbacks already
 * removed). peer_closed: the peer's CLOSE was seen. An open channel gets
 * EOF + CLOSE and waits for the peer's CLOSE; a channel whose open is
 * unanswered waits for the answer, then is closed; anything else is freed
 * at once (libssh replies to a peer's CLOSE as it frees). gone(arg), when
 * given, is called once libssh has freed the channel (maybe at once):
 * until then it holds buffers and counts against the owner's limits.
 */
void
sshio_bury(struct sshio *io, ssh_channel ch, int peer_closed,
    void (*gone)(void *), void *arg)
{
	struct sshio_grave *g;
	int opening = 0;

	if (ch == NULL)
		goto gone;
	if (peer_closed || io->s == NULL || io->cleared ||
	    !ssh_is_connected(io->s)) {
		ssh_channel_free(ch);
		goto gone;
	}
	if (!ssh_channel_is_open(ch)) {
		/* NOT_OPEN/DENIED/CLOSED answer an error; OPENING: AGAIN */
		if (ssh_channel_open_reverse_forward(ch, "", 0, "", 0) !=
		    SSH_AGAIN) {
			if (!ssh_channel_is_open(ch)) {
				ssh_channel_free(ch);
				goto gone;
			}
		} else
			opening = 1;
	}
	g = xcalloc(1, sizeof *g);
	g->io = io;
	g->ch = ch;
	g->opening = opening;
	g->gone = gone;
	g->arg = arg;
	g->cbs.userdata = g;
	g->cbs.channel_data_function = sshio_grave_data;
	g->cbs.channel_close_function = sshio_grave_close;
	ssh_callbacks_init(&g->cbs);
	ssh_set_channel_callbacks(ch, &g->cbs);
	TAILQ_INSERT_TAIL(&io->graves, g, entry);
	if (++io->ngraves > io->max_graves && io->max_graves > 0)
		sshio_violation(io, "more than %u channels not closed by the "
		    "peer", io->max_graves);
	if (!opening)
		sshio_grave_close_now(g);
	return;
gone:
	if (gone != NULL)
		gone(arg);
}

/*
 * After each pass over the session: free channels the peer has closed,
 * close those whose open was answered late, drop those it refused. One
 * walk over the list, nothing re-queued.
 */
void
sshio_sweep(struct sshio *io)
{
	struct sshio_grave *g, *tmp;
	int rc;

	TAILQ_FOREACH_SAFE(g, &io->graves, entry, tmp) {
		if (g->closed) {
			sshio_grave_free(io, g);
			continue;
		}
		if (!g->opening)
			continue;
		/* an open channel is a late confirmation: close it now */
		if (ssh_channel_is_open(g->ch)) {
			sshio_grave_close_now(g);
			continue;
		}
		rc = ssh_channel_open_reverse_forward(g->ch, "", 0, "", 0);
		if (rc == SSH_AGAIN)
			continue;
		if (rc == SSH_OK)
			sshio_grave_close_now(g);
		else
			sshio_grave_free(io, g);
	}
}

/*
 * Stop watching and free the events and the buried channels; channels
 * handed over afterwards are freed at once. The session is the owner's.
 */
void
sshio_clear(struct sshio *io)
{
	struct sshio_grave *g;

	io->cleared = 1;
	while ((g = TAILQ_FIRST(&io->graves)) != NULL)
		sshio_grave_free(io, g);
	if (io->ev_rd != NULL)
		event_free(io->ev_rd);
	if (io->ev_wr != NULL)
		event_free(io->ev_wr);
	io->ev_rd = io->ev_wr = NULL;
	if (io->sev != NULL) {
		ssh_event_remove_session(io->sev, io->s);
		ssh_event_free(io->sev);
		io->sev = NULL;
	}
}
