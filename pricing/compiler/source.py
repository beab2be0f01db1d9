"""Stage 1 — source: the YAML files of a spec project, as plain data plus a source map.

The data holds only dicts, lists, str, int, Decimal, bool and None. Scalars are typed by a
strict subset of the YAML 1.2 core schema, never by YAML 1.1's implicit rules: `1.10` is the
exact decimal 1.10, `on`/`yes` and `2026-01-01` stay strings, and numbers are never floats.
Every node's position lives beside the data in a `SourceMap` keyed by its JSON path.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Protocol

import yaml
from yaml._yaml import get_version as libyaml_version
from yaml.cyaml import CParser  # type: ignore[attr-defined]
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from pricing.diagnostics import Diagnostic, Related, Span, error

JsonPath = tuple[str | int, ...]

MANIFEST = "pricing.yaml"
TEMPLATES = "templates"
# Aliases may repeat a node; this caps what a hostile "billion laughs" file can expand to.
MAX_NODES = 1_000_000
# libyaml's composer recurses on the C stack: 20,000 levels it takes, 30,000 crashed the
# process (a segmentation fault). Before 0.2.6, which stops past MAX_DEPTH levels itself, a
# file that may nest deeper than this is measured first (a second parse: 0.9 s of checking a
# 50,000-object project, whose big files have more brackets than this).
_SAFE_DEPTH = 10_000
MAX_DEPTH = 1_000  # libyaml 0.2.6's own limit, so that its versions say the same
_MEASURE_FIRST = libyaml_version() < (0, 2, 6)
_LIBYAML_DEPTH = "exceeded maximum nesting depth"  # (its error's problem)

_YAML = "tag:yaml.org,2002:"
_PLAIN = "!plain"  # the tag our resolver gives an untagged plain scalar
_NULL = frozenset({"", "~", "null", "Null", "NULL"})
_TRUE = frozenset({"true", "True", "TRUE"})
_FALSE = frozenset({"false", "False", "FALSE"})
_DIGITS = r"[0-9](?:_?[0-9])*"  # a `_` separates two digits, as in Python's literals
_INT = re.compile(rf"[-+]?{_DIGITS}")
_DECIMAL = re.compile(rf"[-+]?(?:{_DIGITS}(?:\.(?:{_DIGITS})?)?|\.{_DIGITS})(?:[eE][-+]?[0-9]+)?")


_DEFAULT_TAGS = {
    ScalarNode: yaml.resolver.BaseResolver.DEFAULT_SCALAR_TAG,
    SequenceNode: yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG,
    MappingNode: yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
}


class _Resolver(yaml.resolver.BaseResolver):
    """Tags untagged plain scalars as `!plain` so that we, not YAML 1.1, decide their type; any
    other node without a tag gets the default of its kind, as BaseResolver (no implicit or path
    resolvers) gives it — here without its general lookups: libyaml's composer asks once a node."""

    def resolve(self, kind: type, value: Any, implicit: Any) -> str:
        if kind is ScalarNode and implicit[0]:
            return _PLAIN
        return _DEFAULT_TAGS[kind]


class _Loader(CParser, _Resolver):
    """libyaml's parser and composer (fast; in every PyYAML wheel) with our resolver."""

    def __init__(self, stream: str) -> None:
        CParser.__init__(self, stream)
        _Resolver.__init__(self)


Position = tuple[int, int, int, int]  # a YAML node's start line and column, end line and column (0-based)


@dataclass(frozen=True, slots=True)
class SourceMap:
    """Where each node of one file's data came from: JSON path → the position of its value / of
    its key, made a `Span` when asked for (most never are: 26,000 spans of a 4,000-object file
    took 30 ms to make, more than converting the nodes themselves). A position is a tuple of four
    ints, which the cyclic collector stops walking, where a YAML node is three objects (it and
    its two marks): keeping the nodes made the collection after loading a 50,000-object project
    take 1.4 s instead of 0.6."""

    file: str
    values: Mapping[JsonPath, Position]
    keys: Mapping[JsonPath, Position]

    def value(self, path: JsonPath) -> Span:
        """The span of the node at `path`, or of its nearest located ancestor."""
        for depth in range(len(path), -1, -1):
            position = self.values.get(path[:depth])
            if position is not None:
                return _span_at(self.file, position)
        return Span.point(self.file)

    def key(self, path: JsonPath) -> Span:
        """The span of the key that names the node at `path` (its value's span for list items)."""
        position = self.keys.get(path)
        return _span_at(self.file, position) if position is not None else self.value(path)


