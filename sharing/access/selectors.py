"""Reads of access that carry rules: who sees which requests, grants and audit events."""

from __future__ import annotations

from datetime import timedelta

from django.db.models import Q, QuerySet
from django.db.models.functions import Coalesce
from django.utils import timezone

from products.models import DataProduct
from sharing.access.services.common import can_manage_access
from sharing.choices import AuditAction, RequestStatus
from sharing.models import AccessEvent, AccessGrant, AccessRequest

UNUSED_DAYS = 60
RECENT_READS = 50


def access_requests_for(*, user, product: DataProduct) -> QuerySet[AccessRequest]:
    """A product's requests: all of them for its managers, one's own for everyone else."""
    qs = AccessRequest.objects.filter(product=product).select_related(
        "requester", "decided_by", "product__domain"
    )
    if not can_manage_access(user=user, product=product):
        qs = qs.filter(requester_id=user.pk)
    return qs


def access_requests_pending(*, product: DataProduct) -> QuerySet[AccessRequest]:
    return (
        AccessRequest.objects.filter(product=product, status=RequestStatus.PENDING)
        .select_related("requester", "product__domain")
        .order_by("created_at", "pk")
    )


def access_request_pending_of(*, user, product: DataProduct) -> AccessRequest | None:
    if not user.is_authenticated:
        return None
    return AccessRequest.objects.filter(
        product=product, requester_id=user.pk, status=RequestStatus.PENDING
    ).first()


def grants_of_product(*, product: DataProduct, active: bool = True) -> QuerySet[AccessGrant]:
    qs = AccessGrant.objects.filter(product=product).select_related(
        "user", "group", "granted_by", "revoked_by", "product__domain"
    )
    if active:
        qs = qs.filter(revoked_at__isnull=True, expires_at__gt=timezone.now())
    return qs.order_by("expires_at", "pk")


def grants_unused(*, product: DataProduct, days: int = UNUSED_DAYS) -> QuerySet[AccessGrant]:
    """Active grants not used for `days` (never used: counted from their creation):
    proposed to the owners for revocation."""
    cutoff = timezone.now() - timedelta(days=days)
    return (
        grants_of_product(product=product)
        .annotate(last_activity=Coalesce("last_used_at", "created_at"))
        .filter(last_activity__lt=cutoff)
        .order_by("last_activity", "pk")
    )


def grants_of_user(*, user) -> QuerySet[AccessGrant]:
    """A person's grants (their own and their teams'), newest first, ended ones included."""
    return (
        AccessGrant.objects.filter(Q(user_id=user.pk) | Q(group__in=user.groups.all()))
        .select_related("product__domain", "user", "group", "granted_by", "revoked_by")
        .order_by("-created_at", "-pk")
    )


def access_requests_of_user(*, user) -> QuerySet[AccessRequest]:
    return (
        AccessRequest.objects.filter(requester_id=user.pk)
        .select_related("product__domain", "requester", "decided_by")
        .order_by("-created_at", "-pk")
    )


def reads_recent(*, product: DataProduct, limit: int = RECENT_READS) -> list[AccessEvent]:
    return list(
        AccessEvent.objects.filter(product=product, action=AuditAction.READ).select_related("user")[
            :limit
        ]
    )
