/* One SSH connection on the relay: handshake, auth, requests, keepalive. */
#include <sys/socket.h>
#include <netinet/in.h>
#include <linux/tcp.h>

#include <stddef.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>

#include "relay.h"

static void session_io(void *, short);
static void session_answer_request(ssh_session, ssh_message, void *);
static void session_timer(evutil_socket_t, short, void *);
static int session_auth_peer(struct session *, const char *, char);
static void session_keepalive(struct session *);

/* The authorized_keys entry of this (authenticated) session, if still there. */
struct authkey *
session_authkey(struct session *sess)
{
	if (sess->fp == NULL)
		return NULL;
	return authkey_index_fp(&sess->relay->keyidx, sess->fp);
}

/*
 * Authenticated sessions by key fingerprint, oldest first, so that what a
 * login asks about its own key (max_sessions_per_key, a clone, the
 * operator's sessions) does not walk the whole fleet.
 */
#define SESSION_BUCKETS	16384
static struct session *session_byfp[SESSION_BUCKETS];

static void
session_index_add(struct session *sess)
{
	struct session **pp;

	pp = &session_byfp[str_hash(sess->fp) % SESSION_BUCKETS];
	while (*pp != NULL)
		pp = &(*pp)->fpnext;
	*pp = sess;
	sess->fpnext = NULL;
	sess->indexed = 1;
}

static void
session_index_del(struct session *sess)
{
	struct session **pp;

	if (!sess->indexed)
		return;
	for (pp = &session_byfp[str_hash(sess->fp) % SESSION_BUCKETS];
	    *pp != NULL; pp = &(*pp)->fpnext)
		if (*pp == sess) {
			*pp = sess->fpnext;
			break;
		}
	sess->indexed = 0;
}

/*
 * The first authenticated session of key fp (after: the one after that),
 * oldest first; NULL when there is none (more).
 */
struct session *
session_by_fp(const char *fp, struct session *after)
{
	struct session *s;

	s = after != NULL ? after->fpnext :
	    session_byfp[str_hash(fp) % SESSION_BUCKETS];
	for (; s != NULL; s = s->fpnext)
		if (strcmp(s->fp, fp) == 0)
			return s;
	return NULL;
}

/* Deferred free: runs from the loop, never inside a libssh callback. */
static void
session_free_cb(evutil_socket_t fd, short what, void *arg)
{
	session_free(arg);
}

/* Release everything; the session must already be closed. */
void
session_free(struct session *sess)
{
	if (!sess->link)
		TAILQ_REMOVE(&sess->relay->sessions, sess, entry);
	session_index_del(sess);
	conn_release_ops(sess);		/* an operator's channels */
	sshio_clear(&sess->io);		/* buried connections go first */
	conn_free_all(sess);
	ssh_disconnect(sess->s);
	ssh_free(sess->s);		/* closes libssh's copy of the socket */
	close(sess->io.fd);
	event_free(sess->ev_timer);
	event_free(sess->ev_free);
	if (sess->ev_expiry != NULL)
		event_free(sess->ev_expiry);
	free(sess->name);
	free(sess->fp);
	free(sess);
}

/* The one close path: log device, reason and bytes; free later. */
void
session_close(struct session *sess, const char *fmt, ...)
{
	struct relay *r = sess->relay;
	uint64_t from_dev, to_dev;
	char why[256];
	va_list ap;

	if (sess->state == SESSION_CLOSING)
		return;
	va_start(ap, fmt);
	vsnprintf(why, sizeof why, fmt, ap);
	va_end(ap);
	if (sess->state != SESSION_ACTIVE && !sess->link) {
		r->nunauth--;
		penalty_unauth(r, sess->peer, -1);
		server_throttle(r);
	}
	conn_bytes(sess, &from_dev, &to_dev);
	if (sess->state == SESSION_ACTIVE && !sess->link &&
	    !sess->peer_relay && !sess->operator) {
		cluster_session_down(sess);
		devices_session_closed(sess, from_dev, to_dev);
		usage_sample(sess);	/* its last bytes, before they go */
	}
	if (sess->link || sess->peer_relay)
		log_info("cluster: %s %s (%s port %d) closed: %s; %u channels, "
		    "up %lld s", sess->link ? "link to" : "link from",
		    sess->name, sess->peer, sess->peer_port, why,
		    sess->link ? sess->nconns : sess->nopconns,
		    (long long)(time(NULL) - sess->since));
	else if (sess->operator)
		log_info("operator %s (%s port %d) closed: %s; %u channels "
		    "open, up %lld s", sess->name, sess->peer, sess->peer_port,
		    why, sess->nopconns, (long long)(time(NULL) - sess->since));
	else if (sess->name != NULL)
		log_info("device %s (%s port %d) closed: %s; %llu bytes from "
		    "device, %llu to device, up %lld s", sess->name, sess->peer,
		    sess->peer_port, why, (unsigned long long)from_dev,
		    (unsigned long long)to_dev,
		    (long long)(time(NULL) - sess->since));
	else
		log_info("connection from %s port %d closed before "
		    "authentication: %s", sess->peer, sess->peer_port, why);
	conn_close_all(sess, "device session closed");
	conn_close_ops(sess, why);
	held_drop_operator(sess);	/* any key may open under a grant */
	sess->state = SESSION_CLOSING;
	session_index_del(sess);
	if (sess->ev_expiry != NULL)
		event_del(sess->ev_expiry);
	listener_release(sess);
	if (r->nheld > 0)
		held_serve_live(r);	/* its successor may be here already */
	event_del(sess->ev_timer);
	event_del(sess->io.ev_rd);
	event_del(sess->io.ev_wr);
	if (sess->link)
		peer_link_closed(sess);
	event_active(sess->ev_free, EV_TIMEOUT, 0);
}

