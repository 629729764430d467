"""DaemonSet controller against a real in-memory store, with the test as kubelet."""
from __future__ import annotations

from typing import Any, AsyncIterator

import pytest

from netd.api.kinds import REGISTRY
from netd.controllers.controllerhistory import POD_REVISION_LABEL
from netd.controllers.daemonset import DaemonSetController
from netd.controllers.daemonset_nodes import should_run, target_node
from netd.registry.objectapi import STRATEGIC_PATCH
from tests.unit.workload_env import Env, make_env

Obj = dict[str, Any]
CR = REGISTRY.by_plural("apps", "controllerrevisions")
assert CR is not None


@pytest.fixture
async def env() -> AsyncIterator[Env]:
    async for e in make_env(DaemonSetController):
        yield e


def node(name: str, labels: dict[str, str] | None = None,
         taints: list[Obj] | None = None) -> Obj:
    body: Obj = {"apiVersion": "v1", "kind": "Node",
                 "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name,
                                                       **(labels or {})}},
                 "spec": {},
                 "status": {"conditions": [{"type": "Ready", "status": "True"}]}}
    if taints:
        body["spec"]["taints"] = taints
    return body


def ds(name: str = "agent", *, image: str = "agent:1", strategy: Obj | None = None,
       **pod_spec: Any) -> Obj:
    return {"apiVersion": "apps/v1", "kind": "DaemonSet",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"selector": {"matchLabels": {"app": name}},
                     "updateStrategy": strategy or {"type": "RollingUpdate"},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "c", "image": image}],
                                           **pod_spec}}}}


async def nodes(env: Env, *names: str) -> None:
    for n in names:
        await env.client.create("Node", node(n))


def placement(env: Env) -> dict[str, str]:
    """node → image of its live daemon pod(s)."""
    out: dict[str, str] = {}
    for p in env.pods().values():
        if not p["metadata"].get("deletionTimestamp"):
            n = target_node(p)
            assert n not in out, f"two pods on {n}"
            out[n] = p["spec"]["containers"][0]["image"]
    return out


def get_ds(env: Env, name: str = "agent") -> Obj:
    out: Obj = env.client.get("DaemonSet", "default", name)
    return out


async def set_image(env: Env, image: str, name: str = "agent") -> None:
    await env.client.patch("DaemonSet", "default", name, {"spec": {"template": {"spec": {
        "containers": [{"name": "c", "image": image}]}}}}, STRATEGIC_PATCH)


# ---- eligibility (pure) ----------------------------------------------------------------

def _affinity(term: Obj) -> Obj:
    return {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [term]}}}


def _taint(key: str, effect: str, value: str = "") -> Obj:
    t = {"key": key, "effect": effect}
    if value:
        t["value"] = value
    return t


@pytest.mark.parametrize("pod_spec,node_obj,expected", [
    ({}, node("n1"), (True, True)),
    ({"nodeSelector": {"disk": "ssd"}}, node("n1", {"disk": "ssd"}), (True, True)),
    ({"nodeSelector": {"disk": "ssd"}}, node("n1", {"disk": "hdd"}), (False, False)),
    ({"affinity": _affinity({"matchExpressions": [
        {"key": "zone", "operator": "In", "values": ["a", "b"]}]})},
     node("n1", {"zone": "b"}), (True, True)),
    ({"affinity": _affinity({"matchExpressions": [
        {"key": "zone", "operator": "NotIn", "values": ["a"]}]})},
     node("n1", {"zone": "a"}), (False, False)),
    ({"affinity": _affinity({"matchFields": [
        {"key": "metadata.name", "operator": "In", "values": ["n2"]}]})},
     node("n1"), (False, False)),
    ({"affinity": _affinity({"matchFields": [
        {"key": "metadata.name", "operator": "In", "values": ["n1"]}]})},
     node("n1"), (True, True)),
    ({"affinity": _affinity({"matchExpressions": [
        {"key": "cpus", "operator": "Gt", "values": ["4"]}]})},
     node("n1", {"cpus": "8"}), (True, True)),
    ({}, node("n1", taints=[_taint("dedicated", "NoSchedule", "db")]), (False, True)),
    ({}, node("n1", taints=[_taint("dedicated", "NoExecute", "db")]), (False, False)),
    ({}, node("n1", taints=[_taint("dedicated", "PreferNoSchedule")]), (True, True)),
    ({"tolerations": [{"key": "dedicated", "operator": "Equal", "value": "db",
                       "effect": "NoSchedule"}]},
     node("n1", taints=[_taint("dedicated", "NoSchedule", "db")]), (True, True)),
    ({"tolerations": [{"key": "dedicated", "operator": "Equal", "value": "web"}]},
     node("n1", taints=[_taint("dedicated", "NoSchedule", "db")]), (False, True)),
    ({"tolerations": [{"operator": "Exists"}]},
     node("n1", taints=[_taint("anything", "NoExecute")]), (True, True)),
    ({}, node("n1", taints=[_taint("node.kubernetes.io/unschedulable", "NoSchedule")]),
     (True, True)),
    ({}, node("n1", taints=[_taint("node.kubernetes.io/not-ready", "NoExecute")]),
     (True, True)),
    ({}, node("n1", taints=[_taint("node.kubernetes.io/disk-pressure", "NoSchedule")]),
     (True, True)),
    ({}, node("n1", taints=[_taint("node.kubernetes.io/network-unavailable", "NoSchedule")]),
     (False, True)),
    ({"hostNetwork": True},
     node("n1", taints=[_taint("node.kubernetes.io/network-unavailable", "NoSchedule")]),
     (True, True)),
    ({"nodeName": "n2"}, node("n1"), (False, False)),
], ids=["plain", "selector-match", "selector-mismatch", "affinity-in", "affinity-notin",
        "fields-other-node", "fields-this-node", "affinity-gt", "taint-noschedule",
        "taint-noexecute", "taint-prefer", "tolerated", "wrong-value", "tolerate-all",
        "default-unschedulable", "default-not-ready", "default-disk-pressure",
        "network-unavailable", "network-unavailable-hostnet", "template-node-name"])
