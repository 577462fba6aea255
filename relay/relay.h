/* simtun-relay: SSH server that accepts only device reverse forwards. */
#ifndef SIMTUN_RELAY_H
#define SIMTUN_RELAY_H

#include <sys/queue.h>
#include <time.h>

#include <event2/http.h>
#include <event2/listener.h>
#include <libssh/server.h>

#include "common.h"

struct listen_addr {
	char		*host;
	uint16_t	 port;
};

/* lo-hi, both included (expose_ports = 20000-20999). */
struct port_range {
	unsigned long	 lo, hi;
};

struct relay_config {
	char		*path;
	struct listen_addr *listen;
	size_t		 nlisten;
	char		*host_key;
	char		*authorized_keys;
	char		*forward_address;
	unsigned long	 keepalive_interval;
	unsigned long	 keepalive_count_max;
	unsigned long	 max_startups;	/* = startups_full */
	unsigned int	 startups_begin;
	unsigned int	 startups_rate;
	unsigned int	 startups_full;
	unsigned long	 max_startups_per_source;
	unsigned long	 penalty_failures;
	unsigned long	 penalty_time;
	char		*penalty_exempt;
	char		*metrics_listen;
	unsigned long	 login_grace_time;
	unsigned long	 max_auth_tries;
	unsigned long	 max_forwards;
	unsigned long	 max_conns_per_port;
	unsigned long	 max_conns_per_source;	/* per device port */
	unsigned long	 max_conns;		/* relay-wide */
	unsigned long	 max_sessions_per_key;
	unsigned long	 channel_open_timeout;
	unsigned long	 max_sessions_per_operator;
	unsigned long	 hold_time;
	unsigned long	 max_held;
	unsigned long	 max_held_per_device;
	char		*audit_log;
	char		*control_socket;
	char		*state_db;
	unsigned long	 max_grant_time;
	unsigned long	 max_grants;
	struct port_range expose_ports;
	/* [cluster] (cluster.c); cluster = 0: none, one relay alone */
	int		 cluster;
	char		*cluster_redis;
	char		*cluster_sentinel;
	char		*cluster_master;
	char		*cluster_relay_id;
	char		*cluster_peer_address;
	unsigned long	 cluster_lease_time;
};

/*
 * What a device's traffic cost on the wire, by kind and direction (to and
 * from the device): payload (the forwarded bytes), overhead (SSH framing,
 * handshakes and TCP/IP headers: the wire less the payload), and the part
 * of the overhead that keepalives were.
 */
struct usage_counts {
	uint64_t	 payload_to, payload_from;
	uint64_t	 overhead_to, overhead_from;
	uint64_t	 keepalive_to, keepalive_from;
};
struct usage;

enum session_state { SESSION_KEX, SESSION_AUTH, SESSION_ACTIVE,
    SESSION_CLOSING };

struct conn;
TAILQ_HEAD(conns, conn);
TAILQ_HEAD(opconns, conn);
struct listener;
TAILQ_HEAD(listeners, listener);

/*
 * Who opened a channel or connection: an operator (name and key) or a
 * laptop on a port (operator NULL), from where, and through which peer
 * relay when it came from one (cluster).
 */
struct origin {
	const char	*operator;
	const char	*operator_fp;
	const char	*peer;
	int		 peer_port;
	const char	*via;
};

/* Another relay of the cluster (peer.c), from the directory's heartbeat. */
struct peer {
	TAILQ_ENTRY(peer) entry;
	struct relay	*relay;
	char		 id[64];
	char		 addr[80];
	int		 mark;
	int		 misses;	/* heartbeats it was missing from */
	struct session	*link;		/* our SSH connection to it */
	struct event	*ev_connect;	/* TCP connect under way (fd) */
	int		 fd;
	time_t		 next_try;	/* after a failed link */
};
TAILQ_HEAD(peers, peer);
struct cluster;

