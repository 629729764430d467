"""Decode `application/vnd.kubernetes.protobuf` request bodies into JSON-shaped objects.

kubectl's typed clients (`kubectl create configmap|namespace|deployment|service|secret`,
`kubectl debug` creating a pod) send protobuf and do not fall back to JSON on a 415, so netd
reads protobuf and hands the rest of the write path the same dict a JSON client would have
sent (`kubectl run`, `expose`, `apply` and drain's evictions send JSON already).
The body is the magic `k8s\\x00` then a `runtime.Unknown` envelope
{typeMeta{apiVersion=1, kind=2}=1, raw=2, contentEncoding=3, contentType=4} whose `raw` is
the typed object (k8s.io/apimachinery pkg/runtime/serializer/protobuf).

The result is what Go's encoding/json writes for the struct gogo-protobuf would have
decoded, so it equals kubectl's own `-o json` of the same object:
- omitempty scalars that arrive with their zero value are dropped (gogo writes every
  non-pointer scalar); pointer scalars keep their zero (`replicas: 0` is meaningful);
- message fields that arrive are always written (Go never omits structs: `status: {}`,
  `resources: {}`), a zero Time as `null` (`creationTimestamp: null`);
- a field that is absent from the bytes stays absent: nothing is invented.
A field number not in the table is an error naming the message and number, never dropped.
"""
from __future__ import annotations

import base64
from datetime import datetime, timedelta, timezone
from typing import Any, NoReturn

import orjson

from netd.api.errors import BadRequest
from netd.api.quantity import canonical_quantity
from netd.apiserver.proto_fields import KINDS, MAP, MESSAGES, PACKAGES, REP

MAGIC = b"k8s\x00"

_VARINT, _I64, _LEN, _I32 = 0, 1, 2, 5
_SCALARS = {"string", "bytes", "bool", "int32", "int64"}
_VARINT_TYPES = {"bool", "int32", "int64"}
# time.Time{} (year 1) as Unix seconds: Go's zero Time, which marshals to JSON null.
_GO_ZERO_SECONDS = -62135596800
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
# Bounds nesting through RawExtension (a protobuf object inside a protobuf object); the
# typed schema itself has no cycles.
_MAX_DEPTH = 8


def decode(body: bytes, *, api_version: str = "", kind: str = "") -> dict[str, Any]:
    """Decode a whole protobuf request body into the object's JSON form.

    `api_version`/`kind` default the envelope's TypeMeta when it leaves them empty, as the
    Go serializer defaults them from the request's resource.
    """
    return _decode(body, api_version, kind, 0)


def full_name(message: str) -> str:
    """`core.v1.Pod` -> `k8s.io.api.core.v1.Pod`, the name Kubernetes' .proto files use."""
    best = max((alias for alias in PACKAGES if message.startswith(alias + ".")),
               key=len, default="")
    return PACKAGES[best] + message[len(best):] if best else message


def decode_message(data: bytes, message: str) -> dict[str, Any]:
    """Decode the bytes of one typed message (no envelope) into its JSON form."""
    return _object(data, message, 0)


def _object(data: bytes, message: str, depth: int) -> dict[str, Any]:
    value = _message(data, message, depth)
    if not isinstance(value, dict):
        raise BadRequest(f"protobuf message {full_name(message)} is not an object")
    return value


