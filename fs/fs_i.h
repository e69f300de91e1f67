/* fs/ internals shared by the files of fs/.
 *
 * Lock order (outermost first):
 *   inode->lock (at most one per thread, except rename/link which lock by
 *     ascending inode number)  ->  fs->db_lock  ->  fs->itable_lock
 *   cache/ and reserve/ locks are leaves below all of these.
 * No lock is held across fuse_reply_*.
 */
#ifndef FS_I_H
#define FS_I_H

#include <fuse_lowlevel.h>
#include <inttypes.h>
#include <glib.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>

#include "cache.h"
#include "fs.h"
#include "reserve.h"

#define FS_FORMAT_VERSION 2
#define FS_NAME_MAX 255
#define FS_ROOT_INO 1

/* Options that live in the store (set at mkfs, overridable at mount). */
struct fs_params {
	uint64_t size_pages;
	uint64_t nr_inodes;
	enum rsv_mode mode;
};

/* Mount options of ours (the rest goes to libfuse). */
struct fs_opts {
	char *size;		/* raw strings, parsed against the backing fs */
	char *nr_inodes;
	char *reserve;
	char *dirty_limit;
	char *dirty_expire;
	char *mmap_dirty_max;
	int foreground;
	int debug;
	int ro;
	int noatime;
	int remount;
	int bench_no_reserve;
	unsigned max_read;	/* the FUSE mount option, 0 if not given */
};

struct fs_inode {
	fuse_ino_t ino;			/* immutable */
	uint64_t gen;			/* immutable */

	/* fs->itable_lock: */
	uint64_t nlookup;		/* kernel references */
	uint32_t nref;			/* in-flight operations */
	uint32_t nopen;			/* open file handles */

	GMutex lock;			/* protects everything below */
	/* Writes that only fill pages already reserved copy their data
	 * without @lock, counted here; truncate and fallocate wait for the
	 * count to reach 0 (fs_inode_drain_copies) and hold @lock throughout,
	 * so that no reservation or backing block goes away under a copy. */
	uint32_t copies;
	bool copies_drain;		/* someone waits for copies == 0: no new ones */
	mode_t mode;
	uid_t uid;
	gid_t gid;
	uint32_t nlink;
	dev_t rdev;
	uint32_t flags;			/* FS_*_FL of chattr: immutable, append, nodump, noatime */
	uint64_t size;			/* regular files: the backing file's size */
	int64_t atime, mtime, ctime, btime;	/* ns since the epoch */
	fuse_ino_t parent;		/* directories: the one parent */
	bool attr_dirty;		/* times/size/rsv not yet in SQLite */
	bool deleted;			/* nlink 0 and data freed */
	bool row_gone;			/* nlink 0 and its SQLite row already deleted */
	bool linkable;			/* an O_TMPFILE (no O_EXCL) never linked yet */
	bool has_xattrs;		/* false: it has none (getxattr answers without SQLite) */
	uint64_t xattr_bytes;		/* its xattrs' names and values, charged to the
					 * ledger in whole pages (fs_xattr_pages); not a
					 * column: derived from the xattrs table on load */
	int fd;				/* backing file while nopen > 0 or busy, else -1 */
	bool rsv_loaded;		/* rsv reflects the backing file */
	uint64_t rsv_pages_db;		/* reserved pages as last stored */
	int64_t stamp_ctime;		/* lock: ctime in the backing file's times
					 * xattr (every mtime change moves ctime) */
	uint64_t stamp_past;		/* lock: past_eof in that xattr */
	struct rsv_map rsv;		/* reserved pages (regular files) */
	struct rsv_map zero;		/* reserved pages known to read as zero (punched in eof
					 * mode): SEEK_HOLE reports them; not persisted */
	struct cache_file cf;		/* dirty pages (regular files) */
	uint64_t read_behind;		/* atomic: a sequential reader's backing pages
					 * below this offset were let go (ops_file.c) */
	uint64_t read_next;		/* atomic: where the last READ ended */
	uint32_t read_run;		/* atomic: READs in a row that began there */
};

