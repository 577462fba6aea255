/* The agent: its relay slots, network wake-ups, reload, stop and status. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/dns.h>
#include <systemd/sd-daemon.h>

#include "agent.h"

/*
 * Book a slot's session bytes to its path (last: it is about to be
 * freed), or with sess NULL just roll today's counters if the UTC day
 * changed.
 */
void
agent_usage_sample(struct agent *a, struct slot *s, struct session *sess,
    int last)
{
	struct usage_sample u;

	if (sess != NULL) {
		session_usage(sess, &u);
		usage_book(&a->usage, &s->ulive, sess,
		    path_name(session_path(sess)), &u, last);
	}
	usage_roll(&a->usage, time(NULL));
}

/* Sample every live session (status, the hourly timer). */
static void
agent_usage_sample_all(struct agent *a)
{
	int i;

	for (i = 0; i < a->nslots; i++)
		agent_usage_sample(a, &a->slots[i], a->slots[i].sess, 0);
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

	agent_usage_sample_all(a);
	agent_usage_arm(a);
}

/*
 * A slot's status changed: STATUS= for systemctl status (the one slot's
 * words, or both joined by "; "), and a debug line.
 */
void
agent_status_changed(struct agent *a)
{
	size_t n = 0;
	int i;

	a->status[0] = '\0';
	for (i = 0; i < a->nslots; i++) {
		if (a->slots[i].status[0] == '\0')
			continue;	/* not started yet */
		snprintf(a->status + n, sizeof a->status - n, "%s%s",
		    n ? "; " : "", a->slots[i].status);
		n = strlen(a->status);
	}
	sd_notifyf(0, "STATUS=%s", a->status);
	log_debug("status: %s", a->status);
}

