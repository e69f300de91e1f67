"""nsdiff.py REF FS [--seed S] [--ops N] [--snap-every K] [--log FILE]

Differential namespace tester: the same random sequence of namespace,
attribute, xattr and small data operations runs on REF (a directory on the
backing filesystem, ext4 here: the reference) and on FS (a directory in a
mounted reservefs), as root and as two unprivileged users (the effective
uid/gid switch per operation, so the kernel checks permissions exactly as a
program's own calls would; mount reservefs with allow_other and
default_permissions).  Every operation's outcome, its errno or the value it
returned (stat fields, directory listing, file bytes, link target, xattr),
must be the same on both, and every K operations the two trees are compared
whole: names, types, modes, owners, link counts, sizes, contents, symlink
targets, user xattrs, and which names are hard links of one inode.

Prints one JSON line; exits 1 at the first difference with the last
operations, 2 on a usage error.  Both roots must exist, be empty and be
mode 0777.  `nsdiff.py snap DIR` prints a tree's snapshot (JSON) instead,
for comparing a tree across a remount.
"""
import argparse
import errno
import hashlib
import json
import os
import random
import stat
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..'))
import rfs  # noqa: E402

NAMES = ['a', 'b', 'c', 'd', 'e']
USERS = [(0, 0), (65534, 65534), (1000, 1000)]
MODES = [0o755, 0o700, 0o777, 0o644, 0o600, 0o444, 0o000, 0o1777, 0o2775, 0o4755,
         0o6711, 0o2755, 0o3777, 0o640, 0o711, 0o555]
RENAME_NOREPLACE, RENAME_EXCHANGE, RENAME_WHITEOUT = 1, 2, 4
ACL_USER_OBJ, ACL_USER, ACL_GROUP_OBJ, ACL_GROUP, ACL_MASK, ACL_OTHER = 1, 2, 4, 8, 0x10, 0x20
FL_IMMUTABLE, FL_APPEND, FL_NODUMP, FL_NOATIME = (rfs.FL_IMMUTABLE, rfs.FL_APPEND,
                                                  rfs.FL_NODUMP, rfs.FL_NOATIME)
FL_OURS, getflags, chattr = rfs.FL_OURS, rfs.getflags, rfs.chattr


def unflag(root):
    """Clears immutable and append-only below @root, so it can be removed."""
    for d, dirs, files in os.walk(root):
        for n in dirs + files:
            p = os.path.join(d, n)
            if not os.path.islink(p):
                try:
                    chattr(p, 0)
                except OSError:
                    pass


ACL_XATTR = {'access': 'system.posix_acl_access', 'default': 'system.posix_acl_default'}


def acl_bytes(entries):
    """The xattr form of an ACL (version 2, then tag, perm, id per entry)."""
    import struct
    return struct.pack('<I', 2) + b''.join(
        struct.pack('<HHI', tag, perm, id & 0xffffffff) for tag, perm, id in entries)


def set_user(uid, gid):
    """Effective ids only: root's real and saved ids stay, to switch back."""
    if os.geteuid() != 0:
        os.seteuid(0)
    os.setegid(gid)
    if uid != 0:
        os.seteuid(uid)


def digest(b):
    return hashlib.sha1(b).hexdigest()[:16]


def stat_view(st):
    """The fields both filesystems must agree on (no times, inode numbers,
    blocks, or directory sizes, which differ by design)."""
    v = {'type': stat.S_IFMT(st.st_mode), 'mode': stat.S_IMODE(st.st_mode),
         'uid': st.st_uid, 'gid': st.st_gid, 'nlink': st.st_nlink}
    if not stat.S_ISDIR(st.st_mode):
        v['size'] = st.st_size
    return v


