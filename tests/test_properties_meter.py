"""Hypothesis: the fused metering plan equals the row-by-row reference evaluator on generated
specs (property filters, aggregation keys, `filter:` and `value:` expressions) and events;
shuffling rows or splitting files changes nothing; the ledger adds up."""

from __future__ import annotations

import csv
import io
import itertools
import json
import random
import tempfile
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pricing
from pricing.engine.choices import PER_METRIC, PRE_AGGREGATED, PRE_PASS, WINDOW
from pricing.engine.meter import quantities
from pricing.engine.repair import _PATCHED, _UNREAD, _csv_patched
from pricing.engine.scan import scan_events
from pricing.engine.sources import FIELDS, EventFile, file_stamp
from tests.reference import Row, as_text, meter

START, END = datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 4, 1, tzinfo=UTC)
KINDS = ["COUNT", "SUM", "MAX", "MIN", "LATEST", "UNIQUE"]
# text, and numbers as a JSON number or a Parquet float column holds them (None: absent)
VALUES = ["1", "0.1", "2.50", "-3", "abc", "7", 2.5, 100.0, 1e-7, -3.0, None]

metric_spec = st.fixed_dictionaries(
    {
        "event_types": st.lists(st.sampled_from(["a", "b", "c"]), min_size=1, max_size=2, unique=True),
        "kind": st.sampled_from(KINDS),
        "key": st.sampled_from(["v", "w"]),
        "p_filter": st.sampled_from([None, "exists", "in_x", "not_in_y", "absent"]),
        "grouped": st.booleans(),
        # expressions (spec §8): a filter ANDed with the rest, a value instead of the key
        "filter": st.sampled_from(
            [None, "v > 1", 'p in ["x", "2.5"] or w is null', "coalesce(v, 0) + 1 >= w", 'lower(p) != "z"']
        ),
        "value": st.sampled_from([None, "v * 2 + 1", "coalesce(v, w, 0)", "v / w", "round(v / 3, 1)"]),
    }
)


def spec_yaml(metrics: list[dict[str, Any]]) -> str:
    lines = ["metrics:"]
    for i, m in enumerate(metrics):
        filters = []
        if m["grouped"] or m["p_filter"] == "exists":
            filters.append("{name: p, exists: true}")
        if m["p_filter"] == "in_x":
            filters.append("{name: p, in_values: [x, '2.5']}")
        elif m["p_filter"] == "not_in_y":
            filters.append("{name: p, not_in_values: [y]}")
        elif m["p_filter"] == "absent" and not m["grouped"]:
            filters.append("{name: p, exists: false}")
        lines.append(f"  m{i}:")
        lines.append(f"    event_type_filter: {{in_values: [{', '.join(m['event_types'])}]}}")
        if filters:
            lines.append(f"    property_filters: [{', '.join(filters)}]")
        lines.append(f"    aggregation_type: {m['kind']}")
        if m["filter"]:
            lines.append(f"    filter: '{m['filter']}'")
        if m["kind"] != "COUNT" and m["value"]:
            lines.append(f"    value: {m['value']}")
        elif m["kind"] != "COUNT":
            lines.append(f"    aggregation_key: {m['key']}")
        if m["grouped"]:
            lines.append("    group_keys: [[p]]")
    lines += [
        "customers:",
        "  c1: {ingest_aliases: [c1-alias]}",
        "  c2: {}",
        "rate_cards:",
        "  rc: {rates: []}",
        "contracts:",
        "  k1: {customer: c1, rate_card: rc, starting_at: 2026-01-01}",
        "  k2: {customer: c2, rate_card: rc, starting_at: 2026-03-15}",
    ]
    return "\n".join(lines) + "\n"


