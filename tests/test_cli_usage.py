"""`pricing usage` and `pricing explain` as a user runs them."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import stat
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner

import pricing
from pricing.cli import main
from pricing.engine.sources import EventInputError
from tests.conftest import CASES, REPO

SPECS = str(REPO / "specs")
EVENTS = str(CASES / "meter" / "mixed.jsonl")
MARCH = ["--start", "2026-03-01", "--end", "2026-04-01"]


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_usage_csv_with_daily_windows() -> None:
    code, out, err = run("usage", SPECS, "--events", EVENTS, *MARCH, "--window", "DAY", "--format", "csv")
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    storage = [(r["window_start"], r["quantity"]) for r in rows if r["metric_id"] == "storage_gb"]
    assert storage == [("2026-03-04T00:00:00Z", "12.5"), ("2026-03-05T00:00:00Z", "7")]
    assert "event ledger: 13 rows" in err


def test_usage_and_explain_take_a_period_as_invoice_does() -> None:
    """`--period 2026-03` is March in the project timezone, as for `pricing invoice` (only
    invoice took it); --start and --end still give any range, not with it."""
    by_month = run("usage", SPECS, "--events", EVENTS, "--period", "2026-03", "--format", "csv")
    assert by_month == run("usage", SPECS, "--events", EVENTS, *MARCH, "--format", "csv")
    assert by_month[0] == 0
    assert "storage_gb" in by_month[1]
    code, out, _ = run("explain", SPECS, "--events", EVENTS, "--period", "2026-03")
    assert (code, out) == (0, run("explain", SPECS, "--events", EVENTS, *MARCH)[1])
    code, _, err = run("usage", SPECS, "--events", EVENTS, "--period", "2026-03", "--start", "2026-03-01")
    assert (code, err.splitlines()[-1]) == (2, "Error: give --period or --start/--end, not both")
    code, _, err = run("explain", SPECS, "--events", EVENTS, "--end", "2026-04-01")
    assert (code, err.splitlines()[-1]) == (2, "Error: give --period YYYY-MM, or both --start and --end")


def test_usage_table_is_drawn_by_polars_quantities_aligned_right() -> None:
    """The default format: a grid of text (Rich took 40 s to draw 100,000 rows; Polars 0.5 s),
    every value whole, quantities aligned right (1,000,000 + 0.1 input tokens, 200 + 300 output
    tokens, 12.5 GB at most)."""
    code, out, _ = run("usage", SPECS, "--events", EVENTS, *MARCH)
    assert code == 0
    cells = [[cell.strip(" │") for cell in line.split("┆")] for line in out.splitlines()[3:7]]
    assert [(row[2], row[3], row[6]) for row in cells] == [
        ("fine_tune_jobs", "{}", "1"),
        ("nimbus_large_input_tokens", '{"region":"us"}', "1000000.1"),
        ("nimbus_large_output_tokens", '{"region":"us"}', "500"),
        ("storage_gb", '{"bucket":"b1"}', "12.5"),
    ]
    assert out.splitlines()[3].endswith("┆         1 │")  # (as wide as 1000000.1)
    assert out.splitlines()[1].startswith("│ customer_id ┆ contract_id ┆ metric_id ")


def test_usage_json_carries_the_ledger_and_spec_hash(tmp_path: Path) -> None:
    out_file, report = tmp_path / "usage.json", tmp_path / "run.json"
    code, _, _ = run(
        "usage",
        SPECS,
        "--events",
        EVENTS,
        *MARCH,
        "--format",
        "json",
        "--out",
        str(out_file),
        "--report",
        str(report),
    )
    assert code == 0
    document = json.loads(out_file.read_text())
    assert [(r["metric_id"], r["quantity"]) for r in document["usage"]][:2] == [
        ("fine_tune_jobs", "1"),
        ("nimbus_large_input_tokens", "1000000.1"),
    ]
    run_report = json.loads(report.read_text())
    assert run_report["ledger"]["buckets"]["duplicate"] == 1
    assert len(run_report["spec_hash"]) == 64
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.json", "usage.json"]  # no temp files left
    code, stdout, _ = run("usage", SPECS, "--events", EVENTS, *MARCH, "--format", "json")
    assert (code, stdout) == (0, out_file.read_text())  # (to stdout too, a piece at a time)


def test_usage_group_by_none_and_parquet(tmp_path: Path) -> None:
    out_file = tmp_path / "usage.parquet"
    code, _, _ = run(
        "usage",
        SPECS,
        "--events",
        EVENTS,
        *MARCH,
        "--group-by",
        "",
        "--format",
        "parquet",
        "--out",
        str(out_file),
    )
    assert code == 0
    frame = pl.read_parquet(out_file)
    assert set(frame["group_values"]) == {"{}"}
    assert isinstance(frame.schema["quantity"], pl.Decimal)


def test_usage_errors_are_messages_not_tracebacks() -> None:
    code, _, err = run("usage", SPECS, "--events", "nope/*.jsonl", *MARCH)
    assert code == 2
    assert "nope/*.jsonl: holds no event files" in err
    code, _, err = run("usage", SPECS, "--events", EVENTS, "--start", "March", "--end", "2026-04-01")
    assert code == 2
    assert "Invalid value for --start: 'March'" in err
    # (Python's "Invalid isoformat string: 'MARCH'" echoed it in upper case)
    assert "'March': expected an RFC 3339 timestamp (2026-01-01T00:00:00Z) or a date (2026-01-01)" in err
    code, _, err = run(
        "usage", SPECS, "--events", EVENTS, "--start", "2026-03-01T25:00:00Z", "--end", "2026-04-01"
    )
    assert "Invalid value for --start: '2026-03-01T25:00:00Z': hour must be in 0..23" in err
    code, _, err = run("usage", str(CASES / "check" / "unknown_tag"), "--events", EVENTS, *MARCH)
    assert code == 1
    assert "error[E402]: no product has the tag 'token'" in err
    # a misspelt --group-by name is an error, not every metric silently ungrouped
    code, _, err = run("usage", SPECS, "--events", EVENTS, *MARCH, "--group-by", "region,regoin")
    assert code == 2
    assert "Invalid value for --group-by: no metric groups by 'regoin'; the metrics group by" in err
    assert "group by bucket, region, user_id" in err


def test_an_output_that_cannot_be_written_is_a_message(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("")
    for target in ("--out", "--report"):
        path = tmp_path / "notes.txt" / "usage.csv"
        code, _, err = run("usage", SPECS, "--events", EVENTS, *MARCH, "--format", "csv", target, str(path))
        assert code == 1
        assert f"could not write {path}: {tmp_path / 'notes.txt'} is a file, not a folder" in err


def test_an_output_through_a_link_or_into_a_pipe_keeps_the_link_and_the_pipe(tmp_path: Path) -> None:
    """A rename would put a plain file where the link or the pipe was (as root, even over
    /dev/full): the link is written through, the pipe and the device are written in place."""
    (tmp_path / "kept.csv").write_text("old\n")
    (tmp_path / "latest.csv").symlink_to("kept.csv")
    code, _, _ = run(
        "usage", SPECS, "--events", EVENTS, *MARCH, "--format", "csv", "--out", str(tmp_path / "latest.csv")
    )
    assert code == 0
    assert (tmp_path / "latest.csv").is_symlink()
    assert (tmp_path / "kept.csv").read_text().startswith("customer_id,contract_id,metric_id,")

    pipe = tmp_path / "pipe"
    os.mkfifo(pipe)
    with ThreadPoolExecutor(1) as pool:
        read = pool.submit(pipe.read_text)
        code, _, _ = run("usage", SPECS, "--events", EVENTS, *MARCH, "--format", "csv", "--out", str(pipe))
        assert code == 0
        assert read.result(timeout=60).startswith("customer_id,contract_id,metric_id,")
    assert stat.S_ISFIFO(pipe.stat().st_mode)

    code, _, err = run("usage", SPECS, "--events", EVENTS, *MARCH, "--format", "csv", "--out", "/dev/full")
    assert code == 1
    assert "could not write /dev/full: No space left on device" in err
    assert stat.S_ISCHR(Path("/dev/full").stat().st_mode)


def test_values_in_the_tables_are_text_not_markup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A user id `[bold]x[/]` was read as Rich markup (its `[/]` a MarkupError traceback), and a
    file named `x[1].jsonl` lost its `[1]` in the ledger table."""
    events = tmp_path / "x[1].jsonl"
    common = {"customer_id": "acme", "event_type": "language_model", "timestamp": "2026-03-02T10:00:00Z"}
    small = {"model": "nimbus-small", "user_id": "[bold]x[/]", "total_tokens": 5}
    events.write_text(
        json.dumps({"transaction_id": "1", **common, "properties": small})
        + "\n"
        + json.dumps({"transaction_id": "2", **common, "properties": {**small, "total_tokens": "[5]"}})
        + "\n"
    )
    monkeypatch.chdir(tmp_path)
    code, out, err = run("usage", SPECS, "--events", "x[1].jsonl", *MARCH)
    assert code == 0, err
    assert '{"user_id":"[bold]x[/]"}' in out
    message = "invalid: property 'total_tokens' is not a number: '[5]' (metric 'nimbus_small_tokens')"
    assert re.search(rf"{re.escape(message)}\s*│ x\[1\]\.jsonl:2 ", err)


