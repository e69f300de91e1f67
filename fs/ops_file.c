/* fs/ops_file.c — open files: open, read, write, release, fsync,
 * fallocate, lseek, copy_file_range.  fi->fh is the struct fs_inode, kept
 * alive by its open count from open to release. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "fs_i.h"

#define FS(req) ((struct fs *)fuse_req_userdata(req))

static struct fs_inode *file_inode(struct fuse_file_info *fi)
{
	return (struct fs_inode *)(uintptr_t)fi->fh;
}

static void fs_op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs *fs = FS(req);
	struct fs_inode *in;
	int res;

	if (fs->ro && (fi->flags & O_ACCMODE) != O_RDONLY) {
		fuse_reply_err(req, EROFS);
		return;
	}
	if ((res = fs_inode_get(fs, ino, &in)) < 0) {
		fuse_reply_err(req, -res);
		return;
	}
	g_mutex_lock(&in->lock);
	if ((fs_immutable(in) && ((fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC))) ||
	    (fs_append_only(in) && (((fi->flags & O_ACCMODE) != O_RDONLY && !(fi->flags & O_APPEND)) ||
				    (fi->flags & O_TRUNC))))
		res = -EPERM;
	g_mutex_unlock(&in->lock);
	if (res == 0)
		res = fs_inode_open(fs, in);
	fs_inode_put(fs, in);
	if (res < 0) {
		fuse_reply_err(req, -res);
		return;
	}
	fi->fh = (uintptr_t)in;
	/* every change to the data comes through this mount: the kernel's
	 * cached pages stay valid across opens */
	fi->keep_cache = 1;
	if (fuse_reply_open(req, fi) == -ENOENT)
		fs_inode_release(fs, in);
}

static void fs_op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	fs_inode_close(FS(req), file_inode(fi));
	fuse_reply_err(req, 0);
}

/* Drop-behind.  A read leaves the data twice in memory: in the kernel's
 * cache of the FUSE file, which keeps it (keep_cache), and in the backing
 * file's cache, where nothing will read it again while the first holds it.
 * (Splice would move the pages from one to the other, but FUSE caches in
 * large folios on this kernel (6.18), and then the kernel copies.)  Behind a
 * sequential reader, FILE_DROP_LAG back, the backing file's pages are let go
 * in whole chunks (so whole large folios of the backing file).  Sequential:
 * two READs running began where the one before ended, or up to FILE_SEQ_SLACK
 * before (the requests of one readahead can overtake each other between the
 * threads); a random reader then drops nothing.  A reader that jumps moves
 * the mark without dropping anything.  Dirty pages are only started on their
 * writeback (POSIX_FADV_DONTNEED), which reserved pages allow. */
#define FILE_DROP_LAG	(8u << 20)
#define FILE_DROP_CHUNK	(2u << 20)
#define FILE_SEQ_SLACK	(1u << 20)

static void file_drop_behind(struct fs_inode *in, uint64_t off, size_t size)
{
	uint64_t last = __atomic_exchange_n(&in->read_next, off + size, __ATOMIC_RELAXED);
	uint64_t to, from;

	if (off > last || off + FILE_SEQ_SLACK < last) {
		__atomic_store_n(&in->read_run, 0, __ATOMIC_RELAXED);
		return;
	}
	if (__atomic_add_fetch(&in->read_run, 1, __ATOMIC_RELAXED) < 2 || off < FILE_DROP_LAG)
		return;
	to = (off - FILE_DROP_LAG) & ~(uint64_t)(FILE_DROP_CHUNK - 1);
	from = __atomic_load_n(&in->read_behind, __ATOMIC_RELAXED);
	if (to == from ||
	    !__atomic_compare_exchange_n(&in->read_behind, &from, to, false,
					 __ATOMIC_RELAXED, __ATOMIC_RELAXED))
		return;
	if (to > from && to - from <= 2 * FILE_DROP_CHUNK)
		posix_fadvise(in->fd, from, to - from, POSIX_FADV_DONTNEED);
}

static void fs_op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	struct fs_inode *in = file_inode(fi);
	struct fuse_bufvec buf = FUSE_BUFVEC_INIT(size);

	if (!(fi->flags & O_NOATIME))
		fs_inode_accessed(FS(req), in);
	/* the backing fd is stable while the file is open; pread needs no lock */
	buf.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
	buf.buf[0].fd = in->fd;
	buf.buf[0].pos = off;
	/* before the reply: after it, a RELEASE may close the fd */
	file_drop_behind(in, off, size);
	fuse_reply_data(req, &buf, FUSE_BUF_SPLICE_MOVE);
}

