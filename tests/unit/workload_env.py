"""A small harness for the StatefulSet and DaemonSet controller tests (owned by them):
a real in-memory store and write path, shared informers, the controller running, a
fake `now`, and helpers that play the kubelet (pods Running/Ready) and wait for
quiescence (every informer caught up with the store, the controller's queue idle)
with a deadline."""
from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, AsyncIterator, Callable

import netd.config
from netd.api.kinds import REGISTRY
from netd.client.controller import Controller
from netd.client.informer import Informer, key_of
from netd.controllers.manager import ControllerContext, build_context
from netd.registry.bootstrap import ensure_system_objects
from netd.registry.objectapi import ObjectAPI
from netd.store.sqlite import SQLiteStore

Obj = dict[str, Any]
POD = REGISTRY.by_plural("", "pods")
EVENT = REGISTRY.by_plural("", "events")
assert POD is not None and EVENT is not None


def ts(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Env:
    api: ObjectAPI
    ctx: ControllerContext
    ctl: Controller
    clock: list[datetime] = field(default_factory=list)
    tasks: list[asyncio.Task[Any]] = field(default_factory=list)

    @property
    def client(self) -> Any:
        return self.ctx.client

    def advance(self, seconds: float) -> None:
        self.clock[0] += timedelta(seconds=seconds)

    def caught_up(self, inf: Informer) -> bool:
        items = self.api.list(inf.rt, None).items
        if len(items) != len(inf):
            return False
        for item in items:
            cached = inf.get(key_of(item.obj))
            if cached is None or cached["metadata"].get("resourceVersion") != str(item.rv):
                return False
        return True

    async def settle(self, timeout: float = 5.0) -> None:
        """Wait (bounded) until the controller has nothing left to do."""
        async def poll() -> None:
            stable = 0
            while stable < 3:  # quiet across several loop turns: no event in flight
                quiet = all(self.caught_up(i) for i in self.ctx.factory.informers) \
                    and self.ctl.idle()
                stable = stable + 1 if quiet else 0
                await asyncio.sleep(0.001)
        await asyncio.wait_for(poll(), timeout)

    async def until(self, pred: Callable[[], bool], timeout: float = 5.0) -> None:
        async def poll() -> None:
            while not pred():
                await asyncio.sleep(0.001)
        await asyncio.wait_for(poll(), timeout)

    async def converge(self, rounds: int = 40) -> None:
        """Play kubelet until nothing changes: every live pod Running and Ready."""
        for _ in range(rounds):
            await self.settle()
            pending = [n for n, p in self.pods().items()
                       if p["status"].get("phase") != "Running"
                       and not p["metadata"].get("deletionTimestamp")]
            if not pending:
                return
            for name in pending:
                await self.kubelet(name)
        raise AssertionError("did not converge")

    def pods(self, ns: str = "default") -> dict[str, Obj]:
        return {i.name: i.obj for i in self.api.list(POD, ns).items}

    async def events(self) -> list[Obj]:
        await self.ctx.recorder.flush()
        return [i.obj for i in self.api.list(EVENT, None).items]

    async def kubelet(self, name: str, *, ready: bool = True, phase: str = "Running",
                      ns: str = "default") -> Obj:
        """What a kubelet reports: the phase and a Ready condition."""
        pod = self.client.get("Pod", ns, name)
        now = ts(self.clock[0])
        status = "True" if ready else "False"
        pod["status"].update({
            "phase": phase, "podIP": "10.244.0.10", "startTime": now,
            "conditions": [{"type": "Ready", "status": status, "lastTransitionTime": now},
                           {"type": "ContainersReady", "status": status,
                            "lastTransitionTime": now}]})
        out: Obj = await self.client.update_status("Pod", pod)
        return out


async def make_env(factory: Callable[[ControllerContext], Controller]) -> AsyncIterator[Env]:
    store = SQLiteStore(":memory:")
    api = ObjectAPI(store)
    await ensure_system_objects(api)
    ctx = build_context(api, netd.config.load(None))
    clock = [datetime(2024, 1, 1, tzinfo=timezone.utc)]
    ctx.now = lambda: clock[0]
    ctx.recorder.clock = lambda: clock[0]
    ctl = factory(ctx)
    env = Env(api, ctx, ctl, clock)
    env.tasks = [asyncio.create_task(inf.run()) for inf in ctx.factory.informers]
    env.tasks.append(asyncio.create_task(ctx.recorder.run()))
    await ctx.factory.wait_synced()
    env.tasks.append(asyncio.create_task(ctl.run()))
    try:
        yield env
    finally:
        ctl.stop()
        ctx.factory.stop()
        for t in env.tasks:
            t.cancel()
        await asyncio.gather(*env.tasks, return_exceptions=True)
        await store.close()
