"""A small, obviously correct evaluator of expressions (spec §8): one Python function per node,
on one event at a time, in exact decimals. It shares the static types with the engine (tested by
hand in test_expr_types.py) and nothing else.

Numbers have 18 decimal places: a property is read and `*`, `/` are rounded there, half to even.
Null propagates; `and`/`or` are three-valued. Errors are eager, as in the engine: every operand is
evaluated, an operation that fails records its reason and yields null.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal, InvalidOperation
from decimal import localcontext as local_context
from typing import Any

from pricing.expr.ast import Binary, Call, EventField, InList, IsNull, Literal, Node, Property, Unary
from pricing.expr.types import Type, comparison_type, unify

PLACE = Decimal(1).scaleb(-18)
LIMIT = Decimal(10) ** 19


def exact(value: Decimal) -> Decimal:
    return value.quantize(PLACE, rounding=ROUND_HALF_EVEN)


@dataclass
class Event:
    event_type: str
    timestamp: datetime
    properties: Mapping[str, str]  # as text; numbers by their shortest decimal text


@dataclass
class Evaluation:
    types: Mapping[Node, Type]
    instants: Mapping[str, datetime]
    event: Event
    errors: list[str] = field(default_factory=list)

    def run(self, node: Node) -> Any:
        kind = self.types[node]
        return self.eval(node, Type.NUMBER if kind is Type.PROPERTY else kind)

    def eval(self, node: Node, as_: Type) -> Any:
        if isinstance(node, Literal):
            if isinstance(node.value, str) and as_ is Type.TIMESTAMP:
                return self.instants[node.value]
            return node.value
        if isinstance(node, Property):
            return self.property(node.name, as_)
        if isinstance(node, EventField):
            return getattr(self.event, node.name)
        if isinstance(node, Unary):
            if node.op == "not":
                value = self.eval(node.operand, Type.BOOLEAN)
                return None if value is None else not value
            value = self.eval(node.operand, Type.NUMBER)
            return None if value is None else -value
        if isinstance(node, Binary):
            return self.binary(node)
        if isinstance(node, InList):
            return self.in_list(node)
        if isinstance(node, IsNull):
            kind = self.types[node.operand]
            value = self.eval(node.operand, Type.STRING if kind is Type.PROPERTY else kind)
            return (value is not None) if node.negated else (value is None)
        return self.call(node, as_)

    def property(self, name: str, as_: Type) -> Any:
        text = self.event.properties.get(name)
        if as_ is not Type.NUMBER or text is None:
            return text
        try:
            number = Decimal(text.strip())
        except InvalidOperation:
            number = None
        if number is None or not number.is_finite() or abs(number) >= Decimal(10) ** 20:
            written = text.strip()  # a number Python reads as written (no "_", ASCII digits)
            if number is not None and number.is_finite() and written.isascii() and "_" not in written:
                self.errors.append(f"property '{name}' is out of range: '{text}' (10^20 or more)")
            else:
                self.errors.append(f"property '{name}' is not a number: '{text}'")
            return None
        return exact(number)

    def binary(self, node: Binary) -> Any:
        op = node.op
        if op in ("and", "or"):
            left, right = self.eval(node.left, Type.BOOLEAN), self.eval(node.right, Type.BOOLEAN)
            if op == "and":
                return False if False in (left, right) else None if None in (left, right) else True
            return True if True in (left, right) else None if None in (left, right) else False
        if op in ("+", "-", "*", "/"):
            left, right = self.eval(node.left, Type.NUMBER), self.eval(node.right, Type.NUMBER)
            return self.arithmetic(op, left, right)
        kind = comparison_type(self.types[node.left], self.types[node.right], op)
        left, right = self.eval(node.left, kind), self.eval(node.right, kind)
        if left is None or right is None:
            return None
        return {
            "==": left == right,
            "!=": left != right,
            "<": left < right,
            "<=": left <= right,
            ">": left > right,
            ">=": left >= right,
        }[op]

    def arithmetic(self, op: str, left: Decimal | None, right: Decimal | None) -> Decimal | None:
        if op == "/" and left is not None and right == 0:
            self.errors.append("division by zero")
            return None
        if left is None or right is None:
            return None
        size = (
            abs(left) * abs(right)
            if op == "*"
            else abs(left) / abs(right)
            if op == "/"
            else abs(left) + abs(right)
        )
        if size >= LIMIT:
            self.errors.append(f"the result of '{op}' is out of range (10^19 or more)")
            return None
        with local_context() as context:
            context.prec = 100
            if op == "+":
                result = left + right
            elif op == "-":
                result = left - right
            else:
                result = left * right if op == "*" else left / right
        return exact(result)

    def in_list(self, node: InList) -> bool | None:
        kind = self.types[node.operand]
        for value in node.values:
            kind = unify(kind, self.types[value]) or kind
        if kind is Type.PROPERTY:
            kind = Type.STRING
        operand = self.eval(node.operand, kind)
        if operand is None:
            return None
        values = [self.eval(v, kind) for v in node.values]
        return (operand in values) != node.negated

    def call(self, node: Call, as_: Type) -> Any:
        name = node.function
        if name == "coalesce":
            kind = self.types[node]
            values = [self.eval(a, as_ if kind in (Type.PROPERTY, Type.NULL) else kind) for a in node.args]
            return next((v for v in values if v is not None), None)
        if name in ("lower", "upper"):
            text = self.eval(node.args[0], Type.STRING)
            return None if text is None else text.lower() if name == "lower" else text.upper()
        args = [self.eval(a, Type.NUMBER) for a in (node.args[:1] if name == "round" else node.args)]
        if None in args:
            return None
        if name in ("min", "max"):
            return min(args) if name == "min" else max(args)
        value = args[0]
        if name == "round":
            places = node.args[1].value if len(node.args) == 2 and isinstance(node.args[1], Literal) else 0
            assert isinstance(places, Decimal | int)
            return value.quantize(Decimal(1).scaleb(-int(places)), rounding=ROUND_HALF_UP)
        if name == "abs":
            return abs(value)
        return value.to_integral_value(rounding=ROUND_CEILING if name == "ceil" else ROUND_FLOOR)


def evaluate(
    ast: Node, types: Mapping[Node, Type], instants: Mapping[str, datetime], event: Event
) -> tuple[Any, list[str]]:
    """The value of `ast` on `event`, and the reasons of its errors in evaluation order."""
    evaluation = Evaluation(types, instants, event)
    value = evaluation.run(ast)
    return value, evaluation.errors
