/*
 * One forwarded connection, from accept to free: a laptop's TCP connection
 * to a device port, joined through a channel to the device. It lives on
 * its session's list in one of four states (opening, open, closing,
 * buried), is ended by conn_close alone, loses its socket and pump from
 * the loop, and is freed when libssh lets go of its channel: a device
 * that answers opens late or never sends CLOSE keeps them counted against
 * max_conns and the per-port and per-source caps, so the channel buffers
 * it pins stay within those bounds.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "relay.h"

static void conn_open(struct conn *);

/* Seconds since the connection was accepted. */
static double
conn_age(struct conn *c)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - c->started.tv_sec) +
	    (double)(now.tv_nsec - c->started.tv_nsec) / 1e9;
}

/*
 * A refused connection: one log line each, but at most 10 a second so a
 * flood of laptops cannot flood the log; the rest are counted.
 */
static void PRINTFLIKE(2, 3)
conn_refuse_log(struct relay *r, const char *fmt, ...)
{
	static time_t window;
	static unsigned int lines;
	static unsigned long suppressed;
	time_t now = time(NULL);
	char buf[512];
	va_list ap;

	r->refused++;
	if (now != window) {
		if (suppressed > 0)
			log_warnx("%lu more connections refused in the last "
			    "second (not logged)", suppressed);
		window = now;
		lines = 0;
		suppressed = 0;
	}
	if (++lines > 10) {
		suppressed++;
		return;
	}
	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	log_warnx("%s", buf);
}

/* libssh freed the channel: the connection stops counting. */
static void
conn_gone(void *arg)
{
	struct conn *c = arg;
	struct session *sess = c->sess;

	TAILQ_REMOVE(&sess->conns, c, entry);
	sess->nconns--;
	sess->relay->nconns--;
	free(c->bind_req);
	free(c);
}

/*
 * Deferred free, from the loop, outside every libssh callback: the socket
 * and the pump go; the channel is buried and c lives on (buried) until
 * conn_gone, which may run at once: c is not touched afterwards.
 */
static void
conn_free(struct conn *c)
{
	struct pump *p = c->p;

	c->p = NULL;
	c->state = CONN_BURIED;
	event_free(c->ev_timeout);
	event_free(c->ev_free);
	c->ev_timeout = c->ev_free = NULL;
	pump_free(p, conn_gone, c);
}

/* Loop callback for the deferred free. */
static void
conn_free_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;
	struct session *sess = c->sess;

	conn_free(c);
	if (sess->state != SESSION_CLOSING && sshio_flush(&sess->io) == -1)
		session_close(sess, "write failed");
}

/*
 * The one close path: log the laptop, the device, the reason, the bytes
 * both ways and the duration; count the bytes into the session; free
 * from the loop.
 */
void
conn_close(struct conn *c, const char *fmt, ...)
{
	struct session *sess = c->sess;
	char why[256];
	va_list ap;

	if (c->state == CONN_CLOSING || c->state == CONN_BURIED)
		return;
	va_start(ap, fmt);
	vsnprintf(why, sizeof why, fmt, ap);
	va_end(ap);
	if (!c->p->dead) {
		c->p->dead = 1;		/* no more bytes either way */
		c->p->why = "closed";
	}
	log_info("device %s: connection from %s port %d to port %d closed: "
	    "%s; %llu bytes to device, %llu from device, %.1f s", sess->name,
	    c->peer, c->peer_port, c->port, why,
	    (unsigned long long)c->p->bytes_in,
	    (unsigned long long)c->p->bytes_out, conn_age(c));
	sess->bytes_in += c->p->bytes_out;
	sess->bytes_out += c->p->bytes_in;
	c->state = CONN_CLOSING;
	event_del(c->ev_timeout);
	event_del(c->p->ev_rd);
	event_del(c->p->ev_wr);
	event_active(c->ev_free, EV_TIMEOUT, 0);
}

/* The pump finished (EOF both ways, an error, the device's CLOSE). */
static void
conn_pump_done(struct pump *p, void *arg)
{
	struct conn *c = arg;

	conn_close(c, "%s", p->why);
}

/* The device did not answer the channel open in time. */
static void
conn_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;

	if (c->state == CONN_OPENING)
		conn_close(c, "no answer from the device within %lu s "
		    "(channel_open_timeout)",
		    c->sess->relay->conf.channel_open_timeout);
}

/*
 * Ask for the forwarded-tcpip channel, or see whether the device answered.
 * Called once on accept and once per pass over the session afterwards.
 */
static void
conn_open(struct conn *c)
{
	struct session *sess = c->sess;
	int rc;

	rc = ssh_channel_open_reverse_forward(c->p->ch, c->bind_req, c->port,
	    c->peer, c->peer_port);
	if (rc == SSH_AGAIN)
		return;
	if (rc != SSH_OK) {
		conn_close(c, "refused by the device: %s",
		    esc(ssh_get_error(sess->s)));
		return;
	}
	c->state = CONN_OPEN;
	event_del(c->ev_timeout);
	log_debug("device %s: connection from %s port %d joined to port %d",
	    sess->name, c->peer, c->peer_port, c->port);
	pump_kick(c->p);
}

/*
 * Connections of a session to one port, and from one source to it: the
 * closed ones whose channel the device still holds count too.
 */
