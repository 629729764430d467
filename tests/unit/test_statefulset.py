"""StatefulSet controller against a real in-memory store, with the test as kubelet."""
from __future__ import annotations

from typing import Any, AsyncIterator

import pytest

from netd.api.kinds import REGISTRY
from netd.controllers.controllerhistory import POD_REVISION_LABEL, REVISION_HASH_LABEL
from netd.controllers.statefulset import StatefulSetController
from netd.controllers.statefulset_pods import (POD_INDEX_LABEL, POD_NAME_LABEL,
                                               claim_owner_matches)
from netd.registry.objectapi import STRATEGIC_PATCH
from tests.unit.workload_env import Env, make_env

Obj = dict[str, Any]
PVC = REGISTRY.by_plural("", "persistentvolumeclaims")
CR = REGISTRY.by_plural("apps", "controllerrevisions")
assert PVC is not None and CR is not None


@pytest.fixture
async def env() -> AsyncIterator[Env]:
    async for e in make_env(StatefulSetController):
        yield e


def sts(name: str = "web", replicas: int = 2, *, image: str = "nginx:1.9.1",
        policy: str | None = None, claims: bool = False, node: str = "",
        **spec: Any) -> Obj:
    pod_spec: Obj = {"containers": [{"name": "nginx", "image": image,
                                     "ports": [{"containerPort": 80, "name": "web"}]}]}
    if node:
        pod_spec["nodeName"] = node
    body: Obj = {"apiVersion": "apps/v1", "kind": "StatefulSet",
                 "metadata": {"name": name, "namespace": "default"},
                 "spec": {"serviceName": "nginx", "replicas": replicas,
                          "selector": {"matchLabels": {"app": name}},
                          "template": {"metadata": {"labels": {"app": name}}, "spec": pod_spec},
                          **spec}}
    if policy:
        body["spec"]["podManagementPolicy"] = policy
    if claims:
        pod_spec["containers"][0]["volumeMounts"] = [{"name": "data", "mountPath": "/data"}]
        body["spec"]["volumeClaimTemplates"] = [{
            "metadata": {"name": "data"},
            "spec": {"accessModes": ["ReadWriteOnce"],
                     "resources": {"requests": {"storage": "2Gi"}}}}]
    return body


async def converge(env: Env) -> None:
    await env.converge()


def get_sts(env: Env, name: str = "web") -> Obj:
    out: Obj = env.client.get("StatefulSet", "default", name)
    return out


def image_of(pod: Obj) -> str:
    return str(pod["spec"]["containers"][0]["image"])


async def patch(env: Env, name: str, body: Obj) -> None:
    await env.client.patch("StatefulSet", "default", name, body, STRATEGIC_PATCH)


# ---- identity and ordering ------------------------------------------------------------

async def test_pod_identity(env: Env) -> None:
    await env.client.create("StatefulSet", sts(replicas=1))
    await env.settle()
    pod = env.pods()["web-0"]
    set_ = get_sts(env)
    assert pod["spec"]["hostname"] == "web-0"
    assert pod["spec"]["subdomain"] == "nginx"
    labels = pod["metadata"]["labels"]
    assert labels[POD_NAME_LABEL] == "web-0"
    assert labels[POD_INDEX_LABEL] == "0"
    assert labels["app"] == "web"
    assert labels[POD_REVISION_LABEL] == set_["status"]["updateRevision"]
    ref = pod["metadata"]["ownerReferences"][0]
    assert (ref["kind"], ref["name"], ref["uid"], ref["controller"]) == \
        ("StatefulSet", "web", set_["metadata"]["uid"], True)


@pytest.mark.parametrize("phase,ready,creates_next", [
    ("Pending", False, False),
    ("Running", False, False),
    ("Running", True, True),
], ids=["pending", "running-not-ready", "running-ready"])
async def test_ordered_ready_waits_for_predecessor(env: Env, phase: str, ready: bool,
                                                   creates_next: bool) -> None:
    await env.client.create("StatefulSet", sts(replicas=2))
    await env.settle()
    assert set(env.pods()) == {"web-0"}
    await env.kubelet("web-0", phase=phase, ready=ready)
    await env.settle()
    assert ("web-1" in env.pods()) is creates_next