/* Debounced netlink change: every slot tries now or probes. */
static void
agent_netlink_cb(evutil_socket_t fd, short what, void *arg)
{
	struct agent *a = arg;
	int i;

	if (a->stopping || a->next_conf != NULL)
		return;
	for (i = 0; i < a->nslots; i++)
		slot_netlink(&a->slots[i]);
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

/* Set up timers, DNS, netlink and the slots; nothing is connected yet. */
void
agent_init(struct agent *a, struct event_base *base, struct agent_config *c)
{
	uint64_t usec = 0;
	struct timeval tv;
	int i;

	memset(a, 0, sizeof *a);
	a->base = base;
	a->conf = c;
	a->nslots = (int)c->relays_active;
	a->dns = evdns_base_new(base, EVDNS_BASE_INITIALIZE_NAMESERVERS);
	if (a->dns == NULL)
		a->dns = evdns_base_new(base, 0);
	if (a->dns == NULL)
		fatalx("evdns_base_new");
	for (i = 0; i < AGENT_MAX_ACTIVE; i++)
		slot_init(&a->slots[i], a, i);
	a->ev_netlink = evtimer_new(base, agent_netlink_cb, a);
	a->ev_usage = evtimer_new(base, agent_usage_cb, a);
	if (!a->ev_netlink || !a->ev_usage)
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

/* First attempt of every slot, each on its own first relay. */
void
agent_start(struct agent *a)
{
	int i;

	for (i = 0; i < a->nslots; i++)
		slot_reset(&a->slots[i]);
	for (i = 0; i < a->nslots; i++)
		slot_start(&a->slots[i]);
}

/* SIGTERM: every session says goodbye so each relay frees the ports. */
void
agent_stop(struct agent *a)
{
	int i;

	a->stopping = 1;
	for (i = 0; i < a->nslots; i++)
		slot_stop(&a->slots[i]);
}

/* The reloaded configuration, once no session of the old one is left. */
static void
agent_swap_conf(struct agent *a)
{
	config_free(a->conf);
	a->conf = a->next_conf;
	a->next_conf = NULL;
	a->nslots = (int)a->conf->relays_active;
	agent_start(a);
}

/* A slot's session closed during a reload: go on once all are closed. */
void
agent_slot_idle(struct agent *a)
{
	int i;

	for (i = 0; i < a->nslots; i++)
		if (a->slots[i].sess != NULL)
			return;
	agent_swap_conf(a);
}

/* SIGHUP with a valid new config: apply now or after the sessions go. */
void
agent_reload(struct agent *a, struct agent_config *c)
{
	int i, closing = 0;

	if (config_same_session(a->conf, c)) {
		a->conf->ka_interval = c->ka_interval;
		a->conf->ka_count = c->ka_count;
		a->conf->backoff_initial = c->backoff_initial;
		a->conf->backoff_max = c->backoff_max;
		for (i = 0; i < a->nslots; i++)
			slot_set_timers(&a->slots[i], c);
		config_free(c);
		log_info("configuration reloaded; %s unchanged (new timers "
		    "apply to the next session)", a->nslots > 1 ?
		    "sessions" : "session");
		return;
	}
	config_free(a->next_conf);
	a->next_conf = c;
	log_info("configuration reloaded; reconnecting with it");
	for (i = 0; i < a->nslots; i++)
		closing += slot_cancel(&a->slots[i]);
	if (!closing)
		agent_swap_conf(a);
}

/* Free everything at exit (sanitizer-clean shutdown). */
void
agent_free(struct agent *a)
{
	int i;

	for (i = 0; i < AGENT_MAX_ACTIVE; i++)
		slot_free(&a->slots[i]);
	netlink_close(a->nl);
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
	int i, n = 0, npaths = path_count(a->conf);

	TAILQ_FOREACH(u, &a->usage.paths, entry)
		u->mark = 0;
	for (i = 0; i < npaths; i++)
		usage_path(&a->usage, path_name(path_by_index(a->conf, i)));
	TAILQ_FOREACH(u, &a->usage.paths, entry)
		n++;
	v = xcalloc((size_t)n, sizeof *v);
	n = 0;
	for (i = 0; i < npaths; i++) {
		u = usage_path(&a->usage, path_name(path_by_index(a->conf, i)));
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

/* Does a live session use the path named name? */
static int
agent_path_in_use(struct agent *a, const char *name)
{
	int i;

	for (i = 0; i < a->nslots; i++)
		if (a->slots[i].sess != NULL && strcmp(name,
		    path_name(session_path(a->slots[i].sess))) == 0)
			return 1;
	return 0;
}

/* status --json: "usage_day" and the "paths" array. */
static void
agent_usage_json(struct agent *a, struct evbuffer *out)
{
	struct path_usage **v, *u;
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
		live = agent_path_in_use(a, u->name);
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

/*
 * The slot whose words the top-level status fields carry: the first
 * connected one, else the first (with one relay, the only session).
 */
static struct slot *
agent_primary(struct agent *a)
{
	int i;

	for (i = 0; i < a->nslots; i++)
		if (a->slots[i].sess != NULL &&
		    session_is_up(a->slots[i].sess))
			return &a->slots[i];
	return &a->slots[0];
}

/* One slot's fields in status --json (after the opening brace). */
static void
agent_slot_json(struct slot *s, struct evbuffer *out, int named)
{
	struct relay_conf *r = slot_relay(s);
	struct path *p = slot_path(s);

	if (named) {
		evbuffer_add_printf(out, "\"name\":");
		json_string(out, r->name);
		evbuffer_add_printf(out, ",\"host\":");
	} else
		evbuffer_add_printf(out, "\"relay\":");
	json_string(out, path_host(r, p));
	evbuffer_add_printf(out, ",\"port\":%u,\"path\":", path_port(r, p));
	json_string(out, path_name(p));
	evbuffer_add_printf(out, ",\"state\":\"%s\",\"since\":%lld,"
	    "\"next_retry_ms\":%lld,", slot_state(s),
	    (long long)s->state_since, slot_retry_ms(s));
	if (named) {
		evbuffer_add_printf(out, "\"status\":");
		json_string(out, s->status);
		evbuffer_add_printf(out, ",");
	}
	evbuffer_add_printf(out, "\"last_error\":");
	json_string(out, s->last_error);
}

/* One slot's row in the status table. */
static void
agent_slot_text(struct slot *s, struct evbuffer *out)
{
	struct relay_conf *r = slot_relay(s);
	struct path *p = slot_path(s);
	char relay[300], retry[32], since[32];
	long long ms = slot_retry_ms(s);

	fmt_duration(since, sizeof since, (long long)(time(NULL) -
	    s->state_since));
	snprintf(relay, sizeof relay, "%s:%u", path_host(r, p),
	    path_port(r, p));
	if (ms >= 0)
		snprintf(retry, sizeof retry, "%.1fs", ms / 1000.0);
	else
		snprintf(retry, sizeof retry, "-");
	evbuffer_add_printf(out, "%-24s %-14s %-11s %-8s %-10s %s\n", relay,
	    path_name(p), slot_state(s), since, retry, r->name);
}

/* A status line, escaped if it holds what a terminal should not get. */
static void
agent_text_line(struct evbuffer *out, const char *what, const char *name,
    const char *text)
{
	/* peer text was escaped where it came in; this is a safety net */
	if (name != NULL)
		evbuffer_add_printf(out, "%s (%s): %s\n", what, name,
		    str_printable(text) ? text : esc(text));
	else
		evbuffer_add_printf(out, "%s: %s\n", what,
		    str_printable(text) ? text : esc(text));
}

/*
 * simtunctl status: per relay session its relay, path, state, since and
 * next retry; what it does and its last error; the bytes per path.
 */
void
agent_control(const char *line, struct evbuffer *out,
    const struct control_peer *peer, void *arg)
{
	struct agent *a = arg;
	struct slot *s;
	int i, json;

	if (strcmp(line, "status") != 0 && strcmp(line, "status --json") != 0 &&
	    strcmp(line, "status json") != 0) {
		evbuffer_add_printf(out, "error: unknown request for the agent "
		    "(try status, status --json)\n");
		return;
	}
	json = strcmp(line, "status") != 0;
	agent_usage_sample_all(a);
	if (json) {
		/* the top-level fields as with one relay, then every session */
		s = agent_primary(a);
		evbuffer_add_printf(out, "{");
		agent_slot_json(s, out, 0);
		evbuffer_add_printf(out, ",\"status\":");
		json_string(out, a->status);
		evbuffer_add_printf(out, ",\"relays_active\":%d,\"relays\":[",
		    a->nslots);
		for (i = 0; i < a->nslots; i++) {
			evbuffer_add_printf(out, "%s{", i ? "," : "");
			agent_slot_json(&a->slots[i], out, 1);
			evbuffer_add_printf(out, "}");
		}
		evbuffer_add_printf(out, "]");
		agent_usage_json(a, out);
		evbuffer_add_printf(out, "}\n");
		return;
	}
	evbuffer_add_printf(out, "%-24s %-14s %-11s %-8s %-10s %s\n", "RELAY",
	    "PATH", "STATE", "SINCE", "NEXT RETRY", "NAME");
	for (i = 0; i < a->nslots; i++)
		agent_slot_text(&a->slots[i], out);
	for (i = 0; i < a->nslots; i++) {
		s = &a->slots[i];
		agent_text_line(out, "status", a->nslots > 1 ?
		    slot_relay(s)->name : NULL, s->status);
		if (s->last_error[0] != '\0')
			agent_text_line(out, "last error", a->nslots > 1 ?
			    slot_relay(s)->name : NULL, s->last_error);
	}
	agent_usage_text(a, out);
}
