/* One ssh session to the relay: handshake, host key, auth, forwards, keepalive. */
#include <sys/socket.h>

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libssh/server.h>

#include "agent.h"

struct session {
	struct event_base *base;
	struct agent_config *conf;
	session_cb	 cb;		/* tells the owner: up, closed */
	void		*cb_arg;
	struct path	*path;
	struct relay_conf *relay;	/* host key, name */
	char		*host;		/* as dialed (the path's or the relay's) */
	uint16_t	 port;
	enum session_state state;
	struct dial	*dial;
	int		 fd;		/* ours, watched by libevent */
	int		 sshfd;		/* libssh's dup, libssh closes it */
	ssh_session	 s;
	struct sshio	 io;
	int		 io_init;
	struct ssh_counter_struct scnt;	/* socket bytes */
	struct ssh_counter_struct rcnt;	/* packets */
	struct event	*ev_deadline;	/* handshake must finish by then */
	struct event	*ev_ka;		/* keepalive tick */
	struct event	*ev_free;	/* deferred teardown */
	int		 nfwd;
	int		 fwd_idx;	/* forward being requested */
	int		 fwd_retry;	/* refused forward re-asked, -1 none */
	time_t		 fwd_retry_at;	/* when refused ones are asked again */
	int		*bound;		/* granted port per forward, 0 = no */
	int		*asked;		/* per forward: request sent, not refused */
	int		 ngranted;
	struct fwd_chans chans;
	time_t		 started;
	time_t		 up_since;
	int		 ka_out;	/* a probe is outstanding */
	uint64_t	 ka_in;		/* packets received before the probe */
	unsigned long	 ka_missed;
	int		 tcp_probes;	/* the kernel probes the idle link */
	uint64_t	 heard_packets;	/* packets at the last tick */
	time_t		 heard_at;	/* last tick that saw a new one */
	int		 was_up;
	int		 closing;	/* in session_close: accept nothing */
	int		 path_dead;
	char		 reason[256];
	char		 peer[384];	/* addr:port, NAME (addr:port) if named */
};

static void session_step(struct session *);

/*
 * The tunnel's ciphers, fastest first for this CPU: with AES instructions
 * (x86-64 AES-NI, arm64 with the crypto extensions: "aes" in
 * /proc/cpuinfo) AES-GCM moves more bytes per CPU second than
 * ChaCha20-Poly1305 (about 1.2x through the tunnel on x86-64); without
 * them (a Raspberry Pi 4's Cortex-A72) ChaCha20 is far faster. The relay
 * takes the first of ours it has.
 */
static const char *
session_ciphers(void)
{
	static const char *order;
	char line[4096], *p;
	FILE *f;
	int aes = 0;

	if (order != NULL)
		return order;
	if ((f = fopen("/proc/cpuinfo", "r")) != NULL) {
		while (!aes && fgets(line, sizeof line, f) != NULL) {
			if (strncmp(line, "flags", 5) != 0 &&
			    strncmp(line, "Features", 8) != 0)
				continue;
			for (p = strtok(line, " \t\n:"); p != NULL;
			    p = strtok(NULL, " \t\n:"))
				if (strcmp(p, "aes") == 0)
					aes = 1;
		}
		fclose(f);
	}
	order = aes ? "aes256-gcm@openssh.com,aes128-gcm@openssh.com,"
	    "chacha20-poly1305@openssh.com,aes256-ctr,aes192-ctr,aes128-ctr" :
	    "chacha20-poly1305@openssh.com,aes256-gcm@openssh.com,"
	    "aes128-gcm@openssh.com,aes256-ctr,aes192-ctr,aes128-ctr";
	log_debug("tunnel ciphers: %s (%s AES instructions)", order,
	    aes ? "with" : "no");
	return order;
}

/*
 * With TCP probes, SSH silence this long (s) still earns an SSH probe:
 * ten keepalive intervals, at least five minutes.
 */
static time_t
session_ssh_probe_after(const struct agent_config *c)
{
	time_t t = (time_t)c->ka_interval * 10;

	return t < 300 ? 300 : t;
}

/* Seconds on a clock that does not jump. */
static time_t
session_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

static int session_forward_collect(struct session *);

/*
 * libssh's last error, escaped: it can carry the peer's own text (its
 * DISCONNECT message, its banner), which must not forge log lines or
 * reach a terminal through simtunctl status.
 */
