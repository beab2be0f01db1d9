"""Invoice documents: every invoice of a run (its JSON, spec §10) rendered through Jinja into
HTML, PDF (WeasyPrint, from the HTML), Markdown and plain text.

The templates are the built-ins (package data) unless the spec project's `templates/` folder has
one of the same name; a project template may extend a built-in as `builtin/<name>`. They run in
Jinja's sandbox with StrictUndefined: a missing variable is an error naming the template and its
line. HTML is autoescaped and Markdown escapes every value it prints, so names and group values
from specs or events are shown as text. Money is formatted by Babel in the customer's locale and
the invoice currency; quantities keep every digit; times are shown in the project timezone.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import re
import traceback
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal, localcontext
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from babel import Locale, UnknownLocaleError
from babel.dates import format_date
from babel.numbers import format_decimal, format_percent
from jinja2 import (
    BaseLoader,
    ChoiceLoader,
    Environment,
    FileSystemLoader,
    PackageLoader,
    PrefixLoader,
    StrictUndefined,
    TemplateError,
    TemplateNotFound,
    TemplateSyntaxError,
)
from jinja2.sandbox import SandboxedEnvironment

from pricing import ir
from pricing.compiler.link import Project
from pricing.files import write_bytes_atomic, write_text_atomic
from pricing.money import ARITHMETIC, as_money, round_to, total
from pricing.render import FORMATS, document_name
from pricing.schemas import check_run_file

TEMPLATES = {"html": "invoice.html", "md": "invoice.md", "txt": "invoice.txt"}  # pdf: from the html
DEFAULT_LOCALE = "en_US"
DASH = "\u2013"  # between the ends of a range


class RenderError(Exception):
    """A template that cannot render: the message names the template file and line."""


# --- what a template sees ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Party:
    name: str
    email: str | None
    address: tuple[str, ...]  # lines
    tax_id: str | None


@dataclass(frozen=True, slots=True)
class Tier:
    level: int
    range: str  # "0 – 1,000" or "1,000 and over"
    quantity: str
    price: str
    subtotal: str


@dataclass(frozen=True, slots=True)
class Line:
    type: str
    name: str
    label: str  # presentation and pricing group values, "" when none
    period: str  # the line's own dates when they differ from the invoice's or it is prorated, else ""
    quantity: str
    unit_price: str
    total: str
    amount: str  # the JSON total, in minor units
    tiers: tuple[Tier, ...]


@dataclass(frozen=True, slots=True)
class Group:
    """The lines of one product, in invoice order."""

    product_id: str
    name: str
    unit: str  # what a quantity counts: the product's quantity_conversion name, "" when none
    total: str
    lines: tuple[Line, ...]


@dataclass(frozen=True, slots=True)
class Document:
    id: str
    type: str
    status: str
    draft: bool
    currency: str
    locale: str  # BCP 47, for <html lang>
    contract_id: str
    period: str
    issued: str
    timezone: str
    seller: Party
    customer: Party
    charges: tuple[Group, ...]
    adjustments: tuple[Line, ...]  # commits and credits applied (negative)
    subtotal: str
    applied: str  # the adjustments' sum
    total: str
    amount: str  # the JSON total, in minor units
    spec_hash: str


@dataclass(frozen=True, slots=True)
class Formatter:
    """Numbers, money and dates the way the customer reads them."""

    locale: Locale
    currency: str
    timezone: ZoneInfo

    def money(self, minor: Decimal) -> str:
        return as_money(minor, self.currency, self.locale)

    def number(self, value: Decimal) -> str:
        return format_decimal(value, locale=self.locale, decimal_quantization=False)

    def percent(self, fraction: Decimal) -> str:
        return format_percent(fraction, locale=self.locale, decimal_quantization=False)

    def day(self, instant: datetime) -> str:
        return format_date(instant.astimezone(self.timezone).date(), format="medium", locale=self.locale)

    def period(self, start: datetime, end: datetime) -> str:
        """[start, end) as the days it covers: Jan 1, 2026 – Jan 31, 2026."""
        if end <= start:
            return self.day(start)
        return f"{self.day(start)} {DASH} {self.day(end - timedelta(microseconds=1))}"


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _party(name: str, email: str | None, address: str | None, tax_id: str | None = None) -> Party:
    return Party(name, email, tuple(address.strip().splitlines()) if address else (), tax_id)


def _groups_label(line: Mapping[str, Any]) -> str:
    values = {**line["presentation_group_values"], **line["pricing_group_values"]}
    return ", ".join(f"{k}: {v}" for k, v in values.items())


def _unit(product: ir.Product | None) -> str:
    """The unit of a product's quantities, as its quantity conversion names it ("million
    tokens"): "1.48 · $2.88" alone read as 1.48 tokens at $2.88 each."""
    conversion = product.quantity_conversion if product else None
    return (conversion.name or "") if conversion else ""


