/* cache/ — per-file dirty page accounting, dirty limits and writeback. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include "cache.h"

struct cache {
	const struct cache_ops *ops;	/* immutable */
	void *owner_ctx;		/* immutable */
	uint64_t limit_pages;		/* immutable; 0 = unlimited */
	gint64 expire_us;		/* immutable; 0 = no background writeback */

	GMutex lock;			/* protects the fields below */
	GHashTable *dirty;		/* keys of the files with dirty or in-flight pages */
	GArray *submit;			/* keys of files whose writeback is to start now */
	bool stopping;
	GCond wake;
	GThread *thread;

	/* Statistics: __atomic only. */
	uint64_t dirty_pages;
	uint64_t writebacks;
	uint64_t throttled;
	uint64_t throttle_wait_us;
	uint64_t background;
	uint64_t syncs;
	uint64_t max_file_dirty_pages;
};

static void cache_listed(struct cache *c, struct cache_file *cf, bool dirty)
{
	g_mutex_lock(&c->lock);
	if (dirty)
		g_hash_table_insert(c->dirty, g_memdup2(&cf->key, sizeof(cf->key)),
				    GINT_TO_POINTER(1));
	else
		g_hash_table_remove(c->dirty, &cf->key);
	g_mutex_unlock(&c->lock);
}

static uint64_t cache_file_pages(const struct cache_file *cf)
{
	return rsv_map_pages(&cf->dirty) + rsv_map_pages(&cf->inflight);
}

/* Forget the dirty pages of @cf: they are now clean (or gone). */
static void cache_clean(struct cache *c, struct cache_file *cf)
{
	uint64_t n = cache_file_pages(cf);

	if (n == 0 && cf->dirty_since == 0)
		return;
	__atomic_sub_fetch(&c->dirty_pages, n, __ATOMIC_RELAXED);
	rsv_map_clear(&cf->dirty);
	rsv_map_clear(&cf->inflight);
	cf->dirty_since = 0;
	cf->submit_queued = false;
	cache_listed(c, cf, false);
}

/* The byte span [*start, *start + *len) covering every page of @m. */
static bool cache_span(const struct rsv_map *m, off_t *start, off_t *len)
{
	uint64_t first, end;

	if (!rsv_map_span(m, &first, &end))
		return false;
	*start = (off_t)first << RSV_PAGE_SHIFT;
	*len = (off_t)(end - first) << RSV_PAGE_SHIFT;
	return true;
}

/* Move the dirty pages in flight; the span to start writing back in *start,
 * *len.  The caller submits it (SYNC_FILE_RANGE_WRITE) without our locks. */
static bool cache_prepare_submit(struct cache_file *cf, off_t *start, off_t *len,
				 uint32_t *seq, bool *run)
{
	if (!cache_span(&cf->dirty, start, len))
		return false;
	*run = cf->dirty.n == 1;
	*seq = ++cf->submit_seq;
	rsv_map_move(&cf->inflight, &cf->dirty);
	cf->dirty_since = g_get_monotonic_time();	/* what is dirtied next ages from now */
	return true;
}

/* Write back every dirty page of @cf and wait for it: sync_file_range over
 * the dirty span pushes data without the cost of a journal commit; fsync
 * (cache_file_sync) is what makes metadata durable. */
static int cache_writeback(struct cache *c, struct cache_file *cf, int fd)
{
	off_t s1, l1, s2, l2, start, end;
	bool d = cache_span(&cf->dirty, &s1, &l1), f = cache_span(&cf->inflight, &s2, &l2);

	if (!d && !f)
		return 0;
	start = d && f ? MIN(s1, s2) : d ? s1 : s2;
	end = d && f ? MAX(s1 + l1, s2 + l2) : d ? s1 + l1 : s2 + l2;
	if (sync_file_range(fd, start, end - start, SYNC_FILE_RANGE_WAIT_BEFORE |
			    SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER) < 0)
		return -errno;
	cf->writebacks++;
	__atomic_add_fetch(&c->writebacks, 1, __ATOMIC_RELAXED);
	cache_clean(c, cf);
	return 0;
}

/* Wait for the pages in flight only (they were sent when the file passed
 * half its limit), so the throttled writer waits for the disk's older work
 * while its newer pages stay queued behind.  Once the background thread
 * has started their writeback, waiting is all that is left: writing the
 * span again would also push, and wait for, every newer dirty page that
 * lies between them (with random writes, all of them).  Until then the
 * writer starts it itself. */
