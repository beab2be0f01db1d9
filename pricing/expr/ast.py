"""The expression AST: frozen nodes, each with its position (1-based line and column) in the
expression text. `unparse` writes an AST back as text that parses to the same AST."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from decimal import Decimal


@dataclass(frozen=True, slots=True)
class Pos:
    line: int
    column: int


@dataclass(frozen=True, slots=True)
class Literal:
    value: Decimal | str | bool | None
    pos: Pos = field(compare=False)


@dataclass(frozen=True, slots=True)
class Property:
    """An event property, by bare name or as properties["any name"]."""

    name: str
    pos: Pos = field(compare=False)


@dataclass(frozen=True, slots=True)
class EventField:
    """`event_type` or `timestamp`."""

    name: str
    pos: Pos = field(compare=False)


@dataclass(frozen=True, slots=True)
class Unary:
    op: str  # "-" or "not"
    operand: Node
    pos: Pos = field(compare=False)


@dataclass(frozen=True, slots=True)
class Binary:
    op: str  # + - * / == != < <= > >= and or
    left: Node
    right: Node
    pos: Pos = field(compare=False)


@dataclass(frozen=True, slots=True)
class InList:
    operand: Node
    values: tuple[Literal, ...]
    negated: bool
    pos: Pos = field(compare=False)


@dataclass(frozen=True, slots=True)
class IsNull:
    operand: Node
    negated: bool
    pos: Pos = field(compare=False)


@dataclass(frozen=True, slots=True)
class Call:
    function: str
    args: tuple[Node, ...]
    pos: Pos = field(compare=False)


Node = Literal | Property | EventField | Unary | Binary | InList | IsNull | Call

EVENT_FIELDS = ("event_type", "timestamp")
KEYWORDS = frozenset({"and", "or", "not", "in", "is", "null", "true", "false"})
# Binding strength, loosest first; used by `unparse` to parenthesise only where needed.
_LEVEL = {"or": 1, "and": 2, "not": 3, "compare": 4, "+": 5, "-": 5, "*": 6, "/": 6, "neg": 7, "atom": 8}
_COMPARE = frozenset({"==", "!=", "<", "<=", ">", ">="})


def _level(node: Node) -> int:
    if isinstance(node, Binary):
        return _LEVEL["compare"] if node.op in _COMPARE else _LEVEL[node.op]
    if isinstance(node, InList | IsNull):
        return _LEVEL["compare"]
    if isinstance(node, Unary):
        return _LEVEL["not"] if node.op == "not" else _LEVEL["neg"]
    return _LEVEL["atom"]


def _literal(value: Decimal | str | bool | None) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return format(value, "f")  # exact, sign included
    return json.dumps(value, ensure_ascii=False)


def unparse(node: Node) -> str:
    """The expression as text, with parentheses only where precedence needs them."""

    def wrap(child: Node, minimum: int) -> str:
        text = unparse(child)
        return f"({text})" if _level(child) < minimum else text

    if isinstance(node, Literal):
        text = _literal(node.value)
        return f"({text})" if text.startswith("-") else text
    if isinstance(node, Property):
        bare = node.name.isidentifier() and node.name.isascii()
        if bare and node.name not in KEYWORDS and node.name not in EVENT_FIELDS and node.name != "properties":
            return node.name
        return f"properties[{json.dumps(node.name, ensure_ascii=False)}]"
    if isinstance(node, EventField):
        return node.name
    if isinstance(node, Unary):
        if node.op == "not":
            return f"not {wrap(node.operand, _LEVEL['not'])}"
        return f"-{wrap(node.operand, _LEVEL['neg'])}"
    if isinstance(node, Binary):
        level = _level(node)
        # Left-associative: the right operand of an equal-level operator needs parentheses.
        # Comparisons do not chain, so both sides of one bind tighter.
        left_min = level + 1 if node.op in _COMPARE else level
        return f"{wrap(node.left, left_min)} {node.op} {wrap(node.right, level + 1)}"
    if isinstance(node, InList):
        values = ", ".join(_literal(v.value) for v in node.values)
        keyword = "not in" if node.negated else "in"
        return f"{wrap(node.operand, _LEVEL['+'])} {keyword} [{values}]"
    if isinstance(node, IsNull):
        keyword = "is not null" if node.negated else "is null"
        return f"{wrap(node.operand, _LEVEL['+'])} {keyword}"
    return f"{node.function}({', '.join(unparse(a) for a in node.args)})"


def properties(node: Node) -> set[str]:
    """The names of the event properties an expression reads."""
    if isinstance(node, Property):
        return {node.name}
    children: tuple[Node, ...] = ()
    if isinstance(node, Unary):
        children = (node.operand,)
    elif isinstance(node, Binary):
        children = (node.left, node.right)
    elif isinstance(node, InList | IsNull):
        children = (node.operand,)
    elif isinstance(node, Call):
        children = node.args
    return set().union(*(properties(c) for c in children))
