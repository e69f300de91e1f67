/*
 * rfsx - randomized file operation tester for reservefs.
 *
 * Operates on one file (and optionally FILE.cfr for cross-file
 * copy_file_range), checking every result against an in-memory model of the
 * file's contents and size.  The operation sequence is a pure function of
 * the seed and the options, so a failure reproduces with the printed command.
 *
 * In --enospc-ok mode the file system may run out of space; the tester then
 * checks reservefs' ENOSPC semantics (see README.md): short writes are
 * page-granular and wrote exactly what they returned, failed calls change
 * nothing.
 *
 * Written from scratch for reservefs.  SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <linux/falloc.h>

#define LOG_RING 32
#define DUMP_BYTES 64

enum op {
	OP_WRITE, OP_READ, OP_MAPWRITE, OP_MAPREAD, OP_MSYNC, OP_TRUNCATE,
	OP_FALLOC, OP_FALLOC_KEEP, OP_PUNCH, OP_ZERO, OP_ZERO_KEEP,
	OP_COPY, OP_COPY_X, OP_FSYNC, OP_FDATASYNC, OP_REOPEN, OP_REMOUNT,
	OP_COUNT
};

static const char *const op_names[OP_COUNT] = {
	[OP_WRITE] = "write", [OP_READ] = "read", [OP_MAPWRITE] = "mapwrite",
	[OP_MAPREAD] = "mapread", [OP_MSYNC] = "msync", [OP_TRUNCATE] = "truncate",
	[OP_FALLOC] = "falloc", [OP_FALLOC_KEEP] = "falloc_keep",
	[OP_PUNCH] = "punch", [OP_ZERO] = "zero", [OP_ZERO_KEEP] = "zero_keep",
	[OP_COPY] = "copy", [OP_COPY_X] = "copy_x", [OP_FSYNC] = "fsync",
	[OP_FDATASYNC] = "fdatasync", [OP_REOPEN] = "reopen", [OP_REMOUNT] = "remount",
};

/* Relative weights (out of ~1000) for randomly chosen ops. */
static const unsigned op_weight[OP_COUNT] = {
	[OP_WRITE] = 200, [OP_READ] = 180, [OP_MAPWRITE] = 80, [OP_MAPREAD] = 80,
	[OP_MSYNC] = 15, [OP_TRUNCATE] = 70, [OP_FALLOC] = 30, [OP_FALLOC_KEEP] = 20,
	[OP_PUNCH] = 40, [OP_ZERO] = 30, [OP_ZERO_KEEP] = 20, [OP_COPY] = 60,
	[OP_COPY_X] = 30, [OP_FSYNC] = 10, [OP_FDATASYNC] = 10, [OP_REOPEN] = 5,
	[OP_REMOUNT] = 0, /* scheduled separately */
};

static const int falloc_mode[OP_COUNT] = {
	[OP_FALLOC] = 0,
	[OP_FALLOC_KEEP] = FALLOC_FL_KEEP_SIZE,
	[OP_PUNCH] = FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
	[OP_ZERO] = FALLOC_FL_ZERO_RANGE,
	[OP_ZERO_KEEP] = FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE,
};

struct logent {
	uint64_t num;
	int op;
	int done;		/* 0 = in progress */
	uint64_t off, len, src;	/* src: copy source offset */
	uint64_t size_before, size_after;
	long long ret;
	int err;
	const char *note;
};

/* ---- configuration ---- */
static const char *prog = "rfsx";
static const char *fname;
static char *cfrname;
static uint64_t nops = 10000;
static uint64_t seed;
static uint64_t maxlen = 256 * 1024;
static uint64_t maxoplen = 64 * 1024;
static bool quiet, verbose;
static uint64_t progress_every;
static bool enabled[OP_COUNT];
static bool user_disabled[OP_COUNT];
static bool enospc_ok;
static const char *reserve_mode = "eof";
static const char *remount_cmd;
static uint64_t remount_every;
static uint64_t close_every;
static unsigned timeout_secs;
static uint64_t inject_bug_at;	/* 0 = off */
static bool no_cross_copy;
static bool op_stats;
static bool falloc_partial_ok;

/* ---- state ---- */
static int fd = -1, fd2 = -1;
static uint8_t *good, *good2;	/* models of FILE and FILE.cfr */
static uint64_t size, size2;
static uint8_t *pool;		/* random data source for writes */
static uint64_t pool_size;
static uint8_t *vbuf;		/* read / verification buffer, maxlen bytes */
static uint64_t *lastmod;	/* per page: op number that last changed it */
static uint64_t pgsz;
static uint64_t counts[OP_COUNT];
static double op_time[OP_COUNT];
static bool op_used[OP_COUNT];
static uint64_t n_enospc, n_short;
static struct logent oplog[LOG_RING];
static volatile uint64_t cur_op;	/* op number being executed (1-based) */
static char *repro;
static bool injected;
static uint64_t inj_off, inj_op;
static struct timespec t_start;

/* ---- output ---- */
static void vout(int ofd, const char *fmt, va_list ap)
{
	char buf[4096];
	int n = vsnprintf(buf, sizeof buf, fmt, ap);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof buf)
		n = sizeof buf - 1;
	const char *p = buf;
	while (n > 0) {
		ssize_t w = write(ofd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return;
		p += w;
		n -= w;
	}
}

__attribute__((format(printf, 2, 3)))
static void out(int ofd, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vout(ofd, fmt, ap);
	va_end(ap);
}

#define note(...) do { if (!quiet) out(1, __VA_ARGS__); } while (0)

/* ---- PRNG: splitmix64 ---- */
static uint64_t rng_state;