static int cache_wait_inflight(struct cache *c, struct cache_file *cf, int fd)
{
	off_t start, len;
	uint64_t n = rsv_map_pages(&cf->inflight);
	unsigned flags = SYNC_FILE_RANGE_WAIT_BEFORE;

	if (!cache_span(&cf->inflight, &start, &len))
		return 0;
	if (cf->submitted_seq != cf->submit_seq)
		flags |= SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER;
	if (sync_file_range(fd, start, len, flags) < 0)
		return -errno;
	cf->writebacks++;
	__atomic_add_fetch(&c->writebacks, 1, __ATOMIC_RELAXED);
	__atomic_sub_fetch(&c->dirty_pages, n, __ATOMIC_RELAXED);
	rsv_map_clear(&cf->inflight);
	if (cf->dirty.n == 0)
		cache_clean(c, cf);
	return 0;
}

void cache_file_init(struct cache_file *cf, uint64_t key)
{
	cf->key = key;
	rsv_map_init(&cf->dirty);
	rsv_map_init(&cf->inflight);
	cf->dirty_since = 0;
	cf->submit_queued = false;
	cf->submit_seq = cf->submitted_seq = 0;
	cf->writebacks = 0;
	cf->throttles = 0;
}

void cache_file_finish(struct cache *c, struct cache_file *cf)
{
	/* The file is closed: nothing more is throttled against it, and what
	 * it left dirty is the backing filesystem's to write back in its own
	 * time (kicking writeback here costs an I/O per small file). */
	cache_clean(c, cf);
}

int cache_file_dirtied(struct cache *c, struct cache_file *cf, int fd,
		       uint64_t start, uint64_t end)
{
	uint64_t added, now_dirty, max;
	gint64 t0;
	int res;

	if (start >= end)
		return 0;
	/* a page rewritten while in flight is dirty again */
	added = rsv_map_add(&cf->dirty, start, end) - rsv_map_remove(&cf->inflight, start, end);
	__atomic_add_fetch(&c->dirty_pages, added, __ATOMIC_RELAXED);
	if (cf->dirty_since == 0) {
		cf->dirty_since = g_get_monotonic_time();
		cache_listed(c, cf, true);
	}
	now_dirty = cache_file_pages(cf);
	max = __atomic_load_n(&c->max_file_dirty_pages, __ATOMIC_RELAXED);
	while (now_dirty > max &&
	       !__atomic_compare_exchange_n(&c->max_file_dirty_pages, &max, now_dirty,
					    false, __ATOMIC_RELAXED, __ATOMIC_RELAXED))
		;
	if (c->limit_pages == 0)
		return 0;
	if (rsv_map_pages(&cf->dirty) >= (c->limit_pages + 1) / 2 && !cf->submit_queued) {
		/* the background thread starts the writeback; this writer goes on */
		cf->submit_queued = true;
		g_mutex_lock(&c->lock);
		g_array_append_val(c->submit, cf->key);
		g_cond_signal(&c->wake);
		g_mutex_unlock(&c->lock);
	}
	if (now_dirty <= c->limit_pages)
		return 0;
	cf->throttles++;
	__atomic_add_fetch(&c->throttled, 1, __ATOMIC_RELAXED);
	t0 = g_get_monotonic_time();
	res = cache_wait_inflight(c, cf, fd);
	if (res == 0 && cache_file_pages(cf) > c->limit_pages)
		res = cache_writeback(c, cf, fd);
	__atomic_add_fetch(&c->throttle_wait_us, g_get_monotonic_time() - t0, __ATOMIC_RELAXED);
	return res;
}

void cache_file_drop(struct cache *c, struct cache_file *cf, uint64_t start, uint64_t end)
{
	uint64_t n = rsv_map_remove(&cf->dirty, start, end) + rsv_map_remove(&cf->inflight, start, end);

	__atomic_sub_fetch(&c->dirty_pages, n, __ATOMIC_RELAXED);
	if (cache_file_pages(cf) == 0)
		cache_clean(c, cf);
}

bool cache_file_background(struct cache *c, struct cache_file *cf, int fd,
			   off_t *start, off_t *len, uint32_t *seq, bool *run)
{
	bool expired = c->expire_us && cf->dirty.n &&
		       g_get_monotonic_time() - cf->dirty_since >= c->expire_us;

	if (!cf->submit_queued && !expired)
		return false;
	cf->submit_queued = false;
	if (fd < 0 || !cache_prepare_submit(cf, start, len, seq, run))
		return false;
	if (expired)
		__atomic_add_fetch(&c->background, 1, __ATOMIC_RELAXED);
	return true;
}

void cache_file_submitted(struct cache_file *cf, uint32_t seq)
{
	/* batches are started in order; a newer one may have been handed
	 * out meanwhile and is not started yet */
	if ((int32_t)(seq - cf->submitted_seq) > 0)
		cf->submitted_seq = seq;
}

void cache_file_written_back(struct cache *c, struct cache_file *cf, off_t start, off_t len)
{
	uint64_t n = rsv_map_remove(&cf->inflight, (uint64_t)start >> RSV_PAGE_SHIFT,
				    (uint64_t)(start + len) >> RSV_PAGE_SHIFT);

	cf->writebacks++;
	__atomic_add_fetch(&c->writebacks, 1, __ATOMIC_RELAXED);
	__atomic_sub_fetch(&c->dirty_pages, n, __ATOMIC_RELAXED);
	if (cache_file_pages(cf) == 0)
		cache_clean(c, cf);
}

