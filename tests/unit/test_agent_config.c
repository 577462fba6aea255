/*
 * Unit tests for agent/config.c: [relay] and [relay NAME] sections,
 * relays_active, a [path]'s own relay address, the error messages
 * (file:line: key) and which reloads keep the sessions.
 */
#include <sys/stat.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../agent/agent.h"
#include "unit.h"

static char dir[] = "/tmp/simtun-unit-agent.XXXXXX";
static char conf[128], idpath[128], khpath[128];
static char err[1024];

#define FP	"SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
#define FP2	"SHA256:BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB"

/* An ed25519 identity and a known_hosts file the configs can name. */
static void
setup(void)
{
	ssh_key key = NULL;
	FILE *f;

	if (mkdtemp(dir) == NULL) {
		perror("mkdtemp");
		exit(2);
	}
	snprintf(conf, sizeof conf, "%s/agent.conf", dir);
	snprintf(idpath, sizeof idpath, "%s/id", dir);
	snprintf(khpath, sizeof khpath, "%s/known_hosts", dir);
	if (ssh_pki_generate(SSH_KEYTYPE_ED25519, 0, &key) != SSH_OK ||
	    ssh_pki_export_privkey_file(key, NULL, NULL, NULL, idpath) !=
	    SSH_OK) {
		fprintf(stderr, "cannot make an ed25519 key\n");
		exit(2);
	}
	ssh_key_free(key);
	chmod(idpath, 0600);
	if ((f = fopen(khpath, "w")) == NULL) {
		perror(khpath);
		exit(2);
	}
	fclose(f);
}

/* Write "[agent] identity" + body to agent.conf and load it. */
static struct agent_config *
load(const char *body)
{
	struct agent_config *c;
	FILE *f;

	if ((f = fopen(conf, "w")) == NULL) {
		perror(conf);
		exit(2);
	}
	fprintf(f, "[agent]\nidentity = %s\n%s", idpath, body);
	fclose(f);
	err[0] = '\0';
	c = config_load(conf, err, sizeof err);
	return c;
}

/* The load fails and err starts with "file:LINE: " (LINE 0: "file: "). */
static int
fails_at(const char *body, int line, const char *want)
{
	struct agent_config *c = load(body);
	char prefix[160];
	int ok = 1;

	if (c != NULL) {
		config_free(c);
		fprintf(stderr, "    loaded, want an error at line %d\n", line);
		return 0;
	}
	if (line > 0)
		snprintf(prefix, sizeof prefix, "%s:%d: ", conf, line);
	else
		snprintf(prefix, sizeof prefix, "%s: ", conf);
	if (strncmp(err, prefix, strlen(prefix)) != 0)
		ok = 0;
	if (want != NULL && strstr(err, want) == NULL)
		ok = 0;
	if (!ok)
		fprintf(stderr, "    error: %s\n    want: %s...%s\n", err, prefix,
		    want ? want : "");
	return ok;
}

#define FWD	"[forward ssh]\nremote = 4649\nlocal = 127.0.0.1:22\n"

/* The unnamed [relay] is one relay, as before, named "default". */
static void
test_unnamed(void)
{
	struct agent_config *c;
	struct relay_conf *r;

	c = load("[relay]\nhost = relay.example.com\nhost_key = " FP "\n" FWD);
	CHECK(c != NULL);
	if (c == NULL)
		return;
	CHECK_INT(c->nrelays, 1);
	CHECK_INT(c->relays_active, 1);
	r = config_relay(c, 0);
	CHECK(r != NULL && r == TAILQ_FIRST(&c->relays));
	CHECK_STR(r->name, "default");
	CHECK_INT(r->named, 0);
	CHECK_STR(r->host, "relay.example.com");
	CHECK_INT(r->port, 2222);
	CHECK_STR(r->host_key, FP);
	CHECK(r->known_hosts == NULL);
	CHECK(config_relay(c, 1) == NULL);
	config_free(c);

	/* the old messages, file: [relay] ... */
	CHECK(fails_at(FWD, 0, "[relay] host is missing"));
	CHECK(fails_at("[relay]\nhost_key = " FP "\n" FWD, 0,
	    "[relay] host is missing"));
	CHECK(fails_at("[relay]\nhost = r\n" FWD, 0,
	    "[relay] needs host_key"));
	CHECK(fails_at("[relay]\nhost = r\nhost_key = " FP "\nwhat = 1\n",
	    6, "unknown key 'what' in [relay]"));
	/* reopening [relay] goes on with the same relay */
	c = load("[relay]\nhost = r\n" FWD "[relay]\nport = 2200\n"
	    "host_key = " FP "\n");
	CHECK(c != NULL && c->nrelays == 1);
	if (c != NULL)
		CHECK_INT(config_relay(c, 0)->port, 2200);
	config_free(c);
}

