/*
 * Several relays, one fleet ([cluster] in relay.conf): the device directory
 * in Redis, driven by hiredis' async API on the relay's own loop.
 *
 * Redis keys (one instance, or the master Sentinel names):
 *   simtun:dir      hash  device name -> "RELAY EPOCH SINCE ADDR"
 *   simtun:epoch    hash  device name -> the last epoch handed out
 *   simtun:relays   set   relay ids that have been seen
 *   simtun:relay:ID string the relay's peer_address, PX lease_time: the
 *                   relay's lease, renewed every lease_time / 3
 *   simtun:events   channel "up NAME RELAY EPOCH", "down NAME RELAY EPOCH"
 * A device session claims its name (the epoch goes up by one, atomically,
 * in a Lua script) and releases it when it closes. Every relay follows the
 * channel: a relay holding an older session of a device that came up
 * elsewhere closes it at once. A relay whose lease lapsed (it died, or it
 * lost Redis) has its devices reaped by the next heartbeat of any relay.
 * Without Redis every relay serves its own devices and operators; when
 * Redis is back it claims again what it holds and reads the directory.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <hiredis/hiredis.h>
#include <hiredis/async.h>
#include <hiredis/adapters/libevent.h>

#include "relay.h"

#define CLUSTER_BUCKETS		16384
#define CLUSTER_TIMEOUT		5	/* s: connect, or a reply, at most */
#define CLUSTER_SYNC_EVERY	30	/* s: read the whole directory again */
#define CLUSTER_CHANNEL		"simtun:events"

static const char claim_lua[] =
    "local e = redis.call('HINCRBY', 'simtun:epoch', ARGV[1], 1)\n"
    "redis.call('HSET', 'simtun:dir', ARGV[1], ARGV[2] .. ' ' .. e .. ' ' ..\n"
    "    ARGV[3] .. ' ' .. ARGV[4])\n"
    "redis.call('PUBLISH', 'simtun:events', 'up ' .. ARGV[1] .. ' ' ..\n"
    "    ARGV[2] .. ' ' .. e)\n"
    "return e\n";

/*
 * Ours again after Redis was away: kept (our epoch back) unless another
 * relay has a newer session of it (minus that epoch back).
 */
static const char republish_lua[] =
    "local cur = tonumber(redis.call('HGET', 'simtun:epoch', ARGV[1]) or "
    "'0')\n"
    "local mine = tonumber(ARGV[3])\n"
    "if cur > mine then\n"
    "  local v = redis.call('HGET', 'simtun:dir', ARGV[1])\n"
    "  if v and string.match(v, '^(%S+) (%d+)') ~= ARGV[2] then\n"
    "    return -cur\n"
    "  end\n"
    "end\n"
    "if cur < mine then redis.call('HSET', 'simtun:epoch', ARGV[1], mine) "
    "end\n"
    "redis.call('HSET', 'simtun:dir', ARGV[1], ARGV[2] .. ' ' .. ARGV[3] ..\n"
    "    ' ' .. ARGV[4] .. ' ' .. ARGV[5])\n"
    "redis.call('PUBLISH', 'simtun:events', 'up ' .. ARGV[1] .. ' ' ..\n"
    "    ARGV[2] .. ' ' .. ARGV[3])\n"
    "return mine\n";

static const char release_lua[] =
    "local v = redis.call('HGET', 'simtun:dir', ARGV[1])\n"
    "if not v then return 0 end\n"
    "local r, e = string.match(v, '^(%S+) (%d+)')\n"
    "if r ~= ARGV[2] or e ~= ARGV[3] then return 0 end\n"
    "redis.call('HDEL', 'simtun:dir', ARGV[1])\n"
    "redis.call('PUBLISH', 'simtun:events', 'down ' .. ARGV[1] .. ' ' ..\n"
    "    r .. ' ' .. e)\n"
    "return 1\n";

/* Renew our lease; reap the devices of relays whose lease lapsed. */
static const char heartbeat_lua[] =
    "redis.call('SET', 'simtun:relay:' .. ARGV[1], ARGV[2], 'PX', ARGV[3])\n"
    "redis.call('SADD', 'simtun:relays', ARGV[1])\n"
    "local out = {}\n"
    "for _, id in ipairs(redis.call('SMEMBERS', 'simtun:relays')) do\n"
    "  local a = redis.call('GET', 'simtun:relay:' .. id)\n"
    "  if a then\n"
    "    table.insert(out, id)\n"
    "    table.insert(out, a)\n"
    "  else\n"
    "    redis.call('SREM', 'simtun:relays', id)\n"
    "    local all = redis.call('HGETALL', 'simtun:dir')\n"
    "    for i = 1, #all, 2 do\n"
    "      local r, e = string.match(all[i + 1], '^(%S+) (%d+)')\n"
    "      if r == id then\n"
    "        redis.call('HDEL', 'simtun:dir', all[i])\n"
    "        redis.call('PUBLISH', 'simtun:events', 'down ' .. all[i] ..\n"
    "            ' ' .. r .. ' ' .. e)\n"
    "      end\n"
    "    end\n"
    "  end\n"
    "end\n"
    "return out\n";

