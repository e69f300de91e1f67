/* fs/ctl.c — runtime control and statistics through xattrs on the mount
 * root: user.reservefs.{size,nr_inodes} (get/set), .usage, .stat (JSON),
 * .mode.  `reservefs stat` reads .stat. */
#include "config.h"

#include <errno.h>
#include <string.h>
#include <sys/statvfs.h>

#include "fs_i.h"

#define CTL_PREFIX "user.reservefs."

struct ctl_top {
	fuse_ino_t ino;
	uint64_t dirty;
	uint64_t size;
	uint64_t rsv;
};

static gint ctl_top_cmp(gconstpointer a, gconstpointer b)
{
	const struct ctl_top *x = a, *y = b;

	return x->dirty < y->dirty ? 1 : x->dirty > y->dirty ? -1 : 0;
}

static void ctl_stat_json(struct fs *fs, GString *s)
{
	struct rsv_ledger *l = &fs->ledger;
	struct cache_stats cs;
	GArray *top = g_array_new(FALSE, FALSE, sizeof(struct ctl_top));
	GHashTableIter it;
	gpointer v;
	uint64_t cap = rsv_capacity_pages(l), rsv = rsv_reserved_pages(l);

	cache_get_stats(fs->cache, &cs);
	/* a racy but harmless read of each file's counters: statistics only */
	g_mutex_lock(&fs->itable_lock);
	g_hash_table_iter_init(&it, fs->itable);
	while (g_hash_table_iter_next(&it, NULL, &v)) {
		struct fs_inode *in = v;
		struct ctl_top t = { in->ino, __atomic_load_n(&in->cf.dirty.pages, __ATOMIC_RELAXED) +
					     __atomic_load_n(&in->cf.inflight.pages, __ATOMIC_RELAXED),
				     __atomic_load_n(&in->size, __ATOMIC_RELAXED),
				     __atomic_load_n(&in->rsv.pages, __ATOMIC_RELAXED) };
		if (S_ISREG(in->mode) && t.dirty)
			g_array_append_val(top, t);
	}
	g_mutex_unlock(&fs->itable_lock);
	g_array_sort(top, ctl_top_cmp);

	g_string_append_printf(s, "{\"mode\":\"%s\",\"page_size\":%u,"
		"\"capacity_bytes\":%" PRIu64 ",\"capacity_pages\":%" PRIu64 ","
		"\"reserved_bytes\":%" PRIu64 ",\"reserved_pages\":%" PRIu64 ","
		"\"used_bytes\":%" PRIu64 ",\"free_bytes\":%" PRIu64 ","
		"\"nr_inodes\":%" PRIu64 ",\"inodes_used\":%" PRIu64 ","
		"\"dirty_limit_bytes\":%" PRIu64 ",\"dirty_pages\":%" PRIu64 ","
		"\"dirty_files\":%" PRIu64 ",\"max_file_dirty_pages\":%" PRIu64 ","
		"\"writebacks\":%" PRIu64 ",\"throttled\":%" PRIu64 ","
		"\"throttle_wait_us\":%" PRIu64 ","
		"\"background_writebacks\":%" PRIu64 ",\"syncs\":%" PRIu64 ","
		"\"writeback_failures\":%" PRIu64 ",\"enospc\":{",
		rsv_mode_name(l->mode), RSV_PAGE_SIZE,
		cap << RSV_PAGE_SHIFT, cap, rsv << RSV_PAGE_SHIFT, rsv,
		rsv << RSV_PAGE_SHIFT, (cap > rsv ? cap - rsv : 0) << RSV_PAGE_SHIFT,
		rsv_nr_inodes(l), rsv_used_inodes(l), cache_dirty_limit(fs->cache),
		cs.dirty_pages, cs.dirty_files, cs.max_file_dirty_pages, cs.writebacks,
		cs.throttled, cs.throttle_wait_us, cs.background, cs.syncs,
		__atomic_load_n(&fs->writeback_failures, __ATOMIC_RELAXED));
	for (int e = 0; e < RSV_EV_NR; e++)
		g_string_append_printf(s, "%s\"%s\":%" PRIu64, e ? "," : "", rsv_event_name(e),
				       rsv_enospc_count(l, e));
	g_string_append(s, "},\"files\":[");
	for (guint i = 0; i < MIN(top->len, 10); i++) {
		struct ctl_top *t = &g_array_index(top, struct ctl_top, i);
		g_string_append_printf(s, "%s{\"ino\":%" PRIu64 ",\"size\":%" PRIu64
				       ",\"reserved_pages\":%" PRIu64 ",\"dirty_pages\":%" PRIu64 "}",
				       i ? "," : "", (uint64_t)t->ino, t->size, t->rsv, t->dirty);
	}
	g_string_append(s, "]}\n");
	g_array_free(top, TRUE);
}

