"""Stage 2 — schema: JSON Schema (Draft 2020-12) validation, errors located through the source map.

The schema is package data (`pricing/schemas/pricing.schema.json`) and is what `pricing schema`
prints for editors. Each jsonschema error becomes one diagnostic at the offending node — an
unknown key at the key itself — with a message that says what to write instead.

Two validators of the one schema: jsonschema-rs (compiled) answers whether a document is valid,
about fifty times faster; only a document it rejects is validated again by jsonschema, whose
errors carry the paths and context the diagnostics are made from. Where the two can differ,
jsonschema-rs is the stricter (ECMA regular expressions: `$` does not match before a final
newline; a NaN is not a number), so jsonschema has the last word; a property test holds their
verdicts equal on mutated specs.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any, cast

import jsonschema_rs

from pricing.compiler.source import Document, JsonPath
from pricing.diagnostics import Diagnostic, Span, did_you_mean, error

if TYPE_CHECKING:  # jsonschema is imported when a document is invalid (a fifth of the package's import)
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import ValidationError

SCHEMA_FILE = "pricing.schema.json"

_TYPE_NAMES = {
    "string": "text",
    "number": "a number",
    "integer": "a whole number",
    "boolean": "true or false",
    "object": "a mapping",
    "array": "a list",
    "null": "nothing",
}


def schema_text() -> str:
    return resources.files("pricing.schemas").joinpath(SCHEMA_FILE).read_text("utf-8")


@cache
def schema() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(schema_text())
    return loaded


def _is_integer(checker: Any, instance: object) -> bool:
    from jsonschema import Draft202012Validator

    if isinstance(instance, Decimal):
        return instance.is_finite() and instance == instance.to_integral_value()
    return bool(Draft202012Validator.TYPE_CHECKER.is_type(instance, "integer"))


def _inlined(node: Any, defs: dict[str, Any]) -> Any:
    """`node` with every `#/$defs/…` reference replaced by the definition itself (the schema has
    no cycles). Validation then never resolves a reference — a third of its time otherwise —
    and reports the same errors: a reference's siblings (`minItems`) only add keywords."""
    if isinstance(node, list):
        return [_inlined(item, defs) for item in node]
    if not isinstance(node, dict):
        return node
    inlined = {k: _inlined(v, defs) for k, v in node.items() if k not in ("$ref", "$defs")}
    if "$ref" in node:
        target = _inlined(defs[node["$ref"].removeprefix("#/$defs/")], defs)
        if set(target) & set(inlined):
            raise AssertionError(f"a reference's siblings repeat a keyword: {node}")
        inlined = {**target, **inlined}
    return inlined


@cache
def _validators() -> tuple[Draft202012Validator, Draft202012Validator]:
    import jsonschema
    from jsonschema import Draft202012Validator

    root = schema()
    checker = Draft202012Validator.TYPE_CHECKER.redefine("integer", _is_integer)
    cls = jsonschema.validators.extend(Draft202012Validator, type_checker=checker)  # type: ignore[no-untyped-call]
    spec = cls(_inlined(root, root["$defs"]))
    manifest = cls(_inlined(root["$defs"]["manifest"], root["$defs"]))
    return spec, manifest


@cache
def _fast_validators() -> tuple[jsonschema_rs.Validator, jsonschema_rs.Validator]:
    root = schema()
    manifest = {**root["$defs"]["manifest"], "$defs": root["$defs"]}
    return jsonschema_rs.Draft202012Validator(root), jsonschema_rs.Draft202012Validator(manifest)


def validate(document: Document, *, manifest: bool) -> tuple[list[Diagnostic], set[JsonPath]]:
    """Every schema error of one document, each located and explained, and the paths of the
    objects (section, id) and manifest fields they fall in."""
    fast_spec, fast_manifest = _fast_validators()
    if (fast_manifest if manifest else fast_spec).is_valid(document.data):
        return [], set()
    spec_validator, manifest_validator = _validators()
    validator = manifest_validator if manifest else spec_validator
    diagnostics: list[Diagnostic] = []
    broken: set[JsonPath] = set()
    for err in validator.iter_errors(document.data):
        diagnostics.extend(_explain(document, err))
        broken.add(tuple(err.absolute_path)[:2])
    return diagnostics, broken


