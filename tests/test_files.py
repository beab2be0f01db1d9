"""Outputs written atomically (pricing.files), also when they are made while being written."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pricing.files import write_lines_atomic


def test_lines_are_written_in_order(tmp_path: Path) -> None:
    target = tmp_path / "out" / "invoices.jsonl"
    write_lines_atomic(target, (f'{{"n":"{n}€"}}\n'.encode() for n in range(3)))
    assert target.read_text(encoding="utf-8") == '{"n":"0€"}\n{"n":"1€"}\n{"n":"2€"}\n'
    assert [p.name for p in target.parent.iterdir()] == ["invoices.jsonl"]


def test_a_failure_while_the_lines_are_made_leaves_the_earlier_file(tmp_path: Path) -> None:
    target = tmp_path / "invoices.jsonl"
    target.write_text("the earlier run\n", encoding="utf-8")

    def lines() -> Iterator[bytes]:
        yield b"half of a run\n"
        raise RuntimeError("rating failed")

    with pytest.raises(RuntimeError, match="rating failed"):
        write_lines_atomic(target, lines())
    assert target.read_text(encoding="utf-8") == "the earlier run\n"
    assert [p.name for p in tmp_path.iterdir()] == ["invoices.jsonl"]  # no temporary file left
