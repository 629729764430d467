"""Controller base: informers → keys → queue → workers, over a real store and ObjectAPI.

Backoff timing runs on a FakeClock; every wait is on a condition with a deadline.
"""
from __future__ import annotations

import asyncio
import logging
from typing import Any, AsyncIterator, Callable

import pytest

from netd.api import errors
from netd.client.client import Client, resolve
from netd.client.clock import FakeClock
from netd.client.controller import Controller, Histogram
from netd.client.informer import Informer
from netd.registry.bootstrap import ensure_system_objects
from netd.registry.objectapi import ObjectAPI
from netd.store.sqlite import SQLiteStore

DEADLINE = 5.0
CM = resolve("ConfigMap")
Obj = dict[str, Any]


def cm(name: str, labels: dict[str, str] | None = None, data: dict[str, str] | None = None
       ) -> Obj:
    meta: Obj = {"name": name, "namespace": "default"}
    if labels:
        meta["labels"] = labels
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": data or {}}


class Recording(Controller):
    def __init__(self, informer: Informer, **kw: Any) -> None:
        super().__init__("recording", **kw)
        self.inf = self.watch(informer)
        self.calls: list[str] = []
        self.fail: dict[str, int] = {}            # key -> failures still to produce
        self.raise_with: Exception | None = None
        self.gates: dict[str, asyncio.Event] = {}
        self.entered: dict[str, asyncio.Event] = {}
        self.active: dict[str, int] = {}
        self.max_active = 0
        self.synced_at_call: list[bool] = []

    async def reconcile(self, key: str) -> None:
        self.calls.append(key)
        self.synced_at_call.append(self.inf.has_synced)
        self.active[key] = self.active.get(key, 0) + 1
        self.max_active = max(self.max_active, self.active[key])
        try:
            self.entered.setdefault(key, asyncio.Event()).set()
            gate = self.gates.get(key)
            if gate is not None:
                await gate.wait()
            if self.fail.get(key, 0) != 0:
                self.fail[key] -= 1
                raise self.raise_with or RuntimeError(f"cannot converge {key}")
        finally:
            self.active[key] -= 1


class Signal:
    """Wakes waiters whenever an informer delivers anything."""

    def __init__(self, inf: Informer) -> None:
        self._ev = asyncio.Event()
        inf.add_handler(self._poke, lambda o, n: self._poke(n), self._poke)

    def _poke(self, _obj: Obj) -> None:
        self._ev.set()
        self._ev = asyncio.Event()

    async def until(self, predicate: Callable[[], bool]) -> None:
        async def loop() -> None:
            while not predicate():
                await self._ev.wait()
        await asyncio.wait_for(loop(), DEADLINE)


@pytest.fixture
async def env() -> AsyncIterator[tuple[ObjectAPI, Client]]:
    store = SQLiteStore(":memory:")
    api = ObjectAPI(store)
    await ensure_system_objects(api)
    yield api, Client(api)
    await store.close()


async def wait(ctrl: Controller, predicate: Callable[[], bool]) -> None:
    await asyncio.wait_for(ctrl.wait_until(predicate), DEADLINE)


class Running:
    def __init__(self, ctrl: Controller) -> None:
        self.ctrl = ctrl
        self.task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Controller:
        self.task = asyncio.create_task(self.ctrl.run(run_informers=True))
        for inf in self.ctrl.informers:
            await asyncio.wait_for(inf.wait_synced(), DEADLINE)
        return self.ctrl

    async def __aexit__(self, *exc: object) -> None:
        self.ctrl.stop()
        assert self.task is not None
        await asyncio.wait_for(self.task, DEADLINE)
        assert all(not inf.running for inf in self.ctrl.informers)


