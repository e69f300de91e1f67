/* fs/ops_dir.c — namespace operations: lookup, forget, create, mkdir, mknod,
 * symlink, link, unlink, rmdir, rename, readdir(plus), readlink.
 * Handlers are thin: the work is in a dir_do_*() returning 0/-errno, the
 * handler replies exactly once. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fs_i.h"
#include "acl.h"

#define FS(req) ((struct fs *)fuse_req_userdata(req))

static int dir_check_name(const char *name)
{
	size_t len = strlen(name);

	if (len > FS_NAME_MAX)
		return -ENAMETOOLONG;
	if (len == 0 || strchr(name, '/'))
		return -EINVAL;
	return 0;
}

/* Lock several inodes in ascending inode order, skipping repeats. */
static void dir_lock_many(struct fs_inode **v, int n, bool lock)
{
	struct fs_inode *s[4];
	int i, j, m = 0;

	for (i = 0; i < n; i++) {
		if (!v[i])
			continue;
		for (j = 0; j < m && s[j] != v[i]; j++)
			;
		if (j == m)
			s[m++] = v[i];
	}
	for (i = 1; i < m; i++)
		for (j = i; j > 0 && s[j - 1]->ino > s[j]->ino; j--) {
			struct fs_inode *t = s[j];
			s[j] = s[j - 1];
			s[j - 1] = t;
		}
	for (i = 0; i < m; i++) {
		if (lock)
			g_mutex_lock(&s[i]->lock);
		else
			g_mutex_unlock(&s[m - 1 - i]->lock);
	}
}

/* ---- lookup / forget ------------------------------------------------ */

/* The entry the kernel is about to be given: one more lookup reference. */
static void dir_take_entry(struct fs *fs, struct fs_inode *in, struct fuse_entry_param *e)
{
	g_mutex_lock(&in->lock);
	fs_inode_fill_entry(fs, in, e);
	g_mutex_unlock(&in->lock);
	fs_inode_lookup_inc(fs, in);
}

/* Replies with an entry from dir_take_entry.  A reply the kernel no longer
 * waits for (its connection aborted) gave it no reference: taken back. */
static void dir_reply_entry(fuse_req_t req, const struct fuse_entry_param *e)
{
	if (fuse_reply_entry(req, e) == -ENOENT && e->ino)
		fs_inode_forget(FS(req), e->ino, 1);
}

static int dir_do_lookup(struct fs *fs, fuse_ino_t parent, const char *name,
			 struct fuse_entry_param *e)
{
	struct fs_inode *dir, *in;
	fuse_ino_t ino = 0;
	int res;

	if ((res = dir_check_name(name)) < 0)
		return res;
	if ((res = fs_inode_get(fs, parent, &dir)) < 0)
		return res;
	/* "." of any inode: the kernel resolves file handles (open_by_handle,
	 * NFS export) by looking up "." on the nodeid itself */
	if (strcmp(name, ".") == 0) {
		ino = parent;
		if (__atomic_load_n(&dir->nlink, __ATOMIC_RELAXED) == 0)
			res = -ESTALE;
	} else if (!S_ISDIR(dir->mode)) {
		res = -ENOTDIR;
	} else if (strcmp(name, "..") == 0) {
		g_mutex_lock(&dir->lock);
		ino = dir->parent;
		g_mutex_unlock(&dir->lock);
	}
	fs_inode_put(fs, dir);
	if (res < 0)
		return res;
	if (!ino)	/* the common case: dentry and inode in one query */
		res = fs_inode_lookup(fs, parent, name, &in);
	else if ((res = fs_inode_get(fs, ino, &in)) == -ESTALE)
		res = -ENOENT;
	if (res < 0)
		return res;
	dir_take_entry(fs, in, e);
	fs_inode_put(fs, in);
	return 0;
}

static void fs_op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fs *fs = FS(req);
	struct fuse_entry_param e;
	int res = dir_do_lookup(fs, parent, name, &e);

	if (res == -ENOENT) {
		/* negative entries can be cached: every change comes through us */
		memset(&e, 0, sizeof(e));
		e.entry_timeout = fs->attr_timeout;
		fuse_reply_entry(req, &e);
	} else if (res < 0) {
		fuse_reply_err(req, -res);
	} else {
		dir_reply_entry(req, &e);
	}
}

