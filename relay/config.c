/* relay.conf: defaults first, one parse helper per value kind. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>

#include "relay.h"

/* Safe defaults, as documented in DESIGN.md and relay.conf(5). */
void
config_defaults(struct relay_config *c)
{
	memset(c, 0, sizeof *c);
	c->host_key = xstrdup("/var/lib/simtun/ssh_host_ed25519_key");
	c->authorized_keys = xstrdup("/etc/simtun/authorized_keys");
	c->forward_address = xstrdup("0.0.0.0");
	c->keepalive_interval = 15;
	c->keepalive_count_max = 3;
	c->max_startups = 64;
	c->startups_begin = 64;
	c->startups_rate = 100;
	c->startups_full = 64;
	c->max_startups_per_source = 10;
	c->penalty_failures = 10;
	c->penalty_time = 30;
	c->login_grace_time = 20;
	c->max_auth_tries = 6;
	c->max_forwards = 16;
	c->max_conns_per_port = 64;
	c->max_conns_per_source = 16;
	c->max_conns = 4096;
	c->max_sessions_per_key = 4;
	c->channel_open_timeout = 30;
	c->control_socket = xstrdup("/run/simtun/relay.sock");
}

/* Free everything the config owns. */
void
config_clear(struct relay_config *c)
{
	size_t i;

	for (i = 0; i < c->nlisten; i++)
		free(c->listen[i].host);
	free(c->listen);
	free(c->path);
	free(c->host_key);
	free(c->authorized_keys);
	free(c->forward_address);
	free(c->control_socket);
	free(c->penalty_exempt);
	free(c->metrics_listen);
	memset(c, 0, sizeof *c);
}

/* listen = addr:port[, addr:port ...] */
static int
config_listen(struct config_ctx *ctx, struct relay_config *c, const char *v)
{
	char *copy, *tok, *save = NULL, *host;
	struct sockaddr_storage ss;
	socklen_t sslen;
	const char *why;
	uint16_t port;
	size_t i;

	for (i = 0; i < c->nlisten; i++)
		free(c->listen[i].host);
	free(c->listen);
	c->listen = NULL;
	c->nlisten = 0;
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
config_startups(struct config_ctx *ctx, struct relay_config *c, const char *v)
{
	unsigned long b, rate, full;
	char x;

	if (sscanf(v, "%lu:%lu:%lu%c", &b, &rate, &full, &x) == 3) {
		if (b < 1 || full > 100000 || b > full || rate > 100)
			return config_error(ctx, "max_startups: \"%s\": need "
			    "1 <= start <= full <= 100000 and rate <= 100", v);
	} else if (config_number(ctx, &full, "max_startups", v, 1, 100000)) {
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

/* inih handler for relay.conf. */
static int
config_handler_relay(struct config_ctx *ctx, void *arg, const char *section,
    const char *name, const char *v)
{
	struct relay_config *c = arg;
	struct sockaddr_storage ss;
	socklen_t sslen;
	const char *why;

	if (*section == '\0')
		return config_error(ctx, "key \"%s\" outside of a section "
		    "(relay.conf starts with [relay])", name);
	if (strcmp(section, "relay") != 0)
		return config_error(ctx, "unknown section [%s] (relay.conf "
		    "has only [relay])", section);
	if (name == NULL)
		return 1;		/* the [relay] header */
	if (!strcmp(name, "listen"))
		return config_listen(ctx, c, v);
	if (!strcmp(name, "host_key"))
		return config_string(ctx, &c->host_key, name, v);
	if (!strcmp(name, "authorized_keys"))
		return config_string(ctx, &c->authorized_keys, name, v);
	if (!strcmp(name, "control_socket"))
		return config_string(ctx, &c->control_socket, name, v);
	if (!strcmp(name, "forward_address")) {
		if (net_resolve_listen(v, 1, &ss, &sslen, &why) == -1)
			return config_error(ctx, "forward_address: \"%s\": %s",
			    v, why);
		return config_string(ctx, &c->forward_address, name, v);
	}
	if (!strcmp(name, "keepalive_interval"))
		return config_number(ctx, &c->keepalive_interval, name, v, 1,
		    3600);
	if (!strcmp(name, "keepalive_count_max"))
		return config_number(ctx, &c->keepalive_count_max, name, v, 1,
		    100);
	if (!strcmp(name, "max_startups"))
		return config_startups(ctx, c, v);
	if (!strcmp(name, "max_startups_per_source"))
		return config_number(ctx, &c->max_startups_per_source, name, v,
		    0, 100000);
	if (!strcmp(name, "penalty_failures"))
		return config_number(ctx, &c->penalty_failures, name, v, 0,
		    1000);
	if (!strcmp(name, "penalty_time"))
		return config_number(ctx, &c->penalty_time, name, v, 1, 3600);
	if (!strcmp(name, "metrics_listen")) {
		char *h;
		uint16_t port;

		if (parse_hostport(v, &h, &port, 0, &why) == -1 ||
		    net_resolve_listen(h, port, &ss, &sslen, &why) == -1) {
			free(h);
			return config_error(ctx, "metrics_listen: \"%s\": %s",
			    v, why);
		}
		free(h);
		return config_string(ctx, &c->metrics_listen, name, v);
	}
	if (!strcmp(name, "penalty_exempt"))
		return config_addrlist(ctx, &c->penalty_exempt, name, v);
	if (!strcmp(name, "login_grace_time"))
		return config_number(ctx, &c->login_grace_time, name, v, 1,
		    600);
	if (!strcmp(name, "max_auth_tries"))
		return config_number(ctx, &c->max_auth_tries, name, v, 1, 100);
	if (!strcmp(name, "max_forwards"))
		return config_number(ctx, &c->max_forwards, name, v, 1, 1024);
	if (!strcmp(name, "max_conns_per_port"))
		return config_number(ctx, &c->max_conns_per_port, name, v, 1,
		    100000);
	if (!strcmp(name, "max_conns_per_source"))
		return config_number(ctx, &c->max_conns_per_source, name, v, 1,
		    100000);
	if (!strcmp(name, "max_conns"))
		return config_number(ctx, &c->max_conns, name, v, 1, 1000000);
	if (!strcmp(name, "max_sessions_per_key"))
		return config_number(ctx, &c->max_sessions_per_key, name, v, 1,
		    1000);
	if (!strcmp(name, "channel_open_timeout"))
		return config_number(ctx, &c->channel_open_timeout, name, v, 1,
		    600);
	return config_error(ctx, "unknown key \"%s\" in [relay]", name);
}

/* After a successful parse: no listen line means the documented default. */
static int
config_finish(struct relay_config *c)
{
	if (c->nlisten == 0) {
		c->listen = xcalloc(1, sizeof *c->listen);
		c->listen[0].host = xstrdup("0.0.0.0");
		c->listen[0].port = 2222;
		c->nlisten = 1;
	}
	return 0;
}

/* Load and validate; err gets "file:line: message" on failure. */
int
config_load(struct relay_config *c, const char *path, char *err, size_t len)
{
	config_defaults(c);
	c->path = xstrdup(path);
	if (config_parse_file(path, config_handler_relay, c, err, len) == -1)
		return -1;
	return config_finish(c);
}

/* Same from text in memory (fuzzing, tests); name stands for the file. */
int
config_load_string(struct relay_config *c, const char *name, const char *text,
    char *err, size_t len)
{
	config_defaults(c);
	c->path = xstrdup(name);
	if (config_parse_string(name, text, config_handler_relay, c, err,
	    len) == -1)
		return -1;
	return config_finish(c);
}
