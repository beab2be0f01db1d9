"""Stage 5 — rules: static checks across a linked project, each `Project → diagnostics`.

Every rule has a stable code (documented in docs/diagnostics.md) and a golden test. Rules see
only objects that built cleanly and tolerate references to objects that did not.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime
from decimal import Decimal

from pricing import ir
from pricing.compiler.link import Project
from pricing.diagnostics import Diagnostic, Related, error, warning
from pricing.ir import Kind
from pricing.money import ARITHMETIC

Rule = Callable[[Project], Iterable[Diagnostic]]
Interval = tuple[datetime, datetime | None]  # [start, end); None: open-ended


def when(instant: datetime | None) -> str:
    return "the open end" if instant is None else instant.isoformat().replace("+00:00", "Z")


def _inside(instant: datetime, interval: Interval) -> bool:
    return interval[0] <= instant and (interval[1] is None or instant < interval[1])


def _overlaps(a: Interval, b: Interval) -> bool:
    a_before_b_ends = b[1] is None or a[0] < b[1]
    b_before_a_ends = a[1] is None or b[0] < a[1]
    return a_before_b_ends and b_before_a_ends


def group_keys_match(project: Project) -> Iterator[Diagnostic]:
    """E501: a usage product's presentation and pricing group keys together form a metric group key."""
    for product in project.products.values():
        metric = project.metric(product.billable_metric) if product.billable_metric else None
        keys = set(product.presentation_group_key) | set(product.pricing_group_key)
        if metric is None or not keys or any(keys == set(g) for g in metric.group_keys):
            continue
        field = "presentation_group_key" if product.presentation_group_key else "pricing_group_key"
        options = ", ".join(f"[{', '.join(g)}]" for g in metric.group_keys) or "none"
        message = (
            f"product '{product.id}' groups by [{', '.join(sorted(keys))}] (presentation_group_key "
            f"and pricing_group_key together), which is none of the group_keys of metric "
            f"'{metric.id}' ({options}); use one of them or add it to the metric's group_keys"
        )
        yield error("E501", message, product.at(field), Related("the metric", metric.at("group_keys")))


def group_keys_required(project: Project) -> Iterator[Diagnostic]:
    """E502: every property of a group key is required by a property filter."""
    for metric in project.metrics.values():
        required = {f.name for f in metric.property_filters if f.requires_presence}
        for i, key in enumerate(metric.group_keys):
            for name in key:
                if name not in required:
                    message = (
                        f"group key property '{name}' of metric '{metric.id}' is not required by a "
                        f"property filter; add {{name: {name}, exists: true}} to property_filters"
                    )
                    yield error("E502", message, metric.at(f"group_keys[{i}]"))


def aggregation_key(project: Project) -> Iterator[Diagnostic]:
    """E503: aggregation_key (or value) is required unless COUNT, and not both. W503: COUNT with a key."""
    for metric in project.metrics.values():
        counting = metric.aggregation_type is ir.AggregationType.COUNT
        has_key, has_value = metric.aggregation_key is not None, metric.value is not None
        kind = metric.aggregation_type.value
        if not counting and not (has_key or has_value):
            message = f"a {kind} metric needs aggregation_key (the property to aggregate) or value"
            yield error("E503", message, metric.at("aggregation_type"))
        elif has_key and has_value:
            message = "give aggregation_key or value, not both"
            yield error("E503", message, metric.at("value"))
        elif counting and (has_key or has_value):
            field = "aggregation_key" if has_key else "value"
            message = (
                f"a COUNT metric counts events and ignores {field}; remove it or change aggregation_type"
            )
            yield warning("W503", message, metric.at(field))


_ALLOWED_RATES = {
    ir.ProductType.USAGE: (
        ir.RateType.FLAT,
        ir.RateType.TIERED,
        ir.RateType.VOLUME,
        ir.RateType.PACKAGE,
    ),
    ir.ProductType.SUBSCRIPTION: (ir.RateType.SUBSCRIPTION, ir.RateType.FLAT),
    ir.ProductType.FIXED: (ir.RateType.FLAT,),
    ir.ProductType.COMPOSITE: (ir.RateType.PERCENTAGE,),
}


