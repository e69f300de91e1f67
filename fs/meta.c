/* fs/meta.c — the SQLite half of the store: superblock, inodes, dentries,
 * xattrs.  One connection, serialised by fs->db_lock; statements are
 * prepared once and cached by the address of their SQL text. */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "fs_i.h"

static GHashTable *meta_stmts;	/* db_lock: const char *sql -> sqlite3_stmt */
static int64_t meta_synced_changes = -1;	/* db_lock: total changes at the last sync */

static const char meta_schema[] =
	"CREATE TABLE super(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
	"CREATE TABLE xattrs(ino INTEGER NOT NULL, name BLOB NOT NULL,"
	" value BLOB NOT NULL, PRIMARY KEY(ino, name)) WITHOUT ROWID;";

/* Format 2.  Inode numbers come from fs_meta_new_id, not AUTOINCREMENT
 * (whose sqlite_sequence row was one more page in every create's commit).
 * A dentry is keyed by (parent, name), the lookup; the index orders a
 * directory by id, the stable readdir offset, and covers readdir.
 * Format 1 had a rowid table with two more indexes: five B-tree pages
 * written per create against three. */
static const char meta_schema_v2[] =
	"CREATE TABLE inodes(ino INTEGER PRIMARY KEY,"
	" gen INTEGER NOT NULL, mode INTEGER NOT NULL, uid INTEGER NOT NULL,"
	" gid INTEGER NOT NULL, nlink INTEGER NOT NULL, rdev INTEGER NOT NULL,"
	" size INTEGER NOT NULL, atime INTEGER NOT NULL, mtime INTEGER NOT NULL,"
	" ctime INTEGER NOT NULL, btime INTEGER NOT NULL, parent INTEGER NOT NULL,"
	" rsv_pages INTEGER NOT NULL DEFAULT 0, link BLOB, flags INTEGER NOT NULL DEFAULT 0);"
	"CREATE TABLE dentries(parent INTEGER NOT NULL, name BLOB NOT NULL,"
	" id INTEGER NOT NULL, ino INTEGER NOT NULL, PRIMARY KEY(parent, name)) WITHOUT ROWID;"
	"CREATE INDEX dentries_order ON dentries(parent, id, ino);";

/* Inode numbers and dentry ids come from one counter that never goes
 * back, not even across a crash: the super record "next_ino" is at or
 * above every number handed out, moved up META_ID_CHUNK at a time inside
 * the transaction that needs it (and taken back in memory if that
 * transaction rolls back). */
#define META_ID_CHUNK 1024
static uint64_t meta_next_id;		/* db_lock: the next number to hand out; 0 unknown */
static uint64_t meta_id_limit;		/* db_lock: "next_ino" in the open transaction */
static uint64_t meta_id_committed;	/* db_lock: "next_ino" as committed */

static void meta_finalize(gpointer st)
{
	sqlite3_finalize(st);
}

static int meta_errno(int rc)
{
	switch (rc & 0xff) {
	case SQLITE_OK:
	case SQLITE_DONE:
	case SQLITE_ROW:
		return 0;
	case SQLITE_CONSTRAINT:
		return -EEXIST;
	case SQLITE_FULL:
		return -ENOSPC;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return -EBUSY;
	case SQLITE_READONLY:
		return -EROFS;
	case SQLITE_NOMEM:
		return -ENOMEM;
	default:
		return -EIO;
	}
}

static int meta_fail(struct fs *fs, int rc, const char *what)
{
	if ((rc & 0xff) != SQLITE_CONSTRAINT)
		g_warning("sqlite: %s: %s", what, sqlite3_errmsg(fs->db));
	return meta_errno(rc);
}

static sqlite3_stmt *meta_stmt(struct fs *fs, const char *sql)
{
	sqlite3_stmt *st = g_hash_table_lookup(meta_stmts, sql);

	if (!st) {
		int rc = sqlite3_prepare_v3(fs->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL);
		if (rc != SQLITE_OK) {
			g_warning("sqlite: prepare %s: %s", sql, sqlite3_errmsg(fs->db));
			return NULL;
		}
		g_hash_table_insert(meta_stmts, (gpointer)sql, st);
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return st;
}

/* Runs a statement to completion; 0 or -errno. */
static int meta_step_done(struct fs *fs, sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);

	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return meta_fail(fs, rc, sqlite3_sql(st));
	return 0;
}

