"""Hypothesis: rating against a unit-by-unit reference; invoices add up, grow with usage and do
not depend on how the events are split into files."""

from __future__ import annotations

import json
import tempfile
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from itertools import pairwise
from pathlib import Path
from typing import Any

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

import pricing
from pricing import ir
from pricing.diagnostics import Span
from pricing.engine.invoices import Invoice
from pricing.engine.lines import split_charges
from pricing.engine.meter import QUANTITY
from pricing.engine.rate import NO_MULTIPLIER, Multipliers, Terms, charge

MARCH = (datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 4, 1, tzinfo=UTC))
SPAN = Span("t", 1, 1, 1, 2)

prices = st.integers(min_value=0, max_value=50).map(Decimal)
tier_lists = st.lists(
    st.tuples(st.integers(min_value=1, max_value=6).map(Decimal), prices), min_size=0, max_size=3
).flatmap(lambda bounded: prices.map(lambda last: [*bounded, (None, last)]))


def make_price(kind: str, tiers: list[tuple[Decimal | None, Decimal]], package: int) -> ir.Price:
    return ir.Price(
        SPAN,
        ir.RateType(kind),
        tiers[0][1] if kind in ("FLAT", "PACKAGE") else None,
        tuple(ir.Tier(SPAN, size, price) for size, price in tiers) if kind in ("TIERED", "VOLUME") else (),
        None,
        Decimal(package) if kind == "PACKAGE" else None,
        Decimal(1),
        ir.BillingFrequency.MONTHLY,
        True,
    )


def unit_price(tiers: list[tuple[Decimal | None, Decimal]], unit: int) -> Decimal:
    """The price of the unit-th unit (0-based; below zero, the first tier's), walking the tiers."""
    start = 0
    for size, price in tiers:
        if size is None or unit < start + size:
            return price
        start += int(size)
    raise AssertionError("the last tier is unbounded")


