/* fs/ops_attr.c — attributes, statfs, extended attributes, and the control
 * xattrs on the mount root (user.reservefs.*). */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/fs.h>
#include <string.h>
#include <sys/statvfs.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "fs_i.h"
#include "acl.h"

#define FS(req) ((struct fs *)fuse_req_userdata(req))
#define CTL_PREFIX "user.reservefs."

static void fs_op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs *fs = FS(req);
	struct fs_inode *in;
	struct stat st;
	int res = fs_inode_get(fs, ino, &in);

	if (res < 0) {
		fuse_reply_err(req, -res);
		return;
	}
	g_mutex_lock(&in->lock);
	fs_inode_fill_stat(fs, in, &st);
	g_mutex_unlock(&in->lock);
	fs_inode_put(fs, in);
	fuse_reply_attr(req, &st, fs->attr_timeout);
}

/* Our times are int64 nanoseconds, 1677-09-21 to 2262-04-11: a time beyond
 * is clamped to the range (as ext4 clamps to its own), never wrapped. */
static int64_t ts_ns(const struct timespec *ts)
{
	const int64_t max_s = INT64_MAX / 1000000000 - 1;

	if (ts->tv_sec > max_s)
		return max_s * 1000000000 + 999999999;
	if (ts->tv_sec < -max_s)
		return -max_s * 1000000000;
	return (int64_t)ts->tv_sec * 1000000000 + ts->tv_nsec;
}

/* what a SETATTR can change (to_set holds nothing else but kill flags) */
#define ATTR_SETTABLE (FUSE_SET_ATTR_MODE | FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID | \
		       FUSE_SET_ATTR_SIZE | FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME | \
		       FUSE_SET_ATTR_ATIME_NOW | FUSE_SET_ATTR_MTIME_NOW | FUSE_SET_ATTR_CTIME)

/* Owner, or CAP_FOWNER: who may chmod the file (and so drop its bits). */
static bool attr_may_chmod(fuse_req_t req, const struct fs_inode *in)
{
	return fuse_req_ctx(req)->uid == in->uid || fs_perm_capable(req, CAP_FOWNER);
}

static int attr_do_setattr(struct fs *fs, fuse_req_t req, struct fs_inode *in,
			   struct stat *attr, int to_set, struct stat *out)
{
	int64_t now = fs_now();
	struct fs_inode_saved saved;
	uint64_t saved_size;
	bool temp = false, grown = false, shrunk = false;
	GArray *undo = NULL;
	mode_t chown_mode;
	int fd = -1, res = 0;

