"""The same random namespace operations on the backing ext4 and on reservefs
(helpers/nsdiff.py): every errno, every returned value and the whole tree
must agree, as root and as two unprivileged users; then the tree must come
back the same after a remount, and after a SIGKILL of the daemon.

Default: a few seeds of 3,000 operations per mode; `tests/run --long`: more
seeds, longer.
"""

import json
import os

import pytest

import rfs

MOUNT_OPTS = 'allow_other,default_permissions,dev,suid'


def empty_dir(path):
    os.mkdir(path)
    os.chmod(path, 0o777)
    return path


def snap(path):
    r = rfs.run_helper('nsdiff.py', 'snap', path, timeout=60)
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(r.stdout)


@pytest.mark.timeout(240, 3600)
def test_namespace_matches_ext4(fsf, workdir, mode, long_run):
    m = fsf.new(size='256M', reserve=mode, mount_opts=MOUNT_OPTS)
    seeds = range(1, 21) if long_run else range(1, 4)
    ops = 20000 if long_run else 3000
    for seed in seeds:
        ref = empty_dir(os.path.join(workdir, 'ref%d' % seed))
        fs = empty_dir(m.path('ns%d' % seed))
        r = rfs.run_helper('nsdiff.py', ref, fs, '--seed', seed, '--ops', ops, timeout=600)
        assert r.returncode == 0, 'seed %d:\n%s%s' % (seed, r.stdout, r.stderr[-6000:])
        res = json.loads(r.stdout)
        # the run did real work: most kinds of operation succeeded somewhere
        assert res['ok'] and sum(res['ok_per_op'].values()) > ops // 8, res
        assert sum(1 for v in res['ok_per_op'].values() if v) >= 18, res

    before = snap(m.mnt)
    m.umount()
    m.mount()
    after = snap(m.mnt)
    assert after == before
    for seed in seeds:
        assert snap(m.path('ns%d' % seed)) == snap(os.path.join(workdir, 'ref%d' % seed))

    # every operation is committed before its reply: a SIGKILL of the
    # daemon loses none of them
    m.kill_remount()
    for seed in seeds:
        assert snap(m.path('ns%d' % seed)) == snap(os.path.join(workdir, 'ref%d' % seed))
    m.umount()
    p = m.fsck()
    assert p.returncode == 0, p.stdout + p.stderr
