"""Concurrency on the data path: many processes on the same files at once.

rfsc (tests/rfsc) runs writers, mappers, truncaters, fillers and readers as
separate processes against a model in which every byte has one owner, checks
what each call and each read returns as it goes, and checks the files again
after a remount or after SIGKILL of the daemon.  Plus the daemon's own waits
on the kernel (lseek, which has the kernel write mapped pages back first).
"""

import errno
import os
import random
import re
import signal
import subprocess
import sys
import time

import pytest

import rfs

RFSC = os.path.join(rfs.BUILD, 'tests', 'rfsc', 'rfsc')
# shared files x workers x pages, fillers of 16 MiB: near full at 32M (eof)
# and 12M (write), so ENOSPC comes often
GEOMETRY = ['-F', '2', '-W', '3', '-P', '24', '-T', '128', '-L', '3', '-X', str(16 << 20)]
OPTS = 'dirty_limit=256k,dirty_expire=200ms,mmap_dirty_max=1M'


def rfsc_or_skip():
    if not os.access(RFSC, os.X_OK):
        pytest.skip('rfsc not built (%s)' % RFSC)


def rfsc(*args, timeout=120):
    r = rfs.run([RFSC] + [str(a) for a in args], timeout=timeout)
    return r.returncode, r.stderr


def rfsc_ok(*args, timeout=120):
    rc, err = rfsc(*args, timeout=timeout)
    assert rc == 0, 'rfsc %s: exit %d\n%s' % (args[0], rc, err[-8000:])
    return err


@pytest.mark.timeout(100)
def test_rfsc_concurrent_workers_and_remount(fsf, mode):
    rfsc_or_skip()
    m = fsf.new(size='32M' if mode == 'eof' else '12M', reserve=mode, mount_opts=OPTS)
    state = os.path.join(m.work, 'rfsc.state')
    rfsc_ok('init', '-s', state, '-d', m.path('t'), '-m', mode, *GEOMETRY)
    out = rfsc_ok('run', '-s', state, '-t', 15, '-S', 3 + (mode == 'write'),
                  '--resize', '24M,32M' if mode == 'eof' else '10M,12M')
    # ENOSPC happened, and some writes were cut short (the run is near full)
    enospc = sum(int(l.split()[3]) for l in out.splitlines()
                 if re.match(r'(pwrite|write|append|fallocate) ', l))
    assert enospc > 0, out
    live = m.stat_json()
    assert live['enospc']['writeback'] == 0 and live['writeback_failures'] == 0, live
    m.umount()
    assert rfs.fsck_reserved(m.store) == live['reserved_pages']
    m.mount()
    rfsc_ok('verify', '-s', state)
    m.umount()
    assert rfs.fsck_reserved(m.store) == live['reserved_pages']


