"""Usage lines: every usage product's lines in every invoiced period, rated at once in Polars.

Per usage product, one Polars query over the metered table does the heavy work for all
contracts and periods together:

1. segments  the metered quantities re-aggregated into the product's segments (each period cut
             where a rate or an override of the product starts or ends); a segment without
             usage of an entitled product without pricing group key gets a zero row
2. terms     each row's terms — the rate for its pricing values, the one override that wins,
             the entitlement — joined from a small table that Python resolves once per distinct
             rate card (and contract, when the contract overrides the product), segment and
             pricing values; a row without entitled terms is unpriced usage
3. quantity  converted, then rounded, as Decimal(38, 18): a conversion whose result does not end
             within 18 decimal places is rounded half to even at the 18th, as the expression
             language's `/` is
4. tiers     the quantity used before the line in its period and group (a cumulative sum in
             segment order, so tiers continue across a price change) and the line's overlap with
             each piece of its price (tiers × multiplier tiers; VOLUME: the pieces of the tier
             the period total reaches)

Python then works out the money of each overlap in exact Decimal (`rate.settle`) and makes
the Line: arithmetic on per-line results, never on events.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from itertools import groupby
from operator import itemgetter
from typing import Any

import polars as pl

from pricing import ir
from pricing.compiler.link import Project
from pricing.engine.calendar import Calendar
from pricing.engine.meter import QUANTITY, QUANTITY_LIMITS, SCALE, aggregate, metric_rows
from pricing.engine.periods import Period
from pricing.engine.rate import (
    Charge,
    Line,
    Terms,
    Unpriced,
    Values,
    matching_rate,
    price_pieces,
    product_overrides,
    product_rates,
    segments,
    settle,
    terms,
    unit_price_only,
)
from pricing.frames import decimal_literal, python_values, rows_frame
from pricing.money import ARITHMETIC, round_to

PeriodKey = tuple[str, datetime]  # contract id, period start


class RatingError(Exception):
    """Usage that cannot be rated exactly: a converted quantity beyond Decimal(38, 18)."""


def usage_group(product: ir.Product, metric: ir.Metric) -> tuple[str, ...]:
    """The metric group key that the product's presentation and pricing keys form (rule E501)."""
    wanted = {*product.presentation_group_key, *product.pricing_group_key}
    return next((key for key in metric.group_keys if set(key) == wanted), ())


@dataclass(slots=True)
class UsageRating:
    lines: dict[PeriodKey, list[Line]] = field(default_factory=dict)
    unpriced: list[Unpriced] = field(default_factory=list)
    products: int = 0  # the usage products rated


def rate_usage(
    project: Project,
    calendar: Calendar,
    rated: pl.DataFrame,
    billed: Mapping[str, frozenset[str]],
    rounding: str,
    rated_products: Callable[[int, int], None] | None = None,
) -> UsageRating:
    """The usage lines of every counted period of the calendar; `billed` names the usage
    products each contract bills; `rated_products(done, total)` follows the products rated."""
    rating = UsageRating()
    periods = calendar.periods()
    instant = rated.get_column("window_start").dtype
    intervals = rows_frame(
        [(i.contract, i.lo, i.period[0]) for i in calendar.intervals if i.counted],
        {"contract_id": pl.String(), "window_start": instant, "period_start": instant},
    )
    products = [
        p
        for p in sorted(project.products.values(), key=lambda p: p.id)
        if p.type is ir.ProductType.USAGE and p.billable_metric is not None
    ]
    for done, product in enumerate(products, 1):
        try:
            _ProductRating(project, periods, product, billed).rate(rated, intervals, rounding, rating)
        except pl.exceptions.ComputeError as exc:  # a segment's or period's usage past Decimal(38, 18)
            if "overflow" not in str(exc):
                raise
            message = (
                f"product '{product.id}': its usage in a period reaches 10^20, more than {QUANTITY_LIMITS}"
            )
            raise RatingError(message) from exc
        rating.products = done
        if rated_products is not None:
            rated_products(done, len(products))
    return rating


def _values(group_json: str) -> Values:
    return tuple(sorted((k, str(v)) for k, v in json.loads(group_json).items()))


