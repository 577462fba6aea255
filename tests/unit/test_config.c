/* Unit tests for common/config.c: line numbers, error format, parse_*. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"
#include "unit.h"

#define MAXCALLS 64

/* What the test handler saw: one record per call. */
struct seen {
	int	 n;
	char	 section[MAXCALLS][64];
	char	 name[MAXCALLS][64];
	char	 value[MAXCALLS][256];
	int	 line[MAXCALLS];
	int	 headers;
	char	 last_header[64];
	int	 header_line;
};

/*
 * A small handler like the daemons': "port" goes through parse_port,
 * "timeout" through parse_seconds, "on" through parse_bool, "bad" and
 * anything starting with "unknown" is an unknown key.
 */
static int
test_handler(struct config_ctx *ctx, void *arg, const char *section,
    const char *name, const char *value)
{
	struct seen *s = arg;
	const char *why;
	unsigned long ul;
	uint16_t port;
	int b;

	if (name == NULL) {		/* a section header */
		s->headers++;
		snprintf(s->last_header, sizeof s->last_header, "%s", section);
		s->header_line = ctx->line;
		return strcmp(section, "bad") ? 1 :
		    config_error(ctx, "unknown section [%s]", section);
	}
	if (s->n < MAXCALLS) {
		snprintf(s->section[s->n], sizeof s->section[0], "%s", section);
		snprintf(s->name[s->n], sizeof s->name[0], "%s", name);
		snprintf(s->value[s->n], sizeof s->value[0], "%s", value);
		s->line[s->n] = ctx->line;
		s->n++;
	}
	if (!strcmp(name, "port")) {
		if (parse_port(value, &port, &why) == -1)
			return config_error(ctx, "port: %s", why);
	} else if (!strcmp(name, "timeout")) {
		if (parse_seconds(value, 1, 3600, &ul, &why) == -1)
			return config_error(ctx, "timeout: %s", why);
	} else if (!strcmp(name, "on")) {
		if (parse_bool(value, &b, &why) == -1)
			return config_error(ctx, "on: %s", why);
	} else if (!strcmp(name, "bad") || !strncmp(name, "unknown", 7))
		return config_error(ctx, "unknown key \"%s\"", name);
	return 1;
}

/* Parse text with the test handler; returns the rc, fills err and s. */
static int
parse(const char *text, struct seen *s, char *err, size_t len)
{
	memset(s, 0, sizeof *s);
	err[0] = '\0';
	return config_parse_string("t.conf", text, test_handler, s, err, len);
}

static void
test_config_ok(void)
{
	struct seen s;
	char err[512];

	CHECK_INT(parse("", &s, err, sizeof err), 0);
	CHECK_INT(s.n, 0);

	CHECK_INT(parse("a = 1\n", &s, err, sizeof err), 0);
	CHECK_STR(err, "");
	CHECK_INT(s.n, 1);
	CHECK_STR(s.section[0], "");
	CHECK_STR(s.name[0], "a");
	CHECK_STR(s.value[0], "1");
	CHECK_INT(s.line[0], 1);

	/* comments, blank lines, sections, inline comments, no final \n */
	CHECK_INT(parse("; comment\n\n# other comment\n[relay]\n\n"
	    "listen = 0.0.0.0:2222 ; inline\n  \nport = 2222\n"
	    "[agent]\ntimeout = 5s", &s, err, sizeof err), 0);
	CHECK_STR(err, "");
	CHECK_INT(s.n, 3);
	CHECK_STR(s.section[0], "relay");
	CHECK_STR(s.name[0], "listen");
	CHECK_STR(s.value[0], "0.0.0.0:2222");
	CHECK_INT(s.line[0], 6);
	CHECK_STR(s.name[1], "port");
	CHECK_INT(s.line[1], 8);
	CHECK_STR(s.section[2], "agent");
	CHECK_STR(s.value[2], "5s");
	CHECK_INT(s.line[2], 10);

	/* CRLF line ends */
	CHECK_INT(parse("[relay]\r\nport = 22\r\n\r\nx = y\r\n", &s, err,
	    sizeof err), 0);
	CHECK_INT(s.n, 2);
	CHECK_STR(s.value[0], "22");
	CHECK_INT(s.line[1], 4);

	/* continuation line: handler called again with the same key */
	CHECK_INT(parse("[s]\nlist = a\n  b\n\tc\nnext = 1\n", &s, err,
	    sizeof err), 0);
	CHECK_INT(s.n, 4);
	CHECK_STR(s.name[1], "list");
	CHECK_STR(s.value[1], "b");
	CHECK_INT(s.line[1], 3);
	CHECK_STR(s.value[2], "c");
	CHECK_INT(s.line[2], 4);
	CHECK_STR(s.name[3], "next");
	CHECK_INT(s.line[3], 5);

	/* "key: value" is also accepted by inih */
	CHECK_INT(parse("a: 1\n", &s, err, sizeof err), 0);
	CHECK_STR(s.value[0], "1");

	/* UTF-8 BOM at the start */
	CHECK_INT(parse("\xef\xbb\xbf[s]\nk = v\n", &s, err, sizeof err), 0);
	CHECK_STR(s.section[0], "s");
	CHECK_INT(s.line[0], 2);
}

