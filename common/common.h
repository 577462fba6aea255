/* simtun: code shared by simtun-relay and simtun-agent. */
#ifndef SIMTUN_COMMON_H
#define SIMTUN_COMMON_H

#include <sys/types.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>
#include <libssh/libssh.h>
#include <libssh/callbacks.h>

#define SIMTUN_VERSION "0.1.0"

/* glibc's sys/queue.h lacks the _SAFE variants. */
#ifndef TAILQ_FOREACH_SAFE
#define TAILQ_FOREACH_SAFE(var, head, field, tvar)			\
	for ((var) = TAILQ_FIRST(head);					\
	    (var) != NULL && ((tvar) = TAILQ_NEXT(var, field), 1);	\
	    (var) = (tvar))
#endif
#ifndef TAILQ_CONCAT
#define TAILQ_CONCAT(head1, head2, field) do {				\
	if (!TAILQ_EMPTY(head2)) {					\
		*(head1)->tqh_last = (head2)->tqh_first;		\
		(head2)->tqh_first->field.tqe_prev = (head1)->tqh_last;	\
		(head1)->tqh_last = (head2)->tqh_last;			\
		TAILQ_INIT((head2));					\
	}								\
} while (0)
#endif

#ifndef __dead
#define __dead __attribute__((__noreturn__))
#endif
#define PRINTFLIKE(a, b) __attribute__((__format__(__printf__, a, b)))

/* log.c */
enum log_level { LOG_LVL_ERROR = 3, LOG_LVL_WARN = 4, LOG_LVL_INFO = 6,
    LOG_LVL_DEBUG = 7 };
void	log_init(const char *, int);
void	log_set_verbose(int);
int	log_get_verbose(void);
void	log_msg(int, const char *, ...) PRINTFLIKE(2, 3);
void	log_vmsg(int, const char *, va_list);
void	log_debug(const char *, ...) PRINTFLIKE(1, 2);
void	log_info(const char *, ...) PRINTFLIKE(1, 2);
void	log_warn(const char *, ...) PRINTFLIKE(1, 2);
void	log_warnx(const char *, ...) PRINTFLIKE(1, 2);
void	log_error(const char *, ...) PRINTFLIKE(1, 2);
__dead void fatal(const char *, ...) PRINTFLIKE(1, 2);
__dead void fatalx(const char *, ...) PRINTFLIKE(1, 2);

/* escape.c: peer text for logs and status (\xNN, capped) */
#define ESC_MAX	128
char	*escape_str(char *, size_t, const char *, size_t);
const char *esc(const char *);
int	 str_printable(const char *);

/* xmalloc.c */
void	*xmalloc(size_t);
void	*xcalloc(size_t, size_t);
void	*xreallocarray(void *, size_t, size_t);
char	*xstrdup(const char *);
char	*xstrndup(const char *, size_t);
uint32_t str_hash(const char *);
int	 xasprintf(char **, const char *, ...) PRINTFLIKE(2, 3);

/* config.c: helpers for the inih-based loaders of both daemons */
struct config_ctx {
	const char	*file;
	int		 line;		/* line being parsed (1-based) */
	char		 err[512];	/* first error, "file:line: message" */
	int		 nerr;
};
typedef int (*config_handler)(struct config_ctx *, void *, const char *,
    const char *, const char *);
int	config_parse_file(const char *, config_handler, void *, char *, size_t);
int	config_parse_string(const char *, const char *, config_handler, void *,
	    char *, size_t);
int	config_error(struct config_ctx *, const char *, ...) PRINTFLIKE(2, 3);
int	parse_uint(const char *, unsigned long, unsigned long, unsigned long *,
	    const char **);
int	parse_bool(const char *, int *, const char **);
int	parse_port(const char *, uint16_t *, const char **);
int	parse_hostport(const char *, char **, uint16_t *, int, const char **);
int	parse_seconds(const char *, unsigned long, unsigned long,
	    unsigned long *, const char **);

