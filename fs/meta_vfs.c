/* fs/meta_vfs.c — the file layer beneath meta.db: SQLite's own (unix) VFS,
 * with one change.  meta.db and its WAL live on the backing disk beside the
 * data, where the blocks of files deleted a moment ago may still be in the
 * way: the ledger has their pages back at once, the reaper frees their
 * blocks later.  A write of SQLite's that meets ENOSPC (or EDQUOT) there
 * waits until the reaper has emptied every file queued so far and, if it
 * freed any, is made again, as a reservation is (data_allocate_pages).
 *
 * Why here and not at the commit: SQLite rolls back a transaction whose
 * COMMIT fails for a full disk, so a retry there would have to replay every
 * caller's statements and in-memory changes.  A write retried below SQLite
 * is the same write (same bytes, same offset: SQLite never learns it
 * failed), and the transaction goes on as if the space had been there.
 *
 * Every SQLite call runs with fs->db_lock held (or before the daemon has
 * threads), which serialises the state below too.  The reaper takes none of
 * our locks, so waiting with db_lock (and inode locks) held cannot deadlock;
 * an eviction, which also holds itable_lock that nearly every request
 * needs, does not wait (fs_meta_may_wait). */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "fs_i.h"

#define VFS_NAME "reservefs"

struct vfs_file {
	sqlite3_file base;	/* our methods */
	sqlite3_file *real;	/* the unix VFS's file, right after this struct */
};

static sqlite3_vfs *vfs_real;		/* the default (unix) VFS */
static sqlite3_vfs vfs_ours;		/* registered once */
static sqlite3_io_methods vfs_io[3];	/* by the real file's iVersion */
static struct fs *vfs_fs;		/* db_lock: the store meta.db belongs to */
static bool vfs_no_wait;		/* db_lock: an eviction is writing */

/* A write the real file refused for space.  unixWrite says SQLITE_FULL for
 * ENOSPC; any other errno (EDQUOT) is an I/O error that keeps the errno. */
static bool vfs_out_of_space(struct vfs_file *vf, int rc)
{
	int e = 0;

	if (rc == SQLITE_FULL)
		return true;
	if (rc != SQLITE_IOERR_WRITE)
		return false;
	vf->real->pMethods->xFileControl(vf->real, SQLITE_FCNTL_LAST_ERRNO, &e);
	return e == EDQUOT || e == ENOSPC;
}

/* Waits for the reaper: true when it freed something since @reaped. */
static bool vfs_wait_reaper(uint64_t reaped)
{
	return vfs_fs && !vfs_no_wait && fs_backing_reap_wait(vfs_fs, reaped);
}

static int vfs_write(sqlite3_file *f, const void *buf, int n, sqlite3_int64 off)
{
	struct vfs_file *vf = (struct vfs_file *)f;
	uint64_t reaped;
	int rc;

	do {
		reaped = vfs_fs ? fs_backing_reaped(vfs_fs) : 0;
		rc = vf->real->pMethods->xWrite(vf->real, buf, n, off);
	} while (vfs_out_of_space(vf, rc) && vfs_wait_reaper(reaped));
	return rc;
}

/* The WAL index (meta.db-shm) grows by a write of one byte per page; a
 * failed growth is SQLITE_IOERR_SHMSIZE, and asking again grows it again. */
static int vfs_shm_map(sqlite3_file *f, int region, int size, int extend, void volatile **pp)
{
	struct vfs_file *vf = (struct vfs_file *)f;
	uint64_t reaped;
	int rc;

	do {
		reaped = vfs_fs ? fs_backing_reaped(vfs_fs) : 0;
		rc = vf->real->pMethods->xShmMap(vf->real, region, size, extend, pp);
	} while (rc == SQLITE_IOERR_SHMSIZE && vfs_wait_reaper(reaped));
	return rc;
}

/* ---- the rest goes to the real file as it is ------------------------- */

#define REAL(f) (((struct vfs_file *)(f))->real)

static int vfs_close(sqlite3_file *f)
{
	return REAL(f)->pMethods->xClose(REAL(f));
}

static int vfs_read(sqlite3_file *f, void *buf, int n, sqlite3_int64 off)
{
	return REAL(f)->pMethods->xRead(REAL(f), buf, n, off);
}

static int vfs_truncate(sqlite3_file *f, sqlite3_int64 size)
{
	return REAL(f)->pMethods->xTruncate(REAL(f), size);
}

static int vfs_sync(sqlite3_file *f, int flags)
{
	return REAL(f)->pMethods->xSync(REAL(f), flags);
}

static int vfs_file_size(sqlite3_file *f, sqlite3_int64 *size)
{
	return REAL(f)->pMethods->xFileSize(REAL(f), size);
}

static int vfs_lock(sqlite3_file *f, int lock)
{
	return REAL(f)->pMethods->xLock(REAL(f), lock);
}

static int vfs_unlock(sqlite3_file *f, int lock)
{
	return REAL(f)->pMethods->xUnlock(REAL(f), lock);
}

static int vfs_check_reserved_lock(sqlite3_file *f, int *out)
{
	return REAL(f)->pMethods->xCheckReservedLock(REAL(f), out);
}

static int vfs_file_control(sqlite3_file *f, int op, void *arg)
{
	return REAL(f)->pMethods->xFileControl(REAL(f), op, arg);
}

