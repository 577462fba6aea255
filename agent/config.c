/* agent.conf: [agent], [relay] or [relay NAME]..., [forward NAME], [path NAME]. */
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
	struct relay_conf *cur_relay;
	int		 identity_line;	/* 0 = default, not in the file */
	int		 unnamed_line;	/* first [relay] header, 0 = none */
	int		 named_line;	/* first [relay NAME] header, 0 = none */
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
	c->relays_active = 1;
	TAILQ_INIT(&c->forwards);
	TAILQ_INIT(&c->paths);
	TAILQ_INIT(&c->relays);
	return c;
}

/* Free everything the loader allocated. */
void
config_free(struct agent_config *c)
{
	struct forward *f;
	struct path *p;
	struct relay_conf *r;

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
	while ((r = TAILQ_FIRST(&c->relays)) != NULL) {
		TAILQ_REMOVE(&c->relays, r, entry);
		free(r->name);
		free(r->host);
		free(r->host_key);
		free(r->known_hosts);
		free(r);
	}
	if (c->key != NULL)
		ssh_key_free(c->key);
	free(c->file);
	free(c->identity);
	free(c->user);
	free(c->control_socket);
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

/*
 * A relay's name shows in logs, status and JSON: letters, digits, '.',
 * '-' and '_', at most 32 characters.
 */
static int
config_relay_name_ok(const char *name)
{
	size_t n = strlen(name);

	return n > 0 && n <= 32 && strspn(name, "abcdefghijklmnopqrstuvwxyz"
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_") == n;
}

/*
 * [relay] or [relay NAME] opens (or reopens) a relay. The unnamed one is
 * the only relay; mixing it with named ones would leave its place in the
 * order a guess, so that is refused.
 */
static int
config_relay_section(struct config_ctx *ctx, struct config_parse *ps,
    const char *name)
{
	struct agent_config *c = ps->c;
	struct relay_conf *r;
	int named = *name != '\0';

	if (named && !config_relay_name_ok(name)) {
		config_error(ctx, "[relay %s]: bad relay name (letters, digits, "
		    "'.', '-', '_', at most 32)", name);
		return SEC_BAD;
	}
	if (named && ps->unnamed_line) {
		config_error(ctx, "[relay %s] cannot be mixed with the unnamed "
		    "[relay] at line %d: name every relay", name,
		    ps->unnamed_line);
		return SEC_BAD;
	}
	if (!named && ps->named_line) {
		config_error(ctx, "[relay] cannot be mixed with [relay NAME] "
		    "sections (first at line %d): name every relay",
		    ps->named_line);
		return SEC_BAD;
	}
	if (named && !ps->named_line)
		ps->named_line = ctx->line;
	if (!named && !ps->unnamed_line)
		ps->unnamed_line = ctx->line;
	if (!named)
		name = "default";
	TAILQ_FOREACH(r, &c->relays, entry) {
		if (!strcmp(r->name, name)) {
			ps->cur_relay = r;
			return SEC_RELAY;
		}
	}
	r = xcalloc(1, sizeof *r);
	r->name = xstrdup(name);
	r->named = named;
	r->port = 2222;
	r->line = ctx->line;
	r->index = c->nrelays++;
	TAILQ_INSERT_TAIL(&c->relays, r, entry);
	ps->cur_relay = r;
	return SEC_RELAY;
}

/* A section header opens: set up [relay NAME] / [forward NAME] / [path NAME] entries. */
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
	ps->cur_relay = NULL;
	if (!strcmp(section, "agent"))
		return SEC_AGENT;
	if ((name = config_section_name(section, "relay")) != NULL)
		return config_relay_section(ctx, ps, name);
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
	config_error(ctx, "unknown section [%s] (expected [agent], [relay] or "
	    "[relay NAME], [forward NAME] or [path NAME])", section);
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
	} else if (!strcmp(k, "relays_active")) {
		if (parse_uint(v, 1, AGENT_MAX_ACTIVE, &c->relays_active,
		    &why) == -1)
			return config_error(ctx, "relays_active: %s (1-%d)",
			    why, AGENT_MAX_ACTIVE);
		c->relays_active_line = ctx->line;
	} else
		return config_error(ctx, "unknown key '%s' in [agent]", k);
	return 1;
}

