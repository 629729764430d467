"""The write path (netd.registry.ObjectAPI) against a real in-memory SQLite store."""
from __future__ import annotations

import asyncio
from datetime import datetime, timezone
from typing import Any, AsyncIterator

import pytest

from netd.api import errors
from netd.api.kinds import REGISTRY, ResourceType
from netd.registry import scale
from netd.registry.bootstrap import ensure_system_objects
from netd.registry.objectapi import JSON_PATCH, MERGE_PATCH, STRATEGIC_PATCH, ObjectAPI
from netd.store.base import copy_obj
from netd.store.sqlite import SQLiteStore

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)


def rt(plural: str, group: str = "") -> ResourceType:
    found = REGISTRY.by_plural(group, plural)
    assert found is not None
    return found


PODS, NS, DEPLOY, SVC = rt("pods"), rt("namespaces"), rt("deployments", "apps"), rt("services")


def pod(name: str, labels: dict[str, str] | None = None, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "labels": labels or {"app": "web"}},
            "spec": {"containers": [{"name": "c", "image": "nginx:1.25"}], **spec}}


def deployment(name: str, replicas: int = 1) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "c", "image": "nginx:1.25"}]}}}}


@pytest.fixture
async def api() -> AsyncIterator[ObjectAPI]:
    store = SQLiteStore(":memory:")
    a = ObjectAPI(store, clock=lambda: NOW)
    await ensure_system_objects(a)
    yield a
    await store.close()


async def test_create_sets_system_fields_and_defaults(api: ObjectAPI) -> None:
    s = await api.create(PODS, "default", pod("p1"))
    meta = s.obj["metadata"]
    assert meta["namespace"] == "default"
    assert meta["uid"] and meta["creationTimestamp"] == "2026-01-02T03:04:05Z"
    assert meta["resourceVersion"] == str(s.rv)
    assert s.obj["status"]["phase"] == "Pending"
    assert s.obj["spec"]["restartPolicy"] == "Always"
    assert s.obj["spec"]["containers"][0]["terminationMessagePath"] == "/dev/termination-log"


async def test_system_namespaces_exist(api: ObjectAPI) -> None:
    names = [o.name for o in api.list(NS, None).items]
    assert names == ["default", "kube-node-lease", "kube-public", "kube-system"]
    assert api.get(NS, "", "default").obj["status"]["phase"] == "Active"


@pytest.mark.parametrize("body,exc,text", [
    (pod("Bad_Name"), errors.Invalid, 'metadata.name: Invalid value: "Bad_Name"'),
    ({**pod("p"), "kind": "Service"}, errors.BadRequest, "cannot be handled as a Pod"),
    ({**pod("p"), "apiVersion": "v2"}, errors.BadRequest, "does not match the expected API"),
    ({**pod("p"), "metadata": {"name": "p", "namespace": "other"}}, errors.BadRequest,
     "does not match the namespace"),
    ({**pod("p"), "metadata": {"name": "p", "resourceVersion": "5"}}, errors.BadRequest,
     "resourceVersion should not be set"),
    ({**pod("p"), "spec": {"containers": [{"name": "c", "image": "x", "imagee": "y"}]}},
     errors.BadRequest, 'unknown field "spec.containers[0].imagee"'),
], ids=["bad-name", "kind-mismatch", "version-mismatch", "ns-mismatch", "rv-on-create",
        "unknown-field"])
async def test_bad_create_changes_nothing(api: ObjectAPI, body: dict[str, Any],
                                          exc: type[errors.APIError], text: str) -> None:
    before = api.store.revision
    with pytest.raises(exc) as info:
        await api.create(PODS, "default", body)
    assert text in info.value.message
    assert api.store.revision == before


async def test_create_in_missing_namespace(api: ObjectAPI) -> None:
    with pytest.raises(errors.NotFound) as info:
        await api.create(PODS, "nope", pod("p"))
    assert info.value.message == 'namespaces "nope" not found'


async def test_generate_name(api: ObjectAPI) -> None:
    body = pod("")
    body["metadata"] = {"generateName": "web-", "labels": {"app": "web"}}
    s = await api.create(PODS, "default", body)
    assert s.name.startswith("web-") and len(s.name) == 9
    assert all(ch in "bcdfghjklmnpqrstvwxz2456789" for ch in s.name[4:])


async def test_already_exists(api: ObjectAPI) -> None:
    await api.create(PODS, "default", pod("p"))
    with pytest.raises(errors.AlreadyExists) as info:
        await api.create(PODS, "default", pod("p"))
    assert info.value.message == 'pods "p" already exists'


async def test_update_conflict_on_stale_rv(api: ObjectAPI) -> None:
    s = await api.create(DEPLOY, "default", deployment("d"))
    body = copy_obj(s.obj)
    body["spec"]["replicas"] = 3
    s2 = await api.update(DEPLOY, "default", "d", body)
    assert s2.obj["metadata"]["generation"] == 2
    with pytest.raises(errors.Conflict) as info:
        await api.update(DEPLOY, "default", "d", body)  # carries the old rv
    assert "the object has been modified" in info.value.message
    assert 'deployments.apps "d"' in info.value.message


