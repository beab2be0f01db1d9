"""Diagnostics as text (with the source line and a caret), JSON, GitHub annotations and SARIF."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

from pricing.diagnostics import Diagnostic, Span

FORMATS = ("text", "json", "github", "sarif")
SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"

# What each code means, for SARIF rule metadata and docs/diagnostics.md.
CODES = {
    "E101": "YAML syntax error",
    "E102": "duplicate key in one mapping",
    "E103": "duplicate id across the project",
    "E104": "unsupported YAML construct",
    "E105": "not a spec project or not a mapping",
    "E201": "unknown key",
    "E202": "missing required key",
    "E203": "wrong value type",
    "E204": "value not among the allowed ones",
    "E205": "value out of range or malformed",
    "E301": "invalid date or time",
    "E302": "unknown currency",
    "E303": "unknown time zone",
    "E304": "field does not apply to this type",
    "E306": "incomplete object",
    "E401": "unknown reference",
    "E402": "tag that no product has",
    "E501": "group keys do not match the metric",
    "E502": "group key property not required by a filter",
    "E503": "aggregation key missing or doubled",
    "E504": "rate type not allowed for the product type",
    "E505": "malformed tiers or prices",
    "E506": "overlapping rates",
    "E507": "ending_before not after starting_at",
    "E508": "ingest alias conflict",
    "E509": "overlapping contracts",
    "E510": "commit currency differs from the rate card",
    "E511": "composite product includes itself",
    "E512": "pricing_group_values key not in pricing_group_key",
    "E513": "commit, credit or scheduled charge not on a fixed product",
    "E601": "syntax error in an expression",
    "E602": "type error in an expression",
    "E603": "unknown function in an expression",
    "E604": "wrong number of arguments",
    "E605": "filter not boolean or value not numeric",
    "E606": "literal out of range in an expression",
    "W501": "entitled usage product without a rate for part of a contract",
    "W502": "metric used by no product",
    "W503": "COUNT metric with an aggregation key",
    "W505": "fraction above 1",
    "W506": "composite names another composite",
    "W507": "override that never applies",
    "W508": "charge scheduled outside its contract",
    "W509": "commit or credit that applies to no rated product",
    "W510": "metric whose filters no event can pass",
}


class Lines:
    """Source lines of a project's files, read on demand."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._cache: dict[str, list[str]] = {}

    def line(self, file: str, number: int) -> str | None:
        if file not in self._cache:
            try:
                text = (self.root / file).read_text("utf-8-sig", errors="replace")  # (E101 shows where)
            except OSError:
                text = ""
            self._cache[file] = text.splitlines()
        lines = self._cache[file]
        return lines[number - 1] if 0 < number <= len(lines) else None


def summary(diagnostics: Sequence[Diagnostic]) -> str:
    errors = sum(d.is_error for d in diagnostics)
    warnings = len(diagnostics) - errors

    def plural(n: int, word: str) -> str:
        return f"{n} {word}{'' if n == 1 else 's'}"

    return f"{plural(errors, 'error')}, {plural(warnings, 'warning')}"


def _shown(diagnostics: Sequence[Diagnostic], limit: int) -> tuple[Sequence[Diagnostic], int]:
    if limit <= 0 or len(diagnostics) <= limit:
        return diagnostics, 0
    return diagnostics[:limit], len(diagnostics) - limit


WIDE = 120  # a longer source line is shown as this much of it around the span, cut with "…"


