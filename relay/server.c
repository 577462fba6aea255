/* The relay's SSH side: host key, ssh_bind, and the listening sockets. */
#include <sys/resource.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "relay.h"

/* Create an ed25519 host key, 0600, in OpenSSH format, with its .pub. */
static int
server_create_hostkey(const char *path, char *err, size_t len)
{
	ssh_key key = NULL;
	char *pub = NULL;
	mode_t old;
	int rc = -1;

	if (ssh_pki_generate(SSH_KEYTYPE_ED25519, 0, &key) != SSH_OK) {
		snprintf(err, len, "%s: cannot generate ed25519 key", path);
		return -1;
	}
	old = umask(077);
	if (ssh_pki_export_privkey_file(key, NULL, NULL, NULL, path) !=
	    SSH_OK) {
		snprintf(err, len, "%s: cannot write host key (does the "
		    "directory exist and is it writable?)", path);
		goto out;
	}
	chmod(path, 0600);
	umask(022);
	xasprintf(&pub, "%s.pub", path);
	if (ssh_pki_export_pubkey_file(key, pub) != SSH_OK)
		log_warnx("%s: cannot write public key", pub);
	rc = 0;
	log_info("created host key %s", path);
out:
	umask(old);
	free(pub);
	ssh_key_free(key);
	return rc;
}

/* Load (or create) the host key and set up the ssh_bind that uses it. */
int
server_load_hostkey(struct relay *r, char *err, size_t len)
{
	ssh_key key = NULL;
	bool no = false;
	struct stat st;

	if (stat(r->conf.host_key, &st) == -1) {
		if (errno != ENOENT) {
			snprintf(err, len, "%s: %s", r->conf.host_key,
			    strerror(errno));
			return -1;
		}
		if (server_create_hostkey(r->conf.host_key, err, len) == -1)
			return -1;
	} else if (key_file_private_ok(r->conf.host_key, err, len) == -1)
		return -1;
	if (ssh_pki_import_privkey_file(r->conf.host_key, NULL, NULL, NULL,
	    &key) != SSH_OK) {
		snprintf(err, len, "%s: cannot read host key (OpenSSH or PEM "
		    "private key expected)", r->conf.host_key);
		return -1;
	}
	free(r->host_fp);
	r->host_fp = key_fingerprint(key);
	/* a cluster's relays share it: it is how they know each other */
	if (r->host_priv != NULL)
		ssh_key_free(r->host_priv);
	if ((r->host_priv = ssh_key_dup(key)) == NULL)
		fatalx("ssh_key_dup");
	if ((r->bind = ssh_bind_new()) == NULL)
		fatalx("ssh_bind_new");
	ssh_bind_options_set(r->bind, SSH_BIND_OPTIONS_PROCESS_CONFIG, &no);
	if (ssh_bind_options_set(r->bind, SSH_BIND_OPTIONS_IMPORT_KEY,
	    key) != SSH_OK) {
		snprintf(err, len, "%s: unusable host key", r->conf.host_key);
		ssh_key_free(key);
		return -1;
	}
	return 0;
}

/* Accept errors: out of descriptors pauses accepting for a moment. */
static void
server_accept_error(struct evconnlistener *evl, void *arg)
{
	struct relay *r = arg;
	size_t i;

	for (i = 0; i < r->nevls; i++)
		if (r->evls[i] == evl)
			accept_pause_error(&r->aps[i], "ssh port");
}

/*
 * New TCP connection on the SSH port. libssh gets a copy of the socket:
 * it closes its copy on a socket error, in the middle of a pass, while
 * our events still watch the descriptor; ours stays open (and is not
 * reused) until the session is freed. No descriptor for the copy is an
 * accept error like any other.
 */
static void
server_accept_cb(struct evconnlistener *evl, evutil_socket_t fd,
    struct sockaddr *sa, int salen, void *arg)
{
	int sshfd, err;

