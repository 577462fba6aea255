/*
 * Unit tests for common/authkeys.c and common/keys.c with real keys made by
 * ssh-keygen at test time: parsing, options, from=, loading, fingerprints.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"
#include "unit.h"

static char tmpdir[] = "/tmp/simtun-unit-ak.XXXXXX";

/* One key made by ssh-keygen: files, the base64 blob, its fingerprint. */
struct tkey {
	char	 path[256];	/* private key; path.pub is the public one */
	char	 type[64];
	char	 b64[2048];
	char	 fp[128];	/* field 2 of ssh-keygen -lf */
	char	 kgl[4096];	/* the whole ssh-keygen -lf line */
	char	 name[64];
	ssh_key	 pub;		/* imported from path.pub by libssh */
};

static struct tkey k_ed1, k_ed2, k_ed3, k_ec, k_rsa;

/* Run a shell command; 0 when it exited 0. */
static int
sh(const char *fmt, ...)
{
	char cmd[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof cmd, fmt, ap);
	va_end(ap);
	return system(cmd) == 0 ? 0 : -1;
}

/* Make a key with ssh-keygen and read back what the tests compare with. */
static int
tkey_make(struct tkey *k, const char *name, const char *kt, const char *bits)
{
	char line[4096], pubpath[300];
	FILE *fp;

	snprintf(k->path, sizeof k->path, "%s/%s", tmpdir, name);
	if (sh("ssh-keygen -q -t %s %s -N '' -C '%s' -f '%s' </dev/null",
	    kt, bits, name, k->path) == -1)
		return -1;
	snprintf(pubpath, sizeof pubpath, "%s.pub", k->path);
	if ((fp = fopen(pubpath, "r")) == NULL)
		return -1;
	if (fgets(line, sizeof line, fp) == NULL ||
	    sscanf(line, "%63s %2047s", k->type, k->b64) != 2) {
		fclose(fp);
		return -1;
	}
	fclose(fp);
	snprintf(line, sizeof line, "ssh-keygen -lf '%s'", pubpath);
	if ((fp = popen(line, "r")) == NULL)
		return -1;
	if (fgets(line, sizeof line, fp) == NULL ||
	    sscanf(line, "%*s %127s", k->fp) != 1) {
		pclose(fp);
		return -1;
	}
	pclose(fp);
	line[strcspn(line, "\n")] = '\0';
	snprintf(k->kgl, sizeof k->kgl, "%s", line);
	snprintf(k->name, sizeof k->name, "%s", name);
	if (ssh_pki_import_pubkey_file(pubpath, &k->pub) != SSH_OK)
		return -1;
	return 0;
}

/* Parse one line; returns rc, the entry (or NULL) and err. */
static int
pl(const char *line, struct authkey **ak, char *err, size_t len)
{
	err[0] = '\0';
	*ak = (struct authkey *)-1;
	return authkeys_parse_line(line, ak, err, len);
}

/* Build a line "<opts> <type> <b64> <comment>" for key k. */
static char *
mkline(const char *opts, const struct tkey *k, const char *comment)
{
	char *s;

	xasprintf(&s, "%s%s%s %s%s%s", opts ? opts : "", opts ? " " : "",
	    k->type, k->b64, comment ? " " : "", comment ? comment : "");
	return s;
}

/* Expect the line refused with err starting with want. */
static void
refused(const char *line, const char *want, int at)
{
	struct authkey *ak;
	char err[256];
	int rc;

	rc = pl(line, &ak, err, sizeof err);
	unit_check_int(rc, -1, __FILE__, at, line);
	unit_check(ak == NULL, __FILE__, at, "ak == NULL");
	if (rc == 1)
		authkey_free(ak);
	if (want != NULL)
		unit_check_str(err, want, __FILE__, at, line);
	else
		unit_check(err[0] != '\0', __FILE__, at, "err set");
}

static void
test_plain(void)
{
	struct authkey *ak;
	char err[256], *line;

	line = mkline(NULL, &k_ed1, "pi-kitchen");
	CHECK_INT(pl(line, &ak, err, sizeof err), 1);
	free(line);
	if (!CHECK(ak != NULL && ak != (struct authkey *)-1))
		return;
	CHECK_STR(ak->name, "pi-kitchen");
	CHECK_STR(ak->keytype, "ssh-ed25519");
	CHECK_STR(ak->fp, k_ed1.fp);
	CHECK(ssh_key_cmp(ak->key, k_ed1.pub, SSH_KEY_CMP_PUBLIC) == 0);
	CHECK(ssh_key_cmp(ak->key, k_ed2.pub, SSH_KEY_CMP_PUBLIC) != 0);
	CHECK_INT(ak->npermits, 0);
	CHECK(ak->permits == NULL);
	CHECK(ak->from == NULL);
	CHECK_INT(ak->restricted, 0);
	/* no permitlisten: no port at all */
	CHECK_INT(authkey_permits(ak, NULL, 4649), 0);
	CHECK_INT(authkey_permits(ak, "0.0.0.0", 22), 0);
	/* no from=: any address */
	CHECK_INT(authkey_from_ok(ak, "203.0.113.9"), 1);
	CHECK_INT(authkey_from_ok(ak, "::1"), 1);
	authkey_free(ak);

	/* comment with blanks, CRLF, tabs between fields, leading blanks */
	xasprintf(&line, " \t%s\t%s \t pi at home  \r\n", k_ed2.type,
	    k_ed2.b64);
	CHECK_INT(pl(line, &ak, err, sizeof err), 1);
	free(line);
	if (CHECK(ak != NULL && ak != (struct authkey *)-1)) {
		CHECK_STR(ak->name, "pi at home");
		CHECK_STR(ak->fp, k_ed2.fp);
		authkey_free(ak);
	}

	/* ecdsa and rsa keys too */
	line = mkline(NULL, &k_ec, "ec-dev\n");
	CHECK_INT(pl(line, &ak, err, sizeof err), 1);
	free(line);
	if (CHECK(ak != NULL && ak != (struct authkey *)-1)) {
		CHECK_STR(ak->name, "ec-dev");
		CHECK_STR(ak->keytype, "ecdsa-sha2-nistp256");
		CHECK_STR(ak->fp, k_ec.fp);
		CHECK(ssh_key_cmp(ak->key, k_ec.pub, SSH_KEY_CMP_PUBLIC) == 0);
		authkey_free(ak);
	}
	line = mkline(NULL, &k_rsa, "rsa-dev");
	CHECK_INT(pl(line, &ak, err, sizeof err), 1);
	free(line);
	if (CHECK(ak != NULL && ak != (struct authkey *)-1)) {
		CHECK_STR(ak->keytype, "ssh-rsa");
		CHECK_STR(ak->fp, k_rsa.fp);
		CHECK(ssh_key_cmp(ak->key, k_rsa.pub, SSH_KEY_CMP_PUBLIC) == 0);
		authkey_free(ak);
	}
}

