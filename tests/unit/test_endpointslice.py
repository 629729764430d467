"""The EndpointSlice controller (and Endpoints mirroring) against an in-memory store."""
from __future__ import annotations

from typing import Any, AsyncIterator

import pytest

from netd.controllers import endpointslice as esmod
from netd.controllers.endpoints import HEADLESS
from netd.controllers.endpointslice import EndpointSliceController
from tests.unit.test_endpoints import Env, make_env

Obj = dict[str, Any]


@pytest.fixture
async def env() -> AsyncIterator[Env]:
    async for e in make_env(EndpointSliceController):
        yield e


def slices(env: Env, svc: str) -> list[Obj]:
    return env.client.list("EndpointSlice", "default",
                           label_selector=f"{esmod.SERVICE_NAME}={svc}")


def addresses(sl: Obj) -> list[str]:
    return sorted(e["addresses"][0] for e in sl.get("endpoints") or [])


async def test_slice_for_a_service(env: Env) -> None:
    await env.client.create("Node", {"apiVersion": "v1", "kind": "Node", "metadata": {
        "name": "node-1", "labels": {"topology.kubernetes.io/zone": "z1"}}})
    svc = await env.service("web", labels={"tier": "front"}, ports=[
        {"name": "http", "port": 80, "targetPort": 8080, "appProtocol": "http"}])
    pod = await env.pod("web-1", "web", "10.244.0.11")
    await env.pod("web-2", "web", "10.244.0.12", ready=False, node="node-2")
    await env.settle()
    [sl] = slices(env, "web")
    meta = sl["metadata"]
    assert meta["name"].startswith("web-") and len(meta["name"]) == len("web-") + 5
    assert meta["labels"] == {"tier": "front", esmod.SERVICE_NAME: "web",
                              esmod.MANAGED_BY: esmod.CONTROLLER_NAME}
    assert meta["ownerReferences"] == [{"apiVersion": "v1", "kind": "Service", "name": "web",
                                        "uid": svc["metadata"]["uid"], "controller": True,
                                        "blockOwnerDeletion": True}]
    assert esmod.TRIGGER_TIME in meta["annotations"]
    assert sl["addressType"] == "IPv4"
    assert sl["ports"] == [{"name": "http", "port": 8080, "protocol": "TCP",
                            "appProtocol": "http"}]
    assert sl["endpoints"] == [
        {"addresses": ["10.244.0.11"],
         "conditions": {"ready": True, "serving": True, "terminating": False},
         "targetRef": {"kind": "Pod", "namespace": "default", "name": "web-1",
                       "uid": pod["metadata"]["uid"]},
         "nodeName": "node-1", "zone": "z1"},
        {"addresses": ["10.244.0.12"],
         "conditions": {"ready": False, "serving": False, "terminating": False},
         "targetRef": {"kind": "Pod", "namespace": "default", "name": "web-2",
                       "uid": sl["endpoints"][1]["targetRef"]["uid"]},
         "nodeName": "node-2"}]


@pytest.mark.parametrize("publish,ready", [(False, False), (True, True)],
                         ids=["default", "publish-not-ready"])
async def test_terminating_pod_conditions(env: Env, publish: bool, ready: bool) -> None:
    await env.service("web", publishNotReadyAddresses=publish)
    await env.pod("web-1", "web")
    await env.settle()
    await env.client.delete("Pod", "default", "web-1")
    await env.settle()
    [sl] = slices(env, "web")
    assert sl["endpoints"][0]["conditions"] == {"ready": ready, "serving": True,
                                                "terminating": True}


async def test_placeholder_headless_and_hostname(env: Env) -> None:
    await env.service("web", clusterIP="None")
    await env.settle()
    [sl] = slices(env, "web")
    assert sl["endpoints"] == [] and sl["ports"] == []
    assert sl["metadata"]["labels"][HEADLESS] == ""
    await env.pod("web-0", "web", hostname="web-0", subdomain="web")
    await env.settle()
    [again] = slices(env, "web")
    assert again["metadata"]["name"] == sl["metadata"]["name"]  # the placeholder is reused
    assert again["endpoints"][0]["hostname"] == "web-0"


async def test_max_endpoints_per_slice_and_scale_down(env: Env) -> None:
    await env.service("big")
    for i in range(230):
        await env.pod(f"big-{i}", "big", f"10.244.{i // 200}.{i % 200 + 1}")
    await env.settle()
    got = slices(env, "big")
    assert sorted(len(s["endpoints"]) for s in got) == [30, 100, 100]
    names = {s["metadata"]["name"] for s in got}
    for i in range(200):
        await env.client.delete("Pod", "default", f"big-{i}", grace=0)
    await env.settle()
    left = slices(env, "big")
    assert sum(len(s["endpoints"]) for s in left) == 30
    assert {s["metadata"]["name"] for s in left} <= names  # updated in place, not recreated


