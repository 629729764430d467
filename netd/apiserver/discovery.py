"""Discovery documents: what kubectl reads to map `pods`/`deploy`/`sts` to URLs.

Two formats, both as kube-apiserver 1.32 serves them:
- legacy: /api (APIVersions), /apis (APIGroupList), /api/v1 and /apis/<g>/<v>
  (APIResourceList, subresources flattened as `pods/status` entries);
- aggregated (apidiscovery.k8s.io/v2): /api or /apis answered with one
  APIGroupDiscoveryList when the Accept header asks for it.  client-go 1.32 asks for
  it first and otherwise falls back to one request per group-version.
Pure functions over the registry; the aiohttp layer picks the format by `negotiate`.
"""
from __future__ import annotations

import base64
import hashlib
from typing import Any

from netd.api.kinds import REGISTRY, Registry, ResourceType, Subresource

AGGREGATED_GROUP = "apidiscovery.k8s.io"
AGGREGATED_V2 = f"application/json;g={AGGREGATED_GROUP};v=v2;as=APIGroupDiscoveryList"
AGGREGATED_V2BETA1 = (
    f"application/json;g={AGGREGATED_GROUP};v=v2beta1;as=APIGroupDiscoveryList")
JSON = "application/json"

# kube-apiserver names connect-style subresources by their options kind, not the parent's.
_SUB_KIND: dict[str, tuple[str, str, str]] = {
    "attach": ("", "", "PodAttachOptions"),
    "exec": ("", "", "PodExecOptions"),
    "portforward": ("", "", "PodPortForwardOptions"),
    "proxy": ("", "", "PodProxyOptions"),
    "binding": ("", "", "Binding"),
    "eviction": ("policy", "v1", "Eviction"),
}


def storage_version_hash(group: str, version: str, kind: str) -> str:
    """apiserver's storageVersionHash: base64 of the first 8 bytes of sha256(g/v/k)."""
    digest = hashlib.sha256(f"{group}/{version}/{kind}".encode()).digest()
    return base64.b64encode(digest[:8]).decode()


def negotiate(accept: str | None) -> str | None:
    """The aggregated-discovery version the client accepts first ("v2"/"v2beta1"), or None.

    Accept lists media types in preference order (client-go sends v2, v2beta1, json).
    """
    for part in (accept or "").split(","):
        params = {}
        for p in part.split(";")[1:]:
            k, _, v = p.strip().partition("=")
            params[k] = v
        if params.get("g") == AGGREGATED_GROUP and params.get("as") == "APIGroupDiscoveryList" \
                and params.get("v") in ("v2", "v2beta1"):
            return params["v"]
    return None


def content_type(version: str) -> str:
    return AGGREGATED_V2 if version == "v2" else AGGREGATED_V2BETA1


def subresource_gvk(rt: ResourceType, sub: Subresource) -> tuple[str, str, str]:
    """(group, version, kind) of a subresource; empty group/version = the parent's."""
    if sub.name in _SUB_KIND:
        return _SUB_KIND[sub.name]
    if sub.group or sub.version:
        return sub.group, sub.version, sub.kind or rt.kind
    return "", "", sub.kind or rt.kind


# -- legacy ------------------------------------------------------------------------------