static void
test_options(void)
{
	struct authkey *ak;
	char err[256], *line;

	line = mkline("restrict,permitlisten=\"4649\","
	    "permitlisten=\"127.0.0.1:5000\",permitlisten=\"*:6000\"",
	    &k_ed1, "pi-1");
	CHECK_INT(pl(line, &ak, err, sizeof err), 1);
	CHECK_STR(err, "");
	free(line);
	if (!CHECK(ak != NULL && ak != (struct authkey *)-1))
		return;
	CHECK_STR(ak->name, "pi-1");
	CHECK_INT(ak->restricted, 1);
	CHECK_INT(ak->npermits, 3);
	if (ak->npermits == 3) {
		CHECK(ak->permits[0].host == NULL);
		CHECK_INT(ak->permits[0].port, 4649);
		CHECK_STR(ak->permits[1].host, "127.0.0.1");
		CHECK_INT(ak->permits[1].port, 5000);
		CHECK(ak->permits[2].host == NULL);
		CHECK_INT(ak->permits[2].port, 6000);
	}
	/* port only: any requested bind address */
	CHECK_INT(authkey_permits(ak, NULL, 4649), 1);
	CHECK_INT(authkey_permits(ak, "", 4649), 1);
	CHECK_INT(authkey_permits(ak, "localhost", 4649), 1);
	CHECK_INT(authkey_permits(ak, "0.0.0.0", 4649), 1);
	/* host:port: only that bind address */
	CHECK_INT(authkey_permits(ak, "127.0.0.1", 5000), 1);
	CHECK_INT(authkey_permits(ak, NULL, 5000), 0);
	CHECK_INT(authkey_permits(ak, "localhost", 5000), 0);
	CHECK_INT(authkey_permits(ak, "0.0.0.0", 5000), 0);
	/* *:port: any bind address */
	CHECK_INT(authkey_permits(ak, NULL, 6000), 1);
	CHECK_INT(authkey_permits(ak, "10.0.0.1", 6000), 1);
	/* other ports never */
	CHECK_INT(authkey_permits(ak, NULL, 22), 0);
	CHECK_INT(authkey_permits(ak, "127.0.0.1", 22), 0);
	CHECK_INT(authkey_permits(ak, NULL, 0), 0);
	CHECK_INT(authkey_permits(ak, NULL, 4650), 0);
	authkey_free(ak);

	/* any port, v6 host, host with any port, case-insensitive names */
	line = mkline("PermitListen=\"*\",RESTRICT,permitlisten=\"[::1]:7000\","
	    "permitlisten=\"localhost:*\"", &k_ed1, "pi-any");
	CHECK_INT(pl(line, &ak, err, sizeof err), 1);
	free(line);
	if (CHECK(ak != NULL && ak != (struct authkey *)-1)) {
		CHECK_INT(ak->npermits, 3);
		CHECK_INT(ak->restricted, 1);
		if (ak->npermits == 3) {
			CHECK(ak->permits[0].host == NULL);
			CHECK_INT(ak->permits[0].port, 0);
			CHECK_STR(ak->permits[1].host, "::1");
			CHECK_INT(ak->permits[1].port, 7000);
			CHECK_STR(ak->permits[2].host, "localhost");
			CHECK_INT(ak->permits[2].port, 0);
		}
		CHECK_INT(authkey_permits(ak, NULL, 1), 1);
		CHECK_INT(authkey_permits(ak, "1.2.3.4", 65535), 1);
		authkey_free(ak);
	}
	line = mkline("permitlisten=\"[::1]:7000\",permitlisten=\"localhost:*\"",
	    &k_ed1, "pi-v6");
	CHECK_INT(pl(line, &ak, err, sizeof err), 1);
	free(line);
	if (CHECK(ak != NULL && ak != (struct authkey *)-1)) {
		CHECK_INT(ak->restricted, 0);
		CHECK_INT(authkey_permits(ak, "::1", 7000), 1);
		CHECK_INT(authkey_permits(ak, "[::1]", 7000), 0);
		CHECK_INT(authkey_permits(ak, NULL, 7000), 0);
		CHECK_INT(authkey_permits(ak, "localhost", 1), 1);
		CHECK_INT(authkey_permits(ak, "localhost", 7000), 1);
		CHECK_INT(authkey_permits(ak, "127.0.0.1", 8000), 0);
		authkey_free(ak);
	}

	/* options that change nothing here are accepted */
	line = mkline("no-pty,no-agent-forwarding,no-X11-forwarding,no-user-rc,"
	    "port-forwarding,pty,no-touch-required,permitlisten=\"4649\"",
	    &k_ed1, "pi-noop");
	CHECK_INT(pl(line, &ak, err, sizeof err), 1);
	free(line);
	if (CHECK(ak != NULL && ak != (struct authkey *)-1)) {
		CHECK_INT(ak->npermits, 1);
		CHECK_INT(authkey_permits(ak, NULL, 4649), 1);
		authkey_free(ak);
	}

	/* no-port-forwarding clears every permit, before or after them */
	line = mkline("permitlisten=\"4649\",no-port-forwarding,"
	    "permitlisten=\"*\"", &k_ed1, "pi-none");
	CHECK_INT(pl(line, &ak, err, sizeof err), 1);
	free(line);
	if (CHECK(ak != NULL && ak != (struct authkey *)-1)) {
		CHECK_INT(ak->npermits, 0);
		CHECK_INT(authkey_permits(ak, NULL, 4649), 0);
		CHECK_INT(authkey_permits(ak, NULL, 1), 0);
		authkey_free(ak);
	}
	line = mkline("no-port-forwarding,permitlisten=\"4649\"", &k_ed1,
	    "pi-none");
	CHECK_INT(pl(line, &ak, err, sizeof err), 1);
	free(line);
	if (CHECK(ak != NULL && ak != (struct authkey *)-1)) {
		CHECK_INT(ak->npermits, 0);
		CHECK_INT(authkey_permits(ak, NULL, 4649), 0);
		authkey_free(ak);
	}

	/* escaped quote inside a value */
	line = mkline("from=\"10.0.0.1,a\\\"b\"", &k_ed1, "pi-q");
	CHECK_INT(pl(line, &ak, err, sizeof err), 1);
	free(line);
	if (CHECK(ak != NULL && ak != (struct authkey *)-1)) {
		CHECK_STR(ak->from, "10.0.0.1,a\"b");
		authkey_free(ak);
	}

	/* a small error buffer is truncated, not overrun */
	{
		char small[10];

		line = mkline("command=\"x\"", &k_ed1, "pi");
		CHECK_INT(authkeys_parse_line(line, &ak, small, sizeof small),
		    -1);
		CHECK_STR(small, "unsupport");
		free(line);
	}
}

