"""Metering: one lazy Polars plan that measures every billable metric and fills the ledger.

The plan is one linear pipeline over the events — no branches, so no cached copies — and its
aggregation uses only reductions that Polars' streaming engine streams (LATEST too: the value at
the greatest (timestamp, row) key). The dedup's window holds the scanned events until it is
done; for Parquet from 2M events, or where they would not fit, a pre-pass finds the duplicate
rows instead (by sorting a hash of the ids: 8 bytes per event), and the plan streams in memory
that grows with the duplicates, not with the events:

1. scan        every file, in input order, keeping (`_file`, `_row`)
2. validate    a missing required field or an unparseable timestamp       → invalid
3. dedup       the first valid row of each `transaction_id` in input order → else duplicate
               (a window over the scan; for Parquet from 2M events and for events too many
               to hold, the positions of the duplicate rows, found by a pre-pass over the id
               columns and looked up: `choose_dedup`, `PrePass`)
4. resolve     the customer behind an id or alias (a lookup)       → else unknown_customer
               the piece of the run's calendar the event lies in: each customer's time cut
               into parts of statement periods and gaps, found by (customer, UTC day) in a
               dense table and the piece boundaries inside that day (lookups, not joins, so
               the events' columns are never copied): an uncounted piece, or a gap outside
               the run                                                  → outside_run
               a gap inside the run                                     → no_contract
5. numbers     the metrics' `filter:`/`value:` expressions as columns; a matched metric's
               aggregation key that is not a number, or an error of its expressions
               (not a number, division by zero, out of range)            → invalid (for the run)
6. metrics     rows matching no metric                                     → unmatched; else rated
7. group       one group_by over the file, the bucket, the invalid reason (an invalid row's
               position too, so the ledger can show the first ones), and — for rated
               rows — the piece of the calendar (customer, contract, period, segment), the
               window, every property a metric groups on or counts distinct values of (on
               the rows those metrics match; null on the others), and
               each metric's verdict on the row (64 to an integer word: what metrics only
               filter on enters through their verdicts), with count and the reductions (sum,
               max, min, latest) the metrics take of their numeric keys and `value:` columns:
               the pre-aggregation.

Each metric is then a filter (its verdict) and re-aggregation of that small table, and the
ledger its sums.
When a sample of the events shows that grouping by all keys at once would hardly shrink them
(a high-cardinality key), step 7 is PER_METRIC instead: the resolved rows are cached (still one
scan) and grouped once for the ledger and once per metric by that metric's own keys, each
metric's groups tagged `_metric`.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from typing import Any, TypeVar

import polars as pl

from pricing import ir
from pricing.compiler.link import Project
from pricing.engine.calendar import Calendar, Interval
from pricing.engine.choices import (
    PRE_AGGREGATED,
    PRE_PASS,
    choose_dedup,
    choose_engine,
    choose_strategy,
    counted_rows,
)
from pricing.engine.repair import skipped_lines, unread_found
from pricing.engine.scan import PREFIX, UTC_TIME, scan_events
from pricing.engine.sources import READ_ERRORS, EventFile, EventReadError
from pricing.expr.ast import properties
from pricing.expr.lower import Columns, Lowered, lower, not_a_number
from pricing.expr.types import check
from pricing.frames import rows_frame
from pricing.money import plain

T = TypeVar("T")

SCALE = 18  # decimal places kept for event quantities: exact for every value written with fewer
QUANTITY = pl.Decimal(38, SCALE)
QUANTITY_LIMITS = "quantities can hold (38 digits, 18 after the point)"  # (in messages)
BUCKETS = ("rated", "duplicate", "unknown_customer", "no_contract", "unmatched", "outside_run", "invalid")
INVALID_EXAMPLES = 5  # rows shown per invalid reason
INVALID_SHOWN = 100  # rows shown in all: a reason names its value, so 200,000 bad values were as
# many reasons (a 31 MB run.json and a terminal table of 200,000 rows, 34 s)
WINDOWS = {"HOUR": "1h", "DAY": "1d", "PERIOD": None}


def _missing(field: str) -> pl.Expr:
    """An event field that is absent, or empty text (an empty id would make every other event
    with one a duplicate; an empty CSV cell is absent already)."""
    return pl.col(field).is_null() | (pl.col(field) == "")


def _bucket(name: str) -> pl.Expr:
    """A ledger bucket as a row's `_bucket`: an Enum, so that the pre-aggregation groups by a
    small integer rather than by the text (10M events: 2.88 → 2.80 s)."""
    return pl.lit(name, dtype=pl.Enum(BUCKETS))


@dataclass(frozen=True, slots=True)
class Measure:
    """A metric measured per group: the group is a tuple of property names (maybe empty)."""

    metric: ir.Metric
    group: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class InvalidRow:
    reason: str
    file: str
    row: int


@dataclass(frozen=True, slots=True)
class Ledger:
    """Where every input row went. The buckets add up to `rows`."""

    rows: int
    buckets: dict[str, int]
    invalid: tuple[InvalidRow, ...] = field(default=())

    def as_dict(self) -> dict[str, object]:
        return {
            "rows": self.rows,
            "buckets": dict(self.buckets),
            "invalid_examples": [{"reason": r.reason, "file": r.file, "row": r.row} for r in self.invalid],
        }


def col(name: str) -> pl.Expr:
    return pl.col(PREFIX + name)


def lower_filter(metric: ir.Metric) -> pl.Expr:
    """A metric's event-type and property filters as one boolean expression. A comparison with
    an absent property is null, and a null verdict is false."""
    conditions: list[pl.Expr] = []
    etf = metric.event_type_filter
    if etf is not None and etf.in_values is not None:
        conditions.append(pl.col("event_type").is_in(list(etf.in_values)))
    if etf is not None and etf.not_in_values is not None:
        conditions.append(~pl.col("event_type").is_in(list(etf.not_in_values)))
    for f in metric.property_filters:
        value = col(f.name)
        if f.exists is True:
            conditions.append(value.is_not_null())
        elif f.exists is False:
            conditions.append(value.is_null())
        if f.in_values is not None:
            conditions.append(value.is_in(list(f.in_values)))
        if f.not_in_values is not None:
            conditions.append(value.is_null() | ~value.is_in(list(f.not_in_values)))
    if metric.filter is not None:
        conditions.append(pl.col(FILTERED + metric.id))
    if not conditions:
        return pl.lit(True)
    return pl.all_horizontal(conditions).fill_null(False)


def needs_number(metric: ir.Metric) -> bool:
    return metric.aggregation_type not in (ir.AggregationType.COUNT, ir.AggregationType.UNIQUE)


FILTERED = "f."  # the column holding a metric's `filter` expression: true, or false (never null)
MATCHED = "m."  # the column telling whether a row passes all of a metric's filters
FIRST_ERROR = "_first_error"  # the number of the first error a metric finds in a row, if any
VALUE = "v."  # the column holding a metric's `value` expression


def lower_expression(metric: ir.Metric, role: str) -> Lowered:
    """A metric's `filter` or `value` as a Polars expression over the scanned events."""
    expression = metric.filter if role == "filter" else metric.value
    assert expression is not None
    typing = check(expression.ast, role)
    return lower(expression.ast, typing.types, dict(expression.instants), COLUMNS, f"_{role}.{metric.id}.")


