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


def _anchor(contract: ir.Contract, frequency: ir.BillingFrequency, timezone: ZoneInfo) -> datetime:
    schedule = contract.usage_statement_schedule
    start = contract.starting_at.astimezone(timezone)
    if schedule.day is ir.ScheduleDay.CUSTOM_DATE and schedule.billing_anchor_date is not None:
        return schedule.billing_anchor_date.astimezone(timezone)
    if schedule.day is ir.ScheduleDay.FIRST_OF_MONTH and frequency in _MONTHS:
        return start.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    return start


@lru_cache(maxsize=1 << 16)  # contracts share anchors (the 1st of a month): each boundary once
def _boundary(anchor: datetime, step: int, frequency: ir.BillingFrequency, timezone: ZoneInfo) -> datetime:
    """The step-th boundary from the anchor (negative steps go back), in UTC."""
    local = anchor.replace(tzinfo=None)
    if frequency is ir.BillingFrequency.WEEKLY:
        moved = local + timedelta(days=7 * step)
    else:
        months = local.year * 12 + local.month - 1 + step * _MONTHS[frequency]
        year, month = divmod(months, 12)
        day = min(local.day, calendar.monthrange(year, month + 1)[1])
        moved = local.replace(year=year, month=month + 1, day=day)
    return moved.replace(tzinfo=timezone).astimezone(UTC)


def schedule_periods(
    contract: ir.Contract, frequency: ir.BillingFrequency, timezone: ZoneInfo, start: datetime, end: datetime
) -> Iterator[Period]:
    """The whole periods of `frequency`, anchored as the contract's statement schedule, from the
    one holding `start` to the one holding the instant before `end` (not clipped to anything)."""
    anchor = _anchor(contract, frequency, timezone)
    step = 0
    while _boundary(anchor, step, frequency, timezone) > start:
        step -= 1
    while _boundary(anchor, step + 1, frequency, timezone) <= start:
        step += 1
    while (lo := _boundary(anchor, step, frequency, timezone)) < end:
        yield lo, _boundary(anchor, step + 1, frequency, timezone)
        step += 1


def statement_periods(
    contract: ir.Contract, timezone: ZoneInfo, start: datetime, end: datetime
) -> Iterator[Period]:
    """The contract's statement periods that intersect [start, end), in order, clipped to the
    contract (not to [start, end): a period is reported whole)."""
    contract_end = contract.ending_before
    lo = max(start, contract.starting_at)
    hi = end if contract_end is None else min(end, contract_end)
    if lo >= hi:
        return
    frequency = contract.usage_statement_schedule.frequency
    for p_lo, p_hi in schedule_periods(contract, frequency, timezone, lo, hi):
        yield max(p_lo, contract.starting_at), p_hi if contract_end is None else min(p_hi, contract_end)
