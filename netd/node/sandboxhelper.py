"""Pod sandboxes are created and deleted in a helper process, not on the daemon's
threads.

Why: a sandbox is ~25 short syscalls, and on a thread of the daemon each one gives
up the GIL and must win it back from the busy event loop. On the 2-core target a
sandbox job took 8 ms of wall time for 3 ms of CPU while 1,000 pods started, and
that capped the whole path at ~175 pods/s; in a process of its own the same job
takes 2.6 ms and the path reaches ~250 pods/s (bench/pods_full_bench.py).

The helper is a `spawn`-started interpreter running the same code
(SandboxManager._create_with_files / _delete on its namespace threads): it shares
the daemon's mount namespace, so the handles it pins are the daemon's too. It dies
with the daemon (PR_SET_PDEATHSIG); a job cut short that way leaves what any crash
leaves, a record the restarted agent finds (SandboxManager.incomplete) and removes.
If the helper dies, the job in flight fails with EIO and the next job starts a new
helper. NETD_SANDBOX_HELPER=0 keeps the work on the daemon's own threads.
"""
from __future__ import annotations

import asyncio
import ctypes
import errno
import logging
import multiprocessing
import os
import signal
import threading
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import TYPE_CHECKING, Any, Callable, TypeVar

if TYPE_CHECKING:
    from netd.config import Config
    from netd.node.cluster_net import NodeNet
    from netd.node.sandbox import Sandbox, SandboxManager

log = logging.getLogger("netd.node.sandboxhelper")

PR_SET_PDEATHSIG = 1
T = TypeVar("T")

_pool: ProcessPoolExecutor | None = None
_lock = threading.Lock()


def enabled() -> bool:
    return os.environ.get("NETD_SANDBOX_HELPER", "1") != "0"


def _get_pool() -> ProcessPoolExecutor:
    global _pool
    with _lock:
        if _pool is None:
            # One process: the daemon's own threads take the other core.
            _pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"),
                                        initializer=_init_helper,
                                        initargs=(os.getpid(), _log_level()))
        return _pool


async def run(fn: Callable[..., T], *args: Any) -> T:
    """fn(*args) in the helper process."""
    pool = _get_pool()
    try:
        return await asyncio.wrap_future(pool.submit(fn, *args))
    except BrokenProcessPool as exc:
        _discard(pool)
        raise OSError(errno.EIO, f"the sandbox helper process died: {exc}") from exc


def _discard(pool: ProcessPoolExecutor) -> None:
    global _pool
    with _lock:
        if _pool is pool:
            _pool = None
    pool.shutdown(wait=False, cancel_futures=True)


def shutdown() -> None:
    """Stop the helper (after its queued jobs)."""
    global _pool
    with _lock:
        pool, _pool = _pool, None
    if pool is not None:
        pool.shutdown(wait=True)


def release(config: Config, node: NodeNet) -> None:
    """Let the helper close what it holds open in `node`'s namespace (its netlink
    socket and handle would keep a removed node's namespace alive); not waited for."""
    with _lock:
        pool = _pool
    if pool is not None:
        try:
            pool.submit(release_job, config.cluster_name, node.name)
        except (RuntimeError, BrokenProcessPool):
            pass       # shut down or dead: nothing is held any more


def helper_pids() -> list[int]:
    """The helper's pid, if it runs (benchmarks count its memory)."""
    with _lock:
        pool = _pool
    procs = getattr(pool, "_processes", None) or {}
    return [p.pid for p in procs.values() if p.pid is not None]


# ---- in the helper ---------------------------------------------------------------------------

_managers: dict[tuple[str, str], SandboxManager] = {}


def _log_level() -> str:
    return logging.getLevelName(logging.getLogger().getEffectiveLevel())


def _init_helper(parent: int, level: str) -> None:
    from netd import logfmt
    logfmt.setup(level)     # its warnings read like the daemon's, on the same stderr
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:      # the daemon died before the line above
        os._exit(1)
    signal.signal(signal.SIGINT, signal.SIG_IGN)    # ^C on `netd up` is the daemon's


def _manager(config: Config, node: NodeNet) -> SandboxManager:
    from netd.node.sandbox import SandboxManager
    key = (config.cluster_name, node.name)
    mgr = _managers.get(key)
    if mgr is not None and mgr.node != node:
        mgr.close()
        mgr = None
    if mgr is None:
        mgr = _managers[key] = SandboxManager(config, node)
    return mgr


def release_job(cluster: str, node: str) -> None:
    mgr = _managers.pop((cluster, node), None)
    if mgr is not None:
        mgr.close()


def create_job(config: Config, node: NodeNet, sb: Sandbox, hostname: str,
               files: tuple[str, str] | None, dirs: Sequence[str]) -> Sandbox:
    mgr = _manager(config, node)
    return mgr.workers.call(mgr._create_with_files, sb, hostname, files, dirs)


def delete_job(config: Config, node: NodeNet, sb: Sandbox) -> None:
    mgr = _manager(config, node)
    mgr.workers.call(mgr._delete, sb)