def legacy_api_versions(server_address: str) -> dict[str, Any]:
    """GET /api.  kube-apiserver sends neither apiVersion nor metadata here."""
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [
            {"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
    }


def _group_versions(registry: Registry) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for group, version in registry.groups():
        if group:
            out.setdefault(group, []).append(version)
    return out


def api_group(name: str, registry: Registry = REGISTRY) -> dict[str, Any] | None:
    """GET /apis/<group> (APIGroup), or None when the group is not served."""
    versions = _group_versions(registry).get(name)
    if not versions:
        return None
    gvs = [{"groupVersion": f"{name}/{v}", "version": v} for v in versions]
    return {"kind": "APIGroup", "apiVersion": "v1", "name": name, "versions": gvs,
            "preferredVersion": gvs[0]}


def legacy_api_group_list(registry: Registry = REGISTRY) -> dict[str, Any]:
    """GET /apis."""
    groups = []
    for name in _group_versions(registry):
        g = api_group(name, registry)
        assert g is not None
        del g["kind"], g["apiVersion"]
        groups.append(g)
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def _legacy_resource(rt: ResourceType) -> dict[str, Any]:
    res: dict[str, Any] = {
        "name": rt.plural, "singularName": rt.singular, "namespaced": rt.namespaced,
        "kind": rt.kind, "verbs": list(rt.verbs),
    }
    if rt.short_names:
        res["shortNames"] = list(rt.short_names)
    if rt.categories:
        res["categories"] = list(rt.categories)
    res["storageVersionHash"] = storage_version_hash(rt.group, rt.version, rt.kind)
    return res


def _legacy_subresource(rt: ResourceType, sub: Subresource) -> dict[str, Any]:
    group, version, kind = subresource_gvk(rt, sub)
    res: dict[str, Any] = {"name": f"{rt.plural}/{sub.name}", "singularName": "",
                           "namespaced": rt.namespaced}
    if group or version:
        res["group"], res["version"] = group, version
    res["kind"] = kind
    res["verbs"] = list(sub.verbs)
    return res


def api_resource_list(group: str, version: str,
                      registry: Registry = REGISTRY) -> dict[str, Any] | None:
    """GET /api/v1 or /apis/<g>/<v> (APIResourceList), or None when not served.

    Entries are sorted by name like kube-apiserver's (`pods`, `pods/attach`, …).  The core
    list carries no apiVersion, the named groups' lists do — another apiserver quirk
    clients tolerate either way, reproduced for byte-level familiarity.
    """
    types = registry.in_group_version(group, version)
    if not types:
        return None
    entries: list[dict[str, Any]] = []
    for rt in types:
        entries.append(_legacy_resource(rt))
        entries.extend(_legacy_subresource(rt, s) for s in rt.subresources)
    entries.sort(key=lambda e: e["name"])
    doc: dict[str, Any] = {"kind": "APIResourceList"}
    if group:
        doc["apiVersion"] = "v1"
    doc["groupVersion"] = f"{group}/{version}" if group else version
    doc["resources"] = entries
    return doc


# -- aggregated (apidiscovery.k8s.io/v2) ---------------------------------------------------

def _gvk(group: str, version: str, kind: str) -> dict[str, str]:
    return {"group": group, "version": version, "kind": kind}


def _aggregated_resource(rt: ResourceType) -> dict[str, Any]:
    res: dict[str, Any] = {
        "resource": rt.plural,
        # Same group/version as the listing: kube-apiserver leaves them empty.
        "responseKind": _gvk("", "", rt.kind),
        "scope": "Namespaced" if rt.namespaced else "Cluster",
        "singularResource": rt.singular,
        "verbs": list(rt.verbs),
    }
    if rt.short_names:
        res["shortNames"] = list(rt.short_names)
    if rt.categories:
        res["categories"] = list(rt.categories)
    subs = sorted(rt.subresources, key=lambda s: s.name)
    if subs:
        res["subresources"] = [
            {"subresource": s.name, "responseKind": _gvk(*subresource_gvk(rt, s)),
             "verbs": list(s.verbs)} for s in subs]
    return res


def aggregated_discovery(core: bool, registry: Registry = REGISTRY,
                         version: str = "v2") -> dict[str, Any]:
    """GET /api (core=True) or /apis (core=False) as an APIGroupDiscoveryList."""
    by_group: dict[str, dict[str, list[ResourceType]]] = {}
    for rt in registry.types:
        if (rt.group == "") != core:
            continue
        by_group.setdefault(rt.group, {}).setdefault(rt.version, []).append(rt)
    items = []
    for group, versions in by_group.items():
        meta: dict[str, Any] = {"creationTimestamp": None}
        if group:
            meta = {"name": group, "creationTimestamp": None}
        items.append({
            "metadata": meta,
            "versions": [
                {"version": v,
                 "resources": [_aggregated_resource(rt)
                               for rt in sorted(rts, key=lambda r: r.plural)],
                 "freshness": "Current"}
                for v, rts in versions.items()],
        })
    return {"kind": "APIGroupDiscoveryList",
            "apiVersion": f"{AGGREGATED_GROUP}/{version}",
            "metadata": {}, "items": items}


def etag(body: bytes) -> str:
    """Strong ETag for a discovery body (kube-apiserver hashes the encoded document)."""
    return '"' + hashlib.sha512(body).hexdigest().upper() + '"'
