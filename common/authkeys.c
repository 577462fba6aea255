/* OpenSSH authorized_keys: key, comment (device name), honoured options. */
#include <arpa/inet.h>
#include <netinet/in.h>

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"

#define AUTHKEYS_MAX_LINE	16384
#define AUTHKEYS_MAX_PERMITS	64

/* Options that change nothing for a relay that only grants listed ports. */
static const char *authkeys_noop_opts[] = {
	"restrict", "no-pty", "no-agent-forwarding", "no-X11-forwarding",
	"no-x11-forwarding", "no-user-rc", "port-forwarding", "pty",
	"no-touch-required", NULL
};

/* Free one parsed entry. */
void
authkey_free(struct authkey *ak)
{
	size_t i;

	if (ak == NULL)
		return;
	ssh_key_free(ak->key);
	free(ak->keytype);
	free(ak->fp);
	free(ak->name);
	for (i = 0; i < ak->npermits; i++)
		free(ak->permits[i].host);
	free(ak->permits);
	for (i = 0; i < ak->nopens; i++)
		free(ak->opens[i].host);
	free(ak->opens);
	free(ak->from);
	free(ak);
}

/* Free every entry of a list. */
void
authkeys_free(struct authkeys *list)
{
	struct authkey *ak;

	while ((ak = TAILQ_FIRST(list)) != NULL) {
		TAILQ_REMOVE(list, ak, entry);
		authkey_free(ak);
	}
}

/* Is this token the name of a key type (so the line has no options)? */
static int
authkeys_is_keytype(const char *tok, size_t len)
{
	char buf[64];

	if (len == 0 || len >= sizeof buf)
		return 0;
	memcpy(buf, tok, len);
	buf[len] = '\0';
	return ssh_key_type_from_name(buf) != SSH_KEYTYPE_UNKNOWN;
}

/* Parse a quoted option value starting at '"'; returns allocated string. */
static char *
authkeys_quoted(const char **pp, char *err, size_t len)
{
	const char *p = *pp;
	char *out, *o;

	if (*p != '"') {
		snprintf(err, len, "option value must be in double quotes");
		return NULL;
	}
	p++;
	out = o = xmalloc(strlen(p) + 1);
	while (*p != '\0' && *p != '"') {
		if (*p == '\\' && p[1] == '"')
			p++;
		*o++ = *p++;
	}
	if (*p != '"') {
		free(out);
		snprintf(err, len, "unterminated quoted option value");
		return NULL;
	}
	*o = '\0';
	*pp = p + 1;
	return out;
}

/*
 * permitlisten="[host:]port" or permitopen="host:port" (host a pattern
 * with * and ?), port "*" meaning any.
 */
static int
authkeys_add_permit(const char *opt, struct permit **list, size_t *n,
    const char *v, char *err, size_t len)
{
	const char *colon, *portstr, *why;
	struct permit pm;
	uint16_t port;
	int open = !strcasecmp(opt, "permitopen");

	if (*n >= AUTHKEYS_MAX_PERMITS) {
		snprintf(err, len, "too many %s options", opt);
		return -1;
	}
	memset(&pm, 0, sizeof pm);
	colon = strrchr(v, ':');
	if (open && colon == NULL) {
		snprintf(err, len, "%s \"%s\": want host:port", opt, v);
		return -1;
	}
	portstr = colon ? colon + 1 : v;
	if (colon != NULL) {
		const char *h = v, *e = colon;

		if (*h == '[' && e > h && e[-1] == ']') {
			h++;
			e--;
		}
		if (e == h) {
			snprintf(err, len, "%s \"%s\": empty host", opt, v);
			return -1;
		}
		pm.host = xstrndup(h, (size_t)(e - h));
		if (!open && !strcmp(pm.host, "*")) {
			free(pm.host);
			pm.host = NULL;
		}
	}
	if (!strcmp(portstr, "*"))
		pm.port = 0;
	else if (parse_port(portstr, &port, &why) == 0)
		pm.port = port;
	else {
		free(pm.host);
		snprintf(err, len, "%s \"%s\": %s", opt, v, why);
		return -1;
	}
	*list = xreallocarray(*list, *n + 1, sizeof **list);
	(*list)[(*n)++] = pm;
	return 0;
}

