"""The cyclic collector is paused while a spec is loaded or a run is made, and comes back."""

from __future__ import annotations

import gc
from datetime import UTC, datetime
from pathlib import Path

import pytest

import pricing
from pricing.bulk import collector_paused
from pricing.engine.sources import EventReadError
from tests.conftest import REPO


def test_the_collector_is_off_inside_and_back_on_after() -> None:
    assert gc.isenabled()
    with collector_paused():
        assert not gc.isenabled()
    assert gc.isenabled()


def test_the_collector_comes_back_after_an_exception() -> None:
    with pytest.raises(ValueError, match="boom"), collector_paused():
        raise ValueError("boom")
    assert gc.isenabled()


def test_a_collector_that_was_off_stays_off() -> None:
    gc.disable()
    try:
        with collector_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_what_the_block_made_is_in_the_oldest_generation_after() -> None:
    """(Left in the youngest, the next young collection walked all of it.)"""
    with collector_paused():
        made = [[n] for n in range(1000)]
        assert gc.get_count()[0] >= 1000  # the youngest generation counts them while paused
    oldest = {id(o) for o in gc.get_objects(generation=2)}
    assert all(id(item) in oldest for item in made)
    assert gc.get_count()[0] < 1000
    assert gc.get_freeze_count() == 0


def test_objects_an_application_froze_stay_frozen() -> None:
    gc.freeze()
    try:
        frozen = gc.get_freeze_count()
        with collector_paused():
            assert [[n] for n in range(10)]
        assert gc.get_freeze_count() == frozen
    finally:
        gc.unfreeze()


def test_loading_a_spec_leaves_the_collector_on_also_when_the_spec_is_broken() -> None:
    pricing.load(REPO / "specs")
    assert gc.isenabled()
    with pytest.raises(pricing.PricingError, match="unknown key 'nmae' in a customer"):
        pricing.load(REPO / "tests" / "cases" / "check" / "unknown_key_did_you_mean")
    assert gc.isenabled()


def test_runs_leave_the_collector_on_also_when_they_fail(tmp_path: Path) -> None:
    plan = pricing.compile(pricing.load(REPO / "specs"))
    march = (datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 4, 1, tzinfo=UTC))
    events = [str(REPO / "examples" / "nimbus" / "events-2026-q1.jsonl")]
    assert plan.invoice(events, *march).invoices
    assert not plan.usage(events, *march).usage.is_empty()
    assert gc.isenabled()
    (tmp_path / "corrupt.parquet").write_bytes(b"not parquet")
    with pytest.raises(EventReadError, match=r"could not read .*corrupt\.parquet: parquet"):
        plan.invoice([str(tmp_path / "corrupt.parquet")], *march)
    assert gc.isenabled()
