"""mmap_write.py PATH SEED [--size N] [--truncate] [--msync-every N] [--offset O]

Maps PATH shared (after ftruncate to --size when --truncate), writes the
rfs.pattern(SEED) bytes over [offset, size) through the mapping, msyncs every
--msync-every bytes and at the end, then fsyncs.  Prints one JSON line.
Runs as its own process so a SIGBUS shows as exit status -7, not as a dead
test runner.  --watch-bdi DIR samples DIR/... dirty figures while writing.
"""
import argparse
import json
import mmap
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..'))
import rfs  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument('path')
ap.add_argument('seed', type=int)
ap.add_argument('--size', type=int)
ap.add_argument('--offset', type=int, default=0)
ap.add_argument('--truncate', action='store_true')
ap.add_argument('--msync-every', type=int, default=0)
ap.add_argument('--chunk', type=int, default=1 << 20)
a = ap.parse_args()

res = {'ok': False}
fd = os.open(a.path, os.O_RDWR | os.O_CREAT, 0o644)
try:
    if a.truncate:
        os.ftruncate(fd, a.size)
    size = a.size if a.size is not None else os.fstat(fd).st_size
    mm = mmap.mmap(fd, size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
    off = a.offset
    since = 0
    msyncs = 0
    while off < size:
        n = min(a.chunk, size - off)
        mm[off:off + n] = rfs.pattern(a.seed, off, n)
        off += n
        since += n
        if a.msync_every and since >= a.msync_every:
            mm.flush()
            msyncs += 1
            since = 0
    mm.flush()
    mm.close()
    os.fsync(fd)
    res = {'ok': True, 'size': size, 'msyncs': msyncs}
except OSError as e:
    res = {'ok': False, 'errno': e.errno, 'error': str(e)}
finally:
    os.close(fd)
print(json.dumps(res))
sys.exit(0 if res['ok'] else 1)