/*
 * authkeys.c: OpenSSH authorized_keys with permitlisten, permitopen, from,
 * expiry-time, restrict. A key with permitopen is an operator's.
 */
struct permit {
	char		*host;		/* NULL = any; permitopen: a pattern */
	int		 port;		/* 0 = any port ("*") */
};
struct authkey {
	TAILQ_ENTRY(authkey) entry;
	ssh_key		 key;
	char		*keytype;
	char		*fp;		/* "SHA256:..." as ssh-keygen -l prints */
	char		*name;		/* the comment: device name */
	struct permit	*permits;	/* permitlisten */
	size_t		 npermits;
	struct permit	*opens;		/* permitopen */
	size_t		 nopens;
	time_t		 expiry;	/* expiry-time, 0 = none */
	char		*from;		/* pattern list, NULL = anywhere */
	int		 restricted;
	int		 line;
	struct authkey	*fpnext;	/* authkey_index chain */
};
TAILQ_HEAD(authkeys, authkey);
/* Keys by fingerprint, so a fleet of thousands is not scanned per login. */
struct authkey_index {
	struct authkey	**buckets;
	size_t		  nbuckets;
};
int	 authkeys_parse_line(const char *, struct authkey **, char *, size_t);
int	 authkeys_load(const char *, struct authkeys *, char *, size_t);
void	 authkeys_free(struct authkeys *);
void	 authkey_free(struct authkey *);
struct authkey *authkeys_find(struct authkeys *, ssh_key);
void	 authkey_index_init(struct authkey_index *, size_t);
void	 authkey_index_add(struct authkey_index *, struct authkey *);
void	 authkey_index_build(struct authkey_index *, struct authkeys *);
void	 authkey_index_free(struct authkey_index *);
struct authkey *authkey_index_fp(struct authkey_index *, const char *);
struct authkey *authkey_index_key(struct authkey_index *, ssh_key);
int	 authkey_permits(const struct authkey *, const char *, int);
int	 authkey_permits_name(const struct authkey *, const char *, int);
int	 authkey_may_open(const struct authkey *, const char *, int);
int	 authkey_expired(const struct authkey *, time_t);
int	 authkeys_parse_time(const char *, time_t *);
int	 authkey_from_ok(const struct authkey *, const char *);
int	 match_addr_list(const char *, const char *);
int	 addr_list_check(const char *, char *, size_t);
int	 match_pattern(const char *, const char *);

/* keys.c */
char	*key_fingerprint(ssh_key);
char	*key_fingerprint_line(ssh_key, const char *);
int	 key_file_private_ok(const char *, char *, size_t);

/* net.c */
int	 net_nonblock(int);
int	 net_addrstr(const struct sockaddr *, char *, size_t, int *);
void	 net_user_timeout(int, unsigned int);
void	 net_keepalive(int);
int	 net_tcp_probes(int, unsigned int, unsigned int);
int	 net_addr_is_name(const char *);
struct evconnlistener;
struct accept_pause {
	struct evconnlistener *evl;
	struct event	*ev;
	int		 paused;
	void		(*resume)(void *);
	void		*arg;
};
void	 accept_pause_init(struct accept_pause *, struct event_base *,
	    struct evconnlistener *, void (*)(void *), void *);
void	 accept_pause_error(struct accept_pause *, const char *);
void	 accept_pause_clear(struct accept_pause *);
int	 net_resolve_listen(const char *, uint16_t, struct sockaddr_storage *,
	    socklen_t *, const char **);

/*
 * sshio.c: drive one non-blocking libssh session from libevent. The owner
 * gets a callback on every readiness event and decides what to do
 * (key exchange, connect, or sshio_poll), then calls sshio_flush.
 */
struct evbuffer;
struct sshio_grave;
TAILQ_HEAD(sshio_graves, sshio_grave);
struct sshio {
	struct event_base *base;
	ssh_session	 s;
	ssh_event	 sev;
	int		 fd;
	struct event	*ev_rd;
	struct event	*ev_wr;
	void		(*cb)(void *, short);
	void		*arg;
	struct sshio_graves graves;	/* channels we closed, see sshio_bury */
	unsigned int	 ngraves;
	unsigned int	 max_graves;	/* more is a violation; 0: no limit */
	int		 cleared;	/* sshio_clear ran */
	char		 violation[128]; /* set when the peer broke the rules */
};
void	sshio_init(struct sshio *, struct event_base *, ssh_session, int,
	    void (*)(void *, short), void *);
