"""Benchmark: `pricing usage` against the same query hand-written in Polars and in DuckDB SQL.

    python benchmarks/bench_usage.py --events 1000000 [--events 10000000] [--data DIR]

Generates (deterministically, seed 7) a spec project with 10 metrics over 2,000 customers and
a Parquet file of N events for March 2026 (1 % duplicate transaction ids, 5 % sent by alias,
a few unknown customers and April events). Each engine runs in its own process; we report wall
time, events per second and peak memory (max RSS), and check the three results agree exactly.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import resource
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

START, END = datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 4, 1, tzinfo=UTC)
CUSTOMERS = 2000  # --customers sets another count (the spec, the events and the queries read it)
MODELS = ["large", "small", "embed"]
REGIONS = ["us", "eu", "apac"]
# (id, event type, model filter, aggregation, key, group)
METRICS = [
    ("large_in", "llm", "large", "SUM", "input_tokens", "region"),
    ("large_out", "llm", "large", "SUM", "output_tokens", "region"),
    ("small_in", "llm", "small", "SUM", "input_tokens", "region"),
    ("small_out", "llm", "small", "SUM", "output_tokens", "region"),
    ("embed_tokens", "llm", "embed", "SUM", "input_tokens", None),
    ("llm_calls", "llm", None, "COUNT", None, "region"),
    ("peak_storage", "storage", None, "MAX", "gigabytes", None),
    ("min_storage", "storage", None, "MIN", "gigabytes", None),
    ("jobs", "job", None, "COUNT", None, None),
    ("job_seconds", "job", None, "SUM", "seconds", None),
]


def write_spec(root: Path) -> None:
    root.mkdir(parents=True, exist_ok=True)
    (root / "pricing.yaml").write_text("version: 1\nname: Bench\n")
    lines = ["metrics:"]
    for mid, etype, model, agg, key, group in METRICS:
        filters = []
        if model:
            filters.append(f"{{name: model, in_values: [{model}]}}")
        if group:
            filters.append(f"{{name: {group}, exists: true}}")
        lines.append(f"  {mid}:")
        lines.append(f"    event_type_filter: {{in_values: [{etype}]}}")
        if filters:
            lines.append(f"    property_filters: [{', '.join(filters)}]")
        lines.append(f"    aggregation_type: {agg}")
        if key:
            lines.append(f"    aggregation_key: {key}")
        if group:
            lines.append(f"    group_keys: [[{group}]]")
    lines.append("products:")
    lines += [f"  p_{mid}: {{type: usage, billable_metric: {mid}}}" for mid, *_ in METRICS]
    lines.append("customers:")
    lines += [f"  cust{i}: {{ingest_aliases: [alias{i}]}}" for i in range(CUSTOMERS)]
    lines += ["rate_cards:", "  rc: {rates: []}", "contracts:"]
    lines += [
        f"  k{i}: {{customer: cust{i}, rate_card: rc, starting_at: 2026-01-01}}" for i in range(CUSTOMERS)
    ]
    (root / "spec.yaml").write_text("\n".join(lines) + "\n")


def write_events(path: Path, n: int, seed: int = 7, first: int = 0) -> None:
    """N events, transaction ids numbered from `first`; a duplicate repeats any id up to the
    last (so, in a series of files, ids of the files before too)."""
    rng = np.random.default_rng(seed)
    customer = rng.integers(0, CUSTOMERS + 20, n)  # 20 unknown customers
    by_alias = rng.random(n) < 0.05
    tx = np.arange(first, first + n)
    dup = rng.random(n) < 0.01
    tx[dup] = rng.integers(0, first + n, int(dup.sum()))
    kind = rng.choice(["llm", "storage", "job"], n, p=[0.8, 0.1, 0.1])
    seconds = rng.integers(0, 31 * 86400 + 3 * 86400, n)  # a few April events
    frame = pl.DataFrame(
        {
            "transaction_id": pl.Series(tx).cast(pl.String),
            "customer_id": pl.Series(np.where(by_alias, "alias", "cust"))
            + pl.Series(customer).cast(pl.String),
            "event_type": kind,
            "timestamp": pl.Series(seconds * 1_000_000 + int(START.timestamp()) * 1_000_000).cast(
                pl.Datetime("us", "UTC")
            ),
            "properties.model": rng.choice(MODELS, n),
            "properties.region": rng.choice(REGIONS, n),
            "properties.input_tokens": pl.Series(rng.integers(1, 5000, n)).cast(pl.String),
            "properties.output_tokens": pl.Series(rng.integers(1, 2000, n)).cast(pl.String),
            "properties.gigabytes": pl.Series(rng.integers(1, 100_000, n) / 100).cast(pl.String),
            "properties.seconds": pl.Series(rng.integers(1, 600, n)).cast(pl.String),
        }
    )
    frame.write_parquet(path, row_group_size=1_000_000)


def write_apart(path: Path, n: int, seed: int = 7, first: int = 0) -> None:
    """`write_events` in a process of its own: a process's peak memory (max RSS) starts from
    that of the process it was started from, so events generated in this one would count in
    the peak memory of every engine run after them."""
    arguments = (CUSTOMERS, path, n, seed, first)
    process = multiprocessing.get_context("spawn").Process(target=_write_for, args=arguments)
    process.start()
    process.join()
    if process.exitcode:
        raise SystemExit(f"could not write {path}")


def _write_for(customers: int, path: Path, n: int, seed: int, first: int) -> None:
    set_customers(customers)  # (a spawned process imports this module afresh)
    write_events(path, n, seed, first)


def run_pricing(spec: Path, events: Path) -> pl.DataFrame:
    import pricing
    from pricing.engine.plan import compile

    result = compile(pricing.load(spec)).usage([str(events)], START, END)
    return result.usage.select("customer_id", "metric_id", "group_values", "quantity")


def run_polars(spec: Path, events: Path) -> pl.DataFrame:
    return polars_usage_plan(events).collect(engine="streaming")


def polars_usage_plan(events: Path) -> pl.LazyFrame:
    """The metering query: one row per customer, metric and group, as a lazy Polars plan over
    the deduplicated events (collected once)."""
    aliases = pl.LazyFrame(
        {
            "key": [f"cust{i}" for i in range(CUSTOMERS)] + [f"alias{i}" for i in range(CUSTOMERS)],
            "customer": [f"cust{i}" for i in range(CUSTOMERS)] * 2,
        }
    )
    # The deduplicated events of the month, computed once (left lazy, the optimizer pushes each
    # metric's filter under the dedup and runs the dedup once per metric).
    lf = (
        pl.scan_parquet(events)
        .filter(pl.col("transaction_id").is_first_distinct())  # the first of each id, in file order
        .join(aliases, left_on="customer_id", right_on="key")
        .filter((pl.col("timestamp") >= START) & (pl.col("timestamp") < END))
        .collect()
        .lazy()
    )
    parts = []
    for mid, etype, model, agg, key, group in METRICS:
        cond = pl.col("event_type") == etype
        if model:
            cond &= pl.col("properties.model") == model
        value = pl.len() if agg == "COUNT" else pl.col(f"properties.{key}").cast(pl.Decimal(38, 18))
        agg_expr = (
            {"COUNT": value, "SUM": value.sum(), "MAX": value.max(), "MIN": value.min()}[agg]
            if agg != "COUNT"
            else value
        )
        keys = ["customer"] + ([f"properties.{group}"] if group else [])
        part = lf.filter(cond).group_by(keys).agg(agg_expr.cast(pl.Decimal(38, 18)).alias("quantity"))
        groups = (
            pl.struct(pl.col(f"properties.{group}").alias(group)).struct.json_encode()
            if group
            else pl.lit("{}")
        )
        parts.append(
            part.select(
                pl.col("customer").alias("customer_id"),
                pl.lit(mid).alias("metric_id"),
                groups.alias("group_values"),
                "quantity",
            )
        )
    return pl.concat(parts)


def run_duckdb(spec: Path, events: Path) -> pl.DataFrame:
    con = duckdb_connection()
    rows = [(c, m, g, str(q)) for c, m, g, q in con.execute(duckdb_usage_sql(events)).fetchall()]
    return pl.DataFrame(rows, schema=["customer_id", "metric_id", "group_values", "quantity"], orient="row")


def duckdb_connection() -> Any:
    """DuckDB on 2 threads with the alias table loaded."""
    import duckdb

    con = duckdb.connect()
    con.execute("SET threads TO 2")
    con.execute("CREATE TABLE aliases(key VARCHAR, customer VARCHAR)")
    con.executemany(
        "INSERT INTO aliases VALUES (?, ?)",
        [(f"cust{i}", f"cust{i}") for i in range(CUSTOMERS)]
        + [(f"alias{i}", f"cust{i}") for i in range(CUSTOMERS)],
    )
    return con


def duckdb_usage_sql(events: Path) -> str:
    """The metering query: one row per customer, metric and group, as DuckDB SQL."""
    selects = []
    for mid, etype, model, agg, key, group in METRICS:
        where = f"event_type = '{etype}'" + (f" AND \"properties.model\" = '{model}'" if model else "")
        value = "COUNT(*)" if agg == "COUNT" else f'{agg}(CAST("properties.{key}" AS DECIMAL(38, 18)))'
        gcol = f"json_object('{group}', \"properties.{group}\")::VARCHAR" if group else "'{}'"
        gby = "customer" + (f', "properties.{group}"' if group else "")
        selects.append(
            f"SELECT customer AS customer_id, '{mid}' AS metric_id, {gcol} AS group_values, CAST({value} AS DECIMAL(38, 18)) AS quantity FROM ev WHERE {where} GROUP BY {gby}"
        )
    return f"""
    WITH numbered AS (SELECT *, row_number() OVER () AS rn FROM read_parquet('{events}')),
    firsts AS (SELECT * FROM numbered QUALIFY row_number() OVER (PARTITION BY transaction_id ORDER BY rn) = 1),
    ev AS (SELECT f.*, a.customer FROM firsts f JOIN aliases a ON f.customer_id = a.key
           WHERE timestamp >= TIMESTAMPTZ '2026-03-01 00:00:00+00' AND timestamp < TIMESTAMPTZ '2026-04-01 00:00:00+00')
    {" UNION ALL ".join(selects)}
    """


ENGINES = {"pricing usage": run_pricing, "hand-written Polars": run_polars, "DuckDB SQL": run_duckdb}


def canonical(frame: pl.DataFrame) -> list[tuple[str, str, str, str]]:
    rows = frame.select("customer_id", "metric_id", "group_values", pl.col("quantity").cast(pl.String)).rows()
    return sorted(
        (c, m, json.dumps(json.loads(g), sort_keys=True, separators=(",", ":")), str(Decimal(q).normalize()))
        for c, m, g, q in rows
    )


def child(engine: str, spec: Path, events: Path, out: Path) -> None:
    start = time.perf_counter()
    frame = ENGINES[engine](spec, events)
    seconds = time.perf_counter() - start
    out.write_text(
        json.dumps(
            {
                "seconds": seconds,
                "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                "rows": canonical(frame),
            }
        )
    )


def arguments(doc: str, child: Callable[[str, Path, Path, Path], None]) -> argparse.Namespace | None:
    """The command line; in a child process (--child), run the engine and return None."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--events", type=int, action="append", help="event counts (default 1,000,000)")
    parser.add_argument("--data", type=Path, default=Path("benchmarks/data"))
    parser.add_argument("--repeat", type=int, default=3, help="runs per engine, interleaved (best kept)")
    parser.add_argument(
        "--customers",
        type=int,
        default=CUSTOMERS,
        help=f"customers, each with an alias and a contract (default {CUSTOMERS:,});\n"
        "another count keeps its spec and events in DATA/customers-N",
    )
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.customers != CUSTOMERS:
        args.data = args.data / f"customers-{args.customers}"
        args.data.mkdir(parents=True, exist_ok=True)
    set_customers(args.customers)
    if not args.child:
        return args
    engine, spec, events, out = args.child
    child(engine, Path(spec), Path(events), Path(out))
    return None


