"""Rating and invoices, checked against amounts computed by hand.

Each test writes a small spec project and an event file, runs `plan.invoice` for March 2026 and
compares lines and totals with the arithmetic written in the comments.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

import pricing
from pricing.cli import main
from pricing.engine.invoices import InvoiceRun
from pricing.engine.lines import RatingError
from pricing.engine.plan import compile
from pricing.money import text

MARCH = (datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 4, 1, tzinfo=UTC))

BASE = """
metrics:
  tokens:
    event_type_filter: {in_values: [completion]}
    property_filters:
      - {name: user_id, exists: true}
      - {name: tokens, exists: true}
    aggregation_type: SUM
    aggregation_key: tokens
    group_keys: [[user_id]]
  calls:
    event_type_filter: {in_values: [call]}
    aggregation_type: COUNT
  units:
    event_type_filter: {in_values: [unit]}
    property_filters: [{name: region, exists: true}]
    aggregation_type: SUM
    aggregation_key: n
    group_keys: [[region]]
products:
  lm4:
    name: langModel4 tokens
    type: usage
    billable_metric: tokens
    presentation_group_key: [user_id]
    quantity_conversion: {conversion_factor: 1000000, operation: DIVIDE}
  calls: {type: usage, billable_metric: calls, tags: [api]}
  units: {type: usage, billable_metric: units, tags: [api]}
  units_by_region: {type: usage, billable_metric: units, pricing_group_key: [region]}
  seats: {name: Seats, type: subscription}
  support: {name: Support, type: composite, composite_tags: [api], composite_product_ids: [lm4]}
  prepaid: {type: fixed}
  onboarding: {name: Onboarding, type: fixed}
customers:
  acme: {ingest_aliases: [acme-alias]}
"""


def project(
    tmp_path: Path, spec: str, rounding: str = "ROUND_HALF_UP", base: str = BASE, timezone: str = "UTC"
) -> Path:
    root = tmp_path / "spec"
    root.mkdir(parents=True)
    manifest = f"version: 1\nname: Invoice case\ntimezone: {timezone}\nrounding: {rounding}\n"
    (root / "pricing.yaml").write_text(manifest, encoding="utf-8")
    (root / "spec.yaml").write_text(base + spec, encoding="utf-8")
    return root


def run(
    tmp_path: Path,
    spec: str,
    events: list[dict[str, Any]],
    rounding: str = "ROUND_HALF_UP",
    base: str = BASE,
    timezone: str = "UTC",
    **options: Any,
) -> InvoiceRun:
    root = project(tmp_path, spec, rounding, base, timezone)
    path = tmp_path / "events.jsonl"
    rows = [
        {"transaction_id": f"t{i}", "customer_id": "acme", "timestamp": "2026-03-10T12:00:00Z", **event}
        for i, event in enumerate(events)
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    start, end = options.pop("period", MARCH)
    return compile(pricing.load(root)).invoice([str(path)], start, end, **options)


def invoice_command(root: Path, tmp_path: Path, *options: str) -> Result:
    """`pricing invoice` of March on tmp_path/events.jsonl, into tmp_path/out."""
    events = str(tmp_path / "events.jsonl")
    args = ["invoice", str(root), "--events", events, "--period", "2026-03", "--out", str(tmp_path / "out")]
    return CliRunner().invoke(main, [*args, *options])


def usage_invoice(result: InvoiceRun) -> dict[str, Any]:
    (invoice,) = [i.as_dict() for i in result.invoices if i.type == "USAGE"]
    return invoice


def totals(invoice: dict[str, Any]) -> list[tuple[str, str]]:
    return [(line["product_id"], line["total"]) for line in invoice["line_items"]]


def contract(rates: str, extra: str = "", starting_at: str = "2026-01-01") -> str:
    return f"""