int cache_file_sync(struct cache *c, struct cache_file *cf, int fd, bool datasync)
{
	int res = datasync ? fdatasync(fd) : fsync(fd);

	if (res < 0)
		return -errno;
	__atomic_add_fetch(&c->syncs, 1, __ATOMIC_RELAXED);
	cache_clean(c, cf);
	return 0;
}

uint64_t cache_file_dirty_pages(const struct cache_file *cf)
{
	return cache_file_pages(cf);
}

/* The background thread: wakes a few times per expire period, collects the
 * files whose dirty pages have aged, and has their owner write them back. */
static gpointer cache_thread(gpointer data)
{
	struct cache *c = data;
	gint64 period = c->expire_us ? MAX(c->expire_us / 4, 100 * 1000) : G_USEC_PER_SEC;
	gint64 next_scan = g_get_monotonic_time() + period;

	g_mutex_lock(&c->lock);
	while (!c->stopping) {
		GHashTableIter it;
		gpointer k;
		GArray *keys;

		if (c->submit->len == 0)
			g_cond_wait_until(&c->wake, &c->lock, next_scan);
		if (c->stopping)
			break;
		/* files past half their limit first, then (periodically) all
		 * files with dirty pages, for expiry */
		keys = c->submit;
		c->submit = g_array_new(FALSE, FALSE, sizeof(uint64_t));
		if (c->expire_us && g_get_monotonic_time() >= next_scan) {
			next_scan = g_get_monotonic_time() + period;
			g_hash_table_iter_init(&it, c->dirty);
			while (g_hash_table_iter_next(&it, &k, NULL))
				g_array_append_val(keys, *(uint64_t *)k);
		}
		g_mutex_unlock(&c->lock);
		for (guint i = 0; i < keys->len; i++)
			c->ops->writeback(g_array_index(keys, uint64_t, i), c->owner_ctx);
		if (keys->len && c->ops->written_back)
			c->ops->written_back(c->owner_ctx);
		g_array_free(keys, TRUE);
		g_mutex_lock(&c->lock);
	}
	g_mutex_unlock(&c->lock);
	return NULL;
}

struct cache *cache_new(const struct cache_params *p, const struct cache_ops *ops,
			void *owner_ctx)
{
	struct cache *c = g_new0(struct cache, 1);

	c->ops = ops;
	c->owner_ctx = owner_ctx;
	c->limit_pages = rsv_page_up(p->dirty_limit);
	c->expire_us = (gint64)p->dirty_expire_ms * 1000;
	g_mutex_init(&c->lock);
	g_cond_init(&c->wake);
	c->dirty = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, NULL);
	c->submit = g_array_new(FALSE, FALSE, sizeof(uint64_t));
	if (c->expire_us > 0 || c->limit_pages > 0)
		c->thread = g_thread_new("writeback", cache_thread, c);
	return c;
}

void cache_stop(struct cache *c)
{
	if (!c)
		return;
	g_mutex_lock(&c->lock);
	c->stopping = true;
	g_cond_signal(&c->wake);
	g_mutex_unlock(&c->lock);
	if (c->thread)
		g_thread_join(c->thread);
	c->thread = NULL;
}

void cache_free(struct cache *c)
{
	if (!c)
		return;
	cache_stop(c);
	g_hash_table_destroy(c->dirty);
	g_array_free(c->submit, TRUE);
	g_cond_clear(&c->wake);
	g_mutex_clear(&c->lock);
	g_free(c);
}

void cache_get_stats(struct cache *c, struct cache_stats *st)
{
	st->dirty_pages = __atomic_load_n(&c->dirty_pages, __ATOMIC_RELAXED);
	g_mutex_lock(&c->lock);
	st->dirty_files = g_hash_table_size(c->dirty);
	g_mutex_unlock(&c->lock);
	st->writebacks = __atomic_load_n(&c->writebacks, __ATOMIC_RELAXED);
	st->throttled = __atomic_load_n(&c->throttled, __ATOMIC_RELAXED);
	st->throttle_wait_us = __atomic_load_n(&c->throttle_wait_us, __ATOMIC_RELAXED);
	st->background = __atomic_load_n(&c->background, __ATOMIC_RELAXED);
	st->syncs = __atomic_load_n(&c->syncs, __ATOMIC_RELAXED);
	st->max_file_dirty_pages = __atomic_load_n(&c->max_file_dirty_pages, __ATOMIC_RELAXED);
}

uint64_t cache_dirty_limit(const struct cache *c)
{
	return c->limit_pages << RSV_PAGE_SHIFT;
}
