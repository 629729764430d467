"""`netd proxy dump`: per node, what each service port forwards to, computed from
the Services and EndpointSlices the API serves (the proxy's own inputs)."""
from __future__ import annotations

import argparse
from typing import Any, TextIO

from netd.cli.http import Client


def cmd_proxy_dump(client: Client, args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from netd.proxy.dump import dump
    from netd.proxy.model import build_snapshot

    services = client.get("/api/v1/services").get("items") or []
    slices = client.get("/apis/discovery.k8s.io/v1/endpointslices").get("items") or []
    nodes = [n["metadata"]["name"] for n in client.get("/api/v1/nodes").get("items") or []]
    dns_ip = ""
    for svc in services:
        meta = svc.get("metadata") or {}
        if (meta.get("namespace"), meta.get("name")) == ("kube-system", "kube-dns"):
            dns_ip = (svc.get("spec") or {}).get("clusterIP") or ""
    if args.namespace:
        services = [s for s in services if s["metadata"].get("namespace") == args.namespace]
    if args.node:
        nodes = [n for n in nodes if n in args.node]
    out.write(dump(build_snapshot(services, slices, dns_ip, 0), sorted(nodes)))
    return 0


def add_parsers(sub: Any) -> None:
    from netd.cli.commands import _bind, _common
    proxy = sub.add_parser("proxy", help="service proxy tools")
    psub = proxy.add_subparsers(dest="proxy_command", required=True, metavar="COMMAND")
    p = psub.add_parser("dump", help="print what each service forwards to, per node")
    _common(p)
    p.add_argument("--node", action="append", default=[], help="only this node (repeatable)")
    p.set_defaults(func=_bind(cmd_proxy_dump))
