"""Invoice documents: golden HTML, Markdown and text of the demo run; amounts that parse back to
the JSON; escaping, the sandbox, template overrides and their errors; PDF pages."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from datetime import UTC, datetime
from decimal import Decimal
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from babel import Locale
from babel.numbers import get_currency_precision, parse_decimal
from click.testing import CliRunner

import pricing
from pricing.cli import main
from pricing.engine.invoices import written_ids
from pricing.render import documents
from pricing.render.documents import DASH, PARALLEL_PDFS, Formatter, pdfs, render_run
from tests.conftest import CASES, REPO, assert_golden, write_calls

QUARTER = (datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 4, 1, tzinfo=UTC))
GOLDEN = CASES / "demo" / "documents"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[pricing.Project, list[dict[str, Any]], Path]:
    """The demo run (`make demo`), rendered in html, md and txt."""
    project = pricing.load(REPO / "specs")
    run = pricing.compile(project).invoice([str(REPO / "examples/nimbus/events-2026-q1.jsonl")], *QUARTER)
    invoices = [i.as_dict() for i in run.invoices]
    out = tmp_path_factory.mktemp("demo")
    assert render_run(project, invoices, run.as_of, out, ("html", "md", "txt")) == {
        "html": 10,
        "md": 10,
        "txt": 10,
    }
    return project, invoices, out


def test_demo_documents_are_the_goldens(
    demo: tuple[pricing.Project, list[dict[str, Any]], Path], update_goldens: bool
) -> None:
    _, invoices, out = demo
    for fmt in ("html", "md", "txt"):
        names = sorted(p.name for p in (out / fmt).iterdir())
        assert names == sorted(f"{i['id']}.{fmt}" for i in invoices)  # one file per invoice id
        for name in names:
            assert_golden(GOLDEN / fmt / name, (out / fmt / name).read_text(encoding="utf-8"), update_goldens)


def _money(text: str, locale: str, currency: str) -> Decimal:
    """A Babel-formatted amount back in minor units: '1.983,53 $' (de_DE) → 198353."""
    digits = "".join(c for c in text if c.isdigit() or c in ",.-\u2212")
    major = parse_decimal(digits.replace("\u2212", "-"), locale=locale, strict=False)
    return major.scaleb(get_currency_precision(currency))


class _Amounts(HTMLParser):
    """(data-amount, the text of the row's `amount` cell) for every row that has one."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[tuple[str, str]] = []
        self._amount: str | None = None
        self._in_cell = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "tr":
            self._amount = values.get("data-amount")
        if tag == "td" and "amount" in (values.get("class") or "").split():
            self._in_cell = True
            self.rows.append((self._amount or "", ""))

    def handle_endtag(self, tag: str) -> None:
        if tag == "td":
            self._in_cell = False

    def handle_data(self, data: str) -> None:
        if self._in_cell:
            amount, text = self.rows[-1]
            self.rows[-1] = (amount, text + data)


def test_every_rendered_amount_parses_back_to_the_json(
    demo: tuple[pricing.Project, list[dict[str, Any]], Path],
) -> None:
    project, invoices, out = demo
    for invoice in invoices:
        customer = project.customers[invoice["customer_id"]]
        locale = customer.locale or "en_US"
        parser = _Amounts()
        parser.feed((out / "html" / f"{invoice['id']}.html").read_text(encoding="utf-8"))
        expected = [line["total"] for line in invoice["line_items"] if line["type"] != "applied"]
        expected += [line["total"] for line in invoice["line_items"] if line["type"] == "applied"]
        expected.append(invoice["total"])
        assert [amount for amount, _ in parser.rows] == expected
        for amount, text in parser.rows:
            assert _money(text, locale, invoice["currency"]) == Decimal(amount), (invoice["id"], text)
        # the text document's total line reads the same amount
        txt = (out / "txt" / f"{invoice['id']}.txt").read_text(encoding="utf-8")
        total_line = next(line for line in txt.splitlines() if line.strip().startswith("Total "))
        assert _money(total_line.split(invoice["currency"])[-1], locale, invoice["currency"]) == Decimal(
            invoice["total"]
        )


def test_documents_show_status_customer_and_dates_in_their_locale(
    demo: tuple[pricing.Project, list[dict[str, Any]], Path],
) -> None:
    _, _, out = demo
    globex = (out / "html" / "globex-2026-20260215.html").read_text(encoding="utf-8")
    assert '<div class="watermark" aria-hidden="true">DRAFT</div>' in globex
    assert '<span class="status draft">DRAFT</span>' in globex
    assert "<strong>Globex GmbH</strong><br>" in globex
    assert "<tr><th>Period</th><td>15.02.2026 \u2013 14.05.2026</td></tr>" in globex  # de_DE, last day shown
    assert "<tr><th>Issued</th><td>01.04.2026</td></tr>" in globex
    acme = (out / "md" / "acme-2026-20260101.md").read_text(encoding="utf-8")
    assert acme.startswith("### Invoice acme-2026-20260101 — FINALIZED\n")
    assert "| user\\_id: acme-user-1 | 154 |  | $0.02 |\n" in acme
    assert "| ↳ tier 2: 100 \u2013 10,000 | 54 | $0.00032 | $0.01728 |\n" in acme
    assert "| _Applied:_ 2026 prepaid commitment | | | -$22.04 |\n" in acme


@pytest.mark.parametrize(
    ("minor", "currency", "locale", "expected"),
    [
        ("525", "USD", "en_US", "$5.25"),
        ("525", "EUR", "de_DE", "5,25\xa0€"),
        ("525", "JPY", "en_US", "¥525"),
        ("0.00005", "USD", "en_US", "$0.0000005"),  # a fractional unit price keeps its digits
        ("-3535", "USD", "en_GB", "-US$35.35"),
    ],
)
def test_money_by_locale_and_currency(minor: str, currency: str, locale: str, expected: str) -> None:
    assert Formatter(Locale.parse(locale), currency, ZoneInfo("UTC")).money(Decimal(minor)) == expected


def test_quantities_keep_every_digit() -> None:
    fmt = Formatter(Locale.parse("en_US"), "USD", ZoneInfo("UTC"))
    assert fmt.number(Decimal("1234567.000000000000000001")) == "1,234,567.000000000000000001"


def test_a_composite_line_reads_as_a_percentage_of_an_amount(tmp_path: Path) -> None:
    """A composite's quantity is an amount in minor units and its price a fraction: 10 % of
    $442.41 read "44,241" at "$0.001". A TIERED override's tiers of it read so too."""
    project, (invoice,) = _project(tmp_path)
    composite = {
        "type": "composite",
        "product_id": "support",
        "name": "Support",
        "presentation_group_values": {},
        "pricing_group_values": {},
        "quantity": "44241",
        "unit_price": "0.125",
        "total": "5530",
        "starting_at": invoice["start_timestamp"],
        "ending_before": invoice["end_timestamp"],
        "tiers": [
            {"level": 1, "starting_at": "0", "size": "10000", "quantity": "10000", "price": "0.2"},
            {"level": 2, "starting_at": "10000", "size": None, "quantity": "34241", "price": "0.1"},
        ],
    }
    for tier in composite["tiers"]:
        tier["subtotal"] = str(Decimal(tier["quantity"]) * Decimal(tier["price"]))
    lines = [*invoice["line_items"], composite]
    doc = documents.document({**invoice, "line_items": lines}, project, QUARTER[1])
    (line,) = doc.charges[-1].lines
    assert (line.quantity, line.unit_price, line.total) == ("$442.41", "12.5%", "$55.30")
    assert [(t.range, t.quantity, t.price, t.subtotal) for t in line.tiers] == [
        (f"$0.00 {DASH} $100.00", "$100.00", "20%", "$20.00"),
        ("$100.00 and over", "$342.41", "10%", "$34.241"),  # (tier subtotals stay exact)
    ]


def test_a_prorated_subscription_line_says_so_with_its_dates(tmp_path: Path) -> None:
    """15 seats at $10.00 from March 15 cost $68.55 (12,500 × 17/31 cents, the first 10 at full
    price, the rest at half): "15 · $68.55" under tiers of $100.00 and $25.00 left the reader to
    guess why. A whole month's seats (3 × $10.00 = $30.00) need no note; the same seats prorated
    ($16.45, 3,000 × 17/31) do; no seats under the override (no tier, no unit price) cost nothing
    and say nothing."""
    project, (invoice,) = _project(tmp_path)
    march = (invoice["start_timestamp"], invoice["end_timestamp"])

    def seats(
        start: str, total: str, quantity: str, unit: str | None, tiers: list[dict[str, Any]]
    ) -> dict[str, Any]:
        return {
            "type": "subscription",
            "product_id": "seats",
            "name": "Seats",
            "presentation_group_values": {},
            "pricing_group_values": {},
            "quantity": quantity,
            "unit_price": unit,
            "total": total,
            "starting_at": start,
            "ending_before": march[1],
            "tiers": tiers,
        }

    tiers = [
        {
            "level": 1,
            "starting_at": "0",
            "size": "10",
            "quantity": "10",
            "price": "1000",
            "subtotal": "10000",
        },
        {"level": 2, "starting_at": "10", "size": None, "quantity": "5", "price": "500", "subtotal": "2500"},
    ]
    lines = [
        seats("2026-03-15T00:00:00Z", "6855", "15", None, tiers),
        seats(march[0], "12500", "15", None, tiers),
        seats(march[0], "3000", "3", "1000", []),
        seats("2026-03-15T00:00:00Z", "1645", "3", "1000", []),
        seats("2026-03-15T00:00:00Z", "0", "0", None, []),  # (no seat reaches a tier of an override)
    ]
    doc = documents.document({**invoice, "line_items": lines}, project, QUARTER[1])
    assert [line.period for line in doc.charges[0].lines] == [
        f"Mar 15, 2026 {DASH} Mar 31, 2026, prorated",
        "",
        "",
        f"Mar 15, 2026 {DASH} Mar 31, 2026, prorated",
        f"Mar 15, 2026 {DASH} Mar 31, 2026",
    ]


# --- untrusted text, the sandbox and project templates ----------------------------------------

XSS = "<img src=x onerror=alert(1)>"
SPEC = """
metrics:
  calls:
    event_type_filter: {in_values: [call]}
    property_filters: [{name: user, exists: true}]
    aggregation_type: COUNT
    group_keys: [[user]]
products:
  calls:
    name: 'Calls "quoted" {{ 7 * 7 }}'
    type: usage
    billable_metric: calls
    presentation_group_key: [user]
rate_cards:
  card: {rates: [{product: calls, starting_at: 2026-01-01, rate_type: FLAT, price: 100}]}
customers:
  acme: {name: "Acme <b>Corp</b>", locale: en_US}
contracts:
  acme-1: {customer: acme, rate_card: card, starting_at: 2026-01-01}
"""


def _project(root: Path, lines: int = 1) -> tuple[pricing.Project, list[dict[str, Any]]]:
    (root / "pricing.yaml").write_text("version: 1\nname: Seller & Co\n")
    (root / "spec.yaml").write_text(SPEC)
    users = [XSS, *(f"user-{i:03}" for i in range(1, lines))]
    write_calls(root / "events.jsonl", ({"user": user} for user in users))
    project = pricing.load(root)
    march = (datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 4, 1, tzinfo=UTC))
    run = pricing.compile(project).invoice([str(root / "events.jsonl")], *march)
    return project, [i.as_dict() for i in run.invoices]