struct fs {
	char *store;			/* immutable: absolute store path */
	char *mountpoint;		/* immutable */
	int data_fd;			/* immutable: STORE/data */
	int lock_fd;			/* immutable: flock on STORE/lock */
	bool ro;			/* immutable */
	bool rows_stale;		/* immutable once mounted: a read-only mount
					 * after a crash, whose recovery could not
					 * store sizes; inodes take them from their
					 * backing files as they load */
	bool fsck;			/* immutable: opened by fsck, which checks
					 * next_ino itself (and can repair it) */
	int format;			/* the store's format version (mount upgrades it) */
	bool noatime;			/* immutable: mounted noatime */
	bool bench_no_reserve;		/* immutable: benchmarks only: writes skip the ledger */
	unsigned max_read;		/* immutable: -o max_read, echoed in INIT */
	unsigned dev_major, dev_minor;	/* immutable once mounted: our connection's device */
	bool backing_page_blocks;	/* immutable: backing block size divides 4096 evenly (== 4096) */
	uint64_t max_file_size;		/* immutable */
	uid_t owner_uid;		/* immutable: who mounted */
	double attr_timeout;		/* immutable */
	struct fs_params params;	/* db_lock (size/nr_inodes change at runtime) */
	struct rsv_ledger ledger;	/* lock-free */
	struct cache *cache;		/* own locking */
	GArray *wb_started;		/* cache thread only: struct mount_wb, the
					 * writebacks started in this round */
	uint64_t mmap_dirty_max;	/* immutable */
	uint64_t writeback_failures;	/* atomic: write-mode mmap writebacks refused */
	uint64_t generation;		/* immutable: this mount's generation */
	struct fuse_session *se;	/* immutable once mounted: for notifications */
	GThreadPool *seek_pool;		/* immutable once mounted: lseeks that have the
					 * kernel write back mapped pages first */
	bool killpriv_v2;		/* set once at INIT: we kill setuid/setgid */

	GMutex db_lock;
	sqlite3 *db;			/* db_lock */

	GCond copies_done;		/* with an inode's lock: its copies reached 0 */
	bool stamp_ok;			/* atomic: backing files take our times xattr */

	GAsyncQueue *reap;		/* own locking: inodes whose backing file is to go */
	GMutex reap_lock;
	GCond reap_cond;		/* with reap_lock: the reaper retired one */
	uint64_t reap_queued;		/* reap_lock: backing files handed to the reaper */
	uint64_t reap_done;		/* reap_lock (atomic to read): ... and retired by it */
	uint64_t reap_pages;		/* reap_lock (atomic to read): reserved pages
					 * those still hold */
	GArray *reap_later;		/* before the reaper runs: uint64_t pairs (ino, pages)
					 * of backing files the mount's recovery found
					 * without an owner, handed to it once it runs */
	GThread *reaper;		/* immutable once mounted */
	int free_fd;			/* immutable once mounted: STORE/data/free, or -1 */
	GMutex spare_lock;
	GArray *spares;			/* spare_lock: ids of empty backing files in free/ */
	uint64_t spare_next;		/* spare_lock: the next id to give one */
	bool spare_filling;		/* spare_lock: the reaper is asked to make spares */
	GArray *fresh;			/* spare_lock: fds of new nameless (O_TMPFILE) spares */
	bool fresh_ok;			/* atomic: O_TMPFILE and linking by /proc work here */

	GMutex itable_lock;
	GHashTable *itable;		/* itable_lock: ino -> struct fs_inode */
	uint64_t evicted;		/* atomic: evictions by forgets since the last malloc_trim */
};


