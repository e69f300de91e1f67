/* fs/store.c — the store on disk: layout, locking, parameters, backing
 * files, and recovery (shared by mount after a crash and by fsck). */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/fiemap.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/statvfs.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "fs_i.h"

void fs_backing_name(fuse_ino_t ino, char *buf, size_t len)
{
	snprintf(buf, len, "%02x/%" PRIx64, (unsigned)(ino & 0xff), (uint64_t)ino);
}

/* errno of a failed open of a backing file: the daemon holds one per open
 * file, and its running out of descriptors (EMFILE) is, for the caller, the
 * system's table being full (ENFILE), not its own. */
static int backing_errno(void)
{
	return errno == EMFILE ? -ENFILE : -errno;
}

int fs_backing_open(struct fs *fs, fuse_ino_t ino, int flags)
{
	char name[64];
	int fd;

	fs_backing_name(ino, name, sizeof(name));
	fd = openat(fs->data_fd, name, flags | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return backing_errno();
	return fd;
}

int fs_backing_unlink(struct fs *fs, fuse_ino_t ino)
{
	char name[64];

	fs_backing_name(ino, name, sizeof(name));
	if (unlinkat(fs->data_fd, name, 0) < 0 && errno != ENOENT)
		return -errno;
	return 0;
}

/* ---- spare backing files ---------------------------------------------
 * A deleted file's backing file is emptied and kept in data/free/ (named by
 * a hex id) rather than unlinked, and a create takes one back by rename.
 * Allocating an inode is the dearest part of a create on the backing
 * filesystem (ext4 without a journal scans past every inode freed in the
 * last half minute), and freeing one is the dearest part of an unlink;
 * churn of small files pays for neither.  Spares hold no blocks (a file
 * is emptied before it moves to free/); one that does, put there by hand or
 * by an older reservefs, is removed at mount and reported by fsck.  The reaper also keeps a few new ones ready, so
 * that even a create that finds no deleted file's spare does not allocate
 * a backing inode on the caller's path: O_TMPFILE files, held open and
 * nameless (a crash leaves nothing behind), linked into place by a create.
 * (Made in a directory of their own, new spares would hold its lock through
 * the inode allocation, and creates renaming out of it would queue.) */
#define SPARE_MAX 65536
#define SPARE_LOW 32		/* fewer left: a create asks the reaper for more */
#define SPARE_FILL 64		/* the reaper makes new ones up to this many */
#define REAP_STOP ((gpointer)(uintptr_t)1)
#define REAP_FILL ((gpointer)(uintptr_t)2)
/* A delete waits while the files queued for the reaper hold more pages
 * than the capacity (the backing disk then holds at most twice that), or
 * while this many files are queued.  Freeing blocks can be far slower than
 * deleting a file (ext4 mounted -o discard waits for the device on each
 * extent); without a bound a 24 MiB store once held 4 GiB there.  The count
 * is high enough that deletes of small files are not held to the reaper's
 * pace (with 1024, unlinks of 4 KiB files fell from 15-18k/s to 3k/s here,
 * the bare disk's rate): it bounds the backing inodes and the orphans a
 * crash leaves for the next mount, as many as data/free/ may keep. */
#define REAP_BEHIND_MAX SPARE_MAX

struct reap_item {
	fuse_ino_t ino;
	uint64_t pages;		/* reserved pages its backing file holds */
};

/* spare_lock held: true (and the reaper counts as asked) when both pools
 * run low and the reaper is to make new spares; the caller then pushes
 * REAP_FILL, after dropping the lock. */
static bool backing_want_fill(struct fs *fs)
{
	if (fs->free_fd < 0 || !fs->fresh_ok || fs->spare_filling ||
	    fs->spares->len + fs->fresh->len >= SPARE_LOW)
		return false;
	return fs->spare_filling = true;
}

/* The newest element of @pool (fs->spares: ids in free/, or fs->fresh:
 * nameless fds) into @out; false when it is empty. */
static bool backing_pool_pop(struct fs *fs, GArray *pool, void *out)
{
	guint size = g_array_get_element_size(pool);
	bool got, fill;

	g_mutex_lock(&fs->spare_lock);
	got = pool->len > 0;
	if (got) {
		memcpy(out, pool->data + (pool->len - 1) * size, size);
		g_array_set_size(pool, pool->len - 1);
	}
	fill = backing_want_fill(fs);
	g_mutex_unlock(&fs->spare_lock);
	if (fill)
		g_async_queue_push(fs->reap, REAP_FILL);
	return got;
}

static void backing_pool_push(struct fs *fs, GArray *pool, const void *val)
{
	g_mutex_lock(&fs->spare_lock);
	g_array_append_vals(pool, val, 1);
	g_mutex_unlock(&fs->spare_lock);
}

/* Empty: no size and no blocks (KEEP_SIZE preallocations included).  @fd
 * and @name as for fstatat(); a name is not followed. */
static bool backing_empty(int fd, const char *name)
{
	struct stat st;

	return fstatat(fd, name, &st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) == 0 &&
	       S_ISREG(st.st_mode) && st.st_size == 0 && st.st_blocks == 0;
}

int fs_backing_create(struct fs *fs, fuse_ino_t ino)
{
	char to[64], from[32];
	uint64_t id;
	int fd;

	fs_backing_name(ino, to, sizeof(to));
	while (backing_pool_pop(fs, fs->spares, &id)) {
		snprintf(from, sizeof(from), "%" PRIx64, id);
		if (renameat2(fs->free_fd, from, fs->data_fd, to, RENAME_NOREPLACE) < 0) {
			if (errno == EEXIST) {
				backing_pool_push(fs, fs->spares, &id);
				return -EEXIST;
			}
			continue;	/* gone from free/: take the next */
		}
		fd = openat(fs->data_fd, to, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
		if (fd < 0) {
			fd = backing_errno();
			unlinkat(fs->data_fd, to, 0);
		}
		return fd;
	}
	while (backing_pool_pop(fs, fs->fresh, &fd)) {
		/* linkat(AT_EMPTY_PATH) would need CAP_DAC_READ_SEARCH */
		snprintf(from, sizeof(from), "/proc/self/fd/%d", fd);
		if (linkat(AT_FDCWD, from, fs->data_fd, to, AT_SYMLINK_FOLLOW) == 0)
			return fd;
		if (errno == EEXIST) {
			backing_pool_push(fs, fs->fresh, &fd);
			return -EEXIST;
		}
		/* no /proc to link through, or not allowed: stop making them */
		if (errno == ENOENT || errno == EPERM || errno == EACCES || errno == EXDEV)
			__atomic_store_n(&fs->fresh_ok, false, __ATOMIC_RELAXED);
		close(fd);
	}
	return fs_backing_open(fs, ino, O_RDWR | O_CREAT | O_EXCL);
}

/* The backing file of deleted inode @ino goes to free/, emptied, while
 * there is room; otherwise it is unlinked. */
static void backing_retire(struct fs *fs, fuse_ino_t ino)
{
	char name[64], to[24];
	uint64_t id = 0;
	bool room;
	int fd;

	g_mutex_lock(&fs->spare_lock);
	room = fs->free_fd >= 0 && fs->spares->len < SPARE_MAX;
	if (room)
		id = fs->spare_next++;
	g_mutex_unlock(&fs->spare_lock);
	if (!room) {
		fs_backing_unlink(fs, ino);
		return;
	}
	/* emptied before it takes its place in free/: a spare never holds
	 * data, not even while a crash interrupts this */
	fs_backing_name(ino, name, sizeof(name));
	snprintf(to, sizeof(to), "%" PRIx64, id);
	fd = openat(fs->data_fd, name, O_WRONLY | O_TRUNC | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0 && errno == ENOENT)
		return;
	if (fd >= 0)
		fremovexattr(fd, FS_STAMP_XATTR);	/* its last fsync's times */
	if (fd < 0 || !backing_empty(fd, "") ||
	    renameat2(fs->data_fd, name, fs->free_fd, to, RENAME_NOREPLACE) < 0)
		fs_backing_unlink(fs, ino);
	else
		backing_pool_push(fs, fs->spares, &id);
	if (fd >= 0)
		close(fd);
}

/* Makes new spares up to SPARE_FILL, giving way to deletes waiting. */
static void backing_spares_fill(struct fs *fs)
{
	bool more = true;
	int fd;

	while (more && g_async_queue_length(fs->reap) <= 0) {
		g_mutex_lock(&fs->spare_lock);
		more = fs->spares->len + fs->fresh->len < SPARE_FILL;
		g_mutex_unlock(&fs->spare_lock);
		if (!more)
			break;
		fd = openat(fs->data_fd, ".", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
		if (fd < 0) {
			/* no O_TMPFILE on the backing filesystem: stop making
			 * them; out of inodes or fds: creates make their own
			 * (and tell) until the next fill */
			if (errno == EOPNOTSUPP || errno == EISDIR || errno == EINVAL)
				__atomic_store_n(&fs->fresh_ok, false, __ATOMIC_RELAXED);
			break;
		}
		backing_pool_push(fs, fs->fresh, &fd);
	}
	g_mutex_lock(&fs->spare_lock);
	fs->spare_filling = false;
	g_mutex_unlock(&fs->spare_lock);
}

/* Takes in the spares a previous mount left in free/ (creating the
 * directory in a store that has none), removing any that hold data. */
static void backing_spares_load(struct fs *fs)
{
	DIR *dir;
	struct dirent *de;
	int dfd;

	fs->spares = g_array_new(FALSE, FALSE, sizeof(uint64_t));
	fs->fresh = g_array_new(FALSE, FALSE, sizeof(int));
	fs->fresh_ok = true;
	fs->spare_next = 1;
	fs->free_fd = -1;
	if (fs->ro || (mkdirat(fs->data_fd, "free", 0700) < 0 && errno != EEXIST))
		return;
	fs->free_fd = openat(fs->data_fd, "free", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fs->free_fd < 0 || (dfd = dup(fs->free_fd)) < 0 || !(dir = fdopendir(dfd)))
		return;
	while ((de = readdir(dir))) {
		char *end;
		uint64_t id = g_ascii_strtoull(de->d_name, &end, 16);

		if (de->d_name[0] == '.')
			continue;
		if (!*end && id > 0 && backing_empty(fs->free_fd, de->d_name) &&
		    fs->spares->len < SPARE_MAX) {
			g_array_append_val(fs->spares, id);
			fs->spare_next = MAX(fs->spare_next, id + 1);
		} else {
			unlinkat(fs->free_fd, de->d_name, 0);
		}
	}
	closedir(dir);
}

static gpointer backing_reaper(gpointer data)
{
	struct fs *fs = data;
	gpointer item;

	while ((item = g_async_queue_pop(fs->reap)) != REAP_STOP) {
		struct reap_item *it = item;

		if (item == REAP_FILL) {
			backing_spares_fill(fs);
			continue;
		}
		backing_retire(fs, it->ino);
		g_mutex_lock(&fs->reap_lock);
		__atomic_add_fetch(&fs->reap_done, 1, __ATOMIC_RELEASE);
		__atomic_sub_fetch(&fs->reap_pages, it->pages, __ATOMIC_RELAXED);
		g_cond_broadcast(&fs->reap_cond);
		g_mutex_unlock(&fs->reap_lock);
		g_free(it);
	}
	return NULL;
}

/* reap_lock held */
static bool backing_reap_behind(struct fs *fs, uint64_t pages)
{
	uint64_t behind = fs->reap_queued - fs->reap_done;

	return behind > 0 && (behind >= REAP_BEHIND_MAX ||
			      fs->reap_pages + pages > rsv_capacity_pages(&fs->ledger));
}

void fs_backing_reap(struct fs *fs, fuse_ino_t ino, uint64_t pages, bool may_wait)
{
	struct reap_item *it;

	if (!fs->reaper) {
		fs_backing_unlink(fs, ino);
		return;
	}
	/* The ledger has these pages back already; their blocks must not
	 * pile up on the backing disk faster than the reaper frees them. */
	g_mutex_lock(&fs->reap_lock);
	while (may_wait && backing_reap_behind(fs, pages))
		g_cond_wait(&fs->reap_cond, &fs->reap_lock);
	fs->reap_queued++;
	__atomic_add_fetch(&fs->reap_pages, pages, __ATOMIC_RELAXED);
	g_mutex_unlock(&fs->reap_lock);
	/* inode numbers are never reused (AUTOINCREMENT): no race with a new
	 * file of the same number */
	it = g_new(struct reap_item, 1);
	it->ino = ino;
	it->pages = pages;
	g_async_queue_push(fs->reap, it);
}

uint64_t fs_backing_reaped(struct fs *fs)
{
	/* before every allocation of a reservation: no lock */
	return __atomic_load_n(&fs->reap_done, __ATOMIC_ACQUIRE);
}

bool fs_backing_reap_wait(struct fs *fs, uint64_t since)
{
	uint64_t target;
	bool freed;

	if (!fs->reaper)
		return false;
	g_mutex_lock(&fs->reap_lock);
	target = fs->reap_queued;
	while (fs->reap_done < target)
		g_cond_wait(&fs->reap_cond, &fs->reap_lock);
	freed = fs->reap_done != since;
	g_mutex_unlock(&fs->reap_lock);
	return freed;
}

bool fs_backing_reap_pending(struct fs *fs)
{
	return fs->reaper && __atomic_load_n(&fs->reap_pages, __ATOMIC_RELAXED) > 0;
}

void fs_backing_reaper_start(struct fs *fs)
{
	fs->reap = g_async_queue_new();
	backing_spares_load(fs);
	if (backing_want_fill(fs))	/* no thread yet: spare_lock not needed */
		g_async_queue_push(fs->reap, REAP_FILL);
	fs->reaper = g_thread_new("reaper", backing_reaper, fs);
	if (fs->reap_later) {
		for (guint i = 0; i + 1 < fs->reap_later->len; i += 2)
			fs_backing_reap(fs, g_array_index(fs->reap_later, uint64_t, i),
					g_array_index(fs->reap_later, uint64_t, i + 1), false);
		g_array_free(fs->reap_later, TRUE);
		fs->reap_later = NULL;
	}
}

void fs_backing_reaper_stop(struct fs *fs)
{
	if (!fs->reaper)
		return;
	g_async_queue_push(fs->reap, REAP_STOP);
	g_thread_join(fs->reaper);
	fs->reaper = NULL;
	g_async_queue_unref(fs->reap);
	fs->reap = NULL;
	if (fs->free_fd >= 0)
		close(fs->free_fd);
	fs->free_fd = -1;
	g_array_free(fs->spares, TRUE);
	fs->spares = NULL;
	for (guint i = 0; i < fs->fresh->len; i++)
		close(g_array_index(fs->fresh, int, i));
	g_array_free(fs->fresh, TRUE);
	fs->fresh = NULL;
}

/* Pages with blocks allocated (written, unwritten or delayed) in the backing
 * file: that is exactly what we reserved, since we never let a byte reach
 * the backing file without a reservation and make every reservation real. */
static int backing_scan_seek(int fd, struct rsv_map *map)
{
	off_t data = 0, hole;

	for (;;) {
		data = lseek(fd, data, SEEK_DATA);
		if (data < 0)
			return errno == ENXIO ? 0 : -errno;
		hole = lseek(fd, data, SEEK_HOLE);
		if (hole < 0)
			return -errno;
		rsv_map_add(map, rsv_page_down(data), rsv_page_up(hole));
		data = hole;
	}
}

int fs_backing_scan(int fd, struct rsv_map *map)
{
	enum { N = 256 };
	struct fiemap *fm = g_malloc0(sizeof(*fm) + N * sizeof(struct fiemap_extent));
	uint64_t start = 0;
	int res = 0;

	rsv_map_clear(map);
	for (;;) {
		memset(fm, 0, sizeof(*fm));
		fm->fm_start = start;
		fm->fm_length = FIEMAP_MAX_OFFSET - start;
		fm->fm_extent_count = N;
		if (ioctl(fd, FS_IOC_FIEMAP, fm) < 0) {
			res = (errno == EOPNOTSUPP || errno == ENOTTY) ?
				backing_scan_seek(fd, map) : -errno;
			break;
		}
		if (fm->fm_mapped_extents == 0)
			break;
		for (unsigned i = 0; i < fm->fm_mapped_extents; i++) {
			struct fiemap_extent *e = &fm->fm_extents[i];
			rsv_map_add(map, rsv_page_down(e->fe_logical),
				    rsv_page_up(e->fe_logical + e->fe_length));
			start = e->fe_logical + e->fe_length;
			if (e->fe_flags & FIEMAP_EXTENT_LAST)
				goto out;
		}
	}
out:
	g_free(fm);
	return res;
}

int fs_parse_params(const char *size, const char *nr_inodes, const char *reserve,
		    const char *store, struct fs_params *p)
{
	struct statvfs sv;

	if (statvfs(store, &sv) < 0) {
		fprintf(stderr, "reservefs: %s: %s\n", store, strerror(errno));
		return -errno;
	}
	if (size && rsv_parse_size(size, (uint64_t)sv.f_blocks * sv.f_frsize, &p->size_pages) < 0) {
		fprintf(stderr, "reservefs: bad value for option size=%s "
			"(bytes with k/m/g/t/p/e suffix, or N%%)\n", size);
		return -EINVAL;
	}
	if (nr_inodes && rsv_parse_count(nr_inodes, sv.f_files ? sv.f_files : 1 << 20,
					 &p->nr_inodes) < 0) {
		fprintf(stderr, "reservefs: bad value for option nr_inodes=%s "
			"(a count with k/m/g suffix, or N%%)\n", nr_inodes);
		return -EINVAL;
	}
	if (reserve && rsv_parse_mode(reserve, &p->mode) < 0) {
		fprintf(stderr, "reservefs: bad value for option reserve=%s (eof or write)\n",
			reserve);
		return -EINVAL;
	}
	return 0;
}

int fs_parse_super_u64(const char *v, uint64_t min, uint64_t max, uint64_t *out)
{
	guint64 n;

	/* digits only: no sign, no blanks, in range */
	if (!v || !g_ascii_string_to_unsigned(v, 10, min, max, &n, NULL))
		return -EINVAL;
	*out = n;
	return 0;
}

/* A superblock record into *val (NULL when there is none): 0, -EINVAL
 * when it is missing, or the failure. */
static int store_super(struct fs *fs, const char *key, char **val)
{
	int res = fs_meta_get_super(fs, key, val);

	if (res < 0)
		*val = NULL;
	return res == -ENOENT ? -EINVAL : res;
}

/* The store's parameters, strictly: a capacity of 0 or of 2^64 bytes, or
 * no inodes at all, is damage, not a setting; any inode limit nr_inodes=
 * takes (up to 2^64-1) is one.  On -EINVAL, *key names the
 * record and *val holds its value (NULL when it is missing). */
static int store_params(struct fs *fs, struct fs_params *p, const char **key, char **val)
{
	int res;

	if ((res = store_super(fs, *key = "size_pages", val)) < 0)
		return res;
	if (fs_parse_super_u64(*val, 1, RSV_MAX_PAGES - 1, &p->size_pages) < 0)
		return -EINVAL;
	g_free(*val);
	if ((res = store_super(fs, *key = "nr_inodes", val)) < 0)
		return res;
	if (fs_parse_super_u64(*val, 1, UINT64_MAX, &p->nr_inodes) < 0)
		return -EINVAL;
	g_free(*val);
	if ((res = store_super(fs, *key = "reserve", val)) < 0)
		return res;
	if (rsv_parse_mode(*val, &p->mode) < 0)
		return -EINVAL;
	g_free(*val);
	*val = NULL;
	return 0;
}

/* The counter inode numbers and dentry ids come from ("next_ino", format
 * 2) must lie above every number handed out (*top), or creates fail: 0, or
 * -EINVAL with *val its value (NULL when missing), or another -errno. */
static int store_next_id(struct fs *fs, char **val, uint64_t *top)
{
	uint64_t next, ino, id;
	int res;

	if ((res = fs_meta_count(fs, "SELECT coalesce(max(ino), 0) FROM inodes", &ino)) < 0 ||
	    (res = fs_meta_count(fs, "SELECT coalesce(max(id), 0) FROM dentries", &id)) < 0) {
		*val = NULL;
		return res;
	}
	*top = MAX(ino, id);
	if ((res = store_super(fs, "next_ino", val)) < 0)
		return res;
	if (fs_parse_super_u64(*val, FS_ROOT_INO + 1, INT64_MAX, &next) < 0)
		return -EINVAL;
	return next > *top ? 0 : -EINVAL;
}

int fs_store_check_next_id(struct fs *fs, bool fix, GString *report)
{
	uint64_t top;
	char *v = NULL, buf[24];
	int res;

	if (fs->format < 2)
		return 0;	/* made by the upgrade */
	if ((res = store_next_id(fs, &v, &top)) != -EINVAL) {
		g_free(v);
		return res;
	}
	snprintf(buf, sizeof(buf), "%" PRIu64, top + 1);
	if (v)
		g_string_append_printf(report, "superblock: next_ino '%s' is not above every "
				       "inode number and entry id", v);
	else
		g_string_append(report, "superblock: next_ino is missing");
	g_string_append_printf(report, "%s%s\n", fix ? ": set to " : "", fix ? buf : "");
	g_free(v);
	if (fix && (res = fs_meta_set_super(fs, "next_ino", buf)) < 0)
		return res;
	return 1;
}

/* The superblock's numbers into fs->params, before anything uses them:
 * one line saying which record is damaged.  fsck checks next_ino itself
 * (fs_store_check_next_id) and can repair it. */
static int store_check_super(struct fs *fs, const char *store)
{
	const char *key;
	uint64_t top;
	char *val;
	int res = store_params(fs, &fs->params, &key, &val);

	if (res == 0 && fs->format >= 2 && !fs->fsck) {
		key = "next_ino";
		res = store_next_id(fs, &val, &top);
	}
	if (res == -EINVAL)
		fprintf(stderr, "reservefs: %s: corrupt superblock (%s%s%s)\n", store, key,
			val ? "=" : " missing", val ? val : "");
	else if (res < 0)
		fprintf(stderr, "reservefs: %s: cannot read the superblock (%s)\n", store,
			strerror(-res));
	g_free(val);
	return res;
}

int fs_store_save_params(struct fs *fs, const struct fs_params *p)
{
	char buf[32];
	int res;

	snprintf(buf, sizeof(buf), "%" PRIu64, p->size_pages);
	if ((res = fs_meta_set_super(fs, "size_pages", buf)) < 0)
		return res;
	snprintf(buf, sizeof(buf), "%" PRIu64, p->nr_inodes);
	if ((res = fs_meta_set_super(fs, "nr_inodes", buf)) < 0)
		return res;
	return fs_meta_set_super(fs, "reserve", rsv_mode_name(p->mode));
}

/* Takes the store's lock.  Held by a live mount: busy at once.  Held by a
 * daemon whose mount is gone, it is still writing its last state back (after
 * many deletes, emptying their backing files can take a while), or by fsck:
 * wait for it, up to STORE_LOCK_WAIT seconds, saying so after the first
 * when stderr is a terminal. */
#define STORE_LOCK_WAIT 120
static int store_lock(struct fs *fs, const char *store, bool ro)
{
	int op = (ro ? LOCK_SH : LOCK_EX) | LOCK_NB;
	char *live;

	for (int i = 0; flock(fs->lock_fd, op) < 0; i++) {
		if (errno != EWOULDBLOCK) {
			fprintf(stderr, "reservefs: %s/lock: %s\n", store, strerror(errno));
			return -errno;
		}
		if ((live = fs_mount_find_live(store))) {
			fprintf(stderr, "reservefs: %s: store is in use: mounted on %s\n", store, live);
			g_free(live);
			return -EBUSY;
		}
		/* to a person; scripts (xfstests compares output) see nothing */
		if (i == 20 && isatty(STDERR_FILENO))
			fprintf(stderr, "reservefs: %s: waiting for the reservefs that holds it "
				"(a daemon finishing after its unmount, or fsck)\n", store);
		if (i == STORE_LOCK_WAIT * 20) {
			fprintf(stderr, "reservefs: %s: store is in use by another reservefs "
				"(not mounted: fsck, or a daemon still finishing)\n", store);
			return -EBUSY;
		}
		g_usleep(50 * 1000);
	}
	return 0;
}

/* The tables and columns we read, in format 1 and 2 alike: a meta.db that
 * lacks one (damaged from outside) is refused here, before recovery could
 * act on a query that fails.  (inodes.flags is added by a read-write open
 * of an older store.) */
static int store_check_schema(struct fs *fs, const char *store)
{
	static const char *const probes[] = {
		"SELECT key, value FROM super LIMIT 0",
		"SELECT ino, gen, mode, uid, gid, nlink, rdev, size, atime, mtime, ctime,"
		" btime, parent, rsv_pages, link FROM inodes LIMIT 0",
		"SELECT parent, name, id, ino FROM dentries LIMIT 0",
		"SELECT ino, name, value FROM xattrs LIMIT 0",
		"SELECT flags FROM inodes LIMIT 0",
	};
	size_t n = G_N_ELEMENTS(probes) - (fs->ro ? 1 : 0);

	for (size_t i = 0; i < n; i++) {
		sqlite3_stmt *st;

		if (sqlite3_prepare_v2(fs->db, probes[i], -1, &st, NULL) != SQLITE_OK) {
			fprintf(stderr, "reservefs: %s/meta.db: corrupt (%s)\n", store,
				sqlite3_errmsg(fs->db));
			return -EIO;
		}
		sqlite3_finalize(st);
	}
	return 0;
}

/* Whether we can write all that a read-write open of the store writes: the
 * store directory (SQLite makes meta.db-wal and -shm there), data/, meta.db,
 * and the -wal and -shm an earlier open left.  SQLite opens a meta.db it cannot
 * write read-only without a word, and makes the -shm as read-only as
 * meta.db: a mount failed at its first write, and the -shm kept later mounts
 * read-only after meta.db was writable again.  0, or -errno with the path
 * at fault in *what (the store directory: "."). */
int fs_store_writable(const char *store, const char **what)
{
	static const char *const files[] = { ".", "data", "meta.db", "meta.db-wal",
					     "meta.db-shm" };
	int dfd = open(store, O_RDONLY | O_DIRECTORY | O_CLOEXEC), res = 0;

	*what = files[0];
	if (dfd < 0)
		return -errno;
	for (size_t i = 0; i < G_N_ELEMENTS(files) && res == 0; i++)
		if (faccessat(dfd, files[i], W_OK, 0) < 0 && errno != ENOENT) {
			res = -errno;
			*what = files[i];
		}
	close(dfd);
	return res;
}

/* Opens STORE: its lock, data/ and meta.db.  With @create, makes them.
 * Errors are printed here, one line each. */
int fs_store_open(struct fs *fs, const char *store, bool ro, bool create)
{
	const char *what;
	char *path;
	char *v = NULL;
	int res;

	fs->store = realpath(store, NULL);
	if (!fs->store) {
		res = -errno;
		fprintf(stderr, "reservefs: %s: %s\n", store, strerror(errno));
		return res;
	}
	fs->ro = ro;
	fs->lock_fd = fs->data_fd = fs->free_fd = -1;
	path = g_build_filename(fs->store, "meta.db", NULL);
	if (!create && access(path, F_OK) < 0) {
		fprintf(stderr, "reservefs: %s: not a reservefs store (no meta.db; "
			"create one with 'reservefs mkfs %s')\n", store, store);
		g_free(path);
		return -ENOENT;
	}
	g_free(path);
	/* The lock file holds nothing: a store copied without it gets a new
	 * one.  On read-only media a read-only open does without it: nobody
	 * can change the store there, so there is nobody to keep out. */
	path = g_build_filename(fs->store, "lock", NULL);
	fs->lock_fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fs->lock_fd < 0 && errno == ENOENT)
		fs->lock_fd = open(path, O_CREAT | O_RDONLY | O_CLOEXEC, 0644);
	g_free(path);
	if (fs->lock_fd < 0 && !(ro && errno == EROFS)) {
		res = -errno;
		fprintf(stderr, "reservefs: %s/lock: %s\n", store, strerror(errno));
		return res;
	}
	if (fs->lock_fd >= 0 && (res = store_lock(fs, store, ro)) < 0)
		return res;
	if (create) {
		if (mkdirat(AT_FDCWD, path = g_build_filename(fs->store, "data", NULL), 0700) < 0 &&
		    errno != EEXIST) {
			res = -errno;
			fprintf(stderr, "reservefs: %s: %s\n", path, strerror(errno));
			g_free(path);
			return res;
		}
		g_free(path);
	}
	path = g_build_filename(fs->store, "data", NULL);
	fs->data_fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fs->data_fd < 0) {
		res = -errno;
		fprintf(stderr, "reservefs: %s: %s\n", path, strerror(errno));
		g_free(path);
		return res;
	}
	g_free(path);
	if (create) {
		for (int i = 0; i < 256; i++) {
			char d[4];
			snprintf(d, sizeof(d), "%02x", i);
			if (mkdirat(fs->data_fd, d, 0700) < 0 && errno != EEXIST) {
				res = -errno;
				fprintf(stderr, "reservefs: %s/data/%s: %s\n", store, d, strerror(errno));
				return res;
			}
		}
	}
	if (!ro && (res = fs_store_writable(fs->store, &what)) < 0) {
		/* what can still read it: fsck --repair is the only writer
		 * that is not a mount */
		fprintf(stderr, "reservefs: %s: store is not writable (%s%s%s: %s); %s\n",
			store, store, strcmp(what, ".") ? "/" : "",
			strcmp(what, ".") ? what : "", strerror(-res),
			fs->fsck ? "check it without --repair" : "mount with -o ro");
		return -EROFS;
	}
	res = fs_meta_open(fs, create);
	if (res < 0) {
		/* damage, or a disk SQLite cannot write its WAL on (a full one) */
		int ec = fs->db ? sqlite3_errcode(fs->db) & 0xff : SQLITE_CANTOPEN;
		bool corrupt = ec == SQLITE_CORRUPT || ec == SQLITE_NOTADB;
		struct statvfs sv;
		bool full = !corrupt && fstatvfs(fs->data_fd, &sv) == 0 &&
			    (uint64_t)sv.f_bavail * sv.f_frsize < (1u << 20);

		fprintf(stderr, "reservefs: %s/meta.db: %s (%s)%s\n", store,
			corrupt ? "corrupt or not a reservefs store" :
			res == -EIO ? "cannot open" : strerror(-res), fs_meta_errmsg(fs),
			full ? ": the disk that holds the store is full" : "");
		return res;
	}
	if (create)
		return 0;
	res = sqlite3_exec(fs->db, "SELECT 1 FROM super LIMIT 1", NULL, NULL, NULL) == SQLITE_OK ?
	      fs_meta_get_super(fs, "format", &v) : -EIO;
	if (res < 0) {
		fprintf(stderr, "reservefs: %s/meta.db: corrupt or not a reservefs store "
			"(no format record)\n", store);
		return -EINVAL;
	}
	/* format 1 is read as it is and upgraded by a read-write mount */
	fs->format = strtol(v, NULL, 10);
	if (fs->format < 1 || fs->format > FS_FORMAT_VERSION) {
		fprintf(stderr, "reservefs: %s: store format version %s, this reservefs "
			"reads versions 1 to %d\n", store, v, FS_FORMAT_VERSION);
		g_free(v);
		return -EPROTO;
	}
	g_free(v);
	{
		sqlite3_stmt *st;
		bool ok = false;
		if (sqlite3_prepare_v2(fs->db, "PRAGMA quick_check", -1, &st, NULL) == SQLITE_OK) {
			ok = sqlite3_step(st) == SQLITE_ROW &&
			     strcmp((const char *)sqlite3_column_text(st, 0), "ok") == 0;
			sqlite3_finalize(st);
		}
		if (!ok) {
			fprintf(stderr, "reservefs: %s/meta.db: corrupt (integrity check "
				"failed: %s)\n", store, sqlite3_errmsg(fs->db));
			return -EIO;
		}
	}
	if ((res = store_check_schema(fs, store)) < 0)
		return res;
	return store_check_super(fs, store);
}

void fs_store_close(struct fs *fs)
{
	fs_meta_close(fs);
	if (fs->data_fd >= 0)
		close(fs->data_fd);
	if (fs->lock_fd >= 0)
		close(fs->lock_fd);
	fs->data_fd = fs->lock_fd = -1;
	free(fs->store);
	fs->store = NULL;
}

/* ---- recovery -------------------------------------------------------- */

static void problem(GString *report, int *problems, const char *fmt, ...) G_GNUC_PRINTF(3, 4);
static void problem(GString *report, int *problems, const char *fmt, ...)
{
	va_list ap;

	(*problems)++;
	if (!report)
		return;
	va_start(ap, fmt);
	g_string_append_vprintf(report, fmt, ap);
	va_end(ap);
	g_string_append_c(report, '\n');
}

struct rec_inode {
	fuse_ino_t ino;
	mode_t mode;
	uint64_t nlink;
	uint64_t size;
	uint64_t rsv_pages;
	uint64_t xattr_bytes;	/* its xattrs' names and values (fs_xattr_pages) */
	int64_t ctime;
	uint64_t links;		/* dentries naming it */
	uint64_t subdirs;	/* directories: child directories */
	bool has_backing;
	bool freed;		/* an orphan, deleted in this recovery */
	uint64_t holes;		/* eof mode: pages below EOF to reserve (rec_fill_holes) */
};

/* One recovery: what it found and what it is to do once its transaction
 * has committed. */
struct rec {
	struct fs *fs;
	bool fix, clean;
	GString *report;
	int *problems;
	GHashTable *inodes;	/* ino -> struct rec_inode */
	GPtrArray *doomed;	/* names under data/ to remove after the commit */
};

static int rec_exec(struct rec *rc, const char *sql)
{
	return rc->fix ? fs_meta_exec(rc->fs, sql) : 0;
}

/* The rows of a query that must succeed: nothing is decided on a table
 * that could not be read (a damaged schema would make every inode look
 * orphaned). */
static int rec_query(struct fs *fs, const char *sql, sqlite3_stmt **st)
{
	int rc = sqlite3_prepare_v2(fs->db, sql, -1, st, NULL);

	if (rc != SQLITE_OK) {
		*st = NULL;
		return -EIO;
	}
	return 0;
}

static int rec_done(sqlite3_stmt *st, int rc)
{
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : -EIO;
}

static int rec_load_inodes(struct rec *rc)
{
	sqlite3_stmt *st;
	int res, step;

	if ((res = rec_query(rc->fs, "SELECT ino, mode, nlink, size, rsv_pages, ctime, "
			     FS_XATTR_BYTES_SQL("i.ino") " FROM inodes i", &st)) < 0)
		return res;
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		struct rec_inode *r = g_new0(struct rec_inode, 1);
		r->ino = sqlite3_column_int64(st, 0);
		r->mode = sqlite3_column_int64(st, 1);
		r->nlink = sqlite3_column_int64(st, 2);
		r->size = sqlite3_column_int64(st, 3);
		r->rsv_pages = sqlite3_column_int64(st, 4);
		r->ctime = sqlite3_column_int64(st, 5);
		r->xattr_bytes = sqlite3_column_int64(st, 6);
		g_hash_table_insert(rc->inodes, &r->ino, r);
	}
	return rec_done(st, step);
}