int	sshio_attach(struct sshio *);
int	sshio_poll(struct sshio *);
int	sshio_flush(struct sshio *);
int	sshio_write_pending(struct sshio *);
void	sshio_bury(struct sshio *, ssh_channel, int, void (*)(void *),
	    void *);
void	sshio_prime(ssh_channel, struct evbuffer *);
void	sshio_sweep(struct sshio *);
void	sshio_violation(struct sshio *, const char *, ...) PRINTFLIKE(2, 3);
int	sshio_closed_channel(ssh_channel);
void	sshio_clear(struct sshio *);

/*
 * The most a peer may leave buffered in libssh on one channel. libssh
 * 0.10.6 grants windows of up to WINDOWBASE (1,280,000) bytes when less
 * than WINDOWLIMIT (640,000) is outstanding, so an honest peer never has
 * more than 1,920,000 bytes in flight; anything past this bound is data
 * beyond the window it was granted.
 */
#define SSHIO_CHANNEL_MAX	(1280000 + 640000 + 65536)
#define SSHIO_MAX_GRAVES	256	/* closed channels awaiting the peer */
#define SSHIO_PRIME_LEN		64001	/* > libssh's first window (64000) */

/*
 * pump.c: move bytes between a TCP socket and an SSH channel, both ways,
 * with flow control: the socket is not read while the channel's window is
 * closed or the session has unsent output, and the channel's data is left
 * in libssh (so its window does not grow) while the socket is not writable.
 */
struct pump {
	TAILQ_ENTRY(pump) entry;
	struct event_base *base;
	struct sshio	*io;
	ssh_channel	 ch;
	int		 fd;
	struct event	*ev_rd;
	struct event	*ev_wr;
	struct event	*ev_done;	/* deferred teardown */
	struct evbuffer	*out;		/* channel -> fd, bounded */
	struct evbuffer	*in;		/* fd -> channel leftover, small */
	size_t		 ssh_rest;	/* bytes libssh still holds for us */
	int		 fd_eof;	/* fd gave EOF, eof sent on channel */
	int		 ch_eof;	/* channel gave EOF, fd shut for write */
	int		 ch_closed;	/* peer sent channel close */
	int		 primed;	/* open seen, full window granted */
	int		 dead;
	const char	*why;
	void		(*done)(struct pump *, void *);
	uint64_t	 bytes_in;	/* fd -> channel */
	uint64_t	 bytes_out;	/* channel -> fd */
	struct ssh_channel_callbacks_struct cbs;
	void		*owner;
};
TAILQ_HEAD(pumps, pump);
struct pump *pump_new(struct event_base *, struct sshio *, ssh_channel, int,
	    void (*)(struct pump *, void *), void *);
int	 pump_kick(struct pump *);
void	 pump_close(struct pump *, const char *);
void	 pump_free(struct pump *, void (*)(void *), void *);

/*
 * control.c: the Unix control socket. A client sends one line; the
 * handler appends the answer to out; the connection is then closed.
 */
struct evbuffer;
struct control;
/* Who sent a request: SO_PEERCRED of the client, as text for audit. */
struct control_peer {
	long		 pid;		/* -1: unknown */
	long		 uid;
	char		 who[64];	/* "uid 0 pid 123 (simtunctl)" */
};
typedef void (*control_handler)(const char *, struct evbuffer *,
	    const struct control_peer *, void *);
struct control *control_open(struct event_base *, const char *,
	    control_handler, void *);
void	control_close(struct control *);
void	json_string(struct evbuffer *, const char *);
void	fmt_duration(char *, size_t, long long);
void	fmt_bytes(char *, size_t, uint64_t);

#endif
