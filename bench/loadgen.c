/*
 * bench/loadgen: N simulated devices in one process. Each one is a
 * non-blocking libssh client session that authenticates with its own
 * ed25519 key and asks for a reverse forward of its own port, then idles
 * (answering the relay's keepalives, sending its own every -K seconds).
 * When a session dies it reconnects like simtun-agent: at once if it had
 * been up "long enough" (-T), else after a delay uniform in
 * [initial, min(max, initial * 2^n)] (agent/backoff.c).
 *
 * -H A,B,...: several relays (a cluster on one port), as an agent with one
 * [relay] section per address: device i starts on relay i mod n and falls
 * back to the others (their order alternates with i / n, so a dead relay's
 * devices spread over the rest). Like simtun-agent's relay slot, a failed
 * attempt or a session that ends moves to the next relay at once, until
 * every relay had its turn; then it backs off and starts over from its own.
 * With one address nothing changes.
 *
 *   loadgen -n N -H HOST[,HOST...] [-p PORT] [-b BASEPORT] [-u USER] -a PREFIX
 *           [-c RAMP_CONCURRENCY] [-K KA_SECS] [-T STABLE_SECS]
 *           [-B BACKOFF_INITIAL] [-M BACKOFF_MAX] [-s]
 *
 * It first generates N keys and writes PREFIX.simtun and PREFIX.openssh
 * (authorized_keys for simtun-relay and for sshd, one line per device,
 * permitlisten="BASEPORT+i"), prints "KEYS", then waits for SIGUSR1 (or
 * starts at once with -s). Progress goes to stdout, one line each, every
 * line starting with the wall clock (epoch seconds):
 *   <t> KEYS n <secs>          keys generated and files written
 *   <t> GO n                   connecting starts
 *   <t> ALLUP n <secs since GO> <failed attempts>
 *   <t> DOWN up=<n>            the first session lost after an ALLUP
 *   <t> STAT up=.. connecting=.. waiting=.. attempts=.. failures=..
 *                              (several relays: ... relays=UP1,UP2,...)
 */
#include <sys/resource.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <libssh/libssh.h>
#include <libssh/callbacks.h>
#include <libssh/server.h>	/* ssh_send_keepalive */

enum dev_state { DEV_IDLE, DEV_DIAL, DEV_KEX, DEV_AUTH, DEV_FWD, DEV_UP,
    DEV_WAIT };

struct dev {
	int		 idx;
	int		 port;
	enum dev_state	 state;
	int		 fd;
	ssh_session	 s;
	ssh_event	 sev;
	ssh_key		 key;
	struct event	*ev_rd;
	struct event	*ev_wr;
	struct event	*ev_timer;	/* backoff wait or handshake deadline */
	struct event	*ev_ka;
	unsigned int	 bo_n;
	int		 rel;		/* -H list: current relay, 0 = own */
	int		 rel_failed;	/* relays failed since the last backoff */
	int		 rel_up;	/* the relay its session is up on */
	double		 up_since;
	int		 ramp;		/* still part of the initial ramp */
};

static struct event_base *base;
static struct dev *devs;
static int ndev, nup, nconnecting, nwaiting, ramp_next, ramp_inflight;
static int ramp_conc = 256, ka_secs = 30, stable_secs = 60;
static unsigned long bo_initial_ms = 1000, bo_max_ms = 120000;
static const char *host = "127.0.0.1", *user = "root";
static int rport = 2222, baseport = 20000;
#define MAX_RELAYS	8
static struct sockaddr_in raddr[MAX_RELAYS];
static char *rhost[MAX_RELAYS];
static int nrelay = 1, relay_up[MAX_RELAYS];
static double t_go;
static int allup_seen;
static unsigned long attempts, failures;

static void dev_start(struct dev *);
static void dev_step(struct dev *);

/* Wall clock, for lines the bench correlates with its own timestamps. */
static double
now_real(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* One progress line, stamped. */
static void
out(const char *fmt, ...)
{
	va_list ap;

	printf("%.6f ", now_real());
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
}

static void
die(const char *msg)
{
	fprintf(stderr, "loadgen: %s: %s\n", msg, strerror(errno));
	exit(1);
}

static void
set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl != -1 && !(fl & O_NONBLOCK))
		fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

