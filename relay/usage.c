/*
 * What each device's link carried, priced the way a cellular carrier
 * bills it: payload (the bytes forwarded to and from the device),
 * overhead (everything else on the wire: SSH framing and handshakes, and
 * an estimate of the IP and TCP headers from the kernel's segment
 * counts), and, as part of the overhead, keepalives (each probe and
 * answer priced as its SSH packet under the session's cipher and MAC,
 * plus one IP/TCP header).
 *
 * A session is sampled (usage_sample) at a tick, on status, usage and
 * metrics requests, and when it closes; what a sample adds goes to the
 * device's totals since the relay started and to its pending row for the
 * day (UTC), which usage_flush adds to state_db every USAGE_FLUSH s and
 * at exit. A relay that is killed loses at most that last minute.
 */
#include <sys/socket.h>
#include <netinet/in.h>
#include <linux/tcp.h>

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>

#include "relay.h"

#define USAGE_FLUSH	60		/* s between writes to state_db */
#define USAGE_BUCKETS	4096
#define USAGE_HDR_V4	52		/* IPv4 20 + TCP 20 + timestamps 12 */
#define USAGE_HDR_V6	72
#define USAGE_KA_PROBE	27		/* keepalive@openssh.com, want-reply */
#define USAGE_KA_ANSWER	1		/* REQUEST_SUCCESS / FAILURE */

/* One device (by name) since the relay started. */
struct usage {
	char		*device;
	struct usage_counts total;
	struct usage_counts pending;	/* not yet in state_db */
	char		 pending_day[11];
	unsigned int	 scrape;	/* last /metrics it was in */
	struct usage	*next;		/* hash chain */
	TAILQ_ENTRY(usage) entry;
};
TAILQ_HEAD(usages, usage);
static struct usages usages = TAILQ_HEAD_INITIALIZER(usages);
static struct usage *buckets[USAGE_BUCKETS];
static time_t last_flush;

/* The bucket of a device name. */
static unsigned int
usage_hash(const char *s)
{
	return str_hash(s) % USAGE_BUCKETS;
}

/* The record of device, created if asked. */
static struct usage *
usage_find(const char *device, int create)
{
	unsigned int b = usage_hash(device);
	struct usage *u;

	for (u = buckets[b]; u != NULL; u = u->next)
		if (strcmp(u->device, device) == 0)
			return u;
	if (!create)
		return NULL;
	u = xcalloc(1, sizeof *u);
	u->device = xstrdup(device);
	u->next = buckets[b];
	buckets[b] = u;
	TAILQ_INSERT_TAIL(&usages, u, entry);
	return u;
}

/* Today (UTC) as YYYY-MM-DD, or n days before. */
static void
usage_day(char *buf, size_t len, int before)
{
	time_t t = time(NULL) - (time_t)before * 86400;
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(buf, len, "%Y-%m-%d", &tm);
}

/* A device session authenticated: its usage is counted from here. */
void
usage_attach(struct session *sess)
{
	sess->usage = usage_find(sess->name, 1);
	memset(&sess->usage_mark, 0, sizeof sess->usage_mark);
}

/*
 * Bytes on the wire of one SSH packet carrying payload bytes, under the
 * session's outgoing cipher and MAC (RFC 4253 section 6: length, padding
 * length, payload, at least 4 bytes of padding to the cipher's block;
 * AEAD and encrypt-then-MAC modes leave the length out of the blocks),
 * plus one IP/TCP header.
 */
