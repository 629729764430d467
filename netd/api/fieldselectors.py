"""Field selectors (`?fieldSelector=`), as k8s.io/apimachinery/pkg/fields parses them, and
the field labels each kind supports (the registries' GetAttrs and the field-label
conversion functions). Re-exported by netd.api.selectors.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from netd.api import errors


def escape_field_value(s: str) -> str:
    return s.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=")


def _unescape_field_value(s: str) -> str:
    if not any(c in s for c in "\\,="):
        return s
    out: list[str] = []
    slash = False
    for c in s:
        if slash:
            if c not in "\\,=":
                raise errors.BadRequest("invalid field selector: invalid escape sequence: \\" + c)
            out.append(c)
            slash = False
        elif c == "\\":
            slash = True
        elif c in ",=":
            # Go prints the rune with %v, i.e. its code point.
            raise errors.BadRequest("invalid field selector: unescaped character in value: "
                                    f"{ord(c)}")
        else:
            out.append(c)
    if slash:
        raise errors.BadRequest("invalid field selector: invalid escape sequence: \\")
    return "".join(out)


@dataclass(frozen=True)
class FieldTerm:
    field: str
    op: str        # "=" or "!=" ("==" is parsed as "=")
    value: str

    def matches(self, fields: dict[str, str]) -> bool:
        have = fields.get(self.field, "")
        return have == self.value if self.op == "=" else have != self.value

    def __str__(self) -> str:
        return f"{self.field}{self.op}{escape_field_value(self.value)}"


@dataclass(frozen=True)
class FieldSelector:
    terms: tuple[FieldTerm, ...] = field(default_factory=tuple)

    def matches(self, fields: dict[str, str]) -> bool:
        return all(t.matches(fields) for t in self.terms)

    def empty(self) -> bool:
        return not self.terms

    def requires_exact_match(self, name: str) -> str | None:
        for t in self.terms:
            if t.field == name and t.op == "=":
                return t.value
        return None

    def __str__(self) -> str:
        return ",".join(str(t) for t in self.terms)


def _split_terms(s: str) -> list[str]:
    if not s:
        return []
    terms, start, slash = [], 0, False
    for i, c in enumerate(s):
        if slash:
            slash = False
        elif c == "\\":
            slash = True
        elif c == ",":
            terms.append(s[start:i])
            start = i + 1
    terms.append(s[start:])
    return terms


def parse_field_selector(s: str) -> FieldSelector:
    """fields.ParseSelector: `a=b,c!=d`, `a==b`; `\\`, `,` and `=` in values escaped by `\\`."""
    terms: list[FieldTerm] = []
    for part in sorted(_split_terms(s)):
        if not part:
            continue
        for i in range(len(part)):
            op = next((o for o in ("!=", "==", "=") if part.startswith(o, i)), None)
            if op is not None:
                lhs, rhs = part[:i], part[i + len(op):]
                break
        else:
            raise errors.BadRequest(f"invalid selector: '{s}'; can't understand '{part}'")
        terms.append(FieldTerm(lhs, "!=" if op == "!=" else "=", _unescape_field_value(rhs)))
    return FieldSelector(tuple(terms))


def _s(v: Any) -> str:
    return "" if v is None else str(v)


def _go_bool(v: Any) -> str:
    return "true" if v is True else "false"


def _get(obj: dict[str, Any], *path: str) -> Any:
    cur: Any = obj
    for p in path:
        if not isinstance(cur, dict):
            return None
        cur = cur.get(p)
    return cur


_META = ("metadata.name", "metadata.namespace")
# Field labels each kind's conversion function accepts (pkg/apis/core/v1/conversion.go).
# Kinds absent here use runtime.DefaultMetaV1FieldSelectorConversion; apps/v1 registers
# none, so e.g. ReplicaSet's status.replicas is stored but not selectable.
_SUPPORTED: dict[str, tuple[str, ...]] = {
    "Pod": _META + ("spec.nodeName", "spec.restartPolicy", "spec.schedulerName",
                    "spec.serviceAccountName", "spec.hostNetwork", "status.phase",
                    "status.podIP", "status.podIPs", "status.nominatedNodeName"),
    "Node": ("metadata.name", "spec.unschedulable"),
    "ReplicationController": _META + ("status.replicas",),
    "Event": ("involvedObject.kind", "involvedObject.namespace", "involvedObject.name",
              "involvedObject.uid", "involvedObject.apiVersion",
              "involvedObject.resourceVersion", "involvedObject.fieldPath", "reason",
              "reportingComponent", "source", "type") + _META,
    "Namespace": ("status.phase", "metadata.name"),
    "Secret": ("type",) + _META,
    "Service": _META + ("spec.clusterIP", "spec.type"),
}
# Old clients' aliases the conversion rewrites (v1 `spec.host` predates spec.nodeName).
_ALIASES: dict[str, dict[str, str]] = {"Pod": {"spec.host": "spec.nodeName"}}
_CLUSTER_SCOPED = {"Namespace", "Node", "PersistentVolume", "StorageClass"}


def object_fields(kind: str, obj: dict[str, Any]) -> dict[str, str]:
    """The fields.Set the registry's GetAttrs builds for `obj` (values as Go formats them)."""
    meta = obj.get("metadata") or {}
    out = {"metadata.name": _s(meta.get("name"))}
    if kind not in _CLUSTER_SCOPED:
        out["metadata.namespace"] = _s(meta.get("namespace"))
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    if kind == "Pod":
        pod_ips = status.get("podIPs") or []
        first = pod_ips[0].get("ip") if pod_ips and isinstance(pod_ips[0], dict) else None
        out.update({
            "spec.nodeName": _s(spec.get("nodeName")),
            # The v1 alias check_field_selector rewrites; present so callers that ignore
            # the rewritten selector still match.
            "spec.host": _s(spec.get("nodeName")),
            "spec.restartPolicy": _s(spec.get("restartPolicy")),
            "spec.schedulerName": _s(spec.get("schedulerName")),
            "spec.serviceAccountName": _s(spec.get("serviceAccountName")),
            "spec.hostNetwork": _go_bool(spec.get("hostNetwork")),
            "status.phase": _s(status.get("phase")),
            "status.podIP": _s(first if first is not None else status.get("podIP")),
            "status.nominatedNodeName": _s(status.get("nominatedNodeName")),
        })
    elif kind == "Event":
        inv = obj.get("involvedObject") or {}
        source = _s(_get(obj, "source", "component")) or _s(obj.get("reportingComponent"))
        for f in ("kind", "namespace", "name", "uid", "apiVersion", "resourceVersion",
                  "fieldPath"):
            out[f"involvedObject.{f}"] = _s(inv.get(f))
        out.update({"reason": _s(obj.get("reason")),
                    "reportingComponent": _s(obj.get("reportingComponent")),
                    "source": source, "type": _s(obj.get("type"))})
    elif kind == "Namespace":
        out["status.phase"] = _s(status.get("phase"))
    elif kind == "Node":
        out["spec.unschedulable"] = _go_bool(spec.get("unschedulable"))
    elif kind in ("ReplicaSet", "ReplicationController"):
        out["status.replicas"] = str(status.get("replicas") or 0)
    elif kind == "Service":
        out["spec.clusterIP"] = _s(spec.get("clusterIP"))
        out["spec.type"] = _s(spec.get("type"))
    elif kind == "Secret":
        out["type"] = _s(obj.get("type"))
    return out


def check_field_selector(kind: str, sel: FieldSelector) -> FieldSelector:
    """Reject field labels `kind` does not support, as kube-apiserver does (400).

    Returns the selector with legacy aliases rewritten (Pod `spec.host`)."""
    supported = _SUPPORTED.get(kind)
    aliases = _ALIASES.get(kind, {})
    terms: list[FieldTerm] = []
    for t in sel.terms:
        name = aliases.get(t.field, t.field)
        if supported is None:
            if name not in _META:
                raise errors.BadRequest(f'"{t.field}" is not a known field selector: only '
                                        '"metadata.name", "metadata.namespace"')
        elif name not in supported:
            raise errors.BadRequest(f"field label not supported: {t.field}")
        terms.append(FieldTerm(name, t.op, t.value))
    return FieldSelector(tuple(terms))
