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
    _walk(_Checks.of(sch), name, obj, [], out)
    return out


# Every write is checked (Ignore and Warn prune too), so the walk is compiled: each
# type's fields map to what their values need (nothing, a list, a map, a struct), and
# a path string is built only for an unknown field.
_SCALAR, _LIST, _MAP, _STRUCT = 0, 1, 2, 3
Node = tuple[int, Any]      # (_SCALAR, None) | (_LIST|_MAP, Node) | (_STRUCT, type name)


class _Checks:
    _by_schema: dict[int, tuple[Schema, _Checks]] = {}

    def __init__(self, sch: Schema) -> None:
        self.sch = sch
        self.types: dict[str, dict[str, Node] | None] = {}

    @classmethod
    def of(cls, sch: Schema) -> _Checks:
        hit = cls._by_schema.get(id(sch))
        if hit is None or hit[0] is not sch:
            hit = cls._by_schema[id(sch)] = (sch, cls(sch))
        return hit[1]

    def fields(self, type_name: str) -> dict[str, Node] | None:
        """None: nothing inside is checked (unknown or special type)."""
        try:
            return self.types[type_name]
        except KeyError:
            td = self.sch.types.get(type_name)
            fields = None if td is None or td.special else {
                key: _compile(f.type) for key, f in td.fields.items()}
            self.types[type_name] = fields
            return fields


def _compile(expr: str) -> Node:
    if expr.startswith("[]"):
        inner = _compile(element(expr))
        return (_SCALAR, None) if inner[0] == _SCALAR else (_LIST, inner)
    if expr.startswith("{}"):
        # Only maps of structs are looked into (labels, data and the like are free-form).
        inner_expr = element(expr)
        return (_MAP, (_STRUCT, inner_expr)) if is_ref(inner_expr) else (_SCALAR, None)
    if is_ref(expr):
        return (_STRUCT, expr)
    return (_SCALAR, None)


def _walk(checks: _Checks, type_name: str, obj: dict[str, Any], stack: list[Any],
          out: list[str]) -> None:
    fields = checks.fields(type_name)
    if fields is None:
        return
    for key, value in obj.items():
        node = fields.get(key)
        if node is None:
            out.append(_path(stack, key))
        elif node[0] != _SCALAR and value is not None:
            stack.append(key)
            _value(checks, node, value, stack, out)
            stack.pop()


def _value(checks: _Checks, node: Node, value: Any, stack: list[Any],
           out: list[str]) -> None:
    kind, arg = node
    if kind == _STRUCT:
        if isinstance(value, dict):
            _walk(checks, arg, value, stack, out)
    elif kind == _LIST:
        if isinstance(value, list):
            for i, item in enumerate(value):
                if item is not None:
                    stack.append(i)
                    _value(checks, arg, item, stack, out)
                    stack.pop()
    elif kind == _MAP:
        if isinstance(value, dict):
            for k, item in value.items():
                if item is not None:
                    stack.append((k,))
                    _value(checks, arg, item, stack, out)
                    stack.pop()


def _path(stack: list[Any], key: str) -> str:
    """kube-apiserver's spelling: `spec.containers[0].imagee`, `data[k].x`."""
    path = ""
    for step in stack:
        if isinstance(step, str):
            path = f"{path}.{step}" if path else step
        elif isinstance(step, int):
            path += f"[{step}]"
        else:
            path += f"[{step[0]}]"
    return f"{path}.{key}" if path else key


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
