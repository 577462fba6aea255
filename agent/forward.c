/* Forwarded channels from the relay, each joined to its local target. */
#include <sys/socket.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libssh/server.h>

#include "agent.h"

#define FORWARD_MAX_CHANNELS	256	/* per session, like sshd's MaxSessions */

/* Set up an empty set of channels for one session. */
void
forward_init(struct fwd_chans *fc, struct sshio *io, struct agent_config *conf,
    const int *asked, void (*flush)(void *), void *arg)
{
	memset(fc, 0, sizeof *fc);
	TAILQ_INIT(&fc->pumps);
	fc->io = io;
	fc->conf = conf;
	fc->asked = asked;
	fc->flush = flush;
	fc->arg = arg;
}

/* A pump finished: log its bytes and free it (called from the loop). */
static void
forward_done(struct pump *p, void *arg)
{
	struct fwd_chans *fc = arg;

	log_info("forwarded connection closed: %s (to local %" PRIu64
	    " bytes, from local %" PRIu64 " bytes)", p->why ? p->why : "done",
	    p->bytes_out, p->bytes_in);
	TAILQ_REMOVE(&fc->pumps, p, entry);
	fc->n--;
	pump_free(p, NULL, NULL);
	/*
	 * pump_free queued our CHANNEL_CLOSE. Push it out now: while it sits
	 * in libssh, every other pump sees "write pending" and stops reading,
	 * and nothing else would wake the session until the next packet.
	 */
	fc->flush(fc->arg);
}

/* Which forward did the relay open this channel for? NULL = not asked. */
static struct forward *
forward_find(struct fwd_chans *fc, int dport)
{
	struct forward *f;
	int i = 0;

	TAILQ_FOREACH(f, &fc->conf->forwards, entry) {
		if (fc->asked[i] && f->remote_port == dport)
			return f;
		i++;
	}
	return NULL;
}

/* Channel type names for log lines. */
static const char *
forward_type_name(int type)
{
	switch (type) {
	case SSH_CHANNEL_SESSION:
		return "session";
	case SSH_CHANNEL_DIRECT_TCPIP:
		return "direct-tcpip";
	case SSH_CHANNEL_FORWARDED_TCPIP:
		return "forwarded-tcpip";
	case SSH_CHANNEL_X11:
		return "x11";
	case SSH_CHANNEL_AUTH_AGENT:
		return "auth-agent";
	default:
		return "unknown";
	}
}

/*
 * A channel open from the relay, from libssh's message callback, so that
 * nothing waits in libssh's queue. A forwarded-tcpip for a port we asked
 * for is accepted and joined to its local target; anything else (session,
 * x11, direct-tcpip, auth-agent, a port never asked for, one too many) is
 * refused at once. Returns 0 when answered here, 1 for libssh's default
 * reply (OPEN_FAILURE).
 */
int
forward_open(struct fwd_chans *fc, ssh_message msg)
{
	struct forward *f;
	struct pump *p;
	ssh_channel ch;
	const char *orig;
	int type, dport, oport, fd;

	type = ssh_message_subtype(msg);
	orig = ssh_message_channel_request_open_originator(msg);
	oport = ssh_message_channel_request_open_originator_port(msg);
	if (type != SSH_CHANNEL_FORWARDED_TCPIP) {
		log_warnx("relay opened a %s channel (originator %s:%d); "
		    "refused: only forwarded-tcpip is accepted",
		    forward_type_name(type), esc(orig), oport);
		return 1;
	}
	dport = ssh_message_channel_request_open_destination_port(msg);
	if ((f = forward_find(fc, dport)) == NULL) {
		log_warnx("relay opened a channel for %s:%d that we never "
		    "asked for (from %s:%d); refused",
		    esc(ssh_message_channel_request_open_destination(msg)),
		    dport, esc(orig), oport);
		return 1;
	}
	if (fc->n >= FORWARD_MAX_CHANNELS) {
		log_warnx("forward %s: %d connections open; refusing one more "
		    "from %s:%d", f->name, fc->n, esc(orig), oport);
		return 1;
	}
	fd = socket(f->local_ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, 0);
	if (fd == -1 || (connect(fd, (struct sockaddr *)&f->local_ss,
	    f->local_len) == -1 && errno != EINPROGRESS)) {
		log_warn("forward %s: connect to %s:%u", f->name,
		    f->local_host, f->local_port);
		if (fd != -1)
			close(fd);
		return 1;
	}
	if ((ch = ssh_message_channel_request_open_reply_accept(msg)) == NULL) {
		log_warnx("forward %s: accepting the channel failed", f->name);
		close(fd);
		return 1;
	}
	log_info("forward %s: connection from %s:%d on relay port %d -> %s:%u",
	    f->name, esc(orig), oport, dport, f->local_host, f->local_port);
	/* no kick from inside libssh: the pump's events and the next pass */
	p = pump_new(fc->io->base, fc->io, ch, fd, forward_done, fc);
	TAILQ_INSERT_TAIL(&fc->pumps, p, entry);
	fc->n++;
	return 0;
}

/* The session moved: windows may have opened, data may wait in libssh. */
void
forward_kick_all(struct fwd_chans *fc)
{
	struct pump *p;

	TAILQ_FOREACH(p, &fc->pumps, entry)
		pump_kick(p);
}

/* Session teardown: close every local connection and its channel. */
void
forward_free_all(struct fwd_chans *fc)
{
	struct pump *p;

	while ((p = TAILQ_FIRST(&fc->pumps)) != NULL) {
		TAILQ_REMOVE(&fc->pumps, p, entry);
		fc->n--;
		pump_free(p, NULL, NULL);
	}
}
