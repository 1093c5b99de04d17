"""The orders every sharing channel is tested on (a Parquet file with a confidential and a
restricted column), where they are served, and the kinds of reader: what the data matrix,
the Data tab, share links and their limits share."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from products.choices import Classification, MembershipRole
from sharing.models import AccessGrant
from tests.factories import MembershipFactory, UserFactory

# The orders of the data matrix, the Data tab and share links (the `orders` fixture).
ROWS = {
    "order_id": [1, 2, 3, 4],
    "country": ["BE", "NL", "BE", "FR"],
    "email": ["a@x", "b@x", None, "d@x"],  # confidential
    "iban": ["BE01", None, "BE03", "FR04"],  # restricted
    "amount": [10.0, 20.0, 30.0, 40.0],
}
# The orders of the serving tests (tests/sharing/serving) and of the shared pg_product.
SERVING_ROWS = {
    "order_id": [1, 2, 3, 4],
    "country": ["BE", "NL", "BE", "FR"],
    "email": ["a@x", "b@x", None, "d@x"],
    "amount": [10.0, 20.0, 30.0, 40.0],
}

ALL = list(ROWS)
SENSITIVE = {"email": Classification.CONFIDENTIAL, "iban": Classification.RESTRICTED}
NARROW_COLUMNS = ["order_id", "country", "email"]  # names email: served unmasked
NARROW_FILTER = [{"column": "country", "op": "=", "value": "BE"}]

API = "/api/v1/products/sales.orders/data/"
PAGE = "/products/sales/orders/data/"
DOWNLOAD = "/products/sales/orders/download/"


def grant(product, user, *, days: float = 30, **fields) -> AccessGrant:
    return AccessGrant.objects.create(
        product=product, user=user, expires_at=timezone.now() + timedelta(days=days), **fields
    )


def make_reader(kind: str, product):
    """A user of the given kind for `product` (None: anonymous)."""
    if kind == "anonymous":
        return None
    if kind == "admin":
        return UserFactory(username="admin", is_staff=True, is_superuser=True)
    user = UserFactory(username=kind)
    if kind in ("owner", "member"):
        role = MembershipRole.OWNER if kind == "owner" else MembershipRole.MEMBER
        MembershipFactory(domain=product.domain, user=user, role=role)
    elif kind == "full_grant":
        grant(product, user)
    elif kind == "narrow_grant":
        grant(product, user, columns=NARROW_COLUMNS, row_filter=NARROW_FILTER)
    elif kind == "expired":
        grant(product, user, days=-1)
    elif kind == "revoked":
        revoked = grant(product, user)
        revoked.revoked_at = timezone.now()
        revoked.save()
    return user
