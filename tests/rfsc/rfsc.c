/* rfsc — concurrent data-path stress tester for reservefs, checked against a
 * model.
 *
 * Every byte of the files it uses is owned by exactly one worker process,
 * which alone changes it, so the expected content is known exactly while
 * many processes work on the same files at once:
 *
 *   - shared files f0..fN-1: W "range" workers each own a fixed window of P
 *     pages (below EOF: they never change the size); a "tail" worker owns
 *     everything from W*P pages on, and the size;
 *   - filler files x0..xL-1: one worker each owns the whole file (appends,
 *     truncates, unlink and create again) and keeps the capacity near full;
 *   - src: a read-only file of known content, the source of copy_file_range.
 *
 * Workers: write, pwrite, O_DIRECT writes, stores through MAP_SHARED
 * mappings (msync or not), copy_file_range, fallocate (0, KEEP_SIZE,
 * PUNCH_HOLE, ZERO_RANGE), ftruncate (size owners), fsync/fdatasync,
 * SEEK_DATA/SEEK_HOLE checks, reads through a second descriptor, O_DIRECT and
 * the mapping.  Readers check other workers' windows at any moment through a
 * seqlock on each window's model (what a completed call put there must be
 * what a later read by another process sees).  A chaos process drops caches.
 *
 * The model lives in a state file (outside the mount, MAP_SHARED), so that
 * `rfsc verify` can compare after a remount, and `rfsc verify --crash` after
 * SIGKILL of the daemon: pages no call was in flight on and that no mapping
 * left dirty must match (a completed call reached the backing file, which
 * survives the daemon), and pages not changed since their owner's last
 * completed fsync must match too.
 *
 * Rules checked as it goes (eof mode): ENOSPC only from write, pwrite,
 * ftruncate, fallocate and copy_file_range, and never for a range that lies
 * below EOF; msync, fsync, fdatasync, munmap and close never fail; a short
 * write ends on a page boundary; ENOSPC changes nothing (size, data).
 * In write mode, windows are holes until written and mapped stores go only
 * to pages known reserved.
 *
 *   rfsc init   -s STATE -d DIR [-m eof|write] [-F files] [-W workers] [-P pages]
 *               [-T tailpages] [-L fillers] [-X fillerbytes] [-S seed]
 *   rfsc run    -s STATE [-t seconds] [-R readers] [-S seed] [--no-drop]
 *               [--resize SIZE1,SIZE2] [--no-fixup] [--no-seek]
 *   rfsc verify -s STATE [--crash]
 *
 * DIR is a directory to create on the mount; STATE a file outside it.
 * --resize alternates the capacity (user.reservefs.size on DIR/..) between
 * the two sizes while it runs.  --no-fixup leaves the kernel's page cache as
 * a refused or short buffered write leaves it (see fixup_failed_write: in
 * write mode the model is then wrong about mapped pages, as the program
 * using the mount would be).  --no-seek leaves out lseek(SEEK_DATA/SEEK_HOLE):
 * a daemon killed while one of them has the kernel write mapped pages back
 * cannot exit (see test_sigkill_during_seeks_over_dirty_mappings).
 *
 * Exit status: 0 clean, 1 a check failed, 2 usage or setup error; the
 * statistics (calls, ENOSPC, short counts per kind) go to stderr. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
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
#include <sys/statvfs.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>
#include <linux/falloc.h>

#define PG ((uint64_t)4096)
#define MAGIC 0x7266736331ULL	/* "rfsc1" */
#define MAXREG 256
#define SRC_BYTES (1ULL << 20)

#ifndef MIN
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#endif

static inline uint64_t pg_down(uint64_t x) { return x / PG; }
static inline uint64_t pg_up(uint64_t x) { return (x + PG - 1) / PG; }

enum kind { K_RANGE, K_TAIL, K_FILLER };
enum {
	OP_PWRITE, OP_WRITE, OP_DIO, OP_MMAP, OP_CFR, OP_FALLOC, OP_KEEP, OP_PUNCH,
	OP_ZERO, OP_ZERO_KEEP, OP_TRUNC, OP_FSYNC, OP_FDATASYNC, OP_READ, OP_DIOREAD,
	OP_MAPREAD, OP_SEEK, OP_REOPEN, OP_RECREATE, OP_APPEND, OP_RDCHECK, OP_DROP, NOPS
};
static const char *op_names[NOPS] = {
	"pwrite", "write", "dio_write", "mmap_store", "copy_file_range", "fallocate",
	"falloc_keep", "punch_hole", "zero_range", "zero_keep", "ftruncate", "fsync",
	"fdatasync", "read", "dio_read", "mmap_read", "seek", "reopen", "recreate",
	"append", "reader_check", "drop_caches",
};

/* Page flags in the model. */
#define PF_INFLIGHT	1	/* a call that may change it is (or was, at a crash) under way */
#define PF_MAPDIRTY	2	/* stored through a mapping, not yet msync'd/fsync'd */
#define PF_UNSYNCED	4	/* changed since the owner's last completed fsync */
#define PF_RESERVED	8	/* write mode: known to hold a reservation */

struct region {
	uint32_t kind, file;
	uint64_t lo, maxlen;		/* bytes [lo, lo + maxlen) of the file */
	uint64_t size;			/* size owners: the file's size */
	uint64_t seq;			/* seqlock: odd while a call is under way */
	uint64_t gen;			/* fillers: incarnation */
	uint32_t size_flags;		/* PF_INFLIGHT / PF_UNSYNCED for the size */
	uint32_t pad;
	uint64_t flags_off, data_off;	/* into the state file */
};

/* recent calls of a region, printed when a check fails */
#define RING 128
struct oprec {
	uint64_t seq;
	uint32_t op, extra;		/* extra: mode, msync kind, ... */
	uint64_t off, len;
	int64_t res;			/* bytes, 0, or -errno */
	uint64_t size;			/* size owners: size after */
};

struct header {
	uint64_t magic;
	char dir[512];
	uint32_t mode_write;		/* reserve=write */
	uint32_t nregions, nfiles, nfillers;
	uint64_t total_bytes;
	uint64_t seed;
	uint64_t stop;			/* atomic: workers stop */
	uint64_t dead;			/* atomic: the daemon went away */
	uint64_t errors;		/* atomic */
	uint64_t ops[NOPS], ok[NOPS], enospc[NOPS], shortc[NOPS];
	uint64_t reader_checks, reader_skipped, reader_sigbus;
	struct region reg[MAXREG];
	uint64_t ring_pos[MAXREG];
	struct oprec ring[MAXREG][RING];
};

static struct header *H;
static bool no_fixup;		/* --no-fixup: leave the page cache as a failed write left it */
static bool no_seek;		/* --no-seek: no SEEK_DATA/SEEK_HOLE (see cmd line help) */
static uint8_t *BASE;
static const char *prog = "rfsc";
static int my_id = -1;

/* ---- small helpers ----------------------------------------------------- */

static uint64_t rng_state;
static uint64_t rnd(void)
{
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}
static uint64_t rndn(uint64_t n) { return n ? rnd() % n : 0; }

static void fill_random(uint8_t *p, size_t n)
{
	size_t i = 0;

	while (i < n) {
		uint64_t r = rnd();

		for (int k = 0; k < 8 && i < n; k++, r >>= 8)
			p[i++] = (uint8_t)((r & 0xff) % 255 + 1);	/* never 0 */
	}
}

