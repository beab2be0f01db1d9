"""Metering, checked against values computed by hand (tests/cases/meter)."""

from __future__ import annotations

import gzip
import json
import os
import re
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest
import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st

import pricing
from pricing.engine import choices, meter, repair, scan, sources
from pricing.engine.choices import PER_METRIC, PRE_AGGREGATED, PRE_PASS, WINDOW, distinct_at
from pricing.engine.meter import quantities
from pricing.engine.plan import UsageResult, compile
from pricing.engine.sources import EventInputError, EventReadError, column_names, expand, line_count
from tests.conftest import CASES, REPO

CASE = CASES / "meter"
MARCH = (datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 4, 1, tzinfo=UTC))


def usage_of(
    spec: Path, events: list[str], engine: str = "auto", strategy: str = "auto", dedup: str = "auto"
) -> tuple[dict[tuple[str, str, str], Decimal], dict[str, int]]:
    result = compile(pricing.load(spec)).usage(events, *MARCH, engine=engine, strategy=strategy, dedup=dedup)
    table = {(c, m, str(sorted(g.items()))): q for c, _, m, g, q in quantities(result.usage)}
    return table, result.ledger.buckets


def metric_table(result: UsageResult) -> dict[tuple[str, str], Decimal]:
    """A one-customer run's usage: (metric, its sorted group values as text) → quantity."""
    return {(m, str(sorted(g.items()))): q for _, _, m, g, q in quantities(result.usage)}


@pytest.mark.parametrize("engine", ["in-memory", "streaming"])
@pytest.mark.parametrize("strategy", [PRE_AGGREGATED, PER_METRIC])
@pytest.mark.parametrize("dedup", [WINDOW, PRE_PASS])
def test_every_aggregation_by_hand(engine: str, strategy: str, dedup: str) -> None:
    files = [str(CASE / "part1.jsonl"), str(CASE / "part2.csv")]
    table, buckets = usage_of(CASE, files, engine, strategy, dedup)
    assert table == {
        ("acme", "calls", "[]"): Decimal(12),  # c0 to c9, b1 (by alias, last microsecond), x1
        ("acme", "cost", "[]"): Decimal(1),  # ten "0.1" add up to exactly 1; x2 is invalid
        ("acme", "users", "[]"): Decimal(4),  # u0 u1 u2 from the c rows, u3 from the CSV
        ("acme", "by_region", "[('region', 'us')]"): Decimal(11),  # b1 (eu) has tier 2.50 → "2.5"
        ("acme", "peak", "[]"): Decimal(-1),  # MAX of -3, -7.5, -1
        ("acme", "low", "[]"): Decimal("-7.5"),
        ("acme", "last_seen", "[]"): Decimal(-1),  # t2 and t3 tie on time: the later row wins
        ("solo", "calls", "[]"): Decimal(1),  # s2 at the contract's first instant
        ("solo", "users", "[]"): Decimal(1),
    }
    assert buckets == {
        "rated": 16,
        "duplicate": 1,  # c0 again, in the second file
        "unknown_customer": 0,
        "no_contract": 1,  # s1, an hour before solo's contract
        "unmatched": 0,
        "outside_run": 1,  # b2 at 2026-04-01T00:00:00Z, the run's exclusive end
        "invalid": 1,  # x2: cost "not-a-number"
    }


def test_ledger_on_the_bundled_specs() -> None:
    result = compile(pricing.load(REPO / "specs")).usage([str(CASE / "mixed.jsonl")], *MARCH)
    assert [(m, g, q) for _, _, m, g, q in quantities(result.usage)] == [
        ("fine_tune_jobs", {}, Decimal(1)),
        ("nimbus_large_input_tokens", {"region": "us"}, Decimal("1000000.1")),
        ("nimbus_large_output_tokens", {"region": "us"}, Decimal(500)),
        ("storage_gb", {"bucket": "b1"}, Decimal("12.5")),
    ]
    ledger = result.ledger
    assert ledger.rows == 13 == sum(ledger.buckets.values())
    assert ledger.buckets == {
        "rated": 5,
        "duplicate": 1,
        "unknown_customer": 1,
        "no_contract": 0,
        "unmatched": 1,
        "outside_run": 2,
        "invalid": 3,
    }
    assert [(r.reason, r.row) for r in ledger.invalid] == [
        ("property 'input_tokens' is not a number: 'abc' (metric 'nimbus_large_input_tokens')", 4),
        ("missing transaction_id", 12),
        ("unparseable timestamp", 13),
    ]


@pytest.mark.parametrize("strategy", [PRE_AGGREGATED, PER_METRIC])
def test_one_scan_per_file(strategy: str) -> None:
    plan = compile(pricing.load(CASE)).compile_usage(
        [str(CASE / "part1.jsonl"), str(CASE / "part2.csv")], *MARCH, strategy=strategy
    )
    explained = plan.frame.explain()
    assert explained.count("NDJson SCAN") == 1  # every line an object: Polars' NDJSON reader
    assert explained.count("Csv SCAN") == 1


def test_consecutive_files_of_one_kind_are_read_by_one_scan(tmp_path: Path) -> None:
    """NDJSON files that Polars' reader reads, CSV files of one header and Parquet files whose
    columns agree are read by one scan per run of them (a scan per file cost about 1 ms a file);
    each row keeps its file and its row in it (invalid rows are named so), and the first of an
    id in input order counts. A Parquet file without a column the run reads reads as one with
    that column null; one whose column has another type is read by a scan of its own."""
    call = '{{"transaction_id": "{}", "customer_id": "{}", "event_type": "call", "timestamp": "2026-03-02"}}'
    texts = {
        "a.jsonl": [("n1", "acme"), ("n2", "acme")],
        "b.jsonl": [("n3", "acme"), ("n4", ""), ("n1", "acme")],  # n1 again: a duplicate
        "c.jsonl": [("n5", "")],
    }
    for name, rows in texts.items():
        (tmp_path / name).write_text("".join(call.format(*row) + "\n" for row in rows))
    frame = pl.read_ndjson(CASE / "part1.jsonl").unnest("properties", separator=".")
    frame.write_parquet(tmp_path / "d.parquet")
    ids = pl.col("transaction_id") + "e"
    frame.with_columns(
        ids, pl.when(pl.int_range(pl.len()) != 2).then("customer_id").alias("customer_id")
    ).write_parquet(tmp_path / "e.parquet")
    # without the region column (and with one the run does not read), and with it null
    without = frame.with_columns(ids + "f", pl.lit(1).alias("extra"))
    without.drop("properties.region").write_parquet(tmp_path / "f.parquet")
    without.with_columns(pl.lit(None, pl.String).alias("properties.region")).write_parquet(
        tmp_path / "f2.parquet"
    )
    frame.with_columns(ids + "g", pl.col("properties.cost").cast(pl.Float64)).write_parquet(
        tmp_path / "g.parquet"
    )
    names = [*texts, "d.parquet", "e.parquet", "f.parquet", "g.parquet"]
    files = [str(tmp_path / name) for name in names]
    plan = compile(pricing.load(CASE))
    explained = plan.compile_usage(files, *MARCH).frame.explain()
    assert (explained.count("NDJson SCAN"), explained.count("Parquet SCAN")) == (1, 2)
    at = tmp_path.as_posix()
    assert plan.explain(files, *MARCH).splitlines()[3:7] == [
        "events: 7 file(s), 3 scan(s)",
        f"  {at}/a.jsonl … {at}/c.jsonl (3 NDJSON files): Polars' NDJSON reader",
        f"  {at}/d.parquet … {at}/f.parquet (3 Parquet files): Polars' Parquet reader",
        f"  {at}/g.parquet: Polars' Parquet reader",
    ]
    result = plan.usage(files, *MARCH)
    assert (result.ledger.rows, result.ledger.buckets["duplicate"]) == (6 + 4 * frame.height, 1)
    assert [(i.reason, Path(i.file).name, i.row) for i in result.ledger.invalid] == [
        ("missing customer_id", "b.jsonl", 2),
        ("missing customer_id", "c.jsonl", 1),
        ("missing customer_id", "e.parquet", 3),
    ]
    nulled = plan.usage([f.replace("f.parquet", "f2.parquet") for f in files], *MARCH)
    assert result.usage.equals(nulled.usage)
    by_region = {(m, str(g)): q for c, _, m, g, q in quantities(result.usage) if c == "acme"}
    assert by_region[("by_region", "{'region': 'us'}")] == 10 + 9 + 0 + 10  # d, e (row 3), f, g


def test_the_pre_aggregation_streams(tmp_path: Path) -> None:
    """With metrics of every aggregation type every node of the pre-aggregated plan runs on the
    streaming engine: an aggregation it cannot stream (a top-k or list of each group's rows, as
    the ledger's examples once were, or LATEST as a sort within each group) makes Polars run the
    whole group_by in memory, holding every event."""
    (tmp_path / "pricing.yaml").write_text("version: 1\nname: Streams\n")
    kinds = {"n": "COUNT", "s": "SUM", "hi": "MAX", "lo": "MIN", "u": "UNIQUE", "last": "LATEST"}
    metrics = "".join(
        f"  {name}: {{aggregation_type: {kind}{'' if kind == 'COUNT' else ', aggregation_key: x'}}}\n"
        for name, kind in kinds.items()
    )
    (tmp_path / "spec.yaml").write_text(f"metrics:\n{metrics}customers: {{acme: {{}}}}\n")
    plan = compile(pricing.load(tmp_path)).compile_usage([str(CASE / "part1.jsonl")], *MARCH)
    assert (plan.strategy, plan.engine) == (PRE_AGGREGATED, "streaming")
    physical = plan.frame.show_graph(engine="streaming", plan_stage="physical", raw_output=True)
    assert physical is not None
    assert 'label="in-memory' not in physical  # a node that falls back (the legend names the kind)


