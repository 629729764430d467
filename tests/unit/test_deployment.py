"""Deployment controller (with the ReplicaSet controller) against a real in-memory
store; the test acts as kubelet and checks the rollout invariants at every step."""
from __future__ import annotations

from typing import Any, AsyncIterator

import pytest

from netd.controllers.deployment import DeploymentController
from netd.controllers.deployment_util import (
    DESIRED_REPLICAS, HASH_LABEL, MAX_REPLICAS, REVISION, REVISION_HISTORY, equal_ignore_hash,
    proportional_sizes, resolve_fenceposts, set_new_rs_annotations)
from netd.controllers.podutil import template_hash
from netd.controllers.replicaset import ReplicaSetController
from netd.registry.objectapi import JSON_PATCH
from tests.unit.replica_env import Env, env_fixture, pod_template

Obj = dict[str, Any]
KEY = "default/web"


class Cluster:
    def __init__(self, env: Env, dc: DeploymentController, rsc: ReplicaSetController) -> None:
        self.env, self.dc, self.rsc = env, dc, rsc


@pytest.fixture
async def c() -> AsyncIterator[Cluster]:
    async for env in env_fixture():
        rsc = ReplicaSetController(env.ctx)
        dc = DeploymentController(env.ctx)
        await env.run(rsc, dc)
        yield Cluster(env, dc, rsc)


def deploy(replicas: int = 3, *, image: str = "nginx:1", surge: Any = "25%",
           unavailable: Any = "25%", strategy: str = "RollingUpdate", **spec: Any) -> Obj:
    strat: Obj = {"type": strategy}
    if strategy == "RollingUpdate":
        strat["rollingUpdate"] = {"maxSurge": surge, "maxUnavailable": unavailable}
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}},
                     "template": pod_template({"app": "web"}, image), "strategy": strat,
                     **spec}}


def get_d(env: Env) -> Obj:
    return env.get("Deployment", "web")


def replicasets(env: Env) -> list[Obj]:
    return sorted(env.client.list("ReplicaSet", "default"),
                  key=lambda rs: int(rs["metadata"]["annotations"][REVISION]))


def cond(d: Obj, type_: str) -> Obj:
    return next(c for c in d["status"]["conditions"] if c["type"] == type_)


def image_of(obj: Obj) -> str:
    spec = obj["spec"]["template"]["spec"] if "template" in obj["spec"] else obj["spec"]
    return str(spec["containers"][0]["image"])


async def set_image(env: Env, image: str) -> None:
    await env.client.patch("Deployment", "default", "web", {"spec": {"template": {"spec": {
        "containers": [{"name": "web", "image": image}]}}}})


def complete(env: Env) -> bool:
    d = get_d(env)
    st, want = d["status"], d["spec"]["replicas"]
    return st.get("observedGeneration") == d["metadata"]["generation"] and \
        st.get("updatedReplicas", 0) == st.get("replicas", 0) == \
        st.get("availableReplicas", 0) == want


async def converge(env: Env, rounds: int = 60) -> None:
    """Kubelet until the rollout completes."""
    for _ in range(rounds):
        await env.settle()
        if complete(env) and not await env.kubelet():
            return
        await env.kubelet()
    raise AssertionError(f"rollout did not complete: {get_d(env)['status']}")


async def all_ready(env: Env, rounds: int = 60) -> None:
    """Kubelet until every pod is ready and the controllers are done (paused rollouts
    never complete)."""
    for _ in range(rounds):
        await env.settle()
        if not await env.kubelet():
            await env.settle()
            return
    raise AssertionError("pods did not settle")


# ---- creation ---------------------------------------------------------------------------

