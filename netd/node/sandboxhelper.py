"""Pod sandboxes are created and deleted in a helper process, not on the daemon's
threads.

Why: a sandbox is ~25 short syscalls, and on a thread of the daemon each one gives
up the GIL and must win it back from the busy event loop. On the 2-core target a
sandbox job took 8 ms of wall time for 3 ms of CPU while 1,000 pods started, and
that capped the whole path at ~175 pods/s. In a process of its own the job runs at
the speed of its syscalls.

The protocol is the event loop's own: requests and replies are length-prefixed
pickles on a socketpair the loop writes and reads without blocking (add_reader).
concurrent.futures.ProcessPoolExecutor was tried first: its feeder and manager
threads in the daemon need the GIL for every job too, and it keeps only two jobs
queued in the helper, so the helper sat idle while they waited for the loop.

The helper (`python -m netd.node.sandboxhelper FD LEVEL`) runs the same code,
SandboxManager._create_with_files / _delete on its own namespace worker threads. It
shares the daemon's mount namespace, so the handles it pins are the daemon's too.
It ends when the daemon does: end of file on its socket (after the jobs it has), or
PR_SET_PDEATHSIG. A job cut short by a crash leaves what any crash leaves, a record
the restarted agent finds (SandboxManager.incomplete) and removes. If the helper
dies, the jobs in flight fail with EIO and the next job starts a new helper.
NETD_SANDBOX_HELPER=0 keeps the work on the daemon's own threads.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import ctypes
import errno
import logging
import os
import pickle
import signal
import socket
import struct
import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from netd.config import Config
    from netd.node.cluster_net import NodeNet
    from netd.node.sandbox import SandboxManager

log = logging.getLogger("netd.node.sandboxhelper")

PR_SET_PDEATHSIG = 1
HEADER = struct.Struct("!I")
MgrKey = tuple[str, str]          # (cluster, node)


def enabled() -> bool:
    return os.environ.get("NETD_SANDBOX_HELPER", "1") != "0"


def frame(msg: object) -> bytes:
    data = pickle.dumps(msg, pickle.HIGHEST_PROTOCOL)
    return HEADER.pack(len(data)) + data


def unframe(buf: bytearray) -> list[Any]:
    """The complete messages at the start of buf (removed from it)."""
    out = []
    pos = 0
    while len(buf) - pos >= HEADER.size:
        (n,) = HEADER.unpack_from(buf, pos)
        if len(buf) - pos - HEADER.size < n:
            break
        out.append(pickle.loads(buf[pos + HEADER.size:pos + HEADER.size + n]))
        pos += HEADER.size + n
    del buf[:pos]
    return out


# ---- in the daemon ---------------------------------------------------------------------------

class _Client:
    """One helper process and the calls waiting for its replies. Replies are read on
    the event loop that made the latest call (tests run many loops in turn)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._sock: socket.socket | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._out = bytearray()
        self._writer_armed = False
        self._in = bytearray()
        self._next_id = 0
        self._waiting: dict[int, asyncio.Future[Any]] = {}
        # What every (re)started helper must know: the managers' config and node.
        self._managers: dict[MgrKey, tuple[Config, NodeNet]] = {}

    # -- process --

    def _start(self) -> None:
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        root = str(Path(__file__).resolve().parents[2])
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
        level = logging.getLevelName(logging.getLogger().getEffectiveLevel())
        try:
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "netd.node.sandboxhelper", str(child.fileno()),
                 str(os.getpid()), level],
                pass_fds=(child.fileno(),), stdin=subprocess.DEVNULL, env=env)
        finally:
            child.close()
        parent.setblocking(False)
        self._sock = parent
        self._out.clear()
        self._in.clear()
        for key, (config, node) in self._managers.items():
            self._out += frame((0, "register", (key, config, node)))

    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def _bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """Read replies on `loop` (called on it)."""
        if self._sock is None:
            self._start()
        if self._loop is loop:
            return
        old, self._loop = self._loop, loop
        assert self._sock is not None
        if old is not None and not old.is_closed():
            old.remove_reader(self._sock.fileno())
            old.remove_writer(self._sock.fileno())
        # Replies now go to `loop`: calls made on another one fail rather than hang
        # (one loop at a time is what works: the daemon's, or a test's).
        for key, fut in list(self._waiting.items()):
            other = fut.get_loop()
            if other is not loop:
                del self._waiting[key]
                if not other.is_closed():
                    other.call_soon_threadsafe(_fail, fut, OSError(
                        errno.EIO, "sandbox helper calls moved to another event loop"))
        self._writer_armed = False
        loop.add_reader(self._sock.fileno(), self._on_readable)

    # -- calls --

    async def call(self, op: str, args: tuple[Any, ...]) -> Any:
        loop = asyncio.get_running_loop()
        with self._lock:
            self._bind(loop)
            self._next_id += 1
            rid = self._next_id
            fut: asyncio.Future[Any] = loop.create_future()
            self._waiting[rid] = fut
            self._send(frame((rid, op, args)))
        return await fut

    def register(self, key: MgrKey, config: Config, node: NodeNet) -> None:
        with self._lock:
            cur = self._managers.get(key)
            if cur is not None and cur[0] is config and cur[1] is node:
                return
            self._managers[key] = (config, node)
            if self._sock is not None:
                self._send(frame((0, "register", (key, config, node))))

    def release(self, key: MgrKey) -> None:
        """Not waited for; safe from any thread."""
        with self._lock:
            if self._managers.pop(key, None) is not None and self._sock is not None:
                self._send(frame((0, "release", (key,))))

    def _send(self, data: bytes) -> None:
        # Under self._lock. A request is ~1 KB and the socket buffer holds hundreds;
        # what does not fit waits for the loop's writer callback.
        self._out += data
        self._flush()
        if self._out and not self._writer_armed and self._loop is not None \
                and not self._loop.is_closed():
            self._writer_armed = True
            self._loop.call_soon_threadsafe(self._arm_writer)

    def _flush(self) -> None:
        assert self._sock is not None
        while self._out:
            try:
                n = self._sock.send(self._out)
            except BlockingIOError:
                return
            except OSError:
                self._out.clear()      # the helper is gone: the reader reports it
                return
            del self._out[:n]

    def _arm_writer(self) -> None:
        with self._lock:
            if self._sock is not None and self._loop is not None:
                self._loop.add_writer(self._sock.fileno(), self._on_writable)

    def _on_writable(self) -> None:
        with self._lock:
            if self._sock is None:
                return
            self._flush()
            if not self._out and self._loop is not None:
                self._loop.remove_writer(self._sock.fileno())
                self._writer_armed = False

    def _on_readable(self) -> None:
        assert self._sock is not None
        try:
            data = self._sock.recv(1 << 18)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._died()
            return
        self._in += data
        for rid, ok, value in unframe(self._in):
            fut = self._waiting.pop(rid, None)
            if fut is None or fut.done():
                continue
            if ok:
                fut.set_result(value)
            else:
                fut.set_exception(value)

    def _died(self) -> None:
        with self._lock:
            code = self._proc.poll() if self._proc is not None else None
            log.error("the sandbox helper process ended (exit status %s); %d calls fail",
                      code, len(self._waiting))
            self._close_locked()
            waiting, self._waiting = self._waiting, {}
        for fut in waiting.values():
            if not fut.done():
                fut.set_exception(OSError(errno.EIO, "the sandbox helper process died"))

    def _close_locked(self) -> None:
        sock, loop = self._sock, self._loop
        self._sock, self._loop, self._writer_armed = None, None, False
        self._out.clear()
        self._in.clear()
        if sock is None:
            return

        def close() -> None:
            # Out of the loop's selector before the fd number can be reused.
            if loop is not None and not loop.is_closed():
                loop.remove_reader(sock.fileno())
                loop.remove_writer(sock.fileno())
            sock.close()
        if loop is None or loop.is_closed() or not loop.is_running() or _current_loop() is loop:
            close()
        else:
            loop.call_soon_threadsafe(close)

    def detach(self) -> subprocess.Popen[bytes] | None:
        """Hang up on the helper: it finishes the jobs it has, then exits."""
        with self._lock:
            proc, sock = self._proc, self._sock
            if sock is not None:
                # Requests not yet sent still go: a creation half made is recorded.
                sock.setblocking(True)
                try:
                    sock.sendall(self._out)
                    sock.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
            self._close_locked()
            self._proc = None
            self._managers.clear()
            waiting, self._waiting = self._waiting, {}
        # Their replies will not be read (a call made after this starts a new helper).
        for fut in waiting.values():
            loop = fut.get_loop()
            if not loop.is_closed():
                loop.call_soon_threadsafe(_fail, fut, OSError(
                    errno.ESHUTDOWN, "the sandbox helper was stopped"))
        return proc


