/*
 * Held connections: an operator's channel or a laptop's connection for a
 * known device that is offline, silent, or whose session died before it
 * answered, waits up to hold_time for the device's next session and is
 * then served by it (held_serve); after hold_time it is closed with
 * "device offline". Bounded relay-wide (max_held) and per device
 * (max_held_per_device). A held operator channel keeps reading into its
 * socket pair until the kernel's buffer is full, then its window shuts.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "relay.h"

static void held_close(struct held *, const char *, ...) PRINTFLIKE(2, 3);

/* The audit fields of a held entry. */
static void
held_audit(struct held *h, struct audit *a, const char *event,
    const char *reason)
{
	audit_init(a, event, h->operator, h->operator_fp, h->peer,
	    h->peer_port, h->device, h->port, reason);
	a->grant = h->grant;
	a->via = h->via;
	a->duration = relay_age(&h->started);
}

/* Unlink and free; the socket and the operator's half go too. */
static void
held_free(struct held *h)
{
	struct relay *r = h->relay;

	TAILQ_REMOVE(&r->held, h, entry);
	r->nheld--;
	if (h->fd != -1)
		close(h->fd);
	if (h->op != NULL)
		pump_free(h->op, NULL, NULL);
	event_free(h->ev_timeout);
	event_free(h->ev_free);
	free(h->device);
	free(h->operator);
	free(h->operator_fp);
	free(h->via);
	free(h);
}

/* Deferred free, from the loop. */
static void
held_free_cb(evutil_socket_t fd, short what, void *arg)
{
	held_free(arg);
}

/* The one close path: an audit "close" event, freed from the loop. */
static void
held_close(struct held *h, const char *fmt, ...)
{
	struct audit a;
	char why[256];
	va_list ap;

	if (h->closing)
		return;
	h->closing = 1;
	va_start(ap, fmt);
	vsnprintf(why, sizeof why, fmt, ap);
	va_end(ap);
	if (h->op != NULL && !h->op->dead) {
		h->op->dead = 1;
		h->op->why = "closed";
		event_del(h->op->ev_rd);
		event_del(h->op->ev_wr);
	}
	held_audit(h, &a, "close", why);
	audit_event(h->relay, &a, 0, "device %s: held %s from %s port %d to "
	    "%s:%d closed: %s; %.1f s", h->device, h->operator ? "channel" :
	    "connection", h->peer, h->peer_port, h->device, h->port, why,
	    a.duration);
	event_del(h->ev_timeout);
	event_active(h->ev_free, EV_TIMEOUT, 0);
}

/* hold_time passed without the device. */
static void
held_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct held *h = arg;
	struct relay *r = h->relay;

	held_close(h, "device offline (held %lu s, hold_time)",
	    r->conf.hold_time);
}

/* The operator closed its channel (or its half failed) while held. */
static void
held_op_done(struct pump *p, void *arg)
{
	held_close(arg, "operator closed the channel while held: %s", p->why);
}

/* May one more connection be held for device? NULL if so, else why not. */
const char *
held_admit(struct relay *r, const char *device)
{
	struct held *h;
	unsigned long n = 0;

	if (r->conf.hold_time == 0)
		return "device offline (hold_time 0)";
	if (r->nheld >= r->conf.max_held)
		return "device offline, and max_held connections are held";
	TAILQ_FOREACH(h, &r->held, entry)
		if (!h->closing && strcmp(h->device, device) == 0)
			n++;
	if (n >= r->conf.max_held_per_device)
		return "device offline, and max_held_per_device connections "
		    "are held for it";
	return NULL;
}

/*
 * Hold fd (the laptop's socket, or the device end of an operator's socket
 * pair whose other end is op's) for device:port. l: the lingering port it
 * came to, if any. NULL with *why when the caps say no (the caller closes
 * what it gave).
 */
struct held *
held_add(struct relay *r, const char *device, int port, struct listener *l,
    int fd, struct session *opsess, struct pump *op, const struct origin *o,
    const struct timespec *started, const char **why)
{
	struct timeval tv = { (time_t)r->conf.hold_time, 0 };
	struct held *h;
	uint64_t epoch;

	if ((*why = held_admit(r, device)) != NULL)
		return NULL;
	h = xcalloc(1, sizeof *h);
	h->relay = r;
	h->device = xstrdup(device);
	h->port = port;
	h->l = l;
	h->fd = fd;
	h->opsess = opsess;
	h->op = op;
	if (opsess != NULL) {
		h->operator = xstrdup(o->operator ? o->operator : "-");
		h->operator_fp = xstrdup(o->operator_fp ? o->operator_fp :
		    "-");
	}
	if (o->via != NULL)
		h->via = xstrdup(o->via);
	snprintf(h->peer, sizeof h->peer, "%s", o->peer);
	h->peer_port = o->peer_port;
	if (started != NULL)
		h->started = *started;
	else
		clock_gettime(CLOCK_MONOTONIC, &h->started);
	if (op != NULL) {
		op->done = held_op_done;
		op->owner = h;
	}
	h->ev_timeout = evtimer_new(r->base, held_timeout, h);
	h->ev_free = event_new(r->base, -1, 0, held_free_cb, h);
	if (h->ev_timeout == NULL || h->ev_free == NULL)
		fatalx("event_new");
	evtimer_add(h->ev_timeout, &tv);
	TAILQ_INSERT_TAIL(&r->held, h, entry);
	r->nheld++;
	if (op != NULL && cluster_route(r, device, &epoch) != NULL)
		return h;	/* on its way to a peer relay */
	log_info("device %s: %s from %s port %d to %s:%d held for the "
	    "device's next session (up to %lu s)", device, h->operator ?
	    "channel" : "connection", h->peer, h->peer_port, device, port,
	    r->conf.hold_time);
	return h;
}

