"""Stage 3 — build: schema-valid data to IR nodes, one object at a time.

The schema has already checked shapes, so builders read fields directly. What the schema cannot
say is checked here: real calendar dates, ISO 4217 currencies, IANA time zones, and fields that
do not apply to an object's type. An object with any error is not built; its id is still
reported as defined (`BuiltObject.node is None`) so that references to it do not cascade.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from decimal import Decimal
from functools import cache
from typing import Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from babel.numbers import list_currencies

from pricing import ir
from pricing.compiler.source import Document, JsonPath, SourceMap
from pricing.diagnostics import Diagnostic, Span, did_you_mean, error
from pricing.expr.ast import Literal, Pos
from pricing.expr.types import check
from pricing.ir import Kind
from pricing.money import text as decimal_text

DEFAULT_CURRENCY = "USD"
DEFAULT_TIMEZONE = "UTC"

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class BuiltObject:
    kind: Kind
    id: str
    key_span: Span  # where the id is written
    node: ir.SpecObject | None  # None when the object has errors


_NEVER = datetime.min.replace(tzinfo=UTC)


@cache
def currencies() -> frozenset[str]:
    return frozenset(list_currencies())


class FieldSpans(Mapping[str, Span]):
    """The spans of an object's fields (each list item's as `field[i]`), found in the source map
    the first time one is asked for: only a diagnostic asks, and building every object's field
    spans up front was a fifth of loading a large spec."""

    __slots__ = ("_data", "_path", "_source_map", "_spans")

    def __init__(self, source_map: SourceMap, data: Mapping[str, Any], path: JsonPath) -> None:
        self._source_map, self._data, self._path = source_map, data, path
        self._spans: dict[str, Span] | None = None

    def _all(self) -> dict[str, Span]:
        if self._spans is None:
            value, path = self._source_map.value, self._path
            spans = {key: value((*path, key)) for key in self._data}
            for key, item in self._data.items():
                if isinstance(item, list):
                    spans.update({f"{key}[{i}]": value((*path, key, i)) for i in range(len(item))})
            self._spans = spans
        return self._spans

    def __getitem__(self, name: str) -> Span:
        return self._all()[name]

    def __contains__(self, name: object) -> bool:
        """Whether the field was written, without looking up a span (a list item's: with)."""
        return name in self._data or (isinstance(name, str) and name.endswith("]") and name in self._all())

    def __iter__(self) -> Iterator[str]:
        return iter(self._all())

    def __len__(self) -> int:
        return len(self._all())


class _Context:
    def __init__(self, document: Document, timezone: ZoneInfo) -> None:
        self.document = document
        self.timezone = timezone
        self.diagnostics: list[Diagnostic] = []
        self.failed = False

    def span(self, path: JsonPath) -> Span:
        return self.document.source_map.value(path)

    def spans(self, data: Mapping[str, Any], path: JsonPath) -> Mapping[str, Span]:
        """Each field's span, and each list item's as `field[i]`."""
        return FieldSpans(self.document.source_map, data, path)

    def fail(self, code: str, message: str, span: Span) -> None:
        self.diagnostics.append(error(code, message, span))
        self.failed = True

    def instant(self, value: str, path: JsonPath) -> datetime:
        try:
            return parse_instant(value, self.timezone)
        except ValueError as exc:
            self.fail("E301", f"'{value}' is not a real date or time: {exc}", self.span(path))
            return _NEVER  # the object is dropped; building goes on to find further errors

    def optional_instant(self, data: Mapping[str, Any], key: str, path: JsonPath) -> datetime | None:
        value = data.get(key)
        return None if value is None else self.instant(value, (*path, key))

    def currency(self, code: str, path: JsonPath) -> str:
        if code not in currencies():
            suggestion = did_you_mean(code, currencies())
            self.fail("E302", f"'{code}' is not an ISO 4217 currency.{suggestion}", self.span(path))
        return code

    def not_for(self, data: Mapping[str, Any], path: JsonPath, keys: Iterable[str], what: str) -> None:
        """Fields that the object's type does not use are errors, not silently ignored."""
        for key in keys:
            if key in data:
                message = f"'{key}' does not apply to {what}; remove it"
                self.diagnostics.append(error("E304", message, self.document.source_map.key((*path, key))))
                self.failed = True


INSTANT_FORMS = "expected an RFC 3339 timestamp (2026-01-01T00:00:00Z) or a date (2026-01-01)"


def parse_instant(value: str, timezone: ZoneInfo) -> datetime:
    """An RFC 3339 timestamp, or a bare date at midnight in `timezone`, in UTC (ValueError if
    neither). A timestamp must carry its offset."""
    try:
        if len(value) == 10:
            instant = datetime.combine(date.fromisoformat(value), time(), timezone)
        else:
            instant = datetime.fromisoformat(value.upper().replace(" ", "T"))
    except ValueError as exc:  # ("Invalid isoformat string: '…'" echoed the text in upper case)
        if "isoformat" not in str(exc):
            raise  # (a field out of range says which: "month must be in 1..12")
        raise ValueError(INSTANT_FORMS) from None
    if instant.tzinfo is None:
        raise ValueError("a timestamp needs an offset such as Z or +01:00")
    try:  # (runs see an instant in UTC and in the project timezone)
        instant.astimezone(timezone)
        return instant.astimezone(UTC)
    except OverflowError:
        local = "" if timezone.key == "UTC" else f" or in {timezone.key}"
        raise ValueError(f"it falls outside the years 1 to 9999 in UTC{local}") from None


def locate_in_scalar(lines: tuple[str, ...], span: Span, text: str, line: int, column: int) -> Span:
    """The file position of (line, column) of a scalar's text, whatever its YAML style (plain,
    quoted, block): the scalar's line is found in the file within the scalar's span."""
    wanted = text.splitlines()[line - 1] if text.splitlines() else ""
    for number in range(span.line, min(span.end_line, len(lines)) + 1):
        source = lines[number - 1]
        start = source.find(wanted, span.column - 1 if number == span.line else 0) if wanted else -1
        if start >= 0:
            return Span(span.file, number, start + column, number, start + column + 1)
    return span


def filter_text(value: str | int | Decimal) -> str:
    """A filter value as events are compared: numbers by their shortest decimal text."""
    if isinstance(value, str):
        return value
    return decimal_text(Decimal(value))


def _texts(values: Iterable[str | int | Decimal] | None) -> tuple[str, ...] | None:
    return None if values is None else tuple(filter_text(v) for v in values)


def _decimal(value: int | Decimal | None) -> Decimal | None:
    return None if value is None else Decimal(value)


def build_manifest(document: Document | None) -> tuple[ir.Manifest | None, list[Diagnostic]]:
    """The manifest, with its defaults. Returns None (and diagnostics) when it is unusable."""
    if document is None:
        return None, []
    data = document.data
    ctx = _Context(document, ZoneInfo(DEFAULT_TIMEZONE))
    timezone = str(data.get("timezone", DEFAULT_TIMEZONE))
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        suggestion = did_you_mean(timezone, available_timezones())
        message = f"'{timezone}' is not an IANA time zone.{suggestion}"
        ctx.fail("E303", message, ctx.span(("timezone",)))
    currency = ctx.currency(str(data.get("currency", DEFAULT_CURRENCY)), ("currency",))
    seller_data = data.get("seller")
    seller = None
    if seller_data is not None:
        seller = ir.Seller(
            span=ctx.span(("seller",)),
            spans=ctx.spans(seller_data, ("seller",)),
            name=seller_data.get("name"),
            email=seller_data.get("email"),
            address=seller_data.get("address"),
            tax_id=seller_data.get("tax_id"),
        )
    if ctx.failed:
        return None, ctx.diagnostics
    manifest = ir.Manifest(
        span=ctx.span(()),
        spans=ctx.spans(data, ()),
        version=int(data["version"]),
        name=str(data["name"]),
        currency=currency,
        timezone=timezone,
        rounding=ir.Rounding(data.get("rounding", "ROUND_HALF_UP")),
        seller=seller,
    )
    return manifest, ctx.diagnostics


def build_objects(
    document: Document, manifest: ir.Manifest | None, broken: Callable[[JsonPath], bool]
) -> tuple[list[BuiltObject], list[Diagnostic]]:
    """Every object of one document. `broken(path)` tells whether the schema faulted that path."""
    timezone = ZoneInfo(manifest.timezone if manifest else DEFAULT_TIMEZONE)
    currency = manifest.currency if manifest else DEFAULT_CURRENCY
    built: list[BuiltObject] = []
    diagnostics: list[Diagnostic] = []
    for kind in Kind:
        section = document.data.get(kind.value)
        if not isinstance(section, dict):
            continue
        for object_id, data in section.items():
            path: JsonPath = (kind.value, object_id)
            key_span = document.source_map.key(path)
            node = None
            if not broken(path) and isinstance(data, dict):
                ctx = _Context(document, timezone)
                candidate = _BUILDERS[kind](ctx, object_id, data, path, currency)
                diagnostics.extend(ctx.diagnostics)
                node = None if ctx.failed else candidate
            built.append(BuiltObject(kind, str(object_id), key_span, node))
    return built, diagnostics


def _header(ctx: _Context, oid: str, data: dict[str, Any], path: JsonPath) -> dict[str, Any]:
    """The fields every object with an id has: located at its id, named by default by it."""
    return {
        "span": ctx.document.source_map.key(path),
        "spans": ctx.spans(data, path),
        "id": oid,
        "name": data.get("name", oid),
        "description": data.get("description"),
    }


def _ref(ctx: _Context, kind: Kind, value: str, path: JsonPath) -> ir.Ref:
    return ir.Ref(kind, value, ctx.span(path))


def _refs(ctx: _Context, kind: Kind, values: list[str] | None, path: JsonPath) -> tuple[ir.Ref, ...]:
    return tuple(_ref(ctx, kind, v, (*path, i)) for i, v in enumerate(values or ()))


def _items(
    ctx: _Context,
    values: list[dict[str, Any]] | None,
    path: JsonPath,
    build: Callable[[_Context, dict[str, Any], JsonPath], T],
) -> tuple[T, ...]:
    return tuple(build(ctx, item, (*path, i)) for i, item in enumerate(values or ()))


def _metric(ctx: _Context, oid: str, data: dict[str, Any], path: JsonPath, _: str) -> ir.Metric:
    etf = data.get("event_type_filter")

    def prop_filter(ctx: _Context, f: dict[str, Any], p: JsonPath) -> ir.PropertyFilter:
        if not {"exists", "in_values", "not_in_values"} & f.keys():
            message = f"the filter on '{f['name']}' tests nothing: add exists, in_values or not_in_values"
            ctx.fail("E306", message, ctx.span(p))
        return ir.PropertyFilter(
            span=ctx.span(p),
            spans=ctx.spans(f, p),
            name=f["name"],
            exists=f.get("exists"),
            in_values=_texts(f.get("in_values")),
            not_in_values=_texts(f.get("not_in_values")),
        )

    def expression(key: str) -> ir.Expression | None:
        text = data.get(key)
        if text is None:
            return None
        span = ctx.span((*path, key))

        def at(pos: Pos) -> Span:
            return locate_in_scalar(ctx.document.lines, span, text, pos.line, pos.column)

        # lark is imported by the first spec with an expression, not by every run (20 ms)
        from pricing.expr.parser import ExpressionSyntaxError, parse

        try:
            ast = parse(text)
        except ExpressionSyntaxError as exc:
            ctx.fail("E601", f"syntax error in {key}: {exc.message}", at(Pos(exc.line, exc.column)))
            return None
        typing = check(ast, key)
        for problem in typing.problems:
            ctx.fail(problem.code, f"{key}: {problem.message}", at(problem.pos))
        instants = []
        for literal in sorted(typing.instants):
            try:
                instants.append((literal, parse_instant(literal, ctx.timezone)))
            except ValueError as exc:
                pos = next(n.pos for n in typing.types if isinstance(n, Literal) and n.value == literal)
                ctx.fail("E606", f"{key}: '{literal}' is not a timestamp: {exc}", at(pos))
        return ir.Expression(span=span, text=text, ast=ast, instants=tuple(instants))

    return ir.Metric(
        **_header(ctx, oid, data, path),
        event_type_filter=None
        if etf is None
        else ir.ValueFilter(
            span=ctx.span((*path, "event_type_filter")),
            in_values=_texts(etf.get("in_values")),
            not_in_values=_texts(etf.get("not_in_values")),
        ),
        property_filters=_items(ctx, data.get("property_filters"), (*path, "property_filters"), prop_filter),
        aggregation_type=ir.AggregationType(data["aggregation_type"]),
        aggregation_key=data.get("aggregation_key"),
        group_keys=tuple(tuple(k) for k in data.get("group_keys", ())),
        filter=expression("filter"),
        value=expression("value"),
    )


_USAGE_ONLY = (
    "billable_metric",
    "presentation_group_key",
    "pricing_group_key",
    "quantity_conversion",
    "quantity_rounding",
)
_COMPOSITE_ONLY = ("composite_product_ids", "composite_tags", "exclude_free_usage")


def _product(ctx: _Context, oid: str, data: dict[str, Any], path: JsonPath, _: str) -> ir.Product:
    ptype = ir.ProductType(data["type"])
    if ptype is not ir.ProductType.USAGE:
        ctx.not_for(data, path, _USAGE_ONLY, f"a {ptype.value} product")
    if ptype is not ir.ProductType.COMPOSITE:
        ctx.not_for(data, path, _COMPOSITE_ONLY, f"a {ptype.value} product")
    if ptype is ir.ProductType.COMPOSITE and not (
        data.get("composite_product_ids") or data.get("composite_tags")
    ):
        ctx.fail(
            "E306",
            "a composite product needs composite_product_ids or composite_tags",
            ctx.document.source_map.key(path),
        )
    conv = data.get("quantity_conversion")
    rnd = data.get("quantity_rounding")
    metric = data.get("billable_metric")
    return ir.Product(
        **_header(ctx, oid, data, path),
        type=ptype,
        tags=tuple(data.get("tags", ())),
        billable_metric=None
        if metric is None
        else _ref(ctx, Kind.METRIC, metric, (*path, "billable_metric")),
        presentation_group_key=tuple(data.get("presentation_group_key", ())),
        pricing_group_key=tuple(data.get("pricing_group_key", ())),
        quantity_conversion=None
        if conv is None
        else ir.QuantityConversion(
            span=ctx.span((*path, "quantity_conversion")),
            spans=ctx.spans(conv, (*path, "quantity_conversion")),
            conversion_factor=Decimal(conv["conversion_factor"]),
            operation=conv["operation"],
            name=conv.get("name"),
        ),
        quantity_rounding=None
        if rnd is None
        else ir.QuantityRounding(
            span=ctx.span((*path, "quantity_rounding")),
            decimal_places=int(rnd["decimal_places"]),
            rounding_method=rnd["rounding_method"],
        ),
        composite_product_ids=_refs(
            ctx, Kind.PRODUCT, data.get("composite_product_ids"), (*path, "composite_product_ids")
        ),
        composite_tags=tuple(data.get("composite_tags", ())),
        exclude_free_usage=bool(data.get("exclude_free_usage", False)),
    )


# Which price fields each rate type reads; the others are errors when written. (A FLAT rate takes
# a subscription's terms when its product is one: the product may be in another file, so a FLAT
# rate of another product is checked in rules.py.)
_PRICE_FIELDS = {
    ir.RateType.FLAT: {"price", *ir.SUBSCRIPTION_TERMS},
    ir.RateType.TIERED: {"tiers"},
    ir.RateType.VOLUME: {"tiers"},
    ir.RateType.PACKAGE: {"price", "package_size"},
    ir.RateType.PERCENTAGE: {"fraction"},
    ir.RateType.SUBSCRIPTION: {"price", *ir.SUBSCRIPTION_TERMS},
}
_ALL_PRICE_FIELDS = set().union(*_PRICE_FIELDS.values())


def _price(ctx: _Context, data: dict[str, Any], path: JsonPath) -> ir.Price:
    rate_type = ir.RateType(data["rate_type"])
    ctx.not_for(
        data,
        path,
        sorted(_ALL_PRICE_FIELDS - _PRICE_FIELDS[rate_type]),
        f"a {rate_type.value} rate",
    )

    def tier(ctx: _Context, t: dict[str, Any], p: JsonPath) -> ir.Tier:
        return ir.Tier(
            span=ctx.span(p),
            spans=ctx.spans(t, p),
            size=_decimal(t.get("size")),
            price=Decimal(t["price"]),
        )

    return ir.Price(
        span=ctx.span(path),
        spans=ctx.spans(data, path),
        rate_type=rate_type,
        price=_decimal(data.get("price")),
        tiers=_items(ctx, data.get("tiers"), (*path, "tiers"), tier),
        fraction=_decimal(data.get("fraction")),
        package_size=_decimal(data.get("package_size")),
        quantity=_decimal(data.get("quantity")),
        billing_frequency=ir.BillingFrequency(data.get("billing_frequency", "MONTHLY")),
        is_prorated=bool(data.get("is_prorated", True)),
    )


def _rate_card(ctx: _Context, oid: str, data: dict[str, Any], path: JsonPath, currency: str) -> ir.RateCard:
    def rate(ctx: _Context, r: dict[str, Any], p: JsonPath) -> ir.Rate:
        groups = r.get("pricing_group_values", {})
        return ir.Rate(
            span=ctx.span(p),
            spans=ctx.spans(r, p),
            product=_ref(ctx, Kind.PRODUCT, r["product"], (*p, "product")),
            starting_at=ctx.instant(r["starting_at"], (*p, "starting_at")),
            ending_before=ctx.optional_instant(r, "ending_before", p),
            entitled=bool(r.get("entitled", True)),
            price=_price(ctx, r, p),
            pricing_group_values=tuple(sorted((k, filter_text(v)) for k, v in groups.items())),
        )

    return ir.RateCard(
        **_header(ctx, oid, data, path),
        currency=ctx.currency(data.get("currency", currency), (*path, "currency")),
        rates=_items(ctx, data.get("rates"), (*path, "rates"), rate),
    )


def _customer(ctx: _Context, oid: str, data: dict[str, Any], path: JsonPath, _: str) -> ir.Customer:
    return ir.Customer(
        **_header(ctx, oid, data, path),
        ingest_aliases=tuple(data.get("ingest_aliases", ())),
        email=data.get("email"),
        address=data.get("address"),
        locale=data.get("locale"),
    )


def _override(ctx: _Context, o: dict[str, Any], p: JsonPath) -> ir.Override:
    kind = o.get("type")
    otype = None if kind is None else ir.OverrideType(kind)
    if otype is None and "entitled" not in o:
        ctx.fail(
            "E306",
            "an override needs a type (OVERWRITE, MULTIPLIER, TIERED) or entitled",
            ctx.span(p),
        )
    if ("product" in o) == ("applicable_product_tags" in o):
        ctx.fail(
            "E306",
            "an override applies to either a product or applicable_product_tags: give exactly one",
            ctx.span(p),
        )
    for key, owner in (
        ("overwrite_rate", "OVERWRITE"),
        ("multiplier", "MULTIPLIER"),
        ("tiers", "TIERED"),
    ):
        if key in o and kind != owner:
            ctx.not_for(
                o,
                p,
                [key],
                f"an override of type {kind}" if kind else "an entitlement-only override",
            )

    def tier(ctx: _Context, t: dict[str, Any], tp: JsonPath) -> ir.OverrideTier:
        return ir.OverrideTier(
            span=ctx.span(tp), size=_decimal(t.get("size")), multiplier=Decimal(t["multiplier"])
        )

    rate = o.get("overwrite_rate")
    if rate is not None:  # (its `quantity` is the seats while it is in force)
        what = "an overwrite rate: a subscription is billed as often and prorated as its rate on the card"
        ctx.not_for(rate, (*p, "overwrite_rate"), ["billing_frequency", "is_prorated"], what)
    product = o.get("product")
    return ir.Override(
        span=ctx.span(p),
        spans=ctx.spans(o, p),
        starting_at=ctx.instant(o["starting_at"], (*p, "starting_at")),
        ending_before=ctx.optional_instant(o, "ending_before", p),
        product=None if product is None else _ref(ctx, Kind.PRODUCT, product, (*p, "product")),
        applicable_product_tags=tuple(o.get("applicable_product_tags", ())),
        type=otype,
        overwrite_rate=None if rate is None else _price(ctx, rate, (*p, "overwrite_rate")),
        multiplier=_decimal(o.get("multiplier")),
        tiers=_items(ctx, o.get("tiers"), (*p, "tiers"), tier),
        entitled=o.get("entitled"),
        priority=_decimal(o.get("priority")),
    )


def _scheduled(ctx: _Context, s: dict[str, Any], p: JsonPath) -> ir.ScheduledAmount:
    return ir.ScheduledAmount(
        span=ctx.span(p),
        spans=ctx.spans(s, p),
        timestamp=ctx.instant(s["timestamp"], (*p, "timestamp")),
        amount=Decimal(s["amount"]),
    )


def _commit(ctx: _Context, c: dict[str, Any], p: JsonPath) -> ir.Commit:
    def segment(ctx: _Context, s: dict[str, Any], sp: JsonPath) -> ir.AccessSegment:
        return ir.AccessSegment(
            span=ctx.span(sp),
            spans=ctx.spans(s, sp),
            amount=Decimal(s["amount"]),
            starting_at=ctx.instant(s["starting_at"], (*sp, "starting_at")),
            ending_before=ctx.instant(s["ending_before"], (*sp, "ending_before")),
        )

    currency = c.get("currency")
    return ir.Commit(
        span=ctx.span(p),
        spans=ctx.spans(c, p),
        name=c.get("name"),
        product=_ref(ctx, Kind.PRODUCT, c["product"], (*p, "product")),
        type=ir.CommitType(c["type"]) if "type" in c else None,
        currency=None if currency is None else ctx.currency(currency, (*p, "currency")),
        access_schedule=_items(ctx, c["access_schedule"], (*p, "access_schedule"), segment),
        invoice_schedule=_items(ctx, c.get("invoice_schedule"), (*p, "invoice_schedule"), _scheduled),
        applicable_product_ids=_refs(
            ctx, Kind.PRODUCT, c.get("applicable_product_ids"), (*p, "applicable_product_ids")
        ),
        applicable_product_tags=tuple(c.get("applicable_product_tags", ())),
        priority=_decimal(c.get("priority")),
    )


def _scheduled_charge(ctx: _Context, s: dict[str, Any], p: JsonPath) -> ir.ScheduledCharge:
    return ir.ScheduledCharge(
        span=ctx.span(p),
        product=_ref(ctx, Kind.PRODUCT, s["product"], (*p, "product")),
        name=s.get("name"),
        schedule=_items(ctx, s["schedule"], (*p, "schedule"), _scheduled),
    )


def _contract(ctx: _Context, oid: str, data: dict[str, Any], path: JsonPath, _: str) -> ir.Contract:
    sched = data.get("usage_statement_schedule", {})
    sched_path = (*path, "usage_statement_schedule")
    day = ir.ScheduleDay(sched.get("day", "FIRST_OF_MONTH"))
    if day is not ir.ScheduleDay.CUSTOM_DATE:
        ctx.not_for(sched, sched_path, ["billing_anchor_date"], f"a {day.value} schedule")
    schedule = ir.StatementSchedule(
        span=ctx.span(sched_path),
        frequency=ir.BillingFrequency(sched.get("frequency", "MONTHLY")),
        day=day,
        billing_anchor_date=ctx.optional_instant(sched, "billing_anchor_date", sched_path),
    )
    return ir.Contract(
        **_header(ctx, oid, data, path),
        customer=_ref(ctx, Kind.CUSTOMER, data["customer"], (*path, "customer")),
        rate_card=_ref(ctx, Kind.RATE_CARD, data["rate_card"], (*path, "rate_card")),
        starting_at=ctx.instant(data["starting_at"], (*path, "starting_at")),
        ending_before=ctx.optional_instant(data, "ending_before", path),
        usage_statement_schedule=schedule,
        multiplier_override_prioritization=ir.Prioritization(
            data.get("multiplier_override_prioritization", "LOWEST_MULTIPLIER")
        ),
        overrides=_items(ctx, data.get("overrides"), (*path, "overrides"), _override),
        commits=_items(ctx, data.get("commits"), (*path, "commits"), _commit),
        credits=_items(ctx, data.get("credits"), (*path, "credits"), _commit),
        scheduled_charges=_items(
            ctx, data.get("scheduled_charges"), (*path, "scheduled_charges"), _scheduled_charge
        ),
    )


_BUILDERS: dict[Kind, Callable[[_Context, str, dict[str, Any], JsonPath, str], ir.SpecObject]] = {
    Kind.METRIC: _metric,
    Kind.PRODUCT: _product,
    Kind.RATE_CARD: _rate_card,
    Kind.CUSTOMER: _customer,
    Kind.CONTRACT: _contract,
}
