/* simtun unit tests: tiny assertion helpers, one header, no framework. */
#ifndef SIMTUN_UNIT_H
#define SIMTUN_UNIT_H

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * Under UBSan (make SANITIZE=1) make undefined behaviour fail the test
 * instead of printing a line that nobody reads; unused otherwise.
 */
const char *__ubsan_default_options(void);
__attribute__((used)) const char *
__ubsan_default_options(void)
{
	return "halt_on_error=1:print_stacktrace=1";
}

static int unit_checks;
static int unit_failed;

/* Record one check; print file:line and the expression when it fails. */
static inline int
unit_check(int ok, const char *file, int line, const char *expr)
{
	unit_checks++;
	if (!ok) {
		unit_failed++;
		fprintf(stderr, "%s:%d: check failed: %s\n", file, line, expr);
	}
	return ok;
}

/* String equality that treats NULL as a value and shows both sides. */
static inline int
unit_check_str(const char *got, const char *want, const char *file, int line,
    const char *expr)
{
	int ok;

	if (got == NULL || want == NULL)
		ok = got == want;
	else
		ok = strcmp(got, want) == 0;
	unit_checks++;
	if (!ok) {
		unit_failed++;
		fprintf(stderr, "%s:%d: check failed: %s\n    got:  %s%s%s\n"
		    "    want: %s%s%s\n", file, line, expr,
		    got ? "\"" : "", got ? got : "NULL", got ? "\"" : "",
		    want ? "\"" : "", want ? want : "NULL", want ? "\"" : "");
	}
	return ok;
}

/* Integer equality that shows both sides. */
static inline int
unit_check_int(intmax_t got, intmax_t want, const char *file, int line,
    const char *expr)
{
	unit_checks++;
	if (got != want) {
		unit_failed++;
		fprintf(stderr, "%s:%d: check failed: %s\n    got:  %jd\n"
		    "    want: %jd\n", file, line, expr, got, want);
		return 0;
	}
	return 1;
}

#define CHECK(c)	unit_check(!!(c), __FILE__, __LINE__, #c)
#define CHECK_STR(a, b)	unit_check_str((a), (b), __FILE__, __LINE__, \
			    #a " == " #b)
#define CHECK_INT(a, b)	unit_check_int((intmax_t)(a), (intmax_t)(b), \
			    __FILE__, __LINE__, #a " == " #b)

/* Print the summary; the exit status of main. */
static inline int
unit_done(void)
{
	if (unit_failed) {
		printf("%d of %d checks failed\n", unit_failed, unit_checks);
		return 1;
	}
	printf("%d checks passed\n", unit_checks);
	return 0;
}

/* Deterministic PRNG (xorshift64*) so fuzz runs are reproducible. */
static uint64_t unit_rng_state = 0x5eed5eed12345678ULL;

static inline void
unit_rng_seed(uint64_t seed)
{
	unit_rng_state = seed ? seed : 0x5eed5eed12345678ULL;
}

static inline uint32_t
unit_rng(void)
{
	uint64_t x = unit_rng_state;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	unit_rng_state = x;
	return (uint32_t)((x * 0x2545F4914F6CDD1DULL) >> 32);
}

/* Uniform-ish value in [0, n). */
static inline uint32_t
unit_rng_below(uint32_t n)
{
	return n ? unit_rng() % n : 0;
}

#endif