static void fs_op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	fs_inode_forget(FS(req), ino, nlookup);
	fuse_reply_none(req);
}

static void fs_op_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *f)
{
	fs_inode_forget_multi(FS(req), f, count);
	fuse_reply_none(req);
}

/* ---- creating inodes ------------------------------------------------- */

struct dir_new {
	mode_t mode;
	dev_t rdev;
	const char *link;	/* symlinks */
	fuse_ino_t link_ino;	/* hard links: the existing inode */
	bool tmpfile;		/* O_TMPFILE: no name, link count 0 */
	bool linkable;		/* O_TMPFILE without O_EXCL: may be linked */
};

/* A directory whose entries changed in this transaction (lock held, its
 * times set): a new link count goes to SQLite with the entries; new times
 * alone stay in memory like a file's, stored at fsync, eviction or unmount,
 * which keeps the directory's row out of the commit. */
static int dir_save(struct fs *fs, struct fs_inode *dir, uint32_t nlink_before)
{
	if (dir->nlink != nlink_before)
		return fs_meta_store_inode(fs, dir);
	dir->attr_dirty = true;
	return 0;
}

/* Creates @name in @parent (with nw->tmpfile: no name; the inode starts as
 * an orphan, freed at its last close unless linked first).  The new inode
 * is in the table with nref 1; the caller replies and adds the lookup
 * count. */
static int dir_do_create(struct fs *fs, const struct fuse_ctx *ctx, fuse_ino_t parent,
			 const char *name, const struct dir_new *nw, struct fs_inode **out)
{
	struct fs_inode_saved dir_saved;
	struct fs_inode *dir, *in;
	bool charged = false, backing = false;
	uint64_t xcharged = 0;		/* pages of inherited ACLs */
	fuse_ino_t old;
	int res;

	if (fs->ro)
		return -EROFS;
	if (!nw->tmpfile && (res = dir_check_name(name)) < 0)
		return res;
	if ((res = fs_inode_get(fs, parent, &dir)) < 0)
		return res;
	in = fs_inode_alloc();
	if (rsv_inode_get(&fs->ledger) < 0) {
		rsv_count_enospc(&fs->ledger, RSV_EV_CREATE);
		res = -ENOSPC;
		goto out_put;
	}
	charged = true;
	g_mutex_lock(&dir->lock);
	if (!S_ISDIR(dir->mode) || dir->nlink == 0) {
		res = S_ISDIR(dir->mode) ? -ENOENT : -ENOTDIR;
		goto out_unlock;
	}
	if (fs_immutable(dir)) {
		res = -EPERM;
		goto out_unlock;
	}
	in->mode = nw->mode;
	in->rdev = nw->rdev;
	in->uid = ctx->uid;
	in->gid = ctx->gid;
	/* BSD group semantics on a setgid directory */
	if (dir->mode & S_ISGID) {
		in->gid = dir->gid;
		if (S_ISDIR(in->mode))
			in->mode |= S_ISGID;
	}
	in->flags = dir->flags & FS_FL_INHERITED;
	in->nlink = nw->tmpfile ? 0 : S_ISDIR(in->mode) ? 2 : 1;
	in->linkable = nw->linkable;
	in->atime = in->mtime = in->ctime = in->btime = fs_now();
	in->parent = S_ISDIR(in->mode) ? parent : 0;
	in->gen = fs->generation;
	in->size = nw->link ? strlen(nw->link) : 0;
	in->rsv_loaded = true;

	fs_inode_save(dir, &dir_saved);
	if ((res = fs_meta_begin(fs)) < 0)
		goto out_unlock;
	res = nw->tmpfile ? -ENOENT : fs_meta_lookup(fs, parent, name, &old);
	if (res == 0)
		res = -EEXIST;
	else if (res == -ENOENT)
		res = 0;
	if (res == 0 && dir->has_xattrs)
		res = fs_acl_inherit(fs, dir->ino, &in->mode, ctx->umask, NULL);
	else if (res == 0 && !S_ISLNK(in->mode))
		in->mode &= ~(ctx->umask & 0777);	/* no default ACL to inherit */
	if (res == 0)
		res = fs_meta_insert_inode(fs, in, nw->link);
	if (res == 0 && dir->has_xattrs)
		res = fs_acl_inherit(fs, dir->ino, &in->mode, ctx->umask, in);
	/* inherited ACLs cost their pages, as a setxattr's would */
	if (res == 0 && (res = fs_xattr_charge(fs, fs_xattr_pages(in->xattr_bytes))) == 0)
		xcharged = fs_xattr_pages(in->xattr_bytes);
	in->has_xattrs = in->xattr_bytes != 0;	/* default ACLs are inherited */
	if (res == 0 && !nw->tmpfile)
		res = fs_meta_link(fs, parent, name, in->ino, true);
	if (res == 0 && S_ISREG(in->mode)) {
		/* kept: CREATE opens it next */
		in->fd = fs_backing_create(fs, in->ino);
		if (in->fd < 0) {
			res = in->fd;
			in->fd = -1;
		} else {
			backing = true;
		}
	}
	if (res == 0 && !nw->tmpfile) {
		uint32_t nlink = dir->nlink;

		dir->mtime = dir->ctime = in->ctime;
		if (S_ISDIR(in->mode))
			dir->nlink++;
		res = dir_save(fs, dir, nlink);
	}
	res = fs_meta_finish(fs, res);
	if (res == 0)
		fs_inode_insert(fs, in);
	else
		fs_inode_restore(dir, &dir_saved);
	g_mutex_unlock(&fs->db_lock);
	if (res < 0 && backing) {
		close(in->fd);
		fs_backing_unlink(fs, in->ino);
	}
out_unlock:
	g_mutex_unlock(&dir->lock);
out_put:
	fs_inode_put(fs, dir);
	if (res < 0) {
		if (charged)
			rsv_inode_put(&fs->ledger);
		rsv_release(&fs->ledger, xcharged);
		fs_inode_free(in);
		return res;
	}
	*out = in;
	return 0;
}