static unsigned int
usage_packet(struct session *sess, unsigned int payload, unsigned int hdr)
{
	const char *c = ssh_get_cipher_out(sess->s);
	const char *m = ssh_get_hmac_out(sess->s);
	unsigned int block = 8, mac = 0, len_in_blocks = 1, n;

	if (c != NULL && strstr(c, "chacha20") != NULL) {
		mac = 16;
		len_in_blocks = 0;
	} else if (c != NULL && strstr(c, "gcm") != NULL) {
		block = 16;
		mac = 16;
		len_in_blocks = 0;
	} else {
		if (c != NULL && strstr(c, "aes") != NULL)
			block = 16;
		if (m != NULL) {
			mac = strstr(m, "512") ? 64 : strstr(m, "256") ? 32 :
			    strstr(m, "sha1") ? 20 : 16;
			if (strstr(m, "etm") != NULL)
				len_in_blocks = 0;
		}
	}
	n = 1 + payload + 4 + (len_in_blocks ? 4 : 0);
	n = (n + block - 1) / block * block;
	return n + (len_in_blocks ? 0 : 4) + mac + hdr;
}

/* What sess has carried since it began, by kind and direction. */
void
usage_session_counts(struct session *sess, struct usage_counts *u)
{
	struct tcp_info ti;
	socklen_t len = sizeof ti;
	uint64_t from, to, wire_to, wire_from;
	unsigned int hdr, probe, answer;

	memset(u, 0, sizeof *u);
	conn_bytes(sess, &from, &to);
	u->payload_to = to;
	u->payload_from = from;
	hdr = strchr(sess->peer, ':') != NULL ? USAGE_HDR_V6 : USAGE_HDR_V4;
	memset(&ti, 0, sizeof ti);
	if (getsockopt(sess->io.fd, IPPROTO_TCP, TCP_INFO, &ti, &len) == 0 &&
	    len >= offsetof(struct tcp_info, tcpi_bytes_sent) +
	    sizeof ti.tcpi_bytes_sent) {
		wire_to = ti.tcpi_bytes_sent + (uint64_t)ti.tcpi_segs_out * hdr;
		wire_from = ti.tcpi_bytes_received +
		    (uint64_t)ti.tcpi_segs_in * hdr;
	} else {		/* an old kernel: SSH's bytes, no headers */
		wire_to = sess->scount.out_bytes;
		wire_from = sess->scount.in_bytes;
	}
	u->overhead_to = wire_to > to ? wire_to - to : 0;
	u->overhead_from = wire_from > from ? wire_from - from : 0;
	probe = usage_packet(sess, USAGE_KA_PROBE, hdr);
	answer = usage_packet(sess, USAGE_KA_ANSWER, hdr);
	u->keepalive_to = sess->ka_probes_out * probe +
	    sess->ka_answers_out * answer;
	u->keepalive_from = sess->ka_probes_in * probe +
	    sess->ka_answers_in * answer;
}

/* dst += what cur has beyond mark; mark moves up to cur (never down). */
static void
usage_add_delta(struct usage_counts *dst, struct usage_counts *mark,
    const struct usage_counts *cur, struct usage_counts *dst2)
{
	const uint64_t *c = (const uint64_t *)(const void *)cur;
	uint64_t *m = (uint64_t *)(void *)mark;
	uint64_t *d = (uint64_t *)(void *)dst;
	uint64_t *d2 = (uint64_t *)(void *)dst2;
	size_t i;

	for (i = 0; i < sizeof *cur / sizeof (uint64_t); i++) {
		if (c[i] <= m[i])
			continue;
		d[i] += c[i] - m[i];
		d2[i] += c[i] - m[i];
		m[i] = c[i];
	}
}

/* Is anything counted? */
static int
usage_any(const struct usage_counts *u)
{
	return u->payload_to || u->payload_from || u->overhead_to ||
	    u->overhead_from || u->keepalive_to || u->keepalive_from;
}

/* Count what sess carried since its last sample. */
void
usage_sample(struct session *sess)
{
	struct usage_counts cur;
	struct usage *u = sess->usage;
	char day[11];

	if (u == NULL || sess->state != SESSION_ACTIVE)
		return;
	usage_session_counts(sess, &cur);
	usage_day(day, sizeof day, 0);
	if (strcmp(day, u->pending_day) != 0) {
		/* a new day: yesterday's rest goes first */
		if (usage_any(&u->pending))
			usage_flush(sess->relay);
		if (!usage_any(&u->pending))
			memcpy(u->pending_day, day, sizeof day);
	}
	usage_add_delta(&u->total, &sess->usage_mark, &cur, &u->pending);
}

