/*
 * Links between the relays of a cluster: an operator on this relay whose
 * device is held by another relay reaches it over one SSH connection per
 * peer (ours, as a client, made when first needed), each channel a
 * direct-tcpip to the device's name carrying the operator's identity
 * (conn.c, conn_link_origin). The relays share one host key: we check
 * that the peer presents it and log in with it (the peer's session.c
 * takes that key as a peer relay, session_auth_peer). A link's
 * connections are conns like any other (conn.c): audited, capped, held
 * again when the link goes before the peer answered.
 */
#include <sys/socket.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "relay.h"

#define PEER_CONNECT_TIMEOUT	5	/* s for TCP */
#define PEER_RETRY		2	/* s after a failed link */

/* A relay seen in the directory's heartbeat. */
struct peer *
peer_new(struct relay *r, const char *id)
{
	struct peer *p;

	p = xcalloc(1, sizeof *p);
	p->relay = r;
	snprintf(p->id, sizeof p->id, "%s", id);
	return p;
}

/* The relay left the cluster (or we exit): its link closes. */
void
peer_free(struct peer *p, const char *why)
{
	struct session *link = p->link;

	if (p->ev_connect != NULL) {
		event_free(p->ev_connect);
		close(p->fd);
	}
	if (link != NULL) {
		link->peerp = NULL;
		p->link = NULL;
		session_close(link, "%s", why);
	}
	free(p);
}

const char *
peer_state(struct peer *p)
{
	if (p->link != NULL)
		return p->link->state == SESSION_ACTIVE ? "up" : "connecting";
	return p->ev_connect != NULL ? "connecting" : "none";
}

unsigned int
peer_channels(struct peer *p)
{
	return p->link != NULL ? p->link->nconns : 0;
}

/* The link's session went (session_close): try again later. */
void
peer_link_closed(struct session *link)
{
	struct peer *p = link->peerp;

	if (p == NULL)
		return;
	p->link = NULL;
	link->peerp = NULL;
	p->next_try = time(NULL) + PEER_RETRY;
}

/* A message from a peer we connected to: it opens nothing on our link. */
static int
peer_message(ssh_session s, ssh_message msg, void *arg)
{
	return 1;		/* libssh's default reply: refused */
}

/* Readiness on a link: handshake, login, then passes like any session. */
static void
peer_io(void *arg, short what)
{
	struct session *sess = arg;
	struct relay *r = sess->relay;
	ssh_key key = NULL;
	int rc, same;

	if (sess->state == SESSION_CLOSING)
		return;
	if (sess->state == SESSION_KEX) {
		rc = ssh_connect(sess->s);
		net_nonblock(sess->io.fd);
		if (rc == SSH_AGAIN)
			goto flush;
		if (rc != SSH_OK) {
			session_close(sess, "ssh handshake: %s",
			    esc(ssh_get_error(sess->s)));
			return;
		}
		if (ssh_get_server_publickey(sess->s, &key) != SSH_OK) {
			session_close(sess, "no host key from the relay");
			return;
		}
		same = ssh_key_cmp(key, r->host_priv, SSH_KEY_CMP_PUBLIC) == 0;
		ssh_key_free(key);
		if (!same) {
			session_close(sess, "the relay's host key is not this "
			    "cluster's (the relays of a cluster share one "
			    "host_key)");
			return;
		}
		sess->state = SESSION_AUTH;
	}
	if (sess->state == SESSION_AUTH) {
		rc = ssh_userauth_publickey(sess->s, NULL, r->host_priv);
		net_nonblock(sess->io.fd);
		if (rc == SSH_AUTH_AGAIN)
			goto flush;
		if (rc != SSH_AUTH_SUCCESS) {
			session_close(sess, "the relay refused the cluster's "
			    "host key as a login (is it in a [cluster]?)");
			return;
		}
		if (sshio_attach(&sess->io) == -1) {
			session_close(sess, "cannot set up session events");
			return;
		}
		session_link_up(sess);
		log_info("cluster: link to %s (%s port %d) up", sess->name,
		    sess->peer, sess->peer_port);
		peer_serve_held(r);
		if (sess->state == SESSION_CLOSING)
			return;
	}
	session_pass(sess);
	return;
flush:
	if (sshio_flush(&sess->io) == -1)
		session_close(sess, "write failed");
}

