/* fs/tools.c — `reservefs mkfs`, `reservefs fsck`, `reservefs stat`. */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/file.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "fs_i.h"

#define MKFS_USAGE "usage: reservefs mkfs STORE [-o size=,nr_inodes=,reserve=eof|write] [--force]\n"
#define FSCK_USAGE "usage: reservefs fsck STORE [--repair]\n"
#define STAT_USAGE "usage: reservefs stat MOUNTPOINT [--json]\n"

/* --help or -h: the usage line on stdout, and success */
static bool tools_help(const char *arg, const char *usage)
{
	if (strcmp(arg, "--help") && strcmp(arg, "-h"))
		return false;
	fputs(usage, stdout);
	return true;
}

static int tools_rm(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path) < 0 ? -1 : 0;
}

static bool tools_dir_empty(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *de;
	bool empty = true;

	if (!d)
		return true;
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			empty = false;
	closedir(d);
	return empty;
}

/* "-o a=b,c=d" values for mkfs: only size, nr_inodes, reserve. */
static int mkfs_parse(const char *opts, char **size, char **nr, char **rsv)
{
	gchar **kv = g_strsplit(opts, ",", -1);
	int res = 0;

	for (gchar **p = kv; *p && res == 0; p++) {
		char *eq = strchr(*p, '=');
		if (!**p)
			continue;
		if (!eq) {
			fprintf(stderr, "reservefs mkfs: unknown option '%s'\n", *p);
			res = -EINVAL;
		} else if (g_str_has_prefix(*p, "size=")) {
			g_free(*size);
			*size = g_strdup(eq + 1);
		} else if (g_str_has_prefix(*p, "nr_inodes=")) {
			g_free(*nr);
			*nr = g_strdup(eq + 1);
		} else if (g_str_has_prefix(*p, "reserve=")) {
			g_free(*rsv);
			*rsv = g_strdup(eq + 1);
		} else {
			fprintf(stderr, "reservefs mkfs: unknown option '%.*s'\n", (int)(eq - *p), *p);
			res = -EINVAL;
		}
	}
	g_strfreev(kv);
	return res;
}

/* Refuses (-EBUSY, said here) when a daemon or fsck holds the store. */
static int mkfs_check_unused(const char *store)
{
	char *lock = g_build_filename(store, "lock", NULL), *mnt = fs_mount_find(store);
	int fd = open(lock, O_RDONLY | O_CLOEXEC);

	g_free(lock);
	if (mnt) {	/* even if its lock file went */
		fprintf(stderr, "reservefs mkfs: %s is in use: mounted on %s\n", store, mnt);
		g_free(mnt);
		if (fd >= 0)
			close(fd);
		return -EBUSY;
	}
	if (fd < 0)
		return 0;
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		fprintf(stderr, "reservefs mkfs: %s is in use (mounted?)\n", store);
		close(fd);
		return -EBUSY;
	}
	close(fd);	/* fs_store_open takes it again, on its own fd */
	return 0;
}

/* Removes the old store's data/ and meta.db (with its WAL); 0 or -errno,
 * said here. */
static int mkfs_erase(const char *store, const char *meta)
{
	static const char *const sfx[] = { "", "-wal", "-shm" };
	char *data = g_build_filename(store, "data", NULL);
	int res = 0;

	if (nftw(data, tools_rm, 64, FTW_DEPTH | FTW_PHYS) < 0 && errno != ENOENT)
		res = -errno;
	g_free(data);
	for (size_t i = 0; res == 0 && i < G_N_ELEMENTS(sfx); i++) {
		char *f = g_strconcat(meta, sfx[i], NULL);

		if (unlink(f) < 0 && errno != ENOENT)
			res = -errno;
		g_free(f);
	}
	if (res < 0)
		fprintf(stderr, "reservefs mkfs: %s: cannot erase the old store: %s\n",
			store, strerror(-res));
	return res;
}

