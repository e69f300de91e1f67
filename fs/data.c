/* fs/data.c — data operations that move the reservation: write, truncate,
 * fallocate.  Every function here runs with in->lock held.
 *
 * The rule they keep: a byte reaches the backing file only inside a page
 * that is charged to the ledger and whose backing blocks exist.  Making a
 * reservation real is a KEEP_SIZE fallocate of the backing file, skipped for
 * pages the caller is about to write in full blocks anyway (the write itself
 * allocates them, and a failure to do so is undone below).  So the backing
 * file's allocation map *is* the reservation map, which is what recovery
 * reads back after a crash. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include <linux/fiemap.h>
#include <linux/fs.h>

#include "fs_i.h"

struct data_range {
	uint64_t start, end;	/* pages */
};

static int data_collect(uint64_t start, uint64_t end, void *arg)
{
	struct data_range r = { start, end };

	g_array_append_val((GArray *)arg, r);
	return 0;
}

static int data_fallocate_pages(int fd, int mode, uint64_t start, uint64_t end)
{
	if (start >= end)
		return 0;
	if (fallocate(fd, mode, (off_t)start << RSV_PAGE_SHIFT,
		      (off_t)(end - start) << RSV_PAGE_SHIFT) < 0)
		return -errno;
	return 0;
}

/* Makes the reservation of pages [start,end) real.  The backing disk may
 * still hold the blocks of files deleted a moment ago, whose pages the ledger
 * has back already: on ENOSPC, once the reaper has freed those, again. */
static int data_allocate_pages(struct fs *fs, int fd, uint64_t start, uint64_t end)
{
	uint64_t reaped = fs_backing_reaped(fs);
	int res = data_fallocate_pages(fd, FALLOC_FL_KEEP_SIZE, start, end);

	if ((res == -ENOSPC || res == -EDQUOT) && fs_backing_reap_wait(fs, reaped))
		res = data_fallocate_pages(fd, FALLOC_FL_KEEP_SIZE, start, end);
	return res;
}

/* Punch [start,end) pages out of the backing file (they hold no data we
 * keep) so that its allocation matches the map again. */
static void data_punch_pages(int fd, uint64_t start, uint64_t end)
{
	data_fallocate_pages(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, start, end);
}

/* Pages past the backing file's EOF were dropped from in->rsv: free their
 * blocks.  ext4 neither punches past EOF nor frees such blocks apart, but a
 * truncate to the size frees every block past it; the pages past EOF that
 * stay reserved are then allocated again. */
static void data_trim_past_eof(struct fs *fs, struct fs_inode *in, int fd)
{
	GArray *keep = g_array_new(FALSE, FALSE, sizeof(struct data_range));
	struct stat st;

	/* a copy without in->lock may be extending the file meanwhile */
	fs_inode_drain_copies(fs, in);
	if (fstat(fd, &st) == 0 && ftruncate(fd, st.st_size) == 0) {
		rsv_map_foreach_present(&in->rsv, rsv_page_up(st.st_size),
					UINT64_MAX >> RSV_PAGE_SHIFT, data_collect, keep);
		for (guint i = 0; i < keep->len; i++) {
			struct data_range *r = &g_array_index(keep, struct data_range, i);
			int res = data_fallocate_pages(fd, FALLOC_FL_KEEP_SIZE, r->start, r->end);

			if (res < 0)
				g_warning("cannot re-allocate pages %" PRIu64 "-%" PRIu64 " past "
					  "the end of a backing file: %s", r->start, r->end,
					  strerror(-res));
		}
	}
	g_array_free(keep, TRUE);
}

/* Charges and maps the pages of @undo (the ranges missing from in->rsv),
 * then makes them real except for [skip_start, skip_end).  All or nothing. */
static int data_reserve_ranges(struct fs *fs, struct fs_inode *in, int fd, GArray *undo,
			       uint64_t skip_start, uint64_t skip_end)
{
	int res = 0;
	guint i;

	for (i = 0; i < undo->len; i++) {
		struct data_range *r = &g_array_index(undo, struct data_range, i);
		rsv_map_add(&in->rsv, r->start, r->end);
	}
	for (i = 0; i < undo->len && res == 0; i++) {
		struct data_range *r = &g_array_index(undo, struct data_range, i);
		uint64_t a = r->start, b = r->end;

		/* the write allocates the skipped pages itself, unless the
		 * blocks of deleted files may still be in its way */
		if (fs->backing_page_blocks && skip_start < skip_end &&
		    !fs_backing_reap_pending(fs)) {
			/* before and after the skipped part */
			res = data_allocate_pages(fs, fd, a, MIN(b, skip_start));
			if (res == 0)
				res = data_allocate_pages(fs, fd, MAX(a, skip_end), b);
		} else {
			res = data_allocate_pages(fs, fd, a, b);
		}
	}
	if (res < 0)
		fs_data_undo(fs, in, undo, 0);
	in->attr_dirty = true;
	return res;
}

