"""Scheduler: node filters (pure, table-driven), the FitError message, binding, and the
scheduling cycle against a real in-memory store."""
from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import datetime, timezone
from typing import Any, AsyncIterator, Callable

import pytest

import netd.config
from netd.api import errors
from netd.client.informer import key_of
from netd.controllers import predicates as pr
from netd.controllers.manager import ControllerContext, build_context
from netd.controllers.scheduler import Scheduler, fit_error_message
from netd.registry.binding import bind, create_binding
from netd.registry.bootstrap import ensure_system_objects
from netd.registry.objectapi import ObjectAPI
from netd.store.sqlite import SQLiteStore

Obj = dict[str, Any]
NOW = datetime(2025, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
DEADLINE = 5.0


def node(name: str, labels: dict[str, str] | None = None, taints: list[Obj] | None = None,
         cpu: str = "4", memory: str = "8Gi", pods: str = "110", ready: str = "True",
         unschedulable: bool = False) -> Obj:
    spec: Obj = {}
    if taints:
        spec["taints"] = taints
    if unschedulable:
        spec["unschedulable"] = True
    alloc = {"cpu": cpu, "memory": memory, "pods": pods}
    return {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name,
                                                  **(labels or {})}},
            "spec": spec,
            "status": {"capacity": alloc, "allocatable": alloc,
                       "conditions": [{"type": "Ready", "status": ready}]}}


