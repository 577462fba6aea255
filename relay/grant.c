/*
 * Time-limited access, as SORACOM Napter does it, on our own relay:
 *
 *   simtunctl grant OPERATOR DEVICEPATTERN[:PORT] --for D [--from CIDR,...]
 *	lets a listed key open channels to the matching devices (as if its
 *	permitopen had one more entry) until the window ends;
 *   simtunctl expose DEVICE[:PORT] --for D [--from CIDR,...] [--listen P]
 *	opens a public port on forward_address to one device;
 *   simtunctl grants [--json], simtunctl revoke ID.
 *
 * Each is one struct grant with one end (grant_end: expired or revoked)
 * that closes what it opened, audits it and writes it to state_db; those
 * in force come back after a restart (state.c calls grant_restore).
 */
#include <sys/socket.h>

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/listener.h>

#include "relay.h"

static void grant_end(struct grant *, const char *, const char *);

/* "2026-12-02 15:04:05 UTC" */
static const char *
grant_time(time_t t)
{
	static char buf[40];
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S UTC", &tm);
	return buf;
}

/* "site7-*:22", "pi-01:*" */
static const char *
grant_target(const struct grant *g)
{
	static char buf[300];

	if (g->port == 0)
		snprintf(buf, sizeof buf, "%s:*", g->target);
	else
		snprintf(buf, sizeof buf, "%s:%d", g->target, g->port);
	return buf;
}

/* The audit record of a grant's own events (grant, expose, end). */
static void
grant_audit(struct grant *g, const char *event, const char *reason,
    const char *asked_by)
{
	struct relay *r = g->relay;
	struct audit a;

	audit_init(&a, event, g->operator, g->operator_fp, g->sources ?
	    g->sources : "*", g->listen, g->target, g->port, reason);
	a.grant = g->id;
	a.asked_by = asked_by;
	if (g->kind == GRANT_EXPOSE)
		audit_event(r, &a, 0, "expose %llu: port %d to %s from %s "
		    "until %s: %s%s%s%s", (unsigned long long)g->id, g->listen,
		    grant_target(g), g->sources ? g->sources : "anywhere",
		    grant_time(g->expires), reason, asked_by ? " (asked by " :
		    "", asked_by ? asked_by : "", asked_by ? ")" : "");
	else
		audit_event(r, &a, 0, "grant %llu: %s may open %s from %s "
		    "until %s: %s%s%s%s", (unsigned long long)g->id,
		    g->operator, grant_target(g), g->sources ? g->sources :
		    "anywhere", grant_time(g->expires), reason, asked_by ?
		    " (asked by " : "", asked_by ? asked_by : "", asked_by ?
		    ")" : "");
}

/* Free one (its socket and timer too); it must be off the list. */
static void
grant_free(struct grant *g)
{
	if (g->evl != NULL) {
		evconnlistener_free(g->evl);
		accept_pause_clear(&g->ap);
	}
	if (g->ev_end != NULL)
		event_free(g->ev_end);
	free(g->operator);
	free(g->operator_fp);
	free(g->target);
	free(g->sources);
	free(g->asked_by);
	free(g->end_reason);
	free(g);
}

/* An ended grant is in state_db: forget it. */
void
grant_forget(struct grant *g)
{
	TAILQ_REMOVE(&g->relay->grants, g, entry);
	grant_free(g);
}

/* At exit: free all (those in force stay in force in state_db). */
void
grant_clear(struct relay *r)
{
	struct grant *g;

	while ((g = TAILQ_FIRST(&r->grants)) != NULL)
		grant_forget(g);
}

/* How many of a kind are in force (metrics). */
unsigned int
grant_count(struct relay *r, enum grant_kind kind)
{
	struct grant *g;
	unsigned int n = 0;

	TAILQ_FOREACH(g, &r->grants, entry)
		n += g->ended == 0 && g->kind == kind;
	return n;
}

/* The window closed. */
static void
grant_expired(evutil_socket_t fd, short what, void *arg)
{
	grant_end(arg, "expired", NULL);
}

