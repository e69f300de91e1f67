/* reserve/map.c — sets of page numbers as sorted, disjoint, non-adjacent
 * extents [start, end).
 *
 * The extents live in one sorted array: lookups are a binary search, an
 * insertion or a removal is one memmove.  Files change their reservation in
 * large contiguous runs (extending writes, ftruncate, fallocate), so the
 * array stays tiny in practice, and a contiguous run of any length costs one
 * 16-byte extent.
 *
 * Every range is half-open and may reach UINT64_MAX; the code never computes
 * end + 1 or start - 1, so no arithmetic here can overflow.
 */
#include <string.h>

#include <glib.h>

#include "reserve.h"

/* Smallest array worth allocating; below this, shrinking is not worth it. */
#define RSV_MAP_MIN_CAP 4u

void rsv_map_init(struct rsv_map *m)
{
	m->ext = NULL;
	m->n = 0;
	m->cap = 0;
	m->pages = 0;
}

void rsv_map_clear(struct rsv_map *m)
{
	g_free(m->ext);
	rsv_map_init(m);
}

size_t rsv_map_bytes(const struct rsv_map *m)
{
	return (size_t)m->cap * sizeof(struct rsv_extent);
}

/* Binary search: the index of the first extent whose start (@by_start) or
 * end is > @page, or >= @page with @inclusive; m->n if none. */
static uint32_t rsv_search(const struct rsv_map *m, uint64_t page, bool by_start, bool inclusive)
{
	uint32_t lo = 0, hi = m->n;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		uint64_t key = by_start ? m->ext[mid].start : m->ext[mid].end;

		if (key > page || (inclusive && key == page))
			hi = mid;
		else
			lo = mid + 1;
	}
	return lo;
}

/* The first extent whose end is > @page: the only extent that can contain
 * @page, or else the first one after it. */
static uint32_t rsv_first_end_after(const struct rsv_map *m, uint64_t page)
{
	return rsv_search(m, page, false, false);
}

/* As above, but an extent ending exactly at @page (adjacent to a range
 * starting there) counts too. */
static uint32_t rsv_first_end_from(const struct rsv_map *m, uint64_t page)
{
	return rsv_search(m, page, false, true);
}

static uint32_t rsv_first_start_after(const struct rsv_map *m, uint64_t page)
{
	return rsv_search(m, page, true, false);
}

static uint32_t rsv_first_start_from(const struct rsv_map *m, uint64_t page)
{
	return rsv_search(m, page, true, true);
}

static inline uint64_t rsv_max(uint64_t a, uint64_t b) { return a > b ? a : b; }
static inline uint64_t rsv_min(uint64_t a, uint64_t b) { return a < b ? a : b; }

/* Makes room for @want extents.  Doubling keeps a run of insertions
 * amortised O(1) in reallocations. */
static void rsv_map_reserve(struct rsv_map *m, uint64_t want)
{
	uint64_t cap;

	if (want <= m->cap)
		return;
	/* 2^32 extents would be 64 GiB of array: treat it like an allocation
	 * failure, which GLib also treats as fatal. */
	if (want > UINT32_MAX)
		g_error("rsv_map: more than %u extents", UINT32_MAX);
	cap = m->cap ? m->cap : RSV_MAP_MIN_CAP;
	while (cap < want)
		cap *= 2;
	if (cap > UINT32_MAX)
		cap = UINT32_MAX;
	m->ext = g_realloc_n(m->ext, cap, sizeof(*m->ext));
	m->cap = (uint32_t)cap;
}

/* Gives memory back once the map has become much smaller than its array,
 * so a file that was fragmented once and then filled does not keep paying.
 * Halving at a quarter leaves hysteresis: no realloc ping-pong. */
static void rsv_map_maybe_shrink(struct rsv_map *m)
{
	uint32_t cap;

	if (m->n == 0) {
		g_free(m->ext);
		m->ext = NULL;
		m->cap = 0;
		return;
	}
	if (m->cap <= RSV_MAP_MIN_CAP || m->n > m->cap / 4)
		return;
	cap = m->n * 2;
	if (cap < RSV_MAP_MIN_CAP)
		cap = RSV_MAP_MIN_CAP;
	m->ext = g_realloc_n(m->ext, cap, sizeof(*m->ext));
	m->cap = cap;
}

