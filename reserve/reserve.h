/* reserve/ — the capacity ledger of reservefs.
 *
 * Two pieces, both free of I/O and of any other module:
 *  - struct rsv_map: a set of 4096-byte page numbers kept as sorted, disjoint,
 *    non-adjacent extents [start, end).  Memory is O(extents), never O(pages):
 *    a fully reserved 1 TiB file is one extent.  Adding or removing a range
 *    costs a binary search and a move inside one chunk of extents (plus the
 *    extents it folds away, and now and then a move of the chunk pointers).
 *  - struct rsv_ledger: the store-wide capacity (pages, inodes) and what is
 *    charged against it.  Charges are exact under concurrency: usage never
 *    exceeds capacity, not even for a moment (CAS on the counters; charges
 *    share a reader lock that only a resize takes exclusively, see ledger.c).
 *
 * The map is not locked: its owner (the inode, in fs/) serialises access.
 * The ledger is a leaf: callers may hold their own locks while calling it,
 * it never calls out.
 */
#ifndef RESERVE_H
#define RESERVE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/statvfs.h>

#define RSV_PAGE_SHIFT 12
#define RSV_PAGE_SIZE  (1u << RSV_PAGE_SHIFT)
/* A capacity names fewer pages than this (2^64 bytes): in bytes (statfs,
 * the control xattrs) it must fit in 64 bits. */
#define RSV_MAX_PAGES  (1ull << (64 - RSV_PAGE_SHIFT))

/* First page at or after byte offset @off / first page wholly past @off. */
static inline uint64_t rsv_page_down(uint64_t off) { return off >> RSV_PAGE_SHIFT; }
static inline uint64_t rsv_page_up(uint64_t off)
{
	return (off >> RSV_PAGE_SHIFT) + ((off & (RSV_PAGE_SIZE - 1)) != 0);
}

enum rsv_mode {
	RSV_MODE_EOF = 0,	/* every page below EOF is reserved (default) */
	RSV_MODE_WRITE = 1,	/* a page is reserved when first written */
};

/* ---- page extent sets ------------------------------------------------- */

struct rsv_extent {
	uint64_t start;		/* first page */
	uint64_t end;		/* one past the last page */
};

/* The extents live in chunks of at most RSV_CHUNK_MAX (map.c), kept in
 * order: a lookup is two binary searches, an insertion or a removal moves at
 * most one chunk's extents (and, when a chunk splits or empties, the chunk
 * pointers).  A map of one chunk keeps it inline, without the pointer array;
 * the struct stays 24 bytes, as every inode has several. */
struct rsv_chunk;
struct rsv_top;

struct rsv_map {
	union {
		struct rsv_chunk *one;	/* !many: the only chunk, or NULL */
		struct rsv_top *top;	/* many: two or more chunks, in order */
	} u;
	uint32_t n;		/* extents in all chunks */
	uint32_t many;		/* which member of u is in use */
	uint64_t pages;		/* sum of extent lengths */
};

#define RSV_MAP_INIT { { NULL }, 0, 0, 0 }

void rsv_map_init(struct rsv_map *m);
/* Frees the extents; the map is empty and reusable afterwards. */
void rsv_map_clear(struct rsv_map *m);
static inline uint64_t rsv_map_pages(const struct rsv_map *m) { return m->pages; }
bool rsv_map_contains(const struct rsv_map *m, uint64_t page);
/* Pages of [start, end) that are in @m / not in @m. */
uint64_t rsv_map_count_present(const struct rsv_map *m, uint64_t start, uint64_t end);
uint64_t rsv_map_count_missing(const struct rsv_map *m, uint64_t start, uint64_t end);
/* The largest p in [start, end] such that [start, p) holds at most @budget
 * pages missing from @m.  (With budget 0 it returns the first missing page.) */
uint64_t rsv_map_limit_missing(const struct rsv_map *m, uint64_t start,
			       uint64_t end, uint64_t budget);
/* Adds / removes [start, end); returns how many pages actually changed.
 * Adding can only fail on allocation, which GLib treats as fatal. */
uint64_t rsv_map_add(struct rsv_map *m, uint64_t start, uint64_t end);
uint64_t rsv_map_remove(struct rsv_map *m, uint64_t start, uint64_t end);
/* Calls @cb for every maximal range of [start, end) that is missing from /
 * present in @m, in ascending order; stops at and returns the first non-zero
 * value @cb returns.  @cb must not modify @m. */
typedef int (*rsv_range_cb)(uint64_t start, uint64_t end, void *arg);
int rsv_map_foreach_missing(const struct rsv_map *m, uint64_t start, uint64_t end,
			    rsv_range_cb cb, void *arg);
int rsv_map_foreach_present(const struct rsv_map *m, uint64_t start, uint64_t end,
			    rsv_range_cb cb, void *arg);