def test_explain_names_the_strategy_and_predicates() -> None:
    code, out, _ = run("explain", SPECS, "--events", EVENTS, *MARCH)
    assert code == 0
    assert out.startswith(
        "strategy: pre-aggregated (only 13 events in the sample)\n"
        "engine: streaming (the pre-aggregated plan streams)\n"
    )
    assert out.splitlines()[2].startswith(
        # 13 events × (10 properties the specs read + 8 columns) × 24 bytes = 5,616 bytes (it said
        # "0.0 GiB"), of the machine's memory
        "dedup: window (the window would hold about 5.5 KiB of events, of "
    )
    assert "metric storage_gb: MAX grouped by [bucket]" in out
    assert 'col("event_type").is_in([["storage_snapshot"]])' in out
    assert out.count("NDJson SCAN") == 1
    assert "\n\nmetering:\n" in out


def test_explain_shows_the_pre_pass_and_its_read_of_the_ids() -> None:
    code, out, _ = run("explain", SPECS, "--events", EVENTS, *MARCH, "--dedup", "pre-pass")
    assert code == 0
    assert out.splitlines()[2] == "dedup: pre-pass (chosen with --dedup)"
    # three queries, one after the other, each with its scan; what one gives the next shows as a
    # Series it looks values up in
    queries = out.split("\n\n")[-3:]
    assert [q.splitlines()[0] for q in queries] == [
        "pre-pass 1: the hashes of ids that rows repeat (read from the id column alone):",
        "pre-pass 2: the valid rows with those hashes that are not the first of their id:",
        "metering, with the positions of those rows:",
    ]
    assert [q.count("NDJson SCAN") for q in queries] == [1, 1, 1]
    assert 'SORT BY [col("_hash")]' in queries[0]
    assert 'col("transaction_id").hash().is_in([Series[_hash]])' in queries[1]
    assert 'col("_order").is_in([Series[_order]])' in queries[2]


