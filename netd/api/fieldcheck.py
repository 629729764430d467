"""Unknown-field detection for `?fieldValidation=Strict|Warn` (server-side field validation).

kube-apiserver decodes built-in types with sigs.k8s.io/json's strict mode, which names
each unknown field by its JSON path without a leading dot, list indices in brackets:
`spec.template.spec.containers[0].imagee`.  Strict requests fail with
`strict decoding error: unknown field "spec.foo", unknown field "spec.bar"` (BadRequest);
Warn requests succeed and carry one `Warning: unknown field "spec.foo"` header per path.
Free-form parts (labels, annotations, ConfigMap data, RawExtension, FieldsV1, any
`object`) are never inspected, exactly like the Go decoder, which has no fields there.
"""
from __future__ import annotations

from typing import Any

from netd.api.schema import Schema, element, get_schema, is_ref


def unknown_fields(kind: str, obj: dict[str, Any], api_version: str | None = None,
                   schema: Schema | None = None) -> list[str]:
    """Paths of fields in obj that kind's schema does not declare, in input order.

    An unknown kind (nothing to check against) yields no paths.
    """
    sch = schema or get_schema()
    name = sch.definition_name(kind, api_version)
    if name is None or not isinstance(obj, dict):
        return []
    out: list[str] = []
    _walk(sch, name, obj, "", out)
    return out


def _join(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key


def _walk(sch: Schema, type_name: str, obj: dict[str, Any], prefix: str,
          out: list[str]) -> None:
    td = sch.types.get(type_name)
    if td is None or td.special:
        return
    for key, value in obj.items():
        f = td.fields.get(key)
        path = _join(prefix, key)
        if f is None:
            out.append(path)
            continue
        _value(sch, f.type, value, path, out)


def _value(sch: Schema, expr: str, value: Any, path: str, out: list[str]) -> None:
    if value is None:
        return
    if expr.startswith("[]"):
        if isinstance(value, list):
            inner = element(expr)
            for i, item in enumerate(value):
                _value(sch, inner, item, f"{path}[{i}]", out)
        return
    if expr.startswith("{}"):
        inner = element(expr)
        if isinstance(value, dict) and is_ref(inner):
            for k, item in value.items():
                _value(sch, inner, item, f"{path}[{k}]", out)
        return
    if is_ref(expr) and isinstance(value, dict):
        _walk(sch, expr, value, path, out)


def strict_error_message(paths: list[str]) -> str:
    """The message of the BadRequest Status kube-apiserver returns for Strict requests."""
    return "strict decoding error: " + ", ".join(f'unknown field "{p}"' for p in paths)


def warnings(paths: list[str]) -> list[str]:
    """Texts of the `Warning: 299 - "..."` headers kube-apiserver sends for Warn requests."""
    return [f'unknown field "{p}"' for p in paths]


def prune(obj: dict[str, Any], paths: list[str]) -> None:
    """Drop the fields at `paths` (as unknown_fields names them) from obj, in place.

    kube-apiserver decodes into typed structs, so with Warn or Ignore an unknown field
    is silently dropped, never stored; netd keeps objects as JSON and prunes instead.
    """
    for path in paths:
        steps = _steps(path)
        parent: Any = obj
        for step in steps[:-1]:
            try:
                parent = parent[step]
            except (KeyError, IndexError, TypeError):
                parent = None
                break
        last = steps[-1] if steps else None
        if isinstance(parent, dict) and isinstance(last, str):
            parent.pop(last, None)


def _steps(path: str) -> list[str | int]:
    out: list[str | int] = []
    for part in path.split("."):
        name, _, rest = part.partition("[")
        if name:
            out.append(name)
        while rest:
            idx, _, rest = rest.partition("]")
            out.append(int(idx))
            rest = rest[1:] if rest.startswith("[") else rest
    return out