static void
test_config_errors(void)
{
	struct seen s;
	char err[512];

	CHECK_INT(parse("bad = 1\n", &s, err, sizeof err), -1);
	CHECK_STR(err, "t.conf:1: unknown key \"bad\"");

	CHECK_INT(parse("; c\n\n# c\n[relay]\n\n  \nbad = x\n", &s, err,
	    sizeof err), -1);
	CHECK_STR(err, "t.conf:7: unknown key \"bad\"");

	/* last line without newline */
	CHECK_INT(parse("a = 1\n\nunknown_x = 2", &s, err, sizeof err), -1);
	CHECK_STR(err, "t.conf:3: unknown key \"unknown_x\"");

	/* the first error is the one reported, later ones still parsed */
	CHECK_INT(parse("[s]\nport = 0\nbad = 1\n", &s, err, sizeof err), -1);
	CHECK_STR(err, "t.conf:2: port: port must be a number from 1 to 65535");
	CHECK_INT(s.n, 2);

	CHECK_INT(parse("port = http\n", &s, err, sizeof err), -1);
	CHECK_STR(err, "t.conf:1: port: port must be a number from 1 to 65535");
	CHECK_INT(parse("\n\ntimeout = 5x\n", &s, err, sizeof err), -1);
	CHECK_STR(err, "t.conf:3: timeout: not a number");
	CHECK_INT(parse("timeout = 0s\n", &s, err, sizeof err), -1);
	CHECK_STR(err, "t.conf:1: timeout: out of range");
	CHECK_INT(parse("on = maybe\n", &s, err, sizeof err), -1);
	CHECK_STR(err, "t.conf:1: on: expected yes or no");

	/* error on a continuation line names the continuation line */
	CHECK_INT(parse("[s]\nport = 22\n  99999\n", &s, err, sizeof err), -1);
	CHECK_STR(err, "t.conf:3: port: port must be a number from 1 to 65535");

	/* syntax errors: a line without '=' */
	CHECK_INT(parse("[s]\na = 1\nnoequals\n", &s, err, sizeof err), -1);
	CHECK_STR(err, "t.conf:3: syntax error (expected [section] or "
	    "key = value)");
	CHECK_INT(parse("; c\n\n# c\n\n[s]\n\nnoequals\n", &s, err,
	    sizeof err), -1);
	CHECK_STR(err, "t.conf:7: syntax error (expected [section] or "
	    "key = value)");
	CHECK_INT(parse("noequals", &s, err, sizeof err), -1);
	CHECK_STR(err, "t.conf:1: syntax error (expected [section] or "
	    "key = value)");
	/* a section header without ']' */
	CHECK_INT(parse("a = 1\n[relay\nb = 2\n", &s, err, sizeof err), -1);
	CHECK_STR(err, "t.conf:2: syntax error (expected [section] or "
	    "key = value)");
	/* after continuation lines the count still holds */
	CHECK_INT(parse("[s]\nk = a\n  b\n  c\n\nnoequals\n", &s, err,
	    sizeof err), -1);
	CHECK_STR(err, "t.conf:6: syntax error (expected [section] or "
	    "key = value)");
	/* a syntax error before a handler error: the earlier one is named */
	CHECK_INT(parse("[s]\nnoequals\nbad = 1\n", &s, err, sizeof err), -1);
	CHECK_STR(err, "t.conf:2: syntax error (expected [section] or "
	    "key = value)");

	/* small error buffer: truncated, still terminated */
	{
		char small[12];

		memset(&s, 0, sizeof s);
		CHECK_INT(config_parse_string("t.conf", "bad = 1\n",
		    test_handler, &s, small, sizeof small), -1);
		CHECK_STR(small, "t.conf:1: u");
	}
}

