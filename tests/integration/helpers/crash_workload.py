"""crash_workload.py DIR JOURNAL SEED

Random creates, appends, overwrites, fsyncs, renames and unlinks in DIR until
killed or until the filesystem fails.  File id N always holds
rfs.pattern(N) at every offset below its size, so any byte that does not
match after a crash was never written.

JOURNAL (outside the mount, append-only) records what was acknowledged:
  create N NAME SIZE   file and its entry fsynced (file + dir)
  size N SIZE          file fsynced at SIZE (it only grows)
  rintent N NEW        about to rename to NEW
  rdone N NEW          rename done and dir fsynced
  uintent N            about to unlink
"""
import os
import random
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..'))
import rfs  # noqa: E402

d, journal, seed = sys.argv[1], sys.argv[2], int(sys.argv[3])
rnd = random.Random(seed)
j = os.open(journal, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
files = {}          # id -> [name, size]
nxt = 0


def log(s):
    os.write(j, (s + '\n').encode())


def dsync():
    fd = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


try:
    while True:
        op = rnd.random()
        if op < 0.2 or not files:
            i = nxt
            nxt += 1
            name = 'f%d' % i
            n = rnd.choice([0, 1, 100, 4096, 5000, 65536, 200000])
            fd = os.open(os.path.join(d, name), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            try:
                os.write(fd, rfs.pattern(i, 0, n))
                os.fsync(fd)
            finally:
                os.close(fd)
            dsync()
            files[i] = [name, n]
            log('create %d %s %d' % (i, name, n))
        elif op < 0.6:
            i = rnd.choice(list(files))
            name, size = files[i]
            n = rnd.choice([1, 333, 4096, 12288, 100000])
            fd = os.open(os.path.join(d, name), os.O_WRONLY)
            try:
                os.pwrite(fd, rfs.pattern(i, size, n), size)
                if rnd.random() < 0.3 and size > 0:      # rewrite old bytes, same values
                    off = rnd.randrange(size)
                    ln = min(size - off, 9000)
                    os.pwrite(fd, rfs.pattern(i, off, ln), off)
                if rnd.random() < 0.7:
                    (os.fsync if rnd.random() < 0.5 else os.fdatasync)(fd)
                    log('size %d %d' % (i, size + n))
            finally:
                os.close(fd)
            files[i][1] = size + n
        elif op < 0.8:
            i = rnd.choice(list(files))
            new = 'r%d_%d' % (i, rnd.randrange(1000))
            log('rintent %d %s' % (i, new))
            os.rename(os.path.join(d, files[i][0]), os.path.join(d, new))
            dsync()
            files[i][0] = new
            log('rdone %d %s' % (i, new))
        else:
            i = rnd.choice(list(files))
            log('uintent %d' % i)
            os.unlink(os.path.join(d, files[i][0]))
            del files[i]
except OSError as e:
    print('stopped: %s' % e)
    sys.exit(0)