def _prorated(line: Mapping[str, Any], rounding: str) -> bool:
    """Whether a subscription line charges a share of its billing period: its total is not what
    its seats cost for the whole period (quantity × unit price, or its tiers), rounded."""
    if line["type"] != "subscription":
        return False
    if line["tiers"]:
        whole = total(Decimal(t["subtotal"]) for t in line["tiers"])
    elif line["unit_price"] is None:  # no seats under a TIERED override: no tier reached
        return False
    else:
        whole = Decimal(line["quantity"]) * Decimal(line["unit_price"])
    return round_to(whole, 0, rounding) != Decimal(line["total"])


def _line(line: Mapping[str, Any], invoice_period: tuple[str, str], fmt: Formatter, rounding: str) -> Line:
    span = (line["starting_at"], line["ending_before"])
    # A prorated subscription says so, with its dates: "15 · $10.00 · $68.55" puzzled
    prorated = _prorated(line, rounding)
    # A composite charges a fraction of an amount — "10%" of "$442.41" — and so do its tiers
    # under a TIERED override (it read "44,241" units at "$0.001": the amount in cents, the
    # fraction as money).
    amount, price = (fmt.money, fmt.percent) if line["type"] == "composite" else (fmt.number, fmt.money)
    tiers = []
    for tier in line["tiers"]:
        start = Decimal(tier["starting_at"])
        size = tier["size"]
        bounds = (
            f"{amount(start)} and over"
            if size is None
            else f"{amount(start)} {DASH} {amount(start + Decimal(size))}"
        )
        tiers.append(
            Tier(
                tier["level"],
                bounds,
                amount(Decimal(tier["quantity"])),
                price(Decimal(tier["price"])),
                fmt.money(Decimal(tier["subtotal"])),
            )
        )
    return Line(
        type=line["type"],
        name=line["name"],
        label=_groups_label(line),
        period=(
            ""
            if span == invoice_period and not prorated
            else fmt.period(_instant(span[0]), _instant(span[1])) + (", prorated" if prorated else "")
        ),
        quantity=amount(Decimal(line["quantity"])),
        unit_price="" if line["unit_price"] is None else price(Decimal(line["unit_price"])),
        total=fmt.money(Decimal(line["total"])),
        amount=line["total"],
        tiers=tuple(tiers),
    )


def document(invoice: Mapping[str, Any], project: Project, as_of: datetime) -> Document:
    """What the templates see of one invoice (a dict as in invoices.jsonl), worked out
    in exact arithmetic, as amounts are computed: Babel rounds a number to its context's
    digits, and the default 28 failed on a 30-digit total."""
    with localcontext(ARITHMETIC):
        manifest = project.manifest
        customer = project.customers.get(invoice["customer_id"])
        locale_name = (customer.locale if customer else None) or DEFAULT_LOCALE
        try:
            locale = Locale.parse(locale_name)
        except (UnknownLocaleError, ValueError):
            locale = Locale.parse(DEFAULT_LOCALE)
        fmt = Formatter(locale, invoice["currency"], ZoneInfo(manifest.timezone))
        period = (invoice["start_timestamp"], invoice["end_timestamp"])
        rounding = manifest.rounding.value
        groups: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
        applied = [line for line in invoice["line_items"] if line["type"] == "applied"]
        for line in invoice["line_items"]:
            if line["type"] != "applied":
                groups.setdefault((line["product_id"], line["name"]), []).append(line)
        seller = manifest.seller
        return Document(
            id=invoice["id"],
            type=invoice["type"],
            status=invoice["status"],
            draft=invoice["status"] == "DRAFT",
            currency=invoice["currency"],
            locale=str(locale).replace("_", "-"),
            contract_id=invoice["contract_id"],
            period=fmt.period(_instant(period[0]), _instant(period[1])),
            issued=fmt.day(as_of),
            timezone=manifest.timezone,
            seller=_party(seller.name or manifest.name, seller.email, seller.address, seller.tax_id)
            if seller
            else _party(manifest.name, None, None),
            customer=_party(customer.name, customer.email, customer.address)
            if customer
            else _party(invoice["customer_id"], None, None),
            charges=tuple(
                Group(
                    product_id,
                    name,
                    _unit(project.products.get(product_id)),
                    fmt.money(total(Decimal(li["total"]) for li in lines)),
                    tuple(_line(li, period, fmt, rounding) for li in lines),
                )
                for (product_id, name), lines in groups.items()
            ),
            adjustments=tuple(_line(li, period, fmt, rounding) for li in applied),
            subtotal=fmt.money(Decimal(invoice["subtotal"])),
            applied=fmt.money(total(Decimal(li["total"]) for li in applied)),
            total=fmt.money(Decimal(invoice["total"])),
            amount=invoice["total"],
            spec_hash=invoice["spec_hash"],
        )


