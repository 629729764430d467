"""Request decoding and response encoding: JSON/YAML bodies, lists spliced from the
store's raw bytes, server-side Tables and PartialObjectMetadata, watch event lines."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
import yaml

from netd.api import errors, tables
from netd.api.kinds import ResourceType
from netd.apiserver import protobuf
from netd.store.base import StoredObject

JSON = "application/json"


@dataclass(frozen=True)
class Want:
    """What representation the client asked for in Accept."""

    form: str = "object"             # object | table | meta
    include_object: str = "Metadata"  # for tables: None | Metadata | Object


def negotiate(accept: str, include_object: str | None) -> Want:
    """Pick the first acceptable entry of Accept, as kube-apiserver does."""
    if not accept:
        return Want()
    for entry in accept.split(","):
        fields = [f.strip() for f in entry.split(";")]
        media = fields[0]
        params = dict(f.split("=", 1) for f in fields[1:] if "=" in f)
        if media not in (JSON, "*/*", "application/*", "application/yaml"):
            continue
        as_ = params.get("as")
        if as_ == "Table" and params.get("g") == "meta.k8s.io":
            return Want("table", include_object or "Metadata")
        if as_ in ("PartialObjectMetadata", "PartialObjectMetadataList") and \
                params.get("g") == "meta.k8s.io":
            return Want("meta")
        if as_ is None:
            return Want()
    if "application/vnd.kubernetes.protobuf" in accept:
        raise errors.NotAcceptable("only application/json is served; protobuf is not")
    return Want()


def decode_body(raw: bytes, content_type: str) -> Any:
    if not raw.strip():
        raise errors.BadRequest("the request body is empty")
    media = content_type.split(";")[0].strip().lower()
    if media == "application/vnd.kubernetes.protobuf":
        # kubectl's typed clients (create configmap/namespace/deployment …) send protobuf.
        return protobuf.decode(raw)
    try:
        if media in ("application/yaml", "application/x-yaml", "application/apply-patch+yaml"):
            return yaml.safe_load(raw)
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise errors.BadRequest(f"couldn't get version/kind; json parse error: {exc}") from None
    except yaml.YAMLError as exc:
        raise errors.BadRequest(f"error converting YAML to JSON: {exc}") from None


def encode(obj: Any) -> bytes:
    return orjson.dumps(obj)


def meta_only(obj: dict[str, Any]) -> dict[str, Any]:
    return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
            "metadata": obj.get("metadata", {})}


def object_body(rt: ResourceType, stored: StoredObject, want: Want, now: datetime) -> bytes:
    if want.form == "table":
        return encode(tables.to_table(rt.kind, [stored.obj], now, want.include_object,
                                      resource_version=str(stored.rv)))
    if want.form == "meta":
        return encode(meta_only(stored.obj))
    return stored.raw


def list_body(rt: ResourceType, items: list[StoredObject], rv: int, continue_token: str,
              remaining: int | None, want: Want, now: datetime) -> bytes:
    if want.form == "table":
        return encode(tables.to_table(rt.kind, [i.obj for i in items], now, want.include_object,
                                      resource_version=str(rv), continue_token=continue_token))
    meta: dict[str, Any] = {"resourceVersion": str(rv)}
    if continue_token:
        meta["continue"] = continue_token
        if remaining is not None:
            meta["remainingItemCount"] = remaining
    if want.form == "meta":
        return encode({"kind": "PartialObjectMetadataList", "apiVersion": "meta.k8s.io/v1",
                       "metadata": meta, "items": [meta_only(i.obj) for i in items]})
    # Splice the stored encodings: a 10k-pod list costs a join, not an encode.
    head = encode({"kind": rt.list_kind, "apiVersion": rt.api_version, "metadata": meta})
    return head[:-1] + b',"items":[' + b",".join(i.raw for i in items) + b"]}"


def event_line(rt: ResourceType, typ: str, obj: dict[str, Any], raw: bytes, want: Want,
               now: datetime, headers: bool) -> bytes:
    if want.form == "table":
        table = tables.to_table(rt.kind, [obj], now, want.include_object,
                                no_headers=not headers)
        if not headers:
            # kubectl reuses the last column definitions when a watch Table has none.
            table["columnDefinitions"] = []
        body = encode(table)
    elif want.form == "meta":
        body = encode(meta_only(obj))
    else:
        body = raw
    return b'{"type":"' + typ.encode() + b'","object":' + body + b"}\n"


def status_success(rt: ResourceType, name: str, uid: str) -> bytes:
    return encode({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                   "details": {"name": name, "group": rt.group, "kind": rt.plural,
                               "uid": uid}})
