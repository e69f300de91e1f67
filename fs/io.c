/* fs/io.c — our read/writev on the /dev/fuse channel, around libfuse's.
 *
 * libfuse 3.14 cannot negotiate FUSE_HANDLE_KILLPRIV_V2.  Without it the
 * kernel sends GETXATTR("security.capability") before every write (no
 * SB_NOSEC), doubling the round trips of small writes, and applies FUSE's
 * old setgid rule.  With it the filesystem clears setuid/setgid itself, told
 * by a flag on each WRITE and SETATTR.  So: when the kernel offers the flag
 * in INIT, we add it to libfuse's INIT reply, and for each request we note
 * the kill flag where the handler (same thread) can see it.
 *
 * Nor does libfuse 3.14 know FUSE_STATX (kernel 6.6, protocol 7.39), the one
 * request that carries a birth time: we answer it here, from the inode in
 * memory, and libfuse never sees it.  `stat` then shows the btime we keep.
 * Nor FUSE_TMPFILE (kernel 6.1, protocol 7.37), which libfuse would answer
 * ENOSYS, making every O_TMPFILE open EOPNOTSUPP: answered here too, the
 * work done by fs_dir_tmpfile. */
#include "config.h"

#include <fcntl.h>
#include <linux/fuse.h>
#include <stddef.h>
#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/uio.h>
#include <unistd.h>

#include "fs_i.h"

/* FUSE_STATX, as in the kernel's include/uapi/linux/fuse.h (7.39); the
 * linux/fuse.h of Debian 12 predates it. */
#define IO_FUSE_STATX 52

struct io_sx_time {
	int64_t tv_sec;
	uint32_t tv_nsec;
	int32_t reserved;
};

struct io_statx {
	uint32_t mask;
	uint32_t blksize;
	uint64_t attributes;
	uint32_t nlink;
	uint32_t uid;
	uint32_t gid;
	uint16_t mode;
	uint16_t spare0;
	uint64_t ino;
	uint64_t size;
	uint64_t blocks;
	uint64_t attributes_mask;
	struct io_sx_time atime, btime, ctime, mtime;
	uint32_t rdev_major, rdev_minor;
	uint32_t dev_major, dev_minor;
	uint64_t spare2[14];
};

struct io_statx_in {
	uint32_t getattr_flags;
	uint32_t reserved;
	uint64_t fh;
	uint32_t sx_flags;
	uint32_t sx_mask;
};

struct io_statx_out {
	uint64_t attr_valid;
	uint32_t attr_valid_nsec;
	uint32_t flags;
	uint64_t spare[2];
	struct io_statx stat;
};

G_STATIC_ASSERT(sizeof(struct io_statx) == 256);
G_STATIC_ASSERT(sizeof(struct io_statx_out) == 288);

static __thread bool io_kill;		/* the current request's kill flag */
static uint64_t io_init_unique;		/* the INIT request to answer with v2 */
static struct fs *io_fs;

bool fs_io_req_kill(void)
{
	return io_kill;
}

static void io_sx_time(const struct timespec *ts, struct io_sx_time *t)
{
	t->tv_sec = ts->tv_sec;
	t->tv_nsec = ts->tv_nsec;
}

static uint64_t io_timeout_nsec(double t)
{
	return (uint64_t)((t - (uint64_t)t) * 1e9);
}

/* Sends a reply of @n parts after the header; false if the kernel no longer
 * waits for it (interrupted, or the connection aborted). */
static bool io_reply(int fd, const struct fuse_in_header *h, int error, struct iovec *parts, int n)
{
	struct fuse_out_header oh = { .unique = h->unique, .error = error };
	struct iovec iov[3] = { { &oh, sizeof(oh) } };

	g_assert(n < 3);
	oh.len = sizeof(oh);
	for (int i = 0; i < n; i++) {
		iov[1 + i] = parts[i];
		oh.len += parts[i].iov_len;
	}
	if (writev(fd, iov, 1 + n) < 0) {
		g_debug("reply to opcode %u: %s", h->opcode, strerror(errno));
		return false;
	}
	return true;
}