def _priced(project: Project) -> Iterator[tuple[ir.Product | None, ir.Price, ir.Located]]:
    """Every price in the project with the product it prices (None for tag overrides) and the
    node whose `rate_type` it is (its span is looked up only for a diagnostic)."""
    for card in project.rate_cards.values():
        for rate in card.rates:
            yield project.product(rate.product), rate.price, rate
    for contract in project.contracts.values():
        for override in contract.overrides:
            if override.overwrite_rate is not None:
                product = project.product(override.product) if override.product else None
                yield product, override.overwrite_rate, override.overwrite_rate


def rate_type_allowed(project: Project) -> Iterator[Diagnostic]:
    """E504: the rate type suits the product type — of every product with a rate on the card
    that a tag override reaches too (a SUBSCRIPTION overwrite rate reaching a usage product
    priced each unit at the seat price)."""
    priced = [(product, price, where, "") for product, price, where in _priced(project) if product]
    for contract, _, rated in _with_cards(project):
        for override in contract.overrides:
            rate, tags = override.overwrite_rate, override.applicable_product_tags
            if rate is not None and tags:
                reach = f", which tags [{', '.join(tags)}] reach"
                reached = sorted(rated & project.tagged_ids(tags))
                priced += [(project.products[pid], rate, rate, reach) for pid in reached]
    for product, price, where, reach in priced:
        allowed = _ALLOWED_RATES[product.type]
        if price.rate_type not in allowed:
            names = ", ".join(t.value for t in allowed)
            message = (
                f"a {price.rate_type.value} rate cannot price {product.type.value} product "
                f"'{product.id}'{reach}; use {names}"
            )
            yield error("E504", message, where.at("rate_type"))


def subscription_terms(project: Project) -> Iterator[Diagnostic]:
    """E304: a FLAT rate gives a subscription's terms (seats, billing frequency, proration) only
    when its product is a subscription product."""
    for product, price, _ in _priced(project):
        if product is None or product.type is ir.ProductType.SUBSCRIPTION:
            continue
        if price.rate_type is ir.RateType.FLAT:
            for key in (k for k in ir.SUBSCRIPTION_TERMS if k in price.spans):
                message = (
                    f"'{key}' does not apply to a FLAT rate of {product.type.value} product "
                    f"'{product.id}': only a subscription product is billed per seat and period; remove it"
                )
                yield error("E304", message, price.at(key))


def prices_well_formed(project: Project) -> Iterator[Diagnostic]:
    """E505: tiers well formed (sizes > 0, only the last unbounded, prices ≥ 0); prices ≥ 0."""
    for _, price, _ in _priced(project):
        yield from _tiers(price.tiers, "price")
        for field in ("price", "package_size", "fraction", "quantity"):
            value = getattr(price, field)
            if value is not None and value < 0:
                yield error("E505", f"{field} must not be negative, not {value}", price.at(field))
        if price.package_size is not None and price.package_size == 0:
            yield error("E505", "package_size must be greater than 0", price.at("package_size"))
        if price.package_size is not None and _places(price.package_size) > QUANTITY_PLACES:
            yield error("E505", _too_fine("package_size", price.package_size), price.at("package_size"))
        if price.fraction is not None and price.fraction > 1:
            percent = price.fraction * 100
            message = f"fraction {price.fraction} is {percent:f} %; a fraction of 0.1 is 10 %"
            yield warning("W505", message, price.at("fraction"))
    for contract in project.contracts.values():
        for override in contract.overrides:
            yield from _tiers(override.tiers, "multiplier")


def _tiers(tiers: Sequence[ir.Tier | ir.OverrideTier], amount: str) -> Iterator[Diagnostic]:
    reach = Decimal(0)  # where the next tier starts: a quantity, so below 10^20
    for i, tier in enumerate(tiers):
        last = i == len(tiers) - 1
        if tier.size is None and not last:
            message = f"tier {i + 1} has no size, but only the last tier may be unbounded; give it a size"
            yield error("E505", message, tier.span)
        elif tier.size is not None and last:
            message = f"the last tier (tier {i + 1}) must be unbounded: remove its size of {tier.size}"
            yield error("E505", message, tier.span)
        if tier.size is not None and tier.size <= 0:
            yield error("E505", f"tier {i + 1} size must be greater than 0, not {tier.size}", tier.span)
        elif tier.size is not None and _places(tier.size) > QUANTITY_PLACES:
            yield error("E505", _too_fine(f"tier {i + 1} size", tier.size), tier.span)
        elif tier.size is not None and reach < QUANTITY_LIMIT <= (reach := ARITHMETIC.add(reach, tier.size)):
            message = f"tiers 1 to {i + 1} add up to {reach:f} units: tiers end below {QUANTITY_LIMIT:,}"
            yield error("E505", message, tier.span)
        value: Decimal = getattr(tier, amount)
        if value < 0:
            yield error("E505", f"tier {i + 1} {amount} must not be negative, not {value}", tier.span)


