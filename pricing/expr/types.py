"""Static typing of expressions (spec §8), before anything runs.

Every node has one of the types below. A property is a string or a number depending on how it is
used: it takes the type of what it is compared with, and is a number in arithmetic. Two
properties compared with each other compare as text for `==`/`!=` and as numbers for the
orderings. A string literal compared with `timestamp` is a timestamp (RFC 3339, or a bare date in
the project timezone).

`check(ast, role)` returns the problems (code, message, position); `infer(ast)` the type of every
node, which the lowering to Polars reads to decide how a property is read and what a comparison
compares.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from enum import Enum

from pricing.diagnostics import did_you_mean
from pricing.expr.ast import Binary, Call, EventField, InList, IsNull, Literal, Node, Pos, Property, Unary
from pricing.money import plain


class Type(Enum):
    NUMBER = "a number"
    STRING = "a string"
    BOOLEAN = "a boolean"
    TIMESTAMP = "a timestamp"
    NULL = "null"
    PROPERTY = "a property"  # a string or a number: its use decides
    ERROR = "an error"  # already reported (an unknown function): no further complaints about it


ARITHMETIC = frozenset({"+", "-", "*", "/"})
ORDERING = frozenset({"<", "<=", ">", ">="})
EQUALITY = frozenset({"==", "!="})
LOGIC = frozenset({"and", "or"})
MAX_PLACES = 18  # numbers are exact decimals with at most this many decimal places
MAX_EXPONENT = 19  # ... and stay below 10^19 in size

# name → (fewest, most) arguments; None: any number
FUNCTIONS: dict[str, tuple[int, int | None]] = {
    "coalesce": (2, None),
    "min": (2, None),
    "max": (2, None),
    "abs": (1, 1),
    "round": (1, 2),
    "ceil": (1, 1),
    "floor": (1, 1),
    "lower": (1, 1),
    "upper": (1, 1),
}
NUMERIC_FUNCTIONS = frozenset({"min", "max", "abs", "round", "ceil", "floor"})
STRING_FUNCTIONS = frozenset({"lower", "upper"})


@dataclass(frozen=True, slots=True)
class Problem:
    code: str
    message: str
    pos: Pos


def unify(a: Type, b: Type) -> Type | None:
    """The type two values share (for a comparison, an `in` list, coalesce), or None."""
    if Type.ERROR in (a, b):
        return Type.ERROR
    if a is b or b is Type.NULL:
        return a
    if a is Type.NULL:
        return b
    if Type.PROPERTY in (a, b):
        other = b if a is Type.PROPERTY else a
        return other if other in (Type.NUMBER, Type.STRING) else None
    return None


def comparison_type(left: Type, right: Type, op: str) -> Type:
    """What a (well-typed) comparison compares: two properties as text for equality and as
    numbers for an ordering; a string literal against a timestamp as a timestamp."""
    if Type.TIMESTAMP in (left, right):
        return Type.TIMESTAMP
    common = unify(left, right) or Type.NULL
    if common is Type.PROPERTY:
        return Type.NUMBER if op in ORDERING else Type.STRING
    return common


def accepts(wanted: Type, kind: Type) -> bool:
    """Whether a value of type `kind` can stand where `wanted` (a number or a boolean) is needed."""
    return kind in (wanted, Type.NULL, Type.ERROR) or (wanted is Type.NUMBER and kind is Type.PROPERTY)


@dataclass(slots=True)
class _Checker:
    problems: list[Problem] = field(default_factory=list)
    types: dict[Node, Type] = field(default_factory=dict)
    instants: set[str] = field(default_factory=set)  # string literals read as timestamps

    def fail(self, code: str, message: str, pos: Pos) -> None:
        self.problems.append(Problem(code, message, pos))

    def type(self, node: Node) -> Type:
        kind = self._infer(node)
        self.types[node] = kind
        return kind

    def need(self, node: Node, wanted: Type, what: str) -> None:
        """`node` must be usable as `wanted` (a number or a boolean) in `what`."""
        kind = self.type(node)
        if accepts(wanted, kind):
            return
        if kind is Type.PROPERTY:  # a property where a boolean is needed
            message = (
                f"{what} needs true or false, and a property is a string or a number: "
                'compare it (x == "yes") or test it (x is not null)'
            )
        else:
            message = f"{what} needs {wanted.value}, not {kind.value}"
        self.fail("E602", message, node.pos)

    def _infer(self, node: Node) -> Type:
        if isinstance(node, Literal):
            return self._literal(node)
        if isinstance(node, Property):
            return Type.PROPERTY
        if isinstance(node, EventField):
            return Type.STRING if node.name == "event_type" else Type.TIMESTAMP
        if isinstance(node, Unary):
            if node.op == "not":
                self.need(node.operand, Type.BOOLEAN, "'not'")
                return Type.BOOLEAN
            self.need(node.operand, Type.NUMBER, "'-'")
            return Type.NUMBER
        if isinstance(node, Binary):
            return self._binary(node)
        if isinstance(node, InList):
            return self._in_list(node)
        if isinstance(node, IsNull):
            self.type(node.operand)
            return Type.BOOLEAN
        return self._call(node)

    def _literal(self, node: Literal) -> Type:
        value = node.value
        if value is None:
            return Type.NULL
        if isinstance(value, bool):
            return Type.BOOLEAN
        if isinstance(value, str):
            return Type.STRING
        exponent = plain(value).as_tuple().exponent  # exactly, however many digits it has
        assert isinstance(exponent, int)  # the grammar reads finite numbers only
        if exponent < -MAX_PLACES:
            self.fail("E606", f"{value:f} has more than {MAX_PLACES} decimal places", node.pos)
        elif value != 0 and value.adjusted() >= MAX_EXPONENT:
            self.fail("E606", f"{value:f} is too large: numbers stay below 10^{MAX_EXPONENT}", node.pos)
        return Type.NUMBER

    def _binary(self, node: Binary) -> Type:
        op = node.op
        if op in LOGIC:
            self.need(node.left, Type.BOOLEAN, f"'{op}'")
            self.need(node.right, Type.BOOLEAN, f"'{op}'")
            return Type.BOOLEAN
        if op in ARITHMETIC:
            self.need(node.left, Type.NUMBER, f"'{op}'")
            self.need(node.right, Type.NUMBER, f"'{op}'")
            return Type.NUMBER
        left, right = self.type(node.left), self.type(node.right)
        if Type.NULL in (left, right) and op in EQUALITY:
            test = "is null" if op == "==" else "is not null"
            self.fail("E602", f"a comparison with null is never true: write '{test}'", node.pos)
        elif Type.TIMESTAMP in (left, right):
            self._timestamp_operand(node.right if left is Type.TIMESTAMP else node.left, op)
        elif unify(left, right) is None:
            self.fail("E602", f"cannot compare {left.value} with {right.value}", node.pos)
        elif unify(left, right) is Type.BOOLEAN and op in ORDERING:
            self.fail("E602", f"'{op}' orders numbers, strings and timestamps, not booleans", node.pos)
        return Type.BOOLEAN

    def _timestamp_operand(self, other: Node, op: str) -> None:
        """The other side of a comparison with `timestamp`: a timestamp or a string literal."""
        kind = self.types[other]
        if isinstance(other, Literal) and isinstance(other.value, str):
            self.instants.add(other.value)
        elif kind is not Type.TIMESTAMP:
            message = f"'{op}' compares timestamp with a timestamp text such as \"2026-01-01T00:00:00Z\""
            self.fail("E602", f"{message}, not {kind.value}", other.pos)

    def _in_list(self, node: InList) -> Type:
        operand = self.type(node.operand)
        common: Type | None = Type.NULL
        for value in node.values:
            kind = self.type(value)
            if kind is Type.NULL:
                self.fail("E602", "null in a list never matches: test it with 'is null'", value.pos)
                continue
            if operand is Type.TIMESTAMP and kind is Type.STRING:
                assert isinstance(value.value, str)
                self.instants.add(value.value)
                continue
            if common is not None:
                merged = unify(common, kind)
                if merged is None:
                    self.fail("E602", f"a list mixes {common.value} and {kind.value}", value.pos)
                common = merged
        if common is not None and operand is not Type.TIMESTAMP and unify(operand, common) is None:
            listed = common.value.removeprefix("a ")
            self.fail("E602", f"cannot look for {operand.value} in a list of {listed}s", node.pos)
        return Type.BOOLEAN

    def _call(self, node: Call) -> Type:
        name = node.function
        if name not in FUNCTIONS:
            suggestion = did_you_mean(name, FUNCTIONS)
            known = ", ".join(FUNCTIONS)
            self.fail(
                "E603", f"unknown function '{name}'.{suggestion or f' The functions: {known}.'}", node.pos
            )
            for arg in node.args:
                self.type(arg)
            return Type.ERROR
        fewest, most = FUNCTIONS[name]
        count = len(node.args)
        if count < fewest or (most is not None and count > most):
            expected = (
                f"{fewest}" if fewest == most else f"{fewest} or {most}" if most else f"{fewest} or more"
            )
            plural = "" if expected == "1" else "s"
            self.fail("E604", f"{name}() takes {expected} argument{plural}, not {count}", node.pos)
        if name in NUMERIC_FUNCTIONS:
            numbers = node.args[:1] if name == "round" else node.args
            for arg in numbers:
                self.need(arg, Type.NUMBER, f"{name}()")
            if name == "round":
                self._round_places(node)
            return Type.NUMBER
        if name in STRING_FUNCTIONS:
            for arg in node.args:
                kind = self.type(arg)
                if unify(kind, Type.STRING) is None:
                    self.fail("E602", f"{name}() needs a string, not {kind.value}", arg.pos)
            return Type.STRING
        return self._coalesce(node)

    def _round_places(self, node: Call) -> None:
        for places in node.args[1:2]:
            self.type(places)
            value = places.value if isinstance(places, Literal) else None
            if not (isinstance(value, Decimal) and value == value.to_integral() and 0 <= value <= MAX_PLACES):
                message = f"round()'s second argument is a whole number of decimal places, 0 to {MAX_PLACES}"
                self.fail("E606", message, places.pos)

    def _coalesce(self, node: Call) -> Type:
        common: Type | None = Type.NULL
        for arg in node.args:
            kind = self.type(arg)
            merged = None if common is None else unify(common, kind)
            if merged is None and common is not None:
                self.fail("E602", f"coalesce() mixes {common.value} and {kind.value}", arg.pos)
            common = merged
        return common or Type.ERROR


ROLES = {"filter": Type.BOOLEAN, "value": Type.NUMBER}


@dataclass(frozen=True, slots=True)
class Typing:
    problems: tuple[Problem, ...]
    types: dict[Node, Type]
    instants: frozenset[str]


def check(ast: Node, role: str) -> Typing:
    """Type `ast` as a metric's `filter` (boolean) or `value` (numeric)."""
    checker = _Checker()
    kind, wanted = checker.type(ast), ROLES[role]
    if not accepts(wanted, kind) or kind is Type.NULL:
        checker.fail("E605", f"a {role} must be {wanted.value}, but this is {kind.value}", ast.pos)
    return Typing(tuple(checker.problems), checker.types, frozenset(checker.instants))
