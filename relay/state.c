/*
 * The state database (state_db): grants and exposes, so they outlive a
 * restart inside their window, and per-device daily usage. SQLite, WAL,
 * one writer: the relay holds the file's lock (locking_mode EXCLUSIVE)
 * for as long as it runs, so a second relay on the same file is an error
 * at start, not two writers.
 *
 * What is in force lives in memory; the database is its copy. At start a
 * database that cannot be read, checked or written is a fatal error that
 * says what to do: nothing starts on top of state it cannot keep. At run
 * time a write that fails (disk full, file system gone read-only) is
 * said once; the relay goes on from memory and writes everything again
 * when it can (every tick). A file removed or replaced under the relay is
 * written again from memory (usage history before that is gone).
 */
#include <sys/stat.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sqlite3.h>

#include "relay.h"

#define STATE_SCHEMA		1	/* PRAGMA user_version */
#define STATE_KEEP_ENDED	(30 * 86400)	/* ended grants kept, s */
#define STATE_KEEP_USAGE	"-400 days"	/* daily usage kept */
#define STATE_BUSY_MS		100	/* bounded: we are the only writer */
#define STATE_STR_(x)		#x
#define STATE_STR(x)		STATE_STR_(x)

struct state {
	sqlite3		*db;
	char		*path;
	dev_t		 dev;
	ino_t		 ino;
	int		 failing;	/* a write failed; said once */
	int		 in_tx;
};

static const char *state_schema =
	"CREATE TABLE IF NOT EXISTS access ("
	" id INTEGER PRIMARY KEY,"
	" kind TEXT NOT NULL,"		/* 'grant' or 'expose' */
	" operator TEXT, operator_fp TEXT,"
	" target TEXT NOT NULL, port INTEGER NOT NULL,"
	" sources TEXT, listen INTEGER,"
	" created INTEGER NOT NULL, expires INTEGER NOT NULL,"
	" asked_by TEXT, ended INTEGER, end_reason TEXT, opened INTEGER);"
	"CREATE TABLE IF NOT EXISTS usage ("
	" day TEXT NOT NULL, device TEXT NOT NULL,"
	" payload_to INTEGER NOT NULL DEFAULT 0,"
	" payload_from INTEGER NOT NULL DEFAULT 0,"
	" overhead_to INTEGER NOT NULL DEFAULT 0,"
	" overhead_from INTEGER NOT NULL DEFAULT 0,"
	" keepalive_to INTEGER NOT NULL DEFAULT 0,"
	" keepalive_from INTEGER NOT NULL DEFAULT 0,"
	" PRIMARY KEY (day, device));"
	"PRAGMA user_version = 1;";

/* What to do about an SQLite error code, for the message at start. */
static const char *
state_hint(int rc)
{
	switch (rc & 0xff) {
	case SQLITE_NOTADB:
	case SQLITE_CORRUPT:
		return "the file is not a simtun state database or is "
		    "corrupt: restore a backup, or move it aside to start "
		    "with no grants, exposes or usage history";
	case SQLITE_READONLY:
	case SQLITE_CANTOPEN:
	case SQLITE_PERM:
	case SQLITE_AUTH:
		return "it cannot be written (read-only file system, "
		    "permissions, or a missing directory): fix that or set "
		    "state_db to a writable path";
	case SQLITE_FULL:
		return "the disk is full: free space and start again";
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return "another process holds it (another simtun-relay?): "
		    "each relay needs its own state_db";
	case SQLITE_IOERR:
		return "an I/O error: check the disk";
	}
	return NULL;
}

/* Run SQL without rows; -1 with err filled. */
static int
state_exec(sqlite3 *db, const char *sql, char *err, size_t len, int *rcp)
{
	char *msg = NULL;
	int rc;

	if ((rc = sqlite3_exec(db, sql, NULL, NULL, &msg)) == SQLITE_OK)
		return 0;
	snprintf(err, len, "%s", msg ? msg : sqlite3_errstr(rc));
	sqlite3_free(msg);
	if (rcp != NULL)
		*rcp = sqlite3_extended_errcode(db);
	return -1;
}

