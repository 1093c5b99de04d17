"""Reads of the SQL page: the products a person may query (the browser), their history
and the saved queries they may open."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Q

from products.models import DataProduct, OutputPort
from sharing.access.decision import access_decide
from sharing.models import FederatedQuery, SavedQuery

BROWSER_PRODUCTS = 200
HISTORY_ROWS = 20


@dataclass
class BrowserProduct:
    key: str
    name: str
    url: str
    readable: bool  # the reader's access allows reading its rows
    reason: str  # why not, when it does not
    ports: list[dict]  # {"slug", "name", "default", "columns": [{"name", "type", "masked"}]}


def query_browser(*, user) -> list[BrowserProduct]:
    """The products `user` can see, by key, with their ports' columns and what the
    reader's access does to them (a column outside it is left out, a masked one marked),
    readable ones first (at most BROWSER_PRODUCTS)."""
    products = list(
        DataProduct.objects.visible_to(user)
        .select_related("domain")
        .order_by("domain__slug", "slug")[:BROWSER_PRODUCTS]
    )
    ports = (
        OutputPort.objects.filter(product__in=products).prefetch_related("columns").order_by("name")
    )
    by_product: dict[int, list[OutputPort]] = {}
    for port in ports:
        by_product.setdefault(port.product_id, []).append(port)
    out = []
    for product in products:
        decision = access_decide(user=user, product=product)
        own_ports = by_product.get(product.pk, [])
        entries = []
        for position, port in enumerate(own_ports):
            columns = [
                {
                    "name": column.name,
                    "type": column.data_type,
                    "masked": column.name in decision.masked,
                }
                for column in sorted(port.columns.all(), key=lambda c: (c.position, c.name))
                if decision.allows_column(column.name)
            ]
            entries.append(
                {"slug": port.slug, "name": port.name, "default": position == 0, "columns": columns}
            )
        out.append(
            BrowserProduct(
                key=product.key,
                name=product.name,
                url=product.get_absolute_url(),
                readable=decision.allowed and bool(own_ports),
                reason="" if decision.allowed else decision.reason,
                ports=entries,
            )
        )
    out.sort(key=lambda p: (not p.readable, p.key))
    return out


def query_history(*, user, limit: int = HISTORY_ROWS):
    return FederatedQuery.objects.filter(user=user).order_by("-started_at")[:limit]


def saved_queries_for(*, user):
    """The person's own saved queries and the ones others shared, by name."""
    return (
        SavedQuery.objects.filter(Q(owner=user) | Q(shared=True))
        .select_related("owner")
        .order_by("name", "pk")
    )
