/* The relay's answers on the control socket: status and kick. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>

#include "relay.h"

/* "4649,4650" for the ports a session owns; len fits max_forwards (1024). */
static void
control_ports(struct relay *r, struct session *sess, char *buf, size_t len)
{
	struct listener *l;
	size_t off = 0;

	buf[0] = '\0';
	TAILQ_FOREACH(l, &sess->owned, sentry) {
		if (off >= len)
			break;
		off += (size_t)snprintf(buf + off, len - off, "%s%d",
		    off ? "," : "", l->port);
	}
	if (buf[0] == '\0')
		snprintf(buf, len, "-");
}

/* Status as a table or JSON: one row per authenticated device. */
static void
control_status(struct relay *r, struct evbuffer *out, int json)
{
	struct session *sess;
	char ports[8192], since[32], in[32], outb[32], rtt[32];
	uint64_t from_dev, to_dev;
	time_t now = time(NULL);
	int first = 1, nconn;

	if (json)
		evbuffer_add_printf(out, "{\"host_key\":\"%s\","
		    "\"unauthenticated\":%u,\"refused\":%llu,"
		    "\"takeovers\":%llu,\"keepalive_failures\":%llu,"
		    "\"devices\":[", r->host_fp, r->nunauth,
		    (unsigned long long)r->refused,
		    (unsigned long long)r->takeovers,
		    (unsigned long long)r->ka_failures);
	else
		evbuffer_add_printf(out, "%-16s %-12s %-10s %-8s %-22s %6s "
		    "%8s %8s %s\n", "DEVICE", "PORTS", "STATE", "SINCE", "PEER",
		    "RTT", "IN", "OUT", "TAKEOVERS");
	TAILQ_FOREACH(sess, &r->sessions, entry) {
		if (sess->state != SESSION_ACTIVE)
			continue;
		control_ports(r, sess, ports, sizeof ports);
		nconn = conn_bytes(sess, &from_dev, &to_dev);
		if (json) {
			evbuffer_add_printf(out, "%s{\"device\":", first ? "" :
			    ",");
			json_string(out, sess->name);
			evbuffer_add_printf(out, ",\"ports\":[%s],"
			    "\"state\":\"connected\",\"since\":%lld,"
			    "\"peer\":\"%s\",\"peer_port\":%d,"
			    "\"rtt_ms\":%ld,\"bytes_in\":%llu,"
			    "\"bytes_out\":%llu,\"takeovers\":%u,"
			    "\"key\":\"%s\",\"connections\":%d}",
			    strcmp(ports, "-") ? ports : "",
			    (long long)sess->since, sess->peer,
			    sess->peer_port, sess->rtt_ms,
			    (unsigned long long)from_dev,
			    (unsigned long long)to_dev, sess->takeovers,
			    sess->fp, nconn);
			first = 0;
			continue;
		}
		fmt_duration(since, sizeof since, now - sess->since);
		fmt_bytes(in, sizeof in, from_dev);
		fmt_bytes(outb, sizeof outb, to_dev);
		if (sess->rtt_ms >= 0)
			snprintf(rtt, sizeof rtt, "%ldms", sess->rtt_ms);
		else
			snprintf(rtt, sizeof rtt, "-");
		evbuffer_add_printf(out, "%-16s %-12s %-10s %-8s %-22s %6s "
		    "%8s %8s %u\n", sess->name, ports, "connected", since,
		    sess->peer, rtt, in, outb, sess->takeovers);
	}
	if (json)
		evbuffer_add_printf(out, "]}\n");
}

/*
 * Close every session of a device, by name or by key fingerprint; its ports
 * are freed at once. A name that several keys share is refused: kicking
 * one device must not drop another that happens to have the same comment.
 */
static void
control_kick(struct relay *r, const char *name, struct evbuffer *out)
{
	struct session *sess, *tmp;
	const char *fp = NULL;
	int n = 0, byfp = !strncmp(name, "SHA256:", 7);

	TAILQ_FOREACH(sess, &r->sessions, entry) {
		if (sess->state != SESSION_ACTIVE || byfp ||
		    strcmp(sess->name, name) != 0)
			continue;
		if (fp != NULL && strcmp(fp, sess->fp) != 0) {
			evbuffer_add_printf(out, "error: several keys are "
			    "named %s; kick by fingerprint (%s, %s)\n",
			    esc(name), fp, sess->fp);
			return;
		}
		fp = sess->fp;
	}
	TAILQ_FOREACH_SAFE(sess, &r->sessions, entry, tmp) {
		if (sess->state == SESSION_ACTIVE && !strcmp(byfp ? sess->fp :
		    sess->name, name)) {
			session_close(sess, "kicked by simtunctl");
			n++;
		}
	}
	if (n == 0)
		evbuffer_add_printf(out, "error: no device named %s\n",
		    esc(name));
	else
		evbuffer_add_printf(out, "kicked %s (%d session%s)\n",
		    esc(name), n, n == 1 ? "" : "s");
}

/* Dispatch one request line from simtunctl. */
void
relay_control(const char *line, struct evbuffer *out, void *arg)
{
	struct relay *r = arg;

	if (!strcmp(line, "status"))
		control_status(r, out, 0);
	else if (!strcmp(line, "status --json") || !strcmp(line,
	    "status json"))
		control_status(r, out, 1);
	else if (!strncmp(line, "kick ", 5) && line[5] != '\0')
		control_kick(r, line + 5, out);
	else
		evbuffer_add_printf(out, "error: unknown request (try status, "
		    "status --json, kick DEVICE)\n");
}
