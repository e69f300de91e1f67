/* Unit tests for cache/: dirty accounting, the per-file limit (with its
 * pipelined writeback), drop, sync, and the background expiry thread. */
#include <fcntl.h>
#include <glib.h>
#include <stdlib.h>
#include <unistd.h>

#include "cache.h"

struct fixture {
	int fd;
	char path[64];
};

static void fx_setup(struct fixture *f, gconstpointer data)
{
	char buf[4096] = { 1 };

	g_strlcpy(f->path, "/tmp/test_cache.XXXXXX", sizeof(f->path));
	f->fd = mkstemp(f->path);
	g_assert_cmpint(f->fd, >=, 0);
	for (int i = 0; i < 256; i++)
		g_assert_cmpint(pwrite(f->fd, buf, sizeof(buf), (off_t)i * 4096), ==, 4096);
}

static void fx_teardown(struct fixture *f, gconstpointer data)
{
	close(f->fd);
	unlink(f->path);
}

static void no_writeback(uint64_t key, void *ctx)
{
}

static const struct cache_ops ops_none = { .writeback = no_writeback };

static void test_accounting(struct fixture *f, gconstpointer data)
{
	struct cache_params p = { 0, 0 };	/* unlimited, no thread */
	struct cache *c = cache_new(&p, &ops_none, NULL);
	struct cache_file cf;
	struct cache_stats st;

	cache_file_init(&cf, 7);
	g_assert_cmpint(cache_file_dirtied(c, &cf, f->fd, 0, 10), ==, 0);
	g_assert_cmpint(cache_file_dirtied(c, &cf, f->fd, 5, 20), ==, 0);	/* overlap counts once */
	g_assert_cmpuint(cache_file_dirty_pages(&cf), ==, 20);
	cache_get_stats(c, &st);
	g_assert_cmpuint(st.dirty_pages, ==, 20);
	g_assert_cmpuint(st.dirty_files, ==, 1);
	cache_file_drop(c, &cf, 0, 5);
	g_assert_cmpuint(cache_file_dirty_pages(&cf), ==, 15);
	g_assert_cmpint(cache_file_sync(c, &cf, f->fd, true), ==, 0);
	g_assert_cmpuint(cache_file_dirty_pages(&cf), ==, 0);
	cache_get_stats(c, &st);
	g_assert_cmpuint(st.dirty_pages, ==, 0);
	g_assert_cmpuint(st.dirty_files, ==, 0);
	g_assert_cmpuint(st.syncs, ==, 1);
	cache_file_finish(c, &cf);
	cache_free(c);
}

/* A file never holds more than its limit plus one request. */
static void test_limit(struct fixture *f, gconstpointer data)
{
	struct cache_params p = { 16 * 4096, 0 };
	struct cache *c = cache_new(&p, &ops_none, NULL);
	struct cache_file cf;
	struct cache_stats st;

	cache_file_init(&cf, 1);
	for (uint64_t pg = 0; pg < 256; pg += 4) {
		g_assert_cmpint(cache_file_dirtied(c, &cf, f->fd, pg, pg + 4), ==, 0);
		g_assert_cmpuint(cache_file_dirty_pages(&cf), <=, 16);
	}
	cache_get_stats(c, &st);
	g_assert_cmpuint(st.max_file_dirty_pages, <=, 16 + 4);
	g_assert_cmpuint(st.throttled, >, 0);
	g_assert_cmpuint(st.writebacks, >, 0);
	/* rewriting pages already in flight makes them dirty, not twice counted */
	cache_file_dirtied(c, &cf, f->fd, 0, 2);
	cache_file_dirtied(c, &cf, f->fd, 0, 2);
	cache_get_stats(c, &st);
	g_assert_cmpuint(st.dirty_pages, ==, cache_file_dirty_pages(&cf));
	cache_file_finish(c, &cf);
	cache_get_stats(c, &st);
	g_assert_cmpuint(st.dirty_pages, ==, 0);
	cache_free(c);
}

/* The owner side of the background thread, as fs/mount.c does it: pin
 * and lock the file, let the cache work, start the writeback it hands out
 * outside the lock; after the round, wait for it and tell the cache. */
struct owner {
	struct cache *c;
	struct cache_file *cf;
	uint64_t key;
	int fd;
	GMutex lock;
	int calls;			/* callbacks */
	int submits;			/* writebacks started */
	int completions;		/* writebacks waited for */
	bool run;			/* the last one started was one run of pages */
	bool wait;			/* wait for a started writeback, as mount.c does */
	off_t start, len;		/* cache thread: the writeback started this round */
};

static void owner_writeback(uint64_t key, void *arg)
{
	struct owner *x = arg;
	uint32_t seq;
	bool submit;

	g_mutex_lock(&x->lock);
	g_assert_cmpuint(key, ==, x->key);
	submit = cache_file_background(x->c, x->cf, x->fd, &x->start, &x->len, &seq,
				       &x->run);
	x->calls++;
	x->submits += submit;
	g_mutex_unlock(&x->lock);
	if (!submit) {
		x->len = 0;
		return;
	}
	g_assert_cmpint(sync_file_range(x->fd, x->start, x->len, SYNC_FILE_RANGE_WRITE), ==, 0);
	g_mutex_lock(&x->lock);
	cache_file_submitted(x->cf, seq);
	g_mutex_unlock(&x->lock);
}

static void owner_written_back(void *arg)
{
	struct owner *x = arg;

	if (!x->wait || x->len == 0)
		return;
	g_assert_cmpint(sync_file_range(x->fd, x->start, x->len, SYNC_FILE_RANGE_WAIT_BEFORE), ==, 0);
	g_mutex_lock(&x->lock);
	cache_file_written_back(x->c, x->cf, x->start, x->len);
	x->completions++;
	g_mutex_unlock(&x->lock);
	x->len = 0;
}