/*
 * The one end of a grant or expose: no new channel or connection under
 * it, and those it opened (or that wait for their device under it) are
 * closed with the reason; audited; written to state_db.
 */
static void
grant_end(struct grant *g, const char *reason, const char *asked_by)
{
	struct relay *r = g->relay;
	char why[128];

	if (g->ended != 0)
		return;
	g->ended = time(NULL);
	g->end_reason = xstrdup(reason);
	g->dirty = 1;
	if (g->ev_end != NULL)
		event_del(g->ev_end);
	if (g->evl != NULL) {
		evconnlistener_free(g->evl);
		accept_pause_clear(&g->ap);
		g->evl = NULL;
	}
	snprintf(why, sizeof why, "%s %llu %s", g->kind == GRANT_EXPOSE ?
	    "expose" : "grant", (unsigned long long)g->id, reason);
	grant_audit(g, strcmp(reason, "revoked") == 0 ? "revoke" : "expire",
	    reason, asked_by);
	conn_close_grant(r, g->id, why);
	held_drop_grant(r, g->id, why);
	state_save(r);			/* may free g */
}

/*
 * The timer that ends g: secs from now for a new one (a window of
 * --for 3s is 3 s, whatever the fraction of the second it began in),
 * else at its expiry (whole seconds, read back after a restart).
 */
static void
grant_arm(struct grant *g, unsigned long secs)
{
	struct timeval tv = { (time_t)secs, 0 };
	struct timespec now;
	long long us;

	g->ev_end = evtimer_new(g->relay->base, grant_expired, g);
	if (g->ev_end == NULL)
		fatalx("evtimer_new");
	if (secs == 0) {
		clock_gettime(CLOCK_REALTIME, &now);
		us = ((long long)g->expires - now.tv_sec) * 1000000 -
		    now.tv_nsec / 1000;
		if (us < 0)
			us = 0;
		tv.tv_sec = (time_t)(us / 1000000);
		tv.tv_usec = (suseconds_t)(us % 1000000);
	}
	evtimer_add(g->ev_end, &tv);
}

/*
 * The grant that lets sess open host:port now, if one does; else NULL,
 * with *why set when a grant matched all but the source address.
 */
struct grant *
grant_permits(struct relay *r, struct session *sess, const char *host,
    int port, const char **why)
{
	static char buf[160];
	struct grant *g;
	time_t now = time(NULL);

	TAILQ_FOREACH(g, &r->grants, entry) {
		/* the timer ends it; expires (whole seconds) is a backstop */
		if (g->kind != GRANT_ACCESS || g->ended != 0 ||
		    now > g->expires || sess->fp == NULL ||
		    strcmp(g->operator_fp, sess->fp) != 0 ||
		    (g->port != 0 && g->port != port) ||
		    !match_pattern(host, g->target))
			continue;
		if (g->sources != NULL &&
		    match_addr_list(sess->peer, g->sources) != 1) {
			snprintf(buf, sizeof buf, "grant %llu does not allow "
			    "source %s (--from %s)", (unsigned long long)g->id,
			    sess->peer, g->sources);
			*why = buf;
			continue;
		}
		return g;
	}
	return NULL;
}

/* The listener that serves an expose now, if its device is there. */
static struct listener *
grant_expose_target(struct relay *r, struct grant *g)
{
	struct listener *l;

	if ((l = listener_find_name(r, g->target, g->port)) != NULL)
		return l;
	l = listener_find(r, g->port);
	if (l != NULL && l->name == NULL && ((l->owner != NULL &&
	    l->owner->name != NULL && !strcmp(l->owner->name, g->target)) ||
	    (l->owner == NULL && l->linger_name != NULL &&
	    !strcmp(l->linger_name, g->target))))
		return l;
	return NULL;
}

/* A laptop at peer:peer_port as an origin. */
static const struct origin *
grant_origin(struct origin *o, const char *peer, int peer_port)
{
	memset(o, 0, sizeof *o);
	o->peer = peer;
	o->peer_port = peer_port;
	return o;
}

/*
 * A connection to an exposed port: from a source --from allows, to the
 * device's forward (as a connection to its port would be), or held for
 * the device like one.
 */
