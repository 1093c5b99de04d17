"""Grants across products, for the pages of admins and domain managers: whose grants a
person may see and revoke (admins: every product; a domain's owners and stewards: its
products), filtered by product, person, expiry and use, with the last read from the audit."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.contrib.auth import get_user_model
from django.db.models import CharField, OuterRef, Q, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce, Concat
from django.utils import timezone

from products.catalog.permissions import managed_domains, user_is_admin
from sharing.access.audit_selectors import person_matches
from sharing.choices import AuditAction
from sharing.models import AccessEvent, AccessGrant

NEVER_READ = "never"


def can_administer_grants(*, user) -> bool:
    """Admins, and the owners and stewards of at least one domain."""
    return user_is_admin(user) or managed_domains(user=user).exists()


def grants_in_scope(*, user) -> QuerySet[AccessGrant]:
    """Every grant (active or ended) on the products the user manages the access of:
    all for admins, their domains' for owners and stewards, none for anyone else. The
    one scope of the grants page: what it lists and which ids a POST may name."""
    qs = AccessGrant.objects.all()
    if not user_is_admin(user):
        qs = qs.filter(product__domain__in=managed_domains(user=user))
    return qs


@dataclass(frozen=True)
class GrantFilters:
    product: str = ""  # part of a product's name or key, any case
    person: str = ""  # part of a grantee's username, name or e-mail, or a team's name
    expiring_days: int | None = None  # ending within this many days
    unused: str = ""  # "" | a number of days without a read | NEVER_READ


def grants_across_products(
    *, user, filters: GrantFilters | None = None, now: datetime | None = None
) -> QuerySet[AccessGrant]:
    """Active grants in the user's scope, soonest ending first, each with `last_read`:
    the time of its latest read in the audit (None: never read)."""
    filters = filters or GrantFilters()
    now = now or timezone.now()
    last_read = (
        AccessEvent.objects.filter(grant_id=OuterRef("pk"), action=AuditAction.READ)
        .order_by("-at")
        .values("at")[:1]
    )
    qs = (
        grants_in_scope(user=user)
        .filter(revoked_at__isnull=True, expires_at__gt=now)
        .select_related("product__domain", "user", "group", "granted_by")
        .annotate(last_read=Subquery(last_read))
    )
    if filters.product:
        qs = qs.annotate(
            product_key=Concat(
                "product__domain__slug", Value("."), "product__slug", output_field=CharField()
            )
        ).filter(
            Q(product__name__icontains=filters.product) | Q(product_key__icontains=filters.product)
        )
    if filters.person:
        qs = qs.filter(
            person_matches(filters.person, "user__") | Q(group__name__icontains=filters.person)
        )
    if filters.expiring_days:
        qs = qs.filter(expires_at__lte=now + timedelta(days=filters.expiring_days))
    if filters.unused == NEVER_READ:
        qs = qs.filter(last_read__isnull=True)
    elif filters.unused:
        # Not read for N days; a grant younger than that counts from its creation.
        cutoff = now - timedelta(days=int(filters.unused))
        qs = qs.annotate(last_activity=Coalesce("last_read", "created_at")).filter(
            last_activity__lt=cutoff
        )
    return qs.order_by("expires_at", "pk")


def person_by_login(text: str):
    """The person with this username, or with this e-mail (any case), or None."""
    text = (text or "").strip()
    if not text:
        return None
    people = get_user_model().objects
    return (
        people.filter(username=text).first()
        or people.filter(username__iexact=text).first()
        or (people.filter(email__iexact=text).first() if "@" in text else None)
    )
