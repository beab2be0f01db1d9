"""The `pricing` command: parses arguments, calls the API, formats the output. Nothing more."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click
import polars as pl
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table
from rich.text import Text

from pricing import api
from pricing.compiler.link import Project
from pricing.compiler.schema import schema_text
from pricing.diagnostics import PricingError
from pricing.engine.calendar import RunError, run_instant, run_range
from pricing.engine.choices import DEDUPS, ENGINES, STRATEGIES
from pricing.engine.invoices import BalanceKey, InvoiceRun, read_balances, unknown_balances, written_ids
from pricing.engine.lines import RatingError
from pricing.engine.meter import USAGE_COLUMNS, WINDOWS, Ledger
from pricing.engine.plan import UsageResult
from pricing.engine.plan import compile as compile_plan
from pricing.engine.sources import EventInputError, EventReadError
from pricing.files import OutputError, write_atomic, write_lines_atomic, write_text_atomic
from pricing.money import as_money
from pricing.money import text as money_text
from pricing.render import FORMATS as DOCUMENT_FORMATS
from pricing.render import document_folders, remove_earlier
from pricing.report import FORMATS, FORMATTERS, format_text

T = TypeVar("T")

DEFAULT_SPEC = "specs"
_CORES = os.cpu_count() or 1  # processes that make PDFs when a run renders many


class _Commands(click.Group):
    """The commands; an output that cannot be written is an error message (exit 1), not a
    traceback, whichever command writes it."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except OutputError as exc:
            raise click.ClickException(str(exc)) from exc


@click.group(cls=_Commands, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="pricing-as-code")
def main() -> None:
    """pricing-as-code: pricing specs in YAML, compiled to exact invoices."""


@main.command()
@click.argument("spec", default=DEFAULT_SPEC, type=click.Path(file_okay=False, path_type=Path))
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="text", show_default=True)
@click.option(
    "--max-diagnostics",
    type=click.IntRange(min=0),
    default=50,
    show_default=True,
    help="Show at most this many in text and github output (0: all).",
)
def check(spec: Path, fmt: str, max_diagnostics: int) -> None:
    """Load, validate and link SPEC, and run the static rules.

    Exit 0 when there are no errors (warnings allowed), 1 when there are.
    """
    diagnostics = api.check(spec)
    shown_root = "" if str(spec) == "." else spec.as_posix().rstrip("/")
    click.echo(FORMATTERS[fmt](diagnostics, spec, shown_root, max_diagnostics), nl=False)
    raise SystemExit(1 if any(d.is_error for d in diagnostics) else 0)


@main.command()
def schema() -> None:
    """Print the JSON Schema of the spec language (Draft 2020-12).

    The root describes a spec file; #/$defs/manifest describes pricing.yaml.
    """
    click.echo(schema_text(), nl=False)


def _fail(exc: PricingError, spec: Path) -> NoReturn:
    """Located diagnostics on stderr, as `pricing check` prints them, and exit 1."""
    shown_root = spec.as_posix().rstrip("/")
    click.echo(format_text(exc.diagnostics, spec, shown_root, 50), err=True, nl=False)
    raise SystemExit(1) from exc


def _load(spec: Path) -> Project:
    """The project, or its diagnostics and exit 1."""
    try:
        return api.load(spec)
    except PricingError as exc:
        _fail(exc, spec)


def _option(field: str) -> str:
    return "--" + field.replace("_", "-")


@contextmanager
def _bad_run_option() -> Iterator[None]:
    """A run's bounds that cannot be (`RunError`) as a usage error naming the option at fault."""
    try:
        yield
    except RunError as exc:
        if exc.usage:
            raise click.UsageError(str(exc)) from exc
        raise click.BadParameter(str(exc), param_hint=_option(exc.field)) from exc


@contextmanager
def _progress(message: str) -> Iterator[None]:
    """A spinner on a terminal; nothing when output is piped."""
    console = Console(stderr=True)
    if console.is_terminal:
        with console.status(message):
            yield
    else:
        yield


def _guard(action: Callable[[], T], spec: Path) -> T:
    """Bad event arguments are usage errors (exit 2), unreadable event files and usage that
    cannot be rated errors (exit 1); none is a traceback."""
    try:
        return action()
    except EventInputError as exc:
        raise click.UsageError(str(exc)) from exc
    except (EventReadError, RatingError) as exc:
        raise click.ClickException(str(exc)) from exc
    except PricingError as exc:
        _fail(exc, spec)