def _leaves(err: ValidationError) -> Iterator[ValidationError]:
    """The most specific errors under an anyOf/oneOf, or the error itself."""
    from jsonschema.exceptions import best_match

    if err.context:
        best = best_match(err.context)
        if best is not None:
            yield from _leaves(best)
            return
    yield err


def describe(value: object) -> str:
    """How a YAML value reads in a message."""
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f"the text '{value}'"
    if isinstance(value, int | Decimal):
        return f"the number {value}"
    if isinstance(value, list):
        return "a list"
    return "a mapping"


def _field(path: JsonPath) -> str:
    names = [p for p in path if isinstance(p, str)]
    return f"'{names[-1]}'" if names else "the value"


def _explain(document: Document, err: ValidationError) -> Iterator[Diagnostic]:
    for leaf in _leaves(err):
        yield from _explain_leaf(document, leaf)


def _explain_leaf(document: Document, err: ValidationError) -> Iterator[Diagnostic]:
    smap = document.source_map
    path: JsonPath = tuple(err.absolute_path)
    sub = err.schema if isinstance(err.schema, dict) else {}
    title = sub.get("title", "this mapping")
    hint = sub.get("x-hint")
    kind = err.validator
    value = err.instance

    def at(span: Span, code: str, message: str) -> Diagnostic:
        return error(code, message, span)

    if "propertyNames" in err.schema_path:  # an id that is not one; the error sits on its parent
        key = str(value)
        message = f"'{key}' is not a valid id: use {hint or 'letters, digits and _ . : @ / -'}"
        yield at(smap.key((*path, key)), "E205", message)
    elif kind == "additionalProperties" and isinstance(value, dict):
        known = sorted(sub.get("properties", {}))
        for key in sorted(set(value) - set(known)):
            what = "section" if not path else "key"
            suggestion = did_you_mean(key, known) or f" Expected one of: {', '.join(known)}."
            message = f"unknown {what} '{key}' in {title}.{suggestion}"
            yield at(smap.key((*path, key)), "E201", message)
    elif kind == "required":
        missing = [k for k in sub.get("required", []) if isinstance(value, dict) and k not in value]
        for key in missing:
            yield at(smap.key(path), "E202", f"{title} is missing the required key '{key}'")
    elif kind == "type":
        expected = hint or _type_names(err.validator_value)
        message = f"{_field(path)} must be {expected}, not {describe(value)}"
        yield at(smap.value(path), "E203", message)
    elif kind == "enum":
        options = [str(o) for o in cast(list[object], err.validator_value)]
        suggestion = did_you_mean(str(value), options)
        message = (
            f"{describe(value)} is not a valid {_field(path)}.{suggestion}"
            f" Expected one of: {', '.join(options)}."
        )
        yield at(smap.value(path), "E204", message)
    elif kind == "const":
        message = f"{_field(path)} must be {err.validator_value}, not {describe(value)}"
        yield at(smap.value(path), "E204", message)
    elif kind == "pattern":
        message = f"{describe(value)} is not valid for {_field(path)}: expected {hint}"
        yield at(smap.value(path), "E205", message)
    elif kind == "uniqueItems":
        yield at(smap.value(path), "E205", f"{_field(path)} lists the same value twice")
    elif kind in ("minItems", "minLength", "minProperties"):
        yield at(smap.value(path), "E205", f"{_field(path)} must not be empty")
    elif kind in ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum"):
        relation = {
            "minimum": "at least",
            "exclusiveMinimum": "greater than",
            "maximum": "at most",
            "exclusiveMaximum": "less than",
        }[str(kind)]
        message = f"{_field(path)} must be {relation} {err.validator_value}, not {value}"
        yield at(smap.value(path), "E205", message)
    else:  # a keyword this module has no wording for: jsonschema's own message, still located
        yield at(smap.value(path), "E205", f"{_field(path)}: {err.message}")


def _type_names(expected: object) -> str:
    names = expected if isinstance(expected, list) else [expected]
    return " or ".join(_TYPE_NAMES.get(str(n), str(n)) for n in names)