static uint64_t rnd64_from(uint64_t *st)
{
	uint64_t z = (*st += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static uint64_t rnd64(void)
{
	return rnd64_from(&rng_state);
}

/* uniform-enough in [0, n); n == 0 gives 0 */
static uint64_t rnd_below(uint64_t n)
{
	if (n == 0)
		return 0;
	return (uint64_t)(((unsigned __int128)rnd64() * n) >> 64);
}

static uint64_t min_u64(uint64_t a, uint64_t b) { return a < b ? a : b; }
static uint64_t max_u64(uint64_t a, uint64_t b) { return a > b ? a : b; }

/* ---- failure reporting ---- */
static void format_logent(char *buf, size_t bufsz, const struct logent *e)
{
	int n = snprintf(buf, bufsz, "#%-8" PRIu64 " %-11s off=0x%-6" PRIx64 " len=0x%-6" PRIx64,
			 e->num, op_names[e->op], e->off, e->len);
	if (n < 0 || (size_t)n >= bufsz)
		return;
	if (e->op == OP_COPY || e->op == OP_COPY_X)
		n += snprintf(buf + n, bufsz - n, " src=0x%-6" PRIx64, e->src);
	if ((size_t)n >= bufsz)
		return;
	if (!e->done) {
		snprintf(buf + n, bufsz - n, " size 0x%" PRIx64 " -> (in progress)", e->size_before);
		return;
	}
	n += snprintf(buf + n, bufsz - n, " size 0x%" PRIx64 " -> 0x%" PRIx64 " ret=%lld",
		      e->size_before, e->size_after, e->ret);
	if ((size_t)n >= bufsz)
		return;
	if (e->ret < 0)
		n += snprintf(buf + n, bufsz - n, " (%s)", strerror(e->err));
	if ((size_t)n >= bufsz)
		return;
	if (e->note)
		snprintf(buf + n, bufsz - n, " %s", e->note);
}

static void dump_oplog(int ofd)
{
	uint64_t last = cur_op;
	uint64_t first = last > LOG_RING ? last - LOG_RING + 1 : 1;
	out(ofd, "rfsx: last %" PRIu64 " ops (oldest first):\n", last - first + 1);
	for (uint64_t i = first; i <= last; i++) {
		const struct logent *e = &oplog[i % LOG_RING];
		char buf[512];
		if (e->num != i)
			continue;
		format_logent(buf, sizeof buf, e);
		out(ofd, "  %s\n", buf);
	}
}

static void report_header(int ofd)
{
	out(ofd, "rfsx: seed %" PRIu64 ", failed during op %" PRIu64 " of %" PRIu64
	    ", model size 0x%" PRIx64 " (%" PRIu64 ")\n", seed, cur_op, nops, size, size);
	out(ofd, "rfsx: reproduce with: %s\n", repro);
	if (enospc_ok)
		out(ofd, "rfsx: note: --enospc-ok runs reproduce only if the file system is in the same state\n");
}

__attribute__((noreturn, format(printf, 1, 2)))
static void failf(const char *fmt, ...)
{
	va_list ap;
	out(2, "rfsx: FAILURE: ");
	va_start(ap, fmt);
	vout(2, fmt, ap);
	va_end(ap);
	out(2, "\n");
	report_header(2);
	dump_oplog(2);
	exit(1);
}

static void hexrow(char *buf, size_t bufsz, const uint8_t *p, const uint8_t *other,
		   uint64_t n, bool marks)
{
	size_t k = 0;
	for (uint64_t i = 0; i < 16 && k + 4 < bufsz; i++) {
		if (i >= n)
			k += snprintf(buf + k, bufsz - k, "   ");
		else if (marks)
			k += snprintf(buf + k, bufsz - k, "%s", p[i] != other[i] ? "^^ " : "   ");
		else
			k += snprintf(buf + k, bufsz - k, "%02x ", p[i]);
	}
	buf[k] = 0;
}

/*
 * Report a data mismatch: 'actual' holds file bytes for [off, off+len),
 * 'model' the expected bytes.
 */
__attribute__((noreturn))
static void mismatch(const char *what, const char *fn, const uint8_t *model,
		     const uint8_t *actual, uint64_t off, uint64_t len)
{
	uint64_t first = UINT64_MAX, last = 0, ndiff = 0;
	for (uint64_t i = 0; i < len; i++) {
		if (model[i] != actual[i]) {
			if (first == UINT64_MAX)
				first = i;
			last = i;
			ndiff++;
		}
	}
	out(2, "rfsx: MISMATCH in %s of %s: range [0x%" PRIx64 ", 0x%" PRIx64 ")\n",
	    what, fn, off, off + len);
	out(2, "rfsx: first differing offset 0x%" PRIx64 " (%" PRIu64 "), last 0x%" PRIx64
	    ", %" PRIu64 " bytes differ\n", off + first, off + first, off + last, ndiff);
	if (model == good + off) {
		uint64_t pg = (off + first) / pgsz;
		out(2, "rfsx: page 0x%" PRIx64 " last changed in model by op #%" PRIu64 "\n",
		    pg * pgsz, lastmod[pg]);
	}
	/* hexdump: rows of 16 starting at the row holding the first difference */
	uint64_t start = first & ~(uint64_t)15;
	uint64_t end = min_u64(len, start + DUMP_BYTES);
	for (uint64_t r = start; r < end; r += 16) {
		char e[80], a[80], m[80];
		uint64_t n = min_u64(16, end - r);
		hexrow(e, sizeof e, model + r, actual + r, n, false);
		hexrow(a, sizeof a, actual + r, model + r, n, false);
		hexrow(m, sizeof m, actual + r, model + r, n, true);
		out(2, "  0x%08" PRIx64 " expected %s\n", off + r, e);
		out(2, "  0x%08" PRIx64 " actual   %s\n", off + r, a);
		out(2, "             %s%s\n", "         ", m);
	}
	report_header(2);
	dump_oplog(2);
	exit(1);
}

static void check_data(const char *what, const char *fn, const uint8_t *model,
		       const uint8_t *actual, uint64_t off, uint64_t len)
{
	if (memcmp(model, actual, len) != 0)
		mismatch(what, fn, model, actual, off, len);
}

/* ---- watchdog ---- */
static volatile uint64_t wd_seen;
static volatile unsigned wd_stall;

static void on_alarm(int sig)
{
	(void)sig;
	uint64_t c = cur_op;
	if (c != wd_seen) {
		wd_seen = c;
		wd_stall = 0;
		return;
	}
	if (++wd_stall < timeout_secs)
		return;
	out(2, "rfsx: TIMEOUT: op %" PRIu64 " made no progress for %u s\n", c, timeout_secs);
	report_header(2);
	dump_oplog(2);
	_exit(2);
}

/* ---- SIGBUS in mapped ops ---- */
static sigjmp_buf bus_jmp;
static volatile sig_atomic_t in_map;

static void on_sigbus(int sig)
{
	if (in_map)
		siglongjmp(bus_jmp, 1);
	signal(sig, SIG_DFL);
	raise(sig);
}

/* ---- model helpers ---- */
static void mark(uint64_t off, uint64_t len)
{
	if (len == 0)
		return;
	for (uint64_t p = off / pgsz; p <= (off + len - 1) / pgsz; p++)
		lastmod[p] = cur_op;
}

static void model_zero(uint64_t off, uint64_t end)
{
	end = min_u64(end, size);
	if (off >= end)
		return;
	memset(good + off, 0, end - off);
	mark(off, end - off);
}

static void model_set_size(uint64_t newsize)
{
	if (newsize < size) {
		memset(good + newsize, 0, size - newsize);
		mark(newsize, size - newsize);
	}
	size = newsize;
}

static uint64_t file_size(int f, const char *fn)
{
	struct stat st;
	if (fstat(f, &st) < 0)
		failf("fstat %s: %s", fn, strerror(errno));
	return st.st_size;
}

static void check_size(const char *what)
{
	uint64_t s = file_size(fd, fname);
	if (s != size)
		failf("size mismatch after %s: file size 0x%" PRIx64 " (%" PRIu64 "), expected 0x%"
		      PRIx64 " (%" PRIu64 ")", what, s, s, size, size);
}

static void read_all(int f, const char *fn, uint8_t *buf, uint64_t off, uint64_t len,
		     uint64_t expect, const char *what)
{
	uint64_t got = 0;
	while (got < len) {
		ssize_t r = pread(f, buf + got, len - got, off + got);
		if (r < 0)
			failf("%s: pread %s off 0x%" PRIx64 " len 0x%" PRIx64 ": %s", what, fn,
			      off + got, len - got, strerror(errno));
		if (r == 0)
			break;
		got += r;
	}
	if (got != expect)
		failf("%s: pread %s off 0x%" PRIx64 " len 0x%" PRIx64 " returned 0x%" PRIx64
		      " bytes, expected 0x%" PRIx64, what, fn, off, len, got, expect);
}

/* verify the model range [off, end) of FILE against a fresh pread */
static void verify_range(uint64_t off, uint64_t end, const char *what)
{
	end = min_u64(end, size);
	if (off >= end)
		return;
	read_all(fd, fname, vbuf, off, end - off, end - off, what);
	check_data(what, fname, good + off, vbuf, off, end - off);
}

/* verify [off, end) of file f (model 'model', size msize) against a pread */
static void verify_fd_range(int f, const char *fn, const uint8_t *model, uint64_t msize,
			    uint64_t off, uint64_t end, const char *what)
{
	end = min_u64(end, msize);
	if (off >= end)
		return;
	read_all(f, fn, vbuf, off, end - off, end - off, what);
	check_data(what, fn, model + off, vbuf, off, end - off);
}

static void verify_file(int f, const char *fn, const uint8_t *model, uint64_t msize,
			const char *what)
{
	uint64_t s = file_size(f, fn);
	if (s != msize)
		failf("%s: size of %s is 0x%" PRIx64 " (%" PRIu64 "), expected 0x%" PRIx64
		      " (%" PRIu64 ")", what, fn, s, s, msize, msize);
	if (msize)
		read_all(f, fn, vbuf, 0, msize, msize, what);
	check_data(what, fn, model, vbuf, 0, msize);
	uint8_t c;
	ssize_t r = pread(f, &c, 1, msize);
	if (r != 0)
		failf("%s: pread at EOF 0x%" PRIx64 " of %s returned %zd (%s)", what, msize, fn,
		      r, r < 0 ? strerror(errno) : "data past EOF");
}

static void verify_all(const char *what)
{
	verify_file(fd, fname, good, size, what);
	if (fd2 >= 0)
		verify_file(fd2, cfrname, good2, size2, what);
}

/* ---- open / close ---- */
static bool need_cfr(void)
{
	return enabled[OP_COPY_X];
}

static void open_files(bool trunc)
{
	int fl = O_RDWR | O_CREAT | (trunc ? O_TRUNC : 0);
	fd = open(fname, fl, 0644);
	if (fd < 0)
		failf("open %s: %s", fname, strerror(errno));
	if (need_cfr()) {
		fd2 = open(cfrname, fl, 0644);
		if (fd2 < 0)
			failf("open %s: %s", cfrname, strerror(errno));
	}
}

static void close_files(void)
{
	if (close(fd) < 0)
		failf("close %s: %s", fname, strerror(errno));
	fd = -1;
	if (fd2 >= 0) {
		if (close(fd2) < 0)
			failf("close %s: %s", cfrname, strerror(errno));
		fd2 = -1;
	}
}

/* ---- op parameter choice ---- */
static uint64_t choose_len(uint64_t max)
{
	if (max == 0)
		return 0;
	uint64_t r = rnd_below(16);
	if (r < 2)
		return 1 + rnd_below(min_u64(max, 16));
	if (r < 5 && max >= pgsz)
		return pgsz * (1 + rnd_below(max / pgsz));
	return 1 + rnd_below(max);
}

static uint64_t choose_off(uint64_t limit)
{
	uint64_t off = rnd_below(limit);
	if (rnd_below(4) == 0)
		off &= ~(pgsz - 1);
	return off;
}

static bool is_unsupported(int e)
{
	return e == EOPNOTSUPP || e == ENOTSUP || e == ENOSYS || e == EINVAL || e == EXDEV;
}

/* ENOSPC allowed at all for this call? */
static bool enospc_allowed(int e)
{
	return e == ENOSPC && enospc_ok;
}

/* ---- ops ---- */
static void do_write(struct logent *e)
{
	uint64_t off, r = rnd_below(8);
	if (r == 0)
		off = size;
	else if (r == 1)
		off = size + rnd_below(2 * pgsz);
	else
		off = choose_off(maxlen);
	if (off >= maxlen)
		off = choose_off(maxlen);
	uint64_t len = min_u64(choose_len(maxoplen), maxlen - off);
	uint64_t src = rnd_below(pool_size - len + 1);
	e->off = off;
	e->len = len;

	ssize_t ret = pwrite(fd, pool + src, len, off);
	e->ret = ret;
	e->err = errno;
	if (ret < 0) {
		if (!enospc_allowed(errno))
			failf("pwrite off 0x%" PRIx64 " len 0x%" PRIx64 ": %s", off, len,
			      strerror(errno));
		n_enospc++;
		check_size("write returning ENOSPC");
		verify_range(off, off + len, "write returning ENOSPC");
		return;
	}
	if ((uint64_t)ret != len) {
		if (!enospc_ok)
			failf("short write: pwrite off 0x%" PRIx64 " len 0x%" PRIx64 " returned 0x%zx",
			      off, len, ret);
		if (ret == 0 || (off + ret) % pgsz != 0)
			failf("short write not page-granular: pwrite off 0x%" PRIx64 " len 0x%" PRIx64
			      " returned 0x%zx (end 0x%" PRIx64 ")", off, len, ret, off + ret);
		n_short++;
		e->note = "short";
	}
	memcpy(good + off, pool + src, ret);
	mark(off, ret);
	if (off + ret > size) {
		size = off + ret;
		check_size("extending write");
	} else if (ret != (ssize_t)len) {
		check_size("short write");
	}
	if ((uint64_t)ret != len)
		verify_range(off, off + len, "short write");
}

static void do_read(struct logent *e)
{
	uint64_t off;
	if (rnd_below(16) == 0)
		off = size + rnd_below(maxoplen);	/* at or past EOF */
	else
		off = choose_off(size);
	uint64_t len = choose_len(maxoplen);
	uint64_t expect = off >= size ? 0 : min_u64(len, size - off);
	e->off = off;
	e->len = len;
	read_all(fd, fname, vbuf, off, len, expect, "read");
	e->ret = expect;
	if (expect)
		check_data("read", fname, good + off, vbuf, off, expect);
}

/* map [off, off+len) (page-rounded start); returns base and sets *pgoff, *maplen */
static uint8_t *map_range(uint64_t off, uint64_t maplen_end, int prot, uint64_t *pgoff,
			  uint64_t *maplen, const char *what)
{
	*pgoff = off & ~(pgsz - 1);
	*maplen = maplen_end - *pgoff;
	void *p = mmap(NULL, *maplen, prot, MAP_SHARED, fd, *pgoff);
	if (p == MAP_FAILED)
		failf("%s: mmap off 0x%" PRIx64 " len 0x%" PRIx64 ": %s", what, *pgoff, *maplen,
		      strerror(errno));
	return p;
}

/* memcpy to or from a mapping; false if the access raised SIGBUS */
__attribute__((noinline))
static bool guarded_copy(void *dst, const void *src, size_t n)
{
	if (sigsetjmp(bus_jmp, 1)) {
		in_map = 0;
		return false;
	}
	in_map = 1;
	memcpy(dst, src, n);
	in_map = 0;
	return true;
}

static void mapped_store(struct logent *e, uint64_t off, uint64_t len, uint64_t src,
			 int sync_flags, const char *what)
{
	uint64_t pgoff, maplen;
	uint8_t *p = map_range(off, off + len, PROT_READ | PROT_WRITE, &pgoff, &maplen, what);
	if (!guarded_copy(p + (off - pgoff), pool + src, len)) {
		munmap(p, maplen);
		failf("%s: SIGBUS storing to mapping at off 0x%" PRIx64 " len 0x%" PRIx64
		      " (file size 0x%" PRIx64 "; a store below EOF must never fault)",
		      what, off, len, size);
	}
	if (sync_flags && msync(p, maplen, sync_flags) < 0)
		failf("%s: msync(%s) off 0x%" PRIx64 " len 0x%" PRIx64 ": %s", what,
		      sync_flags == MS_SYNC ? "MS_SYNC" : "MS_ASYNC", pgoff, maplen,
		      strerror(errno));
	if (munmap(p, maplen) < 0)
		failf("%s: munmap: %s", what, strerror(errno));
	memcpy(good + off, pool + src, len);
	mark(off, len);
	e->ret = len;
}

static void do_mapwrite(struct logent *e)
{
	uint64_t off = choose_off(size);
	uint64_t len = min_u64(choose_len(maxoplen), size - off);
	uint64_t src = rnd_below(pool_size - len + 1);
	uint64_t r = rnd_below(4);
	int flags = 0;
	if (enabled[OP_MSYNC])
		flags = r == 2 ? MS_SYNC : r == 3 ? MS_ASYNC : 0;
	e->off = off;
	e->len = len;
	e->note = flags == MS_SYNC ? "msync" : flags == MS_ASYNC ? "msync-async" : NULL;
	mapped_store(e, off, len, src, flags, "mapwrite");
}

static void do_msync(struct logent *e)
{
	uint64_t off = choose_off(size);
	uint64_t len = 1 + rnd_below(min_u64(2 * pgsz, size - off));
	uint64_t src = rnd_below(pool_size - len + 1);
	e->off = off;
	e->len = len;
	mapped_store(e, off, len, src, MS_SYNC, "msync");
	/* the mapped store must be visible to read() */
	verify_range(off, off + len, "read after msync");
}

static void do_mapread(struct logent *e)
{
	uint64_t off = choose_off(size);
	uint64_t len = min_u64(choose_len(maxoplen), size - off);
	uint64_t end = off + len;
	uint64_t mapend = end;
	e->off = off;
	e->len = len;
	if (end == size)	/* also check the zeroed tail of the EOF page */
		mapend = (size + pgsz - 1) & ~(pgsz - 1);
	uint64_t pgoff, maplen;
	uint8_t *p = map_range(off, mapend, PROT_READ, &pgoff, &maplen, "mapread");
	if (!guarded_copy(vbuf, p + (off - pgoff), mapend - off)) {
		munmap(p, maplen);
		failf("mapread: SIGBUS reading mapping at off 0x%" PRIx64 " len 0x%" PRIx64
		      " (file size 0x%" PRIx64 ")", off, mapend - off, size);
	}
	if (munmap(p, maplen) < 0)
		failf("mapread: munmap: %s", strerror(errno));
	e->ret = len;
	check_data("mapread", fname, good + off, vbuf, off, len);
	for (uint64_t i = len; i < mapend - off; i++)
		if (vbuf[i] != 0) {
			static const uint8_t zeros[DUMP_BYTES * 2];
			uint64_t n = min_u64(mapend - off - i, sizeof zeros);
			out(2, "rfsx: mapped page tail beyond EOF 0x%" PRIx64 " is not zero\n", size);
			mismatch("mapread beyond EOF", fname, zeros, vbuf + i, off + i, n);
		}
}

static void do_truncate(struct logent *e)
{
	uint64_t ns, r = rnd_below(4);
	if (r == 1) {
		uint64_t d = rnd_below(2 * pgsz);
		ns = size + d >= pgsz ? size + d - pgsz : 0;
	} else if (r == 2) {
		ns = rnd_below(maxlen + 1) & ~(pgsz - 1);
	} else {
		ns = rnd_below(maxlen + 1);
	}
	ns = min_u64(ns, maxlen);
	e->off = ns;
	e->len = 0;
	int ret = ftruncate(fd, ns);
	e->ret = ret;
	e->err = errno;
	if (ret < 0) {
		if (!(enospc_allowed(errno) && ns > size))
			failf("ftruncate 0x%" PRIx64 " (from 0x%" PRIx64 "): %s", ns, size,
			      strerror(errno));
		n_enospc++;
		check_size("ftruncate returning ENOSPC");
		return;
	}
	model_set_size(ns);
	check_size("ftruncate");
}

static void disable_op(int op, int err, const char *how)
{
	note("rfsx: %s: %s; disabling %s\n", how, strerror(err), op_names[op]);
	enabled[op] = false;
}

/*
 * --falloc-partial-ok (baseline runs on kernel file systems such as ext4,
 * which may allocate part of the range before failing with ENOSPC): accept
 * a size between the old size and off+len, and in a zeroed range bytes that
 * are either unchanged or zero; adopt what the file shows into the model.
 */
static void falloc_partial(int mode, uint64_t off, uint64_t len)
{
	uint64_t end = off + len, s = file_size(fd, fname);
	if (s != size) {
		if ((mode & FALLOC_FL_KEEP_SIZE) || s < size || s > end)
			failf("fallocate returning ENOSPC changed size 0x%" PRIx64 " -> 0x%" PRIx64
			      " outside [old size, off+len 0x%" PRIx64 "]", size, s, end);
		size = s;	/* bytes past the old size are zero in the model */
		mark(off, len);
	}
	if (!(mode & FALLOC_FL_ZERO_RANGE))
		return;
	uint64_t zend = min_u64(end, size);
	if (off >= zend)
		return;
	read_all(fd, fname, vbuf, off, zend - off, zend - off, "fallocate returning ENOSPC");
	for (uint64_t i = 0; i < zend - off; i++)
		if (vbuf[i] != 0 && vbuf[i] != good[off + i]) {
			out(2, "rfsx: zero range returning ENOSPC: byte at 0x%" PRIx64 " is 0x%02x,"
			    " neither old (0x%02x) nor zero\n", off + i, vbuf[i], good[off + i]);
			mismatch("zero range returning ENOSPC", fname, good + off + i, vbuf + i,
				 off + i, zend - off - i);
		}
	memcpy(good + off, vbuf, zend - off);
	mark(off, zend - off);
}

static void do_falloc(struct logent *e, int op)
{
	int mode = falloc_mode[op];
	uint64_t off = choose_off(maxlen);
	uint64_t len = min_u64(choose_len(maxoplen), maxlen - off);
	e->off = off;
	e->len = len;
	int ret = fallocate(fd, mode, off, len);
	e->ret = ret;
	e->err = errno;
	if (ret < 0) {
		if (!op_used[op] && is_unsupported(errno)) {
			e->note = "unsupported";
			disable_op(op, errno, "fallocate");
			return;
		}
		if (!enospc_allowed(errno))
			failf("fallocate(%s) off 0x%" PRIx64 " len 0x%" PRIx64 ": %s",
			      op_names[op], off, len, strerror(errno));
		n_enospc++;
		if (falloc_partial_ok)
			falloc_partial(mode, off, len);
		check_size("fallocate returning ENOSPC");
		verify_range(off, off + len, "fallocate returning ENOSPC");
		return;
	}
	op_used[op] = true;
	uint64_t end = off + len;
	if (mode & (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE))
		model_zero(off, end);
	if (!(mode & FALLOC_FL_KEEP_SIZE) && end > size)
		size = end;
	check_size(op_names[op]);
}

/* pick dst for a same-file copy of [src, src+len) so that ranges don't overlap */
static bool pick_nonoverlap(uint64_t src, uint64_t len, uint64_t *dst)
{
	uint64_t a = src >= len ? src - len + 1 : 0;	/* dst in [0, src-len] */
	uint64_t b = maxlen - len + 1 > src + len ? maxlen - len + 1 - (src + len) : 0;
	if (a + b == 0)
		return false;
	uint64_t k = rnd_below(a + b);
	*dst = k < a ? k : src + len + (k - a);
	return true;
}

/* returns false if the op turned out to be unsupported */
static bool copy_result(struct logent *e, int op, ssize_t ret, int err, uint64_t len,
			int dfd, const char *dfn, uint8_t *dmodel, uint64_t *dsize,
			const uint8_t *smodel, uint64_t src, uint64_t dst)
{
	e->ret = ret;
	e->err = err;
	if (ret < 0) {
		if (!op_used[op] && is_unsupported(err)) {
			e->note = "unsupported";
			disable_op(op, err, "copy_file_range");
			return false;
		}
		if (!enospc_allowed(err))
			failf("copy_file_range src 0x%" PRIx64 " dst 0x%" PRIx64 " len 0x%" PRIx64
			      " (to %s): %s", src, dst, len, dfn, strerror(err));
		n_enospc++;
		uint64_t s = file_size(dfd, dfn);
		if (s != *dsize)
			failf("copy_file_range returning ENOSPC changed size of %s: 0x%" PRIx64
			      " expected 0x%" PRIx64, dfn, s, *dsize);
		verify_fd_range(dfd, dfn, dmodel, *dsize, dst, dst + len,
				"copy_file_range returning ENOSPC");
		return true;
	}
	op_used[op] = true;
	if (ret == 0)
		failf("copy_file_range src 0x%" PRIx64 " dst 0x%" PRIx64 " len 0x%" PRIx64
		      " returned 0 (source is below EOF)", src, dst, len);
	if ((uint64_t)ret > len)
		failf("copy_file_range returned 0x%zx > len 0x%" PRIx64, ret, len);
	if ((uint64_t)ret < len) {
		n_short++;
		e->note = "short";
	}
	memmove(dmodel + dst, smodel + src, ret);
	if (dmodel == good)
		mark(dst, ret);
	if (dst + ret > *dsize)
		*dsize = dst + ret;
	uint64_t s = file_size(dfd, dfn);
	if (s != *dsize)
		failf("size of %s after copy_file_range is 0x%" PRIx64 ", expected 0x%" PRIx64,
		      dfn, s, *dsize);
	if ((uint64_t)ret < len)
		verify_fd_range(dfd, dfn, dmodel, *dsize, dst, dst + len, "short copy_file_range");
	return true;
}

static void do_copy(struct logent *e)
{
	uint64_t src = choose_off(size);
	uint64_t len = min_u64(choose_len(maxoplen), size - src), dst = 0;
	while (!pick_nonoverlap(src, len, &dst))
		len = len / 2 ? len / 2 : 1;
	e->off = dst;
	e->len = len;
	e->src = src;
	loff_t in = src, o = dst;
	ssize_t ret = copy_file_range(fd, &in, fd, &o, len, 0);
	copy_result(e, OP_COPY, ret, errno, len, fd, fname, good, &size, good, src, dst);
}

static void do_copy_x(struct logent *e)
{
	bool to_cfr = rnd_below(2) == 0;
	if (size2 == 0)
		to_cfr = true;
	if (size == 0)
		to_cfr = false;
	if (to_cfr) {
		uint64_t src = choose_off(size);
		uint64_t len = min_u64(choose_len(maxoplen), size - src);
		uint64_t dst = choose_off(maxlen - len + 1);
		e->off = dst;
		e->len = len;
		e->src = src;
		e->note = "-> cfr";
		loff_t in = src, o = dst;
		ssize_t ret = copy_file_range(fd, &in, fd2, &o, len, 0);
		copy_result(e, OP_COPY_X, ret, errno, len, fd2, cfrname, good2, &size2, good,
			    src, dst);
	} else {
		uint64_t src = choose_off(size2);
		uint64_t len = min_u64(choose_len(maxoplen), size2 - src);
		uint64_t dst = choose_off(maxlen - len + 1);
		e->off = dst;
		e->len = len;
		e->src = src;
		e->note = "<- cfr";
		loff_t in = src, o = dst;
		ssize_t ret = copy_file_range(fd2, &in, fd, &o, len, 0);
		copy_result(e, OP_COPY_X, ret, errno, len, fd, fname, good, &size, good2,
			    src, dst);
	}
}

static void do_sync(struct logent *e, int op)
{
	int ret = op == OP_FSYNC ? fsync(fd) : fdatasync(fd);
	e->ret = ret;
	e->err = errno;
	if (ret < 0)
		failf("%s: %s", op_names[op], strerror(errno));
}

static void do_reopen(struct logent *e)
{
	(void)e;
	close_files();
	open_files(false);
	verify_all("verify after close/reopen");
}

static void do_remount(struct logent *e)
{
	close_files();
	int st = system(remount_cmd);
	e->ret = st;
	if (st == -1)
		failf("remount: system(\"%s\"): %s", remount_cmd, strerror(errno));
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		failf("remount command \"%s\" failed (%s %d)", remount_cmd,
		      WIFEXITED(st) ? "exit status" : "signal",
		      WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
	open_files(false);
	verify_all("verify after remount");
}

/* ---- setup ---- */
static void probe(void)
{
	static const int fops[] = { OP_FALLOC, OP_FALLOC_KEEP, OP_PUNCH, OP_ZERO, OP_ZERO_KEEP };
	for (size_t i = 0; i < sizeof fops / sizeof fops[0]; i++) {
		int op = fops[i];
		if (!enabled[op])
			continue;
		if (fallocate(fd, falloc_mode[op], 0, 1) < 0 && errno != ENOSPC) {
			if (is_unsupported(errno))
				disable_op(op, errno, "fallocate probe");
			else
				failf("fallocate probe (%s): %s", op_names[op], strerror(errno));
		}
	}
	if (enabled[OP_COPY] || enabled[OP_COPY_X]) {
		int dfd = fd2 >= 0 ? fd2 : fd;
		loff_t in = 0, o = dfd == fd ? 1 : 0;
		ssize_t r = -1;
		if (pwrite(fd, "x", 1, 0) == 1)
			r = copy_file_range(fd, &in, dfd, &o, 1, 0);
		else
			r = copy_file_range(fd, &in, dfd, &o, 0, 0);
		if (r < 0 && errno != ENOSPC) {
			int err = errno;
			if (!is_unsupported(err))
				failf("copy_file_range probe: %s", strerror(err));
			if (enabled[OP_COPY])
				disable_op(OP_COPY, err, "copy_file_range probe");
			if (enabled[OP_COPY_X])
				disable_op(OP_COPY_X, err, "copy_file_range probe");
		}
	}
	if (ftruncate(fd, 0) < 0)
		failf("ftruncate %s to 0 after probe: %s", fname, strerror(errno));
	if (fd2 >= 0 && ftruncate(fd2, 0) < 0)
		failf("ftruncate %s to 0 after probe: %s", cfrname, strerror(errno));
	if (fd2 >= 0 && !enabled[OP_COPY_X]) {
		close(fd2);
		fd2 = -1;
	}
}

static unsigned op_table[OP_COUNT];
static unsigned op_table_total;

static void build_op_table(void)
{
	unsigned acc = 0;
	for (int i = 0; i < OP_COUNT; i++) {
		if (enabled[i])
			acc += op_weight[i];
		op_table[i] = acc;
	}
	op_table_total = acc;
}

static int pick_op(void)
{
	uint64_t r = rnd_below(op_table_total);
	for (int i = 0; i < OP_COUNT; i++)
		if (r < op_table[i])
			return i;
	return OP_WRITE;
}

static uint64_t parse_num(const char *s, const char *what, bool suffix)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 0);
	if (errno || end == s || *s == '-')
		goto bad;
	if (suffix && *end) {
		uint64_t mul = 1;
		switch (*end) {
		case 'k': case 'K': mul = 1ULL << 10; break;
		case 'm': case 'M': mul = 1ULL << 20; break;
		case 'g': case 'G': mul = 1ULL << 30; break;
		default: goto bad;
		}
		end++;
		if (v > UINT64_MAX / mul)
			goto bad;
		v *= mul;
	}
	if (*end)
		goto bad;
	return v;
bad:
	out(2, "%s: invalid %s: '%s'\n", prog, what, s);
	exit(3);
}

static void usage(int status)
{
	out(status ? 2 : 1,
	    "usage: %s [options] FILE\n"
	    "  -N n              number of ops (default 10000)\n"
	    "  -S seed           PRNG seed (default: time based; always printed)\n"
	    "  -l maxlen         maximum file size (default 256k; k/m/g suffixes)\n"
	    "  -o maxoplen       maximum length of one op (default 64k)\n"
	    "  -q                quiet: no notes (start, summary and failures still print)\n"
	    "  -v                print every op\n"
	    "  -p n              progress line every n ops\n"
	    "  -R / -W           no mapped reads / no mapped writes\n"
	    "  -F                no fallocate (any mode)\n"
	    "  -H / -z           no punch hole / no zero range\n"
	    "  -E                no copy_file_range;  -X: no cross-file copies via FILE.cfr\n"
	    "  -T                no truncate\n"
	    "  -M                no msync (neither the op nor msync after mapped writes)\n"
	    "  -D                no remount\n"
	    "  --no-fsync        no fsync/fdatasync;  --no-reopen: no random close/reopen\n"
	    "  --remount-cmd CMD run CMD (system()) with all fds closed, then reopen + verify\n"
	    "  --remount-every n remount every n ops (default with --remount-cmd: random, ~1/1000)\n"
	    "  --close-every n   close, reopen and verify every n ops\n"
	    "  --enospc-ok       the file system may be full: check ENOSPC semantics instead\n"
	    "  --reserve-mode eof|write  reservefs mode in use (logged only)\n"
	    "  --falloc-partial-ok  with --enospc-ok: accept fallocate that fails with ENOSPC\n"
	    "                    after allocating part of the range (ext4 baseline runs)\n"
	    "  --timeout secs    exit 2 with the op log if one op takes longer (default 0 = off)\n"
	    "  --stats           print the mean time per op kind at the end\n"
	    "exit: 0 ok, 1 failure/mismatch, 2 timeout, 3 usage/setup error\n", prog);
	exit(status);
}

static void append(char **s, size_t *len, size_t *cap, const char *t)
{
	size_t n = strlen(t);
	if (*len + n + 2 > *cap) {
		*cap = (*len + n + 2) * 2;
		*s = realloc(*s, *cap);
		if (!*s)
			abort();
	}
	if (*len)
		(*s)[(*len)++] = ' ';
	memcpy(*s + *len, t, n + 1);
	*len += n;
}

static void append_quoted(char **s, size_t *len, size_t *cap, const char *t)
{
	bool safe = *t != 0;
	for (const char *p = t; *p; p++)
		if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_./:=,+-@%", *p))
			safe = false;
	if (safe) {
		append(s, len, cap, t);
		return;
	}
	size_t n = strlen(t);
	char *q = malloc(n * 4 + 3), *w = q;
	if (!q)
		abort();
	*w++ = '\'';
	for (const char *p = t; *p; p++) {
		if (*p == '\'') {
			memcpy(w, "'\\''", 4);
			w += 4;
		} else {
			*w++ = *p;
		}
	}
	*w++ = '\'';
	*w = 0;
	append(s, len, cap, q);
	free(q);
}

static void build_repro(void)
{
	char *s = NULL, num[64];
	size_t len = 0, cap = 0;
	append_quoted(&s, &len, &cap, prog);
#define NUMOPT(flag, v) do { append(&s, &len, &cap, flag); \
		snprintf(num, sizeof num, "%" PRIu64, (uint64_t)(v)); append(&s, &len, &cap, num); } while (0)
	NUMOPT("-N", nops);
	NUMOPT("-S", seed);
	NUMOPT("-l", maxlen);
	NUMOPT("-o", maxoplen);
	if (user_disabled[OP_MAPREAD]) append(&s, &len, &cap, "-R");
	if (user_disabled[OP_MAPWRITE]) append(&s, &len, &cap, "-W");
	if (user_disabled[OP_FALLOC]) append(&s, &len, &cap, "-F");
	if (user_disabled[OP_PUNCH] && !user_disabled[OP_FALLOC]) append(&s, &len, &cap, "-H");
	if (user_disabled[OP_ZERO] && !user_disabled[OP_FALLOC]) append(&s, &len, &cap, "-z");
	if (user_disabled[OP_COPY]) append(&s, &len, &cap, "-E");
	else if (no_cross_copy) append(&s, &len, &cap, "-X");
	if (user_disabled[OP_TRUNCATE]) append(&s, &len, &cap, "-T");
	if (user_disabled[OP_MSYNC]) append(&s, &len, &cap, "-M");
	if (user_disabled[OP_REMOUNT]) append(&s, &len, &cap, "-D");
	if (user_disabled[OP_FSYNC]) append(&s, &len, &cap, "--no-fsync");
	if (user_disabled[OP_REOPEN]) append(&s, &len, &cap, "--no-reopen");
	if (enospc_ok) append(&s, &len, &cap, "--enospc-ok");
	if (falloc_partial_ok) append(&s, &len, &cap, "--falloc-partial-ok");
	if (strcmp(reserve_mode, "eof") != 0) {
		append(&s, &len, &cap, "--reserve-mode");
		append_quoted(&s, &len, &cap, reserve_mode);
	}
	if (remount_cmd) {
		append(&s, &len, &cap, "--remount-cmd");
		append_quoted(&s, &len, &cap, remount_cmd);
	}
	if (remount_every) NUMOPT("--remount-every", remount_every);
	if (close_every) NUMOPT("--close-every", close_every);
	if (timeout_secs) NUMOPT("--timeout", timeout_secs);
	if (inject_bug_at) NUMOPT("--inject-bug", inject_bug_at);
#undef NUMOPT
	append_quoted(&s, &len, &cap, fname);
	repro = s;
}