async def test_first_rollout(c: Cluster) -> None:
    env = c.env
    await env.client.create("Deployment", deploy(3))
    await converge(env)
    d = get_d(env)
    [rs] = replicasets(env)
    h = rs["metadata"]["labels"][HASH_LABEL]
    assert rs["metadata"]["name"] == f"web-{h}"
    assert rs["spec"]["selector"]["matchLabels"] == {"app": "web", HASH_LABEL: h}
    assert rs["spec"]["template"]["metadata"]["labels"] == {"app": "web", HASH_LABEL: h}
    assert rs["metadata"]["annotations"] == {REVISION: "1", DESIRED_REPLICAS: "3",
                                             MAX_REPLICAS: "4"}
    ref = rs["metadata"]["ownerReferences"][0]
    assert (ref["kind"], ref["name"], ref["uid"], ref["controller"],
            ref["blockOwnerDeletion"]) == ("Deployment", "web", d["metadata"]["uid"], True,
                                           True)
    assert all(p["metadata"]["labels"][HASH_LABEL] == h for p in env.pods())
    assert d["metadata"]["annotations"][REVISION] == "1"
    st = d["status"]
    assert {k: st.get(k) for k in ("observedGeneration", "replicas", "updatedReplicas",
                                   "readyReplicas", "availableReplicas")} == \
        {"observedGeneration": 1, "replicas": 3, "updatedReplicas": 3, "readyReplicas": 3,
         "availableReplicas": 3}
    assert "unavailableReplicas" not in st
    assert [x["type"] for x in st["conditions"]] == ["Available", "Progressing"]
    assert (cond(d, "Available")["status"], cond(d, "Available")["reason"]) == \
        ("True", "MinimumReplicasAvailable")
    prog = cond(d, "Progressing")
    assert (prog["status"], prog["reason"], prog["message"]) == \
        ("True", "NewReplicaSetAvailable",
         f'ReplicaSet "web-{h}" has successfully progressed.')
    assert await env.events("ScalingReplicaSet") == [
        f"Scaled up replica set web-{h} from 0 to 3"]


async def test_unavailable_until_pods_ready(c: Cluster) -> None:
    env = c.env
    await env.client.create("Deployment", deploy(4))
    await env.settle()
    d = get_d(env)
    assert d["status"]["unavailableReplicas"] == 4
    assert (cond(d, "Available")["status"], cond(d, "Available")["reason"]) == \
        ("False", "MinimumReplicasUnavailable")
    assert cond(d, "Progressing")["reason"] in ("NewReplicaSetCreated", "ReplicaSetUpdated")


# ---- rolling update ---------------------------------------------------------------------

@pytest.mark.parametrize("replicas,surge,unavailable,max_total,min_available,first_step", [
    (10, 3, 2, 13, 8, (8, 5)),
    (10, "25%", "25%", 13, 8, (8, 5)),
    (4, "50%", 0, 6, 4, (4, 2)),
    (3, 0, 1, 3, 2, (2, 1)),
    (5, "10%", "10%", 6, 5, (5, 1)),
], ids=["ints", "percent", "surge-only", "unavailable-only", "percent-rounding"])
async def test_rolling_update_invariants(c: Cluster, replicas: int, surge: Any,
                                         unavailable: Any, max_total: int,
                                         min_available: int,
                                         first_step: tuple[int, int]) -> None:
    env = c.env
    await env.client.create("Deployment", deploy(replicas, surge=surge,
                                                 unavailable=unavailable))
    await converge(env)
    await set_image(env, "nginx:2")
    steps = 0
    while True:
        await env.settle()
        rss = replicasets(env)
        sizes = [rs["spec"]["replicas"] for rs in rss]
        pods = env.pods()
        ready = [p for p in pods if p["status"].get("conditions")]
        assert sum(sizes) <= max_total, sizes
        assert len(pods) <= max_total
        assert len(ready) >= min_available
        if steps == 0:
            assert tuple(sizes) == first_step
        if complete(env) and rss[0]["spec"]["replicas"] == 0:
            break
        await env.kubelet()
        steps += 1
        assert steps < 40
    assert steps >= 2, "a rolling update takes several steps"
    assert {image_of(p) for p in env.pods()} == {"nginx:2"}
    assert get_d(env)["metadata"]["annotations"][REVISION] == "2"


