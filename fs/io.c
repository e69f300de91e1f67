/* fs/io.c — our read/writev on the /dev/fuse channel, around libfuse's.
 *
 * libfuse 3.14 cannot negotiate FUSE_HANDLE_KILLPRIV_V2.  Without it the
 * kernel sends GETXATTR("security.capability") before every write (no
 * SB_NOSEC), doubling the round trips of small writes, and applies FUSE's
 * old setgid rule.  With it the filesystem clears setuid/setgid itself, told
 * by a flag on each WRITE and SETATTR.  So: when the kernel offers the flag
 * in INIT, we add it to libfuse's INIT reply, and for each request we note
 * the kill flag where the handler (same thread) can see it. */
#include "config.h"

#include <fcntl.h>
#include <linux/fuse.h>
#include <stddef.h>
#include <sys/uio.h>
#include <unistd.h>

#include "fs_i.h"

static __thread bool io_kill;		/* the current request's kill flag */
static uint64_t io_init_unique;		/* the INIT request to answer with v2 */
static struct fs *io_fs;

bool fs_io_req_kill(void)
{
	return io_kill;
}

static ssize_t io_read(int fd, void *buf, size_t len, void *userdata)
{
	ssize_t n = read(fd, buf, len);
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
