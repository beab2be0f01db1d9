"""The public API on the bundled specs/ and on broken projects."""

from __future__ import annotations

import shutil
import subprocess
import sys
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

import pricing
from pricing import ir
from pricing.compiler.link import ref_fields
from tests.conftest import CASES, REPO

SPECS = REPO / "specs"


def test_bundled_specs_load_clean() -> None:
    assert pricing.check(SPECS) == []
    project = pricing.load(SPECS)
    assert project.manifest.name == "Nimbus AI"
    assert sorted(project.customers) == ["acme", "globex", "initech", "umbrella"]
    assert len(project.metrics) == 6
    assert len(project.products) == 11


def test_ir_values_are_exact() -> None:
    project = pricing.load(SPECS)
    small = next(r for r in project.rate_cards["standard_2026"].rates if r.product.id == "small_tokens")
    assert small.price.rate_type is ir.RateType.TIERED
    assert [(t.size, t.price) for t in small.price.tiers] == [
        (Decimal(100), Decimal(0)),
        (Decimal(9900), Decimal("0.04")),
        (None, Decimal("0.03")),
    ]
    large = project.products["large_input"]
    assert large.quantity_conversion is not None
    assert large.quantity_conversion.conversion_factor == Decimal(1000000)
    contract = project.contracts["globex-2026"]
    assert contract.starting_at == datetime(2026, 2, 15, tzinfo=UTC)
    assert contract.usage_statement_schedule.frequency is ir.BillingFrequency.QUARTERLY
    eu = next(
        r
        for r in project.rate_cards["standard_2026"].rates
        if r.product.id == "large_input" and r.pricing_group_values == (("region", "eu"),)
    )
    assert eu.price.price == Decimal(330)


def test_products_by_tag_in_id_order() -> None:
    project = pricing.load(SPECS)
    assert project.tagged_ids(["tokens"]) == {"large_input", "large_output", "small_tokens", "embeddings"}
    by_either = [p.id for p in project.tagged(["tokens", "support_eligible"])]
    assert by_either == ["embeddings", "large_input", "large_output", "small_tokens", "vector_storage"]
    assert project.tagged(["no_such_tag"]) == ()
    assert project.tagged([]) == ()


def test_spans_point_into_the_yaml() -> None:
    project = pricing.load(SPECS)
    metric = project.metrics["storage_gb"]
    assert (metric.span.file, metric.span.line, metric.span.column) == ("metrics/platform.yaml", 2, 3)
    assert metric.at("aggregation_key").line == 10
    # every field and each list item, found in the source map when first asked for
    assert (metric.at("property_filters[1]").line, metric.at("property_filters[1]").column) == (8, 9)
    # which fields were written, list items too
    assert [name in metric.spans for name in ("aggregation_key", "property_filters[1]")] == [True, True]
    assert [name in metric.spans for name in ("filter", "property_filters[9]")] == [False, False]
    assert metric.at("no_such_field") == metric.span
    assert list(metric.spans) == [
        "name",
        "description",
        "event_type_filter",
        "property_filters",
        "aggregation_type",
        "aggregation_key",
        "group_keys",
        "property_filters[0]",
        "property_filters[1]",
        "group_keys[0]",
    ]


def test_load_raises_pricing_error_with_every_diagnostic() -> None:
    with pytest.raises(pricing.PricingError) as caught:
        pricing.load(CASES / "check" / "many_errors_all_reported")
    assert len(caught.value.diagnostics) == 4
    assert str(caught.value) == (
        "a.yaml:2:7: unknown key 'nmae' in a customer. Did you mean 'name'? (and 3 more)"
    )


def test_warnings_do_not_stop_loading() -> None:
    project = pricing.load(CASES / "check" / "unused_metric")
    assert set(project.metrics) == {"calls", "extra"}


def test_bare_dates_are_read_in_the_project_timezone(tmp_path: Path) -> None:
    (tmp_path / "pricing.yaml").write_text("version: 1\nname: T\ntimezone: Europe/Berlin\n")
    (tmp_path / "c.yaml").write_text(
        "customers: {a: {}}\nproducts: {p: {type: fixed}}\n"
        "rate_cards: {rc: {rates: [{product: p, starting_at: 2026-07-01, rate_type: FLAT, price: 1}]}}\n"
        "contracts: {c: {customer: a, rate_card: rc, starting_at: '2026-01-01T00:00:00+01:00'}}\n"
    )
    project = pricing.load(tmp_path)
    # Midnight in Berlin in summer (UTC+2) is 22:00 UTC the day before.
    assert project.rate_cards["rc"].rates[0].starting_at == datetime(2026, 6, 30, 22, tzinfo=UTC)
    assert project.contracts["c"].starting_at == datetime(2025, 12, 31, 23, tzinfo=UTC)


def test_manifest_may_hold_sections(tmp_path: Path) -> None:
    (tmp_path / "pricing.yaml").write_text("version: 1\nname: T\ncustomers:\n  a: {name: A}\n")
    assert pricing.load(tmp_path).customers["a"].name == "A"


def test_not_a_folder(tmp_path: Path) -> None:
    (diagnostic,) = pricing.check(tmp_path / "missing")
    assert diagnostic.code == "E105"
    assert diagnostic.message.endswith("is not a folder: a spec project is a folder with a pricing.yaml")


