"""Many Python values into and out of Polars at once, faster than Polars converts them.

Polars converts a Python `datetime` or `Decimal` one value at a time, and slowly (a few
microseconds each); the frames a run builds and reads hold few distinct instants (period and
segment bounds) in thousands of rows. A Python `Decimal` also makes Polars import NumPy (70 ms
of a run that needs none of it): decimals go in as their exact text, cast — rounded at the
type's scale as Polars rounds a `Decimal` it is given.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

import polars as pl


def rows_frame(rows: Sequence[Sequence[Any]], schema: Mapping[str, pl.DataType]) -> pl.DataFrame:
    """A DataFrame of Python rows (tuples in the order of `schema`): each distinct instant of a
    datetime column converted once, decimals as text. 2,000 rows of (id, instant, number):
    3.5 → 0.6 ms."""
    columns: list[Sequence[Any]] = list(zip(*rows, strict=True)) if rows else [() for _ in schema]
    data = {}
    for (name, dtype), values in zip(schema.items(), columns, strict=True):
        if isinstance(dtype, pl.Decimal):
            data[name] = decimal_series(name, values, dtype)
        elif isinstance(dtype, pl.Datetime):
            distinct: dict[Any, int] = {}
            positions = [distinct.setdefault(v, len(distinct)) for v in values]
            data[name] = pl.Series(name, list(distinct), dtype=dtype).gather(positions)
        else:
            data[name] = pl.Series(name, values, dtype=dtype)
    return pl.DataFrame(data, schema=schema)


def decimal_series(name: str, values: Sequence[Decimal | int | None], dtype: pl.DataType) -> pl.Series:
    """Decimals (ints too) as a Series of decimal type `dtype`, through their exact text."""
    texts = [None if v is None else format(Decimal(v), "f") for v in values]
    return pl.Series(name, texts, dtype=pl.String).cast(dtype)


def decimal_literal(value: Decimal, dtype: pl.DataType) -> pl.Expr:
    """A decimal constant of type `dtype`."""
    return pl.lit(format(value, "f")).cast(dtype)


def python_values(column: pl.Series) -> list[Any]:
    """A column's Python values, a datetime converted once per distinct instant (Polars
    converts each: 40,000 of a few instants 11 → 3 ms; its decimals it converts as fast)."""
    if isinstance(column.dtype, pl.Datetime):
        distinct = column.unique()
        instant = dict(zip(distinct.to_physical().to_list(), distinct.to_list(), strict=True))
        return [instant[v] for v in column.to_physical().to_list()]
    return column.to_list()