static int vfs_sector_size(sqlite3_file *f)
{
	return REAL(f)->pMethods->xSectorSize(REAL(f));
}

static int vfs_device_characteristics(sqlite3_file *f)
{
	return REAL(f)->pMethods->xDeviceCharacteristics(REAL(f));
}

static int vfs_shm_lock(sqlite3_file *f, int off, int n, int flags)
{
	return REAL(f)->pMethods->xShmLock(REAL(f), off, n, flags);
}

static void vfs_shm_barrier(sqlite3_file *f)
{
	REAL(f)->pMethods->xShmBarrier(REAL(f));
}

static int vfs_shm_unmap(sqlite3_file *f, int delete_flag)
{
	return REAL(f)->pMethods->xShmUnmap(REAL(f), delete_flag);
}

static int vfs_fetch(sqlite3_file *f, sqlite3_int64 off, int n, void **pp)
{
	return REAL(f)->pMethods->xFetch(REAL(f), off, n, pp);
}

static int vfs_unfetch(sqlite3_file *f, sqlite3_int64 off, void *p)
{
	return REAL(f)->pMethods->xUnfetch(REAL(f), off, p);
}

/* The WAL grows from nothing after each mount (a clean unmount truncates
 * it) to the size at which SQLite checkpoints and starts it over: 1000
 * frames (wal_autocheckpoint) of a 4 KiB page and its 24-byte header, and
 * the frames of the commit that crossed the line.  Until it has got there
 * every commit appends, so on a full backing disk even an unlink, whose
 * commit frees space, failed with ENOSPC (a remount, with the WAL at full
 * size, then let it through).  Its blocks are allocated when SQLite opens
 * it (KEEP_SIZE: SQLite sees the same file), so no commit that fits in
 * them needs new ones.  At most a sixteenth of the backing filesystem: a
 * tiny disk keeps room for its data. */
#define VFS_WAL_PREALLOC ((off_t)(1000 + 64) * (4096 + 24) + 32)

static void vfs_wal_prealloc(const char *name)
{
	struct statvfs sv;
	off_t len = VFS_WAL_PREALLOC;
	int fd = open(name, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);

	if (fd < 0)
		return;
	if (fstatvfs(fd, &sv) == 0 && (uint64_t)len > (uint64_t)sv.f_blocks * sv.f_frsize / 16)
		len = (off_t)((uint64_t)sv.f_blocks * sv.f_frsize / 16);
	if (len > 0)
		fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, len);	/* best effort */
	close(fd);
}

static int vfs_open(sqlite3_vfs *vfs, sqlite3_filename name, sqlite3_file *f, int flags,
		    int *out_flags)
{
	struct vfs_file *vf = (struct vfs_file *)f;
	int rc;

	vf->real = (sqlite3_file *)(vf + 1);
	rc = vfs_real->xOpen(vfs_real, name, vf->real, flags, out_flags);
	if (rc == SQLITE_OK && name && (flags & SQLITE_OPEN_WAL) && !(flags & SQLITE_OPEN_READONLY))
		vfs_wal_prealloc(name);
	/* SQLite closes what has methods, even after a failed open */
	if (vf->real->pMethods)
		vf->base.pMethods = &vfs_io[CLAMP(vf->real->pMethods->iVersion, 1, 3) - 1];
	else
		vf->base.pMethods = NULL;
	return rc;
}

const char *fs_meta_vfs(struct fs *fs)
{
	static const sqlite3_io_methods io = {
		.xClose = vfs_close,
		.xRead = vfs_read,
		.xWrite = vfs_write,
		.xTruncate = vfs_truncate,
		.xSync = vfs_sync,
		.xFileSize = vfs_file_size,
		.xLock = vfs_lock,
		.xUnlock = vfs_unlock,
		.xCheckReservedLock = vfs_check_reserved_lock,
		.xFileControl = vfs_file_control,
		.xSectorSize = vfs_sector_size,
		.xDeviceCharacteristics = vfs_device_characteristics,
		.xShmMap = vfs_shm_map,
		.xShmLock = vfs_shm_lock,
		.xShmBarrier = vfs_shm_barrier,
		.xShmUnmap = vfs_shm_unmap,
		.xFetch = vfs_fetch,
		.xUnfetch = vfs_unfetch,
	};

	vfs_fs = fs;
	vfs_no_wait = false;
	if (vfs_real)
		return VFS_NAME;
	if (!(vfs_real = sqlite3_vfs_find(NULL)))
		return NULL;
	for (int i = 0; i < 3; i++) {
		vfs_io[i] = io;
		vfs_io[i].iVersion = i + 1;
	}
	/* everything but opening a file is the real VFS's (it keeps its
	 * pAppData, which only its own xOpen uses, and gets it there) */
	vfs_ours = *vfs_real;
	vfs_ours.zName = VFS_NAME;
	vfs_ours.pNext = NULL;
	vfs_ours.szOsFile = sizeof(struct vfs_file) + vfs_real->szOsFile;
	vfs_ours.xOpen = vfs_open;
	if (sqlite3_vfs_register(&vfs_ours, 0) != SQLITE_OK) {
		vfs_real = NULL;
		return NULL;
	}
	return VFS_NAME;
}

void fs_meta_vfs_close(struct fs *fs)
{
	if (vfs_fs == fs)
		vfs_fs = NULL;
}

void fs_meta_may_wait(struct fs *fs, bool may_wait)
{
	vfs_no_wait = !may_wait;
}