def test_values_from_events_and_specs_render_as_text(tmp_path: Path) -> None:
    project, invoices = _project(tmp_path)
    render_run(project, invoices, QUARTER[1], tmp_path / "out", ("html", "md"))
    html = (tmp_path / "out" / "html" / "acme-1-20260301.html").read_text()
    assert "<td>user: &lt;img src=x onerror=alert(1)&gt;</td>" in html
    assert "<img" not in html
    assert "Acme &lt;b&gt;Corp&lt;/b&gt;" in html
    assert "Calls &#34;quoted&#34; {{ 7 * 7 }}" in html  # template syntax in a name stays text
    assert "Seller &amp; Co" in html
    md = (tmp_path / "out" / "md" / "acme-1-20260301.md").read_text()
    assert "| user: \\<img src=x onerror=alert(1)\\> | 1 | $1.00 | $1.00 |" in md


def _render_with(tmp_path: Path, template: str, name: str = "invoice.html") -> str:
    project, invoices = _project(tmp_path)
    (tmp_path / "templates").mkdir(exist_ok=True)
    (tmp_path / "templates" / name).write_text(template)
    render_run(project, invoices, QUARTER[1], tmp_path / "out", ("html",))
    return (tmp_path / "out" / "html" / "acme-1-20260301.html").read_text()