def test_should_run(pod_spec: Obj, node_obj: Obj, expected: tuple[bool, bool]) -> None:
    assert should_run(node_obj, ds(**pod_spec)) == expected


# ---- placement --------------------------------------------------------------------------

async def test_one_pod_per_node(env: Env) -> None:
    await nodes(env, "node-1", "node-2", "node-3")
    await env.client.create("DaemonSet", ds())
    await env.converge()
    assert set(placement(env)) == {"node-1", "node-2", "node-3"}
    pod = next(iter(env.pods().values()))
    assert pod["metadata"]["generateName"] == "agent-"
    assert not pod["spec"].get("nodeName"), "the scheduler binds daemon pods"
    terms = pod["spec"]["affinity"]["nodeAffinity"][
        "requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    assert len(terms) == 1 and terms[0]["matchFields"][0]["key"] == "metadata.name"
    keys = {(t.get("key"), t.get("effect")) for t in pod["spec"]["tolerations"]}
    assert ("node.kubernetes.io/unschedulable", "NoSchedule") in keys
    assert ("node.kubernetes.io/not-ready", "NoExecute") in keys
    ref = pod["metadata"]["ownerReferences"][0]
    assert (ref["kind"], ref["name"], ref["controller"]) == ("DaemonSet", "agent", True)
    st = get_ds(env)["status"]
    assert (st["desiredNumberScheduled"], st["currentNumberScheduled"], st["numberReady"],
            st["numberAvailable"], st["updatedNumberScheduled"],
            st["numberMisscheduled"]) == (3, 3, 3, 3, 3, 0)
    assert "numberUnavailable" not in st
    assert st["observedGeneration"] == get_ds(env)["metadata"]["generation"]
    messages = {e["message"] for e in await env.events()}
    assert {f"Created pod: {n}" for n in env.pods()} <= messages


async def test_selector_and_taints_limit_nodes(env: Env) -> None:
    await env.client.create("Node", node("ssd-1", {"disk": "ssd"}))
    await env.client.create("Node", node("hdd-1", {"disk": "hdd"}))
    await env.client.create("Node", node("ssd-tainted", {"disk": "ssd"},
                                         [_taint("dedicated", "NoSchedule", "db")]))
    await env.client.create("DaemonSet", ds(nodeSelector={"disk": "ssd"}))
    await env.converge()
    assert set(placement(env)) == {"ssd-1"}
    assert get_ds(env)["status"]["desiredNumberScheduled"] == 1


async def test_node_added_and_removed(env: Env) -> None:
    await nodes(env, "node-1")
    await env.client.create("DaemonSet", ds())
    await env.converge()
    assert set(placement(env)) == {"node-1"}
    await nodes(env, "node-2")
    await env.converge()
    assert set(placement(env)) == {"node-1", "node-2"}
    await env.client.delete("Node", "", "node-1")
    await env.converge()
    assert set(placement(env)) == {"node-2"}
    assert get_ds(env)["status"]["desiredNumberScheduled"] == 1


async def test_node_losing_label_loses_pod(env: Env) -> None:
    await env.client.create("Node", node("n1", {"role": "edge"}))
    await env.client.create("DaemonSet", ds(nodeSelector={"role": "edge"}))
    await env.converge()
    assert set(placement(env)) == {"n1"}
    n = env.client.get("Node", "", "n1")
    n["metadata"]["labels"]["role"] = "core"
    await env.client.update("Node", n)
    await env.converge()
    assert placement(env) == {}
    assert get_ds(env)["status"]["desiredNumberScheduled"] == 0


@pytest.mark.parametrize("phase", ["Failed", "Succeeded"])
async def test_finished_pod_replaced(env: Env, phase: str) -> None:
    await nodes(env, "node-1")
    await env.client.create("DaemonSet", ds())
    await env.converge()
    [old] = env.pods()
    await env.kubelet(old, phase=phase, ready=False)
    await env.until(lambda: old not in env.pods() and len(env.pods()) == 1)
    assert set(placement(env)) == {"node-1"}


async def test_duplicate_pods_pruned(env: Env) -> None:
    await nodes(env, "node-1")
    await env.client.create("DaemonSet", ds())
    await env.converge()
    [pod] = env.pods().values()
    extra = {"apiVersion": "v1", "kind": "Pod",
             "metadata": {"name": "extra", "namespace": "default",
                          "labels": dict(pod["metadata"]["labels"])},
             "spec": dict(pod["spec"])}
    await env.client.create("Pod", extra)  # an orphan: adopted, then the newer one goes
    await env.converge()
    assert set(env.pods()) == {pod["metadata"]["name"]}


# ---- updates ----------------------------------------------------------------------------

@pytest.mark.parametrize("max_unavailable,replaced_first", [(1, 1), (2, 2), ("50%", 2)],
                         ids=["one", "two", "percent"])
async def test_rolling_update_max_unavailable(env: Env, max_unavailable: Any,
                                              replaced_first: int) -> None:
    await nodes(env, "node-1", "node-2", "node-3")
    await env.client.create("DaemonSet", ds(strategy={
        "type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": max_unavailable}}))
    await env.converge()
    await set_image(env, "agent:2")
    await env.settle()
    images = list(placement(env).values())
    assert images.count("agent:2") == replaced_first
    assert len(images) == 3
    await env.converge()
    assert set(placement(env).values()) == {"agent:2"}
    st = get_ds(env)["status"]
    assert st["updatedNumberScheduled"] == st["numberAvailable"] == 3


