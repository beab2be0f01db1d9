"""Metrics written with `filter:` and `value:` (tests/cases/meter_expressions), metered in the
same single scan as every other metric, against values computed by hand."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

import pricing
from pricing.engine.meter import quantities
from pricing.engine.plan import compile
from tests.conftest import CASES, write_calls

CASE = CASES / "meter_expressions"
EVENTS = [str(CASE / "events.jsonl")]
BUCKETS = "floor(input_tokens / 100)"
MARCH = (datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 4, 1, tzinfo=UTC))


@pytest.mark.parametrize("engine", ["in-memory", "streaming"])
def test_expression_metrics_by_hand(engine: str) -> None:
    result = compile(pricing.load(CASE)).usage(EVENTS, *MARCH, engine=engine)
    assert {m: q for _, _, m, _, q in quantities(result.usage)} == {
        # e1 100 + 2·10, e2 "0.5" + 2·"0.25", e11 300 + 0; e3 apac and e4 without model fail the
        # filter; e5 has no output_tokens, so its value is null and adds nothing
        "weighted": Decimal(421),
        "ratio": Decimal("0.5"),  # LATEST: e12 100 / 200 (e11 gives 0 a day earlier)
        "cost_floor": Decimal(-500),  # MIN: e3 and e4, 1000·0.5 − 1000
        "buckets": Decimal(5),  # UNIQUE floor(input/100): 1 (e1), 0 (e2, e5), 10 (e3, e4), 3, 2
        "late": Decimal(2),  # e5 (us) and e11 (eu) from March 15; e8, e10 have no region: null
        "batch_big": Decimal(1),  # e8: size 500
    }
    ledger = result.ledger
    assert ledger.buckets == {
        "rated": 8,
        "duplicate": 0,
        "unknown_customer": 0,
        "no_contract": 0,
        "unmatched": 1,  # e10: not a batch job, so its size "huge" is never read as a number
        "outside_run": 0,
        "invalid": 3,
    }
    assert [(r.reason, r.row) for r in ledger.invalid] == [
        (f"property 'input_tokens' is not a number: 'lots' (metric 'buckets', value: {BUCKETS})", 6),
        ("division by zero (metric 'ratio', value: output_tokens / input_tokens)", 7),
        ("property 'size' is not a number: 'huge' (metric 'batch_big', filter: size > 100)", 9),
    ]


def test_expression_metrics_are_invoiced() -> None:
    run = compile(pricing.load(CASE)).invoice(EVENTS, *MARCH)
    (invoice,) = run.invoices
    assert [(line.product_id, line.quantity, line.total) for line in invoice.lines] == [
        ("weighted", Decimal(421), Decimal(842))  # 421 at 2 cents
    ]


def test_expressions_share_the_one_scan_and_explain_shows_them() -> None:
    plan = compile(pricing.load(CASE))
    explained = plan.explain(EVENTS, *MARCH)
    assert explained.count("NDJson SCAN") == 1
    assert '  filter:    region in ["us", "eu"] and model is not null\n' in explained
    assert "  value:     input_tokens + 2 * output_tokens\n" in explained
    assert '  filter:    timestamp >= "2026-03-15" and region not in ["apac"]\n' in explained
    # the compiled predicate reads the filter, the compiled value the intermediate columns
    assert 'col("p.region").is_in' in explained
    assert 'let:       _value.weighted.0 = col("p.output_tokens")' in explained


def test_a_row_is_invalid_with_its_first_error_in_metric_order(tmp_path: Path) -> None:
    """Four metrics read the same rows; each row names the first metric (by id) that cannot read
    it, whatever kind its error is: an aggregation key, a value, a filter."""
    (tmp_path / "pricing.yaml").write_text("version: 1\nname: Errors\n")
    metric = "    event_type_filter: {in_values: [call]}\n    aggregation_type: "
    (tmp_path / "spec.yaml").write_text(
        "metrics:\n"
        f"  a_sum:\n{metric}SUM\n    aggregation_key: cost\n"
        f"  b_value:\n{metric}SUM\n    value: cost / w\n"
        f"  c_filter:\n{metric}COUNT\n    filter: n > 1\n"
        f"  d_sum:\n{metric}SUM\n    aggregation_key: size\n"
        "customers: {acme: {}}\n"
        "rate_cards: {rc: {rates: []}}\n"
        "contracts: {k: {customer: acme, rate_card: rc, starting_at: 2026-01-01}}\n"
    )
    rows = [
        {"cost": "x", "w": 1, "n": "q", "size": "y"},  # every metric fails
        {"cost": 1, "w": 1, "n": "q", "size": "y"},  # c_filter and d_sum
        {"cost": 1, "w": 0, "n": 2, "size": 5},  # b_value alone
        {"cost": 1, "w": 1, "n": 2, "size": "z"},  # d_sum alone
        {"cost": 1, "w": 1, "n": 2, "size": 5},  # none
    ]
    events = tmp_path / "events.jsonl"
    write_calls(events, rows)
    result = compile(pricing.load(tmp_path)).usage([str(events)], *MARCH)
    assert [(r.reason, r.row) for r in result.ledger.invalid] == [
        ("property 'cost' is not a number: 'x' (metric 'a_sum')", 1),
        ("property 'n' is not a number: 'q' (metric 'c_filter', filter: n > 1)", 2),
        ("division by zero (metric 'b_value', value: cost / w)", 3),
        ("property 'size' is not a number: 'z' (metric 'd_sum')", 4),
    ]
    assert {m: q for _, _, m, _, q in quantities(result.usage)} == {
        "a_sum": Decimal(1),
        "b_value": Decimal(1),
        "c_filter": Decimal(1),
        "d_sum": Decimal(5),
    }