int fs_main_mkfs(int argc, char *argv[])
{
	char *size = NULL, *nr = NULL, *rsv = NULL, *store = NULL, *meta = NULL;
	struct fs_params p = { 0, 0, RSV_MODE_EOF };
	struct fs_inode root;
	struct stat st;
	struct fs fs;
	bool force = false, created = false, exists;
	int ret = 1;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--force") == 0 || strcmp(argv[i], "-F") == 0) {
			force = true;
		} else if (tools_help(argv[i], MKFS_USAGE)) {
			ret = 0;
			goto out;
		} else if (strcmp(argv[i], "-o") == 0 && i + 1 < argc) {
			if (mkfs_parse(argv[++i], &size, &nr, &rsv) < 0)
				goto out_usage;
		} else if (g_str_has_prefix(argv[i], "-o") && argv[i][2]) {
			if (mkfs_parse(argv[i] + 2, &size, &nr, &rsv) < 0)
				goto out_usage;
		} else if (argv[i][0] == '-' || store) {
			fprintf(stderr, "reservefs mkfs: unexpected argument '%s'\n" MKFS_USAGE,
				argv[i]);
			goto out_usage;
		} else {
			store = argv[i];
		}
	}
	if (!store) {
		fputs(MKFS_USAGE, stderr);
		goto out_usage;
	}
	if (mkdir(store, 0755) == 0) {
		created = true;
	} else if (errno != EEXIST || stat(store, &st) < 0 || !S_ISDIR(st.st_mode)) {
		/* still EEXIST: there, and not a directory */
		fprintf(stderr, "reservefs mkfs: %s: %s\n", store,
			strerror(errno == EEXIST ? ENOTDIR : errno));
		goto out;
	}
	meta = g_build_filename(store, "meta.db", NULL);
	exists = access(meta, F_OK) == 0;
	if (exists && !force) {
		fprintf(stderr, "reservefs mkfs: %s is already a reservefs store "
			"(use --force to erase it)\n", store);
		goto out;
	}
	if (!exists && !tools_dir_empty(store)) {
		fprintf(stderr, "reservefs mkfs: %s is not empty and not a reservefs store\n", store);
		goto out;
	}
	/* every option is checked before anything of an old store goes */
	if (fs_parse_params(size ? size : "50%", NULL, rsv, store, &p) < 0) {
		ret = 2;
		goto out;
	}
	/* default: one inode per page of capacity, at least 1024 */
	p.nr_inodes = MAX(p.size_pages, 1024);
	if (nr && fs_parse_params(NULL, nr, NULL, store, &p) < 0) {
		ret = 2;
		goto out;
	}
	if (exists && (mkfs_check_unused(store) < 0 || mkfs_erase(store, meta) < 0))
		goto out;

	memset(&fs, 0, sizeof(fs));
	fs.lock_fd = fs.data_fd = fs.free_fd = -1;
	g_mutex_init(&fs.db_lock);
	if (fs_store_open(&fs, store, false, true) < 0)
		goto out_close;
	memset(&root, 0, sizeof(root));
	root.mode = S_IFDIR | 0755;
	root.uid = getuid();
	root.gid = getgid();
	root.nlink = 2;
	root.gen = 1;
	root.atime = root.mtime = root.ctime = root.btime = fs_now();
	root.parent = FS_ROOT_INO;
	if (fs_meta_exec(&fs, "BEGIN") < 0 ||
	    fs_store_save_params(&fs, &p) < 0 ||
	    fs_meta_set_super(&fs, "format", G_STRINGIFY(FS_FORMAT_VERSION)) < 0 ||
	    fs_meta_set_super(&fs, "clean", "1") < 0 ||
	    fs_meta_set_super(&fs, "generation", "1") < 0 ||
	    fs_meta_set_super(&fs, "syncs", "0") < 0 ||
	    fs_meta_insert_inode(&fs, &root, NULL) < 0 || root.ino != FS_ROOT_INO ||
	    fs_meta_save_next_id(&fs) < 0 ||
	    fs_meta_exec(&fs, "COMMIT") < 0 || fs_meta_sync(&fs, NULL) < 0) {
		fprintf(stderr, "reservefs mkfs: %s: cannot write meta.db\n", store);
		goto out_close;
	}
	printf("reservefs: created %s: size %" PRIu64 " bytes (%" PRIu64 " pages), %" PRIu64
	       " inodes, reserve=%s\n", store, p.size_pages << RSV_PAGE_SHIFT, p.size_pages,
	       p.nr_inodes, rsv_mode_name(p.mode));
	ret = 0;
