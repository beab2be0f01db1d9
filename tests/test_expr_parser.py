"""The expression language's parser: precedence, associativity, literals, errors, round trips."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pricing.expr.ast import (
    KEYWORDS,
    Binary,
    Call,
    EventField,
    InList,
    IsNull,
    Literal,
    Node,
    Pos,
    Property,
    Unary,
    unparse,
)
from pricing.expr.parser import ExpressionSyntaxError, parse

P = Pos(1, 1)  # positions do not take part in equality


def lit(value: Decimal | str | bool | None) -> Literal:
    return Literal(value, P)


def prop(name: str) -> Property:
    return Property(name, P)


def test_arithmetic_precedence_and_left_associativity() -> None:
    assert parse("a + 2 * b") == Binary("+", prop("a"), Binary("*", lit(Decimal(2)), prop("b"), P), P)
    assert parse("a - b - c") == Binary("-", Binary("-", prop("a"), prop("b"), P), prop("c"), P)
    assert parse("a / b * c") == Binary("*", Binary("/", prop("a"), prop("b"), P), prop("c"), P)
    assert parse("-a * b") == Binary("*", Unary("-", prop("a"), P), prop("b"), P)


def test_boolean_precedence() -> None:
    # not binds tighter than and, and tighter than or; comparisons tighter than not.
    assert parse("not a == 1 or b and c") == Binary(
        "or",
        Unary("not", Binary("==", prop("a"), lit(Decimal(1)), P), P),
        Binary("and", prop("b"), prop("c"), P),
        P,
    )
    assert parse("a or b or c") == Binary("or", Binary("or", prop("a"), prop("b"), P), prop("c"), P)


def test_every_literal_form() -> None:
    assert parse("12") == lit(Decimal(12))
    assert parse("0.00005") == lit(Decimal("0.00005"))
    assert parse("1.5e3") == lit(Decimal("1.5e3"))
    assert parse(".5") == lit(Decimal("0.5"))
    assert parse("-2.50") == lit(Decimal("-2.50"))
    assert parse('"say \\"hi\\""') == lit('say "hi"')
    assert parse("'it\\'s'") == lit("it's")
    assert (parse("true"), parse("false"), parse("null")) == (lit(True), lit(False), lit(None))


def test_names_fields_and_subscripts() -> None:
    assert parse("event_type") == EventField("event_type", P)
    assert parse("timestamp") == EventField("timestamp", P)
    assert parse('properties["odd name"]') == prop("odd name")
    assert parse('properties["timestamp"]') == prop("timestamp")
    assert parse("index") == prop("index")  # not the keyword "in"


def test_membership_null_tests_and_calls() -> None:
    assert parse('region in ["us", "eu"]') == InList(prop("region"), (lit("us"), lit("eu")), False, P)
    assert parse("n not in [1, -2]") == InList(prop("n"), (lit(Decimal(1)), lit(Decimal(-2))), True, P)
    assert parse("model is not null") == IsNull(prop("model"), True, P)
    assert parse("round(x / 3, 2)") == Call(
        "round", (Binary("/", prop("x"), lit(Decimal(3)), P), lit(Decimal(2))), P
    )


def test_positions() -> None:
    node = parse("a +\n  b")
    assert isinstance(node, Binary)
    assert (node.right.pos.line, node.right.pos.column) == (2, 3)


@pytest.mark.parametrize(
    ("text", "line", "column", "message"),
    [
        (
            "a +",
            1,
            4,
            "the expression ends too early; expected '(', '-', 'false', 'null', 'true', "
            "a name, a number or a string",
        ),
        ("a == == b", 1, 6, "unexpected '=='; expected '(', '-', a name, a number or a string"),
        ('region in "us"', 1, 11, "unexpected '\"us\"'; expected '['"),
        ("(a", 1, 3, "the expression ends too early; expected ')'"),
        ('foo["x"]', 1, 1, "only properties[...] can be indexed, not foo"),
        (
            "a ? b",
            1,
            3,
            "unexpected character '?'; expected '(', ')', '*' or '/', '+' or '-', ',', "
            "'[', 'and', 'in', 'is', 'not', 'or' or a comparison",
        ),
    ],
)
def test_error_messages(text: str, line: int, column: int, message: str) -> None:
    with pytest.raises(ExpressionSyntaxError) as caught:
        parse(text)
    assert (caught.value.line, caught.value.column, caught.value.message) == (line, column, message)


# Generated ASTs, pretty-printed and parsed again, give the same AST.
names = st.from_regex(r"[a-z_][a-z0-9_]{0,6}", fullmatch=True).filter(
    lambda n: n not in KEYWORDS and n not in ("event_type", "timestamp", "properties")
)
literals = st.one_of(
    st.decimals(allow_nan=False, allow_infinity=False, places=3).map(lit),
    st.text(max_size=5).map(lit),
    st.sampled_from([True, False, None]).map(lit),
)
leaves = st.one_of(
    literals,
    names.map(prop),
    st.text(min_size=1, max_size=6).map(prop),
    st.sampled_from(["event_type", "timestamp"]).map(lambda n: EventField(n, P)),
)


def _compound(children: st.SearchStrategy[Node]) -> st.SearchStrategy[Node]:
    ops = ["+", "-", "*", "/", "==", "!=", "<", "<=", ">", ">=", "and", "or"]
    return st.one_of(
        st.builds(lambda op, a, b: Binary(op, a, b, P), st.sampled_from(ops), children, children),
        st.builds(lambda op, a: Unary(op, a, P), st.sampled_from(["-", "not"]), children),
        st.builds(
            lambda a, vs, neg: InList(a, tuple(vs), neg, P),
            children,
            st.lists(literals, max_size=3),
            st.booleans(),
        ),
        st.builds(lambda a, neg: IsNull(a, neg, P), children, st.booleans()),
        st.builds(
            lambda f, args: Call(f, tuple(args), P),
            st.sampled_from(["min", "max", "coalesce", "round"]),
            st.lists(children, max_size=3),
        ),
    )


@settings(max_examples=300, deadline=None)
@given(st.recursive(leaves, _compound, max_leaves=12))
def test_unparse_then_parse_is_identity(node: Node) -> None:
    assert parse(unparse(node)) == _canonical(node)


def _canonical(node: Node) -> Node:
    """What parsing gives back for a generated node: `-` applied to a number literal folds."""
    if isinstance(node, Unary):
        operand = _canonical(node.operand)
        if node.op == "-" and isinstance(operand, Literal) and isinstance(operand.value, Decimal):
            return lit(operand.value.copy_negate())  # exact: no context rounding
        return Unary(node.op, operand, P)
    if isinstance(node, Binary):
        return Binary(node.op, _canonical(node.left), _canonical(node.right), P)
    if isinstance(node, InList):
        return InList(_canonical(node.operand), node.values, node.negated, P)
    if isinstance(node, IsNull):
        return IsNull(_canonical(node.operand), node.negated, P)
    if isinstance(node, Call):
        return Call(node.function, tuple(_canonical(a) for a in node.args), P)
    return node
