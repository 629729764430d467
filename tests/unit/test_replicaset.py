"""ReplicaSet / ReplicationController controller against a real in-memory store, with
the test acting as kubelet."""
from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any, AsyncIterator

import pytest

from netd.api import errors
from netd.controllers.replicaset import ReplicaSetController, \
    ReplicationControllerController, slow_start_batch
from netd.controllers.replicaset_util import calculate_status, next_availability_check, \
    sort_for_deletion
from tests.unit.replica_env import Env, env_fixture, pod_template

Obj = dict[str, Any]
NAME_RE = re.compile(r"^web-[bcdfghjklmnpqrstvwxz2456789]{5}$")


@pytest.fixture
async def env() -> AsyncIterator[Env]:
    async for e in env_fixture():
        yield e


def rs(name: str = "web", replicas: int = 3, labels: dict[str, str] | None = None,
       **spec: Any) -> Obj:
    labels = labels or {"app": name}
    return {"apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"replicas": replicas, "selector": {"matchLabels": dict(labels)},
                     "template": pod_template(labels), **spec}}


def rc(name: str = "web", replicas: int = 3) -> Obj:
    return {"apiVersion": "v1", "kind": "ReplicationController",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"replicas": replicas, "selector": {"app": name},
                     "template": pod_template({"app": name})}}


def orphan(name: str, labels: dict[str, str], node: str = "") -> Obj:
    spec: Obj = {"containers": [{"name": "web", "image": "nginx"}]}
    if node:
        spec["nodeName"] = node
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "default", "labels": labels},
            "spec": spec}


async def scale(env: Env, kind: str, name: str, n: int) -> None:
    await env.client.patch(kind, "default", name, {"spec": {"replicas": n}})


@pytest.fixture
async def rsc(env: Env) -> ReplicaSetController:
    c = ReplicaSetController(env.ctx)
    await env.run(c)
    return c


# ---- replicas ---------------------------------------------------------------------------

@pytest.mark.parametrize("start,target", [(0, 3), (3, 5), (5, 2), (3, 0)],
                         ids=["create", "scale-up", "scale-down", "to-zero"])
async def test_keeps_replicas(env: Env, rsc: ReplicaSetController, start: int,
                              target: int) -> None:
    await env.client.create("ReplicaSet", rs(replicas=start))
    await env.settle()
    assert len(env.pods()) == start
    await scale(env, "ReplicaSet", "web", target)
    await env.settle()
    pods = env.pods()
    assert len(pods) == target
    owner = env.get("ReplicaSet", "web")
    for p in pods:
        assert NAME_RE.match(p["metadata"]["name"])
        assert p["metadata"]["generateName"] == "web-"
        assert p["metadata"]["labels"] == {"app": "web"}
        assert p["metadata"]["ownerReferences"] == [{
            "apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web",
            "uid": owner["metadata"]["uid"], "controller": True, "blockOwnerDeletion": True}]
    status = owner["status"]
    assert status["replicas"] == target
    assert status.get("fullyLabeledReplicas", 0) == target
    assert status["observedGeneration"] == owner["metadata"]["generation"]
    created = await env.events("SuccessfulCreate")
    deleted = await env.events("SuccessfulDelete")
    assert len(created) == max(start, target)
    assert all(m.startswith("Created pod: web-") for m in created)
    assert len(deleted) == max(0, start - target)


async def test_deleted_pod_is_replaced_with_new_name(env: Env, rsc: ReplicaSetController
                                                     ) -> None:
    await env.client.create("ReplicaSet", rs(replicas=2))
    await env.settle()
    before = {p["metadata"]["name"] for p in env.pods()}
    victim = sorted(before)[0]
    await env.client.delete("pods", "default", victim)
    await env.settle()
    after = {p["metadata"]["name"] for p in env.pods()}
    assert len(after) == 2 and victim not in after
    assert len(after - before) == 1


@pytest.mark.parametrize("phase", ["Failed", "Succeeded"])
async def test_finished_pod_is_replaced(env: Env, rsc: ReplicaSetController,
                                        phase: str) -> None:
    await env.client.create("ReplicaSet", rs(replicas=1))
    await env.settle()
    [pod] = env.pods()
    pod["status"] = {"phase": phase}
    await env.client.update_status("pods", pod)
    await env.settle()
    active = env.pods()
    assert len(active) == 1 and active[0]["metadata"]["name"] != pod["metadata"]["name"]
    assert env.get("ReplicaSet", "web")["status"]["replicas"] == 1


async def test_ready_and_available_counts(env: Env, rsc: ReplicaSetController) -> None:
    await env.client.create("ReplicaSet", rs(replicas=3, minReadySeconds=10))
    await env.settle()
    pods = env.pods()
    await env.ready(pods[0])
    await env.ready(pods[1])
    await env.settle()
    st = env.get("ReplicaSet", "web")["status"]
    assert st["readyReplicas"] == 2 and "availableReplicas" not in st
    # minReadySeconds later (the controller has a timer for it; the test drives it).
    env.now.advance(10)
    await rsc.reconcile("default/web")
    st = env.get("ReplicaSet", "web")["status"]
    assert (st["readyReplicas"], st["availableReplicas"]) == (2, 2)


