"""Namespace operations on a mounted reservefs (issue 2, item 4)."""

import ctypes
import errno
import os
import socket
import stat
import time

import pytest

import rfs
from rfs import RENAME_EXCHANGE, RENAME_NOREPLACE, errno_of, renameat2

OLD = 1_000_000_000 * 10**9 + 123456789   # a fixed past time, with nanoseconds


def write_file(path, data, mode=0o644):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def read_file(path):
    with open(path, 'rb') as f:
        return f.read()


def test_create_mkdir_rmdir_unlink(mnt):
    d = mnt.path('dir')
    os.mkdir(d, 0o755)
    st = os.stat(d)
    assert stat.S_ISDIR(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o755
    assert st.st_nlink == 2
    assert os.stat(mnt.mnt).st_nlink == 3
    write_file(os.path.join(d, 'f'), b'hello')
    assert read_file(os.path.join(d, 'f')) == b'hello'
    assert errno_of(os.rmdir, d) == errno.ENOTEMPTY
    assert errno_of(os.mkdir, d) == errno.EEXIST
    assert errno_of(os.open, os.path.join(d, 'f'), os.O_CREAT | os.O_EXCL | os.O_WRONLY) == errno.EEXIST
    assert errno_of(os.unlink, d) in (errno.EISDIR, errno.EPERM)
    assert errno_of(os.rmdir, os.path.join(d, 'f')) == errno.ENOTDIR
    os.unlink(os.path.join(d, 'f'))
    assert errno_of(os.stat, os.path.join(d, 'f')) == errno.ENOENT
    os.rmdir(d)
    assert errno_of(os.stat, d) == errno.ENOENT
    assert os.stat(mnt.mnt).st_nlink == 2
    assert os.listdir(mnt.mnt) == []
    # umask / create mode honoured
    old = os.umask(0o027)
    try:
        write_file(mnt.path('u'), b'', 0o777)
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(mnt.path('u')).st_mode) == 0o750


def test_rename_basic(mnt):
    os.mkdir(mnt.path('a'))
    os.mkdir(mnt.path('b'))
    write_file(mnt.path('a', 'x'), b'1')
    write_file(mnt.path('b', 'y'), b'2')
    ino = os.stat(mnt.path('a', 'x')).st_ino
    os.rename(mnt.path('a', 'x'), mnt.path('b', 'x2'))
    assert os.stat(mnt.path('b', 'x2')).st_ino == ino
    assert errno_of(os.stat, mnt.path('a', 'x')) == errno.ENOENT
    # over an existing file
    os.rename(mnt.path('b', 'x2'), mnt.path('b', 'y'))
    assert read_file(mnt.path('b', 'y')) == b'1'
    assert sorted(os.listdir(mnt.path('b'))) == ['y']
    # directory rename over empty dir, not over non-empty
    os.mkdir(mnt.path('c'))
    os.rename(mnt.path('a'), mnt.path('c'))
    assert errno_of(os.rename, mnt.path('c'), mnt.path('b')) in (errno.ENOTEMPTY, errno.EEXIST)
    # directory into its own subtree
    os.mkdir(mnt.path('c', 'sub'))
    assert errno_of(os.rename, mnt.path('c'), mnt.path('c', 'sub', 'x')) == errno.EINVAL
    # file over dir and dir over file
    assert errno_of(os.rename, mnt.path('b', 'y'), mnt.path('c')) == errno.EISDIR
    assert errno_of(os.rename, mnt.path('c'), mnt.path('b', 'y')) == errno.ENOTDIR
    # nlink of parents follows directory moves
    n0 = os.stat(mnt.path('b')).st_nlink
    os.rename(mnt.path('c', 'sub'), mnt.path('b', 'sub'))
    assert os.stat(mnt.path('b')).st_nlink == n0 + 1
    assert os.stat(mnt.path('c')).st_nlink == 2


def test_rename_noreplace_and_exchange(mnt):
    write_file(mnt.path('x'), b'xx')
    write_file(mnt.path('y'), b'yy')
    os.mkdir(mnt.path('d'))
    write_file(mnt.path('d', 'in'), b'in')
    ix, iy, idd = (os.stat(mnt.path(n)).st_ino for n in ('x', 'y', 'd'))
    with pytest.raises(OSError) as e:
        renameat2(mnt.path('x'), mnt.path('y'), RENAME_NOREPLACE)
    assert e.value.errno == errno.EEXIST
    assert read_file(mnt.path('y')) == b'yy'
    renameat2(mnt.path('x'), mnt.path('z'), RENAME_NOREPLACE)
    assert read_file(mnt.path('z')) == b'xx'
    renameat2(mnt.path('z'), mnt.path('y'), RENAME_EXCHANGE)
    assert read_file(mnt.path('z')) == b'yy' and read_file(mnt.path('y')) == b'xx'
    assert os.stat(mnt.path('y')).st_ino == ix and os.stat(mnt.path('z')).st_ino == iy
    # exchange a file and a directory
    renameat2(mnt.path('y'), mnt.path('d'), RENAME_EXCHANGE)
    assert os.stat(mnt.path('y')).st_ino == idd and read_file(mnt.path('y', 'in')) == b'in'
    assert read_file(mnt.path('d')) == b'xx'
    with pytest.raises(OSError) as e:
        renameat2(mnt.path('z'), mnt.path('nonexistent'), RENAME_EXCHANGE)
    assert e.value.errno == errno.ENOENT
    with pytest.raises(OSError) as e:
        renameat2(mnt.path('z'), mnt.path('y'), RENAME_EXCHANGE | RENAME_NOREPLACE)
    assert e.value.errno == errno.EINVAL
    mnt.remount()
    assert read_file(mnt.path('y', 'in')) == b'in' and read_file(mnt.path('d')) == b'xx'
    assert read_file(mnt.path('z')) == b'yy'


def test_hard_links(mnt):
    write_file(mnt.path('a'), b'data')
    os.mkdir(mnt.path('sub'))
    os.link(mnt.path('a'), mnt.path('b'))
    os.link(mnt.path('a'), mnt.path('sub', 'c'))
    sa, sb, sc = (os.stat(p) for p in (mnt.path('a'), mnt.path('b'), mnt.path('sub', 'c')))
    assert sa.st_ino == sb.st_ino == sc.st_ino
    assert sa.st_nlink == 3
    with open(mnt.path('b'), 'ab') as f:
        f.write(b'+more')
    assert read_file(mnt.path('sub', 'c')) == b'data+more'
    assert errno_of(os.link, mnt.path('sub'), mnt.path('dl')) == errno.EPERM
    assert errno_of(os.link, mnt.path('a'), mnt.path('b')) == errno.EEXIST
    os.unlink(mnt.path('a'))
    assert os.stat(mnt.path('b')).st_nlink == 2
    mnt.remount()
    assert os.stat(mnt.path('b')).st_nlink == 2
    assert os.stat(mnt.path('b')).st_ino == sa.st_ino == os.stat(mnt.path('sub', 'c')).st_ino
    os.unlink(mnt.path('b'))
    assert os.stat(mnt.path('sub', 'c')).st_nlink == 1
    assert read_file(mnt.path('sub', 'c')) == b'data+more'


