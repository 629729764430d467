"""The one error hierarchy of netd, mapped once to Kubernetes Status objects.

Messages follow kube-apiserver's wording (k8s.io/apimachinery/pkg/api/errors and
pkg/util/validation/field) because users and clients (kubectl) match on them.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# field.ErrorType values (the `reason` of a StatusCause) and their printed form.
REQUIRED = "FieldValueRequired"
INVALID = "FieldValueInvalid"
NOT_SUPPORTED = "FieldValueNotSupported"
DUPLICATE = "FieldValueDuplicate"
FORBIDDEN = "FieldValueForbidden"
TOO_LONG = "FieldValueTooLong"
TOO_MANY = "FieldValueTooMany"
NOT_FOUND = "FieldValueNotFound"
INTERNAL = "InternalError"
TYPE_INVALID = "FieldValueTypeInvalid"

_TYPE_TEXT = {
    REQUIRED: "Required value",
    INVALID: "Invalid value",
    NOT_SUPPORTED: "Unsupported value",
    DUPLICATE: "Duplicate value",
    FORBIDDEN: "Forbidden",
    TOO_LONG: "Too long",
    TOO_MANY: "Too many",
    NOT_FOUND: "Not found",
    INTERNAL: "Internal error",
    TYPE_INVALID: "Invalid value",
}
# Types whose message never shows the offending value (as in apimachinery).
_NO_VALUE = {REQUIRED, FORBIDDEN, TOO_LONG, INTERNAL}

_OMIT = object()


def _go_value(value: Any) -> str:
    """Render a bad value the way Go's field.Error does (%q for strings, %v for scalars)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, str):
        return _go_quote(value)
    if isinstance(value, (list, tuple)):
        return "[]" + "{" + ", ".join(_go_value(v) for v in value) + "}"
    if isinstance(value, dict):
        inner = ", ".join(f"{_go_value(k)}:{_go_value(v)}" for k, v in value.items())
        return "map[string]interface {}{" + inner + "}"
    return str(value)