static void meta_bind_name(sqlite3_stmt *st, int i, const char *name)
{
	sqlite3_bind_blob(st, i, name, strlen(name), SQLITE_STATIC);
}

int fs_meta_exec(struct fs *fs, const char *sql)
{
	char *err = NULL;
	int rc = sqlite3_exec(fs->db, sql, NULL, NULL, &err);

	if (rc != SQLITE_OK) {
		g_warning("sqlite: %s: %s", sql, err ? err : sqlite3_errstr(rc));
		sqlite3_free(err);
		return meta_errno(rc);
	}
	return 0;
}

/* Quiet: a store that fails here is reported once, by the caller, with
 * fs_meta_errmsg(). */
static int meta_exec_quiet(struct fs *fs, const char *sql)
{
	int rc = sqlite3_exec(fs->db, sql, NULL, NULL, NULL);

	return rc == SQLITE_OK ? 0 : meta_errno(rc);
}

const char *fs_meta_errmsg(struct fs *fs)
{
	return fs->db ? sqlite3_errmsg(fs->db) : "cannot open";
}

/* Format 1 stores have no "next_ino" yet: fs_meta_upgrade makes it.  A
 * malformed one stays unknown (0: creates fail); fs_store_open refuses it. */
static void meta_load_next_id(struct fs *fs)
{
	uint64_t id;
	char *v = NULL;

	if (fs_meta_get_super(fs, "next_ino", &v) == 0 &&
	    fs_parse_super_u64(v, FS_ROOT_INO + 1, INT64_MAX, &id) == 0)
		meta_next_id = meta_id_limit = meta_id_committed = id;
	g_free(v);
}

/* A store on read-only media (a read-only mount, a CD image), or one we
 * may not write: SQLite cannot make the WAL index beside meta.db, so it
 * opens nothing there (or makes one as read-only as meta.db).  With no WAL
 * left (a clean unmount checkpoints and removes it) nothing can change the
 * file under us (a writer needs the lock we share), and SQLite may read it
 * as immutable.  NULL otherwise. */
static char *meta_readonly_uri(const struct fs *fs, const char *path)
{
	char *wal = g_strconcat(path, "-wal", NULL);
	const char *what;
	struct stat st;
	bool pending = stat(wal, &st) == 0 && st.st_size > 0;
	GString *uri;

	g_free(wal);
	if (!fs->ro || pending || fs_store_writable(fs->store, &what) == 0)
		return NULL;
	uri = g_string_new("file:");
	for (const char *p = path; *p; p++)
		if (g_ascii_isalnum(*p) || strchr("/-_.~", *p))
			g_string_append_c(uri, *p);
		else
			g_string_append_printf(uri, "%%%02X", (unsigned char)*p);
	g_string_append(uri, "?immutable=1");
	return g_string_free(uri, FALSE);
}

int fs_meta_open(struct fs *fs, bool create)
{
	char *path = g_build_filename(fs->store, "meta.db", NULL);
	char *uri = create ? NULL : meta_readonly_uri(fs, path);
	int flags = fs->ro ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE;
	int rc;

	if (create)
		flags |= SQLITE_OPEN_CREATE;
	if (uri)
		flags |= SQLITE_OPEN_URI;
	rc = sqlite3_open_v2(uri ? uri : path, &fs->db, flags | SQLITE_OPEN_NOMUTEX,
			     fs_meta_vfs(fs));
	g_free(uri);
	g_free(path);
	if (rc != SQLITE_OK)
		return meta_errno(rc) ? meta_errno(rc) : -EIO;
	meta_stmts = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL, meta_finalize);
	sqlite3_busy_timeout(fs->db, 5000);
	if (!fs->ro && (rc = meta_exec_quiet(fs, "PRAGMA journal_mode=WAL")) < 0)
		return rc;
	/* we are the store's only user (its lock file says so): no file
	 * locking round trips per transaction */
	if (!fs->ro && !create && (rc = meta_exec_quiet(fs, "PRAGMA locking_mode=EXCLUSIVE")) < 0)
		return rc;
	if ((rc = meta_exec_quiet(fs, "PRAGMA synchronous=NORMAL")) < 0 ||
	    (rc = meta_exec_quiet(fs, "PRAGMA cache_size=-16384")) < 0)
		return rc;
	meta_next_id = meta_id_limit = meta_id_committed = 0;
	if (create) {
		if ((rc = fs_meta_exec(fs, meta_schema)) < 0 ||
		    (rc = fs_meta_exec(fs, meta_schema_v2)) < 0)
			return rc;
		meta_next_id = meta_id_limit = meta_id_committed = FS_ROOT_INO;
		return 0;
	}
	/* stores made before chattr flags existed */
	if (!fs->ro && sqlite3_exec(fs->db, "SELECT flags FROM inodes LIMIT 0", NULL, NULL, NULL) != SQLITE_OK)
		meta_exec_quiet(fs, "ALTER TABLE inodes ADD COLUMN flags INTEGER NOT NULL DEFAULT 0");
	meta_load_next_id(fs);
	return 0;
}