/* Count a failed auth attempt; too many closes the connection. */
static void
session_auth_failed(struct session *sess)
{
	penalty_auth_failed(sess->relay, sess->peer);
	if (++sess->auth_tries >= sess->relay->conf.max_auth_tries) {
		session_close(sess, "too many authentication attempts (%u)",
		    sess->auth_tries);
		/*
		 * libssh goes on answering the requests it has already
		 * read in this pass; with the socket shut, none of those
		 * answers reaches the client: the limit is the limit.
		 */
		shutdown(sess->io.fd, SHUT_RDWR);
	}
}

/*
 * At most max_sessions_per_key authenticated sessions per key: the newest
 * wins, as it does for ports (a rebooted device's old sessions are dead).
 */
static void
session_limit_key(struct session *sess)
{
	struct relay *r = sess->relay;
	struct session *s, *oldest;
	unsigned long n;

	for (;;) {
		n = 0;
		oldest = NULL;
		for (s = session_by_fp(sess->fp, NULL); s != NULL;
		    s = session_by_fp(sess->fp, s)) {
			if (s->state != SESSION_ACTIVE || s->operator)
				continue;
			n++;
			if (s != sess && oldest == NULL)
				oldest = s;	/* the index is oldest first */
		}
		if (n <= r->conf.max_sessions_per_key || oldest == NULL)
			return;
		session_close(oldest, "replaced by a newer session from %s "
		    "port %d (max_sessions_per_key %lu)", sess->peer,
		    sess->peer_port, r->conf.max_sessions_per_key);
	}
}

/*
 * A peer relay of the cluster logs in with the cluster's host key; the
 * login name is its relay_id. It opens channels to devices here for its
 * operators (operator.c, operator_peer_open).
 */
static int
session_auth_peer(struct session *sess, const char *user, char state)
{
	struct relay *r = sess->relay;
	struct timeval tv = { (time_t)r->conf.keepalive_interval, 0 };
	char id[64];

	if (state == SSH_PUBLICKEY_STATE_NONE)
		return SSH_AUTH_SUCCESS;	/* probe: PK_OK */
	if (state != SSH_PUBLICKEY_STATE_VALID) {
		log_info("bad signature for the cluster's host key from %s",
		    sess->peer);
		session_auth_failed(sess);
		return SSH_AUTH_DENIED;
	}
	snprintf(id, sizeof id, "%s", user ? user : "");
	id[strspn(id, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	    "0123456789._-")] = '\0';
	if (asprintf(&sess->name, "relay %s", *id ? id : "?") == -1)
		fatalx("asprintf");
	sess->fp = xstrdup(r->host_fp);
	sess->peer_relay = 1;
	sess->io.max_graves = SSHIO_MAX_GRAVES;
	sess->state = SESSION_ACTIVE;
	sess->since = time(NULL);
	r->nunauth--;
	penalty_unauth(r, sess->peer, -1);
	server_throttle(r);
	log_info("cluster: relay %s logged in from %s port %d", id,
	    sess->peer, sess->peer_port);
	event_del(sess->ev_timer);
	event_add(sess->ev_timer, &tv);
	sess->last_in_packets = sess->rcount.in_packets;
	return SSH_AUTH_SUCCESS;
}

