"""Node lifecycle and orphaned pods: what kube-controller-manager's cloud node lifecycle
controller and PodGC do for nodes that are gone for good.

- A Node that netd's own kubelet registered (status.nodeInfo.kubeletVersion ends in
  "-netd") but whose name is no longer in the config was removed by the operator (netd
  restarted with fewer nodes): it is deleted, as the cloud node lifecycle controller
  deletes the Node of a vanished instance. Nodes someone else created are left alone.
- Pods bound to a node that has no Node object are orphans (PodGC gcOrphaned): they are
  force-deleted (grace 0), so their controllers recreate them on live nodes. Pods of a
  Node this controller deleted go at once; for any other missing node PodGC's 40 s
  quarantine applies, so a pod bound by hand just before its node registers survives.
  Configured nodes are skipped: their agent registers them, and evicts its own pods
  when its Node is deleted while it runs (netd/node/agent.py).

The kernel objects of removed nodes are the node network's business
(netd/node/cluster_net.py), done before any controller starts.
"""
from __future__ import annotations

import logging
from typing import Any

from netd.api import errors
from netd.api.kinds import resource
from netd.client.clock import Clock
from netd.client.controller import Controller
from netd.client.informer import index_by_node
from netd.controllers.manager import ControllerContext

log = logging.getLogger("netd.controllers.nodelifecycle")

Obj = dict[str, Any]

NODE = resource("", "nodes")
POD = resource("", "pods")
POD_NODE_INDEX = "spec.nodeName"
NETD_KUBELET_SUFFIX = "-netd"     # netd.node.registration.KUBELET_VERSION ends with it
QUARANTINE = 40.0                 # PodGC: quarantineTime for orphaned pods


def registered_by_netd(node: Obj) -> bool:
    info = ((node.get("status") or {}).get("nodeInfo") or {})
    return str(info.get("kubeletVersion") or "").endswith(NETD_KUBELET_SUFFIX)


class NodeLifecycleController(Controller):
    """Keyed by node name."""

    def __init__(self, ctx: ControllerContext, clock: Clock | None = None) -> None:
        super().__init__("node-lifecycle", workers=1, clock=clock)
        self.ctx = ctx
        self.nodes = self.watch(ctx.factory.informer(NODE),
                                keys_for=lambda n: [n["metadata"]["name"]])
        self.pods = self.watch(ctx.factory.informer(POD), keys_for=self._orphan_keys)
        try:
            self.pods.add_index(POD_NODE_INDEX, index_by_node)
        except ValueError:
            pass    # the node agents on the shared informer added it already
        self._seen_missing: dict[str, float] = {}
        self._removed: set[str] = set()

    def configured(self) -> set[str]:
        return {n.name for n in self.ctx.config.nodes}

    def _orphan_keys(self, pod: Obj) -> list[str]:
        node = (pod.get("spec") or {}).get("nodeName")
        if node and node not in self.configured() and self.nodes.get(node) is None:
            return [node]
        return []

    async def reconcile(self, key: str) -> None:
        if key in self.configured():
            self._seen_missing.pop(key, None)
            return
        node = self.nodes.get(key)
        if node is not None:
            self._seen_missing.pop(key, None)
            if not registered_by_netd(node):
                return
            log.info("node %s is no longer configured: deleting its Node", key)
            try:
                await self.ctx.client.delete(NODE, "", key, uid=node["metadata"].get("uid"))
            except (errors.NotFound, errors.Conflict):
                pass
            self._removed.add(key)
        elif key not in self._removed:
            now = self.clock.now()
            first = self._seen_missing.setdefault(key, now)
            if now - first < QUARANTINE:
                self.enqueue_after(key, QUARANTINE - (now - first))
                return
        orphans = self.pods.by_index(POD_NODE_INDEX, key)
        for pod in orphans:
            meta = pod["metadata"]
            log.info("pod %s/%s: node %s is gone; deleting the pod", meta["namespace"],
                     meta["name"], key)
            try:
                await self.ctx.client.delete(POD, meta["namespace"], meta["name"], grace=0,
                                             uid=meta.get("uid"))
            except (errors.NotFound, errors.Conflict):
                pass
        if not orphans:
            self._seen_missing.pop(key, None)