async def test_noop_update_keeps_rv(api: ObjectAPI) -> None:
    s = await api.create(DEPLOY, "default", deployment("d"))
    again = await api.update(DEPLOY, "default", "d", copy_obj(s.obj))
    assert again.rv == s.rv


async def test_main_resource_ignores_status_and_status_ignores_spec(api: ObjectAPI) -> None:
    s = await api.create(DEPLOY, "default", deployment("d"))
    body = copy_obj(s.obj)
    body["status"] = {"replicas": 7}
    s2 = await api.update(DEPLOY, "default", "d", body)
    assert s2.obj.get("status", {}).get("replicas") is None
    body = copy_obj(s2.obj)
    body["status"] = {"replicas": 7}
    body["spec"]["replicas"] = 9
    s3 = await api.update(DEPLOY, "default", "d", body, subresource="status")
    assert s3.obj["status"]["replicas"] == 7
    assert s3.obj["spec"]["replicas"] == 1
    assert s3.obj["metadata"]["generation"] == 1


async def test_immutable_selector_rejected(api: ObjectAPI) -> None:
    s = await api.create(DEPLOY, "default", deployment("d"))
    with pytest.raises(errors.Invalid) as info:
        await api.patch(DEPLOY, "default", "d", MERGE_PATCH,
                        {"spec": {"selector": {"matchLabels": {"app": "x"}},
                                  "template": {"metadata": {"labels": {"app": "x"}}}}})
    assert "spec.selector" in info.value.message and "field is immutable" in info.value.message
    assert api.get(DEPLOY, "default", "d").rv == s.rv


@pytest.mark.parametrize("ptype,patch", [
    (MERGE_PATCH, {"spec": {"replicas": 4}}),
    (STRATEGIC_PATCH, {"spec": {"replicas": 4}}),
    (JSON_PATCH, [{"op": "replace", "path": "/spec/replicas", "value": 4}]),
], ids=["merge", "strategic", "json"])
async def test_patch_types(api: ObjectAPI, ptype: str, patch: Any) -> None:
    await api.create(DEPLOY, "default", deployment("d"))
    s = await api.patch(DEPLOY, "default", "d", ptype, patch)
    assert s.obj["spec"]["replicas"] == 4


async def test_strategic_set_image_keeps_other_container_fields(api: ObjectAPI) -> None:
    await api.create(DEPLOY, "default", deployment("d"))
    s = await api.patch(DEPLOY, "default", "d", STRATEGIC_PATCH, {"spec": {"template": {
        "spec": {"containers": [{"name": "c", "image": "nginx:1.26"}]}}}})
    (c,) = s.obj["spec"]["template"]["spec"]["containers"]
    assert c["image"] == "nginx:1.26" and c["terminationMessagePolicy"] == "File"


async def test_server_side_apply_refused(api: ObjectAPI) -> None:
    await api.create(DEPLOY, "default", deployment("d"))
    with pytest.raises(errors.UnsupportedMediaType) as info:
        await api.patch(DEPLOY, "default", "d", "application/apply-patch+yaml", {})
    assert "server-side apply is not supported" in info.value.message


async def test_delete_background_and_orphan(api: ObjectAPI) -> None:
    await api.create(DEPLOY, "default", deployment("a"))
    await api.create(DEPLOY, "default", deployment("b"))
    obj, gone = await api.delete(DEPLOY, "default", "a", {"propagationPolicy": "Background"})
    assert gone and api.store.get("deployments.apps", "default", "a") is None
    obj, gone = await api.delete(DEPLOY, "default", "b", {"propagationPolicy": "Orphan"})
    assert not gone
    meta = obj.obj["metadata"]
    assert meta["finalizers"] == ["orphan"] and meta["deletionTimestamp"]
    # Removing the finalizer (what the garbage collector does) completes the deletion.
    await api.patch(DEPLOY, "default", "b", MERGE_PATCH, {"metadata": {"finalizers": None}})
    assert api.store.get("deployments.apps", "default", "b") is None


async def test_delete_preconditions(api: ObjectAPI) -> None:
    await api.create(PODS, "default", pod("p"))
    with pytest.raises(errors.Conflict) as info:
        await api.delete(PODS, "default", "p", {"preconditions": {"uid": "other"}})
    assert "Precondition failed: UID in precondition: other" in info.value.message


async def test_graceful_pod_deletion(api: ObjectAPI) -> None:
    await api.create(PODS, "default", pod("p", nodeName="node-1"))
    obj, gone = await api.delete(PODS, "default", "p", {})
    assert not gone
    assert obj.obj["metadata"]["deletionGracePeriodSeconds"] == 30
    assert obj.obj["metadata"]["deletionTimestamp"] == "2026-01-02T03:04:35Z"
    _, gone = await api.delete(PODS, "default", "p", {"gracePeriodSeconds": 0})
    assert gone


