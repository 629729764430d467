"""Printers for the workload controllers: ReplicationController, ReplicaSet, Deployment,
StatefulSet, DaemonSet and their ControllerRevisions (kube-apiserver 1.32 columns)."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from netd.api.printers import descriptions as d
from netd.api.printers.common import (
    NONE, Column, Printer, age, age_column, as_dict, as_int, as_list, as_str,
    format_label_selector, format_labels, get, layout_containers, name_column, name_of,
    selector_string, wide,
)

# Defaulting sets spec.replicas to 1 before storage (the internal type is not a
# pointer); an object written without it prints as the default it will get.
DEFAULT_REPLICAS = 1


def _replicas(obj: dict[str, Any]) -> int:
    return as_int(get(obj, "spec", "replicas"), DEFAULT_REPLICAS)


def _status(obj: dict[str, Any], key: str) -> int:
    return as_int(get(obj, "status", key))


def _template_containers(obj: dict[str, Any]) -> tuple[str, str]:
    return layout_containers(get(obj, "spec", "template", "spec", "containers"))


def _template_columns(selector_doc: str | None) -> tuple[Column, ...]:
    cols = [wide("Containers", d.TEMPLATE_CONTAINERS), wide("Images", d.TEMPLATE_IMAGES)]
    if selector_doc is not None:
        cols.append(wide("Selector", selector_doc))
    return tuple(cols)


RC_COLUMNS = (
    name_column(),
    Column("Desired", "integer", d.RC_SPEC_REPLICAS),
    Column("Current", "integer", d.RC_STATUS_REPLICAS),
    Column("Ready", "integer", d.RC_READY),
    age_column(),
) + _template_columns(d.RC_SELECTOR)


def _rc_cells(rc: dict[str, Any], now: datetime) -> list[Any]:
    names, images = _template_containers(rc)
    # An RC selector is a plain map, printed like labels.
    return [name_of(rc), _replicas(rc), _status(rc, "replicas"), _status(rc, "readyReplicas"),
            age(rc, now), names, images, format_labels(get(rc, "spec", "selector"))]


RS_COLUMNS = (
    name_column(),
    Column("Desired", "integer", d.RS_SPEC_REPLICAS),
    Column("Current", "integer", d.RS_STATUS_REPLICAS),
    Column("Ready", "integer", d.RS_READY),
    age_column(),
) + _template_columns(d.RS_SELECTOR)


def _rs_cells(rs: dict[str, Any], now: datetime) -> list[Any]:
    names, images = _template_containers(rs)
    return [name_of(rs), _replicas(rs), _status(rs, "replicas"), _status(rs, "readyReplicas"),
            age(rs, now), names, images, format_label_selector(get(rs, "spec", "selector"))]


DEPLOYMENT_COLUMNS = (
    name_column(),
    Column("Ready", "string", d.READY_PODS),
    # Declared "string" by the printer although the cells are integers.
    Column("Up-to-date", "string", d.DEPLOY_UPDATED),
    Column("Available", "string", d.DEPLOY_AVAILABLE),
    age_column(),
) + _template_columns(d.DEPLOY_SELECTOR)


def _deployment_cells(dep: dict[str, Any], now: datetime) -> list[Any]:
    names, images = _template_containers(dep)
    # printDeployment uses the raw selector string: "" (not "<none>") when empty.
    try:
        selector = selector_string(get(dep, "spec", "selector"))
    except ValueError:
        selector = "<invalid>"
    return [name_of(dep), f"{_status(dep, 'readyReplicas')}/{_replicas(dep)}",
            _status(dep, "updatedReplicas"), _status(dep, "availableReplicas"), age(dep, now),
            names, images, selector]


STATEFULSET_COLUMNS = (
    name_column(),
    Column("Ready", "string", d.READY_PODS),
    age_column(),
) + _template_columns(None)


def _statefulset_cells(sts: dict[str, Any], now: datetime) -> list[Any]:
    names, images = _template_containers(sts)
    return [name_of(sts), f"{_status(sts, 'readyReplicas')}/{_replicas(sts)}", age(sts, now),
            names, images]


DAEMONSET_COLUMNS = (
    name_column(),
    Column("Desired", "integer", d.DS_DESIRED),
    Column("Current", "integer", d.DS_CURRENT),
    Column("Ready", "integer", d.DS_READY),
    Column("Up-to-date", "integer", d.DS_UPDATED),
    Column("Available", "integer", d.DS_AVAILABLE),
    Column("Node Selector", "string", d.POD_NODE_SELECTOR),
    age_column(),
) + _template_columns(d.DS_SELECTOR)


def _daemonset_cells(ds: dict[str, Any], now: datetime) -> list[Any]:
    names, images = _template_containers(ds)
    return [name_of(ds), _status(ds, "desiredNumberScheduled"),
            _status(ds, "currentNumberScheduled"), _status(ds, "numberReady"),
            _status(ds, "updatedNumberScheduled"), _status(ds, "numberAvailable"),
            format_labels(get(ds, "spec", "template", "spec", "nodeSelector")), age(ds, now),
            names, images, format_label_selector(get(ds, "spec", "selector"))]


CONTROLLER_REVISION_COLUMNS = (
    name_column(),
    Column("Controller", "string", d.CR_CONTROLLER),
    Column("Revision", "string", d.CR_REVISION),
    age_column(),
)


def controller_name(obj: dict[str, Any]) -> str:
    """The controller ownerReference as formatResourceName prints it: kind.group/name
    lower-cased ("daemonset.apps/web"), core kinds without a group; "<none>" if absent."""
    for ref in as_list(get(obj, "metadata", "ownerReferences")):
        ref = as_dict(ref)
        if ref.get("controller") is not True:
            continue
        api_version = as_str(ref.get("apiVersion"))
        group = api_version.rpartition("/")[0] if "/" in api_version else ""
        kind = as_str(ref.get("kind"))
        name = as_str(ref.get("name"))
        if not kind and not group:
            return name
        group_kind = f"{kind}.{group}" if group else kind
        return f"{group_kind.lower()}/{name}"
    return NONE


def _revision_cells(cr: dict[str, Any], now: datetime) -> list[Any]:
    return [name_of(cr), controller_name(cr), as_int(cr.get("revision")), age(cr, now)]


PRINTERS = {
    "ReplicationController": Printer(RC_COLUMNS, _rc_cells),
    "ReplicaSet": Printer(RS_COLUMNS, _rs_cells),
    "Deployment": Printer(DEPLOYMENT_COLUMNS, _deployment_cells),
    "StatefulSet": Printer(STATEFULSET_COLUMNS, _statefulset_cells),
    "DaemonSet": Printer(DAEMONSET_COLUMNS, _daemonset_cells),
    "ControllerRevision": Printer(CONTROLLER_REVISION_COLUMNS, _revision_cells),
}
