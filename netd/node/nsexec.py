"""Working inside namespaces without a process per pod.

- `NsWorkers`: a few dedicated threads that may change their own network/UTS
  namespaces (unshare/setns affect only the calling thread) and always return to the
  daemon's namespaces after each job. Sandbox creation, node namespaces and sockets
  opened inside a pod all run here, so the event loop's thread never moves.
- Namespace handles follow iproute2: a file under /run/netns bind-mounted from
  /proc/thread-self/ns/net, on a shared mount so other mount namespaces see removals.
- `spawn`: a child process entering a pod's net and UTS namespaces with a mount
  namespace of its own, as `ip netns exec` does, then exec'ing argv.

Python 3.11 has no os.setns/os.unshare, hence the libc calls through ctypes.
"""
from __future__ import annotations

import asyncio
import ctypes
import errno
import fcntl
import logging
import os
import queue
import stat
import termios
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any, TypeVar

from netd.node import handles, names

if TYPE_CHECKING:
    from netd.node.sandbox import Sandbox

log = logging.getLogger("netd.node.nsexec")

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWNET = 0x40000000
MS_RDONLY, MS_REMOUNT, MS_BIND, MS_REC = 1, 32, 4096, 16384
MS_PRIVATE, MS_SLAVE, MS_SHARED = 1 << 18, 1 << 19, 1 << 20
MNT_DETACH = 2

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong,
                        ctypes.c_void_p]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
_libc.setns.argtypes = [ctypes.c_int, ctypes.c_int]
_libc.unshare.argtypes = [ctypes.c_int]
_libc.sethostname.argtypes = [ctypes.c_char_p, ctypes.c_size_t]

T = TypeVar("T")


def _check(result: int, what: str) -> None:
    if result != 0:
        code = ctypes.get_errno()
        raise OSError(code, f"{what}: {os.strerror(code)}")


def unshare(flags: int) -> None:
    _check(_libc.unshare(flags), "unshare")


def setns(fd: int, nstype: int) -> None:
    _check(_libc.setns(fd, nstype), "setns")


def mount(src: str | None, target: str, fstype: str | None, flags: int,
          data: str | None = None) -> None:
    _check(_libc.mount(src.encode() if src else None, target.encode(),
                       fstype.encode() if fstype else None, flags,
                       ctypes.c_char_p(data.encode()) if data else None),
           f"mount {target}")


def umount(target: str) -> None:
    _check(_libc.umount2(target.encode(), MNT_DETACH), f"umount {target}")


def sethostname(name: str) -> None:
    raw = name.encode()
    _check(_libc.sethostname(raw, len(raw)), "sethostname")


def ensure_shared_dir(path: str) -> None:
    """Make `path` a shared mount point (iproute2 does this for /run/netns): mount
    namespaces copied from ours (pod processes) then receive our unmounts instead of
    pinning deleted namespaces alive."""
    os.makedirs(path, mode=0o755, exist_ok=True)
    try:
        mount(None, path, None, MS_SHARED | MS_REC)
        if is_mount_point(path):
            return
    except OSError as exc:
        if exc.errno != errno.EINVAL:
            raise
    mount(path, path, None, MS_BIND | MS_REC)
    mount(None, path, None, MS_SHARED | MS_REC)


def ensure_tmpfs(path: str) -> None:
    """A tmpfs at `path` (shared, as ensure_shared_dir), unless the top mount there is
    one already: a restarted daemon keeps what its predecessor mounted."""
    os.makedirs(path, mode=0o755, exist_ok=True)
    if mount_fstype(path) != "tmpfs":
        mount("tmpfs", path, "tmpfs", 0, "mode=0755")
    mount(None, path, None, MS_SHARED | MS_REC)


def unmount_all(path: str) -> None:
    """Unmount every layer mounted at `path`."""
    while is_mount_point(path):
        umount(path)


def mount_fstype(path: str) -> str:
    """The file system type of the top mount at `path`; "" if nothing is mounted there."""
    real = os.path.realpath(path)
    fstype = ""
    with open("/proc/self/mountinfo") as f:
        for line in f:
            parts = line.split()
            if parts[4] == real:
                fstype = parts[parts.index("-") + 1]    # later lines are on top
    return fstype


def is_mount_point(path: str) -> bool:
    return mount_fstype(path) != ""