/* [relay NAME] sections in file order, each with its own keys. */
static void
test_named(void)
{
	struct agent_config *c;
	struct relay_conf *a, *b;
	char text[2048];

	snprintf(text, sizeof text, "[relay tokyo]\nhost = 198.51.100.1\n"
	    "host_key = " FP "\n\n[relay osaka-2]\nhost = relay2.example.net"
	    "\nport = 22\nknown_hosts = %s\n" FWD, khpath);
	c = load(text);
	CHECK(c != NULL);
	if (c == NULL) {
		fprintf(stderr, "    %s\n", err);
		return;
	}
	CHECK_INT(c->nrelays, 2);
	CHECK_INT(c->relays_active, 1);
	a = config_relay(c, 0);
	b = config_relay(c, 1);
	CHECK(a != NULL && b != NULL && TAILQ_NEXT(a, entry) == b);
	CHECK_STR(a->name, "tokyo");
	CHECK_INT(a->named, 1);
	CHECK_STR(a->host, "198.51.100.1");
	CHECK_INT(a->port, 2222);
	CHECK_STR(a->host_key, FP);
	CHECK(a->known_hosts == NULL);
	CHECK_INT(a->line, 3);
	CHECK_STR(b->name, "osaka-2");
	CHECK_STR(b->host, "relay2.example.net");
	CHECK_INT(b->port, 22);
	CHECK(b->host_key == NULL);
	CHECK_STR(b->known_hosts, khpath);
	/* with no [path], the relay's own address */
	CHECK_STR(path_host(b, NULL), "relay2.example.net");
	CHECK_INT(path_port(b, NULL), 22);
	config_free(c);

	/* one named relay is fine, and a path may name its address then */
	c = load("[relay a]\nhost = r\nhost_key = " FP "\n[path arc]\n"
	    "interface = arc0\nhost = 100.127.10.1\nport = 2200\n" FWD);
	CHECK(c != NULL);
	if (c != NULL) {
		CHECK_STR(path_host(config_relay(c, 0),
		    TAILQ_FIRST(&c->paths)), "100.127.10.1");
		CHECK_INT(path_port(config_relay(c, 0),
		    TAILQ_FIRST(&c->paths)), 2200);
	}
	config_free(c);

	/* a reopened [relay a] goes on with a */
	c = load("[relay a]\nhost = r1\n[relay b]\nhost = r2\nhost_key = " FP
	    "\n[relay a]\nhost_key = " FP2 "\n" FWD);
	CHECK(c != NULL && c->nrelays == 2);
	if (c != NULL)
		CHECK_STR(config_relay(c, 0)->host_key, FP2);
	config_free(c);
}

