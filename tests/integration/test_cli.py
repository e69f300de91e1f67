"""mkfs / mount / fsck command lines, good and bad input (issue 2, items 2, 3, 7, 11)."""

import fcntl
import hashlib
import os
import sqlite3
import subprocess
import threading
import time

import pytest

import rfs
from rfs import RESERVEFS, run


def store_digest(store):
    """Content of meta.db plus the set of paths under data/: 'nothing damaged'."""
    h = hashlib.sha256()
    with open(os.path.join(store, 'meta.db'), 'rb') as f:
        h.update(f.read())
    for dp, dns, fns in sorted(os.walk(os.path.join(store, 'data'))):
        for n in sorted(fns + dns):
            h.update(os.path.join(dp, n).encode())
    return h.hexdigest()


def one_line_error(p):
    lines = [l for l in p.stderr.splitlines() if l.strip()]
    assert p.returncode != 0, 'expected failure, got exit 0: %r' % (p.stdout + p.stderr)
    assert len(lines) == 1, 'expected one-line error on stderr, got %d lines:\n%s' % (
        len(lines), p.stderr)
    return lines[0]


def try_mount_expect_failure(store, mnt, opts=None, timeout=15):
    """Run the daemon in the foreground; it must exit non-zero on its own
    without mounting.  If it mounts anyway, tear it down and fail."""
    args = [RESERVEFS, store, mnt, '-f']
    if opts:
        args += ['-o', opts]
    p = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        if rfs.is_mounted(mnt):
            run(['fusermount3', '-u', mnt])
        try:
            out, err = p.communicate(timeout=5)
        except subprocess.TimeoutExpired:
            p.kill()
            out, err = p.communicate()
        pytest.fail('reservefs %s did not fail (it stayed up / mounted)' % ' '.join(args[1:]))
    mounted = rfs.is_mounted(mnt)
    if mounted:
        run(['fusermount3', '-u', mnt])
    assert not mounted, 'mount appeared although the daemon failed'
    return subprocess.CompletedProcess(args, p.returncode, out, err)


# ---- mkfs ------------------------------------------------------------------

def test_mkfs_creates_store(workdir):
    store = os.path.join(workdir, 'st')
    run([RESERVEFS, 'mkfs', store, '-o', 'size=1M,nr_inodes=100,reserve=write'], check=True)
    assert os.path.isfile(os.path.join(store, 'meta.db'))
    assert os.path.isdir(os.path.join(store, 'data'))
    con = sqlite3.connect('file:%s?mode=ro' % os.path.join(store, 'meta.db'), uri=True)
    assert con.execute('pragma journal_mode').fetchone()[0].lower() == 'wal'
    con.close()
    assert rfs.fsck(store).returncode == 0


def test_mkfs_into_empty_existing_dir(workdir):
    store = os.path.join(workdir, 'st')
    os.mkdir(store)
    run([RESERVEFS, 'mkfs', store, '-o', 'size=1M'], check=True)
    assert os.path.isfile(os.path.join(store, 'meta.db'))


def test_mkfs_refuses_nonempty_dir(workdir):
    store = os.path.join(workdir, 'st')
    os.mkdir(store)
    with open(os.path.join(store, 'precious'), 'w') as f:
        f.write('keep me')
    p = run([RESERVEFS, 'mkfs', store, '-o', 'size=1M'])
    one_line_error(p)
    assert sorted(os.listdir(store)) == ['precious']
    assert open(os.path.join(store, 'precious')).read() == 'keep me'


def test_mkfs_and_stat_name_what_is_wrong(workdir):
    # a regular file as STORE: left alone, said so (it said 'afile/lock: Not
    # a directory'); stat of a missing path says it is missing
    f = os.path.join(workdir, 'afile')
    with open(f, 'w') as fh:
        fh.write('keep me')
    line = one_line_error(run([RESERVEFS, 'mkfs', f, '-o', 'size=1M']))
    assert line == 'reservefs mkfs: %s: Not a directory' % f, line
    assert open(f).read() == 'keep me'
    missing = os.path.join(workdir, 'nothing')
    line = one_line_error(run([RESERVEFS, 'stat', missing]))
    assert line == 'reservefs stat: %s: No such file or directory' % missing, line
    line = one_line_error(run([RESERVEFS, 'stat', workdir]))
    assert line.endswith('not a reservefs mount'), line


def test_mkfs_refuses_existing_store_without_force(fsf):
    m = fsf.new(size='1M', do_mount=False)
    m.mount()
    with open(m.path('f'), 'wb') as f:
        f.write(b'x' * 5000)
    m.umount()
    before = store_digest(m.store)
    p = run([RESERVEFS, 'mkfs', m.store, '-o', 'size=2M'])
    one_line_error(p)
    assert store_digest(m.store) == before
    m.mount()
    assert open(m.path('f'), 'rb').read() == b'x' * 5000
    m.umount()
    run([RESERVEFS, 'mkfs', m.store, '-o', 'size=2M', '--force'], check=True)
    m.mount()
    assert os.listdir(m.mnt) == []
    assert m.statvfs().f_blocks == 512


