"""rfsx (tests/rfsx, the randomized file operation tester) on a mounted store.

Default: a bounded number of ops per run; `tests/run --long`: millions.
The remount command unmounts and mounts again through rfs.py, which keeps
the daemon PID in the pidfile the fixture cleans up from.
"""

import os
import shlex
import sys

import pytest

import rfs


def rfsx_or_skip():
    if not os.access(rfs.RFSX, os.X_OK):
        pytest.skip('rfsx not built (%s)' % rfs.RFSX)
    return rfs.RFSX


def remount_cmd(m):
    return ' '.join(shlex.quote(a) for a in
                    [sys.executable, os.path.join(os.path.dirname(rfs.__file__), 'rfs.py'),
                     'remount', m.work, os.path.basename(m.store)[:-len('-store')], m.opts])


def run_rfsx(m, args, fname, timeout):
    cmd = [rfsx_or_skip(), '-q', '--timeout', '60'] + args + [m.path(fname)]
    r = rfs.run(cmd, timeout=timeout)
    tail = (r.stdout + r.stderr)[-6000:]
    assert r.returncode == 0, 'rfsx exit %d:\n%s' % (r.returncode, tail)
    return r


@pytest.mark.timeout(300, 14000)
def test_rfsx_with_remounts(fsf, mode, long_run):
    rfsx_or_skip()
    m = fsf.new(size='64M', reserve=mode)
    nops = 2_000_000 if long_run else 20000
    run_rfsx(m, ['-N', str(nops), '-S', '1%d' % (mode == 'write'), '-l', '4m', '-o', '256k',
                 '--reserve-mode', mode, '--remount-cmd', remount_cmd(m),
                 '--remount-every', str(5000 if long_run else 2500)],
             'rfsx.dat', timeout=13000 if long_run else 280)
    m.umount()
    r = m.fsck()
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.timeout(300, 14000)
def test_rfsx_near_full_enospc_ok(fsf, mode, long_run):
    rfsx_or_skip()
    m = fsf.new(size='1M', reserve=mode)
    nops = 1_000_000 if long_run else 20000
    # write mode does not protect mmap on a full store (DESIGN.md): no
    # mapped writes there, a refused writeback would be a documented loss
    nomap = ['-W', '-M'] if mode == 'write' else []
    run_rfsx(m, nomap + ['-N', str(nops), '-S', '7%d' % (mode == 'write'), '-l', '2m', '-o', '128k',
                 '--enospc-ok', '--reserve-mode', mode, '--remount-cmd', remount_cmd(m),
                 '--remount-every', str(5000)],
             'full.dat', timeout=13000 if long_run else 280)
    m.umount()
    r = m.fsck()
    assert r.returncode == 0, r.stdout + r.stderr