def converted(product: ir.Product, quantity: pl.Expr) -> pl.Expr:
    """The product's quantity conversion, then its rounding, in Decimal(38, 18)."""
    conversion = product.quantity_conversion
    if conversion is not None:
        factor = decimal_literal(conversion.conversion_factor, QUANTITY)
        quantity = quantity * factor if conversion.operation == "MULTIPLY" else quantity / factor
    rounding = product.quantity_rounding
    if rounding is None or rounding.decimal_places >= SCALE:
        return quantity
    places = rounding.decimal_places
    if rounding.rounding_method == "ROUND_HALF_UP":
        return quantity.round(places, mode="half_away_from_zero")
    nearest, step = quantity.round(places), decimal_literal(Decimal(1).scaleb(-places), QUANTITY)
    floor = pl.when(nearest > quantity).then(nearest - step).otherwise(nearest)
    ceiling = pl.when(nearest < quantity).then(nearest + step).otherwise(nearest)
    if rounding.rounding_method == "ROUND_DOWN":  # toward zero
        return pl.when(quantity >= 0).then(floor).otherwise(ceiling)
    return pl.when(quantity >= 0).then(ceiling).otherwise(floor)  # ROUND_UP: away from zero


_SEGMENT = ["contract_id", "period_start", "segment_start", "segment_end"]
_LINE = [*_SEGMENT, "group_values"]


