"""A damaged store, or a command given a bad option, must never cost data:
mkfs --force checks its options before erasing anything, fsck and mount
refuse a meta.db whose schema or superblock is damaged and change nothing,
fsck --repair says (exit 1) when a problem remains, and a store that only
lost its lock file is usable again."""

import os
import sqlite3

import pytest

import rfs
from rfs import RESERVEFS, run
from test_cli import one_line_error, store_digest, try_mount_expect_failure


def make_store_with_file(fsf, data=b'precious\n', name='f', size='64M'):
    """A store holding one file with @data, cleanly unmounted."""
    m = fsf.new(size=size)
    with open(m.path(name), 'wb') as f:
        f.write(data)
    backing = m.backing(name)
    m.umount()
    return m, backing


def sql(store, *stmts):
    con = sqlite3.connect(os.path.join(store, 'meta.db'), isolation_level=None)
    try:
        for s in stmts:
            con.execute(s)
        con.execute('PRAGMA wal_checkpoint(TRUNCATE)')
    finally:
        con.close()


def super_value(store, key):
    con = sqlite3.connect('file:%s?mode=ro' % os.path.join(store, 'meta.db'), uri=True)
    try:
        row = con.execute('SELECT value FROM super WHERE key = ?', (key,)).fetchone()
        return row[0] if row else None
    finally:
        con.close()


def read(m, name):
    with open(m.path(name), 'rb') as f:
        return f.read()


# ---- mkfs ------------------------------------------------------------------

@pytest.mark.parametrize('opts', ['size=garbage', 'nr_inodes=abc', 'reserve=sometimes',
                                  'size=1M,nr_inodes=x'])
def test_mkfs_force_bad_option_keeps_the_store(fsf, opts):
    """mkfs --force with a malformed value refuses it before erasing the
    old store: meta.db and data/ are as they were and the file reads back."""
    m, _ = make_store_with_file(fsf)
    before = store_digest(m.store)
    p = run([RESERVEFS, 'mkfs', m.store, '--force', '-o', opts])
    assert p.returncode == 2, p.stdout + p.stderr
    assert opts.split('=')[-2].split(',')[-1] in one_line_error(p)
    assert store_digest(m.store) == before
    assert os.path.exists(os.path.join(m.store, 'lock'))
    assert rfs.fsck(m.store).returncode == 0
    m.mount()
    assert read(m, 'f') == b'precious\n'


@pytest.mark.parametrize('opts', ['size=garbage', 'nr_inodes=abc', 'reserve=sometimes'])
def test_mkfs_bad_option_leaves_no_directory_behind(workdir, opts):
    """A failed mkfs removes the directory it made itself, but never one
    that was there before."""
    store = os.path.join(workdir, 'new-store')
    p = run([RESERVEFS, 'mkfs', store, '-o', opts])
    one_line_error(p)
    assert not os.path.exists(store)
    os.mkdir(store)
    p = run([RESERVEFS, 'mkfs', store, '-o', opts])
    one_line_error(p)
    assert os.path.isdir(store) and os.listdir(store) == []


# ---- a damaged schema --------------------------------------------------------

@pytest.mark.parametrize('damage', [
    'DROP TABLE dentries',
    'DROP TABLE xattrs',
    'ALTER TABLE inodes DROP COLUMN rsv_pages',
    'ALTER TABLE inodes RENAME TO inodes_gone',
])
def test_damaged_schema_is_refused_and_nothing_changes(fsf, damage):
    """A meta.db missing a table or column is corrupt: fsck, fsck --repair
    and mount each refuse it in one line and leave meta.db and every backing
    file as they were (fsck --repair used to free every inode as an orphan
    and delete its data)."""
    m, backing = make_store_with_file(fsf)
    sql(m.store, damage)
    before = store_digest(m.store)
    for repair in (False, True):
        p = rfs.fsck(m.store, repair=repair)
        assert p.returncode == 1, p.stdout + p.stderr
        assert 'corrupt' in one_line_error(p)
        assert store_digest(m.store) == before
    p = try_mount_expect_failure(m.store, m.mnt)
    assert 'corrupt' in one_line_error(p)
    assert store_digest(m.store) == before
    with open(backing, 'rb') as f:
        assert f.read() == b'precious\n'


def test_failing_query_in_recovery_changes_nothing(fsf):
    """A table that reads but fails part way (here a view whose rows raise
    an SQL error) must end recovery with nothing changed: fsck --repair
    fails, and so does a mount that has to recover, with every backing
    file still there."""
    m, backing = make_store_with_file(fsf)
    sql(m.store, 'DROP TABLE dentries',
        "CREATE VIEW dentries AS SELECT 1 AS parent, x'66' AS name, 2 AS id,"
        " abs(-9223372036854775807 - 1) AS ino",
        "UPDATE super SET value = '0' WHERE key = 'clean'")
    before = store_digest(m.store)
    p = rfs.fsck(m.store, repair=True)
    assert p.returncode == 1, p.stdout + p.stderr
    assert 'cannot read the store' in one_line_error(p)
    assert store_digest(m.store) == before
    p = try_mount_expect_failure(m.store, m.mnt)
    assert p.returncode != 0
    assert store_digest(m.store) == before
    with open(backing, 'rb') as f:
        assert f.read() == b'precious\n'