/* Public key auth: the key is the device's identity; the user is ignored. */
static int
session_auth_pubkey(ssh_session s, const char *user, struct ssh_key_struct *key,
    char state, void *arg)
{
	struct session *sess = arg;
	struct relay *r = sess->relay;
	struct authkey *ak;
	const char *why;
	char *fp;
	int quiet;

	sess->kex_done = 1;
	if (sess->state == SESSION_CLOSING)
		return SSH_AUTH_DENIED;
	if (r->cluster != NULL && r->host_priv != NULL &&
	    ssh_key_cmp(key, r->host_priv, SSH_KEY_CMP_PUBLIC) == 0)
		return session_auth_peer(sess, user, state);
	if ((ak = authkey_index_key(&r->keyidx, key)) == NULL) {
		fp = key_fingerprint(key);
		log_info("refused key %s from %s port %d (user \"%s\"): not in "
		    "authorized_keys", fp, sess->peer, sess->peer_port,
		    esc(user));
		free(fp);
		r->refused++;
		session_auth_failed(sess);
		return SSH_AUTH_DENIED;
	}
	if (!authkey_from_ok(ak, sess->peer)) {
		log_info("refused key %s (%s) from %s: address not allowed by "
		    "from=\"%s\"", ak->fp, ak->name, sess->peer, ak->from);
		r->refused++;
		session_auth_failed(sess);
		return SSH_AUTH_DENIED;
	}
	if (authkey_expired(ak, time(NULL))) {
		log_info("refused key %s (%s) from %s: expired (expiry-time)",
		    ak->fp, ak->name, sess->peer);
		r->refused++;
		session_auth_failed(sess);
		return SSH_AUTH_DENIED;
	}
	if (state == SSH_PUBLICKEY_STATE_NONE)
		return SSH_AUTH_SUCCESS;	/* probe: PK_OK */
	if (state != SSH_PUBLICKEY_STATE_VALID) {
		log_info("bad signature for key %s (%s) from %s", ak->fp,
		    ak->name, sess->peer);
		session_auth_failed(sess);
		return SSH_AUTH_DENIED;
	}
	if (ak->nopens == 0 && (why = devices_clone_check(r, sess, ak->fp,
	    &quiet)) != NULL) {
		/* not a failed login: no penalty for a shared CGNAT address */
		if (!quiet)
			log_warnx("refused key %s (%s) from %s port %d: %s",
			    ak->fp, ak->name, sess->peer, sess->peer_port, why);
		r->refused++;
		session_close(sess, "key in use elsewhere (clone)");
		shutdown(sess->io.fd, SHUT_RDWR);
		return SSH_AUTH_DENIED;
	}
	sess->name = xstrdup(ak->name);
	sess->fp = xstrdup(ak->fp);
	sess->state = SESSION_ACTIVE;
	session_index_add(sess);
	sess->since = time(NULL);
	r->nunauth--;
	penalty_unauth(r, sess->peer, -1);
	server_throttle(r);
	log_info("%s %s authenticated from %s port %d (key %s)",
	    ak->nopens > 0 ? "operator" : "device", sess->name, sess->peer,
	    sess->peer_port, sess->fp);
	if (ak->nopens > 0)
		operator_authenticated(sess, ak);
	else {
		usage_attach(sess);
		session_limit_key(sess);
		if (sess->state == SESSION_ACTIVE)
			cluster_session_up(sess);
	}
	{
		struct timeval tv = { (time_t)r->conf.keepalive_interval, 0 };

		event_del(sess->ev_timer);
		event_add(sess->ev_timer, &tv);
	}
	sess->last_in_packets = sess->rcount.in_packets;
	return SSH_AUTH_SUCCESS;
}

/* The name of an authentication method, for the log. */
static const char *
session_auth_method(int m)
{
	switch (m) {
	case SSH_AUTH_METHOD_INTERACTIVE: return "keyboard-interactive";
	case SSH_AUTH_METHOD_PASSWORD: return "password";
	case SSH_AUTH_METHOD_HOSTBASED: return "hostbased";
	case SSH_AUTH_METHOD_GSSAPI_MIC: return "gssapi";
	case SSH_AUTH_METHOD_PUBLICKEY: return "publickey";
	default: return "unknown";
	}
}

/*
 * Every other request the callbacks above do not take (direct-tcpip for
 * ssh -L, x11, agent forwarding, ...): logged, then refused by libssh's
 * default reply.
 */
