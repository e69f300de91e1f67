/* Unit tests for reserve/: page extent maps, the capacity ledger, option
 * parsing.  GLib GTest, TAP output under `meson test`. */
#include <errno.h>
#include <string.h>

#include <glib.h>

#include "reserve.h"

/* ---- helpers ------------------------------------------------------------ */

/* Gathers a map's extents (its maximal present ranges) as uint64 pairs. */
static int extents_cb(uint64_t start, uint64_t end, void *arg)
{
	g_array_append_val((GArray *)arg, start);
	g_array_append_val((GArray *)arg, end);
	return 0;
}

/* The map's structural invariants (rsv_map_check: sorted, non-empty,
 * disjoint, non-adjacent extents in non-empty chunks, adding up to m->pages
 * and m->n), and the walk seeing the same extents. */
static void check_map(const struct rsv_map *m)
{
	GArray *ext = g_array_new(FALSE, FALSE, sizeof(uint64_t));
	uint64_t sum = 0;

	rsv_map_check(m);
	if (m->n == 0)
		g_assert_cmpuint(rsv_map_bytes(m), ==, 0);
	rsv_map_foreach_present(m, 0, UINT64_MAX, extents_cb, ext);
	g_assert_cmpuint(ext->len / 2, ==, m->n);
	for (guint i = 0; i < ext->len; i += 2)
		sum += g_array_index(ext, uint64_t, i + 1) - g_array_index(ext, uint64_t, i);
	g_assert_cmpuint(sum, ==, m->pages);
	g_assert_cmpuint(rsv_map_pages(m), ==, m->pages);
	g_array_free(ext, TRUE);
}

static void check_extents(const struct rsv_map *m, const uint64_t *pairs, uint32_t n)
{
	GArray *ext = g_array_new(FALSE, FALSE, sizeof(uint64_t));
	uint64_t first, end;

	check_map(m);
	g_assert_cmpuint(m->n, ==, n);
	rsv_map_foreach_present(m, 0, UINT64_MAX, extents_cb, ext);
	g_assert_cmpmem(ext->data, ext->len * sizeof(uint64_t), pairs, 2 * n * sizeof(uint64_t));
	g_assert_cmpint(rsv_map_span(m, &first, &end), ==, n > 0);
	if (n) {
		g_assert_cmpuint(first, ==, pairs[0]);
		g_assert_cmpuint(end, ==, pairs[2 * n - 1]);
	}
	g_array_free(ext, TRUE);
}

/* Collects callback ranges into a GArray of uint64 pairs; stops (returns
 * the stop value) once the array holds stop_after ranges, if set. */
struct collect {
	GArray *r;
	guint stop_after;
	int stop_value;
};

static int collect_cb(uint64_t start, uint64_t end, void *arg)
{
	struct collect *c = arg;

	g_assert_cmpuint(start, <, end);
	g_array_append_val(c->r, start);
	g_array_append_val(c->r, end);
	if (c->stop_after && c->r->len / 2 >= c->stop_after)
		return c->stop_value;
	return 0;
}

static void collect_init(struct collect *c)
{
	c->r = g_array_new(FALSE, FALSE, sizeof(uint64_t));
	c->stop_after = 0;
	c->stop_value = 0;
}

static void check_ranges(const struct collect *c, const uint64_t *pairs, guint n)
{
	guint i;

	g_assert_cmpuint(c->r->len, ==, 2 * n);
	for (i = 0; i < 2 * n; i++)
		g_assert_cmpuint(g_array_index(c->r, uint64_t, i), ==, pairs[i]);
}

/* ---- maps --------------------------------------------------------------- */

static void test_page_helpers(void)
{
	g_assert_cmpuint(rsv_page_down(0), ==, 0);
	g_assert_cmpuint(rsv_page_down(4095), ==, 0);
	g_assert_cmpuint(rsv_page_down(4096), ==, 1);
	g_assert_cmpuint(rsv_page_up(0), ==, 0);
	g_assert_cmpuint(rsv_page_up(1), ==, 1);
	g_assert_cmpuint(rsv_page_up(4096), ==, 1);
	g_assert_cmpuint(rsv_page_up(4097), ==, 2);
	g_assert_cmpuint(rsv_page_up(UINT64_MAX), ==, (UINT64_MAX >> 12) + 1);
}

static void test_map_empty(void)
{
	struct rsv_map m = RSV_MAP_INIT;
	struct collect c;

	check_map(&m);
	g_assert_cmpuint(rsv_map_pages(&m), ==, 0);
	g_assert_cmpuint(rsv_map_bytes(&m), ==, 0);
	g_assert_false(rsv_map_contains(&m, 0));
	g_assert_false(rsv_map_contains(&m, UINT64_MAX));
	g_assert_cmpuint(rsv_map_count_present(&m, 0, 100), ==, 0);
	g_assert_cmpuint(rsv_map_count_missing(&m, 0, 100), ==, 100);
	g_assert_cmpuint(rsv_map_count_missing(&m, 0, UINT64_MAX), ==, UINT64_MAX);
	g_assert_cmpuint(rsv_map_limit_missing(&m, 5, 100, 0), ==, 5);
	g_assert_cmpuint(rsv_map_limit_missing(&m, 5, 100, 10), ==, 15);
	g_assert_cmpuint(rsv_map_limit_missing(&m, 5, 100, 1000), ==, 100);
	g_assert_cmpuint(rsv_map_remove(&m, 0, 100), ==, 0);

	/* start >= end is an empty range everywhere. */
	g_assert_cmpuint(rsv_map_add(&m, 10, 10), ==, 0);
	g_assert_cmpuint(rsv_map_add(&m, 10, 5), ==, 0);
	check_map(&m);
	g_assert_cmpuint(m.n, ==, 0);
	g_assert_cmpuint(rsv_map_count_missing(&m, 10, 5), ==, 0);
	g_assert_cmpuint(rsv_map_count_present(&m, 10, 5), ==, 0);
	g_assert_cmpuint(rsv_map_limit_missing(&m, 10, 10, 3), ==, 10);
	g_assert_cmpuint(rsv_map_limit_missing(&m, 10, 5, 3), ==, 10);

	collect_init(&c);
	g_assert_cmpint(rsv_map_foreach_missing(&m, 3, 9, collect_cb, &c), ==, 0);
	check_ranges(&c, (const uint64_t[]){ 3, 9 }, 1);
	g_array_set_size(c.r, 0);
	g_assert_cmpint(rsv_map_foreach_missing(&m, 9, 3, collect_cb, &c), ==, 0);
	g_assert_cmpint(rsv_map_foreach_present(&m, 0, 100, collect_cb, &c), ==, 0);
	g_assert_cmpuint(c.r->len, ==, 0);
	g_array_free(c.r, TRUE);

	rsv_map_clear(&m);
	check_map(&m);
}

