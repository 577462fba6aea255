/*
 * relay.conf: one table holds every key (name, kind, bounds, default, and
 * whether a reload applies it, like tmux's options-table.c). Defaults,
 * parsing and the reload copy all come from it: a new key is one line in
 * config_keys[] plus its field in struct relay_config (relay.h).
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <unistd.h>

#include "relay.h"

enum config_kind {
	CONF_NUMBER,		/* unsigned long in [min, max], "s" suffix ok */
	CONF_PATH,		/* non-empty string */
	CONF_ADDRESS,		/* a bind address (forward_address) */
	CONF_HOSTPORT,		/* one addr:port (metrics_listen) */
	CONF_LISTEN,		/* addr:port[, addr:port ...] */
	CONF_STARTUPS,		/* full, or start:rate:full */
	CONF_ADDRLIST,		/* from=-style list; repeated lines add up */
	CONF_RANGE,		/* lo-hi within [min, max] */
	CONF_HOSTPORTS,		/* addr:port[,addr:port ...], numeric */
	CONF_NAME,		/* [A-Za-z0-9._-], 1 to 63 of them */
};

enum config_apply {
	CONF_RELOAD,		/* SIGHUP applies it at once */
	CONF_RESTART,		/* only a restart applies it (the log says) */
};

struct config_key {
	const char	*name;
	enum config_kind kind;
	size_t		 off;		/* the field in struct relay_config */
	unsigned long	 min, max;	/* CONF_NUMBER */
	const char	*dflt;		/* parsed like a line; NULL = unset */
	enum config_apply apply;
	const char	*section;	/* NULL: [relay] */
};

