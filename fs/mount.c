/* fs/mount.c — `reservefs STORE MOUNTPOINT [-o opts]`: option parsing, store
 * opening and recovery, the libfuse session and its teardown. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <malloc.h>
#include <linux/capability.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <syslog.h>
#include <unistd.h>

#include "fs_i.h"


enum { KEY_FOREGROUND, KEY_DEBUG, KEY_RO, KEY_HELP, KEY_VERSION, KEY_NOATIME, KEY_REMOUNT,
       KEY_RW };

struct mount_args {
	struct fs_opts o;
	char *store;
	char *mountpoint;
	int bad;
};

#define MOPT(t, f) { t, offsetof(struct mount_args, o.f), 0 }
static const struct fuse_opt mount_opts[] = {
	MOPT("size=%s", size),
	MOPT("nr_inodes=%s", nr_inodes),
	MOPT("reserve=%s", reserve),
	MOPT("dirty_limit=%s", dirty_limit),
	MOPT("dirty_expire=%s", dirty_expire),
	MOPT("mmap_dirty_max=%s", mmap_dirty_max),
	/* benchmarks only: measure what the reservation bookkeeping costs */
	{ "bench_no_reserve", offsetof(struct mount_args, o.bench_no_reserve), 1 },
	/* a kernel mount option that libfuse also wants repeated by init():
	 * keep it for both */
	MOPT("max_read=%u", max_read),
	FUSE_OPT_KEY("max_read=", FUSE_OPT_KEY_KEEP),
	FUSE_OPT_KEY("-f", KEY_FOREGROUND),
	FUSE_OPT_KEY("-d", KEY_DEBUG),
	FUSE_OPT_KEY("debug", KEY_DEBUG),
	FUSE_OPT_KEY("ro", KEY_RO),
	FUSE_OPT_KEY("noatime", KEY_NOATIME),
	FUSE_OPT_KEY("remount", KEY_REMOUNT),
	FUSE_OPT_KEY("rw", KEY_RW),
	FUSE_OPT_KEY("-h", KEY_HELP),
	FUSE_OPT_KEY("--help", KEY_HELP),
	FUSE_OPT_KEY("-V", KEY_VERSION),
	FUSE_OPT_KEY("--version", KEY_VERSION),
	/* writeback caching would let write() succeed before we could say
	 * ENOSPC: refuse to turn it on */
	FUSE_OPT_KEY("writeback_cache", FUSE_OPT_KEY_DISCARD),
	FUSE_OPT_END
};

static int mount_opt_proc(void *data, const char *arg, int key, struct fuse_args *outargs)
{
	struct mount_args *a = data;

	switch (key) {
	case FUSE_OPT_KEY_NONOPT:
		if (!a->store) {
			a->store = strdup(arg);
			return 0;
		}
		if (!a->mountpoint) {
			a->mountpoint = strdup(arg);
			return 0;
		}
		fprintf(stderr, "reservefs: unexpected argument '%s'\n", arg);
		a->bad = 1;
		return -1;
	case KEY_FOREGROUND:
		a->o.foreground = 1;
		return 0;
	case KEY_DEBUG:
		a->o.debug = a->o.foreground = 1;
		return 1;
	case KEY_RO:
		a->o.ro = 1;
		return 1;
	case KEY_NOATIME:
		a->o.noatime = 1;
		return 1;
	case KEY_REMOUNT:
		a->o.remount = 1;
		return 0;
	case KEY_RW:
		a->o.ro = 0;
		return 1;
	case KEY_HELP:
		printf("usage: reservefs STORE MOUNTPOINT [-f] [-d] [-o opt,...]\n"
		       "  -o size=SIZE         capacity (k/m/g/t/p/e suffix or N%% of the backing fs)\n"
		       "  -o nr_inodes=N       inode limit (k/m/g suffix or N%% of the backing fs's inodes)\n"
		       "  -o reserve=eof|write reservation mode (default: the store's)\n"
		       "  -o dirty_limit=SIZE  per-file unsynced data (default 8M, 0 = unlimited)\n"
		       "  -o dirty_expire=SECS background writeback age (default 30; Nms too, 0 = off)\n"
		       "  -o mmap_dirty_max=SIZE kernel dirty pages for this mount (default 64M, "
		       "0 = leave alone)\n"
		       "  and FUSE mount options: allow_other, ro, default_permissions, ...\n");
		exit(0);
	case KEY_VERSION:
		printf("reservefs %s\n", RESERVEFS_VERSION);
		exit(0);
	}
	return 1;
}

/* "30", "30s", "500ms", "0" */
static int parse_seconds_ms(const char *s, uint64_t *ms)
{
	char *end;
	unsigned long long v;

	errno = 0;
	if (!s || !*s || *s == '-')
		return -EINVAL;
	v = strtoull(s, &end, 10);
	if (errno || end == s)
		return -EINVAL;
	if (strcmp(end, "ms") == 0)
		*ms = v;
	else if ((*end == '\0' || strcmp(end, "s") == 0) && v <= UINT64_MAX / 1000)
		*ms = v * 1000;
	else
		return -EINVAL;
	/* the cache counts microseconds in 64 bits: a century is plenty */
	return *ms <= (uint64_t)100 * 365 * 86400 * 1000 ? 0 : -EINVAL;
}

static int parse_bytes(const char *s, const char *opt, uint64_t *bytes)
{
	uint64_t pages;

	if (strcmp(s, "0") == 0 || strcmp(s, "unlimited") == 0) {
		*bytes = 0;
		return 0;
	}
	if (strchr(s, '%') || rsv_parse_size(s, 0, &pages) < 0) {
		fprintf(stderr, "reservefs: bad value for option %s=%s "
			"(bytes with k/m/g/t/p/e suffix, or 0)\n", opt, s);
		return -EINVAL;
	}
	*bytes = pages << RSV_PAGE_SHIFT;
	return 0;
}

/* Set once a background daemon has let its parent go: from then on our
 * messages go to syslog, before that to the terminal that mounted us. */
static bool mount_backgrounded;

static void log_handler(const gchar *domain, GLogLevelFlags level, const gchar *msg,
			gpointer data)
{
	const struct fs_opts *o = data;
	const char *what = (level & (G_LOG_LEVEL_ERROR | G_LOG_LEVEL_CRITICAL)) ? "ERROR" :
			   (level & G_LOG_LEVEL_WARNING) ? "warning" : "info";

	if (level & G_LOG_LEVEL_DEBUG)
		return;
	if (o->foreground || !mount_backgrounded)
		fprintf(stderr, "reservefs: %s: %s\n", what, msg);
	else
		syslog(level & G_LOG_LEVEL_WARNING ? LOG_WARNING : LOG_ERR, "%s", msg);
}

static void mount_init(void *userdata, struct fuse_conn_info *conn)
{
	const struct fs *fs = userdata;
	const unsigned want = FUSE_CAP_EXPORT_SUPPORT | FUSE_CAP_POSIX_ACL |
		FUSE_CAP_DONT_MASK | FUSE_CAP_SPLICE_WRITE | FUSE_CAP_SPLICE_MOVE |
		FUSE_CAP_READDIRPLUS | FUSE_CAP_CACHE_SYMLINKS | FUSE_CAP_PARALLEL_DIROPS |
		FUSE_CAP_IOCTL_DIR;

	conn->want |= want & conn->capable;
	/* async direct I/O completes without invalidating the page cache we
	 * keep across opens (keep_cache): buffered readers saw stale data */
	conn->want &= ~(FUSE_CAP_WRITEBACK_CACHE | FUSE_CAP_AUTO_INVAL_DATA | FUSE_CAP_ASYNC_DIO |
			FUSE_CAP_HANDLE_KILLPRIV | FUSE_CAP_ATOMIC_O_TRUNC);
	conn->max_write = 1 << 20;
	conn->max_readahead = 1 << 20;
	/* libfuse ends the session if this differs from -o max_read */
	conn->max_read = fs->max_read;
	conn->time_gran = 1;
}