@pytest.mark.parametrize('opts', ['size=12x', 'size=', 'size=-1', 'nr_inodes=abc',
                                  'reserve=sometimes', 'bogus=1', 'size=1M,,frob'])
def test_mkfs_bad_options(workdir, opts):
    store = os.path.join(workdir, 'st')
    p = run([RESERVEFS, 'mkfs', store, '-o', opts])
    one_line_error(p)
    assert not os.path.exists(os.path.join(store, 'meta.db'))


def test_mkfs_size_suffixes(workdir):
    for spec, pages in (('4096', 1), ('64k', 16), ('2m', 512), ('1G', 262144)):
        store = os.path.join(workdir, 'st' + spec)
        run([RESERVEFS, 'mkfs', store, '-o', 'size=' + spec], check=True)
    # mount one to see it took effect
    m = rfs.Mount(workdir, name='chk')
    m.store = os.path.join(workdir, 'st64k')
    try:
        m.mount()
        assert m.statvfs().f_blocks == 16
        m.umount()
    finally:
        m.force_cleanup()


# ---- mount -----------------------------------------------------------------

def test_mount_background_default(fsf):
    m = fsf.new(size='1M', do_mount=False)
    p = run([RESERVEFS, m.store, m.mnt, '-o', 'size=1M'], timeout=30)
    try:
        assert p.returncode == 0, p.stderr
        assert rfs.is_mounted(m.mnt)
        with open(m.path('hello'), 'w') as f:
            f.write('world')
        assert open(m.path('hello')).read() == 'world'
    finally:
        if rfs.is_mounted(m.mnt):
            run(['fusermount3', '-u', m.mnt], timeout=30)
    assert not rfs.is_mounted(m.mnt)
    assert rfs.wait_store_released(m.store), 'background daemon did not exit after unmount'
    m.mount()
    assert open(m.path('hello')).read() == 'world'


def test_stores_named_alike_are_told_apart(workdir):
    """Two stores both called 'st', mounted by relative name from their own
    directories: each mount serves its own store (the second was once
    bind-mounted from the first, because the names matched as typed)."""
    dirs = [os.path.join(workdir, d) for d in ('a', 'b')]
    mnts = [os.path.join(workdir, 'm' + d) for d in ('a', 'b')]
    for d, mnt, size in zip(dirs, mnts, ('8M', '4M')):
        os.mkdir(d)
        os.mkdir(mnt)
        run([RESERVEFS, 'mkfs', 'st', '-o', 'size=' + size], cwd=d, check=True)
    try:
        for d, mnt in zip(dirs, mnts):
            p = run([RESERVEFS, 'st', mnt], cwd=d, timeout=30)
            assert p.returncode == 0, p.stderr
        with open(os.path.join(mnts[0], 'of-a'), 'w') as f:
            f.write('a')
        assert [os.statvfs(m).f_blocks for m in mnts] == [2048, 1024]
        assert os.listdir(mnts[1]) == []
        assert rfs.mountinfo_entry(mnts[0])['dev'] != rfs.mountinfo_entry(mnts[1])['dev']
        # named by its absolute path from elsewhere, a mounted store is known
        p = run([RESERVEFS, 'fsck', os.path.join(dirs[0], 'st')], timeout=30)
        assert p.returncode != 0 and 'mounted on ' + mnts[0] in p.stderr, p.stderr
    finally:
        for mnt in mnts:
            if rfs.is_mounted(mnt):
                run(['fusermount3', '-u', mnt], timeout=30)
    for d in dirs:     # fsck waits for the daemon to let go of the store
        p = run([RESERVEFS, 'fsck', os.path.join(d, 'st')], timeout=150)
        assert p.returncode == 0, p.stdout + p.stderr


def test_mount_refuses_bad_mountpoints(fsf):
    """Not a directory; the store itself or a directory above it (the
    daemon reopens meta.db through its own mount: it hung)."""
    m = fsf.new(size='1M', do_mount=False)
    before = store_digest(m.store)
    f = os.path.join(m.work, 'a-file')
    with open(f, 'w') as fh:
        fh.write('x')
    assert 'Not a directory' in one_line_error(try_mount_expect_failure(m.store, f))
    for mnt in (m.store, os.path.dirname(m.store)):
        assert 'hide the store' in one_line_error(try_mount_expect_failure(m.store, mnt))
    assert store_digest(m.store) == before
    m.mount()


