/*
 * Device ports: one listening socket per port, owned by one session; and
 * named forwards (ssh -R pi-01:22:localhost:22): no socket, reached by
 * operators' direct-tcpip only.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "relay.h"

/* The listener for a port, if any. */
struct listener *
listener_find(struct relay *r, int port)
{
	if (port <= 0 || port > 65535)
		return NULL;
	return r->byport[port];
}

/* Named forwards by name, so a fleet of them is not walked per lookup. */
#define LISTENER_BUCKETS	16384
static struct listener *listener_byname[LISTENER_BUCKETS];

/* The named forward name:port, if any. */
struct listener *
listener_find_name(struct relay *r, const char *name, int port)
{
	struct listener *l;

	for (l = listener_byname[str_hash(name) % LISTENER_BUCKETS]; l != NULL;
	    l = l->nnext)
		if (l->port == port && strcmp(l->name, name) == 0)
			return l;
	return NULL;
}

/* Drop a named forward from the index. */
static void
listener_unname(struct listener *l)
{
	struct listener **pp;

	for (pp = &listener_byname[str_hash(l->name) % LISTENER_BUCKETS];
	    *pp != NULL; pp = &(*pp)->nnext)
		if (*pp == l) {
			*pp = l->nnext;
			return;
		}
}

/* Close a device port or drop a named forward. */
void
listener_free(struct listener *l)
{
	TAILQ_REMOVE(&l->relay->listeners, l, entry);
	if (l->name == NULL)
		l->relay->byport[l->port] = NULL;
	else
		listener_unname(l);
	if (l->owner != NULL) {
		TAILQ_REMOVE(&l->owner->owned, l, sentry);
		if (l->owner->nforwards > 0)
			l->owner->nforwards--;
	}
	if (l->evl != NULL)
		evconnlistener_free(l->evl);
	accept_pause_clear(&l->ap);
	if (l->ev_linger != NULL)
		event_free(l->ev_linger);
	held_drop_listener(l, "port given up");
	free(l->linger_fp);
	free(l->linger_name);
	free(l->name);
	free(l->bind_req);
	free(l);
}

/* What a listener is, for the log: "port 4649" or "name pi-01:22". */
static const char *
listener_what(const struct listener *l)
{
	static char buf[300];

	if (l->name != NULL)
		snprintf(buf, sizeof buf, "name %s:%d", l->name, l->port);
	else
		snprintf(buf, sizeof buf, "port %d", l->port);
	return buf;
}

/* Someone connected to a device port. */
static void
listener_accept(struct evconnlistener *evl, evutil_socket_t fd,
    struct sockaddr *sa, int salen, void *arg)
{
	conn_accept(arg, fd, sa, 0);
}

/* Accept errors: out of descriptors pauses accepting for a moment. */
static void
listener_error(struct evconnlistener *evl, void *arg)
{
	struct listener *l = arg;
	char what[64];

	snprintf(what, sizeof what, "device port %d", l->port);
	accept_pause_error(&l->ap, what);
}

/*
 * tcpip-forward from an authenticated device. Allowed only for ports in
 * its key's permitlisten. A port held by an older session of the same key
 * is taken over at once, keeping the socket; another key is refused.
 */
