"""Concurrency on the data path: many processes on the same files at once,
and the daemon's own waits on the kernel (lseek, which has the kernel write
mapped pages back first).
"""

import pytest

import rfs


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