/* One integer from a query (PRAGMA user_version, max(id)). */
static int
state_int(sqlite3 *db, const char *sql, long long *out, char *err,
    size_t len, int *rcp)
{
	sqlite3_stmt *st;
	int rc;

	if ((rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL)) != SQLITE_OK) {
		snprintf(err, len, "%s", sqlite3_errmsg(db));
		*rcp = rc;
		return -1;
	}
	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		snprintf(err, len, "%s", sqlite3_errmsg(db));
		*rcp = sqlite3_extended_errcode(db);
		sqlite3_finalize(st);
		return -1;
	}
	*out = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
	sqlite3_finalize(st);
	return 0;
}

/*
 * Open path, check it, lock it, bring its schema up to date. NULL with
 * err ("what: why") and *rcp when it cannot be used.
 */
static sqlite3 *
state_db_open(const char *path, char *err, size_t len, int *rcp,
    int *created)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st;
	struct stat sb;
	long long version, other;
	char msg[300];
	const char *res;
	int rc;

	*rcp = SQLITE_ERROR;
	/* missing, or left empty by a start that failed on a full disk */
	if (stat(path, &sb) == 0)
		*created = sb.st_size == 0;
	else
		*created = errno == ENOENT;
	/*
	 * The file itself may not be a symbolic link (one planted to make
	 * the relay write elsewhere); its directory may (systemd's
	 * DynamicUser makes /var/lib/simtun one, to /var/lib/private).
	 */
	if (lstat(path, &sb) == 0 && S_ISLNK(sb.st_mode)) {
		snprintf(err, len, "cannot open: it is a symbolic link");
		*rcp = SQLITE_CANTOPEN;
		return NULL;
	}
	rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE |
	    SQLITE_OPEN_CREATE, NULL);
	if (rc != SQLITE_OK) {
		snprintf(err, len, "cannot open: %s", db ?
		    sqlite3_errmsg(db) : sqlite3_errstr(rc));
		*rcp = rc;
		goto fail;
	}
	sqlite3_extended_result_codes(db, 1);
	sqlite3_busy_timeout(db, STATE_BUSY_MS);
	/*
	 * SQLite opens a file it cannot open for writing (read-only file
	 * system, permissions) read-only without a word; the first read of
	 * a WAL file then fails as a locking I/O error. Say what it is.
	 */
	if (sqlite3_db_readonly(db, "main") == 1) {
		snprintf(err, len, "cannot write: %s",
		    sqlite3_errstr(SQLITE_READONLY));
		*rcp = SQLITE_READONLY;
		goto fail;
	}
	if (state_exec(db, "PRAGMA locking_mode = EXCLUSIVE", msg,
	    sizeof msg, rcp) == -1) {
		snprintf(err, len, "cannot read: %s", msg);
		goto fail;
	}
	/* quick_check reads every page: a damaged file is found now */
	if ((rc = sqlite3_prepare_v2(db, "PRAGMA quick_check", -1, &st,
	    NULL)) != SQLITE_OK) {
		snprintf(err, len, "cannot read: %s", sqlite3_errmsg(db));
		*rcp = sqlite3_extended_errcode(db);
		goto fail;
	}
	rc = sqlite3_step(st);
	res = rc == SQLITE_ROW ? (const char *)sqlite3_column_text(st, 0) :
	    NULL;
	if (res == NULL || strcmp(res, "ok") != 0) {
		char *nl;

		snprintf(err, len, "integrity check failed: %s", res ? res :
		    sqlite3_errmsg(db));
		/* "*** in database main ***\nPage 2: ...": one line */
		while ((nl = strchr(err, '\n')) != NULL)
			*nl = ' ';
		*rcp = res ? SQLITE_CORRUPT : sqlite3_extended_errcode(db);
		sqlite3_finalize(st);
		goto fail;
	}
	sqlite3_finalize(st);
	if (state_int(db, "PRAGMA user_version", &version, msg, sizeof msg,
	    rcp) == -1) {
		snprintf(err, len, "cannot read: %s", msg);
		goto fail;
	}
	if (version == 0 && state_int(db, "SELECT count(*) FROM sqlite_master "
	    "WHERE name NOT IN ('access', 'usage') AND name NOT LIKE "
	    "'sqlite_%'", &other, msg, sizeof msg, rcp) == 0 && other > 0) {
		snprintf(err, len, "another program's SQLite database (%lld "
		    "tables that are not simtun's)", other);
		*rcp = SQLITE_NOTADB;
		goto fail;
	}
	if (version > STATE_SCHEMA) {
		snprintf(err, len, "written by a newer simtun (schema %lld; "
		    "this relay knows %d): use that version, or move the file "
		    "aside", version, STATE_SCHEMA);
		*rcp = SQLITE_ERROR;
		goto fail;
	}
	/* WAL, and a write at once: the lock, and proof we can write */
	if (state_exec(db, "PRAGMA journal_mode = WAL; "
	    "PRAGMA synchronous = NORMAL; BEGIN IMMEDIATE", msg, sizeof msg,
	    rcp) == -1) {
		snprintf(err, len, "cannot write: %s", msg);
		goto fail;
	}
	/* migrations: one step per schema version (0 = a new file) */
	if (version < 1 && state_exec(db, state_schema, msg, sizeof msg,
	    rcp) == -1) {
		snprintf(err, len, "cannot write: %s", msg);
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
		goto fail;
	}
	/*
	 * An empty transaction writes nothing: rewrite the header page so
	 * that a full disk is found now, not at the first grant.
	 */
	if (state_exec(db, "PRAGMA user_version = " STATE_STR(STATE_SCHEMA),
	    msg, sizeof msg, rcp) == -1) {
		snprintf(err, len, "cannot write: %s", msg);
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
		goto fail;
	}
	if (state_exec(db, "COMMIT", msg, sizeof msg, rcp) == -1) {
		snprintf(err, len, "cannot write: %s", msg);
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
		goto fail;
	}
	return db;