static int
session_other_message(ssh_session s, ssh_message msg, void *arg)
{
	struct session *sess = arg;

	const char *what;

	switch (ssh_message_type(msg)) {
	case SSH_REQUEST_AUTH:
		/*
		 * keyboard-interactive, hostbased, gssapi...: no callback
		 * takes them, libssh answers failure; each one counts.
		 */
		sess->kex_done = 1;
		if (sess->state != SESSION_CLOSING) {
			log_info("%s port %d: refused %s authentication (user "
			    "\"%s\")", sess->peer, sess->peer_port,
			    session_auth_method(ssh_message_subtype(msg)),
			    esc(ssh_message_auth_user(msg)));
			session_auth_failed(sess);
		}
		return 1;
	case SSH_REQUEST_CHANNEL:
		/*
		 * A request on a channel we closed (or that is not open) is
		 * not answered: a reply after our CLOSE is a protocol error
		 * for strict peers. On an open channel: refused.
		 */
		if (sshio_closed_channel(ssh_message_channel_request_channel(
		    msg)))
			return 0;
		return 1;
	case SSH_REQUEST_CHANNEL_OPEN:
		if (ssh_message_subtype(msg) == SSH_CHANNEL_DIRECT_TCPIP &&
		    sess->state == SESSION_ACTIVE)
			return operator_open(sess, msg);
		break;
	default:
		return 1;
	}
	switch (ssh_message_subtype(msg)) {
	case SSH_CHANNEL_DIRECT_TCPIP: what = "direct-tcpip (ssh -L/-J)"; break;
	case SSH_CHANNEL_FORWARDED_TCPIP: what = "forwarded-tcpip"; break;
	case SSH_CHANNEL_X11: what = "x11"; break;
	case SSH_CHANNEL_AUTH_AGENT: what = "agent forwarding"; break;
	default: what = "unknown"; break;
	}
	log_info("%s (%s port %d): refused a %s channel (the relay only takes "
	    "reverse forwards)", sess->name ? sess->name :
	    "unauthenticated client", sess->peer, sess->peer_port, what);
	return 1;
}

/* A shell or command session is never opened: the relay only forwards. */
static ssh_channel
session_open_session(ssh_session s, void *arg)
{
	struct session *sess = arg;

	log_info("%s (%s port %d): refused a shell/exec session (the relay "
	    "only takes reverse forwards; use ssh -N)", sess->name ?
	    sess->name : "unauthenticated client", sess->peer, sess->peer_port);
	return NULL;
}

/*
 * "none" is refused. The first one is how OpenSSH clients ask which methods
 * exist, so it is not a failure (as in sshd); counting it penalized every
 * successful stock-ssh login and blocked a CGNAT address after 10 logins.
 */
static int
session_auth_none(ssh_session s, const char *user, void *arg)
{
	struct session *sess = arg;

	sess->kex_done = 1;
	if (sess->state != SESSION_CLOSING && sess->none_seen++ > 0)
		session_auth_failed(sess);
	return SSH_AUTH_DENIED;
}

/* Password auth is never accepted; every attempt counts. */
static int
session_auth_password(ssh_session s, const char *user, const char *pw,
    void *arg)
{
	struct session *sess = arg;

	sess->kex_done = 1;
	if (sess->state != SESSION_CLOSING)
		session_auth_failed(sess);
	return SSH_AUTH_DENIED;
}

/*
 * libssh up to 0.10.6 hands the message to this callback and then frees
 * only the message struct, leaking the bind address string of every
 * (cancel-)tcpip-forward request; the string is ours to free once the
 * request is answered.
 */
static void
session_request_done(ssh_message msg)
{
#if LIBSSH_VERSION_INT <= SSH_VERSION_INT(0, 10, 6)
	int t = ssh_message_subtype(msg);

	if (t == SSH_GLOBAL_REQUEST_TCPIP_FORWARD ||
	    t == SSH_GLOBAL_REQUEST_CANCEL_TCPIP_FORWARD)
		free((char *)ssh_message_global_request_address(msg));
#else
#endif
}

/* tcpip-forward, cancel-tcpip-forward, keepalive; refuse the rest. */
static void
session_global_request(ssh_session s, ssh_message msg, void *arg)
{
	session_answer_request(s, msg, arg);
	session_request_done(msg);
}

/* Answer one global request (the message is freed by libssh after). */
static void
session_answer_request(ssh_session s, ssh_message msg, void *arg)
{
	struct session *sess = arg;
	const char *addr, *why = NULL;
	int port;

	switch (ssh_message_subtype(msg)) {
	case SSH_GLOBAL_REQUEST_TCPIP_FORWARD:
		addr = ssh_message_global_request_address(msg);
		port = ssh_message_global_request_port(msg);
		if (sess->state != SESSION_ACTIVE) {
			ssh_message_reply_default(msg);
			return;
		}
		if (listener_request(sess, addr ? addr : "", port,
		    &why) == 0) {
			ssh_message_global_request_reply_success(msg,
			    (uint16_t)port);
			return;
		}
		sess->relay->refused++;
		log_warnx("%s %s (%s): refused forward of port %d "
		    "(bind address \"%s\"): %s", sess->operator ? "operator" :
		    "device", sess->name, sess->peer, port, esc(addr), why);
		ssh_message_reply_default(msg);
		return;
	case SSH_GLOBAL_REQUEST_CANCEL_TCPIP_FORWARD:
		addr = ssh_message_global_request_address(msg);
		port = ssh_message_global_request_port(msg);
		if (sess->state == SESSION_ACTIVE &&
		    listener_cancel(sess, addr ? addr : "", port) == 0) {
			ssh_message_global_request_reply_success(msg, 0);
			return;
		}
		log_info("%s (%s): refused to cancel port %d: not held by this "
		    "session", sess->name ? sess->name : "unauthenticated",
		    sess->peer, port);
		ssh_message_reply_default(msg);
		return;
	case SSH_GLOBAL_REQUEST_KEEPALIVE:
		/* the device probes us: its probe and our answer are
		 * keepalive bytes on its link (usage.c) */
		sess->ka_probes_in++;
		sess->ka_answers_out++;	/* OpenSSH, dropbear: want-reply */
		ssh_message_reply_default(msg);
		return;
	default:
		/* keepalive@openssh.com and unknown requests: a failure
		 * reply, which is what OpenSSH's sshd answers too. */
		ssh_message_reply_default(msg);
		return;
	}
}