static const struct cache_ops owner_ops = {
	.writeback = owner_writeback,
	.written_back = owner_written_back,
};

/* A cache with @p whose one file @cf (@key) gets pages [start, end) dirty. */
static void owner_start(struct owner *x, struct fixture *f, const struct cache_params *p,
			struct cache_file *cf, uint64_t key, uint64_t start, uint64_t end)
{
	x->fd = f->fd;
	x->key = key;
	x->cf = cf;
	g_mutex_init(&x->lock);
	x->c = cache_new(p, &owner_ops, x);
	cache_file_init(cf, key);
	g_mutex_lock(&x->lock);
	g_assert_cmpint(cache_file_dirtied(x->c, cf, f->fd, start, end), ==, 0);
	g_mutex_unlock(&x->lock);
}

static void test_expire(struct fixture *f, gconstpointer data)
{
	struct cache_params p = { 0, 200 };	/* 200 ms */
	struct owner x = { .wait = true };
	struct cache_file cf;
	struct cache_stats st;
	gint64 deadline;

	owner_start(&x, f, &p, &cf, 42, 3, 9);
	g_mutex_lock(&x.lock);
	g_assert_cmpint(cache_file_dirtied(x.c, &cf, f->fd, 20, 25), ==, 0);
	g_mutex_unlock(&x.lock);
	deadline = g_get_monotonic_time() + 5 * G_USEC_PER_SEC;
	for (;;) {
		g_mutex_lock(&x.lock);
		uint64_t left = cache_file_dirty_pages(&cf);
		g_mutex_unlock(&x.lock);
		if (left == 0)
			break;
		g_assert_cmpint(g_get_monotonic_time(), <, deadline);
		g_usleep(20000);
	}
	cache_get_stats(x.c, &st);
	g_assert_cmpuint(st.background, ==, 1);
	g_assert_cmpuint(st.writebacks, ==, 1);
	g_assert_cmpuint(st.dirty_pages, ==, 0);
	g_assert_cmpuint(st.dirty_files, ==, 0);	/* written back: not listed any more */
	g_assert_false(x.run);				/* 3..9 and 20..25 */
	g_mutex_lock(&x.lock);
	cache_file_finish(x.c, &cf);
	g_mutex_unlock(&x.lock);
	cache_free(x.c);
	g_assert_cmpint(x.calls, >=, 1);
	g_mutex_clear(&x.lock);
}

/* Past half its limit a file is queued; the background thread starts its
 * writeback through the owner (cache_file_background outside our lock).
 * @wait: the owner also waits for it, as mount.c does, and the pages are
 * clean without the writer waiting; otherwise they stay in flight until a
 * writer past the limit waits for them. */
static void background_submit(struct fixture *f, bool wait)
{
	struct cache_params p = { 64 * 4096, 0 };	/* limit 64 pages, no expiry */
	struct owner x = { .wait = wait };
	struct cache_file cf;
	struct cache_stats st;
	gint64 deadline;

	owner_start(&x, f, &p, &cf, 5, 0, 40);	/* > half */
	deadline = g_get_monotonic_time() + 5 * G_USEC_PER_SEC;
	for (;;) {
		g_mutex_lock(&x.lock);
		int done = wait ? x.completions : x.submits;
		uint64_t inflight = rsv_map_pages(&cf.inflight), dirty = rsv_map_pages(&cf.dirty);
		g_mutex_unlock(&x.lock);
		if (done == 1) {
			/* in flight, still counted until waited for; or clean */
			g_assert_cmpuint(inflight, ==, wait ? 0 : 40);
			g_assert_cmpuint(dirty, ==, 0);
			g_assert_true(x.run);			/* 0..40 */
			break;
		}
		g_assert_cmpint(g_get_monotonic_time(), <, deadline);
		g_usleep(10000);
	}
	cache_get_stats(x.c, &st);
	g_assert_cmpuint(st.dirty_pages, ==, wait ? 0 : 40);
	g_assert_cmpuint(st.writebacks, ==, wait ? 1 : 0);
	/* past the limit the writer waits for what is in flight; a writer
	 * under it after the owner's wait is not held back at all */
	g_mutex_lock(&x.lock);
	g_assert_cmpint(cache_file_dirtied(x.c, &cf, f->fd, 40, wait ? 100 : 70), ==, 0);
	g_assert_cmpuint(cache_file_dirty_pages(&cf), <=, 64);
	g_assert_cmpuint(rsv_map_pages(&cf.inflight), ==, 0);
	cache_get_stats(x.c, &st);
	g_assert_cmpuint(st.throttled, ==, wait ? 0 : 1);
	cache_file_finish(x.c, &cf);
	g_mutex_unlock(&x.lock);
	cache_free(x.c);
	g_mutex_clear(&x.lock);
}

static void test_background_submit(struct fixture *f, gconstpointer data)
{
	background_submit(f, false);
}

static void test_background_written_back(struct fixture *f, gconstpointer data)
{
	background_submit(f, true);
}

int main(int argc, char *argv[])
{
	g_test_init(&argc, &argv, NULL);
	g_test_add("/cache/accounting", struct fixture, NULL, fx_setup, test_accounting, fx_teardown);
	g_test_add("/cache/limit", struct fixture, NULL, fx_setup, test_limit, fx_teardown);
	g_test_add("/cache/expire", struct fixture, NULL, fx_setup, test_expire, fx_teardown);
	g_test_add("/cache/background-submit", struct fixture, NULL, fx_setup,
		   test_background_submit, fx_teardown);
	g_test_add("/cache/background-written-back", struct fixture, NULL, fx_setup,
		   test_background_written_back, fx_teardown);
	return g_test_run();
}
