/*
 * Unit tests for relay/config.c: every relay.conf key's default, bounds and
 * error message, the kinds with their own syntax, and what a reload applies.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../relay/relay.h"
#include "unit.h"

/* Parse TEXT as relay.conf; 0 or -1, the message in err. */
static int
load(struct relay_config *c, const char *text, char *err, size_t len)
{
	err[0] = '\0';
	return config_load_string(c, "relay.conf", text, err, len);
}

/* Every key's default, from a file with only the section header. */
static void
test_defaults(void)
{
	struct relay_config c;
	char err[600];

	CHECK_INT(load(&c, "[relay]\n", err, sizeof err), 0);
	CHECK_INT(c.nlisten, 1);
	CHECK_STR(c.listen[0].host, "0.0.0.0");
	CHECK_INT(c.listen[0].port, 2222);
	CHECK_STR(c.path, "relay.conf");
	CHECK_STR(c.host_key, "/var/lib/simtun/ssh_host_ed25519_key");
	CHECK_STR(c.authorized_keys, "/etc/simtun/authorized_keys");
	CHECK_STR(c.forward_address, "0.0.0.0");
	CHECK_STR(c.control_socket, "/run/simtun/relay.sock");
	CHECK_STR(c.penalty_exempt, NULL);
	CHECK_STR(c.metrics_listen, NULL);
	CHECK_INT(c.keepalive_interval, 15);
	CHECK_INT(c.keepalive_count_max, 3);
	CHECK_INT(c.max_startups, 64);
	CHECK_INT(c.startups_begin, 64);
	CHECK_INT(c.startups_rate, 100);
	CHECK_INT(c.startups_full, 64);
	CHECK_INT(c.max_startups_per_source, 10);
	CHECK_INT(c.penalty_failures, 10);
	CHECK_INT(c.penalty_time, 30);
	CHECK_INT(c.login_grace_time, 20);
	CHECK_INT(c.max_auth_tries, 6);
	CHECK_INT(c.max_forwards, 16);
	CHECK_INT(c.max_conns_per_port, 64);
	CHECK_INT(c.max_conns_per_source, 16);
	CHECK_INT(c.max_conns, 4096);
	CHECK_INT(c.max_sessions_per_key, 4);
	CHECK_INT(c.channel_open_timeout, 30);
	CHECK_STR(c.state_db, "/var/lib/simtun/state.db");
	CHECK_INT(c.max_grant_time, 8 * 3600);
	CHECK_INT(c.max_grants, 1024);
	CHECK_INT(c.expose_ports.lo, 20000);
	CHECK_INT(c.expose_ports.hi, 20999);
	config_clear(&c);
}

/* expose_ports = lo-hi: bounds, order, a single port; errors name it. */
static void
test_expose_ports(void)
{
	struct relay_config c;
	char err[600];

	CHECK_INT(load(&c, "[relay]\nexpose_ports = 30000-30010\n", err,
	    sizeof err), 0);
	CHECK_INT(c.expose_ports.lo, 30000);
	CHECK_INT(c.expose_ports.hi, 30010);
	config_clear(&c);
	CHECK_INT(load(&c, "[relay]\nexpose_ports = 30000\n", err,
	    sizeof err), 0);
	CHECK_INT(c.expose_ports.lo, 30000);
	CHECK_INT(c.expose_ports.hi, 30000);
	config_clear(&c);
	CHECK_INT(load(&c, "[relay]\nexpose_ports = 30010-30000\n", err,
	    sizeof err), -1);
	CHECK_STR(err, "relay.conf:2: expose_ports: \"30010-30000\": lo above "
	    "hi (lo-hi, 1 to 65535)");
	config_clear(&c);
	CHECK_INT(load(&c, "[relay]\nexpose_ports = 0-10\n", err, sizeof err),
	    -1);
	config_clear(&c);
	CHECK_INT(load(&c, "[relay]\nexpose_ports = 1-70000\n", err,
	    sizeof err), -1);
	config_clear(&c);
	CHECK_INT(load(&c, "[relay]\nexpose_ports = 1-\n", err, sizeof err),
	    -1);
	config_clear(&c);
	CHECK_INT(load(&c, "[relay]\nmax_grant_time = 2h\n", err,
	    sizeof err), 0);
	CHECK_INT(c.max_grant_time, 7200);
	config_clear(&c);
}