static const char *
session_error(struct session *sess)
{
	return esc(ssh_get_error(sess->s));
}

/* Name of the path for logs. */
static const char *
session_path_name(struct session *sess)
{
	return sess->path ? sess->path->name : "default route";
}

/* Is the session established with its forwards? */
int
session_is_up(struct session *sess)
{
	return sess->state == SESS_UP;
}

/* The path this session uses (NULL = default route). */
struct path *
session_path(struct session *sess)
{
	return sess->path;
}

/* The relay this session goes to. */
struct relay_conf *
session_relay(struct session *sess)
{
	return sess->relay;
}

/*
 * The relay for logs: its address as is for the unnamed [relay], "NAME
 * (address)" for a [relay NAME].
 */
static void
session_set_peer(struct session *sess, const char *addr)
{
	if (sess->relay->named)
		snprintf(sess->peer, sizeof sess->peer, "%s (%s)",
		    sess->relay->name, addr);
	else
		snprintf(sess->peer, sizeof sess->peer, "%s", addr);
}

/*
 * What the session moved on the wire so far: libssh's socket counters
 * (every ssh byte, handshake and keepalives included) and the kernel's
 * TCP segment counters. Valid until session_free (our fd stays open).
 */
void
session_usage(struct session *sess, struct usage_sample *u)
{
	memset(u, 0, sizeof *u);
	u->sent = sess->scnt.out_bytes;
	u->received = sess->scnt.in_bytes;
	usage_tcp(sess->fd, u);
}

/*
 * The one close path: log why with byte counts, say goodbye to the relay
 * when it can hear it, and free later from the loop.
 */
void
session_close(struct session *sess, int path_dead, const char *fmt, ...)
{
	const char *why = sess->reason;
	time_t up = 0;
	va_list ap;

	if (sess->state == SESS_DEAD)
		return;
	sess->closing = 1;
	va_start(ap, fmt);
	vsnprintf(sess->reason, sizeof sess->reason, fmt, ap);
	va_end(ap);
	sess->path_dead = path_dead;
	if (sess->was_up)
		up = session_now() - sess->up_since;
	if (sess->was_up)
		log_warnx("session to %s via %s closed: %s (up %lld s, "
		    "in %" PRIu64 " bytes, out %" PRIu64 " bytes)", sess->peer,
		    session_path_name(sess), why, (long long)up,
		    sess->scnt.in_bytes, sess->scnt.out_bytes);
	else
		log_warnx("connecting to %s via %s failed: %s",
		    sess->peer, session_path_name(sess), why);
	if (!path_dead)
		session_disconnect(sess);
	sess->state = SESS_DEAD;
	if (sess->dial != NULL) {
		dial_cancel(sess->dial);
		sess->dial = NULL;
	}
	event_del(sess->ev_deadline);
	event_del(sess->ev_ka);
	if (sess->io_init) {
		event_del(sess->io.ev_rd);
		event_del(sess->io.ev_wr);
	}
	event_active(sess->ev_free, EV_TIMEOUT, 0);
}

/*
 * Proper goodbye: close channels, send SSH_MSG_DISCONNECT and push it out
 * so the relay frees the ports at once instead of waiting for keepalives.
 */
void
session_disconnect(struct session *sess)
{
	if (sess->s == NULL || sess->state < SESS_HANDSHAKE ||
	    sess->state == SESS_DEAD || sess->fd == -1)
		return;
	forward_free_all(&sess->chans);
	if (sess->state >= SESS_AUTH) {
		net_nonblock(sess->fd);
		ssh_blocking_flush(sess->s, 200);
		/*
		 * libssh 0.10 writes a packet at once only after a poll saw
		 * the socket writable with nothing queued; ssh_disconnect
		 * drops whatever it queued. One idle poll pass arms that.
		 */
		if (sshio_attach(&sess->io) == 0)
			ssh_event_dopoll(sess->io.sev, 0);
	}
	/* ssh_disconnect frees every channel: the buried ones go first */
	if (sess->io_init) {
		sshio_clear(&sess->io);
		sess->io_init = 0;
	}
	ssh_disconnect(sess->s);
	/* libssh drops the session's fd; nothing more goes out after this */
	shutdown(sess->fd, SHUT_RDWR);
}