/* Uniform in [lo, hi]. */
static unsigned long
uniform(unsigned long lo, unsigned long hi)
{
	if (hi <= lo)
		return lo;
	return lo + (unsigned long)(random() % (long)(hi - lo + 1));
}

/* The agent's delay: uniform in [initial, min(max, initial << n)]. */
static unsigned long
backoff_next(struct dev *d)
{
	unsigned long ceil = bo_initial_ms;

	if (d->bo_n < 20)
		ceil = bo_initial_ms << d->bo_n;
	if (ceil > bo_max_ms)
		ceil = bo_max_ms;
	if (d->bo_n < 32)
		d->bo_n++;
	return uniform(bo_initial_ms, ceil);
}

/*
 * The k-th relay (0 = its own) of device d: its own is idx mod n, the others
 * follow in an order that alternates with idx / n.
 */
static int
dev_relay(const struct dev *d, int k)
{
	int own = d->idx % nrelay;

	if (k == 0 || nrelay == 1)
		return own;
	return (own + 1 + (d->idx / nrelay + k - 1) % (nrelay - 1)) % nrelay;
}

/* Ramp bookkeeping: a ramp slot frees when the first attempt ends. */
static void
ramp_done(struct dev *d)
{
	if (!d->ramp)
		return;
	d->ramp = 0;
	ramp_inflight--;
	while (ramp_next < ndev && (ramp_conc == 0 || ramp_inflight < ramp_conc)) {
		struct dev *n = &devs[ramp_next++];

		n->ramp = 1;
		ramp_inflight++;
		dev_start(n);
	}
}

/* Tear the attempt or session down; retry as the agent would. */
static void
dev_fail(struct dev *d)
{
	double up = 0;
	struct timeval tv;
	unsigned long ms;

	if (d->state == DEV_UP) {
		if (nup == ndev && allup_seen)
			out("DOWN up=%d", nup - 1);
		nup--;
		relay_up[d->rel_up]--;
		up = now_real() - d->up_since;
	} else if (d->state != DEV_IDLE && d->state != DEV_WAIT) {
		nconnecting--;
		failures++;
	}
	event_del(d->ev_rd);
	event_del(d->ev_wr);
	event_del(d->ev_timer);
	event_del(d->ev_ka);
	if (d->sev != NULL) {
		ssh_event_remove_session(d->sev, d->s);
		ssh_event_free(d->sev);
		d->sev = NULL;
	}
	/*
	 * From ssh_connect on, the fd is libssh's: ssh_free closes it, or
	 * libssh closed it already (EOF, a failed write), and its number may
	 * be another device's socket by now: never close it by number then.
	 */
	if (d->s != NULL) {
		ssh_free(d->s);
		d->s = NULL;
	} else if (d->fd != -1)
		close(d->fd);
	d->fd = -1;
	ramp_done(d);
	if (up >= stable_secs) {
		d->bo_n = 0;
		d->rel_failed = 0;
	}
	if (nrelay > 1) {
		/* the next relay at once until each had its turn (agent/slot.c) */
		if (++d->rel_failed < nrelay) {
			d->rel = (d->rel + 1) % nrelay;
			d->state = DEV_IDLE;
			dev_start(d);
			return;
		}
		d->rel_failed = 0;
		d->rel = 0;
	} else if (up >= stable_secs) {
		d->state = DEV_IDLE;
		dev_start(d);
		return;
	}
	ms = backoff_next(d);
	d->state = DEV_WAIT;
	nwaiting++;
	tv.tv_sec = (time_t)(ms / 1000);
	tv.tv_usec = (suseconds_t)(ms % 1000) * 1000;
	evtimer_add(d->ev_timer, &tv);
}

/* Push out what libssh holds; watch for writability if it is stuck. */
static int
dev_flush(struct dev *d)
{
	if (d->s == NULL)
		return 0;
	if (ssh_get_poll_flags(d->s) & SSH_WRITE_PENDING) {
		if (ssh_blocking_flush(d->s, 0) == SSH_ERROR)
			return -1;
		set_nonblock(d->fd);
	}
	if (ssh_get_poll_flags(d->s) & SSH_WRITE_PENDING)
		event_add(d->ev_wr, NULL);
	return 0;
}