out_close:
	fs_store_close(&fs);
out:
	/* a directory we made ourselves holds nothing but what we put there */
	if (ret != 0 && created)
		nftw(store, tools_rm, 64, FTW_DEPTH | FTW_PHYS);
	g_free(meta);
	g_free(size);
	g_free(nr);
	g_free(rsv);
	return ret;
out_usage:
	ret = 2;
	goto out;
}

int fs_main_fsck(int argc, char *argv[])
{
	const char *store = NULL;
	bool repair = false, clean;
	GString *report;
	struct fs fs;
	const char *what;
	char *v = NULL;
	int problems = 0, left = 0, next_id_problems, ret = 1, res;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--repair") == 0 || strcmp(argv[i], "-y") == 0) {
			repair = true;
		} else if (tools_help(argv[i], FSCK_USAGE)) {
			return 0;
		} else if (argv[i][0] == '-' || store) {
			fputs(FSCK_USAGE, stderr);
			return 2;
		} else {
			store = argv[i];
		}
	}
	if (!store) {
		fputs(FSCK_USAGE, stderr);
		return 2;
	}
	report = g_string_new(NULL);
	memset(&fs, 0, sizeof(fs));
	fs.lock_fd = fs.data_fd = fs.free_fd = -1;
	fs.fsck = true;
	g_mutex_init(&fs.db_lock);
	/* a check without repair reads a store on read-only media too, or one
	 * we may not write */
	if (fs_store_open(&fs, store, !repair && fs_store_writable(store, &what) < 0, false) < 0)
		goto out_close;
	/* the mode the store was last mounted in is the one its files follow */
	if (fs_meta_get_super(&fs, "last_mode", &v) == 0)
		rsv_parse_mode(v, &fs.params.mode);
	g_free(v);
	v = NULL;
	clean = fs_meta_get_super(&fs, "clean", &v) == 0 && strcmp(v, "1") == 0;
	g_free(v);
	rsv_ledger_init(&fs.ledger, fs.params.size_pages, fs.params.nr_inodes, fs.params.mode);
	if (!clean)
		g_string_append_printf(report, "store was not cleanly unmounted%s\n",
				       repair ? ": recovered" : " (the next mount recovers it)");
	if ((res = fs_recover(&fs, clean, !repair, report, &problems)) < 0) {
		fprintf(stderr, "reservefs fsck: %s: cannot read the store (%s); nothing was "
			"changed\n", store, strerror(-res));
		goto out_close;
	}
	if ((res = fs_store_check_next_id(&fs, repair, report)) < 0) {
		fprintf(stderr, "reservefs fsck: %s: cannot %s the inode counter (%s)\n",
			store, repair ? "repair" : "read", strerror(-res));
		goto out_close;
	}
	next_id_problems = res;
	if (!clean)
		problems++;
	problems += next_id_problems;
	fputs(report->str, stdout);
	/* what the repair could not fix is still there: look again */
	if (repair && problems) {
		g_string_truncate(report, 0);
		rsv_ledger_init(&fs.ledger, fs.params.size_pages, fs.params.nr_inodes,
				fs.params.mode);
		if ((res = fs_store_check_next_id(&fs, false, report)) >= 0) {
			next_id_problems = res;
			res = fs_recover(&fs, true, true, report, &left);
			left += next_id_problems;
		}
		if (res < 0) {
			fprintf(stderr, "reservefs fsck: %s: cannot read the store after "
				"repairing it (%s)\n", store, strerror(-res));
			goto out_close;
		}
		for (char *l = strtok(report->str, "\n"); l; l = strtok(NULL, "\n"))
			printf("not repaired: %s\n", l);
	}
	printf("%s: %" PRIu64 " inodes, %" PRIu64 " of %" PRIu64 " pages reserved, mode %s: %s\n",
	       store, rsv_used_inodes(&fs.ledger), rsv_reserved_pages(&fs.ledger),
	       fs.params.size_pages, rsv_mode_name(fs.params.mode),
	       problems == 0 ? "clean" : !repair ? "PROBLEMS FOUND" :
	       left ? "PROBLEMS REMAIN" : "repaired");
	/* an unclean store stays so while anything is left: the next mount
	 * then derives the ledger from the backing files, not from the rows */
	if (repair && problems && !left &&
	    (fs_meta_set_super(&fs, "clean", "1") < 0 || fs_meta_sync(&fs, NULL) < 0)) {
		fprintf(stderr, "reservefs fsck: %s: cannot write meta.db\n", store);
		goto out_close;
	}
	if (left)
		fprintf(stderr, "reservefs fsck: %s: %d problem%s could not be repaired\n",
			store, left, left == 1 ? "" : "s");
	ret = problems == 0 || (repair && !left) ? 0 : 1;
