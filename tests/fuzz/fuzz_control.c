/*
 * The relay's control protocol: a request is framed as control.c frames it
 * (first LF-terminated line, at most 512 bytes) and answered by
 * relay_control() against a fixture relay with live-looking devices, so
 * status (table and JSON) and kick run their real code, kick included down
 * to session_close and listener_release. The rest of the input after the
 * request line names the second device and picks its port count, to reach
 * the escaping and formatting of odd names and long port lists. A JSON
 * answer must be valid JSON.
 */
#include <ctype.h>
#include <stdio.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/listener.h>

#include "fuzz.h"
#include "relay.h"

#define CONTROL_MAX_LINE	512	/* as in common/control.c */
#define FUZZ_MAX_NAME		256
/* Ports for the second device: up to max_forwards' ceiling. */
#ifndef FUZZ_MAX_PORTS
#define FUZZ_MAX_PORTS		1024
#endif

static struct event_base *fuzz_base;

/* Events of the fixture never fire; the loop is never run. */
static void
fuzz_nop(evutil_socket_t fd, short what, void *arg)
{
}

/* A session as session.c leaves it once the device is authenticated. */
static struct session *
fuzz_session(struct relay *r, const char *name, enum session_state state,
    uint64_t id)
{
	struct session *sess = xcalloc(1, sizeof *sess);

	sess->relay = r;
	sess->id = id;
	sess->state = state;
	snprintf(sess->peer, sizeof sess->peer, "198.51.100.%llu",
	    (unsigned long long)id);
	sess->peer_port = 40000 + (int)id;
	sess->name = name ? xstrdup(name) : NULL;
	sess->fp = xstrdup("SHA256:Dm6y2WlAQ5BK8fXy2iR2LEeFh0TtSdLXxWgbzNS8Yyk");
	sess->since = time(NULL) - 3700 * (time_t)id;
	sess->rtt_ms = id == 2 ? -1 : 42;
	sess->bytes_in = 1536 * id;
	sess->bytes_out = (uint64_t)1 << (20 + id);
	sess->ev_timer = event_new(fuzz_base, -1, 0, fuzz_nop, NULL);
	sess->ev_free = event_new(fuzz_base, -1, 0, fuzz_nop, NULL);
	sess->io.ev_rd = event_new(fuzz_base, -1, 0, fuzz_nop, NULL);
	sess->io.ev_wr = event_new(fuzz_base, -1, 0, fuzz_nop, NULL);
	TAILQ_INIT(&sess->conns);
	TAILQ_INIT(&sess->owned);
	TAILQ_INSERT_TAIL(&r->sessions, sess, entry);
	if (state != SESSION_ACTIVE)
		r->nunauth++;
	return sess;
}

/* A device port owned by sess (a disabled listener on no socket). */
static void
fuzz_listener(struct relay *r, struct session *sess, int port)
{
	struct listener *l = xcalloc(1, sizeof *l);

	l->relay = r;
	l->port = port;
	l->owner = sess;
	l->bind_req = xstrdup("0.0.0.0");
	l->evl = evconnlistener_new(fuzz_base, NULL, NULL, LEV_OPT_DISABLED, 0,
	    -1);
	FUZZ_ASSERT(l->evl != NULL);
	sess->nforwards++;
	TAILQ_INSERT_TAIL(&r->listeners, l, entry);
	TAILQ_INSERT_TAIL(&sess->owned, l, sentry);
	r->byport[port] = l;
}

/* A forwarded connection in flight, for the byte counts. */
static void
fuzz_pump(struct session *sess, uint64_t in, uint64_t out)
{
	struct conn *c = xcalloc(1, sizeof *c);

	c->sess = sess;
	c->state = CONN_OPEN;
	c->p = xcalloc(1, sizeof *c->p);
	c->p->bytes_in = in;
	c->p->bytes_out = out;
	c->p->ev_rd = event_new(fuzz_base, -1, 0, fuzz_nop, NULL);
	c->p->ev_wr = event_new(fuzz_base, -1, 0, fuzz_nop, NULL);
	c->ev_timeout = event_new(fuzz_base, -1, 0, fuzz_nop, NULL);
	c->ev_free = event_new(fuzz_base, -1, 0, fuzz_nop, NULL);
	TAILQ_INSERT_TAIL(&sess->conns, c, entry);
	sess->nconns++;
	sess->relay->nconns++;
}

/* Tear the fixture down (sessions closed by kick included). */
static void
fuzz_free_relay(struct relay *r)
{
	struct session *sess;
	struct listener *l;
	struct conn *c;

	while ((l = TAILQ_FIRST(&r->listeners)) != NULL)
		listener_free(l);
	while ((sess = TAILQ_FIRST(&r->sessions)) != NULL) {
		TAILQ_REMOVE(&r->sessions, sess, entry);
		while ((c = TAILQ_FIRST(&sess->conns)) != NULL) {
			TAILQ_REMOVE(&sess->conns, c, entry);
			event_free(c->p->ev_rd);
			event_free(c->p->ev_wr);
			event_free(c->ev_timeout);
			event_free(c->ev_free);
			free(c->p);
			free(c);
		}
		event_free(sess->ev_timer);
		event_free(sess->ev_free);
		event_free(sess->io.ev_rd);
		event_free(sess->io.ev_wr);
		free(sess->name);
		free(sess->fp);
		free(sess);
	}
	free(r->host_fp);
	free(r->byport);
}

