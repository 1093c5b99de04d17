"""The demo's access requests and grants, so that a fresh demo's work inbox, Access tab
badge and "Grants I manage" page have something to act on: Ana (analyst) asks for the
Customers product's e-mail column (confidential: it waits for an owner's decision), and
Victor (viewer) holds a narrowed grant on Orders that expires within the week.

Through the access services, as a person would make them (the request notifies the
owners in the portal; the grant is audited). Idempotent: nothing is written when Ana
already has a request on Customers or Victor a live grant on Orders."""

from __future__ import annotations

from collections.abc import Callable

from django.db.models import Q
from django.utils import timezone

from products.models import DataProduct
from sharing.access.services.grants import grant_create
from sharing.access.services.requests import access_request_create
from sharing.models import AccessGrant, AccessRequest

REQUEST_COLUMNS = ["customer_id", "segment", "email"]
REQUEST_PURPOSE = (
    "Churn analysis for the Q1 retention campaign: I need the e-mail address to join "
    "customers to the campaign's mailing results."
)
GRANT_COLUMNS = ["order_id", "ordered_at", "country", "channel", "net_amount"]
GRANT_FILTER = [{"column": "country", "op": "in", "value": ["BE", "NL"]}]
GRANT_DAYS = 5


def access_seed(*, users: dict, log: Callable[[str], None]) -> dict[str, int]:
    created = {"access requests": 0, "access grants": 0}
    customers = DataProduct.objects.filter(domain__slug="sales", slug="customers").first()
    analyst = users.get("analyst")
    if (
        customers
        and analyst
        and not AccessRequest.objects.filter(product=customers, requester=analyst).exists()
    ):
        access_request_create(
            product=customers,
            by=analyst,
            purpose=REQUEST_PURPOSE,
            columns=_existing(customers, REQUEST_COLUMNS),
            duration_days=90,
        )
        created["access requests"] += 1
    orders = DataProduct.objects.filter(domain__slug="sales", slug="orders").first()
    viewer, owner = users.get("viewer"), users.get("owner")
    if orders and viewer and owner:
        live = AccessGrant.objects.filter(
            Q(expires_at__gt=timezone.now()), product=orders, user=viewer, revoked_at=None
        )
        if not live.exists():
            grant_create(
                product=orders,
                by=owner,
                user=viewer,
                columns=_existing(orders, GRANT_COLUMNS),
                row_filter=GRANT_FILTER,
                duration_days=GRANT_DAYS,
                reason="Benelux sales review, this week.",
            )
            created["access grants"] += 1
    if any(created.values()):
        log(
            f"Access: {created['access requests']} pending request(s), "
            f"{created['access grants']} grant(s) expiring within {GRANT_DAYS} days."
        )
    return created


def _existing(product: DataProduct, names: list[str]) -> list[str]:
    """The names among `names` that the product's first port has (the demo's columns may
    change; a request naming a column that does not exist is refused)."""
    port = product.ports.order_by("name").first()
    have = set(port.columns.values_list("name", flat=True)) if port else set()
    return [name for name in names if name in have]