row_strategy = st.fixed_dictionaries(
    {
        "transaction_id": st.one_of(st.none(), st.sampled_from([f"t{i}" for i in range(12)])),
        "customer_id": st.sampled_from(["c1", "c1-alias", "c2", "zz", None]),
        "event_type": st.sampled_from(["a", "b", "c"]),
        "timestamp": st.one_of(
            st.none(),
            st.integers(-3 * 24, 34 * 24).map(lambda h: START + timedelta(hours=h)),
        ),
        "properties": st.fixed_dictionaries(
            {},
            optional={
                "p": st.sampled_from(["x", "y", "z", "2.5", 2.5, 1e2]),
                "v": st.sampled_from(VALUES[:-1]),
                "w": st.sampled_from(VALUES[:-1]),
            },
        ),
    }
)


def stamp_text(instant: datetime) -> str:
    """RFC 3339: an odd hour with the offset +02:00 (the same instant), the others in UTC."""
    if instant.hour % 2:
        return instant.astimezone(timezone(timedelta(hours=2))).isoformat()
    return instant.isoformat().replace("+00:00", "Z")


def write_ndjson(path: Path, rows: list[Row]) -> None:
    with path.open("w") as f:
        for row in rows:
            out = {k: v for k, v in row.items() if v is not None and k != "timestamp"}
            if row["timestamp"] is not None:
                out["timestamp"] = stamp_text(row["timestamp"])
            f.write(json.dumps(out) + "\n")


