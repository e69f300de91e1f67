/* reserve/map.c — sets of page numbers as sorted, disjoint, non-adjacent
 * extents [start, end).
 *
 * The extents are kept in order in chunks of at most RSV_CHUNK_MAX.  A
 * lookup is a binary search over the chunks (by their last extent) and one
 * within a chunk; an insertion or a removal moves the tail of one chunk.  A
 * chunk that grows past RSV_CHUNK_MAX splits in two, one that shrinks below
 * RSV_CHUNK_MIN joins a neighbour when the two fit, so a map of n extents
 * has O(n / RSV_CHUNK_MAX) chunks whatever its history.
 *
 * Files change their reservation mostly in large contiguous runs, so most
 * maps are one chunk of one extent, kept inline in the map.  The chunks are
 * for the others: a sparse file written at random pages (reserve=write), or
 * a file's dirty pages under random writes.  With one sorted array, every
 * such write moved half of it: 20% of the daemon's time went to memmove
 * after 15 s of random 4 KiB writes to a sparse 4 GiB file.
 *
 * Every range is half-open and may reach UINT64_MAX; the code never computes
 * end + 1 or start - 1, so no arithmetic here can overflow.
 */
#include <string.h>

#include <glib.h>

#include "reserve.h"

#define RSV_CHUNK_MAX 128u		/* extents; 2 KiB moved at most */
#define RSV_CHUNK_MIN (RSV_CHUNK_MAX / 4)
#define RSV_CHUNK_MIN_CAP 4u		/* smallest array worth allocating */
#define RSV_TOP_MIN_CAP 4u

struct rsv_chunk {
	uint32_t n;			/* extents in use; never 0 inside a map */
	uint32_t cap;			/* extents allocated */
	struct rsv_extent ext[];
};

/* Every inode has several maps: they cost what the one sorted array did. */
G_STATIC_ASSERT(sizeof(struct rsv_map) <= 3 * sizeof(uint64_t));

/* The array of chunks, from the second chunk on. */
struct rsv_top {
	uint32_t nchunks;		/* >= 2 */
	uint32_t cap;
	struct rsv_chunk *ch[];
};

/* Extent @i of chunk @c; {nchunks, 0} is the end. */
struct rsv_pos {
	uint32_t c, i;
};

static inline uint64_t rsv_max(uint64_t a, uint64_t b) { return a > b ? a : b; }
static inline uint64_t rsv_min(uint64_t a, uint64_t b) { return a < b ? a : b; }

static inline struct rsv_chunk **map_chunks(struct rsv_map *m)
{
	return m->many ? m->u.top->ch : &m->u.one;
}

static inline struct rsv_chunk *const *map_chunks_c(const struct rsv_map *m)
{
	return m->many ? m->u.top->ch : &m->u.one;
}

static inline uint32_t map_nchunks(const struct rsv_map *m)
{
	return m->many ? m->u.top->nchunks : m->u.one != NULL;
}

static inline bool pos_end(const struct rsv_map *m, struct rsv_pos p)
{
	return p.c >= map_nchunks(m);
}

static inline bool pos_before(struct rsv_pos a, struct rsv_pos b)
{
	return a.c < b.c || (a.c == b.c && a.i < b.i);
}

static inline const struct rsv_extent *pos_ext(const struct rsv_map *m, struct rsv_pos p)
{
	return &map_chunks_c(m)[p.c]->ext[p.i];
}

static inline void pos_next(const struct rsv_map *m, struct rsv_pos *p)
{
	if (++p->i == map_chunks_c(m)[p->c]->n) {
		p->c++;
		p->i = 0;
	}
}

/* The extent before @p, which must not be the first. */
static inline const struct rsv_extent *pos_ext_before(const struct rsv_map *m, struct rsv_pos p)
{
	if (p.i > 0)
		return &map_chunks_c(m)[p.c]->ext[p.i - 1];
	return &map_chunks_c(m)[p.c - 1]->ext[map_chunks_c(m)[p.c - 1]->n - 1];
}

