/* fs/acl.c — POSIX ACL inheritance and mode synchronisation. */
#include "config.h"

#include <endian.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "fs_i.h"
#include "acl.h"

#define ACL_VERSION 2
enum { TAG_USER_OBJ = 1, TAG_USER = 2, TAG_GROUP_OBJ = 4, TAG_GROUP = 8,
       TAG_MASK = 0x10, TAG_OTHER = 0x20 };

struct acl_entry {
	uint16_t tag, perm;
	uint32_t id;
} __attribute__((packed));

static struct acl_entry *acl_entries(void *val, size_t len, size_t *n)
{
	if (len < 4 || (len - 4) % sizeof(struct acl_entry) ||
	    le32toh(*(uint32_t *)val) != ACL_VERSION)
		return NULL;
	*n = (len - 4) / sizeof(struct acl_entry);
	return (struct acl_entry *)((char *)val + 4);
}

/* posix_acl_create_masq: the new inode's ACL and mode from the default ACL.
 * Returns 1 when the ACL is equivalent to the mode. */
static int acl_create_masq(struct acl_entry *e, size_t n, mode_t *modep)
{
	struct acl_entry *group_obj = NULL, *mask_obj = NULL;
	mode_t mode = *modep;
	int equiv = 1;

	for (size_t i = 0; i < n; i++) {
		uint16_t perm = le16toh(e[i].perm);
		switch (le16toh(e[i].tag)) {
		case TAG_USER_OBJ:
			perm &= (mode >> 6) | ~7;
			mode &= (perm << 6) | ~S_IRWXU;
			break;
		case TAG_USER:
		case TAG_GROUP:
			equiv = 0;
			break;
		case TAG_GROUP_OBJ:
			group_obj = &e[i];
			break;
		case TAG_OTHER:
			perm &= mode | ~7;
			mode &= perm | ~S_IRWXO;
			break;
		case TAG_MASK:
			mask_obj = &e[i];
			equiv = 0;
			break;
		default:
			return -EINVAL;
		}
		e[i].perm = htole16(perm);
	}
	if (mask_obj || group_obj) {
		struct acl_entry *g = mask_obj ? mask_obj : group_obj;
		uint16_t perm = le16toh(g->perm) & ((mode >> 3) | ~7);
		g->perm = htole16(perm);
		mode &= (perm << 3) | ~S_IRWXG;
	} else {
		return -EINVAL;
	}
	*modep = mode;
	return equiv;
}

int fs_acl_inherit(struct fs *fs, uint64_t dir, mode_t *mode, mode_t umask,
		   struct fs_inode *in)
{
	struct acl_entry *e;
	void *val = NULL;
	size_t len, n;
	int64_t delta = 0;
	int res;

	res = fs_meta_getxattr(fs, dir, FS_ACL_DEFAULT, &val, &len);
	if (res == -ENODATA) {
		if (!in && !S_ISLNK(*mode))
			*mode &= ~(umask & 0777);
		return 0;
	}
	if (res < 0)
		return res;
	if (S_ISLNK(*mode)) {
		g_free(val);
		return 0;
	}
	res = 0;
	if (in && S_ISDIR(in->mode))
		res = fs_meta_setxattr(fs, in->ino, FS_ACL_DEFAULT, val, len, 0, &delta);
	if (in && res == 0)
		in->xattr_bytes += delta;
	e = acl_entries(val, len, &n);
	if (e && res == 0) {
		mode_t m = in ? in->mode : *mode;
		int equiv = acl_create_masq(e, n, &m);

		if (!in)
			*mode = m;
		else if (equiv == 0 &&
			 (res = fs_meta_setxattr(fs, in->ino, FS_ACL_ACCESS, val, len, 0,
						 &delta)) == 0)
			in->xattr_bytes += delta;
	}
	g_free(val);
	return res;
}

int fs_acl_chmod(struct fs *fs, struct fs_inode *in)
{
	struct acl_entry *e, *group_obj = NULL, *mask_obj = NULL;
	void *val = NULL;
	size_t len, n;
	int res = fs_meta_getxattr(fs, in->ino, FS_ACL_ACCESS, &val, &len);

	if (res < 0)
		return res == -ENODATA ? 0 : res;
	e = acl_entries(val, len, &n);
	for (size_t i = 0; e && i < n; i++) {
		switch (le16toh(e[i].tag)) {
		case TAG_USER_OBJ:
			e[i].perm = htole16((in->mode >> 6) & 7);
			break;
		case TAG_GROUP_OBJ:
			group_obj = &e[i];
			break;
		case TAG_MASK:
			mask_obj = &e[i];
			break;
		case TAG_OTHER:
			e[i].perm = htole16(in->mode & 7);
			break;
		}
	}
	if (mask_obj)
		mask_obj->perm = htole16((in->mode >> 3) & 7);
	else if (group_obj)
		group_obj->perm = htole16((in->mode >> 3) & 7);
	/* the entries are rewritten in place: same length, same charge */
	if (e)
		res = fs_meta_setxattr(fs, in->ino, FS_ACL_ACCESS, val, len, 0, NULL);
	g_free(val);
	return res;
}

int fs_acl_to_mode(const void *cval, size_t len, mode_t *mode)
{
	void *val = g_memdup2(cval, len);
	struct acl_entry *e;
	mode_t m = *mode & ~0777;
	int equiv = 1, seen = 0;
	uint16_t group = 0, mask = 0;
	bool has_mask = false;
	size_t n;

	e = acl_entries(val, len, &n);
	if (!e) {
		g_free(val);
		return -EINVAL;
	}
	for (size_t i = 0; i < n; i++) {
		uint16_t perm = le16toh(e[i].perm) & 7;
		switch (le16toh(e[i].tag)) {
		case TAG_USER_OBJ:
			m |= perm << 6;
			seen |= 1;
			break;
		case TAG_GROUP_OBJ:
			group = perm;
			seen |= 2;
			break;
		case TAG_OTHER:
			m |= perm;
			seen |= 4;
			break;
		case TAG_MASK:
			mask = perm;
			has_mask = true;
			equiv = 0;
			break;
		case TAG_USER:
		case TAG_GROUP:
			equiv = 0;
			break;
		default:
			g_free(val);
			return -EINVAL;
		}
	}
	g_free(val);
	if (seen != 7)
		return -EINVAL;
	m |= (has_mask ? mask : group) << 3;
	*mode = m;
	return equiv;
}
