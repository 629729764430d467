"""The proxy's view of the cluster: Services and EndpointSlices folded into one
immutable snapshot of service ports and their endpoints (kube-proxy's ServicePortMap
+ EndpointsMap, pkg/proxy/serviceport.go, endpointslicecache.go). Pure: no I/O.

Both proxy modes (nftables, userspace) program from a Snapshot, so "what a service
forwards to" is decided here once:
- A Service is proxied when it has an IPv4 ClusterIP. Headless (clusterIP None),
  ExternalName and the DNS Service (answered locally on every node) are skipped.
- Endpoints come from the EndpointSlices labelled kubernetes.io/service-name, matched
  to a service port by (port name, protocol); the slice carries the resolved number,
  so a named targetPort is resolved per endpoint by the EndpointSlice controller.
- Endpoint conditions: ready unset means ready, serving unset means "= ready",
  terminating unset means false (discovery.k8s.io/v1 semantics).
- An address listed in two slices (during a controller's slice reshuffle) counts once.
"""
from __future__ import annotations

import ipaddress
import itertools
from dataclasses import dataclass
from typing import Any, Iterable

Obj = dict[str, Any]

SERVICE_NAME_LABEL = "kubernetes.io/service-name"
DEFAULT_AFFINITY_TIMEOUT = 10800   # sessionAffinityConfig.clientIP.timeoutSeconds default


@dataclass(frozen=True)
class Endpoint:
    ip: str
    port: int
    ready: bool
    serving: bool
    terminating: bool
    node: str

    @property
    def addr(self) -> str:
        return f"{self.ip}:{self.port}"


@dataclass(frozen=True)
class ServicePort:
    namespace: str
    name: str
    port_name: str
    protocol: str              # TCP, UDP or SCTP
    cluster_ips: tuple[str, ...]
    port: int
    node_port: int             # 0 = none
    external_ips: tuple[str, ...]
    affinity_timeout: int      # 0 = no ClientIP affinity
    external_local: bool       # externalTrafficPolicy Local (NodePort/LoadBalancer only)
    internal_local: bool       # internalTrafficPolicy Local
    endpoints: tuple[Endpoint, ...]

    @property
    def key(self) -> str:
        """kube-proxy's ServicePortName.String(): ns/name:port (":port" even when empty
        keeps the names of single- and multi-port services distinct)."""
        return f"{self.namespace}/{self.name}:{self.port_name}"

    @property
    def service(self) -> str:
        return f"{self.namespace}/{self.name}"


SvcKey = tuple[str, str]              # (namespace, name) of a Service
# One step of a tracker's change log: (generation before, generation after, the
# Services whose ports may differ between the two).
LogEntry = tuple[int, int, frozenset[SvcKey]]