def reference_total(
    kind: str, tiers: list[tuple[Decimal | None, Decimal]], package: int, used: int, q: int
) -> Decimal:
    """Charges of units used+1 … used+q, written the slow, obvious way: F(used + q) − F(used),
    so a negative q gives back units used+q+1 … used (units at or below zero cost the first
    tier's price)."""
    if kind == "FLAT":
        return tiers[0][1] * q
    if kind == "TIERED":
        lo, hi = sorted((used, used + q))
        return (1 if q >= 0 else -1) * sum((unit_price(tiers, u) for u in range(lo, hi)), Decimal(0))
    if kind == "VOLUME":  # all q units at the price of the tier holding the last unit
        return unit_price(tiers, used + q - 1) * q if q else Decimal(0)
    started = -(-(used + q) // package) - -(-used // package)  # packages started by these units
    return tiers[0][1] * started


@settings(max_examples=300, deadline=None)
@given(
    kind=st.sampled_from(["FLAT", "TIERED", "VOLUME", "PACKAGE"]),
    tiers=tier_lists,
    package=st.integers(min_value=1, max_value=7),
    used=st.integers(min_value=-20, max_value=20),
    q=st.integers(min_value=-20, max_value=20),
)
def test_charge_equals_the_unit_by_unit_reference(
    kind: str, tiers: list[tuple[Decimal | None, Decimal]], package: int, used: int, q: int
) -> None:
    got = charge(make_price(kind, tiers, package), NO_MULTIPLIER, Decimal(used), Decimal(q))
    assert got.amount == reference_total(kind, tiers, package, used, q)
    if kind in ("TIERED", "VOLUME"):  # the breakdown adds up to the charge
        assert sum((t.subtotal for t in got.tiers), Decimal(0)) == got.amount
        assert sum((t.quantity for t in got.tiers), Decimal(0)) == q
    else:
        assert got.tiers == ()


@settings(max_examples=200, deadline=None)
@given(tiers=tier_lists, a=st.integers(-30, 30), b=st.integers(-30, 30))
def test_more_usage_never_lowers_a_graduated_charge(
    tiers: list[tuple[Decimal | None, Decimal]], a: int, b: int
) -> None:
    price = make_price("TIERED", tiers, 1)
    low, high = sorted((a, b))
    assert (
        charge(price, NO_MULTIPLIER, Decimal(0), Decimal(low)).amount
        <= charge(price, NO_MULTIPLIER, Decimal(0), Decimal(high)).amount
    )


@settings(max_examples=200, deadline=None)
@given(tiers=tier_lists, used=st.integers(-20, 20), q=st.integers(-20, 20))
def test_a_split_segment_costs_the_same(
    tiers: list[tuple[Decimal | None, Decimal]], used: int, q: int
) -> None:
    """Tiers continue across segments: F(used) + (F(used + q) − F(used)) = F(used + q)."""
    price = make_price("TIERED", tiers, 1)
    whole = charge(price, NO_MULTIPLIER, Decimal(0), Decimal(used + q)).amount
    first = charge(price, NO_MULTIPLIER, Decimal(0), Decimal(used)).amount
    assert first + charge(price, NO_MULTIPLIER, Decimal(used), Decimal(q)).amount == whole


quantities = st.integers(min_value=-2000, max_value=2000).map(lambda n: Decimal(n) / 100)
multiplier_tiers = st.lists(
    st.tuples(
        st.integers(min_value=1, max_value=6).map(Decimal),
        st.sampled_from(["0.5", "0.8", "1.25"]).map(Decimal),
    ),
    max_size=2,
).flatmap(lambda bounded: st.sampled_from(["1", "0.9"]).map(lambda last: (*bounded, (None, Decimal(last)))))


@settings(max_examples=200, deadline=None)
@given(
    kind=st.sampled_from(["FLAT", "TIERED", "VOLUME", "PACKAGE"]),
    tiers=tier_lists,
    package=st.integers(min_value=1, max_value=7),
    multipliers=multiplier_tiers,
    lines=st.lists(st.tuples(quantities, quantities), min_size=1, max_size=6),
    at_once=st.integers(min_value=1, max_value=4),
)
def test_the_polars_split_charges_every_line_as_charge_does(
    kind: str,
    tiers: list[tuple[Decimal | None, Decimal]],
    package: int,
    multipliers: Multipliers,
    lines: list[tuple[Decimal, Decimal]],
    at_once: int,
) -> None:
    """Usage lines are split into price pieces in Polars, all at once; subscriptions and
    composites use `charge`, one at a time (itself checked unit by unit above): the same money,
    unit price and tier breakdown for every line, tiered multiplier overrides included, however
    many lines are made Python values at once."""
    price = make_price(kind, tiers, package)
    frame = pl.LazyFrame(
        {
            "line": range(len(lines)),
            "_used": [used for used, _ in lines],
            "quantity": [q for _, q in lines],
            "_term": [0] * len(lines),
        },
        schema={"line": pl.UInt32, "_used": QUANTITY, "quantity": QUANTITY, "_term": pl.UInt32},
    )
    charges = split_charges(frame, ["line"], [Terms(price, multipliers)], at_once)
    got = {key[0]: charged for key, _, charged in charges}
    assert got == {i: charge(price, multipliers, used, q) for i, (used, q) in enumerate(lines)}


# (a format template: braces doubled) the calls of each user, summed
CALLS_BY_USER = """
metrics:
  calls:
    event_type_filter: {{in_values: [call]}}
    property_filters: [{{name: user, exists: true}}]
    aggregation_type: SUM
    aggregation_key: n
    group_keys: [[user]]
"""

SPEC = (
    CALLS_BY_USER
    + """products:
  calls: {{type: usage, billable_metric: calls, presentation_group_key: [user]}}
customers:
  c1: {{}}
  c2: {{ingest_aliases: [c2-alias]}}
rate_cards:
  card:
    rates:
      - {{product: calls, starting_at: 2026-01-01, rate_type: TIERED, tiers: [{tiers}]}}
contracts:
  c1-2026: {{customer: c1, rate_card: card, starting_at: 2026-01-01}}
  c2-2026: {{customer: c2, rate_card: card, starting_at: 2026-01-01}}
"""
)

events = st.lists(
    st.fixed_dictionaries(
        {
            "customer_id": st.sampled_from(["c1", "c2", "c2-alias"]),
            "user": st.sampled_from(["u1", "u2", "u3"]),
            "n": st.decimals(min_value=-30, max_value=100, places=2).map(str),  # usage may go down
            "day": st.integers(min_value=1, max_value=31),
        }
    ),
    max_size=25,
)
fractional_tiers = st.lists(
    st.tuples(
        st.integers(min_value=1, max_value=60).map(Decimal),
        st.decimals(min_value=0, max_value=5, places=3),
    ),
    max_size=3,
).flatmap(
    lambda bounded: st.decimals(min_value=0, max_value=5, places=3).map(lambda last: [*bounded, (None, last)])
)


def write_events(path: Path, rows: list[dict[str, Any]]) -> None:
    path.write_text(
        "".join(
            json.dumps(
                {
                    "transaction_id": row["id"],
                    "customer_id": row["customer_id"],
                    "event_type": "call",
                    "timestamp": f"2026-03-{row['day']:02d}T08:00:00Z",
                    "properties": {"user": row["user"], "n": row["n"]},
                }
            )
            + "\n"
            for row in rows
        ),
        encoding="utf-8",
    )


def graduated(tiers: list[tuple[Decimal | None, Decimal]], quantity: Decimal) -> Decimal:
    """A graduated charge the obvious way: fill each tier in turn."""
    total, left = Decimal(0), quantity
    for size, price in tiers:
        part = left if size is None else min(left, size)
        total += part * price
        left -= part
    return total


@settings(max_examples=25, deadline=None)
@given(rows=events, tiers=fractional_tiers)
def test_invoices_equal_the_reference_and_ignore_file_splits(
    rows: list[dict[str, Any]], tiers: list[tuple[Decimal | None, Decimal]]
) -> None:
    rows = [{**row, "id": f"t{i}"} for i, row in enumerate(rows)]
    shown = ", ".join(f"{{size: {s}, price: {p}}}" if s is not None else f"{{price: {p}}}" for s, p in tiers)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "pricing.yaml").write_text("version: 1\nname: p\n", encoding="utf-8")
        (root / "spec.yaml").write_text(SPEC.format(tiers=shown), encoding="utf-8")
        write_events(root / "all.jsonl", rows)
        write_events(root / "a.jsonl", rows[: len(rows) // 2])
        write_events(root / "b.jsonl", rows[len(rows) // 2 :])
        plan = pricing.compile(pricing.load(root))
        whole = plan.invoice([str(root / "all.jsonl")], *MARCH)
        split = plan.invoice([str(root / "a.jsonl"), str(root / "b.jsonl")], *MARCH)
    assert whole.jsonl() == split.jsonl()
    usage: dict[tuple[str, str], Decimal] = {}
    for row in rows:
        customer = "c1" if row["customer_id"] == "c1" else "c2"  # c2-alias is c2
        usage[(customer, row["user"])] = usage.get((customer, row["user"]), Decimal(0)) + Decimal(row["n"])
    expected = {"c1": Decimal(0), "c2": Decimal(0)}
    for (customer, _user), quantity in usage.items():
        expected[customer] += graduated(tiers, quantity).quantize(Decimal(1), rounding=ROUND_HALF_UP)
    assert {i.customer_id: i.total for i in whole.invoices} == expected
    for invoice in whole.invoices:
        lines = invoice.as_dict()["line_items"]
        assert isinstance(lines, list)
        assert invoice.total == sum(Decimal(line["total"]) for line in lines)


def march_invoice(spec: str, calls: list[tuple[int, dict[str, str]]]) -> Invoice:
    """The one March invoice of a project (`spec`) whose customer c1 makes a `call` event at
    noon of each (day, properties) of `calls`."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "pricing.yaml").write_text("version: 1\nname: p\n", encoding="utf-8")
        (root / "spec.yaml").write_text(spec, encoding="utf-8")
        events = [
            {
                "transaction_id": f"t{i}",
                "customer_id": "c1",
                "event_type": "call",
                "timestamp": f"2026-03-{day:02d}T12:00:00Z",
                "properties": properties,
            }
            for i, (day, properties) in enumerate(calls)
        ]
        (root / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events), encoding="utf-8")
        run = pricing.compile(pricing.load(root)).invoice([str(root / "events.jsonl")], *MARCH)
    [invoice] = run.invoices
    return invoice


SCHEDULE_SPEC = """
metrics:
  calls: {{event_type_filter: {{in_values: [call]}}, aggregation_type: SUM, aggregation_key: n}}
products:
  calls:
    type: usage
    billable_metric: calls
    quantity_conversion: {{conversion_factor: {factor}, operation: {operation}}}
    quantity_rounding: {{decimal_places: {places}, rounding_method: {method}}}
customers:
  c1: {{}}
rate_cards:
  card:
    rates:
      - product: calls
        starting_at: 2026-01-01
        ending_before: 2026-03-{change:02d}
        rate_type: TIERED
        tiers: [{before}]
      - {{product: calls, starting_at: 2026-03-{change:02d}, rate_type: TIERED, tiers: [{after}]}}
contracts:
  c1-2026:
    customer: c1
    rate_card: card
    starting_at: 2026-01-01
    overrides: [{overrides}]
"""


def _tiers_yaml(tiers: list[tuple[Decimal | None, Decimal]]) -> str:
    return ", ".join(f"{{size: {s}, price: {p}}}" if s is not None else f"{{price: {p}}}" for s, p in tiers)


@settings(max_examples=30, deadline=None)
@given(
    rows=st.lists(
        st.tuples(st.integers(min_value=1, max_value=31), st.decimals(min_value=-20, max_value=50, places=2)),
        max_size=20,
    ),
    before=fractional_tiers,
    after=fractional_tiers,
    change=st.integers(min_value=2, max_value=31),
    window=st.one_of(
        st.none(),
        st.tuples(
            st.integers(min_value=1, max_value=31),
            st.integers(min_value=1, max_value=10),
            st.sampled_from([Decimal("0.5"), Decimal("0.9"), Decimal("1.25")]),
        ),
    ),
    conversion=st.sampled_from([("1", "MULTIPLY"), ("3", "MULTIPLY"), ("4", "DIVIDE"), ("1000", "DIVIDE")]),
    rounding=st.tuples(
        st.integers(min_value=0, max_value=3), st.sampled_from(["ROUND_UP", "ROUND_DOWN", "ROUND_HALF_UP"])
    ),
)
def test_a_period_cut_by_a_rate_change_and_an_override_equals_the_reference(
    rows: list[tuple[int, Decimal]],
    before: list[tuple[Decimal | None, Decimal]],
    after: list[tuple[Decimal | None, Decimal]],
    change: int,
    window: tuple[int, int, Decimal] | None,
    conversion: tuple[str, str],
    rounding: tuple[int, str],
) -> None:
    """March cut where the rate changes (day `change`) and where a MULTIPLIER override starts and
    ends: one line per segment (a zero line where no event falls), each segment's quantity
    summed, converted, then rounded; its charge F(used + q) − F(used) on the tiers in force,
    `used` the rounded quantities of the segments before it (tiers continue across the change),
    times the multiplier in force, rounded half up to the cent."""
    factor, operation = conversion
    places, method = rounding
    cuts = {1, change, 32}
    overrides = ""
    if window is not None:
        start, length, multiplier = window
        end = min(start + length, 32)
        cuts |= {start, end}
        until = f"ending_before: 2026-{'04-01' if end == 32 else f'03-{end:02d}'}, "
        what = f"product: calls, type: MULTIPLIER, multiplier: {multiplier}"
        overrides = f"{{starting_at: 2026-03-{start:02d}, {until}{what}}}"
    spec = SCHEDULE_SPEC.format(
        factor=factor,
        operation=operation,
        places=places,
        method=method,
        change=change,
        before=_tiers_yaml(before),
        after=_tiers_yaml(after),
        overrides=overrides,
    )
    bounds = sorted(cuts)
    expected_total, used = Decimal(0), Decimal(0)
    for lo, hi in pairwise(bounds):
        summed = sum((n for day, n in rows if lo <= day < hi), Decimal(0))
        converted = summed * Decimal(factor) if operation == "MULTIPLY" else summed / Decimal(factor)
        quantity = converted.quantize(Decimal(1).scaleb(-places), rounding=method)
        tiers = before if lo < change else after
        in_force = window is not None and window[0] <= lo < min(window[0] + window[1], 32)
        multiplier = window[2] if window is not None and in_force else Decimal(1)
        amount = (graduated(tiers, used + quantity) - graduated(tiers, used)) * multiplier
        expected_total += amount.quantize(Decimal(1), rounding=ROUND_HALF_UP)
        used += quantity
    invoice = march_invoice(spec, [(day, {"n": str(n)}) for day, n in rows])
    usage_lines = [line for line in invoice.lines if line.type == "usage"]
    assert len(usage_lines) == len(bounds) - 1
    assert invoice.total == expected_total


OVERRIDE_SPEC = """
metrics:
  calls: {{event_type_filter: {{in_values: [call]}}, aggregation_type: COUNT}}
products:
  calls: {{type: usage, billable_metric: calls}}
customers:
  c1: {{}}
rate_cards:
  card:
    rates: [{{product: calls, starting_at: 2026-01-01, rate_type: FLAT, price: 10}}]
contracts:
  c1-2026:
    customer: c1
    rate_card: card
    starting_at: 2026-01-01
    multiplier_override_prioritization: {prioritization}
    overrides: [{overrides}]
"""
Override = tuple[str, int, int | None, Decimal, int | None]  # type, start day, end day, value, priority

overrides_drawn = st.lists(
    st.tuples(
        st.sampled_from(["OVERWRITE", "MULTIPLIER"]),
        st.integers(min_value=1, max_value=28),
        st.one_of(st.none(), st.integers(min_value=1, max_value=15)),
        st.sampled_from(
            [Decimal("0.5"), Decimal("0.8"), Decimal("1.2"), Decimal(2), Decimal(7), Decimal(30)]
        ),
        st.one_of(st.none(), st.integers(min_value=1, max_value=3)),
    ).map(lambda o: (o[0], o[1], None if o[2] is None else min(o[1] + o[2], 32), o[3], o[4])),
    max_size=3,
)


def winner(active: list[tuple[int, Override]], explicit: bool) -> Override | None:
    """docs/decisions.md, Override precedence, written out: an OVERWRITE beats the rest, the one
    starting latest (then the one written last); else under EXPLICIT the lowest priority (none:
    last), then the lowest multiplier, then the one written first."""
    overwrites = [(o[1], i, o) for i, o in active if o[0] == "OVERWRITE"]
    if overwrites:
        return max(overwrites)[2]
    if not active:
        return None

    def rank(item: tuple[int, Override]) -> tuple[int, Decimal, int]:
        i, o = item
        priority = (o[4] if o[4] is not None else 10**6) if explicit else 0
        return (priority, o[3], i)

    return min(active, key=rank)[1]


@settings(max_examples=40, deadline=None)
@given(
    days=st.lists(st.integers(min_value=1, max_value=31), max_size=15),
    overrides=overrides_drawn,
    explicit=st.booleans(),
)
def test_override_precedence_over_a_period_equals_the_reference(
    days: list[int], overrides: list[Override], explicit: bool
) -> None:
    """Overrides of a FLAT 10 rate starting and ending inside March: the period is cut wherever
    one starts or ends, and each segment is priced by the one override that wins there (an
    OVERWRITE's price, or 10 × the multiplier)."""
    written = []
    for kind, start, end, value, priority in overrides:
        fields = [f"starting_at: 2026-03-{start:02d}"]
        if end is not None:
            fields.append(f"ending_before: 2026-{'04-01' if end == 32 else f'03-{end:02d}'}")
        fields += ["product: calls", f"type: {kind}"]
        if kind == "OVERWRITE":
            fields.append(f"overwrite_rate: {{rate_type: FLAT, price: {value}}}")
        else:
            fields.append(f"multiplier: {value}")
        if priority is not None:
            fields.append(f"priority: {priority}")
        written.append("{" + ", ".join(fields) + "}")
    spec = OVERRIDE_SPEC.format(
        prioritization="EXPLICIT" if explicit else "LOWEST_MULTIPLIER", overrides=", ".join(written)
    )
    bounds = sorted({1, 32} | {o[1] for o in overrides} | {o[2] for o in overrides if o[2] is not None})
    expected = Decimal(0)
    for lo, hi in pairwise(bounds):
        active = [(i, o) for i, o in enumerate(overrides) if o[1] <= lo and (o[2] is None or lo < o[2])]
        won = winner(active, explicit)
        price = Decimal(10) if won is None else won[3] if won[0] == "OVERWRITE" else 10 * won[3]
        quantity = sum(1 for day in days if lo <= day < hi)
        expected += (quantity * price).quantize(Decimal(1), rounding=ROUND_HALF_UP)
    invoice = march_invoice(spec, [(day, {}) for day in days])
    assert len([line for line in invoice.lines if line.type == "usage"]) == len(bounds) - 1
    assert invoice.total == expected


COMMIT_SPEC = """
metrics:
  calls: {{event_type_filter: {{in_values: [call]}}, aggregation_type: COUNT}}
products:
  calls: {{type: usage, billable_metric: calls, tags: [api]}}
  prepaid: {{type: fixed}}
customers:
  c1: {{}}
rate_cards:
  card:
    rates: [{{product: calls, starting_at: 2026-01-01, rate_type: FLAT, price: 100}}]
contracts:
  c1-2026:
    customer: c1
    rate_card: card
    starting_at: 2026-01-01
    commits:
      - product: prepaid
        type: PREPAID
        applicable_product_tags: [api]
        access_schedule: [{{amount: {amount}, starting_at: 2026-01-01, ending_before: 2026-{ends}-01}}]
        invoice_schedule: [{{timestamp: 2026-01-01, amount: {amount}}}]
"""


@settings(max_examples=40, deadline=None)
@given(
    months=st.lists(st.integers(min_value=0, max_value=6), min_size=3, max_size=3),
    amount=st.integers(min_value=0, max_value=1500),
    ends=st.sampled_from(["02", "03", "04"]),
    monthly=st.booleans(),
)
def test_a_prepaid_commit_draws_down_month_by_month_as_the_reference(
    months: list[int], amount: int, ends: str, monthly: bool
) -> None:
    """A prepaid commit pays each month's usage (calls at 100) while its balance and access last:
    paid = min(balance, usage), the rest carried over, nothing after it expires — in one
    three-month run, or month by month with each run's closing balances opening the next."""
    expected, balance = [], Decimal(amount)
    for index, calls in enumerate(months, 1):
        usage = Decimal(100 * calls)
        paid = min(balance, usage) if index < int(ends) else Decimal(0)
        balance -= paid
        expected.append(usage - paid)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "pricing.yaml").write_text("version: 1\nname: p\n", encoding="utf-8")
        (root / "spec.yaml").write_text(COMMIT_SPEC.format(amount=amount, ends=ends), encoding="utf-8")
        rows = [
            {
                "transaction_id": f"t{m}-{i}",
                "customer_id": "c1",
                "event_type": "call",
                "timestamp": f"2026-{m:02d}-10T00:00:00Z",
            }
            for m, calls in enumerate(months, 1)
            for i in range(calls)
        ]
        (root / "e.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows) or "", encoding="utf-8")
        plan = pricing.compile(pricing.load(root))
        starts = [datetime(2026, m, 1, tzinfo=UTC) for m in (1, 2, 3, 4)]
        if monthly:
            invoices, opening = [], None
            for lo, hi in pairwise(starts):
                run = plan.invoice([str(root / "e.jsonl")], lo, hi, opening=opening)
                invoices += run.invoices
                opening = dict(run.balances)
        else:
            invoices = list(plan.invoice([str(root / "e.jsonl")], starts[0], starts[-1]).invoices)
    usage_invoices = [i for i in invoices if i.type == "USAGE"]
    assert [i.total for i in usage_invoices] == expected


SHARED_CARD_SPEC = (
    CALLS_BY_USER
    + """products:
  calls: {{type: usage, billable_metric: calls, presentation_group_key: [user], tags: [api]}}
  seats: {{type: subscription}}
customers:
  c0: {{}}
  c1: {{}}
  c2: {{}}
rate_cards:
  card:
    rates:
      - product: calls
        starting_at: 2026-01-01
        ending_before: 2026-02-{change:02d}
        rate_type: TIERED
        tiers: [{{size: 5, price: 10}}, {{price: 4}}]
      - {{product: calls, starting_at: 2026-02-{change:02d}, rate_type: FLAT, price: 3}}
      - product: seats
        starting_at: 2026-01-01
        rate_type: SUBSCRIPTION
        price: 3100
        billing_frequency: MONTHLY
        is_prorated: true
contracts:
{contracts}"""
)

SCHEDULES = [
    "{frequency: MONTHLY, day: FIRST_OF_MONTH}",
    "{frequency: MONTHLY, day: CONTRACT_START}",
    "{frequency: QUARTERLY, day: FIRST_OF_MONTH}",
    "{frequency: WEEKLY, day: CONTRACT_START}",
    "{frequency: MONTHLY, day: CUSTOM_DATE, billing_anchor_date: 2026-01-15}",
]


@settings(max_examples=20, deadline=None)
@given(
    contracts=st.lists(
        st.tuples(
            st.sampled_from(SCHEDULES),
            st.sampled_from(["01-01", "01-15", "02-01"]),
            st.sampled_from(
                ["", "[{starting_at: 2026-02-01, product: calls, type: MULTIPLIER, multiplier: 0.5}]"]
            ),
        ),
        min_size=3,
        max_size=3,
    ),
    change=st.integers(min_value=1, max_value=28),
    rows=st.lists(
        st.tuples(st.integers(0, 2), st.integers(1, 89), st.sampled_from(["u1", "u2"]), st.integers(-2, 9)),
        max_size=30,
    ),
)
def test_a_contracts_invoices_do_not_depend_on_the_other_contracts(
    contracts: list[tuple[str, str, str]], change: int, rows: list[tuple[int, int, str, int]]
) -> None:
    """Contracts on one rate card share the work of rating (docs/decisions.md, Where the work is
    done); each one's invoices must be what they are when it is the project's only contract —
    whatever the others' statement schedules (periods that start together and end apart were
    each billed the other's segments), start dates and overrides."""
    blocks = [
        f"  k{i}:\n    customer: c{i}\n    rate_card: card\n    starting_at: 2026-{start}\n"
        f"    usage_statement_schedule: {schedule}\n" + (f"    overrides: {overrides}\n" if overrides else "")
        for i, (schedule, start, overrides) in enumerate(contracts)
    ]
    events = [
        {
            "transaction_id": f"t{i}",
            "customer_id": f"c{customer}",
            "event_type": "call",
            "timestamp": (datetime(2026, 1, 1, tzinfo=UTC) + timedelta(days=day, hours=5)).isoformat(),
            "properties": {"user": user, "n": n},
        }
        for i, (customer, day, user, n) in enumerate(rows)
    ]
    q1 = (datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 4, 1, tzinfo=UTC))

    def invoices(chosen: list[str]) -> list[dict[str, object]]:
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            (root / "pricing.yaml").write_text("version: 1\nname: p\n", encoding="utf-8")
            spec = SHARED_CARD_SPEC.format(change=change, contracts="".join(chosen))
            (root / "spec.yaml").write_text(spec, encoding="utf-8")
            (root / "e.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events), encoding="utf-8")
            run = pricing.compile(pricing.load(root)).invoice([str(root / "e.jsonl")], *q1)
        return [{k: v for k, v in i.as_dict().items() if k != "spec_hash"} for i in run.invoices]

    together = invoices(blocks)
    for i, block in enumerate(blocks):
        assert [inv for inv in together if inv["contract_id"] == f"k{i}"] == invoices([block])