def _fail(fut: asyncio.Future[Any], exc: BaseException) -> None:
    if not fut.done():
        fut.set_exception(exc)


def _current_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def _reap(proc: subprocess.Popen[bytes] | None, timeout: float = 30.0) -> None:
    if proc is None:
        return
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        log.error("the sandbox helper did not stop in %.0f s; killing it", timeout)
        proc.kill()
        proc.wait()


_client = _Client()


async def create(config: Config, node: NodeNet, namespace: str, pod: str, ip: str,
                 hostname: str, files: tuple[str, str] | None, dirs: Sequence[str]) -> None:
    key = (config.cluster_name, node.name)
    _client.register(key, config, node)
    await _client.call("create", (key, namespace, pod, ip, hostname, files, tuple(dirs)))


async def delete(config: Config, node: NodeNet, namespace: str, pod: str) -> None:
    key = (config.cluster_name, node.name)
    _client.register(key, config, node)
    await _client.call("delete", (key, namespace, pod))


def release(config: Config, node: NodeNet) -> None:
    """Let the helper close what it holds open in `node`'s namespace (its netlink
    socket and handle would keep a removed node's namespace alive)."""
    _client.release((config.cluster_name, node.name))


def shutdown() -> None:
    """Stop the helper after the jobs it has (blocking)."""
    _reap(_client.detach())