/* A batch of dirty pages whose writeback the cache thread started. */
struct mount_wb {
	struct fs_inode *in;	/* pinned */
	int fd;			/* ours: the file may be closed meanwhile */
	off_t start, len;
	bool run;		/* one run of dirty pages */
};

static void mount_writeback(uint64_t key, void *ctx)
{
	struct fs *fs = ctx;
	struct mount_wb wb = { .fd = -1 };
	uint32_t seq;

	g_mutex_lock(&fs->itable_lock);
	wb.in = g_hash_table_lookup(fs->itable, &key);
	if (wb.in)
		wb.in->nref++;
	g_mutex_unlock(&fs->itable_lock);
	if (!wb.in)
		return;
	g_mutex_lock(&wb.in->lock);
	if (cache_file_background(fs->cache, &wb.in->cf, wb.in->fd, &wb.start, &wb.len, &seq,
				  &wb.run))
		wb.fd = dup(wb.in->fd);
	g_mutex_unlock(&wb.in->lock);
	if (wb.fd >= 0 && sync_file_range(wb.fd, wb.start, wb.len, SYNC_FILE_RANGE_WRITE) == 0) {
		g_mutex_lock(&wb.in->lock);
		cache_file_submitted(&wb.in->cf, seq);
		g_mutex_unlock(&wb.in->lock);
		g_array_append_val(fs->wb_started, wb);
		return;
	}
	if (wb.fd >= 0)
		close(wb.fd);
	fs_inode_put(fs, wb.in);
}

/* Wait, here and not in the writers, for the batches started this round.
 * A batch that was one run of at least MOUNT_DROP_MIN dirty pages (a
 * sequential writer's) then leaves the backing file's cache, also when a
 * writer past its limit has waited for it first: the FUSE file's
 * cache holds the same data (the kernel copied the writes there), so it would
 * be cached twice (as reads are, ops_file.c).  Its last page stays, for an
 * appender that has not filled it yet; scattered pages stay too, which a
 * partial write would otherwise have to read back from the disk. */
#define MOUNT_DROP_MIN	(1u << 20)

static void mount_written_back(void *ctx)
{
	struct fs *fs = ctx;

	for (guint i = 0; i < fs->wb_started->len; i++) {
		struct mount_wb *wb = &g_array_index(fs->wb_started, struct mount_wb, i);

		if (sync_file_range(wb->fd, wb->start, wb->len, SYNC_FILE_RANGE_WAIT_BEFORE) == 0) {
			g_mutex_lock(&wb->in->lock);
			cache_file_written_back(fs->cache, &wb->in->cf, wb->start, wb->len);
			g_mutex_unlock(&wb->in->lock);
			if (wb->run && wb->len >= MOUNT_DROP_MIN)
				posix_fadvise(wb->fd, wb->start, wb->len - RSV_PAGE_SIZE,
					      POSIX_FADV_DONTNEED);
		}
		close(wb->fd);
		fs_inode_put(fs, wb->in);
	}
	g_array_set_size(fs->wb_started, 0);
}

static const struct cache_ops mount_cache_ops = {
	.writeback = mount_writeback,
	.written_back = mount_written_back,
};

static uint64_t mount_max_file_size(int fd)
{
	struct statfs sf;

	/* ext4 with 4 KiB blocks stops at 16 TiB; others go to the VFS limit */
	if (fstatfs(fd, &sf) == 0 && sf.f_type == 0xEF53)
		return ((uint64_t)1 << 44) - RSV_PAGE_SIZE;
	return (uint64_t)INT64_MAX & ~(uint64_t)(RSV_PAGE_SIZE - 1);
}

/* A reservefs mount as /proc/self/mountinfo shows it. */
struct mount_entry {
	const char *mnt, *src;	/* mount point; source: the store's real path */
	const char *super;	/* superblock options (allow_other, max_read=...) */
	unsigned maj, min;	/* the connection's device */
};

/* Calls @fn for each reservefs mount in /proc/self/mountinfo, newest last,
 * until @fn returns true. */
static void mount_each(bool (*fn)(const struct mount_entry *e, void *ctx), void *ctx)
{
	char *line = NULL;
	size_t cap = 0;
	bool done = false;
	FILE *f = fopen("/proc/self/mountinfo", "re");

	while (f && !done && getline(&line, &cap, f) > 0) {
		/* id parent maj:min root mountpoint ... - fstype source options */
		gchar **sep = g_strsplit(line, " - ", 2), **pre = NULL, **post = NULL;
		unsigned maj, min;

		if (sep[0] && sep[1]) {
			pre = g_strsplit(sep[0], " ", 6);
			post = g_strsplit(g_strchomp(sep[1]), " ", 3);
		}
		if (pre && post && g_strv_length(pre) >= 5 && g_strv_length(post) >= 3 &&
		    strcmp(post[0], "fuse.reservefs") == 0 &&
		    sscanf(pre[2], "%u:%u", &maj, &min) == 2) {
			char *mnt = g_strcompress(pre[4]), *src = g_strcompress(post[1]);
			struct mount_entry e = { mnt, src, post[2], maj, min };

			done = fn(&e, ctx);
			g_free(mnt);
			g_free(src);
		}
		g_strfreev(pre);
		g_strfreev(post);
		g_strfreev(sep);
	}
	if (f)
		fclose(f);
	free(line);
}

struct mount_live {
	const char *real;
	char *found;
};

static bool mount_live_match(const struct mount_entry *e, void *ctx)
{
	struct mount_live *l = ctx;
	char *rsrc = e->src[0] == '/' ? realpath(e->src, NULL) : NULL;
	struct statvfs sv;

	/* statvfs fails on a dead daemon's mount */
	if (rsrc && strcmp(rsrc, l->real) == 0 && statvfs(e->mnt, &sv) == 0)
		l->found = g_strdup(e->mnt);
	free(rsrc);
	return l->found != NULL;
}

/* The mount point where @store is already mounted by a live reservefs, or
 * NULL.  A mount's source is its store's real path (the fsname we give it);
 * a store is compared by its real path, never by the name as typed: two
 * stores both called "st" in different directories are different stores. */
char *fs_mount_find(const char *store)
{
	struct mount_live l = { .real = realpath(store, NULL) };

	if (l.real)
		mount_each(mount_live_match, &l);
	free((char *)l.real);
	return l.found;
}

char *fs_mount_find_live(const char *store)
{
	char *found = fs_mount_find(store);

	/* statvfs answers for a dead daemon too when the mount is not open to
	 * us (FUSE then answers itself): a live one holds the store's lock */
	if (found) {
		char *lock = g_build_filename(store, "lock", NULL);
		int fd = open(lock, O_RDONLY | O_CLOEXEC);

		if (fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) == 0) {
			g_free(found);
			found = NULL;
		}
		if (fd >= 0)
			close(fd);
		g_free(lock);
	}
	return found;
}

/* The reservefs mount at a mount point (mount_lookup). */
struct mount_dev {
	const char *mnt;
	bool found;
	unsigned maj, min;
	char *src, *super;	/* mount_dev_clear frees them */
};

