"""The Endpoints controller against a real in-memory store (and its pure subset logic)."""
from __future__ import annotations

import asyncio
import random
from typing import Any, AsyncIterator, Callable

import pytest

import netd.config
from netd.api import errors
from netd.client.controller import Controller
from netd.controllers import endpoints as epmod
from netd.controllers.endpoints import EndpointsController, build_subsets, truncate_subsets
from netd.controllers.manager import ControllerContext, build_context
from netd.registry import allocators
from netd.registry.bootstrap import ensure_system_objects
from netd.registry.objectapi import ObjectAPI
from netd.store.sqlite import SQLiteStore

Obj = dict[str, Any]
T0 = "2024-05-01T10:00:00Z"


async def eventually(pred: Callable[[], bool], timeout: float = 5.0) -> None:
    async def poll() -> None:
        while not pred():
            await asyncio.sleep(0.002)
    await asyncio.wait_for(poll(), timeout)


class Env:
    def __init__(self, api: ObjectAPI, ctx: ControllerContext, ctl: Controller) -> None:
        self.api = api
        self.ctx = ctx
        self.ctl = ctl
        self.client = ctx.client

    def get(self, kind: str, name: str, ns: str = "default") -> Obj | None:
        return self.client.get_or_none(kind, ns, name)

    async def service(self, name: str, ports: list[Obj] | None = None,
                      selector: Obj | bool | None = None, labels: Obj | None = None,
                      **spec: Any) -> Obj:
        body: Obj = {"ports": ports if ports is not None else [{"name": "http", "port": 80,
                                                                "targetPort": 8080}]}
        if selector is not False:
            body["selector"] = selector if selector is not None else {"app": name}
        body.update(spec)
        meta: Obj = {"name": name, "namespace": "default"}
        if labels:
            meta["labels"] = labels
        return await self.client.create("Service", {"apiVersion": "v1", "kind": "Service",
                                                    "metadata": meta, "spec": body})

    async def pod(self, name: str, app: str, ip: str | None = "10.244.0.2",
                  ready: bool = True, ports: list[Obj] | None = None, node: str = "node-1",
                  phase: str = "Running", **spec: Any) -> Obj:
        container: Obj = {"name": "c", "image": "nginx"}
        if ports:
            container["ports"] = ports
        body = {"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": name, "namespace": "default", "labels": {"app": app}},
                "spec": {"containers": [container], "nodeName": node, **spec}}
        pod = await self.client.create("Pod", body)
        status: Obj = {"phase": phase, "conditions": [
            {"type": "Ready", "status": "True" if ready else "False",
             "lastTransitionTime": T0}]}
        if ip:
            status["podIP"] = ip
            status["podIPs"] = [{"ip": ip}]
        pod["status"] = status
        return await self.client.update_status("Pod", pod)

    async def set_ready(self, name: str, ready: bool) -> None:
        pod = self.client.get("Pod", "default", name)
        pod["status"]["conditions"][0]["status"] = "True" if ready else "False"
        pod["status"]["conditions"][0]["lastTransitionTime"] = "2024-05-01T11:00:00Z"
        await self.client.update_status("Pod", pod)

    async def settle(self) -> None:
        """Wait until every informer has seen the latest write and the queue is idle."""
        api = self.api

        def caught_up() -> bool:
            for inf in self.ctl.informers:
                items, _ = api.store.list(inf.rt.group_resource)
                for item in items:
                    cached = inf.get(f"{item.namespace}/{item.name}" if item.namespace
                                     else item.name)
                    if cached is None or cached["metadata"]["resourceVersion"] != \
                            str(item.rv):
                        return False
                if len(items) != len(inf):
                    return False
            return self.ctl.idle()
        await eventually(caught_up)


async def make_env(factory: Callable[[ControllerContext], Controller]
                   ) -> AsyncIterator[Env]:
    store = SQLiteStore(":memory:")
    cfg = netd.config.load(None)
    api = ObjectAPI(store, plugins=allocators.plugins(cfg, store, rng=random.Random(1)))
    await ensure_system_objects(api)
    ctx = build_context(api, cfg)
    ctl = factory(ctx)
    tasks = [asyncio.create_task(inf.run()) for inf in ctx.factory.informers]
    tasks.append(asyncio.create_task(ctl.run()))
    await ctx.factory.wait_synced()
    try:
        yield Env(api, ctx, ctl)
    finally:
        ctl.stop()
        ctx.factory.stop()
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await store.close()


