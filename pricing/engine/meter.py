"""Metering: one lazy Polars plan that measures every billable metric and fills the ledger.

The plan, in order (all lazy; `explain()` shows one scan per input file):

1. scan        every file, in input order, keeping (`_file`, `_row`)
2. validate    rows missing a required field or with an unparseable timestamp → invalid
3. dedup       first row per `transaction_id` in input order wins → the rest are duplicates
4. resolve     ingest aliases → customer ids, by a join          → else unknown_customer
5. window      timestamps inside [start, end)                     → else outside_run
6. contract    the statement period of the customer's contract, by a range join against a small
               periods table                                      → else no_contract
7. numbers     a metric's aggregation key that is not a number    → invalid, for the whole run
8. metrics     rows matching no metric                            → unmatched; the rest rated.
               COUNT/SUM/MAX/MIN share one pre-aggregation: the rows are grouped once by every
               column any metric filters or groups on, and each metric filters and re-aggregates
               that small table. UNIQUE and LATEST read the rows themselves.

Usage and ledger counts leave the plan as one frame, so the events are read once.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import polars as pl

from pricing import ir
from pricing.compiler.link import Project
from pricing.engine.periods import statement_periods
from pricing.engine.scan import PREFIX, UTC_TIME, EventFile, scan_events
from pricing.money import plain

SCALE = 18  # decimal places kept for event quantities: exact for every value written with fewer
QUANTITY = pl.Decimal(38, SCALE)
BUCKETS = ("rated", "duplicate", "unknown_customer", "no_contract", "unmatched", "outside_run", "invalid")
INVALID_EXAMPLES = 5  # rows shown per invalid reason
WINDOWS = {"HOUR": "1h", "DAY": "1d", "PERIOD": None}
_DECOMPOSABLE = (
    ir.AggregationType.COUNT,
    ir.AggregationType.SUM,
    ir.AggregationType.MAX,
    ir.AggregationType.MIN,
)


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
    if not conditions:
        return pl.lit(True)
    return pl.all_horizontal(conditions).fill_null(False)


def needs_number(metric: ir.Metric) -> bool:
    return metric.aggregation_type not in (ir.AggregationType.COUNT, ir.AggregationType.UNIQUE)


def number(name: str) -> pl.Expr:
    """A property read as an exact decimal; null when absent or not a number."""
    return col(name).str.strip_chars().cast(QUANTITY, strict=False)


NUMBER = "n."  # the column holding number(name), computed once per run


def num(name: str) -> pl.Expr:
    return pl.col(NUMBER + name)


def properties_used(measures: Iterable[Measure]) -> set[str]:
    names: set[str] = set()
    for m in measures:
        names.update(f.name for f in m.metric.property_filters)
        names.update(m.group)
        if m.metric.aggregation_key:
            names.add(m.metric.aggregation_key)
    return names


def periods_frame(project: Project, start: datetime, end: datetime) -> pl.LazyFrame:
    """Every contract's statement periods that meet [start, end): a small dimension table."""
    timezone = ZoneInfo(project.manifest.timezone)
    rows = [
        (c.customer.id, c.id, lo, hi)
        for c in project.contracts.values()
        for lo, hi in statement_periods(c, timezone, start, end)
    ]
    schema: dict[str, pl.DataType] = {
        "customer_id": pl.String(),
        "contract_id": pl.String(),
        "period_start": UTC_TIME,
        "period_end": UTC_TIME,
    }
    return pl.LazyFrame(rows, schema=schema, orient="row")


def customers_frame(project: Project) -> pl.LazyFrame:
    """Every id and ingest alias → the customer id (aliases are unique, rule E508)."""
    rows = [(c.id, c.id) for c in project.customers.values()]
    rows += [(alias, c.id) for c in project.customers.values() for alias in c.ingest_aliases]
    return pl.LazyFrame(rows, schema={"_key": pl.String, "customer": pl.String}, orient="row")


@dataclass(frozen=True, slots=True)
class MeterPlan:
    """The compiled metering plan of a run: one lazy frame of usage rows and ledger counts."""

    frame: pl.LazyFrame
    measures: tuple[Measure, ...]
    strategy: str


def _window(expr: pl.Expr, window: str, timezone: str) -> tuple[pl.Expr, pl.Expr]:
    every = WINDOWS[window]
    if every is None:
        return pl.col("period_start"), pl.col("period_end")
    local = expr.dt.convert_time_zone(timezone).dt.truncate(every)
    return local.dt.convert_time_zone("UTC"), local.dt.offset_by(every).dt.convert_time_zone("UTC")


