"""seek_mapped.py DIR NPROCS ITERS

NPROCS processes, each with its own file DIR/s<i> (64 reserved pages, eof
mode): punch the whole file, store one byte through a MAP_SHARED mapping
into page k, then lseek(SEEK_DATA) from 0, which must say page k.  The daemon
finds a hole first and has the kernel write the mapped page back before it
answers; many of these at once must not take every daemon thread.
Exit status 0, or 1 with the first wrong answer on stderr.
"""
import mmap
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..'))
import rfs  # noqa: E402

d, nprocs, iters = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
PAGES = 64


def child(i):
    fd = os.open(os.path.join(d, 's%d' % i), os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
    os.ftruncate(fd, PAGES * rfs.PAGE)
    m = mmap.mmap(fd, PAGES * rfs.PAGE, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
    for k in range(iters):
        page = 1 + k % (PAGES - 2)
        rfs.fallocate(fd, rfs.FALLOC_FL_PUNCH_HOLE | rfs.FALLOC_FL_KEEP_SIZE, 0, PAGES * rfs.PAGE)
        m[page * rfs.PAGE + 7] = 0x78
        got = os.lseek(fd, 0, os.SEEK_DATA)
        if got != page * rfs.PAGE:
            sys.stderr.write('s%d: SEEK_DATA after a store to page %d: %d\n' % (i, page, got))
            return 1
    return 0


pids = []
for i in range(nprocs):
    pid = os.fork()
    if pid == 0:
        try:
            code = child(i)
        except Exception as e:
            sys.stderr.write('s%d: %r\n' % (i, e))
            code = 1
        os._exit(code)
    pids.append(pid)
bad = 0
for pid in pids:
    _, st = os.waitpid(pid, 0)
    bad |= not os.WIFEXITED(st) or os.WEXITSTATUS(st) != 0
sys.exit(1 if bad else 0)