async def test_rolling_update_max_surge(env: Env) -> None:
    await nodes(env, "node-1", "node-2")
    await env.client.create("DaemonSet", ds(strategy={
        "type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}}))
    await env.converge()
    await set_image(env, "agent:2")
    await env.settle()
    pods = [p for p in env.pods().values() if not p["metadata"].get("deletionTimestamp")]
    # A new pod beside the old one on one node; both old pods still there.
    assert sorted(p["spec"]["containers"][0]["image"] for p in pods) == \
        ["agent:1", "agent:1", "agent:2"]
    await env.converge()
    assert placement(env) == {"node-1": "agent:2", "node-2": "agent:2"}


async def test_on_delete(env: Env) -> None:
    await nodes(env, "node-1", "node-2")
    await env.client.create("DaemonSet", ds(strategy={"type": "OnDelete"}))
    await env.converge()
    await set_image(env, "agent:2")
    await env.converge()
    assert set(placement(env).values()) == {"agent:1"}
    victim = next(n for n, p in env.pods().items() if target_node(p) == "node-1")
    await env.client.delete("Pod", "default", victim)
    await env.until(lambda: "node-1" in placement(env))
    await env.converge()
    assert placement(env) == {"node-1": "agent:2", "node-2": "agent:1"}
    assert get_ds(env)["status"]["updatedNumberScheduled"] == 1


async def test_revisions_and_rollback(env: Env) -> None:
    await nodes(env, "node-1")
    await env.client.create("DaemonSet", ds())
    await env.converge()
    [rev1] = [i.obj for i in env.api.list(CR, "default").items]
    pod = next(iter(env.pods().values()))
    assert rev1["revision"] == 1
    assert pod["metadata"]["labels"][POD_REVISION_LABEL] == \
        rev1["metadata"]["labels"][POD_REVISION_LABEL]
    assert rev1["metadata"]["name"] == "agent-" + rev1["metadata"]["labels"][POD_REVISION_LABEL]
    assert rev1["data"]["spec"]["template"]["$patch"] == "replace"
    await set_image(env, "agent:2")
    await env.converge()
    assert sorted(i.obj["revision"] for i in env.api.list(CR, "default").items) == [1, 2]
    # kubectl rollout undo: the revision's data as a strategic merge patch.
    await env.client.patch("DaemonSet", "default", "agent", rev1["data"], STRATEGIC_PATCH)
    await env.converge()
    revs = {i.obj["metadata"]["name"]: i.obj["revision"] for i in env.api.list(CR, "default").items}
    assert revs[rev1["metadata"]["name"]] == 3 and len(revs) == 2
    assert placement(env) == {"node-1": "agent:1"}


async def test_history_limit(env: Env) -> None:
    await nodes(env, "node-1")
    body = ds()
    body["spec"]["revisionHistoryLimit"] = 1
    await env.client.create("DaemonSet", body)
    await env.converge()
    for tag in ("2", "3", "4"):
        await set_image(env, f"agent:{tag}")
        await env.converge()
    assert sorted(i.obj["revision"] for i in env.api.list(CR, "default").items) == [3, 4]
