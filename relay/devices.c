/*
 * The fleet as authorized_keys lists it: every device key with its state
 * (online, held, offline), when it was last seen, from where, and the
 * bytes it moved. What a device did survives its session (and a reload of
 * authorized_keys), not a restart of the relay.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "relay.h"

#define CLONE_FLAPS	3	/* live sessions displaced ... */
#define CLONE_WINDOW	60	/* ... within this many seconds: a clone */
#define CLONE_HOLDOFF	300	/* s the live copy is kept, the other refused */

/* What the relay remembers of a device between sessions. */
struct seen {
	TAILQ_ENTRY(seen) entry;
	char		*fp;
	time_t		 last;
	char		 addr[64];
	uint64_t	 bytes_in;	/* from the device */
	uint64_t	 bytes_out;	/* to the device */
	time_t		 flaps[CLONE_FLAPS];	/* live sessions displaced */
	time_t		 clone_until;	/* refuse a second live copy */
	time_t		 clone_logged;
	char		*operator;	/* an operator key: its name and */
	uint64_t	 op_opened;	/* audit counts */
	uint64_t	 op_denied;
	struct seen	*hnext;		/* hash chain */
};
TAILQ_HEAD(seens, seen);
static struct seens seens = TAILQ_HEAD_INITIALIZER(seens);
#define SEEN_BUCKETS	16384
static struct seen *seen_byfp[SEEN_BUCKETS];

/* The record of key fp, created if asked (by hash: a login looks). */
static struct seen *
devices_find(const char *fp, int create)
{
	unsigned int b = str_hash(fp) % SEEN_BUCKETS;
	struct seen *d;

	for (d = seen_byfp[b]; d != NULL; d = d->hnext)
		if (strcmp(d->fp, fp) == 0)
			return d;
	if (!create)
		return NULL;
	d = xcalloc(1, sizeof *d);
	d->fp = xstrdup(fp);
	d->hnext = seen_byfp[b];
	seen_byfp[b] = d;
	TAILQ_INSERT_HEAD(&seens, d, entry);
	return d;
}

/* A device session closes: remember when, from where, and its bytes. */
void
devices_session_closed(struct session *sess, uint64_t from_dev,
    uint64_t to_dev)
{
	struct seen *d;

	if (sess->fp == NULL || sess->operator)
		return;
	d = devices_find(sess->fp, 1);
	d->last = time(NULL);
	snprintf(d->addr, sizeof d->addr, "%s", sess->peer);
	d->bytes_in += from_dev;
	d->bytes_out += to_dev;
}

/* Forget everything (at exit). */
void
devices_clear(void)
{
	struct seen *d;

	while ((d = TAILQ_FIRST(&seens)) != NULL) {
		TAILQ_REMOVE(&seens, d, entry);
		free(d->fp);
		free(d->operator);
		free(d);
	}
	memset(seen_byfp, 0, sizeof seen_byfp);
}

/* The live session of key fp, if any. */
static struct session *
devices_session(struct relay *r, const char *fp)
{
	struct session *sess;

	for (sess = session_by_fp(fp, NULL); sess != NULL;
	    sess = session_by_fp(fp, sess))
		if (sess->state == SESSION_ACTIVE && !sess->operator &&
		    !sess->displaced)
			return sess;
	return NULL;
}

/* `simtunctl devices [--json]`. */
void
devices_list(struct relay *r, struct evbuffer *out, int json)
{
	struct authkey *ak;
	struct session *sess;
	struct seen *d;
	const char *state, *addr, *where;
	char last[32], in[32], outb[32];
	time_t there;
	uint64_t bin, bout, fd, td;
	time_t now = time(NULL), seen;
	unsigned int held;
	int first = 1;

	if (json)
		evbuffer_add_printf(out, "{\"devices\":[");
	else
		evbuffer_add_printf(out, "%-16s %-8s %-10s %-22s %8s %8s %-4s%s\n",
		    "DEVICE", "STATE", "LAST SEEN", "LAST ADDRESS", "IN", "OUT",
		    "HELD", r->cluster ? " RELAY" : "");
	TAILQ_FOREACH(ak, &r->keys, entry) {
		if (ak->nopens > 0)
			continue;	/* an operator */
		d = devices_find(ak->fp, 0);
		sess = devices_session(r, ak->fp);
		held = held_count(r, ak->name);
		bin = d ? d->bytes_in : 0;
		bout = d ? d->bytes_out : 0;
		seen = d ? d->last : 0;
		addr = d && d->addr[0] ? d->addr : "-";
		if (sess != NULL) {
			conn_bytes(sess, &fd, &td);
			bin += fd;
			bout += td;
			seen = now;
			addr = sess->peer;
		}
		/* the cluster: the relay holding it (maybe this one) */
		where = sess != NULL && r->cluster != NULL ?
		    r->conf.cluster_relay_id : NULL;
		if (sess == NULL && cluster_device(r, ak->name, &where,
		    &there) && there > seen)
			seen = there;
		state = sess != NULL || where != NULL ? "online" : held > 0 ?
		    "held" : "offline";
		if (json) {
			evbuffer_add_printf(out, "%s{\"device\":", first ? "" :
			    ",");
			json_string(out, ak->name);
			evbuffer_add_printf(out, ",\"key\":\"%s\",\"state\":"
			    "\"%s\",\"last_seen\":%lld,\"last_address\":",
			    ak->fp, state, (long long)seen);
			json_string(out, addr);
			evbuffer_add_printf(out, ",\"bytes_in\":%llu,"
			    "\"bytes_out\":%llu,\"held\":%u,\"relay\":",
			    (unsigned long long)bin, (unsigned long long)bout,
			    held);
			if (where != NULL)
				json_string(out, where);
			else
				evbuffer_add_printf(out, "null");
			evbuffer_add_printf(out, "}");
			first = 0;
			continue;
		}
		if (sess != NULL || where != NULL)
			snprintf(last, sizeof last, "now");
		else if (seen == 0)
			snprintf(last, sizeof last, "never");
		else {
			fmt_duration(last, sizeof last, now - seen);
			strncat(last, " ago", sizeof last - strlen(last) - 1);
		}
		fmt_bytes(in, sizeof in, bin);
		fmt_bytes(outb, sizeof outb, bout);
		evbuffer_add_printf(out, "%-16s %-8s %-10s %-22s %8s %8s "
		    "%-4u%s%s\n", ak->name, state, last, addr, in, outb, held,
		    r->cluster ? " " : "", r->cluster ? where ? where : "-" :
		    "");
	}
	if (json)
		evbuffer_add_printf(out, "]}\n");
}

