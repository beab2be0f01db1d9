"""Parsing expressions with lark (LALR, grammar.lark as package data) into the frozen AST."""

from __future__ import annotations

import ast as python_ast
from decimal import Decimal
from functools import cache
from importlib import resources

from lark import Lark, Token, Transformer, Tree, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken, VisitError

from pricing.expr.ast import (
    EVENT_FIELDS,
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
)

_TOKEN_NAMES = {
    "NAME": "a name",
    "NUMBER": "a number",
    "STRING": "a string",
    "LPAR": "'('",
    "RPAR": "')'",
    "LSQB": "'['",
    "RSQB": "']'",
    "COMMA": "','",
    "COMPARE": "a comparison",
    "ADD": "'+' or '-'",
    "MUL": "'*' or '/'",
    "MINUS": "'-'",
    "$END": "the end",
}


class ExpressionSyntaxError(Exception):
    """A located parse error: line and column are 1-based, within the expression text."""

    def __init__(self, message: str, line: int, column: int) -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.column = column


@cache
def _parser() -> Lark:
    grammar = resources.files("pricing.expr").joinpath("grammar.lark").read_text("utf-8")
    return Lark(grammar, parser="lalr", propagate_positions=True, maybe_placeholders=False)


def _pos(item: Tree[Token] | Token) -> Pos:
    meta = item.meta if isinstance(item, Tree) else item
    return Pos(int(meta.line or 1), int(meta.column or 1))


def _string(token: Token) -> str:
    # Both quote styles with backslash escapes, as Python reads them.
    value = python_ast.literal_eval(str(token))
    assert isinstance(value, str)
    return value


@v_args(tree=True)
class _ToAst(Transformer[Token, Node]):
    def number(self, tree: Tree[Token]) -> Literal:
        return Literal(Decimal(str(tree.children[0])), _pos(tree))

    def negative_number(self, tree: Tree[Token]) -> Literal:
        return Literal(Decimal(str(tree.children[0])).copy_negate(), _pos(tree))

    def string(self, tree: Tree[Token]) -> Literal:
        token = tree.children[0]
        assert isinstance(token, Token)
        return Literal(_string(token), _pos(tree))

    def true(self, tree: Tree[Token]) -> Literal:
        return Literal(True, _pos(tree))

    def false(self, tree: Tree[Token]) -> Literal:
        return Literal(False, _pos(tree))

    def null(self, tree: Tree[Token]) -> Literal:
        return Literal(None, _pos(tree))

    def name(self, tree: Tree[Token]) -> Node:
        name = str(tree.children[0])
        return EventField(name, _pos(tree)) if name in EVENT_FIELDS else Property(name, _pos(tree))

    def subscript(self, tree: Tree[Token]) -> Property:
        base, key = tree.children
        assert isinstance(base, Token)
        assert isinstance(key, Token)
        if str(base) != "properties":
            raise ExpressionSyntaxError(
                f"only properties[...] can be indexed, not {base}", base.line or 1, base.column or 1
            )
        return Property(_string(key), _pos(tree))

    def call(self, tree: Tree[Token]) -> Call:
        function, *args = tree.children
        return Call(str(function), tuple(args), _pos(tree))  # type: ignore[arg-type]

    def negate(self, tree: Tree[Token]) -> Node:
        (operand,) = tree.children
        if isinstance(operand, Literal) and isinstance(operand.value, Decimal):
            return Literal(operand.value.copy_negate(), _pos(tree))
        return Unary("-", operand, _pos(tree))  # type: ignore[arg-type]

    def not_(self, tree: Tree[Token]) -> Unary:
        return Unary("not", tree.children[0], _pos(tree))  # type: ignore[arg-type]

    def _binary(self, tree: Tree[Token], op: str) -> Binary:
        left, right = tree.children
        return Binary(op, left, right, _pos(tree))  # type: ignore[arg-type]

    def or_(self, tree: Tree[Token]) -> Binary:
        return self._binary(tree, "or")

    def and_(self, tree: Tree[Token]) -> Binary:
        return self._binary(tree, "and")

    def compare(self, tree: Tree[Token]) -> Binary:
        left, op, right = tree.children
        return Binary(str(op), left, right, _pos(tree))  # type: ignore[arg-type]

    arithmetic = compare

    def list(self, tree: Tree[Token]) -> tuple[Literal, ...]:
        return tuple(tree.children)  # type: ignore[arg-type]

    def in_(self, tree: Tree[Token]) -> InList:
        operand, values = tree.children
        return InList(operand, values, False, _pos(tree))  # type: ignore[arg-type]

    def not_in(self, tree: Tree[Token]) -> InList:
        operand, values = tree.children
        return InList(operand, values, True, _pos(tree))  # type: ignore[arg-type]

    def is_null(self, tree: Tree[Token]) -> IsNull:
        return IsNull(tree.children[0], False, _pos(tree))  # type: ignore[arg-type]

    def is_not_null(self, tree: Tree[Token]) -> IsNull:
        return IsNull(tree.children[0], True, _pos(tree))  # type: ignore[arg-type]


def _expected(error: UnexpectedInput) -> str:
    expected = sorted(getattr(error, "expected", None) or getattr(error, "allowed", None) or ())
    names = sorted({_TOKEN_NAMES.get(e, f"'{e.lower()}'" if e.isalpha() else e) for e in expected})
    if not names:
        return ""
    return "; expected " + (names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1])


def parse(text: str) -> Node:
    """The AST of an expression, or ExpressionSyntaxError at the offending character."""
    try:
        tree = _parser().parse(text)
        return _ToAst().transform(tree)
    except VisitError as exc:  # an error raised inside the transformer
        if isinstance(exc.orig_exc, ExpressionSyntaxError):
            raise exc.orig_exc from None
        raise
    except UnexpectedEOF as exc:
        lines = text.splitlines() or [""]
        raise ExpressionSyntaxError(
            "the expression ends too early" + _expected(exc), len(lines), len(lines[-1]) + 1
        ) from None
    except UnexpectedToken as exc:
        token = exc.token
        if token.type == "$END":
            lines = text.splitlines() or [""]
            message = "the expression ends too early" + _expected(exc)
            raise ExpressionSyntaxError(message, len(lines), len(lines[-1]) + 1) from None
        message = f"unexpected '{token}'" + _expected(exc)
        raise ExpressionSyntaxError(message, token.line or 1, token.column or 1) from None
    except UnexpectedCharacters as exc:
        position = exc.pos_in_stream or 0
        char = text[position] if position < len(text) else ""
        message = f"unexpected character '{char}'" + _expected(exc)
        raise ExpressionSyntaxError(message, exc.line, exc.column) from None