int fs_meta_new_id(struct fs *fs, uint64_t *id)
{
	if (meta_next_id == 0)
		return -EIO;
	if (meta_next_id >= meta_id_limit) {
		char v[24];
		int res;

		snprintf(v, sizeof(v), "%" PRIu64, meta_next_id + META_ID_CHUNK);
		if ((res = fs_meta_set_super(fs, "next_ino", v)) < 0)
			return res;
		meta_id_limit = meta_next_id + META_ID_CHUNK;
	}
	*id = meta_next_id++;
	return 0;
}

int fs_meta_save_next_id(struct fs *fs)
{
	char v[24];
	int res;

	if (meta_next_id == 0)
		return 0;
	snprintf(v, sizeof(v), "%" PRIu64, meta_next_id);
	res = fs_meta_set_super(fs, "next_ino", v);
	if (res == 0)
		meta_id_limit = meta_id_committed = meta_next_id;
	return res;
}

/* Format 1 -> 2 in one transaction (see meta_schema_v2): the tables are
 * copied, ids and inode numbers kept; the counter starts above every
 * number format 1 used, its sqlite_sequence included. */
int fs_meta_upgrade(struct fs *fs)
{
	static const char *const highest[] = {
		"SELECT coalesce(max(ino), 0) FROM inodes",
		"SELECT coalesce(max(id), 0) FROM dentries",
	};
	static const char sequence[] =
		"SELECT coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'inodes'), 0)";
	uint64_t next = 0, v;
	char buf[24];
	int res;

	if ((res = fs_meta_exec(fs, "BEGIN")) < 0)
		return res;
	for (size_t i = 0; res == 0 && i < G_N_ELEMENTS(highest); i++)
		if ((res = fs_meta_count(fs, highest[i], &v)) == 0)
			next = MAX(next, v + 1);
	if (res == 0)
		res = fs_meta_count(fs, "SELECT count(*) FROM sqlite_master"
				    " WHERE name = 'sqlite_sequence'", &v);
	if (res == 0 && v > 0 && (res = fs_meta_count(fs, sequence, &v)) == 0)
		next = MAX(next, v + 1);
	snprintf(buf, sizeof(buf), "%" PRIu64, next);
	if (res == 0)
		res = fs_meta_exec(fs, "ALTER TABLE inodes RENAME TO inodes_v1;"
				       "ALTER TABLE dentries RENAME TO dentries_v1;");
	if (res == 0)
		res = fs_meta_exec(fs, meta_schema_v2);
	if (res == 0)
		res = fs_meta_exec(fs,
			"INSERT INTO inodes SELECT ino, gen, mode, uid, gid, nlink, rdev, size,"
			" atime, mtime, ctime, btime, parent, rsv_pages, link, flags FROM inodes_v1;"
			"INSERT INTO dentries(parent, name, id, ino)"
			" SELECT parent, name, id, ino FROM dentries_v1;"
			"DROP TABLE inodes_v1; DROP TABLE dentries_v1;");
	if (res == 0 && (res = fs_meta_set_super(fs, "next_ino", buf)) == 0)
		res = fs_meta_set_super(fs, "format", "2");
	res = fs_meta_finish(fs, res);
	if (res == 0)
		meta_next_id = meta_id_limit = meta_id_committed = next;
	return res;
}