def test_unreadable_event_files_fail_the_run_with_a_message(tmp_path: Path) -> None:
    (tmp_path / "corrupt.parquet").write_bytes(b"\xff\xfe not parquet")
    code, _, err = run("usage", str(CASES / "meter"), "--events", str(tmp_path / "corrupt.parquet"), *MARCH)
    assert code == 1
    assert err.startswith(f"Error: could not read {(tmp_path / 'corrupt.parquet').as_posix()}: parquet: ")
    # a CSV row with broken quoting is an invalid row of the ledger, not a failed run
    (tmp_path / "quote.csv").write_text(
        'transaction_id,customer_id,event_type,timestamp\n"1,acme,x,2026-03-02\n'
    )
    report = tmp_path / "run.json"
    code, _, err = run(
        "usage",
        str(CASES / "meter"),
        "--events",
        str(tmp_path / "quote.csv"),
        *MARCH,
        "--report",
        str(report),
    )
    assert code == 0
    assert "event ledger: 1 rows" in err
    [row] = json.loads(report.read_text())["ledger"]["invalid_examples"]
    assert row["reason"] == "malformed CSV: a quote is not closed (the rest of the file is this row)"


def test_invalid_utf8_in_csv_is_still_accounted_for(tmp_path: Path) -> None:
    header = b"transaction_id,customer_id,event_type,timestamp\n"
    (tmp_path / "latin.csv").write_bytes(
        header + b"1,acme,call,2026-03-02T00:00:00Z\n2,m\xfcller,call,2026-03-02T00:00:00Z\n"
    )
    report = tmp_path / "run.json"
    args = ["--events", str(tmp_path / "latin.csv"), *MARCH, "--format", "csv", "--report", str(report)]
    code, _, err = run("usage", str(CASES / "meter"), *args)
    assert code == 0
    assert "event ledger: 2 rows" in err
    buckets = json.loads(report.read_text())["ledger"]["buckets"]
    assert (buckets["rated"], buckets["unknown_customer"]) == (1, 1)  # "m\ufffdller" is no customer