# ---- fsck --repair's exit status ---------------------------------------------

def test_fsck_repair_fails_while_a_problem_remains(fsf):
    """A backing file replaced by a directory is not ours to remove: fsck
    --repair repairs what it can (a stray file), lists what it could not,
    and exits 1 (it used to say 'repaired' and exit 0); once the directory
    is gone a repair succeeds and the other file is intact."""
    m = fsf.new(size='64M')
    for name, data in (('f', b'data\n'), ('g', b'more\n')):
        with open(m.path(name), 'wb') as f:
            f.write(data)
    backing = m.backing('f')
    m.umount()
    os.unlink(backing)
    os.mkdir(backing)
    stray = os.path.join(m.store, 'data', '05', 'stray')
    open(stray, 'w').close()

    p = rfs.fsck(m.store, repair=True)
    assert p.returncode == 1, p.stdout + p.stderr
    assert 'could not be repaired' in one_line_error(p)
    assert 'not repaired: ' in p.stdout and 'not a regular file' in p.stdout, p.stdout
    assert 'repaired\n' not in p.stdout.splitlines()[-1] + '\n', p.stdout
    assert not os.path.exists(stray), 'the repairable problem was not repaired'
    assert os.path.isdir(backing)
    p = rfs.fsck(m.store)
    assert p.returncode == 1, p.stdout + p.stderr

    os.rmdir(backing)
    p = rfs.fsck(m.store, repair=True)
    assert p.returncode == 0, p.stdout + p.stderr
    p = rfs.fsck(m.store)
    assert p.returncode == 0, p.stdout + p.stderr
    m.mount()
    assert read(m, 'g') == b'more\n'
    assert read(m, 'f') == b''