/* Replaces the extents [i, j) with the @k extents in @repl (k <= 2). */
static void rsv_map_splice(struct rsv_map *m, uint32_t i, uint32_t j,
			   const struct rsv_extent *repl, uint32_t k)
{
	uint32_t tail = m->n - j;

	g_assert(i <= j && j <= m->n);
	if (k > j - i)
		rsv_map_reserve(m, (uint64_t)m->n + (k - (j - i)));
	if (tail && i + k != j)
		memmove(&m->ext[i + k], &m->ext[j], (size_t)tail * sizeof(*m->ext));
	if (k)
		memcpy(&m->ext[i], repl, (size_t)k * sizeof(*m->ext));
	m->n = i + k + tail;
	if (k < j - i)
		rsv_map_maybe_shrink(m);
}

bool rsv_map_contains(const struct rsv_map *m, uint64_t page)
{
	uint32_t i = rsv_first_end_after(m, page);

	return i < m->n && m->ext[i].start <= page;
}

uint64_t rsv_map_count_present(const struct rsv_map *m, uint64_t start, uint64_t end)
{
	uint64_t sum = 0;
	uint32_t i;

	if (start >= end)
		return 0;
	for (i = rsv_first_end_after(m, start); i < m->n && m->ext[i].start < end; i++)
		sum += rsv_min(end, m->ext[i].end) - rsv_max(start, m->ext[i].start);
	return sum;
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
	uint32_t i;

	if (start >= end)
		return start;
	/* Walk gap, extent, gap, ... from @start: each gap spends budget,
	 * each extent is free.  Stops within the first gap the budget
	 * cannot cover, so the work is bounded by the extents crossed. */
	for (i = rsv_first_end_after(m, start); pos < end; i++) {
		uint64_t gap_end = i < m->n ? rsv_min(m->ext[i].start, end) : end;

		if (gap_end > pos) {
			if (gap_end - pos > budget)
				return pos + budget;
			budget -= gap_end - pos;
			pos = gap_end;
		}
		if (i >= m->n)
			break;
		pos = rsv_min(m->ext[i].end, end);
	}
	return end;
}

uint64_t rsv_map_add(struct rsv_map *m, uint64_t start, uint64_t end)
{
	struct rsv_extent merged = { start, end };
	uint64_t present;
	uint32_t i, j;

	if (start >= end)
		return 0;
	/* Extents [i, j) overlap or touch [start, end): they all fold into
	 * one, which is what keeps the extents non-adjacent. */
	i = rsv_first_end_from(m, start);
	j = rsv_first_start_after(m, end);
	present = rsv_map_count_present(m, start, end);
	if (i < j) {
		merged.start = rsv_min(start, m->ext[i].start);
		merged.end = rsv_max(end, m->ext[j - 1].end);
	}
	rsv_map_splice(m, i, j, &merged, 1);
	m->pages += (end - start) - present;
	return (end - start) - present;
}

uint64_t rsv_map_remove(struct rsv_map *m, uint64_t start, uint64_t end)
{
	struct rsv_extent keep[2];
	uint64_t removed;
	uint32_t i, j, k = 0;

	if (start >= end)
		return 0;
	/* Extents [i, j) overlap [start, end); what sticks out on either side
	 * survives, so removing from the middle of one extent splits it. */
	i = rsv_first_end_after(m, start);
	j = rsv_first_start_from(m, end);
	if (i >= j)
		return 0;
	removed = rsv_map_count_present(m, start, end);
	if (m->ext[i].start < start)
		keep[k++] = (struct rsv_extent){ m->ext[i].start, start };
	if (m->ext[j - 1].end > end)
		keep[k++] = (struct rsv_extent){ end, m->ext[j - 1].end };
	rsv_map_splice(m, i, j, keep, k);
	g_assert(m->pages >= removed);
	m->pages -= removed;
	return removed;
}

int rsv_map_foreach_missing(const struct rsv_map *m, uint64_t start, uint64_t end,
			    rsv_range_cb cb, void *arg)
{
	uint64_t pos = start;
	uint32_t i;
	int ret;

	if (start >= end)
		return 0;
	for (i = rsv_first_end_after(m, start); pos < end; i++) {
		uint64_t gap_end = i < m->n ? rsv_min(m->ext[i].start, end) : end;

		if (gap_end > pos) {
			ret = cb(pos, gap_end, arg);
			if (ret)
				return ret;
			pos = gap_end;
		}
		if (i >= m->n)
			break;
		pos = rsv_min(m->ext[i].end, end);
	}
	return 0;
}

int rsv_map_foreach_present(const struct rsv_map *m, uint64_t start, uint64_t end,
			    rsv_range_cb cb, void *arg)
{
	uint32_t i;
	int ret;

	if (start >= end)
		return 0;
	for (i = rsv_first_end_after(m, start); i < m->n && m->ext[i].start < end; i++) {
		ret = cb(rsv_max(start, m->ext[i].start), rsv_min(end, m->ext[i].end), arg);
		if (ret)
			return ret;
	}
	return 0;
}
