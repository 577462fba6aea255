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
#include <sys/socket.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "relay.h"

#define CONN_HALF_GRACE	10	/* s: one half finished, the other may drain */

static void conn_open(struct conn *);
static void conn_op_done(struct pump *, void *);
static int conn_rehold(struct conn *);

/*
 * A refused connection or channel: an audit "deny" event each, but at most
 * 10 log lines a second so a flood of laptops cannot flood the log; the
 * rest are counted (the journal and audit_log still get every one).
 */
static void PRINTFLIKE(3, 4)
conn_refuse_log(struct relay *r, struct audit *a, const char *fmt, ...)
{
	static time_t window;
	static unsigned int lines;
	static unsigned long suppressed;
	time_t now = time(NULL);
	char buf[512];
	va_list ap;
	int quiet = 0;

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
		quiet = 1;
	}
	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	a->event = "deny";
	if (!quiet)
		log_warnx("%s", buf);
	audit_event(r, a, 1, "%s", buf);
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
	free(c->via);
	free(c->operator);
	free(c->operator_fp);
	free(c->target);
	free(c);
}

/* An operator's half goes: its channel to the operator's graveyard. */
static void
conn_drop_op(struct conn *c)
{
	if (c->opsess == NULL)
		return;
	TAILQ_REMOVE(&c->opsess->opconns, c, opentry);
	c->opsess->nopconns--;
	pump_free(c->op, NULL, NULL);
	c->op = NULL;
	c->opsess = NULL;
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
	conn_drop_op(c);
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

/* The device it is for (on a link to a peer relay: the name asked). */
static const char *
conn_device(struct conn *c)
{
	return c->sess->link ? c->target : c->sess->name;
}

/* The audit fields of a connection. */
static void
conn_audit(struct conn *c, struct audit *a, const char *event,
    const char *reason)
{
	audit_init(a, event, c->operator, c->operator_fp, c->peer,
	    c->peer_port, conn_device(c), c->port, reason);
	a->grant = c->grant;
	a->via = c->sess->link ? c->sess->peerp != NULL ?
	    c->sess->peerp->id : "?" : c->via;
	if (c->p != NULL) {
		a->to_device = c->p->bytes_in;
		a->from_device = c->p->bytes_out;
	}
	a->duration = relay_age(&c->started);
}

/* "connection from ADDR port N to port P" or the operator's channel. */
static const char *
conn_what(struct conn *c)
{
	static char buf[512];

	if (c->operator != NULL)
		snprintf(buf, sizeof buf, "operator %s (%s port %d) channel "
		    "to %s:%d", c->operator, c->peer, c->peer_port, c->target,
		    c->port);
	else
		snprintf(buf, sizeof buf, "connection from %s port %d to port "
		    "%d", c->peer, c->peer_port, c->port);
	return buf;
}

/*
 * The one close path: an audit "close" event (the laptop or operator, the
 * device, the reason, the bytes both ways, the duration); count the bytes
 * into the session; free from the loop.
 */
void
conn_close(struct conn *c, const char *fmt, ...)
{
	struct session *sess = c->sess;
	struct audit a;
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
	if (c->op != NULL && !c->op->dead) {
		c->op->dead = 1;
		c->op->why = "closed";
	}
	conn_audit(c, &a, "close", why);
	audit_event(sess->relay, &a, 0, "device %s: %s%s%s closed: %s; %llu "
	    "bytes to device, %llu from device, %.1f s", conn_device(c),
	    conn_what(c), a.via ? " via relay " : "", a.via ? a.via : "",
	    why, (unsigned long long)c->p->bytes_in,
	    (unsigned long long)c->p->bytes_out, a.duration);
	sess->bytes_in += c->p->bytes_out;
	sess->bytes_out += c->p->bytes_in;
	c->state = CONN_CLOSING;
	event_del(c->ev_timeout);
	event_del(c->p->ev_rd);
	event_del(c->p->ev_wr);
	if (c->op != NULL) {
		event_del(c->op->ev_rd);
		event_del(c->op->ev_wr);
	}
	event_active(c->ev_free, EV_TIMEOUT, 0);
}

/*
 * One half of an operator's channel finished: shut its end of the
 * socketpair for writing, so the other half sees EOF after the last byte
 * and finishes too; the conn closes when both have, or CONN_HALF_GRACE s
 * later.
 */
static void
conn_half_done(struct conn *c, struct pump *p, int *done, int *other)
{
	struct timeval tv = { CONN_HALF_GRACE, 0 };

	if (c->state == CONN_CLOSING || c->state == CONN_BURIED)
		return;
	*done = 1;
	shutdown(p->fd, SHUT_WR);
	if (*other || c->state == CONN_OPENING) {
		conn_close(c, "%s", p->why);
		return;
	}
	event_del(c->ev_timeout);
	evtimer_add(c->ev_timeout, &tv);
	if (p == c->op)
		pump_kick(c->p);
	else
		pump_kick(c->op);
}

/* The pump finished (EOF both ways, an error, the device's CLOSE). */
static void
conn_pump_done(struct pump *p, void *arg)
{
	struct conn *c = arg;

	if (c->op == NULL)
		conn_close(c, "%s", p->why);
	else
		conn_half_done(c, p, &c->dev_done, &c->op_done);
}

/* The operator's half finished. */
static void
conn_op_done(struct pump *p, void *arg)
{
	struct conn *c = arg;

	conn_half_done(c, p, &c->op_done, &c->dev_done);
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
	else if (c->state == CONN_OPEN)
		conn_close(c, "%s finished, the %s did not within %d s",
		    c->dev_done ? "device" : "operator",
		    c->dev_done ? "operator" : "device", CONN_HALF_GRACE);
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

	if (sess->link)		/* bind_req: the originator for the peer */
		rc = ssh_channel_open_forward(c->p->ch, c->target, c->port,
		    c->bind_req, c->peer_port);
	else
		rc = ssh_channel_open_reverse_forward(c->p->ch, c->bind_req,
		    c->port, c->peer, c->peer_port);
	if (rc == SSH_AGAIN)
		return;
	if (rc != SSH_OK && sess->link) {
		/* not (or no longer) there: wait here for its next session */
		if (conn_rehold(c) == 0)
			conn_close(c, "relay %s does not serve it: %s; held",
			    sess->peerp ? sess->peerp->id : "?",
			    esc(ssh_get_error(sess->s)));
		else
			conn_close(c, "refused by relay %s: %s",
			    sess->peerp ? sess->peerp->id : "?",
			    esc(ssh_get_error(sess->s)));
		return;
	}
	if (rc != SSH_OK) {
		conn_close(c, "refused by the device: %s",
		    esc(ssh_get_error(sess->s)));
		return;
	}
	c->state = CONN_OPEN;
	event_del(c->ev_timeout);
	log_debug("device %s: %s joined", conn_device(c), conn_what(c));
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
 * May one more connection from peer reach port of sess? NULL if so, else
 * why not (relay-wide, per port, per source caps).
 */
static const char *
conn_admit(struct session *sess, int port, const char *peer)
{
	struct relay *r = sess->relay;
	unsigned long on_port, from_peer;
	static char why[128];

	if (r->nconns >= r->conns_limit) {
		snprintf(why, sizeof why, "%u connections on the relay "
		    "(max_conns)", r->nconns);
		return why;
	}
	conn_count(sess, port, peer, &on_port, &from_peer);
	if (on_port >= r->conf.max_conns_per_port) {
		snprintf(why, sizeof why, "%lu connections open or awaiting "
		    "the device (max_conns_per_port)", on_port);
		return why;
	}
	if (from_peer >= r->conf.max_conns_per_source) {
		snprintf(why, sizeof why, "%lu connections from that address "
		    "(max_conns_per_source)", from_peer);
		return why;
	}
	return NULL;
}

/*
 * A new connection of sess to port, its bytes through fd; the channel to
 * the device is asked for at once. The socket is not read until the
 * channel is open and has a window.
 */
static struct conn *
conn_new(struct session *sess, ssh_channel ch, int fd, int port,
    const char *bind_req, const struct origin *o)
{
	struct relay *r = sess->relay;
	struct timeval tv;
	struct conn *c;

	c = xcalloc(1, sizeof *c);
	c->sess = sess;
	c->state = CONN_OPENING;
	c->port = port;
	c->bind_req = xstrdup(bind_req);
	snprintf(c->peer, sizeof c->peer, "%s", o->peer);
	c->peer_port = o->peer_port;
	if (o->via != NULL)
		c->via = xstrdup(o->via);
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
	return c;
}

/* c's other half is an operator's channel (its pump op). */
static void
conn_join_op(struct conn *c, struct session *opsess, struct pump *op,
    const char *target, const struct origin *o)
{
	c->operator = xstrdup(o->operator ? o->operator : "-");
	c->operator_fp = xstrdup(o->operator_fp ? o->operator_fp : "-");
	c->target = xstrdup(target);
	c->opsess = opsess;
	c->op = op;
	op->done = conn_op_done;
	op->owner = c;
	TAILQ_INSERT_TAIL(&opsess->opconns, c, opentry);
	opsess->nopconns++;
}

/* Ask for the channel (audited unless it was when held); push it out. */
static void
conn_start(struct conn *c, int audit)
{
	struct session *sess = c->sess;
	struct audit a;

	if (audit) {
		conn_audit(c, &a, "open", NULL);
		audit_event(sess->relay, &a, 0, "device %s: %s%s%s",
		    conn_device(c), conn_what(c), a.via ? " via relay " : "",
		    a.via ? a.via : "");
	}
	conn_open(c);
	if (sess->state != SESSION_CLOSING && sshio_flush(&sess->io) == -1)
		session_close(sess, "write failed");
}

/* Someone connected to a device port: bounded, then joined. */
void
conn_accept(struct listener *l, int fd, struct sockaddr *sa, uint64_t grant)
{
	struct session *sess = l->owner;
	struct relay *r = l->relay;
	struct audit a;
	struct held *h;
	struct conn *c;
	const char *why;
	char peer[64];
	int peer_port;
	ssh_channel ch;
	struct origin o;

	net_addrstr(sa, peer, sizeof peer, &peer_port);
	memset(&o, 0, sizeof o);
	o.peer = peer;
	o.peer_port = peer_port;
	audit_init(&a, NULL, NULL, NULL, peer, peer_port, NULL, l->port, NULL);
	a.grant = grant;
	if (sess == NULL || sess->state != SESSION_ACTIVE ||
	    (session_silent(sess) && r->conf.hold_time > 0)) {
		/* lingering, or its session went silent: hold it */
		a.device = sess != NULL && sess->state == SESSION_ACTIVE ?
		    sess->name : l->linger_name;
		why = "port not held";
		if (a.device == NULL || (h = held_add(r, a.device, l->port,
		    sess == NULL ? l : NULL, fd, NULL, NULL, &o, NULL,
		    &why)) == NULL) {
			if (a.device == NULL)
				a.device = "-";
			a.reason = why;
			conn_refuse_log(r, &a, "device %s: refused connection "
			    "from %s port %d to port %d: %s", a.device, peer,
			    peer_port, l->port, a.reason);
			close(fd);
			return;
		}
		h->grant = grant;
		a.event = "open";
		a.reason = "held: device offline or silent";
		audit_event(r, &a, 1, "device %s: connection from %s port %d to "
		    "port %d held", a.device, peer, peer_port, l->port);
		return;
	}
	a.device = sess->name;
	if ((why = conn_admit(sess, l->port, peer)) != NULL ||
	    (ch = ssh_channel_new(sess->s)) == NULL) {
		a.reason = why ? why : "cannot allocate a channel";
		conn_refuse_log(r, &a, "device %s: refused connection from %s "
		    "port %d to port %d: %s", sess->name, peer, peer_port,
		    l->port, a.reason);
		close(fd);
		return;
	}
	c = conn_new(sess, ch, fd, l->port, l->bind_req, &o);
	c->grant = grant;
	conn_start(c, 1);
}

/*
 * An operator's direct-tcpip channel (msg, accepted here once everything
 * is ready) to the device session dev, port (bind_req: what the device
 * asked to bind, echoed in forwarded-tcpip). The two halves meet in a
 * socketpair, so the device half is exactly a port connection. -1 with
 * *why when refused (the caller refuses the channel).
 */
int
conn_direct(struct session *op, struct session *dev, int port,
    const char *bind_req, const char *target, uint64_t grant, ssh_message msg,
    const struct origin *o, const char **why)
{
	struct origin own;
	ssh_channel ch;
	struct pump *p;
	struct conn *c;
	int fd;

	if (o == NULL) {
		conn_origin(op, &own);
		o = &own;
	}
	if ((*why = conn_admit(dev, port, o->peer)) != NULL)
		return -1;
	if ((ch = ssh_channel_new(dev->s)) == NULL) {
		*why = "cannot allocate a channel";
		return -1;
	}
	if ((p = conn_op_accept(op, msg, &fd, why)) == NULL) {
		ssh_channel_free(ch);
		return -1;
	}
	c = conn_new(dev, ch, fd, port, bind_req, o);
	c->grant = grant;
	conn_join_op(c, op, p, target, o);
	conn_start(c, 1);
	if (c->op != NULL)
		pump_kick(c->op);
	return 0;
}

/*
 * Accept an operator's channel open (msg) and give the channel a pump on
 * one end of a new socket pair; *fd is the other end, for the device half
 * (a conn now, or a held entry). NULL with *why, and nothing sent, if not
 * (the caller refuses the channel). The pump's done callback is the
 * caller's to set (conn_join_op, held_add).
 */
struct pump *
conn_op_accept(struct session *op, ssh_message msg, int *fd,
    const char **why)
{
	ssh_channel opch;
	int sv[2];

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0, sv) == -1) {
		*why = "out of descriptors (socketpair)";
		return NULL;
	}
	if ((opch = ssh_message_channel_request_open_reply_accept(msg)) ==
	    NULL) {
		close(sv[0]);
		close(sv[1]);
		*why = "cannot accept the channel";
		return NULL;
	}
	*fd = sv[0];
	return pump_new(op->relay->base, &op->io, opch, sv[1], NULL, NULL);
}

