"""Apply manifest documents in-process the way client-side `kubectl apply` does:
create with the last-applied annotation, or patch with a three-way merge."""
from __future__ import annotations

from typing import Any

import orjson

from netd.api import errors
from netd.api.kinds import REGISTRY
from netd.api.patch import create_three_way_merge_patch
from netd.registry.objectapi import STRATEGIC_PATCH, ObjectAPI

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


def _annotated(doc: dict[str, Any]) -> dict[str, Any]:
    out = orjson.loads(orjson.dumps(doc))
    meta = out.setdefault("metadata", {})
    anns = dict(meta.get("annotations") or {})
    anns.pop(LAST_APPLIED, None)
    clean = orjson.loads(orjson.dumps(out))
    clean["metadata"]["annotations"] = anns
    if not anns:
        del clean["metadata"]["annotations"]
    anns[LAST_APPLIED] = orjson.dumps(clean).decode() + "\n"
    meta["annotations"] = anns
    return out


async def apply_document(api: ObjectAPI, doc: dict[str, Any],
                         default_namespace: str = "default") -> str:
    if not isinstance(doc, dict) or "kind" not in doc or "apiVersion" not in doc:
        raise errors.BadRequest("a manifest document needs apiVersion and kind")
    rt = REGISTRY.by_api_version_kind(str(doc["apiVersion"]), str(doc["kind"]))
    if rt is None:
        raise errors.NotFound(f'no matches for kind "{doc["kind"]}" in version '
                              f'"{doc["apiVersion"]}"')
    meta = doc.get("metadata") or {}
    ns = (meta.get("namespace") or default_namespace) if rt.namespaced else ""
    name = meta.get("name", "")
    label = f"{rt.singular}{'.' + rt.group if rt.group else ''}/{name}"
    modified = _annotated(doc)
    current = api.store.get(rt.group_resource, ns, name) if name else None
    if current is None:
        await api.create(rt, ns, modified)
        return f"{label} created"
    original_text = ((current.obj.get("metadata") or {}).get("annotations") or {}).get(
        LAST_APPLIED)
    original = orjson.loads(original_text) if original_text else None
    patch = create_three_way_merge_patch(original, modified, current.obj, rt.kind)
    if not patch:
        return f"{label} unchanged"
    before = current.rv
    stored = await api.patch(rt, ns, name, STRATEGIC_PATCH, patch)
    return f"{label} {'configured' if stored.rv != before else 'unchanged'}"
