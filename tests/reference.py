"""A small, obviously correct metering evaluator: one Python loop over the rows, in order.

It shares nothing with the engine but the IR, the statement periods and the static types of
expressions (each tested by hand); expressions are evaluated by tests/expr_reference.py."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from pricing import ir
from pricing.compiler.link import Project
from pricing.engine.periods import statement_periods
from pricing.expr.types import check
from tests.expr_reference import Event, evaluate

Row = dict[str, Any]  # transaction_id, customer_id, event_type, timestamp (datetime|None), properties


def as_text(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, Decimal | int):
        text = format(Decimal(value).normalize(), "f")
        return "0" if text == "-0" else text
    if isinstance(value, float):  # a JSON number or a Parquet float: its shortest digits, written out
        return format(Decimal(repr(value)), "f").removesuffix(".0")
    return str(value)


def as_number(text: str) -> Decimal | None:
    try:
        number = Decimal(text.strip())
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def matches(metric: ir.Metric, row: Row) -> bool:
    etf = metric.event_type_filter
    if etf and etf.in_values is not None and row["event_type"] not in etf.in_values:
        return False
    if etf and etf.not_in_values is not None and row["event_type"] in etf.not_in_values:
        return False
    for f in metric.property_filters:
        value = as_text(row["properties"].get(f.name))
        if f.exists is True and value is None:
            return False
        if f.exists is False and value is not None:
            return False
        if f.in_values is not None and value not in f.in_values:
            return False
        if f.not_in_values is not None and value is not None and value in f.not_in_values:
            return False
    return True


def _expression(expression: ir.Expression, role: str, row: Row) -> tuple[Any, list[str]]:
    texts = {k: as_text(v) for k, v in row["properties"].items()}
    event = Event(row["event_type"], row["timestamp"], {k: v for k, v in texts.items() if v is not None})
    typing = check(expression.ast, role)
    return evaluate(expression.ast, typing.types, dict(expression.instants), event)


def judge(metric: ir.Metric, row: Row) -> tuple[bool, str | None, bool]:
    """Whether `metric` counts `row`, the value it aggregates (as text), and whether the row is
    invalid for it (its filter or value fails, or its key is not a number)."""
    if not matches(metric, row):
        return False, None, False
    if metric.filter is not None:
        verdict, errors = _expression(metric.filter, "filter", row)
        if errors or verdict is not True:
            return False, None, bool(errors)
    kind = metric.aggregation_type
    if kind is ir.AggregationType.COUNT:
        return True, "1", False
    if metric.value is not None:
        value, errors = _expression(metric.value, "value", row)
        return True, None if value is None else format(value.normalize(), "f"), bool(errors)
    text = as_text(row["properties"].get(metric.aggregation_key or ""))
    not_a_number = kind is not ir.AggregationType.UNIQUE and text is not None and as_number(text) is None
    return True, text, not_a_number


def meter(
    project: Project, rows: list[Row], start: datetime, end: datetime
) -> tuple[dict[Any, Decimal], dict[str, int]]:
    tz = ZoneInfo(project.manifest.timezone)
    owner = {c.id: c.id for c in project.customers.values()}
    owner.update({a: c.id for c in project.customers.values() for a in c.ingest_aliases})
    periods = [
        (c.customer.id, c.id, lo, hi)
        for c in project.contracts.values()
        for lo, hi in statement_periods(c, tz, start, end)
    ]
    buckets: dict[str, int] = defaultdict(int)
    seen: set[str] = set()
    values: dict[Any, list[tuple[datetime, int, str]]] = defaultdict(list)
    for order, row in enumerate(rows):
        if any(row.get(k) is None for k in ("transaction_id", "customer_id", "event_type", "timestamp")):
            buckets["invalid"] += 1
            continue
        if row["transaction_id"] in seen:
            buckets["duplicate"] += 1
            continue
        seen.add(row["transaction_id"])
        customer = owner.get(row["customer_id"])
        if customer is None:
            buckets["unknown_customer"] += 1
            continue
        ts = row["timestamp"]
        if not start <= ts < end:
            buckets["outside_run"] += 1
            continue
        period = next(
            ((c, lo, hi) for cust, c, lo, hi in periods if cust == customer and lo <= ts < hi), None
        )
        if period is None:
            buckets["no_contract"] += 1
            continue
        verdicts = {m.id: judge(m, row) for m in project.metrics.values()}
        if any(invalid for _, _, invalid in verdicts.values()):
            buckets["invalid"] += 1
            continue
        matched = [m for m in project.metrics.values() if verdicts[m.id][0]]
        if not matched:
            buckets["unmatched"] += 1
            continue
        buckets["rated"] += 1
        for m in matched:
            group = tuple(
                (g, as_text(row["properties"].get(g))) for g in (m.group_keys[0] if m.group_keys else ())
            )
            values[(customer, period, m.id, group)].append((ts, order, verdicts[m.id][1] or ""))
    usage: dict[Any, Decimal] = {}
    for (customer, _period, metric_id, group), items in values.items():  # one period per contract in March
        metric = project.metrics[metric_id]
        kind = metric.aggregation_type
        present = [(ts, o, v) for ts, o, v in items if v != ""]
        if kind is ir.AggregationType.COUNT:
            usage[(customer, metric_id, group)] = Decimal(len(items))
            continue
        if not present and kind in (
            ir.AggregationType.MAX,
            ir.AggregationType.MIN,
            ir.AggregationType.LATEST,
        ):
            continue  # nothing to report; SUM and UNIQUE of no values are 0
        if kind is ir.AggregationType.UNIQUE:
            result = Decimal(len({v for _, _, v in present}))
        else:
            numbers = [(ts, o, as_number(v)) for ts, o, v in present]
            nums = [n for _, _, n in numbers if n is not None]
            if kind is ir.AggregationType.SUM:
                result = sum(nums, Decimal(0))
            elif kind is ir.AggregationType.MAX:
                result = max(nums)
            elif kind is ir.AggregationType.MIN:
                result = min(nums)
            else:
                result = max(numbers, key=lambda t: (t[0], t[1]))[2] or Decimal(0)
        usage[(customer, metric_id, group)] = result
    return usage, dict(buckets)
