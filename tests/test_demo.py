"""The bundled sample events for specs/ (what `make demo` invoices)."""

from __future__ import annotations

import runpy
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

import pricing
from tests.conftest import CASES, REPO, assert_golden

SAMPLE = REPO / "examples" / "nimbus" / "events-2026-q1.jsonl"


def test_sample_is_what_the_generator_writes(tmp_path: Path) -> None:
    generator = runpy.run_path(str(REPO / "examples" / "nimbus" / "generate.py"))
    generator["main"](tmp_path / "events.jsonl")
    assert (tmp_path / "events.jsonl").read_bytes() == SAMPLE.read_bytes()


def test_sample_ledger_shows_each_planted_case() -> None:
    march = (datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 4, 1, tzinfo=UTC))
    result = pricing.compile(pricing.load(REPO / "specs")).usage([str(SAMPLE)], *march)
    ledger = result.ledger
    assert ledger.rows == 2403 == sum(ledger.buckets.values())
    assert ledger.buckets["duplicate"] == 5  # five resent events
    assert ledger.buckets["unknown_customer"] == 1  # hooli
    assert ledger.buckets["no_contract"] == 1  # initech on March 5, before its contract
    assert [r.reason for r in ledger.invalid] == [
        "malformed JSON",
        "property 'input_tokens' is not a number: '12k' (metric 'nimbus_large_input_tokens')",
    ]
    customers = set(result.usage["customer_id"])
    assert customers == {"acme", "globex", "initech", "umbrella"}  # aliases resolved
    metrics = set(result.usage["metric_id"])
    assert metrics == set(pricing.load(REPO / "specs").metrics)  # every metric has usage


def test_demo_invoice_run_is_the_golden_and_adds_up(
    update_goldens: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`make demo`: the first quarter of 2026 invoiced. The run is compared with the golden
    files (regenerated with --update-goldens); every invoice adds up."""
    monkeypatch.chdir(REPO)  # the ledger names files as they were given
    quarter = (datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 4, 1, tzinfo=UTC))
    run = pricing.compile(pricing.load("specs")).invoice(["examples/nimbus/events-2026-q1.jsonl"], *quarter)
    assert_golden(CASES / "demo" / "invoices.jsonl", run.jsonl(), update_goldens)
    assert_golden(CASES / "demo" / "run.json", run.report_json(), update_goldens)
    assert run.ledger.buckets["outside_run"] == 2  # the last second of 2025, the first of April
    assert run.ledger.rows == sum(run.ledger.buckets.values())
    for invoice in run.invoices:
        lines = invoice.as_dict()["line_items"]
        assert isinstance(lines, list)
        assert Decimal(str(invoice.as_dict()["total"])) == sum(Decimal(x["total"]) for x in lines)
    kinds = {(i.type, i.status) for i in run.invoices}
    assert kinds == {("USAGE", "FINALIZED"), ("USAGE", "DRAFT"), ("SCHEDULED", "FINALIZED")}