static void session_ka_answered(struct session *);

/*
 * Send keepalive@openssh.com. libssh keeps one pending-reply slot: the call
 * after an answered probe only clears the slot and sends nothing, so a
 * second call is made when the first sent no packet. While a probe is
 * unanswered neither call sends, so there is never a second one in flight.
 */
static void
session_keepalive(struct session *sess)
{
	uint64_t before = sess->rcount.out_packets;
	uint64_t in_before = sess->rcount.in_packets;
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	ssh_send_keepalive(sess->s);
	if (sess->rcount.out_packets == before)
		ssh_send_keepalive(sess->s);
	if (sess->rcount.out_packets != before) {
		sess->ka_probes_out++;
		sess->ka_sent = now;
		/*
		 * libssh may read the answer inside the call (a slow
		 * relay): counted from before it, so it is not lost.
		 */
		sess->ka_sent_packets = in_before;
		if (sess->rcount.in_packets != in_before && !sess->displaced &&
		    !sess->moving)
			session_ka_answered(sess);
	}
}

/* The device answered (or said something since) our probe. */
static void
session_ka_answered(struct session *sess)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	sess->rtt_ms = (now.tv_sec - sess->ka_sent.tv_sec) * 1000 +
	    (now.tv_nsec - sess->ka_sent.tv_nsec) / 1000000;
	sess->ka_sent.tv_sec = 0;
	sess->ka_answers_in++;
	if (sess->relay->nheld > 0)
		listener_serve_held(sess);	/* not silent now */
}

static void session_keepalive(struct session *);

#define DISPLACE_GRACE	2	/* s a displaced session has to answer */

/*
 * A newer session of the same key took a port over: the old one has lost
 * it already. Did the old one still live (two copies of one key at once,
 * a cloned image) or was it a dead half-open one (a reboot)? It gets one
 * keepalive probe and DISPLACE_GRACE s: an answer is a live copy
 * (devices_displaced), closed at once; silence, a dead one, closed when
 * the time is up.
 */
void
session_displace(struct session *old, struct session *sess)
{
	struct timeval tv = { DISPLACE_GRACE, 0 };

	if (old->displaced || old->state != SESSION_ACTIVE)
		return;
	old->displaced = 1;
	snprintf(old->displaced_by, sizeof old->displaced_by, "%s port %d",
	    sess->peer, sess->peer_port);
	conn_rehold_opening(old, "replaced by a new session");
	if (old->relay->nheld > 0)
		held_serve_live(old->relay);
	session_keepalive(old);
	if (sshio_flush(&old->io) == -1) {
		session_close(old, "replaced by a new session from %s",
		    old->displaced_by);
		return;
	}
	event_del(old->ev_timer);
	event_add(old->ev_timer, &tv);
}

/*
 * The device came up on another relay of the cluster (cluster.c): either
 * this session is the dead half of a reboot, or the device keeps sessions
 * to two relays (an agent with relays_active = 2). It gets one keepalive
 * probe and DISPLACE_GRACE s: silence closes it (its unanswered channels
 * follow the device to the other relay); an answer keeps it.
 */
void
session_probe_moved(struct session *s, const char *relay, uint64_t epoch)
{
	struct timeval tv = { DISPLACE_GRACE, 0 };

	if (s->moving || s->displaced || s->state != SESSION_ACTIVE)
		return;
	s->moving = 1;
	snprintf(s->displaced_by, sizeof s->displaced_by, "relay %s (epoch "
	    "%llu)", relay, (unsigned long long)epoch);
	session_keepalive(s);
	if (sshio_flush(&s->io) == -1) {
		s->moved = 1;
		session_close(s, "taken over by %s", s->displaced_by);
		return;
	}
	event_del(s->ev_timer);
	event_add(s->ev_timer, &tv);
}

/*
 * Did segments come from the device since the last tick while we sent
 * nothing (so they are not ACKs of ours)? A device that watches its link
 * with TCP probes (simtun-agent) sends one every idle interval; it is
 * alive as far as the network can tell, and an SSH probe of ours would
 * only double the bytes on its cellular link.
 */
