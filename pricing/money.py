"""Exact decimals: how quantities and amounts are written."""

from __future__ import annotations

from decimal import Decimal


def plain(value: Decimal) -> Decimal:
    """The shortest exact form without an exponent: 500.000 → 500, 2.50 → 2.5, 1E+2 → 100."""
    if value == value.to_integral_value():
        return value.quantize(Decimal(1))
    return value.normalize()


def text(value: Decimal) -> str:
    """A decimal as the invoice and usage outputs write it: plain, never in exponent form."""
    return format(plain(value), "f")
