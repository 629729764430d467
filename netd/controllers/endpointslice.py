"""The EndpointSlice controller (pkg/controller/endpointslice) and, for Services
without a selector, EndpointSlice mirroring of user-written Endpoints
(pkg/controller/endpointslicemirroring), in one reconcile per Service.

Slices are `<svc>-<5 random>` (generateName), labelled with the Service's labels plus
`kubernetes.io/service-name` and `endpointslice.kubernetes.io/managed-by`, owned by the
Service (the garbage collector removes them with it). Endpoints with the same resolved
ports share slices of at most 100 endpoints. Like upstream's reconciler, existing slices
are updated in place (endpoints stay in the slice they are in), new endpoints fill the
free room first, a slice that would be deleted while another is created is reused
instead, and a Service with no endpoints keeps one empty placeholder slice.
"""
from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from netd.api import errors
from netd.client.client import resolve
from netd.client.controller import Controller
from netd.client.informer import index_by_namespace, key_of, split_key
from netd.controllers.endpoints import (HEADLESS, TRIGGER_TIME, PodMemo,
                                        find_port, is_service_ip_set, latest_change,
                                        pod_change_time, pod_ip_for_family, selector_of,
                                        selects, service_family, should_pod_be_in_endpoints,
                                        should_set_hostname, target_ref)
from netd.controllers.manager import ControllerContext
from netd.controllers.owners import ensure_index
from netd.controllers.podutil import is_pod_ready
from netd.store.base import copy_obj

log = logging.getLogger("netd.controllers.endpointslice")

Obj = dict[str, Any]

SERVICE_NAME = "kubernetes.io/service-name"
MANAGED_BY = "endpointslice.kubernetes.io/managed-by"
CONTROLLER_NAME = "endpointslice-controller.k8s.io"
MIRROR_NAME = "endpointslicemirroring-controller.k8s.io"
SKIP_MIRROR = "endpointslice.kubernetes.io/skip-mirror"
LEADER = "control-plane.alpha.kubernetes.io/leader"
ZONE = "topology.kubernetes.io/zone"
MAX_ENDPOINTS_PER_SLICE = 100
_RESERVED = (SERVICE_NAME, MANAGED_BY, HEADLESS)
# Annotations of a mirrored Endpoints that are not copied onto its slices.
_NOT_MIRRORED = (TRIGGER_TIME, "kubectl.kubernetes.io/last-applied-configuration")

PortsKey = tuple[tuple[Any, ...], ...]
# What one pod contributes to its Service's slices: its change time (for the trigger
# time) and, when it is an endpoint, (ports key, resolved ports, endpoint).
PodSliceFacts = tuple[datetime | None, tuple[PortsKey, list[Obj], Obj] | None]


def _ports_key(ports: list[Obj]) -> PortsKey:
    return tuple(sorted((p.get("name") or "", p.get("port"), p.get("protocol") or "TCP",
                         p.get("appProtocol") or "") for p in ports))


def _endpoint_key(ep: Obj) -> str:
    ref = ep.get("targetRef") or {}
    return ref.get("uid") or ",".join(ep.get("addresses") or [])


def _sort_endpoints(eps: list[Obj]) -> list[Obj]:
    return sorted(eps, key=lambda e: ((e.get("addresses") or [""])[0],
                                      (e.get("targetRef") or {}).get("name", "")))


def pod_endpoint(pod: Obj, service: Obj, ip: str, node: Obj | None) -> Obj:
    """podToEndpoint: ready is never true for a terminating pod (unless the Service
    publishes not-ready addresses), serving is the pod's readiness."""
    publish = bool((service.get("spec") or {}).get("publishNotReadyAddresses"))
    serving = is_pod_ready(pod)
    terminating = bool((pod.get("metadata") or {}).get("deletionTimestamp"))
    ep: Obj = {"addresses": [ip],
               "conditions": {"ready": publish or (serving and not terminating),
                              "serving": serving, "terminating": terminating}}
    if should_set_hostname(pod, service):
        ep["hostname"] = pod["spec"]["hostname"]
    ep["targetRef"] = target_ref(pod)
    node_name = (pod.get("spec") or {}).get("nodeName")
    if node_name:
        ep["nodeName"] = node_name
    zone = ((node or {}).get("metadata") or {}).get("labels", {}).get(ZONE)
    if zone:
        ep["zone"] = zone
    return ep


def pod_ports(pod: Obj, service: Obj) -> list[Obj]:
    out = []
    for sp in (service.get("spec") or {}).get("ports") or []:
        num = find_port(pod, sp)
        if num is None:
            continue
        port: Obj = {"name": sp.get("name") or "", "port": num,
                     "protocol": sp.get("protocol") or "TCP"}
        if sp.get("appProtocol") is not None:
            port["appProtocol"] = sp["appProtocol"]
        out.append(port)
    return out


