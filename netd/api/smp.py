"""Applying a strategic merge patch (k8s.io/apimachinery/pkg/util/strategicpatch).

A port of upstream's `mergeMap`/`mergeSlice` semantics over plain JSON values, including
its list ordering: patch items keep the patch's order and server-only items are
interleaved by their live position (so an item new to a list lands *before* the live
items unless `$setElementOrder` says otherwise -- exactly what kube-apiserver does).

`merge_map` is shared with the client-side three-way diff (smpdiff.py), which merges two
patches instead of a patch into an object; `MergeOptions` switches between the two, as
upstream's MergeOptions does.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from netd.api import errors
from netd.api.gojson import category, deep_copy, go_fmt, hkey, same
from netd.api.mergekeys import MERGE, REPLACE, Schema

__all__ = ["merge_map", "merge_slice", "MergeOptions", "SERVER", "CLIENT", "PatchError",
           "PatchUnprocessable", "remove_directives", "deep_copy", "go_fmt", "hkey"]

DIRECTIVE = "$patch"
DELETE, REPLACE_DIRECTIVE, MERGE_DIRECTIVE = "delete", "replace", "merge"
RETAIN_KEYS = "$retainKeys"
DELETE_FROM_PRIMITIVE_LIST = "$deleteFromPrimitiveList"
SET_ELEMENT_ORDER = "$setElementOrder"

Json = Any


@dataclass(frozen=True)
class MergeOptions:
    # True when applying a patch to an object (server side); False when merging two
    # patches into one (client side, kubectl apply), which keeps directives and nulls.
    merge_parallel_list: bool = True
    ignore_unmatched_nulls: bool = True


SERVER = MergeOptions(True, True)
CLIENT = MergeOptions(False, False)


class PatchError(errors.BadRequest):
    """A strategic merge patch that cannot apply: malformed, with apimachinery's text."""


class PatchUnprocessable(errors.APIError):
    # interpretStrategicMergePatchError maps a few errors (lists of lists) to 422.
    code, reason = 422, "Invalid"


def _no_merge_key(m: dict[str, Json], key: str) -> PatchError:
    return PatchError(f"map: {go_fmt(m)} does not contain declared merge key: {key}")


def _bad_type(expected: str, actual: Json) -> PatchError:
    names = {"map": "map[string]interface {}", "list": "[]interface {}", "none": "<nil>"}
    got = category(actual)
    got_name = names.get(got, {"scalar:str": "string", "scalar:bool": "bool"}.get(got, "float64"))
    return PatchError(f"expected a {names[expected]}, but received a {got_name}")


def _element_kind(*lists: list[Json]) -> str | None:
    """sliceElementType: "map" or "scalar" for homogeneous lists; None when all are empty."""
    seen: str | None = None
    for lst in lists:
        for v in lst:
            cat = category(v)
            if cat == "list":
                raise PatchUnprocessable("lists of lists are not supported")
            if seen is None:
                seen = cat
            elif seen != cat:
                raise PatchError("list element types are not identical: "
                                 + go_fmt(list(lists)))
    if seen is None:
        return None
    return "map" if seen == "map" else "scalar"


def remove_directives(v: Json, strip_parallel: bool) -> tuple[Json, bool]:
    """removeDirectives: a map carrying `$patch` disappears, recursively.

    Server side also drops the other `$...` directive keys: upstream loses them when the
    result is decoded into a Go struct, but netd stores objects as they are."""
    if isinstance(v, dict):
        if DIRECTIVE in v:
            return None, False
        out: dict[str, Json] = {}
        for k, x in v.items():
            if strip_parallel and _is_directive_key(k):
                continue
            nv, keep = remove_directives(x, strip_parallel)
            if keep:
                out[k] = nv
        return out, True
    if isinstance(v, list):
        res = []
        for x in v:
            nv, keep = remove_directives(x, strip_parallel)
            if keep:
                res.append(nv)
        return res, True
    return v, True


def _is_directive_key(k: str) -> bool:
    return k == RETAIN_KEYS or k.startswith(SET_ELEMENT_ORDER + "/") or \
        k.startswith(DELETE_FROM_PRIMITIVE_LIST + "/")


def _discard_nulls(v: Json) -> None:
    if isinstance(v, dict):
        for k in [k for k, x in v.items() if x is None]:
            del v[k]
        for x in v.values():
            _discard_nulls(x)
    elif isinstance(v, list):
        for x in v:
            _discard_nulls(x)