/* What the directory says of one device, and our own session of it. */
struct dir_entry {
	struct dir_entry *next;
	char		*name;
	char		 relay[64];	/* "": offline */
	uint64_t	 epoch;
	time_t		 since;
	char		 addr[64];
	struct session	*local;		/* our newest session of it */
	uint64_t	 lost_to;	/* newer epoch seen while ours pending */
	int		 mark;
};

struct cluster {
	struct relay	*r;
	redisAsyncContext *cmd;		/* commands and scripts */
	redisAsyncContext *sub;		/* SUBSCRIBE simtun:events */
	redisAsyncContext *sent;	/* a Sentinel, while asking */
	int		 up;		/* connected to a master, synced */
	int		 role_ok;
	int		 subscribed;
	int		 drop;		/* drop both at the next tick */
	char		 master[80];	/* ADDR:PORT in use */
	unsigned int	 sentinel_idx;
	struct timespec	 attempt;	/* when connecting started */
	struct timespec	 progress;	/* last reply */
	unsigned int	 pending;	/* replies awaited on cmd */
	time_t		 down_since;
	int		 ever_up;
	time_t		 next_beat, next_sync, next_try;
	uint64_t	 errors;	/* lost connections, failed replies */
	uint64_t	 takeovers;	/* our sessions closed for newer ones */
	struct event	*ev_tick;
	struct dir_entry *dir[CLUSTER_BUCKETS];
	unsigned int	 ndir;
	struct peers	 peers;
};

static void cluster_drop(struct cluster *, const char *);
static void cluster_sync(struct cluster *);

static double
cluster_since(const struct timespec *t)
{
	return relay_age(t);
}

/* The directory entry of name; created when asked. */
static struct dir_entry *
cluster_entry(struct cluster *c, const char *name, int create)
{
	struct dir_entry *e, **pp;

	pp = &c->dir[str_hash(name) % CLUSTER_BUCKETS];
	for (e = *pp; e != NULL; e = e->next)
		if (strcmp(e->name, name) == 0)
			return e;
	if (!create)
		return NULL;
	e = xcalloc(1, sizeof *e);
	e->name = xstrdup(name);
	e->next = *pp;
	*pp = e;
	c->ndir++;
	return e;
}

/* Is relay id live (its lease seen in the last heartbeat)? */
struct peer *
cluster_peer(struct relay *r, const char *id)
{
	struct peer *p;

	if (r->cluster == NULL)
		return NULL;
	TAILQ_FOREACH(p, &r->cluster->peers, entry)
		if (strcmp(p->id, id) == 0)
			return p;
	return NULL;
}

/* The peer relays, one after the other (NULL: the first). */
struct peer *
cluster_next_peer(struct relay *r, struct peer *p)
{
	if (r->cluster == NULL)
		return NULL;
	return p == NULL ? TAILQ_FIRST(&r->cluster->peers) :
	    TAILQ_NEXT(p, entry);
}

/* Send a command on cmd, counted so a silent master is noticed. */
static int PRINTFLIKE(4, 5)
cluster_command(struct cluster *c, redisCallbackFn *fn, void *arg,
    const char *fmt, ...)
{
	va_list ap;
	int rc;

	if (c->cmd == NULL)
		return -1;
	va_start(ap, fmt);
	rc = redisvAsyncCommand(c->cmd, fn, arg, fmt, ap);
	va_end(ap);
	if (rc != REDIS_OK)
		return -1;
	if (c->pending++ == 0)
		clock_gettime(CLOCK_MONOTONIC, &c->progress);
	return 0;
}

/* A reply (or NULL: the connection went) on cmd. */
static redisReply *
cluster_reply(redisAsyncContext *ac, void *reply)
{
	struct cluster *c = ac->data;

	if (c != NULL && c->pending > 0)
		c->pending--;
	if (c != NULL)
		clock_gettime(CLOCK_MONOTONIC, &c->progress);
	return reply;
}

/* A device session of ours: the directory's ADDR field. */
static void
cluster_addr(struct session *s, char *buf, size_t len)
{
	snprintf(buf, len, "%s:%d", s->peer, s->peer_port);
}

/*
 * A newer session of the device lives on another relay: each of ours is
 * probed (session_probe_moved) and closed within 2 s unless it answers
 * (the device keeps sessions to two relays); a closed one's ports do not
 * linger, and what it had not been answered follows the device there.
 */
