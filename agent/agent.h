/* simtun-agent: the device side, one reverse-forwarding ssh session. */
#ifndef SIMTUN_AGENT_H
#define SIMTUN_AGENT_H

#include <sys/queue.h>
#include <sys/socket.h>
#include <stdint.h>
#include <time.h>

#include "common.h"

struct agent;
struct session;

#define AGENT_STABLE_SECS	60	/* up this long: backoff starts over */
#define AGENT_NETLINK_DELAY_MS	150	/* let link, address, route settle */

/* One [forward NAME]: remote [bind:]port on the relay -> local host:port. */
struct forward {
	TAILQ_ENTRY(forward) entry;
	char		*name;
	char		*remote_host;	/* NULL = "" (all addresses) */
	uint16_t	 remote_port;
	char		*local_host;
	uint16_t	 local_port;
	struct sockaddr_storage local_ss;
	socklen_t	 local_len;
	int		 line;
};
TAILQ_HEAD(forwards, forward);

/* One [path NAME]: interface and/or source address, own relay address. */
struct path {
	TAILQ_ENTRY(path) entry;
	char		*name;
	char		*interface;	/* SO_BINDTODEVICE */
	char		*source;	/* bind() before connect */
	char		*host;		/* relay address on this path */
	uint16_t	 port;		/* 0 = [relay] port */
	int		 index;		/* 0 = preferred */
	int		 line;
	int		 host_line;	/* where host and port were set */
	int		 port_line;
};
TAILQ_HEAD(paths, path);

/* One [relay] (the only one) or [relay NAME] (tried in file order). */
struct relay_conf {
	TAILQ_ENTRY(relay_conf) entry;
	char		*name;		/* "default" for the unnamed [relay] */
	int		 named;		/* [relay NAME] */
	char		*host;
	uint16_t	 port;
	char		*host_key;	/* "SHA256:..." */
	char		*known_hosts;
	int		 index;		/* 0 = preferred */
	int		 line;		/* its first header */
	int		 host_line;
	int		 known_hosts_line;
};
TAILQ_HEAD(relay_confs, relay_conf);

#define AGENT_MAX_ACTIVE	2	/* relays_active at most */

struct agent_config {
	char		*file;
	char		*identity;
	char		*user;
	unsigned long	 ka_interval;
	unsigned long	 ka_count;
	unsigned long	 backoff_initial;
	unsigned long	 backoff_max;
	unsigned long	 relays_active;	/* sessions to as many relays at once */
	int		 relays_active_line;
	struct relay_confs relays;
	int		 nrelays;
	char		*control_socket;
	struct forwards	 forwards;
	struct paths	 paths;
	int		 npaths;
	ssh_key		 key;		/* loaded identity */
};

/* config.c */
struct agent_config *config_load(const char *, char *, size_t);
struct agent_config *config_parse_text(const char *, const char *, char *,
	    size_t);
void	 config_free(struct agent_config *);
int	 config_same_session(struct agent_config *, struct agent_config *);
unsigned int config_connect_timeout(struct agent_config *);

struct relay_conf *config_relay(struct agent_config *, int);

/* path.c: the relay address and port a [path] reaches; paths by index */
const char *path_host(const struct relay_conf *, const struct path *);
uint16_t path_port(const struct relay_conf *, const struct path *);
int	 path_count(struct agent_config *);
struct path *path_by_index(struct agent_config *, int);
const char *path_name(const struct path *);

/* backoff.c: exponential, full jitter, bounded by [initial, max] */
struct backoff {
	unsigned long	 initial_ms;
	unsigned long	 max_ms;
	unsigned int	 n;
};
void	 backoff_init(struct backoff *, unsigned long, unsigned long);
unsigned long backoff_next(struct backoff *);
void	 backoff_reset(struct backoff *);