static void *xcalloc(uint64_t n)
{
	void *p = calloc(1, n ? n : 1);
	if (!p) {
		out(2, "%s: out of memory (%" PRIu64 " bytes)\n", prog, n);
		exit(3);
	}
	return p;
}

enum {
	OPT_REMOUNT_CMD = 256, OPT_REMOUNT_EVERY, OPT_CLOSE_EVERY, OPT_TIMEOUT, OPT_ENOSPC_OK,
	OPT_RESERVE_MODE, OPT_INJECT_BUG, OPT_NO_FSYNC, OPT_NO_REOPEN, OPT_HELP, OPT_STATS,
	OPT_FALLOC_PARTIAL_OK,
};

static const struct option long_opts[] = {
	{ "remount-cmd", required_argument, NULL, OPT_REMOUNT_CMD },
	{ "remount-every", required_argument, NULL, OPT_REMOUNT_EVERY },
	{ "close-every", required_argument, NULL, OPT_CLOSE_EVERY },
	{ "timeout", required_argument, NULL, OPT_TIMEOUT },
	{ "enospc-ok", no_argument, NULL, OPT_ENOSPC_OK },
	{ "reserve-mode", required_argument, NULL, OPT_RESERVE_MODE },
	{ "inject-bug", required_argument, NULL, OPT_INJECT_BUG },
	{ "no-fsync", no_argument, NULL, OPT_NO_FSYNC },
	{ "no-reopen", no_argument, NULL, OPT_NO_REOPEN },
	{ "stats", no_argument, NULL, OPT_STATS },
	{ "falloc-partial-ok", no_argument, NULL, OPT_FALLOC_PARTIAL_OK },
	{ "seed", required_argument, NULL, 'S' },
	{ "help", no_argument, NULL, OPT_HELP },
	{ NULL, 0, NULL, 0 },
};

