"""Benchmark: load and check a generated spec project of N objects (default 2,000).

    python benchmarks/bench_check.py [--objects 2000] [--repeat 5] [--keep DIR]

The generator is deterministic: metrics, usage products with dimensional rates, rate cards,
customers with aliases and contracts with overrides and commits, in several files — the shape
of a large real organisation. Reports the best and median wall time of `pricing.check`.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import pricing


def generate(root: Path, objects: int) -> dict[str, int]:
    """Write a clean spec project with about `objects` objects; return the count per kind."""
    n_metrics = objects // 5
    n_products = n_metrics
    n_cards = max(1, objects // 100)
    n_customers = (objects - n_metrics - n_products - n_cards) // 2
    n_contracts = objects - n_metrics - n_products - n_cards - n_customers
    (root / "pricing.yaml").write_text("version: 1\nname: Bench Co\ncurrency: USD\n")
    for folder in ("metrics", "products", "rate_cards", "customers", "contracts"):
        (root / folder).mkdir()

    metrics = [
        f"""  m{i}:
    event_type_filter: {{in_values: [type{i % 7}]}}
    property_filters:
      - {{name: region, in_values: [us, eu]}}
      - {{name: tokens, exists: true}}
    aggregation_type: SUM
    aggregation_key: tokens
    group_keys: [[region]]
"""
        for i in range(n_metrics)
    ]
    (root / "metrics" / "metrics.yaml").write_text("metrics:\n" + "".join(metrics))
    products = [
        f"""  p{i}:
    type: usage
    billable_metric: m{i}
    pricing_group_key: [region]
    quantity_conversion: {{conversion_factor: 1000, operation: DIVIDE}}
    tags: [t{i % 10}]
"""
        for i in range(n_products)
    ]
    (root / "products" / "products.yaml").write_text("products:\n" + "".join(products))
    for c in range(n_cards):
        rates = "".join(
            f"      - {{product: p{i}, starting_at: 2026-01-01, rate_type: FLAT, price: {c + i % 9}, "
            f"pricing_group_values: {{region: {region}}}}}\n"
            for i in range(c, n_products, n_cards)
            for region in ("us", "eu")
        )
        (root / "rate_cards" / f"card{c}.yaml").write_text(
            f"rate_cards:\n  card{c}:\n    currency: USD\n    rates:\n{rates}"
        )
    customers = "".join(
        f"  cust{i}: {{name: Customer {i}, ingest_aliases: [alias{i}a, alias{i}b]}}\n"
        for i in range(n_customers)
    )
    (root / "customers" / "customers.yaml").write_text("customers:\n" + customers)
    contracts = "".join(
        f"""  k{i}:
    customer: cust{i % n_customers}
    rate_card: card{i % n_cards}
    starting_at: 2026-01-01
    overrides:
      - {{starting_at: 2026-01-01, applicable_product_tags: [t{i % 10}], type: MULTIPLIER, multiplier: 0.9}}
"""
        for i in range(n_contracts)
    )
    (root / "contracts" / "contracts.yaml").write_text("contracts:\n" + contracts)
    return {
        "metrics": n_metrics,
        "products": n_products,
        "rate_cards": n_cards,
        "customers": n_customers,
        "contracts": n_contracts,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--objects", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--keep", type=Path, help="write the generated project here and keep it")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = args.keep or Path(tmp) / "spec"
        root.mkdir(parents=True)
        counts = generate(root, args.objects)
        diagnostics = pricing.check(root)
        assert not diagnostics, diagnostics[:3]
        times = []
        for _ in range(args.repeat):
            start = time.perf_counter()
            pricing.check(root)
            times.append(time.perf_counter() - start)
    total = sum(counts.values())
    print(f"objects: {total} ({', '.join(f'{k} {v}' for k, v in counts.items())})")
    print(f"pricing.check: best {min(times):.3f} s, median {statistics.median(times):.3f} s")


if __name__ == "__main__":
    main()