async def test_unscheduled_pod_deleted_at_once(api: ObjectAPI) -> None:
    await api.create(PODS, "default", pod("p"))
    _, gone = await api.delete(PODS, "default", "p", {})
    assert gone


async def test_namespace_termination(api: ObjectAPI) -> None:
    await api.create(NS, "", {"apiVersion": "v1", "kind": "Namespace",
                              "metadata": {"name": "t"}})
    obj, gone = await api.delete(NS, "", "t", {})
    assert not gone and obj.obj["status"]["phase"] == "Terminating"
    with pytest.raises(errors.Forbidden) as info:
        await api.create(PODS, "t", pod("p"))
    assert "because it is being terminated" in info.value.message
    body = copy_obj(obj.obj)
    body["spec"]["finalizers"] = []
    await api.update(NS, "", "t", body, subresource="finalize")
    assert api.store.get("namespaces", "", "t") is None


async def test_default_namespace_cannot_be_deleted(api: ObjectAPI) -> None:
    with pytest.raises(errors.Forbidden):
        await api.delete(NS, "", "default", {})


async def test_list_selectors_and_pages(api: ObjectAPI) -> None:
    for i in range(5):
        await api.create(PODS, "default", pod(f"p{i}", {"app": "a" if i % 2 else "b"}))
    assert [o.name for o in api.list(PODS, "default", label_selector="app=a").items] == \
        ["p1", "p3"]
    assert [o.name for o in api.list(PODS, None, field_selector="metadata.name=p2").items] == \
        ["p2"]
    with pytest.raises(errors.BadRequest):
        api.list(PODS, None, field_selector="spec.bogus=1")
    page1 = api.list(PODS, "default", limit=2)
    assert [o.name for o in page1.items] == ["p0", "p1"] and page1.remaining == 3
    page2 = api.list(PODS, "default", limit=2, continue_token=page1.continue_token)
    page3 = api.list(PODS, "default", limit=2, continue_token=page2.continue_token)
    assert [o.name for o in page2.items + page3.items] == ["p2", "p3", "p4"]
    assert page3.continue_token == ""


async def test_watch_sees_changes_in_order_with_selector_transitions(api: ObjectAPI) -> None:
    s = await api.create(PODS, "default", pod("p", {"app": "a"}))
    stream = api.watch(PODS, "default", resource_version=str(s.rv), label_selector="app=a")
    await api.patch(PODS, "default", "p", MERGE_PATCH, {"metadata": {"labels": {"x": "1"}}})
    await api.patch(PODS, "default", "p", MERGE_PATCH, {"metadata": {"labels": {"app": "b"}}})
    await api.patch(PODS, "default", "p", MERGE_PATCH, {"metadata": {"labels": {"app": "a"}}})
    seen: list[str] = []

    async def collect() -> None:
        async for batch in stream.batches():
            seen.extend(t for t, _ in batch)
            if len(seen) >= 3:
                return
    await asyncio.wait_for(collect(), 5)
    stream.close()
    assert seen == ["MODIFIED", "DELETED", "ADDED"]


async def test_watch_initial_events(api: ObjectAPI) -> None:
    await api.create(PODS, "default", pod("p"))
    stream = api.watch(PODS, "default")
    it = stream.batches().__aiter__()
    first = await asyncio.wait_for(it.__anext__(), 5)
    stream.close()
    assert [(t, e.name) for t, e in first] == [("ADDED", "p")]


async def test_scale_subresource(api: ObjectAPI) -> None:
    await api.create(DEPLOY, "default", deployment("d", 2))
    sc = scale.get_scale(api, DEPLOY, "default", "d")
    assert sc["spec"]["replicas"] == 2 and sc["status"]["selector"] == "app=d"
    out = await scale.patch_scale(api, DEPLOY, "default", "d", MERGE_PATCH,
                                  {"spec": {"replicas": 5}})
    assert out["spec"]["replicas"] == 5
    assert api.get(DEPLOY, "default", "d").obj["spec"]["replicas"] == 5
    with pytest.raises(errors.Invalid):
        await scale.update_scale(api, DEPLOY, "default", "d", {"spec": {"replicas": -1}})


async def test_dry_run_writes_nothing(api: ObjectAPI) -> None:
    before = api.store.revision
    s = await api.create(PODS, "default", pod("p"), dry_run=True)
    assert s.obj["metadata"]["uid"]
    assert api.store.revision == before and api.store.get("pods", "default", "p") is None


@pytest.mark.parametrize("mode,warned", [("Warn", True), ("Ignore", False)])
async def test_unknown_fields_dropped_unless_strict(api: ObjectAPI, mode: str,
                                                    warned: bool) -> None:
    body = pod("p")
    body["spec"]["bogus"] = 1
    body["spec"]["containers"][0]["imagee"] = "x"
    warnings: list[str] = []
    s = await api.create(PODS, "default", body, field_validation=mode, warnings=warnings)
    assert "bogus" not in s.obj["spec"] and "imagee" not in s.obj["spec"]["containers"][0]
    assert (sorted(warnings) == ['unknown field "spec.bogus"',
                                 'unknown field "spec.containers[0].imagee"']) is warned