static int
session_tcp_heard(struct session *sess)
{
	struct tcp_info ti;
	socklen_t len = sizeof ti;
	uint64_t out = sess->scount.out_bytes;
	int heard = 0;

	memset(&ti, 0, sizeof ti);
	if (getsockopt(sess->io.fd, IPPROTO_TCP, TCP_INFO, &ti, &len) == -1 ||
	    len < offsetof(struct tcp_info, tcpi_segs_in) +
	    sizeof ti.tcpi_segs_in)
		return 0;
	if (out == sess->tick_out_bytes && ti.tcpi_segs_in != sess->tick_segs_in)
		heard = 1;
	sess->tick_out_bytes = out;
	sess->tick_segs_in = ti.tcpi_segs_in;
	return heard;
}

/* Login grace and keepalives share one timer per session. */
static void
session_timer(evutil_socket_t fd, short what, void *arg)
{
	struct session *sess = arg;
	struct relay *r = sess->relay;
	struct timeval tv = { (time_t)r->conf.keepalive_interval, 0 };
	int heard;

	if (sess->state == SESSION_CLOSING)
		return;
	if (sess->state != SESSION_ACTIVE) {
		session_close(sess, "login grace time (%lu s) exceeded",
		    r->conf.login_grace_time);
		return;
	}
	if (sess->displaced) {
		session_close(sess, "replaced by a new session from %s (this "
		    "one did not answer: gone)", sess->displaced_by);
		return;
	}
	if (sess->moving) {
		sess->moved = 1;
		cluster_moved(sess);
		session_close(sess, "taken over by %s (this session did not "
		    "answer: gone)", sess->displaced_by);
		return;
	}
	/*
	 * Like sshd's ClientAlive: a device heard from during the last
	 * interval is alive and is not probed; a silent one is probed, and
	 * closed after keepalive_count_max silent intervals.
	 */
	heard = sess->rcount.in_packets != sess->last_in_packets;
	sess->last_in_packets = sess->rcount.in_packets;
	if (session_tcp_heard(sess) && !heard && sess->ka_missed == 0)
		heard = 1;	/* the device's own TCP probes */
	if (heard)
		sess->ka_missed = 0;
	else if (++sess->ka_missed >= r->conf.keepalive_count_max) {
		r->ka_failures++;
		session_close(sess, "no answer to %u keepalives",
		    sess->ka_missed);
		return;
	}
	if (!heard)
		session_keepalive(sess);
	if (sshio_flush(&sess->io) == -1) {
		session_close(sess, "write failed");
		return;
	}
	event_add(sess->ev_timer, &tv);
}

/* Readiness on the device's socket: advance handshake or process packets. */
static void
session_io(void *arg, short what)
{
	struct session *sess = arg;
	int rc;

	if (sess->state == SESSION_CLOSING)
		return;
	if (sess->state == SESSION_KEX) {
		rc = ssh_handle_key_exchange(sess->s);
		if (rc == SSH_ERROR) {
			session_close(sess, "key exchange failed: %s",
			    esc(ssh_get_error(sess->s)));
			return;
		}
		if (sess->state == SESSION_CLOSING)
			return;
		if (rc == SSH_AGAIN && !sess->kex_done) {
			net_nonblock(sess->io.fd);
			if (sshio_flush(&sess->io) == -1)
				session_close(sess, "write failed");
			return;
		}
		if (sess->state == SESSION_KEX)
			sess->state = SESSION_AUTH;
		if (sshio_attach(&sess->io) == -1) {
			session_close(sess, "cannot set up session events");
			return;
		}
	}
	session_pass(sess);
}

/*
 * One pass over a session past its handshake: process what came, answer
 * keepalives, move connections' bytes, flush.
 */