void fs_data_undo(struct fs *fs, struct fs_inode *in, GArray *undo, uint64_t from_page)
{
	bool temp = false, past_eof = false;
	struct stat st;
	int fd = in->fd;

	if (!undo)
		return;
	if (fd < 0)
		fd = fs_inode_fd(fs, in, &temp);
	if (fd >= 0 && fstat(fd, &st) < 0)
		st.st_size = 0;
	for (guint i = 0; i < undo->len; i++) {
		struct data_range *r = &g_array_index(undo, struct data_range, i);
		uint64_t a = MAX(r->start, from_page), b = r->end;

		if (a >= b)
			continue;
		rsv_release(&fs->ledger, rsv_map_remove(&in->rsv, a, b));
		if (fd >= 0)
			data_punch_pages(fd, a, b);
		past_eof |= fd >= 0 && b > rsv_page_up(st.st_size);
	}
	if (past_eof)
		data_trim_past_eof(fs, in, fd);
	if (temp && fd >= 0)
		close(fd);
	in->attr_dirty = true;
}

static uint64_t data_eof_page(const struct fs_inode *in)
{
	return rsv_page_up(in->size);
}

ssize_t fs_data_reserve_write(struct fs *fs, struct fs_inode *in, int fd, uint64_t off,
			      uint64_t len, bool writeback, GArray **undop)
{
	enum rsv_event ev = writeback ? RSV_EV_WRITEBACK : RSV_EV_WRITE;
	uint64_t first, last, from, missing, granted;
	GArray *undo;
	int res;

	*undop = NULL;
	if (len == 0)
		return 0;
	if (off >= fs->max_file_size)
		return -EFBIG;
	if (len > fs->max_file_size - off)
		len = fs->max_file_size - off;
	if ((res = fs_inode_load_rsv(fs, in)) < 0)
		return res;
	first = rsv_page_down(off);
	last = rsv_page_up(off + len);
	/* eof mode: the pages between the old EOF and the write become part of
	 * the file too, so they are reserved with it */
	from = first;
	if (fs->ledger.mode == RSV_MODE_EOF && !writeback)
		from = MIN(first, data_eof_page(in));
	missing = rsv_map_count_missing(&in->rsv, from, last);
	if (missing == 0)
		return len;

	if (writeback) {
		/* Pages dirtied through a mapping in write mode: all of them, or
		 * the caller saves what it can (fs_data_writeback_partial). */
		if (rsv_charge(&fs->ledger, missing) < 0)
			return -ENOSPC;
		granted = missing;
	} else {
		granted = rsv_charge_upto(&fs->ledger, missing);
	}
	if (granted < missing) {
		/* Short write: only the pages that fit, in file order. */
		uint64_t stop = rsv_map_limit_missing(&in->rsv, from, last, granted);
		uint64_t used = rsv_map_count_missing(&in->rsv, from, stop);

		rsv_release(&fs->ledger, granted - used);
		granted = used;
		if (((uint64_t)stop << RSV_PAGE_SHIFT) <= off) {
			rsv_release(&fs->ledger, granted);
			rsv_count_enospc(&fs->ledger, ev);
			return -ENOSPC;
		}
		len = ((uint64_t)stop << RSV_PAGE_SHIFT) - off;
		last = stop;
	}
	undo = g_array_new(FALSE, FALSE, sizeof(struct data_range));
	rsv_map_foreach_missing(&in->rsv, from, last, data_collect, undo);
	res = data_reserve_ranges(fs, in, fd, undo, first, last);
	if (res < 0) {
		g_array_free(undo, TRUE);
		if (!writeback)		/* fs_data_writeback_partial counts that */
			rsv_count_enospc(&fs->ledger, ev);
		return res == -ENOSPC || res == -EDQUOT ? -ENOSPC : res;
	}
	*undop = undo;
	return len;
}