static void dir_reply_new(fuse_req_t req, int res, struct fs_inode *in)
{
	struct fs *fs = FS(req);
	struct fuse_entry_param e;

	if (res < 0) {
		fuse_reply_err(req, -res);
		return;
	}
	dir_take_entry(fs, in, &e);
	fs_inode_put(fs, in);
	dir_reply_entry(req, &e);
}

static void fs_op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	struct dir_new nw = { .mode = S_IFDIR | (mode & 07777) };
	struct fs_inode *in = NULL;
	int res = dir_do_create(FS(req), fuse_req_ctx(req), parent, name, &nw, &in);

	dir_reply_new(req, res, in);
}

static void fs_op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
			dev_t rdev)
{
	struct dir_new nw = { .mode = mode, .rdev = rdev };
	struct fs_inode *in = NULL;
	int res;

	switch (mode & S_IFMT) {
	case S_IFREG: case S_IFIFO: case S_IFSOCK: case S_IFCHR: case S_IFBLK:
		res = dir_do_create(FS(req), fuse_req_ctx(req), parent, name, &nw, &in);
		break;
	default:
		res = -EINVAL;
	}
	dir_reply_new(req, res, in);
}

static void fs_op_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name)
{
	struct dir_new nw = { .mode = S_IFLNK | 0777, .link = link };
	struct fs_inode *in = NULL;
	int res = strlen(link) >= 4096 ? -ENAMETOOLONG :
		  dir_do_create(FS(req), fuse_req_ctx(req), parent, name, &nw, &in);

	dir_reply_new(req, res, in);
}

static void fs_op_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
			 struct fuse_file_info *fi)
{
	struct fs *fs = FS(req);
	struct dir_new nw = { .mode = S_IFREG | (mode & 07777) };
	struct fuse_entry_param e;
	struct fs_inode *in = NULL;
	int res = dir_do_create(fs, fuse_req_ctx(req), parent, name, &nw, &in);

	if (res == 0 && (res = fs_inode_open(fs, in)) < 0)
		fs_inode_put(fs, in);	/* created, not opened: the kernel looks it up */
	if (res < 0) {
		fuse_reply_err(req, -res);
		return;
	}
	dir_take_entry(fs, in, &e);
	fi->fh = (uintptr_t)in;
	fi->keep_cache = 1;
	fs_inode_put(fs, in);	/* nopen keeps it */
	if (fuse_reply_create(req, &e, fi) == -ENOENT) {
		/* the kernel no longer waits (its connection aborted): undo
		 * the open and the entry's reference */
		fs_inode_release(fs, in);
		fs_inode_forget(fs, e.ino, 1);
	}
}