# --- the Jinja environment --------------------------------------------------------------------

_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]<>|~&])")


def markdown_text(value: object) -> str:
    """A value as literal Markdown text inside a line or a table cell: emphasis, code, links,
    HTML, entities and cell separators are escaped (line-start syntax such as `#` or `-` cannot
    occur, as no template starts a line with a value)."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", str(value))


class _ProjectLoader(FileSystemLoader):
    """The project's `templates/` folder, and nothing outside it (symbolic links included)."""

    def __init__(self, folder: Path) -> None:
        super().__init__(str(folder))
        self.folder = folder.resolve()

    def get_source(self, environment: Environment, template: str) -> tuple[str, str, Callable[[], bool]]:
        source, filename, uptodate = super().get_source(environment, template)
        if not Path(filename).resolve().is_relative_to(self.folder):
            raise TemplateNotFound(template)
        return source, filename, uptodate


def environment(spec_root: Path | None, kind: str) -> SandboxedEnvironment:
    """The sandboxed environment of one output kind ("html", "md" or "txt")."""
    builtin = PackageLoader("pricing.render", "templates")
    loaders: list[BaseLoader] = []
    if spec_root is not None and (spec_root / "templates").is_dir():
        loaders.append(_ProjectLoader(spec_root / "templates"))
    loaders += [builtin, PrefixLoader({"builtin": builtin})]
    return SandboxedEnvironment(
        loader=ChoiceLoader(loaders),
        undefined=StrictUndefined,
        autoescape=kind == "html",
        finalize=markdown_text if kind == "md" else None,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def _where(exc: BaseException) -> str:
    """`file:line` of the innermost template frame of a Jinja error."""
    if isinstance(exc, TemplateSyntaxError):
        return f"{exc.filename or exc.name}:{exc.lineno}"
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if not f.filename.endswith(".py")]
    if not frames:
        return "template"
    frame = frames[-1]
    return f"{frame.filename}:{frame.lineno}"


def render_text(env: SandboxedEnvironment, name: str, doc: Document) -> str:
    """A template rendered for one invoice; any error it raises (a Jinja error, or a Python one
    that a spec's template can cause: `{{ 1 / 0 }}`, a range past the sandbox's limit) is a
    `RenderError` naming the template's file and line."""
    try:
        return env.get_template(name).render(invoice=doc)
    except TemplateError as exc:
        raise RenderError(f"{_where(exc)}: {exc.message or exc}") from None
    except Exception as exc:  # whatever a template does wrong is the spec's error
        raise RenderError(f"{_where(exc)}: {type(exc).__name__}: {exc}") from None


PARALLEL_PDFS = 16  # from this many PDFs, worker processes make them (each starts in ~1 s)


_EPOCH = "SOURCE_DATE_EPOCH"


def pdf_bytes(html: str) -> bytes:
    """The same bytes for the same HTML, on any machine: without HarfBuzz's subsetter
    (libharfbuzz-subset) WeasyPrint subsets fonts with fontTools, which stamps each font's `head`
    table with the time it is written — unless SOURCE_DATE_EPOCH (reproducible builds) gives
    one, as it does here while a PDF is made (1970-01-01, when the caller set none)."""
    try:
        from weasyprint import HTML  # the optional extra `pdf`
    except ImportError as exc:  # pragma: no cover - the test environment installs it
        message = "PDF needs WeasyPrint: pip install 'pricing-as-code[pdf]'"
        raise RenderError(message) from exc
    unset = _EPOCH not in os.environ
    if unset:
        os.environ[_EPOCH] = "0"
    try:
        return bytes(HTML(string=html).write_pdf())
    finally:
        if unset:
            del os.environ[_EPOCH]