	if ((sshfd = fcntl(fd, F_DUPFD_CLOEXEC, 0)) == -1) {
		err = errno;
		close(fd);
		errno = err;
		server_accept_error(evl, arg);
		return;
	}
	session_accept(arg, fd, sshfd, sa);
}

/* The back-off is over: accept again unless max_startups says wait. */
static void
server_accept_resume(void *arg)
{
	struct relay *r = arg;
	size_t i;

	if (r->accept_paused || r->quitting)
		return;
	for (i = 0; i < r->nevls; i++)
		if (!r->aps[i].paused)
			evconnlistener_enable(r->evls[i]);
}

/*
 * max_conns as configured, but never more than half the descriptors the
 * process may open: the rest is for device sessions, listeners, logs.
 */
void
server_limits(struct relay *r)
{
	struct rlimit rl;
	unsigned long cap;

	r->conns_limit = r->conf.max_conns;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) {
		cap = (unsigned long)rl.rlim_cur / 2;
		if (cap < 1)
			cap = 1;
		if (cap < r->conns_limit) {
			log_warnx("max_conns %lu is more than half the open "
			    "file limit (%lu): using %lu", r->conf.max_conns,
			    (unsigned long)rl.rlim_cur, cap);
			r->conns_limit = cap;
		}
	}
}

/* Listen on every `listen` address. */
int
server_listen(struct relay *r)
{
	struct sockaddr_storage ss;
	struct evconnlistener *evl;
	socklen_t sslen;
	const char *why;
	size_t i;

	r->evls = xcalloc(r->conf.nlisten, sizeof *r->evls);
	r->aps = xcalloc(r->conf.nlisten, sizeof *r->aps);
	for (i = 0; i < r->conf.nlisten; i++) {
		struct listen_addr *la = &r->conf.listen[i];

		if (net_resolve_listen(la->host, la->port, &ss, &sslen,
		    &why) == -1) {
			log_error("listen %s:%u: %s", la->host, la->port, why);
			return -1;
		}
		evl = evconnlistener_new_bind(r->base, server_accept_cb, r,
		    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE |
		    LEV_OPT_CLOSE_ON_EXEC | (ss.ss_family == AF_INET6 ?
		    LEV_OPT_BIND_IPV6ONLY : 0), 512, (struct sockaddr *)&ss,
		    (int)sslen);
		if (evl == NULL) {
			log_warn("listen on %s port %u", la->host, la->port);
			return -1;
		}
		evconnlistener_set_error_cb(evl, server_accept_error);
		accept_pause_init(&r->aps[r->nevls], r->base, evl,
		    server_accept_resume, r);
		r->evls[r->nevls++] = evl;
		log_info("listening on %s port %u", la->host, la->port);
	}
	return 0;
}

/* Stop accepting (shutdown). */
void
server_close(struct relay *r)
{
	size_t i;

	for (i = 0; i < r->nevls; i++) {
		evconnlistener_free(r->evls[i]);
		accept_pause_clear(&r->aps[i]);
	}
	free(r->evls);
	free(r->aps);
	r->aps = NULL;
	r->evls = NULL;
	r->nevls = 0;
}

/*
 * At max_startups, stop accepting instead of refusing: new devices wait in
 * the kernel's backlog for a slot rather than being pushed into backoff,
 * which matters when a whole fleet reconnects after a relay restart.
 */
void
server_throttle(struct relay *r)
{
	static time_t last_log;
	time_t now;
	size_t i;
	int full = r->nunauth >= r->conf.startups_full;

	if (full == r->accept_paused || r->quitting)
		return;
	r->accept_paused = full;
	for (i = 0; i < r->nevls; i++) {
		if (full)
			evconnlistener_disable(r->evls[i]);
		else if (!r->aps[i].paused)
			evconnlistener_enable(r->evls[i]);
	}
	/* one line per 10 s: a reconnect storm toggles this constantly */
	if (full && (now = time(NULL)) - last_log >= 10) {
		last_log = now;
		log_warnx("%u unauthenticated connections (max_startups): "
		    "new connections wait until one finishes", r->nunauth);
	}
}