def _decode(body: bytes, api_version: str, kind: str, depth: int) -> dict[str, Any]:
    if not body.startswith(MAGIC):
        raise BadRequest("provided data does not appear to be a protobuf message, "
                         "expected prefix [107 56 115 0]")
    if len(body) == len(MAGIC):
        raise BadRequest("empty body")
    raw = b""
    for num, wire, value in _fields(body[len(MAGIC):], "runtime.Unknown"):
        if num == 1:
            type_meta = _expect_len(wire, value, "runtime.Unknown", num)
            for tnum, twire, tvalue in _fields(type_meta, "runtime.TypeMeta"):
                text = _text(_expect_len(twire, tvalue, "runtime.TypeMeta", tnum))
                if tnum == 1:
                    api_version = text or api_version
                elif tnum == 2:
                    kind = text or kind
                else:
                    _unknown("runtime.TypeMeta", tnum, twire)
        elif num == 2:
            raw = _expect_len(wire, value, "runtime.Unknown", num)
        elif num in (3, 4):
            # contentEncoding / contentType: the Go decoder ignores both and reads `raw`
            # as protobuf; so do we.
            _expect_len(wire, value, "runtime.Unknown", num)
        else:
            _unknown("runtime.Unknown", num, wire)
    if not kind:
        raise BadRequest("Object 'Kind' is missing in protobuf body")
    if not api_version:
        raise BadRequest("Object 'apiVersion' is missing in protobuf body")
    message = KINDS.get((api_version, kind))
    if message is None:
        raise BadRequest(f"no kind {kind!r} is registered for protobuf in version {api_version!r}")
    obj: dict[str, Any] = {"kind": kind, "apiVersion": api_version}
    obj.update(_object(raw, message, depth))
    return obj


# --- wire level -----------------------------------------------------------------------------