/* Lines longer than inih's buffer must not shift later line numbers. */
#define TOOLONG(n) "t.conf:" #n ": line too long (more than 199 characters)"

/* Build "[s]\nk = " + run of c + tail; returns text. */
static const char *
long_text(char *text, int run, char c, const char *tail)
{
	char *p = text;

	p += sprintf(p, "[s]\nk = ");
	memset(p, c, (size_t)run);
	p += run;
	strcpy(p, tail);
	return text;
}

static void
test_config_long_lines(void)
{
	struct seen s;
	char err[512], text[2048], *p;

	/* 300 characters: refused at its own line, before later errors */
	CHECK_INT(parse(long_text(text, 300, 'x', "\nbad = 1\n"), &s, err,
	    sizeof err), -1);
	CHECK_STR(err, TOOLONG(2));
	CHECK_INT(parse(long_text(text, 300, 'x', "\nok = 1\n"), &s, err,
	    sizeof err), -1);
	CHECK_STR(err, TOOLONG(2));
	/* the handler never saw a truncated value; later lines numbered */
	CHECK_INT(s.n, 1);
	CHECK_STR(s.name[0], "ok");
	CHECK_INT(s.line[0], 3);
	/* an earlier error wins over a later long line */
	long_text(text, 300, 'x', "\nok = 1\n");
	p = text + strlen("[s]\n");
	memmove(p + 8, p, strlen(p) + 1);
	memcpy(p, "bad = 1\n", 8);
	CHECK_INT(parse(text, &s, err, sizeof err), -1);
	CHECK_STR(err, "t.conf:2: unknown key \"bad\"");
	memcpy(p, "noequal\n", 8);
	CHECK_INT(parse(text, &s, err, sizeof err), -1);
	CHECK_STR(err, "t.conf:2: syntax error (expected [section] or "
	    "key = value)");

	/* a long line cut where blanks fall must not become a continuation */
	p = text + strlen(long_text(text, 190, 'x', ""));
	memset(p, ' ', 20);
	strcpy(p + 20, "tail\nok = 1\n");
	CHECK_INT(parse(text, &s, err, sizeof err), -1);
	CHECK_STR(err, TOOLONG(2));
	CHECK_INT(s.n, 1);

	/* last line too long, without newline */
	CHECK_INT(parse(long_text(text, 400, 'z', ""), &s, err, sizeof err),
	    -1);
	CHECK_STR(err, TOOLONG(2));

	/* 199 characters fit (inih's buffer is 200), with or without \n */
	CHECK_INT(parse(long_text(text, 199 - 4, 'y', "\nport = 0\n"), &s, err,
	    sizeof err), -1);
	CHECK_STR(err, "t.conf:3: port: port must be a number from 1 to 65535");
	CHECK_INT(strlen(s.value[0]), 195);
	CHECK_INT(parse(long_text(text, 199 - 4, 'y', ""), &s, err, sizeof err),
	    0);
	CHECK_INT(strlen(s.value[0]), 195);
	CHECK_INT(parse(long_text(text, 200 - 4, 'y', ""), &s, err, sizeof err),
	    -1);
	CHECK_STR(err, TOOLONG(2));
}