def test_a_project_template_extends_the_builtin_by_its_blocks(tmp_path: Path) -> None:
    html = _render_with(
        tmp_path,
        '{% extends "builtin/invoice.html" %}\n'
        "{% block footer %}<footer>Pay within 30 days: {{ invoice.total }}</footer>{% endblock %}\n",
    )
    assert "<footer>Pay within 30 days: $1.00</footer>" in html
    assert "Times are in UTC" not in html  # the built-in footer was replaced
    assert '<span class="status draft">DRAFT</span>' not in html  # March ended before April 1
    assert "<h1>Invoice</h1>" in html  # the other blocks are the built-in ones


def test_a_missing_variable_names_the_template_and_line(tmp_path: Path) -> None:
    with pytest.raises(pricing.RenderError) as caught:
        _render_with(tmp_path, "<p>{{ invoice.id }}</p>\n<p>{{ invoice.purchase_order }}</p>\n")
    assert str(caught.value) == (
        f"{tmp_path / 'templates' / 'invoice.html'}:2: 'pricing.render.documents.Document object' "
        "has no attribute 'purchase_order'"
    )


def test_an_error_a_template_raises_names_the_template_and_line(tmp_path: Path) -> None:
    """Python errors raised while a template renders were a traceback."""
    where = tmp_path / "templates" / "invoice.html"
    for template, message in [
        (
            "<p>\n{{ invoice.total / 0 }}</p>",
            "2: TypeError: unsupported operand type(s) for /: 'str' and 'int'",
        ),
        ("{{ 1 // 0 }}", "1: ZeroDivisionError: integer division or modulo by zero"),
        (
            "\n\n{% for i in range(10 ** 6) %}{% endfor %}",
            "3: OverflowError: Range too big. The sandbox blocks ranges larger than MAX_RANGE (100000).",
        ),
    ]:
        with pytest.raises(pricing.RenderError) as caught:
            _render_with(tmp_path, template)
        assert str(caught.value) == f"{where}:{message}"


