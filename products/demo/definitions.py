"""The demo's glossary terms and metrics: a few business terms per domain (most approved,
one left as a draft to show the approval), linked to the products and columns that use
them, and three metrics on the demo's ports.

Created through the services (so each term has its real history) and only when missing:
seeding again writes nothing, and never undoes what people changed since.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from products.definitions.services.glossary import (
    term_approve,
    term_create,
    term_link_column,
    term_link_product,
)
from products.definitions.services.metrics import metric_create
from products.models import Domain, GlossaryTerm, Metric, OutputPort

EXCLUDED_STATUSES = ["cancelled", "returned"]


@dataclass(frozen=True)
class TermSpec:
    domain: str
    name: str
    definition: str
    synonyms: tuple[str, ...] = ()
    approve: bool = True
    products: tuple[str, ...] = ()  # product keys
    columns: tuple[tuple[str, str], ...] = ()  # (product key, column name)


@dataclass(frozen=True)
class MetricSpec:
    key: str
    product: str  # product key; the metric is on its (only) port
    name: str
    description: str
    aggregation: str
    column: str = ""
    denominator_aggregation: str = ""
    denominator_column: str = ""
    filters: tuple[dict, ...] = ()
    dimensions: tuple[str, ...] = ()
    time_column: str = ""


# Who proposes and approves each domain's terms: its owner or steward.
DOMAIN_EDITORS = {"sales": "owner", "marketing": "steward", "supply-chain": "supply"}

TERMS = (
    TermSpec(
        "sales",
        "Net revenue",
        """\
What customers paid for **order lines that were neither cancelled nor returned**, in EUR,
VAT included: quantity × unit price − discount, summed.

- Counted on the day the order was placed (`ordered_at`, UTC), not when it shipped.
- Returns are deducted by leaving out lines whose status is `returned`.
- Not the same as *gross revenue*, which keeps cancelled and returned lines.

The metric [sales.revenue](/metrics/sales.revenue/) computes it.""",
        synonyms=("turnover", "net sales"),
        products=("sales.orders",),
        columns=(("sales.orders", "net_amount"), ("sales.daily-revenue", "net_revenue")),
    ),
    TermSpec(
        "sales",
        "Order line",
        """\
One stock keeping unit (SKU) in one order, with its quantity and price. An order of
three different products has three order lines; `order_id` numbers the lines.""",
        synonyms=("line item",),
        products=("sales.orders",),
        columns=(("sales.orders", "order_id"),),
    ),
    TermSpec(
        "sales",
        "Customer",
        """\
A person or company with a **customer account**, deduplicated across channels. Someone
who ordered as a guest is not a customer until they create an account.""",
        synonyms=("client", "account holder"),
        products=("sales.customers",),
        columns=(("sales.orders", "customer_id"), ("sales.customers", "customer_id")),
    ),
    TermSpec(
        "sales",
        "Customer lifetime value",
        """\
The sum of a customer's **completed** order lines in EUR since their first order.
*Proposed*: Finance asks whether returns after 90 days should be deducted.""",
        synonyms=("CLV", "LTV"),
        approve=False,
        columns=(("sales.customers", "lifetime_value"),),
    ),
    TermSpec(
        "sales",
        "Return rate",
        """\
Units customers sent back divided by units sold (cancellations excluded), per supplier
and month: `units_returned / units_sold`, between 0 and 1.""",
        products=("sales.returns-by-supplier",),
        columns=(("sales.returns-by-supplier", "return_rate"),),
    ),
    TermSpec(
        "marketing",
        "Session",
        """\
A visit to the web shop: the hits of one visitor with no more than **30 minutes** between
two of them. A session is attributed to the campaign of its landing link, if any.""",
        synonyms=("visit",),
        products=("marketing.web-sessions",),
        columns=(("marketing.web-sessions", "session_id"),),
    ),
    TermSpec(
        "marketing",
        "Conversion rate",
        """\