def bind_ns(kind: str, target: str) -> None:
    """Pin the calling thread's namespace `kind` ("net", "uts") at `target`."""
    handles.mount_point(target)
    try:
        mount(f"/proc/thread-self/ns/{kind}", target, None, MS_BIND)
    except OSError:
        os.unlink(target)
        raise


def unbind_ns(target: str) -> bool:
    """Unmount and remove a namespace handle; False if there was none."""
    try:
        umount(target)
    except OSError as exc:
        if exc.errno not in (errno.EINVAL, errno.ENOENT):
            raise
    try:
        os.unlink(target)
    except FileNotFoundError:
        return False
    return True


def is_ns_handle(path: str) -> bool:
    """True if `path` is a mounted namespace (nsfs) handle, not a leftover empty file."""
    try:
        return os.stat(path).st_dev != os.stat(os.path.dirname(path)).st_dev
    except OSError:
        return False


def enter(path: str, nstype: int) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        setns(fd, nstype)
    finally:
        os.close(fd)


# ---- the worker threads -----------------------------------------------------------------

class NsWorkers:
    """Threads free to switch namespaces; each job ends back in the home namespaces
    (those of the thread that built the pool). A thread that cannot get home exits
    and is replaced, so no later job runs in a wrong namespace."""

    def __init__(self, threads: int = 2, name: str = "netd-ns") -> None:
        self._home_net = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        self._home_uts = os.open("/proc/thread-self/ns/uts", os.O_RDONLY | os.O_CLOEXEC)
        self._jobs: queue.SimpleQueue[tuple[Callable[[], Any], Future[Any]] | None] = \
            queue.SimpleQueue()
        self._name = name
        self._threads: list[threading.Thread] = []
        self._closed = False
        for _ in range(threads):
            self._start()

    def _start(self) -> None:
        t = threading.Thread(target=self._loop, name=self._name, daemon=True)
        self._threads.append(t)
        t.start()

    def _loop(self) -> None:
        while True:
            item = self._jobs.get()
            if item is None:
                return
            fn, fut = item
            if not fut.set_running_or_notify_cancel():
                continue
            try:
                fut.set_result(fn())
            except BaseException as exc:  # noqa: BLE001 - handed to the awaiting caller
                fut.set_exception(exc)
            try:
                setns(self._home_net, CLONE_NEWNET)
                setns(self._home_uts, CLONE_NEWUTS)
            except OSError:
                log.critical("namespace worker cannot return to the host namespaces; "
                             "replacing it", exc_info=True)
                if not self._closed:
                    self._start()
                return

    def submit(self, fn: Callable[..., T], *args: Any) -> Future[T]:
        fut: Future[T] = Future()
        self._jobs.put(((lambda: fn(*args)), fut))
        return fut

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.wrap_future(self.submit(fn, *args))

    def call(self, fn: Callable[..., T], *args: Any) -> T:
        """Blocking variant for synchronous callers (cleanup, tests)."""
        return self.submit(fn, *args).result()

    def close(self) -> None:
        self._closed = True
        for _ in self._threads:
            self._jobs.put(None)
        for t in self._threads:
            if t is not threading.current_thread():
                t.join(timeout=5)
        os.close(self._home_net)
        os.close(self._home_uts)


_shared: NsWorkers | None = None
_shared_lock = threading.Lock()