/* fs_data_writeback_partial's missing pages that get a reservation */
struct data_take {
	GArray *ranges;		/* struct data_range */
	uint64_t left;		/* pages still to take */
};

/* ... and the write of the reserved ones */
struct data_wb {
	struct fs *fs;
	struct fs_inode *in;
	int fd;
	uint64_t off, len;
	const char *buf;
};

static int data_take_pages(uint64_t start, uint64_t end, void *arg)
{
	struct data_take *t = arg;
	struct data_range r = { start, MIN(end, start + t->left) };

	if (r.start < r.end) {
		g_array_append_val(t->ranges, r);
		t->left -= r.end - r.start;
	}
	return t->left == 0;
}

static int data_write_range(uint64_t start, uint64_t end, void *arg)
{
	const struct data_wb *w = arg;
	uint64_t a = MAX(start << RSV_PAGE_SHIFT, w->off);
	uint64_t b = MIN(end << RSV_PAGE_SHIFT, w->off + w->len);
	ssize_t n = a < b ? pwrite(w->fd, w->buf + (a - w->off), b - a, a) : 0;

	if (n > 0)
		fs_data_written(w->fs, w->in, w->fd, a, n);
	if (n < (ssize_t)(b > a ? b - a : 0))
		g_warning("writeback of inode %" PRIu64 " bytes %" PRIu64 "-%" PRIu64 ": %s",
			  (uint64_t)w->in->ino, a, b - 1, n < 0 ? strerror(errno) : "short write");
	return 0;
}

static int data_warn_lost(uint64_t start, uint64_t end, void *arg)
{
	const struct fs_inode *in = arg;

	g_warning("writeback of inode %" PRIu64 " pages %" PRIu64 "-%" PRIu64 " (bytes %"
		  PRIu64 "-%" PRIu64 ") lost: no space (reserve=write does not protect mmap)",
		  (uint64_t)in->ino, start, end - 1, start << RSV_PAGE_SHIFT,
		  (end << RSV_PAGE_SHIFT) - 1);
	return 0;
}

int fs_data_writeback_partial(struct fs *fs, struct fs_inode *in, int fd, uint64_t off,
			      const char *buf, uint64_t len)
{
	uint64_t first = rsv_page_down(off), last = rsv_page_up(off + len);
	struct data_take take = { g_array_new(FALSE, FALSE, sizeof(struct data_range)), 0 };
	struct data_wb w = { fs, in, fd, off, len, buf };

	/* the missing pages that still fit, in file order */
	take.left = rsv_charge_upto(&fs->ledger, rsv_map_count_missing(&in->rsv, first, last));
	if (take.left) {
		rsv_map_foreach_missing(&in->rsv, first, last, data_take_pages, &take);
		/* all or nothing: a failure is undone and released there */
		data_reserve_ranges(fs, in, fd, take.ranges, 0, 0);
	}
	g_array_free(take.ranges, TRUE);
	rsv_map_foreach_present(&in->rsv, first, last, data_write_range, &w);
	rsv_map_foreach_missing(&in->rsv, first, last, data_warn_lost, in);
	rsv_count_enospc(&fs->ledger, RSV_EV_WRITEBACK);
	__atomic_add_fetch(&fs->writeback_failures, 1, __ATOMIC_RELAXED);
	return -ENOSPC;
}

void fs_data_written(struct fs *fs, struct fs_inode *in, int fd, uint64_t off, uint64_t len)
{
	if (len == 0)
		return;
	if (off + len > in->size)
		in->size = off + len;
	if (in->zero.n)
		rsv_map_remove(&in->zero, rsv_page_down(off), rsv_page_up(off + len));
	fs_inode_touch(in, false, true, true);
	in->attr_dirty = true;
	cache_file_dirtied(fs->cache, &in->cf, fd, rsv_page_down(off), rsv_page_up(off + len));
}

/* Drops the reservation of every page at or past @page, and the blocks
 * behind it (a truncate removes blocks past EOF, preallocated or not). */
