"""Golden diagnostics: each folder under tests/cases/check is a broken spec project, and its
expected.txt is exactly what `pricing check` prints for it (code, file, line, column, message,
source line and caret). Regenerate with `pytest --update-goldens` and review the diff."""

from __future__ import annotations

from pathlib import Path

import pytest

from pricing import api
from pricing.report import format_text
from tests.conftest import CASES, assert_golden

CHECK_CASES = sorted(p for p in (CASES / "check").iterdir() if p.is_dir())


def test_corpus_is_large() -> None:
    assert len(CHECK_CASES) >= 40


@pytest.mark.parametrize("case", CHECK_CASES, ids=[p.name for p in CHECK_CASES])
def test_check_golden(case: Path, update_goldens: bool) -> None:
    diagnostics = api.check(case)
    assert diagnostics, "a broken case must produce diagnostics"
    actual = format_text(diagnostics, case, "", limit=0)
    assert_golden(case / "expected.txt", actual, update_goldens)
