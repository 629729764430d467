"""The pure core of the userspace proxy: what each node listens on, and which endpoint
a new connection goes to.

Behaviour follows the old kube-proxy userspace mode (pkg/proxy/userspace/roundrobin.go):
- round robin over the usable endpoints of a service port; a changed endpoint set is
  shuffled and the position reset, so every node does not start on the same endpoint;
- ClientIP affinity keyed on the client's address with a *sliding* timeout (each hit
  refreshes it), dropped for endpoints that vanish, bypassed (`reset=True`) after a
  failed dial to the remembered endpoint;
- no usable endpoint -> no listener at all, so the kernel refuses (TCP RST at SYN, ICMP
  port unreachable for UDP) at once, as the nftables mode's reject does.
Usable endpoints follow today's kube-proxy rather than the 2017 userspace code (see
netd.proxy.model: ready ones, else serving+terminating; trafficPolicy Local first
restricts to this node), so both proxy modes forward to the same set.

Nothing here does I/O or reads a clock: `now` is passed in, the shuffle is injectable.
"""
from __future__ import annotations

import ipaddress
import logging
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from netd.proxy.model import ServicePort, cluster_endpoints, local_endpoints

log = logging.getLogger("netd.proxy.userspace")

Addr = tuple[str, int]
Shuffle = Callable[[list[Addr]], None]
# Expired affinity entries are swept once the map holds this many clients.
AFFINITY_SWEEP_AT = 4096


@dataclass(frozen=True)
class BalancerKey:
    service: str          # ServicePort.key: "ns/name:port"
    local_only: bool      # endpoints restricted to this node (trafficPolicy Local)


@dataclass(frozen=True)
class ListenerKey:
    protocol: str         # "TCP" | "UDP"
    ip: str               # "0.0.0.0" for NodePorts
    port: int

    def __str__(self) -> str:
        return f"{self.ip}:{self.port}/{self.protocol}"


@dataclass(frozen=True)
class BalancerSpec:
    endpoints: tuple[Addr, ...]
    affinity_timeout: int


@dataclass(frozen=True)
class NodePlan:
    """Everything one node's proxy should be doing, for one snapshot."""
    addresses: frozenset[str]                  # on the node's svc0 link
    listeners: dict[ListenerKey, BalancerKey]  # only where some endpoint is usable
    balancers: dict[BalancerKey, BalancerSpec]


def usable_endpoints(sp: ServicePort, node: str, local_only: bool) -> tuple[Addr, ...]:
    """The addresses a listener on `node` may send to (selection shared with the
    nftables mode via netd.proxy.model), deduplicated and sorted."""
    eps = local_endpoints(sp, node) if local_only else cluster_endpoints(sp)
    return tuple(sorted({(e.ip, e.port) for e in eps}))


def _is_ipv4(value: str) -> bool:
    try:
        ipaddress.IPv4Address(value)
    except ValueError:
        return False
    return True