	if (fs->ro)
		return -EROFS;
	g_mutex_lock(&in->lock);
	if (to_set & FUSE_SET_ATTR_SIZE)	/* no write copies into what goes */
		fs_inode_drain_copies(fs, in);
	/* what a failed commit puts back (attributes; a grown size too), taken
	 * after the drain, which may let others change them */
	fs_inode_save(in, &saved);
	saved_size = in->size;
	/* A SETATTR that sets nothing, on a file whose setuid/setgid bits a
	 * chown would drop: a chown(f, -1, -1), which on a kernel filesystem
	 * drops them as any chown does (the kernel flags only a chown naming a
	 * uid or gid), or the kernel's file_remove_privs before a writer's
	 * fallocate or copy_file_range.  FUSE sends both alike. */
	chown_mode = in->mode;
	if (!(to_set & ATTR_SETTABLE) && !S_ISDIR(in->mode))
		chown_mode = fs_perm_kill(req, in->mode, in->gid);
	/* as notify_change()/vfs_truncate() on a kernel filesystem */
	if (fs_immutable(in) ||
	    (fs_append_only(in) && (to_set & (FUSE_SET_ATTR_SIZE | FUSE_SET_ATTR_MODE |
					      FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID |
					      FUSE_SET_ATTR_CTIME)) ) ||
	    (fs_append_only(in) && (((to_set & FUSE_SET_ATTR_ATIME) && !(to_set & FUSE_SET_ATTR_ATIME_NOW)) ||
				    ((to_set & FUSE_SET_ATTR_MTIME) && !(to_set & FUSE_SET_ATTR_MTIME_NOW)))) ||
	    /* dropping the bits is a mode change, as ext4_setattr sees it */
	    (fs_append_only(in) && chown_mode != in->mode)) {
		res = -EPERM;
		goto out;
	}
	/* From someone who may not chmod it: ext4 refuses such a chown, and a
	 * fallocate's or copy's handler drops the bits and sets the times
	 * itself.  Either way nothing changes here, the ctime neither. */
	if (chown_mode != in->mode && !attr_may_chmod(req, in))
		goto out;
	if (to_set & FUSE_SET_ATTR_SIZE) {
		if (!S_ISREG(in->mode)) {
			res = S_ISDIR(in->mode) ? -EISDIR : -EINVAL;
			goto out;
		}
		if (attr->st_size < 0) {
			res = -EINVAL;
			goto out;
		}
		fd = fs_inode_fd(fs, in, &temp);
		if (fd < 0) {
			res = fd;
			goto out;
		}
		res = fs_data_truncate(fs, in, fd, attr->st_size, &undo);
		if (res < 0)
			goto out;
		grown = in->size > saved_size;
		shrunk = in->size < saved_size;
		if (!(to_set & FUSE_SET_ATTR_MTIME))
			in->mtime = now;
		if (!(to_set & FUSE_SET_ATTR_MODE) && !fs->killpriv_v2)
			in->mode = fs_perm_kill_suid(req, in->mode, in->gid);
	}
	/* killpriv v2: the kernel says when a truncate or chown drops them */
	if (fs->killpriv_v2 && fs_io_req_kill() && !(to_set & FUSE_SET_ATTR_MODE) &&
	    !S_ISDIR(in->mode))
		in->mode = fs_perm_kill(req, in->mode, in->gid);
	else if (fs->killpriv_v2 && chown_mode != in->mode)
		in->mode = chown_mode;	/* the owner's bare chown */
	if (to_set & FUSE_SET_ATTR_MODE)
		in->mode = (in->mode & S_IFMT) | (attr->st_mode & 07777);
	if (to_set & FUSE_SET_ATTR_UID)
		in->uid = attr->st_uid;
	if (to_set & FUSE_SET_ATTR_GID)
		in->gid = attr->st_gid;
	if (to_set & FUSE_SET_ATTR_ATIME_NOW)
		in->atime = now;
	else if (to_set & FUSE_SET_ATTR_ATIME)
		in->atime = ts_ns(&attr->st_atim);
	if (to_set & FUSE_SET_ATTR_MTIME_NOW)
		in->mtime = now;
	else if (to_set & FUSE_SET_ATTR_MTIME)
		in->mtime = ts_ns(&attr->st_mtim);
	if (to_set & FUSE_SET_ATTR_CTIME)
		in->ctime = ts_ns(&attr->st_ctim);
	else
		in->ctime = now;
	if ((res = fs_meta_begin(fs)) == 0) {
		res = fs_meta_store_inode(fs, in);
		if (res == 0 && (to_set & FUSE_SET_ATTR_MODE))
			res = fs_acl_chmod(fs, in);
		res = fs_meta_commit(fs, res);
	}
	if (res < 0 && shrunk) {
		/* meta.db cannot take it (a full backing disk), but the data
		 * past the new size is gone: the truncate happened, and the row
		 * follows at the next commit (the size lives in the backing file) */
		g_warning("inode %" PRIu64 ": truncated to %" PRIu64 ", not yet recorded in "
			  "meta.db: %s", (uint64_t)in->ino, in->size, strerror(-res));
		in->attr_dirty = true;
		res = 0;
	} else if (res < 0) {
		/* nothing changed, as the caller is told: the size back, and
		 * the pages the growth reserved (not those reserved before) */
		fs_inode_restore(in, &saved);
		if (grown && ftruncate(fd, saved_size) == 0) {
			in->size = saved_size;
			fs_data_undo(fs, in, undo, 0);
		} else if (grown) {
			in->attr_dirty = true;	/* grown as its backing file is */
		}
	}
out:
	if (undo)
		g_array_free(undo, TRUE);
	if (temp && fd >= 0)
		close(fd);
	fs_inode_fill_stat(fs, in, out);
	g_mutex_unlock(&in->lock);
	return res;
}

