"""Benchmark: `pricing invoice` against the same pricing hand-written in Polars and in DuckDB SQL.

    python benchmarks/bench_invoice.py --events 1000000 [--events 10000000] [--data DIR]

The events and the 10 metrics of bench_usage.py (2,000 customers, March 2026), priced by 10
products: dimensional FLAT rates per region with a DIVIDE conversion, graduated tiers per
presentation group, a volume tier, a package and flat rates. Each engine runs in its own process
(wall time, events per second, peak RSS); the line totals (rounded half up to the cent) and the
invoice totals of the three are cross-checked.
"""

from __future__ import annotations

import json
import resource
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import bench_usage
import polars as pl
from bench_usage import (
    METRICS,
    REGIONS,
    arguments,
    duckdb_connection,
    duckdb_usage_sql,
    measure,
    polars_usage_plan,
    table,
)

START, END = datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 4, 1, tzinfo=UTC)
REGION_PRICES = {
    "large_in": ("0.3", "0.33", "0.36"),
    "large_out": ("1.2", "1.32", "1.44"),
}  # per 1,000 tokens
# metric → (rate type, divide by 1,000, tiers [(size, price)…, (None, price)] or a flat price, package size)
PRICING: dict[str, tuple[str, bool, list[tuple[str | None, str]], int | None]] = {
    "small_in": ("TIERED", True, [("1000", "0.05"), (None, "0.03")], None),
    "small_out": ("TIERED", True, [("500", "0.2"), (None, "0.1")], None),
    "embed_tokens": ("FLAT", True, [(None, "0.01")], None),
    "llm_calls": ("TIERED", False, [("100", "0"), (None, "0.05")], None),
    "peak_storage": ("FLAT", False, [(None, "2")], None),
    "min_storage": ("VOLUME", False, [("10", "1"), (None, "0.5")], None),
    "jobs": ("PACKAGE", False, [(None, "50")], 10),
    "job_seconds": ("FLAT", False, [(None, "0.01")], None),
}


def write_spec(root: Path) -> None:
    root.mkdir(parents=True, exist_ok=True)
    (root / "pricing.yaml").write_text("version: 1\nname: Bench invoices\n")
    lines = ["metrics:"]
    for mid, etype, model, agg, key, group in METRICS:
        filters = [f"{{name: model, in_values: [{model}]}}"] if model else []
        filters += [f"{{name: {group}, exists: true}}"] if group else []
        lines += [f"  {mid}:", f"    event_type_filter: {{in_values: [{etype}]}}"]
        lines += [f"    property_filters: [{', '.join(filters)}]"] if filters else []
        lines += [f"    aggregation_type: {agg}"] + ([f"    aggregation_key: {key}"] if key else [])
        lines += [f"    group_keys: [[{group}]]"] if group else []
    lines.append("products:")
    rates = []
    for mid, *_, group in METRICS:
        fields = [f"type: usage, billable_metric: {mid}"]
        if mid in REGION_PRICES:
            fields.append(f"pricing_group_key: [{group}]")
            for region, price in zip(REGIONS, REGION_PRICES[mid], strict=True):
                values = f"pricing_group_values: {{region: {region}}}"
                rates.append(
                    f"{{product: p_{mid}, starting_at: 2026-01-01, rate_type: FLAT, price: {price}, {values}}}"
                )
        else:
            kind, _, tiers, package = PRICING[mid]
            if group:
                fields.append(f"presentation_group_key: [{group}]")
            if kind in ("FLAT", "PACKAGE"):
                extra = f"price: {tiers[0][1]}" + (f", package_size: {package}" if package else "")
            else:
                shown = ", ".join(f"{{size: {s}, price: {p}}}" if s else f"{{price: {p}}}" for s, p in tiers)
                extra = f"tiers: [{shown}]"
            rates.append(f"{{product: p_{mid}, starting_at: 2026-01-01, rate_type: {kind}, {extra}}}")
        if mid in REGION_PRICES or PRICING[mid][1]:
            fields.append("quantity_conversion: {conversion_factor: 1000, operation: DIVIDE}")
        lines.append(f"  p_{mid}: {{{', '.join(fields)}}}")
    lines.append("customers:")
    lines += [f"  cust{i}: {{ingest_aliases: [alias{i}]}}" for i in range(bench_usage.CUSTOMERS)]
    lines += ["rate_cards:", "  rc:", "    rates:"] + [f"      - {r}" for r in rates]
    lines.append("contracts:")
    lines += [
        f"  k{i}: {{customer: cust{i}, rate_card: rc, starting_at: 2026-01-01}}"
        for i in range(bench_usage.CUSTOMERS)
    ]
    (root / "spec.yaml").write_text("\n".join(lines) + "\n")


Lines = list[tuple[str, str, str, str]]  # customer, product, group value, total


def run_pricing(spec: Path, events: Path) -> Lines:
    import pricing

    run = pricing.compile(pricing.load(spec)).invoice([str(events)], START, END)
    return [
        (
            inv.customer_id,
            line.product_id,
            dict((*line.presentation_group_values, *line.pricing_group_values)).get("region", ""),
            str(line.total),
        )
        for inv in run.invoices
        for line in inv.lines
    ]