static void
grant_expose_accept(struct evconnlistener *evl, evutil_socket_t fd,
    struct sockaddr *sa, int salen, void *arg)
{
	struct grant *g = arg;
	struct relay *r = g->relay;
	struct listener *l;
	struct held *h;
	struct audit a;
	struct origin o;
	const char *why = NULL;
	char peer[64], reason[200];
	int peer_port;

	net_addrstr(sa, peer, sizeof peer, &peer_port);
	if (g->ended != 0 || time(NULL) > g->expires)
		why = "expose ended";
	else if (g->sources != NULL && match_addr_list(peer, g->sources) != 1) {
		snprintf(reason, sizeof reason, "source not allowed by expose "
		    "%llu (--from %s)", (unsigned long long)g->id, g->sources);
		why = reason;
	} else if ((l = grant_expose_target(r, g)) != NULL) {
		g->opened++;
		g->dirty = 1;
		conn_accept(l, fd, sa, g->id);
		return;
	} else if ((h = held_add(r, g->target, g->port, NULL, fd, NULL, NULL,
	    grant_origin(&o, peer, peer_port), NULL, &why)) != NULL) {
		h->grant = g->id;
		g->opened++;
		g->dirty = 1;
		audit_init(&a, "open", NULL, NULL, peer, peer_port, g->target,
		    g->port, "held: device offline or silent");
		a.grant = g->id;
		audit_event(r, &a, 0, "device %s: connection from %s port %d "
		    "to exposed port %d held (expose %llu)", g->target, peer,
		    peer_port, g->listen, (unsigned long long)g->id);
		return;
	}
	audit_init(&a, "deny", NULL, NULL, peer, peer_port, g->target,
	    g->port, why);
	a.grant = g->id;
	r->refused++;
	audit_event(r, &a, 0, "device %s: refused connection from %s port %d "
	    "to exposed port %d: %s", g->target, peer, peer_port, g->listen,
	    why);
	close(fd);
}

/* Out of descriptors on an exposed port: back off instead of spinning. */
static void
grant_expose_error(struct evconnlistener *evl, void *arg)
{
	struct grant *g = arg;

	accept_pause_error(&g->ap, "exposed port");
}

/* Listen on forward_address:port for g; -1 with errno. */
static int
grant_listen(struct grant *g, int port)
{
	struct relay *r = g->relay;
	struct sockaddr_storage ss;
	socklen_t sslen;
	const char *why;

	if (port < 1 || port > 65535 || r->byport[port] != NULL) {
		errno = EADDRINUSE;
		return -1;
	}
	if (net_resolve_listen(r->conf.forward_address, (uint16_t)port, &ss,
	    &sslen, &why) == -1) {
		errno = EADDRNOTAVAIL;
		return -1;
	}
	g->evl = evconnlistener_new_bind(r->base, grant_expose_accept, g,
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC,
	    64, (struct sockaddr *)&ss, (int)sslen);
	if (g->evl == NULL)
		return -1;
	evconnlistener_set_error_cb(g->evl, grant_expose_error);
	accept_pause_init(&g->ap, r->base, g->evl, NULL, NULL);
	g->listen = port;
	return 0;
}

/*
 * A grant read back from state_db at start: in force again, or ended now
 * if its window passed while the relay was down (or its port cannot be
 * had again). 0 if in force.
 */
int
grant_restore(struct relay *r, struct grant *g)
{
	char why[200];

	TAILQ_INSERT_TAIL(&r->grants, g, entry);
	if (time(NULL) >= g->expires) {
		grant_end(g, "expired while the relay was down", NULL);
		return -1;
	}
	if (g->kind == GRANT_EXPOSE && grant_listen(g, g->listen) == -1) {
		snprintf(why, sizeof why, "cannot listen on port %d again "
		    "after a restart: %s", g->listen, strerror(errno));
		log_warnx("expose %llu: %s", (unsigned long long)g->id, why);
		grant_end(g, why, NULL);
		return -1;
	}
	grant_arm(g, 0);
	log_info("%s %llu in force again: %s%s%s until %s",
	    g->kind == GRANT_EXPOSE ? "expose" : "grant",
	    (unsigned long long)g->id, g->operator ? g->operator : "",
	    g->operator ? " " : "", grant_target(g), grant_time(g->expires));
	return 0;
}