/* ---- meta.c: the SQLite store -------------------------------------- */
int fs_meta_open(struct fs *fs, bool create);
void fs_meta_close(struct fs *fs);
const char *fs_meta_errmsg(struct fs *fs);	/* SQLite's word on the last failure */
int fs_meta_begin(struct fs *fs);		/* takes db_lock */
int fs_meta_commit(struct fs *fs, int res);	/* commits if res == 0, else rolls back; drops db_lock; returns res */
int fs_meta_finish(struct fs *fs, int res);	/* the same, keeping db_lock */
int fs_meta_exec(struct fs *fs, const char *sql);	/* db_lock held */
int fs_meta_sync(struct fs *fs, struct fs_inode *in); /* durable commit of all so far (+ in's row) */
int fs_meta_new_id(struct fs *fs, uint64_t *id);	/* a number never handed out; in a transaction */
/* Writes down exactly where that counter stands (mkfs, clean unmount), so
 * the next mount goes on from there rather than from the end of its chunk */
int fs_meta_save_next_id(struct fs *fs);
int fs_meta_upgrade(struct fs *fs);		/* format 1 -> 2 */
int fs_meta_get_super(struct fs *fs, const char *key, char **val);
int fs_meta_set_super(struct fs *fs, const char *key, const char *val);
/* inodes: all need db_lock held */
int fs_meta_load_inode(struct fs *fs, fuse_ino_t ino, struct fs_inode *in);
/* The inode @name in @parent names, in one query. */
int fs_meta_lookup_load(struct fs *fs, fuse_ino_t parent, const char *name, struct fs_inode *in);
int fs_meta_insert_inode(struct fs *fs, struct fs_inode *in, const char *link);
int fs_meta_store_inode(struct fs *fs, struct fs_inode *in);
int fs_meta_delete_inode(struct fs *fs, fuse_ino_t ino);
int fs_meta_read_link(struct fs *fs, fuse_ino_t ino, char **target);
/* dentries */
int fs_meta_lookup(struct fs *fs, fuse_ino_t parent, const char *name, fuse_ino_t *ino);
/* @new_ino: the inode was inserted in this transaction (its number is the
 * dentry's id); otherwise the dentry takes a new one */
int fs_meta_link(struct fs *fs, fuse_ino_t parent, const char *name, fuse_ino_t ino, bool new_ino);
int fs_meta_unlink(struct fs *fs, fuse_ino_t parent, const char *name);
int fs_meta_relink(struct fs *fs, fuse_ino_t parent, const char *name, fuse_ino_t ino);
int fs_meta_move(struct fs *fs, fuse_ino_t parent, const char *name,
		 fuse_ino_t newparent, const char *newname);
int fs_meta_dir_empty(struct fs *fs, fuse_ino_t ino);	/* 1 empty, 0 not, <0 error */
struct fs_dirent {
	int64_t off;
	fuse_ino_t ino;
	mode_t mode;
	char name[FS_NAME_MAX + 1];
};
/* Up to @max entries after @off; returns the count or -errno. */
int fs_meta_readdir(struct fs *fs, fuse_ino_t dir, int64_t off, struct fs_dirent *ents, int max);
/* xattrs.  An xattr costs the length of its name plus that of its value;
 * an inode's xattrs are charged to the ledger in whole pages, as ext4
 * gives them a block: one page for a few small ones, none for none. */
/* one xattr row's cost; length() of a BLOB reads its size from the record
 * header, never the value itself */
#define FS_XATTR_COST_SQL "length(name) + length(value)"
#define FS_XATTR_BYTES_SQL(ino) \
	"(SELECT coalesce(sum(" FS_XATTR_COST_SQL "), 0) FROM xattrs x WHERE x.ino = " ino ")"