/* Tell the owner the session is up with its forwards (again). */
static void
session_report_up(struct session *sess)
{
	struct session_report r;

	memset(&r, 0, sizeof r);
	r.was_up = 1;
	sess->cb(sess, &r, sess->cb_arg);
}

/* Deferred teardown: tell the owner what happened, then it frees us. */
static void
session_free_cb(evutil_socket_t fd, short what, void *arg)
{
	struct session *sess = arg;
	struct session_report r;

	memset(&r, 0, sizeof r);
	r.closed = 1;
	r.was_up = sess->was_up;
	r.path_dead = sess->path_dead;
	r.up_secs = sess->was_up ? session_now() - sess->up_since : 0;
	r.reason = sess->reason;
	sess->cb(sess, &r, sess->cb_arg);
}

/* Free everything; only from the owner's closed report or shutdown. */
void
session_free(struct session *sess)
{
	if (sess == NULL)
		return;
	if (sess->dial != NULL)
		dial_cancel(sess->dial);
	forward_free_all(&sess->chans);
	if (sess->io_init)
		sshio_clear(&sess->io);
	if (sess->s != NULL) {
		if (sess->state != SESS_DEAD)
			ssh_silent_disconnect(sess->s);
		ssh_free(sess->s);
	}
	if (sess->fd != -1)
		close(sess->fd);
	event_free(sess->ev_deadline);
	event_free(sess->ev_ka);
	event_free(sess->ev_free);
	free(sess->bound);
	free(sess->asked);
	free(sess->host);
	free(sess);
}

/* The handshake (connect to forwards granted) took too long. */
static void
session_deadline_cb(evutil_socket_t fd, short what, void *arg)
{
	struct session *sess = arg;

	session_close(sess, 1, "relay did not finish the ssh handshake in "
	    "time");
}

/*
 * Push out what libssh holds; a write error ends the session, and so does
 * a relay that broke the rules the shared pump enforces (data past the
 * window it was granted, on a channel not open, too many unclosed).
 */
static void
session_flush(struct session *sess)
{
	if (sess->state == SESS_DEAD)
		return;
	if (sess->io.violation[0] != '\0') {
		session_close(sess, 0, "protocol violation: %s",
		    sess->io.violation);
		return;
	}
	if (sshio_flush(&sess->io) == -1)
		session_close(sess, 0, "write to relay failed");
}

/* A forwarded connection ended and queued its CLOSE: push it out. */
static void
session_chans_flush(void *arg)
{
	session_flush(arg);
}

/* After any libssh activity: answers to collect, pumps to move, output. */
static void
session_after_poll(struct session *sess)
{
	if (sess->state != SESS_UP)
		return;
	sshio_sweep(&sess->io);
	/* a re-asked forward's answer (its channels are accepted already) */
	if (sess->fwd_retry >= 0 && session_forward_collect(sess)) {
		sess->ka_out = 0;
		sess->ka_missed = 0;
	}
	forward_kick_all(&sess->chans);
	session_flush(sess);
}

/* The idx-th [forward]. */
static struct forward *
session_forward(struct session *sess, int idx)
{
	struct forward *f;
	int i = 0;

	TAILQ_FOREACH(f, &sess->conf->forwards, entry)
		if (i++ == idx)
			return f;
	return NULL;
}

/* How often forwards the relay refused are asked for again. */
static time_t
session_retry_secs(struct session *sess)
{
	unsigned long t = sess->conf->backoff_max;

	if (t < sess->conf->ka_interval)
		t = sess->conf->ka_interval;
	return (time_t)t;
}

/* The answer to a re-asked forward is in (or not yet: SSH_AGAIN). */
static int
session_forward_answer(struct session *sess, int rc)
{
	struct forward *f = session_forward(sess, sess->fwd_retry);

	if (rc == SSH_AGAIN)
		return 0;
	if (rc == SSH_OK && f != NULL) {
		sess->bound[sess->fwd_retry] = f->remote_port;
		sess->asked[sess->fwd_retry] = 1;
		sess->ngranted++;
		log_info("forward %s: relay %s now listens on port %u -> %s:%u",
		    f->name, sess->peer, f->remote_port, f->local_host,
		    f->local_port);
		session_report_up(sess);
	} else if (f != NULL) {
		sess->asked[sess->fwd_retry] = 0;
		log_debug("forward %s: port %u still refused", f->name,
		    f->remote_port);
	}
	sess->fwd_retry = -1;
	return 1;
}