/* Is h waiting for what listener l now serves? */
static int
held_matches(struct held *h, struct listener *l)
{
	if (h->port != l->port)
		return 0;
	if (h->l == l)
		return 1;
	if (l->name != NULL)
		return strcmp(h->device, l->name) == 0;
	return l->owner != NULL && l->owner->name != NULL &&
	    strcmp(h->device, l->owner->name) == 0;
}

/* l has a live session again: serve everything held for it. */
void
held_serve(struct relay *r, struct listener *l)
{
	struct held *h, *tmp;

	if (l->owner == NULL || l->owner->state != SESSION_ACTIVE)
		return;
	TAILQ_FOREACH_SAFE(h, &r->held, entry, tmp) {
		if (h->closing || !held_matches(h, l))
			continue;
		held_hand(h, l->owner, l->port, l->bind_req, 0);
	}
}

/* The origin of a held entry. */
static void
held_origin(struct held *h, struct origin *o)
{
	memset(o, 0, sizeof *o);
	o->operator = h->operator;
	o->operator_fp = h->operator_fp;
	o->peer = h->peer;
	o->peer_port = h->peer_port;
	o->via = h->via;
}

/*
 * Hand h to sess: the device's session here (port, bind_req), or a link
 * to the peer relay holding the device (epoch: its session there).
 */
int
held_hand(struct held *h, struct session *sess, int port,
    const char *bind_req, uint64_t epoch)
{
	struct origin o;
	const char *why;

	held_origin(h, &o);
	if (conn_adopt(sess, port, bind_req, h->fd, h->opsess, h->op, &o,
	    &h->started, h->device, h->grant, &why) == -1) {
		held_close(h, "%s", why);
		return -1;
	}
	if (sess->link) {
		struct conn *c = TAILQ_LAST(&sess->conns, conns);

		c->sent_epoch = epoch;
	}
	log_info("device %s: held %s from %s port %d served after %.1f s%s%s",
	    h->device, h->op ? "channel" : "connection", h->peer, h->peer_port,
	    relay_age(&h->started), sess->link ? " by relay " : "",
	    sess->link && sess->peerp ? sess->peerp->id : "");
	h->fd = -1;		/* the conn's now */
	h->op = NULL;
	h->closing = 1;
	event_del(h->ev_timeout);
	event_active(h->ev_free, EV_TIMEOUT, 0);
	return 0;
}

/*
 * Serve whatever waits for a device whose name or port has a live session
 * now: after a session closed (what it never answered was held, and its
 * successor may already hold the port).
 */
void
held_serve_live(struct relay *r)
{
	struct held *h, *tmp;
	struct listener *l;

	TAILQ_FOREACH_SAFE(h, &r->held, entry, tmp) {
		if (h->closing)
			continue;
		if ((l = listener_find_name(r, h->device, h->port)) == NULL &&
		    ((l = listener_find(r, h->port)) == NULL ||
		    l->owner == NULL || l->owner->name == NULL ||
		    strcmp(l->owner->name, h->device) != 0))
			continue;
		if (l->owner != NULL && l->owner->state == SESSION_ACTIVE &&
		    !l->owner->displaced && !session_silent(l->owner))
			held_serve(r, l);
	}
}

/* An operator's session closes: its held channels go with it. */
void
held_drop_operator(struct session *op)
{
	struct held *h, *tmp;

	TAILQ_FOREACH_SAFE(h, &op->relay->held, entry, tmp) {
		if (h->opsess != op)
			continue;
		held_close(h, "operator session closed");
		if (h->op != NULL) {	/* its channel goes before the session */
			pump_free(h->op, NULL, NULL);
			h->op = NULL;
		}
		h->opsess = NULL;
	}
}

/* A lingering port is given up: what waited on it goes too. */
void
held_drop_listener(struct listener *l, const char *why)
{
	struct held *h;

	TAILQ_FOREACH(h, &l->relay->held, entry)
		if (h->l == l) {
			held_close(h, "%s", why);
			h->l = NULL;
		}
}

/* A grant or expose ended: what waits under it goes. */
void
held_drop_grant(struct relay *r, uint64_t grant, const char *why)
{
	struct held *h;

	TAILQ_FOREACH(h, &r->held, entry)
		if (h->grant == grant && !h->closing)
			held_close(h, "%s", why);
}

/* Held entries (for status). */
unsigned int
held_count(struct relay *r, const char *device)
{
	struct held *h;
	unsigned int n = 0;

	TAILQ_FOREACH(h, &r->held, entry)
		if (!h->closing && (device == NULL ||
		    strcmp(h->device, device) == 0))
			n++;
	return n;
}

/* At exit: free every entry now. */
void
held_clear(struct relay *r)
{
	struct held *h;

	while ((h = TAILQ_FIRST(&r->held)) != NULL)
		held_free(h);
}