@pytest.fixture
async def env() -> AsyncIterator[Env]:
    async for e in make_env(EndpointsController):
        yield e


def ips(subset: Obj, field: str = "addresses") -> list[str]:
    return [a["ip"] for a in subset.get(field) or []]


# ---- controller ------------------------------------------------------------------------

async def test_ready_and_not_ready_pods(env: Env) -> None:
    await env.service("web", labels={"tier": "front"})
    p1 = await env.pod("web-1", "web", "10.244.0.11")
    await env.pod("web-2", "web", "10.244.0.12", ready=False)
    await env.pod("other", "db", "10.244.0.13")
    await env.settle()
    ep = env.get("Endpoints", "web")
    assert ep is not None
    assert ep["metadata"]["labels"] == {"tier": "front"}
    assert ep["metadata"]["annotations"][epmod.TRIGGER_TIME] >= T0
    [subset] = ep["subsets"]
    assert subset["addresses"] == [{"ip": "10.244.0.11", "nodeName": "node-1", "targetRef": {
        "kind": "Pod", "namespace": "default", "name": "web-1",
        "uid": p1["metadata"]["uid"]}}]
    assert ips(subset, "notReadyAddresses") == ["10.244.0.12"]
    assert subset["ports"] == [{"name": "http", "port": 8080, "protocol": "TCP"}]
    # Readiness changes move the address.
    await env.set_ready("web-2", True)
    await env.settle()
    assert ips(env.get("Endpoints", "web")["subsets"][0]) == ["10.244.0.11",  # type: ignore
                                                              "10.244.0.12"]


@pytest.mark.parametrize("pod_kw,included", [
    ({}, True),
    ({"ip": None}, False),
    ({"phase": "Failed"}, False),
    ({"phase": "Succeeded"}, False),
], ids=["running", "no-ip", "failed", "succeeded"])
async def test_which_pods_count(env: Env, pod_kw: Obj, included: bool) -> None:
    await env.service("web")
    await env.pod("web-1", "web", **pod_kw)
    await env.settle()
    ep = env.get("Endpoints", "web")
    assert ep is not None
    assert bool(ep.get("subsets")) == included


async def test_terminating_pod_left_out_unless_published(env: Env) -> None:
    await env.service("web")
    await env.service("pub", selector={"app": "web"}, publishNotReadyAddresses=True)
    await env.pod("web-1", "web", "10.244.0.11")
    await env.settle()
    await env.client.delete("Pod", "default", "web-1")  # has a node: graceful
    await env.settle()
    assert env.get("Pod", "web-1")["metadata"]["deletionTimestamp"]  # type: ignore
    assert not env.get("Endpoints", "web").get("subsets")  # type: ignore
    assert ips(env.get("Endpoints", "pub")["subsets"][0]) == ["10.244.0.11"]  # type: ignore


async def test_publish_not_ready_addresses(env: Env) -> None:
    await env.service("web", publishNotReadyAddresses=True)
    await env.pod("web-1", "web", ready=False)
    await env.settle()
    [subset] = env.get("Endpoints", "web")["subsets"]  # type: ignore
    assert ips(subset) == ["10.244.0.2"] and "notReadyAddresses" not in subset


@pytest.mark.parametrize("spec,hostname", [
    ({"hostname": "h0", "subdomain": "web"}, "h0"),
    ({"hostname": "h0", "subdomain": "other"}, None),
    ({"subdomain": "web"}, None),
], ids=["matching-subdomain", "other-subdomain", "no-hostname"])
async def test_hostname(env: Env, spec: Obj, hostname: str | None) -> None:
    await env.service("web", clusterIP="None")
    await env.pod("web-0", "web", **spec)
    await env.settle()
    ep = env.get("Endpoints", "web")
    assert ep["metadata"]["labels"] == {epmod.HEADLESS: ""}  # type: ignore
    assert ep["subsets"][0]["addresses"][0].get("hostname") == hostname  # type: ignore


async def test_named_target_ports_resolve_per_pod(env: Env) -> None:
    await env.service("web", ports=[
        {"name": "http", "port": 80, "targetPort": "web"},
        {"name": "metrics", "port": 9000, "targetPort": 9000, "appProtocol": "http"}])
    await env.pod("a", "web", "10.244.0.1", ports=[{"name": "web", "containerPort": 8080}])
    await env.pod("b", "web", "10.244.0.2", ports=[{"name": "web", "containerPort": 8081}])
    await env.pod("c", "web", "10.244.0.3", ports=[
        {"name": "web", "containerPort": 8082, "protocol": "UDP"}])
    await env.settle()
    got = sorted((tuple(ips(s)), tuple((p["name"], p["port"]) for p in s["ports"]))
                 for s in env.get("Endpoints", "web")["subsets"])  # type: ignore
    assert got == [(("10.244.0.1",), (("http", 8080),)),
                   (("10.244.0.1", "10.244.0.2", "10.244.0.3"), (("metrics", 9000),)),
                   (("10.244.0.2",), (("http", 8081),))]


