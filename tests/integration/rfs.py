"""Driving a real reservefs mount from tests: mkfs, mount, unmount, kill, stat.

No pytest in here, so the same code also serves as the remount helper that
rfsx calls through --remount-cmd (see main() at the bottom).

Every daemon is started by us with -f, so we own its PID; the PID is also
written to <work>/daemon.pid so a helper process that remounts (a child of
rfsx) can hand the new daemon back to the fixture that cleans up.
"""

import contextlib
import ctypes
import json
import os
import re
import signal
import subprocess
import sys
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))
BUILD = os.environ.get('RESERVEFS_BUILD', os.path.join(ROOT, 'build'))
RESERVEFS = os.environ.get('RESERVEFS_BIN', os.path.join(BUILD, 'fs', 'reservefs'))
RFSX = os.path.join(BUILD, 'tests', 'rfsx', 'rfsx')
PAGE = 4096

# Lines in the daemon log that fail a test.
LOG_BAD = re.compile(r'ERROR|[Aa]ssert|AddressSanitizer|LeakSanitizer|'
                     r'UndefinedBehaviorSanitizer|runtime error:|'
                     r'GLib-CRITICAL|GLib-WARNING|CRITICAL \*\*|double free|'
                     r'Segmentation fault|stack smashing')


class MountError(Exception):
    pass


def parse_size(s):
    """tmpfs-style size: 4096, 64k, 1M, 2G, 1T -> bytes."""
    s = str(s).strip()
    m = re.fullmatch(r'(\d+)\s*([kKmMgGtT]?)[iI]?[bB]?', s)
    if not m:
        raise ValueError('bad size %r' % s)
    mult = {'': 1, 'k': 1 << 10, 'm': 1 << 20, 'g': 1 << 30, 't': 1 << 40}
    return int(m.group(1)) * mult[m.group(2).lower()]


def run(args, timeout=60, check=False, input=None, **kw):
    """subprocess.run with text output and a timeout, never hangs."""
    try:
        p = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True, timeout=timeout, input=input,
                           stdin=None if input is not None else subprocess.DEVNULL,
                           **kw)
    except subprocess.TimeoutExpired as e:
        raise MountError('command timed out after %ss: %s' % (timeout, ' '.join(map(str, args)))) from e
    if check and p.returncode != 0:
        raise MountError('command failed (%d): %s\nstdout: %s\nstderr: %s' %
                         (p.returncode, ' '.join(map(str, args)), p.stdout, p.stderr))
    return p


def mkfs(store, opts=None, force=False, timeout=60):
    args = [RESERVEFS, 'mkfs', store]
    if opts:
        args += ['-o', opts]
    if force:
        args.append('--force')
    return run(args, timeout=timeout, check=True)


def fsck(store, repair=False, timeout=120):
    args = [RESERVEFS, 'fsck', store]
    if repair:
        args.append('--repair')
    return run(args, timeout=timeout)


def fsck_reserved(store):
    """fsck of an unmounted store: it must be clean; the pages its ledger
    holds."""
    r = fsck(store)
    assert r.returncode == 0, r.stdout + r.stderr
    got = re.search(r'(\d+) of \d+ pages reserved', r.stdout)
    assert got, r.stdout
    return int(got.group(1))


def mounts():
    """Every line of /proc/self/mountinfo, oldest first, as a dict."""
    with open('/proc/self/mountinfo') as f:
        for line in f:
            pre, _, post = line.partition(' - ')
            fields, post = pre.split(), post.split()
            yield {'mnt': fields[4].encode().decode('unicode_escape'), 'dev': fields[2],
                   'fstype': post[0], 'source': post[1] if len(post) > 1 else '',
                   'opts': fields[5], 'super_opts': post[2] if len(post) > 2 else ''}


def mountinfo_entry(mnt):
    """The /proc/self/mountinfo line for mountpoint mnt (last one wins), or None."""
    mnt = os.path.realpath(mnt)
    found = None
    for e in mounts():
        if e['mnt'] == mnt:
            found = e
    return found


def errno_of(fn, *a, **kw):
    """The errno fn(*a, **kw) fails with, 0 if it does not."""
    try:
        fn(*a, **kw)
    except OSError as e:
        return e.errno
    return 0


