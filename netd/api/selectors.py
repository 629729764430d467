"""Label selectors, matching k8s.io/apimachinery/pkg/labels and metav1.LabelSelector.

Both the `?labelSelector=` string syntax and metav1.LabelSelector objects (`spec.selector`
of ReplicaSets, Deployments ...). Field selectors are in fieldselectors.py and are
re-exported here.

Error texts copy apimachinery's because kubectl shows them verbatim.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Iterable

from netd.api import errors
from netd.api.errors import FieldError
# Field selectors live in their own module; re-exported so callers need one import.
from netd.api.fieldselectors import (FieldSelector, FieldTerm, check_field_selector,
                                     escape_field_value, object_fields, parse_field_selector)
from netd.api.labelsyntax import GoStrings, go_quote, is_qualified_name, is_valid_label_value

__all__ = ["LabelSelector", "Requirement", "EVERYTHING", "NOTHING", "parse_label_selector",
           "selector_from_dict", "selector_from_set", "format_label_selector",
           "validate_label_selector", "validate_labels", "new_requirement",
           "is_qualified_name", "is_valid_label_value", "FieldSelector", "FieldTerm",
           "parse_field_selector", "check_field_selector", "object_fields",
           "escape_field_value"]


def _go_values(values: list[str]) -> GoStrings:
    # LabelSelectorAsSelector copies values with append([]string(nil), ...), which stays
    # nil when there are none: Go then prints `[]string(nil)`.
    return GoStrings(values if values else None)


def _aggregate(errs: list[FieldError]) -> str:
    # utilerrors.NewAggregate(...).Error(): one error bare, several in brackets.
    if len(errs) == 1:
        return str(errs[0])
    return "[" + ", ".join(str(e) for e in errs) + "]"


# --- requirements and label selectors ----------------------------------------------------

EQUALS, DOUBLE_EQUALS, NOT_EQUALS = "=", "==", "!="
IN, NOT_IN, EXISTS, DOES_NOT_EXIST = "in", "notin", "exists", "!"
GREATER_THAN, LESS_THAN = "gt", "lt"
_VALID_OPERATORS = [IN, NOT_IN, EQUALS, DOUBLE_EQUALS, NOT_EQUALS, GREATER_THAN, LESS_THAN,
                    EXISTS, DOES_NOT_EXIST]


def _parse_int64(s: str) -> int | None:
    # strconv.ParseInt(s, 10, 64): optional sign, decimal digits only.
    if not re.fullmatch(r"[+-]?[0-9]+", s):
        return None
    n = int(s)
    return n if -(1 << 63) <= n < (1 << 63) else None


@dataclass(frozen=True)
class Requirement:
    key: str
    operator: str
    values: tuple[str, ...] = ()

    def matches(self, labels: dict[str, str]) -> bool:
        op = self.operator
        if op in (IN, EQUALS, DOUBLE_EQUALS):
            return self.key in labels and labels[self.key] in self.values
        if op in (NOT_IN, NOT_EQUALS):
            return self.key not in labels or labels[self.key] not in self.values
        if op == EXISTS:
            return self.key in labels
        if op == DOES_NOT_EXIST:
            return self.key not in labels
        if op in (GREATER_THAN, LESS_THAN):
            if self.key not in labels or len(self.values) != 1:
                return False
            have, want = _parse_int64(labels[self.key]), _parse_int64(self.values[0])
            if have is None or want is None:
                return False
            return have > want if op == GREATER_THAN else have < want
        return False

    def __str__(self) -> str:
        op = self.operator
        head = ("!" if op == DOES_NOT_EXIST else "") + self.key
        if op in (EXISTS, DOES_NOT_EXIST):
            return head
        # Requirement.String() sorts the values so the text is canonical.
        vals = self.values[0] if len(self.values) == 1 else ",".join(sorted(self.values))
        if op in (IN, NOT_IN):
            return f"{head} {op} ({vals})"
        sym = {GREATER_THAN: ">", LESS_THAN: "<"}.get(op, op)
        return f"{head}{sym}{vals}"


def new_requirement(key: str, op: str, values: list[str], path: str = "") -> Requirement:
    """labels.NewRequirement: raises BadRequest with apimachinery's aggregate text."""
    errs = _requirement_errors(key, op, values, path)
    if errs:
        raise errors.BadRequest(_aggregate(errs))
    return Requirement(key, op, tuple(values))