async def test_selectorless_endpoints_are_the_users(env: Env) -> None:
    await env.service("ext", selector=False)
    user = {"apiVersion": "v1", "kind": "Endpoints",
            "metadata": {"name": "ext", "namespace": "default"},
            "subsets": [{"addresses": [{"ip": "192.0.2.10"}], "ports": [{"port": 80}]}]}
    created = await env.client.create("Endpoints", user)
    await env.pod("p", "ext")
    await env.settle()
    assert env.get("Endpoints", "ext") == created


async def test_endpoints_before_service_survive(env: Env) -> None:
    user = {"apiVersion": "v1", "kind": "Endpoints",
            "metadata": {"name": "later", "namespace": "default"},
            "subsets": [{"addresses": [{"ip": "192.0.2.10"}], "ports": [{"port": 80}]}]}
    await env.client.create("Endpoints", user)
    await env.settle()
    assert env.get("Endpoints", "later") is not None


async def test_external_name_gets_none(env: Env) -> None:
    await env.service("ext", type="ExternalName", externalName="example.com")
    await env.pod("p", "ext")
    await env.settle()
    assert env.get("Endpoints", "ext") is None


async def test_deleted_with_service_and_recreated_when_deleted(env: Env) -> None:
    await env.service("web")
    await env.pod("web-1", "web")
    await env.settle()
    await env.client.delete("Endpoints", "default", "web")
    await env.settle()
    assert env.get("Endpoints", "web") is not None
    await env.client.delete("Service", "default", "web")
    await env.settle()
    assert env.get("Endpoints", "web") is None


async def test_no_write_when_nothing_changed(env: Env) -> None:
    await env.service("web")
    await env.pod("web-1", "web")
    await env.settle()
    rv = env.get("Endpoints", "web")["metadata"]["resourceVersion"]  # type: ignore
    pod = env.client.get("Pod", "default", "web-1")
    pod["metadata"]["annotations"] = {"touched": "yes"}
    await env.client.update("Pod", pod)
    env.ctl.enqueue("default/web")
    await env.settle()
    assert env.get("Endpoints", "web")["metadata"]["resourceVersion"] == rv  # type: ignore


async def test_failed_update_records_event(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    await env.service("web")
    await env.settle()
    recorded: list[tuple[str, str, str]] = []
    monkeypatch.setattr(env.ctx.recorder, "record",
                        lambda obj, type_, reason, msg, **kw: recorded.append(
                            (type_, reason, msg)))

    async def broken(*args: Any, **kwargs: Any) -> Obj:
        raise errors.InternalError("boom")
    monkeypatch.setattr(env.client, "update", broken)
    await env.pod("web-1", "web")
    await eventually(lambda: bool(recorded))
    # The worker retries with backoff; every failure is reported the same way.
    assert set(recorded) == {("Warning", "FailedToUpdateEndpoint",
                              "Failed to update endpoint default/web: boom")}
    with pytest.raises(errors.InternalError):
        await env.ctl.reconcile("default/web")


# ---- pure pieces -------------------------------------------------------------------------

def _pod(name: str, ip: str, ready: bool = True) -> Obj:
    return {"metadata": {"name": name, "namespace": "ns", "uid": f"uid-{name}",
                         "labels": {"app": "x"}},
            "spec": {"nodeName": "n1", "containers": []},
            "status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}],
                       "conditions": [{"type": "Ready",
                                       "status": "True" if ready else "False"}]}}


def _svc(**spec: Any) -> Obj:
    return {"metadata": {"name": "s", "namespace": "ns"},
            "spec": {"selector": {"app": "x"}, "clusterIP": "10.96.0.5",
                     "ipFamilies": ["IPv4"], **spec}}


