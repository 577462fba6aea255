/* The relay's answers on the control socket: status and kick. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>

#include "relay.h"

/*
 * "4649,pi-01:22" for the ports and names a session holds (names: 0 only
 * ports, 1 only names as JSON strings, 2 both as text); len fits
 * max_forwards (1024) entries.
 */
static void
control_ports(struct session *sess, int names, char *buf, size_t len)
{
	struct listener *l;
	size_t off = 0;

	buf[0] = '\0';
	TAILQ_FOREACH(l, &sess->owned, sentry) {
		if (off >= len)
			break;
		if ((l->name != NULL) != (names >= 1) && names != 2)
			continue;
		if (l->name != NULL)
			off += (size_t)snprintf(buf + off, len - off,
			    names == 1 ? "%s\"%s:%d\"" : "%s%s:%d",
			    off ? "," : "", l->name, l->port);
		else
			off += (size_t)snprintf(buf + off, len - off, "%s%d",
			    off ? "," : "", l->port);
	}
	if (buf[0] == '\0' && names == 2)
		snprintf(buf, len, "-");
}

/* The operators' channels: a table after the devices', or a JSON array. */
static void
control_operators(struct relay *r, struct evbuffer *out, int json)
{
	struct session *sess;
	struct conn *c;
	char since[32], in[32], outb[32];
	time_t now = time(NULL);
	int first = 1, cfirst, header = 0;

	if (json)
		evbuffer_add_printf(out, ",\"operators\":[");
	TAILQ_FOREACH(sess, &r->sessions, entry) {
		if (sess->state != SESSION_ACTIVE || !sess->operator)
			continue;
		if (json) {
			evbuffer_add_printf(out, "%s{\"operator\":", first ?
			    "" : ",");
			json_string(out, sess->name);
			evbuffer_add_printf(out, ",\"key\":\"%s\",\"peer\":"
			    "\"%s\",\"peer_port\":%d,\"since\":%lld,"
			    "\"channels\":[", sess->fp, sess->peer,
			    sess->peer_port, (long long)sess->since);
			cfirst = 1;
			TAILQ_FOREACH(c, &sess->opconns, opentry) {
				evbuffer_add_printf(out, "%s{\"device\":",
				    cfirst ? "" : ",");
				json_string(out, c->sess->name);
				evbuffer_add_printf(out, ",\"target\":");
				json_string(out, c->target);
				evbuffer_add_printf(out, ",\"port\":%d,"
				    "\"bytes_to_device\":%llu,"
				    "\"bytes_from_device\":%llu}", c->port,
				    (unsigned long long)c->p->bytes_in,
				    (unsigned long long)c->p->bytes_out);
				cfirst = 0;
			}
			evbuffer_add_printf(out, "]}");
			first = 0;
			continue;
		}
		if (!header) {
			evbuffer_add_printf(out, "\n%-16s %-22s %-8s %-24s "
			    "%8s %8s\n", "OPERATOR", "PEER", "SINCE",
			    "CHANNEL", "IN", "OUT");
			header = 1;
		}
		fmt_duration(since, sizeof since, now - sess->since);
		if (TAILQ_EMPTY(&sess->opconns))
			evbuffer_add_printf(out, "%-16s %-22s %-8s %-24s %8s "
			    "%8s\n", sess->name, sess->peer, since, "-", "-",
			    "-");
		TAILQ_FOREACH(c, &sess->opconns, opentry) {
			char tgt[300];

			snprintf(tgt, sizeof tgt, "%s:%d", c->target, c->port);
			fmt_bytes(in, sizeof in, c->p->bytes_out);
			fmt_bytes(outb, sizeof outb, c->p->bytes_in);
			evbuffer_add_printf(out, "%-16s %-22s %-8s %-24s %8s "
			    "%8s\n", sess->name, sess->peer, since, tgt, in,
			    outb);
		}
	}
	if (json)
		evbuffer_add_printf(out, "]");
}

