/* Shared bits of the libFuzzer targets. */
#ifndef SIMTUN_FUZZ_H
#define SIMTUN_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);
int	LLVMFuzzerInitialize(int *, char ***);

/* The input as a C string (parsers take NUL-terminated text). */
static inline char *
fuzz_string(const uint8_t *data, size_t size)
{
	char *s = xmalloc(size + 1);

	memcpy(s, data, size);
	s[size] = '\0';
	return s;
}

/* An invariant the parser promised does not hold: crash so libFuzzer saves it. */
#define FUZZ_ASSERT(cond) do {						\
	if (!(cond)) {							\
		log_error("%s:%d: fuzz invariant failed: %s", __FILE__,	\
		    __LINE__, #cond);					\
		abort();						\
	}								\
} while (0)

#endif
