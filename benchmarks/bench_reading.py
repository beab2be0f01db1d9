"""Benchmark: what a bad row costs `pricing usage` — a broken line, a blank line, a byte that is
not UTF-8, a CSV row with a surplus cell or broken quoting — against the same events clean.

    python benchmarks/bench_reading.py [--events 1000000] [--repeat 2] [--data DIR]

The events are bench_usage.py's (its spec: 10 metrics, 2,000 customers), written as NDJSON and
CSV text (and compressed); each bad file is its clean file with one bad row in the middle. Each
file is read by `pricing usage` in a process of its own, so each run is a first run: it pays
for finding the file at fault (a failed read, then the pass that sets the bad rows aside)
before the run that counts. Reports wall time, its ratio to the clean file of the same format,
peak memory (max RSS), how the file was read (`pricing explain`'s words), and whether the usage
equals the clean file's.
"""

from __future__ import annotations

import argparse
import gzip
import json
import resource
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import bench_usage
import polars as pl
import zstandard

START, END = datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 4, 1, tzinfo=UTC)
FIELDS = ["transaction_id", "customer_id", "event_type", "timestamp"]
# file → (its clean file, what is wrong, the line put in the middle; None: the file is the clean
# file compressed)
VARIANTS: dict[str, tuple[str, str, bytes | None]] = {
    "events.jsonl": ("events.jsonl", "clean", b""),
    "broken.jsonl": (
        "events.jsonl",
        "a broken line",
        b'{"transaction_id": "broken", "customer_id": "c1", oops\n',
    ),
    "blank.jsonl": ("events.jsonl", "a blank line", b"\n"),
    "latin.jsonl": (
        "events.jsonl",
        "a byte that is not UTF-8",
        b'{"transaction_id": "x1", "customer_id": "m\xfcller", "event_type": "llm",'
        b' "timestamp": "2026-03-02T00:00:00Z"}\n',
    ),
    "events.jsonl.gz": ("events.jsonl", "clean, gzip", None),
    "events.jsonl.zst": ("events.jsonl", "clean, zstd", None),
    "events.csv": ("events.csv", "clean", b""),
    "surplus.csv": (
        "events.csv",
        "a row with a surplus cell",
        b"s1,cust1,llm,2026-03-02T00:00:00Z,a,b,1,2,3,4,5\n",
    ),
    "quote.csv": (
        "events.csv",
        "a row with broken quoting",
        b's2,cust1,llm,2026-03-02T00:00:00Z,"a"b,us,1,2,3,4\n',
    ),
}


def write_text(data: Path, n: int) -> None:
    """bench_usage.py's events as NDJSON (properties an object) and CSV (properties.<name>
    columns), timestamps as RFC 3339 text, then each variant."""
    parquet = data / f"events-{n}.parquet"
    if not parquet.exists():
        bench_usage.write_apart(parquet, n)
    folder = data / f"reading-{n}"
    folder.mkdir(parents=True, exist_ok=True)
    frame = pl.read_parquet(parquet).with_columns(pl.col("timestamp").dt.strftime("%Y-%m-%dT%H:%M:%SZ"))
    flat = [c for c in frame.columns if c.startswith("properties.")]
    if not (folder / "events.jsonl").exists():
        properties = pl.struct(pl.col(c).alias(c.removeprefix("properties.")) for c in flat)
        frame.select(*FIELDS, properties.alias("properties")).write_ndjson(folder / "events.jsonl")
    if not (folder / "events.csv").exists():
        frame.write_csv(folder / "events.csv")
    for name, (clean, _, line) in VARIANTS.items():
        target = folder / name
        if target.exists() or name == clean:
            continue
        text = (folder / clean).read_bytes()
        if line is None:
            compress = gzip.compress if name.endswith(".gz") else zstandard.compress
            target.write_bytes(compress(text))
            continue
        middle = text.index(b"\n", len(text) // 2) + 1
        target.write_bytes(text[:middle] + line + text[middle:])


def child(spec: Path, events: Path, out: Path) -> None:
    """One first run of `pricing usage` on the file, in this process."""
    start = time.perf_counter()
    import pricing

    plan = pricing.compile(pricing.load(spec))
    result = plan.usage([str(events)], START, END)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    reading = [line for line in plan.explain([str(events)], START, END).splitlines() if line.startswith("  ")]
    out.write_text(
        json.dumps(
            {
                "seconds": seconds,
                "rss_mb": peak,
                "rows": bench_usage.canonical(
                    result.usage.select("customer_id", "metric_id", "group_values", "quantity")
                ),
                "ledger": result.ledger.rows,
                "invalid": result.ledger.buckets["invalid"],
                "read": reading[0].split(": ", 1)[1] if reading else "",
            }
        )
    )


def runs(data: Path, spec: Path, folder: Path, repeat: int) -> Iterator[tuple[str, dict[str, Any]]]:
    """Each file's best run of `repeat`, the files in turn each time."""
    results: dict[str, dict[str, Any]] = {}
    for _ in range(repeat):
        for name in VARIANTS:
            out = data / "result.json"
            subprocess.run(
                [sys.executable, __file__, "--child", str(spec), str(folder / name), str(out)], check=True
            )
            run = json.loads(out.read_text())
            best = results.setdefault(name, run | {"runs": []})
            best["runs"].append(run["seconds"])
            best["seconds"] = min(best["runs"])
            best["rss_mb"] = max(best["rss_mb"], run["rss_mb"])
    yield from results.items()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=2, help="runs per file, in turn (best kept)")
    parser.add_argument("--data", type=Path, default=Path("benchmarks/data"))
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    parser.add_argument("--write", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        spec, events, out = (Path(a) for a in args.child)
        child(spec, events, out)
        return
    if args.write:
        write_text(args.data, args.events)
        return
    spec = args.data / "spec"
    bench_usage.write_spec(spec)
    # (in a process of its own: a process's peak memory starts from that of the one it was
    # started from, and the events are read into memory to be written as text)
    written = [sys.executable, __file__, "--write", "--events", str(args.events), "--data", str(args.data)]
    subprocess.run(written, check=True)
    folder = args.data / f"reading-{args.events}"
    results = dict(runs(args.data, spec, folder, args.repeat))
    print(
        f"\n{args.events:,} events, {len(bench_usage.METRICS)} metrics, {bench_usage.CUSTOMERS:,} customers"
    )
    print(f"{'file':<18}{'what is wrong':<27}{'s':>7}{'x clean':>9}{'peak MB':>9}  {'runs':<11} same  read")
    for name, result in results.items():
        clean = results[VARIANTS[name][0]]
        runs_text = " ".join(f"{s:.2f}" for s in result["runs"])
        same = "yes" if result["rows"] == clean["rows"] else "NO"
        print(
            f"{name:<18}{VARIANTS[name][1]:<27}{result['seconds']:>7.2f}"
            f"{result['seconds'] / clean['seconds']:>9.2f}{result['rss_mb']:>9.0f}  {runs_text:<11} {same:<5}"
            f" {result['read']}"
        )


if __name__ == "__main__":
    main()
