"""Printers for the storage kinds: PersistentVolume, PersistentVolumeClaim, StorageClass
(kube-apiserver 1.32 columns, including the VolumeAttributesClass column 1.29 added)."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from netd.api.printers import descriptions as d
from netd.api.printers.common import (
    UNSET, Column, Printer, age, age_column, as_dict, as_list, as_str, get, name_column,
    name_of, wide,
)

# The beta annotation still overrides spec.storageClassName (helper.GetPersistentVolumeClass).
BETA_STORAGE_CLASS = "volume.beta.kubernetes.io/storage-class"
DEFAULT_CLASS_ANNOTATIONS = ("storageclass.kubernetes.io/is-default-class",
                             "storageclass.beta.kubernetes.io/is-default-class")

# helper.GetAccessModesAsString prints modes in this fixed order, each once.
ACCESS_MODE_ABBREVIATIONS = (
    ("ReadWriteOnce", "RWO"),
    ("ReadOnlyMany", "ROX"),
    ("ReadWriteMany", "RWX"),
    ("ReadWriteOncePod", "RWOP"),
)


def access_modes(modes: Any) -> str:
    present = set(m for m in as_list(modes) if isinstance(m, str))
    return ",".join(short for mode, short in ACCESS_MODE_ABBREVIATIONS if mode in present)


def _quantity(value: Any) -> str:
    # resource.Quantity.String() of the zero quantity is "0". Quantities are printed as
    # stored: netd keeps the user's spelling where the apiserver would canonicalise.
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return as_str(value) or "0"


def _storage_class(obj: dict[str, Any]) -> str:
    annotations = as_dict(get(obj, "metadata", "annotations"))
    if BETA_STORAGE_CLASS in annotations:
        return as_str(annotations[BETA_STORAGE_CLASS])
    return as_str(get(obj, "spec", "storageClassName"))


def _phase(obj: dict[str, Any]) -> str:
    if get(obj, "metadata", "deletionTimestamp") is not None:
        return "Terminating"
    return as_str(get(obj, "status", "phase"))


def _optional(obj: dict[str, Any], key: str) -> str:
    value = get(obj, "spec", key)
    return value if isinstance(value, str) else UNSET


PV_COLUMNS = (
    name_column(),
    Column("Capacity", "string", d.PV_CAPACITY),
    Column("Access Modes", "string", d.PV_ACCESS_MODES),
    Column("Reclaim Policy", "string", d.PV_RECLAIM),
    Column("Status", "string", d.PV_PHASE),
    Column("Claim", "string", d.PV_CLAIM),
    Column("StorageClass", "string", d.PV_STORAGE_CLASS),
    Column("VolumeAttributesClass", "string", d.PV_VAC),
    Column("Reason", "string", d.PV_REASON),
    age_column(),
    wide("VolumeMode", d.PV_VOLUME_MODE),
)


def _pv_cells(pv: dict[str, Any], now: datetime) -> list[Any]:
    claim_ref = get(pv, "spec", "claimRef")
    claim = ""
    if isinstance(claim_ref, dict):
        claim = f"{as_str(claim_ref.get('namespace'))}/{as_str(claim_ref.get('name'))}"
    return [name_of(pv), _quantity(get(pv, "spec", "capacity", "storage")),
            access_modes(get(pv, "spec", "accessModes")),
            as_str(get(pv, "spec", "persistentVolumeReclaimPolicy")), _phase(pv), claim,
            _storage_class(pv), _optional(pv, "volumeAttributesClassName"),
            as_str(get(pv, "status", "reason")), age(pv, now), _optional(pv, "volumeMode")]


PVC_COLUMNS = (
    name_column(),
    Column("Status", "string", d.PVC_PHASE),
    Column("Volume", "string", d.PVC_VOLUME),
    Column("Capacity", "string", d.PVC_CAPACITY),
    Column("Access Modes", "string", d.PVC_ACCESS_MODES),
    Column("StorageClass", "string", d.PVC_STORAGE_CLASS),
    Column("VolumeAttributesClass", "string", d.PVC_VAC),
    age_column(),
    wide("VolumeMode", d.PVC_VOLUME_MODE),
)


def _pvc_cells(pvc: dict[str, Any], now: datetime) -> list[Any]:
    volume = as_str(get(pvc, "spec", "volumeName"))
    capacity = modes = ""
    # Capacity and modes describe the bound volume, so they stay blank until bound.
    if volume:
        modes = access_modes(get(pvc, "status", "accessModes"))
        capacity = _quantity(get(pvc, "status", "capacity", "storage"))
    return [name_of(pvc), _phase(pvc), volume, capacity, modes, _storage_class(pvc),
            _optional(pvc, "volumeAttributesClassName"), age(pvc, now),
            _optional(pvc, "volumeMode")]


STORAGECLASS_COLUMNS = (
    name_column(),
    Column("Provisioner", "string", d.SC_PROVISIONER),
    Column("ReclaimPolicy", "string", d.SC_RECLAIM),
    Column("VolumeBindingMode", "string", d.SC_BINDING_MODE),
    Column("AllowVolumeExpansion", "string", d.SC_EXPANSION),
    age_column(),
)


def is_default_class(sc: dict[str, Any]) -> bool:
    annotations = as_dict(get(sc, "metadata", "annotations"))
    return any(annotations.get(key) == "true" for key in DEFAULT_CLASS_ANNOTATIONS)


def _storageclass_cells(sc: dict[str, Any], now: datetime) -> list[Any]:
    name = name_of(sc) + (" (default)" if is_default_class(sc) else "")
    expansion = sc.get("allowVolumeExpansion")
    # StorageClass fields sit at the top level (no spec); the cell is a JSON bool.
    return [name, as_str(sc.get("provisioner")), as_str(sc.get("reclaimPolicy")) or "Delete",
            as_str(sc.get("volumeBindingMode")) or "Immediate", expansion is True, age(sc, now)]


PRINTERS = {
    "PersistentVolume": Printer(PV_COLUMNS, _pv_cells),
    "PersistentVolumeClaim": Printer(PVC_COLUMNS, _pvc_cells),
    "StorageClass": Printer(STORAGECLASS_COLUMNS, _storageclass_cells),
}