rate_cards:
  card:
    rates:
{rates}
contracts:
  acme-c:
    customer: acme
    rate_card: card
    starting_at: {starting_at}
{extra}
"""


def tokens(user: str, n: int | str) -> dict[str, Any]:
    return {"event_type": "completion", "properties": {"user_id": user, "tokens": n}}


CALL = {"event_type": "call", "properties": {}}


def test_metronome_quickstart(tmp_path: Path) -> None:
    """$0.50 per 1M tokens (50 cents per converted unit), DIVIDE 1,000,000, one line per user:
    johndoe 1M + 1M + 3M = 5 units → 250; janedoe 5.5M = 5.5 units → 275; 525 in all."""
    spec = contract("      - {product: lm4, starting_at: 2024-01-01T00:00:00Z, rate_type: FLAT, price: 50}")
    events = [tokens("johndoe", 1_000_000), tokens("johndoe", 1_000_000), tokens("janedoe", 5_500_000)]
    events.append(tokens("johndoe", 3_000_000))
    invoice = usage_invoice(run(tmp_path, spec, events))
    assert invoice["id"] == "acme-c-20260301"
    assert invoice["status"] == "FINALIZED"
    assert invoice["start_timestamp"] == "2026-03-01T00:00:00Z"
    assert invoice["end_timestamp"] == "2026-04-01T00:00:00Z"
    lines = invoice["line_items"]
    assert [(x["presentation_group_values"], x["quantity"], x["unit_price"], x["total"]) for x in lines] == [
        ({"user_id": "janedoe"}, "5.5", "50", "275"),
        ({"user_id": "johndoe"}, "5", "50", "250"),
    ]
    assert lines[0]["tiers"] == []
    assert (invoice["subtotal"], invoice["total"]) == ("525", "525")


def test_graduated_tiers_with_a_free_tier(tmp_path: Path) -> None:
    """12 calls on [5 free, 5 at 100, rest at 150]: 0 + 500 + 2 × 150 = 800."""
    rate = "      - {product: calls, starting_at: 2026-01-01, rate_type: TIERED, tiers: [{size: 5, price: 0}, {size: 5, price: 100}, {price: 150}]}"
    invoice = usage_invoice(run(tmp_path, contract(rate), [CALL] * 12))
    (line,) = invoice["line_items"]
    assert (line["quantity"], line["unit_price"], line["total"]) == ("12", None, "800")
    assert line["tiers"] == [
        {"level": 1, "starting_at": "0", "size": "5", "quantity": "5", "price": "0", "subtotal": "0"},
        {"level": 2, "starting_at": "5", "size": "5", "quantity": "5", "price": "100", "subtotal": "500"},
        {"level": 3, "starting_at": "10", "size": None, "quantity": "2", "price": "150", "subtotal": "300"},
    ]


def test_graduated_tiers_past_the_first(tmp_path: Path) -> None:
    """15,000 units on [10,000 at 1, rest at 0.5]: 10,000 + 5,000 × 0.5 = 12,500."""
    rate = "      - {product: units, starting_at: 2026-01-01, rate_type: TIERED, tiers: [{size: 10000, price: 1}, {price: 0.5}]}"
    events = [{"event_type": "unit", "properties": {"region": "us", "n": 15000}}]
    assert totals(usage_invoice(run(tmp_path, contract(rate), events))) == [("units", "12500")]


@pytest.mark.parametrize(
    ("count", "total", "price"),
    [
        (10, "100", "10"),  # exactly the first tier's size stays in the first tier
        (15, "120", "8"),  # all 15 at the second tier's 8
        (25, "125", "5"),  # all 25 at the last tier's 5
    ],
)
def test_volume_tiers(tmp_path: Path, count: int, total: str, price: str) -> None:
    rate = "      - {product: calls, starting_at: 2026-01-01, rate_type: VOLUME, tiers: [{size: 10, price: 10}, {size: 10, price: 8}, {price: 5}]}"
    (line,) = usage_invoice(run(tmp_path, contract(rate), [CALL] * count))["line_items"]
    assert (line["unit_price"], line["total"]) == (price, total)
    assert [t["price"] for t in line["tiers"]] == [price]


def test_package_pricing(tmp_path: Path) -> None:
    """250 units in packages of 100 at 500: three started packages → 1,500."""
    rate = (
        "      - {product: units, starting_at: 2026-01-01, rate_type: PACKAGE, package_size: 100, price: 500}"
    )
    events = [{"event_type": "unit", "properties": {"region": "us", "n": 250}}]
    assert totals(usage_invoice(run(tmp_path, contract(rate), events))) == [("units", "1500")]


def test_rate_change_mid_period_continues_tiers(tmp_path: Path) -> None:
    """Rate A [10 at 10, rest 5] until the 16th, rate B [10 at 8, rest 4] from then on.
    6 calls before: F_A(6) = 60. 8 calls after, counted from 6: F_B(14) − F_B(6) = 96 − 48 = 48."""
    rates = "\n".join(
        [
            "      - {product: calls, starting_at: 2026-01-01, ending_before: 2026-03-16, rate_type: TIERED, tiers: [{size: 10, price: 10}, {price: 5}]}",
            "      - {product: calls, starting_at: 2026-03-16, rate_type: TIERED, tiers: [{size: 10, price: 8}, {price: 4}]}",
        ]
    )
    events = [{**CALL, "timestamp": "2026-03-02T00:00:00Z"}] * 6 + [
        {**CALL, "timestamp": "2026-03-20T00:00:00Z"}
    ] * 8
    lines = usage_invoice(run(tmp_path, contract(rates), events))["line_items"]
    assert [(x["starting_at"], x["ending_before"], x["quantity"], x["total"]) for x in lines] == [
        ("2026-03-01T00:00:00Z", "2026-03-16T00:00:00Z", "6", "60"),
        ("2026-03-16T00:00:00Z", "2026-04-01T00:00:00Z", "8", "48"),
    ]
    assert [(t["level"], t["quantity"], t["subtotal"]) for t in lines[1]["tiers"]] == [
        (1, "4", "32"),
        (2, "4", "16"),
    ]


def test_products_rated_together_count_their_tiers_apart(tmp_path: Path) -> None:
    """calls and units, both priced anew on the 16th, are rated in the same queries, and each
    one's tiers continue from its own usage of the period only. calls as above: 60, then 48.
    units [10 at 2, rest 1], then [10 at 3, rest 1]: 4 units before, F(4) = 8; 9 after, counted
    from 4: F(13) − F(4) = 33 − 12 = 21. (Counted from all 18 that came before it in the period,
    the last line would cost F(27) − F(18) = 9.)"""
    rates = "\n".join(
        [
            "      - {product: calls, starting_at: 2026-01-01, ending_before: 2026-03-16, rate_type: TIERED, tiers: [{size: 10, price: 10}, {price: 5}]}",
            "      - {product: calls, starting_at: 2026-03-16, rate_type: TIERED, tiers: [{size: 10, price: 8}, {price: 4}]}",
            "      - {product: units, starting_at: 2026-01-01, ending_before: 2026-03-16, rate_type: TIERED, tiers: [{size: 10, price: 2}, {price: 1}]}",
            "      - {product: units, starting_at: 2026-03-16, rate_type: TIERED, tiers: [{size: 10, price: 3}, {price: 1}]}",
        ]
    )
    before, after = {"timestamp": "2026-03-02T00:00:00Z"}, {"timestamp": "2026-03-20T00:00:00Z"}
    events = [{**CALL, **before}] * 6 + [{**CALL, **after}] * 8
    events += [
        {"event_type": "unit", "properties": {"region": "us", "n": 4}, **before},
        {"event_type": "unit", "properties": {"region": "us", "n": 9}, **after},
    ]
    lines = usage_invoice(run(tmp_path, contract(rates), events))["line_items"]
    assert [(x["product_id"], x["starting_at"][:10], x["quantity"], x["total"]) for x in lines] == [
        ("calls", "2026-03-01", "6", "60"),
        ("calls", "2026-03-16", "8", "48"),
        ("units", "2026-03-01", "4", "8"),
        ("units", "2026-03-16", "9", "21"),
    ]
    assert [(t["level"], t["starting_at"], t["quantity"], t["subtotal"]) for t in lines[3]["tiers"]] == [
        (1, "0", "6", "18"),
        (2, "10", "3", "3"),
    ]


def test_usage_that_goes_down_is_credited_back_on_the_tiers(tmp_path: Path) -> None:
    """Metronome credits usage that goes down (a negative quantity) back. Tiers [5 free, rest
    at 100], a rate change on the 16th to [5 free, rest at 80] (tiers continue). Before: 12
    units, F_A(12) = 700. After: −9 units, F_B(3) − F_B(12) = 0 − 560 = −560 (tier 2 gives back
    7 units at 80, tier 1 two units at 0). The invoice: 140 for the 3 units used in all."""
    rates = "\n".join(
        [
            "      - {product: units, starting_at: 2026-01-01, ending_before: 2026-03-16, rate_type: TIERED, tiers: [{size: 5, price: 0}, {price: 100}]}",
            "      - {product: units, starting_at: 2026-03-16, rate_type: TIERED, tiers: [{size: 5, price: 0}, {price: 80}]}",
        ]
    )
    unit = {"event_type": "unit", "properties": {"region": "eu"}}
    events = [
        {**unit, "timestamp": "2026-03-02T00:00:00Z", "properties": {"region": "eu", "n": "12"}},
        {**unit, "timestamp": "2026-03-20T00:00:00Z", "properties": {"region": "eu", "n": "-10"}},
        {**unit, "timestamp": "2026-03-21T00:00:00Z", "properties": {"region": "eu", "n": "1"}},
    ]
    invoice = usage_invoice(run(tmp_path, contract(rates), events))
    lines = invoice["line_items"]
    assert [(x["starting_at"], x["quantity"], x["total"]) for x in lines] == [
        ("2026-03-01T00:00:00Z", "12", "700"),
        ("2026-03-16T00:00:00Z", "-9", "-560"),
    ]
    assert [(t["level"], t["quantity"], t["subtotal"]) for t in lines[1]["tiers"]] == [
        (1, "-2", "0"),
        (2, "-7", "-560"),
    ]
    assert invoice["total"] == "140"


def test_a_negative_quantity_at_a_flat_volume_or_package_price(tmp_path: Path) -> None:
    """−3 units in the period: FLAT 100 → −300; VOLUME [10 at 7, rest at 5] → the total −3
    stays in the first tier, −21; PACKAGE of 2 at 50 → ⌈−3/2⌉ − ⌈0/2⌉ = −1 package, −50."""
    events = [{"event_type": "unit", "properties": {"region": "eu", "n": "-3"}}]
    for rate, total in [
        ("rate_type: FLAT, price: 100", "-300"),
        ("rate_type: VOLUME, tiers: [{size: 10, price: 7}, {price: 5}]", "-21"),
        ("rate_type: PACKAGE, price: 50, package_size: 2", "-50"),
    ]:
        spec = contract(f"      - {{product: units, starting_at: 2026-01-01, {rate}}}")
        result = run(tmp_path / rate.split(",")[0][11:], spec, events)
        assert totals(usage_invoice(result)) == [("units", total)]


FLAT_CALLS = "      - {product: calls, starting_at: 2026-01-01, rate_type: FLAT, price: 100}"


@pytest.mark.parametrize(
    ("overrides", "total"),
    [
        # OVERWRITE beats a lower multiplier: 10 × 70
        (
            [
                "{starting_at: 2026-01-01, product: calls, type: MULTIPLIER, multiplier: 0.5}",
                "{starting_at: 2026-01-01, product: calls, type: OVERWRITE, overwrite_rate: {rate_type: FLAT, price: 70}}",
            ],
            "700",
        ),
        # the later OVERWRITE wins: 10 × 60
        (
            [
                "{starting_at: 2026-02-01, product: calls, type: OVERWRITE, overwrite_rate: {rate_type: FLAT, price: 60}}",
                "{starting_at: 2026-01-01, product: calls, type: OVERWRITE, overwrite_rate: {rate_type: FLAT, price: 70}}",
            ],
            "600",
        ),
        # the lowest multiplier wins, by product or by tag: 10 × 100 × 0.8
        (
            [
                "{starting_at: 2026-01-01, product: calls, type: MULTIPLIER, multiplier: 0.9}",
                "{starting_at: 2026-01-01, applicable_product_tags: [api], type: MULTIPLIER, multiplier: 0.8}",
            ],
            "800",
        ),
        # tiered multipliers counted in the period: 4 × 100 × 1 + 6 × 100 × 0.5
        (
            [
                "{starting_at: 2026-01-01, product: calls, type: TIERED, tiers: [{size: 4, multiplier: 1}, {multiplier: 0.5}]}"
            ],
            "700",
        ),
        # a tie on the multiplier (a TIERED override counts by its first tier's): the override
        # written first wins, the tiered one (700) or the flat multiplier (10 × 100 × 1)
        (
            [
                "{starting_at: 2026-01-01, product: calls, type: TIERED, tiers: [{size: 4, multiplier: 1}, {multiplier: 0.5}]}",
                "{starting_at: 2026-01-01, product: calls, type: MULTIPLIER, multiplier: 1}",
            ],
            "700",
        ),
        (
            [
                "{starting_at: 2026-01-01, product: calls, type: MULTIPLIER, multiplier: 1}",
                "{starting_at: 2026-01-01, product: calls, type: TIERED, tiers: [{size: 4, multiplier: 1}, {multiplier: 0.5}]}",
            ],
            "1000",
        ),
        # an override that has ended does not apply
        (
            [
                "{starting_at: 2026-01-01, ending_before: 2026-02-01, product: calls, type: MULTIPLIER, multiplier: 0.1}"
            ],
            "1000",
        ),
    ],
)
def test_override_precedence(tmp_path: Path, overrides: list[str], total: str) -> None:
    extra = "    overrides:\n" + "".join(f"      - {o}\n" for o in overrides)
    assert totals(usage_invoice(run(tmp_path, contract(FLAT_CALLS, extra), [CALL] * 10))) == [
        ("calls", total)
    ]


def test_explicit_priority_beats_the_lower_multiplier(tmp_path: Path) -> None:
    """Under EXPLICIT the lowest priority wins though its multiplier is higher: 10 × 100 × 0.9."""
    extra = """    multiplier_override_prioritization: EXPLICIT
    overrides:
      - {starting_at: 2026-01-01, product: calls, type: MULTIPLIER, multiplier: 0.5, priority: 2}
      - {starting_at: 2026-01-01, applicable_product_tags: [api], type: MULTIPLIER, multiplier: 0.9, priority: 1}
