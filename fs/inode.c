/* fs/inode.c — the in-memory inode table: lookup counts (nlookup), open
 * counts (nopen) and in-flight references (nref), kept apart as in
 * passthrough_hp.  An inode leaves memory when all three are zero; an
 * unlinked one then leaves the store too.  Also fsync: a file's times go
 * into its backing file with its data (inode_stamp), not into SQLite. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "fs_i.h"

/* evictions by forgets between two malloc_trim calls */
#define INODE_TRIM_EVICTED 16384

int64_t fs_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void fs_inode_touch(struct fs_inode *in, bool atime, bool mtime, bool ctime)
{
	int64_t now = fs_now();

	if (atime)
		in->atime = now;
	if (mtime)
		in->mtime = now;
	if (ctime)
		in->ctime = now;
}

static bool inode_atime_due(const struct fs_inode *in, int64_t now)
{
	int64_t a = __atomic_load_n(&in->atime, __ATOMIC_RELAXED);

	return a <= __atomic_load_n(&in->mtime, __ATOMIC_RELAXED) ||
	       a <= __atomic_load_n(&in->ctime, __ATOMIC_RELAXED) ||
	       now - a >= (int64_t)24 * 3600 * 1000000000;
}

void fs_inode_accessed(struct fs *fs, struct fs_inode *in)
{
	int64_t now;

	if (fs->ro || fs->noatime || fs_noatime_flag(in))
		return;
	now = fs_now();
	if (!inode_atime_due(in, now))
		return;
	g_mutex_lock(&in->lock);
	if (inode_atime_due(in, now)) {
		in->atime = now;
		in->attr_dirty = true;
	}
	g_mutex_unlock(&in->lock);
}

void fs_ns_to_ts(int64_t ns, struct timespec *ts)
{
	ts->tv_sec = ns / 1000000000;
	ts->tv_nsec = ns % 1000000000;
	if (ts->tv_nsec < 0) {
		ts->tv_nsec += 1000000000;
		ts->tv_sec--;
	}
}

void fs_inode_fill_stat(struct fs *fs, const struct fs_inode *in, struct stat *st)
{
	uint64_t rsv = in->rsv_loaded ? rsv_map_pages(&in->rsv) : in->rsv_pages_db;

	memset(st, 0, sizeof(*st));
	st->st_ino = in->ino;
	st->st_mode = in->mode;
	st->st_nlink = in->nlink;
	st->st_uid = in->uid;
	st->st_gid = in->gid;
	st->st_rdev = in->rdev;
	st->st_size = in->size;
	st->st_blksize = RSV_PAGE_SIZE;
	st->st_blocks = S_ISREG(in->mode) ? rsv << (RSV_PAGE_SHIFT - 9) : 0;
	if (S_ISDIR(in->mode))
		st->st_blocks = 8;
	fs_ns_to_ts(in->atime, &st->st_atim);
	fs_ns_to_ts(in->mtime, &st->st_mtim);
	fs_ns_to_ts(in->ctime, &st->st_ctim);
}

void fs_inode_fill_entry(struct fs *fs, const struct fs_inode *in, struct fuse_entry_param *e)
{
	memset(e, 0, sizeof(*e));
	e->ino = in->ino;
	e->generation = in->gen;
	e->attr_timeout = fs->attr_timeout;
	e->entry_timeout = fs->attr_timeout;
	fs_inode_fill_stat(fs, in, &e->attr);
}

struct fs_inode *fs_inode_alloc(void)
{
	struct fs_inode *in = g_new0(struct fs_inode, 1);

	g_mutex_init(&in->lock);
	in->fd = -1;
	rsv_map_init(&in->rsv);
	rsv_map_init(&in->zero);
	return in;
}

void fs_inode_free(struct fs_inode *in)
{
	rsv_map_clear(&in->rsv);
	rsv_map_clear(&in->zero);
	rsv_map_clear(&in->cf.dirty);
	rsv_map_clear(&in->cf.inflight);
	g_mutex_clear(&in->lock);
	g_free(in);
}