static void
test_config_file(void)
{
	char path[] = "/tmp/simtun-unit-conf.XXXXXX";
	struct seen s;
	char err[512];
	FILE *fp;
	int fd;

	CHECK((fd = mkstemp(path)) != -1);
	CHECK((fp = fdopen(fd, "w")) != NULL);
	if (fp == NULL)
		return;
	fputs("# relay\n[relay]\nport = 2222\n\n; x\nunknown_key = 1\n", fp);
	fclose(fp);
	memset(&s, 0, sizeof s);
	CHECK_INT(config_parse_file(path, test_handler, &s, err, sizeof err),
	    -1);
	{
		char want[600];

		snprintf(want, sizeof want, "%s:6: unknown key \"unknown_key\"",
		    path);
		CHECK_STR(err, want);
	}
	CHECK_INT(s.n, 2);
	CHECK_INT(s.line[0], 3);
	unlink(path);

	/* the file reader: long lines skipped whole, numbering kept */
	strcpy(path, "/tmp/simtun-unit-conf.XXXXXX");
	CHECK((fd = mkstemp(path)) != -1);
	CHECK((fp = fdopen(fd, "w")) != NULL);
	if (fp == NULL)
		return;
	fprintf(fp, "[s]\nk = %0199d\nk = %0195d\n  %0300d\nport = 0\n"
	    "k = %0195d", 7, 8, 9, 10);
	fclose(fp);
	memset(&s, 0, sizeof s);
	CHECK_INT(config_parse_file(path, test_handler, &s, err, sizeof err),
	    -1);
	{
		char want[600];

		snprintf(want, sizeof want, "%s:2: line too long (more than "
		    "199 characters)", path);
		CHECK_STR(err, want);
	}
	CHECK_INT(s.n, 3);
	CHECK_INT(s.line[0], 3);
	CHECK_INT(strlen(s.value[0]), 195);
	CHECK_STR(s.name[1], "port");
	CHECK_INT(s.line[1], 5);
	CHECK_INT(s.line[2], 6);
	CHECK_INT(strlen(s.value[2]), 195);
	unlink(path);

	CHECK_INT(config_parse_file("/nonexistent/simtun.conf", test_handler,
	    &s, err, sizeof err), -1);
	CHECK_STR(err, "/nonexistent/simtun.conf: No such file or directory");
}

static void
test_parse_uint(void)
{
	unsigned long n;
	const char *why;

	n = 7;
	CHECK_INT(parse_uint("0", 0, 10, &n, &why), 0);
	CHECK_INT(n, 0);
	CHECK_INT(parse_uint("10", 0, 10, &n, &why), 0);
	CHECK_INT(n, 10);
	CHECK_INT(parse_uint("1", 1, 1, &n, &why), 0);
	CHECK_INT(parse_uint("007", 0, 10, &n, &why), 0);
	CHECK_INT(n, 7);
	CHECK_INT(parse_uint("4294967295", 0, 4294967295UL, &n, &why), 0);
	CHECK(n == 4294967295UL);

	n = 42;
	why = NULL;
	CHECK_INT(parse_uint("", 0, 10, &n, &why), -1);
	CHECK_STR(why, "not a number");
	CHECK_INT(n, 42);
	CHECK_INT(parse_uint("-1", 0, 10, &n, &why), -1);
	CHECK_STR(why, "not a number");
	CHECK_INT(parse_uint("+1", 0, 10, &n, &why), -1);
	CHECK_INT(parse_uint(" 1", 0, 10, &n, &why), -1);
	CHECK_INT(parse_uint("\t1", 0, 10, &n, &why), -1);
	CHECK_INT(parse_uint("\n1", 0, 10, &n, &why), -1);
	CHECK_INT(parse_uint("1 ", 0, 10, &n, &why), -1);
	CHECK_INT(parse_uint("12x", 0, 100, &n, &why), -1);
	CHECK_STR(why, "not a number");
	CHECK_INT(parse_uint("x12", 0, 100, &n, &why), -1);
	CHECK_INT(parse_uint("0x10", 0, 100, &n, &why), -1);
	CHECK_INT(parse_uint("1.5", 0, 100, &n, &why), -1);
	CHECK_INT(parse_uint("1e3", 0, 10000, &n, &why), -1);
	CHECK_INT(parse_uint("11", 0, 10, &n, &why), -1);
	CHECK_STR(why, "out of range");
	CHECK_INT(parse_uint("4", 5, 10, &n, &why), -1);
	CHECK_STR(why, "out of range");
	CHECK_INT(parse_uint("99999999999999999999999999", 0, (unsigned long)-1,
	    &n, &why), -1);
	CHECK_STR(why, "out of range");
	CHECK_INT(parse_uint("18446744073709551616", 0, (unsigned long)-1,
	    &n, &why), -1);
	CHECK_STR(why, "out of range");
	CHECK_INT(parse_uint("18446744073709551615", 0, (unsigned long)-1,
	    &n, &why), 0);
	CHECK(n == (unsigned long)-1);
	CHECK_INT(n == 42, 0);
}