def snapshot(root):
    """Every name below root with its attributes; hard links grouped by the
    first path found for their inode (walk order is sorted, so the same)."""
    out = {}
    first = {}
    todo = ['']
    while todo:
        rel = todo.pop()
        path = os.path.join(root, rel) if rel else root
        for ent in sorted(os.scandir(path), key=lambda e: e.name):
            name = ent.name
            r = os.path.join(rel, name) if rel else name
            p = os.path.join(root, r)
            st = os.lstat(p)
            v = stat_view(st)
            # readdir's inode number and type agree with stat's
            v['dirent'] = (ent.inode() == st.st_ino and
                           ent.is_dir(follow_symlinks=False) == stat.S_ISDIR(st.st_mode) and
                           ent.is_symlink() == stat.S_ISLNK(st.st_mode))
            if stat.S_ISREG(st.st_mode):
                with open(p, 'rb') as f:
                    v['data'] = digest(f.read())
                v['ino'] = first.setdefault(st.st_ino, r)
            elif stat.S_ISLNK(st.st_mode):
                v['target'] = os.readlink(p)
            elif stat.S_ISDIR(st.st_mode):
                todo.append(r)
            if stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode):
                fd = os.open(p, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW)
                try:
                    v['flags'] = getflags(fd) & FL_OURS
                finally:
                    os.close(fd)
            whiteout = stat.S_ISCHR(st.st_mode) and st.st_rdev == 0
            if not stat.S_ISLNK(st.st_mode) and not stat.S_ISFIFO(st.st_mode):
                v['xattr'] = {k: digest(os.getxattr(p, k, follow_symlinks=False))
                              for k in sorted(os.listxattr(p, follow_symlinks=False))
                              if not k.startswith('security.') and
                              not (whiteout and k.startswith('system.posix_acl'))}
            out[r] = v
    return out