async def test_ordinals_start(env: Env) -> None:
    await env.client.create("StatefulSet", sts(replicas=2, ordinals={"start": 5}))
    await converge(env)
    assert set(env.pods()) == {"web-5", "web-6"}
    assert env.pods()["web-6"]["metadata"]["labels"][POD_INDEX_LABEL] == "6"


async def test_parallel_creates_all_at_once(env: Env) -> None:
    await env.client.create("StatefulSet", sts(replicas=3, policy="Parallel"))
    await env.settle()
    assert set(env.pods()) == {"web-0", "web-1", "web-2"}


async def test_status_counts(env: Env) -> None:
    await env.client.create("StatefulSet", sts(replicas=3))
    await converge(env)
    st = get_sts(env)["status"]
    assert st["replicas"] == st["readyReplicas"] == st["availableReplicas"] == 3
    assert st["currentReplicas"] == st["updatedReplicas"] == 3
    assert st["currentRevision"] == st["updateRevision"]
    assert st["observedGeneration"] == get_sts(env)["metadata"]["generation"]
    assert st["collisionCount"] == 0


async def test_min_ready_seconds_gates_next_pod(env: Env) -> None:
    await env.client.create("StatefulSet", sts(replicas=2, minReadySeconds=30))
    await env.settle()
    await env.kubelet("web-0")
    # Ready but not yet available: the controller schedules a look 30 s later.
    await env.until(lambda: get_sts(env)["status"].get("readyReplicas") == 1)
    assert "web-1" not in env.pods()
    assert get_sts(env)["status"]["availableReplicas"] == 0
    env.advance(31)
    env.ctl.enqueue("default/web")
    await env.until(lambda: "web-1" in env.pods())


# ---- scaling ----------------------------------------------------------------------------

async def test_scale_down_highest_first_waiting_for_each(env: Env) -> None:
    # Pods bound to a node are deleted gracefully: they stay Terminating until the
    # kubelet (here: the test) finishes them, and the controller waits meanwhile.
    await env.client.create("StatefulSet", sts(replicas=3, node="node-1"))
    await converge(env)
    await patch(env, "web", {"spec": {"replicas": 1}})
    await env.settle()
    pods = env.pods()
    assert pods["web-2"]["metadata"].get("deletionTimestamp")
    assert not pods["web-1"]["metadata"].get("deletionTimestamp")
    await env.client.delete("Pod", "default", "web-2", grace=0)
    await env.settle()
    pods = env.pods()
    assert "web-2" not in pods and pods["web-1"]["metadata"].get("deletionTimestamp")
    await env.client.delete("Pod", "default", "web-1", grace=0)
    await env.settle()
    assert set(env.pods()) == {"web-0"}
    assert get_sts(env)["status"]["replicas"] == 1


async def test_scale_down_events_in_order(env: Env) -> None:
    await env.client.create("StatefulSet", sts(replicas=3))
    await converge(env)
    await patch(env, "web", {"spec": {"replicas": 0}})
    await env.settle()
    assert env.pods() == {}
    deletes = [e["message"] for e in sorted(await env.events(),
                                            key=lambda e: int(e["metadata"]["resourceVersion"]))
               if e["reason"] == "SuccessfulDelete"]
    assert deletes == [f"delete Pod web-{i} in StatefulSet web successful" for i in (2, 1, 0)]


@pytest.mark.parametrize("how", ["delete", "failed", "succeeded"])
async def test_lost_pod_recreated_with_same_name(env: Env, how: str) -> None:
    await env.client.create("StatefulSet", sts(replicas=2))
    await converge(env)
    old_uid = env.pods()["web-0"]["metadata"]["uid"]
    if how == "delete":
        await env.client.delete("Pod", "default", "web-0")
    else:
        await env.kubelet("web-0", phase=how.capitalize(), ready=False)
    await env.until(lambda: "web-0" in env.pods() and
                    env.pods()["web-0"]["metadata"]["uid"] != old_uid)
    await converge(env)
    assert set(env.pods()) == {"web-0", "web-1"}


