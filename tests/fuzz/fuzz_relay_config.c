/*
 * relay.conf loading: inih, the line reader with its long-line handling,
 * every key's parser, listen lists and the defaults after a good parse.
 */
#include <stdio.h>

#include "fuzz.h"
#include "relay.h"

/*
 * An accepted penalty_exempt list must mean what it says to the matcher the
 * relay uses (match_addr_list): a CIDR entry contains its own network
 * address, and no entry has a blank inside (an address never does).
 */
static void
fuzz_check_addrlist(const char *list)
{
	char *copy, *tok, *save = NULL, *slash, *entry;

	copy = xstrdup(list);
	for (tok = strtok_r(copy, ",", &save); tok != NULL;
	    tok = strtok_r(NULL, ",", &save)) {
		while (*tok == ' ')
			tok++;
		if (*tok == '!')
			tok++;
		FUZZ_ASSERT(strpbrk(tok, " \t") == NULL);
		if ((slash = strchr(tok, '/')) == NULL)
			continue;
		entry = xstrdup(tok);
		*slash = '\0';
		FUZZ_ASSERT(match_addr_list(tok, entry) == 1);
		free(entry);
	}
	free(copy);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	log_init("fuzz_relay_config", 0);
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct relay_config c;
	char *text, err[512];
	size_t i;
	int rc;

	text = fuzz_string(data, size);
	err[0] = '\0';
	rc = config_load_string(&c, "relay.conf", text, err, sizeof err);
	if (rc == -1) {
		/* every refusal names the file (and a line, or the cause) */
		FUZZ_ASSERT(strncmp(err, "relay.conf:", 11) == 0);
	} else {
		FUZZ_ASSERT(rc == 0);
		FUZZ_ASSERT(c.nlisten >= 1 && c.listen != NULL);
		for (i = 0; i < c.nlisten; i++)
			FUZZ_ASSERT(c.listen[i].port != 0);
		FUZZ_ASSERT(c.host_key && *c.host_key);
		FUZZ_ASSERT(c.authorized_keys && *c.authorized_keys);
		FUZZ_ASSERT(c.forward_address && *c.forward_address);
		FUZZ_ASSERT(c.control_socket && *c.control_socket);
		FUZZ_ASSERT(c.keepalive_interval >= 1 &&
		    c.keepalive_interval <= 3600);
		FUZZ_ASSERT(c.keepalive_count_max >= 1 &&
		    c.keepalive_count_max <= 100);
		FUZZ_ASSERT(c.max_startups >= 1 && c.max_startups <= 100000);
		FUZZ_ASSERT(c.login_grace_time >= 1 &&
		    c.login_grace_time <= 600);
		FUZZ_ASSERT(c.startups_begin >= 1 &&
		    c.startups_begin <= c.startups_full &&
		    c.startups_full == c.max_startups &&
		    c.startups_rate <= 100);
		if (c.penalty_exempt != NULL)
			fuzz_check_addrlist(c.penalty_exempt);
	}
	config_clear(&c);
	free(text);
	return 0;
}