/* The number in len decimal digits. */
static int
authkeys_digits(const char *s, size_t len)
{
	int v = 0;

	while (len-- > 0)
		v = v * 10 + (*s++ - '0');
	return v;
}

/*
 * expiry-time="YYYYMMDD[HHMM[SS]][Z]" as OpenSSH reads it: local time,
 * or UTC with Z. 0 on success.
 */
int
authkeys_parse_time(const char *v, time_t *out)
{
	struct tm tm;
	size_t n = strlen(v), i;
	int utc = 0;
	time_t t;

	if (n > 0 && (v[n - 1] == 'Z' || v[n - 1] == 'z')) {
		utc = 1;
		n--;
	}
	if (n != 8 && n != 12 && n != 14)
		return -1;
	for (i = 0; i < n; i++)
		if (!isdigit((unsigned char)v[i]))
			return -1;
	memset(&tm, 0, sizeof tm);
#define DIGITS(off, len) authkeys_digits(v + (off), (len))
	tm.tm_year = DIGITS(0, 4) - 1900;
	tm.tm_mon = DIGITS(4, 2) - 1;
	tm.tm_mday = DIGITS(6, 2);
	if (n >= 12) {
		tm.tm_hour = DIGITS(8, 2);
		tm.tm_min = DIGITS(10, 2);
	}
	if (n == 14)
		tm.tm_sec = DIGITS(12, 2);
#undef DIGITS
	if (tm.tm_year < 70 || tm.tm_mon < 0 || tm.tm_mon > 11 ||
	    tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 ||
	    tm.tm_min > 59 || tm.tm_sec > 60)
		return -1;
	tm.tm_isdst = -1;
	t = utc ? timegm(&tm) : mktime(&tm);
	if (t == (time_t)-1)
		return -1;
	*out = t;
	return 0;
}

static int match_cidr(const char *, const char *);

/*
 * Is an address list (from=, penalty_exempt) well formed the way
 * match_addr_list reads it: comma-separated entries, an optional '!', no
 * blank inside an entry, CIDR entries with a valid network and prefix?
 */
int
addr_list_check(const char *list, char *err, size_t len)
{
	char *copy, *tok, *save = NULL;
	int rc = 0;

	copy = xstrdup(list);
	for (tok = strtok_r(copy, ",", &save); tok != NULL;
	    tok = strtok_r(NULL, ",", &save)) {
		while (*tok == ' ')
			tok++;
		if (*tok == '!')
			tok++;
		if (strpbrk(tok, " \t") != NULL) {
			snprintf(err, len, "\"%s\": entries are separated by "
			    "commas", tok);
			rc = -1;
			break;
		}
		if (*tok == '\0' || (strchr(tok, '/') != NULL &&
		    match_cidr("0.0.0.0", tok) == -1)) {
			snprintf(err, len, "bad entry \"%s\"", tok);
			rc = -1;
			break;
		}
	}
	free(copy);
	return rc;
}