void fs_meta_close(struct fs *fs)
{
	meta_synced_changes = -1;
	if (meta_stmts) {
		g_hash_table_destroy(meta_stmts);
		meta_stmts = NULL;
	}
	if (fs->db) {
		sqlite3_close(fs->db);
		fs->db = NULL;
	}
	fs_meta_vfs_close(fs);
}

int fs_meta_begin(struct fs *fs)
{
	int res;

	g_mutex_lock(&fs->db_lock);
	res = fs_meta_exec(fs, "BEGIN");
	if (res < 0)
		g_mutex_unlock(&fs->db_lock);
	return res;
}

int fs_meta_finish(struct fs *fs, int res)
{
	if (res == 0)
		res = fs_meta_exec(fs, "COMMIT");
	if (res != 0 && !sqlite3_get_autocommit(fs->db))
		fs_meta_exec(fs, "ROLLBACK");
	if (res == 0)
		meta_id_committed = meta_id_limit;
	else
		meta_id_limit = meta_id_committed;
	return res;
}

int fs_meta_commit(struct fs *fs, int res)
{
	res = fs_meta_finish(fs, res);
	g_mutex_unlock(&fs->db_lock);
	return res;
}

/* A commit with synchronous=FULL syncs the WAL, and with it every commit
 * before it: that is what fsync needs from the metadata side.  @in (or
 * NULL; its lock held) is an inode whose row that commit stores, so that an
 * fsync after a write costs one WAL write and one sync.  Without it nothing
 * is done when nothing changed since the last such commit (fdatasync of a
 * file whose size lives in its backing file); else a counter is bumped, for
 * something to commit. */
int fs_meta_sync(struct fs *fs, struct fs_inode *in)
{
	int res;

	if (fs->ro)
		return 0;
	g_mutex_lock(&fs->db_lock);
	if (!in && sqlite3_total_changes64(fs->db) == meta_synced_changes) {
		g_mutex_unlock(&fs->db_lock);
		return 0;
	}
	res = fs_meta_exec(fs, "PRAGMA synchronous=FULL");
	if (res == 0)
		res = in ? fs_meta_store_inode(fs, in) :
		      fs_meta_exec(fs, "UPDATE super SET value = value + 1 WHERE key = 'syncs'");
	fs_meta_exec(fs, "PRAGMA synchronous=NORMAL");
	if (res == 0)
		meta_synced_changes = sqlite3_total_changes64(fs->db);
	g_mutex_unlock(&fs->db_lock);
	return res;
}

int fs_meta_get_super(struct fs *fs, const char *key, char **val)
{
	sqlite3_stmt *st = meta_stmt(fs, "SELECT value FROM super WHERE key = ?");
	int rc;

	if (!st)
		return -EIO;
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*val = g_strdup((const char *)sqlite3_column_text(st, 0));
		sqlite3_reset(st);
		return 0;
	}
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? -ENOENT : meta_fail(fs, rc, "super");
}

int fs_meta_set_super(struct fs *fs, const char *key, const char *val)
{
	sqlite3_stmt *st = meta_stmt(fs, "INSERT OR REPLACE INTO super(key, value) VALUES(?, ?)");

	if (!st)
		return -EIO;
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, val, -1, SQLITE_STATIC);
	return meta_step_done(fs, st);
}

#define META_INODE_COLS \
	"i.ino, i.gen, i.mode, i.uid, i.gid, i.nlink, i.rdev, i.size, i.atime, i.mtime," \
	" i.ctime, i.btime, i.parent, i.rsv_pages," \
	" " FS_XATTR_BYTES_SQL("i.ino") ", i.flags"

/* One row of META_INODE_COLS into @in.  has_xattrs lets getxattr answer
 * without SQLite for the (many) inodes that have none: the kernel asks for
 * security.capability often.  An inode without xattrs costs the same one
 * probe of the xattrs table as before they were charged. */