/* A minimal JSON checker: returns the end of one value, or NULL. */
static const char *
fuzz_json_value(const char *p, int depth)
{
	if (depth > 16)
		return NULL;
	while (*p == ' ')
		p++;
	if (*p == '"') {
		for (p++; *p != '"'; p++) {
			if ((unsigned char)*p < 0x20)
				return NULL;
			if (*p == '\\') {
				p++;
				if (*p == 'u') {
					int i;

					for (i = 1; i <= 4; i++)
						if (!isxdigit((unsigned char)p[i]))
							return NULL;
					p += 4;
				} else if (strchr("\"\\/bfnrt", *p) == NULL ||
				    *p == '\0')
					return NULL;
			}
		}
		return p + 1;
	}
	if (*p == '-' || isdigit((unsigned char)*p)) {
		if (*p == '-')
			p++;
		if (!isdigit((unsigned char)*p))
			return NULL;
		while (isdigit((unsigned char)*p))
			p++;
		return p;
	}
	if (*p == '[' || *p == '{') {
		char close = *p == '[' ? ']' : '}';
		int obj = *p == '{';

		p++;
		while (*p == ' ')
			p++;
		if (*p == close)
			return p + 1;
		for (;;) {
			if (obj) {
				if (*p != '"' ||
				    (p = fuzz_json_value(p, depth + 1)) == NULL)
					return NULL;
				if (*p++ != ':')
					return NULL;
			}
			if ((p = fuzz_json_value(p, depth + 1)) == NULL)
				return NULL;
			while (*p == ' ')
				p++;
			if (*p == close)
				return p + 1;
			if (*p++ != ',')
				return NULL;
			while (*p == ' ')
				p++;
		}
	}
	if (!strncmp(p, "true", 4) || !strncmp(p, "null", 4))
		return p + 4;
	if (!strncmp(p, "false", 5))
		return p + 5;
	return NULL;
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	log_init("fuzz_control", 0);
	if ((fuzz_base = event_base_new()) == NULL)
		fatalx("event_base_new");
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct relay r;
	struct control_peer peer;
	struct session *s1, *s2;
	struct evbuffer *in, *out;
	char name[FUZZ_MAX_NAME + 1], *line, *ans;
	size_t n, rest, len;
	int i, nports;

	memset(&peer, 0, sizeof peer);
	snprintf(peer.who, sizeof peer.who, "uid 0 pid 1 (fuzz)");
	memset(&r, 0, sizeof r);
	TAILQ_INIT(&r.sessions);
	TAILQ_INIT(&r.listeners);
	TAILQ_INIT(&r.keys);
	TAILQ_INIT(&r.grants);	/* no keys: grant and expose are refused */
	r.byport = xcalloc(65536, sizeof *r.byport);
	r.base = fuzz_base;
	r.host_fp = xstrdup("SHA256:Dm6y2WlAQ5BK8fXy2iR2LEeFh0TtSdLXxWgbzNS8Yyk");
	r.refused = 3;
	r.takeovers = 1;

	/* frame the request as control_read_cb does */
	in = evbuffer_new();
	out = evbuffer_new();
	FUZZ_ASSERT(in != NULL && out != NULL);
	evbuffer_add(in, data, size);
	line = evbuffer_readln(in, &n, EVBUFFER_EOL_LF);
	if (line == NULL)
		goto done;

	/* the rest: second device's port count and name */
	rest = evbuffer_get_length(in);
	nports = 1;
	if (rest > 0) {
		unsigned char c;

		evbuffer_remove(in, &c, 1);
		nports = c % (FUZZ_MAX_PORTS + 1);
	}
	len = evbuffer_remove(in, name, FUZZ_MAX_NAME) > 0 ?
	    strnlen(name, FUZZ_MAX_NAME) : 0;
	if (rest <= 1)
		snprintf(name, sizeof name, "pi \"02\"\\\x01");
	else
		name[len] = '\0';

	s1 = fuzz_session(&r, "pi-01", SESSION_ACTIVE, 1);
	fuzz_listener(&r, s1, 4649);
	fuzz_pump(s1, 100, 200);
	fuzz_session(&r, NULL, SESSION_AUTH, 3);
	s2 = fuzz_session(&r, name, SESSION_ACTIVE, 2);
	for (i = 0; i < nports; i++)
		fuzz_listener(&r, s2, 4650 + i * 997 % 60000);
	fuzz_pump(s2, (uint64_t)1 << 40, 5);
	fuzz_session(&r, "pi-01", SESSION_ACTIVE, 4);	/* a second session */

	if (n > CONTROL_MAX_LINE)
		evbuffer_add_printf(out, "error: request too long\n");
	else
		relay_control(line, out, &peer, &r);
	free(line);

	/* every answer is at least one full line */
	len = evbuffer_get_length(out);
	FUZZ_ASSERT(len > 0);
	ans = xmalloc(len + 1);
	evbuffer_copyout(out, ans, len);
	ans[len] = '\0';
	if (getenv("FUZZ_PRINT") != NULL)	/* to look at an answer */
		fwrite(ans, 1, len, stdout);
	FUZZ_ASSERT(ans[len - 1] == '\n');
	if (ans[0] == '{') {
		const char *end = fuzz_json_value(ans, 0);

		FUZZ_ASSERT(end != NULL && strcmp(end, "\n") == 0);
	}
	free(ans);
done:
	fuzz_free_relay(&r);
	evbuffer_free(in);
	evbuffer_free(out);
	return 0;
}