def test_templates_cannot_reach_outside_the_project_or_python_internals(tmp_path: Path) -> None:
    (tmp_path.parent / "secret.txt").write_text("top secret")
    with pytest.raises(pricing.RenderError, match=r"invoice.html:1: \.\./\.\./secret.txt"):
        _render_with(tmp_path, '{% include "../../secret.txt" %}')
    with pytest.raises(pricing.RenderError, match="access to attribute '__class__'"):
        _render_with(tmp_path, "{{ invoice.__class__.__mro__ }}")
    (tmp_path / "templates" / "linked.html").symlink_to(tmp_path.parent / "secret.txt")
    with pytest.raises(pricing.RenderError, match=r"linked\.html"):
        _render_with(tmp_path, '{% include "linked.html" %}')


def test_a_template_syntax_error_names_its_line(tmp_path: Path) -> None:
    with pytest.raises(pricing.RenderError) as caught:
        _render_with(tmp_path, "<p>\n{% if invoice.draft %}\n")
    assert str(caught.value).startswith(
        f"{tmp_path / 'templates' / 'invoice.html'}:2: Unexpected end of template"
    )


# --- PDF ---------------------------------------------------------------------------------------


def test_a_300_line_invoice_prints_on_the_expected_pages(tmp_path: Path) -> None:
    """300 presentation groups: one product heading and 300 lines. A4 with 16 + 18 mm margins,
    rows of a fixed 9 pt text: the first page holds the header, the parties, the facts and 27
    lines; each further page repeats the table header and holds 39 (27 + 7 × 39 = 300, measured
    once from the pages); the totals and footer then open a ninth page."""
    assert shutil.which("pdftoppm"), "pdftoppm (Debian poppler-utils) is installed by make test"
    project, invoices = _project(tmp_path, lines=300)
    (invoice,) = invoices
    assert len(invoice["line_items"]) == 300
    render_run(project, invoices, QUARTER[1], tmp_path / "out", ("pdf",))
    pdf = tmp_path / "out" / "pdf" / "acme-1-20260301.pdf"
    assert pdf.read_bytes().startswith(b"%PDF-")
    subprocess.run(["pdftoppm", "-r", "30", "-png", str(pdf), str(tmp_path / "page")], check=True)
    pages = sorted(tmp_path.glob("page-*.png"))
    assert len(pages) == 9