static void fs_op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
			  struct fuse_file_info *fi)
{
	struct fs *fs = FS(req);
	struct fs_inode *in;
	struct stat st;
	int res = fs_inode_get(fs, ino, &in);

	if (res == 0) {
		res = attr_do_setattr(fs, req, in, attr, to_set, &st);
		fs_inode_put(fs, in);
	}
	if (res < 0)
		fuse_reply_err(req, -res);
	else
		fuse_reply_attr(req, &st, fs->attr_timeout);
}

static void fs_op_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct fs *fs = FS(req);
	struct statvfs st;

	memset(&st, 0, sizeof(st));
	rsv_statfs(&fs->ledger, &st);
	st.f_namemax = FS_NAME_MAX;
	st.f_fsid = 0x72737666;	/* "rsvf" */
	fuse_reply_statfs(req, &st);
}

/* ---- extended attributes -------------------------------------------- */

static bool xattr_is_acl(const char *name)
{
	return strcmp(name, FS_ACL_ACCESS) == 0 || strcmp(name, FS_ACL_DEFAULT) == 0;
}

/* 0 for a name we keep; EINVAL for a bare namespace ("user."), EOPNOTSUPP
 * for a namespace we do not keep (as ext4) */
static int xattr_check_name(const char *name)
{
	static const char *const ns[] = { "user.", "trusted.", "security." };

	if (xattr_is_acl(name))
		return 0;
	for (size_t i = 0; i < G_N_ELEMENTS(ns); i++)
		if (g_str_has_prefix(name, ns[i]))
			return name[strlen(ns[i])] ? 0 : -EINVAL;
	return -EOPNOTSUPP;
}

static bool xattr_is_ctl(fuse_ino_t ino, const char *name)
{
	return ino == FS_ROOT_INO && g_str_has_prefix(name, CTL_PREFIX);
}

/* The ledger for an inode's xattrs going from in->xattr_bytes to @bytes
 * (in->lock held, before the commit): a growth in whole pages is charged
 * all or nothing (-ENOSPC); *@charged says what to give back if the commit
 * fails.  A shrink is given back by xattr_settle once committed. */
static int xattr_charge(struct fs *fs, struct fs_inode *in, uint64_t bytes, uint64_t *charged)
{
	uint64_t was = fs_xattr_pages(in->xattr_bytes), now = fs_xattr_pages(bytes);

	*charged = 0;
	if (now > was) {
		if (fs_xattr_charge(fs, now - was) < 0)
			return -ENOSPC;
		*charged = now - was;
	}
	in->xattr_bytes = bytes;
	return 0;
}

/* After the commit (@res) of a change from @was bytes of xattrs to
 * in->xattr_bytes (restored already if it failed): pages no longer needed,
 * or charged for nothing, go back. */
static void xattr_settle(struct fs *fs, struct fs_inode *in, int res, uint64_t was,
			 uint64_t charged)
{
	uint64_t before = fs_xattr_pages(was), after = fs_xattr_pages(in->xattr_bytes);

	if (res < 0)
		rsv_release(&fs->ledger, charged);
	else if (after < before)
		rsv_release(&fs->ledger, before - after);
}

/* The inode whose xattr @name a setxattr or removexattr changes, referenced
 * and locked: 0, or -errno with nothing held. */
static int xattr_lock_inode(struct fs *fs, fuse_ino_t ino, const char *name,
			    struct fs_inode **inp)
{
	struct fs_inode *in;
	int res;

	if ((res = xattr_check_name(name)) < 0)
		return res;
	if (fs->ro)
		return -EROFS;
	if ((res = fs_inode_get(fs, ino, &in)) < 0)
		return res;
	g_mutex_lock(&in->lock);
	if (fs_pinned(in))
		res = -EPERM;
	else if (in->deleted)	/* its xattr pages went back to the ledger with its data */
		res = -ENOENT;
	if (res < 0) {
		g_mutex_unlock(&in->lock);
		fs_inode_put(fs, in);
		return res;
	}
	*inp = in;
	return 0;
}