/* Parse the comma-separated option list; advances *pp past it. */
static int
authkeys_options(struct authkey *ak, const char **pp, int *noport, char *err,
    size_t len)
{
	const char *p = *pp, *s;
	char name[64], why[200];
	char *val;
	size_t n;
	int i, known;

	for (;;) {
		s = p;
		while (*p != '\0' && *p != '=' && *p != ',' && *p != ' ' &&
		    *p != '\t' && *p != '\n' && *p != '\r')
			p++;
		n = (size_t)(p - s);
		if (n == 0 || n >= sizeof name) {
			snprintf(err, len, "bad option list");
			return -1;
		}
		memcpy(name, s, n);
		name[n] = '\0';
		if (*p == '=') {
			p++;
			if ((val = authkeys_quoted(&p, err, len)) == NULL)
				return -1;
			if (!strcasecmp(name, "permitlisten") ||
			    !strcasecmp(name, "permitopen")) {
				if (authkeys_add_permit(name, tolower(
				    (unsigned char)name[6]) == 'l' ?
				    &ak->permits : &ak->opens,
				    tolower((unsigned char)name[6]) == 'l' ?
				    &ak->npermits : &ak->nopens, val, err,
				    len) == -1) {
					free(val);
					return -1;
				}
				free(val);
			} else if (!strcasecmp(name, "expiry-time")) {
				if (ak->expiry != 0 ||
				    authkeys_parse_time(val, &ak->expiry) == -1) {
					snprintf(err, len, ak->expiry ?
					    "expiry-time given twice" :
					    "expiry-time \"%s\": want "
					    "YYYYMMDD[HHMM[SS]][Z]", val);
					free(val);
					return -1;
				}
				free(val);
			} else if (!strcasecmp(name, "from")) {
				if (ak->from != NULL || *val == '\0') {
					snprintf(err, len, ak->from ?
					    "from given twice" :
					    "from is empty");
					free(val);
					return -1;
				}
				if (addr_list_check(val, why, sizeof why) ==
				    -1) {
					snprintf(err, len, "from: %s", why);
					free(val);
					return -1;
				}
				ak->from = val;
			} else {
				free(val);
				snprintf(err, len, "unsupported option \"%s\"",
				    name);
				return -1;
			}
		} else {
			known = 0;
			for (i = 0; authkeys_noop_opts[i] != NULL; i++)
				if (!strcasecmp(name, authkeys_noop_opts[i]))
					known = 1;
			if (!strcasecmp(name, "restrict"))
				ak->restricted = 1;
			if (!strcasecmp(name, "no-port-forwarding")) {
				*noport = 1;
				known = 1;
			}
			if (!known) {
				snprintf(err, len, "unsupported option \"%s\"",
				    name);
				return -1;
			}
		}
		if (*p == ',') {
			p++;
			continue;
		}
		if (*p == ' ' || *p == '\t')
			break;
		snprintf(err, len, "missing key after options");
		return -1;
	}
	*pp = p;
	return 0;
}

/*
 * Parse one line. Returns 1 with *out set for a key, 0 for a blank or
 * comment line, -1 with err set for a line to refuse.
 */