class Gen:
    """Draws operations.  Paths are relative to a root and stay inside it;
    symlink targets are relative and never climb above the root."""

    def __init__(self, seed):
        self.r = random.Random(seed)

    def path(self):
        depth = self.r.choice([1, 1, 2, 2, 2, 3])
        p = '/'.join(self.r.choice(NAMES) for _ in range(depth))
        if self.r.random() < 0.02:      # the longest name, and one too long
            p += '/' + self.r.choice(['L' * 255, 'L' * 256])
        x = self.r.random()
        if x < 0.03:
            p += '/'
        elif x < 0.05:
            p += '/.'
        elif x < 0.07 and depth > 1:
            p = p.replace('/', '/../' + self.r.choice(NAMES) + '/', 1)
        return p

    def target(self, link):
        """A target for a symlink at @link: relative and going down only, so
        it resolves inside the root wherever the link physically is (a
        '..' counted from the link's path would climb out of the root
        when a directory on that path is itself a symlink)."""
        x = self.r.random()
        if x < 0.1:
            return link.rstrip('/').rsplit('/', 1)[-1]    # itself: ELOOP
        if x < 0.15:
            return 'nowhere'
        return os.path.normpath(self.path().replace('..', '.'))

    def acl(self):
        """A POSIX ACL as (tag, perm, id) entries: the three of a mode, or
        named users and groups with a mask; now and then an invalid one."""
        r = self.r
        e = [(ACL_USER_OBJ, r.randrange(8), -1), (ACL_GROUP_OBJ, r.randrange(8), -1),
             (ACL_OTHER, r.randrange(8), -1)]
        if r.random() < 0.7:
            for uid in r.sample([65534, 1000, 0], r.randrange(1, 3)):
                e.append((ACL_USER, r.randrange(8), uid))
            for gid in r.sample([65534, 1000, 0], r.randrange(0, 2)):
                e.append((ACL_GROUP, r.randrange(8), gid))
            if r.random() < 0.95:
                e.append((ACL_MASK, r.randrange(8), -1))     # required with named ones
        e.sort(key=lambda t: (t[0], t[2]))
        if r.random() < 0.03:
            e.append((ACL_USER_OBJ, 7, -1))                 # duplicate: EINVAL
        return e

    def op(self):
        r = self.r
        kind = r.choices(
            ['mkdir', 'rmdir', 'unlink', 'write', 'read', 'symlink', 'readlink', 'link',
             'rename', 'chmod', 'chown', 'truncate', 'access', 'stat', 'listdir',
             'setxattr', 'getxattr', 'removexattr', 'listxattr', 'mkfifo', 'utime',
             'open', 'mknod', 'tmpfile', 'hold', 'fd', 'setacl', 'getacl', 'chattr', 'at'],
            [8, 4, 5, 12, 6, 4, 2, 4, 8, 5, 4, 4, 3, 5, 3, 3, 2, 2, 2, 1, 2, 4, 1, 2, 4, 10,
             4, 2, 3, 4])[0]
        user = r.choices(range(len(USERS)), [5, 3, 2])[0]
        o = {'op': kind, 'user': user, 'p': self.path(), 'times': r.random() < 0.4}
        if kind in ('mkdir', 'chmod'):
            o['mode'] = r.choice(MODES)
        elif kind == 'write':
            o['flags'] = r.choice(['w', 'a', 'r+', 'x', 'wt', 'ct'])
            o['off'] = r.choice([0, 0, 1, 4095, 4096, 5000, 70000])
            o['len'] = r.choice([0, 1, 100, 4096, 9000])
            o['mode'] = r.choice(MODES)
            o['byte'] = r.randrange(256)
        elif kind == 'symlink':
            o['target'] = self.target(o['p'])
        elif kind in ('link', 'rename'):
            o['q'] = self.path()
            o['flags'] = r.choice([0, 0, 0, RENAME_NOREPLACE, RENAME_EXCHANGE, RENAME_WHITEOUT]) \
                if kind == 'rename' else 0
        elif kind == 'chown':
            ids = [-1, 0, 65534, 1000]
            o['uid'] = r.choice(ids)
            o['gid'] = r.choice(ids)
            o['nofollow'] = r.random() < 0.3
        elif kind == 'truncate':
            o['size'] = r.choice([0, 1, 4096, 10000, 1 << 20])
        elif kind == 'access':
            o['mode'] = r.choice([os.F_OK, os.R_OK, os.W_OK, os.X_OK, os.R_OK | os.W_OK])
        elif kind in ('setxattr', 'getxattr', 'removexattr'):
            o['name'] = r.choice(['user.x', 'user.y', 'trusted.t', 'user.' + 'n' * 260])
            o['value'] = r.choice(['', 'v', 'w' * 300])
            o['xflags'] = r.choice([0, 0, os.XATTR_CREATE, os.XATTR_REPLACE])
        elif kind == 'utime':
            o['now'] = r.random() < 0.5
        elif kind == 'open':
            o['flags'] = r.choice(['dir', 'nofollow', 'rdonly', 'wronly', 'dir|creat',
                                   'creat|excl|nofollow', 'trunc|rdonly'])
        elif kind == 'at':
            o['slot'] = r.randrange(SLOTS)
            o['at'] = r.choice(['mkdir', 'create', 'unlink', 'rmdir', 'tmpfile', 'symlink',
                                'rename_out', 'rename_in', 'stat'])
            o['name'] = r.choice(NAMES)
        elif kind == 'chattr':
            o['attr'] = r.choice([0, 0, FL_IMMUTABLE, FL_APPEND, FL_NODUMP, FL_NOATIME,
                                  FL_IMMUTABLE | FL_APPEND, FL_APPEND | FL_NODUMP])
        elif kind in ('setacl', 'getacl'):
            o['which'] = r.choice(['access', 'access', 'default'])
            o['acl'] = self.acl()
        elif kind == 'hold':
            o['slot'] = r.randrange(SLOTS)
            o['flags'] = r.choice(['rdonly', 'wronly', 'r+', 'w', 'a', 'x', 'dir'])
        elif kind == 'fd':
            o['slot'] = r.randrange(SLOTS)
            o['fd'] = r.choice(['fstat', 'fstat', 'pwrite', 'pread', 'ftruncate', 'fchmod',
                                'fchown', 'fsetxattr', 'fgetxattr', 'fsync', 'close',
                                'listdir', 'futimens'])
            o['off'] = r.choice([0, 1, 4096, 100000])
            o['len'] = r.choice([0, 1, 5000])
            o['mode'] = r.choice(MODES)
            o['uid'] = r.choice([-1, 0, 65534, 1000])
            o['byte'] = r.randrange(256)
        return o