void rsv_map_init(struct rsv_map *m)
{
	m->u.one = NULL;
	m->n = 0;
	m->many = 0;
	m->pages = 0;
}

void rsv_map_clear(struct rsv_map *m)
{
	struct rsv_chunk **chs = map_chunks(m);

	for (uint32_t c = 0; c < map_nchunks(m); c++)
		g_free(chs[c]);
	if (m->many)
		g_free(m->u.top);
	rsv_map_init(m);
}

size_t rsv_map_bytes(const struct rsv_map *m)
{
	struct rsv_chunk *const *chs = map_chunks_c(m);
	size_t bytes = m->many ? sizeof(struct rsv_top) + (size_t)m->u.top->cap * sizeof(*chs) : 0;

	for (uint32_t c = 0; c < map_nchunks(m); c++)
		bytes += sizeof(struct rsv_chunk) + (size_t)chs[c]->cap * sizeof(struct rsv_extent);
	return bytes;
}

/* ---- chunks and the array of them --------------------------------------- */

static struct rsv_chunk *chunk_resize(struct rsv_chunk *ch, uint32_t cap)
{
	ch = g_realloc(ch, sizeof(*ch) + (size_t)cap * sizeof(struct rsv_extent));
	ch->cap = cap;
	return ch;
}

/* Room for @want extents (at most RSV_CHUNK_MAX + 2); doubling keeps a run
 * of insertions amortised O(1) in reallocations. */
static struct rsv_chunk *chunk_reserve(struct rsv_chunk *ch, uint32_t want)
{
	uint32_t cap = ch && ch->cap ? ch->cap : RSV_CHUNK_MIN_CAP;

	if (ch && want <= ch->cap)
		return ch;
	while (cap < want)
		cap *= 2;
	return chunk_resize(ch, cap);
}

static struct rsv_chunk *chunk_new(uint32_t want)
{
	struct rsv_chunk *ch = chunk_reserve(NULL, want);

	ch->n = 0;
	return ch;
}

/* Gives memory back once a chunk has become much smaller than its array;
 * halving at a quarter leaves hysteresis: no realloc ping-pong. */
static struct rsv_chunk *chunk_fit(struct rsv_chunk *ch)
{
	if (ch->cap <= RSV_CHUNK_MIN_CAP || ch->n > ch->cap / 4)
		return ch;
	return chunk_resize(ch, MAX(ch->n * 2, RSV_CHUNK_MIN_CAP));
}

static struct rsv_top *top_resize(struct rsv_top *t, uint32_t cap)
{
	t = g_realloc(t, sizeof(*t) + (size_t)cap * sizeof(t->ch[0]));
	t->cap = cap;
	return t;
}

/* Inserts @ch as chunk number @c.  The array exists from the second chunk
 * on; one chunk lives inline in the map. */
static void top_insert(struct rsv_map *m, uint32_t c, struct rsv_chunk *ch)
{
	struct rsv_top *t;

	if (!m->many && !m->u.one) {
		m->u.one = ch;
		return;
	}
	if (!m->many) {
		struct rsv_chunk *one = m->u.one;

		t = top_resize(NULL, RSV_TOP_MIN_CAP);
		t->ch[0] = one;
		t->nchunks = 1;
		m->u.top = t;
		m->many = 1;
	} else if (m->u.top->nchunks == m->u.top->cap) {
		/* 2^31 chunks would be far more memory than there is: treat it
		 * like an allocation failure, which GLib also treats as fatal. */
		if (m->u.top->cap > UINT32_MAX / 2)
			g_error("rsv_map: more than %u chunks", m->u.top->cap);
		m->u.top = top_resize(m->u.top, m->u.top->cap * 2);
	}
	t = m->u.top;
	memmove(&t->ch[c + 1], &t->ch[c], (size_t)(t->nchunks - c) * sizeof(t->ch[0]));
	t->ch[c] = ch;
	t->nchunks++;
}