static void test_map_add_merge(void)
{
	struct rsv_map m;

	rsv_map_init(&m);
	g_assert_cmpuint(rsv_map_add(&m, 10, 20), ==, 10);
	check_extents(&m, (const uint64_t[]){ 10, 20 }, 1);
	/* Adjacent on the right merges. */
	g_assert_cmpuint(rsv_map_add(&m, 20, 30), ==, 10);
	check_extents(&m, (const uint64_t[]){ 10, 30 }, 1);
	/* Disjoint on the left, then the gap filled exactly: one extent. */
	g_assert_cmpuint(rsv_map_add(&m, 0, 5), ==, 5);
	check_extents(&m, (const uint64_t[]){ 0, 5, 10, 30 }, 2);
	g_assert_cmpuint(rsv_map_add(&m, 5, 10), ==, 5);
	check_extents(&m, (const uint64_t[]){ 0, 30 }, 1);
	/* Already present: nothing changes. */
	g_assert_cmpuint(rsv_map_add(&m, 3, 17), ==, 0);
	check_extents(&m, (const uint64_t[]){ 0, 30 }, 1);
	/* Overlapping on the right counts only the new pages. */
	g_assert_cmpuint(rsv_map_add(&m, 25, 35), ==, 5);
	check_extents(&m, (const uint64_t[]){ 0, 35 }, 1);
	/* Several extents swallowed by one add. */
	g_assert_cmpuint(rsv_map_add(&m, 40, 50), ==, 10);
	g_assert_cmpuint(rsv_map_add(&m, 60, 70), ==, 10);
	g_assert_cmpuint(rsv_map_add(&m, 80, 90), ==, 10);
	check_extents(&m, (const uint64_t[]){ 0, 35, 40, 50, 60, 70, 80, 90 }, 4);
	g_assert_cmpuint(rsv_map_add(&m, 45, 85), ==, 20);
	check_extents(&m, (const uint64_t[]){ 0, 35, 40, 90 }, 2);
	/* Adjacent on the left of an extent and right of another. */
	g_assert_cmpuint(rsv_map_add(&m, 35, 40), ==, 5);
	check_extents(&m, (const uint64_t[]){ 0, 90 }, 1);
	g_assert_cmpuint(rsv_map_pages(&m), ==, 90);
	/* Insertion in the middle of many. */
	g_assert_cmpuint(rsv_map_add(&m, 200, 210), ==, 10);
	g_assert_cmpuint(rsv_map_add(&m, 100, 110), ==, 10);
	g_assert_cmpuint(rsv_map_add(&m, 150, 151), ==, 1);
	check_extents(&m, (const uint64_t[]){ 0, 90, 100, 110, 150, 151, 200, 210 }, 4);
	/* One add covering everything. */
	g_assert_cmpuint(rsv_map_add(&m, 0, 1000), ==, 1000 - 90 - 10 - 1 - 10);
	check_extents(&m, (const uint64_t[]){ 0, 1000 }, 1);
	rsv_map_clear(&m);
	check_map(&m);
	g_assert_cmpuint(rsv_map_pages(&m), ==, 0);
	/* Reusable after clear. */
	g_assert_cmpuint(rsv_map_add(&m, 7, 8), ==, 1);
	check_extents(&m, (const uint64_t[]){ 7, 8 }, 1);
	rsv_map_clear(&m);
}

static void test_map_remove_split(void)
{
	struct rsv_map m = RSV_MAP_INIT;

	rsv_map_add(&m, 0, 100);
	/* Middle: splits. */
	g_assert_cmpuint(rsv_map_remove(&m, 40, 60), ==, 20);
	check_extents(&m, (const uint64_t[]){ 0, 40, 60, 100 }, 2);
	/* Nothing there. */
	g_assert_cmpuint(rsv_map_remove(&m, 40, 60), ==, 0);
	g_assert_cmpuint(rsv_map_remove(&m, 45, 50), ==, 0);
	g_assert_cmpuint(rsv_map_remove(&m, 100, 200), ==, 0);
	check_extents(&m, (const uint64_t[]){ 0, 40, 60, 100 }, 2);
	/* Head and tail trims. */
	g_assert_cmpuint(rsv_map_remove(&m, 0, 10), ==, 10);
	g_assert_cmpuint(rsv_map_remove(&m, 90, 150), ==, 10);
	check_extents(&m, (const uint64_t[]){ 10, 40, 60, 90 }, 2);
	/* Spanning the gap: trims both. */
	g_assert_cmpuint(rsv_map_remove(&m, 30, 70), ==, 20);
	check_extents(&m, (const uint64_t[]){ 10, 30, 70, 90 }, 2);
	/* Single page splits. */
	g_assert_cmpuint(rsv_map_remove(&m, 20, 21), ==, 1);
	check_extents(&m, (const uint64_t[]){ 10, 20, 21, 30, 70, 90 }, 3);
	/* Exactly one whole extent. */
	g_assert_cmpuint(rsv_map_remove(&m, 21, 30), ==, 9);
	check_extents(&m, (const uint64_t[]){ 10, 20, 70, 90 }, 2);
	/* Empty ranges. */
	g_assert_cmpuint(rsv_map_remove(&m, 15, 15), ==, 0);
	g_assert_cmpuint(rsv_map_remove(&m, 80, 15), ==, 0);
	check_extents(&m, (const uint64_t[]){ 10, 20, 70, 90 }, 2);
	/* Many extents swallowed, keeping partial ends. */
	rsv_map_add(&m, 100, 110);
	rsv_map_add(&m, 120, 130);
	g_assert_cmpuint(rsv_map_remove(&m, 15, 125), ==, 5 + 20 + 10 + 5);
	check_extents(&m, (const uint64_t[]){ 10, 15, 125, 130 }, 2);
	/* Everything: the array is freed. */
	g_assert_cmpuint(rsv_map_remove(&m, 0, UINT64_MAX), ==, 10);
	check_map(&m);
	g_assert_cmpuint(m.n, ==, 0);
	g_assert_cmpuint(rsv_map_bytes(&m), ==, 0);
	rsv_map_clear(&m);
}

static void test_map_counts(void)
{
	struct rsv_map m = RSV_MAP_INIT;

	rsv_map_add(&m, 10, 20);
	rsv_map_add(&m, 30, 40);
	rsv_map_add(&m, 50, 60);
	g_assert_true(rsv_map_contains(&m, 10));
	g_assert_true(rsv_map_contains(&m, 19));
	g_assert_false(rsv_map_contains(&m, 20));
	g_assert_false(rsv_map_contains(&m, 9));
	g_assert_false(rsv_map_contains(&m, 29));
	g_assert_true(rsv_map_contains(&m, 59));
	g_assert_false(rsv_map_contains(&m, 60));
	g_assert_false(rsv_map_contains(&m, UINT64_MAX));

	g_assert_cmpuint(rsv_map_count_present(&m, 0, 100), ==, 30);
	g_assert_cmpuint(rsv_map_count_missing(&m, 0, 100), ==, 70);
	g_assert_cmpuint(rsv_map_count_present(&m, 15, 35), ==, 10);
	g_assert_cmpuint(rsv_map_count_missing(&m, 15, 35), ==, 10);
	g_assert_cmpuint(rsv_map_count_present(&m, 12, 18), ==, 6);
	g_assert_cmpuint(rsv_map_count_missing(&m, 12, 18), ==, 0);
	g_assert_cmpuint(rsv_map_count_present(&m, 20, 30), ==, 0);
	g_assert_cmpuint(rsv_map_count_missing(&m, 20, 30), ==, 10);
	g_assert_cmpuint(rsv_map_count_present(&m, 19, 31), ==, 2);
	g_assert_cmpuint(rsv_map_count_present(&m, 60, UINT64_MAX), ==, 0);
	g_assert_cmpuint(rsv_map_count_missing(&m, 0, UINT64_MAX), ==, UINT64_MAX - 30);
	rsv_map_clear(&m);
}