def test_the_strategy_follows_the_variety_of_keys_in_a_sample(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every call by another user: grouping by all keys (the UNIQUE key `user` among them)
    would keep every event, so each metric is grouped on its own — unless the events it would
    hold do not fit in a quarter of the machine's memory; with ten users, pre-aggregate."""
    plan = compile(pricing.load(CASE))

    def explained(users: int) -> str:
        events = tmp_path / f"users-{users}.parquet"
        pl.DataFrame(
            {
                "transaction_id": [str(i) for i in range(20_000)],
                "customer_id": ["acme"] * 20_000,
                "event_type": ["call"] * 20_000,
                "timestamp": ["2026-03-02T10:00:00Z"] * 20_000,
                "properties.user": [f"u{i % users}" for i in range(20_000)],
            }
        ).write_parquet(events)
        return "\n".join(plan.explain([str(events)], *MARCH).splitlines()[:2])

    assert explained(20_000) == (
        "strategy: per-metric (about 20,000 distinct key combinations in 20,000 events: "
        "each metric is grouped by its own keys)\n"
        "engine: streaming (measured the faster for the per-metric plan too)"
    )
    assert explained(10) == (
        "strategy: pre-aggregated (about 10 distinct key combinations in 20,000 events)\n"
        "engine: streaming (the pre-aggregated plan streams)"
    )
    # 20,000 events × (the 5 properties the spec reads + 8 columns) × 24 bytes = 6.2 MB: more than
    # a quarter of a machine of 8 MiB
    monkeypatch.setattr(choices, "physical_memory", lambda: 8 << 20)
    assert explained(20_000).splitlines()[0] == (
        "strategy: pre-aggregated (about 20,000 distinct key combinations in 20,000 events, but"
        " grouping each metric on its own would hold about 6.0 MiB of events, of 8.0 MiB)"
    )
    table, _ = usage_of(CASE, [str(tmp_path / "users-20000.parquet")])
    assert table[("acme", "users", "[]")] == Decimal(20_000)
    assert table[("acme", "calls", "[]")] == Decimal(20_000)


def test_a_key_splits_the_groups_of_the_rows_its_metrics_match_alone(tmp_path: Path) -> None:
    """A UNIQUE of users over 10 logins (3 users among them), and a count of 20,000 calls each
    carrying a user of its own: the user is a key of the pre-aggregation on the logins alone,
    so the calls make one group, not 20,000 — and the plan pre-aggregates."""
    (tmp_path / "pricing.yaml").write_text("version: 1\nname: Logins\n")
    (tmp_path / "spec.yaml").write_text(
        """metrics:
  users: {event_type_filter: {in_values: [login]}, aggregation_type: UNIQUE, aggregation_key: user}
  calls: {event_type_filter: {in_values: [call]}, aggregation_type: COUNT}
customers: {acme: {}}
rate_cards: {rc: {rates: []}}
contracts: {k: {customer: acme, rate_card: rc, starting_at: 2026-01-01}}
"""
    )
    n = 20_010  # a login every 2,001 events, by users u0, u1, u2, u0, …
    logins = [i % 2_001 == 0 for i in range(n)]
    pl.DataFrame(
        {
            "transaction_id": [str(i) for i in range(n)],
            "customer_id": ["acme"] * n,
            "event_type": ["login" if login else "call" for login in logins],
            "timestamp": ["2026-03-02T10:00:00Z"] * n,
            "properties.user": [f"u{i // 2_001 % 3}" if login else f"c{i}" for i, login in enumerate(logins)],
        }
    ).write_parquet(tmp_path / "events.parquet")
    events = [str(tmp_path / "events.parquet")]
    plan = compile(pricing.load(tmp_path)).compile_usage(events, *MARCH)
    assert plan.strategy_reason == "about 4 distinct key combinations in 20,010 events"
    pre = plan.frame.collect()
    assert pre.filter(pl.col("_bucket") == "rated").height == 4  # the calls, and the 3 users' logins
    table, buckets = usage_of(tmp_path, events)
    assert table == {("acme", "users", "[]"): Decimal(3), ("acme", "calls", "[]"): Decimal(20_000)}
    assert buckets["rated"] == n


def test_distinct_key_combinations_are_extrapolated_from_a_sample() -> None:
    # Keys drawn uniformly: 100, 50 and 25 new combinations in the three thirds of 50,000 rows:
    # r = 25/50 = 0.5, K = 50/0.25 = 200, pace = (100 - 200 × 0.5) / 50,000 = 0; so 175 seen,
    # and 175 + 200 × 0.125 × (1 - 0.5) = 187.5 → 188 in 200,000 rows; in 10M all 200 show.
    assert distinct_at(150_000, 50_000, (100, 150, 175)) == 175
    assert distinct_at(200_000, 50_000, (100, 150, 175)) == 188
    assert distinct_at(10_000_000, 50_000, (100, 150, 175)) == 200
    # a key new on every event: no slowing down, as many combinations as rows
    assert distinct_at(10_000_000, 30_000, (30_000, 60_000, 90_000)) == 10_000_000
    assert distinct_at(10_000_000, 30_000, (7, 7, 7)) == 7  # saturated at once
    # A mix: an id on a tenth of the events, and 300 combinations of the other keys, all seen
    # in the first third: 3,300, 3,000 and 3,000 new. r = 0, K = 300, pace = 3,000 / 30,000:
    # 9,300 + 0.1 × (3M - 90,000) = 300,300 in 3M rows, as many as there are. (The halves alone,
    # 4,800 and 9,300, fit K = 76,800 uniform combinations: about 75,700 in 3M rows.)
    assert distinct_at(3_000_000, 30_000, (3_300, 6_300, 9_300)) == 300_300
    # Both at once: 100, 60, 50 new: r = 10/40 = 0.25, K = 40/0.5625 = 71.1, pace × 10,000 =
    # 100 - 71.1 × 0.75 = 46.7: 210 + 46.7 × 97 + 71.1 × 0.25³ = 4,737.8 in 1M rows.
    assert distinct_at(1_000_000, 10_000, (100, 160, 210)) == 4_738
    # 100, 60, 10 new: no geometric decline fits (50 ≥ 40); the last third's pace goes on
    assert distinct_at(1_000_000, 10_000, (100, 160, 170)) == 170 + 10 * 97


@settings(max_examples=300, deadline=None)
@given(
    third=st.integers(1, 50_000),
    shares=st.tuples(*(st.floats(0, 1) for _ in range(3))),
    more=st.tuples(st.integers(0, 10**9), st.integers(0, 10**9)),
)
def test_the_distinct_estimate_lies_between_what_was_seen_and_the_rows_and_grows_with_them(
    third: int, shares: tuple[float, float, float], more: tuple[int, int]
) -> None:
    # counts that a sample can show: each third adds at most its rows as new combinations,
    # the first at least one
    new = [max(1, round(shares[0] * third)), round(shares[1] * third), round(shares[2] * third)]
    seen = (new[0], new[0] + new[1], new[0] + new[1] + new[2])
    fewer, larger = 3 * third + min(more), 3 * third + max(more)
    assert seen[2] <= distinct_at(fewer, third, seen) <= fewer
    assert distinct_at(fewer, third, seen) <= distinct_at(larger, third, seen)


def test_parquet_struct_and_flat_properties(tmp_path: Path) -> None:
    frame = pl.read_ndjson(
        CASE / "part1.jsonl",
        schema_overrides={
            "properties": pl.Struct({"cost": pl.String, "user": pl.String, "region": pl.String})
        },
    )
    frame.write_parquet(tmp_path / "struct.parquet")
    frame.unnest("properties", separator=".").write_parquet(tmp_path / "flat.parquet")
    # a map, as Spark and Arrow write one: the pairs present, in another order on each row
    entry = pl.element()
    pairs = (
        pl.concat_list(
            pl.struct(pl.lit(k).alias("key"), pl.col("properties").struct.field(k).alias("value"))
            for k in ("region", "user", "cost")
        )
        .list.eval(entry.filter(entry.struct.field("value").is_not_null()))
        .list.reverse()
    )
    frame.with_columns(pairs.alias("properties")).write_parquet(tmp_path / "map.parquet")
    for name in ("struct.parquet", "flat.parquet", "map.parquet"):
        table, _ = usage_of(CASE, [str(tmp_path / name)])
        assert table[("acme", "cost", "[]")] == Decimal(1)
        assert table[("acme", "users", "[]")] == Decimal(3)
    # Properties as JSON text would be absent from every row, each unmatched: invalid instead
    frame.with_columns(pl.col("properties").struct.json_encode()).write_parquet(tmp_path / "text.parquet")
    result = compile(pricing.load(CASE)).usage([str(tmp_path / "text.parquet")], *MARCH)
    assert result.ledger.buckets["invalid"] == frame.height
    assert result.ledger.invalid[0].reason == (
        "the properties column is String: neither a struct nor a map of names to values"
        " (nor are they properties.<name> columns)"
    )


def test_files_named_with_glob_characters_are_read_as_named(tmp_path: Path) -> None:
    """Polars expands glob characters in a path: `x[1].jsonl` read `x1.jsonl` in its place (or
    nothing at all: its rows were missing from the ledger), `x*.jsonl` every file so named. Each
    file is read once, as named: from a folder, and given on its own."""
    rows = (CASE / "part1.jsonl").read_text().splitlines()
    (tmp_path / "x1.jsonl").write_text("\n".join(rows[:2]) + "\n")
    for name in ("x[1].jsonl", "x*.jsonl", "x?.jsonl", "x].jsonl"):
        (tmp_path / name).write_text("\n".join(rows) + "\n")
    frame = pl.read_ndjson(CASE / "part1.jsonl").unnest("properties", separator=".")
    frame.write_parquet(tmp_path / "x[2].parquet")
    frame.write_csv(tmp_path / "x[3].csv")
    plan = compile(pricing.load(CASE))
    assert plan.usage([str(tmp_path)], *MARCH).ledger.rows == 2 + 6 * len(rows)
    assert plan.usage([str(tmp_path / "x[1].jsonl")], *MARCH).ledger.rows == len(rows)
    assert plan.usage([str(tmp_path / "x[2].parquet")], *MARCH).ledger.rows == len(rows)


def test_parquet_nested_values_and_a_timestamp_column_of_numbers(tmp_path: Path) -> None:
    """A list or struct property value is its JSON text, as in NDJSON (casting it was a Polars
    traceback): three calls with users ["a"], ["a"], ["b", "c"] and one without are 2 unique
    users. A timestamp column of numbers makes each row invalid with the column's type."""
    at = datetime(2026, 3, 2, tzinfo=UTC)
    pl.DataFrame(
        {
            "transaction_id": ["1", "2", "3", "4"],
            "customer_id": ["acme"] * 4,
            "event_type": ["call"] * 4,
            "timestamp": [at] * 4,
            "properties.user": [["a"], ["a"], ["b", "c"], None],
        }
    ).write_parquet(tmp_path / "lists.parquet")
    table, buckets = usage_of(CASE, [str(tmp_path / "lists.parquet")])
    assert (table[("acme", "users", "[]")], table[("acme", "calls", "[]")]) == (Decimal(2), Decimal(4))
    assert buckets["rated"] == 4
    pl.DataFrame(
        {"transaction_id": ["1"], "customer_id": ["acme"], "event_type": ["call"], "timestamp": [1772409600]}
    ).write_parquet(tmp_path / "epoch.parquet")
    result = compile(pricing.load(CASE)).usage([str(tmp_path / "epoch.parquet")], *MARCH)
    assert result.ledger.buckets["invalid"] == 1
    assert result.ledger.invalid[0].reason == (
        "the timestamp column is Int64: neither a timestamp nor RFC 3339 text"
    )


def test_field_columns_named_in_other_case_are_named_in_the_reason(tmp_path: Path) -> None:
    """Snowflake exports upper-case column names: each row was invalid as "missing
    transaction_id", which sent a reader looking at the rows; the reason names the columns."""
    at = "2026-03-02T00:00:00Z"
    pl.DataFrame(
        {
            "TRANSACTION_ID": ["1", "2"],
            "CUSTOMER_ID": ["acme"] * 2,
            "EVENT_TYPE": ["call"] * 2,
            "TIMESTAMP": [at] * 2,
        }
    ).write_parquet(tmp_path / "snow.parquet")
    (tmp_path / "one.csv").write_text(f"Transaction_Id,customer_id,event_type,timestamp\n1,acme,call,{at}\n")
    plan = compile(pricing.load(CASE))
    ledger = plan.usage([str(tmp_path / "snow.parquet")], *MARCH).ledger
    assert (ledger.rows, ledger.buckets["invalid"]) == (2, 2)
    assert ledger.invalid[0].reason == (
        "no transaction_id, customer_id, event_type, timestamp columns: the file has TRANSACTION_ID,"
        " CUSTOMER_ID, EVENT_TYPE, TIMESTAMP (column names are case-sensitive)"
    )
    (row,) = plan.usage([str(tmp_path / "one.csv")], *MARCH).ledger.invalid
    assert (row.reason, row.row) == (
        "no transaction_id column: the file has Transaction_Id (column names are case-sensitive)",
        1,
    )


def test_a_column_the_header_names_twice_makes_its_rows_invalid(tmp_path: Path) -> None:
    """A CSV header naming `properties.cost` twice: Polars' reader read the first column and
    quietly renamed the second (`_duplicated_0`), so the 5 and 7 in it were never counted. Which
    column holds a row's value is unclear: every row is invalid, with the reason — read by the
    reader or record by record (records that end at a lone CR). A repeated column the run does
    not read changes nothing."""
    at = "2026-03-02T00:00:00Z"
    header = "transaction_id,customer_id,event_type,timestamp,properties.cost,properties.cost,note,note"
    records = [header, f"1,acme,call,{at},2,5,a,b", f"2,acme,call,{at},,7,c,d"]
    (tmp_path / "twice.csv").write_text("\n".join(records) + "\n")
    (tmp_path / "mac.csv").write_bytes(("\r".join(records) + "\r").encode())
    plan = compile(pricing.load(CASE))
    reason = "the header has 2 columns named properties.cost: which holds the value is unclear"
    for name in ("twice.csv", "mac.csv"):
        result = plan.usage([str(tmp_path / name)], *MARCH)
        assert result.usage.is_empty()
        assert (result.ledger.rows, result.ledger.buckets["invalid"]) == (2, 2)
        assert [(r.reason, r.row) for r in result.ledger.invalid] == [(reason, 1), (reason, 2)]
    (tmp_path / "notes.csv").write_text(
        f"transaction_id,customer_id,event_type,timestamp,note,note\n1,acme,call,{at},a,b\n"
    )
    result = plan.usage([str(tmp_path / "notes.csv")], *MARCH)
    assert (result.ledger.buckets["rated"], result.ledger.buckets["invalid"]) == (1, 0)
    # a header Polars' reader cannot name either (the third `a` would be `a_duplicated_0`)
    with pytest.raises(EventReadError, match="the CSV header a, a_duplicated_0, a names a column twice over"):
        column_names(["a", "a_duplicated_0", "a"])
    assert column_names(["a", "b", "a", "a", "b"]) == [
        "a",
        "b",
        "a_duplicated_0",
        "a_duplicated_1",
        "b_duplicated_0",
    ]


def test_parquet_text_stored_as_bytes_and_durations(tmp_path: Path) -> None:
    """Older Hive and Impala write text as plain bytes, which Polars reads as Binary: read as
    UTF-8 text, timestamps too, and a value that is not UTF-8 makes its row invalid (the cast
    failed the run; a timestamp column of bytes made every row invalid).
    A duration (a cast failed the run) is its ISO 8601 text: not a number, a distinct value."""
    at = datetime(2026, 3, 2, tzinfo=UTC)
    pl.DataFrame(
        {
            "transaction_id": [b"1", b"2", b"\xff", b"4", b"1", b"6", b"7"],
            "customer_id": [b"acme"] * 7,
            "event_type": [b"call"] * 7,
            "timestamp": [b"2026-03-02T00:00:00Z"] * 5 + [b"", b"2 March"],
            "properties.user": [b"a", b"\xfe", b"b", "é".encode(), b"c", b"d", b"e"],
            "properties.cost": [b"5", b"1", b"1", b"2.5", b"9", b"1", b"1"],
            "properties.region": [b"us", b"us", b"us", b"eu", b"us", b"us", b"us"],
        }
    ).write_parquet(tmp_path / "bytes.parquet")
    result = compile(pricing.load(CASE)).usage([str(tmp_path / "bytes.parquet")], *MARCH)
    assert metric_table(result) == {
        ("calls", "[]"): Decimal(2),
        ("cost", "[]"): Decimal("7.5"),
        ("users", "[]"): Decimal(2),  # a, é
        ("by_region", "[('region', 'eu')]"): Decimal(1),
        ("by_region", "[('region', 'us')]"): Decimal(1),
    }
    assert (result.ledger.rows, result.ledger.buckets["duplicate"]) == (7, 1)
    assert [(i.reason, i.row) for i in result.ledger.invalid] == [
        ("property 'user' is not UTF-8 text", 2),
        ("transaction_id is not UTF-8 text", 3),
        ("missing timestamp", 6),
        ("unparseable timestamp", 7),
    ]
    pl.DataFrame(
        {
            "transaction_id": ["d1", "d2", "d3"],
            "customer_id": ["acme"] * 3,
            "event_type": ["call"] * 3,
            "timestamp": [at] * 3,
            "properties.user": [timedelta(seconds=90), timedelta(seconds=90), timedelta(seconds=1)],
            "properties.cost": [None, None, timedelta(seconds=1)],
        }
    ).write_parquet(tmp_path / "durations.parquet")
    result = compile(pricing.load(CASE)).usage([str(tmp_path / "durations.parquet")], *MARCH)
    assert metric_table(result) == {
        ("calls", "[]"): Decimal(2),
        ("users", "[]"): Decimal(1),  # PT90S
    }
    assert [(i.reason, i.row) for i in result.ledger.invalid] == [
        ("property 'cost' is not a number: 'PT1S' (metric 'cost')", 3)
    ]


def test_parquet_bytes_inside_a_list_or_struct_value(tmp_path: Path) -> None:
    """Bytes inside a list or struct property value are UTF-8 text too (the value is its JSON
    text); bytes that are not make the row invalid. They stopped the run: "could not read the
    events (…): invalid utf8". Rows 2 and 4 hold \\xff in `user`, row 5 in `region`; users is
    UNIQUE of `user` over rows 1 and 3: ["a","b"] and [null,"a"] (a null element stays null),
    two values."""
    at = datetime(2026, 3, 2, tzinfo=UTC)
    pl.DataFrame(
        {
            "transaction_id": ["1", "2", "3", "4", "5"],
            "customer_id": ["acme"] * 5,
            "event_type": ["call"] * 5,
            "timestamp": [at] * 5,
            "properties.user": [
                [b"a", b"b"],
                [b"a", b"\xff"],
                [None, b"a"],
                [b"not \xff in a long value"],
                None,
            ],
            "properties.region": [
                {"id": "é".encode()},
                {"id": b"x"},
                {"id": b"x"},
                {"id": b"x"},
                {"id": b"\xfe"},
            ],
        }
    ).write_parquet(tmp_path / "nested.parquet")
    result = compile(pricing.load(CASE)).usage([str(tmp_path / "nested.parquet")], *MARCH)
    assert metric_table(result) == {("calls", "[]"): Decimal(2), ("users", "[]"): Decimal(2)}
    assert [(i.reason, i.row) for i in result.ledger.invalid] == [
        ("property 'user' is not UTF-8 text", 2),
        ("property 'user' is not UTF-8 text", 4),
        ("property 'region' is not UTF-8 text", 5),
    ]


@pytest.mark.parametrize("strategy", [PRE_AGGREGATED, PER_METRIC])
def test_usage_that_adds_up_past_what_quantities_hold_says_so(tmp_path: Path, strategy: str) -> None:
    """Two costs of 9 × 10^19 add up to 1.8 × 10^20, past Decimal(38, 18): the run stops with
    what happened, not "could not read the events" and Polars' words for the overflow."""
    at = "2026-03-02T00:00:00Z"
    events = tmp_path / "big.jsonl"
    events.write_text(
        "".join(
            json.dumps(
                {
                    "transaction_id": t,
                    "customer_id": "acme",
                    "event_type": "call",
                    "timestamp": at,
                    "properties": {"cost": "90000000000000000000"},
                }
            )
            + "\n"
            for t in ("b1", "b2")
        )
    )
    message = (
        f"the usage in {events.as_posix()} adds up to 10^20 or more, more than quantities can hold"
        " (38 digits, 18 after the point)"
    )
    with pytest.raises(EventReadError, match=f"^{re.escape(message)}$"):
        compile(pricing.load(CASE)).usage([str(events)], *MARCH, strategy=strategy)


def test_the_ledger_shows_at_most_100_invalid_rows(tmp_path: Path) -> None:
    """150 costs that are not numbers are 150 reasons (each names its value): the first 100
    rows are shown, and the bucket counts all 150; 7 rows of one reason show its first 5."""
    at = "2026-03-02T00:00:00Z"
    events = tmp_path / "bad.jsonl"
    rows = [
        {
            "transaction_id": f"b{i}",
            "customer_id": "acme",
            "event_type": "call",
            "timestamp": at,
            "properties": {"cost": f"x{i}"},
        }
        for i in range(150)
    ]
    events.write_text("".join(json.dumps(r) + "\n" for r in rows))
    ledger = compile(pricing.load(CASE)).usage([str(events)], *MARCH).ledger
    assert ledger.buckets["invalid"] == 150
    assert [(i.reason, i.row) for i in ledger.invalid] == [
        (f"property 'cost' is not a number: 'x{i}' (metric 'cost')", i + 1) for i in range(100)
    ]
    same = [{**r, "properties": {"cost": "x"}} for r in rows[:7]]
    events.write_text("".join(json.dumps(r) + "\n" for r in same))
    ledger = compile(pricing.load(CASE)).usage([str(events)], *MARCH).ledger
    assert [i.row for i in ledger.invalid] == [1, 2, 3, 4, 5]


def test_csv_records_ending_at_a_carriage_return_alone(tmp_path: Path) -> None:
    """Excel's "CSV (Macintosh)" ends records with a carriage return alone: Polars' reader read
    the file as one header line, and the run had no rows at all (nothing in the ledger). It is
    read record by record: 3 calls (costs 5 and 7, and one whose cost is not a number)."""
    at = "2026-03-02T00:00:00Z"
    rows = [
        "transaction_id,customer_id,event_type,timestamp,properties.cost",
        f"c1,acme,call,{at},5",
        f"c2,acme,call,{at},x",
        f"c3,acme,call,{at},7",
    ]
    (tmp_path / "mac.csv").write_text("\r".join(rows) + "\r", newline="")
    result = compile(pricing.load(CASE)).usage([str(tmp_path / "mac.csv")], *MARCH)
    assert metric_table(result) == {
        ("calls", "[]"): Decimal(2),
        ("cost", "[]"): Decimal(12),
        ("users", "[]"): Decimal(0),  # (a UNIQUE with no value: 0)
    }
    assert (result.ledger.rows, result.ledger.buckets["rated"]) == (3, 2)
    assert [(i.reason, i.row) for i in result.ledger.invalid] == [
        ("property 'cost' is not a number: 'x' (metric 'cost')", 2)
    ]


def test_a_broken_csv_row_is_an_invalid_row_not_a_failed_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rows Polars' CSV reader cannot take (it fails the whole file) are read record by record:
    a row with a surplus cell, text after a closing quote, and a quote never closed (which takes
    the rest of the file) are each an invalid row with its reason; the two good rows count. The
    records are written a chunk at a time into Parquet files, read back in order."""
    head = "transaction_id,customer_id,event_type,timestamp,properties.user,properties.cost,properties.region"
    at = "2026-03-02T00:00:00Z"
    rows = [
        f"r1,acme,call,{at},u1,5,us",
        f"r2,acme,call,{at},u2,7,us,surplus",
        f'r3,acme,call,{at},"u3"x,1,eu',
        f"r4,acme,call,{at},u4",
        f'r5,acme,call,{at},"u5,2,eu',
        f"r6,acme,call,{at},u6,3,eu",
    ]
    broken = tmp_path / "broken.csv"
    broken.write_text("\n".join([head, *rows]) + "\n")
    result = compile(pricing.load(CASE)).usage([str(broken)], *MARCH)
    assert (result.ledger.rows, result.ledger.buckets["rated"], result.ledger.buckets["invalid"]) == (5, 2, 3)
    assert [(i.reason, i.row) for i in result.ledger.invalid] == [
        ("8 cells where the header has 7", 2),
        ("malformed CSV: text after a closing quote", 3),
        ("malformed CSV: a quote is not closed (the rest of the file is this row)", 5),
    ]
    assert metric_table(result) == {
        ("calls", "[]"): Decimal(2),
        ("cost", "[]"): Decimal(5),
        ("users", "[]"): Decimal(2),
        ("by_region", "[('region', 'us')]"): Decimal(1),
    }
    # the good rows alone, read by Polars: the same usage
    clean = tmp_path / "clean.csv"
    clean.write_text("\n".join([head, rows[0], rows[3]]) + "\n")
    plan = compile(pricing.load(CASE))
    assert plan.usage([str(clean)], *MARCH).usage.equals(result.usage)
    # both files in one run, and invoiced: only the broken one is read record by record (its r1
    # and r4 repeat the clean file's ids, so they are duplicates)
    both = plan.invoice([str(clean), str(broken)], *MARCH).ledger
    assert (both.rows, both.buckets["rated"], both.buckets["duplicate"], both.buckets["invalid"]) == (
        7,
        2,
        2,
        3,
    )
    explained = plan.explain([str(clean), str(broken)], *MARCH)
    assert (explained.count("Csv SCAN"), explained.count("Parquet SCAN")) == (1, 1)
    # in chunks of two records: three Parquet files, the same rows in the same places
    monkeypatch.setattr(sources, "CSV_CHUNK", 2)
    chunked = tmp_path / "chunked.csv"
    chunked.write_text(broken.read_text())
    again = plan.usage([str(chunked)], *MARCH)
    assert [(i.reason, i.row) for i in again.ledger.invalid] == [
        (i.reason, i.row) for i in result.ledger.invalid
    ]
    assert again.usage.equals(result.usage)
    assert len(repair._RECORDS[chunked].parts) == 3
    # a run compiled again reads its files again: events given as an iterator are read once
    again = tmp_path / "again.csv"
    again.write_text(broken.read_text())
    assert plan.usage(iter([str(again)]), *MARCH).ledger.buckets["invalid"] == 3


def test_a_broken_csv_record_leaves_the_others_to_the_reader(tmp_path: Path) -> None:
    """A CSV file whose records Polars' reader cannot read are each one line (no quoted value left
    open) is patched: the reader reads a copy with those lines emptied, and they are read one
    by one by Python's csv module, in their place. Records with a surplus cell (commas in quoted
    values not counted) and text after a closing quote are invalid rows with their reasons; a
    quote inside an unquoted cell is text (Python reads it so; Polars fails the file) and the
    row counts before the reader's later row of its transaction id. (Record by record, one
    such row in 1M events took 7.4–8.3 s against 0.75 s.) Windows line ends, a byte-order mark,
    gzip and bytes that are not UTF-8 alike; read by a scan of its own."""
    head = "transaction_id,customer_id,event_type,timestamp,properties.user,properties.cost,properties.region"
    at = "2026-03-02T00:00:00Z"
    rows = [
        f"r1,acme,call,{at},u1,5,us",
        f"r2,acme,call,{at},u2,7,us,surplus",
        f'r3,acme,call,{at},"u3, jr",1,eu',
        f"r4,acme,call,{at},u4",
        f'r5,acme,call,{at},"a,b",2,eu,x,y',
        f'r6,acme,call,{at},"u"6,3,us',
        f'r7,acme,call,{at},12" screen,10,us',
        f"r7,acme,call,{at},u8,1000,us",
    ]
    text = "\ufeff" + "\r\n".join([head, *rows]) + "\r\n"  # (a byte-order mark first, as Excel writes)
    (tmp_path / "broken.csv").write_text(text, newline="")
    (tmp_path / "broken.csv.gz").write_bytes(gzip.compress(text.encode()))
    (tmp_path / "latin.csv").write_bytes(text.encode().replace(b"u4", b"u\xfc4"))  # (its cells counted alike)
    (tmp_path / "later.csv").write_text(f"{head}\nr1,acme,call,{at},u9,100,us\n")
    plan = compile(pricing.load(CASE))
    for name in ("broken.csv", "broken.csv.gz", "latin.csv"):
        path = tmp_path / name
        for _ in range(2):  # the run that finds the file at fault, and a run that reads it patched
            result = plan.usage([str(path), str(tmp_path / "later.csv")], *MARCH)
            assert metric_table(result) == {
                ("calls", "[]"): Decimal(4),
                ("cost", "[]"): Decimal(16),
                ("users", "[]"): Decimal(4),
                ("by_region", "[('region', 'eu')]"): Decimal(1),
                ("by_region", "[('region', 'us')]"): Decimal(2),
            }
            assert {b: n for b, n in result.ledger.buckets.items() if n} == {
                "rated": 4,
                "duplicate": 2,
                "invalid": 3,
            }
            assert [(i.reason, Path(i.file).name, i.row) for i in result.ledger.invalid] == [
                ("8 cells where the header has 7", name, 2),
                ("9 cells where the header has 7", name, 5),
                ("malformed CSV: text after a closing quote", name, 6),
            ]
        explained = plan.explain([str(path), str(tmp_path / "later.csv")], *MARCH)
        copy = " (of a copy, bytes that are not UTF-8 as U+FFFD)" if name == "latin.csv" else " (of a copy)"
        read = f"Polars' CSV reader{copy}, but for 4 record(s) it may not read, read one by one"
        assert f"  {path.as_posix()}: {read}" in explained
        assert "events: 2 file(s), 2 scan(s)" in explained


def test_a_broken_csv_whose_records_span_lines_is_read_record_by_record(tmp_path: Path) -> None:
    """A quoted value over two lines (legal CSV) means the file's lines are not its records: a
    patch, which empties lines, cannot be made, and the file is read record by record — the
    two-line record a valid row, the surplus one invalid at its record number."""
    head = "transaction_id,customer_id,event_type,timestamp,properties.user,properties.cost"
    at = "2026-03-02T00:00:00Z"
    rows = [
        f"r1,acme,call,{at},u1,5",
        f'r2,acme,call,{at},"two\nlines",7',
        f"r3,acme,call,{at},u3,1,surplus",
        f"r4,acme,call,{at},u4,2",
    ]
    path = tmp_path / "lines.csv"
    path.write_text("\n".join([head, *rows]) + "\n")
    plan = compile(pricing.load(CASE))
    result = plan.usage([str(path)], *MARCH)
    assert metric_table(result) == {
        ("calls", "[]"): Decimal(3),
        ("cost", "[]"): Decimal(14),
        ("users", "[]"): Decimal(3),
    }
    assert [(i.reason, i.row) for i in result.ledger.invalid] == [("7 cells where the header has 6", 3)]
    explained = plan.explain([str(path)], *MARCH)
    assert f"  {path.as_posix()}: record by record (a record Polars' CSV reader cannot read)" in explained


def test_json_numbers_read_the_same_whole_and_line_by_line(tmp_path: Path) -> None:
    """Lines read one by one read their numbers as the NDJSON reader reads them (they gave
    `1000.0` and `1e-07` where the reader gives `1000`): users 1e3, 1000.0 and 1000 are one
    user, a tier of 2.50 is the excluded "2.5", and a transaction id written 7.0 is the id 7 of
    a later row, which is its duplicate. The reader reads indented lines as they are, beside a
    broken line read one by one; a whole file whose copy the reader fails on, after the checks
    that set lines aside and the thorough ones, is read line by line (a nested `properties`
    misleads the pattern that sets lines aside). A file that is not all UTF-8 is
    read by the reader from a UTF-8 copy (its other bytes as U+FFFD), its broken line set aside."""

    def call(tx: str, user: str, tier: str) -> str:
        head = f'"transaction_id": {tx}, "customer_id": "acme", "event_type": "call"'
        properties = f'{{"user": {user}, "region": "us", "tier": {tier}}}'
        return f'{{{head}, "timestamp": "2026-03-02T00:00:00Z", "properties": {properties}}}'

    lines = [
        call('"1"', "1e3", "2.50"),
        call('"2"', "1000.0", "1"),
        call("7.0", "1000", "3"),
        call("7", "5", "3"),
    ]
    (tmp_path / "whole.jsonl").write_text("\n".join(lines) + "\n")
    (tmp_path / "indented.jsonl").write_text("\n".join([*(" " + line for line in lines), "{broken"]) + "\n")
    misled = (  # (of a customer unknown)
        '{"transaction_id": "9", "customer_id": "nobody", "event_type": "call", "meta": {"properties": {}},'
        ' "timestamp": "2026-03-02T00:00:00Z", "properties": 5}'
    )
    (tmp_path / "misled.jsonl").write_text("\n".join([*lines, misled, "{broken"]) + "\n")
    (tmp_path / "latin.jsonl").write_bytes(("\n".join(lines) + "\n").encode() + b'{"\xff\n')
    plan = compile(pricing.load(CASE))
    whole = plan.usage([str(tmp_path / "whole.jsonl")], *MARCH)
    for name, read in [
        ("indented.jsonl", "Polars' NDJSON reader (of a copy), but for 1 line(s) it skips or may not read"),
        ("misled.jsonl", "line by line (a line Polars' NDJSON reader cannot read)"),
        ("latin.jsonl", "Polars' NDJSON reader (of a copy, bytes that are not UTF-8 as U+FFFD), but for 1"),
    ]:
        by_line = plan.usage([str(tmp_path / name)], *MARCH)
        assert f"{(tmp_path / name).as_posix()}: {read}" in plan.explain([str(tmp_path / name)], *MARCH)
        assert metric_table(by_line) == {
            ("calls", "[]"): Decimal(3),
            ("users", "[]"): Decimal(1),
            ("by_region", "[('region', 'us')]"): Decimal(2),
        }
        assert whole.usage.equals(by_line.usage)
        assert (by_line.ledger.buckets["duplicate"], by_line.ledger.buckets["invalid"]) == (1, 1)


def test_parquet_float_values_read_as_json_numbers_do(tmp_path: Path) -> None:
    """A float property of a Parquet file is compared and grouped by the text NDJSON's reader
    gives the same number, not Polars' own text of the float ("1000.0", "1e-7", "1e+20"): in a
    flat or a struct column, of 64 or 32 bits, 1e3 is "1000" for `in_values` and for groups."""
    (tmp_path / "spec").mkdir()
    (tmp_path / "spec" / "pricing.yaml").write_text("version: 1\nname: Floats\n")
    (tmp_path / "spec" / "spec.yaml").write_text(
        """metrics:
  by_v: {property_filters: [{name: v, exists: true}], aggregation_type: COUNT, group_keys: [[v]]}
  some: {property_filters: [{name: v, in_values: ["1000", "0.0000001"]}], aggregation_type: COUNT}
