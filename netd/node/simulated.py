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

import hashlib
import ipaddress
import logging
import platform
import uuid
from datetime import datetime
from typing import Any

from netd.api import errors
from netd.api.kinds import REGISTRY, ResourceType
from netd.client.controller import Controller
from netd.client.informer import index_by_node, key_of
from netd.config import Config, ConfigError
from netd.controllers.events import NORMAL, WARNING
from netd.controllers.manager import ControllerContext
from netd.node.simpod import container_id, image_id, image_ref, running_status
from netd.registry.objectapi import timestamp

log = logging.getLogger("netd.node.simulated")

Obj = dict[str, Any]


def _rt(group: str, plural: str) -> ResourceType:
    rt = REGISTRY.by_plural(group, plural)
    assert rt is not None
    return rt


POD = _rt("", "pods")
NODE = _rt("", "nodes")
LEASE = _rt("coordination.k8s.io", "leases")

NODE_KEY = "@node"          # the queue key of the Node/Lease heartbeat (no pod key has '@')
LEASE_NAMESPACE = "kube-node-lease"
LEASE_RENEW = 10.0          # kubelet: renewInterval = 1/4 of the 40 s lease duration
LEASE_DURATION = 40
STATUS_REPORT = 60.0        # seconds between condition heartbeats (kubelet: 5 min with leases)
KUBELET_VERSION = "v1.32.0-netd"
RUNTIME_VERSION = "netd://sim"
CAPACITY = {"cpu": "4", "memory": "8Gi", "pods": "110", "ephemeral-storage": "100Gi"}
POD_INDEX = "spec.nodeName"


# ---- addressing (shared with the real node agents) ------------------------------------

def node_pod_cidr(config: Config, index: int) -> str:
    """The index-th /node_cidr_size block of pod_cidr (node-ipam's range allocator
    hands them out in order too)."""
    net = ipaddress.IPv4Network(config.pod_cidr)
    count = 2 ** (config.node_cidr_size - net.prefixlen)
    if index >= count:
        raise ConfigError(f"nodes: pod_cidr {config.pod_cidr} has room for only {count} "
                          f"nodes of /{config.node_cidr_size}")
    size = 2 ** (32 - config.node_cidr_size)
    base = ipaddress.IPv4Address(int(net.network_address) + index * size)
    return f"{base}/{config.node_cidr_size}"


def node_internal_ip(config: Config, index: int) -> str:
    """Node i is .(i+2) of the node network (the host bridge is .1)."""
    net = ipaddress.IPv4Network(config.node_network)
    if index + 2 >= net.num_addresses - 1:
        raise ConfigError(f"nodes: node_network {config.node_network} is too small")
    return str(net.network_address + index + 2)


class PodIPAllocator:
    """host-local IPAM over one node CIDR: addresses from .2 up to the last before
    broadcast, handed out round-robin after the last one given."""

    def __init__(self, cidr: str) -> None:
        self.network = ipaddress.IPv4Network(cidr)
        base = int(self.network.network_address)
        self._first = base + 2                       # .0 network, .1 gateway
        self._last = base + self.network.num_addresses - 2   # before broadcast
        self._owner_of: dict[int, str] = {}
        self._ip_of: dict[str, int] = {}
        self._cursor = self._last                    # the next allocation starts at _first

    @property
    def size(self) -> int:
        return max(0, self._last - self._first + 1)

    def get(self, owner: str) -> str | None:
        ip = self._ip_of.get(owner)
        return None if ip is None else str(ipaddress.IPv4Address(ip))

    def reserve(self, owner: str, ip: str) -> bool:
        """Record an address already in use (restart); False if it cannot be owner's."""
        try:
            value = int(ipaddress.IPv4Address(ip))
        except ValueError:
            return False
        if not self._first <= value <= self._last:
            return False
        holder = self._owner_of.get(value)
        if holder is not None:
            return holder == owner
        self.release(owner)
        self._owner_of[value] = owner
        self._ip_of[owner] = value
        self._cursor = value   # continue after the newest adopted address
        return True

    def allocate(self, owner: str) -> str | None:
        """The owner's address, a new one, or None when the range is exhausted."""
        have = self.get(owner)
        if have is not None:
            return have
        size = self.size
        if size == 0:
            return None
        for step in range(1, size + 1):
            value = self._first + (self._cursor - self._first + step) % size
            if value not in self._owner_of:
                self._owner_of[value] = owner
                self._ip_of[owner] = value
                self._cursor = value
                return str(ipaddress.IPv4Address(value))
        return None

    def release(self, owner: str) -> None:
        value = self._ip_of.pop(owner, None)
        if value is not None:
            self._owner_of.pop(value, None)

    def __len__(self) -> int:
        return len(self._ip_of)

    def range_text(self) -> str:
        return f"{ipaddress.IPv4Address(self._first)}-{ipaddress.IPv4Address(self._last)}"