/* After copying @n of the @want bytes reserved at @off: give back the pages
 * the copy did not reach, and account for what it wrote.  Returns @n; the
 * backing disk's ENOSPC or EDQUOT (whole pages a write allocates itself) as
 * ENOSPC, counted as reserving counts it (a writeback's elsewhere). */
static ssize_t file_write_done(struct fs *fs, struct fs_inode *in, GArray *undo, uint64_t off,
			       uint64_t old_size, ssize_t want, ssize_t n, bool writeback)
{
	if (n < want) {
		uint64_t done = off + (n > 0 ? n : 0);
		uint64_t from = fs->ledger.mode == RSV_MODE_EOF ?
			rsv_page_up(MAX(done, old_size)) : rsv_page_up(done);
		fs_data_undo(fs, in, undo, from);
	}
	if (n > 0)
		fs_data_written(fs, in, in->fd, off, n);
	if (n == -ENOSPC || n == -EDQUOT) {
		if (!writeback)
			rsv_count_enospc(&fs->ledger, RSV_EV_WRITE);
		n = -ENOSPC;
	}
	return n;
}

/* A write, truncate or fallocate by an unprivileged caller drops setuid and
 * (as the kernel's own filesystems do) setgid.  in->lock held; returns true
 * when the mode changed and the kernel must be told. */
static bool file_kill_suid(struct fs *fs, fuse_req_t req, struct fs_inode *in, bool write)
{
	mode_t mode;

	if (!(in->mode & (S_ISUID | S_ISGID)))
		return false;
	/* on a write the kernel tells us (killpriv v2); fallocate it does not */
	if (write && fs->killpriv_v2)
		mode = fs_io_req_kill() ? fs_perm_kill(req, in->mode, in->gid) : in->mode;
	else
		mode = fs_perm_kill_suid(req, in->mode, in->gid);
	if (mode == in->mode)
		return false;
	in->mode = mode;
	in->ctime = fs_now();
	g_mutex_lock(&fs->db_lock);
	/* not stored (a full disk): the bits are gone all the same, and the
	 * row follows with the next store */
	if (fs_meta_store_inode(fs, in) < 0)
		in->attr_dirty = true;
	g_mutex_unlock(&fs->db_lock);
	return true;
}

static ssize_t file_do_write(struct fs *fs, fuse_req_t req, struct fs_inode *in,
			     struct fuse_bufvec *src, off_t off, bool writepage)
{
	bool killed = false;
	size_t len = fuse_buf_size(src);
	GArray *undo = NULL;
	uint64_t old_size;
	ssize_t res, n;

	if (fs->ro)
		return -EROFS;
	if (off < 0)
		return -EINVAL;
	g_mutex_lock(&in->lock);
	/* Append-only is enforced at open (a descriptor for writing needs
	 * O_APPEND); one opened before chattr +a writes where it likes, as on
	 * ext4 and xfs. */
	if (!writepage && fs_immutable(in)) {
		g_mutex_unlock(&in->lock);
		return -EPERM;
	}
	if (!writepage)
		killed = file_kill_suid(fs, req, in, true);
	old_size = in->size;
	res = fs->bench_no_reserve ? (ssize_t)len :
	      fs_data_reserve_write(fs, in, in->fd, off, len, writepage, &undo);
	if (res == -ENOSPC && writepage) {
		/* save the pages that have (or still get) space */
		char *buf = g_malloc(len);
		struct fuse_bufvec mem = FUSE_BUFVEC_INIT(len);

		mem.buf[0].mem = buf;
		if (fuse_buf_copy(&mem, src, 0) == (ssize_t)len)
			res = fs_data_writeback_partial(fs, in, in->fd, off, buf, len);
		g_free(buf);
	} else if (res > 0) {
		struct fuse_bufvec dst = FUSE_BUFVEC_INIT(res);

		dst.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
		dst.buf[0].fd = in->fd;
		dst.buf[0].pos = off;
		/* Every page already reserved (an overwrite, a page written back
		 * from a mapping): nothing to undo, so the copy runs without
		 * in->lock and concurrent writebacks of one file overlap, as on
		 * the backing filesystem.  A write that reserved pages keeps the
		 * lock until it knows what to give back. */
		bool unlocked = !undo && !in->copies_drain;

		if (unlocked) {
			in->copies++;
			g_mutex_unlock(&in->lock);
		}
		n = fuse_buf_copy(&dst, src, 0);
		if (unlocked) {
			g_mutex_lock(&in->lock);
			if (--in->copies == 0 && in->copies_drain)
				g_cond_broadcast(&fs->copies_done);
		}
		res = file_write_done(fs, in, undo, off, old_size, res, n, writepage);
	}
	g_mutex_unlock(&in->lock);
	if (undo)
		g_array_free(undo, TRUE);
	if (killed)
		fs_perm_inval_attr(fs, in->ino);
	return res;
}