static void data_release_from(struct fs *fs, struct fs_inode *in, int fd, uint64_t page)
{
	uint64_t n = rsv_map_remove(&in->rsv, page, UINT64_MAX >> RSV_PAGE_SHIFT);

	if (n) {
		rsv_release(&fs->ledger, n);
		/* the truncate before us freed blocks past the new EOF; punch what a
		 * backing filesystem may keep there all the same (the range must
		 * end within its limit, or the punch fails with EFBIG) */
		if ((page << RSV_PAGE_SHIFT) < fs->max_file_size)
			fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
				  (off_t)page << RSV_PAGE_SHIFT,
				  (off_t)(fs->max_file_size - (page << RSV_PAGE_SHIFT)));
		in->attr_dirty = true;
	}
	cache_file_drop(fs->cache, &in->cf, page, UINT64_MAX >> RSV_PAGE_SHIFT);
	rsv_map_remove(&in->zero, page, UINT64_MAX >> RSV_PAGE_SHIFT);
}

int fs_data_truncate(struct fs *fs, struct fs_inode *in, int fd, uint64_t size,
		     GArray **undop)
{
	GArray *undo = NULL;
	uint64_t old = in->size;
	int res;

	if (size > fs->max_file_size)
		return -EFBIG;
	if ((res = fs_inode_load_rsv(fs, in)) < 0)
		return res;
	if (size > old && fs->ledger.mode == RSV_MODE_EOF) {
		uint64_t from = rsv_page_up(old), to = rsv_page_up(size);
		uint64_t missing = rsv_map_count_missing(&in->rsv, from, to);

		if (missing) {
			if (rsv_charge(&fs->ledger, missing) < 0) {
				rsv_count_enospc(&fs->ledger, RSV_EV_TRUNCATE);
				return -ENOSPC;
			}
			undo = g_array_new(FALSE, FALSE, sizeof(struct data_range));
			rsv_map_foreach_missing(&in->rsv, from, to, data_collect, undo);
			res = data_reserve_ranges(fs, in, fd, undo, 0, 0);
			if (res < 0) {
				g_array_free(undo, TRUE);
				rsv_count_enospc(&fs->ledger, RSV_EV_TRUNCATE);
				return res == -EDQUOT ? -ENOSPC : res;
			}
		}
	}
	if (ftruncate(fd, size) < 0) {
		res = -errno;
		fs_data_undo(fs, in, undo, 0);
		goto out;
	}
	if (size <= old)
		data_release_from(fs, in, fd, rsv_page_up(size));
	in->size = size;
	in->attr_dirty = true;
	res = 0;
	if (undop) {
		*undop = undo;
		undo = NULL;
	}
out:
	if (undo)
		g_array_free(undo, TRUE);
	return res;
}

/* Zero bytes [off, end) of the backing file, keeping its blocks allocated.
 * Whole pages are punched and allocated again, so they become unwritten
 * extents that SEEK_HOLE reports as holes (ZERO_RANGE over freshly written
 * pages would leave written zeroes behind). */
static int data_zero_bytes(int fd, uint64_t off, uint64_t end)
{
	if (off >= end)
		return 0;
	if (fallocate(fd, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, off, end - off) == 0)
		return 0;
	if (errno != EOPNOTSUPP)
		return -errno;
	/* no ZERO_RANGE (tmpfs): punch, then allocate the whole pages again */
	if (fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off, end - off) < 0)
		return -errno;
	return data_fallocate_pages(fd, FALLOC_FL_KEEP_SIZE, rsv_page_down(off), rsv_page_up(end));
}

static int data_zero_keep(int fd, uint64_t off, uint64_t end)
{
	uint64_t a = rsv_page_up(off), b = rsv_page_down(end);
	int res;

	if (off >= end)
		return 0;
	if (a >= b)
		return data_zero_bytes(fd, off, end);
	if ((res = data_zero_bytes(fd, off, a << RSV_PAGE_SHIFT)) < 0 ||
	    (res = data_zero_bytes(fd, b << RSV_PAGE_SHIFT, end)) < 0)
		return res;
	data_punch_pages(fd, a, b);
	res = data_fallocate_pages(fd, FALLOC_FL_KEEP_SIZE, a, b);
	if (res < 0) {
		/* the backing disk is full: keep the pages allocated as zeroes */
		res = data_zero_bytes(fd, a << RSV_PAGE_SHIFT, b << RSV_PAGE_SHIFT);
		if (res < 0)
			g_warning("cannot re-allocate pages %" PRIu64 "-%" PRIu64 " of a backing "
				  "file after a punch: %s", a, b, strerror(-res));
	}
	return res;
}