/* Heap bytes the map costs (the struct itself excluded). */
size_t rsv_map_bytes(const struct rsv_map *m);
/* The first page of the first extent and the end of the last one; false if
 * the map is empty. */
bool rsv_map_span(const struct rsv_map *m, uint64_t *start, uint64_t *end);
/* Adds every page of @src to @dst and leaves @src empty (in O(1) when @dst
 * is empty).  Returns the pages @dst gained. */
uint64_t rsv_map_move(struct rsv_map *dst, struct rsv_map *src);
/* Asserts the map's structural invariants (for the unit tests); returns the
 * number of chunks. */
uint32_t rsv_map_check(const struct rsv_map *m);

/* ---- the ledger ------------------------------------------------------- */

enum rsv_event {		/* calls that can meet ENOSPC, for statistics */
	RSV_EV_WRITE,
	RSV_EV_TRUNCATE,
	RSV_EV_FALLOCATE,
	RSV_EV_WRITEBACK,
	RSV_EV_CREATE,
	RSV_EV_XATTR,		/* setxattr, and ACLs inherited by a create */
	RSV_EV_NR
};

struct rsv_ledger {
	/* All fields are accessed with __atomic builtins only; resizes and
	 * charges are ordered by a process-wide rwlock in ledger.c. */
	uint64_t capacity_pages;
	uint64_t reserved_pages;	/* never > capacity_pages when charged */
	uint64_t nr_inodes;
	uint64_t used_inodes;
	uint64_t enospc[RSV_EV_NR];
	enum rsv_mode mode;		/* set at init, read-only afterwards */
};

void rsv_ledger_init(struct rsv_ledger *l, uint64_t capacity_pages,
		     uint64_t nr_inodes, enum rsv_mode mode);
/* All or nothing: 0, or -ENOSPC with nothing charged. */
int rsv_charge(struct rsv_ledger *l, uint64_t pages);
/* As much as fits: returns how many pages of @pages were charged (maybe 0). */
uint64_t rsv_charge_upto(struct rsv_ledger *l, uint64_t pages);
void rsv_release(struct rsv_ledger *l, uint64_t pages);
/* Charge regardless of capacity: used when re-deriving the ledger at mount
 * from what the store already holds (usage may then exceed a shrunk size). */
void rsv_charge_force(struct rsv_ledger *l, uint64_t pages);
/* One inode: 0 or -ENOSPC when nr_inodes are in use. */
int rsv_inode_get(struct rsv_ledger *l);
void rsv_inode_put(struct rsv_ledger *l);
void rsv_inode_get_force(struct rsv_ledger *l);
/* Runtime resizing: -ENOSPC (nothing changed) when below current usage. */
int rsv_set_capacity(struct rsv_ledger *l, uint64_t pages);
int rsv_set_nr_inodes(struct rsv_ledger *l, uint64_t nr);
void rsv_count_enospc(struct rsv_ledger *l, enum rsv_event ev);
uint64_t rsv_reserved_pages(const struct rsv_ledger *l);
uint64_t rsv_capacity_pages(const struct rsv_ledger *l);
uint64_t rsv_used_inodes(const struct rsv_ledger *l);
uint64_t rsv_nr_inodes(const struct rsv_ledger *l);
uint64_t rsv_enospc_count(const struct rsv_ledger *l, enum rsv_event ev);
const char *rsv_event_name(enum rsv_event ev);	/* "write", "truncate", ... */
/* statfs figures: f_bsize = f_frsize = 4096, f_blocks = capacity,
 * f_bfree = f_bavail = capacity - reserved (0 if negative),
 * f_files = nr_inodes, f_ffree = f_favail = nr_inodes - used (0 if negative),
 * f_namemax = 255.  Other fields are left untouched. */
void rsv_statfs(const struct rsv_ledger *l, struct statvfs *st);

/* ---- option values (tmpfs syntax) ------------------------------------- */

/* "size=": a number of bytes with an optional k/m/g/t/p/e suffix (either
 * case, powers of 1024), or "N%" of @backing_bytes.  Rounded up to whole
 * pages into *pages.  Returns 0, or -EINVAL for anything malformed, empty,
 * zero, negative, with trailing junk, or overflowing. */
int rsv_parse_size(const char *s, uint64_t backing_bytes, uint64_t *pages);
/* "nr_inodes=": a count with an optional k/m/g suffix, or "N%" of
 * @backing_inodes.  0 is rejected.  Returns 0 or -EINVAL. */
int rsv_parse_count(const char *s, uint64_t backing_inodes, uint64_t *count);
/* "reserve=": "eof" or "write".  Returns 0 or -EINVAL. */
int rsv_parse_mode(const char *s, enum rsv_mode *mode);
const char *rsv_mode_name(enum rsv_mode mode);

#endif /* RESERVE_H */