void
session_pass(struct session *sess)
{
	if (sshio_poll(&sess->io) == -1) {
		const char *e = ssh_get_error(sess->s);

		if (e == NULL || *e == '\0' || strstr(e, "disconnected") ||
		    strstr(e, "Socket error: disconnected"))
			session_close(sess, "connection closed by the %s%s%s",
			    sess->operator ? "operator" : sess->link ||
			    sess->peer_relay ? "relay" : "device",
			    e && *e ? ": " : "", esc(e));
		else
			session_close(sess, "%s", esc(e));
		return;
	}
	if (sess->state == SESSION_CLOSING)
		return;
	if (sess->displaced && sess->ka_sent.tv_sec != 0 &&
	    sess->rcount.in_packets != sess->ka_sent_packets) {
		devices_displaced(sess);	/* it answered: a live copy */
		session_close(sess, "replaced by a new session from %s",
		    sess->displaced_by);
		return;
	}
	if (sess->moving && sess->ka_sent.tv_sec != 0 &&
	    sess->rcount.in_packets != sess->ka_sent_packets) {
		struct timeval tv = { (time_t)
		    sess->relay->conf.keepalive_interval, 0 };

		/* it answered: the device is on both relays */
		sess->moving = 0;
		log_info("device %s: also on %s; this session answered, both "
		    "are kept", sess->name, sess->displaced_by);
		event_del(sess->ev_timer);
		event_add(sess->ev_timer, &tv);
	}
	if (sess->state == SESSION_ACTIVE && sess->ka_sent.tv_sec != 0 &&
	    sess->rcount.in_packets != sess->ka_sent_packets)
		session_ka_answered(sess);
	if (sess->state == SESSION_ACTIVE)
		conn_kick_all(sess);
	if (sess->state == SESSION_ACTIVE)
		conn_kick_ops(sess);
	if (sess->state != SESSION_CLOSING)
		sshio_sweep(&sess->io);
	if (sess->state != SESSION_CLOSING && sess->io.violation[0] != '\0') {
		session_close(sess, "protocol violation: %s",
		    sess->io.violation);
		return;
	}
	if (sess->state != SESSION_CLOSING && sshio_flush(&sess->io) == -1)
		session_close(sess, "write failed");
}

/* A session to or from peer:port, not yet started (session_start). */
static struct session *
session_alloc(struct relay *r, const char *peer, int port)
{
	struct session *sess;

	sess = xcalloc(1, sizeof *sess);
	sess->relay = r;
	sess->id = ++r->next_id;
	snprintf(sess->peer, sizeof sess->peer, "%s", peer);
	sess->peer_port = port;
	sess->since = time(NULL);
	sess->rtt_ms = -1;
	TAILQ_INIT(&sess->conns);
	TAILQ_INIT(&sess->opconns);
	TAILQ_INIT(&sess->owned);
	if ((sess->s = ssh_new()) == NULL)
		fatalx("ssh_new");
	return sess;
}

/* Undo session_alloc (the session never started). */
static void
session_unalloc(struct session *sess)
{
	ssh_free(sess->s);
	free(sess);
}

/*
 * Start the session on fd, driven by io: non-blocking, the socket's TCP
 * options, counters, the login grace timer, readiness events.
 */
static void
session_start(struct session *sess, int fd, void (*io)(void *, short),
    void *arg)
{
	struct relay *r = sess->relay;
	struct timeval tv = { (time_t)r->conf.login_grace_time, 0 };

	ssh_set_blocking(sess->s, 0);
	net_keepalive(fd);
	net_user_timeout(fd, (unsigned int)(r->conf.keepalive_interval *
	    r->conf.keepalive_count_max * 1000));
	ssh_set_counters(sess->s, &sess->scount, &sess->rcount);
	sess->ev_timer = evtimer_new(r->base, session_timer, sess);
	sess->ev_free = event_new(r->base, -1, 0, session_free_cb, sess);
	if (sess->ev_timer == NULL || sess->ev_free == NULL)
		fatalx("event_new");
	evtimer_add(sess->ev_timer, &tv);
	sshio_init(&sess->io, r->base, sess->s, fd, io, arg);
	sess->state = SESSION_KEX;
}

/*
 * A new TCP connection on the SSH port: bounded unauthenticated work. fd
 * is ours (events), sshfd its copy for libssh (server_accept_cb).
 */
void
session_accept(struct relay *r, int fd, int sshfd, struct sockaddr *sa)
{
	struct session *sess;
	const char *why;
	char addr[64];
	int port;

	net_addrstr(sa, addr, sizeof addr, &port);
	if (r->quitting) {
		close(sshfd);
		close(fd);
		return;
	}
	if (penalty_admit(r, addr, &why) == -1) {
		log_warnx("refused connection from %s port %d: %s", addr, port,
		    why);
		r->refused++;
		close(sshfd);
		close(fd);
		return;
	}
	sess = session_alloc(r, addr, port);
	if (ssh_bind_accept_fd(r->bind, sess->s, sshfd) != SSH_OK) {
		log_warnx("connection from %s: %s", addr,
		    ssh_get_error(r->bind));
		if (ssh_get_fd(sess->s) != sshfd)
			close(sshfd);	/* else ssh_free closes it */
		session_unalloc(sess);
		close(fd);
		return;
	}
	net_nonblock(fd);

	sess->scb.userdata = sess;
	sess->scb.auth_pubkey_function = session_auth_pubkey;
	sess->scb.auth_none_function = session_auth_none;
	sess->scb.auth_password_function = session_auth_password;
	sess->scb.channel_open_request_session_function = session_open_session;
	ssh_callbacks_init(&sess->scb);
	ssh_set_server_callbacks(sess->s, &sess->scb);
	sess->cb.userdata = sess;
	sess->cb.global_request_function = session_global_request;
	ssh_callbacks_init(&sess->cb);
	ssh_set_callbacks(sess->s, &sess->cb);
	ssh_set_auth_methods(sess->s, SSH_AUTH_METHOD_PUBLICKEY);
	ssh_set_message_callback(sess->s, session_other_message, sess);
	session_start(sess, fd, session_io, sess);
	r->nunauth++;
	penalty_unauth(r, sess->peer, 1);
	server_throttle(r);
	TAILQ_INSERT_TAIL(&r->sessions, sess, entry);
	log_debug("connection from %s port %d", addr, port);
	session_io(sess, EV_WRITE);
}