static void parse_args(int argc, char **argv)
{
	bool have_seed = false;
	int c;
	prog = argv[0];
	while ((c = getopt_long(argc, argv, "N:S:l:o:qvp:RWFHzEXTMDh", long_opts, NULL)) != -1) {
		switch (c) {
		case 'N': nops = parse_num(optarg, "-N", false); break;
		case 'S': seed = parse_num(optarg, "seed", false); have_seed = true; break;
		case 'l': maxlen = parse_num(optarg, "-l", true); break;
		case 'o': maxoplen = parse_num(optarg, "-o", true); break;
		case 'q': quiet = true; break;
		case 'v': verbose = true; break;
		case 'p': progress_every = parse_num(optarg, "-p", false); break;
		case 'R': user_disabled[OP_MAPREAD] = true; break;
		case 'W': user_disabled[OP_MAPWRITE] = true; break;
		case 'F':
			user_disabled[OP_FALLOC] = user_disabled[OP_FALLOC_KEEP] = true;
			user_disabled[OP_PUNCH] = user_disabled[OP_ZERO] = true;
			user_disabled[OP_ZERO_KEEP] = true;
			break;
		case 'H': user_disabled[OP_PUNCH] = true; break;
		case 'z': user_disabled[OP_ZERO] = user_disabled[OP_ZERO_KEEP] = true; break;
		case 'E': user_disabled[OP_COPY] = user_disabled[OP_COPY_X] = true; break;
		case 'X': no_cross_copy = true; user_disabled[OP_COPY_X] = true; break;
		case 'T': user_disabled[OP_TRUNCATE] = true; break;
		case 'M': user_disabled[OP_MSYNC] = true; break;
		case 'D': user_disabled[OP_REMOUNT] = true; break;
		case OPT_NO_FSYNC: user_disabled[OP_FSYNC] = user_disabled[OP_FDATASYNC] = true; break;
		case OPT_NO_REOPEN: user_disabled[OP_REOPEN] = true; break;
		case OPT_STATS: op_stats = true; break;
		case OPT_FALLOC_PARTIAL_OK: falloc_partial_ok = true; break;
		case OPT_REMOUNT_CMD: remount_cmd = optarg; break;
		case OPT_REMOUNT_EVERY: remount_every = parse_num(optarg, "--remount-every", false); break;
		case OPT_CLOSE_EVERY: close_every = parse_num(optarg, "--close-every", false); break;
		case OPT_TIMEOUT: timeout_secs = parse_num(optarg, "--timeout", false); break;
		case OPT_ENOSPC_OK: enospc_ok = true; break;
		case OPT_RESERVE_MODE:
			if (strcmp(optarg, "eof") && strcmp(optarg, "write")) {
				out(2, "%s: --reserve-mode must be eof or write\n", prog);
				exit(3);
			}
			reserve_mode = optarg;
			break;
		case OPT_INJECT_BUG: inject_bug_at = parse_num(optarg, "--inject-bug", false); break;
		case 'h': case OPT_HELP: usage(0); break;
		default: usage(3);
		}
	}
	if (optind != argc - 1)
		usage(3);
	fname = argv[optind];
	if (!have_seed) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		uint64_t st = (uint64_t)ts.tv_sec * 1000000007ULL ^ (uint64_t)ts.tv_nsec ^
			      ((uint64_t)getpid() << 32);
		seed = rnd64_from(&st) % 1000000000000ULL;
	}
	if (maxlen == 0 || maxoplen == 0) {
		out(2, "%s: -l and -o must be > 0\n", prog);
		exit(3);
	}
	if (maxoplen > maxlen)
		maxoplen = maxlen;
	if (remount_every && !remount_cmd) {
		out(2, "%s: --remount-every needs --remount-cmd\n", prog);
		exit(3);
	}
	for (int i = 0; i < OP_COUNT; i++)
		enabled[i] = !user_disabled[i];
	if (!remount_cmd)
		enabled[OP_REMOUNT] = false;
	if (maxlen < 2)		/* no room for a non-overlapping same-file copy */
		enabled[OP_COPY] = false;
}

