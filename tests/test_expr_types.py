"""Static typing of expressions: what each node is, and the exact problems (codes and messages;
located in YAML by tests/cases/check/expression_type_errors)."""

from __future__ import annotations

import pytest

from pricing.expr.parser import parse
from pricing.expr.types import Type, check, comparison_type

AND_PROPERTY = (
    "'and' needs true or false, and a property is a string or a number: "
    'compare it (x == "yes") or test it (x is not null)'
)


def problems(text: str, role: str) -> list[tuple[str, str, int]]:
    return [(p.code, p.message, p.pos.column) for p in check(parse(text), role).problems]


@pytest.mark.parametrize(
    ("text", "role"),
    [
        ("input_tokens + 2 * output_tokens", "value"),
        ('region in ["us", "eu"] and model is not null', "filter"),
        ("tokens", "value"),  # a bare property is a number where a value is needed
        ('coalesce(region, "none") == "us"', "filter"),
        ('timestamp >= "2026-03-15" and timestamp < "2026-04-01T00:00:00+02:00"', "filter"),
        ("round(a / b, 2) > max(c, 0)", "filter"),
        ("not (a == b) or lower(event_type) != upper(event_type)", "filter"),
        ("a in [1, 2.5, -3]", "filter"),
        ("x * 0.5000000000000000000000", "value"),  # 22 places written, one that counts
        ("x * 1234567890123456789.12345678901", "value"),  # 30 digits: more than Python's default 28
    ],
)
def test_well_typed(text: str, role: str) -> None:
    assert problems(text, role) == []


def test_a_property_takes_the_type_of_its_use() -> None:
    assert comparison_type(Type.PROPERTY, Type.NUMBER, "==") is Type.NUMBER
    assert comparison_type(Type.PROPERTY, Type.STRING, "<") is Type.STRING
    assert comparison_type(Type.PROPERTY, Type.PROPERTY, "==") is Type.STRING
    assert comparison_type(Type.PROPERTY, Type.PROPERTY, ">=") is Type.NUMBER
    assert comparison_type(Type.TIMESTAMP, Type.STRING, "<") is Type.TIMESTAMP
    typing = check(parse('a * 2 > 1 and b == "x"'), "filter")
    assert typing.instants == frozenset()
    assert {t for n, t in typing.types.items() if type(n).__name__ == "Property"} == {Type.PROPERTY}


@pytest.mark.parametrize(
    ("text", "role", "expected"),
    [
        ('a + "1"', "value", [("E602", "'+' needs a number, not a string", 5)]),
        ('a * 2 == "x"', "filter", [("E602", "cannot compare a number with a string", 1)]),
        ("true < false", "filter", [("E602", "'<' orders numbers, strings and timestamps, not booleans", 1)]),
        ("a != null", "filter", [("E602", "a comparison with null is never true: write 'is not null'", 1)]),
        (
            "timestamp > 5",
            "filter",
            [
                (
                    "E602",
                    "'>' compares timestamp with a timestamp text such as "
                    '"2026-01-01T00:00:00Z", not a number',
                    13,
                )
            ],
        ),
        ('a in [1, "x"]', "filter", [("E602", "a list mixes a number and a string", 10)]),
        ("a in [null]", "filter", [("E602", "null in a list never matches: test it with 'is null'", 7)]),
        ("event_type in [1]", "filter", [("E602", "cannot look for a string in a list of numbers", 1)]),
        ('upper(1) == "1"', "filter", [("E602", "upper() needs a string, not a number", 7)]),
        ('coalesce(a, "x", 1) == "x"', "filter", [("E602", "coalesce() mixes a string and a number", 18)]),
        (
            "ln(a)",
            "value",
            [
                (
                    "E603",
                    "unknown function 'ln'. The functions: coalesce, min, max, abs, "
                    "round, ceil, floor, lower, upper.",
                    1,
                )
            ],
        ),
        ("rnd(a)", "value", [("E603", "unknown function 'rnd'. Did you mean 'round'?", 1)]),
        ("min(a)", "value", [("E604", "min() takes 2 or more arguments, not 1", 1)]),
        ("round(a, 1, 2)", "value", [("E604", "round() takes 1 or 2 arguments, not 3", 1)]),
        (
            "round(a, b)",
            "value",
            [("E606", "round()'s second argument is a whole number of decimal places, 0 to 18", 10)],
        ),
        (
            # 34 digits, 19 places: the check once rounded it in Python's 28-digit default context
            # and raised instead of reporting
            "x * 123456789012345.1234567890123456789",
            "value",
            [("E606", "123456789012345.1234567890123456789 has more than 18 decimal places", 5)],
        ),
        ("a and b", "filter", [("E602", AND_PROPERTY, 1), ("E602", AND_PROPERTY, 7)]),
        ("a > 1", "value", [("E605", "a value must be a number, but this is a boolean", 1)]),
        ("null", "value", [("E605", "a value must be a number, but this is null", 1)]),
        ("a", "filter", [("E605", "a filter must be a boolean, but this is a property", 1)]),
    ],
)
def test_problems(text: str, role: str, expected: list[tuple[str, str, int]]) -> None:
    assert problems(text, role) == expected