int
listener_request(struct session *sess, const char *addr, int port,
    const char **why)
{
	struct relay *r = sess->relay;
	struct sockaddr_storage ss;
	struct session *old;
	struct authkey *ak;
	struct listener *l;
	socklen_t sslen;
	static char buf[256];

	int named = net_addr_is_name(addr);

	if (port <= 0 || port > 65535) {
		*why = "a fixed port is required (port 0 is not supported)";
		return -1;
	}
	if ((ak = session_authkey(sess)) == NULL) {
		*why = "key no longer in authorized_keys";
		return -1;
	}
	if (named ? !authkey_permits_name(ak, addr, port) :
	    !authkey_permits(ak, addr, port)) {
		*why = ak->npermits == 0 ? "key has no permitlisten option" :
		    named ? "name not in this key's permitlisten" :
		    "port not in this key's permitlisten";
		return -1;
	}
	if ((l = named ? listener_find_name(r, addr, port) :
	    listener_find(r, port)) != NULL) {
		if (l->owner == sess)
			return 0;
		if (l->owner == NULL && l->linger_fp != NULL) {
			if (strcmp(l->linger_fp, sess->fp) != 0) {
				snprintf(buf, sizeof buf, "port is kept for "
				    "device %s (offline %lld s, hold_time)",
				    l->linger_name, (long long)(time(NULL) -
				    l->linger_since));
				*why = buf;
				return -1;
			}
			listener_unlinger(l);
			l->owner = sess;
			TAILQ_INSERT_TAIL(&sess->owned, l, sentry);
			sess->nforwards++;
			free(l->bind_req);
			l->bind_req = xstrdup(addr);
			log_info("device %s: port %d back after %lld s", sess->name,
			    port, (long long)(time(NULL) - l->linger_since));
			held_serve(r, l);
			return 0;
		}
		if (l->owner == NULL || strcmp(l->owner->fp, sess->fp) != 0) {
			snprintf(buf, sizeof buf, "%s is held by device %s "
			    "(a different key)", named ? "name" : "port",
			    l->owner ? l->owner->name : "?");
			*why = buf;
			return -1;
		}
		old = l->owner;
		if (old->nforwards > 0)
			old->nforwards--;
		TAILQ_REMOVE(&old->owned, l, sentry);
		l->owner = sess;
		TAILQ_INSERT_TAIL(&sess->owned, l, sentry);
		sess->nforwards++;
		free(l->bind_req);
		l->bind_req = xstrdup(addr);
		r->takeovers++;
		sess->takeovers++;
		log_info("device %s: %s taken over by the new session "
		    "from %s port %d", sess->name, listener_what(l),
		    sess->peer, sess->peer_port);
		session_displace(old, sess);
		held_serve(r, l);
		return 0;
	}
	if (sess->nforwards >= r->conf.max_forwards) {
		*why = "too many forwards for this session (max_forwards)";
		return -1;
	}
	if (named) {
		l = xcalloc(1, sizeof *l);
		l->relay = r;
		l->name = xstrdup(addr);
		l->port = port;
		l->bind_req = xstrdup(addr);
		l->owner = sess;
		l->nnext = listener_byname[str_hash(l->name) %
		    LISTENER_BUCKETS];
		listener_byname[str_hash(l->name) % LISTENER_BUCKETS] = l;
		TAILQ_INSERT_TAIL(&r->listeners, l, entry);
		TAILQ_INSERT_TAIL(&sess->owned, l, sentry);
		sess->nforwards++;
		log_info("device %s: serving %s (named forward, no port)",
		    sess->name, listener_what(l));
		held_serve(r, l);
		return 0;
	}
	if (net_resolve_listen(r->conf.forward_address, (uint16_t)port, &ss,
	    &sslen, why) == -1)
		return -1;
	l = xcalloc(1, sizeof *l);
	l->relay = r;
	l->port = port;
	l->bind_req = xstrdup(addr);
	l->owner = sess;
	l->evl = evconnlistener_new_bind(r->base, listener_accept, l,
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC,
	    128, (struct sockaddr *)&ss, (int)sslen);
	if (l->evl == NULL) {
		snprintf(buf, sizeof buf, "cannot listen on %s port %d: %s",
		    r->conf.forward_address, port, strerror(errno));
		*why = buf;
		free(l->bind_req);
		free(l);
		return -1;
	}
	evconnlistener_set_error_cb(l->evl, listener_error);
	accept_pause_init(&l->ap, r->base, l->evl, NULL, NULL);
	TAILQ_INSERT_TAIL(&r->listeners, l, entry);
	TAILQ_INSERT_TAIL(&sess->owned, l, sentry);
	r->byport[port] = l;
	sess->nforwards++;
	log_info("device %s: listening on %s port %d", sess->name,
	    r->conf.forward_address, port);
	held_serve(r, l);
	return 0;
}

/* cancel-tcpip-forward: only the owner may close its port. */
int
listener_cancel(struct session *sess, const char *addr, int port)
{
	struct listener *l;

	l = net_addr_is_name(addr) ? listener_find_name(sess->relay, addr,
	    port) : listener_find(sess->relay, port);
	if (l == NULL || l->owner != sess)
		return -1;
	log_info("device %s: cancelled %s", sess->name, listener_what(l));
	listener_free(l);
	return 0;
}

/* hold_time passed and the port's key did not come back. */
static void
listener_linger_end(evutil_socket_t fd, short what, void *arg)
{
	struct listener *l = arg;

	log_info("device %s: closed port %d (not back within hold_time)",
	    l->linger_name, l->port);
	listener_free(l);
}

/* A lingering port is taken again (or given up). */
void
listener_unlinger(struct listener *l)
{
	if (l->ev_linger != NULL)
		event_free(l->ev_linger);
	l->ev_linger = NULL;
	free(l->linger_fp);
	free(l->linger_name);
	l->linger_fp = l->linger_name = NULL;
}

/*
 * The session is closing: its named forwards go; its ports linger
 * hold_time, kept for the same key, holding what arrives meanwhile
 * (held.c), unless the relay is quitting.
 */
void
listener_release(struct session *sess)
{
	struct relay *r = sess->relay;
	struct timeval tv = { (time_t)r->conf.hold_time, 0 };
	struct listener *l;

	while ((l = TAILQ_FIRST(&sess->owned)) != NULL) {
		if (l->name != NULL || r->conf.hold_time == 0 || r->quitting ||
		    sess->no_linger || sess->moved) {
			log_info("device %s: closed %s", sess->name,
			    listener_what(l));
			listener_free(l);
			continue;
		}
		TAILQ_REMOVE(&sess->owned, l, sentry);
		if (sess->nforwards > 0)
			sess->nforwards--;
		l->owner = NULL;
		l->linger_fp = xstrdup(sess->fp);
		l->linger_name = xstrdup(sess->name);
		l->linger_since = time(NULL);
		if ((l->ev_linger = evtimer_new(r->base, listener_linger_end,
		    l)) == NULL)
			fatalx("evtimer_new");
		evtimer_add(l->ev_linger, &tv);
		log_info("device %s: port %d kept for its next session (up to "
		    "%lu s, hold_time)", sess->name, l->port, r->conf.hold_time);
	}
}

/* A silent session answers again: serve what was held meanwhile. */
void
listener_serve_held(struct session *sess)
{
	struct listener *l, *tmp;

	TAILQ_FOREACH_SAFE(l, &sess->owned, sentry, tmp)
		held_serve(sess->relay, l);
}