/* What a named relay may not be, each with file:line and the key. */
static void
test_named_errors(void)
{
	struct agent_config *c;
	char text[2048];

	/* mixing the unnamed [relay] with named ones, either way round */
	CHECK(fails_at("[relay]\nhost = r1\nhost_key = " FP "\n[relay b]\n"
	    "host = r2\n", 6, "cannot be mixed"));
	CHECK(fails_at("[relay a]\nhost = r1\nhost_key = " FP "\n[relay]\n"
	    "host = r2\n", 6, "[relay] cannot be mixed with [relay NAME]"));
	/* names that would not read well in status and logs */
	CHECK(fails_at("[relay a b]\nhost = r\n", 3, "bad relay name"));
	CHECK(fails_at("[relay a/b]\nhost = r\n", 3, "bad relay name"));
	CHECK(fails_at("[relay "
	    "abcdefghijabcdefghijabcdefghijabc]\n", 3, "bad relay name"));
	/* keys of a named relay */
	CHECK(fails_at("[relay a]\nhost = r\nhost_key = " FP "\nfrob = 1\n",
	    6, "unknown key 'frob' in [relay a]"));
	CHECK(fails_at("[relay a]\nhost = r\nport = 0\n", 5, "port:"));
	CHECK(fails_at("[relay a]\nhost = \n", 4, "host:"));
	CHECK(fails_at("[relay a]\nhost = r\nhost_key = nope\n", 5,
	    "host_key:"));
	/* rules of one relay: where its section starts */
	CHECK(fails_at("[relay a]\nhost = r1\nhost_key = " FP "\n\n"
	    "[relay b]\nhost_key = " FP "\n" FWD, 7,
	    "[relay b] host is missing"));
	CHECK(fails_at("[relay a]\nhost = r1\nhost_key = " FP "\n\n"
	    "[relay b]\nhost = r2\n" FWD, 7,
	    "[relay b] needs host_key"));
	snprintf(text, sizeof text, "[relay a]\nhost = r1\nhost_key = " FP
	    "\nknown_hosts = %s\n" FWD, khpath);
	CHECK(fails_at(text, 3, "[relay a] has both host_key and known_hosts"));
	CHECK(fails_at("[relay a]\nhost = r1\nknown_hosts = /nonexistent/kh\n"
	    FWD, 5, "known_hosts /nonexistent/kh"));
	/* the same relay twice would be two sessions taking each other over */
	CHECK(fails_at("[relay a]\nhost = r1\nhost_key = " FP "\n"
	    "[relay b]\nhost = r1\nhost_key = " FP "\n" FWD, 7,
	    "host: [relay b] and [relay a] are both r1 port 2222"));
	/* another port of the same host is another relay */
	c = load("[relay a]\nhost = r1\nhost_key = " FP "\n"
	    "[relay b]\nhost = r1\nport = 2223\nhost_key = " FP "\n" FWD);
	CHECK(c != NULL && c->nrelays == 2);
	config_free(c);
}

/* relays_active: 1 (default) or 2, and only with as many relays. */
static void
test_relays_active(void)
{
	struct agent_config *c;
	const char *two = "[relay a]\nhost = r1\nhost_key = " FP "\n"
	    "[relay b]\nhost = r2\nhost_key = " FP "\n" FWD;
	char text[2048];

	snprintf(text, sizeof text, "relays_active = 2\n%s", two);
	c = load(text);
	CHECK(c != NULL && c->relays_active == 2 && c->nrelays == 2);
	config_free(c);
	snprintf(text, sizeof text, "relays_active = 1\n%s", two);
	c = load(text);
	CHECK(c != NULL && c->relays_active == 1);
	config_free(c);
	CHECK(fails_at("relays_active = 2\n[relay a]\nhost = r1\nhost_key = "
	    FP "\n" FWD, 3, "relays_active: 2 sessions at once need at "
	    "least 2 [relay NAME] sections (1 configured)"));
	CHECK(fails_at("relays_active = 2\n[relay]\nhost = r1\nhost_key = "
	    FP "\n" FWD, 3, "relays_active:"));
	CHECK(fails_at("relays_active = 3\n", 3, "relays_active:"));
	CHECK(fails_at("relays_active = 0\n", 3, "relays_active:"));
	CHECK(fails_at("relays_active = two\n", 3, "relays_active:"));
}

