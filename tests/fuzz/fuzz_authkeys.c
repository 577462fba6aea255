/*
 * authorized_keys lines and their options: the input is a file, parsed line
 * by line as authkeys_load does, then every accepted key is queried the way
 * the relay queries it (permitlisten, from=, lookup by key).
 */
#include <stdio.h>

#include "fuzz.h"

#define FUZZ_MAX_LINE	16384	/* authkeys_load's line buffer */

static const char *fuzz_addrs[] = {
	"203.0.113.7", "10.0.0.1", "2001:db8::1", "::ffff:192.0.2.1", "", NULL
};

/* Query one accepted key as the relay would, checking what the parser promised. */
static void
fuzz_check_key(struct authkeys *list, struct authkey *ak)
{
	size_t i;
	const char *c;

	FUZZ_ASSERT(ak->key != NULL && ak->keytype != NULL);
	FUZZ_ASSERT(ak->fp != NULL && strncmp(ak->fp, "SHA256:", 7) == 0);
	FUZZ_ASSERT(ak->name != NULL && *ak->name != '\0');
	for (c = ak->name; *c; c++)
		FUZZ_ASSERT((unsigned char)*c >= 0x20 && *c != 0x7f);
	FUZZ_ASSERT(ak->npermits <= 64);
	for (i = 0; i < ak->npermits; i++) {
		FUZZ_ASSERT(ak->permits[i].port >= 0 &&
		    ak->permits[i].port <= 65535);
		FUZZ_ASSERT(authkey_permits(ak, ak->permits[i].host,
		    ak->permits[i].port == 0 ? 4649 : ak->permits[i].port));
	}
	if (ak->npermits == 0)
		FUZZ_ASSERT(!authkey_permits(ak, NULL, 4649));
	(void)authkey_permits(ak, "0.0.0.0", 22);
	(void)authkey_permits(ak, "localhost", 4650);
	for (i = 0; fuzz_addrs[i] != NULL; i++)
		(void)authkey_from_ok(ak, fuzz_addrs[i]);
	if (ak->from == NULL)
		FUZZ_ASSERT(authkey_from_ok(ak, "198.51.100.1"));
	(void)authkeys_find(list, ak->key);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	log_init("fuzz_authkeys", 0);
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct authkeys list;
	struct authkey *ak;
	char *text, *line, *nl, err[256];
	int rc;

	TAILQ_INIT(&list);
	text = fuzz_string(data, size);
	for (line = text; *line != '\0'; line = nl) {
		char save = '\0';

		/* fgets: a line keeps its '\n'; too-long lines are skipped */
		if ((nl = strchr(line, '\n')) != NULL)
			nl++;
		else
			nl = line + strlen(line);
		if ((size_t)(nl - line) >= FUZZ_MAX_LINE)
			continue;
		save = *nl;
		*nl = '\0';
		err[0] = '\0';
		rc = authkeys_parse_line(line, &ak, err, sizeof err);
		*nl = save;
		FUZZ_ASSERT(rc >= -1 && rc <= 1);
		if (rc == -1) {
			FUZZ_ASSERT(ak == NULL && err[0] != '\0');
			continue;
		}
		if (rc == 0) {
			FUZZ_ASSERT(ak == NULL);
			continue;
		}
		FUZZ_ASSERT(ak != NULL);
		if (authkeys_find(&list, ak->key) != NULL) {
			authkey_free(ak);	/* duplicate key: ignored */
			continue;
		}
		TAILQ_INSERT_TAIL(&list, ak, entry);
		fuzz_check_key(&list, ak);
	}
	authkeys_free(&list);
	free(text);
	return 0;
}