@pytest.mark.timeout(100)
def test_rfsc_sigkill_daemon_under_load(fsf, mode):
    """Pages no call was under way on when the daemon died (and that no
    mapping left dirty) read back as the model says; so do pages whose
    owner's last change was followed by a completed fsync."""
    rfsc_or_skip()
    m = fsf.new(size='32M' if mode == 'eof' else '12M', reserve=mode, mount_opts=OPTS)
    m.allow_log_errors = True
    state = os.path.join(m.work, 'rfsc.state')
    rfsc_ok('init', '-s', state, '-d', m.path('t'), '-m', mode, *GEOMETRY)
    # no lseeks: a kill during one can leave a daemon that cannot exit
    # (test_sigkill_during_seeks_over_dirty_mappings_daemon_exits)
    run = subprocess.Popen([RFSC, 'run', '-s', state, '-t', '30', '-S', '11', '--no-seek'],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    time.sleep(random.Random(5 + (mode == 'write')).uniform(3, 8))
    m.kill(signal.SIGKILL)
    try:
        _, err = run.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        run.kill()
        run.communicate()
        pytest.fail('rfsc hung after the daemon was killed')
    # the workers stop at the first ENOTCONN; nothing else may have failed
    assert run.returncode == 0, err[-8000:]
    m.umount_dead()
    m.mount()                       # recovery
    rfsc_ok('verify', '-s', state, '--crash')
    m.umount()
    rfs.fsck_reserved(m.store)


@pytest.mark.timeout(90)
def test_concurrent_seeks_over_dirty_mappings_do_not_hang(fsf):
    """lseek(SEEK_DATA/SEEK_HOLE) that finds a hole has the kernel write back
    mapped pages first (notify_inval_inode); that writeback comes back as
    WRITE requests.  With the notification made in the session loop's own
    threads, ten such lseeks at once (max_threads) each waited for a write no
    thread was left to take: the mount hung for good (24 processes x 100
    rounds hung it every time)."""
    m = fsf.new(size='64M', reserve='eof')
    try:
        r = rfs.run_helper('seek_mapped.py', m.mnt, 24, 100, timeout=60)
    except rfs.MountError:
        m.abort_connection()
        pytest.fail('concurrent lseeks over dirty mappings hung the mount')
    assert r.returncode == 0, r.stderr


@pytest.mark.timeout(90)
def test_sigkill_during_seeks_over_dirty_mappings_daemon_exits(fsf):
    """SIGKILL of the daemon while lseeks have the kernel write back mapped
    pages: the daemon must go (so that the store can be mounted again).  A
    thread waiting in notify_inval_inode for that writeback (in
    fuse_launder_folio, uninterruptibly) keeps the killed process from
    exiting, and so the kernel from aborting the connection, unless the
    daemon's watchdog aborts it.  Five tries: without the watchdog, one of
    them usually left a zombie daemon until `umount -f`."""
    for attempt in range(5):
        m = fsf.new(size='64M', reserve='eof')
        helper = subprocess.Popen([sys.executable, rfs.helper_script('seek_mapped.py'),
                                   m.mnt, '24', '100000'],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(1.5)
        pid = m.current_pid()
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 5
        while m.proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        gone = m.proc.poll() is not None
        if not gone:
            m.abort_connection()        # what umount -f does; the daemon goes then
            m.proc.wait(timeout=20)
        helper.kill()
        helper.wait(timeout=30)
        m.umount_dead()
        assert gone, 'attempt %d: the killed daemon could not exit' % attempt


def watchdogs_of(pid):
    """PIDs of the reservefs-wd processes whose parent is @pid."""
    out = []
    for d in os.listdir('/proc'):
        if not d.isdigit():
            continue
        try:
            with open('/proc/%s/stat' % d) as f:
                st = f.read()
        except OSError:
            continue
        comm = st[st.index('(') + 1:st.rindex(')')]
        ppid = int(st[st.rindex(')') + 2:].split()[1])
        if comm == 'reservefs-wd' and ppid == pid:
            out.append(int(d))
    return out


def proc_start(pid):
    """@pid's start time (to tell it from a later process with its PID), or
    None when it is gone or a zombie."""
    try:
        with open('/proc/%d/stat' % pid) as f:
            fields = f.read().rsplit(')', 1)[1].split()
    except OSError:
        return None
    return None if fields[0] == 'Z' else fields[19]


def test_watchdog_lives_with_the_daemon(fsf):
    """The daemon's watchdog (which aborts the connection when the daemon
    dies without unmounting) runs beside it, is gone after a clean unmount,
    and after a SIGKILL leaves the mount aborted (ENOTCONN), not hung."""
    rfs.ensure_fusectl()
    m = fsf.new(size='4M')
    pid = m.current_pid()
    wd = watchdogs_of(pid)
    assert len(wd) == 1, 'no watchdog beside daemon %d' % pid
    started = proc_start(wd[0])
    m.umount()
    assert proc_start(wd[0]) != started, 'watchdog outlived a clean unmount'
    m.mount()
    wd = watchdogs_of(m.current_pid())
    assert len(wd) == 1
    started = proc_start(wd[0])
    m.kill(signal.SIGKILL)
    assert rfs.errno_of(os.statvfs, m.mnt) == errno.ENOTCONN
    assert rfs.wait_until(lambda: proc_start(wd[0]) != started), \
        'watchdog outlived its daemon'
    m.umount_dead()