static void
conn_count(struct session *sess, int port, const char *peer,
    unsigned long *on_port, unsigned long *from_peer)
{
	struct conn *c;

	*on_port = *from_peer = 0;
	TAILQ_FOREACH(c, &sess->conns, entry) {
		if (c->port != port)
			continue;
		(*on_port)++;
		if (strcmp(c->peer, peer) == 0)
			(*from_peer)++;
	}
}

/*
 * Someone connected to a device port: bounded (relay-wide, per port, per
 * source), then a channel to the device is asked for. The socket is not
 * read until the channel is open and has a window.
 */
void
conn_accept(struct listener *l, int fd, struct sockaddr *sa)
{
	struct session *sess = l->owner;
	struct relay *r = l->relay;
	struct timeval tv;
	unsigned long on_port, from_peer;
	char peer[64];
	int peer_port;
	ssh_channel ch;
	struct conn *c;

	net_addrstr(sa, peer, sizeof peer, &peer_port);
	if (sess == NULL || sess->state != SESSION_ACTIVE) {
		close(fd);
		return;
	}
	if (r->nconns >= r->conns_limit) {
		conn_refuse_log(r, "device %s: refused connection from %s port "
		    "%d to port %d: %u connections on the relay (max_conns)",
		    sess->name, peer, peer_port, l->port, r->nconns);
		close(fd);
		return;
	}
	conn_count(sess, l->port, peer, &on_port, &from_peer);
	if (on_port >= r->conf.max_conns_per_port) {
		conn_refuse_log(r, "device %s: refused connection from %s port "
		    "%d to port %d: %lu connections open or awaiting the device "
		    "(max_conns_per_port)",
		    sess->name, peer, peer_port, l->port, on_port);
		close(fd);
		return;
	}
	if (from_peer >= r->conf.max_conns_per_source) {
		conn_refuse_log(r, "device %s: refused connection from %s port "
		    "%d to port %d: %lu connections from that address "
		    "(max_conns_per_source)", sess->name, peer, peer_port,
		    l->port, from_peer);
		close(fd);
		return;
	}
	if ((ch = ssh_channel_new(sess->s)) == NULL) {
		conn_refuse_log(r, "device %s: refused connection from %s port "
		    "%d: cannot allocate a channel", sess->name, peer,
		    peer_port);
		close(fd);
		return;
	}
	c = xcalloc(1, sizeof *c);
	c->sess = sess;
	c->state = CONN_OPENING;
	c->port = l->port;
	c->bind_req = xstrdup(l->bind_req);
	snprintf(c->peer, sizeof c->peer, "%s", peer);
	c->peer_port = peer_port;
	clock_gettime(CLOCK_MONOTONIC, &c->started);
	/*
	 * The pump (and its channel callbacks) exists before the open is
	 * confirmed: data that comes with the confirmation is delivered at
	 * once, and data, EOF or CLOSE on a channel not yet confirmed is
	 * seen and handled as the protocol error it is.
	 */
	c->p = pump_new(r->base, &sess->io, ch, fd, conn_pump_done, c);
	c->ev_timeout = evtimer_new(r->base, conn_timeout, c);
	c->ev_free = event_new(r->base, -1, 0, conn_free_cb, c);
	if (c->ev_timeout == NULL || c->ev_free == NULL)
		fatalx("event_new");
	tv.tv_sec = (time_t)r->conf.channel_open_timeout;
	tv.tv_usec = 0;
	evtimer_add(c->ev_timeout, &tv);
	TAILQ_INSERT_TAIL(&sess->conns, c, entry);
	sess->nconns++;
	r->nconns++;
	conn_open(c);
	if (sess->state != SESSION_CLOSING && sshio_flush(&sess->io) == -1)
		session_close(sess, "write failed");
}

/*
 * After a pass over the session: answers to opens may have arrived,
 * windows may have opened, output may have drained. One walk over the
 * list; nothing is re-queued, so a pass is bounded by the list's length.
 */
void
conn_kick_all(struct session *sess)
{
	struct conn *c, *tmp;

	TAILQ_FOREACH_SAFE(c, &sess->conns, entry, tmp) {
		if (sess->state == SESSION_CLOSING)
			return;
		if (c->state == CONN_OPENING)
			conn_open(c);
		else if (c->state == CONN_OPEN)
			pump_kick(c->p);
	}
}

/* The session is closing: close every connection it carries. */
void
conn_close_all(struct session *sess, const char *why)
{
	struct conn *c;

	TAILQ_FOREACH(c, &sess->conns, entry)
		conn_close(c, "%s", why);
}

/*
 * The session is being freed, its graveyard already cleared (so buried
 * channels are gone and new ones are freed at once): free every
 * connection now.
 */
void
conn_free_all(struct session *sess)
{
	struct conn *c;

	while ((c = TAILQ_FIRST(&sess->conns)) != NULL) {
		if (c->state == CONN_BURIED)
			fatalx("conn_free_all: buried connection left");
		conn_close(c, "session freed");
		conn_free(c);
	}
}

/* Bytes moved by a session so far (closed and live connections). */
int
conn_bytes(struct session *sess, uint64_t *from_dev, uint64_t *to_dev)
{
	struct conn *c;
	int n = 0;

	*from_dev = sess->bytes_in;
	*to_dev = sess->bytes_out;
	TAILQ_FOREACH(c, &sess->conns, entry) {
		if (c->state == CONN_CLOSING || c->state == CONN_BURIED)
			continue;
		*from_dev += c->p->bytes_out;
		*to_dev += c->p->bytes_in;
		n++;
	}
	return n;
}