def _ledger_table(ledger: Ledger) -> Table:
    table = Table(title=f"event ledger: {ledger.rows} rows")
    table.add_column("bucket")
    table.add_column("rows", justify="right")
    for bucket, rows in ledger.buckets.items():
        table.add_row(bucket, str(rows))
    for example in ledger.invalid:  # (event values and file names as text, not Rich markup)
        table.add_row(Text(f"  invalid: {example.reason}"), Text(f"{example.file}:{example.row}"))
    return table


def _write_usage(result: UsageResult, fmt: str, out: Path | None) -> None:
    if fmt == "parquet":
        if out is None:
            raise click.UsageError("--format parquet needs --out FILE")
        write_atomic(out, result.usage.write_parquet)
        return
    if fmt == "csv":  # written by Polars: a usage table can have millions of rows
        table = result.text_table().select(USAGE_COLUMNS)
        if out is not None:  # (into the file: not held as a string as well)
            write_atomic(out, table.write_csv)
            return
        text = table.write_csv()
    elif fmt == "table":  # drawn by Polars: Rich took 40 s for 100,000 rows (this 0.5 s)
        columns = [c for c in USAGE_COLUMNS if c not in ("period_start", "period_end")]
        table = result.text_table().select(columns)
        wide = max(len("quantity"), table.select(pl.col("quantity").str.len_chars().max()).item() or 0)
        table = table.with_columns(pl.col("quantity").str.pad_start(wide))  # aligned right
        with pl.Config(
            tbl_rows=-1,
            tbl_cols=-1,
            tbl_width_chars=(1 << 16) - 1,  # (the most Polars takes: values are not cut before)
            fmt_str_lengths=(1 << 16) - 1,
            tbl_hide_dataframe_shape=True,
            tbl_hide_column_data_types=True,
            tbl_formatting="UTF8_FULL_CONDENSED",
        ):
            text = f"{table}\n"
    else:  # written as it is made, to the file or to stdout
        pieces = result.json_pieces()
        if out is not None:
            write_lines_atomic(out, (piece.encode() for piece in pieces))
        else:
            for piece in pieces:
                click.echo(piece, nl=False)
        return
    if out is None:
        click.echo(text, nl=False)
    else:
        write_text_atomic(out, text)


_SPEC = click.argument("spec", default=DEFAULT_SPEC, type=click.Path(file_okay=False, path_type=Path))
_EVENTS = click.option(
    "--events",
    "events",
    multiple=True,
    required=True,
    help="An event file, glob or folder (NDJSON, CSV, Parquet; NDJSON, CSV gzip- or zstd-compressed too);"
    " repeat for several.",
)


def _run_options(command: Callable[..., None]) -> Callable[..., None]:
    """--period, or --start and --end: the run's [start, end) (`_run_range`)."""
    for option in reversed(
        [
            click.option("--period", help="A month, YYYY-MM, in the project timezone."),
            click.option(
                "--start",
                help="Run start (inclusive), instead of --period: RFC 3339, or a date in the"
                " project timezone.",
            ),
            click.option("--end", help="Run end (exclusive), instead of --period."),
        ]
    ):
        command = option(command)
    return command


_STRATEGY = click.option(
    "--strategy",
    type=click.Choice(STRATEGIES),
    default="auto",
    show_default=True,
    help="Metering plan; auto pre-aggregates unless a sample of the events has too many distinct keys.",
)

_DEDUP = click.option(
    "--dedup",
    type=click.Choice(DEDUPS),
    default="auto",
    show_default=True,
    help="How duplicate transaction ids are found; auto reads the ids in a pre-pass for Parquet from "
    "2M events and for events too many to hold in memory, else uses a window over the one scan "
    "(see pricing explain).",
)