static void test_map_limit_missing(void)
{
	struct rsv_map m = RSV_MAP_INIT;

	/* present: [10,20) [30,40); missing elsewhere */
	rsv_map_add(&m, 10, 20);
	rsv_map_add(&m, 30, 40);
	/* Budget 0: the first missing page. */
	g_assert_cmpuint(rsv_map_limit_missing(&m, 0, 100, 0), ==, 0);
	g_assert_cmpuint(rsv_map_limit_missing(&m, 10, 100, 0), ==, 20);
	g_assert_cmpuint(rsv_map_limit_missing(&m, 15, 100, 0), ==, 20);
	g_assert_cmpuint(rsv_map_limit_missing(&m, 15, 18, 0), ==, 18);
	/* Budget inside the first gap. */
	g_assert_cmpuint(rsv_map_limit_missing(&m, 0, 100, 5), ==, 5);
	/* Budget exactly the first gap: runs through the extent after it. */
	g_assert_cmpuint(rsv_map_limit_missing(&m, 0, 100, 10), ==, 20);
	g_assert_cmpuint(rsv_map_limit_missing(&m, 0, 100, 11), ==, 21);
	g_assert_cmpuint(rsv_map_limit_missing(&m, 0, 100, 20), ==, 40);
	g_assert_cmpuint(rsv_map_limit_missing(&m, 0, 100, 21), ==, 41);
	g_assert_cmpuint(rsv_map_limit_missing(&m, 0, 100, 79), ==, 99);
	g_assert_cmpuint(rsv_map_limit_missing(&m, 0, 100, 80), ==, 100);
	g_assert_cmpuint(rsv_map_limit_missing(&m, 0, 100, UINT64_MAX), ==, 100);
	/* End inside an extent / a gap. */
	g_assert_cmpuint(rsv_map_limit_missing(&m, 0, 15, 10), ==, 15);
	g_assert_cmpuint(rsv_map_limit_missing(&m, 0, 25, 12), ==, 22);
	g_assert_cmpuint(rsv_map_limit_missing(&m, 0, 25, 15), ==, 25);
	g_assert_cmpuint(rsv_map_limit_missing(&m, 18, 35, 1), ==, 21);
	g_assert_cmpuint(rsv_map_limit_missing(&m, 18, 35, 10), ==, 35);
	/* Near the top of the page space. */
	g_assert_cmpuint(rsv_map_limit_missing(&m, 40, UINT64_MAX, UINT64_MAX), ==, UINT64_MAX);
	/* UINT64_MAX - 20 pages of [0, UINT64_MAX) are missing. */
	g_assert_cmpuint(rsv_map_limit_missing(&m, 0, UINT64_MAX, UINT64_MAX - 20),
			 ==, UINT64_MAX);
	g_assert_cmpuint(rsv_map_limit_missing(&m, 0, UINT64_MAX, UINT64_MAX - 21),
			 ==, UINT64_MAX - 1);
	g_assert_cmpuint(rsv_map_limit_missing(&m, 0, UINT64_MAX, UINT64_MAX - 22),
			 ==, UINT64_MAX - 2);
	/* The budget sizes the charge exactly: count_missing agrees. */
	g_assert_cmpuint(rsv_map_count_missing(&m, 0, rsv_map_limit_missing(&m, 0, 100, 17)),
			 ==, 17);
	rsv_map_clear(&m);
}

static void test_map_foreach(void)
{
	struct rsv_map m = RSV_MAP_INIT;
	struct collect c;

	rsv_map_add(&m, 10, 20);
	rsv_map_add(&m, 30, 40);
	rsv_map_add(&m, 50, 60);
	collect_init(&c);

	g_assert_cmpint(rsv_map_foreach_present(&m, 0, 100, collect_cb, &c), ==, 0);
	check_ranges(&c, (const uint64_t[]){ 10, 20, 30, 40, 50, 60 }, 3);
	g_array_set_size(c.r, 0);
	g_assert_cmpint(rsv_map_foreach_missing(&m, 0, 100, collect_cb, &c), ==, 0);
	check_ranges(&c, (const uint64_t[]){ 0, 10, 20, 30, 40, 50, 60, 100 }, 4);

	/* Clipped to the range on both sides. */
	g_array_set_size(c.r, 0);
	g_assert_cmpint(rsv_map_foreach_present(&m, 15, 55, collect_cb, &c), ==, 0);
	check_ranges(&c, (const uint64_t[]){ 15, 20, 30, 40, 50, 55 }, 3);
	g_array_set_size(c.r, 0);
	g_assert_cmpint(rsv_map_foreach_missing(&m, 15, 55, collect_cb, &c), ==, 0);
	check_ranges(&c, (const uint64_t[]){ 20, 30, 40, 50 }, 2);
	g_array_set_size(c.r, 0);
	g_assert_cmpint(rsv_map_foreach_missing(&m, 12, 18, collect_cb, &c), ==, 0);
	g_assert_cmpint(rsv_map_foreach_present(&m, 21, 29, collect_cb, &c), ==, 0);
	g_assert_cmpuint(c.r->len, ==, 0);
	g_assert_cmpint(rsv_map_foreach_missing(&m, 21, 29, collect_cb, &c), ==, 0);
	check_ranges(&c, (const uint64_t[]){ 21, 29 }, 1);
	g_array_set_size(c.r, 0);
	g_assert_cmpint(rsv_map_foreach_missing(&m, 55, UINT64_MAX, collect_cb, &c), ==, 0);
	check_ranges(&c, (const uint64_t[]){ 60, UINT64_MAX }, 1);

	/* A non-zero return stops the walk and is passed through. */
	g_array_set_size(c.r, 0);
	c.stop_after = 2;
	c.stop_value = -ENOSPC;
	g_assert_cmpint(rsv_map_foreach_present(&m, 0, 100, collect_cb, &c), ==, -ENOSPC);
	check_ranges(&c, (const uint64_t[]){ 10, 20, 30, 40 }, 2);
	g_array_set_size(c.r, 0);
	c.stop_value = 7;
	g_assert_cmpint(rsv_map_foreach_missing(&m, 0, 100, collect_cb, &c), ==, 7);
	check_ranges(&c, (const uint64_t[]){ 0, 10, 20, 30 }, 2);

	g_array_free(c.r, TRUE);
	rsv_map_clear(&m);
}

/* rsv_map_move: into an empty map it hands the chunks over; into a full
 * one it merges (pages already there count once).  The source ends empty. */
static void test_map_move(void)
{
	struct rsv_map a = RSV_MAP_INIT, b = RSV_MAP_INIT;
	uint64_t s, first, end;

	/* 1000 extents: several chunks, handed over whole */
	for (s = 0; s < 2000; s += 2)
		rsv_map_add(&a, s, s + 1);
	g_assert_cmpuint(rsv_map_check(&a), >, 1);
	g_assert_cmpuint(rsv_map_move(&b, &a), ==, 1000);
	check_map(&a);
	g_assert_cmpuint(a.n, ==, 0);
	g_assert_false(rsv_map_span(&a, &first, &end));
	check_map(&b);
	g_assert_cmpuint(b.n, ==, 1000);
	g_assert_true(rsv_map_span(&b, &first, &end));
	g_assert_cmpuint(first, ==, 0);
	g_assert_cmpuint(end, ==, 1999);

	/* merged: the odd pages fill the gaps, [0, 10) is there already */
	for (s = 1; s < 2000; s += 2)
		rsv_map_add(&a, s, s + 1);
	rsv_map_add(&a, 0, 10);
	g_assert_cmpuint(rsv_map_move(&b, &a), ==, 1000);
	check_map(&a);
	g_assert_cmpuint(a.n, ==, 0);
	check_extents(&b, (const uint64_t[]){ 0, 2000 }, 1);
	g_assert_cmpuint(rsv_map_bytes(&b), <, 1024);
	rsv_map_clear(&b);
}