def test_fifo_backing_file_hangs_nothing(fsf):
    """A FIFO where a backing file should be: fsck --repair and an unclean
    mount report it and go on (opening it for reading blocked for ever)."""
    m = fsf.new(size='64M')
    with open(m.path('f'), 'wb') as f:
        f.write(b'data')
    with open(m.path('g'), 'wb') as f:
        f.write(b'more')
    backing = m.backing('f')
    m.umount()
    os.unlink(backing)
    os.mkfifo(backing)
    p = rfs.fsck(m.store, repair=True, timeout=60)
    assert p.returncode == 1 and 'not a regular file' in p.stdout, p.stdout + p.stderr
    os.unlink(backing)
    p = rfs.fsck(m.store, repair=True, timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr
    m.mount()
    assert read(m, 'g') == b'more'


def test_stray_directories_in_data_are_reported_not_removed(fsf):
    """A directory among the backing files (data/XX/), the spares
    (data/free/) or at the top of data/ (beside 00..ff) is nobody's and
    unlinkat cannot remove it: fsck --repair says so and leaves it, instead
    of reporting it removed and then not repaired; removed by hand, the
    store is clean again."""
    m, _ = make_store_with_file(fsf)
    stray = [os.path.join(m.store, 'data', '07', 'sub'), os.path.join(m.store, 'data', 'free', 'd'),
             os.path.join(m.store, 'data', 'notes')]
    for d in stray:
        os.mkdir(d)
    p = rfs.fsck(m.store, repair=True, timeout=60)
    assert p.returncode == 1, p.stdout + p.stderr
    assert 'data/07/sub belongs to no file (a directory: remove it by hand)' in p.stdout, p.stdout
    assert 'data/free/d is not an empty spare (a directory: remove it by hand)' in p.stdout, p.stdout
    assert 'data/notes is not part of the store (a directory: remove it by hand)' in p.stdout, \
        p.stdout
    assert ': removed' not in p.stdout, p.stdout
    for d in stray:
        assert os.path.isdir(d)
        os.rmdir(d)
    p = rfs.fsck(m.store, repair=True, timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr
    m.mount()
    assert read(m, 'f') == b'precious\n'


# ---- the lock file -------------------------------------------------------------

def test_missing_lock_file_is_recreated(fsf):
    """The lock file carries no data: a store without it (copied without
    it, say) is checked, repaired and mounted as it is, with a new lock file
    that keeps a second user out as the old one did."""
    m, _ = make_store_with_file(fsf)
    lock = os.path.join(m.store, 'lock')
    os.unlink(lock)
    before = store_digest(m.store)
    p = rfs.fsck(m.store)
    assert p.returncode == 0, p.stdout + p.stderr
    assert os.path.isfile(lock)
    os.unlink(lock)
    p = rfs.fsck(m.store, repair=True)
    assert p.returncode == 0, p.stdout + p.stderr
    assert store_digest(m.store) == before
    os.unlink(lock)
    m.mount()
    assert os.path.isfile(lock)
    assert read(m, 'f') == b'precious\n'
    p = rfs.fsck(m.store)
    assert p.returncode != 0 and 'mounted on' in p.stderr, p.stdout + p.stderr


# ---- the superblock --------------------------------------------------------------

@pytest.mark.parametrize('key,value', [
    ('size_pages', 'abc'), ('size_pages', '0'), ('size_pages', '-5'),
    ('size_pages', '16384x'), ('size_pages', '99999999999999999999'),
    ('nr_inodes', '0'), ('nr_inodes', ' 12'), ('reserve', 'sometimes'), ('nr_inodes', None),
])
def test_corrupt_superblock_is_refused(fsf, key, value):
    """A capacity or inode limit that is not a whole positive number (it
    used to give a capacity of 0 or of 2^64 bytes) is damage: mount and
    fsck (--repair too: a capacity cannot be guessed) refuse it with one
    line naming the record, and nothing changes."""
    m, backing = make_store_with_file(fsf)
    if value is None:
        sql(m.store, "DELETE FROM super WHERE key = '%s'" % key)
    else:
        sql(m.store, "UPDATE super SET value = '%s' WHERE key = '%s'" % (value, key))
    before = store_digest(m.store)
    want = 'corrupt superblock (%s%s)' % (key, ' missing' if value is None else '=' + value)
    p = try_mount_expect_failure(m.store, m.mnt)
    assert want in one_line_error(p)
    for repair in (False, True):
        p = rfs.fsck(m.store, repair=repair)
        assert p.returncode == 1, p.stdout + p.stderr
        assert want in one_line_error(p)
    assert store_digest(m.store) == before
    with open(backing, 'rb') as f:
        assert f.read() == b'precious\n'


@pytest.mark.parametrize('value', ['0', 'abc', '2', '-1', None])
def test_bad_inode_counter_refused_and_repaired(fsf, value):
    """next_ino must lie above every inode number and dentry id (a bad one
    made every create fail with EIO while mount and fsck said nothing):
    mount refuses it, fsck reports it and exits 1, fsck --repair sets it
    above everything in use, and then creates work and get new numbers."""
    m, _ = make_store_with_file(fsf)
    m.mount()
    os.mkdir(m.path('d'))
    with open(m.path('d', 'g'), 'wb') as f:
        f.write(b'g')
    inos = {os.stat(m.path(n)).st_ino for n in ('f', 'd', 'd/g')}
    m.umount()
    if value is None:
        sql(m.store, "DELETE FROM super WHERE key = 'next_ino'")
    else:
        sql(m.store, "UPDATE super SET value = '%s' WHERE key = 'next_ino'" % value)
    before = store_digest(m.store)
    p = try_mount_expect_failure(m.store, m.mnt)
    assert 'corrupt superblock (next_ino' in one_line_error(p)
    p = rfs.fsck(m.store)
    assert p.returncode == 1 and 'next_ino' in p.stdout, p.stdout + p.stderr
    assert store_digest(m.store) == before
    p = rfs.fsck(m.store, repair=True)
    assert p.returncode == 0, p.stdout + p.stderr
    assert int(super_value(m.store, 'next_ino')) > max(inos)
    p = rfs.fsck(m.store)
    assert p.returncode == 0, p.stdout + p.stderr
    m.mount()
    with open(m.path('new'), 'wb') as f:
        f.write(b'new')
    os.mkdir(m.path('d', 'e'))
    assert os.stat(m.path('new')).st_ino not in inos
    assert read(m, 'f') == b'precious\n' and read(m, 'd/g') == b'g'


# ---- a read-only mount after a crash ------------------------------------------

def test_readonly_mount_after_crash_shows_backing_sizes(fsf):
    """After SIGKILL of the daemon, files written since the last clean
    unmount have stale rows (size 0).  A read-only mount cannot store what
    its recovery finds, but must still show each file's real size, blocks
    and data (it showed them empty), and leave the store unchanged; a
    read-write mount then sees the same."""
    m = fsf.new(size='64M')
    data = {'f': rfs.pattern(1, 0, 300000), 'g': b'hi\n', 'h': rfs.pattern(2, 0, 8192)}
    for name, d in data.items():
        with open(m.path(name), 'wb') as f:
            f.write(d)
    m.kill()
    m.umount_dead()
    before = store_digest(m.store)
    m.mount(opts='ro')
    for name, d in data.items():
        st = os.stat(m.path(name))
        assert st.st_size == len(d), (name, st.st_size)
        assert st.st_blocks * 512 >= len(d), (name, st.st_blocks)
        assert read(m, name) == d, name
    ro_used = m.used_pages()
    m.umount()
    assert store_digest(m.store) == before
    m.mount(opts='')
    for name, d in data.items():
        assert os.stat(m.path(name)).st_size == len(d)
        assert read(m, name) == d, name
    assert m.used_pages() == ro_used