FLAGS = {
    'w': os.O_WRONLY | os.O_CREAT, 'a': os.O_WRONLY | os.O_CREAT | os.O_APPEND,
    'r+': os.O_RDWR, 'x': os.O_WRONLY | os.O_CREAT | os.O_EXCL,
    'wt': os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 'ct': os.O_RDWR | os.O_TRUNC,
    'dir': os.O_RDONLY | os.O_DIRECTORY, 'nofollow': os.O_RDONLY | os.O_NOFOLLOW,
    'rdonly': os.O_RDONLY, 'wronly': os.O_WRONLY, 'dir|creat': os.O_RDONLY | os.O_DIRECTORY
    | os.O_CREAT, 'creat|excl|nofollow': os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW,
    'trunc|rdonly': os.O_RDONLY | os.O_TRUNC,
}


SLOTS = 4
FDS = {}    # root -> its open descriptors, slot by slot (the same slots on both)


def apply_fd(root, o):
    """Operations on a descriptor held across operations: the file may
    meanwhile have been renamed, unlinked (nlink 0) or replaced."""
    fds = FDS.setdefault(root, [None] * SLOTS)
    fd = fds[o['slot']]
    k = o['fd']
    if fd is None:
        return 'no descriptor'
    if k == 'fstat':
        return stat_view(os.fstat(fd))
    if k == 'pwrite':
        return os.pwrite(fd, bytes([o['byte']]) * o['len'], o['off'])
    if k == 'pread':
        return digest(os.pread(fd, 200000, o['off']))
    if k == 'ftruncate':
        os.ftruncate(fd, o['off'])
    elif k == 'fchmod':
        os.fchmod(fd, o['mode'])
    elif k == 'fchown':
        os.fchown(fd, o['uid'], -1)
    elif k == 'fsetxattr':
        os.setxattr(fd, 'user.f', bytes([o['byte']]))
    elif k == 'fgetxattr':
        return digest(os.getxattr(fd, 'user.f'))
    elif k == 'fsync':
        os.fsync(fd)
    elif k == 'close':
        fds[o['slot']] = None
        os.close(fd)
    elif k == 'listdir':
        return sorted(os.listdir(fd))
    elif k == 'futimens':
        os.utime(fd, (1000000000, 1000000000))
    return None