async def test_recreate_removes_old_pods_first(c: Cluster) -> None:
    env = c.env
    await env.client.create("Deployment", deploy(2, strategy="Recreate"))
    await env.settle()
    for p in env.pods():
        await env.bind(p)  # bound pods terminate gracefully, as on a node
    await converge(env)
    await set_image(env, "nginx:2")
    await env.settle()
    old, *new = replicasets(env)
    assert old["spec"]["replicas"] == 0
    terminating = env.pods(active=False)
    assert len(terminating) == 2 and all(p["metadata"].get("deletionTimestamp")
                                         for p in terminating)
    assert all(rs["spec"]["replicas"] == 0 for rs in new)
    for p in terminating:  # the kubelet finishes them
        await env.client.delete("pods", "default", p["metadata"]["name"], grace=0)
    await converge(env)
    assert {image_of(p) for p in env.pods()} == {"nginx:2"}
    assert [rs["spec"]["replicas"] for rs in replicasets(env)] == [0, 2]


# ---- fenceposts and proportions (pure) -----------------------------------------------------

@pytest.mark.parametrize("surge,unavailable,desired,expected", [
    ("25%", "25%", 10, (3, 2)),
    ("25%", "25%", 1, (1, 0)),
    ("0%", "10%", 3, (0, 1)),
    (0, 0, 5, (0, 1)),
    ("50%", "50%", 5, (3, 2)),
    (2, "100%", 4, (2, 4)),
], ids=["quarter-of-10", "quarter-of-1", "both-round-to-zero", "zero-zero", "half-of-5",
        "ints-and-all"])
def test_fenceposts(surge: Any, unavailable: Any, desired: int,
                    expected: tuple[int, int]) -> None:
    assert resolve_fenceposts(surge, unavailable, desired) == expected


def rs_obj(name: str, replicas: int, created: str, max_replicas: int | None = None) -> Obj:
    ann = {MAX_REPLICAS: str(max_replicas)} if max_replicas is not None else {}
    return {"metadata": {"name": name, "creationTimestamp": created, "annotations": ann},
            "spec": {"replicas": replicas}}


@pytest.mark.parametrize("new_size,sizes", [
    (15, {"old": 11, "new": 7}),     # the kubernetes.io documentation's example
    (5, {"old": 5, "new": 3}),
    (0, {"old": 0, "new": 0}),
], ids=["up-10-to-15", "down-10-to-5", "to-zero"])
def test_proportional_sizes(new_size: int, sizes: dict[str, int]) -> None:
    d = deploy(new_size, surge=3, unavailable=2)
    d["status"] = {"replicas": 13}
    old = rs_obj("old", 8, "2025-01-01T00:00:00Z", 13)
    new = rs_obj("new", 5, "2025-01-01T01:00:00Z", 13)
    out, _ = proportional_sizes(d, [old, new])
    assert {rs["metadata"]["name"]: n for rs, n in out} == sizes


async def test_proportional_scaling_mid_rollout(c: Cluster) -> None:
    env = c.env
    await env.client.create("Deployment", deploy(10, surge=3, unavailable=2))
    await converge(env)
    await set_image(env, "nginx:broken")  # its pods never become ready
    await env.settle()
    # Surge used up (8 + 5 = 13) and no new pod available: the rollout is stuck.
    assert [rs["spec"]["replicas"] for rs in replicasets(env)] == [8, 5]
    await env.client.patch("Deployment", "default", "web", {"spec": {"replicas": 15}})
    await env.settle()
    old, new = replicasets(env)
    # 18 allowed (15 + 3 surge), 5 to add: 3 to the larger old one, 2 to the new one
    # (the kubernetes.io "proportional scaling" example).
    assert (old["spec"]["replicas"], new["spec"]["replicas"]) == (11, 7)
    for rs in (old, new):
        assert rs["metadata"]["annotations"][DESIRED_REPLICAS] == "15"
        assert rs["metadata"]["annotations"][MAX_REPLICAS] == "18"
    assert len(env.pods()) == 18
    events = await env.events("ScalingReplicaSet")
    assert f"Scaled up replica set {old['metadata']['name']} from 8 to 11" in events
    assert f"Scaled up replica set {new['metadata']['name']} from 5 to 7" in events


