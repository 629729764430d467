"""`netd proxy dump` text (pure part)."""
from __future__ import annotations

from netd.proxy.dump import dump
from netd.proxy.model import Endpoint, ServicePort, Snapshot

A = Endpoint("10.244.0.2", 8080, True, True, False, "node-1")
B = Endpoint("10.244.1.2", 8080, True, True, False, "node-2")


def sp(**kw: object) -> ServicePort:
    base = dict(namespace="default", name="web", port_name="http", protocol="TCP",
                cluster_ips=("10.96.0.20",), port=80, node_port=0, external_ips=(),
                affinity_timeout=0, external_local=False, internal_local=False,
                endpoints=(A, B))
    base.update(kw)
    return ServicePort(**base)  # type: ignore[arg-type]


def test_dump_per_node() -> None:
    snap = Snapshot((sp(), sp(name="loc", node_port=30080, external_local=True,
                              endpoints=(B,), affinity_timeout=30),
                     sp(name="none", endpoints=())), 1)
    assert dump(snap, ["node-1", "node-2"]) == (
        "node node-1:\n"
        "  default/web:http TCP 10.96.0.20:80 -> 10.244.0.2:8080@node-1, 10.244.1.2:8080@node-2\n"
        "  default/loc:http TCP 10.96.0.20:80 -> 10.244.1.2:8080@node-2  [affinity ClientIP 30s]\n"
        "  default/loc:http TCP nodePort 30080 (external, policy Local) -> DROP (no local endpoint)\n"
        "  default/none:http TCP 10.96.0.20:80 -> REJECT (no endpoints)\n"
        "node node-2:\n"
        "  default/web:http TCP 10.96.0.20:80 -> 10.244.0.2:8080@node-1, 10.244.1.2:8080@node-2\n"
        "  default/loc:http TCP 10.96.0.20:80 -> 10.244.1.2:8080@node-2  [affinity ClientIP 30s]\n"
        "  default/loc:http TCP nodePort 30080 (external, policy Local) -> 10.244.1.2:8080@node-2\n"
        "  default/none:http TCP 10.96.0.20:80 -> REJECT (no endpoints)\n")
    assert dump(Snapshot((), 0), ["n"]) == "node n:\n  (no services)\n"
