"""Statement periods of a contract's `usage_statement_schedule`, in the project timezone.

Boundaries are the anchor plus whole steps (months, or 7 days for WEEKLY), at the anchor's local
time of day; a day past a month's end is clamped to its last day (an anchor on the 31st gives
Feb 28). The anchor is the 1st of the contract's starting month (FIRST_OF_MONTH), the contract
start (CONTRACT_START) or `billing_anchor_date` (CUSTOM_DATE). Periods are clipped to the
contract, so a contract starting mid-period opens with a partial period.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from pricing import ir

_MONTHS = {ir.BillingFrequency.MONTHLY: 1, ir.BillingFrequency.QUARTERLY: 3, ir.BillingFrequency.ANNUAL: 12}

Period = tuple[datetime, datetime]


def _anchor(
    starting_at: datetime,
    day: ir.ScheduleDay,
    anchor_date: datetime | None,
    frequency: ir.BillingFrequency,
    timezone: ZoneInfo,
) -> datetime:
    if day is ir.ScheduleDay.CUSTOM_DATE and anchor_date is not None:
        return _local(anchor_date, timezone)
    start = _local(starting_at, timezone)
    if day is ir.ScheduleDay.FIRST_OF_MONTH and frequency in _MONTHS:
        return start.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    return start


# Contracts share start instants and anchors (the 1st of a month): each conversion and each
# boundary is worked out once (an instant to a zone's local time takes microseconds).
@lru_cache(maxsize=1 << 16)
def _local(instant: datetime, timezone: ZoneInfo) -> datetime:
    return instant.astimezone(timezone)


@lru_cache(maxsize=1 << 16)
def _boundary(anchor: datetime, step: int, months: int, timezone: ZoneInfo) -> datetime:
    """The step-th boundary from the anchor (negative steps go back), `months` apart (none:
    a week apart), in UTC."""
    local = anchor.replace(tzinfo=None)
    if not months:
        moved = local + timedelta(days=7 * step)
    else:
        total = local.year * 12 + local.month - 1 + step * months
        year, month = divmod(total, 12)
        day = min(local.day, calendar.monthrange(year, month + 1)[1])
        moved = local.replace(year=year, month=month + 1, day=day)
    return moved.replace(tzinfo=timezone).astimezone(UTC)


def schedule_periods(
    contract: ir.Contract, frequency: ir.BillingFrequency, timezone: ZoneInfo, start: datetime, end: datetime
) -> Iterator[Period]:
    """The whole periods of `frequency`, anchored as the contract's statement schedule, from the
    one holding `start` to the one holding the instant before `end` (not clipped to anything)."""
    schedule = contract.usage_statement_schedule
    anchor = _anchor(contract.starting_at, schedule.day, schedule.billing_anchor_date, frequency, timezone)
    return _periods(anchor, _MONTHS.get(frequency, 0), timezone, start, end)


def _periods(
    anchor: datetime, months: int, timezone: ZoneInfo, start: datetime, end: datetime
) -> Iterator[Period]:
    step = 0
    while _boundary(anchor, step, months, timezone) > start:
        step -= 1
    while _boundary(anchor, step + 1, months, timezone) <= start:
        step += 1
    while (lo := _boundary(anchor, step, months, timezone)) < end:
        yield lo, _boundary(anchor, step + 1, months, timezone)
        step += 1


def statement_periods(
    contract: ir.Contract, timezone: ZoneInfo, start: datetime, end: datetime
) -> tuple[Period, ...]:
    """The contract's statement periods that intersect [start, end), in order, clipped to the
    contract (not to [start, end): a period is reported whole)."""
    schedule = contract.usage_statement_schedule
    return _statement_periods(
        contract.starting_at,
        contract.ending_before,
        schedule.frequency,
        schedule.day,
        schedule.billing_anchor_date,
        timezone,
        start,
        end,
    )


# Contracts that start together on one schedule (a customer cohort) have the same periods.
@lru_cache(maxsize=1 << 14)
def _statement_periods(
    starting_at: datetime,
    ending_before: datetime | None,
    frequency: ir.BillingFrequency,
    day: ir.ScheduleDay,
    anchor_date: datetime | None,
    timezone: ZoneInfo,
    start: datetime,
    end: datetime,
) -> tuple[Period, ...]:
    lo = max(start, starting_at)
    hi = end if ending_before is None else min(end, ending_before)
    if lo >= hi:
        return ()
    anchor = _anchor(starting_at, day, anchor_date, frequency, timezone)
    return tuple(
        (max(p_lo, starting_at), p_hi if ending_before is None else min(p_hi, ending_before))
        for p_lo, p_hi in _periods(anchor, _MONTHS.get(frequency, 0), timezone, lo, hi)
    )
