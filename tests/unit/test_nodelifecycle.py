"""The node lifecycle controller against a real in-memory store: Nodes netd registered
but no longer configured are deleted with their pods; orphaned pods (bound to a node
with no Node object) go after PodGC's quarantine; anything else is left alone."""
from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any, AsyncIterator

import pytest

import netd.config
from netd.client.clock import FakeClock
from netd.client.informer import key_of
from netd.config import NodeConfig
from netd.controllers.manager import ControllerContext, build_context
from netd.controllers.nodelifecycle import QUARANTINE, NodeLifecycleController, \
    registered_by_netd
from netd.registry.bootstrap import ensure_system_objects
from netd.registry.objectapi import ObjectAPI
from netd.store.sqlite import SQLiteStore

Obj = dict[str, Any]


@pytest.fixture
async def env(tmp_path: Any) -> AsyncIterator[tuple[ControllerContext, NodeLifecycleController,
                                                     FakeClock]]:
    store = SQLiteStore(":memory:")
    api = ObjectAPI(store)
    await ensure_system_objects(api)
    cfg = replace(netd.config.load(None), state_dir=str(tmp_path), node_mode="simulated",
                  nodes=[NodeConfig("node-1")])
    ctx = build_context(api, cfg)
    clock = FakeClock()
    ctrl = NodeLifecycleController(ctx, clock=clock)
    tasks = [asyncio.create_task(inf.run()) for inf in ctx.factory.informers]
    await ctx.factory.wait_synced()
    yield ctx, ctrl, clock
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    ctx.factory.stop()
    await store.close()


async def caught_up(ctx: ControllerContext) -> None:
    def in_step() -> bool:
        for inf in ctx.factory.informers:
            items, _ = ctx.api.store.list(inf.rt.group_resource)
            if {key_of(i.obj) for i in items} != set(inf.keys()):
                return False
        return True

    async def poll() -> None:
        while not in_step():
            await asyncio.sleep(0.001)
    await asyncio.wait_for(poll(), 5)


async def make_node(ctx: ControllerContext, name: str, kubelet: str | None) -> None:
    node = await ctx.client.create("nodes", {"apiVersion": "v1", "kind": "Node",
                                             "metadata": {"name": name}})
    if kubelet is not None:
        node["status"] = {"nodeInfo": {"kubeletVersion": kubelet}}
        await ctx.client.update_status("nodes", node)


async def make_pod(ctx: ControllerContext, name: str, node: str) -> None:
    await ctx.client.create("pods", {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default"},
        "spec": {"nodeName": node, "containers": [{"name": "c", "image": "nginx"}]}})


def names(ctx: ControllerContext, resource: str) -> set[str]:
    items, _ = ctx.api.store.list(resource)
    return {i.obj["metadata"]["name"] for i in items}


@pytest.mark.parametrize("node,kubelet,after,nodes_left,pods_left", [
    # A netd-registered node no longer in the config: Node and pods deleted at once.
    ("node-9", "v1.32.0-netd", 0.0, {"node-1"}, {"keep"}),
    # Registered by someone else (or by hand): not netd's to remove.
    ("node-9", "v1.32.0", 0.0, {"node-1", "node-9"}, {"keep", "orphan"}),
    ("node-9", None, 0.0, {"node-1", "node-9"}, {"keep", "orphan"}),
    # No Node at all: PodGC's quarantine first, then the orphan goes.
    ("node-9", "absent", QUARANTINE - 1, {"node-1"}, {"keep", "orphan"}),
    ("node-9", "absent", QUARANTINE, {"node-1"}, {"keep"}),
    # A configured node's pods are its agent's business even while its Node is missing.
    ("node-1", "absent", QUARANTINE * 2, set(), {"orphan"}),
], ids=["netd-node-removed", "foreign-kubelet", "hand-made", "orphan-quarantined",
        "orphan-collected", "configured-node-missing"])
async def test_reconcile(env: Any, node: str, kubelet: str | None, after: float,
                         nodes_left: set[str], pods_left: set[str]) -> None:
    ctx, ctrl, clock = env
    if node != "node-1":
        await make_node(ctx, "node-1", "v1.32.0-netd")
        await make_pod(ctx, "keep", "node-1")
    if kubelet != "absent":
        await make_node(ctx, node, kubelet)
    await make_pod(ctx, "orphan", node)
    await caught_up(ctx)
    await ctrl.reconcile(node)
    if after:
        clock.advance(after)
        await ctrl.reconcile(node)
    assert names(ctx, "nodes") == nodes_left
    assert names(ctx, "pods") == pods_left


def test_registered_by_netd() -> None:
    assert registered_by_netd({"status": {"nodeInfo": {"kubeletVersion": "v1.32.0-netd"}}})
    assert not registered_by_netd({"status": {"nodeInfo": {"kubeletVersion": "v1.32.0"}}})
    assert not registered_by_netd({"metadata": {"name": "x"}})