/* Loads an inode with @load (db_lock held by us) unless it is in memory:
 * the in-memory copy always wins.  Insertion happens under db_lock: an
 * eviction stores its inode under db_lock before it leaves the table, so we
 * never load a row older than a copy still in memory. */
static int inode_get_by(struct fs *fs, fuse_ino_t ino, const char *name,
			struct fs_inode **out)
{
	struct fs_inode *in, *other;
	int res;

	if (!name) {
		g_mutex_lock(&fs->itable_lock);
		in = g_hash_table_lookup(fs->itable, &ino);
		if (in) {
			in->nref++;
			g_mutex_unlock(&fs->itable_lock);
			*out = in;
			return 0;
		}
		g_mutex_unlock(&fs->itable_lock);
	}

	in = fs_inode_alloc();
	g_mutex_lock(&fs->db_lock);
	res = name ? fs_meta_lookup_load(fs, ino, name, in) : fs_meta_load_inode(fs, ino, in);
	if (res == 0 && fs->rows_stale && S_ISREG(in->mode)) {
		/* read-only: no row changes while db_lock is away for the
		 * backing file's I/O.  A backing file that cannot be read
		 * leaves the row as it is: opening the file will say why. */
		g_mutex_unlock(&fs->db_lock);
		fs_backing_refresh(fs, in);
		g_mutex_lock(&fs->db_lock);
	}
	if (res == 0) {
		g_mutex_lock(&fs->itable_lock);
		other = g_hash_table_lookup(fs->itable, &in->ino);
		if (other) {
			other->nref++;
			g_mutex_unlock(&fs->itable_lock);
			g_mutex_unlock(&fs->db_lock);
			fs_inode_free(in);
			*out = other;
			return 0;
		}
		if (S_ISREG(in->mode))
			cache_file_init(&in->cf, in->ino);
		in->nref = 1;
		g_hash_table_insert(fs->itable, &in->ino, in);
		g_mutex_unlock(&fs->itable_lock);
	}
	g_mutex_unlock(&fs->db_lock);
	if (res < 0) {
		fs_inode_free(in);
		return res;
	}
	*out = in;
	return 0;
}

int fs_inode_get(struct fs *fs, fuse_ino_t ino, struct fs_inode **out)
{
	int res = inode_get_by(fs, ino, NULL, out);

	/* a nodeid the kernel (or a file handle) names that is gone */
	return res == -ENOENT ? -ESTALE : res;
}

int fs_inode_lookup(struct fs *fs, fuse_ino_t parent, const char *name, struct fs_inode **out)
{
	return inode_get_by(fs, parent, name, out);
}

void fs_inode_insert(struct fs *fs, struct fs_inode *in)
{
	if (S_ISREG(in->mode))
		cache_file_init(&in->cf, in->ino);
	g_mutex_lock(&fs->itable_lock);
	in->nref = 1;
	g_hash_table_insert(fs->itable, &in->ino, in);
	g_mutex_unlock(&fs->itable_lock);
}

void fs_inode_maybe_free_data(struct fs *fs, struct fs_inode *in)
{
	bool unused;

	g_mutex_lock(&in->lock);
	g_mutex_lock(&fs->itable_lock);
	unused = in->nopen == 0;
	g_mutex_unlock(&fs->itable_lock);
	if (unused && in->nlink == 0)
		fs_inode_free_data(fs, in, true);
	g_mutex_unlock(&in->lock);
}

struct fs_inode *fs_inode_ref(struct fs *fs, struct fs_inode *in)
{
	g_mutex_lock(&fs->itable_lock);
	in->nref++;
	g_mutex_unlock(&fs->itable_lock);
	return in;
}

/* The backing fd goes when nobody has the file open; in->lock held. */
static void inode_close_fd(struct fs *fs, struct fs_inode *in)
{
	if (in->fd < 0)
		return;
	cache_file_finish(fs->cache, &in->cf);
	close(in->fd);
	in->fd = -1;
}

/* Releases the data of an inode whose last link is gone and that nobody has
 * open: the backing file goes, and with it the reservation, its xattrs'
 * pages too (their rows go with its row).  in->lock held. */
