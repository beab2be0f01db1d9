"""The public API: what the CLI calls and what a notebook can call too."""

from __future__ import annotations

import os
from pathlib import Path

from pricing import ir
from pricing.bulk import collector_paused
from pricing.compiler.build import build_manifest, build_objects
from pricing.compiler.link import Project, link
from pricing.compiler.rules import run_rules
from pricing.compiler.schema import validate
from pricing.compiler.source import read_sources
from pricing.diagnostics import Diagnostic, PricingError, Span, error, sort_diagnostics

# Used to go on checking the objects when pricing.yaml itself is broken; never returned.
_STAND_IN = ir.Manifest(
    span=Span.point("pricing.yaml"),
    version=1,
    name="",
    currency="USD",
    timezone="UTC",
    rounding=ir.Rounding.ROUND_HALF_UP,
    seller=None,
)
_SECTIONS = frozenset(kind.value for kind in ir.Kind)


def analyse(path: str | os.PathLike[str]) -> tuple[Project | None, list[Diagnostic]]:
    """Run the front end on the spec project at `path`: the linked project (None when it has
    errors) and every diagnostic, sorted by file and position."""
    root = Path(path)
    if not root.is_dir():
        message = f"{root} is not a folder: a spec project is a folder with a pricing.yaml"
        return None, [error("E105", message, Span.point(""))]  # "": the project folder itself
    with collector_paused():
        return _analyse(root)


def _analyse(root: Path) -> tuple[Project | None, list[Diagnostic]]:
    sources, diagnostics = read_sources(root)
    documents = [(doc, False) for doc in sources.documents]
    if sources.manifest is not None:
        documents.insert(0, (sources.manifest, True))
    manifest = None
    objects = []
    for document, is_manifest in documents:
        problems, broken = validate(document, manifest=is_manifest)
        diagnostics.extend(problems)
        if is_manifest and not any(len(p) < 2 or p[0] not in _SECTIONS for p in broken):
            manifest, problems = build_manifest(document)
            diagnostics.extend(problems)
        built, problems = build_objects(document, manifest, broken.__contains__)
        objects.extend(built)
        diagnostics.extend(problems)
    project, problems = link(root, manifest or _STAND_IN, objects, sources.spec_hash)
    diagnostics.extend(problems)
    diagnostics.extend(run_rules(project))
    ordered = sort_diagnostics(diagnostics)
    clean = manifest is not None and not any(d.is_error for d in ordered)
    return (project if clean else None), ordered


def check(path: str | os.PathLike[str]) -> list[Diagnostic]:
    """Every diagnostic of the spec project at `path` (errors and warnings), sorted."""
    return analyse(path)[1]


def load(path: str | os.PathLike[str]) -> Project:
    """The linked project at `path`; raises `PricingError` with every diagnostic if it has errors."""
    project, diagnostics = analyse(path)
    if project is None:
        raise PricingError(diagnostics)
    return project