static void
test_parse_seconds(void)
{
	unsigned long n;
	const char *why;

	CHECK_INT(parse_seconds("5s", 1, 60, &n, &why), 0);
	CHECK_INT(n, 5);
	CHECK_INT(parse_seconds("5", 1, 60, &n, &why), 0);
	CHECK_INT(n, 5);
	CHECK_INT(parse_seconds("60s", 1, 60, &n, &why), 0);
	CHECK_INT(n, 60);
	CHECK_INT(parse_seconds("61s", 1, 60, &n, &why), -1);
	CHECK_STR(why, "out of range");
	CHECK_INT(parse_seconds("0s", 1, 60, &n, &why), -1);
	CHECK_INT(parse_seconds("s", 1, 60, &n, &why), -1);
	CHECK_STR(why, "not a number");
	CHECK_INT(parse_seconds("", 1, 60, &n, &why), -1);
	CHECK_INT(parse_seconds("5ss", 1, 60, &n, &why), -1);
	CHECK_INT(parse_seconds("5 s", 1, 60, &n, &why), -1);
	CHECK_INT(parse_seconds("-5s", 1, 60, &n, &why), -1);
	/* durations: m, h, d (grants' --for, max_grant_time) */
	CHECK_INT(parse_seconds("5m", 1, 600, &n, &why), 0);
	CHECK_INT(n, 300);
	CHECK_INT(parse_seconds("2h", 1, 86400, &n, &why), 0);
	CHECK_INT(n, 7200);
	CHECK_INT(parse_seconds("1d", 1, 86400, &n, &why), 0);
	CHECK_INT(n, 86400);
	CHECK_INT(parse_seconds("11m", 1, 600, &n, &why), -1);
	CHECK_STR(why, "out of range");
	CHECK_INT(parse_seconds("0h", 1, 600, &n, &why), -1);
	CHECK_INT(parse_seconds("99999999999999999999d", 1, 600, &n, &why),
	    -1);
	CHECK_INT(parse_seconds("999999999999999999d", 1, ULONG_MAX, &n,
	    &why), -1);
	CHECK_INT(parse_seconds("h", 1, 60, &n, &why), -1);
	CHECK_INT(parse_seconds("1.5h", 1, 86400, &n, &why), -1);
	CHECK_INT(parse_seconds("5S", 1, 60, &n, &why), -1);
	CHECK_INT(parse_seconds("5w", 1, 60, &n, &why), -1);
	/* long input must not overflow the internal buffer */
	{
		char big[100];

		memset(big, '1', sizeof big - 2);
		big[sizeof big - 2] = 's';
		big[sizeof big - 1] = '\0';
		CHECK_INT(parse_seconds(big, 1, 60, &n, &why), -1);
	}
}

static void
test_parse_bool(void)
{
	static const char *yes[] = { "yes", "YES", "Yes", "true", "TRUE",
	    "on", "On", "1", NULL };
	static const char *no[] = { "no", "NO", "false", "False", "off", "OFF",
	    "0", NULL };
	static const char *bad[] = { "", "2", "y", "n", "yess", "nope",
	    " yes", "yes ", "01", "-1", NULL };
	const char *why;
	int i, b;

	for (i = 0; yes[i]; i++) {
		b = -1;
		CHECK_INT(parse_bool(yes[i], &b, &why), 0);
		CHECK_INT(b, 1);
	}
	for (i = 0; no[i]; i++) {
		b = -1;
		CHECK_INT(parse_bool(no[i], &b, &why), 0);
		CHECK_INT(b, 0);
	}
	for (i = 0; bad[i]; i++) {
		b = -1;
		why = NULL;
		CHECK_INT(parse_bool(bad[i], &b, &why), -1);
		CHECK_INT(b, -1);
		CHECK_STR(why, "expected yes or no");
	}
}

static void
test_parse_port(void)
{
	static const char *bad[] = { "0", "65536", "http", "", "-1", "22x",
	    " 22", "100000", "99999999999999999999", "22.0", NULL };
	const char *why;
	uint16_t port;
	int i;

	CHECK_INT(parse_port("1", &port, &why), 0);
	CHECK_INT(port, 1);
	CHECK_INT(parse_port("22", &port, &why), 0);
	CHECK_INT(port, 22);
	CHECK_INT(parse_port("65535", &port, &why), 0);
	CHECK_INT(port, 65535);
	for (i = 0; bad[i]; i++) {
		port = 777;
		why = NULL;
		CHECK_INT(parse_port(bad[i], &port, &why), -1);
		CHECK_INT(port, 777);
		CHECK_STR(why, "port must be a number from 1 to 65535");
	}
}

