"""Python values into and out of Polars (pricing.frames), against Polars' own conversions."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import polars as pl
from hypothesis import given
from hypothesis import strategies as st

from pricing.frames import decimal_literal, python_values, rows_frame

INSTANT = pl.Datetime("us", "UTC")
QUANTITY = pl.Decimal(38, 18)
SCHEMA = {"id": pl.String(), "at": INSTANT, "n": pl.UInt32(), "q": QUANTITY}

instants = st.sampled_from(
    [None, datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 3, 31, 23, 59, tzinfo=UTC)]
)
decimals = (
    st.none()
    | st.decimals(
        min_value=Decimal("-1e19"),
        max_value=Decimal("1e19"),
        allow_nan=False,
        allow_infinity=False,
        places=18,
    )
    | st.integers(-(10**19), 10**19)  # a whole number may come as an int
)
rows = st.lists(st.tuples(st.text(max_size=3), instants, st.integers(0, 2**32 - 1), decimals), max_size=30)


@given(rows)
def test_rows_frame_equals_polars_own_conversion(
    drawn: list[tuple[str, datetime | None, int, Decimal | int | None]],
) -> None:
    assert rows_frame(drawn, SCHEMA).equals(pl.DataFrame(drawn, schema=SCHEMA, orient="row"))


@given(rows)
def test_python_values_equal_polars_own(
    drawn: list[tuple[str, datetime | None, int, Decimal | int | None]],
) -> None:
    frame = rows_frame(drawn, SCHEMA)
    for column in frame.iter_columns():
        assert python_values(column) == column.to_list()


def test_by_hand() -> None:
    march = datetime(2026, 3, 1, tzinfo=UTC)
    frame = rows_frame([("a", march, 1, Decimal("2.50")), ("b", None, 2, None)], SCHEMA)
    assert frame.rows() == [("a", march, 1, Decimal("2.5")), ("b", None, 2, None)]
    assert rows_frame([], SCHEMA).schema == pl.Schema(SCHEMA)
    tiny = pl.select(decimal_literal(Decimal("0.00005"), QUANTITY)).item()
    assert tiny == Decimal("0.00005")
