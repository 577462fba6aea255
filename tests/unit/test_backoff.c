/*
 * Unit tests for agent/backoff.c: every delay is within [initial,
 * min(max, initial * 2^(n+1))] (ms), the ceiling doubles per failure up to
 * max, the jitter spreads over the whole range (a fleet does not come back
 * in lock step), reset starts over, and extreme settings neither overflow
 * nor leave the bounds.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "../../agent/agent.h"
#include "unit.h"

#define DRAWS	2000

/* The ceiling of the n-th delay (0-based) for initial, max in seconds. */
static unsigned long
ceiling_ms(unsigned long initial, unsigned long max, unsigned int n)
{
	unsigned long c = initial * 1000;
	unsigned int i;

	for (i = 0; i <= n && c < max * 1000; i++)
		c *= 2;
	return c > max * 1000 ? max * 1000 : c;
}

/* The bounds of the first 20 delays, for several settings. */
static void
test_bounds(void)
{
	static const unsigned long cfg[][2] = {
		{ 1, 120 }, { 1, 1 }, { 2, 3 }, { 5, 3600 }, { 3600, 86400 },
		{ 1, 86400 }, { 30, 30 },
	};
	struct backoff b;
	unsigned long d;
	unsigned int n;
	size_t i;

	for (i = 0; i < sizeof cfg / sizeof cfg[0]; i++) {
		backoff_init(&b, cfg[i][0], cfg[i][1]);
		for (n = 0; n < 20; n++) {
			d = backoff_next(&b);
			if (!CHECK(d >= cfg[i][0] * 1000 &&
			    d <= ceiling_ms(cfg[i][0], cfg[i][1], n)))
				fprintf(stderr, "    initial %lu max %lu "
				    "n %u: %lu ms, ceiling %lu\n", cfg[i][0],
				    cfg[i][1], n, d,
				    ceiling_ms(cfg[i][0], cfg[i][1], n));
		}
	}
	/* initial == max: always exactly that */
	backoff_init(&b, 7, 7);
	for (n = 0; n < 50; n++)
		CHECK_INT(backoff_next(&b), 7000);
	/* thousands of failures: still within bounds, no overflow */
	backoff_init(&b, 1, 120);
	for (n = 0; n < 5000; n++) {
		d = backoff_next(&b);
		if (!CHECK(d >= 1000 && d <= 120000))
			break;
	}
}

/*
 * Jitter: at a given step the delays cover the range (lowest and highest
 * tenth both hit), take many distinct values and average near the middle.
 */
static void
test_spread(void)
{
	static unsigned long seen[DRAWS];
	struct backoff b;
	unsigned long d, lo = ~0UL, hi = 0, lower, upper, span;
	double sum = 0, mean;
	int i, j, distinct = 0, low10 = 0, high10 = 0;

	lower = 1000;
	upper = 16000;		/* step 3 of initial 1 s, max 120 s */
	span = upper - lower;
	for (i = 0; i < DRAWS; i++) {
		backoff_init(&b, 1, 120);
		backoff_next(&b);
		backoff_next(&b);
		backoff_next(&b);
		d = backoff_next(&b);
		seen[i] = d;
		sum += (double)d;
		lo = d < lo ? d : lo;
		hi = d > hi ? d : hi;
		low10 += d < lower + span / 10;
		high10 += d > upper - span / 10;
	}
	CHECK(lo >= lower && hi <= upper);
	CHECK(low10 > DRAWS / 20);	/* ~10% expected */
	CHECK(high10 > DRAWS / 20);
	mean = sum / DRAWS;
	CHECK(mean > lower + span * 0.4 && mean < lower + span * 0.6);
	for (i = 0; i < DRAWS; i++) {
		for (j = 0; j < i && seen[j] != seen[i]; j++)
			;
		distinct += j == i;
	}
	CHECK(distinct > DRAWS / 2);

	/* the very first retry is already spread: [initial, 2 * initial] */
	lo = ~0UL;
	hi = 0;
	for (i = 0; i < DRAWS; i++) {
		backoff_init(&b, 10, 120);
		d = backoff_next(&b);
		lo = d < lo ? d : lo;
		hi = d > hi ? d : hi;
	}
	CHECK(lo >= 10000 && lo < 11000);
	CHECK(hi <= 20000 && hi > 19000);
}

/* A long enough session resets: the next delay is a first delay again. */
static void
test_reset(void)
{
	struct backoff b;
	unsigned long d;
	int i, n;

	backoff_init(&b, 1, 120);
	for (n = 0; n < 10; n++)
		backoff_next(&b);
	/* deep in: delays reach past the first ceiling (2 s) nearly always */
	for (i = 0, n = 0; i < 100; i++)
		n += backoff_next(&b) > 2000;
	CHECK(n > 90);
	backoff_reset(&b);
	d = backoff_next(&b);
	CHECK(d >= 1000 && d <= 2000);
	d = backoff_next(&b);
	CHECK(d >= 1000 && d <= 4000);
	for (i = 0; i < 200; i++) {
		backoff_reset(&b);
		d = backoff_next(&b);
		if (!CHECK(d >= 1000 && d <= 2000))
			break;
	}
}

int
main(void)
{
	if (sodium_init() == -1)
		return 2;
	test_bounds();
	test_spread();
	test_reset();
	return unit_done();
}