def apply(root, o):
    """Runs operation @o under @root; returns what it returned (comparable
    between the two roots), raises OSError."""
    P = os.path.join(root, o['p'])
    k = o['op']
    if k == 'mkdir':
        os.mkdir(P, o['mode'])
    elif k == 'rmdir':
        os.rmdir(P)
    elif k == 'unlink':
        os.unlink(P)
    elif k == 'write':
        fd = os.open(P, FLAGS[o['flags']] | os.O_NONBLOCK, o['mode'])
        try:
            n = os.pwrite(fd, bytes([o['byte']]) * o['len'], o['off']) \
                if o['flags'] != 'a' else os.write(fd, bytes([o['byte']]) * o['len'])
            return [n, os.fstat(fd).st_size]
        finally:
            os.close(fd)
    elif k == 'read':
        fd = os.open(P, os.O_RDONLY | os.O_NONBLOCK)   # a FIFO must not block
        try:
            return digest(os.pread(fd, 1 << 21, 0))
        finally:
            os.close(fd)
    elif k == 'symlink':
        os.symlink(o['target'], P)
    elif k == 'readlink':
        return os.readlink(P)
    elif k == 'link':
        os.link(P, os.path.join(root, o['q']), follow_symlinks=False)
    elif k == 'rename':
        Q = os.path.join(root, o['q'])
        if o['flags']:
            rfs.renameat2(P, Q, o['flags'])
        else:
            os.rename(P, Q)
    elif k == 'chmod':
        os.chmod(P, o['mode'])
    elif k == 'chown':
        os.chown(P, o['uid'], o['gid'], follow_symlinks=not o['nofollow'])
    elif k == 'truncate':
        os.truncate(P, o['size'])
    elif k == 'access':
        return os.access(P, o['mode'])
    elif k == 'stat':
        return stat_view(os.lstat(P))
    elif k == 'listdir':
        return sorted(os.listdir(P))
    elif k == 'setxattr':
        os.setxattr(P, o['name'], o['value'].encode(), o['xflags'])
    elif k == 'getxattr':
        return digest(os.getxattr(P, o['name']))
    elif k == 'removexattr':
        os.removexattr(P, o['name'])
    elif k == 'listxattr':
        return sorted(x for x in os.listxattr(P) if x.startswith('user.'))
    elif k == 'mkfifo':
        os.mkfifo(P, 0o644)
    elif k == 'mknod':      # /dev/null's numbers; EPERM unless root
        os.mknod(P, stat.S_IFCHR | 0o644, os.makedev(1, 3))
    elif k == 'chattr':
        return chattr(P, o['attr'])
    elif k == 'setacl':
        os.setxattr(P, ACL_XATTR[o['which']], acl_bytes(o['acl']))
    elif k == 'getacl':
        return os.getxattr(P, ACL_XATTR[o['which']]).hex()
    elif k == 'hold':
        fds = FDS.setdefault(root, [None] * SLOTS)
        if fds[o['slot']] is not None:
            os.close(fds[o['slot']])
            fds[o['slot']] = None
        fds[o['slot']] = os.open(P, FLAGS[o['flags']] | os.O_NONBLOCK, 0o644)
        return stat_view(os.fstat(fds[o['slot']]))
    elif k == 'fd':
        return apply_fd(root, o)
    elif k == 'at':         # *at() calls on a held descriptor, a directory perhaps removed
        fd = FDS.setdefault(root, [None] * SLOTS)[o['slot']]
        if fd is None:
            return 'no descriptor'
        n, a = o['name'], o['at']
        if a == 'mkdir':
            os.mkdir(n, 0o755, dir_fd=fd)
        elif a == 'create':
            os.close(os.open(n, os.O_CREAT | os.O_WRONLY | os.O_NONBLOCK, 0o644, dir_fd=fd))
        elif a == 'unlink':
            os.unlink(n, dir_fd=fd)
        elif a == 'rmdir':
            os.rmdir(n, dir_fd=fd)
        elif a == 'tmpfile':
            os.close(os.open('.', os.O_TMPFILE | os.O_RDWR, 0o600, dir_fd=fd))
        elif a == 'symlink':
            os.symlink(n, n, dir_fd=fd)
        elif a == 'rename_out':
            os.rename(n, P, src_dir_fd=fd)
        elif a == 'rename_in':
            os.rename(P, n, dst_dir_fd=fd)
        elif a == 'stat':
            return stat_view(os.stat(n, dir_fd=fd, follow_symlinks=False))
    elif k == 'tmpfile':    # a nameless file in directory P, then linked as P/t
        fd = os.open(P, os.O_TMPFILE | os.O_RDWR, 0o640)
        try:
            os.write(fd, b'tmpfile')
            rfs.link_fd(fd, os.path.join(P, 't'))
            return stat_view(os.fstat(fd))
        finally:
            os.close(fd)
    elif k == 'utime':
        os.utime(P, None if o['now'] else (1000000000, 1000000000))
    elif k == 'open':
        fd = os.open(P, FLAGS[o['flags']] | os.O_NONBLOCK, 0o644)
        try:
            return stat_view(os.fstat(fd))
        finally:
            os.close(fd)
    return None


def watched(o):
    """The names whose times an operation may change: its paths and their
    directories (no atime: relatime makes it depend on history)."""
    out = []
    for k in ('p', 'q'):
        if k in o:
            out += [o[k], o[k].rstrip('/').rpartition('/')[0] or '.']
    return out


def times(root, names):
    out = []
    for n in names:
        try:
            st = os.lstat(os.path.join(root, n))
            out.append((st.st_ino, st.st_mtime_ns, st.st_ctime_ns))
        except OSError:
            out.append(None)
    return out


def time_changes(before, after):
    """Per watched name: 'm' if its mtime moved, 'c' if its ctime did
    (ext4 here has fine-grained timestamps once they are looked at, so a
    change is always seen); '-' when it is not the same inode before and
    after, or missing."""
    out = []
    for b, a in zip(before, after):
        if b is None or a is None or a[0] != b[0]:
            out.append('-')
        else:
            out.append(('m' if a[1] != b[1] else '') + ('c' if a[2] != b[2] else ''))
    return out


