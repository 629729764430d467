"""The three PATCH content types kube-apiserver accepts, over plain JSON objects.

* application/json-patch+json  -> apply_json_patch (RFC 6902)
* application/merge-patch+json -> apply_merge_patch (RFC 7386)
* application/strategic-merge-patch+json -> apply_strategic_merge_patch (smp.py)

plus create_three_way_merge_patch, what `kubectl apply` computes client-side (smpdiff.py).

Errors follow kube-apiserver's patch handler: an unreadable patch body is 400 BadRequest;
a JSON patch operation that cannot apply (failed `test`, missing path) is 422 with the
message "the server rejected our request due to an error in our request" and the
json-patch library's own text as the Status cause (that is what kubectl prints).
No function mutates its arguments.
"""
from __future__ import annotations

from typing import Any

from netd.api import errors
from netd.api.mergekeys import schema_for_kind
from netd.api.gojson import deep_copy, go_fmt, same
from netd.api.smp import SERVER, merge_map
from netd.api.smpdiff import three_way_merge_patch

Json = Any

__all__ = ["apply_json_patch", "apply_merge_patch", "apply_strategic_merge_patch",
           "create_three_way_merge_patch", "JSONPatchError"]

_REJECTED = "the server rejected our request due to an error in our request"


class JSONPatchError(errors.APIError):
    """A JSON patch operation that does not apply (errors.NewGenericServerResponse(422))."""

    code, reason = 422, "Invalid"

    def __init__(self, detail: str) -> None:
        super().__init__(_REJECTED, causes=[{"reason": "UnexpectedServerResponse",
                                             "message": detail}])
        self.detail = detail

    def __str__(self) -> str:
        return f"{_REJECTED}: {self.detail}"


# --- RFC 6902 ------------------------------------------------------------------------------

def _decode_pointer(path: str) -> list[str]:
    return [p.replace("~1", "/").replace("~0", "~") for p in path.split("/")[1:]]


def _array_index(token: str, size: int, *, for_add: bool, where: str) -> int:
    if for_add and token == "-":
        return size
    # RFC 6901: decimal digits, no leading zeros (and no negative indices).
    if not token.isdigit() or (len(token) > 1 and token[0] == "0") or not token.isascii():
        raise JSONPatchError(f"error in {where}: value was not a proper array index: "
                             f"'{token}'")
    idx = int(token)
    if idx > size or (idx == size and not for_add):
        raise JSONPatchError(f"error in {where}: Unable to access invalid index: {idx}: "
                             "invalid index referenced")
    return idx


def _container(doc: Json, tokens: list[str]) -> Json:
    """The parent of the location `tokens` names, or None (json-patch's findObject)."""
    cur = doc
    for tok in tokens[:-1]:
        if isinstance(cur, dict):
            cur = cur.get(tok)
        elif isinstance(cur, list):
            if not tok.isdigit() or int(tok) >= len(cur):
                return None
            cur = cur[int(tok)]
        else:
            return None
        if not isinstance(cur, (dict, list)):
            return None
    return cur


def _get_path(op: dict[str, Any], field: str, name: str) -> str:
    path = op.get(field)
    if not isinstance(path, str):
        raise JSONPatchError(f"{name} operation failed to decode {field}: missing value")
    if path and not path.startswith("/"):
        raise JSONPatchError(f"{name} operation does not apply: JSON pointer {path!r} "
                             "must start with '/': missing value")
    return path


def _value(op: dict[str, Any], name: str) -> Json:
    if "value" not in op:
        raise JSONPatchError(f"{name} operation, missing value field: missing value")
    return deep_copy(op["value"])


def _add(doc: Json, path: str, value: Json, name: str = "add") -> Json:
    if path == "":
        return value
    tokens = _decode_pointer(path)
    con = _container(doc, tokens)
    if con is None:
        raise JSONPatchError(f'{name} operation does not apply: doc is missing path: "{path}": '
                             "missing value")
    key = tokens[-1]
    if isinstance(con, dict):
        con[key] = value
    else:
        con.insert(_array_index(key, len(con), for_add=True, where=f"{name} for path: "
                                f"'{path}'"), value)
    return doc


def _remove(doc: Json, path: str, name: str = "remove") -> tuple[Json, Json]:
    """Returns (doc, removed value)."""
    tokens = _decode_pointer(path) if path else []
    con = _container(doc, tokens) if tokens else None
    if con is None:
        raise JSONPatchError(f'{name} operation does not apply: doc is missing path: "{path}": '
                             "missing value")
    key = tokens[-1]
    where = f"{name} for path: '{path}'"
    if isinstance(con, dict):
        if key not in con:
            raise JSONPatchError(f"error in {where}: Unable to remove nonexistent key: {key}: "
                                 "missing value")
        return doc, con.pop(key)
    return doc, con.pop(_array_index(key, len(con), for_add=False, where=where))