static void
cluster_takeover(struct cluster *c, struct session *sess, const char *relay,
    uint64_t epoch)
{
	struct session *s, *list[64];
	size_t n = 0, i;

	for (s = session_by_fp(sess->fp, NULL); s != NULL && n < 64;
	    s = session_by_fp(sess->fp, s))
		if (s->state == SESSION_ACTIVE && !s->operator)
			list[n++] = s;
	for (i = 0; i < n; i++)
		session_probe_moved(list[i], relay, epoch);
}

/* A probed session did not answer: it goes (counted). */
void
cluster_moved(struct session *s)
{
	if (s->relay->cluster != NULL)
		s->relay->cluster->takeovers++;
}

struct cluster_claim {
	uint64_t	 sess_id;
	char		 name[];
};

/* The epoch our claim got. */
static void
cluster_claimed(redisAsyncContext *ac, void *reply, void *arg)
{
	struct cluster_claim *cl = arg;
	struct cluster *c = ac->data;
	redisReply *rr = cluster_reply(ac, reply);
	struct dir_entry *e;
	struct session *s;

	if (c == NULL || rr == NULL || rr->type != REDIS_REPLY_INTEGER ||
	    (e = cluster_entry(c, cl->name, 0)) == NULL ||
	    (s = e->local) == NULL || s->id != cl->sess_id ||
	    s->state != SESSION_ACTIVE) {
		if (c != NULL && rr != NULL && rr->type == REDIS_REPLY_ERROR) {
			c->errors++;
			log_warnx("cluster: claiming %s: %s", cl->name,
			    rr->str);
		}
		free(cl);
		return;
	}
	if (rr->integer < 0) {
		/* another relay has a newer session of it */
		if ((uint64_t)-rr->integer > e->epoch)
			e->epoch = (uint64_t)-rr->integer;
		cluster_takeover(c, s, e->relay[0] ? e->relay : "?",
		    (uint64_t)-rr->integer);
		free(cl);
		return;
	}
	s->epoch = (uint64_t)rr->integer;
	if (s->epoch >= e->epoch) {
		snprintf(e->relay, sizeof e->relay, "%s",
		    c->r->conf.cluster_relay_id);
		e->epoch = s->epoch;
		e->since = s->since;
	}
	log_debug("cluster: device %s is ours, epoch %llu", cl->name,
	    (unsigned long long)s->epoch);
	if (e->lost_to > s->epoch || e->epoch > s->epoch)
		cluster_takeover(c, s, e->relay, e->epoch);
	free(cl);
}

/* Claim (epoch 0) or claim again (after Redis was away) a session. */
static void
cluster_claim(struct cluster *c, struct session *s)
{
	struct cluster_claim *cl;
	char addr[80], since[32], epoch[32];

	cl = xcalloc(1, sizeof *cl + strlen(s->name) + 1);
	cl->sess_id = s->id;
	memcpy(cl->name, s->name, strlen(s->name) + 1);
	cluster_addr(s, addr, sizeof addr);
	snprintf(since, sizeof since, "%lld", (long long)s->since);
	if (s->epoch == 0) {
		if (cluster_command(c, cluster_claimed, cl, "EVAL %s 0 %s %s "
		    "%s %s", claim_lua, s->name, c->r->conf.cluster_relay_id,
		    since, addr) == -1)
			free(cl);
		return;
	}
	snprintf(epoch, sizeof epoch, "%llu", (unsigned long long)s->epoch);
	if (cluster_command(c, cluster_claimed, cl, "EVAL %s 0 %s %s %s %s %s",
	    republish_lua, s->name, c->r->conf.cluster_relay_id, epoch, since,
	    addr) == -1)
		free(cl);
}

/* Replies nobody waits for (release). */
static void
cluster_done(redisAsyncContext *ac, void *reply, void *arg)
{
	struct cluster *c = ac->data;
	redisReply *rr = cluster_reply(ac, reply);

	if (c != NULL && rr != NULL && rr->type == REDIS_REPLY_ERROR) {
		c->errors++;
		log_warnx("cluster: %s: %s", (const char *)arg, rr->str);
	}
}

static void
cluster_release(struct cluster *c, const char *name, uint64_t epoch)
{
	char e[32];

	snprintf(e, sizeof e, "%llu", (unsigned long long)epoch);
	cluster_command(c, cluster_done, "release", "EVAL %s 0 %s %s %s",
	    release_lua, name, c->r->conf.cluster_relay_id, e);
}

/* A device session authenticated here. */
void
cluster_session_up(struct session *s)
{
	struct cluster *c = s->relay->cluster;
	struct dir_entry *e;

	if (c == NULL || s->operator || s->peer_relay)
		return;
	e = cluster_entry(c, s->name, 1);
	e->local = s;
	e->lost_to = 0;
	s->epoch = 0;
	if (c->up)
		cluster_claim(c, s);
}

