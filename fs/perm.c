/* fs/perm.c — privilege rules the kernel leaves to the filesystem. */
#include "config.h"

#include <errno.h>

#include "fs_i.h"

bool fs_perm_in_group(fuse_req_t req, gid_t gid)
{
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	gid_t groups[64];
	int n;

	if (ctx->gid == gid)
		return true;
	n = fuse_req_getgroups(req, G_N_ELEMENTS(groups), groups);
	for (int i = 0; i < MIN(n, (int)G_N_ELEMENTS(groups)); i++)
		if (groups[i] == gid)
			return true;
	return false;
}

mode_t fs_perm_kill(fuse_req_t req, mode_t mode, gid_t gid)
{
	if (!(mode & (S_ISUID | S_ISGID)))
		return mode;
	mode &= ~S_ISUID;
	if ((mode & S_ISGID) && ((mode & S_IXGRP) ||
				 (fuse_req_ctx(req)->uid != 0 && !fs_perm_in_group(req, gid))))
		mode &= ~S_ISGID;
	return mode;
}

mode_t fs_perm_kill_suid(fuse_req_t req, mode_t mode, gid_t gid)
{
	/* root stands for CAP_FSETID: we cannot see capabilities */
	if (fuse_req_ctx(req)->uid == 0)
		return mode;
	return fs_perm_kill(req, mode, gid);
}

void fs_perm_inval_attr(struct fs *fs, fuse_ino_t ino)
{
	if (fs->se)
		fuse_lowlevel_notify_inval_inode(fs->se, ino, -1, 0);
}
