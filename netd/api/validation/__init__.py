"""Validation of every served kind, as kube-apiserver 1.32 validates it.

The write path calls exactly these three functions after defaulting; each returns every
FieldError found, in Kubernetes' order, and an empty list for a valid object. Bodies are
user JSON, so a wrongly shaped field becomes a FieldError, never an exception.
"""
from __future__ import annotations

from typing import Any, Callable

from netd.api.errors import FieldError, invalid
from netd.api.validation import apps, core, other, service, storage
from netd.api.validation.meta import validate_object_meta_update

Obj = dict[str, Any]
CreateFn = Callable[[Obj], list[FieldError]]
UpdateFn = Callable[[Obj, Obj], list[FieldError]]

_CREATE: dict[str, CreateFn] = {
    "Namespace": core.validate_namespace,
    "Node": core.validate_node,
    "Pod": core.validate_pod,
    "Service": service.validate_service,
    "Endpoints": service.validate_endpoints,
    "ReplicationController": core.validate_replication_controller,
    "PersistentVolume": storage.validate_persistent_volume,
    "PersistentVolumeClaim": storage.validate_persistent_volume_claim,
    "ConfigMap": core.validate_config_map,
    "Event": core.validate_event,
    "Deployment": apps.validate_deployment,
    "ReplicaSet": apps.validate_replica_set,
    "StatefulSet": apps.validate_stateful_set,
    "DaemonSet": apps.validate_daemon_set,
    "ControllerRevision": apps.validate_controller_revision,
    "EndpointSlice": other.validate_endpoint_slice,
    "StorageClass": storage.validate_storage_class,
    "Lease": other.validate_lease,
    "Scale": other.validate_scale,
}


def _namespace_update(new: Obj, old: Obj) -> list[FieldError]:
    return validate_object_meta_update(new, old)


def _scale_update(new: Obj, old: Obj) -> list[FieldError]:
    # The scale subresource validates the Scale it was sent (ValidateScale) and nothing else.
    return other.validate_scale(new)


_UPDATE: dict[str, UpdateFn] = {
    "Namespace": _namespace_update,
    "Node": core.validate_node_update,
    "Pod": core.validate_pod_update,
    "Service": service.validate_service_update,
    "Endpoints": service.validate_endpoints_update,
    "ReplicationController": core.validate_replication_controller_update,
    "PersistentVolume": storage.validate_persistent_volume_update,
    "PersistentVolumeClaim": storage.validate_persistent_volume_claim_update,
    "ConfigMap": core.validate_config_map_update,
    "Event": core.validate_event_update,
    "Deployment": apps.validate_deployment_update,
    "ReplicaSet": apps.validate_replica_set_update,
    "StatefulSet": apps.validate_stateful_set_update,
    "DaemonSet": apps.validate_daemon_set_update,
    "ControllerRevision": apps.validate_controller_revision_update,
    "EndpointSlice": other.validate_endpoint_slice_update,
    "StorageClass": storage.validate_storage_class_update,
    "Lease": other.validate_lease_update,
    "Scale": _scale_update,
}


def _workload_status(kind: str) -> UpdateFn:
    return lambda new, old: apps.validate_workload_status_update(kind, new, old)


_STATUS_UPDATE: dict[str, UpdateFn] = {
    "Namespace": core.validate_namespace_status_update,
    # Node status goes through the same rules as a node update.
    "Node": core.validate_node_update,
    "Pod": core.validate_pod_status_update,
    "Service": service.validate_service_status_update,
    "PersistentVolume": storage.validate_pv_status_update,
    "PersistentVolumeClaim": storage.validate_pvc_status_update,
    "ReplicationController": _workload_status("ReplicationController"),
    "Deployment": _workload_status("Deployment"),
    "ReplicaSet": _workload_status("ReplicaSet"),
    "StatefulSet": _workload_status("StatefulSet"),
    "DaemonSet": _workload_status("DaemonSet"),
}


def _guard(fn: Callable[[], list[FieldError]]) -> list[FieldError]:
    """Validators read bodies tolerantly; this is the last line for shapes they missed
    (a number where a string was due, say), which Kubernetes would reject when decoding."""
    try:
        errs = fn()
    except (TypeError, AttributeError, ValueError, KeyError) as exc:
        return [invalid("", "", f"malformed object: {exc}")]
    # Update validation re-runs create validation, so metadata errors can repeat; the
    # apiserver's message (ErrorList.ToAggregate) lists each distinct error once.
    seen: set[str] = set()
    unique: list[FieldError] = []
    for err in errs:
        text = str(err)
        if text not in seen:
            seen.add(text)
            unique.append(err)
    return unique


def validate_create(kind: str, obj: dict[str, Any]) -> list[FieldError]:
    fn = _CREATE.get(kind)
    if fn is None or not isinstance(obj, dict):
        return []
    return _guard(lambda: fn(obj))


def validate_update(kind: str, new: dict[str, Any], old: dict[str, Any]) -> list[FieldError]:
    """Update validation, including the kind's immutability rules."""
    fn = _UPDATE.get(kind)
    if fn is None or not isinstance(new, dict) or not isinstance(old, dict):
        return []
    return _guard(lambda: fn(new, old))


def validate_status_update(kind: str, new: dict[str, Any],
                           old: dict[str, Any]) -> list[FieldError]:
    fn = _STATUS_UPDATE.get(kind)
    if not isinstance(new, dict) or not isinstance(old, dict):
        return []
    if fn is None:
        return _guard(lambda: validate_object_meta_update(new, old))
    return _guard(lambda: fn(new, old))


__all__ = ["validate_create", "validate_update", "validate_status_update"]