customers: {acme: {}}
rate_cards: {card: {rates: []}}
contracts: {acme-1: {customer: acme, rate_card: card, starting_at: 2026-01-01}}
"""
    )
    values = [1e3, 2.5, 1e-7, 1e20, -1.25e-5]
    texts = ["-0.0000125", "0.0000001", "1000", "100000000000000000000", "2.5"]
    rows = [
        {
            "transaction_id": str(i),
            "customer_id": "acme",
            "event_type": "e",
            "timestamp": "2026-03-02T00:00:00Z",
        }
        for i in range(len(values))
    ]
    (tmp_path / "numbers.jsonl").write_text(
        "".join(
            json.dumps({**row, "properties": {"v": v}}) + "\n" for row, v in zip(rows, values, strict=True)
        )
    )
    flat = pl.DataFrame(rows).with_columns(pl.Series("properties.v", values))
    flat.write_parquet(tmp_path / "flat.parquet")
    flat.with_columns(pl.col("properties.v").cast(pl.Float32)).write_parquet(tmp_path / "flat32.parquet")
    flat.select(*rows[0], pl.struct(pl.col("properties.v").alias("v")).alias("properties")).write_parquet(
        tmp_path / "struct.parquet"
    )
    plan = compile(pricing.load(tmp_path / "spec"))
    for name in ("numbers.jsonl", "flat.parquet", "flat32.parquet", "struct.parquet"):
        usage = quantities(plan.usage([str(tmp_path / name)], *MARCH).usage)
        assert sorted(g["v"] for _, _, m, g, _ in usage if m == "by_v") == texts, name
        assert [q for _, _, m, _, q in usage if m == "some"] == [2], name


def test_parquet_decimal_values_and_a_timestamp_column_without_a_zone(tmp_path: Path) -> None:
    """A decimal property column is compared by its shortest text (2.50 is "2.5", 3.00 is "3");
    a timestamp column without a zone is UTC: 2026-03-31 23:30 is 01:30 on April 1 in Berlin,
    the project's timezone, outside March's run (read as Berlin time, it would be March's)."""
    (tmp_path / "spec").mkdir()
    (tmp_path / "spec" / "pricing.yaml").write_text("version: 1\nname: Columns\ntimezone: Europe/Berlin\n")
    (tmp_path / "spec" / "spec.yaml").write_text(
        """metrics:
  by_v: {property_filters: [{name: v, in_values: ["2.5", "3"]}], aggregation_type: COUNT, group_keys: [[v]]}
customers: {acme: {}}
rate_cards: {card: {rates: []}}
contracts: {acme-1: {customer: acme, rate_card: card, starting_at: 2026-01-01}}
"""
    )
    pl.DataFrame(
        {
            "transaction_id": ["1", "2", "3"],
            "customer_id": ["acme"] * 3,
            "event_type": ["e"] * 3,
            "timestamp": [datetime(2026, 3, 2), datetime(2026, 3, 3), datetime(2026, 3, 31, 23, 30)],
            "properties.v": pl.Series(
                [Decimal("2.50"), Decimal("3.00"), Decimal("2.50")], dtype=pl.Decimal(10, 2)
            ),
        }
    ).write_parquet(tmp_path / "events.parquet")
    result = compile(pricing.load(tmp_path / "spec")).usage(
        [str(tmp_path / "events.parquet")], period="2026-03"
    )
    assert sorted((g["v"], q) for _, _, _, g, q in quantities(result.usage)) == [("2.5", 1), ("3", 1)]
    assert (result.ledger.buckets["rated"], result.ledger.buckets["outside_run"]) == (2, 1)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.floats(allow_nan=False, allow_infinity=False), min_size=1, max_size=20))