def _child(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _requirement_errors(key: str, op: str, values: list[str], path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    key_msgs = is_qualified_name(key)
    if key_msgs:
        # validateLabelKey joins every message with "; " into one error.
        errs.append(errors.invalid(_child(path, "key"), key, "; ".join(key_msgs)))
    vpath = _child(path, "values")
    if op in (IN, NOT_IN):
        if not values:
            errs.append(errors.invalid(vpath, _go_values(values),
                                       "for 'in', 'notin' operators, values set can't be empty"))
    elif op in (EQUALS, DOUBLE_EQUALS, NOT_EQUALS):
        if len(values) != 1:
            errs.append(errors.invalid(vpath, _go_values(values),
                                       "exact-match compatibility requires one single value"))
    elif op in (EXISTS, DOES_NOT_EXIST):
        if values:
            errs.append(errors.invalid(vpath, _go_values(values),
                                       "values set must be empty for exists and does not exist"))
    elif op in (GREATER_THAN, LESS_THAN):
        if len(values) != 1:
            errs.append(errors.invalid(vpath, _go_values(values),
                                       "for 'Gt', 'Lt' operators, exactly one value is required"))
        for i, v in enumerate(values):
            if _parse_int64(v) is None:
                errs.append(errors.invalid(f"{vpath}[{i}]", v, "for 'Gt', 'Lt' operators, "
                                           "the value must be an integer"))
    else:
        errs.append(errors.not_supported(_child(path, "operator"), op, _VALID_OPERATORS))
    for i, v in enumerate(values):
        msgs = is_valid_label_value(v)
        if msgs:
            errs.append(errors.invalid(f"{vpath}[{i}][{key}]", v, "; ".join(msgs)))
    return errs


@dataclass(frozen=True)
class LabelSelector:
    """An AND of requirements; `nothing` is labels.Nothing() (a nil metav1.LabelSelector)."""

    requirements: tuple[Requirement, ...] = ()
    nothing: bool = False

    def matches(self, labels: dict[str, str] | None) -> bool:
        if self.nothing:
            return False
        have = labels or {}
        return all(r.matches(have) for r in self.requirements)

    def empty(self) -> bool:
        return not self.nothing and not self.requirements

    def requires_exact_match(self, key: str) -> str | None:
        """The single value `key` must have, if the selector pins one (used for indexes)."""
        for r in self.requirements:
            if r.key == key:
                if r.operator in (EQUALS, DOUBLE_EQUALS, IN) and len(r.values) == 1:
                    return r.values[0]
                return None
        return None

    def __str__(self) -> str:
        return ",".join(str(r) for r in self.requirements)


EVERYTHING = LabelSelector()
NOTHING = LabelSelector(nothing=True)


def _sorted_by_key(reqs: Iterable[Requirement]) -> tuple[Requirement, ...]:
    return tuple(sorted(reqs, key=lambda r: r.key))


def selector_from_set(labels: dict[str, str] | None) -> LabelSelector:
    """labels.SelectorFromSet: Service/RC map selectors; nil and {} both match everything."""
    if not labels:
        return EVERYTHING
    return LabelSelector(_sorted_by_key(Requirement(k, EQUALS, (v,)) for k, v in labels.items()))


_METAV1_OPS = {"In": IN, "NotIn": NOT_IN, "Exists": EXISTS, "DoesNotExist": DOES_NOT_EXIST}


def selector_from_dict(d: dict[str, Any] | None) -> LabelSelector:
    """metav1.LabelSelectorAsSelector: None matches nothing, {} matches everything."""
    if d is None:
        return NOTHING
    if not isinstance(d, dict):
        raise errors.BadRequest(f"invalid label selector: {d!r}")
    match_labels = d.get("matchLabels") or {}
    exprs = d.get("matchExpressions") or []
    if not isinstance(match_labels, dict) or not isinstance(exprs, list):
        raise errors.BadRequest("invalid label selector: matchLabels must be an object and "
                                "matchExpressions a list")
    if not match_labels and not exprs:
        return EVERYTHING
    reqs: list[Requirement] = []
    for k, v in match_labels.items():
        reqs.append(new_requirement(str(k), EQUALS, [v if isinstance(v, str) else str(v)]))
    for expr in exprs:
        if not isinstance(expr, dict):
            raise errors.BadRequest(f"invalid label selector requirement: {expr!r}")
        op = _METAV1_OPS.get(expr.get("operator"))  # type: ignore[arg-type]
        if op is None:
            raise errors.BadRequest(
                f"{go_quote(str(expr.get('operator') or ''))} is not a valid label "
                "selector operator")
        values = [str(v) for v in (expr.get("values") or [])]
        reqs.append(new_requirement(str(expr.get("key") or ""), op, values))
    return LabelSelector(_sorted_by_key(reqs))


def format_label_selector(d: dict[str, Any] | None) -> str:
    """metav1.FormatLabelSelector: the text kubectl describe shows (`<none>`, `<error>`)."""
    try:
        text = str(selector_from_dict(d))
    except errors.BadRequest:
        return "<error>"
    return text or "<none>"


def validate_label_selector(d: dict[str, Any] | None, path: str) -> list[FieldError]:
    """metav1validation.ValidateLabelSelector for the object validation code."""
    errs: list[FieldError] = []
    if d is None:
        return errs
    if not isinstance(d, dict):
        return [errors.invalid(path, d, "must be an object")]
    ml = d.get("matchLabels")
    if ml is not None:
        if not isinstance(ml, dict):
            errs.append(errors.invalid(_child(path, "matchLabels"), ml, "must be an object"))
        else:
            errs.extend(validate_labels(ml, _child(path, "matchLabels")))
    exprs = d.get("matchExpressions")
    if exprs is None:
        return errs
    if not isinstance(exprs, list):
        return errs + [errors.invalid(_child(path, "matchExpressions"), exprs, "must be a list")]
    for i, expr in enumerate(exprs):
        p = f"{_child(path, 'matchExpressions')}[{i}]"
        if not isinstance(expr, dict):
            errs.append(errors.invalid(p, expr, "must be an object"))
            continue
        op, values = expr.get("operator"), expr.get("values") or []
        if op in ("In", "NotIn"):
            if not values:
                errs.append(errors.required(f"{p}.values", "must be specified when `operator` "
                                            "is 'In' or 'NotIn'"))
        elif op in ("Exists", "DoesNotExist"):
            if values:
                errs.append(errors.forbidden(f"{p}.values", "may not be specified when "
                                             "`operator` is 'Exists' or 'DoesNotExist'"))
        else:
            errs.append(errors.invalid(f"{p}.operator", op if op is not None else "",
                                       "not a valid selector operator"))
        key = expr.get("key")
        key = key if isinstance(key, str) else ""
        errs.extend(errors.invalid(f"{p}.key", key, m) for m in is_qualified_name(key))
        for j, v in enumerate(values if isinstance(values, list) else []):
            sv = v if isinstance(v, str) else str(v)
            errs.extend(errors.invalid(f"{p}.values[{j}]", sv, m) for m in is_valid_label_value(sv))
    return errs


def validate_labels(labels: dict[str, Any], path: str) -> list[FieldError]:
    """metav1validation.ValidateLabels: both errors carry the map's path, as upstream."""
    errs: list[FieldError] = []
    for k, v in labels.items():
        errs.extend(errors.invalid(path, k, m) for m in is_qualified_name(str(k)))
        sv = v if isinstance(v, str) else str(v)
        errs.extend(errors.invalid(path, sv, m) for m in is_valid_label_value(sv))
    return errs


# --- the label selector string syntax (labels.Parse) -----------------------------------

_SPECIAL = "=!(),><"
_WHITESPACE = " \t\r\n"
_TOKENS = {")": "CLOSE", ",": "COMMA", "!": "NOT", "==": "DEQ", "=": "EQ", ">": "GT",
           "in": "IN", "<": "LT", "!=": "NEQ", "notin": "NOTIN", "(": "OPEN"}


def _lex(s: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    i, n = 0, len(s)
    while True:
        while i < n and s[i] in _WHITESPACE:
            i += 1
        if i >= n:
            out.append(("END", ""))
            return out
        if s[i] in _SPECIAL:
            # Longest run of special characters that still forms a known token.
            buf, last, j = "", ("", ""), i
            while j < n and s[j] in _SPECIAL:
                buf += s[j]
                if buf in _TOKENS:
                    last = (_TOKENS[buf], buf)
                    j += 1
                elif last[0]:
                    break
                else:
                    j += 1
            if not last[0]:
                out.append(("ERROR", f"error expected: keyword found '{buf}'"))
                i = j
            else:
                out.append(last)
                i += len(last[1])
            continue
        j = i
        while j < n and s[j] not in _SPECIAL and s[j] not in _WHITESPACE:
            j += 1
        word = s[i:j]
        out.append((_TOKENS.get(word, "ID"), word))
        i = j


class _Parser:
    def __init__(self, s: str) -> None:
        self.items = _lex(s)
        self.pos = 0

    def _tok(self, i: int, values: bool) -> tuple[str, str]:
        tok, lit = self.items[i]
        # In value context the keywords `in`/`notin` are plain identifiers.
        if values and tok in ("IN", "NOTIN"):
            tok = "ID"
        return tok, lit

    def peek(self, values: bool = True) -> tuple[str, str]:
        return self._tok(self.pos, values)

    def take(self, values: bool = True) -> tuple[str, str]:
        self.pos += 1
        return self._tok(self.pos - 1, values)

    def parse(self) -> list[Requirement]:
        reqs: list[Requirement] = []
        while True:
            tok, lit = self.peek()
            if tok in ("ID", "NOT"):
                try:
                    reqs.append(self.requirement())
                except _ReqError as e:
                    raise errors.BadRequest(f"unable to parse requirement: {e}") from None
                t, lit2 = self.take()
                if t == "END":
                    return reqs
                if t == "COMMA":
                    t2, l2 = self.peek()
                    if t2 not in ("ID", "NOT"):
                        raise errors.BadRequest(f"found '{l2}', expected: identifier after ','")
                    continue
                raise errors.BadRequest(f"found '{lit2}', expected: ',' or 'end of string'")
            if tok == "END":
                return reqs
            raise errors.BadRequest(f"found '{lit}', expected: !, identifier, or "
                                    "'end of string'")

    def requirement(self) -> Requirement:
        op = ""
        tok, lit = self.take()
        if tok == "NOT":
            op = DOES_NOT_EXIST
            tok, lit = self.take()
        if tok != "ID":
            raise _ReqError(f"found '{lit}', expected: identifier")
        key = lit
        msgs = is_qualified_name(key)
        if msgs:
            # The parser validates the key against a nil field.Path, which prints "<nil>".
            raise _ReqError(str(errors.invalid("<nil>", key, "; ".join(msgs))))
        if self.peek()[0] in ("END", "COMMA"):
            op = op or EXISTS
        if op in (EXISTS, DOES_NOT_EXIST):
            return self._new(key, op, [])
        tok, lit = self.take(values=False)
        ops = {"IN": IN, "EQ": EQUALS, "DEQ": DOUBLE_EQUALS, "GT": GREATER_THAN,
               "LT": LESS_THAN, "NOTIN": NOT_IN, "NEQ": NOT_EQUALS}
        if tok not in ops:
            raise _ReqError(f"found '{lit}', expected: in, notin, =, ==, !=, gt, lt")
        op = ops[tok]
        values = self.values() if op in (IN, NOT_IN) else self.exact_value()
        return self._new(key, op, sorted(set(values)))

    @staticmethod
    def _new(key: str, op: str, values: list[str]) -> Requirement:
        errs = _requirement_errors(key, op, values, "")
        if errs:
            raise _ReqError(_aggregate(errs))
        return Requirement(key, op, tuple(values))

    def values(self) -> list[str]:
        tok, lit = self.take()
        if tok != "OPEN":
            raise _ReqError(f"found '{lit}' expected: '('")
        tok, lit = self.peek()
        if tok in ("ID", "COMMA"):
            out = self.identifiers()
            if self.take()[0] != "CLOSE":
                raise _ReqError(f"found '{lit}', expected: ')'")
            return out
        if tok == "CLOSE":
            # `x in ()` is the set {""}: it selects objects whose label x is empty.
            self.take()
            return [""]
        raise _ReqError(f"found '{lit}', expected: ',', ')' or identifier")

    def identifiers(self) -> list[str]:
        out: list[str] = []
        while True:
            tok, lit = self.take()
            if tok == "ID":
                out.append(lit)
                t2, l2 = self.peek()
                if t2 == "COMMA":
                    continue
                if t2 == "CLOSE":
                    return out
                raise _ReqError(f"found '{l2}', expected: ',' or ')'")
            if tok == "COMMA":
                if not out:
                    out.append("")
                t2 = self.peek()[0]
                if t2 == "CLOSE":
                    out.append("")
                    return out
                if t2 == "COMMA":
                    self.take()
                    out.append("")
                continue
            raise _ReqError(f"found '{lit}', expected: ',', or identifier")

    def exact_value(self) -> list[str]:
        if self.peek()[0] in ("END", "COMMA"):
            return [""]
        tok, lit = self.take()
        if tok == "ID":
            return [lit]
        raise _ReqError(f"found '{lit}', expected: identifier")


class _ReqError(Exception):
    pass


def parse_label_selector(s: str) -> LabelSelector:
    """labels.Parse: `a=b,c!=d,e in (x,y),f notin (z),g,!h`; "" selects everything."""
    return LabelSelector(_sorted_by_key(_Parser(s).parse()))