__all__ = ["SimulatedNodeAgent", "PodIPAllocator", "agents", "node_pod_cidr",
           "node_internal_ip", "running_status", "image_ref", "image_id", "container_id"]


def _micro(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


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
        self.boot_id = str(uuid.uuid4())
        self.pods = self.watch(ctx.factory.informer(POD), keys_for=self._pod_keys)
        self.nodes = self.watch(ctx.factory.informer(NODE), keys_for=self._node_keys)
        try:
            self.pods.add_index(POD_INDEX, index_by_node)
        except ValueError:
            pass  # another agent on the shared informer added it
        self._uid_of: dict[str, str] = {}          # pod key -> uid holding an address
        self._written_rv: dict[str, tuple[str, int]] = {}   # pod key -> (uid, rv we wrote)
        self._ipam_rebuilt = False
        self._registered = False
        self._lost = False
        self._last_renew: datetime | None = None
        self._last_report: datetime | None = None

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
        hostname = self.node_name
        labels = {"kubernetes.io/hostname": hostname, "kubernetes.io/os": "linux",
                  "kubernetes.io/arch": _arch(), "beta.kubernetes.io/os": "linux",
                  "beta.kubernetes.io/arch": _arch()}
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
            "capacity": dict(CAPACITY), "allocatable": dict(CAPACITY),
            "conditions": conditions,
            "addresses": [{"type": "InternalIP", "address": self.internal_ip},
                          {"type": "Hostname", "address": self.node_name}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "nodeInfo": {
                "machineID": hashlib.md5(self.node_name.encode()).hexdigest(),
                "systemUUID": str(uuid.uuid5(uuid.NAMESPACE_DNS, self.node_name)),
                "bootID": self.boot_id, "kernelVersion": platform.release(),
                "osImage": "netd simulated node", "containerRuntimeVersion": RUNTIME_VERSION,
                "kubeletVersion": KUBELET_VERSION, "operatingSystem": "linux",
                "architecture": _arch()}})
        return status

    async def sync_node(self) -> None:
        now = self.ctx.now()
        client = self.ctx.client
        self.enqueue_after(NODE_KEY, LEASE_RENEW)
        node = client.get_or_none(NODE, "", self.node_name)
        if not self._registered:
            if node is None:
                node = await client.create(NODE, self.node_object())
                log.info("node %s registered (podCIDR %s)", self.node_name, self.pod_cidr)
            self._registered = True
            self._last_report = None
        elif node is None:
            if not self._lost:
                # A kubelet does not re-register a deleted Node until it restarts.
                log.warning("node %s: Node object deleted; not reporting status",
                            self.node_name)
                self._lost = True
            return
        self._lost = False
        if self._last_report is None or \
                (now - self._last_report).total_seconds() >= STATUS_REPORT:
            node["status"] = self.node_status(node.get("status"))
            node = await client.update_status(NODE, node)
            if not (node.get("spec") or {}).get("podCIDR"):
                # Registered by someone else without a range: node-ipam would assign it.
                node["spec"] = dict(node.get("spec") or {}, podCIDR=self.pod_cidr,
                                    podCIDRs=[self.pod_cidr])
                node = await client.update(NODE, node)
            self._last_report = now
        if self._last_renew is None or \
                (now - self._last_renew).total_seconds() >= LEASE_RENEW * 0.9:
            await self._renew_lease(node, now)
            self._last_renew = now

    async def _renew_lease(self, node: Obj, now: datetime) -> None:
        lease = self.ctx.client.get_or_none(LEASE, LEASE_NAMESPACE, self.node_name)
        body = lease or {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                         "metadata": {"name": self.node_name, "namespace": LEASE_NAMESPACE}}
        body["metadata"]["ownerReferences"] = [{
            "apiVersion": "v1", "kind": "Node", "name": self.node_name,
            "uid": node["metadata"]["uid"]}]
        body["spec"] = dict(body.get("spec") or {}, holderIdentity=self.node_name,
                            leaseDurationSeconds=LEASE_DURATION, renewTime=_micro(now))
        if lease is None:
            await self.ctx.client.create(LEASE, body)
        else:
            await self.ctx.client.update(LEASE, body)

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


def _arch() -> str:
    machine = platform.machine().lower()
    return {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm"}.get(machine, machine)


def agents(ctx: ControllerContext) -> list[SimulatedNodeAgent]:
    """One agent per configured node (config.node_mode == "simulated")."""
    cfg = ctx.config
    return [SimulatedNodeAgent(ctx, n.name, dict(n.labels), [dict(t) for t in n.taints],
                               node_pod_cidr(cfg, i), internal_ip=node_internal_ip(cfg, i))
            for i, n in enumerate(cfg.nodes)]