/* Where and how to reach the relay on one path (dial.c, probe.c). */
struct dial_target {
	struct event_base *base;
	struct evdns_base *dns;
	const char	*host;
	uint16_t	 port;
	struct path	*path;		/* NULL = default route */
	unsigned int	 timeout;	/* seconds for DNS and connect */
	struct relay_conf *relay;	/* whose host key to expect */
};

/* dial.c: resolve and connect on a path with a deadline */
struct dial;
typedef void (*dial_cb)(struct dial *, int, const char *, void *);
struct dial *dial_start(const struct dial_target *, dial_cb, void *);
void	 dial_cancel(struct dial *);
const char *dial_peer(struct dial *);

/* probe.c: does a path reach the relay (connect + banner, no login)? */
struct probe;
typedef void (*probe_cb)(struct probe *, int, const char *, void *);
struct probe *probe_start(const struct dial_target *, probe_cb, void *);
void	 probe_cancel(struct probe *);

/*
 * usage.c: bytes on the wire per path, since the agent started and today
 * (UTC). A session's counters are sampled (status, a timer, its close) and
 * what grew since the last sample is booked to the sample's day.
 */
struct usage_sample {
	uint64_t	 sent;		/* ssh bytes written to the socket */
	uint64_t	 received;	/* ssh bytes read from it */
	uint32_t	 segs_out;	/* TCP segments (TCP_INFO, Linux 4.2) */
	uint32_t	 segs_in;
	unsigned int	 hdr;		/* IP + TCP header bytes per segment, 0 =
					   segments unknown */
};
struct usage {
	uint64_t	 sent, received;
	uint64_t	 tcp_sent, tcp_received;	/* estimated headers */
};
struct path_usage {
	TAILQ_ENTRY(path_usage) entry;
	char		*name;
	struct usage	 total;		/* since the agent started */
	struct usage	 today;		/* since 00:00 UTC of book->day */
	int		 tcp_unknown;	/* a session without TCP_INFO segments */
	int		 mark;
};
TAILQ_HEAD(path_usages, path_usage);
struct usage_book {
	struct path_usages paths;	/* in the order first seen */
	long		 day;		/* UTC day number of the today counters */
};
/* One live session's counters already booked (one per relay slot). */
struct usage_live {
	const void	*sess;		/* session whose counters are in seen */
	struct usage_sample seen;
};
void	 usage_init(struct usage_book *);
void	 usage_free(struct usage_book *);
struct path_usage *usage_path(struct usage_book *, const char *);
void	 usage_roll(struct usage_book *, time_t);
void	 usage_book(struct usage_book *, struct usage_live *, const void *,
	    const char *, const struct usage_sample *, int);
void	 usage_tcp(int, struct usage_sample *);

/* session.c: one ssh connection to the relay and its forwards */
enum session_state {
	SESS_DIAL, SESS_HANDSHAKE, SESS_AUTH, SESS_FORWARD, SESS_UP, SESS_DEAD
};
struct session;
/* What a session tells its owner: up (again), or closed (then free it). */
struct session_report {
	int		 closed;	/* 0: forwards granted; 1: it ended */
	int		 was_up;	/* it had been up */
	int		 path_dead;	/* the path went silent */
	time_t		 up_secs;	/* how long it was up */
	const char	*reason;	/* why it closed */
};
typedef void (*session_cb)(struct session *, const struct session_report *,
	    void *);
struct session *session_new(const struct dial_target *, struct agent_config *,
	    session_cb, void *);
void	 session_close(struct session *, int, const char *, ...)
	    PRINTFLIKE(3, 4);
void	 session_disconnect(struct session *);
void	 session_free(struct session *);
int	 session_is_up(struct session *);
int	 session_forward_granted(struct session *, int);
struct path *session_path(struct session *);
struct relay_conf *session_relay(struct session *);
void	 session_usage(struct session *, struct usage_sample *);

