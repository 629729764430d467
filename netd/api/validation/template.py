"""Pod templates as every workload kind embeds them (ValidatePodTemplateSpec).

Kubernetes reports template label errors under `<template>.labels` rather than
`<template>.metadata.labels` (the template's ObjectMeta is validated with the template's
own path); the selector-mismatch error, raised by the workload, does use
`<template>.metadata.labels`. Both paths are kept as kubectl users see them.
"""
from __future__ import annotations

from typing import Any

from netd.api.errors import FieldError, forbidden
from netd.api.validation.common import as_dict, as_list, child
from netd.api.validation.meta import validate_annotations, validate_labels
from netd.api.validation.pod import validate_pod_spec


def validate_pod_template_metadata(tmpl: dict[str, Any], path: str) -> list[FieldError]:
    meta = as_dict(tmpl.get("metadata"))
    errs = validate_labels(meta.get("labels"), child(path, "labels"))
    errs.extend(validate_annotations(meta.get("annotations"), child(path, "annotations")))
    return errs


def validate_pod_template_spec(tmpl: dict[str, Any], path: str) -> list[FieldError]:
    errs = validate_pod_template_metadata(tmpl, path)
    spec = as_dict(tmpl.get("spec"))
    errs.extend(validate_pod_spec(spec, child(path, "spec")))
    if as_list(spec.get("ephemeralContainers")):
        errs.append(forbidden(child(path, "spec", "ephemeralContainers"),
                              "ephemeral containers not allowed in pod template"))
    return errs
