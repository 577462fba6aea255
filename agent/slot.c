/*
 * One relay slot: the agent keeps relays_active of them, each with at most
 * one session. A slot tries its relay's paths in order, then the next
 * relay no other slot uses, and backs off once every relay it may use has
 * failed; while on a lower relay or path it probes the better one and
 * moves back when that answers.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"

#define SLOT_HOLD_MAX	3600	/* s: probes held after failed moves, at most */

static void slot_attempt(struct slot *, int, int);
static void slot_status(struct slot *, const char *, ...) PRINTFLIKE(2, 3);
static void slot_session_cb(struct session *, const struct session_report *,
    void *);
static void slot_probed_cb(struct probe *, int, const char *, void *);

/* Seconds on a clock that does not jump. */
static time_t
slot_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

/* The other slot when two are active, else NULL. */
static struct slot *
slot_other(struct slot *s)
{
	struct agent *a = s->agent;

	if (a->nslots < 2)
		return NULL;
	return &a->slots[1 - s->idx];
}

/* Is relay rel used, tried or waited for by the other slot? */
static int
slot_taken(struct slot *s, int rel)
{
	struct slot *o = slot_other(s);

	return o != NULL && o->rel == rel;
}

/* The relay after rel in file order (wrapping) no other slot uses; rel if none. */
static int
slot_next_relay(struct slot *s, int rel)
{
	int k, r, n = s->agent->conf->nrelays;

	for (k = 1; k < n; k++) {
		r = (rel + k) % n;
		if (!slot_taken(s, r))
			return r;
	}
	return rel;
}

/* Where the slot starts: relay idx (the first for slot 0), else the next free. */
static int
slot_first_relay(struct slot *s)
{
	int r = s->idx % s->agent->conf->nrelays;

	return slot_taken(s, r) ? slot_next_relay(s, r) : r;
}

/* How many relays this slot may use: all but the other slot's. */
static int
slot_ncandidates(struct slot *s)
{
	int n = s->agent->conf->nrelays - (s->agent->nslots - 1);

	return n > 0 ? n : 1;
}

/* The relay in use, being tried or waited for. */
struct relay_conf *
slot_relay(struct slot *s)
{
	return config_relay(s->agent->conf, s->rel);
}

/* The path in use or last tried (NULL = default route). */
struct path *
slot_path(struct slot *s)
{
	return path_by_index(s->agent->conf, s->cur);
}

/* A relay on a path for logs and status: "host", or "NAME (host)" if named. */
static const char *
slot_label(struct slot *s, int rel, int path, char *buf, size_t len)
{
	struct agent_config *c = s->agent->conf;
	struct relay_conf *r = config_relay(c, rel);
	const char *host = path_host(r, path_by_index(c, path));

	if (r->named)
		snprintf(buf, len, "%s (%s)", r->name, host);
	else
		snprintf(buf, len, "%s", host);
	return buf;
}

/* What this slot does now, for status and the agent's STATUS=. */
static void
slot_status(struct slot *s, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(s->status, sizeof s->status, fmt, ap);
	va_end(ap);
	s->state_since = time(NULL);
	agent_status_changed(s->agent);
}

/* "connected", "waiting" (in backoff) or "connecting". */
const char *
slot_state(struct slot *s)
{
	if (s->sess != NULL && session_is_up(s->sess))
		return "connected";
	if (s->waiting)
		return "waiting";
	return "connecting";
}

/* Milliseconds to the next attempt while waiting, else -1. */
long long
slot_retry_ms(struct slot *s)
{
	struct timespec now;
	long long ms;

	if (!s->waiting)
		return -1;
	clock_gettime(CLOCK_MONOTONIC, &now);
	ms = (s->retry_at.tv_sec - now.tv_sec) * 1000LL +
	    (s->retry_at.tv_nsec - now.tv_nsec) / 1000000;
	return ms < 0 ? 0 : ms;
}

/* How often a slot on a lower relay or path checks the better one. */
static time_t
slot_probe_secs(struct slot *s)
{
	struct agent_config *c = s->agent->conf;
	unsigned long t = config_connect_timeout(c);

	if (c->ka_interval > t)
		t = c->ka_interval;
	return (time_t)t;
}

/*
 * Where this slot would rather be: its first relay if it is on another,
 * else the first path of its relay. 0 = it is where it should be.
 */
static int
slot_better(struct slot *s, int *rel, int *path)
{
	int first = slot_first_relay(s);

	if (first != s->rel) {
		*rel = first;
		*path = 0;
		return 1;
	}
	if (s->cur != 0) {
		*rel = s->rel;
		*path = 0;
		return 1;
	}
	return 0;
}