"""
    assert totals(usage_invoice(run(tmp_path, contract(FLAT_CALLS, extra), [CALL] * 10))) == [
        ("calls", "900")
    ]


def test_override_mid_period_splits_the_line(tmp_path: Path) -> None:
    """A 50 % discount from the 16th: 3 calls before at 100, 2 after at 50."""
    extra = "    overrides:\n      - {starting_at: 2026-03-16, product: calls, type: MULTIPLIER, multiplier: 0.5}\n"
    events = [{**CALL, "timestamp": "2026-03-05T00:00:00Z"}] * 3 + [
        {**CALL, "timestamp": "2026-03-16T00:00:00Z"}
    ] * 2
    lines = usage_invoice(run(tmp_path, contract(FLAT_CALLS, extra), events))["line_items"]
    assert [(x["quantity"], x["unit_price"], x["total"]) for x in lines] == [
        ("3", "100", "300"),
        ("2", "50", "100"),
    ]


def test_entitlement_override(tmp_path: Path) -> None:
    """calls are not entitled on the card; the override entitles them."""
    rate = "      - {product: calls, starting_at: 2026-01-01, entitled: false, rate_type: FLAT, price: 100}"
    not_entitled = run(tmp_path, contract(rate), [CALL] * 2)
    assert totals(usage_invoice(not_entitled)) == []
    (item,) = not_entitled.unpriced
    assert (item.product_id, item.quantity, item.reason) == ("calls", Decimal(2), "not entitled")
    extra = "    overrides:\n      - {starting_at: 2026-01-01, product: calls, entitled: true}\n"
    entitled = run(tmp_path / "b", contract(rate, extra), [CALL] * 2)
    assert totals(usage_invoice(entitled)) == [("calls", "200")]
    assert entitled.unpriced == ()


def test_the_latest_entitlement_override_decides(tmp_path: Path) -> None:
    """Entitled on the card; an override takes calls off from January, a later one (March 5)
    entitles them again: the calls of March 10 are billed."""
    extra = """    overrides:
      - {starting_at: 2026-01-01, product: calls, entitled: false}
      - {starting_at: 2026-03-05, product: calls, entitled: true}
"""
    assert totals(usage_invoice(run(tmp_path, contract(FLAT_CALLS, extra), [CALL] * 2))) == [("calls", "200")]


def test_seat_subscription_prorated_from_a_mid_month_start(tmp_path: Path) -> None:
    """3 seats at 1,000 a month; the contract starts on March 15: 3,000 × 17/31 = 1,645.16 → 1,645."""
    rate = (
        "      - {product: seats, starting_at: 2026-01-01, rate_type: SUBSCRIPTION, price: 1000, quantity: 3}"
    )
    invoice = usage_invoice(run(tmp_path, contract(rate, starting_at="2026-03-15"), []))
    (line,) = invoice["line_items"]
    assert (line["type"], line["quantity"], line["unit_price"], line["total"]) == (
        "subscription",
        "3",
        "1000",
        "1645",
    )
    assert (line["starting_at"], line["ending_before"]) == ("2026-03-15T00:00:00Z", "2026-04-01T00:00:00Z")
    assert invoice["start_timestamp"] == "2026-03-15T00:00:00Z"


def test_proration_counts_wall_clock_days_across_a_dst_change(tmp_path: Path) -> None:
    """3,100 a month in Berlin from March 16: 16 of March's 31 days = 1,600, though summer time
    (March 29) makes them 383 of its 743 hours (which would be 1,598)."""
    rate = "      - {product: seats, starting_at: 2026-01-01, rate_type: SUBSCRIPTION, price: 3100}"
    march = ("2026-03-01", "2026-04-01")  # (in the project timezone)
    result = run(
        tmp_path, contract(rate, starting_at="2026-03-16"), [], timezone="Europe/Berlin", period=march
    )
    (line,) = usage_invoice(result)["line_items"]
    assert (line["starting_at"], line["ending_before"], line["total"]) == (
        "2026-03-15T23:00:00Z",
        "2026-03-31T22:00:00Z",
        "1600",
    )


def test_an_override_inside_a_billing_period_prorates_each_part(tmp_path: Path) -> None:
    """3,100 a month, halved from March 17: 16 days at 3,100 (1,600), then 15 at 1,550 (750)."""
    rate = "      - {product: seats, starting_at: 2026-01-01, rate_type: SUBSCRIPTION, price: 3100}"
    half = "    overrides:\n      - {starting_at: 2026-03-17, product: seats, type: MULTIPLIER, multiplier: 0.5}\n"
    lines = usage_invoice(run(tmp_path, contract(rate, half), []))["line_items"]
    assert [(li["starting_at"], li["unit_price"], li["total"]) for li in lines] == [
        ("2026-03-01T00:00:00Z", "3100", "1600"),
        ("2026-03-17T00:00:00Z", "1550", "750"),
    ]


def test_subscription_in_advance_without_proration(tmp_path: Path) -> None:
    rate = "      - {product: seats, starting_at: 2026-01-01, rate_type: SUBSCRIPTION, price: 1000, is_prorated: false}"
    invoice = usage_invoice(run(tmp_path, contract(rate, starting_at="2026-03-15"), []))
    assert totals(invoice) == [("seats", "1000")]


def test_a_subscription_products_flat_rate_bills_its_seats_per_period(tmp_path: Path) -> None:
    """A subscription product's FLAT rate is a subscription (contract §5): 3 seats at 1,000 a
    month from March 15 = 3,000 × 17/31 → 1,645; not prorated, the whole month's 3,000."""
    flat = "      - {product: seats, starting_at: 2026-01-01, rate_type: FLAT, price: 1000, quantity: 3"
    prorated = usage_invoice(
        run(tmp_path, contract(flat + ", billing_frequency: MONTHLY}", starting_at="2026-03-15"), [])
    )
    assert [(li["quantity"], li["unit_price"], li["total"]) for li in prorated["line_items"]] == [
        ("3", "1000", "1645")
    ]
    whole = run(tmp_path / "b", contract(flat + ", is_prorated: false}", starting_at="2026-03-15"), [])
    assert totals(usage_invoice(whole)) == [("seats", "3000")]