async def test_burst_of_changes_reconciles_each_key_once(
        env: tuple[ObjectAPI, Client]) -> None:
    api, client = env
    inf = Informer(api, CM)
    signal = Signal(inf)
    ctrl = Recording(inf, workers=3)
    ctrl.gates["default/a"] = asyncio.Event()
    async with Running(ctrl):
        await client.create(CM, cm("a"))
        await asyncio.wait_for(ctrl.entered.setdefault("default/a", asyncio.Event()).wait(),
                               DEADLINE)
        # "a" is held by a worker; a burst of changes to it and two other objects.
        for i in range(5):
            await client.patch(CM, "default", "a", {"data": {"v": str(i)}})
        await client.create(CM, cm("b"))
        await client.patch(CM, "default", "b", {"data": {"v": "1"}})
        await client.create(CM, cm("c"))
        await signal.until(lambda: inf.resource_version == api.store.revision)
        # Other workers are free, yet none may take "a" while it is being processed.
        await wait(ctrl, lambda: ctrl.calls.count("default/c") == 1)
        assert ctrl.calls.count("default/a") == 1
        ctrl.gates["default/a"].set()
        await wait(ctrl, ctrl.idle)
    assert set(ctrl.calls) == {"default/a", "default/b", "default/c"}
    assert ctrl.calls.count("default/b") in (1, 2)  # create and patch may land apart
    assert ctrl.calls.count("default/c") == 1
    assert ctrl.calls.count("default/a") == 2     # one for the burst, not five
    assert ctrl.max_active == 1
    assert ctrl.metrics.reconciles_total == len(ctrl.calls)
    assert ctrl.metrics.errors_total == 0


async def test_failing_key_retries_with_backoff_then_forgets(
        env: tuple[ObjectAPI, Client], caplog: pytest.LogCaptureFixture) -> None:
    api, client = env
    clock = FakeClock()
    ctrl = Recording(Informer(api, CM), clock=clock)
    key = "default/a"
    ctrl.fail[key] = 2
    async with Running(ctrl):
        await client.create(CM, cm("a"))
        await wait(ctrl, lambda: len(ctrl.calls) == 1)
        assert ctrl.queue.num_requeues(key) == 1 and ctrl.queue.waiting == 1
        clock.advance(0.004)
        assert len(ctrl.queue) == 0                       # 5 ms not yet up
        clock.advance(0.001)
        await wait(ctrl, lambda: len(ctrl.calls) == 2)
        assert ctrl.queue.num_requeues(key) == 2
        clock.advance(0.009)
        assert len(ctrl.queue) == 0                       # second backoff is 10 ms
        clock.advance(0.001)
        await wait(ctrl, lambda: len(ctrl.calls) == 3)
        await wait(ctrl, ctrl.idle)
        assert ctrl.queue.num_requeues(key) == 0          # success forgets the key
    assert ctrl.calls == [key] * 3
    assert (ctrl.metrics.reconciles_total, ctrl.metrics.errors_total) == (3, 2)
    assert ctrl.metrics.duration.count == 3
    failures = [r for r in caplog.records if r.name == "netd.controller"
                and "failed" in r.getMessage()]
    assert len(failures) == 2
    assert all("recording" in r.getMessage() and key in r.getMessage() for r in failures)


@pytest.mark.parametrize("exc,level,traceback", [
    (RuntimeError("bug"), logging.ERROR, True),
    (errors.Conflict.stale("configmaps", "", "a"), logging.INFO, False),
    (errors.NotFound.of("configmaps", "", "a"), logging.WARNING, False),
], ids=["unexpected", "conflict", "api-error"])
async def test_error_logging_by_kind(env: tuple[ObjectAPI, Client],
                                     caplog: pytest.LogCaptureFixture, exc: Exception,
                                     level: int, traceback: bool) -> None:
    caplog.set_level(logging.DEBUG, logger="netd.controller")
    api, client = env
    ctrl = Recording(Informer(api, CM), clock=FakeClock())
    ctrl.fail["default/a"] = 1
    ctrl.raise_with = exc
    async with Running(ctrl):
        await client.create(CM, cm("a"))
        await wait(ctrl, lambda: ctrl.metrics.errors_total == 1)
    recs = [r for r in caplog.records if r.name == "netd.controller" and
            "default/a" in r.getMessage()]
    assert [r.levelno for r in recs] == [level]
    assert (recs[0].exc_info is not None) == traceback