/* Stop probing (on the best target now, or going away). */
static void
slot_probe_stop(struct slot *s)
{
	event_del(s->ev_probe);
	if (s->probe != NULL) {
		probe_cancel(s->probe);
		s->probe = NULL;
	}
}

/* Up on a lower relay or path: probe the better one now and then. */
static void
slot_probe_arm(struct slot *s)
{
	struct timeval tv = { slot_probe_secs(s), 0 };
	int rel, path;

	if (s->sess == NULL || !session_is_up(s->sess) ||
	    !slot_better(s, &rel, &path))
		return;
	if (!evtimer_pending(s->ev_probe, NULL))
		evtimer_add(s->ev_probe, &tv);
}

/* The slot now uses (or waits for) another relay: the other may move up. */
static void
slot_moved(struct slot *s)
{
	struct slot *o = slot_other(s);

	if (o != NULL)
		slot_probe_arm(o);
}

/* Backoff timer expired: start the cycle that was planned. */
static void
slot_retry_cb(evutil_socket_t fd, short what, void *arg)
{
	struct slot *s = arg;

	s->waiting = 0;
	s->cycle_tried = 0;
	slot_attempt(s, s->rel, s->cycle_start);
}

/* Wait out a backoff delay, then try relay rel from path start. */
static void
slot_wait(struct slot *s, int rel, int start)
{
	unsigned long ms = backoff_next(&s->bo);
	struct timeval tv = { (time_t)(ms / 1000), (suseconds_t)(ms % 1000) *
	    1000 };
	struct relay_conf *r = config_relay(s->agent->conf, rel);
	char who[64] = "";

	s->waiting = 1;
	s->rel = rel;
	s->cycle_start = start;
	s->cycle_tried = 0;
	evtimer_add(s->ev_retry, &tv);
	clock_gettime(CLOCK_MONOTONIC, &s->retry_at);
	s->retry_at.tv_sec += tv.tv_sec;
	s->retry_at.tv_nsec += tv.tv_usec * 1000;
	if (r->named)
		snprintf(who, sizeof who, "relay %s ", r->name);
	log_info("retrying %sin %.1f s", who, ms / 1000.0);
	slot_status(s, "retrying %sin %lu s: %s", who, (ms + 500) / 1000,
	    s->last_error);
	slot_moved(s);
}

/* How to reach relay rel on path idx: for a session or a probe. */
static void
slot_target(struct slot *s, int rel, int idx, struct dial_target *t)
{
	struct agent *a = s->agent;
	struct path *p = path_by_index(a->conf, idx);

	memset(t, 0, sizeof *t);
	t->base = a->base;
	t->dns = a->dns;
	t->relay = config_relay(a->conf, rel);
	t->host = path_host(t->relay, p);
	t->port = path_port(t->relay, p);
	t->path = p;
	t->timeout = config_connect_timeout(a->conf);
}

/* Try relay rel on path idx now. */
static void
slot_attempt(struct slot *s, int rel, int idx)
{
	struct dial_target t;
	char l[300];

	event_del(s->ev_retry);
	s->waiting = 0;
	s->rel = rel;
	s->cur = idx;
	s->cycle_tried++;
	slot_status(s, "connecting to %s via %s", slot_label(s, rel, idx, l,
	    sizeof l), path_name(path_by_index(s->agent->conf, idx)));
	slot_target(s, rel, idx, &t);
	s->sess = session_new(&t, s->agent->conf, slot_session_cb, s);
	slot_moved(s);
}

/* Start a probe of relay rel on path idx. */
static void
slot_probe_start(struct slot *s, int rel, int idx)
{
	struct dial_target t;
	char l[300];

	log_debug("probing %s via %s", slot_label(s, rel, idx, l, sizeof l),
	    path_name(path_by_index(s->agent->conf, idx)));
	slot_target(s, rel, idx, &t);
	s->probe_rel = rel;
	s->probe_path = idx;
	s->probe = probe_start(&t, slot_probed_cb, s);
}

/* Probe answer: the better relay or path works again, so move to it. */
static void
slot_probed_cb(struct probe *p, int ok, const char *cause, void *arg)
{
	struct slot *s = arg;
	struct agent_config *c = s->agent->conf;
	int rel, path;
	char l[300], m[300];

	s->probe = NULL;
	if (s->sess == NULL || !session_is_up(s->sess) ||
	    !slot_better(s, &rel, &path) || rel != s->probe_rel ||
	    path != s->probe_path)
		return;
	if (rel == s->rel) {
		if (!ok) {
			log_debug("preferred path %s still unusable: %s",
			    path_name(path_by_index(c, path)), cause);
			return;
		}
		log_info("preferred path %s reaches the relay again; moving "
		    "back from %s", path_name(path_by_index(c, path)),
		    path_name(path_by_index(c, s->cur)));
	} else {
		if (!ok) {
			log_debug("preferred relay %s still unusable: %s",
			    slot_label(s, rel, path, l, sizeof l), cause);
			return;
		}
		log_info("preferred relay %s reachable again; moving back "
		    "from %s", slot_label(s, rel, path, l, sizeof l),
		    slot_label(s, s->rel, s->cur, m, sizeof m));
	}
	s->moving = 1;
	s->move_rel = rel;
	s->move_path = path;
	session_close(s->sess, 0, "moving back to the preferred %s",
	    rel == s->rel ? "path" : "relay");
}