/* A device session here closes. */
void
cluster_session_down(struct session *s)
{
	struct cluster *c = s->relay->cluster;
	struct dir_entry *e;

	if (c == NULL || s->name == NULL || s->operator || s->peer_relay ||
	    (e = cluster_entry(c, s->name, 0)) == NULL || e->local != s)
		return;
	e->local = NULL;
	if (s->epoch == 0)
		return;
	if (strcmp(e->relay, c->r->conf.cluster_relay_id) == 0 &&
	    e->epoch == s->epoch)
		e->relay[0] = '\0';
	if (c->up && !s->moved)
		cluster_release(c, s->name, s->epoch);
}

/*
 * Where an operator's channel for name goes when the device is not here:
 * the live peer relay holding it, NULL when none does.
 */
struct peer *
cluster_route(struct relay *r, const char *name, uint64_t *epoch)
{
	struct cluster *c = r->cluster;
	struct dir_entry *e;

	if (c == NULL || (e = cluster_entry(c, name, 0)) == NULL ||
	    e->relay[0] == '\0' ||
	    strcmp(e->relay, r->conf.cluster_relay_id) == 0)
		return NULL;
	*epoch = e->epoch;
	return cluster_peer(r, e->relay);
}

/* The relay holding name, per the directory ("" or NULL: none known). */
const char *
cluster_holder(struct relay *r, const char *name)
{
	struct dir_entry *e;

	if (r->cluster == NULL ||
	    (e = cluster_entry(r->cluster, name, 0)) == NULL ||
	    e->relay[0] == '\0')
		return NULL;
	return e->relay;
}

/* "up NAME RELAY EPOCH" or "down NAME RELAY EPOCH" from any relay. */
static void
cluster_event(struct cluster *c, const char *msg, size_t len)
{
	char buf[512], *relay, *ep, *name;
	struct dir_entry *e;
	uint64_t epoch;
	int up;

	if (len >= sizeof buf)
		return;
	memcpy(buf, msg, len);
	buf[len] = '\0';
	if (strncmp(buf, "up ", 3) == 0)
		up = 1;
	else if (strncmp(buf, "down ", 5) == 0)
		up = 0;
	else
		return;
	name = buf + (up ? 3 : 5);
	if ((ep = strrchr(name, ' ')) == NULL)
		return;
	*ep++ = '\0';
	if ((relay = strrchr(name, ' ')) == NULL)
		return;
	*relay++ = '\0';
	epoch = strtoull(ep, NULL, 10);
	if (up) {
		e = cluster_entry(c, name, 1);
		if (epoch < e->epoch)
			return;		/* older news */
		snprintf(e->relay, sizeof e->relay, "%s", relay);
		e->epoch = epoch;
		e->since = time(NULL);
		if (strcmp(relay, c->r->conf.cluster_relay_id) == 0)
			return;
		log_debug("cluster: device %s up on relay %s (epoch %llu)",
		    name, relay, (unsigned long long)epoch);
		if (e->local != NULL) {
			if (e->local->epoch == 0 || e->local->epoch < epoch) {
				if (e->local->epoch == 0)
					e->lost_to = epoch;
				if (e->local->epoch != 0)
					cluster_takeover(c, e->local, relay,
					    epoch);
			}
		}
		peer_serve_held(c->r);
		return;
	}
	if ((e = cluster_entry(c, name, 0)) == NULL ||
	    strcmp(e->relay, relay) != 0 || e->epoch != epoch)
		return;
	e->relay[0] = '\0';
	/* it left there but lives here too (relays_active = 2): ours now */
	if (e->local != NULL && e->local->state == SESSION_ACTIVE &&
	    !e->local->moving && strcmp(relay, c->r->conf.cluster_relay_id)) {
		e->local->epoch = 0;
		cluster_claim(c, e->local);
	}
}

/* Messages on the subscription. */
static void
cluster_message(redisAsyncContext *ac, void *reply, void *arg)
{
	struct cluster *c = ac->data;
	redisReply *rr = reply;

	if (c == NULL || rr == NULL || rr->type != REDIS_REPLY_ARRAY ||
	    rr->elements != 3 || rr->element[0]->type != REDIS_REPLY_STRING)
		return;
	if (strcmp(rr->element[0]->str, "subscribe") == 0) {
		c->subscribed = 1;
		return;
	}
	if (strcmp(rr->element[0]->str, "message") == 0 &&
	    rr->element[2]->type == REDIS_REPLY_STRING)
		cluster_event(c, rr->element[2]->str, rr->element[2]->len);
}