/* Answers a FUSE_STATX request on @fd: what GETATTR says, plus btime (and
 * the chattr flags as stx_attributes, which today's kernels drop). */
static void io_statx(int fd, const struct fuse_in_header *h)
{
	struct io_statx_out out;
	struct iovec part = { &out, sizeof(out) };
	struct fs_inode *in;
	struct stat st;
	struct timespec btime;
	int res = fs_inode_get(io_fs, h->nodeid, &in);

	memset(&out, 0, sizeof(out));
	if (res == 0) {
		g_mutex_lock(&in->lock);
		fs_inode_fill_stat(io_fs, in, &st);
		fs_ns_to_ts(in->btime, &btime);
		out.stat.attributes = in->flags & (STATX_ATTR_IMMUTABLE | STATX_ATTR_APPEND |
						   STATX_ATTR_NODUMP);
		g_mutex_unlock(&in->lock);
		fs_inode_put(io_fs, in);
		out.attr_valid = (uint64_t)io_fs->attr_timeout;
		out.stat.mask = STATX_BASIC_STATS | STATX_BTIME;
		out.stat.blksize = st.st_blksize;
		out.stat.attributes_mask = STATX_ATTR_IMMUTABLE | STATX_ATTR_APPEND |
					   STATX_ATTR_NODUMP;
		out.stat.nlink = st.st_nlink;
		out.stat.uid = st.st_uid;
		out.stat.gid = st.st_gid;
		out.stat.mode = st.st_mode;
		out.stat.ino = st.st_ino;
		out.stat.size = st.st_size;
		out.stat.blocks = st.st_blocks;
		io_sx_time(&st.st_atim, &out.stat.atime);
		io_sx_time(&btime, &out.stat.btime);
		io_sx_time(&st.st_mtim, &out.stat.mtime);
		io_sx_time(&st.st_ctim, &out.stat.ctime);
		out.stat.rdev_major = major(st.st_rdev);
		out.stat.rdev_minor = minor(st.st_rdev);
	}
	/* a failed reply means the request is gone (interrupted, or the
	 * connection aborted): nothing to undo */
	io_reply(fd, h, res, &part, res == 0 ? 1 : 0);
}

/* Answers FUSE_TMPFILE: a FUSE_CREATE without a name (the kernel sends
 * "/"), answered as one, with an entry and an open file. */
static void io_tmpfile(int fd, const struct fuse_in_header *h, const struct fuse_create_in *arg)
{
	struct fuse_ctx ctx = { .uid = h->uid, .gid = h->gid, .pid = h->pid, .umask = arg->umask };
	struct fuse_entry_param e;
	struct fuse_entry_out eo;
	struct fuse_open_out oo;
	struct iovec parts[2] = { { &eo, sizeof(eo) }, { &oo, sizeof(oo) } };
	uint64_t fh;
	int res = fs_dir_tmpfile(io_fs, &ctx, h->nodeid, arg->mode, arg->flags, &e, &fh);

	if (res < 0) {
		io_reply(fd, h, res, NULL, 0);
		return;
	}
	memset(&eo, 0, sizeof(eo));
	memset(&oo, 0, sizeof(oo));
	eo.nodeid = e.ino;
	eo.generation = e.generation;
	eo.entry_valid = (uint64_t)e.entry_timeout;
	eo.entry_valid_nsec = io_timeout_nsec(e.entry_timeout);
	eo.attr_valid = (uint64_t)e.attr_timeout;
	eo.attr_valid_nsec = io_timeout_nsec(e.attr_timeout);
	eo.attr.ino = e.attr.st_ino;
	eo.attr.mode = e.attr.st_mode;
	eo.attr.nlink = e.attr.st_nlink;
	eo.attr.uid = e.attr.st_uid;
	eo.attr.gid = e.attr.st_gid;
	eo.attr.size = e.attr.st_size;
	eo.attr.blocks = e.attr.st_blocks;
	eo.attr.blksize = e.attr.st_blksize;
	eo.attr.atime = e.attr.st_atim.tv_sec;
	eo.attr.atimensec = e.attr.st_atim.tv_nsec;
	eo.attr.mtime = e.attr.st_mtim.tv_sec;
	eo.attr.mtimensec = e.attr.st_mtim.tv_nsec;
	eo.attr.ctime = e.attr.st_ctim.tv_sec;
	eo.attr.ctimensec = e.attr.st_ctim.tv_nsec;
	oo.fh = fh;
	oo.open_flags = FOPEN_KEEP_CACHE;	/* as every open (ops_file.c) */
	if (!io_reply(fd, h, 0, parts, 2)) {
		/* the kernel holds neither the open nor the entry */
		fs_inode_release(io_fs, (struct fs_inode *)(uintptr_t)fh);
		fs_inode_forget(io_fs, e.ino, 1);
	}
}