#define F(f)	offsetof(struct relay_config, f)
static const struct config_key config_keys[] = {
	{ "listen", CONF_LISTEN, F(listen), 0, 0, "0.0.0.0:2222",
	    CONF_RESTART, NULL },
	{ "host_key", CONF_PATH, F(host_key), 0, 0,
	    "/var/lib/simtun/ssh_host_ed25519_key", CONF_RESTART, NULL },
	{ "authorized_keys", CONF_PATH, F(authorized_keys), 0, 0,
	    "/etc/simtun/authorized_keys", CONF_RELOAD, NULL },
	{ "forward_address", CONF_ADDRESS, F(forward_address), 0, 0,
	    "0.0.0.0", CONF_RESTART, NULL },
	{ "keepalive_interval", CONF_NUMBER, F(keepalive_interval), 1, 3600,
	    "15", CONF_RELOAD, NULL },
	{ "keepalive_count_max", CONF_NUMBER, F(keepalive_count_max), 1, 100,
	    "3", CONF_RELOAD, NULL },
	{ "max_startups", CONF_STARTUPS, F(max_startups), 1, 100000, "64",
	    CONF_RELOAD, NULL },
	{ "max_startups_per_source", CONF_NUMBER, F(max_startups_per_source),
	    0, 100000, "10", CONF_RELOAD, NULL },
	{ "penalty_failures", CONF_NUMBER, F(penalty_failures), 0, 1000, "10",
	    CONF_RELOAD, NULL },
	{ "penalty_time", CONF_NUMBER, F(penalty_time), 1, 3600, "30",
	    CONF_RELOAD, NULL },
	{ "penalty_exempt", CONF_ADDRLIST, F(penalty_exempt), 0, 0, NULL,
	    CONF_RELOAD, NULL },
	{ "login_grace_time", CONF_NUMBER, F(login_grace_time), 1, 600, "20",
	    CONF_RELOAD, NULL },
	{ "max_auth_tries", CONF_NUMBER, F(max_auth_tries), 1, 100, "6",
	    CONF_RELOAD, NULL },
	{ "max_forwards", CONF_NUMBER, F(max_forwards), 1, 1024, "16",
	    CONF_RELOAD, NULL },
	{ "max_conns_per_port", CONF_NUMBER, F(max_conns_per_port), 1, 100000,
	    "64", CONF_RELOAD, NULL },
	{ "max_conns_per_source", CONF_NUMBER, F(max_conns_per_source), 1,
	    100000, "16", CONF_RELOAD, NULL },
	{ "max_conns", CONF_NUMBER, F(max_conns), 1, 1000000, "4096",
	    CONF_RELOAD, NULL },
	{ "max_sessions_per_key", CONF_NUMBER, F(max_sessions_per_key), 1,
	    1000, "4", CONF_RELOAD, NULL },
	{ "channel_open_timeout", CONF_NUMBER, F(channel_open_timeout), 1, 600,
	    "30", CONF_RELOAD, NULL },
	{ "max_sessions_per_operator", CONF_NUMBER,
	    F(max_sessions_per_operator), 1, 1000, "16", CONF_RELOAD, NULL },
	{ "audit_log", CONF_PATH, F(audit_log), 0, 0, NULL, CONF_RELOAD, NULL },
	{ "hold_time", CONF_NUMBER, F(hold_time), 0, 3600, "60", CONF_RELOAD, NULL },
	{ "max_held", CONF_NUMBER, F(max_held), 0, 100000, "256",
	    CONF_RELOAD, NULL },
	{ "max_held_per_device", CONF_NUMBER, F(max_held_per_device), 0,
	    100000, "16", CONF_RELOAD, NULL },
	{ "control_socket", CONF_PATH, F(control_socket), 0, 0,
	    "/run/simtun/relay.sock", CONF_RESTART, NULL },
	{ "metrics_listen", CONF_HOSTPORT, F(metrics_listen), 0, 0, NULL,
	    CONF_RESTART, NULL },
	{ "state_db", CONF_PATH, F(state_db), 0, 0,
	    "/var/lib/simtun/state.db", CONF_RESTART, NULL },
	{ "max_grant_time", CONF_NUMBER, F(max_grant_time), 1, 366 * 86400,
	    "8h", CONF_RELOAD, NULL },
	{ "max_grants", CONF_NUMBER, F(max_grants), 1, 100000, "1024",
	    CONF_RELOAD, NULL },
	{ "expose_ports", CONF_RANGE, F(expose_ports), 1, 65535,
	    "20000-20999", CONF_RELOAD, NULL },
	{ "redis", CONF_HOSTPORT, F(cluster_redis), 0, 0, NULL, CONF_RESTART,
	    "cluster" },
	{ "sentinel", CONF_HOSTPORTS, F(cluster_sentinel), 0, 0, NULL,
	    CONF_RESTART, "cluster" },
	{ "sentinel_master", CONF_NAME, F(cluster_master), 0, 0, NULL,
	    CONF_RESTART, "cluster" },
	{ "relay_id", CONF_NAME, F(cluster_relay_id), 0, 0, NULL, CONF_RESTART,
	    "cluster" },
	{ "peer_address", CONF_HOSTPORT, F(cluster_peer_address), 0, 0, NULL,
	    CONF_RESTART, "cluster" },
	{ "lease_time", CONF_NUMBER, F(cluster_lease_time), 3, 3600, "10",
	    CONF_RESTART, "cluster" },
};
#undef F
#define NKEYS	(sizeof config_keys / sizeof config_keys[0])

/* The field a key describes. */
#define FIELD(c, k, type)	((type *)(void *)((char *)(c) + (k)->off))

/* Free a listen list. */
static void
config_free_listen(struct relay_config *c)
{
	size_t i;

	for (i = 0; i < c->nlisten; i++)
		free(c->listen[i].host);
	free(c->listen);
	c->listen = NULL;
	c->nlisten = 0;
}

