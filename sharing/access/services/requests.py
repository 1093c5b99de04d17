"""Access requests: asked by anyone signed in, decided by the domain's owners and
stewards (or at once, when the product auto-approves public and internal columns)."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from portal.core.task_queue import enqueue_on_commit
from products.catalog.permissions import managers_only_message
from products.choices import PUBLIC_STATUSES
from products.models import DataProduct
from sharing.access.decision import reads_everything
from sharing.access.notifications import (
    access_request_notice_managers,
    access_request_notice_requester,
)
from sharing.access.services.common import (
    AUTO_APPROVE_CLASSIFICATIONS,
    access_event_emit,
    audit,
    can_manage_access,
    clean_columns,
    clean_duration,
    clean_reason,
    clean_row_filter,
    expiry_after,
    product_columns,
)
from sharing.choices import AuditAction, RequestStatus
from sharing.models import AccessGrant, AccessRequest

AUTO_APPROVE_REASON = "Auto-approved: public and internal columns only"


def _notify(request: AccessRequest, to: str) -> None:
    """Email the domain's managers (a new request) or the requester (a decision), from a
    worker after the commit (sharing.tasks.access_request_notify). Their in-portal
    notifications are written with the change itself (sharing.access.notifications)."""
    enqueue_on_commit("sharing.tasks.access_request_notify", request.pk, to, once=True)


def _auto_approvable(*, product: DataProduct, columns: list[str]) -> bool:
    if not product.access_auto_approve:
        return False
    wanted = [c for c in product_columns(product=product) if not columns or c.name in columns]
    return bool(wanted) and all(c.classification in AUTO_APPROVE_CLASSIFICATIONS for c in wanted)


def access_request_create(
    *,
    product: DataProduct,
    by,
    purpose: str,
    columns: list[str] | None = None,
    duration_days: int | None = None,
) -> AccessRequest:
    """Ask to read a published or deprecated product. Auto-approved at once when the
    product allows it and every column asked for is public or internal."""
    if not by or not by.is_authenticated:
        raise PermissionDenied("Sign in to request access.")
    if not DataProduct.objects.visible_to(by).filter(pk=product.pk).exists():
        raise PermissionDenied("You may not see this product.")
    if reads_everything(user=by, product=product):
        raise ValidationError(
            "You already have access: admins and members of the "
            f"{product.domain.name} domain read every column of this product."
        )
    if product.status not in PUBLIC_STATUSES:
        raise ValidationError(
            f"This product is {product.get_status_display().lower()}: only published and "
            "deprecated products take access requests."
        )
    errors = {}
    purpose = (purpose or "").strip()
    if not purpose:
        errors["purpose"] = ["Say what you will use the data for."]
    try:
        columns = clean_columns(product=product, columns=columns)
    except ValidationError as exc:
        errors.update(exc.message_dict)
    try:
        days = clean_duration(
            duration_days=duration_days,
            longest=product.access_max_days,
            longest_why="this product's maximum",
        )
    except ValidationError as exc:
        errors.update(exc.message_dict)
    if errors:
        raise ValidationError(errors)
    pending_message = (
        "You already have a pending request for this product: wait for its decision "
        "or cancel it first."
    )
    if AccessRequest.objects.filter(
        product=product, requester=by, status=RequestStatus.PENDING
    ).exists():
        raise ValidationError(pending_message)

    auto = _auto_approvable(product=product, columns=columns)
    try:
        with transaction.atomic():
            request = AccessRequest.objects.create(
                product=product,
                requester=by,
                purpose=purpose,
                columns=columns,
                duration_days=days,
            )
            audit(
                action=AuditAction.REQUEST,
                by=by,
                product=product,
                request=request,
                columns=columns,
                detail={"purpose": purpose, "duration_days": days},
            )
            access_event_emit(
                "portal.access.requested",
                product=product,
                request=request,
                data={"purpose": purpose, "duration_days": days, "auto_approved": auto},
            )
            if auto:
                grant = _approve(
                    request=request,
                    by=None,
                    columns=columns,
                    row_filter=[],
                    days=days,
                    reason=AUTO_APPROVE_REASON,
                )
                access_request_notice_requester(request=request, grant=grant)
            else:
                access_request_notice_managers(request=request)
    except IntegrityError:  # a concurrent request won the one-pending constraint
        raise ValidationError(pending_message) from None
    _notify(request, "requester" if auto else "managers")
    return request


def _check_decider(*, request: AccessRequest, by) -> None:
    if not can_manage_access(user=by, product=request.product):
        raise PermissionDenied(
            managers_only_message(request.product.domain, "decide access requests")
        )
    if request.status != RequestStatus.PENDING:
        raise ValidationError(f"This request is already {request.get_status_display().lower()}.")


def _approve(
    *,
    request: AccessRequest,
    by,
    columns: list[str],
    row_filter: list[dict],
    days: int,
    reason: str,
) -> AccessGrant:
    now = timezone.now()
    request.status = RequestStatus.APPROVED
    request.decided_by = by
    request.decided_at = now
    request.decision_reason = reason
    request.save(update_fields=["status", "decided_by", "decided_at", "decision_reason"])
    grant = AccessGrant.objects.create(
        product=request.product,
        user=request.requester,
        columns=columns,
        row_filter=row_filter,
        expires_at=expiry_after(days, now=now),
        reason=reason or request.purpose,
        granted_by=by,
        request=request,
    )
    other = {"requester": request.requester.username}
    audit(
        action=AuditAction.APPROVE,
        by=by,
        product=request.product,
        request=request,
        grant=grant,
        columns=columns,
        row_filter=row_filter,
        detail={**other, "reason": reason} if reason else other,
        at=now,
    )
    audit(
        action=AuditAction.GRANT,
        by=by,
        product=request.product,
        request=request,
        grant=grant,
        columns=columns,
        row_filter=row_filter,
        detail={"grantee": request.requester.username, "expires_at": grant.expires_at.isoformat()},
        at=now,
    )
    access_event_emit(
        "portal.access.granted",
        product=request.product,
        grant=grant,
        request=request,
        data={
            "expires_at": grant.expires_at.isoformat(),
            "granted_by": by.get_username() if by is not None else "",
        },
    )
    return grant


def access_request_approve(
    *,
    request: AccessRequest,
    by,
    columns: list[str] | None = None,
    row_filter: list | str | None = None,
    duration_days: int | None = None,
    reason: str = "",
) -> AccessGrant:
    """Approve a pending request, optionally narrower than asked: fewer columns, a row
    filter, a shorter duration. Creates the grant and tells the requester."""
    product = request.product
    with transaction.atomic():
        request = AccessRequest.objects.select_for_update().get(pk=request.pk)
        request.product = product
        _check_decider(request=request, by=by)
        errors = {}
        cleaned: dict = {}
        for field, clean in (
            (
                "columns",
                lambda: (
                    clean_columns(product=product, columns=columns, within=request.columns)
                    if columns
                    else list(request.columns)
                ),
            ),
            ("row_filter", lambda: clean_row_filter(product=product, row_filter=row_filter)),
            (
                "duration_days",
                lambda: clean_duration(
                    duration_days=duration_days,
                    longest=request.duration_days,
                    longest_why="what was requested; an approval only shortens it",
                ),
            ),
        ):
            try:
                cleaned[field] = clean()
            except ValidationError as exc:
                errors.update(exc.message_dict)
        if errors:
            raise ValidationError(errors)
        grant = _approve(
            request=request,
            by=by,
            columns=cleaned["columns"],
            row_filter=cleaned["row_filter"],
            days=cleaned["duration_days"],
            reason=(reason or "").strip(),
        )
        access_request_notice_requester(request=request, grant=grant)
    _notify(request, "requester")
    return grant


def access_request_deny(*, request: AccessRequest, by, reason: str) -> AccessRequest:
    product = request.product
    with transaction.atomic():
        request = AccessRequest.objects.select_for_update().get(pk=request.pk)
        request.product = product
        _check_decider(request=request, by=by)
        reason = clean_reason(reason, what="a reason, so the requester knows what to change")
        request.status = RequestStatus.DENIED
        request.decided_by = by
        request.decided_at = timezone.now()
        request.decision_reason = reason
        request.save(update_fields=["status", "decided_by", "decided_at", "decision_reason"])
        audit(
            action=AuditAction.DENY,
            by=by,
            product=product,
            request=request,
            columns=request.columns,
            detail={"requester": request.requester.username, "reason": reason},
            at=request.decided_at,
        )
        access_event_emit(
            "portal.access.denied",
            product=product,
            request=request,
            data={"reason": reason, "denied_by": by.get_username()},
        )
        access_request_notice_requester(request=request, grant=None)
    _notify(request, "requester")
    return request


def access_request_cancel(*, request: AccessRequest, by) -> AccessRequest:
    """The requester withdraws a pending request."""
    if not by or request.requester_id != by.pk:
        raise PermissionDenied("Only the person who asked cancels a request.")
    updated = AccessRequest.objects.filter(pk=request.pk, status=RequestStatus.PENDING).update(
        status=RequestStatus.CANCELLED, decided_by=by, decided_at=timezone.now()
    )
    if not updated:
        request.refresh_from_db()
        raise ValidationError(f"This request is already {request.get_status_display().lower()}.")
    request.refresh_from_db()
    audit(action=AuditAction.CANCEL, by=by, product=request.product, request=request)
    return request
