/* simtun-relay: entry point, signals, the event loop. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>
#include <systemd/sd-daemon.h>

#include "relay.h"

static struct relay relay;

/* Print usage and exit. */
static __dead void
usage(int code)
{
	fprintf(code ? stderr : stdout,
	    "usage: simtun-relay [-nfvhV] [-c relay.conf] [--fingerprint]\n"
	    "  -c FILE         configuration (default /etc/simtun/relay.conf)\n"
	    "  -n              check the configuration and exit\n"
	    "  -f              stay in the foreground (always the case)\n"
	    "  -v              more log (repeat for libssh debug)\n"
	    "  --fingerprint   print the host key fingerprint and exit\n"
	    "  -h, -V          help, version\n");
	exit(code);
}

/* SIGTERM/SIGINT: close every session politely, then leave the loop. */
static void
main_quit(evutil_socket_t sig, short what, void *arg)
{
	struct relay *r = arg;
	struct session *sess, *tmp;

	log_info("signal %d: shutting down", (int)sig);
	sd_notify(0, "STOPPING=1");
	r->quitting = 1;
	server_close(r);
	control_close(r->ctl);
	r->ctl = NULL;
	metrics_close(r);
	TAILQ_FOREACH_SAFE(sess, &r->sessions, entry, tmp)
		session_close(sess, "relay shutting down");
	if (r->cluster != NULL) {
		/* the directory hears of it before we go (bounded) */
		struct timeval tv = { 0, 300000 };

		cluster_leave(r);
		event_base_loopexit(r->base, &tv);
	} else
		event_base_loopexit(r->base, NULL);
}

/*
 * SIGHUP, first half: re-read relay.conf. What config.c's table marks
 * reloadable applies at once (timers from each session's next tick; a new
 * keepalive_interval re-arms them); the rest (addresses, the host key, the
 * sockets) needs a restart, which is said. A broken file changes nothing.
 */
static void
main_reload_config(struct relay *r)
{
	struct relay_config nc, *c = &r->conf;
	char err[600], restart[200];
	int n;

	if (config_load(&nc, c->path, err, sizeof err) == -1) {
		log_warnx("reload: %s; keeping the running configuration", err);
		config_clear(&nc);
		return;
	}
	if (nc.keepalive_interval != c->keepalive_interval) {
		struct timeval tv = { (time_t)nc.keepalive_interval, 0 };
		struct session *sess;

		TAILQ_FOREACH(sess, &r->sessions, entry)
			if (sess->state == SESSION_ACTIVE)
				evtimer_add(sess->ev_timer, &tv);
	}
	if ((n = config_reload(c, &nc, restart, sizeof restart)) > 0)
		log_warnx("reload: %s change%s only on restart", restart,
		    n == 1 ? "s" : "");
	server_limits(r);
	config_clear(&nc);
	server_throttle(r);
	log_info("reloaded %s", c->path);
}

/* SIGHUP: re-read relay.conf and authorized_keys. */
static void
main_reload(evutil_socket_t sig, short what, void *arg)
{
	sd_notify(0, "RELOADING=1");
	main_reload_config(arg);
	audit_open(arg);		/* reopened: logrotate moved it */
	session_reload_keys(arg);
	sd_notify(0, "READY=1");
}