static void fs_op_write_buf(fuse_req_t req, fuse_ino_t ino, struct fuse_bufvec *bufv,
			    off_t off, struct fuse_file_info *fi)
{
	ssize_t res = file_do_write(FS(req), req, file_inode(fi), bufv, off, fi->writepage);

	if (res < 0)
		fuse_reply_err(req, -res);
	else
		fuse_reply_write(req, res);
}

static void fs_op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	fuse_reply_err(req, -fs_inode_fsync(FS(req), file_inode(fi), datasync));
}

static int file_do_fallocate(struct fs *fs, fuse_req_t req, struct fs_inode *in, int mode,
			     off_t off, off_t len)
{
	bool killed;
	int res;

	if (fs->ro)
		return -EROFS;
	if (off < 0 || len <= 0)
		return -EINVAL;
	g_mutex_lock(&in->lock);
	fs_inode_drain_copies(fs, in);
	if (fs_immutable(in) || (fs_append_only(in) && (mode & ~FALLOC_FL_KEEP_SIZE))) {
		g_mutex_unlock(&in->lock);
		return -EPERM;
	}
	killed = file_kill_suid(fs, req, in, false);
	res = fs_data_fallocate(fs, in, in->fd, mode, off, len);
	if (res == 0 && mode != FALLOC_FL_KEEP_SIZE)
		fs_inode_touch(in, false, true, true);
	g_mutex_unlock(&in->lock);
	if (killed)
		fs_perm_inval_attr(fs, in->ino);
	return res;
}

static void fs_op_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off, off_t len,
			    struct fuse_file_info *fi)
{
	fuse_reply_err(req, -file_do_fallocate(FS(req), req, file_inode(fi), mode, off, len));
}

static off_t file_do_seek(struct fs_inode *in, off_t off, int whence, bool *hole)
{
	off_t res;

	g_mutex_lock(&in->lock);
	res = fs_data_seek(in, in->fd, off, whence);
	*hole = off < (off_t)in->size &&
		(whence == SEEK_DATA ? res != off : res >= 0 && res < (off_t)in->size);
	g_mutex_unlock(&in->lock);
	return res;
}

/* An lseek that found a hole, answered once the kernel has written back
 * the pages dirtied through mappings, which may fill it. */
struct seek_job {
	fuse_req_t req;
	struct fs_inode *in;	/* referenced */
	off_t off;
	int whence;
};

static void file_seek_reply(fuse_req_t req, off_t res)
{
	if (res < 0)
		fuse_reply_err(req, -res);
	else
		fuse_reply_lseek(req, res);
}

/* Runs in fs->seek_pool, never in one of the session loop's threads: the
 * kernel writes those pages back to us as WRITE requests, and only the
 * loop's threads take them.  With the notification made in the loop's
 * threads, ten lseeks at once (libfuse's max_threads) each waited in it for
 * a write that no thread was left to take, and the mount hung. */
void fs_seek_job(gpointer data, gpointer user)
{
	struct seek_job *j = data;
	struct fs *fs = user;
	bool hole;
	off_t res;

	/* no lock of ours held: the writes come to us */
	fuse_lowlevel_notify_inval_inode(fs->se, j->in->ino, j->off, 0);
	res = file_do_seek(j->in, j->off, j->whence, &hole);
	fs_inode_put(fs, j->in);
	file_seek_reply(j->req, res);
	g_free(j);
}

static void fs_op_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence,
			struct fuse_file_info *fi)
{
	struct fs *fs = FS(req);
	struct fs_inode *in = file_inode(fi);
	bool hole;
	off_t res;

