/* The flow-controlled byte pump between a TCP socket and an SSH channel. */
#include <sys/socket.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>

#include "common.h"

#define PUMP_OUTMAX	(256 * 1024)	/* channel -> fd bytes we hold */
#define PUMP_CHUNK	(32 * 1024)

static void pump_try_close(struct pump *);

/* Mark the pump finished; the owner is told from the loop, not from here. */
void
pump_close(struct pump *p, const char *why)
{
	if (p->dead)
		return;
	p->dead = 1;
	p->why = why;
	event_del(p->ev_rd);
	event_del(p->ev_wr);
	event_active(p->ev_done, EV_TIMEOUT, 0);
}

/* Deferred teardown: runs at the top of the loop, outside libssh. */
static void
pump_done_cb(evutil_socket_t fd, short what, void *arg)
{
	struct pump *p = arg;

	p->done(p, p->owner);
}

/* Write what we hold to the socket; shut it for writing after EOF. */
static void
pump_write(struct pump *p)
{
	int n;

	while (evbuffer_get_length(p->out) > 0) {
		n = evbuffer_write(p->out, p->fd);
		if (n > 0) {
			p->bytes_out += (uint64_t)n;
			continue;
		}
		if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK ||
		    errno == EINTR)) {
			event_add(p->ev_wr, NULL);
			return;
		}
		pump_close(p, "connection write failed");
		return;
	}
	/*
	 * All written, but libssh still holds data for us (it calls back only
	 * when more arrives, and at the end of a stream none does): come back
	 * from the loop, the socket being writable, to refill.
	 */
	if (p->ssh_rest > 0)
		event_add(p->ev_wr, NULL);
	else if (p->ch_eof)
		shutdown(p->fd, SHUT_WR);
}

/*
 * Pull everything libssh kept for us (our buffer was full) into our
 * buffer, once ours is empty. All of it, not just what fits: every read
 * that leaves data behind lets libssh grow the window again, so partial
 * reads would let a fast peer and a slow reader grow the buffer without
 * bound. What libssh holds is bounded by SSHIO_CHANNEL_MAX.
 */
static void
pump_refill(struct pump *p)
{
	char buf[PUMP_CHUNK];
	int n;

	while (!p->dead && p->ssh_rest > 0) {
		n = ssh_channel_read_timeout(p->ch, buf, sizeof buf, 0, 0);
		if (n <= 0) {
			p->ssh_rest = 0;
			break;
		}
		evbuffer_add(p->out, buf, (size_t)n);
		p->ssh_rest -= (size_t)n < p->ssh_rest ? (size_t)n :
		    p->ssh_rest;
	}
}

/*
 * Once the channel is open, take libssh's window to its full size at once
 * (sshio_prime), so the bytes in flight are bounded from the start; the
 * read also takes any data that came with the confirmation.
 */
static void
pump_prime(struct pump *p)
{
	p->primed = 1;
	sshio_prime(p->ch, p->out);
}

/* Channel data: take what fits; the rest stays in libssh (window shut). */
static int
pump_ch_data(ssh_session s, ssh_channel ch, void *data, uint32_t len,
    int is_stderr, void *arg)
{
	struct pump *p = arg;
	size_t space, n;

	if (len > SSHIO_CHANNEL_MAX) {
		sshio_violation(p->io, "peer sent %u bytes past the channel "
		    "window", len - SSHIO_CHANNEL_MAX);
		pump_close(p, "peer overran the channel window");
		return 0;
	}
	if (!p->primed && !ssh_channel_is_open(ch)) {
		sshio_violation(p->io, "peer sent data on a channel it had "
		    "not confirmed");
		pump_close(p, "data on an unconfirmed channel");
		return 0;
	}
	if (p->dead)
		return 0;	/* not consumed: the window stays as it is */
	if (is_stderr)
		return (int)len;
	space = PUMP_OUTMAX - evbuffer_get_length(p->out);
	if (evbuffer_get_length(p->out) >= PUMP_OUTMAX)
		space = 0;
	n = len < space ? len : space;
	if (n > 0)
		evbuffer_add(p->out, data, n);
	p->ssh_rest = len - n;
	pump_write(p);
	return (int)n;
}