static void
test_refused(void)
{
	char *line, big[4200];
	int i;

#define REFUSE(opts, k, comment, want) do {				\
	line = mkline((opts), (k), (comment));				\
	refused(line, (want), __LINE__);				\
	free(line);							\
} while (0)

	/* unknown options */
	REFUSE("command=\"/bin/true\"", &k_ed1, "pi",
	    "unsupported option \"command\"");
	REFUSE("restrict,tunnel=\"0\"", &k_ed1, "pi",
	    "unsupported option \"tunnel\"");
	REFUSE("environment=\"A=B\"", &k_ed1, "pi",
	    "unsupported option \"environment\"");
	REFUSE("cert-authority", &k_ed1, "pi",
	    "unsupported option \"cert-authority\"");
	REFUSE("agent-forwarding", &k_ed1, "pi",
	    "unsupported option \"agent-forwarding\"");
	REFUSE("restrict,bogus", &k_ed1, "pi", "unsupported option \"bogus\"");
	REFUSE("ssh-foo", &k_ed1, "pi", "unsupported option \"ssh-foo\"");
	/* malformed option lists */
	REFUSE("permitlisten=\"4649", &k_ed1, "pi",
	    "unterminated quoted option value");
	REFUSE("from=\"10.0.0.0/8,permitlisten=\"4649\"", &k_ed1, "pi",
	    "missing key after options");
	REFUSE("permitlisten=4649", &k_ed1, "pi",
	    "option value must be in double quotes");
	REFUSE("restrict,,no-pty", &k_ed1, "pi", "bad option list");
	REFUSE("restrict,", &k_ed1, "pi", "bad option list");
	REFUSE(",restrict", &k_ed1, "pi", "bad option list");
	REFUSE("=\"x\"", &k_ed1, "pi", "bad option list");
	REFUSE("permitlisten=\"4649\"x", &k_ed1, "pi",
	    "missing key after options");
	refused("restrict", "missing key after options", __LINE__);
	refused("restrict\n", "missing key after options", __LINE__);
	refused("restrict foo", "unknown key type", __LINE__);
	refused("restrict ", "unknown key type", __LINE__);
	/* bad permitlisten values */
	REFUSE("permitlisten=\"0\"", &k_ed1, "pi",
	    "permitlisten \"0\": port must be a number from 1 to 65535");
	REFUSE("permitlisten=\"65536\"", &k_ed1, "pi", NULL);
	REFUSE("permitlisten=\"ssh\"", &k_ed1, "pi", NULL);
	REFUSE("permitlisten=\"\"", &k_ed1, "pi", NULL);
	REFUSE("permitlisten=\":22\"", &k_ed1, "pi",
	    "permitlisten \":22\": empty host");
	REFUSE("permitlisten=\"[]:22\"", &k_ed1, "pi", NULL);
	REFUSE("permitlisten=\"host:\"", &k_ed1, "pi", NULL);
	REFUSE("permitlisten=\"host:22x\"", &k_ed1, "pi", NULL);
	/* bad from values */
	REFUSE("from=\"\"", &k_ed1, "pi", "from is empty");
	REFUSE("from=\"10.0.0.0/33\"", &k_ed1, "pi",
	    "from: bad entry \"10.0.0.0/33\"");
	REFUSE("from=\"!10.0.0.0/x\"", &k_ed1, "pi",
	    "from: bad entry \"10.0.0.0/x\"");
	REFUSE("from=\"10.0.0.1\",from=\"10.0.0.2\"", &k_ed1, "pi",
	    "from given twice");
	/* too many permitlisten options */
	{
		char *p = big;

		for (i = 0; i < 65; i++)
			p += sprintf(p, "%spermitlisten=\"%d\"", i ? "," : "",
			    1000 + i);
		REFUSE(big, &k_ed1, "pi", "too many permitlisten options");
		big[strlen(big) - strlen(",permitlisten=\"1064\"")] = '\0';
		line = mkline(big, &k_ed1, "pi-64");
		{
			struct authkey *ak;
			char err[256];

			CHECK_INT(pl(line, &ak, err, sizeof err), 1);
			if (ak != NULL && ak != (struct authkey *)-1) {
				CHECK_INT(ak->npermits, 64);
				CHECK_INT(authkey_permits(ak, NULL, 1063), 1);
				CHECK_INT(authkey_permits(ak, NULL, 1064), 0);
				authkey_free(ak);
			}
		}
		free(line);
	}
	/* an over-long option name */
	memset(big, 'a', 100);
	big[100] = '\0';
	REFUSE(big, &k_ed1, "pi", "bad option list");

	/* the comment is the device name: required and printable */
	REFUSE(NULL, &k_ed1, NULL, "missing comment (the device name)");
	REFUSE(NULL, &k_ed1, "  \t \r\n", "missing comment (the device name)");
	REFUSE("restrict,permitlisten=\"4649\"", &k_ed1, NULL,
	    "missing comment (the device name)");
	REFUSE(NULL, &k_ed1, "pi\001x", "device name has control characters "
	    "or non-ASCII bytes");
	REFUSE(NULL, &k_ed1, "pi\033[2J", "device name has control characters "
	    "or non-ASCII bytes");
	/* bytes >= 0x80 (UTF-8, or a raw C1 CSI 0x9b) are refused too: names
	 * go to logs and terminals unescaped */
	REFUSE(NULL, &k_ed1, "pi-\xc3\xa9t\xc3\xa9", "device name has "
	    "control characters or non-ASCII bytes");
	REFUSE(NULL, &k_ed1, "pi\x9b" "2J", "device name has control "
	    "characters or non-ASCII bytes");

	/* bad base64 or key data */
	refused("ssh-ed25519 !!!!notbase64!!!! pi", "cannot decode ssh-ed25519 key",
	    __LINE__);
	refused("ssh-ed25519 AAAA pi", "cannot decode ssh-ed25519 key",
	    __LINE__);
	refused("ssh-ed25519", "missing base64 key", __LINE__);
	refused("ssh-ed25519   \t", "missing base64 key", __LINE__);
	refused("ssh-ed25519\n", "missing base64 key", __LINE__);
	refused("ssh-ed25519 pi", NULL, __LINE__);
	snprintf(big, sizeof big, "ssh-ed25519 %.*s pi",
	    (int)strlen(k_ed1.b64) - 8, k_ed1.b64);
	refused(big, "cannot decode ssh-ed25519 key", __LINE__);
	snprintf(big, sizeof big, "ssh-ed25519 %s pi", k_ed1.b64);
	big[12 + 30] ^= 0x01;	/* flip a bit of the key bytes' base64 */
	{
		struct authkey *ak;
		char err[256];
		int rc = pl(big, &ak, err, sizeof err);

		/* still a valid key, just another one: must not be ed1 */
		if (rc == 1) {
			CHECK(ssh_key_cmp(ak->key, k_ed1.pub,
			    SSH_KEY_CMP_PUBLIC) != 0);
			authkey_free(ak);
		} else
			CHECK_INT(rc, -1);
	}
	/* trailing bytes after the key data */
	snprintf(big, sizeof big, "ssh-ed25519 %sAAAA pi", k_ed1.b64);
	refused(big, NULL, __LINE__);

	/* key type does not match the key data */
	snprintf(big, sizeof big, "ssh-rsa %s pi", k_ed1.b64);
	refused(big, NULL, __LINE__);
	snprintf(big, sizeof big, "ssh-ed25519 %s pi", k_rsa.b64);
	refused(big, NULL, __LINE__);
	snprintf(big, sizeof big, "ssh-ed25519 %s pi", k_ec.b64);
	refused(big, NULL, __LINE__);
	snprintf(big, sizeof big, "ecdsa-sha2-nistp256 %s pi", k_ed1.b64);
	refused(big, NULL, __LINE__);
	snprintf(big, sizeof big, "ecdsa-sha2-nistp384 %s pi", k_ec.b64);
	refused(big, "key type does not match its data", __LINE__);
	snprintf(big, sizeof big, "ecdsa-sha2-nistp521 %s pi", k_ec.b64);
	refused(big, "key type does not match its data", __LINE__);
	snprintf(big, sizeof big, "ssh-dss %s pi", k_ed1.b64);
	refused(big, NULL, __LINE__);
	snprintf(big, sizeof big, "restrict ssh-rsa %s pi", k_ed1.b64);
	refused(big, NULL, __LINE__);
	/* a key type the parser does not know is not a key */
	snprintf(big, sizeof big, "ssh-ed448 %s pi", k_ed1.b64);
	refused(big, NULL, __LINE__);