def test_a_float_is_written_by_its_shortest_digits_without_an_exponent(values: list[float]) -> None:
    def plain(value: float) -> str:  # Python's shortest digits (repr), written out
        text = format(Decimal(repr(value)), "f")
        return text.removesuffix(".0")

    written = pl.DataFrame({"v": values}).select(scan._float_text(pl.col("v"))).to_series().to_list()
    assert written == [plain(v) for v in values]


def test_a_quoted_empty_csv_cell_is_absent(tmp_path: Path) -> None:
    """A quote-all export writes an absent value as "": absent, as an empty cell is (Polars reads
    it as an empty text, which made `cost` exist and the row invalid as not a number)."""
    (tmp_path / "quoted.csv").write_text(
        '"transaction_id","customer_id","event_type","timestamp","properties.user","properties.cost"\n'
        '"q1","acme","call","2026-03-02T00:00:00Z","u1",""\n'
    )
    table, buckets = usage_of(CASE, [str(tmp_path / "quoted.csv")])
    assert table == {("acme", "calls", "[]"): Decimal(1), ("acme", "users", "[]"): Decimal(1)}
    assert (buckets["rated"], buckets["invalid"]) == (1, 0)


def test_a_file_named_twice_is_read_once_and_globs_name_files_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file named again another way — `./a.jsonl`, its absolute path, a link to it — was read
    again, each of its rows a second time as a duplicate (3 rows counted 9 times). A glob that
    matched a folder named `x.jsonl` or a broken link was a traceback (IsADirectoryError,
    FileNotFoundError): a glob names files, as a folder's files are."""
    rows = (CASE / "part1.jsonl").read_text().splitlines()[:3]
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "a.jsonl").write_text("\n".join(rows) + "\n")
    (tmp_path / "link.jsonl").symlink_to(tmp_path / "data" / "a.jsonl")
    (tmp_path / "data" / "broken.jsonl").symlink_to(tmp_path / "nowhere.jsonl")
    (tmp_path / "data" / "folder.jsonl").mkdir()
    monkeypatch.chdir(tmp_path)
    named = [
        "data",
        str(tmp_path / "data" / "a.jsonl"),
        "./data/../data/a.jsonl",
        "link.jsonl",
        "data/*.jsonl",
    ]
    assert [f.path.as_posix() for f in expand(named)] == ["data/a.jsonl"]
    ledger = compile(pricing.load(CASE)).usage(named, *MARCH).ledger
    assert (ledger.rows, ledger.buckets["duplicate"]) == (3, 0)
    with pytest.raises(EventInputError, match=r"data/b\*.jsonl: holds no event files"):
        expand(["data/b*.jsonl"])


