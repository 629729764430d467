"""Garbage collector and namespace deletion against a real in-memory store."""
from __future__ import annotations

import asyncio
from typing import Any, AsyncIterator, Callable

import pytest

from netd.api.kinds import REGISTRY
from netd.controllers.gc import GarbageCollector
from netd.controllers.graph import ObjectGraph
from netd.controllers.namespace import NamespaceController
from netd.registry.bootstrap import ensure_system_objects
from netd.registry.objectapi import ObjectAPI
from netd.store.sqlite import SQLiteStore

CM = REGISTRY.by_plural("", "configmaps")
NS = REGISTRY.by_plural("", "namespaces")
assert CM is not None and NS is not None


async def eventually(pred: Callable[[], bool], timeout: float = 5.0) -> None:
    async def poll() -> None:
        while not pred():
            await asyncio.sleep(0.005)
    await asyncio.wait_for(poll(), timeout)


@pytest.fixture
async def env() -> AsyncIterator[ObjectAPI]:
    store = SQLiteStore(":memory:")
    api = ObjectAPI(store)
    await ensure_system_objects(api)
    graph = ObjectGraph(store)
    gc = GarbageCollector(api, graph)
    nsc = NamespaceController(api, graph)
    tasks = [asyncio.create_task(t) for t in (graph.run(), gc.run(), nsc.run())]
    await graph.synced.wait()
    yield api
    gc.queue.shutdown()
    nsc.queue.shutdown()
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await store.close()


async def cm(api: ObjectAPI, name: str, ns: str = "default",
             owners: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if owners:
        meta["ownerReferences"] = owners
    s = await api.create(CM, ns, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta})
    return s.obj


def ref(owner: dict[str, Any], block: bool = True) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "name": owner["metadata"]["name"],
            "uid": owner["metadata"]["uid"], "controller": True, "blockOwnerDeletion": block}


def exists(api: ObjectAPI, name: str, ns: str = "default") -> bool:
    return api.store.get("configmaps", ns, name) is not None


async def test_background_deletes_dependents(env: ObjectAPI) -> None:
    owner = await cm(env, "owner")
    await cm(env, "child", owners=[ref(owner)])
    await cm(env, "grandchild", owners=[ref(env.get(CM, "default", "child").obj)])
    await env.delete(CM, "default", "owner", {"propagationPolicy": "Background"})
    await eventually(lambda: not exists(env, "child") and not exists(env, "grandchild"))


async def test_orphan_keeps_dependents_without_reference(env: ObjectAPI) -> None:
    owner = await cm(env, "owner")
    other = await cm(env, "other")
    await cm(env, "child", owners=[ref(owner), ref(other, False) | {"controller": False}])
    _, gone = await env.delete(CM, "default", "owner", {"propagationPolicy": "Orphan"})
    assert not gone
    await eventually(lambda: not exists(env, "owner"))
    refs = env.get(CM, "default", "child").obj["metadata"]["ownerReferences"]
    assert [r["name"] for r in refs] == ["other"]


async def test_foreground_deletes_dependents_first(env: ObjectAPI) -> None:
    owner = await cm(env, "owner")
    await cm(env, "child", owners=[ref(owner)])
    _, gone = await env.delete(CM, "default", "owner", {"propagationPolicy": "Foreground"})
    assert not gone
    assert env.get(CM, "default", "owner").obj["metadata"]["finalizers"] == \
        ["foregroundDeletion"]
    await eventually(lambda: not exists(env, "child") and not exists(env, "owner"))


async def test_dangling_reference_removed_when_another_owner_lives(env: ObjectAPI) -> None:
    a = await cm(env, "a")
    b = await cm(env, "b")
    await cm(env, "child", owners=[ref(a), ref(b, False) | {"controller": False}])
    await env.delete(CM, "default", "a", {})
    await eventually(lambda: [r["name"] for r in env.get(CM, "default", "child").obj[
        "metadata"].get("ownerReferences", [])] == ["b"])


async def test_namespace_deletion_removes_content_then_namespace(env: ObjectAPI) -> None:
    await env.create(NS, "", {"apiVersion": "v1", "kind": "Namespace",
                              "metadata": {"name": "gone"}})
    for i in range(3):
        await cm(env, f"c{i}", ns="gone")
    await env.delete(NS, "", "gone", {})
    await eventually(lambda: env.store.get("namespaces", "", "gone") is None)
    assert env.store.list("configmaps", "gone")[0] == []