static inline uint64_t fs_xattr_pages(uint64_t bytes)
{
	return rsv_page_up(bytes);
}
/* @pages more for xattrs, all or nothing: 0, or -ENOSPC (counted) */
static inline int fs_xattr_charge(struct fs *fs, uint64_t pages)
{
	if (rsv_charge(&fs->ledger, pages) == 0)
		return 0;
	rsv_count_enospc(&fs->ledger, RSV_EV_XATTR);
	return -ENOSPC;
}
int fs_meta_getxattr(struct fs *fs, fuse_ino_t ino, const char *name, void **val, size_t *len);
/* *@delta (may be NULL): how many bytes the inode's xattrs grew (< 0: shrank) */
int fs_meta_setxattr(struct fs *fs, fuse_ino_t ino, const char *name, const void *val,
		     size_t len, int flags, int64_t *delta);
int fs_meta_listxattr(struct fs *fs, fuse_ino_t ino, GString *out);	/* every name */
/* *@freed: the bytes the removed xattr cost */
int fs_meta_removexattr(struct fs *fs, fuse_ino_t ino, const char *name, uint64_t *freed);
/* The pages the xattrs of every inode cost, for the ledger at mount */
int fs_meta_xattr_pages(struct fs *fs, uint64_t *pages);
/* counts for mount */
int fs_meta_count(struct fs *fs, const char *sql, uint64_t *out);

/* ---- meta_vfs.c: the files beneath meta.db -------------------------- */
/* The SQLite VFS meta.db is opened with (NULL: SQLite's default): the
 * default one, except that a write that meets a full backing disk waits
 * for the reaper to free the blocks of deleted files and is made again. */
const char *fs_meta_vfs(struct fs *fs);
void fs_meta_vfs_close(struct fs *fs);
/* db_lock held: whether those writes may wait (default true).  An eviction,
 * which holds itable_lock too, passes false, then true again. */
void fs_meta_may_wait(struct fs *fs, bool may_wait);

/* ---- store.c: store layout, mkfs, recovery ------------------------- */
int fs_store_open(struct fs *fs, const char *store, bool ro, bool create);
int fs_store_writable(const char *store, const char **what);
void fs_store_close(struct fs *fs);
int fs_store_save_params(struct fs *fs, const struct fs_params *p);
void fs_backing_name(fuse_ino_t ino, char *buf, size_t len);
int fs_backing_open(struct fs *fs, fuse_ino_t ino, int flags);
int fs_backing_unlink(struct fs *fs, fuse_ino_t ino);
/* A new, empty backing file for @ino, opened read-write: a spare one from
 * data/free when there is one, else created.  fd or -errno (-EEXIST). */
int fs_backing_create(struct fs *fs, fuse_ino_t ino);
/* Off the caller's path: freeing a file's blocks can take milliseconds on
 * the backing filesystem.  The ledger is released by the caller at once.
 * The emptied backing file is kept as a spare for the next create.  A
 * caller waits while the reaper is far behind (@pages: the file's reserved
 * pages), so that deleted files do not pile up on the backing disk; one
 * holding locks every request needs (eviction) passes !@may_wait. */
void fs_backing_reap(struct fs *fs, fuse_ino_t ino, uint64_t pages, bool may_wait);
/* How many backing files the reaper has emptied so far; then waits until it
 * has emptied every one queued: true when any was emptied since @since (an
 * allocation that met ENOSPC on the backing disk may find room now). */
uint64_t fs_backing_reaped(struct fs *fs);
bool fs_backing_reap_wait(struct fs *fs, uint64_t since);
bool fs_backing_reap_pending(struct fs *fs);	/* blocks not yet freed (a hint) */
void fs_backing_reaper_start(struct fs *fs);
void fs_backing_reaper_stop(struct fs *fs);
/* Reserved pages of a backing file, from its allocation map. */
int fs_backing_scan(int fd, struct rsv_map *map);
int fs_recover(struct fs *fs, bool clean, bool report_only, GString *report, int *problems);
/* fsck: next_ino against every inode number and entry id; with @fix a bad
 * one is recomputed.  Problems found (0 or 1, described in @report), or
 * -errno. */
int fs_store_check_next_id(struct fs *fs, bool fix, GString *report);
/* A regular file's size, reservation and fsync'd times from its backing
 * file, into @in (fresh from its row): what recovery would have stored. */
