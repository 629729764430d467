"""Decoded-JSON helpers that behave like Go's: `%v` printing, `==` identity, deep copy.

Strategic merge patch sorts and compares values the way Go's fmt and == do, and its error
messages print maps as Go does, so these keep netd's results and texts identical.
"""
from __future__ import annotations

from typing import Any

Json = Any


def go_fmt(v: Json) -> str:
    """fmt's %v for decoded JSON, used in error messages and in upstream's sort keys."""
    if v is None:
        return "<nil>"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return _go_float(v)
    if isinstance(v, dict):
        return "map[" + " ".join(f"{k}:{go_fmt(v[k])}" for k in sorted(v)) + "]"
    if isinstance(v, list):
        return "[" + " ".join(go_fmt(x) for x in v) + "]"
    return str(v)


def _go_float(f: float) -> str:
    if f != f:
        return "NaN"
    if f in (float("inf"), float("-inf")):
        return "+Inf" if f > 0 else "-Inf"
    if f.is_integer() and abs(f) < 1e6:
        return str(int(f))
    text = repr(f)
    if "e" in text:
        mant, _, exp = text.partition("e")
        return f"{mant}e{int(exp):+03d}"
    if abs(f) >= 1e6:
        mant, _, exp = f"{f:e}".partition("e")
        digits = repr(f / 10 ** int(exp)).rstrip("0").rstrip(".")
        return f"{digits}e{int(exp):+03d}"
    return text


def hkey(v: Json) -> Any:
    """A hashable identity for JSON scalars that, like Go's ==, keeps true != 1."""
    if isinstance(v, bool):
        return ("b", v)
    if isinstance(v, (int, float)):
        return ("n", v)
    if isinstance(v, (dict, list)):
        return ("j", go_fmt(v))
    return ("s", v)


def same(a: Json, b: Json) -> bool:
    return hkey(a) == hkey(b)


def category(v: Json) -> str:
    if isinstance(v, dict):
        return "map"
    if isinstance(v, list):
        return "list"
    return "none" if v is None else "scalar:" + type(v).__name__


def deep_copy(v: Json) -> Json:
    if isinstance(v, dict):
        return {k: deep_copy(x) for k, x in v.items()}
    if isinstance(v, list):
        return [deep_copy(x) for x in v]
    return v