def value_of(metric: ir.Metric) -> ir.Expression | None:
    """The metric's `value` expression, unless it counts (COUNT ignores it, warning W503)."""
    return None if metric.aggregation_type is ir.AggregationType.COUNT else metric.value


def source(metric: ir.Metric) -> str:
    """The column a (non-COUNT) metric aggregates: its value expression, its key as a number,
    or — for UNIQUE — its key as text."""
    if value_of(metric) is not None:
        return VALUE + metric.id
    key = metric.aggregation_key or ""
    return NUMBER + key if needs_number(metric) else PREFIX + key


def number(name: str) -> pl.Expr:
    """A property read as an exact decimal; null when absent or not a number. Surrounding
    whitespace is allowed; only values that do not read as they are get stripped (stripping
    every value doubles the cost)."""
    text = col(name)
    direct = text.cast(QUANTITY, strict=False)
    return pl.coalesce(
        direct, pl.when(direct.is_null()).then(text).str.strip_chars().cast(QUANTITY, strict=False)
    )


def metric_expressions(metric: ir.Metric) -> list[tuple[str, str]]:
    """What `pricing explain` shows of a metric: its expressions as written, its compiled
    predicate (property filters and `filter`) and the compiled value it aggregates."""
    shown: list[tuple[str, str]] = []
    predicate = lower_filter(replace(metric, filter=None))
    if metric.filter is not None:
        shown.append(("filter", " ".join(metric.filter.text.split())))
        lowered = lower_expression(metric, "filter")
        shown += [("let", f"{name} = {expr}") for name, expr in lowered.steps]
        predicate = predicate & lowered.expr.fill_null(False)
    shown.append(("predicate", str(predicate)))
    value = value_of(metric)
    if value is not None:
        shown.append(("value", " ".join(value.text.split())))
        lowered = lower_expression(metric, "value")
        shown += [("let", f"{name} = {expr}") for name, expr in lowered.steps]
        compiled = lowered.expr
    elif metric.aggregation_type is ir.AggregationType.COUNT:
        compiled = pl.len()
    else:
        key = metric.aggregation_key or ""
        compiled = number(key) if needs_number(metric) else col(key)
    shown.append(("compiled", str(compiled)))
    return shown


NUMBER = "n."  # the column holding number(name), computed once per run
COLUMNS = Columns(text=col, number=number, number_type=QUANTITY)


def properties_used(measures: Iterable[Measure]) -> set[str]:
    names: set[str] = set()
    for m in measures:
        names.update(f.name for f in m.metric.property_filters)
        names.update(m.group)
        if m.metric.aggregation_key:
            names.add(m.metric.aggregation_key)
        for expression in (m.metric.filter, m.metric.value):
            if expression is not None:
                names.update(properties(expression.ast))
    return names


DAY = timedelta(days=1)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def pieces_frame(project: Project, calendar: Calendar) -> pl.DataFrame:
    """Every customer's time from the calendar's first day to its last, cut into pieces: the
    calendar's intervals and the gaps between them (no contract). `_piece` numbers them."""
    first_day, last_day = _days(calendar)
    intervals_of: dict[str, list[Interval]] = {}
    for interval in calendar.intervals:
        intervals_of.setdefault(interval.customer, []).append(interval)
    rows: list[tuple[object, ...]] = []
    gap = (None, None, None, False)
    for customer in project.customers.values():
        cursor = first_day
        for i in sorted(intervals_of.get(customer.id, ()), key=lambda i: i.lo):
            if i.lo > cursor:
                rows.append((customer.id, cursor, i.lo, *gap))
            rows.append((customer.id, i.lo, i.hi, i.contract, *i.period, i.counted))
            cursor = max(cursor, i.hi)
        if cursor < last_day:
            rows.append((customer.id, cursor, last_day, *gap))
    schema: dict[str, pl.DataType] = {
        "_customer": pl.String(),
        "_lo": UTC_TIME,
        "_hi": UTC_TIME,
        "contract_id": pl.String(),
        "period_start": UTC_TIME,
        "period_end": UTC_TIME,
        "_counted": pl.Boolean(),
    }
    return rows_frame(rows, schema).with_row_index("_piece")


def _days(calendar: Calendar) -> tuple[datetime, datetime]:
    """The UTC days the calendar touches: [first midnight, last midnight)."""
    first = datetime.combine(calendar.first.date(), time(), UTC)
    last = datetime.combine((calendar.last - timedelta.resolution).date(), time(), UTC) + DAY
    return first, last