/* dentries: dangling ones go; the rest count links */
static int rec_count_links(struct rec *rc)
{
	sqlite3_stmt *st;
	int res, step;

	if ((res = rec_query(rc->fs, "SELECT id, parent, ino, name FROM dentries", &st)) < 0)
		return res;
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		int64_t id = sqlite3_column_int64(st, 0);
		fuse_ino_t parent = sqlite3_column_int64(st, 1), ino = sqlite3_column_int64(st, 2);
		struct rec_inode *p = g_hash_table_lookup(rc->inodes, &parent);
		struct rec_inode *r = g_hash_table_lookup(rc->inodes, &ino);

		if (!p || !S_ISDIR(p->mode) || !r || r->ino == FS_ROOT_INO) {
			problem(rc->report, rc->problems, "dentry %" PRId64 " (parent %" PRIu64
				", inode %" PRIu64 ") is dangling%s", id, (uint64_t)parent,
				(uint64_t)ino, rc->fix ? ": removed" : "");
			if (rc->fix && (res = fs_meta_unlink(rc->fs, parent,
					(const char *)sqlite3_column_text(st, 3))) < 0) {
				sqlite3_finalize(st);
				return res;
			}
			continue;
		}
		r->links++;
		if (S_ISDIR(r->mode))
			p->subdirs++;
	}
	return rec_done(st, step);
}