def test_an_overwrite_rate_gives_a_subscription_its_seats(tmp_path: Path) -> None:
    """3 seats at 1,000; an OVERWRITE from March 1 to 5 seats at 800 = 4,000. An overwrite that
    gives only a price keeps the rate's 3 seats: 3 × 800 = 2,400."""
    rate = (
        "      - {product: seats, starting_at: 2026-01-01, rate_type: SUBSCRIPTION, price: 1000, quantity: 3}"
    )
    overwrite = (
        "    overrides:\n      - {starting_at: 2026-03-01, product: seats, type: OVERWRITE,"
        " overwrite_rate: {rate_type: SUBSCRIPTION, price: 800%s}}"
    )
    seats = usage_invoice(run(tmp_path, contract(rate, overwrite % ", quantity: 5"), []))
    assert [(li["quantity"], li["unit_price"], li["total"]) for li in seats["line_items"]] == [
        ("5", "800", "4000")
    ]
    price_only = usage_invoice(run(tmp_path / "b", contract(rate, overwrite % ""), []))
    assert [(li["quantity"], li["total"]) for li in price_only["line_items"]] == [("3", "2400")]


SEATS_15 = (
    "      - {product: seats, starting_at: 2026-01-01, rate_type: SUBSCRIPTION, price: 1000, quantity: 15}"
)
SEAT_TIERS = (
    "    overrides:\n      - {starting_at: 2026-01-01, product: seats, type: TIERED,"
    " tiers: [{size: 10, multiplier: 1}, {multiplier: 0.5}]}"
)


def test_a_tiered_override_of_a_subscription_prices_its_seats_tier_by_tier(tmp_path: Path) -> None:
    """15 seats at 1,000, the first 10 at the full price, the rest at half:
    10 × 1,000 + 5 × 500 = 12,500 (every seat was at the first tier's multiplier: 15,000)."""
    invoice = usage_invoice(run(tmp_path, contract(SEATS_15, SEAT_TIERS), []))
    (line,) = invoice["line_items"]
    assert (line["quantity"], line["unit_price"], line["total"]) == ("15", None, "12500")
    assert [
        (t["level"], t["starting_at"], t["size"], t["quantity"], t["price"], t["subtotal"])
        for t in line["tiers"]
    ] == [
        (1, "0", "10", "10", "1000", "10000"),
        (2, "10", None, "5", "500", "2500"),
    ]


def test_a_prorated_subscription_under_a_tiered_override(tmp_path: Path) -> None:
    """From March 15: the whole month's 12,500 (as above) × 17/31 = 6,854.84 → 6,855. The tiers
    show the whole billing period, as the unit price of a prorated line does."""
    invoice = usage_invoice(run(tmp_path, contract(SEATS_15, SEAT_TIERS, starting_at="2026-03-15"), []))
    (line,) = invoice["line_items"]
    assert (line["total"], [t["subtotal"] for t in line["tiers"]]) == ("6855", ["10000", "2500"])


def test_composite_support_fee(tmp_path: Path) -> None:
    """10 % of the api-tagged lines and lm4: calls 10 × 100 = 1,000, lm4 2.5 × 50 = 125;
    units_by_region is not a member. (1,000 + 125) × 0.1 = 112.5 → 113."""
    rates = "\n".join(
        [
            FLAT_CALLS,
            "      - {product: lm4, starting_at: 2026-01-01, rate_type: FLAT, price: 50}",
            "      - {product: units_by_region, starting_at: 2026-01-01, rate_type: FLAT, price: 7}",
            "      - {product: support, starting_at: 2026-01-01, rate_type: PERCENTAGE, fraction: 0.1}",
        ]
    )
    events = [CALL] * 10 + [
        tokens("u", 2_500_000),
        {"event_type": "unit", "properties": {"region": "eu", "n": 1}},
    ]
    invoice = usage_invoice(run(tmp_path, contract(rates), events))
    assert totals(invoice) == [
        ("calls", "1000"),
        ("lm4", "125"),
        ("units_by_region", "7"),
        ("support", "113"),
    ]
    support = invoice["line_items"][-1]
    assert (support["type"], support["quantity"], support["unit_price"]) == ("composite", "1125", "0.1")
    assert invoice["total"] == "1245"


def test_a_tiered_override_of_a_composite_shows_its_tiers(tmp_path: Path) -> None:
    """10 % of calls, 10 × 100 = 1,000, under a TIERED override: the first 400 of the base at
    the full fraction, the rest at half. 400 × 0.1 + 600 × 0.05 = 40 + 30 = 70. The line had
    no unit price and no tier breakdown to say so."""
    rates = "\n".join(
        [
            FLAT_CALLS,
            "      - {product: support, starting_at: 2026-01-01, rate_type: PERCENTAGE, fraction: 0.1}",
        ]
    )
    override = (
        "    overrides:\n      - {starting_at: 2026-01-01, product: support, type: TIERED,"
        " tiers: [{size: 400, multiplier: 1}, {multiplier: 0.5}]}"
    )
    invoice = usage_invoice(run(tmp_path, contract(rates, override), [CALL] * 10))
    support = invoice["line_items"][-1]
    assert (support["quantity"], support["unit_price"], support["total"]) == ("1000", None, "70")
    assert support["tiers"] == [
        {"level": 1, "starting_at": "0", "size": "400", "quantity": "400", "price": "0.1", "subtotal": "40"},
        {
            "level": 2,
            "starting_at": "400",
            "size": None,
            "quantity": "600",
            "price": "0.05",
            "subtotal": "30",
        },
    ]


def test_a_composites_tiers_count_from_the_start_of_the_period(tmp_path: Path) -> None:
    """The fee's fraction goes from 10 % to 20 % on March 15 (and calls' rate is cut there too,
    at the same price), under a TIERED override: the first 400 of the base at the full fraction,
    the rest at half — counted per period, as usage tiers are. Calls at 100: 3 before (300),
    5 after (500). First segment: 300 × 0.1 = 30. Second, from 300 used: 100 × 0.2 = 20, then
    400 × 0.2 × 0.5 = 40 — 60; the tiers started again at 0 and charged 400 × 0.2 + 100 × 0.1 = 90."""
    rates = "\n".join(
        [
            "      - {product: calls, starting_at: 2026-01-01, ending_before: 2026-03-15, rate_type: FLAT, price: 100}",
            "      - {product: calls, starting_at: 2026-03-15, rate_type: FLAT, price: 100}",
            "      - {product: support, starting_at: 2026-01-01, ending_before: 2026-03-15, rate_type: PERCENTAGE,"
            " fraction: 0.1}",
            "      - {product: support, starting_at: 2026-03-15, rate_type: PERCENTAGE, fraction: 0.2}",
        ]
    )
    override = (
        "    overrides:\n      - {starting_at: 2026-01-01, product: support, type: TIERED,"
        " tiers: [{size: 400, multiplier: 1}, {multiplier: 0.5}]}"
    )
    early = [{**CALL, "timestamp": "2026-03-10T12:00:00Z"}] * 3
    late = [{**CALL, "timestamp": "2026-03-20T12:00:00Z"}] * 5
    invoice = usage_invoice(run(tmp_path, contract(rates, override), early + late))
    assert totals(invoice) == [("calls", "300"), ("calls", "500"), ("support", "30"), ("support", "60")]
    assert [(t["starting_at"], t["quantity"], t["subtotal"]) for t in invoice["line_items"][-1]["tiers"]] == [
        ("0", "100", "20"),  # (a tier starts where it starts; the line's 100 units of it are 300–400)
        ("400", "400", "40"),
    ]