struct session {
	TAILQ_ENTRY(session) entry;
	struct relay	*relay;
	uint64_t	 id;
	ssh_session	 s;
	struct sshio	 io;
	enum session_state state;
	char		 peer[64];
	int		 peer_port;
	char		*name;		/* device name (key comment) */
	char		*fp;		/* key fingerprint: identity */
	int		 operator;	/* key has permitopen: an operator */
	int		 no_linger;	/* its ports close with it (kick, key
					   removed): nothing is held for it */
	int		 displaced;	/* a newer session took its ports */
	char		 displaced_by[96];	/* "ADDR port N" */
	struct opconns	 opconns;	/* operator: channels it opened */
	unsigned int	 nopconns;
	struct event	*ev_expiry;	/* operator: the key's expiry-time */
	int		 kex_done;
	time_t		 since;
	struct event	*ev_timer;
	struct event	*ev_free;
	struct ssh_counter_struct rcount;	/* packets, both ways */
	struct ssh_counter_struct scount;	/* socket bytes */
	uint64_t	 last_in_packets;
	uint64_t	 tick_out_bytes;	/* at the last keepalive tick */
	uint32_t	 tick_segs_in;
	struct timespec	 ka_sent;	/* when the last probe went out */
	uint64_t	 ka_sent_packets;
	long		 rtt_ms;	/* last keepalive round trip, -1 unknown */
	unsigned int	 ka_missed;
	unsigned int	 auth_tries;
	unsigned int	 none_seen;	/* "none" requests (1st is free) */
	unsigned int	 nforwards;
	struct conns	 conns;		/* forwarded connections, every state */
	unsigned int	 nconns;
	struct listeners owned;		/* the ports this session holds */
	uint64_t	 bytes_in;	/* from the device (closed conns) */
	uint64_t	 bytes_out;	/* to the device (closed conns) */
	unsigned int	 takeovers;
	/* keepalive packets: our probes and the device's answers, the
	 * device's probes and our answers (usage.c prices them) */
	uint64_t	 ka_probes_out, ka_answers_in;
	uint64_t	 ka_probes_in, ka_answers_out;
	struct usage	*usage;		/* the device's record (usage.c) */
	struct session	*fpnext;	/* sessions of one key (session.c) */
	/* cluster (cluster.c, peer.c) */
	uint64_t	 epoch;		/* device: its directory epoch, 0 unset */
	int		 moved;		/* device: it came up on another relay;
					   its ports do not linger */
	int		 moving;	/* device: up on another relay, probed
					   (session_probe_moved) */
	int		 peer_relay;	/* a peer relay logged in (host key) */
	int		 link;		/* our link to a peer relay (peer.c) */
	struct peer	*peerp;		/* link: whose */
	int		 indexed;
	struct usage_counts usage_mark;	/* what it has been counted for */
	struct ssh_server_callbacks_struct scb;
	struct ssh_callbacks_struct cb;
};
TAILQ_HEAD(sessions, session);

/*
 * A device port: a listening socket owned by one session at a time; or a
 * named forward (name set, no socket), reached by operators only.
 */
struct listener {
	TAILQ_ENTRY(listener) entry;
	TAILQ_ENTRY(listener) sentry;	/* in owner->owned */
	struct relay	*relay;
	char		*name;		/* named forward, else NULL */
	struct listener	*nnext;		/* named forwards by name */
	int		 port;
	char		*bind_req;	/* address the client asked to bind */
	struct evconnlistener *evl;
	struct session	*owner;
	struct accept_pause ap;		/* accepting paused after EMFILE */
	/* no owner: lingering hold_time for the key that had it */
	char		*linger_fp;
	char		*linger_name;
	time_t		 linger_since;
	struct event	*ev_linger;
};

/* A connection or operator channel waiting for its device (held.c). */
struct held {
	TAILQ_ENTRY(held) entry;
	struct relay	*relay;
	char		*device;
	int		 port;
	struct listener	*l;		/* the lingering port it came to */
	int		 fd;		/* laptop socket / socket pair end */
	struct session	*opsess;	/* operator: its session and half */
	struct pump	*op;
	char		*operator;
	char		*operator_fp;
	char		 peer[64];
	int		 peer_port;
	struct timespec	 started;
	uint64_t	 grant;		/* came under this grant or expose */
	char		*via;		/* came through this peer relay */
	uint64_t	 sent_epoch;	/* sent to a peer relay for the device's
					   session of this epoch (cluster) */
	int		 closing;
	struct event	*ev_timeout;
	struct event	*ev_free;
};
TAILQ_HEAD(helds, held);

/*
 * Time-limited access (grant.c): a grant lets one key open channels to
 * the devices matching a pattern; an expose opens a public port to one
 * device. Both end by themselves at expires (or revoke), closing what
 * they opened, and outlive a restart of the relay in state_db.
 */
