"""Resource quantities: parsing, comparison and canonical printing (resource.Quantity)."""
from __future__ import annotations

from decimal import Decimal

import pytest

from netd.api.quantity import (BINARY_SI, DECIMAL_EXPONENT, DECIMAL_SI, canonical_quantity,
                               format_quantity, parse_quantity, parse_quantity_with_format)

PARSE = [
    ("500m", Decimal("0.5"), DECIMAL_SI), ("1", Decimal(1), DECIMAL_SI),
    ("1Ki", Decimal(1024), BINARY_SI), ("1.5Gi", Decimal(1610612736), BINARY_SI),
    ("2k", Decimal(2000), DECIMAL_SI), ("1M", Decimal(10 ** 6), DECIMAL_SI),
    ("1E", Decimal(10 ** 18), DECIMAL_SI), ("1e3", Decimal(1000), DECIMAL_EXPONENT),
    ("1E3", Decimal(1000), DECIMAL_EXPONENT), ("12e-3", Decimal("0.012"), DECIMAL_EXPONENT),
    ("+1", Decimal(1), DECIMAL_SI), ("-1", Decimal(-1), DECIMAL_SI),
    (".5", Decimal("0.5"), DECIMAL_SI), ("100n", Decimal("1e-7"), DECIMAL_SI),
    ("1.0000000001", Decimal("1.000000001"), DECIMAL_SI),
    (3, Decimal(3), DECIMAL_SI), (0.25, Decimal("0.25"), DECIMAL_SI),
]


@pytest.mark.parametrize("text,value,fmt", PARSE, ids=[str(p[0]) for p in PARSE])
def test_parse(text: str | int | float, value: Decimal, fmt: str) -> None:
    assert parse_quantity_with_format(text) == (value, fmt)


@pytest.mark.parametrize("text", ["", "abc", "1.2.3", "1Kb", " 1", "1 ", "--1", "1i", "Ki",
                                  "1e", True, None],
                         ids=["empty", "letters", "two-dots", "bad-suffix", "lead-space",
                              "trail-space", "double-sign", "bare-i", "no-number",
                              "bare-e", "bool", "none"])
def test_parse_rejects(text: object) -> None:
    with pytest.raises(ValueError):
        parse_quantity(text)  # type: ignore[arg-type]


CANONICAL = [
    ("0.5", "500m"), ("500m", "500m"), ("1000m", "1"), ("1500", "1500"), ("2000", "2k"),
    ("1024Mi", "1Gi"), ("1536Mi", "1536Mi"), ("1000Ki", "1000Ki"), ("0.5Gi", "512Mi"),
    ("512", "512"), ("1e3", "1e3"), ("1000e-3", "1"), ("0.1m", "100u"), ("0", "0"),
    ("0Gi", "0"), ("-1500m", "-1500m"), ("1.5", "1500m"), ("100Mi", "100Mi"),
]


@pytest.mark.parametrize("text,want", CANONICAL, ids=[c[0] for c in CANONICAL])
def test_canonical(text: str, want: str) -> None:
    assert canonical_quantity(text) == want


def test_format_decimal_si_default() -> None:
    assert format_quantity(Decimal("0.25")) == "250m"
    assert format_quantity(Decimal(3 * 10 ** 21)) == "3e21"