def test_every_kind_of_reference_in_a_contract_is_checked(tmp_path: Path) -> None:
    """The linker walks only the fields whose type can hold a reference: one misspelt reference
    in each of a contract's places — customer, override product, commit product, scheduled
    charge product, credit's applicable products — is each reported where it is written."""
    shutil.copytree(REPO / "specs", tmp_path / "specs")
    contracts = tmp_path / "specs" / "contracts" / "contracts.yaml"
    lines = contracts.read_text().splitlines()
    for number, old, new in [
        (3, "acme", "acmee"),
        (11, "fine_tuning", "fine_tunin"),
        (14, "prepaid_commit", "prepaid_comit"),
        (22, "onboarding", "onbording"),
        (43, "large_input,", "large_inpt,"),
    ]:
        assert old in lines[number - 1]
        lines[number - 1] = lines[number - 1].replace(old, new)
    contracts.write_text("\n".join(lines) + "\n")
    found = [(d.span.line, d.message) for d in pricing.check(tmp_path / "specs") if d.code == "E401"]
    assert found == [
        (3, "unknown customer 'acmee'. Did you mean 'acme'?"),
        (11, "unknown product 'fine_tunin'. Did you mean 'fine_tuning'?"),
        (14, "unknown product 'prepaid_comit'. Did you mean 'prepaid_commit'?"),
        (22, "unknown product 'onbording'. Did you mean 'onboarding'?"),
        (43, "unknown product 'large_inpt'. Did you mean 'large_input'?"),
    ]


def test_the_linker_walks_the_fields_that_can_hold_references() -> None:
    assert ref_fields(ir.Customer) == ()
    assert ref_fields(ir.Rate) == ("product",)
    assert ref_fields(ir.Contract) == (
        "customer",
        "rate_card",
        "overrides",
        "commits",
        "credits",
        "scheduled_charges",
    )


def test_a_run_imports_only_what_it_needs() -> None:
    """jsonschema explains invalid specs, lark parses expressions, Jinja renders documents and
    NumPy is what Polars converts a Python Decimal with (where it is installed): a valid spec
    without expressions, invoiced and metered, needs none of them (each costs 20–70 ms of
    import)."""
    script = (
        "import sys, pricing\n"
        "from datetime import datetime, UTC\n"
        "plan = pricing.compile(pricing.load(sys.argv[1]))\n"
        "events = ['examples/nimbus/events-2026-q1.jsonl']\n"
        "plan.invoice(events, datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 4, 1, tzinfo=UTC))\n"
        "plan.usage(events, datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 4, 1, tzinfo=UTC))\n"
        "print(sorted(m for m in ('jsonschema', 'lark', 'jinja2', 'numpy') if m in sys.modules))\n"
    )

    def imported(spec: Path) -> str:
        command = [sys.executable, "-c", script, str(spec)]
        return subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=True).stdout

    assert imported(SPECS) == "[]\n"
    # its metrics have expressions, number literals and lists of numbers among them (they go into
    # Polars as text cast to decimals, not as Python Decimals: those made it import NumPy, where
    # it is installed — with the benchmark's extras, not with the tests')
    assert imported(CASES / "meter_expressions") == "['lark']\n"
    # the command line imports the document code (Jinja, Babel's dates) only to render
    script = "import sys, pricing.cli\nprint([m for m in ('jinja2', 'babel.dates') if m in sys.modules])\n"
    command = [sys.executable, "-c", script]
    assert subprocess.run(command, capture_output=True, text=True, check=True).stdout == "[]\n"


def test_number_filter_values_are_compared_by_their_exact_shortest_text(tmp_path: Path) -> None:
    """`in_values` numbers become the text events are compared by: 2.50 → "2.5", -0.0 → "0",
    and a 31-digit number keeps every digit (Python's default context would round it to 28)."""
    (tmp_path / "pricing.yaml").write_text("version: 1\nname: Filters\n")
    (tmp_path / "spec.yaml").write_text(
        "metrics:\n"
        "  m:\n"
        "    property_filters:\n"
        "      - {name: tier, in_values: [2.50, -0.0, 1234567890123456789012345678901, '07']}\n"
        "    aggregation_type: COUNT\n"
    )
    (tier,) = pricing.load(tmp_path).metrics["m"].property_filters
    assert tier.in_values == ("2.5", "0", "1234567890123456789012345678901", "07")


def test_a_run_is_a_period_or_a_start_and_an_end_given_as_the_command_line_takes_them() -> None:
    """`plan.usage(events, period="2026-02")`, as the issue writes it, is the month in the
    project timezone; text starts and ends read as --start and --end do (a bare date at
    midnight there); datetimes as before. A wrong combination or text says what is wrong."""
    plan = pricing.compile(pricing.load(SPECS))
    events = [REPO / "examples" / "nimbus" / "events-2026-q1.jsonl"]
    february = (datetime(2026, 2, 1, tzinfo=UTC), datetime(2026, 3, 1, tzinfo=UTC))
    expected = plan.usage(events, *february)
    assert expected.usage.height > 0
    for run in (
        plan.usage(events, period="2026-02"),
        plan.usage(events, "2026-02-01", "2026-03-01T00:00:00Z"),
    ):
        assert run.usage.equals(expected.usage)
        assert run.ledger == expected.ledger
    invoices = plan.invoice(events, period="2026-02", as_of="2026-02-15")
    assert (
        invoices.jsonl() == plan.invoice(events, *february, as_of=datetime(2026, 2, 15, tzinfo=UTC)).jsonl()
    )
    assert {i.status for i in invoices.invoices} == {"DRAFT"}
    with pytest.raises(ValueError, match=r"^give period or start/end, not both$"):
        plan.usage(events, "2026-02-01", period="2026-02")
    with pytest.raises(ValueError, match=r"^give period YYYY-MM, or both start and end$"):
        plan.invoice(events, "2026-02-01")
    with pytest.raises(ValueError, match=r"^'Feb' is not a month such as 2026-03$"):
        plan.usage(events, period="Feb")
    with pytest.raises(ValueError, match=r"^'2026-02-30': day is out of range for month$"):
        plan.usage(events, "2026-02-30", "2026-03-01")
