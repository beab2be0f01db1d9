from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pytest

CASES = Path(__file__).parent / "cases"
REPO = Path(__file__).parent.parent


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-goldens",
        action="store_true",
        help="rewrite the golden files from the current output instead of comparing",
    )


@pytest.fixture
def update_goldens(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--update-goldens"))


def assert_golden(path: Path, actual: str, update: bool) -> None:
    """Compare `actual` with the golden file at `path`, or rewrite it under --update-goldens."""
    if update or not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(actual, encoding="utf-8")
        if not update:
            pytest.fail(f"{path} did not exist; written — review it and commit it")
    assert actual == path.read_text(encoding="utf-8")


def write_calls(path: Path, properties: Iterable[Mapping[str, Any]]) -> None:
    """An NDJSON file of `call` events of customer acme on 2026-03-02, one for each mapping of
    properties, with transaction ids t0, t1, …"""
    path.write_text(
        "".join(
            json.dumps(
                {
                    "transaction_id": f"t{i}",
                    "customer_id": "acme",
                    "event_type": "call",
                    "timestamp": "2026-03-02T00:00:00Z",
                    "properties": dict(props),
                }
            )
            + "\n"
            for i, props in enumerate(properties)
        )
    )
