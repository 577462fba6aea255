/*
 * agent.conf parsing: inih, every [agent]/[relay]/[forward]/[path] key and
 * the values it keeps. File checks (identity mode, known_hosts) are left
 * to config_load and not exercised here.
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
	char *text, err[512];

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
		config_free(c);
	}
	free(text);
	return 0;
}
