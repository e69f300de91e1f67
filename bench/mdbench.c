/* mdbench — small-file metadata benchmark for bench/run.
 *
 *   mdbench run DIR [-n FILES] [-r ROUND] [-s SIZE] [-d]
 *       For each round of ROUND files (FILES in total): create + write SIZE
 *       bytes + close every file, then stat every file, then unlink every
 *       file.  Prints one JSON object with ops/s for each phase (the phase's
 *       time summed over all rounds).  -d drops the kernel's dentry/inode/page
 *       caches (sync; echo 3 > /proc/sys/vm/drop_caches, needs root) after
 *       each create phase, so the stat phase goes to the filesystem (cold
 *       lookups) instead of being answered from the kernel's caches.
 *       Rounds exist because some FUSE servers (libfuse's passthrough_ll)
 *       hold one file descriptor per inode the kernel remembers: a round
 *       smaller than RLIMIT_NOFILE keeps them working; unlinked inodes are
 *       forgotten, so every round starts from nothing.
 *
 *   mdbench create DIR -n FILES [-s SIZE]
 *       Create FILES files (SIZE bytes each, default 0) named DIR/dNNN/fNNNNNNN,
 *       1000 per directory.  Prints JSON.
 *
 *   mdbench stat DIR -n FILES [-o FIRST]
 *       stat() files FIRST .. FIRST+FILES-1 of that layout.  Prints JSON with
 *       the number that succeeded and the first error.
 *
 * Exit status: 0 if every operation succeeded, 1 otherwise (the JSON line is
 * still printed), 2 on usage errors.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define PER_DIR 1000

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: mdbench run DIR [-n FILES] [-r ROUND] [-s SIZE] [-d]\n"
		"       mdbench create DIR -n FILES [-s SIZE]\n"
		"       mdbench stat DIR -n FILES [-o FIRST]\n");
	exit(2);
}

static int first_errno;
static const char *first_op = "";

static void note_err(const char *op)
{
	if (!first_errno) {
		first_errno = errno;
		first_op = op;
	}
}

static void drop_caches(void)
{
	sync();
	int fd = open("/proc/sys/vm/drop_caches", O_WRONLY);
	if (fd < 0 || write(fd, "3\n", 2) != 2)
		fprintf(stderr, "mdbench: drop_caches: %s\n", strerror(errno));
	if (fd >= 0)
		close(fd);
}

static char *buf;

static int create_one(const char *path, size_t size)
{
	int fd = open(path, O_CREAT | O_EXCL | O_WRONLY, 0644);
	if (fd < 0) {
		note_err("create");
		return -1;
	}
	int ok = 0;
	if (size && write(fd, buf, size) != (ssize_t)size) {
		note_err("write");
		ok = -1;
	}
	if (close(fd) < 0) {
		note_err("close");
		ok = -1;
	}
	return ok;
}

static void tree_path(char *out, size_t len, const char *dir, long i)
{
	snprintf(out, len, "%s/d%03ld/f%07ld", dir, i / PER_DIR, i);
}

static int ensure_dirs(const char *dir, long first, long n)
{
	char p[4096];
	for (long d = first / PER_DIR; d <= (first + n - 1) / PER_DIR; d++) {
		snprintf(p, sizeof p, "%s/d%03ld", dir, d);
		if (mkdir(p, 0755) < 0 && errno != EEXIST) {
			note_err("mkdir");
			return -1;
		}
	}
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 3)
		usage();
	const char *mode = argv[1], *dir = argv[2];
	long files = 20000, round = 10000, first = 0;
	size_t size = (size_t)-1;
	int drop = 0, c;

	optind = 3;
	while ((c = getopt(argc, argv, "n:r:s:o:d")) != -1) {
		switch (c) {
		case 'n': files = atol(optarg); break;
		case 'r': round = atol(optarg); break;
		case 's': size = strtoul(optarg, NULL, 0); break;
		case 'o': first = atol(optarg); break;
		case 'd': drop = 1; break;
		default: usage();
		}
	}
	if (files <= 0 || round <= 0)
		usage();
	if (size == (size_t)-1)
		size = strcmp(mode, "run") == 0 ? 4096 : 0;
	buf = malloc(size ? size : 1);
	if (!buf)
		return 1;
	memset(buf, 'x', size ? size : 1);

	char p[4096];
	long ok = 0;

	if (strcmp(mode, "run") == 0) {
		double t_create = 0, t_stat = 0, t_unlink = 0, t0 = 0;
		long n_create = 0, n_stat = 0, n_unlink = 0;
		for (long base = 0; base < files; base += round) {
			long n = files - base < round ? files - base : round;
			t0 = now();
			for (long i = 0; i < n; i++) {
				snprintf(p, sizeof p, "%s/f%07ld", dir, base + i);
				if (create_one(p, size) == 0)
					n_create++;
			}
			t_create += now() - t0;
			if (drop)
				drop_caches();
			struct stat st;
			t0 = now();
			for (long i = 0; i < n; i++) {
				snprintf(p, sizeof p, "%s/f%07ld", dir, base + i);
				if (stat(p, &st) == 0)
					n_stat++;
				else
					note_err("stat");
			}
			t_stat += now() - t0;
			t0 = now();
			for (long i = 0; i < n; i++) {
				snprintf(p, sizeof p, "%s/f%07ld", dir, base + i);
				if (unlink(p) == 0)
					n_unlink++;
				else
					note_err("unlink");
			}
			t_unlink += now() - t0;
		}
		printf("{\"files\": %ld, \"round\": %ld, \"size\": %zu, \"drop_caches\": %d, "
		       "\"create_ops\": %ld, \"create_s\": %.6f, \"create_ops_s\": %.1f, "
		       "\"stat_ops\": %ld, \"stat_s\": %.6f, \"stat_ops_s\": %.1f, "
		       "\"unlink_ops\": %ld, \"unlink_s\": %.6f, \"unlink_ops_s\": %.1f, "
		       "\"errno\": %d, \"error\": \"%s%s%s\"}\n",
		       files, round, size, drop,
		       n_create, t_create, n_create / t_create,
		       n_stat, t_stat, n_stat / t_stat,
		       n_unlink, t_unlink, n_unlink / t_unlink,
		       first_errno, first_op, first_errno ? ": " : "",
		       first_errno ? strerror(first_errno) : "");
		return (n_create == files && n_stat == files && n_unlink == files) ? 0 : 1;
	} else if (strcmp(mode, "create") == 0) {
		double t0 = now();
		if (ensure_dirs(dir, first, files) == 0) {
			for (long i = first; i < first + files; i++) {
				tree_path(p, sizeof p, dir, i);
				if (create_one(p, size) == 0)
					ok++;
			}
		}
		double t = now() - t0;
		printf("{\"created\": %ld, \"files\": %ld, \"s\": %.6f, \"ops_s\": %.1f, "
		       "\"errno\": %d, \"error\": \"%s%s%s\"}\n",
		       ok, files, t, ok / t, first_errno, first_op,
		       first_errno ? ": " : "", first_errno ? strerror(first_errno) : "");
	} else if (strcmp(mode, "stat") == 0) {
		struct stat st;
		double t0 = now();
		for (long i = first; i < first + files; i++) {
			tree_path(p, sizeof p, dir, i);
			if (stat(p, &st) == 0)
				ok++;
			else
				note_err("stat");
		}
		double t = now() - t0;
		printf("{\"stat_ok\": %ld, \"files\": %ld, \"s\": %.6f, \"ops_s\": %.1f, "
		       "\"errno\": %d, \"error\": \"%s%s%s\"}\n",
		       ok, files, t, ok / t, first_errno, first_op,
		       first_errno ? ": " : "", first_errno ? strerror(first_errno) : "");
	} else {
		usage();
	}
	return ok == files ? 0 : 1;
}