def test_a_pdf_has_the_same_bytes_at_any_time_whichever_subsetter_makes_its_fonts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without HarfBuzz's subsetter (libharfbuzz-subset, missing on a fresh machine) WeasyPrint
    subsets fonts with fontTools, which stamped each font's `head` table with the second it was
    written: two PDFs of one invoice a second apart differed. Here fontTools makes them, its
    clock 100 s later the second time; a SOURCE_DATE_EPOCH the caller gives is left alone."""
    from fontTools.misc import timeTools
    from weasyprint.pdf import fonts

    monkeypatch.setattr(fonts, "harfbuzz_subset", None)
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    html = "<html><body><h1>Invoice</h1><p>Total $1,054.61</p></body></html>"
    first = documents.pdf_bytes(html)
    later = timeTools.time.time() + 100
    monkeypatch.setattr(timeTools.time, "time", lambda: later)
    assert documents.pdf_bytes(html) == first
    assert "SOURCE_DATE_EPOCH" not in os.environ
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1767225600")  # the caller's: 2026-01-01
    assert documents.pdf_bytes(html) != first
    assert os.environ["SOURCE_DATE_EPOCH"] == "1767225600"


def test_many_pdfs_are_made_by_worker_processes_with_the_same_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    """From PARALLEL_PDFS documents, `pdfs` hands them to processes (two here); the PDFs come back
    in order and byte for byte as one process makes them."""
    pools: list[int | None] = []

    class Pool(documents.ProcessPoolExecutor):  # the real pool, counted
        def __init__(self, max_workers: int | None = None, **kwargs: Any) -> None:
            pools.append(max_workers)
            super().__init__(max_workers, **kwargs)

    monkeypatch.setattr(documents, "ProcessPoolExecutor", Pool)
    htmls = [f"<html><body><h1>Invoice {i}</h1><p>{'x' * i}</p></body></html>" for i in range(PARALLEL_PDFS)]
    alone = list(pdfs(htmls))
    assert pools == []
    assert list(pdfs(htmls, workers=2)) == alone
    assert pools == [2]
    assert len(set(alone)) == PARALLEL_PDFS
    assert all(pdf.startswith(b"%PDF-") for pdf in alone)


# --- the command line ---------------------------------------------------------------------------


def test_invoice_render_and_render_command(tmp_path: Path) -> None:
    project, _ = _project(tmp_path)
    runner = CliRunner()
    args = ["invoice", str(tmp_path), "--events", str(tmp_path / "events.jsonl"), "--period", "2026-03"]
    result = runner.invoke(main, [*args, "--out", str(tmp_path / "run"), "--render", "html,txt"])
    assert result.exit_code == 0, result.output
    assert "rendered 1 html, 1 txt into" in result.stderr
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == [
        "html",
        "invoices.jsonl",
        "run.json",
        "txt",
    ]
    first = (tmp_path / "run" / "txt" / "acme-1-20260301.txt").read_bytes()

    result = runner.invoke(
        main, ["render", str(tmp_path / "run"), "--spec", str(tmp_path), "--format", "txt,md"]
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "run" / "txt" / "acme-1-20260301.txt").read_bytes() == first  # same bytes
    assert (tmp_path / "run" / "md" / "acme-1-20260301.md").exists()

    (tmp_path / "spec.yaml").write_text(SPEC.replace("Acme <b>Corp</b>", "Acme Corp"))
    result = runner.invoke(main, ["render", str(tmp_path / "run"), "--spec", str(tmp_path)])
    assert result.exit_code == 0
    assert f"warning: {tmp_path} changed since the run (spec hash {project.spec_hash[:12]}" in result.stderr

    result = runner.invoke(main, ["render", str(tmp_path), "--spec", str(tmp_path)])
    assert result.exit_code == 1
    assert "is not a run folder (invoices.jsonl and run.json)" in result.stderr


def test_a_run_folder_holds_one_runs_documents(tmp_path: Path) -> None:
    """March's documents stayed beside April's when April was run into the same folder, ready to
    be sent twice: a run removes the documents of the invoices its folder's invoices.jsonl
    named before (all of a format it does not render), and says so. Nothing else is removed:
    not a file of the user's, even one named like a document."""
    _project(tmp_path)
    runner = CliRunner()
    out = tmp_path / "run"
    args = ["invoice", str(tmp_path), "--events", str(tmp_path / "events.jsonl"), "--out", str(out)]
    (out / "txt").mkdir(parents=True)
    (out / "txt" / "notes.txt").write_text("mine\n")
    (out / "txt" / "acme-1-20260201.txt").write_text("February, by hand\n")  # (no run named it)
    assert runner.invoke(main, [*args, "--period", "2026-03", "--render", "txt,md"]).exit_code == 0
    result = runner.invoke(main, [*args, "--period", "2026-04", "--render", "txt"])
    assert result.exit_code == 0, result.output
    assert f"removed 2 document(s) of the folder's earlier run from {out}/<format>/" in result.stderr
    assert sorted(p.name for p in (out / "txt").iterdir()) == [
        "acme-1-20260201.txt",
        "acme-1-20260401.txt",
        "notes.txt",
    ]
    assert list((out / "md").iterdir()) == []
    result = runner.invoke(main, [*args, "--period", "2026-04", "--render", "txt"])  # the same run
    assert "removed" not in result.stderr
    assert (out / "txt" / "acme-1-20260401.txt").exists()


