"""Lowering a typed expression to a Polars expression: one small function per node kind.

Numbers are exact decimals (`Columns.number_type`, 18 places): `+`, `-` are exact, `*` and `/`
round their result half to even at the 18th place, as Polars' decimals do. Null propagates as
in SQL: arithmetic, comparisons and functions of a null are null, `and`/`or` are three-valued,
`coalesce` returns its first non-null argument; a filter that comes out null is false.

What cannot be computed is not made up: a property read as a number that is not one, a division
by zero, or a result of 10^19 or more is an *error* of the row — the lowering returns, beside the
expression, the conditions under which a row has one and the reason, and the row goes to the
ledger as `invalid`. The operands of a failing operation are nulled before it runs, so Polars
never raises.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from functools import singledispatch

import polars as pl

from pricing.expr.ast import Binary, Call, EventField, InList, IsNull, Literal, Node, Property, Unary
from pricing.expr.types import ARITHMETIC, LOGIC, MAX_EXPONENT, Type, comparison_type, unify
from pricing.frames import decimal_literal, decimal_series

LIMIT = float(10**MAX_EXPONENT)  # a result this large is out of range (Decimal(38, 18) holds < 10^20)
UTC_TIME = pl.Datetime("us", "UTC")


@dataclass(frozen=True, slots=True)
class Columns:
    """How the lowered expression reads an event: a property as text (numbers by their shortest
    decimal text, null when absent), a property as a number (null when absent or not a number),
    and the decimal type of numbers."""

    text: Callable[[str], pl.Expr]
    number: Callable[[str], pl.Expr]
    number_type: pl.DataType


@dataclass(frozen=True, slots=True)
class Lowered:
    """A Polars expression, the intermediate columns it reads (`steps`: name and expression, each
    computed after the ones before it), and its errors: (condition, reason) pairs, a row having
    the first error whose condition is true.

    Intermediate results are columns so that an operand an operation reads several times (its
    value and its range check) is computed once and the expression stays as small as the text."""

    expr: pl.Expr
    steps: tuple[tuple[str, pl.Expr], ...]
    errors: tuple[tuple[pl.Expr, pl.Expr], ...]

    def error(self) -> pl.Expr:
        """The reason of a row's first error, or null."""
        reason = pl.lit(None, dtype=pl.String)
        for condition, text in reversed(self.errors):
            reason = pl.when(condition.fill_null(False)).then(text).otherwise(reason)
        return reason

    def prepare(self, frame: pl.LazyFrame) -> pl.LazyFrame:
        """`frame` with the intermediate columns that `expr` and the errors read."""
        for name, expr in self.steps:
            frame = frame.with_columns(expr.alias(name))
        return frame


@dataclass(slots=True)
class _Lowering:
    columns: Columns
    types: Mapping[Node, Type]
    instants: Mapping[str, datetime]
    prefix: str
    steps: list[tuple[str, pl.Expr]] = field(default_factory=list)
    errors: list[tuple[pl.Expr, pl.Expr]] = field(default_factory=list)

    def bind(self, expr: pl.Expr) -> pl.Expr:
        """`expr` as an intermediate column (a column or a constant — a literal, a decimal
        literal cast from its text — stays as it is)."""
        if expr.meta.is_column() or not expr.meta.root_names():
            return expr
        name = f"{self.prefix}{len(self.steps)}"
        self.steps.append((name, expr))
        return pl.col(name)

    def fail_when(self, condition: pl.Expr, reason: pl.Expr) -> None:
        self.errors.append((condition, reason))

    def null(self, as_: Type) -> pl.Expr:
        dtypes = {
            Type.NUMBER: self.columns.number_type,
            Type.BOOLEAN: pl.Boolean(),
            Type.TIMESTAMP: UTC_TIME,
        }
        return pl.lit(None, dtype=dtypes.get(as_, pl.String()))

    def literal(self, value: Decimal | str | bool, as_: Type) -> pl.Expr:
        if isinstance(value, Decimal):
            return decimal_literal(value, self.columns.number_type)
        if isinstance(value, str) and as_ is Type.TIMESTAMP:
            return pl.lit(self.instants[value], dtype=UTC_TIME)
        return pl.lit(value)