/* Poll for the answer with the very same request (never a keepalive). */
static int
session_forward_collect(struct session *sess)
{
	struct forward *f = session_forward(sess, sess->fwd_retry);
	int bound = 0;

	if (f == NULL) {
		sess->fwd_retry = -1;
		return 1;
	}
	return session_forward_answer(sess, ssh_channel_listen_forward(sess->s,
	    f->remote_host, f->remote_port, &bound));
}

/*
 * Ask again, now and then, for a forward the relay refused (the port was
 * held by someone else, or the key's permitlisten changed since). The
 * request shares libssh's one reply slot with keepalives, so it is sent
 * only when no probe is out, and its answer doubles as one.
 */
static int
session_forward_retry(struct session *sess)
{
	struct forward *f;
	uint64_t out = sess->rcnt.out_packets;
	int i, idx = -1, bound = 0, rc;

	if (sess->ngranted == sess->nfwd || session_now() < sess->fwd_retry_at)
		return 0;
	for (i = 0; i < sess->nfwd && idx == -1; i++)
		if (sess->bound[i] == 0)
			idx = i;
	if ((f = session_forward(sess, idx)) == NULL)
		return 0;
	/* the relay may open channels for it before its answer is read */
	sess->asked[idx] = 1;
	rc = ssh_channel_listen_forward(sess->s, f->remote_host,
	    f->remote_port, &bound);
	/* the first call may only have collected the last probe's answer */
	if (sess->rcnt.out_packets == out)
		rc = ssh_channel_listen_forward(sess->s, f->remote_host,
		    f->remote_port, &bound);
	if (sess->rcnt.out_packets == out) {
		sess->asked[idx] = 0;
		return 0;
	}
	sess->fwd_retry_at = session_now() + session_retry_secs(sess);
	sess->fwd_retry = idx;
	log_debug("forward %s: asking the relay again for port %u", f->name,
	    f->remote_port);
	if (session_forward_answer(sess, rc))
		return 1;
	sess->ka_in = sess->rcnt.in_packets;
	sess->ka_out = 1;
	return 1;
}

/*
 * Keepalive tick. libssh 0.10 has no reply callback, so liveness is "any
 * packet from the relay since the probe" (its packet counter). One probe
 * at a time: libssh's global request slot is shared and a second probe
 * while one is pending would be dropped silently.
 */
static void
session_ka_cb(evutil_socket_t fd, short what, void *arg)
{
	struct session *sess = arg;
	uint64_t out;

	if (sess->state != SESS_UP)
		return;
	if (sess->ka_out) {
		if (sess->rcnt.in_packets == sess->ka_in) {
			sess->ka_missed++;
			log_debug("keepalive %lu/%lu unanswered",
			    sess->ka_missed, sess->conf->ka_count);
			if (sess->ka_missed >= sess->conf->ka_count)
				session_close(sess, 1, "relay silent: %lu "
				    "keepalives unanswered over %lu s",
				    sess->ka_missed, sess->ka_missed *
				    sess->conf->ka_interval);
			return;
		}
		sess->ka_out = 0;
		sess->ka_missed = 0;
		if (sess->fwd_retry >= 0) {
			/* collect it with the same call, not a keepalive */
			if (!session_forward_collect(sess)) {
				sess->ka_in = sess->rcnt.in_packets;
				sess->ka_out = 1;
			}
			session_after_poll(sess);
			return;
		}
	}
	if (session_forward_retry(sess)) {
		session_after_poll(sess);
		return;
	}
	if (sess->rcnt.in_packets != sess->heard_packets) {
		sess->heard_packets = sess->rcnt.in_packets;
		sess->heard_at = session_now();
	}
	/*
	 * With TCP probes the kernel watches an idle link (and drops it
	 * after ka_count unanswered ones): an SSH probe goes out only after
	 * SESSION_SSH_PROBE_AFTER of SSH silence, for what TCP cannot tell
	 * (a relay process that hangs, a middlebox that answers TCP for it).
	 */
	if (sess->tcp_probes && session_now() - sess->heard_at <
	    session_ssh_probe_after(sess->conf))
		return;
	sess->ka_in = sess->rcnt.in_packets;
	out = sess->rcnt.out_packets;
	ssh_send_keepalive(sess->s);
	/* the first call may only have collected the last probe's answer */
	if (sess->rcnt.out_packets == out)
		ssh_send_keepalive(sess->s);
	sess->ka_out = 1;
	log_debug("keepalive %s", sess->rcnt.out_packets != out ? "sent" :
	    "still pending in libssh");
	if (ssh_get_status(sess->s) & (SSH_CLOSED | SSH_CLOSED_ERROR)) {
		session_close(sess, 0, "relay closed the connection");
		return;
	}
	session_after_poll(sess);
}