@main.command()
@_SPEC
@_EVENTS
@_run_options
@click.option("--window", type=click.Choice(list(WINDOWS)), default="PERIOD", show_default=True)
@click.option(
    "--engine",
    type=click.Choice(ENGINES),
    default="auto",
    show_default=True,
    help="Polars engine; auto streams the pre-aggregated plan (see pricing explain).",
)
@click.option("--group-by", "group_by", help="Comma-separated properties to group each metric by.")
@_STRATEGY
@_DEDUP
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "csv", "json", "parquet"]),
    default="table",
    show_default=True,
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write here (atomically) instead of stdout.",
)
@click.option(
    "--report",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write the run report (ledger, spec hash) as JSON.",
)
def usage(
    spec: Path,
    events: tuple[str, ...],
    period: str | None,
    start: str | None,
    end: str | None,
    window: str,
    engine: str,
    group_by: str | None,
    strategy: str,
    dedup: str,
    fmt: str,
    out: Path | None,
    report: Path | None,
) -> None:
    """What did each customer use? One row per customer, metric, group values and window."""
    project = _load(spec)
    lo, hi = _run_range(period, start, end, project)
    groups = None if group_by is None else [g.strip() for g in group_by.split(",") if g.strip()]
    plan = compile_plan(project)
    try:
        plan.measures(groups)  # a --group-by name no metric groups by, before reading any event
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--group-by") from exc
    with _progress("metering events…"):
        result = _guard(
            lambda: plan.usage(events, lo, hi, window, groups, engine, strategy, dedup),
            spec,
        )
    _write_usage(result, fmt, out)
    if report is not None:
        write_text_atomic(report, json.dumps(result.report(), indent=2) + "\n")
    Console(stderr=True, width=120).print(_ledger_table(result.ledger))


@main.command()
@_SPEC
@_EVENTS
@_run_options
@_STRATEGY
@_DEDUP
def explain(
    spec: Path,
    events: tuple[str, ...],
    period: str | None,
    start: str | None,
    end: str | None,
    strategy: str,
    dedup: str,
) -> None:
    """The compiled metering plan: each metric's predicate and value, the strategy, engine and
    dedup, the Polars plan."""
    project = _load(spec)
    lo, hi = _run_range(period, start, end, project)
    click.echo(_guard(lambda: compile_plan(project).explain(events, lo, hi, strategy, dedup), spec))


def _run_range(
    period: str | None, start: str | None, end: str | None, project: Project
) -> tuple[datetime, datetime]:
    """--period YYYY-MM (that month in the project timezone), or --start and --end."""
    with _bad_run_option():
        return run_range(project.manifest.timezone, period, start, end, _option)


def _balances(path: Path) -> dict[BalanceKey, Decimal]:
    try:
        return read_balances(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError) as exc:
        raise click.BadParameter(f"{path}: {exc}", param_hint="--opening-balances") from exc


def _summary(run: InvoiceRun) -> Table:
    table = Table(title=f"{len(run.invoices)} invoices for {run.customers} customers")
    table.add_column("currency")
    table.add_column("invoices", justify="right")
    table.add_column("total (minor units)", justify="right")
    table.add_column("total", justify="right")
    for currency, total in run.totals().items():
        count = sum(1 for i in run.invoices if i.currency == currency)
        table.add_row(currency, str(count), money_text(total), as_money(total, currency, "en_US"))
    return table


