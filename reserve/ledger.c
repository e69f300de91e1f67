/* reserve/ledger.c — the store-wide capacity ledger.
 *
 * Charges and releases are CAS loops on the counters, so any number of
 * threads charge concurrently and a charge is all-or-nothing against the
 * capacity it saw.
 *
 * Resizing is the one operation that touches two counters: a shrink must see
 * "reserved <= new capacity" and publish the new capacity as one step, or a
 * charge that had already read the old capacity could commit after the
 * shrink and leave reserved > capacity.  (A generation or flag bit inside the
 * counter would only narrow that window: a charge preempted across a whole
 * resize sees the same counter value again, the ABA problem.)  So a charge
 * reads the capacity and commits its CAS while holding a gate in shared
 * mode, and a resize holds the gate exclusively: no charge is ever between
 * reading the capacity and committing while the capacity changes.  Charges
 * never exclude each other; only a resize (an administrator's setfattr)
 * briefly stops them.  Releases and forced charges never need the gate:
 * lowering usage or ignoring capacity cannot break the invariant.
 *
 * The gates are process-wide rather than per ledger because struct
 * rsv_ledger (public) has no room for a lock; a daemon has one ledger, and
 * sharing a gate between ledgers only serialises their (rare) resizes.
 * They are leaves: nothing is called while one is held.
 *
 * The gates are glibc rwlocks of the writer-preferring kind: the default kind
 * lets a new reader in while a writer waits, so under a steady stream of
 * overlapping charges a resize could starve forever.  (GRWLock uses the
 * default kind.)  Statically initialised, so there is no lazy setup to race.
 */
#include <errno.h>
#include <pthread.h>

#include <glib.h>

#include "reserve.h"

static pthread_rwlock_t rsv_pages_gate = PTHREAD_RWLOCK_WRITER_NONRECURSIVE_INITIALIZER_NP;
static pthread_rwlock_t rsv_inodes_gate = PTHREAD_RWLOCK_WRITER_NONRECURSIVE_INITIALIZER_NP;

/* The gates cannot fail here: they are valid, never held recursively, and
 * glibc's reader count does not run out before threads do. */
static void rsv_gate_shared(pthread_rwlock_t *gate)
{
	int err = pthread_rwlock_rdlock(gate);

	if (err)
		g_error("rsv: rwlock_rdlock: %s", g_strerror(err));
}

static void rsv_gate_exclusive(pthread_rwlock_t *gate)
{
	int err = pthread_rwlock_wrlock(gate);

	if (err)
		g_error("rsv: rwlock_wrlock: %s", g_strerror(err));
}

static void rsv_gate_open(pthread_rwlock_t *gate)
{
	pthread_rwlock_unlock(gate);
}

static inline uint64_t rsv_load(const uint64_t *p)
{
	return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}

void rsv_ledger_init(struct rsv_ledger *l, uint64_t capacity_pages,
		     uint64_t nr_inodes, enum rsv_mode mode)
{
	int i;

	__atomic_store_n(&l->capacity_pages, capacity_pages, __ATOMIC_RELAXED);
	__atomic_store_n(&l->reserved_pages, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&l->nr_inodes, nr_inodes, __ATOMIC_RELAXED);
	__atomic_store_n(&l->used_inodes, 0, __ATOMIC_RELAXED);
	for (i = 0; i < RSV_EV_NR; i++)
		__atomic_store_n(&l->enospc[i], 0, __ATOMIC_RELAXED);
	l->mode = mode;
}

/* Charges up to @want against @limit on counter @used; with @all, only all
 * of it or nothing.  Returns what was charged.  The caller holds the
 * matching gate shared, so *limit is stable here. */
static uint64_t rsv_take(uint64_t *used, const uint64_t *limit, uint64_t want, bool all)
{
	uint64_t cap = rsv_load(limit);
	uint64_t old = rsv_load(used);
	uint64_t take;

	do {
		uint64_t room = old < cap ? cap - old : 0;

		take = want <= room ? want : room;
		if (take == 0 || (all && take < want))
			return 0;
	} while (!__atomic_compare_exchange_n(used, &old, old + take, true,
					      __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE));
	return take;
}

/* Gives back @n from counter @used.  Giving back more than was taken is a
 * bug in the caller; clamping at 0 keeps the store usable (an underflow would
 * make it look full forever) while the critical makes the bug loud. */
static void rsv_give(uint64_t *used, uint64_t n, const char *what)
{
	uint64_t old = rsv_load(used);
	uint64_t new;

	do {
		if (old < n) {
			g_critical("rsv: releasing %" G_GUINT64_FORMAT " %s but only %"
				   G_GUINT64_FORMAT " are charged", n, what, old);
			new = 0;
		} else {
			new = old - n;
		}
	} while (!__atomic_compare_exchange_n(used, &old, new, true,
					      __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE));
}

/* Sets @limit to @new unless @used is already above it.  Holding the gate
 * exclusively means no charge is in flight, so the check and the store are
 * one step as far as chargers can tell. */
