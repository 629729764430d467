"""PersistentVolume, PersistentVolumeClaim (core) and StorageClass (storage.k8s.io/v1)."""
from __future__ import annotations

from typing import Any

from netd.api.errors import FieldError, forbidden, invalid, not_supported, required, too_long
from netd.api.quantity import PARSE_ERROR, format_quantity, parse_quantity_with_format
from netd.api.validation.common import (GoValue, as_dict, as_list, as_str, child,
                                        go_quote, key, name_is_dns_subdomain,
                                        validate_qualified_name)
from netd.api.validation.core import spec_diff
from netd.api.validation.meta import (validate_label_selector, validate_object_meta,
                                      validate_object_meta_update)
from netd.api.validation.volumes import validate_path_no_backsteps

ACCESS_MODES = ["ReadOnlyMany", "ReadWriteMany", "ReadWriteOnce", "ReadWriteOncePod"]
VOLUME_MODES = ["Block", "Filesystem"]
PV_RECLAIM_POLICIES = ["Delete", "Recycle", "Retain"]
HOST_PATH_TYPES = ["", "BlockDevice", "CharDevice", "Directory", "DirectoryOrCreate", "File",
                   "FileOrCreate", "Socket"]
# PersistentVolumeSource keys (a PV names exactly one).
PV_SOURCES = ("gcePersistentDisk", "awsElasticBlockStore", "hostPath", "glusterfs", "nfs",
              "rbd", "iscsi", "cinder", "cephfs", "fc", "flocker", "flexVolume", "azureFile",
              "vsphereVolume", "quobyte", "azureDisk", "photonPersistentDisk", "portworxVolume",
              "scaleIO", "local", "storageos", "csi")
PVC_UPDATE_FORBIDDEN = ("spec is immutable after creation except resources.requests and "
                        "volumeAttributesClassName for bound claims")


