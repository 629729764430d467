"""Computing strategic merge patches (the client side of `kubectl apply`).

Ports upstream's diffMaps/diffLists and CreateThreeWayMergePatch (with overwrite=true, as
kubectl apply uses by default, so no conflict detection). The patches use the same
directives the server understands: `null` deletes, `$patch: delete` items,
`$deleteFromPrimitiveList/<f>`, `$setElementOrder/<f>` and `$retainKeys`.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from netd.api.mergekeys import MERGE, REPLACE, Schema
from netd.api.gojson import deep_copy, go_fmt, hkey
from netd.api.smp import (CLIENT, DELETE, DELETE_FROM_PRIMITIVE_LIST, DIRECTIVE, RETAIN_KEYS,
                          SET_ELEMENT_ORDER, PatchError, PatchUnprocessable, _bad_type,
                          _element_kind, _no_merge_key, _normalize_slice_order, merge_map)

Json = Any


@dataclass(frozen=True)
class DiffOptions:
    set_element_order: bool = False
    ignore_changes_and_additions: bool = False
    ignore_deletions: bool = False
    build_retain_keys: bool = False


def _equal(a: Json, b: Json) -> bool:
    # reflect.DeepEqual over decoded JSON; bools are not numbers.
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b))
    if isinstance(a, (dict, list)) or isinstance(b, (dict, list)):
        return False
    return type(a) is type(b) and a == b


def _kind(v: Json) -> str:
    return "map" if isinstance(v, dict) else "list" if isinstance(v, list) else \
        type(v).__name__


def diff_maps(original: dict[str, Json], modified: dict[str, Json], schema: Schema,
              opts: DiffOptions) -> dict[str, Json]:
    """A patch that turns `original` into `modified` (within what `opts` asks for)."""
    patch: dict[str, Json] = {}
    retain: list[Json] = []
    for key, mv in modified.items():
        if opts.build_retain_keys and mv is not None:
            retain.append(key)
        if key not in original:
            if not opts.ignore_changes_and_additions:
                patch[key] = mv
            continue
        ov = original[key]
        if key == DIRECTIVE:
            if not isinstance(ov, str) or not isinstance(mv, str):
                raise PatchError(f"invalid value for special key: {DIRECTIVE}")
            if ov != mv:
                patch[DIRECTIVE] = mv
            continue
        if _kind(ov) != _kind(mv):
            if not opts.ignore_changes_and_additions:
                patch[key] = mv
            continue
        if isinstance(ov, dict):
            _map_diff(key, ov, mv, patch, schema, opts)
        elif isinstance(ov, list):
            _slice_diff(key, ov, mv, patch, schema, opts)
        elif not opts.ignore_changes_and_additions and not _equal(ov, mv):
            patch[key] = mv
    if not opts.ignore_deletions:
        for key in original:
            if key not in modified:
                patch[key] = None
    extra = any(v is not None and k not in modified for k, v in original.items())
    if retain and (patch or extra):
        patch[RETAIN_KEYS] = sorted(retain, key=go_fmt)
    return patch


def _map_diff(key: str, ov: dict[str, Json], mv: dict[str, Json], patch: dict[str, Json],
              schema: Schema, opts: DiffOptions) -> None:
    sub, meta = schema.lookup(key)
    if meta.strategy == REPLACE:
        if not opts.ignore_changes_and_additions:
            patch[key] = mv
        return
    value = diff_maps(ov, mv, sub, replace(opts, build_retain_keys=meta.retain_keys))
    if value:
        patch[key] = value


def _slice_diff(key: str, ov: list[Json], mv: list[Json], patch: dict[str, Json],
                schema: Schema, opts: DiffOptions) -> None:
    sub, meta = schema.lookup(key)
    if meta.strategy != MERGE:
        if not opts.ignore_changes_and_additions and not _equal(ov, mv):
            patch[key] = mv
        return
    add, delete, order = _diff_lists(ov, mv, sub, meta.merge_key,
                                     replace(opts, build_retain_keys=meta.retain_keys))
    if add:
        patch[key] = add
    if delete:
        patch[f"{DELETE_FROM_PRIMITIVE_LIST}/{key}"] = delete
    if order:
        patch[f"{SET_ELEMENT_ORDER}/{key}"] = order


def _diff_lists(original: list[Json], modified: list[Json], schema: Schema, merge_key: str,
                opts: DiffOptions) -> tuple[list[Json], list[Json], list[Json]]:
    if not original:
        if not modified or opts.ignore_changes_and_additions:
            return [], [], []
        return modified, [], []
    kind = _element_kind(original, modified)
    if kind == "map":
        add, deletes = _diff_lists_of_maps(original, modified, schema, merge_key, opts)
        add = _normalize_slice_order(add, modified, merge_key, "map")
        same_order = len(original) == len(modified) and all(
            hkey(o.get(merge_key)) == hkey(m.get(merge_key)) for o, m in zip(original, modified))
        add = add + deletes
        order: list[Json] = []
        if opts.set_element_order and (
                (not opts.ignore_changes_and_additions and (add or not same_order))
                or (not opts.ignore_deletions and add)):
            order = [{merge_key: m[merge_key]} for m in modified]
        return add, [], order
    add, deletes = _diff_lists_of_scalars(original, modified, opts)
    add = _normalize_slice_order(add, modified, "", "scalar")
    order = []
    if opts.set_element_order and ((not opts.ignore_deletions and deletes) or (
            not opts.ignore_changes_and_additions and not _equal(original, modified))):
        order = modified
    return add, deletes, order


def _dedupe(values: list[Json]) -> list[Json]:
    seen: set[Any] = set()
    out = []
    for v in values:
        if hkey(v) not in seen:
            seen.add(hkey(v))
            out.append(v)
    return out


def _diff_lists_of_scalars(original: list[Json], modified: list[Json],
                           opts: DiffOptions) -> tuple[list[Json], list[Json]]:
    # Upstream walks both lists sorted by their %v text; so does this.
    orig = sorted(original, key=go_fmt)
    mod = sorted(modified, key=go_fmt)
    add: list[Json] = []
    deletes: list[Json] = []
    i = j = 0
    while i < len(orig) or j < len(mod):
        os_ = go_fmt(orig[i]) if i < len(orig) else None
        ms = go_fmt(mod[j]) if j < len(mod) else None
        if os_ is not None and ms is not None and os_ == ms:
            i += 1
            j += 1
        elif os_ is None or (ms is not None and os_ > ms):
            if not opts.ignore_changes_and_additions:
                add.append(mod[j])
            j += 1
        else:
            if not opts.ignore_deletions:
                deletes.append(orig[i])
            i += 1
    return add, _dedupe(deletes)


def _sorted_by_key(items: list[Json], merge_key: str) -> list[dict[str, Json]]:
    for v in items:
        if not isinstance(v, dict):
            raise _bad_type("map", v)
        if merge_key not in v:
            raise _no_merge_key(v, merge_key)
    return sorted(items, key=lambda v: go_fmt(v[merge_key]))


def _diff_lists_of_maps(original: list[Json], modified: list[Json], schema: Schema,
                        merge_key: str, opts: DiffOptions) -> tuple[list[Json], list[Json]]:
    if not merge_key:
        raise PatchError(f"cannot merge lists without merge key for {schema.name}")
    orig = _sorted_by_key(original, merge_key)
    mod = _sorted_by_key(modified, merge_key)
    patch: list[Json] = []
    deletes: list[Json] = []
    i = j = 0
    while i < len(orig) or j < len(mod):
        ok = go_fmt(orig[i][merge_key]) if i < len(orig) else None
        mk = go_fmt(mod[j][merge_key]) if j < len(mod) else None
        if ok is not None and mk is not None and ok == mk:
            value = diff_maps(orig[i], mod[j], schema, opts)
            if value:
                value[merge_key] = mod[j][merge_key]
                patch.append(value)
            i += 1
            j += 1
        elif ok is None or (mk is not None and ok > mk):
            if not opts.ignore_changes_and_additions:
                patch.append(mod[j])
            j += 1
        else:
            if not opts.ignore_deletions:
                deletes.append({merge_key: orig[i][merge_key], DIRECTIVE: DELETE})
            i += 1
    return patch, deletes


def two_way_merge_patch(original: dict[str, Json], modified: dict[str, Json],
                        schema: Schema) -> dict[str, Json]:
    """CreateTwoWayMergePatch: what `kubectl edit`/`kubectl set` send."""
    return diff_maps(deep_copy(original), deep_copy(modified), schema,
                     DiffOptions(set_element_order=True))


def three_way_merge_patch(original: dict[str, Json] | None, modified: dict[str, Json],
                          current: dict[str, Json], schema: Schema) -> dict[str, Json]:
    """CreateThreeWayMergePatch(overwrite=true)."""
    for name, doc in (("modified", modified), ("current", current)):
        if not isinstance(doc, dict):
            raise PatchUnprocessable(f"invalid JSON document: {name} is not an object")
    orig = deep_copy(original) if original else {}
    delta = diff_maps(deep_copy(current), deep_copy(modified), schema,
                      DiffOptions(set_element_order=True, ignore_deletions=True))
    deletions = diff_maps(orig, deep_copy(modified), schema,
                          DiffOptions(set_element_order=True, ignore_changes_and_additions=True))
    return merge_map(deletions, delta, schema, CLIENT)