def pod_slice_facts(service: Obj, pod: Obj, node: Obj | None) -> PodSliceFacts:
    """`pod`'s change time and its endpoint in `service`'s slices (with the ports it
    resolves), or None when it is not one."""
    stamp = pod_change_time(pod)
    if not should_pod_be_in_endpoints(pod, True):
        return stamp, None
    ip = pod_ip_for_family(pod, service_family(service))
    if ip is None:
        return stamp, None
    ports = pod_ports(pod, service)
    if not ports and (service.get("spec") or {}).get("ports"):
        return stamp, None  # no service port resolves on this pod
    return stamp, (_ports_key(ports), ports, pod_endpoint(pod, service, ip, node))


def desired_from_facts(facts: list[PodSliceFacts]
                       ) -> dict[PortsKey, tuple[list[Obj], list[Obj]]]:
    """Endpoints grouped by port set, in pod order (the dicts are shared with the memo:
    the write path copies what it is given)."""
    out: dict[PortsKey, tuple[list[Obj], list[Obj]]] = {}
    for _, found in facts:
        if found is not None:
            pk, ports, ep = found
            out.setdefault(pk, (ports, []))[1].append(ep)
    return out


def mirror_endpoints(endpoints: Obj, family: str) -> dict[PortsKey, tuple[list[Obj], list[Obj]]]:
    """A user-written Endpoints as (ports, endpoints) per port set (addressToEndpoint)."""
    out: dict[PortsKey, tuple[list[Obj], list[Obj]]] = {}
    for subset in endpoints.get("subsets") or []:
        ports = [{k: v for k, v in (("name", p.get("name") or ""), ("port", p.get("port")),
                                     ("protocol", p.get("protocol") or "TCP"),
                                     ("appProtocol", p.get("appProtocol")))
                  if v is not None} for p in subset.get("ports") or []]
        key = _ports_key(ports)
        eps = out.setdefault(key, (ports, []))[1]
        for field, ready in (("addresses", True), ("notReadyAddresses", False)):
            for addr in subset.get(field) or []:
                ip = addr.get("ip") or ""
                if (":" in ip) != (family == "IPv6"):
                    continue
                ep: Obj = {"addresses": [ip], "conditions": {"ready": ready}}
                if addr.get("hostname"):
                    ep["hostname"] = addr["hostname"]
                if addr.get("targetRef"):
                    ep["targetRef"] = addr["targetRef"]
                if addr.get("nodeName"):
                    ep["nodeName"] = addr["nodeName"]
                eps.append(ep)
    return out