async def test_max_retries_drops_the_key(env: tuple[ObjectAPI, Client]) -> None:
    api, client = env
    clock = FakeClock()
    ctrl = Recording(Informer(api, CM), clock=clock, max_retries=2)
    ctrl.fail["default/a"] = -1   # fail forever
    async with Running(ctrl):
        await client.create(CM, cm("a"))
        for n in (1, 2, 3):
            await wait(ctrl, lambda: len(ctrl.calls) == n)
            clock.advance(10.0)
        await wait(ctrl, ctrl.idle)
    assert len(ctrl.calls) == 3
    assert ctrl.metrics.dropped_total == 1
    assert ctrl.queue.num_requeues("default/a") == 0


async def test_workers_start_only_after_informers_synced(
        env: tuple[ObjectAPI, Client]) -> None:
    api, client = env
    await client.create(CM, cm("a"))
    inf = Informer(api, CM)
    ctrl = Recording(inf)
    run = asyncio.create_task(ctrl.run())           # informers are run by someone else
    ctrl.enqueue("manual/key")
    for _ in range(20):
        await asyncio.sleep(0)                      # let the loop turn; no time passes
    assert ctrl.calls == []
    inf_task = asyncio.create_task(inf.run())
    await wait(ctrl, lambda: len(ctrl.calls) == 2)
    assert sorted(ctrl.calls) == ["default/a", "manual/key"]
    assert all(ctrl.synced_at_call)
    ctrl.stop()
    inf.stop()
    await asyncio.wait_for(asyncio.gather(run, inf_task), DEADLINE)


async def test_keys_for_maps_old_and_new_objects(env: tuple[ObjectAPI, Client]) -> None:
    api, client = env

    class Owners(Controller):
        def __init__(self) -> None:
            super().__init__("owners")
            self.watch(Informer(api, CM), keys_for=self.owner_keys)
            self.calls: list[str] = []

        @staticmethod
        def owner_keys(obj: Obj) -> list[str]:
            owner = (obj["metadata"].get("labels") or {}).get("owner")
            return [f"default/{owner}"] if owner else []

        async def reconcile(self, key: str) -> None:
            self.calls.append(key)

    ctrl = Owners()
    async with Running(ctrl):
        await client.create(CM, cm("child", labels={"owner": "x"}))
        await wait(ctrl, lambda: ctrl.calls == ["default/x"])
        await client.patch(CM, "default", "child", {"metadata": {"labels": {"owner": "y"}}})
        await wait(ctrl, lambda: len(ctrl.calls) == 3)
        assert sorted(ctrl.calls[1:]) == ["default/x", "default/y"]
        await client.delete(CM, "default", "child")
        await wait(ctrl, lambda: len(ctrl.calls) == 4)
        assert ctrl.calls[3] == "default/y"
        await client.create(CM, cm("orphan"))          # maps to no key
        await client.create(CM, cm("child2", labels={"owner": "z"}))
        await wait(ctrl, lambda: len(ctrl.calls) == 5)
    assert ctrl.calls[4] == "default/z"


async def test_enqueue_after_uses_the_clock(env: tuple[ObjectAPI, Client]) -> None:
    api, _ = env
    clock = FakeClock()
    ctrl = Recording(Informer(api, CM), clock=clock)
    async with Running(ctrl):
        ctrl.enqueue_after("default/later", 30.0)
        clock.advance(29.0)
        assert len(ctrl.queue) == 0
        clock.advance(1.0)
        await wait(ctrl, lambda: ctrl.calls == ["default/later"])


async def test_run_twice_and_bad_worker_count(env: tuple[ObjectAPI, Client]) -> None:
    api, _ = env
    with pytest.raises(ValueError):
        Recording(Informer(api, CM), workers=0)
    ctrl = Recording(Informer(api, CM))
    async with Running(ctrl):
        with pytest.raises(RuntimeError):
            await ctrl.run()


@pytest.mark.parametrize("values,counts", [
    ([0.0005], {0: 1}),
    ([0.001, 0.002], {0: 1, 1: 1}),
    ([100.0], {14: 1}),
], ids=["first-bucket", "boundary-inclusive", "overflow-bucket"])
def test_histogram_buckets(values: list[float], counts: dict[int, int]) -> None:
    h = Histogram()
    for v in values:
        h.observe(v)
    assert {i: c for i, c in enumerate(h.counts) if c} == counts
    assert h.count == len(values) and h.total == pytest.approx(sum(values))
