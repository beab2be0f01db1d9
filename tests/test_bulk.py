"""The cyclic collector is paused while a spec is loaded or invoices are assembled, and comes back."""

from __future__ import annotations

import gc

import pytest

import pricing
from pricing.bulk import collector_paused
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


def test_loading_a_spec_leaves_the_collector_on_also_when_the_spec_is_broken() -> None:
    pricing.load(REPO / "specs")
    assert gc.isenabled()
    with pytest.raises(pricing.PricingError, match="unknown key 'nmae' in a customer"):
        pricing.load(REPO / "tests" / "cases" / "check" / "unknown_key_did_you_mean")
    assert gc.isenabled()