/* The heartbeat's answer: the live relays and their addresses. */
static void
cluster_beat(redisAsyncContext *ac, void *reply, void *arg)
{
	struct cluster *c = ac->data;
	redisReply *rr = cluster_reply(ac, reply);
	struct peer *p, *tmp;
	size_t i;

	if (c == NULL || rr == NULL)
		return;
	if (rr->type != REDIS_REPLY_ARRAY) {
		c->errors++;
		if (rr->type == REDIS_REPLY_ERROR)
			log_warnx("cluster: heartbeat: %s", rr->str);
		return;
	}
	TAILQ_FOREACH(p, &c->peers, entry)
		p->mark = 0;
	for (i = 0; i + 1 < rr->elements; i += 2) {
		if (rr->element[i]->type != REDIS_REPLY_STRING ||
		    rr->element[i + 1]->type != REDIS_REPLY_STRING ||
		    strcmp(rr->element[i]->str,
		    c->r->conf.cluster_relay_id) == 0)
			continue;
		if ((p = cluster_peer(c->r, rr->element[i]->str)) == NULL) {
			p = peer_new(c->r, rr->element[i]->str);
			TAILQ_INSERT_TAIL(&c->peers, p, entry);
			log_info("cluster: relay %s (%s) is in the cluster",
			    p->id, rr->element[i + 1]->str);
		}
		snprintf(p->addr, sizeof p->addr, "%s",
		    rr->element[i + 1]->str);
		p->mark = 1;
		p->misses = 0;
	}
	TAILQ_FOREACH_SAFE(p, &c->peers, entry, tmp) {
		/* twice missing: not a directory that just came back empty */
		if (p->mark || ++p->misses < 2)
			continue;
		log_info("cluster: relay %s left the cluster (its lease "
		    "lapsed)", p->id);
		TAILQ_REMOVE(&c->peers, p, entry);
		peer_free(p, "the relay left the cluster");
	}
	peer_serve_held(c->r);
}

static void
cluster_heartbeat(struct cluster *c)
{
	char ms[32];

	/*
	 * Renewed every lease_time / 3 for 2/3 of it: a dead relay's lease
	 * lapses within 2/3 lease_time, and the next heartbeat of any relay
	 * (within 1/3) reaps its devices.
	 */
	snprintf(ms, sizeof ms, "%lu", c->r->conf.cluster_lease_time * 2000 /
	    3);
	cluster_command(c, cluster_beat, NULL, "EVAL %s 0 %s %s %s",
	    heartbeat_lua, c->r->conf.cluster_relay_id,
	    c->r->conf.cluster_peer_address, ms);
}

/*
 * The whole directory: the cache follows it; what it says of our own
 * devices is set right (ours it lost: released; taken: closed).
 */
static void
cluster_synced(redisAsyncContext *ac, void *reply, void *arg)
{
	struct cluster *c = ac->data;
	redisReply *rr = cluster_reply(ac, reply);
	const char *me;
	struct dir_entry *e;
	char relay[64];
	unsigned long long epoch;
	long long since;
	size_t i;

	if (c == NULL || rr == NULL || rr->type != REDIS_REPLY_ARRAY)
		return;
	me = c->r->conf.cluster_relay_id;
	for (i = 0; i < CLUSTER_BUCKETS; i++)
		for (e = c->dir[i]; e != NULL; e = e->next)
			e->mark = 0;
	for (i = 0; i + 1 < rr->elements; i += 2) {
		if (rr->element[i]->type != REDIS_REPLY_STRING ||
		    rr->element[i + 1]->type != REDIS_REPLY_STRING ||
		    sscanf(rr->element[i + 1]->str, "%63s %llu %lld", relay,
		    &epoch, &since) != 3)
			continue;
		e = cluster_entry(c, rr->element[i]->str, 1);
		e->mark = 1;
		if (epoch < e->epoch && strcmp(e->relay, relay) != 0)
			continue;
		snprintf(e->relay, sizeof e->relay, "%s", relay);
		e->epoch = epoch;
		e->since = (time_t)since;
		if (strcmp(relay, me) == 0) {
			if (e->local == NULL || e->local->epoch != epoch)
				cluster_release(c, e->name, epoch);
		} else if (e->local != NULL && e->local->epoch != 0 &&
		    e->local->epoch < epoch)
			cluster_takeover(c, e->local, relay, epoch);
	}
	for (i = 0; i < CLUSTER_BUCKETS; i++)
		for (e = c->dir[i]; e != NULL; e = e->next) {
			if (e->mark)
				continue;
			e->relay[0] = '\0';
			/* ours, and the directory lost it: claim it again */
			if (e->local != NULL && e->local->epoch != 0 &&
			    e->local->state == SESSION_ACTIVE &&
			    !e->local->moving) {
				e->local->epoch = 0;
				cluster_claim(c, e->local);
			}
		}
	peer_serve_held(c->r);
}

static void
cluster_sync(struct cluster *c)
{
	cluster_command(c, cluster_synced, NULL, "HGETALL simtun:dir");
}