/* Sample every device session. */
void
usage_sample_all(struct relay *r)
{
	struct session *sess;

	TAILQ_FOREACH(sess, &r->sessions, entry)
		if (sess->state == SESSION_ACTIVE && sess->usage != NULL)
			usage_sample(sess);
}

/* Add every pending row to state_db in one transaction. */
void
usage_flush(struct relay *r)
{
	static int flushing;
	struct usage *u;
	int ok = 1;

	if (flushing)
		return;
	flushing = 1;
	last_flush = time(NULL);
	usage_sample_all(r);
	TAILQ_FOREACH(u, &usages, entry)
		if (usage_any(&u->pending))
			break;
	if (u == NULL || state_usage_begin(r) == -1) {
		flushing = 0;
		return;
	}
	TAILQ_FOREACH(u, &usages, entry)
		if (usage_any(&u->pending) && state_usage_add(r,
		    u->pending_day, u->device, &u->pending) == -1) {
			ok = 0;
			break;
		}
	if (state_usage_end(r, ok) == 0)
		TAILQ_FOREACH(u, &usages, entry)
			memset(&u->pending, 0, sizeof u->pending);
	flushing = 0;
}

/* From the relay's tick: write usage every USAGE_FLUSH s. */
void
usage_tick(struct relay *r)
{
	if (time(NULL) - last_flush >= USAGE_FLUSH)
		usage_flush(r);
}

/* The counts as JSON members: "payload_to":N, ... "keepalive_from":N. */
void
usage_json(struct evbuffer *out, const struct usage_counts *u)
{
	evbuffer_add_printf(out, "\"payload_to\":%llu,\"payload_from\":%llu,"
	    "\"overhead_to\":%llu,\"overhead_from\":%llu,"
	    "\"keepalive_to\":%llu,\"keepalive_from\":%llu",
	    (unsigned long long)u->payload_to,
	    (unsigned long long)u->payload_from,
	    (unsigned long long)u->overhead_to,
	    (unsigned long long)u->overhead_from,
	    (unsigned long long)u->keepalive_to,
	    (unsigned long long)u->keepalive_from);
}

/* One row of `simtunctl usage`. */
struct usage_out {
	struct evbuffer	*out;
	int		 json;
	int		 n;
};

static void
usage_row(const char *day, const char *device, const struct usage_counts *u,
    void *arg)
{
	struct usage_out *o = arg;
	char b[6][32];

	if (o->json) {
		evbuffer_add_printf(o->out, "%s{\"device\":", o->n ? "," : "");
		json_string(o->out, device);
		evbuffer_add_printf(o->out, ",\"day\":\"%s\",", day);
		usage_json(o->out, u);
		evbuffer_add(o->out, "}", 1);
	} else {
		fmt_bytes(b[0], sizeof b[0], u->payload_to);
		fmt_bytes(b[1], sizeof b[1], u->payload_from);
		fmt_bytes(b[2], sizeof b[2], u->overhead_to);
		fmt_bytes(b[3], sizeof b[3], u->overhead_from);
		fmt_bytes(b[4], sizeof b[4], u->keepalive_to);
		fmt_bytes(b[5], sizeof b[5], u->keepalive_from);
		evbuffer_add_printf(o->out, "%-16s %-10s %10s %10s %10s %10s "
		    "%10s %10s\n", esc(device), day, b[0], b[1], b[2], b[3],
		    b[4], b[5]);
	}
	o->n++;
}