class _ProductRating:
    """One usage product's segments and terms for the contracts that bill it."""

    def __init__(
        self,
        project: Project,
        periods: Sequence[tuple[str, Period]],
        product: ir.Product,
        billed: Mapping[str, frozenset[str]],
    ) -> None:
        assert product.billable_metric is not None
        self.project, self.product = project, product
        self.metric = project.metrics[product.billable_metric.id]
        # Contracts on one rate card without overrides of the product share segments and terms:
        # a class is (card, contract id or "" without overrides); its first contract stands for it.
        classes: dict[tuple[str, str], int] = {}
        self.deputies: list[ir.Contract] = []
        class_of: dict[str, int] = {}
        # A class's segments of each period it bills, by number (`_cut`): periods of its contracts
        # that start together may end apart (a monthly and a quarterly statement from January 1);
        # keyed by the start alone, each contract was billed the segments of both.
        cuts: dict[tuple[int, Period], int] = {}
        self.contract_rows: list[tuple[str, datetime, int]] = []  # contract, period start, cut
        self.class_rows: list[tuple[int, int, datetime, datetime]] = []  # cut, class, segment
        rows, product_id = self.contract_rows, product.id  # (a loop over every contract's periods)
        for contract_id, period in periods:
            if product_id not in billed[contract_id]:
                continue
            cls = class_of.get(contract_id)
            if cls is None:
                contract = project.contracts[contract_id]
                own = contract.id if contract.overrides and product_overrides(contract, product) else ""
                cls = class_of[contract_id] = classes.setdefault((contract.rate_card.id, own), len(classes))
                if cls == len(self.deputies):
                    self.deputies.append(contract)
            cut = cuts.get((cls, period))
            if cut is None:
                cut = cuts[(cls, period)] = len(cuts)
                deputy = self.deputies[cls]
                card = project.rate_cards[deputy.rate_card.id]
                self.class_rows += [(cut, cls, lo, hi) for lo, hi in segments(period, card, deputy, product)]
            rows.append((contract_id, period[0], cut))

    def _terms(self, cls: int, at: datetime, pricing: Values) -> tuple[Terms | None, str | None]:
        """The terms of a class's segment starting at `at` for these pricing values, or why the
        usage there is unpriced."""
        contract = self.deputies[cls]
        rates = product_rates(self.project.rate_cards[contract.rate_card.id], self.product)
        found, entitled = terms(contract, self.product, matching_rate(rates, at, pricing), at)
        if found is not None and entitled:
            return found, None
        if found is not None:
            return None, "not entitled"
        if not rates:
            return None, "no rate on the rate card"
        return None, "no rate for these pricing group values" if pricing else "no rate in force"

    def rate(self, rated: pl.DataFrame, intervals: pl.DataFrame, rounding: str, into: UsageRating) -> None:
        """`intervals`: the calendar's counted intervals (contract_id, window_start, period_start)."""
        if not self.contract_rows:
            return
        segment_frame, rows = self._metered(rated, intervals)
        values = {g: _values(g) for g in rows.get_column("group_values").unique()}
        presentation_of, pricing_of = {}, {}
        for group, pairs in values.items():
            presentation_of[group] = tuple(
                (k, v) for k, v in pairs if k in self.product.presentation_group_key
            )
            pricing_of[group] = tuple((k, v) for k, v in pairs if k in self.product.pricing_group_key)
        rows, catalog = self._with_terms(rows.join(segment_frame, on=_SEGMENT), pricing_of)
        # 3. the quantity of each line, converted and rounded
        try:
            rows = rows.with_columns(converted(self.product, pl.col("quantity")).alias("quantity"))
        except pl.exceptions.ComputeError as exc:
            reason = str(exc).strip().splitlines()[0]
            raise RatingError(
                f"product '{self.product.id}': a converted quantity reaches 10^20, more than"
                f" {QUANTITY_LIMITS}: {reason}"
            ) from exc
        self._unpriced(rows.filter(pl.col("_term").is_null()), values, into)
        # 4. tiers: the quantity used before each line in its period and group, then its pieces
        q = pl.col("quantity")
        used = (q.cum_sum() - q).over(
            ["contract_id", "period_start", "group_values"], order_by="segment_start"
        )
        priced = rows.lazy().filter(pl.col("_term").is_not_null()).with_columns(used.alias("_used"))
        product = self.product
        period: PeriodKey | None = None
        period_lines: list[Line] = []
        for key, quantity, charged in split_charges(priced, _LINE, catalog):
            contract_id, period_start, lo, hi, group = key
            if period is None or period_start is not period[1] or contract_id != period[0]:
                # (lines come in period order, each distinct instant one object: python_values)
                period = (str(contract_id), period_start)
                period_lines = into.lines.setdefault(period, [])
            period_lines.append(
                Line(
                    "usage",
                    product.id,
                    product.name,
                    lo,
                    hi,
                    quantity,
                    charged.unit_price,
                    round_to(charged.amount, 0, rounding),
                    presentation_of[group],
                    pricing_of[group],
                    charged.tiers,
                )
            )

    def _metered(self, rated: pl.DataFrame, intervals: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
        """1. The product's segments of every billed period (with each one's class), and the
        metered quantity of each segment and group — a zero row for a segment without usage
        when the product has no pricing group key."""
        instant = rated.get_column("window_start").dtype
        contracts = rows_frame(
            self.contract_rows, {"contract_id": pl.String(), "period_start": instant, "_cut": pl.UInt32()}
        )
        cuts = rows_frame(
            self.class_rows,
            {"_cut": pl.UInt32(), "_class": pl.UInt32()} | dict.fromkeys(_SEGMENT[2:], instant),
        )
        segment_frame = contracts.join(cuts, on="_cut").drop("_cut")
        segment_of = (  # each interval of the calendar lies in one segment of the product
            intervals.join(segment_frame, on=["contract_id", "period_start"])
            .filter(
                pl.col("segment_start") <= pl.col("window_start"),
                pl.col("window_start") < pl.col("segment_end"),
            )
            .select("contract_id", "window_start", "segment_start", "segment_end")
        )
        group = usage_group(self.product, self.metric)
        mine = metric_rows(rated, self.metric, group, ["contract_id", "window_start", "period_start"])
        metered = aggregate(
            mine.join(segment_of.lazy(), on=["contract_id", "window_start"]), self.metric, _SEGMENT, group
        )
        rows = metered.select(*_LINE, "quantity", pl.lit(False).alias("_zero")).collect()
        if not self.product.pricing_group_key:  # an entitled product shows a line without usage
            idle = segment_frame.join(rows, on=_SEGMENT, how="anti").select(
                *_SEGMENT,
                pl.lit("{}").alias("group_values"),
                pl.lit(0, dtype=QUANTITY).alias("quantity"),
                pl.lit(True).alias("_zero"),
            )
            rows = pl.concat([rows, idle])
        return segment_frame, rows

    def _with_terms(
        self, rows: pl.DataFrame, pricing_of: Mapping[str, Values]
    ) -> tuple[pl.DataFrame, list[Terms]]:
        """2. Each row's terms (`_term`, an index into the returned catalog) or why it is unpriced
        (`_reason`), resolved once per class, segment and pricing values; a zero row without
        terms is dropped."""
        keys = {group: repr(pricing) for group, pricing in pricing_of.items()}
        rows = rows.with_columns(pl.col("group_values").replace_strict(keys).alias("_pricing"))
        pricing_by_key = {keys[group]: pricing for group, pricing in pricing_of.items()}
        catalog: dict[Terms, int] = {}
        term_rows = []
        for cls, at, key in rows.select("_class", "segment_start", "_pricing").unique().iter_rows():
            found, reason = self._terms(cls, at, pricing_by_key[key])
            term = None if found is None else catalog.setdefault(found, len(catalog))
            term_rows.append((cls, at, key, term, reason))
        term_frame = rows_frame(
            term_rows,
            {
                "_class": pl.UInt32(),
                "segment_start": rows.schema["segment_start"],
                "_pricing": pl.String(),
                "_term": pl.UInt32(),
                "_reason": pl.String(),
            },
        )
        joined = rows.join(term_frame, on=["_class", "segment_start", "_pricing"])
        return joined.filter(~pl.col("_zero") | pl.col("_term").is_not_null()), list(catalog)

    def _unpriced(self, rows: pl.DataFrame, values: Mapping[str, Values], into: UsageRating) -> None:
        for contract_id, lo, hi, group, quantity, reason in rows.select(
            "contract_id", "segment_start", "segment_end", "group_values", "quantity", "_reason"
        ).iter_rows():
            customer = self.project.contracts[contract_id].customer.id
            into.unpriced.append(
                Unpriced(
                    customer,
                    contract_id,
                    self.product.id,
                    self.metric.id,
                    lo,
                    hi,
                    values[group],
                    quantity,
                    reason,
                )
            )


def split_charges(
    rows: pl.LazyFrame, keys: Sequence[str], catalog: Sequence[Terms]
) -> Iterator[tuple[tuple[Any, ...], Decimal, Charge]]:
    """Lines charged at once: each row (its `keys`, `quantity`, `_used` — the quantity its period
    and group used before it — and `_term`, an index into `catalog`) is split in Polars into
    the part of each piece of its price that it spans (`rate.spanned`; VOLUME: the pieces of
    the tier that `_used` + `quantity` reaches); the money of each part is then exact Decimal
    (`rate.settle`). A line whose price is one price per unit (`rate.unit_price_only`) needs no
    split: it costs quantity × unit price. Yields (keys, quantity, charge) in the order of the
    keys."""
    pieces_of = [price_pieces(t.price, t.multipliers) for t in catalog]
    per_unit = [unit_price_only(t.price, t.multipliers) for t in catalog]
    pieces = rows_frame(
        [
            (
                term,
                i,
                p.level,
                t.price.rate_type is ir.RateType.PACKAGE,
                p.lo,
                p.hi,
                p.reach_above,
                p.reach_to,
            )
            for term, (t, own) in enumerate(zip(catalog, pieces_of, strict=True))
            if per_unit[term] is None
            for i, p in enumerate(own)
        ],
        {"_term": pl.UInt32(), "_piece": pl.UInt32(), "_level": pl.UInt32(), "_package": pl.Boolean()}
        | dict.fromkeys(("_lo", "_hi", "_above", "_to"), QUANTITY),
    )
    lines = rows.sort(keys).with_row_index("_line").collect()
    used, end = pl.col("_used"), pl.col("_used") + pl.col("quantity")
    start, stop = pl.min_horizontal(used, end), pl.max_horizontal(used, end)  # rate.spanned
    overlaps = (
        lines.lazy()
        .join(pieces.lazy(), on="_term")
        .filter(
            (pl.col("_above").is_null() | (end > pl.col("_above")))
            & (pl.col("_to").is_null() | (end <= pl.col("_to")))
        )
        # the first piece reaches down below zero, the last up without end
        .with_columns(
            pl.when(pl.col("_lo") == 0).then(start).otherwise(pl.max_horizontal(start, "_lo")).alias("_from")
        )
        .select(
            "_line",
            "_piece",
            pl.when("_package").then("_from").alias("_from"),  # (only PACKAGE prices need it)
            (pl.min_horizontal(stop, "_hi") - pl.col("_from")).alias("_width"),
            "_level",
        )
        # the pieces a line spans, and the first of its price (its unit price when it has one)
        .filter((pl.col("_width") > 0) | (pl.col("_level") == 1))
        .sort("_line", "_piece")
        .drop("_level")
        .collect()
    )
    key_values = zip(*(python_values(lines.get_column(k)) for k in keys), strict=True)
    quantities = python_values(lines.get_column("quantity"))
    terms = lines.get_column("_term").to_list()
    split = groupby(zip(*(python_values(c) for c in overlaps.iter_columns()), strict=True), itemgetter(0))
    for line, (key, quantity, term) in enumerate(zip(key_values, quantities, terms, strict=True)):
        unit = per_unit[term]
        if unit is not None:
            yield key, quantity, Charge(ARITHMETIC.multiply(quantity, unit), unit, ())
            continue
        at, parts = next(split)
        assert at == line, "every line that is split has its first piece"
        price, multipliers = catalog[term].price, catalog[term].multipliers
        spans = [(pieces_of[term][piece], start, width) for _, piece, start, width in parts]
        yield key, quantity, settle(price, multipliers, quantity, spans)
