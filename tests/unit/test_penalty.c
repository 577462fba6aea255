/*
 * Unit tests for relay/penalty.c on a clock of our own: a source that keeps
 * failing authentication is blocked for penalty_time, doubled per strike up
 * to an hour; failures count within a minute; penalty_exempt sources are
 * never blocked nor capped per source; max_startups_per_source and
 * max_startups; idle records expire.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "../../relay/relay.h"
#include "unit.h"

static time_t fake_now = 1000000;

static time_t
fake_clock(void)
{
	return fake_now;
}

static struct relay r;

/* A relay config with these penalty settings and nothing else. */
static void
setup(unsigned long failures, unsigned long ptime, const char *exempt)
{
	penalty_clear();
	config_clear(&r.conf);
	memset(&r, 0, sizeof r);
	config_defaults(&r.conf);
	r.conf.penalty_failures = failures;
	r.conf.penalty_time = ptime;
	if (exempt != NULL)
		r.conf.penalty_exempt = xstrdup(exempt);
}

static int
admitted(const char *addr)
{
	const char *why = NULL;

	return penalty_admit(&r, addr, &why) == 0;
}

/* n failed authentications from addr, one a second. */
static void
fail_n(const char *addr, int n)
{
	while (n-- > 0) {
		penalty_auth_failed(&r, addr);
		if (n > 0)
			fake_now++;
	}
}

/*
 * How long addr is blocked from now: the first second at which it is
 * admitted again (the clock is put back afterwards). -1 if over limit.
 */
static long
blocked_for(const char *addr, long limit)
{
	time_t t0 = fake_now;
	long s;

	for (s = 0; s <= limit; s++) {
		fake_now = t0 + s;
		if (admitted(addr)) {
			fake_now = t0;
			return s;
		}
	}
	fake_now = t0;
	return -1;
}

/* Blocked after penalty_failures, for penalty_time, doubled each strike. */
static void
test_doubling(void)
{
	static const long want[] = { 30, 60, 120, 240, 480, 960, 1920, 1920 };
	const char *why = NULL;
	size_t i;

	setup(3, 30, NULL);
	CHECK(admitted("198.51.100.7"));
	fail_n("198.51.100.7", 2);
	CHECK(admitted("198.51.100.7"));
	fail_n("198.51.100.7", 1);
	CHECK_INT(penalty_admit(&r, "198.51.100.7", &why), -1);
	CHECK(why != NULL && strstr(why, "penalized") != NULL);
	/* another source is not affected */
	CHECK(admitted("198.51.100.8"));
	CHECK_INT(blocked_for("198.51.100.7", 4000), 30);

	setup(3, 30, NULL);
	for (i = 0; i < sizeof want / sizeof want[0]; i++) {
		fail_n("198.51.100.7", 3);
		CHECK_INT(blocked_for("198.51.100.7", 4000), want[i]);
		fake_now += want[i];	/* serve it; the record stays */
		penalty_gc();
	}
}

/* The block never exceeds an hour, whatever penalty_time and strikes. */
static void
test_cap(void)
{
	int i;

	setup(1, 3600, NULL);
	fail_n("203.0.113.1", 1);
	CHECK_INT(blocked_for("203.0.113.1", 8000), 3600);
	setup(1, 100, NULL);
	for (i = 0; i < 10; i++) {
		fail_n("203.0.113.1", 1);
		long b = blocked_for("203.0.113.1", 8000);

		CHECK(b > 0 && b <= 3600);
		if (i >= 6)
			CHECK_INT(b, 3600);
		fake_now += b;
	}
}

/* Failures farther apart than the window do not add up. */
static void
test_window(void)
{
	int i;

	setup(3, 30, NULL);
	for (i = 0; i < 10; i++) {
		penalty_auth_failed(&r, "192.0.2.50");
		fake_now += 61;
	}
	CHECK(admitted("192.0.2.50"));
	/* within the minute they do */
	fail_n("192.0.2.50", 3);
	CHECK(!admitted("192.0.2.50"));
}

/* penalty_failures = 0 turns the penalty box off. */
static void
test_off(void)
{
	setup(0, 30, NULL);
	fail_n("192.0.2.60", 100);
	CHECK(admitted("192.0.2.60"));
}

