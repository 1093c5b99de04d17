"""Grants: direct grants by admins and domain owners, revocation (one or every grant of
a person), and the daily access review (expiry notices). Revocation and expiry count
from the very next read: access_decide reads the grants each time."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from portal.core.task_queue import enqueue_on_commit
from portal.models import Event
from products.catalog.permissions import managers_only_message, user_is_admin
from products.choices import MembershipRole
from products.models import DataProduct, DomainMembership
from sharing.access.notifications import grant_expiry_notice_in_app, grant_revoke_notice
from sharing.access.services.common import (
    access_event_emit,
    audit,
    can_grant_directly,
    can_manage_access,
    clean_columns,
    clean_duration,
    clean_reason,
    clean_row_filter,
    expiry_after,
)
from sharing.choices import AuditAction
from sharing.models import AccessGrant

EXPIRY_NOTICE_DAYS = 14


def grant_create(
    *,
    product: DataProduct,
    by,
    user=None,
    group: Group | None = None,
    columns: list[str] | None = None,
    row_filter: list | str | None = None,
    duration_days: int | None = None,
    reason: str,
    shareable: bool = False,
) -> AccessGrant:
    """Grant read access without a request: admins and the domain's owners only."""
    if not can_grant_directly(user=by, product=product):
        raise PermissionDenied(
            f"Only owners of the {product.domain.name} domain, and admins, grant access "
            "directly. Stewards approve requests."
        )
    errors: dict = {}
    if (user is None) == (group is None):
        errors["user"] = ["Give exactly one of a user or a group."]
    cleaned: dict = {}
    for field, clean in (
        ("columns", lambda: clean_columns(product=product, columns=columns)),
        ("row_filter", lambda: clean_row_filter(product=product, row_filter=row_filter)),
        (
            "duration_days",
            lambda: clean_duration(
                duration_days=duration_days,
                longest=product.access_max_days,
                longest_why="this product's maximum",
            ),
        ),
        ("reason", lambda: clean_reason(reason)),
    ):
        try:
            cleaned[field] = clean()
        except ValidationError as exc:
            errors.update(exc.message_dict)
    if errors:
        raise ValidationError(errors)
    reason = cleaned["reason"]
    with transaction.atomic():
        grant = AccessGrant.objects.create(
            product=product,
            user=user,
            group=group,
            columns=cleaned["columns"],
            row_filter=cleaned["row_filter"],
            expires_at=expiry_after(cleaned["duration_days"]),
            reason=reason,
            granted_by=by,
            shareable=bool(shareable),
        )
        audit(
            action=AuditAction.GRANT,
            by=by,
            product=product,
            grant=grant,
            columns=grant.columns,
            row_filter=grant.row_filter,
            detail={
                "grantee": grant.principal_label,
                "expires_at": grant.expires_at.isoformat(),
                "reason": reason,
            },
            at=grant.created_at,
        )
        access_event_emit(
            "portal.access.granted",
            product=product,
            grant=grant,
            data={"expires_at": grant.expires_at.isoformat(), "granted_by": by.get_username()},
        )
    return grant


def _revoke(*, grant: AccessGrant, by, reason: str, now: datetime) -> bool:
    """Revoke one grant, audit it and tell its grantees in the portal; False when it was
    already revoked."""
    updated = AccessGrant.objects.filter(pk=grant.pk, revoked_at__isnull=True).update(
        revoked_at=now, revoked_by=by, revoke_reason=reason
    )
    if not updated:
        return False
    grant.revoked_at, grant.revoked_by, grant.revoke_reason = now, by, reason
    audit(
        action=AuditAction.REVOKE,
        by=by,
        product=grant.product,
        grant=grant,
        columns=grant.columns,
        row_filter=grant.row_filter,
        detail={"grantee": grant.principal_label, "reason": reason},
        at=now,
    )
    access_event_emit(
        "portal.access.revoked",
        product=grant.product,
        grant=grant,
        data={
            "reason": reason,
            "revoked_by": by.get_username() if getattr(by, "is_authenticated", False) else "",
        },
    )
    grant_revoke_notice(grant=grant)
    return True


def grant_revoke(
    *, grant: AccessGrant, by, reason: str, now: datetime | None = None
) -> AccessGrant:
    """Revoke a grant at once (owners, stewards, admins). Revoking twice is an error."""
    if not can_manage_access(user=by, product=grant.product):
        raise PermissionDenied(managers_only_message(grant.product.domain, "revoke access"))
    reason = clean_reason(reason)
    with transaction.atomic():
        if not _revoke(grant=grant, by=by, reason=reason, now=now or timezone.now()):
            raise ValidationError("This grant is already revoked.")
    return grant


def grants_revoke_selected(*, grants: Iterable[AccessGrant], by, reason: str) -> int:
    """Revoke the grants chosen on a page, with one reason, all or none: every grant is
    checked (the domain's owners and stewards, admins) before any is revoked. Grants
    already revoked are skipped. Returns how many were revoked; one audit event each."""
    grants = list(grants)
    checked = {grant.product.domain_id: grant.product for grant in grants}  # once a domain
    for product in checked.values():
        if not can_manage_access(user=by, product=product):
            raise PermissionDenied(managers_only_message(product.domain, "revoke access"))
    reason = clean_reason(reason)
    now = timezone.now()
    with transaction.atomic():
        return sum(_revoke(grant=grant, by=by, reason=reason, now=now) for grant in grants)