/* Takes chunks [c, c + k) out of the array; the caller has freed them. */
static void top_remove(struct rsv_map *m, uint32_t c, uint32_t k)
{
	struct rsv_top *t = m->u.top;

	if (!m->many) {			/* the inline chunk */
		g_assert(c == 0 && k <= 1);
		if (k)
			m->u.one = NULL;
		return;
	}
	memmove(&t->ch[c], &t->ch[c + k], (size_t)(t->nchunks - c - k) * sizeof(t->ch[0]));
	t->nchunks -= k;
	if (t->nchunks <= 1) {
		m->u.one = t->nchunks ? t->ch[0] : NULL;
		m->many = 0;
		g_free(t);
	} else if (t->cap > RSV_TOP_MIN_CAP && t->nchunks <= t->cap / 4) {
		m->u.top = top_resize(t, t->cap / 2);
	}
}

/* Chunk @c has just changed: free it if empty, split it if too big, join
 * it to its smaller neighbour if both are small, else fit its array. */
static void chunk_rebalance(struct rsv_map *m, uint32_t c)
{
	struct rsv_chunk **chs = map_chunks(m);
	struct rsv_chunk *ch = chs[c];

	if (ch->n == 0) {
		g_free(ch);
		top_remove(m, c, 1);
	} else if (ch->n > RSV_CHUNK_MAX) {
		uint32_t half = ch->n / 2;
		struct rsv_chunk *hi = chunk_new(ch->n - half);

		memcpy(hi->ext, &ch->ext[half], (size_t)(ch->n - half) * sizeof(*ch->ext));
		hi->n = ch->n - half;
		ch->n = half;
		chs[c] = chunk_fit(ch);
		top_insert(m, c + 1, hi);
	} else if (ch->n < RSV_CHUNK_MIN && map_nchunks(m) > 1) {
		uint32_t a = c, b = c + 1;	/* b joins a */

		if (c + 1 == map_nchunks(m) || (c > 0 && chs[c - 1]->n < chs[c + 1]->n)) {
			a = c - 1;
			b = c;
		}
		if (chs[a]->n + chs[b]->n <= RSV_CHUNK_MAX / 4 * 3) {
			chs[a] = chunk_reserve(chs[a], chs[a]->n + chs[b]->n);
			memcpy(&chs[a]->ext[chs[a]->n], chs[b]->ext, (size_t)chs[b]->n * sizeof(*ch->ext));
			chs[a]->n += chs[b]->n;
			g_free(chs[b]);
			top_remove(m, b, 1);
		} else {
			chs[c] = chunk_fit(ch);
		}
	} else {
		chs[c] = chunk_fit(ch);
	}
}

/* Replaces extents [a, b) of chunk @c with the @k extents in @repl. */
static void chunk_splice(struct rsv_map *m, uint32_t c, uint32_t a, uint32_t b,
			 const struct rsv_extent *repl, uint32_t k)
{
	struct rsv_chunk **chs = map_chunks(m);
	struct rsv_chunk *ch = chs[c];
	uint32_t tail = ch->n - b;

	g_assert(a <= b && b <= ch->n);
	if (k > b - a) {
		/* 2^32 extents would be 64 GiB of them: as an allocation failure */
		if (m->n > UINT32_MAX - k)
			g_error("rsv_map: more than %u extents", UINT32_MAX);
		chs[c] = ch = chunk_reserve(ch, ch->n + (k - (b - a)));
	}
	if (tail && a + k != b)
		memmove(&ch->ext[a + k], &ch->ext[b], (size_t)tail * sizeof(*ch->ext));
	if (k)
		memcpy(&ch->ext[a], repl, (size_t)k * sizeof(*repl));
	ch->n = a + k + tail;
	m->n = m->n - (b - a) + k;
	chunk_rebalance(m, c);
}