# ---- pause, history, rollback, restart ---------------------------------------------------

async def test_pause_and_resume(c: Cluster) -> None:
    env = c.env
    await env.client.create("Deployment", deploy(2))
    await converge(env)
    await env.client.patch("Deployment", "default", "web", {"spec": {"paused": True}})
    await set_image(env, "nginx:2")
    await env.client.patch("Deployment", "default", "web", {"spec": {"replicas": 3}})
    await all_ready(env)
    d = get_d(env)
    [rs] = replicasets(env)
    assert image_of(rs) == "nginx:1" and rs["spec"]["replicas"] == 3  # scaled, not rolled
    assert d["status"]["observedGeneration"] == d["metadata"]["generation"]
    prog = cond(d, "Progressing")
    assert (prog["status"], prog["reason"], prog["message"]) == \
        ("Unknown", "DeploymentPaused", "Deployment is paused")
    await env.client.patch("Deployment", "default", "web", {"spec": {"paused": False}})
    await converge(env)
    assert [image_of(rs) for rs in replicasets(env)] == ["nginx:1", "nginx:2"]
    assert {image_of(p) for p in env.pods()} == {"nginx:2"}
    assert cond(get_d(env), "Progressing")["reason"] == "NewReplicaSetAvailable"


async def test_revision_history_limit(c: Cluster) -> None:
    env = c.env
    await env.client.create("Deployment", deploy(1, revisionHistoryLimit=2))
    await converge(env)
    for tag in ("2", "3", "4", "5"):
        await set_image(env, f"nginx:{tag}")
        await converge(env)
    await env.settle()
    rss = replicasets(env)
    assert [rs["metadata"]["annotations"][REVISION] for rs in rss] == ["3", "4", "5"]
    assert [image_of(rs) for rs in rss] == ["nginx:3", "nginx:4", "nginx:5"]


async def test_rollback_reuses_old_replicaset(c: Cluster) -> None:
    env = c.env
    await env.client.create("Deployment", deploy(2))
    await converge(env)
    await set_image(env, "nginx:2")
    await converge(env)
    first, _ = replicasets(env)
    # What `kubectl rollout undo` sends: revision 1's template without the hash label.
    template = first["spec"]["template"]
    del template["metadata"]["labels"][HASH_LABEL]
    await env.client.patch("Deployment", "default", "web",
                           [{"op": "replace", "path": "/spec/template", "value": template}],
                           JSON_PATCH)
    await converge(env)
    rss = {rs["metadata"]["name"]: rs for rs in env.client.list("ReplicaSet", "default")}
    assert len(rss) == 2
    back = rss[first["metadata"]["name"]]
    assert back["metadata"]["annotations"][REVISION] == "3"
    assert back["metadata"]["annotations"][REVISION_HISTORY] == "1"
    assert back["spec"]["replicas"] == 2
    assert get_d(env)["metadata"]["annotations"][REVISION] == "3"
    assert {image_of(p) for p in env.pods()} == {"nginx:1"}


async def test_restart_makes_new_revision(c: Cluster) -> None:
    env = c.env
    await env.client.create("Deployment", deploy(2))
    await converge(env)
    await env.client.patch("Deployment", "default", "web", {"spec": {"template": {
        "metadata": {"annotations": {
            "kubectl.kubernetes.io/restartedAt": "2025-01-01T12:00:00Z"}}}}})
    await converge(env)
    old, new = replicasets(env)
    assert (old["spec"]["replicas"], new["spec"]["replicas"]) == (0, 2)
    assert new["metadata"]["annotations"][REVISION] == "2"


def test_revision_history_annotation_pure() -> None:
    d = deploy(1)
    d["metadata"]["annotations"] = {"kubernetes.io/change-cause": "v3",
                                    REVISION: "9"}
    rs = {"metadata": {"annotations": {REVISION: "4", REVISION_HISTORY: "1,2"}},
          "spec": {"replicas": 1}}
    assert set_new_rs_annotations(d, rs, "7", True)
    assert rs["metadata"]["annotations"] == {
        REVISION: "7", REVISION_HISTORY: "1,2,4", "kubernetes.io/change-cause": "v3"}