int fs_backing_refresh(struct fs *fs, struct fs_inode *in);
/* A superblock number: decimal digits only, in [min, max]; 0 or -EINVAL. */
int fs_parse_super_u64(const char *v, uint64_t min, uint64_t max, uint64_t *out);
int fs_parse_params(const char *size, const char *nr_inodes, const char *reserve,
		    const char *store, struct fs_params *p);

/* ---- inode.c: the in-memory inode table ---------------------------- */
int fs_inode_get(struct fs *fs, fuse_ino_t ino, struct fs_inode **out);
/* The inode @name in @parent names, pinned (nref): one SQLite query when it
 * is not in memory yet, none for the dentry when it is. -ENOENT if none. */
int fs_inode_lookup(struct fs *fs, fuse_ino_t parent, const char *name, struct fs_inode **out);
struct fs_inode *fs_inode_alloc(void);
void fs_inode_free(struct fs_inode *in);
/* A new inode just committed (db_lock held): into the table with nref 1. */
void fs_inode_insert(struct fs *fs, struct fs_inode *in);
/* Frees the data of @in if it is unlinked and nobody has it open. */
void fs_inode_maybe_free_data(struct fs *fs, struct fs_inode *in);
void fs_inode_put(struct fs *fs, struct fs_inode *in);
struct fs_inode *fs_inode_ref(struct fs *fs, struct fs_inode *in);
void fs_inode_lookup_inc(struct fs *fs, struct fs_inode *in);
void fs_inode_forget(struct fs *fs, fuse_ino_t ino, uint64_t n);
void fs_inode_forget_multi(struct fs *fs, const struct fuse_forget_data *f, size_t count);
int fs_inode_open(struct fs *fs, struct fs_inode *in);	/* nopen++, backing fd */
void fs_inode_release(struct fs *fs, struct fs_inode *in);
/* RELEASE and RELEASEDIR: the release, then the inode goes if nothing holds it */
void fs_inode_close(struct fs *fs, struct fs_inode *in);
void fs_inode_fill_stat(struct fs *fs, const struct fs_inode *in, struct stat *st);
void fs_inode_fill_entry(struct fs *fs, const struct fs_inode *in, struct fuse_entry_param *e);
int64_t fs_now(void);
void fs_ns_to_ts(int64_t ns, struct timespec *ts);	/* our ns times to a timespec */
void fs_inode_touch(struct fs_inode *in, bool atime, bool mtime, bool ctime);
/* relatime: a read updates atime when it is not newer than mtime/ctime or a
 * day old.  Takes in->lock only when an update is due. */
void fs_inode_accessed(struct fs *fs, struct fs_inode *in);
void fs_inode_free_data(struct fs *fs, struct fs_inode *in, bool may_wait);
/* What a transaction changes in an inode before it commits: the fields of
 * its row but the size (a setattr puts that back itself), and how the row
 * stands.  A commit that fails puts them back as they were (in->lock held
 * throughout).  Not by reading the row back: the size and times in memory
 * are newer than the row's while attr_dirty is set, and a store inside a
 * transaction that rolled back must not count as stored. */
struct fs_inode_saved {
	mode_t mode;
	uid_t uid;
	gid_t gid;
	uint32_t nlink;
	uint32_t flags;
	int64_t atime, mtime, ctime;
	fuse_ino_t parent;
	uint64_t rsv_pages_db;
	uint64_t xattr_bytes;
	bool attr_dirty, row_gone, has_xattrs;
};
void fs_inode_save(const struct fs_inode *in, struct fs_inode_saved *s);
void fs_inode_restore(struct fs_inode *in, const struct fs_inode_saved *s);
/* fsync/fdatasync of a file, fsync of a directory: its data (files), its
 * times unless @datasync, then everything committed to SQLite so far. */
int fs_inode_fsync(struct fs *fs, struct fs_inode *in, bool datasync);