/* An operator's own session as the origin of its channels. */
void
conn_origin(struct session *op, struct origin *o)
{
	memset(o, 0, sizeof *o);
	o->operator = op->name;
	o->operator_fp = op->fp;
	o->peer = op->peer;
	o->peer_port = op->peer_port;
}

/*
 * What a link to a peer relay sends as the channel's originator: the
 * operator's address, port, key and name, and the grant, so the peer
 * audits who it really is. "ADDR FP GRANT NAME", the name last (it may
 * hold blanks).
 */
static char *
conn_link_origin(const struct origin *o, uint64_t grant)
{
	char *s;

	if (asprintf(&s, "%s %s %llu %s", o->peer, o->operator_fp ?
	    o->operator_fp : "-", (unsigned long long)grant, o->operator ?
	    o->operator : "-") == -1)
		fatalx("asprintf");
	return s;
}

/*
 * Serve what was held (held.c) by the device session dev at port
 * (bind_req: what it asked to bind), or by a link to the peer relay that
 * holds the device: fd is the laptop's socket or the device end of the
 * operator's socket pair (op its other half). -1 with *why when refused.
 */
int
conn_adopt(struct session *dev, int port, const char *bind_req, int fd,
    struct session *opsess, struct pump *op, const struct origin *o,
    const struct timespec *started, const char *target, uint64_t grant,
    const char **why)
{
	ssh_channel ch;
	struct conn *c;
	char *orig = NULL;

	if ((*why = conn_admit(dev, port, o->peer)) != NULL)
		return -1;
	if ((ch = ssh_channel_new(dev->s)) == NULL) {
		*why = "cannot allocate a channel";
		return -1;
	}
	if (dev->link)
		bind_req = orig = conn_link_origin(o, grant);
	c = conn_new(dev, ch, fd, port, bind_req, o);
	free(orig);
	c->started = *started;
	c->grant = grant;
	if (op != NULL)
		conn_join_op(c, opsess, op, target, o);
	else if (dev->link)
		c->target = xstrdup(target);
	conn_start(c, 0);
	if (c->op != NULL)
		pump_kick(c->op);
	return 0;
}