/* [relay] and [relay NAME] keys. */
static int
config_relay_key(struct config_ctx *ctx, struct config_parse *ps,
    const char *k, const char *v)
{
	struct relay_conf *c = ps->cur_relay;
	const char *why = NULL;

	if (!strcmp(k, "host")) {
		if (parse_host(v, &why) == -1)
			return config_error(ctx, "host: %s", why);
		config_set(&c->host, v);
		c->host_line = ctx->line;
	} else if (!strcmp(k, "port")) {
		if (parse_port(v, &c->port, &why) == -1)
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
		c->known_hosts_line = ctx->line;
	} else if (c->named)
		return config_error(ctx, "unknown key '%s' in [relay %s]", k,
		    c->name);
	else
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
		p->host_line = ctx->line;
	} else if (!strcmp(k, "port")) {
		if (parse_port(v, &p->port, &why) == -1)
			return config_error(ctx, "port: %s", why);
		p->port_line = ctx->line;
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

/*
 * One relay's own rules. The unnamed [relay] keeps its old messages
 * ("file: [relay] ..."); a named one says where its section starts.
 */
static int
config_validate_relay(struct agent_config *c, struct relay_conf *r,
    char *err, size_t len)
{
	struct relay_conf *o;
	char w[512], sec[64];

	if (r->named) {
		snprintf(w, sizeof w, "%s:%d", c->file, r->line);
		snprintf(sec, sizeof sec, "[relay %s]", r->name);
	} else {
		snprintf(w, sizeof w, "%s", c->file);
		snprintf(sec, sizeof sec, "[relay]");
	}
	if (r->host == NULL) {
		snprintf(err, len, "%s: %s host is missing", w, sec);
		return -1;
	}
	if (r->host_key == NULL && r->known_hosts == NULL) {
		snprintf(err, len, "%s: %s needs host_key (pinned "
		    "SHA256 fingerprint) or known_hosts; unknown host keys "
		    "are never trusted", w, sec);
		return -1;
	}
	if (r->host_key != NULL && r->known_hosts != NULL) {
		snprintf(err, len, "%s: %s has both host_key and "
		    "known_hosts; use one", w, sec);
		return -1;
	}
	if (r->known_hosts != NULL && access(r->known_hosts, R_OK) == -1) {
		snprintf(err, len, "%s: known_hosts %s: %s",
		    config_where(c, r->known_hosts_line, w, sizeof w),
		    r->known_hosts, strerror(errno));
		return -1;
	}
	/* two sessions of one key to one relay would take each other over */
	TAILQ_FOREACH(o, &c->relays, entry) {
		if (o == r)
			break;
		if (!strcmp(o->host, r->host) && o->port == r->port) {
			snprintf(err, len, "%s:%d: host: [relay %s] and "
			    "[relay %s] are both %s port %u (one relay, two "
			    "sessions of one key)", c->file, r->host_line,
			    r->name, o->name, r->host, r->port);
			return -1;
		}
	}
	return 0;
}

/* Rules about several relays: relays_active, a [path]'s own relay address. */
static int
config_validate_relays(struct agent_config *c, char *err, size_t len)
{
	struct relay_conf *r;
	struct path *p;

	if (TAILQ_EMPTY(&c->relays)) {
		snprintf(err, len, "%s: [relay] host is missing", c->file);
		return -1;
	}
	TAILQ_FOREACH(r, &c->relays, entry)
		if (config_validate_relay(c, r, err, len) == -1)
			return -1;
	if (c->relays_active > (unsigned long)c->nrelays) {
		snprintf(err, len, "%s:%d: relays_active: %lu sessions at once "
		    "need at least %lu [relay NAME] sections (%d configured)",
		    c->file, c->relays_active_line, c->relays_active,
		    c->relays_active, c->nrelays);
		return -1;
	}
	if (c->nrelays < 2)
		return 0;
	TAILQ_FOREACH(p, &c->paths, entry) {
		if (p->host == NULL && p->port == 0)
			continue;
		snprintf(err, len, "%s:%d: %s: [path %s] cannot name the "
		    "relay's address with %d [relay NAME] sections (which "
		    "relay would it be?); give each relay's address in its "
		    "own section", c->file, p->host ? p->host_line :
		    p->port_line, p->host ? "host" : "port", p->name,
		    c->nrelays);
		return -1;
	}
	return 0;
}

/* Rules that span keys; also loads and checks the identity. */
static int
config_validate(struct config_parse *ps, char *err, size_t len)
{
	struct agent_config *c = ps->c;
	struct forward *f, *g;
	struct path *p;
	char kerr[512], w[512];

	if (config_validate_relays(c, err, len) == -1)
		return -1;
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

/* Does a reload leave the sessions as they are (only timers changed)? */
int
config_same_session(struct agent_config *a, struct agent_config *b)
{
	struct forward *fa, *fb;
	struct path *pa, *pb;
	struct relay_conf *ra, *rb;

	if (!config_str_eq(a->identity, b->identity) || !config_str_eq(a->user, b->user) ||
	    a->relays_active != b->relays_active ||
	    ssh_key_cmp(a->key, b->key, SSH_KEY_CMP_PRIVATE) != 0)
		return 0;
	rb = TAILQ_FIRST(&b->relays);
	TAILQ_FOREACH(ra, &a->relays, entry) {
		if (rb == NULL || !config_str_eq(ra->name, rb->name) ||
		    ra->named != rb->named ||
		    !config_str_eq(ra->host, rb->host) || ra->port != rb->port ||
		    !config_str_eq(ra->host_key, rb->host_key) ||
		    !config_str_eq(ra->known_hosts, rb->known_hosts))
			return 0;
		rb = TAILQ_NEXT(rb, entry);
	}
	if (rb != NULL)
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

/* The relay by index (0 = preferred), NULL past the last. */
struct relay_conf *
config_relay(struct agent_config *c, int idx)
{
	struct relay_conf *r;

	TAILQ_FOREACH(r, &c->relays, entry)
		if (r->index == idx)
			return r;
	return NULL;
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
