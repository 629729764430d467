"""ProxyTracker against a real in-memory API with the EndpointSlice controller:
Services and slices become a Snapshot; subscribers are told about changes after sync."""
from __future__ import annotations

import asyncio
from typing import Any, AsyncIterator, Callable

import pytest

from netd.controllers.endpointslice import EndpointSliceController
from netd.proxy.model import build_snapshot
from netd.proxy.nftables import NodeView, RenderConfig, RuleSet, desired
from netd.proxy.nftdelta import update
from netd.proxy.tracker import LOG_LENGTH, ProxyTracker
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
        # the incremental snapshot is the one built from scratch
        assert before == build_snapshot(tracker.services.list(), tracker.slices.list(),
                                        tracker.dns_ip, before.generation)
        assert tracker.take_triggers() and tracker.take_triggers() == []
    finally:
        await tracker.stop()


class FakeInformer:
    """Just enough of Informer for the tracker's incremental bookkeeping."""

    def __init__(self) -> None:
        self.objs: dict[str, dict[str, Any]] = {}
        self.handlers: list[tuple[Any, Any, Any]] = []
        self.running = self.has_synced = True

    def add_handler(self, add: Any, update: Any, delete: Any) -> None:
        self.handlers.append((add, update, delete))

    def list(self) -> list[dict[str, Any]]:
        return list(self.objs.values())

    def get_by_name(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.objs.get(f"{namespace}/{name}")

    def put(self, obj: dict[str, Any]) -> None:
        key = f"{obj['metadata']['namespace']}/{obj['metadata']['name']}"
        old = self.objs.get(key)
        self.objs[key] = obj
        for add, update, _ in self.handlers:
            add(obj) if old is None else update(old, obj)

    def delete(self, namespace: str, name: str) -> None:
        obj = self.objs.pop(f"{namespace}/{name}")
        for _, _, delete in self.handlers:
            delete(obj)


def svc(name: str, ip: str, *ports: tuple[str, int], ns: str = "default") -> dict[str, Any]:
    return {"metadata": {"namespace": ns, "name": name},
            "spec": {"clusterIP": ip, "ports": [{"name": n, "port": p, "protocol": "TCP"}
                                                 for n, p in ports]}}


def eps(name: str, service: str, *ips: str, port: str = "",
        ns: str = "default") -> dict[str, Any]:
    return {"metadata": {"namespace": ns, "name": name,
                         "labels": {"kubernetes.io/service-name": service}},
            "addressType": "IPv4", "ports": [{"name": port, "port": 8080, "protocol": "TCP"}],
            "endpoints": [{"addresses": [ip]} for ip in ips]}


CFG = RenderConfig(pod_cidr="10.244.0.0/16", service_cidr="10.96.0.0/12", dns_ip="10.96.0.10")
NODE = NodeView("node-1", ("172.18.0.2",))

STEPS: list[tuple[str, Callable[[FakeInformer, FakeInformer], None], set[str]]] = [
    ("services", lambda s, e: (s.put(svc("a", "10.96.0.1", ("", 80))),
                               s.put(svc("b", "10.96.0.2", ("x", 80), ("y", 81))),
                               s.put(svc("dns", "10.96.0.10", ("", 53)))), {"a", "b"}),
    ("slices", lambda s, e: (e.put(eps("a-1", "a", "10.244.0.2")),
                             e.put(eps("a-2", "a", "10.244.0.3"))), {"a"}),
    ("other-namespace", lambda s, e: s.put(svc("a", "10.96.0.3", ("", 80), ns="z")), {"a"}),
    ("relabel-slice", lambda s, e: e.put(eps("a-2", "b", "10.244.0.3", port="x")),
     {"a", "b"}),
    ("slice-deleted", lambda s, e: e.delete("default", "a-1"), {"a"}),
    ("service-updated", lambda s, e: s.put(svc("b", "10.96.0.2", ("x", 80))), {"b"}),
    ("service-deleted", lambda s, e: s.delete("default", "a"), set()),
    ("slice-without-service", lambda s, e: e.put(eps("c-1", "c", "10.244.0.9")), set()),
]


async def test_incremental_snapshot_equals_full_build() -> None:
    services, slices = FakeInformer(), FakeInformer()
    ctx = type("Ctx", (), {"api": None, "config": type("C", (), {"dns_ip": "10.96.0.10"})})
    tracker = ProxyTracker(ctx, services=services, slices=slices)  # type: ignore[arg-type]
    prev = tracker.snapshot()
    rs: RuleSet | None = None
    for name, step, changed in STEPS:
        step(services, slices)
        snap = tracker.snapshot()
        assert snap == build_snapshot(services.list(), slices.list(), "10.96.0.10",
                                      snap.generation), name
        # ports of untouched default/ services are the very same objects
        before = {p.key: p for p in prev.ports if p.namespace == "default"}
        for p in snap.ports:
            if p.namespace == "default" and p.name not in changed and p.key in before:
                assert p is before[p.key], (name, p.key)
        # the log names every Service whose ports are not the very same objects
        keys = snap.changed_since(prev.generation)
        assert keys is not None, name
        old, new = prev.by_key(), snap.by_key()
        moved = {(p.namespace, p.name) for k in old.keys() | new.keys()
                 for p in (old.get(k), new.get(k)) if p is not None
                 and old.get(k) is not new.get(k)}
        assert moved <= keys, name
        # and a partial sync from it builds what a full render does
        rs = rs if rs is not None else desired(prev, NODE, CFG)
        update(rs, snap, NODE, CFG, prev)
        want = desired(snap, NODE, CFG, rs)
        assert (rs.chains, rs.elements) == (want.chains, want.elements), name
        prev = snap


async def test_change_log_is_bounded() -> None:
    services, slices = FakeInformer(), FakeInformer()
    ctx = type("Ctx", (), {"api": None, "config": type("C", (), {"dns_ip": "10.96.0.10"})})
    tracker = ProxyTracker(ctx, services=services, slices=slices)  # type: ignore[arg-type]
    first = tracker.snapshot()
    gens = []
    for i in range(LOG_LENGTH + 1):
        services.put(svc(f"s{i}", f"10.96.1.{i}", ("", 80)))
        gens.append(tracker.snapshot().generation)
    last = tracker.snapshot()
    assert last.changed_since(first.generation) is None        # fell out of the log
    assert last.changed_since(gens[0]) == {("default", f"s{i}")
                                           for i in range(1, LOG_LENGTH + 1)}
    assert last.changed_since(gens[-2]) == {("default", f"s{LOG_LENGTH}")}
