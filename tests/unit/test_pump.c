/*
 * Unit tests for common/pump.c: flow control between a socket (one end of
 * a socketpair) and an SSH channel, with no SSH session at all.
 *
 * The seam is the link: this file defines the few libssh functions pump.c
 * (and sshio.c, for a session-less struct sshio) call on a channel, so the
 * linker binds pump.o to these fakes instead of libssh's. The fake channel
 * keeps libssh's contract as pump.c relies on it: a remote window that
 * ssh_channel_write may not exceed, incoming data offered to the data
 * callback in full with what it does not consume kept for
 * ssh_channel_read_timeout, EOF and CLOSE callbacks, and a session whose
 * output may be "pending" (ssh_get_poll_flags).
 */
#include <sys/socket.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>

#include "common.h"
#include "unit.h"

/* --- the fake channel ------------------------------------------------- */

struct ssh_channel_struct {
	int		 open;
	uint32_t	 window;	/* what we may still send */
	uint64_t	 granted;	/* all window ever given */
	struct evbuffer	*sent;		/* what the pump wrote to the channel */
	struct evbuffer	*held;		/* incoming, not consumed yet */
	int		 local_eof;	/* the pump sent EOF */
	int		 remote_eof;
	int		 freed;
	int		 overrun;	/* a write past the window */
	ssh_channel_callbacks cb;
};

static int write_pending;		/* the session has unsent output */

int
ssh_channel_is_open(ssh_channel ch)
{
	return ch->open && !ch->freed;
}

int
ssh_channel_is_eof(ssh_channel ch)
{
	return evbuffer_get_length(ch->held) == 0 && ch->remote_eof;
}

uint32_t
ssh_channel_window_size(ssh_channel ch)
{
	return ch->window;
}

int
ssh_channel_write(ssh_channel ch, const void *data, uint32_t len)
{
	if (!ch->open || ch->local_eof)
		return SSH_ERROR;
	if (len > ch->window) {
		ch->overrun = 1;
		len = ch->window;
	}
	evbuffer_add(ch->sent, data, len);
	ch->window -= len;
	return (int)len;
}

int
ssh_channel_send_eof(ssh_channel ch)
{
	ch->local_eof = 1;
	return SSH_OK;
}

int
ssh_channel_read_timeout(ssh_channel ch, void *dest, uint32_t count,
    int is_stderr, int timeout_ms)
{
	return evbuffer_remove(ch->held, dest, count);
}

int
ssh_set_channel_callbacks(ssh_channel ch, ssh_channel_callbacks cb)
{
	ch->cb = cb;
	return SSH_OK;
}

int
ssh_remove_channel_callbacks(ssh_channel ch, ssh_channel_callbacks cb)
{
	if (ch->cb == cb)
		ch->cb = NULL;
	return SSH_OK;
}

void
ssh_channel_free(ssh_channel ch)
{
	ch->freed = 1;
}

int
ssh_get_poll_flags(ssh_session s)
{
	return write_pending ? SSH_WRITE_PENDING : 0;
}

/* The peer sends len bytes: libssh offers all it holds to the callback. */
static void
peer_data(ssh_channel ch, const void *data, size_t len)
{
	size_t have;
	int n;

	evbuffer_add(ch->held, data, len);
	if (ch->cb == NULL || ch->cb->channel_data_function == NULL)
		return;
	have = evbuffer_get_length(ch->held);
	n = ch->cb->channel_data_function(NULL, ch,
	    evbuffer_pullup(ch->held, (ssize_t)have), (uint32_t)have, 0,
	    ch->cb->userdata);
	if (n > 0)
		evbuffer_drain(ch->held, (size_t)n);
}

static void
peer_eof(ssh_channel ch)
{
	ch->remote_eof = 1;
	if (ch->cb != NULL && ch->cb->channel_eof_function != NULL)
		ch->cb->channel_eof_function(NULL, ch, ch->cb->userdata);
}