def _extract_key(s: str, prefix: str) -> str:
    head, sep, rest = s.partition("/")
    if not sep or head != prefix:
        if prefix == DELETE_FROM_PRIMITIVE_LIST:
            raise PatchError("invalid patch format of primitive list")
        raise PatchError("invalid patch format of setElementOrder list")
    return rest


# --- maps ----------------------------------------------------------------------------------

def merge_map(original: dict[str, Json] | None, patch: dict[str, Json], schema: Schema,
              opts: MergeOptions) -> dict[str, Json]:
    """mergeMap. Mutates both arguments: callers pass private copies."""
    if DIRECTIVE in patch:
        directive = patch[DIRECTIVE]
        if directive == REPLACE_DIRECTIVE:
            del patch[DIRECTIVE]
            if opts.merge_parallel_list:
                return remove_directives(patch, True)[0]
            return patch
        if directive == DELETE:
            return {}
        if directive != MERGE_DIRECTIVE:
            raise PatchError(f"unknown patch type: {go_fmt(directive)} in map: {go_fmt(patch)}")
        # `$patch: merge` is what happens anyway; upstream rejects it on maps, netd
        # accepts it as the explicit spelling of the default.
        del patch[DIRECTIVE]
    if original is None:
        original = {}
    _apply_retain_keys(original, patch, opts)
    _merge_set_element_order(original, patch, schema, opts)
    strip = opts.merge_parallel_list
    for key, pv in list(patch.items()):
        k, is_delete_list = key, False
        if key.startswith(DELETE_FROM_PRIMITIVE_LIST):
            if not opts.merge_parallel_list:
                original[key] = pv
                continue
            k, is_delete_list = _extract_key(key, DELETE_FROM_PRIMITIVE_LIST), True
        if pv is None:
            original.pop(k, None)
            if opts.ignore_unmatched_nulls:
                continue
        if k not in original or category(original[k]) != category(pv):
            if not is_delete_list:
                if opts.ignore_unmatched_nulls:
                    _discard_nulls(pv)
                nv, keep = remove_directives(pv, strip)
                if keep:
                    original[k] = nv
                else:
                    original.pop(k, None)
            continue
        ov = original[k]
        sub, meta = schema.lookup(k)
        if isinstance(ov, dict):
            original[k] = pv if meta.strategy == REPLACE else merge_map(ov, pv, sub, opts)
        elif isinstance(ov, list):
            if meta.strategy == MERGE or is_delete_list:
                original[k] = merge_slice(ov, pv, sub, meta.merge_key, opts, is_delete_list)
            else:
                original[k] = remove_directives(pv, strip)[0] if strip else pv
        else:
            nv, keep = remove_directives(pv, strip)
            if keep:
                original[k] = nv
            else:
                original.pop(k, None)
    return original


def _apply_retain_keys(original: dict[str, Json], patch: dict[str, Json],
                       opts: MergeOptions) -> None:
    if RETAIN_KEYS not in patch:
        return
    retain = patch.pop(RETAIN_KEYS)
    if not opts.merge_parallel_list:
        if RETAIN_KEYS in original and original[RETAIN_KEYS] != retain:
            raise PatchError(f"{go_fmt(original[RETAIN_KEYS])} and {go_fmt(retain)} are not "
                             "deep equal: this may happen when calculating the 3-way diff patch")
        original.setdefault(RETAIN_KEYS, retain)
        return
    if not isinstance(retain, list):
        raise PatchError("invalid patch format of retainKeys")
    keep = {hkey(v) for v in retain}
    for k, v in patch.items():
        if v is None or k.startswith(DELETE_FROM_PRIMITIVE_LIST) or \
                k.startswith(SET_ELEMENT_ORDER):
            continue
        if hkey(k) not in keep:
            raise PatchError("invalid patch format of retainKeys")
    for k in [k for k in original if hkey(k) not in keep]:
        del original[k]