/* Replaces the extents [i, j) with the @k extents in @repl (k <= 2), which
 * belong where they were. */
static void map_splice(struct rsv_map *m, struct rsv_pos i, struct rsv_pos j,
		       const struct rsv_extent *repl, uint32_t k)
{
	struct rsv_chunk **chs;
	uint32_t c;

	if (map_nchunks(m) == 0) {
		if (k) {
			top_insert(m, 0, chunk_new(k));
			chunk_splice(m, 0, 0, 0, repl, k);
		}
		return;
	}
	if (pos_end(m, i)) {		/* after the last extent */
		c = map_nchunks(m) - 1;
		chunk_splice(m, c, map_chunks(m)[c]->n, map_chunks(m)[c]->n, repl, k);
		return;
	}
	if (j.c == i.c) {
		chunk_splice(m, i.c, i.i, j.i, repl, k);
		return;
	}
	/* [i, j) runs past chunk i.c: the head of chunk j.c goes, then the
	 * chunks in between, then the tail of chunk i.c, where @repl lands. */
	chs = map_chunks(m);
	if (!pos_end(m, j) && j.i > 0) {
		struct rsv_chunk *ch = chs[j.c];

		memmove(ch->ext, &ch->ext[j.i], (size_t)(ch->n - j.i) * sizeof(*ch->ext));
		ch->n -= j.i;
		m->n -= j.i;
		chs[j.c] = chunk_fit(ch);
	}
	for (c = i.c + 1; c < j.c; c++) {
		m->n -= chs[c]->n;
		g_free(chs[c]);
	}
	if (j.c > i.c + 1)
		top_remove(m, i.c + 1, j.c - i.c - 1);
	chunk_splice(m, i.c, i.i, map_chunks(m)[i.c]->n, repl, k);
}

/* ---- lookups -------------------------------------------------------------- */

static inline bool rsv_key_after(const struct rsv_extent *e, uint64_t page, bool by_start,
				 bool inclusive)
{
	uint64_t key = by_start ? e->start : e->end;

	return key > page || (inclusive && key == page);
}

/* The first extent whose start (@by_start) or end is > @page, or >= @page
 * with @inclusive; the end if none.  Starts and ends both ascend through
 * the chunks, so the chunk is the first whose last extent qualifies. */
static struct rsv_pos rsv_search(const struct rsv_map *m, uint64_t page, bool by_start,
				 bool inclusive)
{
	struct rsv_chunk *const *chs = map_chunks_c(m);
	const struct rsv_chunk *ch;
	uint32_t lo = 0, hi = map_nchunks(m);

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;

		if (rsv_key_after(&chs[mid]->ext[chs[mid]->n - 1], page, by_start, inclusive))
			hi = mid;
		else
			lo = mid + 1;
	}
	if (lo == map_nchunks(m))
		return (struct rsv_pos){ lo, 0 };
	ch = chs[lo];
	for (uint32_t a = 0, b = ch->n - 1;; ) {
		uint32_t mid;

		if (a == b)
			return (struct rsv_pos){ lo, a };
		mid = a + (b - a) / 2;
		if (rsv_key_after(&ch->ext[mid], page, by_start, inclusive))
			b = mid;
		else
			a = mid + 1;
	}
}

/* The first extent whose end is > @page: the only extent that can contain
 * @page, or else the first one after it. */
static struct rsv_pos rsv_first_end_after(const struct rsv_map *m, uint64_t page)
{
	return rsv_search(m, page, false, false);
}

/* As above, but an extent ending exactly at @page (adjacent to a range
 * starting there) counts too. */
static struct rsv_pos rsv_first_end_from(const struct rsv_map *m, uint64_t page)
{
	return rsv_search(m, page, false, true);
}

static struct rsv_pos rsv_first_start_after(const struct rsv_map *m, uint64_t page)
{
	return rsv_search(m, page, true, false);
}

