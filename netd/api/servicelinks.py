"""Service environment variables for containers (kubelet's getServiceEnvVarMap and
pkg/kubelet/envvars FromServices), pure.

Which Services: those with a cluster IP (not headless, not ExternalName) in the pod's
namespace when enableServiceLinks is true, plus `default/kubernetes` always (kubelet
adds the "master services" even with enableServiceLinks false). A Service named
`kubernetes` in the pod's own namespace wins over the default one, as in kubelet.

Order: kubelet collects the variables in a map, so it promises none; here Services
are taken by name and each Service's variables in FromServices' order, so a pod's
environment is the same on every start.
"""
from __future__ import annotations

import ipaddress
from typing import Any

Obj = dict[str, Any]

MASTER_SERVICES = ("kubernetes",)


def env_name(name: str) -> str:
    """makeEnvVariableName: upper case, '-' → '_'."""
    return name.replace("-", "_").upper()


def _ip_set(service: Obj) -> bool:
    ip = (service.get("spec") or {}).get("clusterIP") or ""
    return ip not in ("", "None")


def _join_host_port(host: str, port: int) -> str:
    # net.JoinHostPort brackets IPv6 literals.
    try:
        if ipaddress.ip_address(host).version == 6:
            return f"[{host}]:{port}"
    except ValueError:
        pass
    return f"{host}:{port}"


def from_services(services: list[Obj]) -> list[Obj]:
    """envvars.FromServices over `services`, in the given order."""
    out: list[Obj] = []
    for svc in services:
        if not _ip_set(svc):
            continue
        spec = svc.get("spec") or {}
        ports = [p for p in spec.get("ports") or [] if isinstance(p, dict)]
        if not ports:
            continue  # validation requires ports for such a Service; be safe
        ip = spec["clusterIP"]
        prefix = env_name(svc["metadata"]["name"])
        out.append({"name": f"{prefix}_SERVICE_HOST", "value": ip})
        out.append({"name": f"{prefix}_SERVICE_PORT", "value": str(ports[0].get("port"))})
        for p in ports:
            if p.get("name"):
                out.append({"name": f"{prefix}_SERVICE_PORT_{env_name(p['name'])}",
                            "value": str(p.get("port"))})
        for i, p in enumerate(ports):
            proto = p.get("protocol") or "TCP"
            url = f"{proto.lower()}://{_join_host_port(ip, int(p.get('port') or 0))}"
            if i == 0:
                # Docker links special-case the first port.
                out.append({"name": f"{prefix}_PORT", "value": url})
            pp = f"{prefix}_PORT_{p.get('port')}_{proto.upper()}"
            out.extend([{"name": pp, "value": url},
                        {"name": f"{pp}_PROTO", "value": proto.lower()},
                        {"name": f"{pp}_PORT", "value": str(p.get("port"))},
                        {"name": f"{pp}_ADDR", "value": ip}])
    return out


def select_services(services: list[Obj], namespace: str,
                    enable_service_links: bool) -> list[Obj]:
    """The Services kubelet projects into a pod of `namespace`, sorted by name."""
    chosen: dict[str, Obj] = {}
    for svc in services:
        if not _ip_set(svc):
            continue
        meta = svc.get("metadata") or {}
        name = meta.get("name", "")
        ns = meta.get("namespace", "")
        if ns == "default" and name in MASTER_SERVICES:
            chosen.setdefault(name, svc)
        elif ns == namespace and enable_service_links:
            chosen[name] = svc
    return [chosen[n] for n in sorted(chosen)]


def service_env(services: list[Obj], namespace: str,
                enable_service_links: bool = True) -> list[Obj]:
    """The service link variables ([{"name", "value"}]) of a container in a pod of
    `namespace`, given every Service the node knows (any namespaces). The pod's own
    `env` entries are applied after these by the caller and win on a name clash."""
    return from_services(select_services(services, namespace, enable_service_links))