/*
 * Same key, two places: a cloned SD card image, each copy displacing the
 * other every few seconds. old was displaced by a newer session of its
 * key and answered the probe it got then (session_displace): a live copy,
 * not a rebooted device's dead session. CLONE_FLAPS of them within
 * CLONE_WINDOW s is a clone: one warning naming both addresses, the clone
 * metric, and for CLONE_HOLDOFF s a new session of that key is refused
 * while one is live and answering (the copies back off instead of
 * thrashing).
 */
void
devices_displaced(struct session *old)
{
	struct relay *r = old->relay;
	struct seen *d;
	time_t now = time(NULL);
	int i;

	d = devices_find(old->fp, 1);
	memmove(d->flaps, d->flaps + 1, sizeof d->flaps - sizeof d->flaps[0]);
	d->flaps[CLONE_FLAPS - 1] = now;
	for (i = 0; i < CLONE_FLAPS; i++)
		if (d->flaps[i] == 0 || now - d->flaps[i] > CLONE_WINDOW)
			return;
	d->clone_until = now + CLONE_HOLDOFF;
	r->clones++;
	log_warnx("device %s: key %s is in use from two places at once (%s "
	    "port %d and %s), %d times in %d s: a cloned SD card image? "
	    "Keeping the session that holds the ports, refusing the other "
	    "copy for %d s; give each device its own key", old->name,
	    old->fp, old->peer, old->peer_port, old->displaced_by,
	    CLONE_FLAPS, CLONE_WINDOW, CLONE_HOLDOFF);
	memset(d->flaps, 0, sizeof d->flaps);
}

/*
 * May a new session of this device key authenticate? Not while the key
 * is a known clone and another copy is live and answering. NULL if so,
 * else why not (for the log, at most once a minute per key).
 */
const char *
devices_clone_check(struct relay *r, struct session *sess, const char *fp,
    int *quiet)
{
	static char why[256];
	struct session *live;
	struct seen *d;
	time_t now = time(NULL);

	*quiet = 0;
	if ((d = devices_find(fp, 0)) == NULL || now >= d->clone_until)
		return NULL;
	if ((live = devices_session(r, fp)) == NULL || live == sess ||
	    live->ka_missed > 0 || session_silent(live))
		return NULL;
	if (now - d->clone_logged < 60)
		*quiet = 1;
	else
		d->clone_logged = now;
	snprintf(why, sizeof why, "the key is in use from %s port %d (a "
	    "clone; refused for %lld s more)", live->peer, live->peer_port,
	    (long long)(d->clone_until - now));
	return why;
}

/* Per-operator counters, from every audit event that names an operator. */
void
devices_audit(const struct audit *a)
{
	struct seen *d;

	if (a->operator == NULL || a->operator_fp == NULL)
		return;
	d = devices_find(a->operator_fp, 1);
	if (d->operator == NULL)
		d->operator = xstrdup(a->operator);
	if (strcmp(a->event, "open") == 0)
		d->op_opened++;
	else if (strcmp(a->event, "deny") == 0)
		d->op_denied++;
	else if (strcmp(a->event, "close") == 0) {
		d->bytes_in += a->from_device;
		d->bytes_out += a->to_device;
	}
}

/* One sample: NAME{operator="OP",KEY="VAL"} N. */
static void
devices_sample(struct evbuffer *out, const char *name, const char *op,
    const char *key, const char *val, uint64_t n)
{
	evbuffer_add_printf(out, "%s{operator=\"", name);
	metrics_label(out, op);
	evbuffer_add_printf(out, "\",%s=\"%s\"} %llu\n", key, val,
	    (unsigned long long)n);
}

/* The operators' counters in Prometheus text. */
void
devices_metrics(struct evbuffer *out)
{
	struct seen *d;

	evbuffer_add_printf(out, "# HELP simtun_operator_channels_total "
	    "Operator channels opened (held ones included) and refused.\n"
	    "# TYPE simtun_operator_channels_total counter\n");
	TAILQ_FOREACH(d, &seens, entry) {
		if (d->operator == NULL)
			continue;
		devices_sample(out, "simtun_operator_channels_total",
		    d->operator, "result", "opened", d->op_opened);
		devices_sample(out, "simtun_operator_channels_total",
		    d->operator, "result", "denied", d->op_denied);
	}
	evbuffer_add_printf(out, "# HELP simtun_operator_bytes_total Bytes "
	    "of operators' closed channels (in = from the device).\n"
	    "# TYPE simtun_operator_bytes_total counter\n");
	TAILQ_FOREACH(d, &seens, entry) {
		if (d->operator == NULL)
			continue;
		devices_sample(out, "simtun_operator_bytes_total", d->operator,
		    "direction", "in", d->bytes_in);
		devices_sample(out, "simtun_operator_bytes_total", d->operator,
		    "direction", "out", d->bytes_out);
	}
}