class Snapshot:
    """Every proxied service port at one generation, ordered by (namespace, name, port
    name, protocol). Immutable.

    Made either from the ports (tests, benches, `netd proxy dump`) or by the tracker
    from its per-Service ports (`of_services`), in which case the flat `ports` tuple is
    only built when something asks for it (a full sync, UDP conntrack, userspace mode):
    a partial nftables sync reads only the Services that changed (`changed_since`,
    `ports_of`), so an endpoint change costs nothing per Service that did not change
    (at 10,000 Services flattening them took milliseconds per event)."""

    __slots__ = ("_ports", "generation", "_services", "_order", "_log")

    def __init__(self, ports: tuple[ServicePort, ...] = (), generation: int = 0) -> None:
        self._ports: tuple[ServicePort, ...] | None = tuple(ports)
        self.generation = generation
        self._services: dict[SvcKey, tuple[ServicePort, ...]] | None = None
        self._order: list[SvcKey] | None = None
        self._log: tuple[LogEntry, ...] = ()

    @classmethod
    def of_services(cls, services: dict[SvcKey, tuple[ServicePort, ...]],
                    order: list[SvcKey], generation: int,
                    log: tuple[LogEntry, ...] = ()) -> Snapshot:
        """`services` and `order` (its keys, sorted) become the snapshot's own: the
        caller must not change them afterwards. `log` ends at `generation`."""
        snap = cls((), generation)
        snap._ports = None
        snap._services, snap._order, snap._log = services, order, log
        return snap

    @property
    def ports(self) -> tuple[ServicePort, ...]:
        if self._ports is None:
            assert self._services is not None and self._order is not None
            services = self._services
            self._ports = tuple(itertools.chain.from_iterable(
                [services[k] for k in self._order]))
        return self._ports

    def ports_of(self, service: SvcKey) -> tuple[ServicePort, ...]:
        """The ports of one Service (namespace, name), in snapshot order."""
        if self._services is None:
            grouped: dict[SvcKey, list[ServicePort]] = {}
            for sp in self.ports:
                grouped.setdefault((sp.namespace, sp.name), []).append(sp)
            self._services = {k: tuple(v) for k, v in grouped.items()}
        return self._services.get(service, ())

    def changed_since(self, generation: int) -> frozenset[SvcKey] | None:
        """The Services whose ports may differ from the snapshot at `generation` (made
        by the same tracker); None when this snapshot cannot tell (no log, or the log
        does not reach back that far): compare everything then."""
        if generation == self.generation:
            return frozenset()
        if not self._log or self._log[-1][1] != self.generation:
            return None
        out: set[SvcKey] = set()
        for before, after, keys in reversed(self._log):
            if after <= generation:
                break
            out.update(keys)
            if before == generation:
                return frozenset(out)
            if before < generation:
                break
        return None

    def by_key(self) -> dict[str, ServicePort]:
        return {p.key: p for p in self.ports}

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Snapshot):
            return NotImplemented
        return self.generation == other.generation and self.ports == other.ports

    def __hash__(self) -> int:
        return hash((self.generation, self.ports))

    def __repr__(self) -> str:
        return f"Snapshot(generation={self.generation}, ports={len(self.ports)})"


# ---- endpoint selection (shared by both modes and `netd proxy dump`) --------------------

def usable(endpoints: Iterable[Endpoint]) -> tuple[Endpoint, ...]:
    """kube-proxy's CategorizeEndpoints: ready endpoints; when none is ready, the ones
    still serving while terminating (KEP-1669 graceful termination fallback)."""
    eps = tuple(endpoints)
    ready = tuple(e for e in eps if e.ready)
    if ready:
        return ready
    return tuple(e for e in eps if e.serving and e.terminating)


def cluster_endpoints(sp: ServicePort) -> tuple[Endpoint, ...]:
    return usable(sp.endpoints)


def local_endpoints(sp: ServicePort, node: str) -> tuple[Endpoint, ...]:
    return usable(e for e in sp.endpoints if e.node == node)


def internal_endpoints(sp: ServicePort, node: str) -> tuple[Endpoint, ...]:
    """What ClusterIP traffic originating on `node` may reach."""
    return local_endpoints(sp, node) if sp.internal_local else cluster_endpoints(sp)


def external_endpoints(sp: ServicePort, node: str) -> tuple[Endpoint, ...]:
    """What NodePort / externalIP traffic arriving at `node` from outside may reach."""
    return local_endpoints(sp, node) if sp.external_local else cluster_endpoints(sp)


# ---- building ---------------------------------------------------------------------------