/* TCP to the peer is up (or failed): start SSH. */
static void
peer_connected(evutil_socket_t fd, short what, void *arg)
{
	struct peer *p = arg;
	struct relay *r = p->relay;
	struct session *sess;
	socklen_t len = sizeof (int);
	char *host = NULL, name[80];
	const char *why;
	uint16_t port;
	int err = 0;

	event_free(p->ev_connect);
	p->ev_connect = NULL;
	if (what & EV_TIMEOUT)
		err = ETIMEDOUT;
	else if (getsockopt(p->fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1)
		err = errno;
	if (err != 0 || parse_hostport(p->addr, &host, &port, 0, &why) == -1) {
		log_warnx("cluster: relay %s (%s): connect: %s", p->id,
		    p->addr, err ? strerror(err) : why);
		close(p->fd);
		free(host);
		p->next_try = time(NULL) + PEER_RETRY;
		return;
	}
	sess = session_link_new(r, p->fd, host, port, peer_io, NULL);
	free(host);
	if (sess == NULL) {
		log_warnx("cluster: relay %s: cannot start a session", p->id);
		close(p->fd);
		p->next_try = time(NULL) + PEER_RETRY;
		return;
	}
	sess->io.arg = sess;
	snprintf(name, sizeof name, "relay %s", p->id);
	sess->name = xstrdup(name);
	sess->fp = xstrdup(r->host_fp);
	sess->peerp = p;
	p->link = sess;
	ssh_set_message_callback(sess->s, peer_message, sess);
	peer_io(sess, EV_WRITE);
}

/* Connect to the peer (TCP first, without blocking). */
static void
peer_connect(struct peer *p)
{
	struct relay *r = p->relay;
	struct timeval tv = { PEER_CONNECT_TIMEOUT, 0 };
	struct sockaddr_storage ss;
	socklen_t sslen;
	const char *why;
	char *host = NULL;
	uint16_t port;
	int fd;

	p->next_try = time(NULL) + PEER_RETRY;
	if (parse_hostport(p->addr, &host, &port, 0, &why) == -1 ||
	    net_resolve_listen(host, port, &ss, &sslen, &why) == -1) {
		log_warnx("cluster: relay %s: bad peer_address \"%s\": %s",
		    p->id, p->addr, why);
		free(host);
		return;
	}
	free(host);
	if ((fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, 0)) == -1) {
		log_warnx("cluster: relay %s: socket: %s", p->id,
		    strerror(errno));
		return;
	}
	if (connect(fd, (struct sockaddr *)&ss, sslen) == -1 &&
	    errno != EINPROGRESS) {
		log_warnx("cluster: relay %s (%s): connect: %s", p->id,
		    p->addr, strerror(errno));
		close(fd);
		return;
	}
	p->fd = fd;
	p->ev_connect = event_new(r->base, fd, EV_WRITE, peer_connected, p);
	if (p->ev_connect == NULL)
		fatalx("event_new");
	event_add(p->ev_connect, &tv);
	log_debug("cluster: connecting to relay %s at %s", p->id, p->addr);
}

/* The link to p when it is up; else NULL, and it is being made. */
struct session *
peer_link(struct peer *p)
{
	if (p->link != NULL)
		return p->link->state == SESSION_ACTIVE ? p->link : NULL;
	if (p->ev_connect == NULL && time(NULL) >= p->next_try)
		peer_connect(p);
	return NULL;
}

/*
 * Hand every held operator channel whose device the directory now places
 * on a live peer relay (a session newer than the one it was last sent
 * to) to that relay's link.
 */
void
peer_serve_held(struct relay *r)
{
	struct held *h, *tmp;
	struct session *link;
	struct peer *p;
	uint64_t epoch;

	if (r->cluster == NULL || r->quitting)
		return;
	TAILQ_FOREACH_SAFE(h, &r->held, entry, tmp) {
		if (h->closing || h->op == NULL ||
		    (p = cluster_route(r, h->device, &epoch)) == NULL ||
		    epoch <= h->sent_epoch)
			continue;
		if ((link = peer_link(p)) == NULL)
			continue;
		held_hand(h, link, h->port, NULL, epoch);
	}
}