out_close:
	fs_store_close(&fs);
	g_string_free(report, TRUE);
	return ret;
}

/* The stat JSON as text: one "key: value" line per top-level field, a
 * nested object on its line as key=value pairs ("enospc: write=0 ..."), each
 * object of an array on a line of its own ("files:" then "  ino=12 ..."). */
static void stat_print_text(const char *json)
{
	char kind[16];		/* the open containers: '{' or '[' */
	bool in_str = false;
	int depth = 0;

	for (const char *p = json; *p; p++) {
		char in = depth > 0 && depth <= (int)sizeof(kind) ? kind[depth - 1] : 0;

		if (in_str) {
			if (*p == '\\' && p[1])
				putchar(*++p);
			else if (*p == '"')
				in_str = false;
			else
				putchar(*p);
			continue;
		}
		switch (*p) {
		case '"':
			in_str = true;
			break;
		case '{':
		case '[':
			if (*p == '{' && in == '[')
				fputs("\n  ", stdout);
			if (depth < (int)sizeof(kind))
				kind[depth] = *p;
			depth++;
			break;
		case '}':
		case ']':
			depth--;
			break;
		case ',':
			/* top level: a line each; in an array the next object
			 * starts its own line */
			fputs(depth == 1 ? "\n" : in == '[' ? "" : " ", stdout);
			break;
		case ':':
			fputs(depth == 1 ? ": " : "=", stdout);
			break;
		case ' ':
		case '\n':
			break;
		default:
			putchar(*p);
		}
	}
	putchar('\n');
}

int fs_main_stat(int argc, char *argv[])
{
	const char *mnt = NULL;
	bool json = false;
	char buf[65536];
	struct stat st;
	ssize_t n;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0)
			json = true;
		else if (tools_help(argv[i], STAT_USAGE))
			return 0;
		else if (argv[i][0] == '-' || mnt) {
			fputs(STAT_USAGE, stderr);
			return 2;
		} else
			mnt = argv[i];
	}
	if (!mnt) {
		fputs(STAT_USAGE, stderr);
		return 2;
	}
	/* the control xattrs live on the mount's root only: elsewhere a name
	 * like ours is anyone's own xattr */
	if (stat(mnt, &st) < 0)
		n = -1;
	else
		n = fs_mount_is_reservefs(mnt) ? getxattr(mnt, "user.reservefs.stat", buf,
							  sizeof(buf) - 1) : (errno = ENODATA, -1);
	if (n < 0) {
		fprintf(stderr, "reservefs stat: %s: %s\n", mnt,
			errno == ENODATA || errno == ENOTSUP ? "not a reservefs mount" : strerror(errno));
		return 1;
	}
	buf[n] = '\0';
	if (json) {
		fputs(buf, stdout);
		return 0;
	}
	stat_print_text(buf);
	return 0;
}
