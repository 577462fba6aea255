/* agent.conf: [agent], [relay], [forward NAME], [path NAME]. */
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <net/if.h>

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent.h"

enum { SEC_NONE, SEC_AGENT, SEC_RELAY, SEC_FORWARD, SEC_PATH, SEC_BAD };

/* Parse state, kept apart from the configuration it fills. */
struct config_parse {
	struct agent_config *c;
	int		 section;	/* SEC_* being read */
	char		*cur_section;
	struct forward	*cur_forward;
	struct path	*cur_path;
	int		 identity_line;	/* 0 = default, not in the file */
	int		 known_hosts_line;
};

/* Defaults first, so a minimal file works. */
static struct agent_config *
config_new(const char *file)
{
	struct agent_config *c;

	c = xcalloc(1, sizeof *c);
	c->file = xstrdup(file);
	c->identity = xstrdup("/etc/simtun/id_ed25519");
	c->user = xstrdup("simtun");
	c->control_socket = xstrdup("/run/simtun/agent.sock");
	c->ka_interval = 30;
	c->ka_count = 3;
	c->backoff_initial = 1;
	c->backoff_max = 120;
	c->relay_port = 2222;
	TAILQ_INIT(&c->forwards);
	TAILQ_INIT(&c->paths);
	return c;
}

/* Free everything the loader allocated. */
void
config_free(struct agent_config *c)
{
	struct forward *f;
	struct path *p;

	if (c == NULL)
		return;
	while ((f = TAILQ_FIRST(&c->forwards)) != NULL) {
		TAILQ_REMOVE(&c->forwards, f, entry);
		free(f->name);
		free(f->remote_host);
		free(f->local_host);
		free(f);
	}
	while ((p = TAILQ_FIRST(&c->paths)) != NULL) {
		TAILQ_REMOVE(&c->paths, p, entry);
		free(p->name);
		free(p->interface);
		free(p->source);
		free(p->host);
		free(p);
	}
	if (c->key != NULL)
		ssh_key_free(c->key);
	free(c->file);
	free(c->identity);
	free(c->user);
	free(c->control_socket);
	free(c->relay_host);
	free(c->host_key);
	free(c->known_hosts);
	free(c);
}

/* Replace a string value, so a repeated key keeps the last one. */
static void
config_set(char **dst, const char *v)
{
	free(*dst);
	*dst = xstrdup(v);
}

/* Host names and addresses: no spaces or quotes that would hide typos. */
static int
parse_host(const char *v, const char **why)
{
	const char *p;

	if (*v == '\0') {
		*why = "empty value";
		return -1;
	}
	for (p = v; *p; p++) {
		if (*p == ' ' || *p == '\t' || *p == '"' || *p == '/' ||
		    *p == '[' || *p == ']') {
			*why = "bad character in host";
			return -1;
		}
	}
	return 0;
}