static void meta_fill_inode(sqlite3_stmt *st, struct fs_inode *in)
{
	in->ino = sqlite3_column_int64(st, 0);
	in->gen = sqlite3_column_int64(st, 1);
	in->mode = sqlite3_column_int64(st, 2);
	in->uid = sqlite3_column_int64(st, 3);
	in->gid = sqlite3_column_int64(st, 4);
	in->nlink = sqlite3_column_int64(st, 5);
	in->rdev = sqlite3_column_int64(st, 6);
	in->size = sqlite3_column_int64(st, 7);
	in->atime = sqlite3_column_int64(st, 8);
	in->mtime = sqlite3_column_int64(st, 9);
	in->ctime = sqlite3_column_int64(st, 10);
	in->btime = sqlite3_column_int64(st, 11);
	in->parent = sqlite3_column_int64(st, 12);
	in->rsv_pages_db = sqlite3_column_int64(st, 13);
	in->xattr_bytes = sqlite3_column_int64(st, 14);
	in->has_xattrs = in->xattr_bytes != 0;
	in->flags = sqlite3_column_int64(st, 15);
}

/* Steps a query for one row of META_INODE_COLS into @in: 0, -ENOENT when
 * there is none, or the failure. */
static int meta_step_inode(struct fs *fs, sqlite3_stmt *st, struct fs_inode *in, const char *what)
{
	int rc = sqlite3_step(st);

	if (rc == SQLITE_ROW)
		meta_fill_inode(st, in);
	sqlite3_reset(st);
	if (rc == SQLITE_ROW)
		return 0;
	return rc == SQLITE_DONE ? -ENOENT : meta_fail(fs, rc, what);
}

int fs_meta_load_inode(struct fs *fs, fuse_ino_t ino, struct fs_inode *in)
{
	sqlite3_stmt *st = meta_stmt(fs, "SELECT " META_INODE_COLS " FROM inodes i WHERE i.ino = ?");

	if (!st)
		return -EIO;
	sqlite3_bind_int64(st, 1, ino);
	return meta_step_inode(fs, st, in, "load inode");
}

int fs_meta_lookup_load(struct fs *fs, fuse_ino_t parent, const char *name, struct fs_inode *in)
{
	sqlite3_stmt *st = meta_stmt(fs, "SELECT " META_INODE_COLS " FROM dentries d"
				     " JOIN inodes i ON i.ino = d.ino WHERE d.parent = ? AND d.name = ?");

	if (!st)
		return -EIO;
	sqlite3_bind_int64(st, 1, parent);
	meta_bind_name(st, 2, name);
	return meta_step_inode(fs, st, in, "lookup");
}

int fs_meta_insert_inode(struct fs *fs, struct fs_inode *in, const char *link)
{
	sqlite3_stmt *st = meta_stmt(fs,
		"INSERT INTO inodes(gen, mode, uid, gid, nlink, rdev, size, atime, mtime,"
		" ctime, btime, parent, rsv_pages, link, ino, flags)"
		" VALUES(?,?,?,?,?,?,?,?,?,?,?,?,0,?,?,?)");
	int res;

	if (!st)
		return -EIO;
	if (in->ino == 0 && (res = fs_meta_new_id(fs, &in->ino)) < 0)
		return res;
	sqlite3_bind_int64(st, 14, in->ino);
	sqlite3_bind_int64(st, 15, in->flags);
	sqlite3_bind_int64(st, 1, in->gen);
	sqlite3_bind_int64(st, 2, in->mode);
	sqlite3_bind_int64(st, 3, in->uid);
	sqlite3_bind_int64(st, 4, in->gid);
	sqlite3_bind_int64(st, 5, in->nlink);
	sqlite3_bind_int64(st, 6, in->rdev);
	sqlite3_bind_int64(st, 7, in->size);
	sqlite3_bind_int64(st, 8, in->atime);
	sqlite3_bind_int64(st, 9, in->mtime);
	sqlite3_bind_int64(st, 10, in->ctime);
	sqlite3_bind_int64(st, 11, in->btime);
	sqlite3_bind_int64(st, 12, in->parent);
	if (link)
		sqlite3_bind_blob(st, 13, link, strlen(link), SQLITE_STATIC);
	return meta_step_done(fs, st);
}