@contextlib.contextmanager
def tmpfs(path, size=None):
    """A tmpfs mounted at @path (created) for a small backing disk.  On the
    way out, whatever reservefs mounts a store in it is unmounted, its daemon
    waited for, and the tmpfs unmounted (lazily when still busy)."""
    os.makedirs(path, exist_ok=True)
    run(['mount', '-t', 'tmpfs'] + (['-o', 'size=' + size] if size else []) +
        ['tmpfs', path], check=True)
    try:
        yield path
    finally:
        stores = set()
        for e in list(mounts()):
            if e['fstype'].startswith('fuse') and e['source'].startswith(path + '/'):
                if run(['fusermount3', '-u', e['mnt']], timeout=30).returncode != 0:
                    run(['fusermount3', '-uz', e['mnt']], timeout=30)
                stores.add(e['source'])
        for st in stores:
            wait_store_released(st)
        if run(['umount', path], timeout=30).returncode != 0:
            run(['umount', '-l', path], timeout=30)


@contextlib.contextmanager
def small_store(workdir, disk, mkfs_opts):
    """A store made with `mkfs -o MKFS_OPTS` on a tmpfs of DISK bytes (a
    small backing disk, WORKDIR/small) and mounted at WORKDIR/mnt: yields
    (store, mnt, small).  On the way out tmpfs() unmounts it."""
    mnt = os.path.join(workdir, 'mnt')
    os.makedirs(mnt, exist_ok=True)
    with tmpfs(os.path.join(workdir, 'small'), disk) as small:
        store = os.path.join(small, 'st')
        run([RESERVEFS, 'mkfs', store, '-o', mkfs_opts], check=True)
        run([RESERVEFS, store, mnt], check=True, timeout=30)
        yield store, mnt, small


def small_umount(store, mnt):
    """Unmounts a small_store() mount and waits for its daemon to end."""
    run(['fusermount3', '-u', mnt], timeout=30)
    assert wait_store_released(store)


@contextlib.contextmanager
def small_remount(store, mnt):
    """Mounts a small_store() store again (after small_umount) for the body,
    then unmounts it and asserts that fsck finds it clean."""
    run([RESERVEFS, store, mnt], check=True, timeout=30)
    try:
        yield
    finally:
        small_umount(store, mnt)
    p = fsck(store)
    assert p.returncode == 0, p.stdout + p.stderr


def is_mounted(mnt):
    e = mountinfo_entry(mnt)
    return e is not None and e['fstype'].startswith('fuse')