# ---- ownership ------------------------------------------------------------------------

async def test_adopts_matching_orphans_first(env: Env, rsc: ReplicaSetController) -> None:
    await env.client.create("pods", orphan("mine", {"app": "web"}))
    await env.client.create("pods", orphan("other", {"app": "other"}))
    await env.client.create("ReplicaSet", rs(replicas=2))
    await env.settle()
    owned = {p["metadata"]["name"]: p for p in env.pods(selector="app=web")}
    assert "mine" in owned and len(owned) == 2
    ref = owned["mine"]["metadata"]["ownerReferences"][0]
    assert (ref["kind"], ref["name"], ref["controller"]) == ("ReplicaSet", "web", True)
    assert "ownerReferences" not in env.get("pods", "other")["metadata"]
    assert len(await env.events("SuccessfulCreate")) == 1


async def test_releases_pod_that_stops_matching(env: Env, rsc: ReplicaSetController) -> None:
    await env.client.create("ReplicaSet", rs(replicas=2))
    await env.settle()
    name = env.pods()[0]["metadata"]["name"]
    await env.client.patch("pods", "default", name, {"metadata": {"labels": {"app": "x"}}})
    await env.settle()
    released = env.get("pods", name)
    assert not released["metadata"].get("ownerReferences")
    assert len(env.pods(selector="app=web")) == 2  # a replacement took its place


async def test_pod_of_another_controller_is_left_alone(env: Env,
                                                       rsc: ReplicaSetController) -> None:
    await env.client.create("ReplicaSet", rs("a", replicas=1, labels={"app": "web"}))
    await env.settle()
    await env.client.create("ReplicaSet", rs("b", replicas=1, labels={"app": "web"}))
    await env.settle()
    pods = env.pods()
    assert len(pods) == 2
    assert sorted(p["metadata"]["ownerReferences"][0]["name"] for p in pods) == ["a", "b"]


# ---- deletion order ---------------------------------------------------------------------

def pod(name: str, *, node: str = "", phase: str = "Running", ready: str | None = None,
        restarts: int = 0, created: str = "2025-01-01T00:00:00Z", cost: int | None = None
        ) -> Obj:
    meta: Obj = {"name": name, "uid": name, "creationTimestamp": created}
    if cost is not None:
        meta["annotations"] = {"controller.kubernetes.io/pod-deletion-cost": str(cost)}
    status: Obj = {"phase": phase,
                   "containerStatuses": [{"name": "c", "restartCount": restarts}]}
    if ready:
        status["conditions"] = [{"type": "Ready", "status": "True",
                                 "lastTransitionTime": ready}]
    return {"metadata": meta, "spec": {"nodeName": node}, "status": status}


NOW = datetime(2025, 1, 2, tzinfo=timezone.utc)
R = "2025-01-01T00:00:00Z"


@pytest.mark.parametrize("first,second", [
    (pod("a"), pod("b", node="n1")),
    (pod("a", node="n", phase="Pending"), pod("b", node="n", phase="Unknown")),
    (pod("a", node="n", phase="Unknown"), pod("b", node="n", phase="Running")),
    (pod("a", node="n"), pod("b", node="n", ready=R)),
    (pod("a", node="n", ready=R, cost=-5), pod("b", node="n", ready=R)),
    (pod("a", node="n", ready="2025-01-01T23:00:00Z"), pod("b", node="n", ready=R)),
    (pod("a", node="n", ready=R, restarts=3), pod("b", node="n", ready=R, restarts=1)),
    (pod("a", node="n", created="2025-01-01T20:00:00Z"), pod("b", node="n")),
], ids=["unassigned", "pending<unknown", "unknown<running", "not-ready", "deletion-cost",
        "ready-less-time", "more-restarts", "newer"])
def test_deletion_order(first: Obj, second: Obj) -> None:
    assert [p["metadata"]["name"] for p in sort_for_deletion([second, first], now=NOW)] \
        == ["a", "b"]
    assert [p["metadata"]["name"] for p in sort_for_deletion([first, second], now=NOW)] \
        == ["a", "b"]


def test_deletion_prefers_doubled_up_nodes() -> None:
    a, b, c = pod("a", node="n1", ready=R), pod("b", node="n1", ready=R), \
        pod("c", node="n2", ready=R)
    # c's node holds only c; a and b share n1, so one of them goes first.
    assert sort_for_deletion([c, a, b], now=NOW)[-1]["metadata"]["name"] == "c"