static void
peer_close(ssh_channel ch)
{
	ch->remote_eof = 1;
	if (ch->cb != NULL && ch->cb->channel_close_function != NULL)
		ch->cb->channel_close_function(NULL, ch, ch->cb->userdata);
}

static void
peer_window(ssh_channel ch, uint32_t n)
{
	ch->window += n;
	ch->granted += n;
}

/* --- the bed ---------------------------------------------------------- */

struct bed {
	struct event_base *base;
	struct sshio	 io;		/* no session: flush is a no-op */
	struct ssh_channel_struct ch;
	struct pump	*p;
	int		 app;		/* our end of the socketpair */
	int		 done;
	const char	*why;
};

static void
bed_done(struct pump *p, void *arg)
{
	struct bed *b = arg;

	b->done = 1;
	b->why = p->why;
}

static void
bed_init(struct bed *b, uint32_t window)
{
	int sv[2], sz = 64 * 1024;

	memset(b, 0, sizeof *b);
	b->base = event_base_new();
	TAILQ_INIT(&b->io.graves);
	b->io.base = b->base;
	b->io.fd = -1;
	b->ch.open = 1;
	b->ch.sent = evbuffer_new();
	b->ch.held = evbuffer_new();
	peer_window(&b->ch, window);
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == -1)
		fatal("socketpair");
	/* small kernel buffers, so "the reader is slow" comes soon */
	setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz);
	setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &sz, sizeof sz);
	setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz);
	setsockopt(sv[0], SOL_SOCKET, SO_RCVBUF, &sz, sizeof sz);
	b->app = sv[1];
	fcntl(b->app, F_SETFL, fcntl(b->app, F_GETFL) | O_NONBLOCK);
	b->p = pump_new(b->base, &b->io, &b->ch, sv[0], bed_done, b);
	pump_kick(b->p);
}

static void
bed_free(struct bed *b)
{
	pump_free(b->p, NULL, NULL);
	close(b->app);
	evbuffer_free(b->ch.sent);
	evbuffer_free(b->ch.held);
	event_base_free(b->base);
}

/* Run the loop until nothing is ready (a few passes). */
static void
spin(struct bed *b)
{
	int i;

	for (i = 0; i < 20; i++)
		event_base_loop(b->base, EVLOOP_NONBLOCK);
}

/* Byte i of a test stream. */
static unsigned char
pat(size_t i)
{
	return (unsigned char)((i * 7919) ^ (i >> 11));
}

/* Write up to len pattern bytes starting at *off into fd (non-blocking). */
static void
feed(int fd, size_t *off, size_t end)
{
	unsigned char buf[8192];
	size_t n, i;
	ssize_t w;

	while (*off < end) {
		n = end - *off < sizeof buf ? end - *off : sizeof buf;
		for (i = 0; i < n; i++)
			buf[i] = pat(*off + i);
		w = write(fd, buf, n);
		if (w <= 0)
			return;
		*off += (size_t)w;
	}
}

/* Does buffer hold exactly the pattern bytes [from, from + len)? */
static int
is_pattern(struct evbuffer *eb, size_t from)
{
	size_t len = evbuffer_get_length(eb), i;
	unsigned char *d = evbuffer_pullup(eb, -1);

	for (i = 0; i < len; i++)
		if (d[i] != pat(from + i))
			return 0;
	return 1;
}

/*
 * Socket -> channel: never more than the window; the socket is not read
 * while the window is shut, and all of it arrives once windows are given.
 */