def write_csv(path: Path, rows: list[Row]) -> None:
    """The rows as CSV: the four fields and a `properties.<name>` column of each property; an
    absent value an empty cell, a number its text (CSV cells are text)."""
    names = ["p", "v", "w"]
    with path.open("w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow([*FIELDS, *(f"properties.{n}" for n in names)])
        for row in rows:
            stamp = row["timestamp"]
            fields = [row["transaction_id"], row["customer_id"], row["event_type"]]
            fields.append(None if stamp is None else stamp_text(stamp))
            values = [as_text(row["properties"].get(n)) for n in names]
            writer.writerow(["" if v is None else v for v in [*fields, *values]])


def write_parquet(path: Path, rows: list[Row], typed: bool = False, struct: bool = False) -> None:
    """The rows as a Parquet file with a `properties.<name>` column for each property that one
    of them has, and the fields that one has; `typed`: the event type as a categorical
    and the timestamps in India's time zone;
    `struct`: the properties as the fields of a `properties` struct column instead."""
    columns: dict[str, list[Any]] = {}
    for i, row in enumerate(rows):
        flat = {k: v for k, v in row.items() if k != "properties"}
        flat |= {f"properties.{k}": v for k, v in row["properties"].items()}
        for name, value in flat.items():
            if value is not None:
                columns.setdefault(name, [None] * len(rows))[i] = value
    for name, values in columns.items():  # a float column, or text where a column mixes them
        if any(isinstance(v, float) for v in values) and not all(isinstance(v, float | None) for v in values):
            columns[name] = [as_text(v) for v in values]
    frame = pl.DataFrame(columns, schema_overrides={"timestamp": pl.Datetime("us", "UTC")})
    if typed and "event_type" in frame.columns:
        frame = frame.with_columns(pl.col("event_type").cast(pl.Categorical))
    if typed and "timestamp" in frame.columns:  # (the same instants, in a column of another zone)
        frame = frame.with_columns(pl.col("timestamp").dt.convert_time_zone("Asia/Kolkata"))
    if struct:
        flat = [c for c in frame.columns if c.startswith("properties.")]
        fields = [pl.col(c).alias(c.removeprefix("properties.")) for c in flat]
        properties = pl.struct(fields or [pl.lit(None).alias("none")]).alias("properties")
        frame = frame.with_columns(properties).drop(flat)
    frame.write_parquet(path)


def types_of(row: Row) -> list[tuple[str, str]]:
    return sorted((name, type(value).__name__) for name, value in row["properties"].items())


def run_engine(
    root: Path, files: list[Path], strategy: str = "auto", dedup: str = "auto"
) -> tuple[dict[Any, Decimal], dict[str, int]]:
    plan = pricing.compile(pricing.load(root))
    result = plan.usage([str(f) for f in files], START, END, strategy=strategy, dedup=dedup)
    usage = {(c, m, tuple(g.items())): q for c, _, m, g, q in quantities(result.usage)}
    ledger = {k: v for k, v in result.ledger.buckets.items() if v}
    assert result.ledger.rows == sum(result.ledger.buckets.values())
    return usage, ledger


SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(
    st.lists(metric_spec, min_size=1, max_size=4),
    st.lists(row_strategy, max_size=30),
    st.randoms(),
    st.sampled_from([PRE_AGGREGATED, PER_METRIC]),
    st.sampled_from([WINDOW, PRE_PASS]),
)
def test_plan_equals_reference(
    metrics: list[dict[str, Any]], rows: list[Row], rnd: random.Random, strategy: str, dedup: str
) -> None:
    """Both plan shapes and both ways to find duplicates (forced: these samples are too small
    for the choices to matter)."""
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        (root / "pricing.yaml").write_text("version: 1\nname: Prop\n")
        (root / "spec.yaml").write_text(spec_yaml(metrics))
        project = pricing.load(root)
        write_ndjson(root / "events.jsonl", rows)
        expected_usage, expected_ledger = meter(project, rows, START, END)
        usage, ledger = run_engine(root, [root / "events.jsonl"], strategy, dedup)
        assert usage == expected_usage
        assert ledger == expected_ledger
        assert sum(ledger.values()) == len(rows)

        # Splitting the rows over several files, in order, changes nothing.
        cut = rnd.randint(0, len(rows))
        write_ndjson(root / "part1.jsonl", rows[:cut])
        write_ndjson(root / "part2.jsonl", rows[cut:])
        split = [root / "part1.jsonl", root / "part2.jsonl"]
        assert run_engine(root, split, strategy, dedup) == (usage, ledger)
        # blank lines (which Polars' reader skips) are invalid rows, and change nothing else
        text = (root / "part1.jsonl").read_text().splitlines(keepends=True)
        at = rnd.randint(0, len(text))
        (root / "part1.jsonl").write_text("".join([*text[:at], "\n", " \t\n", *text[at:]]))
        blank = {**ledger, "invalid": ledger.get("invalid", 0) + 2}
        assert run_engine(root, split, strategy, dedup) == (usage, blank)

        # ... and over Parquet files, each with just the columns its rows have (one scan reads
        # them, a column a file lacks null), or with a column of another type (a scan of its own)
        cuts = sorted(rnd.randint(0, len(rows)) for _ in range(2))
        parts = [rows[: cuts[0]], rows[cuts[0] : cuts[1]], rows[cuts[1] :]]
        for i, part in enumerate(parts):
            write_parquet(root / f"part{i}.parquet", part, typed=i == 2 and rnd.random() < 0.5)
        pieces = [root / f"part{i}.parquet" for i in range(3)]
        assert run_engine(root, pieces, strategy, dedup) == (usage, ledger)
        # ... and over Parquet files of one column type each: the runs of rows whose properties
        # have the same types, so that numbers are float columns
        runs = [list(run) for _, run in itertools.groupby(rows, key=types_of)] or [[]]
        for i, run in enumerate(runs):
            write_parquet(root / f"typed{i}.parquet", run)
        typed = [root / f"typed{i}.parquet" for i in range(len(runs))]
        assert run_engine(root, typed, strategy, dedup) == (usage, ledger)
        # ... and over files of the three formats in one run: CSV, NDJSON, Parquet (its properties
        # flat columns or a struct's fields)
        write_csv(root / "mixed0.csv", parts[0])
        write_ndjson(root / "mixed1.jsonl", parts[1])
        write_parquet(root / "mixed2.parquet", parts[2], struct=rnd.random() < 0.5)
        mixed = [root / "mixed0.csv", root / "mixed1.jsonl", root / "mixed2.parquet"]
        assert run_engine(root, mixed, strategy, dedup) == (usage, ledger)


@SETTINGS
@given(
    st.lists(metric_spec, min_size=1, max_size=3),
    st.lists(st.tuples(row_strategy, st.sampled_from(["t0", "t1", "t2"]), st.booleans()), max_size=20),
    st.integers(0, 20),
    st.sampled_from([WINDOW, PRE_PASS]),
)
def test_lines_read_one_by_one_keep_their_place(
    metrics: list[dict[str, Any]], drawn: list[tuple[Row, str, bool]], at: int, dedup: str
) -> None:
    """A file with a broken line: the reader reads a copy without the lines it may not read
    (here lines after a byte-order mark, as files joined from several exports have), which are
    read one by one. With three transaction ids, which row of an id counts depends on where both
    kinds of rows are in the file, as the reference says."""
    rows = [{**row, "transaction_id": tx} for row, tx, _ in drawn]
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        (root / "pricing.yaml").write_text("version: 1\nname: Prop\n")
        (root / "spec.yaml").write_text(spec_yaml(metrics))
        expected_usage, expected_ledger = meter(pricing.load(root), rows, START, END)
        write_ndjson(root / "events.jsonl", rows)
        lines = (root / "events.jsonl").read_text().splitlines(keepends=True)
        lines = [("\ufeff" if marked else "") + line for line, (*_, marked) in zip(lines, drawn, strict=True)]
        (root / "events.jsonl").write_text("".join([*lines[:at], "{broken\n", *lines[at:]]))
        broken = {**expected_ledger, "invalid": expected_ledger.get("invalid", 0) + 1}
        assert run_engine(root, [root / "events.jsonl"], dedup=dedup) == (expected_usage, broken)


@SETTINGS
@given(
    st.lists(metric_spec, min_size=1, max_size=3),
    st.lists(
        st.tuples(row_strategy, st.lists(st.sampled_from(["", " ", "\t", "\r"]), max_size=2)), max_size=20
    ),
    st.integers(0, 20),
)
def test_blank_lines_the_reader_skips_are_rows_in_their_place(
    metrics: list[dict[str, Any]], drawn: list[tuple[Row, list[str]]], cut: int
) -> None:
    """Polars' NDJSON reader skips blank lines; the run counts them afterwards (`skipped_lines`).
    Its ledger — buckets, and each invalid example's reason, file and line — and its usage equal
    those of the same files read line by line, here two files read by one scan, blank lines
    anywhere in them."""
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        (root / "pricing.yaml").write_text("version: 1\nname: Prop\n")
        (root / "spec.yaml").write_text(spec_yaml(metrics))
        write_ndjson(root / "all.jsonl", [row for row, _ in drawn])
        lines = (root / "all.jsonl").read_text().splitlines(keepends=True)
        text = [
            piece
            for (_, blanks), line in zip(drawn, lines, strict=True)
            for piece in [*(b + "\n" for b in blanks), line]
        ]
        files = [root / "a.jsonl", root / "b.jsonl"]
        files[0].write_text("".join(text[:cut]))
        files[1].write_text("".join(text[cut:]))
        plan = pricing.compile(pricing.load(root))
        got = plan.usage([str(f) for f in files], START, END)
        for f in files:
            _UNREAD[f] = file_stamp(f)
        expected = plan.usage([str(f) for f in files], START, END)
        for f in files:
            del _UNREAD[f]
    assert got.ledger == expected.ledger
    assert got.usage.equals(expected.usage)


@SETTINGS
@given(st.lists(metric_spec, min_size=1, max_size=3), st.lists(row_strategy, max_size=25), st.randoms())
def test_shuffling_unique_rows_changes_nothing(
    metrics: list[dict[str, Any]], rows: list[Row], rnd: random.Random
) -> None:
    # With distinct transaction ids and timestamps, input order cannot matter.
    distinct = []
    for i, row in enumerate(rows):
        if row["timestamp"] is not None:
            distinct.append(
                {**row, "transaction_id": f"u{i}", "timestamp": row["timestamp"] + timedelta(seconds=i)}
            )
    shuffled = distinct[:]
    rnd.shuffle(shuffled)
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        (root / "pricing.yaml").write_text("version: 1\nname: Prop\n")
        (root / "spec.yaml").write_text(spec_yaml(metrics))
        write_ndjson(root / "a.jsonl", distinct)
        write_ndjson(root / "b.jsonl", shuffled)
        assert run_engine(root, [root / "a.jsonl"]) == run_engine(root, [root / "b.jsonl"])


CELL = st.text(alphabet=st.sampled_from(["a", "é", " ", ",", '"', "\n", "1", "."]), max_size=4)


FIELD_NAMES = st.sampled_from(["transaction_id", "customer_id", "properties.x", "y"])


@settings(max_examples=200, deadline=None)
@given(
    header=st.lists(FIELD_NAMES, min_size=1, max_size=5),
    records=st.lists(st.lists(CELL, max_size=5), max_size=6),
    quoting=st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL]),
)
def test_a_csv_read_record_by_record_reads_as_polars_reads_it(
    header: list[str], records: list[list[str]], quoting: int
) -> None:
    """The record-by-record reader of CSV files Polars cannot read whole reads a file Polars does
    read as the run reads it through Polars: quoted separators, quotes and line breaks, empty
    cells quoted or not (absent), missing cells, blank lines, a repeated name (rows invalid)."""
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\n", quoting=quoting)
    writer.writerow(header)
    for record in records:
        writer.writerow(record[: len(header)])  # no surplus cell: Polars would fail the file
    names = [f"properties.{n}" for n in ("x", "y")]
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "events.csv"
        path.write_text(buffer.getvalue(), encoding="utf-8")
        by_polars = scan_events([EventFile(0, path, "csv")], names)
        try:
            expected = by_polars.collect()
        except pl.exceptions.PolarsError:
            return  # a file Polars cannot read: the case the record reader is for
        _UNREAD[path] = file_stamp(path)
        got = scan_events([EventFile(0, path, "csv")], names).collect()
        del _UNREAD[path]
    assert got.equals(expected)  # (`_malformed` too: null, or a repeated name's reason)


