"""Hypothesis: whatever the YAML, loading ends in a Project or a PricingError — never another
exception, never a traceback."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pricing
from pricing.compiler.schema import _fast_validators, _validators, schema
from pricing.compiler.source import parse_yaml, spec_files
from tests.conftest import REPO

SPECS = REPO / "specs"
MANIFEST = "version: 1\nname: Fuzz\n"


class _Dumper(yaml.SafeDumper):
    pass


_Dumper.add_representer(Decimal, lambda d, v: d.represent_scalar("tag:yaml.org,2002:float", str(v)))


@contextmanager
def project(files: dict[str, str]) -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        for name, text in files.items():
            (root / name).write_text(text, encoding="utf-8")
        yield root


def load_or_pricing_error(root: Path) -> None:
    """The front end returns; a project exactly when there is no error (so `load` raises only
    PricingError), and every diagnostic is located."""
    project, diagnostics = pricing.analyse(root)
    assert (project is None) == any(d.is_error for d in diagnostics)
    assert all(d.span.line >= 1 and d.span.column >= 1 for d in diagnostics)


# Words the schema knows, so that generated data reaches build, link and rules too.
def _schema_words() -> list[str]:
    words: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            words.update(k for k in node.get("properties", {}) if isinstance(k, str))
            words.update(str(v) for v in node.get("enum", []))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(schema())
    return sorted(words)


WORDS = st.sampled_from([*_schema_words(), "api", "acme", "rc", "calls", "2026-01-01", "us"])
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**6), 10**6),
    st.decimals(allow_nan=False, allow_infinity=False, places=4),
    WORDS,
    st.text(max_size=8),
)
DATA = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(WORDS, inner, max_size=5),
    max_leaves=30,
)
SECTIONS = st.sampled_from(["metrics", "products", "rate_cards", "customers", "contracts"])
SPEC_SHAPED = st.dictionaries(SECTIONS, st.dictionaries(WORDS, DATA, max_size=3), max_size=5)

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(st.text(max_size=300))
def test_arbitrary_text(text: str) -> None:
    with project({"pricing.yaml": MANIFEST, "spec.yaml": text}) as root:
        load_or_pricing_error(root)


@FAST
@given(DATA)
def test_arbitrary_yaml_documents(data: Any) -> None:
    text = yaml.dump(data, Dumper=_Dumper, allow_unicode=True)
    with project({"pricing.yaml": MANIFEST, "spec.yaml": text}) as root:
        load_or_pricing_error(root)


@st.composite
def spec_shaped_files(draw: st.DrawFn) -> dict[str, str]:
    """A manifest and a spec file of sections of objects, with words the schema knows."""
    manifest = draw(st.dictionaries(WORDS, DATA, max_size=4))
    return {
        "pricing.yaml": yaml.dump({"version": 1, "name": "F", **manifest}, Dumper=_Dumper),
        "spec.yaml": yaml.dump(draw(SPEC_SHAPED), Dumper=_Dumper),
    }


@FAST
@given(spec_shaped_files())
def test_spec_shaped_documents(files: dict[str, str]) -> None:
    with project(files) as root:
        load_or_pricing_error(root)


def _valid_files() -> dict[str, Any]:
    files = {"pricing.yaml": SPECS / "pricing.yaml"}
    files.update({p.relative_to(SPECS).as_posix().replace("/", "__"): p for p in spec_files(SPECS)})
    return {
        name: pricing.compiler.source.parse_yaml(name, p.read_text())[0].data for name, p in files.items()
    }


VALID = _valid_files()


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield prefix
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, value in items:
        yield from _paths(value, (*prefix, key))


@st.composite
def mutated_specs(draw: st.DrawFn) -> dict[str, str]:
    """The bundled specs with a few random mutations: a value replaced, a key dropped or renamed."""
    files = {name: yaml.safe_load(yaml.dump(data, Dumper=_Dumper)) for name, data in VALID.items()}
    for _ in range(draw(st.integers(1, 4))):
        name = draw(st.sampled_from(sorted(files)))
        paths = [p for p in _paths(files[name]) if p]
        if not paths:
            continue
        path = draw(st.sampled_from(paths))
        parent = files[name]
        for key in path[:-1]:
            parent = parent[key]
        action = draw(st.sampled_from(["replace", "drop", "rename"]))
        if action == "replace":
            parent[path[-1]] = draw(DATA)
        elif action == "drop" and isinstance(parent, dict):
            del parent[path[-1]]
        elif action == "rename" and isinstance(parent, dict):
            parent[draw(WORDS)] = parent.pop(path[-1])
    return {name: yaml.dump(data, Dumper=_Dumper, allow_unicode=True) for name, data in files.items()}


@FAST
@given(mutated_specs())
def test_mutated_valid_specs(files: dict[str, str]) -> None:
    with project(files) as root:
        load_or_pricing_error(root)


def test_unmutated_round_trip_is_clean() -> None:
    files = {name: yaml.dump(data, Dumper=_Dumper) for name, data in VALID.items()}
    with project(files) as root:
        assert pricing.check(root) == []


def _validators_agree(files: dict[str, str]) -> None:
    """Per file that parses: jsonschema-rs finds it valid exactly when jsonschema finds no error
    (`validate` trusts jsonschema-rs's "valid" and asks jsonschema only about the rest)."""
    for name, text in files.items():
        document, problems = parse_yaml(name, text)
        if not problems:
            which = 1 if name == "pricing.yaml" else 0
            fast = _fast_validators()[which].is_valid(document.data)
            thorough = next(_validators()[which].iter_errors(document.data), None) is None
            assert (name, fast) == (name, thorough)


@FAST
@given(mutated_specs())
def test_both_validators_agree_on_mutated_specs(files: dict[str, str]) -> None:
    _validators_agree(files)


@FAST
@given(spec_shaped_files())
def test_both_validators_agree_on_spec_shaped_documents(files: dict[str, str]) -> None:
    _validators_agree(files)