static void
test_window(void)
{
	struct bed b;
	size_t off = 0, total = 1024 * 1024;
	int rounds;

	bed_init(&b, 10000);
	feed(b.app, &off, total);
	spin(&b);
	CHECK_INT(evbuffer_get_length(b.ch.sent), 10000);
	CHECK_INT(b.ch.window, 0);
	CHECK(!b.ch.overrun);
	CHECK(!b.done);
	/* the window stays shut: nothing more, however long we wait */
	spin(&b);
	CHECK_INT(evbuffer_get_length(b.ch.sent), 10000);
	/* windows of odd sizes, until it is all through */
	for (rounds = 0; rounds < 10000 &&
	    evbuffer_get_length(b.ch.sent) < total; rounds++) {
		peer_window(&b.ch, 7777 + (uint32_t)rounds % 50000);
		pump_kick(b.p);
		spin(&b);
		feed(b.app, &off, total);
		CHECK(evbuffer_get_length(b.ch.sent) <= b.ch.granted);
		CHECK(evbuffer_get_length(b.p->in) <= 32 * 1024);
		CHECK(!b.ch.local_eof && !b.done);
	}
	CHECK_INT(evbuffer_get_length(b.ch.sent), total);
	CHECK(is_pattern(b.ch.sent, 0));
	CHECK(!b.ch.overrun);
	CHECK_INT(b.p->bytes_in, total);
	bed_free(&b);
}

/* While the session has unsent output, the socket is not read. */
static void
test_write_pending(void)
{
	struct bed b;
	size_t off = 0;

	bed_init(&b, 1 << 20);
	write_pending = 1;
	feed(b.app, &off, 50000);
	spin(&b);
	CHECK_INT(evbuffer_get_length(b.ch.sent), 0);
	write_pending = 0;
	pump_kick(b.p);
	spin(&b);
	CHECK_INT(evbuffer_get_length(b.ch.sent), 50000);
	CHECK(is_pattern(b.ch.sent, 0));
	bed_free(&b);
}

/*
 * Channel -> socket with a reader that does not read: the pump holds at
 * most its own bound, the rest stays with "libssh", whose window (what it
 * holds unconsumed, as libssh grows it only for what is taken) then shuts
 * and stalls the peer; when the reader reads, everything comes in order.
 */
#define LOCAL_WINDOW	1280000		/* libssh's default channel window */

/* The peer sends what the window allows of [*sent, total): one pass. */
static void
peer_stream(struct bed *b, size_t *sent, size_t total)
{
	unsigned char chunk[32768];
	size_t room, n, i;

	for (;;) {
		room = LOCAL_WINDOW - evbuffer_get_length(b->ch.held);
		n = total - *sent;
		n = n < room ? n : room;
		n = n < sizeof chunk ? n : sizeof chunk;
		if (n == 0)
			return;
		for (i = 0; i < n; i++)
			chunk[i] = pat(*sent + i);
		peer_data(&b->ch, chunk, n);
		*sent += n;
	}
}

static void
test_slow_reader(void)
{
	struct bed b;
	unsigned char rbuf[65536];
	struct evbuffer *got = evbuffer_new();
	size_t sent = 0, total = 8 * 1024 * 1024, last = 0, maxout = 0, held;
	int i;
	ssize_t n;

	bed_init(&b, 0);
	/* nobody reads: the peer soon cannot send any more */
	for (i = 0; i < 100; i++) {
		peer_stream(&b, &sent, total);
		spin(&b);
		if (evbuffer_get_length(b.p->out) > maxout)
			maxout = evbuffer_get_length(b.p->out);
		if (i > 3 && sent == last)
			break;
		last = sent;
	}
	CHECK(sent < total / 2);
	CHECK(maxout <= 256 * 1024);
	CHECK_INT(evbuffer_get_length(b.ch.held), LOCAL_WINDOW);
	if (!CHECK(!b.done))
		fprintf(stderr, "    pump done: %s; violation: %s\n", b.why,
		    b.io.violation);
	/* the reader wakes up; the window opens as data leaves */
	for (i = 0; i < 100000 && evbuffer_get_length(got) < total; i++) {
		while ((n = read(b.app, rbuf, sizeof rbuf)) > 0)
			evbuffer_add(got, rbuf, (size_t)n);
		spin(&b);
		peer_stream(&b, &sent, total);
		spin(&b);
		held = evbuffer_get_length(b.p->out) +
		    evbuffer_get_length(b.ch.held);
		if (held > maxout)
			maxout = held;
	}
	CHECK_INT(evbuffer_get_length(got), total);
	CHECK(is_pattern(got, 0));
	CHECK_INT(b.p->bytes_out, total);
	/*
	 * Reading, the pump takes all libssh holds once its own buffer is
	 * empty; libssh then opens its window again, and while the pump
	 * drains that window's worth the peer may fill another: the pump and
	 * libssh together hold at most two windows and the pump's bound
	 * (about 2.8 MB a connection with libssh's default window).
	 */
	if (!CHECK(maxout <= 2 * LOCAL_WINDOW + 256 * 1024))
		fprintf(stderr, "    held at most %zu bytes\n", maxout);
	evbuffer_free(got);
	bed_free(&b);
}