/*
 * The device's session closes before it answered c's channel: c's socket
 * (and operator half) wait for its next session instead (held.c). 0 when
 * held; c is then closed without its socket.
 */
static int
conn_rehold(struct conn *c)
{
	struct session *sess = c->sess;
	struct relay *r = sess->relay;
	struct listener *l;
	struct held *h;
	const char *device, *why;
	int fd;

	struct origin o;

	if (c->state != CONN_OPENING || r->quitting || c->p->dead ||
	    sess->no_linger)
		return -1;
	fd = c->p->fd;
	l = sess->link ? NULL : listener_find(r, c->port);
	if (c->target != NULL)
		device = c->target;
	else
		device = sess->name;
	memset(&o, 0, sizeof o);
	o.operator = c->operator;
	o.operator_fp = c->operator_fp;
	o.peer = c->peer;
	o.peer_port = c->peer_port;
	o.via = c->via;
	if ((h = held_add(r, device, c->port, l != NULL && l->owner == sess &&
	    l->name == NULL ? l : NULL, fd, c->opsess, c->op, &o, &c->started,
	    &why)) == NULL)
		return -1;
	h->grant = c->grant;
	h->sent_epoch = c->sent_epoch;
	c->p->fd = -1;			/* the held entry's now */
	if (c->opsess != NULL) {
		TAILQ_REMOVE(&c->opsess->opconns, c, opentry);
		c->opsess->nopconns--;
		c->op = NULL;
		c->opsess = NULL;
	}
	return 0;
}

