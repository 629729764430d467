"""Object metadata and label-selector validation (apimachinery objectmeta.go, meta/v1/validation).

Messages are apimachinery's word for word; see common.py for the string validators.
"""
from __future__ import annotations

from typing import Any

from netd.api.errors import FieldError, forbidden, invalid, required, too_long
from netd.api.validation.common import (GoValue, NameFn, as_dict, as_int, as_list, as_str,
                                        child, go_strings, index, is_dns1123_label,
                                        is_qualified_name, is_valid_label_value, str_map,
                                        validate_immutable, validate_nonnegative,
                                        validate_qualified_name)


def validate_labels(labels: Any, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    if labels is None:
        return errs
    if not isinstance(labels, dict):
        return [invalid(path, labels, "must be a map of string keys to string values")]
    for k, v in labels.items():
        errs.extend(invalid(path, k, m) for m in is_qualified_name(k))
        if not isinstance(v, str):
            errs.append(invalid(path, v, "must be a string"))
            continue
        errs.extend(invalid(path, v, m) for m in is_valid_label_value(v))
    return errs


TOTAL_ANNOTATION_SIZE_LIMIT = 256 * 1024


def validate_annotations(annotations: Any, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    if annotations is None:
        return errs
    if not isinstance(annotations, dict):
        return [invalid(path, annotations, "must be a map of string keys to string values")]
    total = 0
    for k, v in annotations.items():
        # Annotation keys are qualified names compared case-insensitively.
        errs.extend(invalid(path, k, m) for m in is_qualified_name(k.lower()))
        total += len(k.encode()) + len(v.encode() if isinstance(v, str) else str(v).encode())
    if total > TOTAL_ANNOTATION_SIZE_LIMIT:
        errs.append(too_long(path, "", TOTAL_ANNOTATION_SIZE_LIMIT))
    return errs


def validate_owner_references(refs: Any, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    first_controller = ""
    for ref in as_list(refs):
        ref = as_dict(ref)
        api_version = as_str(ref.get("apiVersion"))
        version = api_version.rpartition("/")[2]
        if not version:
            errs.append(invalid(child(path, "apiVersion"), api_version,
                                "version must not be empty"))
        if not as_str(ref.get("kind")):
            errs.append(invalid(child(path, "kind"), as_str(ref.get("kind")), "must not be empty"))
        if not as_str(ref.get("name")):
            errs.append(invalid(child(path, "name"), as_str(ref.get("name")), "must not be empty"))
        if not as_str(ref.get("uid")):
            errs.append(invalid(child(path, "uid"), as_str(ref.get("uid")), "must not be empty"))
        if ref.get("controller") is True:
            current = f"{as_str(ref.get('kind'))}/{as_str(ref.get('name'))}"
            if first_controller:
                errs.append(invalid(path, GoValue("[]v1.OwnerReference{...}"),
                                    "Only one reference can have Controller set to true. Found "
                                    f"\"true\" in references for {first_controller} and "
                                    f"{current}"))
            else:
                first_controller = current
    return errs


def validate_finalizers(finalizers: Any, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    names = [f for f in as_list(finalizers) if isinstance(f, str)]
    for f in names:
        errs.extend(invalid(path, f, m) for m in is_qualified_name(f))
    if "orphan" in names and "foregroundDeletion" in names:
        errs.append(invalid(path, go_strings(names),
                            "finalizer orphan and foregroundDeletion cannot be both set"))
    return errs


def validate_object_meta(obj: dict[str, Any], namespaced: bool, name_fn: NameFn,
                         path: str = "metadata") -> list[FieldError]:
    """ValidateObjectMetaAccessor: names, namespace, labels, annotations, owners, finalizers."""
    meta = as_dict(obj.get("metadata"))
    errs: list[FieldError] = []
    gen_name = as_str(meta.get("generateName"))
    if gen_name:
        errs.extend(invalid(child(path, "generateName"), gen_name, m)
                    for m in name_fn(gen_name, True))
    name = as_str(meta.get("name"))
    if not name:
        errs.append(required(child(path, "name"), "name or generateName is required"))
    else:
        errs.extend(invalid(child(path, "name"), name, m) for m in name_fn(name, False))
    ns = as_str(meta.get("namespace"))
    if namespaced:
        if not ns:
            errs.append(required(child(path, "namespace")))
        else:
            errs.extend(invalid(child(path, "namespace"), ns, m) for m in is_dns1123_label(ns))
    elif ns:
        errs.append(forbidden(child(path, "namespace"), "not allowed on this type"))
    errs.extend(validate_nonnegative(meta.get("generation"), child(path, "generation")))
    errs.extend(validate_labels(meta.get("labels"), child(path, "labels")))
    errs.extend(validate_annotations(meta.get("annotations"), child(path, "annotations")))
    errs.extend(validate_owner_references(meta.get("ownerReferences"),
                                          child(path, "ownerReferences")))
    errs.extend(validate_finalizers(meta.get("finalizers"), child(path, "finalizers")))
    return errs


def validate_object_meta_update(new: dict[str, Any], old: dict[str, Any],
                                path: str = "metadata") -> list[FieldError]:
    """ValidateObjectMetaAccessorUpdate.

    resourceVersion presence is the store's business (it answers Conflict), and a uid or
    creationTimestamp left out of an update is filled from the stored object by the
    registry before we run (rest.BeforeUpdate), so only values actually sent are compared.
    """
    nm, om = as_dict(new.get("metadata")), as_dict(old.get("metadata"))
    errs: list[FieldError] = []
    if om.get("deletionTimestamp"):
        old_f = set(as_list(om.get("finalizers")))
        for f in as_list(nm.get("finalizers")):
            if f not in old_f:
                errs.append(forbidden(child(path, "finalizers"),
                                      f"no new finalizers can be added if the object is being "
                                      f"deleted, found new finalizers {go_strings([f]).text}"))
    ngen, ogen = as_int(nm.get("generation")), as_int(om.get("generation"))
    if ngen is not None and ogen is not None and ngen < ogen:
        errs.append(invalid(child(path, "generation"), ngen, "must not be decremented"))
    errs.extend(validate_immutable(as_str(nm.get("name")), as_str(om.get("name")),
                                   child(path, "name")))
    errs.extend(validate_immutable(as_str(nm.get("namespace")), as_str(om.get("namespace")),
                                   child(path, "namespace")))
    for fld in ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds"):
        if nm.get(fld) not in (None, "") and nm.get(fld) != om.get(fld):
            errs.append(invalid(child(path, fld), nm.get(fld), "field is immutable"))
    errs.extend(validate_labels(nm.get("labels"), child(path, "labels")))
    errs.extend(validate_annotations(nm.get("annotations"), child(path, "annotations")))
    errs.extend(validate_owner_references(nm.get("ownerReferences"),
                                          child(path, "ownerReferences")))
    errs.extend(validate_finalizers(nm.get("finalizers"), child(path, "finalizers")))
    return errs


# --- label selectors ---------------------------------------------------------------------

_SELECTOR_OPS = ("In", "NotIn", "Exists", "DoesNotExist")


def validate_label_selector(sel: Any, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    if sel is None:
        return errs
    sel = as_dict(sel)
    errs.extend(validate_labels(sel.get("matchLabels"), child(path, "matchLabels")))
    for i, expr in enumerate(as_list(sel.get("matchExpressions"))):
        p = index(child(path, "matchExpressions"), i)
        expr = as_dict(expr)
        op = as_str(expr.get("operator"))
        values = as_list(expr.get("values"))
        if op in ("In", "NotIn"):
            if not values:
                errs.append(required(child(p, "values"),
                                     "must be specified when `operator` is 'In' or 'NotIn'"))
        elif op in ("Exists", "DoesNotExist"):
            if values:
                errs.append(forbidden(child(p, "values"), "may not be specified when `operator` "
                                      "is 'Exists' or 'DoesNotExist'"))
        else:
            errs.append(invalid(child(p, "operator"), op, "not a valid selector operator"))
        errs.extend(validate_qualified_name(as_str(expr.get("key")), child(p, "key")))
        for j, v in enumerate(values):
            errs.extend(invalid(index(child(p, "values"), j), v, m)
                        for m in is_valid_label_value(as_str(v)))
    return errs


def selector_matches(sel: Any, labels: Any) -> bool:
    """metav1.LabelSelectorAsSelector(sel).Matches(labels); a nil selector matches nothing."""
    if sel is None:
        return False
    sel, labels = as_dict(sel), str_map(labels)
    for k, v in str_map(sel.get("matchLabels")).items():
        if labels.get(k) != v:
            return False
    for expr in as_list(sel.get("matchExpressions")):
        expr = as_dict(expr)
        k, op = as_str(expr.get("key")), as_str(expr.get("operator"))
        values = [as_str(v) for v in as_list(expr.get("values"))]
        if op == "In" and labels.get(k) not in values:
            return False
        if op == "NotIn" and k in labels and labels[k] in values:
            return False
        if op == "Exists" and k not in labels:
            return False
        if op == "DoesNotExist" and k in labels:
            return False
    return True


def selector_is_empty(sel: Any) -> bool:
    sel = as_dict(sel)
    return not sel.get("matchLabels") and not sel.get("matchExpressions")