int
authkeys_parse_line(const char *line, struct authkey **out, char *err,
    size_t len)
{
	struct authkey *ak;
	const char *p = line, *s;
	char *type = NULL, *b64 = NULL, *again = NULL, *c;
	size_t n;
	int noport = 0;

	*out = NULL;
	while (*p == ' ' || *p == '\t')
		p++;
	if (*p == '\0' || *p == '\n' || *p == '\r' || *p == '#')
		return 0;
	ak = xcalloc(1, sizeof *ak);
	for (n = 0; p[n] && p[n] != ' ' && p[n] != '\t' && p[n] != '\n' &&
	    p[n] != '\r'; n++)
		;
	if (!authkeys_is_keytype(p, n)) {
		if (authkeys_options(ak, &p, &noport, err, len) == -1)
			goto fail;
		while (*p == ' ' || *p == '\t')
			p++;
		for (n = 0; p[n] && p[n] != ' ' && p[n] != '\t' &&
		    p[n] != '\n' && p[n] != '\r'; n++)
			;
		if (!authkeys_is_keytype(p, n)) {
			snprintf(err, len, "unknown key type");
			goto fail;
		}
	}
	type = xstrndup(p, n);
	p += n;
	while (*p == ' ' || *p == '\t')
		p++;
	s = p;
	while (*p && *p != ' ' && *p != '\t' && *p != '\n' && *p != '\r')
		p++;
	if (p == s) {
		snprintf(err, len, "missing base64 key");
		goto fail;
	}
	b64 = xstrndup(s, (size_t)(p - s));
	if (ssh_pki_import_pubkey_base64(b64, ssh_key_type_from_name(type),
	    &ak->key) != SSH_OK || ak->key == NULL) {
		snprintf(err, len, "cannot decode %s key", type);
		goto fail;
	}
	/*
	 * libssh skips the type name inside the blob and imports it as the
	 * type the line names: exported again, the blob must be the one we
	 * were given, and "ecdsa-sha2-nistp384 <a nistp256 blob>" (which
	 * round-trips) must name the curve the key is on.
	 */
	if (ssh_pki_export_pubkey_base64(ak->key, &again) != SSH_OK ||
	    again == NULL || strcmp(again, b64) != 0) {
		ssh_string_free_char(again);
		snprintf(err, len, "key type does not match its data");
		goto fail;
	}
	ssh_string_free_char(again);
	if (ssh_key_type(ak->key) == SSH_KEYTYPE_ECDSA_P256 ||
	    ssh_key_type(ak->key) == SSH_KEYTYPE_ECDSA_P384 ||
	    ssh_key_type(ak->key) == SSH_KEYTYPE_ECDSA_P521) {
		const char *curve = ssh_pki_key_ecdsa_name(ak->key);

		if (curve == NULL || strcmp(curve,
		    ssh_key_type_to_char(ssh_key_type(ak->key))) != 0) {
			snprintf(err, len, "key type does not match its data");
			goto fail;
		}
	}
	while (*p == ' ' || *p == '\t')
		p++;
	ak->name = xstrdup(p);
	for (c = ak->name + strlen(ak->name); c > ak->name &&
	    (c[-1] == '\n' || c[-1] == '\r' || c[-1] == ' ' || c[-1] == '\t');
	    c--)
		c[-1] = '\0';
	if (*ak->name == '\0') {
		snprintf(err, len, "missing comment (the device name)");
		goto fail;
	}
	for (c = ak->name; *c; c++) {
		if ((unsigned char)*c < 0x20 || (unsigned char)*c >= 0x7f) {
			snprintf(err, len, "device name has control "
			    "characters or non-ASCII bytes");
			goto fail;
		}
	}
	if (noport) {
		size_t i;

		for (i = 0; i < ak->npermits; i++)
			free(ak->permits[i].host);
		free(ak->permits);
		ak->permits = NULL;
		ak->npermits = 0;
		for (i = 0; i < ak->nopens; i++)
			free(ak->opens[i].host);
		free(ak->opens);
		ak->opens = NULL;
		ak->nopens = 0;
	}
	ak->keytype = type;
	ak->fp = key_fingerprint(ak->key);
	free(b64);
	*out = ak;
	return 1;
fail:
	free(type);
	free(b64);
	authkey_free(ak);
	return -1;
}

/*
 * Load a file. Bad lines are logged as "file:line: message" and skipped;
 * returns the number of keys, or -1 (err set) when the file cannot be read.
 */
int
authkeys_load(const char *path, struct authkeys *list, char *err, size_t len)
{
	struct authkey_index idx;
	struct authkey *ak, *old;
	char why[256];
	char *line;
	FILE *fp;
	int lineno = 0, count = 0, rc;

	TAILQ_INIT(list);
	if ((fp = fopen(path, "r")) == NULL) {
		snprintf(err, len, "%s: %s", path, strerror(errno));
		return -1;
	}
	line = xmalloc(AUTHKEYS_MAX_LINE);
	authkey_index_init(&idx, 4096);
	while (fgets(line, AUTHKEYS_MAX_LINE, fp) != NULL) {
		lineno++;
		if (strchr(line, '\n') == NULL && !feof(fp)) {
			int ch;

			log_warnx("%s:%d: line too long, ignored", path,
			    lineno);
			while ((ch = fgetc(fp)) != EOF && ch != '\n')
				;
			continue;
		}
		rc = authkeys_parse_line(line, &ak, why, sizeof why);
		if (rc == -1) {
			log_warnx("%s:%d: %s; line ignored", path, lineno, why);
			continue;
		}
		if (rc == 0)
			continue;
		ak->line = lineno;
		if ((old = authkey_index_key(&idx, ak->key)) != NULL) {
			log_warnx("%s:%d: key %s already listed on line %d; "
			    "line ignored", path, lineno, ak->fp, old->line);
			authkey_free(ak);
			continue;
		}
		TAILQ_INSERT_TAIL(list, ak, entry);
		authkey_index_add(&idx, ak);
		count++;
	}
	authkey_index_free(&idx);
	free(line);
	fclose(fp);
	return count;
}