def _excerpt(span: Span, source: str) -> tuple[str, str]:
    """The source line (or the part of a long line where the span starts) and its caret line."""
    start = span.column - 1
    end = span.end_column - 1 if span.end_line == span.line else len(source)
    if len(source) > WIDE:
        cut = max(0, min(start - WIDE // 3, len(source) - WIDE))
        shown = source[cut : cut + WIDE]
        before, after = ("…" if cut else ""), ("…" if cut + WIDE < len(source) else "")
        source, start, end = before + shown + after, start - cut + len(before), end - cut + len(before)
        end = min(end, len(before) + len(shown))
    width = max(1, min(end, len(source.rstrip())) - start)
    prefix = "".join(c if c == "\t" else " " for c in source[:start])
    return source, prefix + "^" * width


def format_text(diagnostics: Sequence[Diagnostic], root: Path, shown_root: str, limit: int) -> str:
    lines = Lines(root)
    out: list[str] = []
    shown, hidden = _shown(diagnostics, limit)
    for d in shown:
        path = _display(shown_root, d.span.file)
        out.append(f"{path}:{d.span.line}:{d.span.column}: {d.severity.value}[{d.code}]: {d.message}")
        source = lines.line(d.span.file, d.span.line)
        if source is not None:
            gutter = str(d.span.line)
            excerpt, caret = _excerpt(d.span, source)
            out.append(f" {gutter} | {excerpt}")
            out.append(f" {' ' * len(gutter)} | {caret}")
        for related in d.related:
            where = f"{_display(shown_root, related.span.file)}:{related.span.line}:{related.span.column}"
            out.append(f"  note: {related.message}: {where}")
    if hidden:
        out.append(f"… and {hidden} more")
    out.append(summary(diagnostics))
    return "\n".join(out) + "\n"


def _display(shown_root: str, file: str) -> str:
    """A file of the project as the user named the project; "" is the project folder itself."""
    if not file:
        return shown_root or "."
    return f"{shown_root.rstrip('/')}/{file}" if shown_root else file


def _record(d: Diagnostic, shown_root: str) -> dict[str, Any]:
    def place(span: Span) -> dict[str, Any]:
        return {
            "file": _display(shown_root, span.file),
            "line": span.line,
            "column": span.column,
            "end_line": span.end_line,
            "end_column": span.end_column,
        }

    return {
        "code": d.code,
        "severity": d.severity.value,
        "message": d.message,
        **place(d.span),
        "related": [{"message": r.message, **place(r.span)} for r in d.related],
    }


def format_json(diagnostics: Sequence[Diagnostic], root: Path, shown_root: str, limit: int) -> str:
    errors = sum(d.is_error for d in diagnostics)
    document = {
        "diagnostics": [_record(d, shown_root) for d in diagnostics],
        "errors": errors,
        "warnings": len(diagnostics) - errors,
    }
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def _escape(text: str, *, property_value: bool = False) -> str:
    text = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    if property_value:
        text = text.replace(":", "%3A").replace(",", "%2C")
    return text


def format_github(diagnostics: Sequence[Diagnostic], root: Path, shown_root: str, limit: int) -> str:
    out = []
    shown, hidden = _shown(diagnostics, limit)
    for d in shown:
        s = d.span
        props = (
            f"file={_escape(_display(shown_root, s.file), property_value=True)},line={s.line},"
            f"col={s.column},endLine={s.end_line},endColumn={s.end_column},title={d.code}"
        )
        out.append(f"::{d.severity.value} {props}::{_escape(d.message)}")
    if hidden:
        out.append(f"::notice::… and {hidden} more")
    return "\n".join(out) + ("\n" if out else "")


def format_sarif(diagnostics: Sequence[Diagnostic], root: Path, shown_root: str, limit: int) -> str:
    from pricing import __version__

    def location(span: Span, message: str | None = None) -> dict[str, Any]:
        loc: dict[str, Any] = {
            "physicalLocation": {
                # a URI reference: spaces and non-ASCII letters of a path percent-encoded
                "artifactLocation": {"uri": quote(_display(shown_root, span.file), safe="/")},
                "region": {
                    "startLine": span.line,
                    "startColumn": span.column,
                    "endLine": span.end_line,
                    "endColumn": span.end_column,
                },
            }
        }
        if message is not None:
            loc["message"] = {"text": message}
        return loc

    codes = sorted({d.code for d in diagnostics})
    results = []
    for d in diagnostics:
        result: dict[str, Any] = {
            "ruleId": d.code,
            "ruleIndex": codes.index(d.code),
            "level": d.severity.value,
            "message": {"text": d.message},
            "locations": [location(d.span)],
        }
        if d.related:
            result["relatedLocations"] = [
                {"id": i, **location(r.span, r.message)} for i, r in enumerate(d.related)
            ]
        results.append(result)
    document = {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "pricing-as-code",
                        "version": __version__,
                        "informationUri": "https://pricing-as-code.dev/docs/diagnostics",
                        "rules": [
                            {"id": code, "shortDescription": {"text": CODES.get(code, code)}}
                            for code in codes
                        ],
                    }
                },
                "results": results,
            }
        ],
    }
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


Formatter = Callable[[Sequence[Diagnostic], Path, str, int], str]
FORMATTERS: dict[str, Formatter] = {
    "text": format_text,
    "json": format_json,
    "github": format_github,
    "sarif": format_sarif,
}