/* orphans and link counts */
static int rec_check_nlink(struct rec *rc)
{
	GHashTableIter it;
	gpointer v;
	int res = 0;

	g_hash_table_iter_init(&it, rc->inodes);
	while (res == 0 && g_hash_table_iter_next(&it, NULL, &v)) {
		struct rec_inode *r = v;
		uint64_t want;
		char *sql;

		if (r->ino != FS_ROOT_INO && r->links == 0) {
			/* Unlinked while open, or cut loose by a crash: nobody can
			 * reach it any more, so its space comes back. */
			if (r->nlink > 0 || !rc->clean)
				problem(rc->report, rc->problems, "inode %" PRIu64 " is orphaned "
					"(nlink %" PRIu64 ")%s", (uint64_t)r->ino, r->nlink,
					rc->fix ? ": freed" : "");
			r->freed = true;
			if (!rc->fix)
				continue;
			sql = g_strdup_printf("DELETE FROM inodes WHERE ino = %" PRIu64 ";"
					      "DELETE FROM xattrs WHERE ino = %" PRIu64,
					      (uint64_t)r->ino, (uint64_t)r->ino);
			res = fs_meta_exec(rc->fs, sql);
			g_free(sql);
			continue;
		}
		want = S_ISDIR(r->mode) ? 2 + r->subdirs : r->links;
		if (r->nlink != want) {
			problem(rc->report, rc->problems, "inode %" PRIu64 " has nlink %" PRIu64
				", %" PRIu64 " expected%s", (uint64_t)r->ino, r->nlink, want,
				rc->fix ? ": fixed" : "");
			sql = g_strdup_printf("UPDATE inodes SET nlink = %" PRIu64 " WHERE ino = %"
					      PRIu64, want, (uint64_t)r->ino);
			res = rec_exec(rc, sql);
			g_free(sql);
		}
	}
	return res;
}