static bool mount_dev_match(const struct mount_entry *e, void *ctx)
{
	struct mount_dev *d = ctx;

	if (strcmp(e->mnt, d->mnt) == 0) {	/* keep going: the newest one wins */
		d->maj = e->maj;
		d->min = e->min;
		d->found = true;
		g_free(d->src);
		g_free(d->super);
		d->src = g_strdup(e->src);
		d->super = g_strdup(e->super);
	}
	return false;
}

/* The newest reservefs mount at @mnt (a real path) into @d: found or not. */
static bool mount_lookup(const char *mnt, struct mount_dev *d)
{
	memset(d, 0, sizeof(*d));
	d->mnt = mnt;
	if (mnt)
		mount_each(mount_dev_match, d);
	return d->found;
}

static void mount_dev_clear(struct mount_dev *d)
{
	g_free(d->src);
	g_free(d->super);
}

/* The mount(2) flag a mount option sets or clears; false for an option
 * that is not one. */
static bool mount_flag_opt(const char *o, unsigned long *set, unsigned long *clear)
{
	static const struct { const char *name; unsigned long set, clear; } flags[] = {
		{ "ro", MS_RDONLY, 0 }, { "rw", 0, MS_RDONLY },
		{ "nosuid", MS_NOSUID, 0 }, { "suid", 0, MS_NOSUID },
		{ "nodev", MS_NODEV, 0 }, { "dev", 0, MS_NODEV },
		{ "noexec", MS_NOEXEC, 0 }, { "exec", 0, MS_NOEXEC },
		{ "noatime", MS_NOATIME, 0 }, { "atime", 0, MS_NOATIME },
		{ "nodiratime", MS_NODIRATIME, 0 }, { "diratime", 0, MS_NODIRATIME },
		{ "relatime", MS_RELATIME, MS_STRICTATIME },
		{ "norelatime", 0, MS_RELATIME },
		{ "strictatime", MS_STRICTATIME, MS_RELATIME | MS_NOATIME },
		{ "nostrictatime", 0, MS_STRICTATIME },
		{ "sync", MS_SYNCHRONOUS, 0 }, { "async", 0, MS_SYNCHRONOUS },
		{ "dirsync", MS_DIRSYNC, 0 },
		{ "lazytime", MS_LAZYTIME, 0 }, { "nolazytime", 0, MS_LAZYTIME },
	};

	for (size_t i = 0; i < G_N_ELEMENTS(flags); i++)
		if (strcmp(o, flags[i].name) == 0) {
			*set |= flags[i].set;
			*clear |= flags[i].clear;
			return true;
		}
	return false;
}

/* Options mount(8) passes along that change nothing on a live mount. */
static bool mount_opt_ignorable(const char *o)
{
	/* also what names the mount or concerns only its first mount point */
	static const char *const names[] = {
		"remount", "defaults", "auto", "noauto", "user", "nouser", "users", "nofail",
		"_netdev", "default_permissions", "auto_unmount",
	};
	static const char *const keys[] = { "user_id=", "group_id=", "comment=", "x-",
					    "fsname=", "subtype=" };

	for (size_t i = 0; i < G_N_ELEMENTS(names); i++)
		if (strcmp(o, names[i]) == 0)
			return true;
	for (size_t i = 0; i < G_N_ELEMENTS(keys); i++)
		if (g_str_has_prefix(o, keys[i]))
			return true;
	return false;
}

/* The live mount's flags as mount(2) takes them. */
static unsigned long mount_flags_of(const struct statvfs *sv)
{
	static const struct { unsigned long st, ms; } map[] = {
		{ ST_RDONLY, MS_RDONLY }, { ST_NOSUID, MS_NOSUID }, { ST_NODEV, MS_NODEV },
		{ ST_NOEXEC, MS_NOEXEC }, { ST_SYNCHRONOUS, MS_SYNCHRONOUS },
		{ ST_NOATIME, MS_NOATIME }, { ST_NODIRATIME, MS_NODIRATIME },
		{ ST_RELATIME, MS_RELATIME },
	};
	unsigned long f = 0;

	for (size_t i = 0; i < G_N_ELEMENTS(map); i++)
		if (sv->f_flag & map[i].st)
			f |= map[i].ms;
	return f;
}

/* Whether the comma-separated @list holds option @o. */
static bool mount_opt_in(const char *list, const char *o)
{
	gchar **v = list ? g_strsplit(list, ",", -1) : NULL;
	bool found = false;

	for (gchar **p = v; p && *p && !found; p++)
		found = strcmp(*p, o) == 0;
	g_strfreev(v);
	return found;
}

/* The flags the -o lists of @args ask for, applied in order over @flags;
 * -1 after saying which option cannot be honoured on the live mount whose
 * superblock options are @live_super: a FUSE option is fine when the mount
 * has it already (mount(8) and fstab repeat them), or names the mount. */
static int mount_live_flags(const struct fuse_args *args, const char *what,
			    const char *live_super, unsigned long *flags)
{
	for (int i = 1; i < args->argc; i++) {
		gchar **opts;
		int res = 0;

		if (strcmp(args->argv[i], "-o") != 0 || i + 1 >= args->argc)
			continue;
		opts = g_strsplit(args->argv[++i], ",", -1);
		for (gchar **o = opts; *o && res == 0; o++) {
			unsigned long set = 0, clear = 0;

			if (!**o || mount_opt_ignorable(*o) || mount_opt_in(live_super, *o))
				continue;
			if (mount_flag_opt(*o, &set, &clear)) {
				*flags = (*flags & ~clear) | set;
			} else {
				fprintf(stderr, "reservefs: %s: option '%s' cannot be applied to a "
					"live mount\n", what, *o);
				res = -1;
			}
		}
		g_strfreev(opts);
		if (res < 0)
			return -1;
	}
	return 0;
}

/* The control xattr @name of the mount at @mnt, as a number; 0 if unknown. */
static uint64_t mount_ctl_u64(const char *mnt, const char *name)
{
	char buf[32];
	ssize_t n = getxattr(mnt, name, buf, sizeof(buf) - 1);

	if (n <= 0)
		return 0;
	buf[n] = '\0';
	return g_ascii_strtoull(buf, NULL, 10);
}

/* Whether the live mount at @mnt has size= or nr_inodes= @val already. */
static bool mount_limit_is(const char *mnt, const char *store, const char *key,
			   const char *val)
{
	char *name = g_strconcat("user.reservefs.", key, NULL);
	struct statvfs bs;
	uint64_t want = 0;
	bool same = statvfs(store, &bs) == 0 &&
		    (strcmp(key, "size") == 0 ?
		     rsv_parse_size(val, (uint64_t)bs.f_blocks * bs.f_frsize, &want) == 0 &&
		     (want <<= RSV_PAGE_SHIFT, true) :
		     rsv_parse_count(val, bs.f_files ? bs.f_files : 1 << 20, &want) == 0) &&
		    want == mount_ctl_u64(mnt, name);

	g_free(name);
	return same;
}

/* Whether the live mount at @mnt is in reservation mode @reserve. */
static bool mount_mode_is(const char *mnt, const char *reserve)
{
	char mode[16];
	ssize_t n = getxattr(mnt, "user.reservefs.mode", mode, sizeof(mode) - 1);

	return n >= 0 && (mode[n] = '\0', strcmp(mode, reserve) == 0);
}

