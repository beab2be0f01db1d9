"""Benchmark: a project with many metrics, metered and invoiced over one event.

    python benchmarks/bench_metrics.py [--objects 4000]

The project is `bench_check.py`'s (a fifth of the objects are metrics, a fifth usage products,
with rate cards, customers and contracts with overrides). With one event, what is measured is
what grows with the metrics and products: the plan, each metric's aggregation, each product's
rating. Each command runs as `pricing` does, in a process of its own; we report its wall time
and peak memory (max RSS of the child).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_check import generate

EVENT = {
    "transaction_id": "t1",
    "customer_id": "cust1",
    "event_type": "type1",
    "timestamp": "2026-03-05T00:00:00Z",
    "properties": {"region": "us", "tokens": 5},
}


# The command line in a child process, which then writes its peak memory as its last line.
CHILD = """
import resource, sys
from pricing.cli import main
main(sys.argv[1:], prog_name="pricing", standalone_mode=False)
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, file=sys.stderr)
"""


def run(args: list[str]) -> tuple[float, float]:
    """Wall seconds and peak MB of `pricing ARGS` in a process of its own."""
    start = time.perf_counter()
    child = subprocess.run([sys.executable, "-c", CHILD, *args], check=True, capture_output=True, text=True)
    return time.perf_counter() - start, float(child.stderr.splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--objects", type=int, default=4000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root, out = Path(tmp) / "spec", Path(tmp) / "out"
        root.mkdir()
        counts = generate(root, args.objects)
        events = Path(tmp) / "one.jsonl"
        events.write_text(json.dumps(EVENT) + "\n")
        run_args = ["--events", str(events), "--period", "2026-03"]
        usage = run(["usage", str(root), *run_args, "--format", "csv", "--out", str(out / "usage.csv")])
        invoice = run(["invoice", str(root), *run_args, "--out", str(out)])
        # the event must be metered by the metrics, or the runs measure nothing of them
        buckets = json.loads((out / "run.json").read_text())["ledger"]["buckets"]
        assert buckets["rated"] == 1, buckets
    print(f"{counts['metrics']} metrics, {counts['products']} usage products, one event")
    print(f"pricing usage    {usage[0]:6.2f} s  peak {usage[1]:6.0f} MB")
    print(f"pricing invoice  {invoice[0]:6.2f} s  peak {invoice[1]:6.0f} MB")


if __name__ == "__main__":
    main()
