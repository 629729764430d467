"""Supervised tasks: every long-running loop of the daemon is a named task whose
unexpected exit is logged with its name and either restarted (with backoff) or
brings the daemon down — never silent."""
from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Awaitable, Callable

log = logging.getLogger("netd.supervisor")

TaskFactory = Callable[[], Awaitable[None]]


@dataclass
class _Spec:
    name: str
    factory: TaskFactory
    restart: bool
    failures: int = 0


@dataclass
class Supervisor:
    max_backoff: float = 10.0
    failed: asyncio.Event = field(default_factory=asyncio.Event)
    failure: str = ""
    _tasks: dict[str, asyncio.Task[None]] = field(default_factory=dict)
    _specs: dict[str, _Spec] = field(default_factory=dict)
    _stopping: bool = False

    def start(self, name: str, factory: TaskFactory, *, restart: bool = True) -> None:
        spec = _Spec(name, factory, restart)
        self._specs[name] = spec
        self._launch(spec)

    def _launch(self, spec: _Spec) -> None:
        task = asyncio.create_task(self._run(spec), name=spec.name)
        self._tasks[spec.name] = task

    async def _run(self, spec: _Spec) -> None:
        while not self._stopping:
            try:
                await spec.factory()
                if self._stopping:
                    return
                log.error("task %s exited unexpectedly", spec.name)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("task %s crashed", spec.name)
            spec.failures += 1
            if not spec.restart:
                self.failure = f"task {spec.name} stopped"
                self.failed.set()
                return
            delay = min(self.max_backoff, 0.1 * 2 ** min(spec.failures, 10))
            log.warning("restarting task %s in %.1fs (failure %d)", spec.name, delay,
                        spec.failures)
            await asyncio.sleep(delay)

    async def stop(self) -> None:
        """Cancel every task, in reverse start order, and wait for them."""
        self._stopping = True
        for name in reversed(list(self._tasks)):
            task = self._tasks[name]
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass
            except Exception:
                log.exception("task %s failed while stopping", name)
        self._tasks.clear()