def set_customers(n: int) -> None:
    global CUSTOMERS
    CUSTOMERS = n


def measure(
    script: str, engines: Iterable[str], spec: Path, data: Path, counts: list[int] | None, repeat: int
) -> Iterator[tuple[int, dict[str, Any]]]:
    """For each event count, each engine run by `script --child` in its own process, `repeat`
    times in turn (engine after engine, so that a slow moment of the machine hits them all);
    each engine's best time is kept, with the highest peak memory and the times of every run."""
    for n in counts or [1_000_000]:
        events = data / f"events-{n}.parquet"
        if not events.exists():
            write_apart(events, n)
        results: dict[str, Any] = {}
        for _ in range(repeat):
            for engine in engines:
                out = data / "result.json"
                child_args = [
                    "--customers",
                    str(CUSTOMERS),
                    "--child",
                    engine,
                    str(spec),
                    str(events),
                    str(out),
                ]
                subprocess.run([sys.executable, script, *child_args], check=True)
                run = json.loads(out.read_text())
                best = results.setdefault(engine, run | {"runs": []})
                best["runs"].append(run["seconds"])
                best["seconds"] = min(best["runs"])
                best["rss_mb"] = max(best["rss_mb"], run["rss_mb"])
        yield n, results


def main() -> None:
    args = arguments(__doc__ or "", child)
    if args is None:
        return
    spec = args.data / "spec"
    write_spec(spec)
    for n, results in measure(__file__, ENGINES, spec, args.data, args.events, args.repeat):
        print(f"\n{n:,} events, {len(METRICS)} metrics, {CUSTOMERS:,} customers")
        table(n, results, {"same result": "rows"})


def table(n: int, results: dict[str, Any], checks: dict[str, str]) -> None:
    """One line per engine: best time, events per second, time over the hand-written Polars
    query's, peak memory, every run's time, and whether each checked result (heading → result
    field) equals the hand-written query's."""
    hand = results["hand-written Polars"]
    heads = "".join(f"  {c:<11}" for c in checks)
    print(f"{'engine':<22}{'seconds':>9}{'events/s':>12}{'x hand':>8}{'peak MB':>9}  {'runs':<17}{heads}")
    for engine, r in results.items():
        runs = " ".join(f"{s:.2f}" for s in r["runs"])
        marks = "".join(f"  {r[field] == hand[field]!s:<11}" for field in checks.values())
        print(
            f"{engine:<22}{r['seconds']:>9.2f}{n / r['seconds']:>12,.0f}{r['seconds'] / hand['seconds']:>8.2f}"
            f"{r['rss_mb']:>9.0f}  {runs:<17}{marks}"
        )


if __name__ == "__main__":
    main()
