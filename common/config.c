/* Config file helpers: inih with exact line numbers, one parser per kind. */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ini.h>

#include "common.h"

struct config_run {
	struct config_ctx ctx;
	config_handler	 fn;
	void		*arg;
	FILE		*fp;
	const char	*str;
	int		 errline;	/* line of the first handler error */
	int		 longline;	/* first line too long for inih */
	int		 maxline;
};

/* Record the first error as "file:line: message"; returns 0 for inih. */
int
config_error(struct config_ctx *ctx, const char *fmt, ...)
{
	char msg[400];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (ctx->nerr++ == 0)
		snprintf(ctx->err, sizeof ctx->err, "%s:%d: %s", ctx->file,
		    ctx->line, msg);
	return 0;
}

/*
 * Each reader call returns exactly one physical line, so inih's line numbers
 * and ours agree. A line that does not fit inih's buffer is skipped whole
 * and reported: cut in pieces, its tail would be read as another line (or,
 * starting with a blank, as a silent continuation of the value).
 */
static char *
config_long_line(struct config_run *run, char *buf, int n)
{
	if (run->longline == 0) {
		run->longline = run->ctx.line;
		run->maxline = n - 1;
	}
	buf[0] = '\0';
	return buf;
}

static int config_dispatch(void *, const char *, const char *, const char *);

/*
 * inih calls no handler for a section header, so an empty [forward x] or a
 * misspelt [rely] would pass unseen: tell the handler of each header, as
 * (section, NULL, NULL), before inih reads the line.
 */
static char *
config_header(struct config_run *run, char *buf)
{
	const char *p = buf, *end;
	char name[50];		/* inih's INI_MAX_SECTION */
	size_t n;

	if (run->ctx.line == 1 && !strncmp(p, "\xEF\xBB\xBF", 3))
		p += 3;
	if (*p != '[' || (end = strchr(p + 1, ']')) == NULL)
		return buf;
	n = (size_t)(end - p - 1);
	if (n >= sizeof name)
		n = sizeof name - 1;
	memcpy(name, p + 1, n);
	name[n] = '\0';
	config_dispatch(run, name, NULL, NULL);
	return buf;
}

/* fgets-style reader over a FILE, one line per call. */
static char *
config_read_file(char *buf, int n, void *arg)
{
	struct config_run *run = arg;
	int ch;

	if (fgets(buf, n, run->fp) == NULL)
		return NULL;
	run->ctx.line++;
	if (strchr(buf, '\n') != NULL || (ch = fgetc(run->fp)) == EOF ||
	    ch == '\n')
		return config_header(run, buf);
	while ((ch = fgetc(run->fp)) != EOF && ch != '\n')
		;
	return config_long_line(run, buf, n);
}

/* fgets-style reader over a string, one line per call. */
static char *
config_read_string(char *buf, int n, void *arg)
{
	struct config_run *run = arg;
	const char *nl;
	size_t len;

	if (*run->str == '\0' || n < 2)
		return NULL;
	run->ctx.line++;
	nl = strchr(run->str, '\n');
	len = nl ? (size_t)(nl - run->str) : strlen(run->str);
	run->str += len + (nl != NULL);
	if (len > (size_t)n - 1)
		return config_long_line(run, buf, n);
	memcpy(buf, run->str - len - (nl != NULL), len);
	buf[len] = '\0';
	return config_header(run, buf);
}

/* inih callback: hand every key to the daemon's handler with context. */
static int
config_dispatch(void *arg, const char *section, const char *name,
    const char *value)
{
	struct config_run *run = arg;
	int rc, before = run->ctx.nerr;

	rc = run->fn(&run->ctx, run->arg, section, name, value);
	if (before == 0 && run->ctx.nerr > 0)
		run->errline = run->ctx.line;
	return rc;
}

/* Run inih over a reader and turn its result into one error string. */
static int
config_run(struct config_run *run, ini_reader reader, char *err, size_t len)
{
	int rc;

	rc = ini_parse_stream(reader, run, config_dispatch, run);
	if (rc == 0 && run->ctx.nerr == 0 && run->longline == 0)
		return 0;
	/* report the earliest error: long line, syntax or handler */
	if (run->longline > 0 && (rc <= 0 || run->longline <= rc) &&
	    (run->ctx.nerr == 0 || run->longline <= run->errline)) {
		snprintf(err, len, "%s:%d: line too long (more than %d "
		    "characters)", run->ctx.file, run->longline, run->maxline);
		return -1;
	}
	if (rc > 0 && (run->ctx.nerr == 0 || rc < run->errline)) {
		snprintf(err, len, "%s:%d: syntax error (expected "
		    "[section] or key = value)", run->ctx.file, rc);
		return -1;
	}
	if (rc < 0 && run->ctx.nerr == 0) {
		snprintf(err, len, "%s: cannot parse (out of memory)",
		    run->ctx.file);
		return -1;
	}
	snprintf(err, len, "%s", run->ctx.err);
	return -1;
}

