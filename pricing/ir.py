"""The intermediate representation: one frozen dataclass per object of the spec language.

Numbers that are money or quantities are `Decimal`; collections are tuples; instants are aware
`datetime`s in UTC. Every node carries the `Span` it came from, and `spans` maps its fields to
theirs, so any later stage can point at the YAML. References to other objects are `Ref`s, which
carry their own span; the link stage checks that they resolve.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from types import MappingProxyType

from pricing.diagnostics import Span
from pricing.expr.ast import Node

NO_SPANS: Mapping[str, Span] = MappingProxyType({})


class Kind(enum.Enum):
    """The kinds of objects with ids, and their section keys."""

    METRIC = "metrics"
    PRODUCT = "products"
    RATE_CARD = "rate_cards"
    CUSTOMER = "customers"
    CONTRACT = "contracts"

    @property
    def noun(self) -> str:
        return self.value[:-1].replace("_", " ")


class Rounding(enum.Enum):
    ROUND_HALF_UP = "ROUND_HALF_UP"
    ROUND_HALF_EVEN = "ROUND_HALF_EVEN"
    ROUND_UP = "ROUND_UP"
    ROUND_DOWN = "ROUND_DOWN"


class AggregationType(enum.Enum):
    COUNT = "COUNT"
    SUM = "SUM"
    MAX = "MAX"
    MIN = "MIN"
    LATEST = "LATEST"
    UNIQUE = "UNIQUE"


class ProductType(enum.Enum):
    USAGE = "usage"
    FIXED = "fixed"
    SUBSCRIPTION = "subscription"
    COMPOSITE = "composite"


class RateType(enum.Enum):
    FLAT = "FLAT"
    TIERED = "TIERED"
    VOLUME = "VOLUME"
    PACKAGE = "PACKAGE"
    PERCENTAGE = "PERCENTAGE"
    SUBSCRIPTION = "SUBSCRIPTION"


class BillingFrequency(enum.Enum):
    WEEKLY = "WEEKLY"
    MONTHLY = "MONTHLY"
    QUARTERLY = "QUARTERLY"
    ANNUAL = "ANNUAL"


class ScheduleDay(enum.Enum):
    FIRST_OF_MONTH = "FIRST_OF_MONTH"
    CONTRACT_START = "CONTRACT_START"
    CUSTOM_DATE = "CUSTOM_DATE"


class OverrideType(enum.Enum):
    OVERWRITE = "OVERWRITE"
    MULTIPLIER = "MULTIPLIER"
    TIERED = "TIERED"


class CommitType(enum.Enum):
    PREPAID = "PREPAID"
    POSTPAID = "POSTPAID"


class Prioritization(enum.Enum):
    LOWEST_MULTIPLIER = "LOWEST_MULTIPLIER"
    EXPLICIT = "EXPLICIT"


@dataclass(frozen=True, slots=True)
class Ref:
    """A reference by id to an object of `kind`, located where it was written."""

    kind: Kind
    id: str
    span: Span


@dataclass(frozen=True, slots=True)
class Located:
    """Base of every node: its span and the spans of its fields."""

    span: Span
    spans: Mapping[str, Span] = field(
        default_factory=lambda: NO_SPANS, kw_only=True, compare=False, repr=False
    )

    def at(self, name: str) -> Span:
        """The span of field `name`, or the node's own when the field was not written."""
        return self.spans.get(name, self.span)


@dataclass(frozen=True, slots=True)
class Seller(Located):
    name: str | None
    email: str | None
    address: str | None
    tax_id: str | None


@dataclass(frozen=True, slots=True)
class Manifest(Located):
    version: int
    name: str
    currency: str
    timezone: str
    rounding: Rounding
    seller: Seller | None


@dataclass(frozen=True, slots=True)
class ValueFilter(Located):
    """`in_values` / `not_in_values`, compared as strings (numbers by their shortest text)."""

    in_values: tuple[str, ...] | None
    not_in_values: tuple[str, ...] | None


@dataclass(frozen=True, slots=True)
class PropertyFilter(Located):
    name: str
    exists: bool | None
    in_values: tuple[str, ...] | None
    not_in_values: tuple[str, ...] | None

    @property
    def requires_presence(self) -> bool:
        """True when an event passing this filter always has the property."""
        return self.exists is True or self.in_values is not None


@dataclass(frozen=True, slots=True)
class Expression(Located):
    """An expression (§8): its source text, its AST, and the string literals it compares with
    `timestamp`, read as instants in the project timezone."""

    text: str
    ast: Node
    instants: tuple[tuple[str, datetime], ...]


@dataclass(frozen=True, slots=True)
class Metric(Located):
    id: str
    name: str
    description: str | None
    event_type_filter: ValueFilter | None
    property_filters: tuple[PropertyFilter, ...]
    aggregation_type: AggregationType
    aggregation_key: str | None
    group_keys: tuple[tuple[str, ...], ...]
    filter: Expression | None
    value: Expression | None