/* A mount's recovery leaves the backing file @name (in @dfd) of deleted
 * inode @ino to the reaper, which empties it once the mount is up, as it
 * empties any deleted file's: after a crash during a delete storm, tens of
 * thousands of those held the mount up for seconds (0.2-0.9 ms each with
 * discard).  fsck removes them itself.  False: remove it now. */
static bool rec_reap_later(struct rec *rc, int dfd, const char *name, uint64_t ino)
{
	struct stat st;
	uint64_t pair[2];

	if (rc->fs->fsck || fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
	    !S_ISREG(st.st_mode))
		return false;
	if (!rc->fs->reap_later)
		rc->fs->reap_later = g_array_new(FALSE, FALSE, sizeof(uint64_t));
	pair[0] = ino;
	pair[1] = ((uint64_t)st.st_blocks * 512 + RSV_PAGE_SIZE - 1) >> RSV_PAGE_SHIFT;
	g_array_append_vals(rc->fs->reap_later, pair, 2);
	return true;
}

/* backing files: every regular inode has one, nothing else does */
static void rec_scan_data(struct rec *rc)
{
	for (int i = 0; i < 256; i++) {
		struct dirent *de;
		char d[4];
		DIR *dir;
		int dfd;

		snprintf(d, sizeof(d), "%02x", i);
		dfd = openat(rc->fs->data_fd, d, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (dfd < 0) {
			problem(rc->report, rc->problems, "data/%s is missing%s", d,
				rc->fix ? ": recreated" : "");
			if (rc->fix)
				mkdirat(rc->fs->data_fd, d, 0700);
			continue;
		}
		dir = fdopendir(dfd);
		while ((de = readdir(dir))) {
			char *end;
			uint64_t ino;
			struct rec_inode *r;
			struct stat st;

			if (de->d_name[0] == '.')
				continue;
			ino = g_ascii_strtoull(de->d_name, &end, 16);
			r = *end ? NULL : g_hash_table_lookup(rc->inodes, &ino);
			if (r && r->freed) {
				/* an orphan's: reported with it */
				if (rc->fix && !rec_reap_later(rc, dfd, de->d_name, ino))
					g_ptr_array_add(rc->doomed, g_strdup_printf("%s/%s", d,
								de->d_name));
				continue;
			}
			if (!r || !S_ISREG(r->mode) || (ino & 0xff) != (uint64_t)i) {
				/* not ours to remove, and unlinkat could not: a
				 * directory (it was reported removed, then not
				 * repaired) */
				bool dir_ent = de->d_type == DT_DIR ||
					(de->d_type == DT_UNKNOWN &&
					 fstatat(dfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
					 S_ISDIR(st.st_mode));

				problem(rc->report, rc->problems, "data/%s/%s belongs to no file%s",
					d, de->d_name, dir_ent ? " (a directory: remove it by hand)" :
					rc->fix ? ": removed" : "");
				/* one named as ours (a delete the reaper had not
				 * finished) may go the reaper's way */
				if (rc->fix && !dir_ent && (*end || (ino & 0xff) != (uint64_t)i ||
							    !rec_reap_later(rc, dfd, de->d_name, ino)))
					g_ptr_array_add(rc->doomed, g_strdup_printf("%s/%s", d,
								de->d_name));
				continue;
			}
			r->has_backing = true;
		}
		closedir(dir);
	}
}

/* data/@name as a fresh DIR (its own offset), NULL when it cannot be read */
static DIR *rec_opendir(struct rec *rc, const char *name)
{
	int dfd = openat(rc->fs->data_fd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *dir;

	if (dfd < 0)
		return NULL;
	if (!(dir = fdopendir(dfd)))
		close(dfd);
	return dir;
}

/* data/ holds 00..ff and free/ only: anything else is removed as a stray
 * file in data/XX/ is, but a directory is left to be removed by hand */
static void rec_scan_data_top(struct rec *rc)
{
	DIR *dir = rec_opendir(rc, ".");
	struct dirent *de;

	if (!dir)
		return;
	while ((de = readdir(dir))) {
		const char *n = de->d_name;
		struct stat st;
		bool dir_ent;

		if (!strcmp(n, ".") || !strcmp(n, "..") || !strcmp(n, "free") ||
		    (strspn(n, "0123456789abcdef") == 2 && !n[2]))	/* 00..ff */
			continue;
		dir_ent = fstatat(dirfd(dir), n, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
			  S_ISDIR(st.st_mode);
		problem(rc->report, rc->problems, "data/%s is not part of the store%s", n,
			dir_ent ? " (a directory: remove it by hand)" :
			rc->fix ? ": removed" : "");
		if (rc->fix && !dir_ent)
			g_ptr_array_add(rc->doomed, g_strdup(n));
	}
	closedir(dir);
}

/* spares: empty backing files kept for reuse; one holding data is not
 * ours to keep */
static void rec_scan_spares(struct rec *rc)
{
	DIR *dir = rec_opendir(rc, "free");
	struct dirent *de;

	if (!dir)
		return;
	while ((de = readdir(dir))) {
		struct stat st;
		bool dir_ent;

		if (de->d_name[0] == '.' || backing_empty(dirfd(dir), de->d_name))
			continue;
		dir_ent = fstatat(dirfd(dir), de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
			  S_ISDIR(st.st_mode);
		problem(rc->report, rc->problems, "data/free/%s is not an empty spare%s",
			de->d_name, dir_ent ? " (a directory: remove it by hand)" :
			rc->fix ? ": removed" : "");
		if (rc->fix && !dir_ent)
			g_ptr_array_add(rc->doomed, g_strdup_printf("free/%s", de->d_name));
	}
	closedir(dir);
}

bool fs_stamp_read(int fd, struct fs_stamp *st)
{
	ssize_t n = fgetxattr(fd, FS_STAMP_XATTR, st, sizeof(*st));

	if (n == (ssize_t)FS_STAMP_V1_SIZE)
		st->past_eof = FS_STAMP_PAST_UNKNOWN;
	return n == (ssize_t)FS_STAMP_V1_SIZE || n == (ssize_t)sizeof(*st);
}

/* Whether the pages past EOF of @r's backing file were there on purpose:
 * the row held pages past its EOF (eof mode reserves every page below), or
 * its last fsync's stamp @st (NULL: none) did (or is too old to say). */
static bool rec_past_eof_known(const struct rec_inode *r, const struct fs_stamp *st)
{
	return r->rsv_pages > rsv_page_up(r->size) || (st && st->past_eof > 0);
}

/* The times an fsync left in the backing file's xattr (@st, NULL: none),
 * when they are newer than the row: the row then has not been stored since. */
static int rec_stamp(struct rec *rc, const struct fs_stamp *st, const struct rec_inode *r)
{
	char *sql;
	int res;

	if (!st || st->ctime <= r->ctime)
		return 0;
	/* after a crash this is expected; in a clean store it is not */
	if (rc->clean)
		problem(rc->report, rc->problems, "inode %" PRIu64 ": times older than its "
			"last fsync%s", (uint64_t)r->ino, rc->fix ? ": fixed" : "");
	res = rec_exec(rc, sql = g_strdup_printf(
		"UPDATE inodes SET atime = %" PRId64 ", mtime = %" PRId64 ", ctime = %" PRId64
		" WHERE ino = %" PRIu64, st->atime, st->mtime, st->ctime, (uint64_t)r->ino));
	g_free(sql);
	return res;
}

static int rec_punch_range(uint64_t start, uint64_t end, void *arg)
{
	fallocate(*(int *)arg, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
		  (off_t)start << RSV_PAGE_SHIFT, (off_t)(end - start) << RSV_PAGE_SHIFT);
	return 0;
}

/* eof mode: the holes below EOF that a reserve=write mount (or a crash)
 * left, found by rec_check_file (@total counts them reserved already), are
 * reserved all or (-ENOSPC) none: they must fit in the capacity and on the
 * backing filesystem.  A fallocate that fails all the same is given back. */
static int rec_fill_holes(struct rec *rc, uint64_t total)
{
	struct fs *fs = rc->fs;
	uint64_t need = 0, files = 0, cap = fs->params.size_pages;
	struct statvfs sv;
	GHashTableIter it;
	gpointer v;

	g_hash_table_iter_init(&it, rc->inodes);
	while (g_hash_table_iter_next(&it, NULL, &v)) {
		need += ((struct rec_inode *)v)->holes;
		files += ((struct rec_inode *)v)->holes != 0;
	}
	if (!need)
		return 0;
	if (total > cap) {
		fprintf(stderr, "reservefs: %s: reserve=eof needs %" PRIu64 " more pages for the "
			"holes below EOF in %" PRIu64 " files, and %" PRIu64 " of %" PRIu64
			" are free: mount with -o reserve=write or a larger size=\n", fs->store,
			need, files, total - need < cap ? cap - (total - need) : 0, cap);
		return -ENOSPC;
	}
	if (fstatvfs(fs->data_fd, &sv) == 0 &&
	    need > (uint64_t)sv.f_bavail * sv.f_frsize / RSV_PAGE_SIZE) {
		fprintf(stderr, "reservefs: %s: reserve=eof needs %" PRIu64 " MiB on the backing "
			"filesystem for the holes below EOF in %" PRIu64 " files, and it has %"
			PRIu64 " MiB free: mount with -o reserve=write\n", fs->store,
			need >> (20 - RSV_PAGE_SHIFT), files,
			(uint64_t)sv.f_bavail * sv.f_frsize >> 20);
		return -ENOSPC;
	}
	g_hash_table_iter_init(&it, rc->inodes);
	while (g_hash_table_iter_next(&it, NULL, &v)) {
		const struct rec_inode *r = v;
		struct rsv_map map = RSV_MAP_INIT;
		struct stat st;
		int fd, res = 0;

		if (!r->holes)
			continue;
		if ((fd = fs_backing_open(fs, r->ino, O_RDWR)) < 0)
			return fd;
		if (fstat(fd, &st) < 0 || fs_backing_scan(fd, &map) < 0) {
			res = -errno;
		} else if (fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, st.st_size) < 0) {
			res = -errno;
			rsv_map_foreach_missing(&map, 0, rsv_page_up(st.st_size), rec_punch_range,
						&fd);
		}
		if (res < 0)
			fprintf(stderr, "reservefs: %s: cannot reserve the holes below EOF of "
				"inode %" PRIu64 ": %s\n", fs->store, (uint64_t)r->ino,
				strerror(-res));
		rsv_map_clear(&map);
		close(fd);
		if (res < 0)
			return res;
	}
	return 0;
}

/* One regular file against its backing file: size and reservation.  Adds
 * its reserved pages to *pages. */
static int rec_check_file(struct rec *rc, struct rec_inode *r, uint64_t *pages)
{
	struct fs *fs = rc->fs;
	struct rsv_map map = RSV_MAP_INIT;
	struct fs_stamp stamp_buf, *stamp;
	struct stat st_b;
	uint64_t n, eof_pages;
	char name[64], *sql;
	int fd, res;

	if (!r->has_backing) {
		problem(rc->report, rc->problems, "inode %" PRIu64 " has no backing file%s",
			(uint64_t)r->ino, rc->fix ? ": recreated empty" : "");
		if (!rc->fix)
			return 0;
		fd = fs_backing_open(fs, r->ino, O_RDWR | O_CREAT | O_EXCL);
		if (fd >= 0)
			close(fd);
		r->size = 0;
		res = rec_exec(rc, sql = g_strdup_printf(
			"UPDATE inodes SET size = 0, rsv_pages = 0 WHERE ino = %" PRIu64,
			(uint64_t)r->ino));
		g_free(sql);
		return res;
	}
	/* not ours to remove: whoever put it there may want it */
	fs_backing_name(r->ino, name, sizeof(name));
	if (fstatat(fs->data_fd, name, &st_b, AT_SYMLINK_NOFOLLOW) == 0 &&
	    !S_ISREG(st_b.st_mode)) {
		problem(rc->report, rc->problems, "inode %" PRIu64 ": backing file data/%s is "
			"not a regular file", (uint64_t)r->ino, name);
		return 0;
	}
	fd = fs_backing_open(fs, r->ino, rc->fix ? O_RDWR : O_RDONLY);
	if (fd < 0 || fstat(fd, &st_b) < 0 || fs_backing_scan(fd, &map) < 0) {
		problem(rc->report, rc->problems, "inode %" PRIu64 ": backing file data/%s "
			"unreadable (%s)", (uint64_t)r->ino, name, strerror(fd < 0 ? -fd : errno));
		if (fd >= 0)
			close(fd);
		rsv_map_clear(&map);
		return 0;
	}
	/* eof mode: every page below EOF must hold a reservation; a crash
	 * or a mount in write mode can leave holes, which we fill. */
	eof_pages = rsv_page_up(st_b.st_size);
	if (fs->params.mode == RSV_MODE_EOF) {
		uint64_t missing = rsv_map_count_missing(&map, 0, eof_pages);
		if (missing) {
			if (rc->fix) {
				/* counted reserved here, reserved by rec_fill_holes */
				r->holes = missing;
				rsv_map_add(&map, 0, eof_pages);
				if (rc->clean)
					problem(rc->report, rc->problems, "inode %" PRIu64 ": %"
						PRIu64 " pages below EOF were not reserved: reserved",
						(uint64_t)r->ino, missing);
			} else {
				problem(rc->report, rc->problems, "inode %" PRIu64 ": %" PRIu64
					" pages below EOF are not reserved", (uint64_t)r->ino,
					missing);
			}
		}
	}
	stamp = fs_stamp_read(fd, &stamp_buf) ? &stamp_buf : NULL;
	/* After a crash, eof mode: pages past EOF that neither the row nor
	 * the last fsync knew are the daemon's own preallocation for an
	 * extending write the crash cut short (data_allocate_pages reserves
	 * before the write lands).  Nobody could see them, or free them but
	 * by a truncate: they go back (a truncate to the size frees every
	 * block past it; ext4 punches nothing past EOF).  Nothing past EOF can
	 * be read. */
	if (!rc->clean && rc->fix && fs->params.mode == RSV_MODE_EOF &&
	    rsv_map_count_present(&map, eof_pages, RSV_MAX_PAGES) > 0 &&
	    !rec_past_eof_known(r, stamp) && ftruncate(fd, st_b.st_size) == 0)
		rsv_map_remove(&map, eof_pages, RSV_MAX_PAGES);
	res = rec_stamp(rc, stamp, r);
	close(fd);
	n = rsv_map_pages(&map);
	rsv_map_clear(&map);
	*pages += n;
	if (res == 0 && ((uint64_t)st_b.st_size != r->size || n != r->rsv_pages)) {
		if (rc->clean)
			problem(rc->report, rc->problems, "inode %" PRIu64 ": size %" PRIu64 " / %"
				PRIu64 " reserved pages recorded, backing file has %" PRIu64
				" / %" PRIu64 "%s", (uint64_t)r->ino, r->size, r->rsv_pages,
				(uint64_t)st_b.st_size, n, rc->fix ? ": fixed" : "");
		res = rec_exec(rc, sql = g_strdup_printf(
			"UPDATE inodes SET size = %" PRIu64 ", rsv_pages = %" PRIu64
			" WHERE ino = %" PRIu64, (uint64_t)st_b.st_size, n, (uint64_t)r->ino));
		g_free(sql);
	}
	return res;
}

/* Checks (and with !report_only repairs) the store: orphans, dangling
 * dentries, link counts, backing files, sizes and the ledger.  Counts what
 * it finds in *problems; with a report, describes each.  Then charges the
 * ledger with the truth.  A query that fails (a damaged meta.db) ends it
 * with -EIO, its transaction rolled back and no file removed: backing
 * files go only after the commit that forgets them.  db_lock is not
 * needed: nothing else runs yet. */
int fs_recover(struct fs *fs, bool clean, bool report_only, GString *report, int *problems)
{
	struct rec rc = {
		.fs = fs, .fix = !report_only && !fs->ro, .clean = clean,
		.report = report, .problems = problems,
		.inodes = g_hash_table_new_full(g_int64_hash, g_int64_equal, NULL, g_free),
		.doomed = g_ptr_array_new_with_free_func(g_free),
	};
	uint64_t total_pages = 0, ninodes = 0;
	GHashTableIter it;
	gpointer v;
	int res;

	*problems = 0;
	if (rc.fix && (res = fs_meta_exec(fs, "BEGIN")) < 0)
		goto out;
	if ((res = rec_load_inodes(&rc)) < 0 || (res = rec_count_links(&rc)) < 0 ||
	    (res = rec_check_nlink(&rc)) < 0)
		goto out_rollback;
	rec_scan_data_top(&rc);
	rec_scan_data(&rc);
	rec_scan_spares(&rc);
	g_hash_table_iter_init(&it, rc.inodes);
	while (g_hash_table_iter_next(&it, NULL, &v)) {
		struct rec_inode *r = v;

		if (r->freed)
			continue;
		ninodes++;
		total_pages += fs_xattr_pages(r->xattr_bytes);
		if (S_ISREG(r->mode) && (res = rec_check_file(&rc, r, &total_pages)) < 0)
			goto out_rollback;
	}
	if (rc.fix && (res = rec_fill_holes(&rc, total_pages)) < 0)
		goto out_rollback;
	if (rc.fix && (res = fs_meta_exec(fs, "COMMIT")) < 0)
		goto out_rollback;
	/* a read-only mount cannot store what it found: its inodes look */
	if (fs->ro && !report_only)
		fs->rows_stale = true;
	for (guint i = 0; i < rc.doomed->len; i++)
		unlinkat(fs->data_fd, g_ptr_array_index(rc.doomed, i), 0);
	rsv_charge_force(&fs->ledger, total_pages);
	for (uint64_t i = 0; i < ninodes; i++)
		rsv_inode_get_force(&fs->ledger);
	goto out;
out_rollback:
	if (rc.fix && !sqlite3_get_autocommit(fs->db))
		fs_meta_exec(fs, "ROLLBACK");
out:
	g_ptr_array_free(rc.doomed, TRUE);
	g_hash_table_destroy(rc.inodes);
	return res;
}

int fs_backing_refresh(struct fs *fs, struct fs_inode *in)
{
	struct rsv_map map = RSV_MAP_INIT;
	struct fs_stamp stamp;
	struct stat st;
	int fd, res = 0;

	fd = fs_backing_open(fs, in->ino, O_RDONLY | O_NONBLOCK);	/* not a FIFO's wait */
	if (fd < 0)
		return fd;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
		res = -EIO;
	if (res == 0)
		res = fs_backing_scan(fd, &map);
	if (res == 0) {
		in->size = st.st_size;
		in->rsv_pages_db = rsv_map_pages(&map);
		if (fs_stamp_read(fd, &stamp) && stamp.ctime > in->ctime) {
			in->atime = stamp.atime;
			in->mtime = stamp.mtime;
			in->ctime = stamp.ctime;
		}
	}
	rsv_map_clear(&map);
	close(fd);
	return res;
}