def _merge_set_element_order(original: dict[str, Json], patch: dict[str, Json],
                             schema: Schema, opts: MergeOptions) -> None:
    """mergePatchIntoOriginal: merge each list named by `$setElementOrder/<list>`, then
    order it: $setElementOrder first, then the patch's order, then the live order."""
    for key in [k for k in patch if k.startswith(SET_ELEMENT_ORDER)]:
        order = patch.pop(key)
        if not opts.merge_parallel_list:
            if key in original and original[key] != order:
                raise PatchError("invalid patch format of setElementOrder list")
            original.setdefault(key, order)
        if not isinstance(order, list):
            raise _bad_type("list", order)
        name = _extract_key(key, SET_ELEMENT_ORDER)
        # A null list counts as absent (upstream would fail its type assertion).
        orig_list = _as_list(original.get(name))
        patch_list = _as_list(patch.get(name))
        if orig_list is None and patch_list is None:
            continue
        sub, meta = schema.lookup(name)
        _validate_set_order(patch_list or [], order, meta.merge_key)
        server_order: list[Json] = orig_list or []
        merged: list[Json]
        if patch_list is None:
            merged = orig_list or []
        elif orig_list is None:
            merged = remove_directives(patch_list, opts.merge_parallel_list)[0]
        elif meta.strategy == MERGE:
            merged, server_order = _merge_slice(orig_list, patch_list, sub, meta.merge_key,
                                                opts, False)
        else:
            merged = patch_list
        kind = _element_kind(orig_list or [], patch_list or [])
        if kind is not None:
            patch_items, server_only = _partition(merged, order, meta.merge_key)
            merged = _normalize_element_order(patch_items, server_only, order, server_order,
                                              meta.merge_key, kind)
        original[name] = merged
        patch.pop(name, None)


def _as_list(v: Json) -> list[Json] | None:
    if v is None or isinstance(v, list):
        return v
    raise _bad_type("list", v)


def _validate_set_order(patch_list: list[Json], order: list[Json], merge_key: str) -> None:
    """validatePatchWithSetOrderList: the patch's items appear in the order's order."""
    if not order or not patch_list:
        return
    items = patch_list
    if merge_key:
        items = [v for v in patch_list
                 if not (isinstance(v, dict) and v.get(DIRECTIVE) == DELETE)]
    pi = si = 0
    while pi < len(items) and si < len(order):
        if isinstance(items[pi], dict) and DIRECTIVE in items[pi]:
            pi += 1
            continue
        if _merge_key_equal(items[pi], order[si], merge_key):
            pi += 1
        si += 1
    if pi < len(items) and si >= len(order):
        raise PatchError(f"The order in patch list:\n{go_fmt(patch_list)}\n doesn't match "
                         f"{SET_ELEMENT_ORDER} list:\n{go_fmt(order)}\n")


def _merge_key_equal(left: Json, right: Json, merge_key: str) -> bool:
    if not merge_key:
        return same(left, right)
    if not isinstance(left, dict):
        raise _bad_type("map", left)
    if not isinstance(right, dict):
        raise _bad_type("map", right)
    if merge_key not in left:
        raise _no_merge_key(left, merge_key)
    if merge_key not in right:
        raise _no_merge_key(right, merge_key)
    return same(left[merge_key], right[merge_key])


# --- lists ---------------------------------------------------------------------------------

def merge_slice(original: list[Json], patch: list[Json], schema: Schema, merge_key: str,
                opts: MergeOptions, is_delete_list: bool) -> list[Json]:
    return _merge_slice(original, patch, schema, merge_key, opts, is_delete_list)[0]


def _merge_slice(original: list[Json], patch: list[Json], schema: Schema, merge_key: str,
                 opts: MergeOptions, is_delete_list: bool) -> tuple[list[Json], list[Json]]:
    """mergeSlice. Also returns what the caller's view of `original` holds afterwards.

    Upstream deletes and appends in place, so a caller holding the original Go slice
    (mergePatchIntoOriginal, for `$setElementOrder`) sees its first len(original) slots
    compacted by the deletions and then overwritten by appended items; that view is the
    "live order" it then sorts by. Reproducing it keeps list order identical to upstream.
    """
    if not isinstance(original, list):
        raise _bad_type("list", original)
    if not isinstance(patch, list):
        raise _bad_type("list", patch)
    if not original and not patch:
        return original, original
    kind = _element_kind(original, patch)
    view = original
    if kind != "map":
        if opts.merge_parallel_list and is_delete_list:
            drop = {hkey(v) for v in patch}
            return [v for v in original if hkey(v) not in drop], view
        merged: list[Json] = []
        seen: set[Any] = set()
        for v in original + patch:
            if hkey(v) not in seen:
                seen.add(hkey(v))
                merged.append(v)
    else:
        if not merge_key:
            raise PatchError(f"cannot merge lists without merge key for {schema.name}")
        backing = list(original)
        original, patch = _apply_list_directives(original, patch, merge_key, backing)
        merged = list(original)
        for item in patch:
            if merge_key not in item:
                raise _no_merge_key(item, merge_key)
            idx = _find_by_key(merged, merge_key, item[merge_key])
            if idx is None:
                if len(merged) < len(backing):
                    backing[len(merged)] = item
                merged.append(item)
            else:
                merged[idx] = merge_map(merged[idx], item, schema, opts)
        view = backing
    patch_items, server_only = _partition(merged, patch, merge_key)
    return _normalize_element_order(patch_items, server_only, patch, original, merge_key,
                                    kind or "scalar"), view


