/* fs/acl.c — POSIX ACLs stored as system.posix_acl_* xattrs.  The kernel
 * enforces them (default_permissions + FUSE_CAP_POSIX_ACL); we inherit
 * default ACLs on create, keep the access ACL and the mode in step. */
#ifndef FS_ACL_H
#define FS_ACL_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct fs;
struct fs_inode;

#define FS_ACL_ACCESS "system.posix_acl_access"
#define FS_ACL_DEFAULT "system.posix_acl_default"

/* db_lock held, inside a transaction.  With @in NULL: adjust *mode for a new
 * inode in @dir (default ACL, else the umask).  With @in (already inserted):
 * store the inherited ACLs on it, adding their bytes to in->xattr_bytes
 * (the caller charges them). */
int fs_acl_inherit(struct fs *fs, uint64_t dir, mode_t *mode, mode_t umask,
		   struct fs_inode *in);
/* After a chmod: rewrite the access ACL's base entries from in->mode.
 * db_lock held, inside a transaction. */
int fs_acl_chmod(struct fs *fs, struct fs_inode *in);
/* An access ACL being set: the permission bits it implies go into *mode.
 * Returns 1 if the ACL says no more than the mode, 0 if it does, -EINVAL if
 * it is malformed. */
int fs_acl_to_mode(const void *val, size_t len, mode_t *mode);

#endif /* FS_ACL_H */