async def test_scale_down_deletes_cheapest(env: Env, rsc: ReplicaSetController) -> None:
    # Four adopted pods of different cost; scaling to 1 keeps the Running+Ready one.
    for name, node in (("p-ready", "node-1"), ("p-running", "node-1"),
                       ("p-pending", "node-1"), ("p-unassigned", "")):
        await env.client.create("pods", orphan(name, {"app": "web"}, node=node))
    await env.ready(env.get("pods", "p-ready"), since="2025-01-01T00:00:00Z")
    p = env.get("pods", "p-running")
    p["status"]["phase"] = "Running"
    await env.client.update_status("pods", p)
    await env.client.create("ReplicaSet", rs(replicas=4))
    await env.settle()
    await scale(env, "ReplicaSet", "web", 1)
    await env.settle()
    assert [p["metadata"]["name"] for p in env.pods()] == ["p-ready"]
    # Bound pods are deleted gracefully (the kubelet finishes them), unbound at once.
    assert env.client.get_or_none("pods", "default", "p-unassigned") is None
    assert env.get("pods", "p-pending")["metadata"].get("deletionTimestamp")


# ---- failures, batching, expectations ----------------------------------------------------

async def test_slow_start_batches_stop_at_first_failure() -> None:
    calls = 0

    async def fn() -> None:
        nonlocal calls
        calls += 1
        if calls == 5:
            raise errors.Forbidden("quota")

    ok, err = await slow_start_batch(20, 1, fn)
    assert calls == 7 and ok == 6  # batches 1, 2, 4: the third one fails
    assert isinstance(err, errors.Forbidden)


async def test_failed_create_sets_condition_and_event(env: Env, rsc: ReplicaSetController,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    real_create = env.client.create

    async def refuse(kind: Any, body: Obj, namespace: str | None = None) -> Obj:
        if body.get("kind") == "Pod":
            raise errors.Forbidden('pods "web-x" is forbidden: exceeded quota: q')
        return await real_create(kind, body, namespace)

    monkeypatch.setattr(env.client, "create", refuse)
    await env.client.create("ReplicaSet", rs(replicas=2))
    await env.until(lambda: bool(env.get("ReplicaSet", "web").get("status", {})
                                 .get("conditions")))
    [cond] = env.get("ReplicaSet", "web")["status"]["conditions"]
    assert (cond["type"], cond["status"], cond["reason"]) == \
        ("ReplicaFailure", "True", "FailedCreate")
    assert "exceeded quota" in cond["message"]
    assert (await env.events("FailedCreate"))[0].startswith("Error creating: pods")
    monkeypatch.setattr(env.client, "create", real_create)
    rsc.queue.forget("default/web")
    rsc.enqueue("default/web")
    await env.until(lambda: len(env.pods()) == 2 and
                    "conditions" not in env.get("ReplicaSet", "web")["status"])


async def test_no_double_create_before_informer_catches_up(env: Env) -> None:
    c = ReplicaSetController(env.ctx)
    await env.start_informers()
    await env.client.create("ReplicaSet", rs(replicas=3))
    await env.caught_up()
    c.pods.stop()  # the pod informer will not see the creates
    await c.reconcile("default/web")
    await c.reconcile("default/web")
    assert len(env.pods()) == 3
    assert "default/web" in c.expectations


def test_status_and_availability_pure() -> None:
    owner = {"metadata": {"generation": 4}, "status": {},
             "spec": {"replicas": 3, "minReadySeconds": 30,
                      "template": {"metadata": {"labels": {"app": "w", "tier": "f"}}}}}
    pods = [
        {"metadata": {"labels": {"app": "w", "tier": "f"}},
         "status": {"conditions": [{"type": "Ready", "status": "True",
                                    "lastTransitionTime": "2025-01-01T23:59:00Z"}]}},
        {"metadata": {"labels": {"app": "w"}},
         "status": {"conditions": [{"type": "Ready", "status": "True",
                                    "lastTransitionTime": "2025-01-01T23:59:50Z"}]}},
    ]
    st = calculate_status(owner, pods, None, NOW)
    assert st == {"replicas": 2, "fullyLabeledReplicas": 1, "readyReplicas": 2,
                  "availableReplicas": 1, "observedGeneration": 4}
    assert next_availability_check(pods, 30, NOW) == 20.0


# ---- ReplicationController -------------------------------------------------------------

async def test_replication_controller(env: Env) -> None:
    c = ReplicationControllerController(env.ctx)
    await env.run(c)
    await env.client.create("pods", orphan("adopted", {"app": "web"}))
    await env.client.create("ReplicationController", rc(replicas=3))
    await env.settle()
    pods = env.pods()
    assert len(pods) == 3
    for p in pods:
        ref = p["metadata"]["ownerReferences"][0]
        assert (ref["apiVersion"], ref["kind"], ref["name"]) == \
            ("v1", "ReplicationController", "web")
    st = env.get("ReplicationController", "web")["status"]
    assert st["replicas"] == 3
    await scale(env, "ReplicationController", "web", 1)
    await env.settle()
    assert len(env.pods()) == 1
    await env.ctx.recorder.flush()
    sources = {e["source"]["component"] for e in env.client.list("events", "default")}
    assert sources == {"replication-controller"}