/* One parse_hostport case: want_host NULL with rc 0 means port only. */
static void
hp(const char *v, int port_only_ok, int want_rc, const char *want_host,
    int want_port, const char *want_why, int line)
{
	char *host = (char *)"unset";
	const char *why = NULL;
	uint16_t port = 0;
	int rc;

	rc = parse_hostport(v, &host, &port, port_only_ok, &why);
	if (!unit_check_int(rc, want_rc, __FILE__, line, v))
		return;
	if (rc == 0) {
		unit_check_str(host, want_host, __FILE__, line, v);
		unit_check_int(port, want_port, __FILE__, line, v);
	} else {
		unit_check(host == NULL, __FILE__, line, "host == NULL");
		if (want_why != NULL)
			unit_check_str(why, want_why, __FILE__, line, v);
		else
			unit_check(why != NULL, __FILE__, line, "why set");
	}
	if (rc == 0)
		free(host);
}

static void
test_parse_hostport(void)
{
	const char *p = "port must be a number from 1 to 65535";

	hp("1.2.3.4:22", 0, 0, "1.2.3.4", 22, NULL, __LINE__);
	hp("1.2.3.4:22", 1, 0, "1.2.3.4", 22, NULL, __LINE__);
	hp("relay.example.com:2222", 0, 0, "relay.example.com", 2222, NULL,
	    __LINE__);
	hp("0.0.0.0:2222", 0, 0, "0.0.0.0", 2222, NULL, __LINE__);
	hp("*:6000", 0, 0, "*", 6000, NULL, __LINE__);
	hp("[::1]:2222", 0, 0, "::1", 2222, NULL, __LINE__);
	hp("[::]:2222", 0, 0, "::", 2222, NULL, __LINE__);
	hp("[fe80::1%eth0]:22", 0, 0, "fe80::1%eth0", 22, NULL, __LINE__);
	hp("4649", 1, 0, NULL, 4649, NULL, __LINE__);

	hp("::1:22", 0, -1, NULL, 0,
	    "IPv6 address must be written [address]:port", __LINE__);
	hp("::1:22", 1, -1, NULL, 0,
	    "IPv6 address must be written [address]:port", __LINE__);
	hp("4649", 0, -1, NULL, 0, "expected host:port", __LINE__);
	hp("http", 1, -1, NULL, 0, p, __LINE__);
	hp("0", 1, -1, NULL, 0, p, __LINE__);
	hp("", 0, -1, NULL, 0, "expected host:port", __LINE__);
	hp("", 1, -1, NULL, 0, p, __LINE__);
	hp(":22", 0, -1, NULL, 0, "empty host before ':'", __LINE__);
	hp(":22", 1, -1, NULL, 0, "empty host before ':'", __LINE__);
	hp("host:", 0, -1, NULL, 0, p, __LINE__);
	hp("host:0", 0, -1, NULL, 0, p, __LINE__);
	hp("host:65536", 0, -1, NULL, 0, p, __LINE__);
	hp("host:ssh", 0, -1, NULL, 0, p, __LINE__);
	hp("host:22 ", 0, -1, NULL, 0, p, __LINE__);
	hp("a b:1", 0, -1, NULL, 0, "bad character in host", __LINE__);
	hp("a\tb:1", 0, -1, NULL, 0, "bad character in host", __LINE__);
	hp("a/b:1", 0, -1, NULL, 0, "bad character in host", __LINE__);
	hp("\"a\":1", 0, -1, NULL, 0, "bad character in host", __LINE__);
	hp("[::1]", 0, -1, NULL, 0, "expected [address]:port", __LINE__);
	hp("[::1]22", 0, -1, NULL, 0, "expected [address]:port", __LINE__);
	hp("[::1]:", 0, -1, NULL, 0, p, __LINE__);
	hp("[::1]:0", 0, -1, NULL, 0, p, __LINE__);
	hp("[]:22", 0, -1, NULL, 0, "bad [address]:port", __LINE__);
	hp("[::1:22", 0, -1, NULL, 0, "bad [address]:port", __LINE__);
	hp("[", 1, -1, NULL, 0, "bad [address]:port", __LINE__);
}