/* Watchdog and status line for systemd. */
static void
main_tick(evutil_socket_t fd, short what, void *arg)
{
	struct relay *r = arg;
	struct session *sess;
	unsigned int n = 0;

	penalty_gc();
	state_tick(r);
	usage_tick(r);
	TAILQ_FOREACH(sess, &r->sessions, entry)
		if (sess->state == SESSION_ACTIVE && !sess->operator &&
		    !sess->peer_relay)
			n++;
	sd_notifyf(0, "WATCHDOG=1\nSTATUS=%u device%s connected, %u "
	    "unauthenticated", n, n == 1 ? "" : "s", r->nunauth);
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "fingerprint", no_argument, NULL, 'F' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 }
	};
	const char *conffile = "/etc/simtun/relay.conf";
	struct event *ev_term, *ev_int, *ev_hup, *ev_tick;
	struct timeval tick = { 5, 0 };
	struct session *sess;
	struct listener *l;
	int ch, check = 0, verbose = 0, fponly = 0, n;
	uint64_t wd_usec = 0;
	char err[600];

	while ((ch = getopt_long(argc, argv, "c:fnvhV", longopts, NULL)) !=
	    -1) {
		switch (ch) {
		case 'c': conffile = optarg; break;
		case 'f': break;
		case 'n': check = 1; break;
		case 'v': verbose++; break;
		case 'F': fponly = 1; break;
		case 'V': printf("simtun-relay %s\n", SIMTUN_VERSION); exit(0);
		case 'h': usage(0);
		default: usage(1);
		}
	}
	if (optind != argc)
		usage(1);
	log_init("simtun-relay", verbose);
	signal(SIGPIPE, SIG_IGN);

	memset(&relay, 0, sizeof relay);
	TAILQ_INIT(&relay.sessions);
	TAILQ_INIT(&relay.listeners);
	TAILQ_INIT(&relay.held);
	TAILQ_INIT(&relay.grants);
	TAILQ_INIT(&relay.keys);
	if (config_load(&relay.conf, conffile, err, sizeof err) == -1) {
		fprintf(stderr, "%s\n", err);
		exit(1);
	}
	ssh_init();
	if (sodium_init() == -1)
		fatalx("sodium_init");
	if (verbose > 1)
		ssh_set_log_level(SSH_LOG_PROTOCOL);
	if (check) {
		if ((n = authkeys_load(relay.conf.authorized_keys, &relay.keys,
		    err, sizeof err)) == -1) {
			fprintf(stderr, "%s\n", err);
			exit(1);
		}
		authkeys_free(&relay.keys);
		printf("configuration OK\n");
		exit(0);
	}
	if (fponly) {
		ssh_key key = NULL;
		char *line;

		if (ssh_pki_import_privkey_file(relay.conf.host_key, NULL,
		    NULL, NULL, &key) != SSH_OK) {
			fprintf(stderr, "%s: cannot read host key\n",
			    relay.conf.host_key);
			exit(1);
		}
		line = key_fingerprint_line(key, relay.conf.host_key);
		printf("%s\n", line);
		free(line);
		ssh_key_free(key);
		exit(0);
	}

	if ((relay.base = event_base_new()) == NULL)
		fatalx("event_base_new");
	if ((n = authkeys_load(relay.conf.authorized_keys, &relay.keys, err,
	    sizeof err)) == -1)
		fatalx("%s", err);
	authkey_index_build(&relay.keyidx, &relay.keys);
	relay.byport = xcalloc(65536, sizeof *relay.byport);
	log_info("%d device keys from %s", n, relay.conf.authorized_keys);
	if (server_load_hostkey(&relay, err, sizeof err) == -1)
		fatalx("%s", err);
	log_info("host key %s (%s)", relay.conf.host_key, relay.host_fp);
	server_limits(&relay);
	if (server_listen(&relay) == -1)
		exit(1);

	if (metrics_open(&relay) == -1)
		exit(1);
	relay.audit_fd = -1;
	if (audit_open(&relay) == -1)
		exit(1);
	if (state_open(&relay, err, sizeof err) == -1)
		fatalx("%s", err);
	if (cluster_start(&relay, err, sizeof err) == -1)
		fatalx("%s", err);
	relay.ctl = control_open(relay.base, relay.conf.control_socket,
	    relay_control, &relay);
	ev_term = evsignal_new(relay.base, SIGTERM, main_quit, &relay);
	ev_int = evsignal_new(relay.base, SIGINT, main_quit, &relay);
	ev_hup = evsignal_new(relay.base, SIGHUP, main_reload, &relay);
	ev_tick = event_new(relay.base, -1, EV_PERSIST, main_tick, &relay);
	evsignal_add(ev_term, NULL);
	evsignal_add(ev_int, NULL);
	evsignal_add(ev_hup, NULL);
	if (sd_watchdog_enabled(0, &wd_usec) > 0 && wd_usec / 2 <
	    (uint64_t)tick.tv_sec * 1000000) {
		tick.tv_sec = (time_t)(wd_usec / 2000000);
		tick.tv_usec = (suseconds_t)((wd_usec / 2) % 1000000);
	}
	event_add(ev_tick, &tick);
	sd_notify(0, "READY=1\nSTATUS=accepting devices");

	event_base_dispatch(relay.base);
	cluster_stop(&relay);

	/* Let deferred frees run, then free what is left. */
	event_base_loop(relay.base, EVLOOP_NONBLOCK);
	while ((sess = TAILQ_FIRST(&relay.sessions)) != NULL) {
		if (sess->state != SESSION_CLOSING)
			session_close(sess, "relay shutting down");
		session_free(sess);
	}
	while ((l = TAILQ_FIRST(&relay.listeners)) != NULL)
		listener_free(l);
	held_clear(&relay);
	usage_flush(&relay);
	state_close(&relay);
	grant_clear(&relay);
	usage_clear();
	devices_clear();
	audit_close(&relay);
	server_close(&relay);
	control_close(relay.ctl);
	metrics_close(&relay);
	event_free(ev_term);
	event_free(ev_int);
	event_free(ev_hup);
	event_free(ev_tick);
	authkeys_free(&relay.keys);
	authkey_index_free(&relay.keyidx);
	free(relay.byport);
	penalty_clear();
	ssh_bind_free(relay.bind);
	free(relay.host_fp);
	if (relay.host_priv != NULL)
		ssh_key_free(relay.host_priv);
	config_clear(&relay.conf);
	event_base_free(relay.base);
	ssh_finalize();
	log_info("stopped");
	return 0;
}