int fs_meta_store_inode(struct fs *fs, struct fs_inode *in)
{
	sqlite3_stmt *st = meta_stmt(fs,
		"UPDATE inodes SET mode=?, uid=?, gid=?, nlink=?, rdev=?, size=?, atime=?,"
		" mtime=?, ctime=?, btime=?, parent=?, rsv_pages=?, flags=? WHERE ino=?");
	uint64_t rsv = in->rsv_loaded ? rsv_map_pages(&in->rsv) : in->rsv_pages_db;
	int res;

	if (!st)
		return -EIO;
	sqlite3_bind_int64(st, 1, in->mode);
	sqlite3_bind_int64(st, 2, in->uid);
	sqlite3_bind_int64(st, 3, in->gid);
	sqlite3_bind_int64(st, 4, in->nlink);
	sqlite3_bind_int64(st, 5, in->rdev);
	sqlite3_bind_int64(st, 6, in->size);
	sqlite3_bind_int64(st, 7, in->atime);
	sqlite3_bind_int64(st, 8, in->mtime);
	sqlite3_bind_int64(st, 9, in->ctime);
	sqlite3_bind_int64(st, 10, in->btime);
	sqlite3_bind_int64(st, 11, in->parent);
	sqlite3_bind_int64(st, 12, rsv);
	sqlite3_bind_int64(st, 13, in->flags);
	sqlite3_bind_int64(st, 14, in->ino);
	res = meta_step_done(fs, st);
	if (res == 0) {
		in->attr_dirty = false;
		in->rsv_pages_db = rsv;
	}
	return res;
}

int fs_meta_delete_inode(struct fs *fs, fuse_ino_t ino)
{
	sqlite3_stmt *st = meta_stmt(fs, "DELETE FROM inodes WHERE ino = ?");
	int res;

	if (!st)
		return -EIO;
	sqlite3_bind_int64(st, 1, ino);
	res = meta_step_done(fs, st);
	if (res)
		return res;
	st = meta_stmt(fs, "DELETE FROM xattrs WHERE ino = ?");
	if (!st)
		return -EIO;
	sqlite3_bind_int64(st, 1, ino);
	return meta_step_done(fs, st);
}

int fs_meta_read_link(struct fs *fs, fuse_ino_t ino, char **target)
{
	sqlite3_stmt *st = meta_stmt(fs, "SELECT link FROM inodes WHERE ino = ?");
	int rc;

	if (!st)
		return -EIO;
	sqlite3_bind_int64(st, 1, ino);
	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW || sqlite3_column_type(st, 0) == SQLITE_NULL) {
		sqlite3_reset(st);
		return rc == SQLITE_ROW || rc == SQLITE_DONE ? -EINVAL : meta_fail(fs, rc, "readlink");
	}
	*target = g_strndup(sqlite3_column_blob(st, 0), sqlite3_column_bytes(st, 0));
	sqlite3_reset(st);
	return 0;
}

/* The one integer @sql (bound to @id and @name) selects into *@out: 0, or
 * @missing when there is no such row */
static int meta_int_by_name(struct fs *fs, const char *sql, uint64_t id, const char *name,
			    int missing, const char *what, uint64_t *out)
{
	sqlite3_stmt *st = meta_stmt(fs, sql);
	int rc;

	if (!st)
		return -EIO;
	sqlite3_bind_int64(st, 1, id);
	meta_bind_name(st, 2, name);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*out = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	if (rc == SQLITE_ROW)
		return 0;
	return rc == SQLITE_DONE ? missing : meta_fail(fs, rc, what);
}

int fs_meta_lookup(struct fs *fs, fuse_ino_t parent, const char *name, fuse_ino_t *ino)
{
	uint64_t v;
	int res = meta_int_by_name(fs, "SELECT ino FROM dentries WHERE parent = ? AND name = ?",
				   parent, name, -ENOENT, "lookup", &v);

	if (res == 0)
		*ino = v;
	return res;
}

int fs_meta_link(struct fs *fs, fuse_ino_t parent, const char *name, fuse_ino_t ino, bool new_ino)
{
	sqlite3_stmt *st = meta_stmt(fs, "INSERT INTO dentries(parent, name, id, ino) VALUES(?,?,?,?)");
	uint64_t id = ino;
	int res;

	if (!st)
		return -EIO;
	/* an inode's first link takes its number as id: it was never
	 * handed out before, so no dentry has it */
	if (!new_ino && (res = fs_meta_new_id(fs, &id)) < 0)
		return res;
	sqlite3_bind_int64(st, 1, parent);
	meta_bind_name(st, 2, name);
	sqlite3_bind_int64(st, 3, id);
	sqlite3_bind_int64(st, 4, ino);
	return meta_step_done(fs, st);
}