@main.command()
@_SPEC
@_EVENTS
@_run_options
@click.option(
    "--as-of", "as_of", help="Issue instant: periods ended by then are FINALIZED (default: run end)."
)
@click.option(
    "--out",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder for invoices.jsonl and run.json.",
)
@click.option("--skip-zero", is_flag=True, help="Leave out lines with zero quantity and zero total.")
@click.option("--strict", is_flag=True, help="Exit 1 when some usage is unpriced.")
@click.option(
    "--opening-balances",
    "opening",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="The previous run's run.json: commits and credits start from what it left.",
)
@click.option(
    "--engine", type=click.Choice(ENGINES), default="auto", show_default=True, help="Polars engine."
)
@_DEDUP
@click.option(
    "--render",
    "render_formats",
    callback=lambda _ctx, _param, value: _formats(value) if value else (),
    help="Also render each invoice as documents: a comma list of html, pdf, md, txt.",
)
def invoice(
    spec: Path,
    events: tuple[str, ...],
    period: str | None,
    start: str | None,
    end: str | None,
    as_of: str | None,
    out: Path,
    skip_zero: bool,
    strict: bool,
    opening: Path | None,
    engine: str,
    dedup: str,
    render_formats: tuple[str, ...],
) -> None:
    """Invoice every statement period that starts in the run, and every scheduled charge in it.

    Writes OUT/invoices.jsonl (one invoice per line) and OUT/run.json (ledger, unpriced usage,
    totals, spec hash) atomically; the same inputs give byte-identical files. With --render,
    also OUT/<format>/<invoice id>.<format> for each format.
    """
    project = _load(spec)
    lo, hi = _run_range(period, start, end, project)
    with _bad_run_option():  # (a timestamp, or a bare date in the project timezone)
        issued = None if as_of is None else run_instant(as_of, project.manifest.timezone, "as_of")
    balances = None if opening is None else _balances(opening)
    for contract_id, kind, index, segment in unknown_balances(project, balances or {}):
        where = f"contract '{contract_id}' {kind}[{index}] access segment {segment}"
        click.echo(f"warning: {opening}: {where} is not in {spec}: its balance is not used", err=True)
    console = Console(stderr=True)
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        console=console,
        disable=not console.is_terminal,
    ) as bar:
        task = bar.add_task("metering and rating", total=None)

        def advance(done: int, total: int) -> None:
            bar.update(task, description="rating", completed=done, total=total)

        result = _guard(
            lambda: compile_plan(project).invoice(
                events, lo, hi, issued, skip_zero, engine, advance, balances, dedup=dedup
            ),
            spec,
        )
    # the ids of the folder's earlier run, whose documents it may hold (none without a document
    # folder: then the earlier invoices.jsonl, 330 MB for 50,000 customers, is not read)
    earlier = written_ids(out / "invoices.jsonl") if document_folders(out) else []
    write_lines_atomic(out / "invoices.jsonl", result.jsonl_lines())
    write_text_atomic(out / "run.json", result.report_json())
    if render_formats:
        from pricing.render.documents import render_run  # Jinja and Babel, only to render

        invoices = [i.as_dict() for i in result.invoices]
        _report_rendered(
            _rendering(lambda: render_run(project, invoices, result.as_of, out, render_formats, _CORES)), out
        )
    removed = remove_earlier(out, earlier, {i.id for i in result.invoices}, render_formats)
    if removed:
        click.echo(
            f"removed {removed} document(s) of the folder's earlier run from {out}/<format>/", err=True
        )
    stdout = Console(width=120)
    stdout.print(_summary(result))
    stdout.print(_ledger_table(result.ledger))
    if result.unpriced:
        shown = f"{len(result.unpriced)} unpriced usage item(s): see {out / 'run.json'}"
        click.echo(("error: " if strict else "warning: ") + shown, err=True)
        if strict:
            raise SystemExit(1)


def _formats(value: str) -> tuple[str, ...]:
    formats = tuple(dict.fromkeys(f.strip().lower() for f in value.split(",") if f.strip()))
    unknown = [f for f in formats if f not in DOCUMENT_FORMATS]
    if unknown or not formats:
        raise click.BadParameter(
            f"{', '.join(unknown) or value!r}: choose from {', '.join(DOCUMENT_FORMATS)}"
        )
    return formats


def _rendering(action: Callable[[], T]) -> T:
    from pricing.render.documents import RenderError

    try:
        return action()
    except RenderError as exc:
        raise click.ClickException(str(exc)) from exc


def _report_rendered(written: dict[str, int], out: Path) -> None:
    counts = ", ".join(f"{count} {fmt}" for fmt, count in written.items())
    click.echo(f"rendered {counts} into {out}/<format>/", err=True)


@main.command("render")
@click.argument("run_dir", type=click.Path(file_okay=False, exists=True, path_type=Path))
@click.option(
    "--spec",
    default=DEFAULT_SPEC,
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="The spec project: seller, customers and templates/.",
)
@click.option(
    "--format",
    "formats",
    default="html,md,txt",
    show_default=True,
    callback=lambda _ctx, _param, value: _formats(value),
    help="A comma list of html, pdf, md, txt.",
)
def render_command(run_dir: Path, spec: Path, formats: tuple[str, ...]) -> None:
    """Render the invoices of a run folder (from `pricing invoice --out`) as documents:
    RUN_DIR/<format>/<invoice id>.<format>."""
    from pricing.render.documents import read_run, render_run

    project = _load(spec)
    run = _rendering(lambda: read_run(run_dir))
    if run.spec_hash is not None and run.spec_hash != project.spec_hash:
        click.echo(
            f"warning: {spec} changed since the run (spec hash {run.spec_hash[:12]}, now "
            f"{project.spec_hash[:12]}): seller, customer details and templates are today's",
            err=True,
        )
    written = _rendering(lambda: render_run(project, run.invoices, run.as_of, run_dir, formats, _CORES))
    _report_rendered(written, run_dir)