def _ipv4(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    try:
        return str(ipaddress.IPv4Address(value))
    except ValueError:
        return None


def _cluster_ips(spec: Obj) -> tuple[str, ...]:
    ips = spec.get("clusterIPs") or [spec.get("clusterIP")]
    return tuple(ip for ip in (_ipv4(v) for v in ips) if ip)


def _affinity(spec: Obj) -> int:
    if spec.get("sessionAffinity") != "ClientIP":
        return 0
    cfg = ((spec.get("sessionAffinityConfig") or {}).get("clientIP") or {})
    timeout = cfg.get("timeoutSeconds")
    if isinstance(timeout, int) and not isinstance(timeout, bool) and timeout > 0:
        return timeout
    return DEFAULT_AFFINITY_TIMEOUT


def _slice_endpoints(slices: list[Obj], port_name: str,
                     protocol: str) -> tuple[Endpoint, ...]:
    found: dict[tuple[str, int], Endpoint] = {}
    for sl in slices:
        if sl.get("addressType", "IPv4") != "IPv4":
            continue
        number = None
        for p in sl.get("ports") or []:
            if (p.get("name") or "") == port_name and (p.get("protocol") or "TCP") == protocol:
                number = p.get("port")
                break
        if not isinstance(number, int) or isinstance(number, bool) or not 0 < number < 65536:
            continue
        for ep in sl.get("endpoints") or []:
            addrs = ep.get("addresses") or []
            ip = _ipv4(addrs[0]) if addrs else None
            if ip is None or (ip, number) in found:
                continue
            cond = ep.get("conditions") or {}
            ready = cond.get("ready") is not False
            serving = cond.get("serving")
            serving = ready if serving is None else bool(serving)
            found[(ip, number)] = Endpoint(ip, number, ready, serving,
                                           bool(cond.get("terminating")),
                                           ep.get("nodeName") or "")
    return tuple(found[k] for k in sorted(found, key=lambda k: (
        ipaddress.IPv4Address(k[0]), k[1])))


def service_ports(svc: Obj, slices: list[Obj], dns_ip: str) -> list[ServicePort]:
    """The proxied ports of one Service (empty when it is not proxied)."""
    meta = svc.get("metadata") or {}
    spec = svc.get("spec") or {}
    typ = spec.get("type") or "ClusterIP"
    if typ == "ExternalName":
        return []
    cluster_ips = _cluster_ips(spec)
    if not cluster_ips or dns_ip in cluster_ips:
        return []
    node_ports_on = typ in ("NodePort", "LoadBalancer")
    external_ips = tuple(ip for ip in (_ipv4(v) for v in spec.get("externalIPs") or []) if ip)
    affinity = _affinity(spec)
    ext_local = node_ports_on and spec.get("externalTrafficPolicy") == "Local"
    int_local = spec.get("internalTrafficPolicy") == "Local"
    out = []
    for p in spec.get("ports") or []:
        port = p.get("port")
        if not isinstance(port, int) or isinstance(port, bool):
            continue
        protocol = p.get("protocol") or "TCP"
        port_name = p.get("name") or ""
        node_port = p.get("nodePort") if node_ports_on else 0
        out.append(ServicePort(
            namespace=meta.get("namespace") or "", name=meta.get("name") or "",
            port_name=port_name, protocol=protocol, cluster_ips=cluster_ips, port=port,
            node_port=node_port if isinstance(node_port, int) else 0,
            external_ips=external_ips, affinity_timeout=affinity,
            external_local=ext_local, internal_local=int_local,
            endpoints=_slice_endpoints(slices, port_name, protocol)))
    return out


def slices_by_service(slices: Iterable[Obj]) -> dict[tuple[str, str], list[Obj]]:
    out: dict[tuple[str, str], list[Obj]] = {}
    for sl in slices:
        meta = sl.get("metadata") or {}
        svc = (meta.get("labels") or {}).get(SERVICE_NAME_LABEL)
        if svc:
            out.setdefault((meta.get("namespace") or "", svc), []).append(sl)
    for group in out.values():
        # Deterministic endpoint order whatever order the informer lists slices in.
        group.sort(key=lambda s: (s.get("metadata") or {}).get("name") or "")
    return out


def build_snapshot(services: list[Obj], slices: list[Obj], dns_ip: str,
                   generation: int) -> Snapshot:
    grouped = slices_by_service(slices)
    ports: list[ServicePort] = []
    for svc in services:
        meta = svc.get("metadata") or {}
        key = (meta.get("namespace") or "", meta.get("name") or "")
        ports.extend(service_ports(svc, grouped.get(key, []), dns_ip))
    ports.sort(key=lambda p: (p.namespace, p.name, p.port_name, p.protocol))
    return Snapshot(tuple(ports), generation)