def test_background_mount_failure_reaches_the_caller(workdir):
    """A background mount whose daemon fails after going to the background
    (here: no room on the backing disk to mark the store in use) exits
    non-zero and says why; it once exited 0 with nothing mounted."""
    mnt = os.path.join(workdir, 'mnt')
    os.mkdir(mnt)
    with rfs.tmpfs(os.path.join(workdir, 'small'), '8M') as small:
        store = os.path.join(small, 'st')
        run([RESERVEFS, 'mkfs', store, '-o', 'size=4M'], check=True)
        free = os.statvfs(small).f_bavail * os.statvfs(small).f_frsize
        run(['fallocate', '-l', str(free - 40 * 1024), os.path.join(small, 'filler')],
            check=True)
        p = run([RESERVEFS, store, mnt], timeout=60)
        assert p.returncode != 0, 'mount said success: %r' % p.stderr
        assert 'No space left on device' in p.stderr, p.stderr
        assert not rfs.is_mounted(mnt)
        os.unlink(os.path.join(small, 'filler'))
        p = run([RESERVEFS, store, mnt], timeout=60)
        assert p.returncode == 0, p.stderr
        with open(os.path.join(mnt, 'f'), 'w') as fh:
            fh.write('after')


def test_mount_helper_and_fstab_style(fsf):
    if not os.path.exists('/sbin/mount.fuse3') and not os.path.exists('/usr/sbin/mount.fuse3'):
        pytest.skip('mount.fuse3 not installed')
    m = fsf.new(size='1M', do_mount=False)
    # mount.fuse3 runs the program through /bin/sh with its own PATH, so
    # name the binary with the 'prog#source' form unless reservefs is installed
    import shutil
    if shutil.which('reservefs') and os.path.samefile(shutil.which('reservefs'), RESERVEFS):
        args = ['mount', '-t', 'fuse.reservefs', m.store, m.mnt]
    else:
        args = ['mount', '-t', 'fuse', RESERVEFS + '#' + m.store, m.mnt]
    p = run(args + ['-o', 'size=2M,default_permissions'], timeout=30)
    try:
        assert p.returncode == 0, p.stderr
        assert rfs.wait_mounted(m.mnt, 10)
        e = rfs.mountinfo_entry(m.mnt)
        assert e['fstype'] in ('fuse.reservefs', 'fuse'), e
        assert os.statvfs(m.mnt).f_blocks == 512
    finally:
        if rfs.is_mounted(m.mnt):
            run(['fusermount3', '-u', m.mnt], timeout=30)
    assert rfs.wait_store_released(m.store), 'daemon did not exit after unmount'


def test_mount_readonly_option(fsf):
    m = fsf.new(size='1M')
    with open(m.path('f'), 'w') as f:
        f.write('data')
    m.remount('ro')
    assert open(m.path('f')).read() == 'data'
    with pytest.raises(OSError) as e:
        open(m.path('g'), 'w')
    assert e.value.errno == 30  # EROFS


def test_remount_helper(fsf, workdir):
    """`reservefs STORE MNT -o remount,...` (what mount(8) runs): flags and
    size change on the live mount; unknown options, a mode change, another
    store or a mount that is not ours are refused (a tmpfs was once made
    read-only this way)."""
    m = fsf.new(size='1M')
    remount = lambda opts, store=m.store, mnt=m.mnt: run(
        [RESERVEFS, store, mnt, '-o', 'remount,' + opts], timeout=30)
    with open(m.path('f'), 'w') as f:
        f.write('data')
    pid = m.current_pid()
    p = remount('ro')
    assert p.returncode == 0, p.stderr
    assert rfs.mountinfo_entry(m.mnt)['opts'].split(',')[0] == 'ro'
    assert errno_of_open(m.path('g')) == 30   # EROFS
    p = remount('rw,size=2M')
    assert p.returncode == 0, p.stderr
    assert m.statvfs().f_blocks == 512
    with open(m.path('g'), 'w') as f:
        f.write('more')
    for opts in ('bogus', 'reserve=write', 'size=lots'):
        p = remount(opts)
        assert p.returncode != 0 and p.stderr.strip(), (opts, p.stderr)
    assert remount('ro', store=os.path.join(workdir, 'other')).returncode != 0
    with rfs.tmpfs(os.path.join(workdir, 'tm')) as tm:
        p = remount('ro', mnt=tm)
        assert p.returncode != 0 and 'not a reservefs mount' in p.stderr, p.stderr
        assert rfs.mountinfo_entry(tm)['opts'].split(',')[0] == 'rw'
    # still the same daemon, read-write, everything there
    assert m.current_pid() == pid and rfs.mountinfo_entry(m.mnt)['opts'].startswith('rw')
    assert m.statvfs().f_blocks == 512
    m.remount()
    assert open(m.path('f')).read() == 'data' and open(m.path('g')).read() == 'more'
    assert m.statvfs().f_blocks == 512     # the new size is kept


def errno_of_open(path):
    return rfs.errno_of(lambda: open(path, 'w').close())