QUANTITY_PLACES = 18  # quantities are Decimal(38, 18): a size or factor with more places is cut
QUANTITY_LIMIT = Decimal(10) ** 20  # and they stay below this


def _places(value: Decimal) -> int:
    """Decimal places, as written less trailing zeros (exact: `normalize` rounds to 28 digits)."""
    _, _, fraction = format(value, "f").partition(".")
    return len(fraction.rstrip("0"))


def _too_fine(what: str, value: Decimal) -> str:
    places = QUANTITY_PLACES
    return f"{what} {value:f} has more than {places} decimal places; quantities keep {places}"


def conversions_fit(project: Project) -> Iterator[Diagnostic]:
    """E205: a conversion factor has at most 18 decimal places (quantities keep 18: one of
    0.0000000000000000001 was 0, a division by zero when a line was rated)."""
    for product in project.products.values():
        conversion = product.quantity_conversion
        if conversion is not None and _places(conversion.conversion_factor) > QUANTITY_PLACES:
            message = _too_fine("conversion_factor", conversion.conversion_factor)
            yield error("E205", message, conversion.at("conversion_factor"))


def rates_do_not_overlap(project: Project) -> Iterator[Diagnostic]:
    """E506: two rates of one product with equal pricing_group_values overlap in time."""
    for card in project.rate_cards.values():
        seen: dict[tuple[str, tuple[tuple[str, str], ...]], list[ir.Rate]] = defaultdict(list)
        for rate in card.rates:
            key = (rate.product.id, rate.pricing_group_values)
            for other in seen[key]:
                if _overlaps(
                    (rate.starting_at, rate.ending_before), (other.starting_at, other.ending_before)
                ):
                    groups = ", ".join(f"{k}={v}" for k, v in key[1])
                    which = f" for {groups}" if groups else ""
                    message = (
                        f"this rate of product '{key[0]}'{which} overlaps another from "
                        f"{when(max(rate.starting_at, other.starting_at))}; end one with "
                        "ending_before where the other starts"
                    )
                    yield error("E506", message, rate.span, Related("the other rate", other.span))
                    break
            seen[key].append(rate)


def _ranges(project: Project) -> Iterator[tuple[ir.Located, datetime, datetime | None]]:
    for card in project.rate_cards.values():
        for rate in card.rates:
            yield rate, rate.starting_at, rate.ending_before
    for contract in project.contracts.values():
        yield contract, contract.starting_at, contract.ending_before
        for override in contract.overrides:
            yield override, override.starting_at, override.ending_before
        for commit in (*contract.commits, *contract.credits):
            for segment in commit.access_schedule:
                yield segment, segment.starting_at, segment.ending_before


def ranges_ordered(project: Project) -> Iterator[Diagnostic]:
    """E507: ending_before is after starting_at."""
    for node, start, end in _ranges(project):
        if end is not None and end <= start:
            message = f"ending_before {when(end)} must be after starting_at {when(start)}"
            yield error("E507", message, node.at("ending_before"))


def aliases_unique(project: Project) -> Iterator[Diagnostic]:
    """E508: an ingest alias belongs to one customer and is no other customer's id."""
    owners: dict[str, tuple[ir.Customer, int]] = {}
    for customer in project.customers.values():
        for i, alias in enumerate(customer.ingest_aliases):
            where = f"ingest_aliases[{i}]"
            other = project.customers.get(alias)
            if other is not None and other is not customer:
                message = f"alias '{alias}' of customer '{customer.id}' is the id of customer '{alias}'"
                yield error("E508", message, customer.at(where), Related("that customer", other.span))
            if alias in owners:
                first, at = owners[alias]
                message = (
                    f"alias '{alias}' belongs to customers '{first.id}' and '{customer.id}'; keep it on one"
                )
                also = Related("also here", first.at(f"ingest_aliases[{at}]"))
                yield error("E508", message, customer.at(where), also)
            else:
                owners[alias] = (customer, i)