#undef REFUSE
}

static void
test_blank(void)
{
	static const char *lines[] = { "", "\n", "\r\n", "   ", " \t \n",
	    "# a comment", "#ssh-ed25519 AAAA", "   # indented comment\n",
	    "\t#", NULL };
	struct authkey *ak;
	char err[256];
	int i;

	for (i = 0; lines[i]; i++) {
		CHECK_INT(pl(lines[i], &ak, err, sizeof err), 0);
		CHECK(ak == NULL);
		CHECK_STR(err, "");
	}
}

static void
test_from(void)
{
	struct authkey *ak;
	char err[256], *line;

	line = mkline("from=\"10.0.0.0/8,!10.1.2.3,192.0.2.*\"", &k_ed1,
	    "pi-from");
	CHECK_INT(pl(line, &ak, err, sizeof err), 1);
	free(line);
	if (!CHECK(ak != NULL && ak != (struct authkey *)-1))
		return;
	CHECK_STR(ak->from, "10.0.0.0/8,!10.1.2.3,192.0.2.*");
	CHECK_INT(authkey_from_ok(ak, "10.0.0.1"), 1);
	CHECK_INT(authkey_from_ok(ak, "10.0.0.0"), 1);
	CHECK_INT(authkey_from_ok(ak, "10.255.255.255"), 1);
	CHECK_INT(authkey_from_ok(ak, "10.1.2.4"), 1);
	CHECK_INT(authkey_from_ok(ak, "10.1.2.3"), 0);
	CHECK_INT(authkey_from_ok(ak, "11.0.0.1"), 0);
	CHECK_INT(authkey_from_ok(ak, "9.255.255.255"), 0);
	CHECK_INT(authkey_from_ok(ak, "192.0.2.77"), 1);
	CHECK_INT(authkey_from_ok(ak, "192.0.2.1"), 1);
	CHECK_INT(authkey_from_ok(ak, "192.0.20.1"), 0);
	CHECK_INT(authkey_from_ok(ak, "192.0.3.1"), 0);
	CHECK_INT(authkey_from_ok(ak, "::1"), 0);
	CHECK_INT(authkey_from_ok(ak, "2001:db8::1"), 0);
	CHECK_INT(authkey_from_ok(ak, ""), 0);
	CHECK_INT(authkey_from_ok(ak, "not-an-address"), 0);
	authkey_free(ak);

	line = mkline("from=\"2001:db8::/32,!2001:db8::bad,fe80::*\"", &k_ed1,
	    "pi-v6");
	CHECK_INT(pl(line, &ak, err, sizeof err), 1);
	free(line);
	if (CHECK(ak != NULL && ak != (struct authkey *)-1)) {
		CHECK_INT(authkey_from_ok(ak, "2001:db8::1"), 1);
		CHECK_INT(authkey_from_ok(ak, "2001:db8:ffff::1"), 1);
		CHECK_INT(authkey_from_ok(ak, "2001:DB8::1"), 1);
		CHECK_INT(authkey_from_ok(ak, "2001:db8::bad"), 0);
		CHECK_INT(authkey_from_ok(ak, "2001:db8::BAD"), 0);
		CHECK_INT(authkey_from_ok(ak, "2001:db9::1"), 0);
		CHECK_INT(authkey_from_ok(ak, "fe80::1"), 1);
		CHECK_INT(authkey_from_ok(ak, "fe81::1"), 0);
		CHECK_INT(authkey_from_ok(ak, "10.0.0.1"), 0);
		authkey_free(ak);
	}

	/* only negations: nothing is allowed */
	line = mkline("from=\"!10.1.2.3\"", &k_ed1, "pi-neg");
	CHECK_INT(pl(line, &ak, err, sizeof err), 1);
	free(line);
	if (CHECK(ak != NULL && ak != (struct authkey *)-1)) {
		CHECK_INT(authkey_from_ok(ak, "10.1.2.3"), 0);
		CHECK_INT(authkey_from_ok(ak, "10.1.2.4"), 0);
		authkey_free(ak);
	}

	/* match_addr_list directly: 1 match, 0 none, -1 negated match */
	CHECK_INT(match_addr_list("10.1.2.3", "10.0.0.0/8"), 1);
	CHECK_INT(match_addr_list("10.1.2.3", "!10.1.2.3,10.0.0.0/8"), -1);
	CHECK_INT(match_addr_list("10.1.2.3", "10.0.0.0/8,!10.1.2.3"), -1);
	CHECK_INT(match_addr_list("10.1.2.3", "!10.0.0.0/8"), -1);
	CHECK_INT(match_addr_list("10.1.2.3", "192.168.0.0/16"), 0);
	CHECK_INT(match_addr_list("10.1.2.3", " 10.1.2.3"), 1);
	CHECK_INT(match_addr_list("10.1.2.3", "*"), 1);
	CHECK_INT(match_addr_list("10.1.2.3", "!*"), -1);
	CHECK_INT(match_addr_list("10.1.2.3", ""), 0);
	CHECK_INT(match_addr_list("10.1.2.3", ",,,"), 0);
	CHECK_INT(match_addr_list("10.1.2.3", "10.1.2.?"), 1);
	CHECK_INT(match_addr_list("10.1.2.33", "10.1.2.?"), 0);
	CHECK_INT(match_addr_list("10.1.2.3", "10.*.3"), 1);
	/* CIDR edges */
	CHECK_INT(match_addr_list("192.168.1.127", "192.168.1.0/25"), 1);
	CHECK_INT(match_addr_list("192.168.1.128", "192.168.1.0/25"), 0);
	CHECK_INT(match_addr_list("10.127.255.255", "10.0.0.0/9"), 1);
	CHECK_INT(match_addr_list("10.128.0.0", "10.0.0.0/9"), 0);
	CHECK_INT(match_addr_list("10.0.0.1", "10.0.0.1/32"), 1);
	CHECK_INT(match_addr_list("10.0.0.2", "10.0.0.1/32"), 0);
	CHECK_INT(match_addr_list("203.0.113.5", "0.0.0.0/0"), 1);
	CHECK_INT(match_addr_list("::1", "0.0.0.0/0"), 0);
	CHECK_INT(match_addr_list("::1", "::/0"), 1);
	CHECK_INT(match_addr_list("10.0.0.1", "::/0"), 0);
	CHECK_INT(match_addr_list("2001:db8::1", "2001:db8::/127"), 1);
	CHECK_INT(match_addr_list("2001:db8::2", "2001:db8::/127"), 0);
	CHECK_INT(match_addr_list("2001:db8::1", "2001:db8::1/128"), 1);
	/* invalid CIDR never matches, negated or not */
	CHECK_INT(match_addr_list("10.0.0.1", "10.0.0.0/33"), 0);
	CHECK_INT(match_addr_list("10.0.0.1", "!10.0.0.0/33,10.0.0.1"), 1);
	CHECK_INT(match_addr_list("10.0.0.1", "10.0.0.0/"), 0);
	CHECK_INT(match_addr_list("10.0.0.1", "10.0.0.0/-1"), 0);
	CHECK_INT(match_addr_list("10.0.0.1", "10.0.0.0/8x"), 0);
	CHECK_INT(match_addr_list("10.0.0.1", "/8"), 0);
	CHECK_INT(match_addr_list("10.0.0.1", "host.example/8"), 0);
	CHECK_INT(match_addr_list("::1", "::/129"), 0);
	/* names never match an address (no DNS) */
	CHECK_INT(match_addr_list("10.0.0.1", "*.example.net"), 0);

	CHECK_INT(match_pattern("abc", "abc"), 1);
	CHECK_INT(match_pattern("ABC", "abc"), 1);
	CHECK_INT(match_pattern("abc", "a?c"), 1);
	CHECK_INT(match_pattern("ac", "a?c"), 0);
	CHECK_INT(match_pattern("abc", "*"), 1);
	CHECK_INT(match_pattern("", "*"), 1);
	CHECK_INT(match_pattern("", ""), 1);
	CHECK_INT(match_pattern("a", ""), 0);
	CHECK_INT(match_pattern("abc", "a**c"), 1);
	CHECK_INT(match_pattern("abcd", "a*c"), 0);
	CHECK_INT(match_pattern("aaaaaaaaaaaaaaaaaaaaaaaaaaaaab",
	    "*a*a*a*a*a*a*a*c"), 0);
}