def outcome(root, o):
    names = watched(o) if o.get('times') else []
    before = times(root, names)
    uid, gid = USERS[o['user']]
    set_user(uid, gid)
    try:
        res = ['ok', apply(root, o)]
    except OSError as e:
        res = ['err', errno.errorcode.get(e.errno, e.errno)]
    finally:
        set_user(0, 0)
    if names:
        res.append(time_changes(before, times(root, names)))
    return res


def pinned(root, o):
    """Whether a name the operation touches (or a symlink's target, or its
    directory, or the descriptor it uses) is immutable or append-only on
    @root."""
    def flagged(fd):
        try:
            return getflags(fd) & (FL_IMMUTABLE | FL_APPEND)
        except OSError:
            return False
    if o['op'] in ('fd', 'at'):
        fd = FDS.get(root, [None] * SLOTS)[o['slot']]
        if fd is not None and flagged(fd):
            return True
        if fd is not None and o['op'] == 'at':
            try:
                cfd = os.open(o['name'], os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW, dir_fd=fd)
            except OSError:
                cfd = None
            if cfd is not None:
                try:
                    if flagged(cfd):
                        return True
                finally:
                    os.close(cfd)
    names = [os.path.join(root, n.rstrip('/') or '.') for n in watched(o)]
    for n in list(names):
        real = os.path.realpath(n)      # where a symlink on the way leads
        names += [real, os.path.dirname(real)]
    for n in names:
        for follow in (0, os.O_NOFOLLOW):
            try:
                fd = os.open(n, os.O_RDONLY | os.O_NONBLOCK | follow)
            except OSError:
                continue
            try:
                if flagged(fd):
                    return True
            finally:
                os.close(fd)
    return False


def known(o, ra, rb, pin=False, wo=False):
    """Differences allowed.  ext4 moves the directories' mtime and ctime in a
    RENAME_WHITEOUT that fails, and gives a whiteout an ACL from the
    directory's default ACL (the tree comparison leaves whiteouts' ACLs
    out).  On ext4 the VFS refuses a change to an immutable
    or append-only inode (EPERM) before its other checks (EACCES, EISDIR,
    ENOTDIR...); a FUSE inode never has S_IMMUTABLE or S_APPEND, so those
    checks answer first and reservefs says EPERM only after them (@pin: such
    an inode is involved); a write of 0 bytes does not reach the daemon at
    all.  Writing into a FIFO changes its times on ext4,
    not on FUSE, where the kernel keeps them for FIFOs (S_NOCMTIME) and tells
    the filesystem nothing.  One of ext4's own: setting an xattr to the value
    it has already leaves the ctime alone there (reservefs, like most
    filesystems, counts it as a change).  One the FUSE protocol forces: chown(f, -1, -1) by a non-owner
    of a setuid/setgid file is EPERM on ext4 (the chown would drop the bits,
    which only the owner may), but it reaches a FUSE filesystem as the same
    empty SETATTR as the kernel's suid drop before a non-owner's fallocate,
    which must succeed (fs/ops_attr.c, attr_do_setattr); nothing changes
    either way, the ctime neither."""
    if wo and o['op'] == 'getacl' and ra[0] == 'ok' and rb[:2] == ['err', 'ENODATA']:
        return True     # a whiteout's ACL (@wo: the call is on one)
    if (o['op'] == 'rename' and o['flags'] == RENAME_WHITEOUT and ra[:2] == rb[:2] and
            ra[0] == 'err' and len(ra) == 3 and all(t == '' for t in rb[2])):
        return True     # ext4 touches the directories' times of a whiteout rename that failed
    if pin and ra[2:] == rb[2:] and ((ra[:2] == ['err', 'EPERM'] and rb[0] == 'err') or
                                     (o['op'] == 'access' and ra[1] is False) or
                                     (ra[:2] == ['err', 'EPERM'] and rb[:2] == ['ok', 0] and
                                      o.get('fd') == 'pwrite' and o['len'] == 0)):
        return True     # the VFS's own checks come first, and FUSE has no S_IMMUTABLE
    if (o['op'] == 'write' and o['flags'] == 'a' and ra[:2] == rb[:2] and ra[1][1] == 0 and
            len(ra) == 3 and rb[2][0] == '' and ra[2][0] == 'mc' and ra[2][1:] == rb[2][1:]):
        return True     # data through a FIFO: FUSE keeps no times for it (S_NOCMTIME)
    if (o['op'] in ('setxattr', 'setacl') and ra[:2] == rb[:2] and len(ra) == 3 and
            [t.replace('c', '') for t in rb[2]] == ra[2] and rb[2][0] == 'c'):
        return True     # ext4 leaves ctime alone when an xattr gets the value it had
    empty_chown = ((o['op'] == 'chown' and o['uid'] == -1 and o['gid'] == -1) or
                   (o['op'] == 'fd' and o['fd'] == 'fchown' and o['uid'] == -1))
    return (empty_chown and USERS[o['user']][0] != 0 and
            ra[:2] == ['err', 'EPERM'] and rb[:2] == ['ok', None] and ra[2:] == rb[2:])


