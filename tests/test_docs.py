"""The diagnostic codes: each one documented, and each one exercised by a golden case."""

from __future__ import annotations

import re

from pricing.report import CODES
from tests.conftest import CASES, REPO


def test_every_code_is_documented() -> None:
    documented = set(re.findall(r"^\| ([EW]\d{3}) \|", (REPO / "docs" / "diagnostics.md").read_text(), re.M))
    assert documented == set(CODES)


def test_every_code_has_a_golden_case() -> None:
    goldens = "".join(p.read_text() for p in (CASES / "check").glob("*/expected.txt"))
    exercised = set(re.findall(r"(?:error|warning)\[([EW]\d{3})\]", goldens))
    assert exercised == set(CODES)