/* Read a whole (small) file into a string. */
static char *
slurp(const char *path)
{
	static char buf[65536];
	size_t n;
	FILE *fp;

	if ((fp = fopen(path, "r")) == NULL)
		return NULL;
	n = fread(buf, 1, sizeof buf - 1, fp);
	buf[n] = '\0';
	fclose(fp);
	return buf;
}

static void
test_load(void)
{
	struct authkeys list;
	struct authkey *ak;
	char path[300], logpath[300], err[256], want[512], *logs, *longline;
	ssh_key priv = NULL;
	FILE *fp;
	int saved, fd, n, i;

	snprintf(path, sizeof path, "%s/authorized_keys", tmpdir);
	snprintf(logpath, sizeof logpath, "%s/log", tmpdir);
	if (!CHECK((fp = fopen(path, "w")) != NULL))
		return;
	longline = xmalloc(20000);
	memset(longline, 'x', 19999);
	longline[19999] = '\0';
	fprintf(fp, "# fleet\n");						/* 1 */
	fprintf(fp, "restrict,permitlisten=\"4649\" %s %s pi-1\n",
	    k_ed1.type, k_ed1.b64);						/* 2 */
	fprintf(fp, "command=\"sh\" %s %s pi-2-bad\n", k_ed2.type,
	    k_ed2.b64);							/* 3 */
	fprintf(fp, "\n");							/* 4 */
	fprintf(fp, "permitlisten=\"4650\" %s %s pi-2\n", k_ed2.type,
	    k_ed2.b64);							/* 5 */
	fprintf(fp, "permitlisten=\"4651\" %s %s pi-1-again\n", k_ed1.type,
	    k_ed1.b64);							/* 6 */
	fprintf(fp, "ssh-ed25519 AAAA!!!! broken\n");			/* 7 */
	fprintf(fp, "from=\"10.0.0.0/8\" %s %s pi-3\r\n", k_ec.type,
	    k_ec.b64);							/* 8 */
	fprintf(fp, "%s\n", longline);					/* 9 */
	fprintf(fp, "   # the end\n");					/* 10 */
	fprintf(fp, "%s %s pi-4", k_rsa.type, k_rsa.b64);		/* 11 */
	fclose(fp);
	free(longline);

	/* catch the warnings written to stderr */
	fflush(stderr);
	saved = dup(2);
	fd = open(logpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	dup2(fd, 2);
	close(fd);
	n = authkeys_load(path, &list, err, sizeof err);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);

	CHECK_INT(n, 4);
	i = 0;
	TAILQ_FOREACH(ak, &list, entry) {
		static const char *names[] = { "pi-1", "pi-2", "pi-3", "pi-4" };
		static const int lines[] = { 2, 5, 8, 11 };

		if (i < 4) {
			CHECK_STR(ak->name, names[i]);
			CHECK_INT(ak->line, lines[i]);
		}
		i++;
	}
	CHECK_INT(i, 4);

	logs = slurp(logpath);
	CHECK(logs != NULL);
	if (logs != NULL) {
		snprintf(want, sizeof want, "%s:3: unsupported option "
		    "\"command\"; line ignored", path);
		CHECK(strstr(logs, want) != NULL);
		snprintf(want, sizeof want, "%s:6: key %s already listed on "
		    "line 2; line ignored", path, k_ed1.fp);
		CHECK(strstr(logs, want) != NULL);
		snprintf(want, sizeof want, "%s:7: cannot decode ssh-ed25519 "
		    "key; line ignored", path);
		CHECK(strstr(logs, want) != NULL);
		snprintf(want, sizeof want, "%s:9: line too long", path);
		CHECK(strstr(logs, want) != NULL);
		snprintf(want, sizeof want, "%s:10:", path);
		CHECK(strstr(logs, want) == NULL);
		snprintf(want, sizeof want, "%s:11:", path);
		CHECK(strstr(logs, want) == NULL);
		if (unit_failed)
			fprintf(stderr, "authkeys_load logged:\n%s", logs);
	}

	/* find by public key */
	ak = authkeys_find(&list, k_ed1.pub);
	if (CHECK(ak != NULL)) {
		CHECK_STR(ak->name, "pi-1");
		CHECK_INT(authkey_permits(ak, NULL, 4649), 1);
		CHECK_INT(authkey_permits(ak, NULL, 4651), 0);
	}
	ak = authkeys_find(&list, k_ed2.pub);
	if (CHECK(ak != NULL)) {
		CHECK_STR(ak->name, "pi-2");
		CHECK_INT(authkey_permits(ak, NULL, 4650), 1);
	}
	ak = authkeys_find(&list, k_ec.pub);
	if (CHECK(ak != NULL)) {
		CHECK_STR(ak->name, "pi-3");
		CHECK_INT(authkey_from_ok(ak, "10.9.9.9"), 1);
		CHECK_INT(authkey_from_ok(ak, "192.0.2.1"), 0);
	}
	ak = authkeys_find(&list, k_rsa.pub);
	if (CHECK(ak != NULL))
		CHECK_STR(ak->name, "pi-4");
	CHECK(authkeys_find(&list, k_ed3.pub) == NULL);
	/* a private key finds its public entry */
	CHECK_INT(ssh_pki_import_privkey_file(k_ed2.path, NULL, NULL, NULL,
	    &priv), SSH_OK);
	if (priv != NULL) {
		ak = authkeys_find(&list, priv);
		CHECK(ak != NULL && !strcmp(ak->name, "pi-2"));
		ssh_key_free(priv);
	}
	authkeys_free(&list);
	CHECK(TAILQ_EMPTY(&list));
	CHECK(authkeys_find(&list, k_ed1.pub) == NULL);

	/* empty file, missing file */
	if (CHECK((fp = fopen(path, "w")) != NULL))
		fclose(fp);
	CHECK_INT(authkeys_load(path, &list, err, sizeof err), 0);
	CHECK(TAILQ_EMPTY(&list));
	snprintf(path, sizeof path, "%s/nonexistent", tmpdir);
	CHECK_INT(authkeys_load(path, &list, err, sizeof err), -1);
	snprintf(want, sizeof want, "%s: No such file or directory", path);
	CHECK_STR(err, want);
	CHECK(TAILQ_EMPTY(&list));
}