def test_store_on_read_only_media(fsf, workdir):
    """A store on a read-only filesystem mounts with -o ro and reads back
    (SQLite could not open meta.db there: no room for its WAL index)."""
    m = fsf.new(size='4M')
    data = os.urandom(300000)
    with open(m.path('f'), 'wb') as f:
        f.write(data)
    os.mkdir(m.path('d'))
    m.umount()
    assert rfs.wait_store_released(m.store)
    before = store_digest(m.store)
    ro = os.path.join(workdir, 'ro-store')
    os.mkdir(ro)
    run(['mount', '--bind', m.store, ro], check=True)
    try:
        run(['mount', '-o', 'remount,bind,ro', ro], check=True)
        p = try_mount_expect_failure(ro, m.mnt)       # read-write: refused, says how
        assert '-o ro' in one_line_error(p)
        p = run([RESERVEFS, ro, m.mnt, '-o', 'ro'], timeout=30)
        assert p.returncode == 0, p.stderr
        try:
            assert open(m.path('f'), 'rb').read() == data
            assert sorted(os.listdir(m.mnt)) == ['d', 'f']
        finally:
            run(['fusermount3', '-u', m.mnt], timeout=30)
        assert rfs.wait_store_released(ro)
        p = run([RESERVEFS, 'fsck', ro], timeout=60)      # checking needs no writes
        assert p.returncode == 0 and p.stdout.rstrip().endswith('clean'), p.stdout + p.stderr
        assert run([RESERVEFS, 'fsck', ro, '--repair'], timeout=60).returncode != 0
    finally:
        if run(['umount', ro], timeout=30).returncode != 0:
            run(['umount', '-l', ro], timeout=30)
    assert store_digest(m.store) == before
    m.mount()
    assert open(m.path('f'), 'rb').read() == data


def test_mount_size_override_at_mount(fsf):
    m = fsf.new(size='1M', mount_opts='size=2M')
    assert m.statvfs().f_blocks == 512


def test_mount_limits_below_usage_refused(fsf):
    """-o size= or nr_inodes= below what the store holds is refused, as the
    control xattrs and a remount refuse it (a mount took it, with a warning,
    and df showed more used than the total), and changes nothing."""
    m = fsf.new(size='4M')
    with open(m.path('f'), 'wb') as f:
        f.write(b'x' * (2 << 20))
    for i in range(5):
        os.mkdir(m.path('d%d' % i))
    m.umount()
    before = store_digest(m.store)
    line = one_line_error(try_mount_expect_failure(m.store, m.mnt, 'size=1M'))
    assert 'size=1M is below the 2097152 bytes in use' in line, line
    line = one_line_error(try_mount_expect_failure(m.store, m.mnt, 'nr_inodes=3'))
    assert 'nr_inodes=3 is below the 7 inodes in use' in line, line
    assert store_digest(m.store) == before
    m.mount('size=3M,nr_inodes=7')              # at or above the usage: taken
    assert (m.statvfs().f_blocks, m.statvfs().f_files) == (768, 7)


@pytest.mark.parametrize('opts', ['max_read=65536', 'fsname=mystore,subtype=rsv',
                                  'noexec,sync'])
def test_mount_fuse_options_pass_through(fsf, opts):
    """FUSE and kernel mount options reach the kernel and the daemon keeps
    serving (max_read once made libfuse end the session right after INIT,
    leaving a background mount that had reported success gone)."""
    m = fsf.new(size='4M', mount_opts=opts)
    data = os.urandom(3 << 20)
    with open(m.path('f'), 'wb') as f:
        f.write(data)
    time.sleep(0.5)
    assert rfs.is_mounted(m.mnt)
    e = rfs.mountinfo_entry(m.mnt)
    for o in opts.split(','):
        k, _, v = o.partition('=')
        if k == 'fsname':
            assert e['source'] == v, e
        elif k == 'subtype':
            assert e['fstype'] == 'fuse.' + v, e
        else:
            assert o in e['opts'] + ',' + e['super_opts'], (o, e)
    m.remount()
    with open(m.path('f'), 'rb') as f:
        assert f.read() == data


@pytest.mark.parametrize('opts', ['bogus', 'size=12x', 'reserve=maybe', 'nr_inodes=-5',
                                  'dirty_limit=lots', 'dirty_expire=soon', 'mmap_dirty_max=1q',
                                  'max_read=x', 'dirty_expire=10000000000000',
                                  'dirty_expire=18446744073709552', 'size=18446744073709551615'])
def test_mount_bad_options(fsf, opts):
    m = fsf.new(size='1M', do_mount=False)
    before = store_digest(m.store)
    p = try_mount_expect_failure(m.store, m.mnt, opts)
    one_line_error(p)
    assert store_digest(m.store) == before
    m.mount()


def test_mount_missing_store(workdir):
    mnt = os.path.join(workdir, 'mnt')
    os.mkdir(mnt)
    p = try_mount_expect_failure(os.path.join(workdir, 'nope'), mnt)
    one_line_error(p)
    assert not os.path.exists(os.path.join(workdir, 'nope'))