def test_event_arguments(tmp_path: Path) -> None:
    (tmp_path / "b.jsonl").write_text("")
    (tmp_path / "a.csv").write_text("transaction_id\n")
    assert [f.path.name for f in expand([str(tmp_path)])] == ["a.csv", "b.jsonl"]
    assert [f.path.name for f in expand([str(tmp_path / "*.jsonl"), str(tmp_path)])] == ["b.jsonl", "a.csv"]
    (tmp_path / "a.jsonl").write_text("")  # a glob's files in sorted order (the file system's is any)
    assert [f.path.name for f in expand([str(tmp_path / "*.jsonl")])] == ["a.jsonl", "b.jsonl"]
    (tmp_path / "a.jsonl").unlink()
    with pytest.raises(EventInputError, match="no such file, folder or matching glob"):
        expand([str(tmp_path / "missing.jsonl")])
    os.mkfifo(tmp_path / "pipe.jsonl")  # (as `--events <(zcat …)` names one: it said "no such file")
    with pytest.raises(EventInputError) as piped:
        expand([str(tmp_path / "pipe.jsonl")])
    assert str(piped.value) == (
        f"{tmp_path / 'pipe.jsonl'}: a pipe or device, not a file: a run reads its event files more"
        " than once; write the events to a file (gzip and zstd files are read as they are)"
    )
    (tmp_path / "pipe.jsonl").unlink()
    (tmp_path / "notes.txt").write_text("")
    with pytest.raises(EventInputError, match="unknown event file type") as raised:
        expand([str(tmp_path / "notes.txt")])
    assert str(raised.value).endswith(
        "expected one of .jsonl, .ndjson, .csv, .parquet, .jsonl.gz, .ndjson.gz, .csv.gz,"
        " .jsonl.zst, .ndjson.zst, .csv.zst"
    )
    (tmp_path / "c.jsonl.gz").write_bytes(gzip.compress(b""))
    (tmp_path / "c.csv.zst").write_bytes(zstandard.compress(b""))
    (tmp_path / "d.parquet.gz").write_bytes(gzip.compress(b""))  # (Parquet compresses itself)
    (tmp_path / "._c.jsonl").write_bytes(b"\x00\x05\x16\x07")  # hidden (macOS's AppleDouble)
    (tmp_path / ".cache").mkdir()
    (tmp_path / ".cache" / "e.jsonl").write_text("")
    assert [(f.path.name, f.format) for f in expand([str(tmp_path)])] == [
        ("a.csv", "csv"),
        ("b.jsonl", "ndjson"),
        ("c.csv.zst", "csv"),
        ("c.jsonl.gz", "ndjson"),
    ]