The share of sessions that ended with an order: converted sessions / all sessions, in
the same period and segment.""",
        synonyms=("CVR",),
        products=("marketing.web-sessions", "marketing.campaigns"),
        columns=(("marketing.web-sessions", "converted"),),
    ),
    TermSpec(
        "supply-chain",
        "Available stock",
        """\
Units on hand that no open order has reserved: `on_hand - reserved`, never below zero,
counted at the end of the day per warehouse and SKU.""",
        synonyms=("free stock", "ATP"),
        products=("supply-chain.inventory",),
        columns=(("supply-chain.inventory", "available"),),
    ),
    TermSpec(
        "supply-chain",
        "Defect rate",
        """\
Units that failed inspection divided by units inspected, for one delivery lot.
Above 5% the lot fails.""",
        products=("supply-chain.supplier-quality",),
        columns=(("supply-chain.supplier-quality", "defect_rate"),),
    ),
)

METRICS = (
    MetricSpec(
        key="sales.revenue",
        product="sales.orders",
        name="Net revenue",
        description="Net revenue as the glossary defines it: what customers paid for order "
        "lines neither cancelled nor returned, in EUR.",
        aggregation="sum",
        column="net_amount",
        filters=({"column": "status", "op": "not in", "value": EXCLUDED_STATUSES},),
        dimensions=("channel", "country", "category"),
        time_column="ordered_at",
    ),
    MetricSpec(
        key="sales.average-unit-price",
        product="sales.orders",
        name="Average unit price paid",
        description="Net revenue divided by the units sold on the same lines: what one unit "
        "brought in, after discounts.",
        aggregation="sum",
        column="net_amount",
        denominator_aggregation="sum",
        denominator_column="quantity",
        filters=({"column": "status", "op": "not in", "value": EXCLUDED_STATUSES},),
        dimensions=("channel", "category"),
        time_column="ordered_at",
    ),
    MetricSpec(
        key="marketing.pages-per-session",
        product="marketing.web-sessions",
        name="Pages per session",
        description="Pages viewed divided by sessions: how deep visitors go.",
        aggregation="sum",
        column="pageviews",
        denominator_aggregation="count",
        dimensions=("device", "utm_source", "country"),
        time_column="started_at",
    ),
)


def definitions_seed(
    *,
    users: dict,
    ports: dict[str, OutputPort],
    count: Callable[[str, bool, bool], None],
) -> None:
    """Create the demo's terms and metrics that do not exist yet. `ports` maps product keys
    to their port; `count(what, created, changed)` tallies what was written."""
    domains = {domain.slug: domain for domain in Domain.objects.all()}
    admin = users["admin"]
    for spec in TERMS:
        domain = domains[spec.domain]
        if GlossaryTerm.objects.filter(domain=domain, name__iexact=spec.name).exists():
            continue
        editor = users[DOMAIN_EDITORS[spec.domain]]
        term = term_create(
            domain=domain,
            by=editor,
            name=spec.name,
            definition=spec.definition,
            synonyms=list(spec.synonyms),
            note="Written for the demo.",
        )
        if spec.approve:
            term = term_approve(term=term, by=editor, note="Agreed with the domain team.")
        for key in spec.products:
            term_link_product(term=term, product=ports[key].product, by=admin)
        for key, name in spec.columns:
            column = ports[key].columns.get(name=name)
            column.port = ports[key]
            term_link_column(term=term, column=column, by=admin)
        count("glossary terms", True, True)
    for spec in METRICS:
        if Metric.objects.filter(key=spec.key).exists():
            continue
        port = ports[spec.product]
        owner = users[DOMAIN_EDITORS[spec.key.split(".")[0]]]
        metric_create(
            by=owner,
            port=port,
            key=spec.key,
            name=spec.name,
            description=spec.description,
            aggregation=spec.aggregation,
            column=spec.column,
            denominator_aggregation=spec.denominator_aggregation,
            denominator_column=spec.denominator_column,
            filters=[dict(clause) for clause in spec.filters],
            dimensions=list(spec.dimensions),
            time_column=spec.time_column,
        )
        count("metrics", True, True)