static int xattr_do_set(struct fs *fs, fuse_req_t req, fuse_ino_t ino, const char *name,
			const char *value, size_t size, int flags)
{
	struct fs_inode_saved saved;
	struct fs_inode *in;
	uint64_t charged = 0, freed;
	int64_t delta = 0;
	int res;

	if ((res = xattr_lock_inode(fs, ino, name, &in)) < 0)
		return res;
	if (strcmp(name, FS_ACL_DEFAULT) == 0 && !S_ISDIR(in->mode)) {
		res = -EACCES;
		goto out;
	}
	fs_inode_save(in, &saved);
	if ((res = fs_meta_begin(fs)) == 0) {
		if (strcmp(name, FS_ACL_ACCESS) == 0) {
			/* the mode follows the ACL; an ACL that says no more than
			 * the mode is not kept (as kernel filesystems do) */
			mode_t mode = in->mode;
			res = fs_acl_to_mode(value, size, &mode);
			/* like chmod: setgid goes unless the caller is in the group */
			if (res >= 0 && (mode & S_ISGID) && !fs_perm_in_group_or_fsetid(req, in->gid))
				mode &= ~S_ISGID;
			if (res >= 0) {
				in->mode = mode;
				if (res == 1) {
					res = fs_meta_removexattr(fs, ino, name, &freed);
					if (res == 0)
						delta = -(int64_t)freed;
					else if (res == -ENODATA)
						res = 0;
				} else {
					res = fs_meta_setxattr(fs, ino, name, value, size, flags,
							       &delta);
				}
			}
		} else {
			res = fs_meta_setxattr(fs, ino, name, value, size, flags, &delta);
		}
		if (res == 0)
			res = xattr_charge(fs, in, in->xattr_bytes + delta, &charged);
		if (res == 0) {
			in->has_xattrs = true;
			in->ctime = fs_now();
			res = fs_meta_store_inode(fs, in);
		}
		res = fs_meta_commit(fs, res);
		if (res < 0)
			fs_inode_restore(in, &saved);
		xattr_settle(fs, in, res, saved.xattr_bytes, charged);
	}
out:
	g_mutex_unlock(&in->lock);
	fs_inode_put(fs, in);
	return res;
}

static void fs_op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
			   size_t size, int flags)
{
	struct fs *fs = FS(req);
	int res;

	if (xattr_is_ctl(ino, name))
		res = fs_ctl_setxattr(fs, req, name, value, size);
	else
		res = xattr_do_set(fs, req, ino, name, value, size, flags);
	fuse_reply_err(req, -res);
}

static void xattr_reply(fuse_req_t req, const void *val, size_t len, size_t size)
{
	if (size == 0)
		fuse_reply_xattr(req, len);
	else if (len > size)
		fuse_reply_err(req, ERANGE);
	else
		fuse_reply_buf(req, val, len);
}

static void fs_op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	struct fs *fs = FS(req);
	void *val = NULL;
	size_t len = 0;
	int res;

	if (xattr_is_ctl(ino, name)) {
		GString *s = g_string_new(NULL);
		res = fs_ctl_getxattr(fs, name, s);
		if (res == 0)
			xattr_reply(req, s->str, s->len, size);
		else
			fuse_reply_err(req, -res);
		g_string_free(s, TRUE);
		return;
	}
	if ((res = xattr_check_name(name)) == 0) {
		struct fs_inode *in = NULL;

		res = fs_inode_get(fs, ino, &in);
		if (res == 0 && !__atomic_load_n(&in->has_xattrs, __ATOMIC_RELAXED)) {
			res = -ENODATA;
		} else if (res == 0) {
			g_mutex_lock(&fs->db_lock);
			res = fs_meta_getxattr(fs, ino, name, &val, &len);
			g_mutex_unlock(&fs->db_lock);
		}
		fs_inode_put(fs, in);
	}
	if (res < 0)
		fuse_reply_err(req, -res);
	else
		xattr_reply(req, val, len, size);
	g_free(val);
}

/* trusted.* names are for CAP_SYS_ADMIN: the kernel hides their values from
 * others, so the names go from @s (NUL-terminated names) too.  The caller's
 * capabilities are looked up only when there is such a name. */