/* A carrier NAT address in penalty_exempt: never blocked, never capped. */
static void
test_exempt(void)
{
	int i;

	setup(2, 30, "100.64.0.0/10,192.0.2.9");
	fail_n("100.64.1.2", 50);
	CHECK(admitted("100.64.1.2"));
	fail_n("192.0.2.9", 50);
	CHECK(admitted("192.0.2.9"));
	fail_n("192.0.2.10", 2);
	CHECK(!admitted("192.0.2.10"));

	r.conf.max_startups_per_source = 3;
	for (i = 0; i < 5; i++)
		penalty_unauth(&r, "100.64.1.2", 1);
	CHECK(admitted("100.64.1.2"));
	/* the global limit still holds */
	r.nunauth = r.conf.startups_full;
	CHECK(!admitted("100.64.1.2"));
	r.nunauth = 0;
}

/* max_startups_per_source, then max_startups for everyone. */
static void
test_startups(void)
{
	const char *why = NULL;
	int i;

	setup(10, 30, NULL);
	r.conf.max_startups_per_source = 3;
	for (i = 0; i < 3; i++) {
		CHECK(admitted("198.51.100.20"));
		penalty_unauth(&r, "198.51.100.20", 1);
	}
	CHECK_INT(penalty_admit(&r, "198.51.100.20", &why), -1);
	CHECK(why != NULL && strstr(why, "max_startups_per_source") != NULL);
	CHECK(admitted("198.51.100.21"));
	penalty_unauth(&r, "198.51.100.20", -1);
	CHECK(admitted("198.51.100.20"));
	/* more "done" than "started" does not wrap */
	for (i = 0; i < 5; i++)
		penalty_unauth(&r, "198.51.100.20", -1);
	CHECK(admitted("198.51.100.20"));

	r.conf.max_startups_per_source = 0;	/* no cap per source */
	for (i = 0; i < 50; i++)
		penalty_unauth(&r, "198.51.100.22", 1);
	CHECK(admitted("198.51.100.22"));

	r.nunauth = r.conf.startups_full;
	CHECK_INT(penalty_admit(&r, "198.51.100.23", &why), -1);
	CHECK(why != NULL && strstr(why, "(max_startups)") != NULL);
	/* between start and full some are dropped, some not */
	r.conf.startups_begin = 10;
	r.conf.startups_rate = 50;
	r.conf.startups_full = 20;
	r.nunauth = 15;
	{
		int in = 0;

		for (i = 0; i < 400; i++)
			in += admitted("198.51.100.24");
		CHECK(in > 20 && in < 300);
	}
	r.nunauth = 0;
}

/* Idle records go; a penalized one stays an hour after its block. */
static void
test_expiry(void)
{
	setup(3, 30, NULL);
	CHECK_INT(penalty_nsources(), 0);
	fail_n("198.51.100.30", 1);
	CHECK_INT(penalty_nsources(), 1);
	fake_now += 60;
	penalty_gc();
	CHECK_INT(penalty_nsources(), 1);	/* still in the window */
	fake_now += 1;
	penalty_gc();
	CHECK_INT(penalty_nsources(), 0);

	/* a started, unfinished connection keeps its record */
	penalty_unauth(&r, "198.51.100.31", 1);
	fake_now += 10000;
	penalty_gc();
	CHECK_INT(penalty_nsources(), 1);
	penalty_unauth(&r, "198.51.100.31", -1);
	penalty_gc();
	CHECK_INT(penalty_nsources(), 0);

	/* a strike is remembered for an hour after the block ends... */
	fail_n("198.51.100.32", 3);
	CHECK_INT(blocked_for("198.51.100.32", 4000), 30);
	fake_now += 30 + 3600 - 1;
	penalty_gc();
	CHECK_INT(penalty_nsources(), 1);
	fail_n("198.51.100.32", 3);
	CHECK_INT(blocked_for("198.51.100.32", 4000), 60);
	/* ...then forgotten: the next block is the first again */
	fake_now += 60 + 3600;
	penalty_gc();
	CHECK_INT(penalty_nsources(), 0);
	fail_n("198.51.100.32", 3);
	CHECK_INT(blocked_for("198.51.100.32", 4000), 30);
	penalty_clear();
	CHECK_INT(penalty_nsources(), 0);
}

int
main(void)
{
	if (sodium_init() == -1)
		return 2;
	log_init("test_penalty", 0);
	penalty_set_clock(fake_clock);
	test_doubling();
	test_cap();
	test_window();
	test_off();
	test_exempt();
	test_startups();
	test_expiry();
	penalty_clear();
	config_clear(&r.conf);
	return unit_done();
}
