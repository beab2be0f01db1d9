"""The calendar of a run: for every customer, the time intervals its events can fall in.

An interval is a part of one statement period of one contract. It is *counted* when the run
meters it; an event in an uncounted interval belongs to another run (`outside_run`), and an event
in no interval has no contract at its instant (`no_contract`, or `outside_run` when it is also
outside the run's [start, end)).

- `usage_calendar`: the statement periods clipped to the run — `pricing usage` measures exactly
  [start, end).
- `invoice_calendar`: the statement periods that *start* inside the run, whole — so consecutive
  runs (March, April, …) invoice every period exactly once — each split at the instants where the
  contract's prices change (rates starting or ending, overrides), so that every segment of a
  period is measured on its own.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from itertools import pairwise
from typing import NamedTuple
from zoneinfo import ZoneInfo

from pricing import ir
from pricing.compiler.build import parse_instant
from pricing.compiler.link import Project
from pricing.engine.periods import Period, statement_periods


class Interval(NamedTuple):
    """(A named tuple, as the lines are: a run makes one per contract period and price change,
    50,000 and more for as many customers, and a frozen dataclass is five times as slow to make.)"""

    customer: str
    contract: str
    lo: datetime
    hi: datetime
    period: Period
    counted: bool


@dataclass(frozen=True, slots=True)
class Calendar:
    start: datetime  # the run's [start, end)
    end: datetime
    intervals: tuple[Interval, ...]

    def __post_init__(self) -> None:
        check_run(self.start, self.end)

    @property
    def first(self) -> datetime:
        return min([self.start, *(i.lo for i in self.intervals)])

    @property
    def last(self) -> datetime:
        return max([self.end, *(i.hi for i in self.intervals)])

    def periods(self) -> list[tuple[str, Period]]:
        """The counted (contract, period) pairs, sorted."""
        return sorted({(i.contract, i.period) for i in self.intervals if i.counted})


def check_instant(name: str, value: datetime) -> None:
    """An instant given to a run has a time zone: a naive datetime could be any of 25 hours."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(
            f"{name} {value.isoformat()} has no time zone: give one, e.g. datetime(2026, 3, 1, tzinfo=UTC)"
        )


# A run's periods and their boundaries are worked out a step or more around it, in local time:
# kept well inside the years Python's datetime holds (1 to 9999).
EARLIEST, LATEST = datetime(1000, 1, 1, tzinfo=UTC), datetime(9000, 1, 1, tzinfo=UTC)


def check_run(start: datetime, end: datetime) -> None:
    """A run's [start, end): instants with a time zone, the end after the start, both between
    EARLIEST and LATEST (ValueError)."""
    check_instant("start", start)
    check_instant("end", end)
    if end <= start:
        raise ValueError(f"a run ends after it starts, not from {start} to {end}")
    if start < EARLIEST or end > LATEST:
        raise ValueError(
            f"a run lies between {EARLIEST:%Y-%m-%d} and {LATEST:%Y-%m-%d}, not from {start} to {end}"
        )


Moment = datetime | str  # an instant given to a run: aware, or RFC 3339 text or a bare date


class RunError(ValueError):
    """A run's period, start, end or as-of that cannot be: `field` names the one at fault, and
    `usage` tells whether it is rather the combination given (a period and a start, say)."""

    def __init__(self, message: str, field: str, usage: bool = False) -> None:
        super().__init__(message)
        self.field, self.usage = field, usage


def run_instant(value: Moment, timezone: str, field: str) -> datetime:
    """An instant of a run in UTC: a datetime with a time zone as it is (`check_run` bounds
    it), or text — RFC 3339, or a bare date at midnight in the project `timezone` — between
    EARLIEST and LATEST."""
    if isinstance(value, datetime):
        check_instant(field, value)
        return value
    try:
        instant = parse_instant(value, ZoneInfo(timezone))
    except ValueError as exc:
        raise RunError(f"'{value}': {exc}", field) from exc
    if not EARLIEST <= instant <= LATEST:
        raise RunError(f"'{value}': a run lies between {EARLIEST:%Y-%m-%d} and {LATEST:%Y-%m-%d}", field)
    return instant


def run_range(
    timezone: str,
    period: str | None = None,
    start: Moment | None = None,
    end: Moment | None = None,
    names: Callable[[str], str] = str,
) -> tuple[datetime, datetime]:
    """A run's [start, end): a `period` (a month, YYYY-MM, in the project `timezone`), or a
    `start` and an `end` (`run_instant`). `names` says how messages call the fields (the
    command line: "--period")."""
    if period is not None:
        if start is not None or end is not None:
            message = f"give {names('period')} or {names('start')}/{names('end')}, not both"
            raise RunError(message, "period", True)
        try:
            first = date.fromisoformat(f"{period}-01")
        except ValueError as exc:
            raise RunError(f"'{period}' is not a month such as 2026-03", "period") from exc
        lo = run_instant(first.isoformat(), timezone, "period")
        following = date(first.year + first.month // 12, first.month % 12 + 1, 1)  # (lo < 9000)
        return lo, run_instant(following.isoformat(), timezone, "period")
    if start is None or end is None:
        message = f"give {names('period')} YYYY-MM, or both {names('start')} and {names('end')}"
        raise RunError(message, "start" if start is None else "end", True)
    lo, hi = run_instant(start, timezone, "start"), run_instant(end, timezone, "end")
    if hi <= lo:
        raise RunError(f"'{end}' is not after {names('start')} '{start}'", "end")
    return lo, hi


def usage_calendar(project: Project, start: datetime, end: datetime) -> Calendar:
    check_run(start, end)
    timezone = ZoneInfo(project.manifest.timezone)
    intervals = [
        Interval(c.customer.id, c.id, max(lo, start), min(hi, end), (lo, hi), True)
        for c in project.contracts.values()
        for lo, hi in statement_periods(c, timezone, start, end)
    ]
    return Calendar(start, end, tuple(intervals))


def _split(lo: datetime, hi: datetime, instants: Iterable[datetime]) -> list[tuple[datetime, datetime]]:
    cuts = sorted({lo, hi, *(t for t in instants if lo < t < hi)})
    return list(pairwise(cuts))


def invoice_calendar(
    project: Project,
    start: datetime,
    end: datetime,
    changes: Callable[[ir.Contract], Iterable[datetime]],
) -> Calendar:
    """`changes(contract)`: the instants at which some price of the contract changes."""
    check_run(start, end)
    timezone = ZoneInfo(project.manifest.timezone)
    invoiced = {
        c.id: [p for p in statement_periods(c, timezone, start, end) if start <= p[0] < end]
        for c in project.contracts.values()
    }
    first = min([start, *(p[0] for ps in invoiced.values() for p in ps)])
    last = max([end, *(p[1] for ps in invoiced.values() for p in ps)])
    intervals: list[Interval] = []
    for c in project.contracts.values():
        cuts = list(changes(c))
        for period in statement_periods(c, timezone, first, last):
            counted = period in invoiced[c.id]
            pieces = _split(*period, cuts) if counted else [period]
            intervals += [Interval(c.customer.id, c.id, lo, hi, period, counted) for lo, hi in pieces]
    return Calendar(start, end, tuple(intervals))