/* Keepalive tick, as the agent sends one every interval. */
static void
dev_ka_cb(evutil_socket_t fd, short what, void *arg)
{
	struct dev *d = arg;

	if (d->state != DEV_UP)
		return;
	ssh_send_keepalive(d->s);
	/* a failed write closes the session (and its fd) inside libssh */
	if (dev_flush(d) == -1 || !ssh_is_connected(d->s) ||
	    (ssh_get_status(d->s) & (SSH_CLOSED | SSH_CLOSED_ERROR)))
		dev_fail(d);
}

/* Backoff over (start again) or handshake deadline passed (fail). */
static void
dev_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct dev *d = arg;

	if (d->state == DEV_WAIT) {
		nwaiting--;
		d->state = DEV_IDLE;
		dev_start(d);
	} else if (d->state != DEV_UP && d->state != DEV_IDLE)
		dev_fail(d);
}

/* Readiness on the socket. */
static void
dev_io_cb(evutil_socket_t fd, short what, void *arg)
{
	struct dev *d = arg;
	int err = 0;
	socklen_t len = sizeof err;
	long nolog = SSH_LOG_NOLOG;
	int no = 0;

	if (d->state == DEV_DIAL) {
		if (getsockopt(d->fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1 ||
		    err != 0) {
			dev_fail(d);
			return;
		}
		if ((d->s = ssh_new()) == NULL) {
			dev_fail(d);
			return;
		}
		ssh_options_set(d->s, SSH_OPTIONS_PROCESS_CONFIG, &no);
		ssh_options_set(d->s, SSH_OPTIONS_FD, &d->fd);
		ssh_options_set(d->s, SSH_OPTIONS_HOST,
		    rhost[dev_relay(d, d->rel)]);
		ssh_options_set(d->s, SSH_OPTIONS_PORT, &rport);
		ssh_options_set(d->s, SSH_OPTIONS_USER, user);
		ssh_options_set(d->s, SSH_OPTIONS_LOG_VERBOSITY, &nolog);
		ssh_options_set(d->s, SSH_OPTIONS_KNOWNHOSTS, "/dev/null");
		ssh_options_set(d->s, SSH_OPTIONS_GLOBAL_KNOWNHOSTS, "/dev/null");
		ssh_set_blocking(d->s, 0);
		d->state = DEV_KEX;
		event_add(d->ev_rd, NULL);
	}
	dev_step(d);
}

/* The session is up: idle from now on. */
static void
dev_up(struct dev *d)
{
	struct timeval tv;

	if ((d->sev = ssh_event_new()) == NULL ||
	    ssh_event_add_session(d->sev, d->s) != SSH_OK) {
		dev_fail(d);
		return;
	}
	event_del(d->ev_timer);
	nconnecting--;
	d->state = DEV_UP;
	d->up_since = now_real();
	nup++;
	d->rel_up = dev_relay(d, d->rel);
	relay_up[d->rel_up]++;
	ramp_done(d);
	if (ka_secs > 0) {
		tv.tv_sec = ka_secs;
		tv.tv_usec = (suseconds_t)uniform(0, 999999);
		event_add(d->ev_ka, &tv);
	}
	if (nup == ndev) {
		out("ALLUP %d %.3f %lu", ndev, now_real() - t_go, failures);
		allup_seen = 1;
	}
}

/* Advance the handshake as far as the data at hand allows. */
static void
dev_step(struct dev *d)
{
	int rc, bound = 0, i, st;

	switch (d->state) {
	case DEV_KEX:
		rc = ssh_connect(d->s);
		set_nonblock(d->fd);
		if (rc == SSH_AGAIN)
			break;
		if (rc != SSH_OK) {
			dev_fail(d);
			return;
		}
		d->state = DEV_AUTH;
		/* FALLTHROUGH */
	case DEV_AUTH:
		rc = ssh_userauth_publickey(d->s, NULL, d->key);
		set_nonblock(d->fd);
		if (rc == SSH_AUTH_AGAIN)
			break;
		if (rc != SSH_AUTH_SUCCESS) {
			dev_fail(d);
			return;
		}
		d->state = DEV_FWD;
		/* FALLTHROUGH */
	case DEV_FWD:
		rc = ssh_channel_listen_forward(d->s, "0.0.0.0", d->port,
		    &bound);
		set_nonblock(d->fd);
		if (rc == SSH_AGAIN)
			break;
		if (rc != SSH_OK) {
			dev_fail(d);
			return;
		}
		dev_up(d);
		break;
	case DEV_UP:
		for (i = 0; i < 64; i++) {
			rc = ssh_event_dopoll(d->sev, 0);
			st = ssh_get_status(d->s);
			if (rc == SSH_ERROR || (st & (SSH_CLOSED |
			    SSH_CLOSED_ERROR)) || !ssh_is_connected(d->s)) {
				dev_fail(d);
				return;
			}
			if (rc == SSH_AGAIN)
				break;
		}
		set_nonblock(d->fd);
		break;
	default:
		return;
	}
	if (d->state != DEV_IDLE && d->state != DEV_WAIT && dev_flush(d) == -1)
		dev_fail(d);
}

/* One attempt: non-blocking TCP connect, then the ssh handshake. */
static void
dev_start(struct dev *d)
{
	struct timeval tv = { 20, 0 };	/* agent: 2 x connect timeout */

	attempts++;
	nconnecting++;
	d->state = DEV_DIAL;
	d->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (d->fd == -1) {
		dev_fail(d);
		return;
	}
	if (connect(d->fd, (struct sockaddr *)&raddr[dev_relay(d, d->rel)],
	    sizeof raddr[0]) == -1 &&
	    errno != EINPROGRESS) {
		dev_fail(d);
		return;
	}
	event_assign(d->ev_rd, base, d->fd, EV_READ | EV_PERSIST, dev_io_cb, d);
	event_assign(d->ev_wr, base, d->fd, EV_WRITE, dev_io_cb, d);
	event_add(d->ev_wr, NULL);
	evtimer_add(d->ev_timer, &tv);
}

static volatile sig_atomic_t go;

static void
on_usr1(int sig)
{
	go = 1;
}

/* Once a second: a status line. */
static void
stat_cb(evutil_socket_t fd, short what, void *arg)
{
	char rel[MAX_RELAYS * 12] = "";
	size_t len = 0;
	int i;

	for (i = 0; nrelay > 1 && i < nrelay; i++)
		len += (size_t)snprintf(rel + len, sizeof rel - len, "%s%d",
		    i == 0 ? " relays=" : ",", relay_up[i]);
	out("STAT up=%d connecting=%d waiting=%d attempts=%lu failures=%lu%s",
	    nup, nconnecting, nwaiting, attempts, failures, rel);
}

static void
usage(void)
{
	fprintf(stderr, "usage: loadgen -n N -H HOST[,HOST...] [-p PORT] "
	    "[-b BASEPORT] [-u USER] -a PREFIX [-c RAMP] [-K KA] [-T STABLE] "
	    "[-B INIT] [-M MAX] [-s]\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	const char *prefix = NULL;
	char path[4096];
	FILE *fs, *fo;
	struct rlimit rl;
	struct event *ev_stat;
	struct timeval one = { 1, 0 };
	double t0;
	int c, i, start_now = 0;
	char *b64, *p;

	while ((c = getopt(argc, argv, "n:H:p:b:u:a:c:K:T:B:M:s")) != -1) {
		switch (c) {
		case 'n': ndev = atoi(optarg); break;
		case 'H': host = optarg; break;
		case 'p': rport = atoi(optarg); break;
		case 'b': baseport = atoi(optarg); break;
		case 'u': user = optarg; break;
		case 'a': prefix = optarg; break;
		case 'c': ramp_conc = atoi(optarg); break;
		case 'K': ka_secs = atoi(optarg); break;
		case 'T': stable_secs = atoi(optarg); break;
		case 'B': bo_initial_ms = strtoul(optarg, NULL, 10) * 1000; break;
		case 'M': bo_max_ms = strtoul(optarg, NULL, 10) * 1000; break;
		case 's': start_now = 1; break;
		default: usage();
		}
	}
	if (ndev <= 0 || prefix == NULL)
		usage();
	/* -H A,B,...: one address per relay */
	nrelay = 0;
	for (p = strtok(strdup(host), ","); p != NULL; p = strtok(NULL, ",")) {
		if (nrelay == MAX_RELAYS) {
			fprintf(stderr, "loadgen: at most %d relays\n",
			    MAX_RELAYS);
			return 2;
		}
		rhost[nrelay] = p;
		memset(&raddr[nrelay], 0, sizeof raddr[0]);
		raddr[nrelay].sin_family = AF_INET;
		raddr[nrelay].sin_port = htons((uint16_t)rport);
		if (inet_pton(AF_INET, p, &raddr[nrelay].sin_addr) != 1) {
			fprintf(stderr, "loadgen: -H wants IPv4 addresses\n");
			return 2;
		}
		nrelay++;
	}
	if (nrelay == 0)
		usage();
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
		if (rl.rlim_cur < (rlim_t)ndev + 64) {
			fprintf(stderr, "loadgen: RLIMIT_NOFILE %llu < %d + 64\n",
			    (unsigned long long)rl.rlim_cur, ndev);
			return 1;
		}
	}
	signal(SIGPIPE, SIG_IGN);
	signal(SIGUSR1, on_usr1);
	srandom((unsigned int)getpid() ^ (unsigned int)time(NULL));
	ssh_init();

	t0 = now_real();
	snprintf(path, sizeof path, "%s.simtun", prefix);
	if ((fs = fopen(path, "w")) == NULL)
		die(path);
	snprintf(path, sizeof path, "%s.openssh", prefix);
	if ((fo = fopen(path, "w")) == NULL)
		die(path);
	devs = calloc((size_t)ndev, sizeof *devs);
	if (devs == NULL)
		die("calloc");
	base = event_base_new();
	if (base == NULL)
		die("event_base_new");
	for (i = 0; i < ndev; i++) {
		struct dev *d = &devs[i];

		d->idx = i;
		d->port = baseport + i;
		d->fd = -1;
		if (ssh_pki_generate(SSH_KEYTYPE_ED25519, 0, &d->key) != SSH_OK ||
		    ssh_pki_export_pubkey_base64(d->key, &b64) != SSH_OK) {
			fprintf(stderr, "loadgen: key generation failed\n");
			return 1;
		}
		fprintf(fs, "restrict,permitlisten=\"%d\" ssh-ed25519 %s "
		    "lg%05d\n", d->port, b64, i);
		fprintf(fo, "restrict,port-forwarding,permitlisten=\"%d\" "
		    "ssh-ed25519 %s lg%05d\n", d->port, b64, i);
		free(b64);
		d->ev_rd = event_new(base, -1, 0, dev_io_cb, d);
		d->ev_wr = event_new(base, -1, 0, dev_io_cb, d);
		d->ev_timer = evtimer_new(base, dev_timer_cb, d);
		d->ev_ka = event_new(base, -1, EV_PERSIST, dev_ka_cb, d);
		if (!d->ev_rd || !d->ev_wr || !d->ev_timer || !d->ev_ka)
			die("event_new");
	}
	if (fclose(fs) != 0 || fclose(fo) != 0)
		die("write authorized_keys");
	out("KEYS %d %.3f", ndev, now_real() - t0);

	while (!start_now && !go)
		pause();
	t_go = now_real();
	out("GO %d", ndev);
	ev_stat = event_new(base, -1, EV_PERSIST, stat_cb, NULL);
	event_add(ev_stat, &one);
	while (ramp_next < ndev && (ramp_conc == 0 || ramp_inflight < ramp_conc)) {
		struct dev *d = &devs[ramp_next++];

		d->ramp = 1;
		ramp_inflight++;
		dev_start(d);
	}
	event_base_dispatch(base);
	return 0;
}
