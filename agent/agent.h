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
};
TAILQ_HEAD(paths, path);

struct agent_config {
	char		*file;
	char		*identity;
	char		*user;
	unsigned long	 ka_interval;
	unsigned long	 ka_count;
	unsigned long	 backoff_initial;
	unsigned long	 backoff_max;
	char		*relay_host;
	uint16_t	 relay_port;
	char		*host_key;	/* "SHA256:..." */
	char		*known_hosts;
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

/* path.c: the relay address and port a [path] reaches */
const char *path_host(struct agent_config *, struct path *);
uint16_t path_port(struct agent_config *, struct path *);

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
	const void	*live;		/* session whose counters are in seen */
	struct usage_sample seen;	/* its counters already booked */
};
void	 usage_init(struct usage_book *);
void	 usage_free(struct usage_book *);
struct path_usage *usage_path(struct usage_book *, const char *);
void	 usage_roll(struct usage_book *, time_t);
void	 usage_book(struct usage_book *, const void *, const char *,
	    const struct usage_sample *, int);
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

/* agent.c: what to try next, and when */
struct agent {
	struct event_base *base;
	struct evdns_base *dns;
	struct agent_config *conf;
	struct agent_config *next_conf;	/* reload waiting for the close */
	struct session	*sess;
	struct backoff	 bo;
	struct event	*ev_retry;
	struct event	*ev_probe;
	struct event	*ev_netlink;
	struct event	*ev_watchdog;
	struct probe	*probe;
	struct netlink	*nl;
	int		 cycle_start;	/* path index this cycle began at */
	int		 cycle_tried;	/* paths tried in this cycle */
	int		 cur;		/* path index being tried / used */
	int		 waiting;	/* in backoff */
	int		 moving;	/* closing to return to path 0 */
	int		 stopping;
	char		 last_error[256];
	char		 status[512];	/* what the daemon is doing */
	time_t		 state_since;
	struct timespec	 retry_at;	/* when waiting in backoff */
	struct usage_book usage;	/* bytes per path */
	struct event	*ev_usage;	/* samples around UTC midnight, hourly */
	struct control	*ctl;
};
void	 agent_init(struct agent *, struct event_base *, struct agent_config *);
void	 agent_start(struct agent *);
void	 agent_stop(struct agent *);
void	 agent_reload(struct agent *, struct agent_config *);
void	 agent_status(struct agent *, const char *, ...) PRINTFLIKE(2, 3);
void	 agent_netlink_changed(void *);
void	 agent_free(struct agent *);
void	 agent_control(const char *, struct evbuffer *,
	    const struct control_peer *, void *);

#endif