int fs_dir_tmpfile(struct fs *fs, const struct fuse_ctx *ctx, fuse_ino_t parent, mode_t mode,
		   int flags, struct fuse_entry_param *e, uint64_t *fh)
{
	struct dir_new nw = { .mode = S_IFREG | (mode & 07777), .tmpfile = true,
			      .linkable = !(flags & O_EXCL) };
	struct fs_inode *in = NULL;
	int res = dir_do_create(fs, ctx, parent, NULL, &nw, &in);

	if (res == 0 && (res = fs_inode_open(fs, in)) < 0)
		fs_inode_put(fs, in);	/* evicted at once: an orphan nobody holds */
	if (res < 0)
		return res;
	dir_take_entry(fs, in, e);
	*fh = (uintptr_t)in;
	fs_inode_put(fs, in);	/* nopen keeps it */
	return 0;
}

static int dir_do_link(struct fs *fs, fuse_ino_t ino, fuse_ino_t newparent, const char *newname,
		       struct fs_inode **out)
{
	struct fs_inode *v[2] = { NULL, NULL };
	struct fs_inode_saved saved[2];
	fuse_ino_t old;
	int res;

	if (fs->ro)
		return -EROFS;
	if ((res = dir_check_name(newname)) < 0)
		return res;
	if ((res = fs_inode_get(fs, ino, &v[0])) < 0)
		return res;
	if ((res = fs_inode_get(fs, newparent, &v[1])) < 0)
		goto out;
	dir_lock_many(v, 2, true);
	if (S_ISDIR(v[0]->mode))
		res = -EPERM;
	else if (v[0]->nlink == 0 && !v[0]->linkable)
		res = -ENOENT;	/* the VFS allows only an O_TMPFILE's first link */
	else if (v[0]->nlink >= 65000)
		res = -EMLINK;
	else if (v[1]->nlink == 0)
		res = -ENOENT;
	else if (fs_pinned(v[0]) || fs_immutable(v[1]))
		res = -EPERM;
	for (int i = 0; i < 2; i++)
		fs_inode_save(v[i], &saved[i]);
	if (res == 0 && (res = fs_meta_begin(fs)) == 0) {
		res = fs_meta_lookup(fs, newparent, newname, &old);
		res = res == 0 ? -EEXIST : res == -ENOENT ? 0 : res;
		if (res == 0)
			res = fs_meta_link(fs, newparent, newname, ino, false);
		if (res == 0) {
			v[0]->nlink++;
			v[0]->ctime = v[1]->mtime = v[1]->ctime = fs_now();
			res = fs_meta_store_inode(fs, v[0]);
		}
		if (res == 0)
			res = dir_save(fs, v[1], v[1]->nlink);
		res = fs_meta_commit(fs, res);
		if (res < 0)
			for (int i = 0; i < 2; i++)
				fs_inode_restore(v[i], &saved[i]);
		else
			v[0]->linkable = false;
	}
	dir_lock_many(v, 2, false);
out:
	fs_inode_put(fs, v[1]);
	if (res < 0) {
		fs_inode_put(fs, v[0]);
		return res;
	}
	*out = v[0];
	return 0;
}

static void fs_op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
	struct fs_inode *in = NULL;

	int res = dir_do_link(FS(req), ino, newparent, newname, &in);

	dir_reply_new(req, res, in);
}

/* ---- removing and renaming ------------------------------------------ */

/* Drops one link of @in (whose dentry the caller removed); in->lock held,
 * inside a transaction. */
static int dir_drop_link(struct fs *fs, struct fs_inode *in, int64_t now)
{
	bool open;

	if (S_ISDIR(in->mode))
		in->nlink = 0;
	else if (in->nlink > 0)
		in->nlink--;
	in->ctime = now;
	if (in->nlink > 0)
		return fs_meta_store_inode(fs, in);
	/* The last link: nobody can reach the inode by name any more.  If
	 * nobody has it open either, its row goes in this same transaction
	 * (the in-memory inode stays until the kernel forgets it); otherwise
	 * it stays as an orphan that the last close, or recovery, frees. */
	g_mutex_lock(&fs->itable_lock);
	open = in->nopen > 0;
	g_mutex_unlock(&fs->itable_lock);
	if (open)
		return fs_meta_store_inode(fs, in);
	in->row_gone = true;
	return fs_meta_delete_inode(fs, in->ino);
}