fail:
	sqlite3_close(db);
	return NULL;
}

/* Remember which file we have, to see it replaced or removed later. */
static void
state_mark(struct state *st)
{
	struct stat sb;

	if (stat(st->path, &sb) == 0) {
		st->dev = sb.st_dev;
		st->ino = sb.st_ino;
	}
}

/* Read the grants and exposes in force back; end those whose time went. */
static int
state_load(struct relay *r, struct state *st, char *err, size_t len)
{
	sqlite3_stmt *q;
	struct grant *g;
	long long max;
	int rc, n = 0;
	char msg[300];

	if (state_int(st->db, "SELECT max(id) FROM access", &max, msg,
	    sizeof msg, &rc) == -1) {
		snprintf(err, len, "cannot read: %s", msg);
		return -1;
	}
	r->next_grant = (uint64_t)max + 1;
	if (sqlite3_prepare_v2(st->db, "SELECT id, kind, operator, "
	    "operator_fp, target, port, sources, listen, created, expires, "
	    "asked_by, opened FROM access WHERE ended IS NULL ORDER BY id",
	    -1, &q, NULL) != SQLITE_OK) {
		snprintf(err, len, "cannot read: %s",
		    sqlite3_errmsg(st->db));
		return -1;
	}
	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
#define COL(i)	((const char *)sqlite3_column_text(q, (i)))
		g = xcalloc(1, sizeof *g);
		g->relay = r;
		g->id = (uint64_t)sqlite3_column_int64(q, 0);
		g->kind = COL(1) && !strcmp(COL(1), "expose") ? GRANT_EXPOSE :
		    GRANT_ACCESS;
		g->operator = COL(2) ? xstrdup(COL(2)) : NULL;
		g->operator_fp = COL(3) ? xstrdup(COL(3)) : NULL;
		g->target = xstrdup(COL(4) ? COL(4) : "");
		g->port = sqlite3_column_int(q, 5);
		g->sources = COL(6) ? xstrdup(COL(6)) : NULL;
		g->listen = sqlite3_column_int(q, 7);
		g->created = (time_t)sqlite3_column_int64(q, 8);
		g->expires = (time_t)sqlite3_column_int64(q, 9);
		g->asked_by = xstrdup(COL(10) ? COL(10) : "-");
		g->opened = (uint64_t)sqlite3_column_int64(q, 11);
#undef COL
		n += grant_restore(r, g) == 0;
	}
	sqlite3_finalize(q);
	if (rc != SQLITE_DONE) {
		snprintf(err, len, "cannot read: %s",
		    sqlite3_errmsg(st->db));
		return -1;
	}
	return n;
}