def compile_meter(
    project: Project,
    files: Sequence[EventFile],
    measures: Sequence[Measure],
    start: datetime,
    end: datetime,
    window: str = "PERIOD",
) -> MeterPlan:
    props = properties_used(measures)
    events = scan_events(files, props)

    # 2. structural validity
    reason = (
        pl.when(pl.col("transaction_id").is_null())
        .then(pl.lit("missing transaction_id"))
        .when(pl.col("customer_id").is_null())
        .then(pl.lit("missing customer_id"))
        .when(pl.col("event_type").is_null())
        .then(pl.lit("missing event_type"))
        .when(pl.col("_no_timestamp"))
        .then(pl.lit("missing timestamp"))
        .when(pl.col("timestamp").is_null())
        .then(pl.lit("unparseable timestamp"))
    )
    base = events.with_columns(reason.alias("_reason")).cache()
    valid = base.filter(pl.col("_reason").is_null())

    # 3. dedup: the first row of each transaction id in input order
    unique = valid.unique(subset=["transaction_id"], keep="first", maintain_order=True).cache()
    # 4. aliases
    known = unique.join(customers_frame(project), left_on="customer_id", right_on="_key", how="inner")
    known = known.with_columns(pl.col("customer").alias("customer_id")).drop("customer").cache()
    # 5. run window
    in_run = known.filter((pl.col("timestamp") >= start) & (pl.col("timestamp") < end)).cache()
    # 6. contract and statement period
    periods = periods_frame(project, start, end)
    in_contract = (
        in_run.join_where(
            periods.rename({"customer_id": "_pc"}),
            pl.col("customer_id") == pl.col("_pc"),
            pl.col("timestamp") >= pl.col("period_start"),
            pl.col("timestamp") < pl.col("period_end"),
        )
        .drop("_pc")
        .cache()
    )

    # 7. numbers: a matched row whose aggregation key is not a number is invalid for the run
    metrics = {m.metric.id: m.metric for m in measures}
    matches = {mid: lower_filter(metric) for mid, metric in sorted(metrics.items())}
    numeric_keys = sorted(
        {m.aggregation_key for m in metrics.values() if m.aggregation_key and needs_number(m)}
    )
    in_contract = in_contract.with_columns(number(key).alias(NUMBER + key) for key in numeric_keys)
    bad_number = pl.lit(None, dtype=pl.String)
    for mid, metric in sorted(metrics.items(), reverse=True):
        key = metric.aggregation_key
        if key is None or not needs_number(metric):
            continue
        wrong = matches[mid] & col(key).is_not_null() & num(key).is_null()
        text = pl.format(
            "property '{}' is not a number: '{}' (metric '{}')", pl.lit(key), col(key), pl.lit(mid)
        )
        bad_number = pl.when(wrong).then(text).otherwise(bad_number)
    checked = in_contract.with_columns(bad_number.alias("_reason")).cache()
    good = checked.filter(pl.col("_reason").is_null())
    any_match = pl.any_horizontal(*matches.values()) if matches else pl.lit(False)
    rated = good.filter(any_match).cache()

    # 8. usage
    window_start, window_end = _window(pl.col("timestamp"), window, project.manifest.timezone)
    rated = rated.with_columns(window_start.alias("window_start"), window_end.alias("window_end"))
    keys = ["customer_id", "contract_id", "period_start", "period_end", "window_start", "window_end"]
    pre_measures = [m for m in measures if m.metric.aggregation_type in _DECOMPOSABLE]
    row_measures = [m for m in measures if m.metric.aggregation_type not in _DECOMPOSABLE]
    usage_parts = []
    if pre_measures:
        usage_parts.extend(_pre_aggregated(rated, pre_measures, keys))
    usage_parts.extend(_from_rows(rated, m, keys) for m in row_measures)

    # ledger counts
    def count(frame: pl.LazyFrame, name: str) -> pl.LazyFrame:
        return frame.select(pl.len().cast(pl.Int64).alias("count")).with_columns(pl.lit(name).alias("bucket"))

    ledger = [
        count(base, "_rows"),
        count(valid, "_valid"),
        count(unique, "_unique"),
        count(known, "_known"),
        count(in_run, "_in_run"),
        count(in_contract, "_in_contract"),
        count(good, "_good"),
        count(rated, "rated"),
    ]
    invalid_rows = pl.concat(
        [
            base.filter(pl.col("_reason").is_not_null()).select("_reason", "_file", "_row"),
            checked.filter(pl.col("_reason").is_not_null()).select("_reason", "_file", "_row"),
        ]
    )
    examples = (
        invalid_rows.sort("_file", "_row")
        .group_by("_reason", maintain_order=True)
        .head(INVALID_EXAMPLES)
        .with_columns(pl.lit("_example").alias("bucket"))
    )
    invalid_counts = invalid_rows.group_by("_reason").agg(pl.len().cast(pl.Int64).alias("count"))
    invalid_counts = invalid_counts.with_columns(pl.lit("_invalid").alias("bucket"))
    frame = pl.concat([*usage_parts, *ledger, examples, invalid_counts], how="diagonal_relaxed")
    strategy = "pre-aggregated" if pre_measures else "row-level"
    return MeterPlan(frame, tuple(measures), strategy)


def _group_json(group: Sequence[str]) -> pl.Expr:
    if not group:
        return pl.lit("{}")
    return pl.struct([col(g).alias(g) for g in group]).struct.json_encode()