static int dir_do_remove(struct fs *fs, fuse_ino_t parent, const char *name, bool isdir)
{
	struct fs_inode *v[2] = { NULL, NULL };
	struct fs_inode_saved saved[2];
	fuse_ino_t ino, again;
	int64_t now;
	int res;

	if (fs->ro)
		return -EROFS;
	if ((res = dir_check_name(name)) < 0)
		return res;
	if ((res = fs_inode_get(fs, parent, &v[0])) < 0)
		return res;
	/* dentry and inode in one query; re-checked inside the transaction */
	if ((res = fs_inode_lookup(fs, parent, name, &v[1])) < 0)
		goto out;
	ino = v[1]->ino;
	dir_lock_many(v, 2, true);
	if (isdir && !S_ISDIR(v[1]->mode))
		res = -ENOTDIR;
	else if (!isdir && S_ISDIR(v[1]->mode))
		res = -EISDIR;
	else if (fs_pinned(v[0]) || fs_pinned(v[1]))
		res = -EPERM;	/* may_delete(): append-only dir, pinned victim */
	for (int i = 0; i < 2; i++)
		fs_inode_save(v[i], &saved[i]);
	if (res == 0 && (res = fs_meta_begin(fs)) == 0) {
		res = fs_meta_lookup(fs, parent, name, &again);
		if (res == 0 && again != ino)
			res = -EAGAIN;	/* raced with a rename: the VFS prevents this */
		if (res == 0 && isdir) {
			res = fs_meta_dir_empty(fs, ino);
			res = res == 1 ? 0 : res == 0 ? -ENOTEMPTY : res;
		}
		if (res == 0)
			res = fs_meta_unlink(fs, parent, name);
		now = fs_now();
		if (res == 0)
			res = dir_drop_link(fs, v[1], now);
		if (res == 0) {
			uint32_t nlink = v[0]->nlink;

			v[0]->mtime = v[0]->ctime = now;
			if (isdir)
				v[0]->nlink--;
			res = dir_save(fs, v[0], nlink);
		}
		res = fs_meta_finish(fs, res);
		if (res < 0)
			for (int i = 0; i < 2; i++)
				fs_inode_restore(v[i], &saved[i]);
		g_mutex_unlock(&fs->db_lock);
	}
	dir_lock_many(v, 2, false);
	if (res == 0)
		fs_inode_maybe_free_data(fs, v[1]);
	fs_inode_put(fs, v[1]);
out:
	fs_inode_put(fs, v[0]);
	return res;
}

static void fs_op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	fuse_reply_err(req, -dir_do_remove(FS(req), parent, name, false));
}

static void fs_op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	fuse_reply_err(req, -dir_do_remove(FS(req), parent, name, true));
}

/* Inside the transaction, all four inodes locked. */
static int dir_rename_locked(struct fs *fs, struct fs_inode *sp, const char *name,
			     struct fs_inode *dp, const char *newname,
			     struct fs_inode *src, struct fs_inode *dst, unsigned flags)
{
	uint32_t sp_nlink = sp->nlink, dp_nlink = dp->nlink;
	int64_t now = fs_now();
	int res;