@dataclass(frozen=True, slots=True)
class Document:
    file: str  # path relative to the project root, with forward slashes
    data: dict[str, Any]
    source_map: SourceMap
    lines: tuple[str, ...] = field(default=(), repr=False)  # the text, to locate inside scalars


@dataclass(frozen=True, slots=True)
class Sources:
    """Every YAML file of a spec project, read."""

    root: Path
    manifest: Document | None
    documents: tuple[Document, ...]  # the object files, in path order
    spec_hash: str


def _position(node: Node) -> Position:
    start, end = node.start_mark, node.end_mark
    return start.line, start.column, end.line, end.column


def _span_at(file: str, position: Position) -> Span:
    line, column, end_line, end_col = position
    # A block node's end mark can sit at column 0 of the next line; pull it back to the line end.
    if end_col == 0 and end_line > line:
        end_line, end_col = end_line - 1, 10_000
    return Span(file, line + 1, column + 1, end_line + 1, end_col + 1)


def _span(file: str, node: Node) -> Span:
    return _span_at(file, _position(node))


class _Converter:
    """Turns a composed YAML node tree into plain data, recording spans and problems."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.values: dict[JsonPath, Position] = {}
        self.keys: dict[JsonPath, Position] = {}
        self.diagnostics: list[Diagnostic] = []
        self._active: set[int] = set()
        self._count = 0

    def convert(self, node: Node, path: JsonPath) -> Any:
        self._count += 1
        if self._count > MAX_NODES:
            raise _TooLarge(_span(self.file, node))
        self.values[path] = _position(node)
        if isinstance(node, ScalarNode):
            return self._scalar(node)
        if id(node) in self._active:
            self.diagnostics.append(
                error("E104", "a YAML alias refers to a node that contains it", _span(self.file, node))
            )
            return None
        self._active.add(id(node))
        try:
            if isinstance(node, SequenceNode):
                self._check_tag(node, "seq")
                return [self.convert(item, (*path, i)) for i, item in enumerate(node.value)]
            assert isinstance(node, MappingNode)
            self._check_tag(node, "map")
            result: dict[str, Any] = {}
            self._mapping(node, path, result, explicit=True)
            return result
        finally:
            self._active.discard(id(node))

    def _mapping(self, node: MappingNode, path: JsonPath, result: dict[str, Any], *, explicit: bool) -> None:
        merges: list[Node] = []
        for key_node, value_node in node.value:
            if not isinstance(key_node, ScalarNode):
                self.diagnostics.append(
                    error("E104", "a mapping key must be a plain value", _span(self.file, key_node))
                )
                continue
            key = str(key_node.value)
            if key == "<<" and key_node.tag == _PLAIN:
                merges.append(value_node)
                continue
            key_path = (*path, key)
            if key in result:
                if explicit:
                    self.diagnostics.append(
                        error(
                            "E102",
                            f"duplicate key '{key}' in one mapping; a later value would silently "
                            "replace the first: keep one",
                            _span(self.file, key_node),
                            Related("first defined here", _span_at(self.file, self.keys[key_path])),
                        )
                    )
                continue
            self.keys[key_path] = _position(key_node)
            result[key] = self.convert(value_node, key_path)
        for merge in merges:  # `<<: *anchor` — explicit keys win over merged ones
            sources = merge.value if isinstance(merge, SequenceNode) else [merge]
            for source in sources:
                if isinstance(source, MappingNode):
                    self._mapping(source, path, result, explicit=False)
                else:
                    self.diagnostics.append(
                        error("E104", "'<<' merges only mappings", _span(self.file, source))
                    )

    def _check_tag(self, node: Node, kind: str) -> None:
        if node.tag != _YAML + kind:
            self.diagnostics.append(
                error("E104", f"unsupported YAML tag '{node.tag}'", _span(self.file, node))
            )

    def _scalar(self, node: ScalarNode) -> Any:
        text = str(node.value)
        tag = node.tag
        if tag == _PLAIN:
            return plain_scalar(text)
        if tag == _YAML + "str":
            return text
        value: Any = None
        if tag == _YAML + "null" and text in _NULL:
            return None
        if tag == _YAML + "int" and _INT.fullmatch(text):
            value = int(text)
        elif tag == _YAML + "float" and _DECIMAL.fullmatch(text):
            value = Decimal(text)
        elif tag == _YAML + "bool" and text in _TRUE | _FALSE:
            value = text in _TRUE
        if value is not None:
            return value
        if tag in (_YAML + "int", _YAML + "float", _YAML + "bool", _YAML + "null"):
            message = f"'{text}' is not a valid {tag.removeprefix(_YAML)}"
        else:
            message = f"unsupported YAML tag '{tag}'; write the value without a tag"
        self.diagnostics.append(error("E104", message, _span(self.file, node)))
        return text


def plain_scalar(text: str) -> Any:
    """The value of an untagged plain scalar: null, bool, int, exact Decimal, else the text."""
    if text in _NULL:
        return None
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    if _INT.fullmatch(text):
        return int(text)
    if _DECIMAL.fullmatch(text):
        try:
            return Decimal(text)
        except InvalidOperation:  # pragma: no cover - the pattern admits only valid decimals
            return text
    return text


class _TooLarge(Exception):
    def __init__(self, span: Span) -> None:
        self.span = span


def parse_yaml(file: str, text: str) -> tuple[Document, list[Diagnostic]]:
    """Parse one file's text. A broken file yields an empty document and its diagnostics."""
    converter = _Converter(file)
    empty = Document(file, {}, SourceMap(file, {}, {}))
    if _MEASURE_FIRST and _may_nest(text, _SAFE_DEPTH) and (deepest := _deepest(text))[0] > MAX_DEPTH:
        return empty, [_too_deep(file, deepest)]
    try:
        nodes = list(_compose_all(text))
    except yaml.MarkedYAMLError as exc:
        if _LIBYAML_DEPTH in (exc.problem or ""):
            return empty, [_too_deep(file, (MAX_DEPTH + 1, *_place(exc.problem_mark)))]
        line, column = _place(exc.problem_mark or exc.context_mark)
        problem = exc.problem or exc.context or "invalid YAML"
        context = f" ({exc.context})" if exc.context and exc.problem else ""
        message = f"YAML syntax error: {problem}{context}"
        return empty, [error("E101", message, Span.point(file, line, column))]
    except yaml.reader.ReaderError as exc:  # a character YAML does not allow: where it is
        before = text[: exc.position]
        line, column = before.count("\n") + 1, exc.position - before.rfind("\n")
        message = f"YAML syntax error: unacceptable character #x{exc.character:04x}: {exc.reason}"
        return empty, [error("E101", message, Span(file, line, column, line, column + 1))]
    except yaml.YAMLError as exc:
        return empty, [error("E101", f"YAML syntax error: {exc}", Span.point(file))]
    if not nodes:
        return empty, []
    if len(nodes) > 1:
        span = _span(file, nodes[1])
        return empty, [error("E101", "a spec file holds one YAML document; split it in two", span)]
    try:
        data = converter.convert(nodes[0], ())
    except _TooLarge as exc:
        message = f"the document expands to more than {MAX_NODES} nodes through aliases"
        return empty, [error("E104", message, exc.span)]
    except RecursionError:
        return empty, [_too_deep(file, _deepest(text))]
    if data is None:
        return empty, converter.diagnostics
    if not isinstance(data, dict):
        span = _span_at(file, converter.values[()])
        message = "a spec file must be a mapping of section names (metrics, products, …) to objects"
        return empty, [*converter.diagnostics, error("E105", message, span)]
    source_map = SourceMap(file, converter.values, converter.keys)
    return Document(file, data, source_map, tuple(text.splitlines())), converter.diagnostics