/* simtunctl usage [DEVICE] [--days N] [--json] */
void
usage_request(struct relay *r, int argc, char **argv, struct evbuffer *out)
{
	struct usage_out o;
	struct usage *u;
	const char *device = NULL, *why;
	unsigned long days = 7;
	char since[11];
	int i, rc;

	memset(&o, 0, sizeof o);
	o.out = out;
	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--json"))
			o.json = 1;
		else if (!strcmp(argv[i], "--days") && i + 1 < argc) {
			if (parse_uint(argv[++i], 1, 400, &days, &why) == -1) {
				evbuffer_add_printf(out, "error: --days: %s "
				    "(1 to 400)\n", why);
				return;
			}
		} else if (argv[i][0] != '-' && device == NULL)
			device = argv[i];
		else {
			evbuffer_add_printf(out, "error: usage: usage [DEVICE] "
			    "[--days N] [--json]\n");
			return;
		}
	}
	usage_flush(r);
	usage_day(since, sizeof since, (int)days - 1);
	if (o.json)
		evbuffer_add_printf(out, "{\"since\":\"%s\",\"usage\":[", since);
	else
		evbuffer_add_printf(out, "%-16s %-10s %10s %10s %10s %10s %10s "
		    "%10s\n", "DEVICE", "DAY", "PAYLOAD-TO", "PAYLOAD-FROM",
		    "OVERHD-TO", "OVERHD-FROM", "KEEPAL-TO", "KEEPAL-FROM");
	rc = state_usage_days(r, device, since, usage_row, &o);
	/* what state_db could not take yet is still counted */
	TAILQ_FOREACH(u, &usages, entry)
		if (usage_any(&u->pending) && (device == NULL ||
		    strcmp(device, u->device) == 0))
			usage_row(u->pending_day, u->device, &u->pending, &o);
	if (o.json)
		evbuffer_add_printf(out, "]%s}\n", rc == -1 ?
		    ",\"error\":\"state_db cannot be read\"" : "");
	else if (rc == -1)
		evbuffer_add_printf(out, "warning: state_db cannot be read; "
		    "only what is not yet written is shown\n");
}

/*
 * Wire bytes per device since the relay started, for /metrics: the
 * devices connected now (a counter carries on when its device is back;
 * a fleet's churn does not pile up series).
 */
void
usage_metrics(struct relay *r, struct evbuffer *out)
{
	static const char *kinds[] = { "payload", "overhead", "keepalive" };
	static unsigned int scrape;
	struct session *sess;
	struct usage *u;
	const uint64_t *v;
	int k, d;

	usage_sample_all(r);
	evbuffer_add_printf(out, "# HELP simtun_device_wire_bytes_total "
	    "Bytes on a device's link since the relay started: payload, "
	    "overhead (SSH and estimated IP/TCP headers) and keepalives "
	    "(part of the overhead).\n"
	    "# TYPE simtun_device_wire_bytes_total counter\n");
	scrape++;
	TAILQ_FOREACH(sess, &r->sessions, entry) {
		/* once per name: sessions of one device share its record */
		if (sess->state != SESSION_ACTIVE || sess->displaced ||
		    (u = sess->usage) == NULL || u->scrape == scrape)
			continue;
		u->scrape = scrape;
		v = (const uint64_t *)(const void *)&u->total;
		for (k = 0; k < 3; k++)
			for (d = 0; d < 2; d++) {
				evbuffer_add_printf(out,
				    "simtun_device_wire_bytes_total{device=\"");
				metrics_label(out, u->device);
				evbuffer_add_printf(out, "\",kind=\"%s\","
				    "direction=\"%s\"} %llu\n", kinds[k],
				    d ? "from_device" : "to_device",
				    (unsigned long long)v[k * 2 + d]);
			}
	}
}

/* At exit. */
void
usage_clear(void)
{
	struct usage *u;

	while ((u = TAILQ_FIRST(&usages)) != NULL) {
		TAILQ_REMOVE(&usages, u, entry);
		free(u->device);
		free(u);
	}
	memset(buckets, 0, sizeof buckets);
}
