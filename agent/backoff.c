/* Reconnect delays: exponential, full jitter, never below initial. */
#include <sodium.h>

#include "agent.h"

/* Limits in seconds from the config, kept in ms for jitter resolution. */
void
backoff_init(struct backoff *b, unsigned long initial, unsigned long max)
{
	b->initial_ms = initial * 1000;
	b->max_ms = max * 1000;
	b->n = 0;
}

/*
 * Next delay: uniform in [initial, min(max, initial * 2^(n+1))], so a
 * fleet that lost its relay at once does not come back in lock step, not
 * even on the first retry.
 */
unsigned long
backoff_next(struct backoff *b)
{
	unsigned long ceil = b->initial_ms, span;
	unsigned int e = b->n + 1;

	if (e < 32 && (b->initial_ms << e) >> e == b->initial_ms)
		ceil = b->initial_ms << e;
	else
		ceil = b->max_ms;
	if (ceil > b->max_ms || ceil < b->initial_ms)
		ceil = b->max_ms;
	if (b->n < 32)
		b->n++;
	span = ceil - b->initial_ms;
	if (span == 0)
		return b->initial_ms;
	if (span > UINT32_MAX - 1)
		span = UINT32_MAX - 1;
	return b->initial_ms + randombytes_uniform((uint32_t)span + 1);
}

/* A session stayed up: the next failure starts from initial again. */
void
backoff_reset(struct backoff *b)
{
	b->n = 0;
}