def contracts_do_not_overlap(project: Project) -> Iterator[Diagnostic]:
    """E509: the contracts of one customer do not overlap in time."""
    by_customer: dict[str, list[ir.Contract]] = defaultdict(list)
    for contract in sorted(project.contracts.values(), key=lambda c: (c.starting_at, c.id)):
        for other in by_customer[contract.customer.id]:
            if _overlaps(
                (contract.starting_at, contract.ending_before),
                (other.starting_at, other.ending_before),
            ):
                message = (
                    f"contract '{contract.id}' overlaps contract '{other.id}' of customer "
                    f"'{contract.customer.id}'; a customer has one contract at a time"
                )
                yield error("E509", message, contract.span, Related("the other contract", other.span))
                break
        by_customer[contract.customer.id].append(contract)


def commit_currency(project: Project) -> Iterator[Diagnostic]:
    """E510: a contract's commits and credits are in its rate card's currency."""
    for contract in project.contracts.values():
        card = project.rate_cards.get(contract.rate_card.id)
        if card is None:
            continue
        for commit in (*contract.commits, *contract.credits):
            if commit.currency is not None and commit.currency != card.currency:
                message = (
                    f"this {'commit' if commit.type else 'credit'} is in {commit.currency} but "
                    f"contract '{contract.id}' uses rate card '{card.id}' in {card.currency}"
                )
                yield error("E510", message, commit.at("currency"))


def composite_acyclic(project: Project) -> Iterator[Diagnostic]:
    """E511: a composite product does not include itself, directly or through others."""

    def members(product: ir.Product) -> set[str]:
        ids = {ref.id for ref in product.composite_product_ids}
        return ids | {p.id for p in project.tagged(product.composite_tags)}

    for product in project.products.values():
        if product.type is not ir.ProductType.COMPOSITE:
            continue
        stack, seen = list(members(product)), set()
        while stack:
            current = stack.pop()
            if current == product.id:
                field = "composite_product_ids" if product.composite_product_ids else "composite_tags"
                message = f"composite product '{product.id}' includes itself; remove it from {field}"
                yield error("E511", message, product.at(field))
                break
            member = project.products.get(current)
            if member is not None and current not in seen:
                seen.add(current)
                stack.extend(members(member))


def composite_members_not_composite(project: Project) -> Iterator[Diagnostic]:
    """W506: a composite names no other composite (by id or tag): a composite is never part of
    another's base, so naming one adds nothing (one naming itself is E511)."""
    for product in project.products.values():
        if product.type is not ir.ProductType.COMPOSITE:
            continue
        named = [
            (project.products.get(ref.id), "composite_product_ids", ref.span)
            for ref in product.composite_product_ids
        ]
        tagged = [
            (p, "composite_tags", product.at("composite_tags"))
            for p in project.tagged(product.composite_tags)
        ]
        for member, field, span in named + tagged:
            if member is None or member.type is not ir.ProductType.COMPOSITE or member.id == product.id:
                continue
            message = (
                f"composite product '{product.id}' names composite product '{member.id}' in {field},"
                " which adds nothing: a composite is never part of another composite's base"
            )
            yield warning("W506", message, span)


def pricing_group_values_known(project: Project) -> Iterator[Diagnostic]:
    """E512: pricing_group_values name only properties of the product's pricing_group_key."""
    for card in project.rate_cards.values():
        for rate in card.rates:
            product = project.product(rate.product)
            if product is None:
                continue
            for key, _ in rate.pricing_group_values:
                if key not in product.pricing_group_key:
                    keys = ", ".join(product.pricing_group_key) or "none"
                    message = (
                        f"pricing_group_values key '{key}' is not in the pricing_group_key of "
                        f"product '{product.id}' ({keys})"
                    )
                    yield error("E512", message, rate.at("pricing_group_values"))


def fixed_products(project: Project) -> Iterator[Diagnostic]:
    """E513: commits, credits and scheduled charges are on fixed products."""
    for contract in project.contracts.values():
        items: tuple[tuple[str, tuple[ir.Commit, ...] | tuple[ir.ScheduledCharge, ...]], ...] = (
            ("commit", contract.commits),
            ("credit", contract.credits),
            ("scheduled charge", contract.scheduled_charges),
        )
        for what, group in items:
            for item in group:
                product = project.product(item.product)
                if product is not None and product.type is not ir.ProductType.FIXED:
                    kind = product.type.value
                    message = f"a {what} must be on a fixed product; '{product.id}' is a {kind} product"
                    yield error("E513", message, item.product.span)