/* Connected to a master: claim what we hold, then read the directory. */
static void
cluster_up(struct cluster *c)
{
	struct session *s;
	time_t now = time(NULL);

	c->up = 1;
	if (c->ever_up)
		log_info("cluster: directory %s is back after %lld s; "
		    "publishing our devices again", c->master,
		    (long long)(now - c->down_since));
	else
		log_info("cluster: directory %s is up (relay %s, peer address "
		    "%s)", c->master, c->r->conf.cluster_relay_id,
		    c->r->conf.cluster_peer_address);
	c->ever_up = 1;
	cluster_heartbeat(c);
	TAILQ_FOREACH(s, &c->r->sessions, entry)
		if (s->state == SESSION_ACTIVE && !s->operator &&
		    !s->peer_relay && !s->link)
			cluster_claim(c, s);
	cluster_sync(c);
	c->next_beat = now + (time_t)(c->r->conf.cluster_lease_time / 3);
	c->next_sync = now + CLUSTER_SYNC_EVERY;
}

/* ROLE: only a master takes writes (after a failover, the old one may not). */
static void
cluster_role(redisAsyncContext *ac, void *reply, void *arg)
{
	struct cluster *c = ac->data;
	redisReply *rr = cluster_reply(ac, reply);

	if (c == NULL || rr == NULL)
		return;
	if (rr->type != REDIS_REPLY_ARRAY || rr->elements < 1 ||
	    rr->element[0]->type != REDIS_REPLY_STRING ||
	    strcmp(rr->element[0]->str, "master") != 0) {
		log_warnx("cluster: %s is not a master (%s); asking again",
		    c->master, rr->type == REDIS_REPLY_ERROR ? rr->str :
		    rr->type == REDIS_REPLY_ARRAY && rr->elements > 0 &&
		    rr->element[0]->type == REDIS_REPLY_STRING ?
		    rr->element[0]->str : "no role");
		c->drop = 1;
		return;
	}
	c->role_ok = 1;
	if (c->subscribed && !c->up)
		cluster_up(c);
}

static void
cluster_subscribed(redisAsyncContext *ac, void *reply, void *arg)
{
	struct cluster *c = ac->data;

	cluster_message(ac, reply, arg);
	if (c != NULL && c->subscribed && c->role_ok && !c->up)
		cluster_up(c);
}

/* hiredis: a connection is made (or failed: the context is freed after). */
static void
cluster_connected(const redisAsyncContext *ac, int status)
{
	struct cluster *c = ac->data;

	if (c == NULL || status == REDIS_OK)
		return;
	if (ac == c->cmd)
		c->cmd = NULL;
	else if (ac == c->sub)
		c->sub = NULL;
	else if (ac == c->sent)
		c->sent = NULL;
	c->errors++;
	c->drop = 1;
	log_debug("cluster: connect: %s", ac->errstr);
}

/* hiredis: a connection is gone (the context is freed after this). */
static void
cluster_disconnected(const redisAsyncContext *ac, int status)
{
	struct cluster *c = ac->data;

	if (c == NULL)
		return;
	if (ac == c->cmd) {
		c->cmd = NULL;
		c->pending = 0;
	} else if (ac == c->sub)
		c->sub = NULL;
	else if (ac == c->sent) {
		c->sent = NULL;
		return;
	}
	if (status != REDIS_OK) {
		c->errors++;
		c->drop = 1;
		if (c->up)
			log_warnx("cluster: directory %s: %s", c->master,
			    ac->errstr);
	} else
		c->drop = 1;
}

/* A non-blocking connection to ADDR:PORT on the loop. */
static redisAsyncContext *
cluster_open(struct cluster *c, const char *hostport)
{
	redisAsyncContext *ac;
	const char *why;
	char *host = NULL;
	uint16_t port;

	if (parse_hostport(hostport, &host, &port, 0, &why) == -1) {
		free(host);
		return NULL;
	}
	ac = redisAsyncConnect(host, port);
	free(host);
	if (ac == NULL)
		return NULL;
	if (ac->err) {
		log_debug("cluster: %s: %s", hostport, ac->errstr);
		redisAsyncFree(ac);
		return NULL;
	}
	ac->data = c;
	redisEnableKeepAlive(&ac->c);
	if (redisLibeventAttach(ac, c->r->base) != REDIS_OK) {
		redisAsyncFree(ac);
		return NULL;
	}
	redisAsyncSetConnectCallback(ac, cluster_connected);
	redisAsyncSetDisconnectCallback(ac, cluster_disconnected);
	return ac;
}

/* Connect to the master at c->master. */
static void
cluster_connect_master(struct cluster *c)
{
	c->role_ok = c->subscribed = 0;
	c->cmd = cluster_open(c, c->master);
	c->sub = cluster_open(c, c->master);
	if (c->cmd == NULL || c->sub == NULL) {
		c->drop = 1;
		return;
	}
	cluster_command(c, cluster_role, NULL, "ROLE");
	redisAsyncCommand(c->sub, cluster_subscribed, NULL, "SUBSCRIBE %s",
	    CLUSTER_CHANNEL);
}