static void
test_fingerprint(void)
{
	struct tkey *keys[] = { &k_ed1, &k_ed2, &k_ed3, &k_ec, &k_rsa };
	ssh_key priv;
	char *fp;
	size_t i;

	for (i = 0; i < sizeof keys / sizeof keys[0]; i++) {
		fp = key_fingerprint_line(keys[i]->pub, keys[i]->name);
		CHECK_STR(fp, keys[i]->kgl);	/* bits, fp, comment, type */
		free(fp);
		fp = key_fingerprint(keys[i]->pub);
		CHECK_STR(fp, keys[i]->fp);
		CHECK(strncmp(fp, "SHA256:", 7) == 0);
		CHECK(strchr(fp, '=') == NULL);
		free(fp);
		/* the private key has the same fingerprint */
		priv = NULL;
		if (ssh_pki_import_privkey_file(keys[i]->path, NULL, NULL, NULL,
		    &priv) == SSH_OK) {
			fp = key_fingerprint(priv);
			CHECK_STR(fp, keys[i]->fp);
			free(fp);
			ssh_key_free(priv);
		} else
			CHECK(!"import private key");
	}
	CHECK(strcmp(k_ed1.fp, k_ed2.fp) != 0);
}

static void
test_private_ok(void)
{
	char err[512], path[300];

	CHECK_INT(chmod(k_ed3.path, 0644), 0);
	CHECK_INT(key_file_private_ok(k_ed3.path, err, sizeof err), -1);
	CHECK(strstr(err, "permissions 0644 are too open") != NULL);
	CHECK(strncmp(err, k_ed3.path, strlen(k_ed3.path)) == 0);
	CHECK_INT(chmod(k_ed3.path, 0640), 0);
	CHECK_INT(key_file_private_ok(k_ed3.path, err, sizeof err), -1);
	CHECK(strstr(err, "permissions 0640 are too open") != NULL);
	CHECK_INT(chmod(k_ed3.path, 0604), 0);
	CHECK_INT(key_file_private_ok(k_ed3.path, err, sizeof err), -1);
	CHECK_INT(chmod(k_ed3.path, 0601), 0);
	CHECK_INT(key_file_private_ok(k_ed3.path, err, sizeof err), -1);
	CHECK_INT(chmod(k_ed3.path, 0610), 0);
	CHECK_INT(key_file_private_ok(k_ed3.path, err, sizeof err), -1);
	CHECK_INT(chmod(k_ed3.path, 0600), 0);
	CHECK_INT(key_file_private_ok(k_ed3.path, err, sizeof err), 0);
	CHECK_INT(chmod(k_ed3.path, 0400), 0);
	CHECK_INT(key_file_private_ok(k_ed3.path, err, sizeof err), 0);
	CHECK_INT(chmod(k_ed3.path, 0600), 0);
	/* ssh-keygen makes its private keys 0600 */
	CHECK_INT(key_file_private_ok(k_ed1.path, err, sizeof err), 0);

	CHECK_INT(key_file_private_ok(tmpdir, err, sizeof err), -1);
	CHECK(strstr(err, "not a regular file") != NULL);
	snprintf(path, sizeof path, "%s/nonexistent", tmpdir);
	CHECK_INT(key_file_private_ok(path, err, sizeof err), -1);
	CHECK(strstr(err, "No such file or directory") != NULL);
}