@pytest.mark.parametrize("spec,expect", [
    ({"ports": []}, []),
    ({"ports": [], "clusterIP": "None"}, [(["10.0.0.1", "10.0.0.2"], ["10.0.0.9"], [])]),
    ({"ports": [{"name": "a", "port": 1, "targetPort": 11},
                {"name": "b", "port": 2, "targetPort": 12}]},
     [(["10.0.0.1", "10.0.0.2"], ["10.0.0.9"], [("a", 11), ("b", 12)])]),
], ids=["clusterip-without-ports", "headless-without-ports", "multi-port-one-subset"])
def test_build_subsets(spec: Obj, expect: list[Any]) -> None:
    pods = [_pod("p2", "10.0.0.2"), _pod("p9", "10.0.0.9", ready=False),
            _pod("p1", "10.0.0.1")]
    got = [(ips(s), ips(s, "notReadyAddresses"),
            [(p.get("name"), p["port"]) for p in s.get("ports", [])])
           for s in build_subsets(_svc(**spec), pods)]
    assert got == expect


@pytest.mark.parametrize("ready,not_ready,expect", [
    (1200, 0, (1000, 0)),
    (600, 600, (600, 400)),
    (10, 10, (10, 10)),
], ids=["ready-over", "not-ready-cut", "under"])
def test_truncate(ready: int, not_ready: int, expect: tuple[int, int]) -> None:
    subsets = [{"addresses": [{"ip": f"r{i}"} for i in range(ready)],
                "notReadyAddresses": [{"ip": f"n{i}"} for i in range(not_ready)]}]
    assert truncate_subsets(subsets) == (ready + not_ready > 1000)
    assert (len(subsets[0].get("addresses", [])),
            len(subsets[0].get("notReadyAddresses", []))) == expect


# ---- per-pod memo (a readiness flip recomputes one pod, not all) ----------------------------

def test_pod_memo_recomputes_only_replaced_objects() -> None:
    calls: list[str] = []

    def compute(svc: Obj, pod: Obj, dep: Any) -> str:
        calls.append(pod["metadata"]["name"])
        return f"{pod['metadata']['name']}@{dep}"

    memo: epmod.PodMemo[str] = epmod.PodMemo()
    svc = _svc()
    deps = {"p1": "n1", "p2": "n1", "p3": "n2"}
    pods = [_pod(n, f"10.0.0.{i}") for i, n in enumerate(deps, 1)]

    def dep(p: Obj) -> str:
        return deps[p["metadata"]["name"]]

    assert memo.values("k", svc, pods, compute, dep) == ["p1@n1", "p2@n1", "p3@n2"]
    assert memo.values("k", svc, pods, compute, dep) == ["p1@n1", "p2@n1", "p3@n2"]
    assert calls == ["p1", "p2", "p3"]
    calls.clear()
    pods[1] = _pod("p2", "10.0.0.2", ready=False)     # a new object: recomputed
    deps["p3"] = "n3"                                  # its dependency changed
    assert memo.values("k", svc, pods, compute, dep) == ["p1@n1", "p2@n1", "p3@n3"]
    assert calls == ["p2", "p3"]
    calls.clear()
    memo.values("k", svc, pods[:1], compute, dep)      # p2 and p3 left: dropped
    assert calls == [] and len(memo._by_service["k"][1]) == 1
    memo.values("k", _svc(), pods[:1], compute, dep)   # a changed Service starts afresh
    assert calls == ["p1"]
    memo.forget("k")
    assert "k" not in memo._by_service


@pytest.mark.parametrize("spec", [
    {"ports": [{"name": "a", "port": 1, "targetPort": 11}]},
    {"ports": [], "clusterIP": "None", "publishNotReadyAddresses": True},
    {"ports": [{"name": "a", "port": 1, "targetPort": 11},
               {"name": "b", "port": 2, "targetPort": 12, "protocol": "UDP"}]},
], ids=["one-port", "headless-published", "two-ports"])
def test_memoised_subsets_match_a_full_rebuild(spec: Obj) -> None:
    svc = _svc(**spec)
    memo: epmod.PodMemo[Any] = epmod.PodMemo()
    pods = [_pod(f"p{i}", f"10.0.{i // 100}.{i % 100}", ready=i % 3 != 0) for i in range(250)]
    for step in range(6):
        facts = memo.values("k", svc, pods, epmod._pod_facts)
        assert epmod.assemble_subsets(e for _, e in facts) == build_subsets(svc, pods)
        assert epmod.latest_change(svc, (t for t, _ in facts)) == \
            epmod.trigger_time(svc, pods)
        flipped = _pod(f"p{step * 7}", f"10.0.0.{step * 7}", ready=step % 2 == 1)
        flipped["status"]["conditions"][0]["lastTransitionTime"] = f"2024-05-01T12:0{step}:00Z"
        pods[step * 7] = flipped
