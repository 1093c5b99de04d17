"""Background work of access: the daily review, notices."""

from __future__ import annotations

from celery import shared_task

from portal.core.task_queue import queued_task_claim
from sharing.access.notifications import (
    access_request_notify_managers,
    access_request_notify_requester,
    grant_expiry_notify,
)
from sharing.access.services.grants import access_review, grants_expire
from sharing.models import AccessGrant, AccessRequest


@shared_task(name="sharing.tasks.access_review_daily")
def access_review_daily() -> int:
    """Expiry notices due today (each sent once, however often this runs)."""
    return access_review()


@shared_task(name="sharing.tasks.grants_expire")
def grants_expire_sweep() -> int:
    """Beat: announce the grants that ended (the portal.access.expired event, once each)."""
    return grants_expire()


@shared_task(name="sharing.tasks.access_request_notify", acks_late=True)
def access_request_notify(request_id: int, to: str, outbox_id: int | None = None) -> bool:
    """Email a request to the domain's managers (`to="managers"`) or its decision to the
    requester (`to="requester"`). Safe to deliver twice: the outbox row is claimed once."""
    if not queued_task_claim(outbox_id):
        return False
    request = (
        AccessRequest.objects.select_related("product__domain", "requester", "grant")
        .filter(pk=request_id)
        .first()
    )
    if request is None:
        return False
    if to == "managers":
        return access_request_notify_managers(request=request)
    return access_request_notify_requester(request=request)


@shared_task(name="sharing.tasks.grant_expiry_notify", acks_late=True)
def grant_expiry_notify_task(grant_id: int, outbox_id: int | None = None) -> bool:
    """Email an approaching expiry (claimed and audited by grant_expiry_notice). Safe to
    deliver twice: the outbox row is claimed once."""
    if not queued_task_claim(outbox_id):
        return False
    grant = (
        AccessGrant.objects.select_related("product__domain", "user", "group")
        .filter(pk=grant_id)
        .first()
    )
    if grant is None:
        return False
    return grant_expiry_notify(grant=grant)