# ---- updates ----------------------------------------------------------------------------

async def test_partition_canary_then_full_rollout(env: Env) -> None:
    await env.client.create("StatefulSet", sts("myapp", 4, image="ikubernetes/myapp:v1"))
    await converge(env)
    first = get_sts(env, "myapp")["status"]["currentRevision"]
    await patch(env, "myapp", {"spec": {"updateStrategy": {"rollingUpdate": {"partition": 2}}}})
    await patch(env, "myapp", {"spec": {"template": {"spec": {"containers": [
        {"name": "nginx", "image": "ikubernetes/myapp:v2"}]}}}})
    await converge(env)
    images = {n: image_of(p) for n, p in env.pods().items()}
    assert images == {"myapp-0": "ikubernetes/myapp:v1", "myapp-1": "ikubernetes/myapp:v1",
                      "myapp-2": "ikubernetes/myapp:v2", "myapp-3": "ikubernetes/myapp:v2"}
    st = get_sts(env, "myapp")["status"]
    assert st["currentRevision"] == first != st["updateRevision"]
    assert (st["currentReplicas"], st["updatedReplicas"]) == (2, 2)
    # A pod below the partition that is lost comes back at the current revision.
    await env.client.delete("Pod", "default", "myapp-0")
    await converge(env)
    assert image_of(env.pods()["myapp-0"]) == "ikubernetes/myapp:v1"

    await patch(env, "myapp", {"spec": {"updateStrategy": {"rollingUpdate": {"partition": 0}}}})
    await converge(env)
    assert {image_of(p) for p in env.pods().values()} == {"ikubernetes/myapp:v2"}
    st = get_sts(env, "myapp")["status"]
    assert st["currentRevision"] == st["updateRevision"] != first
    assert st["currentReplicas"] == st["updatedReplicas"] == 4


async def test_rolling_update_goes_one_at_a_time_from_the_top(env: Env) -> None:
    await env.client.create("StatefulSet", sts(replicas=3))
    await converge(env)
    await patch(env, "web", {"spec": {"template": {"spec": {"containers": [
        {"name": "nginx", "image": "nginx:2"}]}}}})
    await env.settle()
    pods = env.pods()
    # web-2 was replaced (and waits to become ready); nothing else moved yet.
    assert image_of(pods["web-2"]) == "nginx:2"
    assert pods["web-2"]["status"]["phase"] == "Pending"
    assert image_of(pods["web-1"]) == image_of(pods["web-0"]) == "nginx:1.9.1"
    await converge(env)
    assert {image_of(p) for p in env.pods().values()} == {"nginx:2"}


async def test_on_delete_strategy(env: Env) -> None:
    await env.client.create("StatefulSet", sts(replicas=2, updateStrategy={"type": "OnDelete"}))
    await converge(env)
    await patch(env, "web", {"spec": {"template": {"spec": {"containers": [
        {"name": "nginx", "image": "nginx:2"}]}}}})
    await converge(env)
    assert {image_of(p) for p in env.pods().values()} == {"nginx:1.9.1"}
    await env.client.delete("Pod", "default", "web-1")
    await env.until(lambda: "web-1" in env.pods())
    await converge(env)
    assert image_of(env.pods()["web-1"]) == "nginx:2"
    assert image_of(env.pods()["web-0"]) == "nginx:1.9.1"
    st = get_sts(env)["status"]
    assert (st["currentReplicas"], st["updatedReplicas"]) == (1, 1)