def wait_mounted(mnt, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if is_mounted(mnt):
            return True
        time.sleep(0.02)
    return is_mounted(mnt)


def pid_alive(pid):
    """True when pid exists and is a reservefs process (not a reused PID)."""
    try:
        with open('/proc/%d/stat' % pid) as f:
            st = f.read()
        if st.rsplit(')', 1)[1].split()[0] == 'Z':
            return False
        with open('/proc/%d/cmdline' % pid, 'rb') as f:
            return b'reservefs' in f.read()
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False


def wait_store_released(store, timeout=15):
    """Wait until no reservefs process started elsewhere (background mode,
    mount(8)) still runs on store.  Only looks; never signals anything."""
    key = os.fsencode(os.path.abspath(store))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        busy = False
        for d in os.listdir('/proc'):
            if not d.isdigit():
                continue
            try:
                with open('/proc/%s/cmdline' % d, 'rb') as f:
                    args = f.read().split(b'\0')
            except OSError:
                continue
            if any(b'reservefs' in a for a in args[:1]) and key in args and pid_alive(int(d)):
                busy = True
                break
        if not busy:
            return True
        time.sleep(0.05)
    return False


def reap(pid):
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def ensure_fusectl():
    d = '/sys/fs/fuse/connections'
    if os.path.isdir(d) and not os.listdir(d) and os.geteuid() == 0:
        subprocess.run(['mount', '-t', 'fusectl', 'none', d],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=10)


class Mount:
    """One store + mountpoint + daemon.  Paths live under work (a temp dir)."""

    def __init__(self, work, opts='', mkfs_opts=None, name='m'):
        self.work = work
        self.store = os.path.join(work, name + '-store')
        self.mnt = os.path.join(work, name + '-mnt')
        self.log = os.path.join(work, name + '-daemon.log')
        self.pidfile = os.path.join(work, name + '-daemon.pid')
        self.opts = opts
        self.mkfs_opts = mkfs_opts
        self.proc = None
        self.pid = None
        self.dev = None
        self.allow_log_errors = False
        self.log_offsets_checked = 0
        self.extra_args = []
        os.makedirs(self.mnt, exist_ok=True)

    # ---- lifecycle -----------------------------------------------------
    def mkfs(self, opts=None, force=False):
        return mkfs(self.store, opts if opts is not None else self.mkfs_opts, force=force)

    def _read_pidfile(self):
        try:
            with open(self.pidfile) as f:
                return int(f.read().strip())
        except (FileNotFoundError, ValueError):
            return None

    def mount(self, opts=None, timeout=20, extra_args=None):
        """Start the daemon in the foreground (-f) as our child and wait
        for the mount to appear; raise MountError if it does not."""
        if opts is not None:
            self.opts = opts
        if extra_args is not None:
            self.extra_args = extra_args
        if is_mounted(self.mnt):
            raise MountError('%s is already mounted' % self.mnt)
        args = [RESERVEFS, self.store, self.mnt, '-f'] + list(self.extra_args)
        if self.opts:
            args += ['-o', self.opts]
        logf = open(self.log, 'a')
        logf.write('==== %s: %s\n' % (time.strftime('%T'), ' '.join(args)))
        logf.flush()
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=logf,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        logf.close()
        self.pid = self.proc.pid
        with open(self.pidfile, 'w') as f:
            f.write('%d\n' % self.pid)
        deadline = time.monotonic() + timeout
        while True:
            e = mountinfo_entry(self.mnt)
            if e is not None and e['fstype'].startswith('fuse'):
                self.dev = e['dev']
                # In the foreground the mount shows before the daemon has
                # finished starting (loading data/free/, say): a stat is
                # answered only once its session loop runs.
                try:
                    os.stat(self.mnt)
                except OSError as err:
                    raise MountError('%s mounted but does not answer: %s\n%s' %
                                     (self.mnt, err, self.log_text()[-4000:]))
                return self
            rc = self.proc.poll()
            if rc is not None:
                raise MountError('reservefs exited with %d before mounting %s:\n%s' %
                                 (rc, self.mnt, self.log_text()[-4000:]))
            if time.monotonic() > deadline:
                raise MountError('%s not mounted after %ss:\n%s' %
                                 (self.mnt, timeout, self.log_text()[-4000:]))
            time.sleep(0.02)

    def _forget_daemon(self):
        """The daemon is gone (unmounted or cleaned up): no PID of ours any more."""
        self.proc = None
        self.pid = None
        try:
            os.unlink(self.pidfile)
        except FileNotFoundError:
            pass

    def current_pid(self):
        pid = self._read_pidfile()
        return pid if pid is not None else self.pid

    def _wait_pid_exit(self, pid, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.pid == pid:
                if self.proc.poll() is not None:
                    return True
            else:
                reap(pid)
                if not pid_alive(pid):
                    return True
            time.sleep(0.02)
        return False

    def umount(self, timeout=30):
        """Clean unmount: fusermount3 -u, then the daemon must exit by itself
        with status 0.  Raises MountError otherwise (after forcing cleanup)."""
        pid = self.current_pid()
        errors = []
        if is_mounted(self.mnt):
            p = None
            for _ in range(50):
                p = run(['fusermount3', '-u', self.mnt], timeout=timeout)
                if p.returncode == 0 or not is_mounted(self.mnt):
                    break
                if 'busy' not in (p.stderr or '').lower():
                    break
                time.sleep(0.1)     # something still has a file open: retry
            if is_mounted(self.mnt):
                errors.append('fusermount3 -u failed: %s' % (p.stderr.strip() if p else ''))
        if pid is not None:
            if not self._wait_pid_exit(pid, timeout):
                errors.append('daemon %d did not exit within %ss after unmount' % (pid, timeout))
            elif self.proc is not None and self.proc.pid == pid and self.proc.returncode not in (0, None):
                errors.append('daemon exited with status %d' % self.proc.returncode)
        if errors:
            self.force_cleanup()
            raise MountError('; '.join(errors) + '\n' + self.log_text()[-4000:])
        self._forget_daemon()

    def remount(self, opts=None):
        self.umount()
        return self.mount(opts)

    def kill(self, sig=signal.SIGKILL):
        """Kill our daemon (crash tests); the dead mount stays until umount_dead()."""
        pid = self.current_pid()
        if pid is not None and pid_alive(pid):
            os.kill(pid, sig)
        if self.proc is not None:
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        elif pid is not None:
            self._wait_pid_exit(pid, 10)

    def kill_remount(self, between=None):
        """SIGKILL the daemon, detach the dead mount, call @between (if
        any) while no daemon runs, mount again: the next mount's recovery."""
        self.allow_log_errors = True
        self.kill(signal.SIGKILL)
        self.umount_dead()
        if between:
            between()
        self.mount()

    def umount_dead(self):
        """After the daemon was killed: detach the dead mount."""
        for flags in (['-u'], ['-uz']):
            if not is_mounted(self.mnt):
                break
            run(['fusermount3'] + flags + [self.mnt], timeout=20)
        if is_mounted(self.mnt):
            run(['umount', '-l', self.mnt], timeout=20)
        self._forget_daemon()

    def abort_connection(self):
        """Abort the FUSE connection: every blocked syscall returns ENOTCONN."""
        if not self.dev:
            return
        ensure_fusectl()
        minor = self.dev.split(':')[1]
        try:
            with open('/sys/fs/fuse/connections/%s/abort' % minor, 'w') as f:
                f.write('1')
        except OSError:
            pass

    def force_cleanup(self):
        """Failure path: -u, -uz, SIGTERM, SIGKILL, only our own daemon."""
        pid = self.current_pid()
        for flags in (['-u'], ['-uz']):
            if not is_mounted(self.mnt):
                break
            try:
                run(['fusermount3'] + flags + [self.mnt], timeout=20)
            except MountError:
                pass
        if pid is not None and not self._wait_pid_exit(pid, 5):
            for sig, wait in ((signal.SIGTERM, 5), (signal.SIGKILL, 5)):
                if pid_alive(pid):
                    try:
                        os.kill(pid, sig)
                    except ProcessLookupError:
                        pass
                if self._wait_pid_exit(pid, wait):
                    break
        if is_mounted(self.mnt):
            self.abort_connection()
            run(['fusermount3', '-uz', self.mnt], timeout=20)
        self.proc = None
        self.pid = None

    # ---- log -------------------------------------------------------------
    def log_text(self):
        try:
            with open(self.log, errors='replace') as f:
                return f.read()
        except FileNotFoundError:
            return ''

    def log_problems(self):
        if self.allow_log_errors:
            return []
        return [l for l in self.log_text().splitlines()
                if not l.startswith('==== ') and LOG_BAD.search(l)]

    # ---- inspection ------------------------------------------------------
    def path(self, *p):
        return os.path.join(self.mnt, *p)

    def backing(self, name):
        """The backing file in the store of the regular file @name (mounted)."""
        ino = os.stat(self.path(name)).st_ino
        return os.path.join(self.store, 'data', '%02x' % (ino & 0xff), '%x' % ino)

    def statvfs(self):
        return os.statvfs(self.mnt)

    def free_pages(self):
        return self.statvfs().f_bfree

    def used_pages(self):
        s = self.statvfs()
        return s.f_blocks - s.f_bfree

    def stat_json(self, timeout=20):
        p = run([RESERVEFS, 'stat', self.mnt, '--json'], timeout=timeout, check=True)
        return json.loads(p.stdout)

    def fsck(self, repair=False):
        return fsck(self.store, repair=repair)


# ---- ctypes wrappers for calls Python lacks --------------------------------

libc = ctypes.CDLL(None, use_errno=True)
libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64]
libc.renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p,
                           ctypes.c_uint]

