"""The metering plan's choices for a run, made from the size of its input and a sample of it:
the strategy (pre-aggregated or per-metric), how duplicates are found (a window over the scan or
a pre-pass over the ids) and Polars' engine. Each says what it chose and why; `pricing explain`
prints both.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Sequence
from decimal import Decimal

import polars as pl

from pricing.engine.scan import scan_events
from pricing.engine.sources import READ_ERRORS, EventFile, scan_lines, scan_parquet, text_bytes

PRE_AGGREGATED, PER_METRIC = "pre-aggregated", "per-metric"
STRATEGIES = ("auto", PRE_AGGREGATED, PER_METRIC)
SAMPLE_ROWS = 100_000  # rows read from the first input file to choose the strategy
SMALL = 10_000  # fewer sampled events than this: either plan takes no time; pre-aggregate
KEPT_AT_MOST = Decimal("0.5")  # the pre-aggregation must be expected to at least halve the events


def input_rows(files: Sequence[EventFile]) -> int:
    """How many rows the inputs hold: exact for Parquet (its metadata), estimated for text files
    from their size and the bytes per line at the start of the first one."""
    parquet = [f.path for f in files if f.format == "parquet"]
    # (one query for them all, whatever their columns: one per file took 0.54 s for 720 files)
    counted = scan_parquet(parquet, schema=pl.Schema()).select(pl.len()) if parquet else None
    rows = 0 if counted is None else int(counted.collect().item())
    text = sum(text_bytes(f.path) for f in files if f.format != "parquet")
    first = next((f for f in files if f.format != "parquet"), None)
    if first is not None:
        line = pl.col("line").str.len_bytes() + 1
        lines, size = scan_lines(first.path).head(SAMPLE_ROWS).select(pl.len(), line.sum()).collect().row(0)
        rows += text * lines // max(size or 0, 1)
    return rows


def distinct_at(rows: int, third: int, seen: tuple[int, int, int]) -> int:
    """The distinct key combinations expected among `rows` events, from those `seen` in the first
    one, two and three thirds of a sample (`third` rows each). The events' keys are taken for a
    mix of keys new on a share of the events (an id per event: `pace` new combinations a row,
    for good) and keys drawn uniformly from K combinations: D(n) = pace·n + K (1 − r^(n/third)).
    From the combinations new in each third, g0, g1, g2: r = (g1 − g2) / (g0 − g1),
    K = (g0 − g1) / (1 − r)², pace·third = g0 − K (1 − r); then beyond the sample
    D(rows) = seen + pace·(rows − 3 thirds) + K r³ (1 − r^(rows/third − 3)). A count that does
    not slow down (or not as a geometric decline would) keeps its latest pace; one that stops
    growing stays at what was seen. Never more than `rows`. (Two points, the uniform model
    alone, took a mix — ids on a tenth of the events, say — for a few thousand combinations.)"""
    g0, g1, g2 = seen[0], seen[1] - seen[0], seen[2] - seen[1]
    if g0 <= g1 or g1 - g2 >= g0 - g1:
        expected = seen[2] + g2 * (rows - 3 * third) / third
    else:
        r = max(0.0, (g1 - g2) / (g0 - g1))
        k = (g0 - g1) / (1 - r) ** 2
        pace = max(0.0, g0 - k * (1 - r)) / third
        later = k * r**3 * -math.expm1((rows / third - 3) * math.log(r)) if r > 0 else 0.0
        expected = seen[2] + pace * (rows - 3 * third) + later
    return min(rows, round(expected))


def counted_rows(files: Sequence[EventFile]) -> int | None:
    """`input_rows`, worked out once for the run's choices; None when the events cannot be
    read (the run itself will say why)."""
    try:
        return input_rows(files)
    except READ_ERRORS:
        return None


VALUE_BYTES = 24  # what Polars holds of one column of one event, about (a string view, a number)
MEMORY_SHARE = 4  # a plan may hold events in up to a quarter of the machine's memory


def physical_memory() -> int:
    """The machine's memory in bytes (16 GiB where the system does not say)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):  # no sysconf (Windows) or no such name
        return 16 << 30


def held_events(rows: int, properties: int) -> tuple[bool, str]:
    """Whether a plan that holds the scanned events (the dedup's window, the per-metric plan's
    resolved rows) would hold too much to fit — more than a quarter of the machine's memory —
    and how much that is: `rows` × (`properties` + the four event fields, the file and row,
    position, reason) × VALUE_BYTES."""
    held = rows * (properties + 8) * VALUE_BYTES
    memory = physical_memory()
    return (
        held * MEMORY_SHARE > memory,
        f"about {_size(held)} of events, of {_size(memory)}",
    )


def _size(size: int) -> str:
    """A number of bytes in GiB, MiB or KiB, whichever shows it from a tenth of the unit: to a
    tenth below 10 units (events of a small run were "0.0 GiB")."""
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if size >= scale / 10 or unit == "KiB":
            break
    return f"{size / scale:.{0 if size >= 10 * scale else 1}f} {unit}"


