/* What to try next and when: path order, backoff, probes, netlink wake-ups. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/dns.h>
#include <systemd/sd-daemon.h>

#include "agent.h"

static void agent_attempt(struct agent *, int);
static void agent_session_cb(struct session *, const struct session_report *,
    void *);

/* Number of paths in the cycle; no [path] means one: the default route. */
static int
agent_npaths(struct agent *a)
{
	return a->conf->npaths > 0 ? a->conf->npaths : 1;
}

/* Path by index (NULL = default route when there are no [path]s). */
static struct path *
agent_path(struct agent *a, int idx)
{
	struct path *p;

	TAILQ_FOREACH(p, &a->conf->paths, entry)
		if (p->index == idx)
			return p;
	return NULL;
}

/* Name of a path for logs and status. */
static const char *
agent_path_name(struct agent *a, int idx)
{
	struct path *p = agent_path(a, idx);

	return p ? p->name : "default route";
}

/*
 * Book a session's bytes to its path (last: it is about to be freed), or
 * with sess NULL just roll today's counters if the UTC day changed.
 */
static void
agent_usage_sample(struct agent *a, struct session *sess, int last)
{
	struct usage_sample u;
	struct path *p;

	if (sess != NULL) {
		session_usage(sess, &u);
		p = session_path(sess);
		usage_book(&a->usage, sess, p ? p->name : "default route", &u,
		    last);
	}
	usage_roll(&a->usage, time(NULL));
}

/*
 * Sample hourly (the kernel's 32-bit segment counters cannot wrap in
 * between), a second before UTC midnight (the day's last bytes) and a
 * second after it (today starts over even without traffic or status).
 */
static void
agent_usage_arm(struct agent *a)
{
	time_t left = 86400 - time(NULL) % 86400;	/* to 00:00 UTC */
	struct timeval tv = { 0, 0 };

	if (left > 1)
		tv.tv_sec = left - 1 < 3600 ? left - 1 : 3600;
	else
		tv.tv_sec = left + 1;
	evtimer_add(a->ev_usage, &tv);
}

static void
agent_usage_cb(evutil_socket_t fd, short what, void *arg)
{
	struct agent *a = arg;

	agent_usage_sample(a, a->sess, 0);
	agent_usage_arm(a);
}

