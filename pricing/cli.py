"""The `pricing` command: parses arguments, calls the API, formats the output. Nothing more."""

from __future__ import annotations

from pathlib import Path

import click

from pricing import api
from pricing.compiler.schema import schema_text
from pricing.report import FORMATS, FORMATTERS

DEFAULT_SPEC = "specs"


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
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
