"""ProxyTracker against a real in-memory API with the EndpointSlice controller:
Services and slices become a Snapshot; subscribers are told about changes after sync."""
from __future__ import annotations

import asyncio
from typing import AsyncIterator, Callable

import pytest

from netd.controllers.endpointslice import EndpointSliceController
from netd.proxy.tracker import ProxyTracker
from tests.unit.test_endpoints import Env, make_env


@pytest.fixture
async def env() -> AsyncIterator[Env]:
    async for e in make_env(EndpointSliceController):
        yield e


async def until(cond: Callable[[], bool], timeout: float = 5.0) -> None:
    async def loop() -> None:
        while not cond():
            await asyncio.sleep(0.001)
    await asyncio.wait_for(loop(), timeout)


async def test_tracker_snapshot_follows_services_and_slices(env: Env) -> None:
    tracker = ProxyTracker(env.ctx)
    calls: list[int] = []
    tracker.subscribe(lambda: calls.append(tracker.generation))
    await tracker.start()
    try:
        assert tracker.synced.is_set() and calls   # told once at sync
        # kube-dns (the DNS IP) is never proxied; default/kubernetes is
        keys = {p.key for p in tracker.snapshot().ports}
        assert not any(k.startswith("kube-system/kube-dns") for k in keys)
        await env.service("web", type="NodePort", sessionAffinity="ClientIP")
        await env.pod("web-0", "web", ip="10.244.0.7")

        def has_endpoint() -> bool:
            ports = [p for p in tracker.snapshot().ports if p.name == "web"]
            return bool(ports) and [e.ip for e in ports[0].endpoints] == ["10.244.0.7"]
        await until(has_endpoint)
        web = [p for p in tracker.snapshot().ports if p.name == "web"][0]
        assert web.port == 80 and web.endpoints[0].port == 8080
        assert web.node_port > 0 and web.affinity_timeout == 10800
        assert len(calls) > 1
        before = tracker.snapshot()
        assert tracker.snapshot() is before          # cached until something changes
        assert tracker.take_triggers() and tracker.take_triggers() == []
    finally:
        await tracker.stop()