void fs_inode_free_data(struct fs *fs, struct fs_inode *in, bool may_wait)
{
	if (in->deleted || in->nlink > 0)
		return;
	in->deleted = true;
	if (S_ISREG(in->mode)) {
		uint64_t pages = in->rsv_loaded ? rsv_map_pages(&in->rsv) : in->rsv_pages_db;

		inode_close_fd(fs, in);
		/* queued before the ledger has the pages back: an allocation
		 * that meets the blocks still there can wait for them */
		fs_backing_reap(fs, in->ino, pages, may_wait);
		rsv_release(&fs->ledger, pages);
		rsv_map_clear(&in->rsv);
		in->rsv_loaded = true;
	}
	rsv_release(&fs->ledger, fs_xattr_pages(in->xattr_bytes));
	in->xattr_bytes = 0;
	rsv_inode_put(&fs->ledger);
}

void fs_inode_save(const struct fs_inode *in, struct fs_inode_saved *s)
{
	s->mode = in->mode;
	s->uid = in->uid;
	s->gid = in->gid;
	s->nlink = in->nlink;
	s->flags = in->flags;
	s->atime = in->atime;
	s->mtime = in->mtime;
	s->ctime = in->ctime;
	s->parent = in->parent;
	s->rsv_pages_db = in->rsv_pages_db;
	s->attr_dirty = in->attr_dirty;
	s->row_gone = in->row_gone;
	s->has_xattrs = in->has_xattrs;
	s->xattr_bytes = in->xattr_bytes;
}

void fs_inode_restore(struct fs_inode *in, const struct fs_inode_saved *s)
{
	in->mode = s->mode;
	in->uid = s->uid;
	in->gid = s->gid;
	in->nlink = s->nlink;
	in->flags = s->flags;
	in->atime = s->atime;
	in->mtime = s->mtime;
	in->ctime = s->ctime;
	in->parent = s->parent;
	in->rsv_pages_db = s->rsv_pages_db;
	in->attr_dirty = s->attr_dirty;
	in->row_gone = s->row_gone;
	in->has_xattrs = s->has_xattrs;
	in->xattr_bytes = s->xattr_bytes;
}

/* Called with db_lock and itable_lock held when all counts are zero: what
 * the inode's leaving memory must write (its row stored, or deleted for an
 * unlinked one, whose data goes now).  0 or -errno.  The inode leaves the
 * table (inode_evict) only once that write is in meta.db: when a full
 * backing disk refuses it, memory still holds what the row lacks (a size,
 * times), and an evicted inode would be loaded again from the older row.
 * @batch: inside a transaction that may still fail: the inode keeps its
 * flags (attr_dirty, row_gone), as if nothing had been written, until it
 * leaves the table. */
static int inode_evict_write(struct fs *fs, struct fs_inode *in, bool batch)
{
	int res = 0;

	/* Taking in->lock last is safe here: with every count at zero no
	 * other thread holds a reference, so none can hold or want the lock. */
	g_mutex_lock(&in->lock);
	if (in->nlink == 0) {
		/* db_lock and itable_lock held: no waiting for the reaper */
		fs_inode_free_data(fs, in, false);
		if (!fs->ro && !in->row_gone && (res = fs_meta_delete_inode(fs, in->ino)) == 0)
			in->row_gone = !batch;
	} else if (in->attr_dirty && !fs->ro) {
		res = fs_meta_store_inode(fs, in);
		if (batch)
			in->attr_dirty = true;
	}
	g_mutex_unlock(&in->lock);
	return res;
}

/* Takes the inode out of the table once its write is in meta.db
 * (itable_lock held).  Its state reached SQLite before anyone can load it
 * again (fs_inode_get inserts under db_lock, and we hold db_lock here). */
static void inode_evict(struct fs *fs, struct fs_inode *in)
{
	g_hash_table_remove(fs->itable, &in->ino);
	g_mutex_lock(&in->lock);
	inode_close_fd(fs, in);
	g_mutex_unlock(&in->lock);
}

