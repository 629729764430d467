"""The files a pod sandbox needs, made without allocating inodes on the host's disk.

Why: on the target's ext4 root, allocating an inode (create, mkdir, symlink) costs
0.15-1 ms of CPU, a hard link 0.01-0.02 ms, a file on tmpfs ~0.03 ms
(bench/pods_full_bench.py; /run is on that disk there, /tmp and /var/lib too). A pod
used to allocate eight; at 300 pods/s that alone was more than a core. Now:

- `mount_point(path)`: the empty file a namespace handle is bind-mounted on
  (/run/netns/<name>, the iproute2 convention) is a new hard link to one unnamed
  inode (O_TMPFILE) per directory. Mounts attach to the name (the dentry), so
  `ip netns exec/delete/list` see separate handles as before.
- The cluster's run directory /run/netd/<cluster> is a tmpfs of its own
  (nsexec.ensure_tmpfs, mounted by cluster_net): sandbox records, UTS handles, the
  pods' /etc files; volatile like the namespaces it describes, removed with the
  cluster.
- `/etc/netns/<netns>` (what `ip netns exec` bind-mounts over /etc) is one symlink
  into that tmpfs, where resolv.conf and hosts live.
"""
from __future__ import annotations

import ctypes
import errno
import logging
import os
import shutil
import threading
from collections.abc import Sequence

from netd.node import names

log = logging.getLogger("netd.node.handles")

O_TMPFILE = getattr(os, "O_TMPFILE", 0o20000000 | os.O_DIRECTORY)
AT_FDCWD = -100
AT_EMPTY_PATH = 0x1000
ETC_FILES = ("resolv.conf", "hosts")    # what a pod's etc directory holds

_libc = ctypes.CDLL(None, use_errno=True)
_libc.linkat.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p,
                         ctypes.c_int]


class _Template:
    """One unnamed inode in a directory, linked under every new name."""

    def __init__(self, directory: str) -> None:
        self.directory = directory
        self.fd: int | None = None
        self.usable = True       # False when the file system has no O_TMPFILE

    def link(self, path: str) -> bool:
        """Link the template at `path`; False when it cannot (plain create then)."""
        for _ in range(2):
            if self.fd is None:
                if not self.usable:
                    return False
                try:
                    self.fd = os.open(self.directory, O_TMPFILE | os.O_WRONLY | os.O_CLOEXEC,
                                      0)
                except OSError as exc:
                    if exc.errno in (errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL):
                        self.usable = False
                        return False
                    raise
            if _libc.linkat(self.fd, b"", AT_FDCWD, path.encode(), AT_EMPTY_PATH) == 0:
                return True
            code = ctypes.get_errno()
            if code == errno.EEXIST:
                raise FileExistsError(code, os.strerror(code), path)
            if code not in (errno.ENOENT, errno.EMLINK, errno.EXDEV):
                raise OSError(code, os.strerror(code), path)
            # ENOENT: every name of the inode is gone (an O_TMPFILE inode is linkable
            # once it had none only before its first link); EMLINK: ext4's 65,000
            # links; EXDEV: the directory is on another mount now (a cluster's run
            # tmpfs mounted again). Either way a fresh inode takes over.
            os.close(self.fd)
            self.fd = None
        return False


_templates: dict[str, _Template] = {}
_lock = threading.Lock()


def forget(under: str) -> None:
    """Close the templates of directories at or below `under` (a cluster's run tmpfs
    being unmounted: an open template would keep the old tmpfs alive)."""
    with _lock:
        for directory in [d for d in _templates if d == under or d.startswith(under + "/")]:
            tpl = _templates.pop(directory)
            if tpl.fd is not None:
                os.close(tpl.fd)


def mount_point(path: str) -> None:
    """Create the empty file `path` to mount a namespace handle on (FileExistsError if
    there is one)."""
    directory = os.path.dirname(path)
    with _lock:
        tpl = _templates.get(directory)
        if tpl is None:
            tpl = _templates[directory] = _Template(directory)
        if tpl.link(path):
            return
    os.close(os.open(path, os.O_RDONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0))


def make_dirs(dirs: Sequence[str], owner: str = "") -> None:
    """Make each directory (and its parents); a failure is logged, not raised: whoever
    needs the directory makes it then (the pods' log directories, made with the
    sandbox)."""
    for d in dirs:
        try:
            os.makedirs(d, exist_ok=True)
        except OSError as exc:
            log.warning("%s: making %s: %s", owner or "pod", d, exc)


# ---- /etc/netns/<netns> -------------------------------------------------------------------

def etc_target(cluster: str, netns: str) -> str:
    return f"{names.cluster_run_dir(cluster)}/etc/{netns}"


def etc_paths(cluster: str, netns: str) -> tuple[str, str]:
    """(the directory on the tmpfs, the /etc/netns link to it)."""
    return etc_target(cluster, netns), names.etc_dir(netns)


def make_etc_dir(target: str, link: str) -> bool:
    """The directory `target` that the pod's files go into, with `link` pointing at
    it; True if it was made just now (nobody can be reading it yet)."""
    try:
        os.mkdir(target, 0o755)
        fresh = True
    except FileExistsError:
        fresh = False
    except FileNotFoundError:
        os.makedirs(target, 0o755, exist_ok=True)
        fresh = True
    try:
        os.symlink(target, link)
    except FileExistsError:
        if os.path.islink(link) and os.readlink(link) == target:
            return fresh
        _remove_path(link)            # an older directory, a stale link
        os.symlink(target, link)
    except FileNotFoundError:
        os.makedirs(os.path.dirname(link), 0o755, exist_ok=True)
        os.symlink(target, link)
    return fresh


def remove_etc_dir(target: str, link: str) -> None:
    """The pod's files, their directory and the link (or an older real directory)."""
    for fname in ETC_FILES:
        try:
            os.unlink(f"{target}/{fname}")
        except FileNotFoundError:
            pass
    try:
        os.rmdir(target)
    except FileNotFoundError:
        pass
    except OSError:
        shutil.rmtree(target, ignore_errors=True)   # something else was put there
    _remove_path(link)


def _remove_path(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    except IsADirectoryError:
        shutil.rmtree(path, ignore_errors=True)
    except OSError as exc:
        if exc.errno != errno.EPERM:     # unlink of a directory: EISDIR or EPERM
            raise
        shutil.rmtree(path, ignore_errors=True)