/* listen = addr:port[, addr:port ...]; a later line replaces an earlier. */
static int
config_listen(struct config_ctx *ctx, struct relay_config *c, const char *v)
{
	char *copy, *tok, *save = NULL, *host;
	struct sockaddr_storage ss;
	socklen_t sslen;
	const char *why;
	uint16_t port;

	config_free_listen(c);
	copy = xstrdup(v);
	for (tok = strtok_r(copy, ",", &save); tok != NULL;
	    tok = strtok_r(NULL, ",", &save)) {
		while (*tok == ' ' || *tok == '\t')
			tok++;
		tok[strcspn(tok, " \t")] = '\0';
		if (parse_hostport(tok, &host, &port, 0, &why) == -1 ||
		    net_resolve_listen(host, port, &ss, &sslen, &why) == -1) {
			config_error(ctx, "listen: \"%s\": %s", tok, why);
			free(host);
			free(copy);
			return 0;
		}
		c->listen = xreallocarray(c->listen, c->nlisten + 1,
		    sizeof *c->listen);
		c->listen[c->nlisten].host = host;
		c->listen[c->nlisten].port = port;
		c->nlisten++;
	}
	free(copy);
	if (c->nlisten == 0)
		return config_error(ctx, "listen: no address given");
	return 1;
}

/* Replace a string setting; empty values are refused. */
static int
config_string(struct config_ctx *ctx, char **dst, const char *name,
    const char *v)
{
	if (*v == '\0')
		return config_error(ctx, "%s: empty value", name);
	free(*dst);
	*dst = xstrdup(v);
	return 1;
}

/* A bounded number. */
static int
config_number(struct config_ctx *ctx, unsigned long *dst, const char *name,
    const char *v, unsigned long min, unsigned long max)
{
	const char *why;

	if (parse_seconds(v, min, max, dst, &why) == -1)
		return config_error(ctx, "%s: \"%s\": %s (%lu to %lu)", name, v,
		    why, min, max);
	return 1;
}

/* max_startups = full, or start:rate:full as in sshd_config(5). */
static int
config_startups(struct config_ctx *ctx, struct relay_config *c,
    const struct config_key *k, const char *v)
{
	unsigned long b, rate, full;
	char x;

	if (sscanf(v, "%lu:%lu:%lu%c", &b, &rate, &full, &x) == 3) {
		if (b < k->min || full > k->max || b > full || rate > 100)
			return config_error(ctx, "%s: \"%s\": need "
			    "%lu <= start <= full <= %lu and rate <= 100",
			    k->name, v, k->min, k->max);
	} else if (config_number(ctx, &full, k->name, v, k->min, k->max)) {
		b = full;
		rate = 100;
	} else
		return 0;
	c->max_startups = full;
	c->startups_begin = (unsigned int)b;
	c->startups_rate = (unsigned int)rate;
	c->startups_full = (unsigned int)full;
	return 1;
}

/*
 * A from=-style address list (CIDR, wildcards, '!'). Repeated keys add to
 * the list, so a long one can be spread over lines.
 */
static int
config_addrlist(struct config_ctx *ctx, char **dst, const char *name,
    const char *v)
{
	char why[200], *joined;

	if (addr_list_check(v, why, sizeof why) == -1)
		return config_error(ctx, "%s: %s", name, why);
	if (*dst == NULL || *v == '\0')
		return config_string(ctx, dst, name, v);
	xasprintf(&joined, "%s,%s", *dst, v);
	free(*dst);
	*dst = joined;
	return 1;
}

/* lo-hi (or one number), both within the key's bounds. */
static int
config_range(struct config_ctx *ctx, struct port_range *dst,
    const struct config_key *k, const char *v)
{
	unsigned long lo = 0, hi = 0;
	const char *why = "expected lo-hi", *dash = strchr(v, '-');
	char buf[32];

	if (dash == NULL)
		snprintf(buf, sizeof buf, "%s", v);
	else
		snprintf(buf, sizeof buf, "%.*s", (int)(dash - v), v);
	if (strlen(v) >= sizeof buf ||
	    parse_uint(buf, k->min, k->max, &lo, &why) == -1 ||
	    parse_uint(dash ? dash + 1 : buf, k->min, k->max, &hi, &why) ==
	    -1 || (hi < lo && (why = "lo above hi") != NULL))
		return config_error(ctx, "%s: \"%s\": %s (lo-hi, %lu to %lu)",
		    k->name, v, why, k->min, k->max);
	dst->lo = lo;
	dst->hi = hi;
	return 1;
}