def locator(
    project: Project, calendar: Calendar, pieces: pl.DataFrame
) -> Callable[[pl.LazyFrame], pl.LazyFrame]:
    """What adds to events where each belongs (its tables are worked out once, here):
    `_customer`, the index of the customer behind its id or alias (null: unknown); `_piece`, the
    piece of that customer's time its timestamp lies in (null outside the calendar's days); the
    piece's `_counted` and `_in_contract`.

    A piece is found by (customer, UTC day) in a dense table of the first piece of every day,
    plus one for each piece boundary inside that day that the timestamp has passed (a sparse
    table, joined: few days have one)."""
    customers = list(project.customers.values())
    names = {c.id: i for i, c in enumerate(customers)}
    for i, c in enumerate(customers):
        names.update(dict.fromkeys(c.ingest_aliases, i))
    # the id or alias as an Enum of every name (null: unknown), its position giving the customer
    known = pl.col("customer_id").cast(pl.Enum(list(names)), strict=False).to_physical()
    customer = pl.lit(pl.Series(list(names.values()), dtype=pl.Int64)).gather(known)
    first, last = _days(calendar)
    d0, days = (first - EPOCH).days, (last - first).days
    micros = DAY // timedelta.resolution
    lo, hi = pl.col("_lo").dt.epoch("us"), pl.col("_hi").dt.epoch("us")
    row = days * pl.col("_customer").replace_strict(  # where a customer's days start in the table
        [c.id for c in customers], range(len(customers)), default=None, return_dtype=pl.Int64
    )
    # a piece covers the midnights of its days from the first at or after its start to the last
    # before its end; each midnight of a customer's days is covered by exactly one piece
    midnights = pieces.select(
        "_piece",
        (row - d0 + -(-lo // micros)).alias("_from"),
        (row - d0 + -(-hi // micros)).alias("_to"),
    ).filter(pl.col("_from") < pl.col("_to"))
    # the dense table: the piece covering each day's midnight, set where it starts covering them
    # and carried forward to the days after (every customer's first midnight is covered)
    start = (
        pl.repeat(None, len(customers) * days, dtype=pl.UInt32, eager=True)
        .scatter(midnights.get_column("_from"), midnights.get_column("_piece"))
        .forward_fill()
    )
    if start.null_count():  # pieces_frame covers every customer's every day
        raise AssertionError(f"{start.null_count()} customer days have no piece")
    inside = (  # the pieces starting after midnight of a day: boundaries within it
        pieces.filter(lo % micros != 0)
        .group_by((row - d0 + lo // micros).alias("_key"))
        .agg(pl.col("_lo").sort())
    )
    day = pl.col("timestamp").dt.epoch("d") - d0
    piece = pl.lit(start).gather(pl.col("_key"))
    most = int(inside.select(pl.col("_lo").list.len().max().fill_null(0)).item())
    boundaries = inside.select(
        "_key", *(pl.col("_lo").list.get(m, null_on_oob=True).alias(f"_inside{m}") for m in range(most))
    )
    for m in range(most):
        piece = piece + (pl.col("timestamp") >= pl.col(f"_inside{m}")).fill_null(False).cast(pl.UInt32)
    contracted = pieces.get_column("contract_id").is_not_null()

    def locate(frame: pl.LazyFrame) -> pl.LazyFrame:
        # One step per column: each reads the one before as a plain column (measured faster than
        # one nested expression). Lookups that Polars' streaming engine streams: a gather from a
        # literal, an Enum cast, a join to a small table (a replace_strict would hold every event).
        located = frame.with_columns(customer.alias("_customer")).with_columns(
            pl.when((day >= 0) & (day < days)).then(pl.col("_customer") * days + day).alias("_key")
        )
        if most:
            located = located.join(boundaries.lazy(), on="_key", how="left")
        return (
            located.with_columns(piece.alias("_piece"))
            .drop(boundaries.columns[1:])
            .with_columns(
                pl.lit(pieces.get_column("_counted")).gather(pl.col("_piece")).alias("_counted"),
                pl.lit(contracted).gather(pl.col("_piece")).alias("_in_contract"),
            )
        )

    return locate


@dataclass(frozen=True, slots=True)
class MeterPlan:
    """The compiled metering plan of a run: one lazy aggregation of the events from which every
    metric and the ledger are derived. PRE_AGGREGATED: one group per bucket and combination of
    every key any metric uses; PER_METRIC: one group per bucket, plus each metric's own groups
    (tagged `_metric`), all from the same scan."""

    pieces: pl.DataFrame  # what the frame's `_piece` stands for: customer, contract, period, bounds
    window: str
    files: tuple[EventFile, ...]
    measures: tuple[Measure, ...]
    strategy: str  # PRE_AGGREGATED or PER_METRIC
    strategy_reason: str
    engine: str  # "in-memory" or "streaming"
    engine_reason: str
    dedup: str  # WINDOW or PRE_PASS
    dedup_reason: str
    repeated: PrePass | None  # PRE_PASS: how to find the positions of the duplicate rows
    # the metering query over the positions of the duplicate rows, or (None) finding them itself
    # by the window
    over: Callable[[pl.Series | None], pl.LazyFrame]

    @property
    def frame(self) -> pl.LazyFrame:
        """The metering as one query, the duplicates found by the window: a WINDOW run's query."""
        return self.over(None)

    def queries(self) -> list[tuple[str, pl.LazyFrame]]:
        """The Polars queries a run collects, one after the other, each with what it finds; what
        a query is given from the one before shows as the (empty) Series it looks values up in."""
        if self.repeated is None:
            return [("metering", self.frame)]
        hashes = self.repeated.candidates
        return [
            ("pre-pass 1: the hashes of ids that rows repeat (read from the id column alone)", hashes),
            (
                "pre-pass 2: the valid rows with those hashes that are not the first of their id",
                self.repeated.confirm(_placeholder(HASH)),
            ),
            ("metering, with the positions of those rows", self.over(_placeholder(ORDER))),
        ]


def _placeholder(name: str) -> pl.Series:
    return pl.Series(name, [], pl.UInt64)


ID_HASH = pl.col("transaction_id").hash()
HASH, ORDER = "_hash", "_order"  # a row's id hash; its position in the input (file, row)


@dataclass(frozen=True, slots=True)
class PrePass:
    """The pre-pass in two steps, each collected on its own. Sorting a 64-bit hash of each row's
    id and comparing neighbours takes a third of the time of grouping the rows by the ids
    themselves (10M events: 0.55 s against 1.6 s; it holds 8 bytes per event), so the first
    step finds the hashes that rows repeat — of every row, valid or not, so that it reads the id
    column alone (10M events: 0.37–0.48 → 0.24–0.29 s against hashing the valid rows' ids, which
    reads the four fields that make a row valid); the second reads the valid rows with such a
    hash and compares the ids themselves — exact: a hash shared by two different ids, or by an
    id's valid and invalid rows, costs a few rows more in the second step, nothing else. What it
    finds is the positions of the duplicate rows, which the metering looks up (`is_in` of a set
    of integers). A join of the events to the repeated ids, the way it was first written, held
    about 35 bytes of every event in Polars' streaming join (100M events: 8.6 GB and 37 s for
    the metering query)."""

    candidates: pl.LazyFrame  # `_hash`: the hashes of ids that more than one row carries
    confirm: Callable[[pl.Series], pl.LazyFrame]  # those hashes → `_order` of each duplicate row

    def collect(self, engine: Any) -> pl.Series:
        """The positions (`_order`) of the duplicate rows."""
        hashes = self.candidates.collect(engine=engine).get_column(HASH)
        return self.confirm(hashes).collect(engine=engine).get_column(ORDER)


def duplicate_rows(events: pl.LazyFrame) -> PrePass:
    """The pre-pass: every valid row whose transaction id an earlier valid row carries (in input
    order), found through `ID_HASH`."""
    order = pl.col(ORDER)

    def confirm(candidates: pl.Series) -> pl.LazyFrame:
        return (
            events.filter(pl.col("_reason").is_null() & ID_HASH.is_in(candidates.implode()))
            .select("transaction_id", ORDER)
            .filter(order != order.min().over("transaction_id"))
            .select(ORDER)
        )

    hashes = events.with_columns(ID_HASH.alias(HASH)).select(HASH).sort(HASH)
    return PrePass(hashes.filter(pl.col(HASH) == pl.col(HASH).shift(1)), confirm)


def deduplicate(events: pl.LazyFrame, duplicates: pl.Series | None) -> pl.LazyFrame:
    """`_duplicate`: a valid row that is not the first valid row of its transaction id in input
    order (invalid rows claim no id) — the rows a pre-pass found, or else the WINDOW over the one
    scan: the valid rows' ids (null for the others), not the first of their value in the scan's
    order. (`is_first_distinct` ran as fast as the minimum position per id over a window it
    replaced, in less memory: 10M NDJSON events 17.2–17.7 s and 2.8 GB against 16.7–20.1 s and
    4.7 GB; 10M Parquet 4.4–4.8 s and 1.9 GB against 4.2–4.8 s and 2.4 GB.)"""
    if duplicates is not None:
        return events.with_columns(pl.col(ORDER).is_in(duplicates.implode()).alias("_duplicate"))
    valid = pl.col("_reason").is_null()
    first = pl.when(valid).then(pl.col("transaction_id")).is_first_distinct()
    return events.with_columns((valid & ~first).alias("_duplicate"))


SEGMENT = "SEGMENT"  # the calendar's intervals as windows: the parts of a period between price changes


def _clock_window(expr: pl.Expr, every: str, timezone: str) -> list[pl.Expr]:
    """An event's HOUR or DAY window on the project's clock, as UTC instants."""
    local = expr.dt.convert_time_zone(timezone).dt.truncate(every)
    return [
        local.dt.convert_time_zone("UTC").alias("window_start"),
        local.dt.offset_by(every).dt.convert_time_zone("UTC").alias("window_end"),
    ]


def _piece_window(window: str) -> list[pl.Expr]:
    """A SEGMENT or PERIOD window: the piece's own bounds, or its statement period's."""
    lo, hi = ("_lo", "_hi") if window == SEGMENT else ("period_start", "period_end")
    return [pl.col(lo).alias("window_start"), pl.col(hi).alias("window_end")]


# A row's position in the input: its file, then its row (numbered across the files one scan
# reads: up to 2^40 of them, in up to 2^24 files).
ROW_BITS = 40
_ORDER = pl.col("_file").cast(pl.UInt64) * (1 << ROW_BITS) + pl.col("_row").cast(pl.UInt64)
_KEYS = ("customer_id", "contract_id", "period_start", "period_end", "window_start", "window_end")


def first_of(
    errors: Sequence[tuple[pl.Expr, str, str]], reasons: Mapping[str, pl.Expr]
) -> tuple[list[pl.Expr], pl.Expr]:
    """The column holding the number of a row's first error, in order, and the text of that
    error: its reason (by name in `reasons`) and its words. Each error is (condition, reason,
    words). The number comes first, so that the expressions grow with the errors: a chain of
    when/otherwise, one link an error, took Polars time and memory that grew with their square
    (3.5 s and 2 GB to meter one event with 800 metrics)."""
    if not errors:
        return [], pl.lit(None, dtype=pl.String)
    first = pl.coalesce(*(pl.when(c).then(pl.lit(i, pl.UInt32)) for i, (c, _, _) in enumerate(errors)))
    numbers = {name: n for n, name in enumerate(reasons)}
    reason = pl.lit(pl.Series([numbers[r] for _, r, _ in errors], dtype=pl.UInt32)).gather(
        pl.col(FIRST_ERROR)
    )
    words = pl.lit(pl.Series([w for _, _, w in errors], dtype=pl.String)).gather(pl.col(FIRST_ERROR))
    text = pl.coalesce(*(pl.when(reason == n).then(reasons[name]) for name, n in numbers.items()))
    return [first.alias(FIRST_ERROR)], text + words


def compile_meter(
    project: Project,
    files: Sequence[EventFile],
    measures: Sequence[Measure],
    calendar: Calendar,
    window: str = "PERIOD",
    engine: str = "auto",
    strategy: str = "auto",
    dedup: str = "auto",
) -> MeterPlan:
    props = properties_used(measures)
    by_id = {m.metric.id: m.metric for m in measures}
    metrics = {mid: by_id[mid] for mid in metric_ids(measures)}  # in the order of their verdicts
    filters = {mid: lower_expression(m, "filter") for mid, m in metrics.items() if m.filter}
    values = {mid: lower_expression(m, "value") for mid, m in metrics.items() if value_of(m)}
    # each metric's verdict on a row, a column computed once and read by the checks and the bucket
    matches = {mid: pl.col(MATCHED + mid) for mid in metrics}
    counted = [m for m in metrics.values() if m.aggregation_type is not ir.AggregationType.COUNT]
    numeric = sorted({source(m) for m in counted if needs_number(m)})
    numeric_keys = sorted(n.removeprefix(NUMBER) for n in numeric if n.startswith(NUMBER))
    # The pre-aggregation's keys, besides where a row is counted: the properties metrics group on
    # or count distinct values of, each kept on the rows of the metrics that use it alone (so
    # that user ids under a UNIQUE of logins do not split the groups of every other event that
    # carries one), and each metric's verdict on the row (packed into words). What metrics only
    # filter on enters through their verdicts, not by its values: the event type, `{name: model,
    # in_values: […]}`, `{name: tokens, exists: true}` (which must not make every token count a
    # group of its own).
    users: dict[str, set[str]] = {}
    for measure in measures:
        for g in measure.group:
            users.setdefault(PREFIX + g, set()).add(measure.metric.id)
    for metric in counted:
        if metric.aggregation_type is ir.AggregationType.UNIQUE:
            users.setdefault(source(metric), set()).add(metric.id)
    grouped = {key: sorted(ids) for key, ids in sorted(users.items())}
    verdicts = packed_verdicts(list(metrics))

    structural = (
        pl.when(pl.col("_malformed").is_not_null())
        .then(pl.col("_malformed"))
        .when(_missing("transaction_id"))
        .then(pl.lit("missing transaction_id"))
        .when(_missing("customer_id"))
        .then(pl.lit("missing customer_id"))
        .when(_missing("event_type"))
        .then(pl.lit("missing event_type"))
        .when(pl.col("_no_timestamp"))
        .then(pl.lit("missing timestamp"))
        .when(pl.col("timestamp").is_null())
        .then(pl.lit("unparseable timestamp"))
    )
    # A row is invalid for the run when a metric that would count it cannot read it: an
    # aggregation key that is not a number, or an error in its filter (once its property filters
    # pass) or in its value (once it matches). Each error: its condition, its reason (metrics
    # that count one key share the key's) and the words that name its metric.
    errors: list[tuple[pl.Expr, str, str]] = []
    reasons: dict[str, pl.Expr] = {}
    for mid, metric in metrics.items():
        if metric.filter is not None:
            reasons["filter " + mid] = reason = filters[mid].error()
            condition = lower_filter(replace(metric, filter=None)) & reason.is_not_null()
            errors.append(
                (condition, "filter " + mid, f" (metric '{mid}', filter: {metric.filter.text.strip()})")
            )
        if (value := value_of(metric)) is not None:
            reasons["value " + mid] = reason = values[mid].error()
            errors.append(
                (
                    matches[mid] & reason.is_not_null(),
                    "value " + mid,
                    f" (metric '{mid}', value: {value.text.strip()})",
                )
            )
        elif (key := metric.aggregation_key) is not None and needs_number(metric):
            wrong, reasons["key " + key] = not_a_number(key, col(key), pl.col(NUMBER + key))
            errors.append((matches[mid] & wrong, "key " + key, f" (metric '{mid}')"))
    first_error, bad_number = first_of(errors, reasons)
    any_match = pl.any_horizontal(*matches.values()) if matches else pl.lit(False)
    in_run = (pl.col("timestamp") >= calendar.start) & (pl.col("timestamp") < calendar.end)
    no_contract = ~pl.col("_in_contract").fill_null(False)
    bucket = (
        pl.when(pl.col("_reason").is_not_null())
        .then(_bucket("invalid"))
        .when(pl.col("_duplicate"))
        .then(_bucket("duplicate"))
        .when(pl.col("_customer").is_null())
        .then(_bucket("unknown_customer"))
        .when((no_contract & ~in_run) | ~(no_contract | pl.col("_counted")))
        .then(_bucket("outside_run"))
        .when(no_contract)
        .then(_bucket("no_contract"))
        .when(pl.col("_bad_number").is_not_null())
        .then(_bucket("invalid"))
        .when(~any_match)
        .then(_bucket("unmatched"))
        .otherwise(_bucket("rated"))
    )
    every = WINDOWS.get(window)
    clock = [] if every is None else _clock_window(pl.col("timestamp"), every, project.manifest.timezone)
    window_keys = ["window_start", "window_end"] if clock else []
    pieces = pieces_frame(project, calendar)
    rated = pl.col("_bucket") == "rated"

    locate = locator(project, calendar, pieces)
    place = ["_piece", *window_keys]  # where a rated row is counted: its calendar piece and window
    row_count = counted_rows(files) if "auto" in (strategy, dedup) else None
    chosen, why = choose_strategy(
        files, *sample_keys(grouped, list(metrics.values())), len(props), strategy, row_count
    )

    def metered(events: pl.LazyFrame) -> pl.LazyFrame:
        """Steps 4 to 7 over the scanned events, each marked `_duplicate` or not."""
        # 4. the customer behind an id or alias; the piece of its calendar the event lies in
        resolved = locate(events).with_columns(number(k).alias(NUMBER + k) for k in numeric_keys)
        # 5. the metrics' expressions: their intermediate columns, then filters and values
        for lowered in (*filters.values(), *values.values()):
            resolved = lowered.prepare(resolved)
        rows = (
            resolved.with_columns(
                *(f.expr.fill_null(False).alias(FILTERED + mid) for mid, f in filters.items()),
                *(v.expr.alias(VALUE + mid) for mid, v in values.items()),
            )
            # 6. each metric's verdict on the row, then the checks of its values, then the bucket
            .with_columns(lower_filter(metric).alias(MATCHED + mid) for mid, metric in metrics.items())
            .with_columns(*first_error)
            .with_columns(bad_number.alias("_bad_number"))
            .with_columns(bucket.alias("_bucket"))
            .with_columns(
                pl.coalesce("_reason", "_bad_number").alias("_reason"),
                pl.when(pl.col("_bucket") == "invalid").then(pl.col(ORDER)).alias("_invalid_at"),
                *clock,
            )
        )
        # 7. the aggregation: rows that are not rated collapse to one group per bucket and reason
        # (an invalid row is a group of its own, keyed by its position, so that the ledger can
        # show the first ones: a list or top-k aggregation would keep the engine from streaming)
        outcome = ["_file", "_bucket", "_reason", "_invalid_at"]
        ledger = [
            pl.len().alias("_n"),
            pl.col("_row").min().alias("_first_row"),
        ]
        if chosen == PRE_AGGREGATED:
            # where a rated row is counted, the keys its metrics use, its verdicts (others: null)
            keys = {k: pl.col(k) for k in place} | kept_keys(grouped, matches, grouped) | verdicts
            return (
                rows.with_columns(pl.when(rated).then(key).alias(name) for name, key in keys.items())
                .group_by([*outcome, *keys])
                .agg(*ledger, *measured(counted))
            )
        # The resolved rows, computed once (one scan), grouped for the ledger and by each metric.
        shared = rows.cache()
        parts = [shared.group_by(outcome).agg(ledger)]
        for mid, metric in metrics.items():
            own = {PREFIX + g for m in measures if m.metric.id == mid for g in m.group}
            if metric.aggregation_type is ir.AggregationType.UNIQUE:
                own.add(source(metric))
            parts.append(
                shared.filter(rated & matches[mid])
                .group_by([*place, *sorted(own)])
                .agg(pl.len().alias("_n"), *measured([metric]))
                .with_columns(pl.lit(mid).alias("_metric"))
            )
        return pl.concat(parts, how="diagonal_relaxed")

    # 1–2. The events with the properties, their position and structural problems: one scan,
    # read by the pre-pass too (a row's position is numbered across the files of its scan, and
    # files whose property columns differ in type are scans apart only when the properties are
    # read: a pre-pass reading none once numbered them otherwise, and missed their duplicates)
    events = scan_events(files, props).with_columns(structural.alias("_reason"), _ORDER.alias(ORDER))
    # 3. the duplicates: by a window over the scan, or by a pre-pass over the ids (choose_dedup)
    method, method_reason = choose_dedup(files, len(props), dedup, row_count)
    return MeterPlan(
        pieces,
        window,
        tuple(files),
        tuple(measures),
        chosen,
        why,
        *choose_engine(chosen, engine),
        method,
        method_reason,
        duplicate_rows(events) if method == PRE_PASS else None,
        lambda duplicates: metered(deduplicate(events, duplicates)),
    )


def sample_keys(
    grouped: Mapping[str, Sequence[str]], metrics: Sequence[ir.Metric]
) -> tuple[list[pl.Expr], set[str]]:
    """The pre-aggregation's keys besides the customer, for `choose_strategy` to count in a
    sample: the `grouped` properties, each on the rows of the metrics that use it (by their
    ids), and the metrics' verdicts; with the properties they read. On the sample a verdict is
    that of the metric's event-type and property filters (its `filter:` expression, which may
    need more of the run, is left out)."""
    verdicts = {m.id: lower_filter(replace(m, filter=None)) for m in metrics}
    keys = [k for k in grouped if k.startswith(PREFIX)]
    names = {k.removeprefix(PREFIX) for k in keys}
    names |= {f.name for m in metrics for f in m.property_filters}
    return [
        *kept_keys(grouped, verdicts, keys).values(),
        *(verdict.alias(MATCHED + mid) for mid, verdict in verdicts.items()),
    ], names


def kept_keys(
    grouped: Mapping[str, Sequence[str]], verdicts: Mapping[str, pl.Expr], keys: Iterable[str]
) -> dict[str, pl.Expr]:
    """Each of these grouped `keys` kept on the rows where a metric that uses it (`grouped`: key
    → metric ids) matches, by the metrics' `verdicts`; null on the others."""
    return {k: pl.when(pl.any_horizontal(*(verdicts[m] for m in grouped[k]))).then(pl.col(k)) for k in keys}


def metric_ids(measures: Iterable[Measure]) -> list[str]:
    """The ids of the measures' metrics, each once, in order: the order of their verdicts."""
    return sorted({m.metric.id for m in measures})


VERDICTS = "_verdicts"  # + n: the verdicts of the metrics 64n to 64n + 63, one bit each
WORD = 64


def packed_verdicts(ids: Sequence[str]) -> dict[str, pl.Expr]:
    """The metrics' verdicts (their MATCHED columns, in the order of `ids`), 64 to a word: as
    pre-aggregation keys, a few integers hash faster than a column per metric or the values
    the metrics filter on."""
    return {
        f"{VERDICTS}{w}": pl.sum_horizontal(
            pl.col(MATCHED + mid).cast(pl.UInt64) * pl.lit(1 << bit, pl.UInt64)
            for bit, mid in enumerate(ids[w * WORD : (w + 1) * WORD])
        )
        for w in range(math.ceil(len(ids) / WORD))
    }


def unpacked_verdicts(ids: Sequence[str]) -> list[pl.Expr]:
    """The MATCHED column of each metric of `ids`, from the words of `packed_verdicts`."""
    return [
        ((pl.col(f"{VERDICTS}{i // WORD}") & pl.lit(1 << (i % WORD), pl.UInt64)) != 0).alias(MATCHED + mid)
        for i, mid in enumerate(ids)
    ]


def measured(metrics: Iterable[ir.Metric]) -> list[pl.Expr]:
    """The aggregations of the metrics' values (COUNT needs none beyond the row count):
    reductions, the latest value and when it came, and nothing for UNIQUE (a group key)."""
    aggs = []
    reduced = {(source(m), m.aggregation_type.value) for m in metrics if m.aggregation_type in REDUCE}
    aggs += [reduction(ir.AggregationType(kind), name) for name, kind in sorted(reduced)]
    latest = sorted({source(m) for m in metrics if m.aggregation_type is ir.AggregationType.LATEST})
    for name in latest:
        key = pl.when(pl.col(name).is_not_null()).then(LATEST_KEY)
        aggs += [pl.col(name).max_by(key).alias(f"_last.{name}"), key.max().alias(f"_last_key.{name}")]
    return aggs


# When an event came, as one number that orders events as LATEST does: by timestamp, a tie going
# to the later row (`_order`, below 2^64). A max_by on it streams; a sort within each group (the
# way to say "the last by time" otherwise) makes Polars aggregate in memory.
LATEST_KEY = pl.col("timestamp").dt.epoch("us").cast(pl.Int128) * pl.lit(1 << 64, dtype=pl.Int128) + pl.col(
    ORDER
).cast(pl.Int128)

# Aggregations that decompose: the metric reduces the pre-aggregation's column of the same reduction.
REDUCE = {
    ir.AggregationType.SUM: pl.Expr.sum,
    ir.AggregationType.MAX: pl.Expr.max,
    ir.AggregationType.MIN: pl.Expr.min,
}


def reduction(kind: ir.AggregationType, name: str) -> pl.Expr:
    """Column `name` reduced by a decomposing aggregation, named `<KIND>.<name>`."""
    return REDUCE[kind](pl.col(name)).alias(f"{kind.value}.{name}")


def _group_json(group: Sequence[str]) -> pl.Expr:
    if not group:
        return pl.lit("{}")
    return pl.struct([col(g).alias(g) for g in group]).struct.json_encode()


MINE = "_mine"  # whether a row of `metric_rows` is the metric's


def _quantity(metric: ir.Metric) -> tuple[pl.Expr, tuple[str, ...]]:
    """The aggregation of a metric's quantity over its pre-aggregated rows, and the columns it reads."""
    kind = metric.aggregation_type
    if kind is ir.AggregationType.COUNT:
        return pl.col("_n").sum().cast(QUANTITY), ("_n",)
    name = source(metric)
    if kind in REDUCE:
        return reduction(kind, f"{kind.value}.{name}"), (f"{kind.value}.{name}",)
    if kind is ir.AggregationType.UNIQUE:
        return pl.col(name).drop_nulls().n_unique().cast(QUANTITY), (name,)
    # LATEST: the group holding the latest event; ties go to the later row
    return pl.col(f"_last.{name}").max_by(f"_last_key.{name}"), (f"_last.{name}", f"_last_key.{name}")


def metric_rows(
    rated: pl.DataFrame, metric: ir.Metric, group: Sequence[str], keep: Sequence[str]
) -> pl.LazyFrame:
    """The columns of the pre-aggregated rows that `aggregate` reads for `metric` and its
    `group` properties, with `keep`, and whether each row is the metric's (MINE): a PER_METRIC
    plan names each row's metric (`_metric`), a pre-aggregation holds every metric's verdict.
    With many metrics the rows are wide (a verdict a metric), and each metric's plan over all
    their columns took time that grew with the square of the metrics."""
    tagged = "_metric" in rated
    mine = pl.col("_metric") == metric.id if tagged else pl.col(MATCHED + metric.id)
    read = [
        *keep,
        *(PREFIX + g for g in group),
        *_quantity(metric)[1],
        "_metric" if tagged else MATCHED + metric.id,
    ]
    return rated[list(dict.fromkeys(read))].lazy().with_columns(mine.alias(MINE))


def aggregate(
    rows: pl.LazyFrame, metric: ir.Metric, keys: Sequence[str], group: Sequence[str]
) -> pl.LazyFrame:
    """One metric from its `metric_rows`: filter its groups, then re-aggregate them by `keys`
    and the `group` properties. Columns: keys, metric_id, group_values (JSON), quantity."""
    return (
        rows.filter(pl.col(MINE))
        .group_by([*keys, *(PREFIX + g for g in group)])
        .agg(_quantity(metric)[0].alias("quantity"))
        .filter(pl.col("quantity").is_not_null())
        .select(
            *keys,
            pl.lit(metric.id).alias("metric_id"),
            _group_json(group).alias("group_values"),
            "quantity",
        )
    )


USAGE_COLUMNS = [
    "customer_id",
    "contract_id",
    "metric_id",
    "group_values",
    "period_start",
    "period_end",
    "window_start",
    "window_end",
    "quantity",
]


class UnreadFound(Exception):
    """The plan read text files that Polars' readers cannot read whole (now marked to be read line
    by line or record by record): a plan compiled again reads them (`retried`)."""


def retried(compiled: Callable[[], MeterPlan], run: Callable[[MeterPlan], T]) -> tuple[MeterPlan, T]:
    """`run(compiled())`, again while the run finds text files that Polars' readers cannot read
    whole (each time at least one more, so it ends)."""
    while True:
        plan = compiled()
        try:
            return plan, run(plan)
        except UnreadFound:
            continue


def collect_meter(plan: MeterPlan) -> tuple[pl.DataFrame, Ledger]:
    """Collect the plan: the pre-aggregated rows of rated events, and the ledger of every row."""
    engine: Any = "streaming" if plan.engine == "streaming" else "in-memory"
    try:
        # the pre-pass first, on its own (as one plan with the metering, Polars would hold the
        # events while the ids are being gathered)
        duplicates = None if plan.repeated is None else plan.repeated.collect(engine)
        pre = plan.over(duplicates).collect(engine=engine)
    except READ_ERRORS as exc:  # (a reader's error, or one of its values')
        if unread_found(plan.files):
            raise UnreadFound from exc
        if not isinstance(exc, pl.exceptions.ComputeError | OSError):
            raise
        paths = ", ".join(f.path.as_posix() for f in plan.files)
        reason = str(exc).strip().splitlines()[0]
        if "overflow in decimal" in reason:  # (a sum past Decimal(38, 18))
            message = f"the usage in {paths} adds up to 10^20 or more, more than {QUANTITY_LIMITS}"
            raise EventReadError(message) from exc
        raise EventReadError(f"could not read the events ({paths}): {reason}") from exc
    counted = pre.filter(pl.col("_bucket").is_not_null())  # (PER_METRIC: not the metrics' groups)
    counts = dict(counted.group_by("_bucket").agg(pl.col("_n").sum()).iter_rows())
    buckets = {b: int(counts.get(b, 0)) for b in BUCKETS}
    # the rows of each file, and the number its first row has in the rows its scan read
    files = counted.group_by("_file").agg(pl.col("_n").sum(), pl.col("_first_row").min())
    per_file = dict(zip(files.get_column("_file"), files.get_column("_n"), strict=True))
    first_row = dict(zip(files.get_column("_file"), files.get_column("_first_row"), strict=True))
    skipped = skipped_lines(plan.files, per_file)  # (the blank lines the NDJSON reader skips)
    if skipped is None:
        raise UnreadFound
    blank_rows = sum(len(blanks) for blanks in skipped.values())
    buckets["invalid"] += blank_rows
    rows = sum(per_file.values()) + blank_rows
    if rows != sum(buckets.values()):
        raise AssertionError(f"ledger does not add up: {rows} rows, buckets {buckets}")
    names = {f.index: f.path.as_posix() for f in plan.files}
    examples = (
        pre.filter(pl.col("_bucket") == "invalid")
        .select("_reason", "_file", "_invalid_at")
        .sort("_invalid_at")
        .group_by("_reason", maintain_order=True)
        .head(INVALID_EXAMPLES)
        .sort("_invalid_at")
        .head(INVALID_SHOWN)
    )
    found = [  # (file, its row in its file numbered from 1 — its line, past the blank lines skipped)
        (
            file,
            _line((int(order) & ((1 << ROW_BITS) - 1)) - first_row[file] + 1, skipped.get(file, [])),
            reason,
        )
        for reason, file, order in examples.iter_rows()
    ]
    blank = [(file, line, "blank line") for file, blanks in sorted(skipped.items()) for line in blanks]
    shown: Counter[str] = Counter()  # (a patched file's blank lines are examples in `found` too)
    invalid: list[InvalidRow] = []
    for file, row, reason in sorted([*found, *blank[:INVALID_EXAMPLES]], key=lambda e: (e[0], e[1])):
        shown[reason] += 1
        if shown[reason] <= INVALID_EXAMPLES and len(invalid) < INVALID_SHOWN:
            invalid.append(InvalidRow(str(reason), names[file], row))
    if plan.strategy == PRE_AGGREGATED:
        mine = pre.filter(pl.col("_bucket") == "rated")
        mine = mine.with_columns(unpacked_verdicts(metric_ids(plan.measures)))
    else:
        mine = pre.filter(pl.col("_metric").is_not_null())
    rated = mine.join(plan.pieces, on="_piece").with_columns(
        pl.col("_customer").alias("customer_id"),
        *([] if WINDOWS.get(plan.window) else _piece_window(plan.window)),
    )
    return rated, Ledger(rows, buckets, tuple(invalid))


def _line(row: int, blanks: Sequence[int]) -> int:
    """The line of a file that the reader's `row`-th row of it is, past the blank lines it
    skipped (`blanks`, their numbers in order)."""
    line = row
    for blank in blanks:
        if blank > line:
            break
        line += 1
    return line


def run_meter(plan: MeterPlan) -> tuple[pl.DataFrame, Ledger]:
    """The usage table of the plan's measures, derived from the (small) pre-aggregated table."""
    rated, ledger = collect_meter(plan)
    parts = pl.collect_all(
        [
            aggregate(metric_rows(rated, m.metric, m.group, _KEYS), m.metric, _KEYS, m.group)
            for m in plan.measures
        ]
    )
    schema = {c: (QUANTITY if c == "quantity" else rated.schema.get(c, pl.String)) for c in USAGE_COLUMNS}
    usage = (
        pl.concat(parts, how="vertical_relaxed").select(USAGE_COLUMNS)
        if parts
        else pl.DataFrame(schema=schema)
    ).sort(["customer_id", "contract_id", "metric_id", "group_values", "window_start"])
    return usage, ledger


def quantities(usage: pl.DataFrame) -> list[tuple[str, str, str, dict[str, str], Decimal]]:
    """The usage table as exact Python values: (customer, contract, metric, group, quantity)."""
    return [
        (customer, contract, metric, json.loads(group), plain(Decimal(str(q))))
        for customer, contract, metric, group, q in usage.select(
            "customer_id", "contract_id", "metric_id", "group_values", "quantity"
        ).iter_rows()
    ]