# ---- ownership, collisions, progress ----------------------------------------------------

async def test_adopts_orphan_replicaset_and_releases_stray(c: Cluster) -> None:
    env = c.env
    await env.client.create("Deployment", deploy(2, paused=True))
    await env.settle()
    template = get_d(env)["spec"]["template"]
    h = template_hash(template)
    labels = {"app": "web", HASH_LABEL: h}
    await env.client.create("ReplicaSet", {
        "apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {"name": f"web-{h}", "namespace": "default", "labels": labels},
        "spec": {"replicas": 2, "selector": {"matchLabels": labels},
                 "template": {**template, "metadata": {"labels": labels}}}})
    await env.settle()
    [rs] = env.client.list("ReplicaSet", "default")
    assert rs["metadata"]["ownerReferences"][0]["name"] == "web"
    await env.client.patch("ReplicaSet", "default", rs["metadata"]["name"],
                           {"metadata": {"labels": {"app": "other"}}})
    await env.settle()
    assert not env.get("ReplicaSet", rs["metadata"]["name"])["metadata"].get(
        "ownerReferences")


async def test_hash_collision_bumps_collision_count(c: Cluster) -> None:
    env = c.env
    await env.client.create("Deployment", deploy(1, paused=True))
    await env.settle()
    h = template_hash(get_d(env)["spec"]["template"])
    # Someone else's ReplicaSet already has the name the new one would get.
    await env.client.create("ReplicaSet", {
        "apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {"name": f"web-{h}", "namespace": "default"},
        "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "squatter"}},
                 "template": pod_template({"app": "squatter"})}})
    await env.client.patch("Deployment", "default", "web", {"spec": {"paused": False}})
    await converge(env)
    assert get_d(env)["status"]["collisionCount"] == 1
    names = {rs["metadata"]["name"] for rs in env.client.list("ReplicaSet", "default")}
    assert len(names) == 2 and f"web-{template_hash(get_d(env)['spec']['template'], 1)}" \
        in names


async def test_progress_deadline_exceeded(c: Cluster) -> None:
    env = c.env
    await env.client.create("Deployment", deploy(2, progressDeadlineSeconds=60))
    await converge(env)
    await set_image(env, "nginx:broken")
    await env.settle()
    prog = cond(get_d(env), "Progressing")
    assert (prog["status"], prog["reason"]) == ("True", "ReplicaSetUpdated")
    assert c.dc.queue.waiting >= 1, "a look at the deadline is scheduled"
    env.now.advance(30)
    c.dc.enqueue(KEY)
    await env.settle()
    assert cond(get_d(env), "Progressing")["reason"] == "ReplicaSetUpdated"
    env.now.advance(31)
    c.dc.enqueue(KEY)
    await env.settle()
    d = get_d(env)
    new = replicasets(env)[-1]
    prog = cond(d, "Progressing")
    assert (prog["status"], prog["reason"], prog["message"]) == (
        "False", "ProgressDeadlineExceeded",
        f'ReplicaSet "{new["metadata"]["name"]}" has timed out progressing.')


@pytest.mark.parametrize("a,b,equal", [
    ({"metadata": {"labels": {"app": "w", HASH_LABEL: "x"}}},
     {"metadata": {"labels": {"app": "w"}}}, True),
    ({"metadata": {"creationTimestamp": None, "labels": {"app": "w"}}},
     {"metadata": {"labels": {"app": "w", HASH_LABEL: "y"}}}, True),
    ({"metadata": {"labels": {"app": "w"}}, "spec": {"x": 1}},
     {"metadata": {"labels": {"app": "w"}}, "spec": {"x": 2}}, False),
], ids=["hash-label", "null-creation-timestamp", "different-spec"])
def test_equal_ignore_hash(a: Obj, b: Obj, equal: bool) -> None:
    assert equal_ignore_hash(a, b) is equal