/*
 * At start: open state_db, fatal (-1, err) if it cannot be kept; then the
 * grants and exposes still in force are back.
 */
int
state_open(struct relay *r, char *err, size_t len)
{
	struct state *st;
	char msg[400];
	int rc, created, n;

	st = xcalloc(1, sizeof *st);
	st->path = xstrdup(r->conf.state_db);
	if ((st->db = state_db_open(st->path, msg, sizeof msg, &rc,
	    &created)) == NULL) {
		snprintf(err, len, "state_db %s: %s%s%s", st->path, msg,
		    state_hint(rc) ? "; " : "", state_hint(rc) ?
		    state_hint(rc) : "");
		free(st->path);
		free(st);
		return -1;
	}
	state_mark(st);
	/* r->state is set after: what ends now is written after the read */
	if ((n = state_load(r, st, msg, sizeof msg)) == -1) {
		snprintf(err, len, "state_db %s: %s", st->path, msg);
		sqlite3_close(st->db);
		free(st->path);
		free(st);
		return -1;
	}
	r->state = st;
	/* old history goes; failing here costs nothing */
	{
		char sql[200];

		snprintf(sql, sizeof sql, "DELETE FROM access WHERE ended < "
		    "%lld; DELETE FROM usage WHERE day < date('now', '%s')",
		    (long long)(time(NULL) - STATE_KEEP_ENDED),
		    STATE_KEEP_USAGE);
		sqlite3_exec(st->db, sql, NULL, NULL, NULL);
	}
	if (created)
		log_info("state_db %s: created (no grants, exposes or usage "
		    "history before now)", st->path);
	else
		log_info("state_db %s: %d grant%s and exposes in force", st->path,
		    n, n == 1 ? "" : "s");
	state_save(r);		/* what ended while we were down */
	return 0;
}

/*
 * A write failed (what, SQLite's message): said once per episode; the
 * caller keeps what it had in memory for the next try.
 */
static void
state_failed(struct state *st, const char *what)
{
	if (st->failing)
		return;
	st->failing = 1;
	log_warnx("state_db %s: cannot write %s: %s; going on from memory "
	    "(grants and exposes stay in force, usage is kept) and trying "
	    "again every few seconds", st->path, what,
	    st->db ? sqlite3_errmsg(st->db) : "not open");
}

/*
 * The file we write is still the one at path? If it was removed or
 * replaced, start a new one there and write everything in memory again.
 * -1 if no database is usable now.
 */
static int
state_check_file(struct relay *r)
{
	struct state *st = r->state;
	struct grant *g;
	struct stat sb;
	char msg[400];
	int rc, created;

	if (st->db != NULL && stat(st->path, &sb) == 0 &&
	    sb.st_dev == st->dev && sb.st_ino == st->ino)
		return 0;
	if (st->db != NULL) {
		log_warnx("state_db %s was removed or replaced while the relay "
		    "ran: writing a new one from memory (grants and exposes "
		    "in force; usage history before now is lost)", st->path);
		sqlite3_close(st->db);	/* checkpoints into the old file */
		st->db = NULL;
	}
	if ((st->db = state_db_open(st->path, msg, sizeof msg, &rc,
	    &created)) == NULL) {
		if (!st->failing)
			log_warnx("state_db %s: %s", st->path, msg);
		st->failing = 1;
		return -1;
	}
	state_mark(st);
	TAILQ_FOREACH(g, &r->grants, entry)
		g->dirty = 1;
	return 0;
}

