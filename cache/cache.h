/* cache/ — per-file page state (DIRTY vs CLEAN), dirty limits and writeback.
 *
 * A page a file has written to its backing file but that we have not yet
 * pushed to stable storage is DIRTY; after sync_file_range/fdatasync it is
 * CLEAN.  Each file keeps its dirty pages as extents (struct rsv_map), not
 * per-page arrays.  Past the per-file dirty limit the writer's request is
 * answered only after enough of that file has been written back: the
 * userspace counterpart of balance_dirty_pages.  A background thread starts
 * writeback at half the limit, and of files whose dirty pages are older than
 * dirty_expire, waits for it outside the files' locks and counts those pages
 * clean; so a writer waits only when the disk falls behind.
 *
 * Locking: struct cache_file is protected by its owner's lock (the inode's
 * mutex in fs/); the owner calls every cache_file_* function with it held.
 * struct cache has its own mutex for the list of dirty files and counters;
 * lock order: owner's lock, then cache->lock.
 */
#ifndef CACHE_H
#define CACHE_H

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "reserve.h"

struct cache;

struct cache_file {
	uint64_t key;			/* immutable: the owner's name for this file (ino) */
	struct rsv_map dirty;		/* owner's lock: dirty pages not yet sent to the disk */
	struct rsv_map inflight;	/* owner's lock: dirty pages under writeback, not waited for */
	gint64 dirty_since;		/* owner's lock: monotonic us since the pages not yet
					 * sent to the disk gather (first dirtying, or the
					 * last batch handed out); 0: neither dirty nor in
					 * flight pages, and not in cache->dirty */
	bool submit_queued;		/* owner's lock: the background thread is to start
					 * writeback of the dirty pages */
	uint32_t submit_seq;		/* owner's lock: in-flight batches handed out */
	uint32_t submitted_seq;		/* owner's lock: the newest batch whose writeback
					 * has been started (== submit_seq: all of them) */
	uint64_t writebacks;		/* owner's lock: writebacks done on this file */
	uint64_t throttles;		/* owner's lock: requests held back by the limit */
};

/* What the background writeback needs from the owner of the files: the
 * thread collects keys (files past half their dirty limit, files whose dirty
 * pages aged) under cache->lock, drops it, and asks the owner to find, pin
 * and lock each file and call cache_file_background() on it.  The owner's
 * file may be gone by then. */
struct cache_ops {
	void (*writeback)(uint64_t key, void *owner_ctx);
	/* After a round of writeback() calls: wait for the writebacks they
	 * started, then, with each file locked again, call
	 * cache_file_written_back().  Starting every file's batch before
	 * waiting for any keeps the disk busy with all of them.  Without it
	 * (NULL) pages stay counted in flight until the file's writer passes
	 * its limit or syncs. */
	void (*written_back)(void *owner_ctx);
};

struct cache_params {
	uint64_t dirty_limit;		/* bytes per file; 0 = unlimited */
	uint64_t dirty_expire_ms;	/* background writeback age; 0 = off */
};

struct cache *cache_new(const struct cache_params *p, const struct cache_ops *ops,
			void *owner_ctx);
/* Stops the background thread: no owner callback runs after it returns.
 * The files can then be finished without one pinned by the thread. */
void cache_stop(struct cache *c);
/* Stops the thread if still running; every cache_file must be finished first. */
void cache_free(struct cache *c);
void cache_file_init(struct cache_file *cf, uint64_t key);
/* Forget @cf: the file is closed; what it left dirty is the backing
 * filesystem's to write back. */
void cache_file_finish(struct cache *c, struct cache_file *cf);
/* Pages [start,end) of @cf were just written to @fd.  Throttles: when the
 * file is past its limit, writes back before returning.  0 or -errno. */
int cache_file_dirtied(struct cache *c, struct cache_file *cf, int fd,
		       uint64_t start, uint64_t end);
/* Pages beyond @page are gone (truncate) / [start,end) punched. */
void cache_file_drop(struct cache *c, struct cache_file *cf, uint64_t start, uint64_t end);
/* The background thread's work on @cf (owner's lock held): when the file
 * was queued past half its limit, or its unsent dirty pages have gathered
 * for dirty_expire (none is older), move its dirty pages in flight and return true with the
 * byte span whose writeback the caller starts after dropping its lock
 * (sync_file_range(SYNC_FILE_RANGE_WRITE) on a dup of @fd): neither the CPU
 * work of submitting I/O nor the wait for it holds up the file's writers.
 * *@run: the span is one run of dirty pages (a sequential writer's). */
bool cache_file_background(struct cache *c, struct cache_file *cf, int fd,
			   off_t *start, off_t *len, uint32_t *seq, bool *run);
/* The writeback of batch @seq from cache_file_background() has been started
 * (owner's lock held): a throttled writer then only waits for it. */
void cache_file_submitted(struct cache_file *cf, uint32_t seq);
/* The owner has since waited (SYNC_FILE_RANGE_WAIT_BEFORE, without its
 * lock, from written_back()) for every page under writeback in the batch's
 * span [start, start + len): those in flight there are clean now (owner's
 * lock held).  So a writer past its limit only waits when the disk is
 * behind. */
void cache_file_written_back(struct cache *c, struct cache_file *cf, off_t start, off_t len);
/* fsync/fdatasync: everything of @cf to stable storage. 0 or -errno. */
int cache_file_sync(struct cache *c, struct cache_file *cf, int fd, bool datasync);
uint64_t cache_file_dirty_pages(const struct cache_file *cf);

struct cache_stats {
	uint64_t dirty_pages;		/* all files */
	uint64_t dirty_files;
	uint64_t writebacks;		/* limit + background + sync */
	uint64_t throttled;		/* requests held back by the dirty limit */
	uint64_t throttle_wait_us;	/* time those requests were held back */
	uint64_t background;		/* background writebacks */
	uint64_t syncs;			/* fsync/fdatasync */
	uint64_t max_file_dirty_pages;	/* high-water mark of one file's dirty pages */
};
void cache_get_stats(struct cache *c, struct cache_stats *st);
uint64_t cache_dirty_limit(const struct cache *c);

#endif /* CACHE_H */