/* EOF both ways: data first, then EOF, then the pump is done. */
static void
test_eof(void)
{
	struct bed b;
	unsigned char buf[100];
	size_t off = 0;
	ssize_t n;

	bed_init(&b, 1 << 20);
	feed(b.app, &off, 3000);
	shutdown(b.app, SHUT_WR);
	spin(&b);
	CHECK_INT(evbuffer_get_length(b.ch.sent), 3000);
	CHECK(b.ch.local_eof);
	CHECK(!b.done);			/* the other way is still open */
	peer_data(&b.ch, "bye", 3);
	peer_eof(&b.ch);
	spin(&b);
	n = read(b.app, buf, sizeof buf);
	CHECK_INT(n, 3);
	CHECK(memcmp(buf, "bye", 3) == 0);
	CHECK_INT(read(b.app, buf, sizeof buf), 0);	/* EOF */
	CHECK(b.done);
	CHECK_STR(b.why, "closed");
	bed_free(&b);
	CHECK(b.ch.freed);		/* no session: freed at once */
}

/* The peer closes: what we hold is written first, then the pump goes. */
static void
test_peer_close(void)
{
	struct bed b;
	unsigned char buf[8192];
	struct evbuffer *got = evbuffer_new();
	size_t i;
	ssize_t n;

	bed_init(&b, 1 << 20);
	for (i = 0; i < 40; i++) {	/* 320 KB: more than the socket takes */
		size_t j;

		for (j = 0; j < sizeof buf; j++)
			buf[j] = pat(i * sizeof buf + j);
		peer_data(&b.ch, buf, sizeof buf);
	}
	spin(&b);
	peer_close(&b.ch);
	spin(&b);
	CHECK(!b.done);			/* still writing */
	for (i = 0; i < 1000 && !b.done; i++) {
		while ((n = read(b.app, buf, sizeof buf)) > 0)
			evbuffer_add(got, buf, (size_t)n);
		spin(&b);
	}
	while ((n = read(b.app, buf, sizeof buf)) > 0)
		evbuffer_add(got, buf, (size_t)n);
	CHECK(b.done);
	CHECK_STR(b.why, "closed by ssh peer");
	CHECK_INT(evbuffer_get_length(got), 40 * 8192);
	CHECK(is_pattern(got, 0));
	evbuffer_free(got);
	bed_free(&b);
}

/* A peer that sends past any window it could have had: a violation. */
static void
test_overrun(void)
{
	struct bed b;
	size_t len = SSHIO_CHANNEL_MAX + 1;
	char *big = xcalloc(1, len);

	bed_init(&b, 1 << 20);
	peer_data(&b.ch, big, len);
	spin(&b);
	CHECK(b.io.violation[0] != '\0');
	CHECK(b.done);
	CHECK_STR(b.why, "peer overran the channel window");
	free(big);
	bed_free(&b);
}

int
main(void)
{
	log_init("test_pump", 0);
	test_window();
	test_write_pending();
	test_slow_reader();
	test_eof();
	test_peer_close();
	test_overrun();
	return unit_done();
}