/* The numeric keys: name, where, bounds. */
static const struct {
	const char	*name;
	size_t		 off;
	unsigned long	 min, max;
} numbers[] = {
#define N(f, lo, hi) { #f, offsetof(struct relay_config, f), lo, hi }
	N(keepalive_interval, 1, 3600),
	N(keepalive_count_max, 1, 100),
	N(max_startups_per_source, 0, 100000),
	N(penalty_failures, 0, 1000),
	N(penalty_time, 1, 3600),
	N(login_grace_time, 1, 600),
	N(max_auth_tries, 1, 100),
	N(max_forwards, 1, 1024),
	N(max_conns_per_port, 1, 100000),
	N(max_conns_per_source, 1, 100000),
	N(max_conns, 1, 1000000),
	N(max_sessions_per_key, 1, 1000),
	N(channel_open_timeout, 1, 600),
#undef N
};

/* Both bounds accepted and stored; one past each refused with file:line. */
static void
test_numbers(void)
{
	struct relay_config c;
	char text[200], err[600], want[300];
	unsigned long v;
	size_t i;

	for (i = 0; i < sizeof numbers / sizeof numbers[0]; i++) {
		const char *n = numbers[i].name;

		snprintf(text, sizeof text, "[relay]\n%s = %lu\n", n,
		    numbers[i].min);
		CHECK_INT(load(&c, text, err, sizeof err), 0);
		memcpy(&v, (char *)&c + numbers[i].off, sizeof v);
		CHECK_INT(v, numbers[i].min);
		config_clear(&c);

		snprintf(text, sizeof text, "[relay]\n%s = %lus\n", n,
		    numbers[i].max);
		CHECK_INT(load(&c, text, err, sizeof err), 0);
		memcpy(&v, (char *)&c + numbers[i].off, sizeof v);
		CHECK_INT(v, numbers[i].max);
		config_clear(&c);

		snprintf(text, sizeof text, "[relay]\n\n%s = %lu\n", n,
		    numbers[i].max + 1);
		CHECK_INT(load(&c, text, err, sizeof err), -1);
		snprintf(want, sizeof want, "relay.conf:3: %s: \"%lu\": ", n,
		    numbers[i].max + 1);
		CHECK(strncmp(err, want, strlen(want)) == 0);
		snprintf(want, sizeof want, " (%lu to %lu)", numbers[i].min,
		    numbers[i].max);
		CHECK(strlen(err) > strlen(want) &&
		    !strcmp(err + strlen(err) - strlen(want), want));
		config_clear(&c);

		snprintf(text, sizeof text, "[relay]\n%s = many\n", n);
		CHECK_INT(load(&c, text, err, sizeof err), -1);
		snprintf(want, sizeof want, "relay.conf:2: %s: \"many\": ", n);
		CHECK(strncmp(err, want, strlen(want)) == 0);
		config_clear(&c);
	}
}

/* Paths: any non-empty value; empty is an error. */
static void
test_strings(void)
{
	static const char *keys[] = { "host_key", "authorized_keys",
	    "control_socket" };
	struct relay_config c;
	char text[200], err[600], want[200];
	size_t i;

	CHECK_INT(load(&c, "[relay]\nhost_key = /k\nauthorized_keys = /a\n"
	    "control_socket = /s\n", err, sizeof err), 0);
	CHECK_STR(c.host_key, "/k");
	CHECK_STR(c.authorized_keys, "/a");
	CHECK_STR(c.control_socket, "/s");
	config_clear(&c);
	for (i = 0; i < sizeof keys / sizeof keys[0]; i++) {
		snprintf(text, sizeof text, "[relay]\n%s =\n", keys[i]);
		CHECK_INT(load(&c, text, err, sizeof err), -1);
		snprintf(want, sizeof want, "relay.conf:2: %s: empty value",
		    keys[i]);
		CHECK_STR(err, want);
		config_clear(&c);
	}
}

