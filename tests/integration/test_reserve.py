"""The reservation layer (issue 3): exact capacity, ENOSPC at the call, mmap
that never loses a page.  Small stores (1 MiB, 64 MiB), both modes."""

import contextlib
import errno
import json
import os
import random
import re
import signal
import struct
import subprocess
import sys
import time

import pytest

import rfs
from rfs import (FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE, FALLOC_FL_ZERO_RANGE,
                 PAGE, fallocate, pattern)

MiB = 1 << 20


def pages(n):
    return (n + PAGE - 1) // PAGE


def enospc(fn, *a):
    try:
        fn(*a)
    except OSError as e:
        assert e.errno == errno.ENOSPC, 'expected ENOSPC, got %s' % e
        return True
    return False


def run_fill(m, n, chunk, timeout=120):
    r = rfs.run_helper('fill.py', m.mnt, n, chunk, timeout=timeout)
    assert r.returncode == 0, r.stdout + r.stderr
    return json.loads(r.stdout)


def check_fill_readback(m, res):
    for name, r in res.items():
        assert os.stat(m.path(name)).st_size == r['acked'], name
        with open(m.path(name), 'rb') as f:
            got = f.read()
        assert got == pattern(int(name[1:]), 0, r['acked']), 'content of %s differs' % name


# ---- fills ----------------------------------------------------------------------

@pytest.mark.parametrize('size,chunk', [('1M', 65536), ('1M', 5000), ('64M', 1 << 20)])
def test_fill_one_writer(fsf, mode, size, chunk):
    m = fsf.new(size=size, reserve=mode)
    cap = rfs.parse_size(size)
    res = run_fill(m, 1, chunk)
    r = res['w0']
    assert r['error'] is None, r
    assert r['enospc'], 'writer never saw ENOSPC'
    if chunk % PAGE == 0:
        assert r['acked'] == cap, 'acknowledged %d of %d bytes' % (r['acked'], cap)
    else:
        assert pages(r['acked']) == cap // PAGE
    s = m.statvfs()
    assert s.f_bfree == 0 and s.f_bavail == 0
    p = rfs.run(['df', '--output=avail', m.mnt], check=True)
    assert p.stdout.split()[-1] == '0'
    # nothing more fits, not even one byte at EOF
    with open(m.path('w0'), 'ab', buffering=0) as f:
        assert enospc(f.write, b'x' * PAGE) or chunk % PAGE
    m.remount()
    check_fill_readback(m, res)
    assert m.free_pages() == 0


@pytest.mark.parametrize('size', ['1M', '64M'])
def test_fill_eight_writers(fsf, mode, size):
    m = fsf.new(size=size, reserve=mode)
    cap = rfs.parse_size(size)
    res = run_fill(m, 8, 16384 if size == '1M' else 262144)
    total = 0
    for name, r in res.items():
        assert r['error'] is None, (name, r)
        assert r['enospc'], '%s never saw ENOSPC' % name
        assert r['acked'] % PAGE == 0
        total += r['acked']
    assert total == cap, 'writers acknowledged %d bytes of %d' % (total, cap)
    assert m.free_pages() == 0
    m.remount()
    check_fill_readback(m, res)
    assert m.free_pages() == 0