def _go_quote(s: str) -> str:
    out = ['"']
    for ch in s:
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ord(ch) < 0x20:
            out.append(f"\\x{ord(ch):02x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


@dataclass(frozen=True)
class FieldError:
    """One validation failure at a field path such as `spec.ports[0].port`."""

    type: str
    field: str
    bad_value: Any = _OMIT
    detail: str = ""

    def body(self) -> str:
        text = _TYPE_TEXT.get(self.type, self.type)
        if self.type not in _NO_VALUE and self.bad_value is not _OMIT:
            text = f"{text}: {_go_value(self.bad_value)}"
        if self.detail:
            text = f"{text}: {self.detail}"
        return text

    def __str__(self) -> str:
        return f"{self.field}: {self.body()}" if self.field else self.body()

    def cause(self) -> dict[str, Any]:
        return {"reason": self.type, "message": self.body(), "field": self.field}


# Constructors named after apimachinery's field.Required/Invalid/... helpers.
def required(path: str, detail: str = "") -> FieldError:
    return FieldError(REQUIRED, path, _OMIT, detail)


def invalid(path: str, value: Any, detail: str = "") -> FieldError:
    return FieldError(INVALID, path, value, detail)


def not_supported(path: str, value: Any, supported: list[str]) -> FieldError:
    detail = "supported values: " + ", ".join(_go_quote(s) for s in supported) if supported else ""
    return FieldError(NOT_SUPPORTED, path, value, detail)


def duplicate(path: str, value: Any) -> FieldError:
    return FieldError(DUPLICATE, path, value)


def forbidden(path: str, detail: str) -> FieldError:
    return FieldError(FORBIDDEN, path, _OMIT, detail)


def too_long(path: str, value: Any, max_len: int) -> FieldError:
    return FieldError(TOO_LONG, path, value, f"must have at most {max_len} bytes")


def too_many(path: str, actual: int, max_items: int) -> FieldError:
    return FieldError(TOO_MANY, path, actual, f"must have at most {max_items} items")


def not_found(path: str, value: Any) -> FieldError:
    return FieldError(NOT_FOUND, path, value)


class APIError(Exception):
    """Base of every error that becomes a Kubernetes Status."""

    code: int = 500
    reason: str = "InternalError"

    def __init__(self, message: str, *, name: str = "", kind: str = "", group: str = "",
                 causes: list[dict[str, Any]] | None = None,
                 retry_after_seconds: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.name = name
        self.kind = kind
        self.group = group
        self.causes = causes or []
        self.retry_after_seconds = retry_after_seconds

    def status(self) -> dict[str, Any]:
        details: dict[str, Any] = {}
        if self.name:
            details["name"] = self.name
        if self.group:
            details["group"] = self.group
        if self.kind:
            details["kind"] = self.kind
        if self.causes:
            details["causes"] = self.causes
        if self.retry_after_seconds is not None:
            details["retryAfterSeconds"] = self.retry_after_seconds
        out: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if details:
            out["details"] = details
        return out


def qualified(resource: str, group: str) -> str:
    """`pods`, `deployments.apps`: how apimachinery names a GroupResource in messages."""
    return f"{resource}.{group}" if group else resource


class BadRequest(APIError):
    code, reason = 400, "BadRequest"


class Unauthorized(APIError):
    code, reason = 401, "Unauthorized"


class Forbidden(APIError):
    code, reason = 403, "Forbidden"


class NotFound(APIError):
    code, reason = 404, "NotFound"

    @classmethod
    def of(cls, resource: str, group: str, name: str) -> "NotFound":
        return cls(f'{qualified(resource, group)} "{name}" not found',
                   name=name, kind=resource, group=group)


class MethodNotAllowed(APIError):
    code, reason = 405, "MethodNotAllowed"


class NotAcceptable(APIError):
    code, reason = 406, "NotAcceptable"


class AlreadyExists(APIError):
    code, reason = 409, "AlreadyExists"

    @classmethod
    def of(cls, resource: str, group: str, name: str) -> "AlreadyExists":
        return cls(f'{qualified(resource, group)} "{name}" already exists',
                   name=name, kind=resource, group=group)


class Conflict(APIError):
    code, reason = 409, "Conflict"

    @classmethod
    def of(cls, resource: str, group: str, name: str, why: str) -> "Conflict":
        return cls(f'Operation cannot be fulfilled on {qualified(resource, group)} "{name}": {why}',
                   name=name, kind=resource, group=group)

    @classmethod
    def stale(cls, resource: str, group: str, name: str) -> "Conflict":
        return cls.of(resource, group, name, "the object has been modified; please apply "
                      "your changes to the latest version and try again")


class Gone(APIError):
    # kube-apiserver answers 410 with reason "Expired" for a compacted resourceVersion.
    code, reason = 410, "Expired"


class UnsupportedMediaType(APIError):
    code, reason = 415, "UnsupportedMediaType"


class Invalid(APIError):
    code, reason = 422, "Invalid"

    def __init__(self, kind: str, name: str, errors: list[FieldError], group: str = "") -> None:
        if len(errors) == 1:
            agg = str(errors[0])
        else:
            agg = "[" + ", ".join(str(e) for e in errors) + "]"
        super().__init__(f'{kind} "{name}" is invalid: {agg}', name=name, kind=kind,
                         group=group, causes=[e.cause() for e in errors])
        self.errors = errors


class TooManyRequests(APIError):
    code, reason = 429, "TooManyRequests"


class InternalError(APIError):
    code, reason = 500, "InternalError"


class ServiceUnavailable(APIError):
    code, reason = 503, "ServiceUnavailable"


class Timeout(APIError):
    code, reason = 504, "Timeout"


@dataclass
class ErrorList:
    """Accumulates FieldErrors while validating one object."""

    errors: list[FieldError] = field(default_factory=list)

    def add(self, err: FieldError) -> None:
        self.errors.append(err)

    def extend(self, errs: list[FieldError]) -> None:
        self.errors.extend(errs)

    def __bool__(self) -> bool:
        return bool(self.errors)