/* DELETE keyed by (number, name): @missing when there was no such row. */
static int meta_delete_named(struct fs *fs, const char *sql, int64_t key, const char *name,
			     int missing)
{
	sqlite3_stmt *st = meta_stmt(fs, sql);
	int res;

	if (!st)
		return -EIO;
	sqlite3_bind_int64(st, 1, key);
	meta_bind_name(st, 2, name);
	res = meta_step_done(fs, st);
	if (res == 0 && sqlite3_changes(fs->db) == 0)
		res = missing;
	return res;
}

int fs_meta_unlink(struct fs *fs, fuse_ino_t parent, const char *name)
{
	return meta_delete_named(fs, "DELETE FROM dentries WHERE parent = ? AND name = ?",
				 parent, name, -ENOENT);
}

int fs_meta_relink(struct fs *fs, fuse_ino_t parent, const char *name, fuse_ino_t ino)
{
	sqlite3_stmt *st = meta_stmt(fs, "UPDATE dentries SET ino = ? WHERE parent = ? AND name = ?");

	if (!st)
		return -EIO;
	sqlite3_bind_int64(st, 1, ino);
	sqlite3_bind_int64(st, 2, parent);
	meta_bind_name(st, 3, name);
	return meta_step_done(fs, st);
}

int fs_meta_move(struct fs *fs, fuse_ino_t parent, const char *name,
		 fuse_ino_t newparent, const char *newname)
{
	sqlite3_stmt *st = meta_stmt(fs,
		"UPDATE dentries SET parent = ?, name = ?, id = coalesce(?, id)"
		" WHERE parent = ? AND name = ?");
	uint64_t id;
	int res;

	if (!st)
		return -EIO;
	sqlite3_bind_int64(st, 1, newparent);
	meta_bind_name(st, 2, newname);
	/* the same directory keeps its offset; another one needs an id that
	 * is unique there */
	if (newparent != parent) {
		if ((res = fs_meta_new_id(fs, &id)) < 0)
			return res;
		sqlite3_bind_int64(st, 3, id);
	}
	sqlite3_bind_int64(st, 4, parent);
	meta_bind_name(st, 5, name);
	return meta_step_done(fs, st);
}

int fs_meta_dir_empty(struct fs *fs, fuse_ino_t ino)
{
	sqlite3_stmt *st = meta_stmt(fs, "SELECT 1 FROM dentries WHERE parent = ? LIMIT 1");
	int rc;

	if (!st)
		return -EIO;
	sqlite3_bind_int64(st, 1, ino);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc == SQLITE_ROW)
		return 0;
	return rc == SQLITE_DONE ? 1 : meta_fail(fs, rc, "dir empty");
}

int fs_meta_readdir(struct fs *fs, fuse_ino_t dir, int64_t off, struct fs_dirent *ents, int max)
{
	sqlite3_stmt *st = meta_stmt(fs,
		"SELECT d.id, d.name, d.ino, i.mode FROM dentries d JOIN inodes i ON i.ino = d.ino"
		" WHERE d.parent = ? AND d.id > ? ORDER BY d.id LIMIT ?");
	int n = 0, rc;

	if (!st)
		return -EIO;
	sqlite3_bind_int64(st, 1, dir);
	sqlite3_bind_int64(st, 2, off);
	sqlite3_bind_int(st, 3, max);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		int len = sqlite3_column_bytes(st, 1);
		ents[n].off = sqlite3_column_int64(st, 0);
		memcpy(ents[n].name, sqlite3_column_blob(st, 1), MIN(len, FS_NAME_MAX));
		ents[n].name[MIN(len, FS_NAME_MAX)] = '\0';
		ents[n].ino = sqlite3_column_int64(st, 2);
		ents[n].mode = sqlite3_column_int64(st, 3);
		n++;
	}
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? n : meta_fail(fs, rc, "readdir");
}

