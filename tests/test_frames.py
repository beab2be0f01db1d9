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


@given(
    st.lists(
        st.none()
        | st.datetimes(
            min_value=datetime(1900, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)
        ),
        max_size=10,
    ),
    st.sampled_from(["ns", "us", "ms"]),
    st.sampled_from(["UTC", "Europe/Paris", "America/New_York", None]),
)
def test_instants_equal_polars_own_in_every_unit_and_zone(
    drawn: list[datetime | None], unit: str, zone: str | None
) -> None:
    """Instants go in and out through the integers a datetime type holds: the same values (and
    the same Python objects: naive without a zone, else in the zone) as Polars' conversions,
    before 1970 too, and a time unit coarser than Python's (ms) truncated as Polars does."""
    dtype = pl.Datetime(unit, zone)  # type: ignore[arg-type]
    values = [v if v is None or zone is not None else v.replace(tzinfo=None) for v in drawn]
    polars_own = pl.Series("at", values, dtype=dtype)
    assert rows_frame([(v,) for v in values], {"at": dtype}).get_column("at").equals(polars_own)
    assert [repr(v) for v in python_values(polars_own)] == [repr(v) for v in polars_own.to_list()]