/* A [path]'s own relay address means nothing with several relays. */
static void
test_path_address(void)
{
	const char *two = "[relay a]\nhost = r1\nhost_key = " FP "\n"
	    "[relay b]\nhost = r2\nhost_key = " FP "\n" FWD;
	char text[2048];
	struct agent_config *c;

	snprintf(text, sizeof text, "%s[path arc]\ninterface = arc0\n"
	    "host = 100.127.10.1\n", two);
	CHECK(fails_at(text, 14, "host: [path arc] cannot name the relay's "
	    "address with 2 [relay NAME] sections"));
	snprintf(text, sizeof text, "%s[path arc]\ninterface = arc0\n"
	    "port = 2200\n", two);
	CHECK(fails_at(text, 14, "port: [path arc]"));
	/* interface and source are fine */
	snprintf(text, sizeof text, "%s[path cellular]\ninterface = wwan0\n"
	    "[path arc]\nsource = 10.77.0.2\n", two);
	c = load(text);
	CHECK(c != NULL && c->npaths == 2);
	config_free(c);
}

/* A reload keeps the sessions only if the relays are the same. */
static void
test_same_session(void)
{
	const char *base = "[relay a]\nhost = r1\nhost_key = " FP "\n"
	    "[relay b]\nhost = r2\nhost_key = " FP "\n" FWD;
	struct agent_config *c1, *c2;
	char text[2048];

	c1 = load(base);
	c2 = load(base);
	CHECK(c1 != NULL && c2 != NULL && config_same_session(c1, c2));
	config_free(c2);
	snprintf(text, sizeof text, "keepalive_interval = 7\n"
	    "backoff_max = 9\n%s", base);
	c2 = load(text);
	CHECK(c2 != NULL && config_same_session(c1, c2));
	config_free(c2);
	snprintf(text, sizeof text, "relays_active = 2\n%s", base);
	c2 = load(text);
	CHECK(c2 != NULL && !config_same_session(c1, c2));
	config_free(c2);
	/* another host, another order, one relay fewer, another name */
	c2 = load("[relay a]\nhost = r1\nhost_key = " FP "\n"
	    "[relay b]\nhost = r3\nhost_key = " FP "\n" FWD);
	CHECK(c2 != NULL && !config_same_session(c1, c2));
	config_free(c2);
	c2 = load("[relay b]\nhost = r2\nhost_key = " FP "\n"
	    "[relay a]\nhost = r1\nhost_key = " FP "\n" FWD);
	CHECK(c2 != NULL && !config_same_session(c1, c2));
	config_free(c2);
	c2 = load("[relay a]\nhost = r1\nhost_key = " FP "\n" FWD);
	CHECK(c2 != NULL && !config_same_session(c1, c2) &&
	    !config_same_session(c2, c1));
	config_free(c2);
	c2 = load("[relay a]\nhost = r1\nhost_key = " FP "\n"
	    "[relay c]\nhost = r2\nhost_key = " FP "\n" FWD);
	CHECK(c2 != NULL && !config_same_session(c1, c2));
	config_free(c2);
	c2 = load("[relay a]\nhost = r1\nhost_key = " FP "\n"
	    "[relay b]\nhost = r2\nhost_key = " FP2 "\n" FWD);
	CHECK(c2 != NULL && !config_same_session(c1, c2));
	config_free(c2);
	config_free(c1);
}

/* config_parse_text (the fuzzer's entry) keeps every error file:line. */
static void
test_parse_text(void)
{
	struct agent_config *c;

	c = config_parse_text("agent.conf", "[relay a]\nhost = r\n[relay]\n",
	    err, sizeof err);
	CHECK(c == NULL && strncmp(err, "agent.conf:3: ", 14) == 0);
	c = config_parse_text("agent.conf", "[relay a]\nhost = r\n[relay b]\n"
	    "port = 1\n", err, sizeof err);
	CHECK(c != NULL && c->nrelays == 2);
	config_free(c);
}

int
main(void)
{
	char cmd[PATH_MAX + 16];

	log_init("test_agent_config", 0);
	ssh_init();
	setup();
	test_unnamed();
	test_named();
	test_named_errors();
	test_relays_active();
	test_path_address();
	test_same_session();
	test_parse_text();
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
	ssh_finalize();
	return unit_done();
}