int fs_meta_getxattr(struct fs *fs, fuse_ino_t ino, const char *name, void **val, size_t *len)
{
	sqlite3_stmt *st = meta_stmt(fs, "SELECT value FROM xattrs WHERE ino = ? AND name = ?");
	int rc;

	if (!st)
		return -EIO;
	sqlite3_bind_int64(st, 1, ino);
	meta_bind_name(st, 2, name);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*len = sqlite3_column_bytes(st, 0);
		*val = g_memdup2(sqlite3_column_blob(st, 0), *len);
	}
	sqlite3_reset(st);
	if (rc == SQLITE_ROW)
		return 0;
	return rc == SQLITE_DONE ? -ENODATA : meta_fail(fs, rc, "getxattr");
}

/* The bytes the xattr @name of @ino costs: 0, -ENODATA when there is none */
static int meta_xattr_len(struct fs *fs, fuse_ino_t ino, const char *name, uint64_t *bytes)
{
	return meta_int_by_name(fs, "SELECT " FS_XATTR_COST_SQL " FROM xattrs"
				" WHERE ino = ? AND name = ?",
				ino, name, -ENODATA, "xattr length", bytes);
}

int fs_meta_setxattr(struct fs *fs, fuse_ino_t ino, const char *name, const void *val,
		     size_t len, int flags, int64_t *delta)
{
	sqlite3_stmt *st;
	uint64_t old = 0;
	int exists = meta_xattr_len(fs, ino, name, &old), res;

	if (exists < 0 && exists != -ENODATA)
		return exists;
	if ((flags & XATTR_CREATE) && exists == 0)
		return -EEXIST;
	if ((flags & XATTR_REPLACE) && exists == -ENODATA)
		return -ENODATA;
	st = meta_stmt(fs, "INSERT OR REPLACE INTO xattrs(ino, name, value) VALUES(?,?,?)");
	if (!st)
		return -EIO;
	sqlite3_bind_int64(st, 1, ino);
	meta_bind_name(st, 2, name);
	/* a zero-length value must still be a BLOB, not NULL */
	sqlite3_bind_blob(st, 3, len ? val : "", len, SQLITE_STATIC);
	res = meta_step_done(fs, st);
	if (res == 0 && delta)
		*delta = (int64_t)(strlen(name) + len) - (int64_t)old;
	return res;
}

int fs_meta_listxattr(struct fs *fs, fuse_ino_t ino, GString *out)
{
	sqlite3_stmt *st = meta_stmt(fs, "SELECT name FROM xattrs WHERE ino = ? ORDER BY name");
	int rc;

	if (!st)
		return -EIO;
	sqlite3_bind_int64(st, 1, ino);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *name = sqlite3_column_blob(st, 0);
		int len = sqlite3_column_bytes(st, 0);

		g_string_append_len(out, name, len);
		g_string_append_c(out, '\0');
	}
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? 0 : meta_fail(fs, rc, "listxattr");
}

int fs_meta_removexattr(struct fs *fs, fuse_ino_t ino, const char *name, uint64_t *freed)
{
	/* the row is deleted in the first step, which also returns its cost */
	return meta_int_by_name(fs, "DELETE FROM xattrs WHERE ino = ? AND name = ?"
				" RETURNING " FS_XATTR_COST_SQL,
				ino, name, -ENODATA, "removexattr", freed);
}

int fs_meta_xattr_pages(struct fs *fs, uint64_t *pages)
{
	char sql[256];

	/* rows of an inode that is gone (never left by us) cost nothing */
	snprintf(sql, sizeof(sql), "SELECT coalesce(sum((b + %u) / %u), 0) FROM"
		 " (SELECT sum(" FS_XATTR_COST_SQL ") AS b FROM xattrs"
		 "  WHERE ino IN (SELECT ino FROM inodes) GROUP BY ino)",
		 RSV_PAGE_SIZE - 1, RSV_PAGE_SIZE);
	return fs_meta_count(fs, sql, pages);
}

int fs_meta_count(struct fs *fs, const char *sql, uint64_t *out)
{
	sqlite3_stmt *st;
	int rc = sqlite3_prepare_v2(fs->db, sql, -1, &st, NULL);

	if (rc != SQLITE_OK)
		return meta_fail(fs, rc, sql);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*out = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return rc == SQLITE_ROW ? 0 : meta_fail(fs, rc, sql);
}
