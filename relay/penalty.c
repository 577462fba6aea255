/*
 * Bounds on unauthenticated work per source address: MaxStartups-style
 * random early drop, a cap per source, and a penalty box for sources that
 * keep failing authentication. Sources in penalty_exempt (a carrier NAT
 * address shared by many SIMs) are only subject to the global limit.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "relay.h"

#define SOURCE_BUCKETS	1024
#define PENALTY_WINDOW	60	/* seconds over which failures count */
#define PENALTY_MAX	3600	/* longest block, after doubling */

struct source {
	LIST_ENTRY(source) entry;
	char		 addr[64];
	unsigned int	 unauth;
	unsigned int	 failures;
	time_t		 first_failure;
	time_t		 blocked_until;
	unsigned int	 strikes;
};
LIST_HEAD(source_list, source);

static struct source_list sources[SOURCE_BUCKETS];
static int sources_init;
static unsigned int nsources;

/* The wall clock, unless a test set its own (penalty_set_clock). */
static time_t
penalty_time_now(void)
{
	return time(NULL);
}
static time_t (*penalty_now)(void) = penalty_time_now;

/* Tests: read the time from fn instead (NULL: the wall clock again). */
void
penalty_set_clock(time_t (*fn)(void))
{
	penalty_now = fn != NULL ? fn : penalty_time_now;
}

/* How many sources are remembered (tests, metrics). */
unsigned int
penalty_nsources(void)
{
	return nsources;
}

/* The bucket of an address. */
static unsigned int
source_hash(const char *addr)
{
	return str_hash(addr) % SOURCE_BUCKETS;
}

/* Find (or make) the record for an address. */
static struct source *
source_get(const char *addr, int create)
{
	struct source_list *head;
	struct source *src;
	int i;

	if (!sources_init) {
		for (i = 0; i < SOURCE_BUCKETS; i++)
			LIST_INIT(&sources[i]);
		sources_init = 1;
	}
	head = &sources[source_hash(addr)];
	LIST_FOREACH(src, head, entry)
		if (!strcmp(src->addr, addr))
			return src;
	if (!create)
		return NULL;
	src = xcalloc(1, sizeof *src);
	snprintf(src->addr, sizeof src->addr, "%s", addr);
	LIST_INSERT_HEAD(head, src, entry);
	nsources++;
	return src;
}

/* Is this address in penalty_exempt? */
static int
penalty_exempt(struct relay *r, const char *addr)
{
	return r->conf.penalty_exempt != NULL &&
	    match_addr_list(addr, r->conf.penalty_exempt) == 1;
}

/*
 * May a new connection from addr start? Returns 0, or -1 with why set.
 * Past startups_begin, connections are dropped with a probability growing
 * linearly from startups_rate% to 100% at startups_full, like sshd.
 */
int
penalty_admit(struct relay *r, const char *addr, const char **why)
{
	struct relay_config *c = &r->conf;
	struct source *src;
	time_t now = penalty_now();
	unsigned int p;

	if (r->nunauth >= c->startups_full) {
		*why = "too many unauthenticated connections (max_startups)";
		return -1;
	}
	if (r->nunauth >= c->startups_begin) {
		p = c->startups_rate + (unsigned int)((100 - c->startups_rate) *
		    (r->nunauth - c->startups_begin) /
		    (c->startups_full - c->startups_begin + 1));
		if (randombytes_uniform(100) < p) {
			*why = "random early drop (max_startups)";
			return -1;
		}
	}
	if (penalty_exempt(r, addr))
		return 0;
	if ((src = source_get(addr, 0)) == NULL)
		return 0;
	if (src->blocked_until > now) {
		*why = "source is penalized for repeated authentication "
		    "failures";
		return -1;
	}
	if (c->max_startups_per_source > 0 &&
	    src->unauth >= c->max_startups_per_source) {
		*why = "too many unauthenticated connections from this source "
		    "(max_startups_per_source)";
		return -1;
	}
	return 0;
}

/* A connection from addr started or finished its unauthenticated phase. */
void
penalty_unauth(struct relay *r, const char *addr, int delta)
{
	struct source *src;

	if ((src = source_get(addr, delta > 0)) == NULL)
		return;
	if (delta > 0)
		src->unauth++;
	else if (src->unauth > 0)
		src->unauth--;
}

/* An authentication attempt from addr failed. */
void
penalty_auth_failed(struct relay *r, const char *addr)
{
	struct relay_config *c = &r->conf;
	struct source *src;
	time_t now = penalty_now(), t;

	if (c->penalty_failures == 0 || penalty_exempt(r, addr))
		return;
	src = source_get(addr, 1);
	if (now - src->first_failure > PENALTY_WINDOW) {
		src->first_failure = now;
		src->failures = 0;
	}
	if (++src->failures < c->penalty_failures)
		return;
	t = (time_t)c->penalty_time << (src->strikes < 6 ? src->strikes : 6);
	if (t > PENALTY_MAX)
		t = PENALTY_MAX;
	src->blocked_until = now + t;
	src->strikes++;
	src->failures = 0;
	log_warnx("source %s penalized for %lld s: %lu failed authentications "
	    "within %d s", addr, (long long)t, c->penalty_failures,
	    PENALTY_WINDOW);
}

/* Forget idle sources (called from the periodic tick). */
void
penalty_gc(void)
{
	struct source *src, *tmp;
	time_t now = penalty_now();
	int i;

	if (!sources_init)
		return;
	for (i = 0; i < SOURCE_BUCKETS; i++) {
		for (src = LIST_FIRST(&sources[i]); src != NULL; src = tmp) {
			tmp = LIST_NEXT(src, entry);
			if (src->unauth > 0 || src->blocked_until > now ||
			    now - src->first_failure <= PENALTY_WINDOW ||
			    (src->strikes > 0 && src->blocked_until +
			    PENALTY_MAX > now))
				continue;
			LIST_REMOVE(src, entry);
			free(src);
			nsources--;
		}
	}
}

/* Free all records (shutdown). */
void
penalty_clear(void)
{
	struct source *src;
	int i;

	if (!sources_init)
		return;
	for (i = 0; i < SOURCE_BUCKETS; i++) {
		while ((src = LIST_FIRST(&sources[i])) != NULL) {
			LIST_REMOVE(src, entry);
			free(src);
		}
	}
	nsources = 0;
}