static int data_punch(struct fs *fs, struct fs_inode *in, int fd, uint64_t off, uint64_t end)
{
	uint64_t size = in->size, keep_end, pfirst, plast, n;
	int res;

	/* eof mode keeps every page below EOF reserved: zero those bytes */
	keep_end = fs->ledger.mode == RSV_MODE_EOF ? MIN(end, MAX(off, size)) : off;
	if ((res = data_zero_keep(fd, off, keep_end)) < 0)
		return res;
	rsv_map_add(&in->zero, rsv_page_up(off), rsv_page_down(keep_end));
	if (keep_end >= end)
		goto out;
	if (fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, keep_end,
		      end - keep_end) < 0)
		return -errno;
	/* the pages wholly inside the punched part are free again; in eof
	 * mode that part lies past EOF and its last page is not partial */
	pfirst = rsv_page_up(keep_end);
	if (fs->ledger.mode == RSV_MODE_EOF)
		pfirst = MAX(pfirst, rsv_page_up(size));
	plast = end >= size && fs->ledger.mode == RSV_MODE_EOF ? rsv_page_up(end) : rsv_page_down(end);
	if (end >= size && fs->ledger.mode == RSV_MODE_WRITE && end % RSV_PAGE_SIZE &&
	    rsv_page_down(end) >= rsv_page_up(size))
		plast = rsv_page_up(end);	/* the tail page lies wholly past EOF */
	if (pfirst < plast) {
		n = rsv_map_remove(&in->rsv, pfirst, plast);
		rsv_release(&fs->ledger, n);
		/* the whole pages go, also any partial-page remainder past EOF */
		data_punch_pages(fd, pfirst, plast);
		if (n && plast > rsv_page_up(size))
			data_trim_past_eof(fs, in, fd);
	}
out:
	cache_file_drop(fs->cache, &in->cf, rsv_page_up(off), rsv_page_down(end));
	in->attr_dirty = true;
	return 0;
}

int fs_data_fallocate(struct fs *fs, struct fs_inode *in, int fd, int mode, uint64_t off,
		      uint64_t len)
{
	bool keep = mode & FALLOC_FL_KEEP_SIZE;
	uint64_t end, from, last, missing;
	GArray *undo;
	int res;

	if (mode & ~(FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE))
		return -EOPNOTSUPP;
	if ((mode & FALLOC_FL_PUNCH_HOLE) && (!keep || (mode & FALLOC_FL_ZERO_RANGE)))
		return -EOPNOTSUPP;
	if (len == 0)
		return -EINVAL;
	if (off > fs->max_file_size || len > fs->max_file_size - off)
		return -EFBIG;
	end = off + len;
	if ((res = fs_inode_load_rsv(fs, in)) < 0)
		return res;
	if (mode & FALLOC_FL_PUNCH_HOLE)
		return data_punch(fs, in, fd, off, end);

	/* mode 0, KEEP_SIZE, ZERO_RANGE: the range ends up allocated (like a
	 * kernel filesystem's unwritten extents), so later writes into it
	 * cannot meet ENOSPC.  All or nothing. */
	from = rsv_page_down(off);
	last = rsv_page_up(end);
	if (!keep && end > in->size && fs->ledger.mode == RSV_MODE_EOF)
		from = MIN(from, rsv_page_up(in->size));
	missing = rsv_map_count_missing(&in->rsv, from, last);
	undo = g_array_new(FALSE, FALSE, sizeof(struct data_range));
	if (missing) {
		if (rsv_charge(&fs->ledger, missing) < 0) {
			g_array_free(undo, TRUE);
			rsv_count_enospc(&fs->ledger, RSV_EV_FALLOCATE);
			return -ENOSPC;
		}
		rsv_map_foreach_missing(&in->rsv, from, last, data_collect, undo);
		res = data_reserve_ranges(fs, in, fd, undo, 0, 0);
		if (res < 0) {
			g_array_free(undo, TRUE);
			rsv_count_enospc(&fs->ledger, RSV_EV_FALLOCATE);
			return res == -EDQUOT ? -ENOSPC : res;
		}
	}
	if (mode & FALLOC_FL_ZERO_RANGE) {
		uint64_t zend = keep ? MIN(end, MAX(off, in->size)) : end;

		res = data_zero_keep(fd, off, zend);
		if (res == 0)
			rsv_map_add(&in->zero, rsv_page_up(off), rsv_page_down(zend));
		cache_file_drop(fs->cache, &in->cf, rsv_page_up(off), rsv_page_down(end));
	}
	if (res == 0 && !keep && end > in->size) {
		if (ftruncate(fd, end) < 0)
			res = -errno;
		else
			in->size = end;
	}
	if (res < 0)
		fs_data_undo(fs, in, undo, 0);
	g_array_free(undo, TRUE);
	in->attr_dirty = true;
	return res;
}

