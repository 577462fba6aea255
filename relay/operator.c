/*
 * Operators: people who reach devices by name. A key with permitopen is an
 * operator's; `ssh -J ops@relay pi-01` sends direct-tcpip(pi-01, 22),
 * served from the named forward pi-01:22, else from the device named
 * pi-01 holding port 22. Everything else is refused with one log line
 * (and an audit "deny" event) saying why.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "relay.h"

#define OPERATOR_MAX_GRAVES	16

/* The key's expiry-time passed: its channels close with the session. */
static void
operator_expired(evutil_socket_t fd, short what, void *arg)
{
	struct session *sess = arg;

	session_close(sess, "key expired (expiry-time)");
}

/*
 * An operator key authenticated: at most max_sessions_per_operator
 * sessions per key (refused past it: an operator's other terminals keep
 * theirs), closed when the key's expiry-time passes.
 */
void
operator_authenticated(struct session *sess, struct authkey *ak)
{
	struct relay *r = sess->relay;
	struct session *s;
	struct timeval tv;
	unsigned long n = 0;
	time_t now = time(NULL);

	sess->operator = 1;
	/*
	 * Channels we closed that the operator does not close stay buried
	 * with what libssh buffered for them (up to one window): an
	 * operator's session may leave OPERATOR_MAX_GRAVES of them.
	 */
	sess->io.max_graves = OPERATOR_MAX_GRAVES;
	for (s = session_by_fp(sess->fp, NULL); s != NULL;
	    s = session_by_fp(sess->fp, s))
		if (s != sess && s->state == SESSION_ACTIVE && s->operator)
			n++;
	if (n >= r->conf.max_sessions_per_operator) {
		session_close(sess, "operator %s has %lu sessions "
		    "(max_sessions_per_operator)", sess->name, n);
		return;
	}
	if (ak->expiry != 0) {
		sess->ev_expiry = evtimer_new(r->base, operator_expired, sess);
		if (sess->ev_expiry == NULL)
			fatalx("evtimer_new");
		tv.tv_sec = ak->expiry > now ? ak->expiry - now : 0;
		tv.tv_usec = 0;
		evtimer_add(sess->ev_expiry, &tv);
	}
}

/* Is a device of that name in authorized_keys (known, maybe offline)? */
int
operator_known_device(struct relay *r, const char *name)
{
	struct authkey *ak;

	TAILQ_FOREACH(ak, &r->keys, entry)
		if (ak->nopens == 0 && strcmp(ak->name, name) == 0)
			return 1;
	return 0;
}

/*
 * The listener that serves host:port: the named forward, else the port
 * of the device named host. NULL if none is live.
 */
static struct listener *
operator_target(struct relay *r, const char *host, int port)
{
	struct listener *l;

	if ((l = listener_find_name(r, host, port)) != NULL)
		return l;
	if ((l = listener_find(r, port)) != NULL && l->owner != NULL &&
	    l->owner->name != NULL && strcmp(l->owner->name, host) == 0)
		return l;
	return NULL;
}

/*
 * The device is known but offline or silent: accept the channel and hold
 * it (held.c) for the device's next session. -1 with *why if not.
 */
static int
operator_hold(struct session *op, const char *device, int port,
    uint64_t grant, ssh_message msg, const char **why)
{
	struct relay *r = op->relay;
	struct origin o;
	struct audit a;
	struct pump *p;
	struct held *h;
	struct peer *pr;
	uint64_t epoch;
	int fd;

	if ((*why = held_admit(r, device)) != NULL)
		return -1;
	if ((p = conn_op_accept(op, msg, &fd, why)) == NULL)
		return -1;
	conn_origin(op, &o);
	if ((h = held_add(r, device, port, NULL, fd, op, p, &o, NULL,
	    why)) != NULL)
		h->grant = grant;
	pr = cluster_route(r, device, &epoch);
	audit_init(&a, "open", op->name, op->fp, op->peer, op->peer_port,
	    device, port, pr != NULL ? "to the relay holding the device" :
	    "held: device offline or silent");
	a.grant = grant;
	a.via = pr != NULL ? pr->id : NULL;
	audit_event(r, &a, 0, "device %s: operator %s (%s port %d) channel to "
	    "%s:%d %s%s", device, op->name, op->peer, op->peer_port, device,
	    port, pr != NULL ? "via relay " : "held", pr != NULL ? pr->id : "");
	if (pr != NULL)
		peer_serve_held(r);
	pump_kick(p);
	return 0;
}

/*
 * A direct-tcpip channel from a peer relay of the cluster: an operator of
 * that relay (who it is and from where is in the originator field, see
 * conn_link_origin) for a device that relay's directory says is here. The
 * peer checked the operator's permissions; here it is served when the
 * device's session is live, else refused, and the peer holds it.
 */