/* @in, number @ino, had every count at zero when its itable_lock was let
 * go: another thread that saw them at zero too (a put, a forget, a batch of
 * forgets) may have evicted and freed it since.  Only the table says whether
 * it is still there, so it is asked first, by number: an inode at that
 * address under that number is a live one (loaded again, perhaps) and its
 * counts are its own. */
static void inode_maybe_evict(struct fs *fs, struct fs_inode *in, fuse_ino_t ino)
{
	int res;

	/* lock order: db_lock before itable_lock */
	g_mutex_lock(&fs->db_lock);
	g_mutex_lock(&fs->itable_lock);
	if (g_hash_table_lookup(fs->itable, &ino) == in &&
	    in->nref == 0 && in->nlookup == 0 && in->nopen == 0) {
		fs_meta_may_wait(fs, false);
		res = inode_evict_write(fs, in, false);
		fs_meta_may_wait(fs, true);
		if (res < 0) {
			g_warning("inode %" PRIu64 ": kept in memory, meta.db cannot take its row",
				  (uint64_t)ino);
		} else {
			inode_evict(fs, in);
			g_mutex_unlock(&fs->itable_lock);
			g_mutex_unlock(&fs->db_lock);
			fs_inode_free(in);
			return;
		}
	}
	g_mutex_unlock(&fs->itable_lock);
	g_mutex_unlock(&fs->db_lock);
}

static bool inode_unused(struct fs_inode *in)
{
	return in->nref == 0 && in->nlookup == 0 && in->nopen == 0;
}

void fs_inode_put(struct fs *fs, struct fs_inode *in)
{
	fuse_ino_t ino;
	bool evict;

	if (!in)
		return;
	ino = in->ino;
	g_mutex_lock(&fs->itable_lock);
	g_assert(in->nref > 0);
	in->nref--;
	evict = inode_unused(in);
	g_mutex_unlock(&fs->itable_lock);
	if (evict)
		inode_maybe_evict(fs, in, ino);
}

void fs_inode_lookup_inc(struct fs *fs, struct fs_inode *in)
{
	g_mutex_lock(&fs->itable_lock);
	in->nlookup++;
	g_mutex_unlock(&fs->itable_lock);
}

void fs_inode_forget(struct fs *fs, fuse_ino_t ino, uint64_t n)
{
	struct fs_inode *in;
	bool evict = false;

	g_mutex_lock(&fs->itable_lock);
	in = g_hash_table_lookup(fs->itable, &ino);
	if (in) {
		g_assert(in->nlookup >= n);
		in->nlookup -= n;
		evict = inode_unused(in);
	}
	g_mutex_unlock(&fs->itable_lock);
	if (evict)
		inode_maybe_evict(fs, in, ino);
}