/* While on a lower relay or path, check the better one now and then. */
static void
slot_probe_cb(evutil_socket_t fd, short what, void *arg)
{
	struct slot *s = arg;
	int rel, path;

	if (s->probe != NULL || s->sess == NULL || !session_is_up(s->sess) ||
	    s->agent->stopping)
		return;
	if (!slot_better(s, &rel, &path)) {
		event_del(s->ev_probe);
		return;
	}
	if (slot_now() < s->probe_after)
		return;
	slot_probe_start(s, rel, path);
}

/*
 * A probe said yes but the session did not come up (the relay refuses our
 * key, its host key changed, the path carries a banner but no more): hold
 * the next probes longer each time, so a working session is not dropped
 * for it every probe interval.
 */
static void
slot_move_failed(struct slot *s)
{
	time_t hold = slot_probe_secs(s);
	unsigned int i;

	s->move_fails++;
	for (i = 0; i < s->move_fails && hold < SLOT_HOLD_MAX; i++)
		hold *= 2;
	if (hold > SLOT_HOLD_MAX)
		hold = SLOT_HOLD_MAX;
	s->probe_after = slot_now() + hold;
	log_info("moving back failed (%s); next probe in %lld s",
	    s->last_error, (long long)hold);
}

/* A session is up with its forwards (again: a refused one was granted). */
static void
slot_session_up(struct slot *s, struct session *sess)
{
	struct agent_config *c = s->agent->conf;
	struct forward *f;
	char ports[256] = "", l[300];
	size_t n;
	int i = 0;

	s->last_error[0] = '\0';
	if (s->move_try) {
		s->move_try = 0;
		s->move_fails = 0;
	}
	TAILQ_FOREACH(f, &c->forwards, entry) {
		if (!session_forward_granted(sess, i++))
			continue;
		n = strlen(ports);
		if (net_addr_is_name(f->remote_host))
			snprintf(ports + n, sizeof ports - n, "%s%s:%u",
			    n ? ", " : "", f->remote_host, f->remote_port);
		else
			snprintf(ports + n, sizeof ports - n, "%s%u",
			    n ? ", " : "", f->remote_port);
	}
	slot_label(s, s->rel, s->cur, l, sizeof l);
	log_info("connected to %s via %s, forwarding %s", l,
	    path_name(slot_path(s)), ports);
	slot_status(s, "connected to %s via %s, forwarding %s", l,
	    path_name(slot_path(s)), ports);
	slot_probe_arm(s);
}

/*
 * Every path of the relay failed, or its session died: the next relay at
 * once, until each relay the slot may use had its turn; then back off and
 * start over from the slot's first relay.
 */
static void
slot_relay_failed(struct slot *s)
{
	struct agent_config *c = s->agent->conf;
	int next = slot_next_relay(s, s->rel);

	s->relays_failed++;
	s->cycle_tried = 0;
	if (s->relays_failed < slot_ncandidates(s) && next != s->rel) {
		log_info("relay %s failed (%s); trying relay %s",
		    config_relay(c, s->rel)->name, s->last_error,
		    config_relay(c, next)->name);
		slot_attempt(s, next, 0);
		return;
	}
	s->relays_failed = 0;
	slot_wait(s, slot_first_relay(s), 0);
}

/*
 * A session ended (from the loop, after its close). Decide the next
 * attempt: the next path at once while the relay's cycle lasts, then the
 * next relay, else back off.
 */