def test_symlinks(mnt):
    write_file(mnt.path('target'), b't')
    os.symlink('target', mnt.path('rel'))
    os.symlink('/nonexistent/dangling', mnt.path('dangling'))
    long_target = 'x/' * 2000 + 'y'
    os.symlink(long_target, mnt.path('long'))
    assert os.readlink(mnt.path('rel')) == 'target'
    assert read_file(mnt.path('rel')) == b't'
    assert os.readlink(mnt.path('long')) == long_target
    st = os.lstat(mnt.path('rel'))
    assert stat.S_ISLNK(st.st_mode) and st.st_size == len('target')
    assert errno_of(os.stat, mnt.path('dangling')) == errno.ENOENT
    os.symlink('..', mnt.path('up'))
    mnt.remount()
    assert os.readlink(mnt.path('rel')) == 'target'
    assert os.readlink(mnt.path('long')) == long_target
    assert os.readlink(mnt.path('dangling')) == '/nonexistent/dangling'


def test_mknod_fifo_chr_sock(mnt):
    os.mkfifo(mnt.path('fifo'), 0o640)
    os.mknod(mnt.path('null'), stat.S_IFCHR | 0o666, os.makedev(1, 3))
    os.mknod(mnt.path('blk'), stat.S_IFBLK | 0o600, os.makedev(7, 0))
    s = socket.socket(socket.AF_UNIX)
    s.bind(mnt.path('sock'))
    s.close()
    os.mknod(mnt.path('reg'), stat.S_IFREG | 0o600)

    def check():
        st = os.lstat(mnt.path('fifo'))
        assert stat.S_ISFIFO(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o640
        st = os.lstat(mnt.path('null'))
        assert stat.S_ISCHR(st.st_mode) and st.st_rdev == os.makedev(1, 3)
        st = os.lstat(mnt.path('blk'))
        assert stat.S_ISBLK(st.st_mode) and st.st_rdev == os.makedev(7, 0)
        assert stat.S_ISSOCK(os.lstat(mnt.path('sock')).st_mode)
        assert stat.S_ISREG(os.lstat(mnt.path('reg')).st_mode)
    check()
    # the FIFO works between two fds
    r = os.open(mnt.path('fifo'), os.O_RDONLY | os.O_NONBLOCK)
    w = os.open(mnt.path('fifo'), os.O_WRONLY)
    os.write(w, b'pipe')
    assert os.read(r, 10) == b'pipe'
    os.close(w)
    os.close(r)
    mnt.remount()
    check()


@pytest.mark.parametrize('ns', ['user', 'trusted', 'security'])
def test_xattrs(mnt, ns):
    p = mnt.path('f')
    write_file(p, b'')
    os.mkdir(mnt.path('d'))
    name = ns + '.test'
    os.setxattr(p, name, b'value1')
    assert os.getxattr(p, name) == b'value1'
    os.setxattr(p, name, b'')
    assert os.getxattr(p, name) == b''
    big = os.urandom(3000)
    os.setxattr(p, name + '2', big)
    assert name in os.listxattr(p) and name + '2' in os.listxattr(p)
    with pytest.raises(OSError) as e:
        os.setxattr(p, name, b'x', os.XATTR_CREATE)
    assert e.value.errno == errno.EEXIST
    with pytest.raises(OSError) as e:
        os.setxattr(p, name + '3', b'x', os.XATTR_REPLACE)
    assert e.value.errno == errno.ENODATA
    with pytest.raises(OSError) as e:
        os.getxattr(p, name + '3')
    assert e.value.errno == errno.ENODATA
    os.setxattr(mnt.path('d'), name, b'on-dir')
    # binary value with NULs survives
    os.setxattr(p, name + 'bin', b'\0\1\2\0')
    ctime = os.stat(p).st_ctime_ns
    os.setxattr(p, name + 'c', b'c')
    assert os.stat(p).st_ctime_ns >= ctime
    mnt.remount()
    assert os.getxattr(p, name) == b''
    assert os.getxattr(p, name + '2') == big
    assert os.getxattr(p, name + 'bin') == b'\0\1\2\0'
    assert os.getxattr(mnt.path('d'), name) == b'on-dir'
    os.removexattr(p, name + '2')
    with pytest.raises(OSError) as e:
        os.removexattr(p, name + '2')
    assert e.value.errno == errno.ENODATA
    assert name + '2' not in os.listxattr(p)
    # xattrs go with the inode, across rename and links
    os.rename(p, mnt.path('g'))
    os.link(mnt.path('g'), mnt.path('h'))
    assert os.getxattr(mnt.path('h'), name) == b''


def test_xattr_on_symlink_and_size_query(mnt):
    write_file(mnt.path('f'), b'')
    # size query (buffer size 0) must report the size: getfattr does this
    p = rfs.run(['setfattr', '-n', 'user.k', '-v', 'abcdef', mnt.path('f')], check=True)
    p = rfs.run(['getfattr', '--only-values', '-n', 'user.k', mnt.path('f')], check=True)
    assert p.stdout == 'abcdef'
    p = rfs.run(['getfattr', '-d', mnt.path('f')], check=True)
    assert 'user.k="abcdef"' in p.stdout


def test_xattr_bad_names(mnt_user):
    """A bare namespace is EINVAL and a namespace we do not keep EOPNOTSUPP
    (as ext4); trusted.* names are listed to root only, whose values the
    kernel hides from others."""
    m = mnt_user
    p = m.path('f')
    write_file(p, b'')
    for name in ('user.', 'trusted.', 'security.'):
        assert errno_of(os.setxattr, p, name, b'1') == errno.EINVAL, name
        assert errno_of(os.getxattr, p, name) == errno.EINVAL, name
        assert errno_of(os.removexattr, p, name) == errno.EINVAL, name
    for name in ('system.foo', 'bogus.x'):
        assert errno_of(os.setxattr, p, name, b'1') == errno.EOPNOTSUPP, name
        assert errno_of(os.getxattr, p, name) == errno.EOPNOTSUPP, name
        assert errno_of(os.removexattr, p, name) == errno.EOPNOTSUPP, name
    os.setxattr(p, 'trusted.secret', b's')
    os.setxattr(p, 'user.visible', b'v')
    assert sorted(os.listxattr(p)) == ['trusted.secret', 'user.visible']
    assert rfs.as_user(os.listxattr, p) == ['user.visible']
    m.remount()
    assert sorted(os.listxattr(p)) == ['trusted.secret', 'user.visible']
    assert rfs.as_user(os.listxattr, p) == ['user.visible']


def test_posix_acl(mnt_user):
    m = mnt_user
    os.mkdir(m.path('d'))
    os.chmod(m.path('d'), 0o700)
    write_file(m.path('d', 'f'), b'secret', 0o600)
    assert rfs.as_user(errno_of, open, m.path('d', 'f'), 'rb') == errno.EACCES
    p = rfs.run(['setfacl', '-m', 'u:nobody:rx', m.path('d')])
    assert p.returncode == 0, p.stderr
    p = rfs.run(['setfacl', '-m', 'u:nobody:r', m.path('d', 'f')])
    assert p.returncode == 0, p.stderr
    assert rfs.as_user(lambda: open(m.path('d', 'f'), 'rb').read()) == b'secret'
    p = rfs.run(['getfacl', '-c', m.path('d', 'f')], check=True)
    assert 'user:nobody:r--' in p.stdout
    # default ACL inherited by new files
    rfs.run(['setfacl', '-d', '-m', 'u:nobody:rw', m.path('d')], check=True)
    write_file(m.path('d', 'g'), b'g', 0o666)
    p = rfs.run(['getfacl', '-c', m.path('d', 'g')], check=True)
    assert 'user:nobody:rw-' in p.stdout
    m.remount()
    assert rfs.as_user(lambda: open(m.path('d', 'f'), 'rb').read()) == b'secret'


def test_removing_an_acl_that_is_not_there(mnt):
    # ext4 (and xfs, btrfs, tmpfs) remove an ACL through set_acl(NULL), which
    # succeeds when there is none; we answered ENODATA (a differential probe
    # against ext4).  Other names still say ENODATA.
    os.mkdir(mnt.path('d'))
    write_file(mnt.path('f'), b'')
    for p in (mnt.path('d'), mnt.path('f')):
        ctime = os.stat(p).st_ctime_ns
        time.sleep(0.01)
        os.removexattr(p, 'system.posix_acl_access')
        assert os.stat(p).st_ctime_ns == ctime
    os.removexattr(mnt.path('d'), 'system.posix_acl_default')
    assert errno_of(os.removexattr, mnt.path('f'), 'user.none') == errno.ENODATA
    # one that is there goes, and then again succeeds
    rfs.run(['setfacl', '-d', '-m', 'u:nobody:rw', mnt.path('d')], check=True)
    assert 'system.posix_acl_default' in os.listxattr(mnt.path('d'))
    os.removexattr(mnt.path('d'), 'system.posix_acl_default')
    assert 'system.posix_acl_default' not in os.listxattr(mnt.path('d'))
    os.removexattr(mnt.path('d'), 'system.posix_acl_default')
    rfs.run(['setfacl', '-b', mnt.path('d')], check=True)


def test_chmod_chown_utimens_ns(mnt):
    p = mnt.path('f')
    write_file(p, b'abc')
    os.chmod(p, 0o4751)
    assert stat.S_IMODE(os.stat(p).st_mode) == 0o4751
    os.chown(p, 1234, 5678)
    st = os.stat(p)
    assert (st.st_uid, st.st_gid) == (1234, 5678)
    assert not st.st_mode & stat.S_ISUID, 'chown must clear setuid'
    os.chown(p, -1, 42)
    assert os.stat(p).st_uid == 1234 and os.stat(p).st_gid == 42
    os.utime(p, ns=(OLD, OLD + 1))
    st = os.stat(p)
    assert st.st_atime_ns == OLD and st.st_mtime_ns == OLD + 1
    os.utime(p, ns=(OLD + 999_999_999, 2**33 * 10**9 + 7))   # beyond 2038
    st = os.stat(p)
    assert st.st_atime_ns == OLD + 999_999_999 and st.st_mtime_ns == 2**33 * 10**9 + 7
    os.utime(p)   # UTIME_NOW
    st2 = os.stat(p)
    assert st2.st_mtime_ns > OLD and abs(st2.st_mtime_ns - st2.st_ctime_ns) < 10**9
    # symlink itself: lchown
    os.symlink('f', mnt.path('l'))
    os.lchown(mnt.path('l'), 77, 88)
    assert os.lstat(mnt.path('l')).st_uid == 77 and os.stat(p).st_uid == 1234
    os.utime(p, ns=(OLD, OLD + 5))
    mnt.remount()
    st = os.stat(p)
    assert (st.st_atime_ns, st.st_mtime_ns) == (OLD, OLD + 5)
    assert (st.st_uid, st.st_gid) == (1234, 42)


def test_times_beyond_range_clamp(mnt):
    """Times are kept as int64 nanoseconds (1677-09-21 .. 2262-04-11):
    beyond that they are clamped, as ext4 clamps to its range, not wrapped."""
    lo, hi = -(2**63) + 10**9, 2**63 - 1
    p = mnt.path('f')
    write_file(p, b'')
    y2500 = (16725225600, 123456789)           # 2500-01-01
    y1600 = (-11676096000, 0)                  # 1600-01-01
    os.utime(p, ns=(y1600[0] * 10**9, y2500[0] * 10**9 + y2500[1]))
    for st in (os.stat(p), None):
        if st is None:
            mnt.remount()
            st = os.stat(p)
        assert lo <= st.st_atime_ns < -(2**63) + 86400 * 10**9, st.st_atime_ns
        assert hi - 86400 * 10**9 < st.st_mtime_ns <= hi, st.st_mtime_ns
    ok = 2**62                                # 2116: inside the range, exact
    os.utime(p, ns=(ok + 1, -ok + 7))
    assert (os.stat(p).st_atime_ns, os.stat(p).st_mtime_ns) == (ok + 1, -ok + 7)


def test_readlink_updates_atime(mnt):
    os.symlink('target', mnt.path('l'))
    os.utime(mnt.path('l'), ns=(OLD, OLD), follow_symlinks=False)
    assert os.readlink(mnt.path('l')) == 'target'
    mnt.remount()      # the kernel's cached attributes go; the daemon's stay
    assert os.lstat(mnt.path('l')).st_atime_ns > OLD


def set_old(*paths):
    for p in paths:
        os.utime(p, ns=(OLD, OLD), follow_symlinks=False)


def times(p):
    st = os.lstat(p)
    return st.st_atime_ns, st.st_mtime_ns, st.st_ctime_ns


def test_times_like_kernel_fs(mnt):
    d = mnt.path('d')
    os.mkdir(d)
    f = os.path.join(d, 'f')
    write_file(f, b'x')
    # create: parent mtime+ctime; new file has all three ~now
    set_old(d)
    c0 = os.stat(d).st_ctime_ns
    write_file(os.path.join(d, 'g'), b'')
    a, m, c = times(d)
    assert m > OLD and c > c0
    ag, mg, cg = times(os.path.join(d, 'g'))
    assert mg == cg and abs(ag - mg) < 10**9 and mg > OLD
    # write: mtime+ctime of the file, not the parent
    set_old(f, d)
    cf0 = os.stat(f).st_ctime_ns
    with open(f, 'r+b') as fh:
        fh.write(b'y')
    a, m, c = times(f)
    assert m > OLD and c > cf0 and a == OLD
    assert times(d)[1] == OLD
    # truncate: mtime+ctime
    set_old(f)
    os.truncate(f, 100)
    assert times(f)[1] > OLD
    # chmod/chown/xattr/link: ctime only
    set_old(f)
    c0 = os.stat(f).st_ctime_ns
    os.chmod(f, 0o600)
    a, m, c = times(f)
    assert m == OLD and a == OLD and c >= c0
    c0 = c
    os.link(f, os.path.join(d, 'hl'))
    a, m, c = times(f)
    assert m == OLD and c >= c0
    # unlink: parent mtime/ctime, file ctime (another link remains)
    set_old(d, f)
    c0 = os.stat(f).st_ctime_ns
    os.unlink(os.path.join(d, 'hl'))
    assert times(d)[1] > OLD
    assert times(f)[2] >= c0 and times(f)[1] == OLD
    # rename: both parents' mtime, the moved inode's ctime
    os.mkdir(mnt.path('e'))
    set_old(d, mnt.path('e'), f)
    os.rename(f, mnt.path('e', 'f'))
    assert times(d)[1] > OLD and times(mnt.path('e'))[1] > OLD
    # read: atime moves (relatime: atime older than mtime -> updated)
    p = mnt.path('e', 'f')
    os.utime(p, ns=(OLD, OLD + 10**9))
    with open(p, 'rb') as fh:
        fh.read()
    assert times(p)[0] > OLD + 10**9
    # readdir: directory atime (relatime rule as well)
    os.utime(mnt.path('e'), ns=(OLD, OLD + 10**9))
    os.listdir(mnt.path('e'))
    assert times(mnt.path('e'))[0] > OLD + 10**9
    # mkdir/rmdir: parent mtime
    set_old(d)
    os.mkdir(os.path.join(d, 'sub'))
    assert times(d)[1] > OLD
    set_old(d)
    os.rmdir(os.path.join(d, 'sub'))
    assert times(d)[1] > OLD
    # symlink: parent mtime
    set_old(d)
    os.symlink('x', os.path.join(d, 'sl'))
    assert times(d)[1] > OLD


def test_setgid_directory_inheritance(mnt):
    d = mnt.path('sg')
    os.mkdir(d)
    os.chown(d, 0, 4321)
    os.chmod(d, 0o2775)
    assert os.stat(d).st_mode & stat.S_ISGID
    write_file(os.path.join(d, 'f'), b'')
    assert os.stat(os.path.join(d, 'f')).st_gid == 4321
    os.mkdir(os.path.join(d, 'sub'))
    st = os.stat(os.path.join(d, 'sub'))
    assert st.st_gid == 4321 and st.st_mode & stat.S_ISGID
    os.mknod(os.path.join(d, 'n'), stat.S_IFIFO | 0o600)
    assert os.stat(os.path.join(d, 'n')).st_gid == 4321
    os.symlink('f', os.path.join(d, 'l'))
    assert os.lstat(os.path.join(d, 'l')).st_gid == 4321
    # not inherited without the bit
    os.mkdir(mnt.path('plain'))
    os.chown(mnt.path('plain'), 0, 4321)
    write_file(mnt.path('plain', 'f'), b'')
    assert os.stat(mnt.path('plain', 'f')).st_gid == 0
    mnt.remount()
    assert os.stat(os.path.join(d, 'sub')).st_mode & stat.S_ISGID


def test_suid_sgid_cleared_on_write_by_non_owner(mnt_user):
    m = mnt_user
    p = m.path('prog')
    write_file(p, b'#!/bin/sh\n', 0o777)
    os.chmod(p, 0o6777)
    assert stat.S_IMODE(os.stat(p).st_mode) == 0o6777

    def append():
        with open(p, 'ab') as f:
            f.write(b'echo pwned\n')
    rfs.as_user(append)
    mode = stat.S_IMODE(os.stat(p).st_mode)
    assert not mode & stat.S_ISUID, oct(mode)
    assert not mode & stat.S_ISGID, oct(mode)
    assert read_file(p).endswith(b'echo pwned\n')
    # truncate by non-owner clears too
    os.chmod(p, 0o6777)
    rfs.as_user(os.truncate, p, 3)
    mode = stat.S_IMODE(os.stat(p).st_mode)
    assert not mode & (stat.S_ISUID | stat.S_ISGID), oct(mode)
    # sgid without group-exec goes too when the writer is not in the file's
    # group (setattr_should_drop_sgid, as ext4/tmpfs on this kernel, and
    # xfstests generic/683-685) ...
    os.chmod(p, 0o2666)
    rfs.as_user(append)
    assert not os.stat(p).st_mode & stat.S_ISGID
    # ... and stays when the writer is in the group
    os.chown(p, 0, 65534)         # as_user runs with gid 65534
    os.chmod(p, 0o2666)
    rfs.as_user(append)
    assert os.stat(p).st_mode & stat.S_ISGID
    # the owner writing keeps suid? No: the kernel clears suid on any write by
    # a caller without CAP_FSETID; root writing keeps it.
    os.chmod(p, 0o4755)
    append()
    assert os.stat(p).st_mode & stat.S_ISUID


def test_suid_sgid_cleared_on_copy_file_range_by_non_owner(mnt_user):
    # copy_file_range(2) into a setuid program is a write like any other
    # (ext4 and tmpfs clear the bits); the kernel sends no kill flag with it
    m = mnt_user
    src, p = m.path('src'), m.path('prog')
    write_file(src, b'echo pwned\n' * 100, 0o644)
    write_file(p, b'#!/bin/sh\n', 0o777)

    def copy():
        fi, fo = os.open(src, os.O_RDONLY), os.open(p, os.O_WRONLY)
        try:
            return os.copy_file_range(fi, fo, 100, 0, 10)
        finally:
            os.close(fi)
            os.close(fo)
    os.chmod(p, 0o6777)
    assert rfs.as_user(copy) == 100
    mode = stat.S_IMODE(os.stat(p).st_mode)
    assert not mode & (stat.S_ISUID | stat.S_ISGID), oct(mode)
    assert read_file(p)[10:110] == read_file(src)[:100]
    # sgid without group-exec: goes for a writer outside the group ...
    os.chmod(p, 0o2666)
    rfs.as_user(copy)
    assert not os.stat(p).st_mode & stat.S_ISGID
    # ... stays for one in it, and root (CAP_FSETID) keeps both
    os.chown(p, 0, 65534)
    os.chmod(p, 0o2666)
    rfs.as_user(copy)
    assert os.stat(p).st_mode & stat.S_ISGID
    os.chmod(p, 0o6777)
    assert copy() == 100
    assert stat.S_IMODE(os.stat(p).st_mode) == 0o6777


def test_capabilities_not_uids_decide(mnt_user):
    """Where the kernel leaves the rule to us (fallocate's setuid/setgid,
    trusted.* names), CAP_FSETID and CAP_SYS_ADMIN decide, as on ext4; the
    daemon once took uid 0 for them: a non-root writer holding CAP_FSETID
    lost the bits, root without it kept them."""
    m = mnt_user
    p = m.path('prog')
    write_file(p, b'#!/bin/sh\n', 0o777)
    nobody = ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups']
    nocap = lambda cap: ['setpriv', '--bounding-set=-' + cap, '--inh-caps=-' + cap]
    withcap = lambda cap: ['--inh-caps=+' + cap, '--ambient-caps=+' + cap]
    falloc = ['/usr/bin/python3', '-c', 'import os,sys; fd = os.open(sys.argv[1], os.O_WRONLY); '
              'os.posix_fallocate(fd, 0, 8192)', p]
    for who, kept in ((nobody, False), (nobody + withcap('fsetid'), True),
                      (nocap('fsetid'), False), ([], True)):
        os.chmod(p, 0o6777)
        r = rfs.run(who + falloc, timeout=30)
        assert r.returncode == 0, r.stderr
        mode = stat.S_IMODE(os.stat(p).st_mode)
        assert mode == (0o6777 if kept else 0o777), (who, oct(mode))
    os.setxattr(p, 'trusted.t', b'1')
    os.setxattr(p, 'user.u', b'1')
    ls = ['/usr/bin/python3', '-c', 'import os,sys; print(sorted(os.listxattr(sys.argv[1])))', p]
    for who, seen in ((nobody, False), (nobody + withcap('sys_admin'), True),
                      (nocap('sys_admin'), False), ([], True)):
        r = rfs.run(who + ls, timeout=30)
        assert r.returncode == 0, r.stderr
        assert r.stdout.strip() == str(['trusted.t', 'user.u'] if seen else ['user.u']), who


def test_suid_cleared_on_chown_by_owner(mnt_user):
    m = mnt_user
    os.mkdir(m.path('d'))
    os.chmod(m.path('d'), 0o777)
    p = m.path('d', 'f')

    def mk():
        write_file(p, b'x', 0o755)
        os.chmod(p, 0o6755)
        before = stat.S_IMODE(os.stat(p).st_mode)
        os.chown(p, -1, 65534)     # chgrp to a group we are in
        return before, stat.S_IMODE(os.stat(p).st_mode)
    before, after = rfs.as_user(mk)
    assert before == 0o6755
    assert not after & (stat.S_ISUID | stat.S_ISGID), oct(after)


def test_suid_cleared_on_chown_to_nothing(mnt_user):
    # chown(f, -1, -1) drops setuid (and setgid with group exec) on ext4 as
    # any chown does; the kernel flags only a chown naming a uid or gid, so
    # we kept them (a differential probe against ext4).  Directories and a
    # setgid without group exec keep theirs, as on ext4.
    m = mnt_user
    os.mkdir(m.path('d'))
    os.chmod(m.path('d'), 0o777)
    cases = {'a': (0o6755, 0o755), 'b': (0o2745, 0o2745), 'c': (0o4700, 0o700)}
    for name, (mode, _) in cases.items():
        write_file(m.path('d', name), b'x')
        os.chmod(m.path('d', name), mode)
        os.chown(m.path('d', name), -1, -1)
    os.mkdir(m.path('d', 'sub'))
    os.chmod(m.path('d', 'sub'), 0o3777)
    os.chown(m.path('d', 'sub'), -1, -1)
    # as the owner, without CAP_FSETID
    write_file(m.path('d', 'u'), b'x')
    os.chown(m.path('d', 'u'), 65534, 65534)
    os.chmod(m.path('d', 'u'), 0o6755)
    rfs.as_user(os.chown, m.path('d', 'u'), -1, -1)
    cases['u'] = (0o6755, 0o755)
    # nor can anyone else strip them so (ext4 says EPERM; a FUSE daemon
    # cannot tell this call from the kernel's file_remove_privs), and like
    # ext4's refusal it changes nothing, not even the ctime; on a file it
    # would not strip, it is allowed and sets the ctime, as on ext4
    write_file(m.path('d', 'v'), b'x')
    os.chmod(m.path('d', 'v'), 0o6755)
    ctime = os.stat(m.path('d', 'v')).st_ctime_ns
    rfs.as_user(errno_of, os.chown, m.path('d', 'v'), -1, -1)
    assert os.stat(m.path('d', 'v')).st_ctime_ns == ctime
    cases['v'] = (0o6755, 0o6755)
    write_file(m.path('d', 'w'), b'x')
    os.chmod(m.path('d', 'w'), 0o644)
    ctime = os.stat(m.path('d', 'w')).st_ctime_ns
    rfs.as_user(os.chown, m.path('d', 'w'), -1, -1)
    assert os.stat(m.path('d', 'w')).st_ctime_ns > ctime
    cases['w'] = (0o644, 0o644)
    for _ in range(2):
        for name, (_, want) in cases.items():
            assert stat.S_IMODE(os.stat(m.path('d', name)).st_mode) == want, name
        assert stat.S_IMODE(os.stat(m.path('d', 'sub')).st_mode) == 0o3777
        m.remount()


def test_permissions_enforced_as_user(mnt_user):
    m = mnt_user
    write_file(m.path('ro'), b'x', 0o644)
    assert rfs.as_user(errno_of, open, m.path('ro'), 'ab') == errno.EACCES
    os.mkdir(m.path('locked'), 0o700)
    assert rfs.as_user(errno_of, os.listdir, m.path('locked')) == errno.EACCES
    assert rfs.as_user(errno_of, os.chmod, m.path('ro'), 0o777) == errno.EPERM
    assert rfs.as_user(errno_of, os.chown, m.path('ro'), 65534, 65534) == errno.EPERM
    # sticky /tmp-like dir
    os.mkdir(m.path('tmp'))
    os.chmod(m.path('tmp'), 0o1777)
    write_file(m.path('tmp', 'rootfile'), b'', 0o666)
    assert rfs.as_user(errno_of, os.unlink, m.path('tmp', 'rootfile')) == errno.EPERM
    # a non-owner may not set the limits
    assert rfs.as_user(errno_of, os.setxattr, m.mnt, 'user.reservefs.size', b'128M') in (
        errno.EPERM, errno.EACCES)
    assert rfs.as_user(lambda: len(os.getxattr(m.mnt, 'user.reservefs.usage'))) > 0


def test_name_max(mnt):
    ok = 'n' * 255
    write_file(mnt.path(ok), b'ok')
    os.mkdir(mnt.path('d' * 255))
    os.symlink('x', mnt.path('s' * 255))
    assert ok in os.listdir(mnt.path())
    for fn in (lambda p: write_file(p, b''), os.mkdir, lambda p: os.symlink('x', p),
               os.stat, lambda p: os.rename(mnt.path(ok), p),
               lambda p: os.link(mnt.path(ok), p)):
        assert errno_of(fn, mnt.path('n' * 256)) == errno.ENAMETOOLONG
    # multi-byte characters count as bytes
    name = '\u00e9' * 127   # 254 bytes
    write_file(mnt.path(name), b'')
    assert errno_of(write_file, mnt.path('\u00e9' * 128), b'') == errno.ENAMETOOLONG
    assert os.statvfs(mnt.mnt).f_namemax == 255
    mnt.remount()
    assert read_file(mnt.path(ok)) == b'ok'
    assert name in os.listdir(mnt.mnt)


# ---- readdir ----------------------------------------------------------------

class Dirent(ctypes.Structure):
    _fields_ = [('d_ino', ctypes.c_uint64), ('d_off', ctypes.c_int64),
                ('d_reclen', ctypes.c_ushort), ('d_type', ctypes.c_ubyte),
                ('d_name', ctypes.c_char * 256)]


libc = rfs.libc
libc.opendir.restype = ctypes.c_void_p
libc.opendir.argtypes = [ctypes.c_char_p]
libc.readdir.restype = ctypes.POINTER(Dirent)
libc.readdir.argtypes = [ctypes.c_void_p]
libc.telldir.restype = ctypes.c_long
libc.telldir.argtypes = [ctypes.c_void_p]
libc.seekdir.argtypes = [ctypes.c_void_p, ctypes.c_long]
libc.rewinddir.argtypes = [ctypes.c_void_p]
libc.closedir.argtypes = [ctypes.c_void_p]


def read_all(dp):
    out = []
    while True:
        pos = libc.telldir(dp)
        e = libc.readdir(dp)
        if not e:
            return out
        out.append((pos, e.contents.d_name.decode(), e.contents.d_ino, e.contents.d_type))


@pytest.mark.timeout(240)
def test_readdir_large_dir_telldir_seekdir(mnt):
    d = mnt.path('big')
    os.mkdir(d)
    N = 5000
    names = ['file-%05d-%s' % (i, 'x' * (i % 97)) for i in range(N)]
    for n in names:
        os.close(os.open(os.path.join(d, n), os.O_CREAT | os.O_WRONLY, 0o644))
    os.mkdir(os.path.join(d, 'adir'))
    dp = libc.opendir(os.fsencode(d))
    assert dp
    try:
        ents = read_all(dp)
        got = [n for _, n, _, _ in ents]
        assert sorted(got) == sorted(names + ['.', '..', 'adir'])
        assert len(got) == len(set(got))
        inos = {n: i for _, n, i, _ in ents}
        for n in names[::500]:
            assert inos[n] == os.stat(os.path.join(d, n)).st_ino
        types = {n: t for _, n, _, t in ents}
        assert types['adir'] == 4 and types[names[0]] == 8   # DT_DIR, DT_REG
        # seekdir back to saved positions, in random order: the same entry follows
        import random
        rnd = random.Random(5)
        for pos, name, _, _ in rnd.sample(ents, 200):
            libc.seekdir(dp, pos)
            e = libc.readdir(dp)
            assert e and e.contents.d_name.decode() == name
        libc.rewinddir(dp)
        again = [n for _, n, _, _ in read_all(dp)]
        assert again == got
        # stability while entries are removed: every surviving entry shows once
        libc.seekdir(dp, ents[len(ents) // 2][0])
        for n in names[:1000]:
            os.unlink(os.path.join(d, n))
        rest = [n for _, n, _, _ in read_all(dp)]
        assert len(rest) == len(set(rest))
        expect_tail = set(got[len(got) // 2:]) - set(names[:1000])
        assert expect_tail <= set(rest)
    finally:
        libc.closedir(dp)
    assert len(os.listdir(d)) == N - 1000 + 1
    mnt.remount()
    assert sorted(os.listdir(d)) == sorted(names[1000:] + ['adir'])


def _drop_dentries_and_inodes():
    rfs.drop_caches(2)


def _forked(work, n):
    """Runs work(i) in n children; returns their pids."""
    pids = []
    for i in range(n):
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                work(i)
                code = 0
            finally:
                os._exit(code)
        pids.append(pid)
    return pids


@pytest.mark.timeout(120)
def test_forgets_racing_lookups_and_readdirplus(mnt):
    """The kernel forgets inodes (singly and in batches, drop_caches) while
    lookups and readdirplus take them again and let them go: two threads
    that each saw an inode's counts reach zero both went to evict it, and
    the second read the inode the first had freed (AddressSanitizer:
    heap-use-after-free in inode_maybe_evict, with a sanitizer build in
    RESERVEFS_BUILD; the log check fails the test)."""
    d = mnt.path('many')
    os.mkdir(d)
    names = ['f%04d' % i for i in range(2000)]
    for n in names:
        os.close(os.open(os.path.join(d, n), os.O_CREAT | os.O_WRONLY, 0o644))
    os.mkdir(mnt.path('churn'))
    end = time.monotonic() + 20

    def work(i):
        if i == 4:  # transactions that keep db_lock busy
            k = 0
            while time.monotonic() < end:
                p = mnt.path('churn', 'x%d' % (k % 100))
                os.close(os.open(p, os.O_CREAT | os.O_WRONLY, 0o644))
                os.unlink(p)
                k += 1
            return
        while time.monotonic() < end:
            if i < 2:
                assert len(os.listdir(d)) == len(names)
            else:
                for n in names[i::7]:
                    os.lstat(os.path.join(d, n))

    pids = _forked(work, 5)
    try:
        while time.monotonic() < end:
            _drop_dentries_and_inodes()
            time.sleep(0.2)
    finally:
        codes = [os.waitstatus_to_exitcode(os.waitpid(p, 0)[1]) for p in pids]
    assert codes == [0] * len(pids)
    assert sorted(os.listdir(d)) == names
    mnt.remount()
    assert sorted(os.listdir(d)) == names


def test_readdir_plus_attrs(mnt):
    for i in range(100):
        write_file(mnt.path('f%d' % i), b'x' * i)
    with os.scandir(mnt.mnt) as it:
        for e in it:
            st = e.stat(follow_symlinks=False)
            assert st.st_size == int(e.name[1:])
            assert e.inode() == st.st_ino


# ---- statfs ----------------------------------------------------------------

def test_statfs(fsf):
    m = fsf.new(size='8M', nr_inodes=1000)
    s = m.statvfs()
    assert s.f_bsize == 4096 and s.f_frsize == 4096
    assert s.f_blocks == 2048
    assert s.f_bfree == s.f_bavail == 2048
    assert s.f_files == 1000
    assert s.f_ffree == s.f_favail
    assert 998 <= s.f_ffree <= 1000
    write_file(m.path('f'), b'x' * 10000)
    s2 = m.statvfs()
    assert s2.f_bfree == s2.f_bavail == 2048 - 3
    assert s2.f_ffree == s.f_ffree - 1
    os.mkdir(m.path('d'))
    assert m.statvfs().f_ffree == s.f_ffree - 2
    os.unlink(m.path('f'))
    s3 = m.statvfs()
    assert s3.f_bfree == 2048 and s3.f_ffree == s.f_ffree - 1
    # df agrees
    p = rfs.run(['df', '-B4096', '--output=size,avail', m.mnt], check=True)
    size, avail = p.stdout.split('\n')[1].split()
    assert int(size) == 2048 and int(avail) == 2048


# ---- open-unlinked files ------------------------------------------------------

def test_open_unlinked_file(mnt):
    p = mnt.path('tmp')
    fd = os.open(p, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        os.write(fd, b'a' * 8192)
        os.unlink(p)
        assert errno_of(os.stat, p) == errno.ENOENT
        assert os.fstat(fd).st_nlink == 0
        os.write(fd, b'b' * 4096)
        os.lseek(fd, 0, os.SEEK_SET)
        assert os.read(fd, 20000) == b'a' * 8192 + b'b' * 4096
        os.ftruncate(fd, 100)
        assert os.fstat(fd).st_size == 100
        os.fsync(fd)
        fd2 = os.open('/proc/self/fd/%d' % fd, os.O_RDONLY)
        assert os.read(fd2, 200) == b'a' * 100
        os.close(fd2)
        # a new file with the same name is a new inode
        write_file(p, b'new')
        assert os.stat(p).st_ino != os.fstat(fd).st_ino
    finally:
        os.close(fd)
    assert read_file(p) == b'new'


def test_rename_over_open_file(mnt):
    write_file(mnt.path('a'), b'old contents')
    write_file(mnt.path('b'), b'new')
    fd = os.open(mnt.path('a'), os.O_RDONLY)
    try:
        os.rename(mnt.path('b'), mnt.path('a'))
        assert os.read(fd, 100) == b'old contents'
    finally:
        os.close(fd)
    assert read_file(mnt.path('a')) == b'new'
    mnt.remount()
    assert read_file(mnt.path('a')) == b'new'
    assert os.listdir(mnt.mnt) == ['a']


def test_open_removed_directory(mnt):
    """A directory removed while open keeps its xattrs and its inode until
    the last close, as on ext4; then both come back to the ledger, and a
    crash while it is open leaves an orphan that recovery frees."""
    before = mnt.stat_json()
    d = mnt.path('d')
    os.mkdir(d)
    fd = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.setxattr(fd, 'user.a', b'x' * 3000)
        os.rmdir(d)
        assert errno_of(os.stat, d) == errno.ENOENT
        assert os.fstat(fd).st_nlink == 0
        assert os.getxattr(fd, 'user.a') == b'x' * 3000
        os.setxattr(fd, 'user.b', b'y')
        assert sorted(os.listxattr(fd)) == ['user.a', 'user.b']
        os.removexattr(fd, 'user.a')
        assert os.listxattr(fd) == ['user.b']
        os.fchmod(fd, 0o700)
        assert os.fstat(fd).st_mode & 0o7777 == 0o700
        assert os.listdir(fd) == []
        held = mnt.stat_json()
        assert held['inodes_used'] == before['inodes_used'] + 1
        assert held['reserved_pages'] == before['reserved_pages'] + 1   # user.b
    finally:
        os.close(fd)
    rfs.wait_until(lambda: mnt.stat_json()['inodes_used'] == before['inodes_used'])
    assert mnt.stat_json()['reserved_pages'] == before['reserved_pages']

    # SIGKILL while one is open: the next mount frees it
    os.mkdir(d)
    fd = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
    os.setxattr(fd, 'user.c', b'z' * 5000)
    os.rmdir(d)
    try:
        mnt.kill_remount()
    finally:
        os.close(fd)
    after = mnt.stat_json()
    assert after['inodes_used'] == before['inodes_used']
    assert after['reserved_pages'] == before['reserved_pages']
    assert os.listdir(mnt.mnt) == []
    mnt.umount()
    p = mnt.fsck()
    assert p.returncode == 0, p.stdout + p.stderr


def _chattr(path, flags):
    """@flags None: the file's flags; else set them (rfs.chattr)."""
    return rfs.chattr(path, flags)


def test_chattr_immutable_and_append(mnt):
    """chattr +i / +a are kept across remount and enforced like a kernel fs."""
    IMM, APP = 0x10, 0x20
    f = mnt.path('f')
    write_file(f, b'data')
    _chattr(f, IMM)
    assert _chattr(f, None) & IMM
    for call in (lambda: os.open(f, os.O_WRONLY),
                 lambda: os.unlink(f),
                 lambda: os.rename(f, mnt.path('g')),
                 lambda: os.link(f, mnt.path('h')),
                 lambda: os.chmod(f, 0o777),
                 lambda: os.truncate(f, 0),
                 lambda: os.setxattr(f, 'user.x', b'1')):
        with pytest.raises(OSError) as e:
            call()
        assert e.value.errno == errno.EPERM
    assert read_file(f) == b'data'
    mnt.remount()
    assert _chattr(f, None) & IMM
    _chattr(f, APP)
    with open(f, 'ab') as fh:
        fh.write(b'+more')
    for call in (lambda: os.open(f, os.O_WRONLY),
                 lambda: os.truncate(f, 0),
                 lambda: os.unlink(f)):
        with pytest.raises(OSError) as e:
            call()
        assert e.value.errno == errno.EPERM
    assert read_file(f) == b'data+more'
    d = mnt.path('d')
    os.mkdir(d)
    _chattr(d, IMM)
    with pytest.raises(OSError) as e:
        write_file(os.path.join(d, 'x'), b'')
    assert e.value.errno == errno.EPERM
    _chattr(d, 0)
    _chattr(f, 0)
    os.unlink(f)
    os.rmdir(d)


def test_chattr_rules_as_ext4(mnt):
    """What ext4 does, found by nsdiff: new inodes inherit nodump and noatime
    (not immutable or append-only) from their directory; a descriptor opened
    for writing before chattr +a still writes anywhere (append-only is
    checked at open); an immutable inode's other flags cannot change until
    immutable is cleared; chown(f, -1, -1) on an append-only setuid file is
    a mode change, EPERM."""
    IMM, APP, NODUMP, NOATIME = 0x10, 0x20, 0x40, 0x80
    d = mnt.path('d')
    os.mkdir(d)
    _chattr(d, NODUMP | NOATIME | APP)
    write_file(os.path.join(d, 'f'), b'x')
    os.mkdir(os.path.join(d, 'sub'))
    for n in ('f', 'sub'):
        assert _chattr(os.path.join(d, n), None) & (IMM | APP | NODUMP | NOATIME) == \
            NODUMP | NOATIME, n
    _chattr(d, 0)

    f = mnt.path('f')
    write_file(f, b'hello')
    fd = os.open(f, os.O_RDWR)
    try:
        _chattr(f, APP)
        assert errno_of(os.open, f, os.O_WRONLY) == errno.EPERM
        assert os.pwrite(fd, b'J', 0) == 1
        assert errno_of(os.ftruncate, fd, 1) == errno.EPERM
    finally:
        os.close(fd)
    assert read_file(f) == b'Jello'

    _chattr(f, IMM)
    assert errno_of(_chattr, f, IMM | NODUMP) == errno.EPERM
    assert errno_of(_chattr, f, IMM | APP) == errno.EPERM
    _chattr(f, NODUMP)
    assert _chattr(f, None) & (IMM | APP | NODUMP) == NODUMP

    _chattr(f, 0)
    os.chmod(f, 0o4755)
    _chattr(f, APP)
    assert errno_of(os.chown, f, -1, -1) == errno.EPERM
    assert stat.S_IMODE(os.stat(f).st_mode) == 0o4755
    mnt.remount()
    assert _chattr(f, None) & APP
    assert _chattr(os.path.join(d, 'f'), None) & NODUMP
    _chattr(f, 0)


def test_chattr_by_capable_non_root(mnt_user):
    """The kernel decides who may chattr (owner or CAP_FOWNER; i and a need
    CAP_LINUX_IMMUTABLE); the daemon, which sees a uid and no capabilities,
    once refused an owner holding CAP_LINUX_IMMUTABLE."""
    IMM = 0x10
    f = mnt_user.path('f')
    write_file(f, b'data')
    os.chown(f, 65534, 65534)
    nobody = ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups']
    cap = ['--inh-caps=+linux_immutable', '--ambient-caps=+linux_immutable']
    chattr = lambda who, flag: rfs.run(who + ['chattr', flag, f], timeout=30)
    p = chattr(nobody, '+i')           # the owner without the capability
    assert p.returncode != 0 and 'not permitted' in p.stderr, p.stderr
    assert not _chattr(f, None) & IMM
    p = chattr(nobody + cap, '+i')
    assert p.returncode == 0, p.stderr
    assert _chattr(f, None) & IMM
    with pytest.raises(OSError) as e:
        os.open(f, os.O_WRONLY)
    assert e.value.errno == errno.EPERM
    p = chattr(nobody + cap, '-i')
    assert p.returncode == 0, p.stderr
    assert not _chattr(f, None) & IMM
    os.unlink(f)


def stat_birth(path):
    """(btime ns or None, size, mode) via statx (coreutils stat asks for btime)."""
    r = rfs.run(['stat', '-c', '%W %.9W %s %f', path])
    assert r.returncode == 0, r.stderr
    w, wf, size, mode = r.stdout.split()
    if w == '0' and wf.startswith('0.') and set(wf[2:]) == {'0'}:
        return None, int(size), int(mode, 16)
    sec, _, frac = wf.partition('.')
    return int(sec) * 10**9 + int(frac), int(size), int(mode, 16)


def test_birth_time_via_statx(fsf):
    """FUSE_STATX (answered in fs/io.c, outside libfuse) carries the btime we
    keep: set at creation, unchanged by writes, renames and chmod, kept
    across a remount; the other fields agree with stat()."""
    m = fsf.new(size='4M')
    t0 = time.time_ns()
    with open(m.path('f'), 'wb') as f:
        f.write(b'abc')
    os.mkdir(m.path('d'))
    t1 = time.time_ns()
    bt, size, mode = stat_birth(m.path('f'))
    assert bt is not None and t0 - 10**7 <= bt <= t1 + 10**7, (t0, bt, t1)
    assert size == 3 and mode == os.stat(m.path('f')).st_mode
    bd = stat_birth(m.path('d'))[0]
    assert bd is not None and t0 - 10**7 <= bd <= t1 + 10**7
    time.sleep(0.02)
    with open(m.path('f'), 'ab') as f:
        f.write(b'more')
    os.chmod(m.path('f'), 0o600)
    os.rename(m.path('f'), m.path('d', 'g'))
    bt2, size, mode = stat_birth(m.path('d', 'g'))
    assert bt2 == bt and size == 7 and mode & 0o777 == 0o600
    st = os.stat(m.path('d', 'g'))
    assert st.st_size == 7 and st.st_mode & 0o777 == 0o600
    m.remount()
    assert stat_birth(m.path('d', 'g'))[0] == bt
    assert stat_birth(m.path('d'))[0] == bd
    assert stat_birth(m.mnt)[0] is not None
    r = rfs.run(['stat', '-c', '%W', m.path('d', 'nothere')])
    assert r.returncode != 0 and 'No such file' in r.stderr


# ---- O_TMPFILE (answered in fs/io.c: libfuse 3.14 has no tmpfile operation) ----

def test_o_tmpfile(fsf, mode):
    m = fsf.new(size='4M', reserve=mode)
    os.mkdir(m.path('d'))
    os.chown(m.path('d'), 0, 4242)
    os.chmod(m.path('d'), 0o2777)
    free0, files0 = m.statvfs().f_bfree, m.statvfs().f_ffree
    old_umask = os.umask(0o027)
    try:
        fd = os.open(m.path('d'), os.O_TMPFILE | os.O_RDWR, 0o666)
    finally:
        os.umask(old_umask)
    try:
        st = os.fstat(fd)
        assert stat.S_ISREG(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o640
        assert st.st_nlink == 0 and st.st_gid == 4242     # setgid directory's group
        assert os.listdir(m.path('d')) == []
        data = rfs.pattern(1, 0, 100_000)
        os.write(fd, data)
        assert m.statvfs().f_ffree == files0 - 1
        assert m.statvfs().f_bfree == free0 - 25          # 100,000 bytes: 25 pages
        # it fills the disk like any file: a short write, then ENOSPC
        n = os.pwrite(fd, b'x' * (5 << 20), len(data))
        assert 0 < n < 5 << 20 and m.statvfs().f_bfree == 0
        assert errno_of(os.pwrite, fd, b'x' * 8192, len(data) + n) == errno.ENOSPC
        os.ftruncate(fd, len(data))
        assert m.statvfs().f_bfree == free0 - 25
        assert os.pread(fd, 200_000, 0) == data
        rfs.link_fd(fd, m.path('d', 'named'))
        assert os.fstat(fd).st_nlink == 1
        assert os.listdir(m.path('d')) == ['named']
        rfs.link_fd(fd, m.path('second'))                 # a second link: a plain link
        assert os.fstat(fd).st_nlink == 2
        os.write(fd, b'tail')
    finally:
        os.close(fd)
    m.remount()
    assert read_file(m.path('d', 'named')) == data + b'tail'
    assert os.stat(m.path('second')).st_nlink == 2

    # never linked: gone at the last close, its space and inode back
    free1, files1 = m.statvfs().f_bfree, m.statvfs().f_ffree
    fd = os.open(m.mnt, os.O_TMPFILE | os.O_WRONLY, 0o600)
    os.write(fd, b'y' * 65536)
    fd2 = os.open('/proc/self/fd/%d' % fd, os.O_RDONLY)   # a second open of it
    os.close(fd)
    assert os.read(fd2, 10) == b'y' * 10
    assert m.statvfs().f_bfree == free1 - 16
    os.close(fd2)
    # (the kernel sends RELEASE after close() returns)
    assert rfs.wait_until(lambda: m.statvfs().f_bfree == free1)
    assert m.statvfs().f_ffree == files1

    # O_EXCL: never linkable, as on ext4
    fd = os.open(m.mnt, os.O_TMPFILE | os.O_RDWR | os.O_EXCL, 0o600)
    try:
        assert errno_of(rfs.link_fd, fd, m.path('x')) == errno.ENOENT
    finally:
        os.close(fd)
    # a file, not a directory, is no place for one
    assert errno_of(os.open, m.path('second'), os.O_TMPFILE | os.O_RDWR) == errno.ENOTDIR
    assert sorted(os.listdir(m.mnt)) == ['d', 'second']
    m.umount()
    p = m.fsck()
    assert p.returncode == 0 and 'clean' in p.stdout, p.stdout + p.stderr


def test_o_tmpfile_mmap_and_sigkill(fsf):
    """A tmpfile written through a shared mapping, linked and fsynced,
    survives a SIGKILL of the daemon; one still unnamed at the kill is freed
    by the recovery."""
    import mmap
    m = fsf.new(size='4M')
    free0 = m.free_pages()
    fd = os.open(m.mnt, os.O_TMPFILE | os.O_RDWR, 0o644)
    os.ftruncate(fd, 8192)
    mp = mmap.mmap(fd, 8192)
    mp[:] = rfs.pattern(2, 0, 8192)
    mp.flush()
    mp.close()
    rfs.link_fd(fd, m.path('kept'))
    os.fsync(fd)
    os.close(fd)
    lost = os.open(m.mnt, os.O_TMPFILE | os.O_RDWR, 0o644)
    os.write(lost, b'z' * 40960)
    assert m.free_pages() == free0 - 2 - 10
    m.kill()
    os.close(lost)
    m.umount_dead()
    m.mount()
    assert read_file(m.path('kept')) == rfs.pattern(2, 0, 8192)
    assert os.listdir(m.mnt) == ['kept']
    assert m.free_pages() == free0 - 2
    m.umount()
    p = m.fsck()
    assert p.returncode == 0 and 'clean' in p.stdout, p.stdout + p.stderr


def test_open_files_limit(fsf):
    """The daemon holds a backing descriptor per open file.  It raises its
    soft limit to the hard one at start (a shell's 1,024 would cap every
    user of the mount at that); past the hard limit an open or create gets
    ENFILE, as when the system's file table is full, never EMFILE (the
    caller has room), and a refused create leaves no file behind."""
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    m = fsf.new(size='64M', do_mount=False)
    resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))
    try:
        m.mount()
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    assert resource.prlimit(m.pid, resource.RLIMIT_NOFILE) == (hard, hard)
    fds = []
    try:
        for i in range(1000):
            fds.append(os.open(m.path('f%d' % i), os.O_CREAT | os.O_RDWR, 0o600))
        os.write(fds[-1], b'last')
    finally:
        for fd in fds:
            os.close(fd)
    fds = []
    # now a daemon with a hard limit of 200 (lowering needs no privilege)
    resource.prlimit(m.pid, resource.RLIMIT_NOFILE, (200, 200))
    names = set(os.listdir(m.mnt))
    try:
        err = None
        for i in range(400):
            try:
                fds.append(os.open(m.path('f%d' % i), os.O_RDWR))
            except OSError as e:
                err = e.errno
                break
        assert err == errno.ENFILE and 100 < len(fds) < 200
        # creates take a spare backing file, kept open, until none is left
        created = []
        for i in range(200):
            try:
                fds.append(os.open(m.path('n%d' % i), os.O_CREAT | os.O_RDWR, 0o600))
                created.append('n%d' % i)
            except OSError as e:
                err = e.errno
                break
        assert err == errno.ENFILE and len(created) < 200
        assert set(os.listdir(m.mnt)) == names | set(created)
        try:
            fds.append(os.open(m.mnt, os.O_TMPFILE | os.O_RDWR, 0o600))
        except OSError as e:
            err = e.errno
        assert err == errno.ENFILE
    finally:
        for fd in fds:
            os.close(fd)
    # descriptors back: it opens and creates again
    assert rfs.wait_until(lambda: errno_of(write_file, m.path('new'), b'x') == 0)
    assert read_file(m.path('f999')) == b'last'
    m.umount()
    p = m.fsck()
    assert p.returncode == 0 and 'clean' in p.stdout, p.stdout + p.stderr
