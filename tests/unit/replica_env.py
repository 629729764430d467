"""A cluster without nodes for ReplicaSet/Deployment controller tests: a real in-memory store,
the ObjectAPI write path, shared informers, the controllers under test, and a test
acting as the kubelet (it marks pods Running/Ready itself).

`settle()` waits — on a condition, with a deadline — until every informer holds
exactly what the store holds and no controller has a key queued or in progress: the
point where the controllers have nothing more to do until something else changes.
"""
from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta, timezone
from typing import Any, AsyncIterator, Callable

import netd.config
from netd.client.controller import Controller
from netd.client.informer import Informer, key_of
from netd.controllers.manager import ControllerContext, build_context
from netd.controllers.podutil import is_pod_active
from netd.registry.binding import create_binding
from netd.registry.bootstrap import ensure_system_objects
from netd.registry.objectapi import ObjectAPI
from netd.store.sqlite import SQLiteStore

Obj = dict[str, Any]
DEADLINE = 10.0


class FakeNow:
    """ControllerContext.now for tests: wall-clock time that moves only on advance()."""

    def __init__(self) -> None:
        self.t = datetime(2025, 1, 1, 12, 0, 0, tzinfo=timezone.utc)

    def __call__(self) -> datetime:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += timedelta(seconds=seconds)

    def stamp(self) -> str:
        return self.t.strftime("%Y-%m-%dT%H:%M:%SZ")


class Env:
    def __init__(self, api: ObjectAPI, ctx: ControllerContext, now: FakeNow) -> None:
        self.api = api
        self.ctx = ctx
        self.client = ctx.client
        self.now = now
        self.controllers: list[Controller] = []
        self.tasks: list[asyncio.Task[Any]] = []

    # ---- running ----------------------------------------------------------------------

    async def start_informers(self) -> None:
        for inf in self.ctx.factory.informers:
            if not inf.running:
                self.tasks.append(asyncio.create_task(inf.run()))
        await self.ctx.factory.wait_synced()

    async def run(self, *controllers: Controller) -> None:
        """Run the controllers' workers (their informers must exist already)."""
        await self.start_informers()
        for c in controllers:
            self.controllers.append(c)
            self.tasks.append(asyncio.create_task(c.run()))

    def _current(self, inf: Informer) -> bool:
        items, _ = self.api.store.list(inf.rt.group_resource, None)
        if len(items) != len(inf):
            return False
        for item in items:
            cached = inf.get(key_of(item.obj))
            if cached is None or cached["metadata"].get("resourceVersion") != str(item.rv):
                return False
        return True

    def quiescent(self) -> bool:
        if not all(self._current(inf) for inf in self.ctx.factory.informers):
            return False
        return all(len(c.queue) == 0 and not c.queue.processing for c in self.controllers)

    async def settle(self, timeout: float = DEADLINE) -> None:
        deadline = time.monotonic() + timeout
        while not self.quiescent():
            if time.monotonic() > deadline:
                raise AssertionError("controllers did not settle in time")
            await asyncio.sleep(0)

    async def until(self, predicate: Callable[[], bool], timeout: float = DEADLINE) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError("condition not reached in time")
            await asyncio.sleep(0)

    async def caught_up(self) -> None:
        """Informers hold what the store holds (for tests that call reconcile)."""
        deadline = time.monotonic() + DEADLINE
        while not all(self._current(inf) for inf in self.ctx.factory.informers):
            if time.monotonic() > deadline:
                raise AssertionError("informers did not catch up in time")
            await asyncio.sleep(0)

    async def close(self) -> None:
        for c in self.controllers:
            c.stop()
        self.ctx.factory.stop()
        for t in self.tasks:
            t.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await self.api.store.close()

    # ---- objects ----------------------------------------------------------------------

    def pods(self, ns: str = "default", *, active: bool = True,
             selector: str = "") -> list[Obj]:
        pods = self.client.list("pods", ns, label_selector=selector)
        return [p for p in pods if is_pod_active(p)] if active else pods

    def get(self, kind: str, name: str, ns: str = "default") -> Obj:
        return self.client.get(kind, ns, name)

    async def ready(self, pod: Obj, *, since: str | None = None) -> Obj:
        """What a kubelet reports for a started pod whose readiness probe passed."""
        fresh = self.client.get("pods", pod["metadata"]["namespace"], pod["metadata"]["name"])
        stamp = since or self.now.stamp()
        fresh["status"] = {**fresh.get("status", {}), "phase": "Running", "conditions": [
            {"type": "Ready", "status": "True", "lastTransitionTime": stamp},
            {"type": "ContainersReady", "status": "True", "lastTransitionTime": stamp}]}
        return await self.client.update_status("pods", fresh)

    async def kubelet(self, ns: str = "default") -> int:
        """Make every pod that is not Ready yet Ready; returns how many."""
        n = 0
        for pod in self.pods(ns):
            if not any(c.get("type") == "Ready" and c.get("status") == "True"
                       for c in pod.get("status", {}).get("conditions") or []):
                await self.ready(pod)
                n += 1
        return n

    async def bind(self, pod: Obj, node: str = "node-1") -> None:
        await create_binding(self.api, pod["metadata"]["namespace"], pod["metadata"]["name"],
                             {"target": {"name": node}})

    async def events(self, reason: str | None = None, ns: str = "default") -> list[str]:
        await self.ctx.recorder.flush()
        evs = sorted(self.client.list("events", ns), key=lambda e: e["metadata"]["name"])
        return [e["message"] for e in evs if reason is None or e["reason"] == reason]


async def make_env() -> Env:
    store = SQLiteStore(":memory:")
    api = ObjectAPI(store)
    await ensure_system_objects(api)
    ctx = build_context(api, netd.config.load(None))
    now = FakeNow()
    ctx.now = now
    env = Env(api, ctx, now)
    env.tasks.append(asyncio.create_task(ctx.recorder.run()))
    return env


async def env_fixture() -> AsyncIterator[Env]:
    env = await make_env()
    try:
        yield env
    finally:
        await env.close()


def pod_template(labels: dict[str, str], image: str = "nginx:1.25") -> Obj:
    return {"metadata": {"labels": dict(labels)},
            "spec": {"containers": [{"name": "web", "image": image}]}}