/* addr:port[, addr:port ...] (sentinel): numeric, stored without blanks. */
static int
config_hostports(struct config_ctx *ctx, char **dst, const char *name,
    const char *v)
{
	struct sockaddr_storage ss;
	socklen_t sslen;
	char *copy, *tok, *save = NULL, *h, *out;
	const char *why;
	uint16_t port;
	size_t off = 0;

	copy = xstrdup(v);
	out = xcalloc(1, strlen(v) + 1);
	for (tok = strtok_r(copy, ",", &save); tok != NULL;
	    tok = strtok_r(NULL, ",", &save)) {
		while (*tok == ' ' || *tok == '\t')
			tok++;
		tok[strcspn(tok, " \t")] = '\0';
		h = NULL;
		if (parse_hostport(tok, &h, &port, 0, &why) == -1 ||
		    net_resolve_listen(h, port, &ss, &sslen, &why) == -1) {
			config_error(ctx, "%s: \"%s\": %s", name, tok, why);
			free(h);
			free(copy);
			free(out);
			return 0;
		}
		free(h);
		off += (size_t)sprintf(out + off, "%s%s", off ? "," : "", tok);
	}
	free(copy);
	if (off == 0) {
		free(out);
		return config_error(ctx, "%s: expected addr:port[,addr:port"
		    "...]", name);
	}
	free(*dst);
	*dst = out;
	return 1;
}

/* One "name = value" line for key k: check it and store it. */
static int
config_set(struct config_ctx *ctx, struct relay_config *c,
    const struct config_key *k, const char *v)
{
	struct sockaddr_storage ss;
	socklen_t sslen;
	const char *why;
	uint16_t port;
	char *h;

	switch (k->kind) {
	case CONF_NUMBER:
		return config_number(ctx, FIELD(c, k, unsigned long), k->name,
		    v, k->min, k->max);
	case CONF_PATH:
		return config_string(ctx, FIELD(c, k, char *), k->name, v);
	case CONF_ADDRESS:
		if (net_resolve_listen(v, 1, &ss, &sslen, &why) == -1)
			return config_error(ctx, "%s: \"%s\": %s", k->name, v,
			    why);
		return config_string(ctx, FIELD(c, k, char *), k->name, v);
	case CONF_HOSTPORT:
		if (parse_hostport(v, &h, &port, 0, &why) == -1 ||
		    net_resolve_listen(h, port, &ss, &sslen, &why) == -1) {
			free(h);
			return config_error(ctx, "%s: \"%s\": %s", k->name, v,
			    why);
		}
		free(h);
		return config_string(ctx, FIELD(c, k, char *), k->name, v);
	case CONF_LISTEN:
		return config_listen(ctx, c, v);
	case CONF_STARTUPS:
		return config_startups(ctx, c, k, v);
	case CONF_ADDRLIST:
		return config_addrlist(ctx, FIELD(c, k, char *), k->name, v);
	case CONF_RANGE:
		return config_range(ctx, FIELD(c, k, struct port_range), k, v);
	case CONF_HOSTPORTS:
		return config_hostports(ctx, FIELD(c, k, char *), k->name, v);
	case CONF_NAME:
		if (*v == '\0' || strlen(v) > 63 || v[strspn(v,
		    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
		    "0123456789._-")] != '\0')
			return config_error(ctx, "%s: \"%s\": 1 to 63 letters, "
			    "digits, '.', '_' or '-'", k->name, v);
		return config_string(ctx, FIELD(c, k, char *), k->name, v);
	}
	return config_error(ctx, "%s: unknown kind", k->name);
}