def choose_strategy(
    files: Sequence[EventFile],
    keys: Sequence[pl.Expr],
    names: Iterable[str],
    properties: int,
    strategy: str,
    rows: int | None,
) -> tuple[str, str]:
    """PRE_AGGREGATED unless the pre-aggregation's keys — customer and the metrics' `keys` (the
    properties they group on or count distinct values of, each on the rows of the metrics that
    use it, and their verdicts), as expressions over the property `names` — are so varied that
    grouping the events by all of them at once would not even halve them: estimated from a
    sample of the first file and the number of input `rows`. No keys: no metrics. The
    per-metric plan holds the resolved events (measured: 100M benchmark events, 9.6 GB where the
    pre-aggregated plan took 1.8 GB), so it is not chosen for events that would not fit
    (`held_events`, of the `properties` the run reads): the pre-aggregation's memory grows with
    its groups alone."""
    if not keys:  # the ledger alone: nothing to group per metric, whatever was asked
        return PRE_AGGREGATED, "no metrics to measure"
    if strategy != "auto":
        return strategy, "chosen with --strategy"
    if not files:
        return PRE_AGGREGATED, "no events"
    sample = scan_events(files[:1], sorted(names)).head(SAMPLE_ROWS)
    combination = pl.struct(pl.col("customer_id"), *keys)
    try:  # (a combination as a 64-bit hash: counting distinct hashes is the faster)
        combos = sample.select(combination.hash().alias("keys")).collect().get_column("keys")
    except READ_ERRORS:  # a file Polars' reader cannot read whole, say
        combos = None
    if combos is None or rows is None:
        return PRE_AGGREGATED, "the events could not be sampled"  # the run itself will say why
    if len(combos) < SMALL:
        return PRE_AGGREGATED, f"only {len(combos):,} events in the sample"
    third = len(combos) // 3
    seen = (
        combos.head(third).n_unique(),
        combos.head(2 * third).n_unique(),
        combos.head(3 * third).n_unique(),
    )
    expected = distinct_at(rows, third, seen)
    measured = f"about {expected:,} distinct key combinations in {rows:,} events"
    if expected <= rows * KEPT_AT_MOST:
        return PRE_AGGREGATED, measured
    too_much, held = held_events(rows, properties)
    if too_much:
        return PRE_AGGREGATED, f"{measured}, but grouping each metric on its own would hold {held}"
    return PER_METRIC, f"{measured}: each metric is grouped by its own keys"


ENGINES = ("auto", "in-memory", "streaming")

WINDOW, PRE_PASS = "window", "pre-pass"
DEDUPS = ("auto", WINDOW, PRE_PASS)
PARQUET_PRE_PASS = 2_000_000  # Parquet events from which the pre-pass is the faster (measured)


def choose_dedup(
    files: Sequence[EventFile], properties: int, dedup: str, rows: int | None
) -> tuple[str, str]:
    """How duplicates are found. The window (the first valid row of each id, over the one scan)
    keeps every id it has seen (`held_events` bounds it by the events); the pre-pass reads the
    ids (and what makes a row invalid) in a pass of its own (`PrePass`: 8 bytes per event),
    finds the duplicate rows, and the one scan of the metering plan looks their positions up, so
    it streams in memory that grows with the duplicates, not with the events. Parquet gives
    those few columns alone, and from a few million events the pre-pass measured faster than the
    window there (collecting the benchmark's events: 1M 0.37–0.44 s against 0.31–0.33 s, 2M
    0.52–0.54 s against 0.56 s, 10M 2.6–2.7 s against 3.6–3.8 s); text files would be parsed
    more than once (NDJSON, 1M events: 4.0 s against 3.1 s). So: the pre-pass for events too
    many to hold (more than a quarter of the machine's memory) and for Parquet from
    `PARQUET_PRE_PASS` events; the window otherwise."""
    if dedup != "auto":
        return dedup, "chosen with --dedup"
    if rows is None:
        return WINDOW, "the events could not be counted"  # the run itself will say why
    too_much, held = held_events(rows, properties)
    measured = f"the window would hold {held}"
    if too_much:
        return PRE_PASS, f"{measured}: the ids are read in a pass of their own"
    if files and all(f.format == "parquet" for f in files):
        if rows >= PARQUET_PRE_PASS:
            return PRE_PASS, f"{rows:,} Parquet events: the id columns are read alone, before the metering"
        return WINDOW, f"{measured}; below {PARQUET_PRE_PASS:,} Parquet events the window is the faster"
    return WINDOW, measured


def choose_engine(strategy: str, engine: str) -> tuple[str, str]:
    """The engine of a run and why: Polars' streaming engine, for both plans. The pre-aggregated
    plan streams (its aggregation uses only reductions that do): measured faster than in memory
    here (10M events: 3.3 s against 5.5 s), and with the dedup's pre-pass in memory that grows
    with the duplicates rather than with the events. The per-metric plan feeds the resolved
    events to every metric's grouping, and Polars holds much of them either way, but streaming
    measured the faster and no larger (3M events with a near-unique UNIQUE key, 4 metrics: 1.9 s
    against 2.4–2.8 s, 1.2 GB either way; 100M benchmark events, forced: 33 s and 9.6 GB
    against 82 s and 21 GB)."""
    if engine != "auto":
        return engine, "chosen with --engine"
    if strategy == PER_METRIC:
        return "streaming", "measured the faster for the per-metric plan too"
    return "streaming", "the pre-aggregated plan streams"
