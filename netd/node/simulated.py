"""Simulated nodes (kwok-style): a Node object and a kubelet's status reports, no kernel.

Each SimulatedNodeAgent is a Controller over the shared pod informer, restricted to
the pods bound to its node. It
- registers its Node (capacity, conditions, addresses, nodeInfo, podCIDR) and keeps
  it alive like a kubelet: a Lease in kube-node-lease renewed every LEASE_RENEW
  seconds, and the conditions' heartbeat every STATUS_REPORT seconds;
- makes every pod bound to it Running and Ready at once, with an address from the
  node's podCIDR allocated host-local style (never duplicated, the network and the
  gateway .1 skipped, the next free address after the last one handed out, so a
  replaced pod gets a new IP), rebuilt from the pods' status on restart;
- finishes graceful deletions (deletionTimestamp set) by deleting with grace 0, as a
  kubelet does once the containers stopped.

Nothing here touches the kernel: `node_mode: simulated` is for tests and for
emulations larger than a host's namespaces allow.
"""
from __future__ import annotations

import logging
from typing import Any

from netd.api import errors
from netd.api.kinds import resource
from netd.client.controller import Controller
from netd.client.informer import index_by_node, key_of
from netd.controllers.events import NORMAL, WARNING
from netd.controllers.manager import ControllerContext
from netd.node import nodeslots
from netd.node.ipam import PodIPAllocator, node_internal_ip, node_pod_cidr
from netd.node.registration import (  # noqa: F401  (re-exported for callers)
    CAPACITY, KUBELET_VERSION, LEASE_DURATION, LEASE_NAMESPACE, LEASE_RENEW, NODE_KEY,
    RUNTIME_VERSION, STATUS_REPORT, NodeRegistration)
from netd.node.simpod import container_id, image_id, image_ref, running_status

log = logging.getLogger("netd.node.simulated")

Obj = dict[str, Any]


POD = resource("", "pods")
NODE = resource("", "nodes")
POD_INDEX = "spec.nodeName"


__all__ = ["SimulatedNodeAgent", "PodIPAllocator", "agents", "node_pod_cidr",
           "node_internal_ip", "running_status", "image_ref", "image_id", "container_id"]