static void
slot_session_closed(struct slot *s, struct session *sess,
    const struct session_report *r)
{
	struct agent *a = s->agent;
	int n;

	/* the reason lives in sess: copy it before the free */
	snprintf(s->last_error, sizeof s->last_error, "%s", r->reason);
	agent_usage_sample(a, s, sess, 1);
	s->sess = NULL;
	session_free(sess);
	slot_probe_stop(s);
	if (a->stopping)
		return;
	if (a->next_conf != NULL) {
		agent_slot_idle(a);
		return;
	}
	n = path_count(a->conf);
	if (s->moving) {
		s->moving = 0;
		s->move_try = 1;
		s->cycle_tried = 0;
		/* the other slot may have taken that relay meanwhile */
		if (slot_taken(s, s->move_rel))
			slot_attempt(s, slot_first_relay(s), 0);
		else
			slot_attempt(s, s->move_rel, s->move_path);
		return;
	}
	if (s->move_try) {
		s->move_try = 0;
		slot_move_failed(s);
	}
	if (r->was_up) {
		if (r->up_secs >= AGENT_STABLE_SECS) {
			backoff_reset(&s->bo);
			s->relays_failed = 0;
		}
		s->cycle_tried = 0;
		if (r->path_dead && n > 1) {
			/* a silent path is skipped first */
			slot_attempt(s, s->rel, (s->cur + 1) % n);
			return;
		}
		if (slot_ncandidates(s) > 1) {
			/* the relay closed or went silent: the next one */
			slot_relay_failed(s);
			return;
		}
		if (r->up_secs >= AGENT_STABLE_SECS)
			slot_attempt(s, s->rel, 0);
		else
			slot_wait(s, s->rel, 0);
		return;
	}
	if (s->cycle_tried < n) {
		slot_attempt(s, s->rel, (s->cur + 1) % n);
		return;
	}
	slot_relay_failed(s);
}

/* The session reports: up with its forwards, or closed (then freed). */
static void
slot_session_cb(struct session *sess, const struct session_report *r,
    void *arg)
{
	struct slot *s = arg;

	if (!r->closed)
		slot_session_up(s, sess);
	else
		slot_session_closed(s, sess, r);
}

/* The network changed: try now instead of waiting, or probe the better target. */
void
slot_netlink(struct slot *s)
{
	int rel, path;

	if (s->waiting) {
		log_info("network changed: trying now instead of waiting");
		s->cycle_tried = 0;
		s->relays_failed = 0;
		slot_attempt(s, slot_first_relay(s), 0);
		return;
	}
	if (s->sess != NULL && session_is_up(s->sess) && s->probe == NULL &&
	    slot_now() >= s->probe_after && slot_better(s, &rel, &path)) {
		log_debug("network changed: probing");
		slot_probe_start(s, rel, path);
	}
}

/* Make the slot's timers (once, at agent start). */
void
slot_init(struct slot *s, struct agent *a, int idx)
{
	memset(s, 0, sizeof *s);
	s->agent = a;
	s->idx = idx;
	s->ev_retry = evtimer_new(a->base, slot_retry_cb, s);
	s->ev_probe = event_new(a->base, -1, EV_PERSIST, slot_probe_cb, s);
	if (s->ev_retry == NULL || s->ev_probe == NULL)
		fatalx("event_new");
	slot_reset(s);
}

/* Forget everything but the timers (start, or a reload that reconnects). */
void
slot_reset(struct slot *s)
{
	struct agent *a = s->agent;
	struct event *retry = s->ev_retry, *probe = s->ev_probe;
	int idx = s->idx;

	memset(s, 0, sizeof *s);
	s->agent = a;
	s->idx = idx;
	s->ev_retry = retry;
	s->ev_probe = probe;
	s->rel = idx;
	s->state_since = time(NULL);
	backoff_init(&s->bo, a->conf->backoff_initial, a->conf->backoff_max);
}

/* A reload that keeps the sessions: new backoff bounds. */
void
slot_set_timers(struct slot *s, struct agent_config *c)
{
	s->bo.initial_ms = c->backoff_initial * 1000;
	s->bo.max_ms = c->backoff_max * 1000;
}

/* First attempt on the slot's first relay, preferred path. */
void
slot_start(struct slot *s)
{
	s->cycle_tried = 0;
	s->relays_failed = 0;
	slot_attempt(s, slot_first_relay(s), 0);
}

/* SIGTERM: say goodbye to the relay so it frees the ports at once. */
void
slot_stop(struct slot *s)
{
	struct session *sess = s->sess;

	slot_probe_stop(s);
	event_del(s->ev_retry);
	s->waiting = 0;
	if (sess != NULL) {
		s->sess = NULL;
		session_close(sess, 0, "shutting down");
		agent_usage_sample(s->agent, s, sess, 1);
		session_free(sess);
	}
}

/*
 * A reload that reconnects: stop waiting and probing, close the session.
 * 1 = a session is closing (its report comes from the loop), 0 = idle.
 */
int
slot_cancel(struct slot *s)
{
	slot_probe_stop(s);
	event_del(s->ev_retry);
	s->waiting = 0;
	s->moving = 0;
	s->move_try = 0;
	if (s->sess == NULL)
		return 0;
	session_close(s->sess, 0, "configuration reloaded");
	return 1;
}

/* Free the slot's session and timers at exit. */
void
slot_free(struct slot *s)
{
	slot_probe_stop(s);
	if (s->sess != NULL)
		session_free(s->sess);
	s->sess = NULL;
	event_free(s->ev_retry);
	event_free(s->ev_probe);
}