static void test_map_top(void)
{
	struct rsv_map m = RSV_MAP_INIT;
	const uint64_t top = UINT64_MAX;

	g_assert_cmpuint(rsv_map_add(&m, top - 10, top), ==, 10);
	g_assert_cmpuint(rsv_map_add(&m, top - 20, top - 10), ==, 10);
	check_extents(&m, (const uint64_t[]){ top - 20, top }, 1);
	g_assert_true(rsv_map_contains(&m, top - 1));
	g_assert_false(rsv_map_contains(&m, top));
	g_assert_cmpuint(rsv_map_count_present(&m, 0, top), ==, 20);
	g_assert_cmpuint(rsv_map_limit_missing(&m, top - 30, top, 10), ==, top);
	g_assert_cmpuint(rsv_map_limit_missing(&m, top - 30, top, 9), ==, top - 21);
	g_assert_cmpuint(rsv_map_remove(&m, top - 15, top - 5), ==, 10);
	check_extents(&m, (const uint64_t[]){ top - 20, top - 15, top - 5, top }, 2);
	g_assert_cmpuint(rsv_map_add(&m, 0, top), ==, top - 10);
	check_extents(&m, (const uint64_t[]){ 0, top }, 1);
	g_assert_cmpuint(rsv_map_pages(&m), ==, top);
	g_assert_cmpuint(rsv_map_count_missing(&m, 0, top), ==, 0);
	g_assert_cmpuint(rsv_map_remove(&m, 0, top), ==, top);
	check_map(&m);
	rsv_map_clear(&m);
}

/* 2^28 pages = 1 TiB, filled in 4096 chunks out of order so every add in the
 * second pass merges: at the peak 2048 extents, at the end one, and the
 * array must have shrunk back. */
static void test_map_cost(void)
{
	const uint64_t total = 1ull << 28, chunk = 1ull << 16;
	struct rsv_map m = RSV_MAP_INIT;
	uint64_t s;

	g_assert_cmpuint(rsv_map_add(&m, 0, total), ==, total);
	g_assert_cmpuint(rsv_map_bytes(&m), <, 1024);
	rsv_map_clear(&m);

	for (s = 0; s < total; s += 2 * chunk)
		rsv_map_add(&m, s, s + chunk);
	check_map(&m);
	g_assert_cmpuint(m.n, ==, total / chunk / 2);
	for (s = chunk; s < total; s += 2 * chunk)
		rsv_map_add(&m, s, s + chunk);
	check_extents(&m, (const uint64_t[]){ 0, total }, 1);
	g_assert_cmpuint(rsv_map_pages(&m), ==, total);
	g_assert_cmpuint(rsv_map_bytes(&m), <, 1024);

	/* Fragmenting by removal, then healing, also gives memory back. */
	for (s = 0; s < total; s += 2 * chunk)
		rsv_map_remove(&m, s, s + 1);
	g_assert_cmpuint(m.n, ==, total / chunk / 2);
	for (s = 0; s < total; s += 2 * chunk)
		rsv_map_add(&m, s, s + 1);
	check_extents(&m, (const uint64_t[]){ 0, total }, 1);
	g_assert_cmpuint(rsv_map_bytes(&m), <, 1024);
	rsv_map_clear(&m);
}

/* ---- randomized against a bitmap --------------------------------------- */

#define MODEL_PAGES 4096u

static uint64_t model_present(const guint8 *bm, uint64_t s, uint64_t e)
{
	uint64_t n = 0;

	for (; s < e; s++)
		n += bm[s];
	return n;
}

static uint64_t model_limit(const guint8 *bm, uint64_t s, uint64_t e, uint64_t budget)
{
	for (; s < e; s++) {
		if (!bm[s]) {
			if (budget == 0)
				break;
			budget--;
		}
	}
	return s;
}

/* Model ranges of value @want within [s, e), as uint64 pairs. */
static void model_ranges(const guint8 *bm, uint64_t s, uint64_t e, guint8 want, GArray *out)
{
	g_array_set_size(out, 0);
	while (s < e) {
		uint64_t r;

		if (bm[s] != want) {
			s++;
			continue;
		}
		for (r = s; r < e && bm[r] == want; r++)
			;
		g_array_append_val(out, s);
		g_array_append_val(out, r);
		s = r;
	}
}

static void check_same_ranges(GArray *a, GArray *b)
{
	g_assert_cmpuint(a->len, ==, b->len);
	g_assert_cmpmem(a->data, a->len * sizeof(uint64_t), b->data, b->len * sizeof(uint64_t));
}

/* A range in [0, MODEL_PAGES], sometimes empty or inverted on purpose;
 * with @fine nearly always short, so the map holds many extents in many
 * chunks, and the rare long one spans several chunks. */
static void rand_range(GRand *r, bool fine, uint64_t *s, uint64_t *e)
{
	*s = g_rand_int_range(r, 0, MODEL_PAGES + 1);
	if (fine ? g_rand_int_range(r, 0, 512) != 0 : g_rand_int_range(r, 0, 4) == 0)
		*e = *s + g_rand_int_range(r, 0, fine ? 3 : 8);	/* short, often adjacent */
	else if (fine)
		*e = *s + g_rand_int_range(r, 0, 1024);		/* a few chunks' worth */
	else
		*e = g_rand_int_range(r, 0, MODEL_PAGES + 1);
	if (*e > MODEL_PAGES)
		*e = MODEL_PAGES;
	if (g_rand_int_range(r, 0, 8) != 0 && *s > *e) {
		uint64_t t = *s;

		*s = *e;
		*e = t;
	}
}

/* Random changes and queries checked against a bitmap.  @data set: mostly
 * short ranges, which keep hundreds of extents in several chunks, so
 * splits, joins and changes across chunk boundaries all happen. */