def _zstd(data: bytes) -> bytes:
    """zstd, in two frames (as files appended to, or written in parallel, are)."""
    return b"".join(zstandard.compress(half) for half in (data[: len(data) // 2], data[len(data) // 2 :]))


@pytest.mark.parametrize(("suffix", "compress"), [(".gz", gzip.compress), (".zst", _zstd)])
def test_compressed_text_files(tmp_path: Path, suffix: str, compress: Callable[[bytes], bytes]) -> None:
    """NDJSON and CSV files may be compressed with gzip or zstd (as warehouse exports are): read
    as the plain ones, also with lines set aside, cut short, line by line and record by record;
    found to be compressed by their first bytes, as Polars finds it, whatever their name. A
    truncated one stops the run, with the reason."""
    plain = [str(CASE / "part1.jsonl"), str(CASE / "part2.csv")]
    packed = [str(tmp_path / f"part1.jsonl{suffix}"), str(tmp_path / f"part2.csv{suffix}")]
    for source, target in zip(plain, packed, strict=True):
        Path(target).write_bytes(compress(Path(source).read_bytes()))
    assert usage_of(CASE, packed) == usage_of(CASE, plain)
    # a blank line and broken records: read by the reader but for those, or record by record
    lines = (CASE / "part1.jsonl").read_bytes().splitlines(keepends=True)
    (tmp_path / "blank.jsonl").write_bytes(compress(b"".join([*lines[:3], b"\n", *lines[3:]])))
    (tmp_path / "latin.jsonl").write_bytes(compress(b"".join([*lines[:3], b'{"\xff\n', *lines[3:]])))
    broken = b"transaction_id,customer_id,event_type,timestamp\nz1,acme,call,2026-03-02,surplus\n"
    (tmp_path / "broken.csv").write_bytes(compress(broken))
    (tmp_path / "quoted.csv").write_bytes(compress(broken.replace(b"surplus", b'"open')))
    names = ("blank.jsonl", "latin.jsonl", "broken.csv", "quoted.csv")
    result = compile(pricing.load(CASE)).usage([str(tmp_path / n) for n in names], *MARCH)
    assert result.ledger.rows == 2 * len(lines) + 4
    assert [(i.reason, Path(i.file).name, i.row) for i in result.ledger.invalid] == [
        ("blank line", "blank.jsonl", 4),
        ("malformed JSON", "latin.jsonl", 4),
        ("5 cells where the header has 4", "broken.csv", 1),
        ("malformed CSV: a quote is not closed (the rest of the file is this row)", "quoted.csv", 1),
    ]
    cut = tmp_path / f"cut.jsonl{suffix}"
    cut.write_bytes(Path(packed[0]).read_bytes()[:60])
    with pytest.raises(EventReadError, match=f"^could not read {cut.as_posix()}: "):
        compile(pricing.load(CASE)).usage([str(cut)], *MARCH)


@pytest.mark.parametrize(
    ("suffix", "compress"),
    [("", bytes), (".gz", gzip.compress), (".zst", zstandard.compress), (".zst", _zstd)],
)
def test_the_rows_of_a_compressed_file_are_estimated_from_its_text(
    tmp_path: Path, suffix: str, compress: Callable[[bytes], bytes]
) -> None:
    """The row count that chooses the plan reads a text file's size as its text's: a compressed
    file's size times the ratio at which its first megabyte decompresses (its first gzip member or
    zstd frame). 1,700 like lines: exactly that, plain, gzipped or in one zstd frame; in two zstd
    frames of half the lines each, within a percent."""
    text = (CASE / "part1.jsonl").read_bytes() * 100
    path = tmp_path / f"events.jsonl{suffix}"
    path.write_bytes(compress(text))
    rows = choices.input_rows(expand([str(path)]))
    assert abs(rows - 1700) <= (17 if compress is _zstd else 0)


def test_project_timezone_and_dst(tmp_path: Path) -> None:
    """Berlin: March 2026 runs from 2026-02-28T23:00Z to 2026-03-31T22:00Z (summer time began on
    29 March, a 23-hour day)."""
    (tmp_path / "pricing.yaml").write_text("version: 1\nname: Berlin\ntimezone: Europe/Berlin\n")
    (tmp_path / "spec.yaml").write_text(
        "metrics: {calls: {aggregation_type: COUNT}}\n"
        "products: {p: {type: usage, billable_metric: calls}}\n"
        "customers: {acme: {}}\n"
        "rate_cards: {rc: {rates: [{product: p, starting_at: 2026-01-01, rate_type: FLAT, price: 1}]}}\n"
        "contracts: {c: {customer: acme, rate_card: rc, starting_at: 2026-01-01}}\n"
    )
    times = [
        "2026-02-28T22:59:59Z",  # 23:59:59 on 28 Feb in Berlin: February, outside the run
        "2026-02-28T23:00:00Z",  # midnight, 1 March in Berlin: the run's first instant
        "2026-03-29T01:30:00Z",  # 03:30 summer time on the 23-hour day
        "2026-03-31T21:59:59Z",  # 23:59:59 on 31 March in Berlin
        "2026-03-31T22:00:00Z",  # midnight, 1 April in Berlin: outside the run
    ]
    lines = [
        f'{{"transaction_id": "{i}", "customer_id": "acme", "event_type": "x", "timestamp": "{t}"}}'
        for i, t in enumerate(times)
    ]
    (tmp_path / "events.jsonl").write_text("\n".join(lines) + "\n")
    project = pricing.load(tmp_path)
    berlin_march = (datetime(2026, 2, 28, 23, tzinfo=UTC), datetime(2026, 3, 31, 22, tzinfo=UTC))
    result = compile(project).usage([str(tmp_path / "events.jsonl")], *berlin_march, window="DAY")
    rows = [(r["window_start"], r["window_end"], r["quantity"]) for r in result.rows()]
    assert rows == [
        ("2026-02-28T23:00:00Z", "2026-03-01T23:00:00Z", "1"),
        ("2026-03-28T23:00:00Z", "2026-03-29T22:00:00Z", "1"),  # 23 hours long
        ("2026-03-30T22:00:00Z", "2026-03-31T22:00:00Z", "1"),
    ]
    assert {r["period_start"] for r in result.rows()} == {"2026-02-28T23:00:00Z"}
    assert result.ledger.buckets["outside_run"] == 2


@pytest.mark.parametrize("dedup", [WINDOW, PRE_PASS])
def test_an_empty_required_field_is_missing(tmp_path: Path, dedup: str) -> None:
    """An empty text in a required field is no value, as an empty CSV cell is: two events with
    the empty transaction id are both invalid (not one counted and one a duplicate), and so are
    an empty customer, event type and timestamp. An empty property is a value (NDJSON says so)."""
    (tmp_path / "pricing.yaml").write_text("version: 1\nname: Empty\n")
    (tmp_path / "spec.yaml").write_text(
        "metrics: {calls: {aggregation_type: COUNT, property_filters: [{name: user, exists: true}],"
        " group_keys: [[user]]}}\n"
        "customers: {acme: {}}\nrate_cards: {rc: {rates: []}}\n"
        "contracts: {c: {customer: acme, rate_card: rc, starting_at: 2026-01-01}}\n"
    )
    good = {"customer_id": "acme", "event_type": "x", "timestamp": "2026-03-10T12:00:00Z"}
    events = [
        {**good, "transaction_id": "", "properties": {"user": "a"}},
        {**good, "transaction_id": "", "properties": {"user": "b"}},
        {**good, "transaction_id": "1", "customer_id": ""},
        {**good, "transaction_id": "2", "event_type": ""},
        {**good, "transaction_id": "3", "timestamp": ""},
        {**good, "transaction_id": "4", "properties": {"user": ""}},
    ]
    (tmp_path / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    result = compile(pricing.load(tmp_path)).usage([str(tmp_path / "events.jsonl")], *MARCH, dedup=dedup)
    assert [(r.reason, r.row) for r in result.ledger.invalid] == [
        ("missing transaction_id", 1),
        ("missing transaction_id", 2),
        ("missing customer_id", 3),
        ("missing event_type", 4),
        ("missing timestamp", 5),
    ]
    assert (result.ledger.buckets["rated"], result.ledger.buckets["duplicate"]) == (1, 0)
    assert [(g, q) for _, _, _, g, q in quantities(result.usage)] == [({"user": ""}, Decimal(1))]


TIMESTAMP_FORMS = [  # (as written, the instant it is, or None: unparseable)
    ("2026-03-10T12:00:00Z", "2026-03-10T12:00:00Z"),
    ("2026-03-10T12:00:00", "2026-03-10T12:00:00Z"),  # no offset: UTC
    ("2026-03-10T14:00:00+02:00", "2026-03-10T12:00:00Z"),
    ("2026-03-10T07:00:00-0500", "2026-03-10T12:00:00Z"),
    ("2026-03-10 12:00:00.250Z", "2026-03-10T12:00:00.250Z"),  # a space for the T
    ("2026-03-10t12:00:00z", "2026-03-10T12:00:00Z"),  # RFC 3339 allows either case
    ("2026-03-10T12:00:00.123456789Z", "2026-03-10T12:00:00.123456Z"),  # to the microsecond
    (" 2026-03-10T12:00:00Z ", "2026-03-10T12:00:00Z"),
    ("2026-03-10", "2026-03-10T00:00:00Z"),  # a bare date: midnight UTC
    ("2026-02-30T12:00:00Z", None),
    ("10/03/2026 12:00", None),
    ("2026-03-10T12:00Z", None),  # RFC 3339 has seconds
    ("yesterday", None),
]


@pytest.mark.parametrize("order", ["as listed", "reversed"])
def test_every_timestamp_is_read_on_its_own(tmp_path: Path, order: str) -> None:
    """Each value's form is its own: Polars' format inference read a whole column by its first
    value's format, so after a time without an offset every "Z" time was unparseable (and a
    bare date first made the others so). Each event is its own group (a COUNT grouped by its
    number `n`), and its HOUR window shows the hour of the instant read."""
    forms = TIMESTAMP_FORMS if order == "as listed" else TIMESTAMP_FORMS[::-1]
    (tmp_path / "pricing.yaml").write_text("version: 1\nname: Forms\n")
    (tmp_path / "spec.yaml").write_text(
        "metrics: {calls: {aggregation_type: COUNT, property_filters: [{name: n, exists: true}],"
        " group_keys: [[n]]}}\n"
        "customers: {acme: {}}\nrate_cards: {rc: {rates: []}}\n"
        "contracts: {c: {customer: acme, rate_card: rc, starting_at: 2026-01-01}}\n"
    )
    lines = [
        json.dumps(
            {
                "transaction_id": str(i),
                "customer_id": "acme",
                "event_type": "x",
                "timestamp": written,
                "properties": {"n": str(i)},
            }
        )
        for i, (written, _) in enumerate(forms)
    ]
    (tmp_path / "events.jsonl").write_text("\n".join(lines) + "\n")
    result = compile(pricing.load(tmp_path)).usage([str(tmp_path / "events.jsonl")], *MARCH, window="HOUR")
    read = {int(json.loads(r["group_values"])["n"]): r["window_start"] for r in result.rows()}
    expected = {i: at[:13] + ":00:00Z" for i, (_, at) in enumerate(forms) if at is not None}
    assert read == expected
    unparseable = sum(1 for _, at in forms if at is None)
    assert result.ledger.buckets["invalid"] == unparseable
    assert {r.reason for r in result.ledger.invalid} == {"unparseable timestamp"}


def test_two_contracts_and_a_gap_inside_one_day(tmp_path: Path) -> None:
    """The first contract ends at 06:00 on 10 March, the second starts at 12:00: that UTC day
    holds three pieces of acme's time (two boundaries inside it)."""
    (tmp_path / "pricing.yaml").write_text("version: 1\nname: Gap\n")
    (tmp_path / "spec.yaml").write_text(
        "metrics: {calls: {aggregation_type: COUNT}}\n"
        "products: {p: {type: usage, billable_metric: calls}}\n"
        "customers: {acme: {ingest_aliases: [acme-eu]}}\n"
        "rate_cards: {rc: {rates: [{product: p, starting_at: 2026-01-01, rate_type: FLAT, price: 1}]}}\n"
        "contracts:\n"
        "  first: {customer: acme, rate_card: rc, starting_at: 2026-01-01,\n"
        "          ending_before: 2026-03-10T06:00:00Z}\n"
        "  second: {customer: acme, rate_card: rc, starting_at: 2026-03-10T12:00:00Z}\n"
    )
    times = [
        ("acme", "2026-03-10T00:00:00Z"),  # first
        ("acme-eu", "2026-03-10T05:59:59.999999Z"),  # first, by alias, its last microsecond
        ("acme", "2026-03-10T06:00:00Z"),  # no contract
        ("acme", "2026-03-10T11:59:59Z"),  # no contract
        ("acme-eu", "2026-03-10T12:00:00Z"),  # second, its first instant
        ("acme", "2026-03-10T23:59:59Z"),  # second
        ("acme", "2026-03-11T00:00:00Z"),  # second, the next day
        ("nobody", "2026-03-10T07:00:00Z"),  # unknown customer
    ]
    lines = [
        f'{{"transaction_id": "{i}", "customer_id": "{c}", "event_type": "x", "timestamp": "{t}"}}'
        for i, (c, t) in enumerate(times)
    ]
    (tmp_path / "events.jsonl").write_text("\n".join(lines) + "\n")
    result = compile(pricing.load(tmp_path)).usage([str(tmp_path / "events.jsonl")], *MARCH)
    assert [(r["contract_id"], r["period_start"], r["quantity"]) for r in result.rows()] == [
        ("first", "2026-03-01T00:00:00Z", "2"),
        ("second", "2026-03-10T12:00:00Z", "3"),
    ]
    buckets = result.ledger.buckets
    assert (buckets["rated"], buckets["no_contract"], buckets["unknown_customer"]) == (5, 2, 1)


@pytest.mark.parametrize("dedup", [WINDOW, PRE_PASS])
def test_lines_the_reader_may_not_read_are_read_one_by_one_in_their_place(tmp_path: Path, dedup: str) -> None:
    """A file with a broken line is read by Polars' NDJSON reader from a copy without the lines
    it may not read (the broken one, a first line after a byte-order mark, a `properties` that is
    not an object), which are read one by one; both kinds of rows keep their place in input
    order. So d1 and d2 count from lines 1 and 3, and lines 2 and 4 (indented: the reader reads
    it) are their duplicates: cost 1 + 100 (not 10 or 1000). d3 counts without properties, line 7's time is
    not one (its number is its line's), line 6 is malformed. Windows line ends, and gzip, alike."""

    def call(tx: str, properties: str, timestamp: str = "2026-03-02T00:00:00Z") -> str:
        head = f'"transaction_id": "{tx}", "customer_id": "acme", "event_type": "call"'
        return f'{{{head}, "timestamp": "{timestamp}", "properties": {properties}}}'

    lines = [
        "\ufeff" + call("d1", '{"cost": "1"}'),
        call("d1", '{"cost": "10"}'),
        call("d2", '{"cost": "100"}'),
        " " + call("d2", '{"cost": "1000"}'),
        call("d3", "5"),
        '{"transaction_id": "d9", oops',
        call("d4", '{"cost": "1"}', "yesterday"),
    ]
    text = "\r\n".join(lines) + "\r\n"
    (tmp_path / "events.jsonl").write_text(text, encoding="utf-8", newline="")
    (tmp_path / "packed.jsonl.gz").write_bytes(gzip.compress(text.encode()))
    plan = compile(pricing.load(CASE))
    for name in ("events.jsonl", "packed.jsonl.gz"):
        path = tmp_path / name
        result = plan.usage([str(path)], *MARCH, dedup=dedup)
        assert [(m, q) for _, _, m, _, q in quantities(result.usage)] == [
            ("calls", Decimal(3)),
            ("cost", Decimal(101)),
            ("users", Decimal(0)),
        ]
        buckets = {b: n for b, n in result.ledger.buckets.items() if n}
        assert buckets == {"rated": 3, "duplicate": 2, "invalid": 2}
        assert [(r.reason, r.row) for r in result.ledger.invalid] == [
            ("malformed JSON", 6),
            ("unparseable timestamp", 7),
        ]
        read = (
            "Polars' NDJSON reader (of a copy), but for 3 line(s) it skips or may not read, read one by one"
        )
        assert f"  {path.as_posix()}: {read}" in plan.explain([str(path)], *MARCH)


def test_a_copy_the_reader_cannot_read_either_is_read_line_by_line(tmp_path: Path) -> None:
    """The pattern that finds a `properties` member the reader cannot read finds the first one,
    which an object's own `properties` before it misleads: z1 goes into the copy, the reader
    fails on the copy too, and the file is read line by line — where z1 is a call of acme's
    without properties, and the broken line an invalid row."""
    lines = (CASE / "part1.jsonl").read_text().splitlines()
    head = '"transaction_id": "z1", "customer_id": "acme", "event_type": "call"'
    misled = (
        f'{{{head}, "meta": {{"properties": {{}}}}, "timestamp": "2026-03-05T00:00:00Z", "properties": 5}}'
    )
    odd = tmp_path / "odd.jsonl"
    odd.write_text("\n".join([*lines, misled, "{broken"]) + "\n")
    plan = compile(pricing.load(CASE))
    whole = plan.usage([str(CASE / "part1.jsonl")], *MARCH)
    result = plan.usage([str(odd)], *MARCH)
    calls = {(c, m): q for c, _, m, _, q in quantities(result.usage)}
    assert (
        calls[("acme", "calls")]
        == {(c, m): q for c, _, m, _, q in quantities(whole.usage)}[("acme", "calls")] + 1
    )
    assert result.ledger.rows == len(lines) + 2
    assert [(r.reason, r.row) for r in result.ledger.invalid][-1] == ("malformed JSON", len(lines) + 2)
    read = "line by line (a line Polars' NDJSON reader cannot read)"
    assert f"  {odd.as_posix()}: {read}" in plan.explain([str(odd)], *MARCH)


def test_without_room_for_copies_a_broken_file_is_read_line_by_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The patches of a file with a broken line, and of one that is not all UTF-8, need copies in
    the temporary folder; where it cannot be made (here TMPDIR is a file: a full or missing
    folder alike), each file is read line by line, as before patches, with the same rows; a CSV
    file record by record, its rows in memory."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "a file"))
    (tmp_path / "a file").write_text("")
    monkeypatch.setattr(repair, "_MADE", [])  # (no folder made yet in this process)
    text = (CASE / "part1.jsonl").read_bytes()
    (tmp_path / "broken.jsonl").write_bytes(text + b"{broken\n")
    (tmp_path / "latin.jsonl").write_bytes(text.replace(b'"u1"', b'"\xfc1"') + b"{broken\n")
    plan = compile(pricing.load(CASE))
    whole = plan.usage([str(CASE / "part1.jsonl")], *MARCH)
    for name in ("broken.jsonl", "latin.jsonl"):
        path = tmp_path / name
        result = plan.usage([str(path)], *MARCH)
        read = "line by line (a line Polars' NDJSON reader cannot read)"
        assert f"  {path.as_posix()}: {read}" in plan.explain([str(path)], *MARCH)
        assert result.ledger.buckets["invalid"] == whole.ledger.buckets["invalid"] + 1
        assert [(r.reason, r.row) for r in result.ledger.invalid][-1] == ("malformed JSON", 18)
        if name == "broken.jsonl":
            assert result.usage.equals(whole.usage)
    # a CSV file that a patch would read is read record by record, its rows held in memory
    (tmp_path / "broken.csv").write_bytes(
        (CASE / "part2.csv").read_bytes() + b'z9,acme,call,2026-03-02,"u"9\n'
    )
    whole = plan.usage([str(CASE / "part2.csv")], *MARCH)
    result = plan.usage([str(tmp_path / "broken.csv")], *MARCH)
    assert "record by record" in plan.explain([str(tmp_path / "broken.csv")], *MARCH)
    assert result.usage.equals(whole.usage)
    assert [(r.reason, r.row) for r in result.ledger.invalid][-1] == (
        "malformed CSV: text after a closing quote",
        4,
    )


def test_a_broken_line_changes_the_reader_not_the_other_lines(tmp_path: Path) -> None:
    """part1.jsonl is read whole by Polars' NDJSON reader; with a broken line and a blank line
    appended the reader reads a copy without them, and they are read one by one. Every other
    line counts the same, the two new lines are invalid rows 18 and 19 (their line numbers). A
    line cut short is found by cheap checks; one malformed between its braces only when the
    reader fails on the copy they made."""
    broken = tmp_path / "part1.jsonl"
    broken.write_text((CASE / "part1.jsonl").read_text() + '{"transaction_id": "z1", \n\n')
    lines = len((CASE / "part1.jsonl").read_text().splitlines())
    project = compile(pricing.load(CASE))
    # `pricing explain` finds out how the run will read a file, a run when it fails or falls short
    read = "Polars' NDJSON reader (of a copy), but for {} line(s) it skips or may not read, read one by one"
    assert f"  {broken.as_posix()}: {read.format(2)}" in project.explain([str(broken)], *MARCH)
    whole = project.usage([str(CASE / "part1.jsonl")], *MARCH)
    by_line = project.usage([str(broken)], *MARCH)
    assert "NDJson SCAN" in project.explain([str(CASE / "part1.jsonl")], *MARCH)
    assert by_line.usage.equals(whole.usage)
    assert by_line.ledger.buckets == {**whole.ledger.buckets, "invalid": whole.ledger.buckets["invalid"] + 2}
    assert [(r.reason, r.row) for r in by_line.ledger.invalid][-2:] == [
        ("malformed JSON", lines + 1),
        ("blank line", lines + 2),
    ]
    # `properties` that is not an object: Polars' reader would fail, so one by one
    odd = tmp_path / "odd.jsonl"
    odd.write_text(
        (CASE / "part1.jsonl").read_text()
        + '{"transaction_id": "z2", "customer_id": "acme", "event_type": "call",'
        + ' "timestamp": "2026-03-05T00:00:00Z", "properties": 5}\n'
    )
    assert project.usage([str(odd)], *MARCH).ledger.rows == lines + 1
    assert f"  {odd.as_posix()}: {read.format(1)}" in project.explain([str(odd)], *MARCH)
    # a byte-order mark before the first line (Windows editors): one by one, and still counted
    marked = tmp_path / "marked.jsonl"
    marked.write_text("\ufeff" + (CASE / "part1.jsonl").read_text(), encoding="utf-8")
    assert f"  {marked.as_posix()}: {read.format(1)}" in project.explain([str(marked)], *MARCH)
    with_mark = project.usage([str(marked)], *MARCH)
    assert (with_mark.usage.equals(whole.usage), with_mark.ledger) == (True, whole.ledger)
    # malformed between its braces: the first checks miss it, the reader fails on their copy, and
    # the thorough checks (JSONPath) set it aside
    inside = tmp_path / "inside.jsonl"
    inside.write_text((CASE / "part1.jsonl").read_text() + '{"transaction_id": "z3", oops}\n')
    result = project.usage([str(inside)], *MARCH)
    assert (result.usage.equals(whole.usage), result.ledger.invalid[-1].reason) == (True, "malformed JSON")
    assert f"  {inside.as_posix()}: {read.format(1)}" in project.explain([str(inside)], *MARCH)
    assert repair._PATCHED[inside].thorough
    # beside a line cut short, which the first checks find: the reader fails on their copy
    both = tmp_path / "both.jsonl"
    both.write_text(inside.read_text() + '{"transaction_id": "z4", \n')
    result = project.usage([str(both)], *MARCH)
    assert [r.reason for r in result.ledger.invalid][-2:] == ["malformed JSON", "malformed JSON"]
    assert f"  {both.as_posix()}: {read.format(2)}" in project.explain([str(both)], *MARCH)
    assert repair._PATCHED[both].thorough


def test_a_run_that_fails_on_a_parquet_file_says_so_beside_its_one_text_file(tmp_path: Path) -> None:
    """A run whose only text file is NDJSON looks for that file's bad lines at once when the run
    fails. Here the fault is a Parquet file's data (its footer reads, a page does not): the
    NDJSON file, whose first line is after a byte-order mark, is patched on the way (harmless:
    it reads as before), and the run stops with the Parquet reader's reason."""
    n = 2000
    pl.DataFrame(
        {
            "transaction_id": [f"p{i}" for i in range(n)],
            "customer_id": ["acme"] * n,
            "event_type": ["call"] * n,
            "timestamp": ["2026-03-02T00:00:00Z"] * n,
            "properties.cost": [str(i) for i in range(n)],
        }
    ).write_parquet(tmp_path / "paged.parquet")
    data = bytearray((tmp_path / "paged.parquet").read_bytes())
    data[200:1200] = bytes(b ^ 0x5A for b in data[200:1200])  # (its data pages)
    (tmp_path / "paged.parquet").write_bytes(bytes(data))
    (tmp_path / "marked.jsonl").write_text("\ufeff" + (CASE / "part1.jsonl").read_text(), encoding="utf-8")
    plan = compile(pricing.load(CASE))
    files = [str(tmp_path / "marked.jsonl"), str(tmp_path / "paged.parquet")]
    with pytest.raises(
        EventReadError, match=r"^could not read the events \(.*marked\.jsonl, .*paged\.parquet\): parquet"
    ):
        plan.usage(files, *MARCH)
    whole = plan.usage([str(CASE / "part1.jsonl")], *MARCH)
    marked = plan.usage([str(tmp_path / "marked.jsonl")], *MARCH)
    assert (marked.usage.equals(whole.usage), marked.ledger) == (True, whole.ledger)


def test_a_blank_line_the_reader_skips_is_still_a_row(tmp_path: Path) -> None:
    """Polars' NDJSON reader skips blank lines (spaces, tabs, a carriage return) without an
    error, so the run finds the file short of its lines afterwards. When every line it lacks is
    blank, the run counts them without running again (line by line, a stray blank line at the
    end of 1M events took 18 s against 3 s; a copy without them and a second run, 3.7–4.5 s):
    each blank line is an invalid row of its own (3, 4 and the last), and each other line keeps
    its own number. With a broken line too, the reader fails, and it reads a copy without the
    four."""
    lines = (CASE / "part1.jsonl").read_text().splitlines()
    gap = tmp_path / "gap.jsonl"
    gap.write_text("\n".join([*lines[:2], "", " \t\r", *lines[2:], ""]) + "\n")
    plan = compile(pricing.load(CASE))
    whole = plan.usage([str(CASE / "part1.jsonl")], *MARCH)
    result = plan.usage([str(gap)], *MARCH)
    assert result.usage.equals(whole.usage)
    assert result.ledger.rows == len(lines) + 3
    rows = [(r.reason, r.row) for r in result.ledger.invalid]
    assert [row for row in rows if row[0] == "blank line"] == [
        ("blank line", 3),
        ("blank line", 4),
        ("blank line", len(lines) + 3),
    ]
    assert [row for _, row in rows if _ != "blank line"] == [r.row + 2 for r in whole.ledger.invalid]
    explained = plan.explain([str(gap)], *MARCH)
    assert f"  {gap.as_posix()}: Polars' NDJSON reader\n" in explained
    assert (explained.count("NDJson SCAN"), "Parquet SCAN" in explained) == (1, False)
    assert plan.usage([str(gap)], *MARCH).ledger == result.ledger  # (a later run alike)
    read = "Polars' NDJSON reader (of a copy), but for {} line(s) it skips or may not read, read one by one"
    # with a broken line too, four lines set aside
    gap.write_text(gap.read_text() + "{broken\n")
    result = plan.usage([str(gap)], *MARCH)
    assert result.usage.equals(whole.usage)
    assert [(r.reason, r.row) for r in result.ledger.invalid if r.reason != "blank line"][-1] == (
        "malformed JSON",
        len(lines) + 4,
    )
    assert ("blank line", 4) in [(r.reason, r.row) for r in result.ledger.invalid]
    assert f"  {gap.as_posix()}: {read.format(4)}" in plan.explain([str(gap)], *MARCH)


def test_blank_lines_are_at_most_five_examples_whichever_way_they_are_read(tmp_path: Path) -> None:
    """A patched file's blank lines (read one by one) and another file's (skipped by the reader,
    counted after the run) are one invalid reason: its first five examples in input order."""
    text = (CASE / "part1.jsonl").read_text()
    (tmp_path / "a.jsonl").write_text("\n\n\n" + text + "{broken\n")
    (tmp_path / "b.jsonl").write_text(text + "\n \n\t\n")
    lines = len(text.splitlines())
    result = compile(pricing.load(CASE)).usage([str(tmp_path / "a.jsonl"), str(tmp_path / "b.jsonl")], *MARCH)
    blanks = [(Path(r.file).name, r.row) for r in result.ledger.invalid if r.reason == "blank line"]
    assert blanks == [
        ("a.jsonl", 1),
        ("a.jsonl", 2),
        ("a.jsonl", 3),
        ("b.jsonl", lines + 1),
        ("b.jsonl", lines + 2),
    ]
    whole = compile(pricing.load(CASE)).usage([str(CASE / "part1.jsonl")], *MARCH).ledger
    assert result.ledger.buckets["invalid"] == 2 * whole.buckets["invalid"] + 7
    assert result.ledger.rows == 2 * lines + 7


def test_a_project_without_customers_and_an_empty_file(tmp_path: Path) -> None:
    """No customer to look events up in, and an empty NDJSON file and an empty CSV file (not even
    a header: it was a traceback) beside a one-line one: the one event is an unknown customer's,
    and the run still writes its ledger and (no) invoices."""
    (tmp_path / "pricing.yaml").write_text("version: 1\nname: Empty\n")
    (tmp_path / "spec.yaml").write_text(
        "metrics: {calls: {aggregation_type: COUNT}}\nproducts: {p: {type: usage, billable_metric: calls}}\n"
    )
    (tmp_path / "empty.jsonl").write_text("")
    (tmp_path / "empty.csv").write_text("")
    event = '{"transaction_id": "1", "customer_id": "x", "event_type": "e", "timestamp": "2026-03-02"}'
    (tmp_path / "one.jsonl").write_text(event + "\n")
    files = [str(tmp_path / name) for name in ("empty.jsonl", "empty.csv", "one.jsonl")]
    plan = compile(pricing.load(tmp_path))
    assert plan.usage(files, *MARCH).ledger.buckets["unknown_customer"] == 1
    run = plan.invoice(files, *MARCH)
    assert (run.invoices, run.ledger.rows, run.ledger.buckets["unknown_customer"]) == ((), 1, 1)


def test_a_property_only_tested_for_presence_does_not_split_the_pre_aggregation(tmp_path: Path) -> None:
    """Metronome's usual metric: SUM of tokens with `{name: tokens, exists: true}`. 200 events
    with token counts 1…200 are one group of the pre-aggregation, not 200; the sum is
    200 · 201 / 2 = 20,100, and an event without tokens is unmatched."""
    (tmp_path / "pricing.yaml").write_text("version: 1\nname: Tokens\n")
    (tmp_path / "spec.yaml").write_text(
        "metrics:\n"
        "  tokens:\n"
        "    property_filters: [{name: tokens, exists: true}]\n"
        "    aggregation_type: SUM\n"
        "    aggregation_key: tokens\n"
        "customers: {acme: {}}\n"
        "rate_cards: {rc: {rates: []}}\n"
        "contracts: {c: {customer: acme, rate_card: rc, starting_at: 2026-01-01}}\n"
    )
    lines = [
        f'{{"transaction_id": "{n}", "customer_id": "acme", "event_type": "chat",'
        f' "timestamp": "2026-03-02T00:00:00Z", "properties": {{"tokens": {n}}}}}'
        for n in range(1, 201)
    ]
    no_tokens = {
        "transaction_id": "x",
        "customer_id": "acme",
        "event_type": "chat",
        "timestamp": "2026-03-03T00:00:00Z",
    }
    lines.append(json.dumps(no_tokens))
    (tmp_path / "events.jsonl").write_text("\n".join(lines) + "\n")
    plan = compile(pricing.load(tmp_path)).compile_usage([str(tmp_path / "events.jsonl")], *MARCH)
    pre = plan.frame.collect()
    assert pre.filter(pl.col("_bucket") == "rated").height == 1
    result = compile(pricing.load(tmp_path)).usage([str(tmp_path / "events.jsonl")], *MARCH)
    assert [q for *_, q in quantities(result.usage)] == [Decimal(20100)]
    assert (result.ledger.buckets["rated"], result.ledger.buckets["unmatched"]) == (200, 1)


def test_broken_lines_are_invalid_rows_not_a_failed_run(tmp_path: Path) -> None:
    call = '"customer_id": "acme", "event_type": "call", "timestamp": "2026-03-0{}T00:00:00Z"}}'
    lines = [
        '{"transaction_id": "1", ' + call.format(2),
        '{"transaction_id": "2", "customer_id": "acme", "event_type": ',  # cut off
        "not json at all",
        "",
        "[1, 2, 3]",
        '{"transaction_id": 7, ' + call.format(3),
        " null ",
        '"text"',
    ]
    (tmp_path / "events.jsonl").write_text("\n".join(lines) + "\n")
    result = compile(pricing.load(CASE)).usage([str(tmp_path / "events.jsonl")], *MARCH)
    assert result.ledger.rows == 8
    assert result.ledger.buckets["rated"] == 2  # a numeric transaction id is read as its text
    assert [(r.reason, r.row) for r in result.ledger.invalid] == [
        ("malformed JSON", 2),
        ("malformed JSON", 3),
        ("blank line", 4),
        ("not a JSON object", 5),
        ("not a JSON object", 7),
        ("not a JSON object", 8),
    ]


DEDUP_SPEC = """metrics:
  n: {aggregation_type: COUNT}
customers: {acme: {}}
rate_cards: {rc: {rates: []}}
contracts: {k: {customer: acme, rate_card: rc, starting_at: 2026-01-01}}
"""


def _dedup_project(tmp_path: Path) -> Path:
    (tmp_path / "pricing.yaml").write_text("version: 1\nname: Dedup\n")
    (tmp_path / "spec.yaml").write_text(DEDUP_SPEC)
    rows = [
        {"transaction_id": "a", "customer_id": "acme", "event_type": "call"},  # no timestamp
        {"transaction_id": "a", "customer_id": "acme", "event_type": "call", "timestamp": "2026-03-02"},
        {"transaction_id": "a", "customer_id": "acme", "event_type": "call", "timestamp": "2026-03-01"},
        {"transaction_id": "b", "customer_id": "acme", "event_type": "call", "timestamp": "2026-03-03"},
        {"transaction_id": "b", "customer_id": "nobody", "event_type": "call", "timestamp": "2026-03-03"},
        {"transaction_id": "b", "customer_id": "acme", "event_type": "call", "timestamp": "2026-03-03"},
        {"customer_id": "acme", "event_type": "call", "timestamp": "2026-03-04"},  # no transaction id
    ]
    (tmp_path / "events.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return tmp_path


@pytest.mark.parametrize("dedup", [WINDOW, PRE_PASS])
def test_duplicates_by_hand_both_ways(tmp_path: Path, dedup: str) -> None:
    """An invalid row claims no id (the second "a" is the first valid one and counts); every later
    valid row of an id is a duplicate, whatever else is wrong with it (the "b" from nobody)."""
    root = _dedup_project(tmp_path)
    table, buckets = usage_of(root, [str(root / "events.jsonl")], dedup=dedup)
    assert table == {("acme", "n", "[]"): Decimal(2)}
    assert {b: n for b, n in buckets.items() if n} == {"rated": 2, "duplicate": 3, "invalid": 2}


@pytest.mark.parametrize("dedup", [WINDOW, PRE_PASS])
def test_a_duplicate_in_a_file_whose_property_column_has_another_type(tmp_path: Path, dedup: str) -> None:
    """The second and third files repeat the first's ids, their `region` a float column and
    no column at all: read with its property, each is a scan of its own, and its rows keep their
    positions. (The pre-pass, reading no property, scanned all three as one and numbered their
    rows so: it found no duplicate, and every repeated event was counted again.)"""
    (tmp_path / "pricing.yaml").write_text("version: 1\nname: Types\n")
    (tmp_path / "spec.yaml").write_text(
        """metrics:
  n: {property_filters: [{name: region, exists: true}], aggregation_type: COUNT, group_keys: [[region]]}
customers: {acme: {}}
rate_cards: {card: {rates: []}}
contracts: {acme-1: {customer: acme, rate_card: card, starting_at: 2026-01-01}}
"""
    )
    fields = {
        "customer_id": ["acme"] * 2,
        "event_type": ["call"] * 2,
        "timestamp": ["2026-03-02T00:00:00Z"] * 2,
    }
    pl.DataFrame({"transaction_id": ["a", "b"], **fields, "properties.region": ["us", "eu"]}).write_parquet(
        tmp_path / "1.parquet"
    )
    pl.DataFrame({"transaction_id": ["c", "a"], **fields, "properties.region": [2.5, 3.0]}).write_parquet(
        tmp_path / "2.parquet"
    )
    pl.DataFrame({"transaction_id": ["b", "d"], **fields}).write_parquet(tmp_path / "3.parquet")
    files = [str(tmp_path / f"{n}.parquet") for n in (1, 2, 3)]
    table, buckets = usage_of(tmp_path, files, dedup=dedup)
    assert table == {
        ("acme", "n", "[('region', '2.5')]"): Decimal(1),
        ("acme", "n", "[('region', 'eu')]"): Decimal(1),
        ("acme", "n", "[('region', 'us')]"): Decimal(1),
    }
    assert {b: n for b, n in buckets.items() if n} == {"rated": 3, "duplicate": 2, "unmatched": 1}


@pytest.mark.parametrize("hashed", [pl.lit(0, pl.UInt64), pl.col("transaction_id").str.len_bytes()])
def test_the_pre_pass_is_exact_when_ids_share_a_hash(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, hashed: pl.Expr
) -> None:
    """The pre-pass's first step finds repeated hashes, not ids: with every id hashing alike
    ("a", "b" and the missing id all 0, or their length), its second step still tells the ids
    apart — the same buckets as by hand above, and the same duplicate rows."""
    monkeypatch.setattr(meter, "ID_HASH", hashed)
    root = _dedup_project(tmp_path)
    table, buckets = usage_of(root, [str(root / "events.jsonl")], dedup=PRE_PASS)
    assert table == {("acme", "n", "[]"): Decimal(2)}
    assert {b: n for b, n in buckets.items() if n} == {"rated": 2, "duplicate": 3, "invalid": 2}
    plan = compile(pricing.load(root)).compile_usage([str(root / "events.jsonl")], *MARCH, dedup=PRE_PASS)
    assert plan.repeated is not None
    assert sorted(plan.repeated.collect("streaming")) == [3, 5, 6]  # file 0: rows 3, 5 and 6


def test_the_pre_pass_hashes_the_id_column_alone(tmp_path: Path) -> None:
    """Its first step hashes every row's id, valid or not, so that it reads one column of a
    Parquet file, not the four that tell whether a row is valid; the second step keeps to the
    valid rows (the duplicates found are those above)."""
    root = _dedup_project(tmp_path)
    events = root / "events.parquet"
    pl.read_ndjson(root / "events.jsonl").write_parquet(events)
    plan = compile(pricing.load(root)).compile_usage([str(events)], *MARCH, dedup=PRE_PASS)
    (_, first), *_ = plan.queries()
    assert "PROJECT 1/" in first.explain()
    assert plan.repeated is not None
    assert sorted(plan.repeated.collect("streaming")) == [3, 5, 6]  # file 0: rows 3, 5 and 6


def test_the_dedup_is_chosen_by_what_the_window_would_hold(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """7 events × (0 properties + 8 columns) × 24 bytes = 1,344 bytes for the window to hold:
    it does on a 16 GiB machine, not on one of 4 KiB. Parquet from 2M events (here, from 7) is
    read again for its ids rather than held."""
    root = _dedup_project(tmp_path)
    plan = compile(pricing.load(root))
    events = [str(root / "events.jsonl")]
    monkeypatch.setattr(choices, "physical_memory", lambda: 16 << 30)
    chosen = plan.compile_usage(events, *MARCH)
    assert (chosen.dedup, chosen.dedup_reason) == (
        WINDOW,
        "the window would hold about 1.3 KiB of events, of 16 GiB",
    )
    monkeypatch.setattr(choices, "physical_memory", lambda: 4096)
    chosen = plan.compile_usage(events, *MARCH)
    assert chosen.dedup == PRE_PASS
    assert chosen.dedup_reason.endswith("of 4.0 KiB: the ids are read in a pass of their own")
    forced = plan.compile_usage(events, *MARCH, dedup=WINDOW)
    assert (forced.dedup, forced.dedup_reason) == (WINDOW, "chosen with --dedup")
    pl.read_ndjson(root / "events.jsonl").write_parquet(root / "events.parquet")
    monkeypatch.setattr(choices, "physical_memory", lambda: 16 << 30)
    columnar = plan.compile_usage([str(root / "events.parquet")], *MARCH)
    assert (columnar.dedup, columnar.dedup_reason) == (
        WINDOW,
        "the window would hold about 1.3 KiB of events, of 16 GiB;"
        " below 2,000,000 Parquet events the window is the faster",
    )
    monkeypatch.setattr(choices, "PARQUET_PRE_PASS", 7)
    columnar = plan.compile_usage([str(root / "events.parquet")], *MARCH)
    assert (columnar.dedup, columnar.dedup_reason) == (
        PRE_PASS,
        "7 Parquet events: the id columns are read alone, before the metering",
    )


def test_with_the_pre_pass_the_metering_plan_holds_no_events(tmp_path: Path) -> None:
    """The window is a node that keeps every id it has seen (`is_first_distinct`, in the order
    of the scan); the plan over the duplicates the pre-pass finds has none such, no join
    (Polars' streaming join held part of every event), and no node that falls back to the
    in-memory engine."""
    root = _dedup_project(tmp_path)
    plan = compile(pricing.load(root))
    events = [str(root / "events.jsonl")]

    def physical(frame: pl.LazyFrame) -> str:
        shown = frame.show_graph(engine="streaming", plan_stage="physical", raw_output=True)
        assert shown is not None
        return shown

    assert "is-first-distinct" in physical(plan.compile_usage(events, *MARCH, dedup=WINDOW).frame)
    pre_pass = plan.compile_usage(events, *MARCH, dedup=PRE_PASS)
    assert pre_pass.repeated is not None
    duplicates = pre_pass.repeated.collect("in-memory")
    assert sorted(duplicates) == [3, 5, 6]  # file 0, rows 3, 5 and 6: after the first valid ones
    over_duplicates = physical(pre_pass.over(duplicates))
    assert "is-first-distinct" not in over_duplicates
    assert "join" not in over_duplicates
    assert not re.findall(r'label="(in-memory[-\w]*)', over_duplicates)


def test_verdicts_of_more_metrics_than_a_word_holds(tmp_path: Path) -> None:
    """70 metrics: their verdicts take two 64-bit words (metric 63 the last bit of the first,
    64 the first of the second). Metric `k{i:02}` counts events of type `e{i}`, of which there
    are i + 1, so each count tells whether its bit was read back from the right place."""
    (tmp_path / "pricing.yaml").write_text("version: 1\nname: Wide\n")
    metrics = "".join(
        f"  k{i:02}: {{event_type_filter: {{in_values: [e{i}]}}, aggregation_type: COUNT}}\n"
        for i in range(70)
    )
    (tmp_path / "spec.yaml").write_text(
        f"metrics:\n{metrics}customers: {{acme: {{}}}}\nrate_cards: {{rc: {{rates: []}}}}\n"
        "contracts: {c: {customer: acme, rate_card: rc, starting_at: 2026-01-01}}\n"
    )
    rows = [
        {
            "transaction_id": f"{i}-{n}",
            "customer_id": "acme",
            "event_type": f"e{i}",
            "timestamp": "2026-03-02",
        }
        for i in range(70)
        for n in range(i + 1)
    ]
    (tmp_path / "events.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    table, buckets = usage_of(tmp_path, [str(tmp_path / "events.jsonl")], strategy=PRE_AGGREGATED)
    assert table == {("acme", f"k{i:02}", "[]"): Decimal(i + 1) for i in range(70)}
    assert buckets["rated"] == 70 * 71 // 2


def test_a_spec_without_metrics_meters_the_ledger_alone(tmp_path: Path) -> None:
    """With no metrics there is nothing to group per metric: --strategy per-metric too gives
    the ledger alone (it failed looking for the metrics' groups). Two events of one id: one
    duplicate, one that no metric counts."""
    (tmp_path / "pricing.yaml").write_text("version: 1\nname: Bare\n")
    (tmp_path / "spec.yaml").write_text(
        "customers: {acme: {}}\nrate_cards: {rc: {rates: []}}\n"
        "contracts: {k: {customer: acme, rate_card: rc, starting_at: 2026-01-01}}\n"
    )
    event = {"transaction_id": "1", "customer_id": "acme", "event_type": "x", "timestamp": "2026-03-02"}
    (tmp_path / "events.jsonl").write_text(2 * (json.dumps(event) + "\n"))
    plan = compile(pricing.load(tmp_path))
    events = [str(tmp_path / "events.jsonl")]
    compiled = plan.compile_usage(events, *MARCH, strategy=PER_METRIC)
    assert (compiled.strategy, compiled.strategy_reason) == (PRE_AGGREGATED, "no metrics to measure")
    result = plan.usage(events, *MARCH, strategy=PER_METRIC)
    assert result.usage.is_empty()
    assert {b: n for b, n in result.ledger.buckets.items() if n} == {"duplicate": 1, "unmatched": 1}
    run = plan.invoice(events, *MARCH, strategy=PER_METRIC)
    assert [(i.customer_id, i.total) for i in run.invoices] == [("acme", Decimal(0))]


@pytest.mark.parametrize("text", [b"", b"a", b"a\n", b"a\n\n", b"a\nb", b"\n", b"a\r\nb\r\n", b"\n\n\n"])
def test_lines_are_counted_as_polars_counts_them(tmp_path: Path, text: bytes) -> None:
    """The run compares an NDJSON file's rows with its lines (the reader skips blank lines); the
    lines are counted in Python, as Polars' line reader counts them."""
    (tmp_path / "f.jsonl").write_bytes(text)
    assert (
        line_count(tmp_path / "f.jsonl")
        == pl.scan_lines(tmp_path / "f.jsonl").select(pl.len()).collect().item()
    )


@settings(max_examples=40, deadline=None)
@given(
    values=st.lists(st.text(max_size=6), max_size=7),
    at_once=st.integers(min_value=1, max_value=3),
)
def test_the_usage_json_is_the_table_and_the_report(values: list[str], at_once: int) -> None:
    """`pricing usage --format json` (rows written by Polars, a slice at a time, a row a line)
    reads back as the text table's rows and the report, whatever a group value holds (quotes,
    backslashes, control characters, U+2028, other scripts), with no row, or rows across slices."""
    n, instant = len(values), datetime(2026, 3, 1, tzinfo=UTC)
    times = ("period_start", "period_end", "window_start", "window_end")
    usage = pl.DataFrame(
        {
            "customer_id": [f"c{i}" for i in range(n)],
            "contract_id": ["k"] * n,
            "metric_id": ["m"] * n,
            "group_values": [json.dumps({"key": v}) for v in values],
            **dict.fromkeys(times, [instant] * n),
            "quantity": pl.Series([str(i) for i in range(n)], dtype=pl.String).cast(meter.QUANTITY),
        },
        schema_overrides={c: pl.String() for c in ("customer_id", "contract_id", "metric_id", "group_values")}
        | dict.fromkeys(times, pl.Datetime("us", "UTC")),
    )
    result = UsageResult(usage, meter.Ledger(n, {"rated": n}), PRE_AGGREGATED, "h")
    written = "".join(result.json_pieces(at_once))
    assert json.loads(written) == {"usage": result.rows(), **result.report()}
    assert [json.loads(r["group_values"])["key"] for r in json.loads(written)["usage"]] == values
    lines = written.splitlines()  # a row a line
    assert lines[1] == ('  "usage": [' if n else '  "usage": [],')
    assert [json.loads(line.strip().removesuffix(",")) for line in lines[2 : 2 + n]] == result.rows()


def test_the_usage_table_as_text() -> None:
    """Quantities as plain decimals (18 places held, their trailing zeros dropped: the zeros of
    100 stay), times in RFC 3339 with a fraction only where there is one."""
    quantities = [
        "100",
        "2.50",
        "0",
        "-0.5",
        "0.000000000000000001",
        "12345678901234567890.123456789012345678",
    ]
    start, end = datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 3, 1, 0, 0, 0, 250000, tzinfo=UTC)
    usage = pl.DataFrame(
        {
            "customer_id": "acme",
            "contract_id": "k",
            "metric_id": "m",
            "group_values": "{}",
            "period_start": start,
            "period_end": end,
            "window_start": start,
            "window_end": end,
            "quantity": pl.Series(quantities).cast(meter.QUANTITY),
        }
    )
    rows = UsageResult(usage, meter.Ledger(6, {}), PRE_AGGREGATED, "hash").rows()
    assert [r["quantity"] for r in rows] == [
        "100",
        "2.5",
        "0",
        "-0.5",
        "0.000000000000000001",
        "12345678901234567890.123456789012345678",
    ]
    assert {(r["window_start"], r["window_end"]) for r in rows} == {
        ("2026-03-01T00:00:00Z", "2026-03-01T00:00:00.250Z")
    }
