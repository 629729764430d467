"""One ordered writer thread for the node agents' per-pod file system work.

Why: each file operation on the event loop cost 0.5-0.8 ms while sandboxes were being
built (disk latency plus a GIL hand-off per syscall), and a pod needs several (its
adoption record twice, its log rotation, FIFO clean-up). On this thread they cost the
loop nothing but a queue append.

Why one thread, in order: a pod's container record must end with the latest state.
Jobs run in submission order; a job submitted under a key that is still queued replaces
the queued one in place (latest wins, coalescing a burst of saves of one pod into one
write), so an earlier record can never land after a later one. Jobs under other keys
keep their places, so the pod directory's removal, queued after its last save, runs
after it.

A daemon killed with SIGKILL loses at most the jobs still queued (milliseconds of
work; the record it would have written is re-derived on adoption as for a daemon killed
a moment earlier). A clean shutdown flushes the queue (`flush`).
"""
from __future__ import annotations

import asyncio
import logging
import threading
from collections import OrderedDict
from typing import Any, Callable, Hashable, TypeVar

log = logging.getLogger("netd.node.filewriter")

T = TypeVar("T")


class FileWriter:
    def __init__(self, name: str = "netd-files") -> None:
        self.name = name
        self._cond = threading.Condition()
        self._jobs: OrderedDict[Hashable, Callable[[], None]] = OrderedDict()
        self._running = False         # a job is being run right now
        self._thread: threading.Thread | None = None
        self._seq = 0

    # ---- submitting -----------------------------------------------------------------------

    def submit(self, key: Hashable, fn: Callable[[], None]) -> None:
        """Queue fn; a queued job under the same key is replaced (in its place)."""
        with self._cond:
            self._jobs[key] = fn
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name=self.name,
                                                daemon=True)
                self._thread.start()
            self._cond.notify()

    def run(self, fn: Callable[[], T]) -> asyncio.Future[T]:
        """Queue fn (never coalesced) and return a future of its result, resolved on the
        calling loop: for work whose result or completion the caller needs."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[T] = loop.create_future()

        def settle(ok: bool, value: Any) -> None:
            if fut.done():
                return
            if ok:
                fut.set_result(value)
            else:
                fut.set_exception(value)

        def job() -> None:
            try:
                value: Any = fn()
                ok = True
            except BaseException as exc:  # noqa: B036 - handed to the awaiting caller
                value, ok = exc, False
            try:
                loop.call_soon_threadsafe(settle, ok, value)
            except RuntimeError:
                pass    # the loop closed meanwhile: nobody awaits any more

        with self._cond:
            self._seq += 1
            key = ("@run", self._seq)
        self.submit(key, job)
        return fut

    # ---- draining ---------------------------------------------------------------------------

    def pending(self) -> int:
        with self._cond:
            return len(self._jobs) + (1 if self._running else 0)

    def flush(self, timeout: float | None = None) -> bool:
        """Block until every job queued so far ran (shutdown). False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._jobs and not self._running, timeout)

    def _loop(self) -> None:
        while True:
            with self._cond:
                self._running = False
                self._cond.notify_all()
                self._cond.wait_for(lambda: bool(self._jobs))
                _key, fn = self._jobs.popitem(last=False)
                self._running = True
            try:
                fn()
            except Exception:   # a failed write must not stop the writer for every pod
                log.exception("file job failed")


_writer: FileWriter | None = None
_writer_lock = threading.Lock()


def writer() -> FileWriter:
    """The process's writer (shared by all node agents: one ordered queue)."""
    global _writer
    with _writer_lock:
        if _writer is None:
            _writer = FileWriter()
        return _writer