@pytest.mark.parametrize(
    ("rounding", "expected"),
    [
        ("ROUND_HALF_UP", ["3", "1"]),  # 2.5 → 3, 0.5 → 1
        ("ROUND_HALF_EVEN", ["2", "0"]),
        ("ROUND_UP", ["3", "1"]),
        ("ROUND_DOWN", ["2", "0"]),
    ],
)
def test_line_rounding_at_half(tmp_path: Path, rounding: str, expected: list[str]) -> None:
    """5 calls at 0.5 = 2.5 and 1 user-token unit at 0.5 = 0.5, each rounded once."""
    rates = "\n".join(
        [
            "      - {product: calls, starting_at: 2026-01-01, rate_type: FLAT, price: 0.5}",
            "      - {product: lm4, starting_at: 2026-01-01, rate_type: FLAT, price: 0.5}",
        ]
    )
    invoice = usage_invoice(run(tmp_path, contract(rates), [CALL] * 5 + [tokens("u", 1_000_000)], rounding))
    assert [t for _, t in totals(invoice)] == expected
    assert invoice["total"] == str(sum(int(t) for t in expected))


def test_quantity_conversion_then_rounding(tmp_path: Path) -> None:
    """1,234,567 tokens / 1,000,000 = 1.234567, rounded up to 2 places = 1.24; × 100 = 124."""
    conversion = "    quantity_conversion: {conversion_factor: 1000000, operation: DIVIDE}\n"
    rounding = "    quantity_rounding: {decimal_places: 2, rounding_method: ROUND_UP}\n"
    base = BASE.replace(conversion, conversion + rounding)
    spec = contract("      - {product: lm4, starting_at: 2026-01-01, rate_type: FLAT, price: 100}")
    (line,) = usage_invoice(run(tmp_path, spec, [tokens("u", 1234567)], base=base))["line_items"]
    assert (line["quantity"], line["total"]) == ("1.24", "124")


@pytest.mark.parametrize(
    ("method", "expected"),
    [  # tokens 1,235,000 / 2,345,001 / -1,235,000 / 1,230,000 / 1,225,000 ÷ 1,000,000 → 2 places,
        # × 100 cents (1.225 is where half up and half to even part: 1.23 against 1.22)
        (
            "ROUND_HALF_UP",
            [("1.24", "124"), ("2.35", "235"), ("-1.24", "-124"), ("1.23", "123"), ("1.23", "123")],
        ),
        ("ROUND_UP", [("1.24", "124"), ("2.35", "235"), ("-1.24", "-124"), ("1.23", "123"), ("1.23", "123")]),
        (
            "ROUND_DOWN",
            [("1.23", "123"), ("2.34", "234"), ("-1.23", "-123"), ("1.23", "123"), ("1.22", "122")],
        ),
    ],
)
def test_quantity_rounding_methods(tmp_path: Path, method: str, expected: list[tuple[str, str]]) -> None:
    """Half up and up go away from zero, down toward it; an exact value stays. A negative
    quantity (usage that went down) is credited back: F(q) − F(0) at a FLAT price is q × price."""
    conversion = "    quantity_conversion: {conversion_factor: 1000000, operation: DIVIDE}\n"
    rounding = f"    quantity_rounding: {{decimal_places: 2, rounding_method: {method}}}\n"
    base = BASE.replace(conversion, conversion + rounding)
    spec = contract("      - {product: lm4, starting_at: 2026-01-01, rate_type: FLAT, price: 100}")
    users = (("a", 1235000), ("b", 2345001), ("c", -1235000), ("d", 1230000), ("e", 1225000))
    events = [tokens(u, n) for u, n in users]
    lines = usage_invoice(run(tmp_path, spec, events, base=base))["line_items"]
    assert [(line["quantity"], line["total"]) for line in lines] == expected


def test_a_conversion_is_exact_to_18_places(tmp_path: Path) -> None:
    """10 and 20 units ÷ 3 do not end: the quantities keep 18 places, rounded half to even at the
    last (3.333…3 and 6.666…7); their money is 333.33… → 333 and 666.66… → 667 cents."""
    base = BASE.replace("conversion_factor: 1000000", "conversion_factor: 3")
    spec = contract("      - {product: lm4, starting_at: 2026-01-01, rate_type: FLAT, price: 100}")
    lines = usage_invoice(run(tmp_path, spec, [tokens("a", 10), tokens("b", 20)], base=base))["line_items"]
    assert [(line["quantity"], line["total"]) for line in lines] == [
        ("3.333333333333333333", "333"),
        ("6.666666666666666667", "667"),
    ]


def test_totals_of_30_digits_are_exact_and_render(tmp_path: Path) -> None:
    """99,999,999,999.000000000000000002 units at 10^25 cents each: the line is
    999999999990000000000000000000000000 + 0.000000000000000002 × 10^25 (= 20,000,000) cents.
    Summed in the default context (28 digits), the invoice's and the run's totals lost the
    20,000,000; Babel failed to format them (a traceback from `pricing invoice`)."""
    spec = contract(
        "      - {product: units, starting_at: 2026-01-01, rate_type: FLAT, price: 10000000000000000000}"
    )
    halves = [
        {"event_type": "unit", "properties": {"region": "us", "n": n}}
        for n in ("99999999999", "0.000000000000000002")
    ]
    result = run(tmp_path, spec, halves)
    invoice = usage_invoice(result)
    exact = "999999999990000000000000000020"
    assert [line["total"] for line in invoice["line_items"] if line["product_id"] == "units"] == [exact]
    assert (invoice["subtotal"], invoice["total"], text(result.totals()["USD"])) == (exact, exact, exact)
    code = invoice_command(tmp_path / "spec", tmp_path, "--render", "txt")
    assert code.exit_code == 0, code.output
    assert "$9,999,999,999,900,000,000,000,000,000.20" in code.stdout
    (document,) = (tmp_path / "out" / "txt").iterdir()
    assert "Total USD $9,999,999,999,900,000,000,000,000,000.20" in document.read_text()


def test_a_price_of_many_digits_is_multiplied_exactly(tmp_path: Path) -> None:
    """0.999999999999999999 units (1 - 10^-18) at 1.000000000000000001000000000000000001
    000000000000000001 cents (1 + 10^-18 + 10^-36 + 10^-54) cost exactly 1 - 10^-72 cents:
    rounded down, 0. In 60 digits the product was 1, rounded down to 1 cent."""
    price = "1.000000000000000001000000000000000001000000000000000001"
    spec = contract(f"      - {{product: units, starting_at: 2026-01-01, rate_type: FLAT, price: {price}}}")
    unit = {"event_type": "unit", "properties": {"region": "us", "n": "0.999999999999999999"}}
    lines = usage_invoice(run(tmp_path, spec, [unit], "ROUND_DOWN"))["line_items"]
    assert [(line["quantity"], line["unit_price"], line["total"]) for line in lines] == [
        ("0.999999999999999999", price, "0")
    ]


def test_a_period_whose_usage_adds_up_past_what_quantities_hold_stops_the_run(tmp_path: Path) -> None:
    """9 × 10^19 units before a rate change on March 15 and as many after: each segment holds,
    but the second's tiers count from 1.8 × 10^20 used in the period (a Polars traceback)."""
    spec = contract(
        "      - {product: units, starting_at: 2026-01-01, ending_before: 2026-03-15, rate_type: TIERED, tiers: [{size: 10, price: 2}, {price: 1}]}\n"
        "      - {product: units, starting_at: 2026-03-15, rate_type: TIERED, tiers: [{size: 10, price: 2}, {price: 1}]}"
    )
    big = {"event_type": "unit", "properties": {"region": "us", "n": "90000000000000000000"}}
    message = "product 'units': its usage in a period reaches 10^20, more than quantities can hold (38 digits, 18 after the point)"
    with pytest.raises(RatingError, match=f"^{re.escape(message)}$"):
        run(tmp_path, spec, [big, {**big, "timestamp": "2026-03-20T12:00:00Z"}])