SAFE = st.text(alphabet=st.sampled_from(["a", "é", " ", "1", "."]), max_size=3)


def _cell(text: str, quote_all: bool) -> str:
    if quote_all or any(c in text for c in ',"\r\n'):
        return '"' + text.replace('"', '""') + '"'
    return text


# a CSV cell: as a writer writes it, text after a closing quote, or a quote inside an unquoted cell
CSV_CELL = st.one_of(
    st.tuples(st.just("text"), CELL.filter(lambda cell: "\n" not in cell)),
    st.tuples(st.just("after"), st.builds(lambda a, b: f'"{a}"{b}', SAFE, SAFE.filter(bool))),
    st.tuples(st.just("inside"), st.builds(lambda a, b: f'{a}"{b}', SAFE.filter(bool), SAFE)),
)


@settings(max_examples=200, deadline=None)
@given(
    header=st.lists(FIELD_NAMES, min_size=1, max_size=4),
    records=st.lists(st.lists(CSV_CELL, max_size=6), max_size=6),
    quote_all=st.booleans(),
)
def test_a_patched_csv_reads_as_record_by_record(
    header: list[str], records: list[list[tuple[str, str]]], quote_all: bool
) -> None:
    """A CSV file patched (records with more cells than the header, with text after a closing
    quote, with a quote inside an unquoted cell, set aside and read one by one by Python's csv
    module; the rest read by Polars from a copy) reads as the record-by-record reader reads it:
    every row, valid or invalid with its reason, the same and in the same place."""
    lines = [",".join(header)]
    lines += [",".join(_cell(t, quote_all) if kind == "text" else t for kind, t in r) for r in records]
    names = [f"properties.{n}" for n in ("x", "y")]
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "events.csv"
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        file = EventFile(0, path, "csv")
        patch = _csv_patched(file)
        if patch is None:  # nothing the reader cannot read
            assert all(kind == "text" for r in records for kind, _ in r)
            assert all(len(r) <= len(header) for r in records)
            return
        _PATCHED[path] = patch
        got = scan_events([file], names).collect()
        del _PATCHED[path]
        _UNREAD[path] = file_stamp(path)
        expected = scan_events([file], names).collect()
        del _UNREAD[path]
    assert got.sort("_row").equals(expected)