async def aclose() -> None:
    """shutdown() for the event loop that reads the helper's replies."""
    proc = _client.detach()
    await asyncio.get_running_loop().run_in_executor(None, _reap, proc)


def helper_pids() -> list[int]:
    """The helper's pid, if it runs (benchmarks count its CPU and memory)."""
    pid = _client.pid()
    return [] if pid is None else [pid]


# ---- in the helper ---------------------------------------------------------------------------

class _Server:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.wlock = threading.Lock()
        self.managers: dict[MgrKey, SandboxManager] = {}
        self.running: dict[MgrKey, set[concurrent.futures.Future[Any]]] = {}

    def serve(self) -> None:
        buf = bytearray()
        while True:
            data = self.sock.recv(1 << 18)
            if not data:
                break
            buf += data
            for rid, op, args in unframe(buf):
                self.handle(rid, op, args)
        for key in list(self.managers):
            self.release(key)

    def handle(self, rid: int, op: str, args: tuple[Any, ...]) -> None:
        if op == "register":
            key, config, node = args
            self.release(key)
            from netd.node.sandbox import SandboxManager
            self.managers[key] = SandboxManager(config, node)
        elif op == "release":
            self.release(args[0])
        elif op in ("create", "delete"):
            key = args[0]
            mgr = self.managers.get(key)
            if mgr is None:
                self.reply(rid, False, OSError(errno.ENOENT, f"no node {key[1]!r}"))
                return
            fut: concurrent.futures.Future[Any]
            if op == "create":
                namespace, pod, ip, hostname, files, dirs = args[1:]
                sb = mgr.sandbox_for(namespace, pod, ip, hostname)
                # The reply carries no value: the daemon has the same Sandbox already.
                fut = mgr.workers.submit(mgr._create_with_files, sb, hostname, files, dirs)
            else:
                namespace, pod = args[1:]
                fut = mgr.workers.submit(mgr._delete, mgr.sandbox_for(namespace, pod, ""))
            running = self.running.setdefault(key, set())
            running.add(fut)
            fut.add_done_callback(lambda f: self.done(rid, running, f))
        else:
            self.reply(rid, False, ValueError(f"unknown sandbox helper call {op!r}"))

    def done(self, rid: int, running: set[concurrent.futures.Future[Any]],
             fut: concurrent.futures.Future[Any]) -> None:
        running.discard(fut)
        exc = fut.exception()
        self.reply(rid, exc is None, None if exc is None else exc)

    def release(self, key: MgrKey) -> None:
        """Close a manager once the jobs it has are done (its node may be going)."""
        mgr = self.managers.pop(key, None)
        if mgr is None:
            return
        concurrent.futures.wait(list(self.running.pop(key, ())))
        mgr.close()

    def reply(self, rid: int, ok: bool, value: object) -> None:
        try:
            data = frame((rid, ok, value))
        except Exception:   # noqa: BLE001 - an exception that does not pickle
            data = frame((rid, False, OSError(getattr(value, "errno", None) or errno.EIO,
                                              str(value))))
        with self.wlock:
            try:
                self.sock.sendall(data)
            except OSError:
                pass        # the daemon is gone; nobody waits for this reply


def main(argv: list[str]) -> int:
    fd, parent, level = int(argv[0]), int(argv[1]), argv[2]
    from netd import logfmt
    logfmt.setup(level)     # its warnings read like the daemon's, on the same stderr
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:      # the daemon died before the line above
        return 1
    signal.signal(signal.SIGINT, signal.SIG_IGN)    # ^C on `netd up` is the daemon's
    _Server(socket.socket(fileno=fd)).serve()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
