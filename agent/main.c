/* simtun-agent: keep a reverse forward to the relay open, whatever happens. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libssh/callbacks.h>
#include <sodium.h>
#include <systemd/sd-daemon.h>

#include "agent.h"

static const char *conf_file = "/etc/simtun/agent.conf";

/* Usage on -h or a bad option. */
static void
usage(FILE *f)
{
	fprintf(f, "usage: simtun-agent [-fhnvV] [-c agent.conf]\n"
	    "  -c FILE  configuration (default %s)\n"
	    "  -f       stay in the foreground (always)\n"
	    "  -n       check the configuration and exit\n"
	    "  -v       more log (repeat for libssh protocol traces)\n"
	    "  -V       print the version\n"
	    "  -h       this help\n", conf_file);
}

/*
 * libssh's own trace lines (-vvv) into our log, escaped: they quote what
 * the peer sent (banner, DISCONNECT text, request names).
 */
static void
main_ssh_log(int prio, const char *function, const char *buffer, void *arg)
{
	char line[2048];

	log_debug("libssh: %s", escape_str(line, sizeof line, buffer,
	    sizeof line / 4 - 8));
}

/* SIGTERM/SIGINT: disconnect properly, then leave the loop. */
static void
main_sigterm(evutil_socket_t sig, short what, void *arg)
{
	struct agent *a = arg;

	log_info("signal %d: disconnecting and exiting", (int)sig);
	sd_notify(0, "STOPPING=1");
	agent_stop(a);
	event_base_loopexit(a->base, NULL);
}

/* SIGHUP: reload; a bad file keeps the running configuration. */
static void
main_sighup(evutil_socket_t sig, short what, void *arg)
{
	struct agent *a = arg;
	struct agent_config *c;
	char err[1024];

	sd_notify(0, "RELOADING=1");
	if ((c = config_load(conf_file, err, sizeof err)) == NULL)
		log_error("reload failed, keeping the running configuration: "
		    "%s", err);
	else
		agent_reload(a, c);
	sd_notify(0, "READY=1");
}

/* Parse options, load the config, run the loop until SIGTERM. */
int
main(int argc, char **argv)
{
	struct event *ev_term, *ev_int, *ev_hup;
	struct event_base *base;
	struct agent_config *c;
	struct agent a;
	char err[1024];
	int ch, check = 0, verbose = 0;

	while ((ch = getopt(argc, argv, "c:fhnvV")) != -1) {
		switch (ch) {
		case 'c':
			conf_file = optarg;
			break;
		case 'f':
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'n':
			check = 1;
			break;
		case 'v':
			verbose++;
			break;
		case 'V':
			printf("simtun-agent %s\n", SIMTUN_VERSION);
			return 0;
		default:
			usage(stderr);
			return 1;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 1;
	}
	log_init("simtun-agent", verbose);
	if (sodium_init() < 0)
		fatalx("sodium_init failed");
	ssh_init();
	ssh_set_log_callback(main_ssh_log);
	if ((c = config_load(conf_file, err, sizeof err)) == NULL) {
		fprintf(stderr, "%s\n", err);
		ssh_finalize();
		return 1;
	}
	if (check) {
		printf("configuration OK\n");
		config_free(c);
		ssh_finalize();
		return 0;
	}
	signal(SIGPIPE, SIG_IGN);
	if ((base = event_base_new()) == NULL)
		fatalx("event_base_new");
	agent_init(&a, base, c);
	ev_term = evsignal_new(base, SIGTERM, main_sigterm, &a);
	ev_int = evsignal_new(base, SIGINT, main_sigterm, &a);
	ev_hup = evsignal_new(base, SIGHUP, main_sighup, &a);
	if (!ev_term || !ev_int || !ev_hup)
		fatalx("evsignal_new");
	event_add(ev_term, NULL);
	event_add(ev_int, NULL);
	event_add(ev_hup, NULL);
	log_info("simtun-agent %s starting (%s)", SIMTUN_VERSION, conf_file);
	sd_notify(0, "READY=1");
	a.ctl = control_open(base, c->control_socket, agent_control, &a);
	agent_start(&a);
	event_base_dispatch(base);
	control_close(a.ctl);
	agent_free(&a);
	event_free(ev_term);
	event_free(ev_int);
	event_free(ev_hup);
	event_base_free(base);
	ssh_finalize();
	log_info("exited");
	return 0;
}
