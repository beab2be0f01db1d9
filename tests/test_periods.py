"""Statement periods, computed by hand."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pricing
from pricing import ir
from pricing.diagnostics import Span
from pricing.engine.periods import statement_periods

UTC_ZONE = ZoneInfo("UTC")
SPAN = Span.point("x.yaml")


def contract(
    start: datetime,
    end: datetime | None = None,
    *,
    frequency: str = "MONTHLY",
    day: str = "FIRST_OF_MONTH",
    anchor: datetime | None = None,
) -> ir.Contract:
    schedule = ir.StatementSchedule(
        span=SPAN,
        frequency=ir.BillingFrequency(frequency),
        day=ir.ScheduleDay(day),
        billing_anchor_date=anchor,
    )
    return ir.Contract(
        span=SPAN,
        id="c",
        name="c",
        description=None,
        customer=ir.Ref(ir.Kind.CUSTOMER, "a", SPAN),
        rate_card=ir.Ref(ir.Kind.RATE_CARD, "r", SPAN),
        starting_at=start,
        ending_before=end,
        usage_statement_schedule=schedule,
        multiplier_override_prioritization=ir.Prioritization.LOWEST_MULTIPLIER,
        overrides=(),
        commits=(),
        credits=(),
        scheduled_charges=(),
    )


def d(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def periods(
    c: ir.Contract, start: datetime, end: datetime, tz: ZoneInfo = UTC_ZONE
) -> list[tuple[datetime, datetime]]:
    return list(statement_periods(c, tz, start, end))


def test_monthly_first_of_month_with_partial_first_period() -> None:
    c = contract(d(2026, 2, 15))
    assert periods(c, d(2026, 1, 1), d(2026, 5, 1)) == [
        (d(2026, 2, 15), d(2026, 3, 1)),
        (d(2026, 3, 1), d(2026, 4, 1)),
        (d(2026, 4, 1), d(2026, 5, 1)),
    ]


def test_only_periods_that_intersect_the_window() -> None:
    """A window from a boundary holds no period that ends there; a contract that ended where the
    window starts has none in it."""
    c = contract(d(2026, 1, 1))
    assert periods(c, d(2026, 3, 1), d(2026, 5, 1)) == [
        (d(2026, 3, 1), d(2026, 4, 1)),
        (d(2026, 4, 1), d(2026, 5, 1)),
    ]
    assert periods(contract(d(2026, 1, 1), d(2026, 3, 15)), d(2026, 3, 15), d(2026, 5, 1)) == []


def test_quarterly_contract_start() -> None:
    c = contract(d(2026, 2, 15), frequency="QUARTERLY", day="CONTRACT_START")
    assert periods(c, d(2026, 1, 1), d(2026, 9, 1)) == [
        (d(2026, 2, 15), d(2026, 5, 15)),
        (d(2026, 5, 15), d(2026, 8, 15)),
        (d(2026, 8, 15), d(2026, 11, 15)),
    ]


def test_quarterly_first_of_month_steps_from_the_starting_month_not_calendar_quarters() -> None:
    c = contract(d(2026, 2, 10), frequency="QUARTERLY")
    assert periods(c, d(2026, 1, 1), d(2026, 9, 1)) == [
        (d(2026, 2, 10), d(2026, 5, 1)),
        (d(2026, 5, 1), d(2026, 8, 1)),
        (d(2026, 8, 1), d(2026, 11, 1)),
    ]


def test_weekly_first_of_month_steps_from_the_contract_start() -> None:
    c = contract(d(2026, 2, 10), frequency="WEEKLY")
    assert periods(c, d(2026, 2, 1), d(2026, 2, 20)) == [
        (d(2026, 2, 10), d(2026, 2, 17)),
        (d(2026, 2, 17), d(2026, 2, 24)),
    ]


def test_custom_anchor_on_the_31st_clamps_to_month_end() -> None:
    c = contract(d(2026, 1, 10), day="CUSTOM_DATE", anchor=d(2025, 12, 31))
    assert periods(c, d(2026, 1, 1), d(2026, 4, 1)) == [
        (d(2026, 1, 10), d(2026, 1, 31)),
        (d(2026, 1, 31), d(2026, 2, 28)),
        (d(2026, 2, 28), d(2026, 3, 31)),
        (d(2026, 3, 31), d(2026, 4, 30)),  # starts before the window's end, so it is reported
    ]


def test_weekly_and_contract_end() -> None:
    c = contract(d(2026, 3, 4), d(2026, 3, 20), frequency="WEEKLY", day="CONTRACT_START")
    assert periods(c, d(2026, 3, 1), d(2026, 4, 1)) == [
        (d(2026, 3, 4), d(2026, 3, 11)),
        (d(2026, 3, 11), d(2026, 3, 18)),
        (d(2026, 3, 18), d(2026, 3, 20)),
    ]


def test_annual() -> None:
    c = contract(d(2026, 1, 1), frequency="ANNUAL")
    assert periods(c, d(2026, 6, 1), d(2027, 6, 1)) == [
        (d(2026, 1, 1), d(2027, 1, 1)),
        (d(2027, 1, 1), d(2028, 1, 1)),
    ]


def test_month_boundaries_follow_the_project_timezone_across_dst() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    c = contract(datetime(2026, 3, 1, tzinfo=berlin).astimezone(UTC))
    # March starts at UTC+1, April at UTC+2 (summer time began on 29 March).
    assert periods(c, d(2026, 3, 1), d(2026, 4, 15), berlin) == [
        (d(2026, 2, 28, 23), d(2026, 3, 31, 22)),
        (d(2026, 3, 31, 22), d(2026, 4, 30, 22)),
    ]


def test_bundled_globex_contract() -> None:
    project = pricing.load("specs")
    globex = project.contracts["globex-2026"]
    assert periods(globex, d(2026, 1, 1), d(2026, 6, 1)) == [
        (d(2026, 2, 15), d(2026, 5, 15)),
        (d(2026, 5, 15), d(2026, 8, 15)),
    ]