enum grant_kind { GRANT_ACCESS, GRANT_EXPOSE };
struct grant {
	TAILQ_ENTRY(grant) entry;
	struct relay	*relay;
	uint64_t	 id;
	enum grant_kind	 kind;
	char		*operator;	/* access: the key's comment, and */
	char		*operator_fp;	/* the key it is for */
	char		*target;	/* access: a device pattern; expose:
					   the device */
	int		 port;		/* 0: any (access only) */
	char		*sources;	/* --from, NULL: anywhere */
	int		 listen;	/* expose: the public port */
	time_t		 created;
	time_t		 expires;
	unsigned long	 secs;		/* --for, when made by this relay */
	char		*asked_by;
	time_t		 ended;		/* 0: in force */
	char		*end_reason;
	int		 dirty;		/* not yet in state_db */
	uint64_t	 opened;	/* channels/connections under it */
	struct evconnlistener *evl;	/* expose */
	struct accept_pause ap;
	struct event	*ev_end;
};
TAILQ_HEAD(grants, grant);

enum conn_state { CONN_OPENING, CONN_OPEN, CONN_CLOSING, CONN_BURIED };

/*
 * One forwarded connection for its whole life: a laptop's TCP connection
 * to a device port joined to a channel to the device. Opening (channel
 * asked for), open (bytes move through its pump), closing (socket and
 * pump freed from the loop), buried (the channel waits in the session's
 * graveyard for the device's answer or CLOSE). Always on its session's
 * conns list and counted against the caps until the device lets go of
 * the channel; one conn_close.
 */
struct conn {
	TAILQ_ENTRY(conn) entry;
	struct session	*sess;
	enum conn_state	 state;
	struct pump	*p;		/* owns the socket and the channel */
	/*
	 * An operator's direct-tcpip channel: a second pump joins the
	 * operator's channel to the other end of a socketpair whose first
	 * end is p's socket. Each half that finishes shuts its end for
	 * writing; the conn closes when both did (or a grace time later).
	 */
	struct session	*opsess;
	TAILQ_ENTRY(conn) opentry;	/* in opsess->opconns */
	struct pump	*op;
	int		 dev_done;
	int		 op_done;
	char		*operator;	/* key comment, NULL: a laptop */
	char		*operator_fp;
	char		*target;	/* the name asked for (direct-tcpip) */
	int		 port;		/* device port */
	char		*bind_req;	/* echoed in forwarded-tcpip */
	char		 peer[64];	/* the laptop */
	int		 peer_port;
	struct timespec	 started;
	uint64_t	 grant;		/* opened under this grant or expose */
	char		*via;		/* came through this peer relay */
	uint64_t	 sent_epoch;	/* link: the device session's epoch */
	struct event	*ev_timeout;	/* channel open timeout */
	struct event	*ev_free;
};

struct relay {
	struct event_base *base;
	struct relay_config conf;
	ssh_bind	 bind;
	char		*host_fp;
	ssh_key		 host_priv;	/* a peer relay logs in with it */
	struct authkeys	 keys;
	struct authkey_index keyidx;	/* keys by fingerprint */
	struct sessions	 sessions;
	struct listeners listeners;
	struct listener	**byport;	/* 65536 slots: listeners by port */
	struct evconnlistener **evls;
	struct accept_pause *aps;	/* one per evls */
	size_t		 nevls;
	unsigned int	 nunauth;
	unsigned int	 nconns;	/* laptop connections, relay-wide */
	unsigned long	 conns_limit;	/* max_conns, clamped to the fd limit */
	time_t		 accept_err_logged;
	uint64_t	 accept_err_suppressed;
	uint64_t	 next_id;
	uint64_t	 refused;
	uint64_t	 takeovers;
	uint64_t	 ka_failures;
	uint64_t	 clones;	/* keys seen live in two places */
	int		 quitting;
	int		 accept_paused;
	struct control	*ctl;
	struct evhttp	*http;
	struct helds	 held;
	unsigned int	 nheld;
	int		 audit_fd;	/* audit_log, -1 when unset */
	struct grants	 grants;	/* in force, and ended ones not yet
					   written to state_db */
	uint64_t	 next_grant;
	struct state	*state;		/* state_db */
	struct cluster	*cluster;	/* [cluster], NULL: one relay alone */
	char		 hostname[64];	/* "relay" in audit events */
};

/* config.c: every relay.conf key is one line of its config_keys[] */
void	config_defaults(struct relay_config *);
int	config_load(struct relay_config *, const char *, char *, size_t);
int	config_load_string(struct relay_config *, const char *, const char *,
	    char *, size_t);
int	config_reload(struct relay_config *, struct relay_config *, char *,
	    size_t);