def lower(
    ast: Node, types: Mapping[Node, Type], instants: Mapping[str, datetime], columns: Columns, prefix: str
) -> Lowered:
    """`ast` (typed by `pricing.expr.types.check`) as a Polars expression and its row errors;
    intermediate columns are named `prefix` and a number."""
    state = _Lowering(columns, types, instants, prefix)
    kind = types[ast]
    expr = _lower(ast, state, Type.NUMBER if kind is Type.PROPERTY else kind)
    return Lowered(expr, tuple(state.steps), tuple(state.errors))


@singledispatch
def _lower(node: Node, state: _Lowering, as_: Type) -> pl.Expr:
    raise TypeError(f"no lowering for {type(node).__name__}")


@_lower.register
def _(node: Literal, state: _Lowering, as_: Type) -> pl.Expr:
    return state.null(as_) if node.value is None else state.literal(node.value, as_)


@_lower.register
def _(node: Property, state: _Lowering, as_: Type) -> pl.Expr:
    text = state.columns.text(node.name)
    if as_ is not Type.NUMBER:
        return text
    number = state.columns.number(node.name)
    state.fail_when(*not_a_number(node.name, text, number))
    return number


# A number as events write one (surrounding blanks allowed): what fails to read as a quantity
# although it matches this is out of range, not "not a number".
NUMBER_TEXT = r"^\s*[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?\s*$"


def not_a_number(name: str, text: pl.Expr, number: pl.Expr) -> tuple[pl.Expr, pl.Expr]:
    """(condition, reason) of a property that is present as `text` but not a `number`: not a
    number at all, or one out of the range of quantities (10^20 or more)."""
    condition = text.is_not_null() & number.is_null()
    # the text only where the condition holds: formatting every row's value would cost more
    # than the rest of the check
    wrong = pl.when(condition).then(text)
    reason = (
        pl.when(wrong.str.contains(NUMBER_TEXT))
        .then(pl.format("property '{}' is out of range: '{}' (10^20 or more)", pl.lit(name), wrong))
        .otherwise(pl.format("property '{}' is not a number: '{}'", pl.lit(name), wrong))
    )
    return condition, reason


@_lower.register
def _(node: EventField, state: _Lowering, as_: Type) -> pl.Expr:
    return pl.col(node.name)


@_lower.register
def _(node: Unary, state: _Lowering, as_: Type) -> pl.Expr:
    if node.op == "not":
        return ~_lower(node.operand, state, Type.BOOLEAN)
    return -_lower(node.operand, state, Type.NUMBER)


def _arithmetic(op: str, left: pl.Expr, right: pl.Expr, state: _Lowering) -> pl.Expr:
    # The magnitude check runs on floats, which is enough to tell 10^19 from 10^20; the values
    # themselves never leave the decimals.
    left, right = state.bind(left), state.bind(right)
    size_left, size_right = left.cast(pl.Float64).abs(), right.cast(pl.Float64).abs()
    by_zero = right == 0 if op == "/" else pl.lit(False)
    if op in ("+", "-"):
        too_large = size_left + size_right >= LIMIT
    elif op == "*":
        too_large = size_left * size_right >= LIMIT
    else:
        state.fail_when(left.is_not_null() & by_zero, pl.lit("division by zero"))
        too_large = ~by_zero & (size_left >= LIMIT * size_right)
    state.fail_when(too_large, pl.lit(f"the result of '{op}' is out of range (10^{MAX_EXPONENT} or more)"))
    fails = state.bind((too_large | by_zero).fill_null(False))
    left = pl.when(fails).then(None).otherwise(left)
    right = pl.when(fails).then(None).otherwise(right)
    operations: dict[str, Callable[[pl.Expr, pl.Expr], pl.Expr]] = {
        "+": pl.Expr.add,
        "-": pl.Expr.sub,
        "*": pl.Expr.mul,
        "/": pl.Expr.truediv,
    }
    return state.bind(operations[op](left, right))


