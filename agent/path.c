/* A [path NAME]: which relay address and port it reaches, paths by index. */
#include "agent.h"

/*
 * The relay address to use on a path: its own (allowed only when there is
 * one relay), else the relay's host.
 */
const char *
path_host(const struct relay_conf *r, const struct path *p)
{
	if (p != NULL && p->host != NULL)
		return p->host;
	return r->host;
}

/* The relay port to use on a path. */
uint16_t
path_port(const struct relay_conf *r, const struct path *p)
{
	if (p != NULL && p->port != 0)
		return p->port;
	return r->port;
}

/* Number of paths in a cycle; no [path] means one: the default route. */
int
path_count(struct agent_config *c)
{
	return c->npaths > 0 ? c->npaths : 1;
}

/* Path by index (NULL = default route when there are no [path]s). */
struct path *
path_by_index(struct agent_config *c, int idx)
{
	struct path *p;

	TAILQ_FOREACH(p, &c->paths, entry)
		if (p->index == idx)
			return p;
	return NULL;
}

/* Name of a path for logs and status. */
const char *
path_name(const struct path *p)
{
	return p ? p->name : "default route";
}