/* An empty index with a power-of-two number of buckets. */
void
authkey_index_init(struct authkey_index *idx, size_t n)
{
	size_t b = 64;

	while (b < n && b < ((size_t)1 << 24))
		b <<= 1;
	idx->nbuckets = b;
	idx->buckets = xcalloc(b, sizeof *idx->buckets);
}

/* Index one key (its fpnext link is reused: a key is in one index). */
void
authkey_index_add(struct authkey_index *idx, struct authkey *ak)
{
	size_t h = str_hash(ak->fp) & (idx->nbuckets - 1);

	ak->fpnext = idx->buckets[h];
	idx->buckets[h] = ak;
}

/* Index a whole list, about one bucket per key. */
void
authkey_index_build(struct authkey_index *idx, struct authkeys *list)
{
	struct authkey *ak;
	size_t n = 0;

	TAILQ_FOREACH(ak, list, entry)
		n++;
	authkey_index_init(idx, n);
	TAILQ_FOREACH(ak, list, entry)
		authkey_index_add(idx, ak);
}

/* Free the buckets; the keys belong to their list. */
void
authkey_index_free(struct authkey_index *idx)
{
	free(idx->buckets);
	idx->buckets = NULL;
	idx->nbuckets = 0;
}

/* The entry with this fingerprint, or NULL. */
struct authkey *
authkey_index_fp(struct authkey_index *idx, const char *fp)
{
	struct authkey *ak;

	if (idx->nbuckets == 0)
		return NULL;
	for (ak = idx->buckets[str_hash(fp) & (idx->nbuckets - 1)];
	    ak != NULL; ak = ak->fpnext)
		if (!strcmp(ak->fp, fp))
			return ak;
	return NULL;
}

/* The entry for a public key: by fingerprint, then compared in full. */
struct authkey *
authkey_index_key(struct authkey_index *idx, ssh_key key)
{
	struct authkey *ak;
	char *fp;

	fp = key_fingerprint(key);
	ak = authkey_index_fp(idx, fp);
	free(fp);
	if (ak != NULL && ssh_key_cmp(ak->key, key, SSH_KEY_CMP_PUBLIC) != 0)
		return NULL;
	return ak;
}

/* The entry for a public key, or NULL (a linear scan). */
struct authkey *
authkeys_find(struct authkeys *list, ssh_key key)
{
	struct authkey *ak;

	TAILQ_FOREACH(ak, list, entry)
		if (ssh_key_cmp(ak->key, key, SSH_KEY_CMP_PUBLIC) == 0)
			return ak;
	return NULL;
}

/* May this key listen on port (requested bind address host)? */
int
authkey_permits(const struct authkey *ak, const char *host, int port)
{
	size_t i;

	for (i = 0; i < ak->npermits; i++) {
		if (ak->permits[i].port != 0 && ak->permits[i].port != port)
			continue;
		if (ak->permits[i].host != NULL && (host == NULL ||
		    strcmp(ak->permits[i].host, host) != 0))
			continue;
		return 1;
	}
	return 0;
}

/*
 * May this key take the named forward name:port? Only a permitlisten that
 * names it exactly: a port-only or "*" entry grants no names, so a key
 * cannot take another device's name.
 */
int
authkey_permits_name(const struct authkey *ak, const char *name, int port)
{
	size_t i;

	for (i = 0; i < ak->npermits; i++) {
		if (ak->permits[i].port != 0 && ak->permits[i].port != port)
			continue;
		if (ak->permits[i].host != NULL &&
		    strcmp(ak->permits[i].host, name) == 0)
			return 1;
	}
	return 0;
}