/*
 * The fingerprint(s) known_hosts lists for this relay, for the mismatch
 * message (libssh returns no entry when the key differs). NULL if none.
 */
static char *
session_known_fp(struct session *sess)
{
	struct ssh_knownhosts_entry *e;
	char *host = NULL, hostport[300], line[8192], *fp, *all = NULL, *tmp;
	unsigned int port = 22;
	FILE *f;

	if (sess->relay->known_hosts == NULL ||
	    ssh_options_get(sess->s, SSH_OPTIONS_HOST, &host) != SSH_OK)
		return NULL;
	ssh_options_get_port(sess->s, &port);
	if (port == 22)
		snprintf(hostport, sizeof hostport, "%s", host);
	else
		snprintf(hostport, sizeof hostport, "[%s]:%u", host, port);
	ssh_string_free_char(host);
	if ((f = fopen(sess->relay->known_hosts, "r")) == NULL)
		return NULL;
	while (fgets(line, sizeof line, f) != NULL) {
		line[strcspn(line, "\r\n")] = '\0';
		e = NULL;
		if (ssh_known_hosts_parse_line(hostport, line, &e) != SSH_OK ||
		    e == NULL || e->publickey == NULL) {
			ssh_knownhosts_entry_free(e);
			continue;
		}
		fp = key_fingerprint(e->publickey);
		ssh_knownhosts_entry_free(e);
		if (all == NULL)
			all = fp;
		else {
			xasprintf(&tmp, "%s, %s", all, fp);
			free(all);
			free(fp);
			all = tmp;
		}
	}
	fclose(f);
	return all;
}

/* Was the idx-th [forward] granted by the relay in this session? */
int
session_forward_granted(struct session *sess, int idx)
{
	return idx >= 0 && idx < sess->nfwd && sess->bound[idx] != 0;
}

/* Check the relay's host key before anything is sent under our name. */
static int
session_check_hostkey(struct session *sess, char *why, size_t len)
{
	struct relay_conf *c = sess->relay;
	enum ssh_known_hosts_e st;
	ssh_key key = NULL;
	char *fp, *want;

	if (ssh_get_server_publickey(sess->s, &key) != SSH_OK) {
		snprintf(why, len, "no host key from relay");
		return -1;
	}
	fp = key_fingerprint(key);
	ssh_key_free(key);
	if (c->host_key != NULL) {
		if (strcmp(fp, c->host_key) != 0) {
			log_error("relay %s HOST KEY MISMATCH: relay presented "
			    "%s, pinned host_key is %s; not authenticating, "
			    "nothing forwarded", sess->peer, fp, c->host_key);
			snprintf(why, len, "host key mismatch (got %s, "
			    "expected %s)", fp, c->host_key);
			free(fp);
			return -1;
		}
		log_debug("relay host key %s matches the pinned one", fp);
		free(fp);
		return 0;
	}
	st = ssh_session_is_known_server(sess->s);
	switch (st) {
	case SSH_KNOWN_HOSTS_OK:
		log_debug("relay host key %s found in %s", fp, c->known_hosts);
		free(fp);
		return 0;
	case SSH_KNOWN_HOSTS_CHANGED:
	case SSH_KNOWN_HOSTS_OTHER:
		want = session_known_fp(sess);
		log_error("relay %s HOST KEY MISMATCH: relay presented %s, "
		    "%s lists %s; not authenticating, nothing forwarded",
		    sess->peer, fp, c->known_hosts,
		    want ? want : "a key of another type");
		snprintf(why, len, "host key mismatch (got %s, expected %s)",
		    fp, want ? want : "another key type");
		free(want);
		break;
	case SSH_KNOWN_HOSTS_UNKNOWN:
	case SSH_KNOWN_HOSTS_NOT_FOUND:
		log_error("relay %s host key %s is not in %s; refusing (never "
		    "trusted on first use: check it and add it)", sess->peer,
		    fp, c->known_hosts);
		snprintf(why, len, "unknown host key %s", fp);
		break;
	default:
		snprintf(why, len, "known_hosts check failed: %s",
		    session_error(sess));
		break;
	}
	free(fp);
	return -1;
}