/* Random and mutated INI text: nothing may crash, rc is 0 or -1. */
static int
fuzz_handler(struct config_ctx *ctx, void *arg, const char *section,
    const char *name, const char *value)
{
	int *calls = arg;
	const char *why;
	char *host;
	uint16_t port;
	unsigned long ul;
	int b;

	(*calls)++;
	if (ctx->line < 1)
		return config_error(ctx, "line %d < 1", ctx->line);
	if (name == NULL)
		return value == NULL ? 1 : config_error(ctx, "header value");
	if (parse_hostport(value, &host, &port, 1, &why) == 0)
		free(host);
	(void)parse_seconds(value, 0, 100, &ul, &why);
	(void)parse_bool(value, &b, &why);
	if (name[0] == 'b')
		return config_error(ctx, "unknown key \"%s\" in [%s]", name,
		    section);
	return 1;
}

static void
test_config_fuzz(void)
{
	static const char *seeds[] = {
		"[relay]\nlisten = 0.0.0.0:2222\nport = 22\n",
		"; c\n# c\n\n[agent]\nidentity = /etc/simtun/id\n  cont\n",
		"[forward ssh]\nremote = 4649\nlocal = 127.0.0.1:22\n",
		"[path arc]\ninterface = arc0\nhost = [::1]:22 ; x\n",
		"a=b\r\nb=c\r\n[x\n=\n[]\n",
	};
	static const char alphabet[] = "[]=;#: \t\r\n\\\"abz019*/.";
	char buf[1200], err[256];
	int i, j, len, calls, rc, okrc = 1;

	unit_rng_seed(0x51a7u);
	for (i = 0; i < 4000; i++) {
		const char *sd = seeds[unit_rng_below(5)];

		len = 0;
		switch (unit_rng_below(4)) {
		case 0:	/* random bytes, some NUL-free binary */
			len = (int)unit_rng_below(600);
			for (j = 0; j < len; j++)
				buf[j] = (char)(unit_rng_below(255) + 1);
			break;
		case 1:	/* random structural characters */
			len = (int)unit_rng_below(600);
			for (j = 0; j < len; j++)
				buf[j] = alphabet[unit_rng_below(
				    sizeof alphabet - 1)];
			break;
		case 2:	/* truncated seed */
			len = (int)unit_rng_below((uint32_t)strlen(sd) + 1);
			memcpy(buf, sd, (size_t)len);
			break;
		default: /* mutated seed, sometimes with long runs */
			len = (int)strlen(sd);
			memcpy(buf, sd, (size_t)len);
			for (j = (int)unit_rng_below(8); j >= 0; j--) {
				int at = (int)unit_rng_below((uint32_t)len);

				if (unit_rng_below(4) == 0 && len < 800) {
					int run = (int)unit_rng_below(300);

					memmove(buf + at + run, buf + at,
					    (size_t)(len - at));
					memset(buf + at, 'q', (size_t)run);
					len += run;
				} else
					buf[at] = alphabet[unit_rng_below(
					    sizeof alphabet - 1)];
			}
			break;
		}
		buf[len] = '\0';
		calls = 0;
		err[0] = '\0';
		rc = config_parse_string("fuzz.conf", buf, fuzz_handler, &calls,
		    err, sizeof err);
		if (rc != 0 && rc != -1)
			okrc = 0;
		if (rc == -1 && strncmp(err, "fuzz.conf:", 10) != 0)
			okrc = 0;
		if (rc == -1 && strstr(err, "line 0 < 1") != NULL)
			okrc = 0;
	}
	CHECK(okrc);
}

/* Every section header reaches the handler, also a section with no keys. */
static void
test_config_headers(void)
{
	struct seen s;
	char err[512];

	memset(&s, 0, sizeof s);
	CHECK_INT(parse("[a]\nport = 1\n; c\n[empty]\n", &s, err, sizeof err),
	    0);
	CHECK_INT(s.headers, 2);
	CHECK_STR(s.last_header, "empty");
	CHECK_INT(s.header_line, 4);
	CHECK_INT(s.n, 1);
	memset(&s, 0, sizeof s);
	CHECK_INT(parse("\xEF\xBB\xBF[a] ; c\n\n[bad]\n", &s, err, sizeof err),
	    -1);
	CHECK_STR(err, "t.conf:3: unknown section [bad]");
	CHECK_INT(s.headers, 2);
}

int
main(void)
{
	log_init("test_config", 0);
	test_config_ok();
	test_config_headers();
	test_config_errors();
	test_config_long_lines();
	test_config_file();
	test_parse_uint();
	test_parse_seconds();
	test_parse_bool();
	test_parse_port();
	test_parse_hostport();
	test_config_fuzz();
	return unit_done();
}