int fs_ctl_getxattr(struct fs *fs, const char *name, GString *out)
{
	const char *key = name + strlen(CTL_PREFIX);
	struct rsv_ledger *l = &fs->ledger;

	if (strcmp(key, "size") == 0)
		g_string_printf(out, "%" PRIu64, rsv_capacity_pages(l) << RSV_PAGE_SHIFT);
	else if (strcmp(key, "nr_inodes") == 0)
		g_string_printf(out, "%" PRIu64, rsv_nr_inodes(l));
	else if (strcmp(key, "mode") == 0)
		g_string_printf(out, "%s", rsv_mode_name(l->mode));
	else if (strcmp(key, "readonly") == 0)	/* mounted -o ro: for remount */
		g_string_printf(out, "%d", fs->ro ? 1 : 0);
	else if (strcmp(key, "usage") == 0)
		g_string_printf(out, "reserved_bytes=%" PRIu64 " reserved_pages=%" PRIu64
				" capacity_bytes=%" PRIu64 " inodes_used=%" PRIu64
				" nr_inodes=%" PRIu64,
				rsv_reserved_pages(l) << RSV_PAGE_SHIFT, rsv_reserved_pages(l),
				rsv_capacity_pages(l) << RSV_PAGE_SHIFT, rsv_used_inodes(l),
				rsv_nr_inodes(l));
	else if (strcmp(key, "stat") == 0)
		ctl_stat_json(fs, out);
	else
		return -ENODATA;
	return 0;
}

/* One limit change at a time: each sets the ledger, saves, and on a failed
 * save puts the old value back, which must be its own. */
static GMutex ctl_limit_lock;

int fs_ctl_setxattr(struct fs *fs, fuse_req_t req, const char *name, const char *val, size_t len)
{
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	const char *key = name + strlen(CTL_PREFIX);
	char *s = g_strndup(val, len);
	struct statvfs sv;
	uint64_t n, was;
	bool size;
	int res;

	g_strstrip(s);
	if (strcmp(key, "size") != 0 && strcmp(key, "nr_inodes") != 0) {
		res = strcmp(key, "usage") == 0 || strcmp(key, "stat") == 0 ||
		      strcmp(key, "mode") == 0 || strcmp(key, "readonly") == 0 ? -EPERM : -EINVAL;
		goto out;
	}
	if (ctx->uid != 0 && ctx->uid != fs->owner_uid) {
		res = -EPERM;
		goto out;
	}
	if (fs->ro) {
		res = -EROFS;
		goto out;
	}
	if (fstatvfs(fs->data_fd, &sv) < 0) {
		res = -errno;
		goto out;
	}
	size = strcmp(key, "size") == 0;
	g_mutex_lock(&ctl_limit_lock);
	if (size) {
		was = rsv_capacity_pages(&fs->ledger);
		if ((res = rsv_parse_size(s, (uint64_t)sv.f_blocks * sv.f_frsize, &n)) < 0 ||
		    (res = rsv_set_capacity(&fs->ledger, n)) < 0)
			goto out_unlock;
		key = "size_pages";
	} else {
		was = rsv_nr_inodes(&fs->ledger);
		if ((res = rsv_parse_count(s, sv.f_files ? sv.f_files : 1 << 20, &n)) < 0 ||
		    (res = rsv_set_nr_inodes(&fs->ledger, n)) < 0)
			goto out_unlock;
	}
	/* persisted: the new limit holds for later mounts too */
	g_free(s);
	s = g_strdup_printf("%" PRIu64, n);
	g_mutex_lock(&fs->db_lock);
	res = fs_meta_set_super(fs, key, s);
	g_mutex_unlock(&fs->db_lock);
	if (res == 0)
		res = fs_meta_sync(fs, NULL);
	/* not kept: not in effect either (unless what was grown is in use by now) */
	if (res < 0 && (size ? rsv_set_capacity(&fs->ledger, was) :
			       rsv_set_nr_inodes(&fs->ledger, was)) < 0)
		g_warning("a new %s limit could not be saved (%s) and stays in effect "
			  "until unmount", size ? "size" : "nr_inodes", strerror(-res));
out_unlock:
	g_mutex_unlock(&ctl_limit_lock);
out:
	g_free(s);
	return res;
}
