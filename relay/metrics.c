/* Optional Prometheus text metrics on metrics_listen (libevent evhttp). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/http.h>

#include "relay.h"

/* A label value with \, " and newline escaped as the text format wants. */
void
metrics_label(struct evbuffer *out, const char *s)
{
	for (; *s; s++) {
		if (*s == '\\' || *s == '"')
			evbuffer_add_printf(out, "\\%c", *s);
		else if (*s == '\n')
			evbuffer_add_printf(out, "\\n");
		else
			evbuffer_add(out, s, 1);
	}
}

/* One metric family header. */
static void
metrics_head(struct evbuffer *out, const char *name, const char *type,
    const char *help)
{
	evbuffer_add_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help,
	    name, type);
}

/* GET /metrics */
static void
metrics_request(struct evhttp_request *req, void *arg)
{
	struct relay *r = arg;
	struct session *sess;
	struct evbuffer *out;
	uint64_t in, o;
	unsigned int n = 0;
	const char *uri = evhttp_request_get_uri(req);

	if (evhttp_request_get_command(req) != EVHTTP_REQ_GET ||
	    uri == NULL || strncmp(uri, "/metrics", 8) != 0) {
		evhttp_send_error(req, HTTP_NOTFOUND, "try /metrics");
		return;
	}
	if ((out = evbuffer_new()) == NULL)
		fatalx("evbuffer_new");
	TAILQ_FOREACH(sess, &r->sessions, entry)
		if (sess->state == SESSION_ACTIVE && !sess->operator &&
		    !sess->displaced && !sess->peer_relay)
			n++;
	metrics_head(out, "simtun_devices_connected", "gauge",
	    "Devices with an authenticated session.");
	evbuffer_add_printf(out, "simtun_devices_connected %u\n", n);
	metrics_head(out, "simtun_unauthenticated_connections", "gauge",
	    "Connections still in key exchange or authentication.");
	evbuffer_add_printf(out, "simtun_unauthenticated_connections %u\n",
	    r->nunauth);
	metrics_head(out, "simtun_takeovers_total", "counter",
	    "Ports handed to a newer session of the same key.");
	evbuffer_add_printf(out, "simtun_takeovers_total %llu\n",
	    (unsigned long long)r->takeovers);
	metrics_head(out, "simtun_key_clones_total", "counter",
	    "Device keys seen live in two places at once (cloned images).");
	evbuffer_add_printf(out, "simtun_key_clones_total %llu\n",
	    (unsigned long long)r->clones);
	metrics_head(out, "simtun_refused_total", "counter",
	    "Refused connections, keys and forward requests.");
	evbuffer_add_printf(out, "simtun_refused_total %llu\n",
	    (unsigned long long)r->refused);
	metrics_head(out, "simtun_keepalive_failures_total", "counter",
	    "Sessions closed for unanswered keepalives.");
	evbuffer_add_printf(out, "simtun_keepalive_failures_total %llu\n",
	    (unsigned long long)r->ka_failures);
	metrics_head(out, "simtun_device_bytes_total", "counter",
	    "Bytes through a device's tunnel (in = from the device).");
	TAILQ_FOREACH(sess, &r->sessions, entry) {
		if (sess->state != SESSION_ACTIVE || sess->operator ||
		    sess->displaced || sess->peer_relay)
			continue;
		conn_bytes(sess, &in, &o);
		evbuffer_add_printf(out, "simtun_device_bytes_total{device=\"");
		metrics_label(out, sess->name);
		evbuffer_add_printf(out, "\",direction=\"in\"} %llu\n",
		    (unsigned long long)in);
		evbuffer_add_printf(out, "simtun_device_bytes_total{device=\"");
		metrics_label(out, sess->name);
		evbuffer_add_printf(out, "\",direction=\"out\"} %llu\n",
		    (unsigned long long)o);
	}
	devices_metrics(out);
	usage_metrics(r, out);
	cluster_metrics(r, out);
	metrics_head(out, "simtun_grants_active", "gauge",
	    "Grants and exposes in force.");
	evbuffer_add_printf(out, "simtun_grants_active{kind=\"grant\"} %u\n"
	    "simtun_grants_active{kind=\"expose\"} %u\n",
	    grant_count(r, GRANT_ACCESS), grant_count(r, GRANT_EXPOSE));
	evhttp_add_header(evhttp_request_get_output_headers(req),
	    "Content-Type", "text/plain; version=0.0.4");
	evhttp_send_reply(req, HTTP_OK, "OK", out);
	evbuffer_free(out);
}

/* Serve /metrics when metrics_listen is set. */
int
metrics_open(struct relay *r)
{
	char *host;
	uint16_t port;
	const char *why;

	if (r->conf.metrics_listen == NULL)
		return 0;
	if (parse_hostport(r->conf.metrics_listen, &host, &port, 0, &why) ==
	    -1) {
		log_error("metrics_listen: %s", why);
		return -1;
	}
	if ((r->http = evhttp_new(r->base)) == NULL)
		fatalx("evhttp_new");
	evhttp_set_allowed_methods(r->http, EVHTTP_REQ_GET);
	evhttp_set_timeout(r->http, 10);
	evhttp_set_max_headers_size(r->http, 8192);
	evhttp_set_max_body_size(r->http, 0);
	evhttp_set_gencb(r->http, metrics_request, r);
	if (evhttp_bind_socket(r->http, host, port) != 0) {
		log_warn("metrics_listen %s", r->conf.metrics_listen);
		free(host);
		return -1;
	}
	log_info("metrics on http://%s/metrics", r->conf.metrics_listen);
	free(host);
	return 0;
}

/* Stop serving metrics. */
void
metrics_close(struct relay *r)
{
	if (r->http != NULL)
		evhttp_free(r->http);
	r->http = NULL;
}
