"""The source stage: exact scalar typing, the source map, and hostile YAML."""

from __future__ import annotations

from decimal import Decimal

import pytest

from pricing.compiler import source
from pricing.compiler.source import MAX_NODES, parse_yaml
from pricing.diagnostics import Span


def test_scalars_keep_what_the_user_wrote() -> None:
    text = (
        "version: 1.10\nflag: on\nanswer: yes\nday: 2026-01-01\nat: 2024-01-01T00:00:00Z\n"
        "price: 0.00005\nbig: 1_000_000\ncount: 12\nyes_really: true\nquoted: '12'\nnothing: ~\n"
    )
    doc, problems = parse_yaml("a.yaml", text)
    assert problems == []
    assert doc.data == {
        "version": Decimal("1.10"),
        "flag": "on",
        "answer": "yes",
        "day": "2026-01-01",
        "at": "2024-01-01T00:00:00Z",
        "price": Decimal("0.00005"),
        "big": 1000000,
        "count": 12,
        "yes_really": True,
        "quoted": "12",
        "nothing": None,
    }
    assert str(doc.data["version"]) == "1.10"  # not 1.1
    assert not any(isinstance(v, float) for v in doc.data.values())


def test_digit_separators_only_between_digits() -> None:
    """`_` separates digits, as in Python's literals; anywhere else the scalar is text (`0_`
    crashed the loader: it looked like an int and int() refused it — found by Hypothesis)."""
    text = "a: 1_000\nb: 1_0.5\nc: 0_\nd: 1__0\ne: 1._5\nf: 1.5_\ng: _1\nh: -2_5e3\n"
    doc, problems = parse_yaml("a.yaml", text)
    assert problems == []
    assert doc.data == {
        "a": 1000,
        "b": Decimal("10.5"),
        "c": "0_",
        "d": "1__0",
        "e": "1._5",
        "f": "1.5_",
        "g": "_1",
        "h": Decimal("-2.5E+4"),
    }


def test_explicit_tags() -> None:
    doc, problems = parse_yaml("a.yaml", "a: !!str 12\nb: !!float 3\nc: !!int x\n")
    assert doc.data["a"] == "12"
    assert doc.data["b"] == Decimal(3)
    assert [(p.code, p.message) for p in problems] == [("E104", "'x' is not a valid int")]


def test_source_map_locates_values_and_keys() -> None:
    doc, _ = parse_yaml("f.yaml", "metrics:\n  calls:\n    group_keys: [[region, user]]\n")
    smap = doc.source_map
    assert smap.key(("metrics", "calls")) == Span("f.yaml", 2, 3, 2, 8)
    assert smap.value(("metrics", "calls", "group_keys", 0, 1)) == Span("f.yaml", 3, 27, 3, 31)
    # An unknown path falls back to its nearest located ancestor.
    assert smap.value(("metrics", "calls", "nope", 3)) == smap.value(("metrics", "calls"))


def test_duplicate_key_names_both_places() -> None:
    _, problems = parse_yaml("f.yaml", "a: 1\nb: 2\na: 3\n")
    (problem,) = problems
    assert problem.code == "E102"
    assert problem.span.line == 3
    assert problem.related[0].span.line == 1
    assert problem.message.startswith("duplicate key 'a' in one mapping")


def test_merge_keys_merge_and_explicit_keys_win() -> None:
    doc, problems = parse_yaml("f.yaml", "base: &b {x: 1, y: 2}\nthing:\n  <<: *b\n  y: 3\n")
    assert problems == []
    assert doc.data["thing"] == {"x": 1, "y": 3}


def test_billion_laughs_is_refused() -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join(f'*a{i - 1}' for _ in range(10))}]" for i in range(1, 8)]
    doc, problems = parse_yaml("f.yaml", "\n".join(lines) + "\n")
    assert doc.data == {}
    assert problems[0].message == f"the document expands to more than {MAX_NODES} nodes through aliases"


@pytest.mark.parametrize("measure_first", [True, False], ids=["libyaml-0.2.5", "libyaml-0.2.6"])
def test_deep_nesting_is_refused_where_it_gets_too_deep(
    measure_first: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """30,000 levels crashed the process in libyaml 0.2.5's composer (a segmentation fault; 0.2.6
    stops at 1,000 levels itself); 600 overflowed Python's stack converting the nodes, reported
    at line 1. Flow collections and compact block sequences alike are refused where they pass
    1,000 levels (the document's mapping is a level, as is b's), with either libyaml: before
    0.2.6 the file is measured first, from 0.2.6 libyaml's own error says where."""
    if source._MEASURE_FIRST and not measure_first:
        pytest.skip("this libyaml is older than 0.2.6: its composer would crash the process")
    monkeypatch.setattr(source, "_MEASURE_FIRST", measure_first)
    too_deep = "the document is nested more than 1000 levels deep"
    for text, message, where in [
        ("a: " + "[" * 30_000 + "]" * 30_000 + "\n", too_deep, (1, 1_003)),  # the 1,000th [
        ("a: " + "{b: " * 30_000 + "1" + "}" * 30_000 + "\n", too_deep, (1, 4_000)),
        ("a:\n" + "- " * 30_000 + "x\n", too_deep, (2, 1_999)),
        ("a: " + "[" * 2_000 + "]" * 2_000 + "\n", too_deep, (1, 1_003)),  # (not measured first)
        (
            "a:\n  b: " + "[" * 600 + "]" * 600 + "\n",
            "the document is nested too deeply: 602 levels here",
            (2, 605),
        ),
    ]:
        doc, problems = parse_yaml("f.yaml", text)
        assert doc.data == {}
        (problem,) = problems
        assert (problem.code, problem.message, problem.span.line, problem.span.column) == (
            "E104",
            message,
            *where,
        )
    assert parse_yaml("f.yaml", "a: " + "[" * 400 + "]" * 400 + "\n")[1] == []


def test_syntax_error_is_located() -> None:
    _, problems = parse_yaml("f.yaml", "a:\n  - 1\n - 2\n")
    (problem,) = problems
    assert problem.code == "E101"
    assert (problem.span.line, problem.span.column) == (3, 2)
    assert problem.message.startswith("YAML syntax error:")


def test_empty_file_is_empty_document() -> None:
    doc, problems = parse_yaml("f.yaml", "# nothing yet\n")
    assert doc.data == {}
    assert problems == []
