"""The Endpoints controller (kube-controller-manager's pkg/controller/endpoint), and the
pod → endpoint facts it shares with the EndpointSlice controller
(pkg/controller/util/endpoint, pkg/api/v1/pod FindPort, pkg/api/v1/endpoints Repack).

Per Service with a selector, the Endpoints object of the same name lists the selected
pods that have an IP and are not terminal: ready ones in `addresses`, the others in
`notReadyAddresses` (everyone counts as ready with publishNotReadyAddresses; terminating
pods are left out unless it is set). Ports are resolved per pod (a named targetPort is
that pod's container port of that name and protocol), so pods that differ form
separate subsets. Services without a selector keep the Endpoints their users write;
an ExternalName Service gets none. The Endpoints goes when its Service goes.
"""
from __future__ import annotations

import functools
import ipaddress
import logging
from datetime import datetime, timezone
from typing import Any, Callable, Generic, Iterable, TypeVar

from netd.api import errors
from netd.client.client import resolve
from netd.client.controller import Controller
from netd.client.informer import Informer, index_by_namespace, key_of, split_key
from netd.controllers.events import WARNING
from netd.controllers.manager import ControllerContext
from netd.controllers.owners import ensure_index
from netd.controllers.podutil import is_pod_ready, parse_time

log = logging.getLogger("netd.controllers.endpoints")

Obj = dict[str, Any]
T = TypeVar("T")

TRIGGER_TIME = "endpoints.kubernetes.io/last-change-trigger-time"
OVER_CAPACITY = "endpoints.kubernetes.io/over-capacity"
HEADLESS = "service.kubernetes.io/headless"
# Endpoints stops at 1000 addresses (EndpointSlices have no such limit).
MAX_CAPACITY = 1000
COMPONENT = "endpoint-controller"


# ---- pure helpers shared with the EndpointSlice controller ------------------------------

def selector_of(service: Obj) -> dict[str, str]:
    """The Service's selector; {} means none (an empty map does not survive a
    Kubernetes round-trip, so it selects nothing, like an absent one)."""
    sel = (service.get("spec") or {}).get("selector")
    return sel if isinstance(sel, dict) else {}


def selects(selector: dict[str, str], pod: Obj) -> bool:
    labels = (pod.get("metadata") or {}).get("labels") or {}
    # Items-view inclusion: every selector pair is among the labels (one C-level pass).
    return bool(selector) and selector.items() <= labels.items()


def is_service_ip_set(service: Obj) -> bool:
    ip = (service.get("spec") or {}).get("clusterIP") or ""
    return ip not in ("", "None")