def test_the_ids_of_a_run_folder_written_compact_or_as_before(tmp_path: Path) -> None:
    """invoices.jsonl is compact JSON; earlier versions wrote a space after each colon. The ids
    of either are read, so that a run into an older folder still removes its documents."""
    path = tmp_path / "invoices.jsonl"
    path.write_text(
        '{"id":"acme-1-20260401","customer_id":"acme"}\n'
        '{"id": "say \\"hi\\"-20260301", "customer_id": "hi"}\n',
        encoding="utf-8",
    )
    assert written_ids(path) == ["acme-1-20260401", 'say "hi"-20260301']
    assert written_ids(tmp_path / "none.jsonl") == []


def test_a_contract_id_with_a_slash_names_a_document_in_its_folder(tmp_path: Path) -> None:
    """Ids may hold `/` (`team/acme-1`): its invoice's document was written in a folder `team/`
    of `html/`, and `pricing render` refused the run folder that `pricing invoice` wrote."""
    _project(tmp_path)
    (tmp_path / "spec.yaml").write_text(SPEC.replace("  acme-1: {customer", "  team/acme-1: {customer"))
    runner = CliRunner()
    args = [
        "invoice",
        str(tmp_path),
        "--events",
        str(tmp_path / "events.jsonl"),
        "--out",
        str(tmp_path / "run"),
    ]
    result = runner.invoke(main, [*args, "--period", "2026-03", "--render", "txt"])
    assert result.exit_code == 0, result.output
    assert [p.name for p in (tmp_path / "run" / "txt").iterdir()] == ["team%2Facme-1-20260301.txt"]
    result = runner.invoke(main, ["render", str(tmp_path / "run"), "--spec", str(tmp_path), "--format", "md"])
    assert result.exit_code == 0, result.output
    assert [p.name for p in (tmp_path / "run" / "md").iterdir()] == ["team%2Facme-1-20260301.md"]
    result = runner.invoke(main, [*args, "--period", "2026-04"])  # April renders nothing: March's go
    assert "removed 2 document(s) of the folder's earlier run" in result.stderr
    assert list((tmp_path / "run" / "txt").iterdir()) == []


