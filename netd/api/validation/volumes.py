"""Pod volume validation (ValidateVolumes and the per-source checks netd's pods can use).

Sources netd does not emulate are still counted, so "exactly one volume type" holds for
every source Kubernetes knows; their inner fields are accepted as sent.
"""
from __future__ import annotations

from typing import Any

from netd.api.defaults import VOLUME_SOURCES
from netd.api.errors import FieldError, duplicate, forbidden, invalid, not_supported, required
from netd.api.quantity import parse_quantity
from netd.api.validation.common import (as_dict, as_int, as_list, as_str, child, index,
                                        validate_dns1123_label)

FILE_MODE_ERROR = "must be a number between 0 and 0777 (octal), both inclusive"
HOST_PATH_TYPES = ["", "BlockDevice", "CharDevice", "Directory", "DirectoryOrCreate", "File",
                   "FileOrCreate", "Socket"]


def validate_path_no_backsteps(value: str, path: str) -> list[FieldError]:
    if ".." in value.split("/"):
        return [invalid(path, value, "must not contain '..'")]
    return []


def validate_local_non_reserved_path(value: str, path: str) -> list[FieldError]:
    errs = []
    if value.startswith("/"):
        errs.append(invalid(path, value, "must be a relative path"))
    errs.extend(validate_path_no_backsteps(value, path))
    if value.startswith("..") and not value.startswith("../"):
        errs.append(invalid(path, value, "must not start with '..'"))
    return errs


def _file_mode(value: Any, path: str) -> list[FieldError]:
    if value is None:
        return []
    n = as_int(value)
    if n is None or not 0 <= n <= 0o777:
        return [invalid(path, value, FILE_MODE_ERROR)]
    return []


def _key_to_paths(items: Any, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    for i, item in enumerate(as_list(items)):
        p, item = index(path, i), as_dict(item)
        if not as_str(item.get("key")):
            errs.append(required(child(p, "key")))
        target = as_str(item.get("path"))
        if not target:
            errs.append(required(child(p, "path")))
        errs.extend(validate_local_non_reserved_path(target, child(p, "path")))
        errs.extend(_file_mode(item.get("mode"), child(p, "mode")))
    return errs


def _downward_items(items: Any, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    for i, item in enumerate(as_list(items)):
        p, item = index(path, i), as_dict(item)
        target = as_str(item.get("path"))
        if not target:
            errs.append(required(child(p, "path")))
        errs.extend(validate_local_non_reserved_path(target, child(p, "path")))
        errs.extend(_file_mode(item.get("mode"), child(p, "mode")))
        has_field = item.get("fieldRef") is not None
        has_res = item.get("resourceFieldRef") is not None
        if has_field and has_res:
            errs.append(invalid(p, "resource", "fieldRef and resourceFieldRef can not be "
                                               "specified simultaneously"))
        elif not has_field and not has_res:
            errs.append(required(p, "one of fieldRef and resourceFieldRef is required"))
    return errs


def _validate_source(kind: str, src: Any, path: str) -> list[FieldError]:
    s = as_dict(src)
    p = child(path, kind)
    errs: list[FieldError] = []
    if kind == "hostPath":
        host_path = as_str(s.get("path"))
        if not host_path:
            return [required(child(p, "path"))]
        errs.extend(validate_path_no_backsteps(host_path, child(p, "path")))
        t = s.get("type")
        if t is not None and t not in HOST_PATH_TYPES:
            errs.append(not_supported(child(p, "type"), t, HOST_PATH_TYPES))
    elif kind == "emptyDir":
        size = s.get("sizeLimit")
        if size is not None:
            try:
                negative = parse_quantity(size) < 0
            except ValueError:
                negative = True
            if negative:
                errs.append(forbidden(child(p, "sizeLimit"),
                                      "SizeLimit field must be a valid resource quantity"))
    elif kind == "secret":
        if not as_str(s.get("secretName")):
            errs.append(required(child(p, "secretName")))
        errs.extend(_file_mode(s.get("defaultMode"), child(p, "defaultMode")))
        errs.extend(_key_to_paths(s.get("items"), child(p, "items")))
    elif kind == "configMap":
        if not as_str(s.get("name")):
            errs.append(required(child(p, "name")))
        errs.extend(_file_mode(s.get("defaultMode"), child(p, "defaultMode")))
        errs.extend(_key_to_paths(s.get("items"), child(p, "items")))
    elif kind == "persistentVolumeClaim":
        if not as_str(s.get("claimName")):
            errs.append(required(child(p, "claimName")))
    elif kind == "downwardAPI":
        errs.extend(_file_mode(s.get("defaultMode"), child(p, "defaultMode")))
        errs.extend(_downward_items(s.get("items"), child(p, "items")))
    elif kind == "nfs":
        if not as_str(s.get("server")):
            errs.append(required(child(p, "server")))
        nfs_path = as_str(s.get("path"))
        if not nfs_path:
            errs.append(required(child(p, "path")))
        elif not nfs_path.startswith("/"):
            errs.append(invalid(child(p, "path"), nfs_path, "must be an absolute path"))
    elif kind == "projected":
        errs.extend(_file_mode(s.get("defaultMode"), child(p, "defaultMode")))
        for i, source in enumerate(as_list(s.get("sources"))):
            sp, source = index(child(p, "sources"), i), as_dict(source)
            kinds = [k for k in ("secret", "configMap", "downwardAPI", "serviceAccountToken",
                                 "clusterTrustBundle") if source.get(k) is not None]
            if not kinds:
                errs.append(required(sp, "must specify exactly 1 of: `secret`, `configMap`, "
                                         "`downwardAPI`, `serviceAccountToken`, "
                                         "`clusterTrustBundle`"))
            for k in kinds[1:]:
                errs.append(forbidden(child(sp, k), "may not specify more than 1 volume type "
                                                    "per source"))
            if "downwardAPI" in kinds:
                errs.extend(_downward_items(as_dict(source["downwardAPI"]).get("items"),
                                            child(sp, "downwardAPI", "items")))
            for k in ("secret", "configMap"):
                if k in kinds:
                    errs.extend(_key_to_paths(as_dict(source[k]).get("items"),
                                              child(sp, k, "items")))
    return errs


def validate_volume_source(vol: dict[str, Any], path: str) -> list[FieldError]:
    """Exactly one source; the first extra one is reported at its own path."""
    errs: list[FieldError] = []
    count = 0
    for kind in VOLUME_SOURCES:
        if vol.get(kind) is None:
            continue
        if count:
            errs.append(forbidden(child(path, kind), "may not specify more than 1 volume type"))
            continue
        count += 1
        errs.extend(_validate_source(kind, vol[kind], path))
    if count == 0:
        errs.append(required(path, "must specify a volume type"))
    return errs


def validate_volumes(volumes: Any, path: str) -> tuple[list[FieldError], set[str]]:
    """Errors and the set of declared volume names (what volumeMounts may reference)."""
    errs: list[FieldError] = []
    names: set[str] = set()
    for i, vol in enumerate(as_list(volumes)):
        p, vol = index(path, i), as_dict(vol)
        verrs = validate_volume_source(vol, p)
        name = as_str(vol.get("name"))
        if not name:
            verrs.append(required(child(p, "name")))
        else:
            verrs.extend(validate_dns1123_label(name, child(p, "name")))
        if name in names:
            verrs.append(duplicate(child(p, "name"), name))
        else:
            names.add(name)
        errs.extend(verrs)
    return errs, names