	if (flags & RENAME_EXCHANGE) {
		if (!dst)
			return -ENOENT;
		if ((res = fs_meta_relink(fs, sp->ino, name, dst->ino)) < 0 ||
		    (res = fs_meta_relink(fs, dp->ino, newname, src->ino)) < 0)
			return res;
		if (sp != dp && S_ISDIR(src->mode) != S_ISDIR(dst->mode)) {
			struct fs_inode *dir_moved_in = S_ISDIR(src->mode) ? dp : sp;
			struct fs_inode *dir_moved_out = S_ISDIR(src->mode) ? sp : dp;
			dir_moved_in->nlink++;
			dir_moved_out->nlink--;
		}
		if (S_ISDIR(src->mode))
			src->parent = dp->ino;
		if (S_ISDIR(dst->mode))
			dst->parent = sp->ino;
		src->ctime = dst->ctime = now;
		if ((res = fs_meta_store_inode(fs, dst)) < 0)
			return res;
	} else {
		if (dst) {
			if (flags & RENAME_NOREPLACE)
				return -EEXIST;
			if (S_ISDIR(src->mode) && !S_ISDIR(dst->mode))
				return -ENOTDIR;
			if (!S_ISDIR(src->mode) && S_ISDIR(dst->mode))
				return -EISDIR;
			if (S_ISDIR(dst->mode)) {
				res = fs_meta_dir_empty(fs, dst->ino);
				if (res <= 0)
					return res == 0 ? -ENOTEMPTY : res;
				dp->nlink--;
			}
			if ((res = fs_meta_unlink(fs, dp->ino, newname)) < 0 ||
			    (res = dir_drop_link(fs, dst, now)) < 0)
				return res;
		}
		if ((res = fs_meta_move(fs, sp->ino, name, dp->ino, newname)) < 0)
			return res;
		if (S_ISDIR(src->mode) && sp != dp) {
			sp->nlink--;
			dp->nlink++;
			src->parent = dp->ino;
		}
		src->ctime = now;
	}
	sp->mtime = sp->ctime = dp->mtime = dp->ctime = now;
	if ((res = fs_meta_store_inode(fs, src)) < 0 ||
	    (res = dir_save(fs, sp, sp_nlink)) < 0)
		return res;
	return sp == dp ? 0 : dir_save(fs, dp, dp_nlink);
}

/* RENAME_WHITEOUT: a character device 0:0 takes the source's name (what
 * overlayfs uses to hide a lower file).  Inside the rename's transaction.
 * No ACL of its own from the directory's default ACL, unlike on ext4:
 * nothing reads a whiteout's permissions. */
static int dir_whiteout(struct fs *fs, const struct fuse_ctx *ctx, struct fs_inode *dir,
			const char *name)
{
	struct fs_inode w;
	int res;

	memset(&w, 0, sizeof(w));
	w.mode = S_IFCHR;
	w.uid = ctx->uid;
	w.gid = (dir->mode & S_ISGID) ? dir->gid : ctx->gid;
	w.flags = dir->flags & FS_FL_INHERITED;
	w.nlink = 1;
	w.atime = w.mtime = w.ctime = w.btime = fs_now();
	w.gen = fs->generation;
	if ((res = fs_meta_insert_inode(fs, &w, NULL)) < 0)
		return res;
	return fs_meta_link(fs, dir->ino, name, w.ino, true);
}

static int dir_do_rename(struct fs *fs, fuse_req_t req, fuse_ino_t parent, const char *name,
			 fuse_ino_t newparent, const char *newname, unsigned flags)
{
	struct fs_inode *v[4] = { NULL, NULL, NULL, NULL };	/* sp, dp, src, dst */
	struct fs_inode_saved saved[4];
	fuse_ino_t sino, dino, check;
	bool whiteout = flags & RENAME_WHITEOUT, charged = false;
	int res;

	if (flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE | RENAME_WHITEOUT))
		return -EINVAL;
	if ((flags & RENAME_EXCHANGE) && (flags & (RENAME_NOREPLACE | RENAME_WHITEOUT)))
		return -EINVAL;
	if (fs->ro)
		return -EROFS;
	if ((res = dir_check_name(name)) < 0 || (res = dir_check_name(newname)) < 0)
		return res;
	/* dentries and inodes in one query each; re-checked in the transaction */
	if ((res = fs_inode_lookup(fs, parent, name, &v[2])) < 0)
		return res;
	res = fs_inode_lookup(fs, newparent, newname, &v[3]);
	if (res < 0 && res != -ENOENT)
		goto out;
	sino = v[2]->ino;
	dino = v[3] ? v[3]->ino : 0;
	if (sino == dino && !whiteout) {
		res = (flags & RENAME_NOREPLACE) ? -EEXIST : 0;	/* same inode: nothing to do */
		goto out;
	}
	if (whiteout && rsv_inode_get(&fs->ledger) < 0) {
		rsv_count_enospc(&fs->ledger, RSV_EV_CREATE);
		res = -ENOSPC;
		goto out;
	}
	charged = whiteout;
	if ((res = fs_inode_get(fs, parent, &v[0])) < 0 ||
	    (res = fs_inode_get(fs, newparent, &v[1])) < 0)
		goto out;
	dir_lock_many(v, 4, true);
	for (int i = 0; i < 4; i++)
		if (v[i])
			fs_inode_save(v[i], &saved[i]);
	if (fs_pinned(v[0]) || fs_pinned(v[2]) || fs_immutable(v[1]) ||
	    (v[3] && (fs_pinned(v[3]) || fs_append_only(v[1]))))
		res = -EPERM;
	else if ((res = fs_meta_begin(fs)) == 0) {
		res = fs_meta_lookup(fs, parent, name, &check);
		if (res == 0 && check != sino)
			res = -EAGAIN;
		if (res == 0) {
			res = fs_meta_lookup(fs, newparent, newname, &check);
			if (res == -ENOENT)
				res = dino ? -EAGAIN : 0;
			else if (res == 0 && check != dino)
				res = -EAGAIN;
		}
		if (res == 0)
			res = dir_rename_locked(fs, v[0], name, v[1], newname, v[2], v[3],
						flags & ~RENAME_WHITEOUT);
		if (res == 0 && whiteout)
			res = dir_whiteout(fs, fuse_req_ctx(req), v[0], name);
		res = fs_meta_finish(fs, res);
		for (int i = 0; res < 0 && i < 4; i++)
			if (v[i])
				fs_inode_restore(v[i], &saved[i]);
		g_mutex_unlock(&fs->db_lock);
	}
	dir_lock_many(v, 4, false);
	if (res == 0 && v[3] && !(flags & RENAME_EXCHANGE))
		fs_inode_maybe_free_data(fs, v[3]);