/* A file's times as its last fsync left them, kept in an xattr of its backing
 * file (whose fsync persists it with the data) instead of a SQLite commit.
 * Recovery prefers it to the inode row when its ctime is the newer: ctime
 * only moves forward, whatever utimensat does to atime and mtime. */
#define FS_STAMP_XATTR "user.reservefs.times"
struct fs_stamp {
	int64_t atime, mtime, ctime;	/* ns since the epoch, as in the row */
	/* pages reserved past EOF (a fallocate KEEP_SIZE) at that fsync; a
	 * stamp of an older reservefs ends before it (FS_STAMP_V1_SIZE) */
	uint64_t past_eof;
};
#define FS_STAMP_V1_SIZE (3 * sizeof(int64_t))
#define FS_STAMP_PAST_UNKNOWN UINT64_MAX
/* The stamp of backing file @fd into *@st (past_eof FS_STAMP_PAST_UNKNOWN
 * from an older one); false when it has none. */
bool fs_stamp_read(int fd, struct fs_stamp *st);
/* at unmount: every inode's row written (0), or -errno: the store is then
 * not to be marked clean (the next mount re-derives sizes from the data) */
int fs_inode_destroy_all(struct fs *fs);
int fs_inode_load_rsv(struct fs *fs, struct fs_inode *in);	/* in->lock held */
/* A temporary backing fd for an inode with no open handle; in->lock held. */
int fs_inode_fd(struct fs *fs, struct fs_inode *in, bool *temp);
/* in->lock held: waits until no write copies into @in without the lock;
 * none starts again while the caller holds the lock. */
void fs_inode_drain_copies(struct fs *fs, struct fs_inode *in);

/* ---- data.c: reservation-aware data operations (in->lock held) ------ */
ssize_t fs_data_reserve_write(struct fs *fs, struct fs_inode *in, int fd, uint64_t off,
			      uint64_t len, bool writeback, GArray **undo);
void fs_data_undo(struct fs *fs, struct fs_inode *in, GArray *undo, uint64_t from_page);
/* @undop (may be NULL): after growing, the pages it reserved, for
 * fs_data_undo if the change must be taken back (caller frees). */
int fs_data_truncate(struct fs *fs, struct fs_inode *in, int fd, uint64_t size,
		     GArray **undop);
int fs_data_fallocate(struct fs *fs, struct fs_inode *in, int fd, int mode, uint64_t off,
		      uint64_t len);
void fs_data_written(struct fs *fs, struct fs_inode *in, int fd, uint64_t off, uint64_t len);
/* A writeback (reserve=write) whose new pages do not all fit: reserves those
 * that do, writes every reserved page of @buf, logs the rest as lost and
 * returns -ENOSPC, which the kernel reports to msync/fsync. */
int fs_data_writeback_partial(struct fs *fs, struct fs_inode *in, int fd, uint64_t off,
			      const char *buf, uint64_t len);
/* SEEK_DATA / SEEK_HOLE, with punched-but-reserved pages as holes. */
off_t fs_data_seek(struct fs_inode *in, int fd, off_t off, int whence);

/* ---- perm.c: privilege rules the kernel leaves to us ----------------- */
/* chattr +i / +a: the FUSE module does not know them, so we refuse here
 * what the VFS refuses on a kernel filesystem (EPERM). */
static inline bool fs_immutable(const struct fs_inode *in)
{
	return in->flags & 0x10;	/* FS_IMMUTABLE_FL */
}
static inline bool fs_append_only(const struct fs_inode *in)
{
	return in->flags & 0x20;	/* FS_APPEND_FL */
}
/* chattr +A: no atime updates (read without in->lock, hence atomic) */
static inline bool fs_noatime_flag(const struct fs_inode *in)
{
	return __atomic_load_n(&in->flags, __ATOMIC_RELAXED) & 0x80;	/* FS_NOATIME_FL */
}
/* chattr flags a new inode takes from its directory, as on ext4: nodump
 * and noatime (not immutable or append-only). */