/* After a pass over an operator's session: move its channels' bytes. */
void
conn_kick_ops(struct session *op)
{
	struct conn *c, *tmp;

	TAILQ_FOREACH_SAFE(c, &op->opconns, opentry, tmp) {
		if (op->state == SESSION_CLOSING)
			return;
		if (c->op != NULL && !c->op->dead)
			pump_kick(c->op);
	}
}

/* The operator's session is closing: close its channels. */
void
conn_close_ops(struct session *op, const char *why)
{
	struct conn *c;

	TAILQ_FOREACH(c, &op->opconns, opentry)
		conn_close(c, "operator session closed: %s", why);
}

/*
 * The operator's session is being freed: its halves go now (the device
 * halves are freed from the loop as usual).
 */
void
conn_release_ops(struct session *op)
{
	struct conn *c;

	while ((c = TAILQ_FIRST(&op->opconns)) != NULL) {
		conn_close(c, "operator session freed");
		conn_drop_op(c);
	}
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

/*
 * A newer session of the same key took over: what this one has not got an
 * answer for yet waits for (and is served by) the new one at once.
 */
void
conn_rehold_opening(struct session *sess, const char *why)
{
	struct conn *c;

	TAILQ_FOREACH(c, &sess->conns, entry)
		if (conn_rehold(c) == 0)
			conn_close(c, "%s; held for the device's next session",
			    why);
}

/*
 * The session is closing: close every connection it carries; those the
 * device never answered are held for its next session (hold_time).
 */
void
conn_close_all(struct session *sess, const char *why)
{
	struct conn *c;

	TAILQ_FOREACH(c, &sess->conns, entry) {
		if (conn_rehold(c) == 0)
			conn_close(c, "%s; held for the device's next "
			    "session", why);
		else
			conn_close(c, "%s", why);
	}
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

/* A grant or expose ended: what it opened closes, everywhere. */
void
conn_close_grant(struct relay *r, uint64_t grant, const char *why)
{
	struct session *sess;
	struct conn *c, *tmp;

	struct peer *p;

	TAILQ_FOREACH(sess, &r->sessions, entry)
		TAILQ_FOREACH_SAFE(c, &sess->conns, entry, tmp)
			if (c->grant == grant && (c->state == CONN_OPENING ||
			    c->state == CONN_OPEN))
				conn_close(c, "%s", why);
	/* and on the links to peer relays */
	for (p = NULL; (p = cluster_next_peer(r, p)) != NULL;)
		if (p->link != NULL)
			TAILQ_FOREACH_SAFE(c, &p->link->conns, entry, tmp)
				if (c->grant == grant &&
				    (c->state == CONN_OPENING ||
				    c->state == CONN_OPEN))
					conn_close(c, "%s", why);
}