out:
	for (int i = 0; i < 4; i++)
		fs_inode_put(fs, v[i]);
	if (res < 0 && charged)
		rsv_inode_put(&fs->ledger);
	return res;
}

static void fs_op_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
			 fuse_ino_t newparent, const char *newname, unsigned int flags)
{
	fuse_reply_err(req, -dir_do_rename(FS(req), req, parent, name, newparent, newname, flags));
}

/* ---- reading directories and links ------------------------------------ */

/* An open directory counts as an open file (nopen): removed while open, it
 * keeps its xattrs and its inode until the last close, as on a kernel
 * filesystem (fgetxattr/fsetxattr on it still work). */
static void fs_op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs *fs = FS(req);
	struct fs_inode *in;
	int res;

	if ((res = fs_inode_get(fs, ino, &in)) == 0) {
		res = fs_inode_open(fs, in);
		fs_inode_put(fs, in);	/* nopen keeps it */
	}
	if (res < 0) {
		fuse_reply_err(req, -res);
		return;
	}
	fi->fh = (uintptr_t)in;
	if (fuse_reply_open(req, fi) == -ENOENT)
		fs_inode_release(fs, in);
}

static void fs_op_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	fs_inode_close(FS(req), (struct fs_inode *)(uintptr_t)fi->fh);
	fuse_reply_err(req, 0);
}

static void fs_op_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync,
			   struct fuse_file_info *fi)
{
	struct fs *fs = FS(req);
	struct fs_inode *dir;
	int res = fs_inode_get(fs, ino, &dir);

	/* its entries are in SQLite already; its times may not be */
	if (res == 0) {
		res = fs_inode_fsync(fs, dir, false);
		fs_inode_put(fs, dir);
	}
	fuse_reply_err(req, -res);
}

/* Adds one entry; returns false when the buffer is full. */
static bool dir_add(fuse_req_t req, char *buf, size_t size, size_t *pos, bool plus,
		    const char *name, fuse_ino_t ino, mode_t mode, off_t next)
{
	struct fs *fs = FS(req);
	struct fuse_entry_param e;
	struct fs_inode *in;
	size_t need;
	bool dot = name[0] == '.' && (!name[1] || (name[1] == '.' && !name[2]));

	if (!plus) {
		struct stat st = { .st_ino = ino, .st_mode = mode };
		need = fuse_add_direntry(req, buf + *pos, size - *pos, name, &st, next);
		if (need > size - *pos)
			return false;
		*pos += need;
		return true;
	}
	if (dot) {
		memset(&e, 0, sizeof(e));
		e.attr.st_ino = ino;
		e.attr.st_mode = mode;
		need = fuse_add_direntry_plus(req, buf + *pos, size - *pos, name, &e, next);
		if (need > size - *pos)
			return false;
		*pos += need;
		return true;
	}
	if (fs_inode_get(fs, ino, &in) < 0)
		return true;	/* gone since the query: skip it */
	g_mutex_lock(&in->lock);
	fs_inode_fill_entry(fs, in, &e);
	g_mutex_unlock(&in->lock);
	need = fuse_add_direntry_plus(req, buf + *pos, size - *pos, name, &e, next);
	if (need > size - *pos) {
		fs_inode_put(fs, in);
		return false;
	}
	fs_inode_lookup_inc(fs, in);
	fs_inode_put(fs, in);
	*pos += need;
	return true;
}

