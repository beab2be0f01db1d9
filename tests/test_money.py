"""How exact decimals are written (pricing.money)."""

from __future__ import annotations

from decimal import Context, Decimal, localcontext

from hypothesis import given
from hypothesis import strategies as st

from pricing.money import plain, text


def test_by_hand() -> None:
    assert text(Decimal("500.000")) == "500"
    assert text(Decimal("2.50")) == "2.5"
    assert text(Decimal("1E+2")) == "100"
    assert text(Decimal("0E-18")) == "0"
    assert text(Decimal("-0.000")) == "0"
    assert text(Decimal("-12.340")) == "-12.34"
    assert text(Decimal("0.00005")) == "0.00005"
    assert text(Decimal("1.0E-7")) == "0.0000001"  # (str writes these two with an exponent)
    assert text(Decimal("-2.50E+3")) == "-2500"
    with localcontext(Context(capitals=0)):  # (str writes 1e+2 there)
        assert text(Decimal("1E+2")) == "100"
    # more digits than Python's default context holds (28) are all written: a Decimal(38, 18)
    # quantity, and a whole amount of 30 digits (these were rounded, and raised, before)
    assert (
        text(Decimal("12345678901234567890.123456789012345678")) == "12345678901234567890.123456789012345678"
    )
    assert text(Decimal("1E+29")) == "100000000000000000000000000000"
    assert plain(Decimal("12345678901234567890.1234567890123456780")) == Decimal(
        "12345678901234567890.123456789012345678"
    )


@given(st.decimals(allow_nan=False, allow_infinity=False))
def test_text_is_exact_and_plain(value: Decimal) -> None:
    written = text(value)
    assert Decimal(written) == value
    assert "E" not in written.upper()
    assert not ("." in written and written.endswith(("0", ".")))
    assert written != "-0"