/* size= or nr_inodes= on a live mount, through its control xattr.  A mount
 * that stays read-only cannot take a change, but may be told the value it
 * has (mount(8) repeats fstab's). */
static int mount_remount_limit(const char *mnt, const char *store, const char *key,
			       const char *val, bool ro)
{
	char *name;
	int res = 0;

	if (ro && mount_limit_is(mnt, store, key, val))
		return 0;
	name = g_strconcat("user.reservefs.", key, NULL);
	if (setxattr(mnt, name, val, strlen(val), 0) < 0) {
		fprintf(stderr, "reservefs: remount %s: cannot set %s=%s: %s\n", mnt, key, val,
			strerror(errno));
		res = -1;
	}
	g_free(name);
	return res;
}

/* Whether we may change a mount's flags: mount(2) MS_REMOUNT wants
 * CAP_SYS_ADMIN.  Asked first, so that a remount that could not finish
 * changes nothing (the limits go before the flags when going read-only). */
static bool mount_may_remount(void)
{
	return fs_perm_proc_capable(getpid(), CAP_SYS_ADMIN) == 1;
}

/* `mount -o remount,... MNT` runs us as its helper: change the live mount
 * instead of starting a second daemon.  Its flags by mount(2) MS_REMOUNT,
 * size= and nr_inodes= through the control xattrs; what only a new mount
 * can change is refused (the reservation mode, read-write for a daemon
 * started read-only, FUSE options), as is a MNT that is not a reservefs
 * mount of STORE.  The kernel enforces read-only; the daemon carries on. */
static int mount_remount(const struct mount_args *a, const struct fuse_args *args)
{
	/* mount(8) adds fstab's options: these are only noted */
	const char *fixed[] = { a->o.dirty_limit ? "dirty_limit" : NULL,
				a->o.dirty_expire ? "dirty_expire" : NULL,
				a->o.mmap_dirty_max ? "mmap_dirty_max" : NULL };
	char *mnt = realpath(a->mountpoint, NULL), *store = realpath(a->store, NULL);
	struct mount_dev d;
	struct statvfs sv;
	unsigned long flags, old;
	bool was_ro, ro, change;
	uint64_t old_size;
	int ret = 1;

	for (size_t i = 0; i < G_N_ELEMENTS(fixed); i++)
		if (fixed[i])
			fprintf(stderr, "reservefs: remount: %s is kept as mounted (it changes "
				"only at mount)\n", fixed[i]);
	if (!mount_lookup(mnt, &d) || statvfs(mnt, &sv) < 0) {
		fprintf(stderr, "reservefs: remount: %s is not a reservefs mount\n", a->mountpoint);
		goto out;
	}
	if (d.src[0] == '/' && (!store || strcmp(store, d.src) != 0)) {
		fprintf(stderr, "reservefs: remount: %s is a mount of %s, not of %s\n",
			a->mountpoint, d.src, a->store);
		goto out;
	}
	flags = old = mount_flags_of(&sv);
	was_ro = flags & MS_RDONLY;
	if (mount_live_flags(args, "remount", d.super, &flags) < 0)
		goto out;
	/* the flags change by mount(2) only; the limits alone need no privilege */
	change = flags != old;
	if (change && !mount_may_remount()) {
		fprintf(stderr, "reservefs: remount %s: changing its flags needs CAP_SYS_ADMIN "
			"(root); nothing changed\n", a->mountpoint);
		goto out;
	}
	if (a->o.reserve && !mount_mode_is(mnt, a->o.reserve)) {
		fprintf(stderr, "reservefs: remount: reserve=%s: the reservation mode changes "
			"only at mount\n", a->o.reserve);
		goto out;
	}
	if (!(flags & MS_RDONLY) && mount_ctl_u64(mnt, "user.reservefs.readonly")) {
		fprintf(stderr, "reservefs: remount: %s was mounted with -o ro: read-write "
			"needs a new mount\n", a->mountpoint);
		goto out;
	}
	/* the limits while the mount is writable: before going read-only,
	 * after coming back to read-write */
	if (change && !(flags & MS_RDONLY) && mount(NULL, mnt, NULL, MS_REMOUNT | flags, NULL) < 0) {
		fprintf(stderr, "reservefs: remount %s: %s\n", a->mountpoint, strerror(errno));
		goto out;
	}
	ro = was_ro && (flags & MS_RDONLY);
	/* all or nothing: a limit refused takes back what went before it (a
	 * size= with a refused nr_inodes= stayed, saved; a read-only mount
	 * made read-write for a size= it refused stayed read-write) */
	old_size = mount_ctl_u64(mnt, "user.reservefs.size");
	if (a->o.size && mount_remount_limit(mnt, a->store, "size", a->o.size, ro) < 0)
		goto undo;
	if (a->o.nr_inodes &&
	    mount_remount_limit(mnt, a->store, "nr_inodes", a->o.nr_inodes, ro) < 0) {
		if (a->o.size && old_size &&
		    old_size != mount_ctl_u64(mnt, "user.reservefs.size")) {
			char v[32];

			snprintf(v, sizeof(v), "%" PRIu64, old_size);
			if (setxattr(mnt, "user.reservefs.size", v, strlen(v), 0) < 0)
				fprintf(stderr, "reservefs: remount %s: cannot set size= back to %s: "
					"%s\n", a->mountpoint, v, strerror(errno));
		}
		goto undo;
	}
	if (change && (flags & MS_RDONLY) && mount(NULL, mnt, NULL, MS_REMOUNT | flags, NULL) < 0) {
		fprintf(stderr, "reservefs: remount %s: %s\n", a->mountpoint, strerror(errno));
		goto out;
	}
	ret = 0;
	goto out;
undo:
	if (change && !(flags & MS_RDONLY) && mount(NULL, mnt, NULL, MS_REMOUNT | old, NULL) < 0)
		fprintf(stderr, "reservefs: remount %s: cannot restore its flags: %s\n",
			a->mountpoint, strerror(errno));
out:
	mount_dev_clear(&d);
	free(mnt);
	free(store);
	return ret;
}

bool fs_mount_is_reservefs(const char *path)
{
	char *real = realpath(path, NULL);
	struct mount_dev d;
	bool found = mount_lookup(real, &d);

	mount_dev_clear(&d);
	free(real);
	return found;
}

static int mount_write_sysfs(const char *path, const char *val)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC), res = 0;

	if (fd < 0)
		return -errno;
	if (write(fd, val, strlen(val)) < 0)
		res = -errno;
	close(fd);
	return res;
}

static int mount_read_sysfs(const char *path, char *buf, size_t size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = read(fd, buf, size - 1);
	close(fd);
	if (n < 0)
		return -errno;
	buf[n] = '\0';
	g_strstrip(buf);
	return 0;
}

/* Our connection's fusectl abort file into @path; false when FUSE's
 * device is not ours to find there. */
static bool mount_abort_path(const struct fs *fs, char *path, size_t size)
{
	if (fs->dev_major != 0)
		return false;
	snprintf(path, size, "/sys/fs/fuse/connections/%u/abort", fs->dev_minor);
	return true;
}

/* Ends our FUSE connection (root: the control filesystem; a connection
 * already gone, or another user's daemon, is left to libfuse). */
static void mount_abort_conn(const struct fs *fs)
{
	char path[64];

	if (mount_abort_path(fs, path, sizeof(path)))
		mount_write_sysfs(path, "1");
}