/* forward.c: forwarded channels from the relay -> local connections */
struct fwd_chans {
	struct pumps	 pumps;
	int		 n;
	struct sshio	*io;
	struct agent_config *conf;
	const int	*asked;		/* per forward: requested from the relay */
	void		(*flush)(void *);	/* owner pushes queued output */
	void		*arg;
};
void	 forward_init(struct fwd_chans *, struct sshio *, struct agent_config *,
	    const int *, void (*)(void *), void *);
int	 forward_open(struct fwd_chans *, ssh_message);
void	 forward_kick_all(struct fwd_chans *);
void	 forward_free_all(struct fwd_chans *);

/* netlink.c: link/address/route changes */
struct netlink;
struct netlink *netlink_open(struct event_base *, void (*)(void *), void *);
void	 netlink_close(struct netlink *);

/*
 * slot.c: one of the relays_active sessions the agent keeps, each to its
 * own relay: which relay and path to try next and when (paths in order,
 * then the next relay no other slot uses, backoff after a full round),
 * and probes that bring it back to a better relay or path.
 */
struct slot {
	struct agent	*agent;
	int		 idx;		/* 0 .. relays_active - 1 */
	struct session	*sess;
	struct backoff	 bo;
	struct event	*ev_retry;
	struct event	*ev_probe;
	struct probe	*probe;
	int		 probe_rel;	/* what the probe checks */
	int		 probe_path;
	int		 rel;		/* relay index used, tried or waited for */
	int		 cur;		/* path index being tried / used */
	int		 cycle_start;	/* path the planned cycle begins at */
	int		 cycle_tried;	/* paths tried on rel in this cycle */
	int		 relays_failed;	/* relays given up on since the last
					   backoff or stable session */
	int		 waiting;	/* in backoff */
	int		 moving;	/* closing to move to move_rel/move_path */
	int		 move_rel;
	int		 move_path;
	int		 move_try;	/* this attempt is such a move */
	unsigned int	 move_fails;	/* moves that failed in a row */
	time_t		 probe_after;	/* no probe before (monotonic s) */
	char		 last_error[256];
	char		 status[512];	/* what this slot is doing */
	time_t		 state_since;
	struct timespec	 retry_at;	/* when waiting in backoff */
	struct usage_live ulive;	/* its session's bytes already booked */
};
void	 slot_init(struct slot *, struct agent *, int);
void	 slot_reset(struct slot *);
void	 slot_start(struct slot *);
void	 slot_stop(struct slot *);
int	 slot_cancel(struct slot *);
void	 slot_free(struct slot *);
void	 slot_netlink(struct slot *);
void	 slot_set_timers(struct slot *, struct agent_config *);
struct relay_conf *slot_relay(struct slot *);
struct path *slot_path(struct slot *);
const char *slot_state(struct slot *);
long long slot_retry_ms(struct slot *);

/* agent.c: the slots, reload, stop, status */
struct agent {
	struct event_base *base;
	struct evdns_base *dns;
	struct agent_config *conf;
	struct agent_config *next_conf;	/* reload waiting for the closes */
	struct slot	 slots[AGENT_MAX_ACTIVE];
	int		 nslots;	/* conf->relays_active */
	struct event	*ev_netlink;
	struct event	*ev_watchdog;
	struct netlink	*nl;
	int		 stopping;
	char		 status[AGENT_MAX_ACTIVE * 512 + 8];	/* STATUS= */
	struct usage_book usage;	/* bytes per path */
	struct event	*ev_usage;	/* samples around UTC midnight, hourly */
	struct control	*ctl;
};
void	 agent_init(struct agent *, struct event_base *, struct agent_config *);
void	 agent_start(struct agent *);
void	 agent_stop(struct agent *);
void	 agent_reload(struct agent *, struct agent_config *);
void	 agent_status_changed(struct agent *);
void	 agent_slot_idle(struct agent *);
void	 agent_usage_sample(struct agent *, struct slot *, struct session *,
	    int);
void	 agent_netlink_changed(void *);
void	 agent_free(struct agent *);
void	 agent_control(const char *, struct evbuffer *,
	    const struct control_peer *, void *);

#endif