/* Channel EOF: once all its data is written, half-close the socket. */
static void
pump_ch_eof(ssh_session s, ssh_channel ch, void *arg)
{
	struct pump *p = arg;

	if (!p->primed && !ssh_channel_is_open(ch)) {
		sshio_violation(p->io, "peer sent EOF on a channel it had not "
		    "confirmed");
		pump_close(p, "EOF on an unconfirmed channel");
		return;
	}
	p->ch_eof = 1;
	if (evbuffer_get_length(p->out) == 0 && p->ssh_rest == 0)
		shutdown(p->fd, SHUT_WR);
	pump_try_close(p);
}

/* Channel closed by the peer: finish writing what we have, then go. */
static void
pump_ch_close(ssh_session s, ssh_channel ch, void *arg)
{
	struct pump *p = arg;

	p->ch_eof = 1;
	p->ch_closed = 1;
	pump_try_close(p);
}

/* Both directions finished (or peer closed and we flushed): close. */
static void
pump_try_close(struct pump *p)
{
	if (p->dead)
		return;
	if (p->ch_closed && evbuffer_get_length(p->out) == 0 &&
	    p->ssh_rest == 0) {
		pump_close(p, "closed by ssh peer");
		return;
	}
	if (p->fd_eof && p->ch_eof && evbuffer_get_length(p->out) == 0 &&
	    p->ssh_rest == 0 && evbuffer_get_length(p->in) == 0)
		pump_close(p, "closed");
}

/* Send what the channel window allows from our small leftover buffer. */
static int
pump_send(struct pump *p)
{
	unsigned char *data;
	size_t len;
	uint32_t win;
	int n;

	while ((len = evbuffer_get_length(p->in)) > 0) {
		win = ssh_channel_window_size(p->ch);
		if (win == 0)
			return 0;
		if (len > win)
			len = win;
		if (len > PUMP_CHUNK)
			len = PUMP_CHUNK;
		data = evbuffer_pullup(p->in, (ssize_t)len);
		n = ssh_channel_write(p->ch, data, (uint32_t)len);
		if (n == SSH_ERROR) {
			pump_close(p, "channel write failed");
			return -1;
		}
		if (n == 0)
			return 0;
		evbuffer_drain(p->in, (size_t)n);
		p->bytes_in += (uint64_t)n;
	}
	if (p->fd_eof && !p->dead) {
		if (ssh_channel_is_open(p->ch) && !ssh_channel_is_eof(p->ch))
			ssh_channel_send_eof(p->ch);
		pump_try_close(p);
	}
	return 0;
}

/* May the socket be read now? Window open, nothing queued, session idle. */
static int
pump_can_read(struct pump *p)
{
	return !p->dead && !p->fd_eof && evbuffer_get_length(p->in) == 0 &&
	    ssh_channel_window_size(p->ch) > 0 && !sshio_write_pending(p->io);
}

/*
 * The socket is not read while the session holds unsent output; the
 * session's pass after that output drained kicks the pump again. Make
 * sure that pass comes: its write event is armed (sshio_flush) whoever
 * left the output behind, be it a pass over another session (a device
 * half that finished, a held channel handed over) that never flushed
 * this one.
 */
static void
pump_wake(struct pump *p)
{
	if (!p->dead && !p->fd_eof && sshio_write_pending(p->io) &&
	    sshio_flush(p->io) == -1)
		pump_close(p, "session write failed");
}