/* Does key k hold different values in a and b? */
static int
config_differs(const struct config_key *k, const struct relay_config *a,
    const struct relay_config *b)
{
	const char *sa, *sb;
	size_t i;

	switch (k->kind) {
	case CONF_NUMBER:
		return *FIELD(a, k, const unsigned long) !=
		    *FIELD(b, k, const unsigned long);
	case CONF_PATH:
	case CONF_ADDRESS:
	case CONF_HOSTPORT:
	case CONF_ADDRLIST:
	case CONF_HOSTPORTS:
	case CONF_NAME:
		sa = *FIELD(a, k, char *const);
		sb = *FIELD(b, k, char *const);
		if (sa == NULL || sb == NULL)
			return sa != sb;
		return strcmp(sa, sb) != 0;
	case CONF_LISTEN:
		if (a->nlisten != b->nlisten)
			return 1;
		for (i = 0; i < a->nlisten; i++)
			if (a->listen[i].port != b->listen[i].port ||
			    strcmp(a->listen[i].host, b->listen[i].host) != 0)
				return 1;
		return 0;
	case CONF_STARTUPS:
		return a->startups_begin != b->startups_begin ||
		    a->startups_rate != b->startups_rate ||
		    a->startups_full != b->startups_full;
	case CONF_RANGE:
		return memcmp(FIELD(a, k, const struct port_range),
		    FIELD(b, k, const struct port_range),
		    sizeof (struct port_range)) != 0;
	}
	return 1;
}

/* Move key k's value from src to dst (src keeps nothing to free twice). */
static void
config_move(const struct config_key *k, struct relay_config *dst,
    struct relay_config *src)
{
	char **sd, **ss;

	switch (k->kind) {
	case CONF_NUMBER:
		*FIELD(dst, k, unsigned long) = *FIELD(src, k, unsigned long);
		break;
	case CONF_PATH:
	case CONF_ADDRESS:
	case CONF_HOSTPORT:
	case CONF_ADDRLIST:
	case CONF_HOSTPORTS:
	case CONF_NAME:
		sd = FIELD(dst, k, char *);
		ss = FIELD(src, k, char *);
		free(*sd);
		*sd = *ss;
		*ss = NULL;
		break;
	case CONF_LISTEN:
		config_free_listen(dst);
		dst->listen = src->listen;
		dst->nlisten = src->nlisten;
		src->listen = NULL;
		src->nlisten = 0;
		break;
	case CONF_STARTUPS:
		dst->max_startups = src->max_startups;
		dst->startups_begin = src->startups_begin;
		dst->startups_rate = src->startups_rate;
		dst->startups_full = src->startups_full;
		break;
	case CONF_RANGE:
		*FIELD(dst, k, struct port_range) =
		    *FIELD(src, k, struct port_range);
		break;
	}
}

/* Every key's default, from the table (a bad default is a bug: fatal). */
void
config_defaults(struct relay_config *c)
{
	struct config_ctx ctx;
	size_t i;

	memset(c, 0, sizeof *c);
	memset(&ctx, 0, sizeof ctx);
	ctx.file = "default";
	for (i = 0; i < NKEYS; i++) {
		if (config_keys[i].dflt == NULL)
			continue;
		if (!config_set(&ctx, c, &config_keys[i], config_keys[i].dflt))
			fatalx("relay.conf default %s", ctx.err);
	}
}

/* Free everything the config owns. */
void
config_clear(struct relay_config *c)
{
	size_t i;

	for (i = 0; i < NKEYS; i++) {
		switch (config_keys[i].kind) {
		case CONF_PATH:
		case CONF_ADDRESS:
		case CONF_HOSTPORT:
		case CONF_ADDRLIST:
		case CONF_HOSTPORTS:
		case CONF_NAME:
			free(*FIELD(c, &config_keys[i], char *));
			break;
		case CONF_LISTEN:
			config_free_listen(c);
			break;
		case CONF_NUMBER:
		case CONF_STARTUPS:
		case CONF_RANGE:
			break;
		}
	}
	free(c->path);
	memset(c, 0, sizeof *c);
}

/*
 * A reload: the keys a reload applies move from nc into c; the names of
 * the others that changed go to restart ("a, b and c", "" if none) and
 * their number is returned. nc is left for config_clear.
 */
