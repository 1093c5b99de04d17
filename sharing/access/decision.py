"""The one access decision. Every data path (preview, API, download, notebook, export,
share link, Delta Sharing) asks `access_decide` which columns and rows a person may read,
which columns are masked, or why not; and nothing else decides it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from django.db.models import Q
from django.utils import timezone

from products.catalog.selectors import domain_managers
from products.choices import Classification, LifecycleStatus
from products.models import Column, DataProduct, DomainMembership
from sharing.access.filters import Clause, parse_filter
from sharing.models import AccessGrant

# Columns served masked unless a grant names them.
SENSITIVE_CLASSIFICATIONS = (Classification.CONFIDENTIAL, Classification.RESTRICTED)


@dataclass(frozen=True)
class AccessDecision:
    allowed: bool
    reason: str
    basis: str = "none"  # admin | domain_member | grant | none
    all_columns: bool = False  # every column, none masked, no row filter
    columns: tuple[str, ...] | None = None  # allowed columns; None: every column
    masked: frozenset[str] = field(default_factory=frozenset)  # served masked
    row_filter: tuple[Clause, ...] = ()
    grant: AccessGrant | None = None

    def allows_column(self, name: str) -> bool:
        return self.columns is None or name in self.columns


def grants_active_for(*, user, product: DataProduct, now: datetime | None = None):
    """Grants of the product to the user or one of the user's groups, neither revoked
    nor expired, at `now`."""
    now = now or timezone.now()
    return (
        AccessGrant.objects.filter(product=product, revoked_at__isnull=True, expires_at__gt=now)
        .filter(Q(user_id=user.pk) | Q(group__in=user.groups.all()))
        .order_by("-expires_at", "-pk")
    )


def reads_everything(*, user, product: DataProduct) -> bool:
    """Admins and members of the owning domain read every column, unmasked, unfiltered.
    The first step of access_decide, and on its own for cheap questions such as "may this
    person see failing-row samples"."""
    if user is None or not user.is_authenticated or not user.is_active:
        return False
    if user.is_staff:
        return True
    return DomainMembership.objects.filter(user_id=user.pk, domain_id=product.domain_id).exists()


def _denied(reason: str) -> AccessDecision:
    return AccessDecision(allowed=False, reason=reason)


def access_decide(
    *, user, product: DataProduct, now: datetime | None = None, shareable_only: bool = False
) -> AccessDecision:
    """Whether `user` may read the product's rows, and which columns and rows.

    Admins and members of the owning domain read everything, unmasked. Others need an
    active grant: its columns (all when it names none), its row filter, and
    confidential/restricted columns masked unless the grant names them. With several
    grants the widest single grant applies (never a mix of two). Revocation and expiry
    count from the very next call: nothing here is cached.

    `shareable_only`: what the user may *share* (share links): admins and the domain's
    owners and stewards share what they read; anyone else only within a grant marked
    shareable (a plain domain member included)."""
    if user is None or not user.is_authenticated:
        return _denied("Sign in to read data.")
    if not user.is_active:
        return _denied("This account is disabled.")
    if user.is_staff:
        return AccessDecision(allowed=True, reason="Admin.", basis="admin", all_columns=True)
    if reads_everything(user=user, product=product) and (
        not shareable_only
        or domain_managers(domain_id=product.domain_id).filter(pk=user.pk).exists()
    ):
        return AccessDecision(
            allowed=True,
            reason=f"Member of the {product.domain.name} domain.",
            basis="domain_member",
            all_columns=True,
        )
    if product.status not in (LifecycleStatus.PUBLISHED, LifecycleStatus.DEPRECATED):
        return _denied(f"This product is {product.get_status_display().lower()}.")
    grants = list(grants_active_for(user=user, product=product, now=now))
    if shareable_only:
        grants = [grant for grant in grants if grant.shareable]
        if not grants:
            return _denied(
                "You may not share this product's data: only its domain's owners and "
                "stewards, admins, and holders of a grant marked shareable create share links."
            )
    if not grants:
        expired_or_revoked = AccessGrant.objects.filter(product=product).filter(
            Q(user_id=user.pk) | Q(group__in=user.groups.all())
        )
        if expired_or_revoked.filter(revoked_at__isnull=False).exists():
            return _denied("Your access to this product was revoked. Request access again.")
        if expired_or_revoked.exists():
            return _denied("Your access to this product has expired. Request access again.")
        return _denied("You have no access to this product's data. Request access.")
    # The widest single grant: all columns first, then the most columns, then no filter.
    grant = max(
        grants,
        key=lambda g: (not g.columns, len(g.columns), not g.row_filter, g.expires_at),
    )
    sensitive = set(
        Column.objects.filter(
            port__product=product, classification__in=SENSITIVE_CLASSIFICATIONS
        ).values_list("name", flat=True)
    )
    named = set(grant.columns)
    return AccessDecision(
        allowed=True,
        reason=f"Access granted until {grant.expires_at:%Y-%m-%d}.",
        basis="grant",
        columns=tuple(grant.columns) if grant.columns else None,
        masked=frozenset(sensitive - named),
        row_filter=tuple(parse_filter(grant.row_filter)),
        grant=grant,
    )


def share_decision(*, user, product: DataProduct) -> AccessDecision:
    """What `user` may share of the product (or why not)."""
    return access_decide(user=user, product=product, shareable_only=True)


def can_share(*, user, product: DataProduct) -> bool:
    return share_decision(user=user, product=product).allowed
