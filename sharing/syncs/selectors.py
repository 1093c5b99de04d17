"""Reads of syncs that carry rules: who sees which syncs and runs.

A product's syncs are seen in full by its managers (the domain's owners and stewards,
admins); everyone else sees the syncs they created and those writing to a destination of
a domain they own (whose held runs they approve)."""

from __future__ import annotations

from django.db.models import Q, QuerySet

from products.catalog.permissions import can_edit_product, user_is_admin
from products.choices import MANAGING_ROLES, MembershipRole
from products.models import DataProduct, DomainMembership
from sharing.models import Sync, SyncRun
from sharing.models.syncs import SyncRunStatus


def _domains(user, roles) -> QuerySet:
    """The ids of the domains where `user` has one of `roles` (a subquery: no join, no
    duplicate rows)."""
    return DomainMembership.objects.filter(user_id=user.pk, role__in=list(roles)).values(
        "domain_id"
    )


def _own_or_destination_owner(user, prefix: str = "") -> Q:
    return Q(**{f"{prefix}created_by_id": user.pk}) | Q(
        **{f"{prefix}destination__domain_id__in": _domains(user, [MembershipRole.OWNER])}
    )


def syncs_for_product(*, user, product: DataProduct) -> QuerySet[Sync]:
    """The product's syncs `user` may see on its page."""
    qs = Sync.objects.filter(product=product).select_related(
        "destination", "created_by", "port", "product__domain"
    )
    if not getattr(user, "is_authenticated", False):
        return qs.none()
    if not can_edit_product(user=user, product=product):
        qs = qs.filter(_own_or_destination_owner(user))
    return qs.order_by("name", "pk")


def sync_visible_to(*, user) -> QuerySet[Sync]:
    """Every sync `user` may see: admins all; others those of products they manage, those
    they created, those writing to a destination of a domain they own."""
    qs = Sync.objects.select_related("destination", "created_by", "product__domain")
    if not getattr(user, "is_authenticated", False):
        return qs.none()
    if user_is_admin(user):
        return qs
    managed = Q(product__domain_id__in=_domains(user, MANAGING_ROLES))
    return qs.filter(managed | _own_or_destination_owner(user))


def sync_runs_held_for(*, user) -> QuerySet[SyncRun]:
    """Held runs `user` may approve (the work inbox): of syncs they created, of
    destinations of domains they own, all for admins; not those approved already."""
    qs = SyncRun.objects.filter(
        status=SyncRunStatus.HELD, approved_by_run__isnull=True
    ).select_related("sync__product__domain", "sync__destination", "sync__created_by")
    if not getattr(user, "is_authenticated", False):
        return qs.none()
    if not user_is_admin(user):
        qs = qs.filter(_own_or_destination_owner(user, "sync__"))
    return qs.order_by("created_at", "pk")


def sync_run_chart_rows(*, sync: Sync, limit: int = 30) -> list[dict]:
    """The last `limit` runs (not dry runs), oldest first, with their counts and speed."""
    runs = list(
        SyncRun.objects.filter(sync=sync, dry_run=False)
        .exclude(status__in=(SyncRunStatus.QUEUED, SyncRunStatus.RUNNING))
        .order_by("-created_at", "-pk")[:limit]
    )
    rows = []
    for run in reversed(runs):
        duration = (
            (run.finished_at - run.started_at).total_seconds()
            if run.started_at and run.finished_at
            else None
        )
        sent = run.added + run.changed + run.removed
        rows.append(
            {
                "run_id": run.pk,
                "at": run.created_at,
                "status": run.status,
                "source_rows": run.source_rows,
                "planned": run.planned,
                "added": run.added,
                "changed": run.changed,
                "removed": run.removed,
                "rejected": run.rejected,
                "skipped": run.skipped,
                "duration_s": duration,
                "records_per_s": round(sent / duration, 1) if duration and sent else None,
            }
        )
    return rows