void fs_inode_forget_multi(struct fs *fs, const struct fuse_forget_data *f, size_t count)
{
	GPtrArray *gone = g_ptr_array_new();
	GPtrArray *freed = g_ptr_array_new();
	int res;

	/* One transaction for every inode these forgets evict: after a
	 * drop_caches the kernel forgets thousands at once, and each eviction
	 * may store its times.  They leave the table only once it commits:
	 * one that fails (a full backing disk) keeps them, rows unwritten. */
	g_mutex_lock(&fs->db_lock);
	fs_meta_may_wait(fs, false);	/* itable_lock is held through the writes */
	res = fs_meta_exec(fs, "BEGIN");
	for (size_t i = 0; i < count; i++) {
		struct fs_inode *in;

		g_mutex_lock(&fs->itable_lock);
		in = g_hash_table_lookup(fs->itable, &f[i].ino);
		if (in) {
			g_assert(in->nlookup >= f[i].nlookup);
			in->nlookup -= f[i].nlookup;
			/* out of the table at once, as if evicted: no one
			 * finds it (a lookup by number needs no db_lock) and
			 * changes it before the commit; put back if that fails */
			if (res == 0 && inode_unused(in)) {
				res = inode_evict_write(fs, in, true);
				g_hash_table_remove(fs->itable, &in->ino);
				g_ptr_array_add(gone, in);
			}
		}
		g_mutex_unlock(&fs->itable_lock);
	}
	res = fs_meta_finish(fs, res);
	fs_meta_may_wait(fs, true);
	for (guint i = 0; i < gone->len; i++) {
		struct fs_inode *in = g_ptr_array_index(gone, i);

		if (res == 0) {
			g_mutex_lock(&in->lock);	/* no one else can reach it */
			inode_close_fd(fs, in);
			g_mutex_unlock(&in->lock);
			g_ptr_array_add(freed, in);
		} else {
			/* refused: back in the table, its flags untouched (no
			 * load could take its row meanwhile: db_lock is ours) */
			g_mutex_lock(&fs->itable_lock);
			g_hash_table_insert(fs->itable, &in->ino, in);
			g_mutex_unlock(&fs->itable_lock);
		}
	}
	if (res < 0 && gone->len)
		g_warning("%u inodes kept in memory: meta.db cannot take their rows (%s)",
			  gone->len, strerror(-res));
	g_mutex_unlock(&fs->db_lock);
	for (guint i = 0; i < freed->len; i++)
		fs_inode_free(g_ptr_array_index(freed, i));
	/* glibc keeps what the evicted inodes freed in its per-thread arenas:
	 * after many evictions (drop_caches, memory pressure) hand it back */
	if (__atomic_add_fetch(&fs->evicted, freed->len, __ATOMIC_RELAXED) >= INODE_TRIM_EVICTED) {
		__atomic_store_n(&fs->evicted, 0, __ATOMIC_RELAXED);
		malloc_trim(0);
	}
	g_ptr_array_free(freed, TRUE);
	g_ptr_array_free(gone, TRUE);
}

int fs_inode_open(struct fs *fs, struct fs_inode *in)
{
	int res = 0;

	g_mutex_lock(&in->lock);
	if (in->deleted) {
		res = -ENOENT;
	} else if (S_ISREG(in->mode) && in->fd < 0) {
		in->fd = fs_backing_open(fs, in->ino, fs->ro ? O_RDONLY : O_RDWR);
		if (in->fd < 0)
			res = in->fd;
	}
	if (res == 0) {
		g_mutex_lock(&fs->itable_lock);
		in->nopen++;
		g_mutex_unlock(&fs->itable_lock);
	}
	g_mutex_unlock(&in->lock);
	return res;
}

void fs_inode_release(struct fs *fs, struct fs_inode *in)
{
	bool last;

	g_mutex_lock(&in->lock);
	g_mutex_lock(&fs->itable_lock);
	g_assert(in->nopen > 0);
	last = --in->nopen == 0;
	g_mutex_unlock(&fs->itable_lock);
	if (last) {
		if (in->nlink == 0) {
			/* the last close of an unlinked file frees its space now,
			 * whatever the kernel still holds a lookup on */
			fs_inode_free_data(fs, in, true);
		} else {
			/* times stay in memory until eviction, fsync or unmount
			 * (the size is the backing file's): a close costs no
			 * SQLite commit */
			inode_close_fd(fs, in);
		}
	}
	g_mutex_unlock(&in->lock);
}

void fs_inode_close(struct fs *fs, struct fs_inode *in)
{
	fs_inode_ref(fs, in);	/* the put evicts it if nothing else holds it */
	fs_inode_release(fs, in);
	fs_inode_put(fs, in);
}

int fs_inode_fd(struct fs *fs, struct fs_inode *in, bool *temp)
{
	*temp = false;
	if (in->fd >= 0)
		return in->fd;
	if (in->deleted)
		return -ENOENT;
	*temp = true;
	return fs_backing_open(fs, in->ino, fs->ro ? O_RDONLY : O_RDWR);
}