/* The key a grant is for: its comment or SHA256 fingerprint. */
static struct authkey *
grant_key(struct relay *r, const char *who, struct evbuffer *out)
{
	struct authkey *ak, *found = NULL;

	if (!strncmp(who, "SHA256:", 7)) {
		if ((found = authkey_index_fp(&r->keyidx, who)) == NULL)
			evbuffer_add_printf(out, "error: no key %s in "
			    "authorized_keys\n", esc(who));
		return found;
	}
	TAILQ_FOREACH(ak, &r->keys, entry) {
		if (strcmp(ak->name, who) != 0)
			continue;
		if (found != NULL && strcmp(found->fp, ak->fp) != 0) {
			evbuffer_add_printf(out, "error: several keys are "
			    "named %s; grant by fingerprint (%s, %s)\n",
			    esc(who), found->fp, ak->fp);
			return NULL;
		}
		found = ak;
	}
	if (found == NULL)
		evbuffer_add_printf(out, "error: no key named %s in "
		    "authorized_keys\n", esc(who));
	return found;
}

/*
 * "NAME[:PORT]" (PORT a number or *): the name and port (0: any, or
 * none given when *given is 0). -1 with an error line.
 */
static int
grant_parse_target(const char *arg, char **name, int *port, int *given,
    int wild, struct evbuffer *out)
{
	const char *colon = strrchr(arg, ':'), *why;
	unsigned long p;
	size_t n = colon ? (size_t)(colon - arg) : strlen(arg), i;

	*given = colon != NULL;
	*port = 0;
	if (n == 0 || n > 255) {
		evbuffer_add_printf(out, "error: \"%s\": no device name\n",
		    esc(arg));
		return -1;
	}
	for (i = 0; i < n; i++)
		if (!(arg[i] == '-' || arg[i] == '.' || arg[i] == '_' ||
		    (arg[i] >= '0' && arg[i] <= '9') ||
		    (arg[i] >= 'a' && arg[i] <= 'z') ||
		    (arg[i] >= 'A' && arg[i] <= 'Z') ||
		    (wild && (arg[i] == '*' || arg[i] == '?')))) {
			evbuffer_add_printf(out, "error: \"%s\": a device %s "
			    "has letters, digits, '-', '.', '_'%s\n", esc(arg),
			    wild ? "pattern" : "name", wild ?
			    ", '*' and '?'" : "");
			return -1;
		}
	if (colon != NULL && !(wild && !strcmp(colon + 1, "*"))) {
		if (parse_uint(colon + 1, 1, 65535, &p, &why) == -1) {
			evbuffer_add_printf(out, "error: \"%s\": port: %s\n",
			    esc(arg), why);
			return -1;
		}
		*port = (int)p;
	}
	*name = xstrndup(arg, n);
	return 0;
}

/* The options after the target: --for (required), --from, --listen. */
struct grant_opts {
	unsigned long	 secs;
	char		*sources;
	int		 listen;
};

static int
grant_parse_opts(struct relay *r, int argc, char **argv, int expose,
    struct grant_opts *o, struct evbuffer *out)
{
	const char *why;
	unsigned long p;
	char err[200];
	int i;