def diff_snap(a, b):
    lines = []
    for k in sorted(set(a) | set(b)):
        if a.get(k) != b.get(k):
            lines.append('%s: ref %s, fs %s' % (k, a.get(k), b.get(k)))
    return lines


def main():
    if len(sys.argv) == 3 and sys.argv[1] == 'snap':
        print(json.dumps(snapshot(sys.argv[2]), sort_keys=True))
        return 0
    ap = argparse.ArgumentParser()
    ap.add_argument('ref')
    ap.add_argument('fs')
    ap.add_argument('--seed', type=int, default=1)
    ap.add_argument('--ops', type=int, default=3000)
    ap.add_argument('--snap-every', type=int, default=200)
    ap.add_argument('--log', help='every operation and its outcome on REF, one per line')
    a = ap.parse_args()
    if os.geteuid() != 0:
        print('nsdiff: must run as root (it switches users per operation)', file=sys.stderr)
        return 2
    for d in (a.ref, a.fs):
        if os.listdir(d) or stat.S_IMODE(os.stat(d).st_mode) != 0o777:
            print('nsdiff: %s must be an empty directory of mode 0777' % d, file=sys.stderr)
            return 2
    os.setgroups([])
    os.umask(0o022)
    try:
        return run(a)
    finally:
        for fds in FDS.values():
            for fd in fds:
                if fd is not None:
                    os.close(fd)
        unflag(a.ref)
        unflag(a.fs)


def run(a):
    g = Gen(a.seed)
    hist = []
    counts = {}
    for i in range(a.ops):
        o = g.op()
        pin = pinned(a.ref, o)
        try:
            st = os.stat(os.path.join(a.ref, o['p']))
            wo = stat.S_ISCHR(st.st_mode) and st.st_rdev == 0
        except OSError:
            wo = False
        ra = outcome(a.ref, o)
        rb = outcome(a.fs, o)
        hist.append((i, o, ra))
        if a.log:
            with open(a.log, 'a') as f:
                f.write('%d %s -> %s / %s\n' % (i, json.dumps(o), ra, rb))
        counts.setdefault(o['op'], [0, 0])[ra[0] == 'ok' and 1 or 0] += 1
        bad = None
        if ra != rb and not known(o, ra, rb, pin, wo):
            bad = ['operation %d %s: ref %s, fs %s' % (i, json.dumps(o), ra, rb)]
        elif (i + 1) % a.snap_every == 0 or i == a.ops - 1:
            d = diff_snap(snapshot(a.ref), snapshot(a.fs))
            if d:
                bad = ['trees differ after operation %d:' % i] + d[:30]
        if bad:
            print(json.dumps({'ok': False, 'seed': a.seed, 'op': i}))
            print('\n'.join(bad), file=sys.stderr)
            print('last operations (ref outcome):', file=sys.stderr)
            for j, oj, rj in hist[-25:]:
                print('  %d %s -> %s' % (j, json.dumps(oj), rj), file=sys.stderr)
            return 1
    print(json.dumps({'ok': True, 'seed': a.seed, 'ops': a.ops,
                      'entries': len(snapshot(a.fs)),
                      'ok_per_op': {k: v[1] for k, v in sorted(counts.items())},
                      'err_per_op': {k: v[0] for k, v in sorted(counts.items())}}))
    return 0


if __name__ == '__main__':
    sys.exit(main())