static void test_map_random(gconstpointer data)
{
	const bool fine = data != NULL;
	const guint32 seed = fine ? 0xf1e2024 : 0x5eed2024;
	const int ops = 100000;
	uint32_t max_chunks = 0;
	guint8 *bm = g_malloc0(MODEL_PAGES);
	struct rsv_map m = RSV_MAP_INIT;
	GRand *r = g_rand_new_with_seed(seed);
	struct collect c;
	GArray *want = g_array_new(FALSE, FALSE, sizeof(uint64_t));
	uint64_t model_pages = 0;
	int i;

	g_test_message("seed %u", seed);
	collect_init(&c);
	for (i = 0; i < ops; i++) {
		uint64_t s, e, p, k, got, budget;

		/* Mutate: a bias towards adding keeps the map mid-full. */
		rand_range(r, fine, &s, &e);
		if (g_rand_int_range(r, 0, 100) < 52) {
			k = s < e ? (e - s) - model_present(bm, s, e) : 0;
			got = rsv_map_add(&m, s, e);
			for (p = s; p < e; p++)
				bm[p] = 1;
			model_pages += k;
		} else {
			k = s < e ? model_present(bm, s, e) : 0;
			got = rsv_map_remove(&m, s, e);
			for (p = s; p < e; p++)
				bm[p] = 0;
			model_pages -= k;
		}
		g_assert_cmpuint(got, ==, k);
		g_assert_cmpuint(rsv_map_pages(&m), ==, model_pages);
		check_map(&m);
		max_chunks = MAX(max_chunks, rsv_map_check(&m));

		/* Query. */
		p = g_rand_int_range(r, 0, MODEL_PAGES + 8);
		g_assert_cmpint(rsv_map_contains(&m, p), ==, p < MODEL_PAGES && bm[p]);
		rand_range(r, fine, &s, &e);
		k = s < e ? model_present(bm, s, e) : 0;
		g_assert_cmpuint(rsv_map_count_present(&m, s, e), ==, k);
		g_assert_cmpuint(rsv_map_count_missing(&m, s, e), ==, s < e ? (e - s) - k : 0);
		budget = g_rand_int_range(r, 0, 4) == 0 ? 0 : g_rand_int_range(r, 0, MODEL_PAGES);
		got = rsv_map_limit_missing(&m, s, e, budget);
		g_assert_cmpuint(got, ==, model_limit(bm, s, e, budget));
		if (s < e)
			g_assert_cmpuint(rsv_map_count_missing(&m, s, got), <=, budget);

		if (i % 16 == 0) {
			g_array_set_size(c.r, 0);
			rsv_map_foreach_present(&m, s, e, collect_cb, &c);
			model_ranges(bm, s, e, 1, want);
			check_same_ranges(c.r, want);
			g_array_set_size(c.r, 0);
			rsv_map_foreach_missing(&m, s, e, collect_cb, &c);
			model_ranges(bm, s, e, 0, want);
			check_same_ranges(c.r, want);
		}
		if (i % 256 == 0 || i == ops - 1) {
			for (p = 0; p < MODEL_PAGES; p++)
				g_assert_cmpint(rsv_map_contains(&m, p), ==, bm[p]);
			g_assert_cmpuint(rsv_map_count_missing(&m, MODEL_PAGES, UINT64_MAX),
					 ==, UINT64_MAX - MODEL_PAGES);
		}
	}
	g_test_message("%u chunks at most", max_chunks);
	if (fine)
		g_assert_cmpuint(max_chunks, >=, 8);
	g_array_free(want, TRUE);
	g_array_free(c.r, TRUE);
	g_rand_free(r);
	rsv_map_clear(&m);
	g_free(bm);
}

/* ---- ledger ------------------------------------------------------------- */

static void test_ledger_charge(void)
{
	struct rsv_ledger l;

	rsv_ledger_init(&l, 100, 10, RSV_MODE_EOF);
	g_assert_cmpint(l.mode, ==, RSV_MODE_EOF);
	g_assert_cmpuint(rsv_capacity_pages(&l), ==, 100);
	g_assert_cmpuint(rsv_reserved_pages(&l), ==, 0);
	g_assert_cmpint(rsv_charge(&l, 0), ==, 0);
	g_assert_cmpint(rsv_charge(&l, 60), ==, 0);
	g_assert_cmpuint(rsv_reserved_pages(&l), ==, 60);
	/* All or nothing. */
	g_assert_cmpint(rsv_charge(&l, 41), ==, -ENOSPC);
	g_assert_cmpuint(rsv_reserved_pages(&l), ==, 60);
	g_assert_cmpint(rsv_charge(&l, UINT64_MAX), ==, -ENOSPC);
	g_assert_cmpuint(rsv_reserved_pages(&l), ==, 60);
	g_assert_cmpint(rsv_charge(&l, 40), ==, 0);
	g_assert_cmpuint(rsv_reserved_pages(&l), ==, 100);
	g_assert_cmpint(rsv_charge(&l, 1), ==, -ENOSPC);
	g_assert_cmpint(rsv_charge(&l, 0), ==, 0);
	rsv_release(&l, 30);
	g_assert_cmpuint(rsv_reserved_pages(&l), ==, 70);
	rsv_release(&l, 0);
	g_assert_cmpuint(rsv_reserved_pages(&l), ==, 70);

	/* Up to: as much as fits. */
	g_assert_cmpuint(rsv_charge_upto(&l, 10), ==, 10);
	g_assert_cmpuint(rsv_charge_upto(&l, 50), ==, 20);
	g_assert_cmpuint(rsv_reserved_pages(&l), ==, 100);
	g_assert_cmpuint(rsv_charge_upto(&l, 5), ==, 0);
	g_assert_cmpuint(rsv_charge_upto(&l, 0), ==, 0);
	rsv_release(&l, 1);
	g_assert_cmpuint(rsv_charge_upto(&l, UINT64_MAX), ==, 1);

	/* Forced charges ignore the capacity; then nothing else fits. */
	rsv_charge_force(&l, 20);
	g_assert_cmpuint(rsv_reserved_pages(&l), ==, 120);
	g_assert_cmpint(rsv_charge(&l, 1), ==, -ENOSPC);
	g_assert_cmpuint(rsv_charge_upto(&l, 1), ==, 0);
	rsv_release(&l, 120);
	g_assert_cmpuint(rsv_reserved_pages(&l), ==, 0);
}

static void test_ledger_release_underflow(void)
{
	struct rsv_ledger l;

	rsv_ledger_init(&l, 100, 10, RSV_MODE_WRITE);
	rsv_charge(&l, 5);
	/* A caller bug: loud, and clamped so the store is not "full" forever. */
	g_test_expect_message(G_LOG_DOMAIN, G_LOG_LEVEL_CRITICAL, "*releasing 6 pages*");
	rsv_release(&l, 6);
	g_test_assert_expected_messages();
	g_assert_cmpuint(rsv_reserved_pages(&l), ==, 0);
	g_test_expect_message(G_LOG_DOMAIN, G_LOG_LEVEL_CRITICAL, "*releasing 1 inodes*");
	rsv_inode_put(&l);
	g_test_assert_expected_messages();
	g_assert_cmpuint(rsv_used_inodes(&l), ==, 0);
}

static void test_ledger_capacity(void)
{
	struct rsv_ledger l;

	rsv_ledger_init(&l, 100, 10, RSV_MODE_EOF);
	g_assert_cmpint(rsv_charge(&l, 50), ==, 0);
	g_assert_cmpint(rsv_set_capacity(&l, 49), ==, -ENOSPC);
	g_assert_cmpuint(rsv_capacity_pages(&l), ==, 100);
	g_assert_cmpint(rsv_set_capacity(&l, 0), ==, -ENOSPC);
	g_assert_cmpint(rsv_set_capacity(&l, 50), ==, 0);
	g_assert_cmpuint(rsv_capacity_pages(&l), ==, 50);
	g_assert_cmpint(rsv_charge(&l, 1), ==, -ENOSPC);
	g_assert_cmpint(rsv_set_capacity(&l, 1000), ==, 0);
	g_assert_cmpint(rsv_charge(&l, 950), ==, 0);
	g_assert_cmpint(rsv_set_capacity(&l, 999), ==, -ENOSPC);
	g_assert_cmpuint(rsv_capacity_pages(&l), ==, 1000);
	rsv_release(&l, 1000);
	g_assert_cmpint(rsv_set_capacity(&l, 0), ==, 0);
	g_assert_cmpint(rsv_charge(&l, 1), ==, -ENOSPC);
	g_assert_cmpint(rsv_charge(&l, 0), ==, 0);
	g_assert_cmpint(rsv_set_capacity(&l, UINT64_MAX), ==, 0);
	g_assert_cmpint(rsv_charge(&l, UINT64_MAX), ==, 0);
	g_assert_cmpint(rsv_charge(&l, 1), ==, -ENOSPC);

	/* After a forced charge over a shrunk size, only growth is accepted. */
	rsv_ledger_init(&l, 10, 10, RSV_MODE_EOF);
	rsv_charge_force(&l, 15);
	g_assert_cmpint(rsv_set_capacity(&l, 12), ==, -ENOSPC);
	g_assert_cmpint(rsv_set_capacity(&l, 15), ==, 0);
}

