"""A node's registration as the kubelet does it: the Node object (labels, taints,
podCIDR, addresses, capacity, conditions, nodeInfo), the condition heartbeat every
STATUS_REPORT seconds and the Lease in kube-node-lease renewed every LEASE_RENEW
seconds. Shared by the simulated agents and the real node agents.

A Node deleted after registration is not re-created: kubelet 1.32 registers once at
start (registrationCompleted is never reset; kubernetes/kubernetes#71398 and the
unmerged #123535), so the node stays absent until its agent restarts — here, the
daemon. `lost` turns true, the Lease is no longer renewed (the garbage collector removes
it with its Node) and the owner evicts its pods, as PodGC would on a real cluster.
"""
from __future__ import annotations

import hashlib
import logging
import platform
import uuid
from datetime import datetime
from typing import Any

from netd.api.kinds import resource
from netd.controllers.manager import ControllerContext
from netd.registry.objectapi import timestamp

log = logging.getLogger("netd.node.registration")

Obj = dict[str, Any]


NODE = resource("", "nodes")
LEASE = resource("coordination.k8s.io", "leases")

NODE_KEY = "@node"          # the queue key of the Node/Lease heartbeat (no pod key has '@')
LEASE_NAMESPACE = "kube-node-lease"
LEASE_RENEW = 10.0          # kubelet: renewInterval = 1/4 of the 40 s lease duration
LEASE_DURATION = 40
STATUS_REPORT = 60.0        # seconds between condition heartbeats (kubelet: 5 min with leases)
KUBELET_VERSION = "v1.32.0-netd"
RUNTIME_VERSION = "netd://sim"
CAPACITY = {"cpu": "4", "memory": "8Gi", "pods": "110", "ephemeral-storage": "100Gi"}


def micro(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def arch() -> str:
    machine = platform.machine().lower()
    return {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm"}.get(machine, machine)


class NodeRegistration:
    def _capacity(self) -> dict[str, str]:
        # kubelet's maxPods: how many pods the scheduler may bind here.
        return dict(CAPACITY, pods=str(self.ctx.config.max_pods))

    def __init__(self, ctx: ControllerContext, node_name: str, labels: dict[str, str],
                 taints: list[dict[str, str]], pod_cidr: str, internal_ip: str, *,
                 os_image: str = "netd simulated node",
                 runtime_version: str = RUNTIME_VERSION) -> None:
        self.ctx = ctx
        self.node_name = node_name
        self.labels = dict(labels)
        self.taints = [dict(t) for t in taints]
        self.pod_cidr = pod_cidr
        self.internal_ip = internal_ip
        self.os_image = os_image
        self.runtime_version = runtime_version
        self.boot_id = str(uuid.uuid4())
        self.registered = False
        self.lost = False
        self.last_renew: datetime | None = None
        self.last_report: datetime | None = None

    def node_object(self) -> Obj:
        hostname = self.node_name
        labels = {"kubernetes.io/hostname": hostname, "kubernetes.io/os": "linux",
                  "kubernetes.io/arch": arch(), "beta.kubernetes.io/os": "linux",
                  "beta.kubernetes.io/arch": arch()}
        labels.update(self.labels)
        spec: Obj = {"podCIDR": self.pod_cidr, "podCIDRs": [self.pod_cidr]}
        if self.taints:
            spec["taints"] = [dict(t) for t in self.taints]
        return {"apiVersion": "v1", "kind": "Node",
                "metadata": {"name": hostname, "labels": labels, "annotations": {
                    "node.alpha.kubernetes.io/ttl": "0",
                    "volumes.kubernetes.io/controller-managed-attach-detach": "true"}},
                "spec": spec, "status": self.node_status(None)}

    def node_status(self, old: Obj | None) -> Obj:
        now = timestamp(self.ctx.now())
        prev = {c.get("type"): c for c in ((old or {}).get("conditions") or [])}
        conditions = []
        for type_, value, reason, message in (
                ("MemoryPressure", "False", "KubeletHasSufficientMemory",
                 "kubelet has sufficient memory available"),
                ("DiskPressure", "False", "KubeletHasNoDiskPressure",
                 "kubelet has no disk pressure"),
                ("PIDPressure", "False", "KubeletHasSufficientPID",
                 "kubelet has sufficient PID available"),
                ("Ready", "True", "KubeletReady", "kubelet is posting ready status")):
            p = prev.get(type_) or {}
            since = p.get("lastTransitionTime") if p.get("status") == value else None
            conditions.append({"type": type_, "status": value, "lastHeartbeatTime": now,
                               "lastTransitionTime": since or now, "reason": reason,
                               "message": message})
        status = dict(old or {})
        status.update({
            "capacity": self._capacity(), "allocatable": self._capacity(),
            "conditions": conditions,
            "addresses": [{"type": "InternalIP", "address": self.internal_ip},
                          {"type": "Hostname", "address": self.node_name}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "nodeInfo": {
                "machineID": hashlib.md5(self.node_name.encode()).hexdigest(),
                "systemUUID": str(uuid.uuid5(uuid.NAMESPACE_DNS, self.node_name)),
                "bootID": self.boot_id, "kernelVersion": platform.release(),
                "osImage": self.os_image, "containerRuntimeVersion": self.runtime_version,
                "kubeletVersion": KUBELET_VERSION, "operatingSystem": "linux",
                "architecture": arch()}})
        return status

    async def sync(self) -> Obj | None:
        """Register or heartbeat; returns the Node, or None once it was deleted. The
        caller re-runs this every LEASE_RENEW seconds."""
        now = self.ctx.now()
        client = self.ctx.client
        node = client.get_or_none(NODE, "", self.node_name)
        if not self.registered:
            if node is None:
                node = await client.create(NODE, self.node_object())
                log.info("node %s registered (podCIDR %s)", self.node_name, self.pod_cidr)
            self.registered = True
            self.last_report = None
        elif node is None:
            if not self.lost:
                log.warning("node %s: Node object deleted; not reporting status",
                            self.node_name)
                self.lost = True
            return None
        self.lost = False
        if self.last_report is None or \
                (now - self.last_report).total_seconds() >= STATUS_REPORT:
            node["status"] = self.node_status(node.get("status"))
            node = await client.update_status(NODE, node)
            if not (node.get("spec") or {}).get("podCIDR"):
                # Registered by someone else without a range: node-ipam would assign it.
                node["spec"] = dict(node.get("spec") or {}, podCIDR=self.pod_cidr,
                                    podCIDRs=[self.pod_cidr])
                node = await client.update(NODE, node)
            self.last_report = now
        if self.last_renew is None or \
                (now - self.last_renew).total_seconds() >= LEASE_RENEW * 0.9:
            await self._renew_lease(node, now)
            self.last_renew = now
        return node

    async def _renew_lease(self, node: Obj, now: datetime) -> None:
        lease = self.ctx.client.get_or_none(LEASE, LEASE_NAMESPACE, self.node_name)
        body = lease or {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                         "metadata": {"name": self.node_name, "namespace": LEASE_NAMESPACE}}
        body["metadata"]["ownerReferences"] = [{
            "apiVersion": "v1", "kind": "Node", "name": self.node_name,
            "uid": node["metadata"]["uid"]}]
        body["spec"] = dict(body.get("spec") or {}, holderIdentity=self.node_name,
                            leaseDurationSeconds=LEASE_DURATION, renewTime=micro(now))
        if lease is None:
            await self.ctx.client.create(LEASE, body)
        else:
            await self.ctx.client.update(LEASE, body)
