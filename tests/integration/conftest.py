"""Fixtures for the mounted reservefs integration tests.

Every test gets its own temp dir under /tmp holding the store, the mountpoint
and the daemon log.  Cleanup is registered before we wait for a mount and
always runs: fusermount3 -u, then -uz, then SIGTERM/SIGKILL of the daemon PID
we started (never anything found by name).  A test fails when its daemon's
log shows errors, assertion failures or sanitizer reports.

A watchdog thread bounds every test: on expiry it aborts the test's FUSE
connections (blocked syscalls then return ENOTCONN) and interrupts the main
thread, so no test can hang the suite.
"""

import os
import shutil
import signal
import tempfile
import threading

import pytest

import rfs

DEFAULT_TIMEOUT = 180


def pytest_addoption(parser):
    parser.addoption('--long', action='store_true', default=False,
                     help='long runs (rfsx with millions of ops, more crash seeds)')


def pytest_configure(config):
    config.addinivalue_line('markers', 'timeout(seconds): per-test watchdog')
    if config.getoption('--long'):
        os.environ['RESERVEFS_LONG'] = '1'


@pytest.fixture(scope='session')
def long_run(request):
    return request.config.getoption('--long') or os.environ.get('RESERVEFS_LONG') == '1'


_active_mounts = []


class TestTimeout(Exception):
    pass


@pytest.fixture(autouse=True)
def _watchdog(request):
    """SIGALRM after the test's limit raises TestTimeout; if the main thread
    is stuck in a FUSE request, a timer aborts the connection 3s later so
    the syscall returns and the exception can be raised."""
    m = request.node.get_closest_marker('timeout')
    limit = m.args[0] if m else DEFAULT_TIMEOUT
    if os.environ.get('RESERVEFS_LONG') == '1' and m and len(m.args) > 1:
        limit = m.args[1]

    def on_alarm(signum, frame):
        raise TestTimeout('test exceeded its %ss watchdog' % limit)

    def abort_all():
        for mnt in list(_active_mounts):
            mnt.abort_connection()

    old = signal.signal(signal.SIGALRM, on_alarm)
    t = threading.Timer(limit + 3, abort_all)
    t.daemon = True
    t.start()
    signal.alarm(int(limit))
    try:
        yield
    finally:
        signal.alarm(0)
        t.cancel()
        signal.signal(signal.SIGALRM, old)


@pytest.fixture(scope='session', autouse=True)
def _binary():
    if not os.access(rfs.RESERVEFS, os.X_OK):
        pytest.fail('reservefs binary not built: %s (run tests/run or ninja -C build)' %
                    rfs.RESERVEFS, pytrace=False)
    rfs.ensure_fusectl()


@pytest.fixture
def workdir(request):
    d = tempfile.mkdtemp(prefix='rfs-%s-' % request.node.name[:40].replace('/', '_')
                         .replace('[', '_').replace(']', ''), dir='/tmp')
    os.chmod(d, 0o755)
    yield d
    # Remove only when nothing is mounted below it anymore.
    with open('/proc/self/mountinfo') as f:
        busy = any((' ' + d + '/') in l for l in f)
    if not busy:
        shutil.rmtree(d, ignore_errors=True)


class Factory:
    """Makes stores and mounts for one test and tears all of them down."""

    def __init__(self, workdir):
        self.workdir = workdir
        self.mounts = []
        self.n = 0

    def new(self, size='1M', reserve=None, nr_inodes=None, mkfs_extra=None,
            mount_opts='', do_mkfs=True, do_mount=True, name=None):
        opts = ['size=%s' % size] if size else []
        if nr_inodes is not None:
            opts.append('nr_inodes=%s' % nr_inodes)
        if reserve:
            opts.append('reserve=%s' % reserve)
        if mkfs_extra:
            opts.append(mkfs_extra)
        self.n += 1
        m = rfs.Mount(self.workdir, opts=mount_opts, mkfs_opts=','.join(opts),
                      name=name or 'm%d' % self.n)
        # Registered before anything can fail or hang.
        self.mounts.append(m)
        _active_mounts.append(m)
        if do_mkfs:
            m.mkfs()
        if do_mount:
            m.mount()
        return m

    def teardown(self):
        problems = []
        for m in self.mounts:
            try:
                if rfs.is_mounted(m.mnt) or (m.current_pid() and rfs.pid_alive(m.current_pid())):
                    m.umount()
            except rfs.MountError as e:
                problems.append('%s: %s' % (m.mnt, e))
            finally:
                m.force_cleanup()
                if m in _active_mounts:
                    _active_mounts.remove(m)
            bad = m.log_problems()
            if bad:
                problems.append('daemon log %s shows:\n  %s' % (m.log, '\n  '.join(bad[:20])))
        return problems


@pytest.fixture
def fsf(workdir, request):
    """Factory fixture: fsf.new(size=..., reserve=..., mount_opts=...) -> Mount."""
    f = Factory(workdir)
    yield f
    problems = f.teardown()
    if problems:
        pytest.fail('cleanup: ' + '\n'.join(problems), pytrace=False)


@pytest.fixture(params=['eof', 'write'])
def mode(request):
    return request.param


@pytest.fixture
def mnt(fsf):
    """A default 64 MiB eof-mode store, mounted."""
    return fsf.new(size='64M')


@pytest.fixture
def mnt_user(fsf):
    """Mounted with allow_other,default_permissions for tests run as nobody."""
    return fsf.new(size='64M', mount_opts='allow_other,default_permissions')