def _with_cards(project: Project) -> Iterator[tuple[ir.Contract, ir.RateCard | None, frozenset[str]]]:
    """Each contract with its rate card and the products the card has a rate for (worked out
    once per card: many contracts share one)."""
    rated: dict[str, frozenset[str]] = {}
    for contract in project.contracts.values():
        card = project.rate_cards.get(contract.rate_card.id)
        if card is None:
            yield contract, None, frozenset()
            continue
        if card.id not in rated:
            rated[card.id] = frozenset(r.product.id for r in card.rates)
        yield contract, card, rated[card.id]


def overrides_apply(project: Project) -> Iterator[Diagnostic]:
    """W507: an override can apply: its time range meets the contract's, and a product it
    targets has a rate on the contract's rate card (an override changes a rate of the card; it
    adds none)."""
    for contract, card, rated in _with_cards(project):
        term = (contract.starting_at, contract.ending_before)
        for override in contract.overrides:
            if not _overlaps((override.starting_at, override.ending_before), term):
                message = (
                    f"this override ({when(override.starting_at)} to {when(override.ending_before)}) lies "
                    f"outside contract '{contract.id}' ({when(contract.starting_at)} to "
                    f"{when(contract.ending_before)}), so it never applies"
                )
                yield warning("W507", message, override.at("starting_at"))
                continue
            if card is None:
                continue
            if override.product is not None:
                targets, named = frozenset([override.product.id]), f"product '{override.product.id}'"
            else:
                targets = project.tagged_ids(override.applicable_product_tags)
                named = f"any product tagged {', '.join(override.applicable_product_tags)}"
            if rated.isdisjoint(targets):
                message = (
                    f"rate card '{card.id}' of contract '{contract.id}' has no rate for {named}, so "
                    "this override never applies: an override changes a rate of the card, it adds none"
                )
                field = "product" if override.product is not None else "applicable_product_tags"
                yield warning("W507", message, override.at(field))


def commits_apply(project: Project) -> Iterator[Diagnostic]:
    """W509: a commit or credit that names the products it pays for (by id or tag) names one
    with a rate on its contract's rate card; else it never pays anything."""
    for contract, card, rated in _with_cards(project):
        if card is None:
            continue
        for commit in (*contract.commits, *contract.credits):
            if not (commit.applicable_product_ids or commit.applicable_product_tags):
                continue  # (every product)
            named = {r.id for r in commit.applicable_product_ids}
            named |= project.tagged_ids(commit.applicable_product_tags)
            if rated.isdisjoint(named):
                kind = "credit" if commit.type is None else "commit"
                outcome = (
                    "is billed in full as a true-up"
                    if commit.type is ir.CommitType.POSTPAID
                    else "is never drawn down"
                )
                message = (
                    f"rate card '{card.id}' of contract '{contract.id}' has no rate for any product this "
                    f"{kind} applies to ({', '.join(sorted(named))}), so its balance {outcome}"
                )
                field = (
                    "applicable_product_ids" if commit.applicable_product_ids else "applicable_product_tags"
                )
                yield warning("W509", message, commit.at(field))


def charges_inside_contracts(project: Project) -> Iterator[Diagnostic]:
    """W508: a scheduled charge or prepaid commit payment falls inside its contract's term."""
    for contract in project.contracts.values():
        term = (contract.starting_at, contract.ending_before)
        amounts = [a for charge in contract.scheduled_charges for a in charge.schedule]
        amounts += [
            a
            for commit in contract.commits
            if commit.type is ir.CommitType.PREPAID
            for a in commit.invoice_schedule
        ]
        for amount in amounts:
            if not _inside(amount.timestamp, term):
                message = (
                    f"this charge at {when(amount.timestamp)} is outside contract '{contract.id}' "
                    f"({when(contract.starting_at)} to {when(contract.ending_before)}); it is invoiced all "
                    "the same"
                )
                yield warning("W508", message, amount.at("timestamp"))


def _gaps(cover: list[Interval], start: datetime, end: datetime | None) -> Iterator[Interval]:
    """The parts of [start, end) that no interval of `cover` covers."""
    cursor: datetime | None = start
    for lo, hi in sorted(cover, key=lambda c: c[0]):
        if cursor is None or (end is not None and cursor >= end):
            return
        if lo > cursor:
            yield cursor, lo if end is None else min(lo, end)
        if hi is None or hi > cursor:
            cursor = hi
    if cursor is not None and (end is None or cursor < end):
        yield cursor, end