def _varint(data: bytes, pos: int, message: str) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data):
            raise BadRequest(f"protobuf message {full_name(message)} is truncated")
        b = data[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, pos
        shift += 7
        if shift >= 70:
            raise BadRequest(f"protobuf message {full_name(message)} has an overlong varint")


def _fields(data: bytes, message: str) -> list[tuple[int, int, int | bytes]]:
    """Split a message into (field number, wire type, varint value or payload bytes)."""
    out: list[tuple[int, int, int | bytes]] = []
    pos, end = 0, len(data)
    while pos < end:
        key, pos = _varint(data, pos, message)
        num, wire = key >> 3, key & 7
        if num == 0:
            raise BadRequest(f"protobuf message {full_name(message)} has illegal field number 0")
        value: int | bytes
        if wire == _VARINT:
            value, pos = _varint(data, pos, message)
        elif wire == _LEN:
            size, pos = _varint(data, pos, message)
            if pos + size > end:
                raise BadRequest(f"protobuf message {full_name(message)} is truncated")
            value, pos = data[pos:pos + size], pos + size
        elif wire in (_I64, _I32):
            size = 8 if wire == _I64 else 4
            if pos + size > end:
                raise BadRequest(f"protobuf message {full_name(message)} is truncated")
            value, pos = int.from_bytes(data[pos:pos + size], "little"), pos + size
        else:
            raise BadRequest(f"protobuf message {full_name(message)} field {num} has "
                             f"unsupported wire type {wire}")
        out.append((num, wire, value))
    return out


def _unknown(message: str, num: int, wire: int) -> NoReturn:
    raise BadRequest(f"protobuf message {full_name(message)} has unknown field {num} "
                     f"(wire type {wire}); netd does not know this field and will not drop it")


def _expect_len(wire: int, value: int | bytes, message: str, num: int) -> bytes:
    if wire != _LEN or not isinstance(value, bytes):
        raise BadRequest(f"protobuf message {full_name(message)} field {num}: "
                         f"wire type {wire} where length-delimited data was expected")
    return value


def _expect_varint(wire: int, value: int | bytes, message: str, num: int) -> int:
    if wire != _VARINT or not isinstance(value, int):
        raise BadRequest(f"protobuf message {full_name(message)} field {num}: "
                         f"wire type {wire} where a varint was expected")
    return value


def _text(data: bytes) -> str:
    # proto2 does not validate UTF-8; Go's encoding/json then writes U+FFFD for bad bytes.
    return data.decode("utf-8", errors="replace")


def _int32(v: int) -> int:
    v &= 0xFFFFFFFF
    return v - (1 << 32) if v >= 1 << 31 else v


def _int64(v: int) -> int:
    v &= 0xFFFFFFFFFFFFFFFF
    return v - (1 << 64) if v >= 1 << 63 else v


def _scalar(typ: str, wire: int, value: int | bytes, message: str, num: int) -> Any:
    if typ == "string":
        return _text(_expect_len(wire, value, message, num))
    if typ == "bytes":
        return base64.b64encode(_expect_len(wire, value, message, num)).decode("ascii")
    v = _expect_varint(wire, value, message, num)
    if typ == "bool":
        return v != 0
    if typ == "int32":
        return _int32(v)
    return _int64(v)


def _packed(typ: str, data: bytes, message: str, num: int) -> list[Any]:
    out: list[Any] = []
    pos = 0
    while pos < len(data):
        v, pos = _varint(data, pos, message)
        out.append(_scalar(typ, _VARINT, v, message, num))
    return out


# --- schema level ---------------------------------------------------------------------------

def _message(data: bytes, message: str, depth: int) -> Any:
    special = _SPECIAL.get(message)
    if special is not None:
        return special(data, depth)
    table = MESSAGES.get(message)
    if table is None:
        raise BadRequest(f"protobuf message {full_name(message)} is not supported")
    values: dict[int, Any] = {}
    for num, wire, value in _fields(data, message):
        spec = table.get(num)
        if spec is None:
            _unknown(message, num, wire)
        name, typ, card, _ = spec
        if card == REP:
            items = values.setdefault(num, [])
            if typ in _VARINT_TYPES and wire == _LEN:
                # proto2 writers may pack repeated varints; parsers accept both forms.
                items.extend(_packed(typ, _expect_len(wire, value, message, num), message, num))
            elif typ in _SCALARS:
                items.append(_scalar(typ, wire, value, message, num))
            else:
                items.append(_message(_expect_len(wire, value, message, num), typ, depth))
        elif card == MAP:
            entry = f"{message}.{name[:1].upper()}{name[1:]}Entry"
            key, item = _map_entry(_expect_len(wire, value, message, num), typ, entry, depth)
            values.setdefault(num, {})[key] = item
        elif typ in _SCALARS:
            values[num] = _scalar(typ, wire, value, message, num)
        else:
            # A message field seen twice is merged, and decoding the concatenated bytes is
            # exactly protobuf's merge.
            values[num] = values.get(num, b"") + _expect_len(wire, value, message, num)
    out: dict[str, Any] = {}
    for num, (name, typ, card, flags) in table.items():
        if num not in values:
            continue
        v = values[num]
        if card != REP and card != MAP and typ not in _SCALARS:
            v = _message(v, typ, depth)
            if "i" in flags:
                # Go's JSON promotes an embedded struct's fields into the parent object (no
                # name in the table collides, so promotion order cannot matter).
                out.update(v)
                continue
        elif not v and "o" in flags and "p" not in flags and v is not None:
            # omitempty zero ("" / 0 / false / empty list or map): Go's JSON leaves it out.
            continue
        out[name] = v
    return out


def _map_entry(data: bytes, typ: str, entry: str, depth: int) -> tuple[str, Any]:
    key = ""
    value: Any = None
    raw_message = b""
    for num, wire, v in _fields(data, entry):
        if num == 1:
            key = _text(_expect_len(wire, v, entry, num))
        elif num == 2:
            if typ in _SCALARS:
                value = _scalar(typ, wire, v, entry, num)
            else:
                raw_message += _expect_len(wire, v, entry, num)
        else:
            _unknown(entry, num, wire)
    if typ not in _SCALARS:
        value = _message(raw_message, typ, depth)
    elif value is None:
        # A map value left out of the entry decodes to its zero value in Go.
        value = False if typ == "bool" else 0 if typ in _VARINT_TYPES else ""
    return key, value


def _timestamp(data: bytes, message: str) -> tuple[int, int]:
    seconds = nanos = 0
    for num, wire, v in _fields(data, message):
        if num == 1:
            seconds = _int64(_expect_varint(wire, v, message, num))
        elif num == 2:
            nanos = _int32(_expect_varint(wire, v, message, num))
        else:
            _unknown(message, num, wire)
    return seconds, nanos


def _utc(seconds: int, micros: int, message: str) -> datetime:
    try:
        return _EPOCH + timedelta(seconds=seconds, microseconds=micros)
    except OverflowError:
        raise BadRequest(f"protobuf message {full_name(message)}: time out of range") from None


def _time(data: bytes, depth: int) -> str | None:
    # metav1.Time keeps whole seconds only (its JSON form does) and writes the zero Time,
    # which gogo sends as an empty message, as null.
    if not data:
        return None
    seconds, _ = _timestamp(data, "meta.v1.Time")
    if seconds == _GO_ZERO_SECONDS:
        return None
    t = _utc(seconds, 0, "meta.v1.Time")
    return (f"{t.year:04d}-{t.month:02d}-{t.day:02d}T"
            f"{t.hour:02d}:{t.minute:02d}:{t.second:02d}Z")


def _micro_time(data: bytes, depth: int) -> str | None:
    if not data:
        return None
    seconds, nanos = _timestamp(data, "meta.v1.MicroTime")
    micros = int(nanos / 1000)  # Duration.Truncate(Microsecond) rounds toward zero
    if seconds == _GO_ZERO_SECONDS and micros == 0:
        return None
    t = _utc(seconds, micros, "meta.v1.MicroTime")
    return (f"{t.year:04d}-{t.month:02d}-{t.day:02d}T"
            f"{t.hour:02d}:{t.minute:02d}:{t.second:02d}.{t.microsecond:06d}Z")


def _only_bytes(data: bytes, message: str) -> bytes | None:
    """The single `bytes` field 1 of FieldsV1 / RawExtension (None when absent)."""
    raw: bytes | None = None
    for num, wire, v in _fields(data, message):
        if num != 1:
            _unknown(message, num, wire)
        raw = _expect_len(wire, v, message, num)
    return raw


def _json_bytes(raw: bytes, message: str) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"protobuf message {full_name(message)} does not hold JSON: "
                         f"{exc}") from None


