/*
 * Bytes on the wire per path: what the ssh connection wrote to and read
 * from its socket (libssh's socket counters), since the agent started and
 * today (UTC), plus an estimate of the TCP/IP headers from the kernel's
 * segment counters. Cellular data is billed per byte.
 */
#include <sys/socket.h>
#include <netinet/in.h>
#include <linux/tcp.h>		/* struct tcp_info with tcpi_segs_* (glibc's lacks them) */

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"

#define USAGE_IP4_HDR	20
#define USAGE_IP6_HDR	40
#define USAGE_TCP_HDR	20
#define USAGE_TS_OPT	12	/* timestamps option, padded */

void
usage_init(struct usage_book *b)
{
	memset(b, 0, sizeof *b);
	TAILQ_INIT(&b->paths);
	b->day = (long)(time(NULL) / 86400);
}

void
usage_free(struct usage_book *b)
{
	struct path_usage *u;

	while ((u = TAILQ_FIRST(&b->paths)) != NULL) {
		TAILQ_REMOVE(&b->paths, u, entry);
		free(u->name);
		free(u);
	}
}

/* The entry for a path name, made (all zero) the first time. */
struct path_usage *
usage_path(struct usage_book *b, const char *name)
{
	struct path_usage *u;

	TAILQ_FOREACH(u, &b->paths, entry)
		if (strcmp(u->name, name) == 0)
			return u;
	u = xcalloc(1, sizeof *u);
	u->name = xstrdup(name);
	TAILQ_INSERT_TAIL(&b->paths, u, entry);
	return u;
}

/* A new UTC day (or a clock that jumped to another one): today starts over. */
void
usage_roll(struct usage_book *b, time_t now)
{
	struct path_usage *u;
	long day = (long)(now / 86400);

	if (day == b->day)
		return;
	TAILQ_FOREACH(u, &b->paths, entry)
		memset(&u->today, 0, sizeof u->today);
	b->day = day;
}

static void
usage_add(struct usage *u, uint64_t s, uint64_t r, uint64_t ts, uint64_t tr)
{
	u->sent += s;
	u->received += r;
	u->tcp_sent += ts;
	u->tcp_received += tr;
}

/*
 * Book what session sess (on path name) moved since its last sample, to
 * today's UTC day. live holds what was booked of the session it last saw
 * (each relay slot has its own, as its sessions run beside the other's).
 * last: the session is gone, live's next counters are a new session's.
 */
void
usage_book(struct usage_book *b, struct usage_live *live, const void *sess,
    const char *name, const struct usage_sample *now, int last)
{
	struct path_usage *u = usage_path(b, name);
	struct usage_sample *seen = &live->seen;
	uint64_t ds, dr, ts = 0, tr = 0;

	usage_roll(b, time(NULL));
	if (live->sess != sess) {
		memset(seen, 0, sizeof *seen);
		live->sess = sess;
	}
	ds = now->sent >= seen->sent ? now->sent - seen->sent : 0;
	dr = now->received >= seen->received ? now->received -
	    seen->received : 0;
	if (now->hdr != 0) {
		/* 32-bit kernel counters: sampled at least hourly */
		ts = (uint64_t)(uint32_t)(now->segs_out - seen->segs_out) *
		    now->hdr;
		tr = (uint64_t)(uint32_t)(now->segs_in - seen->segs_in) *
		    now->hdr;
	} else if (now->sent != 0 || now->received != 0)
		u->tcp_unknown = 1;
	usage_add(&u->total, ds, dr, ts, tr);
	usage_add(&u->today, ds, dr, ts, tr);
	*seen = *now;
	if (last) {
		memset(seen, 0, sizeof *seen);
		live->sess = NULL;
	}
}

/*
 * The kernel's segment counters of a TCP socket and the header bytes each
 * segment carries (IPv4 or IPv6, TCP, timestamps if negotiated; SACK
 * blocks and other options not counted). hdr stays 0 when the kernel has
 * no tcpi_segs_* (before 4.2).
 */
void
usage_tcp(int fd, struct usage_sample *s)
{
	struct tcp_info ti;
	struct sockaddr_storage ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
	socklen_t len = sizeof ti, sslen = sizeof ss;
	unsigned int ip = USAGE_IP4_HDR;

	s->hdr = 0;
	if (fd == -1)
		return;
	memset(&ti, 0, sizeof ti);
	if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) == -1 ||
	    len < offsetof(struct tcp_info, tcpi_segs_in) +
	    sizeof ti.tcpi_segs_in)
		return;
	if (getsockname(fd, (struct sockaddr *)&ss, &sslen) == 0 &&
	    ss.ss_family == AF_INET6 &&
	    !IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr))
		ip = USAGE_IP6_HDR;
	s->segs_out = ti.tcpi_segs_out;
	s->segs_in = ti.tcpi_segs_in;
	s->hdr = ip + USAGE_TCP_HDR +
	    ((ti.tcpi_options & TCPI_OPT_TIMESTAMPS) ? USAGE_TS_OPT : 0);
}