/* A numeric address (or localhost) to connect to, resolved now. */
static int
parse_local(const char *host, uint16_t port, struct sockaddr_storage *ss,
    socklen_t *len, const char **why)
{
	struct addrinfo hints, *res;
	char pbuf[8];

	if (!strcmp(host, "localhost"))
		host = "127.0.0.1";
	memset(&hints, 0, sizeof hints);
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
	snprintf(pbuf, sizeof pbuf, "%u", port);
	if (getaddrinfo(host, pbuf, &hints, &res) != 0) {
		*why = "local host must be a numeric address or localhost";
		return -1;
	}
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	*len = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

/* A source address must be numeric: it is bound before connect. */
static int
parse_source(const char *v, const char **why)
{
	struct in6_addr a6;
	struct in_addr a4;

	if (inet_pton(AF_INET, v, &a4) == 1 || inet_pton(AF_INET6, v, &a6) == 1)
		return 0;
	*why = "source must be a numeric IPv4 or IPv6 address";
	return -1;
}

/* "KIND NAME" (or just "KIND"): the NAME part, else NULL. */
static const char *
config_section_name(const char *section, const char *kind)
{
	size_t n = strlen(kind);

	if (strncmp(section, kind, n) != 0 || (section[n] != ' ' &&
	    section[n] != '\t' && section[n] != '\0'))
		return NULL;
	return section + n + strspn(section + n, " \t");
}

/* A section header opens: set up [forward NAME] / [path NAME] entries. */
static int
config_section(struct config_ctx *ctx, struct config_parse *ps,
    const char *section)
{
	struct agent_config *c = ps->c;
	const char *name;
	struct forward *f;
	struct path *p;

	ps->cur_forward = NULL;
	ps->cur_path = NULL;
	if (!strcmp(section, "agent"))
		return SEC_AGENT;
	if (!strcmp(section, "relay"))
		return SEC_RELAY;
	if ((name = config_section_name(section, "forward")) != NULL) {
		TAILQ_FOREACH(f, &c->forwards, entry) {
			if (!strcmp(f->name, name)) {
				ps->cur_forward = f;
				return SEC_FORWARD;
			}
		}
		f = xcalloc(1, sizeof *f);
		f->name = xstrdup(*name ? name : "default");
		f->line = ctx->line;
		TAILQ_INSERT_TAIL(&c->forwards, f, entry);
		ps->cur_forward = f;
		return SEC_FORWARD;
	}
	if ((name = config_section_name(section, "path")) != NULL) {
		TAILQ_FOREACH(p, &c->paths, entry) {
			if (!strcmp(p->name, name)) {
				ps->cur_path = p;
				return SEC_PATH;
			}
		}
		p = xcalloc(1, sizeof *p);
		p->name = xstrdup(*name ? name : "default");
		p->line = ctx->line;
		p->index = c->npaths++;
		TAILQ_INSERT_TAIL(&c->paths, p, entry);
		ps->cur_path = p;
		return SEC_PATH;
	}
	config_error(ctx, "unknown section [%s] (expected [agent], [relay], "
	    "[forward NAME] or [path NAME])", section);
	return SEC_BAD;
}

/* [agent] keys. */
static int
config_agent_key(struct config_ctx *ctx, struct config_parse *ps,
    const char *k, const char *v)
{
	struct agent_config *c = ps->c;
	const char *why = NULL;

	if (!strcmp(k, "identity")) {
		if (*v != '/')
			return config_error(ctx, "identity: must be an "
			    "absolute path");
		config_set(&c->identity, v);
		ps->identity_line = ctx->line;
	} else if (!strcmp(k, "user")) {
		if (*v == '\0' || strpbrk(v, " \t\"@:/") != NULL)
			return config_error(ctx, "user: bad login name '%s'",
			    v);
		config_set(&c->user, v);
	} else if (!strcmp(k, "keepalive_interval")) {
		if (parse_seconds(v, 1, 3600, &c->ka_interval, &why) == -1)
			return config_error(ctx, "keepalive_interval: %s "
			    "(1-3600 seconds)", why);
	} else if (!strcmp(k, "keepalive_count_max")) {
		if (parse_uint(v, 1, 100, &c->ka_count, &why) == -1)
			return config_error(ctx, "keepalive_count_max: %s "
			    "(1-100)", why);
	} else if (!strcmp(k, "backoff_initial")) {
		if (parse_seconds(v, 1, 3600, &c->backoff_initial, &why) == -1)
			return config_error(ctx, "backoff_initial: %s "
			    "(1-3600 seconds)", why);
	} else if (!strcmp(k, "control_socket")) {
		if (*v != '/')
			return config_error(ctx, "control_socket: must be an "
			    "absolute path");
		config_set(&c->control_socket, v);
	} else if (!strcmp(k, "backoff_max")) {
		if (parse_seconds(v, 1, 86400, &c->backoff_max, &why) == -1)
			return config_error(ctx, "backoff_max: %s "
			    "(1-86400 seconds)", why);
	} else
		return config_error(ctx, "unknown key '%s' in [agent]", k);
	return 1;
}

/* [relay] keys. */
static int
config_relay_key(struct config_ctx *ctx, struct config_parse *ps,
    const char *k, const char *v)
{
	struct agent_config *c = ps->c;
	const char *why = NULL;

	if (!strcmp(k, "host")) {
		if (parse_host(v, &why) == -1)
			return config_error(ctx, "host: %s", why);
		config_set(&c->relay_host, v);
	} else if (!strcmp(k, "port")) {
		if (parse_port(v, &c->relay_port, &why) == -1)
			return config_error(ctx, "port: %s", why);
	} else if (!strcmp(k, "host_key")) {
		if (strncmp(v, "SHA256:", 7) != 0 || strlen(v) < 20 ||
		    strpbrk(v, " \t") != NULL)
			return config_error(ctx, "host_key: expected a "
			    "fingerprint as ssh-keygen -lf prints it "
			    "(SHA256:...)");
		config_set(&c->host_key, v);
	} else if (!strcmp(k, "known_hosts")) {
		if (*v != '/')
			return config_error(ctx, "known_hosts: must be an "
			    "absolute path");
		config_set(&c->known_hosts, v);
		ps->known_hosts_line = ctx->line;
	} else
		return config_error(ctx, "unknown key '%s' in [relay]", k);
	return 1;
}

/* [forward NAME] keys. */
static int
config_forward_key(struct config_ctx *ctx, struct config_parse *ps,
    const char *k, const char *v)
{
	struct forward *f = ps->cur_forward;
	const char *why = NULL;
	char *host;
	uint16_t port;

	if (!strcmp(k, "remote")) {
		if (parse_hostport(v, &host, &port, 1, &why) == -1)
			return config_error(ctx, "remote: %s (expected "
			    "[bind_address:]port)", why);
		free(f->remote_host);
		f->remote_host = host;
		f->remote_port = port;
	} else if (!strcmp(k, "local")) {
		if (parse_hostport(v, &host, &port, 0, &why) == -1)
			return config_error(ctx, "local: %s (expected "
			    "host:port)", why);
		if (parse_local(host, port, &f->local_ss, &f->local_len,
		    &why) == -1) {
			free(host);
			return config_error(ctx, "local: %s", why);
		}
		free(f->local_host);
		f->local_host = host;
		f->local_port = port;
	} else
		return config_error(ctx, "unknown key '%s' in [forward %s]",
		    k, f->name);
	return 1;
}

/* [path NAME] keys. */
static int
config_path_key(struct config_ctx *ctx, struct config_parse *ps,
    const char *k, const char *v)
{
	struct path *p = ps->cur_path;
	const char *why = NULL;

	if (!strcmp(k, "interface")) {
		if (*v == '\0' || strlen(v) >= IFNAMSIZ ||
		    strpbrk(v, " \t/") != NULL)
			return config_error(ctx, "interface: bad interface "
			    "name '%s'", v);
		config_set(&p->interface, v);
	} else if (!strcmp(k, "source")) {
		if (parse_source(v, &why) == -1)
			return config_error(ctx, "source: %s", why);
		config_set(&p->source, v);
	} else if (!strcmp(k, "host")) {
		if (parse_host(v, &why) == -1)
			return config_error(ctx, "host: %s", why);
		config_set(&p->host, v);
	} else if (!strcmp(k, "port")) {
		if (parse_port(v, &p->port, &why) == -1)
			return config_error(ctx, "port: %s", why);
	} else
		return config_error(ctx, "unknown key '%s' in [path %s]", k,
		    p->name);
	return 1;
}

/* inih handler: open a section on its first key, then dispatch. */
static int
config_handler_fn(struct config_ctx *ctx, void *arg, const char *section,
    const char *name, const char *value)
{
	struct config_parse *ps = arg;

	if (name == NULL) {
		/* a header: [forward x] and [path x] exist even when empty */
		config_set(&ps->cur_section, section);
		ps->section = config_section(ctx, ps, section);
		return ps->section != SEC_BAD;
	}
	if (*section == '\0')
		return config_error(ctx, "key '%s' outside of a section", name);
	if (ps->cur_section == NULL || strcmp(ps->cur_section, section) != 0) {
		config_set(&ps->cur_section, section);
		ps->section = config_section(ctx, ps, section);
	}
	switch (ps->section) {
	case SEC_AGENT:
		return config_agent_key(ctx, ps, name, value);
	case SEC_RELAY:
		return config_relay_key(ctx, ps, name, value);
	case SEC_FORWARD:
		return config_forward_key(ctx, ps, name, value);
	case SEC_PATH:
		return config_path_key(ctx, ps, name, value);
	default:
		return 0;
	}
}

/* "file:line" for a key that was set, "file" for a default. */
static const char *
config_where(struct agent_config *c, int line, char *buf, size_t len)
{
	if (line > 0)
		snprintf(buf, len, "%s:%d", c->file, line);
	else
		snprintf(buf, len, "%s", c->file);
	return buf;
}

/* Rules that span keys; also loads and checks the identity. */
static int
config_validate(struct config_parse *ps, char *err, size_t len)
{
	struct agent_config *c = ps->c;
	struct forward *f, *g;
	struct path *p;
	char kerr[512], w[512];

	if (c->relay_host == NULL) {
		snprintf(err, len, "%s: [relay] host is missing", c->file);
		return -1;
	}
	if (c->host_key == NULL && c->known_hosts == NULL) {
		snprintf(err, len, "%s: [relay] needs host_key (pinned "
		    "SHA256 fingerprint) or known_hosts; unknown host keys "
		    "are never trusted", c->file);
		return -1;
	}
	if (c->host_key != NULL && c->known_hosts != NULL) {
		snprintf(err, len, "%s: [relay] has both host_key and "
		    "known_hosts; use one", c->file);
		return -1;
	}
	if (c->known_hosts != NULL && access(c->known_hosts, R_OK) == -1) {
		snprintf(err, len, "%s: known_hosts %s: %s",
		    config_where(c, ps->known_hosts_line, w, sizeof w),
		    c->known_hosts, strerror(errno));
		return -1;
	}
	if (c->backoff_initial > c->backoff_max) {
		snprintf(err, len, "%s: backoff_initial (%lu) is larger than "
		    "backoff_max (%lu)", c->file, c->backoff_initial,
		    c->backoff_max);
		return -1;
	}
	if (TAILQ_EMPTY(&c->forwards)) {
		snprintf(err, len, "%s: no [forward NAME] section", c->file);
		return -1;
	}
	TAILQ_FOREACH(f, &c->forwards, entry) {
		if (f->remote_port == 0 || f->local_host == NULL) {
			snprintf(err, len, "%s:%d: [forward %s] needs remote "
			    "and local", c->file, f->line, f->name);
			return -1;
		}
		for (g = TAILQ_NEXT(f, entry); g; g = TAILQ_NEXT(g, entry)) {
			if (g->remote_port == f->remote_port) {
				snprintf(err, len, "%s:%d: [forward %s] remote "
				    "port %u already used by [forward %s]",
				    c->file, g->line, g->name, g->remote_port,
				    f->name);
				return -1;
			}
		}
	}
	TAILQ_FOREACH(p, &c->paths, entry) {
		if (p->interface == NULL && p->source == NULL &&
		    p->host == NULL) {
			snprintf(err, len, "%s:%d: [path %s] needs interface, "
			    "source or host", c->file, p->line, p->name);
			return -1;
		}
	}
	if (key_file_private_ok(c->identity, kerr, sizeof kerr) == -1) {
		snprintf(err, len, "%s: identity %s",
		    config_where(c, ps->identity_line, w, sizeof w), kerr);
		return -1;
	}
	if (ssh_pki_import_privkey_file(c->identity, NULL, NULL, NULL,
	    &c->key) != SSH_OK) {
		snprintf(err, len, "%s: identity %s: cannot read an OpenSSH "
		    "private key (passphrase-protected keys are not "
		    "supported)", config_where(c, ps->identity_line, w,
		    sizeof w), c->identity);
		return -1;
	}
	if (ssh_key_type(c->key) != SSH_KEYTYPE_ED25519) {
		snprintf(err, len, "%s: identity %s: key type %s, "
		    "expected ssh-ed25519", config_where(c, ps->identity_line,
		    w, sizeof w),
		    c->identity,
		    ssh_key_type_to_char(ssh_key_type(c->key)));
		return -1;
	}
	return 0;
}

/* Parse and validate a file; NULL with err = "file:line: message". */
struct agent_config *
config_load(const char *file, char *err, size_t len)
{
	struct config_parse ps;
	int rc;

	memset(&ps, 0, sizeof ps);
	ps.c = config_new(file);
	rc = config_parse_file(file, config_handler_fn, &ps, err, len);
	if (rc != -1)
		rc = config_validate(&ps, err, len);
	free(ps.cur_section);
	if (rc == -1) {
		config_free(ps.c);
		return NULL;
	}
	return ps.c;
}

/* Parse agent.conf text without the checks that read files (fuzzing). */
struct agent_config *
config_parse_text(const char *name, const char *text, char *err, size_t len)
{
	struct config_parse ps;
	int rc;

	memset(&ps, 0, sizeof ps);
	ps.c = config_new(name);
	rc = config_parse_string(name, text, config_handler_fn, &ps, err, len);
	free(ps.cur_section);
	if (rc == -1) {
		config_free(ps.c);
		return NULL;
	}
	return ps.c;
}

/* Compare two optional strings. */
static int
config_str_eq(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return !strcmp(a, b);
}

/* Does a reload leave the session as it is (only timers changed)? */
int
config_same_session(struct agent_config *a, struct agent_config *b)
{
	struct forward *fa, *fb;
	struct path *pa, *pb;

	if (!config_str_eq(a->identity, b->identity) || !config_str_eq(a->user, b->user) ||
	    !config_str_eq(a->relay_host, b->relay_host) ||
	    a->relay_port != b->relay_port ||
	    !config_str_eq(a->host_key, b->host_key) ||
	    !config_str_eq(a->known_hosts, b->known_hosts) ||
	    ssh_key_cmp(a->key, b->key, SSH_KEY_CMP_PRIVATE) != 0)
		return 0;
	fb = TAILQ_FIRST(&b->forwards);
	TAILQ_FOREACH(fa, &a->forwards, entry) {
		if (fb == NULL || !config_str_eq(fa->remote_host, fb->remote_host) ||
		    fa->remote_port != fb->remote_port ||
		    !config_str_eq(fa->local_host, fb->local_host) ||
		    fa->local_port != fb->local_port)
			return 0;
		fb = TAILQ_NEXT(fb, entry);
	}
	if (fb != NULL)
		return 0;
	pb = TAILQ_FIRST(&b->paths);
	TAILQ_FOREACH(pa, &a->paths, entry) {
		if (pb == NULL || !config_str_eq(pa->name, pb->name) ||
		    !config_str_eq(pa->interface, pb->interface) ||
		    !config_str_eq(pa->source, pb->source) ||
		    !config_str_eq(pa->host, pb->host) || pa->port != pb->port)
			return 0;
		pb = TAILQ_NEXT(pb, entry);
	}
	return pb == NULL;
}

/*
 * Connect (and probe) deadline: long enough for a cellular attach, short
 * enough that a dead path is left within about interval x count.
 */
unsigned int
config_connect_timeout(struct agent_config *c)
{
	unsigned long t = c->ka_interval * c->ka_count;

	if (t < 5)
		t = 5;
	if (t > 20)
		t = 20;
	return (unsigned int)t;
}