	memset(o, 0, sizeof *o);
	for (i = 0; i < argc; i += 2) {		/* each option has a value */
		if (i + 1 >= argc) {
			evbuffer_add_printf(out, "error: %s needs a value\n",
			    esc(argv[i]));
			return -1;
		}
		if (!strcmp(argv[i], "--for")) {
			if (parse_seconds(argv[i + 1], 1, ULONG_MAX / 2,
			    &o->secs, &why) == -1) {
				evbuffer_add_printf(out, "error: --for \"%s\": "
				    "%s (90s, 30m, 2h, 1d)\n", esc(argv[i + 1]),
				    why);
				return -1;
			}
		} else if (!strcmp(argv[i], "--from")) {
			if (addr_list_check(argv[i + 1], err, sizeof err) ==
			    -1) {
				evbuffer_add_printf(out, "error: --from: %s\n",
				    err);
				return -1;
			}
			free(o->sources);
			o->sources = xstrdup(argv[i + 1]);
		} else if (expose && !strcmp(argv[i], "--listen")) {
			if (parse_uint(argv[i + 1], 1, 65535, &p, &why) == -1) {
				evbuffer_add_printf(out, "error: --listen "
				    "\"%s\": %s\n", esc(argv[i + 1]), why);
				return -1;
			}
			o->listen = (int)p;
		} else {
			evbuffer_add_printf(out, "error: unknown option %s\n",
			    esc(argv[i]));
			return -1;
		}
	}
	if (o->secs == 0) {
		evbuffer_add_printf(out, "error: --for DURATION is required "
		    "(90s, 30m, 2h, 1d)\n");
		return -1;
	}
	if (o->secs > r->conf.max_grant_time) {
		evbuffer_add_printf(out, "error: --for %lu s is longer than "
		    "max_grant_time (%lu s)\n", o->secs,
		    r->conf.max_grant_time);
		return -1;
	}
	if (grant_count(r, GRANT_ACCESS) + grant_count(r, GRANT_EXPOSE) >=
	    r->conf.max_grants) {
		evbuffer_add_printf(out, "error: %lu grants and exposes are in "
		    "force (max_grants)\n", r->conf.max_grants);
		return -1;
	}
	return 0;
}

/* A new grant or expose from the options; in force from now. */
static struct grant *
grant_new(struct relay *r, enum grant_kind kind, struct grant_opts *o,
    const struct control_peer *peer)
{
	struct timespec now;
	struct grant *g;

	g = xcalloc(1, sizeof *g);
	g->relay = r;
	g->kind = kind;
	g->id = r->next_grant++;
	clock_gettime(CLOCK_REALTIME, &now);
	g->created = now.tv_sec;
	/* whole seconds, rounded up: read back after a restart, the
	 * window ends late by a fraction of a second, never early */
	g->expires = now.tv_sec + (time_t)o->secs + (now.tv_nsec > 0);
	g->secs = o->secs;
	g->sources = o->sources;
	o->sources = NULL;
	g->asked_by = xstrdup(peer->who);
	g->dirty = 1;
	return g;
}

/* In force: on the list, timer armed, audited, written, answered. */
static void
grant_start(struct grant *g, const struct control_peer *peer,
    struct evbuffer *out)
{
	struct relay *r = g->relay;

	TAILQ_INSERT_TAIL(&r->grants, g, entry);
	grant_arm(g, g->secs);
	grant_audit(g, g->kind == GRANT_EXPOSE ? "expose" : "grant",
	    "in force", peer->who);
	state_save(r);
	if (g->kind == GRANT_EXPOSE)
		evbuffer_add_printf(out, "expose %llu until %s: port %d on %s "
		    "to %s from %s\n", (unsigned long long)g->id,
		    grant_time(g->expires), g->listen, r->conf.forward_address,
		    grant_target(g), g->sources ? g->sources : "anywhere");
	else
		evbuffer_add_printf(out, "grant %llu until %s: %s may open %s "
		    "from %s\n", (unsigned long long)g->id,
		    grant_time(g->expires), g->operator, grant_target(g),
		    g->sources ? g->sources : "anywhere");
	if (r->state != NULL && g->dirty)
		evbuffer_add_printf(out, "warning: not written to state_db "
		    "(see the relay's log); in force until the relay "
		    "restarts\n");
}