def workers() -> NsWorkers:
    """The process-wide pool (two threads: this is a two-core target and the kernel
    serialises much of namespace creation anyway)."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = NsWorkers()
        return _shared


def in_netns(path: str, fn: Callable[[], T]) -> T:
    """Run fn inside the netns at `path` on a worker thread (blocking)."""
    def job() -> T:
        enter(path, CLONE_NEWNET)
        return fn()
    return workers().call(job)


# ---- the pod's UTS namespace ------------------------------------------------------------------

_uts_lock = threading.Lock()


async def ensure_uts(sb: Sandbox) -> None:
    """The pod's UTS namespace, made when the first process enters the pod (a pod of
    built-in servers never needs one; see netd.node.sandbox)."""
    if not is_ns_handle(sb.uts_path):
        await workers().run(_make_uts, sb)


def _make_uts(sb: Sandbox) -> None:
    # One at a time: two first processes of a pod (a container and an exec) must
    # share one namespace, not each pin its own.
    with _uts_lock:
        if is_ns_handle(sb.uts_path):
            return
        if not is_ns_handle(sb.netns_path):
            raise FileNotFoundError(errno.ENOENT, "the pod sandbox is gone", sb.netns_path)
        try:
            os.unlink(sb.uts_path)       # an empty leftover of a crash
        except FileNotFoundError:
            pass
        unshare(CLONE_NEWUTS)
        sethostname(sb.hostname)
        bind_ns("uts", sb.uts_path)


# ---- processes ------------------------------------------------------------------------------

def _prepare_child(net_fd: int, uts_fd: int, etc: str, mounts: Sequence[tuple[str, str, bool]],
                   cwd: str | None, tty_fd: int | None) -> None:
    """Runs in the forked child before exec (everything it needs was computed before
    the fork; it takes no Python-level locks)."""
    try:
        setns(net_fd, CLONE_NEWNET)
        setns(uts_fd, CLONE_NEWUTS)
        unshare(CLONE_NEWNS)
        # Slave, not private (as `ip netns exec`): our mounts stay in the child, and
        # the daemon's unmounts of deleted namespaces still reach it.
        mount(None, "/", None, MS_SLAVE | MS_REC)
        try:
            # A fresh sysfs shows the pod's own interfaces under /sys/class/net.
            umount("/sys")
            mount("sysfs", "/sys", "sysfs", 0)
        except OSError:
            pass
        for fname in ("resolv.conf", "hosts"):
            src = f"{etc}/{fname}"
            if os.path.exists(src) and os.path.exists(f"/etc/{fname}"):
                mount(src, f"/etc/{fname}", None, MS_BIND)
        for src, dst, read_only in mounts:
            if os.path.isdir(src):
                os.makedirs(dst, exist_ok=True)
            else:
                os.makedirs(os.path.dirname(dst) or "/", exist_ok=True)
                if not os.path.exists(dst):
                    os.close(os.open(dst, os.O_WRONLY | os.O_CREAT, 0o644))
            mount(src, dst, None, MS_BIND | MS_REC)
            if read_only:
                mount(None, dst, None, MS_BIND | MS_REMOUNT | MS_RDONLY)
        if tty_fd is not None:
            # The terminal becomes the controlling one of a new session. By the slave's
            # own descriptor and with our own setsid: uvloop (the daemon's loop) runs
            # this hook before it sets up the child's stdio and session, the stdlib
            # after (then setsid fails with EPERM, already a leader, and is ignored).
            try:
                os.setsid()
            except OSError:
                pass
            fcntl.ioctl(tty_fd, termios.TIOCSCTTY, 0)
        if cwd:
            os.chdir(cwd)
    except OSError as exc:
        os.write(2, f"netd: cannot enter the pod sandbox: {exc}\n".encode())
        raise


async def spawn(sb: Sandbox, argv: list[str], *, env: dict[str, str],
                cwd: str | None = None, mounts: Sequence[tuple[str, str, bool]] = (),
                stdin: int | None, stdout: int | None, stderr: int | None,
                start_new_session: bool = True,
                tty: bool = False) -> asyncio.subprocess.Process:
    """Start argv inside the pod `sb`. A missing binary raises FileNotFoundError."""
    if not argv:
        raise FileNotFoundError(errno.ENOENT, "no command given")
    await ensure_uts(sb)
    net_fd = os.open(sb.netns_path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        uts_fd = os.open(sb.uts_path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        os.close(net_fd)
        raise
    etc = names.etc_dir(sb.netns)
    mounts = [(str(s), str(d), bool(r)) for s, d, r in mounts]
    try:
        # Resolve a bare name against the env's PATH up front: the child would look it
        # up in the daemon's PATH otherwise.
        program = _which(argv[0], env.get("PATH"))
        tty_fd = (stdin if isinstance(stdin, int) and stdin >= 0 else 0) if tty else None
        return await asyncio.create_subprocess_exec(
            program, *argv[1:], env=env, stdin=stdin, stdout=stdout, stderr=stderr,
            start_new_session=start_new_session or tty,
            preexec_fn=lambda: _prepare_child(net_fd, uts_fd, etc, mounts, cwd, tty_fd))
    finally:
        os.close(net_fd)
        os.close(uts_fd)


def _which(program: str, path: str | None) -> str:
    if "/" in program:
        return program
    for d in (path or os.defpath).split(os.pathsep):
        candidate = os.path.join(d or ".", program)
        try:
            st = os.stat(candidate)
        except OSError:
            continue
        if stat.S_ISREG(st.st_mode) and os.access(candidate, os.X_OK):
            return candidate
    raise FileNotFoundError(errno.ENOENT, f'exec: "{program}": executable file not found '
                                          f"in $PATH", program)
