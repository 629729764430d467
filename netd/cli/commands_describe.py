"""`netd describe`: fetch an object and what kubectl's describer shows beside it
(events, pods, endpoint slices, replica sets, the node lease), then format it with
netd.cli.describe_kinds."""
from __future__ import annotations

import argparse
from datetime import datetime, timezone
from typing import Any, TextIO

from netd.api.kinds import REGISTRY, ResourceType
from netd.api.printers.common import selector_string
from netd.cli.commands_kinds import collection_path, object_path, parse_args
from netd.cli.describe import Related
from netd.cli.describe_kinds import describe
from netd.cli.http import ApiError, Client

Obj = dict[str, Any]


def _rt(kind: str) -> ResourceType:
    rt = REGISTRY.resolve(kind)
    assert rt is not None, kind
    return rt


def _list(client: Client, rt: ResourceType, namespace: str | None, **query: str) -> list[Obj]:
    doc = client.get(collection_path(rt, namespace), query)
    return list((doc or {}).get("items") or [])


def _events(client: Client, obj: Obj, kind: str, uid: str | None = None) -> list[Obj] | None:
    """searchEvents: events whose involvedObject is this object (kind, name,
    namespace, uid; sorted keys as fields.Set.AsSelector writes them)."""
    meta = obj.get("metadata") or {}
    ns = meta.get("namespace") or ""
    terms = {"involvedObject.kind": kind, "involvedObject.name": meta.get("name", ""),
             "involvedObject.namespace": ns,
             "involvedObject.uid": uid if uid is not None else meta.get("uid", "")}
    selector = ",".join(f"{k}={v}" for k, v in sorted(terms.items()))
    try:
        return _list(client, _rt("events"), ns or None, fieldSelector=selector)
    except ApiError:
        return None


def related(client: Client, kind: str, obj: Obj) -> Related:
    meta = obj.get("metadata") or {}
    ns, name = meta.get("namespace") or "", meta.get("name", "")
    rel = Related(events=_events(client, obj, kind))
    spec = obj.get("spec") or {}
    try:
        if kind == "Service":
            rel.endpoint_slices = _list(client, _rt("endpointslices.discovery.k8s.io"), ns,
                                        labelSelector=f"kubernetes.io/service-name={name}")
        elif kind == "Deployment":
            rel.replica_sets = _list(client, _rt("replicasets"), ns,
                                     labelSelector=selector_string(spec.get("selector")))
        elif kind in ("ReplicaSet", "StatefulSet"):
            rel.pods = _list(client, _rt("pods"), ns,
                             labelSelector=selector_string(spec.get("selector")))
        elif kind == "Node":
            rel.pods = _list(client, _rt("pods"), None, fieldSelector=(
                f"spec.nodeName={name},status.phase!=Succeeded,status.phase!=Failed"))
            # Node events come with the node's uid (controllers) or its name (kubelet).
            by_name = _events(client, obj, kind, uid=name)
            if rel.events is not None and by_name:
                rel.events += by_name
            try:
                rel.lease = client.get(object_path(_rt("leases.coordination.k8s.io"),
                                                   "kube-node-lease", name))
            except ApiError as err:
                rel.lease_error = err.message
    except (ApiError, ValueError):
        pass  # kubectl describes the object even when its neighbours can't be read
    return rel


def _matching(client: Client, rt: ResourceType, ns: str, name: str,
              selector: str) -> list[Obj]:
    try:
        return [client.get(object_path(rt, ns, name))]
    except ApiError as err:
        if err.code != 404:
            raise
        # kubectl describe falls back to every object whose name starts with NAME.
        found = [o for o in _list(client, rt, ns if rt.namespaced else None,
                                  labelSelector=selector)
                 if str((o.get("metadata") or {}).get("name", "")).startswith(name)]
        if not found:
            raise
        return found


def cmd_describe(client: Client, namespace: str, all_namespaces: bool,
                 args: argparse.Namespace, out: TextIO, err: TextIO,
                 now: datetime | None = None) -> int:
    now = now or datetime.now(timezone.utc)
    failed = False
    texts: list[str] = []
    for sel in parse_args(args.args):
        rt = sel.rt
        ns = "" if not rt.namespaced else namespace
        objects: list[Obj] = []
        if sel.names:
            for name in sel.names:
                try:
                    objects += _matching(client, rt, ns, name, args.selector or "")
                except ApiError as e:
                    err.write(e.kubectl_text() + "\n")
                    failed = True
        else:
            where = None if (all_namespaces or not rt.namespaced) else ns
            objects = _list(client, rt, where, labelSelector=args.selector or "")
            if not objects:
                err.write("No resources found" + ("" if where is None else
                                                  f" in {where} namespace.") + "\n")
        for obj in objects:
            texts.append(describe(rt.kind, obj, related(client, rt.kind, obj), now))
    # kubectl separates described objects with a blank line pair.
    out.write("\n\n".join(texts))
    return 1 if failed else 0