/* listen, forward_address, metrics_listen, max_startups, penalty_exempt. */
static void
test_special(void)
{
	struct relay_config c;
	char err[600];

	CHECK_INT(load(&c, "[relay]\nlisten = 127.0.0.1:1, [::1]:2\n",
	    err, sizeof err), 0);
	CHECK_INT(c.nlisten, 2);
	CHECK_STR(c.listen[0].host, "127.0.0.1");
	CHECK_INT(c.listen[0].port, 1);
	CHECK_STR(c.listen[1].host, "::1");
	CHECK_INT(c.listen[1].port, 2);
	config_clear(&c);
	/* a second line replaces the first */
	CHECK_INT(load(&c, "[relay]\nlisten = 127.0.0.1:1\nlisten = "
	    "127.0.0.2:3\n", err, sizeof err), 0);
	CHECK_INT(c.nlisten, 1);
	CHECK_STR(c.listen[0].host, "127.0.0.2");
	config_clear(&c);
	CHECK_INT(load(&c, "[relay]\nlisten = 127.0.0.1\n", err, sizeof err),
	    -1);
	CHECK(strncmp(err, "relay.conf:2: listen: \"127.0.0.1\": ", 35) == 0);
	config_clear(&c);
	CHECK_INT(load(&c, "[relay]\nlisten = ,\n", err, sizeof err), -1);
	CHECK_STR(err, "relay.conf:2: listen: no address given");
	config_clear(&c);

	CHECK_INT(load(&c, "[relay]\nforward_address = 127.0.0.1\n", err,
	    sizeof err), 0);
	CHECK_STR(c.forward_address, "127.0.0.1");
	config_clear(&c);
	CHECK_INT(load(&c, "[relay]\nforward_address = 300.1.1.1\n", err,
	    sizeof err), -1);
	CHECK(strncmp(err, "relay.conf:2: forward_address: \"300.1.1.1\": ",
	    44) == 0);
	config_clear(&c);

	CHECK_INT(load(&c, "[relay]\nmetrics_listen = 127.0.0.1:9100\n", err,
	    sizeof err), 0);
	CHECK_STR(c.metrics_listen, "127.0.0.1:9100");
	config_clear(&c);
	CHECK_INT(load(&c, "[relay]\nmetrics_listen = 127.0.0.1\n", err,
	    sizeof err), -1);
	CHECK(strncmp(err, "relay.conf:2: metrics_listen: \"127.0.0.1\": ",
	    43) == 0);
	config_clear(&c);

	CHECK_INT(load(&c, "[relay]\nmax_startups = 10:30:60\n", err,
	    sizeof err), 0);
	CHECK_INT(c.max_startups, 60);
	CHECK_INT(c.startups_begin, 10);
	CHECK_INT(c.startups_rate, 30);
	CHECK_INT(c.startups_full, 60);
	config_clear(&c);
	CHECK_INT(load(&c, "[relay]\nmax_startups = 5\n", err, sizeof err), 0);
	CHECK_INT(c.max_startups, 5);
	CHECK_INT(c.startups_begin, 5);
	CHECK_INT(c.startups_rate, 100);
	CHECK_INT(c.startups_full, 5);
	config_clear(&c);
	CHECK_INT(load(&c, "[relay]\nmax_startups = 20:30:10\n", err,
	    sizeof err), -1);
	CHECK_STR(err, "relay.conf:2: max_startups: \"20:30:10\": need 1 <= "
	    "start <= full <= 100000 and rate <= 100");
	config_clear(&c);
	CHECK_INT(load(&c, "[relay]\nmax_startups = 0\n", err, sizeof err),
	    -1);
	CHECK(strncmp(err, "relay.conf:2: max_startups: \"0\": ", 33) == 0);
	config_clear(&c);

	/* repeated penalty_exempt lines add up */
	CHECK_INT(load(&c, "[relay]\npenalty_exempt = 10.0.0.0/8\n"
	    "penalty_exempt = 192.0.2.1\n", err, sizeof err), 0);
	CHECK_STR(c.penalty_exempt, "10.0.0.0/8,192.0.2.1");
	config_clear(&c);
	CHECK_INT(load(&c, "[relay]\npenalty_exempt = 10.0.0.0/99\n", err,
	    sizeof err), -1);
	CHECK(strncmp(err, "relay.conf:2: penalty_exempt: ", 30) == 0);
	config_clear(&c);
}

/* Sections and names: the messages a typo gets. */
static void
test_structure(void)
{
	struct relay_config c;
	char err[600];

	CHECK_INT(load(&c, "listen = 127.0.0.1:1\n", err, sizeof err), -1);
	CHECK_STR(err, "relay.conf:1: key \"listen\" outside of a section "
	    "(relay.conf starts with [relay])");
	config_clear(&c);
	CHECK_INT(load(&c, "[relay]\n[agent]\n", err, sizeof err), -1);
	CHECK_STR(err, "relay.conf:2: unknown section [agent] (relay.conf "
	    "has [relay] and [cluster])");
	config_clear(&c);
	CHECK_INT(load(&c, "[relay]\nlisten_port = 1\n", err, sizeof err), -1);
	CHECK_STR(err, "relay.conf:2: unknown key \"listen_port\" in [relay]");
	config_clear(&c);
}