/* Socket readable: read at most one window's worth and send it. */
static void
pump_rd_cb(evutil_socket_t fd, short what, void *arg)
{
	struct pump *p = arg;
	char buf[PUMP_CHUNK];
	uint32_t win;
	ssize_t n;

	if (!pump_can_read(p)) {
		event_del(p->ev_rd);
		pump_wake(p);
		return;
	}
	win = ssh_channel_window_size(p->ch);
	n = read(fd, buf, win < sizeof buf ? win : sizeof buf);
	if (n == -1) {
		if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
			return;
		pump_close(p, "connection read failed");
		return;
	}
	if (n == 0) {
		p->fd_eof = 1;
		event_del(p->ev_rd);
	} else
		evbuffer_add(p->in, buf, (size_t)n);
	pump_send(p);
	if (sshio_flush(p->io) == -1)
		pump_close(p, "session write failed");
	if (!pump_can_read(p)) {
		event_del(p->ev_rd);
		pump_wake(p);
	}
}

/* Socket writable again: drain, then take more from libssh. */
static void
pump_wr_cb(evutil_socket_t fd, short what, void *arg)
{
	struct pump *p = arg;

	pump_kick(p);
	sshio_flush(p->io);
}

/* Join fd and channel; done(p, owner) is called from the loop at the end. */
struct pump *
pump_new(struct event_base *base, struct sshio *io, ssh_channel ch, int fd,
    void (*done)(struct pump *, void *), void *owner)
{
	struct pump *p;

	p = xcalloc(1, sizeof *p);
	p->base = base;
	p->io = io;
	p->ch = ch;
	p->fd = fd;
	p->done = done;
	p->owner = owner;
	net_nonblock(fd);
	net_keepalive(fd);
	p->out = evbuffer_new();
	p->in = evbuffer_new();
	p->ev_rd = event_new(base, fd, EV_READ | EV_PERSIST, pump_rd_cb, p);
	p->ev_wr = event_new(base, fd, EV_WRITE, pump_wr_cb, p);
	p->ev_done = event_new(base, -1, 0, pump_done_cb, p);
	if (!p->out || !p->in || !p->ev_rd || !p->ev_wr || !p->ev_done)
		fatalx("pump_new: out of memory");
	memset(&p->cbs, 0, sizeof p->cbs);
	p->cbs.userdata = p;
	p->cbs.channel_data_function = pump_ch_data;
	p->cbs.channel_eof_function = pump_ch_eof;
	p->cbs.channel_close_function = pump_ch_close;
	ssh_callbacks_init(&p->cbs);
	ssh_set_channel_callbacks(ch, &p->cbs);
	event_add(p->ev_rd, NULL);
	return p;
}

/*
 * Re-evaluate after the session moved: the window may have reopened,
 * output may have drained, libssh may hold data for us. Returns -1 when
 * the pump is finished.
 */
int
pump_kick(struct pump *p)
{
	if (p->dead)
		return -1;
	if (!p->primed && ssh_channel_is_open(p->ch))
		pump_prime(p);
	pump_write(p);
	if (!p->dead && evbuffer_get_length(p->out) == 0) {
		pump_refill(p);
		pump_write(p);
	}
	if (!p->dead)
		pump_send(p);
	if (!p->dead)
		pump_try_close(p);
	if (p->dead)
		return -1;
	if (pump_can_read(p))
		event_add(p->ev_rd, NULL);
	return 0;
}

/*
 * Free everything; closes the socket. The channel goes to the session's
 * graveyard (sshio_bury): closed politely, nothing more sent on it;
 * gone(arg), when given, is called once libssh has let go of it.
 */
void
pump_free(struct pump *p, void (*gone)(void *), void *arg)
{
	if (p == NULL) {
		if (gone != NULL)
			gone(arg);
		return;
	}
	event_free(p->ev_rd);
	event_free(p->ev_wr);
	event_free(p->ev_done);
	evbuffer_free(p->out);
	evbuffer_free(p->in);
	if (p->fd != -1)
		close(p->fd);
	if (p->ch != NULL) {
		ssh_remove_channel_callbacks(p->ch, &p->cbs);
		sshio_bury(p->io, p->ch, p->ch_closed, gone, arg);
	} else if (gone != NULL)
		gone(arg);
	free(p);
}