static void test_ledger_inodes(void)
{
	struct rsv_ledger l;
	int i;

	rsv_ledger_init(&l, 100, 3, RSV_MODE_EOF);
	g_assert_cmpuint(rsv_nr_inodes(&l), ==, 3);
	for (i = 0; i < 3; i++)
		g_assert_cmpint(rsv_inode_get(&l), ==, 0);
	g_assert_cmpint(rsv_inode_get(&l), ==, -ENOSPC);
	g_assert_cmpuint(rsv_used_inodes(&l), ==, 3);
	rsv_inode_put(&l);
	g_assert_cmpuint(rsv_used_inodes(&l), ==, 2);
	g_assert_cmpint(rsv_inode_get(&l), ==, 0);
	g_assert_cmpint(rsv_inode_get(&l), ==, -ENOSPC);
	rsv_inode_get_force(&l);
	g_assert_cmpuint(rsv_used_inodes(&l), ==, 4);
	g_assert_cmpint(rsv_set_nr_inodes(&l, 3), ==, -ENOSPC);
	g_assert_cmpuint(rsv_nr_inodes(&l), ==, 3);
	g_assert_cmpint(rsv_set_nr_inodes(&l, 5), ==, 0);
	g_assert_cmpint(rsv_inode_get(&l), ==, 0);
	g_assert_cmpint(rsv_inode_get(&l), ==, -ENOSPC);
	for (i = 0; i < 5; i++)
		rsv_inode_put(&l);
	g_assert_cmpuint(rsv_used_inodes(&l), ==, 0);
	g_assert_cmpint(rsv_set_nr_inodes(&l, 1), ==, 0);
	g_assert_cmpint(rsv_inode_get(&l), ==, 0);
	g_assert_cmpint(rsv_inode_get(&l), ==, -ENOSPC);
	/* Pages and inodes are independent. */
	g_assert_cmpint(rsv_charge(&l, 100), ==, 0);
	rsv_inode_put(&l);
	g_assert_cmpint(rsv_inode_get(&l), ==, 0);
}

static void test_ledger_statfs(void)
{
	struct rsv_ledger l;
	struct statvfs st;

	memset(&st, 0xa5, sizeof(st));
	rsv_ledger_init(&l, 1000, 50, RSV_MODE_EOF);
	rsv_charge(&l, 300);
	rsv_inode_get(&l);
	rsv_inode_get(&l);
	rsv_statfs(&l, &st);
	g_assert_cmpuint(st.f_bsize, ==, 4096);
	g_assert_cmpuint(st.f_frsize, ==, 4096);
	g_assert_cmpuint(st.f_blocks, ==, 1000);
	g_assert_cmpuint(st.f_bfree, ==, 700);
	g_assert_cmpuint(st.f_bavail, ==, 700);
	g_assert_cmpuint(st.f_files, ==, 50);
	g_assert_cmpuint(st.f_ffree, ==, 48);
	g_assert_cmpuint(st.f_favail, ==, 48);
	g_assert_cmpuint(st.f_namemax, ==, 255);

	/* Over capacity (forced charges after a shrink): 0 free, not negative. */
	rsv_charge_force(&l, 800);
	for (int i = 0; i < 60; i++)
		rsv_inode_get_force(&l);
	rsv_statfs(&l, &st);
	g_assert_cmpuint(st.f_blocks, ==, 1000);
	g_assert_cmpuint(st.f_bfree, ==, 0);
	g_assert_cmpuint(st.f_bavail, ==, 0);
	g_assert_cmpuint(st.f_ffree, ==, 0);
	g_assert_cmpuint(st.f_favail, ==, 0);
}

static void test_ledger_enospc(void)
{
	struct rsv_ledger l;
	int ev;

	rsv_ledger_init(&l, 1, 1, RSV_MODE_WRITE);
	g_assert_cmpint(l.mode, ==, RSV_MODE_WRITE);
	for (ev = 0; ev < RSV_EV_NR; ev++)
		g_assert_cmpuint(rsv_enospc_count(&l, ev), ==, 0);
	rsv_count_enospc(&l, RSV_EV_WRITE);
	rsv_count_enospc(&l, RSV_EV_WRITE);
	rsv_count_enospc(&l, RSV_EV_CREATE);
	g_assert_cmpuint(rsv_enospc_count(&l, RSV_EV_WRITE), ==, 2);
	g_assert_cmpuint(rsv_enospc_count(&l, RSV_EV_CREATE), ==, 1);
	g_assert_cmpuint(rsv_enospc_count(&l, RSV_EV_TRUNCATE), ==, 0);
	g_assert_cmpstr(rsv_event_name(RSV_EV_WRITE), ==, "write");
	g_assert_cmpstr(rsv_event_name(RSV_EV_TRUNCATE), ==, "truncate");
	g_assert_cmpstr(rsv_event_name(RSV_EV_FALLOCATE), ==, "fallocate");
	g_assert_cmpstr(rsv_event_name(RSV_EV_WRITEBACK), ==, "writeback");
	g_assert_cmpstr(rsv_event_name(RSV_EV_CREATE), ==, "create");
	g_assert_cmpstr(rsv_event_name(RSV_EV_XATTR), ==, "xattr");
	g_assert_cmpstr(rsv_event_name(RSV_EV_NR), ==, "unknown");
	g_assert_cmpuint(rsv_enospc_count(&l, RSV_EV_NR), ==, 0);
	/* Re-init zeroes the counters. */
	rsv_ledger_init(&l, 1, 1, RSV_MODE_EOF);
	g_assert_cmpuint(rsv_enospc_count(&l, RSV_EV_WRITE), ==, 0);
}

/* ---- ledger under concurrency ------------------------------------------ */

#define RACE_THREADS 8
#define RACE_CAPACITY 100000

struct race {
	struct rsv_ledger l;
	gint chargers_left;	/* atomic: chargers still running */
	gint go;		/* atomic: all threads created, start */
	uint64_t granted[RACE_THREADS];
	uint64_t samples;
	uint64_t shrinks_ok, shrinks_refused;
	guint32 seed;
};

struct race_arg {
	struct race *race;
	int idx;
};

/* reserved is read before capacity: with no releases in this test,
 * reserved only grows and a shrink succeeds only down to at least the
 * reserved of its moment, so reserved(then) <= capacity(now) must hold
 * whenever the ledger is exact. */
static void race_wait_go(struct race *race)
{
	while (!g_atomic_int_get(&race->go))
		g_thread_yield();
}

static void race_sample(struct race *race)
{
	uint64_t r = rsv_reserved_pages(&race->l);
	uint64_t c = rsv_capacity_pages(&race->l);

	g_assert_cmpuint(r, <=, c);
}

static gpointer race_charger(gpointer data)
{
	struct race_arg *a = data;
	struct race *race = a->race;
	uint64_t n = 0;

	race_wait_go(race);
	while (rsv_charge(&race->l, 1) == 0) {
		n++;
		/* Only 2 CPUs may be shared by 10 threads here: hand the CPU
		 * around now and then so the shrinker really interleaves. */
		if ((n & 63) == 0) {
			race_sample(race);
			g_thread_yield();
		}
	}
	race->granted[a->idx] = n;
	g_atomic_int_add(&race->chargers_left, -1);
	return NULL;
}