def plan_node(ports: Sequence[ServicePort], node: str, dns_ip: str) -> NodePlan:
    addresses: set[str] = set()
    listeners: dict[ListenerKey, BalancerKey] = {}
    balancers: dict[BalancerKey, BalancerSpec] = {}
    # Sorted so a conflict (two services claiming one externalIP:port) resolves the same
    # way on every sync and every node.
    for sp in sorted(ports, key=lambda p: (p.namespace, p.name, p.port_name, p.protocol)):
        if sp.protocol not in ("TCP", "UDP"):
            continue        # SCTP: no userspace proxy upstream either
        key = sp.key
        roles: list[tuple[ListenerKey, bool]] = []
        for ip in sp.cluster_ips:
            # The DNS ClusterIP is answered by netd's node-local DNS on lo: leave it be.
            if ip == dns_ip or not _is_ipv4(ip):
                continue
            addresses.add(ip)
            roles.append((ListenerKey(sp.protocol, ip, sp.port), sp.internal_local))
        for ip in sp.external_ips:
            if ip == dns_ip or not _is_ipv4(ip):
                continue
            addresses.add(ip)
            roles.append((ListenerKey(sp.protocol, ip, sp.port), sp.external_local))
        if sp.node_port:
            roles.append((ListenerKey(sp.protocol, "0.0.0.0", sp.node_port), sp.external_local))
        for lkey, local in roles:
            bkey = BalancerKey(key, local)
            if bkey not in balancers:
                balancers[bkey] = BalancerSpec(usable_endpoints(sp, node, local),
                                               max(0, sp.affinity_timeout))
            if not balancers[bkey].endpoints:
                continue
            if lkey in listeners:
                if listeners[lkey] != bkey:
                    log.warning("%s claimed by %s and %s; keeping the first", lkey,
                                listeners[lkey].service, key)
                continue
            listeners[lkey] = bkey
    used = set(listeners.values())
    return NodePlan(frozenset(addresses), listeners,
                    {k: v for k, v in balancers.items() if k in used})


@dataclass
class _Affinity:
    endpoint: Addr
    last_used: float


@dataclass
class Balancer:
    """Round robin with optional ClientIP affinity for one service port on one node.

    Mutated only from the event loop thread (no locks); a sync builds new Balancers
    with `carry()` and swaps the node's whole table at once."""
    endpoints: tuple[Addr, ...]
    affinity_timeout: int = 0
    index: int = 0
    affinity: dict[str, _Affinity] = field(default_factory=dict)

    @classmethod
    def create(cls, spec: BalancerSpec, shuffle: Shuffle | None = None) -> Balancer:
        eps = list(spec.endpoints)
        (shuffle or random.shuffle)(eps)
        return cls(tuple(eps), spec.affinity_timeout)

    def carry(self, spec: BalancerSpec, shuffle: Shuffle | None = None) -> Balancer:
        """The successor of this balancer for a new spec: same order and position if the
        endpoint set is unchanged; affinity kept for endpoints that survive (and only
        while affinity stays on)."""
        if set(spec.endpoints) == set(self.endpoints):
            out = Balancer(self.endpoints, spec.affinity_timeout, self.index)
        else:
            out = Balancer.create(spec, shuffle)
        if spec.affinity_timeout > 0:
            alive = set(out.endpoints)
            out.affinity = {ip: a for ip, a in self.affinity.items() if a.endpoint in alive}
        return out

    def next(self, client_ip: str, now: float, reset: bool = False) -> Addr | None:
        """The endpoint for a new connection from client_ip; None when there is none.
        `reset` skips the remembered endpoint (a dial to it just failed)."""
        if not self.endpoints:
            return None
        ttl = self.affinity_timeout
        if ttl > 0 and not reset:
            hit = self.affinity.get(client_ip)
            # kube-proxy compares whole seconds since last use against the timeout.
            if hit is not None and int(now - hit.last_used) < ttl:
                hit.last_used = now
                return hit.endpoint
        ep = self.endpoints[self.index % len(self.endpoints)]
        self.index = (self.index + 1) % len(self.endpoints)
        if ttl > 0:
            if len(self.affinity) >= AFFINITY_SWEEP_AT:
                self.sweep(now)
            self.affinity[client_ip] = _Affinity(ep, now)
        return ep

    def sweep(self, now: float) -> None:
        ttl = self.affinity_timeout
        self.affinity = {ip: a for ip, a in self.affinity.items()
                         if int(now - a.last_used) < ttl}


def carry_balancers(old: dict[BalancerKey, Balancer], specs: dict[BalancerKey, BalancerSpec],
                    shuffle: Shuffle | None = None) -> dict[BalancerKey, Balancer]:
    out: dict[BalancerKey, Balancer] = {}
    for key, spec in specs.items():
        prev = old.get(key)
        out[key] = prev.carry(spec, shuffle) if prev is not None else Balancer.create(spec, shuffle)
    return out