	if (whence != SEEK_DATA && whence != SEEK_HOLE) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	res = file_do_seek(in, off, whence, &hole);
	if (hole && fs->se && fs->seek_pool) {
		/* Pages dirtied through a mapping are in the kernel's cache only
		 * and may fill what looks like a hole here: have the kernel write
		 * them back, then look again (fs_seek_job). */
		struct seek_job *j = g_new(struct seek_job, 1);

		j->req = req;
		j->in = fs_inode_ref(fs, in);
		j->off = off;
		j->whence = whence;
		if (g_thread_pool_push(fs->seek_pool, j, NULL))
			return;
		fs_inode_put(fs, in);
		g_free(j);
		/* no thread for it: the answer as the daemon sees it */
	}
	file_seek_reply(req, res);
}

static ssize_t file_do_copy_range(struct fs *fs, fuse_req_t req, struct fs_inode *src,
				  off_t off_in, struct fs_inode *dst, off_t off_out, size_t len)
{
	struct fs_inode *first = src->ino <= dst->ino ? src : dst;
	struct fs_inode *second = first == src ? dst : src;
	GArray *undo = NULL;
	uint64_t old_size;
	bool killed = false;
	ssize_t res, n;

	if (fs->ro)
		return -EROFS;
	if (off_in < 0 || off_out < 0)
		return -EINVAL;
	g_mutex_lock(&first->lock);
	if (second != first)
		g_mutex_lock(&second->lock);
	if (fs_immutable(dst)) {		/* append-only: as write() */
		res = -EPERM;
		goto out;
	}
	/* nothing to copy past the source's EOF */
	if ((uint64_t)off_in >= src->size)
		len = 0;
	else
		len = MIN(len, src->size - off_in);
	if (src == dst && len && off_in < off_out + (off_t)len && off_out < off_in + (off_t)len) {
		res = -EINVAL;	/* overlapping ranges in one file */
		goto out;
	}
	/* a write like any other, but the kernel sends no kill flag with it */
	if (len)
		killed = file_kill_suid(fs, req, dst, false);
	old_size = dst->size;
	res = len ? fs_data_reserve_write(fs, dst, dst->fd, off_out, len, false, &undo) : 0;
	if (res > 0) {
		loff_t in_pos = off_in, out_pos = off_out;
		size_t want = res;

		n = 0;
		while ((size_t)n < want) {
			ssize_t r = copy_file_range(src->fd, &in_pos, dst->fd, &out_pos,
						    want - n, 0);
			if (r <= 0) {
				if (r < 0 && n == 0)
					n = -errno;
				break;
			}
			n += r;
		}
		res = file_write_done(fs, dst, undo, off_out, old_size, res, n, false);
	}
out:
	if (second != first)
		g_mutex_unlock(&second->lock);
	g_mutex_unlock(&first->lock);
	if (undo)
		g_array_free(undo, TRUE);
	if (killed)
		fs_perm_inval_attr(fs, dst->ino);
	return res;
}

static void fs_op_copy_file_range(fuse_req_t req, fuse_ino_t ino_in, off_t off_in,
				  struct fuse_file_info *fi_in, fuse_ino_t ino_out,
				  off_t off_out, struct fuse_file_info *fi_out, size_t len,
				  int flags)
{
	ssize_t res = flags ? -EINVAL :
		file_do_copy_range(FS(req), req, file_inode(fi_in), off_in, file_inode(fi_out),
				   off_out, len);

	if (res < 0)
		fuse_reply_err(req, -res);
	else
		fuse_reply_write(req, res);
}

void fs_ops_file_init(struct fuse_lowlevel_ops *ops)
{
	ops->open = fs_op_open;
	ops->release = fs_op_release;
	/* No flush: every write is already in the backing file when it is
	 * answered, so close() has nothing to hand us.  The first FLUSH gets
	 * ENOSYS from libfuse and the kernel sends no more, which takes a
	 * synchronous round trip out of every close(). */
	ops->read = fs_op_read;
	ops->write_buf = fs_op_write_buf;
	ops->fsync = fs_op_fsync;
	ops->fallocate = fs_op_fallocate;
	ops->lseek = fs_op_lseek;
	ops->copy_file_range = fs_op_copy_file_range;
}