/* Random, truncated and mutated lines: no crash, consistent results. */
static void
test_fuzz(void)
{
	static const char alphabet[] = "\"\\=,!*/:[] \t\r\n#AZaz09+/-.";
	char *seeds[8], buf[4096], err[128];
	struct authkey *ak;
	int i, j, len, rc, ok = 1, nkeys = 0, nbad = 0;

	seeds[0] = mkline(NULL, &k_ed1, "pi");
	seeds[1] = mkline("restrict,permitlisten=\"4649\",permitlisten="
	    "\"127.0.0.1:5000\",permitlisten=\"*:6000\"", &k_ed2, "pi two");
	seeds[2] = mkline("from=\"10.0.0.0/8,!10.1.2.3,192.0.2.*\","
	    "permitlisten=\"[::1]:22\"", &k_ec, "pi-ec");
	seeds[3] = mkline("no-port-forwarding,permitlisten=\"1\"", &k_rsa,
	    "pi-rsa");
	seeds[4] = mkline("from=\"a\\\"b\",no-pty", &k_ed3, "x");
	seeds[5] = xstrdup("# comment ssh-ed25519 AAAA");
	seeds[6] = xstrdup("permitlisten=\"4649 ssh-ed25519 AAAA x");
	seeds[7] = mkline("permitlisten=\"*\"", &k_ed1, "pi\r\n");

	unit_rng_seed(0xa17c3);
	for (i = 0; i < 5000; i++) {
		const char *sd = seeds[unit_rng_below(8)];
		int slen = (int)strlen(sd);

		switch (unit_rng_below(4)) {
		case 0:	/* random bytes */
			len = (int)unit_rng_below(400);
			for (j = 0; j < len; j++)
				buf[j] = (char)(unit_rng_below(255) + 1);
			break;
		case 1:	/* truncated seed */
			len = (int)unit_rng_below((uint32_t)slen + 1);
			memcpy(buf, sd, (size_t)len);
			break;
		case 2: /* seed with bytes cut out of the middle */
			len = slen;
			memcpy(buf, sd, (size_t)len);
			for (j = (int)unit_rng_below(4); j >= 0 && len > 0;
			    j--) {
				int at = (int)unit_rng_below((uint32_t)len);
				int cut = (int)unit_rng_below(
				    (uint32_t)(len - at)) + 1;

				memmove(buf + at, buf + at + cut,
				    (size_t)(len - at - cut));
				len -= cut;
			}
			break;
		default: /* mutated seed */
			len = slen;
			memcpy(buf, sd, (size_t)len);
			for (j = (int)unit_rng_below(6); j >= 0; j--) {
				int at = (int)unit_rng_below((uint32_t)len);

				if (unit_rng_below(3) == 0)
					buf[at] = (char)(unit_rng_below(255) +
					    1);
				else
					buf[at] = alphabet[unit_rng_below(
					    sizeof alphabet - 1)];
			}
			break;
		}
		buf[len] = '\0';
		err[0] = '\0';
		rc = authkeys_parse_line(buf, &ak, err, sizeof err);
		if (rc == 1) {
			nkeys++;
			if (ak == NULL || ak->key == NULL || ak->name == NULL ||
			    ak->name[0] == '\0' || ak->fp == NULL ||
			    strncmp(ak->fp, "SHA256:", 7) != 0 ||
			    ak->npermits > 64 ||
			    (ak->npermits > 0) != (ak->permits != NULL))
				ok = 0;
			if (ak != NULL) {
				(void)authkey_permits(ak, NULL, 4649);
				(void)authkey_permits(ak, "127.0.0.1", 5000);
				(void)authkey_from_ok(ak, "10.1.2.3");
				(void)authkey_from_ok(ak, "::1");
				authkey_free(ak);
			}
		} else if (rc == 0) {
			if (ak != NULL)
				ok = 0;
		} else if (rc == -1) {
			nbad++;
			if (ak != NULL || err[0] == '\0')
				ok = 0;
		} else
			ok = 0;
	}
	CHECK(ok);
	CHECK(nkeys > 50);
	CHECK(nbad > 1000);

	/* match_addr_list with random patterns and addresses */
	ok = 1;
	for (i = 0; i < 5000; i++) {
		static const char pal[] = "0123456789abcdef.:/!*?,[] ";
		char pat[64], addr[48];
		int plen = (int)unit_rng_below(sizeof pat);
		int alen = (int)unit_rng_below(sizeof addr);

		for (j = 0; j < plen; j++)
			pat[j] = pal[unit_rng_below(sizeof pal - 1)];
		pat[plen] = '\0';
		for (j = 0; j < alen; j++)
			addr[j] = pal[unit_rng_below(12)];
		addr[alen] = '\0';
		rc = match_addr_list(addr, pat);
		if (rc < -1 || rc > 1)
			ok = 0;
	}
	CHECK(ok);
	for (i = 0; i < 8; i++)
		free(seeds[i]);
}