def _get(doc: Json, path: str, name: str, what: str = "path") -> Json:
    if path == "":
        return doc
    tokens = _decode_pointer(path)
    con = _container(doc, tokens)
    if con is None:
        raise JSONPatchError(f"{name} operation does not apply: doc is missing {what}: {path}: "
                             "missing value")
    key = tokens[-1]
    if isinstance(con, dict):
        if key not in con:
            raise JSONPatchError(f"{name} operation does not apply: doc is missing key: {path}:"
                                 " missing value")
        return con[key]
    return con[_array_index(key, len(con), for_add=False, where=f"{name} for path: '{path}'")]


def _json_equal(a: Json, b: Json) -> bool:
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_json_equal(x, y) for x, y in zip(a, b))
    if isinstance(a, (dict, list)) or isinstance(b, (dict, list)):
        return False
    return same(a, b)


def apply_json_patch(doc: dict[str, Any], ops: list[Any]) -> dict[str, Any]:
    """RFC 6902 add/remove/replace/move/copy/test, with `-` and ~0/~1 escapes."""
    if not isinstance(ops, list) or not all(isinstance(op, dict) for op in ops):
        raise errors.BadRequest("json: cannot unmarshal object into Go value of type "
                                "jsonpatch.Patch")
    out: Json = deep_copy(doc)
    for op in ops:
        kind = op.get("op")
        if kind == "add":
            out = _add(out, _get_path(op, "path", "add"), _value(op, "add"))
        elif kind == "remove":
            out, _ = _remove(out, _get_path(op, "path", "remove"))
        elif kind == "replace":
            path, value = _get_path(op, "path", "replace"), _value(op, "replace")
            if path == "":
                out = value
            else:
                _get(out, path, "replace")  # RFC 6902 4.3: the target must exist
                out, _ = _remove(out, path, "replace")
                out = _add(out, path, value, "replace")
        elif kind == "move":
            src, dst = _get_path(op, "from", "move"), _get_path(op, "path", "move")
            if dst != src and dst.startswith(src + "/"):
                raise JSONPatchError(f"move operation does not apply: from {src} is a prefix "
                                     f"of path {dst}: invalid state detected")
            _get(out, src, "move", "from path")
            out, value = _remove(out, src, "move")
            out = _add(out, dst, value, "move")
        elif kind == "copy":
            src, dst = _get_path(op, "from", "copy"), _get_path(op, "path", "copy")
            out = _add(out, dst, deep_copy(_get(out, src, "copy", "from path")), "copy")
        elif kind == "test":
            path, want = _get_path(op, "path", "test"), _value(op, "test")
            try:
                have = _get(out, path, "test")
            except JSONPatchError:
                raise JSONPatchError(f"testing value {path} failed: test failed") from None
            if not _json_equal(have, want):
                raise JSONPatchError(f"testing value {path} failed: test failed")
        else:
            raise JSONPatchError(f"Unexpected kind: {kind if isinstance(kind, str) else 'unknown'}")
    if not isinstance(out, dict):
        raise JSONPatchError(f"the patched document is not a JSON object: {go_fmt(out)}")
    return out


# --- RFC 7386 ------------------------------------------------------------------------------

def _merge(target: Json, patch: Json) -> Json:
    if not isinstance(patch, dict):
        return deep_copy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            result.pop(k, None)
        else:
            result[k] = _merge(result.get(k), v)
    return result


def apply_merge_patch(doc: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """RFC 7386: objects merge recursively, null deletes, anything else replaces."""
    if not isinstance(patch, dict):
        raise errors.BadRequest("json: cannot unmarshal into Go value of type "
                                "map[string]interface {}: a merge patch must be a JSON object")
    return _merge(deep_copy(doc), patch)


# --- strategic merge ---------------------------------------------------------------------------

def apply_strategic_merge_patch(doc: dict[str, Any], patch: dict[str, Any],
                                kind: str) -> dict[str, Any]:
    """Kubernetes' strategic merge patch with the merge keys of `kind` (mergekeys.py)."""
    if not isinstance(patch, dict):
        raise errors.BadRequest("json: cannot unmarshal into Go value of type "
                                "map[string]interface {}: a strategic merge patch must be a "
                                "JSON object")
    return merge_map(deep_copy(doc), deep_copy(patch), schema_for_kind(kind), SERVER)


def create_three_way_merge_patch(original: dict[str, Any] | None, modified: dict[str, Any],
                                 current: dict[str, Any], kind: str) -> dict[str, Any]:
    """What `kubectl apply` sends: changes from current to modified, plus the deletions
    from original (the last-applied configuration) to modified. Overwrites conflicts."""
    return three_way_merge_patch(original, modified, current, schema_for_kind(kind))