static struct rsv_pos rsv_first_start_from(const struct rsv_map *m, uint64_t page)
{
	return rsv_search(m, page, true, true);
}

bool rsv_map_contains(const struct rsv_map *m, uint64_t page)
{
	struct rsv_pos p = rsv_first_end_after(m, page);

	return !pos_end(m, p) && pos_ext(m, p)->start <= page;
}

/* Pages of [start, end) in the extents from @p on, where @p is no later
 * than the first extent ending past @start (one that only touches the range
 * adds nothing): what add and remove count without a third search. */
static uint64_t map_present_from(const struct rsv_map *m, struct rsv_pos p, uint64_t start,
				 uint64_t end)
{
	uint64_t sum = 0;

	for (; !pos_end(m, p); pos_next(m, &p)) {
		const struct rsv_extent *e = pos_ext(m, p);

		if (e->start >= end)
			break;
		if (e->end > start)
			sum += rsv_min(end, e->end) - rsv_max(start, e->start);
	}
	return sum;
}

uint64_t rsv_map_count_present(const struct rsv_map *m, uint64_t start, uint64_t end)
{
	if (start >= end)
		return 0;
	return map_present_from(m, rsv_first_end_after(m, start), start, end);
}

uint64_t rsv_map_count_missing(const struct rsv_map *m, uint64_t start, uint64_t end)
{
	if (start >= end)
		return 0;
	return (end - start) - rsv_map_count_present(m, start, end);
}

uint64_t rsv_map_limit_missing(const struct rsv_map *m, uint64_t start,
			       uint64_t end, uint64_t budget)
{
	uint64_t pos = start;
	struct rsv_pos p;

	if (start >= end)
		return start;
	/* Walk gap, extent, gap, ... from @start: each gap spends budget,
	 * each extent is free.  Stops within the first gap the budget
	 * cannot cover, so the work is bounded by the extents crossed. */
	for (p = rsv_first_end_after(m, start); pos < end; pos_next(m, &p)) {
		bool last = pos_end(m, p);
		uint64_t gap_end = last ? end : rsv_min(pos_ext(m, p)->start, end);

		if (gap_end > pos) {
			if (gap_end - pos > budget)
				return pos + budget;
			budget -= gap_end - pos;
			pos = gap_end;
		}
		if (last)
			break;
		pos = rsv_min(pos_ext(m, p)->end, end);
	}
	return end;
}

bool rsv_map_span(const struct rsv_map *m, uint64_t *start, uint64_t *end)
{
	struct rsv_chunk *const *chs = map_chunks_c(m);
	const struct rsv_chunk *last;

	if (map_nchunks(m) == 0)
		return false;
	last = chs[map_nchunks(m) - 1];
	*start = chs[0]->ext[0].start;
	*end = last->ext[last->n - 1].end;
	return true;
}

/* ---- changes -------------------------------------------------------------- */

uint64_t rsv_map_add(struct rsv_map *m, uint64_t start, uint64_t end)
{
	struct rsv_extent merged = { start, end };
	struct rsv_pos i, j;
	uint64_t present;

	if (start >= end)
		return 0;
	/* Extents [i, j) overlap or touch [start, end): they all fold into
	 * one, which is what keeps the extents non-adjacent. */
	i = rsv_first_end_from(m, start);
	j = rsv_first_start_after(m, end);
	present = map_present_from(m, i, start, end);
	if (present == end - start)
		return 0;		/* inside one extent already */
	if (pos_before(i, j)) {
		merged.start = rsv_min(start, pos_ext(m, i)->start);
		merged.end = rsv_max(end, pos_ext_before(m, j)->end);
	}
	map_splice(m, i, j, &merged, 1);
	m->pages += (end - start) - present;
	return (end - start) - present;
}