def test_invalid_utf8_in_ndjson_is_still_accounted_for(tmp_path: Path) -> None:
    """Polars' readers refuse a JSON file that is not all UTF-8 (the run used to fail with
    "invalid utf8"); its bytes are read as a CSV file's are, as U+FFFD: the reader reads a UTF-8
    copy, its broken and blank lines set aside. A file whose only fault is a byte, alike."""
    call = b'"event_type": "call", "timestamp": "2026-03-02T00:00:00Z"}'
    (tmp_path / "latin.jsonl").write_bytes(
        b'{"transaction_id": "1", "customer_id": "acme", ' + call + b"\r\n"
        b'{"transaction_id": "2", "customer_id": "m\xfcller", ' + call + b"\n"
        b'\xff{"transaction_id": "3", "customer_id": "acme", ' + call + b"\n"
        b"\n"
        b'{"transaction_id": "5", "customer_id": "acme", ' + call  # no newline at the end
    )
    report = tmp_path / "run.json"
    args = ["--events", str(tmp_path / "latin.jsonl"), *MARCH, "--format", "csv", "--report", str(report)]
    code, out, err = run("usage", str(CASES / "meter"), *args)
    assert code == 0, err
    assert out.splitlines()[1].startswith("acme,acme-c,calls,{},")
    assert out.splitlines()[1].endswith(",2")  # rows 1 and 5
    assert "event ledger: 5 rows" in err
    ledger = json.loads(report.read_text())["ledger"]
    assert (ledger["buckets"]["rated"], ledger["buckets"]["unknown_customer"]) == (2, 1)
    examples = [(r["reason"], r["row"]) for r in ledger["invalid_examples"]]
    assert examples == [("malformed JSON", 3), ("blank line", 4)]
    code, out, err = run("explain", str(CASES / "meter"), *args[:2], *MARCH)
    copy = "Polars' NDJSON reader (of a copy, bytes that are not UTF-8 as U+FFFD)"
    assert f"{(tmp_path / 'latin.jsonl').as_posix()}: {copy}, but for 2 line(s) it skips" in out
    (tmp_path / "one.jsonl").write_bytes(
        b'{"transaction_id": "1", "customer_id": "m\xfcller", ' + call + b"\n"
    )
    code, out, err = run("usage", str(CASES / "meter"), "--events", str(tmp_path / "one.jsonl"), *MARCH)
    assert "event ledger: 1 rows" in err
    assert "unknown_customer" in err
    code, out, err = run("explain", str(CASES / "meter"), "--events", str(tmp_path / "one.jsonl"), *MARCH)
    assert f"{(tmp_path / 'one.jsonl').as_posix()}: {copy}\n" in out


def test_empty_usage_csv_still_has_the_header() -> None:
    args = ["--events", EVENTS, "--start", "2025-01-01", "--end", "2025-02-01", "--format", "csv"]
    code, out, _ = run("usage", SPECS, *args)
    assert code == 0
    assert out == (
        "customer_id,contract_id,metric_id,group_values,period_start,period_end,"
        "window_start,window_end,quantity\n"
    )