def _may_nest(text: str, depth: int) -> bool:
    """Whether a cheap bound on a document's nesting exceeds `depth`: flow brackets, plus twice
    the longest run of indentation and block indicators starting a line. Spec files never come
    near 10,000 (the benchmark's 4,000 objects: 6,000 brackets, 1 ms to bound; counting the
    events, which `_deepest` does, would take 30 ms there)."""
    room = (depth - text.count("[") - text.count("{") - 2) // 2  # for a line's start
    return room < 0 or re.search(rf"^[ ?-]{{{room + 1},}}", text, re.MULTILINE) is not None


def _deepest(text: str) -> tuple[int, int, int]:
    """How deep a document nests, as far as MAX_DEPTH + 1, and where (line and column, from 1)
    it first gets that deep, from libyaml's parser, which does not recurse; libyaml 0.2.6 stops
    past MAX_DEPTH levels itself, with an error there. (0, 1, 1) for a broken document: the
    composer finds the same error, and says where."""
    parser = CParser(text)
    deepest = (0, 1, 1)
    try:
        depth = 0
        while deepest[0] <= MAX_DEPTH and parser.check_event():
            event = parser.get_event()
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                if depth > deepest[0]:
                    deepest = (depth, *_place(event.start_mark))
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
    except yaml.MarkedYAMLError as exc:
        if _LIBYAML_DEPTH in (exc.problem or ""):
            deepest = (MAX_DEPTH + 1, *_place(exc.problem_mark))
    except yaml.YAMLError:
        pass
    finally:
        parser.dispose()
    return deepest


