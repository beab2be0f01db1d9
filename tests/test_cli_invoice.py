"""`pricing invoice` as finance runs it."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

from click.testing import CliRunner

from pricing.cli import main
from tests.conftest import CASES, REPO

SPECS = str(REPO / "specs")
EVENTS = str(CASES / "meter" / "mixed.jsonl")
INVOICE = ["invoice", SPECS, "--events", EVENTS]


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_a_month_writes_invoices_and_run_report(tmp_path: Path) -> None:
    code, out, err = run(*INVOICE, "--period", "2026-03", "--out", str(tmp_path))
    assert code == 0, err
    invoices = [json.loads(line) for line in (tmp_path / "invoices.jsonl").read_text().splitlines()]
    # acme, umbrella (monthly from the 1st) and initech (from March 10) start a period in March;
    # globex's quarter started on February 15, so another run invoices it.
    assert [i["id"] for i in invoices] == [
        "acme-2026-20260301",
        "initech-2026-20260310",
        "umbrella-2025-20260301",
    ]
    assert [i["status"] for i in invoices] == ["FINALIZED", "DRAFT", "FINALIZED"]
    report = json.loads((tmp_path / "run.json").read_text())
    assert report["invoices"] == 3
    assert report["ledger"]["rows"] == 13 == sum(report["ledger"]["buckets"].values())
    assert report["totals"] == {"USD": str(sum(int(i["total"]) for i in invoices))}
    assert report["start"] == "2026-03-01T00:00:00Z"
    assert report["as_of"] == "2026-04-01T00:00:00Z"
    assert "3 invoices for 3 customers" in out
    major = f"${Decimal(report['totals']['USD']).scaleb(-2):,.2f}"  # minor units (cents) as dollars
    assert major in out
    assert "event ledger: 13 rows" in out


def test_same_inputs_give_byte_identical_outputs(tmp_path: Path) -> None:
    for name in ("a", "b"):
        code, _, _ = run(
            *INVOICE,
            "--start",
            "2026-03-01",
            "--end",
            "2026-04-01",
            "--out",
            str(tmp_path / name),
        )
        assert code == 0
    for file in ("invoices.jsonl", "run.json"):
        assert (tmp_path / "a" / file).read_bytes() == (tmp_path / "b" / file).read_bytes()


def test_as_of_makes_periods_draft(tmp_path: Path) -> None:
    code, _, _ = run(
        *INVOICE,
        "--period",
        "2026-03",
        "--as-of",
        "2026-03-20",
        "--out",
        str(tmp_path),
    )
    assert code == 0
    statuses = {json.loads(line)["status"] for line in (tmp_path / "invoices.jsonl").read_text().splitlines()}
    assert statuses == {"DRAFT"}


def test_strict_fails_on_unpriced_usage(tmp_path: Path) -> None:
    """In March umbrella fine-tunes without entitlement and initech sends embeddings and
    fine-tuning jobs that its card does not price: reported, and an error under --strict."""
    events = str(REPO / "examples" / "nimbus" / "events-2026-q1.jsonl")
    args = ["invoice", SPECS, "--events", events, "--period", "2026-03", "--out", str(tmp_path)]
    code, _, err = run(*args)
    assert code == 0
    assert "warning: 3 unpriced usage item(s)" in err
    code, _, err = run(*args, "--strict")
    assert code == 1
    assert "error: 3 unpriced usage item(s)" in err
    unpriced = json.loads((tmp_path / "run.json").read_text())["unpriced"]
    assert {(u["contract_id"], u["product_id"], u["reason"]) for u in unpriced} >= {
        ("umbrella-2025", "fine_tuning", "not entitled")
    }


def test_bad_run_arguments_are_usage_errors(tmp_path: Path) -> None:
    code, _, err = run(*INVOICE, "--period", "March", "--out", str(tmp_path))
    assert code == 2
    assert "'March' is not a month such as 2026-03" in err
    code, _, err = run(*INVOICE, "--out", str(tmp_path))
    assert code == 2
    assert "give --period YYYY-MM, or both --start and --end" in err
    code, _, err = run(
        *INVOICE,
        "--period",
        "2026-03",
        "--start",
        "2026-03-01",
        "--out",
        str(tmp_path),
    )
    assert code == 2
    assert "give --period or --start/--end, not both" in err
    assert not (tmp_path / "invoices.jsonl").exists()


def test_an_output_folder_that_cannot_be_made_is_a_message(tmp_path: Path) -> None:
    """--out below a file: the folder cannot be made. It was a FileNotFoundError traceback."""
    (tmp_path / "notes.txt").write_text("")
    out = tmp_path / "notes.txt" / "march"
    code, _, err = run(*INVOICE, "--period", "2026-03", "--out", str(out))
    assert code == 1
    assert (
        f"Error: could not write {out / 'invoices.jsonl'}: {tmp_path / 'notes.txt'} is a file, not a folder"
        in err
    )
    assert "Traceback" not in err


def test_opening_balances_come_from_the_previous_run_report(tmp_path: Path) -> None:
    events = str(REPO / "examples" / "nimbus" / "events-2026-q1.jsonl")
    jan, feb = tmp_path / "jan", tmp_path / "feb"
    assert run("invoice", SPECS, "--events", events, "--period", "2026-01", "--out", str(jan))[0] == 0
    args = ["invoice", SPECS, "--events", events, "--period", "2026-02", "--out", str(feb)]
    assert run(*args, "--opening-balances", str(jan / "run.json"))[0] == 0
    left = {
        (b["contract_id"], b["kind"]): b["remaining"]
        for b in json.loads((feb / "run.json").read_text())["balances"]
    }
    quarter = tmp_path / "quarter"
    run(
        "invoice",
        SPECS,
        "--events",
        events,
        "--start",
        "2026-01-01",
        "--end",
        "2026-03-01",
        "--out",
        str(quarter),
    )
    both = {
        (b["contract_id"], b["kind"]): b["remaining"]
        for b in json.loads((quarter / "run.json").read_text())["balances"]
    }
    assert left == both  # two monthly runs leave what one two-month run leaves
    bad = tmp_path / "bad.json"
    for text, problem in [
        ('{"balances": [{"contract_id": "x"}]}', 'balances[0]: "kind" is a required property'),
        ("[]", '[] is not of type "object"'),  # (it was an AttributeError traceback)
    ]:
        bad.write_text(text)
        code, _, err = run(*args, "--opening-balances", str(bad))
        assert code == 2
        assert f"Invalid value for --opening-balances: {bad}: the run report: {problem}" in " ".join(
            err.split()
        )


def test_an_opening_balance_of_no_commit_in_the_spec_is_a_warning(tmp_path: Path) -> None:
    """Balances are keyed by contract and position: one of a contract since removed (or of a
    commit that moved) was silently not used."""
    events = str(REPO / "examples" / "nimbus" / "events-2026-q1.jsonl")
    jan = tmp_path / "jan"
    assert run("invoice", SPECS, "--events", events, "--period", "2026-01", "--out", str(jan))[0] == 0
    report = json.loads((jan / "run.json").read_text())
    report["balances"].append({**report["balances"][0], "contract_id": "gone-2025", "access_segment": 3})
    (jan / "run.json").write_text(json.dumps(report))
    args = ["invoice", SPECS, "--events", events, "--period", "2026-02", "--out", str(tmp_path / "feb")]
    code, _, err = run(*args, "--opening-balances", str(jan / "run.json"))
    assert code == 0
    assert (
        f"warning: {jan / 'run.json'}: contract 'gone-2025' commits[0] access segment 3 is not in {SPECS}:"
        " its balance is not used"
    ) in err
    assert err.count("its balance is not used") == 1  # (the others are acme's and globex's)