static gpointer race_shrinker(gpointer data)
{
	struct race *race = data;
	GRand *r = g_rand_new_with_seed(race->seed);

	race_wait_go(race);
	while (g_atomic_int_get(&race->chargers_left) > 0) {
		uint64_t before = rsv_capacity_pages(&race->l);
		uint64_t res = rsv_reserved_pages(&race->l);
		uint64_t k = g_rand_int_range(r, 1, 64);
		uint64_t target;
		int ret;

		/* Mostly small steps down, so capacity and usage meet partway
		 * and the chargers then race the shrinks at the boundary; now
		 * and then a shrink below usage (must be refused) or one right
		 * at it (races the chargers). */
		switch (g_rand_int_range(r, 0, 8)) {
		case 0:
			if (res > k) {
				target = res - k;
				break;
			}
			G_GNUC_FALLTHROUGH;
		case 1:
			if (before - res < 1024) {
				target = res + k / 8;
				break;
			}
			G_GNUC_FALLTHROUGH;
		default:
			target = before > k ? before - k : 0;
			break;
		}
		if (target >= before)
			continue;
		ret = rsv_set_capacity(&race->l, target);
		if (ret == 0) {
			race->shrinks_ok++;
			g_assert_cmpuint(rsv_capacity_pages(&race->l), ==, target);
		} else {
			/* Only this thread resizes: a refusal changes nothing. */
			g_assert_cmpint(ret, ==, -ENOSPC);
			g_assert_cmpuint(rsv_capacity_pages(&race->l), ==, before);
			g_assert_cmpuint(rsv_reserved_pages(&race->l), >, target);
			race->shrinks_refused++;
		}
		race_sample(race);
		g_thread_yield();
	}
	g_rand_free(r);
	return NULL;
}

static gpointer race_sampler(gpointer data)
{
	struct race *race = data;

	race_wait_go(race);
	while (g_atomic_int_get(&race->chargers_left) > 0) {
		race_sample(race);
		if ((++race->samples & 1023) == 0)
			g_thread_yield();
	}
	return NULL;
}

static void race_round(guint32 seed)
{
	struct race *race = g_new0(struct race, 1);
	struct race_arg args[RACE_THREADS];
	GThread *th[RACE_THREADS], *shrinker, *sampler;
	uint64_t sum = 0;
	int i;

	rsv_ledger_init(&race->l, RACE_CAPACITY, 10, RSV_MODE_EOF);
	race->chargers_left = RACE_THREADS;
	race->seed = seed;
	shrinker = g_thread_new("shrinker", race_shrinker, race);
	sampler = g_thread_new("sampler", race_sampler, race);
	for (i = 0; i < RACE_THREADS; i++) {
		args[i].race = race;
		args[i].idx = i;
		th[i] = g_thread_new("charger", race_charger, &args[i]);
	}
	g_atomic_int_set(&race->go, 1);
	for (i = 0; i < RACE_THREADS; i++) {
		g_thread_join(th[i]);
		sum += race->granted[i];
	}
	g_thread_join(shrinker);
	g_thread_join(sampler);
	g_test_message("granted %" G_GUINT64_FORMAT ", final capacity %" G_GUINT64_FORMAT
		       ", shrinks ok %" G_GUINT64_FORMAT " refused %" G_GUINT64_FORMAT
		       ", samples %" G_GUINT64_FORMAT, sum, rsv_capacity_pages(&race->l),
		       race->shrinks_ok, race->shrinks_refused, race->samples);
	/* Every charge is accounted, nothing lost, nothing over. */
	g_assert_cmpuint(rsv_reserved_pages(&race->l), ==, sum);
	g_assert_cmpuint(sum, <=, RACE_CAPACITY);
	/* Each charger stopped only on a full ledger and shrinks never go
	 * below usage, so the ledger ends exactly full. */
	g_assert_cmpuint(rsv_capacity_pages(&race->l), ==, sum);
	g_free(race);
}

static void test_ledger_race(void)
{
	guint32 seed;

	/* Several rounds: where usage and the shrinking capacity meet
	 * depends on scheduling, so each round races a different boundary. */
	for (seed = 1; seed <= 10; seed++)
		race_round(seed);
}

/* Mixed traffic: charge_upto, all-or-nothing charges and releases from
 * many threads while the capacity moves up and down; the books must
 * balance exactly at the end. */
struct churn {
	struct rsv_ledger l;
	gint running;
	uint64_t held[RACE_THREADS];
};

struct churn_arg {
	struct churn *churn;
	int idx;
};

static gpointer churn_worker(gpointer data)
{
	struct churn_arg *a = data;
	struct rsv_ledger *l = &a->churn->l;
	GRand *r = g_rand_new_with_seed(1000 + a->idx);
	uint64_t held = 0;
	int i;

	for (i = 0; i < 20000; i++) {
		uint64_t want = g_rand_int_range(r, 1, 64);

		switch (g_rand_int_range(r, 0, 3)) {
		case 0:
			held += rsv_charge_upto(l, want);
			break;
		case 1:
			if (rsv_charge(l, want) == 0)
				held += want;
			break;
		default:
			want = want < held ? want : held;
			rsv_release(l, want);
			held -= want;
			break;
		}
	}
	a->churn->held[a->idx] = held;
	g_rand_free(r);
	g_atomic_int_add(&a->churn->running, -1);
	return NULL;
}

static gpointer churn_resizer(gpointer data)
{
	struct churn *churn = data;
	GRand *r = g_rand_new_with_seed(99);

	while (g_atomic_int_get(&churn->running) > 0) {
		uint64_t target = g_rand_int_range(r, 100, 4000);

		if (rsv_set_capacity(&churn->l, target) == 0) {
			/* Exclusive with charges: usage was within the target
			 * when it was set (releases may only lower it since). */
			g_assert_cmpuint(rsv_reserved_pages(&churn->l), <=,
					 rsv_capacity_pages(&churn->l));
		}
		g_thread_yield();
	}
	g_rand_free(r);
	return NULL;
}

static void test_ledger_churn(void)
{
	struct churn *churn = g_new0(struct churn, 1);
	struct churn_arg args[RACE_THREADS];
	GThread *th[RACE_THREADS], *resizer;
	uint64_t sum = 0;
	int i;

	rsv_ledger_init(&churn->l, 2000, 10, RSV_MODE_EOF);
	churn->running = RACE_THREADS;
	resizer = g_thread_new("resizer", churn_resizer, churn);
	for (i = 0; i < RACE_THREADS; i++) {
		args[i].churn = churn;
		args[i].idx = i;
		th[i] = g_thread_new("churn", churn_worker, &args[i]);
	}
	for (i = 0; i < RACE_THREADS; i++) {
		g_thread_join(th[i]);
		sum += churn->held[i];
	}
	g_thread_join(resizer);
	g_assert_cmpuint(rsv_reserved_pages(&churn->l), ==, sum);
	g_assert_cmpuint(sum, <=, rsv_capacity_pages(&churn->l));
	g_free(churn);
}

/* ---- parsing ------------------------------------------------------------ */

static void check_size(const char *s, uint64_t backing, uint64_t want)
{
	uint64_t pages = 12345;

	if (rsv_parse_size(s, backing, &pages) != 0)
		g_error("size=%s (backing %" G_GUINT64_FORMAT ") rejected", s, backing);
	if (pages != want)
		g_error("size=%s: %" G_GUINT64_FORMAT " pages, want %" G_GUINT64_FORMAT,
			s, pages, want);
}

static void check_size_bad(const char *s, uint64_t backing)
{
	uint64_t pages = 12345;

	if (rsv_parse_size(s, backing, &pages) != -EINVAL)
		g_error("size=%s accepted", s ? s : "(null)");
	g_assert_cmpuint(pages, ==, 12345);
}

