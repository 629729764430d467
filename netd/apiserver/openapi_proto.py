"""Encode the OpenAPI v2 document as gnostic protobuf (openapi.v2.Document).

client-go's `OpenAPISchema()` asks /openapi/v2 only for
`application/com.github.proto-openapi.spec.v2@v1.0+protobuf` and cannot read JSON.  kubectl
1.32 uses v3 for explain/apply/validation and reaches v2 only on fallbacks and for
`kubectl explain --output=plaintext-openapiv2`; those work when this encoding is served.

A hand-written wire encoder (no protobuf dependency) covering exactly the message fields
our documents use; field numbers are those of gnostic-models openapiv2/OpenAPIv2.proto.
Vendor extensions travel as NamedAny{name, Any{yaml}}: JSON text is valid YAML, which is
how kube-openapi's proto reader decodes them.
"""
from __future__ import annotations

import json
from typing import Any

_VARINT, _LEN = 0, 2


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _key(field: int, wire: int) -> bytes:
    return _varint(field << 3 | wire)


def _msg(field: int, payload: bytes) -> bytes:
    return _key(field, _LEN) + _varint(len(payload)) + payload


def _str(field: int, value: str | None) -> bytes:
    return _msg(field, value.encode()) if value else b""


def _strs(field: int, values: list[str] | None) -> bytes:
    return b"".join(_msg(field, v.encode()) for v in values or [])


def _bool(field: int, value: bool | None) -> bytes:
    return _key(field, _VARINT) + b"\x01" if value else b""


def _any(value: Any) -> bytes:
    return _str(2, json.dumps(value, separators=(",", ":")))  # Any.yaml


def _extensions(field: int, d: dict[str, Any]) -> bytes:
    return b"".join(_msg(field, _str(1, k) + _msg(2, _any(v)))
                    for k, v in d.items() if k.startswith("x-"))


def schema(d: dict[str, Any]) -> bytes:
    out = [_str(1, d.get("$ref")), _str(2, d.get("format")), _str(4, d.get("description"))]
    if "default" in d:
        out.append(_msg(5, _any(d["default"])))
    out.append(_bool(16, d.get("uniqueItems")))
    out.append(_strs(19, d.get("required")))
    ap = d.get("additionalProperties")
    if isinstance(ap, dict):
        out.append(_msg(21, _msg(1, schema(ap))))
    elif isinstance(ap, bool):
        out.append(_msg(21, _key(2, _VARINT) + (b"\x01" if ap else b"\x00")))
    if "type" in d:
        types = d["type"] if isinstance(d["type"], list) else [d["type"]]
        out.append(_msg(22, _strs(1, types)))
    if "items" in d:
        out.append(_msg(23, _msg(1, schema(d["items"]))))
    out.extend(_msg(24, schema(s)) for s in d.get("allOf", []))
    if d.get("properties"):
        out.append(_msg(25, b"".join(_msg(1, _str(1, k) + _msg(2, schema(v)))
                                     for k, v in d["properties"].items())))
    out.append(_extensions(31, d))
    return b"".join(out)


def _parameter(p: dict[str, Any]) -> bytes:
    if "$ref" in p:
        return _msg(2, _str(1, p["$ref"]))                    # ParametersItem.json_reference
    if p.get("in") == "body":
        body = (_str(1, p.get("description")) + _str(2, p["name"]) + _str(3, "body") +
                _bool(4, p.get("required")) + _msg(5, schema(p.get("schema", {}))))
        return _msg(1, _msg(1, body))                         # Parameter.body_parameter
    if p.get("in") == "path":
        sub = (_bool(1, p.get("required")) + _str(2, "path") + _str(3, p.get("description")) +
               _str(4, p["name"]) + _str(5, p.get("type")) + _str(6, p.get("format")) +
               _bool(19, p.get("uniqueItems")) + _extensions(22, p))
        return _msg(1, _msg(2, _msg(4, sub)))                 # NonBodyParameter.path
    sub = (_bool(1, p.get("required")) + _str(2, "query") + _str(3, p.get("description")) +
           _str(4, p["name"]) + _str(6, p.get("type")) + _str(7, p.get("format")) +
           _bool(20, p.get("uniqueItems")) + _extensions(23, p))
    return _msg(1, _msg(2, _msg(3, sub)))                     # NonBodyParameter.query


def _responses(d: dict[str, Any]) -> bytes:
    out = []
    for code, r in d.items():
        resp = _str(1, r.get("description"))
        if "schema" in r:
            resp += _msg(2, _msg(1, schema(r["schema"])))     # SchemaItem.schema
        out.append(_msg(1, _str(1, code) + _msg(2, _msg(1, resp))))
    return b"".join(out)


def _operation(op: dict[str, Any]) -> bytes:
    return b"".join([
        _strs(1, op.get("tags")), _str(3, op.get("description")),
        _str(5, op.get("operationId")), _strs(6, op.get("produces")),
        _strs(7, op.get("consumes")),
        b"".join(_msg(8, _parameter(p)) for p in op.get("parameters", [])),
        _msg(9, _responses(op.get("responses", {}))), _strs(10, op.get("schemes")),
        _extensions(13, op),
    ])


_METHOD_FIELD = {"get": 2, "put": 3, "post": 4, "delete": 5, "options": 6, "head": 7,
                 "patch": 8}


def _path_item(item: dict[str, Any]) -> bytes:
    out = [_msg(_METHOD_FIELD[m], _operation(item[m]))
           for m in ("get", "put", "post", "delete", "options", "head", "patch") if m in item]
    out.extend(_msg(9, _parameter(p)) for p in item.get("parameters", []))
    return b"".join(out)


def encode_document(doc: dict[str, Any]) -> bytes:
    info = doc.get("info", {})
    out = [_str(1, doc.get("swagger", "2.0")),
           _msg(2, _str(1, info.get("title")) + _str(2, info.get("version")))]
    out.append(_msg(8, b"".join(_msg(2, _str(1, url) + _msg(2, _path_item(item)))
                                for url, item in doc.get("paths", {}).items())))
    out.append(_msg(9, b"".join(_msg(1, _str(1, name) + _msg(2, schema(d)))
                                for name, d in doc.get("definitions", {}).items())))
    for req in doc.get("security", []):
        out.append(_msg(12, b"".join(_msg(1, _str(1, k) + _msg(2, _strs(1, v)))
                                     for k, v in req.items())))
    sec = doc.get("securityDefinitions", {})
    if sec:
        items = b""
        for name, s in sec.items():
            api_key = (_str(1, s.get("type")) + _str(2, s.get("name")) + _str(3, s.get("in")) +
                       _str(4, s.get("description")))
            items += _msg(1, _str(1, name) + _msg(2, _msg(2, api_key)))
        out.append(_msg(13, items))
    return b"".join(out)