uint64_t rsv_map_remove(struct rsv_map *m, uint64_t start, uint64_t end)
{
	struct rsv_extent keep[2];
	struct rsv_pos i, j;
	uint64_t removed;
	uint32_t k = 0;

	if (start >= end)
		return 0;
	/* Extents [i, j) overlap [start, end); what sticks out on either side
	 * survives, so removing from the middle of one extent splits it. */
	i = rsv_first_end_after(m, start);
	j = rsv_first_start_from(m, end);
	if (!pos_before(i, j))
		return 0;
	removed = map_present_from(m, i, start, end);
	if (pos_ext(m, i)->start < start)
		keep[k++] = (struct rsv_extent){ pos_ext(m, i)->start, start };
	if (pos_ext_before(m, j)->end > end)
		keep[k++] = (struct rsv_extent){ end, pos_ext_before(m, j)->end };
	map_splice(m, i, j, keep, k);
	g_assert(m->pages >= removed);
	m->pages -= removed;
	return removed;
}

uint64_t rsv_map_move(struct rsv_map *dst, struct rsv_map *src)
{
	uint64_t added = 0;
	struct rsv_pos p;

	if (map_nchunks(dst) == 0) {
		*dst = *src;		/* nothing in the map points into it */
		rsv_map_init(src);
		return dst->pages;
	}
	for (p = (struct rsv_pos){ 0, 0 }; !pos_end(src, p); pos_next(src, &p))
		added += rsv_map_add(dst, pos_ext(src, p)->start, pos_ext(src, p)->end);
	rsv_map_clear(src);
	return added;
}

/* ---- walks ---------------------------------------------------------------- */

int rsv_map_foreach_missing(const struct rsv_map *m, uint64_t start, uint64_t end,
			    rsv_range_cb cb, void *arg)
{
	uint64_t pos = start;
	struct rsv_pos p;
	int ret;

	if (start >= end)
		return 0;
	for (p = rsv_first_end_after(m, start); pos < end; pos_next(m, &p)) {
		bool last = pos_end(m, p);
		uint64_t gap_end = last ? end : rsv_min(pos_ext(m, p)->start, end);

		if (gap_end > pos) {
			ret = cb(pos, gap_end, arg);
			if (ret)
				return ret;
			pos = gap_end;
		}
		if (last)
			break;
		pos = rsv_min(pos_ext(m, p)->end, end);
	}
	return 0;
}

int rsv_map_foreach_present(const struct rsv_map *m, uint64_t start, uint64_t end,
			    rsv_range_cb cb, void *arg)
{
	struct rsv_pos p;
	int ret;

	if (start >= end)
		return 0;
	for (p = rsv_first_end_after(m, start); !pos_end(m, p); pos_next(m, &p)) {
		const struct rsv_extent *e = pos_ext(m, p);

		if (e->start >= end)
			break;
		ret = cb(rsv_max(start, e->start), rsv_min(end, e->end), arg);
		if (ret)
			return ret;
	}
	return 0;
}

uint32_t rsv_map_check(const struct rsv_map *m)
{
	struct rsv_chunk *const *chs = map_chunks_c(m);
	const struct rsv_extent *prev = NULL;
	uint32_t nchunks = map_nchunks(m);
	uint64_t n = 0, pages = 0;

	if (m->many)
		g_assert(nchunks >= 2 && nchunks <= m->u.top->cap);
	for (uint32_t c = 0; c < nchunks; c++) {
		const struct rsv_chunk *ch = chs[c];

		g_assert(ch->n >= 1 && ch->n <= ch->cap && ch->n <= RSV_CHUNK_MAX);
		for (uint32_t i = 0; i < ch->n; i++) {
			const struct rsv_extent *e = &ch->ext[i];

			g_assert(e->start < e->end);
			g_assert(!prev || prev->end < e->start);
			pages += e->end - e->start;
			prev = e;
		}
		n += ch->n;
	}
	g_assert(n == m->n);
	g_assert(pages == m->pages);
	return nchunks;
}
