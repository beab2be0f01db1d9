"""Located diagnostics: what every stage reports, and the one exception the public API raises."""

from __future__ import annotations

import difflib
import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True, order=True)
class Span:
    """A region of a source file. Lines and columns are 1-based; the end is exclusive."""

    file: str
    line: int
    column: int
    end_line: int
    end_column: int

    @classmethod
    def point(cls, file: str, line: int = 1, column: int = 1) -> Span:
        return cls(file, line, column, line, column + 1)

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


class Severity(enum.Enum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True, slots=True)
class Related:
    """Another place a diagnostic refers to ("first defined here")."""

    message: str
    span: Span


@dataclass(frozen=True, slots=True)
class Diagnostic:
    code: str
    message: str
    span: Span
    severity: Severity = Severity.ERROR
    related: tuple[Related, ...] = field(default=())

    @property
    def is_error(self) -> bool:
        return self.severity is Severity.ERROR

    def sort_key(self) -> tuple[str, int, int, str, str]:
        return (self.span.file, self.span.line, self.span.column, self.code, self.message)


def error(code: str, message: str, span: Span, *related: Related) -> Diagnostic:
    return Diagnostic(code, message, span, Severity.ERROR, tuple(related))


def warning(code: str, message: str, span: Span, *related: Related) -> Diagnostic:
    return Diagnostic(code, message, span, Severity.WARNING, tuple(related))


def sort_diagnostics(diagnostics: Iterable[Diagnostic]) -> list[Diagnostic]:
    """Sorted by file, line and column; exact repeats (one cause reached twice) removed."""
    return sorted(set(diagnostics), key=Diagnostic.sort_key)


def did_you_mean(word: str, candidates: Iterable[str]) -> str:
    """' Did you mean 'x'?' for the nearest candidate (ignoring case), or '' when none is close."""
    by_folded = {c.casefold(): c for c in sorted(set(candidates), reverse=True)}
    matches = difflib.get_close_matches(word.casefold(), sorted(by_folded), n=1, cutoff=0.6)
    return f" Did you mean '{by_folded[matches[0]]}'?" if matches else ""


def suggest(word: str, candidates: Iterable[str], noun: str) -> str:
    """The nearest candidate, else the few defined ones, else that there are none."""
    names = sorted(set(candidates))
    close = did_you_mean(word, names)
    if close:
        return close
    if not names:
        return f" No {noun} is defined."
    if len(names) <= 8:
        return f" Defined: {', '.join(names)}."
    return ""


class PricingError(Exception):
    """Raised by the public API when a spec project has errors; carries every diagnostic."""

    def __init__(self, diagnostics: Sequence[Diagnostic]) -> None:
        self.diagnostics = tuple(diagnostics)
        errors = [d for d in self.diagnostics if d.is_error]
        first = errors[0] if errors else None
        summary = f"{first.span}: {first.message}" if first else "spec project has errors"
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        super().__init__(summary + more)