FALLOC_FL_KEEP_SIZE = 0x01
FALLOC_FL_PUNCH_HOLE = 0x02
FALLOC_FL_ZERO_RANGE = 0x10
RENAME_NOREPLACE = 1
RENAME_EXCHANGE = 2
AT_FDCWD = -100


def fallocate(fd, mode, off, length):
    if libc.fallocate(fd, mode, off, length) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))


def drop_wal_reserve(store):
    """Give back the blocks the daemon preallocated for meta.db's WAL past
    its end (so that a full backing disk still takes the commits of
    unlinks), for tests that need a full disk to refuse commits.  Only on
    an idle mount: a commit appending meanwhile could lose its frame."""
    fd = os.open(os.path.join(store, 'meta.db-wal'), os.O_WRONLY)
    try:
        fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, os.fstat(fd).st_size, 1 << 30)
    finally:
        os.close(fd)


FS_IOC_GETFLAGS, FS_IOC_SETFLAGS = 0x80086601, 0x40086602
FL_IMMUTABLE, FL_APPEND, FL_NODUMP, FL_NOATIME = 0x10, 0x20, 0x40, 0x80
FL_OURS = FL_IMMUTABLE | FL_APPEND | FL_NODUMP | FL_NOATIME     # what reservefs keeps


def getflags(fd):
    """chattr's flags of the open file @fd (FS_IOC_GETFLAGS)."""
    import fcntl
    import struct
    return struct.unpack('i', fcntl.ioctl(fd, FS_IOC_GETFLAGS, b'\0' * 4))[0]