/* A Sentinel's answer: the master's address. */
static void
cluster_sentinel_reply(redisAsyncContext *ac, void *reply, void *arg)
{
	struct cluster *c = ac->data;
	redisReply *rr = reply;

	if (c == NULL || ac != c->sent)
		return;
	if (rr == NULL || rr->type != REDIS_REPLY_ARRAY || rr->elements != 2 ||
	    rr->element[0]->type != REDIS_REPLY_STRING ||
	    rr->element[1]->type != REDIS_REPLY_STRING) {
		log_debug("cluster: sentinel does not know master %s",
		    c->r->conf.cluster_master);
		c->sentinel_idx++;
		c->drop = 1;
		return;
	}
	if (strchr(rr->element[0]->str, ':') != NULL)
		snprintf(c->master, sizeof c->master, "[%s]:%s",
		    rr->element[0]->str, rr->element[1]->str);
	else
		snprintf(c->master, sizeof c->master, "%s:%s",
		    rr->element[0]->str, rr->element[1]->str);
	c->sent->data = NULL;
	redisAsyncDisconnect(c->sent);
	c->sent = NULL;
	cluster_connect_master(c);
}

/* The n-th Sentinel of the list (wrapping). */
static void
cluster_ask_sentinel(struct cluster *c)
{
	char *list = xstrdup(c->r->conf.cluster_sentinel), *tok, *save = NULL;
	unsigned int n = 0, i;

	for (tok = strtok_r(list, ",", &save); tok != NULL;
	    tok = strtok_r(NULL, ",", &save))
		n++;
	free(list);
	list = xstrdup(c->r->conf.cluster_sentinel);
	tok = strtok_r(list, ",", &save);
	for (i = 0; i < c->sentinel_idx % n; i++)
		tok = strtok_r(NULL, ",", &save);
	c->sent = cluster_open(c, tok);
	free(list);
	if (c->sent == NULL) {
		c->sentinel_idx++;
		c->drop = 1;
		return;
	}
	redisAsyncCommand(c->sent, cluster_sentinel_reply, NULL,
	    "SENTINEL get-master-addr-by-name %s", c->r->conf.cluster_master);
}

/* Start connecting (to a Sentinel first when there are Sentinels). */
static void
cluster_connect(struct cluster *c)
{
	clock_gettime(CLOCK_MONOTONIC, &c->attempt);
	c->drop = 0;
	if (c->r->conf.cluster_sentinel != NULL)
		cluster_ask_sentinel(c);
	else {
		snprintf(c->master, sizeof c->master, "%s",
		    c->r->conf.cluster_redis);
		cluster_connect_master(c);
	}
}

/* Free a context from outside hiredis' callbacks. */
static void
cluster_free_ctx(redisAsyncContext **acp)
{
	redisAsyncContext *ac = *acp;

	if (ac == NULL)
		return;
	*acp = NULL;
	ac->data = NULL;
	redisAsyncFree(ac);
}

/* Give up the connections; the next tick tries again. */
static void
cluster_drop(struct cluster *c, const char *why)
{
	cluster_free_ctx(&c->cmd);
	cluster_free_ctx(&c->sub);
	cluster_free_ctx(&c->sent);
	c->pending = 0;
	c->drop = 0;
	c->role_ok = c->subscribed = 0;
	if (c->up) {
		c->up = 0;
		c->down_since = time(NULL);
		log_warnx("cluster: directory %s unreachable (%s); serving "
		    "this relay's own devices and operators until it is back",
		    c->master, why);
	} else if (!c->ever_up && c->down_since == 0) {
		c->down_since = time(NULL);
		log_warnx("cluster: directory %s unreachable (%s); serving "
		    "this relay's own devices and operators until it is up",
		    c->r->conf.cluster_sentinel ? c->r->conf.cluster_sentinel :
		    c->r->conf.cluster_redis, why);
	}
	c->next_try = time(NULL) + 1;
}

/* Once a second: connection upkeep, heartbeat, periodic sync. */
static void
cluster_tick(evutil_socket_t fd, short what, void *arg)
{
	struct cluster *c = arg;
	time_t now = time(NULL);

	if (c->drop)
		cluster_drop(c, "connection lost");
	if (c->cmd == NULL && c->sent == NULL) {
		if (c->sub != NULL)
			cluster_drop(c, "connection lost");
		if (now >= c->next_try)
			cluster_connect(c);
		return;
	}
	if (!c->up && cluster_since(&c->attempt) > CLUSTER_TIMEOUT) {
		c->sentinel_idx++;
		cluster_drop(c, "no answer within 5 s");
		return;
	}
	if (c->up && c->pending > 0 &&
	    cluster_since(&c->progress) > CLUSTER_TIMEOUT) {
		cluster_drop(c, "no reply within 5 s");
		return;
	}
	if (!c->up)
		return;
	if (now >= c->next_beat) {
		cluster_heartbeat(c);
		c->next_beat = now + (time_t)(c->r->conf.cluster_lease_time /
		    3);
	}
	if (now >= c->next_sync) {
		cluster_sync(c);
		c->next_sync = now + CLUSTER_SYNC_EVERY;
	}
}