#define FS_FL_INHERITED (0x40 | 0x80)	/* FS_NODUMP_FL | FS_NOATIME_FL */
/* Neither may be removed, renamed, linked, or changed in its attributes. */
static inline bool fs_pinned(const struct fs_inode *in)
{
	return fs_immutable(in) || fs_append_only(in);
}
/* The mode after a write/truncate/fallocate/ACL change by the caller of
 * @req, unless it has CAP_FSETID: setuid goes, setgid goes when
 * group-executable or when the caller is not in the file's group (what
 * setattr_should_drop_sgid() does for kernel filesystems; FUSE's own kill
 * logic keeps it in the second case). */
mode_t fs_perm_kill_suid(fuse_req_t req, mode_t mode, gid_t gid);
/* The same, whoever the caller: the kernel said to kill (killpriv v2). */
mode_t fs_perm_kill(fuse_req_t req, mode_t mode, gid_t gid);
bool fs_perm_in_group(fuse_req_t req, gid_t gid);
/* Whether thread @pid has capability @cap (CAP_*) in its effective set
 * (/proc/PID/status): 1, 0, or -1 when it cannot be told. */
int fs_perm_proc_capable(pid_t pid, int cap);
/* The caller of @req has capability @cap.  Read from /proc: only where the
 * kernel leaves the decision to us. */
bool fs_perm_capable(fuse_req_t req, int cap);
/* in the group @gid, or CAP_FSETID: may keep setgid (in_group_or_capable) */
bool fs_perm_in_group_or_fsetid(fuse_req_t req, gid_t gid);
/* Tell the kernel its cached attributes of @ino are stale. */
void fs_perm_inval_attr(struct fs *fs, fuse_ino_t ino);

/* ---- mount.c: mounting, the session ------------------------------- */
/* Where a live reservefs mounts @store (g_free it), or NULL. */
char *fs_mount_find_live(const char *store);
/* Where @store is mounted, live daemon or not (the lock is not asked). */
char *fs_mount_find(const char *store);
/* Whether @path is the mount point of a reservefs mount. */
bool fs_mount_is_reservefs(const char *path);

/* ---- io.c: the /dev/fuse channel ----------------------------------- */
/* Installs our read/writev around libfuse's: it negotiates
 * FUSE_HANDLE_KILLPRIV_V2 (which libfuse 3.14 cannot ask for), so the
 * kernel stops asking for security.capability before every write and tells
 * us per request when setuid/setgid must go. */
int fs_io_install(struct fs *fs, struct fuse_session *se);
/* For the request this thread is handling: the kernel's kill flag
 * (FUSE_WRITE_KILL_SUIDGID / FATTR_KILL_SUIDGID). */
bool fs_io_req_kill(void);

/* ---- ops: fuse_lowlevel_ops tables -------------------------------- */
void fs_ops_dir_init(struct fuse_lowlevel_ops *ops);
void fs_ops_file_init(struct fuse_lowlevel_ops *ops);
/* fs->seek_pool's job: an lseek answered after the kernel's writeback (ops_file.c) */
void fs_seek_job(gpointer data, gpointer user);
void fs_ops_attr_init(struct fuse_lowlevel_ops *ops);
/* O_TMPFILE (FUSE_TMPFILE, which io.c answers: libfuse 3.14 has no operation
 * for it): a regular file in no directory, open, linkable unless @flags has
 * O_EXCL.  *e has its entry (one lookup reference), *fh the open handle. */
int fs_dir_tmpfile(struct fs *fs, const struct fuse_ctx *ctx, fuse_ino_t parent, mode_t mode,
		   int flags, struct fuse_entry_param *e, uint64_t *fh);
int fs_ctl_getxattr(struct fs *fs, const char *name, GString *out);	/* -ENODATA if not ours */
int fs_ctl_setxattr(struct fs *fs, fuse_req_t req, const char *name, const char *val, size_t len);

#endif /* FS_I_H */
