/* Drive one non-blocking libssh session from libevent readiness events. */
#include <errno.h>
#include <string.h>

#include "common.h"

#define SSHIO_MAX_PASSES	64	/* dopoll reads <= 4 KiB each */

/* libevent callback: hand readiness to the owner. */
static void
sshio_event(evutil_socket_t fd, short what, void *arg)
{
	struct sshio *io = arg;

	(void)fd;
	io->cb(io->arg, what);
}

/* Watch fd for a session; reads are always watched, writes on demand. */
void
sshio_init(struct sshio *io, struct event_base *base, ssh_session s, int fd,
    void (*cb)(void *, short), void *arg)
{
	memset(io, 0, sizeof *io);
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

/* Stop watching and free the events; the session itself is the owner's. */
void
sshio_clear(struct sshio *io)
{
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