def chattr(path, attr=None):
    """With @attr: sets the flags of FL_OURS to it, keeping the filesystem's
    own (ext4's extents flag, which it refuses to drop), and returns them as
    read back.  Without: returns all the flags."""
    import fcntl
    import struct
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        fl = getflags(fd)
        if attr is None:
            return fl
        fcntl.ioctl(fd, FS_IOC_SETFLAGS, struct.pack('i', (fl & ~FL_OURS) | attr))
        return getflags(fd) & FL_OURS
    finally:
        os.close(fd)


def renameat2(old, new, flags):
    if libc.renameat2(AT_FDCWD, os.fsencode(old), AT_FDCWD, os.fsencode(new), flags) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e), old)


AT_EMPTY_PATH = 0x1000


def link_fd(fd, new):
    """linkat(fd, "", AT_FDCWD, new, AT_EMPTY_PATH): gives an open file
    (an O_TMPFILE) a name."""
    if libc.linkat(fd, b'', AT_FDCWD, os.fsencode(new), AT_EMPTY_PATH) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e), new)


def wait_until(cond, timeout=10, step=0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(step)
    return cond()


def drop_caches(what=3):
    """The kernel drops its clean page cache and unused dentries and inodes
    (@what 3, after a sync), or only the dentries and inodes (2).  Root."""
    if what & 1:
        os.sync()
    with open('/proc/sys/vm/drop_caches', 'w') as f:
        f.write('%d\n' % what)


def pattern(seed, off, length):
    """Deterministic, position-dependent bytes: any misplaced page shows."""
    out = bytearray()
    blk = off // PAGE
    end = off + length
    while off < end:
        base = (blk * 2654435761 + seed * 40503) & 0xffffffff
        page = (base.to_bytes(4, 'little') + blk.to_bytes(4, 'little') +
                seed.to_bytes(4, 'little') + b'rsvf') * (PAGE // 16)
        lo = off - blk * PAGE
        hi = min(PAGE, end - blk * PAGE)
        out += page[lo:hi]
        off = blk * PAGE + hi
        blk += 1
    return bytes(out)


# ---- remount helper for rfsx --remount-cmd ---------------------------------

def main(argv):
    """rfs.py remount WORK NAME OPTS: unmount and mount again, keep the pidfile."""
    if len(argv) < 3 or argv[0] != 'remount':
        print('usage: rfs.py remount WORK NAME [OPTS]', file=sys.stderr)
        return 2
    work, name = argv[1], argv[2]
    opts = argv[3] if len(argv) > 3 else ''
    m = Mount(work, opts=opts, name=name)
    try:
        m.umount()
        m.mount()
    except MountError as e:
        print('remount failed: %s' % e, file=sys.stderr)
        return 1
    # The daemon must outlive us: it is in its own session already.
    m.proc = None
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))


# ---- running code as another user ------------------------------------------

def as_user(func, *args, uid=65534, gid=65534, timeout=60):
    """Run func(*args) in a forked child with the given uid/gid; return its
    result or re-raise its exception (OSError keeps its errno)."""
    import pickle
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        try:
            os.setgroups([])
            os.setgid(gid)
            os.setuid(uid)
            res = ('ok', func(*args))
        except BaseException as e:     # report everything to the parent
            if isinstance(e, OSError):
                res = ('oserror', (e.errno, str(e)))
            else:
                res = ('exc', repr(e))
        try:
            data = pickle.dumps(res)
        except Exception as e:
            data = pickle.dumps(('exc', 'unpicklable result: %r' % e))
        os.write(w, data)
        os._exit(0)
    os.close(w)
    chunks = []
    deadline = time.monotonic() + timeout
    import select
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            os.close(r)
            raise TimeoutError('as_user child timed out')
        rd, _, _ = select.select([r], [], [], left)
        if rd:
            b = os.read(r, 65536)
            if not b:
                break
            chunks.append(b)
    os.close(r)
    os.waitpid(pid, 0)
    kind, val = pickle.loads(b''.join(chunks))
    if kind == 'ok':
        return val
    if kind == 'oserror':
        raise OSError(val[0], val[1])
    raise RuntimeError('child failed: %s' % val)


def helper_script(name):
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), 'helpers', name)


def run_helper(name, *args, timeout=120):
    """Run tests/integration/helpers/NAME with Debian's python in a child, so
    a SIGBUS or a hang there cannot take the test runner down."""
    return run([sys.executable, helper_script(name)] + [str(a) for a in args],
               timeout=timeout)