def entitled_coverage(project: Project) -> Iterator[Diagnostic]:
    """W501: an entitled usage product has a rate for the whole of each contract on its card."""
    entitled: dict[str, list[tuple[str, tuple[tuple[str, str], ...], list[ir.Rate]]]] = {}
    for card in project.rate_cards.values():
        by_key: dict[tuple[str, tuple[tuple[str, str], ...]], list[ir.Rate]] = defaultdict(list)
        for rate in card.rates:
            by_key[(rate.product.id, rate.pricing_group_values)].append(rate)
        entitled[card.id] = [
            (product_id, groups, rates)
            for (product_id, groups), rates in sorted(by_key.items())
            if (product := project.products.get(product_id)) is not None
            and product.type is ir.ProductType.USAGE
            and any(r.entitled for r in rates)
        ]
    # contracts on one card with the same dates (most) share their gaps, worked out once
    gaps: dict[tuple[str, datetime, datetime | None], list[tuple[int, list[Interval]]]] = {}
    for contract in project.contracts.values():
        card_id = contract.rate_card.id
        key = (card_id, contract.starting_at, contract.ending_before)
        if key not in gaps:
            found = []
            for i, (_, _, rates) in enumerate(entitled.get(card_id, ())):
                cover = [(r.starting_at, r.ending_before) for r in rates]
                if missing := list(_gaps(cover, contract.starting_at, contract.ending_before)):
                    found.append((i, missing))
            gaps[key] = found
        for i, missing in gaps[key]:
            product_id, groups, rates = entitled[card_id][i]
            for lo, hi in missing:
                which = "".join(f" {k}={v}" for k, v in groups)
                message = (
                    f"product '{product_id}'{which} has no rate on rate card '{card_id}' from "
                    f"{when(lo)} to {when(hi)}, inside contract '{contract.id}': its usage then is unpriced"
                )
                yield warning("W501", message, contract.at("rate_card"), Related("the rates", rates[0].span))


def _unmatchable(metric: ir.Metric) -> tuple[str, str] | None:
    """Why no event can pass the metric's filters, and the field that says so (None: some can)."""
    types = metric.event_type_filter
    if (
        types is not None
        and types.in_values is not None
        and set(types.in_values) <= set(types.not_in_values or ())
    ):
        return "every event type its in_values admit, its not_in_values exclude", "event_type_filter"
    by_name: dict[str, list[ir.PropertyFilter]] = defaultdict(list)
    for f in metric.property_filters:
        by_name[f.name].append(f)
    for name, filters in by_name.items():
        if any(f.requires_presence for f in filters) and any(f.exists is False for f in filters):
            return f"property '{name}' must be present and absent at once", "property_filters"
        admitted = [set(f.in_values) for f in filters if f.in_values is not None]
        excluded = {v for f in filters for v in f.not_in_values or ()}
        if admitted and not set.intersection(*admitted) - excluded:
            return f"no value of property '{name}' passes all its filters", "property_filters"
    return None


def metrics_match(project: Project) -> Iterator[Diagnostic]:
    """W510: some event can pass a metric's filters (its `filter:` expression aside)."""
    for metric in project.metrics.values():
        found = _unmatchable(metric)
        if found is not None:
            reason, field = found
            yield warning("W510", f"metric '{metric.id}' counts no event: {reason}", metric.at(field))


def metrics_used(project: Project) -> Iterator[Diagnostic]:
    """W502: every metric is the billable metric of some product."""
    if Kind.PRODUCT in project.incomplete:
        return
    used = {p.billable_metric.id for p in project.products.values() if p.billable_metric}
    for metric in project.metrics.values():
        if metric.id not in used:
            message = f"metric '{metric.id}' is the billable_metric of no product, so it is never billed"
            yield warning("W502", message, metric.span)


RULES: tuple[Rule, ...] = (
    group_keys_match,
    group_keys_required,
    aggregation_key,
    rate_type_allowed,
    subscription_terms,
    prices_well_formed,
    conversions_fit,
    rates_do_not_overlap,
    ranges_ordered,
    aliases_unique,
    contracts_do_not_overlap,
    commit_currency,
    composite_acyclic,
    composite_members_not_composite,
    pricing_group_values_known,
    fixed_products,
    overrides_apply,
    commits_apply,
    charges_inside_contracts,
    entitled_coverage,
    metrics_match,
    metrics_used,
)


def run_rules(project: Project, rules: Iterable[Rule] = RULES) -> list[Diagnostic]:
    return [d for rule in rules for d in rule(project)]