def _bulk_revoke_domains(by) -> list[int] | None:
    """The domains whose grants `by` revokes in bulk: None for admins (every domain), the
    domains they own otherwise (possibly none)."""
    if user_is_admin(by):
        return None
    if not getattr(by, "is_authenticated", False):
        return []
    return list(
        DomainMembership.objects.filter(user_id=by.pk, role=MembershipRole.OWNER).values_list(
            "domain_id", flat=True
        )
    )


def can_revoke_in_bulk(*, user) -> bool:
    """Admins and domain owners revoke everything a person holds at once."""
    return _bulk_revoke_domains(user) != []


def grants_revocable_for_user(*, user, by) -> QuerySet[AccessGrant]:
    """The active grants of a person that `by` may revoke at once with
    grants_revoke_for_user: on every product for admins, on the products of the domains
    they own for domain owners. Anyone else is refused (PermissionDenied)."""
    domains = _bulk_revoke_domains(by)
    if domains == []:
        raise PermissionDenied("Only admins and domain owners revoke access in bulk.")
    grants = AccessGrant.objects.filter(
        user=user, revoked_at__isnull=True, expires_at__gt=timezone.now()
    ).select_related("product__domain", "user")
    if domains is not None:
        grants = grants.filter(product__domain_id__in=domains)
    return grants.order_by("product__name", "pk")


def grants_revoke_for_user(*, user, by, reason: str) -> int:
    """Revoke every active grant of a person (for example one who left) on the products
    `by` manages (admins: every product). One audit event per grant revoked."""
    grants = grants_revocable_for_user(user=user, by=by)
    reason = clean_reason(reason)
    now = timezone.now()
    count = 0
    with transaction.atomic():
        for grant in grants.select_for_update(of=("self",)):
            count += _revoke(grant=grant, by=by, reason=reason, now=now)
    return count


def grants_expiring(*, within_days: int = EXPIRY_NOTICE_DAYS, now: datetime | None = None):
    """Active grants ending within `within_days` whose notice is not sent yet."""
    now = now or timezone.now()
    return AccessGrant.objects.filter(
        revoked_at__isnull=True,
        expires_at__gt=now,
        expires_at__lte=now + timedelta(days=within_days),
        expiry_notified_at__isnull=True,
    )


def grant_expiry_notice(*, grant_id: int, now: datetime | None = None) -> bool:
    """Claim the grant's expiry notice (a conditional UPDATE), then notify (in the portal,
    and by email) the grantee and the domain's owners and audit it. Running twice sends
    once."""
    now = now or timezone.now()
    with transaction.atomic():
        claimed = grants_expiring(now=now).filter(pk=grant_id).update(expiry_notified_at=now)
        if not claimed:
            return False
        grant = AccessGrant.objects.select_related("product__domain", "user", "group").get(
            pk=grant_id
        )
        audit(
            action=AuditAction.EXPIRY_NOTICE,
            by=None,
            product=grant.product,
            grant=grant,
            detail={
                "grantee": grant.principal_label,
                "expires_at": grant.expires_at.isoformat(),
            },
            at=now,
        )
        grant_expiry_notice_in_app(grant=grant)
        # Emailed from a worker after the commit (sharing.tasks.grant_expiry_notify).
        enqueue_on_commit("sharing.tasks.grant_expiry_notify", grant.pk, once=True)
    return True


def access_review(*, now: datetime | None = None) -> int:
    """The daily review: send the expiry notices that are due. Returns how many."""
    now = now or timezone.now()
    ids = list(grants_expiring(now=now).values_list("pk", flat=True))
    return sum(grant_expiry_notice(grant_id=pk, now=now) for pk in ids)


# How far back the expiry sweep looks: a grant that ended longer ago (before events were
# written, or while the sweep was stopped for longer) is not announced any more.
EXPIRY_EVENT_LOOKBACK = timedelta(days=2)


def grants_expire(*, now: datetime | None = None) -> int:
    """Write the "expired" event of each grant that ended (unrevoked) within the lookback
    and has none yet. Expiry itself needs no write (access_decide compares expires_at);
    the outbox's own event is what says it was announced, so running twice, or two
    sweeps at once, announce each expiry once. Returns how many were announced."""
    now = now or timezone.now()
    since = now - EXPIRY_EVENT_LOOKBACK
    ended = AccessGrant.objects.filter(
        revoked_at__isnull=True, expires_at__lte=now, expires_at__gt=since
    )
    ids = set(ended.values_list("pk", flat=True))
    if not ids:
        return 0
    ids -= _grants_announced_expired(since=since)
    count = 0
    for grant_id in sorted(ids):
        with transaction.atomic():
            grant = (
                AccessGrant.objects.select_for_update(of=("self",))
                .select_related("product__domain", "user", "group")
                .filter(pk=grant_id, revoked_at__isnull=True, expires_at__lte=now)
                .first()
            )
            if grant is None or _grant_announced_expired(grant):
                continue  # revoked meanwhile, or announced by a sweep running alongside
            access_event_emit(
                "portal.access.expired",
                product=grant.product,
                grant=grant,
                data={"expires_at": grant.expires_at.isoformat()},
            )
            count += 1
    return count


def _grants_announced_expired(*, since: datetime) -> set[int]:
    return set(
        Event.objects.filter(type="portal.access.expired", time__gte=since).values_list(
            "data__grant_id", flat=True
        )
    )


def _grant_announced_expired(grant: AccessGrant) -> bool:
    return Event.objects.filter(
        type="portal.access.expired", product_id=grant.product_id, data__grant_id=grant.pk
    ).exists()