class _Mark(Protocol):  # (the C parser's marks and PyYAML's)
    line: int
    column: int


def _place(mark: _Mark | None) -> tuple[int, int]:
    return (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)


def _too_deep(file: str, deepest: tuple[int, int, int]) -> Diagnostic:
    depth, line, column = deepest
    if depth > MAX_DEPTH:
        message = f"the document is nested more than {MAX_DEPTH} levels deep"
    else:  # (converting the nodes recurses in Python: it stops at 500 levels or so)
        message = f"the document is nested too deeply: {depth} levels here"
    return error("E104", message, Span.point(file, line, column))


def _compose_all(text: str) -> Iterator[Node]:
    loader = _Loader(text)
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is not None:
                yield node
    finally:
        loader.dispose()


def _byte_at(file: str, raw: bytes, offset: int) -> Span:
    """Where the byte at `offset` is: its line, and its column counted in the characters before
    it on that line (as an editor shows them, undecodable ones one each)."""
    line, line_start = raw.count(b"\n", 0, offset) + 1, raw.rfind(b"\n", 0, offset) + 1
    column = len(raw[line_start:offset].decode("utf-8-sig" if line_start == 0 else "utf-8", "replace")) + 1
    return Span(file, line, column, line, column + 1)


def spec_files(root: Path) -> list[Path]:
    """The YAML files of a project, manifest excluded, in path order (templates/ skipped)."""
    found = []
    for path in root.rglob("*"):
        rel = path.relative_to(root)
        if any(part.startswith(".") for part in rel.parts) or rel.parts[0] == TEMPLATES:
            continue
        if path.suffix in (".yaml", ".yml") and path.is_file() and rel.as_posix() != MANIFEST:
            found.append(path)
    return sorted(found, key=lambda p: p.relative_to(root).as_posix())


def read_sources(root: Path) -> tuple[Sources, list[Diagnostic]]:
    """Read and parse every YAML file of the project at `root`."""
    diagnostics: list[Diagnostic] = []
    digest = hashlib.sha256()

    def read(path: Path) -> Document | None:
        rel = path.relative_to(root).as_posix()
        raw = path.read_bytes()
        digest.update(rel.encode() + b"\0" + raw + b"\0")
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            diagnostics.append(error("E101", f"not UTF-8 text: {exc.reason}", _byte_at(rel, raw, exc.start)))
            return None
        document, problems = parse_yaml(rel, text)
        diagnostics.extend(problems)
        return document

    manifest_path = root / MANIFEST
    manifest = None
    if manifest_path.is_file():
        manifest = read(manifest_path)
    else:
        message = (
            f"no {MANIFEST} in this folder: a spec project starts with its manifest (version: 1, name: …)"
        )
        diagnostics.append(error("E105", message, Span.point(MANIFEST)))
    documents = [doc for path in spec_files(root) if (doc := read(path)) is not None]
    sources = Sources(root, manifest, tuple(documents), digest.hexdigest())
    return sources, diagnostics
