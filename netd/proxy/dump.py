"""`netd proxy dump`: what each service port forwards to, per node. Pure.

It applies the same endpoint selection the renderers use (model.cluster_endpoints,
internal/external per traffic policy), so what it prints is what the node's rules do.
"""
from __future__ import annotations

from netd.proxy.model import (Endpoint, ServicePort, Snapshot, external_endpoints,
                              internal_endpoints)


def _targets(eps: tuple[Endpoint, ...]) -> str:
    if not eps:
        return "(none)"
    return ", ".join(f"{e.addr}@{e.node or '?'}" + ("" if e.ready else " (terminating)")
                     for e in eps)


def _port_lines(sp: ServicePort, node: str) -> list[str]:
    proto = sp.protocol
    internal = internal_endpoints(sp, node)
    lines = []
    extras = []
    if sp.affinity_timeout:
        extras.append(f"affinity ClientIP {sp.affinity_timeout}s")
    if sp.internal_local:
        extras.append("internalTrafficPolicy Local")
    suffix = f"  [{', '.join(extras)}]" if extras else ""
    if internal:
        verdict = _targets(internal)
    elif sp.endpoints and sp.internal_local:
        verdict = "DROP (no local endpoint)"
    else:
        verdict = "REJECT (no endpoints)"
    for ip in sp.cluster_ips:
        lines.append(f"  {sp.key} {proto} {ip}:{sp.port} -> {verdict}{suffix}")
    if sp.node_port or sp.external_ips:
        external = external_endpoints(sp, node)
        policy = "Local" if sp.external_local else "Cluster"
        if external:
            verdict = _targets(external)
        elif sp.external_local and sp.endpoints:
            verdict = "DROP (no local endpoint)"
        else:
            verdict = "REJECT (no endpoints)"
        where = ([f"nodePort {sp.node_port}"] if sp.node_port else []) + \
            [f"{ip}:{sp.port}" for ip in sp.external_ips]
        lines.append(f"  {sp.key} {proto} {' '.join(where)} (external, policy {policy}) "
                     f"-> {verdict}")
    return lines


def dump(snapshot: Snapshot, nodes: list[str]) -> str:
    out = []
    for node in nodes:
        out.append(f"node {node}:")
        lines = [line for sp in snapshot.ports for line in _port_lines(sp, node)]
        out += lines or ["  (no services)"]
    return "\n".join(out) + "\n"