def test_a_run_ends_after_it_starts(tmp_path: Path) -> None:
    """--end not after --start is a usage error on every command that takes them (it was a
    traceback from deep in Polars), and so is such a run through the API."""
    backwards = ["--start", "2026-04-01", "--end", "2026-03-01"]
    for command in (["usage"], ["explain"], ["invoice", "--out", str(tmp_path)]):
        code, _, err = run(*command, SPECS, "--events", EVENTS, *backwards)
        assert code == 2
        assert "Invalid value for --end: '2026-03-01' is not after --start '2026-04-01'" in err
    code, _, err = run("usage", SPECS, "--events", EVENTS, "--start", "2026-04-01", "--end", "2026-04-01")
    assert "'2026-04-01' is not after --start '2026-04-01'" in err
    plan = pricing.compile(pricing.load(SPECS))
    april, march = datetime(2026, 4, 1, tzinfo=UTC), datetime(2026, 3, 1, tzinfo=UTC)
    with pytest.raises(
        ValueError,
        match=re.escape("'2026-03-01 00:00:00+00:00' is not after start '2026-04-01 00:00:00+00:00'"),
    ):
        plan.invoice([EVENTS], april, march)


def test_a_run_lies_between_the_years_1000_and_9000(tmp_path: Path) -> None:
    """A month in 9999 ended in the year 10000 (a traceback from Python's datetime), and so did
    a period's boundaries; the bounds leave periods and local times room on both sides."""
    for arguments, message in [
        (["--period", "9999-12"], "Invalid value for --period: '9999-12-01': a run lies between"),
        (["--start", "0999-12-31", "--end", "2026-01-01"], "Invalid value for --start: '0999-12-31': a run"),
        (["--start", "2026-01-01", "--end", "9000-01-02"], "Invalid value for --end: '9000-01-02': a run"),
    ]:
        code, _, err = run("invoice", SPECS, "--events", EVENTS, *arguments, "--out", str(tmp_path))
        assert code == 2
        assert message in err
        assert "1000-01-01 and 9000-01-01" in err
    code, _, _ = run("invoice", SPECS, "--events", EVENTS, "--period", "8999-12", "--out", str(tmp_path))
    assert code == 0
    plan = pricing.compile(pricing.load(SPECS))
    last = datetime(9000, 1, 1, tzinfo=UTC)
    with pytest.raises(ValueError, match="a run lies between 1000-01-01 and 9000-01-01, not from 9000-01-01"):
        plan.usage([EVENTS], last, last + timedelta(days=1))


def test_the_api_takes_one_path_alone_and_wants_instants_with_a_time_zone() -> None:
    """Notebook mistakes, each a message: a naive datetime (it was a TypeError from deep in the
    calendar), no event files at all (a Polars 'cannot concat empty list'); and one path given
    alone is one path (it was read as a sequence of one-letter paths)."""
    plan = pricing.compile(pricing.load(SPECS))
    march, april = datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 4, 1, tzinfo=UTC)
    naive = "has no time zone: give one, e.g. datetime(2026, 3, 1, tzinfo=UTC)"
    with pytest.raises(ValueError, match=f"start 2026-03-01T00:00:00 {re.escape(naive)}"):
        plan.usage([EVENTS], datetime(2026, 3, 1), april)
    with pytest.raises(ValueError, match=f"end 2026-04-01T00:00:00 {re.escape(naive)}"):
        plan.invoice([EVENTS], march, datetime(2026, 4, 1))
    with pytest.raises(ValueError, match=f"as_of 2026-04-02T00:00:00 {re.escape(naive)}"):
        plan.invoice([EVENTS], march, april, as_of=datetime(2026, 4, 2))
    with pytest.raises(EventInputError, match="no events given: name event files, globs or folders"):
        plan.usage([], march, april)
    assert plan.usage(EVENTS, march, april).ledger.rows == 13
    assert plan.invoice(Path(EVENTS), march, april).ledger.rows == 13
