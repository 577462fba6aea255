/* A [path NAME]: which relay address and port it reaches. */
#include "agent.h"

/* The relay address to use on a path (its own, or [relay] host). */
const char *
path_host(struct agent_config *c, struct path *p)
{
	if (p != NULL && p->host != NULL)
		return p->host;
	return c->relay_host;
}

/* The relay port to use on a path. */
uint16_t
path_port(struct agent_config *c, struct path *p)
{
	if (p != NULL && p->port != 0)
		return p->port;
	return c->relay_port;
}