def _d(value: str) -> pl.Expr:
    return pl.lit(Decimal(value), dtype=pl.Decimal(38, 6))


def _polars_amount(mid: str, q: pl.Expr, region: pl.Expr) -> pl.Expr:
    if mid in REGION_PRICES:
        price = pl.when(region == REGIONS[0]).then(_d(REGION_PRICES[mid][0]))
        for r, p in zip(REGIONS[1:], REGION_PRICES[mid][1:], strict=True):
            price = price.when(region == r).then(_d(p))
        return q * _d("0.001") * price.otherwise(None)
    kind, divide, tiers, package = PRICING[mid]
    q = q * _d("0.001") if divide else q
    if kind == "FLAT":
        return q * _d(tiers[0][1])
    if kind == "PACKAGE":
        assert package is not None
        return ((q.cast(pl.Int64) + package - 1) // package).cast(pl.Decimal(38, 0)) * _d(tiers[0][1])
    size, first = tiers[0]
    assert size is not None
    if kind == "VOLUME":
        return pl.when(q <= _d(size)).then(q * _d(first)).otherwise(q * _d(tiers[1][1]))
    low = pl.min_horizontal(q, _d(size))
    return low * _d(first) + (q - low) * _d(tiers[1][1])


def run_polars(spec: Path, events: Path) -> Lines:
    usage = polars_usage_plan(events).with_columns(
        pl.col("group_values").str.json_path_match("$.region").fill_null("").alias("region")
    )
    parts = [
        usage.filter(pl.col("metric_id") == mid).select(
            "customer_id",
            pl.lit(f"p_{mid}").alias("product_id"),
            "region",
            _polars_amount(mid, pl.col("quantity"), pl.col("region"))
            .round(0, mode="half_away_from_zero")
            .alias("total"),
        )
        for mid, *_ in METRICS
    ]
    frame = pl.concat(parts).collect(engine="streaming")
    return [(c, p, r, str(Decimal(str(t)).quantize(Decimal(1)))) for c, p, r, t in frame.iter_rows()]


def _sql_amount(mid: str) -> str:
    q = "quantity"
    if mid in REGION_PRICES:
        cases = " ".join(f"WHEN '{r}' THEN {p}" for r, p in zip(REGIONS, REGION_PRICES[mid], strict=True))
        return f"{q} * 0.001 * CASE region {cases} END"
    kind, divide, tiers, package = PRICING[mid]
    q = f"({q} * 0.001)" if divide else q
    if kind == "FLAT":
        return f"{q} * {tiers[0][1]}"
    if kind == "PACKAGE":
        return f"CEIL({q} / {package}) * {tiers[0][1]}"
    size, first = tiers[0]
    if kind == "VOLUME":
        return f"CASE WHEN {q} <= {size} THEN {q} * {first} ELSE {q} * {tiers[1][1]} END"
    return f"LEAST({q}, {size}) * {first} + GREATEST({q} - {size}, 0) * {tiers[1][1]}"


def run_duckdb(spec: Path, events: Path) -> Lines:
    con = duckdb_connection()
    cases = " ".join(f"WHEN '{mid}' THEN {_sql_amount(mid)}" for mid, *_ in METRICS)
    sql = f"""
    WITH usage AS ({duckdb_usage_sql(events)}),
    grouped AS (SELECT *, COALESCE(json_extract_string(group_values, '$.region'), '') AS region FROM usage)
    SELECT customer_id, 'p_' || metric_id, region, CAST(ROUND(CASE metric_id {cases} END, 0) AS DECIMAL(38, 0))
    FROM grouped
    """
    return [(c, p, r, str(t)) for c, p, r, t in con.execute(sql).fetchall()]


ENGINES = {"pricing invoice": run_pricing, "hand-written Polars": run_polars, "DuckDB SQL": run_duckdb}


def child(engine: str, spec: Path, events: Path, out: Path) -> None:
    start = time.perf_counter()
    lines = ENGINES[engine](spec, events)
    seconds = time.perf_counter() - start
    totals: dict[str, Decimal] = {}
    for customer, _, _, total in lines:
        totals[customer] = totals.get(customer, Decimal(0)) + Decimal(total)
    nonzero = sorted((c, p, r, t) for c, p, r, t in lines if Decimal(t) != 0)
    out.write_text(
        json.dumps(
            {
                "seconds": seconds,
                "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                "lines": nonzero,
                "totals": sorted((c, str(t)) for c, t in totals.items()),
            }
        )
    )


def main() -> None:
    args = arguments(__doc__ or "", child)
    if args is None:
        return
    spec = args.data / "invoice-spec"
    write_spec(spec)
    for n, results in measure(__file__, ENGINES, spec, args.data, args.events, args.repeat):
        print(f"\n{n:,} events, {len(METRICS)} priced products, {bench_usage.CUSTOMERS:,} customers")
        table(n, results, {"same lines": "lines", "same totals": "totals"})


if __name__ == "__main__":
    main()