static int rsv_resize(pthread_rwlock_t *gate, uint64_t *limit, const uint64_t *used, uint64_t new)
{
	int ret = 0;

	rsv_gate_exclusive(gate);
	if (rsv_load(used) > new)
		ret = -ENOSPC;
	else
		__atomic_store_n(limit, new, __ATOMIC_RELEASE);
	rsv_gate_open(gate);
	return ret;
}

int rsv_charge(struct rsv_ledger *l, uint64_t pages)
{
	uint64_t got;

	if (pages == 0)
		return 0;
	rsv_gate_shared(&rsv_pages_gate);
	got = rsv_take(&l->reserved_pages, &l->capacity_pages, pages, true);
	rsv_gate_open(&rsv_pages_gate);
	return got == pages ? 0 : -ENOSPC;
}

uint64_t rsv_charge_upto(struct rsv_ledger *l, uint64_t pages)
{
	uint64_t got;

	if (pages == 0)
		return 0;
	rsv_gate_shared(&rsv_pages_gate);
	got = rsv_take(&l->reserved_pages, &l->capacity_pages, pages, false);
	rsv_gate_open(&rsv_pages_gate);
	return got;
}

void rsv_release(struct rsv_ledger *l, uint64_t pages)
{
	if (pages)
		rsv_give(&l->reserved_pages, pages, "pages");
}

void rsv_charge_force(struct rsv_ledger *l, uint64_t pages)
{
	__atomic_add_fetch(&l->reserved_pages, pages, __ATOMIC_ACQ_REL);
}

int rsv_inode_get(struct rsv_ledger *l)
{
	uint64_t got;

	rsv_gate_shared(&rsv_inodes_gate);
	got = rsv_take(&l->used_inodes, &l->nr_inodes, 1, true);
	rsv_gate_open(&rsv_inodes_gate);
	return got == 1 ? 0 : -ENOSPC;
}

void rsv_inode_put(struct rsv_ledger *l)
{
	rsv_give(&l->used_inodes, 1, "inodes");
}

void rsv_inode_get_force(struct rsv_ledger *l)
{
	__atomic_add_fetch(&l->used_inodes, 1, __ATOMIC_ACQ_REL);
}

int rsv_set_capacity(struct rsv_ledger *l, uint64_t pages)
{
	return rsv_resize(&rsv_pages_gate, &l->capacity_pages, &l->reserved_pages, pages);
}

int rsv_set_nr_inodes(struct rsv_ledger *l, uint64_t nr)
{
	return rsv_resize(&rsv_inodes_gate, &l->nr_inodes, &l->used_inodes, nr);
}

void rsv_count_enospc(struct rsv_ledger *l, enum rsv_event ev)
{
	/* An out-of-range event is a caller bug, not worth losing the mount. */
	if ((unsigned)ev >= RSV_EV_NR) {
		g_critical("rsv: unknown event %d", (int)ev);
		return;
	}
	__atomic_add_fetch(&l->enospc[ev], 1, __ATOMIC_RELAXED);
}

uint64_t rsv_reserved_pages(const struct rsv_ledger *l)
{
	return rsv_load(&l->reserved_pages);
}

uint64_t rsv_capacity_pages(const struct rsv_ledger *l)
{
	return rsv_load(&l->capacity_pages);
}

uint64_t rsv_used_inodes(const struct rsv_ledger *l)
{
	return rsv_load(&l->used_inodes);
}

uint64_t rsv_nr_inodes(const struct rsv_ledger *l)
{
	return rsv_load(&l->nr_inodes);
}

uint64_t rsv_enospc_count(const struct rsv_ledger *l, enum rsv_event ev)
{
	if ((unsigned)ev >= RSV_EV_NR)
		return 0;
	return __atomic_load_n(&l->enospc[ev], __ATOMIC_RELAXED);
}

const char *rsv_event_name(enum rsv_event ev)
{
	static const char *const names[RSV_EV_NR] = {
		[RSV_EV_WRITE] = "write",
		[RSV_EV_TRUNCATE] = "truncate",
		[RSV_EV_FALLOCATE] = "fallocate",
		[RSV_EV_WRITEBACK] = "writeback",
		[RSV_EV_CREATE] = "create",
		[RSV_EV_XATTR] = "xattr",
	};

	if ((unsigned)ev >= RSV_EV_NR)
		return "unknown";
	return names[ev];
}

void rsv_statfs(const struct rsv_ledger *l, struct statvfs *st)
{
	/* Four separate loads, not one snapshot: df is advisory, and a
	 * forced charge may legitimately exceed the capacity, hence the clamps. */
	uint64_t reserved = rsv_reserved_pages(l);
	uint64_t capacity = rsv_capacity_pages(l);
	uint64_t used = rsv_used_inodes(l);
	uint64_t nr = rsv_nr_inodes(l);

	st->f_bsize = RSV_PAGE_SIZE;
	st->f_frsize = RSV_PAGE_SIZE;
	st->f_blocks = capacity;
	st->f_bfree = capacity > reserved ? capacity - reserved : 0;
	st->f_bavail = st->f_bfree;
	st->f_files = nr;
	st->f_ffree = nr > used ? nr - used : 0;
	st->f_favail = st->f_ffree;
	st->f_namemax = 255;
}