/* simtunctl grant OPERATOR DEVICEPATTERN[:PORT] --for D [--from ...] */
static void
grant_access(struct relay *r, int argc, char **argv, struct evbuffer *out,
    const struct control_peer *peer)
{
	struct grant_opts o;
	struct authkey *ak;
	struct grant *g;
	char *pattern;
	int port, given;

	if (argc < 2) {
		evbuffer_add_printf(out, "error: usage: grant OPERATOR "
		    "DEVICEPATTERN[:PORT] --for DURATION [--from CIDR,...]\n");
		return;
	}
	if ((ak = grant_key(r, argv[0], out)) == NULL)
		return;
	if (grant_parse_target(argv[1], &pattern, &port, &given, 1, out) == -1)
		return;
	if (grant_parse_opts(r, argc - 2, argv + 2, 0, &o, out) == -1) {
		free(pattern);
		free(o.sources);
		return;
	}
	g = grant_new(r, GRANT_ACCESS, &o, peer);
	g->operator = xstrdup(ak->name);
	g->operator_fp = xstrdup(ak->fp);
	g->target = pattern;
	g->port = port;
	grant_start(g, peer, out);
}

/* The one port device serves (its only forward), or 0. */
static int
grant_device_port(struct relay *r, const char *device)
{
	struct listener *l;
	int port = 0;

	TAILQ_FOREACH(l, &r->listeners, entry) {
		if ((l->name != NULL && strcmp(l->name, device) != 0) ||
		    (l->name == NULL && (l->owner == NULL ||
		    l->owner->name == NULL || strcmp(l->owner->name,
		    device) != 0)))
			continue;
		if (port != 0 && port != l->port)
			return 0;
		port = l->port;
	}
	return port;
}

/* simtunctl expose DEVICE[:PORT] --for D [--from ...] [--listen P] */
static void
grant_expose(struct relay *r, int argc, char **argv, struct evbuffer *out,
    const struct control_peer *peer)
{
	struct grant_opts o;
	struct grant *g, *e;
	char *device;
	int port, given, p, rc = -1;

	if (argc < 1) {
		evbuffer_add_printf(out, "error: usage: expose DEVICE[:PORT] "
		    "--for DURATION [--from CIDR,...] [--listen PORT]\n");
		return;
	}
	if (grant_parse_target(argv[0], &device, &port, &given, 0, out) == -1)
		return;
	if (grant_parse_opts(r, argc - 1, argv + 1, 1, &o, out) == -1)
		goto done;
	if (!operator_known_device(r, device)) {
		evbuffer_add_printf(out, "error: no device named %s in "
		    "authorized_keys\n", esc(device));
		goto done;
	}
	if (!given && (port = grant_device_port(r, device)) == 0) {
		evbuffer_add_printf(out, "error: %s has no single forward "
		    "now: name it, %s:PORT\n", device, device);
		goto done;
	}
	g = grant_new(r, GRANT_EXPOSE, &o, peer);
	g->target = device;
	device = NULL;
	g->port = port;
	if (o.listen != 0) {
		TAILQ_FOREACH(e, &r->grants, entry)
			if (e->evl != NULL && e->listen == o.listen)
				break;
		if (e == NULL)
			rc = grant_listen(g, o.listen);
		else
			errno = EADDRINUSE;
	} else {
		for (p = (int)r->conf.expose_ports.lo; rc == -1 &&
		    p <= (int)r->conf.expose_ports.hi; p++) {
			TAILQ_FOREACH(e, &r->grants, entry)
				if (e->evl != NULL && e->listen == p)
					break;
			if (e == NULL)
				rc = grant_listen(g, p);
		}
	}
	if (rc == -1) {
		if (o.listen != 0)
			evbuffer_add_printf(out, "error: cannot listen on %s "
			    "port %d: %s\n", r->conf.forward_address, o.listen,
			    strerror(errno));
		else
			evbuffer_add_printf(out, "error: no free port in "
			    "expose_ports (%lu-%lu)\n", r->conf.expose_ports.lo,
			    r->conf.expose_ports.hi);
		r->next_grant--;
		grant_free(g);
		goto done;
	}
	grant_start(g, peer, out);
done:
	free(device);
	free(o.sources);
}