static void check_count(const char *s, uint64_t backing, uint64_t want)
{
	uint64_t count = 12345;

	if (rsv_parse_count(s, backing, &count) != 0)
		g_error("nr_inodes=%s rejected", s);
	if (count != want)
		g_error("nr_inodes=%s: %" G_GUINT64_FORMAT ", want %" G_GUINT64_FORMAT,
			s, count, want);
}

static void check_count_bad(const char *s, uint64_t backing)
{
	uint64_t count = 12345;

	if (rsv_parse_count(s, backing, &count) != -EINVAL)
		g_error("nr_inodes=%s accepted", s ? s : "(null)");
	g_assert_cmpuint(count, ==, 12345);
}

static void test_parse_size(void)
{
	const uint64_t disk = 1000000ull * 4096;

	check_size("1", 0, 1);
	check_size("4096", 0, 1);
	check_size("4097", 0, 2);
	check_size("8192", 0, 2);
	check_size("0010", 0, 1);
	check_size("1k", 0, 1);
	check_size("4K", 0, 1);
	check_size("5k", 0, 2);
	check_size("1m", 0, 256);
	check_size("64M", 0, 16384);
	check_size("1G", 0, 262144);
	check_size("1g", 0, 262144);
	check_size("1t", 0, 1ull << 28);
	check_size("2T", 0, 1ull << 29);
	check_size("1p", 0, 1ull << 38);
	check_size("1E", 0, 1ull << 48);
	check_size("15e", 0, 15ull << 48);
	/* the capacity in bytes must fit in 64 bits (2^52 pages showed as 0) */
	check_size("18446744073709547520", 0, (1ull << 52) - 1);
	check_size_bad("18446744073709547521", 0);
	check_size_bad("18446744073709551615", 0);
	check_size_bad("16e", 0);
	check_size("10%", disk, 100000);
	check_size("100%", disk, 1000000);
	check_size("101%", disk, 1010000);
	check_size("1%", 100, 1);		/* one byte still needs a page */
	check_size("10%", 4097, 1);
	check_size("50%", 3 * 4096, 2);		/* 1.5 pages, rounded up */
	check_size("1000000%", disk, 1000000ull * 10000);
	check_size_bad("100%", UINT64_MAX);

	check_size_bad(NULL, disk);
	check_size_bad("", disk);
	check_size_bad("0", disk);
	check_size_bad("00", disk);
	check_size_bad("0k", disk);
	check_size_bad("-1", disk);
	check_size_bad("+1", disk);
	check_size_bad(" 1", disk);
	check_size_bad("1 ", disk);
	check_size_bad("12q", disk);
	check_size_bad("1GB", disk);
	check_size_bad("1.5G", disk);
	check_size_bad("k", disk);
	check_size_bad("%", disk);
	check_size_bad("0x10", disk);
	check_size_bad("99999999999999999999", disk);
	check_size_bad("18446744073709551616", disk);
	check_size_bad("16e", disk);
	check_size_bad("16384p", disk);
	check_size_bad("17179869184G", disk);
	check_size_bad("5%%", disk);
	check_size_bad("5% ", disk);
	check_size_bad("5%k", disk);
	check_size_bad("5k%", disk);
	check_size_bad("0%", disk);
	check_size_bad("2.5%", disk);
	check_size_bad("10%", 0);
	check_size_bad("101%", UINT64_MAX);	/* more than 2^64 bytes */
}

static void test_parse_count(void)
{
	check_count("1", 0, 1);
	check_count("1000", 0, 1000);
	check_count("1k", 0, 1024);
	check_count("2M", 0, 2ull << 20);
	check_count("1g", 0, 1ull << 30);
	check_count("50%", 1000, 500);
	check_count("1%", 50, 1);
	check_count("150%", 10, 15);
	check_count("18446744073709551615", 0, UINT64_MAX);
	check_count("16777215g", 0, 16777215ull << 30);

	check_count_bad(NULL, 1000);
	check_count_bad("", 1000);
	check_count_bad("0", 1000);
	check_count_bad("-5", 1000);
	check_count_bad("1.5k", 1000);
	check_count_bad("1t", 1000);	/* k/m/g only */
	check_count_bad("1x", 1000);
	check_count_bad("0%", 1000);
	check_count_bad("5%", 0);
	check_count_bad("5%%", 1000);
	check_count_bad("18446744073709551616", 1000);
	check_count_bad("17179869184g", 1000);
}

static void test_parse_mode(void)
{
	enum rsv_mode mode = RSV_MODE_WRITE;

	g_assert_cmpint(rsv_parse_mode("eof", &mode), ==, 0);
	g_assert_cmpint(mode, ==, RSV_MODE_EOF);
	g_assert_cmpint(rsv_parse_mode("write", &mode), ==, 0);
	g_assert_cmpint(mode, ==, RSV_MODE_WRITE);
	g_assert_cmpint(rsv_parse_mode("EOF", &mode), ==, -EINVAL);
	g_assert_cmpint(rsv_parse_mode("", &mode), ==, -EINVAL);
	g_assert_cmpint(rsv_parse_mode("eofx", &mode), ==, -EINVAL);
	g_assert_cmpint(rsv_parse_mode("writ", &mode), ==, -EINVAL);
	g_assert_cmpint(rsv_parse_mode(NULL, &mode), ==, -EINVAL);
	g_assert_cmpint(mode, ==, RSV_MODE_WRITE);
	g_assert_cmpstr(rsv_mode_name(RSV_MODE_EOF), ==, "eof");
	g_assert_cmpstr(rsv_mode_name(RSV_MODE_WRITE), ==, "write");
	g_assert_cmpstr(rsv_mode_name((enum rsv_mode)7), ==, "unknown");
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);

	g_test_add_func("/reserve/page/helpers", test_page_helpers);
	g_test_add_func("/reserve/map/empty", test_map_empty);
	g_test_add_func("/reserve/map/add-merge", test_map_add_merge);
	g_test_add_func("/reserve/map/remove-split", test_map_remove_split);
	g_test_add_func("/reserve/map/counts", test_map_counts);
	g_test_add_func("/reserve/map/limit-missing", test_map_limit_missing);
	g_test_add_func("/reserve/map/foreach", test_map_foreach);
	g_test_add_func("/reserve/map/move", test_map_move);
	g_test_add_func("/reserve/map/top", test_map_top);
	g_test_add_func("/reserve/map/cost", test_map_cost);
	g_test_add_data_func("/reserve/map/random", NULL, test_map_random);
	g_test_add_data_func("/reserve/map/random-fine", "fine", test_map_random);
	g_test_add_func("/reserve/ledger/charge", test_ledger_charge);
	g_test_add_func("/reserve/ledger/release-underflow", test_ledger_release_underflow);
	g_test_add_func("/reserve/ledger/capacity", test_ledger_capacity);
	g_test_add_func("/reserve/ledger/inodes", test_ledger_inodes);
	g_test_add_func("/reserve/ledger/statfs", test_ledger_statfs);
	g_test_add_func("/reserve/ledger/enospc", test_ledger_enospc);
	g_test_add_func("/reserve/ledger/race", test_ledger_race);
	g_test_add_func("/reserve/ledger/churn", test_ledger_churn);
	g_test_add_func("/reserve/parse/size", test_parse_size);
	g_test_add_func("/reserve/parse/count", test_parse_count);
	g_test_add_func("/reserve/parse/mode", test_parse_mode);

	return g_test_run();
}
