"""The bundled sample events for specs/ (what `make demo` meters)."""

from __future__ import annotations

import runpy
from datetime import UTC, datetime
from pathlib import Path

import pricing
from tests.conftest import REPO

SAMPLE = REPO / "examples" / "nimbus" / "events-2026-03.jsonl"


def test_sample_is_what_the_generator_writes(tmp_path: Path) -> None:
    generator = runpy.run_path(str(REPO / "examples" / "nimbus" / "generate.py"))
    generator["main"](tmp_path / "events.jsonl")
    assert (tmp_path / "events.jsonl").read_bytes() == SAMPLE.read_bytes()


def test_sample_ledger_shows_each_planted_case() -> None:
    march = (datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 4, 1, tzinfo=UTC))
    result = pricing.compile(pricing.load(REPO / "specs")).usage([str(SAMPLE)], *march)
    ledger = result.ledger
    assert ledger.rows == 2987 == sum(ledger.buckets.values())
    assert ledger.buckets["duplicate"] == 5  # five resent events
    assert ledger.buckets["unknown_customer"] == 1  # hooli
    assert ledger.buckets["outside_run"] == 2  # the last second of February, the first of April
    assert [r.reason for r in ledger.invalid] == [
        "property 'input_tokens' is not a number: '12k' (metric 'nimbus_large_input_tokens')",
        "malformed JSON",
    ]
    customers = set(result.usage["customer_id"])
    assert customers == {"acme", "globex", "initech", "umbrella"}  # aliases resolved
    metrics = set(result.usage["metric_id"])
    assert metrics == set(pricing.load(REPO / "specs").metrics)  # every metric has usage