/* The watchdog: a small child process that ends our connection when the
 * daemon dies without unmounting (SIGKILL, a crash).  The kernel aborts a
 * connection only once the dying process releases /dev/fuse, at the exit of
 * its last thread; a thread that waits uninterruptibly on the kernel for
 * something only this daemon could answer (notify_inval_inode laundering a
 * mapped page: fuse_launder_folio waits for a WRITE that no thread is left
 * to take) never exits, so neither does the process, and the mount hangs
 * until `umount -f`.  The child holds our connection's fusectl abort file
 * (bound to this connection: once it is gone, a write does nothing, so a
 * later mount that gets the same device number is safe) and writes it when
 * the daemon's main thread dies (PR_SET_PDEATHSIG).  A clean exit kills the
 * child first.  Root only (fusectl), and only when fusectl is mounted. */
static pid_t mount_watchdog_pid = -1;

static void mount_watchdog_start(const struct fs *fs)
{
	char path[64];
	pid_t parent = getpid(), pid;
	sigset_t all, old;
	int fd, sig;

	if (!mount_abort_path(fs, path, sizeof(path)) ||
	    (fd = open(path, O_WRONLY | O_CLOEXEC)) < 0)
		return;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	pid = fork();
	if (pid != 0) {
		pthread_sigmask(SIG_SETMASK, &old, NULL);
		if (pid < 0)
			g_message("no watchdog for a killed daemon: %s", strerror(errno));
		close(fd);
		mount_watchdog_pid = pid;
		return;
	}
	/* the child, every signal blocked: async-signal-safe calls only */
	prctl(PR_SET_NAME, "reservefs-wd");
	prctl(PR_SET_PDEATHSIG, SIGUSR1);
	/* nothing of the daemon's: not /dev/fuse (it would keep the
	 * connection alive), not a caller's pipe (it would wait for EOF) */
	if (fd != STDIN_FILENO && dup3(fd, STDIN_FILENO, 0) < 0)
		_exit(1);
	close_range(STDIN_FILENO + 1, ~0U, 0);
	if (getppid() == parent) {
		sigemptyset(&all);
		sigaddset(&all, SIGUSR1);
		sigaddset(&all, SIGTERM);
		if (sigwait(&all, &sig) != 0 || sig != SIGUSR1)
			_exit(0);
	}
	if (write(STDIN_FILENO, "1", 1) < 0)
		_exit(1);
	_exit(0);
}

/* Before a clean exit (or one that unmounts on an error). */
static void mount_watchdog_stop(void)
{
	if (mount_watchdog_pid <= 0)
		return;
	kill(mount_watchdog_pid, SIGKILL);
	while (waitpid(mount_watchdog_pid, NULL, 0) < 0 && errno == EINTR)
		;
	mount_watchdog_pid = -1;
}

/* Our connection's device, from mountinfo (stat() of the mount point would
 * need the session threads that are not running yet). */
static void mount_find_dev(struct fs *fs)
{
	struct mount_dev d;

	if (mount_lookup(fs->mountpoint, &d)) {
		fs->dev_major = d.maj;
		fs->dev_minor = d.min;
	}
	mount_dev_clear(&d);
}

/* Bounds the kernel's dirty pages of this mount (its mmap side): the
 * connection's bdi gets max_bytes and strict_limit.  Runs right after the
 * mount, before the mount command returns, so the bound holds from the
 * first page; the device comes from mountinfo, since stat() of the mount
 * point would need the session threads that are not running yet. */
static void mount_set_bdi(struct fs *fs)
{
	const unsigned maj = fs->dev_major, min = fs->dev_minor;
	char path[128], val[32];
	int res = -ENOENT;

	if (fs->mmap_dirty_max == 0)
		return;
	if (maj || min) {
		char orig[32] = "", back[32] = "";

		snprintf(val, sizeof(val), "%" PRIu64, fs->mmap_dirty_max);
		snprintf(path, sizeof(path), "/sys/class/bdi/%u:%u/max_bytes", maj, min);
		mount_read_sysfs(path, orig, sizeof(orig));
		res = mount_write_sysfs(path, val);
		/* the kernel keeps a ratio of its own dirty limit: a bound that
		 * rounds to 0 would stop every mmap writer for good (FUSE's bdi
		 * has strict_limit already): put the kernel's own back */
		if (res == 0 && mount_read_sysfs(path, back, sizeof(back)) == 0 &&
		    strtoull(back, NULL, 10) == 0) {
			mount_write_sysfs(path, orig);
			res = -ERANGE;
		}
		snprintf(path, sizeof(path), "/sys/class/bdi/%u:%u/strict_limit", maj, min);
		if (res == 0)
			res = mount_write_sysfs(path, "1");
	}
	if (res == -ERANGE)
		g_warning("mmap_dirty_max=%" PRIu64 " is below what the kernel can bound for "
			  "this mount (it rounds to 0); not applied", fs->mmap_dirty_max);
	else if (res < 0)
		g_message("cannot bound the kernel's dirty pages for this mount "
			  "(/sys/class/bdi/%u:%u: %s); mmap_dirty_max not applied",
			  maj, min, strerror(-res));
}

/* Charges the ledger with what the store holds: from the per-inode records
 * after a clean unmount, or re-derived from the backing files otherwise.
 * Either way xattrs cost what the xattrs table holds (it is transactional,
 * so it never needs re-deriving). */
static int mount_load_ledger(struct fs *fs, bool clean, bool switched)
{
	uint64_t pages = 0, inodes = 0, xpages = 0;
	int problems = 0, res;
	guint later;

	if (clean) {
		if ((res = fs_meta_count(fs, "SELECT COALESCE(SUM(rsv_pages), 0) FROM inodes",
					 &pages)) < 0 ||
		    (res = fs_meta_xattr_pages(fs, &xpages)) < 0 ||
		    (res = fs_meta_count(fs, "SELECT COUNT(*) FROM inodes", &inodes)) < 0)
			return res;
		rsv_charge_force(&fs->ledger, pages + xpages);
		for (uint64_t i = 0; i < inodes; i++)
			rsv_inode_get_force(&fs->ledger);
		return 0;
	}
	res = fs_recover(fs, false, false, NULL, &problems);
	/* deletes a crash interrupted are the expected state, not damage */
	later = fs->reap_later ? fs->reap_later->len / 2 : 0;
	if (res == 0 && switched)
		g_message("%s: reserve=eof after a reserve=write mount: every page below EOF "
			  "reserved (%d repairs)", fs->store, problems);
	else if (res == 0 && later)
		g_message("%s: recovered after an unclean shutdown (%d repairs, %u of them "
			  "deletes it had not finished, which finish in the background)",
			  fs->store, problems, later);
	else if (res == 0)
		g_message("%s: recovered after an unclean shutdown (%d repairs)", fs->store,
			  problems);
	return res;
}

static int mount_set_super_u64(struct fs *fs, const char *key, uint64_t v)
{
	char buf[32];

	snprintf(buf, sizeof(buf), "%" PRIu64, v);
	return fs_meta_set_super(fs, key, buf);
}

/* The daemon holds a backing file descriptor per open file: the soft limit
 * on descriptors (often 1,024) goes up to the hard one, which the caller's
 * session set for it. */
static void mount_raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
			g_warning("cannot raise the open files limit: %s", strerror(errno));
	}
}

/* Into the background, as fuse_daemonize() does, except that the parent
 * stays until the child reports (mount_ready) and exits with its status:
 * `reservefs STORE MNT` succeeds only when the mount is up and serving, and
 * a failure after the fork (the store cannot be written, the disk is full)
 * reaches the caller's terminal and exit status.  *ready_fd: the child's
 * end of the pipe, -1 in the foreground. */