/* Parse an INI file; on error err holds "file:line: message". */
int
config_parse_file(const char *path, config_handler fn, void *arg, char *err,
    size_t len)
{
	struct config_run run;
	int rc;

	memset(&run, 0, sizeof run);
	run.ctx.file = path;
	run.fn = fn;
	run.arg = arg;
	if ((run.fp = fopen(path, "r")) == NULL) {
		snprintf(err, len, "%s: %s", path, strerror(errno));
		return -1;
	}
	rc = config_run(&run, config_read_file, err, len);
	fclose(run.fp);
	return rc;
}

/* Parse INI text held in memory (tests, fuzzing); name is used in errors. */
int
config_parse_string(const char *name, const char *text, config_handler fn,
    void *arg, char *err, size_t len)
{
	struct config_run run;

	memset(&run, 0, sizeof run);
	run.ctx.file = name;
	run.fn = fn;
	run.arg = arg;
	run.str = text;
	return config_run(&run, config_read_string, err, len);
}

/* Decimal integer within [min, max]; why explains a refusal. */
int
parse_uint(const char *v, unsigned long min, unsigned long max,
    unsigned long *out, const char **why)
{
	unsigned long n;
	char *end;

	if (!isdigit((unsigned char)*v)) {
		*why = "not a number";
		return -1;
	}
	errno = 0;
	n = strtoul(v, &end, 10);
	if (*end != '\0') {
		*why = "not a number";
		return -1;
	}
	if (errno == ERANGE || n < min || n > max) {
		*why = "out of range";
		return -1;
	}
	*out = n;
	return 0;
}

/* Seconds: same as parse_uint but accepts a trailing "s". */
int
parse_seconds(const char *v, unsigned long min, unsigned long max,
    unsigned long *out, const char **why)
{
	static const struct { char c; unsigned long mul; } units[] = {
		{ 's', 1 }, { 'm', 60 }, { 'h', 3600 }, { 'd', 86400 },
	};
	char buf[32];
	size_t n = strlen(v), i;
	unsigned long x;

	for (i = 0; n > 1 && n < sizeof buf && i < 4; i++) {
		if (v[n - 1] != units[i].c)
			continue;
		memcpy(buf, v, n - 1);
		buf[n - 1] = '\0';
		if (parse_uint(buf, 0, ULONG_MAX / units[i].mul, &x, why) == -1)
			return -1;
		x *= units[i].mul;
		if (x < min || x > max) {
			*why = "out of range";
			return -1;
		}
		*out = x;
		return 0;
	}
	return parse_uint(v, min, max, out, why);
}

/* yes/no, true/false, on/off, 1/0. */
int
parse_bool(const char *v, int *out, const char **why)
{
	if (!strcasecmp(v, "yes") || !strcasecmp(v, "true") ||
	    !strcasecmp(v, "on") || !strcmp(v, "1"))
		*out = 1;
	else if (!strcasecmp(v, "no") || !strcasecmp(v, "false") ||
	    !strcasecmp(v, "off") || !strcmp(v, "0"))
		*out = 0;
	else {
		*why = "expected yes or no";
		return -1;
	}
	return 0;
}

/* TCP port 1-65535. */
int
parse_port(const char *v, uint16_t *out, const char **why)
{
	unsigned long n;

	if (parse_uint(v, 1, 65535, &n, why) == -1) {
		*why = "port must be a number from 1 to 65535";
		return -1;
	}
	*out = (uint16_t)n;
	return 0;
}

/*
 * "host:port", "[v6addr]:port", or (when port_only_ok) a bare "port", in
 * which case *host is NULL. The host part is returned allocated.
 */
int
parse_hostport(const char *v, char **host, uint16_t *port, int port_only_ok,
    const char **why)
{
	const char *colon, *p;
	char *h;

	*host = NULL;
	if (*v == '[') {
		if ((p = strchr(v, ']')) == NULL || p == v + 1) {
			*why = "bad [address]:port";
			return -1;
		}
		if (p[1] != ':') {
			*why = "expected [address]:port";
			return -1;
		}
		if (parse_port(p + 2, port, why) == -1)
			return -1;
		*host = xstrndup(v + 1, (size_t)(p - v - 1));
		return 0;
	}
	colon = strrchr(v, ':');
	if (colon == NULL) {
		if (!port_only_ok) {
			*why = "expected host:port";
			return -1;
		}
		return parse_port(v, port, why);
	}
	if (strchr(v, ':') != colon) {
		*why = "IPv6 address must be written [address]:port";
		return -1;
	}
	if (colon == v) {
		*why = "empty host before ':'";
		return -1;
	}
	if (parse_port(colon + 1, port, why) == -1)
		return -1;
	h = xstrndup(v, (size_t)(colon - v));
	for (p = h; *p; p++) {
		if (*p == ' ' || *p == '\t' || *p == '/' || *p == '"') {
			free(h);
			*why = "bad character in host";
			return -1;
		}
	}
	*host = h;
	return 0;
}