@dataclass(frozen=True, slots=True)
class QuantityConversion(Located):
    conversion_factor: Decimal
    operation: str  # MULTIPLY | DIVIDE
    name: str | None


@dataclass(frozen=True, slots=True)
class QuantityRounding(Located):
    decimal_places: int
    rounding_method: str  # ROUND_UP | ROUND_DOWN | ROUND_HALF_UP


@dataclass(frozen=True, slots=True)
class Product(Located):
    id: str
    name: str
    description: str | None
    type: ProductType
    tags: tuple[str, ...]
    billable_metric: Ref | None
    presentation_group_key: tuple[str, ...]
    pricing_group_key: tuple[str, ...]
    quantity_conversion: QuantityConversion | None
    quantity_rounding: QuantityRounding | None
    composite_product_ids: tuple[Ref, ...]
    composite_tags: tuple[str, ...]
    exclude_free_usage: bool


@dataclass(frozen=True, slots=True)
class Tier(Located):
    size: Decimal | None  # None: the unbounded last tier
    price: Decimal


# A subscription's terms in a price: a SUBSCRIPTION rate's, and a FLAT rate's of a subscription product.
SUBSCRIPTION_TERMS = ("quantity", "billing_frequency", "is_prorated")


@dataclass(frozen=True, slots=True)
class Price(Located):
    """The price part of a rate, shared by rate-card rates and override rates."""

    rate_type: RateType
    price: Decimal | None
    tiers: tuple[Tier, ...]
    fraction: Decimal | None
    package_size: Decimal | None
    quantity: Decimal | None  # the seats; None: not written (a rate: 1; an overwrite: its rate's)
    billing_frequency: BillingFrequency
    is_prorated: bool


@dataclass(frozen=True, slots=True)
class Rate(Located):
    product: Ref
    starting_at: datetime
    ending_before: datetime | None
    entitled: bool
    price: Price
    pricing_group_values: tuple[tuple[str, str], ...]  # sorted (key, value) pairs


@dataclass(frozen=True, slots=True)
class RateCard(Located):
    id: str
    name: str
    description: str | None
    currency: str
    rates: tuple[Rate, ...]


@dataclass(frozen=True, slots=True)
class Customer(Located):
    id: str
    name: str
    description: str | None
    ingest_aliases: tuple[str, ...]
    email: str | None
    address: str | None
    locale: str | None


@dataclass(frozen=True, slots=True)
class OverrideTier(Located):
    size: Decimal | None
    multiplier: Decimal


@dataclass(frozen=True, slots=True)
class Override(Located):
    starting_at: datetime
    ending_before: datetime | None
    product: Ref | None
    applicable_product_tags: tuple[str, ...]
    type: OverrideType | None  # None: an entitlement-only override
    overwrite_rate: Price | None
    multiplier: Decimal | None
    tiers: tuple[OverrideTier, ...]
    entitled: bool | None
    priority: Decimal | None


@dataclass(frozen=True, slots=True)
class AccessSegment(Located):
    amount: Decimal
    starting_at: datetime
    ending_before: datetime


@dataclass(frozen=True, slots=True)
class ScheduledAmount(Located):
    timestamp: datetime
    amount: Decimal


@dataclass(frozen=True, slots=True)
class Commit(Located):
    """A commit (`type` set) or a credit (`type` None): a balance that pays applicable usage."""

    name: str | None
    product: Ref
    type: CommitType | None
    currency: str | None  # None: the rate card's
    access_schedule: tuple[AccessSegment, ...]
    invoice_schedule: tuple[ScheduledAmount, ...]
    applicable_product_ids: tuple[Ref, ...]
    applicable_product_tags: tuple[str, ...]
    priority: Decimal | None


@dataclass(frozen=True, slots=True)
class ScheduledCharge(Located):
    product: Ref
    name: str | None
    schedule: tuple[ScheduledAmount, ...]


@dataclass(frozen=True, slots=True)
class StatementSchedule(Located):
    frequency: BillingFrequency
    day: ScheduleDay
    billing_anchor_date: datetime | None


@dataclass(frozen=True, slots=True)
class Contract(Located):
    id: str
    name: str
    description: str | None
    customer: Ref
    rate_card: Ref
    starting_at: datetime
    ending_before: datetime | None
    usage_statement_schedule: StatementSchedule
    multiplier_override_prioritization: Prioritization
    overrides: tuple[Override, ...]
    commits: tuple[Commit, ...]
    credits: tuple[Commit, ...]
    scheduled_charges: tuple[ScheduledCharge, ...]


SpecObject = Metric | Product | RateCard | Customer | Contract