def test_a_converted_quantity_too_large_to_hold_stops_the_run(tmp_path: Path) -> None:
    """10^12 tokens × 10^9 = 10^21 units: beyond Decimal(38, 18), so no invoice, and no traceback
    from the command line either."""
    base = BASE.replace(
        "conversion_factor: 1000000, operation: DIVIDE", "conversion_factor: 1000000000, operation: MULTIPLY"
    )
    spec = contract("      - {product: lm4, starting_at: 2026-01-01, rate_type: FLAT, price: 1}")
    message = "product 'lm4': a converted quantity reaches 10^20, more than quantities can hold (38 digits, 18 after the point): "
    with pytest.raises(RatingError, match=re.escape(message)):
        run(tmp_path / "api", spec, [tokens("a", 10**12)], base=base)
    root = project(tmp_path / "cli", spec, base=base)
    (tmp_path / "events.jsonl").write_text(
        json.dumps(
            {
                "transaction_id": "t",
                "customer_id": "acme",
                "timestamp": "2026-03-10T12:00:00Z",
                **tokens("a", 10**12),
            }
        )
        + "\n"
    )
    result = invoice_command(root, tmp_path)
    assert (result.exit_code, result.stderr.startswith("Error: " + message)) == (1, True), result.stderr
    assert not (tmp_path / "out" / "invoices.jsonl").exists()


def test_progress_counts_the_usage_products_then_the_periods(tmp_path: Path) -> None:
    """Four usage products (calls, lm4, units, units_by_region) are rated, then March's one
    invoice is assembled: five steps, each reported once when done."""
    calls: list[tuple[int, int]] = []
    run(tmp_path, contract(FLAT_CALLS), [CALL], progress=lambda done, total: calls.append((done, total)))
    assert calls == [(1, 5), (2, 5), (3, 5), (4, 5), (5, 5)]


COMMIT = """    commits:
      - name: Prepaid
        product: prepaid
        type: PREPAID
        access_schedule: [{amount: 1500, starting_at: 2026-01-01, ending_before: 2027-01-01}]
        invoice_schedule: [{timestamp: 2026-03-05, amount: 1500}]
        applicable_product_tags: [api]
"""


def test_prepaid_commit_pays_usage_and_carries_over(tmp_path: Path) -> None:
    """A 1,500 prepaid commit on api products. March: 10 calls = 1,000, paid in full (balance 500).
    April: 8 calls = 800, 500 paid, 300 due. The commit itself is invoiced on March 5."""
    events = [CALL] * 10 + [{**CALL, "timestamp": "2026-04-03T00:00:00Z"}] * 8
    result = run(
        tmp_path,
        contract(FLAT_CALLS, COMMIT),
        events,
        period=(MARCH[0], datetime(2026, 5, 1, tzinfo=UTC)),
    )
    march, scheduled, april = (i.as_dict() for i in result.invoices)
    assert [(x["type"], x["name"], x["total"]) for x in march["line_items"]] == [
        ("usage", "calls", "1000"),
        ("applied", "Prepaid", "-1000"),
    ]
    assert (march["subtotal"], march["total"]) == ("1000", "0")
    assert (scheduled["type"], scheduled["id"], scheduled["total"]) == (
        "SCHEDULED",
        "acme-c-20260305-scheduled",
        "1500",
    )
    assert scheduled["line_items"][0]["type"] == "commit"
    assert [(x["type"], x["total"]) for x in april["line_items"]] == [("usage", "800"), ("applied", "-500")]
    assert april["total"] == "300"


def test_credit_then_commit_order_and_applicability(tmp_path: Path) -> None:
    """A credit of 300 with priority 1 on calls, a commit of 1,500 on api products (priority 2):
    the credit pays first (300 of 1,000), the commit the remaining 700. lm4 (125) is paid by neither."""
    extra = (
        COMMIT.replace(
            "applicable_product_tags: [api]", "applicable_product_tags: [api]\n        priority: 2"
        )
        + """    credits:
      - name: Launch credit
        product: prepaid
        access_schedule: [{amount: 300, starting_at: 2026-03-01, ending_before: 2026-04-01}]
        applicable_product_ids: [calls]
        priority: 1
"""
    )
    rates = FLAT_CALLS + "\n      - {product: lm4, starting_at: 2026-01-01, rate_type: FLAT, price: 50}"
    invoice = usage_invoice(run(tmp_path, contract(rates, extra), [CALL] * 10 + [tokens("u", 2_500_000)]))
    assert [(x["type"], x["name"], x["total"]) for x in invoice["line_items"]] == [
        ("usage", "calls", "1000"),
        ("usage", "langModel4 tokens", "125"),
        ("applied", "Launch credit", "-300"),
        ("applied", "Prepaid", "-700"),
    ]
    assert (invoice["subtotal"], invoice["total"]) == ("1125", "125")


def test_balances_without_priority_pay_by_fewest_applicable_products(tmp_path: Path) -> None:
    """Credits of 600 without priorities pay 1,000 of calls narrowest first, whatever order they
    are written in: calls and units by id and again by their tag api (2 products, not 4) before
    calls, units and lm4 by id (3), which is left 400; calls by id (1) before every product (8),
    also when it ends later (the fewest products come before the earliest end); of two for calls,
    the one that ends first; and before all of these, one with a priority."""

    def credit(name: str, ids: str, tags: str = "", ending: str = "2026-04-01", priority: str = "") -> str:
        applicable = f"        applicable_product_ids: [{ids}]\n" if ids else ""
        applicable += f"        applicable_product_tags: [{tags}]\n" if tags else ""
        applicable += f"        priority: {priority}\n" if priority else ""
        return f"""      - name: {name}
        product: prepaid
        access_schedule: [{{amount: 600, starting_at: 2026-03-01, ending_before: {ending}}}]
{applicable}"""

    for case, credits, paid in [
        (
            "by_tag_too",
            [credit("Three", "calls, units, lm4"), credit("Api twice", "calls, units", "api")],
            {"Api twice": "-600", "Three": "-400"},
        ),
        (
            "widest_last",
            [credit("Everything", ""), credit("Calls", "calls")],
            {"Calls": "-600", "Everything": "-400"},
        ),
        (
            "narrowest_before_soonest",
            [credit("Everything", ""), credit("Calls", "calls", ending="2026-06-01")],
            {"Calls": "-600", "Everything": "-400"},
        ),
        (
            "soonest_of_the_narrowest",
            [credit("Later", "calls", ending="2026-06-01"), credit("Sooner", "calls")],
            {"Sooner": "-600", "Later": "-400"},
        ),
        (
            "priority_first",
            [credit("Calls", "calls"), credit("Everything", "", priority="5")],
            {"Everything": "-600", "Calls": "-400"},
        ),
    ]:
        spec = contract(FLAT_CALLS, "    credits:\n" + "".join(credits))
        invoice = usage_invoice(run(tmp_path / case, spec, [CALL] * 10))
        assert {x["name"]: x["total"] for x in invoice["line_items"] if x["type"] == "applied"} == paid


def test_postpaid_commit_true_up(tmp_path: Path) -> None:
    """A 2,000 minimum for March: usage of 1,000 is billed, and the 1,000 left is a true-up."""
    extra = """    commits:
      - product: prepaid
        type: POSTPAID
        access_schedule: [{amount: 2000, starting_at: 2026-03-01, ending_before: 2026-04-01}]
"""
    invoice = usage_invoice(run(tmp_path, contract(FLAT_CALLS, extra), [CALL] * 10))
    assert [(x["type"], x["total"]) for x in invoice["line_items"]] == [
        ("usage", "1000"),
        ("true_up", "1000"),
    ]
    assert invoice["total"] == "2000"


def test_postpaid_minimum_met_exactly_over_two_months_and_after_a_credit(tmp_path: Path) -> None:
    """A 1,000 minimum for March met exactly by March's 1,000 of calls: no true-up. A 2,000 one
    is trued up by 1,000 in March, and not again in April (run with March: the commit ended
    where April starts). A 300 credit pays first, and the minimum counts the 700 left: 2,000 is
    trued up by 1,300."""
    minimum = """    commits:
      - product: prepaid
        type: POSTPAID
        access_schedule: [{amount: %s, starting_at: 2026-03-01, ending_before: 2026-04-01}]
"""
    met = usage_invoice(run(tmp_path / "met", contract(FLAT_CALLS, minimum % 1000), [CALL] * 10))
    assert [(x["type"], x["total"]) for x in met["line_items"]] == [("usage", "1000")]
    two_months = (datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 5, 1, tzinfo=UTC))
    short = run(tmp_path / "short", contract(FLAT_CALLS, minimum % 2000), [CALL] * 10, period=two_months)
    shown = [(i.start.month, [(li.type, str(li.total)) for li in i.lines]) for i in short.invoices]
    assert shown == [(3, [("usage", "1000"), ("true_up", "1000")]), (4, [("usage", "0")])]
    credit = """    credits:
      - {product: prepaid, access_schedule: [{amount: 300, starting_at: 2026-03-01, ending_before: 2026-04-01}]}
"""
    invoice = usage_invoice(
        run(tmp_path / "credit", contract(FLAT_CALLS, minimum % 2000 + credit), [CALL] * 10)
    )
    assert [(x["type"], x["total"]) for x in invoice["line_items"]] == [
        ("usage", "1000"),
        ("true_up", "1300"),
        ("applied", "-300"),
    ]