class SimulatedNodeAgent(Controller):
    record_events = True   # Pulled/Created/Started, as a kubelet reports them

    def __init__(self, ctx: ControllerContext, node_name: str, labels: dict[str, str],
                 taints: list[dict[str, str]], pod_cidr: str, *,
                 internal_ip: str = "172.18.0.2") -> None:
        super().__init__(f"node:{node_name}", workers=4)
        self.ctx = ctx
        self.node_name = node_name
        self.labels = dict(labels)
        self.taints = [dict(t) for t in taints]
        self.pod_cidr = pod_cidr
        self.internal_ip = internal_ip
        self.ipam = PodIPAllocator(pod_cidr)
        self.registration = NodeRegistration(ctx, node_name, labels, taints, pod_cidr,
                                             internal_ip)
        self.pods = self.watch(ctx.factory.informer(POD), keys_for=self._pod_keys)
        self.nodes = self.watch(ctx.factory.informer(NODE), keys_for=self._node_keys)
        try:
            self.pods.add_index(POD_INDEX, index_by_node)
        except ValueError:
            pass  # another agent on the shared informer added it
        self._uid_of: dict[str, str] = {}          # pod key -> uid holding an address
        self._written_rv: dict[str, tuple[str, int]] = {}   # pod key -> (uid, rv we wrote)
        self._ipam_rebuilt = False

    # ---- keys ---------------------------------------------------------------------------

    def _pod_keys(self, pod: Obj) -> list[str]:
        if (pod.get("spec") or {}).get("nodeName") == self.node_name:
            return [key_of(pod)]
        return []

    def _node_keys(self, node: Obj) -> list[str]:
        return [NODE_KEY] if node["metadata"].get("name") == self.node_name else []

    async def wait_synced(self) -> None:
        await super().wait_synced()
        self.enqueue(NODE_KEY)

    async def reconcile(self, key: str) -> None:
        if key == NODE_KEY:
            await self.sync_node()
        else:
            await self.sync_pod(key)

    # ---- Node and Lease -------------------------------------------------------------------

    def node_object(self) -> Obj:
        return self.registration.node_object()

    def node_status(self, old: Obj | None) -> Obj:
        return self.registration.node_status(old)

    async def sync_node(self) -> None:
        self.enqueue_after(NODE_KEY, LEASE_RENEW)
        await self.registration.sync()

    # ---- pods -------------------------------------------------------------------------------

    def _rebuild_ipam(self) -> None:
        """Adopt the addresses pods on this node already report (restart)."""
        pods = sorted(self.pods.by_index(POD_INDEX, self.node_name),
                      key=lambda p: (p["metadata"].get("creationTimestamp") or "",
                                     key_of(p)))
        for pod in pods:
            ip = (pod.get("status") or {}).get("podIP")
            uid = pod["metadata"].get("uid", "")
            if ip and self.ipam.reserve(uid, ip):
                self._uid_of[key_of(pod)] = uid
        self._ipam_rebuilt = True

    def _release(self, key: str) -> None:
        self._written_rv.pop(key, None)
        uid = self._uid_of.pop(key, None)
        if uid is not None:
            self.ipam.release(uid)

    async def sync_pod(self, key: str) -> None:
        if not self._ipam_rebuilt:
            self._rebuild_ipam()
        pod = self.pods.get(key)
        if pod is None or (pod.get("spec") or {}).get("nodeName") != self.node_name:
            self._release(key)
            return
        meta = pod["metadata"]
        uid = meta.get("uid", "")
        written = self._written_rv.get(key)
        if written is not None and written[0] == uid and \
                int(meta.get("resourceVersion") or 0) < written[1]:
            return   # our last report has not reached the cache; its event requeues us
        if self._uid_of.get(key) not in (None, uid):
            self._release(key)   # a new pod under an old name
        if meta.get("deletionTimestamp"):
            # The simulated containers stop at once: confirm the deletion.
            try:
                await self.ctx.client.delete(POD, meta["namespace"], meta["name"], grace=0,
                                             uid=uid)
            except errors.NotFound:
                pass
            except errors.Conflict:
                if self.ctx.client.get_or_none(POD, meta["namespace"], meta["name"]) \
                        is not None:
                    raise
            self._release(key)
            return
        if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
            self._release(key)
            return
        ip = self.ipam.get(uid)
        if ip is None:
            have = (pod.get("status") or {}).get("podIP")
            if have and self.ipam.reserve(uid, have):
                ip = have
            else:
                ip = self.ipam.allocate(uid)
        if ip is None:
            self.ctx.recorder.record(
                pod, WARNING, "FailedCreatePodSandBox",
                f"Failed to create pod sandbox: failed to allocate for range 0: no IP "
                f"addresses available in range set: {self.ipam.range_text()}",
                component="kubelet", host=self.node_name)
            self.enqueue_after(key, 10.0)
            return
        self._uid_of[key] = uid
        status = running_status(pod, ip, self.internal_ip, self.ctx.now())
        old = pod.get("status") or {}
        if status == old:
            return
        first_start = not old.get("containerStatuses")
        updated = dict(pod)
        updated["status"] = status
        out = await self.ctx.client.update_status(POD, updated)
        self._written_rv[key] = (uid, int(out["metadata"]["resourceVersion"]))
        if first_start and self.record_events:
            self._container_events(pod)

    def _container_events(self, pod: Obj) -> None:
        rec = self.ctx.recorder
        for c in (pod.get("spec") or {}).get("containers") or []:
            name, image = c.get("name", ""), c.get("image", "")
            rec.record(pod, NORMAL, "Pulled",
                       f'Container image "{image}" already present on machine',
                       component="kubelet", host=self.node_name)
            rec.record(pod, NORMAL, "Created", f"Created container {name}",
                       component="kubelet", host=self.node_name)
            rec.record(pod, NORMAL, "Started", f"Started container {name}",
                       component="kubelet", host=self.node_name)




def agents(ctx: ControllerContext) -> list[SimulatedNodeAgent]:
    """One agent per configured node (config.node_mode == "simulated")."""
    cfg = ctx.config
    slot = nodeslots.slots(cfg)
    return [SimulatedNodeAgent(ctx, n.name, dict(n.labels), [dict(t) for t in n.taints],
                               node_pod_cidr(cfg, slot[n.name]),
                               internal_ip=node_internal_ip(cfg, slot[n.name]))
            for n in cfg.nodes]
