"""mmap_threads.py DIR NTHREADS STEP

NTHREADS threads, each with its own file DIR/t<i>, grow their file with
ftruncate by STEP bytes (falling back to one page when STEP does not fit)
and fill each new region through a MAP_SHARED mapping, until a one-page
ftruncate fails.  Every failure must be ENOSPC; right after it, statfs must
show fewer free pages than the failed request needed (nothing frees space
here, so free space only shrinks).  Prints a JSON summary.
"""
import errno
import json
import mmap
import os
import sys
import threading

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..'))
import rfs  # noqa: E402

d, nthreads, step = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
results = {}
problems = []
lock = threading.Lock()


def worker(i):
    path = os.path.join(d, 't%d' % i)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    size = 0
    cur = step
    enospc = 0
    try:
        while True:
            try:
                os.ftruncate(fd, size + cur)
            except OSError as e:
                if e.errno != errno.ENOSPC:
                    with lock:
                        problems.append('t%d: ftruncate %d: %s' % (i, size + cur, e))
                    break
                enospc += 1
                free = os.statvfs(d).f_bfree
                if free >= cur // 4096:
                    with lock:
                        problems.append('t%d: ENOSPC for %d pages while %d free' %
                                        (i, cur // 4096, free))
                if os.fstat(fd).st_size != size:
                    with lock:
                        problems.append('t%d: failed ftruncate changed size' % i)
                if cur == 4096:
                    break
                cur = 4096
                continue
            mm = mmap.mmap(fd, size + cur, mmap.MAP_SHARED,
                           mmap.PROT_READ | mmap.PROT_WRITE)
            mm[size:size + cur] = rfs.pattern(i, size, cur)
            mm.flush()
            mm.close()
            size += cur
        os.fsync(fd)
    finally:
        os.close(fd)
    with lock:
        results['t%d' % i] = {'size': size, 'enospc': enospc}


ts = [threading.Thread(target=worker, args=(i,)) for i in range(nthreads)]
for t in ts:
    t.start()
for t in ts:
    t.join()
print(json.dumps({'files': results, 'problems': problems}))
sys.exit(1 if problems else 0)
