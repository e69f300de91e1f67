"""fill.py DIR NWRITERS CHUNK [--journal J] [--sync]

NWRITERS threads each append rfs.pattern(i) to DIR/w<i> in CHUNK-byte
write()s until write() fails with ENOSPC.  Short writes are recorded and
the remainder retried at the new offset, as a careful program would.
With --journal, every acknowledged size is appended to J (outside the
mount) so a crash test can check what was acknowledged.  Prints JSON.
"""
import argparse
import errno
import json
import os
import sys
import threading

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..'))
import rfs  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument('dir')
ap.add_argument('n', type=int)
ap.add_argument('chunk', type=int)
ap.add_argument('--journal')
ap.add_argument('--sync', action='store_true')
a = ap.parse_args()

res = {}
lock = threading.Lock()
jfd = os.open(a.journal, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644) if a.journal else None


def worker(i):
    path = os.path.join(a.dir, 'w%d' % i)
    r = {'acked': 0, 'short': 0, 'enospc': False, 'error': None}
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    except OSError as e:
        r['error'] = 'open: %s' % e
        with lock:
            res['w%d' % i] = r
        return
    off = 0
    try:
        while True:
            buf = rfs.pattern(i, off, a.chunk)
            try:
                n = os.write(fd, buf)
            except OSError as e:
                if e.errno == errno.ENOSPC:
                    r['enospc'] = True
                else:
                    r['error'] = str(e)
                break
            if n < len(buf):
                r['short'] += 1
            off += n
            r['acked'] = off
            if a.sync:
                os.fdatasync(fd)
            if jfd is not None:
                os.write(jfd, b'w%d %d\n' % (i, off))
    finally:
        try:
            os.close(fd)
        except OSError as e:
            r['error'] = r['error'] or 'close: %s' % e
    with lock:
        res['w%d' % i] = r


ts = [threading.Thread(target=worker, args=(i,)) for i in range(a.n)]
for t in ts:
    t.start()
for t in ts:
    t.join()
print(json.dumps(res))