void	config_clear(struct relay_config *);

/* server.c */
int	server_load_hostkey(struct relay *, char *, size_t);
int	server_listen(struct relay *);
void	server_close(struct relay *);
void	server_throttle(struct relay *);
void	server_limits(struct relay *);

/* metrics.c */
int	metrics_open(struct relay *);
void	metrics_label(struct evbuffer *, const char *);
void	metrics_close(struct relay *);

/* penalty.c */
int	penalty_admit(struct relay *, const char *, const char **);
void	penalty_unauth(struct relay *, const char *, int);
void	penalty_auth_failed(struct relay *, const char *);
void	penalty_gc(void);
void	penalty_clear(void);
void	penalty_set_clock(time_t (*)(void));
unsigned int penalty_nsources(void);

/*
 * A session is silent when a keepalive probe it owes an answer to has been
 * out for a second or more (it was probed because it had said nothing for
 * keepalive_interval; the device may be rebooting half-open): with
 * hold_time, new connections for it are held, and served when it answers
 * or its next session comes.
 */
static inline int
session_silent(const struct session *s)
{
	struct timespec now;

	if (s->ka_sent.tv_sec == 0 || s->ka_missed == 0)
		return 0;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return now.tv_sec - s->ka_sent.tv_sec >= 2 ||
	    (now.tv_sec - s->ka_sent.tv_sec == 1 &&
	    now.tv_nsec >= s->ka_sent.tv_nsec);
}

/* Seconds since t (CLOCK_MONOTONIC). */
static inline double
relay_age(const struct timespec *t)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - t->tv_sec) +
	    (double)(now.tv_nsec - t->tv_nsec) / 1e9;
}

/* session.c */
void	session_accept(struct relay *, int, int, struct sockaddr *);
void	session_close(struct session *, const char *, ...)
	    PRINTFLIKE(2, 3);
void	session_free(struct session *);
struct authkey *session_authkey(struct session *);
struct session *session_by_fp(const char *, struct session *);
void	session_displace(struct session *, struct session *);
void	session_pass(struct session *);
void	session_probe_moved(struct session *, const char *, uint64_t);
struct session *session_link_new(struct relay *, int, const char *, int,
	    void (*)(void *, short), void *);
void	session_link_up(struct session *);
int	session_reload_keys(struct relay *);

/* control.c */
void	relay_control(const char *, struct evbuffer *,
	    const struct control_peer *, void *);

/* devices.c */
void	devices_session_closed(struct session *, uint64_t, uint64_t);
void	devices_list(struct relay *, struct evbuffer *, int);
void	devices_clear(void);
void	devices_displaced(struct session *);
const char *devices_clone_check(struct relay *, struct session *,
	    const char *, int *);
struct audit;
void	devices_audit(const struct audit *);
void	devices_metrics(struct evbuffer *);

/* operator.c */
int	operator_open(struct session *, ssh_message);
void	operator_authenticated(struct session *, struct authkey *);
int	operator_known_device(struct relay *, const char *);

/* audit.c: open / deny / close events: log, journald fields, JSON lines */
struct audit {
	const char	*event;		/* "open", "deny", "close" */
	const char	*operator;	/* NULL: a bare port connection */
	const char	*operator_fp;
	const char	*source;
	int		 source_port;
	const char	*device;
	int		 port;
	uint64_t	 to_device;
	uint64_t	 from_device;
	double		 duration;
	const char	*reason;
	uint64_t	 grant;		/* under a grant or expose, 0: none */
	const char	*asked_by;	/* grant, expose, revoke: who asked */
	const char	*via;		/* the peer relay it came through or
					   went to (cluster) */
};
void	audit_init(struct audit *, const char *, const char *, const char *,
	    const char *, int, const char *, int, const char *);
int	audit_open(struct relay *);
void	audit_close(struct relay *);
void	audit_event(struct relay *, const struct audit *, int, const char *,
	    ...) PRINTFLIKE(4, 5);

/* listener.c */
int	listener_request(struct session *, const char *, int, const char **);
struct listener *listener_find_name(struct relay *, const char *, int);
int	listener_cancel(struct session *, const char *, int);
void	listener_release(struct session *);
void	listener_unlinger(struct listener *);
void	listener_serve_held(struct session *);
void	listener_free(struct listener *);
struct listener *listener_find(struct relay *, int);

