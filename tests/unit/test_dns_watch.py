"""DnsIndexer against a real in-memory store and the shared informers: first build,
changes visible through the callback, coalescing, failure handling."""
from __future__ import annotations

import asyncio
import random
import time
from typing import Any, AsyncIterator, Callable

import pytest
from dnslib import QTYPE, RCODE

import netd.config
from netd.controllers.manager import ControllerContext, build_context
from netd.dns.index import DnsConfig, ZoneIndex
from netd.dns.resolver import resolve
from netd.dns.watch import DnsIndexer
from netd.registry import allocators
from netd.registry.bootstrap import ensure_system_objects
from netd.registry.objectapi import ObjectAPI
from netd.store.sqlite import SQLiteStore

Obj = dict[str, Any]
DEADLINE = 5.0


class Env:
    def __init__(self, ctx: ControllerContext, indexer: DnsIndexer) -> None:
        self.ctx = ctx
        self.client = ctx.client
        self.indexer = indexer
        self.seen: list[ZoneIndex] = []
        self.changed = asyncio.Event()
        indexer.register(self._on_index)

    def _on_index(self, index: ZoneIndex) -> None:
        self.seen.append(index)
        self.changed.set()

    async def until(self, pred: Callable[[ZoneIndex], bool]) -> ZoneIndex:
        """Wait (event-driven, with a deadline) for an index satisfying pred."""
        async def loop() -> ZoneIndex:
            while True:
                idx = self.indexer.index
                if idx is not None and pred(idx):
                    return idx
                self.changed.clear()
                await self.changed.wait()
        return await asyncio.wait_for(loop(), DEADLINE)

    async def service(self, name: str, headless: bool = False, **spec: Any) -> Obj:
        body: Obj = {"ports": [{"name": "http", "port": 80, "targetPort": 8080}], **spec}
        if headless:
            body["clusterIP"] = "None"
        return await self.client.create("Service", {
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": "default"}, "spec": body})

    async def slice(self, svc: str, ips: list[str], ready: bool = True,
                    name: str | None = None) -> Obj:
        return await self.client.create("EndpointSlice", {
            "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": name or f"{svc}-x", "namespace": "default",
                         "labels": {"kubernetes.io/service-name": svc}},
            "addressType": "IPv4",
            "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
            "endpoints": [{"addresses": [ip], "conditions": {"ready": ready}}
                          for ip in ips]})


@pytest.fixture
async def env() -> AsyncIterator[Env]:
    store = SQLiteStore(":memory:")
    cfg = netd.config.load(None)
    api = ObjectAPI(store, plugins=allocators.plugins(cfg, store, rng=random.Random(1)))
    await ensure_system_objects(api, cfg)
    ctx = build_context(api, cfg)
    indexer = DnsIndexer(ctx)
    e = Env(ctx, indexer)
    tasks = [asyncio.create_task(inf.run()) for inf in ctx.factory.informers]
    tasks.append(asyncio.create_task(indexer.run()))
    await asyncio.wait_for(indexer.synced.wait(), DEADLINE)
    try:
        yield e
    finally:
        ctx.factory.stop()
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await store.close()


def a_records(idx: ZoneIndex, name: str) -> list[str]:
    ans = resolve(idx, name, QTYPE.A)
    assert ans is not None
    return sorted(str(r.rdata) for r in ans.answer)


def rcode(idx: ZoneIndex, name: str) -> int:
    ans = resolve(idx, name, QTYPE.A)
    assert ans is not None
    return ans.rcode


async def test_first_build_sets_synced_and_calls_back(env: Env) -> None:
    assert env.indexer.synced.is_set()
    idx = env.indexer.index
    assert idx is not None and env.seen and env.seen[-1] is idx
    # The system Services the registry bootstraps are already in the zone, and the
    # apex NS names the DNS Service.
    assert a_records(idx, "kubernetes.default.svc.cluster.local") == ["10.96.0.1"]
    assert idx.dns_ips == (env.ctx.config.dns_ip,)
    assert idx.cfg == DnsConfig.from_config(env.ctx.config)
    late: list[ZoneIndex] = []
    env.indexer.register(late.append)
    assert late == [idx]   # a late subscriber gets the current index at once


async def test_service_and_endpoint_changes_become_visible(env: Env) -> None:
    svc = await env.service("web")
    cip = svc["spec"]["clusterIP"]
    idx = await env.until(lambda i: a_records(i, "web.default.svc.cluster.local") == [cip])
    gen = idx.generation

    await env.service("db", headless=True)
    await env.slice("db", ["10.244.0.5", "10.244.0.6"], ready=True)
    idx = await env.until(lambda i: len(a_records(i, "db.default.svc.cluster.local")) == 2)
    assert idx.generation > gen

    # Endpoint goes unready: gone from the answers.
    sl = env.client.get("EndpointSlice", "default", "db-x")
    sl["endpoints"][1]["conditions"]["ready"] = False
    await env.client.update("EndpointSlice", sl)
    await env.until(lambda i: a_records(i, "db.default.svc.cluster.local") == ["10.244.0.5"])

    # All unready: a headless service with no ready endpoint is NXDOMAIN.
    sl = env.client.get("EndpointSlice", "default", "db-x")
    sl["endpoints"][0]["conditions"]["ready"] = False
    await env.client.update("EndpointSlice", sl)
    await env.until(lambda i: rcode(i, "db.default.svc.cluster.local") == RCODE.NXDOMAIN)

    await env.client.delete("Service", "default", "web")
    await env.until(lambda i: rcode(i, "web.default.svc.cluster.local") == RCODE.NXDOMAIN)


async def test_namespace_objects_decide_namespace_names(env: Env) -> None:
    await env.client.create("Namespace", {"apiVersion": "v1", "kind": "Namespace",
                                          "metadata": {"name": "team-a"}})
    idx = await env.until(lambda i: i.exists("team-a.svc.cluster.local"))
    ans = resolve(idx, "team-a.svc.cluster.local", QTYPE.A)
    assert ans is not None and ans.rcode == RCODE.NOERROR and not ans.answer


async def test_burst_is_coalesced_and_fresh(env: Env) -> None:
    """Many writes, few builds; the last write is visible quickly. Prints the
    write → callback latency (freshness target: 50 ms p99)."""
    builds_before = env.indexer.builds
    for i in range(30):
        await env.service(f"s{i}")
    idx = await env.until(lambda i: rcode(i, "s29.default.svc.cluster.local") == 0)
    assert all(rcode(idx, f"s{i}.default.svc.cluster.local") == 0 for i in range(30))
    assert env.indexer.builds - builds_before <= 30

    lat = []
    for i in range(20):
        t0 = time.perf_counter()
        await env.slice(f"s{i}", [f"10.244.1.{i + 2}"], name=f"s{i}-fresh")
        name = f"10-244-1-{i + 2}.s{i}.default.svc.cluster.local"
        await env.until(lambda ix, n=name: rcode(ix, n) == 0)  # type: ignore[misc]
        lat.append(time.perf_counter() - t0)
    lat.sort()
    print(f"\nwrite → index latency p50 {lat[len(lat) // 2] * 1e3:.1f} ms, "
          f"max {lat[-1] * 1e3:.1f} ms; last build "
          f"{env.indexer.last_build_seconds * 1e3:.2f} ms")


async def test_failed_build_keeps_last_index_and_recovers(env: Env,
                                                          monkeypatch: Any) -> None:
    calls = {"n": 0}
    fulls: list[Any] = []
    real_build = ZoneIndex.build

    def flaky(*args: Any, **kw: Any) -> ZoneIndex:
        calls["n"] += 1
        raise RuntimeError("boom")

    def build(*args: Any, **kw: Any) -> ZoneIndex:
        fulls.append(kw.get("previous"))
        return real_build(*args, **kw)

    monkeypatch.setattr("netd.dns.watch.RETRY_DELAY", 0.0)
    monkeypatch.setattr(ZoneIndex, "update", staticmethod(flaky))
    monkeypatch.setattr(ZoneIndex, "build", staticmethod(build))
    before = env.indexer.index
    await env.service("after-failure")
    await env.until(lambda i: rcode(i, "after-failure.default.svc.cluster.local") == 0)
    assert env.indexer.build_errors == 1 and calls["n"] == 1
    assert before is not None and fulls == [None]   # after a failure: from scratch


async def test_callback_error_does_not_stop_indexer(env: Env) -> None:
    def broken(index: ZoneIndex) -> None:
        raise ValueError("subscriber bug")
    env.indexer._callbacks.insert(0, broken)
    await env.service("still-works")
    await env.until(lambda i: rcode(i, "still-works.default.svc.cluster.local") == 0)


async def test_changes_are_derived_not_rebuilt(env: Env) -> None:
    """After the first build, Service and EndpointSlice events reach the index through
    ZoneIndex.update (O(change)); a Namespace event forces a full build."""
    fulls = env.indexer.full_builds
    await env.service("inc", headless=True)
    await env.service("other", headless=True)
    await env.slice("inc", ["10.244.7.1"], name="moving")
    idx = await env.until(lambda i: a_records(i, "inc.default.svc.cluster.local")
                          == ["10.244.7.1"])
    assert idx._delta is not None and env.indexer.full_builds == fulls
    # The slice moves to another Service: both Services' names follow it.
    sl = env.client.get("EndpointSlice", "default", "moving")
    sl["metadata"]["labels"]["kubernetes.io/service-name"] = "other"
    await env.client.update("EndpointSlice", sl)
    idx = await env.until(lambda i: a_records(i, "other.default.svc.cluster.local")
                          == ["10.244.7.1"])
    assert rcode(idx, "inc.default.svc.cluster.local") == RCODE.NXDOMAIN
    assert env.indexer.full_builds == fulls
    await env.client.create("Namespace", {"apiVersion": "v1", "kind": "Namespace",
                                          "metadata": {"name": "team-b"}})
    await env.until(lambda i: i.exists("team-b.svc.cluster.local"))
    assert env.indexer.full_builds == fulls + 1


@pytest.mark.parametrize("mode,rebuilds", [("disabled", False), ("verified", True)],
                         ids=["disabled-ignores-pods", "verified-indexes-pods"])
async def test_pod_events_cost_a_build_only_with_pod_records(
        env: Env, mode: str, rebuilds: bool) -> None:
    indexer = DnsIndexer(env.ctx, DnsConfig(pod_mode=mode))
    assert indexer.slices is env.indexer.slices   # the informer index is shared
    builds: list[ZoneIndex] = []
    indexer.register(builds.append)
    task = asyncio.create_task(indexer.run())
    try:
        await asyncio.wait_for(indexer.synced.wait(), DEADLINE)
        first = indexer.builds
        created = await env.client.create("Pod", {
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "pp", "namespace": "default"},
            "spec": {"containers": [{"name": "c", "image": "busybox"}]}})
        created["status"] = {"phase": "Running", "podIP": "10.244.9.9",
                             "podIPs": [{"ip": "10.244.9.9"}]}
        await env.client.update_status("Pod", created)
        await asyncio.wait_for(_until(lambda: ((indexer.pods.get("default/pp") or {})
                                               .get("status") or {}).get("podIP")
                                      is not None), DEADLINE)
        name = "10-244-9-9.default.pod.cluster.local"
        if rebuilds:
            await asyncio.wait_for(_until(lambda: indexer.index is not None and rcode(
                indexer.index, name) == 0), DEADLINE)
        else:
            for _ in range(10):     # let a (wrongly) woken indexer run
                await asyncio.sleep(0)
            assert indexer.builds == first
            await env.service("marker")
            await asyncio.wait_for(_until(lambda: indexer.index is not None and rcode(
                indexer.index, "marker.default.svc.cluster.local") == 0), DEADLINE)
            assert indexer.index is not None and rcode(indexer.index, name) != 0
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def _until(pred: Callable[[], bool]) -> None:
    while not pred():
        await asyncio.sleep(0)