/* STATUS= for systemctl status, and a debug line. */
void
agent_status(struct agent *a, const char *fmt, ...)
{
	char buf[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	snprintf(a->status, sizeof a->status, "%s", buf);
	a->state_since = time(NULL);
	sd_notifyf(0, "STATUS=%s", buf);
	log_debug("status: %s", buf);
}

/* Backoff timer expired: start a new cycle from where it was planned. */
static void
agent_retry_cb(evutil_socket_t fd, short what, void *arg)
{
	struct agent *a = arg;

	a->waiting = 0;
	a->cycle_tried = 0;
	agent_attempt(a, a->cycle_start);
}

/* Wait out a backoff delay before the next cycle. */
static void
agent_wait(struct agent *a, int start)
{
	unsigned long ms = backoff_next(&a->bo);
	struct timeval tv = { (time_t)(ms / 1000), (suseconds_t)(ms % 1000) *
	    1000 };

	a->waiting = 1;
	a->cycle_start = start;
	a->cycle_tried = 0;
	evtimer_add(a->ev_retry, &tv);
	clock_gettime(CLOCK_MONOTONIC, &a->retry_at);
	a->retry_at.tv_sec += tv.tv_sec;
	a->retry_at.tv_nsec += tv.tv_usec * 1000;
	log_info("retrying in %.1f s", ms / 1000.0);
	agent_status(a, "retrying in %lu s: %s", (ms + 500) / 1000,
	    a->last_error);
}

/* How to reach the relay on path idx: for a session or a probe. */
static void
agent_target(struct agent *a, int idx, struct dial_target *t)
{
	struct path *p = agent_path(a, idx);

	memset(t, 0, sizeof *t);
	t->base = a->base;
	t->dns = a->dns;
	t->host = path_host(a->conf, p);
	t->port = path_port(a->conf, p);
	t->path = p;
	t->timeout = config_connect_timeout(a->conf);
}

/* Try one path now. */
static void
agent_attempt(struct agent *a, int idx)
{
	struct dial_target t;

	event_del(a->ev_retry);
	a->waiting = 0;
	a->cur = idx;
	a->cycle_tried++;
	agent_status(a, "connecting to %s via %s",
	    path_host(a->conf, agent_path(a, idx)), agent_path_name(a, idx));
	agent_target(a, idx, &t);
	a->sess = session_new(&t, a->conf, agent_session_cb, a);
}

/* Stop probing the preferred path (we are on it, or going away). */
static void
agent_probe_stop(struct agent *a)
{
	event_del(a->ev_probe);
	if (a->probe != NULL) {
		probe_cancel(a->probe);
		a->probe = NULL;
	}
}

/* Probe answer: the preferred path works again, so move back to it. */
static void
agent_probed(struct probe *p, int ok, const char *cause, void *arg)
{
	struct agent *a = arg;

	a->probe = NULL;
	if (a->sess == NULL || !session_is_up(a->sess) || a->cur == 0)
		return;
	if (!ok) {
		log_debug("preferred path %s still unusable: %s",
		    agent_path_name(a, 0), cause);
		return;
	}
	log_info("preferred path %s reaches the relay again; moving back "
	    "from %s", agent_path_name(a, 0), agent_path_name(a, a->cur));
	a->moving = 1;
	session_close(a->sess, 0, "moving back to the preferred path");
}

/* While on a lower path, check the preferred one now and then. */
static void
agent_probe_cb(evutil_socket_t fd, short what, void *arg)
{
	struct agent *a = arg;
	struct dial_target t;

	if (a->probe != NULL || a->sess == NULL || !session_is_up(a->sess) ||
	    a->cur == 0 || a->stopping)
		return;
	log_debug("probing preferred path %s", agent_path_name(a, 0));
	agent_target(a, 0, &t);
	a->probe = probe_start(&t, agent_probed, a);
}

/* A session is up with its forwards. */
static void
agent_session_up(struct agent *a, struct session *sess)
{
	struct forward *f;
	char ports[256] = "";
	size_t n;
	unsigned long t;
	struct timeval tv;
	int i = 0;

	a->last_error[0] = '\0';
	TAILQ_FOREACH(f, &a->conf->forwards, entry) {
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
	log_info("connected to %s via %s, forwarding %s",
	    path_host(a->conf, agent_path(a, a->cur)),
	    agent_path_name(a, a->cur), ports);
	agent_status(a, "connected to %s via %s, forwarding %s",
	    path_host(a->conf, agent_path(a, a->cur)),
	    agent_path_name(a, a->cur), ports);
	if (a->cur != 0) {
		t = config_connect_timeout(a->conf);
		if (a->conf->ka_interval > t)
			t = a->conf->ka_interval;
		tv.tv_sec = (time_t)t;
		tv.tv_usec = 0;
		evtimer_add(a->ev_probe, &tv);
	}
}

/* Apply a reload that waited for the old session to go. */
static void
agent_swap_conf(struct agent *a)
{
	config_free(a->conf);
	a->conf = a->next_conf;
	a->next_conf = NULL;
	backoff_init(&a->bo, a->conf->backoff_initial, a->conf->backoff_max);
}

/*
 * A session ended (from the loop, after its close). Decide the next
 * attempt: next path at once while the cycle lasts, else back off.
 */
static void
agent_session_closed(struct agent *a, struct session *sess, int was_up,
    int path_dead, time_t up, const char *reason)
{
	int n, start;

	/* reason lives in sess: copy it before the free */
	snprintf(a->last_error, sizeof a->last_error, "%s", reason);
	agent_usage_sample(a, sess, 1);
	a->sess = NULL;
	session_free(sess);
	agent_probe_stop(a);
	if (a->stopping)
		return;
	n = agent_npaths(a);
	if (a->next_conf != NULL) {
		agent_swap_conf(a);
		a->moving = 0;
		a->cycle_start = 0;
		a->cycle_tried = 0;
		agent_attempt(a, 0);
		return;
	}
	if (a->moving) {
		a->moving = 0;
		a->cycle_start = 0;
		a->cycle_tried = 0;
		agent_attempt(a, 0);
		return;
	}
	if (was_up) {
		if (up >= AGENT_STABLE_SECS)
			backoff_reset(&a->bo);
		/* a silent path is skipped first; a closed session retries */
		start = path_dead ? (a->cur + 1) % n : 0;
		a->cycle_start = start;
		a->cycle_tried = 0;
		if (up >= AGENT_STABLE_SECS || (path_dead && n > 1))
			agent_attempt(a, start);
		else
			agent_wait(a, start);
		return;
	}
	if (a->cycle_tried < n) {
		agent_attempt(a, (a->cur + 1) % n);
		return;
	}
	agent_wait(a, 0);
}

/* The session reports: up with its forwards, or closed (then freed). */
static void
agent_session_cb(struct session *sess, const struct session_report *r,
    void *arg)
{
	struct agent *a = arg;

	if (!r->closed)
		agent_session_up(a, sess);
	else
		agent_session_closed(a, sess, r->was_up, r->path_dead,
		    r->up_secs, r->reason);
}

/* Debounced netlink change: try now instead of waiting out the backoff. */
static void
agent_netlink_cb(evutil_socket_t fd, short what, void *arg)
{
	struct agent *a = arg;
	struct dial_target t;

	if (a->stopping)
		return;
	if (a->waiting) {
		log_info("network changed: trying now instead of waiting");
		event_del(a->ev_retry);
		a->waiting = 0;
		a->cycle_start = 0;
		a->cycle_tried = 0;
		agent_attempt(a, 0);
		return;
	}
	if (a->sess != NULL && session_is_up(a->sess) && a->cur != 0 &&
	    a->probe == NULL) {
		log_debug("network changed: probing preferred path %s",
		    agent_path_name(a, 0));
		agent_target(a, 0, &t);
		a->probe = probe_start(&t, agent_probed, a);
	}
}

/* netlink saw a change; let a burst (link, address, route) settle. */
void
agent_netlink_changed(void *arg)
{
	struct agent *a = arg;
	struct timeval tv = { 0, AGENT_NETLINK_DELAY_MS * 1000 };

	if (!evtimer_pending(a->ev_netlink, NULL))
		evtimer_add(a->ev_netlink, &tv);
}

/* systemd watchdog ping from the loop: proves the loop turns. */
static void
agent_watchdog_cb(evutil_socket_t fd, short what, void *arg)
{
	sd_notify(0, "WATCHDOG=1");
}

/* Set up timers, DNS and netlink; nothing is connected yet. */
void
agent_init(struct agent *a, struct event_base *base, struct agent_config *c)
{
	uint64_t usec = 0;
	struct timeval tv;

	memset(a, 0, sizeof *a);
	a->base = base;
	a->conf = c;
	backoff_init(&a->bo, c->backoff_initial, c->backoff_max);
	a->dns = evdns_base_new(base, EVDNS_BASE_INITIALIZE_NAMESERVERS);
	if (a->dns == NULL)
		a->dns = evdns_base_new(base, 0);
	if (a->dns == NULL)
		fatalx("evdns_base_new");
	a->ev_retry = evtimer_new(base, agent_retry_cb, a);
	a->ev_probe = event_new(base, -1, EV_PERSIST, agent_probe_cb, a);
	a->ev_netlink = evtimer_new(base, agent_netlink_cb, a);
	a->ev_usage = evtimer_new(base, agent_usage_cb, a);
	if (!a->ev_retry || !a->ev_probe || !a->ev_netlink || !a->ev_usage)
		fatalx("event_new");
	usage_init(&a->usage);
	agent_usage_arm(a);
	a->nl = netlink_open(base, agent_netlink_changed, a);
	if (sd_watchdog_enabled(0, &usec) > 0 && usec > 0) {
		a->ev_watchdog = event_new(base, -1, EV_PERSIST,
		    agent_watchdog_cb, a);
		tv.tv_sec = (time_t)(usec / 2 / 1000000);
		tv.tv_usec = (suseconds_t)(usec / 2 % 1000000);
		evtimer_add(a->ev_watchdog, &tv);
	}
}

/* First attempt on the preferred path. */
void
agent_start(struct agent *a)
{
	a->cycle_start = 0;
	a->cycle_tried = 0;
	agent_attempt(a, 0);
}

/* SIGTERM: say goodbye to the relay so it frees the ports at once. */
void
agent_stop(struct agent *a)
{
	struct session *sess = a->sess;

	a->stopping = 1;
	agent_probe_stop(a);
	event_del(a->ev_retry);
	if (sess != NULL) {
		a->sess = NULL;
		session_close(sess, 0, "shutting down");
		agent_usage_sample(a, sess, 1);
		session_free(sess);
	}
}

/* SIGHUP with a valid new config: apply now or after the session goes. */
void
agent_reload(struct agent *a, struct agent_config *c)
{
	if (config_same_session(a->conf, c)) {
		a->conf->ka_interval = c->ka_interval;
		a->conf->ka_count = c->ka_count;
		a->conf->backoff_initial = c->backoff_initial;
		a->conf->backoff_max = c->backoff_max;
		a->bo.initial_ms = c->backoff_initial * 1000;
		a->bo.max_ms = c->backoff_max * 1000;
		config_free(c);
		log_info("configuration reloaded; session unchanged (new "
		    "timers apply to the next session)");
		return;
	}
	config_free(a->next_conf);
	a->next_conf = c;
	log_info("configuration reloaded; reconnecting with it");
	if (a->sess != NULL) {
		agent_probe_stop(a);
		session_close(a->sess, 0, "configuration reloaded");
		return;
	}
	agent_swap_conf(a);
	a->cycle_start = 0;
	a->cycle_tried = 0;
	agent_attempt(a, 0);
}

/* Free everything at exit (sanitizer-clean shutdown). */
void
agent_free(struct agent *a)
{
	agent_probe_stop(a);
	if (a->sess != NULL)
		session_free(a->sess);
	netlink_close(a->nl);
	event_free(a->ev_retry);
	event_free(a->ev_probe);
	event_free(a->ev_netlink);
	event_free(a->ev_usage);
	usage_free(&a->usage);
	if (a->ev_watchdog != NULL)
		event_free(a->ev_watchdog);
	evdns_base_free(a->dns, 0);
	config_free(a->conf);
	config_free(a->next_conf);
}

/*
 * The per-path usage in status order: the configured paths (the default
 * route when there are none), then paths a reload removed. Caller frees.
 */
static struct path_usage **
agent_usage_list(struct agent *a, int *np)
{
	struct path_usage **v, *u;
	int i, n = 0, npaths = agent_npaths(a);

	TAILQ_FOREACH(u, &a->usage.paths, entry)
		u->mark = 0;
	for (i = 0; i < npaths; i++)
		usage_path(&a->usage, agent_path_name(a, i));
	TAILQ_FOREACH(u, &a->usage.paths, entry)
		n++;
	v = xcalloc((size_t)n, sizeof *v);
	n = 0;
	for (i = 0; i < npaths; i++) {
		u = usage_path(&a->usage, agent_path_name(a, i));
		if (!u->mark) {
			u->mark = 1;
			v[n++] = u;
		}
	}
	TAILQ_FOREACH(u, &a->usage.paths, entry)
		if (!u->mark)
			v[n++] = u;
	*np = n;
	return v;
}

/* status --json: "usage_day" and the "paths" array. */
static void
agent_usage_json(struct agent *a, struct evbuffer *out)
{
	struct path_usage **v, *u;
	struct path *p;
	time_t day = (time_t)a->usage.day * 86400;
	struct tm tm;
	char date[16] = "";
	int i, n, live;

	if (gmtime_r(&day, &tm) != NULL)
		strftime(date, sizeof date, "%Y-%m-%d", &tm);
	evbuffer_add_printf(out, ",\"usage_day\":\"%s\",\"paths\":[", date);
	v = agent_usage_list(a, &n);
	for (i = 0; i < n; i++) {
		u = v[i];
		p = a->sess ? session_path(a->sess) : NULL;
		live = a->sess != NULL && strcmp(u->name, p ? p->name :
		    "default route") == 0;
		evbuffer_add_printf(out, "%s{\"name\":", i ? "," : "");
		json_string(out, u->name);
		evbuffer_add_printf(out, ",\"in_use\":%s,\"bytes_sent\":%" PRIu64
		    ",\"bytes_received\":%" PRIu64 ",\"today_sent\":%" PRIu64
		    ",\"today_received\":%" PRIu64, live ? "true" : "false",
		    u->total.sent, u->total.received, u->today.sent,
		    u->today.received);
		if (u->tcp_unknown)
			evbuffer_add_printf(out, ",\"tcp_overhead_sent\":null,"
			    "\"tcp_overhead_received\":null,"
			    "\"today_tcp_overhead_sent\":null,"
			    "\"today_tcp_overhead_received\":null}");
		else
			evbuffer_add_printf(out, ",\"tcp_overhead_sent\":%" PRIu64
			    ",\"tcp_overhead_received\":%" PRIu64
			    ",\"today_tcp_overhead_sent\":%" PRIu64
			    ",\"today_tcp_overhead_received\":%" PRIu64 "}",
			    u->total.tcp_sent, u->total.tcp_received,
			    u->today.tcp_sent, u->today.tcp_received);
	}
	evbuffer_add_printf(out, "]");
	free(v);
}

/* status: a table of the bytes per path. */
static void
agent_usage_text(struct agent *a, struct evbuffer *out)
{
	struct path_usage **v, *u;
	char b[5][32];
	int i, n;

	v = agent_usage_list(a, &n);
	evbuffer_add_printf(out, "%-14s %9s %9s %10s %14s %10s\n", "PATH",
	    "SENT", "RECEIVED", "TODAY-SENT", "TODAY-RECEIVED", "TCP/IP-EST");
	for (i = 0; i < n; i++) {
		u = v[i];
		fmt_bytes(b[0], sizeof b[0], u->total.sent);
		fmt_bytes(b[1], sizeof b[1], u->total.received);
		fmt_bytes(b[2], sizeof b[2], u->today.sent);
		fmt_bytes(b[3], sizeof b[3], u->today.received);
		if (u->tcp_unknown)
			snprintf(b[4], sizeof b[4], "-");
		else
			fmt_bytes(b[4], sizeof b[4], u->total.tcp_sent +
			    u->total.tcp_received);
		evbuffer_add_printf(out, "%-14s %9s %9s %10s %14s %10s\n",
		    str_printable(u->name) ? u->name : esc(u->name), b[0], b[1],
		    b[2], b[3], b[4]);
	}
	free(v);
}

/* simtunctl status: the relay, the path in use, the state, the next retry. */
void
agent_control(const char *line, struct evbuffer *out,
    const struct control_peer *peer, void *arg)
{
	struct agent *a = arg;
	const char *state, *path;
	struct timespec now;
	char since[32];
	long long retry_ms = -1;
	int json;

	if (strcmp(line, "status") != 0 && strcmp(line, "status --json") != 0 &&
	    strcmp(line, "status json") != 0) {
		evbuffer_add_printf(out, "error: unknown request for the agent "
		    "(try status, status --json)\n");
		return;
	}
	json = strcmp(line, "status") != 0;
	agent_usage_sample(a, a->sess, 0);
	if (a->sess != NULL && session_is_up(a->sess))
		state = "connected";
	else if (a->waiting)
		state = "waiting";
	else
		state = "connecting";
	path = agent_path_name(a, a->cur);
	if (a->waiting) {
		clock_gettime(CLOCK_MONOTONIC, &now);
		retry_ms = (a->retry_at.tv_sec - now.tv_sec) * 1000LL +
		    (a->retry_at.tv_nsec - now.tv_nsec) / 1000000;
		if (retry_ms < 0)
			retry_ms = 0;
	}
	if (json) {
		evbuffer_add_printf(out, "{\"relay\":");
		json_string(out, path_host(a->conf, agent_path(a, a->cur)));
		evbuffer_add_printf(out, ",\"port\":%u,\"path\":",
		    path_port(a->conf, agent_path(a, a->cur)));
		json_string(out, path);
		evbuffer_add_printf(out, ",\"state\":\"%s\",\"since\":%lld,"
		    "\"next_retry_ms\":%lld,\"status\":", state,
		    (long long)a->state_since, retry_ms);
		json_string(out, a->status);
		evbuffer_add_printf(out, ",\"last_error\":");
		json_string(out, a->last_error);
		agent_usage_json(a, out);
		evbuffer_add_printf(out, "}\n");
		return;
	}
	fmt_duration(since, sizeof since, (long long)(time(NULL) -
	    a->state_since));
	evbuffer_add_printf(out, "%-24s %-14s %-11s %-8s %s\n", "RELAY", "PATH",
	    "STATE", "SINCE", "NEXT RETRY");
	{
		char relay[300], retry[32];

		snprintf(relay, sizeof relay, "%s:%u",
		    path_host(a->conf, agent_path(a, a->cur)),
		    path_port(a->conf, agent_path(a, a->cur)));
		if (retry_ms >= 0)
			snprintf(retry, sizeof retry, "%.1fs",
			    retry_ms / 1000.0);
		else
			snprintf(retry, sizeof retry, "-");
		evbuffer_add_printf(out, "%-24s %-14s %-11s %-8s %s\n", relay,
		    path, state, since, retry);
	}
	/* peer text was escaped where it came in; this is a safety net */
	evbuffer_add_printf(out, "status: %s\n", str_printable(a->status) ?
	    a->status : esc(a->status));
	if (a->last_error[0] != '\0')
		evbuffer_add_printf(out, "last error: %s\n",
		    str_printable(a->last_error) ? a->last_error :
		    esc(a->last_error));
	agent_usage_text(a, out);
}