static int
operator_peer_open(struct session *sess, ssh_message msg)
{
	struct relay *r = sess->relay;
	const char *host, *orig, *why = NULL;
	struct listener *l;
	struct origin o;
	char buf[512], *fp, *gr, *name, target[300];
	unsigned long long grant;
	int port;

	host = ssh_message_channel_request_open_destination(msg);
	port = ssh_message_channel_request_open_destination_port(msg);
	orig = ssh_message_channel_request_open_originator(msg);
	snprintf(target, sizeof target, "%s", host ? esc(host) : "");
	snprintf(buf, sizeof buf, "%s", orig ? orig : "");
	memset(&o, 0, sizeof o);
	if ((fp = strchr(buf, ' ')) == NULL || (*fp++ = '\0',
	    (gr = strchr(fp, ' ')) == NULL) || (*gr++ = '\0',
	    (name = strchr(gr, ' ')) == NULL)) {
		log_warnx("relay %s: channel to %s:%d without an operator; "
		    "refused", sess->name, target, port);
		return 1;
	}
	*name++ = '\0';
	grant = strtoull(gr, NULL, 10);
	o.operator = name;
	o.operator_fp = fp;
	o.peer = buf;
	o.peer_port = ssh_message_channel_request_open_originator_port(msg);
	o.via = sess->name + strlen("relay ");
	if ((l = operator_target(r, host ? host : "", port)) == NULL ||
	    l->owner == NULL || l->owner->state != SESSION_ACTIVE ||
	    l->owner->displaced || session_silent(l->owner))
		why = "device not live on this relay";
	else if (conn_direct(sess, l->owner, port, l->bind_req, target, grant,
	    msg, &o, &why) == 0)
		return 0;
	log_info("relay %s: operator %s (%s port %d) channel to %s:%d not "
	    "served here: %s", o.via, esc(name), o.peer, o.peer_port, target,
	    port, why);
	return 1;
}

/*
 * May sess open host:port? NULL if so (*grant: the grant it opens under,
 * 0 for its own key's permitopen), else why not. Any listed key may hold
 * a grant; only an operator key has permitopen of its own.
 */
static const char *
operator_permits(struct session *sess, struct authkey *ak, const char *host,
    int port, uint64_t *grant)
{
	const char *why = NULL;
	struct grant *g;

	*grant = 0;
	if (ak == NULL)
		return "key no longer listed";
	if (authkey_expired(ak, time(NULL)))
		return "key expired (expiry-time)";
	if (host == NULL)
		return "no destination";
	if (sess->operator && authkey_may_open(ak, host, port))
		return NULL;
	if ((g = grant_permits(sess->relay, sess, host, port, &why)) != NULL) {
		*grant = g->id;
		g->opened++;
		g->dirty = 1;
		return NULL;
	}
	if (why != NULL)
		return why;
	return sess->operator ? "not permitted by this key's permitopen or "
	    "a grant" : "not an operator key (no permitopen) and no grant: "
	    "devices open nothing";
}

/*
 * A direct-tcpip channel open. Returns 0 when handled (accepted), 1 for
 * libssh's default reply (refused).
 */
int
operator_open(struct session *sess, ssh_message msg)
{
	struct relay *r = sess->relay;
	const char *host, *why = NULL;
	struct authkey *ak;
	struct listener *l = NULL;
	struct audit a;
	char target[300];
	uint64_t grant = 0;
	int port;

	if (sess->peer_relay)
		return operator_peer_open(sess, msg);
	host = ssh_message_channel_request_open_destination(msg);
	port = ssh_message_channel_request_open_destination_port(msg);
	snprintf(target, sizeof target, "%s", host ? esc(host) : "");
	ak = session_authkey(sess);
	if ((why = operator_permits(sess, ak, host, port, &grant)) != NULL)
		;
	else if ((l = operator_target(r, host, port)) == NULL ||
	    l->owner == NULL || l->owner->state != SESSION_ACTIVE ||
	    (session_silent(l->owner) && r->conf.hold_time > 0)) {
		if (l == NULL && !operator_known_device(r, host))
			why = "unknown device";
		else if (operator_hold(sess, target, port, grant, msg,
		    &why) == 0)
			return 0;
	}
	if (why == NULL && conn_direct(sess, l->owner, port, l->bind_req,
	    target, grant, msg, NULL, &why) == 0)
		return 0;
	audit_init(&a, "deny", sess->operator || grant ? sess->name : NULL,
	    sess->fp, sess->peer, sess->peer_port, target, port, why);
	r->refused++;
	audit_event(r, &a, 0, "%s %s (%s port %d): refused channel to %s:%d: "
	    "%s", sess->operator ? "operator" : "device", sess->name,
	    sess->peer, sess->peer_port, target, port, why);
	return 1;
}
