/*
 * Address and number parsing: parse_hostport (listen =, permitlisten hosts),
 * match_addr_list (from= and CIDR), parse_uint and its wrappers. The first
 * byte picks flags and ranges, the rest is the text; for the address
 * matcher the text is "addr\npattern-list".
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>

#include "fuzz.h"

#define FUZZ_MAX_ADDR	64	/* a peer address is at most INET6_ADDRSTRLEN */

static const unsigned long fuzz_limits[8][2] = {
	{ 0, 0 }, { 0, 1 }, { 1, 65535 }, { 1, 3600 }, { 0, 128 },
	{ 1, 100000 }, { 0, (unsigned long)-1 }, { 5, 4 }
};

/* A host that "host:port" or "[host]:port" writes back unchanged. */
static int
fuzz_plain_host(const char *h)
{
	if (*h == '\0')
		return 0;
	for (; *h; h++)
		if (!isalnum((unsigned char)*h) && strchr(".:-_*%", *h) == NULL)
			return 0;
	return 1;
}

/* parse_hostport: results in range, and a plain host:port round-trips. */
static void
fuzz_hostport(const char *s, int port_only_ok)
{
	const char *why = NULL;
	char *host = NULL, *host2 = NULL, *again;
	uint16_t port = 0, port2 = 0;

	if (parse_hostport(s, &host, &port, port_only_ok, &why) == -1) {
		FUZZ_ASSERT(why != NULL && host == NULL);
		return;
	}
	FUZZ_ASSERT(port >= 1);
	if (host == NULL) {
		FUZZ_ASSERT(port_only_ok && strchr(s, ':') == NULL);
		return;
	}
	if (fuzz_plain_host(host)) {
		xasprintf(&again, strchr(host, ':') ? "[%s]:%u" : "%s:%u",
		    host, port);
		FUZZ_ASSERT(parse_hostport(again, &host2, &port2, 0,
		    &why) == 0);
		FUZZ_ASSERT(port2 == port && strcmp(host2, host) == 0);
		free(again);
		free(host2);
	}
	free(host);
}

/* parse_uint and friends: a success is in range and is the decimal value. */
static void
fuzz_numbers(const char *s, unsigned int sel)
{
	unsigned long min = fuzz_limits[sel & 7][0];
	unsigned long max = fuzz_limits[sel & 7][1];
	unsigned long n = 0, ref;
	const char *why = NULL;
	uint16_t port;
	char *end;
	int b;

	if (parse_uint(s, min, max, &n, &why) == 0) {
		FUZZ_ASSERT(n >= min && n <= max);
		FUZZ_ASSERT(isdigit((unsigned char)*s));
		errno = 0;
		ref = strtoul(s, &end, 10);
		FUZZ_ASSERT(*end == '\0' && errno == 0 && ref == n);
	} else
		FUZZ_ASSERT(why != NULL);
	if (parse_seconds(s, min, max, &n, &why) == 0)
		FUZZ_ASSERT(n >= min && n <= max);
	if (parse_port(s, &port, &why) == 0)
		FUZZ_ASSERT(port >= 1);
	if (parse_bool(s, &b, &why) == 0)
		FUZZ_ASSERT(b == 0 || b == 1);
}

/* The obvious recursive matcher, to check match_pattern on short inputs. */
static int
fuzz_match_ref(const char *s, const char *pat)
{
	if (*pat == '\0')
		return *s == '\0';
	if (*pat == '*')
		return fuzz_match_ref(s, pat + 1) ||
		    (*s != '\0' && fuzz_match_ref(s + 1, pat));
	if (*s == '\0')
		return 0;
	if (*pat != '?' && tolower((unsigned char)*pat) !=
	    tolower((unsigned char)*s))
		return 0;
	return fuzz_match_ref(s + 1, pat + 1);
}

/*
 * match_addr_list/match_pattern: tri-state result; a pattern matches
 * itself; short inputs agree with the reference matcher.
 */
static void
fuzz_match(const char *s)
{
	char addr[FUZZ_MAX_ADDR + 1];
	const char *nl = strchr(s, '\n'), *list;
	size_t n;
	int m;

	n = nl ? (size_t)(nl - s) : strlen(s);
	if (n > FUZZ_MAX_ADDR)
		n = FUZZ_MAX_ADDR;
	memcpy(addr, s, n);
	addr[n] = '\0';
	list = nl ? nl + 1 : "";
	m = match_addr_list(addr, list);
	FUZZ_ASSERT(m >= -1 && m <= 1);
	FUZZ_ASSERT(match_pattern(addr, addr) == 1);
	if (*list != '\0' && strlen(list) <= FUZZ_MAX_ADDR &&
	    strchr(list, '\n') == NULL)
		FUZZ_ASSERT(match_pattern(list, list) == 1);
	if (strlen(addr) <= 16 && strlen(list) <= 12)
		FUZZ_ASSERT(match_pattern(addr, list) ==
		    fuzz_match_ref(addr, list));
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	log_init("fuzz_hostport", 0);
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned int sel;
	char *s;

	if (size < 1)
		return 0;
	sel = data[0];
	s = fuzz_string(data + 1, size - 1);
	fuzz_hostport(s, sel & 1);
	fuzz_numbers(s, sel >> 1);
	fuzz_match(s);
	free(s);
	return 0;
}