/* conn.c */
void	conn_accept(struct listener *, int, struct sockaddr *, uint64_t);
int	conn_direct(struct session *, struct session *, int, const char *,
	    const char *, uint64_t, ssh_message, const struct origin *,
	    const char **);
void	conn_origin(struct session *, struct origin *);
void	conn_kick_ops(struct session *);
void	conn_close_ops(struct session *, const char *);
void	conn_release_ops(struct session *);
struct pump *conn_op_accept(struct session *, ssh_message, int *,
	    const char **);
int	conn_adopt(struct session *, int, const char *, int,
	    struct session *, struct pump *, const struct origin *,
	    const struct timespec *, const char *, uint64_t, const char **);
void	conn_close_grant(struct relay *, uint64_t, const char *);

/* held.c */
const char *held_admit(struct relay *, const char *);
struct held *held_add(struct relay *, const char *, int, struct listener *,
	    int, struct session *, struct pump *, const struct origin *,
	    const struct timespec *, const char **);
int	held_hand(struct held *, struct session *, int, const char *,
	    uint64_t);
void	held_serve(struct relay *, struct listener *);
void	held_serve_live(struct relay *);
void	held_drop_operator(struct session *);
void	held_drop_listener(struct listener *, const char *);
unsigned int held_count(struct relay *, const char *);
void	held_clear(struct relay *);
void	held_drop_grant(struct relay *, uint64_t, const char *);
void	conn_close(struct conn *, const char *, ...) PRINTFLIKE(2, 3);
void	conn_kick_all(struct session *);
void	conn_close_all(struct session *, const char *);
void	conn_rehold_opening(struct session *, const char *);
void	conn_free_all(struct session *);
int	conn_bytes(struct session *, uint64_t *, uint64_t *);

/* grant.c: grants and exposes (simtunctl grant, grants, revoke, expose) */
void	grant_request(struct relay *, int, char **, struct evbuffer *,
	    const struct control_peer *);
struct grant *grant_permits(struct relay *, struct session *, const char *,
	    int, const char **);
int	grant_restore(struct relay *, struct grant *);
void	grant_list(struct relay *, struct evbuffer *, int);
void	grant_forget(struct grant *);
void	grant_clear(struct relay *);
unsigned int grant_count(struct relay *, enum grant_kind);

/* state.c: the SQLite state database (state_db) */
struct state;
int	state_open(struct relay *, char *, size_t);
void	state_save(struct relay *);
void	state_tick(struct relay *);
void	state_close(struct relay *);
int	state_usage_begin(struct relay *);
int	state_usage_end(struct relay *, int);
int	state_usage_add(struct relay *, const char *, const char *,
	    const struct usage_counts *);
typedef void (*state_usage_cb)(const char *, const char *,
	    const struct usage_counts *, void *);
int	state_usage_days(struct relay *, const char *, const char *,
	    state_usage_cb, void *);

/* cluster.c: the Redis directory ([cluster]) */
int	cluster_start(struct relay *, char *, size_t);
void	cluster_stop(struct relay *);
void	cluster_leave(struct relay *);
void	cluster_session_up(struct session *);
void	cluster_session_down(struct session *);
void	cluster_moved(struct session *);
struct peer *cluster_peer(struct relay *, const char *);
struct peer *cluster_next_peer(struct relay *, struct peer *);
struct peer *cluster_route(struct relay *, const char *, uint64_t *);
const char *cluster_holder(struct relay *, const char *);
int	cluster_device(struct relay *, const char *, const char **, time_t *);
void	cluster_status(struct relay *, struct evbuffer *);
void	cluster_metrics(struct relay *, struct evbuffer *);

/* peer.c: links to the other relays of a cluster */
struct peer *peer_new(struct relay *, const char *);
void	peer_free(struct peer *, const char *);
struct session *peer_link(struct peer *);
const char *peer_state(struct peer *);
unsigned int peer_channels(struct peer *);
void	peer_serve_held(struct relay *);
void	peer_link_closed(struct session *);

/* usage.c: bytes on the wire per device, by kind and direction */
void	usage_attach(struct session *);
void	usage_sample(struct session *);
void	usage_sample_all(struct relay *);
void	usage_session_counts(struct session *, struct usage_counts *);
void	usage_json(struct evbuffer *, const struct usage_counts *);
void	usage_request(struct relay *, int, char **, struct evbuffer *);
void	usage_flush(struct relay *);
void	usage_tick(struct relay *);
void	usage_metrics(struct relay *, struct evbuffer *);
void	usage_clear(void);

#endif