/* [cluster]: its keys, what must go together, the relay_id default. */
static void
test_cluster(void)
{
	struct relay_config c;
	char err[600];

	CHECK_INT(load(&c, "[relay]\n", err, sizeof err), 0);
	CHECK_INT(c.cluster, 0);
	CHECK_INT(c.cluster_lease_time, 10);
	config_clear(&c);
	CHECK_INT(load(&c, "[relay]\n[cluster]\nredis = 10.0.0.5:6379\n"
	    "relay_id = fra-1\npeer_address = 10.0.0.1:2222\nlease_time = 6\n",
	    err, sizeof err), 0);
	CHECK_INT(c.cluster, 1);
	CHECK_STR(c.cluster_redis, "10.0.0.5:6379");
	CHECK_STR(c.cluster_relay_id, "fra-1");
	CHECK_STR(c.cluster_peer_address, "10.0.0.1:2222");
	CHECK_INT(c.cluster_lease_time, 6);
	config_clear(&c);
	CHECK_INT(load(&c, "[relay]\n[cluster]\nsentinel = 10.0.0.5:26379, "
	    "[::1]:26379\nsentinel_master = simtun\npeer_address = "
	    "10.0.0.1:2222\n", err, sizeof err), 0);
	CHECK_STR(c.cluster_sentinel, "10.0.0.5:26379,[::1]:26379");
	CHECK_STR(c.cluster_master, "simtun");
	CHECK(c.cluster_relay_id != NULL && *c.cluster_relay_id != '\0');
	config_clear(&c);
	CHECK_INT(load(&c, "[relay]\n[cluster]\npeer_address = 10.0.0.1:2\n",
	    err, sizeof err), -1);
	CHECK_STR(err, "relay.conf: [cluster] needs redis = ADDR:PORT or "
	    "sentinel = ADDR:PORT,...");
	config_clear(&c);
	CHECK_INT(load(&c, "[relay]\n[cluster]\nredis = 10.0.0.5:1\n"
	    "sentinel = 10.0.0.5:2\npeer_address = 10.0.0.1:2\n", err,
	    sizeof err), -1);
	CHECK_STR(err, "relay.conf: [cluster] has both redis and sentinel "
	    "(one of them)");
	config_clear(&c);
	CHECK_INT(load(&c, "[relay]\n[cluster]\nsentinel = 10.0.0.5:2\n"
	    "peer_address = 10.0.0.1:2\n", err, sizeof err), -1);
	CHECK_STR(err, "relay.conf: [cluster] sentinel needs sentinel_master "
	    "= NAME");
	config_clear(&c);
	CHECK_INT(load(&c, "[relay]\n[cluster]\nredis = 10.0.0.5:1\n", err,
	    sizeof err), -1);
	CHECK_STR(err, "relay.conf: [cluster] needs peer_address = ADDR:PORT "
	    "(where the other relays reach this one)");
	config_clear(&c);
	CHECK_INT(load(&c, "[relay]\n[cluster]\nredis = redis.example:1\n",
	    err, sizeof err), -1);
	CHECK(strncmp(err, "relay.conf:3: redis: \"redis.example:1\": ", 40)
	    == 0);
	config_clear(&c);
	CHECK_INT(load(&c, "[relay]\n[cluster]\nrelay_id = a b\n", err,
	    sizeof err), -1);
	CHECK_STR(err, "relay.conf:3: relay_id: \"a b\": 1 to 63 letters, "
	    "digits, '.', '_' or '-'");
	config_clear(&c);
	CHECK_INT(load(&c, "[relay]\n[cluster]\nlisten = 1.2.3.4:5\n", err,
	    sizeof err), -1);
	CHECK_STR(err, "relay.conf:3: unknown key \"listen\" in [cluster]");
	config_clear(&c);
	CHECK_INT(load(&c, "[relay]\n[cluster]\nredis = 10.0.0.5:1\n"
	    "peer_address = 10.0.0.1:2\nlease_time = 2\n", err, sizeof err),
	    -1);
	CHECK(strncmp(err, "relay.conf:5: lease_time", 24) == 0);
	config_clear(&c);
}

/*
 * A reload applies limits, timers, penalty_exempt and authorized_keys; the
 * listen addresses, host key, forward_address and the sockets stay, and
 * their names come back when they changed.
 */
