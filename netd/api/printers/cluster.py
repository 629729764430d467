"""Printers for cluster-level and bookkeeping kinds: Namespace, Node, Event, ConfigMap,
Lease (kube-apiserver 1.32 columns)."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from netd.api.printers import descriptions as d
from netd.api.printers.common import (
    NONE, UNKNOWN, Column, Printer, age, age_column, as_dict, as_int, as_list, as_str, get,
    name_column, name_of, parse_time, since, wide,
)

NAMESPACE_COLUMNS = (
    name_column(),
    Column("Status", "string", d.NAMESPACE_STATUS),
    age_column(),
)


def _namespace_cells(ns: dict[str, Any], now: datetime) -> list[Any]:
    return [name_of(ns), as_str(get(ns, "status", "phase")), age(ns, now)]


NODE_COLUMNS = (
    name_column(),
    Column("Status", "string", d.NODE_STATUS),
    Column("Roles", "string", d.NODE_ROLES),
    age_column(),
    Column("Version", "string", d.NODE_KUBELET_VERSION),
    wide("Internal-IP", d.NODE_ADDRESSES),
    wide("External-IP", d.NODE_ADDRESSES),
    wide("OS-Image", d.NODE_OS_IMAGE),
    wide("Kernel-Version", d.NODE_KERNEL),
    wide("Container-Runtime", d.NODE_RUNTIME),
)

# Labels kubectl reads roles from: node-role.kubernetes.io/<role> and kubernetes.io/role.
NODE_ROLE_PREFIX = "node-role.kubernetes.io/"
NODE_ROLE_LABEL = "kubernetes.io/role"


def node_status(node: dict[str, Any]) -> str:
    """Ready / NotReady / Unknown, plus SchedulingDisabled when cordoned."""
    ready = None
    # The printer builds a map by type, so the last Ready condition wins.
    for cond in as_list(get(node, "status", "conditions")):
        cond = as_dict(cond)
        if cond.get("type") == "Ready":
            ready = cond
    parts = ["Unknown"] if ready is None else (
        ["Ready"] if ready.get("status") == "True" else ["NotReady"])
    if get(node, "spec", "unschedulable") is True:
        parts.append("SchedulingDisabled")
    return ",".join(parts)


def node_roles(node: dict[str, Any]) -> str:
    roles: set[str] = set()
    for key, value in as_dict(get(node, "metadata", "labels")).items():
        if key.startswith(NODE_ROLE_PREFIX):
            role = key[len(NODE_ROLE_PREFIX):]
            if role:
                roles.add(role)
        elif key == NODE_ROLE_LABEL and value:
            roles.add(str(value))
    return ",".join(sorted(roles)) or NONE


def _node_address(node: dict[str, Any], kind: str) -> str:
    for addr in as_list(get(node, "status", "addresses")):
        addr = as_dict(addr)
        if addr.get("type") == kind:
            return as_str(addr.get("address"))
    return NONE


def _node_cells(node: dict[str, Any], now: datetime) -> list[Any]:
    info = as_dict(get(node, "status", "nodeInfo"))
    return [name_of(node), node_status(node), node_roles(node), age(node, now),
            as_str(info.get("kubeletVersion")),
            _node_address(node, "InternalIP"), _node_address(node, "ExternalIP"),
            as_str(info.get("osImage")) or UNKNOWN, as_str(info.get("kernelVersion")) or UNKNOWN,
            as_str(info.get("containerRuntimeVersion")) or UNKNOWN]


EVENT_COLUMNS = (
    Column("Last Seen", "string", d.EV_LAST),
    Column("Type", "string", d.EV_TYPE),
    Column("Reason", "string", d.EV_REASON),
    Column("Object", "string", d.EV_OBJECT),
    wide("Subobject", d.EV_FIELD_PATH),
    wide("Source", d.EV_SOURCE),
    Column("Message", "string", d.EV_MESSAGE),
    wide("First Seen", d.EV_FIRST),
    wide("Count", d.EV_COUNT),
    Column("Name", "string", d.META_NAME, 1, "name"),
)


def _event_times(ev: dict[str, Any], now: datetime) -> tuple[str, str, int]:
    """(last seen, first seen, count): core/v1 events from the old recorder carry
    first/lastTimestamp and count; events.k8s.io-style ones carry eventTime and series."""
    first_ts = ev.get("firstTimestamp")
    first = since(first_ts, now) if parse_time(first_ts) else since(ev.get("eventTime"), now)
    last_ts = ev.get("lastTimestamp")
    last = since(last_ts, now) if parse_time(last_ts) else first
    count = as_int(ev.get("count"))
    series = ev.get("series")
    if isinstance(series, dict):
        last = since(series.get("lastObservedTime"), now)
        count = as_int(series.get("count"))
    elif count == 0:
        # Singleton events don't set a count in the new API.
        count = 1
    return last, first, count


def event_source(ev: dict[str, Any]) -> str:
    """formatEventSource: component[, host], falling back to reportingController/Instance."""
    component = as_str(get(ev, "source", "component")) or as_str(ev.get("reportingComponent"))
    host = as_str(get(ev, "source", "host")) or as_str(ev.get("reportingInstance"))
    return f"{component}, {host}" if host else component


def _event_cells(ev: dict[str, Any], now: datetime) -> list[Any]:
    last, first, count = _event_times(ev, now)
    involved = as_dict(ev.get("involvedObject"))
    kind = as_str(involved.get("kind")).lower()
    name = as_str(involved.get("name"))
    target = f"{kind}/{name}" if name else kind
    return [last, as_str(ev.get("type")), as_str(ev.get("reason")), target,
            as_str(involved.get("fieldPath")), event_source(ev),
            as_str(ev.get("message")).strip(), first, count, name_of(ev)]


CONFIGMAP_COLUMNS = (
    name_column(),
    Column("Data", "string", d.CM_DATA),
    age_column(),
)


def _configmap_cells(cm: dict[str, Any], now: datetime) -> list[Any]:
    count = len(as_dict(cm.get("data"))) + len(as_dict(cm.get("binaryData")))
    return [name_of(cm), count, age(cm, now)]


LEASE_COLUMNS = (
    name_column(),
    Column("Holder", "string", d.LEASE_HOLDER),
    age_column(),
)


def _lease_cells(lease: dict[str, Any], now: datetime) -> list[Any]:
    return [name_of(lease), as_str(get(lease, "spec", "holderIdentity")), age(lease, now)]


PRINTERS = {
    "Namespace": Printer(NAMESPACE_COLUMNS, _namespace_cells),
    "Node": Printer(NODE_COLUMNS, _node_cells),
    "Event": Printer(EVENT_COLUMNS, _event_cells),
    "ConfigMap": Printer(CONFIGMAP_COLUMNS, _configmap_cells),
    "Lease": Printer(LEASE_COLUMNS, _lease_cells),
}