async def test_port_change_updates_in_place_and_no_op_writes_nothing(env: Env) -> None:
    svc = await env.service("web")
    await env.pod("web-1", "web")
    await env.settle()
    [sl] = slices(env, "web")
    svc["spec"]["ports"][0]["targetPort"] = 9090
    await env.client.update("Service", svc)
    await env.settle()
    [after] = slices(env, "web")
    assert after["metadata"]["name"] == sl["metadata"]["name"]
    assert after["ports"][0]["port"] == 9090
    env.ctl.enqueue("default/web")
    await env.settle()
    assert slices(env, "web")[0]["metadata"]["resourceVersion"] == \
        after["metadata"]["resourceVersion"]


async def test_pods_with_different_ports_get_different_slices(env: Env) -> None:
    await env.service("web", ports=[{"name": "http", "port": 80, "targetPort": "web"}])
    await env.pod("a", "web", "10.244.0.1", ports=[{"name": "web", "containerPort": 8080}])
    await env.pod("b", "web", "10.244.0.2", ports=[{"name": "web", "containerPort": 8081}])
    await env.pod("c", "web", "10.244.0.3")  # no such port: no endpoint
    await env.settle()
    got = sorted((s["ports"][0]["port"], addresses(s)) for s in slices(env, "web"))
    assert got == [(8080, ["10.244.0.1"]), (8081, ["10.244.0.2"])]


@pytest.mark.parametrize("labels,mirrored", [({}, True), ({esmod.SKIP_MIRROR: "true"}, False)],
                         ids=["mirrored", "skip-mirror"])
async def test_mirroring_selectorless_endpoints(env: Env, labels: Obj, mirrored: bool) -> None:
    svc = await env.service("ext", selector=False)
    meta: Obj = {"name": "ext", "namespace": "default", "labels": {"team": "a", **labels}}
    await env.client.create("Endpoints", {
        "apiVersion": "v1", "kind": "Endpoints", "metadata": meta,
        "subsets": [{"addresses": [{"ip": "192.0.2.10"}],
                     "notReadyAddresses": [{"ip": "192.0.2.11"}],
                     "ports": [{"name": "http", "port": 80}]}]})
    await env.settle()
    got = slices(env, "ext")
    if not mirrored:
        assert got == []
        return
    [sl] = got
    assert sl["metadata"]["labels"] == {"team": "a", esmod.SERVICE_NAME: "ext",
                                        esmod.MANAGED_BY: esmod.MIRROR_NAME}
    assert [(e["addresses"], e["conditions"]) for e in sl["endpoints"]] == [
        (["192.0.2.10"], {"ready": True}), (["192.0.2.11"], {"ready": False})]
    assert sl["ports"] == [{"name": "http", "port": 80, "protocol": "TCP"}]
    # A selector makes the Service the controller's: the mirrored slice goes.
    svc = env.client.get("Service", "default", "ext")
    svc["spec"]["selector"] = {"app": "ext"}
    await env.client.update("Service", svc)
    await env.settle()
    [sl] = slices(env, "ext")
    assert sl["metadata"]["labels"][esmod.MANAGED_BY] == esmod.CONTROLLER_NAME


async def test_external_name_and_unmanaged_slices_left_alone(env: Env) -> None:
    await env.service("ext", type="ExternalName", externalName="example.com",
                      selector={"app": "x"})
    own = await env.client.create("EndpointSlice", {
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": "ext-mine", "namespace": "default",
                     "labels": {esmod.SERVICE_NAME: "ext"}},
        "addressType": "IPv4", "endpoints": [], "ports": []})
    await env.settle()
    assert slices(env, "ext") == [own]


# ---- own writes vs others' (the endpointSliceTracker behaviour) ------------------------------

async def test_own_writes_do_not_requeue(env: Env) -> None:
    await env.service("web")
    await env.pod("web-1", "web")
    await env.pod("web-2", "web", "10.244.0.3")
    await env.settle()
    before = env.ctl.metrics.reconciles_total
    await env.set_ready("web-1", False)
    await env.settle()
    [sl] = slices(env, "web")
    assert [e["conditions"]["ready"] for e in sl["endpoints"]] == [False, True]
    # One reconcile for the pod event; the slice update it wrote woke nothing.
    assert env.ctl.metrics.reconciles_total - before == 1


@pytest.mark.parametrize("edit", ["update", "delete"])
async def test_others_changes_to_managed_slices_are_repaired(env: Env, edit: str) -> None:
    await env.service("web")
    await env.pod("web-1", "web")
    await env.settle()
    [sl] = slices(env, "web")
    if edit == "update":
        sl["endpoints"] = []
        await env.client.update("EndpointSlice", sl)
    else:
        await env.client.delete("EndpointSlice", "default", sl["metadata"]["name"])
    await env.settle()
    [fixed] = slices(env, "web")
    assert addresses(fixed) == ["10.244.0.2"]


async def test_own_delete_of_a_stale_slice_is_quiet(env: Env) -> None:
    await env.service("web")
    await env.pod("web-1", "web")
    await env.settle()
    assert len(slices(env, "web")) == 1
    before = env.ctl.metrics.reconciles_total
    svc = env.client.get("Service", "default", "web")
    del svc["spec"]["selector"]   # no selector and no Endpoints to mirror: no slices
    await env.client.update("Service", svc)
    await env.settle()
    assert slices(env, "web") == []
    assert env.ctl.metrics.reconciles_total - before == 1