def pod(name: str = "p", *, cpu: str = "", memory: str = "", node_selector: dict[str, str]
        | None = None, affinity: Obj | None = None, tolerations: list[Obj] | None = None,
        owner: str = "", init_cpu: str = "", volumes: list[Obj] | None = None) -> Obj:
    container: Obj = {"name": "c", "image": "nginx"}
    requests = {k: v for k, v in (("cpu", cpu), ("memory", memory)) if v}
    if requests:
        container["resources"] = {"requests": requests}
    spec: Obj = {"containers": [container]}
    if init_cpu:
        spec["initContainers"] = [{"name": "i", "image": "busybox",
                                   "resources": {"requests": {"cpu": init_cpu}}}]
    if node_selector:
        spec["nodeSelector"] = node_selector
    if affinity:
        spec["affinity"] = {"nodeAffinity": affinity}
    if tolerations:
        spec["tolerations"] = tolerations
    if volumes:
        spec["volumes"] = volumes
    meta: Obj = {"name": name, "namespace": "default", "labels": {"app": "web"}}
    if owner:
        meta["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                                    "name": "web", "uid": owner, "controller": True}]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec}


def required(*terms: Obj) -> Obj:
    return {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": list(terms)}}


def expr(key: str, op: str, *values: str) -> Obj:
    e: Obj = {"key": key, "operator": op}
    if values:
        e["values"] = list(values)
    return e


# ---- filters (pure) ----------------------------------------------------------------------

SSD = node("n1", labels={"disk": "ssd", "gen": "5"})
TAINTED = node("n1", taints=[{"key": "k", "value": "v", "effect": "NoSchedule"}])

FIT_CASES: list[tuple[str, Obj, Obj, pr.NodeUsage, list[str]]] = [
    ("fits", pod(), SSD, pr.NodeUsage(), []),
    ("selector-match", pod(node_selector={"disk": "ssd"}), SSD, pr.NodeUsage(), []),
    ("selector-miss", pod(node_selector={"disk": "hdd"}), SSD, pr.NodeUsage(),
     [pr.ERR_AFFINITY]),
    ("in", pod(affinity=required({"matchExpressions": [expr("disk", "In", "ssd", "nvme")]})),
     SSD, pr.NodeUsage(), []),
    ("notin", pod(affinity=required({"matchExpressions": [expr("disk", "NotIn", "ssd")]})),
     SSD, pr.NodeUsage(), [pr.ERR_AFFINITY]),
    ("exists", pod(affinity=required({"matchExpressions": [expr("disk", "Exists")]})),
     SSD, pr.NodeUsage(), []),
    ("doesnotexist", pod(affinity=required({"matchExpressions": [expr("disk",
                                                                       "DoesNotExist")]})),
     SSD, pr.NodeUsage(), [pr.ERR_AFFINITY]),
    ("gt", pod(affinity=required({"matchExpressions": [expr("gen", "Gt", "4")]})),
     SSD, pr.NodeUsage(), []),
    ("gt-equal", pod(affinity=required({"matchExpressions": [expr("gen", "Gt", "5")]})),
     SSD, pr.NodeUsage(), [pr.ERR_AFFINITY]),
    ("lt", pod(affinity=required({"matchExpressions": [expr("gen", "Lt", "6")]})),
     SSD, pr.NodeUsage(), []),
    ("lt-not-a-number", pod(affinity=required({"matchExpressions": [expr("disk", "Lt", "6")]})),
     SSD, pr.NodeUsage(), [pr.ERR_AFFINITY]),
    ("terms-are-ored", pod(affinity=required({"matchExpressions": [expr("disk", "In", "hdd")]},
                                             {"matchExpressions": [expr("gen", "In", "5")]})),
     SSD, pr.NodeUsage(), []),
    ("match-fields-name", pod(affinity=required({"matchFields": [expr("metadata.name", "In",
                                                                      "n1")]})),
     SSD, pr.NodeUsage(), []),
    ("match-fields-other-name", pod(affinity=required({"matchFields": [
        expr("metadata.name", "In", "n2")]})), SSD, pr.NodeUsage(), [pr.ERR_AFFINITY]),
    ("empty-term-matches-nothing", pod(affinity=required({})), SSD, pr.NodeUsage(),
     [pr.ERR_AFFINITY]),
    ("selector-and-affinity-both", pod(node_selector={"disk": "ssd"},
                                       affinity=required({"matchExpressions": [
                                           expr("gen", "In", "4")]})),
     SSD, pr.NodeUsage(), [pr.ERR_AFFINITY]),
    ("taint", pod(), TAINTED, pr.NodeUsage(), ["node(s) had untolerated taint {k: v}"]),
    ("taint-tolerated-equal", pod(tolerations=[{"key": "k", "operator": "Equal", "value": "v",
                                                "effect": "NoSchedule"}]),
     TAINTED, pr.NodeUsage(), []),
    ("taint-wrong-value", pod(tolerations=[{"key": "k", "value": "x"}]), TAINTED,
     pr.NodeUsage(), ["node(s) had untolerated taint {k: v}"]),
    ("taint-tolerated-exists", pod(tolerations=[{"operator": "Exists"}]), TAINTED,
     pr.NodeUsage(), []),
    ("taint-other-effect", pod(tolerations=[{"key": "k", "operator": "Exists",
                                             "effect": "NoExecute"}]),
     TAINTED, pr.NodeUsage(), ["node(s) had untolerated taint {k: v}"]),
    ("noexecute", pod(), node("n1", taints=[{"key": "gpu", "effect": "NoExecute"}]),
     pr.NodeUsage(), ["node(s) had untolerated taint {gpu: }"]),
    ("prefer-no-schedule-is-no-filter", pod(),
     node("n1", taints=[{"key": "k", "effect": "PreferNoSchedule"}]), pr.NodeUsage(), []),
    ("unschedulable", pod(), node("n1", unschedulable=True), pr.NodeUsage(),
     [pr.ERR_UNSCHEDULABLE]),
    ("unschedulable-tolerated", pod(tolerations=[{"key": "node.kubernetes.io/unschedulable",
                                                  "operator": "Exists"}]),
     node("n1", unschedulable=True), pr.NodeUsage(), []),
    ("not-ready", pod(), node("n1", ready="False"), pr.NodeUsage(),
     ["node(s) had untolerated taint {node.kubernetes.io/not-ready: }"]),
    ("unreachable", pod(), node("n1", ready="Unknown"), pr.NodeUsage(),
     ["node(s) had untolerated taint {node.kubernetes.io/unreachable: }"]),
    ("cpu", pod(cpu="3"), node("n1"), pr.NodeUsage(requested={"cpu": 1500}),
     ["Insufficient cpu"]),
    ("cpu-exactly-full", pod(cpu="2500m"), node("n1"), pr.NodeUsage(requested={"cpu": 1500}),
     []),
    ("cpu-and-memory", pod(cpu="5", memory="9Gi"), node("n1"), pr.NodeUsage(),
     ["Insufficient cpu", "Insufficient memory"]),
    ("init-container-max", pod(cpu="1", init_cpu="5"), node("n1"), pr.NodeUsage(),
     ["Insufficient cpu"]),
    ("too-many-pods", pod(), node("n1", pods="2"), pr.NodeUsage(pods=2), ["Too many pods"]),
    ("taint-before-affinity", pod(node_selector={"disk": "hdd"}), TAINTED, pr.NodeUsage(),
     ["node(s) had untolerated taint {k: v}"]),
]


@pytest.mark.parametrize("p,n,usage,want", [c[1:] for c in FIT_CASES],
                         ids=[c[0] for c in FIT_CASES])
def test_fit_reasons(p: Obj, n: Obj, usage: pr.NodeUsage, want: list[str]) -> None:
    assert pr.fit_reasons(p, n, usage) == want


MESSAGE_CASES = [
    ("no-nodes", 0, [], "", False, "no nodes available to schedule pods"),
    ("mixed", 3, [["node(s) had untolerated taint {k: v}"], [pr.ERR_AFFINITY],
                  [pr.ERR_AFFINITY]], "", False,
     "0/3 nodes are available: 1 node(s) had untolerated taint {k: v}, 2 node(s) didn't "
     "match Pod's node affinity/selector. preemption: 0/3 nodes are available: 3 Preemption "
     "is not helpful for scheduling."),
    ("resources", 2, [["Insufficient cpu", "Insufficient memory"], ["Insufficient cpu"]], "",
     False,
     "0/2 nodes are available: 1 Insufficient memory, 2 Insufficient cpu. preemption: 0/2 "
     "nodes are available: 2 No preemption victims found for incoming pod."),
    ("prefilter", 3, [], "pod has unbound immediate PersistentVolumeClaims", False,
     "0/3 nodes are available: pod has unbound immediate PersistentVolumeClaims. preemption: "
     "0/3 nodes are available: 3 Preemption is not helpful for scheduling."),
    ("never-preempt", 1, [[pr.ERR_UNSCHEDULABLE]], "", True,
     "0/1 nodes are available: 1 node(s) were unschedulable. preemption: not eligible due to "
     "preemptionPolicy=Never."),
]


@pytest.mark.parametrize("total,reasons,prefilter,never,want", [c[1:] for c in MESSAGE_CASES],
                         ids=[c[0] for c in MESSAGE_CASES])
def test_fit_error_message(total: int, reasons: list[list[str]], prefilter: str, never: bool,
                           want: str) -> None:
    assert fit_error_message(total, reasons, prefilter, never) == want


def test_pod_requests_sidecars_and_overhead() -> None:
    p = pod(cpu="500m", memory="64Mi")
    p["spec"]["initContainers"] = [
        {"name": "side", "image": "x", "restartPolicy": "Always",
         "resources": {"requests": {"cpu": "100m"}}},
        {"name": "init", "image": "x", "resources": {"limits": {"cpu": "2", "memory": "1Gi"}}}]
    p["spec"]["overhead"] = {"cpu": "10m"}
    # app 500m + sidecar 100m = 600m; init step 2000m + sidecar 100m = 2100m; + overhead.
    assert pr.pod_requests(p) == {"cpu": 2110, "memory": 1024 ** 3}


# ---- against a store ------------------------------------------------------------------------

@pytest.fixture
async def env(tmp_path: Any) -> AsyncIterator[tuple[ControllerContext, Scheduler]]:
    store = SQLiteStore(":memory:")
    api = ObjectAPI(store, clock=lambda: NOW)
    await ensure_system_objects(api)
    cfg = replace(netd.config.load(None), state_dir=str(tmp_path))
    ctx = build_context(api, cfg)
    ctx.now = lambda: NOW
    sched = Scheduler(ctx)
    tasks = [asyncio.create_task(inf.run()) for inf in ctx.factory.informers]
    tasks.append(asyncio.create_task(ctx.recorder.run()))
    await ctx.factory.wait_synced()
    yield ctx, sched
    sched.stop()
    ctx.factory.stop()
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await store.close()


def _in_step(ctx: ControllerContext) -> bool:
    for inf in ctx.factory.informers:
        items, _ = ctx.api.store.list(inf.rt.group_resource)
        want = {key_of(i.obj): i.obj["metadata"]["resourceVersion"] for i in items}
        have = {k: (inf.get(k) or {}).get("metadata", {}).get("resourceVersion")
                for k in inf.keys()}
        if want != have:
            return False
    return True


async def caught_up(ctx: ControllerContext) -> None:
    """Every informer cache equals the store (writes are seen by the controllers)."""
    async def poll() -> None:
        while not _in_step(ctx):
            await asyncio.sleep(0.001)
    await asyncio.wait_for(poll(), DEADLINE)


async def eventually(pred: Callable[[], bool]) -> None:
    async def poll() -> None:
        while not pred():
            await asyncio.sleep(0.002)
    await asyncio.wait_for(poll(), DEADLINE)


async def schedule(ctx: ControllerContext, sched: Scheduler, *names: str) -> None:
    await caught_up(ctx)
    for name in names:
        await sched.reconcile(f"default/{name}")


def pod_obj(ctx: ControllerContext, name: str) -> Obj:
    return ctx.client.get("Pod", "default", name)


def condition(p: Obj, type_: str) -> Obj | None:
    return next((c for c in p["status"].get("conditions") or [] if c["type"] == type_), None)


async def events_for(ctx: ControllerContext, name: str) -> list[Obj]:
    await ctx.recorder.flush()
    return [e for e in ctx.client.list("Event", "default")
            if e["involvedObject"]["name"] == name]


async def test_binds_and_records_scheduled(env: tuple[ControllerContext, Scheduler]) -> None:
    ctx, sched = env
    await ctx.client.create("Node", node("node-1"))
    await ctx.client.create("Pod", pod("web-0"))
    await schedule(ctx, sched, "web-0")
    p = pod_obj(ctx, "web-0")
    assert p["spec"]["nodeName"] == "node-1"
    cond = condition(p, "PodScheduled")
    assert cond is not None and cond["status"] == "True"
    assert cond["lastTransitionTime"] == "2025-01-02T03:04:05Z"
    evs = await events_for(ctx, "web-0")
    assert [(e["type"], e["reason"], e["message"], e["source"]["component"]) for e in evs] == [
        ("Normal", "Scheduled", "Successfully assigned default/web-0 to node-1",
         "default-scheduler")]


async def test_spreads_replicas_then_least_requested(
        env: tuple[ControllerContext, Scheduler]) -> None:
    ctx, sched = env
    for n in ("node-1", "node-2", "node-3"):
        await ctx.client.create("Node", node(n))
    # A heavy unrelated pod on node-1 makes it the most requested one.
    heavy = pod("heavy", cpu="3")
    heavy["spec"]["nodeName"] = "node-1"
    await ctx.client.create("Pod", heavy)
    names = [f"web-{i}" for i in range(6)]
    for name in names:
        await ctx.client.create("Pod", pod(name, owner="rs-uid"))
    await schedule(ctx, sched, *names)   # no waiting between: assumed pods count at once
    placed = [pod_obj(ctx, n)["spec"]["nodeName"] for n in names]
    assert placed[:3] == ["node-2", "node-3", "node-1"]
    assert sorted(placed) == ["node-1", "node-1", "node-2", "node-2", "node-3", "node-3"]


async def test_unschedulable_condition_event_and_retry_on_node_change(
        env: tuple[ControllerContext, Scheduler]) -> None:
    ctx, sched = env
    await ctx.client.create("Node", node("node-1", taints=[{"key": "k", "value": "v",
                                                             "effect": "NoSchedule"}]))
    await ctx.client.create("Node", node("node-2"))
    await ctx.client.create("Node", node("node-3"))
    await ctx.client.create("Pod", pod("web-0", node_selector={"disk": "ssd"}))
    await schedule(ctx, sched, "web-0")
    p = pod_obj(ctx, "web-0")
    assert "nodeName" not in p["spec"]
    assert p["status"]["phase"] == "Pending"
    want = ("0/3 nodes are available: 1 node(s) had untolerated taint {k: v}, 2 node(s) didn't "
            "match Pod's node affinity/selector. preemption: 0/3 nodes are available: 3 "
            "Preemption is not helpful for scheduling.")
    cond = condition(p, "PodScheduled")
    assert cond is not None
    assert (cond["status"], cond["reason"], cond["message"]) == ("False", "Unschedulable", want)
    evs = await events_for(ctx, "web-0")
    assert [(e["type"], e["reason"], e["message"]) for e in evs] == [
        ("Warning", "FailedScheduling", want)]
    assert "default/web-0" in sched.unschedulable

    # The scheduler runs from here on: labelling a node must bring the pod back.
    runner = asyncio.create_task(sched.run())
    n2 = ctx.client.get("Node", "", "node-2")
    n2["metadata"]["labels"]["disk"] = "ssd"
    await ctx.client.update("Node", n2)
    await eventually(lambda: pod_obj(ctx, "web-0")["spec"].get("nodeName") == "node-2")
    assert condition(pod_obj(ctx, "web-0"), "PodScheduled")["status"] == "True"  # type: ignore
    sched.stop()
    await runner


async def test_resources_account_for_bound_and_assumed_pods(
        env: tuple[ControllerContext, Scheduler]) -> None:
    ctx, sched = env
    await ctx.client.create("Node", node("node-1", cpu="4", pods="3"))
    for name in ("a", "b"):
        await ctx.client.create("Pod", pod(name, cpu="3"))
    await schedule(ctx, sched, "a", "b")
    assert pod_obj(ctx, "a")["spec"]["nodeName"] == "node-1"
    msg = condition(pod_obj(ctx, "b"), "PodScheduled")["message"]  # type: ignore[index]
    assert msg.startswith("0/1 nodes are available: 1 Insufficient cpu. preemption: 0/1 nodes "
                          "are available: 1 No preemption victims found")
    # Deleting the first pod frees the node: the waiting pod is retried and fits.
    runner = asyncio.create_task(sched.run())
    await ctx.client.delete("Pod", "default", "a", grace=0)
    await eventually(lambda: pod_obj(ctx, "b")["spec"].get("nodeName") == "node-1")
    sched.stop()
    await runner


async def test_pods_count_and_preset_node_name(env: tuple[ControllerContext, Scheduler]) -> None:
    ctx, sched = env
    await ctx.client.create("Node", node("node-1", pods="1"))
    preset = pod("preset")
    preset["spec"]["nodeName"] = "node-1"
    await ctx.client.create("Pod", preset)
    await ctx.client.create("Pod", pod("other"))
    await schedule(ctx, sched, "preset", "other")
    assert pod_obj(ctx, "preset")["spec"]["nodeName"] == "node-1"
    assert "Too many pods" in condition(pod_obj(ctx, "other"),
                                        "PodScheduled")["message"]  # type: ignore[index]


async def test_other_scheduler_and_gated_pods_are_left_alone(
        env: tuple[ControllerContext, Scheduler]) -> None:
    ctx, sched = env
    await ctx.client.create("Node", node("node-1"))
    other = pod("other")
    other["spec"]["schedulerName"] = "my-scheduler"
    gated = pod("gated")
    gated["spec"]["schedulingGates"] = [{"name": "example.com/wait"}]
    await ctx.client.create("Pod", other)
    await ctx.client.create("Pod", gated)
    await schedule(ctx, sched, "other", "gated")
    assert "nodeName" not in pod_obj(ctx, "other")["spec"]
    g = pod_obj(ctx, "gated")
    assert "nodeName" not in g["spec"]
    cond = condition(g, "PodScheduled")
    assert cond is not None and cond["reason"] == "SchedulingGated"


async def test_waits_for_unbound_immediate_claims(
        env: tuple[ControllerContext, Scheduler]) -> None:
    ctx, sched = env
    await ctx.client.create("Node", node("node-1"))
    await ctx.client.create("Pod", pod("db", volumes=[
        {"name": "data", "persistentVolumeClaim": {"claimName": "data"}}]))
    await schedule(ctx, sched, "db")
    assert condition(pod_obj(ctx, "db"), "PodScheduled")["message"] == (  # type: ignore
        '0/1 nodes are available: persistentvolumeclaim "data" not found. preemption: 0/1 '
        "nodes are available: 1 Preemption is not helpful for scheduling.")
    claim = {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
             "metadata": {"name": "data", "namespace": "default"},
             "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "",
                      "resources": {"requests": {"storage": "1Gi"}}}}
    await ctx.client.create("PersistentVolumeClaim", claim)
    await schedule(ctx, sched, "db")
    assert condition(pod_obj(ctx, "db"), "PodScheduled")["message"].startswith(  # type: ignore
        "0/1 nodes are available: pod has unbound immediate PersistentVolumeClaims.")
    c = ctx.client.get("PersistentVolumeClaim", "default", "data")
    c["spec"]["volumeName"] = "pv1"
    await ctx.client.update("PersistentVolumeClaim", c)
    await schedule(ctx, sched, "db")
    assert pod_obj(ctx, "db")["spec"]["nodeName"] == "node-1"


async def test_preferences_taints_and_affinity(env: tuple[ControllerContext, Scheduler]) -> None:
    ctx, sched = env
    await ctx.client.create("Node", node("node-1", taints=[{"key": "k",
                                                             "effect": "PreferNoSchedule"}]))
    await ctx.client.create("Node", node("node-2", labels={"zone": "b"}))
    await ctx.client.create("Node", node("node-3"))
    await ctx.client.create("Pod", pod("a"))
    prefers = pod("b", affinity={"preferredDuringSchedulingIgnoredDuringExecution": [
        {"weight": 10, "preference": {"matchExpressions": [expr("zone", "In", "b")]}}]})
    await ctx.client.create("Pod", prefers)
    await schedule(ctx, sched, "a")
    assert pod_obj(ctx, "a")["spec"]["nodeName"] == "node-2"   # not the PreferNoSchedule node
    await schedule(ctx, sched, "b")
    assert pod_obj(ctx, "b")["spec"]["nodeName"] == "node-2"   # preferred, though busier


# ---- pods/binding ---------------------------------------------------------------------------

async def test_bind_semantics(env: tuple[ControllerContext, Scheduler]) -> None:
    ctx, _ = env
    api = ctx.api
    created = await ctx.client.create("Pod", pod("p"))
    out = await bind(api, "default", "p", "node-9", annotations={"a": "b"})
    assert out["spec"]["nodeName"] == "node-9"
    assert out["metadata"]["annotations"] == {"a": "b"}
    assert out["metadata"].get("generation") == created["metadata"].get("generation")
    with pytest.raises(errors.Conflict) as exc:
        await bind(api, "default", "p", "node-1")
    assert exc.value.message == ('Operation cannot be fulfilled on pods/binding "p": pod p is '
                                 'already assigned to node "node-9"')
    with pytest.raises(errors.NotFound):
        await bind(api, "default", "missing", "node-1")
    await ctx.client.create("Pod", pod("q"))
    with pytest.raises(errors.Conflict, match="Precondition failed: UID"):
        await bind(api, "default", "q", "node-1", uid="not-the-uid")
    status = await create_binding(api, "default", "q", {
        "apiVersion": "v1", "kind": "Binding", "metadata": {"name": "q"},
        "target": {"apiVersion": "v1", "kind": "Node", "name": "node-2"}})
    assert status["status"] == "Success"
    assert pod_obj(ctx, "q")["spec"]["nodeName"] == "node-2"
    with pytest.raises(errors.BadRequest):
        await create_binding(api, "default", "q", {"metadata": {"name": "other"},
                                                   "target": {"name": "n"}})
    with pytest.raises(errors.Invalid):
        await create_binding(api, "default", "q", {"metadata": {"name": "q"}, "target": {}})


async def test_key_of_bound_pod_is_dropped_from_unschedulable(
        env: tuple[ControllerContext, Scheduler]) -> None:
    ctx, sched = env
    await ctx.client.create("Pod", pod("p"))
    await schedule(ctx, sched, "p")
    assert sched.unschedulable == {"default/p"}
    assert condition(pod_obj(ctx, "p"), "PodScheduled")["message"] == (  # type: ignore
        "no nodes available to schedule pods")
    await bind(ctx.api, "default", "p", "elsewhere")
    await schedule(ctx, sched, "p")
    assert sched.unschedulable == set()
    assert key_of(pod_obj(ctx, "p")) == "default/p"