static int data_first_cb(uint64_t start, uint64_t end, void *arg)
{
	*(uint64_t *)arg = start;
	return 1;
}

/* The first page of [p, end) in @m, or @end. */
static uint64_t data_next_present(const struct rsv_map *m, uint64_t p, uint64_t end)
{
	uint64_t first = end;

	rsv_map_foreach_present(m, p, end, data_first_cb, &first);
	return first;
}

/* lseek(SEEK_DATA/SEEK_HOLE) on the backing file, from its written extents.
 * lseek itself counts as data every page the backing page cache holds over
 * an unwritten extent, and in eof mode every page below EOF is one (its
 * reservation): once read, zeroes that were never written looked like data.
 * An unwritten extent is a hole here; FIEMAP_FLAG_SYNC first writes back
 * what is dirty, so every written page has a written extent.  Where the
 * backing filesystem has no FIEMAP, lseek answers.  The offset or -errno. */
static off_t data_seek_backing(int fd, off_t off, int whence)
{
	enum { N = 64 };
	struct fiemap *fm = g_malloc0(sizeof(*fm) + N * sizeof(struct fiemap_extent));
	uint64_t start = off, pos = off;
	uint32_t flags = FIEMAP_FLAG_SYNC;
	bool found = false, last = false;
	off_t res = 0;

	while (!found && !last) {
		memset(fm, 0, sizeof(*fm));
		fm->fm_start = start;
		fm->fm_length = FIEMAP_MAX_OFFSET - start;
		fm->fm_flags = flags;
		fm->fm_extent_count = N;
		flags = 0;
		if (ioctl(fd, FS_IOC_FIEMAP, fm) < 0) {
			res = errno == ENOTTY || errno == EOPNOTSUPP || errno == EBADR ?
			      -EOPNOTSUPP : -errno;
			break;
		}
		last = fm->fm_mapped_extents == 0;
		for (unsigned i = 0; i < fm->fm_mapped_extents && !found; i++) {
			const struct fiemap_extent *e = &fm->fm_extents[i];
			uint64_t es = e->fe_logical, ee = es + e->fe_length;

			start = ee;
			last = e->fe_flags & FIEMAP_EXTENT_LAST;
			if (ee <= pos || (e->fe_flags & FIEMAP_EXTENT_UNWRITTEN))
				continue;
			if (whence == SEEK_DATA || es > pos) {	/* data, or a hole before it */
				res = whence == SEEK_DATA ? (off_t)MAX(es, pos) : (off_t)pos;
				found = true;
			} else {
				pos = ee;
			}
		}
	}
	g_free(fm);
	if (res == -EOPNOTSUPP)
		return (res = lseek(fd, off, whence)) < 0 ? -errno : res;
	if (res < 0 || found)
		return res;
	/* no written extent left: no more data, or a hole from pos on */
	return whence == SEEK_DATA ? -ENXIO : (off_t)pos;
}

off_t fs_data_seek(struct fs_inode *in, int fd, off_t off, int whence)
{
	const uint64_t maxp = UINT64_MAX >> RSV_PAGE_SHIFT;
	off_t res, end = (off_t)in->size;

	if (off < 0 || off >= end)
		return -ENXIO;
	if (whence == SEEK_DATA) {
		/* the backing file's data, skipping the pages we know are zero */
		for (;;) {
			uint64_t p;

			if ((res = data_seek_backing(fd, off, SEEK_DATA)) < 0)
				return res;
			if (res >= end)
				return -ENXIO;
			p = rsv_page_down(res);
			if (!rsv_map_contains(&in->zero, p))
				return res;
			off = (off_t)rsv_map_limit_missing(&in->zero, p, maxp, 0) << RSV_PAGE_SHIFT;
			if (off >= end)
				return -ENXIO;
		}
	}
	if ((res = data_seek_backing(fd, off, SEEK_HOLE)) < 0)
		return res;
	res = MIN(res, end);
	if (in->zero.n) {
		uint64_t last = rsv_page_up(res);
		uint64_t z = data_next_present(&in->zero, rsv_page_down(off), last);

		if (z < last)
			res = MIN(res, MAX(off, (off_t)z << RSV_PAGE_SHIFT));
	}
	return res;
}