class EndpointSliceController(Controller):
    def __init__(self, ctx: ControllerContext, *, workers: int = 4) -> None:
        super().__init__("endpointslice", workers=workers)
        self.ctx = ctx
        self.services = self.watch(ctx.factory.informer(resolve("services")))
        self.pods = self.watch(ctx.factory.informer(resolve("pods")), keys_for=self.pod_keys)
        # Slice events go through _on_slice_* (not watch()) so that the events of this
        # controller's own writes are recognised and dropped, as upstream's
        # endpointSliceTracker does: each write would otherwise re-run a full reconcile
        # that finds nothing to do.
        self.slices = ctx.factory.informer(resolve("endpointslices"))
        self.slices.add_handler(self._on_slice_add, self._on_slice_update,
                                self._on_slice_delete)
        self.informers.append(self.slices)
        # slice key -> resourceVersion of our last write of it; None after our delete.
        self._own: dict[str, str | None] = {}
        self._memo: PodMemo[PodSliceFacts] = PodMemo()
        self.endpoints = self.watch(ctx.factory.informer(resolve("endpoints")),
                                    keys_for=self.endpoints_keys)
        self.nodes = ctx.factory.informer(resolve("nodes"))
        self.informers.append(self.nodes)
        ensure_index(self.services, "namespace", index_by_namespace)
        ensure_index(self.pods, "namespace", index_by_namespace)
        ensure_index(self.slices, "service", self._slice_service)

    # ---- event → key mapping -------------------------------------------------------------

    @staticmethod
    def _slice_service(sl: Obj) -> list[str]:
        meta = sl.get("metadata") or {}
        svc = (meta.get("labels") or {}).get(SERVICE_NAME)
        return [f"{meta.get('namespace', '')}/{svc}"] if svc else []

    def slice_keys(self, sl: Obj) -> list[str]:
        labels = (sl.get("metadata") or {}).get("labels") or {}
        if labels.get(MANAGED_BY) not in (CONTROLLER_NAME, MIRROR_NAME):
            return []
        return self._slice_service(sl)

    def _is_own(self, sl: Obj) -> bool:
        key = key_of(sl)
        return key in self._own and \
            self._own[key] == (sl.get("metadata") or {}).get("resourceVersion")

    def _enqueue_keys(self, sl: Obj) -> None:
        for key in self.slice_keys(sl):
            self.enqueue(key)

    def _on_slice_add(self, sl: Obj) -> None:
        if not self._is_own(sl):
            self._enqueue_keys(sl)

    def _on_slice_update(self, old: Obj, new: Obj) -> None:
        if self._is_own(new):
            return  # our write: it moves no slice between Services (same labels)
        self._enqueue_keys(new)
        self._enqueue_keys(old)

    def _on_slice_delete(self, sl: Obj) -> None:
        key = key_of(sl)
        if key in self._own and self._own.pop(key) is None:
            return  # our own delete
        self._enqueue_keys(sl)

    def endpoints_keys(self, eps: Obj) -> list[str]:
        # Only selector-less Services mirror their Endpoints; the Endpoints the endpoints
        # controller writes for the others must not wake this controller.
        key = key_of(eps)
        svc = self.services.get(key)
        return [key] if svc is not None and not selector_of(svc) else []

    def pod_keys(self, pod: Obj) -> list[str]:
        ns = (pod.get("metadata") or {}).get("namespace") or ""
        return [key_of(svc) for svc in self.services.by_index("namespace", ns)
                if selects(selector_of(svc), pod)]

    # ---- reconcile -----------------------------------------------------------------------

    async def reconcile(self, key: str) -> None:
        ns, name = split_key(key)
        service = self.services.get(key)
        existing = [s for s in self.slices.by_index("service", key)
                    if ((s.get("metadata") or {}).get("labels") or {}).get(MANAGED_BY)
                    in (CONTROLLER_NAME, MIRROR_NAME)]
        if service is None:
            self._memo.forget(key)
            return  # its slices are owned by it: the garbage collector removes them
        spec = service.get("spec") or {}
        mode: str | None = None
        if spec.get("type") != "ExternalName":
            if selector_of(service):
                mode = CONTROLLER_NAME
            elif self._mirrorable(self.endpoints.get(key)):
                mode = MIRROR_NAME
        family = service_family(service)
        stale = [s for s in existing
                 if s["metadata"]["labels"].get(MANAGED_BY) != mode or
                 s.get("addressType") != family]
        ours = [s for s in existing if s not in stale]
        for s in stale:
            await self._delete(ns, s["metadata"]["name"])
        if mode is None:
            return
        if mode == CONTROLLER_NAME:
            selector = selector_of(service)
            pods = [p for p in self.pods.by_index("namespace", ns) if selects(selector, p)]
            facts = self._memo.values(key, service, pods, pod_slice_facts, self._node_of)
            desired = desired_from_facts(facts)
            labels = self._labels(service, mode, service.get("metadata", {}).get("labels"))
            annotations: dict[str, str] = {}
            stamp = latest_change(service, (t for t, _ in facts))
            if stamp:
                annotations[TRIGGER_TIME] = stamp
        else:
            self._memo.forget(key)
            eps = self.endpoints.get(key) or {}
            desired = mirror_endpoints(eps, family)
            labels = self._labels(service, mode, eps.get("metadata", {}).get("labels"))
            annotations = {k: v for k, v in
                           ((eps.get("metadata") or {}).get("annotations") or {}).items()
                           if k not in _NOT_MIRRORED}
        await self._sync(service, family, ours, desired, labels, annotations,
                         placeholder=mode == CONTROLLER_NAME)

    @staticmethod
    def _mirrorable(eps: Obj | None) -> bool:
        if eps is None:
            return False
        meta = eps.get("metadata") or {}
        return (meta.get("labels") or {}).get(SKIP_MIRROR) != "true" and \
            LEADER not in (meta.get("annotations") or {})

    def _node_of(self, pod: Obj) -> Obj | None:
        return self.nodes.get((pod.get("spec") or {}).get("nodeName") or "")

    @staticmethod
    def _labels(service: Obj, mode: str, base: dict[str, str] | None) -> dict[str, str]:
        labels = {k: v for k, v in (base or {}).items() if k not in _RESERVED}
        if mode == CONTROLLER_NAME and not is_service_ip_set(service):
            labels[HEADLESS] = ""
        labels[SERVICE_NAME] = service["metadata"]["name"]
        labels[MANAGED_BY] = mode
        return labels

    async def _sync(self, service: Obj, family: str, existing: list[Obj],
                    desired: dict[PortsKey, tuple[list[Obj], list[Obj]]],
                    labels: dict[str, str], annotations: dict[str, str], *,
                    placeholder: bool) -> None:
        """One step of reconcileByAddressType: decide creates/updates/deletes, then
        write them."""
        by_ports: dict[PortsKey, list[Obj]] = {}
        for s in sorted(existing, key=lambda s: s["metadata"]["name"]):
            by_ports.setdefault(_ports_key(s.get("ports") or []), []).append(s)
        # (existing slice or None, ports, endpoints) after the plan.
        plan: list[tuple[Obj | None, list[Obj], list[Obj]]] = []
        to_delete: list[Obj] = []
        for pk, (ports, eps) in desired.items():
            remaining = {_endpoint_key(e): e for e in eps}
            kept: list[tuple[Obj, list[Obj]]] = []
            for s in by_ports.pop(pk, []):
                mine = []
                for ep in s.get("endpoints") or []:
                    k = _endpoint_key(ep)
                    if k in remaining:
                        mine.append(remaining.pop(k))
                kept.append((s, mine))
            for s, mine in kept:
                while remaining and len(mine) < MAX_ENDPOINTS_PER_SLICE:
                    mine.append(remaining.pop(next(iter(remaining))))
                if mine:
                    plan.append((s, ports, mine))
                else:
                    to_delete.append(s)
            rest = list(remaining.values())
            for i in range(0, len(rest), MAX_ENDPOINTS_PER_SLICE):
                plan.append((None, ports, rest[i:i + MAX_ENDPOINTS_PER_SLICE]))
        for slices in by_ports.values():
            to_delete.extend(slices)
        if not plan and placeholder:
            # A Service without endpoints keeps one empty slice (upstream's placeholder).
            keep: Obj | None = next((s for s in to_delete if not s.get("endpoints")
                                     and not s.get("ports")), None)
            if keep is None and to_delete:
                keep = to_delete[0]
            if keep is not None:
                to_delete.remove(keep)
            plan.append((keep, [], []))
        # Reuse slices about to be deleted instead of creating new ones (less churn).
        for i, (cur, ports, eps) in enumerate(plan):
            if cur is None and to_delete:
                plan[i] = (to_delete.pop(0), ports, eps)
        for cur, ports, eps in plan:
            await self._write(service, family, cur, ports, _sort_endpoints(eps), labels,
                              annotations)
        ns = service["metadata"].get("namespace", "")
        for s in to_delete:
            await self._delete(ns, s["metadata"]["name"])

    async def _delete(self, ns: str, name: str) -> None:
        if await self.ctx.client.delete_if_exists("EndpointSlice", ns, name) is not None:
            # Its delete event carries nothing this reconcile did not know.
            self._own[f"{ns}/{name}"] = None

    async def _write(self, service: Obj, family: str, current: Obj | None, ports: list[Obj],
                     eps: list[Obj], labels: dict[str, str],
                     annotations: dict[str, str]) -> None:
        meta_svc = service["metadata"]
        owner = {"apiVersion": "v1", "kind": "Service", "name": meta_svc["name"],
                 "uid": meta_svc.get("uid", ""), "controller": True,
                 "blockOwnerDeletion": True}
        if current is not None:
            cmeta = current.get("metadata") or {}
            same = (current.get("endpoints") or []) == eps and \
                (current.get("ports") or []) == ports and cmeta.get("labels") == labels and \
                owner in (cmeta.get("ownerReferences") or []) and all(
                    (cmeta.get("annotations") or {}).get(k) == v
                    for k, v in annotations.items() if k != TRIGGER_TIME)
            if same:
                return
            body = copy_obj(current)
            meta = body["metadata"]
            refs = [r for r in meta.get("ownerReferences") or [] if not r.get("controller")]
            meta["ownerReferences"] = refs + [owner]
        else:
            prefix = meta_svc["name"] + "-"
            if len(prefix) > 253:
                prefix = meta_svc["name"]
            meta = {"generateName": prefix, "namespace": meta_svc.get("namespace", ""),
                    "ownerReferences": [owner]}
            body = {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                    "metadata": meta, "addressType": family}
        meta["labels"] = dict(labels)
        merged = dict(meta.get("annotations") or {})
        merged.update(annotations)
        if TRIGGER_TIME not in annotations:
            merged.pop(TRIGGER_TIME, None)
        if merged:
            meta["annotations"] = merged
        else:
            meta.pop("annotations", None)
        body["endpoints"] = eps
        body["ports"] = ports
        try:
            if current is None:
                written = await self.ctx.client.create("EndpointSlice", body)
                log.info("created endpointslice %s/%s", written["metadata"]["namespace"],
                         written["metadata"]["name"])
            else:
                written = await self.ctx.client.update("EndpointSlice", body)
            # Recorded before the informer sees the event: the store commits and fans
            # out without yielding, and nothing between here and there awaits.
            self._own[key_of(written)] = written["metadata"].get("resourceVersion")
        except errors.Forbidden:
            if current is None:
                return  # namespace terminating
            raise