static void xattr_hide_trusted(fuse_req_t req, GString *s)
{
	int capable = -1;
	size_t w = 0;

	for (size_t r = 0, n; r < s->len; r += n) {
		bool trusted = g_str_has_prefix(s->str + r, "trusted.");

		n = strlen(s->str + r) + 1;
		if (trusted && capable < 0)
			capable = fs_perm_capable(req, CAP_SYS_ADMIN);
		if (trusted && !capable)
			continue;
		memmove(s->str + w, s->str + r, n);
		w += n;
	}
	g_string_truncate(s, w);
}

static void fs_op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	struct fs *fs = FS(req);
	GString *s = g_string_new(NULL);
	int res;

	g_mutex_lock(&fs->db_lock);
	res = fs_meta_listxattr(fs, ino, s);
	g_mutex_unlock(&fs->db_lock);
	if (res < 0) {
		fuse_reply_err(req, -res);
	} else {
		xattr_hide_trusted(req, s);
		xattr_reply(req, s->str, s->len, size);
	}
	g_string_free(s, TRUE);
}

static int xattr_do_remove(struct fs *fs, fuse_ino_t ino, const char *name)
{
	struct fs_inode_saved saved;
	struct fs_inode *in;
	uint64_t charged = 0, freed = 0;
	int res;

	if ((res = xattr_lock_inode(fs, ino, name, &in)) < 0)
		return res;
	fs_inode_save(in, &saved);
	if ((res = fs_meta_begin(fs)) == 0) {
		res = fs_meta_removexattr(fs, ino, name, &freed);
		if (res == 0)
			res = xattr_charge(fs, in, in->xattr_bytes - MIN(freed, in->xattr_bytes),
					   &charged);
		if (res == 0) {
			in->ctime = fs_now();
			res = fs_meta_store_inode(fs, in);
		}
		res = fs_meta_commit(fs, res);
		if (res < 0)
			fs_inode_restore(in, &saved);
		xattr_settle(fs, in, res, saved.xattr_bytes, charged);
	}
	g_mutex_unlock(&in->lock);
	fs_inode_put(fs, in);
	/* the kernel removes an ACL through set_acl(NULL): on ext4, xfs,
	 * btrfs, tmpfs one that is not there is gone already, not ENODATA */
	if (res == -ENODATA && xattr_is_acl(name))
		res = 0;
	return res;
}

static void fs_op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	struct fs *fs = FS(req);

	if (xattr_is_ctl(ino, name))
		fuse_reply_err(req, EPERM);
	else
		fuse_reply_err(req, -xattr_do_remove(fs, ino, name));
}

/* ---- chattr flags (FS_IOC_GETFLAGS/SETFLAGS, FS_IOC_FSGETXATTR/SETXATTR) -- */

/* The flags we keep, and their xflags twins. */
static const struct { uint32_t fl, xfl; } attr_flag_map[] = {
	{ FS_IMMUTABLE_FL, FS_XFLAG_IMMUTABLE },
	{ FS_APPEND_FL, FS_XFLAG_APPEND },
	{ FS_NODUMP_FL, FS_XFLAG_NODUMP },
	{ FS_NOATIME_FL, FS_XFLAG_NOATIME },
};

static uint32_t attr_to_xflags(uint32_t fl)
{
	uint32_t x = 0;

	for (size_t i = 0; i < G_N_ELEMENTS(attr_flag_map); i++)
		if (fl & attr_flag_map[i].fl)
			x |= attr_flag_map[i].xfl;
	return x;
}

static int attr_from_xflags(uint32_t x, uint32_t *fl)
{
	*fl = 0;
	for (size_t i = 0; i < G_N_ELEMENTS(attr_flag_map); i++)
		if (x & attr_flag_map[i].xfl) {
			*fl |= attr_flag_map[i].fl;
			x &= ~attr_flag_map[i].xfl;
		}
	return x ? -EOPNOTSUPP : 0;
}

