/* Forwarded channels from the relay, each joined to its local target. */
#include <sys/socket.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent.h"

#define FORWARD_MAX_CHANNELS	256	/* per session, like sshd's MaxSessions */

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
	pump_free(p);
}

/* Which forward did the relay open this channel for? NULL = not ours. */
static struct forward *
forward_find(struct agent_config *conf, const int *bound, int dport)
{
	struct forward *f;
	int i = 0;

	TAILQ_FOREACH(f, &conf->forwards, entry) {
		if (bound[i] != 0 && bound[i] == dport)
			return f;
		i++;
	}
	return NULL;
}

/* Refuse a channel we did not ask for: close and free it at once. */
static void
forward_refuse(ssh_channel ch)
{
	ssh_channel_close(ch);
	ssh_channel_free(ch);
}

/*
 * After every poll pass: take every queued forwarded-tcpip channel, keep
 * those for a port we were granted, connect each to its local target.
 */
void
forward_accept_all(struct session *sess, struct sshio *io,
    struct fwd_chans *fc, struct agent_config *conf, const int *bound)
{
	struct forward *f;
	struct pump *p;
	ssh_channel ch;
	char *orig = NULL;
	int dport = 0, oport = 0, fd;

	(void)sess;
	for (;;) {
		orig = NULL;
		ch = ssh_channel_open_forward_port(io->s, 0, &dport, &orig,
		    &oport);
		if (ch == NULL)
			break;
		f = forward_find(conf, bound, dport);
		if (f == NULL) {
			log_warnx("relay opened a channel for port %d that we "
			    "never asked for (from %s:%d); refused", dport,
			    orig ? orig : "?", oport);
			forward_refuse(ch);
			ssh_string_free_char(orig);
			continue;
		}
		if (fc->n >= FORWARD_MAX_CHANNELS) {
			log_warnx("forward %s: %d connections open; refusing "
			    "one more from %s:%d", f->name, fc->n,
			    orig ? orig : "?", oport);
			forward_refuse(ch);
			ssh_string_free_char(orig);
			continue;
		}
		fd = socket(f->local_ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK |
		    SOCK_CLOEXEC, 0);
		if (fd == -1 || (connect(fd, (struct sockaddr *)&f->local_ss,
		    f->local_len) == -1 && errno != EINPROGRESS)) {
			log_warn("forward %s: connect to %s:%u", f->name,
			    f->local_host, f->local_port);
			if (fd != -1)
				close(fd);
			forward_refuse(ch);
			ssh_string_free_char(orig);
			continue;
		}
		log_info("forward %s: connection from %s:%d on relay port %d "
		    "-> %s:%u", f->name, orig ? orig : "?", oport, dport,
		    f->local_host, f->local_port);
		ssh_string_free_char(orig);
		p = pump_new(io->base, io, ch, fd, forward_done, fc);
		TAILQ_INSERT_TAIL(&fc->pumps, p, entry);
		fc->n++;
		pump_kick(p);
	}
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
		pump_free(p);
	}
}