def _fields_v1(data: bytes, depth: int) -> Any:
    raw = _only_bytes(data, "meta.v1.FieldsV1")
    return None if raw is None else _json_bytes(raw, "meta.v1.FieldsV1")


def _raw_extension(data: bytes, depth: int) -> Any:
    # RawExtension marshals its bytes verbatim: JSON in practice.  A nested protobuf
    # object is decoded too rather than passed on as bytes no JSON reader could use.
    raw = _only_bytes(data, "runtime.RawExtension")
    if raw is None:
        return None
    if raw.startswith(MAGIC):
        if depth >= _MAX_DEPTH:
            raise BadRequest("protobuf objects are nested too deeply")
        return _decode(raw, "", "", depth + 1)
    return _json_bytes(raw, "runtime.RawExtension")


def _quantity(data: bytes, depth: int) -> str:
    text = "0"  # the zero Quantity prints as "0"
    for num, wire, v in _fields(data, "resource.Quantity"):
        if num != 1:
            _unknown("resource.Quantity", num, wire)
        text = _text(_expect_len(wire, v, "resource.Quantity", num))
    # resource.Quantity re-parses the string and prints it canonically.
    try:
        return canonical_quantity(text)
    except ValueError as exc:
        raise BadRequest(f"quantity {text!r}: {exc}") from None


def _int_or_string(data: bytes, depth: int) -> int | str:
    kind, int_val, str_val = 0, 0, ""
    for num, wire, v in _fields(data, "intstr.IntOrString"):
        if num == 1:
            kind = _int64(_expect_varint(wire, v, "intstr.IntOrString", num))
        elif num == 2:
            int_val = _int32(_expect_varint(wire, v, "intstr.IntOrString", num))
        elif num == 3:
            str_val = _text(_expect_len(wire, v, "intstr.IntOrString", num))
        else:
            _unknown("intstr.IntOrString", num, wire)
    if kind == 0:
        return int_val
    if kind == 1:
        return str_val
    raise BadRequest(f"impossible IntOrString.Type {kind}")


_SPECIAL = {
    "meta.v1.Time": _time,
    "meta.v1.MicroTime": _micro_time,
    "meta.v1.FieldsV1": _fields_v1,
    "runtime.RawExtension": _raw_extension,
    "resource.Quantity": _quantity,
    "intstr.IntOrString": _int_or_string,
}
