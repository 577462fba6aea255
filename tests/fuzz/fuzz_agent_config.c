/*
 * agent.conf parsing: inih, every [agent]/[relay]/[relay NAME]/[forward]/
 * [path] key and the values it keeps. File checks (identity mode,
 * known_hosts) are left to config_load and not exercised here.
 */
#include <stdio.h>

#include "fuzz.h"
#include "agent.h"

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	log_init("fuzz_agent_config", 0);
	ssh_init();
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct agent_config *c;
	struct forward *f;
	struct path *p;
	struct relay_conf *r;
	char *text, err[512];
	int n;

	text = fuzz_string(data, size);
	err[0] = '\0';
	c = config_parse_text("agent.conf", text, err, sizeof err);
	if (c == NULL) {
		/* every refusal names the file and the line */
		FUZZ_ASSERT(strncmp(err, "agent.conf:", 11) == 0);
	} else {
		FUZZ_ASSERT(c->ka_interval >= 1 && c->ka_interval <= 3600);
		FUZZ_ASSERT(c->ka_count >= 1 && c->ka_count <= 100);
		FUZZ_ASSERT(c->backoff_initial >= 1);
		FUZZ_ASSERT(c->identity != NULL && c->user != NULL);
		FUZZ_ASSERT(c->control_socket && *c->control_socket == '/');
		/* ports may still be missing: config_load's validation
		 * refuses a [forward] without remote and local */
		TAILQ_FOREACH(f, &c->forwards, entry)
			FUZZ_ASSERT(f->name != NULL);
		TAILQ_FOREACH(p, &c->paths, entry)
			FUZZ_ASSERT(p->name != NULL);
		/* relays in file order, all named or the one unnamed */
		FUZZ_ASSERT(c->relays_active >= 1 &&
		    c->relays_active <= AGENT_MAX_ACTIVE);
		n = 0;
		TAILQ_FOREACH(r, &c->relays, entry) {
			FUZZ_ASSERT(r->name != NULL && r->index == n);
			FUZZ_ASSERT(config_relay(c, n) == r);
			FUZZ_ASSERT(r->named == TAILQ_FIRST(&c->relays)->named);
			FUZZ_ASSERT(r->named || c->nrelays == 1);
			n++;
		}
		FUZZ_ASSERT(n == c->nrelays);
		config_free(c);
	}
	free(text);
	return 0;
}