@pytest.mark.parametrize("policy,expected", [
    # OrderedReady still recreates in ordinal order: web-3 waits for web-2 to be Ready.
    ("OrderedReady", {"web-0": "nginx:1.9.1", "web-1": "nginx:1.9.1", "web-2": "nginx:2"}),
    ("Parallel", {"web-0": "nginx:1.9.1", "web-1": "nginx:1.9.1", "web-2": "nginx:2",
                  "web-3": "nginx:2"}),
], ids=["ordered", "parallel"])
async def test_max_unavailable_replaces_several_at_once(env: Env, policy: str,
                                                        expected: dict[str, str]) -> None:
    await env.client.create("StatefulSet", sts(replicas=4, policy=policy, updateStrategy={
        "type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 2}}))
    await converge(env)
    await patch(env, "web", {"spec": {"template": {"spec": {"containers": [
        {"name": "nginx", "image": "nginx:2"}]}}}})
    await env.settle()
    assert {n: image_of(p) for n, p in env.pods().items()} == expected
    await converge(env)
    assert {image_of(p) for p in env.pods().values()} == {"nginx:2"}


# ---- revisions --------------------------------------------------------------------------

def revisions(env: Env) -> list[Obj]:
    return sorted((i.obj for i in env.api.list(CR, "default").items),
                  key=lambda r: r["revision"])


async def test_controller_revisions(env: Env) -> None:
    await env.client.create("StatefulSet", sts(replicas=1))
    await converge(env)
    set_ = get_sts(env)
    [rev] = revisions(env)
    assert rev["revision"] == 1
    assert rev["metadata"]["name"] == set_["status"]["updateRevision"]
    assert rev["metadata"]["name"] == "web-" + rev["metadata"]["labels"][REVISION_HASH_LABEL]
    assert rev["data"]["spec"]["template"]["$patch"] == "replace"
    assert rev["data"]["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.9.1"
    assert rev["metadata"]["labels"]["app"] == "web"
    ref = rev["metadata"]["ownerReferences"][0]
    assert (ref["kind"], ref["uid"], ref["controller"]) == \
        ("StatefulSet", set_["metadata"]["uid"], True)

    await patch(env, "web", {"spec": {"template": {"spec": {"containers": [
        {"name": "nginx", "image": "nginx:2"}]}}}})
    await converge(env)
    assert [r["revision"] for r in revisions(env)] == [1, 2]

    # `kubectl rollout undo`: the old revision's data applied as a strategic merge patch.
    await env.client.patch("StatefulSet", "default", "web", rev["data"], STRATEGIC_PATCH)
    await converge(env)
    revs = revisions(env)
    assert len(revs) == 2, "a rollback reuses the equal revision"
    assert revs[-1]["metadata"]["name"] == rev["metadata"]["name"]
    assert revs[-1]["revision"] == 3
    assert image_of(env.pods()["web-0"]) == "nginx:1.9.1"
    assert get_sts(env)["status"]["updateRevision"] == rev["metadata"]["name"]


async def test_revision_history_limit(env: Env) -> None:
    await env.client.create("StatefulSet", sts(replicas=1, revisionHistoryLimit=1))
    await converge(env)
    for tag in ("2", "3", "4"):
        await patch(env, "web", {"spec": {"template": {"spec": {"containers": [
            {"name": "nginx", "image": f"nginx:{tag}"}]}}}})
        await converge(env)
    # The live revision plus one of history.
    assert [r["revision"] for r in revisions(env)] == [3, 4]


# ---- claims -----------------------------------------------------------------------------

def claims(env: Env) -> dict[str, Obj]:
    return {i.name: i.obj for i in env.api.list(PVC, "default").items}


async def test_claims_created_before_pods_and_kept(env: Env) -> None:
    await env.client.create("StatefulSet", sts("myapp", 3, claims=True))
    await converge(env)
    pvcs = claims(env)
    assert set(pvcs) == {"data-myapp-0", "data-myapp-1", "data-myapp-2"}
    assert pvcs["data-myapp-0"]["metadata"]["labels"] == {"app": "myapp"}
    assert pvcs["data-myapp-0"]["spec"]["resources"]["requests"]["storage"] == "2Gi"
    pod = env.pods()["myapp-0"]
    assert {"name": "data", "persistentVolumeClaim": {"claimName": "data-myapp-0"}} in \
        pod["spec"]["volumes"]
    messages = [e["message"] for e in await env.events()]
    assert "create Claim data-myapp-0 Pod myapp-0 in StatefulSet myapp success" in messages
    assert "create Pod myapp-0 in StatefulSet myapp successful" in messages
    uids = {n: c["metadata"]["uid"] for n, c in pvcs.items()}

    await patch(env, "myapp", {"spec": {"replicas": 1}})
    await converge(env)
    assert set(env.pods()) == {"myapp-0"}
    assert set(claims(env)) == set(uids), "Retain keeps claims of scaled-down pods"
    await patch(env, "myapp", {"spec": {"replicas": 3}})
    await converge(env)
    assert set(env.pods()) == {"myapp-0", "myapp-1", "myapp-2"}
    assert {n: c["metadata"]["uid"] for n, c in claims(env).items()} == uids
    assert {"name": "data", "persistentVolumeClaim": {"claimName": "data-myapp-2"}} in \
        env.pods()["myapp-2"]["spec"]["volumes"]


async def test_deleted_pod_gets_same_claim(env: Env) -> None:
    await env.client.create("StatefulSet", sts("myapp", 1, claims=True))
    await converge(env)
    uid = claims(env)["data-myapp-0"]["metadata"]["uid"]
    await env.client.delete("Pod", "default", "myapp-0")
    await env.until(lambda: "myapp-0" in env.pods())
    await converge(env)
    assert claims(env)["data-myapp-0"]["metadata"]["uid"] == uid


def owner_kinds(claim: Obj) -> set[str]:
    return {r["kind"] for r in claim["metadata"].get("ownerReferences") or []}


@pytest.mark.parametrize("when_deleted,when_scaled,kept,scaled", [
    ("Retain", "Retain", set(), set()),
    ("Delete", "Retain", {"StatefulSet"}, {"StatefulSet"}),
    ("Retain", "Delete", set(), {"Pod"}),
    ("Delete", "Delete", {"StatefulSet"}, {"Pod"}),
], ids=["retain-retain", "delete-retain", "retain-delete", "delete-delete"])
async def test_retention_policy_owner_refs(env: Env, when_deleted: str, when_scaled: str,
                                           kept: set[str], scaled: set[str]) -> None:
    body = sts("myapp", 2, claims=True, persistentVolumeClaimRetentionPolicy={
        "whenDeleted": when_deleted, "whenScaled": when_scaled})
    await env.client.create("StatefulSet", body)
    await converge(env)
    assert owner_kinds(claims(env)["data-myapp-1"]) == kept
    await patch(env, "myapp", {"spec": {"replicas": 1}})
    await converge(env)
    pvcs = claims(env)
    assert owner_kinds(pvcs["data-myapp-0"]) == kept
    assert owner_kinds(pvcs["data-myapp-1"]) == scaled


def test_claim_owner_matches_pure() -> None:
    set_ = {"apiVersion": "apps/v1", "kind": "StatefulSet",
            "metadata": {"name": "s", "uid": "S"},
            "spec": {"replicas": 1, "persistentVolumeClaimRetentionPolicy": {
                "whenDeleted": "Delete", "whenScaled": "Retain"}}}
    pod = {"metadata": {"name": "s-0", "uid": "P"}}
    bare: Obj = {"metadata": {}}
    owned = {"metadata": {"ownerReferences": [{"uid": "S", "kind": "StatefulSet"}]}}
    assert not claim_owner_matches(bare, set_, pod)
    assert claim_owner_matches(owned, set_, pod)


async def test_orphan_pod_adopted(env: Env) -> None:
    await env.client.create("Pod", {"apiVersion": "v1", "kind": "Pod", "metadata": {
        "name": "web-0", "namespace": "default", "labels": {"app": "web"}},
        "spec": {"containers": [{"name": "nginx", "image": "nginx:1.9.1"}]}})
    await env.client.create("StatefulSet", sts(replicas=1))
    await env.settle()
    pod = env.pods()["web-0"]
    assert pod["metadata"]["ownerReferences"][0]["kind"] == "StatefulSet"
    # Identity labels are restored on adoption.
    await env.kubelet("web-0")
    await env.settle()
    assert env.pods()["web-0"]["metadata"]["labels"][POD_NAME_LABEL] == "web-0"