static int mount_daemonize(bool foreground, int *ready_fd)
{
	int p[2];
	char status = 1;
	pid_t pid;

	*ready_fd = -1;
	if (foreground)
		return 0;
	if (pipe2(p, O_CLOEXEC) < 0 || (pid = fork()) < 0) {
		fprintf(stderr, "reservefs: cannot go to the background: %s\n", strerror(errno));
		return -1;
	}
	if (pid > 0) {
		/* a signal ends the wait (and not the daemon's mount) */
		signal(SIGTERM, SIG_DFL);
		signal(SIGINT, SIG_DFL);
		signal(SIGHUP, SIG_DFL);
		close(p[1]);
		/* EOF: the child failed, and said why on stderr */
		while (read(p[0], &status, 1) < 0 && errno == EINTR)
			;
		_exit(status);
	}
	close(p[0]);
	setsid();
	*ready_fd = p[1];
	return 0;
}

static void mount_ready(int *ready_fd)
{
	const char ok = 0;
	int nul;

	if (*ready_fd < 0)
		return;
	if (chdir("/") < 0)
		g_warning("chdir /: %s", strerror(errno));
	if ((nul = open("/dev/null", O_RDWR | O_CLOEXEC)) >= 0) {
		dup2(nul, STDIN_FILENO);
		dup2(nul, STDOUT_FILENO);
		dup2(nul, STDERR_FILENO);
		if (nul > STDERR_FILENO)
			close(nul);
	}
	mount_backgrounded = true;
	if (write(*ready_fd, &ok, 1) != 1)
		g_warning("cannot tell the mounting process: %s", strerror(errno));
	close(*ready_fd);
	*ready_fd = -1;
}

/* SIGTERM, SIGINT and SIGHUP unmount like `fusermount3 -uz`: the mount is
 * detached at once and the daemon serves the files still open until they
 * close, so the kernel writes back every page dirtied through a mapping
 * (libfuse's handlers end the session at once: the connection is aborted
 * and those pages are lost).  A second signal ends the session at once. */
static int mount_stop_pipe[2] = { -1, -1 };
static bool mount_detached_all;		/* every mount point of ours detached */
static struct fuse_session *mount_stop_se;
static volatile sig_atomic_t mount_stop_signals;

static void mount_stop_handler(int sig)
{
	char c = sig;

	if (mount_stop_signals++ == 0 && write(mount_stop_pipe[1], &c, 1) == 1)
		return;
	if (mount_stop_se)
		fuse_session_exit(mount_stop_se);
}

static int mount_stop_handlers(struct fuse_session *se)
{
	struct sigaction sa = { .sa_handler = mount_stop_handler };
	const int sigs[] = { SIGTERM, SIGINT, SIGHUP };

	if (pipe2(mount_stop_pipe, O_CLOEXEC) < 0)
		return -errno;
	mount_stop_se = se;
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < G_N_ELEMENTS(sigs); i++)
		if (sigaction(sigs[i], &sa, NULL) < 0)
			return -errno;
	return 0;
}

/* Detach one mount point (root: umount2; others: fusermount3 -uz).  One
 * no longer mounted is fine: someone detached it first. */
static int mount_detach(const char *mnt)
{
	int status;
	pid_t pid;

	if (geteuid() == 0)
		return umount2(mnt, MNT_DETACH) == 0 || errno == EINVAL ? 0 : -errno;
	if ((pid = fork()) < 0)
		return -errno;
	if (pid == 0) {
		execlp("fusermount3", "fusermount3", "-u", "-z", "-q", "--", mnt, (char *)NULL);
		_exit(127);
	}
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -errno;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -EIO;
}

struct mount_ours {
	const struct fs *fs;
	GPtrArray *mnts;
};

static bool mount_ours_match(const struct mount_entry *e, void *ctx)
{
	struct mount_ours *o = ctx;

	if (e->maj == o->fs->dev_major && e->min == o->fs->dev_minor)
		g_ptr_array_add(o->mnts, g_strdup(e->mnt));
	return false;
}

/* Detach every mount point of our connection (the first one and the binds
 * of later mounts of the store), found by its device, never by a path that
 * someone may have mounted something else on since. */
static int mount_detach_all(struct fs *fs)
{
	struct mount_ours o = { fs, g_ptr_array_new_with_free_func(g_free) };
	int res = 0;

	if (fs->dev_major || fs->dev_minor)
		mount_each(mount_ours_match, &o);
	else
		res = -ENOENT;
	for (guint i = 0; i < o.mnts->len && res == 0; i++)
		res = mount_detach(g_ptr_array_index(o.mnts, i));
	g_ptr_array_free(o.mnts, TRUE);
	if (res == 0)
		mount_detached_all = true;
	return res;
}

static gpointer mount_stop_thread(gpointer data)
{
	struct fs *fs = data;
	char sig = 0;
	int res;

	while (read(mount_stop_pipe[0], &sig, 1) < 0 && errno == EINTR)
		;
	if (sig <= 0)
		return NULL;	/* the session ended first */
	g_message("%s: %s: unmounting; open files are served until they close (signal again "
		  "to stop at once)", fs->mountpoint, strsignal(sig));
	if ((res = mount_detach_all(fs)) < 0) {
		g_warning("%s: cannot unmount (%s): stopping at once", fs->mountpoint,
			  strerror(-res));
		kill(getpid(), sig);	/* the second signal */
	}
	return NULL;
}

/* A second mount of a store that a live daemon serves binds that mount,
 * with the mount flags asked for (ro, noexec, ...: per mount point); an
 * option only a new daemon could honour is refused. */
static int mount_bind_live(const struct mount_args *a, const struct fuse_args *args,
			   const char *live)
{
	char *what = g_strdup_printf("%s is mounted on %s; a second mount shares it", a->store,
				     live);
	const char *own = NULL;
	struct mount_dev d;
	struct statvfs sv;
	unsigned long flags;
	int ret = 1;

	mount_lookup(live, &d);

	/* the same settings as the live mount (fstab's, say) are fine; the
	 * dirty_* ones are the daemon's own */
	if (a->o.size && !mount_limit_is(live, a->store, "size", a->o.size))
		own = "size";
	else if (a->o.nr_inodes && !mount_limit_is(live, a->store, "nr_inodes", a->o.nr_inodes))
		own = "nr_inodes";
	else if (a->o.reserve && !mount_mode_is(live, a->o.reserve))
		own = "reserve";
	if (own) {
		fprintf(stderr, "reservefs: %s and cannot take another %s= (unmount it first)\n",
			what, own);
		goto out;
	}
	if (statvfs(live, &sv) < 0) {
		fprintf(stderr, "reservefs: %s: %s\n", live, strerror(errno));
		goto out;
	}
	/* a new mount's flags (libfuse's defaults), whatever the live one has */
	flags = MS_NOSUID | MS_NODEV | MS_RELATIME;
	if (mount_live_flags(args, what, d.super, &flags) < 0)
		goto out;
	if (mount(live, a->mountpoint, NULL, MS_BIND, NULL) < 0) {
		fprintf(stderr, "reservefs: %s; binding it to %s: %s\n", what, a->mountpoint,
			strerror(errno));
		goto out;
	}
	if (flags != (mount_flags_of(&sv) & ~MS_RDONLY) &&
	    mount(NULL, a->mountpoint, NULL, MS_REMOUNT | MS_BIND | flags, NULL) < 0) {
		fprintf(stderr, "reservefs: %s; its flags on %s: %s\n", what, a->mountpoint,
			strerror(errno));
		umount2(a->mountpoint, MNT_DETACH);
		goto out;
	}
	ret = 0;
out:
	mount_dev_clear(&d);
	g_free(what);
	return ret;
}

