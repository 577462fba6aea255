/* The control socket both daemons serve to simtunctl. */
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/listener.h>

#include "common.h"

#define CONTROL_MAX_LINE	512
#define CONTROL_TIMEOUT		5
#define CONTROL_MAX_CLIENTS	16

struct control {
	struct event_base *base;
	struct evconnlistener *evl;
	struct accept_pause ap;
	char		*path;
	control_handler	 fn;
	void		*arg;
	int		 nclients;
};

struct control_client {
	struct control	*ctl;
	struct control_peer peer;
	int		 answered;
};

/* Free a client once its answer is written (or it failed). */
static void
control_client_free(struct bufferevent *bev, struct control_client *cc)
{
	cc->ctl->nclients--;
	bufferevent_free(bev);
	free(cc);
}

/* Answer written: close. */
static void
control_write_cb(struct bufferevent *bev, void *arg)
{
	struct control_client *cc = arg;

	if (cc->answered)
		control_client_free(bev, cc);
}

/* One request line: run the handler, send its output, then close. */
static void
control_read_cb(struct bufferevent *bev, void *arg)
{
	struct control_client *cc = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	struct evbuffer *out;
	size_t n;
	char *line;

	if (cc->answered)
		return;
	line = evbuffer_readln(in, &n, EVBUFFER_EOL_LF);
	if (line == NULL) {
		if (evbuffer_get_length(in) > CONTROL_MAX_LINE)
			control_client_free(bev, cc);
		return;
	}
	cc->answered = 1;
	if ((out = evbuffer_new()) == NULL)
		fatalx("evbuffer_new");
	if (n > CONTROL_MAX_LINE)
		evbuffer_add_printf(out, "error: request too long\n");
	else
		cc->ctl->fn(line, out, &cc->peer, cc->ctl->arg);
	free(line);
	bufferevent_disable(bev, EV_READ);
	bufferevent_write_buffer(bev, out);
	evbuffer_free(out);
}

/* EOF, error or timeout: drop the client. */
static void
control_event_cb(struct bufferevent *bev, short what, void *arg)
{
	control_client_free(bev, arg);
}

/*
 * The client's credentials (the kernel's, not what it claims) and its
 * command name from /proc, for the audit record of what it asked.
 */
static void
control_peer_get(int fd, struct control_peer *p)
{
	struct ucred uc;
	socklen_t len = sizeof uc;
	char path[64], comm[32];
	ssize_t n;
	int cfd;

	p->pid = p->uid = -1;
	snprintf(p->who, sizeof p->who, "unknown client");
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &uc, &len) == -1)
		return;
	p->pid = uc.pid;
	p->uid = uc.uid;
	comm[0] = '\0';
	snprintf(path, sizeof path, "/proc/%ld/comm", p->pid);
	if ((cfd = open(path, O_RDONLY | O_CLOEXEC)) != -1) {
		if ((n = read(cfd, comm, sizeof comm - 1)) > 0) {
			comm[n] = '\0';
			comm[strcspn(comm, "\n")] = '\0';
		}
		close(cfd);
	}
	snprintf(p->who, sizeof p->who, "uid %ld pid %ld (%s)", p->uid,
	    p->pid, comm[0] ? esc(comm) : "?");
}

/* New simtunctl connection. */
static void
control_accept(struct evconnlistener *evl, evutil_socket_t fd,
    struct sockaddr *sa, int salen, void *arg)
{
	struct control *ctl = arg;
	struct control_client *cc;
	struct bufferevent *bev;
	struct timeval tv = { CONTROL_TIMEOUT, 0 };

	if (ctl->nclients >= CONTROL_MAX_CLIENTS) {
		close(fd);
		return;
	}
	bev = bufferevent_socket_new(ctl->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (bev == NULL) {
		close(fd);
		return;
	}
	cc = xcalloc(1, sizeof *cc);
	cc->ctl = ctl;
	control_peer_get(fd, &cc->peer);
	ctl->nclients++;
	bufferevent_setcb(bev, control_read_cb, control_write_cb,
	    control_event_cb, cc);
	bufferevent_set_timeouts(bev, &tv, &tv);
	bufferevent_enable(bev, EV_READ);
}

/* Out of descriptors: back off instead of spinning. */
static void
control_accept_error(struct evconnlistener *evl, void *arg)
{
	struct control *ctl = arg;

	accept_pause_error(&ctl->ap, "control socket");
}

/* Listen on path, mode 0600 so other local users are kept out. */
struct control *
control_open(struct event_base *base, const char *path, control_handler fn,
    void *arg)
{
	struct sockaddr_un sun;
	struct control *ctl;
	mode_t old;

	memset(&sun, 0, sizeof sun);
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof sun.sun_path) {
		log_warnx("control socket %s: path too long", path);
		return NULL;
	}
	strcpy(sun.sun_path, path);
	if (unlink(path) == -1 && errno != ENOENT)
		log_warn("unlink %s", path);
	ctl = xcalloc(1, sizeof *ctl);
	ctl->base = base;
	ctl->fn = fn;
	ctl->arg = arg;
	ctl->path = xstrdup(path);
	old = umask(0177);
	ctl->evl = evconnlistener_new_bind(base, control_accept, ctl,
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 16,
	    (struct sockaddr *)&sun, sizeof sun);
	umask(old);
	if (ctl->evl == NULL) {
		log_warn("control socket %s", path);
		free(ctl->path);
		free(ctl);
		return NULL;
	}
	accept_pause_init(&ctl->ap, base, ctl->evl, NULL, NULL);
	evconnlistener_set_error_cb(ctl->evl, control_accept_error);
	chmod(path, 0600);
	log_info("control socket %s", path);
	return ctl;
}

/* Stop serving and remove the socket file. */
void
control_close(struct control *ctl)
{
	if (ctl == NULL)
		return;
	evconnlistener_free(ctl->evl);
	accept_pause_clear(&ctl->ap);
	unlink(ctl->path);
	free(ctl->path);
	free(ctl);
}

/* Append a JSON string literal. */
void
json_string(struct evbuffer *out, const char *s)
{
	evbuffer_add(out, "\"", 1);
	for (; s != NULL && *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			evbuffer_add_printf(out, "\\%c", c);
		else if (c < 0x20)
			evbuffer_add_printf(out, "\\u%04x", c);
		else
			evbuffer_add(out, s, 1);
	}
	evbuffer_add(out, "\"", 1);
}

/* "3d4h", "5m2s": compact ages for the status table. */
void
fmt_duration(char *buf, size_t len, long long s)
{
	if (s < 0)
		s = 0;
	if (s < 60)
		snprintf(buf, len, "%llds", s);
	else if (s < 3600)
		snprintf(buf, len, "%lldm%llds", s / 60, s % 60);
	else if (s < 86400)
		snprintf(buf, len, "%lldh%lldm", s / 3600, (s % 3600) / 60);
	else
		snprintf(buf, len, "%lldd%lldh", s / 86400, (s % 86400) / 3600);
}

/* "1.2M" style byte counts. */
void
fmt_bytes(char *buf, size_t len, uint64_t n)
{
	const char *u = "KMGTP";
	double v = (double)n;

	if (n < 1024) {
		snprintf(buf, len, "%llu", (unsigned long long)n);
		return;
	}
	v /= 1024;
	while (v >= 1024 && u[1] != '\0') {
		v /= 1024;
		u++;
	}
	snprintf(buf, len, "%.1f%c", v, *u);
}
