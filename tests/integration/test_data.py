"""File data operations on a mounted reservefs (issue 2, item 5)."""

import errno
import fcntl
import json
import mmap
import os
import struct

import pytest

import rfs
from rfs import (FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE, FALLOC_FL_ZERO_RANGE,
                 fallocate, pattern)

MiB = 1 << 20


def pread_all(path):
    with open(path, 'rb') as f:
        return f.read()


def test_read_write_offsets(fsf, mode):
    m = fsf.new(size='64M', reserve=mode)
    p = m.path('f')
    fd = os.open(p, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        data = os.urandom(3 * MiB + 1234)
        assert os.write(fd, data) == len(data)
        os.pwrite(fd, b'XYZ', 4095)
        os.pwrite(fd, b'tail', len(data) + 10000)
        assert os.fstat(fd).st_size == len(data) + 10004
        expect = bytearray(data)
        expect[4095:4098] = b'XYZ'
        expect += b'\0' * 10000 + b'tail'
        assert os.pread(fd, len(expect) + 100, 0) == bytes(expect)
        assert os.pread(fd, 100, len(expect)) == b''
        # unaligned reads spanning pages
        for off, n in ((1, 10), (4090, 20), (MiB - 3, 70000), (len(expect) - 5, 100)):
            assert os.pread(fd, n, off) == bytes(expect[off:off + n])
    finally:
        os.close(fd)
    # O_APPEND from two fds
    a1 = os.open(m.path('log'), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    a2 = os.open(m.path('log'), os.O_WRONLY | os.O_APPEND)
    for i in range(50):
        os.write(a1 if i % 2 else a2, b'%03d\n' % i)
    os.close(a1)
    os.close(a2)
    assert pread_all(m.path('log')) == b''.join(b'%03d\n' % i for i in range(50))
    m.remount()
    assert pread_all(p) == bytes(expect)


def test_truncate_up_down_zeroes(fsf, mode):
    m = fsf.new(size='64M', reserve=mode)
    p = m.path('f')
    with open(p, 'wb') as f:
        f.write(b'\xff' * 10000)
    os.truncate(p, 5000)
    os.truncate(p, 20000)
    d = pread_all(p)
    assert d == b'\xff' * 5000 + b'\0' * 15000
    os.truncate(p, 0)
    assert os.stat(p).st_size == 0
    m.remount()
    assert os.stat(p).st_size == 0


def test_fallocate_modes(fsf, mode):
    m = fsf.new(size='64M', reserve=mode)
    p = m.path('f')
    fd = os.open(p, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        used0 = m.used_pages()
        fallocate(fd, 0, 0, MiB)
        assert os.fstat(fd).st_size == MiB
        assert m.used_pages() == used0 + 256
        assert os.pread(fd, MiB, 0) == b'\0' * MiB
        fallocate(fd, FALLOC_FL_KEEP_SIZE, MiB, MiB)
        assert os.fstat(fd).st_size == MiB
        assert m.used_pages() == used0 + 512
        # writing into the KEEP_SIZE area moves EOF but charges nothing new
        os.pwrite(fd, pattern(1, MiB, MiB), MiB)
        assert os.fstat(fd).st_size == 2 * MiB
        assert m.used_pages() == used0 + 512
        os.pwrite(fd, pattern(1, 0, MiB), 0)
        # punch a hole below EOF: zeroes; eof mode keeps the reservation
        fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 64 * 1024, 128 * 1024)
        d = os.pread(fd, 2 * MiB, 0)
        assert d[:65536] == pattern(1, 0, 65536)
        assert d[65536:196608] == b'\0' * 131072
        assert d[196608:] == pattern(1, 196608, 2 * MiB - 196608)
        assert os.fstat(fd).st_size == 2 * MiB
        expect_used = used0 + 512 if mode == 'eof' else used0 + 512 - 32
        assert m.used_pages() == expect_used
        # unaligned punch zeroes exact bytes
        fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 300000, 1000)
        assert os.pread(fd, 1002, 299999) == pattern(1, 299999, 1) + b'\0' * 1000 + \
            pattern(1, 301000, 1)
        # zero range inside the file
        fallocate(fd, FALLOC_FL_ZERO_RANGE, MiB, 8192 + 100)
        assert os.pread(fd, 8192 + 101, MiB) == b'\0' * (8192 + 100) + pattern(1, MiB + 8292, 1)
        assert m.used_pages() <= expect_used
        # zero range past EOF without KEEP_SIZE extends the file
        fallocate(fd, FALLOC_FL_ZERO_RANGE, 2 * MiB, 4096 * 3)
        assert os.fstat(fd).st_size == 2 * MiB + 3 * 4096
        # PUNCH without KEEP_SIZE is refused by the kernel API
        with pytest.raises(OSError) as e:
            fallocate(fd, FALLOC_FL_PUNCH_HOLE, 0, 4096)
        assert e.value.errno == errno.EOPNOTSUPP
        final = os.pread(fd, 3 * MiB, 0)
    finally:
        os.close(fd)
    m.remount()
    assert pread_all(p) == final


def test_seek_data_hole(fsf, mode):
    m = fsf.new(size='64M', reserve=mode)
    p = m.path('sparse')
    fd = os.open(p, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        os.pwrite(fd, b'a' * 4096, 0)
        os.pwrite(fd, b'b' * 4096, MiB)
        os.ftruncate(fd, 2 * MiB)
        size = 2 * MiB
        assert os.lseek(fd, 0, os.SEEK_DATA) == 0
        h = os.lseek(fd, 0, os.SEEK_HOLE)
        assert 4096 <= h <= size
        assert os.lseek(fd, MiB, os.SEEK_DATA) == MiB
        assert os.lseek(fd, MiB, os.SEEK_HOLE) >= MiB + 4096
        assert os.lseek(fd, size - 1, os.SEEK_HOLE) in (size - 1, size)
        with pytest.raises(OSError) as e:
            os.lseek(fd, size, os.SEEK_DATA)
        assert e.value.errno == errno.ENXIO
        with pytest.raises(OSError) as e:
            os.lseek(fd, size + 10, os.SEEK_HOLE)
        assert e.value.errno == errno.ENXIO
        if mode == 'write':
            # holes cost nothing and are reported exactly
            assert h == 4096
            assert os.lseek(fd, 4096, os.SEEK_DATA) == MiB
            assert os.lseek(fd, MiB, os.SEEK_HOLE) == MiB + 4096
            with pytest.raises(OSError) as e:
                os.lseek(fd, MiB + 4096, os.SEEK_DATA)
            assert e.value.errno == errno.ENXIO
    finally:
        os.close(fd)


def seek_map(fd):
    """[(data, hole), ...] by SEEK_DATA/SEEK_HOLE, as cp and tar walk a file."""
    size, off, out = os.fstat(fd).st_size, 0, []
    while off < size:
        try:
            d = os.lseek(fd, off, os.SEEK_DATA)
        except OSError as e:
            assert e.errno == errno.ENXIO
            break
        off = os.lseek(fd, d, os.SEEK_HOLE)
        out.append((d, off))
    return out


def test_seek_holes_stay_holes_after_reads(fsf, mode):
    """Pages never written (or punched) are holes before and after the file
    is read.  In eof mode they are preallocated in the backing file, and
    lseek there counted the zero pages a read left in its page cache as
    data."""
    m = fsf.new(size='64M', reserve=mode)
    fd = os.open(m.path('f'), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        os.ftruncate(fd, 8 * MiB)
        os.pwrite(fd, b'X', 4 * MiB)
        fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, MiB)
        want = [(4 * MiB, 4 * MiB + 4096)]
        assert seek_map(fd) == want
        with open(m.path('f'), 'rb') as f:
            assert f.read().count(b'X') == 1
        assert seek_map(fd) == want
        # what is written later is data at once, through write() and mmap
        os.pwrite(fd, b'Y', 6 * MiB + 10)
        mp = mmap.mmap(fd, 8 * MiB)
        mp[2 * MiB] = ord('Z')
        assert seek_map(fd) == [(2 * MiB, 2 * MiB + 4096), (4 * MiB, 4 * MiB + 4096),
                                (6 * MiB, 6 * MiB + 4096)]
        mp.close()
    finally:
        os.close(fd)
    m.remount()
    fd = os.open(m.path('f'), os.O_RDONLY)
    try:
        os.read(fd, 8 * MiB)
        assert seek_map(fd) == [(2 * MiB, 2 * MiB + 4096), (4 * MiB, 4 * MiB + 4096),
                                (6 * MiB, 6 * MiB + 4096)]
    finally:
        os.close(fd)


def test_copy_file_range(fsf, mode):
    m = fsf.new(size='64M', reserve=mode)
    src = m.path('src')
    data = pattern(7, 0, 5 * MiB + 77)
    with open(src, 'wb') as f:
        f.write(data)
    s = os.open(src, os.O_RDONLY)
    d = os.open(m.path('dst'), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        done = 0
        while done < len(data):
            n = os.copy_file_range(s, d, len(data) - done, done, done)
            assert n > 0
            done += n
        assert os.copy_file_range(s, d, 100, len(data), 0) == 0   # at EOF
        # unaligned, overlapping region of the same file
        n = os.copy_file_range(s, d, 10000, 123, 5 * MiB + 1000)
        assert n == 10000
    finally:
        os.close(s)
        os.close(d)
    expect = data + b'\0' * (1000 - 77) + data[123:10123]
    assert pread_all(m.path('dst')) == expect
    m.remount()
    assert pread_all(m.path('dst')) == expect
    # cp uses copy_file_range/reflink paths too
    rfs.run(['cp', src, m.path('cp')], check=True)
    assert pread_all(m.path('cp')) == data


def test_fsync_fdatasync(mnt):
    p = mnt.path('f')
    fd = os.open(p, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        os.write(fd, b'x' * 100000)
        os.fsync(fd)
        os.write(fd, b'y' * 100)
        os.fdatasync(fd)
        assert os.fstat(fd).st_size == 100100
    finally:
        os.close(fd)
    dfd = os.open(mnt.mnt, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)
    os.sync()
    rfs.run(['sync', '-f', p], check=True)


def test_flock(mnt):
    p = mnt.path('lock')
    open(p, 'w').close()
    a = os.open(p, os.O_RDWR)
    b = os.open(p, os.O_RDWR)
    try:
        fcntl.flock(a, fcntl.LOCK_EX)
        with pytest.raises(BlockingIOError):
            fcntl.flock(b, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(BlockingIOError):
            fcntl.flock(b, fcntl.LOCK_SH | fcntl.LOCK_NB)
        fcntl.flock(a, fcntl.LOCK_UN)
        fcntl.flock(b, fcntl.LOCK_SH | fcntl.LOCK_NB)
        fcntl.flock(a, fcntl.LOCK_SH | fcntl.LOCK_NB)
        with pytest.raises(BlockingIOError):
            fcntl.flock(a, fcntl.LOCK_EX | fcntl.LOCK_NB)
    finally:
        os.close(a)
        os.close(b)
    # the lock goes with the last close
    c = os.open(p, os.O_RDWR)
    fcntl.flock(c, fcntl.LOCK_EX | fcntl.LOCK_NB)
    os.close(c)


def getlk(fd, typ, start, length):
    fl = struct.pack('hhqqi4x', typ, os.SEEK_SET, start, length, 0)
    r = fcntl.fcntl(fd, fcntl.F_GETLK, fl)
    t, _, s, ln, pid = struct.unpack('hhqqi4x', r)
    return t, s, ln, pid


def test_posix_locks(mnt):
    p = mnt.path('plock')
    with open(p, 'wb') as f:
        f.write(b'\0' * 1000)
    fd = os.open(p, os.O_RDWR)
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX, 100, 0)      # bytes 0..99
        fcntl.lockf(fd, fcntl.LOCK_SH, 100, 500)    # bytes 500..599

        def child():
            c = os.open(p, os.O_RDWR)
            out = {}
            try:
                fcntl.lockf(c, fcntl.LOCK_EX | fcntl.LOCK_NB, 10, 50)
                out['ex_overlap'] = 'granted'
            except OSError as e:
                out['ex_overlap'] = e.errno
            fcntl.lockf(c, fcntl.LOCK_EX | fcntl.LOCK_NB, 100, 200)
            out['ex_free'] = 'granted'
            fcntl.lockf(c, fcntl.LOCK_SH | fcntl.LOCK_NB, 10, 550)
            out['sh_shared'] = 'granted'
            out['getlk'] = getlk(c, fcntl.F_WRLCK, 0, 10)
            os.close(c)
            return out
        out = rfs.as_user(child, uid=0, gid=0)
        assert out['ex_overlap'] in (errno.EAGAIN, errno.EACCES)
        assert out['ex_free'] == 'granted' and out['sh_shared'] == 'granted'
        t, s, ln, pid = out['getlk']
        assert t == fcntl.F_WRLCK and s == 0 and ln == 100 and pid == os.getpid()
        # our own view: unlocked range reports F_UNLCK
        assert getlk(fd, fcntl.F_WRLCK, 2000, 10)[0] == fcntl.F_UNLCK
        fcntl.lockf(fd, fcntl.LOCK_UN, 100, 0)
        out = rfs.as_user(lambda: fcntl.lockf(os.open(p, os.O_RDWR),
                                              fcntl.LOCK_EX | fcntl.LOCK_NB, 10, 50) or 'ok',
                          uid=0, gid=0)
        assert out == 'ok'
    finally:
        os.close(fd)


def test_mmap_shared_write_remount(fsf, mode):
    m = fsf.new(size='64M', reserve=mode)
    p = m.path('mm')
    r = rfs.run_helper('mmap_write.py', p, 3, '--size', 3 * MiB + 100, '--truncate',
                       timeout=120)
    assert r.returncode == 0, 'mmap writer failed (%d): %s %s' % (r.returncode, r.stdout, r.stderr)
    assert json.loads(r.stdout)['ok']
    m.remount()
    assert os.stat(p).st_size == 3 * MiB + 100
    assert pread_all(p) == pattern(3, 0, 3 * MiB + 100)
    # mmap reads of data written with write()
    import mmap as mm
    with open(p, 'rb') as f:
        mp = mm.mmap(f.fileno(), 0, prot=mm.PROT_READ)
        assert mp[MiB:MiB + 8192] == pattern(3, MiB, 8192)
        mp.close()


def test_mmap_and_write_coherent(mnt):
    """write() then read through an existing mapping and vice versa."""
    p = mnt.path('f')
    with open(p, 'wb') as f:
        f.write(b'\0' * 65536)
    import mmap as mm
    fd = os.open(p, os.O_RDWR)
    try:
        mp = mm.mmap(fd, 65536, mm.MAP_SHARED, mm.PROT_READ | mm.PROT_WRITE)
        os.pwrite(fd, b'written', 100)
        assert mp[100:107] == b'written'
        mp[200:207] = b'mmapped'
        mp.flush()
        assert os.pread(fd, 7, 200) == b'mmapped'
        mp.close()
    finally:
        os.close(fd)


def test_large_offsets_write_mode(fsf):
    m = fsf.new(size='64M', reserve='write')
    p = m.path('big')
    fd = os.open(p, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        off = 5 * (1 << 30) + 12345
        assert os.pwrite(fd, b'far away', off) == 8
        assert os.fstat(fd).st_size == off + 8
        assert os.pread(fd, 8, off) == b'far away'
        assert os.pread(fd, 16, off - 8) == b'\0' * 8 + b'far away'
        assert m.used_pages() <= 2
    finally:
        os.close(fd)
    m.remount()
    assert os.stat(p).st_size == off + 8


@pytest.mark.timeout(120)
def test_concurrent_readers_writers(mnt):
    import threading
    errs = []

    def w(i):
        try:
            p = mnt.path('c%d' % i)
            data = pattern(i, 0, 2 * MiB)
            with open(p, 'wb') as f:
                for o in range(0, len(data), 65536):
                    f.write(data[o:o + 65536])
            for _ in range(3):
                assert pread_all(p) == data
        except Exception as e:      # collected for the main thread
            errs.append(repr(e))
    ts = [threading.Thread(target=w, args=(i,)) for i in range(8)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errs
