/* fs/perm.c — privilege rules the kernel leaves to the filesystem. */
#include "config.h"

#include <errno.h>
#include <linux/capability.h>
#include <stdio.h>

#include "fs_i.h"

int fs_perm_proc_capable(pid_t pid, int cap)
{
	char path[32], *status = NULL;
	const char *p;
	int res = -1;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	if (pid > 0 && g_file_get_contents(path, &status, NULL, NULL) &&
	    (p = strstr(status, "\nCapEff:")))
		res = (g_ascii_strtoull(p + strlen("\nCapEff:"), NULL, 16) >> cap) & 1;
	g_free(status);
	return res;
}

bool fs_perm_capable(fuse_req_t req, int cap)
{
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	int res = fs_perm_proc_capable(ctx->pid, cap);

	/* a caller we cannot see (another pid namespace, gone) is judged by
	 * its uid */
	return res < 0 ? ctx->uid == 0 : res;
}

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
	if ((mode & S_ISGID) && ((mode & S_IXGRP) || !fs_perm_in_group_or_fsetid(req, gid)))
		mode &= ~S_ISGID;
	return mode;
}

bool fs_perm_in_group_or_fsetid(fuse_req_t req, gid_t gid)
{
	return fs_perm_in_group(req, gid) || fs_perm_capable(req, CAP_FSETID);
}

mode_t fs_perm_kill_suid(fuse_req_t req, mode_t mode, gid_t gid)
{
	if (!(mode & (S_ISUID | S_ISGID)) || fs_perm_capable(req, CAP_FSETID))
		return mode;
	return fs_perm_kill(req, mode, gid);
}

void fs_perm_inval_attr(struct fs *fs, fuse_ino_t ino)
{
	if (fs->se)
		fuse_lowlevel_notify_inval_inode(fs->se, ino, -1, 0);
}