def test_a_run_folder_not_as_pricing_invoice_wrote_it_is_named_not_a_traceback(tmp_path: Path) -> None:
    """A hand-edited or cut-short run folder: the file, the line and the field that is wrong (each
    was a KeyError, an AttributeError or a decimal.InvalidOperation); an invoice id with a `/`
    names a document in the folder."""
    _project(tmp_path)
    runner = CliRunner()
    args = ["invoice", str(tmp_path), "--events", str(tmp_path / "events.jsonl"), "--period", "2026-03"]
    assert runner.invoke(main, [*args, "--out", str(tmp_path / "run")]).exit_code == 0
    invoice = json.loads((tmp_path / "run" / "invoices.jsonl").read_text())
    report = (tmp_path / "run" / "run.json").read_text()

    def render_with(invoice_text: str, report_text: str = report) -> str:
        (tmp_path / "run" / "invoices.jsonl").write_text(invoice_text)
        (tmp_path / "run" / "run.json").write_text(report_text)
        result = runner.invoke(main, ["render", str(tmp_path / "run"), "--spec", str(tmp_path)])
        assert result.exit_code == 1
        assert "Traceback" not in result.output
        prefix = f"Error: {tmp_path / 'run'} is not a run folder (invoices.jsonl and run.json): "
        assert result.stderr.startswith(prefix)
        return result.stderr.removeprefix(prefix).strip()

    good = json.dumps(invoice) + "\n"
    assert render_with(good, "[]") == 'run.json: [] is not of type "object"'
    assert render_with(good, "{}") == 'run.json: "as_of" is a required property'
    assert (
        render_with("\n" + json.dumps({"id": "x"}))
        == 'invoices.jsonl line 2: "customer_id" is a required property'
    )
    line = invoice["line_items"][0]
    wrong = {**invoice, "line_items": [{**line, "total": "12,50"}]}
    assert render_with(json.dumps(wrong)) == (
        'invoices.jsonl line 1: line_items[0].total: "12,50" does not match "^-?[0-9]+(\\.[0-9]+)?$"'
    )
    # an id's `/` is percent-encoded in its document's name: the document stays in the folder
    (tmp_path / "run" / "invoices.jsonl").write_text(json.dumps({**invoice, "id": "../../elsewhere"}) + "\n")
    (tmp_path / "run" / "run.json").write_text(report)
    result = runner.invoke(
        main, ["render", str(tmp_path / "run"), "--spec", str(tmp_path), "--format", "txt"]
    )
    assert result.exit_code == 0, result.output
    assert [p.name for p in (tmp_path / "run" / "txt").iterdir()] == ["..%2F..%2Felsewhere.txt"]