int fs_inode_load_rsv(struct fs *fs, struct fs_inode *in)
{
	bool temp;
	int fd, res;
	uint64_t pages;

	if (in->rsv_loaded || !S_ISREG(in->mode))
		return 0;
	fd = fs_inode_fd(fs, in, &temp);
	if (fd < 0)
		return fd;
	res = fs_backing_scan(fd, &in->rsv);
	if (temp)
		close(fd);
	if (res < 0)
		return res;
	/* The ledger was charged with what SQLite said at mount; the backing
	 * file's allocation is the truth. */
	pages = rsv_map_pages(&in->rsv);
	if (pages > in->rsv_pages_db)
		rsv_charge_force(&fs->ledger, pages - in->rsv_pages_db);
	else if (pages < in->rsv_pages_db)
		rsv_release(&fs->ledger, in->rsv_pages_db - pages);
	if (pages != in->rsv_pages_db)
		in->attr_dirty = true;
	in->rsv_loaded = true;
	return 0;
}

int fs_inode_destroy_all(struct fs *fs)
{
	GList *all, *l;
	int res;

	g_mutex_lock(&fs->db_lock);
	res = fs_meta_exec(fs, "BEGIN");
	g_mutex_lock(&fs->itable_lock);
	all = g_hash_table_get_values(fs->itable);
	for (l = all; l; l = l->next) {
		struct fs_inode *in = l->data;
		int r;

		in->nlookup = in->nopen = in->nref = 0;
		if (res == 0 && (r = inode_evict_write(fs, in, true)) < 0)
			res = r;
		inode_evict(fs, in);
		fs_inode_free(in);
	}
	g_list_free(all);
	g_mutex_unlock(&fs->itable_lock);
	res = fs_meta_finish(fs, res);
	g_mutex_unlock(&fs->db_lock);
	return res;
}

void fs_inode_drain_copies(struct fs *fs, struct fs_inode *in)
{
	while (in->copies > 0) {
		in->copies_drain = true;
		g_cond_wait(&fs->copies_done, &in->lock);
	}
	in->copies_drain = false;
}

/* in->lock held, in->fd open: writes in's times into the backing file's
 * xattr (struct fs_stamp), for the backing fsync to persist; nothing when it
 * holds this ctime already (a second fsync would rewrite the backing inode
 * for an atime at most).  false when the backing filesystem refuses (then,
 * and from then on when it cannot do xattrs at all, the times go through
 * SQLite). */
static bool inode_stamp(struct fs *fs, struct fs_inode *in, uint64_t past)
{
	struct fs_stamp st = { in->atime, in->mtime, in->ctime, past };

	if (!__atomic_load_n(&fs->stamp_ok, __ATOMIC_RELAXED))
		return false;
	if (in->stamp_ctime == in->ctime && in->stamp_past == past)
		return true;
	if (fsetxattr(in->fd, FS_STAMP_XATTR, &st, sizeof(st), 0) == 0) {
		in->stamp_ctime = in->ctime;
		in->stamp_past = past;
		return true;
	}
	if (errno == ENOTSUP || errno == EOPNOTSUPP)
		__atomic_store_n(&fs->stamp_ok, false, __ATOMIC_RELAXED);
	return false;
}

int fs_inode_fsync(struct fs *fs, struct fs_inode *in, bool datasync)
{
	struct fs_inode *row;
	int res = 0;

	g_mutex_lock(&in->lock);
	/* the inode row, its name and everything committed before them;
	 * fdatasync: the size lives in the backing file, times can wait;
	 * fsync of a file: its times go with its data (inode_stamp), and its
	 * row stays to be stored at eviction or unmount */
	row = !datasync && in->attr_dirty ? in : NULL;
	if (in->fd >= 0 && !fs->ro) {
		/* a preallocation past EOF (fallocate KEEP_SIZE) is told from
		 * one a crash cut short by the stamp (rec_check_file): an
		 * fdatasync stamps it too */
		uint64_t past = in->rsv_loaded ?
			rsv_map_count_present(&in->rsv, rsv_page_up(in->size), RSV_MAX_PAGES) :
			FS_STAMP_PAST_UNKNOWN;

		if ((row || past != in->stamp_past) && inode_stamp(fs, in, past))
			row = NULL;
		else if (past != in->stamp_past)
			row = in;	/* no stamp: the row holds rsv_pages */
		res = cache_file_sync(fs->cache, &in->cf, in->fd, datasync);
	}
	if (res == 0)
		res = fs_meta_sync(fs, row);
	g_mutex_unlock(&in->lock);
	return res;
}