/* Status as a table or JSON: one row per authenticated device. */
static void
control_status(struct relay *r, struct evbuffer *out, int json)
{
	struct session *sess;
	char ports[8192], names[8192], since[32], in[32], outb[32], rtt[32];
	uint64_t from_dev, to_dev;
	struct usage_counts u;
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
	if (json)
		;
	else if (r->cluster != NULL) {
		evbuffer_add_printf(out, "cluster: ");
		cluster_status(r, out);
		evbuffer_add_printf(out, "\n");
	}
	else
		evbuffer_add_printf(out, "%-16s %-12s %-10s %-8s %-22s %6s "
		    "%8s %8s %s\n", "DEVICE", "PORTS", "STATE", "SINCE", "PEER",
		    "RTT", "IN", "OUT", "TAKEOVERS");
	TAILQ_FOREACH(sess, &r->sessions, entry) {
		/* a displaced session is on its way out (2 s at most) */
		if (sess->state != SESSION_ACTIVE || sess->operator ||
		    sess->displaced || sess->peer_relay)
			continue;
		control_ports(sess, json ? 0 : 2, ports, sizeof ports);
		nconn = conn_bytes(sess, &from_dev, &to_dev);
		if (json) {
			evbuffer_add_printf(out, "%s{\"device\":", first ? "" :
			    ",");
			json_string(out, sess->name);
			control_ports(sess, 1, names, sizeof names);
			evbuffer_add_printf(out, ",\"ports\":[%s],"
			    "\"names\":[%s],"
			    "\"state\":\"connected\",\"since\":%lld,"
			    "\"peer\":\"%s\",\"peer_port\":%d,"
			    "\"rtt_ms\":%ld,\"bytes_in\":%llu,"
			    "\"bytes_out\":%llu,\"takeovers\":%u,"
			    "\"key\":\"%s\",\"connections\":%d,",
			    ports, names, (long long)sess->since, sess->peer,
			    sess->peer_port, sess->rtt_ms,
			    (unsigned long long)from_dev,
			    (unsigned long long)to_dev, sess->takeovers,
			    sess->fp, nconn);
			usage_session_counts(sess, &u);
			evbuffer_add_printf(out, "\"usage\":{");
			usage_json(out, &u);
			evbuffer_add(out, "}}", 2);
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
		evbuffer_add_printf(out, "]");
	control_operators(r, out, json);
	if (json) {
		evbuffer_add_printf(out, ",\"cluster\":");
		cluster_status(r, out);
		evbuffer_add_printf(out, "}\n");
	}
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
			sess->no_linger = 1;
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

#define CONTROL_MAX_ARGS	16

/* Split a request at blanks into argv (in place); the count, -1 if long. */
static int
control_split(char *line, char **argv)
{
	char *tok, *save = NULL;
	int n = 0;

	for (tok = strtok_r(line, " \t", &save); tok != NULL;
	    tok = strtok_r(NULL, " \t", &save)) {
		if (n == CONTROL_MAX_ARGS)
			return -1;
		argv[n++] = tok;
	}
	return n;
}

/* Dispatch one request line from simtunctl. */
void
relay_control(const char *line, struct evbuffer *out,
    const struct control_peer *peer, void *arg)
{
	struct relay *r = arg;
	char *argv[CONTROL_MAX_ARGS], *copy;
	int argc;

	copy = xstrdup(line);
	argc = control_split(copy, argv);
	if (argc > 0 && (!strcmp(argv[0], "grant") ||
	    !strcmp(argv[0], "grants") || !strcmp(argv[0], "revoke") ||
	    !strcmp(argv[0], "expose"))) {
		grant_request(r, argc, argv, out, peer);
		free(copy);
		return;
	}
	if (argc > 0 && !strcmp(argv[0], "usage")) {
		usage_request(r, argc, argv, out);
		free(copy);
		return;
	}
	free(copy);
	if (!strcmp(line, "status"))
		control_status(r, out, 0);
	else if (!strcmp(line, "status --json") || !strcmp(line,
	    "status json"))
		control_status(r, out, 1);
	else if (!strcmp(line, "devices"))
		devices_list(r, out, 0);
	else if (!strcmp(line, "devices --json"))
		devices_list(r, out, 1);
	else if (!strncmp(line, "kick ", 5) && line[5] != '\0')
		control_kick(r, line + 5, out);
	else
		evbuffer_add_printf(out, "error: unknown request (try status, "
		    "devices, kick, grant, grants, revoke, expose, usage)\n");
}