def is_terminal(pod: Obj) -> bool:
    return (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")


def should_pod_be_in_endpoints(pod: Obj, include_terminating: bool) -> bool:
    status = pod.get("status") or {}
    if is_terminal(pod):
        return False
    if not status.get("podIP") and not status.get("podIPs"):
        return False
    return include_terminating or not (pod.get("metadata") or {}).get("deletionTimestamp")


def should_set_hostname(pod: Obj, service: Obj) -> bool:
    spec = pod.get("spec") or {}
    return bool(spec.get("hostname")) and spec.get("subdomain") == \
        service["metadata"]["name"] and \
        pod["metadata"].get("namespace") == service["metadata"].get("namespace")


def service_family(service: Obj) -> str:
    spec = service.get("spec") or {}
    families = spec.get("ipFamilies") or []
    if families:
        return str(families[0])
    ip = spec.get("clusterIP") or ""
    if ip and ip != "None" and ":" in ip:
        return "IPv6"
    return "IPv4"


def pod_ip_for_family(pod: Obj, family: str) -> str | None:
    status = pod.get("status") or {}
    ips = [p.get("ip") for p in status.get("podIPs") or [] if isinstance(p, dict)]
    if not ips and status.get("podIP"):
        ips = [status["podIP"]]
    want = 6 if family == "IPv6" else 4
    for ip in ips:
        if _ip_version(str(ip)) == want:
            return str(ip)
    return None


@functools.lru_cache(maxsize=65536)
def _ip_version(ip: str) -> int | None:
    # Cached: a pod's IP is parsed again for every Service selecting it and every change.
    try:
        return ipaddress.ip_address(ip).version
    except ValueError:
        return None


def find_port(pod: Obj, service_port: Obj) -> int | None:
    """FindPort: a numeric targetPort as is; a named one is the container port of that
    name and protocol (regular containers, then restartable init containers)."""
    target = service_port.get("targetPort", service_port.get("port"))
    if isinstance(target, int) and not isinstance(target, bool):
        return target
    if not isinstance(target, str):
        return None
    proto = service_port.get("protocol") or "TCP"
    spec = pod.get("spec") or {}
    containers = list(spec.get("containers") or [])
    containers += [c for c in spec.get("initContainers") or []
                   if c.get("restartPolicy") == "Always"]
    for c in containers:
        for p in c.get("ports") or []:
            if p.get("name") == target and (p.get("protocol") or "TCP") == proto:
                n = p.get("containerPort")
                return int(n) if isinstance(n, int) else None
    return None


def target_ref(pod: Obj) -> Obj:
    meta = pod["metadata"]
    return {"kind": "Pod", "namespace": meta.get("namespace", ""), "name": meta["name"],
            "uid": meta.get("uid", "")}


def format_time(t: datetime) -> str:
    """Go's RFC3339Nano in UTC (fraction without trailing zeros)."""
    t = t.astimezone(timezone.utc)
    text = t.strftime("%Y-%m-%dT%H:%M:%S")
    if t.microsecond:
        text += "." + f"{t.microsecond:06d}".rstrip("0")
    return text + "Z"


def pod_change_time(pod: Obj) -> datetime | None:
    """The pod's contribution to the trigger time: its readiness transition (or its
    creation)."""
    ready = next((c for c in (pod.get("status") or {}).get("conditions") or []
                  if c.get("type") == "Ready"), None)
    return parse_time((ready or {}).get("lastTransitionTime") or
                      (pod.get("metadata") or {}).get("creationTimestamp"))


def latest_change(service: Obj, pod_times: Iterable[datetime | None]) -> str | None:
    """trigger_time from the pods' pod_change_time values."""
    latest = parse_time((service.get("metadata") or {}).get("creationTimestamp"))
    for t in pod_times:
        if t is not None and (latest is None or t > latest):
            latest = t
    return format_time(latest) if latest is not None else None


def trigger_time(service: Obj, pods: Iterable[Obj]) -> str | None:
    """When the last change the Endpoints reflects happened: the latest of the Service's
    creation and each selected pod's readiness transition (or creation). Upstream keeps a
    tracker of unprocessed changes; the latest relevant change is what it reports in
    steady state, and it is stable across resyncs."""
    return latest_change(service, (pod_change_time(p) for p in pods))


class PodMemo(Generic[T]):
    """Per-Service values derived from (Service, pod[, a dependency such as its Node]).

    Informer objects are replaced, never mutated, on every change, so a value stays
    valid while the very same objects are in the cache: a readiness flip of one pod in
    a 1,000-pod Service recomputes one value, not 1,000. Entries hold the objects they
    were computed from (so an id() cannot be reused while cached) and are updated in
    place: rebuilding 1,000 entries per call would feed the cyclic GC's old generation
    and make its (long) full collections more frequent. A changed Service object
    starts afresh; entries of pods no longer passed are dropped."""

    def __init__(self) -> None:
        self._by_service: dict[str, tuple[Obj, dict[int, tuple[Obj, Any, T]]]] = {}

    def values(self, key: str, service: Obj, pods: list[Obj],
               compute: Callable[[Obj, Obj, Any], T],
               dependency: Callable[[Obj], Any] | None = None) -> list[T]:
        held = self._by_service.get(key)
        if held is None or held[0] is not service:
            held = (service, {})
            self._by_service[key] = held
        entries = held[1]
        out: list[T] = []
        for pod in pods:
            dep = dependency(pod) if dependency is not None else None
            hit = entries.get(id(pod))
            if hit is not None and hit[0] is pod and hit[1] is dep:
                out.append(hit[2])
                continue
            value = compute(service, pod, dep)
            entries[id(pod)] = (pod, dep, value)
            out.append(value)
        if len(entries) > len(pods):
            # Pods that left (or whose object was replaced by a newer one).
            live = {id(p) for p in pods}
            for gone in [k for k in entries if k not in live]:
                del entries[gone]
        return out

    def forget(self, key: str) -> None:
        self._by_service.pop(key, None)


# ---- Endpoints subsets ----------------------------------------------------------------

def _addr_key(addr: Obj) -> tuple[str, str]:
    return (addr["ip"], (addr.get("targetRef") or {}).get("uid", ""))


def _port_key(port: Obj | None) -> tuple[Any, ...]:
    if port is None:
        return ("", -1, "", "")
    return (port.get("name", ""), port["port"], port.get("protocol", ""),
            port.get("appProtocol", ""))


# One pod's place in a Service's Endpoints: (address key, address, ready, the resolved
# ports it offers; None stands for "no ports" of a headless Service without ports).
AddressEntry = tuple[tuple[str, str], Obj, bool, tuple[Obj | None, ...]]


def address_entry(service: Obj, pod: Obj) -> AddressEntry | None:
    """What `pod` contributes to `service`'s Endpoints (None: nothing)."""
    spec = service.get("spec") or {}
    publish = bool(spec.get("publishNotReadyAddresses"))
    if not should_pod_be_in_endpoints(pod, publish):
        return None
    ip = pod_ip_for_family(pod, service_family(service))
    if ip is None:
        return None
    addr: Obj = {"ip": ip}
    if should_set_hostname(pod, service):
        addr["hostname"] = pod["spec"]["hostname"]
    node = (pod.get("spec") or {}).get("nodeName")
    if node:
        addr["nodeName"] = node
    addr["targetRef"] = target_ref(pod)
    ready = publish or is_pod_ready(pod)
    pod_ports: list[Obj | None] = []
    if not spec.get("ports"):
        if spec.get("clusterIP") == "None":
            pod_ports.append(None)
    else:
        for sp in spec["ports"]:
            num = find_port(pod, sp)
            if num is None:
                continue
            found: Obj = {"name": sp["name"]} if sp.get("name") else {}
            found.update(port=num, protocol=sp.get("protocol") or "TCP")
            if sp.get("appProtocol") is not None:
                found["appProtocol"] = sp["appProtocol"]
            pod_ports.append(found)
    return _addr_key(addr), addr, ready, tuple(pod_ports)


def build_subsets(service: Obj, pods: Iterable[Obj]) -> list[Obj]:
    """The repacked subsets (RepackSubsets): every port maps to the set of addresses
    offering it, ports with the same address set share a subset. Addresses sort by
    (ip, uid) as upstream; ports and subsets by value (upstream sorts those by a hash,
    i.e. in no order a reader can rely on)."""
    return assemble_subsets(address_entry(service, p) for p in pods)


def assemble_subsets(entries: Iterable[AddressEntry | None]) -> list[Obj]:
    """build_subsets from the pods' address entries (shared dicts: callers copy before
    changing them; the write path does)."""
    all_addrs: dict[tuple[str, str], Obj] = {}
    by_port: dict[tuple[Any, ...], dict[tuple[str, str], bool]] = {}
    ports: dict[tuple[Any, ...], Obj | None] = {}
    for entry in entries:
        if entry is None:
            continue
        key, addr, ready, pod_ports = entry
        all_addrs.setdefault(key, addr)
        for epp in pod_ports:
            pk = _port_key(epp)
            ports[pk] = epp
            seen = by_port.setdefault(pk, {})
            if not seen.get(key, False):
                seen[key] = ready
    # Ports offering the same (address, ready) set share a subset; with one port (the
    # common case) there is nothing to group, so the 1,000-member keys are not built.
    groups: dict[Any, tuple[dict[tuple[str, str], bool], list[tuple[Any, ...]]]] = {}
    for pk, addr_set in by_port.items():
        sig = frozenset(addr_set.items()) if len(by_port) > 1 else None
        groups.setdefault(sig, (addr_set, []))[1].append(pk)
    subsets: list[Obj] = []
    for addr_set, pks in groups.values():
        subset: Obj = {}
        ready_addrs = sorted(k for k, r in addr_set.items() if r)
        not_ready = sorted(k for k, r in addr_set.items() if not r)
        if ready_addrs:
            subset["addresses"] = [all_addrs[k] for k in ready_addrs]
        if not_ready:
            subset["notReadyAddresses"] = [all_addrs[k] for k in not_ready]
        real = sorted(pk for pk in pks if ports[pk] is not None)
        if real:
            subset["ports"] = [ports[pk] for pk in real]
        subsets.append(subset)
    if len(subsets) > 1:
        subsets.sort(key=lambda s: ([_addr_key(a) for a in s.get("addresses", [])],
                                    [_addr_key(a) for a in s.get("notReadyAddresses", [])],
                                    [_port_key(p) for p in s.get("ports", [])]))
    return subsets


def count_addresses(subsets: list[Obj]) -> int:
    return sum(len(s.get("addresses") or []) + len(s.get("notReadyAddresses") or [])
               for s in subsets)


def truncate_subsets(subsets: list[Obj], capacity: int = MAX_CAPACITY) -> bool:
    """truncateEndpoints: keep at most `capacity` addresses, ready ones first, each subset
    keeping its proportional share (rounded up). True when something was cut."""
    total_ready = sum(len(s.get("addresses") or []) for s in subsets)
    total_not = sum(len(s.get("notReadyAddresses") or []) for s in subsets)
    if total_ready + total_not <= capacity:
        return False
    truncate_ready = total_ready > capacity
    limit = capacity if truncate_ready else capacity - total_ready
    num_total = total_ready if truncate_ready else total_not
    can_add = limit
    for s in subsets:
        field = "addresses" if truncate_ready else "notReadyAddresses"
        have = s.get(field) or []
        share = -(-len(have) * limit // num_total) if num_total else 0
        share = min(share, can_add)
        if have:
            s[field] = have[:share]
            if not s[field]:
                del s[field]
        if truncate_ready:
            s.pop("notReadyAddresses", None)
        can_add -= len(s.get(field) or [])
    subsets[:] = [s for s in subsets if s.get("addresses") or s.get("notReadyAddresses")]
    return True


def _without(labels: dict[str, str] | None, key: str) -> dict[str, str]:
    return {k: v for k, v in (labels or {}).items() if k != key}


# ---- the controller -----------------------------------------------------------------------

def _pod_facts(service: Obj, pod: Obj, _: Any) -> tuple[datetime | None, AddressEntry | None]:
    return pod_change_time(pod), address_entry(service, pod)


class EndpointsController(Controller):
    def __init__(self, ctx: ControllerContext, *, workers: int = 4) -> None:
        super().__init__("endpoints", workers=workers)
        self.ctx = ctx
        self.services = self.watch(ctx.factory.informer(resolve("services")))
        self.pods = self.watch(ctx.factory.informer(resolve("pods")), keys_for=self.pod_keys)
        self.endpoints = ctx.factory.informer(resolve("endpoints"))
        ensure_index(self.services, "namespace", index_by_namespace)
        ensure_index(self.pods, "namespace", index_by_namespace)
        # Endpoints events matter only when one is deleted (recreate it) and, once at
        # start, to find leftovers whose Service is gone (checkLeftoverEndpoints). A
        # user's Endpoints created before its Service must survive, so adds after the
        # initial list are ignored.
        self.endpoints.add_handler(self._on_endpoints_add, None, self._on_endpoints_delete)
        self.informers.append(self.endpoints)
        self._memo: PodMemo[tuple[datetime | None, AddressEntry | None]] = PodMemo()

    def _on_endpoints_add(self, obj: Obj) -> None:
        if not self.endpoints.has_synced and \
                "control-plane.alpha.kubernetes.io/leader" not in \
                ((obj.get("metadata") or {}).get("annotations") or {}):
            self.enqueue(key_of(obj))

    def _on_endpoints_delete(self, obj: Obj) -> None:
        self.enqueue(key_of(obj))

    def pod_keys(self, pod: Obj) -> list[str]:
        ns = (pod.get("metadata") or {}).get("namespace") or ""
        return [key_of(svc) for svc in self.services.by_index("namespace", ns)
                if selects(selector_of(svc), pod)]

    def selected_pods(self, service: Obj) -> list[Obj]:
        selector = selector_of(service)
        ns = service["metadata"].get("namespace", "")
        return [p for p in self.pods.by_index("namespace", ns) if selects(selector, p)]

    async def reconcile(self, key: str) -> None:
        ns, name = split_key(key)
        service = self.services.get(key)
        if service is None:
            self._memo.forget(key)
            # The Service is gone: so is its Endpoints (user-written ones included, as
            # upstream does).
            if self.endpoints.get(key) is not None:
                await self.ctx.client.delete_if_exists("Endpoints", ns, name)
            return
        spec = service.get("spec") or {}
        if spec.get("type") == "ExternalName" or not selector_of(service):
            self._memo.forget(key)
            return
        facts = self._memo.values(key, service, self.selected_pods(service), _pod_facts)
        subsets = assemble_subsets(entry for _, entry in facts)
        current = self.endpoints.get(key)
        svc_labels = (service.get("metadata") or {}).get("labels") or {}
        if current is not None and (current.get("subsets") or []) == subsets and \
                _without((current.get("metadata") or {}).get("labels"), HEADLESS) == \
                svc_labels and self._capacity_ok(current):
            return
        # A shallow copy is enough: subsets are replaced, labels and annotations are
        # rebuilt as new dicts, and the write path copies the body it is given.
        desired: Obj = {**current, "metadata": dict(current.get("metadata") or {})} \
            if current is not None else {"apiVersion": "v1", "kind": "Endpoints",
                                         "metadata": {"name": name, "namespace": ns}}
        meta: Obj = desired["metadata"]
        labels = dict(svc_labels)
        if not is_service_ip_set(service):
            labels[HEADLESS] = ""
        if labels:
            meta["labels"] = labels
        else:
            meta.pop("labels", None)
        annotations = dict(meta.get("annotations") or {})
        stamp = latest_change(service, (t for t, _ in facts))
        if stamp:
            annotations[TRIGGER_TIME] = stamp
        else:
            annotations.pop(TRIGGER_TIME, None)
        if truncate_subsets(subsets):
            annotations[OVER_CAPACITY] = "truncated"
        else:
            annotations.pop(OVER_CAPACITY, None)
        if annotations:
            meta["annotations"] = annotations
        else:
            meta.pop("annotations", None)
        if subsets:
            desired["subsets"] = subsets
        else:
            desired.pop("subsets", None)
        await self._write(service, desired, create=current is None)

    @staticmethod
    def _capacity_ok(current: Obj) -> bool:
        subsets = current.get("subsets") or []
        if count_addresses(subsets) > MAX_CAPACITY:
            return False
        return OVER_CAPACITY not in ((current.get("metadata") or {}).get("annotations") or {})

    async def _write(self, service: Obj, desired: Obj, *, create: bool) -> None:
        meta = desired["metadata"]
        where = f"{meta['namespace']}/{meta['name']}"
        try:
            if create:
                await self.ctx.client.create("Endpoints", desired)
                log.info("created endpoints %s", where)
            else:
                await self.ctx.client.update("Endpoints", desired)
                log.debug("updated endpoints %s", where)
        except errors.Forbidden:
            if create:
                # The namespace is terminating: creates keep failing; drop the key.
                return
            raise
        except errors.Conflict:
            raise  # a stale cache: the retry reads the newer object quietly
        except errors.APIError as exc:
            if create:
                self.ctx.recorder.record(
                    desired, WARNING, "FailedToCreateEndpoint",
                    f"Failed to create endpoint for service {where}: {exc.message}",
                    component=COMPONENT)
            else:
                self.ctx.recorder.record(
                    desired, WARNING, "FailedToUpdateEndpoint",
                    f"Failed to update endpoint {where}: {exc.message}",
                    component=COMPONENT)
            raise