def pdfs(htmls: Sequence[str], workers: int = 1) -> Iterator[bytes]:
    """Each HTML document as PDF bytes, in order. WeasyPrint takes about 0.2 s a page of our
    invoices, in Python: with `workers` > 1 and `PARALLEL_PDFS` documents or more, that many
    processes make them (started fresh — a fork of a process running Polars' threads could
    hang — so a script calling this must guard its main code with `if __name__ ==
    "__main__":`, as Python's multiprocessing requires; the command line does). The bytes are the
    same either way."""
    workers = min(workers, len(htmls) // (PARALLEL_PDFS // 2) or 1)
    if len(htmls) < PARALLEL_PDFS or workers < 2:
        yield from map(pdf_bytes, htmls)
        return
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=spawn) as pool:
        yield from pool.map(pdf_bytes, htmls, chunksize=4)


# --- a run's documents ------------------------------------------------------------------------


def render_run(
    project: Project,
    invoices: Iterable[Mapping[str, Any]],
    as_of: datetime,
    out: Path,
    formats: Sequence[str],
    pdf_workers: int = 1,
) -> dict[str, int]:
    """Render every invoice into `out/<format>/<invoice id>.<format>`, each file written
    atomically; PDFs by `pdf_workers` processes when there are many (`pdfs`). Returns how many
    documents of each format were written."""
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        raise RenderError(f"unknown format {', '.join(unknown)}; choose from {', '.join(FORMATS)}")
    kinds = {f: ("html" if f == "pdf" else f) for f in formats}
    envs = {kind: environment(project.root, kind) for kind in set(kinds.values())}
    written = dict.fromkeys(formats, 0)
    for_pdf: list[tuple[Path, str]] = []  # made all at once, in parallel when there are many
    for invoice in invoices:
        doc = document(invoice, project, as_of)
        texts = {kind: render_text(env, TEMPLATES[kind], doc) for kind, env in envs.items()}
        for fmt in formats:
            target = out / fmt / document_name(doc.id, fmt)
            if fmt == "pdf":
                for_pdf.append((target, texts["html"]))
            else:
                write_text_atomic(target, texts[kinds[fmt]])
                written[fmt] += 1
    for (target, _), data in zip(for_pdf, pdfs([html for _, html in for_pdf], pdf_workers), strict=True):
        write_bytes_atomic(target, data)
        written["pdf"] += 1
    return written


@dataclass(frozen=True, slots=True)
class RunFolder:
    """What `pricing invoice --out` wrote: the invoices (dicts as in invoices.jsonl), when the
    run was made (its `--as-of`: the documents' issue date) and the spec's content hash then."""

    invoices: tuple[Mapping[str, Any], ...]
    as_of: datetime
    spec_hash: str | None


def read_run(run_dir: str | os.PathLike[str]) -> RunFolder:
    """The run folder at `run_dir`, checked against run.schema.json: a RenderError names the file,
    the line and the field that is not as `pricing invoice` writes it."""
    folder = Path(run_dir)
    try:
        report = json.loads((folder / "run.json").read_text(encoding="utf-8"))
        check_run_file(report, "report", "run.json")
        lines = (folder / "invoices.jsonl").read_text(encoding="utf-8").splitlines()
        invoices = []
        for number, line in enumerate(lines, 1):
            if line.strip():
                invoices.append(json.loads(line))
                check_run_file(invoices[-1], "invoice", f"invoices.jsonl line {number}")
    except (OSError, ValueError) as exc:
        raise RenderError(f"{folder} is not a run folder (invoices.jsonl and run.json): {exc}") from None
    return RunFolder(tuple(invoices), _instant(report["as_of"]), report.get("spec_hash"))  # (a str)


def render(
    project: Project,
    run_dir: str | os.PathLike[str],
    formats: Sequence[str] = ("html", "md", "txt"),
    pdf_workers: int = 1,
) -> dict[str, int]:
    """Render the run written in `run_dir` (invoices.jsonl, run.json) into
    `run_dir/<format>/<invoice id>.<format>`; the issue date is the run's `--as-of`."""
    run = read_run(run_dir)
    return render_run(project, run.invoices, run.as_of, Path(run_dir), formats, pdf_workers)