static double elapsed(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (t.tv_sec - t_start.tv_sec) + (t.tv_nsec - t_start.tv_nsec) / 1e9;
}

static bool needs_data(int op)
{
	return op == OP_READ || op == OP_MAPWRITE || op == OP_MAPREAD || op == OP_MSYNC ||
	       op == OP_COPY;
}

int main(int argc, char **argv)
{
	parse_args(argc, argv);
	build_repro();

	long ps = sysconf(_SC_PAGESIZE);
	pgsz = ps > 0 ? (uint64_t)ps : 4096;
	size_t fl = strlen(fname);
	cfrname = xcalloc(fl + 5);
	memcpy(cfrname, fname, fl);
	memcpy(cfrname + fl, ".cfr", 5);

	good = xcalloc(maxlen + pgsz);
	good2 = xcalloc(maxlen + pgsz);
	vbuf = xcalloc(max_u64(maxlen, maxoplen) + 2 * pgsz + DUMP_BYTES);
	lastmod = xcalloc((maxlen / pgsz + 2) * sizeof *lastmod);
	pool_size = 2 * maxoplen + pgsz;
	pool = xcalloc(pool_size);
	uint64_t pst = seed ^ 0x5eedda7a5eedda7aULL;
	for (uint64_t i = 0; i < pool_size; i += 8) {
		uint64_t v = rnd64_from(&pst);
		memcpy(pool + i, &v, min_u64(8, pool_size - i));
	}
	rng_state = seed;

	out(1, "rfsx: seed %" PRIu64 ", %" PRIu64 " ops on %s, maxlen %" PRIu64 ", maxoplen %" PRIu64
	    "%s, reserve-mode %s\n", seed, nops, fname, maxlen, maxoplen,
	    enospc_ok ? ", enospc-ok" : "", reserve_mode);

	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_sigbus;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGBUS, &sa, NULL);
	if (timeout_secs) {
		sa.sa_handler = on_alarm;
		sa.sa_flags = SA_RESTART;
		sigaction(SIGALRM, &sa, NULL);
		struct itimerval it = { { 1, 0 }, { 1, 0 } };
		setitimer(ITIMER_REAL, &it, NULL);
	}

	open_files(true);
	probe();
	build_op_table();
	clock_gettime(CLOCK_MONOTONIC, &t_start);

	for (uint64_t n = 1; n <= nops; n++) {
		int op = -1;
		if (enabled[OP_REMOUNT]) {
			if (remount_every ? n % remount_every == 0 : rnd_below(1000) == 0)
				op = OP_REMOUNT;
		}
		if (op < 0 && close_every && n % close_every == 0)
			op = OP_REOPEN;
		if (op < 0) {
			op = op_table_total ? pick_op() : OP_WRITE;
			if (needs_data(op) && size == 0)
				op = OP_WRITE;
			if (op == OP_COPY_X && size == 0 && size2 == 0)
				op = OP_WRITE;
		}
		struct logent *e = &oplog[n % LOG_RING];
		memset(e, 0, sizeof *e);
		e->num = n;
		e->op = op;
		e->size_before = size;
		cur_op = n;
		double t0 = op_stats ? elapsed() : 0;

		switch (op) {
		case OP_WRITE: do_write(e); break;
		case OP_READ: do_read(e); break;
		case OP_MAPWRITE: do_mapwrite(e); break;
		case OP_MAPREAD: do_mapread(e); break;
		case OP_MSYNC: do_msync(e); break;
		case OP_TRUNCATE: do_truncate(e); break;
		case OP_FALLOC: case OP_FALLOC_KEEP: case OP_PUNCH: case OP_ZERO: case OP_ZERO_KEEP:
			do_falloc(e, op);
			if (!enabled[op])
				build_op_table();
			break;
		case OP_COPY: do_copy(e); if (!enabled[op]) build_op_table(); break;
		case OP_COPY_X: do_copy_x(e); if (!enabled[op]) build_op_table(); break;
		case OP_FSYNC: case OP_FDATASYNC: do_sync(e, op); break;
		case OP_REOPEN: do_reopen(e); break;
		case OP_REMOUNT: do_remount(e); break;
		default: abort();
		}
		e->size_after = size;
		e->done = 1;
		counts[op]++;
		if (op_stats)
			op_time[op] += elapsed() - t0;

		if (verbose) {
			char buf[512];
			format_logent(buf, sizeof buf, e);
			out(1, "%s\n", buf);
		}
		/*
		 * Self-test: corrupt one model byte; if a later op rewrites or
		 * truncates it away before a check reads it, corrupt another.
		 */
		if (inject_bug_at && n >= inject_bug_at && size > 0 &&
		    (!injected || inj_off >= size || lastmod[inj_off / pgsz] > inj_op)) {
			inj_off = (n * 2654435761ULL) % size;
			inj_op = n;
			good[inj_off] ^= 0x5a;
			injected = true;
			out(1, "rfsx: --inject-bug: corrupted model byte at 0x%" PRIx64 " after op %"
			    PRIu64 "\n", inj_off, n);
		}
		if (progress_every && n % progress_every == 0)
			out(1, "rfsx: %" PRIu64 " ops, size 0x%" PRIx64 ", %.0f ops/s\n", n, size,
			    n / elapsed());
	}
	cur_op = nops;
	verify_all("final verify");
	double t = elapsed();

	char line[2048];
	size_t k = snprintf(line, sizeof line, "rfsx: %" PRIu64 " ops OK (seed %" PRIu64 "):",
			    nops, seed);
	for (int i = 0; i < OP_COUNT && k < sizeof line; i++)
		if (counts[i] || enabled[i])
			k += snprintf(line + k, sizeof line - k, " %s=%" PRIu64, op_names[i], counts[i]);
	if (enospc_ok && k < sizeof line)
		k += snprintf(line + k, sizeof line - k, " enospc=%" PRIu64 " short=%" PRIu64,
			      n_enospc, n_short);
	if (k < sizeof line)
		snprintf(line + k, sizeof line - k, " [%.2fs, %.0f ops/s]", t, t > 0 ? nops / t : 0.0);
	out(1, "%s\n", line);
	if (op_stats)
		for (int i = 0; i < OP_COUNT; i++)
			if (counts[i])
				out(1, "rfsx: %-11s %9" PRIu64 " ops %9.1f us/op %6.1f%% of time\n",
				    op_names[i], counts[i], op_time[i] * 1e6 / counts[i],
				    t > 0 ? op_time[i] * 100 / t : 0.0);
	close_files();
	return 0;
}