static void
test_reload(void)
{
	struct relay_config c, nc;
	char err[600], restart[200];

	CHECK_INT(load(&c, "[relay]\nkeepalive_interval = 15\n", err,
	    sizeof err), 0);
	CHECK_INT(load(&nc, "[relay]\nkeepalive_interval = 2\n"
	    "keepalive_count_max = 7\nmax_startups = 3:50:9\n"
	    "max_startups_per_source = 0\npenalty_failures = 1\n"
	    "penalty_time = 2\nlogin_grace_time = 3\nmax_auth_tries = 4\n"
	    "max_forwards = 5\nmax_conns_per_port = 6\n"
	    "max_conns_per_source = 7\nmax_conns = 8\n"
	    "max_sessions_per_key = 9\nchannel_open_timeout = 10\n"
	    "penalty_exempt = 192.0.2.0/24\nauthorized_keys = /new/ak\n",
	    err, sizeof err), 0);
	CHECK_INT(config_reload(&c, &nc, restart, sizeof restart), 0);
	CHECK_STR(restart, "");
	config_clear(&nc);
	CHECK_INT(c.keepalive_interval, 2);
	CHECK_INT(c.keepalive_count_max, 7);
	CHECK_INT(c.max_startups, 9);
	CHECK_INT(c.startups_begin, 3);
	CHECK_INT(c.startups_rate, 50);
	CHECK_INT(c.startups_full, 9);
	CHECK_INT(c.max_startups_per_source, 0);
	CHECK_INT(c.penalty_failures, 1);
	CHECK_INT(c.penalty_time, 2);
	CHECK_INT(c.login_grace_time, 3);
	CHECK_INT(c.max_auth_tries, 4);
	CHECK_INT(c.max_forwards, 5);
	CHECK_INT(c.max_conns_per_port, 6);
	CHECK_INT(c.max_conns_per_source, 7);
	CHECK_INT(c.max_conns, 8);
	CHECK_INT(c.max_sessions_per_key, 9);
	CHECK_INT(c.channel_open_timeout, 10);
	CHECK_STR(c.penalty_exempt, "192.0.2.0/24");
	CHECK_STR(c.authorized_keys, "/new/ak");
	CHECK_STR(c.path, "relay.conf");

	/* one restart-only key */
	CHECK_INT(load(&nc, "[relay]\nhost_key = /other\n", err, sizeof err),
	    0);
	CHECK_INT(config_reload(&c, &nc, restart, sizeof restart), 1);
	CHECK_STR(restart, "host_key");
	CHECK_STR(c.host_key, "/var/lib/simtun/ssh_host_ed25519_key");
	/* and the reloadable ones went back to their defaults */
	CHECK_INT(c.keepalive_interval, 15);
	CHECK_STR(c.penalty_exempt, NULL);
	CHECK_STR(c.authorized_keys, "/etc/simtun/authorized_keys");
	config_clear(&nc);

	/* all of them, named in table order */
	CHECK_INT(load(&nc, "[relay]\nmetrics_listen = 127.0.0.1:9100\n"
	    "control_socket = /s\nforward_address = 127.0.0.1\n"
	    "host_key = /k\nlisten = 127.0.0.1:2222\n", err, sizeof err), 0);
	CHECK_INT(config_reload(&c, &nc, restart, sizeof restart), 5);
	CHECK_STR(restart, "listen, host_key, forward_address, control_socket "
	    "and metrics_listen");
	CHECK_STR(c.listen[0].host, "0.0.0.0");
	CHECK_STR(c.forward_address, "0.0.0.0");
	CHECK_STR(c.control_socket, "/run/simtun/relay.sock");
	CHECK_STR(c.metrics_listen, NULL);
	config_clear(&nc);

	/* two, and a listen list that differs only in its second address */
	config_clear(&c);
	CHECK_INT(load(&c, "[relay]\nlisten = 127.0.0.1:1, 127.0.0.1:2\n",
	    err, sizeof err), 0);
	CHECK_INT(load(&nc, "[relay]\nlisten = 127.0.0.1:1, 127.0.0.1:3\n"
	    "control_socket = /s\n", err, sizeof err), 0);
	CHECK_INT(config_reload(&c, &nc, restart, sizeof restart), 2);
	CHECK_STR(restart, "listen and control_socket");
	CHECK_INT(c.listen[1].port, 2);
	config_clear(&nc);
	config_clear(&c);
}

int
main(void)
{
	test_defaults();
	test_expose_ports();
	test_numbers();
	test_strings();
	test_special();
	test_structure();
	test_cluster();
	test_reload();
	return unit_done();
}
