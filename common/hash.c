/* String hashing for the daemons' lookup tables. */
#include "common.h"

/* FNV-1a, 32 bits: fast and spread well enough for names and addresses. */
uint32_t
str_hash(const char *s)
{
	uint32_t h = 2166136261u;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h;
}
