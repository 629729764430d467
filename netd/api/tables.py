"""Server-side Table output (meta.k8s.io/v1 Table) for every served kind.

kubectl asks for `Accept: application/json;as=Table;v=v1;g=meta.k8s.io` and prints the
server's columns verbatim, so `kubectl get` looks like a real cluster's only if these
columns and cells match kube-apiserver's printers (pkg/printers/internalversion, 1.32).
The per-kind printers live in netd.api.printers; this module is the public face.

Compatibility decisions:
- Rows always carry the -o wide cells, because kube-apiserver generates tables with
  Wide=true and kubectl itself hides columns whose priority is above 0.
- Kinds without a printer get the apiserver's default table (Name, "Created At" as an
  RFC3339 date), which kubectl shows as NAME AGE.
- includeObject defaults to Metadata (PartialObjectMetadata), as the apiserver does.

Pure: `now` is passed in; nothing here reads a clock or does I/O.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from netd.api.errors import BadRequest
from netd.api.kinds import RESOURCES
from netd.api.printers import PRINTERS, descriptions
from netd.api.printers.common import (
    Column, Printer, as_dict, as_str, get, human_duration as _human_duration, name_column,
    name_of, rfc3339,
)

TABLE_API_VERSION = "meta.k8s.io/v1"
INCLUDE_NONE = "None"
INCLUDE_METADATA = "Metadata"
INCLUDE_OBJECT = "Object"
INCLUDE_VALUES = (INCLUDE_NONE, INCLUDE_METADATA, INCLUDE_OBJECT)


def _default_cells(obj: dict[str, Any], now: datetime) -> list[Any]:
    return [name_of(obj), rfc3339(get(obj, "metadata", "creationTimestamp"))]


# k8s.io/apiserver/pkg/registry/rest defaultTableConvertor.
DEFAULT_PRINTER = Printer(
    (name_column(), Column("Created At", "date", descriptions.META_CREATED)),
    _default_cells,
)

# apiVersion by kind, to complete objects returned with includeObject=Object.
_API_VERSIONS = {rt.kind: rt.api_version for rt in RESOURCES}


def human_duration(d: timedelta) -> str:
    """apimachinery duration.HumanDuration ("5s", "3m20s", "2d5h", "<invalid>", ...)."""
    return _human_duration(d)


def printer_for(kind: str) -> Printer:
    return PRINTERS.get(kind, DEFAULT_PRINTER)


def has_printer(kind: str) -> bool:
    """Whether `kind` has its own columns (False: the default NAME/Created At table)."""
    return kind in PRINTERS


def column_definitions(kind: str) -> list[dict[str, Any]]:
    """meta.k8s.io/v1 TableColumnDefinition dicts; priority 1 = only with -o wide."""
    return [col.as_dict() for col in printer_for(kind).columns]


def row_cells(kind: str, obj: dict[str, Any], now: datetime) -> list[Any]:
    """The cells of one object's row, wide columns included (strings, ints, bools)."""
    return printer_for(kind).cells(obj, now)


def _partial_metadata(obj: dict[str, Any]) -> dict[str, Any]:
    # meta.AsPartialObjectMetadata keeps the whole ObjectMeta. The copy is shallow:
    # the table shares nested values with the input and must be treated as read-only.
    return {"kind": "PartialObjectMetadata", "apiVersion": TABLE_API_VERSION,
            "metadata": dict(as_dict(obj.get("metadata")))}


def _full_object(kind: str, obj: dict[str, Any]) -> dict[str, Any]:
    # Stored objects normally carry their type; fill it in if not, as the apiserver
    # always encodes the versioned object with apiVersion and kind.
    if as_str(obj.get("apiVersion")) and as_str(obj.get("kind")):
        return obj
    full = dict(obj)
    if not as_str(full.get("kind")):
        full["kind"] = kind
    if not as_str(full.get("apiVersion")) and kind in _API_VERSIONS:
        full["apiVersion"] = _API_VERSIONS[kind]
    return full


def _row_object(kind: str, obj: dict[str, Any], include_object: str) -> dict[str, Any] | None:
    if include_object == INCLUDE_NONE:
        return None
    if include_object == INCLUDE_OBJECT:
        return _full_object(kind, obj)
    return _partial_metadata(obj)


def check_include_object(value: str) -> str:
    """Normalise a TableOptions includeObject value; "" means Metadata."""
    if value == "":
        return INCLUDE_METADATA
    if value not in INCLUDE_VALUES:
        raise BadRequest(f'unrecognized includeObject value: "{value}"')
    return value


def to_table(kind: str, objs: list[dict[str, Any]], now: datetime,
             include_object: str = INCLUDE_METADATA, resource_version: str = "",
             continue_token: str = "", no_headers: bool = False,
             remaining_item_count: int | None = None) -> dict[str, Any]:
    """A complete meta.k8s.io/v1 Table for `objs` (one object for a GET, the items of
    a list otherwise). Raises BadRequest for an unknown include_object."""
    include = check_include_object(include_object)
    printer = printer_for(kind)
    rows: list[dict[str, Any]] = []
    for obj in objs:
        row: dict[str, Any] = {"cells": printer.cells(obj, now)}
        if printer.conditions is not None:
            conditions = printer.conditions(obj)
            if conditions:
                row["conditions"] = conditions
        row["object"] = _row_object(kind, obj, include)
        rows.append(row)
    metadata: dict[str, Any] = {}
    if resource_version:
        metadata["resourceVersion"] = resource_version
    if continue_token:
        metadata["continue"] = continue_token
    if remaining_item_count is not None:
        metadata["remainingItemCount"] = remaining_item_count
    return {
        "kind": "Table",
        "apiVersion": TABLE_API_VERSION,
        "metadata": metadata,
        # TableOptions.noHeaders drops the column definitions (used by watch events
        # after the first and by `kubectl get --no-headers`).
        "columnDefinitions": [] if no_headers else column_definitions(kind),
        "rows": rows,
    }