int
config_reload(struct relay_config *c, struct relay_config *nc, char *restart,
    size_t len)
{
	const struct config_key *k, *pending = NULL;
	size_t i, off = 0;
	int n = 0;

	if (len > 0)
		restart[0] = '\0';
	for (i = 0; i < NKEYS; i++) {
		k = &config_keys[i];
		if (k->apply == CONF_RELOAD) {
			config_move(k, c, nc);
			continue;
		}
		if (!config_differs(k, c, nc))
			continue;
		/* "a", "a and b", "a, b and c": a name waits for the next */
		if (pending != NULL && off < len)
			off += (size_t)snprintf(restart + off, len - off,
			    "%s%s", n > 1 ? ", " : "", pending->name);
		pending = k;
		n++;
	}
	if (pending != NULL && off < len)
		snprintf(restart + off, len - off, "%s%s", n > 1 ? " and " : "",
		    pending->name);
	return n;
}

/* inih handler for relay.conf: the key's table entry does the rest. */
static int
config_handler_relay(struct config_ctx *ctx, void *arg, const char *section,
    const char *name, const char *v)
{
	size_t i;

	struct relay_config *c = arg;
	const char *ksec;

	if (*section == '\0')
		return config_error(ctx, "key \"%s\" outside of a section "
		    "(relay.conf starts with [relay])", name);
	if (strcmp(section, "relay") != 0 && strcmp(section, "cluster") != 0)
		return config_error(ctx, "unknown section [%s] (relay.conf "
		    "has [relay] and [cluster])", section);
	if (name == NULL) {		/* a section header */
		if (strcmp(section, "cluster") == 0)
			c->cluster = 1;
		return 1;
	}
	for (i = 0; i < NKEYS; i++) {
		ksec = config_keys[i].section ? config_keys[i].section :
		    "relay";
		if (!strcmp(name, config_keys[i].name) &&
		    !strcmp(section, ksec))
			return config_set(ctx, arg, &config_keys[i], v);
	}
	return config_error(ctx, "unknown key \"%s\" in [%s]", name,
	    section);
}

/* What no single line can say: [cluster] keys that go together. */
static int
config_check(struct relay_config *c, int rc, char *err, size_t len)
{
	char host[64];

	if (rc == -1 || !c->cluster)
		return rc;
	if (c->cluster_redis == NULL && c->cluster_sentinel == NULL) {
		snprintf(err, len, "%s: [cluster] needs redis = ADDR:PORT or "
		    "sentinel = ADDR:PORT,...", c->path);
		return -1;
	}
	if (c->cluster_redis != NULL && c->cluster_sentinel != NULL) {
		snprintf(err, len, "%s: [cluster] has both redis and sentinel "
		    "(one of them)", c->path);
		return -1;
	}
	if (c->cluster_sentinel != NULL && c->cluster_master == NULL) {
		snprintf(err, len, "%s: [cluster] sentinel needs "
		    "sentinel_master = NAME", c->path);
		return -1;
	}
	if (c->cluster_peer_address == NULL) {
		snprintf(err, len, "%s: [cluster] needs peer_address = "
		    "ADDR:PORT (where the other relays reach this one)",
		    c->path);
		return -1;
	}
	if (c->cluster_relay_id == NULL) {
		if (gethostname(host, sizeof host) == -1)
			snprintf(host, sizeof host, "relay");
		host[sizeof host - 1] = '\0';
		host[strspn(host, "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
		    "abcdefghijklmnopqrstuvwxyz0123456789._-")] = '\0';
		c->cluster_relay_id = xstrdup(*host ? host : "relay");
	}
	return rc;
}

/* Load and validate; err gets "file:line: message" on failure. */
int
config_load(struct relay_config *c, const char *path, char *err, size_t len)
{
	config_defaults(c);
	c->path = xstrdup(path);
	return config_check(c, config_parse_file(path, config_handler_relay, c,
	    err, len), err, len);
}

/* Same from text in memory (fuzzing, tests); name stands for the file. */
int
config_load_string(struct relay_config *c, const char *name, const char *text,
    char *err, size_t len)
{
	config_defaults(c);
	c->path = xstrdup(name);
	return config_check(c, config_parse_string(name, text,
	    config_handler_relay, c, err, len), err, len);
}