@_lower.register
def _(node: Binary, state: _Lowering, as_: Type) -> pl.Expr:
    op = node.op
    if op in LOGIC:
        left, right = _lower(node.left, state, Type.BOOLEAN), _lower(node.right, state, Type.BOOLEAN)
        return left & right if op == "and" else left | right
    if op in ARITHMETIC:
        left, right = _lower(node.left, state, Type.NUMBER), _lower(node.right, state, Type.NUMBER)
        return _arithmetic(op, left, right, state)
    kind = comparison_type(state.types[node.left], state.types[node.right], op)
    left, right = _lower(node.left, state, kind), _lower(node.right, state, kind)
    compare: dict[str, Callable[[pl.Expr, pl.Expr], pl.Expr]] = {
        "==": pl.Expr.eq,
        "!=": pl.Expr.ne,
        "<": pl.Expr.lt,
        "<=": pl.Expr.le,
        ">": pl.Expr.gt,
        ">=": pl.Expr.ge,
    }
    return compare[op](left, right)


@_lower.register
def _(node: InList, state: _Lowering, as_: Type) -> pl.Expr:
    kind = state.types[node.operand]
    for value in node.values:
        kind = unify(kind, state.types[value]) or kind
    if kind is Type.PROPERTY:
        kind = Type.STRING
    operand = _lower(node.operand, state, kind)
    values = [
        state.instants[v.value] if isinstance(v.value, str) and kind is Type.TIMESTAMP else v.value
        for v in node.values
    ]
    dtypes = {Type.NUMBER: state.columns.number_type, Type.TIMESTAMP: UTC_TIME, Type.BOOLEAN: pl.Boolean()}
    if kind is Type.NUMBER:
        numbers = [v for v in values if v is None or isinstance(v, Decimal)]
        assert len(numbers) == len(values)  # the type checker admits only numbers to a number list
        listed = decimal_series("", numbers, state.columns.number_type)
    else:
        listed = pl.Series(values, dtype=dtypes.get(kind, pl.String()))
    found = operand.is_in(listed.implode())
    return ~found if node.negated else found


@_lower.register
def _(node: IsNull, state: _Lowering, as_: Type) -> pl.Expr:
    kind = state.types[node.operand]
    operand = _lower(node.operand, state, Type.STRING if kind is Type.PROPERTY else kind)
    return operand.is_not_null() if node.negated else operand.is_null()


def _any_null(args: list[pl.Expr]) -> pl.Expr:
    return pl.any_horizontal([a.is_null() for a in args])


@_lower.register
def _(node: Call, state: _Lowering, as_: Type) -> pl.Expr:
    name = node.function
    if name == "coalesce":
        kind = state.types[node]
        kind = as_ if kind in (Type.PROPERTY, Type.NULL) else kind
        return pl.coalesce([_lower(a, state, kind) for a in node.args])
    if name in ("lower", "upper"):
        text = _lower(node.args[0], state, Type.STRING)
        return text.str.to_lowercase() if name == "lower" else text.str.to_uppercase()
    args = [_lower(a, state, Type.NUMBER) for a in (node.args[:1] if name == "round" else node.args)]
    first = args[0]
    if name in ("min", "max"):  # null if any argument is null, as arithmetic
        extreme = pl.min_horizontal(args) if name == "min" else pl.max_horizontal(args)
        return pl.when(_any_null(args)).then(None).otherwise(extreme)
    if name == "round":
        places = node.args[1].value if len(node.args) == 2 and isinstance(node.args[1], Literal) else 0
        assert isinstance(places, Decimal | int)
        return first.round(int(places), mode="half_away_from_zero")
    if name == "abs":
        return first.abs()
    return first.ceil() if name == "ceil" else first.floor()