/* All forwards asked: go up if at least one was granted. */
static void
session_go_up(struct session *sess)
{
	struct timeval tv = { (time_t)sess->conf->ka_interval, 0 };

	if (sess->ngranted == 0) {
		session_close(sess, 0, "relay refused every forward");
		return;
	}
	if (sshio_attach(&sess->io) == -1) {
		session_close(sess, 0, "ssh_event_new failed");
		return;
	}
	event_del(sess->ev_deadline);
	sess->state = SESS_UP;
	sess->was_up = 1;
	sess->up_since = session_now();
	sess->heard_at = sess->up_since;
	sess->heard_packets = sess->rcnt.in_packets;
	sess->fwd_retry = -1;
	sess->fwd_retry_at = sess->up_since + session_retry_secs(sess);
	evtimer_add(sess->ev_ka, &tv);
	session_report_up(sess);
}

/* Ask for the forwards one at a time (one global request slot). */
static int
session_forwards(struct session *sess)
{
	struct forward *f;
	int i, rc, bound;

	for (;;) {
		i = 0;
		TAILQ_FOREACH(f, &sess->conf->forwards, entry)
			if (i++ == sess->fwd_idx)
				break;
		if (f == NULL)
			return 0;
		bound = 0;
		sess->asked[sess->fwd_idx] = 1;
		rc = ssh_channel_listen_forward(sess->s, f->remote_host,
		    f->remote_port, &bound);
		if (rc == SSH_AGAIN)
			return 1;
		if (rc == SSH_OK) {
			sess->bound[sess->fwd_idx] = f->remote_port;
			sess->ngranted++;
			log_info("forward %s: relay %s listens on port %u -> "
			    "%s:%u", f->name, sess->peer, f->remote_port,
			    f->local_host, f->local_port);
		} else if (ssh_get_error_code(sess->s) == SSH_REQUEST_DENIED) {
			sess->asked[sess->fwd_idx] = 0;
			log_warnx("forward %s: relay %s refused port %u (in use "
			    "or not permitted for this key)", f->name,
			    sess->peer, f->remote_port);
		} else {
			return -1;
		}
		sess->fwd_idx++;
	}
}

/* Advance the state machine as far as the data at hand allows. */
static void
session_step(struct session *sess)
{
	const char *err;
	char why[512];
	int rc;

	switch (sess->state) {
	case SESS_HANDSHAKE:
		rc = ssh_connect(sess->s);
		if (rc == SSH_AGAIN)
			break;
		if (rc != SSH_OK) {
			session_close(sess, 0, "ssh handshake: %s",
			    session_error(sess));
			return;
		}
		net_nonblock(sess->fd);
		if (session_check_hostkey(sess, why, sizeof why) == -1) {
			session_close(sess, 0, "%s", why);
			return;
		}
		sess->state = SESS_AUTH;
		/* FALLTHROUGH */
	case SESS_AUTH:
		rc = ssh_userauth_publickey(sess->s, NULL, sess->conf->key);
		net_nonblock(sess->fd);
		if (rc == SSH_AUTH_AGAIN)
			break;
		if (rc != SSH_AUTH_SUCCESS) {
			session_close(sess, 0, "relay refused our key for "
			    "user %s%s%s", sess->conf->user,
			    rc == SSH_AUTH_ERROR ? ": " : "",
			    rc == SSH_AUTH_ERROR ? session_error(sess) : "");
			return;
		}
		log_debug("authenticated to %s as %s", sess->peer,
		    sess->conf->user);
		sess->state = SESS_FORWARD;
		/* FALLTHROUGH */
	case SESS_FORWARD:
		rc = session_forwards(sess);
		net_nonblock(sess->fd);
		if (rc == 1)
			break;
		if (rc == -1) {
			session_close(sess, 0, "forward request: %s",
			    session_error(sess));
			return;
		}
		session_go_up(sess);
		if (sess->state != SESS_UP)
			return;
		/* FALLTHROUGH */
	case SESS_UP:
		if (sshio_poll(&sess->io) == -1) {
			err = ssh_get_error(sess->s);
			/* TCP_USER_TIMEOUT: unacked data, the path is silent */
			session_close(sess, strstr(err, "timed out") != NULL,
			    "relay closed the connection%s%s", *err ? ": " : "",
			    session_error(sess));
			return;
		}
		session_after_poll(sess);
		return;
	default:
		return;
	}
	session_flush(sess);
}