/* Notes what the handler needs from the raw request (see the top). */
static ssize_t io_classify(void *buf, ssize_t n)
{
	const struct fuse_in_header *h = buf;
	const char *arg = (const char *)buf + sizeof(*h);
	size_t have = n > (ssize_t)sizeof(*h) ? (size_t)n - sizeof(*h) : 0;

	io_kill = false;
	if (n < (ssize_t)sizeof(*h))
		return n;
	switch (h->opcode) {
	case FUSE_INIT:
		if (have >= offsetof(struct fuse_init_in, flags) + sizeof(uint32_t) &&
		    (((const struct fuse_init_in *)arg)->flags & FUSE_HANDLE_KILLPRIV_V2))
			__atomic_store_n(&io_init_unique, h->unique, __ATOMIC_RELAXED);
		break;
	case FUSE_WRITE:
		if (have >= sizeof(struct fuse_write_in))
			io_kill = ((const struct fuse_write_in *)arg)->write_flags &
				  FUSE_WRITE_KILL_SUIDGID;
		break;
	case FUSE_SETATTR:
		if (have >= sizeof(struct fuse_setattr_in))
			io_kill = ((const struct fuse_setattr_in *)arg)->valid & FATTR_KILL_SUIDGID;
		break;
	}
	return n;
}

static ssize_t io_read(int fd, void *buf, size_t len, void *userdata)
{
	ssize_t n = read(fd, buf, len);
	const struct fuse_in_header *h = buf;

	/* answered here; the next request is libfuse's */
	for (;;) {
		if (n >= (ssize_t)(sizeof(*h) + sizeof(struct io_statx_in)) &&
		    h->opcode == IO_FUSE_STATX)
			io_statx(fd, h);
		else if (n >= (ssize_t)(sizeof(*h) + sizeof(struct fuse_create_in)) &&
			 h->opcode == FUSE_TMPFILE)
			io_tmpfile(fd, h, (const struct fuse_create_in *)(h + 1));
		else
			break;
		n = read(fd, buf, len);
	}
	return io_classify(buf, n);
}

static ssize_t io_writev(int fd, struct iovec *iov, int count, void *userdata)
{
	uint64_t init = __atomic_load_n(&io_init_unique, __ATOMIC_RELAXED);

	if (init && count >= 2 && iov[0].iov_len >= sizeof(struct fuse_out_header) &&
	    iov[1].iov_len >= offsetof(struct fuse_init_out, flags) + sizeof(uint32_t)) {
		struct fuse_out_header *oh = iov[0].iov_base;

		if (oh->unique == init && oh->error == 0) {
			((struct fuse_init_out *)iov[1].iov_base)->flags |= FUSE_HANDLE_KILLPRIV_V2;
			io_fs->killpriv_v2 = true;
			__atomic_store_n(&io_init_unique, 0, __ATOMIC_RELAXED);
		}
	}
	return writev(fd, iov, count);
}

static ssize_t io_splice(int fdin, off_t *offin, int fdout, off_t *offout, size_t len,
			 unsigned int flags, void *userdata)
{
	return splice(fdin, offin, fdout, offout, len, flags);
}

static const struct fuse_custom_io io_ops = {
	.read = io_read,
	.writev = io_writev,
	.splice_send = io_splice,
	.splice_receive = io_splice,
};

int fs_io_install(struct fs *fs, struct fuse_session *se)
{
	io_fs = fs;
	return fuse_session_custom_io(se, &io_ops, fuse_session_fd(se));
}