def _pre_aggregated(rated: pl.LazyFrame, measures: Sequence[Measure], keys: list[str]) -> list[pl.LazyFrame]:
    """Group once by everything any metric filters or groups on; each metric re-aggregates."""
    dims = sorted(
        {f.name for m in measures for f in m.metric.property_filters} | {g for m in measures for g in m.group}
    )
    value_keys = sorted(
        {m.metric.aggregation_key for m in measures if m.metric.aggregation_key and needs_number(m.metric)}
    )
    aggs = [pl.len().alias("_n")]
    for key in value_keys:
        aggs += [
            num(key).sum().alias(f"_sum.{key}"),
            num(key).max().alias(f"_max.{key}"),
            num(key).min().alias(f"_min.{key}"),
        ]
    pre = rated.group_by([*keys, "event_type", *(PREFIX + d for d in dims)]).agg(aggs).cache()
    parts = []
    for m in measures:
        metric = m.metric
        kind = metric.aggregation_type
        if kind is ir.AggregationType.COUNT:
            quantity = pl.col("_n").sum().cast(QUANTITY)
        else:
            name = {
                ir.AggregationType.SUM: "_sum",
                ir.AggregationType.MAX: "_max",
                ir.AggregationType.MIN: "_min",
            }[kind]
            column = pl.col(f"{name}.{metric.aggregation_key}")
            quantity = {
                ir.AggregationType.SUM: column.sum(),
                ir.AggregationType.MAX: column.max(),
                ir.AggregationType.MIN: column.min(),
            }[kind]
        parts.append(
            pre.filter(lower_filter(metric))
            .group_by([*keys, *(PREFIX + g for g in m.group)])
            .agg(quantity.alias("quantity"))
            .filter(pl.col("quantity").is_not_null())
            .select(
                *keys,
                pl.lit(metric.id).alias("metric_id"),
                _group_json(m.group).alias("group_values"),
                "quantity",
            )
        )
    return parts


def _from_rows(rated: pl.LazyFrame, m: Measure, keys: list[str]) -> pl.LazyFrame:
    """UNIQUE and LATEST, which do not decompose, from the rated rows."""
    metric = m.metric
    key = metric.aggregation_key or ""
    if metric.aggregation_type is ir.AggregationType.UNIQUE:
        quantity = col(key).drop_nulls().n_unique().cast(QUANTITY)
    else:  # LATEST: the value of the latest event, ties to the later row in input order
        quantity = num(key).sort_by(["timestamp", "_file", "_row"]).drop_nulls().last()
    return (
        rated.filter(lower_filter(metric))
        .group_by([*keys, *(PREFIX + g for g in m.group)])
        .agg(quantity.alias("quantity"))
        .filter(pl.col("quantity").is_not_null())
        .select(
            *keys,
            pl.lit(metric.id).alias("metric_id"),
            _group_json(m.group).alias("group_values"),
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


def run_meter(plan: MeterPlan, files: Sequence[EventFile]) -> tuple[pl.DataFrame, Ledger]:
    """Collect the plan (streaming engine): the usage table and the ledger."""
    result = plan.frame.collect(engine="streaming")
    usage = (
        result.filter(pl.col("metric_id").is_not_null())
        .select(USAGE_COLUMNS)
        .sort(["customer_id", "contract_id", "metric_id", "group_values", "window_start"])
    )
    counts = dict(
        result.filter(
            pl.col("bucket").str.starts_with("_")
            & (pl.col("bucket") != "_example")
            & (pl.col("bucket") != "_invalid")
        )
        .select("bucket", "count")
        .iter_rows()
    )
    counts["rated"] = int(result.filter(pl.col("bucket") == "rated")["count"].sum())
    invalid_total = int(result.filter(pl.col("bucket") == "_invalid")["count"].sum())
    buckets = {
        "rated": counts["rated"],
        "duplicate": counts["_valid"] - counts["_unique"],
        "unknown_customer": counts["_unique"] - counts["_known"],
        "outside_run": counts["_known"] - counts["_in_run"],
        "no_contract": counts["_in_run"] - counts["_in_contract"],
        "unmatched": counts["_good"] - counts["rated"],
        "invalid": invalid_total,
    }
    names = {f.index: f.path.as_posix() for f in files}
    examples = result.filter(pl.col("bucket") == "_example").sort("_file", "_row")
    invalid = tuple(
        InvalidRow(str(reason), names[int(file_index)], int(row))
        for reason, file_index, row in examples.select("_reason", "_file", "_row").iter_rows()
    )
    return usage, Ledger(counts["_rows"], {b: buckets[b] for b in BUCKETS}, invalid)


def quantities(usage: pl.DataFrame) -> list[tuple[str, str, str, dict[str, str], Decimal]]:
    """The usage table as exact Python values: (customer, contract, metric, group, quantity)."""
    return [
        (customer, contract, metric, json.loads(group), plain(Decimal(str(q))))
        for customer, contract, metric, group, q in usage.select(
            "customer_id", "contract_id", "metric_id", "group_values", "quantity"
        ).iter_rows()
    ]