def test_usage_that_goes_down_counts_against_commits_as_net_usage(tmp_path: Path) -> None:
    """Units at FLAT 100: 15 in March (1,500), −5.6 in April (−560: usage went down). A 1,000
    minimum over March and April is met by net usage 940 less 60: April's true-up is 60 (the
    minimum was exceeded in March, by 500, and April gave 560 back). A 1,200 prepaid commit over
    the two months pays March's 1,500 up to 1,200 and nothing of April's credit."""
    flat = "      - {product: units, starting_at: 2026-01-01, rate_type: FLAT, price: 100}"
    schedule = "[{amount: %s, starting_at: 2026-03-01, ending_before: 2026-05-01}]"
    extra = f"""    commits:
      - {{product: prepaid, type: POSTPAID, access_schedule: {schedule % 1000}}}
"""
    events = [
        {
            "event_type": "unit",
            "timestamp": "2026-03-05T00:00:00Z",
            "properties": {"region": "eu", "n": "15"},
        },
        {
            "event_type": "unit",
            "timestamp": "2026-04-05T00:00:00Z",
            "properties": {"region": "eu", "n": "-5.6"},
        },
    ]
    two_months = (MARCH[0], datetime(2026, 5, 1, tzinfo=UTC))
    result = run(tmp_path / "postpaid", contract(flat, extra), events, period=two_months)
    assert [[(x["type"], x["total"]) for x in i.as_dict()["line_items"]] for i in result.invoices] == [
        [("usage", "1500")],
        [("usage", "-560"), ("true_up", "60")],
    ]
    assert [text(left) for _, left in result.balances] == ["60"]
    extra = extra.replace("POSTPAID", "PREPAID").replace("1000", "1200")
    result = run(tmp_path / "prepaid", contract(flat, extra), events, period=two_months)
    usage = [
        [(x["type"], x["total"]) for x in i.as_dict()["line_items"]]
        for i in result.invoices
        if i.type == "USAGE"
    ]
    assert usage == [[("usage", "1500"), ("applied", "-1200")], [("usage", "-560")]]


def test_commits_pay_nothing_back_to_a_credited_line(tmp_path: Path) -> None:
    """Calls 7 × 100 = 700 and units −5.6 × 100 = −560 (usage that went down) in March: 140 is
    owed. A credit of 300 (priority 1) pays 140 of the calls line; a commit of 1,000 (priority
    2) then finds nothing owed — the credited units line is not a debt it could pay — and the
    invoice comes to 0."""
    rates = FLAT_CALLS + "\n      - {product: units, starting_at: 2026-01-01, rate_type: FLAT, price: 100}"
    march = "starting_at: 2026-03-01, ending_before: 2026-04-01"
    extra = f"""    credits:
      - {{name: Launch credit, product: prepaid, priority: 1, access_schedule: [{{amount: 300, {march}}}]}}
    commits:
      - {{product: prepaid, type: PREPAID, priority: 2, access_schedule: [{{amount: 1000, {march}}}]}}
"""
    units = {"event_type": "unit", "properties": {"region": "eu", "n": "-5.6"}}
    invoice = usage_invoice(run(tmp_path, contract(rates, extra), [CALL] * 7 + [units]))
    assert [(x["type"], x["name"], x["total"]) for x in invoice["line_items"]] == [
        ("usage", "calls", "700"),
        ("usage", "units", "-560"),
        ("applied", "Launch credit", "-140"),
    ]
    assert invoice["total"] == "0"


def test_scheduled_charges_and_status(tmp_path: Path) -> None:
    """Scheduled charges fall on SCHEDULED invoices at their instants; with --as-of on March 20
    the March 10 one is FINALIZED, the March 25 one and the March period are DRAFT."""
    extra = """    scheduled_charges:
      - product: onboarding
        schedule: [{timestamp: 2026-03-10, amount: 250.5}, {timestamp: "2026-03-25T09:30:00Z", amount: 100}]
"""
    result = run(tmp_path, contract(FLAT_CALLS, extra), [], as_of=datetime(2026, 3, 20, tzinfo=UTC))
    shown = [(i.id, i.type, i.status, str(i.total)) for i in result.invoices]
    assert shown == [
        ("acme-c-20260301", "USAGE", "DRAFT", "0"),
        ("acme-c-20260310-scheduled", "SCHEDULED", "FINALIZED", "251"),  # 250.5 rounded half up
        ("acme-c-20260325T093000-scheduled", "SCHEDULED", "DRAFT", "100"),
    ]
    at_the_charge = run(
        tmp_path / "at", contract(FLAT_CALLS, extra), [], as_of=datetime(2026, 3, 25, 9, 30, tzinfo=UTC)
    )
    assert [i.status for i in at_the_charge.invoices] == ["DRAFT", "FINALIZED", "FINALIZED"]  # (at or before)


def test_scheduled_charges_at_the_runs_bounds(tmp_path: Path) -> None:
    """A charge at the run's start is in the run; one at its end is in the next run's."""
    extra = """    scheduled_charges:
      - product: onboarding
        schedule: [{timestamp: 2026-03-01, amount: 10}, {timestamp: 2026-04-01, amount: 20}]
"""
    result = run(tmp_path, contract(FLAT_CALLS, extra), [])
    assert [(i.id, str(i.total)) for i in result.invoices if i.type == "SCHEDULED"] == [
        ("acme-c-20260301-scheduled", "10")
    ]


def test_zero_lines_for_entitled_products_and_skip_zero(tmp_path: Path) -> None:
    """calls has no usage: a zero line; units_by_region (priced by region) shows none."""
    rates = (
        FLAT_CALLS
        + "\n      - {product: units_by_region, starting_at: 2026-01-01, rate_type: FLAT, price: 7}"
    )
    invoice = usage_invoice(run(tmp_path, contract(rates), []))
    assert [(x["product_id"], x["quantity"], x["unit_price"], x["total"]) for x in invoice["line_items"]] == [
        ("calls", "0", "100", "0")
    ]
    assert usage_invoice(run(tmp_path / "skip", contract(rates), [], skip_zero=True))["line_items"] == []


def test_dimensional_pricing_and_unpriced_values(tmp_path: Path) -> None:
    """units priced per region: us at 2, eu at 3; apac has no rate and is reported, not dropped."""
    rates = "\n".join(
        [
            "      - {product: units_by_region, starting_at: 2026-01-01, rate_type: FLAT, price: 2, pricing_group_values: {region: us}}",
            "      - {product: units_by_region, starting_at: 2026-01-01, rate_type: FLAT, price: 3, pricing_group_values: {region: eu}}",
        ]
    )
    events = [
        {"event_type": "unit", "properties": {"region": r, "n": n}}
        for r, n in (("us", 10), ("eu", 5), ("apac", 4))
    ]
    result = run(tmp_path, contract(rates), events)
    lines = usage_invoice(result)["line_items"]
    assert [(x["pricing_group_values"], x["total"]) for x in lines] == [
        ({"region": "eu"}, "15"),
        ({"region": "us"}, "20"),
    ]
    (item,) = result.unpriced
    assert (item.product_id, item.group_values, item.quantity) == (
        "units_by_region",
        (("region", "apac"),),
        Decimal(4),
    )
    assert item.reason == "no rate for these pricing group values"