static int attr_set_flags(struct fs *fs, struct fs_inode *in, uint32_t fl)
{
	const uint32_t known = FS_IMMUTABLE_FL | FS_APPEND_FL | FS_NODUMP_FL | FS_NOATIME_FL;
	struct fs_inode_saved saved;
	int res;

	if (fl & ~known)
		return -EOPNOTSUPP;
	if (fs->ro)
		return -EROFS;
	/* No permission check here: these ioctls reach us only through the
	 * VFS (vfs_fileattr_set), which has checked ownership (or CAP_FOWNER)
	 * and CAP_LINUX_IMMUTABLE for i and a.  We see a uid, not
	 * capabilities: a check of ours refused a capable non-root caller. */
	g_mutex_lock(&in->lock);
	/* an immutable inode keeps its other flags too until immutable is
	 * cleared, as on ext4 */
	if ((in->flags & fl & FS_IMMUTABLE_FL) && fl != in->flags) {
		g_mutex_unlock(&in->lock);
		return -EPERM;
	}
	fs_inode_save(in, &saved);
	in->flags = fl;
	in->ctime = fs_now();
	if ((res = fs_meta_begin(fs)) == 0)
		res = fs_meta_commit(fs, fs_meta_store_inode(fs, in));
	if (res < 0)
		fs_inode_restore(in, &saved);
	g_mutex_unlock(&in->lock);
	/* the kernel does not refresh its attributes after an ioctl: ctime */
	if (res == 0)
		fs_perm_inval_attr(fs, in->ino);
	return res;
}

/* 0/-errno; what the caller gets back goes to @out (*outlen bytes). */
static int attr_do_ioctl(struct fs *fs, struct fs_inode *in, unsigned int cmd,
			 const void *in_buf, size_t in_bufsz, void *out, size_t *outlen)
{
	struct fsxattr fa;
	uint32_t fl = __atomic_load_n(&in->flags, __ATOMIC_RELAXED);
	int res;

	*outlen = 0;
	switch (cmd) {
	case FS_IOC_GETFLAGS:
		memcpy(out, &fl, sizeof(fl));
		*outlen = sizeof(fl);
		return 0;
	case FS_IOC_FSGETXATTR:
		memset(&fa, 0, sizeof(fa));
		fa.fsx_xflags = attr_to_xflags(fl);
		memcpy(out, &fa, sizeof(fa));
		*outlen = sizeof(fa);
		return 0;
	case FS_IOC_SETFLAGS:
		if (in_bufsz < sizeof(fl))
			return -EINVAL;
		memcpy(&fl, in_buf, sizeof(fl));
		return attr_set_flags(fs, in, fl);
	case FS_IOC_FSSETXATTR:
		if (in_bufsz < sizeof(fa))
			return -EINVAL;
		memcpy(&fa, in_buf, sizeof(fa));
		if ((res = attr_from_xflags(fa.fsx_xflags, &fl)) < 0)
			return res;
		if (fa.fsx_extsize || fa.fsx_projid || fa.fsx_cowextsize)
			return -EOPNOTSUPP;
		return attr_set_flags(fs, in, fl);
	}
	return -ENOTTY;
}

static void fs_op_ioctl(fuse_req_t req, fuse_ino_t ino, unsigned int cmd, void *arg,
			struct fuse_file_info *fi, unsigned flags, const void *in_buf,
			size_t in_bufsz, size_t out_bufsz)
{
	struct fs *fs = FS(req);
	char out[sizeof(struct fsxattr)];
	struct fs_inode *in;
	size_t outlen = 0;
	int res = (flags & FUSE_IOCTL_COMPAT) ? -ENOSYS : fs_inode_get(fs, ino, &in);

	if (res == 0) {
		res = attr_do_ioctl(fs, in, cmd, in_buf, in_bufsz, out, &outlen);
		fs_inode_put(fs, in);
	}
	if (res < 0)
		fuse_reply_err(req, -res);
	else
		fuse_reply_ioctl(req, 0, outlen ? out : NULL, MIN(outlen, out_bufsz));
}

void fs_ops_attr_init(struct fuse_lowlevel_ops *ops)
{
	ops->getattr = fs_op_getattr;
	ops->setattr = fs_op_setattr;
	ops->statfs = fs_op_statfs;
	ops->setxattr = fs_op_setxattr;
	ops->getxattr = fs_op_getxattr;
	ops->listxattr = fs_op_listxattr;
	ops->removexattr = fs_op_removexattr;
	ops->ioctl = fs_op_ioctl;
}
