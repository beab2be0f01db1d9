"""Benchmark: `pricing usage` and `pricing invoice` on 100M events, as ten Parquet files of 10M.

    python benchmarks/bench_scale.py [--events 100000000] [--data DIR]

What it shows: a run's time grows with the events and its memory does not (the metering plan
streams; the dedup's pre-pass keeps 8 bytes per event while it sorts the ids' hashes). The
events are bench_usage.py's, written one file at a time (seed 7 + the file's number, ids
numbered on across the files, a duplicate repeating any id so far, in its file or an earlier
one); the specs are bench_usage.py's and bench_invoice.py's. The hand-written queries of those
benchmarks are not run: the Polars one collects the month's events, and would hold them all.
Each command runs once, in its own process: wall time, events per second, peak memory (max
RSS), and what it found — the ledger of every input row, the invoices and their total.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import bench_invoice
import bench_usage

PER_FILE = 10_000_000


def write_files(folder: Path, n: int) -> None:
    """The events, PER_FILE to a file (the last may hold fewer)."""
    folder.mkdir(parents=True, exist_ok=True)
    for index, first in enumerate(range(0, n, PER_FILE)):
        path = folder / f"events-{index:03d}.parquet"
        if not path.exists():
            bench_usage.write_apart(path, min(PER_FILE, n - first), seed=7 + index, first=first)


def run_usage(spec: Path, events: Path) -> dict[str, Any]:
    import pricing

    result = pricing.compile(pricing.load(spec)).usage([str(events)], bench_usage.START, bench_usage.END)
    return ledger(result.ledger) | {"usage rows": len(result.usage)}


def run_invoice(spec: Path, events: Path) -> dict[str, Any]:
    import pricing

    run = pricing.compile(pricing.load(spec)).invoice([str(events)], bench_usage.START, bench_usage.END)
    total = sum((invoice.total for invoice in run.invoices), Decimal(0))
    return ledger(run.ledger) | {"invoices": len(run.invoices), "total": f"{total:,} cents"}


def ledger(found: Any) -> dict[str, Any]:
    """The rows of the ledger and its buckets that hold any."""
    return {"rows": found.rows} | {bucket: n for bucket, n in found.buckets.items() if n}


COMMANDS: dict[str, tuple[str, Callable[[Path, Path], dict[str, Any]]]] = {
    "pricing usage": ("spec", run_usage),
    "pricing invoice": ("invoice-spec", run_invoice),
}


def child(command: str, spec: Path, events: Path, out: Path) -> None:
    start = time.perf_counter()
    found = COMMANDS[command][1](spec, events)
    seconds = time.perf_counter() - start
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out.write_text(json.dumps({"seconds": seconds, "rss_mb": rss_mb, "found": found}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--events", type=int, default=100_000_000)
    parser.add_argument("--data", type=Path, default=Path("benchmarks/data"))
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        command, spec, events, out = args.child
        child(command, Path(spec), Path(events), Path(out))
        return
    folder = args.data / f"scale-{args.events}"
    write_files(folder, args.events)
    bench_usage.write_spec(args.data / "spec")
    bench_invoice.write_spec(args.data / "invoice-spec")
    files = len(list(folder.glob("*.parquet")))
    print(f"\n{args.events:,} events in {files} Parquet file{'s' * (files != 1)}")
    print(f"{'command':<17}{'seconds':>9}{'events/s':>13}{'peak MB':>9}  found")
    for command, (spec, _) in COMMANDS.items():
        out = args.data / "result.json"
        child_args = [command, str(args.data / spec), str(folder), str(out)]
        subprocess.run([sys.executable, __file__, "--child", *child_args], check=True)
        run = json.loads(out.read_text())
        found = ", ".join(f"{k} {v:,}" if isinstance(v, int) else f"{k} {v}" for k, v in run["found"].items())
        print(
            f"{command:<17}{run['seconds']:>9.1f}{args.events / run['seconds']:>13,.0f}{run['rss_mb']:>9.0f}  {found}"
        )


if __name__ == "__main__":
    main()