int
cluster_start(struct relay *r, char *err, size_t len)
{
	struct timeval tv = { 1, 0 };
	struct cluster *c;

	if (!r->conf.cluster)
		return 0;
	c = xcalloc(1, sizeof *c);
	c->r = r;
	TAILQ_INIT(&c->peers);
	c->ev_tick = event_new(r->base, -1, EV_PERSIST, cluster_tick, c);
	if (c->ev_tick == NULL) {
		snprintf(err, len, "event_new");
		free(c);
		return -1;
	}
	r->cluster = c;
	event_add(c->ev_tick, &tv);
	cluster_connect(c);
	return 0;
}

/* At exit: give back what we hold, then close everything. */
void
cluster_stop(struct relay *r)
{
	struct cluster *c = r->cluster;
	struct dir_entry *e, *next;
	struct peer *p;
	size_t i;

	if (c == NULL)
		return;
	while ((p = TAILQ_FIRST(&c->peers)) != NULL) {
		TAILQ_REMOVE(&c->peers, p, entry);
		peer_free(p, "relay exiting");
	}
	cluster_free_ctx(&c->cmd);
	cluster_free_ctx(&c->sub);
	cluster_free_ctx(&c->sent);
	event_free(c->ev_tick);
	for (i = 0; i < CLUSTER_BUCKETS; i++)
		for (e = c->dir[i]; e != NULL; e = next) {
			next = e->next;
			free(e->name);
			free(e);
		}
	free(c);
	r->cluster = NULL;
}

/* Quitting: our leases and devices go from the directory now. */
void
cluster_leave(struct relay *r)
{
	struct cluster *c = r->cluster;

	if (c == NULL || !c->up)
		return;
	cluster_command(c, cluster_done, "leave", "DEL simtun:relay:%s",
	    r->conf.cluster_relay_id);
}

/* status --json "cluster" object; /metrics lines. */
void
cluster_status(struct relay *r, struct evbuffer *out)
{
	struct cluster *c = r->cluster;
	struct peer *p;
	int first = 1;

	if (c == NULL) {
		evbuffer_add_printf(out, "null");
		return;
	}
	evbuffer_add_printf(out, "{\"relay_id\":\"%s\",\"directory\":\"%s\","
	    "\"master\":\"%s\",\"down_since\":%lld,\"peers\":[",
	    r->conf.cluster_relay_id, c->up ? "up" : "down", c->master,
	    c->up ? 0LL : (long long)c->down_since);
	TAILQ_FOREACH(p, &c->peers, entry) {
		evbuffer_add_printf(out, "%s{\"relay_id\":\"%s\",\"address\":"
		    "\"%s\",\"link\":\"%s\",\"channels\":%u}", first ? "" : ",",
		    p->id, p->addr, peer_state(p), peer_channels(p));
		first = 0;
	}
	evbuffer_add_printf(out, "]}");
}

void
cluster_metrics(struct relay *r, struct evbuffer *out)
{
	struct cluster *c = r->cluster;
	struct peer *p;
	unsigned int n = 0;

	if (c == NULL)
		return;
	TAILQ_FOREACH(p, &c->peers, entry)
		n++;
	evbuffer_add_printf(out,
	    "# HELP simtun_cluster_redis_up 1 while the Redis directory is "
	    "reachable.\n# TYPE simtun_cluster_redis_up gauge\n"
	    "simtun_cluster_redis_up %d\n"
	    "# TYPE simtun_cluster_redis_errors_total counter\n"
	    "simtun_cluster_redis_errors_total %llu\n"
	    "# TYPE simtun_cluster_takeovers_total counter\n"
	    "simtun_cluster_takeovers_total %llu\n"
	    "# TYPE simtun_cluster_peers gauge\nsimtun_cluster_peers %u\n",
	    c->up, (unsigned long long)c->errors,
	    (unsigned long long)c->takeovers, n);
}

/* simtunctl devices: the directory's view of a device. */
int
cluster_device(struct relay *r, const char *name, const char **relay,
    time_t *since)
{
	struct dir_entry *e;

	if (r->cluster == NULL ||
	    (e = cluster_entry(r->cluster, name, 0)) == NULL ||
	    e->relay[0] == '\0')
		return 0;
	*relay = e->relay;
	*since = e->since;
	return 1;
}