def test_mount_not_a_store(workdir):
    mnt = os.path.join(workdir, 'mnt')
    os.mkdir(mnt)
    d = os.path.join(workdir, 'plain')
    os.mkdir(d)
    with open(os.path.join(d, 'x'), 'w') as f:
        f.write('x')
    p = try_mount_expect_failure(d, mnt)
    one_line_error(p)
    assert os.listdir(d) == ['x']


def test_mount_missing_mountpoint(fsf):
    m = fsf.new(size='1M', do_mount=False)
    p = try_mount_expect_failure(m.store, os.path.join(m.work, 'no-such-dir'))
    assert p.returncode != 0


def find_version_cells(con):
    """(table, set-clause, where-clause, params) for the format version,
    whatever the schema calls it."""
    hits = []
    for (t,) in con.execute("select name from sqlite_master where type='table'"):
        cols = [r[1] for r in con.execute('pragma table_info("%s")' % t)]
        for c in cols:
            if 'version' in c.lower():
                hits.append((t, c, None))
        keycols = [c for c in cols if c.lower() in ('key', 'name', 'k')]
        valcols = [c for c in cols if c.lower() in ('value', 'val', 'v')]
        if keycols and valcols:
            for (k,) in con.execute('select "%s" from "%s"' % (keycols[0], t)):
                if isinstance(k, str) and ('version' in k.lower() or k.lower() == 'format'):
                    hits.append((t, valcols[0], (keycols[0], k)))
    return hits


def test_wrong_format_version(fsf):
    m = fsf.new(size='1M', do_mount=False)
    db = os.path.join(m.store, 'meta.db')
    con = sqlite3.connect(db)
    hits = find_version_cells(con)
    uv = con.execute('pragma user_version').fetchone()[0]
    assert hits or uv, 'cannot find the format version in meta.db schema'
    for t, c, key in hits:
        if key:
            con.execute('update "%s" set "%s"=? where "%s"=?' % (t, c, key[0]), (9999, key[1]))
        else:
            con.execute('update "%s" set "%s"=9999' % (t, c))
    if uv and not hits:
        con.execute('pragma user_version=9999')
    con.commit()
    con.execute('pragma wal_checkpoint(TRUNCATE)')
    con.close()
    before = store_digest(m.store)
    p = try_mount_expect_failure(m.store, m.mnt)
    line = one_line_error(p)
    assert 'version' in line.lower() or 'format' in line.lower(), line
    assert store_digest(m.store) == before
    assert rfs.fsck(m.store).returncode != 0
    assert store_digest(m.store) == before


def test_truncated_metadb(fsf):
    m = fsf.new(size='1M')
    with open(m.path('f'), 'w') as f:
        f.write('x')
    m.umount()
    db = os.path.join(m.store, 'meta.db')
    with open(db, 'r+b') as f:
        f.truncate(1000)
    for ext in ('-wal', '-shm'):
        if os.path.exists(db + ext):
            os.unlink(db + ext)
    before = store_digest(m.store)
    p = try_mount_expect_failure(m.store, m.mnt)
    one_line_error(p)
    assert store_digest(m.store) == before
    assert rfs.fsck(m.store).returncode != 0