def test_a_rate_for_some_pricing_values_beats_the_rate_for_all(tmp_path: Path) -> None:
    """units at 7 in any region, at 2 in us: us 10 × 2 = 20, eu 5 × 7 = 35."""
    rates = "\n".join(
        [
            "      - {product: units_by_region, starting_at: 2026-01-01, rate_type: FLAT, price: 7}",
            "      - {product: units_by_region, starting_at: 2026-01-01, rate_type: FLAT, price: 2, pricing_group_values: {region: us}}",
        ]
    )
    events = [{"event_type": "unit", "properties": {"region": r, "n": n}} for r, n in (("us", 10), ("eu", 5))]
    lines = usage_invoice(run(tmp_path, contract(rates), events))["line_items"]
    assert [(x["pricing_group_values"], x["unit_price"], x["total"]) for x in lines] == [
        ({"region": "eu"}, "7", "35"),
        ({"region": "us"}, "2", "20"),
    ]


def test_contracts_on_one_card_whose_periods_start_together_and_end_apart(tmp_path: Path) -> None:
    """Three customers on one rate card from January 1: monthly, quarterly and weekly statements,
    whose first periods all start on January 1. Contracts on one card share their segments,
    which were looked up by the period's start alone: each customer was billed a line for each
    of the three periods, [Jan 1, Feb 1), [Jan 1, Apr 1) and [Jan 1, Jan 8) — three times what
    it used, the later lines tiered on from the first. By hand, at FLAT 100: acme 1 call, 100;
    globex 1 call, 100; bolt 2 calls in its first week (Jan 1 and 5), 200, and 1 in its second
    (Jan 8), 100."""
    spec = """
  globex: {}
  bolt: {}
metrics:
  calls: {event_type_filter: {in_values: [call]}, aggregation_type: COUNT}
products:
  calls: {type: usage, billable_metric: calls}
rate_cards:
  card:
    rates:
      - {product: calls, starting_at: 2026-01-01, rate_type: FLAT, price: 100}
contracts:
  monthly: {customer: acme, rate_card: card, starting_at: 2026-01-01}
  quarterly:
    customer: globex
    rate_card: card
    starting_at: 2026-01-01
    usage_statement_schedule: {frequency: QUARTERLY, day: FIRST_OF_MONTH}
  weekly:
    customer: bolt
    rate_card: card
    starting_at: 2026-01-01
    usage_statement_schedule: {frequency: WEEKLY, day: CONTRACT_START}
"""
    root = project(tmp_path, spec, base="customers:\n  acme: {}\n")
    path = tmp_path / "events.jsonl"
    sent = [("acme", "01-05"), ("globex", "01-05"), ("bolt", "01-01"), ("bolt", "01-05"), ("bolt", "01-08")]
    rows = [
        {
            "transaction_id": f"t{i}",
            "customer_id": c,
            "event_type": "call",
            "timestamp": f"2026-{d}T12:00:00Z",
        }
        for i, (c, d) in enumerate(sent)
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    january = (datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 2, 1, tzinfo=UTC))
    result = compile(pricing.load(root)).invoice([str(path)], *january)
    lines = {
        i.contract_id: [
            (text(line.quantity), text(line.total), line.starting_at.date(), line.ending_before.date())
            for line in i.lines
        ]
        for i in result.invoices
        if i.start.day == 1 and i.start.month == 1
    }
    assert lines == {
        "monthly": [("1", "100", date(2026, 1, 1), date(2026, 2, 1))],
        "quarterly": [("1", "100", date(2026, 1, 1), date(2026, 4, 1))],
        "weekly": [("2", "200", date(2026, 1, 1), date(2026, 1, 8))],
    }
    assert sum(i.total for i in result.invoices if i.contract_id == "weekly") == 300


def test_invoice_runs_partition_periods(tmp_path: Path) -> None:
    """A period is invoiced by the run in which it starts, whole: a contract on the 15th is
    invoiced March 15 – April 15 by the March run, and its March 1–15 events belong to the
    February run (outside_run here)."""
    spec = contract(
        FLAT_CALLS, "    usage_statement_schedule: {frequency: MONTHLY, day: CONTRACT_START}", "2026-01-15"
    )
    events = [
        {**CALL, "timestamp": t}
        for t in ("2026-03-02T00:00:00Z", "2026-03-20T00:00:00Z", "2026-04-10T00:00:00Z")
    ]
    result = run(tmp_path, spec, events)
    invoice = usage_invoice(result)
    assert (invoice["start_timestamp"], invoice["end_timestamp"], invoice["total"]) == (
        "2026-03-15T00:00:00Z",
        "2026-04-15T00:00:00Z",
        "200",
    )
    assert invoice["status"] == "DRAFT"  # the period ends after the run (the default as-of)
    assert (result.ledger.buckets["rated"], result.ledger.buckets["outside_run"]) == (2, 1)


def test_monthly_runs_carry_balances_forward(tmp_path: Path) -> None:
    """The prepaid commit case run month by month: March leaves 500 of the 1,500, so April pays
    300 of its 800 — as the single two-month run does — only when April opens with March's balances."""
    events = [CALL] * 10 + [{**CALL, "timestamp": "2026-04-03T00:00:00Z"}] * 8
    spec = contract(FLAT_CALLS, COMMIT)
    march = run(tmp_path / "march", spec, events)
    assert [(key[1], key[2], str(left)) for key, left in march.balances] == [("commits", 0, "500")]
    april = (datetime(2026, 4, 1, tzinfo=UTC), datetime(2026, 5, 1, tzinfo=UTC))
    opened = run(tmp_path / "april", spec, events, period=april, opening=dict(march.balances))
    assert str(usage_invoice(opened)["total"]) == "300"
    fresh = run(tmp_path / "fresh", spec, events, period=april)
    assert str(usage_invoice(fresh)["total"]) == "0"  # a full commit again: why the option exists


def test_line_items_as_a_polars_frame(tmp_path: Path) -> None:
    spec = contract("      - {product: lm4, starting_at: 2024-01-01T00:00:00Z, rate_type: FLAT, price: 50}")
    result = run(tmp_path, spec, [tokens("johndoe", 5_000_000), tokens("janedoe", 5_500_000)])
    frame = result.line_items()
    assert frame.select("invoice_id", "product_id", "quantity", "total").rows() == [
        ("acme-c-20260301", "lm4", Decimal("5.5"), Decimal(275)),
        ("acme-c-20260301", "lm4", Decimal(5), Decimal(250)),
    ]
    assert str(frame.schema["total"]) == "Decimal(precision=38, scale=18)"


def test_an_instant_with_a_fraction_of_a_second_keeps_it(tmp_path: Path) -> None:
    """A contract may start at any microsecond: its invoice and the usage table write the
    fraction (it was cut to the second), and whole seconds stay without one."""
    (tmp_path / "pricing.yaml").write_text("version: 1\nname: Fractions\n")
    (tmp_path / "spec.yaml").write_text(
        "metrics: {calls: {aggregation_type: COUNT}}\n"
        "products: {p: {type: usage, billable_metric: calls}}\n"
        "customers: {acme: {}}\n"
        "rate_cards: {rc: {rates: [{product: p, starting_at: 2026-01-01, rate_type: FLAT, price: 1}]}}\n"
        "contracts: {c: {customer: acme, rate_card: rc, starting_at: '2026-03-10T12:00:00.25Z',"
        " ending_before: '2026-03-20T00:00:00.000123Z'}}\n"
    )
    (tmp_path / "e.jsonl").write_text(
        '{"transaction_id": "1", "customer_id": "acme", "event_type": "x", "timestamp": "2026-03-11T00:00:00Z"}\n'
    )
    plan = compile(pricing.load(tmp_path))
    march = (datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 4, 1, tzinfo=UTC))
    invoice = plan.invoice([str(tmp_path / "e.jsonl")], *march).invoices[0].as_dict()
    assert (invoice["start_timestamp"], invoice["end_timestamp"]) == (
        "2026-03-10T12:00:00.250Z",
        "2026-03-20T00:00:00.000123Z",
    )
    [row] = plan.usage([str(tmp_path / "e.jsonl")], *march).rows()
    assert (row["period_start"], row["period_end"], row["quantity"]) == (
        "2026-03-10T12:00:00.250Z",
        "2026-03-20T00:00:00.000123Z",
        "1",
    )
    assert row["window_start"] == "2026-03-10T12:00:00.250Z"
