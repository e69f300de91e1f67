"""Polling for the next request before sleeping (-o poll=USEC, fs/io.c).

The daemon's thread polls /dev/fuse for a while before it sleeps in read(),
and the window adapts: it grows while requests follow each other and goes
to nothing when they do not.  These tests check what `reservefs stat`
counts, that the data is right either way, and that a mount left alone does
not spin.
"""

import os
import subprocess
import sys
import time

import pytest

import rfs
from rfs import PAGE, pattern


def daemon_cpu_s(pid):
    """user + system CPU seconds of the process so far"""
    with open('/proc/%d/stat' % pid) as f:
        fields = f.read().rsplit(')', 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK')


def sync_writes(path, n, gap=0.0):
    """n 4 KiB pwrites, each answered before the next; returns what the file holds"""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        for i in range(n):
            os.pwrite(fd, pattern(i, 0, PAGE), (i % 64) * PAGE)
            if gap:
                time.sleep(gap)
    finally:
        os.close(fd)
    return b''.join(pattern(max(j for j in range(n) if j % 64 == p), 0, PAGE)
                    for p in range(min(n, 64)))


def test_poll_catches_requests_that_follow_each_other(fsf):
    m = fsf.new(size='16M')
    want = sync_writes(m.path('f'), 3000)
    st = m.stat_json()['poll']
    assert st['max_us'] == 50, st
    assert st['hits'] > 0, st
    m.remount()
    with open(m.path('f'), 'rb') as f:
        assert f.read() == want


def test_poll_zero_never_polls(fsf):
    m = fsf.new(size='16M', mount_opts='poll=0')
    want = sync_writes(m.path('f'), 2000)
    st = m.stat_json()['poll']
    assert st == {'max_us': 0, 'window_us': 0, 'hits': 0, 'misses': 0, 'busy': 0}, st
    m.remount()
    with open(m.path('f'), 'rb') as f:
        assert f.read() == want


def test_poll_window_closes_for_a_slow_caller(fsf):
    m = fsf.new(size='16M', mount_opts='poll=200')
    sync_writes(m.path('f'), 2000)
    fd = os.open(m.path('f'), os.O_RDWR)
    try:
        def spaced_writes(n):
            # each comes long after the poll before it gave up: the window
            # halves every time, 200 -> 0 in 8 requests, and stays there
            for i in range(n):
                os.pwrite(fd, pattern(i, 0, PAGE), i * PAGE)
                time.sleep(0.005)
            return m.stat_json()['poll']
        st = spaced_writes(20)
        assert st['max_us'] == 200 and st['hits'] > 0, st
        st2 = spaced_writes(40)
        # the stat request may open the window a little; 40 more requests
        # then cost a few polls, not 40
        assert st2['misses'] - st['misses'] <= 10, (st, st2)
        assert st2['window_us'] <= 20, st2
    finally:
        os.close(fd)


def test_no_polling_while_other_programs_keep_every_cpu_busy(fsf):
    m = fsf.new(size='16M')
    sync_writes(m.path('f'), 1000)
    before = m.stat_json()['poll']
    burners = [subprocess.Popen([sys.executable, '-c',
                                 'import time\nt = time.time() + 30\nwhile time.time() < t: pass'])
               for _ in range(os.cpu_count())]
    try:
        time.sleep(0.3)
        want = sync_writes(m.path('f'), 1000)
        st = m.stat_json()['poll']
    finally:
        for b in burners:
            b.kill()
            b.wait()
    polls = st['hits'] + st['misses'] - before['hits'] - before['misses']
    skipped = st['busy'] - before['busy']
    assert skipped > 0 and polls < skipped, (before, st)
    with open(m.path('f'), 'rb') as f:
        assert f.read() == want


@pytest.mark.parametrize('opts', ['', 'poll=10000'])
def test_idle_mount_does_not_spin(fsf, opts):
    m = fsf.new(size='16M', mount_opts=opts)
    sync_writes(m.path('f'), 2000)
    time.sleep(0.2)
    pid = m.current_pid()
    before = daemon_cpu_s(pid)
    time.sleep(2)
    used = daemon_cpu_s(pid) - before
    assert used < 0.1, used


def test_poll_option_shows_in_help():
    p = rfs.run([rfs.RESERVEFS, '--help'], check=True)
    assert 'poll=USEC' in p.stdout