def _validate_access_modes(modes: list[Any], path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    rwop = other = False
    for m in modes:
        if m not in ACCESS_MODES:
            errs.append(not_supported(path, m, ACCESS_MODES))
        elif m == "ReadWriteOncePod":
            rwop = True
        else:
            other = True
    if rwop and other:
        errs.append(forbidden(path, "may not use ReadWriteOncePod with other access modes"))
    return errs


def _positive_quantity(qty: Any, path: str) -> list[FieldError]:
    try:
        value, fmt = parse_quantity_with_format(qty)
    except ValueError:
        return [invalid(path, qty, PARSE_ERROR)]
    if value <= 0:
        return [invalid(path, format_quantity(value, fmt), "must be greater than zero")]
    return []


def _go_resource_list(capacity: dict[str, Any]) -> GoValue:
    inner = ", ".join(f"{go_quote(k)}:{{...}}" for k in sorted(capacity))
    return GoValue("core.ResourceList{" + inner + "}")


def validate_persistent_volume(obj: dict[str, Any]) -> list[FieldError]:
    errs = validate_object_meta(obj, False, name_is_dns_subdomain)
    spec = as_dict(obj.get("spec"))
    modes = as_list(spec.get("accessModes"))
    if not modes:
        errs.append(required("spec.accessModes"))
    errs.extend(_validate_access_modes(modes, "spec.accessModes"))
    reclaim = as_str(spec.get("persistentVolumeReclaimPolicy"))
    if reclaim and reclaim not in PV_RECLAIM_POLICIES:
        errs.append(not_supported("spec.persistentVolumeReclaimPolicy", reclaim,
                                  PV_RECLAIM_POLICIES))
    capacity = as_dict(spec.get("capacity"))
    if not capacity:
        errs.append(required("spec.capacity"))
    if "storage" not in capacity or len(capacity) > 1:
        errs.append(not_supported("spec.capacity", _go_resource_list(capacity), ["storage"]))
    for name, qty in capacity.items():
        errs.extend(_positive_quantity(qty, key("spec.capacity", name)))
    sc = as_str(spec.get("storageClassName"))
    if sc:
        errs.extend(invalid("spec.storageClassName", sc, m)
                    for m in name_is_dns_subdomain(sc, False))
    mode = spec.get("volumeMode")
    if mode is not None and mode not in VOLUME_MODES:
        errs.append(not_supported("spec.volumeMode", mode, VOLUME_MODES))
    count = 0
    for kind in PV_SOURCES:
        if spec.get(kind) is None:
            continue
        if count:
            errs.append(forbidden(f"spec.{kind}", "may not specify more than 1 volume type"))
            continue
        count += 1
        src = as_dict(spec.get(kind))
        if kind == "hostPath":
            hp = as_str(src.get("path"))
            if not hp:
                errs.append(required("spec.hostPath.path"))
            else:
                errs.extend(validate_path_no_backsteps(hp, "spec.hostPath.path"))
                t = src.get("type")
                if t is not None and t not in HOST_PATH_TYPES:
                    errs.append(not_supported("spec.hostPath.type", t, HOST_PATH_TYPES))
        elif kind == "local":
            if not as_str(src.get("path")):
                errs.append(required("spec.local.path"))
        elif kind == "nfs":
            if not as_str(src.get("server")):
                errs.append(required("spec.nfs.server"))
            if not as_str(src.get("path")):
                errs.append(required("spec.nfs.path"))
        elif kind == "csi":
            if not as_str(src.get("driver")):
                errs.append(required("spec.csi.driver"))
            if not as_str(src.get("volumeHandle")):
                errs.append(required("spec.csi.volumeHandle"))
    if count == 0:
        errs.append(required("spec", "must specify a volume type"))
    root = as_str(as_dict(spec.get("hostPath")).get("path"))
    if root and root.rstrip("/") == "" and reclaim == "Recycle":
        errs.append(forbidden("spec.persistentVolumeReclaimPolicy",
                              "may not be 'recycle' for a hostPath mount of '/'"))
    return errs


def validate_persistent_volume_update(new: dict[str, Any], old: dict[str, Any]) -> list[FieldError]:
    errs = validate_object_meta_update(new, old) + validate_persistent_volume(new)
    ns, os_ = as_dict(new.get("spec")), as_dict(old.get("spec"))
    new_src = {k: ns[k] for k in PV_SOURCES if k in ns}
    old_src = {k: os_[k] for k in PV_SOURCES if k in os_}
    if new_src != old_src:
        errs.append(forbidden("spec.persistentvolumesource",
                              "spec.persistentvolumesource is immutable after creation\n"
                              + "\n".join(spec_diff(old_src, new_src))))
    if ns.get("volumeMode") != os_.get("volumeMode"):
        errs.append(invalid("volumeMode", ns.get("volumeMode"), "field is immutable"))
    if os_.get("nodeAffinity") is not None and ns.get("nodeAffinity") != os_.get("nodeAffinity"):
        errs.append(invalid("nodeAffinity", GoValue("&core.VolumeNodeAffinity{...}"),
                            "field is immutable"))
    return errs


def validate_pvc_spec(spec: dict[str, Any], path: str = "spec") -> list[FieldError]:
    errs: list[FieldError] = []
    modes = as_list(spec.get("accessModes"))
    if not modes:
        errs.append(required(child(path, "accessModes"), "at least 1 access mode is required"))
    if spec.get("selector") is not None:
        errs.extend(validate_label_selector(spec.get("selector"), child(path, "selector")))
    errs.extend(_validate_access_modes(modes, child(path, "accessModes")))
    requests = as_dict(as_dict(spec.get("resources")).get("requests"))
    storage_path = key(child(path, "resources"), "storage")
    if "storage" not in requests:
        errs.append(required(storage_path))
    else:
        errs.extend(_positive_quantity(requests["storage"], storage_path))
    sc = spec.get("storageClassName")
    if isinstance(sc, str) and sc:
        errs.extend(invalid(child(path, "storageClassName"), sc, m)
                    for m in name_is_dns_subdomain(sc, False))
    mode = spec.get("volumeMode")
    if mode is not None and mode not in VOLUME_MODES:
        errs.append(not_supported(child(path, "volumeMode"), mode, VOLUME_MODES))
    return errs


def validate_persistent_volume_claim(obj: dict[str, Any]) -> list[FieldError]:
    return validate_object_meta(obj, True, name_is_dns_subdomain) + \
        validate_pvc_spec(as_dict(obj.get("spec")))


def validate_persistent_volume_claim_update(new: dict[str, Any],
                                            old: dict[str, Any]) -> list[FieldError]:
    errs = validate_object_meta_update(new, old) + validate_persistent_volume_claim(new)
    ns, os_ = as_dict(new.get("spec")), as_dict(old.get("spec"))
    new_clone, old_clone = dict(ns), dict(os_)
    if not as_str(os_.get("volumeName")):
        # The binder may set volumeName once.
        old_clone["volumeName"] = ns.get("volumeName")
        if ns.get("volumeName") is None:
            old_clone.pop("volumeName", None)
    bound = as_dict(new.get("status")).get("phase") == "Bound"
    if bound:
        new_res = dict(as_dict(ns.get("resources")))
        old_res = as_dict(os_.get("resources"))
        reqs = dict(as_dict(new_res.get("requests")))
        if "storage" in as_dict(old_res.get("requests")):
            reqs["storage"] = as_dict(old_res.get("requests"))["storage"]
        new_res["requests"] = reqs
        new_clone["resources"] = new_res
        for fld in ("volumeAttributesClassName",):
            if fld in os_:
                new_clone[fld] = os_[fld]
            else:
                new_clone.pop(fld, None)
    if new_clone != old_clone:
        errs.append(forbidden("spec", PVC_UPDATE_FORBIDDEN + "\n"
                              + "\n".join(spec_diff(old_clone, new_clone))))
    try:
        old_size = parse_quantity_with_format(
            as_dict(as_dict(os_.get("resources")).get("requests")).get("storage", 0))[0]
        new_size = parse_quantity_with_format(
            as_dict(as_dict(ns.get("resources")).get("requests")).get("storage", 0))[0]
    except ValueError:
        return errs
    if new_size < old_size:
        errs.append(forbidden("spec.resources.requests.storage",
                              "field can not be less than previous value"))
    if ns.get("volumeMode") != os_.get("volumeMode"):
        errs.append(invalid("volumeMode", ns.get("volumeMode"), "field is immutable"))
    return errs


def validate_pv_status_update(new: dict[str, Any], old: dict[str, Any]) -> list[FieldError]:
    errs = validate_object_meta_update(new, old)
    phase = as_dict(new.get("status")).get("phase")
    phases = ["Available", "Bound", "Failed", "Pending", "Released"]
    if phase not in (None, "") and phase not in phases:
        errs.append(not_supported("status.phase", phase, phases))
    return errs


def validate_pvc_status_update(new: dict[str, Any], old: dict[str, Any]) -> list[FieldError]:
    errs = validate_object_meta_update(new, old)
    status = as_dict(new.get("status"))
    errs.extend(_validate_access_modes(as_list(status.get("accessModes")), "status.accessModes"))
    for name, qty in as_dict(status.get("capacity")).items():
        try:
            parse_quantity_with_format(qty)
        except ValueError:
            errs.append(invalid(key("status.capacity", name), qty, PARSE_ERROR))
    return errs


# --- StorageClass ------------------------------------------------------------------------

_MAX_PARAMETERS = 512
_MAX_PARAMETER_SIZE = 256 * 1024


def validate_storage_class(obj: dict[str, Any]) -> list[FieldError]:
    errs = validate_object_meta(obj, False, name_is_dns_subdomain)
    provisioner = as_str(obj.get("provisioner"))
    if not provisioner:
        errs.append(required("provisioner"))
    else:
        errs.extend(validate_qualified_name(provisioner.lower(), "provisioner"))
    params = as_dict(obj.get("parameters"))
    if len(params) > _MAX_PARAMETERS:
        errs.append(too_long("parameters", "", _MAX_PARAMETERS))
    else:
        total = 0
        for k, v in params.items():
            if not k:
                errs.append(invalid("parameters", k, "field can not be empty."))
            total += len(k) + len(as_str(v))
        if total > _MAX_PARAMETER_SIZE:
            errs.append(too_long("parameters", "", _MAX_PARAMETER_SIZE))
    reclaim = as_str(obj.get("reclaimPolicy"))
    if reclaim and reclaim not in ("Delete", "Retain"):
        errs.append(not_supported("reclaimPolicy", reclaim, ["Delete", "Retain"]))
    mode = obj.get("volumeBindingMode")
    if mode is None:
        errs.append(required("volumeBindingMode"))
    elif mode not in ("Immediate", "WaitForFirstConsumer"):
        errs.append(not_supported("volumeBindingMode", mode, ["Immediate", "WaitForFirstConsumer"]))
    return errs


def validate_storage_class_update(new: dict[str, Any], old: dict[str, Any]) -> list[FieldError]:
    # The strategy runs create validation first, then the update rules.
    errs = validate_storage_class(new) + validate_object_meta_update(new, old)
    if (new.get("parameters") or {}) != (old.get("parameters") or {}):
        errs.append(forbidden("parameters", "updates to parameters are forbidden."))
    if new.get("provisioner") != old.get("provisioner"):
        errs.append(forbidden("provisioner", "updates to provisioner are forbidden."))
    if new.get("reclaimPolicy") != old.get("reclaimPolicy"):
        errs.append(forbidden("reclaimPolicy", "updates to reclaimPolicy are forbidden."))
    if new.get("volumeBindingMode") != old.get("volumeBindingMode"):
        errs.append(invalid("volumeBindingMode", new.get("volumeBindingMode"),
                            "field is immutable"))
    return errs