/* permitopen, expiry-time, named forwards (operators and named devices). */
static void
test_operators(void)
{
	struct authkey *ak;
	char err[256], *line;
	time_t t;

	line = mkline("restrict,permitopen=\"pi-*:22\",permitopen=\"dev?:*\","
	    "expiry-time=\"20300102030405Z\",from=\"198.18.0.0/24\"",
	    &k_ed1, "ops");
	CHECK_INT(pl(line, &ak, err, sizeof err), 1);
	CHECK_STR(err, "");
	free(line);
	if (!CHECK(ak != NULL && ak != (struct authkey *)-1))
		return;
	CHECK_INT(ak->nopens, 2);
	CHECK_INT(ak->npermits, 0);
	CHECK_INT(authkey_may_open(ak, "pi-01", 22), 1);
	CHECK_INT(authkey_may_open(ak, "PI-01", 22), 1);
	CHECK_INT(authkey_may_open(ak, "pi-01", 2222), 0);
	CHECK_INT(authkey_may_open(ak, "dev1", 4649), 1);
	CHECK_INT(authkey_may_open(ak, "dev12", 4649), 0);
	CHECK_INT(authkey_may_open(ak, "other", 22), 0);
	/* an operator key takes no port and no name */
	CHECK_INT(authkey_permits(ak, NULL, 22), 0);
	CHECK_INT(authkey_permits_name(ak, "pi-01", 22), 0);
	CHECK_INT((long long)ak->expiry, 1893553445LL);
	CHECK_INT(authkey_expired(ak, 1893553444), 0);
	CHECK_INT(authkey_expired(ak, 1893553445), 1);
	authkey_free(ak);

	/* named forwards: only an entry naming them */
	line = mkline("permitlisten=\"pi-01:22\",permitlisten=\"4649\","
	    "permitlisten=\"*:5000\"", &k_ed2, "pi-01");
	CHECK_INT(pl(line, &ak, err, sizeof err), 1);
	free(line);
	if (CHECK(ak != NULL && ak != (struct authkey *)-1)) {
		CHECK_INT(ak->nopens, 0);
		CHECK_INT(ak->expiry == 0, 1);
		CHECK_INT(authkey_permits_name(ak, "pi-01", 22), 1);
		CHECK_INT(authkey_permits_name(ak, "pi-01", 23), 0);
		CHECK_INT(authkey_permits_name(ak, "pi-02", 22), 0);
		CHECK_INT(authkey_permits_name(ak, "pi-01", 4649), 0);
		CHECK_INT(authkey_permits_name(ak, "pi-01", 5000), 0);
		CHECK_INT(authkey_may_open(ak, "pi-01", 22), 0);
		authkey_free(ak);
	}

	/* no-port-forwarding drops permitopen too */
	line = mkline("permitopen=\"*:*\",no-port-forwarding", &k_ed2, "x");
	CHECK_INT(pl(line, &ak, err, sizeof err), 1);
	free(line);
	if (CHECK(ak != NULL && ak != (struct authkey *)-1)) {
		CHECK_INT(ak->nopens, 0);
		CHECK_INT(authkey_may_open(ak, "pi-01", 22), 0);
		authkey_free(ak);
	}

	/* the forms OpenSSH takes; local time without Z */
	CHECK_INT(authkeys_parse_time("20300102", &t), 0);
	CHECK_INT(authkeys_parse_time("203001020304", &t), 0);
	CHECK_INT(authkeys_parse_time("19700101000000Z", &t), 0);
	CHECK_INT((long long)t, 0);
	CHECK_INT(authkeys_parse_time("2030010", &t), -1);
	CHECK_INT(authkeys_parse_time("2030010203Z", &t), -1);
	CHECK_INT(authkeys_parse_time("20301302", &t), -1);
	CHECK_INT(authkeys_parse_time("2030x102", &t), -1);
	CHECK_INT(authkeys_parse_time("", &t), -1);
	line = mkline("expiry-time=\"2030\"", &k_ed2, "x");
	refused(line, "expiry-time \"2030\": want YYYYMMDD[HHMM[SS]][Z]",
	    __LINE__);
	free(line);
	line = mkline("expiry-time=\"20300101\",expiry-time=\"20300101\"",
	    &k_ed2, "x");
	refused(line, "expiry-time given twice", __LINE__);
	free(line);
	line = mkline("permitopen=\"pi-01\"", &k_ed2, "x");
	refused(line, "permitopen \"pi-01\": want host:port", __LINE__);
	free(line);
	line = mkline("permitopen=\"pi-01:http\"", &k_ed2, "x");
	refused(line, NULL, __LINE__);
	free(line);
}

int
main(void)
{
	int rc;

	log_init("test_authkeys", 0);
	if (mkdtemp(tmpdir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	if (tkey_make(&k_ed1, "ed1", "ed25519", "") == -1 ||
	    tkey_make(&k_ed2, "ed2", "ed25519", "") == -1 ||
	    tkey_make(&k_ed3, "ed3", "ed25519", "") == -1 ||
	    tkey_make(&k_ec, "ec", "ecdsa", "-b 256") == -1 ||
	    tkey_make(&k_rsa, "rsa", "rsa", "-b 2048") == -1) {
		fprintf(stderr, "cannot make test keys with ssh-keygen\n");
		sh("rm -rf '%s'", tmpdir);
		return 1;
	}
	test_plain();
	test_options();
	test_operators();
	test_refused();
	test_blank();
	test_from();
	test_load();
	test_fingerprint();
	test_private_ok();
	test_fuzz();

	ssh_key_free(k_ed1.pub);
	ssh_key_free(k_ed2.pub);
	ssh_key_free(k_ed3.pub);
	ssh_key_free(k_ec.pub);
	ssh_key_free(k_rsa.pub);
	sh("rm -rf '%s'", tmpdir);
	rc = unit_done();
	ssh_finalize();
	return rc;
}
