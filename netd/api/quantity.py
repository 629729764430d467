"""Kubernetes resource quantities ("500m", "1Gi", "1e3"): parse, compare, print canonically.

Follows k8s.io/apimachinery/pkg/api/resource: a quantity keeps the *format* its suffix
implies (BinarySI for Ki/Mi/…, DecimalExponent for e/E, DecimalSI otherwise) and prints in
that format's canonical form, which is what validation messages and kubectl show
(`must be less than or equal to cpu limit of 500m`).
"""
from __future__ import annotations

import decimal
import re
from decimal import Decimal

BINARY_SI = "BinarySI"
DECIMAL_SI = "DecimalSI"
DECIMAL_EXPONENT = "DecimalExponent"

# The regular expression apimachinery quotes when a quantity fails to parse.
QUANTITY_REGEX_TEXT = "^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$"
PARSE_ERROR = "quantities must match the regular expression '" + QUANTITY_REGEX_TEXT + "'"

_NUMBER = re.compile(r"^([+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))(.*)$")
_EXPONENT = re.compile(r"^[eE]([+-]?[0-9]+)$")

_BINARY = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}
_DECIMAL = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15,
            "E": 18}
_DECIMAL_SUFFIX = {v: k for k, v in _DECIMAL.items()}
_BINARY_SUFFIX = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"]

# Quantities carry at most nano precision; finer values are rounded up (away from zero),
# as resource.Quantity does when it parses.
_NANO = Decimal("1e-9")
_CTX = decimal.Context(prec=80)


def parse_quantity_with_format(s: str | int | float) -> tuple[Decimal, str]:
    """Parse a quantity and report the format its suffix selects."""
    if isinstance(s, bool):
        raise ValueError(PARSE_ERROR)
    if isinstance(s, int):
        return Decimal(s), DECIMAL_SI
    if isinstance(s, float):
        if s != s or s in (float("inf"), float("-inf")):
            raise ValueError(PARSE_ERROR)
        return _round_nano(Decimal(repr(s))), DECIMAL_SI
    if not isinstance(s, str):
        raise ValueError(PARSE_ERROR)
    m = _NUMBER.match(s)
    if not m:
        raise ValueError(PARSE_ERROR)
    number, suffix = m.group(1), m.group(2)
    try:
        value = Decimal(number)
    except decimal.InvalidOperation as exc:
        raise ValueError(PARSE_ERROR) from exc
    if suffix in _BINARY:
        value = _CTX.multiply(value, Decimal(2) ** _BINARY[suffix])
        fmt = BINARY_SI
    elif suffix in _DECIMAL:
        value = _CTX.multiply(value, Decimal(10) ** _DECIMAL[suffix])
        fmt = DECIMAL_SI
    else:
        em = _EXPONENT.match(suffix)
        if not em:
            raise ValueError(PARSE_ERROR)
        value = _CTX.multiply(value, Decimal(10) ** int(em.group(1)))
        fmt = DECIMAL_EXPONENT
    return _round_nano(value), fmt


def parse_quantity(s: str | int | float) -> Decimal:
    """The numeric value of a quantity; raises ValueError on bad syntax."""
    return parse_quantity_with_format(s)[0]


def _round_nano(value: Decimal) -> Decimal:
    if value == value.to_integral_value():
        return value
    return value.quantize(_NANO, rounding=decimal.ROUND_UP, context=_CTX)


def format_quantity(value: Decimal, fmt: str = DECIMAL_SI) -> str:
    """Canonical text of a value in a format, as resource.Quantity.String() prints it."""
    if value == 0:
        return "0"
    if fmt == BINARY_SI:
        if -1024 < value < 1024 or value != value.to_integral_value():
            # Small or fractional binary quantities print as DecimalSI ("500m", "100").
            fmt = DECIMAL_SI
        else:
            mantissa = int(value)
            power = 0
            while power < 6 and mantissa % 1024 == 0:
                mantissa //= 1024
                power += 1
            return f"{mantissa}{_BINARY_SUFFIX[power]}"
    mantissa, exponent = _canonical_decimal(value)
    if fmt == DECIMAL_EXPONENT:
        return f"{mantissa}" if exponent == 0 else f"{mantissa}e{exponent}"
    suffix = _DECIMAL_SUFFIX.get(exponent)
    if suffix is None:
        return f"{mantissa}e{exponent}"
    return f"{mantissa}{suffix}"


def _canonical_decimal(value: Decimal) -> tuple[int, int]:
    """(mantissa, exponent) with exponent a multiple of 3, as large as exactness allows."""
    # Values are already rounded to nano precision, so some e in -9..0 is exact.
    exponent = -9
    scaled = _CTX.multiply(value, Decimal(10) ** 9)
    for e in (0, -3, -6, -9):
        m = _CTX.multiply(value, Decimal(10) ** (-e))
        if m == m.to_integral_value():
            exponent, scaled = e, m
            break
    mantissa = int(scaled)
    while mantissa != 0 and mantissa % 1000 == 0:
        mantissa //= 1000
        exponent += 3
    return mantissa, exponent


def canonical_quantity(s: str | int | float) -> str:
    """Re-print a quantity canonically ("1024Mi" -> "1Gi", "0.5" -> "500m")."""
    value, fmt = parse_quantity_with_format(s)
    return format_quantity(value, fmt)


def is_quantity(s: object) -> bool:
    try:
        parse_quantity_with_format(s)  # type: ignore[arg-type]
    except ValueError:
        return False
    return True