/* Offsets: 1 after ".", 2 after "..", then 2 + the dentry's id, which never
 * changes while the entry exists, so telldir/seekdir stay valid. */
static void dir_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, bool plus)
{
	struct fs *fs = FS(req);
	struct fs_dirent *ents;
	struct fs_inode *dir;
	size_t pos = 0;
	char *buf;
	int n, max, res;

	if ((res = fs_inode_get(fs, ino, &dir)) < 0) {
		fuse_reply_err(req, -res);
		return;
	}
	fs_inode_accessed(fs, dir);
	buf = g_malloc(size);
	if (off == 0 && !dir_add(req, buf, size, &pos, plus, ".", ino, S_IFDIR, 1))
		goto done;
	if (off <= 1) {
		fuse_ino_t parent;
		g_mutex_lock(&dir->lock);
		parent = dir->parent ? dir->parent : ino;
		g_mutex_unlock(&dir->lock);
		if (!dir_add(req, buf, size, &pos, plus, "..", parent, S_IFDIR, 2))
			goto done;
		off = 2;
	}
	max = MIN(size / (plus ? 120 : 32) + 1, 512);
	ents = g_new(struct fs_dirent, max);
	for (;;) {
		g_mutex_lock(&fs->db_lock);
		n = fs_meta_readdir(fs, ino, off - 2, ents, max);
		g_mutex_unlock(&fs->db_lock);
		if (n <= 0)
			break;
		for (int i = 0; i < n; i++) {
			if (!dir_add(req, buf, size, &pos, plus, ents[i].name, ents[i].ino,
				     ents[i].mode, ents[i].off + 2))
				goto full;
			off = ents[i].off + 2;
		}
		if (n < max)
			break;
	}
full:
	g_free(ents);
done:
	fs_inode_put(fs, dir);
	fuse_reply_buf(req, buf, pos);
	g_free(buf);
}

static void fs_op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
			  struct fuse_file_info *fi)
{
	dir_readdir(req, ino, size, off, false);
}

static void fs_op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
			      struct fuse_file_info *fi)
{
	dir_readdir(req, ino, size, off, true);
}

static void fs_op_readlink(fuse_req_t req, fuse_ino_t ino)
{
	struct fs *fs = FS(req);
	struct fs_inode *in;
	char *target = NULL;
	int res;

	if ((res = fs_inode_get(fs, ino, &in)) == 0) {
		g_mutex_lock(&fs->db_lock);
		res = fs_meta_read_link(fs, ino, &target);
		g_mutex_unlock(&fs->db_lock);
		if (res == 0)
			fs_inode_accessed(fs, in);
		fs_inode_put(fs, in);
	}
	if (res < 0)
		fuse_reply_err(req, -res);
	else
		fuse_reply_readlink(req, target);
	g_free(target);
}

void fs_ops_dir_init(struct fuse_lowlevel_ops *ops)
{
	ops->lookup = fs_op_lookup;
	ops->forget = fs_op_forget;
	ops->forget_multi = fs_op_forget_multi;
	ops->mkdir = fs_op_mkdir;
	ops->mknod = fs_op_mknod;
	ops->symlink = fs_op_symlink;
	ops->create = fs_op_create;
	ops->link = fs_op_link;
	ops->unlink = fs_op_unlink;
	ops->rmdir = fs_op_rmdir;
	ops->rename = fs_op_rename;
	ops->opendir = fs_op_opendir;
	ops->releasedir = fs_op_releasedir;
	ops->fsyncdir = fs_op_fsyncdir;
	ops->readdir = fs_op_readdir;
	ops->readdirplus = fs_op_readdirplus;
	ops->readlink = fs_op_readlink;
}