def test_short_write_counts_whole_pages(fsf, mode):
    m = fsf.new(size='1M', reserve=mode)
    fd = os.open(m.path('a'), os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        assert os.write(fd, b'a' * (MiB - 3 * PAGE)) == MiB - 3 * PAGE
        n = os.write(fd, b'b' * (5 * PAGE + 100))
        assert n == 3 * PAGE, 'short write returned %d' % n
        with pytest.raises(OSError) as e:
            os.write(fd, b'c')
        assert e.value.errno == errno.ENOSPC
        assert os.fstat(fd).st_size == MiB
    finally:
        os.close(fd)
    # unaligned tail: the partial page is already charged, so bytes fit into it
    os.truncate(m.path('a'), MiB - 100)
    with open(m.path('a'), 'ab') as f:
        f.write(b'd' * 100)
    assert os.stat(m.path('a')).st_size == MiB


# ---- truncate -----------------------------------------------------------------------

def test_ftruncate_past_capacity(fsf, mode):
    m = fsf.new(size='1M', reserve=mode)
    fd = os.open(m.path('t'), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        os.write(fd, b'x' * 10000)
        free = m.free_pages()
        if mode == 'eof':
            assert enospc(os.ftruncate, fd, 2 * MiB)
            assert os.fstat(fd).st_size == 10000
            assert m.free_pages() == free
            assert enospc(os.truncate, m.path('t'), MiB + 1)
            assert os.stat(m.path('t')).st_size == 10000
            os.ftruncate(fd, MiB)       # exactly the capacity fits
            assert m.free_pages() == 0
        else:
            os.ftruncate(fd, 100 * MiB)
            assert os.fstat(fd).st_size == 100 * MiB
            assert m.free_pages() == free, 'holes must be free in write mode'
            assert os.pread(fd, 10, 50 * MiB) == b'\0' * 10
            # writing into the hole charges exactly the pages written
            os.pwrite(fd, b'y' * PAGE, 50 * MiB)
            assert m.free_pages() == free - 1
    finally:
        os.close(fd)
    m.remount()
    expect = MiB if mode == 'eof' else 100 * MiB
    assert os.stat(m.path('t')).st_size == expect


def test_truncate_releases(fsf, mode):
    m = fsf.new(size='1M', reserve=mode)
    with open(m.path('f'), 'wb') as f:
        f.write(b'x' * (100 * PAGE))
    assert m.free_pages() == 156
    os.truncate(m.path('f'), 10 * PAGE + 1)
    assert m.free_pages() == 256 - 11
    os.truncate(m.path('f'), 0)
    assert m.free_pages() == 256
    m.remount()
    assert m.free_pages() == 256


def test_write_past_eof_eof_mode_charges_gap(fsf):
    m = fsf.new(size='1M', reserve='eof')
    fd = os.open(m.path('f'), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        os.pwrite(fd, b'x', 100 * PAGE)
        assert m.free_pages() == 256 - 101
        assert enospc(os.pwrite, fd, b'y', 300 * PAGE)
        assert os.fstat(fd).st_size == 100 * PAGE + 1
        assert enospc(os.pwrite, fd, b'y', 5 * (1 << 30))
    finally:
        os.close(fd)


# ---- mmap at 100% ---------------------------------------------------------------------

@pytest.mark.timeout(180)
@pytest.mark.parametrize('size', ['1M', '64M'])
def test_mmap_fill_100_percent_eof(fsf, size):
    m = fsf.new(size=size, reserve='eof')
    cap = rfs.parse_size(size)
    p = m.path('mm')
    r = rfs.run_helper('mmap_write.py', p, 11, '--size', cap, '--truncate',
                       '--msync-every', 4 * MiB, timeout=150)
    assert r.returncode == 0, 'mmap writer (exit %d, -7 = SIGBUS): %s %s' % (
        r.returncode, r.stdout, r.stderr)
    assert m.free_pages() == 0
    # the store is full, the mapping still had every page
    assert enospc(os.truncate, p, cap + 1)
    m.remount()
    assert os.stat(p).st_size == cap
    with open(p, 'rb') as f:
        assert f.read() == pattern(11, 0, cap)


@pytest.mark.timeout(180)
def test_mmap_threads_to_100_percent(fsf):
    m = fsf.new(size='8M', reserve='eof')
    r = rfs.run_helper('mmap_threads.py', m.mnt, 4, 65536, timeout=150)
    assert r.returncode == 0, 'exit %d (-7 = SIGBUS): %s %s' % (r.returncode, r.stdout, r.stderr)
    out = json.loads(r.stdout)
    assert not out['problems'], out['problems']
    total = sum(f['size'] for f in out['files'].values())
    assert total == 8 * MiB
    assert m.free_pages() == 0
    m.remount()
    for name, f in out['files'].items():
        with open(m.path(name), 'rb') as fh:
            assert fh.read() == pattern(int(name[1:]), 0, f['size']), name


# ---- fallocate ---------------------------------------------------------------------------

def test_fallocate_all_or_nothing(fsf, mode):
    m = fsf.new(size='1M', reserve=mode)
    fd = os.open(m.path('f'), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        os.write(fd, b'x' * (200 * PAGE))
        free = m.free_pages()
        assert free == 56
        for fmode in (0, FALLOC_FL_KEEP_SIZE):
            assert enospc(fallocate, fd, fmode, 0, 257 * PAGE)
            assert enospc(fallocate, fd, fmode, 200 * PAGE, 57 * PAGE)
            assert os.fstat(fd).st_size == 200 * PAGE
            assert m.free_pages() == free, 'failed fallocate charged pages'
        # a range that is mostly already reserved only needs the new pages
        fallocate(fd, 0, 100 * PAGE, 156 * PAGE)
        assert os.fstat(fd).st_size == 256 * PAGE
        assert m.free_pages() == 0
        assert os.pread(fd, PAGE, 255 * PAGE) == b'\0' * PAGE
    finally:
        os.close(fd)


def test_fallocated_space_usable_on_full_store(fsf, mode):
    m = fsf.new(size='1M', reserve=mode)
    a = os.open(m.path('prealloc'), os.O_RDWR | os.O_CREAT, 0o644)
    k = os.open(m.path('keepsize'), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fallocate(a, 0, 0, 64 * PAGE)
        fallocate(k, FALLOC_FL_KEEP_SIZE, 0, 32 * PAGE)
        assert os.fstat(k).st_size == 0
        res = run_fill(m, 2, 16384)
        assert sum(r['acked'] for r in res.values()) == (256 - 96) * PAGE
        assert m.free_pages() == 0
        # nothing else took the preallocated pages: writing them succeeds
        assert os.pwrite(a, pattern(1, 0, 64 * PAGE), 0) == 64 * PAGE
        assert os.pwrite(k, pattern(2, 0, 32 * PAGE), 0) == 32 * PAGE
        assert os.fstat(k).st_size == 32 * PAGE
        assert enospc(os.pwrite, k, b'z', 32 * PAGE)
        os.fsync(a)
        os.fsync(k)
    finally:
        os.close(a)
        os.close(k)
    m.remount()
    with open(m.path('prealloc'), 'rb') as f:
        assert f.read() == pattern(1, 0, 64 * PAGE)
    with open(m.path('keepsize'), 'rb') as f:
        assert f.read() == pattern(2, 0, 32 * PAGE)


def test_punch_zero_release(fsf, mode):
    m = fsf.new(size='1M', reserve=mode)
    fd = os.open(m.path('f'), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        os.write(fd, pattern(1, 0, 128 * PAGE))
        assert m.free_pages() == 128
        fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 10 * PAGE, 20 * PAGE)
        after_punch = m.free_pages()
        if mode == 'eof':
            assert after_punch == 128, 'eof mode keeps the reservation of a punched range'
        else:
            assert after_punch == 148
        assert os.pread(fd, 20 * PAGE, 10 * PAGE) == b'\0' * 20 * PAGE
        fallocate(fd, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, 40 * PAGE, 10 * PAGE)
        assert os.pread(fd, 10 * PAGE, 40 * PAGE) == b'\0' * 10 * PAGE
        if mode == 'eof':
            assert m.free_pages() == after_punch
        else:
            assert m.free_pages() >= after_punch
        # KEEP_SIZE preallocation past EOF is released by punching it
        fallocate(fd, FALLOC_FL_KEEP_SIZE, 128 * PAGE, 16 * PAGE)
        before = m.free_pages()
        fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 128 * PAGE, 16 * PAGE)
        assert m.free_pages() == before + 16
        # ... and so are its blocks (ext4 does not punch past EOF: they stayed)
        backing_pages = lambda: os.stat(m.backing('f')).st_blocks // 8
        assert backing_pages() == os.fstat(fd).st_blocks // 8
        fallocate(fd, FALLOC_FL_KEEP_SIZE, 128 * PAGE, 32 * PAGE)
        fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 136 * PAGE, 8 * PAGE)
        assert m.free_pages() == before - 8
        assert backing_pages() == os.fstat(fd).st_blocks // 8
        fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 128 * PAGE, 32 * PAGE)
        assert m.free_pages() == before + 16
        assert backing_pages() == os.fstat(fd).st_blocks // 8
        # in eof mode a punched page below EOF is still reserved: writing it
        # on a full store succeeds
        run_fill(m, 1, PAGE)
        assert m.free_pages() == 0
        if mode == 'eof':
            assert os.pwrite(fd, b'w' * 20 * PAGE, 10 * PAGE) == 20 * PAGE
        # truncate down frees immediately
        free = m.free_pages()
        os.ftruncate(fd, 64 * PAGE)
        assert m.free_pages() == free + 64
    finally:
        os.close(fd)


def test_unlink_while_open_releases_at_last_close(fsf, mode):
    m = fsf.new(size='1M', reserve=mode)
    fd = os.open(m.path('f'), os.O_RDWR | os.O_CREAT, 0o644)
    fd2 = os.open(m.path('f'), os.O_RDONLY)
    os.write(fd, b'x' * (64 * PAGE))
    assert m.free_pages() == 192
    os.unlink(m.path('f'))
    assert m.free_pages() == 192, 'released while still open'
    os.write(fd, b'y' * PAGE)
    assert m.free_pages() == 191
    os.close(fd)
    assert m.free_pages() == 191, 'released while still open (second fd)'
    assert os.pread(fd2, 1, 64 * PAGE) == b'y'
    os.close(fd2)
    ok = False
    for _ in range(100):        # the kernel sends RELEASE asynchronously
        if m.free_pages() == 256:
            ok = True
            break
        time.sleep(0.02)
    assert ok, 'space not released after last close: %d free' % m.free_pages()
    # a hard link keeps the data alive
    with open(m.path('g'), 'wb') as f:
        f.write(b'z' * (10 * PAGE))
    os.link(m.path('g'), m.path('h'))
    os.unlink(m.path('g'))
    assert m.free_pages() == 246
    os.unlink(m.path('h'))
    assert m.free_pages() == 256


# ---- inodes and runtime control ------------------------------------------------------------

def test_nr_inodes_limit(fsf):
    m = fsf.new(size='1M', nr_inodes=20)
    s = m.statvfs()
    assert s.f_files == 20
    made = []
    for i in range(40):
        try:
            os.close(os.open(m.path('f%d' % i), os.O_CREAT | os.O_WRONLY, 0o644))
            made.append('f%d' % i)
        except OSError as e:
            assert e.errno == errno.ENOSPC, e
            break
    assert 18 <= len(made) <= 20
    assert m.statvfs().f_ffree == 0
    for fn in (lambda p: os.mkdir(p), lambda p: os.symlink('x', p), lambda p: os.mkfifo(p),
               lambda p: os.close(os.open(p, os.O_CREAT | os.O_WRONLY))):
        assert enospc(fn, m.path('extra'))
    # hard links and renames need no new inode
    os.link(m.path('f0'), m.path('link'))
    os.rename(m.path('f1'), m.path('renamed'))
    os.unlink(m.path('f2'))
    assert m.statvfs().f_ffree == 1
    os.mkdir(m.path('d'))
    assert m.statvfs().f_ffree == 0
    m.remount()
    assert m.statvfs().f_ffree == 0 and m.statvfs().f_files == 20
    assert enospc(os.mkdir, m.path('d2'))


def getx(m, name):
    return os.getxattr(m.mnt, name).decode().strip('\0').strip()


def test_runtime_size_and_inodes_via_xattr(fsf, mode):
    m = fsf.new(size='1M', reserve=mode, nr_inodes=100)
    assert rfs.parse_size(getx(m, 'user.reservefs.size')) == MiB
    assert int(getx(m, 'user.reservefs.nr_inodes')) == 100
    assert getx(m, 'user.reservefs.usage')
    with open(m.path('f'), 'wb') as f:
        f.write(b'x' * (200 * PAGE))
    # grow with setfattr, as a user would
    rfs.run(['setfattr', '-n', 'user.reservefs.size', '-v', '2M', m.mnt], check=True)
    s = m.statvfs()
    assert s.f_blocks == 512 and s.f_bfree == 312
    assert rfs.parse_size(getx(m, 'user.reservefs.size')) == 2 * MiB
    with open(m.path('f'), 'ab') as f:
        f.write(b'y' * (300 * PAGE))
    assert m.free_pages() == 12
    # shrink below usage: ENOSPC, nothing changes
    p = rfs.run(['setfattr', '-n', 'user.reservefs.size', '-v', '1M', m.mnt])
    assert p.returncode != 0
    with pytest.raises(OSError) as e:
        os.setxattr(m.mnt, 'user.reservefs.size', b'1M')
    assert e.value.errno == errno.ENOSPC
    assert m.statvfs().f_blocks == 512
    # shrink to exactly the usage works, leaves 0 free
    os.setxattr(m.mnt, 'user.reservefs.size', b'%d' % (500 * PAGE))
    s = m.statvfs()
    assert s.f_blocks == 500 and s.f_bfree == 0
    with open(m.path('f'), 'ab', buffering=0) as f:
        assert enospc(f.write, b'z' * PAGE)
    # malformed values are refused
    for bad in (b'lots', b'', b'-1'):
        with pytest.raises(OSError) as e:
            os.setxattr(m.mnt, 'user.reservefs.size', bad)
        assert e.value.errno in (errno.EINVAL, errno.ERANGE)
    # inodes
    os.setxattr(m.mnt, 'user.reservefs.nr_inodes', b'5')
    assert m.statvfs().f_files == 5
    with pytest.raises(OSError) as e:
        os.setxattr(m.mnt, 'user.reservefs.nr_inodes', b'1')
    assert e.value.errno == errno.ENOSPC
    # persisted
    m.remount()
    s = m.statvfs()
    assert s.f_blocks == 500 and s.f_files == 5
    assert rfs.parse_size(getx(m, 'user.reservefs.size')) == 500 * PAGE
    # the root's xattr list does not break ls/cp of the root
    os.listxattr(m.mnt)


def test_largest_inode_limit_is_kept(fsf):
    """nr_inodes takes any count up to 2^64-1, from mkfs and from the
    control xattr alike, and a store keeps it: a limit above 2^63-1 was
    accepted and saved, and the store then refused to mount as a corrupt
    superblock, which fsck --repair could not fix."""
    top = 2**64 - 1
    m = fsf.new(size='1M', nr_inodes=top)
    assert int(getx(m, 'user.reservefs.nr_inodes')) == top
    os.setxattr(m.mnt, 'user.reservefs.nr_inodes', b'100')
    os.setxattr(m.mnt, 'user.reservefs.nr_inodes', b'%d' % (2**63))
    m.remount()
    assert int(getx(m, 'user.reservefs.nr_inodes')) == 2**63
    m.umount()
    p = rfs.fsck(m.store)
    assert p.returncode == 0, p.stdout + p.stderr


def test_statfs_exact_under_concurrency(fsf, mode):
    """Sample statfs while 8 writers race: usage never exceeds capacity."""
    m = fsf.new(size='4M', reserve=mode)
    proc = subprocess.Popen([sys.executable, rfs.helper_script('fill.py'), m.mnt, '8', '8192'],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    bad = []
    try:
        while proc.poll() is None:
            s = m.statvfs()
            if s.f_bfree > s.f_blocks or s.f_blocks != 1024:
                bad.append((s.f_blocks, s.f_bfree))
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert not bad
    res = json.loads(out)
    assert sum(r['acked'] for r in res.values()) == 4 * MiB
    # delete everything: all space back, nothing stranded
    for n in res:
        os.unlink(m.path(n))
    assert m.free_pages() == 1024


# ---- crash ------------------------------------------------------------------------------------

def ledger_truth(m, mode):
    """Pages the store should have reserved: every regular file's pages below
    EOF (the fills here write sequentially, so this holds in both modes)."""
    total = 0
    for dp, dns, fns in os.walk(m.mnt):
        for n in fns:
            st = os.lstat(os.path.join(dp, n))
            if os.path.isfile(os.path.join(dp, n)) and st.st_nlink >= 1:
                total += pages(st.st_size)
    return total


@pytest.mark.timeout(240, 1800)
def test_sigkill_daemon_mid_fill(fsf, mode, long_run):
    seeds = range(12) if long_run else range(3)
    m = fsf.new(size='16M', reserve=mode)
    m.allow_log_errors = True
    for seed in seeds:
        rnd = random.Random(seed)
        journal = os.path.join(m.work, 'journal-%d' % seed)
        d = m.path('run%d' % seed)
        os.mkdir(d)
        proc = subprocess.Popen([sys.executable, rfs.helper_script('fill.py'), d, '4', '12288',
                                 '--journal', journal, '--sync'],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(rnd.uniform(0.05, 0.6))
        m.kill(signal.SIGKILL)
        try:
            proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            pytest.fail('writer hung after the daemon died')
        m.umount_dead()
        m.mount()
        # every byte an fdatasync acknowledged is there, and no file's size
        # covers bytes that were never written
        acked = {}
        if os.path.exists(journal):
            for line in open(journal):
                n, off = line.split()
                acked[n] = int(off)
        for n in os.listdir(d):
            p = os.path.join(d, n)
            size = os.stat(p).st_size
            with open(p, 'rb') as f:
                data = f.read()
            assert data == pattern(int(n[1:]), 0, size), \
                'seed %d: %s covers bytes never written' % (seed, n)
            assert size >= acked.get(n, 0), 'seed %d: %s lost fdatasync-acknowledged data' % (
                seed, n)
        assert set(acked) <= set(os.listdir(d))
        m.umount()
        r = m.fsck()
        assert r.returncode == 0, 'seed %d: fsck after crash+remount: %s%s' % (
            seed, r.stdout, r.stderr)
        m.mount()
        assert m.used_pages() == ledger_truth(m, mode), \
            'seed %d: ledger %d != sum of file pages %d' % (seed, m.used_pages(),
                                                            ledger_truth(m, mode))
        # clean up so the next round has room
        for n in os.listdir(d):
            os.unlink(os.path.join(d, n))
        assert m.used_pages() == ledger_truth(m, mode)


@contextlib.contextmanager
def orphan_held(path, make):
    """A process of its own creates @path, runs @make (Python, on its fd),
    unlinks it and holds it open for the body; killed after it."""
    code = ('import os,sys,time\n'
            'fd=os.open(sys.argv[1],os.O_RDWR|os.O_CREAT,0o644)\n' + make + '\n'
            'os.unlink(sys.argv[1])\n'
            'print("ready",flush=True); time.sleep(60)\n')
    proc = subprocess.Popen([sys.executable, '-c', code, path], stdout=subprocess.PIPE,
                            text=True)
    try:
        assert proc.stdout.readline().strip() == 'ready'
        yield
    finally:
        proc.kill()
        proc.wait()


def test_sigkill_with_open_unlinked_file_frees_orphan(fsf, mode):
    m = fsf.new(size='1M', reserve=mode)
    m.allow_log_errors = True
    # a separate process holds an unlinked file open when the daemon dies
    with orphan_held(m.path('orphan'), 'os.write(fd,b"o"*(100*4096)); os.fsync(fd)'):
        assert m.free_pages() == 156
        m.kill(signal.SIGKILL)
    m.umount_dead()
    m.mount()
    assert m.free_pages() == 256, 'orphan not freed at mount'
    m.umount()
    r = m.fsck()
    assert r.returncode == 0, r.stdout + r.stderr


def test_switch_to_eof_needs_room_for_the_holes(fsf, workdir):
    """A reserve=write store mounted in eof mode must reserve every hole
    below EOF.  When they do not fit in the capacity, or on the backing
    filesystem, the mount is refused with nothing allocated (it once went
    over capacity, or filled the backing disk, or mounted with unreserved
    pages below EOF).  When they fit, it reserves them."""
    from test_cli import one_line_error, store_digest, try_mount_expect_failure
    m = fsf.new(size='4M', reserve='write')
    with open(m.path('f'), 'wb') as f:
        f.write(b'head')
        f.truncate(8 * MiB)
    m.umount()
    def data_blocks(store):
        return sum(os.lstat(os.path.join(d, n)).st_blocks
                   for d, _, ns in os.walk(os.path.join(store, 'data')) for n in ns)
    before = store_digest(m.store), data_blocks(m.store)
    line = one_line_error(try_mount_expect_failure(m.store, m.mnt, 'reserve=eof'))
    assert 'reserve=write' in line and '2047 more pages' in line, line
    assert (store_digest(m.store), data_blocks(m.store)) == before
    m.mount('reserve=write')
    os.truncate(m.path('f'), 2 * MiB)
    m.umount()
    m.mount('reserve=eof')
    assert os.stat(m.path('f')).st_blocks == 2 * MiB // 512
    assert m.used_pages() == 512
    with open(m.path('f'), 'rb') as f:
        assert f.read(4) == b'head'
    m.umount()
    p = m.fsck()
    assert p.returncode == 0, p.stdout + p.stderr

    # capacity enough, backing filesystem too small
    with rfs.tmpfs(os.path.join(workdir, 'small'), '8M') as small:
        store, mnt = os.path.join(small, 'st'), os.path.join(workdir, 'm-small')
        os.mkdir(mnt)
        rfs.run([rfs.RESERVEFS, 'mkfs', store, '-o', 'size=16M,reserve=write'], check=True)
        with rfs.small_remount(store, mnt):
            with open(os.path.join(mnt, 'g'), 'wb') as f:
                f.truncate(12 * MiB)
        used = os.statvfs(small).f_bfree
        line = one_line_error(try_mount_expect_failure(store, mnt, 'reserve=eof'))
        assert 'backing filesystem' in line, line
        assert os.statvfs(small).f_bfree == used


def test_deleted_files_blocks_do_not_cost_a_later_reservation(workdir):
    """A store that fits on its backing disk never meets the backing disk's
    ENOSPC: the blocks of a file just deleted, which the reaper frees after
    the ledger has its pages back, are waited for by a reservation that
    needs them (it once failed with ENOSPC while df showed the store
    empty), in both the fallocate and the whole-page write path."""
    with rfs.small_store(workdir, '48M', 'size=32M,reserve=eof') as (store, mnt, _):
        capacity = os.statvfs(mnt).f_blocks
        fails = []
        for i in range(200):
            p = os.path.join(mnt, 'f%d' % (i % 2))
            fd = os.open(p, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                if i % 4 == 3:
                    os.pwrite(fd, b'w' * (24 * MiB), 0)
                else:
                    os.ftruncate(fd, 24 * MiB)
            except OSError as e:
                fails.append((i, e.errno))
            os.close(fd)
            os.unlink(p)
            # the ledger has the pages back (the last close's release
            # is asynchronous): the store is empty again
            assert rfs.wait_until(lambda: os.statvfs(mnt).f_bfree == capacity)
        assert fails == []


def test_full_backing_disk_write_is_counted(workdir):
    """A write of whole pages that the backing disk refuses (size= larger
    than the disk, as the README allows) fails with ENOSPC and is counted in
    `reservefs stat`'s enospc.write like any other (it counted nothing:
    those pages are allocated by the write itself, not by a reservation)."""
    with rfs.small_store(workdir, '8M', 'size=64M') as (store, mnt, _):
        fd = os.open(os.path.join(mnt, 'f'), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            with pytest.raises(OSError) as e:
                for i in range(64):
                    os.write(fd, b'w' * MiB)
            assert e.value.errno == errno.ENOSPC
        finally:
            os.close(fd)
        p = rfs.run([rfs.RESERVEFS, 'stat', mnt, '--json'], check=True)
        assert json.loads(p.stdout)['enospc']['write'] >= 1, p.stdout


def test_write_mode_mmap_writeback_saves_what_has_space(fsf):
    """reserve=write: a writeback that meets a full store keeps the pages that
    had a reservation, and new pages while any fit; only the rest is lost,
    counted and reported to msync (it once dropped the whole request)."""
    import mmap
    m = fsf.new(size='1M', reserve='write')
    fd = os.open(m.path('f'), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        os.write(fd, b'w' * (16 * PAGE))            # pages 0-15 reserved
        os.ftruncate(fd, 32 * PAGE)                 # pages 16-31: holes
        fill = os.open(m.path('fill'), os.O_RDWR | os.O_CREAT, 0o644)
        os.write(fill, b'f' * ((256 - 16 - 4) * PAGE))   # 4 pages left free
        assert m.free_pages() == 4
        before = m.stat_json()['writeback_failures']
        mp = mmap.mmap(fd, 32 * PAGE)
        mp[:] = b'M' * (32 * PAGE)
        with pytest.raises(OSError) as e:
            mp.flush()
        assert e.value.errno == errno.ENOSPC
        mp.close()
        assert m.free_pages() == 0
        assert m.stat_json()['writeback_failures'] == before + 1
        os.close(fill)
    finally:
        os.close(fd)
    m.remount()
    with open(m.path('f'), 'rb') as f:
        d = f.read()
    pages = [d[i * PAGE:(i + 1) * PAGE] for i in range(32)]
    assert pages[:20] == [b'M' * PAGE] * 20, [p[:1] for p in pages]
    assert pages[20:] == [b'\0' * PAGE] * 12, [p[:1] for p in pages]


def test_full_backing_disk_setattr_changes_nothing(workdir):
    """When meta.db cannot be written (the backing disk is full), a truncate
    up or a chmod that fails leaves the file as it was: the backing file was
    once grown all the same, and after a crash the size came back."""
    with rfs.small_store(workdir, '8M', 'size=4M,reserve=write') as (store, mnt, small):
        try:
            fd = os.open(os.path.join(mnt, 'f'), os.O_RDWR | os.O_CREAT, 0o644)
            os.write(fd, b'a' * 100)
            os.fsync(fd)
            rfs.drop_wal_reserve(store)
            with open(os.path.join(small, 'filler'), 'wb') as f:
                try:
                    while True:
                        f.write(b'z' * 65536)
                        f.flush()
                except OSError:
                    pass
            fails = 0
            for i in range(1, 20):
                try:
                    os.ftruncate(fd, 100 + i * PAGE)
                except OSError as e:
                    assert e.errno == errno.ENOSPC
                    fails += 1
                    assert os.fstat(fd).st_size in (100, 100 + (i - 1) * PAGE)
            size = os.fstat(fd).st_size
            mode = os.stat(os.path.join(mnt, 'f')).st_mode
            try:
                os.chmod(os.path.join(mnt, 'f'), 0o600)
            except OSError as e:
                assert e.errno == errno.ENOSPC
                assert os.stat(os.path.join(mnt, 'f')).st_mode == mode
            os.close(fd)
            assert fails, 'the full disk refused nothing: the test proves nothing'
        finally:
            rfs.small_umount(store, mnt)
        os.unlink(os.path.join(small, 'filler'))
        with rfs.small_remount(store, mnt):
            assert os.stat(os.path.join(mnt, 'f')).st_size == size
            with open(os.path.join(mnt, 'f'), 'rb') as f:
                assert f.read(100) == b'a' * 100


def test_full_backing_disk_failed_ops_keep_unstored_size(workdir):
    """Files written and closed hold their size in memory only (their rows
    are stored when they leave memory or at unmount).  With the backing disk
    full, a chown or utimensat refused with ENOSPC, and the eviction of such
    inodes (drop_caches), lost that size: the failed transaction marked the
    inode clean, or the failed forget batch freed it all the same, the
    unmount stored nothing, and the file read back empty (sizes 0 after
    drop_caches, still mounted).  test_failed_metadata_commits_change_nothing
    has the other operations."""
    n = 30
    ops = ('chown', 'utime', 'evict')
    with rfs.small_store(workdir, '8M', 'size=4M') as (store, mnt, small):
        def f(op, i):
            return os.path.join(mnt, op, 'f%d' % i)
        fails = {}
        try:
            for op in ops:
                os.mkdir(os.path.join(mnt, op))
                for i in range(n):
                    with open(f(op, i), 'wb'):
                        pass
                    os.setxattr(f(op, i), 'user.x', b'v')   # stores the row
            # the unmount empties the WAL: the first commits past the
            # filler below need new blocks
            rfs.run(['fusermount3', '-u', mnt], timeout=30, check=True)
            assert rfs.wait_store_released(store)
            rfs.run([rfs.RESERVEFS, store, mnt], check=True, timeout=30)
            for op in ops:
                for i in range(n):
                    with open(f(op, i), 'r+b') as fh:
                        fh.write(b'a' * 10000)              # the size in memory only
            rfs.drop_wal_reserve(store)
            fd = os.open(os.path.join(small, 'filler'), os.O_WRONLY | os.O_CREAT, 0o600)
            try:
                while os.write(fd, b'z' * 4096) > 0:
                    pass
            except OSError as e:
                assert e.errno == errno.ENOSPC
            finally:
                os.close(fd)

            do = {'chown': lambda p: os.chown(p, 1, 1),
                  'utime': lambda p: os.utime(p, (1, 1))}
            for op, fn in do.items():
                for i in range(n):      # until SQLite needs a new page
                    e = rfs.errno_of(fn, f(op, i))
                    if e:
                        assert e == errno.ENOSPC
                        fails[op] = i
                        break
            assert len(fails) == 2, 'the full disk refused too little: %r' % fails
            # the kernel forgets every unused inode: they cannot be stored
            rfs.drop_caches(2)
            assert all(os.stat(f('evict', i)).st_size == 10000 for i in range(n))
        finally:
            os.unlink(os.path.join(small, 'filler'))
            rfs.small_umount(store, mnt)
        p = rfs.fsck(store)
        assert p.returncode == 0, p.stdout + p.stderr
        with rfs.small_remount(store, mnt):
            bad = [(op, i) for op in ops for i in range(n)
                   if os.stat(f(op, i)).st_size != 10000 or open(f(op, i), 'rb').read() != b'a' * 10000]
            assert bad == []


# Holds a read lease on a backing file (argv[1]) until a line on stdin, then
# one more second.  A process of its own: the writer it holds up may be
# stuck in a page fault with the GIL held.
LEASE_HOLDER = """
import errno, fcntl, os, signal, sys, time
signal.signal(signal.SIGIO, signal.SIG_IGN)     # the lease break
fd = os.open(sys.argv[1], os.O_RDONLY)
deadline = time.monotonic() + 10
while True:     # the daemon closes its fd at the (asynchronous) release
    try:
        fcntl.fcntl(fd, 1024, fcntl.F_RDLCK)    # F_SETLEASE
        break
    except OSError as e:
        if e.errno != errno.EAGAIN or time.monotonic() > deadline:
            raise
        time.sleep(0.05)
print('leased', flush=True)
sys.stdin.readline()
time.sleep(1)
"""


def end_lease(holder):
    """Ends a LEASE_HOLDER process (None: none was started)."""
    if holder:
        holder.stdin.close()
        holder.wait(timeout=60)


@pytest.mark.parametrize('how', ['write', 'mmap'])
def test_space_of_a_delete_is_usable_while_the_reaper_lags(workdir, mode, how):
    """The ledger has a deleted file's pages back at once, but its backing
    blocks go only when the reaper has emptied it (milliseconds per file on
    a disk with discard; under churn, gigabytes of capacity behind).  On a
    backing disk that holds the capacity and little more, what statfs shows
    free must be writable meanwhile: it once failed with ENOSPC (and a
    write-mode mapping lost its pages).  A read lease on the deleted file's
    backing file holds the reaper up here: its O_TRUNC open waits for it."""
    import mmap
    with rfs.small_store(workdir, '12M', 'size=8M,reserve=' + mode) as (store, mnt, _):
        holder = None
        try:
            with open(os.path.join(mnt, 'f'), 'wb') as f:
                f.write(b'f' * (7 * MiB))
            ino = os.stat(os.path.join(mnt, 'f')).st_ino
            holder = subprocess.Popen(
                [sys.executable, '-c', LEASE_HOLDER,
                 os.path.join(store, 'data', '%02x' % (ino & 0xff), '%x' % ino)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            assert holder.stdout.readline() == 'leased\n'
            os.unlink(os.path.join(mnt, 'f'))
            st = os.statvfs(mnt)
            assert st.f_bfree == st.f_blocks         # free at once, as promised
            holder.stdin.write('go\n')
            holder.stdin.flush()
            data = pattern(7, 0, 7 * MiB)
            fd = os.open(os.path.join(mnt, 'g'), os.O_RDWR | os.O_CREAT, 0o644)
            try:
                if how == 'write':
                    assert os.write(fd, data) == len(data)
                else:
                    os.ftruncate(fd, len(data))
                    mp = mmap.mmap(fd, len(data))
                    mp[:] = data
                    mp.flush()
                    mp.close()
                os.fsync(fd)
            finally:
                os.close(fd)
        finally:
            end_lease(holder)
            rfs.small_umount(store, mnt)
        with rfs.small_remount(store, mnt):
            with open(os.path.join(mnt, 'g'), 'rb') as f:
                assert f.read() == data


def test_deletes_pending_at_a_crash_go_the_reapers_way(fsf):
    """Deleted files whose backing files the reaper had not emptied when the
    daemon died are the next mount's to remove.  It removed them itself,
    one by one, before the mount was up (after a crash in a delete storm,
    tens of thousands: 6-20 s with discard); the reaper now takes them once
    the mount is up and keeps them as spares, as it keeps any deleted
    file's.  Nothing is left behind, the space is exact, fsck is clean."""
    m = fsf.new(size='16M')
    for i in range(200):
        with open(m.path('a%d' % i), 'wb') as f:
            f.write(b'a' * 8192)
    with open(m.path('keep'), 'wb') as f:
        f.write(b'k' * 4096)
    with open(m.path('first'), 'wb') as f:
        f.write(b'f' * 4096)
    holder = subprocess.Popen([sys.executable, '-c', LEASE_HOLDER, m.backing('first')],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == 'leased\n'
        os.unlink(m.path('first'))          # the reaper waits on its lease...
        for i in range(200):
            os.unlink(m.path('a%d' % i))    # ...and these queue behind it
        free = os.path.join(m.store, 'data', 'free')
        spares = len(os.listdir(free))
        m.kill()
    finally:
        end_lease(holder)
    m.umount_dead()
    m.mount()
    assert os.listdir(m.mnt) == ['keep']
    assert m.used_pages() == 1
    # the mount tells them from damage
    assert re.search(r'recovered after an unclean shutdown \(\d+ repairs, 201 of them '
                     r'deletes it had not finished', m.log_text()), m.log_text()[-2000:]
    # the 201 deleted files' backing files become spares, emptied
    assert rfs.wait_until(lambda: len(os.listdir(free)) == spares + 201, timeout=30), \
        (spares, len(os.listdir(free)))
    live = [n for d in os.listdir(os.path.join(m.store, 'data')) if d != 'free'
            for n in os.listdir(os.path.join(m.store, 'data', d))]
    assert live == ['%x' % os.stat(m.path('keep')).st_ino]
    assert all(os.stat(os.path.join(free, n)).st_size == 0 for n in os.listdir(free))
    m.umount()
    p = m.fsck()
    assert p.returncode == 0 and 'clean' in p.stdout, p.stdout + p.stderr


# One metadata operation each, on a store holding 'old' (a file) and 'dir'.
METADATA_OPS = {
    'create': lambda p: os.close(os.open(p('new'), os.O_WRONLY | os.O_CREAT, 0o644)),
    'mkdir': lambda p: os.mkdir(p('dir/sub')),
    'rename': lambda p: os.rename(p('old'), p('dir/moved')),
    'unlink': lambda p: os.unlink(p('old')),
    'setxattr': lambda p: os.setxattr(p('old'), 'user.k', b'v' * 3000),
}


def metadata_op_done(p, op):
    """Whether METADATA_OPS[op] took effect (after a remount, too)."""
    return {'create': lambda: os.path.exists(p('new')),
            'mkdir': lambda: os.path.isdir(p('dir/sub')) and os.stat(p('dir')).st_nlink == 3,
            'rename': lambda: not os.path.exists(p('old')) and os.path.exists(p('dir/moved')),
            'unlink': lambda: not os.path.exists(p('old')),
            'setxattr': lambda: os.getxattr(p('old'), 'user.k') == b'v' * 3000}[op]()


@pytest.mark.parametrize('op', sorted(METADATA_OPS))
def test_metadata_commit_waits_for_the_reaper(workdir, op):
    """meta.db lives on the backing disk beside the data, so a commit there
    meets the blocks of files deleted a moment ago as a reservation does:
    with the backing disk full only of blocks the reaper has yet to free
    (statfs on the mount shows plenty free), a create, mkdir, rename,
    unlink or setxattr must wait for them, not fail (it failed with ENOSPC
    when its commit could not grow meta.db's WAL).  The reaper is held up
    by a lease on the deleted file's backing file, as above; the backing
    disk is filled to its last block through the mount."""
    import threading
    with rfs.small_store(workdir, '12M', 'size=8M') as (store, mnt, small):
        p = lambda n: os.path.join(mnt, n)
        holder = None
        try:
            with open(p('old'), 'wb') as f:
                f.write(b'old')
            os.mkdir(p('dir'))
            with open(p('f'), 'wb') as f:
                f.write(b'f' * (7 * MiB))
            ino = os.stat(p('f')).st_ino
            holder = subprocess.Popen(
                [sys.executable, '-c', LEASE_HOLDER,
                 os.path.join(store, 'data', '%02x' % (ino & 0xff), '%x' % ino)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            assert holder.stdout.readline() == 'leased\n'
            os.unlink(p('f'))
            rfs.drop_wal_reserve(store)
            fd = os.open(p('fill'), os.O_RDWR | os.O_CREAT, 0o644)
            try:
                st = os.statvfs(small)
                os.write(fd, b'x' * (st.f_bavail * st.f_frsize))
            finally:
                os.close(fd)
            assert os.statvfs(small).f_bavail == 0, 'backing disk not full'
            assert os.statvfs(mnt).f_bavail * PAGE >= MiB, 'the mount shows no space'
            result = []
            t = threading.Thread(target=lambda: result.append(
                rfs.errno_of(METADATA_OPS[op], p)))
            t.start()
            t.join(0.5)         # it fails at once, or waits for the reaper
            waited = t.is_alive()
            holder.stdin.write('go\n')
            holder.stdin.flush()
            t.join(60)
            assert not t.is_alive()
            assert result == [0], 'failed with %s' % errno.errorcode.get(result[0])
            assert waited, 'it needed no space the reaper held: the test proves nothing'
            assert metadata_op_done(p, op)
        finally:
            end_lease(holder)
            rfs.small_umount(store, mnt)
        with rfs.small_remount(store, mnt):
            assert metadata_op_done(p, op)


def test_failed_metadata_commits_change_nothing(workdir):
    """When meta.db cannot be written at all (a backing disk full of
    something else: no reaper to wait for), mkdir, link, rename, unlink,
    setxattr, removexattr, chmod and chattr fail with ENOSPC and leave every
    inode as it was, in memory and in SQLite.  They once read the rows back
    (a file's newer size and times live only in memory: after a remount it
    had lost its data), or left a change in memory that SQLite did not take
    (a parent's link count, chattr flags), or marked the row as stored by a
    commit that rolled back."""
    from test_namespace import _chattr
    NODUMP = 0x40
    with rfs.small_store(workdir, '8M', 'size=4M') as (store, mnt, small):
        p = lambda n: os.path.join(mnt, n)
        try:
            data = pattern(3, 0, 10000)
            os.mkdir(p('d'))
            with open(p('f'), 'wb') as f:
                f.write(b'old')
            os.setxattr(p('f'), 'user.keep', b'1')
            fd = os.open(p('f'), os.O_WRONLY)
            try:
                os.write(fd, data)      # the size only in memory (and the backing file)
            finally:
                os.close(fd)
            rfs.drop_wal_reserve(store)
            with open(os.path.join(small, 'filler'), 'wb', buffering=0) as f:
                try:
                    while True:
                        f.write(b'z' * PAGE)
                except OSError as e:
                    assert e.errno == errno.ENOSPC
            failed = {}
            for name, call in [('mkdir', lambda: os.mkdir(p('d/sub'))),
                               ('link', lambda: os.link(p('f'), p('d/l'))),
                               ('rename', lambda: os.rename(p('f'), p('d/g'))),
                               ('unlink', lambda: os.unlink(p('f'))),
                               ('setxattr', lambda: os.setxattr(p('f'), 'user.new', b'2')),
                               ('removexattr', lambda: os.removexattr(p('f'), 'user.keep')),
                               ('chmod', lambda: os.chmod(p('f'), 0o600)),
                               ('chattr', lambda: _chattr(p('f'), NODUMP)),
                               ('size=', lambda: os.setxattr(mnt, 'user.reservefs.size', b'2M'))]:
                failed[name] = errno.errorcode.get(rfs.errno_of(call), 'done')
            assert set(failed.values()) == {'ENOSPC'}, failed
            # what the daemon holds in memory (the kernel does not cache these)
            assert _chattr(p('f'), None) & NODUMP == 0
            assert os.statvfs(mnt).f_blocks == 1024     # the limit not kept is not in effect
            assert sorted(os.listxattr(p('f'))) == ['user.keep']
            os.unlink(os.path.join(small, 'filler'))
            # commits that store those inodes' rows again
            os.mkdir(p('d/sub2'))
            os.chmod(p('f'), 0o640)
        finally:
            rfs.small_umount(store, mnt)
        r = rfs.fsck(store)
        assert r.returncode == 0, r.stdout + r.stderr
        with rfs.small_remount(store, mnt):
            assert sorted(os.listdir(mnt)) == ['d', 'f']
            assert os.listdir(p('d')) == ['sub2']
            assert os.stat(p('d')).st_nlink == 3
            st = os.stat(p('f'))
            assert (st.st_size, st.st_mode & 0o7777, st.st_nlink) == (len(data), 0o640, 1)
            with open(p('f'), 'rb') as f:
                assert f.read() == data
            assert sorted(os.listxattr(p('f'))) == ['user.keep']
            assert _chattr(p('f'), None) & NODUMP == 0


@pytest.mark.parametrize('mode', ['eof', 'write'])
def test_unlink_on_full_backing_disk(workdir, mode):
    """size= larger than the backing disk (as the README allows): once a
    write has filled the disk, deleting files must still work, as on ext4 or
    tmpfs.  The unlink's commit appended to a WAL that had not yet grown to
    the size at which SQLite starts it over (it starts empty at each mount),
    so every unlink, rmdir and rename failed with ENOSPC until a truncate
    freed blocks by hand or a remount."""
    with rfs.small_store(workdir, '64M', 'size=1G,reserve=' + mode) as (store, mnt, small):
        for i in range(3):
            with open(os.path.join(mnt, 'small%d' % i), 'w') as f:
                f.write('hello')
        os.mkdir(os.path.join(mnt, 'd'))
        fd = os.open(os.path.join(mnt, 'big'), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            with pytest.raises(OSError) as e:
                while True:
                    os.write(fd, b'b' * MiB)
            assert e.value.errno == errno.ENOSPC
        finally:
            os.close(fd)
        assert os.statvfs(small).f_bavail == 0
        os.unlink(os.path.join(mnt, 'small0'))
        os.rename(os.path.join(mnt, 'small1'), os.path.join(mnt, 'small2'))
        os.rmdir(os.path.join(mnt, 'd'))
        os.unlink(os.path.join(mnt, 'big'))
        assert sorted(os.listdir(mnt)) == ['small2']
        # the space is back for data
        assert rfs.wait_until(lambda: os.statvfs(small).f_bavail * os.statvfs(small).f_frsize
                              > 32 * MiB)
        with open(os.path.join(mnt, 'again'), 'wb') as f:
            f.write(b'a' * (16 * MiB))


# ---- xattrs ---------------------------------------------------------------------
# An inode's xattrs (names + values) cost whole pages of the capacity, as
# ext4 gives them a block: one page for a few small ones, none for none.

XVAL = 60000            # a value under the kernel's 64 KiB limit
XPAGES = pages(len('user.big') + XVAL)      # 15


def touch(p):
    open(p, 'wb').close()


def assert_used_survives(m, used):
    """@used pages in use after a clean remount and after a SIGKILL's
    recovery, and fsck finds the store clean with as many (unmounted)."""
    m.remount()
    assert m.used_pages() == used
    m.kill_remount()
    assert m.used_pages() == used
    m.umount()
    assert rfs.fsck_reserved(m.store) == used


def test_xattrs_are_charged_in_whole_pages(fsf, mode):
    m = fsf.new(size='1M', reserve=mode)
    free0 = m.free_pages()
    f = m.path('f')
    touch(f)
    assert m.free_pages() == free0, 'an inode without xattrs costs nothing'
    os.setxattr(f, 'user.a', b'x')
    assert free0 - m.free_pages() == 1
    os.setxattr(f, 'user.b', b'y' * 100)
    assert free0 - m.free_pages() == 1, 'small xattrs share a page'
    os.setxattr(f, 'user.a', b'z' * 5000)
    assert free0 - m.free_pages() == pages(6 + 5000 + 6 + 100) == 2
    os.setxattr(f, 'user.a', b'z')          # replaced by a smaller value
    assert free0 - m.free_pages() == 1
    os.removexattr(f, 'user.a')
    assert free0 - m.free_pages() == 1
    os.removexattr(f, 'user.b')
    assert m.free_pages() == free0
    # directories and the root pay too; the control xattrs do not
    os.mkdir(m.path('d'))
    os.setxattr(m.path('d'), 'trusted.t', b'1')
    os.setxattr(m.mnt, 'user.r', b'1')
    assert free0 - m.free_pages() == 2
    os.setxattr(m.mnt, 'user.reservefs.size', b'2M')
    assert m.free_pages() == free0 - 2 + 256
    os.setxattr(m.mnt, 'user.reservefs.size', b'1M')
    assert m.free_pages() == free0 - 2
    # the last delete gives the pages back; a link does not
    os.setxattr(f, 'user.big', b'v' * XVAL)
    os.link(f, m.path('g'))
    os.unlink(f)
    assert free0 - m.free_pages() == 2 + XPAGES
    os.unlink(m.path('g'))
    os.rmdir(m.path('d'))
    assert free0 - m.free_pages() == 1
    m.umount()
    assert rfs.fsck_reserved(m.store) == 1


def test_xattrs_fill_the_capacity(fsf, mode):
    m = fsf.new(size='1M', reserve=mode)
    total = m.free_pages()
    files = []
    while True:
        p = m.path('x%d' % len(files))
        touch(p)
        try:
            os.setxattr(p, 'user.big', b'v' * XVAL)
        except OSError as e:
            assert e.errno == errno.ENOSPC, e
            break
        files.append(p)
        assert len(files) <= total // XPAGES, 'xattrs not charged'
    assert len(files) == total // XPAGES
    used = len(files) * XPAGES
    assert m.used_pages() == used and m.free_pages() == total - used
    # nothing of the refused one is stored
    last = m.path('x%d' % len(files))
    assert os.listxattr(last) == []
    assert rfs.errno_of(os.getxattr, last, 'user.big') == errno.ENODATA
    # what is left takes small xattrs, a page each, then nothing more
    left = total - used
    smalls = []
    for i in range(left):
        p = m.path('s%d' % i)
        touch(p)
        os.setxattr(p, 'user.s', b'1')
        smalls.append(p)
    assert m.free_pages() == 0
    assert enospc(os.setxattr, last, 'user.s', b'1')
    assert os.listxattr(last) == []
    # within an inode's page there is room still
    os.setxattr(smalls[0], 'user.t', b'2' * 1000)
    # a replace that needs more pages fails and keeps the old value
    assert enospc(os.setxattr, files[0], 'user.big', b'w' * 65536)
    assert os.getxattr(files[0], 'user.big') == b'v' * XVAL
    # a file's data finds no room: xattrs took it
    with open(m.path('data'), 'wb', buffering=0) as f:
        assert enospc(f.write, b'd' * 4096)
    assert os.stat(m.path('data')).st_size == 0
    st = m.stat_json()
    assert st['enospc']['xattr'] >= 3 and st['reserved_pages'] == total
    used = total

    # the numbers survive a clean remount, a SIGKILL and fsck
    assert_used_survives(m, used)
    m.mount()

    # removing frees: an xattr, then a whole inode
    os.removexattr(files[0], 'user.big')
    assert m.used_pages() == used - XPAGES
    os.unlink(files[1])
    assert m.used_pages() == used - 2 * XPAGES
    with open(m.path('data'), 'wb', buffering=0) as f:
        assert f.write(b'd' * 4096) == 4096
    used = used - 2 * XPAGES + 1
    assert m.used_pages() == used
    assert_used_survives(m, used)


def test_xattrs_count_against_a_capacity_change(fsf):
    m = fsf.new(size='1M')
    touch(m.path('f'))
    os.setxattr(m.path('f'), 'user.big', b'v' * XVAL)
    # shrinking below what the xattrs hold is refused
    assert enospc(os.setxattr, m.mnt, 'user.reservefs.size', b'%d' % ((XPAGES - 1) * PAGE))
    os.setxattr(m.mnt, 'user.reservefs.size', b'%d' % (XPAGES * PAGE))
    assert m.free_pages() == 0
    with open(m.path('f'), 'wb', buffering=0) as f:
        assert enospc(f.write, b'd')
    os.setxattr(m.mnt, 'user.reservefs.size', b'1M')


def test_inherited_acls_are_charged(fsf):
    m = fsf.new(size='1M')
    d = m.path('d')
    os.mkdir(d)
    rfs.run(['setfacl', '-d', '-m', 'u:nobody:rw', d], check=True)
    used = m.used_pages()
    assert used == 1
    os.mkdir(os.path.join(d, 'sub'))       # default and access ACL: one page
    touch(os.path.join(d, 'f'))            # access ACL
    touch(m.path('plain'))                 # none
    assert m.used_pages() == used + 2
    with open(m.path('fill'), 'wb') as f:
        os.posix_fallocate(f.fileno(), 0, m.free_pages() * PAGE)
    assert m.free_pages() == 0
    for make in (os.mkdir, touch):
        p = os.path.join(d, 'new')
        assert enospc(make, p)
        assert not os.path.lexists(p)
    touch(m.path('plain2'))                # no ACL to inherit: no page needed
    os.rmdir(os.path.join(d, 'sub'))
    os.mkdir(os.path.join(d, 'sub2'))
    m.remount()
    assert m.free_pages() == 0
    m.umount()
    assert rfs.fsck_reserved(m.store) == 256


def test_xattrs_of_an_open_unlinked_file(fsf, mode):
    m = fsf.new(size='1M', reserve=mode)
    free0 = m.free_pages()
    # freed at the last close
    fd = os.open(m.path('o'), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        os.setxattr(fd, 'user.big', b'v' * XVAL)
        os.unlink(m.path('o'))
        assert free0 - m.free_pages() == XPAGES
        os.setxattr(fd, 'user.more', b'v' * 8000)
        assert free0 - m.free_pages() == pages(8 + XVAL + 9 + 8000)
    finally:
        os.close(fd)
    # the kernel sends the RELEASE after close() has returned
    assert rfs.wait_until(lambda: m.free_pages() == free0), (m.free_pages(), free0)
    # freed by the recovery after a crash
    m.allow_log_errors = True
    with orphan_held(m.path('orphan'), 'os.setxattr(fd,"user.big",b"v"*%d)' % XVAL):
        assert free0 - m.free_pages() == XPAGES
        m.kill(signal.SIGKILL)
    m.umount_dead()
    m.mount()
    assert m.free_pages() == free0, 'orphan xattrs not freed at mount'
    m.umount()
    assert rfs.fsck_reserved(m.store) == 0


def test_crash_gives_back_preallocation_past_eof(fsf):
    """eof mode reserves the backing pages of an extending write before the
    write lands (fallocate KEEP_SIZE); a crash between the two left them past
    EOF, charged to the file for good, where nobody could see or free them
    (the crash tests' ledger was 17 pages above the files' sizes once).  The
    recovery gives them back, unless the row or the last fsync knew of pages
    past EOF: a preallocation the user made and fdatasynced stays."""
    m = fsf.new(size='4M', reserve='eof')
    with open(m.path('cut'), 'wb') as f:
        f.write(b'c' * 5000)
        os.fsync(f.fileno())
    fd = os.open(m.path('kept'), os.O_RDWR | os.O_CREAT, 0o644)
    os.write(fd, b'k' * 100)
    fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, 10 * PAGE)
    os.fdatasync(fd)
    os.close(fd)
    assert m.used_pages() == 2 + 10
    cut = m.backing('cut')
    m.kill_remount(lambda: preallocate(cut, 40 * PAGE))
    assert m.used_pages() == 2 + 10, 'the cut-short write\'s preallocation stayed charged'
    assert os.stat(cut).st_blocks * 512 <= 2 * PAGE
    assert open(m.path('cut'), 'rb').read() == b'c' * 5000
    assert open(m.path('kept'), 'rb').read() == b'k' * 100
    # the user's preallocation is still there: 9 more pages fit without a charge
    free = m.free_pages()
    with open(m.path('kept'), 'r+b') as f:
        f.seek(100)
        f.write(b'k' * (10 * PAGE - 100))
    assert m.free_pages() == free
    m.umount()
    assert rfs.fsck_reserved(m.store) == 12


def preallocate(path, length):
    """A KEEP_SIZE preallocation on a backing file, as the daemon makes one."""
    fd = os.open(path, os.O_RDWR)
    try:
        fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, length)
    finally:
        os.close(fd)


def test_crash_keeps_preallocation_an_old_stamp_cannot_rule_out(fsf):
    """A stamp written by an older reservefs (times only, 24 bytes) cannot
    say whether pages past EOF were the user's: after a crash they stay, and
    its times are still taken."""
    m = fsf.new(size='4M', reserve='eof')
    with open(m.path('old'), 'wb') as f:
        f.write(b'o' * 100)
        os.fsync(f.fileno())
    backing = m.backing('old')
    ctime = os.stat(m.path('old')).st_ctime_ns + 10 ** 9

    def old_stamp():
        preallocate(backing, 8 * PAGE)
        os.setxattr(backing, 'user.reservefs.times',
                    struct.pack('3q', ctime - 5, ctime - 5, ctime))
    m.kill_remount(old_stamp)
    assert m.used_pages() == 8
    assert os.stat(m.path('old')).st_ctime_ns == ctime
    assert open(m.path('old'), 'rb').read() == b'o' * 100