/* Begin a write; -1 (said once) if the database cannot take it now. */
static int
state_begin(struct relay *r, const char *what)
{
	struct state *st = r->state;

	if (st == NULL)
		return -1;
	if (state_check_file(r) == -1)
		return -1;
	if (sqlite3_exec(st->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) !=
	    SQLITE_OK) {
		state_failed(st, what);
		return -1;
	}
	st->in_tx = 1;
	return 0;
}

/* Commit (or, after a failed step, roll back); -1 if it did not land. */
static int
state_end(struct relay *r, const char *what, int ok)
{
	struct state *st = r->state;

	st->in_tx = 0;
	if (ok && sqlite3_exec(st->db, "COMMIT", NULL, NULL, NULL) ==
	    SQLITE_OK) {
		if (st->failing)
			log_info("state_db %s: writing again", st->path);
		st->failing = 0;
		return 0;
	}
	state_failed(st, what);
	sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
	return -1;
}

/* One grant's row, whole. */
static int
state_put_grant(sqlite3 *db, const struct grant *g)
{
	sqlite3_stmt *q;
	int rc;

	if (sqlite3_prepare_v2(db, "INSERT OR REPLACE INTO access (id, kind, "
	    "operator, operator_fp, target, port, sources, listen, created, "
	    "expires, asked_by, ended, end_reason, opened) VALUES (?, ?, ?, "
	    "?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", -1, &q, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_int64(q, 1, (sqlite3_int64)g->id);
	sqlite3_bind_text(q, 2, g->kind == GRANT_EXPOSE ? "expose" : "grant",
	    -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 3, g->operator, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 4, g->operator_fp, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 5, g->target, -1, SQLITE_STATIC);
	sqlite3_bind_int(q, 6, g->port);
	sqlite3_bind_text(q, 7, g->sources, -1, SQLITE_STATIC);
	sqlite3_bind_int(q, 8, g->listen);
	sqlite3_bind_int64(q, 9, (sqlite3_int64)g->created);
	sqlite3_bind_int64(q, 10, (sqlite3_int64)g->expires);
	sqlite3_bind_text(q, 11, g->asked_by, -1, SQLITE_STATIC);
	if (g->ended != 0) {
		sqlite3_bind_int64(q, 12, (sqlite3_int64)g->ended);
		sqlite3_bind_text(q, 13, g->end_reason, -1, SQLITE_STATIC);
	}
	sqlite3_bind_int64(q, 14, (sqlite3_int64)g->opened);
	rc = sqlite3_step(q);
	sqlite3_finalize(q);
	return rc == SQLITE_DONE ? 0 : -1;
}

/*
 * Write every grant changed since the last write; ended ones are then
 * forgotten in memory. A failure keeps them all for the next try.
 */
void
state_save(struct relay *r)
{
	struct grant *g, *tmp;
	int ok = 1, n = 0;

	TAILQ_FOREACH(g, &r->grants, entry)
		n += g->dirty;
	if (n == 0)		/* an empty commit proves nothing */
		return;
	if (state_begin(r, "grants") == -1)
		return;
	TAILQ_FOREACH(g, &r->grants, entry)
		if (g->dirty && state_put_grant(r->state->db, g) == -1) {
			ok = 0;
			break;
		}
	if (state_end(r, "grants", ok) == -1)
		return;
	TAILQ_FOREACH_SAFE(g, &r->grants, entry, tmp) {
		g->dirty = 0;
		if (g->ended != 0)
			grant_forget(g);
	}
}

/* Add one device's usage for day (YYYY-MM-DD) to its row. */
int
state_usage_add(struct relay *r, const char *day, const char *device,
    const struct usage_counts *u)
{
	sqlite3_stmt *q;
	int rc;

	if (r->state == NULL || !r->state->in_tx)
		return -1;
	if (sqlite3_prepare_v2(r->state->db, "INSERT INTO usage VALUES "
	    "(?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (day, device) DO UPDATE SET "
	    "payload_to = payload_to + excluded.payload_to, "
	    "payload_from = payload_from + excluded.payload_from, "
	    "overhead_to = overhead_to + excluded.overhead_to, "
	    "overhead_from = overhead_from + excluded.overhead_from, "
	    "keepalive_to = keepalive_to + excluded.keepalive_to, "
	    "keepalive_from = keepalive_from + excluded.keepalive_from",
	    -1, &q, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_text(q, 1, day, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 2, device, -1, SQLITE_STATIC);
	sqlite3_bind_int64(q, 3, (sqlite3_int64)u->payload_to);
	sqlite3_bind_int64(q, 4, (sqlite3_int64)u->payload_from);
	sqlite3_bind_int64(q, 5, (sqlite3_int64)u->overhead_to);
	sqlite3_bind_int64(q, 6, (sqlite3_int64)u->overhead_from);
	sqlite3_bind_int64(q, 7, (sqlite3_int64)u->keepalive_to);
	sqlite3_bind_int64(q, 8, (sqlite3_int64)u->keepalive_from);
	rc = sqlite3_step(q);
	sqlite3_finalize(q);
	return rc == SQLITE_DONE ? 0 : -1;
}

/* usage.c's flush: one transaction around its rows. */
int
state_usage_begin(struct relay *r)
{
	return state_begin(r, "usage");
}

int
state_usage_end(struct relay *r, int ok)
{
	return state_end(r, "usage", ok);
}

/*
 * The stored days from since (YYYY-MM-DD) on, of one device or all
 * (device NULL), by device then day. -1 if the database cannot be read.
 */
int
state_usage_days(struct relay *r, const char *device, const char *since,
    state_usage_cb cb, void *arg)
{
	struct usage_counts u;
	sqlite3_stmt *q;
	int rc;

	if (r->state == NULL || r->state->db == NULL)
		return -1;
	if (sqlite3_prepare_v2(r->state->db, "SELECT day, device, payload_to, "
	    "payload_from, overhead_to, overhead_from, keepalive_to, "
	    "keepalive_from FROM usage WHERE day >= ?1 AND (?2 IS NULL OR "
	    "device = ?2) ORDER BY device, day", -1, &q, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_text(q, 1, since, -1, SQLITE_STATIC);
	if (device != NULL)
		sqlite3_bind_text(q, 2, device, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		u.payload_to = (uint64_t)sqlite3_column_int64(q, 2);
		u.payload_from = (uint64_t)sqlite3_column_int64(q, 3);
		u.overhead_to = (uint64_t)sqlite3_column_int64(q, 4);
		u.overhead_from = (uint64_t)sqlite3_column_int64(q, 5);
		u.keepalive_to = (uint64_t)sqlite3_column_int64(q, 6);
		u.keepalive_from = (uint64_t)sqlite3_column_int64(q, 7);
		cb((const char *)sqlite3_column_text(q, 0),
		    (const char *)sqlite3_column_text(q, 1), &u, arg);
	}
	sqlite3_finalize(q);
	return rc == SQLITE_DONE ? 0 : -1;
}

/* Every tick: retry what failed, write what changed. */
void
state_tick(struct relay *r)
{
	if (r->state == NULL)
		return;
	if (r->state->failing)
		usage_flush(r);		/* the usage that did not land */
	state_save(r);
}

/* At exit: the last write, then the file is closed (and checkpointed). */
void
state_close(struct relay *r)
{
	struct state *st = r->state;

	if (st == NULL)
		return;
	state_save(r);
	sqlite3_close(st->db);
	free(st->path);
	free(st);
	r->state = NULL;
}