/*
 * Our client session to a peer relay (peer.c) on the connected socket fd:
 * set up like a device's, driven by io; not on the relay's sessions list.
 * NULL when libssh says no.
 */
struct session *
session_link_new(struct relay *r, int fd, const char *host, int port,
    void (*io)(void *, short), void *arg)
{
	long nolog = SSH_LOG_NOLOG, proto = SSH_LOG_PROTOCOL;
	struct session *sess;
	unsigned int uport = (unsigned int)port;
	int no = 0, sshfd;

	if ((sshfd = fcntl(fd, F_DUPFD_CLOEXEC, 0)) == -1)
		return NULL;
	sess = session_alloc(r, host, port);
	sess->link = 1;
	ssh_options_set(sess->s, SSH_OPTIONS_PROCESS_CONFIG, &no);
	if (ssh_options_set(sess->s, SSH_OPTIONS_HOST, host) != SSH_OK ||
	    ssh_options_set(sess->s, SSH_OPTIONS_PORT, &uport) != SSH_OK ||
	    ssh_options_set(sess->s, SSH_OPTIONS_USER,
	    r->conf.cluster_relay_id) != SSH_OK ||
	    ssh_options_set(sess->s, SSH_OPTIONS_KNOWNHOSTS, "/dev/null") !=
	    SSH_OK || ssh_options_set(sess->s, SSH_OPTIONS_GLOBAL_KNOWNHOSTS,
	    "/dev/null") != SSH_OK ||
	    ssh_options_set(sess->s, SSH_OPTIONS_FD, &sshfd) != SSH_OK) {
		close(sshfd);
		session_unalloc(sess);
		return NULL;
	}
	ssh_options_set(sess->s, SSH_OPTIONS_LOG_VERBOSITY,
	    log_get_verbose() >= 3 ? &proto : &nolog);
	session_start(sess, fd, io, arg);
	sess->io.max_graves = SSHIO_MAX_GRAVES;
	return sess;
}

/* Our link to a peer relay is up: keepalives from now on. */
void
session_link_up(struct session *sess)
{
	struct timeval tv = { (time_t)sess->relay->conf.keepalive_interval,
	    0 };

	sess->state = SESSION_ACTIVE;
	sess->since = time(NULL);
	event_del(sess->ev_timer);
	event_add(sess->ev_timer, &tv);
	sess->last_in_packets = sess->rcount.in_packets;
}

/*
 * SIGHUP: re-read authorized_keys. Sessions whose key is gone are closed;
 * ports no longer permitted are released; nothing else is touched.
 */
int
session_reload_keys(struct relay *r)
{
	struct authkeys fresh, old;
	struct session *sess, *tmp;
	struct listener *l, *ltmp;
	struct authkey *ak;
	char err[512];
	int n;

	if ((n = authkeys_load(r->conf.authorized_keys, &fresh, err,
	    sizeof err)) == -1) {
		log_warnx("reload: %s; keeping the old keys", err);
		return -1;
	}
	TAILQ_INIT(&old);
	TAILQ_CONCAT(&old, &r->keys, entry);
	TAILQ_CONCAT(&r->keys, &fresh, entry);
	authkey_index_free(&r->keyidx);
	authkey_index_build(&r->keyidx, &r->keys);
	TAILQ_FOREACH_SAFE(sess, &r->sessions, entry, tmp) {
		if (sess->state != SESSION_ACTIVE || sess->peer_relay)
			continue;
		if ((ak = session_authkey(sess)) == NULL) {
			sess->no_linger = 1;
			session_close(sess, "key removed from authorized_keys");
			continue;
		}
		if (!authkey_from_ok(ak, sess->peer)) {
			sess->no_linger = 1;
			session_close(sess, "address no longer allowed by "
			    "from=");
			continue;
		}
		TAILQ_FOREACH_SAFE(l, &sess->owned, sentry, ltmp) {
			if (!authkey_permits(ak, l->bind_req, l->port)) {
				log_info("device %s: port %d no longer "
				    "permitted, closed", sess->name, l->port);
				listener_free(l);
			}
		}
	}
	authkeys_free(&old);
	log_info("reloaded %s: %d keys", r->conf.authorized_keys, n);
	return 0;
}
