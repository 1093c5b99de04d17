"""One small catalog and the searches run on it, the same on PostgreSQL (the test process)
and SQLite (tests/products/catalog/sqlite_search.py, a process of its own on a temporary
SQLite file), so test_search_ranking.py can check the ranking rules on both."""

from products.catalog.search import Quality
from products.catalog.selectors import CatalogFilters, catalog_search
from products.catalog.services.search_index import product_search_index_update
from products.choices import LifecycleStatus, MembershipRole
from tests.factories import (
    ColumnFactory,
    DomainFactory,
    MembershipFactory,
    OutputPortFactory,
    ProductFactory,
    UserFactory,
)

SEARCHES = (
    "ordrs",
    "orders",
    "order",
    "customers churn",
    "churn",
    "revenue",
    "cust",
    "custmers",
    "zebra",
)


def build_catalog():
    """The products, and a member of their domain (who sees drafts and retired ones)."""
    domain = DomainFactory(name="Sales", slug="sales")
    reader = UserFactory(username="search-reader")
    MembershipFactory(domain=domain, user=reader, role=MembershipRole.MEMBER)

    def product(slug, name, summary, description="", **fields):
        return ProductFactory(
            domain=domain, slug=slug, name=name, summary=summary, description=description, **fields
        )

    orders = product("orders", "Orders", "Every order line of the web shop.", tags=["sales"])
    customers = product(
        "customers",
        "Customers",
        "One row per customer account.",
        purpose_use_case="Segmentation and churn analysis.",
    )
    health = product("customer-health", "Account health", "Signals that an account may leave.")
    port = OutputPortFactory(product=health)
    ColumnFactory(port=port, name="churn_score", description="Likelihood of leaving in 90 days.")
    ColumnFactory(port=port, name="account_id", description="The account.")
    product_search_index_update(product_ids=[health.pk])
    product(
        "daily-revenue",
        "Daily revenue (legacy)",
        "Revenue per day. Deprecated: use Revenue.",
        status=LifecycleStatus.DEPRECATED,
    )
    product("revenue", "Revenue", "Net revenue per order line and day.")
    product(
        "revenue-archive",
        "Revenue archive",
        "Revenue before 2020.",
        status=LifecycleStatus.RETIRED,
    )
    product("customer-returns", "Returns", "Items customers sent back, per order.")
    product("web-sessions", "Web sessions", "Visits to the web shop.")
    product("orderbook", "Orderbook snapshots", "Bids and asks of the trading desk.")
    return reader, {"orders": orders, "customers": customers, "health": health}


def run_searches(user) -> dict:
    """For each search: the keys in order, why each matched, and "did you mean"."""
    found = {}
    for q in SEARCHES:
        search = catalog_search(user=user, filters=CatalogFilters(q=q))
        products = list(search.products)
        found[q] = {
            "keys": [p.key for p in products],
            "matches": {
                p.key: [
                    [m.field, m.detail, Quality(m.quality).name.lower(), m.corrected_to]
                    for m in search.matches[p.pk]
                ]
                for p in products
            },
            "suggestion": search.suggestion,
        }
    return found
