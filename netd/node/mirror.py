"""The DNS mirror pod each node agent publishes: `kube-system/coredns-<node>`.

Why a pod: in a cluster the `kube-system/kube-dns` Service selects the CoreDNS pods
(k8s-app=kube-dns) and the ordinary Endpoints/EndpointSlice controllers list them.
netd's DNS server runs inside the daemon and answers in every node (on the DNS IP and
on the node's InternalIP, netd.dns.service), so each node agent describes its node's
server the way kubelet describes a static pod: a *mirror pod* — annotation
`kubernetes.io/config.mirror`, owned by the Node (kubelet sets that ownerReference, so
the pod goes with its node), hostNetwork, podIP = the node's InternalIP, Running and
Ready. Then `kubectl get endpoints -n kube-system kube-dns` lists one address per node
and `kubectl get pods -n kube-system -o wide` shows a DNS pod per node, with no special
case in any controller.

The agent never builds a sandbox or runs containers for it (the pod key is handled
here before the agent's pod sync); deleting it recreates it, as kubelet does with a
mirror pod whose static pod still exists. Simulated nodes publish none: nothing
answers DNS there (the DNS listeners need node namespaces), so kube-dns has no
endpoints, which is the truth.
"""
from __future__ import annotations

import hashlib
import logging
from typing import Any

from netd.api import errors
from netd.api.kinds import resource
from netd.node.simpod import running_status

log = logging.getLogger("netd.node")

Obj = dict[str, Any]

POD = resource("", "pods")
NODE = resource("", "nodes")
NAMESPACE = "kube-system"
MIRROR_ANNOTATION = "kubernetes.io/config.mirror"
IMAGE = "netd.local/dns:builtin"
METRICS_PORT = 9153


def mirror_name(node_name: str) -> str:
    # Static pods are named <name>-<node> (kube-apiserver-node1); ours is CoreDNS.
    return f"coredns-{node_name}"


def is_mirror(pod: Obj) -> bool:
    return MIRROR_ANNOTATION in ((pod.get("metadata") or {}).get("annotations") or {})


def mirror_pod(node: Obj) -> Obj:
    """The mirror pod object for `node` (a Node as stored: name and uid)."""
    name = node["metadata"]["name"]
    ports = [{"name": "dns", "containerPort": 53, "hostPort": 53, "protocol": "UDP"},
             {"name": "dns-tcp", "containerPort": 53, "hostPort": 53, "protocol": "TCP"},
             {"name": "metrics", "containerPort": METRICS_PORT, "hostPort": METRICS_PORT,
              "protocol": "TCP"}]
    spec: Obj = {
        "nodeName": name, "hostNetwork": True, "dnsPolicy": "Default",
        "restartPolicy": "Always",
        "containers": [{"name": "coredns", "image": IMAGE, "imagePullPolicy": "Never",
                        "args": ["-conf", "builtin"], "ports": ports}],
        # Static pods tolerate everything: the node's own DNS runs on a tainted node too.
        "tolerations": [{"operator": "Exists", "effect": "NoExecute"},
                        {"operator": "Exists", "effect": "NoSchedule"}]}
    digest = hashlib.sha256(repr((name, ports, IMAGE)).encode()).hexdigest()[:32]
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {
            "name": mirror_name(name), "namespace": NAMESPACE,
            "labels": {"k8s-app": "kube-dns"},
            "annotations": {MIRROR_ANNOTATION: digest, "kubernetes.io/config.hash": digest,
                            "kubernetes.io/config.source": "file"},
            "ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": name,
                                 "uid": node["metadata"].get("uid", ""),
                                 "controller": True}]},
        "spec": spec}


def wants_status(pod: Obj, node_ip: str) -> bool:
    status = pod.get("status") or {}
    ready = any(c.get("type") == "Ready" and c.get("status") == "True"
                for c in status.get("conditions") or [])
    return not (status.get("phase") == "Running" and ready and status.get("podIP") == node_ip)


class DnsMirrorPod:
    """Keeps one node's mirror pod in place; the node agent calls `sync()` on its
    node heartbeat and whenever the pod's key is queued (`owns(key)`)."""

    def __init__(self, ctx: Any, node_name: str, node_ip: str) -> None:
        self.ctx = ctx
        self.node_name = node_name
        self.node_ip = node_ip
        self.key = f"{NAMESPACE}/{mirror_name(node_name)}"

    def owns(self, key: str) -> bool:
        return key == self.key

    async def sync(self) -> None:
        try:
            await self._sync()
        except (errors.Conflict, errors.AlreadyExists, errors.NotFound) as exc:
            # Raced with another writer or a deletion: the resulting event requeues.
            log.debug("node %s: mirror pod: %s", self.node_name, exc)

    async def _sync(self) -> None:
        client = self.ctx.client
        node = client.get_or_none(NODE, "", self.node_name)
        if node is None or node["metadata"].get("deletionTimestamp"):
            return      # not registered (yet); the GC removes the pod with the node
        name = mirror_name(self.node_name)
        pod = client.get_or_none(POD, NAMESPACE, name)
        if pod is not None:
            meta = pod["metadata"]
            owners = [r.get("uid") for r in meta.get("ownerReferences") or []]
            if meta.get("deletionTimestamp") or not is_mirror(pod) \
                    or owners != [node["metadata"].get("uid")]:
                # Deleted (kubelet finishes it at once: no containers to stop), a user's
                # pod under our name, or the pod of an earlier Node object: replace it.
                await client.delete(POD, NAMESPACE, name, grace=0, uid=meta.get("uid"))
                return   # the deletion event brings us back to recreate it
        if pod is None:
            pod = await client.create(POD, mirror_pod(node))
            log.info("node %s: published DNS mirror pod %s", self.node_name, name)
        if wants_status(pod, self.node_ip):
            updated = dict(pod, status=running_status(pod, self.node_ip, self.node_ip,
                                                      self.ctx.now()))
            await client.update_status(POD, updated)