/* A mount point must be a directory, and must not cover the store: the
 * daemon reopens meta.db after mounting, and through its own mount, not
 * yet served, that open would wait forever. */
static int mount_check_mountpoint(const char *store, const char *real_store, const char *mnt)
{
	char *real = realpath(mnt, NULL);
	struct stat st;
	size_t n;
	int res = 0;

	if (!real || stat(real, &st) < 0) {
		fprintf(stderr, "reservefs: mountpoint %s: %s\n", mnt, strerror(errno));
		res = -1;
	} else if (!S_ISDIR(st.st_mode)) {
		fprintf(stderr, "reservefs: mountpoint %s: %s\n", mnt, strerror(ENOTDIR));
		res = -1;
	} else if (real_store && (n = strlen(real), strncmp(real_store, real, n) == 0) &&
		   (n == 1 || real_store[n] == '/' || real_store[n] == '\0')) {
		fprintf(stderr, "reservefs: mountpoint %s would hide the store %s: "
			"mount it elsewhere\n", mnt, store);
		res = -1;
	}
	free(real);
	return res;
}

int fs_main_mount(int argc, char *argv[])
{
	struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
	struct fuse_lowlevel_ops ops;
	struct mount_args a;
	struct fuse_session *se = NULL;
	struct fuse_loop_config *cfg;
	struct cache_params cp = { 8 << 20, 30000 };
	struct fs *fs;
	char *v = NULL, *extra, *real_store = NULL;
	bool clean, switched = false;
	enum rsv_mode stored_mode;
	int res, ret = 1, ready_fd = -1;
	GThread *stopper;

	memset(&a, 0, sizeof(a));
	if (fuse_opt_parse(&args, &a, mount_opts, mount_opt_proc) < 0 || a.bad) {
		ret = 2;
		goto out_args;
	}
	if (!a.store || !a.mountpoint) {
		fprintf(stderr, "reservefs: usage: reservefs STORE MOUNTPOINT [-o options]\n");
		ret = 2;
		goto out_args;
	}
	if (a.o.remount) {
		ret = mount_remount(&a, &args);
		goto out_args;
	}
	real_store = realpath(a.store, NULL);	/* NULL: fs_store_open says why */
	if (mount_check_mountpoint(a.store, real_store, a.mountpoint) < 0)
		goto out_args;
	{
		/* One daemon per store: a second mount of it shares the first
		 * one's view, as a block device mounted twice does. */
		char *live = fs_mount_find_live(a.store);

		if (live) {
			ret = mount_bind_live(&a, &args, live);
			g_free(live);
			goto out_args;
		}
	}
	fs = g_new0(struct fs, 1);
	fs->data_fd = fs->lock_fd = -1;
	g_mutex_init(&fs->db_lock);
	g_mutex_init(&fs->itable_lock);
	g_mutex_init(&fs->spare_lock);
	g_mutex_init(&fs->reap_lock);
	g_cond_init(&fs->reap_cond);
	g_cond_init(&fs->copies_done);
	fs->itable = g_hash_table_new(g_int64_hash, g_int64_equal);
	fs->mountpoint = realpath(a.mountpoint, NULL);
	fs->attr_timeout = 86400.0;
	fs->owner_uid = getuid();
	fs->mmap_dirty_max = 64 << 20;
	fs->noatime = a.o.noatime;
	fs->bench_no_reserve = a.o.bench_no_reserve;
	fs->max_read = a.o.max_read;
	if (fs->bench_no_reserve)
		g_warning("bench_no_reserve: writes bypass the capacity ledger (benchmarks only)");
	g_log_set_default_handler(log_handler, &a.o);
	if (!fs->mountpoint) {
		fprintf(stderr, "reservefs: mountpoint %s: %s\n", a.mountpoint, strerror(errno));
		goto out;
	}
	if ((a.o.dirty_limit && parse_bytes(a.o.dirty_limit, "dirty_limit", &cp.dirty_limit) < 0) ||
	    (a.o.mmap_dirty_max &&
	     parse_bytes(a.o.mmap_dirty_max, "mmap_dirty_max", &fs->mmap_dirty_max) < 0)) {
		ret = 2;
		goto out;
	}
	if (a.o.dirty_expire && parse_seconds_ms(a.o.dirty_expire, &cp.dirty_expire_ms) < 0) {
		fprintf(stderr, "reservefs: bad value for option dirty_expire=%s (seconds, "
			"or Nms; at most 100 years)\n", a.o.dirty_expire);
		ret = 2;
		goto out;
	}
	/* The session parses libfuse's options: a bad one must be refused
	 * before the store is touched. */
	{
		GString *esc = g_string_new(NULL);
		/* the real path: how fs_mount_find_live knows the store */
		for (const char *p = real_store ? real_store : a.store; *p; p++) {
			if (*p == ',' || *p == '\\')
				g_string_append_c(esc, '\\');
			g_string_append_c(esc, *p);
		}
		extra = g_strdup_printf("-osubtype=reservefs,fsname=%s,default_permissions",
					esc->str);
		g_string_free(esc, TRUE);
	}
	fuse_opt_insert_arg(&args, 1, extra);
	g_free(extra);

	memset(&ops, 0, sizeof(ops));
	ops.init = mount_init;
	fs_ops_dir_init(&ops);
	fs_ops_file_init(&ops);
	fs_ops_attr_init(&ops);
	se = fuse_session_new(&args, &ops, sizeof(ops), fs);
	if (!se) {
		ret = 2;	/* libfuse printed why (e.g. an unknown option) */
		goto out;
	}
	if (fs_store_open(fs, a.store, a.o.ro, false) < 0)
		goto out;
	if (!fs->ro && fs->format < FS_FORMAT_VERSION) {
		if ((res = fs_meta_upgrade(fs)) < 0) {
			fprintf(stderr, "reservefs: %s: cannot upgrade the store to format %d: %s "
				"(it is unchanged)\n", a.store, FS_FORMAT_VERSION, strerror(-res));
			goto out;
		}
		fs->format = FS_FORMAT_VERSION;
	}
	stored_mode = fs->params.mode;
	if (fs_parse_params(a.o.size, a.o.nr_inodes, a.o.reserve, fs->store, &fs->params) < 0) {
		ret = 2;
		goto out;
	}
	fs->max_file_size = mount_max_file_size(fs->data_fd);
	{
		struct stat dst;
		fs->backing_page_blocks = fstat(fs->data_fd, &dst) == 0 &&
					  dst.st_blksize == RSV_PAGE_SIZE;
	}
	rsv_ledger_init(&fs->ledger, fs->params.size_pages, fs->params.nr_inodes, fs->params.mode);

	clean = fs_meta_get_super(fs, "clean", &v) == 0 && strcmp(v, "1") == 0;
	g_free(v);
	v = NULL;
	if (fs_meta_get_super(fs, "last_mode", &v) == 0) {
		enum rsv_mode last;
		if (rsv_parse_mode(v, &last) == 0)
			stored_mode = last;
		g_free(v);
		v = NULL;
	}
	/* eof mode after a write-mode mount: holes below EOF need reserving */
	switched = stored_mode == RSV_MODE_WRITE && fs->params.mode == RSV_MODE_EOF;
	if ((res = mount_load_ledger(fs, clean && !switched, switched)) < 0) {
		if (res != -ENOSPC)	/* fs_recover said why */
			fprintf(stderr, "reservefs: %s: cannot read the store\n", a.store);
		goto out;
	}
	/* as the control xattrs and a remount refuse it: the store is left
	 * as it was, the limits included */
	if (a.o.size && rsv_reserved_pages(&fs->ledger) > rsv_capacity_pages(&fs->ledger)) {
		fprintf(stderr, "reservefs: %s: size=%s is below the %" PRIu64 " bytes in use; "
			"mount without it, delete files, then shrink (setfattr -n "
			"user.reservefs.size)\n", a.store, a.o.size,
			rsv_reserved_pages(&fs->ledger) << RSV_PAGE_SHIFT);
		goto out;
	}
	if (a.o.nr_inodes && rsv_used_inodes(&fs->ledger) > rsv_nr_inodes(&fs->ledger)) {
		fprintf(stderr, "reservefs: %s: nr_inodes=%s is below the %" PRIu64 " inodes in "
			"use\n", a.store, a.o.nr_inodes, rsv_used_inodes(&fs->ledger));
		goto out;
	}
	if (rsv_reserved_pages(&fs->ledger) > rsv_capacity_pages(&fs->ledger))
		g_warning("%s: %" PRIu64 " pages in use exceed the capacity of %" PRIu64
			  " pages: nothing can grow until space is freed", a.store,
			  rsv_reserved_pages(&fs->ledger), rsv_capacity_pages(&fs->ledger));
	/* SQLite's file locks do not survive fork(): reopen after daemonizing */
	fs_meta_close(fs);
	/* the closed connection's page cache (the ledger's scan of every inode
	 * row) stayed in glibc's heap: 100,000 files kept 4.5 MiB of an idle
	 * daemon's RSS */
	malloc_trim(0);

	if (fuse_set_signal_handlers(se) < 0)
		goto out_destroy;
	if (fuse_session_mount(se, fs->mountpoint) < 0)
		goto out_signals;
	if (fs_io_install(fs, se) < 0)
		goto out_unmount;
	mount_find_dev(fs);
	mount_set_bdi(fs);
	if (mount_daemonize(a.o.foreground, &ready_fd) < 0)
		goto out_unmount;
	mount_watchdog_start(fs);
	/* the daemon's, not the waiting parent's: it must not share the pipe */
	if ((res = mount_stop_handlers(se)) < 0) {
		g_critical("cannot set signal handlers: %s", strerror(-res));
		goto out_unmount;
	}
	if (!a.o.foreground)
		openlog("reservefs", LOG_PID, LOG_DAEMON);
	mount_raise_nofile();
	if ((res = fs_meta_open(fs, false)) < 0) {
		g_critical("%s: cannot reopen meta.db: %s", a.store, strerror(-res));
		goto out_unmount;
	}
	/* Mounted: from here on the store is in use (and unclean until we
	 * unmount cleanly). */
	if (!fs->ro) {
		v = NULL;
		if (fs_meta_get_super(fs, "generation", &v) == 0)
			fs->generation = g_ascii_strtoull(v, NULL, 10) + 1;
		g_free(v);
		if (fs->generation == 0)
			fs->generation = 1;
		if ((res = fs_meta_set_super(fs, "clean", "0")) < 0 ||
		    (res = mount_set_super_u64(fs, "generation", fs->generation)) < 0 ||
		    (res = fs_meta_set_super(fs, "last_mode", rsv_mode_name(fs->params.mode))) < 0 ||
		    (res = fs_meta_sync(fs, NULL)) < 0) {
			g_critical("%s: cannot write the store: %s", a.store, strerror(-res));
			goto out_unmount;
		}
	}
	fs->se = se;
	/* a few threads of their own, outside the session loop (fs_seek_job) */
	fs->seek_pool = g_thread_pool_new(fs_seek_job, fs, 4, FALSE, NULL);
	fs->wb_started = g_array_new(FALSE, FALSE, sizeof(struct mount_wb));
	fs->cache = cache_new(&cp, &mount_cache_ops, fs);
	fs_backing_reaper_start(fs);
	fs->stamp_ok = !fs->ro;

	mount_ready(&ready_fd);

	cfg = fuse_loop_cfg_create();
	fuse_loop_cfg_set_clone_fd(cfg, 0);
	fuse_loop_cfg_set_max_threads(cfg, 10);
	/* idle threads are kept by default (libfuse's -1); setting -1 again
	 * only printed "Ignoring invalid max threads value" */
	stopper = g_thread_new("stop", mount_stop_thread, fs);
	res = fuse_session_loop_mt(se, cfg);
	/* the connection is gone: a notification still under way fails */
	g_thread_pool_free(fs->seek_pool, FALSE, TRUE);
	fs->seek_pool = NULL;
	{
		const char done = 0;

		if (write(mount_stop_pipe[1], &done, 1) != 1)
			g_warning("cannot stop the signal thread: %s", strerror(errno));
		g_thread_join(stopper);
		mount_stop_se = NULL;	/* signals now wait for the exit below */
	}
	fuse_loop_cfg_destroy(cfg);
	/* a read that had taken a request (a FORGET, DESTROY) as the kernel tore
	 * down the connection after our stop signal's unmount says
	 * ECONNABORTED, not ENODEV: the end we asked for (1 in ~10 runs of
	 * test_sigterm_unmounts_and_keeps_mmap_data exited 1) */
	if (res == -ECONNABORTED && mount_stop_signals)
		res = 0;
	ret = res == 0 ? 0 : 1;

out_unmount:
	mount_watchdog_stop();
	fs->se = NULL;
	/* detached by a signal: the path may carry someone else's mount now.
	 * End our connection first (a second signal stops while files are
	 * open); libfuse then sees it gone and unmounts no path. */
	if (mount_detached_all)
		mount_abort_conn(fs);
	fuse_session_unmount(se);
out_signals:
	fuse_remove_signal_handlers(se);
out_destroy:
	fuse_session_destroy(se);
	se = NULL;
	if (fs->db) {
		cache_stop(fs->cache);	/* its thread pins inodes */
		int rows = fs_inode_destroy_all(fs);

		fs_backing_reaper_stop(fs);
		if (rows < 0 && !fs->ro)
			g_warning("%s: inode rows not written (%s): left to the next mount's "
				  "recovery", fs->store, strerror(-rows));
		if (!fs->ro) {
			g_mutex_lock(&fs->db_lock);
			fs_meta_save_next_id(fs);
			if (rows == 0)
				fs_meta_set_super(fs, "clean", "1");
			g_mutex_unlock(&fs->db_lock);
			fs_meta_sync(fs, NULL);
			fs_meta_exec(fs, "PRAGMA wal_checkpoint(TRUNCATE)");
		}
	}
	cache_free(fs->cache);
	if (fs->wb_started)
		g_array_free(fs->wb_started, TRUE);
out:
	if (se)
		fuse_session_destroy(se);
	fs_store_close(fs);
	free(fs->mountpoint);
	g_hash_table_destroy(fs->itable);
	g_free(fs);
out_args:
	fuse_opt_free_args(&args);
	free(real_store);
	free(a.store);
	free(a.mountpoint);
	free(a.o.size);
	free(a.o.nr_inodes);
	free(a.o.reserve);
	free(a.o.dirty_limit);
	free(a.o.dirty_expire);
	free(a.o.mmap_dirty_max);
	return ret;
}