/*
 * Every message libssh would otherwise queue for ssh_message_get (channel
 * opens, unknown channel requests) comes here and is answered at once, so
 * a relay cannot make the agent's memory grow with requests it never
 * reads. Returns 1 for libssh's default reply (a refusal).
 */
static int
session_message(ssh_session s, ssh_message msg, void *arg)
{
	struct session *sess = arg;

	if (sess->closing)
		return 1;
	if (ssh_message_type(msg) == SSH_REQUEST_CHANNEL_OPEN)
		return forward_open(&sess->chans, msg);
	/* nothing is sent on a channel after our CLOSE, not even a refusal */
	if (ssh_message_type(msg) == SSH_REQUEST_CHANNEL &&
	    sshio_closed_channel(ssh_message_channel_request_channel(msg)))
		return 0;
	log_debug("relay sent a request of type %d/%d; refused",
	    ssh_message_type(msg), ssh_message_subtype(msg));
	return 1;
}

/* Readiness on the relay socket. */
static void
session_io(void *arg, short what)
{
	struct session *sess = arg;

	if (sess->state == SESS_DEAD)
		return;
	session_step(sess);
}

/*
 * Every path and name libssh would otherwise derive from the user's home
 * directory, passwd entry or environment (ssh dir, known_hosts, global
 * known_hosts, user), set before anything expands them: the agent runs
 * as systemd's DynamicUser, possibly with no passwd entry and no HOME,
 * where libssh's defaults fail with "Couldn't apply options". The ssh dir
 * is the identity's directory; nothing is read from it by default.
 */
static int
session_options(struct session *sess, const char *host, unsigned int port)
{
	struct agent_config *c = sess->conf;
	struct relay_conf *r = sess->relay;
	char dir[PATH_MAX], *slash;

	snprintf(dir, sizeof dir, "%s", c->identity);
	if ((slash = strrchr(dir, '/')) == NULL)
		snprintf(dir, sizeof dir, "/");
	else if (slash == dir)
		dir[1] = '\0';
	else
		*slash = '\0';
	if (ssh_options_set(sess->s, SSH_OPTIONS_SSH_DIR, dir) != SSH_OK ||
	    ssh_options_set(sess->s, SSH_OPTIONS_USER, c->user) != SSH_OK ||
	    ssh_options_set(sess->s, SSH_OPTIONS_KNOWNHOSTS,
	    r->known_hosts ? r->known_hosts : "/dev/null") != SSH_OK ||
	    ssh_options_set(sess->s, SSH_OPTIONS_GLOBAL_KNOWNHOSTS,
	    "/dev/null") != SSH_OK ||
	    ssh_options_set(sess->s, SSH_OPTIONS_HOST, host) != SSH_OK ||
	    ssh_options_set(sess->s, SSH_OPTIONS_PORT, &port) != SSH_OK ||
	    ssh_options_set(sess->s, SSH_OPTIONS_CIPHERS_C_S,
	    session_ciphers()) != SSH_OK ||
	    ssh_options_set(sess->s, SSH_OPTIONS_CIPHERS_S_C,
	    session_ciphers()) != SSH_OK)
		return -1;
	return 0;
}

