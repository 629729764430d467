"""Just enough of resource.Quantity for `netd describe node`: parse the suffixes a
manifest may use, sum them, and print totals the way Quantity.String() does for
the usual cases (cpu as cores or millicores, memory with a binary or SI suffix)."""
from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any

_BINARY = {"Ki": 2 ** 10, "Mi": 2 ** 20, "Gi": 2 ** 30, "Ti": 2 ** 40, "Pi": 2 ** 50,
           "Ei": 2 ** 60}
_DECIMAL = {"n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"), "": Decimal(1),
            "k": Decimal("1e3"), "M": Decimal("1e6"), "G": Decimal("1e9"), "T": Decimal("1e12"),
            "P": Decimal("1e15"), "E": Decimal("1e18")}
_RE = re.compile(r"^([+-]?[0-9.]+)([eE][+-]?[0-9]+|Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE])?$")


def parse_quantity(value: Any) -> Decimal:
    """The number a Quantity stands for; 0 for anything unparseable."""
    if isinstance(value, bool):
        return Decimal(0)
    if isinstance(value, (int, float)):
        return Decimal(str(value))
    m = _RE.match(str(value).strip())
    if not m:
        return Decimal(0)
    try:
        number = Decimal(m.group(1))
    except InvalidOperation:
        return Decimal(0)
    suffix = m.group(2) or ""
    if suffix in _BINARY:
        return number * _BINARY[suffix]
    if suffix in _DECIMAL:
        return number * _DECIMAL[suffix]
    return number * (Decimal(10) ** int(suffix[1:]))


def format_quantity(value: Decimal | int, resource: str) -> str:
    v = Decimal(value)
    if v == 0:
        return "0"
    if resource == "cpu":
        if v == v.to_integral_value():
            return str(int(v))
        return f"{int((v * 1000).to_integral_value(rounding='ROUND_CEILING'))}m"
    if v != v.to_integral_value():
        return str(v.normalize())
    n = int(v)
    for suffix, size in sorted(_BINARY.items(), key=lambda kv: -kv[1]):
        if n % size == 0:
            return f"{n // size}{suffix}"
    for suffix in ("E", "P", "T", "G", "M", "k"):
        size = int(_DECIMAL[suffix])
        if n % size == 0:
            return f"{n // size}{suffix}"
    return str(n)