/* simtunctl revoke ID */
static void
grant_revoke(struct relay *r, int argc, char **argv, struct evbuffer *out,
    const struct control_peer *peer)
{
	struct grant *g;
	unsigned long id;
	const char *why;

	if (argc != 1 || parse_uint(argv[0], 1, ULONG_MAX, &id, &why) == -1) {
		evbuffer_add_printf(out, "error: usage: revoke ID (an id from "
		    "simtunctl grants)\n");
		return;
	}
	TAILQ_FOREACH(g, &r->grants, entry)
		if (g->id == id && g->ended == 0)
			break;
	if (g == NULL) {
		evbuffer_add_printf(out, "error: no grant or expose %lu in "
		    "force\n", id);
		return;
	}
	evbuffer_add_printf(out, "revoked %s %lu\n", g->kind == GRANT_EXPOSE ?
	    "expose" : "grant", id);
	grant_end(g, "revoked", peer->who);	/* may free g */
}

/* simtunctl grants [--json]: what is in force. */
void
grant_list(struct relay *r, struct evbuffer *out, int json)
{
	struct grant *g;
	char left[32], listen[16];
	time_t now = time(NULL);
	int first = 1;

	if (json)
		evbuffer_add_printf(out, "{\"grants\":[");
	else
		evbuffer_add_printf(out, "%-5s %-7s %-16s %-20s %-18s %-6s "
		    "%-23s %-7s %s\n", "ID", "KIND", "OPERATOR", "TARGET",
		    "FROM", "LISTEN", "UNTIL", "LEFT", "ASKED BY");
	TAILQ_FOREACH(g, &r->grants, entry) {
		if (g->ended != 0)
			continue;
		if (json) {
			evbuffer_add_printf(out, "%s{\"id\":%llu,\"kind\":"
			    "\"%s\",\"operator\":", first ? "" : ",",
			    (unsigned long long)g->id, g->kind ==
			    GRANT_EXPOSE ? "expose" : "grant");
			json_string(out, g->operator ? g->operator : "-");
			evbuffer_add_printf(out, ",\"key\":");
			json_string(out, g->operator_fp ? g->operator_fp : "-");
			evbuffer_add_printf(out, ",\"target\":");
			json_string(out, g->target);
			evbuffer_add_printf(out, ",\"port\":%d,\"from\":",
			    g->port);
			json_string(out, g->sources ? g->sources : "*");
			evbuffer_add_printf(out, ",\"listen\":%d,\"created\":"
			    "%lld,\"expires\":%lld,\"opened\":%llu,"
			    "\"asked_by\":", g->listen, (long long)g->created,
			    (long long)g->expires,
			    (unsigned long long)g->opened);
			json_string(out, g->asked_by);
			evbuffer_add_printf(out, "}");
			first = 0;
			continue;
		}
		fmt_duration(left, sizeof left, g->expires - now);
		snprintf(listen, sizeof listen, "%d", g->listen);
		evbuffer_add_printf(out, "%-5llu %-7s %-16s %-20s %-18s %-6s "
		    "%-23s %-7s %s\n", (unsigned long long)g->id,
		    g->kind == GRANT_EXPOSE ? "expose" : "grant",
		    g->operator ? g->operator : "-", grant_target(g),
		    g->sources ? g->sources : "*", g->listen ? listen : "-",
		    grant_time(g->expires), left, g->asked_by);
	}
	if (json)
		evbuffer_add_printf(out, "]}\n");
}

/* The control requests of this file; argv[0] is the verb. */
void
grant_request(struct relay *r, int argc, char **argv, struct evbuffer *out,
    const struct control_peer *peer)
{
	if (!strcmp(argv[0], "grant"))
		grant_access(r, argc - 1, argv + 1, out, peer);
	else if (!strcmp(argv[0], "expose"))
		grant_expose(r, argc - 1, argv + 1, out, peer);
	else if (!strcmp(argv[0], "revoke"))
		grant_revoke(r, argc - 1, argv + 1, out, peer);
	else if (!strcmp(argv[0], "grants") && argc == 1)
		grant_list(r, out, 0);
	else if (!strcmp(argv[0], "grants") && argc == 2 &&
	    !strcmp(argv[1], "--json"))
		grant_list(r, out, 1);
	else
		evbuffer_add_printf(out, "error: usage: grants [--json]\n");
}