static uint8_t src_byte(uint64_t off)
{
	uint64_t z = off * 0x9e3779b97f4a7c15ULL;

	z ^= z >> 29;
	return (uint8_t)(z % 251 + 1);
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static bool is_dead_errno(int e);

/* The daemon is gone (killed by the test): a call it was answering may then
 * fail in any way (EIO, a short count) without that being a finding. */
static bool daemon_gone(void)
{
	struct statvfs sv;

	if (__atomic_load_n(&H->dead, __ATOMIC_SEQ_CST))
		return true;
	if (statvfs(H->dir, &sv) < 0 && is_dead_errno(errno)) {
		__atomic_store_n(&H->dead, 1, __ATOMIC_SEQ_CST);
		return true;
	}
	return false;
}

static void vfail(bool data, const char *fmt, va_list ap)
{
	char buf[1024];

	vsnprintf(buf, sizeof(buf), fmt, ap);
	if (!data && daemon_gone())
		return;
	fprintf(stderr, "%s[%d]: FAIL: %s\n", prog, my_id, buf);
	__atomic_add_fetch(&H->errors, 1, __ATOMIC_SEQ_CST);
}

/* A call that failed or returned what it must not */
static void fail(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfail(false, fmt, ap);
	va_end(ap);
}

/* Data that differs from the model: always a finding */
static void fail_data(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfail(true, fmt, ap);
	va_end(ap);
}

static void note(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "%s[%d]: ", prog, my_id);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

static bool is_dead_errno(int e)
{
	return e == ENOTCONN || e == ECONNABORTED || e == ENODEV;
}

static bool dead(void) { return __atomic_load_n(&H->dead, __ATOMIC_SEQ_CST) != 0; }
static void set_dead(void) { __atomic_store_n(&H->dead, 1, __ATOMIC_SEQ_CST); }
static bool stopping(void) { return dead() || __atomic_load_n(&H->stop, __ATOMIC_SEQ_CST); }

static void count(int op, int64_t res, bool was_enospc, bool was_short)
{
	__atomic_add_fetch(&H->ops[op], 1, __ATOMIC_RELAXED);
	if (res >= 0)
		__atomic_add_fetch(&H->ok[op], 1, __ATOMIC_RELAXED);
	if (was_enospc)
		__atomic_add_fetch(&H->enospc[op], 1, __ATOMIC_RELAXED);
	if (was_short)
		__atomic_add_fetch(&H->shortc[op], 1, __ATOMIC_RELAXED);
}

static void oplog(struct region *r, int op, uint32_t extra, uint64_t off, uint64_t len,
		  int64_t res)
{
	long i = r - H->reg;
	uint64_t k = H->ring_pos[i]++ % RING;
	struct oprec *o = &H->ring[i][k];

	o->seq = r->seq;
	o->op = op;
	o->extra = extra;
	o->off = off;
	o->len = len;
	o->res = res;
	o->size = r->size;
}

static uint8_t *rdata(struct region *r) { return BASE + r->data_off; }
static uint8_t *rflags(struct region *r) { return BASE + r->flags_off; }
static bool owns_size(struct region *r) { return r->kind != K_RANGE; }

static void fname(struct region *r, char *buf, size_t n)
{
	if (r->kind == K_FILLER)
		snprintf(buf, n, "%s/x%u", H->dir, r->file);
	else
		snprintf(buf, n, "%s/f%u", H->dir, r->file);
}

/* sets (or clears) flags of the pages covering bytes [a, b) of the file
 * (absolute offsets) */
static void flag_change(struct region *r, uint64_t a, uint64_t b, uint8_t f, bool set)
{
	uint8_t *fl = rflags(r);

	if (a < r->lo)
		a = r->lo;
	if (b > r->lo + r->maxlen)
		b = r->lo + r->maxlen;
	for (uint64_t p = pg_down(a - r->lo); a < b && p < pg_up(b - r->lo); p++) {
		if (set)
			__atomic_or_fetch(&fl[p], f, __ATOMIC_SEQ_CST);
		else
			__atomic_and_fetch(&fl[p], (uint8_t)~f, __ATOMIC_SEQ_CST);
	}
}

static void flag_set(struct region *r, uint64_t a, uint64_t b, uint8_t f)
{
	flag_change(r, a, b, f, true);
}

static void flag_clear(struct region *r, uint64_t a, uint64_t b, uint8_t f)
{
	flag_change(r, a, b, f, false);
}

/* The call on [a, b) is over: unless the daemon went away during it (then
 * it may or may not have taken effect). */
static bool dead(void);
static void inflight_done(struct region *r, uint64_t a, uint64_t b)
{
	if (!dead())
		flag_clear(r, a, b, PF_INFLIGHT);
}

static bool all_flag(struct region *r, uint64_t a, uint64_t b, uint8_t f)
{
	uint8_t *fl = rflags(r);

	for (uint64_t p = pg_down(a - r->lo); p < pg_up(b - r->lo); p++)
		if (!(fl[p] & f))
			return false;
	return true;
}

static void seq_begin(struct region *r)
{
	__atomic_add_fetch(&r->seq, 1, __ATOMIC_SEQ_CST);
}

static void seq_end(struct region *r)
{
	__atomic_add_fetch(&r->seq, 1, __ATOMIC_SEQ_CST);
}

static void dump_ring(struct region *r, unsigned last)
{
	long ri = r - H->reg;
	uint64_t from = H->ring_pos[ri] > last ? H->ring_pos[ri] - last : 0;

	for (uint64_t j = from; j < H->ring_pos[ri]; j++) {
		struct oprec *o = &H->ring[ri][j % RING];

		fprintf(stderr, "    seq %" PRIu64 " %s(%u) [%" PRIu64 ",+%" PRIu64 ") = %" PRId64
			" size %" PRIu64 "\n", o->seq, op_names[o->op], o->extra, o->off, o->len,
			o->res, o->size);
	}
}

static void dump_diff(const char *what, struct region *r, uint64_t off, const uint8_t *got,
		      const uint8_t *want, size_t n)
{
	size_t first = SIZE_MAX, last = 0, cnt = 0;
	bool zeros = true;

	for (size_t i = 0; i < n; i++)
		if (got[i] != want[i]) {
			if (first == SIZE_MAX)
				first = i;
			last = i;
			cnt++;
			zeros &= got[i] == 0;
		}
	fail_data("%s: region %ld (kind %u file %u lo %" PRIu64 ") bytes %" PRIu64 "-%" PRIu64
	     " (%zu differ, pages %" PRIu64 "-%" PRIu64 " of the file)%s: got %02x want %02x",
	     what, (long)(r - H->reg), r->kind, r->file, r->lo, off + first, off + last, cnt,
	     (off + first) / PG, (off + last) / PG, zeros ? " got zeroes" : "",
	     got[first], want[first]);
	/* the calls of the region that touched those pages */
	long ri = r - H->reg;
	uint64_t pa = (off + first) / PG, pb = (off + last) / PG;
	static int dumped;

	if (dumped++ > 3)
		return;
	for (uint64_t j = H->ring_pos[ri] > RING ? H->ring_pos[ri] - RING : 0; j < H->ring_pos[ri]; j++) {
		struct oprec *o = &H->ring[ri][j % RING];
		uint64_t e = o->off + (o->len ? o->len : 1);

		if (o->op == OP_FSYNC || o->op == OP_FDATASYNC || o->op == OP_TRUNC ||
		    o->op == OP_RECREATE || (o->off / PG <= pb && (e - 1) / PG >= pa))
			fprintf(stderr, "    seq %" PRIu64 " %s(%u) [%" PRIu64 ",+%" PRIu64 ") pages %"
				PRIu64 "-%" PRIu64 " = %" PRId64 " size %" PRIu64 "\n", o->seq,
				op_names[o->op], o->extra, o->off, o->len, o->off / PG, (e - 1) / PG,
				o->res, o->size);
	}
}

/* ---- SIGBUS from mappings ------------------------------------------------ */

static sigjmp_buf bus_jmp;
static volatile sig_atomic_t bus_armed;

static void on_bus(int sig)
{
	(void)sig;
	if (bus_armed) {
		bus_armed = 0;
		siglongjmp(bus_jmp, 1);
	}
	_exit(3);
}

/* memcpy that survives SIGBUS from a mapping: 0, or -1 after one */
static __attribute__((noinline)) int safe_copy(void *dst, const void *src, size_t n)
{
	bus_armed = 1;
	if (sigsetjmp(bus_jmp, 1))
		return -1;
	memcpy(dst, src, n);
	bus_armed = 0;
	return 0;
}

/* ---- the worker -------------------------------------------------------- */

struct worker {
	struct region *r;
	char path[600];
	int fd, fd2, fdd, srcfd;	/* rw, rdonly, O_DIRECT rw, src rdonly */
	uint8_t *map;			/* range workers: the window, mapped */
	uint8_t *buf, *abuf;		/* scratch; abuf is page aligned */
	bool eof;			/* reserve=eof */
};

static void w_open(struct worker *w)
{
	w->fd = open(w->path, O_RDWR);
	w->fd2 = open(w->path, O_RDONLY);
	w->fdd = open(w->path, O_RDWR | O_DIRECT);
	if (w->fd < 0 || w->fd2 < 0 || w->fdd < 0) {
		if (is_dead_errno(errno)) {
			set_dead();
			return;
		}
		fail("open %s: %s", w->path, strerror(errno));
		set_dead();
	}
}

static void w_close(struct worker *w)
{
	int *fds[] = { &w->fd, &w->fd2, &w->fdd };

	for (int i = 0; i < 3; i++) {
		if (*fds[i] >= 0 && close(*fds[i]) < 0 && !is_dead_errno(errno))
			fail("close %s: %s", w->path, strerror(errno));
		*fds[i] = -1;
	}
}

static void w_map(struct worker *w)
{
	struct region *r = w->r;

	if (r->kind != K_RANGE || w->fd < 0 || dead())
		return;
	w->map = mmap(NULL, r->maxlen, PROT_READ | PROT_WRITE, MAP_SHARED, w->fd, r->lo);
	if (w->map == MAP_FAILED) {
		if (is_dead_errno(errno))
			set_dead();
		else
			fail("mmap %s: %s", w->path, strerror(errno));
		w->map = NULL;
	}
}

static void w_unmap(struct worker *w)
{
	if (w->map && munmap(w->map, w->r->maxlen) < 0)
		fail("munmap: %s", strerror(errno));
	w->map = NULL;
}

/* Syscall result: true when it must stop (daemon gone). */
static bool check_dead(int64_t res, int e)
{
	if (res < 0 && is_dead_errno(e)) {
		set_dead();
		return true;
	}
	return false;
}

/* An error that must not happen here. */
static void dump_ring(struct region *r, unsigned last);

static void bad_errno(const char *what, struct region *r, uint64_t off, uint64_t len, int e)
{
	static int dumped;
	uint64_t before = __atomic_load_n(&H->errors, __ATOMIC_SEQ_CST);

	fail("%s [%" PRIu64 ", +%" PRIu64 ") in region %ld (kind %u file %u): %s", what, off, len,
	     (long)(r - H->reg), r->kind, r->file, strerror(e));
	if (__atomic_load_n(&H->errors, __ATOMIC_SEQ_CST) != before && !dumped++)
		dump_ring(r, 60);
}

/* Pick [off, off+len) inside the window (absolute offsets); for size owners
 * it may reach past EOF (up to the window's end) when @grow. */
static void pick(struct worker *w, bool grow, uint64_t maxlen, uint64_t *off, uint64_t *len,
		 bool aligned)
{
	struct region *r = w->r;
	uint64_t end = r->lo + r->maxlen;

	if (owns_size(r) && !grow)
		end = r->size < end ? r->size : end;
	if (end <= r->lo) {
		*off = r->lo;
		*len = 0;
		return;
	}
	uint64_t span = end - r->lo;
	uint64_t o, l;

	switch (rndn(4)) {
	case 0: l = 1 + rndn(64); break;
	case 1: l = 1 + rndn(PG * 2); break;
	case 2: l = PG * (1 + rndn(8)); break;
	default: l = 1 + rndn(maxlen); break;
	}
	if (l > maxlen)
		l = maxlen;
	if (l > span)
		l = span;
	o = r->lo + rndn(span - l + 1);
	if (aligned) {
		o = r->lo + pg_down(o - r->lo) * PG;
		l = pg_up(l) * PG;
		if (o + l > end) {
			if (end - r->lo < PG) {
				*off = r->lo;
				*len = 0;
				return;
			}
			l = pg_down(end - o) * PG;
			if (l == 0) {
				o -= PG;
				l = PG;
			}
		}
	}
	*off = o;
	*len = l;
}

/* write mode: mark reservations made by a successful change of [a, b) */
static void reserved(struct worker *w, uint64_t a, uint64_t b)
{
	if (!w->eof && b > a)
		flag_set(w->r, a, b, PF_RESERVED);
}

static void model_write(struct region *r, uint64_t off, const uint8_t *src, uint64_t n)
{
	memcpy(rdata(r) + (off - r->lo), src, n);
}

static void model_zero(struct region *r, uint64_t a, uint64_t b)
{
	uint64_t e = r->lo + r->maxlen;

	if (a < r->lo)
		a = r->lo;
	if (b > e)
		b = e;
	if (a < b)
		memset(rdata(r) + (a - r->lo), 0, b - a);
}

/* A size owner's model after the size became @s. */
static void model_resize(struct region *r, uint64_t s)
{
	if (s < r->size)
		model_zero(r, s, r->size);
	if (H->mode_write && s <= r->size && s < r->lo + r->maxlen) {
		/* the pages wholly past the new EOF are released (also by a
		 * truncate to the same size: preallocated pages past EOF go) */
		uint64_t from = pg_up(s) * PG;

		flag_clear(r, from, r->lo + r->maxlen, PF_RESERVED);
	}
	r->size = s;
}

static void check_size(struct worker *w, const char *after)
{
	struct region *r = w->r;
	struct stat st;

	if (fstat(w->fd, &st) < 0) {
		if (!check_dead(-1, errno))
			fail("fstat: %s", strerror(errno));
		return;
	}
	if (owns_size(r) && (uint64_t)st.st_size != r->size)
		fail("size after %s: %" PRIu64 ", model %" PRIu64 " (region %ld)", after,
		     (uint64_t)st.st_size, r->size, (long)(r - H->reg));
	if (!owns_size(r) && (uint64_t)st.st_size < r->lo + r->maxlen)
		fail("size %" PRIu64 " below the range %" PRIu64 "+%" PRIu64, (uint64_t)st.st_size,
		     r->lo, r->maxlen);
}

/* ENOSPC policy: allowed for this call? */
static bool enospc_ok(struct worker *w, int op, uint64_t off, uint64_t len)
{
	struct region *r = w->r;

	switch (op) {
	case OP_PWRITE: case OP_WRITE: case OP_DIO: case OP_CFR: case OP_APPEND:
	case OP_FALLOC: case OP_KEEP: case OP_ZERO: case OP_ZERO_KEEP:
		if (!w->eof)	/* write mode: a page not known reserved */
			return !all_flag(r, off, off + len, PF_RESERVED);
		/* eof mode: every page below EOF is reserved already */
		return owns_size(r) && pg_up(off + len) > pg_up(r->size);
	case OP_TRUNC:
		return w->eof;
	default:
		return false;
	}
}

static void note_page_flags(uint8_t *map, struct region *r, uint64_t off, uint64_t n);

/* An O_DIRECT read (the daemon's bytes) differs from the model: is the
 * kernel's cache right (then the daemon lost or never got the bytes), and
 * has the daemon lost a writeback?  Diagnostics only. */
static void note_dio_mismatch(int fd, struct region *r, uint64_t off, const uint8_t *dio,
			      uint64_t n)
{
	uint8_t *b = malloc(n ? n : 1);
	char root[600], st[4096], *wf;
	ssize_t k;

	if (b && (k = pread(fd, b, n, off)) == (ssize_t)n)
		note("  buffered read of it: %s the model, %s the O_DIRECT read",
		     memcmp(b, rdata(r) + (off - r->lo), n) ? "differs from" : "matches",
		     memcmp(b, dio, n) ? "differs from" : "matches");
	free(b);
	snprintf(root, sizeof(root), "%s/..", H->dir);
	k = getxattr(root, "user.reservefs.stat", st, sizeof(st) - 1);
	if (k > 0) {
		st[k] = 0;
		if ((wf = strstr(st, "\"writeback_failures\"")))
			note("  daemon: %.40s", wf);
	}
}

static ssize_t do_cfr(int in, uint64_t off_in, int out, uint64_t off_out, uint64_t len)
{
	loff_t a = off_in, b = off_out;

	return copy_file_range(in, &a, out, &b, len, 0);
}

/* Verify [off, off+len) of the window through @how (0 pread on fd2, 1 O_DIRECT,
 * 2 the mapping). */
static void w_verify(struct worker *w, int how, uint64_t off, uint64_t len, const char *after)
{
	struct region *r = w->r;
	ssize_t n;

	if (len == 0)
		return;
	if (how == 2 && (!w->map || r->kind != K_RANGE))
		how = 0;
	if (how == 1) {
		uint64_t a = pg_down(off) * PG, b = pg_up(off + len) * PG;

		if (owns_size(r) && b > pg_up(r->size) * PG)
			b = pg_up(r->size) * PG;
		if (a >= b)
			return;
		n = pread(w->fdd, w->abuf, b - a, a);
		if (n < 0) {
			if (!check_dead(n, errno))
				bad_errno("O_DIRECT pread", r, a, b - a, errno);
			return;
		}
		uint64_t s = off, e = off + len;

		if (a + n < e)
			e = a + n;
		if (s < e && memcmp(w->abuf + (s - a), rdata(r) + (s - r->lo), e - s)) {
			char what[128];

			snprintf(what, sizeof(what), "O_DIRECT read after %s", after);
			dump_diff(what, r, s, w->abuf + (s - a), rdata(r) + (s - r->lo), e - s);
			note_dio_mismatch(w->fd2, r, s, w->abuf + (s - a), e - s);
		}
		if ((uint64_t)n < b - a && (!owns_size(r) || a + n < r->size))
			fail("O_DIRECT read short: %zd of %" PRIu64 " at %" PRIu64, n, b - a, a);
		return;
	}
	if (how == 2) {
		/* write mode: a page this worker maps can hold, not up to date,
		 * bytes that neither read() nor the daemon has (the kernel's
		 * cached copy of a refused or cut-short write, and in rare runs
		 * after a refused copy_file_range or fallocate too, cause not
		 * pinned down); a buffered read first has such pages read again */
		if (!w->eof && !no_fixup && pread(w->fd2, w->abuf, len, off) < 0 &&
		    check_dead(-1, errno))
			return;
		if (safe_copy(w->buf, w->map + (off - r->lo), len) < 0) {
			set_dead();
			return;
		}
		n = len;
	} else {
		n = pread(w->fd2, w->buf, len, off);
		if (n < 0) {
			if (!check_dead(n, errno))
				bad_errno("pread", r, off, len, errno);
			return;
		}
		if ((uint64_t)n < len)
			fail("short read %zd of %" PRIu64 " at %" PRIu64 " after %s", n, len, off, after);
	}
	if (memcmp(w->buf, rdata(r) + (off - r->lo), n)) {
		char what[128];

		snprintf(what, sizeof(what), "%s after %s", how == 2 ? "mapped read" : "read", after);
		dump_diff(what, r, off, w->buf, rdata(r) + (off - r->lo), n);
		if (how == 2)
			note_page_flags(w->map, r, off, n);
		/* where is it wrong: in the daemon (O_DIRECT), in the cache (pread)? */
		uint64_t a = pg_down(off) * PG, b = pg_up(off + n) * PG;
		ssize_t k = pread(w->fdd, w->abuf, b - a, a);

		if (k > 0)
			note("  O_DIRECT read of it: %s the model, %s the %s",
			     memcmp(w->abuf + (off - a), rdata(r) + (off - r->lo),
				    MIN((uint64_t)k - (off - a), (uint64_t)n)) ? "differs from" : "matches",
			     memcmp(w->abuf + (off - a), w->buf, MIN((uint64_t)k - (off - a),
				    (uint64_t)n)) ? "differs from" : "matches",
			     how == 2 ? "mapping" : "pread");
		if (how == 2 && pread(w->fd2, w->abuf, n, off) == n)
			note("  pread of it now: %s the model, %s what the mapping showed",
			     memcmp(w->abuf, rdata(r) + (off - r->lo), n) ? "differs from" : "matches",
			     memcmp(w->abuf, w->buf, n) ? "differs from" : "matches");
		if (how == 2)
			note("  mapping now: %s the model",
			     memcmp(w->map + (off - r->lo), rdata(r) + (off - r->lo), n) ?
			     "differs from" : "matches");
	}
}

/* The kernel's flags of the mapped pages that differ (diagnostics). */
static void note_page_flags(uint8_t *map, struct region *r, uint64_t off, uint64_t n)
{
	int pm = open("/proc/self/pagemap", O_RDONLY), kf = open("/proc/kpageflags", O_RDONLY);

	for (uint64_t p = pg_down(off); pm >= 0 && kf >= 0 && p < pg_up(off + n); p++) {
		uint64_t a = p * PG < off ? off : p * PG, b = (p + 1) * PG > off + n ? off + n : (p + 1) * PG;
		uint64_t e = 0, f = 0;

		if (!memcmp(map + (a - r->lo), rdata(r) + (a - r->lo), b - a))
			continue;
		if (pread(pm, &e, 8, ((uintptr_t)(map + (p * PG - r->lo)) / PG) * 8) == 8 && (e >> 63) &&
		    pread(kf, &f, 8, (e & ((1ULL << 55) - 1)) * 8) == 8)
			note("  page %" PRIu64 ": present, kpageflags %#" PRIx64 " (uptodate %d dirty %d "
			     "locked %d lru %d compound %d)", p, f, (int)(f >> 3) & 1, (int)(f >> 4) & 1,
			     (int)f & 1, (int)(f >> 5) & 1, (int)((f >> 15) | (f >> 16)) & 1);
		else
			note("  page %" PRIu64 ": not present (pagemap %#" PRIx64 ")", p, e);
	}
	if (pm >= 0)
		close(pm);
	if (kf >= 0)
		close(kf);
}

/* SEEK_DATA/SEEK_HOLE from a random offset: whatever they report as a hole
 * must read as zeroes in the model (inside this window). */
static void w_seek(struct worker *w)
{
	struct region *r = w->r;
	uint64_t end = r->lo + r->maxlen, x;
	off_t res;

	if (owns_size(r) && r->size < end)
		end = r->size;
	if (end <= r->lo)
		return;
	x = r->lo + rndn(end - r->lo);
	bool hole = rndn(2);

	res = lseek(w->fd, x, hole ? SEEK_HOLE : SEEK_DATA);
	count(OP_SEEK, res, false, false);
	if (res < 0) {
		if (check_dead(res, errno))
			return;
		if (errno == ENXIO && !hole) {
			/* no data from x on: [x, end) must be zero */
			for (uint64_t i = x; i < end; i++)
				if (rdata(r)[i - r->lo]) {
					fail("SEEK_DATA from %" PRIu64 ": ENXIO, but byte %" PRIu64
					     " is %02x (region %ld)", x, i, rdata(r)[i - r->lo],
					     (long)(r - H->reg));
					return;
				}
			return;
		}
		bad_errno(hole ? "SEEK_HOLE" : "SEEK_DATA", r, x, 0, errno);
		return;
	}
	if ((uint64_t)res < x) {
		fail("lseek %s from %" PRIu64 " went back to %jd", hole ? "SEEK_HOLE" : "SEEK_DATA",
		     x, (intmax_t)res);
		return;
	}
	uint64_t a, b;

	if (hole) {	/* a hole starts at res: at least its first byte is zero */
		a = res;
		b = res + 1;
	} else {	/* [x, res) is a hole */
		a = x;
		b = res;
	}
	if (b > end)
		b = end;
	for (uint64_t i = a; i < b; i++)
		if (rdata(r)[i - r->lo]) {
			fail("%s from %" PRIu64 " = %jd, but byte %" PRIu64 " in the hole is %02x "
			     "(region %ld kind %u file %u lo %" PRIu64 ")",
			     hole ? "SEEK_HOLE" : "SEEK_DATA", x, (intmax_t)res, i,
			     rdata(r)[i - r->lo], (long)(r - H->reg), r->kind, r->file, r->lo);
			return;
		}
}

/* A buffered write that failed or was cut short leaves its bytes in the
 * kernel's cached pages past the part written (fuse_send_write_pages only
 * clears their uptodate flag): a mapping that has them sees those bytes, and
 * a store through it writes them back (reserve=write, where such pages can
 * lie below EOF).  A buffered read of that part reads the pages again. */
static void fixup_failed_write(struct worker *w, int op, uint64_t off, uint64_t len, ssize_t n)
{
	uint64_t a = off + (n > 0 ? n : 0), b = off + len;

	if (no_fixup || (op != OP_PWRITE && op != OP_WRITE && op != OP_APPEND) || a >= b)
		return;
	while (a < b) {
		uint64_t k = b - a < (4 << 20) ? b - a : (4 << 20);

		if (pread(w->fd2, w->abuf, k, a) < 0)
			break;
		a += k;
	}
}

/* ... and the pages of the same request past the cut keep the write's bytes
 * too, dirty if a mapping had dirtied them: written back later, they replace
 * what the mapping stored with bytes the write said it did not write.  In
 * write mode, before a buffered write that may be cut short, the mapping's
 * stores are written back first (unless --no-fixup). */
static void prewrite_flush(struct worker *w, uint64_t off, uint64_t len)
{
	struct region *r = w->r;

	if (no_fixup || w->eof || all_flag(r, off, off + len, PF_RESERVED))
		return;
	if (fdatasync(w->fd) == 0)
		flag_clear(r, r->lo, r->lo + r->maxlen, PF_MAPDIRTY | PF_UNSYNCED);
}

/* A write-like call's outcome: @n bytes of @src at @off (n < 0: -errno). */
static void w_wrote(struct worker *w, int op, uint64_t off, uint64_t len, const uint8_t *src,
		    ssize_t n, int e)
{
	struct region *r = w->r;
	bool sp = n < 0 && e == ENOSPC;

	count(op, n < 0 ? -1 : n, sp, n >= 0 && (uint64_t)n < len);
	oplog(r, op, 0, off, len, n < 0 ? -e : n);
	/* a short count may be the daemon dying between two of the kernel's
	 * requests, after the second reached the backing file: then the call
	 * stays under way (dead()) for the crash check */
	if (n >= 0 && (uint64_t)n < len && daemon_gone())
		return;
	if (n < 0 || (uint64_t)n < len)
		fixup_failed_write(w, op, off, len, n);
	if (n < 0) {
		if (check_dead(n, e))
			return;
		if (sp && enospc_ok(w, op, off, len))
			return;
		bad_errno(op_names[op], r, off, len, e);
		return;
	}
	if ((uint64_t)n > len) {
		fail("%s returned %zd > %" PRIu64, op_names[op], n, len);
		n = len;
	}
	if ((uint64_t)n < len) {
		if (!enospc_ok(w, op, off, len)) {
			uint64_t before = __atomic_load_n(&H->errors, __ATOMIC_SEQ_CST);

			fail("%s [%" PRIu64 ",+%" PRIu64 ") short: %zd (region %ld) where no space "
			     "is needed", op_names[op], off, len, n, (long)(r - H->reg));
			if (__atomic_load_n(&H->errors, __ATOMIC_SEQ_CST) != before)
				dump_ring(r, 60);
		}
		else if ((off + n) % PG)
			fail("%s short count %zd at %" PRIu64 " does not end on a page boundary",
			     op_names[op], n, off);
	}
	if (n > 0) {
		model_write(r, off, src, n);
		reserved(w, off, off + n);
		if (owns_size(r) && off + n > r->size)
			r->size = off + n;
	}
}

/* A write of [off, off + len) (and of the size, with @size) is under way. */
static void w_begin(struct region *r, uint64_t off, uint64_t len, bool size)
{
	flag_set(r, off, off + len, PF_INFLIGHT | PF_UNSYNCED);
	if (size)
		r->size_flags |= PF_INFLIGHT | PF_UNSYNCED;
}

/* ... and done: @n and @e are its result and errno. */
static void w_end(struct worker *w, int op, uint64_t off, uint64_t len, const uint8_t *src,
		  ssize_t n, int e, bool size)
{
	struct region *r = w->r;

	w_wrote(w, op, off, len, src, n, e);
	inflight_done(r, off, off + len);
	if (size && !dead())
		r->size_flags &= ~PF_INFLIGHT;
}

/* One random operation of the worker. */
static void w_op(struct worker *w)
{
	struct region *r = w->r;
	uint64_t off = 0, len = 0;
	ssize_t n;
	int res, e, op;
	unsigned roll = rndn(100);
	bool so = owns_size(r);
	const char *after = "";

	if (roll < 12) op = OP_PWRITE;
	else if (roll < 20) op = OP_WRITE;
	else if (roll < 28) op = OP_DIO;
	else if (roll < 40) op = OP_MMAP;
	else if (roll < 47) op = OP_CFR;
	else if (roll < 50) op = OP_FALLOC;
	else if (roll < 53) op = OP_KEEP;
	else if (roll < 57) op = OP_PUNCH;
	else if (roll < 60) op = OP_ZERO;
	else if (roll < 62) op = OP_ZERO_KEEP;
	else if (roll < 67) op = so ? OP_TRUNC : OP_PWRITE;
	else if (roll < 70) op = OP_FSYNC;
	else if (roll < 72) op = OP_FDATASYNC;
	else if (roll < 80) op = OP_READ;
	else if (roll < 85) op = OP_DIOREAD;
	else if (roll < 89) op = OP_MAPREAD;
	else if (roll < 94) op = no_seek ? OP_READ : OP_SEEK;
	else if (roll < 95) op = OP_REOPEN;
	else if (roll < 97) op = r->kind == K_FILLER && rndn(4) == 0 ? OP_RECREATE : OP_FSYNC;
	else op = so ? OP_APPEND : OP_PWRITE;

	seq_begin(r);
	switch (op) {
	case OP_PWRITE: case OP_WRITE: {
		pick(w, so, r->kind == K_FILLER ? 1 << 20 : 256 * 1024, &off, &len, false);
		if (!len)
			break;
		fill_random(w->buf, len);
		prewrite_flush(w, off, len);
		flag_set(r, off, off + len, PF_INFLIGHT | PF_UNSYNCED);
		if (so)		/* it may extend the file */
			r->size_flags |= PF_INFLIGHT | PF_UNSYNCED;
		if (op == OP_WRITE) {
			if (lseek(w->fd, off, SEEK_SET) < 0) {
				e = errno;
				if (!check_dead(-1, e))
					bad_errno("lseek", r, off, 0, e);
				break;
			}
			n = write(w->fd, w->buf, len);
		} else {
			n = pwrite(w->fd, w->buf, len, off);
		}
		e = errno;
		w_wrote(w, op, off, len, w->buf, n, e);
		inflight_done(r, off, off + len);
		if (!dead())
			r->size_flags &= ~PF_INFLIGHT;
		after = op_names[op];
		break;
	}
	case OP_APPEND: {
		/* a large write at EOF: the main source of ENOSPC */
		off = r->size;
		len = PG * (1 + rndn(64)) + rndn(PG);
		if (off >= r->lo + r->maxlen)
			break;
		if (off + len > r->lo + r->maxlen)
			len = r->lo + r->maxlen - off;
		fill_random(w->buf, len);
		prewrite_flush(w, off, len);
		w_begin(r, off, len, true);
		n = pwrite(w->fd, w->buf, len, off);
		w_end(w, op, off, len, w->buf, n, errno, true);
		after = "append";
		break;
	}
	case OP_DIO: {
		pick(w, so, 128 * 1024, &off, &len, true);
		if (!len)
			break;
		fill_random(w->abuf, len);
		uint64_t size0 = r->size;

		w_begin(r, off, len, so);
		n = pwrite(w->fdd, w->abuf, len, off);
		e = errno;
		w_wrote(w, op, off, len, w->abuf, n, e);
		/* a direct write past EOF that fails has the kernel truncate the
		 * file to its size (fuse_direct_IO, fuse_do_truncate): that drops
		 * the pages preallocated past EOF, as ext4 drops them */
		if (n < 0 && so && off + len > size0 && !dead())
			model_resize(r, r->size);
		inflight_done(r, off, off + len);
		if (so && !dead())
			r->size_flags &= ~PF_INFLIGHT;
		after = "O_DIRECT write";
		break;
	}
	case OP_MMAP: {
		uint8_t *m = w->map;
		uint64_t mlen = 0, base = r->lo;

		pick(w, false, 64 * 1024, &off, &len, false);
		if (!len)
			break;
		if (!w->eof) {
			/* write mode: only pages known reserved; trim to them */
			uint64_t p = pg_down(off - r->lo), q;

			while (p < pg_up(off + len - r->lo) && !(rflags(r)[p] & PF_RESERVED))
				p++;
			q = p;
			while (q < pg_up(off + len - r->lo) && (rflags(r)[q] & PF_RESERVED))
				q++;
			if (p >= q)
				break;
			uint64_t a = r->lo + p * PG, b = r->lo + q * PG;

			if (off < a)
				off = a;
			if (off + len > b)
				len = b - off;
			if (so && off + len > r->size)
				len = r->size > off ? r->size - off : 0;
			if (!len)
				break;
		}
		if (so) {
			/* a mapping of [lo, size) for this store only */
			mlen = pg_up(r->size - r->lo) * PG;
			m = mmap(NULL, mlen, PROT_READ | PROT_WRITE, MAP_SHARED, w->fd, r->lo);
			if (m == MAP_FAILED) {
				e = errno;
				if (!check_dead(-1, e))
					bad_errno("mmap", r, r->lo, mlen, e);
				break;
			}
		}
		if (!m)
			break;
		fill_random(w->buf, len);
		flag_set(r, off, off + len, PF_INFLIGHT | PF_UNSYNCED | PF_MAPDIRTY);
		if (safe_copy(m + (off - base), w->buf, len) < 0) {
			set_dead();
			break;
		}
		model_write(r, off, w->buf, len);
		count(op, len, false, false);
		unsigned how = rndn(3);

		if (how < 2) {
			uint64_t a = pg_down(off - base) * PG, b = pg_up(off + len - base) * PG;

			res = msync(m + a, b - a, how == 0 ? MS_SYNC : MS_ASYNC);
			e = errno;
			if (res < 0 && !check_dead(res, e))
				bad_errno(how == 0 ? "msync(MS_SYNC)" : "msync(MS_ASYNC)", r, off, len, e);
			if (res == 0 && how == 0)
				flag_clear(r, off, off + len, PF_MAPDIRTY);
		}
		oplog(r, op, how, off, len, 0);
		if (so && munmap(m, mlen) < 0)
			fail("munmap: %s", strerror(errno));
		inflight_done(r, off, off + len);
		after = "mapped store";
		break;
	}
	case OP_CFR: {
		uint64_t soff;

		pick(w, so, 128 * 1024, &off, &len, rndn(2));
		if (!len)
			break;
		if (len > SRC_BYTES)
			len = SRC_BYTES;
		soff = rndn(SRC_BYTES - len + 1);
		for (uint64_t i = 0; i < len; i++)
			w->buf[i] = src_byte(soff + i);
		w_begin(r, off, len, so);
		n = do_cfr(w->srcfd, soff, w->fd, off, len);
		w_end(w, op, off, len, w->buf, n, errno, so);
		after = "copy_file_range";
		break;
	}
	case OP_FALLOC: case OP_KEEP: case OP_PUNCH: case OP_ZERO: case OP_ZERO_KEEP: {
		static const int modes[] = {
			[OP_FALLOC] = 0, [OP_KEEP] = FALLOC_FL_KEEP_SIZE,
			[OP_PUNCH] = FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
			[OP_ZERO] = FALLOC_FL_ZERO_RANGE,
			[OP_ZERO_KEEP] = FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE,
		};
		int mode = modes[op];
		bool keep = mode & FALLOC_FL_KEEP_SIZE;

		pick(w, so, r->kind == K_FILLER && op != OP_PUNCH ? 4 << 20 : 512 * 1024, &off, &len,
		     rndn(3) == 0);
		if (!len)
			break;
		flag_set(r, off, off + len, PF_INFLIGHT | PF_UNSYNCED);
		if (so)
			r->size_flags |= PF_INFLIGHT | PF_UNSYNCED;
		res = fallocate(w->fd, mode, off, len);
		e = errno;
		count(op, res, res < 0 && e == ENOSPC, false);
		oplog(r, op, mode, off, len, res < 0 ? -e : 0);
		if (res < 0) {
			if (!check_dead(res, e) && !(e == ENOSPC && op != OP_PUNCH &&
						      enospc_ok(w, op, off, len)))
				bad_errno(op_names[op], r, off, len, e);
		} else {
			uint64_t end = off + len;

			if (op == OP_PUNCH || op == OP_ZERO || op == OP_ZERO_KEEP) {
				uint64_t zend = end;

				if (so && keep && zend > r->size)
					zend = r->size > off ? r->size : off;
				model_zero(r, off, zend);
			}
			if (op == OP_PUNCH) {
				if (!w->eof) {
					/* whole pages go; in eof mode only past EOF */
					uint64_t pa = pg_up(off), pb = pg_down(end);

					if (so && end >= r->size && end % PG &&
					    pg_down(end) >= pg_up(r->size))
						pb = pg_up(end);
					if (pa < pb)
						flag_clear(r, pa * PG, pb * PG, PF_RESERVED);
				}
			} else {
				reserved(w, pg_down(off) * PG, pg_up(end) * PG);
			}
			if (so && !keep && end > r->size)
				r->size = end;
		}
		inflight_done(r, off, off + len);
		if (!dead())
			r->size_flags &= ~PF_INFLIGHT;
		after = op_names[op];
		break;
	}
	case OP_TRUNC: {
		uint64_t s = r->lo + rndn(r->maxlen + 1), old = r->size;

		if (rndn(3) == 0)
			s = r->lo + pg_down(s - r->lo) * PG;
		flag_set(r, (s < old ? s : old), (s < old ? old : s) + 1, PF_INFLIGHT | PF_UNSYNCED);
		r->size_flags |= PF_INFLIGHT | PF_UNSYNCED;
		res = ftruncate(w->fd, s);
		e = errno;
		count(op, res, res < 0 && e == ENOSPC, false);
		oplog(r, op, 0, s, 0, res < 0 ? -e : 0);
		if (res < 0) {
			if (!check_dead(res, e) && !(e == ENOSPC && s > old && enospc_ok(w, op, old, s - old)))
				bad_errno("ftruncate", r, s, 0, e);
		} else {
			model_resize(r, s);
		}
		inflight_done(r, (s < old ? s : old), (s < old ? old : s) + 1);
		if (!dead())
			r->size_flags &= ~PF_INFLIGHT;
		after = "ftruncate";
		break;
	}
	case OP_FSYNC: case OP_FDATASYNC: {
		int fd = rndn(3) == 0 ? w->fd2 : w->fd;

		res = op == OP_FSYNC ? fsync(fd) : fdatasync(fd);
		e = errno;
		count(op, res, res < 0 && e == ENOSPC, false);
		oplog(r, op, 0, 0, 0, res < 0 ? -e : 0);
		if (res < 0) {
			if (!check_dead(res, e))
				bad_errno(op_names[op], r, 0, 0, e);
		} else {
			flag_clear(r, r->lo, r->lo + r->maxlen, PF_UNSYNCED | PF_MAPDIRTY);
			r->size_flags &= ~PF_UNSYNCED;
		}
		break;
	}
	case OP_READ: case OP_DIOREAD: case OP_MAPREAD:
		pick(w, false, 256 * 1024, &off, &len, false);
		w_verify(w, op - OP_READ, off, len, "reads");
		count(op, 0, false, false);
		break;
	case OP_SEEK:
		w_seek(w);
		break;
	case OP_REOPEN:
		w_unmap(w);
		w_close(w);
		w_open(w);
		w_map(w);
		count(op, 0, false, false);
		break;
	case OP_RECREATE: {
		/* unlink, create again: a new empty file */
		int orphan = -1;

		flag_set(r, r->lo, r->lo + r->maxlen, PF_INFLIGHT | PF_UNSYNCED);
		r->size_flags |= PF_INFLIGHT | PF_UNSYNCED;
		if (rndn(2)) {		/* keep writing the file once it has no name */
			orphan = w->fd;
			w->fd = -1;
		}
		w_close(w);
		res = unlink(w->path);
		e = errno;
		if (res < 0) {
			if (!check_dead(res, e))
				bad_errno("unlink", r, 0, 0, e);
			if (orphan >= 0)
				close(orphan);
			break;
		}
		if (orphan >= 0) {
			/* an unlinked open file: writes, reads back, fsync, close */
			uint64_t o = rndn(r->size + 1), l = 1 + rndn(64 * 1024);

			fill_random(w->buf, l);
			n = pwrite(orphan, w->buf, l, o);
			e = errno;
			count(OP_PWRITE, n, n < 0 && e == ENOSPC, n >= 0 && (uint64_t)n < l);
			if (n < 0 && !check_dead(n, e) && e != ENOSPC)
				bad_errno("pwrite to an unlinked file", r, o, l, e);
			if (n > 0) {
				uint8_t *back = w->abuf;

				if (pread(orphan, back, n, o) != n || memcmp(back, w->buf, n))
					fail("unlinked file: %zd bytes written at %" PRIu64 " do not read back",
					     n, o);
			}
			if (fsync(orphan) < 0 && !check_dead(-1, errno))
				bad_errno("fsync of an unlinked file", r, 0, 0, errno);
			if (close(orphan) < 0 && !check_dead(-1, errno))
				bad_errno("close of an unlinked file", r, 0, 0, errno);
		}
		r->gen++;
		model_resize(r, 0);
		memset(rdata(r), 0, r->maxlen);
		flag_clear(r, r->lo, r->lo + r->maxlen, PF_RESERVED);
		res = open(w->path, O_CREAT | O_EXCL | O_RDWR, 0644);
		e = errno;
		count(op, res, res < 0 && e == ENOSPC, false);
		if (res < 0) {
			if (!check_dead(res, e))
				bad_errno("create", r, 0, 0, e);
			break;
		}
		close(res);
		oplog(r, op, 0, 0, 0, 0);
		w_open(w);
		inflight_done(r, r->lo, r->lo + r->maxlen);
		if (!dead())
			r->size_flags &= ~PF_INFLIGHT;
		break;
	}
	}
	if (so && !dead() && op != OP_READ && op != OP_DIOREAD && op != OP_MAPREAD)
		check_size(w, op_names[op]);
	seq_end(r);
	/* read back what the call changed, through another path */
	if (*after && !dead() && len && rndn(2)) {
		uint64_t vend = off + len;

		if (so && vend > r->size)
			vend = r->size;
		if (vend > off)
			w_verify(w, rndn(3), off, vend - off, after);
	}
}

static void worker_main(int idx, double deadline, uint64_t seed)
{
	struct worker w = { .r = &H->reg[idx], .fd = -1, .fd2 = -1, .fdd = -1 };
	char src[600];

	my_id = idx;
	rng_state = seed * 1000003 + idx;
	w.eof = !H->mode_write;
	fname(w.r, w.path, sizeof(w.path));
	snprintf(src, sizeof(src), "%s/src", H->dir);
	w.srcfd = open(src, O_RDONLY);
	w.buf = malloc(8 << 20);
	if (posix_memalign((void **)&w.abuf, PG, 8 << 20) || !w.buf || w.srcfd < 0) {
		fail("setup: %s", strerror(errno));
		_exit(1);
	}
	w_open(&w);
	w_map(&w);
	while (!stopping() && now() < deadline) {
		w_op(&w);
		/* a quiet moment now and then, for the readers */
		if (rndn(4) == 0)
			usleep(rndn(500));
	}
	if (!dead()) {
		w_unmap(&w);
		w_close(&w);
		close(w.srcfd);
	}
	_exit(0);
}

/* ---- readers: other processes' windows, through the seqlock -------------- */

static void reader_main(int idx, double deadline, uint64_t seed)
{
	uint8_t *buf = malloc(1 << 20), *abuf, *want = malloc(1 << 20);
	int fds[MAXREG], dfds[MAXREG];

	my_id = 1000 + idx;
	rng_state = seed * 7919 + idx + 77;
	if (posix_memalign((void **)&abuf, PG, 1 << 20) || !buf || !want)
		_exit(1);
	for (uint32_t i = 0; i < H->nregions; i++)
		fds[i] = dfds[i] = -1;
	while (!stopping() && now() < deadline) {
		uint32_t i = rndn(H->nregions);
		struct region *r = &H->reg[i];
		char path[600];
		uint64_t s1 = __atomic_load_n(&r->seq, __ATOMIC_SEQ_CST), gen = r->gen;
		uint64_t size = owns_size(r) ? r->size : r->lo + r->maxlen, end, off, len;
		int how = rndn(3);
		ssize_t n;

		for (int spin = 0; (s1 & 1) && spin < 2000; spin++) {
			if (spin > 50)
				usleep(20);
			s1 = __atomic_load_n(&r->seq, __ATOMIC_SEQ_CST);
		}
		if (s1 & 1) {
			__atomic_add_fetch(&H->reader_skipped, 1, __ATOMIC_RELAXED);
			continue;
		}
		gen = r->gen;
		size = owns_size(r) ? r->size : r->lo + r->maxlen;
		end = r->lo + r->maxlen < size ? r->lo + r->maxlen : size;
		if (end <= r->lo)
			continue;
		len = 1 + rndn(end - r->lo < 256 * 1024 ? end - r->lo : 256 * 1024);
		off = r->lo + rndn(end - r->lo - len + 1);
		fname(r, path, sizeof(path));
		int fd, dfd;

		if (r->kind == K_FILLER) {
			fd = open(path, O_RDONLY);
			dfd = open(path, O_RDONLY | O_DIRECT);
		} else {
			if (fds[i] < 0)
				fds[i] = open(path, O_RDONLY);
			if (dfds[i] < 0)
				dfds[i] = open(path, O_RDONLY | O_DIRECT);
			fd = fds[i];
			dfd = dfds[i];
		}
		if (fd < 0 || dfd < 0) {
			if (is_dead_errno(errno))
				set_dead();
			/* a filler between unlink and create */
			if (r->kind == K_FILLER) {
				if (fd >= 0) close(fd);
				if (dfd >= 0) close(dfd);
			}
			continue;
		}
		if (how == 0) {
			n = pread(fd, buf, len, off);
		} else if (how == 1) {
			uint64_t a = pg_down(off) * PG, b = pg_up(off + len) * PG;

			n = pread(dfd, abuf, b - a, a);
			if (n >= 0) {
				n = (int64_t)n - (int64_t)(off - a);
				if (n < 0)
					n = 0;
				if ((uint64_t)n > len)
					n = len;
				memcpy(buf, abuf + (off - a), n);
			}
		} else {
			uint64_t a = pg_down(off) * PG, ml = pg_up(off + len) * PG - a;
			uint8_t *m = mmap(NULL, ml, PROT_READ, MAP_SHARED, fd, a);

			if (m == MAP_FAILED) {
				n = -1;
			} else {
				if (safe_copy(buf, m + (off - a), len) < 0) {
					__atomic_add_fetch(&H->reader_sigbus, 1, __ATOMIC_RELAXED);
					n = -2;
				} else {
					n = len;
				}
				munmap(m, ml);
			}
		}
		int e = errno;

		if (r->kind == K_FILLER) {
			close(fd);
			close(dfd);
		}
		if (n == -1 && is_dead_errno(e)) {
			set_dead();
			break;
		}
		memcpy(want, rdata(r) + (off - r->lo), len);
		uint64_t s2 = __atomic_load_n(&r->seq, __ATOMIC_SEQ_CST);

		if (s1 != s2 || gen != r->gen) {
			__atomic_add_fetch(&H->reader_skipped, 1, __ATOMIC_RELAXED);
			continue;
		}
		__atomic_add_fetch(&H->reader_checks, 1, __ATOMIC_RELAXED);
		count(OP_RDCHECK, n, false, false);
		if (n < 0) {
			if (n == -2 && !dead())
				fail("reader: SIGBUS reading region %u [%" PRIu64 ",+%" PRIu64
				     ") size %" PRIu64 " while stable", i, off, len, size);
			else if (n == -1 && !dead())
				fail("reader: %s of region %u: %s", how == 2 ? "mmap" : "read", i,
				     strerror(e));
			continue;
		}
		if ((uint64_t)n < len)
			fail("reader: short %s %zd of %" PRIu64 " at %" PRIu64 " (region %u, size %"
			     PRIu64 ")", how == 1 ? "O_DIRECT read" : "read", n, len, off, i, size);
		if (memcmp(buf, want, n)) {
			/* again, to tell a stale cache from a torn read */
			char what[160];

			snprintf(what, sizeof(what), "reader (%s, seq %" PRIu64 ")",
				 how == 0 ? "pread" : how == 1 ? "O_DIRECT" : "mmap", s1);
			dump_diff(what, r, off, buf, want, n);
			if (how == 1 && r->kind != K_FILLER)
				note_dio_mismatch(fd, r, off, buf, n);
			if (how == 0 && pread(fd >= 0 && r->kind != K_FILLER ? fd : dfd, buf, len, off) > 0)
				note("  re-read: %s", memcmp(buf, want, n) ? "still wrong" : "now right");
		}
	}
	_exit(0);
}

static const char *resize_a, *resize_b;	/* --resize A,B: capacity changes while running */

static void chaos_main(double deadline, bool drop)
{
	char root[600];
	unsigned k = 0;

	my_id = 2000;
	snprintf(root, sizeof(root), "%s/..", H->dir);
	while (!stopping() && now() < deadline) {
		usleep(300 * 1000);
		if (resize_a && resize_b) {
			const char *v = k++ % 2 ? resize_a : resize_b;

			/* a shrink below what is reserved is refused (ENOSPC) */
			if (setxattr(root, "user.reservefs.size", v, strlen(v), 0) < 0 &&
			    errno != ENOSPC && !is_dead_errno(errno))
				fail("setxattr user.reservefs.size=%s: %s", v, strerror(errno));
		}
		if (drop) {
			int fd = open("/proc/sys/vm/drop_caches", O_WRONLY);

			if (fd >= 0) {
				if (write(fd, "3", 1) == 1)
					count(OP_DROP, 0, false, false);
				close(fd);
			}
		}
	}
	_exit(0);
}

/* ---- state file ----------------------------------------------------------- */

static int state_map(const char *path, bool create, uint64_t bytes)
{
	int fd = open(path, O_RDWR | (create ? O_CREAT | O_TRUNC : 0), 0644);
	struct stat st;

	if (fd < 0 || (create && ftruncate(fd, bytes) < 0) || fstat(fd, &st) < 0) {
		fprintf(stderr, "%s: %s: %s\n", prog, path, strerror(errno));
		return -1;
	}
	BASE = mmap(NULL, st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	if (BASE == MAP_FAILED)
		return -1;
	H = (struct header *)BASE;
	if (!create && H->magic != MAGIC) {
		fprintf(stderr, "%s: %s: not a state file\n", prog, path);
		return -1;
	}
	return 0;
}

static int write_all(int fd, const void *p, size_t n, off_t off)
{
	while (n) {
		ssize_t k = pwrite(fd, p, n, off);

		if (k <= 0)
			return -1;
		p = (const char *)p + k;
		n -= k;
		off += k;
	}
	return 0;
}

static int cmd_init(const char *state, const char *dir, bool mode_write, unsigned nf,
		    unsigned nw, unsigned np, unsigned ntail, unsigned nfill, uint64_t fillbytes,
		    uint64_t seed)
{
	uint64_t off = sizeof(struct header);
	unsigned nreg = nf * (nw + 1) + nfill, k = 0;
	struct region tmp[MAXREG];
	char path[600];
	int fd;

	if (nreg > MAXREG || strlen(dir) >= sizeof(H->dir))
		return 2;
	memset(tmp, 0, sizeof(tmp));
	for (unsigned f = 0; f < nf; f++) {
		for (unsigned w = 0; w <= nw; w++, k++) {
			tmp[k].kind = w < nw ? K_RANGE : K_TAIL;
			tmp[k].file = f;
			tmp[k].lo = (uint64_t)w * np * PG;
			tmp[k].maxlen = (uint64_t)(w < nw ? np : ntail) * PG;
			tmp[k].size = (uint64_t)nw * np * PG;
		}
	}
	for (unsigned x = 0; x < nfill; x++, k++) {
		tmp[k].kind = K_FILLER;
		tmp[k].file = x;
		tmp[k].maxlen = fillbytes;
	}
	for (k = 0; k < nreg; k++) {
		tmp[k].flags_off = off;
		off += (pg_up(tmp[k].maxlen) + 7) & ~7ULL;
		tmp[k].data_off = off;
		off += (tmp[k].maxlen + 4095) & ~4095ULL;
	}
	if (state_map(state, true, off) < 0)
		return 2;
	H->magic = MAGIC;
	strcpy(H->dir, dir);
	H->mode_write = mode_write;
	H->nregions = nreg;
	H->nfiles = nf;
	H->nfillers = nfill;
	H->total_bytes = off;
	H->seed = seed;
	memcpy(H->reg, tmp, sizeof(tmp));
	if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
		fprintf(stderr, "%s: mkdir %s: %s\n", prog, dir, strerror(errno));
		return 2;
	}
	/* the source of copy_file_range */
	snprintf(path, sizeof(path), "%s/src", dir);
	fd = open(path, O_CREAT | O_TRUNC | O_RDWR, 0644);
	if (fd < 0)
		return 2;
	{
		uint8_t *b = malloc(SRC_BYTES);

		for (uint64_t i = 0; i < SRC_BYTES; i++)
			b[i] = src_byte(i);
		if (write_all(fd, b, SRC_BYTES, 0) < 0 || fsync(fd) < 0) {
			fprintf(stderr, "%s: writing %s: %s\n", prog, path, strerror(errno));
			return 2;
		}
		free(b);
		close(fd);
	}
	for (unsigned f = 0; f < nf; f++) {
		snprintf(path, sizeof(path), "%s/f%u", dir, f);
		fd = open(path, O_CREAT | O_TRUNC | O_RDWR, 0644);
		if (fd < 0 || ftruncate(fd, (uint64_t)nw * np * PG) < 0 || fsync(fd) < 0) {
			fprintf(stderr, "%s: %s: %s\n", prog, path, strerror(errno));
			return 2;
		}
		close(fd);
	}
	for (unsigned x = 0; x < nfill; x++) {
		snprintf(path, sizeof(path), "%s/x%u", dir, x);
		fd = open(path, O_CREAT | O_TRUNC | O_RDWR, 0644);
		if (fd < 0 || fsync(fd) < 0)
			return 2;
		close(fd);
	}
	return 0;
}

static void print_stats(void)
{
	fprintf(stderr, "%-16s %9s %9s %8s %8s\n", "op", "calls", "ok", "ENOSPC", "short");
	for (int i = 0; i < NOPS; i++)
		if (H->ops[i])
			fprintf(stderr, "%-16s %9" PRIu64 " %9" PRIu64 " %8" PRIu64 " %8" PRIu64 "\n",
				op_names[i], H->ops[i], H->ok[i], H->enospc[i], H->shortc[i]);
	fprintf(stderr, "reader checks %" PRIu64 ", skipped (busy) %" PRIu64 ", sigbus %" PRIu64
		"; errors %" PRIu64 "%s\n", H->reader_checks, H->reader_skipped, H->reader_sigbus,
		H->errors, H->dead ? "; the daemon went away" : "");
}

static int cmd_run(double secs, unsigned nreaders, uint64_t seed, bool drop)
{
	double deadline = now() + secs;
	pid_t pids[MAXREG + 64];
	int np = 0, status, rc = 0;
	struct sigaction sa = { .sa_handler = on_bus };

	sigaction(SIGBUS, &sa, NULL);
	if (!seed)
		seed = H->seed;
	H->stop = 0;
	for (uint32_t i = 0; i < H->nregions; i++) {
		pid_t p = fork();

		if (p == 0)
			worker_main(i, deadline, seed);
		pids[np++] = p;
	}
	for (unsigned i = 0; i < nreaders; i++) {
		pid_t p = fork();

		if (p == 0)
			reader_main(i, deadline, seed);
		pids[np++] = p;
	}
	{
		pid_t p = fork();

		if (p == 0)
			chaos_main(deadline, drop);
		pids[np++] = p;
	}
	for (int i = 0; i < np; i++) {
		if (waitpid(pids[i], &status, 0) < 0)
			continue;
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
			fprintf(stderr, "%s: child %d: %s %d\n", prog, i,
				WIFEXITED(status) ? "exit" : "signal",
				WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
			if (!H->dead)
				rc = 1;
		}
	}
	print_stats();
	return H->errors || rc ? 1 : 0;
}

/* After a remount (@crash: after SIGKILL of the daemon). */
static int cmd_verify(bool crash)
{
	uint8_t *buf = malloc(64 << 20);
	unsigned bad = 0, checked_pages = 0, skipped_pages = 0, weak_bad = 0;

	my_id = -2;
	H->dead = 0;		/* mounted again */
	for (uint32_t i = 0; i < H->nregions; i++) {
		struct region *r = &H->reg[i];
		char path[600];
		struct stat st;
		int fd;

		fname(r, path, sizeof(path));
		fd = open(path, O_RDONLY);
		if (fd < 0 || fstat(fd, &st) < 0) {
			if (r->kind == K_FILLER && crash && (r->size_flags & PF_INFLIGHT))
				continue;
			fail("verify: %s: %s", path, strerror(errno));
			bad++;
			continue;
		}
		uint64_t size = st.st_size, msize = owns_size(r) ? r->size : r->lo + r->maxlen;
		bool size_known = !crash || !(r->size_flags & PF_INFLIGHT);

		if (owns_size(r) && size_known && size != msize) {
			fail("verify: %s size %" PRIu64 ", model %" PRIu64 " (size flags %x)", path,
			     size, msize, r->size_flags);
			bad++;
			dump_ring(r, 24);
		}
		if (!owns_size(r) && size < msize) {
			fail("verify: %s size %" PRIu64 " below range end %" PRIu64, path, size, msize);
			bad++;
		}
		uint64_t end = msize < size ? msize : size;
		if (end > r->lo + r->maxlen)
			end = r->lo + r->maxlen;
		if (end > r->lo) {
			ssize_t n = pread(fd, buf, end - r->lo, r->lo);

			if (n < 0 || (uint64_t)n != end - r->lo) {
				fail("verify: read %s: %zd %s", path, n, n < 0 ? strerror(errno) : "");
				bad++;
				close(fd);
				continue;
			}
			for (uint64_t p = 0; p < pg_up(end - r->lo); p++) {
				uint64_t a = p * PG, b = (p + 1) * PG;
				uint8_t f = rflags(r)[p];

				if (b > end - r->lo)
					b = end - r->lo;
				bool strict = !crash || !(f & (PF_INFLIGHT | PF_MAPDIRTY));
				bool synced = !(f & PF_UNSYNCED);

				if (!strict && !synced) {
					skipped_pages++;
					continue;
				}
				checked_pages++;
				if (memcmp(buf + a, rdata(r) + a, b - a)) {
					char what[128];

					snprintf(what, sizeof(what), "verify%s (page flags %x%s)",
						 crash ? " after crash" : "", f,
						 synced ? ", fsync'd" : ", completed call");
					dump_diff(what, r, r->lo + a, buf + a, rdata(r) + a, b - a);
					if (synced)
						bad++;
					else
						weak_bad++;
				}
			}
		}
		close(fd);
	}
	fprintf(stderr, "verify: %u pages checked, %u skipped (uncertain after a crash), %u "
		"mismatches (fsync'd or clean), %u (completed calls, not fsync'd)\n",
		checked_pages, skipped_pages, bad, weak_bad);
	free(buf);
	return bad || weak_bad ? 1 : 0;
}

static void usage(void)
{
	fprintf(stderr, "usage: rfsc init|run|verify -s STATE [options] (see the source)\n");
	exit(2);
}

int main(int argc, char **argv)
{
	const char *cmd, *state = NULL, *dir = NULL;
	unsigned nf = 2, nw = 3, np = 32, ntail = 128, nfill = 2, nreaders = 2;
	uint64_t fill = 8 << 20, seed = 0;
	bool mode_write = false, crash = false, drop = true;
	double secs = 20;

	setvbuf(stderr, NULL, _IOLBF, 0);
	if (argc < 2)
		usage();
	cmd = argv[1];
	for (int i = 2; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(a, "--crash")) { crash = true; continue; }
		if (!strcmp(a, "--no-drop")) { drop = false; continue; }
		if (!strcmp(a, "--no-fixup")) { no_fixup = true; continue; }
		if (!strcmp(a, "--no-seek")) { no_seek = true; continue; }
		if (!strcmp(a, "--resize") && i + 1 < argc) {
			char *c = strdup(argv[++i]), *comma = strchr(c, ',');

			if (!comma)
				usage();
			*comma = 0;
			resize_a = c;
			resize_b = comma + 1;
			continue;
		}
		if (!v)
			usage();
		i++;
		if (!strcmp(a, "-s")) state = v;
		else if (!strcmp(a, "-d")) dir = v;
		else if (!strcmp(a, "-m")) mode_write = !strcmp(v, "write");
		else if (!strcmp(a, "-F")) nf = atoi(v);
		else if (!strcmp(a, "-W")) nw = atoi(v);
		else if (!strcmp(a, "-P")) np = atoi(v);
		else if (!strcmp(a, "-T")) ntail = atoi(v);
		else if (!strcmp(a, "-L")) nfill = atoi(v);
		else if (!strcmp(a, "-X")) fill = strtoull(v, NULL, 0);
		else if (!strcmp(a, "-S")) seed = strtoull(v, NULL, 0);
		else if (!strcmp(a, "-t")) secs = atof(v);
		else if (!strcmp(a, "-R")) nreaders = atoi(v);
		else usage();
	}
	if (!state)
		usage();
	if (!strcmp(cmd, "init")) {
		if (!dir)
			usage();
		return cmd_init(state, dir, mode_write, nf, nw, np, ntail, nfill, fill, seed ? seed : 1);
	}
	if (state_map(state, false, 0) < 0)
		return 2;
	if (!strcmp(cmd, "run"))
		return cmd_run(secs, nreaders, seed, drop);
	if (!strcmp(cmd, "verify"))
		return cmd_verify(crash);
	usage();
	return 2;
}