/* May this (operator) key open direct-tcpip to host:port (permitopen)? */
int
authkey_may_open(const struct authkey *ak, const char *host, int port)
{
	size_t i;

	for (i = 0; i < ak->nopens; i++) {
		if (ak->opens[i].port != 0 && ak->opens[i].port != port)
			continue;
		if (match_pattern(host, ak->opens[i].host))
			return 1;
	}
	return 0;
}

/* Has the key's expiry-time passed at now? */
int
authkey_expired(const struct authkey *ak, time_t now)
{
	return ak->expiry != 0 && now >= ak->expiry;
}

/* Does the peer address satisfy the key's from= list? */
int
authkey_from_ok(const struct authkey *ak, const char *addr)
{
	if (ak->from == NULL)
		return 1;
	return match_addr_list(addr, ak->from) == 1;
}

/*
 * Shell-style wildcard match with '*' and '?', case-insensitive. On a
 * mismatch only the last '*' is retried one character further, so the
 * time is at most length(s) * length(pat): the recursive version took
 * seconds for "*1*1*1*1*1*1*1*1*1*1*2" against a long IPv6 peer address,
 * with the relay's event loop stalled.
 */
int
match_pattern(const char *s, const char *pat)
{
	const char *star = NULL, *star_s = NULL;

	for (;;) {
		if (*pat == '*') {
			while (*pat == '*')
				pat++;
			if (*pat == '\0')
				return 1;
			star = pat;
			star_s = s;
			continue;
		}
		if (*s == '\0')
			return *pat == '\0';
		if (*pat != '\0' && (*pat == '?' ||
		    tolower((unsigned char)*pat) == tolower((unsigned char)*s))) {
			s++;
			pat++;
			continue;
		}
		if (star == NULL)
			return 0;
		pat = star;
		s = ++star_s;
	}
}

/* addr within CIDR "net/len"? -1 when the entry is not valid CIDR. */
static int
match_cidr(const char *addr, const char *cidr)
{
	unsigned char a[16], n[16];
	char net[INET6_ADDRSTRLEN + 1];
	const char *slash = strchr(cidr, '/');
	unsigned long bits;
	const char *why;
	int fam, alen, i;

	if (slash == NULL || (size_t)(slash - cidr) >= sizeof net)
		return -1;
	memcpy(net, cidr, (size_t)(slash - cidr));
	net[slash - cidr] = '\0';
	if (inet_pton(AF_INET, net, n) == 1) {
		fam = AF_INET;
		alen = 4;
	} else if (inet_pton(AF_INET6, net, n) == 1) {
		fam = AF_INET6;
		alen = 16;
	} else
		return -1;
	if (parse_uint(slash + 1, 0, (unsigned long)alen * 8, &bits,
	    &why) == -1)
		return -1;
	if (inet_pton(fam, addr, a) != 1)
		return 0;
	for (i = 0; i < alen && bits > 0; i++) {
		unsigned char mask = bits >= 8 ? 0xff :
		    (unsigned char)(0xff << (8 - bits));

		if ((a[i] & mask) != (n[i] & mask))
			return 0;
		bits = bits >= 8 ? bits - 8 : 0;
	}
	return 1;
}

/*
 * Match an address against an OpenSSH-style pattern list: entries are
 * wildcards or CIDR, '!' negates. Returns 1 on a match, 0 on none,
 * -1 when a negated entry matches (always a refusal). Host names are not
 * looked up, so name patterns never match (like sshd with UseDNS no).
 */
int
match_addr_list(const char *addr, const char *list)
{
	char *copy, *tok, *save = NULL;
	int matched = 0, neg, m;

	copy = xstrdup(list);
	for (tok = strtok_r(copy, ",", &save); tok != NULL;
	    tok = strtok_r(NULL, ",", &save)) {
		while (*tok == ' ')
			tok++;
		neg = *tok == '!';
		if (neg)
			tok++;
		if (strchr(tok, '/') != NULL)
			m = match_cidr(addr, tok) == 1;
		else
			m = match_pattern(addr, tok);
		if (m && neg) {
			free(copy);
			return -1;
		}
		if (m)
			matched = 1;
	}
	free(copy);
	return matched;
}