def _apply_list_directives(original: list[Json], patch: list[Json], merge_key: str,
                           backing: list[Json]) -> tuple[list[Json], list[Json]]:
    """mergeSliceWithSpecialElements: `$patch: delete|replace` items of a merging list.

    `backing` mirrors the Go backing array: deletions compact it in place."""
    rest: list[Json] = []
    replace = False
    for item in patch:
        if DIRECTIVE not in item:
            rest.append(item)
            continue
        directive = item[DIRECTIVE]
        if directive == DELETE:
            if merge_key not in item:
                raise _no_merge_key(item, merge_key)
            value = item[merge_key]
            size = len(original)
            while (idx := _find_by_key(backing[:size], merge_key, value)) is not None:
                backing[idx:size - 1] = backing[idx + 1:size]
                size -= 1
            original = backing[:size]
        elif directive == REPLACE_DIRECTIVE:
            replace = True
        elif directive == MERGE_DIRECTIVE:
            raise PatchError("merging lists cannot yet be specified in the patch")
        else:
            raise PatchError(f"unknown patch type: {go_fmt(directive)} in map: {go_fmt(item)}")
    if replace:
        return rest, []
    return original, rest


def _has_key_value(item: Json, key: str, value: Json) -> bool:
    if not isinstance(item, dict):
        raise PatchError("value for key is not a map")
    return key in item and same(item[key], value)


def _find_by_key(items: list[Json], key: str, value: Json) -> int | None:
    for i, item in enumerate(items):
        if _has_key_value(item, key, value):
            return i
    return None


def _ident(item: Json, merge_key: str) -> Any:
    if merge_key:
        return hkey(item.get(merge_key)) if isinstance(item, dict) else None
    return hkey(item)


def _partition(merged: list[Json], by: list[Json],
               merge_key: str) -> tuple[list[Json], list[Json]]:
    """Split into items named in `by` and server-only items, keeping their order."""
    if merge_key:
        for v in merged:
            if not isinstance(v, dict):
                raise _bad_type("map", v)
            if merge_key not in v:
                raise _no_merge_key(v, merge_key)
    wanted = {_ident(v, merge_key) for v in by}
    in_patch = [v for v in merged if _ident(v, merge_key) in wanted]
    server_only = [v for v in merged if _ident(v, merge_key) not in wanted]
    return in_patch, server_only


def _index(order: list[Json], item: Json, merge_key: str) -> int:
    ident = _ident(item, merge_key)
    for i, v in enumerate(order):
        if _ident(v, merge_key) == ident:
            return i
    return -1


def _normalize_slice_order(items: list[Json], order: list[Json], merge_key: str,
                           kind: str) -> list[Json]:
    deletes: list[Json] = []
    if kind == "map":
        for v in items + order:
            if not isinstance(v, dict):
                raise _bad_type("map", v)
            if merge_key not in v:
                raise _no_merge_key(v, merge_key)
        deletes = [v for v in items if v.get(DIRECTIVE) == DELETE]
        items = [v for v in items if v.get(DIRECTIVE) != DELETE]
    positions = [_index(order, v, merge_key) for v in items]
    ranked = sorted(range(len(items)),
                    key=lambda i: (positions[i] < 0, positions[i]))
    return [items[i] for i in ranked] + deletes


def _normalize_element_order(patch_items: list[Json], server_only: list[Json],
                             patch_order: list[Json], server_order: list[Json],
                             merge_key: str, kind: str) -> list[Json]:
    """normalizeElementOrder + mergeSortedSlice: interleave server-only items into the
    patch-ordered items wherever the live order says they came first."""
    right = _normalize_slice_order(patch_items, patch_order, merge_key, kind)
    left = _normalize_slice_order(server_only, server_order, merge_key, kind)
    out: list[Json] = []
    i = j = 0
    while i < len(left) or j < len(right):
        if i >= len(left):
            out.append(right[j])
            j += 1
        elif j >= len(right):
            out.append(left[i])
            i += 1
        else:
            li = _index(server_order, left[i], merge_key)
            ri = _index(server_order, right[j], merge_key)
            if li >= 0 and ri >= 0 and li < ri:
                out.append(left[i])
                i += 1
            else:
                out.append(right[j])
                j += 1
    return out
