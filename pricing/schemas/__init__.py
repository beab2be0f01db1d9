"""JSON Schemas shipped as package data: the spec language (pricing.schema.json, `pricing
schema`) and what `pricing invoice` writes into a run folder and other commands read back
(run.schema.json)."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

import jsonschema_rs


@cache
def _run_schema() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(
        resources.files("pricing.schemas").joinpath("run.schema.json").read_text("utf-8")
    )
    return loaded


@cache
def _run_validator(kind: str) -> jsonschema_rs.Validator:
    root = _run_schema()
    return jsonschema_rs.Draft202012Validator({"$defs": root["$defs"], "$ref": f"#/$defs/{kind}"})


def check_run_file(value: object, kind: str, where: str) -> None:
    """ValueError naming the first thing wrong with `value`, read from a run folder's file
    (`where`) as a `kind` of run.schema.json: as `pricing invoice` wrote it, or not (hand-edited,
    cut short)."""
    validator = _run_validator(kind)
    if validator.is_valid(value):
        return
    error = next(iter(validator.iter_errors(value)))
    at = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.instance_path).lstrip(".")
    raise ValueError(f"{where}: {at + ': ' if at else ''}{error.message}")