def test_corrupt_metadb(fsf):
    m = fsf.new(size='1M')
    for i in range(50):
        with open(m.path('f%d' % i), 'w') as f:
            f.write('x' * i)
    m.umount()
    db = os.path.join(m.store, 'meta.db')
    for ext in ('-wal', '-shm'):
        assert not os.path.exists(db + ext) or os.path.getsize(db + ext) == 0 or ext == '-shm'
    size = os.path.getsize(db)
    with open(db, 'r+b') as f:
        f.seek(0)
        f.write(b'This is not an SQLite file at all, sorry!!')
        f.seek(size // 2)
        f.write(os.urandom(min(4096, size // 2)))
    before = store_digest(m.store)
    p = try_mount_expect_failure(m.store, m.mnt)
    one_line_error(p)
    assert store_digest(m.store) == before
    assert rfs.fsck(m.store).returncode != 0


def test_readonly_store_dir(fsf):
    m = fsf.new(size='1M')
    with open(m.path('f'), 'w') as f:
        f.write('keep')
    m.umount()
    ro = os.path.join(m.work, 'ro-store')
    os.mkdir(ro)
    run(['mount', '--bind', m.store, ro], check=True)
    try:
        run(['mount', '-o', 'remount,bind,ro', ro], check=True)
        before = store_digest(ro)
        p = try_mount_expect_failure(ro, m.mnt)
        one_line_error(p)
        assert store_digest(ro) == before
    finally:
        run(['umount', ro])
    m.mount()
    assert open(m.path('f')).read() == 'keep'


def test_unknown_subcommand_and_usage(workdir):
    p = run([RESERVEFS])
    assert p.returncode != 0
    p = run([RESERVEFS, 'frobnicate'])
    assert p.returncode != 0
    p = run([RESERVEFS, '--help'])
    assert p.returncode == 0 and 'size' in (p.stdout + p.stderr)
    # each tool's --help is its usage line, on stdout, and success (it
    # was refused as an unexpected argument, exit 2)
    for tool, words in (('mkfs', '[--force]'), ('fsck', '[--repair]'), ('stat', '[--json]')):
        for h in ('--help', '-h'):
            p = run([RESERVEFS, tool, h])
            assert p.returncode == 0 and p.stdout.startswith('usage: reservefs ' + tool), \
                p.stdout + p.stderr
            assert words in p.stdout and not p.stderr, p.stdout + p.stderr
    # the mount's --help names every suffix the options take
    p = run([RESERVEFS, 'store', 'mnt', '--help'])
    assert p.returncode == 0 and 'k/m/g/t/p/e' in p.stdout, p.stdout + p.stderr
    assert '0 = off' in p.stdout and '0 = leave alone' in p.stdout, p.stdout


# ---- fsck --------------------------------------------------------------------

def backing_files(store):
    out = []
    for dp, dns, fns in os.walk(os.path.join(store, 'data')):
        for n in fns:
            out.append(os.path.join(dp, n))
    return out


def test_fsck_clean_and_detects_problems(fsf):
    m = fsf.new(size='4M')
    for i in range(5):
        with open(m.path('f%d' % i), 'wb') as f:
            f.write(rfs.pattern(i, 0, 10000 + i))
    m.umount()
    p = m.fsck()
    assert p.returncode == 0, p.stdout + p.stderr
    files = backing_files(m.store)
    assert len(files) >= 5, files
    os.unlink(files[0])
    stray = os.path.join(m.store, 'data', 'stray-extra-file')
    with open(stray, 'w') as f:
        f.write('junk')
    p = m.fsck()
    assert p.returncode != 0, 'fsck missed a missing and an extra backing file'
    assert 'data/stray-extra-file is not part of the store' in p.stdout, p.stdout
    p = m.fsck(repair=True)
    assert 'data/stray-extra-file is not part of the store: removed' in p.stdout, p.stdout
    assert not os.path.exists(stray)
    p = m.fsck()
    assert p.returncode == 0, 'fsck --repair did not fix: ' + p.stdout + p.stderr
    m.mount()
    os.listdir(m.mnt)


def test_store_lock_live_mount_fails_fast_other_holder_is_waited_for(fsf):
    """fsck of a mounted store fails at once, naming the mount; a mount that
    finds the store's lock held without a mount (a daemon still finishing
    after its unmount, or fsck) waits for it, quietly when its stderr is not
    a terminal (xfstests compares mount's output), then mounts."""
    m = fsf.new(size='16M')
    with open(m.path('f'), 'wb') as f:
        f.write(b'kept')
    t0 = time.monotonic()
    p = m.fsck()
    assert p.returncode != 0 and 'mounted on' in p.stderr, p.stdout + p.stderr
    assert time.monotonic() - t0 < 5
    m.umount()
    holder = open(os.path.join(m.store, 'lock'))
    fcntl.flock(holder, fcntl.LOCK_EX)
    threading.Timer(3.0, holder.close).start()
    t0 = time.monotonic()
    m.mount(timeout=30)
    assert time.monotonic() - t0 >= 2.5
    with open(m.path('f'), 'rb') as f:
        assert f.read() == b'kept'
    with open(m.log) as f:
        assert 'waiting' not in f.read()


def spares(store):
    """Backing inode number -> name of each spare in data/free."""
    d = os.path.join(store, 'data', 'free')
    out = {}
    for n in (os.listdir(d) if os.path.isdir(d) else []):
        try:
            out[os.stat(os.path.join(d, n)).st_ino] = n
        except FileNotFoundError:
            pass
    return out


def backing_ino(m, name):
    return os.stat(m.backing(name)).st_ino


def test_deleted_backing_files_become_empty_spares(fsf):
    """A deleted file's backing file is kept, emptied, for the next create:
    the spare holds no block (KEEP_SIZE preallocation included), a file
    made from a spare starts empty, and a spare that holds data (put there
    by hand: the daemon empties a file before it becomes a spare) is
    reported by fsck and removed."""
    m = fsf.new(size='16M')
    backing = []
    for i in range(4):
        fd = os.open(m.path('f%d' % i), os.O_RDWR | os.O_CREAT, 0o644)
        os.write(fd, rfs.pattern(i, 0, 100000))
        rfs.fallocate(fd, rfs.FALLOC_FL_KEEP_SIZE, 0, 1 << 20)
        os.close(fd)
        backing.append(backing_ino(m, 'f%d' % i))
    used = m.used_pages()
    assert used >= 4 * 256
    for i in range(4):
        os.unlink(m.path('f%d' % i))
    assert m.used_pages() == used - 4 * 256, 'space not released at once'
    assert rfs.wait_until(lambda: set(backing) <= set(spares(m.store))), \
        'deleted files\' backing files are not spares'
    for ino, n in spares(m.store).items():
        st = os.stat(os.path.join(m.store, 'data', 'free', n))
        assert st.st_size == 0 and st.st_blocks == 0, (n, st)
    before = set(spares(m.store))
    with open(m.path('g'), 'wb') as f:
        assert os.fstat(f.fileno()).st_size == 0
        f.write(b'new')
    assert backing_ino(m, 'g') in before, 'create did not take a spare'
    assert open(m.path('g'), 'rb').read() == b'new'
    m.umount()
    assert m.fsck().returncode == 0
    # spares outlive the mount; one holding data is a problem fsck reports
    # and the next mount removes
    bad = sorted(spares(m.store).values())[0]
    with open(os.path.join(m.store, 'data', 'free', bad), 'wb') as f:
        f.write(b'leftover')
    p = m.fsck()
    assert p.returncode != 0 and 'data/free/' + bad in p.stdout + p.stderr, p.stdout + p.stderr
    m.mount()
    assert bad not in spares(m.store).values(), 'mount kept a spare holding data'
    assert open(m.path('g'), 'rb').read() == b'new'
    m.umount()
    assert m.fsck().returncode == 0


def test_second_mount_takes_its_flags(fsf, workdir):
    """A second mount of a live store is a bind of the first, with its own
    mount flags (ro, noexec; a fresh mount's defaults for the rest, not the
    first one's); what only a new daemon could do is refused."""
    m = fsf.new(size='4M')
    with open(m.path('f'), 'w') as f:
        f.write('data')
    second = os.path.join(workdir, 'second')
    os.mkdir(second)
    p = run([RESERVEFS, m.store, second, '-o', 'ro,noexec'], timeout=30)
    try:
        assert p.returncode == 0, p.stderr
        opts = rfs.mountinfo_entry(second)['opts'].split(',')
        assert 'ro' in opts and 'noexec' in opts, opts
        assert open(os.path.join(second, 'f')).read() == 'data'
        assert errno_of_open(os.path.join(second, 'g')) == 30     # EROFS
        assert rfs.mountinfo_entry(m.mnt)['opts'].split(',')[0] == 'rw'
        with open(m.path('g'), 'w') as f:                          # the first: rw
            f.write('more')
    finally:
        if rfs.is_mounted(second):
            run(['umount', second], timeout=30)
    # flags of its own, not the live mount's (it once came up noexec here)
    assert run([RESERVEFS, m.store, m.mnt, '-o', 'remount,noexec'], timeout=30).returncode == 0
    p = run([RESERVEFS, m.store, second, '-o', 'ro'], timeout=30)
    try:
        assert p.returncode == 0, p.stderr
        opts = rfs.mountinfo_entry(second)['opts'].split(',')
        assert opts == ['ro', 'nosuid', 'nodev', 'relatime'], opts
        assert 'noexec' in rfs.mountinfo_entry(m.mnt)['opts'].split(',')
    finally:
        if rfs.is_mounted(second):
            run(['umount', second], timeout=30)
    for opts in ('size=1M', 'allow_other', 'reserve=write'):
        p = run([RESERVEFS, m.store, second, '-o', opts], timeout=30)
        assert p.returncode != 0 and 'second mount' in p.stderr, (opts, p.stderr)
        assert not rfs.is_mounted(second)
    # the live mount's own settings (fstab's, xfstests' generic/732) are fine
    p = run([RESERVEFS, m.store, second, '-o', 'size=4M,reserve=eof,default_permissions'],
            timeout=30)
    try:
        assert p.returncode == 0 and not p.stderr.strip(), p.stderr
        assert open(os.path.join(second, 'g')).read() == 'more'
    finally:
        if rfs.is_mounted(second):
            run(['umount', second], timeout=30)


def test_remount_flags_and_readonly_daemon(fsf):
    """remount applies each flag it accepts (noexec and back); a daemon
    mounted -o ro cannot be made read-write by remount (its writes would all
    fail): refused; a size it already has is accepted while read-only."""
    m = fsf.new(size='4M')
    remount = lambda opts: run([RESERVEFS, m.store, m.mnt, '-o', 'remount,' + opts],
                               timeout=30)
    assert remount('noexec').returncode == 0
    assert 'noexec' in rfs.mountinfo_entry(m.mnt)['opts'].split(',')
    assert remount('exec').returncode == 0
    assert 'noexec' not in rfs.mountinfo_entry(m.mnt)['opts'].split(',')
    m.remount('ro')
    p = remount('rw')
    assert p.returncode != 0 and '-o ro' in p.stderr, p.stderr
    assert rfs.mountinfo_entry(m.mnt)['opts'].split(',')[0] == 'ro'
    assert remount('ro,size=4M').returncode == 0          # fstab repeats it
    assert remount('ro,size=8M').returncode != 0


def test_refused_remount_changes_nothing(fsf):
    """A remount with a limit the mount refuses (below what is in use)
    changes nothing: the size= given with a refused nr_inodes= once stayed
    in effect and saved for later mounts, and a read-only mount made
    read-write for a size= it then refused stayed read-write."""
    m = fsf.new(size='4M')
    remount = lambda opts: run([RESERVEFS, m.store, m.mnt, '-o', 'remount,' + opts],
                               timeout=30)
    with open(m.path('f'), 'wb') as f:
        f.write(b'f' * (2 << 20))
    for i in range(9):
        open(m.path('e%d' % i), 'w').close()
    files = m.statvfs().f_files
    p = remount('size=8M,nr_inodes=5')
    assert p.returncode != 0 and 'nr_inodes=5' in p.stderr, p.stderr
    assert (m.statvfs().f_blocks, m.statvfs().f_files) == (1024, files)
    p = remount('ro')
    assert p.returncode == 0, p.stderr
    p = remount('rw,size=1M')
    assert p.returncode != 0 and 'size=1M' in p.stderr, p.stderr
    assert rfs.mountinfo_entry(m.mnt)['opts'].split(',')[0] == 'ro'
    assert m.statvfs().f_blocks == 1024
    assert remount('rw').returncode == 0
    m.remount()
    assert (m.statvfs().f_blocks, m.statvfs().f_files) == (1024, files)


def test_remount_without_cap_sys_admin(fsf):
    """A remount that may not change the mount's flags (no CAP_SYS_ADMIN)
    changes nothing, not even the size it was given with them (the limits
    go first when going read-only, and were once left changed); the limits
    alone need no mount(2) and go through."""
    m = fsf.new(size='4M')
    nocap = ['setpriv', '--bounding-set=-sys_admin', '--inh-caps=-sys_admin']
    remount = lambda opts: run(nocap + [RESERVEFS, m.store, m.mnt, '-o', 'remount,' + opts],
                               timeout=30)
    p = remount('ro,size=2M')
    assert p.returncode != 0 and 'CAP_SYS_ADMIN' in p.stderr, p.stderr
    assert rfs.mountinfo_entry(m.mnt)['opts'].split(',')[0] == 'rw'
    assert m.statvfs().f_blocks == 1024
    p = remount('rw,size=2M')
    assert p.returncode == 0, p.stderr
    assert m.statvfs().f_blocks == 512


def test_store_not_writable_by_its_owner(workdir):
    # A store its (unprivileged) owner cannot write: a read-write mount is
    # refused up front, naming the file, and leaves nothing behind (SQLite
    # would open the read-only meta.db read-only without a word and make a
    # meta.db-shm as read-only as it, which then kept every later mount
    # read-only, with meta.db writable again); fsck and -o ro read it.
    store, mnt = os.path.join(workdir, 'store'), os.path.join(workdir, 'mnt')
    os.mkdir(mnt)
    rfs.mkfs(store, 'size=16M')
    for dp, dns, fns in os.walk(store):
        for n in [dp] + [os.path.join(dp, x) for x in dns + fns]:
            os.chown(n, 65534, 65534)
    os.chown(mnt, 65534, 65534)

    def as_nobody():
        os.setgroups([])
        os.setgid(65534)
        os.setuid(65534)

    def nobody(*args):
        return run([RESERVEFS] + list(args), timeout=30, preexec_fn=as_nobody)

    def files():
        return sorted(os.listdir(store))

    before = files()
    os.chmod(os.path.join(store, 'meta.db'), 0o444)
    p = nobody(store, mnt, '-f')
    assert p.returncode != 0
    assert 'not writable' in p.stderr and 'meta.db' in p.stderr, p.stderr
    assert not rfs.is_mounted(mnt)
    assert files() == before, 'a refused mount left files: %r' % files()
    p = nobody('fsck', store)
    assert p.returncode == 0, p.stderr
    assert files() == before
    # a meta.db-shm left read-only (by an older reservefs) is named as well
    with open(os.path.join(store, 'meta.db-shm'), 'wb'):
        pass
    os.chown(os.path.join(store, 'meta.db-shm'), 65534, 65534)
    os.chmod(os.path.join(store, 'meta.db-shm'), 0o444)
    os.chmod(os.path.join(store, 'meta.db'), 0o644)
    p = nobody(store, mnt, '-f')
    assert p.returncode != 0 and 'meta.db-shm' in p.stderr, p.stderr
    os.unlink(os.path.join(store, 'meta.db-shm'))
    # the store directory itself read-only for its owner: fsck checks it
    os.chmod(store, 0o555)
    try:
        p = nobody(store, mnt, '-f')
        assert p.returncode != 0 and 'not writable' in p.stderr, p.stderr
        p = nobody('fsck', store)
        assert p.returncode == 0 and 'clean' in p.stdout, p.stdout + p.stderr
        # fsck --repair cannot write it either, and says what still works
        p = nobody('fsck', store, '--repair')
        assert p.returncode != 0 and 'without --repair' in p.stderr, p.stderr
        assert '-o ro' not in p.stderr, p.stderr
    finally:
        os.chmod(store, 0o755)
    assert files() == before
    assert rfs.fsck(store).returncode == 0