/* TCP is up: hand the socket to libssh and start the handshake. */
static void
session_dialed(struct dial *d, int fd, const char *cause, void *arg)
{
	struct session *sess = arg;
	struct agent_config *c = sess->conf;
	struct timeval tv;
	const char *host = sess->host;
	unsigned int port = sess->port;
	long nolog = SSH_LOG_NOLOG, proto = SSH_LOG_PROTOCOL;
	int no = 0;

	session_set_peer(sess, dial_peer(d));
	sess->dial = NULL;
	if (fd == -1) {
		session_close(sess, 1, "%s", cause);
		return;
	}
	sess->fd = fd;
	/*
	 * The idle link is watched by TCP probes (two bare segments, a third
	 * of an SSH keepalive's bytes on the cellular link) every ka_interval,
	 * and dropped ka_count * ka_interval after the last ACK, the same
	 * verdict as ka_count unanswered SSH probes. Without them: SSH
	 * probes, the timeout a bit longer so their verdict comes first.
	 */
	if (net_tcp_probes(fd, (unsigned int)c->ka_interval,
	    (unsigned int)c->ka_count) == 0) {
		sess->tcp_probes = 1;
		net_user_timeout(fd, (unsigned int)(c->ka_interval *
		    c->ka_count * 1000));
	} else
		net_user_timeout(fd, (unsigned int)(c->ka_interval *
		    (c->ka_count + 1) * 1000));
	net_keepalive(fd);
	if ((sess->s = ssh_new()) == NULL)
		fatalx("ssh_new");
	ssh_options_set(sess->s, SSH_OPTIONS_PROCESS_CONFIG, &no);
	/*
	 * libssh 0.10.6 closes the fd it was given (ssh_disconnect, ssh_free);
	 * it gets its own dup so ours stays valid for libevent until we close.
	 */
	if ((sess->sshfd = fcntl(fd, F_DUPFD_CLOEXEC, 0)) == -1) {
		session_close(sess, 0, "dup: out of file descriptors");
		return;
	}
	if (session_options(sess, host, port) == -1) {
		session_close(sess, 0, "setting libssh options failed (out of "
		    "memory?)");
		return;
	}
	ssh_options_set(sess->s, SSH_OPTIONS_FD, &sess->sshfd);
	ssh_options_set(sess->s, SSH_OPTIONS_LOG_VERBOSITY,
	    log_get_verbose() >= 3 ? &proto : &nolog);
	ssh_set_counters(sess->s, &sess->scnt, &sess->rcnt);
	ssh_set_message_callback(sess->s, session_message, sess);
	ssh_set_blocking(sess->s, 0);
	sshio_init(&sess->io, sess->base, sess->s, fd, session_io, sess);
	sess->io.max_graves = SSHIO_MAX_GRAVES;	/* the relay's are bounded by its caps */
	sess->io_init = 1;
	sess->state = SESS_HANDSHAKE;
	tv.tv_sec = 2 * config_connect_timeout(c);
	tv.tv_usec = 0;
	evtimer_add(sess->ev_deadline, &tv);
	log_debug("connected to %s via %s; ssh handshake", sess->peer,
	    session_path_name(sess));
	session_step(sess);
}

/*
 * Start a session to a target with a configuration; cb(sess, report, arg)
 * tells the owner when it is up (again) and, once, when it has closed:
 * the owner then frees it with session_free.
 */
struct session *
session_new(const struct dial_target *t, struct agent_config *conf,
    session_cb cb, void *arg)
{
	struct session *sess;
	struct forward *f;
	char addr[300];

	sess = xcalloc(1, sizeof *sess);
	sess->base = t->base;
	sess->conf = conf;
	sess->cb = cb;
	sess->cb_arg = arg;
	sess->path = t->path;
	sess->relay = t->relay;
	sess->host = xstrdup(t->host);
	sess->port = t->port;
	sess->fd = -1;
	sess->state = SESS_DIAL;
	sess->started = session_now();
	TAILQ_FOREACH(f, &conf->forwards, entry)
		sess->nfwd++;
	sess->bound = xcalloc((size_t)sess->nfwd, sizeof *sess->bound);
	sess->asked = xcalloc((size_t)sess->nfwd, sizeof *sess->asked);
	forward_init(&sess->chans, &sess->io, conf, sess->asked,
	    session_chans_flush, sess);
	sess->ev_deadline = evtimer_new(t->base, session_deadline_cb, sess);
	sess->ev_ka = event_new(t->base, -1, EV_PERSIST, session_ka_cb, sess);
	sess->ev_free = event_new(t->base, -1, 0, session_free_cb, sess);
	if (!sess->ev_deadline || !sess->ev_ka || !sess->ev_free)
		fatalx("event_new");
	snprintf(addr, sizeof addr, "%s:%u", t->host, t->port);
	session_set_peer(sess, addr);
	log_info("connecting to %s via %s", sess->peer,
	    session_path_name(sess));
	sess->dial = dial_start(t, session_dialed, sess);
	return sess;
}
